"""Unit tests for orchestrator.sandbox.response_stream: a runtime's streamed answer on its way to
its reader, or kept whole for a caller that wants it whole; bounded either way."""

from __future__ import annotations

import asyncio

from orchestrator.http_stream import HIGH_WATER
from orchestrator.sandbox.invocation import MAX_RESPONSE_PAYLOAD
from orchestrator.sandbox.response_stream import STREAM_LIMIT, ResponseStream
from tests.fakes import run


async def take(stream: ResponseStream) -> list[bytes]:
    return [data async for data in stream.chunks()]


def test_without_a_reader_the_answer_is_kept_whole_up_to_the_buffered_limit() -> None:
    async def scenario() -> None:
        stream = ResponseStream("text/plain")
        assert stream.limit == MAX_RESPONSE_PAYLOAD
        assert await stream.put(b"one")
        assert await stream.put(b"two")
        stream.end()
        assert stream.kept() == b"onetwo"
        assert stream.size == 6 and stream.first_byte_at is not None

    run(scenario())


def test_a_reader_gets_each_chunk_as_it_comes() -> None:
    async def scenario() -> None:
        stream = ResponseStream("text/plain")
        stream.attach()
        assert stream.limit == STREAM_LIMIT
        chunks = stream.chunks()
        await stream.put(b"one")
        assert await anext(chunks) == b"one"
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # nothing yet: the reader waits
        await stream.put(b"two")
        assert await waiting == b"two"
        stream.end("Function.Broken", b'{"errorType":"Function.Broken"}')
        assert [c async for c in chunks] == []
        assert stream.error_type == "Function.Broken"
        assert stream.kept() == b""  # passed on, not kept

    run(scenario())


def test_the_runtime_waits_while_its_reader_is_behind() -> None:
    async def scenario() -> None:
        stream = ResponseStream("application/octet-stream")
        stream.attach()
        assert await stream.put(b"x" * HIGH_WATER)  # up to the mark: no wait
        blocked = asyncio.ensure_future(stream.put(b"y"))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        chunks = stream.chunks()
        assert len(await anext(chunks)) == HIGH_WATER + 1
        assert await asyncio.wait_for(blocked, 1.0)

    run(scenario())


def test_the_limit_cuts_the_answer_where_it_is_crossed() -> None:
    async def scenario() -> None:
        stream = ResponseStream("text/plain")
        stream.attach(10)
        reading = asyncio.ensure_future(take(stream))
        assert await stream.put(b"12345678")
        assert not await stream.put(b"9abc")  # over: what fits is passed on
        stream.end("Function.ResponseSizeTooLarge")
        assert b"".join(await reading) == b"123456789a"
        assert stream.size == 10 and stream.over_limit

    run(scenario())


def test_a_reader_that_leaves_lets_the_runtime_run_on_and_nothing_is_held() -> None:
    async def scenario() -> None:
        stream = ResponseStream("text/plain")
        stream.attach()
        chunks = stream.chunks()
        await stream.put(b"first")
        assert await anext(chunks) == b"first"
        await chunks.aclose()  # type: ignore[attr-defined]  # the caller went away
        for _ in range(3):  # far beyond the high-water mark, and no wait
            assert await asyncio.wait_for(stream.put(b"z" * HIGH_WATER), 1.0)
        assert stream.kept() == b"" and stream.size == 5 + 3 * HIGH_WATER

    run(scenario())


def test_only_the_first_end_counts() -> None:
    async def scenario() -> None:
        stream = ResponseStream("text/plain")
        stream.end("Sandbox.Timedout", b"timed out")
        stream.end(None)  # the runtime's own end, too late
        assert stream.ended and stream.error_type == "Sandbox.Timedout"
        assert not await stream.put(b"late")

    run(scenario())
