"""Payload format 2.0: the event an HTTP API (or a function URL) sends, and how it reads the answer.

As API Gateway documents it (developer guide, "Working with AWS Lambda proxy integrations for HTTP
APIs": "Payload format version", "Lambda function response for format 2.0"): header names
lower-cased, repeated headers and query parameters joined with commas, the ``Cookie`` headers
moved to ``cookies``; keys with nothing to say (``body``, ``cookies``, ``queryStringParameters``,
``pathParameters``, ``stageVariables``, ``authorizer``) left out, as AWS sends them. A function
may answer with the full form (``statusCode``, ``headers``, ``cookies``, ``body``,
``isBase64Encoded``) or with any other JSON value, which becomes a 200 ``application/json``
response whose body is that value (a JSON string's text, anything else's JSON).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.aws import ACCOUNT_ID
from orchestrator.gateway.exchange import (
    GatewayRequest,
    GatewayResponse,
    MalformedResponse,
    Target,
    clf_time,
    decode_body,
    encode_body,
    is_text,
    joined,
    query_pairs,
    response_headers,
    status_code,
)

VERSION = "2.0"
# An HTTP API's answer without a Content-Type of its own: text, as API Gateway sends it
# (observed by fujiwara/ridge pull request 9 and awslabs/aws-lambda-go-api-proxy issue 116).
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"


def event(request: GatewayRequest, target: Target) -> dict[str, Any]:
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            headers.append((lower, value))
    header_map = joined(headers)
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": target.api_id,
        "domainName": target.domain_name,
        "domainPrefix": target.domain_name.partition(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": header_map.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": target.route_key,
        "stage": target.stage,
        "time": clf_time(request.time_ms),
        "timeEpoch": request.time_ms,
    }
    if target.authorizer is not None:
        context["authorizer"] = target.authorizer
    result: dict[str, Any] = {
        "version": VERSION,
        "routeKey": target.route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        result["cookies"] = cookies
    result["headers"] = header_map
    if request.raw_query:
        parameters = joined(query_pairs(request.raw_query))
        if parameters:
            result["queryStringParameters"] = parameters
    result["requestContext"] = context
    if request.body:
        body, encoded = encode_body(request.body, is_text(header_map.get("content-type")))
        result["body"] = body
    else:
        encoded = False
    if target.path_parameters:
        result["pathParameters"] = dict(target.path_parameters)
    result["isBase64Encoded"] = encoded
    return result


def encode_event(request: GatewayRequest, target: Target) -> bytes:
    return json.dumps(event(request, target), separators=(",", ":")).encode()


def response(payload: bytes, quote_strings: bool = False) -> GatewayResponse:
    """The HTTP response for a function's answer; ``MalformedResponse`` if it cannot be one.

    ``quote_strings``: a bare JSON string's body is the JSON text (quotes kept), as Lambda's
    function URL guide shows it; API Gateway's guide shows an HTTP API sending the text alone.
    """
    try:
        value = json.loads(payload)
    except ValueError as exc:  # UnicodeDecodeError too
        raise MalformedResponse(f"the function's answer is not JSON ({exc})") from None
    if not isinstance(value, dict) or "statusCode" not in value:
        if isinstance(value, str) and not quote_strings:
            body = value.encode("utf-8")
        else:
            body = payload
        return GatewayResponse(200, (("Content-Type", "application/json"),), body)
    status = status_code(value["statusCode"])
    headers = response_headers(value.get("headers"), None, DEFAULT_CONTENT_TYPE)
    cookies = value.get("cookies")
    if cookies is not None:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise MalformedResponse("cookies must be a list of strings")
        headers.extend(("Set-Cookie", _cookie(c)) for c in cookies)
    body = decode_body(value.get("body"), value.get("isBase64Encoded"))
    return GatewayResponse(status, tuple(headers), body)


def _cookie(value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise MalformedResponse("a cookie has a line break in it")
    return value.encode("utf-8").decode("latin-1")
