"""Event source mappings: which local queue is polled in batches for which function, and how.

Two kinds live side by side: those the manifest declares (``events: [{queue: ...}]``, read-only
through the API, with a UUID derived from function and queue so it stays the same across
restarts and reloads) and those created through the API's ``CreateEventSourceMapping``, kept in
the store (DESIGN D6) so they survive restarts. ``Sources`` polls every enabled one.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.events.store import Store
from orchestrator.manifest import Manifest
from orchestrator.manifest.event_filter import Filter, parse
from orchestrator.manifest.triggers import QueueSource

# Manifest mappings' UUIDs: uuid5 of this namespace and "function\0queue".
_NAMESPACE = uuid.UUID("6f1c9a52-3d0e-4b8e-9a57-3c1f2f0c7e41")
DEFAULT_CONCURRENCY = 2  # environments a mapping without ScalingConfig keeps busy at most


@dataclass(frozen=True)
class Mapping:
    uuid: str
    function: str
    queue: str
    batch_size: int = 10
    maximum_batching_window: int = 0  # seconds
    report_batch_item_failures: bool = False
    enabled: bool = True
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency; None: not set
    filters: tuple[str, ...] = ()  # FilterCriteria's patterns, as given
    last_modified: float = 0.0  # epoch seconds
    qualifier: str | None = None  # "$LATEST" when the function was named with it
    manifest: Path | None = None  # the manifest declaring it; None: created through the API

    @property
    def workers(self) -> int:
        return self.maximum_concurrency or DEFAULT_CONCURRENCY

    def compiled(self) -> tuple[Filter, ...]:
        return tuple(parse(text) for text in self.filters)


def manifest_uuid(function: str, queue: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{function}\0{queue}"))


def from_source(function: str, source: QueueSource, path: Path, when: float) -> Mapping:
    return Mapping(
        manifest_uuid(function, source.queue),
        function,
        source.queue,
        source.batch_size,
        source.maximum_batching_window,
        source.report_batch_item_failures,
        True,
        source.maximum_concurrency,
        source.filters,
        when,
        None,
        path,
    )


class Mappings:
    """Every mapping, the manifest's and the API's; the API's written through to the store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._declared: dict[str, Mapping] = {}
        self._created: dict[str, Mapping] = {}

    async def load(self) -> None:
        """Read the API's mappings from the store (at start)."""
        rows = await self._store.run(
            lambda db: db.execute("SELECT config FROM mappings").fetchall()
        )
        self._created = {}
        for (text,) in rows:
            mapping = _decode(text)
            self._created[mapping.uuid] = mapping

    def declare(self, manifest: Manifest) -> None:
        """Take the manifest's mappings (at start and on each reload)."""
        before = self._declared
        declared: dict[str, Mapping] = {}
        for function, triggers in manifest.triggers.items():
            for source in triggers.events:
                if isinstance(source, QueueSource):
                    mapping = from_source(function, source, manifest.path, self._clock())
                    old = before.get(mapping.uuid)
                    if (
                        old is not None
                        and dataclasses.replace(old, last_modified=mapping.last_modified) == mapping
                    ):
                        mapping = old  # unchanged: keeps its LastModified
                    declared[mapping.uuid] = mapping
        self._declared = declared

    def all(self) -> list[Mapping]:
        """Every mapping, oldest first (the order ListEventSourceMappings pages through)."""
        every = [*self._declared.values(), *self._created.values()]
        return sorted(every, key=lambda m: (m.last_modified, m.uuid))

    def get(self, key: str) -> Mapping | None:
        return self._declared.get(key) or self._created.get(key)

    def now(self) -> float:
        return self._clock()

    async def put(self, mapping: Mapping) -> None:
        """Store a mapping created or changed through the API."""
        text = _encode(mapping)
        await self._store.run(lambda db: _upsert(db, mapping.uuid, text))
        self._created[mapping.uuid] = mapping

    async def delete(self, key: str) -> None:
        await self._store.run(lambda db: db.execute("DELETE FROM mappings WHERE uuid = ?", (key,)))
        self._created.pop(key, None)


def _upsert(db: sqlite3.Connection, key: str, text: str) -> None:
    db.execute(
        "INSERT INTO mappings (uuid, config) VALUES (?, ?) "
        "ON CONFLICT (uuid) DO UPDATE SET config = excluded.config",
        (key, text),
    )


def _encode(mapping: Mapping) -> str:
    fields = dataclasses.asdict(mapping)
    fields["filters"] = list(mapping.filters)
    fields.pop("manifest")
    return json.dumps(fields)


def _decode(text: str) -> Mapping:
    fields = json.loads(text)
    fields["filters"] = tuple(fields.get("filters", ()))
    return Mapping(**fields)
