"""A Lambda authorizer's IAM policy judged against request ARNs, and an HTTP API's CORS.

Policies follow the developer guide's "Output from an Amazon API Gateway Lambda authorizer" (the
documented Deny example on ``ymy8tbxw7b/dev/GET/``); CORS its "Configuring CORS for an HTTP API".
"""

from __future__ import annotations

import pytest

from orchestrator.gateway.cors import is_preflight, preflight, with_cors
from orchestrator.gateway.exchange import GatewayResponse
from orchestrator.gateway.policy import PolicyError, allows, route_arn
from orchestrator.manifest.apis import CorsSpec

ARN = "arn:aws:execute-api:us-east-1:000000000000:ymy8tbxw7b/dev/GET/"


def policy(effect: str, resource: str | list[str], action: str = "execute-api:Invoke") -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
    }


def test_the_request_arn() -> None:
    assert route_arn("ymy8tbxw7b", "dev", "GET", "/") == ARN
    assert route_arn("abc", "$default", "POST", "/a/b").endswith("abc/$default/POST/a/b")


def test_the_documented_deny() -> None:
    assert allows(policy("Deny", ARN), ARN) is False


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (policy("Allow", ARN), True),
        (policy("Allow", "arn:aws:execute-api:*:*:ymy8tbxw7b/*/GET/*"), True),
        (policy("Allow", "arn:aws:execute-api:us-east-1:000000000000:ymy8tbxw7b/dev/POST/"), False),
        (policy("Allow", "*", "execute-api:*"), True),
        (policy("Allow", "*", "s3:GetObject"), False),
        (policy("Allow", ["arn:x", ARN]), True),
        (
            {
                "Statement": [
                    policy("Allow", "*")["Statement"][0],
                    policy("Deny", ARN)["Statement"][0],
                ]
            },
            False,
        ),
        ({"Statement": []}, False),
    ],
    ids=[
        "exact",
        "wildcards",
        "other-method",
        "any-action",
        "other-service",
        "list",
        "deny-wins",
        "nothing",
    ],
)
def test_policies(document: dict, expected: bool) -> None:
    assert allows(document, ARN) is expected


@pytest.mark.parametrize(
    "document",
    ["allow", {"Statement": "x"}, policy("Maybe", ARN), {"Statement": [{"Effect": "Allow"}]}],
)
def test_what_is_no_policy(document: object) -> None:
    with pytest.raises(PolicyError):
        allows(document, ARN)


CORS = CorsSpec(
    allow_origins=("https://app.example",),
    allow_methods=("GET", "POST"),
    allow_headers=("authorization", "content-type"),
    expose_headers=("x-request-id",),
    max_age=300,
)


def test_a_preflight_is_recognised() -> None:
    asked = {"origin": "https://app.example", "access-control-request-method": "POST"}
    assert is_preflight("OPTIONS", asked)
    assert not is_preflight("OPTIONS", {"origin": "https://app.example"})
    assert not is_preflight("GET", asked)


def test_an_allowed_preflight() -> None:
    answer = preflight(
        CORS,
        {
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "Content-Type, Authorization",
        },
    )
    assert answer.status == 204
    assert dict(answer.headers) == {
        "Access-Control-Allow-Origin": "https://app.example",
        "Access-Control-Allow-Methods": "GET,POST",
        "Access-Control-Allow-Headers": "authorization,content-type",
        "Access-Control-Max-Age": "300",
        "Access-Control-Expose-Headers": "x-request-id",
    }


@pytest.mark.parametrize(
    "asked",
    [
        {"origin": "https://evil.example", "access-control-request-method": "GET"},
        {"origin": "https://app.example", "access-control-request-method": "DELETE"},
        {
            "origin": "https://app.example",
            "access-control-request-method": "GET",
            "access-control-request-headers": "x-secret",
        },
    ],
    ids=["origin", "method", "header"],
)
def test_a_preflight_asking_for_more_gets_no_cors_headers(asked: dict[str, str]) -> None:
    assert preflight(CORS, asked) == GatewayResponse(204)


def test_wildcards() -> None:
    cors = CorsSpec(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
    answer = preflight(
        cors,
        {
            "origin": "https://any.example",
            "access-control-request-method": "PATCH",
            "access-control-request-headers": "x-a",
        },
    )
    assert dict(answer.headers) == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "PATCH",
        "Access-Control-Allow-Headers": "x-a",
    }


def test_responses_get_the_apis_cors_headers_not_the_functions() -> None:
    response = GatewayResponse(
        200, (("Access-Control-Allow-Origin", "*"), ("Content-Type", "text/plain")), b"hi"
    )
    allowed = with_cors(CORS, "https://app.example", response)
    assert allowed.headers == (
        ("Content-Type", "text/plain"),
        ("Access-Control-Allow-Origin", "https://app.example"),
        ("Access-Control-Expose-Headers", "x-request-id"),
    )
    refused = with_cors(CORS, "https://evil.example", response)
    assert refused.headers == (("Content-Type", "text/plain"),)
    credentials = CorsSpec(allow_origins=("https://app.example",), allow_credentials=True)
    assert ("Access-Control-Allow-Credentials", "true") in with_cors(
        credentials, "https://app.example", response
    ).headers
