"""Authorizers and CORS through the API listeners, on the real service over a fake engine.

Lambda authorizers are fake-engine handlers answering as the developer guide's examples do
("Working with AWS Lambda authorizers for HTTP APIs": simple responses and IAM policies; "Output
from an Amazon API Gateway Lambda authorizer"; TOKEN authorizers failing with "Unauthorized").
JWT tokens are those OpenSSL signed in jwt_fixture/.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orchestrator import manifest
from orchestrator.gateway.listeners import Gateway
from tests.fakes import FakeContext, fake_service, run
from tests.unit.rawhttp import Client, RawResponse

TIMEOUT_S = 6.0
FIXTURE = Path(__file__).parent / "jwt_fixture"
TOKENS = json.loads((FIXTURE / "tokens.json").read_text())
CALLS: Counter[str] = Counter()
LAST: dict[str, Any] = {}  # the last event each authorizer got


def echo(event: Any, context: FakeContext) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(event)}


def simple(event: Any, context: FakeContext) -> dict[str, Any]:
    CALLS["simple"] += 1
    LAST["simple"] = event
    token = event["identitySource"][0]
    return {"isAuthorized": token == "letmein", "context": {"user": "ana", "n": 1}}


def policy(event: Any, context: FakeContext) -> dict[str, Any]:
    """Allow, deny or fail by the token, as the developer guide's TOKEN example does."""
    CALLS["policy"] += 1
    LAST["policy"] = event
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = event.get("authorizationToken") or headers.get("x-token")
    if token == "unauthorized":
        raise RuntimeError("Unauthorized")
    if token not in ("allow", "deny"):
        raise RuntimeError("some failure")
    effect = "Allow" if token == "allow" else "Deny"
    return {
        "principalId": "user-9",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
            ],
        },
        "context": {"tier": "gold", "admin": True},
    }


HANDLERS = {"app.echo": echo, "app.simple": simple, "app.policy": policy}

MANIFEST = """
functions:
  web:
    runtime: python3.13
    code: ./code
    handler: app.echo
    http:
      - {api: h, route: "GET /simple", authorizer: simple}
      - {api: h, route: "GET /nocache", authorizer: nocache}
      - {api: h, route: "GET /v1", authorizer: policy1, payload: "1.0"}
      - {api: h, route: "GET /jwt", authorizer: jwt}
      - {api: h, route: "GET /jwt1", authorizer: jwt, payload: "1.0"}
      - {api: h, route: "GET /scoped", authorizer: jwt, scopes: [orders.write]}
      - {api: h, route: "GET /open"}
      - {api: r, route: "GET /token", authorizer: token}
      - {api: r, route: "GET /request", authorizer: request}
  simple: {runtime: python3.13, code: ./code, handler: app.simple}
  policy: {runtime: python3.13, code: ./code, handler: app.policy}
apis:
  h:
    type: http
    cors:
      allow_origins: ["https://app.example"]
      allow_methods: [GET]
      allow_headers: [authorization]
      max_age: 60
    authorizers:
      simple:
        {type: request, function: simple, simple_responses: true,
         identity_source: $request.header.Authorization}
      nocache:
        {type: request, function: simple, simple_responses: true, ttl: 0,
         identity_source: $request.querystring.token}
      policy1:
        {type: request, function: policy, payload: "1.0", identity_source: $request.header.X-Token}
      jwt: {type: jwt, issuer: "https://issuer.example", audience: [lrun-tests], jwks: ./jwks.json}
  r:
    type: rest
    authorizers:
      token: {type: token, function: policy, validation: "^[a-z]+$"}
      request: {type: request, function: policy, identity_source: [method.request.header.X-Token]}
"""


def scenario(tmp_path: Path, test: Callable[[dict[str, int]], Awaitable[None]]) -> None:
    (tmp_path / "code").mkdir()
    shutil.copy(FIXTURE / "jwks.json", tmp_path / "jwks.json")
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(MANIFEST).lstrip())
    CALLS.clear()

    async def main() -> None:
        async with fake_service(path, HANDLERS) as served:
            gw = Gateway(
                served.service, "127.0.0.1", lambda h: None, lambda p: f"http://x:{p}", print
            )
            await gw.load(manifest.load(path))
            try:
                await test({row["name"]: row["port"] for row in gw.describe()})
            finally:
                await gw.close()

    run(main(), TIMEOUT_S)


async def get(port: int, target: str, method: str = "GET", **headers: str) -> RawResponse:
    client = await Client.connect(port)
    try:
        return await client.request(method, target, b"", headers)
    finally:
        await client.close()


def test_a_simple_response_authorizer_and_its_cache(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        missing = await get(ports["h"], "/simple")
        assert (missing.status, missing.body) == (401, b'{"message":"Unauthorized"}')
        assert CALLS["simple"] == 0  # no identity: the authorizer is not called
        denied = await get(ports["h"], "/simple", Authorization="nope")
        assert (denied.status, denied.body) == (403, b'{"message":"Forbidden"}')
        allowed = await get(ports["h"], "/simple", Authorization="letmein")
        assert allowed.status == 200
        assert allowed.json()["requestContext"]["authorizer"] == {"lambda": {"user": "ana", "n": 1}}
        assert CALLS["simple"] == 2
        again = await get(ports["h"], "/simple", Authorization="letmein")
        assert again.status == 200 and CALLS["simple"] == 2  # from the cache (ttl 300)
        event = LAST["simple"]  # payload 2.0's authorizer event
        assert (event["version"], event["type"]) == ("2.0", "REQUEST")
        assert event["identitySource"] == ["letmein"]
        assert event["routeArn"].endswith(
            f":{event['requestContext']['apiId']}/$default/GET/simple"
        )
        assert event["routeKey"] == "GET /simple" and "body" not in event

    scenario(tmp_path, test)


def test_an_authorizer_without_cache_is_asked_each_time(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        for _ in range(2):
            assert (await get(ports["h"], "/nocache?token=letmein")).status == 200
        assert CALLS["simple"] == 2

    scenario(tmp_path, test)


def test_a_policy_authorizer_for_payload_10(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        allowed = await get(ports["h"], "/v1", **{"X-Token": "allow"})
        assert allowed.status == 200
        passed = allowed.json()["requestContext"]["authorizer"]
        assert passed["principalId"] == "user-9"
        assert (passed["tier"], passed["admin"]) == ("gold", "true")  # stringified
        assert isinstance(passed["integrationLatency"], int)
        denied = await get(ports["h"], "/v1", **{"X-Token": "deny"})
        assert (denied.status, denied.body) == (403, b'{"message":"Forbidden"}')

    scenario(tmp_path, test)


def test_a_rest_token_authorizer(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        port = ports["r"]
        allowed = await get(port, "/Prod/token", Authorization="allow")
        assert allowed.status == 200
        assert LAST["policy"] == {
            "type": "TOKEN",
            "authorizationToken": "allow",
            "methodArn": LAST["policy"]["methodArn"],
        }
        assert LAST["policy"]["methodArn"].endswith("/Prod/GET/token")
        assert allowed.json()["requestContext"]["authorizer"]["principalId"] == "user-9"
        denied = await get(port, "/Prod/token", Authorization="deny")
        assert (denied.status, denied.body) == (
            403,
            b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
        )
        unauthorized = await get(port, "/Prod/token", Authorization="unauthorized")
        assert (unauthorized.status, unauthorized.body) == (401, b'{"message":"Unauthorized"}')
        broken = await get(port, "/Prod/token", Authorization="other")
        assert (broken.status, broken.body) == (500, b'{"message": null}')
        calls = CALLS["policy"]
        invalid = await get(port, "/Prod/token", Authorization="Not-Valid 1")
        assert invalid.status == 401 and CALLS["policy"] == calls  # refused by its validation
        missing = await get(port, "/Prod/token")
        assert missing.status == 401

    scenario(tmp_path, test)


def test_a_rest_request_authorizer_gets_the_request(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        allowed = await get(ports["r"], "/Prod/request?q=1", **{"X-Token": "allow"})
        assert allowed.status == 200
        assert allowed.json()["requestContext"]["authorizer"]["tier"] == "gold"

    scenario(tmp_path, test)


def test_a_jwt_authorizer(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        port = ports["h"]
        allowed = await get(port, "/jwt", Authorization=f"Bearer {TOKENS['valid']}")
        assert allowed.status == 200
        passed = allowed.json()["requestContext"]["authorizer"]["jwt"]
        assert passed["claims"]["sub"] == "ana" and passed["claims"]["groups"] == "[a b]"
        assert passed["claims"]["exp"] == "4102444800"
        assert passed["scopes"] == ["orders.read", "profile"]
        v1 = await get(port, "/jwt1", Authorization=TOKENS["valid"])
        assert v1.json()["requestContext"]["authorizer"]["claims"]["sub"] == "ana"
        expired = await get(port, "/jwt", Authorization=f"Bearer {TOKENS['expired']}")
        assert (expired.status, expired.body) == (401, b'{"message":"Unauthorized"}')
        assert expired.headers["www-authenticate"] == (
            'Bearer scope="" error="invalid_token" error_description="the token has expired"'
        )
        assert (await get(port, "/jwt")).status == 401
        scoped = await get(port, "/scoped", Authorization=f"Bearer {TOKENS['valid']}")
        assert (scoped.status, scoped.body) == (403, b'{"message":"Forbidden"}')

    scenario(tmp_path, test)


def test_cors_preflight_and_responses(tmp_path: Path) -> None:
    async def test(ports: dict[str, int]) -> None:
        port = ports["h"]
        asked = await get(
            port,
            "/simple",
            "OPTIONS",
            Origin="https://app.example",
            **{
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert asked.status == 204  # answered before any authorizer
        assert asked.headers["access-control-allow-origin"] == "https://app.example"
        assert asked.headers["access-control-allow-methods"] == "GET"
        assert asked.headers["access-control-max-age"] == "60"
        assert CALLS["simple"] == 0
        got = await get(port, "/open", Origin="https://app.example")
        assert got.headers["access-control-allow-origin"] == "https://app.example"
        other = await get(port, "/open", Origin="https://evil.example")
        assert "access-control-allow-origin" not in other.headers
        denied = await get(port, "/simple", Origin="https://app.example")
        assert denied.status == 401
        assert denied.headers["access-control-allow-origin"] == "https://app.example"

    scenario(tmp_path, test)


def test_the_cache_is_bounded_however_many_identities_call() -> None:
    """A client sending a new token each time cannot grow lrun's memory: at most MAX_CACHED
    answers are kept per API, the oldest dropped first."""
    import asyncio

    from orchestrator.gateway.authorizers import MAX_CACHED, Authorizers, Granted
    from orchestrator.gateway.exchange import GatewayRequest, Target
    from orchestrator.manifest.apis import ApiSpec, AuthorizerSpec, HttpRoute, RouteKey
    from orchestrator.sandbox.environment import Answer

    asked: list[bytes] = []

    async def invoke(name: str, event: bytes, timeout: float) -> Answer:
        asked.append(event)
        return Answer(b'{"isAuthorized": true}')

    spec = ApiSpec(
        "h",
        "http",
        authorizers={
            "a": AuthorizerSpec(
                "a", "request", ("$request.header.Authorization",), "f", simple_responses=True
            )
        },
    )
    route = HttpRoute("h", RouteKey.parse("GET /"), "fn", "a")
    target = Target("GET /", "/", {}, "$default", spec.api_id, "h", None, "/")
    authorizers = Authorizers(spec, invoke, print)

    async def main() -> None:
        for n in range(MAX_CACHED + 200):
            request = GatewayRequest(
                "GET", "/", "", (("Authorization", f"token-{n}"),), b"", "127.0.0.1", 0, "r"
            )
            assert isinstance(await authorizers.authorize(route, request, target), Granted)
        first = GatewayRequest(
            "GET", "/", "", (("Authorization", "token-0"),), b"", "127.0.0.1", 0, "r"
        )
        await authorizers.authorize(route, first, target)

    asyncio.run(main())
    assert authorizers.cached == MAX_CACHED
    assert len(asked) == MAX_CACHED + 201  # token-0 was dropped, so it was asked again
