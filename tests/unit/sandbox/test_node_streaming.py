"""The Node.js runtime client's response streaming (``awslambda.streamifyResponse``,
``awslambda.HttpResponseStream.from``), without Docker: the client runs as a host process against
lrun's own Runtime API on loopback, so what it sends is read exactly as a container's would be.

The handlers are written as AWS's documentation writes them (Lambda developer guide,
"Response streaming for Lambda functions", and the RIC's ``HttpResponseStream.js``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.http_server import serve
from orchestrator.sandbox.environment import Answer, Delivery, Environment, Outcome
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.response_stream import ResponseStream
from orchestrator.sandbox.runtime_api import RuntimeApi
from tests.fakes import run

REPO = Path(__file__).resolve().parents[3]
INDEX = REPO / "runtimes" / "nodejs" / "runtime" / "index.mjs"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="`node` is not on PATH")
ARN = "arn:aws:lambda:us-east-1:000000000000:function:streamer"

HANDLERS = """
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const words = awslambda.streamifyResponse(async (event, responseStream, context) => {
  for (const word of event.words) {
    responseStream.write(word);
    await sleep(event.pause);
  }
  responseStream.end();
});
export const http = awslambda.streamifyResponse(async (event, responseStream) => {
  const metadata = { statusCode: 201, headers: { 'Content-Type': 'text/html' }, cookies: ['a=b'] };
  responseStream = awslambda.HttpResponseStream.from(responseStream, metadata);
  responseStream.write('<p>Hello');
  responseStream.end(' world</p>');
});
export const midway = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('text/plain');
  responseStream.write('partial');
  await sleep(10);
  throw new TypeError('broke midway');
});
export const plain = awslambda.streamifyResponse((event, responseStream) => {
  responseStream.write('not async');
});
export const buffered = async (event) => ({ whole: true });
"""


@dataclass
class Runtime:
    api: RuntimeApi
    env: Environment
    process: asyncio.subprocess.Process
    output: Path

    async def invoke(
        self, event: object, read: bool = True
    ) -> tuple[ResponseStream | None, asyncio.Future[Outcome], list[tuple[float, bytes]]]:
        """Deliver ``event``; return the stream (read as it came, with each chunk's arrival
        time since the delivery), and the outcome."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Outcome] = loop.create_future()
        request = InvokeRequest(json.dumps(event).encode(), ARN).with_request_id()
        seen: list[tuple[float, bytes]] = []
        started: asyncio.Future[ResponseStream] = loop.create_future()

        def on_stream(stream: ResponseStream) -> None:
            if read:
                stream.attach()
            started.set_result(stream)

        delivery = Delivery(request, int(time.time() * 1000) + 30_000, outcome, on_stream=on_stream)
        handed = time.monotonic()
        await asyncio.wait_for(self.env.ready.wait(), 10)
        self.env.deliver(delivery)
        done = asyncio.ensure_future(asyncio.shield(outcome))
        await asyncio.wait({started, done}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            return None, outcome, seen
        stream = started.result()
        if read:
            async for data in stream.chunks():
                seen.append((time.monotonic() - handed, data))
        await asyncio.wait_for(outcome, 10)
        return stream, outcome, seen


@contextlib.asynccontextmanager
async def node_runtime(tmp_path: Path, handler: str) -> AsyncIterator[Runtime]:
    task = tmp_path / "task"
    task.mkdir(exist_ok=True)
    (task / "app.mjs").write_text(HANDLERS)
    api = RuntimeApi()
    env = Environment(id="n" * 32, function="streamer", memory_mb=128)
    env.started_at = time.monotonic()
    api.register("127.0.0.1", env)
    server = await serve(api.router, "127.0.0.1", 0, connections=api.connections)
    output = tmp_path / "output.log"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.port}",
        "_HANDLER": f"app.{handler}",
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_LAMBDA_FUNCTION_NAME": "streamer",
    }
    with output.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            str(NODE), str(INDEX), env=environment, stdout=sink, stderr=sink
        )
    try:
        yield Runtime(api, env, process, output)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await server.close()


def test_chunks_reach_the_reader_as_the_handler_writes_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "words") as rt:
            event = {"words": ["one ", "two ", "three"], "pause": 300}
            stream, outcome, seen = await rt.invoke(event)
            assert stream is not None and stream.content_type == "application/octet-stream"
            assert b"".join(data for _, data in seen) == b"one two three"
            # The handler sleeps 300 ms after each write: the first chunk came long before
            # the last was written, and the invocation ended only after it.
            assert seen[0][1] == b"one ", seen
            assert seen[-1][0] - seen[0][0] > 0.45, seen
            answer = outcome.result()
            assert isinstance(answer, Answer) and answer.error_type is None
            # The next invocation runs on the same runtime.
            _, again, seen = await rt.invoke({"words": ["x"], "pause": 0})
            assert [data for _, data in seen] == [b"x"]

    run(scenario(), 30)


def test_http_response_stream_sends_the_prelude_before_the_body(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "http") as rt:
            stream, outcome, seen = await rt.invoke({})
            assert stream is not None
            assert stream.content_type == "application/vnd.awslambda.http-integration-response"
            body = b"".join(data for _, data in seen)
            prelude, nuls, rest = body.partition(b"\0" * 8)
            assert json.loads(prelude) == {
                "statusCode": 201,
                "headers": {"Content-Type": "text/html"},
                "cookies": ["a=b"],
            }
            assert rest == b"<p>Hello world</p>"

    run(scenario(), 30)


def test_an_error_midway_is_sent_in_the_trailers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "midway") as rt:
            stream, outcome, seen = await rt.invoke({})
            assert stream is not None and stream.content_type == "text/plain"
            assert b"".join(data for _, data in seen) == b"partial"
            answer = outcome.result()
            assert isinstance(answer, Answer) and answer.error_type == "TypeError"
            error = json.loads(answer.body)
            assert (error["errorType"], error["errorMessage"]) == ("TypeError", "broke midway")
            assert "Invoke Error" in rt.output.read_text()  # logged as the RIC logs it

    run(scenario(), 30)


def test_a_streaming_handler_that_is_not_async_fails_as_in_the_ric(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "plain") as rt:
            stream, outcome, seen = await rt.invoke({})
            answer = outcome.result()
            assert isinstance(answer, Answer) and answer.error_type == "string"
            assert json.loads(answer.body)["errorMessage"] == (
                "Streaming does not support non-async handlers."
            )

    run(scenario(), 30)


def test_a_streaming_answer_without_a_reader_is_kept_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "words") as rt:
            stream, outcome, _ = await rt.invoke({"words": ["a", "b"], "pause": 0}, read=False)
            answer = outcome.result()
            assert isinstance(answer, Answer) and answer.body == b"ab"

    run(scenario(), 30)


def test_a_buffered_handler_is_not_streamed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with node_runtime(tmp_path, "buffered") as rt:
            stream, outcome, _ = await rt.invoke({})
            assert stream is None
            answer = outcome.result()
            assert isinstance(answer, Answer) and json.loads(answer.body) == {"whole": True}

    run(scenario(), 30)
