"""Unit tests of the Runtime API's streamed answers (``Lambda-Runtime-Function-Response-Mode:
streaming``), driven through a real ``serve()`` on loopback as a streaming runtime sends them:
chunked, with trailers for an error met midway (Lambda developer guide, runtimes-custom,
"Implementing response streaming in a custom runtime"; RIE ``invocationresponse.go``)."""

from __future__ import annotations

import asyncio
import base64
import json

from orchestrator.sandbox.environment import Answer, Delivery, Environment
from orchestrator.sandbox.invocation import MAX_RESPONSE_PAYLOAD
from orchestrator.sandbox.response_stream import ResponseStream
from tests.unit.rawhttp import TIMEOUT_S, Client, connected, request_bytes, run
from tests.unit.sandbox.test_runtime_api import (
    ENV_A,
    NEXT,
    new_delivery,
    new_env,
    response_path,
    serving,
)

TRAILER = "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"


def streaming_head(
    request_id: str, mode: str = "streaming", content_type: str = "text/plain"
) -> bytes:
    return (
        f"POST {response_path(request_id)} HTTP/1.1\r\nHost: test\r\n"
        f"Lambda-Runtime-Function-Response-Mode: {mode}\r\nContent-Type: {content_type}\r\n"
        f"Transfer-Encoding: chunked\r\n{TRAILER}\r\n"
    ).encode()


async def delivered(
    env: Environment, runtime: Client, request_id: str = "req-1"
) -> tuple[asyncio.Future[ResponseStream], Delivery]:
    """Deliver an invocation whose streamed answer is read as it comes; the future has the
    stream once it starts (its outcome is the delivery's)."""
    await runtime.send(request_bytes("GET", NEXT))
    delivery = new_delivery(request_id)
    started: asyncio.Future[ResponseStream] = asyncio.get_running_loop().create_future()

    def on_stream(stream: ResponseStream) -> None:
        stream.attach()
        started.set_result(stream)

    delivery.on_stream = on_stream
    env.deliver(delivery)
    assert (await runtime.response()).status == 200
    return started, delivery


def test_each_chunk_reaches_the_reader_before_the_runtime_has_finished() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            started, delivery = await delivered(env, runtime)
            await runtime.send(streaming_head("req-1") + b"5\r\nhello\r\n")
            stream = await asyncio.wait_for(started, TIMEOUT_S)
            assert isinstance(stream, ResponseStream) and stream.content_type == "text/plain"
            chunks = stream.chunks()
            assert await asyncio.wait_for(anext(chunks), TIMEOUT_S) == b"hello"
            assert not delivery.outcome.done()  # still running
            await runtime.send(b"6\r\n world\r\n0\r\n\r\n")
            assert await asyncio.wait_for(anext(chunks), TIMEOUT_S) == b" world"
            response = await runtime.response()
            assert (response.status, response.json()) == (202, {"status": "OK"})
            outcome = await asyncio.wait_for(delivery.outcome, TIMEOUT_S)
            assert isinstance(outcome, Answer)
            assert outcome == Answer(b"", None, "text/plain", stream)
            assert stream.size == 11 and stream.ended and stream.error_type is None

    run(scenario())


def test_an_error_in_the_trailers_ends_the_stream_with_it() -> None:
    async def scenario() -> None:
        env = new_env()
        error = {"errorType": "Error", "errorMessage": "midway", "trace": []}
        encoded = base64.b64encode(json.dumps(error).encode()).decode()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            started, delivery = await delivered(env, runtime)
            await runtime.send(
                streaming_head("req-1")
                + b"4\r\npart\r\n0\r\n"
                + f"Lambda-Runtime-Function-Error-Type: Error\r\n"
                f"Lambda-Runtime-Function-Error-Body: {encoded}\r\n\r\n".encode()
            )
            assert (await runtime.response()).status == 202
            stream = await started
            outcome = await delivery.outcome
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Error" and json.loads(outcome.body) == error
            assert stream.error_type == "Error" and json.loads(stream.error_body) == error
            assert [c async for c in stream.chunks()] == [b"part"]

    run(scenario())


def test_without_a_reader_a_streamed_answer_is_kept_whole() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            await runtime.send(request_bytes("GET", NEXT))
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.response()
            await runtime.send(streaming_head("req-1") + b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
            assert (await runtime.response()).status == 202
            outcome = await delivery.outcome
            assert isinstance(outcome, Answer) and outcome.stream is not None
            assert (outcome.body, outcome.content_type) == (b"abcd", "text/plain")

    run(scenario())


def test_a_streamed_answer_sent_with_a_length_is_one_chunk() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            started, delivery = await delivered(env, runtime)
            headers = {"Lambda-Runtime-Function-Response-Mode": "streaming"}
            response = await runtime.request("POST", response_path("req-1"), b"all", headers)
            assert response.status == 202
            stream = await started
            assert [c async for c in stream.chunks()] == [b"all"]

    run(scenario())


def test_an_unknown_response_mode_is_refused_and_fails_the_invocation() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            _, delivery = await delivered(env, runtime)
            await runtime.send(streaming_head("req-1", mode="sideways") + b"1\r\nx\r\n0\r\n\r\n")
            response = await runtime.response()
            assert response.status == 400
            assert response.json() == {
                "errorMessage": "Invalid function response mode",
                "errorType": "InvalidFunctionResponseMode",
            }
            outcome = await delivery.outcome
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Runtime.InvalidResponseModeHeader"

    run(scenario())


def test_a_stream_for_another_invocation_is_refused() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            _, delivery = await delivered(env, runtime)
            await runtime.send(streaming_head("someone-else") + b"1\r\nx\r\n0\r\n\r\n")
            response = await runtime.response()
            assert (response.status, response.json()["errorType"]) == (400, "InvalidRequestID")
            assert not delivery.outcome.done()

    run(scenario())


def test_a_stream_over_its_limit_is_cut_and_the_runtime_told_as_lambda_tells_it() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            await runtime.send(request_bytes("GET", NEXT))
            delivery = new_delivery("req-1")
            seen: list[bytes] = []

            def on_stream(stream: ResponseStream) -> None:
                stream.attach(8)

                async def read() -> None:
                    seen.extend([c async for c in stream.chunks()])

                asyncio.ensure_future(read())

            delivery.on_stream = on_stream
            env.deliver(delivery)
            await runtime.response()
            await runtime.send(streaming_head("req-1") + b"6\r\n123456\r\n6\r\n789abc\r\n")
            response = await runtime.response()
            assert response.status == 413
            assert response.json()["errorType"] == "RequestEntityTooLarge"
            outcome = await delivery.outcome
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Function.ResponseSizeTooLarge"
            assert json.loads(outcome.body)["errorMessage"] == (
                "Response payload size exceeded maximum allowed payload size (8 bytes)."
            )
            await asyncio.sleep(0.01)
            assert b"".join(seen) == b"12345678"

    run(scenario())


def test_a_kept_stream_over_six_mb_fails_as_a_buffered_answer_would() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            await runtime.send(request_bytes("GET", NEXT))
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.response()
            piece = b"x" * (1024 * 1024)
            body = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for _ in range(7))
            await runtime.send(streaming_head("req-1") + body + b"0\r\n\r\n")
            assert (await runtime.response()).status == 413
            outcome = await delivery.outcome
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Function.ResponseSizeTooLarge"
            assert f"({MAX_RESPONSE_PAYLOAD} bytes)" in json.loads(outcome.body)["errorMessage"]

    run(scenario())


def test_a_runtime_whose_connection_ends_midway_truncates_its_answer() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv:
            async with connected(srv.port, ENV_A) as runtime:
                started, delivery = await delivered(env, runtime)
                await runtime.send(streaming_head("req-1") + b"4\r\npart\r\n")
                await started
            outcome = await asyncio.wait_for(delivery.outcome, TIMEOUT_S)
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Runtime.TruncatedResponse"

    run(scenario())
