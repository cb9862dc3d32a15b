"""P2: one environment can never obtain or answer another environment's invocation."""

from __future__ import annotations

import asyncio
import json

import docker
import pytest

from orchestrator.aws import function_arn
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.engine import MODE_VARIABLE, Demux
from orchestrator.sandbox.holders import HolderSettings
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.oneshot import hosted_invoker
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, holders_ready, load_function, peer_mode_here, run

PY = FUNCTIONS / "python"


@pytest.fixture
def listener_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Runtime API mode of NAT'd engines (a listener per environment), forced here."""
    monkeypatch.setenv(MODE_VARIABLE, Demux.LISTENER.value)


@pytest.mark.engines
@pytest.mark.parametrize(
    ("holders", "mode"),
    [(None, Demux.PEER), (HolderSettings(floor=2, cap=2), Demux.PEER), (None, Demux.LISTENER)],
    ids=["own network", "network holders", "listener per environment"],
)
def test_a_second_container_cannot_take_or_answer_the_firsts_invocation(
    backend: DockerBackend,
    write_manifest,
    holders: HolderSettings | None,
    mode: Demux,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if mode is Demux.PEER and not peer_mode_here():
        pytest.skip("this engine hides containers' addresses behind NAT: no peer mode")
    monkeypatch.setenv(MODE_VARIABLE, mode.value)
    path = write_manifest(
        f"""
        functions:
          victim: {{runtime: python3.13, handler: probe.sleep, code: {PY}, timeout: 10}}
          thief:  {{runtime: python3.13, handler: probe.steal, code: {PY}, timeout: 10}}
        """
    )
    victim, thief = load_function(path, "victim"), load_function(path, "thief")

    async def scenario() -> tuple[dict[str, object], bytes, str]:
        async with hosted_invoker(backend, OWNER, holders=holders) as invoker:
            if holders is not None:
                await holders_ready(invoker, [victim, thief], 2)
            victim_env, thief_env = await asyncio.gather(
                invoker.start_environment(victim), invoker.start_environment(thief)
            )
            assert victim_env.container and thief_env.container
            if mode is Demux.PEER:
                assert victim_env.container.ip != thief_env.container.ip
            request = InvokeRequest(b'{"s": 2}', function_arn("victim")).with_request_id()
            victim_run = asyncio.ensure_future(invoker.run_on(victim_env, victim, request))
            await asyncio.sleep(0.5)  # the victim's invocation is now in flight
            payload = json.dumps({"victim": request.request_id}).encode()
            steal = InvokeRequest(payload, function_arn("thief")).with_request_id()
            stolen = await invoker.run_on(thief_env, thief, steal)
            victim_result = await victim_run
            for env in (victim_env, thief_env):
                await invoker.stop_environment(env)
            assert stolen.function_error is None, stolen.payload
            return json.loads(stolen.payload), victim_result.payload, request.request_id

    attempt, victim_payload, victim_id = run(scenario())
    assert attempt["answer_status"] == 400  # InvalidRequestID: not this environment's
    assert attempt["error_status"] == 400
    assert attempt["fetched"] in (None, "")  # its own /next never hands out the victim's event
    assert json.loads(victim_payload) == {"slept": 2}  # the victim's own answer got through


@pytest.mark.engines
def test_a_neighbour_that_found_a_listener_by_scanning_cannot_use_it(
    backend: DockerBackend, engine: docker.DockerClient, write_manifest, listener_mode: None
) -> None:
    """Listener mode: the thief calls the victim's own listener (its port given, as a port scan
    would find it) under its own host name; both calls are refused, the victim's answer stands."""
    path = write_manifest(
        f"""
        functions:
          victim: {{runtime: python3.13, handler: probe.sleep, code: {PY}, timeout: 10}}
          thief:  {{runtime: python3.13, handler: probe.knock, code: {PY}, timeout: 10}}
        """
    )
    victim, thief = load_function(path, "victim"), load_function(path, "thief")

    async def scenario() -> tuple[dict[str, int], bytes]:
        async with hosted_invoker(backend, OWNER) as invoker:
            victim_env, thief_env = await asyncio.gather(
                invoker.start_environment(victim), invoker.start_environment(thief)
            )
            assert victim_env.container is not None
            variables = engine.api.inspect_container(victim_env.container.id)["Config"]["Env"]
            api = next(v for v in variables if v.startswith("AWS_LAMBDA_RUNTIME_API="))
            port = int(api.rpartition(":")[2])
            request = InvokeRequest(b'{"s": 2}', function_arn("victim")).with_request_id()
            victim_run = asyncio.ensure_future(invoker.run_on(victim_env, victim, request))
            await asyncio.sleep(0.5)
            payload = json.dumps({"victim": request.request_id, "port": port}).encode()
            knock = InvokeRequest(payload, function_arn("thief")).with_request_id()
            knocked = await invoker.run_on(thief_env, thief, knock)
            victim_result = await victim_run
            for env in (victim_env, thief_env):
                await invoker.stop_environment(env)
            assert knocked.function_error is None, knocked.payload
            return json.loads(knocked.payload), victim_result.payload

    statuses, victim_payload = run(scenario())
    assert statuses == {"next": 403, "answer": 403}
    assert json.loads(victim_payload) == {"slept": 2}
