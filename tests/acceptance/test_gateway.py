"""API Gateway through `lrun serve`: a real HTTP client against real APIs and real containers.

One server (module-scoped) serves an HTTP API (payload 2.0) and a REST API (1.0) in front of a
Python (python3.13) and a Node.js (nodejs22.x) function from tests/integration/functions/web,
each API on a port of its own. The client is ``http.client`` from the standard library (and
urllib3 for parallel requests): what a browser or curl sends, no AWS SDK in between.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Lrun, LrunServer, free_port, start_server
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "web"
JWT_FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "gateway" / "jwt_fixture"
TOKENS = json.loads((JWT_FIXTURE / "tokens.json").read_text())
REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def manifest(http_port: int, rest_port: int) -> str:
    return f"""
functions:
  py:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.echo
    code: {CODE}
    http:
      - {{api: shop, route: "ANY /items/{{id}}"}}
      - {{api: legacy, route: "GET /py/{{proxy+}}"}}
  bare:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.bare
    code: {CODE}
    http: [{{api: shop, route: $default}}]
  mirror:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.mirror
    code: {CODE}
    http: [{{api: shop, route: "POST /mirror"}}]
  node:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: nodejs22.x
    handler: web.handler
    code: {CODE}
    http:
      - {{api: shop, route: "POST /node/{{name}}"}}
      - {{api: legacy, route: "ANY /node/{{name}}"}}
  rest:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.rest
    code: {CODE}
    http: [{{api: legacy, route: "GET /rest"}}]
  fail:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.fail
    code: {CODE}
    http: [{{api: shop, route: "GET /fail"}}, {{api: legacy, route: "GET /fail"}}]
  malformed:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.malformed
    code: {CODE}
    http: [{{api: shop, route: "GET /malformed"}}, {{api: legacy, route: "GET /malformed"}}]
  nap:
    runtime: python3.13
    handler: web.nap
    code: {CODE}
    timeout: 10
    memory: 128
    http:
      - {{api: shop, route: "GET /nap"}}
      - {{api: shop, route: "GET /late", timeout_ms: 1000}}
      - {{api: legacy, route: "GET /late", timeout_ms: 1000}}
  single:
    runtime: python3.13
    handler: web.nap
    code: {CODE}
    reserved_concurrency: 1
    http: [{{api: shop, route: "GET /single"}}]
  short:
    runtime: python3.13
    handler: web.nap
    code: {CODE}
    timeout: 1
    http: [{{api: shop, route: "GET /short"}}, {{api: legacy, route: "GET /short"}}]
  guarded:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: web.echo
    code: {CODE}
    http:
      - {{api: shop, route: "GET /private", authorizer: simple}}
      - {{api: shop, route: "GET /me", authorizer: tokens}}
      - {{api: legacy, route: "GET /guarded", authorizer: token}}
  auth:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: auth.simple
    code: {CODE}
  token:
    memory: 1024  # CPU follows memory: a loaded host must not time it out
    runtime: python3.13
    handler: auth.token
    code: {CODE}
apis:
  shop:
    type: http
    port: {http_port}
    cors:
      allow_origins: ["https://app.example"]
      allow_methods: [GET, POST]
      allow_headers: [authorization]
    authorizers:
      simple:
        type: request
        function: auth
        simple_responses: true
        identity_source: $request.header.Authorization
      tokens:
        {{type: jwt, issuer: "https://issuer.example", audience: [lrun-tests], jwks: jwks.json}}
  legacy:
    type: rest
    port: {rest_port}
    stage: test
    authorizers:
      token: {{type: token, function: token}}
"""


class Api:
    """A client for one API: plain HTTP/1.1, one connection per request."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, **options: Any) -> tuple[int, Any]:
        status, _, body = self.request(method, path, **options)
        return status, json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("gateway")
    project = root / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(manifest(free_port(), free_port()))
    shutil.copy(JWT_FIXTURE / "jwks.json", project / "jwks.json")
    started = start_server(project, root / "state", "--max-concurrency", "24")
    yield started
    started.finish()


@pytest.fixture(scope="module")
def apis(server: LrunServer) -> dict[str, Any]:
    return {row["name"]: row for row in server.get("/lrun/apis")}


@pytest.fixture(scope="module")
def shop(apis: dict[str, Any]) -> Api:
    return Api(apis["shop"]["port"])


@pytest.fixture(scope="module")
def legacy(apis: dict[str, Any]) -> Api:
    return Api(apis["legacy"]["port"])


def test_serve_prints_each_apis_base_url_and_ps_shows_them(
    server: LrunServer, apis: dict[str, Any], lrun: Lrun
) -> None:
    shop_port, legacy_port = apis["shop"]["port"], apis["legacy"]["port"]
    output = server.output()
    assert f"API shop (http, 12 routes): http://127.0.0.1:{shop_port}\n" in output
    assert f"API legacy (rest, 8 routes): http://127.0.0.1:{legacy_port}/test\n" in output
    listed = lrun("ps", "--apis", "--json", cwd=server.manifest_dir, env=server.env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["shop"]["url"] == f"http://127.0.0.1:{shop_port}"
    assert {
        "route": "POST /node/{name}",
        "function": "node",
        "authorizer": None,
        "payload": "2.0",
        "qualifier": None,
    } in rows["shop"]["routes"]
    table = lrun("ps", cwd=server.manifest_dir, env={**server.env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert f"http://127.0.0.1:{legacy_port}/test" in table.stdout
    assert "GET /rest -> rest" in table.stdout


def test_a_python_function_behind_an_http_api(shop: Api) -> None:
    status, headers, body = shop.request(
        "PUT",
        "/items/42?tag=a&tag=b",
        body=b'{"name": "lamp"}',
        headers={"Content-Type": "application/json", "Cookie": "a=1; b=2", "X-Custom": "yes"},
    )
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert headers.get_all("set-cookie") == ["session=abc; HttpOnly", "theme=dark"]
    assert REQUEST_ID.match(headers["apigw-requestid"])
    event = json.loads(body)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /items/{id}"
    assert event["rawPath"] == "/items/42" and event["rawQueryString"] == "tag=a&tag=b"
    assert event["queryStringParameters"] == {"tag": "a,b"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-custom"] == "yes" and "cookie" not in event["headers"]
    assert event["body"] == '{"name": "lamp"}' and event["isBase64Encoded"] is False
    http_context = event["requestContext"]["http"]
    assert http_context["method"] == "PUT" and http_context["sourceIp"] == "127.0.0.1"
    assert http_context["userAgent"] == ""  # http.client sends none
    assert event["requestContext"]["requestId"] == headers["apigw-requestid"]
    assert event["requestContext"]["stage"] == "$default"


def test_the_shorthand_answer_through_the_default_route(shop: Api) -> None:
    status, headers, body = shop.request("GET", "/some/where")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["path"] == "/some/where"


def test_binary_bodies_round_trip_in_base64(shop: Api) -> None:
    png = bytes(range(256)) * 4
    status, headers, body = shop.request(
        "POST", "/mirror", body=png, headers={"Content-Type": "image/png"}
    )
    assert (status, headers["content-type"], body) == (200, "image/png", png)


def test_a_nodejs_function_behind_an_http_api(shop: Api) -> None:
    status, headers, body = shop.request(
        "POST", "/node/ada?x=1", body=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert status == 201, body
    assert headers["x-runtime"] == "node"
    assert headers.get_all("set-cookie") == ["from=node"]
    seen = json.loads(body)
    assert seen["node"].startswith("v22.")
    assert (seen["method"], seen["path"], seen["params"], seen["query"], seen["body"]) == (
        "POST",
        "/node/ada",
        {"name": "ada"},
        {"x": "1"},
        "hello",
    )


def test_a_nodejs_function_behind_a_rest_api(legacy: Api) -> None:
    status, headers, body = legacy.request("DELETE", "/test/node/bo?k=1&k=2")
    assert status == 200, body
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert headers["content-type"] == "application/json"  # a REST API's default
    assert json.loads(body) == {
        "method": "DELETE",
        "resource": "/node/{name}",
        "path": "/node/bo",
        "params": {"name": "bo"},
        "multi": {"k": ["1", "2"]},
        "stage": "test",
    }


def test_a_python_function_behind_a_rest_api(legacy: Api) -> None:
    status, headers, body = legacy.request("GET", "/test/rest?a=1", headers={"X-Twice": "1"})
    assert status == 202, body
    assert headers.get_all("x-both") == ["a", "b"] and headers["x-single"] == "one"
    assert REQUEST_ID.match(headers["x-amzn-requestid"])
    event = json.loads(body)
    assert "version" not in event
    assert event["resource"] == "/rest" and event["path"] == "/rest"
    assert event["headers"]["X-Twice"] == "1" and event["multiValueHeaders"]["X-Twice"] == ["1"]
    assert event["requestContext"]["path"] == "/test/rest"
    assert event["requestContext"]["stage"] == "test"
    status, _, greedy = legacy.request("GET", "/test/py/a/b/c")
    assert status == 200 and json.loads(greedy)["pathParameters"] == {"proxy": "a/b/c"}


@pytest.mark.parametrize(
    ("api", "path", "status", "body"),
    [
        ("legacy", "/test/nothing", 403, b'{"message":"Missing Authentication Token"}'),
        ("legacy", "/nothing", 403, b'{"message":"Missing Authentication Token"}'),
        ("shop", "/fail", 500, b'{"message":"Internal Server Error"}'),
        ("legacy", "/test/fail", 502, b'{"message": "Internal server error"}'),
        ("shop", "/malformed", 500, b'{"message":"Internal Server Error"}'),
        ("legacy", "/test/malformed", 502, b'{"message": "Internal server error"}'),
        # The route's integration timeout (1 s) comes first: API Gateway's timeout answer.
        ("shop", "/late?s=3", 503, b'{"message":"Service Unavailable"}'),
        # The function's own timeout (1 s) comes first: a function error.
        ("shop", "/short?s=2", 500, b'{"message":"Internal Server Error"}'),
        ("legacy", "/test/short?s=2", 502, b'{"message": "Internal server error"}'),
        ("legacy", "/test/late?s=3", 504, b'{"message": "Endpoint request timed out"}'),
    ],
)
def test_api_gateways_own_answers(
    shop: Api, legacy: Api, api: str, path: str, status: int, body: bytes
) -> None:
    client = shop if api == "shop" else legacy
    got_status, headers, got_body = client.request("GET", path)
    assert (got_status, got_body) == (status, body)
    assert headers["content-type"] == "application/json"


def test_no_route_on_an_http_api_with_a_default_route_is_the_default(shop: Api) -> None:
    # shop has $default: what matches no route goes there; the REST API answers 403 above.
    assert shop.request("DELETE", "/fail")[0] == 200


def test_ten_parallel_one_second_requests_run_in_ten_environments(shop: Api) -> None:
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def one() -> None:
        got = shop.json("GET", "/nap?s=1")
        with lock:
            results.append(got)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [status for status, _ in results] == [200] * 10
    # Each in an environment of its own: none waited for another's to be free (speed is
    # bench/gateway_bench.py's to measure).
    assert len({body["environment"] for _, body in results}) == 10


def test_reserved_concurrency_is_api_gateways_429(shop: Api, server: LrunServer) -> None:
    assert shop.request("GET", "/single?s=0")[0] == 200  # its one environment, warm
    deadline = time.monotonic() + 30
    # Idle again once its runtime has asked for the next event (a call before that waits for it
    # for half a second, which a loaded host's runtime may take longer than: unit-tested in
    # tests/unit/test_service_returning.py).
    while [e for e in server.environments("single") if e["state"] != "idle"]:
        assert time.monotonic() < deadline, "the environment never became idle"
        time.sleep(0.05)
    first: list[tuple[int, Any]] = []
    holder = threading.Thread(target=lambda: first.append(shop.json("GET", "/single?s=2")))
    holder.start()
    while not [e for e in server.environments("single") if e["state"] == "busy"]:
        assert time.monotonic() < deadline, "the first request never took the environment"
        time.sleep(0.05)
    status, _, body = shop.request("GET", "/single?s=0")
    holder.join(120)
    assert (status, body) == (429, b'{"message":"Too Many Requests"}')
    assert first and first[0][0] == 200


def test_a_host_lrun_does_not_answer_is_refused(shop: Api) -> None:
    """DNS rebinding: a page's own name resolved to 127.0.0.1 still says so in Host."""
    status, _, body = shop.request("GET", "/items/1", headers={"Host": "attacker.example"})
    assert status == 403
    assert json.loads(body)["message"].startswith("Host 'attacker.example' refused")


def test_a_body_over_what_a_function_can_take_is_413(shop: Api) -> None:
    status, _, body = shop.request(
        "POST",
        "/mirror",
        body=os.urandom(10 * 1024 * 1024 + 1),
        headers={"Content-Type": "image/png"},
    )
    assert (status, body) == (413, b'{"message":"Request Entity Too Large"}')


def test_a_bad_route_in_the_manifest_is_one_line_naming_file_line_and_key(
    tmp_path: Path, lrun: Lrun
) -> None:
    (tmp_path / "lrun.yaml").write_text(
        f"functions:\n  f:\n    runtime: python3.13\n    handler: web.bare\n    code: {CODE}\n"
        '    http: [{api: shop, route: "GET /a/{p+}/b"}]\napis:\n  shop: {type: http}\n'
    )
    done = lrun("serve", "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "lrun.yaml:6: functions.f.http[0].route: 'GET /a/{p+}/b': a greedy {p+} must be the last "
        "segment"
    ), done.stderr


def test_an_api_on_the_lambda_apis_port_is_refused(tmp_path: Path, lrun: Lrun) -> None:
    port = free_port()
    (tmp_path / "lrun.yaml").write_text(
        f"functions:\n  f: {{runtime: python3.13, handler: web.bare, code: {CODE}, "
        f"http: [{{api: shop, route: $default}}]}}\napis:\n  shop: {{type: http, port: {port}}}\n"
    )
    done = lrun("serve", "--port", str(port))
    assert done.returncode == 2
    assert f"API 'shop' is on port {port}, the Lambda API's" in done.stderr


def test_a_second_server_on_a_taken_api_port_says_so(
    server: LrunServer, apis: dict[str, Any], tmp_path: Path
) -> None:
    shop_port = apis["shop"]["port"]
    (tmp_path / "lrun.yaml").write_text(
        f"functions:\n  f: {{runtime: python3.13, handler: web.bare, code: {CODE}, "
        f"http: [{{api: shop, route: $default}}]}}\n"
        f"apis:\n  shop: {{type: http, port: {shop_port}}}\n"
    )
    with pytest.raises(pytest.fail.Exception) as failed:
        start_server(tmp_path, tmp_path / "state")
    assert f"API 'shop' cannot listen on 127.0.0.1:{shop_port}: Address already in use" in str(
        failed.value
    )


def test_a_lambda_authorizer_with_simple_responses(shop: Api) -> None:
    assert shop.request("GET", "/private")[:3:2] == (401, b'{"message":"Unauthorized"}')
    denied = shop.request("GET", "/private", headers={"Authorization": "Bearer nope"})
    assert denied[::2] == (403, b'{"message":"Forbidden"}')
    status, event = shop.json("GET", "/private", headers={"Authorization": "Bearer letmein"})
    assert status == 200
    assert event["requestContext"]["authorizer"] == {"lambda": {"user": "ana", "level": 3}}


def test_a_rest_token_authorizer_with_a_policy(legacy: Api) -> None:
    status, event = legacy.json("GET", "/test/guarded", headers={"Authorization": "allow"})
    assert status == 200
    passed = event["requestContext"]["authorizer"]
    assert (passed["principalId"], passed["tier"]) == ("user-7", "gold")
    denied = legacy.request("GET", "/test/guarded", headers={"Authorization": "deny"})
    assert denied[::2] == (
        403,
        b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
    )
    refused = legacy.request("GET", "/test/guarded", headers={"Authorization": "who"})
    assert refused[::2] == (401, b'{"message":"Unauthorized"}')


def test_a_jwt_authorizer_against_a_local_key_set(shop: Api) -> None:
    bearer = {"Authorization": f"Bearer {TOKENS['valid']}"}
    status, event = shop.json("GET", "/me", headers=bearer)
    assert status == 200
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["sub"], claims["iss"]) == ("ana", "https://issuer.example")
    status, headers, body = shop.request(
        "GET", "/me", headers={"Authorization": f"Bearer {TOKENS['expired']}"}
    )
    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert 'error_description="the token has expired"' in headers["www-authenticate"]


def test_cors_as_the_http_api_configures_it(shop: Api) -> None:
    status, headers, _ = shop.request(
        "OPTIONS",
        "/private",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "authorization"
    _, headers, _ = shop.request("GET", "/some/where", headers={"Origin": "https://app.example"})
    assert headers["access-control-allow-origin"] == "https://app.example"
    _, headers, _ = shop.request("GET", "/some/where", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers
