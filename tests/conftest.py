"""Shared test settings: where the test functions live, and a manifest writer."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = Path(__file__).resolve().parent / "integration" / "functions"


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[[str], Path]:
    """Write an lrun.yaml (dedented) into a fresh directory and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "lrun.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session", autouse=True)
def no_mounts_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests that SIGKILL `lrun serve` can leave an environment's /tmp mounted in their state
    directory (the next lrun to start there sweeps it; a test's directory sees no next one).
    Unmount such leftovers under pytest's temporary directories, or removing them fails."""
    yield
    root = str(tmp_path_factory.getbasetemp().parent) + os.sep
    with open("/proc/self/mounts") as f:
        mounted = [line.split()[1] for line in f]
    for point in sorted(mounted, reverse=True):
        if point.startswith(root) and os.path.basename(point).startswith("lrun-"):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
