"""What a runtime writes, kept for an invocation's log within a fixed amount of memory.

A function can write without limit, and lrun must not hold it (issue 8): an invocation keeps the
first ``HEAD_BYTES`` of its output and the last ``TAIL_BYTES`` (what ``LogType: Tail`` needs),
and everything after the head goes to a spill, which writes it to disk behind the invocation
(the server's log book), so nothing is lost and no disk write sits in its path.
"""

from __future__ import annotations

from typing import Protocol

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 4096


class Spill(Protocol):
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

    __slots__ = ("_name", "_spill", "_head", "_head_size", "_tail", "beyond", "spilled_to")

    def __init__(self, name: str = "", spill: Spill | None = None) -> None:
        self._name = name
        self._spill = spill
        self._head: list[bytes] = []
        self._head_size = 0
        self._tail = bytearray()
        self.beyond = 0  # bytes written after the head
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
            self.spilled_to = self._spill.spill(self._name, chunk)
        self._tail += chunk[-TAIL_BYTES:]
        del self._tail[:-TAIL_BYTES]

    def __len__(self) -> int:
        return self._head_size + self.beyond

    def bytes(self) -> bytes:
        head = b"".join(self._head)
        if self.beyond <= TAIL_BYTES:
            return head + bytes(self._tail)
        where = f"; all of it is in {self.spilled_to}" if self.spilled_to else ""
        marker = f"\n[lrun: {self.beyond - TAIL_BYTES} bytes of output not shown here{where}]\n"
        return head + marker.encode() + bytes(self._tail)
