"""Acceptance tests run the real `lrun` command as a user would, against the real engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator import docker_backend
from orchestrator.backend import LABEL_MANAGED, LABEL_OWNER
from orchestrator.errors import BackendUnavailable

Lrun = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session", autouse=True)
def engine_ready() -> Iterator[None]:
    try:
        backend = docker_backend.connect()
    except BackendUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    yield
    for container in backend.containers({LABEL_MANAGED: "1"}):
        if container.labels.get(LABEL_OWNER, "").startswith("oneshot-"):
            backend.kill(container.id)


@pytest.fixture
def lrun(tmp_path: Path) -> Lrun:
    """Run `lrun ARGS...` in a directory (default: the test's tmp_path); never raises."""

    def call(
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=cwd or tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
        )
        # lrun's own tracebacks would name its modules; a function's may appear in its log.
        assert "orchestrator/" not in done.stderr and "click/" not in done.stderr, done.stderr
        return done

    return call
