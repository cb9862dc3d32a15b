"""Invocation logs of a server, kept per function in files, written behind the invocations.

Invocations only append to a list in memory; a background task writes batches to
``<state dir>/logs/<function>.log`` from a thread, so no disk write sits in a request's path
(DESIGN D5). Output beyond what an invocation keeps in memory (``sandbox.output``) is spilled
here too, to ``<state dir>/logs/output/<function>-<request id>.out``, written the same way; when
it piles up faster than the disk takes it, the containers' output is read only as fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25


class Logged(Protocol):
    @property
    def log(self) -> str: ...


class LogBook:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: defaultdict[str, list[Logged]] = defaultdict(list)
        self._spilled: defaultdict[str, list[bytes]] = defaultdict(list)
        self._spilled_bytes = 0
        self._writing = asyncio.Lock()  # batches are written in the order they were taken

    def append(self, function: str, invocation: Logged) -> None:
        """Keep an invocation's log to be written; its text is put together by the writer."""
        self._pending[function].append(invocation)

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def spill_path(self, name: str) -> Path:
        return self.directory / "output" / f"{name}.out"

    # The spill of sandbox.output

    def spill(self, name: str, data: bytes) -> str:
        self._spilled[name].append(data)
        self._spilled_bytes += len(data)
        return str(self.spill_path(name))

    def backlog(self) -> int:
        return self._spilled_bytes

    async def drained(self) -> None:
        await self._flush_or_warn()

    async def _flush_or_warn(self) -> None:
        # A log that cannot be written must not stop the invocations (or the reading of a
        # container's output, whose runtime would then block on a full pipe).
        try:
            await self.flush()
        except OSError as exc:
            log.warning("invocation logs not written to %s: %s", self.directory, exc)

    # Writing

    def _write(self, batch: dict[str, str], spilled: dict[str, list[bytes]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for function, text in batch.items():
            with open(self.path(function), "a", encoding="utf-8") as f:
                f.write(text)
        if spilled:
            self.spill_path("x").parent.mkdir(exist_ok=True)
        for name, chunks in spilled.items():
            with open(self.spill_path(name), "ab") as out:
                out.writelines(chunks)

    async def flush(self) -> None:
        async with self._writing:
            if not (self._pending or self._spilled):
                return
            pending, self._pending = self._pending, defaultdict(list)
            spilled, self._spilled = self._spilled, defaultdict(list)
            # Text is put together here, on the loop: a thread doing Python work would hold the
            # interpreter lock against the loop; the write itself, a system call, does not.
            batch = {f: "".join(i.log for i in invocations) for f, invocations in pending.items()}
            try:
                await asyncio.to_thread(self._write, batch, spilled)
            finally:
                self._spilled_bytes -= sum(len(c) for chunks in spilled.values() for c in chunks)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self._flush_or_warn()
        finally:
            if self._pending or self._spilled:
                self._write(
                    {f: "".join(i.log for i in v) for f, v in self._pending.items()},
                    self._spilled,
                )
