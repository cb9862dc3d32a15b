"""Unit tests for orchestrator.service: warm pools run for real on a fake container engine.

The whole stack is the one `lrun serve` runs (Service, Pool, Invoker, the Runtime API over HTTP
on loopback); only the engine is ``tests.fakes.FakeBackend``, whose "containers" are asyncio tasks
that speak the Runtime API from their own 127.0.0.N address and run Python handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator import manifest
from orchestrator.aws import function_arn
from orchestrator.errors import BackendError, BackendUnavailable, LambdaError, TooManyRequests
from orchestrator.pool import HOST_LIMIT, LATEST, RESERVED_LIMIT, Reuse
from orchestrator.sandbox.backend import LABEL_OWNER, NETWORK_PRIVATE, NETWORK_PUBLIC
from orchestrator.sandbox.container import host_cores
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.served import Alias
from orchestrator.service import Service
from tests.fakes import (
    KILLED,
    FakeBackend,
    FakeContext,
    Handler,
    OutOfMemory,
    Served,
    eventually,
    fake_service,
)
from tests.unit.rawhttp import run

T = TypeVar("T")
TIMEOUT_S = 4.0  # per scenario: a bug must fail a test, never hang it


def write_manifest(tmp_path: Path, functions: Mapping[str, str]) -> Path:
    """An lrun.yaml beside a code directory ``code/``; each value is a function's flow mapping
    without runtime and code, e.g. ``"handler: app.echo, memory: 256"``."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# the fake backend runs handlers from its registry\n")
    lines = ["functions:"]
    for name, settings in functions.items():
        lines.append(f"  {name}: {{runtime: python3.13, code: ./code, {settings}}}")
    path = tmp_path / "lrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def provisioned(s: Served, function: str, qualifier: str = "1") -> tuple[int, int]:
    """(requested, ready) provisioned environments of a version or an alias."""
    found = s.service.provisioned_status(function, qualifier)
    return (0, 0) if found is None else (found.requested, found.ready)


def provision(s: Served, function: str, count: int) -> None:
    """Publish version 1 of ``function`` as it is and keep ``count`` environments of it
    provisioned (provisioned concurrency is for versions and aliases only, as on Lambda)."""
    spec = s.service.function(function).spec
    s.service.put_version(function, "1", spec, f"{function}-1")
    s.service.set_provisioned(function, "1", count)


async def call_one(service: Service, name: str, event: object = None) -> InvocationResult:
    """Invoke version 1 of ``name``."""
    payload = json.dumps(event if event is not None else {}).encode()
    invocation = InvokeRequest(payload, function_arn(name, "1"), "1").with_request_id()
    return await service.invoke(name, invocation)


def echo(event: Any, context: FakeContext) -> dict[str, Any]:
    context.log(f"echo {json.dumps(event)}")
    return {
        "echo": event,
        "pid": context.pid,
        "request_id": context.aws_request_id,
        "init_type": context.env["AWS_LAMBDA_INITIALIZATION_TYPE"],
    }


def fail(event: Any, context: FakeContext) -> None:
    raise ValueError("boom")


def crash(event: Any, context: FakeContext) -> None:
    raise SystemExit(event.get("code", 3))


def hog(event: Any, context: FakeContext) -> None:
    raise OutOfMemory()


def gated(gate: asyncio.Event) -> Handler:
    """A handler that holds its invocation until ``gate`` is set."""

    async def hold(event: Any, context: FakeContext) -> dict[str, Any]:
        await gate.wait()
        return {"pid": context.pid}

    return hold


HANDLERS: dict[str, Handler] = {"app.echo": echo, "app.fail": fail, "app.crash": crash}


def request(name: str, event: object = None) -> InvokeRequest:
    payload = json.dumps(event if event is not None else {}).encode()
    return InvokeRequest(payload, function_arn(name)).with_request_id()


async def call(service: Service, name: str, event: object = None) -> InvocationResult:
    return await service.invoke(name, request(name, event))


def body(result: InvocationResult) -> Any:
    return json.loads(result.payload)


def scenario(
    path: Path,
    test: Callable[[Served], Awaitable[T]],
    handlers: Mapping[str, Handler] | None = None,
    **options: Any,
) -> T:
    """Run ``test`` against a fresh service on a fake backend, with a time limit."""

    async def main() -> T:
        async with fake_service(path, HANDLERS if handlers is None else handlers, **options) as s:
            return await test(s)

    return run(main(), TIMEOUT_S)


def kinds(served: Served, function: str) -> list[str]:
    return sorted(v.kind for v in served.service.environments() if v.function == function)


def states(served: Served, function: str) -> list[str]:
    return sorted(v.state for v in served.service.environments() if v.function == function)


# Warm reuse


def test_an_environment_back_before_a_new_one_starts_is_taken_instead(tmp_path: Path) -> None:
    """An invocation that comes while every environment is busy is decided as a new one; its
    task starts a turn of the loop later, when the busy one may be back already (its runtime's
    /next and the client's next request can arrive in the same turn): it then takes that one,
    and no environment is started for nothing."""
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = await call(s.service, "echo", {"n": 1})
        await eventually(lambda: [v.state for v in s.service.environments()] == ["idle"])
        [slot_id] = s.service._envs
        now = asyncio.get_running_loop().time
        # Its one environment busy (as if still answering), a new invocation is decided as a
        # new environment, and that one is back before the new invocation's task starts.
        assert s.service.pool.acquire("echo", now(), "held", LATEST) == Reuse(slot_id)
        pending = s.service.start("echo", request("echo", {"n": 2}))
        assert s.service.pool.release(slot_id, now())
        second = await pending
        assert body(second)["pid"] == body(first)["pid"]
        assert len(s.backend.live()) == 1

    scenario(path, test)


def test_a_second_invocation_reuses_the_warm_environment_with_no_engine_call(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        before_cold = len(s.backend.calls)
        first = await call(s.service, "echo", {"n": 1})
        cold_calls = s.backend.engine_calls(before_cold)
        before_warm = len(s.backend.calls)
        second = await call(s.service, "echo", {"n": 2})
        assert s.backend.engine_calls(before_warm) == []
        assert "run" in cold_calls and "open_output" in cold_calls
        assert body(first)["echo"] == {"n": 1} and body(second)["echo"] == {"n": 2}
        assert body(first)["pid"] == body(second)["pid"]
        assert first.report.init_duration_ms is not None
        assert second.report.init_duration_ms is None
        assert "Init Duration" not in second.log and "Init Duration" in first.log
        assert len(s.backend.live()) == 1
        [view] = s.service.environments()
        assert (view.function, view.state, view.kind, view.invocations) == (
            "echo",
            "idle",
            "on-demand",
            2,
        )
        assert view.memory_used_mb == 42 and view.memory_mb == 128
        state = s.service.functions["echo"]
        assert (state.invocations, state.errors, len(state.durations_ms)) == (2, 0, 2)

    scenario(path, test)


def test_the_container_is_what_the_invoker_asked_for(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo, memory: 256"})

    async def test(s: Served) -> None:
        result = await call(s.service, "echo")
        [spec] = s.backend.specs
        assert spec.labels[LABEL_OWNER] == s.owner
        assert spec.environment["_HANDLER"] == "app.echo"
        assert spec.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert spec.memory_bytes == 256 * 1024 * 1024
        assert body(result)["init_type"] == "on-demand"
        assert result.report.memory_mb == 256 and result.report.max_memory_used_mb == 42

    scenario(path, test)


def test_a_private_network_function_runs_on_the_same_runtime_api(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"inner": "handler: app.echo, network: private"})

    async def test(s: Served) -> None:
        result = await call(s.service, "inner")
        assert result.function_error is None
        assert s.backend.networks[NETWORK_PRIVATE] is True  # internal: no route off the host
        assert s.backend.specs[0].network == NETWORK_PRIVATE

    scenario(path, test)


def test_init_runs_boosted_and_the_memorys_share_applies_from_the_first_invocation(
    tmp_path: Path,
) -> None:
    """Lambda's init is not held to 128 MB's 0.07 vCPU: the environment starts with the init
    quota, lowered once when its runtime first asks for work; warm invocations change nothing."""
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        await call(s.service, "echo", {"n": 1})
        [spec] = s.backend.specs
        assert spec.init_nano_cpus == min(2, host_cores()) * 1_000_000_000
        assert spec.nano_cpus == 128 * 1_000_000_000 // 1769
        [(container_id, lowered)] = s.backend.cpu_limits
        assert container_id == s.backend.live()[0].id and lowered == spec.nano_cpus
        before_warm = len(s.backend.calls)
        await call(s.service, "echo", {"n": 2})
        assert s.backend.engine_calls(before_warm) == [] and len(s.backend.cpu_limits) == 1

    scenario(path, test)


def test_a_function_error_keeps_the_environment_warm(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fail": "handler: app.fail"})

    async def test(s: Served) -> None:
        first = await call(s.service, "fail")
        second = await call(s.service, "fail")
        assert first.function_error == "Unhandled"
        assert body(first)["errorType"] == "ValueError"
        assert "[ERROR] ValueError: boom" in first.log
        assert len(s.backend.specs) == 1  # the second ran in the same environment
        assert second.report.init_duration_ms is None
        assert s.service.functions["fail"].errors == 2

    scenario(path, test)


# Scale-out and throttles


def test_concurrent_invocations_scale_out_one_environment_each(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"hold": "handler: app.hold"})
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        runs = [asyncio.ensure_future(call(s.service, "hold")) for _ in range(3)]
        await eventually(lambda: sum(len(fc.request_ids) for fc in s.backend.live()) == 3)
        assert s.service.pool.in_flight("hold") == 3
        assert states(s, "hold") == ["busy", "busy", "busy"]
        gate.set()
        results = await asyncio.gather(*runs)
        assert len({body(r)["pid"] for r in results}) == 3
        assert all(r.report.init_duration_ms is not None for r in results)
        # A second wave finds all three warm.
        again = await asyncio.gather(*(call(s.service, "hold") for _ in range(3)))
        assert {body(r)["pid"] for r in again} == {body(r)["pid"] for r in results}
        assert len(s.backend.specs) == 3
        assert states(s, "hold") == ["idle", "idle", "idle"]

    scenario(path, test, {"app.hold": gated(gate)})


def test_reserved_concurrency_throttles_with_lambdas_reason(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        {
            "capped": "handler: app.hold, reserved_concurrency: 1",
            "zero": "handler: app.echo, reserved_concurrency: 0",
        },
    )
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        first = asyncio.ensure_future(call(s.service, "capped"))
        await eventually(lambda: s.service.pool.in_flight("capped") == 1)
        with pytest.raises(TooManyRequests) as capped:
            await call(s.service, "capped")
        with pytest.raises(TooManyRequests) as zero:
            await call(s.service, "zero")
        gate.set()
        assert (await first).function_error is None
        assert capped.value.reason == RESERVED_LIMIT
        assert capped.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert zero.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert capped.value.body() == {
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        }
        assert s.service.functions["capped"].throttles == 1
        assert s.service.functions["zero"].throttles == 1
        assert len(s.backend.specs) == 1  # a throttle starts nothing
        await call(s.service, "capped")  # the slot is free again

    handlers = {"app.hold": gated(gate), "app.echo": echo}
    scenario(path, test, handlers)


def test_the_host_limit_throttles_across_functions(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"a": "handler: app.hold", "b": "handler: app.hold"})
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        held = [asyncio.ensure_future(call(s.service, name)) for name in ("a", "b")]
        await eventually(lambda: s.service.pool.in_flight() == 2)
        with pytest.raises(TooManyRequests) as throttled:
            await call(s.service, "a")
        gate.set()
        await asyncio.gather(*held)
        assert throttled.value.reason == HOST_LIMIT == "ConcurrentInvocationLimitExceeded"
        assert len(s.backend.specs) == 2

    scenario(path, test, {"app.hold": gated(gate)}, host_limit=2)


# Idle reaping


def test_housekeeping_reaps_environments_idle_past_the_ttl(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = await call(s.service, "echo")
        s.service.housekeeping()  # not idle long enough yet
        assert len(s.service.environments()) == 1 and len(s.backend.live()) == 1
        await asyncio.sleep(0.1)
        s.service.housekeeping()
        assert s.service.environments() == []  # out of the pool at once, stopped behind
        await eventually(lambda: s.backend.live() == [], what="the idle environment to stop")
        await eventually(lambda: len(s.backend.exits) == 1)
        assert s.backend.exits[0].exit_code == KILLED
        again = await call(s.service, "echo")
        assert body(again)["pid"] != body(first)["pid"]
        assert again.report.init_duration_ms is not None

    scenario(path, test, idle_ttl=0.08)


def test_a_busy_environment_is_not_reaped(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"hold": "handler: app.hold"})
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        held = asyncio.ensure_future(call(s.service, "hold"))
        await eventually(lambda: states(s, "hold") == ["busy"])
        await asyncio.sleep(0.02)
        s.service.housekeeping()
        assert len(s.backend.live()) == 1
        gate.set()
        assert (await held).function_error is None

    scenario(path, test, {"app.hold": gated(gate)}, idle_ttl=0.01)


# Provisioned concurrency


def test_housekeeping_creates_provisioned_environments_and_reports_them_ready(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"warm": "handler: app.echo"})

    async def test(s: Served) -> None:
        provision(s, "warm", 2)
        assert provisioned(s, "warm") == (2, 0)
        await eventually(lambda: len(s.backend.specs) == 2)  # started at once
        s.service.housekeeping()
        await eventually(lambda: len(s.backend.live()) == 2)
        assert provisioned(s, "warm") == (2, 0)  # still initialising
        assert states(s, "warm") == ["initialising", "initialising"]
        await eventually(lambda: provisioned(s, "warm") == (2, 2))
        assert states(s, "warm") == ["provisioned", "provisioned"]
        assert kinds(s, "warm") == ["provisioned-concurrency"] * 2
        assert {spec.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] for spec in s.backend.specs} == {
            "provisioned-concurrency"
        }
        s.service.housekeeping()  # already at the number: nothing more
        assert len(s.backend.specs) == 2
        before = len(s.backend.calls)
        result = await call_one(s.service, "warm")
        assert s.backend.engine_calls(before) == []
        assert result.report.init_duration_ms is None  # initialised ahead of traffic
        assert body(result)["init_type"] == "provisioned-concurrency"

    scenario(path, test, init_delay=0.05)


def test_invocations_beyond_provisioned_spill_over_on_demand(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"warm": "handler: app.hold"})
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        provision(s, "warm", 1)
        await eventually(lambda: provisioned(s, "warm") == (1, 1))
        runs = [asyncio.ensure_future(call_one(s.service, "warm")) for _ in range(2)]
        await eventually(lambda: s.service.pool.in_flight("warm") == 2)
        gate.set()
        results = await asyncio.gather(*runs)
        assert sorted(r.report.init_duration_ms is None for r in results) == [False, True]
        assert kinds(s, "warm") == ["on-demand", "provisioned-concurrency"]

    scenario(path, test, {"app.hold": gated(gate)})


def test_a_provisioned_environment_that_dies_is_replaced(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"warm": "handler: app.echo"})

    async def test(s: Served) -> None:
        provision(s, "warm", 2)
        await eventually(lambda: provisioned(s, "warm") == (2, 2))
        victim = s.backend.live()[0]
        s.backend.kill(victim.id)  # behind the service's back
        await eventually(lambda: len(s.backend.specs) == 3, what="a replacement")
        await eventually(lambda: provisioned(s, "warm") == (2, 2))
        assert victim.id not in {fc.id for fc in s.backend.live()}
        assert len(s.backend.live()) == 2

    scenario(path, test)


def test_lowering_provisioned_concurrency_stops_the_surplus(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"warm": "handler: app.echo"})

    async def test(s: Served) -> None:
        provision(s, "warm", 2)
        await eventually(lambda: provisioned(s, "warm") == (2, 2))
        s.service.set_provisioned("warm", "1", 1)
        await eventually(lambda: len(s.backend.live()) == 1)
        assert provisioned(s, "warm") == (1, 1)
        s.service.set_provisioned("warm", "1", 0)
        await eventually(lambda: s.backend.live() == [])
        assert provisioned(s, "warm") == (0, 0)

    scenario(path, test)


# Environments that die


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (3, "Runtime exited with error: exit status 3"),
        (0, "Runtime exited without providing a reason"),
        (139, "Runtime exited with error: signal: segmentation fault"),
    ],
)
def test_a_runtime_that_exits_yields_exit_error_and_its_environment_leaves_the_pool(
    tmp_path: Path, code: int, reason: str
) -> None:
    path = write_manifest(tmp_path, {"crash": "handler: app.crash", "echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        warm = await call(s.service, "echo")
        failed = await call(s.service, "crash", {"code": code})
        assert failed.function_error == "Unhandled"
        assert body(failed) == {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {failed.request_id} Error: {reason}",
        }
        assert failed.report.status == "error"
        assert failed.report.error_type == "Runtime.ExitError"
        assert f"{reason}\nRuntime.ExitError\n" in failed.log
        assert [slot.function for slot in s.service.pool.slots()] == ["echo"]
        assert [fc.spec.environment["_HANDLER"] for fc in s.backend.live()] == ["app.echo"]
        # The next invocation gets a new environment; the other function's is untouched.
        again = await call(s.service, "crash", {"code": code})
        assert body(again)["errorType"] == "Runtime.ExitError"
        assert again.report.init_duration_ms is not None
        assert len(s.backend.specs) == 3
        after = await call(s.service, "echo")
        assert body(after)["pid"] == body(warm)["pid"]

    scenario(path, test)


def test_an_oom_killed_runtime_yields_out_of_memory(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"hog": "handler: app.hog, memory: 128"})

    async def test(s: Served) -> None:
        result = await call(s.service, "hog")
        assert body(result) == {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: "
            "signal: killed",
        }
        assert result.report.max_memory_used_mb == 128
        assert s.service.environments() == []

    scenario(path, test, {"app.hog": hog})


def test_an_unknown_handler_fails_init_and_the_environment_goes(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"missing": "handler: app.nowhere"})

    async def test(s: Served) -> None:
        result = await call(s.service, "missing")
        assert result.function_error == "Unhandled"
        assert body(result)["errorType"] == "Runtime.HandlerNotFound"
        await eventually(lambda: s.backend.live() == [])
        await eventually(lambda: s.service.environments() == [])
        assert [e.exit_code for e in s.backend.exits] == [1]

    scenario(path, test)


def test_a_failed_start_is_a_lambda_error_and_frees_the_slot(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        with pytest.raises(LambdaError) as failed:
            await call(s.service, "echo")
        assert "could not start an execution environment" in str(failed.value)
        assert s.service.pool.slots() == [] and s.service.pool.in_flight() == 0

    scenario(path, test, run_error=BackendError("Docker could not start container: no image"))


# Reloading


def test_load_with_a_changed_configuration_drains_old_environments(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = await call(s.service, "echo")
        [old] = s.backend.live()
        write_manifest(tmp_path, {"echo": "handler: app.echo, memory: 256"})
        s.service.load(manifest.load(path))
        await eventually(lambda: old.exit is not None, what="the old environment to stop")
        assert old.exit is not None and old.exit.exit_code == KILLED
        second = await call(s.service, "echo")
        assert body(second)["pid"] != body(first)["pid"]
        assert second.report.init_duration_ms is not None
        assert second.report.memory_mb == 256
        assert len(s.service.environments()) == 1

    scenario(path, test)


def test_load_with_the_same_configuration_keeps_environments(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = await call(s.service, "echo")
        s.service.load(manifest.load(path))
        second = await call(s.service, "echo")
        assert body(second)["pid"] == body(first)["pid"]
        assert second.report.init_duration_ms is None

    scenario(path, test)


def test_a_busy_environment_of_an_old_configuration_is_stopped_when_it_finishes(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"hold": "handler: app.hold"})
    gate = asyncio.Event()

    async def test(s: Served) -> None:
        held = asyncio.ensure_future(call(s.service, "hold"))
        await eventually(lambda: states(s, "hold") == ["busy"])
        [old] = s.backend.live()
        write_manifest(tmp_path, {"hold": "handler: app.hold, timeout: 5"})
        s.service.load(manifest.load(path))
        assert old.exit is None  # busy: it finishes its invocation first
        gate.set()
        assert (await held).function_error is None
        await eventually(lambda: old.exit is not None, what="the old environment to stop")
        again = await call(s.service, "hold")
        assert body(again)["pid"] != old.pid

    scenario(path, test, {"app.hold": gated(gate)})


def test_a_code_edit_sends_new_invocations_to_new_environments(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = await call(s.service, "echo")
        assert s.service.apply_revisions(s.service.scan_revisions()) is False
        (tmp_path / "code" / "more.py").write_text("x = 1\n")
        assert s.service.apply_revisions(s.service.scan_revisions()) is True
        second = await call(s.service, "echo")
        assert body(second)["pid"] != body(first)["pid"]

    scenario(path, test)


def test_a_kill_the_engine_fails_is_tried_again_until_the_container_is_gone(
    tmp_path: Path,
) -> None:
    """Issue 8: a kill that failed (the engine out of reach, lrun out of descriptors) left a
    container running that lrun no longer tracked."""
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        await call(s.service, "echo")
        [env] = s.service._envs.values()
        assert env.container is not None
        cid = env.container.id
        real_kill, failures = s.backend.kill, [2]

        def flaky_kill(container_id: str) -> None:
            if failures[0] > 0:
                failures[0] -= 1
                raise BackendUnavailable("Docker is not reachable (EMFILE)")
            real_kill(container_id)

        s.backend.kill = flaky_kill  # type: ignore[method-assign]
        await s.invoker.stop_environment(env)  # never raises
        assert cid in s.invoker.unkilled  # still tracked
        # Gone: killed again, or ended by its runtime, whose connections were closed with it.
        await eventually(lambda: not s.backend.live(), what="the retried kill", timeout=3.5)
        await eventually(lambda: not s.invoker.unkilled, what="the container forgotten")

    scenario(path, test)


# Shutdown


def test_close_stops_every_environment(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path,
        {"echo": "handler: app.echo", "warm": "handler: app.echo"},
    )

    async def test(s: Served) -> None:
        provision(s, "warm", 2)
        await asyncio.gather(*(call(s.service, "echo") for _ in range(2)))
        await eventually(lambda: provisioned(s, "warm") == (2, 2))
        assert len(s.backend.live()) == 4
        await s.service.close(grace=1.0)
        assert s.backend.live() == []
        assert s.backend.containers({LABEL_OWNER: s.owner}) == []
        s.service.housekeeping()  # closed: starts nothing
        await asyncio.sleep(0.02)
        assert len(s.backend.specs) == 4

    scenario(path, test)


def test_close_during_a_start_leaves_no_container(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"warm": "handler: app.echo"})

    async def test(s: Served) -> None:
        provision(s, "warm", 1)
        await eventually(lambda: "run" in s.backend.calls, what="the start to begin")
        await s.service.close(grace=1.0)
        await asyncio.sleep(0.15)  # the engine call has returned by now
        assert len(s.backend.specs) == 1
        assert s.backend.live() == [], "a container started during close() is still running"

    scenario(path, test, run_delay=0.1)


# Bugs around reloading and environment identity


def test_load_applies_concurrency_settings_changed_in_the_manifest(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo, reserved_concurrency: 1"})

    async def test(s: Served) -> None:
        changed: list[str] = []
        s.service.on_revision = changed.append
        write_manifest(
            tmp_path,
            {"echo": "handler: app.echo, reserved_concurrency: 3, provisioned_concurrency: 1"},
        )
        s.service.load(manifest.load(path))
        state = s.service.functions["echo"]
        # The reserve is the function's; provisioned concurrency is kept on a version behind
        # the alias live by whoever publishes (api.manifest_versions), told of the change.
        assert (state.reserved, state.latest.provisioned) == (3, 0)
        assert changed == ["echo"]
        assert s.service.trigger_qualifier("echo") is None  # no live alias yet
        s.service.put_version("echo", "1", state.spec, "echo-1")
        s.service.put_alias("echo", "live", Alias("1"))
        assert s.service.trigger_qualifier("echo") == "live"

    scenario(path, test)


def test_a_late_exit_event_does_not_unregister_a_new_environment_on_the_same_address(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo, timeout: 1"})

    async def test(s: Served) -> None:
        await call(s.service, "echo")
        [old] = s.backend.live()
        write_manifest(tmp_path, {"echo": "handler: app.echo, timeout: 2"})
        s.service.load(manifest.load(path))  # drains the old environment: killed
        await eventually(lambda: old.exit is not None)
        await call(s.service, "echo")  # cold, before the old exit event arrives
        [new] = s.backend.live()
        assert new.ip == old.ip  # the address was reused, as Docker does
        await asyncio.sleep(0.08)  # the old container's exit event arrives now
        result = None
        with contextlib.suppress(TimeoutError):
            result = await asyncio.wait_for(call(s.service, "echo"), 0.2)
        assert result is not None, f"the warm invocation hung; runtime refused: {new.refused}"
        assert result.function_error is None

    scenario(path, test, reuse_addresses=True, exit_delay=0.05)


def test_an_init_error_is_reported_even_after_the_runtime_exited(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"missing": "handler: app.nowhere"})

    async def test(s: Served) -> None:
        spec = s.service.functions["missing"].spec
        env = await s.invoker.start_environment(spec)
        await eventually(lambda: env.exited is not None, what="the runtime to exit")
        assert env.init_error is not None
        result = await s.invoker.run_on(env, spec, request("missing"))
        assert body(result)["errorType"] == "Runtime.HandlerNotFound"

    scenario(path, test)


# The fake behind hosted_invoker


def test_hosted_invoker_on_the_fake_serves_the_runtime_api_on_loopback() -> None:
    async def test() -> None:
        backend = FakeBackend()
        try:
            async with hosted_invoker(backend, "unit-net", [NETWORK_PUBLIC]):
                assert backend.networks == {NETWORK_PUBLIC: False}
        finally:
            await backend.aclose()

    run(test(), TIMEOUT_S)


def test_hosted_invoker_serves_networks_that_share_a_gateway() -> None:
    async def test() -> None:
        backend = FakeBackend()
        try:
            async with hosted_invoker(backend, "unit-net", [NETWORK_PUBLIC, NETWORK_PRIVATE]):
                pass
        finally:
            await backend.aclose()

    run(test(), TIMEOUT_S)
