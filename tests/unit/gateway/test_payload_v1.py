"""Payload format 1.0 against API Gateway's documented examples.

Source: API Gateway developer guide, "Set up Lambda proxy integrations in API Gateway"
(set-up-lambda-proxy-integrations), sections "Input format of a Lambda function for proxy
integration" and "Output format of a Lambda function for proxy integration"; and "Working with AWS
Lambda proxy integrations for HTTP APIs" (the 1.0 example with ``"version": "1.0"``). Read at
awsdocs/amazon-api-gateway-developer-guide, doc_source/, commit
6060e21e4214857f6f416c50ee2d019bc3db2206.
"""

from __future__ import annotations

import base64
import json

import pytest

from orchestrator.gateway import payload_v1
from orchestrator.gateway.exchange import GatewayRequest, MalformedResponse, Target
from orchestrator.gateway.payload_v1 import HTTP, REST, Flavour

# The documented request: GET /my/path?parameter1=value1&parameter1=value2&parameter2=value
# with Header2 sent twice, on the $default stage of API "id".
DOC_REQUEST = GatewayRequest(
    method="GET",
    path="/my/path",
    raw_query="parameter1=value1&parameter1=value2&parameter2=value",
    headers=(("Header1", "value1"), ("Header2", "value1"), ("Header2", "value2")),
    body=b"Hello from Lambda!",
    source_ip="IP",
    time_ms=1583349317135,
    request_id="id=",
)
DOC_TARGET = Target(
    route_key="GET /my/path",
    resource_path="/my/path",
    path_parameters={},
    stage="$default",
    api_id="id",
    domain_name="id.execute-api.us-east-1.amazonaws.com",
    stage_path="/my/path",
)


def test_the_documented_rest_event() -> None:
    event = payload_v1.event(DOC_REQUEST, DOC_TARGET, REST)
    assert "version" not in event
    assert event["resource"] == "/my/path"
    assert event["path"] == "/my/path"
    assert event["httpMethod"] == "GET"
    # "The headers key can only contain single-value headers": each name's last value.
    assert event["headers"] == {"Header1": "value1", "Header2": "value2"}
    assert event["multiValueHeaders"] == {"Header1": ["value1"], "Header2": ["value1", "value2"]}
    assert event["queryStringParameters"] == {"parameter1": "value2", "parameter2": "value"}
    assert event["multiValueQueryStringParameters"] == {
        "parameter1": ["value1", "value2"],
        "parameter2": ["value"],
    }
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] == "Hello from Lambda!"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["accountId"] == "000000000000"
    assert context["apiId"] == "id"
    assert context["domainName"] == "id.execute-api.us-east-1.amazonaws.com"
    assert context["domainPrefix"] == "id"
    assert context["extendedRequestId"] == "id="
    assert context["httpMethod"] == "GET"
    assert context["identity"]["sourceIp"] == "IP"
    assert context["identity"]["userAgent"] is None
    assert context["identity"]["accessKey"] is None and context["identity"]["user"] is None
    assert context["path"] == "/my/path"
    assert context["protocol"] == "HTTP/1.1"
    assert context["requestId"] == "id="
    assert context["requestTime"] == "04/Mar/2020:19:15:17 +0000"
    assert context["requestTimeEpoch"] == 1583349317135
    assert context["resourcePath"] == "/my/path"
    assert context["stage"] == "$default"


def test_an_http_apis_10_event_says_its_version() -> None:
    event = payload_v1.event(DOC_REQUEST, DOC_TARGET, HTTP)
    assert event["version"] == "1.0"
    assert event["requestContext"]["resourceId"] is None


def test_a_rest_event_on_a_named_stage() -> None:
    """The event's path is the resource's; the request context's carries the stage."""
    request = GatewayRequest("GET", "/Prod/items/7", "", (), b"", "127.0.0.1", 0, "r")
    target = Target(
        "GET /items/{id}", "/items/{id}", {"id": "7"}, "Prod", "abc", "h", None, "/items/7"
    )
    event = payload_v1.event(request, target, REST)
    assert event["path"] == "/items/7"
    assert event["resource"] == "/items/{id}"
    assert event["pathParameters"] == {"id": "7"}
    assert event["requestContext"]["path"] == "/Prod/items/7"
    assert event["requestContext"]["resourcePath"] == "/items/{id}"
    assert event["requestContext"]["stage"] == "Prod"
    for key in ("headers", "multiValueHeaders", "queryStringParameters", "body"):
        assert event[key] is None


def test_a_rest_api_passes_bodies_as_text_unless_a_binary_media_type() -> None:
    request = GatewayRequest(
        "POST", "/x", "", (("Content-Type", "image/png"),), b"\x89PNG", "127.0.0.1", 0, "r"
    )
    as_text = payload_v1.event(request, DOC_TARGET, REST)
    assert as_text["isBase64Encoded"] is True  # not UTF-8: it cannot be text
    binary = Flavour(rest=True, binary_media_types=("image/*",))
    event = payload_v1.event(request, DOC_TARGET, binary)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"
    form = GatewayRequest(
        "POST",
        "/x",
        "",
        (("Content-Type", "application/x-www-form-urlencoded"),),
        b"a=1",
        "127.0.0.1",
        0,
        "r",
    )
    assert payload_v1.event(form, DOC_TARGET, REST)["body"] == "a=1"
    assert payload_v1.event(form, DOC_TARGET, HTTP)["isBase64Encoded"] is True


# The response


def test_headers_and_multi_value_headers_merge_lists_winning() -> None:
    payload = json.dumps(
        {
            "isBase64Encoded": False,
            "statusCode": 200,
            "headers": {"headerName": "headerValue", "Shared": "from-headers"},
            "multiValueHeaders": {"Shared": ["a", "b"], "Set-Cookie": ["x=1", "y=2"]},
            "body": "...",
        }
    ).encode()
    answer = payload_v1.response(payload, REST)
    assert answer.status == 200
    assert answer.headers == (
        ("Shared", "a"),
        ("Shared", "b"),
        ("Set-Cookie", "x=1"),
        ("Set-Cookie", "y=2"),
        ("headerName", "headerValue"),
        ("Content-Type", "application/json"),
    )
    assert answer.body == b"..."


def test_a_rest_api_sends_base64_as_bytes_only_for_binary_media_types() -> None:
    body = base64.b64encode(b"\x89PNG").decode()
    payload = json.dumps(
        {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": body,
            "isBase64Encoded": True,
        }
    ).encode()
    assert payload_v1.response(payload, REST).body == body.encode()
    binary = Flavour(rest=True, binary_media_types=("image/png",))
    assert payload_v1.response(payload, binary).body == b"\x89PNG"
    by_accept = Flavour(rest=True, binary_media_types=("application/octet-stream",))
    assert payload_v1.response(payload, by_accept, "text/html, application/octet-stream").body == (
        b"\x89PNG"
    )
    assert payload_v1.response(payload, HTTP).body == b"\x89PNG"


@pytest.mark.parametrize(
    "payload",
    [b'"just a string"', b'{"body": "no status"}', b"[]", b'{"statusCode": 200, "body": 5}'],
    ids=["string", "no-status", "list", "body-not-a-string"],
)
def test_anything_but_the_documented_format_is_malformed(payload: bytes) -> None:
    """'If the function output is of a different format, API Gateway returns a 502'."""
    with pytest.raises(MalformedResponse):
        payload_v1.response(payload, REST)
