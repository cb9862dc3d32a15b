"""Payload format 1.0: the event a REST API (or an HTTP API set to 1.0) sends, and its answer.

As API Gateway documents it (developer guide, "Set up Lambda proxy integrations in API Gateway":
"Input format of a Lambda function for proxy integration" and "Output format ..."): ``headers``
and ``queryStringParameters`` carry each name's last value, ``multiValueHeaders`` and
``multiValueQueryStringParameters`` all of them; header names keep the client's case; keys
with nothing to say are ``null``. The answer must be an object with a ``statusCode``; its
``headers`` and ``multiValueHeaders`` are merged, the lists winning where both name a header.
An HTTP API's 1.0 events also carry ``"version": "1.0"``; a REST API's do not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
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
    media_type,
    query_pairs,
    response_headers,
    status_code,
)

# A REST API's answer without a Content-Type of its own (aws/aws-sam-cli issue 1218).
DEFAULT_CONTENT_TYPE = "application/json"
_IDENTITY_KEYS = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "sourceIp",
    "user",
    "userAgent",
    "userArn",
)


@dataclass(frozen=True, slots=True)
class Flavour:
    """What differs between a REST API's 1.0 events and an HTTP API's."""

    rest: bool
    binary_media_types: tuple[str, ...] = ()  # REST: request bodies passed as base64


REST = Flavour(rest=True)
HTTP = Flavour(rest=False)


def _lists(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def matches_media_type(content_type: str | None, patterns: Sequence[str]) -> bool:
    """Whether a Content-Type is one of a REST API's binary media types (``*`` wildcards)."""
    kind = media_type(content_type)
    if not kind:
        return False
    major, _, minor = kind.partition("/")
    for pattern in patterns:
        p_major, _, p_minor = pattern.strip().lower().partition("/")
        if p_major in ("*", major) and p_minor in ("*", minor):
            return True
    return False


def event(request: GatewayRequest, target: Target, flavour: Flavour) -> dict[str, Any]:
    headers, multi_headers = _lists(request.headers)
    query, multi_query = _lists(query_pairs(request.raw_query))
    user_agent = request.header("user-agent")
    identity: dict[str, Any] = dict.fromkeys(_IDENTITY_KEYS)
    identity["sourceIp"] = request.source_ip
    identity["userAgent"] = user_agent
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": target.api_id,
        "domainName": target.domain_name,
        "domainPrefix": target.domain_name.partition(".")[0],
        "extendedRequestId": request.request_id,
        "httpMethod": request.method,
        "identity": identity,
        "path": request.path,
        "protocol": request.protocol,
        "requestId": request.request_id,
        "requestTime": clf_time(request.time_ms),
        "requestTimeEpoch": request.time_ms,
        "resourceId": target.api_id[:6] if flavour.rest else None,
        "resourcePath": target.resource_path,
        "stage": target.stage,
    }
    if target.authorizer is not None:
        context["authorizer"] = target.authorizer
    body: str | None = None
    encoded = False
    if request.body:
        content_type = request.header("content-type")
        if flavour.rest:
            binary = matches_media_type(content_type, flavour.binary_media_types)
            body, encoded = encode_body(request.body, as_text=not binary)
        else:
            body, encoded = encode_body(request.body, is_text(content_type))
    result: dict[str, Any] = {} if flavour.rest else {"version": "1.0"}
    result.update(
        {
            "resource": target.resource_path,
            "path": target.stage_path if flavour.rest else request.path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "requestContext": context,
            "pathParameters": dict(target.path_parameters) or None,
            "stageVariables": None,
            "body": body,
            "isBase64Encoded": encoded,
        }
    )
    return result


def encode_event(request: GatewayRequest, target: Target, flavour: Flavour) -> bytes:
    return json.dumps(event(request, target, flavour), separators=(",", ":")).encode()


def response(payload: bytes, flavour: Flavour, accept: str | None = None) -> GatewayResponse:
    """The HTTP response for a function's answer; ``MalformedResponse`` if it cannot be one.

    A REST API turns a base64 body back into bytes only when the answer's Content-Type or the
    client's ``Accept`` is one of its binary media types; otherwise the client gets the text.
    """
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise MalformedResponse(f"the function's answer is not JSON ({exc})") from None
    if not isinstance(value, dict) or "statusCode" not in value:
        raise MalformedResponse("the answer must be an object with a statusCode")
    status = status_code(value["statusCode"])
    default = DEFAULT_CONTENT_TYPE if flavour.rest else "text/plain; charset=utf-8"
    headers = response_headers(value.get("headers"), value.get("multiValueHeaders"), default)
    encoded = value.get("isBase64Encoded")
    if flavour.rest and encoded is True:
        content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
        patterns = flavour.binary_media_types
        accepted = (accept or "").split(",")
        if not (
            matches_media_type(content_type, patterns)
            or any(matches_media_type(kind, patterns) for kind in accepted)
        ):
            encoded = False  # passed on as the text it is
    return GatewayResponse(status, tuple(headers), decode_body(value.get("body"), encoded))
