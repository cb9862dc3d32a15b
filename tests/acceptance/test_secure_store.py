"""Issue 8, findings 1, 8 and 10, performed against a real `lrun serve` with real containers.

1. Host file write through the API: a destination ARN naming any file on the host, and links
   planted in the project after it was loaded, must not make lrun write outside the project.
8. A full state directory (a real, small tmpfs) must not stop the dispatcher nor run an event
   twice; events are refused with a 500 ServiceException while writing fails, and taken again
   once space is back.
10. A damaged store is one line before any clean-up; JSON nested 100,000 deep and NaN/Infinity
   are a 400 InvalidRequestContentException, not a 500 and a traceback.

Each test fails if its attack works.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.acceptance.conftest import LrunServer, free_port, start_server

REGION = "us-east-1"
PARSE_PREFIX = "Could not parse request body into json: Could not parse payload into json: "

HANDLERS = """\
import time


def ok(event, context):
    return {"got": event, "requestId": context.aws_request_id}


def nap(event, context):
    time.sleep(event.get("s", 0))
    return {"napped": event.get("s", 0), "requestId": context.aws_request_id}
"""

MANIFEST = """\
functions:
  ok:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/ok.jsonl}}
  other:
    runtime: python3.13
    handler: app.ok
    code: ./code
  planted-dir:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./planted/ok.jsonl}}
  planted-file:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./records/planted.jsonl}}
"""


def write_project(project: Path, manifest: str) -> Path:
    (project / "code").mkdir(parents=True)
    (project / "code" / "app.py").write_text(HANDLERS)
    (project / "lrun.yaml").write_text(manifest)
    return project


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def event_invoke(client: Any, function: str, payload: Any) -> str:
    response = client.invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    assert response["StatusCode"] == 202
    request_id: str = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    return request_id


def idle(server: LrunServer) -> bool:
    """No event waiting or running."""
    stats = server.get("/lrun/events")
    return all(row["depth"] == 0 and row["in_flight"] == 0 for row in stats)


def raw(server: LrunServer, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """(status, headers, JSON body) of a raw HTTP request, errors included."""
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# One server for findings 1 and 10 (its own port, state directory and project)


class Project:
    def __init__(self, server: LrunServer, project: Path, victim: Path) -> None:
        self.server = server
        self.project = project
        self.victim = victim  # a directory outside the project, holding a file to protect
        self.client = lambda_client(server.url)

    def victim_untouched(self) -> None:
        assert sorted(p.name for p in self.victim.iterdir()) == [".bashrc"]
        assert (self.victim / ".bashrc").read_text() == "original\n"

    def ran(self, function: str, request_id: str) -> bool:
        log = self.server.state_dir / "logs" / f"{function}.log"
        return log.exists() and f"REPORT RequestId: {request_id}" in log.read_text()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("secure-store")
    victim = root / "home"
    victim.mkdir()
    (victim / ".bashrc").write_text("original\n")
    project = write_project(root / "project", MANIFEST)
    server = start_server(project, root / "state")
    try:
        yield Project(server, project, victim)
        assert "Traceback" not in server.output(), server.output()
        server.finish()
    finally:
        server.clean_up()


# 1. Host file write through the API


def test_the_api_cannot_point_a_destination_at_a_file_the_manifest_does_not_declare(
    served: Project,
) -> None:
    client, victim, project = served.client, served.victim / ".bashrc", served.project
    attacks = [
        f"arn:lrun:file:::{victim}",  # the attack as reported
        "arn:lrun:file:::../home/.bashrc",
        "arn:lrun:file:::out/../../home/.bashrc",
        "arn:lrun:file:::out/undeclared.jsonl",
        f"arn:lrun:file:::{project}/out/ok.jsonl",  # declared, but not by its name
    ]

    def refused(call: Any) -> None:
        for arn in attacks:
            for which in ("OnSuccess", "OnFailure"):
                with pytest.raises(ClientError) as caught:
                    call(FunctionName="other", DestinationConfig={which: {"Destination": arn}})
                error = caught.value.response
                assert error["Error"]["Code"] == "InvalidParameterValueException", error
                assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
                assert error["Error"]["Message"].startswith(
                    f"The destination ARN {arn} is invalid."
                ), error

    refused(client.put_function_event_invoke_config)
    with pytest.raises(ClientError) as missing:
        client.get_function_event_invoke_config(FunctionName="other")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"  # none kept
    # An update needs a config to update (as on AWS): one without destinations.
    client.put_function_event_invoke_config(FunctionName="other", MaximumRetryAttempts=2)
    refused(client.update_function_event_invoke_config)
    kept = client.get_function_event_invoke_config(FunctionName="other")
    assert kept["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}  # none taken
    client.delete_function_event_invoke_config(FunctionName="other")

    # Had any been taken, this event's record would now go to the victim.
    request_id = event_invoke(client, "other", {"attack": True})
    wait_for("the event to run", lambda: served.ran("other", request_id))
    wait_for("the queue to be idle", lambda: idle(served.server))
    served.victim_untouched()

    # What the manifest declares, by its name, is taken: the record lands in the project.
    declared = "arn:lrun:file:::out/ok.jsonl"
    put = client.put_function_event_invoke_config(
        FunctionName="other", DestinationConfig={"OnSuccess": {"Destination": declared}}
    )
    assert put["DestinationConfig"]["OnSuccess"] == {"Destination": declared}
    request_id = event_invoke(client, "other", {"legit": True})
    out = project / "out" / "ok.jsonl"
    wait_for(
        "the record in out/ok.jsonl",
        lambda: any(r["requestContext"]["requestId"] == request_id for r in records(out)),
    )
    client.delete_function_event_invoke_config(FunctionName="other")
    served.victim_untouched()


@pytest.mark.parametrize("planted", ["directory", "file"])
def test_a_link_planted_in_the_project_after_loading_is_not_followed(
    served: Project, planted: str
) -> None:
    if planted == "directory":
        function = "planted-dir"
        os.symlink(served.victim, served.project / "planted")  # planted/ok.jsonl -> outside
        target = served.victim / "ok.jsonl"
    else:
        function = "planted-file"
        (served.project / "records").mkdir()
        target = served.victim / ".bashrc"
        os.symlink(target, served.project / "records" / "planted.jsonl")
    request_id = event_invoke(served.client, function, {"attack": planted})
    wait_for("the event to run", lambda: served.ran(function, request_id))
    wait_for("the queue to be idle", lambda: idle(served.server))
    served.victim_untouched()
    assert not (served.victim / "ok.jsonl").exists()
    wait_for(
        "the refusal in the server's output",
        lambda: "could not write an event's record" in served.server.output(),
        10,
    )
    # Ran once: the refusal is reported, the event is not retried.
    log = (served.server.state_dir / "logs" / f"{function}.log").read_text()
    assert log.count(f"START RequestId: {request_id}") == 1


# 10. Deep JSON, NaN and Infinity


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "Document nesting depth exceeds the maximum allowed"),
        (b'{"a": NaN}', "Non-standard token 'NaN'"),
        (b'{"a": Infinity}', "Non-standard token 'Infinity'"),
        (b"[-Infinity]", "Non-standard token '-Infinity'"),
    ],
    ids=["deep", "nan", "infinity", "minus-infinity"],
)
@pytest.mark.parametrize("kind", ["RequestResponse", "Event"])
def test_json_lambda_would_refuse_is_a_400_not_a_crash(
    served: Project, payload: bytes, detail: str, kind: str
) -> None:
    before = served.server.output()
    status, headers, body = raw(
        served.server,
        "POST",
        "/2015-03-31/functions/ok/invocations",
        payload,
        {"Content-Type": "application/json", "X-Amz-Invocation-Type": kind},
    )
    assert status == 400, body
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    message = json.loads(body)["message"]
    assert message.startswith(PARSE_PREFIX + detail), message
    time.sleep(0.5)
    logged = served.server.output()[len(before) :]
    assert "Traceback" not in logged and "unexpected error" not in logged, logged


def test_deep_json_to_the_management_api_is_a_400_too(served: Project) -> None:
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    status, headers, _ = raw(
        served.server,
        "PUT",
        "/2017-10-31/functions/ok/concurrency",
        deep,
        {"Content-Type": "application/json"},
    )
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"


# 10. A damaged store


def test_a_damaged_store_is_one_line_naming_the_fix_before_anything_else(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path / "project", MANIFEST)
    state = tmp_path / "state"
    state.mkdir()
    database = state / "lrun.db"
    database.write_bytes(b"not SQLite at all\n" * 1000)
    # An engine that cannot be reached: had lrun touched it first (images, leftovers), that is
    # the error it would report.
    env = {**os.environ, "LRUN_STATE_DIR": str(state), "DOCKER_HOST": "unix:///nonexistent.sock"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--port", str(free_port())],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert f"lrun's store {database} is damaged (file is not a database)" in lines[0], output
    assert lines[0].endswith(f"mv {database} {database}.corrupt"), output
    assert database.read_bytes() == b"not SQLite at all\n" * 1000  # left as it was

    # The fix it names works.
    subprocess.run(lines[0].rsplit(": ", 1)[1], shell=True, check=True)
    server = start_server(project, state)
    server.finish()


# 8. Disk full


FULL_MANIFEST = """\
functions:
  nap:
    runtime: python3.13
    handler: app.nap
    code: ./code
    timeout: 30
    async: {maximum_retry_attempts: 2, retry_delay: 0.5, on_success: {file: ./out/nap.jsonl}}
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of this test's own; skipped where mounting is not permitted."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory`` to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_refuses_events_never_runs_one_twice_and_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    project = write_project(tmp_path / "project", FULL_MANIFEST)
    server = start_server(project, small_disk / "state")
    try:
        client = lambda_client(server.url)
        out = project / "out" / "nap.jsonl"
        # Events accepted before the disk fills, still running while it is full: recording
        # their outcome fails.
        early = [event_invoke(client, "nap", {"s": 4, "n": n}) for n in range(4)]
        wait_for(
            "the early events to run",
            lambda: not any(row["depth"] for row in server.get("/lrun/events")),
        )
        filler = fill(small_disk)

        refused = 0
        during: list[str] = []
        for _ in range(10):  # 256 KB each: the store must grow to take them
            try:
                during.append(event_invoke(client, "nap", {"s": 0, "pad": "x" * 262_144}))
            except ClientError as exc:
                error = exc.response
                assert error["ResponseMetadata"]["HTTPStatusCode"] == 500, error
                assert error["Error"]["Code"] == "ServiceException", error
                assert "database or disk is full" in error["Error"]["Message"], error
                refused += 1
        assert refused >= 1, "the store took events on a full disk"
        time.sleep(8)  # the early events end, the dispatcher goes round many times

        filler.unlink()
        after = [event_invoke(client, "nap", {"s": 0, "after": n}) for n in range(3)]
        accepted = early + during + after
        wait_for(
            f"a record for each of the {len(accepted)} accepted events",
            lambda: {r["requestContext"]["requestId"] for r in records(out)} >= set(accepted),
            120,
        )
        wait_for("the queue to be idle", lambda: idle(server))
        time.sleep(2)
        ids = [r["requestContext"]["requestId"] for r in records(out)]
        assert sorted(ids) == sorted(accepted), "an event ran more than once (or not at all)"
        assert all(r["requestContext"]["approximateInvokeCount"] == 1 for r in records(out))
        output = server.output()
        assert "Event invocations are refused until it can" in output, output
        assert "is written again" in output, output
        assert "Traceback" not in output, output
        server.finish()
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGKILL)
        server.clean_up()
