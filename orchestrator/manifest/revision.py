"""A function's code revision: a digest that changes when any file under its code changes.

File names, sizes and modification times are hashed rather than contents, so that checking a
large code tree for edits while serving stays cheap.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def code_digest(code: Path | None) -> str:
    if code is None:
        return "image"
    h = hashlib.sha256()
    for root, dirs, files in os.walk(code):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            entry = f"{os.path.relpath(path, code)}\0{info.st_size}\0{info.st_mtime_ns}\0"
            h.update(entry.encode())
    return h.hexdigest()[:16]
