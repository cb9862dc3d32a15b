"""Logs as a user reads them (issue 9 item 1, issue 8 / DESIGN D9): the real `lrun invoke` and a
real `lrun serve` with boto3's ``LogType: Tail`` and the log files show every byte a function
wrote before it answered, in order, with output written after it asked for its next event at the
start of the next invocation's log; and a function printing without end cannot fill the disk."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.acceptance.conftest import Lrun, LrunServer, ServerFactory, start_server
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "logs"
MB = 1024 * 1024
HEAD = 64 * 1024  # what an invocation's log file keeps of its output before the spill
MANIFEST = f"""\
functions:
  node: {{runtime: nodejs20.x, handler: loud.handler, code: {CODE}, memory: 512, timeout: 60}}
  python: {{runtime: python3.13, handler: loud.handler, code: {CODE}, memory: 512, timeout: 60}}
"""
RUNTIMES = ["node", "python"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("logs-project")
    (directory / "lrun.yaml").write_text(MANIFEST)
    return directory


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    started = start_server(project, tmp_path_factory.mktemp("logs") / "state")
    yield started
    started.finish()


def lambda_client(server: LrunServer) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=300),
    )


def invoke_tail(server: LrunServer, function: str, event: object) -> tuple[str, str]:
    """(request id, the log's tail) of a synchronous invocation with ``LogType: Tail``."""
    response = lambda_client(server).invoke(
        FunctionName=function, Payload=json.dumps(event).encode(), LogType="Tail"
    )
    assert json.loads(response["Payload"].read()) == {"ok": True}
    tail = base64.b64decode(response["LogResult"]).decode()
    assert len(tail.encode()) <= 4096
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"], tail


def invocation_log(server: LrunServer, function: str, request_id: str) -> str:
    """One invocation's block of ``logs/<function>.log``, once the server has written it."""
    path = server.state_dir / "logs" / f"{function}.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        found = re.search(
            rf"^START RequestId: {request_id} .*?^REPORT RequestId: {request_id}\b.*?\n",
            text,
            re.MULTILINE | re.DOTALL,
        )
        if found:
            return found.group(0)
        time.sleep(0.25)
    pytest.fail(f"no log of {request_id} in {path}")


def whole_output(server: LrunServer, function: str, request_id: str) -> bytes:
    """What the log file and the spilled file hold of an invocation's output, put together."""
    block = invocation_log(server, function, request_id).encode()
    output = block.split(b"\n", 1)[1]  # after START
    spilled = server.state_dir / "logs" / "output" / f"{function}-{request_id}.out"
    if b"\n[lrun: " not in output:
        return output.rsplit(b"END RequestId: ", 1)[0]
    assert f"all of it is in {spilled}".encode() in output
    deadline = time.monotonic() + 30
    while not spilled.exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    return output[:HEAD] + spilled.read_bytes()


# `lrun invoke`, one-shot


@pytest.mark.parametrize("name", RUNTIMES)
def test_lrun_invoke_prints_all_of_ten_megabytes_and_the_last_line(
    lrun: Lrun, project: Path, tmp_path: Path, name: str
) -> None:
    state = tmp_path / "state"
    done = lrun(
        "invoke", name, "--payload", json.dumps({"bytes": 10 * MB, "tag": "A"}),
        cwd=project, env={"LRUN_STATE_DIR": str(state)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    printed = re.findall(r"^(\d+) x+$", done.stderr, re.MULTILINE)
    assert [int(n) for n in printed] == list(range(10 * 1024))
    assert re.search(r"last line A\nEND RequestId: \S+\nREPORT RequestId: ", done.stderr)
    assert not any((state / "invoke").iterdir())  # its spilled output went with it


@pytest.mark.parametrize("name", RUNTIMES)
def test_lrun_invoke_prints_all_of_two_thousand_lines(
    lrun: Lrun, project: Path, tmp_path: Path, name: str
) -> None:
    done = lrun(
        "invoke", name, "--payload", json.dumps({"lines": 2000, "tag": "B"}),
        cwd=project, env={"LRUN_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert [int(n) for n in re.findall(r"line (\d+)\n", done.stderr)] == list(range(2000))
    assert re.search(r"last line B\nEND RequestId: ", done.stderr)


# `lrun serve`: LogType Tail and the log files


@pytest.mark.parametrize("name", RUNTIMES)
def test_tail_and_log_files_hold_all_of_ten_megabytes(server: LrunServer, name: str) -> None:
    request_id, tail = invoke_tail(server, name, {"bytes": 10 * MB, "tag": "A"})
    assert re.search(r"last line A\nEND RequestId: \S+\nREPORT RequestId: ", tail), tail[-300:]
    lines = whole_output(server, name, request_id).split(b"\n")
    assert lines.pop() == b""
    assert lines.pop().endswith(b"last line A")
    assert len(lines) == 10 * 1024
    for i, line in enumerate(lines):
        assert line.startswith(f"{i} x".encode()) and len(line) == 1023, (i, line[:40])


@pytest.mark.parametrize("name", RUNTIMES)
def test_tail_and_log_files_hold_all_of_two_thousand_lines(server: LrunServer, name: str) -> None:
    request_id, tail = invoke_tail(server, name, {"lines": 2000, "tag": "B"})
    assert re.search(r"line 1999\n(.*\n)?.*last line B\nEND RequestId: ", tail), tail[-300:]
    found = re.findall(rb"line (\d+)\n", whole_output(server, name, request_id))
    assert [int(n) for n in found] == list(range(2000))


@pytest.mark.parametrize("name", RUNTIMES)
def test_output_of_a_timer_after_the_response_opens_the_next_invocations_log(
    server: LrunServer, name: str
) -> None:
    first_id, first_tail = invoke_tail(server, name, {"late": 300, "tag": f"{name}-1"})
    time.sleep(1.5)  # the timer fires while the environment waits for work
    second_id, second_tail = invoke_tail(server, name, {"tag": f"{name}-2"})
    assert f"late line {name}-1" not in first_tail
    opening = rf"START RequestId: {second_id} .*\n.*late line {name}-1\n"
    assert re.search(rf"{opening}.*last line {name}-2\nEND RequestId: ", second_tail), second_tail
    assert f"late line {name}-1" not in invocation_log(server, name, first_id)
    assert f"late line {name}-1" in invocation_log(server, name, second_id)


# The disk


def disk_use(directory: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(directory)
        for f in files
    )


def test_a_function_printing_without_end_cannot_fill_the_disk(
    serve_lrun: ServerFactory, project: Path
) -> None:
    limits = {
        "LRUN_OUTPUT_LIMIT_MB": "4",
        "LRUN_OUTPUT_TOTAL_LIMIT_MB": "10",
        "LRUN_LOG_FILE_LIMIT_MB": "1",
    }
    server = serve_lrun(project, env=limits)
    for i in range(16):  # 256 MB printed: 25 times what lrun may keep
        request_id, tail = invoke_tail(server, "python", {"bytes": 16 * MB, "tag": str(i)})
        assert re.search(rf"last line {i}\nEND RequestId: ", tail), tail[-300:]
    log = invocation_log(server, "python", request_id)
    spilled = server.state_dir / "logs" / "output" / f"python-{request_id}.out"
    assert f"the first {4 * MB} bytes of it are in {spilled}" in log, log[: HEAD + 800]
    assert re.search(r"last line 15\nEND RequestId: ", log)
    time.sleep(1.0)  # the log writer's last batch
    logs = server.state_dir / "logs"
    assert spilled.stat().st_size == 4 * MB
    assert disk_use(logs / "output") <= 10 * MB
    assert (logs / "python.log.1").exists()  # rotated
    assert disk_use(logs) <= 10 * MB + 2 * MB + 2 * HEAD
