"""Integration tests drive the real Docker engine with the real runtime images.

Every container a test starts carries a per-session owner label; the session removes them all at
the end, so even a crashed test leaks nothing. Without a reachable engine these tests are
skipped locally and fail in CI (CI=true), where the engine must be there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from orchestrator import manifest
from orchestrator.errors import BackendUnavailable
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox import docker_backend
from orchestrator.sandbox import images as runtimes
from orchestrator.sandbox.backend import LABEL_OWNER
from orchestrator.sandbox.container import network_name
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvocationResult
from orchestrator.sandbox.invoker import Invoker
from orchestrator.sandbox.oneshot import invoke_once
from tests.integration.javac import build_test_functions

T = TypeVar("T")
OWNER = f"test-{os.getpid()}-{secrets.token_hex(4)}"
# Set when this run drives an engine other than the local Docker (`make podman-test`: "podman"):
# its images were copied into it, not built there, and what it bind-mounts must be readable by
# the unprivileged user it runs containers as.
OTHER_ENGINE = os.environ.get("LRUN_TEST_ENGINE", "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def backend() -> Iterator[DockerBackend]:
    try:
        connected = docker_backend.connect()
    except BackendUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    if not OTHER_ENGINE:
        for name in manifest.RUNTIME_NAMES:
            runtimes.build(connected, name, progress=lambda step: None)
    yield connected
    for container in connected.containers({LABEL_OWNER: OWNER}):
        connected.kill(container.id)


@pytest.fixture(autouse=True)
def readable_tmp_path(request: pytest.FixtureRequest) -> None:
    """On a rootless engine, a test's temporary directory (code, layers) must be readable by
    the engine's user; pytest makes them private (0700)."""
    if not OTHER_ENGINE or "tmp_path" not in request.fixturenames:
        return
    path: Path = request.getfixturevalue("tmp_path")
    base = request.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    for directory in (path, *path.parents):
        directory.chmod(directory.stat().st_mode | 0o055)
        if directory == base.parent:
            break


def peer_mode_here() -> bool:
    """Whether this engine gives each container an address of its own (the peer mode)."""
    return not OTHER_ENGINE


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    """The Docker SDK itself, for reading back what lrun asked the engine for."""
    return docker.from_env()


@pytest.fixture(scope="session")
def java_code(
    backend: DockerBackend, engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """tests/integration/functions/java compiled (by the java21 image's build stage JDK)."""
    return build_test_functions(engine, tmp_path_factory.mktemp("java"))


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def load_function(path: Path, name: str) -> FunctionSpec:
    return manifest.load(path).function(name)


@pytest.fixture
def invoke(backend: DockerBackend) -> Callable[[FunctionSpec, bytes], InvocationResult]:
    """A one-shot invocation, exactly as `lrun invoke` does it, owned by this test session."""

    def call(spec: FunctionSpec, payload: bytes = b"{}") -> InvocationResult:
        return run(invoke_once(backend, spec, payload, owner=OWNER))

    return call


async def holders_ready(invoker: Invoker, specs: list[FunctionSpec], count: int) -> None:
    """Have ``invoker`` keep network holders for ``specs`` and wait until ``count`` are ready
    on each of their networks (so the next environments start on holders)."""
    invoker.expect(specs)
    holders = invoker.holders
    assert holders is not None, "the invoker keeps no holders: give hosted_invoker some"
    networks = {network_name(spec) for spec in specs}
    deadline = asyncio.get_running_loop().time() + 60
    while any(holders.ready(n) < count for n in networks):
        assert asyncio.get_running_loop().time() < deadline, "no network holders after 60 s"
        await asyncio.sleep(0.05)
