"""The Runtime API up where containers reach it, an invoker using it, and one-shot invocations.

``lrun invoke`` with no `lrun serve` running does one cold invocation and leaves nothing behind
(DESIGN D7); tests use ``hosted_invoker`` to work with environments directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from orchestrator import trace
from orchestrator.aws import function_arn
from orchestrator.http_server import Server, serve
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox.backend import NETWORK_PRIVATE, NETWORK_PUBLIC, Backend
from orchestrator.sandbox.container import network_name
from orchestrator.sandbox.images import RUNTIMES
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.invoker import Invoker, InvokerSettings, new_owner
from orchestrator.sandbox.runtime_api import RuntimeApi


def image_for(spec: FunctionSpec) -> str:
    if spec.image is not None:
        return spec.image
    assert spec.runtime is not None
    return RUNTIMES[spec.runtime].image


@contextlib.asynccontextmanager
async def hosted_invoker(
    backend: Backend, owner: str, networks: Iterable[str] = (NETWORK_PUBLIC, NETWORK_PRIVATE)
) -> AsyncIterator[Invoker]:
    """An invoker whose Runtime API listens on the host's address in each network, one port."""
    api = RuntimeApi()
    servers: list[Server] = []
    port = 0
    try:
        listening: set[str] = set()
        for name in networks:
            network = await asyncio.to_thread(backend.network, name, name == NETWORK_PRIVATE)
            if network.gateway in listening:  # networks may share the host's address
                continue
            server = await serve(api.router, network.gateway, port)
            port = server.port
            servers.append(server)
            listening.add(network.gateway)
        trace.mark("runtime api up")
        invoker = Invoker(backend, api, InvokerSettings(owner, port, image_for))
        try:
            yield invoker
        finally:
            await invoker.close()
    finally:
        for server in servers:
            await server.close()


async def invoke_once(
    backend: Backend, spec: FunctionSpec, payload: bytes, owner: str | None = None
) -> InvocationResult:
    async with hosted_invoker(backend, owner or new_owner("oneshot"), [network_name(spec)]) as inv:
        result = await inv.invoke_once(spec, InvokeRequest(payload, function_arn(spec.name)))
        trace.mark("invoked")
        return result
