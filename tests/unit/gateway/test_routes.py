"""Route matching and precedence, against API Gateway's documented routing example.

Source: API Gateway developer guide, "Working with routes for HTTP APIs" (http-api-develop-routes),
section "Routing API requests": the five example routes and the table of which one each request
selects. Read at awsdocs/amazon-api-gateway-developer-guide, doc_source/http-api-develop-routes.md,
commit 6060e21e4214857f6f416c50ee2d019bc3db2206.
"""

from __future__ import annotations

import pytest

from orchestrator.gateway.routes import RouteTable
from orchestrator.manifest.apis import HttpRoute, RouteKey


def table(*keys: str, rest: bool = False) -> RouteTable:
    return RouteTable((HttpRoute("api", RouteKey.parse(k), "fn") for k in keys), rest=rest)


DOC_ROUTES = (
    "GET /pets/dog/1",
    "GET /pets/dog/{id}",
    "GET /pets/{proxy+}",
    "ANY /{proxy+}",
    "$default",
)


@pytest.mark.parametrize(
    ("method", "path", "route", "parameters"),
    [
        ("GET", "/pets/dog/1", "GET /pets/dog/1", {}),
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}", {"id": "2"}),
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}", {"proxy": "cat/1"}),
        ("POST", "/test/5", "ANY /{proxy+}", {"proxy": "test/5"}),
    ],
)
def test_the_documented_routing_table(
    method: str, path: str, route: str, parameters: dict[str, str]
) -> None:
    found = table(*DOC_ROUTES).match(method, path)
    assert found is not None
    assert str(found.route.key) == route
    assert found.parameters == parameters


def test_the_order_routes_are_declared_in_does_not_matter() -> None:
    found = table(*reversed(DOC_ROUTES)).match("GET", "/pets/dog/2")
    assert found is not None and str(found.route.key) == "GET /pets/dog/{id}"


def test_default_catches_what_no_route_matches() -> None:
    found = table("GET /pets", "$default").match("GET", "/")
    assert found is not None and found.route.key.is_default
    assert table("GET /pets").match("GET", "/") is None


def test_any_matches_methods_the_path_has_no_route_for() -> None:
    routes = table("GET /items", "ANY /items")
    get, delete = routes.match("GET", "/items"), routes.match("DELETE", "/items")
    assert get is not None and str(get.route.key) == "GET /items"
    assert delete is not None and str(delete.route.key) == "ANY /items"


def test_a_literal_segment_beats_a_variable_earliest_first() -> None:
    routes = table("GET /a/{x}/c", "GET /a/b/{y}")
    found = routes.match("GET", "/a/b/c")
    assert found is not None and str(found.route.key) == "GET /a/b/{y}"


def test_a_greedy_variable_needs_at_least_one_segment() -> None:
    routes = table("GET /pets/{proxy+}")
    assert routes.match("GET", "/pets") is None
    assert routes.match("GET", "/pets/") is None
    found = routes.match("GET", "/pets/a/b/c")
    assert found is not None and found.parameters == {"proxy": "a/b/c"}


def test_variables_match_one_whole_segment_and_are_decoded() -> None:
    routes = table("GET /items/{id}")
    assert routes.match("GET", "/items") is None
    assert routes.match("GET", "/items/1/2") is None
    assert routes.match("GET", "/items/") is None
    found = routes.match("GET", "/items/a%20b%2Fc")
    assert found is not None and found.parameters == {"id": "a b/c"}


def test_the_root() -> None:
    found = table("GET /").match("GET", "/")
    assert found is not None and found.parameters == {}
    assert table("ANY /{proxy+}").match("GET", "/") is None


def test_a_method_is_matched_exactly() -> None:
    assert table("GET /x").match("HEAD", "/x") is None
    assert table("GET /x").match("get", "/x") is None


# REST APIs: the resource first, then its method


def test_rest_picks_the_most_specific_resource_then_its_method() -> None:
    routes = table("GET /items/{id}", "ANY /{proxy+}", rest=True)
    found = routes.match("GET", "/items/7")
    assert found is not None and str(found.route.key) == "GET /items/{id}"
    # /items/{id} is the resource; it has no POST, so the request matches nothing.
    assert routes.match("POST", "/items/7") is None
    other = routes.match("POST", "/other/7")
    assert other is not None and str(other.route.key) == "ANY /{proxy+}"


def test_rest_prefers_a_method_of_its_own_over_any() -> None:
    routes = table("ANY /items", "DELETE /items", rest=True)
    delete, get = routes.match("DELETE", "/items"), routes.match("GET", "/items")
    assert delete is not None and str(delete.route.key) == "DELETE /items"
    assert get is not None and str(get.route.key) == "ANY /items"
