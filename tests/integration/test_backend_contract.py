"""The fake engine of the unit tests against the real one: the same behaviours through the same
invoker, so what the unit tests prove on ``tests.fakes.FakeBackend`` holds on Docker.

Each test runs twice: on the fake (no Docker needed) and on ``DockerBackend`` with the real
runtime images. The Docker leg runs ``probe.count`` from ``functions/python``; the fake leg
registers a handler that behaves the same (global state that lives as long as the environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator.aws import function_arn
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox.backend import LABEL_OWNER, NETWORK_PUBLIC, Backend
from orchestrator.sandbox.environment import Environment
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from tests.conftest import FUNCTIONS
from tests.fakes import KILLED, FakeBackend, FakeContext, RecordingBackend, engine_calls
from tests.integration.conftest import OWNER, load_function, run

MANIFEST = f"""
functions:
  counter:
    runtime: python3.13
    handler: probe.count
    code: {FUNCTIONS / "python"}
"""
EXIT_WAIT_S = 10.0  # how long a killed environment may take to be reported dead


def count(event: Any, context: FakeContext) -> dict[str, int]:
    """``probe.count`` for the fake: state survives between invocations of one environment."""
    context.state["invocations"] = context.state.get("invocations", 0) + 1
    return {"pid": context.pid, "invocations": context.state["invocations"]}


Engine = Callable[[], contextlib.AbstractAsyncContextManager[tuple[RecordingBackend, str]]]


@pytest.fixture(params=["fake", "docker"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Opens the leg's backend (recording its calls) and says which owner label to use."""
    if request.param == "docker":
        docker_backend = request.getfixturevalue("backend")  # skips without an engine

        @contextlib.asynccontextmanager
        async def docker() -> AsyncIterator[tuple[RecordingBackend, str]]:
            yield RecordingBackend(docker_backend), OWNER  # the session removes leftovers

        return docker

    @contextlib.asynccontextmanager
    async def fake() -> AsyncIterator[tuple[RecordingBackend, str]]:
        backend = FakeBackend({"probe.count": count})
        try:
            yield RecordingBackend(backend), "contract-fake"
        finally:
            await backend.aclose()

    return fake


@pytest.fixture
def spec(write_manifest: Callable[[str], Path]) -> FunctionSpec:
    return load_function(write_manifest(MANIFEST), "counter")


def invocation() -> InvokeRequest:
    return InvokeRequest(b"{}", function_arn("counter")).with_request_id()


async def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@contextlib.asynccontextmanager
async def started(
    engine: Engine, spec: FunctionSpec
) -> AsyncIterator[tuple[RecordingBackend, str, Any, Environment]]:
    """A hosted invoker on the leg's backend, with one environment started (stopped after)."""
    async with engine() as (recording, owner):
        backend = cast(Backend, recording)
        async with hosted_invoker(backend, owner, [NETWORK_PUBLIC]) as invoker:
            env = await invoker.start_environment(spec)
            try:
                yield recording, owner, invoker, env
            finally:
                await invoker.stop_environment(env)


async def listed(recording: RecordingBackend, owner: str) -> set[str]:
    return {c.id for c in await asyncio.to_thread(recording.containers, {LABEL_OWNER: owner})}


def answer(result: InvocationResult) -> Any:
    return json.loads(result.payload)


def test_an_invocation_returns_the_handlers_answer_and_a_warm_one_makes_no_engine_call(
    engine: Engine, spec: FunctionSpec
) -> None:
    async def scenario() -> tuple[InvocationResult, InvocationResult, list[str], list[str]]:
        async with started(engine, spec) as (recording, _, invoker, env):
            cold_calls = engine_calls(recording.calls)
            first = await invoker.run_on(env, spec, invocation())
            mark = len(recording.calls)
            second = await invoker.run_on(env, spec, invocation())
            return first, second, cold_calls, engine_calls(recording.calls[mark:])

    first, second, cold_calls, warm_calls = run(asyncio.wait_for(scenario(), 60))
    assert first.function_error is None, first.payload
    assert answer(first)["invocations"] == 1
    assert answer(second) == {"pid": answer(first)["pid"], "invocations": 2}
    assert first.report.init_duration_ms is not None
    assert second.report.init_duration_ms is None
    assert "run" in cold_calls and "open_output" in cold_calls
    assert warm_calls == []


def test_a_killed_environment_is_reported_dead(engine: Engine, spec: FunctionSpec) -> None:
    async def scenario() -> tuple[bool, Environment]:
        async with started(engine, spec) as (recording, _, invoker, env):
            await invoker.run_on(env, spec, invocation())
            assert env.container is not None
            await asyncio.to_thread(recording.kill, env.container.id)
            dead = await wait_until(lambda: env.exited is not None, EXIT_WAIT_S)
            return dead, env

    dead, env = run(asyncio.wait_for(scenario(), 60))
    assert dead, f"no exit reported within {EXIT_WAIT_S} s"
    assert env.exited is not None and env.container is not None
    assert env.exited.id == env.container.id
    assert (env.exited.exit_code, env.exited.oom_killed) == (KILLED, False)


def test_containers_lists_a_started_one_by_owner_until_it_is_gone(
    engine: Engine, spec: FunctionSpec
) -> None:
    async def scenario() -> tuple[set[str], set[str], bool, str]:
        async with started(engine, spec) as (recording, owner, invoker, env):
            assert env.container is not None
            cid = env.container.id
            mine = await asyncio.to_thread(recording.containers, {LABEL_OWNER: owner})
            others = await asyncio.to_thread(recording.containers, {LABEL_OWNER: "nobody-0-0"})
            await invoker.stop_environment(env)
            deadline = time.monotonic() + EXIT_WAIT_S
            while still := cid in await listed(recording, owner):  # auto-removal follows a kill
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            return {c.id for c in mine}, {c.id for c in others}, not still, cid

    mine, others, gone, cid = run(asyncio.wait_for(scenario(), 60))
    assert cid in mine
    assert cid not in others
    assert gone, "a killed container is still listed"
