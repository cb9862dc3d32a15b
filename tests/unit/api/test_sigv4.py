"""Unit tests for orchestrator.api.sigv4: AWS's published SigV4 test-suite vectors, requests
signed by botocore's own signer (as boto3 and the AWS CLI send them) verified, and every way a
request can fail with AWS's error type and message."""

from __future__ import annotations

import datetime
import hashlib
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from orchestrator.api import sigv4
from orchestrator.api.sigv4 import Credentials, SignedRequest
from orchestrator.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    SignatureError,
    UnrecognizedClient,
)

# The aws-sig-v4-test-suite's fixed inputs.
SUITE_KEY = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_DATE = "20150830T123600Z"
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"
SUITE_HOST = "example.amazonaws.com"

KEY = Credentials("LRUNTESTKEY000000000", "a-secret-of-forty-characters-0123456789")
HOST = "127.0.0.1:9001"
NOW = datetime.datetime(2026, 12, 1, 14, 0, 0, tzinfo=datetime.UTC)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def suite_signature(
    method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> str:
    path, _, query = target.partition("?")
    all_headers = {"host": SUITE_HOST, "x-amz-date": SUITE_DATE, **(headers or {})}
    request = SignedRequest(
        method, path, dict(parse_qsl(query, keep_blank_values=True)), all_headers, body
    )
    canonical = sigv4.canonical_request(
        request, sorted(all_headers), hashlib.sha256(body).hexdigest()
    )
    to_sign = sigv4.string_to_sign(SUITE_DATE, SUITE_SCOPE, canonical)
    return sigv4.signature(SUITE_KEY.secret_access_key, SUITE_SCOPE, to_sign)


@pytest.mark.parametrize(
    ("name", "method", "target", "headers", "body", "expected"),
    [
        (
            "get-vanilla",
            "GET",
            "/",
            {},
            b"",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-unreserved",
            "GET",
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            {},
            b"",
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        ),
        (
            "get-slashes",
            "GET",
            "//example//",
            {},
            b"",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "/?Param2=value2&Param1=value1",
            {},
            b"",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "get-vanilla-utf8-query",
            "GET",
            "/?\u1234=bar",
            {},
            b"",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        ),
        (
            "get-header-value-trim",
            "GET",
            "/",
            {"my-header1": " value1", "my-header2": '"a   b   c"'},
            b"",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            {"content-type": "application/x-www-form-urlencoded"},
            b"Param1=value1",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
        (
            "get-vanilla-with-session-token",
            "GET",
            "/",
            {
                "x-amz-security-token": (
                    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
                )
            },
            b"",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        ),
    ],
)
def test_the_published_test_suite_signatures_are_reproduced(
    name: str, method: str, target: str, headers: dict[str, str], body: bytes, expected: str
) -> None:
    assert suite_signature(method, target, headers, body) == expected, name


def test_canonical_paths_are_normalised_and_encoded_as_aws_publishes() -> None:
    assert sigv4.canonical_path("") == "/"
    assert sigv4.canonical_path("//example//") == "/example/"
    assert sigv4.canonical_path("/example space/") == "/example%20space/"
    assert sigv4.canonical_path("/\u1234") == "/%E1%88%B4"
    # A path arrives percent-encoded, and AWS encodes it once more (non-S3 services).
    assert sigv4.canonical_path("/functions/a%3Ab") == "/functions/a%253Ab"


# Requests as botocore signs them


def boto_signed(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    key: Credentials = KEY,
    region: str = "us-east-1",
    service: str = "lambda",
    when: datetime.datetime = NOW,
) -> SignedRequest:
    """A request signed by botocore's SigV4 signer, as the server receives it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer = SigV4Auth(
        BotoCredentials(key.access_key_id, key.secret_access_key, key.session_token),
        service,
        region,
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    received = {k.lower(): v for k, v in prepared.headers.items()}
    received.setdefault("host", parts.netloc)
    return SignedRequest(
        method,
        parts.path,
        dict(parse_qsl(parts.query, keep_blank_values=True)),
        received,
        prepared.body or b"",
    )


def lookup(key: str) -> Credentials | None:
    return KEY if key == KEY.access_key_id else None


BASE = f"http://{HOST}"
INVOKE = f"{BASE}/2015-03-31/functions/hello/invocations"


@pytest.mark.parametrize(
    ("method", "url", "body", "headers"),
    [
        ("POST", INVOKE, b'{"a": 1}', {}),
        ("POST", INVOKE, b"", {}),
        ("POST", INVOKE, b"{}", {"X-Amz-Invocation-Type": "Event"}),
        (
            "POST",
            f"{BASE}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3A"
            "function%3Ahello/invocations?Qualifier=%24LATEST",
            b"{}",
            {"X-Amz-Log-Type": "Tail"},
        ),
        ("GET", f"{BASE}/2015-03-31/functions/?MaxItems=5&Marker=a%20b%2Fc~d", b"", {}),
        (
            "PUT",
            f"{BASE}/2017-10-31/functions/hello/concurrency",
            b'{"ReservedConcurrentExecutions": 1}',
            {"Content-Type": "application/json"},
        ),
        ("DELETE", f"{BASE}/2017-10-31/functions/hello/concurrency", b"", {}),
    ],
)
def test_requests_botocore_signs_are_verified(
    method: str, url: str, body: bytes, headers: dict[str, str]
) -> None:
    request = boto_signed(method, url, body, headers)
    assert sigv4.verify(request, lookup, NOW) == KEY


def test_any_region_is_accepted() -> None:
    assert sigv4.verify(boto_signed("GET", BASE + "/", region="eu-west-3"), lookup, NOW) == KEY


def test_lrun_own_signer_verifies() -> None:
    headers = {"Host": HOST, "Content-Type": "application/json", "X-Lrun-Log": "full"}
    added = sigv4.sign(
        "POST", "/2015-03-31/functions/hello/invocations", {"A": "b c"}, headers, b"{}", KEY, "x"
    )
    received = {k.lower(): v for k, v in {**headers, **added}.items()}
    request = SignedRequest(
        "POST", "/2015-03-31/functions/hello/invocations", {"A": "b c"}, received, b"{}"
    )
    assert sigv4.verify(request, lookup) == KEY


def test_a_session_token_must_match() -> None:
    with_token = Credentials(KEY.access_key_id, KEY.secret_access_key, "token-1")
    request = boto_signed("GET", BASE + "/", key=with_token)
    assert sigv4.verify(request, lambda _: with_token, NOW) == with_token
    with pytest.raises(UnrecognizedClient):
        sigv4.verify(request, lookup, NOW)  # the server's key has no token


# Failures, with AWS's errors


def replace(request: SignedRequest, **changes: object) -> SignedRequest:
    fields = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": request.body,
        **changes,
    }
    return SignedRequest(**fields)  # type: ignore[arg-type]


def error_of(request: SignedRequest, now: datetime.datetime = NOW) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        sigv4.verify(request, lookup, now)
    assert caught.value.status == 403
    return caught.value


def test_an_unsigned_request_is_missing_its_token() -> None:
    error = error_of(SignedRequest("GET", "/", {}, {"host": HOST}, b""))
    assert isinstance(error, MissingAuthenticationToken)
    assert error.error_type == "MissingAuthenticationTokenException"
    assert error.body() == {"message": "Missing Authentication Token"}


def test_an_unknown_key_is_an_unrecognized_client() -> None:
    other = Credentials("LRUNSOMEONEELSE00000", KEY.secret_access_key)
    error = error_of(boto_signed("GET", BASE + "/", key=other))
    assert isinstance(error, UnrecognizedClient)
    assert error.message == "The security token included in the request is invalid."


def test_a_wrong_secret_is_an_invalid_signature_showing_the_canonical_request() -> None:
    forged = Credentials(KEY.access_key_id, "not-the-secret")
    error = error_of(boto_signed("POST", INVOKE, b"{}", key=forged))
    assert isinstance(error, InvalidSignature)
    assert error.error_type == "InvalidSignatureException"
    assert error.message.startswith(MISMATCH)
    assert "POST\n/2015-03-31/functions/hello/invocations\n" in error.message
    assert KEY.secret_access_key not in error.message


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b'{"a": 2}'},
        {"method": "PUT"},
        {"path": "/2015-03-31/functions/other/invocations"},
        {"query": {"Qualifier": "1"}},
    ],
)
def test_changing_a_signed_request_breaks_its_signature(tamper: dict[str, object]) -> None:
    request = boto_signed("POST", INVOKE, b'{"a": 1}')
    assert isinstance(error_of(replace(request, **tamper)), InvalidSignature)


def test_changing_a_signed_header_breaks_its_signature() -> None:
    request = boto_signed("POST", INVOKE, b"{}", {"X-Amz-Invocation-Type": "Event"})
    headers = {**request.headers, "x-amz-invocation-type": "RequestResponse"}
    assert isinstance(error_of(replace(request, headers=headers)), InvalidSignature)


def test_a_payload_hash_header_must_be_the_body_hash() -> None:
    body = b'{"a": 1}'
    request = boto_signed(
        "POST", INVOKE, body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    )
    assert sigv4.verify(request, lookup, NOW) == KEY
    error = error_of(replace(request, body=b'{"a": 2}'))
    assert isinstance(error, InvalidSignature)
    assert "x-amz-content-sha256" in error.message


def test_an_unsigned_payload_is_accepted_when_declared() -> None:
    request = boto_signed("POST", INVOKE, b"{}", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert sigv4.verify(request, lookup, NOW) == KEY


def test_an_old_signature_has_expired() -> None:
    request = boto_signed("GET", BASE + "/", when=NOW - datetime.timedelta(minutes=6))
    error = error_of(request)
    assert isinstance(error, InvalidSignature)
    assert error.message == (
        "Signature expired: 20261201T135400Z is now earlier than 20261201T135500Z "
        "(20261201T140000Z - 5 min.)"
    )


def test_a_future_signature_is_not_yet_current() -> None:
    request = boto_signed("GET", BASE + "/", when=NOW + datetime.timedelta(minutes=6))
    error = error_of(request)
    assert isinstance(error, InvalidSignature)
    assert error.message == (
        "Signature not yet current: 20261201T140600Z is still later than 20261201T140500Z "
        "(20261201T140000Z + 5 min.)"
    )


def test_a_little_skew_is_tolerated() -> None:
    request = boto_signed("GET", BASE + "/", when=NOW - datetime.timedelta(minutes=4))
    assert sigv4.verify(request, lookup, NOW) == KEY


def test_another_service_scope_is_refused() -> None:
    error = error_of(boto_signed("GET", BASE + "/", service="s3"))
    assert isinstance(error, InvalidSignature)
    assert "'lambda'" in error.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "Bearer abc",
            "Authorization header requires 'Credential' parameter. Authorization header "
            "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
            "parameter. Authorization=Bearer abc",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=LRUNTESTKEY000000000/20261201/us-east-1/lambda/"
            "aws4_request, Signature=00",
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential= LRUNTESTKEY000000000/20261201/us-east-1/lambda/"
            "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            "'LRUNTESTKEY000000000/20261201/us-east-1/lambda/aws4_request' not a valid key=value "
            "pair (missing equal-sign) in Authorization header",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=LRUNTESTKEY000000000/20261201/lambda, "
            "SignedHeaders=host;x-amz-date, Signature=00",
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=LRUNTESTKEY000000000/20261201/us-east-1/lambda/"
            "aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=LRUNTESTKEY000000000/20261201/us-east-1/lambda/"
            "aws4_request, SignedHeaders=host;x-amz-date;x-missing, Signature=00",
            "'x-missing' is named as a SignedHeader, but it does not exist in the HTTP request.",
        ),
    ],
)
def test_malformed_authorization_is_an_incomplete_signature(header: str, expected: str) -> None:
    headers = {"host": HOST, "x-amz-date": "20261201T140000Z", "authorization": header}
    error = error_of(SignedRequest("GET", "/", {}, headers, b""))
    assert isinstance(error, IncompleteSignature), error
    assert expected in error.message


def test_a_signed_request_needs_a_date() -> None:
    request = boto_signed("GET", BASE + "/")
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    error = error_of(replace(request, headers=headers))
    assert isinstance(error, IncompleteSignature)
    assert "'X-Amz-Date' or a 'Date' header" in error.message


def test_credentials_never_show_their_secret() -> None:
    assert KEY.secret_access_key not in repr(KEY)
    assert KEY.secret_access_key not in str(KEY)


@pytest.mark.parametrize("value", ["2026-12-01T14:00:00Z", "20261201T1400Z", "2026120xT140000Z"])
def test_a_malformed_date_is_an_incomplete_signature(value: str) -> None:
    request = boto_signed("GET", BASE + "/")
    error = error_of(replace(request, headers={**request.headers, "x-amz-date": value}))
    assert isinstance(error, IncompleteSignature)
    assert f"Date must be in ISO-8601 'basic format'. Got '{value}'." in error.message


def test_a_signature_with_a_date_header_only_is_verified() -> None:
    request = boto_signed("GET", BASE + "/")
    headers = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    headers["date"] = "Tue, 01 Dec 2026 14:00:00 GMT"
    authorization = headers["authorization"].replace("x-amz-date", "date")
    unsigned = replace(request, headers={**headers, "authorization": authorization})
    error = error_of(unsigned)  # the signature was made over x-amz-date, not date
    assert isinstance(error, InvalidSignature)
    assert "20261201T140000Z" in error.message  # the Date header stood in for X-Amz-Date


def test_cloudwatch_logs_requests_are_signed_for_logs_and_only_for_logs() -> None:
    headers = {
        "X-Amz-Target": "Logs_20140328.FilterLogEvents",
        "Content-Type": "application/x-amz-json-1.1",
    }
    body = b'{"logGroupName": "/aws/lambda/hello"}'
    signed = boto_signed("POST", BASE + "/", body, headers, service="logs")
    assert sigv4.verify(signed, lookup, NOW) == KEY
    # A signature for Lambda does not open the logs (nor a logs one Lambda's operations).
    with pytest.raises(InvalidSignature, match="scoped to correct service: 'logs'"):
        sigv4.verify(boto_signed("POST", BASE + "/", body, headers), lookup, NOW)
    with pytest.raises(InvalidSignature, match="scoped to correct service: 'lambda'"):
        sigv4.verify(boto_signed("POST", INVOKE, b"{}", service="logs"), lookup, NOW)
    # lrun's own client (lrun logs) signs them for logs.
    headers["Host"] = HOST
    added = sigv4.sign("POST", "/", {}, headers, body, KEY, "us-east-1")
    received = {k.lower(): v for k, v in {**headers, **added}.items()}
    assert sigv4.verify(SignedRequest("POST", "/", {}, received, body), lookup) == KEY
