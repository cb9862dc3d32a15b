"""The manifest's APIs as `lrun serve` serves them: one listener per API, each on its own port.

``Gateway.load`` takes a manifest (again on a reload): an API whose port and type are unchanged
keeps its listener and gets the new routes; others are started (on their port, or a free one)
and those the manifest no longer has are stopped. New ports are bound before old ones are let go,
so a reload that cannot bind one leaves everything as it was.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import LrunError
from orchestrator.gateway.listener import (
    MAX_REQUEST_BODY,
    ApiListener,
    HostCheck,
    Listener,
)
from orchestrator.gateway.websocket_connection import WebSocketLimits
from orchestrator.gateway.websocket_listener import OriginCheck, WebSocketListener
from orchestrator.gateway.websocket_management import WebSocketHub, add_runtime_routes
from orchestrator.http_server import Limits, Server, serve
from orchestrator.manifest import Manifest
from orchestrator.manifest.apis import ApiSpec
from orchestrator.sandbox.runtime_api import RuntimeApi
from orchestrator.service import Service

# An API's clients: API Gateway's 10 MB payload; a request holds its connection while its
# function runs, so connections are capped as the Lambda API's are.
GATEWAY_LIMITS = Limits(max_body=MAX_REQUEST_BODY, max_connections=1024)
# A WebSocket API's port: handshakes and management calls (PostToConnection's 128 KB). Its
# WebSocket connections leave these limits once upgraded and are held to WebSocketLimits.
WEBSOCKET_HTTP_LIMITS = Limits(max_body=128 * 1024, max_connections=1024)


@dataclass
class _Running:
    listener: ApiListener | WebSocketListener
    server: Server

    @property
    def spec(self) -> ApiSpec:
        listener = self.listener
        return listener.spec if isinstance(listener, WebSocketListener) else listener.served.spec


class Gateway:
    """Every API of the manifest, listening on ``host``."""

    def __init__(
        self,
        service: Service,
        host: str,
        check_host: HostCheck,
        url_of: Callable[[int], str],
        on_event: Listener,
        check_origin: OriginCheck | None = None,
        websocket_limits: WebSocketLimits | None = None,
    ) -> None:
        self._service = service
        self._host = host
        self._check_host = check_host
        self._url_of = url_of  # a port -> the base URL clients reach it at
        self._on_event = on_event
        self._running: dict[str, _Running] = {}
        self._check_origin: OriginCheck = check_origin or (lambda origin: None)
        self._websocket_limits = websocket_limits or WebSocketLimits.from_env()
        self.hub = WebSocketHub()  # every WebSocket API's open connections

    def serve_connections(self, runtime_api: RuntimeApi) -> None:
        """Let functions reach the @connections API on the Runtime API's address."""
        add_runtime_routes(runtime_api, self.hub)

    async def load(self, manifest: Manifest) -> None:
        """Serve the manifest's APIs; ``LrunError`` (nothing changed) if a port cannot be had."""
        started: dict[str, _Running] = {}
        kept: dict[str, _Running] = {}
        try:
            for name, spec in manifest.apis.items():
                running = self._running.get(name)
                if running is not None and _same_listener(running.spec, spec):
                    kept[name] = running
                else:
                    started[name] = await self._start(spec)
        except BaseException:
            await asyncio.gather(*(r.server.close() for r in started.values()))
            raise
        for name, running in kept.items():
            running.listener.configure(manifest.apis[name], running.server.port)
        stopped = [r for n, r in self._running.items() if kept.get(n) is not r]
        self._running = {name: kept.get(name) or started[name] for name in manifest.apis}
        await asyncio.gather(*(_close(r) for r in stopped))
        for name in started:
            self._on_event(self._announcement(name))

    async def _start(self, spec: ApiSpec) -> _Running:
        port = spec.port or 0
        listener: ApiListener | WebSocketListener
        if spec.type == "websocket":
            listener = WebSocketListener(
                spec,
                self._service,
                self._check_host,
                self._check_origin,
                self._on_event,
                self.hub,
                self._websocket_limits,
            )
            limits = WEBSOCKET_HTTP_LIMITS
        else:
            listener = ApiListener(spec, self._service, self._check_host, self._on_event)
            limits = GATEWAY_LIMITS
        try:
            server = await serve(listener, self._host, port, limits)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise LrunError(
                f"API {spec.name!r} cannot listen on {self._host}:{port}: {why}; give it "
                f"another port (apis.{spec.name}.port), or none for any free one"
            ) from exc
        listener.configure(spec, server.port)
        return _Running(listener, server)

    def _announcement(self, name: str) -> str:
        row = self._row(name)
        routes = len(row["routes"])
        text = f"API {name} ({row['type']}, {routes} route{'s' * (routes != 1)}): {row['url']}"
        if row["type"] == "websocket":
            text += f" (@connections at {row['connections_url']})"
        return text

    def _row(self, name: str) -> dict[str, Any]:
        running = self._running[name]
        spec = running.spec
        base = self._url_of(running.server.port)
        if spec.type == "websocket":
            stage_url = f"{base}/{spec.stage}"
            return {
                "name": name,
                "type": spec.type,
                "stage": spec.stage,
                "port": running.server.port,
                "url": "ws" + stage_url.removeprefix("http"),
                "connections_url": stage_url,
                "route_selection": spec.route_selection,
                "connections": len(self.hub.open_of(name)),
                "routes": [
                    {
                        "route": route.key,
                        "function": route.function,
                        "authorizer": None,
                        "payload": None,
                        "qualifier": route.qualifier,
                    }
                    for route in spec.websocket_routes
                ],
            }
        return {
            "name": name,
            "type": spec.type,
            "stage": spec.stage,
            "port": running.server.port,
            "url": base + spec.base_path,
            "routes": [
                {
                    "route": str(route.key),
                    "function": route.function,
                    "authorizer": route.authorizer,
                    "payload": route.payload,
                    "qualifier": route.qualifier,
                }
                for route in spec.routes
            ],
        }

    def describe(self) -> list[dict[str, Any]]:
        """Each API with its base URL and routes, as `lrun ps` shows them."""
        return [self._row(name) for name in sorted(self._running)]

    async def stop_listening(self) -> None:
        for running in self._running.values():
            await running.server.stop_listening()

    async def close(self) -> None:
        await asyncio.gather(*(_close(r) for r in self._running.values()))
        self._running = {}


async def _close(running: _Running) -> None:
    """Stop a listener: its WebSocket clients are told the server is going away (1001)."""
    await running.server.close()
    if isinstance(running.listener, WebSocketListener):
        await running.listener.close()


def _same_listener(old: ApiSpec, new: ApiSpec) -> bool:
    """Whether the listener of ``old`` can serve ``new``: same port (a free one stays free)
    and both WebSocket APIs or neither."""
    return old.port == new.port and (old.type == "websocket") == (new.type == "websocket")
