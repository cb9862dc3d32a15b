"""``/tmp`` on disk, as on Lambda: each environment gets an ext4 file system of its own.

On Lambda ``/tmp`` is disk, apart from the function's memory. A tmpfs is memory: its pages count
against the container's memory limit, so at 128 MB a function could use only ~110 MB of /tmp and
writing more was an OOM kill instead of ``ENOSPC``. No Docker storage option fits this engine
(``--storage-opt size`` needs overlay2 on xfs with project quotas; the local volume driver cannot
loop-mount a file), so lrun makes the file system itself when it may (root, ``mkfs.ext4``,
``mount`` and loop devices): a sparse image file, formatted without a journal (``/tmp`` never
outlives its environment), loop-mounted, bind-mounted at ``/tmp``, then detached from the host as
soon as the container has started. From then on the container's mount namespace holds the only
reference, so the file system, its loop device (auto-clearing) and the file's blocks go with the
container, even if lrun itself dies. Formatting and mounting (~15-25 ms on an idle machine) run
on a thread of their own while the engine creates the container, so a cold start waits for
them only if they take longer; detaching happens after the start, off its path.

Where lrun may not, ``/tmp`` stays a tmpfs, and ``lrun validate`` says why (``unsupported()``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from orchestrator.errors import BackendError
from orchestrator.sandbox.ownership import process_started

# ext4 without a journal keeps ~96% of its size free: the image is made larger by that much so
# that /tmp holds the function's whole ephemeral storage.
_USABLE_FRACTION = 0.96
_TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
_LEFTOVER_AGE_S = 60.0
_OWNER_DIR = re.compile(r"(\d+)-(\d+)")  # <pid>-<start time in clock ticks>
_TOOL_TIMEOUT_S = 60.0


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (f"{d}/{name}" for d in _TOOL_DIRS if os.access(f"{d}/{name}", os.X_OK)), None
    )


def unsupported() -> str | None:
    """Why /tmp cannot be a disk of its own on this host, or None if it can."""
    if os.geteuid() != 0:
        return "lrun is not running as root, which loop-mounting a file system needs"
    missing = [t for t in ("mkfs.ext4", "mount", "umount") if _tool(t) is None]
    if missing:
        return f"{', '.join(missing)} not found (install e2fsprogs and mount)"
    if not os.path.exists("/dev/loop-control"):
        return "this host has no loop devices (/dev/loop-control is missing)"
    return None


class ScratchDisks:
    """Makes environments' /tmp file systems under one directory (in lrun's state directory)."""

    def __init__(self, directory: Path) -> None:
        # One directory per process, named for it: what a process killed between mounting and
        # detaching left is then known to be an orphan, whoever shares the state directory.
        self.root = directory
        pid = os.getpid()
        self.directory = directory / f"{pid}-{process_started(pid) or 0}"
        self._swept = False

    def begin(self, name: str, size_bytes: int) -> ScratchDisk:
        """Start making ``name``'s /tmp; it is mounted by ``ScratchDisk.mount``."""
        if not self._swept:
            self._swept = True
            threading.Thread(target=self._sweep, name="lrun-scratch", daemon=True).start()
        return ScratchDisk(self.directory, name, size_bytes)

    def _sweep(self) -> None:
        """Remove what processes that died between mounting and detaching left behind."""
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        for entry in entries:
            with contextlib.suppress(OSError):
                owner = _OWNER_DIR.fullmatch(entry.name)
                if owner is not None and entry.is_dir(follow_symlinks=False):
                    pid, started = int(owner[1]), owner[2]
                    if process_started(pid) not in (started, ""):  # gone, or pid reused
                        for leftover in os.scandir(entry.path):
                            _remove(leftover)
                        os.rmdir(entry.path)
                elif time.time() - entry.stat(follow_symlinks=False).st_mtime >= _LEFTOVER_AGE_S:
                    _remove(entry)  # an older lrun's, made beside the per-process directories


def _remove(entry: os.DirEntry[str]) -> None:
    with contextlib.suppress(OSError):
        if entry.is_dir(follow_symlinks=False):
            _umount(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


class ScratchDisk:
    """One environment's /tmp while it is being made: formatted and mounted on a thread of its
    own while the engine creates the container, then detached once the container holds it."""

    def __init__(self, directory: Path, name: str, size_bytes: int) -> None:
        self.mountpoint = directory / name
        self._image = directory / f"{name}.img"
        self._mounted = False
        self._error: str | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.mountpoint.mkdir(mode=0o700)
            with open(self._image, "wb") as f:
                f.truncate(math.ceil(size_bytes / _USABLE_FRACTION / 4096) * 4096)
        except OSError as exc:
            self._clean()
            raise BackendError(f"cannot make /tmp in {directory}: {exc}") from exc
        self._making = threading.Thread(target=self._make, name="lrun-scratch", daemon=True)
        self._making.start()

    def _make(self) -> None:
        mkfs = _tool("mkfs.ext4") or "mkfs.ext4"
        formatted = _run(
            [mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal"]
            + ["-E", "nodiscard,lazy_itable_init=1", str(self._image)]
        )
        if formatted:
            self._error = f"mkfs.ext4 failed: {formatted}"
            return
        mounted = _run(
            [_tool("mount") or "mount", "-o", "loop,nosuid,nodev"]
            + [str(self._image), str(self.mountpoint)]
        )
        if mounted:
            self._error = f"mount failed: {mounted}"
            return
        self._mounted = True
        try:
            os.chmod(self.mountpoint, 0o1777)  # drwxrwxrwt, as Lambda's /tmp
        except OSError as exc:
            self._error = f"cannot open it to every user: {exc}"
        with contextlib.suppress(OSError):
            os.rmdir(self.mountpoint / "lost+found")  # Lambda's /tmp starts empty

    def mount(self) -> None:
        """Wait until the file system is mounted (before the container starts)."""
        self._making.join(_TOOL_TIMEOUT_S)
        if self._making.is_alive():
            raise BackendError(f"cannot make /tmp: not mounted within {_TOOL_TIMEOUT_S:g} s")
        if self._error is not None:
            raise BackendError(f"cannot make /tmp: {self._error}")

    def detach(self) -> None:
        """Drop the host's hold (after the container started, or after a failure)."""
        self._making.join(_TOOL_TIMEOUT_S)
        self._clean()

    def _clean(self) -> None:
        if self._mounted:
            _umount(str(self.mountpoint))
            self._mounted = False
        with contextlib.suppress(OSError):
            self._image.unlink()
        with contextlib.suppress(OSError):
            self.mountpoint.rmdir()


def _run(command: list[str]) -> str:
    """Run a tool; what it said if it failed, else ``""``."""
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=_TOOL_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
    return ""


def _umount(path: str) -> None:
    # Lazy: the container's own mount of the file system stays until the container ends.
    _run([_tool("umount") or "umount", "-l", path])
