"""A raw HTTP/1.1 client on asyncio streams for the server tests: it writes exactly the bytes a
test gives and reads responses one by one, so keep-alive, pipelining and interim responses
can be observed on the wire. Not a test module (no ``test_`` prefix)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.http_server import Connections, Limits, Router, serve
from tests.fakes import run as run

TIMEOUT_S = 2.0  # a bug must fail a test, never hang it
_T = TypeVar("_T")


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    headers: Mapping[str, str]  # names lower-cased
    header_names: tuple[str, ...]  # as sent, in order
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {target} {version}", "Host: test"]
    extra = dict(headers or {})
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in extra):
        extra["Content-Length"] = str(len(body))
    lines.extend(f"{k}: {v}" for k, v in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader, timeout: float = TIMEOUT_S) -> RawResponse:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers: dict[str, str] = {}
    names: list[str] = []
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            names.append(name.strip())
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    return RawResponse(int(status), reason, headers, tuple(names), body)


class Client:
    """One TCP connection to the server under test, optionally from a chosen loopback address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str | None = None) -> Client:
        local_addr = (source, 0) if source is not None else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=local_addr), TIMEOUT_S
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = TIMEOUT_S) -> RawResponse:
        return await read_response(self.reader, timeout)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        await self.send(request_bytes(method, target, body, headers))
        return await self.response()

    async def at_eof(self, timeout: float = TIMEOUT_S) -> bool:
        """True if the server closed the connection (nothing more to read)."""
        return await asyncio.wait_for(self.reader.read(), timeout) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(
    router: Router, limits: Limits | None = None, connections: Connections | None = None
) -> AsyncIterator[int]:
    """``serve(router)`` on 127.0.0.1 with a free port; yields the port."""
    server = await serve(router, "127.0.0.1", 0, limits, connections)
    try:
        yield server.port
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def connected(port: int, source: str | None = None) -> AsyncIterator[Client]:
    client = await Client.connect(port, source)
    try:
        yield client
    finally:
        await client.close()
