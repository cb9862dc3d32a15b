"""Bodies that stream through ``http_server``: a request body read as it arrives, and the
framing of a response body written as it is produced (HTTP/1.1 chunked transfer coding).

Lambda's response streaming needs both: a runtime posts its response in chunks, with trailers
for an error found midway, and lrun passes each chunk on to its client as soon as it has it.
A stream holds at most ``HIGH_WATER`` bytes its reader has not taken; beyond that the sender's
connection is no longer read, so a fast writer and a slow reader cost lrun a bounded buffer
and the writer waits, as TCP makes it wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

HIGH_WATER = 1024 * 1024  # bytes a stream holds for its reader before its sender is paused
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: an empty chunk would end the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class BodyAborted(ConnectionError):
    """The sender's connection ended before its body did."""


class BodyStream:
    """A request body as it arrives: ``read`` returns its pieces in order, then ``b""``; the
    trailers sent after the last piece are in ``trailers`` once ``read`` returned ``b""``.

    The server feeds it (``append``, ``end``, ``abort``) and is asked to stop reading the
    connection (``pause``) while ``HIGH_WATER`` bytes wait, and to go on (``resume``) once the
    reader has taken them. ``discard`` drops whatever comes after the reader has stopped reading.
    """

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self.trailers: dict[str, str] = {}  # names lower-cased, as the server's headers
        self._pause = pause
        self._resume = resume
        self._pieces: deque[bytes] = deque()
        self._held = 0
        self._paused = False
        self._ended = False
        self._aborted = False
        self._discarding = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    # The server's side

    def append(self, piece: bytes) -> None:
        if self._discarding:
            return
        self._pieces.append(piece)
        self._held += len(piece)
        if self._held > HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def abort(self) -> None:
        if not self._ended:
            self._aborted = True
            self._wake()

    # The reader's side

    async def read(self) -> bytes:
        """The next piece (all that waits, joined), or ``b""`` at the end; ``BodyAborted`` if
        the connection ended first."""
        while not self._pieces:
            if self._ended:
                return b""
            if self._aborted:
                raise BodyAborted("the connection ended before the body did")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._pieces.popleft() if len(self._pieces) == 1 else b"".join(self._pieces)
        self._pieces.clear()
        self._held = 0
        if self._paused:
            self._paused = False
            self._resume()
        return data

    async def read_all(self, limit: int) -> bytes | None:
        """The whole body, or None as soon as it is over ``limit`` bytes (the rest dropped)."""
        parts: list[bytes] = []
        size = 0
        while piece := await self.read():
            size += len(piece)
            if size > limit:
                self.discard()
                return None
            parts.append(piece)
        return b"".join(parts)

    def discard(self) -> None:
        """Nobody reads on: drop what waits and what still comes, and let the sender go on."""
        self._discarding = True
        self._pieces.clear()
        self._held = 0
        if self._paused:
            self._paused = False
            self._resume()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
