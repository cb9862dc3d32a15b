"""Unit tests for orchestrator.sandbox.output and its spill, the log book: an invocation's
output is held within a fixed size however much is written, and none of it is lost on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator.logbook import LogBook
from orchestrator.sandbox.output import HEAD_BYTES, TAIL_BYTES, Capture


def test_small_output_is_kept_whole() -> None:
    capture = Capture()
    for line in (b"one\n", b"two\n"):
        capture.append(line)
    assert capture.bytes() == b"one\ntwo\n"
    assert len(capture) == 8


def test_output_just_past_the_head_is_kept_whole() -> None:
    capture = Capture()
    data = bytes(range(256)) * ((HEAD_BYTES + TAIL_BYTES) // 256)
    capture.append(data)
    assert capture.bytes() == data


def test_huge_output_keeps_head_and_tail_and_says_what_it_left_out() -> None:
    capture = Capture()
    block = b"m" * 65536
    capture.append(b"h" * HEAD_BYTES)
    for _ in range(1000):  # 64 MB through it
        capture.append(block)
    capture.append(b"END")
    kept = capture.bytes()
    assert kept.startswith(b"h" * HEAD_BYTES)
    assert kept.endswith(b"m" * (TAIL_BYTES - 3) + b"END")
    assert len(kept) < HEAD_BYTES + TAIL_BYTES + 200
    assert f"[lrun: {1000 * 65536 + 3 - TAIL_BYTES} bytes of output not shown here".encode() in kept


def test_output_beyond_the_head_is_spilled_to_disk_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        book = LogBook(tmp_path / "logs")
        capture = Capture("fn-req", book)
        capture.append(b"a" * HEAD_BYTES)
        capture.append(b"b" * 10)
        capture.append(b"c" * 20)
        assert book.backlog() == 30
        await book.drained()
        assert book.backlog() == 0
        capture.append(b"d")
        await book.flush()
        path = book.spill_path("fn-req")
        assert path.read_bytes() == b"b" * 10 + b"c" * 20 + b"d"
        assert capture.spilled_to == str(path)

    asyncio.run(scenario())
