"""The Lambda Runtime API, served by lrun itself to every environment (DESIGN D2).

Containers reach it at the host's address on their network (``AWS_LAMBDA_RUNTIME_API``). An
environment is told apart by the connection's peer address: each container has its own IP and
no capability to forge another's, so one environment can never fetch or answer another's
invocation (P2), and no agent is needed inside images (P1). Nothing here calls the container
engine, so a warm invocation makes no engine call (P4).

Where the engine hides containers' addresses behind NAT (engine.Demux.LISTENER), each
environment gets a listener of its own (``open_door``), which it reaches under a host name made
for it alone (an /etc/hosts entry in its container). Every runtime client sends that name in the
Host header of each request, as HTTP/1.1 requires; the listener answers only requests that carry
it, and speaks for its environment whatever the peer address. A neighbour that finds the port
(ports can be scanned) does not know the name (128 random bits), so P2 holds there too. A path
prefix in ``AWS_LAMBDA_RUNTIME_API`` would carry such a secret as well, but not every client
keeps one: awslambdaric posts init errors with ``http.client.HTTPConnection(address)``, which
takes ``host:port/prefix`` for a bad port, and lrun's Node.js and Ruby clients split the address
at its colon into host and port.

A runtime is a client lrun does not trust: its bodies are bounded as Lambda bounds them (6 MB
and a little framing), its connections are few and closed when its environment ends, and a call
out of its phase (``/init/error`` once init is over) is refused as Lambda refuses it, changing
nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import replace

from orchestrator.errors import RequestTooLarge
from orchestrator.http_server import (
    Connections,
    Limits,
    Request,
    Response,
    Router,
    Server,
    StreamHandler,
    serve,
)
from orchestrator.http_stream import BodyAborted, BodyStream
from orchestrator.sandbox.environment import Answer, Environment, Retired, error_answer
from orchestrator.sandbox.invocation import (
    MAX_RESPONSE_PAYLOAD,
    PlatformError,
    response_too_large,
)
from orchestrator.sandbox.response_stream import (
    ERROR_BODY_TRAILER,
    ERROR_TYPE_TRAILER,
    MODE_HEADER,
    TRUNCATED,
    ResponseStream,
)

log = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"
# Where functions reach the @connections API of lrun's WebSocket APIs (served by the gateway).
WEBSOCKET_PREFIX = "/lrun/websocket"
_OK = Response(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
# How long a request from an address not yet known waits for its environment to be registered:
# a fast runtime can call /next before the engine has told us the container's address.
_REGISTRATION_WAIT_S = 10.0
# A runtime needs one or two connections (a long-poll on /next, an answer); a few more leave room
# for a runtime's own client pool, and none more: each one is a file descriptor of lrun's.
MAX_CONNECTIONS_PER_ENVIRONMENT = 8
LIMITS = Limits(
    max_body=MAX_RESPONSE_PAYLOAD,
    max_per_peer=MAX_CONNECTIONS_PER_ENVIRONMENT,
    max_connections=8192,
    # A runtime keeps its connection while its handler runs, up to Lambda's 900 s timeout;
    # closing it earlier would break a client that reuses it for the answer.
    idle_timeout_s=960.0,
)


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, body, {"Content-Type": "application/json"})


# One environment's own listener (listener mode): the per-environment caps are the listener's.
DOOR_LIMITS = replace(LIMITS, max_connections=MAX_CONNECTIONS_PER_ENVIRONMENT, max_per_peer=None)


class _Door:
    """One environment's own listener: requests naming its host name, for its environment."""

    def __init__(self, router: Router, key: str) -> None:
        self._router = router
        self._key = key
        self.names: frozenset[str] = frozenset()  # "name" and "name:port", once listening

    def _theirs(self, request: Request) -> bool:
        return request.headers.get("host", "").lower() in self.names

    async def dispatch(self, request: Request) -> Response:
        if not self._theirs(request):
            return _error(403, "InvalidStateTransition", "unknown execution environment")
        return await self._router.dispatch(replace(request, peer=self._key))

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        if not self._theirs(request):
            return _error(403, "InvalidStateTransition", "unknown execution environment")
        return await self._router.dispatch_too_large(replace(request, peer=self._key), size, limit)

    def body_limit(self, method: str, path: str) -> int | None:
        return self._router.body_limit(method, path)

    def stream_route(self, method: str, path: str) -> StreamHandler | None:
        """A streamed /response reaches its route through the door too, for its environment."""
        answer = self._router.stream_route(method, path)
        if answer is None:
            return None

        async def through(request: Request, body: BodyStream) -> Response:
            if not self._theirs(request):
                return _error(403, "InvalidStateTransition", "unknown execution environment")
            return await answer(replace(request, peer=self._key), body)

        return through


class RuntimeApi:
    """Environments by address (or by listener), and the routes their runtimes call."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self._by_ip: dict[str, Environment] = {}
        self._doors: dict[str, Server] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._arrivals: dict[str, asyncio.Future[Environment]] = {}
        # Shared by every server of this API (one per network), so the caps hold across them.
        self.connections = Connections(limits)
        self.router = Router(self._unexpected)
        add = self.router.add
        add("GET", f"{PREFIX}/invocation/next", self._next)
        invocation = f"{PREFIX}/invocation/{{request_id}}"
        add(
            "POST",
            f"{invocation}/response",
            self._response,
            self._response_too_large,
            stream=self._chunked_response,
        )
        add("POST", f"{invocation}/error", self._error, self._response_too_large)
        add("POST", f"{PREFIX}/init/error", self._init_error)

    async def open_door(self, key: str, host: str, name: str) -> int:
        """A listener on ``host`` for the environment registered as ``key``, answering requests
        whose Host is ``name`` (with or without the port); returns its port."""
        door = _Door(self.router, key)
        server = await serve(door, host, 0, connections=Connections(DOOR_LIMITS))
        door.names = frozenset({name.lower(), f"{name.lower()}:{server.port}"})
        self._doors[key] = server
        return server.port

    async def close_doors(self) -> None:
        for key in list(self._doors):
            self._close_door(key)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _close_door(self, key: str) -> None:
        server = self._doors.pop(key, None)
        if server is not None:
            task = asyncio.get_running_loop().create_task(server.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def register(self, ip: str, env: Environment) -> None:
        self._by_ip[ip] = env
        arrival = self._arrivals.pop(ip, None)
        if arrival is not None and not arrival.done():
            arrival.set_result(env)

    def knows(self, ip: str) -> bool:
        """Whether ``ip`` is an environment's address (a caller lrun started)."""
        return ip in self._by_ip

    def unregister(self, ip: str, env: Environment) -> None:
        """Forget ``env``'s address, unless a newer environment holds it already (the engine
        hands a dead container's address to the next one at once)."""
        if self._by_ip.get(ip) is env:
            del self._by_ip[ip]

    def close_connections(self, ip: str) -> None:
        """Close the connections from a stopped environment's address, unless a newer
        environment holds it. A container that dies loses its sockets anyway; one the engine
        failed to kill keeps them, and must not keep lrun's descriptors with them."""
        if ip not in self._by_ip:
            self.connections.close_peer(ip)
            self._close_door(ip)

    async def _environment(self, ip: str) -> Environment | None:
        env = self._by_ip.get(ip)
        if env is not None:
            return env
        arrival = self._arrivals.get(ip)
        if arrival is None:
            arrival = self._arrivals[ip] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(arrival), _REGISTRATION_WAIT_S)
        except TimeoutError:
            return None  # the arrival stays for other waiters; registration removes it

    @staticmethod
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, RequestTooLarge):
            return _too_large()
        log.exception("Runtime API failure", exc_info=exc)
        return _error(500, "ServiceException", str(exc))

    async def _next(self, request: Request) -> Response:
        env = await self._environment(request.peer)
        if env is None:
            return _error(403, "InvalidStateTransition", "unknown execution environment")
        if env.init_error is not None:
            return _out_of_phase(env, "Ready")
        try:
            delivery = await env.next_invocation(time.monotonic())
        except Retired:
            # Lambda's contract: a 500 from /next means "exit now"; the runtime ends itself,
            # which is faster than having the engine kill it.
            return _error(500, "Runtime.ExitError", "the execution environment is shutting down")
        delivery.delivered_at = time.monotonic()
        req = delivery.request
        headers = {
            "Lambda-Runtime-Aws-Request-Id": req.request_id,
            "Lambda-Runtime-Deadline-Ms": str(delivery.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": req.invoked_arn,
            "Lambda-Runtime-Trace-Id": delivery.trace_id or req.trace_id or "",
            "Content-Type": "application/json",
        }
        if req.client_context:
            headers["Lambda-Runtime-Client-Context"] = req.client_context
        return Response(200, req.payload, {k: v for k, v in headers.items() if v})

    async def _response(self, request: Request) -> Response:
        env = self._by_ip.get(request.peer)
        request_id = request.params["request_id"]
        if env is None or env.current is None or env.current.request.request_id != request_id:
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
        content_type = request.headers.get("content-type", "application/json")
        mode = request.headers.get(MODE_HEADER)
        if mode is not None:  # streamed, but all of it in one piece (it had a length)
            return await self._streamed(env, request_id, mode, content_type, _Whole(request.body))
        env.answer(request_id, Answer(request.body, None, content_type))
        return _OK

    async def _chunked_response(self, request: Request, body: BodyStream) -> Response:
        """A /response whose body is chunked: streamed if its mode header says so (each chunk
        passed on as it comes), else a buffered answer that happens to be sent in chunks."""
        env = self._by_ip.get(request.peer)
        request_id = request.params["request_id"]
        if env is None or env.current is None or env.current.request.request_id != request_id:
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
        content_type = request.headers.get("content-type", "application/json")
        mode = request.headers.get(MODE_HEADER)
        if mode is not None:
            return await self._streamed(env, request_id, mode, content_type, body)
        try:
            whole = await body.read_all(MAX_RESPONSE_PAYLOAD)
        except BodyAborted:
            return _truncated()
        if whole is None:
            return await self._response_too_large(request, None)
        if not env.answer(request_id, Answer(whole, None, content_type)):
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
        return _OK

    async def _streamed(
        self,
        env: Environment,
        request_id: str,
        mode: str,
        content_type: str,
        body: BodyStream | _Whole,
    ) -> Response:
        """A streamed answer (Lambda-Runtime-Function-Response-Mode: streaming), passed on
        chunk by chunk; an error the runtime met midway comes in its trailers."""
        if mode != "streaming":
            # Lambda's words to the runtime; the invocation fails (RIE invocationresponse.go).
            error = PlatformError("Runtime.InvalidResponseModeHeader", "")
            env.answer(request_id, Answer(error.payload(), error.error_type))
            return _error(400, "InvalidFunctionResponseMode", "Invalid function response mode")
        stream = ResponseStream(content_type)
        if not env.begin_stream(request_id, stream):
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
        try:
            while piece := await body.read():
                if not await stream.put(piece):
                    too_large = response_too_large(None, stream.limit)
                    _end(env, request_id, stream, too_large.error_type, too_large.payload())
                    return _too_large()
        except BodyAborted:  # the runtime's connection ended before its response did
            detail = {"errorType": TRUNCATED, "errorMessage": "HTTP request detected as truncated"}
            _end(env, request_id, stream, TRUNCATED, json.dumps(detail).encode())
            return _truncated()
        error_type = body.trailers.get(ERROR_TYPE_TRAILER) or None
        error_body = _decoded(body.trailers.get(ERROR_BODY_TRAILER, ""))
        _end(env, request_id, stream, error_type, error_body)
        return _OK

    async def _error(self, request: Request) -> Response:
        env = self._by_ip.get(request.peer)
        request_id = request.params["request_id"]
        error_type = request.headers.get("lambda-runtime-function-error-type")
        if env is None or not env.answer(request_id, error_answer(request.body, error_type)):
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id!r}")
        return _OK

    async def _init_error(self, request: Request) -> Response:
        env = await self._environment(request.peer)  # init can fail before registration
        if env is None:
            return _error(403, "InvalidStateTransition", "unknown execution environment")
        if env.init_duration_ms is not None or env.init_error is not None:
            # Init is over once the runtime asked for work (or failed already): an error now
            # would fail every later invocation without running it. Lambda refuses it too.
            return _out_of_phase(env, "InitError")
        error_type = request.headers.get("lambda-runtime-function-error-type")
        env.fail_init(error_answer(request.body, error_type))
        return _OK

    async def _response_too_large(self, request: Request, size: int | None) -> Response:
        """A body over Lambda's limit, refused while it was read: the invocation fails with
        Lambda's error, and the runtime is told as Lambda tells it."""
        env = self._by_ip.get(request.peer)
        request_id = request.params["request_id"]
        if env is not None and env.current is not None:
            if env.current.request.request_id == request_id:
                too_large = response_too_large(size)
                env.answer(request_id, Answer(too_large.payload(), too_large.error_type))
        return _too_large()


class _Whole:
    """A body that came whole, read as a stream of one piece."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data
        self.trailers: dict[str, str] = {}

    async def read(self) -> bytes:
        data, self._data = self._data or b"", None
        return data


def _end(
    env: Environment,
    request_id: str,
    stream: ResponseStream,
    error_type: str | None,
    error_body: bytes,
) -> None:
    """End a streamed answer and settle its invocation: with what was kept when nobody read
    it as it came (its error's body if it failed), else with nothing more to give."""
    stream.end(error_type, error_body)
    stream_error = stream.error_type  # the first end counts (a timeout may have come first)
    if stream_error is not None:
        body, content_type = stream.error_body, "application/json"
    else:
        body, content_type = stream.kept(), stream.content_type
    env.answer(request_id, Answer(body, stream_error, content_type, stream))


def _decoded(trailer: str) -> bytes:
    """The error body a runtime sends in its trailer (base64, as the Runtime API asks; taken
    as it is when it is not)."""
    try:
        return base64.b64decode(trailer, validate=True)
    except (binascii.Error, ValueError):
        return trailer.encode("utf-8", "replace")


def _truncated() -> Response:
    return _error(400, "TruncatedHTTPRequest", "HTTP request detected as truncated")


def _too_large() -> Response:
    return _error(
        413,
        "RequestEntityTooLarge",
        f"Exceeded maximum allowed payload size ({MAX_RESPONSE_PAYLOAD} bytes).",
    )


def _out_of_phase(env: Environment, target: str) -> Response:
    """Lambda's answer to a call its runtime's state does not allow; nothing changes."""
    if env.init_error is not None:
        current = "InitError"
    elif env.current is not None and env.current.delivered_at is not None:
        current = "Running"
    else:
        current = "Ready"
    return _error(
        403,
        "InvalidStateTransition",
        f"State transition from {current} to {target} failed for runtime. "
        "Error: State transition is not allowed",
    )
