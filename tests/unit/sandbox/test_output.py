"""Unit tests for orchestrator.sandbox.output and its spill, the log book: an invocation's
output is held within a fixed size however much is written, and none of it is lost on disk."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path

from orchestrator.logbook import LogBook, LogLimits
from orchestrator.sandbox.output import HEAD_BYTES, TAIL_BYTES, Capture, FileSpill


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


def test_write_whole_gives_back_every_byte_from_the_spill(tmp_path: Path) -> None:
    capture = Capture("fn-req", FileSpill(tmp_path, 10 * HEAD_BYTES))
    data = b"".join(b"%06d\n" % i for i in range(50_000))  # 350 KB
    for i in range(0, len(data), 4000):
        capture.append(data[i : i + 4000])
    out = io.BytesIO()
    capture.write_whole(out)
    assert out.getvalue() == data
    assert capture.ends_line()


def test_a_capture_spills_no_more_than_its_limit_and_says_what_it_did_not_keep(
    tmp_path: Path,
) -> None:
    limit = 100_000
    capture = Capture("fn-req", FileSpill(tmp_path, limit))
    capture.append(b"h" * HEAD_BYTES)
    for _ in range(100):
        capture.append(b"m" * 10_000)  # 1 MB beyond the head: ten times the limit
    capture.append(b"the end\n")
    spilled = tmp_path / "fn-req.out"
    assert spilled.stat().st_size == limit
    kept = capture.bytes()
    assert f"the first {limit} bytes of it are in {spilled}".encode() in kept
    assert kept.endswith(b"the end\n")
    out = io.BytesIO()
    capture.write_whole(out)
    whole = out.getvalue()
    assert whole.startswith(b"h" * HEAD_BYTES + b"m" * limit)
    dropped = 100 * 10_000 + 8 - limit - TAIL_BYTES
    assert f"[lrun: {dropped} bytes of output not kept".encode() in whole
    assert whole.endswith(b"m" * (TAIL_BYTES - 8) + b"the end\n")
    assert capture.dropped == dropped


def test_a_functions_log_file_is_rotated_at_its_limit(tmp_path: Path) -> None:
    @dataclass
    class Logged:
        log: str

    async def scenario() -> None:
        book = LogBook(tmp_path, LogLimits(log_file=10_000))
        for i in range(30):
            book.append("fn", Logged(f"{i:03d} " + "x" * 995 + "\n"))
            await book.flush()
        current, previous = book.path("fn"), tmp_path / "fn.log.1"
        assert current.stat().st_size <= 10_000 and previous.stat().st_size <= 10_000
        assert current.read_text().endswith("x\n") and current.read_text().count("\n") >= 1
        assert "029 " in current.read_text() and "000 " not in previous.read_text()

    asyncio.run(scenario())


def test_spilled_output_is_kept_under_its_total_oldest_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        (tmp_path / "output").mkdir()
        (tmp_path / "output" / "left-by-an-earlier-server.out").write_bytes(b"o" * 50_000)
        book = LogBook(tmp_path, LogLimits(per_output=40_000, output_total=100_000))
        for i in range(10):  # 400 KB spilled in all
            capture = Capture(f"fn-{i}", book)
            capture.append(b"h" * HEAD_BYTES)
            capture.append(b"s" * 60_000)
            await book.flush()
        files = sorted(p.name for p in (tmp_path / "output").iterdir())
        assert files == ["fn-8.out", "fn-9.out"]  # 40 KB each: the newest that fit
        assert sum(p.stat().st_size for p in (tmp_path / "output").iterdir()) <= 100_000

    asyncio.run(scenario())
