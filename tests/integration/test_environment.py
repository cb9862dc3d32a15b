"""An execution environment as the engine holds it and as the function sees it (D1, D2, D4)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from orchestrator.aws import function_arn
from orchestrator.sandbox import scratch
from orchestrator.sandbox.backend import (
    LABEL_CONFIG,
    LABEL_FUNCTION,
    LABEL_MANAGED,
    LABEL_OWNER,
    Backend,
)
from orchestrator.sandbox.container import host_cores, init_nano_cpus
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OTHER_ENGINE, OWNER, load_function, run

MANIFEST = f"""
functions:
  probe:
    runtime: python3.13
    handler: probe.introspect
    code: {FUNCTIONS / "python"}
    memory: 256
    timeout: 5
    ephemeral_storage: 600
    environment: {{GREETING: hello, COUNT: 3}}
  counter:
    runtime: python3.11
    handler: probe.count
    code: {FUNCTIONS / "python"}
  private:
    runtime: python3.13
    handler: probe.introspect
    code: {FUNCTIONS / "python"}
    network: private
"""


def test_container_limits_and_hardening_as_the_engine_reports_them(
    backend: DockerBackend, engine: docker.DockerClient, write_manifest: Callable[[str], Path]
) -> None:
    spec = load_function(write_manifest(MANIFEST), "probe")

    async def scenario() -> dict[str, object]:
        async with hosted_invoker(backend, OWNER) as invoker:
            env = await invoker.start_environment(spec)
            assert env.container is not None
            attrs: dict[str, object] = engine.api.inspect_container(env.container.id)
            await invoker.stop_environment(env)
            return attrs

    attrs = run(scenario())
    host = attrs["HostConfig"]
    assert isinstance(host, dict)
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["MemorySwap"] == 256 * 1024 * 1024  # no swap beyond the memory limit
    # created with the init phase's quota; lowered to 256 / 1769 vCPU at the first /next
    assert host["NanoCpus"] == init_nano_cpus(256, host_cores())
    assert host["ReadonlyRootfs"] is True
    on_disk = scratch.unsupported() is None  # /tmp a disk of its own, else a tmpfs
    if not on_disk:
        assert host["Tmpfs"] == {"/tmp": f"size={600 * 1024 * 1024},mode=1777"}
    assert host["IpcMode"] == "none"  # no /dev/shm, as on Lambda
    assert host["PidsLimit"] == 1024
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "lrun-public"
    mounts = host["Mounts"]
    assert isinstance(mounts, list)
    assert mounts[0] == {
        "Type": "bind",
        "Source": str(FUNCTIONS / "python"),
        "Target": "/var/task",
        "ReadOnly": True,
    }
    # The runtime's output pipe (a FIFO lrun made, its name gone once mounted), read-only: a
    # FIFO's writes change nothing on its file system.
    pipe = {"Type": "bind", "Target": "/var/runtime/lrun-output", "ReadOnly": True}
    assert [{k: m[k] for k in pipe} for m in mounts[-1:]] == [pipe]
    assert not Path(mounts[-1]["Source"]).exists()
    if on_disk:
        assert [(m["Type"], m["Target"]) for m in mounts[1:-1]] == [("bind", "/tmp")]
    else:
        assert len(mounts) == 2
    config = attrs["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "993:990"
    labels = config["Labels"]
    assert labels[LABEL_MANAGED] == "1"
    assert labels[LABEL_OWNER] == OWNER
    assert labels[LABEL_FUNCTION] == "probe"
    assert labels[LABEL_CONFIG] == spec.config_digest()
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["GREETING"] == "hello" and env["COUNT"] == "3"


def test_the_function_sees_lambdas_sandbox_from_inside(
    invoke, write_manifest: Callable[[str], Path]
) -> None:
    spec = load_function(write_manifest(MANIFEST), "probe")
    result = invoke(spec, b'{"look": true}')
    assert result.function_error is None, result.payload
    seen = json.loads(result.payload)
    assert seen["uid"] == 993 and seen["gid"] == 990
    assert int(seen["cap_eff"], 16) == 0  # every capability dropped
    assert seen["no_new_privs"] == "1"
    assert seen["writable"] == {"/": False, "/var/task": False, "/tmp": True}
    if scratch.unsupported() is None:  # an ext4 disk of its own, sized to hold 600 MB
        assert 600 * 1024 * 1024 <= seen["tmp_bytes"] <= 640 * 1024 * 1024
    else:
        assert seen["tmp_bytes"] == 600 * 1024 * 1024
    assert seen["nofile"] == [1024, 1024]
    assert seen["cwd"] == "/var/task"
    assert 0 < seen["remaining_ms"] <= 5000
    assert seen["request_id"] == result.request_id
    assert seen["function_arn"] == function_arn("probe")
    env = seen["env"]
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/probe",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "probe.introspect",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
        "GREETING": "hello",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert re.fullmatch(
        r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert re.fullmatch(r"169\.254\.100\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[name]
    assert "introspect ran" in result.log


@pytest.mark.engines
def test_private_network_mode_reaches_the_runtime_api_on_an_internal_network(
    invoke, engine: docker.DockerClient, write_manifest: Callable[[str], Path]
) -> None:
    """P3: the Runtime API works for private environments, whose network has no way out."""
    spec = load_function(write_manifest(MANIFEST), "private")
    result = invoke(spec)
    assert result.function_error is None, result.payload
    env = json.loads(result.payload)["env"]
    if OTHER_ENGINE:  # behind NAT: its own listener, under its own host name
        assert re.fullmatch(r"lrun-[0-9a-f]{32}:\d+", env["AWS_LAMBDA_RUNTIME_API"])
        return
    assert re.fullmatch(r"169\.254\.101\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert engine.api.inspect_network("lrun-private")["Internal"] is True
    assert engine.api.inspect_network("lrun-public")["Internal"] is False


class CountingBackend:
    """The real Docker backend, counting the engine calls made through it."""

    def __init__(self, inner: DockerBackend) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        # memory_peak reads a cgroup file on the host; it is not an engine API call.
        if callable(attr) and name != "memory_peak":
            self.calls.append(name)
        return attr


@pytest.mark.engines
def test_warm_invocations_reuse_the_environment_without_engine_calls(
    backend: DockerBackend, write_manifest: Callable[[str], Path]
) -> None:
    """P4, and warm reuse: state survives, no Init Duration, no Docker API call."""
    spec = load_function(write_manifest(MANIFEST), "counter")
    counting = CountingBackend(backend)

    async def scenario() -> list[tuple[dict[str, int], float | None, list[str]]]:
        seen = []
        counted: Backend = counting  # type: ignore[assignment]
        async with hosted_invoker(counted, OWNER) as invoker:
            env = await invoker.start_environment(spec)
            for _ in range(3):
                counting.calls.clear()
                request = InvokeRequest(b"{}", function_arn("counter")).with_request_id()
                result = await invoker.run_on(env, spec, request)
                seen.append(
                    (
                        json.loads(result.payload),
                        result.report.init_duration_ms,
                        list(counting.calls),
                    )
                )
                await asyncio.sleep(0.05)
            await invoker.stop_environment(env)
        return seen

    first, second, third = run(scenario())
    assert first[0]["invocations"] == 1 and first[1] is not None and first[1] > 0
    assert second[0] == {"pid": first[0]["pid"], "invocations": 2}
    assert third[0] == {"pid": first[0]["pid"], "invocations": 3}
    assert second[1] is None and third[1] is None  # warm: no Init Duration
    assert second[2] == [] and third[2] == []


@pytest.mark.engines
def test_a_stock_runtime_client_runs_unchanged(invoke, write_manifest) -> None:
    """P1: AWS's own awslambdaric (python3.11 and 3.13 images) talks to lrun's Runtime API."""
    path = write_manifest(MANIFEST)
    for name in ("probe", "counter"):
        result = invoke(load_function(path, name))
        assert result.function_error is None, result.payload
