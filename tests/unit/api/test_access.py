"""Unit tests for orchestrator.api.access: the checks in front of the Lambda API (Host, Origin
and CORS, content types, signatures), driven through ``Guard.dispatch`` with ``Request`` values
as the HTTP server builds them. The attacks themselves, against a real `lrun serve`, are in
tests/acceptance/test_security_api.py."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import sigv4
from orchestrator.api.access import (
    AccessPolicy,
    Guard,
    check_host_name,
    check_origin,
    host_name,
    is_loopback,
)
from orchestrator.api.lambda_api import error_response
from orchestrator.errors import LrunError
from orchestrator.http_server import Request, Response, Router
from tests.unit.rawhttp import run

INVOKE = "/2015-03-31/functions/hello/invocations"
CONCURRENCY = "/2017-10-31/functions/hello/concurrency"
KEY = sigv4.Credentials("LRUNTESTKEY000000000", "a-secret-of-forty-characters-0123456789")


OPEN = AccessPolicy()


def guarded(policy: AccessPolicy = OPEN) -> tuple[Guard, list[Request]]:
    reached: list[Request] = []

    async def handler(request: Request) -> Response:
        reached.append(request)
        return Response(200, b"{}", {"Content-Type": "application/json"})

    router = Router(error_response)
    for method in ("GET", "POST", "PUT", "DELETE"):
        router.add(method, INVOKE, handler)
        router.add(method, CONCURRENCY, handler)
    return Guard(router, policy, error_response), reached


def request(
    method: str = "POST",
    path: str = INVOKE,
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
    host: str | None = "127.0.0.1:9001",
) -> Request:
    all_headers = {} if host is None else {"host": host}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return Request(method, path, {}, all_headers, body, "127.0.0.1")


def dispatch(guard: Guard, sent: Request) -> Response:
    return run(guard.dispatch(sent))


def refused(response: Response, status: int, error_type: str) -> str:
    assert response.status == status, response
    assert response.headers["x-amzn-ErrorType"] == error_type
    body = json.loads(response.body)
    return str(body.get("Message") or body.get("message"))


# Host


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:9001",
        "LOCALHOST.:9001",
        "127.0.0.1",
        "127.0.0.1:9001",
        "127.8.9.10:1",
        "[::1]",
        "[::1]:9001",
        "192.168.1.20:9001",  # an address cannot be rebound to another server
        "[fe80::1]:9001",
    ],
)
def test_loopback_names_and_addresses_are_answered(host: str) -> None:
    guard, reached = guarded()
    assert dispatch(guard, request(host=host)).status == 200
    assert len(reached) == 1


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:9001", "localhost.evil.example", "127.0.0.1.nip.io"]
)
def test_other_names_are_refused_as_dns_rebinding(host: str) -> None:
    guard, reached = guarded()
    message = refused(dispatch(guard, request(host=host)), 403, "AccessDeniedException")
    assert host_name(host) in message and "--allow-host" in message
    assert reached == []


def test_a_request_without_host_is_refused() -> None:
    guard, reached = guarded()
    refused(dispatch(guard, request(host=None)), 403, "AccessDeniedException")
    assert reached == []


def test_allowed_names_are_answered() -> None:
    guard, _ = guarded(AccessPolicy(allowed_hosts=frozenset({"lrun.example.lan"})))
    assert dispatch(guard, request(host="LRUN.example.lan:9001")).status == 200
    refused(dispatch(guard, request(host="other.example.lan")), 403, "AccessDeniedException")


# Origin and CORS

ORIGIN = "http://localhost:3000"


def test_a_cross_origin_request_is_refused() -> None:
    guard, reached = guarded()
    sent = request(headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    message = refused(dispatch(guard, sent), 403, "AccessDeniedException")
    assert "https://evil.example" in message and "--cors-origin" in message
    assert reached == []


def test_a_no_cors_request_without_origin_is_refused_by_its_fetch_metadata() -> None:
    guard, reached = guarded()
    sent = request("GET", body=b"", headers={"Sec-Fetch-Site": "cross-site"})
    refused(dispatch(guard, sent), 403, "AccessDeniedException")
    assert reached == []
    typed_in = request("GET", body=b"", headers={"Sec-Fetch-Site": "none"})
    assert dispatch(guard, typed_in).status == 200


def test_an_allowed_origin_gets_cors_headers() -> None:
    guard, reached = guarded(AccessPolicy(cors_origins=frozenset({ORIGIN})))
    response = dispatch(guard, request(headers={"Origin": ORIGIN}))
    assert response.status == 200 and len(reached) == 1
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Amz-Function-Error" in response.headers["Access-Control-Expose-Headers"]
    refused(
        dispatch(guard, request(headers={"Origin": "http://localhost:3001"})),
        403,
        "AccessDeniedException",
    )


def test_a_preflight_is_answered_for_allowed_origins_only() -> None:
    guard, reached = guarded(AccessPolicy(cors_origins=frozenset({ORIGIN})))
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-amz-invocation-type",
        "Access-Control-Request-Private-Network": "true",
    }
    answer = dispatch(guard, request("OPTIONS", body=b"", headers={"Origin": ORIGIN, **asked}))
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-invocation-type"
    assert answer.headers["Access-Control-Allow-Private-Network"] == "true"
    other = request("OPTIONS", body=b"", headers={"Origin": "https://evil.example", **asked})
    response = dispatch(guard, other)
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert reached == []


# Content types


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_content_types_a_page_can_send_are_refused(content_type: str) -> None:
    guard, reached = guarded()
    for path, body in ((INVOKE, b"{}"), (INVOKE, b""), (CONCURRENCY, b"{}")):
        sent = request(
            "POST" if path == INVOKE else "PUT", path, {"Content-Type": content_type}, body
        )
        message = refused(dispatch(guard, sent), 415, "UnsupportedMediaTypeException")
        assert "is not JSON" in message and "application/json" in message
    assert reached == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "application/json"}, {"Content-Type": "application/octet-stream"}],
)
def test_invoke_takes_what_sdks_send(headers: dict[str, str]) -> None:
    guard, reached = guarded()
    assert dispatch(guard, request(headers=headers)).status == 200
    assert len(reached) == 1


def test_json_operations_require_json() -> None:
    guard, reached = guarded()
    put = request("PUT", CONCURRENCY, {"Content-Type": "application/json"}, b"{}")
    assert dispatch(guard, put).status == 200
    bare = request("PUT", CONCURRENCY, {}, b"{}")
    assert "no Content-Type" in refused(dispatch(guard, bare), 415, "UnsupportedMediaTypeException")
    delete = request("DELETE", CONCURRENCY, {}, b"")  # no body, as botocore sends it
    assert dispatch(guard, delete).status == 200
    assert len(reached) == 2


# Signatures


def signed(method: str, path: str, body: bytes, headers: dict[str, str]) -> Request:
    sent = {"Host": "10.0.0.5:9001", **headers}
    added = sigv4.sign(method, path, {}, sent, body, KEY, "us-east-1")
    return request(method, path, {**sent, **added}, body, host=None)


def test_with_credentials_only_signed_requests_pass() -> None:
    guard, reached = guarded(AccessPolicy(credentials=KEY))
    unsigned = request(host="10.0.0.5:9001")
    refused(dispatch(guard, unsigned), 403, "MissingAuthenticationTokenException")
    assert reached == []
    assert dispatch(guard, signed("POST", INVOKE, b"{}", {})).status == 200
    assert len(reached) == 1


def test_only_a_code_download_is_answered_unsigned() -> None:
    guard, reached = guarded(AccessPolicy(credentials=KEY))
    download = "/lrun/code/" + "ab" * 16

    async def code(request: Request) -> Response:
        reached.append(request)
        return Response(200, b"zip", {"Content-Type": "application/zip"})

    guard._router.add("GET", "/lrun/code/{token}", code)  # as FunctionApi routes it
    guard._router.add("GET", "/lrun/environments", code)
    assert dispatch(guard, request("GET", download, host="10.0.0.5:9001")).status == 200
    # Anything else under /lrun/ still needs a signature, however the path is dressed up.
    for path in (
        "/lrun/environments",
        "/lrun/code/../environments",
        "/lrun/code/" + "ab" * 16 + "/../../environments",
        "/lrun/code/not-a-token",
        "/lrun/codeX" + "ab" * 16,
    ):
        sent = request("GET", path, host="10.0.0.5:9001")
        refused(dispatch(guard, sent), 403, "MissingAuthenticationTokenException")
    assert len(reached) == 1


def test_signatures_are_checked_before_content_types() -> None:
    guard, _ = guarded(AccessPolicy(credentials=KEY))
    unsigned = request(headers={"Content-Type": "text/plain"})
    refused(dispatch(guard, unsigned), 403, "MissingAuthenticationTokenException")
    plain = signed("POST", INVOKE, b"{}", {"Content-Type": "text/plain"})
    refused(dispatch(guard, plain), 415, "UnsupportedMediaTypeException")


# Settings


def test_loopback_listening_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.5")
    assert not is_loopback("my.host.lan")


def test_option_values_are_checked() -> None:
    assert check_origin("HTTP://LocalHost:3000/") == "http://localhost:3000"
    assert check_host_name("Lrun.Example.LAN.") == "lrun.example.lan"
    for bad in ("*", "localhost:3000", "http://x/path", "ftp://x"):
        with pytest.raises(LrunError, match="--cors-origin"):
            check_origin(bad)
    for bad in ("http://x", "x:80", "a/b", ""):
        with pytest.raises(LrunError, match="--allow-host"):
            check_host_name(bad)
