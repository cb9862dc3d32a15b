"""WebSocket APIs through `lrun serve`: the `websockets` library's client against a real server
and real python3.13 containers whose functions answer through boto3's apigatewaymanagementapi.

One server (module-scoped) serves a WebSocket API ``chat`` whose $connect wants a token, a
custom route (``echo``), $default, $disconnect, and routes that delete their own connection
or post to one that does not exist (1 GB each: boto3's import and client need the CPU). Its
idle timeout, lifetime and connection cap are lowered (``LRUN_WEBSOCKET_*``) so that each
bound is tested by reaching it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
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
LIFETIME_S = 30
MAX_CONNECTIONS = 4


def manifest(port: int) -> str:
    return f"""
functions:
  connect:
    runtime: python3.13
    handler: chat.connect
    code: {CODE}
    memory: 1024
    timeout: 30
    websocket: [{{api: chat, route: $connect}}]
  echo:
    runtime: python3.13
    handler: chat.echo
    code: {CODE}
    memory: 1024
    timeout: 30
    websocket: [{{api: chat, route: echo}}]
  fallback:
    runtime: python3.13
    handler: chat.fallback
    code: {CODE}
    memory: 1024
    timeout: 30
    websocket: [{{api: chat, route: $default}}]
  gone:
    runtime: python3.13
    handler: chat.gone
    code: {CODE}
    memory: 1024
    timeout: 30
    websocket: [{{api: chat, route: gone}}]
  hangup:
    runtime: python3.13
    handler: chat.hangup
    code: {CODE}
    memory: 1024
    timeout: 30
    websocket: [{{api: chat, route: hangup}}]
  disconnect:
    runtime: python3.13
    handler: chat.disconnect
    code: {CODE}
    memory: 1024
    timeout: 30
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
    limits = {
        "LRUN_WEBSOCKET_IDLE_S": str(IDLE_S),
        "LRUN_WEBSOCKET_LIFETIME_S": str(LIFETIME_S),
        "LRUN_WEBSOCKET_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    started = start_server(project, root / "state", env=limits)
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


def test_attack_connections_past_the_cap_are_refused(chat: dict[str, Any]) -> None:
    async def scenario() -> tuple[int, bool]:
        held = [await connect(f"{chat['url']}?token=letmein") for _ in range(MAX_CONNECTIONS)]
        try:
            try:
                async with connect(f"{chat['url']}?token=letmein"):
                    refused = 101
            except InvalidStatus as exc:
                refused = exc.response.status_code
            await held.pop().close()
            await asyncio.sleep(0.5)
            async with connect(f"{chat['url']}?token=letmein") as again:
                await again.ping()
                return refused, True
        finally:
            for ws in held:
                await ws.close()

    assert run(scenario()) == (429, True)


def test_attack_a_connection_ends_at_its_lifetime(chat: dict[str, Any]) -> None:
    async def scenario() -> tuple[int | None, float]:
        async with connect(f"{chat['url']}?token=letmein", ping_interval=1) as ws:
            started = time.monotonic()
            try:
                await ws.recv()  # nothing comes; the client's pings keep it from being idle
            except ConnectionClosed as exc:
                return (exc.rcvd.code if exc.rcvd else None), time.monotonic() - started
        return None, 0.0

    code, lasted = run(scenario())
    assert code == 1001
    assert LIFETIME_S - 1 <= lasted <= LIFETIME_S + 10


def test_attack_a_client_that_does_not_read_cannot_make_lrun_buffer(
    chat: dict[str, Any],
) -> None:
    """A raw client that never reads: posts to it fail with LimitExceededException once about
    1 MB waits for it in lrun, instead of lrun holding whatever is posted."""
    port = chat["port"]
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /dev?token=letmein HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    assert received.startswith(b"HTTP/1.1 101")
    payload = json.dumps({"action": "echo"}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    found = None
    while found is None:
        received += sock.recv(65536)
        found = re.search(rb'"connectionId": "([^"]+)"', received)
    connection = found.group(1).decode()
    url = f"{chat['connections_url']}/@connections/{urllib.parse.quote(connection, safe='')}"
    statuses = []
    try:
        for _ in range(400):  # up to 50 MB, far past what lrun may hold for the client
            request = urllib.request.Request(url, data=b"z" * (128 * 1024), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    statuses.append(answer.status)
            except urllib.error.HTTPError as exc:
                with exc:
                    statuses.append(exc.code)
                    assert exc.headers["x-amzn-ErrorType"] == "LimitExceededException"
                break
        # Over 128 KB is PayloadTooLargeException, as botocore's model bounds Data.
        big = urllib.request.Request(url, data=b"z" * (128 * 1024 + 1), method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(big, timeout=30)
        with caught.value:
            assert caught.value.code == 413
            assert caught.value.headers["x-amzn-ErrorType"] == "PayloadTooLargeException"
    finally:
        sock.close()
    assert statuses[-1] == 429, statuses
    assert 1 < len(statuses) < 400


def chat_api_id(chat: dict[str, Any]) -> str:
    from orchestrator.manifest.apis import ApiSpec

    return ApiSpec("chat", "websocket").api_id
