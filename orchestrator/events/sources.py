"""Event sources that start functions: queues polled in batches, schedules, buckets' files.

Each runs as a task of the server. Queue mappings invoke synchronously, as Lambda's event source
mappings do: a successful batch is deleted, reported failures (``batchItemFailures``) stay and
become visible again after the queue's visibility timeout, and the queue's redrive moves them to
its dead-letter queue once their receives run out. Schedules and buckets invoke asynchronously,
through the durable event queue, as EventBridge and S3 do.

Schedule ticks missed while the server was down are not made up: the next tick fires on time.
A bucket's contents are remembered in the store, so files that appear or go while the server is
down raise their events when it starts again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.aws import function_arn
from orchestrator.errors import LambdaError, LrunError
from orchestrator.events import buckets as bucket_files
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.mappings import Mapping, Mappings
from orchestrator.events.queues import Queues, sqs_record
from orchestrator.events.store import Store
from orchestrator.manifest import Manifest
from orchestrator.manifest.event_filter import Filter, passes, sqs_view
from orchestrator.manifest.schedule import next_fire, parse, scheduled_event
from orchestrator.manifest.triggers import BucketSource, ScheduleSource
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.service import Service

log = logging.getLogger(__name__)

BUCKET_SCAN_INTERVAL_S = 0.5
IDLE_POLL_S = 0.2  # an empty queue is polled again after this long


class Sources:
    """The event-source tasks of one manifest; ``restart`` after the manifest changes, ``sync``
    after a mapping changes through the API."""

    def __init__(
        self,
        service: Service,
        events: EventQueue,
        queues: Queues,
        store: Store,
        on_event: Callable[[str], None],
        mappings: Mappings | None = None,
    ) -> None:
        self._service = service
        self._events = events
        self._queues = queues
        self._store = store
        self._on_event = on_event
        self.mappings = mappings if mappings is not None else Mappings(store)
        self._tasks: list[asyncio.Task[None]] = []
        self._pollers: dict[str, _Poller] = {}
        self._retiring: list[_Poller] = []  # changed mappings' workers, finishing their batch
        self._shadowed: set[str] = set()  # API mappings the manifest now declares too

    def restart(self, manifest: Manifest) -> None:
        # Schedules and bucket watchers start over; mappings' workers go on unless their mapping
        # changed (``sync``), so a reload neither cuts a batch short nor pauses the API's ones.
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self.mappings.declare(manifest)
        for function, triggers in manifest.triggers.items():
            for source in triggers.events:
                if isinstance(source, ScheduleSource):
                    self._start(self._tick(function, source))
                elif isinstance(source, BucketSource):
                    path = manifest.buckets[source.bucket].path
                    self._start(self._watch(function, source, path))
        self.sync()

    def sync(self) -> None:
        """Poll every enabled mapping as it is now: a changed mapping's workers finish their
        batch and stop, and new ones start with the new settings."""
        every = self.mappings.all()
        declared = {(m.queue, m.function) for m in every if m.manifest is not None}
        wanted: dict[str, Mapping] = {}
        for mapping in every:
            if mapping.manifest is None and (mapping.queue, mapping.function) in declared:
                # The manifest came to declare what the API had created: one poller, the
                # manifest's; the API's is kept (and listed) for when the manifest drops it.
                if mapping.uuid not in self._shadowed:
                    self._shadowed.add(mapping.uuid)
                    self._on_event(
                        f"event source mapping {mapping.uuid} ({mapping.queue} -> "
                        f"{mapping.function}) is not polled: the manifest declares the same one"
                    )
                continue
            self._shadowed.discard(mapping.uuid)
            if mapping.enabled:
                wanted[mapping.uuid] = mapping
        self._retiring = [p for p in self._retiring if not all(t.done() for t in p.tasks)]
        for key, poller in list(self._pollers.items()):
            if wanted.get(key) != poller.mapping:
                poller.retire()
                self._retiring.append(poller)  # still awaited (or cancelled) at shutdown
                del self._pollers[key]
        for key, mapping in wanted.items():
            if key not in self._pollers:
                poller = _Poller(mapping, mapping.compiled())
                poller.tasks = [
                    asyncio.ensure_future(self._poll(poller)) for _ in range(mapping.workers)
                ]
                self._pollers[key] = poller

    def _start(self, coro: Any) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for poller in [*self._pollers.values(), *self._retiring]:
            for task in poller.tasks:
                task.cancel()
        self._pollers, self._retiring = {}, []

    async def wait_stopped(self) -> None:
        tasks, self._tasks = self._tasks, []
        for poller in [*self._pollers.values(), *self._retiring]:
            tasks.extend(poller.tasks)
        self._pollers, self._retiring = {}, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Queue -> function, in batches

    async def _poll(self, poller: _Poller) -> None:
        mapping = poller.mapping
        while not poller.retired:
            if mapping.function not in self._service.functions:
                # Gone from the manifest: its messages wait in the queue, their receive counts
                # untouched, until the function is back or the mapping is deleted.
                await asyncio.sleep(IDLE_POLL_S)
                continue
            try:
                batch = await self._gather(mapping)
                if batch:
                    await self._deliver(poller, batch)
                else:
                    await asyncio.sleep(IDLE_POLL_S)
            except asyncio.CancelledError:
                raise
            except LrunError as exc:  # e.g. throttled: the messages come back when visible
                log.info("%s: queue %s: %s", mapping.function, mapping.queue, exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("%s: polling queue %s failed", mapping.function, mapping.queue)
                await asyncio.sleep(1.0)

    async def _gather(self, mapping: Mapping) -> list[Any]:
        """Up to ``batch_size`` messages, waiting up to the batching window to fill the batch."""
        batch = list(await self._queues.receive(mapping.queue, min(mapping.batch_size, 10000)))
        deadline = time.monotonic() + mapping.maximum_batching_window
        while batch and len(batch) < mapping.batch_size and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, deadline - time.monotonic()))
            more = await self._queues.receive(mapping.queue, mapping.batch_size - len(batch))
            batch.extend(more)
        return batch

    async def _deliver(self, poller: _Poller, received: list[Any]) -> None:
        mapping = poller.mapping
        records = [(message, sqs_record(message, mapping.queue)) for message in received]
        # Messages no filter matches are deleted unseen, as Lambda does.
        kept = [(m, r) for m, r in records if passes(poller.filters, sqs_view(r))]
        if len(kept) < len(records):
            wanted = {m.message_id for m, _ in kept}
            for message in received:
                if message.message_id not in wanted:
                    await self._queues.delete(mapping.queue, message.receipt)
        if not kept:
            return
        batch = [m for m, _ in kept]
        event = {"Records": [r for _, r in kept]}
        qualifier = mapping.qualifier
        if mapping.manifest is not None:  # the manifest's triggers invoke its live alias
            qualifier = self._service.trigger_qualifier(mapping.function)
        arn = function_arn(mapping.function, qualifier)
        try:
            version = self._service.route(mapping.function, qualifier)
            request = InvokeRequest(json.dumps(event).encode(), arn, version)
            result = await self._service.invoke(
                mapping.function, request.with_request_id(), settle=False
            )
        except LambdaError as exc:
            # Throttled or the platform failed: nothing was processed; the messages return.
            await self._release(mapping.queue, batch)
            raise exc
        if result.function_error is not None:
            return  # the whole batch failed: it becomes visible again after the timeout
        failed = (
            _failed_items(result.payload, batch) if mapping.report_batch_item_failures else set()
        )
        for message in batch:
            if message.message_id not in failed:
                await self._queues.delete(mapping.queue, message.receipt)

    async def _release(self, queue: str, batch: list[Any]) -> None:
        for message in batch:
            await self._queues.change_visibility(queue, message.receipt, 0)

    # Schedule -> function

    async def _tick(self, function: str, source: ScheduleSource) -> None:
        schedule = parse(source.expression)
        origin = datetime.datetime.now(datetime.UTC)
        digest = hashlib.sha256(source.expression.encode()).hexdigest()[:8]
        rule = f"{function}-{digest}"  # stable across restarts, as a rule's name is
        moment = origin
        while True:
            moment = next_fire(schedule, moment, origin)
            await asyncio.sleep(
                max(0.0, (moment - datetime.datetime.now(datetime.UTC)).total_seconds())
            )
            event = scheduled_event(rule, moment)
            try:
                await self._events.accept(
                    function,
                    json.dumps(event).encode(),
                    _request_id(),
                    self._service.trigger_qualifier(function),
                )
            except LrunError as exc:  # the store is failing: this tick is lost, not the schedule
                self._on_event(f"{function}: schedule {source.expression} could not fire: {exc}")
                continue
            self._on_event(f"{function}: schedule {source.expression} fired")

    # Bucket -> function

    async def _watch(self, function: str, source: BucketSource, path: Path) -> None:
        mark = f"bucket:{source.bucket}:{function}"
        before = await self._load_snapshot(mark, path)
        while True:
            after = await asyncio.to_thread(_scan_or_empty, path, before)
            changes = [
                c for c in bucket_files.changes(before, after) if bucket_files.matches(source, c)
            ]
            try:
                for change in changes:
                    event = bucket_files.s3_event(
                        source.bucket, change, datetime.datetime.now(datetime.UTC)
                    )
                    await self._events.accept(
                        function,
                        json.dumps(event).encode(),
                        _request_id(),
                        self._service.trigger_qualifier(function),
                    )
                if after != before:
                    await self._save_snapshot(mark, after)
                    before = after
            except LrunError as exc:  # the store is failing: the changes are raised again later
                log.warning("%s: bucket %s: %s", function, source.bucket, exc)
            await asyncio.sleep(BUCKET_SCAN_INTERVAL_S)

    async def _load_snapshot(self, mark: str, path: Path) -> bucket_files.Snapshot:
        row = await self._store.run(
            lambda db: db.execute("SELECT value FROM marks WHERE name = ?", (mark,)).fetchone()
        )
        if row is None:  # first start: what is there already raises no events
            snapshot = await asyncio.to_thread(_scan_or_empty, path, None)
            await self._save_snapshot(mark, snapshot)  # so changes while stopped are seen
            return snapshot
        return {k: bucket_files.ObjectInfo(**v) for k, v in json.loads(row[0]).items()}

    async def _save_snapshot(self, mark: str, snapshot: bucket_files.Snapshot) -> None:
        text = json.dumps({k: dataclasses.asdict(v) for k, v in snapshot.items()})
        await self._store.run(
            lambda db: db.execute(
                "INSERT INTO marks (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (mark, text),
            )
        )


@dataclass
class _Poller:
    """The workers of one mapping, as it was when they started."""

    mapping: Mapping
    filters: tuple[Filter, ...]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    retired: bool = False

    def retire(self) -> None:
        """Stop after the batch in hand (its messages are settled, not left in flight)."""
        self.retired = True


def _scan_or_empty(path: Path, previous: bucket_files.Snapshot | None) -> bucket_files.Snapshot:
    path.mkdir(parents=True, exist_ok=True)
    return bucket_files.scan(path, previous)


def _failed_items(payload: bytes, batch: list[Any]) -> set[str]:
    """The message ids a partial batch response names; any malformed answer fails them all."""
    everything = {message.message_id for message in batch}
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):  # a function may answer anything, nested deep
        return everything
    if body is None:
        return set()
    if not isinstance(body, dict):
        return everything
    failures = body.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return everything
    named: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in everything:
            return everything  # Lambda: an empty or unknown identifier fails the whole batch
        named.add(identifier)
    return named


def _request_id() -> str:
    return str(uuid.uuid4())
