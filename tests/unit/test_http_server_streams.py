"""Unit tests of orchestrator.http_server's streamed bodies, on a real socket: a route that reads
a chunked request body as it arrives (trailers included), and responses written as produced."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from orchestrator.http_server import LINGER_BYTES, LINGER_S, Request, Response, Router
from orchestrator.http_stream import BodyStream
from tests.unit.rawhttp import TIMEOUT_S, connected, request_bytes, run, serving


def on_error(exc: Exception) -> Response:
    return Response(500, json.dumps({"error": str(exc)}).encode())


async def whole(request: Request) -> Response:
    return Response(200, b"whole:" + request.body)


def chunked_head(path: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n{extra}\r\n"
    ).encode()


def test_a_streaming_route_reads_the_body_as_it_arrives_with_its_trailers() -> None:
    async def scenario() -> None:
        seen: asyncio.Queue[bytes] = asyncio.Queue()
        trailers: dict[str, str] = {}

        async def reader(request: Request, body: BodyStream) -> Response:
            assert request.params == {"id": "abc"} and request.body == b""
            while piece := await body.read():
                await seen.put(piece)
            trailers.update(body.trailers)
            return Response(202, b"got it")

        router = Router(on_error)
        router.add("POST", "/r/{id}", whole, stream=reader)
        async with serving(router) as port, connected(port) as client:
            await client.send(chunked_head("/r/abc", "Trailer: X-Error-Type\r\n") + b"3\r\none\r\n")
            assert await asyncio.wait_for(seen.get(), TIMEOUT_S) == b"one"  # before the rest
            await client.send(b"3\r\ntwo\r\n")
            assert await asyncio.wait_for(seen.get(), TIMEOUT_S) == b"two"
            await client.send(b"0\r\nX-Error-Type: Function.Broken\r\n\r\n")
            response = await client.response()
            assert (response.status, response.body) == (202, b"got it")
            assert trailers == {"x-error-type": "Function.Broken"}
            # The connection carries on: a request with a length goes the usual way.
            again = await client.request("POST", "/r/abc", b"data")
            assert (again.status, again.body) == (200, b"whole:data")

    run(scenario())


def test_a_chunked_body_on_a_route_that_does_not_stream_is_read_whole() -> None:
    async def scenario() -> None:
        router = Router(on_error)
        router.add("POST", "/w", whole)
        async with serving(router) as port, connected(port) as client:
            await client.send(chunked_head("/w") + b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
            response = await client.response()
            assert (response.status, response.body) == (200, b"whole:abcd")

    run(scenario())


def test_what_comes_after_a_streaming_route_answered_is_read_no_further_than_a_refusal() -> None:
    """A sender whose body goes on after its route answered cannot make lrun read without end:
    as for a refused request, what comes is dropped up to LINGER_BYTES, then the connection is
    cut."""

    async def scenario() -> None:
        async def refuse(request: Request, body: BodyStream) -> Response:
            return Response(400, b"no")

        router = Router(on_error)
        router.add("POST", "/r", whole, stream=refuse)
        router.add("GET", "/ok", whole)
        async with serving(router) as port:
            async with connected(port) as client:
                await client.send(chunked_head("/r") + b"4\r\nabcd\r\n")
                assert (await client.response()).body == b"no"
                piece = b"%x\r\n%b\r\n" % (1024 * 1024, b"x" * 1024 * 1024)
                with contextlib.suppress(ConnectionError):
                    for _ in range(LINGER_BYTES // (1024 * 1024) + 2):
                        await client.send(piece)
                # Cut once LINGER_BYTES were dropped: well before LINGER_S, the time limit.
                rest = b"unread"
                with contextlib.suppress(ConnectionError):
                    rest = await asyncio.wait_for(client.reader.read(), LINGER_S / 2)
                assert rest in (b"unread", b"")
            async with connected(port) as other:  # the server itself carries on
                assert (await other.request("GET", "/ok")).body == b"whole:"

    run(scenario())


def test_a_streamed_response_reaches_the_client_piece_by_piece() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        closed = asyncio.Event()

        async def pieces() -> AsyncIterator[bytes]:
            try:
                yield b"first"
                await release.wait()
                yield b"second"
            finally:
                closed.set()

        async def answer(request: Request) -> Response:
            return Response(200, b"", {"Content-Type": "text/plain"}, stream=pieces())

        router = Router(on_error)
        router.add("GET", "/s", answer)
        async with serving(router) as port, connected(port) as client:
            await client.send(request_bytes("GET", "/s"))
            head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
            assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
            first = await asyncio.wait_for(client.reader.readuntil(b"first\r\n"), TIMEOUT_S)
            assert first == b"5\r\nfirst\r\n"  # while the producer still waits
            release.set()
            rest = await asyncio.wait_for(client.reader.readuntil(b"0\r\n\r\n"), TIMEOUT_S)
            assert rest == b"6\r\nsecond\r\n0\r\n\r\n"
            assert closed.is_set()

    run(scenario())


def test_a_client_that_goes_away_closes_the_streamed_responses_producer() -> None:
    async def scenario() -> None:
        closed = asyncio.Event()

        async def pieces() -> AsyncIterator[bytes]:
            try:
                yield b"first"
                await asyncio.Event().wait()  # never
                yield b"never"
            finally:
                closed.set()

        async def answer(request: Request) -> Response:
            return Response(200, b"", {}, stream=pieces())

        router = Router(on_error)
        router.add("GET", "/s", answer)
        async with serving(router) as port:
            async with connected(port) as client:
                await client.send(request_bytes("GET", "/s"))
                await asyncio.wait_for(client.reader.readuntil(b"first\r\n"), TIMEOUT_S)
            await asyncio.wait_for(closed.wait(), TIMEOUT_S)

    run(scenario())
