"""Reading an API's ``authorizers:``: Lambda authorizers and JWT authorizers.

Part of the manifest's reading (``orchestrator.manifest.api_reader``). What each API type allows
is API Gateway's: HTTP APIs have Lambda REQUEST authorizers (payload 1.0 or 2.0, optionally with
simple responses) and JWT authorizers; REST APIs have Lambda REQUEST and TOKEN authorizers.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from orchestrator.errors import show as _show
from orchestrator.manifest.apis import (
    AUTHORIZER_TTL_RANGE,
    AUTHORIZER_TYPES,
    PAYLOAD_VERSIONS,
    ApiType,
    AuthorizerSpec,
    AuthorizerType,
)
from orchestrator.manifest.reader import Reader

AUTHORIZER_KEYS = {
    "request": frozenset(
        {"type", "function", "identity_source", "ttl", "payload", "simple_responses"}
    ),
    "token": frozenset({"type", "function", "identity_source", "ttl", "validation"}),
    "jwt": frozenset({"type", "identity_source", "issuer", "audience", "jwks"}),
}
_HEADER = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
# Identity sources lrun can read: a header or a query string parameter of the request.
IDENTITY_SOURCE = {
    "http": re.compile(rf"\$request\.(header|querystring)\.({_HEADER})"),
    "rest": re.compile(rf"method\.request\.(header|querystring)\.({_HEADER})"),
}
DEFAULT_IDENTITY = {
    "http": "$request.header.Authorization",
    "rest": "method.request.header.Authorization",
}
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_KINDS: dict[ApiType, tuple[AuthorizerType, ...]] = {
    "http": ("request", "jwt"),
    "rest": ("request", "token"),
}


def read_authorizers(self: Reader, where: str, api_type: ApiType) -> dict[str, AuthorizerSpec]:
    if (got := self.get("authorizers")) is None:
        return {}
    node, _, at = got
    if not isinstance(node, yaml.MappingNode):
        fix = "write authorizers: {NAME: {type: request, function: FUNCTION}}"
        self.add(node, at, f"{_show(self.value(node))} is not a mapping; {fix}")
        return {}
    found: dict[str, AuthorizerSpec] = {}
    for name, (name_node, spec_node) in self.items(node, at, None).items():
        if not _NAME.fullmatch(name):
            fix = "use 1 to 64 letters, digits, hyphens or underscores"
            self.add(name_node, f"{at}.{name}", f"authorizer name {name!r} is invalid; {fix}")
            continue
        spec = _authorizer(self, name, spec_node, f"{at}.{name}", api_type)
        if spec is not None:
            found[name] = spec
    return found


def _kind(self: Reader, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "type":
                return self.value(value)
    return None


def _authorizer(
    self: Reader, name: str, node: yaml.Node, where: str, api_type: ApiType
) -> AuthorizerSpec | None:
    kinds = _KINDS[api_type]
    kind = _kind(self, node)
    if kind not in AUTHORIZER_TYPES or kind not in kinds:
        api = "an HTTP API" if api_type == "http" else "a REST API"
        fix = f"{api}'s authorizers have type: {' or '.join(kinds)}"
        what = "missing type" if kind is None else f"type {_show(kind)} is not allowed"
        self.add(node, f"{where}.type", f"{what}; {fix}")
        return None
    authorizer_type = kinds[kinds.index(kind)]  # the typed value of what was checked above
    with self.section(node, where, AUTHORIZER_KEYS[authorizer_type]) as ok:
        if not ok:
            return None
        sources = _identity_sources(self, api_type, authorizer_type)
        if authorizer_type == "jwt":
            return _jwt(self, name, node, where, sources)
        return _lambda(self, name, node, where, api_type, authorizer_type, sources)


def _lambda(
    self: Reader,
    name: str,
    node: yaml.Node,
    where: str,
    api_type: ApiType,
    kind: AuthorizerType,
    sources: tuple[str, ...],
) -> AuthorizerSpec | None:
    function = self.refer("function", "functions")
    if function is None:
        if "function" not in self.fields:
            fix = "name the authorizer function, e.g. function: auth"
            self.add(node, f"{where}.function", f"missing function; {fix}")
        return None
    payload = "1.0" if api_type == "rest" else (self.choice("payload", PAYLOAD_VERSIONS) or "2.0")
    simple = self.flag("simple_responses")
    if simple and payload != "2.0":
        fix = "set payload: '2.0' or remove simple_responses"
        at = f"{where}.simple_responses"
        self.add(
            self.fields["simple_responses"][1], at, f"simple responses need payload 2.0; {fix}"
        )
    validation = self.text("validation", None, "validation must be a regular expression")
    if validation is not None:
        try:
            re.compile(validation)
        except re.error as exc:
            at = f"{where}.validation"
            message = f"{validation!r} is not a regular expression ({exc})"
            self.add(self.fields["validation"][1], at, message)
            validation = None
    ttl = self.integer("ttl", *AUTHORIZER_TTL_RANGE, "seconds", 300)
    if kind == "token":
        if len(sources) > 1:
            at = f"{where}.identity_source"
            message = "a token authorizer reads one header; give one"
            self.add(self.fields["identity_source"][1], at, message)
        sources = sources or (DEFAULT_IDENTITY["rest"],)
    elif ttl and "identity_source" not in self.fields:
        example = DEFAULT_IDENTITY[api_type]
        fix = f"say where the identity is (e.g. identity_source: [{example}]) or set ttl: 0"
        message = f"a cached authorizer needs an identity source; {fix}"
        self.add(node, f"{where}.identity_source", message)
    return AuthorizerSpec(name, kind, sources, function, ttl, payload, simple, validation)


def _identity_sources(self: Reader, api_type: ApiType, kind: AuthorizerType) -> tuple[str, ...]:
    if (got := self.get("identity_source")) is None:
        return (DEFAULT_IDENTITY["http"],) if kind == "jwt" else ()
    node, value, at = got
    values = [value] if isinstance(value, str) else value
    pattern = IDENTITY_SOURCE[api_type]
    example = DEFAULT_IDENTITY[api_type]
    if not isinstance(values, list) or not values:
        fix = f"write e.g. identity_source: {example}"
        self.add(node, at, f"{_show(value)} is not an identity source; {fix}")
        return ()
    sources: list[str] = []
    for item in values:
        if not isinstance(item, str) or not pattern.fullmatch(item):
            fix = f"lrun reads a request header or query string parameter, written e.g. {example}"
            self.add(node, at, f"{_show(item)} is not an identity source it can read; {fix}")
        elif kind in ("token", "jwt") and ".querystring." in item:
            fix = f"e.g. {example}"
            self.add(node, at, f"{item!r}: a {kind} authorizer reads a header; {fix}")
        else:
            sources.append(item)
    return tuple(sources)


def _jwt(
    self: Reader, name: str, node: yaml.Node, where: str, sources: tuple[str, ...]
) -> AuthorizerSpec | None:
    before = len(self.problems)
    issuer = self.text("issuer", None, "issuer must be the iss tokens carry")
    audience = self.string_list("audience", "[my-client-id]")
    jwks = _jwks(self)
    missing = [
        k for k, v in (("issuer", issuer), ("audience", audience), ("jwks", jwks)) if v is None
    ]
    if missing and len(self.problems) == before:
        fix = "a JWT authorizer checks iss, aud and the signature against a local JWKS file"
        self.add(node, where, f"missing {', '.join(missing)}; {fix}")
    if issuer is None or audience is None or jwks is None:
        return None
    return AuthorizerSpec(name, "jwt", sources, ttl=0, issuer=issuer, audience=audience, jwks=jwks)


def _jwks(self: Reader) -> Path | None:
    if (got := self.get("jwks")) is None:
        return None
    node, value, where = got
    example = "jwks: ./keys/jwks.json"
    if not isinstance(value, str) or not value:
        self.add(node, where, f"{_show(value)} is not a path; write e.g. {example}")
        return None
    path = (self.base / Path(value).expanduser()).resolve()
    if not path.is_relative_to(self.base.resolve()):
        fix = f"keep the key set inside the project directory {self.base}"
        self.add(node, where, f"{value!r} ({path}) is outside the project; {fix}")
    elif not path.is_file():
        fix = f"give a JSON Web Key Set file, e.g. {example}"
        self.add(node, where, f"{value!r} ({path}) is not a file; {fix}")
    else:
        return path
    return None
