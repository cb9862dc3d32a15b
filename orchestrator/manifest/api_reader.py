"""Reading the manifest's ``apis:``: each API's type, port, stage, CORS and authorizers.

Part of the manifest's reading (``orchestrator.manifest``), apart only to keep modules small: the
functions take the manifest's reader and use its typed helpers, so every problem is located (file,
line, key) and worded like the rest. Authorizers are read by ``authorizer_reader``, the functions'
``http:`` routes by ``route_reader``.
"""

from __future__ import annotations

import re
from types import MappingProxyType

import yaml

from orchestrator.errors import show as _show
from orchestrator.manifest.apis import (
    API_TYPES,
    CORS_MAX_AGE_RANGE,
    DEFAULT_STAGE,
    HTTP_METHODS,
    REST_DEFAULT_STAGE,
    WEBSOCKET_DEFAULT_STAGE,
    ApiSpec,
    ApiType,
    CorsSpec,
    valid_stage,
)
from orchestrator.manifest.authorizer_reader import read_authorizers
from orchestrator.manifest.reader import Items, Reader
from orchestrator.manifest.route_selection import RouteSelection, RouteSelectionError

API_KEYS = frozenset(
    {"type", "port", "stage", "cors", "authorizers", "binary_media_types", "route_selection"}
)
# What an HTTP or REST API has that a WebSocket API has not (here: lrun serves no WebSocket
# authorizer yet, and CORS and media types are HTTP's).
_NOT_WEBSOCKET = ("cors", "authorizers", "binary_media_types")
CORS_KEYS = frozenset(
    {
        "allow_origins",
        "allow_methods",
        "allow_headers",
        "expose_headers",
        "max_age",
        "allow_credentials",
    }
)
NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
NAME_RULE = "use 1 to 64 letters, digits, hyphens or underscores"
EXAMPLE = "apis: {shop: {type: http, port: 9002}}"
_STAGE_RULE = {
    "http": "use $default (served at the root) or 1 to 128 letters, digits, - or _",
    "rest": "a REST API's stage is 1 to 128 letters, digits, - or _ (REST has no $default)",
    "websocket": "a WebSocket API's stage is 1 to 128 letters, digits, - or _ (no $default)",
}


def read_apis(self: Reader, items: Items) -> None:
    key, node = items.get("apis", (None, None))
    if node is None:
        return
    if not isinstance(node, yaml.MappingNode):
        fix = f"write e.g. {EXAMPLE}"
        self.add(key, "apis", f"{_show(self.value(node))} is not a mapping of APIs; {fix}")
        return
    ports: dict[int, str] = {}
    for name, (name_node, spec_node) in self.items(node, "apis", None).items():
        where = f"apis.{name}"
        self.api_names.add(name)
        if not NAME.fullmatch(name):
            self.add(name_node, where, f"API name {name!r} is invalid; {NAME_RULE}")
        spec = _api(self, name, spec_node)
        if spec is None:
            continue
        if spec.port is not None:
            if spec.port in ports:
                fix = "give each API a port of its own (or none: lrun picks a free one)"
                what = f"port {spec.port} is taken by API {ports[spec.port]!r}"
                self.add(spec_node, f"{where}.port", f"{what}; {fix}")
            ports[spec.port] = name
        self.apis[name] = spec


def _api(self: Reader, name: str, node: yaml.Node) -> ApiSpec | None:
    where = f"apis.{name}"
    with self.section(node, where, API_KEYS) as ok:
        if not ok:
            return None
        if "type" not in self.fields:
            fix = (
                "set type: http (an HTTP API, payload 2.0), type: rest (a REST API, 1.0) "
                "or type: websocket"
            )
            self.add(node, where, f"type is missing; {fix}")
            return None
        kind = self.choice("type", API_TYPES)
        if kind is None:
            return None
        api_type: ApiType = "http" if kind == "http" else "rest" if kind == "rest" else "websocket"
        port = self.integer("port", 1, 65535, "", None)
        stage = {"http": DEFAULT_STAGE, "rest": REST_DEFAULT_STAGE}.get(
            api_type, WEBSOCKET_DEFAULT_STAGE
        )
        if (got := self.get("stage")) is not None:
            value_node, value, at = got
            if isinstance(value, str) and valid_stage(value, api_type):
                stage = value
            else:
                rule = _STAGE_RULE[api_type]
                self.add(value_node, at, f"{_show(value)} is not a stage name; {rule}")
        if api_type == "websocket":
            return _websocket(self, name, port, stage)
        if "route_selection" in self.fields:
            fix = "HTTP and REST APIs route by method and path; remove it"
            at = f"{where}.route_selection"
            self.add(self.fields["route_selection"][0], at, f"it is for WebSocket APIs; {fix}")
        cors = _cors(self, where, api_type)
        binary = self.string_list("binary_media_types", "[image/png, application/octet-stream]")
        if binary and api_type == "http":
            fix = "an HTTP API base64-encodes bodies that are not text on its own; remove it"
            at = f"{where}.binary_media_types"
            self.add(self.fields["binary_media_types"][0], at, f"it is for REST APIs; {fix}")
        authorizers = read_authorizers(self, where, api_type)
        return ApiSpec(
            name,
            api_type,
            port,
            stage,
            cors,
            MappingProxyType(authorizers),
            (),
            binary or (),
        )


def _websocket(self: Reader, name: str, port: int | None, stage: str) -> ApiSpec:
    where = f"apis.{name}"
    for key in _NOT_WEBSOCKET:
        if key in self.fields:
            fix = "remove it (a WebSocket API routes messages by route_selection)"
            self.add(
                self.fields[key][0], f"{where}.{key}", f"{key} is not for WebSocket APIs; {fix}"
            )
    spec = ApiSpec(name, "websocket", port, stage)
    text = self.text("route_selection", 256, "write e.g. route_selection: $request.body.action")
    if text is not None:
        try:
            RouteSelection.parse(text)
        except RouteSelectionError as exc:
            self.add(self.fields["route_selection"][1], f"{where}.route_selection", str(exc))
        else:
            spec = ApiSpec(name, "websocket", port, stage, route_selection=text)
    return spec


def read_cors(self: Reader, where: str) -> CorsSpec | None:
    """``cors:`` in the section being read, in an HTTP API's shape (a function URL's too)."""
    return _cors(self, where, "http")


def _cors(self: Reader, where: str, api_type: ApiType) -> CorsSpec | None:
    if (got := self.get("cors")) is None:
        return None
    node, _, at = got
    if api_type == "rest":
        fix = "a REST API's CORS headers come from its functions (answer OPTIONS in one)"
        self.add(self.fields["cors"][0], at, f"cors is for HTTP APIs; {fix}")
        return None
    with self.section(node, at, CORS_KEYS) as ok:
        if not ok:
            return None
        methods = self.string_list("allow_methods", "[GET, POST]") or ()
        for method in methods:
            if method != "*" and method.upper() not in HTTP_METHODS:
                fix = f"use * or methods among {', '.join(HTTP_METHODS)}"
                node_at = self.fields["allow_methods"][1]
                self.add(node_at, f"{at}.allow_methods", f"unknown method {method!r}; {fix}")
        spec = CorsSpec(
            self.string_list("allow_origins", '["https://example.com"]') or (),
            tuple(m.upper() for m in methods),
            self.string_list("allow_headers", "[authorization, content-type]") or (),
            self.string_list("expose_headers", "[x-request-id]") or (),
            self.integer("max_age", *CORS_MAX_AGE_RANGE, "seconds", None),
            self.flag("allow_credentials"),
        )
        if spec.allow_credentials and "*" in spec.allow_origins:
            fix = "name the origins, as API Gateway requires with allow_credentials: true"
            node_at = self.fields["allow_credentials"][1]
            what = "allow_credentials cannot be used with allow_origins '*'"
            self.add(node_at, f"{at}.allow_credentials", f"{what}; {fix}")
        return spec
