"""Function URL configurations made through the API (CreateFunctionUrlConfig), kept in the store
so they survive restarts, each with the port it is served on: a URL, once made, stays the same,
as Lambda's do. Read from memory; written before the API answers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.events.store import Store


@dataclass(frozen=True)
class UrlRecord:
    """One function URL's configuration, in Lambda's terms."""

    function: str
    qualifier: str | None  # an alias, or None for the unqualified function
    auth_type: str  # NONE | AWS_IAM
    port: int  # where it is served (kept across restarts)
    created: str  # CreationTime, as Lambda writes it
    modified: str  # LastModifiedTime
    cors: Mapping[str, Any] | None = None  # Lambda's Cors structure, as given
    invoke_mode: str | None = None  # None: never given (BUFFERED, which reads omit then)
    from_manifest: bool = False  # declared by the manifest's url: (not stored)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.function, self.qualifier or ""

    @property
    def mode(self) -> str:
        return self.invoke_mode or "BUFFERED"


class UrlStore:
    """The API's function URL configurations, by (function, qualifier)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.records: dict[tuple[str, str], UrlRecord] = {}

    async def load(self) -> None:
        def read(db: sqlite3.Connection) -> list[tuple[str]]:
            rows: list[tuple[str]] = db.execute("SELECT config FROM function_urls").fetchall()
            return rows

        for (text,) in await self._store.run(read):
            data = json.loads(text)
            record = UrlRecord(**data)
            self.records[record.key] = record

    async def put(self, record: UrlRecord) -> None:
        text = json.dumps(asdict(record))

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO function_urls (function, qualifier, config) VALUES (?, ?, ?) "
                "ON CONFLICT (function, qualifier) DO UPDATE SET config = excluded.config",
                (*record.key, text),
            )

        await self._store.run(write)
        self.records[record.key] = record

    async def delete(self, key: tuple[str, str]) -> None:
        def remove(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM function_urls WHERE function = ? AND qualifier = ?", key)

        await self._store.run(remove)
        self.records.pop(key, None)
