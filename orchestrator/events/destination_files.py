"""JSON-lines file destinations, appended to without ever leaving the manifest's directory.

A file destination is named by its path relative to the manifest's directory ("out/ok.jsonl"),
as the manifest declares it. The manifest checked that path when it was read, but the directory
may change afterwards (a symbolic link planted where ``out`` was), and lrun may run as root: so
the path is walked again at each write, one component at a time, each directory opened relative
to the previous one without following symbolic links, and the file itself opened with
``O_NOFOLLOW``. What is written is always inside the directory, whatever happens to it meanwhile.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from orchestrator.errors import UnsafePath

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under the file's name must not block the writer's thread.
_FILE = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LINKS = (errno.ELOOP, errno.ENOTDIR)


def parts_of(name: str) -> tuple[str, ...]:
    """The components of a file destination's name; ``UnsafePath`` if it could leave its base."""
    path = PurePosixPath(name)
    parts = path.parts
    if not name or path.is_absolute() or not parts or any(p in (".", "..") for p in parts):
        raise UnsafePath(
            f"file destination {name!r} is not a path inside the manifest's directory; "
            "declare it in the manifest, e.g. on_success: {file: ./out/ok.jsonl}"
        )
    return parts


def append(base: Path, name: str, data: bytes) -> None:
    """Append ``data`` to the file ``name`` under ``base``, creating its directories; refuses
    (``UnsafePath``) a symbolic link anywhere in ``name``, or a file that is not a regular file
    of its own (a hard link could be one to a file outside)."""
    parts = parts_of(name)
    directory = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=directory)
            except FileExistsError:
                pass
            try:
                inner = os.open(part, _DIRECTORY, dir_fd=directory)
            except OSError as exc:
                if exc.errno in _LINKS and _is_link(part, directory):
                    raise _refused(base, name, f"{part!r} is a symbolic link") from exc
                raise  # e.g. a file where a directory should be: an ordinary error
            os.close(directory)
            directory = inner
        try:
            fd = os.open(parts[-1], _FILE, 0o644, dir_fd=directory)
        except OSError as exc:
            if exc.errno in (*_LINKS, errno.ENXIO):  # ENXIO: a FIFO nobody reads
                raise _refused(base, name, "it is a symbolic link or not a regular file") from exc
            raise
    finally:
        os.close(directory)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            raise _refused(base, name, "it is not a regular file, or has other (hard) links")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _is_link(name: str, directory: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _refused(base: Path, name: str, why: str) -> UnsafePath:
    return UnsafePath(
        f"not writing file destination {name!r} in {base}: {why}; lrun writes only to files "
        "inside the manifest's directory, never through links: remove the link"
    )
