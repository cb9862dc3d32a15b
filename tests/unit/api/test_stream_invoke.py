"""InvokeWithResponseStream on the fake backend: the route's events as a client reads them, for
functions that stream and functions that answer whole, and the invocation behind them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from botocore.eventstream import EventStreamBuffer

from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.stream_invoke import add_stream_invoke_routes
from orchestrator.http_server import Request, Response
from orchestrator.http_stream import HIGH_WATER
from orchestrator.sandbox.invocation import InvocationResult
from tests.fakes import FakeContext, Handler, Served, Streamed, eventually, fake_service, run

T = TypeVar("T")
PATH = "/2021-11-15/functions/{}/response-streaming-invocations"
INVOKE = "/2015-03-31/functions/{}/invocations"
RELEASE = "release"  # the event a test's streaming handler waits on, set by the test


def write_manifest(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# handlers come from the fake registry\n")
    fn = "runtime: python3.13, code: ./code"
    path = tmp_path / "lrun.yaml"
    path.write_text(
        "functions:\n"
        f"  streamer: {{{fn}, handler: app.streamer}}\n"
        f"  waiter: {{{fn}, handler: app.waiter}}\n"
        f"  whole: {{{fn}, handler: app.whole}}\n"
        f"  fail: {{{fn}, handler: app.fail}}\n"
        f"  midway: {{{fn}, handler: app.midway}}\n"
        f"  slow: {{{fn}, handler: app.slow, timeout: 1}}\n"
        f"  flood: {{{fn}, handler: app.flood}}\n"
        f"  big: {{{fn}, handler: app.big}}\n"
    )
    return path


def handlers(release: asyncio.Event, log: list[str]) -> dict[str, Handler]:
    def streamer(event: Any, context: FakeContext) -> Streamed:
        context.log("streaming")
        return Streamed([b"one", 0.2, b"two", 0.2, b"three"], "text/plain")

    def waiter(event: Any, context: FakeContext) -> Streamed:
        return Streamed([b"before", release, b"after"], "text/plain")

    def whole(event: Any, context: FakeContext) -> dict[str, Any]:
        return {"got": event}

    def fail(event: Any, context: FakeContext) -> None:
        raise ValueError("boom")

    def midway(event: Any, context: FakeContext) -> Streamed:
        error = json.dumps({"errorType": "Error", "errorMessage": "midway"}).encode()
        return Streamed([b"partial"], "text/plain", "Error", error)

    def slow(event: Any, context: FakeContext) -> Streamed:
        return Streamed([b"tick", 5.0, b"never"], "text/plain")

    def flood(event: Any, context: FakeContext) -> Streamed:
        log.append("flooding")
        return Streamed([b"x" * HIGH_WATER] * 2 + [b"end"], "application/octet-stream")

    def big(event: Any, context: FakeContext) -> Streamed:
        return Streamed([b"x" * HIGH_WATER] * 4, "application/octet-stream")

    return {
        "app.streamer": streamer,
        "app.waiter": waiter,
        "app.whole": whole,
        "app.fail": fail,
        "app.midway": midway,
        "app.slow": slow,
        "app.flood": flood,
        "app.big": big,
    }


class Client:
    def __init__(self, api: LambdaApi, served: Served) -> None:
        self.api = api
        self.served = served

    async def call(
        self, method: str, path: str, body: bytes = b"{}", headers: Mapping[str, str] | None = None
    ) -> Response:
        request = Request(method, path, {}, dict(headers or {}), body, "127.0.0.1")
        return await self.api.router.dispatch(request)

    async def stream(
        self, function: str, headers: Mapping[str, str] | None = None
    ) -> tuple[Response, list[tuple[float, str, bytes]]]:
        """The response and its events as (seconds since the call, event type, payload)."""
        started = time.monotonic()
        response = await self.call("POST", PATH.format(function), headers=headers)
        events: list[tuple[float, str, bytes]] = []
        if response.stream is not None:
            buffer = EventStreamBuffer()
            async for data in response.stream:
                buffer.add_data(data)
                for message in buffer:
                    at = time.monotonic() - started
                    events.append((at, message.headers[":event-type"], message.payload))
        return response, events


def scenario(
    tmp_path: Path, test: Callable[[Client, asyncio.Event, list[str]], Awaitable[T]], **options: Any
) -> T:
    path = write_manifest(tmp_path)

    async def main() -> T:
        release = asyncio.Event()
        log: list[str] = []
        async with fake_service(path, handlers(release, log), **options) as served:
            api = LambdaApi(served.service)
            add_stream_invoke_routes(api, limit=3 * HIGH_WATER)
            return await test(Client(api, served), release, log)

    return run(main(), 20.0)


def payloads(events: list[tuple[float, str, bytes]]) -> list[bytes]:
    return [payload for _, kind, payload in events if kind == "PayloadChunk"]


def complete(events: list[tuple[float, str, bytes]]) -> dict[str, Any]:
    assert events[-1][1] == "InvokeComplete"
    assert [kind for _, kind, _ in events].count("InvokeComplete") == 1
    result: dict[str, Any] = json.loads(events[-1][2])
    return result


def test_a_streaming_functions_chunks_arrive_as_it_writes_them(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        response, events = await client.stream("streamer")
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/vnd.amazon.eventstream"
        assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
        assert payloads(events) == [b"one", b"two", b"three"]
        assert complete(events) == {}
        at = [when for when, kind, _ in events if kind == "PayloadChunk"]
        # The handler pauses 0.2 s between its writes: each chunk came at its own time.
        assert at[1] - at[0] > 0.15 and at[2] - at[1] > 0.15, at

    scenario(tmp_path, test)


def test_the_first_chunk_is_read_while_the_function_is_still_running(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        response = await client.call("POST", PATH.format("waiter"))
        assert response.stream is not None
        pieces = aiter(response.stream)
        buffer = EventStreamBuffer()
        buffer.add_data(await asyncio.wait_for(anext(pieces), 2.0))
        [first] = list(buffer)
        assert first.payload == b"before"  # the function waits on the test: still running
        release.set()
        rest = [data async for data in pieces]
        buffer.add_data(b"".join(rest))
        assert [m.payload for m in buffer][0] == b"after"

    scenario(tmp_path, test)


def test_a_function_that_answers_whole_gives_one_chunk(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        _, events = await client.stream("whole")
        assert payloads(events) == [b'{"got": {}}']
        assert complete(events) == {}

    scenario(tmp_path, test)


def test_a_function_error_ends_the_stream_with_its_type_and_body(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        response, events = await client.stream("fail")
        assert response.status == 200
        assert payloads(events) == []
        done = complete(events)
        assert done["ErrorCode"] == "ValueError"
        assert json.loads(done["ErrorDetails"])["errorMessage"] == "boom"

    scenario(tmp_path, test)


def test_an_error_midway_comes_after_what_was_streamed(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        _, events = await client.stream("midway")
        assert payloads(events) == [b"partial"]
        done = complete(events)
        assert done["ErrorCode"] == "Error"
        assert json.loads(done["ErrorDetails"]) == {"errorType": "Error", "errorMessage": "midway"}

    scenario(tmp_path, test)


def test_a_timeout_midway_ends_the_stream_with_lambdas_error(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        _, events = await client.stream("slow")
        assert payloads(events) == [b"tick"]
        done = complete(events)
        assert done["ErrorCode"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in done["ErrorDetails"]

    scenario(tmp_path, test)


def test_a_stream_over_its_limit_is_cut_with_response_size_too_large(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        _, events = await client.stream("big")
        assert sum(len(p) for p in payloads(events)) == 3 * HIGH_WATER  # the limit, no more
        assert complete(events)["ErrorCode"] == "Function.ResponseSizeTooLarge"

    scenario(tmp_path, test)


def test_log_type_tail_gives_the_log_with_the_time_to_first_byte(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        _, events = await client.stream("streamer", {"x-amz-log-type": "Tail"})
        text = base64.b64decode(complete(events)["LogResult"]).decode()
        assert "streaming" in text
        report = [line for line in text.splitlines() if line.startswith("REPORT")][0]
        assert "\tTime To First Byte: " in report

    scenario(tmp_path, test)


def test_dry_run_and_a_missing_function_answer_as_invoke_does(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        dry = await client.call(
            "POST", PATH.format("whole"), headers={"x-amz-invocation-type": "DryRun"}
        )
        assert (dry.status, dry.stream) == (204, None)
        missing = await client.call("POST", PATH.format("nope"))
        assert missing.status == 404
        assert missing.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
        event = await client.call(
            "POST", PATH.format("whole"), headers={"x-amz-invocation-type": "Event"}
        )
        assert (event.status, event.headers["x-amzn-ErrorType"]) == (400, "ValidationException")
        assert (
            "Member must satisfy enum value set: [DryRun, RequestResponse]"
            in json.loads(event.body)["message"]
        )

    scenario(tmp_path, test)


def test_invoke_gives_a_streaming_functions_answer_whole(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        results: list[InvocationResult] = []
        client.served.service._on_log = lambda name, result: results.append(result)
        response = await client.call("POST", INVOKE.format("streamer"))
        assert (response.status, response.body) == (200, b"onetwothree")
        assert response.headers["Content-Type"] == "text/plain"
        await eventually(lambda: results, what="the invocation's record")
        assert results[0].report.time_to_first_byte_ms is not None
        assert results[0].report.duration_ms > 350  # until the stream ended

    scenario(tmp_path, test)


def test_a_caller_that_goes_away_leaves_the_invocation_to_finish(tmp_path: Path) -> None:
    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        response = await client.call("POST", PATH.format("flood"))
        assert response.stream is not None
        pieces = aiter(response.stream)
        await anext(pieces)
        await response.stream.aclose()  # type: ignore[attr-defined]  # the caller is gone
        # Its runtime is not held: it writes the rest, is done, and the environment is reused.
        await eventually(
            lambda: client.served.service.environments()[0].state == "idle", 5.0, "idle again"
        )
        again, events = await client.stream("flood")
        assert again.status == 200 and complete(events) == {}
        assert sum(len(p) for p in payloads(events)) == 2 * HIGH_WATER + 3
        assert log == ["flooding", "flooding"]
        assert len(client.served.backend.live()) == 1  # the same environment both times

    scenario(tmp_path, test)


def test_streams_pass_through_the_listener_mode_too(tmp_path: Path) -> None:
    """Behind NAT (Podman) each environment has a listener of its own: a streamed /response
    through it still reaches the caller chunk by chunk, and only for its own environment."""

    async def test(client: Client, release: asyncio.Event, log: list[str]) -> None:
        response = await client.call("POST", PATH.format("waiter"))
        assert response.stream is not None
        pieces = aiter(response.stream)
        buffer = EventStreamBuffer()
        buffer.add_data(await asyncio.wait_for(anext(pieces), 2.0))
        assert [m.payload for m in buffer] == [b"before"]  # the function still waits
        release.set()
        buffer.add_data(b"".join([data async for data in pieces]))
        assert [m.headers[":event-type"] for m in buffer] == ["PayloadChunk", "InvokeComplete"]

    scenario(tmp_path, test, nat=True)
