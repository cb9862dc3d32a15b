"""The API listeners on the real service, pool and Runtime API, over a fake container engine.

Requests go over real loopback sockets to ``Gateway``'s listeners; functions are Python handlers
the fake engine runs (``tests.fakes``). What API Gateway answers itself (no route, a function
error, a malformed answer, a timeout, a throttle, a too-large body) is checked byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import manifest
from orchestrator.errors import LrunError
from orchestrator.gateway.listeners import Gateway
from tests.fakes import FakeContext, Served, fake_service, run
from tests.unit.rawhttp import Client, RawResponse

TIMEOUT_S = 6.0


def web(event: Any, context: FakeContext) -> dict[str, Any]:
    """Echoes its event back as a 2.0 full response (or a 1.0 one)."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-seen": "yes"},
        "cookies": ["a=1", "b=2; Path=/"],
        "body": json.dumps(event),
    }


def bare(event: Any, context: FakeContext) -> Any:
    return {"hello": event["rawPath"]}


def fail(event: Any, context: FakeContext) -> None:
    raise ValueError("boom")


def malformed(event: Any, context: FakeContext) -> Any:
    return {"statusCode": "teapot"}


async def slow(event: Any, context: FakeContext) -> Any:
    await asyncio.sleep(1.0)
    return {"statusCode": 200, "body": "late"}


async def nap(event: Any, context: FakeContext) -> Any:
    await asyncio.sleep(0.3)
    return {"statusCode": 200, "body": "rested"}


HANDLERS = {
    "app.web": web,
    "app.bare": bare,
    "app.fail": fail,
    "app.malformed": malformed,
    "app.slow": slow,
    "app.nap": nap,
}

MANIFEST = """
functions:
  web:
    {{runtime: python3.13, code: ./code, handler: app.web, http: [
      {{api: h, route: "ANY /items/{{id}}"}}, {{api: r, route: "GET /items/{{id}}"}},
      {{api: h, route: "GET /v1", payload: "1.0"}},
      {{api: h, route: "GET /live", qualifier: live}},
      {{api: h, route: "GET /gone", qualifier: old}}]}}
  bare:
    {{runtime: python3.13, code: ./code, handler: app.bare, http: [{{api: h, route: $default}}]}}
  fail:
    {{runtime: python3.13, code: ./code, handler: app.fail, http: [
      {{api: h, route: "GET /fail"}}, {{api: r, route: "GET /fail"}}]}}
  malformed:
    {{runtime: python3.13, code: ./code, handler: app.malformed, http: [
      {{api: h, route: "GET /malformed"}}, {{api: r, route: "GET /malformed"}}]}}
  slow:
    {{runtime: python3.13, code: ./code, handler: app.slow, timeout: 5, http: [
      {{api: h, route: "GET /slow", timeout_ms: 200}},
      {{api: r, route: "GET /slow", timeout_ms: 200}}]}}
  nap:
    {{runtime: python3.13, code: ./code, handler: app.nap, reserved_concurrency: 1, http: [
      {{api: h, route: "GET /nap"}}]}}
  sleepy:
    {{runtime: python3.13, code: ./code, handler: app.nap, http: [
      {{api: h, route: "GET /sleepy"}}]}}
apis:
  h: {{type: http}}
  r: {{type: rest, stage: dev}}
{extra}
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(MANIFEST.format(extra=extra)).lstrip())
    return path


@contextlib.asynccontextmanager
async def gateway(
    path: Path, allowed: Callable[[str | None], str | None] | None = None
) -> AsyncIterator[tuple[Served, Gateway, dict[str, int]]]:
    events: list[str] = []
    async with fake_service(path, HANDLERS) as served:
        gw = Gateway(
            served.service,
            "127.0.0.1",
            allowed or (lambda host: None),
            lambda port: f"http://127.0.0.1:{port}",
            events.append,
        )
        await gw.load(manifest.load(path))
        try:
            yield served, gw, {row["name"]: row["port"] for row in gw.describe()}
        finally:
            await gw.close()


async def get(
    port: int, target: str, method: str = "GET", body: bytes = b"", **headers: str
) -> RawResponse:
    client = await Client.connect(port)
    try:
        return await client.request(
            method,
            target,
            body,
            headers,
        )
    finally:
        await client.close()


def scenario(
    tmp_path: Path, test: Callable[[Served, Gateway, dict[str, int]], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with gateway(write(tmp_path)) as (served, gw, ports):
            await test(served, gw, ports)

    run(main(), TIMEOUT_S)


def test_an_http_api_request_reaches_its_function_as_payload_20(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(
            ports["h"],
            "/items/42?x=1&x=2",
            "POST",
            b'{"a": 1}',
            **{"Content-Type": "application/json", "Cookie": "c=3; d=4", "X-Dup": "one"},
        )
        assert answer.status == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-seen"] == "yes"
        assert answer.header_names.count("Set-Cookie") == 2
        assert "apigw-requestid" in answer.headers
        event = answer.json()
        assert event["version"] == "2.0"
        assert event["routeKey"] == "ANY /items/{id}"
        assert event["rawPath"] == "/items/42"
        assert event["rawQueryString"] == "x=1&x=2"
        assert event["queryStringParameters"] == {"x": "1,2"}
        assert event["pathParameters"] == {"id": "42"}
        assert event["cookies"] == ["c=3", "d=4"]
        assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False
        assert event["headers"]["x-dup"] == "one" and event["headers"]["host"] == "test"
        assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert event["headers"]["x-forwarded-port"] == str(ports["h"])
        assert event["headers"]["x-amzn-trace-id"].startswith("Root=1-")
        context = event["requestContext"]
        assert context["http"]["method"] == "POST" and context["http"]["sourceIp"] == "127.0.0.1"
        assert context["requestId"] == answer.headers["apigw-requestid"]
        assert context["stage"] == "$default" and context["domainName"] == "test"

    scenario(tmp_path, test)


def test_a_rest_api_request_reaches_its_function_as_payload_10(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(ports["r"], "/dev/items/7?k=a&k=b")
        assert answer.status == 200
        assert "x-amzn-requestid" in answer.headers
        event = answer.json()
        assert "version" not in event
        assert event["resource"] == "/items/{id}" and event["path"] == "/items/7"
        assert event["multiValueQueryStringParameters"] == {"k": ["a", "b"]}
        assert event["queryStringParameters"] == {"k": "b"}
        assert event["headers"]["Host"] == "test"
        assert event["requestContext"]["path"] == "/dev/items/7"
        assert event["requestContext"]["stage"] == "dev"

    scenario(tmp_path, test)


def test_an_http_apis_route_may_send_payload_10(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        event = (await get(ports["h"], "/v1")).json()
        assert event["version"] == "1.0" and event["resource"] == "/v1"

    scenario(tmp_path, test)


def test_the_shorthand_answer_and_default_route(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(ports["h"], "/anything/else")
        assert (answer.status, answer.json()) == (200, {"hello": "/anything/else"})
        assert answer.headers["content-type"] == "application/json"

    scenario(tmp_path, test)


@pytest.mark.parametrize(
    ("api", "target", "status", "body"),
    [
        ("r", "/dev/nowhere", 403, b'{"message":"Missing Authentication Token"}'),
        ("r", "/nowhere", 403, b'{"message":"Missing Authentication Token"}'),
        ("r", "/prod/items/1", 403, b'{"message":"Missing Authentication Token"}'),
        ("h", "/fail", 500, b'{"message":"Internal Server Error"}'),
        ("r", "/dev/fail", 502, b'{"message": "Internal server error"}'),
        ("h", "/malformed", 500, b'{"message":"Internal Server Error"}'),
        ("r", "/dev/malformed", 502, b'{"message": "Internal server error"}'),
        ("h", "/slow", 503, b'{"message":"Service Unavailable"}'),
        ("r", "/dev/slow", 504, b'{"message": "Endpoint request timed out"}'),
    ],
)
def test_api_gateways_own_answers(
    tmp_path: Path, api: str, target: str, status: int, body: bytes
) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(ports[api], target)
        assert (answer.status, answer.body) == (status, body)
        assert answer.headers["content-type"] == "application/json"

    scenario(tmp_path, test)


def test_no_route_on_an_http_api_without_default(tmp_path: Path) -> None:
    path = write(tmp_path)
    text = path.read_text().replace(
        "http: [{api: h, route: $default}]", "http: [{api: r, route: GET /b}]"
    )
    path.write_text(text)

    async def main() -> None:
        async with gateway(path) as (_, _, ports):
            answer = await get(ports["h"], "/nothing")
            assert (answer.status, answer.body) == (404, b'{"message":"Not Found"}')

    run(main(), TIMEOUT_S)


def test_reserved_concurrency_throttles_with_429(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        first = asyncio.ensure_future(get(ports["h"], "/nap"))
        await asyncio.sleep(0.15)  # the first holds nap's only environment
        second = await get(ports["h"], "/nap")
        assert (second.status, second.body) == (429, b'{"message":"Too Many Requests"}')
        assert (await first).body == b"rested"

    scenario(tmp_path, test)


def test_requests_run_concurrently_in_several_environments(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(get(ports["h"], "/sleepy") for _ in range(5)))
        elapsed = asyncio.get_running_loop().time() - started
        assert [r.body for r in results] == [b"rested"] * 5
        assert elapsed < 1.0, elapsed  # serialised, five 0.3 s naps would take 1.5 s
        assert len([v for v in served.service.environments() if v.function == "sleepy"]) == 5

    scenario(tmp_path, test)


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        client = await Client.connect(ports["h"])
        try:
            size = 11 * 1024 * 1024
            head = f"POST /items/1 HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n"
            await client.send(head.encode())
            answer = await client.response()
        finally:
            await client.close()
        assert (answer.status, answer.body) == (413, b'{"message":"Request Entity Too Large"}')

    scenario(tmp_path, test)


def test_an_event_over_lambdas_6_mb_is_refused_with_413(tmp_path: Path) -> None:
    """A 5 MB binary body is under the body limit, but its event (base64) is over 6 MB."""

    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(
            ports["h"],
            "/items/1",
            "POST",
            b"\x00" * (5 * 1024 * 1024),
            **{"Content-Type": "application/octet-stream"},
        )
        assert (answer.status, answer.body) == (413, b'{"message":"Request Entity Too Large"}')
        assert served.backend.calls.count("run") == 0  # no function was started for it

    scenario(tmp_path, test)


def test_a_host_the_server_does_not_answer_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        refuse = lambda host: None if host == "ok" else f"Host '{host}' refused"  # noqa: E731
        async with gateway(write(tmp_path), refuse) as (served, _, ports):
            answer = await get(ports["h"], "/items/1")  # Host: test
            assert answer.status == 403
            assert answer.json() == {"message": "Host 'test' refused"}
            assert served.backend.calls.count("run") == 0

    run(main(), TIMEOUT_S)


def test_head_gets_no_body(tmp_path: Path) -> None:
    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        answer = await get(ports["h"], "/items/1", "HEAD")
        assert answer.status == 200 and answer.body == b""

    scenario(tmp_path, test)


def test_a_reload_changes_routes_on_the_same_port(tmp_path: Path) -> None:
    path = write(tmp_path)

    async def main() -> None:
        async with gateway(path) as (served, gw, ports):
            assert (await get(ports["h"], "/fail")).status == 500
            text = path.read_text().replace('{api: h, route: "GET /fail"}, ', "")
            path.write_text(text)
            loaded = manifest.load(path)
            served.service.load(loaded)
            await gw.load(loaded)
            assert {r["name"]: r["port"] for r in gw.describe()} == ports
            answer = await get(ports["h"], "/fail")
            assert answer.json() == {"hello": "/fail"}  # now the $default route's

    run(main(), TIMEOUT_S)


def test_a_port_that_is_taken_refuses_the_manifest(tmp_path: Path) -> None:
    async def main() -> None:
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        try:
            path = write(tmp_path)
            path.write_text(
                path.read_text().replace("h: {type: http}", f"h: {{type: http, port: {port}}}")
            )
            with pytest.raises(LrunError) as info:
                async with gateway(path):
                    pass
            assert str(info.value) == (
                f"API 'h' cannot listen on 127.0.0.1:{port}: Address already in use; give it "
                "another port (apis.h.port), or none for any free one"
            )
        finally:
            blocker.close()

    run(main(), TIMEOUT_S)


def test_a_route_may_invoke_a_version_through_an_alias(tmp_path: Path) -> None:
    from orchestrator.served import Alias

    async def test(served: Served, gw: Gateway, ports: dict[str, int]) -> None:
        state = served.service.functions["web"]
        published = dataclasses.replace(state.spec, handler="app.bare")
        served.service.put_version("web", "1", published, "published-1")
        served.service.put_alias("web", "live", Alias("1"))
        answer = await get(ports["h"], "/live")
        assert (answer.status, answer.json()) == (200, {"hello": "/live"})  # version 1's code
        gone = await get(ports["h"], "/gone")  # an alias the function does not have
        assert (gone.status, gone.body) == (500, b'{"message":"Internal Server Error"}')

    scenario(tmp_path, test)


def test_a_reload_starts_new_apis_and_stops_removed_ones(tmp_path: Path) -> None:
    path = write(tmp_path)

    async def main() -> None:
        async with gateway(path) as (served, gw, ports):
            text = path.read_text()
            text = text.replace("  r: {type: rest, stage: dev}\n", "  n: {type: http}\n")
            text = text.replace("{api: r, ", "{api: n, ")
            path.write_text(text)
            loaded = manifest.load(path)
            served.service.load(loaded)
            await gw.load(loaded)
            now = {row["name"]: row["port"] for row in gw.describe()}
            assert set(now) == {"h", "n"} and now["h"] == ports["h"]
            assert (await get(now["n"], "/items/3")).status == 200
            with pytest.raises(OSError):
                await Client.connect(ports["r"])  # the REST API's port is closed

    run(main(), TIMEOUT_S)
