"""Where the manifest is, found without reading it (so a command can consult a running server
first and skip parsing YAML altogether)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.errors import ManifestError, Problem

DEFAULT_MANIFEST = "lrun.yaml"


def find(path: Path | None, cwd: Path) -> Path:
    """The manifest to use: ``path`` (a file, or a directory holding lrun.yaml), else cwd's."""
    candidate = Path(os.path.abspath(cwd / (path or DEFAULT_MANIFEST)))
    if path is not None and candidate.is_dir():
        candidate = candidate / DEFAULT_MANIFEST
    if not candidate.is_file():
        raise ManifestError([missing(candidate)])
    return candidate


def missing(path: Path) -> Problem:
    fix = "run 'lrun init' to create one or pass -f PATH"
    return Problem(str(path), None, "(file)", f"no {path.name} found in {path.parent}; {fix}")
