"""Unit tests for orchestrator.sources: partial batch responses, queue mappings and bucket
watchers, on a real Store, real Queues and EventQueue, and a real Service on the fake engine.

Queues take a clock the test controls, so visibility timeouts end when the test says; the
sources' polling intervals are shortened (module settings, patched) so each scenario takes a
fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import StoreFailed
from orchestrator.events import sources as sources_module
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.queues import Queues, Received, queue_arn
from orchestrator.events.sources import Sources, _failed_items
from orchestrator.events.store import Store
from orchestrator.manifest import Manifest
from orchestrator.manifest.triggers import AsyncConfig
from tests.fakes import Clock, FakeContext, Handler, Served, eventually, fake_service, run

T = TypeVar("T")
TIMEOUT_S = 4.0
START = 1_700_000_000.0


# _failed_items: Lambda's rules for a partial batch response (contract 8.2)


def batch(*ids: str) -> list[Received]:
    return [Received(i, f"receipt-{i}", "body", {}, 1, 0, 0, "md5") for i in ids]


BATCH = batch("m1", "m2", "m3")
EVERYTHING = {"m1", "m2", "m3"}


def answer(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "payload",
    [
        answer(None),
        answer({}),
        answer({"batchItemFailures": []}),
        answer({"batchItemFailures": None}),
        answer({"other": "keys", "batchItemFailures": []}),
    ],
    ids=["null", "empty-object", "empty-list", "null-list", "other-keys"],
)
def test_a_null_or_empty_answer_is_a_full_success(payload: bytes) -> None:
    assert _failed_items(payload, BATCH) == set()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"batchItemFailures": [',
        b"\xff\xfe",
        answer([{"itemIdentifier": "m1"}]),
        answer("m1"),
        answer(42),
        answer(True),
        answer({"batchItemFailures": "m1"}),
        answer({"batchItemFailures": {"itemIdentifier": "m1"}}),
        answer({"batchItemFailures": ["m1"]}),
        answer({"batchItemFailures": [{"itemIdentifier": "unknown"}]}),
        answer({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "nope"}]}),
        answer({"batchItemFailures": [{"itemIdentifier": ""}]}),
        answer({"batchItemFailures": [{"itemIdentifier": None}]}),
        answer({"batchItemFailures": [{"itemId": "m1"}]}),
        answer({"batchItemFailures": [{}]}),
        answer({"batchItemFailures": [{"itemIdentifier": 1}]}),
    ],
    ids=[
        "invalid-json",
        "truncated-json",
        "not-utf8",
        "a-list",
        "a-string",
        "a-number",
        "a-boolean",
        "failures-a-string",
        "failures-an-object",
        "failures-of-strings",
        "unknown-id",
        "one-unknown-id",
        "empty-id",
        "null-id",
        "wrong-key",
        "empty-item",
        "number-id",
    ],
)
def test_a_malformed_answer_fails_the_whole_batch(payload: bytes) -> None:
    assert _failed_items(payload, BATCH) == EVERYTHING


def test_named_identifiers_fail_only_those_messages() -> None:
    payload = answer({"batchItemFailures": [{"itemIdentifier": "m3"}, {"itemIdentifier": "m1"}]})
    assert _failed_items(payload, BATCH) == {"m1", "m3"}


def test_a_repeated_identifier_is_one_failure() -> None:
    payload = answer({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m2"}]})
    assert _failed_items(payload, BATCH) == {"m2"}


def test_every_identifier_named_fails_every_message() -> None:
    items = [{"itemIdentifier": i} for i in ("m1", "m2", "m3")]
    assert _failed_items(answer({"batchItemFailures": items}), BATCH) == EVERYTHING


# The world for a mapping


@dataclass
class World:
    served: Served
    store: Store
    queues: Queues
    events: EventQueue
    clock: Clock
    calls: dict[str, list[Any]]  # function -> events it was invoked with
    messages: list[str] = field(default_factory=list)
    running: list[Sources] = field(default_factory=list)

    @property
    def manifest(self) -> Manifest:
        manifest = self.served.service.manifest
        assert manifest is not None
        return manifest

    async def start(self) -> Sources:
        """A Sources for the manifest, as `lrun serve` starts (or restarts) one."""
        for spec in self.manifest.queues.values():
            await self.queues.ensure(spec)
        sources = Sources(self.served.service, self.events, self.queues, self.store, self.note)
        sources.restart(self.manifest)
        self.running.append(sources)
        return sources

    async def stop(self, sources: Sources) -> None:
        await sources.wait_stopped()
        self.running.remove(sources)

    def note(self, message: str) -> None:
        self.messages.append(message)

    async def events_table(self) -> list[tuple[str, dict[str, Any]]]:
        """The accepted events: (function, payload), in the order they came."""
        rows = await self.store.run(
            lambda db: db.execute(
                "SELECT function, payload FROM events ORDER BY received, rowid"
            ).fetchall()
        )
        return [(function, json.loads(payload)) for function, payload in rows]

    async def mark(self, name: str) -> dict[str, Any] | None:
        row = await self.store.run(
            lambda db: db.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
        )
        return None if row is None else json.loads(row[0])


def write_manifest(tmp_path: Path, text: str) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# the fake backend runs handlers from its registry\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(text)
    return path


def handlers_for(calls: dict[str, list[Any]]) -> dict[str, Handler]:
    def partial(event: Any, context: FakeContext) -> dict[str, Any]:
        """Fails the messages whose body starts with "bad"."""
        calls["partial"].append(event)
        failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("bad")]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    def broken(event: Any, context: FakeContext) -> None:
        calls["broken"].append(event)
        raise RuntimeError("the whole batch fails")

    def watch(event: Any, context: FakeContext) -> None:
        calls["watch"].append(event)

    return {"app.partial": partial, "app.broken": broken, "app.watch": watch}


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_module, "IDLE_POLL_S", 0.02)
    monkeypatch.setattr(sources_module, "BUCKET_SCAN_INTERVAL_S", 0.02)


def scenario(tmp_path: Path, manifest_text: str, test: Callable[[World], Awaitable[T]]) -> T:
    async def main() -> T:
        async with world(tmp_path, manifest_text) as w:
            return await test(w)

    return run(main(), TIMEOUT_S)


@contextlib.asynccontextmanager
async def world(tmp_path: Path, manifest_text: str) -> AsyncIterator[World]:
    store = Store(tmp_path / "state" / "lrun.db")
    await asyncio.to_thread(store.open)
    calls: dict[str, list[Any]] = {"partial": [], "broken": [], "watch": []}
    try:
        path = write_manifest(tmp_path, manifest_text)
        async with fake_service(path, handlers_for(calls)) as served:
            clock = Clock(START)
            queues = Queues(store, clock)
            events = EventQueue(
                store, served.service, lambda name, qualifier: AsyncConfig(), queues.send_in
            )
            w = World(served, store, queues, events, clock, calls)
            try:
                yield w
            finally:
                for sources in list(w.running):
                    await w.stop(sources)
    finally:
        await asyncio.to_thread(store.close)


# Queue -> function, in batches

QUEUE_MANIFEST = """\
queues:
  orders: {visibility_timeout: 30, max_receive_count: 2, dead_letter_queue: orders-dlq}
  orders-dlq:
functions:
  partial:
    runtime: python3.13
    code: ./code
    handler: app.partial
    events:
      - queue: orders
        batch_size: 3
        report_batch_item_failures: true
"""

BODIES = ["good-1", "bad-1", "good-2", "bad-2", "good-3"]


def records_seen(w: World, function: str) -> list[dict[str, Any]]:
    return [record for event in w.calls[function] for record in event["Records"]]


async def queue_figures(w: World, name: str) -> tuple[int, int]:
    stats = await w.queues.stats(name)
    return stats.depth, stats.in_flight


async def figures_when(w: World, name: str, wanted: tuple[int, int]) -> None:
    deadline = time.monotonic() + 2.0
    while (found := await queue_figures(w, name)) != wanted:
        assert time.monotonic() < deadline, f"{name}: {found}, wanted {wanted}"
        await asyncio.sleep(0.01)


def test_a_mapping_delivers_sqs_batches_and_keeps_reported_failures(tmp_path: Path) -> None:
    async def test(w: World) -> None:
        for spec in w.manifest.queues.values():
            await w.queues.ensure(spec)
        sent = {m.body: m for m in [await w.queues.send("orders", body) for body in BODIES]}
        await w.start()

        await eventually(lambda: len(records_seen(w, "partial")) == 5, what="five records")
        await figures_when(w, "orders", (0, 2))  # successes deleted, failures hidden
        assert all(len(event["Records"]) <= 3 for event in w.calls["partial"])
        for record in records_seen(w, "partial"):
            message = sent[record["body"]]
            assert record["messageId"] == message.message_id
            assert record["receiptHandle"]
            assert record["attributes"]["ApproximateReceiveCount"] == "1"
            assert record["attributes"]["SentTimestamp"] == str(int(START * 1000))
            assert record["attributes"]["SenderId"] == ACCOUNT_ID
            assert record["messageAttributes"] == {}
            assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
            assert record["eventSource"] == "aws:sqs"
            assert record["eventSourceARN"] == queue_arn("orders")
            assert record["eventSourceARN"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:orders"
            assert record["awsRegion"] == REGION

        # After the visibility timeout the failures come back, received a second time.
        await asyncio.sleep(0.05)
        assert len(records_seen(w, "partial")) == 5  # hidden until then
        w.clock.advance(31)
        await eventually(lambda: len(records_seen(w, "partial")) == 7, what="the failures again")
        again = records_seen(w, "partial")[5:]
        assert sorted(r["body"] for r in again) == ["bad-1", "bad-2"]
        assert {r["attributes"]["ApproximateReceiveCount"] for r in again} == {"2"}
        await figures_when(w, "orders", (0, 2))

        # Their receives used up, they go to the dead-letter queue instead of the function.
        w.clock.advance(31)
        await figures_when(w, "orders-dlq", (2, 0))
        assert await queue_figures(w, "orders") == (0, 0)
        dead = await w.queues.receive("orders-dlq", 10)
        assert sorted(m.body for m in dead) == ["bad-1", "bad-2"]
        assert len(records_seen(w, "partial")) == 7

    scenario(tmp_path, QUEUE_MANIFEST, test)


def test_a_function_error_returns_the_whole_batch(tmp_path: Path) -> None:
    manifest = QUEUE_MANIFEST.replace("app.partial", "app.broken").replace(
        "  partial:", "  broken:"
    )

    async def test(w: World) -> None:
        await w.start()
        await w.queues.send_many("orders", ["one", "two"])
        await eventually(lambda: len(records_seen(w, "broken")) == 2, what="the batch")
        await asyncio.sleep(0.05)
        assert await queue_figures(w, "orders") == (0, 2)  # none deleted, none visible yet
        w.clock.advance(31)
        await eventually(lambda: len(records_seen(w, "broken")) == 4, what="the batch again")

    scenario(tmp_path, manifest, test)


def test_without_report_batch_item_failures_the_answer_is_not_read(tmp_path: Path) -> None:
    manifest = QUEUE_MANIFEST.replace("report_batch_item_failures: true", "batch_size: 10")
    manifest = manifest.replace("        batch_size: 3\n", "")

    async def test(w: World) -> None:
        await w.start()
        await w.queues.send_many("orders", ["good", "bad"])
        await eventually(lambda: len(records_seen(w, "partial")) == 2, what="the batch")
        await figures_when(w, "orders", (0, 0))  # "bad" was named, and deleted all the same

    scenario(tmp_path, manifest, test)


# Bucket -> function, through the event queue

BUCKET_MANIFEST = """\
buckets:
  uploads: {path: ./uploads}
functions:
  watch:
    runtime: python3.13
    code: ./code
    handler: app.watch
    events:
      - bucket: uploads
        suffix: .txt
"""
MARK = "bucket:uploads:watch"
_probes = itertools.count()


async def watching(w: World, root: Path) -> None:
    """Wait until the watcher has its snapshot and scans: non-matching probe files are created
    until the store's mark shows one (a file there before the first scan raises nothing)."""
    deadline = time.monotonic() + 2.0
    while True:
        probe = f"probe-{next(_probes)}.log"
        (root / probe).write_text("p")
        for _ in range(10):
            mark = await w.mark(MARK)
            if mark is not None and probe in mark:
                return
            await asyncio.sleep(0.01)
        assert time.monotonic() < deadline, "the watcher never saved a snapshot"


async def scanned(w: World, root: Path, key: str) -> None:
    """Wait until the saved snapshot has ``key`` (a scan after it was written)."""
    deadline = time.monotonic() + 2.0
    while (mark := await w.mark(MARK)) is None or key not in mark:
        assert time.monotonic() < deadline, f"{key} never in the snapshot"
        await asyncio.sleep(0.01)


def s3_keys(table: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    found = []
    for function, event in table:
        [record] = event["Records"]
        found.append((function, record["eventName"], record["s3"]["object"]["key"]))
    return found


async def events_when(w: World, count: int) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + 2.0
    while len(table := await w.events_table()) < count:
        assert time.monotonic() < deadline, table
        await asyncio.sleep(0.01)
    return s3_keys(table)


def test_a_created_file_that_matches_is_accepted_as_an_s3_event(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    root.mkdir()
    (root / "there-before.txt").write_text("old")

    async def test(w: World) -> None:
        await w.start()
        await watching(w, root)
        (root / ".hidden.txt").write_text("h")
        (root / ".git").mkdir()
        (root / ".git" / "config.txt").write_text("h")
        (root / "sub").mkdir()
        (root / "sub" / ".swap.txt").write_text("h")
        (root / "notes.log").write_text("not .txt")
        await scanned(w, root, "notes.log")
        assert await w.events_table() == []  # nothing matched, nothing was there before

        (root / "report.txt").write_text("hello")
        (root / "sub" / "deep.txt").write_text("deeper")
        assert sorted(await events_when(w, 2)) == [
            ("watch", "ObjectCreated:Put", "report.txt"),
            ("watch", "ObjectCreated:Put", "sub/deep.txt"),
        ]
        table = await w.events_table()
        [record] = next(e for _, e in table if "report" in json.dumps(e))["Records"]
        assert record["eventSource"] == "aws:s3"
        assert record["s3"]["bucket"]["name"] == "uploads"
        assert record["s3"]["object"]["size"] == 5
        assert record["s3"]["object"]["eTag"] == hashlib.md5(b"hello").hexdigest()
        mark = await w.mark(MARK)
        assert mark is not None
        assert {"there-before.txt", "report.txt", "sub/deep.txt", "notes.log"} <= set(mark)
        assert not any(key.startswith(".") or "/." in key for key in mark)

        (root / "report.txt").unlink()
        found = await events_when(w, 3)
        assert found[2] == ("watch", "ObjectRemoved:Delete", "report.txt")
        assert w.calls["watch"] == []  # accepted for the dispatcher, not invoked here

    scenario(tmp_path, BUCKET_MANIFEST, test)


def test_a_watcher_survives_the_store_failing_and_raises_the_changes_after(
    tmp_path: Path,
) -> None:
    root = tmp_path / "uploads"
    root.mkdir()
    failing = False

    async def test(w: World) -> None:
        nonlocal failing
        await w.start()
        await watching(w, root)
        real = w.events.accept

        async def accept(
            function: str, payload: bytes, request_id: str, qualifier: str | None = None
        ) -> None:
            if failing:
                raise StoreFailed("lrun could not write its store (database or disk is full)")
            await real(function, payload, request_id, qualifier)

        w.events.accept = accept  # type: ignore[method-assign]
        failing = True
        (root / "report.txt").write_text("hello")
        await asyncio.sleep(0.2)  # many scans, each refused
        assert await w.events_table() == []
        failing = False
        assert await events_when(w, 1) == [("watch", "ObjectCreated:Put", "report.txt")]

    scenario(tmp_path, BUCKET_MANIFEST, test)


def test_a_restarted_watcher_announces_only_what_changed_while_it_was_stopped(
    tmp_path: Path,
) -> None:
    root = tmp_path / "uploads"
    root.mkdir()
    (root / "there-before.txt").write_text("old")

    async def test(w: World) -> None:
        first = await w.start()
        await watching(w, root)
        (root / "a.txt").write_text("a")
        assert await events_when(w, 1) == [("watch", "ObjectCreated:Put", "a.txt")]
        await scanned(w, root, "a.txt")
        await w.stop(first)

        (root / "while-stopped.txt").write_text("d")  # the server is down
        (root / "there-before.txt").unlink()

        await w.start()
        found = await events_when(w, 3)
        assert sorted(found[1:]) == [
            ("watch", "ObjectCreated:Put", "while-stopped.txt"),
            ("watch", "ObjectRemoved:Delete", "there-before.txt"),
        ]
        (root / "after.txt").write_text("e")  # a later scan: nothing else comes again
        found = await events_when(w, 4)
        assert found[3] == ("watch", "ObjectCreated:Put", "after.txt")
        assert len(found) == 4

    scenario(tmp_path, BUCKET_MANIFEST, test)


def test_files_created_while_stopped_are_announced_even_if_nothing_changed_before(
    tmp_path: Path,
) -> None:
    root = tmp_path / "uploads"  # made by the watcher's first scan

    async def test(w: World) -> None:
        first = await w.start()
        await eventually(root.is_dir, what="the watcher's first scan")
        await asyncio.sleep(0.1)  # a few more scans, nothing changes
        await w.stop(first)

        (root / "while-stopped.txt").write_text("d")

        await w.start()
        await watching(w, root)
        assert await w.events_table() != []
        assert s3_keys(await w.events_table())[0] == (
            "watch",
            "ObjectCreated:Put",
            "while-stopped.txt",
        )

    scenario(tmp_path, BUCKET_MANIFEST, test)
