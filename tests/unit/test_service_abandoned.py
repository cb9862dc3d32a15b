"""An abandoned invocation never harms another (fake engine).

On Lambda a caller that goes away does not stop its invocation, and never affects another
caller's: the invocation runs to its end in its environment, which goes back to the pool only
when its runtime asks for the next event. Every path that can abandon an invocation is driven
here: a client of the Lambda API that disconnects (with ``LogType: Tail``, lrun's full log, or
neither), an asynchronous attempt cut short, an event source stopped on a reload, and the
server's shutdown.

Each scenario abandons a sleeper, then calls the same function for a fast answer. Had the
sleeper's environment gone back to the pool as idle, the fast call would be handed to it: it
would wait for the sleeper to end, come back with the sleeper's pid, and the sleeper's answer
would be refused (the fake runtime then exits, as awslambdaric does). So each scenario asserts
that the fast call answered for itself, from another environment, before the sleeper ended;
that no runtime had an answer refused; and that the sleeper's log and REPORT were recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.api.lambda_api import LambdaApi
from orchestrator.aws import function_arn
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.queues import Queues
from orchestrator.events.sources import Sources
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import AsyncConfig
from orchestrator.sandbox.invocation import MAX_RESPONSE_PAYLOAD, InvocationResult, InvokeRequest
from tests.fakes import FakeContext, Handler, Served, eventually, fake_service
from tests.unit.rawhttp import Client, request_bytes, run, serving

T = TypeVar("T")
SLEEP_S = 1.5  # the sleeper: long beside a fake cold start (milliseconds)
TIMEOUT_S = 20.0  # per scenario: a bug must fail a test, never hang it
INVOKE = "/2015-03-31/functions/{}/invocations"

MANIFEST = """\
queues:
  work: {visibility_timeout: 30}
functions:
  sleepy: {runtime: python3.13, code: ./code, handler: app.sleepy, timeout: 10}
  drained:
    runtime: python3.13
    code: ./code
    handler: app.sleepy
    timeout: 10
    events:
      - queue: work
        batch_size: 1
"""


@dataclass
class Watch:
    """What the sleepers did, and every invocation the service recorded."""

    ended: list[float] = field(default_factory=list)  # monotonic time each sleeper ended
    logged: dict[str, InvocationResult] = field(default_factory=dict)  # by request id
    texts: dict[str, str] = field(default_factory=dict)  # each log as it was when recorded
    records: Counter[str] = field(default_factory=Counter)  # how often each was recorded

    def on_log(self, function: str, result: InvocationResult) -> None:
        self.records[result.request_id] += 1
        self.logged[result.request_id] = result
        self.texts[result.request_id] = result.log  # what the server's log file gets

    def handlers(self) -> dict[str, Handler]:
        async def sleepy(event: Any, context: FakeContext) -> dict[str, Any]:
            if isinstance(event, dict) and "Records" in event:  # from the queue
                event = json.loads(event["Records"][0]["body"])
            if event.get("sleep"):
                context.log(f"sleeping {context.aws_request_id}")
                await asyncio.sleep(event["sleep"])
                context.log(f"slept {context.aws_request_id}")
                self.ended.append(time.monotonic())
                return {"slept": True, "pid": context.pid}
            return {"fast": event.get("n"), "pid": context.pid}

        def oversized(event: Any, context: FakeContext) -> bytes:
            if event.get("big"):
                return b'"' + b"x" * MAX_RESPONSE_PAYLOAD + b'"'
            return json.dumps({"fast": event.get("n"), "pid": context.pid}).encode()

        return {"app.sleepy": sleepy, "app.oversized": oversized}


@dataclass
class World:
    served: Served
    watch: Watch
    api: LambdaApi
    store: Store
    queues: Queues
    events: EventQueue

    def sleeper_delivered(self) -> str | None:
        """The request id of the sleeper, once a runtime has received it."""
        for fc in self.served.backend.live():
            if fc.request_ids:
                return fc.request_ids[0]
        return None

    def sleeper_pid(self) -> int:
        [pid] = [fc.pid for fc in self.served.backend.live() if fc.request_ids]
        return pid


def write_manifest(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# the fake backend runs handlers from its registry\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(MANIFEST)
    return path


@contextlib.asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    watch = Watch()
    store = Store(tmp_path / "state" / "lrun.db")
    await asyncio.to_thread(store.open)
    try:
        path = write_manifest(tmp_path)
        async with fake_service(path, watch.handlers(), on_log=watch.on_log) as served:
            queues = Queues(store)
            events = EventQueue(
                store, served.service, lambda name, qualifier: AsyncConfig(), queues.send_in
            )
            api = LambdaApi(served.service, events)
            w = World(served, watch, api, store, queues, events)
            try:
                yield w
            finally:
                await events.close(0.0)
    finally:
        await asyncio.to_thread(store.close)


def scenario(tmp_path: Path, test: Callable[[World], Awaitable[T]]) -> T:
    async def main() -> T:
        async with world(tmp_path) as w:
            return await test(w)

    return run(main(), TIMEOUT_S)


async def fast_call(w: World, n: int) -> InvocationResult:
    payload = json.dumps({"n": n}).encode()
    request = InvokeRequest(payload, function_arn("sleepy")).with_request_id()
    return await w.served.service.invoke("sleepy", request)


async def the_next_caller_is_unharmed(w: World, function: str = "sleepy") -> None:
    """With a sleeper abandoned and still running: a fast call answers for itself, from a second
    environment, without waiting for the sleeper; the sleeper runs to its end and is recorded;
    then the freed environments serve again."""
    abandoned = w.sleeper_delivered()
    assert abandoned is not None
    sleeper_pid = w.sleeper_pid()
    if function != "sleepy":  # the sleeper is another function's: start one of sleepy's
        await fast_call(w, 0)
    fast = await fast_call(w, 2)
    assert w.watch.ended == [], "the fast call waited for the abandoned sleeper"
    assert (fast.function_error, json.loads(fast.payload)["fast"]) == (None, 2)
    assert json.loads(fast.payload)["pid"] != sleeper_pid  # not handed the busy environment
    assert fast.report.status is None

    await eventually(lambda: abandoned in w.watch.logged, 2 * SLEEP_S, "the sleeper's record")
    slept = w.watch.logged[abandoned]
    assert slept.function_error is None and json.loads(slept.payload)["slept"] is True
    recorded = w.watch.texts[abandoned]  # complete when recorded, though answered early
    assert f"sleeping {abandoned}" in recorded and f"slept {abandoned}" in recorded
    assert f"REPORT RequestId: {abandoned}" in recorded
    assert slept.report.status is None  # it ended by itself: not a timeout, not an exit

    # Both environments come back and serve again; no runtime had an answer refused.
    await eventually(lambda: w.served.service.pool.in_flight() == 0, what="environments back")
    again = [await fast_call(w, n) for n in (3, 4)]
    assert [json.loads(r.payload)["fast"] for r in again] == [3, 4]
    assert all(r.function_error is None for r in again)
    assert all(fc.refused == [] for fc in w.served.backend.live())
    assert all(fc.exit is None for fc in w.served.backend.live())
    assert len(w.served.backend.exits) == 0
    assert set(w.watch.records.values()) == {1}, w.watch.records  # each recorded once


# A client of the Lambda API that goes away


async def disconnecting_client(w: World, headers: Mapping[str, str]) -> None:
    async with serving(w.api.router) as port:
        client = await Client.connect(port)
        body = json.dumps({"sleep": SLEEP_S}).encode()
        await client.send(request_bytes("POST", INVOKE.format("sleepy"), body, headers))
        await eventually(lambda: w.sleeper_delivered() is not None, what="the sleeper to start")
        await client.close()  # the client gives up: its handler is cancelled
        await the_next_caller_is_unharmed(w)


def test_a_client_with_log_type_tail_that_disconnects_harms_no_one(tmp_path: Path) -> None:
    scenario(tmp_path, lambda w: disconnecting_client(w, {"X-Amz-Log-Type": "Tail"}))


def test_a_client_asking_for_the_full_log_that_disconnects_harms_no_one(tmp_path: Path) -> None:
    scenario(tmp_path, lambda w: disconnecting_client(w, {"X-Lrun-Log": "full"}))


def test_a_plain_client_that_disconnects_harms_no_one(tmp_path: Path) -> None:
    scenario(tmp_path, lambda w: disconnecting_client(w, {}))


def test_a_cancelled_caller_of_the_service_harms_no_one(tmp_path: Path) -> None:
    async def test(w: World) -> None:
        payload = json.dumps({"sleep": SLEEP_S}).encode()
        request = InvokeRequest(payload, function_arn("sleepy")).with_request_id()
        caller = asyncio.ensure_future(w.served.service.invoke("sleepy", request))
        await eventually(lambda: w.sleeper_delivered() is not None, what="the sleeper to start")
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        assert caller.cancelled()
        await the_next_caller_is_unharmed(w)

    scenario(tmp_path, test)


# Asynchronous invocation and event sources


def test_an_asynchronous_attempt_cut_short_harms_no_one(tmp_path: Path) -> None:
    async def test(w: World) -> None:
        dispatcher = asyncio.ensure_future(w.events.run())
        try:
            await w.events.accept("sleepy", json.dumps({"sleep": SLEEP_S}).encode(), "ev-1")
            await eventually(lambda: w.sleeper_delivered() is not None, what="the event to run")
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)
        await w.events.close(0.0)  # the running attempt is cancelled
        await the_next_caller_is_unharmed(w)

    scenario(tmp_path, test)


def test_an_event_source_stopped_on_a_reload_harms_no_one(tmp_path: Path) -> None:
    async def test(w: World) -> None:
        loaded = w.served.service.manifest
        assert loaded is not None
        for spec in loaded.queues.values():
            await w.queues.ensure(spec)
        await w.queues.send("work", json.dumps({"sleep": SLEEP_S}))
        sources = Sources(w.served.service, w.events, w.queues, w.store, lambda message: None)
        sources.restart(loaded)
        await eventually(lambda: w.sleeper_delivered() is not None, 3.0, "the batch to run")
        sources.stop()  # as a reload does: the poller is cancelled inside its invocation
        await asyncio.sleep(0)
        await the_next_caller_is_unharmed(w, function="drained")
        await sources.wait_stopped()

    scenario(tmp_path, test)


# Shutdown


def test_shutdown_waits_for_an_abandoned_invocation_and_records_it(tmp_path: Path) -> None:
    async def test(w: World) -> None:
        async with serving(w.api.router) as port:
            client = await Client.connect(port)
            body = json.dumps({"sleep": SLEEP_S}).encode()
            headers = {"X-Amz-Log-Type": "Tail"}
            await client.send(request_bytes("POST", INVOKE.format("sleepy"), body, headers))
            await eventually(lambda: w.sleeper_delivered() is not None, what="the sleeper")
            abandoned = w.sleeper_delivered()
        # The server has closed every connection (the handler is cancelled); now the service.
        started = time.monotonic()
        await w.served.service.close(grace=2 * SLEEP_S)
        assert w.watch.ended and w.watch.ended[0] <= time.monotonic()
        assert time.monotonic() - started < 2 * SLEEP_S  # it ended by itself, in its time
        assert abandoned is not None and abandoned in w.watch.logged
        slept = w.watch.logged[abandoned]
        assert slept.function_error is None and slept.report.status is None
        assert f"REPORT RequestId: {abandoned}" in slept.log
        assert all(fc.refused == [] for fc in w.served.backend.live())
        await client.close()

    scenario(tmp_path, test)


# A runtime that exits after answering is replaced before anyone is given it


def test_after_a_refused_oversized_response_the_next_call_gets_a_new_environment(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path)
    path.write_text(
        "functions:\n"
        "  big: {runtime: python3.13, code: ./code, handler: app.oversized, timeout: 10}\n"
    )
    watch = Watch()

    async def main() -> None:
        # The engine reports an exit a while after it: the runtime is gone well before lrun
        # hears of it, and must not be handed an invocation in between.
        handlers = watch.handlers()
        async with fake_service(path, handlers, on_log=watch.on_log, exit_delay=0.3) as s:
            api = LambdaApi(s.service)
            async with serving(api.router) as port:
                client = await Client.connect(port)
                try:
                    for headers in ({}, {"X-Amz-Log-Type": "Tail"}):
                        too_big = await client.request(
                            "POST", INVOKE.format("big"), b'{"big": true}', headers
                        )
                        assert too_big.status == 200
                        assert too_big.headers["x-amz-function-error"] == "Unhandled"
                        error = too_big.json()
                        assert error["errorType"] == "Function.ResponseSizeTooLarge"
                        # At once, before the runtime has exited: never handed the dying one.
                        fine = await client.request(
                            "POST", INVOKE.format("big"), b'{"n": 1}', headers
                        )
                        assert fine.status == 200, fine.body
                        assert "x-amz-function-error" not in fine.headers, fine.body
                        assert fine.json()["fast"] == 1
                        if headers:
                            tail = base64.b64decode(fine.headers["x-amz-log-result"]).decode()
                            assert "REPORT RequestId:" in tail
                finally:
                    await client.close()
            exits = [e.exit_code for e in s.backend.exits]
            assert exits == [1, 1]  # each refused runtime ended itself, as awslambdaric does
            assert [path for fc in s.backend.live() for path, _ in fc.refused] == []
            assert len(watch.logged) == 4

    run(main(), TIMEOUT_S)
