"""Functions created through Lambda's API (CreateFunction), kept in the store so they survive
restarts. Their code is unzipped under the state directory in a directory lrun names
(``functions/<token>``, with the zip beside it as ``<token>.zip`` for GetFunction's download);
the record names only the token, never a path from a request.

Read from memory; written through the store before a change is acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from orchestrator.events.store import Store
from orchestrator.manifest.logging_config import LoggingConfig


@dataclass(frozen=True)
class ApiFunction:
    """A function as CreateFunction and the updates left it."""

    name: str
    package_type: str  # "Zip" | "Image"
    runtime: str | None  # as the caller named it (e.g. provided.al2023)
    handler: str | None
    image_uri: str | None
    role: str
    memory: int
    timeout: int
    ephemeral_storage: int
    environment: Mapping[str, str]
    description: str
    architectures: tuple[str, ...]
    code_token: str | None  # the code's directory under functions/ (zip functions)
    code_sha256: str  # base64 of the zip's (or image name's) SHA-256, as AWS shows it
    code_size: int
    last_modified: float  # epoch seconds
    revision: str = field(default="")  # changes with every update: the RevisionId's seed
    has_environment: bool = False  # Environment was given: AWS shows it then, even empty
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    layers: tuple[str, ...] = ()  # the layer version ARNs it uses, in order

    def to_json(self) -> str:
        data = asdict(self)
        data["environment"] = dict(self.environment)
        data["architectures"] = list(self.architectures)
        data["layers"] = list(self.layers)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ApiFunction:
        data: dict[str, Any] = json.loads(text)
        data["environment"] = dict(data["environment"])
        data["architectures"] = tuple(data["architectures"])
        if isinstance(data.get("logging"), dict):  # records stored before it have none
            data["logging"] = LoggingConfig(**data["logging"])
        data["layers"] = tuple(data.get("layers", ()))
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class ApiFunctions:
    """Every API-created function's record, kept in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.records: dict[str, ApiFunction] = {}

    async def load(self) -> None:
        rows = await self._store.run(
            lambda db: db.execute("SELECT name, record FROM api_functions").fetchall()
        )
        for name, text in rows:
            self.records[name] = ApiFunction.from_json(text)

    async def put(self, record: ApiFunction) -> None:
        text = record.to_json()

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO api_functions (name, record) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                (record.name, text),
            )

        await self._store.run(write)
        self.records[record.name] = record

    async def delete(self, name: str) -> None:
        await self._store.run(
            lambda db: db.execute("DELETE FROM api_functions WHERE name = ?", (name,))
        )
        self.records.pop(name, None)
