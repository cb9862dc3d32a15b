"""Layer versions published through Lambda's API (PublishLayerVersion), kept in the store so they
survive restarts. Their content is unzipped under the state directory in a directory lrun names
(``layers/<token>``, the zip beside it as ``<token>.zip`` for ``Content.Location``); the record
names only the token, never a path from a request.

Version numbers only grow: a layer whose versions were all deleted publishes its next number,
as on AWS. A deleted version is gone for the API at once, but its content stays while a function
still uses it (on AWS a function keeps a deleted version's content); ``forget`` removes it once
nothing does.

Read from memory; written through the store before a change is acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.events.store import Store

MAX_LAYER_VERSIONS = 1000  # versions one server keeps (AWS bounds code storage instead)


def layer_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}"


def layer_version_arn(name: str, version: int) -> str:
    return f"{layer_arn(name)}:{version}"


@dataclass(frozen=True)
class LayerVersion:
    """One published version of a layer."""

    name: str
    version: int
    description: str
    license_info: str | None  # None: not given, and AWS leaves the member out
    compatible_runtimes: tuple[str, ...] | None  # likewise
    compatible_architectures: tuple[str, ...] | None
    created: float  # epoch seconds
    code_sha256: str  # base64 of the zip's SHA-256, as AWS shows it
    code_size: int  # bytes of the zip
    unzipped_size: int  # bytes of its files: they count toward a function's 250 MB
    token: str  # its directory under layers/
    statements: tuple[Mapping[str, Any], ...] = ()  # its policy's, in the order added
    policy_revision: str = ""  # changes with every change of the policy
    deleted: bool = False  # DeleteLayerVersion'd, kept only for the functions that use it

    @property
    def arn(self) -> str:
        return layer_version_arn(self.name, self.version)

    def to_json(self) -> str:
        data = asdict(self)
        data["statements"] = [dict(s) for s in self.statements]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LayerVersion:
        data: dict[str, Any] = json.loads(text)
        for key in ("compatible_runtimes", "compatible_architectures", "statements"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class _Layer:
    last: int = 0  # the highest version number ever published
    versions: dict[int, LayerVersion] = field(default_factory=dict)


class LayerVersions:
    """Every layer version's record, kept in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._layers: dict[str, _Layer] = {}

    async def load(self) -> None:
        def read(db: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            names = db.execute("SELECT name, last FROM layers").fetchall()
            rows = db.execute("SELECT record FROM layer_versions").fetchall()
            return names, rows

        names, rows = await self._store.run(read)
        for name, last in names:
            self._layers[name] = _Layer(last)
        for (text,) in rows:
            record = LayerVersion.from_json(text)
            self._layers.setdefault(record.name, _Layer(record.version))
            self._layers[record.name].versions[record.version] = record

    # Reading

    def get(self, name: str, version: int) -> LayerVersion | None:
        """A live (not deleted) version, or None."""
        found = self.stored(name, version)
        return None if found is None or found.deleted else found

    def stored(self, name: str, version: int) -> LayerVersion | None:
        """A version whether deleted or not: what a function that uses it still sees."""
        layer = self._layers.get(name)
        return None if layer is None else layer.versions.get(version)

    def versions(self, name: str) -> list[LayerVersion]:
        """A layer's live versions, newest first."""
        layer = self._layers.get(name)
        if layer is None:
            return []
        return sorted(
            (v for v in layer.versions.values() if not v.deleted),
            key=lambda v: v.version,
            reverse=True,
        )

    def names(self) -> list[str]:
        """Every layer with a live version, sorted."""
        return sorted(name for name in self._layers if self.versions(name))

    def all_stored(self) -> list[LayerVersion]:
        return [v for layer in self._layers.values() for v in layer.versions.values()]

    def count(self) -> int:
        return sum(len(layer.versions) for layer in self._layers.values())

    # Writing

    async def publish(self, draft: LayerVersion) -> LayerVersion:
        """Store ``draft`` as its layer's next version (its own ``version`` is ignored)."""
        layer = self._layers.setdefault(draft.name, _Layer())
        record = replace(draft, version=layer.last + 1)
        text = record.to_json()

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO layers (name, last) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last = excluded.last",
                (record.name, record.version),
            )
            db.execute(
                "INSERT INTO layer_versions (name, version, record) VALUES (?, ?, ?)",
                (record.name, record.version, text),
            )

        layer.last = record.version  # claimed now: a concurrent publish takes the next one
        await self._store.run(write)
        layer.versions[record.version] = record
        return record

    async def put(self, record: LayerVersion) -> None:
        """Store a changed record (its policy, its deletion)."""
        text = record.to_json()

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE layer_versions SET record = ? WHERE name = ? AND version = ?",
                (text, record.name, record.version),
            )

        await self._store.run(write)
        self._layers[record.name].versions[record.version] = record

    async def forget(self, record: LayerVersion) -> None:
        """Remove a version's record for good (the layer's number stays claimed)."""

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM layer_versions WHERE name = ? AND version = ?",
                (record.name, record.version),
            )

        await self._store.run(write)
        layer = self._layers.get(record.name)
        if layer is not None:
            layer.versions.pop(record.version, None)
