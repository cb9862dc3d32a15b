"""What a runtime writes, kept for an invocation's log within a fixed amount of memory.

A function can write without limit, and lrun must not hold it (issue 8): an invocation keeps the
first ``HEAD_BYTES`` of its output and the last ``TAIL_BYTES`` (what ``LogType: Tail`` needs),
and everything after the head goes to a spill, which writes it to disk behind the invocation
(the server's log book), so nothing is lost and no disk write sits in its path.

The disk is bounded too: an invocation spills at most its spill's ``per_output`` bytes; output
beyond that is counted, and its last ``TAIL_BYTES`` still kept, and the log says how much was
not kept (DESIGN D9).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 4096


class Spill(Protocol):
    @property
    def per_output(self) -> int:
        """At most this many bytes of one capture are spilled."""
        ...

    def spill(self, name: str, data: bytes) -> str:
        """Queue ``data`` for the file called ``name``; returns where that file is."""
        ...

    def backlog(self) -> int:
        """Bytes queued and not yet written."""
        ...

    async def drained(self) -> None:
        """Return once what was queued before the call is written."""
        ...


class Capture:
    """One invocation's output (or an environment's init output), bounded in memory."""

    __slots__ = (
        "_name",
        "_spill",
        "_head",
        "_head_size",
        "_tail",
        "beyond",
        "spilled",
        "spilled_to",
    )

    def __init__(self, name: str = "", spill: Spill | None = None) -> None:
        self._name = name
        self._spill = spill
        self._head: list[bytes] = []
        self._head_size = 0
        self._tail = bytearray()
        self.beyond = 0  # bytes written after the head
        self.spilled = 0  # of those, bytes handed to the spill (up to its per_output)
        self.spilled_to: str | None = None

    def rename(self, name: str) -> None:
        """Spill under ``name`` from now on; a capture that has spilled already keeps its file."""
        if self.spilled_to is None:
            self._name = name

    def append(self, chunk: bytes) -> None:
        room = HEAD_BYTES - self._head_size
        if room > 0:
            if len(chunk) <= room:
                self._head.append(chunk)
                self._head_size += len(chunk)
                return
            self._head.append(chunk[:room])
            self._head_size = HEAD_BYTES
            chunk = chunk[room:]
        self.beyond += len(chunk)
        if self._spill is not None:
            room = self._spill.per_output - self.spilled
            if room > 0:
                kept = chunk[:room]
                self.spilled += len(kept)
                self.spilled_to = self._spill.spill(self._name, kept)
        self._tail += chunk[-TAIL_BYTES:]
        del self._tail[:-TAIL_BYTES]

    def ends_line(self) -> bool:
        """Whether the output is empty or ends with a newline."""
        last = self._tail[-1:] if self.beyond else (self._head[-1][-1:] if self._head else b"")
        return last in (b"", b"\n")

    def __len__(self) -> int:
        return self._head_size + self.beyond

    @property
    def dropped(self) -> int:
        """Bytes neither spilled nor among the last ``TAIL_BYTES``: over the disk limit."""
        if self._spill is None:
            return 0
        return max(0, self.beyond - self.spilled - TAIL_BYTES)

    def _where(self) -> str:
        if not self.spilled_to:
            return ""
        if self.spilled >= self.beyond:
            return f"; all of it is in {self.spilled_to}"
        assert self._spill is not None
        return (
            f"; the first {self.spilled} bytes of it are in {self.spilled_to}, and the "
            f"{self.beyond - self.spilled} bytes after them were beyond lrun's limit of "
            f"{self._spill.per_output} bytes per invocation on disk, so only the last "
            f"{min(TAIL_BYTES, self.beyond)} of them are kept (below)"
        )

    def bytes(self) -> bytes:
        head = b"".join(self._head)
        if self.beyond <= TAIL_BYTES:
            return head + bytes(self._tail)
        marker = (
            f"\n[lrun: {self.beyond - TAIL_BYTES} bytes of output not shown here{self._where()}]\n"
        )
        return head + marker.encode() + bytes(self._tail)

    def write_whole(self, out: BinaryIO) -> None:
        """Write all of the output there is: the head, the spilled file, then what is beyond
        the disk limit as far as it was kept (its last ``TAIL_BYTES``), with a note."""
        if self.spilled_to is None:
            out.write(self.bytes())
            return
        out.writelines(self._head)
        try:
            with open(self.spilled_to, "rb") as spilled:
                shutil.copyfileobj(spilled, out)
        except OSError as exc:
            out.write(
                f"\n[lrun: {self.spilled} bytes of output could not be read: {exc}]\n".encode()
            )
        unspilled = self.beyond - self.spilled
        if unspilled <= 0:
            return
        if unspilled > TAIL_BYTES:
            out.write(
                f"\n[lrun: {unspilled - TAIL_BYTES} bytes of output not kept: beyond lrun's "
                f"limit of {self.spilled} bytes per invocation on disk]\n".encode()
            )
        out.write(bytes(self._tail)[-unspilled:])


class FileSpill:
    """A spill that writes at once, for a one-shot ``lrun invoke``: the process prints the
    output and ends, so its files live in a directory that goes with it."""

    def __init__(self, directory: Path, per_output: int) -> None:
        self.directory = directory
        self.per_output = per_output

    def spill(self, name: str, data: bytes) -> str:
        path = self.directory / f"{name}.out"
        with open(path, "ab") as out:
            out.write(data)
        return str(path)

    def backlog(self) -> int:
        return 0

    async def drained(self) -> None:
        return None
