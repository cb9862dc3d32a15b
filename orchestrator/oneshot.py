"""A one-shot invocation without a server: Runtime API up, one cold environment, all gone after.

This is what `lrun invoke` does when no `lrun serve` is running (DESIGN D7).
"""

from __future__ import annotations

import asyncio

from orchestrator import trace
from orchestrator.backend import Backend
from orchestrator.http_server import serve
from orchestrator.invocation import InvocationResult, InvokeRequest
from orchestrator.invoker import Invoker, InvokerSettings, new_owner
from orchestrator.manifest import FunctionSpec, function_arn
from orchestrator.runtime_api import RuntimeApi
from orchestrator.runtimes import RUNTIMES
from orchestrator.sandbox import network_name


def image_for(spec: FunctionSpec) -> str:
    if spec.image is not None:
        return spec.image
    assert spec.runtime is not None
    return RUNTIMES[spec.runtime].image


async def invoke_once(backend: Backend, spec: FunctionSpec, payload: bytes) -> InvocationResult:
    api = RuntimeApi()
    network = await asyncio.to_thread(
        backend.network, network_name(spec), spec.network == "private"
    )
    server = await serve(api.router, network.gateway, 0)
    trace.mark("runtime api up")
    port = server.sockets[0].getsockname()[1]
    invoker = Invoker(backend, api, InvokerSettings(new_owner("oneshot"), port, image_for))
    try:
        request = InvokeRequest(payload, function_arn(spec.name))
        return await invoker.invoke_once(spec, request)
    finally:
        trace.mark("invoked")
        server.close()
