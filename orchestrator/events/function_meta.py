"""What Lambda's API keeps about a function beside its code and configuration: its tags, its
resource-based policy, its recursion setting. Kept in the store, by function name, so they survive
restarts; read from memory, so no request waits on the disk to read them.

Each change to tags or policy gives the function a new *stamp*, which its RevisionId folds in: on
AWS too, tagging a function or adding a permission changes its RevisionId.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.events.store import Store

RECURSION_DEFAULT = "Terminate"


@dataclass(frozen=True)
class Meta:
    tags: Mapping[str, str] = field(default_factory=dict)  # set through the API
    untagged: frozenset[str] = frozenset()  # keys of the manifest's tags removed through it
    statements: tuple[Mapping[str, Any], ...] = ()  # the policy's, in the order added
    recursion: str = RECURSION_DEFAULT
    stamp: str = ""


class FunctionMeta:
    """Every function's ``Meta``, kept in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._meta: dict[str, Meta] = {}

    async def load(self) -> None:
        rows = await self._store.run(
            lambda db: db.execute("SELECT function, data FROM function_meta").fetchall()
        )
        for function, text in rows:
            data = json.loads(text)
            self._meta[function] = Meta(
                dict(data["tags"]),
                frozenset(data.get("untagged", ())),
                tuple(data["statements"]),
                data["recursion"],
                data["stamp"],
            )

    def get(self, function: str) -> Meta:
        return self._meta.get(function, Meta())

    def stamp(self, function: str) -> str:
        return self.get(function).stamp

    async def change(self, function: str, edit: Callable[[Meta], Meta]) -> Meta:
        """Apply ``edit`` to a function's meta and store the result before returning it; a change
        of tags or policy stamps it anew."""
        before = self.get(function)
        after = edit(before)
        if (after.tags, after.untagged, after.statements) != (
            before.tags,
            before.untagged,
            before.statements,
        ):
            after = replace(after, stamp=str(uuid.uuid4()))
        text = json.dumps(
            {
                "tags": dict(after.tags),
                "untagged": sorted(after.untagged),
                "statements": list(after.statements),
                "recursion": after.recursion,
                "stamp": after.stamp,
            }
        )

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO function_meta (function, data) VALUES (?, ?) "
                "ON CONFLICT (function) DO UPDATE SET data = excluded.data",
                (function, text),
            )

        await self._store.run(write)
        self._meta[function] = after
        return after
