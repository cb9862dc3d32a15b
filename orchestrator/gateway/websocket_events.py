"""The events API Gateway sends a WebSocket API's functions, and its answers to clients.

Shapes as the developer guide's WebSocket examples ("Set up WebSocket API integrations",
"Working with routes for WebSocket APIs") and the events AWS sends to Lambda proxy integrations:
every event has ``requestContext`` (routeKey, eventType CONNECT/MESSAGE/DISCONNECT,
extendedRequestId, requestTime, messageDirection IN, stage, connectedAt, requestTimeEpoch,
identity.sourceIp, requestId, domainName, connectionId, apiId; messageId on messages;
disconnectStatusCode and disconnectReason on disconnects) and ``isBase64Encoded``; ``$connect``
has the handshake's ``headers``/``multiValueHeaders`` and, when the URL has a query,
``queryStringParameters``/``multiValueQueryStringParameters``; a message has its ``body`` (text
as sent, binary base64-encoded). Pure: values in, bytes out.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from orchestrator.manifest.apis import CONNECT_ROUTE, DISCONNECT_ROUTE


def new_id() -> str:
    """A connection, message or request id shaped as API Gateway's (``WyHPAfymhcwCENw=``)."""
    return base64.b64encode(os.urandom(11)).decode()


def request_time(epoch_ms: int) -> str:
    """``09/Feb/2024:18:11:43 +0000``, the CLF time API Gateway puts in requestTime."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


@dataclass(frozen=True)
class Connection:
    """What every event of one connection shares."""

    connection_id: str
    api_id: str
    stage: str
    domain_name: str  # the Host the client connected to
    source_ip: str
    user_agent: str | None
    connected_at: int  # epoch milliseconds


def _context(
    conn: Connection, route: str, event_type: str, request_id: str, now_ms: int
) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": conn.source_ip}
    if conn.user_agent is not None:
        identity["userAgent"] = conn.user_agent
    return {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": conn.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.connection_id,
        "apiId": conn.api_id,
    }


def _multi(pairs: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return multi


def connect_event(
    conn: Connection,
    headers: tuple[tuple[str, str], ...],
    raw_query: str,
    request_id: str,
    now_ms: int,
) -> bytes:
    """``$connect``'s event: the handshake's headers and query string."""
    event: dict[str, Any] = {
        "headers": {name: ",".join(values) for name, values in _multi(headers).items()},
        "multiValueHeaders": _multi(headers),
    }
    query = tuple(parse_qsl(raw_query, keep_blank_values=True))
    if query:
        multi = _multi(query)
        event["queryStringParameters"] = {name: values[-1] for name, values in multi.items()}
        event["multiValueQueryStringParameters"] = multi
    event["requestContext"] = _context(conn, CONNECT_ROUTE, "CONNECT", request_id, now_ms)
    event["isBase64Encoded"] = False
    return json.dumps(event).encode()


def message_event(
    conn: Connection,
    route: str,
    data: bytes | str,
    message_id: str,
    request_id: str,
    now_ms: int,
) -> bytes:
    """A message's event: text as sent, binary base64-encoded."""
    context = _context(conn, route, "MESSAGE", request_id, now_ms)
    context["messageId"] = message_id
    binary = isinstance(data, bytes)
    body = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    event = {"requestContext": context, "body": body, "isBase64Encoded": binary}
    return json.dumps(event).encode()


def disconnect_event(
    conn: Connection, status_code: int, reason: str, request_id: str, now_ms: int
) -> bytes:
    """``$disconnect``'s event: why the connection ended (the close frame's code and reason)."""
    context = _context(conn, DISCONNECT_ROUTE, "DISCONNECT", request_id, now_ms)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    headers = {"Host": conn.domain_name, "X-Forwarded-For": conn.source_ip}
    event = {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
    return json.dumps(event).encode()


def connect_status(body: bytes) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The status a ``$connect`` function's answer gives the handshake (2xx accepts it) and the
    headers it sets (``Sec-WebSocket-Protocol`` picks a subprotocol). An answer without a
    statusCode accepts the connection."""
    try:
        answer = json.loads(body)
    except ValueError:
        return 200, ()
    if not isinstance(answer, dict):
        return 200, ()
    status = answer.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return 502, ()
    headers = answer.get("headers")
    pairs: tuple[tuple[str, str], ...] = ()
    if isinstance(headers, dict):
        pairs = tuple((str(k), str(v)) for k, v in headers.items() if isinstance(v, (str, int)))
    return status, pairs


def route_response(body: bytes) -> bytes | str | None:
    """What a route with a route response sends its client: the answer's ``body`` (decoded when
    ``isBase64Encoded``), the whole answer when it is not a proxy response object, or None (no
    message) for a proxy response without a body."""
    try:
        answer = json.loads(body)
    except ValueError:
        return _text_or_bytes(body)
    if isinstance(answer, dict) and "body" in answer:
        inner = answer["body"]
        if answer.get("isBase64Encoded") is True and isinstance(inner, str):
            try:
                return base64.b64decode(inner, validate=True)
            except ValueError:
                return inner
        return inner if isinstance(inner, str) else json.dumps(inner)
    if isinstance(answer, dict) and "statusCode" in answer:
        return None
    return _text_or_bytes(body)


def _text_or_bytes(data: bytes) -> bytes | str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def error_message(message: str, connection_id: str, request_id: str) -> str:
    """API Gateway's answer on the socket when a message finds no route (``Forbidden``) or
    its function fails (``Internal server error``)."""
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})
