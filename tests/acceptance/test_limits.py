"""What a function or a client can cost `lrun serve` (issue 8, findings 4, 5 and 7).

Each test performs an attack against a real `lrun serve` running real containers, and fails if
the attack works: a function streams a huge response or floods its standard output (lrun's
memory must stay where it was), a function opens hundreds of connections to its Runtime API or a
client opens a thousand half-open connections to the Lambda API (lrun's file descriptors must
stay bounded and come back), a handler posts ``/init/error`` long after init (its environment
must go on working).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import resource
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.acceptance.conftest import LrunServer, ServerFactory, start_server
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "attack"
MB = 1024 * 1024
# What lrun may grow by during an attack: its normal working set for the invocation. Before the
# limits, the response attack took it to 1.6 GB and the flood added over 500 MB.
MEMORY_SLACK_KB = 100 * 1024
FD_SLACK = 16

MANIFEST = f"""\
functions:
  stream: {{runtime: python3.13, handler: attack.stream_response, code: {CODE}, timeout: 60}}
  flood: {{runtime: python3.13, handler: attack.flood_stdout, code: {CODE}, timeout: 120}}
  hold: {{runtime: python3.13, handler: attack.hold_connections, code: {CODE}, timeout: 60}}
  poison: {{runtime: python3.13, handler: attack.init_error_after_init, code: {CODE}}}
  poisonpc:
    runtime: python3.13
    handler: attack.init_error_after_init
    code: {CODE}
    provisioned_concurrency: 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("limits")
    project = root / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(MANIFEST)
    # Per invocation, lrun keeps at most 64 MB of output on disk by default: the flood below
    # (300 MB) shows that nothing below the limit is lost; test_logs shows the limit itself.
    # A queue holds at most 120,000 messages by default (SQS's limit of messages in flight):
    # the attack below sends until refused at a smaller limit, set the same way.
    started = start_server(
        project,
        root / "state",
        env={"LRUN_OUTPUT_LIMIT_MB": "400", "LRUN_QUEUE_MAX_MESSAGES": "250"},
    )
    yield started
    started.finish()


@pytest.fixture(scope="module")
def client(server: LrunServer) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=300),
    )


def invoke(client: Any, function: str, event: object, tail: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=function,
        Payload=json.dumps(event).encode(),
        LogType="Tail" if tail else "None",
    )
    response["payload"] = json.loads(response["Payload"].read())
    if tail:
        response["tail"] = base64.b64decode(response["LogResult"]).decode()
    return response


def memory_kb(pid: int) -> tuple[int, int]:
    """(resident now, resident at its peak) of a process, in KB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_peak(pid: int) -> int:
    """Start measuring a process's peak memory afresh; returns its resident memory, in KB."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to VmRSS
    return memory_kb(pid)[0]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid: int, at_most: int, timeout: float) -> int:
    """lrun's descriptor count once it is at most ``at_most`` (or what it is at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (count := open_fds(pid)) > at_most and time.monotonic() < deadline:
        time.sleep(0.25)
    return count


# Finding 4: memory


def test_a_huge_streamed_response_is_cut_off_and_costs_lrun_no_memory(
    server: LrunServer, client: Any
) -> None:
    warm = invoke(client, "stream", {"mb": 1})
    assert warm["payload"] == {"sent_mb": 1}
    before = reset_peak(server.pid)

    attacked = invoke(client, "stream", {"mb": 512}, tail=True)

    assert attacked.get("FunctionError") == "Unhandled", attacked["payload"]
    assert attacked["payload"] == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
    }
    assert "lrun stopped reading after" in attacked["tail"], attacked["tail"]
    _, peak = memory_kb(server.pid)
    assert peak - before < MEMORY_SLACK_KB, f"lrun grew from {before} KB to a peak of {peak} KB"
    # The function goes on working. Its runtime's own answer for the invocation (after the
    # handler returned) is refused as a second answer, and AWS's runtime client exits on that,
    # as it would on Lambda: the next invocation may meet that exit, the one after a new one.
    results = [invoke(client, "stream", {"mb": 2})["payload"] for _ in range(2)]
    assert {"sent_mb": 2} in results, results


def test_flooding_stdout_costs_lrun_no_memory_and_loses_no_output(
    server: LrunServer, client: Any
) -> None:
    invoke(client, "flood", {"mb": 1}, tail=True)  # settled: none of its output trails
    before = reset_peak(server.pid)

    flooded = invoke(client, "flood", {"mb": 300}, tail=True)

    assert flooded["payload"] == {"written_mb": 300}
    tail = flooded["tail"]
    assert "the last line of the flood\nEND RequestId: " in tail, tail[-300:]
    assert len(tail.encode()) <= 4096
    _, peak = memory_kb(server.pid)
    assert peak - before < MEMORY_SLACK_KB, f"lrun grew from {before} KB to a peak of {peak} KB"
    now, _ = memory_kb(server.pid)
    assert now - before < MEMORY_SLACK_KB
    # Nothing lost: what the invocation did not keep is on disk, all of it.
    request_id = flooded["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    spilled = server.state_dir / "logs" / "output" / f"flood-{request_id}.out"
    deadline = time.monotonic() + 30
    expected = 300 * MB + len("the last line of the flood\n") - 64 * 1024
    while (not spilled.exists() or spilled.stat().st_size < expected) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.25)
    assert spilled.stat().st_size == expected
    with open(spilled, "rb") as f:
        f.seek(-27, os.SEEK_END)
        assert f.read() == b"the last line of the flood\n"
    spilled.unlink()  # 300 MB of test data
    marker = f"bytes of output not shown here; all of it is in {spilled}"
    log_file = server.state_dir / "logs" / "flood.log"
    while marker not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.25)  # written behind the invocation, in the log writer's next batch
    assert marker in log_file.read_text()


def test_a_client_streaming_a_huge_request_is_refused_early_and_costs_no_memory(
    server: LrunServer, client: Any
) -> None:
    too_big = b'"' + b"x" * (6 * MB) + b'"'
    with pytest.raises(ClientError) as refused:
        client.invoke(FunctionName="poison", Payload=too_big)
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation "
        f"(this one is {len(too_big)} bytes)"
    )
    before = reset_peak(server.pid)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        b"POST /2015-03-31/functions/poison/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n" % MB + b"x" * MB + b"\r\n"
    sent = 0
    try:
        for _ in range(512):
            sock.sendall(chunk)
            sent += 1
    except OSError:
        pass
    finally:
        sock.close()
    assert sent < 64, f"lrun read {sent} MB of a request it can only refuse"
    _, peak = memory_kb(server.pid)
    assert peak - before < MEMORY_SLACK_KB, f"lrun grew from {before} KB to a peak of {peak} KB"


# Finding 5: file descriptors


def test_a_function_cannot_hold_hundreds_of_runtime_api_connections(
    server: LrunServer, client: Any
) -> None:
    assert invoke(client, "hold", {"n": 0})["payload"] == {"opened": 0, "held": 0}
    before = open_fds(server.pid)

    first = invoke(client, "hold", {"n": 300})
    second = invoke(client, "hold", {"n": 300})  # the first 300 are still held by the function

    assert first["payload"]["opened"] == second["payload"]["opened"] == 300
    # The second call may meet a new environment (the first one slow to ask for more work): at
    # most two environments, each with its few connections and its own output stream.
    bound = before + 2 * (8 + 4) + FD_SLACK
    after = settled_fds(server.pid, bound, timeout=5)
    assert after <= bound, f"lrun went from {before} to {after} descriptors"


def test_half_open_clients_are_capped_timed_out_and_do_not_lock_out_others(
    server: LrunServer, client: Any
) -> None:
    """Slowloris: a thousand connections that never finish their request's head."""
    invoke(client, "poison", {})
    before = open_fds(server.pid)
    half_open: list[socket.socket] = []
    try:
        for _ in range(1100):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /2015-03-31/functions/poison/invocations HTTP/1.1\r\nHost: x\r\n")
            half_open.append(sock)
        time.sleep(0.5)
        held = open_fds(server.pid)
        assert held <= before + 1024 + FD_SLACK, f"lrun holds {held - before} more descriptors"
        # Another client still gets in: the longest idle half-open connection makes room.
        served = invoke(client, "poison", {})
        assert served["StatusCode"] == 200 and "FunctionError" not in served
        # And the head timeout closes them all.
        after = settled_fds(server.pid, before + FD_SLACK, timeout=25)
        assert after <= before + FD_SLACK, f"lrun still holds {after - before} more descriptors"
        half_open[-1].settimeout(5)
        try:
            closed = half_open[-1].recv(4096)
        except ConnectionResetError:
            closed = b""
        assert closed == b"" or closed.startswith(b"HTTP/1.1 408")
    finally:
        for sock in half_open:
            sock.close()


def test_lrun_serve_raises_its_soft_nofile_limit(serve_lrun: ServerFactory, tmp_path: Path) -> None:
    """Started under the common 1,024 soft limit, lrun takes what the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise to")
    project = tmp_path / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(
        f"functions:\n  poison: {{runtime: python3.13, handler: attack.x, code: {CODE}}}\n"
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by lrun serve
    try:
        started = serve_lrun(project)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{started.pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)] or hard == resource.RLIM_INFINITY, line
    started.finish()


# Finding 7: /init/error after init


@pytest.mark.parametrize("function", ["poison", "poisonpc"])
def test_init_error_after_init_is_refused_and_poisons_nothing(
    client: Any, server: LrunServer, function: str
) -> None:
    name = function
    if function == "poisonpc":  # every call must reach the one provisioned environment
        name = "poisonpc:live"  # the manifest's provisioned concurrency is on the alias live
        deadline = time.monotonic() + 120
        while not [e for e in server.environments(function) if e["state"] == "provisioned"]:
            assert time.monotonic() < deadline, server.environments(function)
            time.sleep(0.1)
    start = invoke(client, name, {})["payload"]["invocations"]
    attacked = invoke(client, name, {"attack": True})
    assert "FunctionError" not in attacked, attacked["payload"]
    assert attacked["payload"] == {"init_error_status": 403, "invocations": start + 1}
    later = invoke(client, name, {})
    assert "FunctionError" not in later, later["payload"]
    assert later["payload"] == {"init_error_status": None, "invocations": start + 2}


# Queues


def call(server: LrunServer, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """A request to lrun's own routes: (status, JSON body), errors included."""
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **server.signature(method, path, data)}
    request = urllib.request.Request(
        server.url + path, data=data or None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, {**json.loads(error.read()), "type": error.headers["x-amzn-ErrorType"]}


def test_a_queue_refuses_sends_past_its_limit_with_sqs_s_error(server: LrunServer) -> None:
    """The attack: send to a queue until refused. Without the bound every message was kept on
    disk for ever; now the queue stops at its limit with SQS's OverLimit (403), and takes again
    once messages are received and deleted."""
    status, _ = call(server, "POST", "/lrun/queues", {"name": "flood"})
    assert status == 201
    batch = {"messages": ["x" * 100] * 10}
    sent = 0
    while True:
        status, answer = call(server, "POST", "/lrun/queues/flood/messages", batch)
        if status != 200:
            break
        sent += 10
        assert sent <= 250, "lrun took more messages than its limit"
    assert sent == 250
    assert status == 403 and answer["type"] == "OverLimit", answer
    assert answer["Message"].startswith(
        "queue 'flood' holds 250 messages, and lrun keeps at most 250 in a queue"
    )
    status, stats = call(server, "GET", "/lrun/queues/flood")
    assert stats["depth"] == 250
    status, received = call(server, "POST", "/lrun/queues/flood/receive", {"max_messages": 10})
    for message in received["messages"]:
        receipt = urllib.parse.quote(message["receipt"], safe="")
        assert call(server, "DELETE", f"/lrun/queues/flood/messages/{receipt}")[0] == 200
    assert call(server, "POST", "/lrun/queues/flood/messages", batch)[0] == 200
    assert call(server, "POST", "/lrun/queues/flood/purge")[0] == 200


# Code downloads


def test_many_parallel_downloads_of_a_large_zip_cost_lrun_no_memory(
    server: LrunServer, client: Any
) -> None:
    """The attack: fifty clients download a 30 MB function zip at once (GetFunction's
    Code.Location). lrun streams each from disk a piece at a time, a few at once, so its
    memory stays where it was; before, each download read the whole zip into memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
        archive.writestr("blob.bin", os.urandom(30 * MB))  # incompressible
    data = buffer.getvalue()
    client.create_function(
        FunctionName="big",
        Runtime="python3.13",
        Role="arn:aws:iam::000000000000:role/lambda-role",
        Handler="app.handler",
        Code={"ZipFile": data},
    )
    location = client.get_function(FunctionName="big")["Code"]["Location"]
    expected = hashlib.sha256(data).hexdigest()

    def download() -> str:
        digest = hashlib.sha256()
        with urllib.request.urlopen(location, timeout=300) as response:
            while piece := response.read(256 * 1024):
                digest.update(piece)
        return digest.hexdigest()

    before = reset_peak(server.pid)
    with ThreadPoolExecutor(50) as pool:
        digests = list(pool.map(lambda _: download(), range(50)))
    _, peak = memory_kb(server.pid)
    assert digests == [expected] * 50  # every download whole and right
    assert peak - before < MEMORY_SLACK_KB, f"lrun grew from {before} KB to a peak of {peak} KB"
    client.delete_function(FunctionName="big")
