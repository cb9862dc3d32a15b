"""Reading each function's ``websocket:`` routes, and checking them against their APIs.

Part of the manifest's reading (``orchestrator.manifest``), as ``route_reader`` is for ``http:``:
a function joins a WebSocket API (``apis: {chat: {type: websocket}}``) with entries such as
``{api: chat, route: $connect}`` or ``{api: chat, route: sendmessage}``; once every function and
API is read (``check_websocket_routes``) the API must exist and be a WebSocket API, and no route
key is served twice on one API.
"""

from __future__ import annotations

import dataclasses

import yaml

from orchestrator.errors import did_you_mean as _did_you_mean
from orchestrator.errors import show as _show
from orchestrator.manifest.apis import (
    CONNECT_ROUTE,
    DISCONNECT_ROUTE,
    MAX_ROUTES,
    TIMEOUT_MS,
    WEBSOCKET_ROUTE,
    WebSocketRoute,
)
from orchestrator.manifest.reader import Reader
from orchestrator.manifest.route_reader import QUALIFIER, route_entries

WEBSOCKET_ROUTE_KEYS = frozenset({"api", "route", "timeout_ms", "qualifier", "route_response"})
_EXAMPLE = "{api: chat, route: sendmessage}"
_API_EXAMPLE = "apis: {chat: {type: websocket, port: 9003}}"
_ROUTE_RULE = (
    "a route key is $connect, $disconnect, $default or the value your route_selection "
    "yields (1 to 128 characters, no spaces, not starting with $)"
)


def read_websocket_routes(self: Reader, function: str) -> None:
    """A function's ``websocket:``: the WebSocket routes it serves (settled later)."""
    for item, at in route_entries(self, "websocket", WEBSOCKET_ROUTE_KEYS, _EXAMPLE):
        if (route := _route(self, function, item, at)) is not None:
            self.websocket_routes.append((item, at, route))


def _route(self: Reader, function: str, node: yaml.Node, where: str) -> WebSocketRoute | None:
    missing = [key for key in ("api", "route") if key not in self.fields]
    if missing:
        self.add(node, where, f"missing {' and '.join(missing)}; write e.g. {_EXAMPLE}")
        return None
    api = self.text("api", None, "api must name one of the manifest's apis")
    route_node = self.fields["route"][1]
    key = self.value(route_node)
    if not isinstance(key, str) or not WEBSOCKET_ROUTE.fullmatch(key):
        self.add(route_node, f"{where}.route", f"{_show(key)} is not a route key; {_ROUTE_RULE}")
        return None
    timeout = self.integer("timeout_ms", *TIMEOUT_MS["websocket"], "milliseconds", None)
    qualifier = self.text("qualifier", None, "qualifier must be a version number or alias name")
    if qualifier is not None and not QUALIFIER.fullmatch(qualifier):
        fix = "name a version (e.g. 3) or an alias (e.g. live) of the function"
        node_at = self.fields["qualifier"][1]
        self.add(node_at, f"{where}.qualifier", f"{qualifier!r} is not a qualifier; {fix}")
        qualifier = None
    reply = self.flag("route_response")
    if reply and key in (CONNECT_ROUTE, DISCONNECT_ROUTE):
        fix = "a message route's answer can go back to its client, not $connect's or $disconnect's"
        node_at = self.fields["route_response"][1]
        self.add(node_at, f"{where}.route_response", f"not for {key}; {fix}")
    if api is None:
        return None
    timeout_ms = timeout or TIMEOUT_MS["websocket"][1]
    return WebSocketRoute(api, key, function, timeout_ms, qualifier, reply)


def check_websocket_routes(self: Reader) -> None:
    """Give each WebSocket API its routes; report those that cannot be one's."""
    served: dict[tuple[str, str], tuple[yaml.Node, WebSocketRoute]] = {}
    routes: dict[str, list[WebSocketRoute]] = {
        name: [] for name, spec in self.apis.items() if spec.type == "websocket"
    }
    for node, where, route in self.websocket_routes:
        spec = self.apis.get(route.api)
        if spec is None and route.api in self.api_names:
            continue  # the API itself is wrong, and reported
        if spec is None or spec.type != "websocket":
            names = [name for name in routes]
            hint = _did_you_mean(route.api, names) if spec is None else ""
            what = (
                f"unknown api {route.api!r}"
                if spec is None
                else f"API {route.api!r} is a {spec.type} API (its routes go under http:)"
            )
            there = ", ".join(names) or "none"
            fix = f"{hint + ' ' if hint else ''}name a WebSocket API (there: {there})"
            self.add(node, f"{where}.api", f"{what}; {fix}, e.g. {_API_EXAMPLE}")
            continue
        earlier = served.get((route.api, route.key))
        if earlier is not None:
            line = earlier[0].start_mark.line + 1
            fix = f"serve each route once per API (function {earlier[1].function!r}, line {line})"
            what = f"route {route.key!r} of API {route.api!r} is already served"
            self.add(node, f"{where}.route", f"{what}; {fix}")
            continue
        served[(route.api, route.key)] = (node, route)
        routes[route.api].append(route)
    for name, found in routes.items():
        if len(found) > MAX_ROUTES:
            self.add(None, f"apis.{name}", f"{len(found)} routes; an API has at most {MAX_ROUTES}")
        self.apis[name] = dataclasses.replace(self.apis[name], websocket_routes=tuple(found))
