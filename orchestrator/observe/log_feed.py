"""An invocation's log as a record of the log store: its function's group, its environment's
stream, its start and end, its text. Runs in the log writer's thread (``LogBook.in_thread``)."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.logbook import Record, Sink
from orchestrator.manifest import FunctionSpec
from orchestrator.observe.log_store import LogStore
from orchestrator.sandbox.invocation import InvocationResult, LogParts


def invocation_record(
    function: str, result: Any, spec: Any, stream: str
) -> tuple[str, str, int, int, str] | None:
    """(group, stream, start ms, end ms, log text) of one invocation, or None without a stream."""
    if not stream or not isinstance(result, InvocationResult):
        return None
    group = (
        spec.logging.group(function)
        if isinstance(spec, FunctionSpec)
        else f"/aws/lambda/{function}"
    )
    raw = result.raw_log
    if isinstance(raw, LogParts) and raw.when.start:
        start, end = raw.when.start, raw.when.end
    else:
        start = end = time.time()
    return group, stream, int(start * 1000), int(end * 1000), result.log


def store_sinks(store: LogStore) -> tuple[Sink, Sink]:
    """``LogBook`` sinks that keep every record's log in ``store``: the first (``on_batch``, on
    the loop) encodes a batch, the second (``in_thread``) writes what was encoded."""
    encoded: list[tuple[str, str, int, int, int, bytes]] = []

    def encode(records: list[Record]) -> None:
        found = (invocation_record(*record) for record in records)
        encoded.extend(store.encode(r for r in found if r is not None))

    def write(records: list[Record]) -> None:
        lines = encoded[:]
        del encoded[: len(lines)]
        store.write(lines)

    return encode, write
