"""Fixtures shared by the unit tests: a fresh, open store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.events.store import Store


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "lrun.db"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    opened = Store(store_path)
    opened.open()
    yield opened
    opened.close()
