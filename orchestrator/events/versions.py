"""Published versions, aliases and provisioned-concurrency settings, kept in the store so they
survive restarts (DESIGN D6). Read from memory; written through the store before a change is
acknowledged.

A version is immutable: the spec its environments run (its code in a directory lrun owns and
never changes: an API-created function's unpacked zip, or a copy lrun made of a manifest
function's code), and the configuration GetFunctionConfiguration shows for it. Version numbers
are never reused while the function exists, as on Lambda: the last number given is kept apart
from the versions, so deleting the newest version does not hand its number out again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.events.store import Store
from orchestrator.manifest import FunctionSpec, spec_json
from orchestrator.served import Provisioned


@dataclass(frozen=True)
class Version:
    function: str
    number: int
    spec: FunctionSpec  # what its environments run
    revision: str  # the pool's key for its environments' configuration
    seed: str  # $LATEST's revision it was published from (unchanged since: no new version)
    config: Mapping[str, Any]  # GetFunctionConfiguration's answer for it
    code_token: str | None = None  # the zip its Code.Location downloads (API-created functions)
    snapshot: str | None = None  # the directory lrun copied its code into (manifest functions)
    managed: bool = False  # published by lrun itself (the manifest's provisioned concurrency)

    @property
    def name(self) -> str:
        return str(self.number)


@dataclass(frozen=True)
class AliasRecord:
    function: str
    name: str
    version: str
    weights: tuple[tuple[str, float], ...] = ()
    description: str = ""
    revision_id: str = ""
    managed: bool = False  # lrun's own (the manifest's provisioned concurrency)


@dataclass
class FunctionVersions:
    """One function's versions, aliases and provisioned settings."""

    versions: dict[int, Version] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)
    provisioned: dict[str, Provisioned] = field(default_factory=dict)  # by version or alias
    last: int = 0  # the last version number given


class Versions:
    """Every function's published versions, aliases and provisioned settings."""

    def __init__(self, store: Store, root: Path) -> None:
        self._store = store
        self.root = root  # the state directory: a version's paths are kept relative to it
        self.functions: dict[str, FunctionVersions] = {}

    def of(self, function: str) -> FunctionVersions:
        return self.functions.get(function) or FunctionVersions()

    def count(self) -> int:
        return sum(len(f.versions) for f in self.functions.values())

    def alias_count(self) -> int:
        return sum(len(f.aliases) for f in self.functions.values())

    def tokens(self) -> set[str]:
        """Every directory under the state directory a version's code is in."""
        found: set[str] = set()
        for kept in self.functions.values():
            for version in kept.versions.values():
                found.update(t for t in (version.code_token, version.snapshot) if t is not None)
        return found

    async def load(self) -> None:
        def read(db: sqlite3.Connection) -> tuple[list[Any], ...]:
            return (
                db.execute("SELECT function, number, record FROM versions").fetchall(),
                db.execute("SELECT function, name, record FROM aliases").fetchall(),
                db.execute("SELECT function, last FROM version_numbers").fetchall(),
                db.execute(
                    "SELECT function, qualifier, requested, modified FROM provisioned"
                ).fetchall(),
            )

        versions, aliases, numbers, provisioned = await self._store.run(read)
        for function, number, text in versions:
            self._mine(function).versions[number] = self._version(function, number, text)
        for function, name, text in aliases:
            data = json.loads(text)
            self._mine(function).aliases[name] = AliasRecord(
                function,
                name,
                data["version"],
                tuple((v, float(w)) for v, w in data["weights"]),
                data["description"],
                data["revision_id"],
                data.get("managed", False),
            )
        for function, last in numbers:
            self._mine(function).last = last
        for function, qualifier, requested, modified in provisioned:
            self._mine(function).provisioned[qualifier] = Provisioned(requested, modified)

    def _version(self, function: str, number: int, text: str) -> Version:
        data = json.loads(text)
        return Version(
            function,
            number,
            spec_json.decode(data["spec"], self.root),
            data["revision"],
            data["seed"],
            data["config"],
            data.get("code_token"),
            data.get("snapshot"),
            data.get("managed", False),
        )

    def _mine(self, function: str) -> FunctionVersions:
        return self.functions.setdefault(function, FunctionVersions())

    async def add(self, version: Version) -> None:
        """Keep a newly published version (its number becomes the function's last)."""
        text = json.dumps(
            {
                "spec": spec_json.encode(version.spec, self.root),
                "revision": version.revision,
                "seed": version.seed,
                "config": dict(version.config),
                "code_token": version.code_token,
                "snapshot": version.snapshot,
                "managed": version.managed,
            }
        )

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO versions (function, number, record) VALUES (?, ?, ?)",
                (version.function, version.number, text),
            )
            db.execute(
                "INSERT INTO version_numbers (function, last) VALUES (?, ?) "
                "ON CONFLICT (function) DO UPDATE SET last = excluded.last",
                (version.function, version.number),
            )

        await self._store.run(write)
        mine = self._mine(version.function)
        mine.versions[version.number] = version
        mine.last = max(mine.last, version.number)

    async def remove(self, function: str, number: int) -> None:
        """Forget a version and the provisioned setting on it."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM versions WHERE function = ? AND number = ?", (function, number))
            db.execute(
                "DELETE FROM provisioned WHERE function = ? AND qualifier = ?",
                (function, str(number)),
            )

        await self._store.run(write)
        mine = self._mine(function)
        mine.versions.pop(number, None)
        mine.provisioned.pop(str(number), None)

    async def put_alias(self, alias: AliasRecord) -> None:
        text = json.dumps(
            {
                "version": alias.version,
                "weights": [list(pair) for pair in alias.weights],
                "description": alias.description,
                "revision_id": alias.revision_id,
                "managed": alias.managed,
            }
        )
        await self._store.run(
            lambda db: db.execute(
                "INSERT INTO aliases (function, name, record) VALUES (?, ?, ?) "
                "ON CONFLICT (function, name) DO UPDATE SET record = excluded.record",
                (alias.function, alias.name, text),
            )
        )
        self._mine(alias.function).aliases[alias.name] = alias

    async def remove_alias(self, function: str, name: str) -> None:
        """Forget an alias and the provisioned setting on it."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM aliases WHERE function = ? AND name = ?", (function, name))
            db.execute(
                "DELETE FROM provisioned WHERE function = ? AND qualifier = ?", (function, name)
            )

        await self._store.run(write)
        mine = self._mine(function)
        mine.aliases.pop(name, None)
        mine.provisioned.pop(name, None)

    async def put_provisioned(
        self, function: str, qualifier: str, setting: Provisioned | None
    ) -> None:
        """Keep (or, with None, forget) the provisioned setting of a version or an alias."""

        def write(db: sqlite3.Connection) -> None:
            if setting is None:
                db.execute(
                    "DELETE FROM provisioned WHERE function = ? AND qualifier = ?",
                    (function, qualifier),
                )
            else:
                db.execute(
                    "INSERT INTO provisioned (function, qualifier, requested, modified) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (function, qualifier) DO UPDATE SET "
                    "requested = excluded.requested, modified = excluded.modified",
                    (function, qualifier, setting.requested, setting.modified),
                )

        await self._store.run(write)
        mine = self._mine(function)
        if setting is None:
            mine.provisioned.pop(qualifier, None)
        else:
            mine.provisioned[qualifier] = setting

    async def drop(self, function: str) -> None:
        """Forget everything of a function that is deleted: the next one of its name starts
        again at version 1, as on Lambda."""

        def write(db: sqlite3.Connection) -> None:
            for table in ("versions", "aliases", "version_numbers", "provisioned"):
                db.execute(f"DELETE FROM {table} WHERE function = ?", (function,))

        await self._store.run(write)
        self.functions.pop(function, None)
