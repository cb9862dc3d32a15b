"""Intrinsic functions, conditions and pseudo parameters, evaluated on plain values."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.template.document import Located, parse
from orchestrator.template.intrinsics import (
    NO_VALUE,
    Resolver,
    Resource,
    TemplateError,
    Unresolvable,
)

RESOURCES = """
Fn: {Type: AWS::Serverless::Function, Properties: {FunctionName: !Sub "${AWS::StackName}-fn"}}
Plain: {Type: AWS::Lambda::Function}
Queue: {Type: AWS::SQS::Queue, Properties: {QueueName: orders.fifo}}
Bucket: {Type: AWS::S3::Bucket}
Table: {Type: AWS::DynamoDB::Table}
Role: {Type: AWS::IAM::Role}
"""


def resolver(**parameters: Any) -> Resolver:
    raw = parse(RESOURCES, "t")
    resources = {
        name: Resource(name, entry["Type"], entry.get("Properties", Located()), None)
        for name, entry in raw.items()
    }
    mappings = {"Sizes": {"prod": {"Memory": 1024}, "dev": {"Memory": 128}}}
    conditions = parse(
        "IsProd: !Equals [!Ref Stage, prod]\n"
        "NotProd: !Not [!Condition IsProd]\n"
        "Both: !And [!Condition IsProd, !Equals [a, a]]\n"
        "Either: !Or [!Condition IsProd, !Equals [1, '1']]\n"
        "Loop: !Not [!Condition Loop]\n",
        "t",
    )
    values = {"Stage": "dev", "Names": ["a", "b"], **parameters}
    return Resolver("shop", values, mappings, conditions, resources)


def value(text: str, **parameters: Any) -> Any:
    return resolver(**parameters).resolve(parse(f"v: {text}\n", "t")["v"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!Ref AWS::Region", REGION),
        ("!Ref AWS::AccountId", ACCOUNT_ID),
        ("!Ref AWS::StackName", "shop"),
        ("!Ref AWS::Partition", "aws"),
        ("!Ref AWS::URLSuffix", "amazonaws.com"),
        ("!Ref Stage", "dev"),
        ("!Ref Fn", "shop-fn"),
        ("!Ref Plain", "Plain"),
        ("!GetAtt Fn.Arn", f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:shop-fn"),
        # a queue's local name keeps to what local names allow
        ("!GetAtt Queue.Arn", f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:orders-fifo"),
        ("!Ref Queue", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/orders-fifo"),
        ("!GetAtt Queue.QueueName", "orders-fifo"),
        ("!Ref Bucket", "Bucket"),
        ("!GetAtt Bucket.Arn", "arn:aws:s3:::Bucket"),
        ("!GetAtt Table.Arn", f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/Table"),
        ("!GetAtt Role.Arn", f"arn:aws:iam::{ACCOUNT_ID}:role/Role"),
        (
            '!Sub "${AWS::Region}:${Stage}:${Fn.Arn}:${!Literal}"',
            f"{REGION}:dev:arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:shop-fn:${{Literal}}",
        ),
        ('!Sub ["${A}-${Stage}", {A: !Ref Bucket}]', "Bucket-dev"),
        ('!Join ["-", [a, !Ref Stage, 3]]', "a-dev-3"),
        ("!Join [',', !Ref Names]", "a,b"),
        ("!Select [1, !Ref Names]", "b"),
        ("!Select ['0', [x, y]]", "x"),
        ("!Split [',', 'a,b,,c']", ["a", "b", "", "c"]),
        ("!FindInMap [Sizes, !Ref Stage, Memory]", 128),
        ("!FindInMap [Sizes, test, Memory, {DefaultValue: 256}]", 256),
        ("!Base64 hi", base64.b64encode(b"hi").decode()),
        ("!If [IsProd, big, small]", "small"),
        ("!If [NotProd, !Ref AWS::NoValue, x]", NO_VALUE),
        ("[a, !If [NotProd, !Ref AWS::NoValue, b], c]", ["a", "c"]),
        ("{k: !Ref AWS::NoValue, j: 1}", {"j": 1}),
        ("!Equals [!Ref Stage, dev]", True),
        ("!GetAZs ''", [f"{REGION}a", f"{REGION}b", f"{REGION}c"]),
        ("{'Fn::Length': [a, b, c]}", 3),
        ("{'Fn::ToJsonString': {a: [1, true]}}", '{"a":[1,true]}'),
    ],
)
def test_intrinsic_functions_are_evaluated(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_conditions_are_evaluated_once_and_combine() -> None:
    dev = resolver()
    assert (dev.condition("IsProd"), dev.condition("NotProd")) == (False, True)
    assert (dev.condition("Both"), dev.condition("Either")) == (False, True)
    prod = resolver(Stage="prod")
    assert (prod.condition("IsProd"), prod.condition("Both")) == (True, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!Ref Stagee", "Ref 'Stagee' names no parameter or resource; did you mean 'Stage'?"),
        ("!GetAtt Nope.Arn", "Fn::GetAtt names no resource 'Nope'"),
        ("!If [Missing, a, b]", "condition 'Missing' is not declared under Conditions"),
        ("!If [Loop, a, b]", "condition 'Loop' depends on itself"),
        ("!Select [5, [a]]", "Fn::Select index 5 is outside a list of 1"),
        ("!FindInMap [Sizes, test, Memory]", "Fn::FindInMap: no key 'test' in Sizes"),
        ("!Join [',', [{a: 1}]]", "Fn::Join can only join text, not a mapping"),
        ("!Sub '${Names}'", "Fn::Sub variable ${Names} is a list, not text"),
        ("!Split [',']", "Fn::Split takes a list of 2 values"),
    ],
)
def test_template_mistakes_are_template_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        value(text)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "!ImportValue shared-vpc",
            "Fn::ImportValue 'shared-vpc' reads another stack's export, which lrun cannot see; "
            "give the value as a parameter instead (--parameter-overrides NAME=VALUE)",
        ),
        ("!GetAtt Fn.SnapStartResponse", "Fn::GetAtt Fn.SnapStartResponse: lrun has no value"),
        ("{'Fn::Cidr': [a, 1, 2]}", "Fn::Cidr is not evaluated by lrun"),
        ("{'Fn::Unknown': 1}", "Fn::Unknown is not an intrinsic function lrun knows"),
    ],
)
def test_values_lrun_cannot_know_are_unresolvable(text: str, message: str) -> None:
    with pytest.raises(Unresolvable) as caught:
        value(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_parameter_without_a_value_is_unresolvable_where_it_is_used() -> None:
    missing = Unresolvable("parameter 'Key' has no Default")
    assert value("!Ref Stage", Key=missing) == "dev"  # not used: no harm
    with pytest.raises(Unresolvable, match="has no Default"):
        value("!Sub '${Key}'", Key=missing)


def test_a_name_that_refers_to_itself_stops() -> None:
    raw = parse("A: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt A.QueueName}}", "t")
    found = Resolver(
        "s", {}, {}, {}, {"A": Resource("A", "AWS::SQS::Queue", raw["A"]["Properties"], 1)}
    )
    assert found.name_of("A") == "A"
