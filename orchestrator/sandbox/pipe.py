"""A runtime's output through a pipe lrun owns, so each byte is given to the right invocation.

Docker's attach stream carries a container's output through the engine, apart from the Runtime
API calls, so when a runtime asks for its next event lrun cannot know whether the output written
before that has all arrived (issue 9). lrun's own runtime images therefore write their stdout and
stderr into a FIFO made here, on the host, and bind-mounted into the container
(``container.with_output_pipe``). A write to a pipe is complete once it is in the kernel's buffer
(Node.js writes pipes synchronously on Linux, awslambdaric makes Python's streams unbuffered), so
when the runtime's ``/next`` reaches lrun, everything it wrote before is in this pipe: reading
it until it is empty (``drain``) closes the invocation's output exactly, in one system call when
nothing is left. The pipe is read continuously on the event loop as well, so a writer never waits
long.

The FIFO's name is lrun's (the environment's random id), never a caller's; it is unlinked as soon
as the container has it mounted, so nothing is left on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

# Where a runtime finds the pipe inside its container.
TARGET = "/var/runtime/lrun-output"
# A larger pipe buffer lets a burst of output go without the writer waiting for lrun to read.
PIPE_BYTES = 1024 * 1024
_READ_BYTES = 256 * 1024
# A callback reads at most this much before letting the loop do other work.
_READS_PER_CALLBACK = 8
# FIFOs a crashed lrun left behind (made, never mounted) are removed after this long.
_LEFTOVER_AGE_S = 3600.0


class OutputPipe:
    """One environment's output pipe: made, read on the loop, ended when its writers are gone.

    ``on_output`` hears each chunk in order; ``on_end`` once every writer has closed the pipe
    (the container's processes are gone) after ``release``.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        on_output: Callable[[bytes], None],
        on_end: Callable[[], None],
    ) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self.path = directory / name
        os.mkfifo(self.path, 0o600)
        # Written by the sandbox user, which owns nothing on the host; the directory (0700)
        # keeps everyone else on the host away from it.
        os.chmod(self.path, 0o622)
        self._on_output = on_output
        self._on_end = on_end
        self._reader: int | None = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # lrun holds a writer of its own until the runtime surely has the pipe open (it calls
        # the Runtime API, or dies): until then an empty pipe would read as ended.
        self._keeper: int | None = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # beyond /proc/sys/fs/pipe-max-size: the default
            fcntl.fcntl(self._reader, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False

    def unlink(self) -> None:
        """Remove the FIFO's name; a container that has it mounted keeps writing to it."""
        with contextlib.suppress(OSError):
            self.path.unlink()

    def start(self) -> None:
        """Read the pipe on the running loop from now on."""
        self._loop = asyncio.get_running_loop()
        self.resume()

    def pause(self) -> None:
        """Read no more until ``resume``: the runtime's writes then wait, as on a full pipe."""
        if self._reading and self._loop is not None and self._reader is not None:
            self._loop.remove_reader(self._reader)
        self._reading = False

    def resume(self) -> None:
        if not self._reading and self._loop is not None and self._reader is not None:
            self._loop.add_reader(self._reader, self._readable)
            self._reading = True

    def release(self) -> None:
        """Drop lrun's own writer: from now on, the pipe ends when the container's writers do."""
        if self._keeper is not None:
            os.close(self._keeper)
            self._keeper = None

    def drain(self) -> None:
        """Read everything in the pipe now, until it is empty (or ended)."""
        while self._read_once():
            pass

    def _readable(self) -> None:
        for _ in range(_READS_PER_CALLBACK):
            if not self._read_once():
                return

    def _read_once(self) -> bool:
        """One read; False once the pipe is empty or ended."""
        if self._reader is None:
            return False
        try:
            chunk = os.read(self._reader, _READ_BYTES)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            self._on_end()
            return False
        self._on_output(chunk)
        return True

    def close(self) -> None:
        """Stop reading and close lrun's ends (the runtime's writes then fail with EPIPE)."""
        self.pause()
        self.release()
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None
        self.unlink()

    @property
    def reading(self) -> bool:
        return self._reading

    @property
    def closed(self) -> bool:
        return self._reader is None


def sweep(directory: Path) -> None:
    """Remove FIFOs an earlier lrun made and never got to unlink (it was killed meanwhile)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEFTOVER_AGE_S:
                os.unlink(entry.path)
