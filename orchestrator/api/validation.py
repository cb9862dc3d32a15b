"""Requests checked against Lambda's service model, answered as AWS's front end answers them.

AWS validates every request against the operation's input shape before the service sees it and
refuses a violation with ``ValidationException`` and a message of one fixed form::

    1 validation error detected: Value 'x' at 'functionName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?...

(``N validation errors detected: A; B`` for several, members in model order). The constraints
come from ``lambda_model`` (botocore's model, checked in); nothing here imports botocore.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from orchestrator.api.lambda_model import OPERATIONS
from orchestrator.errors import InvalidRequestContent, Validation
from orchestrator.http_server import Request
from orchestrator.sandbox.invocation import parse_json

# Route parameters lrun's older routes name differently from the model's URI labels.
_ROUTE_NAMES = {"FunctionName": "function"}


@cache
def _wire(operation: str) -> tuple[tuple[str, str, str, str], ...]:
    """(member, where, its name on the wire as looked up there, type) of each input member."""
    return tuple(
        (
            name,
            member["location"],
            member["wire"].lower() if member["location"] == "header" else member["wire"],
            member["type"],
        )
        for name, member in OPERATIONS[operation]["members"].items()
    )


@cache
def _header_wires(operation: str) -> tuple[str, ...]:
    return tuple(wire for _, where, wire, _ in _wire(operation) if where == "header")


# Requests whose inputs passed already, by what those inputs are read from (the path, its
# parameters and the model's headers; requests without a query string only), when all are
# short: every invocation of a function sends the same ones, and reading them out of the
# request member by member cost each warm invocation more than the rest of its checks.
_REQUESTS_PASSED: dict[tuple[str | None, ...], dict[str, Any]] = {}


def checked_request(operation: str, request: Request) -> dict[str, Any]:
    """``values`` of an operation that takes no JSON body, checked as ``check`` checks them."""
    if request.query or request.raw_query:
        with_query = values(operation, request, None)
        check(operation, with_query)
        return with_query
    key: tuple[str | None, ...] = (
        operation,
        request.path,
        *request.params.values(),
        *map(request.headers.get, _header_wires(operation)),
    )
    given = _REQUESTS_PASSED.get(key)
    if given is not None:
        return dict(given)
    given = values(operation, request, None)
    check(operation, given)
    if all(part is None or len(part) <= _PASSED_VALUE_MAX for part in key):
        if len(_REQUESTS_PASSED) >= _PASSED_MAX:
            _REQUESTS_PASSED.clear()
        _REQUESTS_PASSED[key] = dict(given)
    return given


def values(operation: str, request: Request, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The operation's input members as the request carries them (absent ones left out):
    path labels, query string, headers and JSON body, each where the model puts it."""
    found: dict[str, Any] = {}
    for name, where, wire, kind in _wire(operation):
        value: Any = None
        if where == "uri":
            value = request.params.get(wire, request.params.get(_ROUTE_NAMES.get(wire, wire)))
        elif where == "querystring":
            value = request.query.get(wire)
            if value is not None and kind == "integer":
                value = int(value) if re.fullmatch(r"-?\d{1,18}", value) else value
            elif value is not None and kind == "list":
                value = request_list(request, wire)
        elif where == "header":
            value = request.headers.get(wire)
        elif body is not None:
            value = body.get(wire)
        if value is not None:
            found[name] = value
    return found


def request_list(request: Request, wire: str) -> list[str]:
    """Every value of a repeated query parameter (``tagKeys=a&tagKeys=b``)."""
    pairs = parse_qsl(request.raw_query, keep_blank_values=True)
    given = [value for key, value in pairs if key == wire]
    single = request.query.get(wire)
    return given or ([] if single is None else [single])


# Inputs that passed ``check`` already, when all are short strings (a function name, a
# qualifier, an invocation type): the same ones come with every invocation of a function, and
# checking them again costs each warm invocation regular expressions and a walk of the model.
_PASSED: set[tuple[object, ...]] = set()
_PASSED_MAX = 4096
_PASSED_VALUE_MAX = 256


def _passed_key(
    operation: str, given: Mapping[str, Any], only: frozenset[str] | None
) -> tuple[object, ...] | None:
    for value in given.values():
        if type(value) is not str or len(value) > _PASSED_VALUE_MAX:
            return None
    return (operation, only, *given.items())


def check(operation: str, given: Mapping[str, Any], only: frozenset[str] | None = None) -> None:
    """Raise ``Validation`` with AWS's message if ``given`` breaks the operation's input
    constraints (of the members in ``only``, if given)."""
    key = _passed_key(operation, given, only)
    if key is not None and key in _PASSED:
        return
    refuse(problems(operation, given, only))
    if key is not None:
        if len(_PASSED) >= _PASSED_MAX:
            _PASSED.clear()
        _PASSED.add(key)


def problems(
    operation: str, given: Mapping[str, Any], only: frozenset[str] | None = None
) -> list[str]:
    """Each constraint of the operation that ``given`` breaks, as AWS words it, in model order."""
    found: list[str] = []
    for name, member in OPERATIONS[operation]["members"].items():
        if only is None or name in only:
            found.extend(_member(_camel(name), given.get(name), member))
    return found


def refuse(found: list[str]) -> None:
    """Raise ``Validation`` listing ``found`` (nothing if it is empty)."""
    if found:
        count = len(found)
        head = f"{count} validation error{'s' if count > 1 else ''} detected: "
        raise Validation(head + "; ".join(found))


def show(value: Any) -> str:
    """A value as AWS's validation messages print it (Java's toString, quoted)."""
    return _show(value)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _member(path: str, value: Any, member: Mapping[str, Any]) -> list[str]:
    if value is None:
        if member.get("required"):
            return [f"Value null at '{path}' failed to satisfy constraint: Member must not be null"]
        return []
    failed = _scalar_failure(value, member)
    if failed is not None:
        return [f"Value {_show(value)} at '{path}' failed to satisfy constraint: {failed}"]
    kind = member["type"]
    if kind == "structure" and isinstance(value, Mapping):
        problems: list[str] = []
        for name, inner in member.get("members", {}).items():
            problems.extend(_member(f"{path}.{_camel(name)}", value.get(name), inner))
        return problems
    if kind == "list" and isinstance(value, list):
        element = member["member"]
        if any(item is None or _scalar_failure(item, element) for item in value):
            every = ", ".join([*_constraints(element), "Member must not be null"])
            return [
                f"Value {_show(value)} at '{path}' failed to satisfy constraint: Member must "
                f"satisfy constraint: [{every}]"
            ]
    if kind == "map" and isinstance(value, Mapping):
        for part, label in (("key", "Map keys"), ("value", "Map value")):
            shape = member[part]
            items = value.keys() if part == "key" else value.values()
            if any(_scalar_failure(item, shape) for item in items):
                constraints = _constraints(shape)
                if part == "value":
                    constraints.append("Member must not be null")
                shown = value
                if member["value"]["type"] in ("double", "float"):  # Java prints 2 as 2.0
                    shown = {k: _as_float(v) for k, v in value.items()}
                return [
                    f"Value {_show(shown)} at '{path}' failed to satisfy constraint: {label} "
                    f"must satisfy constraint: [{', '.join(constraints)}]"
                ]
    return []


def _scalar_failure(value: Any, shape: Mapping[str, Any]) -> str | None:
    """The first constraint ``value`` breaks, as AWS words it, or None."""
    kind = shape["type"]
    if kind in ("string", "list", "map", "blob") and isinstance(value, str | list | dict):
        if "max" in shape and len(value) > shape["max"]:
            return f"Member must have length less than or equal to {shape['max']}"
        if "min" in shape and len(value) < shape["min"]:
            return f"Member must have length greater than or equal to {shape['min']}"
    if kind in ("integer", "long", "double", "float") and isinstance(value, int | float):
        if not isinstance(value, bool):
            if "max" in shape and value > shape["max"]:
                return f"Member must have value less than or equal to {shape['max']}"
            if "min" in shape and value < shape["min"]:
                return f"Member must have value greater than or equal to {shape['min']}"
    if kind == "string" and isinstance(value, str):
        pattern = _compiled(shape.get("pattern"))
        if pattern is not None and pattern.fullmatch(value) is None:
            return f"Member must satisfy regular expression pattern: {shape['pattern']}"
        if "enum" in shape and value not in shape["enum"]:
            return f"Member must satisfy enum value set: [{', '.join(enum_order(shape['enum']))}]"
    return None


def _as_float(value: Any) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else value


def _constraints(shape: Mapping[str, Any]) -> list[str]:
    """Every constraint of a list's element or a map's key or value, in AWS's order."""
    out = []
    measure = "value" if shape["type"] in ("integer", "long", "double", "float") else "length"
    if "max" in shape:
        out.append(f"Member must have {measure} less than or equal to {shape['max']}")
    if "min" in shape:
        out.append(f"Member must have {measure} greater than or equal to {shape['min']}")
    if "pattern" in shape:
        out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    if "enum" in shape:
        out.append(f"Member must satisfy enum value set: [{', '.join(enum_order(shape['enum']))}]")
    return out


@cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: AWS checks it, lrun cannot
        return None


def _show(value: Any) -> str:
    """A value as AWS's messages print it (Java's toString, quoted)."""
    return f"'{_java(value)}'"


def _java(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java(k)}={_java(v)}" for k, v in value.items()) + "}"
    return str(value)


# Enums whose recorded order is not a HashSet's: the function URL operations (another service
# behind Lambda's API) list InvokeMode as declared (LocalStack's snapshot recorded on AWS,
# test_lambda.py::TestLambdaURL::test_lambda_url_invalid_invoke_mode).
_RECORDED_ORDERS = {frozenset({"BUFFERED", "RESPONSE_STREAM"}): ["RESPONSE_STREAM", "BUFFERED"]}


def enum_order(members: list[str]) -> list[str]:
    """An enum's values in the order AWS's messages list them: a Java ``HashSet`` built from the
    model's list (``[Terminate, Allow]`` for the model's ``[Allow, Terminate]``; the 25 runtimes
    of CreateFunction's message likewise), except where AWS was recorded listing them otherwise."""
    recorded = _RECORDED_ORDERS.get(frozenset(members))
    if recorded is not None:
        return recorded
    capacity = 1
    while capacity < max(int(len(members) / 0.75) + 1, 16):
        capacity *= 2
    buckets: dict[int, list[str]] = {}
    for member in members:
        code = 0
        for char in member:
            code = (31 * code + ord(char)) & 0xFFFFFFFF
        code ^= code >> 16
        buckets.setdefault(code & (capacity - 1), []).append(member)
    return [member for index in sorted(buckets) for member in buckets[index]]


def json_object(request: Request) -> dict[str, Any]:
    """A request's body as the JSON object the API's operations take (``{}`` when empty)."""
    try:
        parsed = parse_json(request.body) if request.body else {}
    except ValueError as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequestContent("Could not parse request body into json: not an object")
    return parsed
