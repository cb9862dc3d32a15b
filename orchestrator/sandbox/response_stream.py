"""A response its runtime streams (``Lambda-Runtime-Function-Response-Mode: streaming``).

The runtime posts it to the Runtime API in chunks; each chunk is passed on the moment it comes
to the invocation's reader, if it has one (``InvokeWithResponseStream``, a function URL in
``RESPONSE_STREAM`` mode): that is what makes the first byte reach the client while the
function is still writing. An invocation whose caller wants the whole response (``Invoke``)
has no reader: the chunks are kept, up to Lambda's 6 MB for a buffered response.

What the stream may cost lrun is bounded: a reader is given at most ``HIGH_WATER`` bytes ahead
of what it took, beyond which the runtime waits (its connection is no longer read), and the
whole response stops at ``limit`` bytes with Lambda's ``Function.ResponseSizeTooLarge``. A
reader that goes away leaves the stream discarding: the function runs on to its end, as on
Lambda, and nothing is held for it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import AsyncIterator

from orchestrator.http_stream import HIGH_WATER
from orchestrator.sandbox.invocation import MAX_RESPONSE_PAYLOAD

MB = 1024 * 1024
# AWS's default maximum for a streamed response ("response streaming functions can return
# payloads up to 200 MB", Lambda developer guide, configuration-response-streaming; 20 MB
# before July 2025). ``lrun serve`` takes another from LRUN_STREAM_LIMIT_MB.
STREAM_LIMIT = 200 * MB
MODE_HEADER = "lambda-runtime-function-response-mode"
ERROR_TYPE_TRAILER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"
TOO_LARGE = "Function.ResponseSizeTooLarge"
TRUNCATED = "Runtime.TruncatedResponse"


class _Mode(enum.Enum):
    KEEPING = "keeping"  # no reader: the chunks are kept for the whole response
    READING = "reading"  # a reader takes the chunks as they come
    DISCARDING = "discarding"  # the reader went away: chunks are counted and dropped


class ResponseStream:
    """One invocation's streamed response, from its runtime to its reader."""

    def __init__(self, content_type: str, limit: int = MAX_RESPONSE_PAYLOAD) -> None:
        self.content_type = content_type
        self.limit = limit
        self.started_at = time.monotonic()  # when the runtime began its streamed answer
        self.first_byte_at: float | None = None
        self.size = 0  # bytes the runtime sent, up to the limit
        self.error_type: str | None = None  # set when the stream ended with an error
        self.error_body = b""
        self._mode = _Mode.KEEPING
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._ended = False
        self._data: asyncio.Future[None] | None = None  # the reader waits for a chunk
        self._space: asyncio.Future[None] | None = None  # the runtime waits for the reader

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def over_limit(self) -> bool:
        return self.error_type == TOO_LARGE

    # The reader's side

    def attach(self, limit: int = STREAM_LIMIT) -> None:
        """Take the chunks as they come (before any came), up to ``limit`` bytes in all."""
        self._mode = _Mode.READING
        self.limit = limit

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunks as they come, until the stream ends; leaving early stops the keeping."""
        try:
            while True:
                if self._chunks:
                    data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                    self._chunks.clear()
                    self._held = 0
                    _wake(self._space)
                    yield data
                elif self._ended:
                    return
                else:
                    self._data = asyncio.get_running_loop().create_future()
                    await self._data
        finally:
            if not self._ended or self._chunks:
                self.detach()

    def detach(self) -> None:
        """The reader is gone: what waits and what still comes is dropped."""
        self._mode = _Mode.DISCARDING
        self._chunks.clear()
        self._held = 0
        _wake(self._space)

    def kept(self) -> bytes:
        """The whole response, when it had no reader (else nothing: it was passed on)."""
        return b"".join(self._chunks) if self._mode is _Mode.KEEPING else b""

    # The runtime's side

    async def put(self, data: bytes) -> bool:
        """Pass on a chunk (waiting while the reader is ``HIGH_WATER`` behind); False when it
        takes the response over its limit: what fits is passed on, the rest refused."""
        if not data or self._ended:
            return not self._ended
        if self.first_byte_at is None:
            self.first_byte_at = time.monotonic()
        room = self.limit - self.size
        over = len(data) > room
        if over:
            data = data[:room]
        self.size += len(data)
        if self._mode is not _Mode.DISCARDING and data:
            self._chunks.append(data)
            self._held += len(data)
            _wake(self._data)
        while self._mode is _Mode.READING and self._held > HIGH_WATER and not self._ended:
            self._space = asyncio.get_running_loop().create_future()
            await self._space
        return not over

    def end(self, error_type: str | None = None, error_body: bytes = b"") -> None:
        """The stream is over; ``error_type`` says why it ended early (or the runtime's own
        error, from its trailers). Only the first end counts."""
        if self._ended:
            return
        self._ended = True
        self.error_type = error_type
        self.error_body = error_body
        _wake(self._data)
        _wake(self._space)


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
