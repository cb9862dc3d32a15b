"""The manifest's API Gateway keys: ``apis:`` and each function's ``http:`` routes.

Every problem names the file, the line and the key, as the rest of the manifest's do.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError, Problem
from orchestrator.manifest import load
from orchestrator.manifest.apis import (
    ApiSpec,
    AuthorizerSpec,
    CorsSpec,
    HttpRoute,
    RouteKey,
    RouteKeyError,
)

FUNCTIONS = """
functions:
  api:
    runtime: python3.13
    handler: app.handler
    code: ./api
    http:
{routes}
  auth:
    runtime: python3.13
    handler: app.auth
    code: ./api
"""


def write(tmp_path: Path, routes: str, apis: str) -> Path:
    """A manifest with functions `api` (the routes given, indented under http:) and `auth`,
    then the apis given. The first route is on line 7."""
    (tmp_path / "api").mkdir(exist_ok=True)
    indented = textwrap.indent(textwrap.dedent(routes).strip("\n"), "      ")
    text = FUNCTIONS.format(routes=indented).lstrip("\n") + textwrap.dedent(apis).lstrip("\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load(path)
    return list(info.value.problems)


def one_problem(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return str(found[0])


def test_the_issues_example(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "jwks.json").write_text('{"keys": []}')
    path = write(
        tmp_path,
        """
        - {api: shop, route: "GET /items/{id}"}
        - {api: shop, route: "ANY /admin/{proxy+}", authorizer: admin-check}
        - {api: shop, route: "GET /me", authorizer: tokens, scopes: [profile]}
        - {api: legacy, route: "GET /rest/hello", timeout_ms: 5000}
        """,
        """
        apis:
          shop:
            type: http
            port: 9002
            stage: $default
            cors: {allow_origins: ["*"], allow_methods: [get, POST], max_age: 300}
            authorizers:
              admin-check:
                type: request
                function: auth
                identity_source: $request.header.Authorization
                simple_responses: true
              tokens:
                {type: jwt, issuer: https://issuer.example, audience: [app], jwks: keys/jwks.json}
          legacy: {type: rest, stage: dev, binary_media_types: [image/png]}
        """,
    )
    loaded = load(path)
    shop, legacy = loaded.apis["shop"], loaded.apis["legacy"]
    assert shop.type == "http" and shop.port == 9002 and shop.stage == "$default"
    assert shop.base_path == ""
    assert shop.cors == CorsSpec(("*",), ("GET", "POST"), (), (), 300, False)
    assert shop.authorizers["admin-check"] == AuthorizerSpec(
        "admin-check",
        "request",
        ("$request.header.Authorization",),
        "auth",
        ttl=300,
        payload="2.0",
        simple_responses=True,
    )
    jwt = shop.authorizers["tokens"]
    assert (jwt.type, jwt.issuer, jwt.audience, jwt.jwks, jwt.identity_source) == (
        "jwt",
        "https://issuer.example",
        ("app",),
        (tmp_path / "keys" / "jwks.json").resolve(),
        ("$request.header.Authorization",),
    )
    assert shop.routes == (
        HttpRoute("shop", RouteKey("GET", "/items/{id}", ("items", "{id}")), "api"),
        HttpRoute(
            "shop",
            RouteKey("ANY", "/admin/{proxy+}", ("admin", "{proxy+}")),
            "api",
            "admin-check",
        ),
        HttpRoute("shop", RouteKey("GET", "/me", ("me",)), "api", "tokens", ("profile",)),
    )
    assert legacy == ApiSpec(
        "legacy",
        "rest",
        None,
        "dev",
        None,
        legacy.authorizers,
        (
            HttpRoute(
                "legacy",
                RouteKey("GET", "/rest/hello", ("rest", "hello")),
                "api",
                payload="1.0",
                timeout_ms=5000,
            ),
        ),
        ("image/png",),
    )
    assert legacy.base_path == "/dev"


def test_defaults_follow_the_apis_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        - {api: h, route: $default}
        - {api: r, route: "ANY /{proxy+}"}
        """,
        "apis: {h: {type: http}, r: {type: rest}}",
    )
    apis = load(path).apis
    assert (apis["h"].stage, apis["h"].port, apis["h"].routes[0].payload) == (
        "$default",
        None,
        "2.0",
    )
    assert apis["h"].routes[0].timeout_ms == 30_000
    assert (apis["r"].stage, apis["r"].routes[0].payload) == ("Prod", "1.0")
    assert apis["r"].routes[0].timeout_ms == 29_000
    assert apis["h"].api_id != apis["r"].api_id and len(apis["h"].api_id) == 10


def test_an_http_api_may_send_payload_10(tmp_path: Path) -> None:
    path = write(tmp_path, '- {api: h, route: "GET /", payload: "1.0"}', "apis: {h: {type: http}}")
    assert load(path).apis["h"].routes[0].payload == "1.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GET items", "'GET items': the path must start with '/', e.g. GET /items"),
        ("FETCH /x", "'FETCH /x' is not a route key; write METHOD /path with METHOD one of"),
        ("GET /a//b", "'GET /a//b' has an empty segment"),
        ("GET /a/b{id}", "'GET /a/b{id}' has the segment 'b{id}'"),
        ("GET /{p+}/x", "'GET /{p+}/x': a greedy {p+} must be the last segment"),
        ("GET /{a}/{a}", "'GET /{a}/{a}' uses the path variable 'a' twice"),
    ],
)
def test_route_keys_that_are_not(text: str, message: str) -> None:
    with pytest.raises(RouteKeyError) as info:
        RouteKey.parse(text)
    assert str(info.value).startswith(message)


def test_a_bad_route_key_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, '- {api: h, route: "GET /a//b"}', "apis: {h: {type: http}}")
    assert one_problem(path) == (
        f"{path}:7: functions.api.http[0].route: 'GET /a//b' has an empty segment; segments "
        "are literal text or a whole {name} variable"
    )


def test_an_unknown_api(tmp_path: Path) -> None:
    path = write(tmp_path, '- {api: shpo, route: "GET /"}', "apis: {shop: {type: http}}")
    assert one_problem(path) == (
        f"{path}:7: functions.api.http[0].api: unknown api 'shpo'; did you mean 'shop'? define "
        "it under apis: (there: shop), e.g. apis: {shop: {type: http, port: 9002}}"
    )


def test_a_route_served_twice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        - {api: h, route: "GET /x"}
        - {api: h, route: "GET /x"}
        """,
        "apis: {h: {type: http}}",
    )
    assert one_problem(path) == (
        f"{path}:8: functions.api.http[1].route: route 'GET /x' of API 'h' is already served; "
        "serve each route once per API (function 'api', line 7)"
    )


def test_two_apis_on_one_port(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '- {api: a, route: "GET /"}',
        "apis: {a: {type: http, port: 9002}, b: {type: rest, port: 9002}}",
    )
    assert one_problem(path) == (
        f"{path}:12: apis.b.port: port 9002 is taken by API 'a'; give each API a port of its own "
        "(or none: lrun picks a free one)"
    )


@pytest.mark.parametrize(
    ("routes", "apis", "where", "message"),
    [
        (
            '- {api: r, route: "$default"}',
            "apis: {r: {type: rest}}",
            "functions.api.http[0].route",
            "$default is for HTTP APIs; a REST API routes by resource, e.g. ANY /{proxy+}",
        ),
        (
            '- {api: r, route: "GET /", payload: "2.0"}',
            "apis: {r: {type: rest}}",
            "functions.api.http[0].payload",
            "a REST API sends payload 1.0; remove payload",
        ),
        (
            '- {api: r, route: "GET /", timeout_ms: 30000}',
            "apis: {r: {type: rest}}",
            "functions.api.http[0].timeout_ms",
            "30000 is out of range; timeout_ms must be from 50 to 29000 milliseconds on a REST API",
        ),
        (
            '- {api: h, route: "GET /", authorizer: nobody}',
            "apis: {h: {type: http}}",
            "functions.api.http[0].authorizer",
            "unknown authorizer 'nobody'; define it under apis.h.authorizers (there: none)",
        ),
        (
            '- {api: h, route: "GET /", scopes: [a]}',
            "apis: {h: {type: http}}",
            "functions.api.http[0].scopes",
            "scopes are checked by a JWT authorizer only; remove them or add one",
        ),
        (
            '- {api: h, route: "GET /", verb: GET}',
            "apis: {h: {type: http}}",
            "functions.api.http[0].verb",
            "unknown key 'verb'; allowed keys: api, authorizer, payload, qualifier, route, scopes, "
            "timeout_ms",
        ),
    ],
)
def test_routes_their_api_refuses(
    tmp_path: Path, routes: str, apis: str, where: str, message: str
) -> None:
    path = write(tmp_path, routes, apis)
    assert one_problem(path) == f"{path}:7: {where}: {message}"


@pytest.mark.parametrize(
    ("apis", "where", "message"),
    [
        (
            "apis: {h: {port: 1}}",
            "apis.h",
            "type is missing; set type: http (an HTTP API, payload 2.0), type: rest (a REST "
            "API, 1.0) or type: websocket",
        ),
        (
            "apis: {h: {type: soap}}",
            "apis.h.type",
            "unknown type 'soap'; type must be one of: http, rest, websocket",
        ),
        (
            "apis: {h: {type: http, port: 70000}}",
            "apis.h.port",
            "70000 is out of range; port must be an integer from 1 to 65535",
        ),
        (
            "apis: {h: {type: rest, stage: $default}}",
            "apis.h.stage",
            "'$default' is not a stage name; a REST API's stage is 1 to 128 letters, digits, - or "
            "_ (REST has no $default)",
        ),
        (
            "apis: {h: {type: rest, cors: {allow_origins: ['*']}}}",
            "apis.h.cors",
            "cors is for HTTP APIs; a REST API's CORS headers come from its functions (answer "
            "OPTIONS in one)",
        ),
        (
            "apis: {h: {type: http, cors: {allow_origins: ['*'], allow_credentials: true}}}",
            "apis.h.cors.allow_credentials",
            "allow_credentials cannot be used with allow_origins '*'; name the origins, as API "
            "Gateway requires with allow_credentials: true",
        ),
        (
            "apis: {h: {type: http, cors: {allow_methods: [FETCH]}}}",
            "apis.h.cors.allow_methods",
            "unknown method 'FETCH'; use * or methods among GET, POST, PUT, PATCH, DELETE, HEAD, "
            "OPTIONS",
        ),
        (
            "apis: {h: {type: http, binary_media_types: [image/png]}}",
            "apis.h.binary_media_types",
            "it is for REST APIs; an HTTP API base64-encodes bodies that are not text on its own; "
            "remove it",
        ),
        (
            "apis: {h: {type: http, authorizers: {t: {type: token, function: auth}}}}",
            "apis.h.authorizers.t.type",
            "type 'token' is not allowed; an HTTP API's authorizers have type: request or jwt",
        ),
        (
            "apis: {h: {type: rest, authorizers: {j: {type: jwt}}}}",
            "apis.h.authorizers.j.type",
            "type 'jwt' is not allowed; a REST API's authorizers have type: request or token",
        ),
        (
            "apis: {h: {type: http, authorizers: {a: {type: request, function: nobody, ttl: 0}}}}",
            "apis.h.authorizers.a.function",
            "unknown function 'nobody'; define it under functions: (there: api, auth)",
        ),
        (
            "apis: {h: {type: http, authorizers: {a: {type: request, function: auth}}}}",
            "apis.h.authorizers.a.identity_source",
            "a cached authorizer needs an identity source; say where the identity is (e.g. "
            "identity_source: [$request.header.Authorization]) or set ttl: 0",
        ),
        (
            "apis: {h: {type: http, authorizers: {a: {type: request, function: auth, "
            "identity_source: $request.body.x}}}}",
            "apis.h.authorizers.a.identity_source",
            "'$request.body.x' is not an identity source it can read; lrun reads a request header "
            "or query string parameter, written e.g. $request.header.Authorization",
        ),
        (
            "apis: {h: {type: http, authorizers: {a: {type: request, function: auth, payload: "
            "'1.0', simple_responses: true, ttl: 0}}}}",
            "apis.h.authorizers.a.simple_responses",
            "simple responses need payload 2.0; set payload: '2.0' or remove simple_responses",
        ),
        (
            "apis: {h: {type: http, authorizers: {j: {type: jwt, issuer: https://x}}}}",
            "apis.h.authorizers.j",
            "missing audience, jwks; a JWT authorizer checks iss, aud and the signature against a "
            "local JWKS file",
        ),
        (
            "apis: {h: {type: rest, authorizers: {t: {type: token, function: auth, validation: "
            "'('}}}}",
            "apis.h.authorizers.t.validation",
            "'(' is not a regular expression (missing ), unterminated subpattern at position 0)",
        ),
    ],
)
def test_apis_that_are_not(tmp_path: Path, apis: str, where: str, message: str) -> None:
    path = write(tmp_path, '- {api: h, route: "GET /"}', apis)
    found = problems(path)
    assert [(p.line, p.where, p.message) for p in found] == [(12, where, message)]


def test_a_key_set_outside_the_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "jwks.json").write_text("{}")
    path = write(
        project,
        '- {api: h, route: "GET /"}',
        "apis: {h: {type: http, authorizers: {j: {type: jwt, issuer: x, audience: [a], jwks: "
        "../jwks.json}}}}",
    )
    message = one_problem(path)
    assert message.startswith(f"{path}:12: apis.h.authorizers.j.jwks: '../jwks.json' (")
    assert message.endswith(
        f") is outside the project; keep the key set inside the project directory {project}"
    )


def test_a_rest_resource_has_one_variable_name_per_level(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        - {api: r, route: "GET /items/{id}"}
        - {api: r, route: "DELETE /items/{item}"}
        """,
        "apis: {r: {type: rest}}",
    )
    assert one_problem(path).endswith(
        "apis.r: /items has both {id} and {item} below it; a REST resource has one variable "
        "child: name it alike in every route"
    )


def test_without_apis_a_manifest_has_none(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    path = tmp_path / "lrun.yaml"
    path.write_text("functions: {api: {runtime: python3.13, handler: app.h, code: ./api}}\n")
    assert dict(load(path).apis) == {}


def test_a_route_may_name_a_version_or_alias(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        - {api: h, route: "GET /a", qualifier: live}
        - {api: h, route: "GET /b", qualifier: "3"}
        """,
        "apis: {h: {type: http}}",
    )
    assert [r.qualifier for r in load(path).apis["h"].routes] == ["live", "3"]
    bad = write(
        tmp_path, '- {api: h, route: "GET /a", qualifier: "a:b"}', "apis: {h: {type: http}}"
    )
    assert one_problem(bad) == (
        f"{bad}:7: functions.api.http[0].qualifier: 'a:b' is not a qualifier; name a version "
        "(e.g. 3) or an alias (e.g. live) of the function"
    )
