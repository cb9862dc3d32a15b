"""Unit tests for orchestrator.sandbox.pipe and how an environment gives what comes through it
to invocations: exactly at the runtime's /next, never by timing. The FIFOs are real; the
runtime is this test, writing into them."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from orchestrator.sandbox.backend import ContainerExit
from orchestrator.sandbox.environment import Answer, Delivery, Environment, open_pipe
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.pipe import OutputPipe, sweep

ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello"


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))  # type: ignore[arg-type]


def writer(pipe: OutputPipe) -> int:
    return os.open(pipe.path, os.O_WRONLY | os.O_NONBLOCK)


def test_the_fifo_is_writable_by_the_sandbox_user_only_through_a_private_directory(
    tmp_path: Path,
) -> None:
    pipe = OutputPipe(tmp_path / "pipes", "e" * 32, lambda chunk: None, lambda: None)
    try:
        mode = pipe.path.stat().st_mode
        assert stat.S_ISFIFO(mode)
        assert stat.S_IMODE(mode) == 0o622
        assert stat.S_IMODE((tmp_path / "pipes").stat().st_mode) == 0o700
        pipe.unlink()
        assert not pipe.path.exists()
    finally:
        pipe.close()


def test_drain_reads_everything_written_so_far_in_order_and_the_end_comes_after_release(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        got: list[bytes] = []
        ended = asyncio.Event()
        pipe = OutputPipe(tmp_path, "p", got.append, ended.set)
        pipe.start()
        fd = writer(pipe)
        for i in range(300):  # more than a default pipe holds, read as it comes
            os.write(fd, f"{i:04d}".encode() * 256)
            await asyncio.sleep(0)
        pipe.drain()  # no waiting: it is all in lrun's hands now
        assert b"".join(got) == b"".join(f"{i:04d}".encode() * 256 for i in range(300))
        os.close(fd)
        await asyncio.sleep(0.05)
        assert not ended.is_set()  # lrun's own writer keeps the pipe open until release
        pipe.release()
        await asyncio.wait_for(ended.wait(), 5)
        assert pipe.closed

    run(scenario())


def test_leftover_fifos_are_swept_only_when_old(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    os.mkfifo(old)
    os.mkfifo(new)
    os.utime(old, (1, 1))
    sweep(tmp_path)
    assert not old.exists() and new.exists()


def delivery(request_id: str) -> Delivery:
    request = InvokeRequest(b"{}", ARN, "$LATEST", None, None, request_id)
    return Delivery(request, 0, asyncio.get_running_loop().create_future())


def test_output_goes_to_init_then_to_each_invocation_up_to_its_next_and_late_output_to_the_next(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        env = Environment(id="a" * 32, function="hello", memory_mb=128)
        pipe = open_pipe(env, tmp_path)
        pipe.start()
        fd = writer(pipe)
        first, second = delivery("req-1"), delivery("req-2")
        env.deliver(first)  # queued while the runtime starts
        os.write(fd, b"init\n")
        assert await env.next_invocation(0.0) is first  # /next: init's output is closed
        os.write(fd, b"one\n")
        env.answer("req-1", Answer(b"{}"))
        os.write(fd, b"one after its answer\n")
        waiting = asyncio.ensure_future(env.next_invocation(0.0))
        await asyncio.sleep(0)  # /next: all of req-1's output is in, exactly
        assert first.output_closed
        assert await env.settle_output(first, 0.01, 1.0)
        os.write(fd, b"a timer of req-1\n")  # written while the runtime waits for work
        await asyncio.sleep(0.05)
        env.deliver(second)
        assert await waiting is second
        os.write(fd, b"two\n")
        assert not second.output_closed
        env.died(ContainerExit("c", 0, False))
        os.write(fd, b"two, as it died\n")
        os.close(fd)  # the last writer: the pipe ends, and with it the output
        assert await env.settle_output(second, 0.01, 1.0)
        assert env.init_output.bytes() == b"init\n"
        assert first.output.bytes() == b"one\none after its answer\n"
        assert second.output.bytes() == b"a timer of req-1\ntwo\ntwo, as it died\n"
        assert second.output_closed and env.output_done.is_set()

    run(scenario())


@pytest.mark.parametrize("again", [1, 3])
def test_asking_for_work_again_while_waiting_loses_no_output(tmp_path: Path, again: int) -> None:
    async def scenario() -> None:
        env = Environment(id="b" * 32, function="hello", memory_mb=128)
        pipe = open_pipe(env, tmp_path)
        pipe.start()
        fd = writer(pipe)
        waits = []
        for i in range(again):
            os.write(fd, f"idle {i}\n".encode())
            waits.append(asyncio.ensure_future(env.next_invocation(0.0)))
            await asyncio.sleep(0)
        job = delivery("req-1")
        env.deliver(job)
        os.close(fd)
        pipe.close()
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        expected = b"".join(f"idle {i}\n".encode() for i in range(1, again))
        assert job.output.bytes() == expected

    run(scenario())
