"""Reading each function's ``http:`` routes, and checking them against their APIs.

Part of the manifest's reading (``orchestrator.manifest``). Routes are read with their function,
then settled once every function and API has been read (``check_routes``): the API exists, its
type allows the route (REST has no ``$default`` and sends payload 1.0), the authorizer is the
API's, and no route key is served twice on one API.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import yaml

from orchestrator.errors import did_you_mean as _did_you_mean
from orchestrator.errors import show as _show
from orchestrator.manifest.api_reader import EXAMPLE
from orchestrator.manifest.apis import (
    MAX_ROUTES,
    PAYLOAD_VERSIONS,
    TIMEOUT_MS,
    ApiSpec,
    HttpRoute,
    RouteKey,
    RouteKeyError,
)
from orchestrator.manifest.reader import Reader

ROUTE_KEYS = frozenset(
    {"api", "route", "authorizer", "scopes", "payload", "timeout_ms", "qualifier"}
)
QUALIFIER = re.compile(r"\$LATEST|[0-9]{1,10}|[a-zA-Z0-9_-]{1,128}")
_ROUTE_EXAMPLE = '{api: shop, route: "GET /items/{id}"}'


def read_routes(self: Reader, function: str) -> None:
    """A function's ``http:``: the API routes it serves (settled by ``check_routes``)."""
    for item, at in route_entries(self, "http", ROUTE_KEYS, _ROUTE_EXAMPLE):
        if (route := _route(self, function, item, at)) is not None:
            self.http_routes.append((item, at, route))


def route_entries(
    self: Reader, key: str, keys: frozenset[str], example: str
) -> Iterator[tuple[yaml.Node, str]]:
    """Each well-formed entry of a function's list of routes under ``key`` (``http:`` or
    ``websocket:``), with where it is; the list's own mistakes are reported here."""
    if (got := self.get(key)) is None:
        return
    node, _, where = got
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        fix = f"write e.g. {key}: [{example}]"
        self.add(node, where, f"{_show(self.value(node))} is not a list of routes; {fix}")
        return
    for index, item in enumerate(node.value):
        at = f"{where}[{index}]"
        with self.section(item, at, keys) as ok:
            if ok:
                yield item, at


def _route(self: Reader, function: str, node: yaml.Node, where: str) -> HttpRoute | None:
    missing = [key for key in ("api", "route") if key not in self.fields]
    if missing:
        fix = f"write e.g. {_ROUTE_EXAMPLE}"
        self.add(node, where, f"missing {' and '.join(missing)}; {fix}")
        return None
    api = self.text("api", None, "api must name one of the manifest's apis")
    route_node = self.fields["route"][1]
    text, route_where = self.value(route_node), f"{where}.route"
    try:
        if not isinstance(text, str):
            raise RouteKeyError(f"{_show(text)} is not a route key; write e.g. GET /items/{{id}}")
        key = RouteKey.parse(text)
    except RouteKeyError as exc:
        self.add(route_node, route_where, str(exc))
        return None
    payload = self.choice("payload", PAYLOAD_VERSIONS)
    timeout = self.integer("timeout_ms", *TIMEOUT_MS["http"], "milliseconds", None)
    authorizer = self.text("authorizer", None, "authorizer must name one of the API's authorizers")
    scopes = self.string_list("scopes", "[orders.read]") or ()
    qualifier = self.text("qualifier", None, "qualifier must be a version number or alias name")
    if qualifier is not None and not QUALIFIER.fullmatch(qualifier):
        fix = "name a version (e.g. 3) or an alias (e.g. live) of the function"
        node_at = self.fields["qualifier"][1]
        self.add(node_at, f"{where}.qualifier", f"{qualifier!r} is not a qualifier; {fix}")
        qualifier = None
    if api is None:
        return None
    # The payload and timeout defaults are the API's type's: "" and 0 until it is known.
    return HttpRoute(api, key, function, authorizer, scopes, payload or "", timeout or 0, qualifier)


def check_routes(self: Reader) -> None:
    """Give each API its routes; report those that cannot be one's."""
    served: dict[tuple[str, str], tuple[yaml.Node, HttpRoute]] = {}
    routes: dict[str, list[HttpRoute]] = {name: [] for name in self.apis}
    for node, where, route in self.http_routes:
        spec = self.apis.get(route.api)
        if spec is None and route.api in self.api_names:
            continue  # the API itself is wrong, and reported
        if spec is None:
            hint = _did_you_mean(route.api, self.apis)
            names = ", ".join(self.apis) or "none"
            fix = f"{hint + ' ' if hint else ''}define it under apis: (there: {names})"
            self.add(node, f"{where}.api", f"unknown api {route.api!r}; {fix}, e.g. {EXAMPLE}")
            continue
        settled = _settled(self, node, where, route, spec)
        if settled is None:
            continue
        earlier = served.get((settled.api, str(settled.key)))
        if earlier is not None:
            line = earlier[0].start_mark.line + 1
            fix = f"serve each route once per API (function {earlier[1].function!r}, line {line})"
            what = f"route {str(settled.key)!r} of API {settled.api!r} is already served"
            self.add(node, f"{where}.route", f"{what}; {fix}")
            continue
        served[(settled.api, str(settled.key))] = (node, settled)
        routes[settled.api].append(settled)
    for name, found in routes.items():
        if len(found) > MAX_ROUTES:
            self.add(None, f"apis.{name}", f"{len(found)} routes; an API has at most {MAX_ROUTES}")
        if self.apis[name].type == "rest":
            _check_rest_tree(self, name, found)
        self.apis[name] = dataclasses.replace(self.apis[name], routes=tuple(found))


def _settled(
    self: Reader, node: yaml.Node, where: str, route: HttpRoute, spec: ApiSpec
) -> HttpRoute | None:
    """The route with its API's defaults, or None (reported) when the API refuses it."""
    problem: tuple[str, str] | None = None
    authorizer = spec.authorizers.get(route.authorizer) if route.authorizer else None
    low, high = TIMEOUT_MS[spec.type]
    if spec.type == "websocket":
        fix = "list it under the function's websocket:, e.g. {api: chat, route: sendmessage}"
        problem = ("api", f"API {spec.name!r} is a WebSocket API; {fix}")
    elif spec.type == "rest" and route.key.is_default:
        fix = "a REST API routes by resource, e.g. ANY /{proxy+}"
        problem = ("route", f"$default is for HTTP APIs; {fix}")
    elif spec.type == "rest" and route.payload == "2.0":
        problem = ("payload", "a REST API sends payload 1.0; remove payload")
    elif route.timeout_ms > high:
        rule = f"timeout_ms must be from {low} to {high} milliseconds on a {spec.type.upper()} API"
        problem = ("timeout_ms", f"{route.timeout_ms} is out of range; {rule}")
    elif route.authorizer is not None and authorizer is None:
        hint = _did_you_mean(route.authorizer, spec.authorizers)
        names = ", ".join(spec.authorizers) or "none"
        fix = f"{hint + ' ' if hint else ''}define it under apis.{spec.name}.authorizers"
        problem = ("authorizer", f"unknown authorizer {route.authorizer!r}; {fix} (there: {names})")
    elif route.scopes and (authorizer is None or authorizer.type != "jwt"):
        problem = ("scopes", "scopes are checked by a JWT authorizer only; remove them or add one")
    if problem is not None:
        self.add(node, f"{where}.{problem[0]}", problem[1])
        return None
    return dataclasses.replace(
        route,
        payload=route.payload or ("2.0" if spec.type == "http" else "1.0"),
        timeout_ms=route.timeout_ms or high,
    )


def _check_rest_tree(self: Reader, api: str, routes: list[HttpRoute]) -> None:
    """A REST API is a tree of resources: each level has one path variable name at most."""
    seen: dict[str, str] = {}  # parent path -> the variable below it
    for route in routes:
        parent = ""
        for segment in route.key.segments:
            if segment.startswith("{"):
                other = seen.setdefault(parent, segment)
                if other != segment:
                    fix = "a REST resource has one variable child: name it alike in every route"
                    what = f"{parent or '/'} has both {other} and {segment} below it"
                    self.add(None, f"apis.{api}", f"{what}; {fix}")
                    return
            parent += "/" + segment
