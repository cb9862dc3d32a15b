"""WebSocket listeners on the real service, pool and Runtime API, over a fake container engine.

Clients are the ``websockets`` library's (and a raw socket where a client must misbehave);
functions are Python handlers the fake engine runs (``tests.fakes``). What API Gateway does on
its own (``Forbidden`` without a route, ``Internal server error`` when a function fails, route
responses) and the bounds a client could push past are checked here; the acceptance tests
(tests/acceptance/test_websocket.py) do the rest on real containers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from orchestrator import manifest
from orchestrator.gateway.listeners import Gateway
from orchestrator.gateway.websocket_connection import WebSocketLimits
from orchestrator.gateway.websocket_listener import origin_check
from orchestrator.http_server import Request
from orchestrator.sandbox.environment import Environment
from tests.fakes import FakeContext, fake_service, run

TIMEOUT_S = 15.0


def answer(event: Any, context: FakeContext) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps({"got": event["body"]})}


def fail(event: Any, context: FakeContext) -> None:
    raise ValueError("boom")


async def slow(event: Any, context: FakeContext) -> dict[str, Any]:
    await asyncio.sleep(0.5)
    return {"statusCode": 200, "body": "late"}


async def slow_connect(event: Any, context: FakeContext) -> dict[str, Any]:
    await asyncio.sleep(0.5)
    return {"statusCode": 200}


HANDLERS = {"app.answer": answer, "app.fail": fail, "app.slow": slow, "app.connect": slow_connect}

MANIFEST = """
functions:
  answer:
    runtime: python3.13
    code: ./code
    handler: app.answer
    websocket:
      - {api: chat, route: ask, route_response: true}
      - {api: bare, route: ask}
  fail:
    {runtime: python3.13, code: ./code, handler: app.fail,
     websocket: [{api: chat, route: fail, route_response: true}]}
  slow:
    {runtime: python3.13, code: ./code, handler: app.slow,
     websocket: [{api: chat, route: slow, route_response: true}]}
  connect:
    {runtime: python3.13, code: ./code, handler: app.connect,
     websocket: [{api: gated, route: $connect}]}
apis:
  chat: {type: websocket, stage: dev}
  bare: {type: websocket, stage: dev}
  gated: {type: websocket, stage: dev}
"""


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, limits: WebSocketLimits) -> AsyncIterator[dict[str, Any]]:
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(MANIFEST).lstrip())
    async with fake_service(path, HANDLERS) as served:
        gw = Gateway(
            served.service,
            "127.0.0.1",
            lambda host: None,
            lambda port: f"http://127.0.0.1:{port}",
            lambda line: None,
            origin_check(frozenset()),
            limits,
        )
        await gw.load(manifest.load(path))
        try:
            yield {row["name"]: row for row in gw.describe()}
        finally:
            await gw.close()


def test_route_responses_forbidden_and_internal_server_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway(tmp_path, WebSocketLimits()) as apis:
            async with connect(apis["chat"]["url"]) as ws:
                await ws.send(json.dumps({"action": "ask", "n": 1}))
                assert json.loads(await ws.recv()) == {"got": '{"action": "ask", "n": 1}'}
                await ws.send(json.dumps({"action": "fail"}))
                failed = json.loads(await ws.recv())
                assert failed["message"] == "Internal server error"
                assert failed["connectionId"] and failed["requestId"]
            # Without a route response the answer is not sent; without $default, Forbidden.
            async with connect(apis["bare"]["url"]) as ws:
                await ws.send(json.dumps({"action": "ask"}))
                await ws.send(json.dumps({"action": "nothing"}))
                forbidden = json.loads(await ws.recv())
                assert forbidden["message"] == "Forbidden"
                await ws.send(b"\x00binary")
                assert json.loads(await ws.recv())["message"] == "Forbidden"

    run(main(), TIMEOUT_S)


def test_attack_messages_past_the_in_flight_bound_are_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with gateway(tmp_path, WebSocketLimits(max_in_flight=2)) as apis:
            async with connect(apis["chat"]["url"]) as ws:
                for _ in range(5):
                    await ws.send(json.dumps({"action": "slow"}))
                got = [await ws.recv() for _ in range(5)]
            messages = sorted(m if m == "late" else json.loads(m)["message"] for m in got)
            assert messages == ["Too Many Requests"] * 3 + ["late"] * 2

    run(main(), TIMEOUT_S)


def test_attack_data_before_connect_is_answered_is_bounded(tmp_path: Path) -> None:
    """A client that floods before its $connect is answered is cut off at 128 KB."""

    async def main() -> None:
        async with gateway(tmp_path, WebSocketLimits()) as apis:
            port = apis["gated"]["port"]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET /dev HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
                + b"\x00" * (200 * 1024)
            )
            await writer.drain()
            received = await reader.read()  # to the end: the connection is closed
            assert not received.startswith(b"HTTP/1.1 101"), received[:80]
            writer.close()

    run(main(), TIMEOUT_S)


def test_handshakes_outside_the_stage_or_from_foreign_origins_are_refused(
    tmp_path: Path,
) -> None:
    async def status(url: str, **options: Any) -> int:
        try:
            async with connect(url, **options):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def main() -> None:
        async with gateway(tmp_path, WebSocketLimits()) as apis:
            url = apis["chat"]["url"]
            assert await status(url) == 101
            assert await status(url.removesuffix("/dev") + "/prod") == 403
            assert await status(url, origin="https://evil.example") == 403
            assert await status(url, origin="http://127.0.0.1:3000") == 101

    run(main(), TIMEOUT_S)


def test_origin_check() -> None:
    check = origin_check(frozenset({"https://app.example"}))
    assert check(None) is None
    assert check("https://app.example") is None
    assert check("http://localhost:5173") is None
    assert check("http://[::1]:8080") is None
    refusal = check("https://evil.example")
    assert refusal is not None and "--cors-origin https://evil.example" in refusal


def test_the_runtime_apis_connections_endpoint_answers_environments_only(tmp_path: Path) -> None:
    """Functions reach @connections on the Runtime API's address; any other caller there (a
    container that is not one of lrun's environments) is refused, an unknown id is Gone."""

    async def main() -> None:
        (tmp_path / "code").mkdir(exist_ok=True)
        path = tmp_path / "lrun.yaml"
        path.write_text(textwrap.dedent(MANIFEST).lstrip())
        async with fake_service(path, HANDLERS) as served:
            gw = Gateway(
                served.service,
                "127.0.0.1",
                lambda host: None,
                lambda port: f"http://127.0.0.1:{port}",
                lambda line: None,
            )
            runtime_api = served.invoker.runtime_api
            gw.serve_connections(runtime_api)
            target = "/lrun/websocket/@connections/AAAAAAAAAAAAAAA%3D"

            def request(peer: str) -> Request:
                return Request("GET", target, {}, {"host": "x"}, b"", peer)

            refused = await runtime_api.router.dispatch(request("10.200.0.9"))
            assert refused.status == 403
            assert refused.headers["x-amzn-ErrorType"] == "ForbiddenException"
            stand_in = cast(Environment, object())  # only its address is looked at
            runtime_api.register("10.200.0.10", stand_in)
            try:
                gone = await runtime_api.router.dispatch(request("10.200.0.10"))
            finally:
                runtime_api.unregister("10.200.0.10", stand_in)
            assert gone.status == 410
            assert gone.headers["x-amzn-ErrorType"] == "GoneException"

    run(main(), TIMEOUT_S)
