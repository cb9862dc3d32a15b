"""The ``@connections`` management API (API Gateway's ApiGatewayManagementApi), as boto3's
``apigatewaymanagementapi`` client calls it: ``POST /@connections/{id}`` (PostToConnection,
the body sent to the client as one message), ``GET`` (GetConnection: connectedAt, identity,
lastActiveAt) and ``DELETE`` (DeleteConnection, 204). An id that is not an open connection of
the API is ``GoneException`` (410), data over 128 KB ``PayloadTooLargeException`` (413) and a
client whose unread data is over its bound ``LimitExceededException`` (429), with the status,
``x-amzn-ErrorType`` and fields of botocore's service model (apigatewaymanagementapi
2018-11-29).

Served in two places. On the API's own port, under the stage (``http://HOST:PORT/STAGE``, which
is ``"http://" + domainName + "/" + stage`` of the function's event, as users build the endpoint
on AWS), for callers on the host's loopback. And on the Runtime API's address, which is the only
host address a function's container can reach (DESIGN D9): at ``http://RUNTIME_API/lrun/websocket``
for registered environments only, given to every function as ``LRUN_WEBSOCKET_ENDPOINT``; there
a connection is found by its id alone (ids are unique across APIs).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from urllib.parse import unquote

from orchestrator.gateway.websocket_connection import ClientBufferFull, WebSocket
from orchestrator.http_server import Request, Response
from orchestrator.sandbox.runtime_api import WEBSOCKET_PREFIX, RuntimeApi

MAX_DATA = 128 * 1024  # PostToConnection's Data (botocore: max 131072)
_CONNECTIONS = re.compile(r"(?P<base>.*)/@connections/(?P<id>[^/]+)")
_JSON = "application/json"


class WebSocketHub:
    """Every WebSocket API's open connections, by id (ids are unique across APIs)."""

    def __init__(self) -> None:
        self.open: dict[str, tuple[WebSocket, str]] = {}  # id -> connection, its API's name

    def find(self, connection_id: str, api_id: str | None = None) -> WebSocket | None:
        found = self.open.get(connection_id)
        if found is None or (api_id is not None and found[0].info.api_id != api_id):
            return None
        return found[0]

    def open_of(self, api: str) -> list[WebSocket]:
        return [ws for ws, name in self.open.values() if name == api]


def _error(status: int, code: str, message: str | None = None) -> Response:
    body = {} if message is None else {"message": message}
    headers = {"Content-Type": _JSON, "x-amzn-ErrorType": code}
    return Response(status, json.dumps(body).encode(), headers)


def too_large() -> Response:
    """PostToConnection's answer to data over 128 KB."""
    return _error(413, "PayloadTooLargeException", "Message too long")


def _iso(epoch_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def manage(ws: WebSocket | None, request: Request) -> Response:
    """One management call on ``ws`` (None: no such open connection)."""
    if request.method not in ("POST", "GET", "DELETE"):
        return _error(404, "NotFoundException", "Not Found")
    if ws is None:
        return _error(410, "GoneException")
    if request.method == "GET":
        identity = {"sourceIp": ws.info.source_ip, "userAgent": ws.info.user_agent or ""}
        body = {
            "connectedAt": _iso(ws.info.connected_at),
            "identity": identity,
            "lastActiveAt": _iso(ws.last_active_ms),
        }
        return Response(200, json.dumps(body).encode(), {"Content-Type": _JSON})
    if request.method == "DELETE":
        ws.close(1000, "")
        return Response(204)
    if len(request.body) > MAX_DATA:
        return too_large()
    try:
        ws.send(_text_or_binary(request.body))
    except ClientBufferFull:
        return _error(429, "LimitExceededException")
    except ConnectionError:
        return _error(410, "GoneException")
    return Response(200, b"", {"Content-Type": _JSON})


def _text_or_binary(data: bytes) -> bytes | str:
    """Data that is UTF-8 goes as a text message, other data as binary."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def _loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def on_port(base_path: str, api_id: str, hub: WebSocketHub, request: Request) -> Response:
    """A plain HTTP request on a WebSocket API's port: a management call under its stage."""
    found = _CONNECTIONS.fullmatch(request.path)
    if found is None or found.group("base") != base_path:
        message = (
            f"Upgrade Required: connect with a WebSocket client to the stage path "
            f"{base_path}; the management API is at {base_path}/@connections/ID"
        )
        return Response(426, json.dumps({"message": message}).encode(), {"Content-Type": _JSON})
    if not _loopback(request.peer):
        message = "The @connections API answers callers on this host only"
        return _error(403, "ForbiddenException", message)
    ws = hub.find(unquote(found.group("id")), api_id)
    return manage(ws, request)


def add_runtime_routes(runtime_api: RuntimeApi, hub: WebSocketHub) -> None:
    """Serve the management API to functions, on the Runtime API's address."""

    async def handle(request: Request) -> Response:
        if not runtime_api.knows(request.peer):
            message = "The @connections API answers lrun's execution environments only"
            return _error(403, "ForbiddenException", message)
        return manage(hub.find(request.params["connection_id"]), request)

    pattern = f"{WEBSOCKET_PREFIX}/@connections/{{connection_id}}"
    for method in ("POST", "GET", "DELETE"):
        runtime_api.router.add(method, pattern, handle)
