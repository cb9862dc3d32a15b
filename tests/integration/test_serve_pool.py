"""Warm pools on the real engine: reuse, scale-out, reaping, provisioned, throttles, replacement.

The service runs in-process (the same object `lrun serve` runs), so each test can look at the
pool and the engine directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from orchestrator import manifest
from orchestrator.aws import function_arn
from orchestrator.errors import TooManyRequests
from orchestrator.pool import Pool
from orchestrator.sandbox.backend import LABEL_OWNER
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.service import Service, ServiceSettings
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OTHER_ENGINE, OWNER, run

PY = FUNCTIONS / "python"
MANIFEST = f"""
functions:
  count:  {{runtime: python3.13, handler: probe.count, code: {PY}}}
  sleep:  {{runtime: python3.13, handler: probe.sleep, code: {PY}, timeout: 10, memory: 128}}
  capped: {{runtime: python3.13, handler: probe.sleep, code: {PY}, reserved_concurrency: 2}}
  zero:   {{runtime: python3.13, handler: probe.count, code: {PY}, reserved_concurrency: 0}}
  warm:   {{runtime: python3.13, handler: probe.introspect, code: {PY}}}
  crash:  {{runtime: python3.13, handler: probe.leave, code: {PY}}}
  slow:   {{runtime: python3.13, handler: probe.sleep, code: {PY}, timeout: 1}}
  hog:    {{runtime: python3.11, handler: probe.hog, code: {PY}, memory: 128, timeout: 30}}
"""


@contextlib.asynccontextmanager
async def serving(
    backend: DockerBackend, path: Path, host_limit: int = 64, idle_ttl: float = 300.0
) -> AsyncIterator[Service]:
    async with hosted_invoker(backend, OWNER) as invoker:
        service = Service(backend, invoker, Pool(host_limit), ServiceSettings(idle_ttl, 0.2))
        service.load(manifest.load(path))
        if "warm" in service.functions:
            # Provisioned concurrency is for published versions (as on Lambda): warm's version
            # 1 keeps two environments initialised.
            service.put_version("warm", "1", service.function("warm").spec, "warm-1")
            service.set_provisioned("warm", "1", 2)
        keeper = asyncio.ensure_future(service.run_housekeeping())
        try:
            yield service
        finally:
            keeper.cancel()
            await service.close(grace=5)


async def call(
    service: Service, name: str, event: object = None, version: str = "$LATEST"
) -> InvocationResult:
    payload = json.dumps(event if event is not None else {}).encode()
    qualifier = None if version == "$LATEST" else version
    request = InvokeRequest(payload, function_arn(name, qualifier), version).with_request_id()
    return await service.invoke(name, request)


@pytest.fixture
def path(write_manifest) -> Path:
    return write_manifest(MANIFEST)


@pytest.mark.engines
def test_consecutive_invocations_reuse_one_warm_environment(backend, path) -> None:
    async def scenario() -> list[InvocationResult]:
        async with serving(backend, path) as service:
            return [await call(service, "count") for _ in range(5)]

    results = run(scenario())
    seen = [json.loads(r.payload) for r in results]
    assert len({s["pid"] for s in seen}) == 1
    assert [s["invocations"] for s in seen] == [1, 2, 3, 4, 5]
    assert results[0].report.init_duration_ms is not None
    assert all(r.report.init_duration_ms is None for r in results[1:])


@pytest.mark.engines
def test_parallel_invocations_run_in_parallel_environments(backend, path) -> None:
    async def scenario() -> tuple[float, int, int]:
        async with serving(backend, path) as service:
            # The first wave starts ten environments; the second finds them all warm.
            await asyncio.gather(*(call(service, "sleep", {"s": 0.5}) for _ in range(10)))
            started = time.monotonic()
            await asyncio.gather(*(call(service, "sleep", {"s": 1}) for _ in range(10)))
            wall = time.monotonic() - started
            envs = [v for v in service.environments() if v.function == "sleep"]
            return wall, len(envs), sum(v.invocations for v in envs)

    wall, environments, invocations = run(scenario())
    assert environments == 10 and invocations == 20
    assert wall < 2.0, f"10 parallel 1 s sleeps took {wall:.2f} s"


@pytest.mark.engines
def test_idle_environments_are_removed_after_the_keep_warm_time(
    backend, path, engine: docker.DockerClient
) -> None:
    def containers() -> int:
        filters = {"label": [f"{LABEL_OWNER}={OWNER}", "lrun.function=count"]}
        return len(engine.containers.list(filters=filters))

    async def scenario() -> tuple[int, int, int, int]:
        async with serving(backend, path, idle_ttl=1.0) as service:
            await call(service, "count")
            before = [v for v in service.environments() if v.function == "count"]
            running = containers()
            await asyncio.sleep(2.5)
            after = [v for v in service.environments() if v.function == "count"]
            return len(before), running, len(after), containers()

    assert run(scenario()) == (1, 1, 0, 0)


@pytest.mark.engines
def test_provisioned_environments_are_initialised_before_the_first_invoke(backend, path) -> None:
    async def scenario() -> tuple[list[str], InvocationResult]:
        async with serving(backend, path) as service:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = [v.state for v in service.environments() if v.function == "warm"]
                if states == ["provisioned", "provisioned"]:
                    break
                await asyncio.sleep(0.1)
            return states, await call(service, "warm", version="1")

    states, result = run(scenario())
    assert states == ["provisioned", "provisioned"]
    assert result.report.init_duration_ms is None  # no cold start: init happened beforehand
    seen = json.loads(result.payload)
    assert seen["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"


@pytest.mark.engines
def test_provisioned_environments_spill_over_and_are_replaced_when_they_die(backend, path) -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        async with serving(backend, path) as service:
            while [v.state for v in service.environments() if v.function == "warm"] != [
                "provisioned",
                "provisioned",
            ]:
                await asyncio.sleep(0.1)
            burst = await asyncio.gather(*(call(service, "warm", version="1") for _ in range(3)))
            cold = sum(r.report.init_duration_ms is not None for r in burst)
            kinds = sorted(v.kind for v in service.environments() if v.function == "warm")
            # Kill one provisioned environment behind the service's back: it is replaced.
            provisioned = [
                s.id
                for s in service.pool.slots()
                if s.function == "warm" and s.kind.value == "provisioned-concurrency"
            ]
            victim = service._envs[provisioned[0]]  # noqa: SLF001
            assert victim.container is not None
            backend.kill(victim.container.id)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                states = [
                    v.state
                    for v in service.environments()
                    if v.function == "warm" and v.kind == "provisioned-concurrency"
                ]
                if states == ["provisioned", "provisioned"] and victim.exited is not None:
                    break
            return cold, len(kinds), states

    cold, total, states = run(scenario())
    assert cold == 1  # two served by provisioned environments, one spilled over on demand
    assert total == 3
    assert states == ["provisioned", "provisioned"]


def test_reserved_concurrency_caps_a_function_and_zero_throttles_it(backend, path) -> None:
    async def scenario() -> tuple[list[object], str]:
        async with serving(backend, path) as service:
            outcomes = await asyncio.gather(
                *(call(service, "capped", {"s": 1}) for _ in range(3)), return_exceptions=True
            )
            try:
                await call(service, "zero")
            except TooManyRequests as exc:
                zero = exc.reason
            return list(outcomes), zero

    outcomes, zero = run(scenario())
    throttled = [o for o in outcomes if isinstance(o, TooManyRequests)]
    assert len(throttled) == 1
    assert throttled[0].reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert zero == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_the_host_wide_limit_throttles_across_functions(backend, path) -> None:
    async def scenario() -> list[object]:
        async with serving(backend, path, host_limit=2) as service:
            return await asyncio.gather(
                call(service, "sleep", {"s": 1}),
                call(service, "capped", {"s": 1}),
                call(service, "count"),
                return_exceptions=True,
            )

    outcomes = run(scenario())
    throttled = [o for o in outcomes if isinstance(o, TooManyRequests)]
    assert len(throttled) == 1
    assert throttled[0].reason == "ConcurrentInvocationLimitExceeded"


@pytest.mark.engines
@pytest.mark.parametrize(
    ("function", "event", "error_type"),
    [
        ("crash", {"code": 2}, "Runtime.ExitError"),
        ("slow", {"s": 3}, "Sandbox.Timedout"),
        ("hog", {}, "Runtime.OutOfMemory"),
    ],
    ids=["crash", "timeout", "oom"],
)
def test_a_failed_environment_is_replaced_without_disturbing_others(
    backend, path, function: str, event: dict[str, object], error_type: str
) -> None:
    if function == "hog" and OTHER_ENGINE:
        # Rootless Podman on cgroup v1 drops memory limits: the hog would take the host's.
        pytest.skip("this engine enforces no memory limit (rootless, cgroup v1)")

    async def scenario() -> tuple[str, int, InvocationResult, dict[str, int], dict[str, int]]:
        async with serving(backend, path) as service:
            before = json.loads((await call(service, "count")).payload)
            failed = await call(service, function, event)
            error = json.loads(failed.payload)["errorType"]
            await asyncio.sleep(0.5)
            left = len([v for v in service.environments() if v.function == function])
            again = await call(service, function, event)
            after = json.loads((await call(service, "count")).payload)
            return error, left, again, before, after

    error, left, again, before, after = run(scenario())
    assert error == error_type
    assert left == 0  # the failed environment is gone from the pool
    assert json.loads(again.payload)["errorType"] == error_type  # a new one ran it again
    assert again.report.init_duration_ms is not None
    assert after == {"pid": before["pid"], "invocations": before["invocations"] + 1}


def test_editing_code_sends_new_invocations_to_new_environments(backend, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 'v1'\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(
        f"functions:\n  edit: {{runtime: python3.13, handler: app.handler, code: {code}}}\n"
    )

    async def scenario() -> list[bytes]:
        async with serving(backend, path) as service:
            first = await call(service, "edit")
            (code / "app.py").write_text("def handler(event, context):\n    return 'v2'\n")
            service.apply_revisions(service.scan_revisions())
            second = await call(service, "edit")
            return [first.payload, second.payload, str(len(service.environments())).encode()]

    assert run(scenario()) == [b'"v1"', b'"v2"', b"1"]
