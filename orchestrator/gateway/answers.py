"""API Gateway's own answers, when a request gets no function's: status and body, byte for byte.

HTTP APIs and REST APIs word them differently (REST's default gateway responses put a space after
the colon, e.g. ``{"message": "Internal server error"}``, 36 bytes as apex/up issue 395 shows):

- no route: HTTP 404 ``Not Found``; REST 403 ``Missing Authentication Token``
- a function error, timeout or crash, or an answer that is no response: HTTP 500 ``Internal
  Server Error``; REST 502 ``Internal server error``
- the integration timeout (at most 30 s, REST 29 s): HTTP 503 ``Service Unavailable``; REST 504
  ``Endpoint request timed out``
- throttled (the function's concurrency): 429 ``Too Many Requests`` on both
- a request over the payload limit: HTTP 413 ``Request Entity Too Large``; REST 413 ``Request
  Too Long``
- an authorizer finds no identity or a bad token: 401 ``Unauthorized``; denies: HTTP 403
  ``Forbidden``, REST 403 ``User is not authorized to access this resource with an explicit deny``

Sources: developer guide, "Working with routes for HTTP APIs" (``{"message":"Not Found"}``),
"Troubleshooting issues with HTTP API Lambda integrations" (``Internal Server Error``), "Set up
Lambda proxy integrations" ("API Gateway returns a 502 Bad Gateway error response"), "Gateway
response types" (status codes); serverless/serverless issue 11222 (an HTTP API's integration
timeout answers 503); serverless/serverless issue 3171 ("Endpoint request timed out").
"""

from __future__ import annotations

from enum import Enum

from orchestrator.gateway.exchange import GatewayResponse


class Failure(Enum):
    NOT_FOUND = "not found"
    FUNCTION_ERROR = "function error"
    TIMEOUT = "integration timeout"
    THROTTLED = "throttled"
    TOO_LARGE = "too large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    AUTHORIZER_ERROR = "authorizer error"


_HTTP = {
    Failure.NOT_FOUND: (404, b'{"message":"Not Found"}'),
    Failure.FUNCTION_ERROR: (500, b'{"message":"Internal Server Error"}'),
    Failure.TIMEOUT: (503, b'{"message":"Service Unavailable"}'),
    Failure.THROTTLED: (429, b'{"message":"Too Many Requests"}'),
    Failure.TOO_LARGE: (413, b'{"message":"Request Entity Too Large"}'),
    Failure.UNAUTHORIZED: (401, b'{"message":"Unauthorized"}'),
    Failure.FORBIDDEN: (403, b'{"message":"Forbidden"}'),
    Failure.AUTHORIZER_ERROR: (500, b'{"message":"Internal Server Error"}'),
}
_REST = {
    Failure.NOT_FOUND: (403, b'{"message":"Missing Authentication Token"}'),
    Failure.FUNCTION_ERROR: (502, b'{"message": "Internal server error"}'),
    Failure.TIMEOUT: (504, b'{"message": "Endpoint request timed out"}'),
    Failure.THROTTLED: (429, b'{"message":"Too Many Requests"}'),
    Failure.TOO_LARGE: (413, b'{"message":"Request Too Long"}'),
    Failure.UNAUTHORIZED: (401, b'{"message":"Unauthorized"}'),
    Failure.FORBIDDEN: (
        403,
        b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
    ),
    Failure.AUTHORIZER_ERROR: (500, b'{"message": null}'),
}
_ERROR_TYPE = {
    Failure.NOT_FOUND: "MissingAuthenticationTokenException",
    Failure.UNAUTHORIZED: "UnauthorizedException",
    Failure.FORBIDDEN: "AccessDeniedException",
    Failure.THROTTLED: "TooManyRequestsException",
}


def answer(failure: Failure, rest: bool) -> GatewayResponse:
    status, body = (_REST if rest else _HTTP)[failure]
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    if rest and failure in _ERROR_TYPE:
        headers += (("x-amzn-ErrorType", _ERROR_TYPE[failure]),)
    return GatewayResponse(status, headers, body)
