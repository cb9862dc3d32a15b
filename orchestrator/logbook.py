"""Invocation logs of a server, kept per function in files, written behind the invocations.

Invocations only append to a list in memory; a background task writes batches to
``<state dir>/logs/<function>.log`` from a thread, so no disk write sits in a request's path
(DESIGN D5).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Protocol

FLUSH_INTERVAL_S = 0.25


class Logged(Protocol):
    @property
    def log(self) -> str: ...


class LogBook:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: defaultdict[str, list[Logged]] = defaultdict(list)

    def append(self, function: str, invocation: Logged) -> None:
        """Keep an invocation's log to be written; its text is put together by the writer."""
        self._pending[function].append(invocation)

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def _write(self, batch: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for function, text in batch.items():
            with open(self.path(function), "a", encoding="utf-8") as f:
                f.write(text)

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, defaultdict(list)
            # Text is put together here, on the loop: a thread doing Python work would hold the
            # interpreter lock against the loop; the write itself, a system call, does not.
            batch = {f: "".join(i.log for i in invocations) for f, invocations in pending.items()}
            await asyncio.to_thread(self._write, batch)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self.flush()
        finally:
            if self._pending:
                self._write({f: "".join(i.log for i in v) for f, v in self._pending.items()})
