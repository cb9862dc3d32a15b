"""Unit tests for Lambda's event-filtering patterns, on the examples of AWS's documentation
("Control which events Lambda sends to your function" and "Using event filtering with an Amazon
SQS event source")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.manifest.event_filter import FilterError, parse, passes, sqs_view


def matches(pattern: dict[str, Any], record: dict[str, Any]) -> bool:
    return parse(json.dumps(pattern)).matches(record)


def sqs(body: str, **fields: Any) -> dict[str, Any]:
    record = {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SenderId": "000000000000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        **fields,
    }
    return sqs_view(record)


SQS_BODY = json.dumps(
    {"RecordNumber": 1234, "TimeStamp": "yyyy-mm-ddThh:mm:ss", "RequestCode": "AAAA"}
)


def test_the_sqs_guide_example_matches_on_the_json_body() -> None:
    pattern = {"body": {"RequestCode": ["BBBB"]}}
    assert not matches(pattern, sqs(SQS_BODY))
    assert matches(pattern, sqs(SQS_BODY.replace("AAAA", "BBBB")))


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        # Null, empty, equals
        ([None], None, True),
        ([None], "x", False),
        ([""], "", True),
        ([""], "x", False),
        (["Blue"], "Blue", True),
        (["Blue"], "blue", False),
        ([123], 123, True),
        ([123], 123.0, True),
        ([123], "123", False),
        ([True], True, True),
        ([True], 1, False),
        # Equals, ignoring case
        ([{"equals-ignore-case": "name"}], "NaMe", True),
        ([{"equals-ignore-case": "name"}], "names", False),
        # Or, within a field
        (["Blue", "Red"], "Red", True),
        (["Blue", "Red"], "Green", False),
        # Not
        ([{"anything-but": ["Red"]}], "Blue", True),
        ([{"anything-but": ["Red"]}], "Red", False),
        ([{"anything-but": "Red"}], "Red", False),
        ([{"anything-but": [1, 2]}], 3, True),
        ([{"anything-but": [1, 2]}], 2, False),
        ([{"anything-but": {"prefix": "us-"}}], "eu-west-1", True),
        ([{"anything-but": {"prefix": "us-"}}], "us-east-1", False),
        ([{"anything-but": {"suffix": ".png"}}], "a.png", False),
        # Numeric
        ([{"numeric": ["=", 100]}], 100, True),
        ([{"numeric": ["=", 100]}], 101, False),
        ([{"numeric": [">", 0, "<=", 5]}], 5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 0, False),
        ([{"numeric": [">", 0, "<=", 5]}], 6, False),
        ([{"numeric": ["<", 10]}], "5", False),  # a string is not a number
        # Exists
        ([{"exists": True}], "anything", True),
        # Begins with, ends with
        ([{"prefix": "us-"}], "us-east-1", True),
        ([{"prefix": "us-"}], "eu-west-1", False),
        ([{"suffix": ".png"}], "image.png", True),
        ([{"suffix": ".png"}], "image.jpg", False),
    ],
)
def test_each_documented_comparison(pattern: list[Any], value: Any, expected: bool) -> None:
    assert matches({"body": {"Field": pattern}}, sqs(json.dumps({"Field": value}))) is expected


def test_exists_false_matches_only_a_missing_field() -> None:
    pattern = {"body": {"Location": [{"exists": False}]}}
    assert matches(pattern, sqs(json.dumps({"Other": 1})))
    assert not matches(pattern, sqs(json.dumps({"Location": "x"})))
    assert not matches({"body": {"Location": [{"exists": True}]}}, sqs(json.dumps({"Other": 1})))


def test_every_field_must_match_and_nested_fields_are_objects() -> None:
    pattern = {"body": {"Weather": {"Temperature": [{"numeric": [">", 50]}]}, "Day": ["Sunday"]}}
    hot_sunday = {"Weather": {"Temperature": 60}, "Day": "Sunday"}
    assert matches(pattern, sqs(json.dumps(hot_sunday)))
    assert not matches(pattern, sqs(json.dumps({**hot_sunday, "Day": "Monday"})))
    assert not matches(pattern, sqs(json.dumps({**hot_sunday, "Weather": {"Temperature": 40}})))
    assert not matches(pattern, sqs(json.dumps({**hot_sunday, "Weather": "sunny"})))


def test_or_between_fields() -> None:
    pattern = {"body": {"$or": [{"Location": ["New York"]}, {"Day": ["Monday"]}]}}
    assert matches(pattern, sqs(json.dumps({"Location": "New York", "Day": "Sunday"})))
    assert matches(pattern, sqs(json.dumps({"Location": "Boston", "Day": "Monday"})))
    assert not matches(pattern, sqs(json.dumps({"Location": "Boston", "Day": "Sunday"})))


def test_a_list_in_the_record_matches_when_any_element_does() -> None:
    pattern = {"body": {"Tags": ["urgent"]}}
    assert matches(pattern, sqs(json.dumps({"Tags": ["low", "urgent"]})))
    assert not matches(pattern, sqs(json.dumps({"Tags": ["low"]})))


def test_a_plain_string_body_matches_as_a_string_not_as_an_object() -> None:
    assert matches({"body": [{"prefix": "hello"}]}, sqs("hello world"))
    assert not matches({"body": {"kind": ["order"]}}, sqs("kind=order"))


def test_attributes_and_message_attributes_as_the_function_sees_them() -> None:
    record = sqs(
        "{}",
        messageAttributes={"kind": {"stringValue": "order", "dataType": "String"}},
    )
    assert matches({"messageAttributes": {"kind": {"stringValue": ["order"]}}}, record)
    assert not matches({"messageAttributes": {"kind": {"stringValue": ["refund"]}}}, record)
    assert matches({"attributes": {"ApproximateReceiveCount": ["1"]}}, record)
    assert not matches({"attributes": {"ApproximateReceiveCount": ["2"]}}, record)


def test_several_filters_pass_a_record_any_one_matches() -> None:
    filters = [parse('{"body": {"a": [1]}}'), parse('{"body": {"b": [2]}}')]
    assert passes(filters, sqs('{"b": 2}'))
    assert not passes(filters, sqs('{"c": 3}'))
    assert passes([], sqs("anything"))  # no filters: everything goes to the function


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        "{}",
        '{"body": "x"}',  # a leaf must be a list
        '{"body": {"a": []}}',
        '{"body": {"a": [{"prefix": 1}]}}',
        '{"body": {"a": [{"unknown-op": "x"}]}}',
        '{"body": {"a": [{"numeric": [">", "x"]}]}}',
        '{"body": {"a": [{"numeric": ["<", 5, ">", 1]}]}}',
        '{"body": {"a": [{"numeric": [">", 5, "<", 1]}]}}',
        '{"body": {"a": [{"exists": "yes"}]}}',
        '{"body": {"a": [{"prefix": "x", "suffix": "y"}]}}',
        '{"body": {"$or": [{"a": ["x"]}]}}',
        '{"body": {"a": [{"anything-but": {"numeric": [">", 1]}}]}}',
    ],
)
def test_invalid_patterns_are_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse(text)
