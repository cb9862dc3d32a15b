"""WebSocket route selection and events, against API Gateway's documentation: the developer
guide's "WebSocket selection expressions" (``$request.body.action`` on
``{"service": "chat", "action": "join", "data": {"room": "room1234"}}``, braces, ``\\$``) and
"Create routes for WebSocket APIs" ($default when the expression cannot be evaluated), and the
CONNECT / MESSAGE / DISCONNECT events API Gateway sends Lambda proxy integrations."""

from __future__ import annotations

import base64
import json

import pytest

from orchestrator.gateway import websocket_events as events
from orchestrator.manifest.route_selection import RouteSelection, RouteSelectionError

GUIDE_MESSAGE = '{ "service" : "chat", "action" : "join", "data" : { "room" : "room1234" } }'
CONN = events.Connection(
    "WyHPAfymhcwCENw=", "abcd123456", "dev", "127.0.0.1:9003", "203.0.113.7", "ua/1", 1552988358417
)


def test_the_guides_expression_selects_the_action() -> None:
    assert RouteSelection.parse("$request.body.action").evaluate(GUIDE_MESSAGE) == "join"
    nested = RouteSelection.parse("$request.body.data.room")
    assert nested.evaluate(GUIDE_MESSAGE) == "room1234"


def test_braces_literal_text_and_escaped_dollar() -> None:
    expression = RouteSelection.parse("${request.body.service}-beta")
    assert expression.evaluate(GUIDE_MESSAGE) == "chat-beta"
    assert RouteSelection.parse("\\$x-${request.body.action}").evaluate(GUIDE_MESSAGE) == "$x-join"


@pytest.mark.parametrize(
    "message", ["not json", '{"other": 1}', '["action"]', '{"action": {"a": 1}}', b"\xff"]
)
def test_a_message_the_expression_cannot_be_evaluated_against_selects_nothing(
    message: str | bytes,
) -> None:
    assert RouteSelection.parse("$request.body.action").evaluate(message) is None


def test_non_string_values_become_their_json_text() -> None:
    selection = RouteSelection.parse("$request.body.action")
    assert selection.evaluate('{"action": 7}') == "7"
    assert selection.evaluate('{"action": true}') == "true"


@pytest.mark.parametrize("text", ["$request.header.x", "action", "$context.routeKey"])
def test_expressions_a_websocket_api_refuses(text: str) -> None:
    with pytest.raises(RouteSelectionError, match=r"\$request\.body"):
        RouteSelection.parse(text)


def test_connect_event_has_headers_query_and_context() -> None:
    headers = (
        ("Host", "127.0.0.1:9003"),
        ("Sec-WebSocket-Version", "13"),
        ("X-A", "1"),
        ("X-A", "2"),
    )
    event = json.loads(
        events.connect_event(CONN, headers, "token=t&x=1&x=2", "req=", 1552988358425)
    )
    assert event["headers"] == {
        "Host": "127.0.0.1:9003",
        "Sec-WebSocket-Version": "13",
        "X-A": "1,2",
    }
    assert event["multiValueHeaders"]["X-A"] == ["1", "2"]
    assert event["queryStringParameters"] == {"token": "t", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["t"], "x": ["1", "2"]}
    assert event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert context == {
        "routeKey": "$connect",
        "eventType": "CONNECT",
        "extendedRequestId": "req=",
        "requestTime": "19/Mar/2019:09:39:18 +0000",  # the guide's example's, from its epoch
        "messageDirection": "IN",
        "stage": "dev",
        "connectedAt": 1552988358417,
        "requestTimeEpoch": 1552988358425,
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "ua/1"},
        "requestId": "req=",
        "domainName": "127.0.0.1:9003",
        "connectionId": "WyHPAfymhcwCENw=",
        "apiId": "abcd123456",
    }


def test_connect_without_a_query_has_no_query_fields() -> None:
    event = json.loads(events.connect_event(CONN, (), "", "r", 1))
    assert "queryStringParameters" not in event


def test_message_event_text_and_binary() -> None:
    text = json.loads(events.message_event(CONN, "join", GUIDE_MESSAGE, "m=", "r=", 5))
    assert text["body"] == GUIDE_MESSAGE and text["isBase64Encoded"] is False
    assert text["requestContext"]["eventType"] == "MESSAGE"
    assert text["requestContext"]["messageId"] == "m="
    assert text["requestContext"]["routeKey"] == "join"
    binary = json.loads(events.message_event(CONN, "$default", b"\x00\xff", "m", "r", 5))
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"


def test_disconnect_event_says_why() -> None:
    event = json.loads(
        events.disconnect_event(CONN, 1005, "Client-side close frame status not set", "r", 9)
    )
    context = event["requestContext"]
    assert context["eventType"] == "DISCONNECT" and context["routeKey"] == "$disconnect"
    assert context["disconnectStatusCode"] == 1005
    assert context["disconnectReason"] == "Client-side close frame status not set"
    assert event["headers"]["Host"] == "127.0.0.1:9003"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b'{"statusCode": 200}', 200),
        (b'{"statusCode": 401, "body": "no"}', 401),
        (b'{"statusCode": "403"}', 403),
        (b"null", 200),
        (b'{"body": "x"}', 200),
        (b'{"statusCode": "teapot"}', 502),
    ],
)
def test_connect_status_from_the_functions_answer(answer: bytes, status: int) -> None:
    assert events.connect_status(answer)[0] == status


def test_ids_look_like_api_gateways() -> None:
    ids = {events.new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 16 and i.endswith("=") for i in ids)


@pytest.mark.parametrize(
    ("answer", "sent"),
    [
        (b'{"statusCode": 200, "body": "hi"}', "hi"),
        (b'{"statusCode": 200, "body": {"a": 1}}', '{"a": 1}'),
        (b'{"statusCode": 200, "body": "AAE=", "isBase64Encoded": true}', b"\x00\x01"),
        (b'{"statusCode": 200}', None),
        (b'{"just": "json"}', '{"just": "json"}'),
        (b'"text"', '"text"'),
    ],
)
def test_a_route_response_sends_the_answers_body(answer: bytes, sent: bytes | str | None) -> None:
    assert events.route_response(answer) == sent
