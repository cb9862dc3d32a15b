"""One function URL's listener: an HTTP request in, Lambda's function URL handling, the answer out.

As Lambda documents function URLs (developer guide, "Invoking Lambda function URLs", "Control
access to Lambda function URLs", "Response streaming"): the request becomes a payload 2.0 event
(``orchestrator.gateway.payload_v2``: ``routeKey`` and ``stage`` ``$default``, ``apiId`` and
``domainPrefix`` the URL's id, ``accountId`` ``anonymous`` unless the request was signed);
``AuthType: AWS_IAM`` requires a Signature Version 4 signature (lrun's key pair), ``NONE``
anyone, provided the function's policy lets everyone call its URL (a URL the manifest declares
needs no policy, as SAM's ``FunctionUrlConfig`` adds it); CORS is answered from the URL's own
configuration, preflights included, without invoking the function.

In ``BUFFERED`` mode the function's answer is a payload 2.0 response; in ``RESPONSE_STREAM`` mode
it is streamed to the client as the function writes it: a response in
``application/vnd.awslambda.http-integration-response`` starts with its JSON prelude (status,
headers, cookies) and 8 NUL bytes, any other is the body itself with status 200. A function
error is Lambda's ``502 Internal Server Error``; a throttle ``429``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.api import sigv4
from orchestrator.aws import ACCOUNT_ID, function_arn
from orchestrator.errors import LrunError, TooManyRequests
from orchestrator.gateway import payload_v2
from orchestrator.gateway.exchange import (
    GatewayRequest,
    GatewayResponse,
    MalformedResponse,
    Target,
    response_headers,
    status_code,
)
from orchestrator.gateway.listener import forwarded_headers, trace_root
from orchestrator.http_server import Request, Response
from orchestrator.manifest.apis import CorsSpec
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD, InvocationResult, InvokeRequest
from orchestrator.sandbox.response_stream import STREAM_LIMIT, ResponseStream
from orchestrator.service import Service

log = logging.getLogger(__name__)

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
DELIMITER = b"\0" * 8
MAX_PRELUDE = 64 * 1024  # bytes of a streamed response's JSON prelude
FORBIDDEN = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"})

HostCheck = Callable[[str | None], str | None]  # a Host header -> None, or why it is refused
# Whether the function's resource-based policy lets anyone call its URL (AuthType NONE).
PolicyCheck = Callable[[str], bool]


@dataclass(frozen=True)
class ServedUrl:
    """A function URL as its listener serves it; replaced whole when its configuration changes."""

    function: str
    qualifier: str | None  # an alias, or None
    auth_type: str  # NONE | AWS_IAM
    invoke_mode: str  # BUFFERED | RESPONSE_STREAM
    cors: CorsSpec | None
    url_id: str
    needs_policy: bool  # made through the API: NONE needs a policy letting anyone in


@dataclass(frozen=True)
class UrlAccess:
    """What the listeners check requests against."""

    check_host: HostCheck
    policy_allows: PolicyCheck
    credentials: Callable[[], sigv4.Credentials | None]  # lrun's key pair, for AWS_IAM


class UrlListener:
    """The dispatcher behind one function URL's port (``orchestrator.http_server``)."""

    raw_headers = True  # the event carries every header as sent

    def __init__(
        self,
        served: ServedUrl,
        service: Service,
        access: UrlAccess,
        on_event: Callable[[str], None],
        stream_limit: int = STREAM_LIMIT,
    ) -> None:
        self.served = served
        self._service = service
        self._access = access
        self._on_event = on_event
        self._stream_limit = stream_limit
        self.port = 0

    def body_limit(self, method: str, path: str) -> int | None:
        return None

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        message = f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction"
        return _error(413, "RequestEntityTooLargeException", message + " operation")

    async def dispatch(self, request: Request) -> Response:
        served = self.served  # one configuration for the whole request, whatever changes
        refusal = self._access.check_host(request.headers.get("host"))
        if refusal is not None:
            return _error(403, "AccessDeniedException", refusal)
        origin = request.headers.get("origin")
        cors = served.cors
        if (
            cors is not None
            and request.method == "OPTIONS"
            and origin is not None
            and "access-control-request-method" in request.headers
        ):
            return _preflight(cors, origin, request.headers)
        identity = self._authorize(served, request)
        if isinstance(identity, Response):
            return identity
        request_id = str(uuid.uuid4())
        try:
            response = await self._invoke(served, request, identity, request_id)
        except TooManyRequests:
            response = _error(429, "TooManyRequestsException", "Rate Exceeded.")
        except LrunError as exc:  # "Function not found": its function or alias is gone
            self._on_event(f"function URL of {served.function}: {exc}")
            response = _error(403, "AccessDeniedException", FORBIDDEN)
        return _finished(response, cors, origin, request_id, request.method)

    def _authorize(self, served: ServedUrl, request: Request) -> dict[str, Any] | None | Response:
        """The caller's IAM identity (AWS_IAM), None (NONE), or the refusal."""
        if served.auth_type == "NONE":
            if served.needs_policy and not self._access.policy_allows(served.function):
                return _error(403, "AccessDeniedException", FORBIDDEN)
            return None
        keys = self._access.credentials()
        signed = sigv4.SignedRequest(
            request.method, request.path, request.query, request.headers, request.body
        )
        try:
            if keys is None:
                raise LrunError("no key pair to check signatures against")
            used = sigv4.verify(signed, lambda key: keys if key == keys.access_key_id else None)
        except LrunError:
            return _error(403, "AccessDeniedException", FORBIDDEN)
        return {
            "iam": {
                "accessKey": used.access_key_id,
                "accountId": ACCOUNT_ID,
                "callerId": f"AIDA{used.access_key_id[-16:]}",
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/lrun",
                "userId": f"AIDA{used.access_key_id[-16:]}",
            }
        }

    async def _invoke(
        self,
        served: ServedUrl,
        request: Request,
        identity: dict[str, Any] | None,
        request_id: str,
    ) -> Response:
        version = self._service.route(served.function, served.qualifier)
        trace = request.headers.get("x-amzn-trace-id") or trace_root()
        event = _event(served, request, identity, request_id, self.port, trace)
        if len(event) > MAX_SYNC_PAYLOAD:
            return await self.dispatch_too_large(request, len(event), MAX_SYNC_PAYLOAD)
        invocation = InvokeRequest(
            event,
            function_arn(served.function, served.qualifier),
            version,
            None,
            trace,
            request_id,
        )
        run = _Run(self._stream_limit if served.invoke_mode == "RESPONSE_STREAM" else None)
        await self._service.edits_seen(served.function)
        started = self._service.start(
            served.function,
            invocation,
            run.on_answer,
            settle=False,
            on_stream=run.on_stream if served.invoke_mode == "RESPONSE_STREAM" else None,
        )
        started.add_done_callback(run.on_end)
        try:
            first = await asyncio.shield(run.first)
        except asyncio.CancelledError:
            run.abandon()  # the client went away: the invocation runs on, its stream dropped
            raise
        if isinstance(first, ResponseStream):
            return await _streamed(first, run)
        if not isinstance(first, Answer) or first.error_type is not None:
            return _internal_error()
        if served.invoke_mode == "RESPONSE_STREAM":  # answered whole: passed on as it is
            return Response(200, first.body, {"Content-Type": first.content_type})
        try:
            return _http(payload_v2.response(first.body, quote_strings=True))
        except MalformedResponse as exc:
            self._on_event(
                f"function URL of {served.function}: its answer is not a function URL response "
                f"({exc}); see the payload 2.0 response format"
            )
            return _internal_error()


class _Run:
    """One invocation behind a request: the start of its answer (a stream or a whole answer)."""

    def __init__(self, stream_limit: int | None) -> None:
        loop = asyncio.get_running_loop()
        self.first: asyncio.Future[ResponseStream | Outcome] = loop.create_future()
        self.stream: ResponseStream | None = None
        self._limit = stream_limit or STREAM_LIMIT
        self._abandoned = False

    def on_stream(self, stream: ResponseStream) -> None:
        self.stream = stream
        stream.attach(self._limit)
        if self._abandoned:
            stream.detach()
        elif not self.first.done():
            self.first.set_result(stream)

    def on_answer(self, outcome: Outcome) -> None:
        if not self.first.done():
            self.first.set_result(outcome)

    def on_end(self, done: asyncio.Future[InvocationResult]) -> None:
        error = None if done.cancelled() else done.exception()
        if not self.first.done():
            if error is not None:
                self.first.set_exception(error)
            else:
                self.first.cancel()
        elif not self.first.cancelled():
            self.first.exception()  # retrieved: its caller may have gone

    def abandon(self) -> None:
        self._abandoned = True
        if self.stream is not None:
            self.stream.detach()


async def _streamed(stream: ResponseStream, run: _Run) -> Response:
    """The HTTP response of a streamed answer: its prelude's status and headers (or 200), then
    its body as it comes."""
    chunks = aiter(stream.chunks())
    status, head = 200, b""
    headers: list[tuple[str, str]] = [("Content-Type", stream.content_type)]
    cookies: list[str] = []
    if stream.content_type == HTTP_INTEGRATION:
        while DELIMITER not in head and len(head) <= MAX_PRELUDE:
            piece = await anext(chunks, None)
            if piece is None:
                break
            head += piece
        prelude, found, head = head.partition(DELIMITER)
        try:
            if not found:
                raise MalformedResponse("no prelude: the 8 NUL bytes after it never came")
            status, headers, cookies = _prelude(prelude)
        except MalformedResponse:
            run.abandon()
            return _internal_error()
    body = _Body(head, chunks, run)
    repeated = tuple(headers) + tuple(("Set-Cookie", c) for c in cookies)
    return Response(status, b"", {}, repeated, stream=body)


class _Body:
    """A streamed response's body; closing it early (the client went away) drops the rest."""

    def __init__(self, head: bytes, chunks: AsyncIterator[bytes], run: _Run) -> None:
        self._head = head
        self._chunks = chunks
        self._run = run

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        async for piece in self._chunks:
            yield piece

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()
        self._run.abandon()


def _prelude(text: bytes) -> tuple[int, list[tuple[str, str]], list[str]]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MalformedResponse(f"the prelude is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise MalformedResponse("the prelude is not an object")
    status = status_code(value.get("statusCode", 200))
    headers = response_headers(value.get("headers"), None, "application/octet-stream")
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponse("cookies must be a list of strings")
    return status, headers, cookies


def _event(
    served: ServedUrl,
    request: Request,
    identity: dict[str, Any] | None,
    request_id: str,
    port: int,
    trace: str,
) -> bytes:
    exchange = GatewayRequest(
        request.method,
        request.path,
        request.raw_query,
        forwarded_headers(request, port, trace),
        request.body,
        request.peer,
        int(time.time() * 1000),
        request_id,
    )
    host = request.headers.get("host", "")
    target = Target("$default", request.path, {}, "$default", served.url_id, host, identity)
    event = payload_v2.event(exchange, target)
    context = event["requestContext"]
    context["domainPrefix"] = served.url_id
    if identity is None:
        context["accountId"] = "anonymous"  # as Lambda sends it for AuthType NONE
    return json.dumps(event, separators=(",", ":")).encode()


def _http(answer: GatewayResponse) -> Response:
    headers = tuple((n, v) for n, v in answer.headers if n.lower() not in _FRAMING)
    return Response(answer.status, answer.body, {}, headers)


def _internal_error() -> Response:
    # Lambda's answer to a function error, a timeout or a response it cannot use: 502 with
    # this text (recorded on AWS: LocalStack's test_lambda_url_invocation_exception).
    return Response(502, b"Internal Server Error", {"Content-Type": "application/json"})


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"Message": message}).encode()
    return Response(
        status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    )


def _allowed_origin(cors: CorsSpec, origin: str) -> str | None:
    """The Access-Control-Allow-Origin for ``origin``, or None if it is not allowed."""
    if "*" in cors.allow_origins:
        return origin if cors.allow_credentials else "*"
    lowered = origin.lower()
    if any(lowered == allowed.lower() for allowed in cors.allow_origins):
        return origin
    return None


def _preflight(cors: CorsSpec, origin: str, headers: Mapping[str, str]) -> Response:
    """A CORS preflight, answered from the URL's configuration without invoking the function."""
    allowed = _allowed_origin(cors, origin)
    method = headers.get("access-control-request-method", "").upper()
    methods = {m.upper() for m in cors.allow_methods}
    if allowed is None or not ("*" in methods or method in methods):
        return Response(200, b"", {"Vary": "Origin"})
    answer = {"Access-Control-Allow-Origin": allowed, "Vary": "Origin"}
    answer["Access-Control-Allow-Methods"] = ", ".join(cors.allow_methods)
    requested = headers.get("access-control-request-headers", "").strip()
    if cors.allow_headers:
        answer["Access-Control-Allow-Headers"] = (
            requested if "*" in cors.allow_headers and requested else ", ".join(cors.allow_headers)
        )
    if cors.max_age is not None:
        answer["Access-Control-Max-Age"] = str(cors.max_age)
    if cors.allow_credentials:
        answer["Access-Control-Allow-Credentials"] = "true"
    return Response(200, b"", answer)


def _finished(
    response: Response, cors: CorsSpec | None, origin: str | None, request_id: str, method: str
) -> Response:
    """Every answer carries its request id; with CORS configured, the URL's CORS headers take
    the place of any the function sent."""
    headers = dict(response.headers)
    repeated = response.repeated
    if cors is not None:
        repeated = tuple((n, v) for n, v in repeated if not n.lower().startswith("access-control-"))
        headers = {n: v for n, v in headers.items() if not n.lower().startswith("access-control-")}
        allowed = None if origin is None else _allowed_origin(cors, origin)
        if allowed is not None:
            headers["Access-Control-Allow-Origin"] = allowed
            headers["Vary"] = "Origin"
            if cors.expose_headers:
                headers["Access-Control-Expose-Headers"] = ", ".join(cors.expose_headers)
            if cors.allow_credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
    headers["x-amzn-RequestId"] = request_id
    body = b"" if method == "HEAD" else response.body
    return Response(response.status, body, headers, repeated, stream=response.stream)
