"""A deployment package (a zip sent in ``ZipFile``) unpacked into a directory lrun names.

The zip is hostile input (DESIGN D9): ``orchestrator.unzip`` unpacks it (names, links and
size checked); this module adds the upload limit and keeps the packages by token.

Blocking: call it in a thread.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from orchestrator.errors import RequestTooLarge
from orchestrator.unzip import MAX_UNZIPPED, MAX_ZIPPED, extract

__all__ = ["MAX_UNZIPPED", "MAX_ZIPPED", "MAX_UPLOAD_REQUEST", "Packages", "too_large", "unpack"]

# A request carrying a MAX_ZIPPED package, base64 in JSON, as AWS counts it.
MAX_UPLOAD_REQUEST = 69_905_067


def too_large(operation: str, size: int | None = None) -> RequestTooLarge:
    """AWS's refusal of a request over the upload limit."""
    del size  # AWS's message does not say it
    return RequestTooLarge(
        f"Request must be smaller than {MAX_UPLOAD_REQUEST} bytes for the {operation} operation"
    )


def unpack(data: bytes, target: Path, operation: str) -> int:
    """Unpack the zip ``data`` into ``target`` (which must not exist yet; its parent must); the
    bytes written. Raises AWS's errors for a package it refuses, having removed whatever it
    wrote."""
    if len(data) > MAX_ZIPPED:
        raise too_large(operation)
    return extract(data, target)


_TOKEN = re.compile(r"[0-9a-f]{32}")


def is_token(text: str) -> bool:
    """Whether ``text`` is a name ``Packages`` could have drawn (and so names nothing else)."""
    return _TOKEN.fullmatch(text) is not None


class Packages:
    """Unpacked packages under one directory, each named by a token lrun draws (never by a name
    from a request), with its zip kept beside it as ``<token>.zip`` for downloads.

    Blocking: call its methods in a thread."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def store(self, data: bytes, operation: str) -> tuple[str, int]:
        """Unpack ``data`` into a new directory; its token and the bytes unpacked."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_hex(16)
        size = unpack(data, self.root / token, operation)
        try:
            (self.root / f"{token}.zip").write_bytes(data)
        except BaseException:
            shutil.rmtree(self.root / token, ignore_errors=True)
            raise
        return token, size

    def directory(self, token: str) -> Path:
        return self.root / token

    def zip(self, token: str) -> Path:
        return self.root / f"{token}.zip"

    def remove(self, token: str) -> None:
        shutil.rmtree(self.root / token, ignore_errors=True)
        (self.root / f"{token}.zip").unlink(missing_ok=True)

    def sweep(self, kept: set[str]) -> None:
        """Remove every package but those in ``kept`` (left by a crash between unpacking and
        recording, or by a removal that never ran)."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            token = entry.name.removesuffix(".zip")
            if is_token(token) and token not in kept:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed), as Lambda counts unzipped size."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
