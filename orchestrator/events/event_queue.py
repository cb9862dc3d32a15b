"""Asynchronous invocation: a durable queue of events and the dispatcher that runs them.

An ``Event`` invocation is written to the store before its 202 goes back, so nothing accepted is
lost, even to a SIGKILL. The dispatcher runs due events under the function's concurrency limits:
function errors are retried up to ``maximum_retry_attempts`` times with a doubling delay;
throttles and platform errors are retried with back-off until ``maximum_event_age``. Outcomes go
to the function's destinations (another function, a local queue, a JSON-lines file) in Lambda's
destination-record shape, and discarded events also to its dead-letter queue. The request id is
the same for every attempt. After a crash, events that were running are run again: delivery is
at least once, so handlers should be idempotent, as on Lambda.

The store may fail (a full disk): new events are then refused (``StoreFailed``, a 500), and an
attempt's outcome that could not be recorded is kept in memory and written again until it is, the
event not being run again meanwhile; the dispatcher itself never stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from orchestrator.aws import function_arn
from orchestrator.errors import LrunError, StoreFailed, TooManyRequests, UnsafePath
from orchestrator.events import destination_files
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import AsyncConfig, Destination
from orchestrator.pool import RESERVED_LIMIT
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.service import Service

log = logging.getLogger(__name__)

# Events being invoked at once: across functions, and for one function (fewer if its reserved
# concurrency is lower). Lambda would scale further; a local machine is better served by a
# handful of environments working through a backlog than by dozens starting at once.
MAX_RUNNING = 32
MAX_RUNNING_PER_FUNCTION = 8
THROTTLE_BACKOFF_S = (1.0, 300.0)  # first and longest wait after a throttle or platform error
STORE_RETRY_S = 1.0  # how often a failing store is tried again
MAX_FIGURES = 1000  # functions whose async metrics are kept
ERROR_MESSAGE_LIMIT = 1024  # bytes of the error message a dead-letter message carries
# File destinations get a thread of their own: the default pool is busy starting containers
# when traffic grows, and a finished event must not wait behind those starts.
_FILE_WRITER = ThreadPoolExecutor(1, thread_name_prefix="lrun-destinations")


@dataclass(frozen=True)
class Event:
    request_id: str
    function: str
    payload: bytes
    received: float  # epoch seconds
    attempts: int  # attempts that ended in a function error
    qualifier: str | None = None  # the version or alias invoked (None: the function)


@dataclass(frozen=True)
class EventStats:
    function: str
    depth: int  # events waiting (including retries)
    oldest_age_s: float | None
    in_flight: int
    retries_pending: int  # waiting events that failed at least once
    dead_letter_queue: str | None
    dead_letter_depth: int | None


@dataclass(frozen=True)
class Discard:
    """Why an event is given up, and what its last attempt answered (if it was invoked)."""

    condition: str  # RetriesExhausted | EventAgeExceeded | ZeroReservedConcurrency
    result: InvocationResult | None
    error_message: str


QueueSender = Callable[[sqlite3.Connection, str, str, dict[str, Any]], None]


@dataclass
class AsyncFigures:
    """One function's asynchronous-invocation metrics (Lambda's AsyncEventAge,
    AsyncEventsDropped, DeadLetterErrors, DestinationDeliveryFailures), counted as they happen
    (never on the synchronous path)."""

    received: int = 0
    age_ms_sum: int = 0  # between an event's arrival and each attempt to invoke it
    age_ms_max: int = 0
    attempts: int = 0
    dropped: int = 0
    dead_letter_errors: int = 0
    destination_failures: int = 0


class EventQueue:
    def __init__(
        self,
        store: Store,
        service: Service,
        config_for: Callable[[str, str | None], AsyncConfig],
        send_to_queue: QueueSender,
        on_event: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._service = service
        self._config_for = config_for
        self._send_to_queue = send_to_queue
        self._on_event = on_event or (lambda message: None)
        self.figures: dict[str, AsyncFigures] = {}  # by function, at most MAX_FIGURES
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}
        self._running_functions: dict[str, str] = {}  # request id -> function
        self._backoff: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._accepting: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writing = False
        self._writer: asyncio.Future[None] | None = None
        # Outcomes of attempts the store failed to record, by request id: written again by the
        # dispatcher until they are, and their events not run again meanwhile.
        self._unsettled: dict[str, Callable[[sqlite3.Connection], Any]] = {}
        self._store_failing = False

    # Accepting

    async def accept(
        self, function: str, payload: bytes, request_id: str, qualifier: str | None = None
    ) -> None:
        """Write the event (for ``function``, or the version or alias ``qualifier`` of it)
        durably; returns once it would survive a crash.

        Events accepted while a write is under way are written together by the next one: one
        store job and one commit for a burst, not one each.
        """
        now = self._clock()
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepting.append(((request_id, function, payload, now, now, qualifier), written))
        if not self._writing:
            self._writing = True
            self._writer = asyncio.ensure_future(self._write_accepted())
        await written
        self.figures_of(function).received += 1

    async def _write_accepted(self) -> None:
        try:
            while self._accepting:
                batch, self._accepting = self._accepting, []
                rows = [row for row, _ in batch]
                try:
                    await self._store.run(partial(_insert_events, rows=rows))
                except Exception as exc:  # every caller of the batch hears it
                    if isinstance(exc, StoreFailed):
                        self._store_failed(exc)
                    for _, written in batch:
                        if not written.done():
                            written.set_exception(exc)
                else:
                    self._store_works()
                    for _, written in batch:
                        if not written.done():
                            written.set_result(None)
                    self._wake.set()
        finally:
            self._writing = False

    # Dispatching

    async def run(self) -> None:
        """Dispatch due events until cancelled; nothing the store does stops it."""
        while True:
            try:
                await self._dispatch()
            except StoreFailed as exc:
                self._store_failed(exc)
                await self._sleep(STORE_RETRY_S)
            except Exception:  # a bug: said loudly, but the queue keeps going
                log.exception("the event dispatcher failed; going on")
                await self._sleep(STORE_RETRY_S)

    async def _dispatch(self) -> None:
        """One round: record what could not be recorded, start due events, sleep."""
        if self._unsettled:
            await self._settle_again()
        self._wake.clear()
        capacity = MAX_RUNNING - len(self._running)
        # A copy (the store's thread reads it); unsettled events ran: they wait for the
        # store, not for another run.
        running = frozenset(self._running) | frozenset(self._unsettled)
        now = self._clock()
        counts = Counter(self._running_functions.values())
        full = self._full(counts)
        due = await self._store.run(
            partial(_due, now=now, capacity=capacity, running=running, full=full)
        )
        for event in due:
            if event.function in full or len(self._running) >= MAX_RUNNING:
                continue  # started when a running event ends (which wakes this)
            counts[event.function] += 1
            full = self._full(counts)
            task = asyncio.ensure_future(self._attempt(event))
            self._running[event.request_id] = task
            self._running_functions[event.request_id] = event.function
            task.add_done_callback(self._done_callback(event.request_id))
        if len(self._running) >= MAX_RUNNING:
            delay = 1.0  # nothing can start before a running event ends, which wakes this
        else:
            busy = running | frozenset(self._running)
            wait = await self._store.run(partial(_next_due, running=busy, full=full))
            delay = 1.0 if wait is None else max(0.0, min(1.0, wait - self._clock()))
        await self._sleep(delay)

    # The store failing and recovering

    async def _write_outcome(
        self, request_id: str, work: Callable[[sqlite3.Connection], Any]
    ) -> bool:
        """Write an attempt's outcome; if the store fails, keep it to be written again (and
        the event from being run again). True if it was written now."""
        try:
            await self._store.run(work)
        except StoreFailed as exc:
            self._store_failed(exc)
            self._unsettled[request_id] = work
            return False
        self._store_works()
        return True

    async def _settle_again(self) -> None:
        for request_id, work in list(self._unsettled.items()):
            await self._store.run(work)  # StoreFailed: still failing, try again next round
            del self._unsettled[request_id]
        self._store_works()

    def _store_failed(self, exc: StoreFailed) -> None:
        if not self._store_failing:
            self._store_failing = True
            self._on_event(f"{exc.message}; Event invocations are refused until it can")

    def _store_works(self) -> None:
        if self._store_failing:
            self._store_failing = False
            self._on_event(f"lrun's store {self._store.path} is written again")

    async def _sleep(self, delay: float) -> None:
        """Until woken or ``delay`` seconds pass. Not ``wait_for``: on Python 3.11 it can
        swallow a cancellation that arrives just as the wake-up does, and shutdown would hang."""
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()

    def _full(self, counts: Counter[str]) -> frozenset[str]:
        """Functions running as many events as they may: theirs wait, others' go ahead."""
        return frozenset(f for f, n in counts.items() if n >= self._limit(f))

    def _limit(self, function: str) -> int:
        state = self._service.functions.get(function)
        reserved = state.reserved if state is not None else None
        if reserved is None:
            return MAX_RUNNING_PER_FUNCTION
        return max(1, min(MAX_RUNNING_PER_FUNCTION, reserved))  # 0: one, to discard its events

    def _done_callback(self, request_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._running.pop(request_id, None)
            self._running_functions.pop(request_id, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("event %s: %s", request_id, task.exception())
            self._wake.set()

        return done

    def figures_of(self, function: str) -> AsyncFigures:
        found = self.figures.get(function)
        if found is None:
            if len(self.figures) >= MAX_FIGURES:  # names come from callers: bounded
                return AsyncFigures()
            found = self.figures[function] = AsyncFigures()
        return found

    async def _attempt(self, event: Event) -> None:
        config = self._config_for(event.function, event.qualifier)
        figures = self.figures_of(event.function)
        age_ms = max(0, int((self._clock() - event.received) * 1000))
        figures.attempts += 1
        figures.age_ms_sum += age_ms
        figures.age_ms_max = max(figures.age_ms_max, age_ms)
        if self._clock() - event.received > config.maximum_event_age:
            discard = Discard("EventAgeExceeded", None, "Event age exceeded")
            await self._discard(event, config, discard)
            return
        try:
            # Each attempt is routed anew: an alias moved since runs its new version.
            version = self._service.route(event.function, event.qualifier)
            request = InvokeRequest(
                event.payload,
                function_arn(event.function, event.qualifier),
                version,
                request_id=event.request_id,
            )
            result = await self._service.invoke(event.function, request, settle=False)
        except TooManyRequests as exc:
            state = self._service.functions.get(event.function)
            if exc.reason == RESERVED_LIMIT and state is not None and state.reserved == 0:
                discard = Discard("ZeroReservedConcurrency", None, "Reserved concurrency is 0")
                await self._discard(event, config, discard)
            else:
                await self._back_off(event)
            return
        except LrunError as exc:  # the platform failed, not the function: retried like a throttle
            self._on_event(f"{event.function}: event {event.request_id[:8]}: {exc}; will retry")
            await self._back_off(event)
            return
        self._backoff.pop(event.request_id, None)
        if result.function_error is None:
            await self._succeed(event, config, result)
            return
        attempts = event.attempts + 1
        if attempts > config.maximum_retry_attempts:
            message = _error_message(result.payload)
            await self._discard(
                dataclasses.replace(event, attempts=attempts),
                config,
                Discard("RetriesExhausted", result, message),
            )
            return
        delay = config.retry_delay * 2 ** (attempts - 1)
        next_at = self._clock() + delay
        error = _error_message(result.payload)
        await self._write_outcome(
            event.request_id,
            lambda db: db.execute(
                "UPDATE events SET attempts = ?, next_at = ?, last_error = ? WHERE request_id = ?",
                (attempts, next_at, error, event.request_id),
            ),
        )
        self._wake.set()

    async def _back_off(self, event: Event) -> None:
        first, longest = THROTTLE_BACKOFF_S
        wait = min(longest, self._backoff.get(event.request_id, first / 2) * 2)
        self._backoff[event.request_id] = wait
        next_at = self._clock() + wait
        await self._write_outcome(
            event.request_id,
            lambda db: db.execute(
                "UPDATE events SET next_at = ? WHERE request_id = ?", (next_at, event.request_id)
            ),
        )

    async def _succeed(self, event: Event, config: AsyncConfig, result: InvocationResult) -> None:
        record = self._record(event, "Success", result, event.attempts + 1)
        await self._finish(event, config.on_success, record, dead_letter=None)

    async def _discard(self, event: Event, config: AsyncConfig, discard: Discard) -> None:
        self._backoff.pop(event.request_id, None)
        record = self._record(event, discard.condition, discard.result, event.attempts)
        self.figures_of(event.function).dropped += 1
        dead_letter = None
        if config.dead_letter_queue is not None:
            code = "200" if discard.result is not None else "429"
            dead_letter = (
                config.dead_letter_queue,
                event.payload.decode(errors="replace"),
                {
                    "RequestID": {"DataType": "String", "StringValue": event.request_id},
                    "ErrorCode": {"DataType": "Number", "StringValue": code},
                    "ErrorMessage": {
                        "DataType": "String",
                        "StringValue": discard.error_message.encode()[:ERROR_MESSAGE_LIMIT].decode(
                            errors="ignore"
                        ),
                    },
                },
            )
        self._on_event(
            f"{event.function}: event {event.request_id[:8]} discarded ({discard.condition})"
        )
        await self._finish(event, config.on_failure, record, dead_letter)

    async def _finish(
        self,
        event: Event,
        destination: Destination | None,
        record: dict[str, Any],
        dead_letter: tuple[str, str, dict[str, Any]] | None,
    ) -> None:
        """Deliver the outcome, then forget the event; queue and function destinations in the
        same transaction as the forgetting, so a crash can neither lose nor repeat them."""
        if destination is not None and destination.kind == "file":
            # Outside the transaction: a crash between the two repeats the line, never loses it.
            manifest = self._service.manifest
            shown = destination.target
            try:
                if manifest is None:
                    raise UnsafePath("no manifest is loaded: file destinations need one")
                shown = str(manifest.directory / destination.target)
                line = (json.dumps(record) + "\n").encode()
                write = partial(destination_files.append, manifest.directory, destination.target)
                await asyncio.get_running_loop().run_in_executor(_FILE_WRITER, write, line)
            except (OSError, UnsafePath) as exc:  # as for a queue that refuses: reported, not
                # retried forever
                self._on_event(f"could not write an event's record to {shown}: {exc}")
                self.figures_of(event.function).destination_failures += 1
        now = self._clock()

        def finish(db: sqlite3.Connection) -> None:
            if destination is not None and destination.kind == "queue":
                if not self._deliver(db, destination.target, json.dumps(record), {}):
                    self.figures_of(event.function).destination_failures += 1
            if destination is not None and destination.kind == "function":
                db.execute(
                    "INSERT INTO events (request_id, function, payload, received, next_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (_new_id(), destination.target, json.dumps(record).encode(), now, now),
                )
            if dead_letter is not None and not self._deliver(db, *dead_letter):
                self.figures_of(event.function).dead_letter_errors += 1
            db.execute("DELETE FROM events WHERE request_id = ?", (event.request_id,))

        await self._write_outcome(event.request_id, finish)
        if destination is not None and destination.kind == "function":
            self._wake.set()

    def _deliver(
        self, db: sqlite3.Connection, queue: str, body: str, attributes: dict[str, Any]
    ) -> bool:
        """Send to a queue within the event's last transaction. A queue that refuses (it was
        deleted, or the record is too large) must not keep the event forever: as on Lambda,
        the record is dropped and the failure reported."""
        try:
            self._send_to_queue(db, queue, body, attributes)
        except LrunError as exc:
            self._on_event(f"could not deliver an event's record to queue {queue!r}: {exc}")
            return False
        return True

    def _record(
        self, event: Event, condition: str, result: InvocationResult | None, invokes: int
    ) -> dict[str, Any]:
        """Lambda's destination record (contract section 6)."""
        stamp = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": function_arn(event.function, event.qualifier or "$LATEST"),
                "condition": condition,
                "approximateInvokeCount": invokes,
            },
            "requestPayload": _json_or_text(event.payload),
        }
        if result is not None:
            context: dict[str, Any] = {
                "statusCode": 200,
                "executedVersion": result.executed_version,
            }
            if result.function_error is not None:
                context["functionError"] = result.function_error
            record["responseContext"] = context
            record["responsePayload"] = _json_or_text(result.payload)
        return record

    async def close(self, grace: float) -> None:
        """Let running attempts finish for up to ``grace`` seconds; the rest are cut short and,
        still in the store, run again at the next start."""
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._unsettled:  # a last try; what is left runs again at the next start
            try:
                await self._settle_again()
            except StoreFailed as exc:
                self._on_event(f"{len(self._unsettled)} events will run again: {exc.message}")

    # Seeing it

    async def stats(self, dead_letter_depth: Callable[[str], int | None]) -> list[EventStats]:
        now = self._clock()
        rows = await self._store.run(
            lambda db: db.execute(
                "SELECT request_id, function, received, attempts FROM events"
            ).fetchall()
        )
        running = set(self._running)
        waiting: dict[str, list[tuple[float, int]]] = {}
        for request_id, function, received, attempts in rows:
            if request_id not in running:  # a running event is counted as running only
                waiting.setdefault(function, []).append((received, attempts))
        result = []
        for name in sorted(set(waiting) | set(self._service.functions)):
            mine = waiting.get(name, [])
            in_flight = sum(1 for function in self._running_functions.values() if function == name)
            known = name in self._service.functions
            dlq = self._config_for(name, None).dead_letter_queue if known else None
            oldest = min((received for received, _ in mine), default=None)
            result.append(
                EventStats(
                    name,
                    len(mine),
                    None if oldest is None else round(now - oldest, 1),
                    in_flight,
                    sum(1 for _, attempts in mine if attempts > 0),
                    dlq,
                    dead_letter_depth(dlq) if dlq else None,
                )
            )
        return result


def _insert_events(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO events (request_id, function, payload, received, next_at, qualifier) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def _due(
    db: sqlite3.Connection,
    now: float,
    capacity: int,
    running: frozenset[str],
    full: frozenset[str],
) -> list[Event]:
    """Due events, oldest first, of functions with room (a backlog of one function at its limit
    must not hide the others' events)."""
    if capacity <= 0:
        return []
    others = ",".join("?" * len(full))
    rows = db.execute(
        "SELECT request_id, function, payload, received, attempts, qualifier FROM events "
        f"WHERE next_at <= ? AND function NOT IN ({others}) ORDER BY next_at LIMIT ?",
        (now, *full, capacity + len(running)),
    ).fetchall()
    return [Event(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows if r[0] not in running]


def _next_due(
    db: sqlite3.Connection, running: frozenset[str], full: frozenset[str]
) -> float | None:
    """When the next event that could start now is due: not one running, nor one of a function
    at its limit (it starts when one of that function's events ends)."""
    others = ",".join("?" * len(full))
    rows = db.execute(
        f"SELECT request_id, next_at FROM events WHERE function NOT IN ({others}) "
        "ORDER BY next_at LIMIT ?",
        (*full, len(running) + 1),
    ).fetchall()
    waiting = [next_at for request_id, next_at in rows if request_id not in running]
    return float(waiting[0]) if waiting else None


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # a function's answer may be anything, nested deep
        return payload.decode(errors="replace")


def _error_message(payload: bytes) -> str:
    body = _json_or_text(payload)
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("errorType") or body)
    return str(body)


def _new_id() -> str:
    return str(uuid.uuid4())
