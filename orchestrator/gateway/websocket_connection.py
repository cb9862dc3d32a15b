"""One client's WebSocket connection, after lrun's HTTP server handed it over.

Framing is the ``websockets`` library's sans-I/O protocol (RFC 6455: masking, fragments, ping and
pong, the closing handshake); this module moves bytes between it and the transport and holds the
client to API Gateway's bounds (``WebSocketLimits``): a message over 128 KB or a frame over 32 KB
closes the connection with 1009, as API Gateway's quotas set them ("Amazon API Gateway quotas
for configuring and running a WebSocket API"), a client that stops reading may leave at most
``max_buffered`` bytes waiting (then a post to it fails with LimitExceededException), and the
listener's sweep closes connections idle for 10 minutes or open for 2 hours.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import InvalidState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from orchestrator.gateway.websocket_events import Connection

KB = 1024


@dataclass(frozen=True)
class WebSocketLimits:
    """What one WebSocket API's clients may make lrun hold, as API Gateway bounds them."""

    max_connections: int = 1000  # open (and opening) connections per API
    max_message: int = 128 * KB  # a message, all its frames together
    max_frame: int = 32 * KB
    idle_s: float = 600.0  # API Gateway's idle connection timeout
    lifetime_s: float = 7200.0  # API Gateway's maximum connection duration
    max_buffered: int = 1024 * KB  # bytes waiting for a client that does not read
    max_in_flight: int = 64  # a connection's messages being handled at once
    max_early: int = 128 * KB  # bytes a client may send before its $connect is answered

    @classmethod
    def from_env(cls) -> WebSocketLimits:
        """The defaults, lowered for tests (never raised) by ``LRUN_WEBSOCKET_IDLE_S``,
        ``LRUN_WEBSOCKET_LIFETIME_S`` and ``LRUN_WEBSOCKET_MAX_CONNECTIONS``."""
        base = cls()

        def lowered(name: str, default: float, least: float) -> float:
            try:
                value = float(os.environ.get(name, default))
            except ValueError:
                return default
            return max(min(value, default), least)

        return cls(
            max_connections=int(lowered("LRUN_WEBSOCKET_MAX_CONNECTIONS", base.max_connections, 1)),
            idle_s=lowered("LRUN_WEBSOCKET_IDLE_S", base.idle_s, 0.1),
            lifetime_s=lowered("LRUN_WEBSOCKET_LIFETIME_S", base.lifetime_s, 0.1),
        )


class ClientBufferFull(Exception):
    """The client reads slower than it is sent to: API Gateway's LimitExceededException."""


OnMessage = Callable[["WebSocket", "bytes | str"], None]
OnClosed = Callable[["WebSocket"], None]


class WebSocket(asyncio.Protocol):
    """A connection: pending while its ``$connect`` runs, then open until either side closes."""

    def __init__(
        self,
        info: Connection,
        transport: asyncio.Transport,
        limits: WebSocketLimits,
        on_message: OnMessage,
        on_closed: OnClosed,
    ) -> None:
        self.info = info
        self._transport: asyncio.Transport | None = transport
        self._limits = limits
        self._on_message = on_message
        self._on_closed = on_closed
        self.protocol = ServerProtocol(max_size=limits.max_message)
        self._early: list[bytes] = []
        self._early_size = 0
        self.is_open = False
        self.opened = time.monotonic()
        self.last_active = self.opened
        self.last_active_ms = info.connected_at
        self._fragments: list[bytes] = []
        self._text = False
        self.in_flight = 0
        self.close_code = 1006  # abnormal closure, until a close frame says otherwise
        self.close_reason = "Connection closed abnormally"
        self._ended = False

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        if not self.is_open:
            self._early_size += len(data)
            if self._early_size > self._limits.max_early:
                self.abort()
            else:
                self._early.append(data)
            return
        self.last_active = time.monotonic()
        self.protocol.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        if self.is_open:
            self.protocol.receive_eof()
            self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._end()

    # the listener's side
    def open(self, handshake: bytes) -> None:
        """The handshake is accepted (``handshake`` is the 101 response): frames flow now."""
        if self._transport is None:
            return
        self._transport.write(handshake)
        # The handshake request was read by lrun's HTTP server, not by the protocol, whose
        # parser still waits for one: restart it now that the protocol is open, on frames.
        self.protocol.parser = self.protocol.parse()
        next(self.protocol.parser)
        self.is_open = True
        early, self._early = b"".join(self._early), []
        if early:
            self.data_received(early)

    def refuse(self, response: bytes) -> None:
        if self._transport is not None:
            self._transport.write(response)
            self._transport.close()

    def send(self, data: bytes | str) -> None:
        """Send a message; ``ClientBufferFull`` if the client is not reading what it is sent."""
        transport = self._transport
        if transport is None or not self.is_open or self.protocol.state is not State.OPEN:
            raise ConnectionError("closed")
        if transport.get_write_buffer_size() > self._limits.max_buffered:
            raise ClientBufferFull()
        if isinstance(data, str):
            self.protocol.send_text(data.encode())
        else:
            self.protocol.send_binary(data)
        self.last_active_ms = int(time.time() * 1000)
        self.last_active = time.monotonic()  # traffic either way keeps a connection from idling
        self._flush()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (the transport closes when it is done or at once)."""
        if self._transport is None:
            return
        if not self.is_open:
            self.abort()
            return
        try:
            self.protocol.send_close(code, reason)
        except InvalidState:
            pass
        self.close_code, self.close_reason = code, reason
        self._flush()
        # The client's close frame is not waited for: the connection ends now, as API
        # Gateway's own closes do; its transport closes once the frame is written.
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # framing
    def _process(self) -> None:
        for frame in self.protocol.events_received():
            if isinstance(frame, Frame):
                self._frame(frame)
        self._flush()
        if self.protocol.close_expected() or self.protocol.state is State.CLOSED:
            if self.protocol.close_rcvd is not None:
                self.close_code = self.protocol.close_rcvd.code
                self.close_reason = self.protocol.close_rcvd.reason or _REASONS.get(
                    self.close_code, ""
                )
            elif self.protocol.close_sent is not None:
                self.close_code = self.protocol.close_sent.code
                self.close_reason = self.protocol.close_sent.reason
            if self._transport is not None:
                self._transport.close()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # ping, pong and close are the protocol's
        if len(frame.data) > self._limits.max_frame:
            self.close(CloseCode.MESSAGE_TOO_BIG, "Frame size exceeds 32 KB")
            return
        if frame.opcode is not Opcode.CONT:
            self._fragments, self._text = [], frame.opcode is Opcode.TEXT
        self._fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        data = b"".join(self._fragments)
        self._fragments = []
        self.last_active_ms = int(time.time() * 1000)
        if self._text:
            try:
                self._on_message(self, data.decode())
            except UnicodeDecodeError:
                self.close(CloseCode.INVALID_DATA, "Invalid UTF-8 in a text message")
        else:
            self._on_message(self, data)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self.protocol.data_to_send():
            if chunk:
                transport.write(chunk)
            elif not transport.is_closing():
                transport.close()  # the protocol's end of stream: close after what is queued

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_closed(self)


# API Gateway's disconnectReason when the client's close frame carries none.
_REASONS = {1005: "Client-side close frame status not set", 1000: "", 1001: "Going away"}
