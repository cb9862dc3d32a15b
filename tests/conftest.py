"""Shared test settings: where the test functions live, and a manifest writer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
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
