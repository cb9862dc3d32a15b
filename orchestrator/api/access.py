"""Who may drive lrun's Lambda API: the checks every request passes before any route runs.

lrun can start containers, which on most hosts is close to root (DESIGN D9), so its API must
not be drivable by whoever can make a request reach it:

- a web page in the user's browser, through DNS rebinding: the page's own name is made to
  resolve to 127.0.0.1, so its requests reach lrun as same-origin ones. They still carry the
  page's name in ``Host``; lrun answers only ``localhost``, IP addresses (a page cannot rebind
  an address) and the names allowed with ``--allow-host``.
- a web page making cross-site requests (a form, ``fetch`` in ``no-cors`` mode): browsers mark
  them with ``Origin`` (and ``Sec-Fetch-Site``). lrun refuses them unless the origin was allowed
  with ``--cors-origin``, and answers CORS preflights for those origins only. As a second
  line, the content types a page may send without a preflight (``text/plain``, forms) are
  refused on requests that change anything, and the JSON operations require
  ``application/json`` as botocore sends it.
- anyone else on the network, when lrun listens beyond loopback: every request must carry an
  AWS Signature Version 4 made with lrun's key pair (``orchestrator.api.sigv4``).

The checks are dictionary look-ups and, with signatures on, a few hashes: cheap on the warm path.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.api import sigv4
from orchestrator.errors import AccessDenied, LrunError, UnsupportedMediaType
from orchestrator.http_server import ErrorMapper, Request, Response, Router

# Where a function's code is downloaded from (GetFunction's Code.Location): the token in the
# URL is the authorisation, as in the presigned URL AWS gives.
CODE_PATH = "/lrun/code/"
_CODE_DOWNLOAD = re.compile(re.escape(CODE_PATH) + r"[0-9a-f]{32}")
LOOPBACK_NAMES = frozenset({"localhost"})
# What a browser may send cross-site without a preflight (the Fetch standard's CORS-safelisted
# request content types): a page can post these anywhere.
SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
# JSON as botocore sends it: Lambda's REST JSON, CloudWatch Logs' JSON 1.1, CloudWatch's JSON 1.0
# and CBOR (none of them a type a page may send cross-site without a preflight).
JSON_CONTENT_TYPES = frozenset(
    {
        "application/json",
        "application/x-amz-json-1.1",
        "application/x-amz-json-1.0",
        "application/cbor",
    }
)
CHANGING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
CORS_METHODS = "GET, POST, PUT, DELETE"
CORS_EXPOSED = (
    "x-amzn-RequestId, x-amzn-ErrorType, X-Amz-Function-Error, X-Amz-Log-Result, "
    "X-Amz-Executed-Version"
)
PREFLIGHT_MAX_AGE_S = 600
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_ORIGIN = re.compile(r"^https?://[^/?#@\s]+$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_HOST_CACHE_SIZE = 256


@dataclass(frozen=True)
class AccessPolicy:
    """What a server accepts beyond the always-allowed loopback names and IP addresses."""

    allowed_hosts: frozenset[str] = frozenset()  # lower-case names, no port
    cors_origins: frozenset[str] = frozenset()  # scheme://host[:port], lower-case
    credentials: sigv4.Credentials | None = field(default=None)  # None: signatures not checked

    @property
    def signed(self) -> bool:
        return self.credentials is not None


def is_loopback(host: str) -> bool:
    """Whether a listening address keeps the server on this machine."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_origin(value: str) -> str:
    """A ``--cors-origin`` value, normalised; raises naming the value and the form expected."""
    origin = value.strip().rstrip("/").lower()
    if origin == "*" or not _ORIGIN.match(origin):
        raise LrunError(
            f"--cors-origin {value!r} is not an origin: give scheme://host[:port], e.g. "
            "http://localhost:3000 (one origin per option; '*' is not allowed, as it would let "
            "every web page drive lrun)"
        )
    return origin


def check_host_name(value: str) -> str:
    """An ``--allow-host`` value, normalised; raises naming the value and the form expected."""
    name = value.strip().lower().rstrip(".")
    if not _NAME.match(name):
        raise LrunError(
            f"--allow-host {value!r} is not a host name: give a name such as lrun.example.lan "
            "(no scheme, port or path)"
        )
    return name


def host_name(header: str) -> str:
    """The name or address in a ``Host`` header, without port, brackets or final dot."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else header
    name, colon, port = header.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        header = name
    return header.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """The Lambda API's front door: checks a request, then lets the router answer it."""

    def __init__(self, router: Router, policy: AccessPolicy, on_error: ErrorMapper) -> None:
        self._router = router
        self._policy = policy
        self._on_error = on_error
        self._host_check = HostCheck(policy)
        credentials = policy.credentials
        self._lookup = (
            (lambda key: credentials if key == credentials.access_key_id else None)
            if credentials is not None
            else None
        )

    async def dispatch(self, request: Request) -> Response:
        headers = request.headers
        origin = headers.get("origin")
        try:
            self._check_host(headers.get("host"))
            if origin is not None:
                if origin.lower() not in self._policy.cors_origins:
                    raise AccessDenied(
                        f"Cross-origin request from '{origin}' refused: lrun serve lets a web "
                        f"page call its API only from origins allowed with --cors-origin "
                        f"(e.g. --cors-origin {origin})"
                    )
                if request.method == "OPTIONS" and "access-control-request-method" in headers:
                    return _preflight(origin, headers)
            elif headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                raise AccessDenied(
                    "Cross-site request refused (Sec-Fetch-Site: "
                    f"{headers['sec-fetch-site']}): lrun serve lets a web page call its API only "
                    "from origins allowed with --cors-origin"
                )
            # A code download's URL carries its own unguessable token, like the presigned URL
            # AWS gives for it, and is fetched unsigned as that one is.
            if self._lookup is not None and not _CODE_DOWNLOAD.fullmatch(request.path):
                sigv4.verify(
                    sigv4.SignedRequest(
                        request.method, request.path, request.query, headers, request.body
                    ),
                    self._lookup,
                )
            if request.method in CHANGING_METHODS:
                _check_content_type(request)
        except LrunError as exc:
            response = _as_protocol(self._on_error(exc), request)
        else:
            response = await self._router.dispatch(request)
        if origin is not None and origin.lower() in self._policy.cors_origins:
            response = _with_cors(response, origin)
        return response

    def body_limit(self, method: str, path: str) -> int | None:
        return self._router.body_limit(method, path)

    async def dispatch_too_large(self, request: Request, size: int | None, limit: int) -> Response:
        # Refused for its size, its body unread: nothing runs, so nothing to guard.
        return await self._router.dispatch_too_large(request, size, limit)

    def _check_host(self, header: str | None) -> None:
        refusal = self._host_check.refusal(header)
        if refusal is not None:
            raise AccessDenied(refusal)


class HostCheck:
    """Whether a request's ``Host`` names this server: ``localhost``, an IP address or an
    allowed name (DNS rebinding, see above). The API Gateway listeners use it too."""

    def __init__(self, policy: AccessPolicy) -> None:
        self._policy = policy
        self._hosts: dict[str, bool] = {}

    def refusal(self, header: str | None) -> str | None:
        """None when the Host is allowed, else why not and what to do."""
        if header is None:
            return (
                "Request without a Host header refused: send Host: 127.0.0.1 (or the address "
                "or allowed name lrun serve is reached at)"
            )
        allowed = self._hosts.get(header)
        if allowed is None:
            name = host_name(header)
            allowed = (
                name in LOOPBACK_NAMES or name in self._policy.allowed_hosts or _is_address(name)
            )
            if len(self._hosts) < _HOST_CACHE_SIZE:
                self._hosts[header] = allowed
        if allowed:
            return None
        name = host_name(header)
        return (
            f"Host '{header}' refused: lrun serve answers requests addressed to localhost, "
            "an IP address or a name allowed with --allow-host, so that a web page cannot "
            f"reach it through a DNS name it controls; if '{name}' is yours, start lrun "
            f"serve with --allow-host {name}"
        )


def _as_protocol(response: Response, request: Request) -> Response:
    """A refusal in the error shape of the protocol the request speaks: CloudWatch Logs' JSON
    1.1 and CloudWatch's JSON 1.0 read ``__type`` from the body, its RPC v2 CBOR a CBOR body;
    Lambda's REST JSON reads ``x-amzn-ErrorType`` (as ``response`` has it)."""
    rpc_cbor = request.path.startswith("/service/")
    if "x-amz-target" not in request.headers and not rpc_cbor:
        return response
    code = response.headers.get("x-amzn-ErrorType", "AccessDeniedException")
    try:
        found = json.loads(response.body)
        message = str(found.get("Message", found.get("message", "")))
    except (ValueError, AttributeError):
        message = response.body.decode(errors="replace")
    body: dict[str, str] = {"__type": code, "message": message}
    if rpc_cbor:
        from orchestrator.api import cbor

        headers = {**response.headers, "Content-Type": "application/cbor"}
        headers["smithy-protocol"] = "rpc-v2-cbor"
        return Response(response.status, cbor.dumps(body), headers)
    return Response(response.status, json.dumps(body).encode(), response.headers)


def _check_content_type(request: Request) -> None:
    declared = request.headers.get("content-type")
    media = declared.partition(";")[0].strip().lower() if declared is not None else None
    invoke = request.path.endswith("invocations")  # Invoke's or InvokeWithResponseStream's
    if media in SIMPLE_CONTENT_TYPES:
        what = "Invoke request body" if invoke else "request body"
        raise UnsupportedMediaType(
            f"The content type of the {what} is not JSON: '{declared}' is refused, as any web "
            "page can send it cross-site; send Content-Type: application/json"
            + (" (or none)" if invoke else "")
        )
    # Invoke's payload is a blob: botocore sends no Content-Type, other SDKs octet-stream.
    if not invoke and request.body and media not in JSON_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"The content type of the request body is not JSON: got "
            f"{'no Content-Type' if declared is None else repr(declared)}; send "
            "Content-Type: application/json"
        )


def _preflight(origin: str, headers: Mapping[str, str]) -> Response:
    allowed = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        "Vary": "Origin",
    }
    requested = headers.get("access-control-request-headers", "").strip()
    if requested and _HEADER_LIST.match(requested):
        allowed["Access-Control-Allow-Headers"] = requested
    if headers.get("access-control-request-private-network") == "true":
        allowed["Access-Control-Allow-Private-Network"] = "true"
    return Response(204, b"", allowed)


def _with_cors(response: Response, origin: str) -> Response:
    headers = {
        **response.headers,
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSED,
        "Vary": "Origin",
    }
    return Response(
        response.status, response.body, headers, response.repeated, stream=response.stream
    )
