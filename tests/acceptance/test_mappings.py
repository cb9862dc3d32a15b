"""Event source mappings through the Lambda API (issue 10, point 5), driven by boto3 and the AWS
CLI against a real `lrun serve`: create (disabled, then enabled), a batch reaching the function,
a filter dropping messages (deleted unseen, as on AWS), update, list and get, AWS's errors, a
manifest-declared mapping with a ``filter:`` (listed, refused changes), delete, and the API's
mappings surviving a restart of the server on the same state directory.

The function prints what it was given; the server's invocation log (``<state>/logs/``) shows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.acceptance.conftest import LrunServer, start_server

ARN = "arn:aws:sqs:us-east-1:000000000000:{}"
ORDERS_ONLY = json.dumps({"body": {"kind": ["order"]}})

MANIFEST = """\
queues:
  jobs: {visibility_timeout: 30}
  declared: {visibility_timeout: 30}
functions:
  consumer:
    runtime: python3.13
    code: ./code
    handler: app.handler
  watcher:
    runtime: python3.13
    code: ./code
    handler: app.handler
    events:
      - queue: declared
        batch_size: 5
        filter: {body: {kind: [order]}}
"""

HANDLER = """\
def handler(event, context):
    bodies = [r["body"] for r in event["Records"]]
    print("BATCH", len(bodies))
    for body in bodies:
        print("SEEN", body)
    return {"batchItemFailures": []}
"""


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}),
    )


def aws_cli(server: LrunServer, tmp_path: Path) -> Callable[..., Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def run(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", server.url],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    return run


def send(server: LrunServer, queue: str, *bodies: str) -> None:
    path = f"/lrun/queues/{queue}/messages"
    data = json.dumps({"messages": list(bodies)}).encode()
    headers = {"Content-Type": "application/json", **server.signature("POST", path, data)}
    request = urllib.request.Request(server.url + path, data, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def figures(server: LrunServer, queue: str) -> tuple[int, int]:
    stats = server.get(f"/lrun/queues/{queue}")
    return stats["depth"], stats["in_flight"]


def seen(server: LrunServer, function: str) -> list[str]:
    path = server.state_dir / "logs" / f"{function}.log"
    text = path.read_text() if path.exists() else ""
    return [line.split("SEEN ", 1)[1] for line in text.splitlines() if "SEEN " in line]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)
    return value


def error_of(call: Callable[[], Any]) -> tuple[int, str, str, str]:
    with pytest.raises(Exception) as caught:
        call()
    response = caught.value.response  # type: ignore[attr-defined]
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype", ""),
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_mappings_through_the_api(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "code").mkdir(parents=True)
    (project / "code" / "app.py").write_text(HANDLER)
    (project / "lrun.yaml").write_text(MANIFEST)
    state = tmp_path / "state"
    server = start_server(project, state, "--idle-ttl", "300")
    try:
        client = lambda_client(server.url)
        aws = aws_cli(server, tmp_path)

        # Create, disabled, with a filter: nothing is received.
        created = client.create_event_source_mapping(
            EventSourceArn=ARN.format("jobs"),
            FunctionName="consumer",
            Enabled=False,
            BatchSize=5,
            FilterCriteria={"Filters": [{"Pattern": ORDERS_ONLY}]},
        )
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert created["State"] == "Creating"
        key = created["UUID"]
        assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:consumer"
        assert created["EventSourceArn"] == ARN.format("jobs")
        assert created["StateTransitionReason"] == "USER_INITIATED"
        got = client.get_event_source_mapping(UUID=key)
        assert (got["State"], got["BatchSize"]) == ("Disabled", 5)
        assert got["FilterCriteria"] == {"Filters": [{"Pattern": ORDERS_ONLY}]}
        send(server, "jobs", '{"kind": "order", "n": 1}', '{"kind": "refund", "n": 2}', "plain")
        time.sleep(1.5)
        assert figures(server, "jobs") == (3, 0)  # disabled: nothing taken

        # Enable and change the batch size with the AWS CLI: the orders reach the function,
        # the others are deleted unseen.
        updated = aws(
            "update-event-source-mapping", "--uuid", key, "--enabled", "--batch-size", "10"
        )
        assert (updated["State"], updated["BatchSize"]) == ("Enabling", 10)
        assert client.get_event_source_mapping(UUID=key)["State"] == "Enabled"
        wait_for("the queue emptied", lambda: figures(server, "jobs") == (0, 0))
        wait_for("the order seen", lambda: seen(server, "consumer"))
        time.sleep(0.5)  # the log is written behind
        assert seen(server, "consumer") == ['{"kind": "order", "n": 1}']

        # Disable again: Disabling, then Disabled, and messages stay.
        off = client.update_event_source_mapping(UUID=key, Enabled=False)
        assert off["State"] == "Disabling"
        assert client.get_event_source_mapping(UUID=key)["State"] == "Disabled"
        send(server, "jobs", '{"kind": "order", "n": 3}')
        time.sleep(1.5)
        assert figures(server, "jobs") == (1, 0)

        # The manifest's mapping: listed, filtering, and not the API's to change.
        declared = client.list_event_source_mappings(EventSourceArn=ARN.format("declared"))
        (manifest_mapping,) = declared["EventSourceMappings"]
        assert manifest_mapping["State"] == "Enabled"
        assert manifest_mapping["FunctionArn"].endswith(":function:watcher")
        assert json.loads(manifest_mapping["FilterCriteria"]["Filters"][0]["Pattern"]) == {
            "body": {"kind": ["order"]}
        }
        send(server, "declared", '{"kind": "order", "n": 10}', '{"kind": "refund", "n": 11}')
        wait_for("the declared queue emptied", lambda: figures(server, "declared") == (0, 0))
        wait_for("the watcher saw the order", lambda: seen(server, "watcher"))
        time.sleep(0.5)
        assert seen(server, "watcher") == ['{"kind": "order", "n": 10}']
        status, header, code, message = error_of(
            lambda: client.update_event_source_mapping(UUID=manifest_mapping["UUID"], BatchSize=1)
        )
        assert (status, header, code) == (409, "ResourceConflictException", code)
        assert code == "ResourceConflictException" and "lrun.yaml" in message

        # List: both, by function, paged.
        every = aws("list-event-source-mappings")["EventSourceMappings"]
        assert {m["UUID"] for m in every} == {key, manifest_mapping["UUID"]}
        mine = aws("list-event-source-mappings", "--function-name", "consumer")
        assert [m["UUID"] for m in mine["EventSourceMappings"]] == [key]
        first = client.list_event_source_mappings(MaxItems=1)
        assert len(first["EventSourceMappings"]) == 1 and "NextMarker" in first
        second = client.list_event_source_mappings(MaxItems=1, Marker=first["NextMarker"])
        assert len(second["EventSourceMappings"]) == 1 and "NextMarker" not in second
        paged = {first["EventSourceMappings"][0]["UUID"], second["EventSourceMappings"][0]["UUID"]}
        assert paged == {key, manifest_mapping["UUID"]}

        # AWS's errors.
        assert error_of(
            lambda: client.create_event_source_mapping(
                EventSourceArn=ARN.format("jobs"), FunctionName="consumer"
            )
        ) == (
            409,
            "ResourceConflictException",
            "ResourceConflictException",
            f'An event source mapping with SQS arn (" {ARN.format("jobs")} ") and function '
            f'(" consumer ") already exists. Please update or delete the existing mapping with '
            f"UUID {key}",
        )
        missing = "00000000-0000-0000-0000-000000000000"
        assert error_of(lambda: client.get_event_source_mapping(UUID=missing)) == (
            404,
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
        )
        assert error_of(
            lambda: client.create_event_source_mapping(
                EventSourceArn=ARN.format("declared"), FunctionName="consumer", BatchSize=20
            )
        ) == (
            400,
            "InvalidParameterValueException",
            "InvalidParameterValueException",
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10",
        )
        assert error_of(
            lambda: client.create_event_source_mapping(
                EventSourceArn=ARN.format("nope"), FunctionName="consumer"
            )
        )[2:] == (
            "InvalidParameterValueException",
            "Error occurred while ReceiveMessage. SQS Error Code: "
            "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue "
            "does not exist or you do not have access to it.",
        )
        assert error_of(
            lambda: client.create_event_source_mapping(
                EventSourceArn=ARN.format("declared"), FunctionName="nobody"
            )
        )[2:] == ("InvalidParameterValueException", "Function does not exist")
        assert error_of(lambda: client.update_event_source_mapping(UUID=key, BatchSize=20000))[
            :3
        ] == (400, "ValidationException", "ValidationException")
        assert error_of(
            lambda: client.update_event_source_mapping(
                UUID=key, FilterCriteria={"Filters": [{"Pattern": '{"body": "x"}'}]}
            )
        )[2:] == ("InvalidParameterValueException", "Invalid filter pattern definition.")
        server.finish()

        # A new life on the same state directory: the mapping is back, as it was.
        server = start_server(project, state, "--idle-ttl", "300")
        client = lambda_client(server.url)
        aws = aws_cli(server, tmp_path)
        again = client.get_event_source_mapping(UUID=key)
        assert (again["State"], again["BatchSize"]) == ("Disabled", 10)
        assert again["FilterCriteria"] == {"Filters": [{"Pattern": ORDERS_ONLY}]}
        assert again["LastModified"] == off["LastModified"]
        assert figures(server, "jobs") == (1, 0)  # the order sent while it was disabled

        # Delete with the AWS CLI, then create it again, enabled, with a partial-batch setting.
        deleted = aws("delete-event-source-mapping", "--uuid", key)
        assert deleted["State"] == "Deleting"
        assert error_of(lambda: client.get_event_source_mapping(UUID=key))[0] == 404
        recreated = client.create_event_source_mapping(
            EventSourceArn=ARN.format("jobs"),
            FunctionName="consumer",
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": 2},
        )
        assert recreated["State"] == "Creating"
        assert recreated["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert recreated["ScalingConfig"] == {"MaximumConcurrency": 2}
        assert "FilterCriteria" not in recreated
        wait_for("the queue emptied", lambda: figures(server, "jobs") == (0, 0))
        wait_for("the order seen", lambda: '{"kind": "order", "n": 3}' in seen(server, "consumer"))
        assert client.get_event_source_mapping(UUID=recreated["UUID"])["State"] == "Enabled"
        server.finish()
    finally:
        server.clean_up()


def test_manifest_filter_errors_are_located(tmp_path: Path) -> None:
    """A bad ``filter:`` is a manifest error naming the place, not a traceback."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(HANDLER)
    (tmp_path / "lrun.yaml").write_text(
        MANIFEST.replace("filter: {body: {kind: [order]}}", "filter: {body: {kind: order}}")
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "functions.watcher.events[0].filter" in done.stderr + done.stdout
    assert "orchestrator/" not in done.stderr
