"""Metrics and cost (issue 14 items 2 and 5) from a real `lrun serve` running real containers:
``GET /metrics`` parsed by Prometheus' own text parser (prometheus_client), `lrun cost` and
`lrun ps` after invocations made with boto3."""

from __future__ import annotations

import datetime
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import Lrun, LrunServer, start_server

HANDLER = """\
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"""
MANIFEST = """\
functions:
  counted: {runtime: python3.13, handler: app.handler, code: ./fn, memory: 256}
  closed: {runtime: python3.13, handler: app.handler, code: ./fn, reserved_concurrency: 0}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    directory = tmp_path_factory.mktemp("metrics")
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text(HANDLER)
    (directory / "lrun.yaml").write_text(MANIFEST)
    started = start_server(directory, tmp_path_factory.mktemp("metrics") / "state")
    lam = boto3.client(
        "lambda",
        endpoint_url=started.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )
    for event in ({}, {}, {"fail": True}, {}):
        lam.invoke(FunctionName="counted", Payload=json.dumps(event).encode())
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName="closed", Payload=b"{}")
    yield started
    started.finish()


def scrape(server: LrunServer) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return content_type, found


def wait_metric(server: LrunServer, name: str, labels: dict[str, str], value: float) -> Any:
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + 20
    while True:
        _, found = scrape(server)
        if found.get(key) == value or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_metrics_are_prometheus_text_with_lambdas_figures(server: LrunServer) -> None:
    latest = {"function_name": "counted", "version": "$LATEST"}
    found = wait_metric(server, "lambda_invocations_total", latest, 4)
    content_type, _ = scrape(server)
    assert content_type.startswith("text/plain; version=0.0.4")
    key = tuple(sorted(latest.items()))
    assert found[("lambda_invocations_total", key)] == 4
    assert found[("lambda_errors_total", key)] == 1
    assert found[("lambda_cold_starts_total", key)] == 1  # then warm: one environment reused
    assert found[("lambda_duration_milliseconds_count", key)] == 4
    assert found[("lambda_init_duration_milliseconds_count", key)] == 1
    assert found[("lambda_memory_size_megabytes", key)] == 256
    assert 0 < found[("lambda_max_memory_used_megabytes", key)] <= 256
    assert found[("lambda_billed_duration_milliseconds_total", key)] >= 4
    assert found[("lambda_concurrent_executions", key)] == 0
    closed = tuple(sorted({"function_name": "closed", "version": "$LATEST"}.items()))
    assert found[("lambda_throttles_total", closed)] == 1


def test_lrun_cost_and_ps_show_the_running_cost(server: LrunServer, lrun: Lrun) -> None:
    latest = {"function_name": "counted", "version": "$LATEST"}
    wait_metric(server, "lambda_invocations_total", latest, 4)
    env = {"LRUN_STATE_DIR": str(server.state_dir), "COLUMNS": "200"}
    done = lrun("cost", "--json", env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    row = found["functions"]["counted"]
    assert row["invocations"] == 4 and row["errors"] == 1
    expected = 4 * 0.20 / 1e6 + row["gb_seconds"] * 0.0000166667
    assert abs(row["cost_x86_64"] - expected) < 1e-12
    assert abs(row["gb_seconds"] - row["billed_ms"] / 1000 * 0.25) < 1e-9
    assert found["price_table_date"] and "aws.amazon.com/lambda/pricing" in found["price_source"]
    recent = json.loads(lrun("cost", "--since", "1s", "--json", env=env).stdout)
    assert recent["functions"]["counted"]["invocations"] <= 4
    table = lrun("cost", env=env)
    assert "counted" in table.stdout and "cost x86_64" in table.stdout
    ps = lrun("ps", env=env)
    assert ps.returncode == 0 and "cost arm64" in ps.stdout
    bad = lrun("cost", "--since", "yesterday", env=env)
    assert bad.returncode == 2 and "--since 'yesterday' is not an age" in bad.stderr


def test_boto3_cloudwatch_reads_lambda_statistics(server: LrunServer) -> None:
    latest = {"function_name": "counted", "version": "$LATEST"}
    wait_metric(server, "lambda_invocations_total", latest, 4)
    watch = boto3.client(
        "cloudwatch",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}),
    )
    now = datetime.datetime.now(datetime.UTC)
    window = {
        "StartTime": now - datetime.timedelta(minutes=30),
        "EndTime": now + datetime.timedelta(minutes=1),
    }
    function = [{"Name": "FunctionName", "Value": "counted"}]
    invocations = watch.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Invocations", Dimensions=function, Period=60,
        Statistics=["Sum", "SampleCount"], **window,
    )  # fmt: skip
    assert sum(p["Sum"] for p in invocations["Datapoints"]) == 4
    assert all(p["Unit"] == "Count" for p in invocations["Datapoints"])
    assert all(isinstance(p["Timestamp"], datetime.datetime) for p in invocations["Datapoints"])
    errors = watch.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Errors", Dimensions=function, Period=1800,
        Statistics=["Sum", "Average"], **window,
    )  # fmt: skip
    assert sum(p["Sum"] for p in errors["Datapoints"]) == 1
    data = watch.get_metric_data(
        MetricDataQueries=[
            {"Id": "d", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda",
             "MetricName": "Duration", "Dimensions": function}, "Period": 60, "Stat": "Maximum"}},
            {"Id": "n", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda",
             "MetricName": "Invocations"}, "Period": 60, "Stat": "Sum"}},
        ],
        **window,
    )  # fmt: skip
    found = {r["Id"]: r for r in data["MetricDataResults"]}
    assert sum(found["n"]["Values"]) == 4 and found["n"]["StatusCode"] == "Complete"
    assert found["d"]["Values"] and all(v > 0 for v in found["d"]["Values"])
    listed = watch.list_metrics(Namespace="AWS/Lambda", MetricName="Invocations")["Metrics"]
    assert {"Name": "FunctionName", "Value": "counted"} in [m["Dimensions"][0] for m in listed]
    with pytest.raises(watch.exceptions.InvalidParameterValueException):
        watch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Invocations", Period=7, Statistics=["Sum"], **window
        )
    with pytest.raises(watch.exceptions.InvalidParameterCombinationException) as many:
        watch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Invocations", Period=60, Statistics=["Sum"],
            StartTime=now - datetime.timedelta(days=2), EndTime=now,
        )  # fmt: skip
    assert "exceeds the limit of 1,440" in str(many.value)
