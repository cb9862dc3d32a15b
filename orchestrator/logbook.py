"""Invocation logs of a server, kept per function in files, written behind the invocations.

Invocations only append to a list in memory; a background task writes batches to
``<state dir>/logs/<function>.log`` from a thread, so no disk write sits in a request's path
(DESIGN D5). Output beyond what an invocation keeps in memory (``sandbox.output``) is spilled
here too, to ``<state dir>/logs/output/<function>-<request id>.out``, written the same way; when
it piles up faster than the disk takes it, the containers' output is read only as fast.

A function must not be able to fill the disk (DESIGN D9), so all of it is bounded:
``<function>.log`` is rotated to ``<function>.log.1`` when it would grow past
``LOG_FILE_LIMIT`` (so a function's log takes at most twice that); one invocation spills at
most ``OUTPUT_LIMIT_BYTES`` (``sandbox.output`` cuts it); and ``logs/output`` as a whole is
kept under ``OUTPUT_TOTAL_LIMIT``, the oldest files removed first. Each limit can be set, in
MB, by an environment variable of ``lrun serve`` (``LRUN_LOG_FILE_LIMIT_MB``,
``LRUN_OUTPUT_LIMIT_MB``, ``LRUN_OUTPUT_TOTAL_LIMIT_MB``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25
MB = 1024 * 1024
LOG_FILE_LIMIT = 16 * MB
OUTPUT_LIMIT_BYTES = 64 * MB
OUTPUT_TOTAL_LIMIT = 512 * MB


@dataclass(frozen=True)
class LogLimits:
    log_file: int = LOG_FILE_LIMIT  # one function's log file, before it is rotated
    per_output: int = OUTPUT_LIMIT_BYTES  # one invocation's spilled output
    output_total: int = OUTPUT_TOTAL_LIMIT  # all spilled output together

    @classmethod
    def from_env(cls) -> LogLimits:
        return cls(
            limit_from_env("LRUN_LOG_FILE_LIMIT_MB", LOG_FILE_LIMIT),
            limit_from_env("LRUN_OUTPUT_LIMIT_MB", OUTPUT_LIMIT_BYTES),
            limit_from_env("LRUN_OUTPUT_TOTAL_LIMIT_MB", OUTPUT_TOTAL_LIMIT),
        )


class Logged(Protocol):
    @property
    def log(self) -> str: ...


# An invocation as the writer hands it on: function, result, its spec, its environment's stream.
Record = tuple[str, Any, Any, str]
Sink = Callable[[list[Record]], None]


def limit_from_env(variable: str, default: int) -> int:
    """A byte limit from an environment variable in MB (for tests and small disks)."""
    value = os.environ.get(variable, "")
    try:
        return max(1, int(float(value) * MB)) if value else default
    except ValueError:
        return default


class LogBook:
    def __init__(self, directory: Path, limits: LogLimits | None = None) -> None:
        self.directory = directory
        self.limits = limits or LogLimits()
        # Spilled files by path, oldest first, with their sizes (known once the writer has
        # looked at the directory): what keeps logs/output under its total limit.
        self._outputs: dict[Path, int] | None = None
        self._pending: defaultdict[str, list[Logged]] = defaultdict(list)
        self._spilled: defaultdict[str, list[bytes]] = defaultdict(list)
        self._spilled_bytes = 0
        self._writing = asyncio.Lock()  # batches are written in the order they were taken
        self._records: list[Record] = []
        # Given each batch of records: ``on_batch`` on the loop (counting), ``in_thread`` in the
        # writer's thread (storing); both behind the invocations, never in their path.
        self.on_batch: list[Sink] = []
        self.in_thread: list[Sink] = []

    def append(self, function: str, invocation: Logged) -> None:
        """Keep an invocation's log to be written; its text is put together by the writer."""
        self._pending[function].append(invocation)

    def record(self, function: str, invocation: Logged, spec: Any, stream: str) -> None:
        """``append``, with what the sinks need to know of the invocation."""
        self._pending[function].append(invocation)
        self._records.append((function, invocation, spec, stream))

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.log"

    def spill_path(self, name: str) -> Path:
        return self.directory / "output" / f"{name}.out"

    # The spill of sandbox.output

    @property
    def per_output(self) -> int:
        return self.limits.per_output

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

    def _write(
        self,
        batch: dict[str, str],
        spilled: dict[str, list[bytes]],
        records: list[Record] | None = None,
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if records:
            for sink in self.in_thread:
                try:
                    sink(records)
                except OSError as exc:
                    log.warning("invocation logs not stored: %s", exc)
        for function, text in batch.items():
            data = text.encode("utf-8", errors="replace")
            path = self.path(function)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.limits.log_file:
                os.replace(path, path.with_name(path.name + ".1"))
            with open(path, "ab") as f:
                f.write(data)
        if spilled:
            self.spill_path("x").parent.mkdir(exist_ok=True)
            outputs = self._known_outputs()
            for name, chunks in spilled.items():
                path = self.spill_path(name)
                with open(path, "ab") as out:
                    out.writelines(chunks)
                outputs[path] = outputs.pop(path, 0) + sum(len(c) for c in chunks)
            self._keep_outputs_under(self.limits.output_total, set(map(self.spill_path, spilled)))

    def _known_outputs(self) -> dict[Path, int]:
        if self._outputs is None:  # what earlier servers left, oldest first
            found: list[tuple[float, Path, int]] = []
            with contextlib.suppress(OSError), os.scandir(self.spill_path("x").parent) as it:
                for entry in it:
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        found.append((st.st_mtime, Path(entry.path), st.st_size))
            self._outputs = {path: size for _, path, size in sorted(found)}
        return self._outputs

    def _keep_outputs_under(self, limit: int, writing: set[Path]) -> None:
        """Remove the oldest spilled files until all of them fit ``limit``; files just written
        go last (an invocation's own output over the limit is cut by its per-output limit)."""
        outputs = self._known_outputs()
        total = sum(outputs.values())
        for path in [p for p in outputs if p not in writing] + [p for p in outputs if p in writing]:
            if total <= limit:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= outputs.pop(path)

    async def flush(self) -> None:
        async with self._writing:
            if not (self._pending or self._spilled):
                return
            pending, self._pending = self._pending, defaultdict(list)
            spilled, self._spilled = self._spilled, defaultdict(list)
            records, self._records = self._records, []
            # Text is put together here, on the loop: a thread doing Python work would hold the
            # interpreter lock against the loop; the write itself, a system call, does not.
            batch = {f: "".join(i.log for i in invocations) for f, invocations in pending.items()}
            for sink in self.on_batch:
                sink(records)
            try:
                await asyncio.to_thread(self._write, batch, spilled, records)
            finally:
                self._spilled_bytes -= sum(len(c) for chunks in spilled.values() for c in chunks)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                await self._flush_or_warn()
        finally:
            if self._pending or self._spilled:
                for sink in self.on_batch:
                    sink(self._records)
                self._write(
                    {f: "".join(i.log for i in v) for f, v in self._pending.items()},
                    self._spilled,
                    self._records,
                )
