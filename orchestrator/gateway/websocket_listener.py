"""One WebSocket API's listener: handshakes, ``$connect``, messages routed to functions,
``$disconnect``, and the ``@connections`` management API on the same port.

The HTTP server hands over a request that asks to upgrade (``upgrade``); it is checked as the
other front doors check requests (``Host``, then ``Origin``: a web page may open a WebSocket to
any address, so only pages from loopback origins or ``--cors-origin`` ones are let in), held to
the API's connection cap, and given to its ``$connect`` function, whose non-2xx answer (or
failure) refuses it with that status, as API Gateway does. Each message is routed by the API's
route selection expression (``$default`` when it yields no route key of the API, API Gateway's
``Forbidden`` message when there is no ``$default`` either) and invoked through the service,
concurrently, as the Lambda API's Invoke is. ``WebSocketHub`` keeps every API's open
connections for the management API (``websocket_management``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.http11 import Request as WsRequest

from orchestrator.aws import function_arn
from orchestrator.errors import LrunError, TooManyRequests
from orchestrator.gateway import websocket_events as events
from orchestrator.gateway.listener import HostCheck, Listener, forwarded_headers, trace_root
from orchestrator.gateway.websocket_connection import WebSocket, WebSocketLimits
from orchestrator.gateway.websocket_management import WebSocketHub, on_port, too_large
from orchestrator.http_server import Request, Response
from orchestrator.manifest.apis import (
    CONNECT_ROUTE,
    DEFAULT_ROUTE,
    DISCONNECT_ROUTE,
    ApiSpec,
    WebSocketRoute,
)
from orchestrator.manifest.route_selection import RouteSelection
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD, InvocationResult, InvokeRequest
from orchestrator.service import Service

log = logging.getLogger(__name__)

OriginCheck = Callable[[str | None], str | None]  # an Origin header -> None, or why refused
_JSON = {"Content-Type": "application/json"}


def origin_check(allowed: frozenset[str]) -> OriginCheck:
    """Browsers let any page open a WebSocket to any address and send its ``Origin``: a
    handshake with one is let in only from a loopback origin (a page served on this machine)
    or one allowed with ``--cors-origin``; clients that are not browsers send none."""

    def refusal(origin: str | None) -> str | None:
        if origin is None:
            return None
        lowered = origin.strip().rstrip("/").lower()
        if lowered in allowed:
            return None
        host = urlsplit(lowered).hostname or ""
        if host == "localhost" or host.endswith(".localhost") or _is_loopback(host):
            return None
        return (
            f"Cross-origin WebSocket from '{origin}' refused: lrun serve lets web pages connect "
            f"only from loopback origins or those allowed with --cors-origin (e.g. "
            f"--cors-origin {origin})"
        )

    return refusal


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebSocketListener:
    """The dispatcher behind one WebSocket API's port (``orchestrator.http_server``)."""

    raw_headers = True

    def __init__(
        self,
        spec: ApiSpec,
        service: Service,
        check_host: HostCheck,
        check_origin: OriginCheck,
        on_event: Listener,
        hub: WebSocketHub,
        limits: WebSocketLimits,
    ) -> None:
        self._service = service
        self._check_host = check_host
        self._check_origin = check_origin
        self._on_event = on_event
        self._hub = hub
        self.limits = limits
        self.connections: set[WebSocket] = set()  # opening and open
        self._tasks: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.port = 0
        self.spec = spec
        self._selection = RouteSelection.parse(spec.route_selection)

    def configure(self, spec: ApiSpec, port: int) -> None:
        self.spec, self.port = spec, port
        self._selection = RouteSelection.parse(spec.route_selection)

    @property
    def base_path(self) -> str:
        return f"/{self.spec.stage}"

    # plain HTTP on the port: the management API (websocket_management), else a hint
    def body_limit(self, method: str, path: str) -> int | None:
        return None

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        return too_large()  # only PostToConnection has a body

    async def dispatch(self, request: Request) -> Response:
        refusal = self._check_host(request.headers.get("host"))
        if refusal is not None:
            return Response(403, json.dumps({"message": refusal}).encode(), _JSON)
        return on_port(self.base_path, self.spec.api_id, self._hub, request)

    # the handshake
    def upgrade(self, request: Request, transport: asyncio.Transport, rest: bytes) -> None:
        now_ms = int(time.time() * 1000)
        info = events.Connection(
            events.new_id(),
            self.spec.api_id,
            self.spec.stage,
            request.headers.get("host", ""),
            request.peer,
            request.headers.get("user-agent"),
            now_ms,
        )
        ws = WebSocket(info, transport, self.limits, self._message, self._closed)
        transport.set_protocol(ws)
        self.connections.add(ws)
        if rest:
            ws.data_received(rest)
        self._spawn(self._handshake(ws, request))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _handshake(self, ws: WebSocket, request: Request) -> None:
        refusal = self._refusal(request)
        if refusal is not None:
            _refuse(ws, *refusal)
            return
        headers = Headers(request.raw_headers)
        target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        response = ws.protocol.accept(WsRequest(target, headers))
        if response.status_code != 101:
            ws.protocol.send_response(response)
            ws.refuse(b"".join(ws.protocol.data_to_send()))
            return
        connect = _route(self.spec, CONNECT_ROUTE)
        if connect is not None:
            request_id = events.new_id()
            sent = forwarded_headers(request, self.port, trace_root())
            event = events.connect_event(
                ws.info, sent, request.raw_query, request_id, ws.info.connected_at
            )
            outcome = await self._invoke(connect, event)
            status, extra = (500, ()) if outcome is None else events.connect_status(outcome.body)
            if not 200 <= status < 300:
                _refuse(ws, status, _REFUSALS.get(status, "Connection refused by $connect"))
                return
            for name, value in extra:
                if name.lower() == "sec-websocket-protocol":
                    try:
                        response.headers["Sec-WebSocket-Protocol"] = value
                    except InvalidHeader:
                        pass
        ws.protocol.send_response(response)
        ws.open(b"".join(ws.protocol.data_to_send()))
        if ws.is_open:  # the client may have left while $connect ran
            self._hub.open[ws.info.connection_id] = (ws, self.spec.name)

    def _refusal(self, request: Request) -> tuple[int, str] | None:
        if request.method != "GET":
            return 400, "A WebSocket handshake is a GET request"
        refusal = self._check_host(request.headers.get("host"))
        if refusal is None:
            refusal = self._check_origin(request.headers.get("origin"))
        if refusal is not None:
            return 403, refusal
        if request.path.rstrip("/") != self.base_path:
            return 403, f"Forbidden: connect to the stage's URL path {self.base_path}"
        if len(self.connections) > self.limits.max_connections:
            what = f"this API has {self.limits.max_connections} connections open"
            return 429, f"Too Many Requests: {what}; close one and retry"
        return None

    # messages
    def _message(self, ws: WebSocket, data: bytes | str) -> None:
        request_id = events.new_id()
        if ws.in_flight >= self.limits.max_in_flight:
            self._reply(ws, "Too Many Requests", request_id)
            return
        key = self._selection.evaluate(data)
        route = _route(self.spec, key) if key is not None else None
        if route is None or key in (CONNECT_ROUTE, DISCONNECT_ROUTE):
            route = _route(self.spec, DEFAULT_ROUTE)
        if route is None:
            self._reply(ws, "Forbidden", request_id)
            return
        now_ms = int(time.time() * 1000)
        event = events.message_event(ws.info, route.key, data, events.new_id(), request_id, now_ms)
        ws.in_flight += 1
        self._spawn(self._deliver(ws, route, event, request_id))

    async def _deliver(self, ws: WebSocket, route: WebSocketRoute, event: bytes, rid: str) -> None:
        try:
            outcome = await self._invoke(route, event)
        finally:
            ws.in_flight -= 1
        if outcome is None:
            self._reply(ws, "Internal server error", rid)
        elif route.route_response and (reply := events.route_response(outcome.body)) is not None:
            try:
                ws.send(reply)
            except Exception:  # the client is gone or not reading: nothing to tell it
                pass

    def _reply(self, ws: WebSocket, message: str, request_id: str) -> None:
        try:
            ws.send(events.error_message(message, ws.info.connection_id, request_id))
        except Exception:  # the client is gone or not reading: nothing to tell it
            pass

    # the end
    def _closed(self, ws: WebSocket) -> None:
        self.connections.discard(ws)
        opened = self._hub.open.pop(ws.info.connection_id, None) is not None
        disconnect = _route(self.spec, DISCONNECT_ROUTE)
        if opened and disconnect is not None:
            now_ms = int(time.time() * 1000)
            event = events.disconnect_event(
                ws.info, ws.close_code, ws.close_reason, events.new_id(), now_ms
            )
            self._spawn(self._invoke(disconnect, event))

    async def _sweep(self) -> None:
        """Close connections idle or open too long, as API Gateway does (1001, Going away)."""
        limits = self.limits
        interval = max(0.05, min(1.0, limits.idle_s / 4, limits.lifetime_s / 4))
        try:
            while self.connections:
                await asyncio.sleep(interval)
                now = time.monotonic()
                for ws in list(self.connections):
                    if not ws.is_open:
                        continue
                    if ws.in_flight:  # a message being handled: not idle
                        ws.last_active = now
                    if now - ws.opened > limits.lifetime_s or now - ws.last_active > limits.idle_s:
                        ws.close(1001, "Going away")
        finally:
            self._sweeper = None

    async def close(self) -> None:
        for ws in list(self.connections):
            ws.close(1001, "Going away")
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # invoking
    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _invoke(self, route: WebSocketRoute, event: bytes) -> Answer | None:
        """The function's answer, or None (reported) when it failed or could not run."""
        name, qualifier = route.function, route.qualifier
        what = f"API {self.spec.name}: {route.key} -> {name}"
        if len(event) > MAX_SYNC_PAYLOAD:
            self._on_event(f"{what}: the event is over Lambda's 6 MB payload limit")
            return None
        trace = trace_root()
        try:
            version = self._service.route(name, qualifier)
            invocation = InvokeRequest(
                event, function_arn(name, qualifier), version, None, trace, str(uuid.uuid4())
            )
            outcome = await self._answer(name, invocation, route.timeout_ms / 1000)
        except TooManyRequests:
            self._on_event(f"{what}: throttled (reserved concurrency or the host's limit)")
            return None
        except TimeoutError:
            self._on_event(f"{what}: no answer within {route.timeout_ms} ms")
            return None
        except LrunError as exc:
            self._on_event(f"{what}: could not invoke: {exc}")
            return None
        if not isinstance(outcome, Answer) or outcome.error_type is not None:
            return None
        return outcome

    async def _answer(self, name: str, invocation: InvokeRequest, timeout: float) -> Outcome:
        answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def on_answer(outcome: Outcome) -> None:
            if not answered.done():
                answered.set_result(outcome)

        def on_end(run: asyncio.Future[InvocationResult]) -> None:
            error = None if run.cancelled() else run.exception()
            if answered.done():
                if error is not None:
                    log.warning("invocation %s: %s", invocation.request_id, error)
            elif error is not None:
                answered.set_exception(error)
            else:
                answered.cancel()

        await self._service.edits_seen(name)
        self._service.start(name, invocation, on_answer, settle=False).add_done_callback(on_end)
        return await asyncio.wait_for(asyncio.shield(answered), timeout)


def _route(spec: ApiSpec, key: str) -> WebSocketRoute | None:
    for route in spec.websocket_routes:
        if route.key == key:
            return route
    return None


_REFUSALS = {403: "Forbidden", 401: "Unauthorized", 500: "Internal server error"}


def _refuse(ws: WebSocket, status: int, text: str) -> None:
    response = ws.protocol.reject(status, json.dumps({"message": text}))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    ws.protocol.send_response(response)
    ws.refuse(b"".join(ws.protocol.data_to_send()))
