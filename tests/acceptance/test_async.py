"""Asynchronous invocation and event sources, as clients see them against a real `lrun serve`.

One server (module-scoped, its own port and state directory) serves the manifest below. Each test
has functions, queues and destination files to itself, so tests may run in any order. What a
function did is read from its destinations (files the server writes on the host, local queues)
and from the server's invocation logs (``<state dir>/logs/<function>.log``).

Before the server starts, an event older than its function's maximum event age is written
straight into the store, as a server that was down for a while would find it. Alongside it, a
second project with one scheduled function is served, then restarted once its schedule has fired,
to compare the rule ARN across runs. Tests of a server's failures (a destination it cannot write,
a SIGKILL) start servers of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from orchestrator.events.store import SCHEMA
from tests.acceptance.conftest import Lrun, LrunServer, ServerFactory, start_server

ACCOUNT = "000000000000"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}"
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SETTLE_S = 1.5  # how long "nothing more happens" is watched for
AGED_ID = str(uuid.uuid4())  # the event written into the store before the server starts
AGED_PAYLOAD = {"old": True}

HANDLERS = """\
import json
import time


def ok(event, context):
    return {"got": event, "requestId": context.aws_request_id}


def fail(event, context):
    raise ValueError("boom: " + json.dumps(event))


def slowfail(event, context):
    time.sleep(event.get("s", 3))
    raise RuntimeError("slow boom")


def nap(event, context):
    time.sleep(event.get("s", 2))
    return {"napped": event.get("s", 2)}


def batch(event, context):
    records = event["Records"]
    print("BATCH " + json.dumps({"keys": sorted(records[0]), "records": records}))
    if any("crash" in r["body"] for r in records):
        raise RuntimeError("crash in the batch")
    failed = [{"itemIdentifier": r["messageId"]} for r in records if "bad" in r["body"]]
    return {"batchItemFailures": failed}
"""

MANIFEST = """\
queues:
  jobs: {visibility_timeout: 10, max_receive_count: 2, dead_letter_queue: jobs-dlq}
  jobs-dlq:
  crashq: {visibility_timeout: 10, max_receive_count: 1, dead_letter_queue: crash-dlq}
  crash-dlq:
  failures:
  dlq:
  failures0:
  dlq0:
  failed:
  zero-dlq:
  slow-dlq:
  cli-q: {visibility_timeout: 30, max_receive_count: 1, dead_letter_queue: cli-dlq}
  cli-dlq:
buckets:
  uploads: {path: ./uploads}
functions:
  ok:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/ok.jsonl}}
  fail:
    runtime: python3.13
    handler: app.fail
    code: ./code
    async:
      maximum_retry_attempts: 1
      retry_delay: 0.5
      on_failure: {queue: failures}
      dead_letter_queue: dlq
  fail0:
    runtime: python3.13
    handler: app.fail
    code: ./code
    async:
      maximum_retry_attempts: 0
      retry_delay: 0.5
      on_failure: {queue: failures0}
      dead_letter_queue: dlq0
  tunable:
    runtime: python3.13
    handler: app.fail
    code: ./code
    async: {maximum_retry_attempts: 2, retry_delay: 0.2, on_failure: {file: ./out/tunable.jsonl}}
  zero:
    runtime: python3.13
    handler: app.ok
    code: ./code
    reserved_concurrency: 0
    async: {on_failure: {file: ./out/zero.jsonl}, dead_letter_queue: zero-dlq}
  zeroed:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/zeroed-ok.jsonl}, on_failure: {file: ./out/zeroed.jsonl}}
  aged:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {maximum_event_age: 60, on_failure: {file: ./out/aged.jsonl}}
  capped:
    runtime: python3.13
    handler: app.nap
    code: ./code
    reserved_concurrency: 1
    async: {on_success: {file: ./out/capped.jsonl}}
  batch:
    runtime: python3.13
    handler: app.batch
    code: ./code
    provisioned_concurrency: 2  # warm: a batch takes well under the visibility timeout
    events:
      - {queue: jobs, batch_size: 5, report_batch_item_failures: true}
      - {queue: crashq, batch_size: 5}
  s3all:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/s3all.jsonl}}
    events: [{bucket: uploads, suffix: .csv, events: [created, removed]}]
  s3new:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/s3new.jsonl}}
    events: [{bucket: uploads, suffix: .csv, events: [created]}]
  tick:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/tick.jsonl}}
    events: [{schedule: "cron(* * * * ? *)"}]
  viacli:
    runtime: python3.13
    handler: app.ok
    code: ./code
  slowfail:
    runtime: python3.13
    handler: app.slowfail
    code: ./code
    timeout: 10
    async: {maximum_retry_attempts: 1, retry_delay: 300, dead_letter_queue: slow-dlq}
"""

TWIN_MANIFEST = """\
functions:
  tick:
    runtime: python3.13
    handler: app.ok
    code: ./code
    async: {on_success: {file: ./out/tick.jsonl}}
    events: [{schedule: "cron(* * * * ? *)"}]
"""


class Served:
    """A server of this module, where its project lives, and when it started."""

    def __init__(self, server: LrunServer, project: Path, started: float, twin: Restarted) -> None:
        self.server = server
        self.project = project
        self.started = started  # time.monotonic() just before `lrun serve` was started
        self.twin = twin

    @property
    def url(self) -> str:
        return self.server.url

    def out(self, name: str) -> Path:
        return self.project / "out" / f"{name}.jsonl"

    def log(self, function: str) -> str:
        path = self.server.state_dir / "logs" / f"{function}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class Restarted:
    """A scheduled function's project served, then served again after a restart, alongside the
    other tests: once the first run's schedule has fired, a thread stops that server and starts
    another on the same project and state directory."""

    RESTART_DEADLINE_S = 150.0  # for the first run's tick (a minute) and its cold start

    def __init__(self, project: Path, state: Path) -> None:
        self.project = project
        self.state = state
        self.first_out = project / "out" / "tick-first-run.jsonl"
        self.second_out = project / "out" / "tick.jsonl"
        self.error: BaseException | None = None
        self.second_started: float | None = None
        self.closing = threading.Event()
        self.started = time.monotonic()
        self.server = start_server(project, state, "--idle-ttl", "300")
        self.thread = threading.Thread(target=self._restart, name="restart-twin", daemon=True)
        self.thread.start()

    def _restart(self) -> None:
        try:
            ticked = self.project / "out" / "tick.jsonl"
            while not records(ticked):
                if self.closing.is_set():
                    return  # the module's tests are done (the rule test was not selected)
                if time.monotonic() > self.started + self.RESTART_DEADLINE_S:
                    raise AssertionError("the first run's schedule did not fire")
                time.sleep(0.5)
            self.server.finish()
            ticked.rename(self.first_out)
            self.second_started = time.monotonic()
            self.server = start_server(self.project, self.state, "--idle-ttl", "300")
        except BaseException as exc:  # pytest.fail raises a BaseException; the test re-raises
            self.error = exc

    def wait_restarted(self) -> float:
        """When the second run started; fails if the restart did not happen."""
        self.thread.join(max(1.0, self.started + self.RESTART_DEADLINE_S + 90 - time.monotonic()))
        assert not self.thread.is_alive(), "the scheduled function's server was not restarted"
        if self.error is not None:
            raise self.error
        assert self.second_started is not None
        return self.second_started

    def close(self) -> None:
        self.closing.set()
        self.thread.join(self.RESTART_DEADLINE_S + 120)
        self.server.finish()


def seed_aged_event(state_dir: Path) -> None:
    """Write an event received 120 s ago into the store, as no server runs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / "lrun.db")
    try:
        db.executescript(SCHEMA)
        then = time.time() - 120
        with db:
            db.execute(
                "INSERT INTO events (request_id, function, payload, received, next_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (AGED_ID, "aged", json.dumps(AGED_PAYLOAD).encode(), then, then),
            )
    finally:
        db.close()


def write_project(project: Path, manifest: str) -> Path:
    (project / "code").mkdir(parents=True)
    (project / "code" / "app.py").write_text(HANDLERS)
    (project / "lrun.yaml").write_text(manifest)
    return project


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("async")
    project = write_project(root / "project", MANIFEST)
    seed_aged_event(root / "state")
    started = time.monotonic()
    server = start_server(project, root / "state", "--idle-ttl", "300", "--max-concurrency", "20")
    try:
        twin = Restarted(write_project(root / "twin", TWIN_MANIFEST), root / "twin-state")
    except BaseException:
        server.clean_up()
        raise
    yield Served(server, project, started, twin)
    try:
        twin.close()
    finally:
        server.finish()


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )


@pytest.fixture(scope="module")
def client(served: Served) -> Any:
    return lambda_client(served.url)


# Helpers


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """``check()``'s first truthy value; fails naming ``what`` if none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def http(served: Served, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        served.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def queue_stats(served: Served, name: str) -> dict[str, Any]:
    stats: dict[str, Any] = http(served, "GET", f"/lrun/queues/{name}")
    return stats


def peek(served: Served, name: str) -> list[dict[str, Any]]:
    """Every message of a small queue, left visible (received with a visibility timeout of 0)."""
    body = {"max_messages": 10, "visibility_timeout": 0}
    messages: list[dict[str, Any]] = http(served, "POST", f"/lrun/queues/{name}/receive", body)[
        "messages"
    ]
    return messages


def wait_messages(served: Served, name: str, count: int, timeout: float = 60.0) -> list[Any]:
    """The queue's messages once it holds ``count``; then checks no more arrive."""
    wait_for(
        f"{count} message(s) in queue {name!r}",
        lambda: queue_stats(served, name)["depth"] >= count,
        timeout,
    )
    time.sleep(SETTLE_S)
    messages = peek(served, name)
    assert len(messages) == count, f"queue {name!r} holds {len(messages)}: {messages}"
    return messages


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_records(path: Path, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The destination file's records once it holds ``count``; then checks no more arrive."""
    wait_for(f"{count} record(s) in {path.name}", lambda: len(records(path)) >= count, timeout)
    time.sleep(SETTLE_S)
    found = records(path)
    assert len(found) == count, f"{path.name} holds {len(found)} records: {found}"
    return found


def starts(served: Served, function: str, request_id: str) -> int:
    return served.log(function).count(f"START RequestId: {request_id} Version: $LATEST\n")


def wait_invocations(served: Served, function: str, request_id: str, count: int) -> None:
    """The log shows exactly ``count`` finished invocations of ``request_id``, and no more come."""
    report = f"REPORT RequestId: {request_id}\t"
    wait_for(
        f"{count} REPORT line(s) of {request_id} in {function}.log",
        lambda: served.log(function).count(report) >= count,
    )
    time.sleep(SETTLE_S)
    log = served.log(function)
    assert log.count(report) == count, log
    assert starts(served, function, request_id) == count, log


def event_invoke(client: Any, function: str, payload: Any) -> str:
    response = client.invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    request_id: str = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert REQUEST_ID.fullmatch(request_id), request_id
    return request_id


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def code_of(error: ClientError) -> str:
    code: str = error.response["Error"]["Code"]
    return code


def check_context(record: dict[str, Any], function: str, request_id: str, condition: str) -> None:
    assert record["version"] == "1.0"
    assert TIMESTAMP.fullmatch(record["timestamp"]), record["timestamp"]
    context = record["requestContext"]
    assert context["requestId"] == request_id
    assert context["functionArn"] == f"{FUNCTION_ARN}:{function}:$LATEST"
    assert context["condition"] == condition


def attribute(message: dict[str, Any], name: str) -> tuple[str, str]:
    """(data type, string value) of a message attribute."""
    found = message["attributes"][name]
    return found["dataType"], found["stringValue"]


# 1. Event invocation and its on-success destination


def test_event_runs_once_and_its_success_record_goes_to_the_file(
    client: Any, served: Served
) -> None:
    payload = {"order": 7, "items": ["a", "b"]}
    request_id = event_invoke(client, "ok", payload)
    (record,) = wait_records(served.out("ok"), 1)
    check_context(record, "ok", request_id, "Success")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == payload
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    # The function saw the request id the 202 carried.
    assert record["responsePayload"] == {"got": payload, "requestId": request_id}
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    wait_invocations(served, "ok", request_id, 1)


# 2. Retries, on-failure destination and dead-letter queue


def test_function_error_is_retried_exactly_then_goes_to_on_failure_and_the_dlq(
    client: Any, served: Served
) -> None:
    payload = {"retry": "me"}
    request_id = event_invoke(client, "fail", payload)
    (message,) = wait_messages(served, "failures", 1)
    record = json.loads(message["body"])
    check_context(record, "fail", request_id, "RetriesExhausted")
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == payload
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == f"boom: {json.dumps(payload)}"
    # Both attempts carried the same request id.
    wait_invocations(served, "fail", request_id, 2)

    (dead,) = wait_messages(served, "dlq", 1)
    assert json.loads(dead["body"]) == payload
    assert attribute(dead, "RequestID") == ("String", request_id)
    assert attribute(dead, "ErrorCode") == ("Number", "200")
    data_type, error_message = attribute(dead, "ErrorMessage")
    assert data_type == "String" and error_message == f"boom: {json.dumps(payload)}"


def test_no_retries_means_exactly_one_invocation(client: Any, served: Served) -> None:
    payload = {"once": "x" * 2000}  # the error message repeats it: over the DLQ's 1 KB
    request_id = event_invoke(client, "fail0", payload)
    (message,) = wait_messages(served, "failures0", 1)
    record = json.loads(message["body"])
    check_context(record, "fail0", request_id, "RetriesExhausted")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"]["functionError"] == "Unhandled"
    wait_invocations(served, "fail0", request_id, 1)
    (dead,) = wait_messages(served, "dlq0", 1)
    assert json.loads(dead["body"]) == payload
    assert attribute(dead, "RequestID") == ("String", request_id)
    _, error_message = attribute(dead, "ErrorMessage")
    assert error_message == f"boom: {json.dumps(payload)}"[:1024]  # the first 1 KB


def test_event_payload_over_1_mb_is_refused(client: Any) -> None:
    big = json.dumps({"x": "y" * 1_048_576}).encode()
    error = error_of(
        lambda: client.invoke(FunctionName="viacli", InvocationType="Event", Payload=big)
    )
    assert code_of(error) == "RequestEntityTooLargeException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 413


# 3. FunctionEventInvokeConfig


def test_event_invoke_config_lifecycle_overrides_the_manifest(client: Any, served: Served) -> None:
    missing = error_of(lambda: client.get_function_event_invoke_config(FunctionName="tunable"))
    assert code_of(missing) == "ResourceNotFoundException"
    failed_arn = f"{QUEUE_ARN}:failed"
    put = client.put_function_event_invoke_config(
        FunctionName="tunable",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failed_arn}},
    )
    assert put["FunctionArn"] == f"{FUNCTION_ARN}:tunable:$LATEST"
    assert put["MaximumRetryAttempts"] == 0
    assert "MaximumEventAgeInSeconds" not in put  # AWS echoes only what was set
    assert put["DestinationConfig"]["OnFailure"] == {"Destination": failed_arn}
    assert put["DestinationConfig"]["OnSuccess"] == {}

    # The put wins over the manifest's 2 retries and file destination.
    request_id = event_invoke(client, "tunable", {"put": 1})
    (message,) = wait_messages(served, "failed", 1)
    record = json.loads(message["body"])
    check_context(record, "tunable", request_id, "RetriesExhausted")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    wait_invocations(served, "tunable", request_id, 1)
    assert records(served.out("tunable")) == []

    updated = client.update_function_event_invoke_config(
        FunctionName="tunable", MaximumEventAgeInSeconds=120
    )
    assert updated["MaximumEventAgeInSeconds"] == 120
    assert updated["MaximumRetryAttempts"] == 0  # merged, not reset
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": failed_arn}
    got = client.get_function_event_invoke_config(FunctionName="tunable")
    shown = {k: v for k, v in got.items() if k != "ResponseMetadata"}
    assert shown == {k: v for k, v in updated.items() if k != "ResponseMetadata"}
    listed = client.list_function_event_invoke_configs(FunctionName="tunable")
    assert listed["FunctionEventInvokeConfigs"] == [shown]

    empty = error_of(lambda: client.put_function_event_invoke_config(FunctionName="tunable"))
    assert code_of(empty) == "InvalidParameterValueException"
    too_many = error_of(
        lambda: client.put_function_event_invoke_config(
            FunctionName="tunable", MaximumRetryAttempts=3
        )
    )
    assert code_of(too_many) == "ValidationException"  # the model's range, as AWS checks it
    itself = error_of(
        lambda: client.update_function_event_invoke_config(
            FunctionName="tunable",
            DestinationConfig={"OnSuccess": {"Destination": f"{FUNCTION_ARN}:tunable"}},
        )
    )
    assert code_of(itself) == "InvalidParameterValueException"
    after = client.get_function_event_invoke_config(FunctionName="tunable")
    assert {k: v for k, v in after.items() if k != "ResponseMetadata"} == shown  # unchanged

    client.delete_function_event_invoke_config(FunctionName="tunable")
    gone = error_of(lambda: client.get_function_event_invoke_config(FunctionName="tunable"))
    assert code_of(gone) == "ResourceNotFoundException"
    assert (
        client.list_function_event_invoke_configs(FunctionName="tunable")[
            "FunctionEventInvokeConfigs"
        ]
        == []
    )
    again = error_of(lambda: client.delete_function_event_invoke_config(FunctionName="tunable"))
    assert code_of(again) == "ResourceNotFoundException"

    # Deleted: the manifest's settings apply again (2 retries, the file destination).
    request_id = event_invoke(client, "tunable", {"manifest": 1})
    (record,) = wait_records(served.out("tunable"), 1)
    check_context(record, "tunable", request_id, "RetriesExhausted")
    assert record["requestContext"]["approximateInvokeCount"] == 3
    wait_invocations(served, "tunable", request_id, 3)
    assert queue_stats(served, "failed")["depth"] == 1  # still only the first record


def test_event_invoke_config_of_an_unknown_function_is_not_found(client: Any) -> None:
    error = error_of(
        lambda: client.put_function_event_invoke_config(FunctionName="nope", MaximumRetryAttempts=0)
    )
    assert code_of(error) == "ResourceNotFoundException"


# 4. Events that are never run: zero reserved concurrency, maximum event age


def test_zero_reserved_concurrency_discards_the_event_at_once(client: Any, served: Served) -> None:
    payload = {"zero": 1}
    request_id = event_invoke(client, "zero", payload)
    (record,) = wait_records(served.out("zero"), 1)
    check_context(record, "zero", request_id, "ZeroReservedConcurrency")
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == payload
    assert "responseContext" not in record and "responsePayload" not in record
    (dead,) = wait_messages(served, "zero-dlq", 1)
    assert json.loads(dead["body"]) == payload
    assert attribute(dead, "RequestID") == ("String", request_id)
    assert starts(served, "zero", request_id) == 0


def test_reserved_concurrency_put_to_zero_discards_events_until_deleted(
    client: Any, served: Served
) -> None:
    client.put_function_concurrency(FunctionName="zeroed", ReservedConcurrentExecutions=0)
    try:
        discarded = event_invoke(client, "zeroed", {"while": "zero"})
        (record,) = wait_records(served.out("zeroed"), 1)
        check_context(record, "zeroed", discarded, "ZeroReservedConcurrency")
    finally:
        client.delete_function_concurrency(FunctionName="zeroed")
    ran = event_invoke(client, "zeroed", {"while": "unreserved"})
    (record,) = wait_records(served.out("zeroed-ok"), 1)
    check_context(record, "zeroed", ran, "Success")
    assert starts(served, "zeroed", discarded) == 0


def test_event_older_than_the_maximum_age_is_discarded_unrun(served: Served) -> None:
    (record,) = wait_records(served.out("aged"), 1)
    check_context(record, "aged", AGED_ID, "EventAgeExceeded")
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == AGED_PAYLOAD
    assert "responseContext" not in record and "responsePayload" not in record
    assert "START RequestId" not in served.log("aged")
    rows = http(served, "GET", "/lrun/events")
    (aged,) = [row for row in rows if row["function"] == "aged"]
    assert aged["depth"] == 0  # forgotten once discarded


def test_throttled_events_wait_and_are_not_counted_as_attempts(client: Any, served: Served) -> None:
    # Reserved concurrency 1: the second event is throttled while the first naps, and retried.
    first = event_invoke(client, "capped", {"s": 2})
    second = event_invoke(client, "capped", {"s": 2})
    found = wait_records(served.out("capped"), 2, timeout=60)
    by_id = {r["requestContext"]["requestId"]: r for r in found}
    assert set(by_id) == {first, second}
    for request_id, record in by_id.items():
        check_context(record, "capped", request_id, "Success")
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["responsePayload"] == {"napped": 2}
        wait_invocations(served, "capped", request_id, 1)


# 5. Queue event source mapping


def batches_of(log: str, queue: str) -> list[dict[str, Any]]:
    """The batches from ``queue`` that the ``batch`` handler printed to its log."""
    marker = "BATCH "
    batches = [
        json.loads(line[line.index(marker) + len(marker) :])
        for line in log.splitlines()
        if marker + "{" in line
    ]
    return [b for b in batches if b["records"][0]["eventSourceARN"] == f"{QUEUE_ARN}:{queue}"]


def provisioned_status(client: Any, function: str) -> str:
    # The manifest's provisioned_concurrency is on the alias live, which its triggers invoke.
    config = client.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    status: str = config["Status"]
    return status


def wait_provisioned(client: Any, function: str) -> None:
    # As on AWS, a batch must finish within the queue's visibility timeout or its messages come
    # back while still being processed; cold starts on a loaded machine can take longer, so the
    # batches run in the function's provisioned (warm) environments.
    wait_for(
        f"{function}'s provisioned concurrency READY",
        lambda: provisioned_status(client, function) == "READY",
        timeout=120,
    )


def test_queue_mapping_batches_deletes_successes_and_redrives_failures(
    client: Any, served: Served
) -> None:
    wait_provisioned(client, "batch")
    bodies = [f"{'bad' if i in (3, 7, 10) else 'good'} {i}" for i in range(12)]
    bad = {b for b in bodies if b.startswith("bad")}
    http(served, "POST", "/lrun/queues/jobs/messages", {"messages": bodies})

    def drained() -> bool:
        stats = queue_stats(served, "jobs")
        return (stats["depth"], stats["in_flight"], stats["dead_letter_depth"]) == (0, 0, 3)

    # Bad messages are received twice (visibility timeout 10 s each), then redriven.
    wait_for("jobs drained with the 3 bad messages in jobs-dlq", drained, timeout=60)
    expected_deliveries = len(bodies) + len(bad)  # bad ones twice
    wait_for(
        f"{expected_deliveries} messages delivered in the batch log",
        lambda: (
            sum(len(b["records"]) for b in batches_of(served.log("batch"), "jobs"))
            >= expected_deliveries
        ),
    )
    time.sleep(SETTLE_S)
    batches = batches_of(served.log("batch"), "jobs")
    assert all(1 <= len(b["records"]) <= 5 for b in batches), [len(b["records"]) for b in batches]
    delivered: dict[str, list[str]] = {}
    for b in batches:
        for r in b["records"]:
            delivered.setdefault(r["body"], []).append(r["attributes"]["ApproximateReceiveCount"])
    assert set(delivered) == set(bodies)
    for body, counts in delivered.items():
        expected = ["1", "2"] if body in bad else ["1"]
        assert sorted(counts) == expected, (body, counts)  # good ones deleted after one batch

    record = batches[0]["records"][0]
    assert batches[0]["keys"] == sorted(
        [
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "eventSource",
            "eventSourceARN",
            "awsRegion",
        ]
    )
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"{QUEUE_ARN}:jobs"
    assert record["awsRegion"] == REGION
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert REQUEST_ID.fullmatch(record["messageId"])
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"] == {}

    dead = peek(served, "jobs-dlq")
    assert sorted(m["body"] for m in dead) == sorted(bad)


def test_queue_mapping_function_error_returns_the_whole_batch(client: Any, served: Served) -> None:
    wait_provisioned(client, "batch")
    http(served, "POST", "/lrun/queues/crashq/messages", {"messages": ["fine 1", "crash 2"]})

    def drained() -> bool:
        stats = queue_stats(served, "crashq")
        return (stats["depth"], stats["in_flight"], stats["dead_letter_depth"]) == (0, 0, 2)

    # The handler throws: nothing is deleted, both come back after the visibility timeout (10 s),
    # and their one receive (max_receive_count 1) spent, both go to the dead-letter queue.
    wait_for("both crashq messages in crash-dlq", drained, timeout=60)
    dead = peek(served, "crash-dlq")
    assert sorted(m["body"] for m in dead) == ["crash 2", "fine 1"]
    time.sleep(SETTLE_S)
    batches = batches_of(served.log("batch"), "crashq")
    delivered = sorted(r["body"] for b in batches for r in b["records"])
    assert delivered == ["crash 2", "fine 1"], batches  # once each, not retried in between
    assert "RuntimeError" in served.log("batch")


# 6. Bucket file events


def put_file(path: Path, content: bytes) -> None:
    """Write whole, as an upload lands: under a hidden name (not an object), then renamed."""
    hidden = path.with_name(f".{path.name}.part")
    hidden.write_bytes(content)
    os.replace(hidden, path)


def s3_records(path: Path) -> list[dict[str, Any]]:
    return [r["requestPayload"]["Records"][0] for r in records(path)]


def test_bucket_files_raise_s3_events_filtered_by_suffix_and_kind(served: Served) -> None:
    uploads = served.project / "uploads"
    content = b"id,name\n1,lrun\n"
    put_file(uploads / "skip.txt", b"not a csv\n")
    put_file(uploads / "data.csv", content)
    wait_records(served.out("s3new"), 1)
    (created,) = s3_records(served.out("s3all"))
    assert created["eventVersion"] == "2.1"
    assert created["eventSource"] == "aws:s3"
    assert created["awsRegion"] == REGION
    assert TIMESTAMP.fullmatch(created["eventTime"]), created["eventTime"]
    assert created["eventName"] == "ObjectCreated:Put"
    assert set(created) >= {"userIdentity", "requestParameters", "responseElements"}
    s3 = created["s3"]
    assert s3["s3SchemaVersion"] == "1.0"
    assert s3["bucket"]["name"] == "uploads"
    assert s3["bucket"]["arn"] == "arn:aws:s3:::uploads"
    assert s3["object"]["key"] == "data.csv"
    assert s3["object"]["size"] == len(content)
    assert s3["object"]["eTag"] == hashlib.md5(content).hexdigest()
    assert s3_records(served.out("s3new"))[0]["s3"]["object"]["key"] == "data.csv"

    (uploads / "data.csv").unlink()
    removed = wait_records(served.out("s3all"), 2)[1]["requestPayload"]["Records"][0]
    assert removed["eventName"] == "ObjectRemoved:Delete"
    assert removed["s3"]["object"]["key"] == "data.csv"
    assert "eTag" not in removed["s3"]["object"]
    assert removed["s3"]["object"]["sequencer"] > s3["object"]["sequencer"]
    assert len(records(served.out("s3new"))) == 1  # created only: no removal event

    # Keys are the path under the bucket, '/'-separated and URL-encoded ('+' for a space).
    (uploads / "in box").mkdir()
    put_file(uploads / "in box" / "q 1.csv", b"q\n")
    nested = wait_records(served.out("s3new"), 2)[1]["requestPayload"]["Records"][0]
    assert nested["s3"]["object"]["key"] == "in+box/q+1.csv"


# 8. The command line


def test_lrun_invoke_async_prints_202_and_its_request_id(
    lrun: Lrun, served: Served, tmp_path: Path
) -> None:
    done = lrun(
        "invoke",
        "viacli",
        "--async",
        "--payload",
        '{"via": "cli"}',
        cwd=served.project,
        env=served.server.env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    printed = json.loads(lines[0])
    assert set(printed) == {"StatusCode", "RequestId"} and printed["StatusCode"] == 202
    assert REQUEST_ID.fullmatch(printed["RequestId"])
    wait_invocations(served, "viacli", printed["RequestId"], 1)
    unknown = lrun(
        "invoke", "nope", "--async", "--payload", "{}", cwd=served.project, env=served.server.env
    )
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert "ResourceNotFoundException" in unknown.stderr and "nope" in unknown.stderr


def test_lrun_invoke_async_without_a_server_says_to_start_one(lrun: Lrun, tmp_path: Path) -> None:
    project = tmp_path / "alone"
    project.mkdir()
    (project / "lrun.yaml").write_text(
        "functions:\n  f: {runtime: python3.13, handler: app.ok, code: .}\n"
    )
    env = {"LRUN_STATE_DIR": str(tmp_path / "no-server-state")}
    done = lrun("invoke", "f", "--async", "--payload", "{}", cwd=project, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and "lrun serve" in done.stderr
    events = lrun("events", "--json", cwd=project, env=env)
    assert events.returncode == 2 and len(events.stderr.strip().splitlines()) == 1
    assert "lrun serve" in events.stderr


def test_lrun_events_shows_depth_in_flight_retries_and_dlq(
    lrun: Lrun, client: Any, served: Served
) -> None:
    def row(function: str) -> dict[str, Any]:
        done = lrun("events", "--json", env=served.server.env)
        assert done.returncode == 0, done.stderr
        rows: dict[str, dict[str, Any]] = {r["function"]: r for r in json.loads(done.stdout)}
        return rows[function]

    event_invoke(client, "slowfail", {"s": 3})
    running = wait_for(
        "slowfail's event shown running", lambda: (r := row("slowfail"))["in_flight"] == 1 and r
    )
    assert running["retries_pending"] == 0
    waiting = wait_for(
        "slowfail's event shown waiting for its retry",
        lambda: (r := row("slowfail"))["retries_pending"] == 1 and r,
    )
    assert waiting["depth"] == 1 and waiting["in_flight"] == 0
    assert waiting["oldest_age_s"] >= 3
    assert waiting["dead_letter_queue"] == "slow-dlq" and waiting["dead_letter_depth"] == 0
    done = lrun("events", "--json", env=served.server.env)
    rows = {r["function"]: r for r in json.loads(done.stdout)}
    assert set(rows) >= {"ok", "fail", "batch", "tick", "viacli"}  # every function is listed
    assert set(rows["viacli"]) == {
        "function",
        "depth",
        "oldest_age_s",
        "in_flight",
        "retries_pending",
        "dead_letter_queue",
        "dead_letter_depth",
    }
    assert rows["viacli"]["dead_letter_queue"] is None
    assert rows["viacli"]["dead_letter_depth"] is None
    table = lrun("events", env=served.server.env)
    assert table.returncode == 0 and "slowfail" in table.stdout and "slow-dlq" in table.stdout


def test_lrun_queue_ls_shows_depth_in_flight_age_and_dlq_depth(lrun: Lrun, served: Served) -> None:
    env = served.server.env
    for body in ("one", "two"):
        sent = lrun("queue", "send", "cli-q", body, env=env)
        assert sent.returncode == 0, sent.stderr
    # Received once and visible again at once: its receives (1) are spent, so the next
    # receive moves it to cli-dlq and hands out "two", which stays in flight.
    first = lrun("queue", "receive", "cli-q", "--visibility-timeout", "0", env=env)
    assert first.returncode == 0 and json.loads(first.stdout)["body"] == "one", first.stderr
    second = lrun("queue", "receive", "cli-q", env=env)
    assert second.returncode == 0 and json.loads(second.stdout)["body"] == "two", second.stderr
    listed = lrun("queue", "ls", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) >= {"jobs", "jobs-dlq", "cli-q", "cli-dlq", "failed"}
    cli_q = rows["cli-q"]
    assert cli_q["depth"] == 0 and cli_q["in_flight"] == 1
    assert cli_q["oldest_age_s"] is not None and cli_q["oldest_age_s"] >= 0
    assert cli_q["dead_letter_queue"] == "cli-dlq" and cli_q["dead_letter_depth"] == 1
    cli_dlq = rows["cli-dlq"]
    assert (cli_dlq["depth"], cli_dlq["in_flight"]) == (1, 0)
    assert cli_dlq["dead_letter_queue"] is None and cli_dlq["dead_letter_depth"] is None
    table = lrun("queue", "ls", env=env)
    assert table.returncode == 0 and "cli-dlq" in table.stdout


# 7. Schedules (last: by now the first tick has usually fired)


def test_schedule_fires_an_eventbridge_scheduled_event(served: Served) -> None:
    # cron(* * * * ? *): at the next whole minute after the server started, then each minute.
    left = max(10.0, served.started + 120 - time.monotonic())
    wait_for("a scheduled event for tick", lambda: records(served.out("tick")), timeout=left)
    record = records(served.out("tick"))[0]
    assert record["requestContext"]["condition"] == "Success"
    event = record["requestPayload"]
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {}
    assert event["version"] == "0"
    assert event["account"] == ACCOUNT and event["region"] == REGION
    assert REQUEST_ID.fullmatch(event["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", event["time"]), event["time"]
    (rule,) = event["resources"]
    assert re.fullmatch(rf"arn:aws:events:{REGION}:{ACCOUNT}:rule/[A-Za-z0-9._-]+", rule), rule


def test_schedule_rule_arn_is_the_same_after_a_restart(served: Served) -> None:
    twin = served.twin
    second_started = twin.wait_restarted()
    left = max(10.0, second_started + 120 - time.monotonic())
    wait_for("a scheduled event after the restart", partial(records, twin.second_out), left)
    before = records(twin.first_out)[0]["requestPayload"]["resources"]
    after = records(twin.second_out)[0]["requestPayload"]["resources"]
    # The same manifest, function and schedule expression: the same EventBridge rule.
    assert before == after


# Destinations that cannot take the record; events accepted before a crash


def test_unwritable_file_destination_does_not_rerun_the_event(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = tmp_path / "blocked"
    write_project(
        project,
        "functions:\n"
        "  blocked:\n"
        "    runtime: python3.13\n"
        "    handler: app.ok\n"
        "    code: ./code\n"
        "    async: {on_success: {file: ./blocker/out.jsonl}}\n",
    )
    (project / "blocker").write_text("a file, so no directory can be made here\n")
    server = serve_lrun(project)
    lambda_api = lambda_client(server.url)
    request_id = event_invoke(lambda_api, "blocked", {"n": 1})
    log_file = server.state_dir / "logs" / "blocked.log"

    def log() -> str:
        return log_file.read_text(errors="replace") if log_file.exists() else ""

    wait_for(
        "the event's invocation in blocked.log", lambda: f"REPORT RequestId: {request_id}" in log()
    )
    time.sleep(SETTLE_S)
    # As for a queue that refuses the record: the record is dropped, the failure reported, and
    # the event, which ran successfully, is not run again.
    invocations = log().count(f"START RequestId: {request_id} ")
    rows = server.get("/lrun/events")
    (row,) = [r for r in rows if r["function"] == "blocked"]
    assert invocations == 1, f"the event ran {invocations} times"
    assert row["depth"] == 0
    target = str(project / "blocker" / "out.jsonl")
    wait_for(f"the server reporting it could not write {target}", lambda: target in server.output())
    server.finish()


def test_event_accepted_before_a_sigkill_runs_after_the_restart(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "durable",
        "functions:\n"
        "  durable:\n"
        "    runtime: python3.13\n"
        "    handler: app.ok\n"
        "    code: ./code\n"
        "    async: {on_success: {file: ./out/durable.jsonl}}\n",
    )
    state = tmp_path / "durable-state"
    first = start_server(project, state)
    try:
        request_id = event_invoke(lambda_client(first.url), "durable", {"kept": True})
        first.process.kill()  # SIGKILL: no chance to finish anything (a cold start is running)
        first.process.wait(30)
    finally:
        first.clean_up()
    second = start_server(project, state)
    try:
        found = wait_records(project / "out" / "durable.jsonl", 1)
        check_context(found[0], "durable", request_id, "Success")
        assert found[0]["requestPayload"] == {"kept": True}
        second.finish()
    finally:
        second.clean_up()
