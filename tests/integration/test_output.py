"""An invocation's log holds exactly what its function wrote, whatever the volume (issue 9,
item 1): everything written before the runtime answered and asked for its next event, in order;
output written after that (a timer) opens the next invocation's log. Real images, real engine."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest

from orchestrator.aws import function_arn
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox.container import network_name
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest, LogParts
from orchestrator.sandbox.oneshot import hosted_invoker, invoke_once
from orchestrator.sandbox.output import FileSpill
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, load_function, run

CODE = FUNCTIONS / "logs"
MB = 1024 * 1024
MANIFEST = f"""
functions:
  node: {{runtime: nodejs20.x, handler: loud.handler, code: {CODE}, memory: 512, timeout: 60}}
  python: {{runtime: python3.13, handler: loud.handler, code: {CODE}, memory: 512, timeout: 60}}
  ruby: {{runtime: ruby3.3, handler: loud.handler, code: {CODE}, memory: 512, timeout: 60}}
  nodejs-logging:
    runtime: nodejs20.x
    handler: nodejs_logging.handler
    code: {CODE}
    memory: 512
"""
RUNTIMES = ["node", "python", "ruby"]


@pytest.fixture
def functions(write_manifest) -> Path:
    return write_manifest(MANIFEST)


def whole_log(backend: DockerBackend, spec: FunctionSpec, event: object, spill: Path) -> bytes:
    """A one-shot invocation's log with all of its output, as `lrun invoke` prints it."""
    payload = json.dumps(event).encode()
    result = run(invoke_once(backend, spec, payload, owner=OWNER, spill=FileSpill(spill, 256 * MB)))
    assert result.function_error is None, result.payload
    out = io.BytesIO()
    result.write_log(out)
    return out.getvalue()


def output_of(log: bytes) -> bytes:
    """The function's own output in a log: between its START line and its END line."""
    start = re.search(rb"^START RequestId: \S+ Version: \S+\n", log, re.MULTILINE)
    end = re.search(rb"^END RequestId: ", log, re.MULTILINE)
    assert start is not None and end is not None, log[-500:]
    return log[start.end() : end.start()]


@pytest.mark.parametrize("name", RUNTIMES)
def test_ten_megabytes_printed_before_returning_are_all_in_the_log(
    backend, functions, tmp_path, name
) -> None:
    log = whole_log(
        backend, load_function(functions, name), {"bytes": 10 * MB, "tag": "A"}, tmp_path
    )
    lines = output_of(log).split(b"\n")
    assert lines.pop() == b""
    assert lines[-1].endswith(b"last line A")
    printed = lines[:-1]
    assert len(printed) == 10 * 1024
    for i, line in enumerate(printed):  # all of them, in order, none cut
        assert line.startswith(f"{i} x".encode()) and len(line) == 1023, (i, line[:40])


@pytest.mark.parametrize("name", RUNTIMES)
def test_two_thousand_lines_are_all_in_the_log(backend, functions, tmp_path, name) -> None:
    log = whole_log(backend, load_function(functions, name), {"lines": 2000, "tag": "B"}, tmp_path)
    found = re.findall(rb"line (\d+)\n", output_of(log))
    assert [int(n) for n in found] == list(range(2000))
    assert re.search(rb"last line B\nEND RequestId: ", log)


def test_aws_nodejs_logging_sample_keeps_its_last_line_with_a_2_mb_event(
    backend, functions, tmp_path
) -> None:
    event = {"records": ["r" * 1000] * 2048}  # 2 MB and a little
    log = whole_log(backend, load_function(functions, "nodejs-logging"), event, tmp_path)
    assert re.search(rb"\tWARN\tEvent not processed\.\nEND RequestId: ", log), log[-400:]
    assert log.count(b"r" * 1000) == 2048


@pytest.mark.parametrize("name", RUNTIMES)
def test_output_after_the_next_event_was_asked_for_opens_the_next_invocations_log(
    backend, functions, name
) -> None:
    spec = load_function(functions, name)

    async def scenario() -> tuple[InvocationResult, InvocationResult]:
        async with hosted_invoker(backend, OWNER, [network_name(spec)]) as invoker:
            env = await invoker.start_environment(spec)
            try:
                first = await invoker.run_on(env, spec, request({"late": 300, "tag": "A"}))
                await asyncio.sleep(1.5)  # the timer fires while the environment waits
                second = await invoker.run_on(env, spec, request({"tag": "B"}))
            finally:
                await invoker.stop_environment(env)
            return first, second

    first, second = run(scenario())
    assert b"late line" not in output(first)
    assert re.search(rb"last line A\n$", output(first)), output(first)
    assert re.search(rb"^.*late line A\n.*last line B\n$", output(second)), output(second)
    assert "late line A" not in first.log and "late line A" in second.log


def request(event: object) -> InvokeRequest:
    return InvokeRequest(json.dumps(event).encode(), function_arn("f")).with_request_id()


def output(result: InvocationResult) -> bytes:
    assert isinstance(result.raw_log, LogParts)
    return result.raw_log.output.bytes()
