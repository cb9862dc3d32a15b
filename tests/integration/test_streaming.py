"""Response streaming on the real engine: functions in real containers stream their answers
through lrun's Runtime API to InvokeWithResponseStream's events, each chunk timed as it
arrives. Node.js streams with ``awslambda.streamifyResponse`` (lrun's runtime client), a custom
runtime (``provided``) with a bash bootstrap that speaks the Runtime API's streaming by hand,
and a Python function (awslambdaric, which answers whole) gives one chunk.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from orchestrator import manifest
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.stream_invoke import add_stream_invoke_routes
from orchestrator.http_server import Request, Response
from orchestrator.pool import Pool
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.service import Service, ServiceSettings
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, run

NODE = FUNCTIONS / "node"
PY = FUNCTIONS / "python"
CUSTOM = FUNCTIONS / "provided_streaming"
MANIFEST = f"""
functions:
  words:  {{runtime: nodejs22.x, handler: streaming.words, code: {NODE}}}
  page:   {{runtime: nodejs22.x, handler: streaming.page, code: {NODE}}}
  midway: {{runtime: nodejs22.x, handler: streaming.midway, code: {NODE}}}
  flood:  {{runtime: nodejs22.x, handler: streaming.flood, code: {NODE}, memory: 512}}
  tardy:  {{runtime: nodejs22.x, handler: streaming.words, code: {NODE}, timeout: 1}}
  custom: {{runtime: provided, handler: unused.handler, code: {CUSTOM}}}
  count:  {{runtime: python3.13, handler: probe.count, code: {PY}}}
"""
PATH = "/2021-11-15/functions/{}/response-streaming-invocations"
Event = tuple[float, str, bytes]  # seconds since the call, event type, payload


@contextlib.asynccontextmanager
async def api_on(backend: DockerBackend, path: Path, limit: int) -> AsyncIterator[LambdaApi]:
    async with hosted_invoker(backend, OWNER) as invoker:
        service = Service(backend, invoker, Pool(16), ServiceSettings(300.0, 0.2))
        service.load(manifest.load(path))
        api = LambdaApi(service)
        add_stream_invoke_routes(api, limit)
        try:
            yield api
        finally:
            await service.close(grace=5)


async def stream(
    api: LambdaApi, function: str, event: object, headers: dict[str, str] | None = None
) -> tuple[Response, list[Event]]:
    body = json.dumps(event).encode()
    started = time.monotonic()
    request = Request("POST", PATH.format(function), {}, headers or {}, body, "127.0.0.1")
    response = await api.router.dispatch(request)
    events: list[Event] = []
    if response.stream is not None:
        buffer = EventStreamBuffer()
        async for data in response.stream:
            buffer.add_data(data)
            for message in buffer:
                kind = message.headers[":event-type"]
                events.append((time.monotonic() - started, kind, message.payload))
    return response, events


def chunks(events: list[Event]) -> list[Event]:
    return [e for e in events if e[1] == "PayloadChunk"]


def completion(events: list[Event]) -> dict[str, Any]:
    assert events and events[-1][1] == "InvokeComplete", events
    done: dict[str, Any] = json.loads(events[-1][2])
    return done


@pytest.fixture
def path(write_manifest: Any) -> Path:
    return write_manifest(MANIFEST)


def test_node_chunks_arrive_while_the_function_is_still_writing(backend, path) -> None:
    async def scenario() -> list[Event]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            await stream(api, "words", {"words": ["warm"]})  # a cold start is not timed
            event = {"words": ["one", "two", "three", "four"], "pause": 500}
            _, events = await stream(api, "words", event)
            return events

    events = run(scenario())
    assert b"".join(p for _, _, p in chunks(events)) == b"onetwothreefour"
    assert completion(events) == {}
    arrived = [at for at, _, _ in chunks(events)]
    ended = events[-1][0]
    # The function pauses 0.5 s after each write (2 s in all): its first chunk reached the
    # client about 1.5 s before it had finished writing, and the chunks came apart.
    assert ended - arrived[0] > 1.2, events
    assert len(arrived) >= 3 and arrived[-1] - arrived[0] > 1.0, events


def test_node_http_response_stream_puts_the_prelude_first(backend, path) -> None:
    async def scenario() -> list[Event]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            return (await stream(api, "page", {"pause": 300}))[1]

    events = run(scenario())
    body = b"".join(p for _, _, p in chunks(events))
    prelude, _, rest = body.partition(b"\0" * 8)
    assert json.loads(prelude) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/html", "X-Streamed": "yes"},
        "cookies": ["flavour=oat"],
    }
    assert rest == b"<p>first</p><p>last</p>"
    assert completion(events) == {}


def test_node_error_midway_ends_the_stream_with_its_type(backend, path) -> None:
    async def scenario() -> list[Event]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            return (await stream(api, "midway", {}))[1]

    events = run(scenario())
    assert b"".join(p for _, _, p in chunks(events)) == b"partial"
    done = completion(events)
    assert done["ErrorCode"] == "RangeError"
    details = json.loads(done["ErrorDetails"])
    assert (details["errorType"], details["errorMessage"]) == ("RangeError", "gave up midway")


def test_a_timeout_midway_ends_the_stream_and_the_environment(backend, path) -> None:
    async def scenario() -> list[Event]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            return (await stream(api, "tardy", {"words": ["a", "b", "c"], "pause": 700}))[1]

    events = run(scenario())
    assert chunks(events)[0][2] == b"a"
    assert completion(events)["ErrorCode"] == "Sandbox.Timedout"


def test_the_streaming_limit_cuts_the_response_as_lambda_does(backend, path) -> None:
    limit = 5 * 1024 * 1024

    async def scenario() -> list[Event]:
        async with api_on(backend, path, limit) as api:
            return (await stream(api, "flood", {"mb": 8}))[1]

    events = run(scenario())
    assert sum(len(p) for _, _, p in chunks(events)) == limit
    assert completion(events)["ErrorCode"] == "Function.ResponseSizeTooLarge"


def test_a_custom_runtime_streams_chunk_by_chunk(backend, path) -> None:
    async def scenario() -> list[list[Event]]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            await stream(api, "custom", {"count": 1, "pause": 0})  # cold start, untimed
            ok = (await stream(api, "custom", {"count": 3, "pause": 0.5}))[1]
            failed = (await stream(api, "custom", {"count": 2, "pause": 0, "fail": True}))[1]
            return [ok, failed]

    ok, failed = run(scenario())
    assert b"".join(p for _, _, p in chunks(ok)) == b"chunk-1;chunk-2;chunk-3;"
    assert completion(ok) == {}
    arrived = [at for at, _, _ in chunks(ok)]
    assert ok[-1][0] - arrived[0] > 1.0, ok  # the first came while two pauses were ahead
    assert b"".join(p for _, _, p in chunks(failed)) == b"chunk-1;chunk-2;"
    done = completion(failed)
    assert done["ErrorCode"] == "Custom.Failure"
    assert json.loads(done["ErrorDetails"]) == {
        "errorType": "Custom.Failure",
        "errorMessage": "failed after 2 chunks",
    }


def test_python_answers_whole_in_one_chunk_and_tail_shows_the_log(backend, path) -> None:
    async def scenario() -> list[Event]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            return (await stream(api, "count", {}, {"x-amz-log-type": "Tail"}))[1]

    events = run(scenario())
    [(_, _, payload)] = chunks(events)
    assert json.loads(payload)["invocations"] == 1
    log = base64.b64decode(completion(events)["LogResult"]).decode()
    assert "REPORT RequestId:" in log and "Time To First Byte" not in log  # not streamed


def test_invoke_of_a_streaming_function_gives_it_whole_and_reports_first_byte(
    backend, path
) -> None:
    async def scenario() -> tuple[Response, InvocationResult]:
        async with api_on(backend, path, 200 * 1024 * 1024) as api:
            body = json.dumps({"words": ["x", "y"], "pause": 300}).encode()
            invoke = Request(
                "POST",
                "/2015-03-31/functions/words/invocations",
                {},
                {"x-lrun-log": "full"},
                body,
                "127.0.0.1",
            )
            response = await api.router.dispatch(invoke)
            request = InvokeRequest(body, "arn").with_request_id()
            return response, await api.service.invoke("words", request)

    response, result = run(scenario())
    assert (response.status, response.body) == (200, b"xy")
    assert response.headers["Content-Type"] == "text/plain"
    assert result.report.time_to_first_byte_ms is not None
    assert result.report.time_to_first_byte_ms < result.report.duration_ms - 250
    assert f"\tTime To First Byte: {result.report.time_to_first_byte_ms:.2f} ms" in result.log
    assert "wrote x" in result.log and "wrote y" in result.log
