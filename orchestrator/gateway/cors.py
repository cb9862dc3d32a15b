"""CORS as an HTTP API's ``CorsConfiguration`` does it: preflights answered, headers added.

Developer guide, "Configuring CORS for an HTTP API": with CORS configured, API Gateway answers
preflight ``OPTIONS`` requests itself, whatever the routes, and adds the configured headers to
the integration's responses, ignoring any CORS headers the integration returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.gateway.exchange import GatewayResponse
from orchestrator.manifest.apis import CorsSpec


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (
        method == "OPTIONS" and "origin" in headers and ("access-control-request-method" in headers)
    )


def _origin(cors: CorsSpec, origin: str) -> str | None:
    """The Access-Control-Allow-Origin for ``origin``, or None when it is not allowed."""
    if origin in cors.allow_origins:
        return origin
    if "*" in cors.allow_origins:
        return origin if cors.allow_credentials else "*"
    return None


def preflight(cors: CorsSpec, headers: Mapping[str, str]) -> GatewayResponse:
    """The answer to a preflight: 204, with the CORS headers when it asks for what is allowed."""
    origin = _origin(cors, headers.get("origin", ""))
    method = headers.get("access-control-request-method", "").strip().upper()
    asked = [h.strip() for h in headers.get("access-control-request-headers", "").split(",")]
    asked = [h for h in asked if h]
    methods_ok = "*" in cors.allow_methods or method in cors.allow_methods
    allowed_headers = {h.lower() for h in cors.allow_headers}
    headers_ok = "*" in allowed_headers or all(h.lower() in allowed_headers for h in asked)
    if origin is None or not methods_ok or not headers_ok:
        return GatewayResponse(204)
    out = [("Access-Control-Allow-Origin", origin)]
    if cors.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    methods = method if "*" in cors.allow_methods else ",".join(cors.allow_methods)
    out.append(("Access-Control-Allow-Methods", methods))
    if asked:
        given = ",".join(asked) if "*" in allowed_headers else ",".join(cors.allow_headers)
        out.append(("Access-Control-Allow-Headers", given))
    if cors.max_age is not None and cors.max_age >= 0:
        out.append(("Access-Control-Max-Age", str(cors.max_age)))
    if cors.expose_headers:
        out.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return GatewayResponse(204, tuple(out))


def with_cors(cors: CorsSpec, origin: str | None, response: GatewayResponse) -> GatewayResponse:
    """``response`` with the API's CORS headers for ``origin`` in place of the function's own."""
    kept = tuple((n, v) for n, v in response.headers if not n.lower().startswith("access-control-"))
    allowed = None if origin is None else _origin(cors, origin)
    if allowed is None:
        return GatewayResponse(response.status, kept, response.body)
    added = [("Access-Control-Allow-Origin", allowed)]
    if cors.allow_credentials:
        added.append(("Access-Control-Allow-Credentials", "true"))
    if cors.expose_headers:
        added.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return GatewayResponse(response.status, kept + tuple(added), response.body)
