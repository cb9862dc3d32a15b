"""Invocation logs of a server, kept per function in files, written behind the invocations.

Invocations only append to a list in memory; a background task writes batches to
``<state dir>/logs/<function>.log`` from a thread, so no disk write sits in a request's path
(DESIGN D5).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

FLUSH_INTERVAL_S = 0.25


class LogBook:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: defaultdict[str, list[str]] = defaultdict(list)

    def append(self, function: str, text: str) -> None:
        self._pending[function].append(text)

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def _write(self, batch: dict[str, list[str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for function, texts in batch.items():
            with open(self.path(function), "a", encoding="utf-8") as f:
                f.write("".join(texts))

    async def flush(self) -> None:
        if self._pending:
            batch, self._pending = dict(self._pending), defaultdict(list)
            await asyncio.to_thread(self._write, batch)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self.flush()
        finally:
            if self._pending:
                self._write(dict(self._pending))
