"""A small HTTP/1.1 server on asyncio and httptools: a route table and request/response values.

Both of lrun's HTTP faces (the Runtime API the containers call and the Invoke API clients call)
sit on this. It exists instead of a framework because the warm path is two loopback exchanges and
every microsecond of per-request overhead shows in the latency figures (DESIGN D5); it handles
keep-alive, pipelined requests answered in order, ``Expect: 100-continue`` and long-polls whose
client goes away (the handler task is cancelled).

Every client is bounded (``Limits``): a body beyond the limit is refused while it is read, never
buffered; heads are capped in size, header count and URL length; a head must arrive in time and
an idle keep-alive connection is closed; connections are capped in total and per client address.
A client (or a function, through the Runtime API) can therefore cost lrun neither memory nor file
descriptors without bound. None of this adds a timer, a thread or a system call per request: one
sweep a second looks at every connection's state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

import httptools

from orchestrator.errors import RequestTooLarge
from orchestrator.http_stream import LAST_CHUNK, BodyStream, chunk

log = logging.getLogger(__name__)

KB = 1024


@dataclass(frozen=True)
class Limits:
    """What one client may cost a server."""

    max_body: int = 6 * KB * KB  # bytes of one request body; beyond it the request is refused
    max_url: int = 8 * KB  # bytes of the request target
    max_head: int = 32 * KB  # bytes of request line and headers together
    max_headers: int = 100  # header fields of one request
    # A request's head must arrive within this (a new connection's first one too): slowloris.
    head_timeout_s: float = 10.0
    # A keep-alive connection with no request in flight, or a body that stops arriving, is closed
    # after this long. A request being answered (a long-poll) is never timed out here.
    idle_timeout_s: float = 60.0
    max_connections: int = 1024  # in total: at the cap the longest idle connection makes room
    max_per_peer: int | None = None  # per client address, likewise
    # Requests whose route lets their body be larger than ``max_body`` (code uploads), held at
    # once from their first byte over it until answered; more are refused with 429.
    max_large_bodies: int = 2


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # as sent: percent-encoded; route parameters are decoded once, by the router
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    peer: str  # the client's IP address
    params: Mapping[str, str] = field(default_factory=dict)  # from the route pattern
    raw_query: str = ""  # as sent, for a parameter given more than once (``tagKeys=a&tagKeys=b``)
    # Every header as sent (name's case kept, repeated names repeated), for dispatchers that ask
    # for them with ``raw_headers = True`` (API Gateway's events carry them); empty otherwise.
    raw_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    repeated: tuple[tuple[str, str], ...] = ()  # headers a name may repeat in (Set-Cookie)
    # A body written as it is produced (chunked), instead of ``body``: each piece goes to the
    # client as soon as it comes. Closed (``aclose``) when the client goes away first.
    stream: AsyncIterable[bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]
# A route whose requests' bodies are read as they arrive (a chunked body): called as soon as
# the body's first piece is there, with the request (its body empty) and the body's stream.
StreamHandler = Callable[[Request, BodyStream], Coroutine[Any, Any, Response]]
# Called instead of the handler when a request's body is over the limit: the request comes with
# an empty body, and the size is the declared one, or None when it was cut off while streaming.
TooLargeHandler = Callable[[Request, "int | None"], Awaitable[Response]]
ErrorMapper = Callable[[Exception], Response]
# Takes over a connection whose request asked to upgrade (a WebSocket handshake): the request,
# its transport and the bytes that followed the request on it. A dispatcher that has an
# ``upgrade`` method of this type gets such requests; for others they are refused with 400.
Upgrader = Callable[[Request, asyncio.Transport, bytes], None]


class Dispatcher(Protocol):
    """What a server hands each request to: a ``Router``, or something in front of one."""

    async def dispatch(self, request: Request) -> Response: ...

    async def dispatch_too_large(
        self, request: Request, size: int | None, limit: int
    ) -> Response: ...

    def body_limit(self, method: str, path: str) -> int | None:
        """A larger body limit for this request's route than the server's, or None."""
        ...


StreamRoute = Callable[[str, str], "StreamHandler | None"]


class Router:
    """Routes ``METHOD /path/{param}`` patterns to handlers; first match wins."""

    def __init__(self, on_error: ErrorMapper, unknown: Exception | None = None) -> None:
        """``unknown``: the error a request no route fits becomes (by default a bare 404)."""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._too_large: dict[Handler, TooLargeHandler] = {}
        self._body_limits: dict[Handler, int] = {}
        self._streams: dict[Handler, StreamHandler] = {}
        self._on_error = on_error
        self._unknown = unknown
        # Matches by (method, path): a client calls the same few paths again and again (one
        # function's invocations, a runtime's /next). Bounded: cleared when full.
        self._matched: dict[tuple[str, str], tuple[Handler, dict[str, str]] | None] = {}

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        too_large: TooLargeHandler | None = None,
        max_body: int | None = None,
        stream: StreamHandler | None = None,
    ) -> None:
        """Route ``METHOD pattern`` to ``handler``; ``too_large`` answers its oversized requests
        (by default they become ``RequestTooLarge`` errors for ``on_error``); ``max_body``
        replaces the server's body limit for this route (a code upload's is larger); ``stream``
        answers its requests whose body is chunked, reading the body as it arrives (no limit
        applies: it is the stream handler's to keep)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))
        self._matched.clear()
        if too_large is not None:
            self._too_large[handler] = too_large
        if max_body is not None:
            self._body_limits[handler] = max_body
        if stream is not None:
            self._streams[handler] = stream

    def stream_route(self, method: str, path: str) -> StreamHandler | None:
        """What reads this request's chunked body as it arrives, if its route streams. (A
        dispatcher without this method reads every body whole.)"""
        if not self._streams:
            return None
        found = self.match(method, path)
        if found is None or found[0] not in self._streams:
            return None
        stream, params = self._streams[found[0]], found[1]

        async def answer(request: Request, body: BodyStream) -> Response:
            try:
                return await stream(_with_params(request, params), body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return self._on_error(exc)

        return answer

    def body_limit(self, method: str, path: str) -> int | None:
        if not self._body_limits:
            return None
        found = self.match(method, path)
        return None if found is None else self._body_limits.get(found[0])

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and path parameters for a request, or None when no route fits (the
        parameters are shared between requests of the same path: read them, do not change them)."""
        key = (method, path)
        try:
            return self._matched[key]
        except KeyError:
            pass
        found = self._match(method, path)
        if len(path) <= _MATCHED_PATH_MAX:  # what a client can make lrun hold stays small
            if len(self._matched) >= _MATCHES_KEPT:
                self._matched.clear()
            self._matched[key] = found
        return found

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for route_method, regex, handler in self._routes:
            if route_method == method:
                found = regex.match(path)
                if found:
                    return handler, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    async def dispatch(self, request: Request) -> Response:
        found = self.match(request.method, request.path)
        if found is None:
            if self._unknown is not None:
                return self._on_error(self._unknown)
            return Response(404, b'{"message":"no route"}')
        handler, params = found
        try:
            return await handler(_with_params(request, params) if params else request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one mapping for every route: errors become responses
            return self._on_error(exc)

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        """Answer a request whose body was refused for its size (its body is not there)."""
        found = self.match(request.method, request.path)
        try:
            if found is not None and found[0] in self._too_large:
                return await self._too_large[found[0]](_with_params(request, found[1]), size)
            this = f"this one is {size} bytes" if size is not None else "this one is larger"
            raise RequestTooLarge(f"Request must be smaller than {limit} bytes ({this})")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._on_error(exc)


_MATCHES_KEPT = 1024
_MATCHED_PATH_MAX = 256


def _with_params(request: Request, params: dict[str, str]) -> Request:
    return Request(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        request.peer,
        params,
        request.raw_query,
        request.raw_headers,
    )


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _reason(status: int) -> str:
    return _PHRASES.get(status, "Unknown")


def encode_head(response: Response, keep_alive: bool) -> bytes:
    """The head of a response whose body is streamed (chunked)."""
    lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    lines.extend(f"{k}: {v}" for k, v in response.headers.items())
    lines.extend(f"{k}: {v}" for k, v in response.repeated)
    lines.append("Transfer-Encoding: chunked")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_response(response: Response, keep_alive: bool) -> bytes:
    head = f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n"
    for name, value in response.headers.items():
        head += f"{name}: {value}\r\n"
    for name, value in response.repeated:
        head += f"{name}: {value}\r\n"
    head += f"Content-Length: {len(response.body)}\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + response.body


class Connections:
    """The open connections of one or more servers, held to ``limits``.

    Servers that share one (the Runtime API listens on several networks) share its caps. A
    connection that is answering a request is busy: never timed out, never evicted.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._all: set[_Protocol] = set()
        self._by_peer: dict[str, set[_Protocol]] = {}
        self.large: set[_Protocol] = set()  # holding a body over max_body (see Limits)
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._all)

    def peer_count(self, peer: str) -> int:
        return len(self._by_peer.get(peer, ()))

    def admit(self, conn: _Protocol) -> bool:
        """Take a new connection, making room by closing an idle one at a cap; False if none
        could be closed (every one is busy): the new connection is then refused."""
        limits = self.limits
        mine = self._by_peer.get(conn.peer)
        if limits.max_per_peer is not None and mine and len(mine) >= limits.max_per_peer:
            if not self._evict(mine):
                return False
        if len(self._all) >= limits.max_connections and not self._evict(self._all):
            return False
        self._all.add(conn)
        self._by_peer.setdefault(conn.peer, set()).add(conn)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return True

    def remove(self, conn: _Protocol) -> None:
        self._all.discard(conn)
        self.large.discard(conn)
        mine = self._by_peer.get(conn.peer)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self._by_peer[conn.peer]

    def _evict(self, conns: set[_Protocol]) -> bool:
        """Close the connection of ``conns`` idle the longest; False if all are busy. It stops
        counting at once: its transport closes only later, and a burst must not overrun."""
        idle = [c for c in conns if not c.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.since)
        self.remove(oldest)
        oldest.abort()
        return True

    def close_peer(self, peer: str) -> None:
        """Close every connection from ``peer`` (its environment is gone), busy ones too."""
        for conn in list(self._by_peer.get(peer, ())):
            conn.close()

    async def _sweep(self) -> None:
        limits = self.limits
        interval = max(0.05, min(1.0, limits.head_timeout_s / 4, limits.idle_timeout_s / 4))
        try:
            while self._all:
                await asyncio.sleep(interval)
                now = time.monotonic()
                for conn in list(self._all):
                    conn.expire(now, limits)
        finally:
            self._sweeper = None


# A connection's phase, for its timeouts; _LINGER: refused, its answer sent, the rest discarded.
_HEAD, _BODY, _IDLE, _LINGER = 0, 1, 2, 3
# After refusing a request, how much more of it is read and thrown away, and for how long, so
# that a client still sending its body gets to read the refusal instead of a reset connection.
LINGER_BYTES = 16 * KB * KB
LINGER_S = 5.0


class _Protocol(asyncio.Protocol):
    """One connection: parse requests, run their handlers, write answers in request order."""

    def __init__(self, router: Dispatcher, local: set[_Protocol], registry: Connections) -> None:
        self._router = router
        self._stream_route: StreamRoute | None = getattr(router, "stream_route", None)
        self._local = local  # this server's connections
        self._max_body = 0  # this request's body limit: the server's, or its route's
        self._route_limit_seen = False
        self._registry = registry
        self._limits = registry.limits
        self._parser = httptools.HttpRequestParser(self)
        self._raw: list[tuple[str, str]] | None = (
            [] if getattr(router, "raw_headers", False) else None
        )
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.peer = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0
        self._phase = _HEAD
        self.since = time.monotonic()  # when the current phase began (or a busy spell ended)
        self._last_data = self.since
        self._refusal: tuple[int, int | None] | None = None  # (status, declared body size)
        self._discard_left = LINGER_BYTES
        self._pending: asyncio.Task[None] | None = None  # the last request's task, for ordering
        self._tasks: set[asyncio.Task[None]] = set()
        self._upgrader: Upgrader | None = getattr(router, "upgrade", None)
        self._upgrade: Request | None = None  # a complete request that asked to upgrade
        self._stream: BodyStream | None = None  # the body being read by its route, as it comes
        self._drained: asyncio.Future[None] | None = None  # set while the client reads slowly

    @property
    def busy(self) -> bool:
        """Answering a request (which may be a long-poll): no timeout applies."""
        return bool(self._tasks)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's too)
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        if not self._registry.admit(self):
            self._transport = None
            transport.abort()  # type: ignore[attr-defined]  # no fd kept, no bytes read: refused outright
            return
        self._local.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.remove(self)
        self._local.discard(self)
        self._transport = None
        if self._stream is not None:
            self._stream.abort()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        for task in self._tasks:
            task.cancel()

    def expire(self, now: float, limits: Limits) -> None:
        """Close the connection if its phase has lasted too long (called by the sweep)."""
        if self._tasks:
            self.since = now  # idleness counts from the end of the last answer, roughly
        elif self._phase == _HEAD:
            if now - self.since > limits.head_timeout_s:
                self._close_with(408)
        elif self._phase == _BODY:
            if now - self._last_data > limits.idle_timeout_s:
                self._close_with(408)
        elif self._phase == _LINGER:
            if now - self.since > LINGER_S:
                self.abort()
        elif now - self.since > limits.idle_timeout_s:
            self.close()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            # Refused: the rest is never parsed, only counted and dropped, up to a bound.
            self._discard_left -= len(data)
            if self._discard_left < 0:
                self.abort()
            return
        if self._phase == _IDLE:
            self._phase, self.since, self._head_size = _HEAD, time.monotonic(), 0
        elif self._phase == _BODY:
            self._last_data = time.monotonic()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._hand_over(data, exc)
            return
        except httptools.HttpParserError:
            if self._refusal is None:
                self._close_with(400)
                return
        if self._phase == _HEAD and self._refusal is None:
            # The head is still incomplete: count it here, since the parser gathers a header's
            # pieces itself. It overshoots by at most one read, which is bounded by the transport.
            self._head_size += len(data)
            if self._head_size > self._limits.max_head:
                self._refuse(431)
        if self._refusal is not None:
            self._answer_refusal()

    def _hand_over(self, data: bytes, exc: httptools.HttpParserUpgrade) -> None:
        """Give the connection to the dispatcher's ``upgrade``: it is no longer HTTP's, so it
        stops counting here (the upgrader bounds its own)."""
        request, transport = self._upgrade, self._transport
        if request is None or self._upgrader is None or transport is None or self._tasks:
            self._close_with(400)
            return
        offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
        self._registry.remove(self)
        self._local.discard(self)
        self._transport = None
        self._upgrader(request, transport, data[offset:])

    def _refuse(self, status: int, size: int | None = None) -> None:
        if self._refusal is None:
            self._refusal = (status, size)
            self._body = []

    def _answer_refusal(self) -> None:
        assert self._refusal is not None
        status, size = self._refusal
        self._registry.large.discard(self)  # its body is dropped, not held
        if status == 413:
            request = self._request(b"")
            answer = self._router.dispatch_too_large(request, size, self._max_body)
        else:
            answer = _static(_refusal_response(status))
        self._schedule(answer, keep_alive=False, linger=True)

    def _close_with(self, status: int) -> None:
        if self._transport is not None:
            self._transport.write(encode_response(_refusal_response(status), keep_alive=False))
            self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        if self._raw is not None:
            self._raw = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url:
            self._refuse(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        count = len(self._headers) if self._raw is None else len(self._raw)
        if count >= self._limits.max_headers:
            self._refuse(431)
        if self._raw is None:
            self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        else:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            self._headers[key.lower()] = text
            self._raw.append((key, text))

    def on_headers_complete(self) -> None:
        self._phase, self._last_data = _BODY, time.monotonic()
        if self._refusal is not None:
            return
        self._max_body, self._route_limit_seen = self._limits.max_body, False
        declared = self._headers.get("content-length", "")
        if not declared:
            # Chunked, if it has a body at all: its first piece looks for a route reading it
            # as it comes (``_over``), so requests with a length never pay for the look-up.
            self._max_body = -1
        elif declared.isdigit() and int(declared) > self._max_body and self._over(int(declared)):
            self._refuse(413, int(declared))  # refused before a byte of it is read
        elif (
            self._refusal is None
            and self._headers.get("expect", "").lower() == "100-continue"
            and self._transport
        ):
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refusal is not None:
            return
        self._body_size += len(body)
        if self._body_size > self._max_body and self._over(self._body_size):
            self._refuse(413)  # a chunked body, cut off as soon as it is over
        elif self._refusal is None:
            self._body.append(body)

    def _over(self, size: int) -> bool:
        """Is a body of ``size`` bytes over this request's limit? The route's own limit is
        looked up only for a body over the server's, so other requests never pay for it."""
        if size <= self._max_body:
            return False
        if self._max_body < 0:  # the first piece of a chunked body
            if self._open_stream():
                return False
            self._max_body = self._limits.max_body
            if size <= self._max_body:
                return False
        if not self._route_limit_seen:
            self._route_limit_seen = True
            if self._url:
                url = httptools.parse_url(self._url)
                method = self._parser.get_method().decode("latin-1")
                route_limit = self._router.body_limit(method, url.path.decode("latin-1"))
                if route_limit is not None:
                    self._max_body = route_limit
            if size <= self._max_body:  # a large body its route allows: a few at a time
                large = self._registry.large
                if self not in large and len(large) >= self._limits.max_large_bodies:
                    self._refuse(429)
                    return False
                large.add(self)
        return size > self._max_body

    def on_message_complete(self) -> None:
        self._phase, self.since = _IDLE, time.monotonic()
        if self._refusal is not None:
            return
        if self._stream is not None:  # its route has been reading it all along
            self._stream.end()
            self._stream = None
            return
        body = b"".join(self._body)
        self._body = []
        request = self._request(body)
        if self._upgrader is not None and self._parser.should_upgrade():
            self._upgrade = request  # handed over once the parser stops at the upgrade
            return
        keep_alive = self._parser.should_keep_alive()
        handler = self._router.dispatch(request)
        answer: Awaitable[Response] = handler
        if self._pending is None or self._pending.done():
            # Nothing to answer before it: run the handler now instead of in a task of its own.
            # Most answers need no waiting (a runtime's /response, the API's reads) and are
            # written here, without a task or a turn of the loop; one that waits (an invoke, a
            # long-poll) or streams its body goes on in a task.
            try:
                waiting_for = handler.send(None)
            except StopIteration as done:
                response: Response = done.value
                if response.stream is None:
                    self._registry.large.discard(self)
                    self._write(response, keep_alive)
                    return
                answer = _static(response)
            except Exception:  # handlers map their errors to responses: this is a bug
                log.exception("HTTP handler failed")
                self._close_with(500)
                return
            else:
                answer = _Resumed(handler, waiting_for)
        task = self._schedule(answer, keep_alive)
        if self in self._registry.large:  # held until answered: its handler holds it too
            task.add_done_callback(lambda _: self._registry.large.discard(self))

    def _open_stream(self) -> bool:
        """Hand a chunked body to its route as it arrives, if the route reads it so."""
        if not self._url or self._stream_route is None:
            return False
        method = self._parser.get_method().decode("latin-1")
        url = httptools.parse_url(self._url)
        answer = self._stream_route(method, url.path.decode("latin-1"))
        if answer is None:
            return False
        stream = BodyStream(self._pause_reading, self._resume_reading)
        request = self._request(b"")
        self._stream = stream
        self._body = _Feed(stream)
        self._headers = stream.trailers  # header fields after the body are its trailers
        self._max_body = sys.maxsize
        keep_alive = self._parser.should_keep_alive()
        self._schedule(self._read_stream(answer(request, stream), stream), keep_alive)
        return True

    async def _read_stream(
        self, answer: Coroutine[Any, Any, Response], stream: BodyStream
    ) -> Response:
        """A stream route's answer. If it answers before the body has ended, what still comes
        is read no further than a refused request's (``LINGER_BYTES``, ``LINGER_S``): a sender
        cannot make lrun read on without end."""
        response = await _reading(answer, stream)
        if self._stream is stream and not stream.ended:
            self._stream = None
            self._refusal = (response.status, None)
            self._phase, self.since = _LINGER, time.monotonic()
        return response

    def _pause_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _request(self, body: bytes) -> Request:
        url = httptools.parse_url(self._url) if self._url else None
        query = url.query.decode("latin-1") if url is not None and url.query else ""
        return Request(
            method=self._parser.get_method().decode("latin-1"),
            path=url.path.decode("latin-1") if url is not None else "",
            query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
            headers=self._headers,
            body=body,
            peer=self.peer,
            raw_query=query,
            raw_headers=() if self._raw is None else tuple(self._raw),
        )

    def _schedule(
        self, answer: Awaitable[Response], keep_alive: bool, linger: bool = False
    ) -> asyncio.Task[None]:
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._answer(answer, keep_alive, self._pending, linger))
        self._pending = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _answer(
        self,
        answer: Awaitable[Response],
        keep_alive: bool,
        previous: asyncio.Task[None] | None,
        linger: bool = False,
    ) -> None:
        response = await answer
        if previous is not None and not previous.done():
            await previous
        if response.stream is not None:
            transport = self._transport
            if transport is None or transport.is_closing():
                await _close(response.stream)
            else:
                await self._write_stream(transport, response, keep_alive)
            return
        self._write(response, keep_alive, linger)

    def _write(self, response: Response, keep_alive: bool, linger: bool = False) -> None:
        """Write a whole (not streamed) response."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(encode_response(response, keep_alive))
        if linger:
            # Closing now, with the client's body unread, would reset the connection before it
            # reads the answer: end our side, drop what still comes, close when it is done.
            self._phase, self.since = _LINGER, time.monotonic()
            transport.write_eof()
        elif not keep_alive:
            transport.close()

    async def _write_stream(
        self, transport: asyncio.Transport, response: Response, keep_alive: bool
    ) -> None:
        """Write a streamed body as it is produced, waiting while the client reads slowly; a
        client that goes away ends it (its producer is closed)."""
        pieces = response.stream
        assert pieces is not None
        transport.write(encode_head(response, keep_alive))
        try:
            async for data in pieces:
                if self._transport is None:
                    return
                if data:
                    transport.write(chunk(data))
                if self._drained is not None:
                    await self._drained
            if self._transport is None:
                return
            transport.write(LAST_CHUNK)
        except Exception:
            log.exception("a streamed response failed")
            transport.abort()  # the client must not take a cut body for a whole one
            return
        finally:
            await _close(pieces)
        if not keep_alive:
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # the client is done sending: close (after what we still write)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class _Feed(list[bytes]):
    """Where the parser puts a streamed body's pieces: straight into its stream."""

    def __init__(self, stream: BodyStream) -> None:
        super().__init__()
        self._stream = stream

    def append(self, piece: bytes) -> None:
        self._stream.append(piece)


async def _close(pieces: AsyncIterable[bytes]) -> None:
    """End a streamed body's producer (an async generator runs its ``finally`` now)."""
    close = getattr(pieces, "aclose", None)
    if close is not None:
        await close()


_readers: set[asyncio.Task[Response]] = set()


async def _reading(answer: Coroutine[Any, Any, Response], stream: BodyStream) -> Response:
    """A stream route's answer; what its body still brings once it has answered is dropped.
    A client that goes away does not cancel it: it learns so from its stream (``BodyAborted``)
    and may have to settle what it was doing."""
    reader = asyncio.get_running_loop().create_task(answer)
    _readers.add(reader)
    reader.add_done_callback(_readers.discard)
    reader.add_done_callback(lambda _: stream.discard())
    return await asyncio.shield(reader)


class _Resumed:
    """A handler's coroutine that was run until it first waited (``waiting_for``: what it
    yielded then, the future it waits for): awaiting this goes on from there, as a task that had
    run it from the start would, cancellation included."""

    __slots__ = ("_coro", "_waiting_for")

    def __init__(self, coro: Coroutine[Any, Any, Response], waiting_for: Any) -> None:
        self._coro = coro
        self._waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, Response]:
        coro, value = self._coro, self._waiting_for
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, thrown into the handler where it waits
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


_REASONS = {
    408: "the request did not arrive in time",
    414: "the request target is too long",
    431: "the request's headers are too large or too many",
    400: "the request is not valid HTTP/1.1",
    429: "too many large requests (code uploads) at once; retry when one has been answered",
}


def _refusal_response(status: int) -> Response:
    body = json.dumps({"message": _REASONS.get(status, _reason(status))}).encode()
    return Response(status, body, {"Content-Type": "application/json"})


async def _static(response: Response) -> Response:
    return response


class Server:
    """A listening HTTP server and its open connections."""

    def __init__(self, server: asyncio.Server, connections: set[_Protocol]) -> None:
        self._server = server
        self._connections = connections

    @property
    def port(self) -> int:
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop_listening(self) -> None:
        """Take no new connections; open ones carry on."""
        self._server.close()

    async def close(self) -> None:
        """Stop listening and close every connection, long-polls included."""
        self._server.close()
        for connection in list(self._connections):
            connection.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the transports finish closing


async def serve(
    router: Dispatcher,
    host: str,
    port: int,
    limits: Limits | None = None,
    connections: Connections | None = None,
) -> Server:
    """Start serving ``router`` on ``host:port`` (port 0 picks a free one), held to ``limits``
    or to those of ``connections``, a registry shared with other servers."""
    loop = asyncio.get_running_loop()
    registry = connections if connections is not None else Connections(limits or Limits())
    local: set[_Protocol] = set()
    server = await loop.create_server(
        lambda: _Protocol(router, local, registry), host, port, reuse_address=True
    )
    return Server(server, local)
