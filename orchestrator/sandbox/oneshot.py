"""The Runtime API up where containers reach it, an invoker using it, and one-shot invocations.

``lrun invoke`` with no `lrun serve` running does one cold invocation and leaves nothing behind
(DESIGN D7); tests use ``hosted_invoker`` to work with environments directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable

from orchestrator import trace
from orchestrator.aws import function_arn
from orchestrator.http_server import Server, serve
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox import engine
from orchestrator.sandbox.backend import NETWORK_PRIVATE, NETWORK_PUBLIC, Backend, Network
from orchestrator.sandbox.container import network_name
from orchestrator.sandbox.holders import HolderSettings, NetworkHolders
from orchestrator.sandbox.images import RUNTIMES
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.invoker import Invoker, InvokerSettings, new_owner
from orchestrator.sandbox.output import Spill
from orchestrator.sandbox.ownership import identify
from orchestrator.sandbox.runtime_api import RuntimeApi
from orchestrator.state import state_dir

log = logging.getLogger(__name__)


def image_for(spec: FunctionSpec) -> str:
    if spec.image is not None:
        return spec.image
    assert spec.runtime is not None
    return RUNTIMES[spec.runtime].image


def _not_isolated(network: Network) -> str:
    return (
        f"functions on network {network.name!r} can reach each other's listeners: an older lrun "
        "made it without isolation and it is still in use, so it cannot be made again yet; "
        "lrun makes it again as soon as no container uses it (stop the older lrun processes)"
    )


@contextlib.asynccontextmanager
async def hosted_invoker(
    backend: Backend,
    owner: str,
    networks: Iterable[str] = (NETWORK_PUBLIC, NETWORK_PRIVATE),
    on_warning: Callable[[str], None] = log.warning,
    holders: HolderSettings | None = None,
) -> AsyncIterator[Invoker]:
    """An invoker whose Runtime API listens on the host's address in each network, one port,
    with the host firewalled from those networks but for that port (``on_warning`` hears what
    stays exposed where that cannot be done); with ``holders``, it keeps network holders
    ready on the networks its functions use (``Invoker.expect``)."""
    api = RuntimeApi()
    servers: list[Server] = []
    port = 0
    guarded = False
    try:
        forced = engine.forced_mode(os.environ)
        nets: list[Network] = []
        for name in networks:
            network = await asyncio.to_thread(backend.network, name, name == NETWORK_PRIVATE)
            nets.append(network)
            if not network.isolated:
                on_warning(_not_isolated(network))
        demux = engine.choose((n.shared_peer for n in nets), forced)
        if demux is engine.Demux.PEER:
            for address in dict.fromkeys(n.gateway for n in nets):  # they may share one
                server = await serve(api.router, address, port, connections=api.connections)
                port = server.port
                servers.append(server)
        guarded = True
        exposed = await asyncio.to_thread(backend.guard_host, owner, port, nets)
        if exposed is not None:
            on_warning(exposed)
        trace.mark("runtime api up")
        pipes = state_dir() / "pipes" if backend.output_pipes else None
        invoker = Invoker(backend, api, InvokerSettings(owner, port, image_for, pipes, demux))
        if holders is not None and demux is engine.Demux.PEER:
            invoker.holders = NetworkHolders(backend, identify(owner).labels(), holders)
        try:
            yield invoker
        finally:
            await invoker.close()
    finally:
        for server in servers:
            await server.close()
        await api.close_doors()
        if guarded:
            await asyncio.to_thread(backend.unguard_host, owner)


async def invoke_once(
    backend: Backend,
    spec: FunctionSpec,
    payload: bytes,
    owner: str | None = None,
    spill: Spill | None = None,
) -> InvocationResult:
    """One cold invocation; output beyond what is kept in memory goes to ``spill`` (else only
    its head and tail are kept)."""
    async with hosted_invoker(backend, owner or new_owner("oneshot"), [network_name(spec)]) as inv:
        inv.spill = spill
        result = await inv.invoke_once(spec, InvokeRequest(payload, function_arn(spec.name)))
        trace.mark("invoked")
        return result
