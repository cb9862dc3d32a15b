"""Unit tests for the listener mode (engine.Demux.LISTENER): environments behind NAT.

The fake engine's ``nat`` option makes every fake container connect from one address, as Docker
Desktop's and rootless Podman's containers reach the host; the whole serving stack runs over
real HTTP on loopback. Each environment gets a listener of its own and a host name made for it,
which its runtime sends as the Host of every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import LrunError
from orchestrator.sandbox import engine, runtime_api
from orchestrator.sandbox.environment import Environment
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.runtime_api import RuntimeApi
from tests.fakes import NAT_ADDRESS, FakeBackend, FakeContext, Served, eventually, fake_service
from tests.unit.rawhttp import TIMEOUT_S, read_response, run

NEXT = "/2018-06-01/runtime/invocation/next"


@pytest.fixture(autouse=True)
def listener_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """lrun chooses the listener mode for a NAT'd engine by itself; unset any override."""
    monkeypatch.delenv(engine.MODE_VARIABLE, raising=False)


def write_manifest(tmp_path: Path, functions: dict[str, str]) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# the fake backend runs handlers from its registry\n")
    lines = ["functions:"]
    for name, settings in functions.items():
        lines.append(f"  {name}: {{runtime: python3.13, code: ./code, {settings}}}")
    path = tmp_path / "lrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def whoami(event: Any, context: FakeContext) -> dict[str, Any]:
    return {"container": context.container_id, "api": context.env["AWS_LAMBDA_RUNTIME_API"]}


def request(payload: Any = None) -> InvokeRequest:
    body = json.dumps(payload or {}).encode()
    return InvokeRequest(body, "arn:aws:lambda:fn").with_request_id()


async def raw(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request with exactly these head lines, from the NAT's address; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(NAT_ADDRESS, 0))
    try:
        writer.write(head.encode("latin-1") + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await read_response(reader, TIMEOUT_S)
        return answer.status, answer.body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (from /proc: no connection that the listener
    would have to take)."""
    with open("/proc/net/tcp") as table:
        rows = table.read().splitlines()[1:]
    return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows)


def test_environments_behind_one_address_each_get_their_own_invocations(tmp_path: Path) -> None:
    """All connect from one address; each answers its own invocation, over its own listener,
    under its own host name (P2 and P1: the runtime only reads AWS_LAMBDA_RUNTIME_API)."""
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        gate = asyncio.Event()

        async def held(event: Any, context: FakeContext) -> dict[str, Any]:
            await gate.wait()
            return whoami(event, context)

        async with fake_service(path, {"whoami": held}, nat=True) as served:
            calls = [asyncio.ensure_future(served.service.invoke("Who", request())) for _ in (1, 2)]
            await eventually(lambda: len(served.backend.specs) == 2, what="two environments")
            gate.set()
            answers = [json.loads(r.payload) for r in await asyncio.gather(*calls)]
            assert len({a["container"] for a in answers}) == 2
            for spec in served.backend.specs:
                api = spec.environment["AWS_LAMBDA_RUNTIME_API"]
                name, _, port = api.rpartition(":")
                assert name.startswith("lrun-") and len(name) == 37 and port.isdigit()
                assert spec.extra_hosts == ((name, "127.0.0.1"),)
                assert spec.holder is None  # holders serve the peer mode only
            assert len({s.environment["AWS_LAMBDA_RUNTIME_API"] for s in served.backend.specs}) == 2

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_a_neighbour_that_finds_a_listener_cannot_use_it_without_its_name(
    tmp_path: Path,
) -> None:
    """The attack: a port scan finds another environment's listener. Without that
    environment's host name it gets 403 for /next and for an answer, and the invocation in
    flight is untouched."""
    path = write_manifest(tmp_path, {"Who": "handler: slow"})

    async def scenario() -> None:
        gate = asyncio.Event()

        async def slow(event: Any, context: FakeContext) -> dict[str, Any]:
            await gate.wait()
            return {"own": True}

        async with fake_service(path, {"slow": slow}, nat=True) as served:
            call = asyncio.ensure_future(served.service.invoke("Who", request()))
            await eventually(lambda: served.backend.specs, what="an environment")
            await eventually(lambda: served.backend.live()[0].request_ids, what="its invocation")
            victim = served.backend.live()[0]
            request_id = victim.request_ids[0]
            name, _, port = victim.spec.environment["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
            wrong = f"lrun-{'0' * 32}:{port}"
            for head, body in (
                (f"GET {NEXT} HTTP/1.1\r\nHost: {wrong}", b""),
                (
                    f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
                    f"Host: {wrong}\r\nContent-Length: 8",
                    b'"stolen"',
                ),
                (f"GET {NEXT} HTTP/1.1\r\nHost: 127.0.0.1:{port}", b""),
            ):
                status, answer = await raw(int(port), head, body)
                assert status == 403, answer
                assert json.loads(answer)["errorType"] == "InvalidStateTransition"
            gate.set()
            assert json.loads((await call).payload) == {"own": True}

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_an_environments_listener_goes_with_it(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        async with fake_service(path, {"whoami": whoami}, nat=True) as served:
            await served.service.invoke("Who", request())
            fc = served.backend.live()[0]
            port = int(fc.spec.environment["AWS_LAMBDA_RUNTIME_API"].rpartition(":")[2])
            served.backend.kill(fc.id)
            await eventually(lambda: not served.backend.live(), what="the container gone")

            deadline = asyncio.get_running_loop().time() + 2
            while listening(port):
                assert asyncio.get_running_loop().time() < deadline, "its listener stayed open"
                await asyncio.sleep(0.02)

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_a_warm_invocation_in_listener_mode_makes_no_engine_call(tmp_path: Path) -> None:
    """P4 holds in this mode too: the listener is made with the environment, not per call."""
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> Served:
        async with fake_service(path, {"whoami": whoami}, nat=True) as served:
            await served.service.invoke("Who", request())
            await eventually(lambda: served.service.pool.slots()[0].phase.value == "idle")
            before = len(served.backend.calls)
            await served.service.invoke("Who", request())
            assert served.backend.engine_calls(before) == []
            return served

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_connections_are_capped_per_environment_not_per_address() -> None:
    """Behind NAT every environment shares one peer address: a cap per address would let one
    environment's connections starve all the others'; each listener has its own cap."""

    async def scenario() -> None:
        api = RuntimeApi()
        envs = [Environment(id=c * 32, function="f", memory_mb=128) for c in "ab"]
        ports = []
        for i, env in enumerate(envs):
            name = f"lrun-{i:032x}"
            ports.append((name, await api.open_door(name, "127.0.0.1", name)))
            api.register(name, env)
        cap = runtime_api.MAX_CONNECTIONS_PER_ENVIRONMENT
        held = []
        for _ in range(cap + 2):
            conn = await asyncio.open_connection("127.0.0.1", ports[0][1])
            held.append(conn)
            await asyncio.sleep(0.01)
        # The listener closed the oldest beyond its cap (they are idle); the rest stay open.
        reads = [asyncio.ensure_future(reader.read()) for reader, _ in held]
        await asyncio.wait(reads, timeout=1.0)
        assert sum(r.done() and r.result() == b"" for r in reads) == 2
        for pending in reads:
            pending.cancel()
        name, port = ports[1]
        status, _ = await raw(port, f"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {name}")
        assert status == 202  # the other environment's listener is not touched by a's
        for _, writer in held:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in held), return_exceptions=True)
        await api.close_doors()
        await asyncio.sleep(0.05)  # the server's side of each connection finishes closing

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_peer_mode_forced_behind_nat_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(engine.MODE_VARIABLE, "peer")
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        with pytest.raises(LrunError, match="cannot work on this engine"):
            async with fake_service(path, {"whoami": whoami}, nat=True):
                pass

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_the_listener_mode_forced_on_an_engine_without_nat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(engine.MODE_VARIABLE, "listener")
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        backend_options: dict[str, Any] = {}
        async with fake_service(path, {"whoami": whoami}, **backend_options) as served:
            answer = json.loads((await served.service.invoke("Who", request())).payload)
            assert answer["api"].startswith("lrun-")
            assert isinstance(served.backend, FakeBackend) and not served.backend.nat

    run(asyncio.wait_for(scenario(), TIMEOUT_S))
