"""WebSocket APIs through `lrun serve`: the `websockets` library's client against a real server
and real python3.13 containers whose functions answer through boto3's apigatewaymanagementapi.

One server (module-scoped) serves a WebSocket API ``chat`` whose $connect wants a token, a
custom route (``echo``), $default, $disconnect, and routes that delete their own connection
or post to one that does not exist; its idle timeout is shortened (``LRUN_WEBSOCKET_IDLE_S``)
so that the idle bound is tested by waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.acceptance.conftest import Lrun, LrunServer, free_port, start_server
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "websocket"
IDLE_S = 6


def manifest(port: int) -> str:
    return f"""
functions:
  connect:
    runtime: python3.13
    handler: chat.connect
    code: {CODE}
    websocket: [{{api: chat, route: $connect}}]
  echo:
    runtime: python3.13
    handler: chat.echo
    code: {CODE}
    websocket: [{{api: chat, route: echo}}]
  fallback:
    runtime: python3.13
    handler: chat.fallback
    code: {CODE}
    websocket: [{{api: chat, route: $default}}]
  gone:
    runtime: python3.13
    handler: chat.gone
    code: {CODE}
    websocket: [{{api: chat, route: gone}}]
  hangup:
    runtime: python3.13
    handler: chat.hangup
    code: {CODE}
    websocket: [{{api: chat, route: hangup}}]
  disconnect:
    runtime: python3.13
    handler: chat.disconnect
    code: {CODE}
    websocket: [{{api: chat, route: $disconnect}}]
apis:
  chat: {{type: websocket, port: {port}, stage: dev}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("websocket")
    project = root / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(manifest(free_port()))
    started = start_server(project, root / "state", env={"LRUN_WEBSOCKET_IDLE_S": str(IDLE_S)})
    yield started
    started.finish()


@pytest.fixture(scope="module")
def chat(server: LrunServer) -> dict[str, Any]:
    apis: dict[str, Any] = {row["name"]: row for row in server.get("/lrun/apis")}
    return apis["chat"]


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 120))


def test_serve_prints_the_ws_url_and_ps_shows_it(
    server: LrunServer, chat: dict[str, Any], lrun: Lrun
) -> None:
    url = f"ws://127.0.0.1:{chat['port']}/dev"
    assert chat["url"] == url
    assert f"API chat (websocket, 6 routes): {url}" in server.output()
    listed = lrun("ps", "--apis", "--json", cwd=server.manifest_dir, env=server.env)
    assert listed.returncode == 0, listed.stderr
    row = {api["name"]: api for api in json.loads(listed.stdout)}["chat"]
    assert row["url"] == url and row["route_selection"] == "$request.body.action"
    shown = lrun("ps", "--apis", cwd=server.manifest_dir, env={**server.env, "COLUMNS": "200"})
    assert url in shown.stdout


def test_connect_custom_route_and_post_to_connection(chat: dict[str, Any]) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(f"{chat['url']}?token=letmein", user_agent_header="ws-test") as ws:
            await ws.send(json.dumps({"action": "echo", "text": "hello"}))
            first = json.loads(await ws.recv())
            await ws.send("not json at all")
            second = json.loads(await ws.recv())
            return first, second

    first, second = run(scenario())
    event = first["event"]
    context = event["requestContext"]
    assert first["route"] == "echo"
    assert context["routeKey"] == "echo" and context["eventType"] == "MESSAGE"
    assert context["stage"] == "dev" and context["apiId"] == chat_api_id(chat)
    assert context["domainName"] == f"127.0.0.1:{chat['port']}"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["messageDirection"] == "IN" and context["messageId"]
    assert isinstance(context["connectedAt"], int)
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    assert json.loads(event["body"]) == {"action": "echo", "text": "hello"}
    assert event["isBase64Encoded"] is False
    # GetConnection, through boto3 inside the function, knows the client.
    assert first["sourceIp"] == "127.0.0.1"
    # A message that is not JSON goes to $default.
    assert second == {"route": "$default", "body": "not json at all"}


def test_refused_connect(chat: dict[str, Any]) -> None:
    async def scenario() -> int:
        try:
            async with connect(f"{chat['url']}?token=wrong"):
                pass
        except InvalidStatus as exc:
            return exc.response.status_code
        return 101

    assert run(scenario()) == 401


def test_gone_connection_and_delete_connection(chat: dict[str, Any]) -> None:
    async def scenario() -> tuple[dict[str, Any], int | None]:
        async with connect(f"{chat['url']}?token=letmein") as ws:
            await ws.send(json.dumps({"action": "gone"}))
            gone = json.loads(await ws.recv())
            await ws.send(json.dumps({"action": "hangup"}))
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                return gone, exc.rcvd.code if exc.rcvd else None
        return gone, -1

    gone, code = run(scenario())
    assert gone == {"gone": 410}
    assert code == 1000


def test_disconnect_event(server: LrunServer, chat: dict[str, Any]) -> None:
    async def scenario() -> str:
        async with connect(f"{chat['url']}?token=letmein") as ws:
            await ws.send(json.dumps({"action": "echo"}))
            answer = json.loads(await ws.recv())
            connection: str = answer["event"]["requestContext"]["connectionId"]
            await ws.close(4000, "bye now")
            return connection

    connection = run(scenario())
    log = server.state_dir / "logs" / "disconnect.log"
    deadline = time.monotonic() + 60
    found = None
    while found is None and time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        for line in text.splitlines():
            if "DISCONNECT " in line and connection in line:
                found = json.loads(line[line.index("DISCONNECT ") + 11 :])
        time.sleep(0.2)
    assert found is not None, f"no $disconnect event for {connection}"
    context = found["requestContext"]
    assert context["eventType"] == "DISCONNECT" and context["routeKey"] == "$disconnect"
    assert context["disconnectStatusCode"] == 4000
    assert context["disconnectReason"] == "bye now"


def test_management_api_on_the_port_answers_unknown_ids_gone(chat: dict[str, Any]) -> None:
    base = chat["connections_url"]
    for method in ("GET", "POST", "DELETE"):
        request = urllib.request.Request(
            f"{base}/@connections/nobody%3D", data=b"x" if method == "POST" else None
        )
        request.method = method
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        with caught.value:
            assert caught.value.code == 410
            assert caught.value.headers["x-amzn-ErrorType"] == "GoneException"


def test_host_and_origin_are_checked(chat: dict[str, Any]) -> None:
    async def status(**options: Any) -> int:
        try:
            async with connect(f"{chat['url']}?token=letmein", **options):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run(status(additional_headers={"Host": "evil.example"})) == 403
    assert run(status(origin="https://evil.example")) == 403
    assert run(status(origin=f"http://localhost:{chat['port']}")) == 101


def test_attack_oversized_message_and_frame_close_with_1009(chat: dict[str, Any]) -> None:
    async def closed_by(payload: str, max_size: int) -> int | None:
        async with connect(f"{chat['url']}?token=letmein", max_size=None) as ws:
            await ws.send(payload)
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
        return None

    # Over the 128 KB message quota, and a single 40 KB frame over the 32 KB frame quota.
    assert run(closed_by("x" * (129 * 1024), 0)) == 1009
    assert run(closed_by("y" * (40 * 1024), 0)) == 1009


def test_attack_idle_connection_is_closed(chat: dict[str, Any]) -> None:
    async def scenario() -> tuple[int | None, float]:
        async with connect(f"{chat['url']}?token=letmein", ping_interval=None) as ws:
            started = time.monotonic()
            try:
                await ws.recv()
            except ConnectionClosed as exc:
                return (exc.rcvd.code if exc.rcvd else None), time.monotonic() - started
        return None, 0.0

    code, waited = run(scenario())
    assert code == 1001
    assert IDLE_S - 1 <= waited <= IDLE_S + 10


def chat_api_id(chat: dict[str, Any]) -> str:
    from orchestrator.manifest.apis import ApiSpec

    return ApiSpec("chat", "websocket").api_id
