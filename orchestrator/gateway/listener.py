"""One API's listener: a request in, API Gateway's handling, the function's answer out.

Each request is routed (``routes``), mapped to its event (``payload_v2`` or ``payload_v1``) and
invoked through the service, as the Lambda API's Invoke is: an environment from the function's
pool (a new one when all are busy, so requests run concurrently, never queued on one), its
reserved concurrency's throttle answered as API Gateway's 429. The answer is awaited for the
route's integration timeout (30 s by default, REST 29 s); past it the client gets API Gateway's
timeout answer while the invocation runs on to its end, as on AWS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.aws import function_arn
from orchestrator.errors import LrunError, TooManyRequests
from orchestrator.gateway import payload_v1, payload_v2
from orchestrator.gateway.answers import Failure, answer
from orchestrator.gateway.authorizers import Authorizers
from orchestrator.gateway.cors import is_preflight, preflight, with_cors
from orchestrator.gateway.exchange import (
    GatewayRequest,
    GatewayResponse,
    MalformedResponse,
    Target,
)
from orchestrator.gateway.routes import RouteMatch, RouteTable
from orchestrator.http_server import Request, Response
from orchestrator.manifest.apis import ApiSpec
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD, InvocationResult, InvokeRequest
from orchestrator.service import Service

log = logging.getLogger(__name__)

# API Gateway takes 10 MB, but no body over Lambda's 6 MB invocation payload can reach a
# function (its event is larger still): refused while it is read, with the same 413 either way,
# so a client holds at most 6 MB of lrun's memory per connection, not 10.
MAX_REQUEST_BODY = MAX_SYNC_PAYLOAD
# Hop-by-hop headers a function's answer may not set: the listener frames the response itself.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"})

HostCheck = Callable[[str | None], str | None]  # a Host header -> None, or why it is refused
Listener = Callable[[str], None]


@dataclass(frozen=True)
class Served:
    """An API as one listener serves it; replaced whole when the manifest is reloaded."""

    spec: ApiSpec
    table: RouteTable
    flavour: payload_v1.Flavour
    port: int
    authorizers: Authorizers


class ApiListener:
    """The dispatcher behind one API's port (``orchestrator.http_server``)."""

    raw_headers = True  # events carry every header as sent

    def __init__(
        self, spec: ApiSpec, service: Service, check_host: HostCheck, on_event: Listener
    ) -> None:
        self._service = service
        self._check_host = check_host
        self._on_event = on_event
        self.served = self._served(spec, 0)

    def configure(self, spec: ApiSpec, port: int) -> None:
        """Serve ``spec`` from now on (its authorizers' caches start empty)."""
        self.served = self._served(spec, port)

    def _served(self, spec: ApiSpec, port: int) -> Served:
        rest = spec.type == "rest"
        flavour = payload_v1.Flavour(rest, spec.binary_media_types)
        authorizers = Authorizers(spec, self._invoke_event, self._on_event)
        return Served(spec, RouteTable(spec.routes, rest), flavour, port, authorizers)

    def body_limit(self, method: str, path: str) -> int | None:
        return None

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        rest = self.served.spec.type == "rest"
        return _response(answer(Failure.TOO_LARGE, rest), request, str(uuid.uuid4()), rest)

    async def dispatch(self, request: Request) -> Response:
        served = self.served  # one API for the whole request, whatever a reload does meanwhile
        rest = served.spec.type == "rest"
        refusal = self._check_host(request.headers.get("host"))
        if refusal is not None:
            return Response(403, json.dumps({"message": refusal}).encode(), _JSON)
        random = os.urandom(28)  # the request id's and the trace id's, in one system call
        request_id = str(uuid.UUID(bytes=random[:16], version=4))
        cors = served.spec.cors
        if cors is not None and is_preflight(request.method, request.headers):
            return _response(preflight(cors, request.headers), request, request_id, rest)
        stage_path = _without_stage(request.path, served.spec.base_path)
        found = None if stage_path is None else served.table.match(request.method, stage_path)
        if found is None or stage_path is None:
            outcome = answer(Failure.NOT_FOUND, rest)
        else:
            trace = request.headers.get("x-amzn-trace-id") or trace_root(random[16:])
            outcome = await self._handle(served, request, found, stage_path, request_id, trace)
        if cors is not None:
            outcome = with_cors(cors, request.headers.get("origin"), outcome)
        return _response(outcome, request, request_id, rest)

    async def _handle(
        self,
        served: Served,
        request: Request,
        found: RouteMatch,
        stage_path: str,
        request_id: str,
        trace: str,
    ) -> GatewayResponse:
        spec, route = served.spec, found.route
        rest = spec.type == "rest"
        exchange = GatewayRequest(
            request.method,
            request.path,
            request.raw_query,
            forwarded_headers(request, served.port, trace),
            request.body,
            request.peer,
            int(time.time() * 1000),
            request_id,
        )
        target = Target(
            str(route.key),
            route.key.path if not route.key.is_default else stage_path,
            found.parameters,
            spec.stage,
            spec.api_id,
            request.headers.get("host", ""),
            None,
            stage_path,
        )
        if route.authorizer is not None:
            verdict = await served.authorizers.authorize(route, exchange, target)
            if isinstance(verdict, GatewayResponse):
                return verdict
            target = dataclasses.replace(target, authorizer=verdict.context)
        if route.payload == "2.0":
            event = payload_v2.encode_event(exchange, target)
        else:
            event = payload_v1.encode_event(exchange, target, served.flavour)
        if len(event) > MAX_SYNC_PAYLOAD:
            return answer(Failure.TOO_LARGE, rest)
        try:
            version = self._service.route(route.function, route.qualifier)
            invocation = InvokeRequest(
                event,
                function_arn(route.function, route.qualifier),
                version,
                None,
                trace,
                request_id,
            )
            outcome = await self._invoke(route.function, invocation, route.timeout_ms / 1000)
        except TooManyRequests:
            return answer(Failure.THROTTLED, rest)
        except TimeoutError:
            return answer(Failure.TIMEOUT, rest)
        except LrunError as exc:
            self._on_event(f"API {spec.name}: {route.key} could not invoke {route.function}: {exc}")
            return answer(Failure.FUNCTION_ERROR, rest)
        if not isinstance(outcome, Answer) or outcome.error_type is not None:
            return answer(Failure.FUNCTION_ERROR, rest)
        try:
            if route.payload == "2.0":
                return payload_v2.response(outcome.body)
            return payload_v1.response(outcome.body, served.flavour, request.headers.get("accept"))
        except MalformedResponse as exc:
            self._on_event(
                f"API {spec.name}: {route.key}: {route.function}'s answer is not an API Gateway "
                f"response ({exc}); see the payload {route.payload} response format"
            )
            return answer(Failure.FUNCTION_ERROR, rest)

    async def _invoke_event(self, name: str, event: bytes, timeout: float) -> Outcome:
        """An authorizer's invocation: ``event`` to function ``name``."""
        trace = trace_root()
        invocation = InvokeRequest(
            event, function_arn(name), "$LATEST", None, trace, str(uuid.uuid4())
        )
        return await self._invoke(name, invocation, timeout)

    async def _invoke(self, name: str, invocation: InvokeRequest, timeout: float) -> Outcome:
        """The function's answer, as soon as it has one (its log is completed behind it)."""
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

        def expire() -> None:
            if not answered.done():
                answered.set_exception(TimeoutError())

        await self._service.edits_seen(name)
        self._service.start(name, invocation, on_answer, settle=False).add_done_callback(on_end)
        # The invocation is the service's: timing out (or the client leaving, which cancels this
        # wait) ends only the wait. One timer, no extra task, as the warm path wants.
        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await answered
        finally:
            timer.cancel()


_JSON = {"Content-Type": "application/json"}


def _without_stage(path: str, base: str) -> str | None:
    """The path below the stage's prefix, or None when the request is not for this stage."""
    if not base:
        return path
    if path == base:
        return "/"
    if path.startswith(base) and path[len(base)] == "/":
        return path[len(base) :]
    return None


def forwarded_headers(request: Request, port: int, trace: str) -> tuple[tuple[str, str], ...]:
    """The request's headers as the function sees them: UTF-8 text, and those API Gateway and
    function URLs add (the client's address appended to X-Forwarded-For, the port and protocol,
    a trace id)."""
    forwarded_for = request.peer
    headers = []
    for name, value in request.raw_headers:
        if not value.isascii():
            value = value.encode("latin-1").decode("utf-8", "replace")
        lower = name.lower()
        if lower in _FORWARDED:
            if lower == "x-forwarded-for":
                forwarded_for = f"{value}, {request.peer}"
            continue
        if lower != "x-amzn-trace-id":
            headers.append((name, value))
    headers.append(("X-Amzn-Trace-Id", trace))
    headers.append(("X-Forwarded-For", forwarded_for))
    headers.append(("X-Forwarded-Port", str(port)))
    headers.append(("X-Forwarded-Proto", "http"))
    return tuple(headers)


def trace_root(random: bytes | None = None) -> str:
    return f"Root=1-{int(time.time()):08x}-{(random or os.urandom(12)).hex()}"


def _response(outcome: GatewayResponse, request: Request, request_id: str, rest: bool) -> Response:
    headers = tuple((n, v) for n, v in outcome.headers if n.lower() not in _FRAMING)
    headers += (("x-amzn-RequestId" if rest else "Apigw-Requestid", request_id),)
    body = b"" if request.method == "HEAD" else outcome.body
    return Response(outcome.status, body, {}, headers)
