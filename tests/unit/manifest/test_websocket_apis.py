"""The manifest's WebSocket APIs: ``apis: {chat: {type: websocket}}`` and functions'
``websocket:`` routes, with problems named by file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import load
from orchestrator.manifest.apis import DEFAULT_ROUTE_SELECTION, WebSocketRoute


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load(path)
    return [str(problem) for problem in info.value.problems]


def test_routes_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          connect:
            runtime: python3.13
            handler: app.connect
            code: ./code
            websocket: [{api: chat, route: $connect}, {api: chat, route: $disconnect}]
          send:
            runtime: python3.13
            handler: app.send
            code: ./code
            websocket:
              - {api: chat, route: sendmessage, qualifier: live, timeout_ms: 5000}
              - {api: chat, route: $default}
        apis:
          chat: {type: websocket, port: 9003}
          other: {type: websocket, stage: dev, route_selection: "${request.body.kind}-v1"}
        """,
    )
    apis = load(path).apis
    chat = apis["chat"]
    assert chat.type == "websocket" and chat.stage == "production" and chat.port == 9003
    assert chat.route_selection == DEFAULT_ROUTE_SELECTION
    assert chat.websocket_routes == (
        WebSocketRoute("chat", "$connect", "connect"),
        WebSocketRoute("chat", "$disconnect", "connect"),
        WebSocketRoute("chat", "sendmessage", "send", 5000, "live"),
        WebSocketRoute("chat", "$default", "send"),
    )
    assert apis["other"].stage == "dev"
    assert apis["other"].route_selection == "${request.body.kind}-v1"


def test_problems_name_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          f:
            runtime: python3.13
            handler: app.f
            code: ./code
            websocket:
              - {api: chat, route: a}
              - {api: chat, route: a}
              - {api: shop, route: b}
              - {api: chat, route: "$nope"}
              - {api: nowhere, route: c}
            http: [{api: chat, route: "GET /"}]
        apis:
          chat: {type: websocket, stage: $default}
          bad: {type: websocket, route_selection: "$request.header.x", cors: {}}
          shop: {type: http, route_selection: "$request.body.action"}
        """,
    )
    found = problems(path)
    file = str(path)
    expected = [
        f"{file}:8: functions.f.websocket[1].route: route 'a' of API 'chat' is already served",
        f"{file}:9: functions.f.websocket[2].api: API 'shop' is a http API",
        f"{file}:10: functions.f.websocket[3].route: '$nope' is not a route key",
        f"{file}:11: functions.f.websocket[4].api: unknown api 'nowhere'",
        f"{file}:12: functions.f.http[0].api: API 'chat' is a WebSocket API",
        f"{file}:14: apis.chat.stage: '$default' is not a stage name",
        f"{file}:15: apis.bad.cors: cors is not for WebSocket APIs",
        f"{file}:15: apis.bad.route_selection: '$request.header.x'",
        f"{file}:16: apis.shop.route_selection: it is for WebSocket APIs",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in found), (start, found)
    assert len(found) == len(expected), found


def test_route_response_is_for_message_routes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          f:
            runtime: python3.13
            handler: app.f
            code: ./code
            websocket:
              - {api: chat, route: ask, route_response: true}
              - {api: chat, route: $connect, route_response: true}
        apis:
          chat: {type: websocket}
        """,
    )
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(
        f"{path}:8: functions.f.websocket[1].route_response: not for $connect"
    ), found
    path.write_text(path.read_text().replace("route: $connect, route_response: true", "route: b"))
    routes = load(path).apis["chat"].websocket_routes
    assert [route.route_response for route in routes] == [True, False]
