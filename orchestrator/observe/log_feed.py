"""An invocation's log as CloudWatch events: one per line, in its function's group and its
environment's stream. Runs in the log writer's thread (``LogBook.in_thread``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from orchestrator.logbook import Record
from orchestrator.manifest import FunctionSpec
from orchestrator.observe.log_store import LogStore
from orchestrator.sandbox.invocation import InvocationResult, LogParts

_CLOSING = ("END RequestId:", "REPORT RequestId:", '{"time"')


def invocation_events(
    function: str, result: Any, spec: Any, stream: str
) -> Iterator[tuple[str, str, int, str]]:
    """(group, stream, timestamp ms, message) for each line of one invocation's log. Lines up
    to END are stamped with the invocation's start, END and REPORT with its end (the text
    format's lines carry no time of their own)."""
    if not stream or not isinstance(result, InvocationResult):
        return
    group = (
        spec.logging.group(function)
        if isinstance(spec, FunctionSpec)
        else f"/aws/lambda/{function}"
    )
    now = time.time()
    start = end = now
    if isinstance(result.raw_log, LogParts) and result.raw_log.when.start:
        start, end = result.raw_log.when.start, result.raw_log.when.end
    start_ms, end_ms = int(start * 1000), int(end * 1000)
    ended = False
    for line in result.log.splitlines():
        if not line:
            continue
        ended = ended or line.startswith(_CLOSING[:2]) or '"type":"platform.report"' in line
        yield group, stream, end_ms if ended else start_ms, line


def store_sink(store: LogStore) -> Any:
    """A ``LogBook.in_thread`` sink that keeps every record's events in ``store``."""

    def sink(records: list[Record]) -> None:
        store.add(event for record in records for event in invocation_events(*record))

    return sink
