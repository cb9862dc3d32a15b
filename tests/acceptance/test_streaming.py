"""Response streaming through a real `lrun serve`, read by boto3's own
``invoke_with_response_stream`` (its event-stream parser checks every frame's CRCs) chunk by
chunk, with each chunk's arrival timed: the first reaches the client while the function is
still writing. A Node.js function streams with ``awslambda.streamifyResponse``.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import LrunServer, start_server
from tests.acceptance.test_limits import MEMORY_SLACK_KB, memory_kb, reset_peak
from tests.acceptance.test_serve import lambda_client
from tests.conftest import FUNCTIONS

MANIFEST = f"""
functions:
  words: {{runtime: nodejs22.x, handler: streaming.words, code: {FUNCTIONS / "node"}}}
  flood: {{runtime: nodejs22.x, handler: streaming.flood, code: {FUNCTIONS / "node"}, memory: 512,
          timeout: 60}}
  count: {{runtime: python3.13, handler: probe.count, code: {FUNCTIONS / "python"}}}
"""
LIMIT_MB = 3  # the server's streaming limit in these tests (LRUN_STREAM_LIMIT_MB)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("streaming")
    project = root / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(MANIFEST)
    started = start_server(project, root / "state", env={"LRUN_STREAM_LIMIT_MB": str(LIMIT_MB)})
    yield started
    started.finish()


@pytest.fixture(scope="module")
def client(server: LrunServer) -> Any:
    return lambda_client(server.url)


def read(response: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """The events as boto3 gives them, each with the time it arrived."""
    return [(time.monotonic(), event) for event in response["EventStream"]]


def test_boto3_reads_the_chunks_as_the_function_writes_them(client: Any) -> None:
    warm_up = client.invoke_with_response_stream(FunctionName="words", Payload=b'{"words": ["x"]}')
    list(warm_up["EventStream"])  # read to its end: the environment is free again, warm
    started = time.monotonic()
    response = client.invoke_with_response_stream(
        FunctionName="words",
        Payload=json.dumps({"words": ["alpha ", "beta ", "gamma"], "pause": 800}).encode(),
    )
    answered = time.monotonic()
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    events = read(response)
    payloads = [(at, e["PayloadChunk"]["Payload"]) for at, e in events if "PayloadChunk" in e]
    assert b"".join(p for _, p in payloads) == b"alpha beta gamma"
    assert events[-1][1] == {"InvokeComplete": {}}
    # The function waits 0.8 s after each of its three writes: boto3 had the response, and the
    # first chunk, well before the function had written its last.
    assert answered - started < 1.2
    assert payloads[0][1] == b"alpha "
    assert events[-1][0] - payloads[0][0] > 1.5, [(at - started, e) for at, e in events]


def test_a_function_that_answers_whole_streams_one_chunk(client: Any) -> None:
    response = client.invoke_with_response_stream(FunctionName="count", LogType="Tail")
    events = [event for _, event in read(response)]
    assert json.loads(events[0]["PayloadChunk"]["Payload"])["invocations"] >= 1
    complete = events[-1]["InvokeComplete"]
    assert "ErrorCode" not in complete
    assert "REPORT RequestId:" in base64.b64decode(complete["LogResult"]).decode()


def test_the_streaming_limit_ends_the_stream_with_lambdas_error(client: Any) -> None:
    response = client.invoke_with_response_stream(
        FunctionName="flood", Payload=json.dumps({"mb": LIMIT_MB + 2}).encode()
    )
    events = [event for _, event in read(response)]
    size = sum(len(e["PayloadChunk"]["Payload"]) for e in events if "PayloadChunk" in e)
    assert size == LIMIT_MB * 1024 * 1024
    assert events[-1]["InvokeComplete"]["ErrorCode"] == "Function.ResponseSizeTooLarge"


def test_errors_before_the_stream_are_aws_errors(client: Any) -> None:
    with pytest.raises(ClientError) as missing:
        client.invoke_with_response_stream(FunctionName="nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["Error"]["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST"
    )
    dry = client.invoke_with_response_stream(FunctionName="count", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    assert list(dry["EventStream"]) == []  # no events, and the connection is given back


def test_invoke_gives_a_streaming_functions_response_whole(client: Any) -> None:
    response = client.invoke(
        FunctionName="words", Payload=json.dumps({"words": ["a", "b", "c"]}).encode()
    )
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["Payload"].read() == b"abc"


def test_the_log_file_reports_the_time_to_first_byte(client: Any, server: LrunServer) -> None:
    streamed = client.invoke_with_response_stream(
        FunctionName="words", Payload=b'{"words": ["logged"]}'
    )
    list(streamed["EventStream"])
    log = Path(server.state_dir) / "logs" / "words.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if log.exists() and "Time To First Byte:" in log.read_text():
            break
        time.sleep(0.2)
    text = log.read_text()
    reports = [line for line in text.splitlines() if line.startswith("REPORT")]
    assert any("\tTime To First Byte: " in line for line in reports), text


def test_a_caller_that_does_not_read_cannot_make_lrun_hold_its_stream(
    tmp_path: Path, serve_lrun: Any
) -> None:
    """An attack (DESIGN D9): a client asks for a 150 MB stream and reads none of it. lrun holds
    at most a megabyte of it: the function's writes wait, as on Lambda; once the client goes,
    the function runs to its end, its output dropped, and its environment serves again."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(MANIFEST)
    server = serve_lrun(project)
    client = lambda_client(server.url)
    list(
        client.invoke_with_response_stream(FunctionName="flood", Payload=b'{"mb": 1}')[
            "EventStream"
        ]
    )
    before = reset_peak(server.pid)
    port = int(server.url.rsplit(":", 1)[1])
    body = json.dumps({"mb": 150}).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /2021-11-15/functions/flood/response-streaming-invocations HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(6)  # at ~100 MB/s, all 150 MB would have been written by now
        busy = [e["state"] for e in server.environments("flood")]
        _, peak = memory_kb(server.pid)
    assert busy == ["busy"], busy  # the function is still waiting to write
    assert peak - before < MEMORY_SLACK_KB // 2, f"lrun grew from {before} KB to {peak} KB"
    deadline = time.monotonic() + 60
    while [e["state"] for e in server.environments("flood")] != ["idle"]:
        assert time.monotonic() < deadline, server.environments("flood")
        time.sleep(0.2)
    again = client.invoke_with_response_stream(FunctionName="flood", Payload=b'{"mb": 1}')
    events = list(again["EventStream"])
    assert events[-1] == {"InvokeComplete": {}}
