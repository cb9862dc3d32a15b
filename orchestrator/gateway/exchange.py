"""One request through API Gateway and its answer, as values both payload formats map from.

``GatewayRequest`` is the request as the client sent it (headers in their order and case, the
query string and path as sent); ``Target`` is what routing decided (route key, path parameters,
stage) plus the API's identity; ``GatewayResponse`` is what goes back, headers possibly repeated
(``Set-Cookie``). Function URLs build the same values.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

Headers = tuple[tuple[str, str], ...]

# Request bodies an HTTP API (and a function URL) passes as text; every other body, a missing
# Content-Type and form posts included, arrives base64-encoded. AWS's documents say only "if the
# content type is binary"; this split was checked against AWS by ministack (ministackorg/ministack
# pull request 766, ``_v2_request_body_is_text``).
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class MalformedResponse(ValueError):
    """A function's answer that API Gateway cannot turn into an HTTP response."""


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    method: str
    path: str  # as sent (percent-encoded), the stage's prefix included
    raw_query: str  # as sent, without '?'
    headers: Headers  # as sent: names in their case, repeated names repeated, in order
    body: bytes
    source_ip: str
    time_ms: int  # when it arrived, milliseconds since the epoch
    request_id: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The last value of a header (``name`` lower-case), or None."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class Target:
    """Where routing sent a request, and the API it came through."""

    route_key: str  # "GET /items/{id}" or "$default"
    resource_path: str  # the route's path, e.g. "/items/{id}" (what REST calls the resource)
    path_parameters: Mapping[str, str]
    stage: str
    api_id: str
    domain_name: str
    authorizer: Mapping[str, Any] | None = None  # what an authorizer passed on, if any
    stage_path: str = ""  # the request's path without the stage's prefix


@dataclass(frozen=True, slots=True)
class GatewayResponse:
    status: int
    headers: Headers = ()
    body: bytes = b""


def media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


def is_text(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind.startswith("text/") or kind in TEXT_MEDIA_TYPES


def encode_body(body: bytes, as_text: bool) -> tuple[str, bool]:
    """A body as an event carries it: (text, False), or (base64, True) for binary or bodies that
    are not UTF-8."""
    if as_text:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def decode_body(body: object, encoded: object) -> bytes:
    """A response's body as bytes: ``body`` must be a string (or absent), base64 if ``encoded``."""
    if encoded not in (None, False, True):
        raise MalformedResponse("isBase64Encoded must be true or false")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, not {type(body).__name__}")
    if encoded is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedResponse(f"body is not base64 ({exc})") from None
    return body.encode("utf-8")


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The query string's parameters in order, decoded, blank values kept."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def clf_time(time_ms: int) -> str:
    """``12/Mar/2020:19:03:58 +0000``: the request time as API Gateway writes it."""
    second = time_ms // 1000
    if _LAST_SECOND[0] != second:  # formatted once a second, not once a request
        t = time.gmtime(second)
        _LAST_SECOND[:] = [
            second,
            f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000",
        ]
    return str(_LAST_SECOND[1])


_LAST_SECOND: list[object] = [None, ""]


def header_value(name: str, value: object) -> str:
    """A response header's value as text; a value no HTTP header can carry is malformed."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise MalformedResponse(f"header {name!r} has a {type(value).__name__} value")
    if "\r" in text or "\n" in text or "\0" in text:
        raise MalformedResponse(f"header {name!r} has a line break in its value")
    # On the wire as UTF-8, as API Gateway sends it; the server writes header bytes as latin-1.
    return text.encode("utf-8").decode("latin-1")


def check_header_name(name: object) -> str:
    if not isinstance(name, str) or not name or not _TOKEN.issuperset(name):
        raise MalformedResponse(f"{name!r} is not a header name")
    return name


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def response_headers(
    single: object, multi: object = None, default_type: str | None = None
) -> list[tuple[str, str]]:
    """Headers from ``headers`` (one value each) and ``multiValueHeaders`` (lists): where both
    name a header, the lists win, as API Gateway documents for payload 1.0."""
    found: list[tuple[str, str]] = []
    listed: set[str] = set()
    if multi is not None:
        if not isinstance(multi, dict):
            raise MalformedResponse("multiValueHeaders must be an object")
        for name, values in multi.items():
            check_header_name(name)
            if values is None:
                continue
            if not isinstance(values, list):
                raise MalformedResponse(f"multiValueHeaders {name!r} must be a list")
            listed.add(name.lower())
            found.extend((name, header_value(name, v)) for v in values if v is not None)
    if single is not None:
        if not isinstance(single, dict):
            raise MalformedResponse("headers must be an object")
        for name, value in single.items():
            check_header_name(name)
            if value is not None and name.lower() not in listed:
                found.append((name, header_value(name, value)))
    if default_type is not None and not any(n.lower() == "content-type" for n, _ in found):
        found.append(("Content-Type", default_type))
    return found


def status_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise MalformedResponse(f"statusCode must be an integer from 100 to 599, not {value!r}")
    return value


def joined(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Repeated names' values joined with commas, in order (what payload 2.0 does)."""
    result: dict[str, str] = {}
    for name, value in pairs:
        result[name] = f"{result[name]},{value}" if name in result else value
    return result
