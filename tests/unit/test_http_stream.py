"""Unit tests for orchestrator.http_stream: a body read as it arrives, bounded."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.http_stream import HIGH_WATER, LAST_CHUNK, BodyAborted, BodyStream, chunk
from tests.fakes import run


class Flow:
    """What the stream asked of its connection."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def new_stream() -> tuple[BodyStream, Flow]:
    flow = Flow()
    return BodyStream(flow.pause, flow.resume), flow


def test_chunk_framing() -> None:
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_read_waits_for_each_piece_then_ends() -> None:
    async def scenario() -> None:
        stream, _ = new_stream()
        reading = asyncio.ensure_future(stream.read())
        await asyncio.sleep(0)
        assert not reading.done()  # nothing came yet
        stream.append(b"one")
        assert await reading == b"one"
        stream.append(b"two")
        stream.append(b"three")
        assert await stream.read() == b"twothree"  # what waits is given at once
        stream.trailers["x-error"] = "boom"
        stream.end()
        assert await stream.read() == b""
        assert stream.ended and stream.trailers == {"x-error": "boom"}

    run(scenario())


def test_a_connection_lost_midway_is_an_error_not_an_end() -> None:
    async def scenario() -> None:
        stream, _ = new_stream()
        stream.append(b"part")
        stream.abort()
        assert await stream.read() == b"part"  # what came is still read
        with pytest.raises(BodyAborted):
            await stream.read()

    run(scenario())


def test_the_sender_is_paused_beyond_the_high_water_mark_and_resumed_once_read() -> None:
    async def scenario() -> None:
        stream, flow = new_stream()
        stream.append(b"x" * HIGH_WATER)
        assert flow.calls == []
        stream.append(b"y")
        stream.append(b"z")
        assert flow.calls == ["pause"]  # once, however much more comes
        assert len(await stream.read()) == HIGH_WATER + 2
        assert flow.calls == ["pause", "resume"]

    run(scenario())


def test_read_all_stops_at_the_limit_and_drops_the_rest() -> None:
    async def scenario() -> None:
        stream, flow = new_stream()
        stream.append(b"a" * 10)
        stream.append(b"b" * 10)
        stream.end()
        assert await stream.read_all(20) == b"a" * 10 + b"b" * 10

        over, flow = new_stream()
        over.append(b"a" * 10)
        over.append(b"b" * (HIGH_WATER + 1))  # the sender is paused...
        assert await over.read_all(15) is None
        assert flow.calls == ["pause", "resume"]  # ...and let go: the rest is dropped
        over.append(b"more")
        over.end()
        assert await over.read() == b""

    run(scenario())
