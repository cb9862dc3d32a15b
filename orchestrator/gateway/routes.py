"""Which route a request reaches: API Gateway's matching and precedence, as a pure table.

HTTP APIs (developer guide, "Working with routes for HTTP APIs", section "Routing API requests")
pick the most specific match: a full match of route and method first, then a route with a greedy
``{proxy+}`` variable, then ``$default``; ``ANY`` matches the methods a path has no route of its
own for. Where two full matches differ, the one with a literal segment where the other has a
variable, earliest in the path, is the more specific. REST APIs are a tree of resources: the most
specific resource that matches the path is chosen first, then its method (or ``ANY``); a
resource without either is no match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from orchestrator.manifest.apis import HttpRoute


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: HttpRoute
    parameters: dict[str, str]  # decoded; a greedy variable's value keeps its slashes


@dataclass(frozen=True, slots=True)
class _Pattern:
    route: HttpRoute
    literals: tuple[str | None, ...]  # a literal segment, or None for a variable
    names: tuple[str | None, ...]  # a variable's name, or None for a literal
    greedy: str | None  # the greedy variable's name, if the path ends with one
    rank: tuple[int, ...]  # larger is more specific


def _pattern(route: HttpRoute) -> _Pattern:
    segments = route.key.segments
    greedy = None
    if route.key.greedy:
        greedy = segments[-1][1:-2]
        segments = segments[:-1]
    literals = tuple(None if s.startswith("{") else s for s in segments)
    names = tuple(s[1:-1] if s.startswith("{") else None for s in segments)
    shape = tuple(2 if s is not None else 1 for s in literals)
    # Full matches before greedy ones; then literal over variable, earliest segment first; then
    # (for greedy routes) a longer fixed part; then a method of its own over ANY.
    rank = (0 if greedy else 1, *shape, len(segments), 0 if route.key.method == "ANY" else 1)
    return _Pattern(route, literals, names, greedy, rank)


class RouteTable:
    """One API's routes, ready for matching (built once per manifest load)."""

    def __init__(self, routes: Iterable[HttpRoute], rest: bool = False) -> None:
        self.rest = rest
        self.default: HttpRoute | None = None
        self._static: dict[tuple[str, str], HttpRoute] = {}  # (method, path): literal paths
        patterns = []
        for route in routes:
            key = route.key
            if key.is_default:
                self.default = route
            elif not rest and "{" not in key.path:
                self._static[(key.method, key.path)] = route
            else:
                patterns.append(_pattern(route))
        self._patterns = sorted(patterns, key=lambda p: p.rank, reverse=True)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for ``method path`` (the path as sent, without the stage), or None."""
        if not self.rest:
            route = self._static.get((method, path)) or self._static.get(("ANY", path))
            if route is not None:
                return RouteMatch(route, {})
        parts = path[1:].split("/") if path.startswith("/") else [path]
        if parts == [""]:
            parts = []
        found = self._rest_match(method, parts) if self.rest else self._http_match(method, parts)
        if found is None and self.default is not None:
            return RouteMatch(self.default, {})
        return found

    def _http_match(self, method: str, parts: list[str]) -> RouteMatch | None:
        for pattern in self._patterns:
            if pattern.route.key.method in (method, "ANY"):
                parameters = _fit(pattern, parts)
                if parameters is not None:
                    return RouteMatch(pattern.route, parameters)
        return None

    def _rest_match(self, method: str, parts: list[str]) -> RouteMatch | None:
        """The most specific resource first, then its method: a resource that matches but has
        neither the method nor ANY answers as no route at all, as REST APIs do."""
        for pattern in self._patterns:
            parameters = _fit(pattern, parts)
            if parameters is None:
                continue
            resource = [p for p in self._patterns if p.route.key.path == pattern.route.key.path]
            for wanted in (method, "ANY"):
                for candidate in resource:
                    if candidate.route.key.method == wanted:
                        return RouteMatch(candidate.route, parameters)
            return None
        return None


def _fit(pattern: _Pattern, parts: list[str]) -> dict[str, str] | None:
    fixed = len(pattern.literals)
    if pattern.greedy is None:
        if len(parts) != fixed:
            return None
    elif len(parts) <= fixed or not all(parts[fixed:]):
        return None  # a greedy variable takes one or more non-empty segments
    parameters: dict[str, str] = {}
    for literal, name, part in zip(pattern.literals, pattern.names, parts, strict=False):
        if not part:
            return None
        if literal is not None:
            if literal != part and literal != unquote(part):
                return None
        elif name is not None:
            parameters[name] = unquote(part)
    if pattern.greedy is not None:
        parameters[pattern.greedy] = unquote("/".join(parts[fixed:]))
    return parameters
