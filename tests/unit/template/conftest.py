"""Templates written into a test's directory and read as lrun reads them; no Docker."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError, Problem
from orchestrator.manifest import Manifest
from orchestrator.template.convert import load_template


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Inline code is written under the state directory: the test's own."""
    monkeypatch.setenv("LRUN_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"


def write(directory: Path, text: str, name: str = "template.yaml") -> Path:
    """A template (dedented) with a code directory ``src/`` beside it."""
    (directory / "src").mkdir(exist_ok=True)
    (directory / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def load(path: Path, **overrides: str) -> Manifest:
    return load_template(path, overrides)


def problems(path: Path, **overrides: str) -> list[Problem]:
    with pytest.raises(ManifestError) as caught:
        load_template(path, overrides)
    return list(caught.value.problems)


def notices(manifest: Manifest) -> list[str]:
    """Each notice as ``where: message`` (lines are checked where they matter)."""
    return [f"{n.where}: {n.message}" for n in manifest.notices]
