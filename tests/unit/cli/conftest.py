"""`lrun` in-process, under click's ``CliRunner``: no subprocess, no Docker."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FUNCTIONS


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner in an empty working directory, with a state directory no server announced itself
    in, and an engine address that reaches nothing: a command that tried Docker would fail."""
    monkeypatch.setenv("LRUN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.chdir(tmp_path)
    yield CliRunner()


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "lrun.yaml").write_text(
        f"functions:\n"
        f"  fail: {{runtime: python3.13, handler: probe.fail, code: {FUNCTIONS / 'python'}}}\n"
        f"  count: {{runtime: python3.13, handler: probe.count, code: {FUNCTIONS / 'python'}}}\n"
    )
    return tmp_path


@pytest.fixture
def unreachable_engine() -> Iterator[None]:
    """For a test that lets a command try the (absent) engine. The Docker SDK's version probe
    leaves its failed connection's socket to the garbage collector; collect it here, where the
    warning is expected, rather than in whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
