"""CloudWatch's operations over AWS JSON 1.0 (X-Amz-Target) on lrun's metrics: the same answers
as over CBOR (tested with boto3 in tests/acceptance/test_metrics.py), timestamps as epoch
seconds, and the model's error codes."""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.api.aws_json import JsonTargets
from orchestrator.api.cloudwatch_api import add_cloudwatch_routes
from orchestrator.api.lambda_api import error_response
from orchestrator.http_server import Request, Response, Router
from orchestrator.observe.metrics import Metrics
from orchestrator.observe.prices import prices_for
from orchestrator.sandbox.invocation import InvocationResult, Report
from tests.fakes import run


def made() -> Router:
    metrics = Metrics(prices_for("us-east-1"), "x86_64")
    results = [
        InvocationResult("r", b"{}", "Unhandled" if i == 0 else None, "$LATEST", "",
                         Report("r", 10.0 * (i + 1), 128, 30))
        for i in range(3)
    ]  # fmt: skip
    metrics.observe([("fn", r, None, "s") for r in results])
    router = Router(error_response)
    targets = JsonTargets()
    add_cloudwatch_routes(router, targets, metrics)
    targets.add_routes(router)
    return router


def call(router: Router, operation: str, body: dict[str, Any]) -> Response:
    headers = {"x-amz-target": f"GraniteServiceVersion20100801.{operation}"}
    return run(router.dispatch(Request("POST", "/", {}, headers, json.dumps(body).encode(), "::1")))


def test_statistics_over_json() -> None:
    now = time.time()
    response = call(
        made(),
        "GetMetricStatistics",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Duration",
            "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
            "StartTime": now - 600,
            "EndTime": now + 60,
            "Period": 660,
            "Statistics": ["Average", "Maximum", "SampleCount"],
        },
    )
    assert response.status == 200
    [point] = json.loads(response.body)["Datapoints"]
    assert (point["Average"], point["Maximum"], point["SampleCount"]) == (20.0, 30.0, 3.0)
    assert isinstance(point["Timestamp"], float) and point["Unit"] == "Milliseconds"


def test_errors_carry_the_models_codes() -> None:
    now = time.time()
    missing = call(made(), "GetMetricStatistics", {"Namespace": "AWS/Lambda"})
    assert missing.status == 400
    assert json.loads(missing.body)["__type"] == "MissingParameter"
    wrong = call(
        made(),
        "GetMetricStatistics",
        {"Namespace": "AWS/Lambda", "MetricName": "Errors", "StartTime": now - 60,
         "EndTime": now, "Period": 61, "Statistics": ["Sum"]},
    )  # fmt: skip
    assert json.loads(wrong.body)["__type"] == "InvalidParameterValue"
    data = call(
        made(),
        "GetMetricData",
        {"StartTime": now - 600, "EndTime": now + 60, "MetricDataQueries": [
            {"Id": "e", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda",
             "MetricName": "Errors"}, "Period": 660, "Stat": "Average"}}]},
    )  # fmt: skip
    [result] = json.loads(data.body)["MetricDataResults"]
    assert result["Values"] == [1 / 3]
