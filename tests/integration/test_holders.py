"""Network holders on the real engine: an environment joins a holder's network namespace and
has the holder's address, on either network (P3), and the holder goes with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from orchestrator.aws import function_arn
from orchestrator.sandbox.backend import LABEL_OWNER, LABEL_ROLE, ROLE_HOLDER
from orchestrator.sandbox.container import network_name
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.holders import HolderSettings
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, holders_ready, load_function, run

MANIFEST = f"""
functions:
  public: {{runtime: python3.13, handler: probe.introspect, code: {FUNCTIONS / "python"}}}
  private:
    runtime: python3.13
    handler: probe.introspect
    code: {FUNCTIONS / "python"}
    network: private
"""


def gone(engine: docker.DockerClient, container_id: str) -> bool:
    try:
        engine.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return True
    return False


@pytest.mark.parametrize("name", ["public", "private"])
def test_an_environment_joins_a_holder_and_has_its_address(
    backend: DockerBackend,
    engine: docker.DockerClient,
    write_manifest: Callable[[str], Path],
    name: str,
) -> None:
    spec = load_function(write_manifest(MANIFEST), name)

    async def scenario() -> tuple[dict[str, object], dict[str, object], dict[str, object], str]:
        async with hosted_invoker(backend, OWNER, holders=HolderSettings(1, 1)) as invoker:
            await holders_ready(invoker, [spec], 1)
            env = await invoker.start_environment(spec)
            assert env.container is not None
            attrs = engine.api.inspect_container(env.container.id)
            holder_id = attrs["HostConfig"]["NetworkMode"].removeprefix("container:")
            holder = engine.api.inspect_container(holder_id)
            request = InvokeRequest(b"{}", function_arn(name)).with_request_id()
            result = await invoker.run_on(env, spec, request)
            await invoker.stop_environment(env)
            for _ in range(100):  # the holder is ended with its environment
                if gone(engine, holder_id):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"holder {holder_id[:12]} outlived its environment")
            return attrs, holder, json.loads(result.payload), env.container.ip

    attrs, holder, answer, ip = run(scenario())
    assert attrs["HostConfig"]["NetworkMode"] == f"container:{holder['Id']}"
    assert holder["Config"]["Labels"][LABEL_ROLE] == ROLE_HOLDER
    assert holder["Config"]["Labels"][LABEL_OWNER] == OWNER
    assert holder["HostConfig"]["CapDrop"] == ["ALL"]
    assert holder["HostConfig"]["ReadonlyRootfs"] is True
    assert ip == holder["NetworkSettings"]["Networks"][network_name(spec)]["IPAddress"]
    assert answer["uid"] == 993  # the function ran, reaching the Runtime API from that address
