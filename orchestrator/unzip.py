"""Zips unpacked safely: a zip is hostile input (DESIGN D9), whether uploaded through the API
(``ZipFile``, a layer's ``Content``) or named by a manifest or template (a layer's zip, a
template's zipped ``CodeUri``).

Nothing in a zip may make lrun write outside the directory it is unpacked into, leave a link
that leads out of it, or fill the disk. So every entry's name is checked (no ``..``, no absolute
name, no NUL), every write goes through real directories only and never through a link
(``O_NOFOLLOW``, parents checked), the bytes actually written are counted against Lambda's
250 MB unzipped limit (the sizes a zip declares can lie), and once everything is out, every
link is resolved for real and must stay inside. Any failure removes what was written.

Refusals are AWS's ``InvalidParameterValue`` with Lambda's messages. A leaf: imports only
``errors``. Blocking: call it in a thread where a loop runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import shutil
import stat
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from orchestrator.errors import InvalidParameterValue

MAX_ZIPPED = 52_428_800  # bytes: Lambda's limit on a package uploaded directly
MAX_UNZIPPED = 262_144_000  # bytes: Lambda's limit on a function's unzipped code
_CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{32}")
_PARTIAL_AGE_S = 3600.0
_UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."


def extract(data: bytes, target: Path) -> int:
    """Unpack the zip ``data`` into ``target`` (which must not exist yet; its parent must); the
    bytes written. Refuses a hostile or broken zip having removed whatever it wrote."""
    target.mkdir(mode=0o755)
    try:
        return _unpack(data, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def extract_file(zip_path: Path, root: Path, max_zipped: int = MAX_ZIPPED) -> Path:
    """The zip at ``zip_path`` unpacked under ``root`` into a directory named by the digest of
    its bytes (never by a name from the zip or its caller), so an unchanged zip is unpacked once;
    written in a temporary directory renamed into place whole. A zip over ``max_zipped`` bytes
    is refused before it is read."""
    try:
        size = zip_path.stat().st_size
        if size > max_zipped:
            raise InvalidParameterValue(
                f"{zip_path} is {size} bytes, more than the {max_zipped} bytes Lambda takes "
                "in one zip; unzip it and name the directory instead"
            )
        data = zip_path.read_bytes()
    except OSError as exc:
        raise InvalidParameterValue(f"cannot read {zip_path}: {exc.strerror}") from None
    target = root / hashlib.sha256(data).hexdigest()[:32]
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = root / f"{secrets.token_hex(16)}.partial"
    extract(data, partial)
    try:
        os.rename(partial, target)
    except OSError:  # another lrun unpacked the same zip meanwhile
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


def sweep(root: Path, kept: set[Path]) -> None:
    """Remove the directories ``extract_file`` unpacked under ``root`` but those in ``kept``,
    and what an interrupted unpack left (a ``.partial`` an hour old: a younger one may be
    another lrun's unpack under way). Only names ``extract_file`` draws are touched."""
    if not root.is_dir():
        return
    now = time.time()
    for entry in root.iterdir():
        name, partial = entry.name.removesuffix(".partial"), entry.name.endswith(".partial")
        if not _DIGEST.fullmatch(name) or entry in kept or entry.is_symlink():
            continue
        try:
            if partial and now - entry.lstat().st_mtime < _PARTIAL_AGE_S:
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(entry, ignore_errors=True)


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
