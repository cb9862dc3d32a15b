"""Logs by group and stream through the CloudWatch Logs API (issue 14 item 1): a real `lrun serve`
with real containers; boto3's ``logs`` client, the AWS CLI (``aws logs ...``) and `lrun logs`
read the START / output / END / REPORT of invocations made with boto3's ``lambda`` client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.acceptance.conftest import Lrun, LrunServer, start_server

HANDLER = """\
import json, logging
logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    print("plain line", event.get("tag"))
    logging.error("an error line %s", event.get("tag"))
    print(json.dumps({"level": "WARN", "message": "structured", "tag": event.get("tag")}))
    return {"ok": True}
"""
MANIFEST = """\
functions:
  text: {runtime: python3.13, handler: app.handler, code: ./fn}
  structured:
    runtime: python3.13
    handler: app.handler
    code: ./fn
    logging: {format: JSON, log_group: /custom/structured}
"""
STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("logs-api")
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text(HANDLER)
    (directory / "lrun.yaml").write_text(MANIFEST)
    return directory


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    started = start_server(project, tmp_path_factory.mktemp("logs-api") / "state")
    invoke(started, "text", "first")
    invoke(started, "text", "second")
    invoke(started, "structured", "third")
    yield started
    started.finish()


def client(server: LrunServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def invoke(server: LrunServer, function: str, tag: str) -> str:
    response = client(server, "lambda").invoke(
        FunctionName=function, Payload=json.dumps({"tag": tag}).encode()
    )
    assert json.loads(response["Payload"].read()) == {"ok": True}
    return str(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def wait_for(logs: Any, group: str, needle: str) -> list[dict[str, Any]]:
    """FilterLogEvents until ``needle`` is there: logs are stored behind the invocations."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        if any(needle in e["message"] for e in events):
            return list(events)
        time.sleep(0.25)
    pytest.fail(f"{needle!r} never reached {group}")


def test_boto3_reads_groups_streams_and_events(server: LrunServer) -> None:
    logs = client(server, "logs")
    wait_for(logs, "/aws/lambda/text", "plain line second")
    wait_for(logs, "/custom/structured", "third")
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert groups == ["/aws/lambda/text", "/custom/structured"]
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/text")["logStreams"]
    assert streams and all(STREAM.match(s["logStreamName"]) for s in streams)
    # Both invocations ran in one warm environment: one stream, as on Lambda.
    events = logs.get_log_events(
        logGroupName="/aws/lambda/text",
        logStreamName=streams[0]["logStreamName"],
        startFromHead=True,
    )["events"]
    messages = [e["message"] for e in events]
    starts = [i for i, m in enumerate(messages) if m.startswith("START RequestId: ")]
    assert len(starts) == 2
    first = messages[starts[0] : starts[1]]
    assert first[0].endswith("Version: $LATEST")
    assert "plain line first" in first
    assert any(m.startswith("[ERROR]") and "an error line first" in m for m in first)
    assert first[-2].startswith("END RequestId: ") and first[-1].startswith("REPORT RequestId: ")
    assert all(e["timestamp"] <= e["ingestionTime"] for e in events)


def test_filter_patterns_over_the_wire(server: LrunServer) -> None:
    logs = client(server, "logs")
    wait_for(logs, "/aws/lambda/text", "plain line second")
    errors = logs.filter_log_events(logGroupName="/aws/lambda/text", filterPattern="ERROR")
    assert [e["message"].split("\t")[-1].strip() for e in errors["events"]] == [
        "an error line first",
        "an error line second",
    ]
    either = logs.filter_log_events(
        logGroupName="/aws/lambda/text", filterPattern='?"line first" ?"line second"'
    )["events"]
    assert len(either) == 4
    without = logs.filter_log_events(
        logGroupName="/aws/lambda/text", filterPattern='"plain line" -second'
    )["events"]
    assert [e["message"] for e in without] == ["plain line first"]
    records = logs.filter_log_events(
        logGroupName="/custom/structured", filterPattern='{ $.level = "WARN" }'
    )["events"]
    assert [json.loads(e["message"])["tag"] for e in records] == ["third"]
    reports = logs.filter_log_events(
        logGroupName="/custom/structured", filterPattern='{ $.type = "platform.report" }'
    )["events"]
    assert len(reports) == 1


def test_cloudwatch_logs_errors_reach_boto3(server: LrunServer) -> None:
    logs = client(server, "logs")
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as missing:
        logs.describe_log_streams(logGroupName="/aws/lambda/nothing")
    assert missing.value.response["Error"]["Message"] == "The specified log group does not exist."
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName="/aws/lambda/text", filterPattern="{ $.a = ")


def test_the_aws_cli_filters_and_gets_events(server: LrunServer) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    wait_for(client(server, "logs"), "/aws/lambda/text", "plain line second")

    def aws(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "logs", *args, "--endpoint-url", server.url,
             "--region", "us-east-1", "--output", "json"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    found = aws("filter-log-events", "--log-group-name", "/aws/lambda/text",
                "--filter-pattern", "REPORT")  # fmt: skip
    assert len(found["events"]) == 2
    assert all("Billed Duration" in e["message"] for e in found["events"])
    groups = aws("describe-log-groups", "--log-group-name-prefix", "/custom")
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/custom/structured"]


def test_lrun_logs_prints_and_follows(server: LrunServer, lrun: Lrun) -> None:
    wait_for(client(server, "logs"), "/aws/lambda/text", "plain line second")
    env = {"LRUN_STATE_DIR": str(server.state_dir)}
    done = lrun("logs", "text", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(e["message"].startswith("REPORT ") for e in events) >= 2
    errors = lrun("logs", "text", "--filter", "ERROR", env=env)
    assert errors.returncode == 0 and errors.stdout.count("an error line") >= 2
    assert "REPORT" not in errors.stdout
    bad = lrun("logs", "text", "--since", "soon", env=env)
    assert bad.returncode != 0 and "--since 'soon' is not an age" in bad.stderr
    follower = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "logs", "text", "-f", "--since", "1s"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    try:
        time.sleep(2)
        request_id = invoke(server, "text", "followed")
        lines: list[str] = []
        assert follower.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any(f"REPORT RequestId: {request_id}" in x for x in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)
        seen = "".join(lines)
        assert "plain line followed" in seen
        assert f"REPORT RequestId: {request_id}" in seen
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()


KEY_ID = "LRUNOBSERVE000000001"
SECRET = "observe-secret-0123456789abcdefghijklmn"


def test_attack_logs_and_metrics_need_the_servers_signature(
    project: Path, tmp_path: Path, lrun: Lrun
) -> None:
    """With signatures required, CloudWatch Logs, CloudWatch and /metrics answer only requests
    signed with lrun's key pair (scoped to logs and monitoring as AWS scopes them)."""
    server = start_server(
        project,
        tmp_path / "state",
        "--require-signature",
        env={"LRUN_ACCESS_KEY_ID": KEY_ID, "LRUN_SECRET_ACCESS_KEY": SECRET},
    )
    try:

        def signed(service: str, secret: str = SECRET) -> Any:
            return boto3.client(
                service, endpoint_url=server.url, region_name="us-east-1",
                aws_access_key_id=KEY_ID, aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 0}),
            )  # fmt: skip

        signed("lambda").invoke(FunctionName="text", Payload=b'{"tag": "signed"}')
        wait_for(signed("logs"), "/aws/lambda/text", "plain line signed")
        with pytest.raises(ClientError) as forged:
            signed("logs", "not-the-secret").describe_log_groups()
        assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
        with pytest.raises(ClientError):
            signed("cloudwatch", "not-the-secret").list_metrics(Namespace="AWS/Lambda")
        assert signed("cloudwatch").list_metrics(Namespace="AWS/Lambda")["Metrics"]
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(server.url + "/metrics", timeout=10)
        assert unsigned.value.code == 403
        unsigned.value.close()
        # lrun's own commands sign with the pair the server announced to its owner.
        done = lrun("logs", "text", "--json", env={"LRUN_STATE_DIR": str(server.state_dir)})
        assert done.returncode == 0 and "plain line signed" in done.stdout, done.stderr
    finally:
        server.finish()
