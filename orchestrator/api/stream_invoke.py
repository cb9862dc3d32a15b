"""``InvokeWithResponseStream``: a synchronous invocation whose answer reaches the caller as it
is produced, framed as AWS frames it (``event_stream``): a ``PayloadChunk`` event for each piece
of the function's response, then one ``InvokeComplete`` event saying how it ended.

A function that streams (``Lambda-Runtime-Function-Response-Mode: streaming``: Node.js's
``awslambda.streamifyResponse``, a custom runtime) has each chunk passed on the moment its
runtime sends it; one that answers whole (any other runtime) gives one chunk. Errors found
before the stream starts (no such function, a throttle, a bad request) are plain error
responses, as for ``Invoke``; once it has started, an error ends it in ``InvokeComplete``'s
``ErrorCode`` (the error type: the runtime's, or Lambda's own such as ``Sandbox.Timedout``) and
``ErrorDetails`` (the error's body).

A caller that goes away ends only its own stream: the invocation runs to its end, its response
read and dropped, as on Lambda.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

from orchestrator.api.event_stream import invoke_complete, payload_chunk
from orchestrator.api.lambda_api import LambdaApi, checked, invoke_too_large, resolve
from orchestrator.aws import function_arn
from orchestrator.http_server import Request, Response
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest, check_payload
from orchestrator.sandbox.response_stream import STREAM_LIMIT, ResponseStream

OPERATION = "InvokeWithResponseStream"
PATH = "/2021-11-15/functions/{function}/response-streaming-invocations"
CONTENT_TYPE = "application/vnd.amazon.eventstream"


class StreamInvoke:
    """The ``InvokeWithResponseStream`` route of a Lambda API."""

    def __init__(self, api: LambdaApi, limit: int = STREAM_LIMIT) -> None:
        self._api = api
        self.limit = limit  # bytes a streamed response may have in all

    async def invoke(self, request: Request) -> Response:
        checked(OPERATION, request)
        api = self._api
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), OPERATION
        )
        version = api.service.route(name, qualifier)  # "Function not found" if none
        payload = check_payload(request.body)
        request_id = str(uuid.uuid4())
        if request.headers.get("x-amz-invocation-type") == "DryRun":
            return Response(204, b"", {"x-amzn-RequestId": request_id})
        context = request.headers.get("x-amz-client-context")
        invocation = InvokeRequest(
            payload,
            function_arn(name, qualifier),  # as invoked: qualified only if it was
            version,
            api.client_context(context) if context else None,
            request.headers.get("x-amzn-trace-id"),
            request_id,
        )
        tail = request.headers.get("x-amz-log-type") == "Tail"
        run = _Run(self.limit)
        await api.service.edits_seen(name)
        started = api.service.start(
            name, invocation, run.on_answer, settle=tail, on_stream=run.on_stream
        )
        started.add_done_callback(run.on_end)
        try:
            opened = await asyncio.shield(run.first)
        except asyncio.CancelledError:
            run.abandon()  # the caller went away before the answer began
            raise
        headers = {
            "Content-Type": CONTENT_TYPE,
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": version,
        }
        return Response(200, b"", headers, stream=_Events(run, opened, started, tail))


class _Run:
    """One streamed invocation as its caller waits for it: the answer's start (a stream, or a
    whole answer), then its outcome."""

    def __init__(self, limit: int) -> None:
        loop = asyncio.get_running_loop()
        self.first: asyncio.Future[ResponseStream | Outcome] = loop.create_future()
        self.outcome: asyncio.Future[Outcome] = loop.create_future()
        self.stream: ResponseStream | None = None
        self._limit = limit
        self._abandoned = False

    def on_stream(self, stream: ResponseStream) -> None:
        self.stream = stream
        stream.attach(self._limit)
        if self._abandoned:
            stream.detach()
        elif not self.first.done():
            self.first.set_result(stream)

    def on_answer(self, outcome: Outcome) -> None:
        _settle(self.outcome, outcome)
        _settle(self.first, outcome)

    def on_end(self, done: asyncio.Future[InvocationResult]) -> None:
        error = None if done.cancelled() else done.exception()
        for future in (self.first, self.outcome):
            if not future.done():
                if error is not None:
                    future.set_exception(error)
                else:
                    future.cancel()
        for future in (self.first, self.outcome):  # retrieved: a caller may have gone
            if future.done() and not future.cancelled():
                future.exception()

    def abandon(self) -> None:
        self._abandoned = True
        if self.stream is not None:
            self.stream.detach()


class _Events:
    """The response body: the invocation's events, as it produces them. Closing it early (the
    caller went away) leaves the invocation's stream discarding."""

    def __init__(
        self,
        run: _Run,
        opened: ResponseStream | Outcome,
        result: asyncio.Future[InvocationResult],
        tail: bool,
    ) -> None:
        self._run = run
        self._events = _events(run, opened, result, tail)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()  # type: ignore[attr-defined]
        self._run.abandon()


async def _events(
    run: _Run,
    opened: ResponseStream | Outcome,
    result: asyncio.Future[InvocationResult],
    tail: bool,
) -> AsyncIterator[bytes]:
    if isinstance(opened, ResponseStream):
        async for data in opened.chunks():
            yield payload_chunk(data)
        outcome = await asyncio.shield(run.outcome)
    else:
        outcome = opened
        if isinstance(outcome, Answer) and outcome.error_type is None and outcome.body:
            yield payload_chunk(outcome.body)
    complete: dict[str, Any] = {}
    if isinstance(outcome, Answer):
        if outcome.error_type is not None:
            complete = {"error_code": outcome.error_type, "error_details": _text(outcome.body)}
    else:
        complete = {"error_code": outcome.error_type, "error_details": _text(outcome.payload())}
    if tail:
        log = (await asyncio.shield(result)).log_tail()
        complete["log_result"] = base64.b64encode(log.encode()).decode()
    yield invoke_complete(**complete)


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)


def add_stream_invoke_routes(api: LambdaApi, limit: int = STREAM_LIMIT) -> StreamInvoke:
    streams = StreamInvoke(api, limit)
    api.router.add("POST", PATH, streams.invoke, invoke_too_large)
    return streams
