"""A small HTTP/1.1 server on asyncio and httptools: a route table and request/response values.

Both of lrun's HTTP faces (the Runtime API the containers call and the Invoke API clients call)
sit on this. It exists instead of a framework because the warm path is two loopback exchanges and
every microsecond of per-request overhead shows in the latency figures (DESIGN D5); it handles
keep-alive, pipelined requests answered in order, ``Expect: 100-continue`` and long-polls whose
client goes away (the handler task is cancelled).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qsl, unquote

import httptools


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # as sent: percent-encoded; route parameters are decoded once, by the router
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    peer: str  # the client's IP address
    params: Mapping[str, str] = field(default_factory=dict)  # from the route pattern


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]
ErrorMapper = Callable[[Exception], Response]


class Dispatcher(Protocol):
    """What a server hands each request to: a ``Router``, or something in front of one."""

    async def dispatch(self, request: Request) -> Response: ...


class Router:
    """Routes ``METHOD /path/{param}`` patterns to handlers; first match wins."""

    def __init__(self, on_error: ErrorMapper) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._on_error = on_error

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and path parameters for a request, or None when no route fits."""
        for route_method, regex, handler in self._routes:
            if route_method == method:
                found = regex.match(path)
                if found:
                    return handler, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    async def dispatch(self, request: Request) -> Response:
        found = self.match(request.method, request.path)
        if found is None:
            return Response(404, b'{"message":"no route"}')
        handler, params = found
        try:
            return await handler(_with_params(request, params))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one mapping for every route: errors become responses
            return self._on_error(exc)


def _with_params(request: Request, params: dict[str, str]) -> Request:
    return Request(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        request.peer,
        params,
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def encode_response(response: Response, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    lines.extend(f"{k}: {v}" for k, v in response.headers.items())
    lines.append(f"Content-Length: {len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class _Protocol(asyncio.Protocol):
    """One connection: parse requests, run their handlers, write answers in request order."""

    def __init__(self, router: Dispatcher, connections: set[_Protocol]) -> None:
        self._router = router
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._pending: asyncio.Task[None] | None = None  # the last request's task, for ordering
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None
        for task in self._tasks:
            task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close_with(400)
        except httptools.HttpParserError:
            self._close_with(400)

    def _close_with(self, status: int) -> None:
        if self._transport is not None:
            self._transport.write(encode_response(Response(status), keep_alive=False))
            self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        query = url.query.decode("latin-1") if url.query else ""
        request = Request(
            method=self._parser.get_method().decode("latin-1"),
            path=url.path.decode("latin-1"),
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=self._headers,
            body=b"".join(self._body),
            peer=self._peer,
        )
        keep_alive = self._parser.should_keep_alive()
        task = asyncio.get_running_loop().create_task(
            self._answer(request, keep_alive, self._pending)
        )
        self._pending = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, request: Request, keep_alive: bool, previous: asyncio.Task[None] | None
    ) -> None:
        response = await self._router.dispatch(request)
        if previous is not None and not previous.done():
            await previous
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(encode_response(response, keep_alive))
        if not keep_alive:
            transport.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


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


async def serve(router: Dispatcher, host: str, port: int) -> Server:
    """Start serving ``router`` on ``host:port`` (port 0 picks a free one)."""
    loop = asyncio.get_running_loop()
    connections: set[_Protocol] = set()
    server = await loop.create_server(
        lambda: _Protocol(router, connections), host, port, reuse_address=True
    )
    return Server(server, connections)
