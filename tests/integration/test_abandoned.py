"""An abandoned invocation never harms another, on the real engine with real runtimes.

The service runs in-process, as in test_serve_pool, with the Lambda API on a real HTTP server,
the event queue and the event sources over a real store. Each scenario warms two environments,
abandons a 3 s sleeper on one of them by one of the paths that can abandon an invocation, and
calls the same function for a fast answer. Had the sleeper's environment gone back to the pool
as idle, it would be the one handed out (the pool reuses the most recently freed): the fast call
would then wait for the sleeper, or fail with Runtime.ExitError as awslambdaric exits on its
refused answer. So each asserts that the fast call answered for itself, on the other
environment, before the sleeper ended, and that the sleeper's log and REPORT were recorded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator import manifest
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.aws import function_arn
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.queues import Queues
from orchestrator.events.sources import Sources
from orchestrator.events.store import Store
from orchestrator.http_server import serve
from orchestrator.manifest.triggers import AsyncConfig
from orchestrator.pool import Pool
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.service import Service, ServiceSettings
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, run
from tests.unit.rawhttp import Client, RawResponse, request_bytes

PY = FUNCTIONS / "python"
SLEEP_S = 3.0
INVOKE = "/2015-03-31/functions/{}/invocations"
MANIFEST = f"""
queues:
  work: {{visibility_timeout: 60}}
functions:
  sleepy: {{runtime: python3.13, handler: abandon.sleepy, code: {PY}, timeout: 20}}
  big: {{runtime: python3.13, handler: abandon.oversized, code: {PY}, timeout: 20}}
  drained:
    runtime: python3.13
    handler: abandon.sleepy
    code: {PY}
    timeout: 20
    events:
      - queue: work
        batch_size: 1
"""


@dataclass
class World:
    service: Service
    api: LambdaApi
    port: int
    store: Store
    queues: Queues
    events: EventQueue
    logged: dict[str, InvocationResult] = field(default_factory=dict)

    async def call(self, name: str, event: object) -> InvocationResult:
        payload = json.dumps(event).encode()
        request = InvokeRequest(payload, function_arn(name)).with_request_id()
        return await self.service.invoke(name, request)

    async def warm_two(self, name: str) -> None:
        """Two warm, idle environments of ``name``."""
        await asyncio.gather(*(self.call(name, {"hold": 0.5}) for _ in range(2)))
        await until(lambda: self.service.pool.in_flight() == 0, "both back in the pool")
        assert len(self.service.environments()) == 2

    def sleeping(self) -> str | None:
        """The request id a runtime is working on now (it has received it), if any."""
        for env in self.service._envs.values():  # no public view says "delivered"
            current = env.current
            if current is not None and current.delivered_at is not None:
                return current.request.request_id
        return None


async def until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def world(backend: DockerBackend, path: Path, state: Path) -> AsyncIterator[World]:
    logged: dict[str, InvocationResult] = {}

    def on_log(function: str, result: InvocationResult) -> None:
        logged[result.request_id] = result

    store = Store(state / "lrun.db")
    await asyncio.to_thread(store.open)
    try:
        async with hosted_invoker(backend, OWNER) as invoker:
            settings = ServiceSettings(300.0, 0.2)
            service = Service(backend, invoker, Pool(16), settings, on_log=on_log)
            service.load(manifest.load(path))
            queues = Queues(store)
            events = EventQueue(
                store, service, lambda name, qualifier: AsyncConfig(), queues.send_in
            )
            api = LambdaApi(service, events)
            server = await serve(api.router, "127.0.0.1", 0)
            try:
                yield World(service, api, server.port, store, queues, events, logged)
            finally:
                await server.close()
                await events.close(0.0)
                await service.close(grace=2 * SLEEP_S)
    finally:
        await asyncio.to_thread(store.close)


async def the_next_caller_is_unharmed(w: World) -> None:
    abandoned = w.sleeping()
    assert abandoned is not None
    fast = await w.call("sleepy", {"n": 2})
    answered_at = time.time()
    assert fast.function_error is None, fast.payload
    assert json.loads(fast.payload)["fast"] == 2

    await until(lambda: abandoned in w.logged, "the sleeper's record", 4 * SLEEP_S)
    slept = w.logged[abandoned]
    assert slept.function_error is None, slept.payload
    sleeper = json.loads(slept.payload)
    assert answered_at < sleeper["ended"], "the fast call waited for the abandoned sleeper"
    assert json.loads(fast.payload)["env"] != sleeper["env"]
    await until(lambda: f"slept {abandoned}" in slept.log, "the sleeper's last line")
    assert f"sleeping {abandoned}" in slept.log
    assert f"REPORT RequestId: {abandoned}" in slept.log
    assert slept.report.status is None

    # The sleeper's environment is healthy and serves again.
    await until(lambda: w.service.pool.in_flight() == 0, "every environment back")
    again = await asyncio.gather(*(w.call("sleepy", {"n": n}) for n in (3, 4)))
    assert [r.function_error for r in again] == [None, None], [r.payload for r in again]
    assert {json.loads(r.payload)["fast"] for r in again} == {3, 4}


@pytest.fixture
def path(write_manifest) -> Path:
    return write_manifest(MANIFEST)


Scenario = Callable[[World], Awaitable[None]]


def scenario(backend: DockerBackend, path: Path, tmp_path: Path, test: Scenario) -> None:
    async def main() -> None:
        async with world(backend, path, tmp_path) as w:
            await test(w)

    run(main())


async def disconnecting(w: World, headers: Mapping[str, str]) -> None:
    await w.warm_two("sleepy")
    client = await Client.connect(w.port)
    body = json.dumps({"sleep": SLEEP_S}).encode()
    await client.send(request_bytes("POST", INVOKE.format("sleepy"), body, headers))
    await until(lambda: w.sleeping() is not None, "the sleeper to start")
    await client.close()  # the client gives up (a read timeout, Ctrl-C)
    await the_next_caller_is_unharmed(w)


@pytest.mark.parametrize(
    "headers",
    [{"X-Amz-Log-Type": "Tail"}, {"X-Lrun-Log": "full"}, {}],
    ids=["tail", "full-log", "plain"],
)
def test_a_client_that_disconnects_harms_no_one(
    backend: DockerBackend, path: Path, tmp_path: Path, headers: dict[str, str]
) -> None:
    scenario(backend, path, tmp_path, lambda w: disconnecting(w, headers))


def test_an_asynchronous_attempt_cut_short_harms_no_one(
    backend: DockerBackend, path: Path, tmp_path: Path
) -> None:
    async def test(w: World) -> None:
        await w.warm_two("sleepy")
        dispatcher = asyncio.ensure_future(w.events.run())
        try:
            await w.events.accept("sleepy", json.dumps({"sleep": SLEEP_S}).encode(), "ev-1")
            await until(lambda: w.sleeping() is not None, "the event to run")
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)
        await w.events.close(0.0)  # the running attempt is cancelled
        await the_next_caller_is_unharmed(w)

    scenario(backend, path, tmp_path, test)


def test_an_event_source_stopped_on_a_reload_harms_no_one(
    backend: DockerBackend, path: Path, tmp_path: Path
) -> None:
    async def test(w: World) -> None:
        await w.warm_two("drained")
        loaded = w.service.manifest
        assert loaded is not None
        for spec in loaded.queues.values():
            await w.queues.ensure(spec)
        await w.queues.send("work", json.dumps({"sleep": SLEEP_S}))
        sources = Sources(w.service, w.events, w.queues, w.store, lambda message: None)
        sources.restart(loaded)
        await until(lambda: w.sleeping() is not None, "the batch to run")
        abandoned = w.sleeping()
        assert abandoned is not None
        sources.stop()  # as a reload does: the poller is cancelled inside its invocation
        await sources.wait_stopped()
        # The sleeper is "drained"'s; its environment must not be handed to it meanwhile.
        fast = await w.call("drained", {"n": 5})
        answered_at = time.time()
        assert fast.function_error is None and json.loads(fast.payload)["fast"] == 5
        await until(lambda: abandoned in w.logged, "the sleeper's record", 4 * SLEEP_S)
        slept = w.logged[abandoned]
        sleeper = json.loads(slept.payload)
        assert answered_at < sleeper["ended"], "the fast call waited for the abandoned sleeper"
        assert json.loads(fast.payload)["env"] != sleeper["env"]
        assert f"REPORT RequestId: {abandoned}" in slept.log

    scenario(backend, path, tmp_path, test)


def test_shutdown_waits_for_an_abandoned_invocation(
    backend: DockerBackend, path: Path, tmp_path: Path
) -> None:
    async def main() -> None:
        async with world(backend, path, tmp_path) as w:
            client = await Client.connect(w.port)
            body = json.dumps({"sleep": SLEEP_S}).encode()
            headers = {"X-Amz-Log-Type": "Tail"}
            await client.send(request_bytes("POST", INVOKE.format("sleepy"), body, headers))
            await until(lambda: w.sleeping() is not None, "the sleeper to start")
            abandoned = w.sleeping()
            await client.close()
        # world's exit closed the server, then the service (which waits for the sleeper).
        assert abandoned is not None and abandoned in w.logged
        slept = w.logged[abandoned]
        assert slept.function_error is None and slept.report.status is None, slept.payload
        assert json.loads(slept.payload)["slept"] is True
        assert f"REPORT RequestId: {abandoned}" in slept.log

    run(main())


def test_after_a_refused_oversized_response_the_next_call_gets_a_live_environment(
    backend: DockerBackend, path: Path, tmp_path: Path
) -> None:
    async def test(w: World) -> None:
        client = await Client.connect(w.port)

        async def invoke(body: bytes, headers: Mapping[str, str]) -> RawResponse:
            await client.send(request_bytes("POST", INVOKE.format("big"), body, headers))
            return await client.response(timeout=60)  # each may start an environment

        try:
            for headers in ({}, {"X-Amz-Log-Type": "Tail"}):
                big = await invoke(b'{"big": 1}', headers)
                assert big.status == 200, big.body[:300]
                assert big.headers.get("x-amz-function-error") == "Unhandled", big.body[:300]
                assert big.json()["errorType"] == "Function.ResponseSizeTooLarge"
                # At once, while awslambdaric is exiting after its 413.
                fine = await invoke(b'{"n": 1}', headers)
                assert "x-amz-function-error" not in fine.headers, fine.body
                assert fine.json()["fast"] == 1
                if headers:
                    tail = base64.b64decode(fine.headers["x-amz-log-result"]).decode()
                    assert "REPORT RequestId:" in tail
        finally:
            await client.close()

    scenario(backend, path, tmp_path, test)
