"""Unit tests for orchestrator.manifest.revision: code digests and the code's zipped size."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.manifest.revision import code_digest, zipped_size


def make_code(root: Path) -> Path:
    code = root / "code"
    (code / "lib" / "deep").mkdir(parents=True)
    (code / "app.py").write_text("def handler(event, context):\n    return event\n" * 50)
    (code / "lib" / "util.py").write_text("X = 1\n")
    (code / "lib" / "deep" / "data.bin").write_bytes(os.urandom(10_000))
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0" * 100)
    return code


def really_zipped(code: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(code):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            relative = os.path.relpath(root, code)
            if relative != ".":
                archive.write(root, relative)
            for name in sorted(files):
                archive.write(
                    os.path.join(root, name), os.path.normpath(os.path.join(relative, name))
                )
    return out.getvalue()


def test_zipped_size_is_the_size_of_the_real_zip(tmp_path: Path) -> None:
    code = make_code(tmp_path)
    real = really_zipped(code)
    assert zipped_size(code) == len(real)
    assert zipfile.ZipFile(io.BytesIO(real)).testzip() is None
    stored = sum(p.stat().st_size for p in code.rglob("*") if p.is_file())
    assert zipped_size(code) < stored  # deflated: the repetitive source shrinks


def test_zipped_size_of_an_unreadable_tree_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        zipped_size(tmp_path / "missing")


def test_code_digest_changes_with_an_edit_and_ignores_pycache(tmp_path: Path) -> None:
    code = make_code(tmp_path)
    before = code_digest(code)
    (code / "__pycache__" / "other.pyc").write_bytes(b"x")
    assert code_digest(code) == before
    (code / "lib" / "util.py").write_text("X = 22\n")
    assert code_digest(code) != before


def test_a_walk_that_runs_out_of_file_descriptors_is_an_error_not_a_new_digest(
    tmp_path: Path,
) -> None:
    """EMFILE while walking must raise, never yield a digest of the files it happened to see."""
    code = make_code(tmp_path)
    script = f"""
import os, resource, sys
from pathlib import Path
from orchestrator.manifest.revision import code_digest
code = Path({str(code)!r})
good = code_digest(code)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
try:
    digest = code_digest(code)
except OSError as exc:
    print("raised", exc.errno)
else:
    print("digest", digest == good)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["raised", "24"], done.stdout + done.stderr
