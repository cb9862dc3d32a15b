"""Payload format 2.0 against API Gateway's and Lambda's documented examples.

Sources (AWS documentation, quoted values reproduced below):
- API Gateway developer guide, "Working with AWS Lambda proxy integrations for HTTP APIs"
  (http-api-develop-integrations-lambda), sections "Payload format version" (the 2.0 event) and
  "Lambda function response for format 2.0" (the shorthand table and the full form); read at
  awsdocs/amazon-api-gateway-developer-guide, doc_source/http-api-develop-integrations-lambda.md,
  commit 0597a972eb8fdb5732b2d93633e1a3a71b94543a.
- Lambda developer guide, "Invoking Lambda function URLs" (urls-invocation), "Cookies": the
  response's cookies become Set-Cookie headers; awsdocs/aws-lambda-developer-guide,
  doc_source/urls-invocation.md, commit 16bead93a4bedaa0e0b01762188502dc6a152cde.
"""

from __future__ import annotations

import base64
import json

import pytest

from orchestrator.gateway import payload_v2
from orchestrator.gateway.exchange import GatewayRequest, MalformedResponse, Target

# The documented example's request: POST /my/path?parameter1=value1&parameter1=value2&
# parameter2=value, two cookies, Header2 sent twice, body "Hello from Lambda", at 1583348638390.
DOC_REQUEST = GatewayRequest(
    method="POST",
    path="/my/path",
    raw_query="parameter1=value1&parameter1=value2&parameter2=value",
    headers=(
        ("Header1", "value1"),
        ("Header2", "value1"),
        ("Header2", "value2"),
        ("Cookie", "cookie1; cookie2"),
        ("User-Agent", "agent"),
        ("Content-Type", "text/plain"),
    ),
    body=b"Hello from Lambda",
    source_ip="192.0.2.1",
    time_ms=1583348638390,
    request_id="id",
)
DOC_TARGET = Target(
    route_key="$default",
    resource_path="$default",
    path_parameters={"parameter1": "value1"},
    stage="$default",
    api_id="api-id",
    domain_name="id.execute-api.us-east-1.amazonaws.com",
)


def test_the_documented_event() -> None:
    event = payload_v2.event(DOC_REQUEST, DOC_TARGET)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/my/path"
    assert event["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value"
    assert event["cookies"] == ["cookie1", "cookie2"]
    # "All header names are lowercased"; duplicates "combined with commas".
    assert event["headers"] == {
        "header1": "value1",
        "header2": "value1,value2",
        "user-agent": "agent",
        "content-type": "text/plain",
    }
    assert event["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value"}
    assert event["pathParameters"] == {"parameter1": "value1"}
    assert event["body"] == "Hello from Lambda"
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["apiId"] == "api-id"
    assert context["domainName"] == "id.execute-api.us-east-1.amazonaws.com"
    assert context["domainPrefix"] == "id"
    assert context["http"] == {
        "method": "POST",
        "path": "/my/path",
        "protocol": "HTTP/1.1",
        "sourceIp": "192.0.2.1",
        "userAgent": "agent",
    }
    assert context["requestId"] == "id"
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert context["timeEpoch"] == 1583348638390
    # The document's own pair of time and timeEpoch disagree (12 March vs 4 March 2020);
    # this is the timeEpoch's moment written in its format.
    assert context["time"] == "04/Mar/2020:19:03:58 +0000"
    assert context["accountId"] == "000000000000"
    assert "authorizer" not in context


def test_an_event_is_json_a_runtime_can_parse() -> None:
    assert json.loads(payload_v2.encode_event(DOC_REQUEST, DOC_TARGET)) == payload_v2.event(
        DOC_REQUEST, DOC_TARGET
    )


def test_keys_with_nothing_to_say_are_left_out() -> None:
    """A GET without query, cookies, body or path parameters: AWS omits those keys (strict
    validators such as Powertools' reject a null queryStringParameters)."""
    request = GatewayRequest("GET", "/", "", (("Host", "x"),), b"", "127.0.0.1", 0, "r")
    target = Target("GET /", "/", {}, "$default", "a", "127.0.0.1")
    event = payload_v2.event(request, target)
    for key in ("cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"):
        assert key not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["userAgent"] == ""


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/html", False),
        ("application/xml", False),
        ("application/javascript", False),
        ("application/octet-stream", True),
        ("application/x-www-form-urlencoded", True),
        ("image/png", True),
        (None, True),
    ],
)
def test_bodies_that_are_not_text_arrive_in_base64(content_type: str | None, encoded: bool) -> None:
    headers = (("Content-Type", content_type),) if content_type else ()
    request = GatewayRequest("POST", "/", "", headers, b"a=1&b=2", "127.0.0.1", 0, "r")
    event = payload_v2.event(request, DOC_TARGET)
    assert event["isBase64Encoded"] is encoded
    body = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    assert body == b"a=1&b=2"


def test_a_text_body_that_is_not_utf8_arrives_in_base64() -> None:
    request = GatewayRequest(
        "POST", "/", "", (("content-type", "text/plain"),), b"\xff\xfe", "127.0.0.1", 0, "r"
    )
    event = payload_v2.event(request, DOC_TARGET)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_query_values_are_decoded_and_blank_ones_kept() -> None:
    request = GatewayRequest("GET", "/", "a=x%20y&b=&c=1+2", (), b"", "127.0.0.1", 0, "r")
    event = payload_v2.event(request, DOC_TARGET)
    assert event["queryStringParameters"] == {"a": "x y", "b": "", "c": "1 2"}
    assert event["rawQueryString"] == "a=x%20y&b=&c=1+2"


def test_an_authorizers_context_reaches_the_request_context() -> None:
    target = Target("GET /", "/", {}, "$default", "a", "h", {"lambda": {"user": "ana"}})
    request = GatewayRequest("GET", "/", "", (), b"", "127.0.0.1", 0, "r")
    assert payload_v2.event(request, target)["requestContext"]["authorizer"] == {
        "lambda": {"user": "ana"}
    }


# The response: the documented table of inferred responses


def test_a_string_answer_becomes_a_200_json_response_with_its_text() -> None:
    answer = payload_v2.response(b'"Hello from Lambda!"')
    assert answer.status == 200
    assert answer.headers == (("Content-Type", "application/json"),)
    assert answer.body == b"Hello from Lambda!"


def test_a_function_url_keeps_a_strings_quotes() -> None:
    """Lambda's function URL guide: "Hello, world!" reaches the client as "Hello, world!"."""
    assert payload_v2.response(b'"Hello, world!"', quote_strings=True).body == b'"Hello, world!"'


def test_an_object_without_status_code_is_the_body_as_it_is() -> None:
    payload = b'{ "message": "Hello from Lambda!" }'
    answer = payload_v2.response(payload)
    assert (answer.status, answer.body) == (200, payload)
    assert answer.headers == (("Content-Type", "application/json"),)


@pytest.mark.parametrize("payload", [b"null", b"42", b"[1, 2]", b"true"])
def test_any_other_json_value_is_the_body(payload: bytes) -> None:
    assert payload_v2.response(payload).body == payload


def test_the_full_form() -> None:
    """Lambda's "Example output for a response returning cookies"."""
    payload = json.dumps(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "My-Custom-Header": "Custom Value"},
            "body": json.dumps({"message": "Hello, world!"}),
            "cookies": [
                "Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT",
                "Cookie_2=Value2; Max-Age=78000",
            ],
            "isBase64Encoded": False,
        }
    ).encode()
    answer = payload_v2.response(payload)
    assert answer.status == 201
    assert answer.headers == (
        ("Content-Type", "application/json"),
        ("My-Custom-Header", "Custom Value"),
        ("Set-Cookie", "Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT"),
        ("Set-Cookie", "Cookie_2=Value2; Max-Age=78000"),
    )
    assert answer.body == b'{"message": "Hello, world!"}'


def test_a_base64_body_is_sent_as_bytes() -> None:
    payload = json.dumps(
        {"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True}
    ).encode()
    assert payload_v2.response(payload).body == b"\x89PNG"


def test_a_full_form_without_content_type_is_text() -> None:
    answer = payload_v2.response(b'{"statusCode": 204}')
    assert answer.status == 204
    assert answer.headers == (("Content-Type", "text/plain; charset=utf-8"),)
    assert answer.body == b""


def test_header_values_of_other_kinds_are_written_as_text_and_nulls_dropped() -> None:
    payload = b'{"statusCode": 200, "headers": {"x-n": 5, "x-b": true, "x-none": null}}'
    headers = dict(payload_v2.response(payload).headers)
    assert headers["x-n"] == "5"
    assert headers["x-b"] == "true"
    assert "x-none" not in headers


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"statusCode": "200"}',
        b'{"statusCode": 99}',
        b'{"statusCode": 200, "body": {"a": 1}}',
        b'{"statusCode": 200, "headers": ["a"]}',
        b'{"statusCode": 200, "headers": {"x": "a\\r\\nSet-Cookie: evil=1"}}',
        b'{"statusCode": 200, "headers": {"bad name": "x"}}',
        b'{"statusCode": 200, "cookies": "a=1"}',
        b'{"statusCode": 200, "cookies": ["a=1\\r\\nX: y"]}',
        b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}',
        b'{"statusCode": 200, "isBase64Encoded": "yes"}',
    ],
    ids=[
        "not-json",
        "status-as-text",
        "status-out-of-range",
        "body-not-a-string",
        "headers-not-an-object",
        "header-injection",
        "header-name",
        "cookies-not-a-list",
        "cookie-injection",
        "bad-base64",
        "flag-not-a-bool",
    ],
)
def test_answers_that_are_no_response_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedResponse):
        payload_v2.response(payload)


def test_non_ascii_header_values_go_out_as_utf8() -> None:
    answer = payload_v2.response('{"statusCode": 200, "headers": {"x": "é"}}'.encode())
    assert dict(answer.headers)["x"].encode("latin-1") == "é".encode()
