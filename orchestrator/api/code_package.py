"""A deployment package (a zip sent in ``ZipFile``) unpacked into a directory lrun names.

The zip is hostile input (DESIGN D9): nothing in it may make lrun write outside that directory,
leave a link that leads out of it, or fill the disk. So every entry's name is checked (no ``..``,
no absolute name, no NUL), every write goes through real directories only and never through a
link (``O_NOFOLLOW``, parents checked), the bytes actually written are counted against Lambda's
250 MB unzipped limit (the sizes a zip declares can lie), and once everything is out, every
link is resolved for real and must stay inside. Any failure removes what was written.

Blocking: call it in a thread.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from orchestrator.errors import InvalidParameterValue, RequestTooLarge

MAX_ZIPPED = 52_428_800  # bytes: Lambda's limit on a package uploaded directly
MAX_UNZIPPED = 262_144_000  # bytes: Lambda's limit on a function's unzipped code
# A request carrying a MAX_ZIPPED package, base64 in JSON, as AWS counts it.
MAX_UPLOAD_REQUEST = 69_905_067
_CHUNK = 1 << 20
_UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."


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
    target.mkdir(mode=0o755)
    try:
        return _unpack(data, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _unpack(data: bytes, root: Path) -> int:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidParameterValue(_UNZIP_FAILED) from exc
    written = 0
    links: list[Path] = []
    with archive:
        for info in archive.infolist():
            parts = _parts(info.filename)
            if not parts:
                continue  # "./" and the like: the root itself
            mode = info.external_attr >> 16
            path = root.joinpath(*parts)
            _check_parents(root, parts)
            if info.is_dir():
                _mkdir(root, path)
                continue
            try:
                source = archive.open(info)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise InvalidParameterValue(_UNZIP_FAILED) from exc
            with source:
                if stat.S_ISLNK(mode):
                    target = source.read(4097)
                    if len(target) > 4096 or b"\0" in target:
                        raise _refused(info.filename, "its link target is not a path")
                    os.symlink(os.fsdecode(target), path)
                    links.append(path)
                    continue
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                executable = mode & 0o111 != 0
                try:
                    fd = os.open(path, flags, 0o755 if executable else 0o644)
                except FileExistsError:
                    raise _refused(info.filename, "it names an entry twice") from None
                with os.fdopen(fd, "wb") as out:
                    while chunk := _read(source):
                        written += len(chunk)
                        if written > MAX_UNZIPPED:
                            raise InvalidParameterValue(
                                f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes"
                            )
                        out.write(chunk)
    real_root = os.path.realpath(root)
    for link in links:
        resolved = os.path.realpath(link)
        if resolved != real_root and not resolved.startswith(real_root + os.sep):
            raise _refused(str(link.relative_to(root)), "it is a link leading out of the package")
    return written


def _read(source: IO[bytes]) -> bytes:
    try:
        return source.read(_CHUNK)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # bad CRC, truncated data
        raise InvalidParameterValue(_UNZIP_FAILED) from exc


def _parts(name: str) -> tuple[str, ...]:
    """An entry's path inside the package, refused if it could lead anywhere else."""
    if "\0" in name:
        raise _refused(name, "its name has a NUL character")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise _refused(name, "its name is an absolute path")
    parts = tuple(part for part in PurePosixPath(name.replace("\\", "/")).parts if part != ".")
    if ".." in parts:
        raise _refused(name, "its name leads out of the package (..)")
    return parts


def _check_parents(root: Path, parts: tuple[str, ...]) -> None:
    """Make the entry's parent directories, refusing to go through anything but a directory
    (a link the package made earlier included)."""
    path = root
    for part in parts[:-1]:
        path = path / part
        _mkdir(root, path)


def _mkdir(root: Path, path: Path) -> None:
    try:
        path.mkdir(mode=0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):  # lstat: a link to a directory is refused
            where = str(path.relative_to(root))
            raise _refused(where, "it goes through a link or a file") from None


def _refused(name: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Could not unzip uploaded file: entry {name!r} is refused because {why}. Please check "
        "your file, then try to upload again."
    )


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
