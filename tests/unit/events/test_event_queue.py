"""Unit tests for orchestrator.eventqueue: asynchronous invocations, for real, on a fake engine.

A real Store on a temporary file, a real Service on ``tests.fakes.FakeBackend`` (its runtimes
speak the Runtime API and run the handlers below), real Queues for destinations and dead-letter
queues, and an EventQueue whose clock the test controls where time matters: the dispatcher reads
due times from that clock, so a test advances it and wakes the dispatcher by accepting another
event (``Harness.nudge``). Where real time is simpler, retries use a ``retry_delay`` of 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import StoreFailed
from orchestrator.events import event_queue
from orchestrator.events.event_queue import ERROR_MESSAGE_LIMIT, EventQueue, EventStats
from orchestrator.events.queues import Queues, Received
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import AsyncConfig, Destination
from tests.fakes import Clock, FakeContext, Handler, Served, eventually, fake_service, run

T = TypeVar("T")
TIMEOUT_S = 4.0  # per scenario: a bug must fail a test, never hang it
START = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
START_STAMP = "2023-11-14T22:13:20.250Z"
FAST = AsyncConfig(retry_delay=0.05)  # the default here: Lambda's, with quick retries
FUNCTIONS = ("count", "fail", "ok", "slow")


def file_at(base: Path, path: Path) -> Destination:
    """A file destination as the manifest (in ``base``) declares it: relative to it."""
    return Destination("file", path.relative_to(base).as_posix())


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}:$LATEST"


@dataclass
class Harness:
    """One test's world: the service, the store, queues, the event queue and what happened."""

    served: Served
    store: Store
    queues: Queues
    events: EventQueue
    clock: Callable[[], float]
    configs: dict[str, AsyncConfig]
    gate: asyncio.Event  # "slow" invocations wait for it
    calls: dict[str, list[tuple[Any, str]]]  # function -> (event, request id) per invocation
    messages: list[str] = field(default_factory=list)  # the event queue's on_event
    dispatcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.dispatcher = asyncio.ensure_future(self.events.run())

    async def stop(self) -> None:
        """Cancel the dispatcher, again if need be: on Python 3.11 its ``asyncio.wait_for``
        can swallow a cancellation (see the test of that below)."""
        if self.dispatcher is not None:
            while not self.dispatcher.done():
                self.dispatcher.cancel()
                await asyncio.wait([self.dispatcher], timeout=0.05)
            await asyncio.gather(self.dispatcher, return_exceptions=True)
            self.dispatcher = None

    async def accept(self, function: str, event: object, request_id: str | None = None) -> str:
        request_id = request_id or str(uuid.uuid4())
        await self.events.accept(function, json.dumps(event).encode(), request_id)
        return request_id

    async def nudge(self) -> None:
        """Wake the dispatcher (an accepted event does), e.g. after the clock moved."""
        await self.accept("ok", {"nudge": True})

    def request_ids(self, function: str) -> list[str]:
        return [request_id for _, request_id in self.calls[function]]

    async def rows(self) -> dict[str, tuple[Any, ...]]:
        """The events table: request id -> (function, attempts, next_at, last_error)."""
        found = await self.store.run(
            lambda db: db.execute(
                "SELECT request_id, function, attempts, next_at, last_error FROM events"
            ).fetchall()
        )
        return {row[0]: tuple(row[1:]) for row in found}

    async def drained(self, timeout: float = 2.0) -> None:
        """Wait until no event is left in the store."""
        deadline = time.monotonic() + timeout
        while await self.rows():
            assert time.monotonic() < deadline, f"events left: {await self.rows()}"
            await asyncio.sleep(0.01)


def write_manifest(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# the fake backend runs handlers from its registry\n")
    lines = ["functions:"]
    for name in FUNCTIONS:
        lines.append(f"  {name}: {{runtime: python3.13, code: ./code, handler: app.{name}}}")
    path = tmp_path / "lrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def handlers_for(
    calls: dict[str, list[tuple[Any, str]]], gate: asyncio.Event
) -> dict[str, Handler]:
    def ok(event: Any, context: FakeContext) -> Any:
        calls["ok"].append((event, context.aws_request_id))
        return event

    def fail(event: Any, context: FakeContext) -> None:
        calls["fail"].append((event, context.aws_request_id))
        raise ValueError(event.get("message", "boom") if isinstance(event, dict) else "boom")

    def count(event: Any, context: FakeContext) -> dict[str, int]:
        calls["count"].append((event, context.aws_request_id))
        return {"count": len(calls["count"])}

    async def slow(event: Any, context: FakeContext) -> Any:
        calls["slow"].append((event, context.aws_request_id))
        await gate.wait()
        return event

    return {"app.ok": ok, "app.fail": fail, "app.count": count, "app.slow": slow}


def scenario(
    tmp_path: Path,
    test: Callable[[Harness], Awaitable[T]],
    configs: Mapping[str, AsyncConfig] | None = None,
    clock: Callable[[], float] = time.time,
    queues: tuple[str, ...] = ("dlq", "failures"),
    host_limit: int = 10,
    store_type: type[Store] = Store,
) -> T:
    """Run ``test`` in a fresh world; the store's file (in ``tmp_path``) outlives it."""

    async def main() -> T:
        async with harness(
            tmp_path, dict(configs or {}), clock, queues, host_limit, store_type
        ) as h:
            return await test(h)

    return run(main(), TIMEOUT_S)


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path,
    configs: dict[str, AsyncConfig],
    clock: Callable[[], float],
    queue_names: tuple[str, ...],
    host_limit: int,
    store_type: type[Store] = Store,
) -> AsyncIterator[Harness]:
    store = store_type(tmp_path / "state" / "lrun.db")
    await asyncio.to_thread(store.open)
    calls: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    gate = asyncio.Event()
    try:
        handlers = handlers_for(calls, gate)
        manifest = write_manifest(tmp_path)
        async with fake_service(manifest, handlers, host_limit=host_limit) as served:
            queues = Queues(store)
            for name in queue_names:
                await queues.create(name)
            messages: list[str] = []
            events = EventQueue(
                store,
                served.service,
                lambda name, qualifier: configs.get(name, FAST),
                queues.send_in,
                messages.append,
                clock,
            )
            h = Harness(served, store, queues, events, clock, configs, gate, calls, messages)
            try:
                yield h
            finally:
                await h.stop()
                gate.set()
                await events.close(0.5)
    finally:
        await asyncio.to_thread(store.close)


async def rows_when(
    h: Harness, done: Callable[[dict[str, tuple[Any, ...]]], bool]
) -> dict[str, tuple[Any, ...]]:
    """The events table once ``done(rows)``, polling the store."""
    deadline = time.monotonic() + 2.0
    while not done(rows := await h.rows()):
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.01)
    return rows


async def settled_row(
    h: Harness, request_id: str, done: Callable[[tuple[Any, ...]], bool]
) -> tuple[Any, ...]:
    """The event's row once ``done(row)``."""
    rows = await rows_when(h, lambda rows: request_id in rows and done(rows[request_id]))
    return rows[request_id]


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The file destination's records: its complete lines (one may be being written)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1]]


async def lines_when(path: Path, count: int = 1) -> list[dict[str, Any]]:
    await eventually(lambda: len(read_lines(path)) >= count, what=f"{count} lines in {path}")
    return read_lines(path)


async def receive_all(queues: Queues, name: str) -> list[Received]:
    return await queues.receive(name, 100)


def attribute(data_type: str, value: str) -> dict[str, Any]:
    """A message attribute as lrun's queues show it (Lambda's SQS record shape)."""
    return {
        "stringValue": value,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": data_type,
    }


# Accepting


def test_accept_writes_the_event_durably_before_it_returns(tmp_path: Path) -> None:
    clock = Clock(START)

    async def test(h: Harness) -> None:
        await h.events.accept("ok", b'{"n": 1}', "req-1")
        # Another connection sees it: committed, not only written.
        with sqlite3.connect(tmp_path / "state" / "lrun.db") as other:
            rows = other.execute(
                "SELECT request_id, function, payload, received, attempts, next_at, last_error "
                "FROM events"
            ).fetchall()
        other.close()
        assert rows == [("req-1", "ok", b'{"n": 1}', START, 0, START, None)]

    scenario(tmp_path, test, clock=clock)


# Success


def test_a_success_goes_to_the_on_success_file_in_lambdas_record_shape(tmp_path: Path) -> None:
    out = tmp_path / "out" / "ok.jsonl"
    configs = {"ok": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("ok", {"order": 7, "items": ["a"]}, "req-ok")
        [record] = await lines_when(out)
        assert record == {
            "version": "1.0",
            "timestamp": START_STAMP,
            "requestContext": {
                "requestId": "req-ok",
                "functionArn": arn("ok"),
                "condition": "Success",
                "approximateInvokeCount": 1,
            },
            "requestPayload": {"order": 7, "items": ["a"]},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": {"order": 7, "items": ["a"]},
        }
        await h.drained()
        assert h.request_ids("ok") == ["req-ok"]

    scenario(tmp_path, test, configs, clock=Clock(START))


def test_the_timestamp_has_milliseconds_and_a_z(tmp_path: Path) -> None:
    out = tmp_path / "ok.jsonl"
    clock = Clock(START)
    clock.now = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, datetime.UTC).timestamp()

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("ok", {})
        [record] = await lines_when(out)
        assert record["timestamp"] == "2026-01-02T03:04:05.678Z"

    scenario(tmp_path, test, {"ok": AsyncConfig(on_success=file_at(tmp_path, out))}, clock)


# Function errors: retries, on-failure, dead-letter queue


def test_a_function_error_is_retried_then_goes_to_on_failure_and_the_dlq(tmp_path: Path) -> None:
    message = "€" * 1700  # 5100 bytes of UTF-8
    payload = {"message": message}
    configs = {
        "fail": AsyncConfig(
            maximum_retry_attempts=2,
            retry_delay=0.05,
            on_failure=Destination("queue", "failures"),
            dead_letter_queue="dlq",
        )
    }

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("fail", payload, "req-fail")
        await h.drained()
        assert h.request_ids("fail") == ["req-fail"] * 3  # one attempt and two retries

        [failure] = await receive_all(h.queues, "failures")
        record = json.loads(failure.body)
        assert record["version"] == "1.0"
        assert record["requestContext"] == {
            "requestId": "req-fail",
            "functionArn": arn("fail"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        }
        assert record["requestPayload"] == payload
        assert record["responseContext"] == {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        assert record["responsePayload"]["errorMessage"] == message
        assert record["responsePayload"]["errorType"] == "ValueError"

        [dead] = await receive_all(h.queues, "dlq")
        assert json.loads(dead.body) == payload  # the original event, as it was sent
        assert dead.attributes["RequestID"] == attribute("String", "req-fail")
        assert dead.attributes["ErrorCode"] == attribute("Number", "200")
        shown = dead.attributes["ErrorMessage"]
        assert shown["dataType"] == "String"
        assert len(shown["stringValue"].encode()) <= ERROR_MESSAGE_LIMIT == 1024
        assert shown["stringValue"] == "€" * 341  # as much as fits, whole characters only
        assert set(dead.attributes) == {"RequestID", "ErrorCode", "ErrorMessage"}
        assert any("discarded (RetriesExhausted)" in m for m in h.messages)

    scenario(tmp_path, test, configs)


def test_retry_delays_double_and_the_error_is_kept(tmp_path: Path) -> None:
    clock = Clock(START)
    out = tmp_path / "failed.jsonl"
    configs = {
        "fail": AsyncConfig(
            maximum_retry_attempts=2, retry_delay=10.0, on_failure=file_at(tmp_path, out)
        )
    }

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("fail", {"message": "try again"}, "req")

        async def row_after(attempts: int) -> tuple[Any, ...]:
            await eventually(lambda: len(h.calls["fail"]) == attempts, what=f"attempt {attempts}")
            return await settled_row(h, "req", lambda row: row[1] == attempts)

        assert await row_after(1) == ("fail", 1, START + 10.0, "try again")
        clock.advance(9.0)
        await h.nudge()
        await asyncio.sleep(0.05)
        assert len(h.calls["fail"]) == 1  # not due yet
        clock.advance(1.0)
        await h.nudge()
        assert await row_after(2) == ("fail", 2, START + 10.0 + 20.0, "try again")
        clock.advance(20.0)
        await h.nudge()
        [record] = await lines_when(out)
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["timestamp"] == "2023-11-14T22:13:50.250Z"  # START + 30 s
        await h.drained()

    scenario(tmp_path, test, configs, clock)


def test_no_retries_means_one_invocation(tmp_path: Path) -> None:
    out = tmp_path / "failed.jsonl"
    configs = {"fail": AsyncConfig(maximum_retry_attempts=0, on_failure=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("fail", {}, "only-once")
        [record] = await lines_when(out)
        await h.drained()
        assert h.request_ids("fail") == ["only-once"]
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["responsePayload"]["errorMessage"] == "boom"

    scenario(tmp_path, test, configs)


# Destinations


def test_a_function_destination_gets_the_record_as_a_new_event(tmp_path: Path) -> None:
    configs = {"ok": AsyncConfig(on_success=Destination("function", "count"))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("ok", {"hello": "world"}, "req-source")
        await eventually(lambda: h.calls["count"], what="the destination function")
        await h.drained()
        [(event, request_id)] = h.calls["count"]
        assert request_id != "req-source"  # an invocation of its own
        assert event["requestContext"]["requestId"] == "req-source"
        assert event["requestContext"]["functionArn"] == arn("ok")
        assert event["requestContext"]["condition"] == "Success"
        assert event["requestPayload"] == {"hello": "world"}
        assert event["responsePayload"] == {"hello": "world"}

    scenario(tmp_path, test, configs)


def test_a_missing_destination_queue_does_not_keep_the_event(tmp_path: Path) -> None:
    configs = {
        "ok": AsyncConfig(on_success=Destination("queue", "nowhere")),
        "fail": AsyncConfig(maximum_retry_attempts=0, dead_letter_queue="no-dlq"),
    }

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("ok", {}, "to-nowhere")
        await h.accept("fail", {}, "to-no-dlq")
        await h.drained()
        await asyncio.sleep(0.05)
        assert h.request_ids("ok") == ["to-nowhere"]  # dropped, not run again
        assert h.request_ids("fail") == ["to-no-dlq"]
        assert any(
            "could not deliver an event's record to queue 'nowhere'" in m for m in h.messages
        )
        assert any("queue 'no-dlq'" in m for m in h.messages)

    scenario(tmp_path, test, configs)


def test_a_file_destination_that_cannot_be_written_does_not_rerun_the_function(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the destination's directory should be\n")
    configs = {"count": AsyncConfig(on_success=file_at(tmp_path, blocker / "ok.jsonl"))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("count", {}, "req")
        await eventually(lambda: h.calls["count"], what="the first invocation")
        await asyncio.sleep(0.2)
        assert h.request_ids("count") == ["req"]

    scenario(tmp_path, test, configs, clock=Clock(START))


@pytest.mark.parametrize("planted", ["absolute", "directory link", "file link"])
def test_a_file_destination_never_writes_outside_the_manifests_directory(
    tmp_path: Path, planted: str
) -> None:
    # A setting kept by an older lrun (an absolute path), or a link planted after loading.
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    victim = outside / "victim.jsonl"
    victim.write_text("original\n")
    target = "out/ok.jsonl"
    if planted == "absolute":
        target = str(victim)
    elif planted == "directory link":
        os.symlink(outside, tmp_path / "out")
        target = "out/victim.jsonl"
    else:
        (tmp_path / "out").mkdir()
        os.symlink(victim, tmp_path / "out" / "ok.jsonl")
    configs = {"count": AsyncConfig(on_success=Destination("file", target))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("count", {"attack": True}, "req")
        await h.drained()
        assert h.request_ids("count") == ["req"]  # reported, not retried
        assert any("could not write an event's record" in m for m in h.messages), h.messages

    scenario(tmp_path, test, configs)
    assert victim.read_text() == "original\n"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.jsonl"]


# The store failing (issue 8, finding 8: a full disk)


class FailingStore(Store):
    """A real store that fails every job, as SQLite does when the disk is full, while
    ``failing`` is set (even reads: the dispatcher must survive the worst)."""

    failing = False

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self.failing:
            raise StoreFailed(
                f"lrun could not write its store {self.path} (database or disk is full)"
            )
        return await super().run(work)

    async def rows_anyway(self) -> list[tuple[Any, ...]]:
        return await super().run(
            lambda db: db.execute("SELECT request_id, attempts FROM events").fetchall()
        )


@pytest.fixture
def quick_store_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_queue, "STORE_RETRY_S", 0.02)


def full(h: Harness) -> FailingStore:
    assert isinstance(h.store, FailingStore)
    return h.store


def test_an_event_is_refused_while_the_disk_is_full_and_taken_again_after(
    tmp_path: Path,
) -> None:
    # Real SQLite: the database may not grow (as on a full disk), so the insert fails.
    async def test(h: Harness) -> None:
        h.start()
        await h.store.run(lambda db: db.execute("PRAGMA max_page_count = 1"))
        with pytest.raises(StoreFailed) as refused:
            await h.accept("count", {"big": "x" * 200_000}, "refused")
        assert "database or disk is full" in refused.value.message
        assert refused.value.status == 500 and refused.value.error_type == "ServiceException"
        assert any("Event invocations are refused" in m for m in h.messages)
        await asyncio.sleep(0.1)
        assert h.calls["count"] == []
        await h.store.run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        await h.accept("count", {"big": "x" * 200_000}, "taken")
        await h.drained()
        assert h.request_ids("count") == ["taken"]
        assert any("is written again" in m for m in h.messages)

    scenario(tmp_path, test)


def test_an_outcome_the_store_could_not_record_is_never_run_again(
    tmp_path: Path, quick_store_retries: None
) -> None:
    out = tmp_path / "ok.jsonl"
    configs = {"slow": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("slow", {"n": 1}, "req")
        await eventually(lambda: h.calls["slow"], what="the invocation")
        full(h).failing = True
        h.gate.set()  # the function ends; its outcome cannot be recorded
        await lines_when(out)
        await asyncio.sleep(0.3)  # many dispatcher rounds, the store failing every one
        assert h.request_ids("slow") == ["req"]
        assert h.dispatcher is not None and not h.dispatcher.done()
        assert await full(h).rows_anyway() == [("req", 0)]  # still there, not run again
        full(h).failing = False
        await h.drained()
        assert h.request_ids("slow") == ["req"]
        assert len(read_lines(out)) == 1  # the record was not written twice either

    scenario(tmp_path, test, configs, store_type=FailingStore)


def test_a_retry_the_store_could_not_record_does_not_cost_an_extra_attempt(
    tmp_path: Path, quick_store_retries: None
) -> None:
    out = tmp_path / "failed.jsonl"
    configs = {
        "fail": AsyncConfig(
            maximum_retry_attempts=1, retry_delay=0.05, on_failure=file_at(tmp_path, out)
        )
    }

    async def test(h: Harness) -> None:
        await h.accept("fail", {}, "req")
        full(h).failing = True
        h.start()  # the dispatcher cannot even read: it waits
        await asyncio.sleep(0.2)
        assert h.calls["fail"] == []
        full(h).failing = False
        await eventually(lambda: h.calls["fail"], what="the first attempt")
        full(h).failing = True  # its retry cannot be recorded
        await asyncio.sleep(0.3)
        assert h.request_ids("fail") == ["req"]
        full(h).failing = False
        [record] = await lines_when(out)
        await h.drained()
        assert h.request_ids("fail") == ["req", "req"]  # 1 + maximum_retry_attempts
        assert record["requestContext"]["approximateInvokeCount"] == 2

    scenario(tmp_path, test, configs, store_type=FailingStore)


def test_the_dispatcher_goes_on_when_the_store_comes_back(
    tmp_path: Path, quick_store_retries: None
) -> None:
    async def test(h: Harness) -> None:
        full(h).failing = True
        h.start()
        await asyncio.sleep(0.2)
        assert h.dispatcher is not None and not h.dispatcher.done()
        with pytest.raises(StoreFailed):
            await h.accept("count", {}, "refused")
        full(h).failing = False
        await h.accept("count", {}, "after")
        await h.drained()
        assert h.request_ids("count") == ["after"]
        assert sum("Event invocations are refused" in m for m in h.messages) == 1  # said once

    scenario(tmp_path, test, store_type=FailingStore)


# Discards without an invocation


def test_an_event_older_than_its_maximum_age_is_discarded_without_invocation(
    tmp_path: Path,
) -> None:
    clock = Clock(START)
    out = tmp_path / "failed.jsonl"
    configs = {
        "ok": AsyncConfig(
            maximum_event_age=60, on_failure=file_at(tmp_path, out), dead_letter_queue="dlq"
        )
    }

    async def test(h: Harness) -> None:
        await h.accept("ok", {"stale": True}, "req-old")
        clock.advance(61.0)
        h.start()
        [record] = await lines_when(out)
        await h.drained()
        assert h.calls["ok"] == []
        assert record == {
            "version": "1.0",
            "timestamp": "2023-11-14T22:14:21.250Z",
            "requestContext": {
                "requestId": "req-old",
                "functionArn": arn("ok"),
                "condition": "EventAgeExceeded",
                "approximateInvokeCount": 0,
            },
            "requestPayload": {"stale": True},
        }
        [dead] = await receive_all(h.queues, "dlq")
        assert json.loads(dead.body) == {"stale": True}
        assert dead.attributes["RequestID"] == attribute("String", "req-old")
        assert dead.attributes["ErrorCode"]["dataType"] == "Number"

    scenario(tmp_path, test, configs, clock)


def test_an_event_within_its_maximum_age_runs(tmp_path: Path) -> None:
    clock = Clock(START)

    async def test(h: Harness) -> None:
        await h.accept("ok", {}, "req")
        clock.advance(59.0)
        h.start()
        await h.drained()
        assert h.request_ids("ok") == ["req"]

    scenario(tmp_path, test, {"ok": AsyncConfig(maximum_event_age=60)}, clock)


def test_reserved_concurrency_zero_discards_without_invocation(tmp_path: Path) -> None:
    out = tmp_path / "failed.jsonl"
    configs = {"ok": AsyncConfig(on_failure=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.served.service.set_reserved("ok", 0)
        h.start()
        await h.accept("ok", {"n": 1}, "req-zero")
        [record] = await lines_when(out)
        await h.drained()
        assert h.calls["ok"] == []
        assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert "responseContext" not in record and "responsePayload" not in record
        assert any("discarded (ZeroReservedConcurrency)" in m for m in h.messages)

    scenario(tmp_path, test, configs, clock=Clock(START))


# Throttles and platform errors: backed off, not attempts


def test_a_throttled_event_is_backed_off_and_runs_later(tmp_path: Path) -> None:
    clock = Clock(START)
    out = tmp_path / "counted.jsonl"
    configs = {"count": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("slow", {}, "holder")  # takes the host's only environment
        await eventually(lambda: h.calls["slow"], what="the first invocation")
        await h.accept("count", {"n": 1}, "throttled")
        await eventually(lambda: h.served.service.functions["count"].throttles >= 1)
        # Back in the store, due after the first back-off (1 s); no attempt counted.
        row = await settled_row(h, "throttled", lambda row: row[2] != START)
        assert row == ("count", 0, START + 1.0, None)
        assert h.calls["count"] == []

        h.gate.set()
        await eventually(lambda: "holder" not in h.events._running, what="the holder's end")
        await asyncio.sleep(0.05)
        assert h.calls["count"] == []  # not before its back-off ends
        clock.advance(1.0)
        await h.nudge()
        [record] = await lines_when(out)
        await rows_when(h, lambda rows: "throttled" not in rows)
        assert h.request_ids("count") == ["throttled"]
        assert record["requestContext"]["requestId"] == "throttled"
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1  # throttles don't count

    scenario(tmp_path, test, configs, clock, host_limit=1)


def test_an_event_waits_while_its_reserved_concurrency_is_taken(tmp_path: Path) -> None:
    clock = Clock(START)
    out = tmp_path / "ok.jsonl"
    configs = {"slow": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.served.service.set_reserved("slow", 1)
        h.start()
        await h.accept("slow", {"n": 1}, "holder")
        await eventually(lambda: h.calls["slow"], what="the first invocation")
        await h.accept("slow", {"n": 2}, "second")
        await asyncio.sleep(0.1)
        assert h.request_ids("slow") == ["holder"]  # one at a time
        assert (await h.rows())["second"][:2] == ("slow", 0)  # kept, no attempt counted

        h.gate.set()
        await lines_when(out, 1)
        clock.advance(1.0)  # past a throttle's first back-off, if it was throttled
        await h.nudge()
        records = await lines_when(out, 2)
        await h.drained()
        assert h.request_ids("slow") == ["holder", "second"]
        assert records[1]["requestContext"]["requestId"] == "second"
        assert records[1]["requestContext"]["approximateInvokeCount"] == 1

    scenario(tmp_path, test, configs, clock)


def test_the_dispatcher_does_not_spin_while_a_function_is_at_its_limit(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.served.service.set_reserved("slow", 1)
        h.start()
        await h.accept("slow", {}, "holder")
        await eventually(lambda: h.calls["slow"], what="the first invocation")
        await h.accept("slow", {}, "waiting")
        await asyncio.sleep(0.05)
        runs = 0
        run_work = h.store.run

        async def counted(work: Callable[[sqlite3.Connection], T]) -> T:
            nonlocal runs
            runs += 1
            return await run_work(work)

        h.store.run = counted  # type: ignore[method-assign]
        await asyncio.sleep(0.2)
        h.store.run = run_work  # type: ignore[method-assign]
        assert runs < 10  # woken by the holder's end (or once a second), not continuously

    scenario(tmp_path, test, clock=Clock(START))


BACKLOG = 200  # more than one round fetches: the old dispatcher fetched 4 x its room


def test_a_backlog_of_a_function_at_its_limit_does_not_hold_up_another(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.served.service.set_reserved("slow", 1)
        h.start()
        await h.accept("slow", {}, "holder")
        await eventually(lambda: h.calls["slow"], what="the first invocation")
        for n in range(BACKLOG):
            await h.accept("slow", {"n": n}, f"slow-{n}")
        await h.accept("ok", {}, "behind-the-backlog")
        await eventually(lambda: h.calls["ok"], what="ok's event, behind slow's backlog")
        assert h.request_ids("slow") == ["holder"]  # still one at a time
        h.gate.set()

    scenario(tmp_path, test, clock=Clock(START))


def test_a_long_backlog_waiting_for_room_does_not_keep_the_dispatcher_busy(
    tmp_path: Path,
) -> None:
    async def test(h: Harness) -> None:
        h.served.service.set_reserved("slow", 1)
        h.start()
        await h.accept("slow", {}, "holder")
        await eventually(lambda: h.calls["slow"], what="the first invocation")
        for n in range(BACKLOG):
            await h.accept("slow", {"n": n}, f"slow-{n}")
        await asyncio.sleep(0.05)
        runs = 0
        run_work = h.store.run

        async def counted(work: Callable[[sqlite3.Connection], T]) -> T:
            nonlocal runs
            runs += 1
            return await run_work(work)

        h.store.run = counted  # type: ignore[method-assign]
        await asyncio.sleep(0.2)
        h.store.run = run_work  # type: ignore[method-assign]
        assert runs < 10  # woken by the holder's end (or once a second), not continuously
        h.gate.set()

    scenario(tmp_path, test, clock=Clock(START))


def test_a_platform_error_is_backed_off_and_reported(tmp_path: Path) -> None:
    clock = Clock(START)

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("no-such-function", {}, "req-lost")
        await eventually(lambda: any("will retry" in m for m in h.messages), what="a report")
        row = await settled_row(h, "req-lost", lambda row: row[2] != START)
        assert row == ("no-such-function", 0, START + 1.0, None)
        [report] = [m for m in h.messages if "will retry" in m]
        assert report.startswith("no-such-function: event req-lost: ")

    scenario(tmp_path, test, clock=clock)


# Seeing it


def test_stats_show_depth_age_retries_in_flight_and_dead_letters(tmp_path: Path) -> None:
    clock = Clock(START)
    configs = {"fail": AsyncConfig(retry_delay=100.0, dead_letter_queue="dlq")}
    asked: list[str] = []

    def dead_letter_depth(queue: str) -> int | None:
        asked.append(queue)
        return {"dlq": 3}.get(queue)

    async def test(h: Harness) -> None:
        await h.accept("ok", {}, "ok-1")
        clock.advance(5.0)
        await h.accept("ok", {}, "ok-2")
        clock.advance(7.34)
        stats = {row.function: row for row in await h.events.stats(dead_letter_depth)}
        assert list(stats) == sorted(FUNCTIONS)
        assert stats["ok"] == EventStats("ok", 2, 12.3, 0, 0, None, None)
        assert stats["fail"] == EventStats("fail", 0, None, 0, 0, "dlq", 3)
        assert stats["count"] == EventStats("count", 0, None, 0, 0, None, None)
        assert asked == ["dlq"]

        h.start()
        await h.accept("fail", {}, "fail-1")
        await h.accept("slow", {}, "slow-1")
        await eventually(lambda: h.calls["fail"] and h.calls["slow"] and len(h.calls["ok"]) == 2)
        await rows_when(
            h, lambda rows: set(rows) == {"fail-1", "slow-1"} and rows["fail-1"][1] == 1
        )
        stats = {row.function: row for row in await h.events.stats(dead_letter_depth)}
        assert stats["ok"] == EventStats("ok", 0, None, 0, 0, None, None)
        assert stats["fail"] == EventStats("fail", 1, 0.0, 0, 1, "dlq", 3)  # a retry waits
        assert stats["slow"].in_flight == 1
        assert stats["slow"].retries_pending == 0

    scenario(tmp_path, test, configs, clock)


def test_stats_do_not_count_a_running_event_as_waiting(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.start()
        await h.accept("slow", {}, "running")
        await eventually(lambda: h.calls["slow"], what="the invocation")
        stats = {row.function: row for row in await h.events.stats(lambda queue: None)}
        assert stats["slow"].in_flight == 1
        assert stats["slow"].depth == 0

    scenario(tmp_path, test, clock=Clock(START))


# Shutting down and starting again


def test_cancelling_the_dispatcher_just_after_an_accept_stops_it(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.start()
        dispatcher = h.dispatcher
        assert dispatcher is not None
        await asyncio.sleep(0.1)  # idle: waiting to be woken
        await h.accept("ok", {}, "wakes-it")  # sets the wake event
        dispatcher.cancel()  # at once, as a shutdown may
        await asyncio.wait([dispatcher], timeout=0.3)
        assert dispatcher.cancelled()

    scenario(tmp_path, test)


def test_close_lets_a_running_attempt_finish_within_grace(tmp_path: Path) -> None:
    out = tmp_path / "ok.jsonl"
    configs = {"slow": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def test(h: Harness) -> None:
        h.start()
        await h.accept("slow", {"n": 1}, "finishing")
        await eventually(lambda: h.calls["slow"], what="the invocation")
        await h.stop()  # as `lrun serve` does: no new attempts, then close
        asyncio.get_running_loop().call_later(0.1, h.gate.set)
        await h.events.close(grace=2.0)
        assert [r["requestContext"]["requestId"] for r in read_lines(out)] == ["finishing"]
        assert await h.rows() == {}

    scenario(tmp_path, test, configs)


def test_close_leaves_an_unfinished_attempt_to_run_again_at_the_next_start(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ok.jsonl"
    configs = {"slow": AsyncConfig(on_success=file_at(tmp_path, out))}

    async def first_run(h: Harness) -> None:
        h.start()
        await h.accept("slow", {"n": 1}, "unfinished")
        await eventually(lambda: h.calls["slow"], what="the invocation")
        await h.stop()
        started = time.monotonic()
        await h.events.close(grace=0.1)  # the gate stays shut: the attempt is cut short
        assert time.monotonic() - started < 1.0
        assert read_lines(out) == []
        assert (await h.rows())["unfinished"][:2] == ("slow", 0)

    async def second_run(h: Harness) -> None:
        h.gate.set()
        h.start()
        [record] = await lines_when(out)
        await h.drained()
        assert h.request_ids("slow") == ["unfinished"]  # the same request id, run again
        assert record["requestContext"]["requestId"] == "unfinished"
        assert record["requestContext"]["approximateInvokeCount"] == 1

    scenario(tmp_path, first_run, configs)
    scenario(tmp_path, second_run, configs)


def test_a_new_event_queue_on_the_same_store_runs_the_queued_events(tmp_path: Path) -> None:
    async def first_run(h: Harness) -> None:  # accepted, never dispatched
        for n in range(3):
            await h.accept("ok", {"n": n}, f"queued-{n}")
        assert len(await h.rows()) == 3

    async def second_run(h: Harness) -> None:
        h.start()
        await h.drained()
        assert sorted(h.request_ids("ok")) == ["queued-0", "queued-1", "queued-2"]
        assert sorted(event["n"] for event, _ in h.calls["ok"]) == [0, 1, 2]

    scenario(tmp_path, first_run)
    scenario(tmp_path, second_run)


def test_async_metrics_count_received_ages_drops_and_failed_deliveries(tmp_path: Path) -> None:
    """AsyncEventsReceived, AsyncEventAge, AsyncEventsDropped, DeadLetterErrors and
    DestinationDeliveryFailures (issue 14): a stale event is dropped, and its dead-letter queue
    and on-failure queue are gone, so both deliveries fail."""
    clock = Clock(START)
    configs = {
        "ok": AsyncConfig(
            maximum_event_age=60,
            on_failure=Destination("queue", "failures"),
            dead_letter_queue="dlq",
        )
    }

    async def test(h: Harness) -> None:
        await h.accept("ok", {"stale": True}, "req-old")
        await h.queues.delete_queue("dlq")
        await h.queues.delete_queue("failures")
        clock.advance(61.0)
        h.start()
        await h.drained()
        figures = h.events.figures["ok"]
        assert figures.received == 1
        assert figures.attempts == 1 and figures.age_ms_max == 61_000
        assert figures.dropped == 1
        assert figures.dead_letter_errors == 1
        assert figures.destination_failures == 1

    scenario(tmp_path, test, configs, clock)
