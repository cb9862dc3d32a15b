"""A function's code revision: a digest that changes when any file under its code changes.

File names, sizes and modification times are hashed rather than contents, so that checking a
large code tree for edits while serving stays cheap.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def code_digest(code: Path | None) -> str:
    """The digest of the code as it is now; ``OSError`` if any of it cannot be read (a walk that
    failed half-way, out of file descriptors say, must not look like an edit)."""
    if code is None:
        return "image"
    h = hashlib.sha256()
    for root, dirs, files in os.walk(code, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue  # removed since the listing: an edit, and the next walk will see it
            entry = f"{os.path.relpath(path, code)}\0{info.st_size}\0{info.st_mtime_ns}\0"
            h.update(entry.encode())
    return h.hexdigest()[:16]


class _Measure(io.RawIOBase):
    """A seekable sink that keeps nothing and remembers how far it was written."""

    def __init__(self) -> None:
        self.position = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        count = memoryview(data).nbytes
        self.position += count
        self.size = max(self.size, self.position)
        return count

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position


def zipped_size(code: Path) -> int:
    """The size in bytes of the deflated zip of ``code`` (what Lambda reports as ``CodeSize``
    for the same directory uploaded as a zip), measured without writing it anywhere.

    It compresses every file, so it costs what zipping does: call it in a thread and keep the
    answer for the revision (``code_digest``) it was measured at."""
    sink = _Measure()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(code, onerror=_raise):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            relative = os.path.relpath(root, code)
            if relative != ".":
                archive.write(root, relative)
            for name in sorted(files):
                path = os.path.join(root, name)
                archive.write(path, os.path.join(relative, name) if relative != "." else name)
    return sink.size


def _raise(error: OSError) -> None:
    raise error
