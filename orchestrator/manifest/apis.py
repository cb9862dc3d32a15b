"""API Gateway front doors as manifest values: APIs, their routes, authorizers and CORS.

An API (``apis:`` at the top level) is an HTTP API (payload format 2.0 by default, 1.0 on request)
or a REST API (1.0), served on a port of its own; a function joins one with an ``http:`` entry
naming the API and a route key such as ``GET /items/{id}``. Route keys are parsed here, once, into
``RouteKey`` values the gateway matches requests against (``orchestrator.gateway.routes``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Literal

ApiType = Literal["http", "rest", "websocket"]
AuthorizerType = Literal["request", "token", "jwt"]

API_TYPES: tuple[ApiType, ...] = ("http", "rest", "websocket")
AUTHORIZER_TYPES: tuple[AuthorizerType, ...] = ("request", "token", "jwt")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ROUTE_METHODS = ("ANY", *HTTP_METHODS)
DEFAULT_ROUTE = "$default"
DEFAULT_STAGE = "$default"  # an HTTP API's stage served at the root
REST_DEFAULT_STAGE = "Prod"  # the stage SAM deploys a REST API to; REST APIs have no $default
PAYLOAD_VERSIONS = ("1.0", "2.0")
# Integration timeouts, as API Gateway bounds them (milliseconds).
TIMEOUT_MS = {"http": (50, 30_000), "rest": (50, 29_000), "websocket": (50, 29_000)}
AUTHORIZER_TTL_RANGE = (0, 3600)  # seconds a Lambda authorizer's answer is cached
CORS_MAX_AGE_RANGE = (-1, 86_400)  # seconds; -1 turns preflight caching off, as on AWS
MAX_ROUTES = 300  # per API, API Gateway's default quota for HTTP APIs
# A WebSocket API's route selection expression when none is given: the console's default and
# the developer guide's example ("WebSocket selection expressions").
DEFAULT_ROUTE_SELECTION = "$request.body.action"
WEBSOCKET_DEFAULT_STAGE = "production"  # a WebSocket API has no $default stage
CONNECT_ROUTE, DISCONNECT_ROUTE = "$connect", "$disconnect"
WEBSOCKET_ROUTE = re.compile(r"\$connect|\$disconnect|\$default|[^$\s][\S]{0,127}")

_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_LITERAL = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=%-]+")
_VARIABLE = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")


class RouteKeyError(ValueError):
    """A route key that is not one: the message says why and how to write one."""


@dataclass(frozen=True)
class RouteKey:
    """``$default``, or a method (``ANY`` for all) and a path of literal segments, ``{name}``
    variables and, last only, one greedy ``{name+}``."""

    method: str  # "" for $default
    path: str  # "" for $default; "/" for the root
    segments: tuple[str, ...] = ()  # the path's, e.g. ("items", "{id}")

    @classmethod
    def parse(cls, text: str) -> RouteKey:
        if text == DEFAULT_ROUTE:
            return cls("", "")
        method, _, path = text.partition(" ")
        if method not in ROUTE_METHODS:
            fix = f"write METHOD /path with METHOD one of {', '.join(ROUTE_METHODS)}, or $default"
            raise RouteKeyError(f"{text!r} is not a route key; {fix}")
        if not path.startswith("/"):
            raise RouteKeyError(f"{text!r}: the path must start with '/', e.g. {method} /items")
        segments = () if path == "/" else tuple(path[1:].split("/"))
        names: set[str] = set()
        for index, segment in enumerate(segments):
            variable = _VARIABLE.fullmatch(segment)
            if variable is None:
                if not _LITERAL.fullmatch(segment):
                    what = "an empty segment" if not segment else f"the segment {segment!r}"
                    fix = "segments are literal text or a whole {name} variable"
                    raise RouteKeyError(f"{text!r} has {what}; {fix}")
                continue
            name, greedy = variable.groups()
            if greedy and index != len(segments) - 1:
                raise RouteKeyError(f"{text!r}: a greedy {{{name}+}} must be the last segment")
            if name in names:
                raise RouteKeyError(f"{text!r} uses the path variable {name!r} twice")
            names.add(name)
        return cls(method, path, segments)

    @property
    def is_default(self) -> bool:
        return not self.method

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1].endswith("+}")

    def __str__(self) -> str:
        return DEFAULT_ROUTE if self.is_default else f"{self.method} {self.path}"


@dataclass(frozen=True)
class CorsSpec:
    """An HTTP API's CORS configuration, as API Gateway's ``CorsConfiguration``."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class AuthorizerSpec:
    """A Lambda authorizer (REQUEST, or TOKEN on a REST API) or a JWT authorizer (HTTP APIs)."""

    name: str
    type: AuthorizerType
    # Where the identity comes from: ``$request.header.NAME`` / ``$request.querystring.NAME``
    # on HTTP APIs, ``method.request.header.NAME`` / ``method.request.querystring.NAME`` on REST.
    identity_source: tuple[str, ...] = ()
    function: str | None = None  # request and token: the authorizer function
    ttl: int = 300  # seconds an answer is cached by identity (0: never)
    payload: str = "2.0"  # an HTTP API's Lambda authorizer: its payload format version
    simple_responses: bool = False  # payload 2.0: {"isAuthorized": bool, "context": {...}}
    validation: str | None = None  # token: a regular expression the token must match
    issuer: str | None = None  # jwt: the ``iss`` tokens must carry
    audience: tuple[str, ...] = ()  # jwt: ``aud`` (or ``client_id``) must be one of these
    jwks: Path | None = None  # jwt: a local JSON Web Key Set file (absolute)


@dataclass(frozen=True)
class HttpRoute:
    """One function's route on one API."""

    api: str
    key: RouteKey
    function: str
    authorizer: str | None = None
    scopes: tuple[str, ...] = ()  # jwt: the token must carry one of these
    payload: str = "2.0"  # the event's payload format version (always 1.0 on a REST API)
    timeout_ms: int = 30_000
    qualifier: str | None = None  # a version or alias to invoke (None: $LATEST)


@dataclass(frozen=True)
class WebSocketRoute:
    """One function's route on a WebSocket API: ``$connect``, ``$disconnect``, ``$default`` or
    a custom key that the API's route selection expression yields for a message."""

    api: str
    key: str
    function: str
    timeout_ms: int = 29_000
    qualifier: str | None = None  # a version or alias to invoke (None: $LATEST)
    # A route response (API Gateway's RouteResponseSelectionExpression $default): the
    # function's answer is sent back to the client; without one it is not.
    route_response: bool = False


@dataclass(frozen=True)
class ApiSpec:
    name: str
    type: ApiType
    port: int | None = None  # None: any free port, chosen when lrun serve starts
    stage: str = DEFAULT_STAGE
    cors: CorsSpec | None = None
    authorizers: Mapping[str, AuthorizerSpec] = field(default_factory=lambda: MappingProxyType({}))
    routes: tuple[HttpRoute, ...] = ()
    binary_media_types: tuple[str, ...] = ()  # REST: bodies of these types pass as base64
    # WebSocket APIs: how a message's route key is found, and the routes by key.
    route_selection: str = DEFAULT_ROUTE_SELECTION
    websocket_routes: tuple[WebSocketRoute, ...] = ()

    @cached_property
    def api_id(self) -> str:
        """A stable ten-character id, as API Gateway gives each API, derived from the name."""
        digest = hashlib.sha256(self.name.encode()).digest()
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(alphabet[b % len(alphabet)] for b in digest[:10])

    @property
    def base_path(self) -> str:
        """The path prefix of every route: the stage's name, or nothing for ``$default``."""
        return "" if self.stage == DEFAULT_STAGE else f"/{self.stage}"


def valid_stage(name: str, api_type: ApiType) -> bool:
    if name == DEFAULT_STAGE:
        return api_type == "http"
    return bool(_STAGE.fullmatch(name))
