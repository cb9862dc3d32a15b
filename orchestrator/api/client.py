"""Talking to a running `lrun serve` from other commands, over its HTTP API (stdlib only).

A server announces itself in the state directory; a command uses it only if it answers and
serves the same manifest, and otherwise does its work alone.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import LambdaError, ServerUnavailable, ServiceError
from orchestrator.state import announcement

if TYPE_CHECKING:
    from orchestrator.api.sigv4 import Credentials


@dataclass(frozen=True)
class Served:
    """A reply to an invocation made through the server."""

    payload: bytes
    log: str
    function_error: str | None


class ServerGone(ServerUnavailable):
    """Nothing listens where the state file says the server is: it is not running."""


class ServerClient:
    def __init__(self, url: str, credentials: Credentials | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._netloc = parts.netloc
        self._credentials = credentials  # set when the server checks signatures

    def _request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 960.0,
    ) -> tuple[int, dict[str, str], bytes]:
        # One request on a fresh connection, in a dozen lines of socket calls: http.client
        # alone costs `lrun invoke` some 20 ms of imports, a seventh of its whole budget.
        headers = {"Host": self._netloc, **(headers or {})}
        if self._credentials is not None:
            headers.update(self._signature(method, path, headers, body))
        lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
        lines += [f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            with socket.create_connection((self._host, self._port), timeout) as sock:
                sock.sendall(request)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except ConnectionRefusedError as exc:
            raise ServerGone(f"lrun serve at {self.url} is not running") from exc
        except OSError as exc:
            raise ServerUnavailable(
                f"lrun serve at {self.url} did not answer ({exc}); restart it, or stop it to "
                "invoke without it"
            ) from exc
        head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        found = dict(line.split(":", 1) for line in header_lines if ":" in line)
        return (
            int(status_line.split()[1]),
            {k.strip().lower(): v.strip() for k, v in found.items()},
            payload,
        )

    def _signature(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        from orchestrator.api import sigv4  # only when the server asks: hashing costs imports
        from orchestrator.aws import REGION

        assert self._credentials is not None
        route, _, query = path.partition("?")
        pairs = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        return sigv4.sign(method, route, pairs, headers, body, self._credentials, REGION)

    def logs(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """A CloudWatch Logs operation (``FilterLogEvents``, ...) on the server's logs."""
        status, headers, payload = self._request(
            "POST",
            "/",
            json.dumps(body).encode(),
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Logs_20140328.{operation}",
            },
        )
        found = json.loads(payload or b"{}")
        if status != 200:
            raise ServiceError(
                str(found.get("__type", status)), str(found.get("message", payload[:200]))
            )
        return dict(found)

    def cost(self, since: float | None = None) -> dict[str, Any]:
        """Requests, billed duration and cost per function (``GET /lrun/cost``)."""
        path = "/lrun/cost" if since is None else f"/lrun/cost?since={since:.3f}"
        found: dict[str, Any] = self._get_json(path)
        return found

    def healthy(self) -> bool:
        try:
            status, _, _ = self._request("GET", "/lrun/health", timeout=1.0)
        except ServerUnavailable:
            return False
        return status == 200

    def invoke(self, function: str, payload: bytes) -> Served:
        path = f"/2015-03-31/functions/{urllib.parse.quote(function, safe='')}/invocations"
        status, headers, body = self._request(
            "POST", path, payload, {"X-Lrun-Log": "full", "Content-Type": "application/json"}
        )
        if status != 200:
            raise _error(headers, body)
        log = base64.b64decode(headers.get("x-lrun-log", "")).decode(errors="replace")
        return Served(body, log, headers.get("x-amz-function-error"))

    def invoke_event(self, function: str, payload: bytes) -> str:
        """Queue an asynchronous invocation; its request id once it is durably accepted."""
        path = f"/2015-03-31/functions/{urllib.parse.quote(function, safe='')}/invocations"
        status, headers, body = self._request(
            "POST", path, payload, {"X-Amz-Invocation-Type": "Event"}
        )
        if status != 202:
            raise _error(headers, body)
        return headers.get("x-amzn-requestid", "")

    def events(self) -> list[dict[str, Any]]:
        status, headers, body = self._request("GET", "/lrun/events", timeout=10.0)
        if status != 200:
            raise _error(headers, body)
        rows: list[dict[str, Any]] = json.loads(body)
        return rows

    def environments(self) -> list[dict[str, Any]]:
        status, headers, body = self._request("GET", "/lrun/environments", timeout=10.0)
        if status != 200:
            raise _error(headers, body)
        rows: list[dict[str, Any]] = json.loads(body)
        return rows

    def apis(self) -> list[dict[str, Any]]:
        """The API Gateway APIs the server serves: base URL, type, stage and routes of each."""
        return self._get_json("/lrun/apis")  # type: ignore[no-any-return]

    def urls(self) -> list[dict[str, Any]]:
        """The function URLs the server serves: URL, auth type and invoke mode of each."""
        return self._get_json("/lrun/urls")  # type: ignore[no-any-return]

    def functions(self) -> list[dict[str, Any]]:
        """Every function the server serves, manifest and API-created, with its source."""
        return self._get_json("/lrun/functions")  # type: ignore[no-any-return]

    def function(self, name: str) -> dict[str, Any]:
        """GetFunction's answer for ``name``."""
        found: dict[str, Any] = self._get_json(f"/2015-03-31/functions/{_quoted(name)}")
        return found

    def versions(self, name: str) -> list[dict[str, Any]]:
        """ListVersionsByFunction's versions of ``name``, every page."""
        return self._pages(f"/2015-03-31/functions/{_quoted(name)}/versions", "Versions")

    def aliases(self, name: str) -> list[dict[str, Any]]:
        """ListAliases' aliases of ``name``, every page."""
        return self._pages(f"/2015-03-31/functions/{_quoted(name)}/aliases", "Aliases")

    def _pages(self, path: str, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        marker = ""
        while True:
            page = self._get_json(path + (f"?Marker={_quoted(marker)}" if marker else ""))
            found.extend(page[key])
            marker = page.get("NextMarker") or ""
            if not marker:
                return found

    def delete_function(self, name: str) -> None:
        """DeleteFunction: refused (with AWS's error) for a manifest function."""
        path = f"/2015-03-31/functions/{_quoted(name)}"
        status, headers, body = self._request("DELETE", path, timeout=30.0)
        if status != 204:
            raise _error(headers, body)

    def _get_json(self, path: str) -> Any:
        status, headers, body = self._request("GET", path, timeout=30.0)
        if status != 200:
            raise _error(headers, body)
        return json.loads(body)


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _error(headers: dict[str, str], body: bytes) -> LambdaError:
    """The server's error as the LambdaError it was, so the CLI reports it the same way."""
    kind = headers.get("x-amzn-errortype", "ServiceException")
    try:
        parsed = json.loads(body)
        message = parsed.get("Message") or parsed.get("message") or body.decode()
    except ValueError:
        message = body.decode(errors="replace")
    error = LambdaError(message)
    error.error_type = kind
    return error


def find(manifest: Path | None = None) -> ServerClient | None:
    """The running server (serving ``manifest``, if given), or None.

    Cheap on purpose, with no request: the state file names the server's process, and a
    request that finds nobody listening raises ``ServerGone``, which callers treat as None.
    """
    record = announcement().read()
    if record is None:
        return None
    if manifest is not None and Path(str(record.get("manifest"))) != manifest.resolve():
        return None
    try:
        os.kill(int(str(record.get("pid"))), 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, someone else's
    return ServerClient(str(record.get("url")), _credentials(record.get("credentials")))


def _credentials(found: object) -> Credentials | None:
    """The key pair a signing server announced to its owner's other commands, if any."""
    if not isinstance(found, dict):
        return None
    from orchestrator.api.sigv4 import Credentials

    token = found.get("session_token")
    return Credentials(
        str(found.get("access_key_id", "")),
        str(found.get("secret_access_key", "")),
        None if token is None else str(token),
    )
