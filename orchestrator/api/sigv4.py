"""AWS Signature Version 4: verifying a request's ``Authorization`` header, and signing one.

`lrun serve` beyond loopback accepts only requests signed with the key pair it is configured
with, so boto3 and the AWS CLI work unchanged with those keys (``--endpoint-url``) and nobody
else gets in. This is the algorithm as AWS documents it and botocore implements it for
non-S3 services: canonical request (method, normalised and twice-encoded path, sorted
re-encoded query, the signed headers trimmed, the payload's SHA-256 or the
``x-amz-content-sha256`` header), string to sign, key derived from the secret by date, region and
service. Failures are AWS's own errors and messages (``orchestrator.errors.SignatureError``).

Only the standard library (hmac, hashlib): the client side runs inside `lrun invoke`, whose
start-up budget counts milliseconds of imports. Verification is a few hashes, with the derived
signing key cached per day, so it is cheap on the warm path.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from orchestrator.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "lambda"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW = datetime.timedelta(minutes=5)  # as AWS allows for Lambda
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SEPARATORS = re.compile(r"[,\s]+")  # AWS takes both between the header's key=value pairs
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = ""
    session_token: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True)
class SignedRequest:
    """What verification reads of a request. ``path`` is as sent (percent-encoded); ``query``
    is decoded, as the handlers see it, so what is verified is what is acted on."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


# Canonical request


def _encode(text: str, safe: str = "") -> str:
    """URI-encode as AWS does: every byte but A-Z a-z 0-9 - _ . ~ (and ``safe``) as %XX."""
    return quote(text, safe="-_.~" + safe)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, plus AWS's collapsing of empty segments (as botocore)."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if kept:
                    kept.pop()
            else:
                kept.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and kept else ""
    return first + "/".join(kept) + last


def canonical_path(path: str) -> str:
    return _encode(_remove_dot_segments(path), safe="/")


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((_encode(key), _encode(value)) for key, value in query)
    return "&".join(f"{key}={value}" for key, value in pairs)


def _trim(value: str) -> str:
    return " ".join(value.split())


def canonical_request(request: SignedRequest, signed_headers: list[str], payload_hash: str) -> str:
    headers = "".join(f"{name}:{_trim(request.headers[name])}\n" for name in signed_headers)
    return "\n".join(
        (
            request.method,
            canonical_path(request.path),
            canonical_query(request.query.items()),
            headers,
            ";".join(signed_headers),
            payload_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


_keys: dict[tuple[str, str, str, str], bytes] = {}


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The key derived for one day, region and service; cached (it changes once a day)."""
    cache_key = (secret, day, region, service)
    found = _keys.get(cache_key)
    if found is None:
        if len(_keys) > 64:
            _keys.clear()
        dated = _hmac(b"AWS4" + secret.encode("utf-8"), day)
        found = _hmac(_hmac(_hmac(dated, region), service), "aws4_request")
        _keys[cache_key] = found
    return found


def signature(secret: str, scope: str, to_sign: str) -> str:
    day, region, service, _ = scope.split("/")
    key = signing_key(secret, day, region, service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# Verification


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    scope: str  # day/region/service/aws4_request
    signed_headers: list[str]
    signature: str


def parse_authorization(header: str) -> Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-"):
            raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
        raise _incomplete(header, ("Credential", "Signature", "SignedHeaders"))
    fields: dict[str, str] = {}
    for part in _SEPARATORS.split(rest):
        if not part:
            continue
        name, equals, value = part.partition("=")
        if not equals:
            raise IncompleteSignature(
                f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization "
                f"header: '{header}'."
            )
        fields[name.strip()] = value.strip()
    missing = [n for n in ("Credential", "Signature", "SignedHeaders") if not fields.get(n)]
    if missing:
        raise _incomplete(header, missing)
    credential = fields["Credential"]
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'"
        )
    if parts[4] != "aws4_request":
        raise IncompleteSignature(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not "
            f"'{parts[4]}'. "
        )
    access_key_id, _, scope = credential.partition("/")
    return Authorization(
        access_key_id, scope, fields["SignedHeaders"].split(";"), fields["Signature"]
    )


def _incomplete(header: str, missing: Iterable[str]) -> IncompleteSignature:
    parts = [f"Authorization header requires '{name}' parameter." for name in missing]
    return IncompleteSignature(" ".join(parts) + f" Authorization={header}")


def _parse_amz_date(text: str) -> datetime.datetime:
    """``20261201T140000Z`` as a time; by hand, as strptime costs a third of a verification."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z" or not text[9:15].isdigit():
        raise ValueError(text)
    if not text[:8].isdigit():
        raise ValueError(text)
    return datetime.datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[9:11]),
        int(text[11:13]),
        int(text[13:15]),
        tzinfo=datetime.UTC,
    )


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime.datetime]:
    """The request's ``X-Amz-Date`` (or ``Date``) as AWS's compact form and as a time."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        try:
            moment = _parse_amz_date(amz_date)
        except ValueError as exc:
            raise IncompleteSignature(
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See "
                "http://en.wikipedia.org/wiki/ISO_8601"
            ) from exc
        return amz_date, moment
    date = headers.get("date")
    if date is not None:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(date).astimezone(datetime.UTC)
        except (TypeError, ValueError) as exc:
            raise IncompleteSignature(f"Date must be in RFC 1123 format. Got '{date}'.") from exc
        return moment.strftime(AMZ_DATE), moment
    raise IncompleteSignature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def verify(
    request: SignedRequest,
    lookup: Callable[[str], Credentials | None],
    now: datetime.datetime | None = None,
) -> Credentials:
    """The credentials that signed ``request``; raises AWS's error if it is not validly signed."""
    header = request.headers.get("authorization")
    if header is None:
        if "X-Amz-Signature" in request.query or "X-Amz-Credential" in request.query:
            raise IncompleteSignature(
                "lrun verifies the Authorization header only; presigned URLs (X-Amz-Signature "
                "in the query string) are not supported: sign the request's headers instead"
            )
        raise MissingAuthenticationToken()
    auth = parse_authorization(header)
    amz_date, moment = _request_time(request.headers)
    for name in auth.signed_headers:
        if name not in request.headers:
            raise IncompleteSignature(
                f"'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
            )
    if "host" not in auth.signed_headers:
        raise IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    day, _region, service, _ = auth.scope.split("/")
    if day != amz_date[:8]:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    expected_service = service_of(request.headers, request.path)
    if service != expected_service:
        raise InvalidSignature(
            f"Credential should be scoped to correct service: '{expected_service}'. "
        )
    credentials = lookup(auth.access_key_id)
    if credentials is None or request.headers.get("x-amz-security-token") != (
        credentials.session_token
    ):
        raise UnrecognizedClient()
    payload_hash = _payload_hash(request)
    canonical = canonical_request(request, auth.signed_headers, payload_hash)
    to_sign = string_to_sign(amz_date, auth.scope, canonical)
    expected = signature(credentials.secret_access_key, auth.scope, to_sign)
    if not hmac.compare_digest(expected, auth.signature):
        raise InvalidSignature(
            f"{_SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n"
            f"'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        )
    _check_time(amz_date, moment, now or datetime.datetime.now(datetime.UTC))
    return credentials


def service_of(headers: Mapping[str, str], path: str) -> str:
    """The service a request is for, as its signature must be scoped: CloudWatch Logs
    (``logs``) and CloudWatch (``monitoring``) share lrun's endpoint with Lambda."""
    target = headers.get("x-amz-target", "")
    if target.startswith("Logs_20140328."):
        return "logs"
    if target.startswith("GraniteServiceVersion20100801.") or path.startswith(
        "/service/GraniteServiceVersion20100801/"
    ):
        return "monitoring"
    return SERVICE


def _payload_hash(request: SignedRequest) -> str:
    declared = request.headers.get("x-amz-content-sha256")
    if declared is None:
        return hashlib.sha256(request.body).hexdigest() if request.body else EMPTY_SHA256
    # The header stands in for the body in the canonical request, so it must be the body's
    # hash, or the body would not be covered by the signature at all. UNSIGNED-PAYLOAD is that,
    # declared: accepted, as AWS does, for clients that sign headers only.
    if declared != UNSIGNED_PAYLOAD:
        actual = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(declared, actual):
            raise InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
    return declared


def _check_time(amz_date: str, moment: datetime.datetime, now: datetime.datetime) -> None:
    if moment < now - MAX_SKEW:
        raise InvalidSignature(
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} - 5 min.)"
        )
    if moment > now + MAX_SKEW:
        raise InvalidSignature(
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + MAX_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} + 5 min.)"
        )


# Signing (lrun's own client)


def sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    now: datetime.datetime | None = None,
) -> dict[str, str]:
    """The headers to add to a request (``X-Amz-Date``, ``Authorization``, maybe the token) so
    that it verifies; ``headers`` must hold ``Host`` and every other header to be signed."""
    moment = now or datetime.datetime.now(datetime.UTC)
    amz_date = moment.strftime(AMZ_DATE)
    added = {"X-Amz-Date": amz_date}
    if credentials.session_token is not None:
        added["X-Amz-Security-Token"] = credentials.session_token
    lowered = {k.lower(): v for k, v in {**headers, **added}.items()}
    signed = sorted(lowered)
    request = SignedRequest(method, path, query, lowered, body)
    scope = f"{amz_date[:8]}/{region}/{service_of(lowered, path)}/aws4_request"
    payload = hashlib.sha256(body).hexdigest()
    to_sign = string_to_sign(amz_date, scope, canonical_request(request, signed, payload))
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, "
        f"Signature={signature(credentials.secret_access_key, scope, to_sign)}"
    )
    return added
