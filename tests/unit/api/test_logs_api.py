"""The CloudWatch Logs operations over a store (POST / with X-Amz-Target, AWS JSON 1.1): shapes,
paging, filter patterns and CloudWatch Logs' errors (codes from botocore's ``logs`` model)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api.aws_json import JsonTargets
from orchestrator.api.lambda_api import error_response
from orchestrator.api.logs_api import add_logs_operations
from orchestrator.http_server import Request, Response, Router
from orchestrator.observe.log_store import LogStore
from tests.fakes import run

GROUP = "/aws/lambda/fn"
STREAM = "2026/12/01/[$LATEST]" + "c" * 32
OTHER = "2026/12/01/[$LATEST]" + "d" * 32


@pytest.fixture
def router(tmp_path: Path) -> Router:
    store = LogStore(tmp_path)
    t = int(time.time() * 1000) - 10_000
    store.add(
        [
            (GROUP, STREAM, t + i, t + i, f"line {i} {'ERROR' if i % 3 == 0 else 'INFO'}")
            for i in range(30)
        ]
        + [(GROUP, OTHER, t + 100, t + 100, '{"level": "ERROR", "message": "json"}')]
    )
    targets = JsonTargets()
    add_logs_operations(targets, store)
    made = Router(error_response)
    targets.add_routes(made)
    return made


def call(router: Router, operation: str, body: dict[str, Any]) -> Response:
    headers = {"x-amz-target": f"Logs_20140328.{operation}"}
    request = Request("POST", "/", {}, headers, json.dumps(body).encode(), "127.0.0.1")
    return run(router.dispatch(request))


def ok(router: Router, operation: str, body: dict[str, Any]) -> Any:
    response = call(router, operation, body)
    assert response.status == 200, response.body
    return json.loads(response.body)


def error(router: Router, operation: str, body: dict[str, Any]) -> tuple[int, str, str]:
    response = call(router, operation, body)
    found = json.loads(response.body)
    assert response.headers["x-amzn-ErrorType"] == found["__type"]
    return response.status, found["__type"], found["message"]


def test_describe_groups_and_streams(router: Router) -> None:
    groups = ok(router, "DescribeLogGroups", {"logGroupNamePrefix": "/aws/lambda/"})["logGroups"]
    assert [g["logGroupName"] for g in groups] == [GROUP]
    assert groups[0]["arn"].endswith(":log-group:/aws/lambda/fn:*")
    streams = ok(router, "DescribeLogStreams", {"logGroupName": GROUP, "limit": 1})
    assert [s["logStreamName"] for s in streams["logStreams"]] == [STREAM]
    more = ok(
        router,
        "DescribeLogStreams",
        {"logGroupName": GROUP, "limit": 1, "nextToken": streams["nextToken"]},
    )
    assert [s["logStreamName"] for s in more["logStreams"]] == [OTHER]
    assert "nextToken" not in more


def test_get_log_events_pages_both_ways(router: Router) -> None:
    latest = ok(
        router, "GetLogEvents", {"logGroupName": GROUP, "logStreamName": STREAM, "limit": 5}
    )
    assert [e["message"][:7] for e in latest["events"]] == [f"line {i}" for i in range(25, 30)]
    earlier = ok(
        router,
        "GetLogEvents",
        {
            "logGroupName": GROUP,
            "logStreamName": STREAM,
            "limit": 5,
            "nextToken": latest["nextBackwardToken"],
        },
    )
    assert [e["message"][:7] for e in earlier["events"]] == [f"line {i}" for i in range(20, 25)]
    head = ok(
        router,
        "GetLogEvents",
        {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True, "limit": 40},
    )
    assert len(head["events"]) == 30
    end = ok(
        router,
        "GetLogEvents",
        {"logGroupName": GROUP, "logStreamName": STREAM, "nextToken": head["nextForwardToken"]},
    )
    assert end["events"] == [] and end["nextForwardToken"] == head["nextForwardToken"]


def test_filter_log_events_with_patterns_and_tokens(router: Router) -> None:
    found = ok(
        router, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": "ERROR", "limit": 4}
    )
    assert [e["message"] for e in found["events"]] == [f"line {i} ERROR" for i in (0, 3, 6, 9)]
    assert all(e["logStreamName"] == STREAM and len(e["eventId"]) == 36 for e in found["events"])
    rest = ok(
        router,
        "FilterLogEvents",
        {"logGroupName": GROUP, "filterPattern": "ERROR", "nextToken": found["nextToken"]},
    )
    assert len(rest["events"]) == 7 and "nextToken" not in rest
    as_json = ok(
        router, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": '{ $.level = "ERROR" }'}
    )
    assert [e["logStreamName"] for e in as_json["events"]] == [OTHER]
    chosen = ok(router, "FilterLogEvents", {"logGroupName": GROUP, "logStreamNames": [OTHER]})
    assert len(chosen["events"]) == 1


def test_cloudwatch_logs_errors(router: Router) -> None:
    assert error(router, "GetLogEvents", {"logGroupName": "/nope", "logStreamName": "x"}) == (
        400,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    assert error(router, "GetLogEvents", {"logGroupName": GROUP, "logStreamName": "x"}) == (
        400,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    status, code, message = error(router, "DescribeLogStreams", {"logGroupName": "bad name!"})
    assert (status, code) == (400, "InvalidParameterException")
    assert "at 'logGroupName' failed to satisfy constraint" in message
    status, code, message = error(
        router, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": "{ $.a = }"}
    )
    assert (status, code) == (400, "InvalidParameterException")
    assert error(router, "FilterLogEvents", {"logGroupName": GROUP, "nextToken": "../../etc"})[
        1:
    ] == (
        "InvalidParameterException",
        "The specified nextToken is invalid.",
    )
    assert error(router, "PutLogEvents", {})[1] == "UnknownOperationException"


def test_attack_a_pattern_over_the_models_length_is_refused(router: Router) -> None:
    status, code, message = error(
        router, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": "a " * 600}
    )
    assert (status, code) == (400, "InvalidParameterException")
    assert "length less than or equal to 1024" in message
