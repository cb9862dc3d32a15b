"""Unit tests for orchestrator.sandbox.holders: network holders made ahead, on the fake engine.

The whole serving stack runs (Service, Pool, Invoker, the Runtime API over HTTP); a fake
environment that joins a holder speaks the Runtime API from the holder's address, as a container
in the holder's network namespace does, so demultiplexing by peer address is exercised for real.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from orchestrator.api.server import survey
from orchestrator.errors import BackendError
from orchestrator.sandbox.backend import (
    LABEL_MANAGED,
    LABEL_OWNER,
    LABEL_ROLE,
    NETWORK_PRIVATE,
    NETWORK_PUBLIC,
    ROLE_HOLDER,
)
from orchestrator.sandbox.holders import HolderSettings, NetworkHolders, wanted
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.sandbox.ownership import LABEL_HOST, host_identity
from tests.fakes import Clock, FakeBackend, FakeContext, Served, eventually, fake_service
from tests.unit.rawhttp import run

TIMEOUT_S = 4.0
SETTINGS = HolderSettings(floor=2, cap=4, window_s=60.0, refill_delay_s=0.01, retry_s=0.05)


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
    return {"ip": context.ip, "container": context.container_id}


def request(payload: Any = None) -> InvokeRequest:
    return InvokeRequest(json.dumps(payload or {}).encode(), "arn:aws:lambda:fn").with_request_id()


def ready_holders(served: Served, network: str = NETWORK_PUBLIC) -> int:
    holders = served.invoker.holders
    assert holders is not None
    return holders.ready(network)


def live_holders(backend: FakeBackend) -> list[str]:
    return [fc.id for fc in backend.live() if fc.container.labels.get(LABEL_ROLE) == ROLE_HOLDER]


# How many


def test_the_floor_holds_with_no_cold_starts() -> None:
    assert wanted([], 100.0, SETTINGS) == 2


def test_recent_cold_starts_size_the_pool() -> None:
    assert wanted([70.0, 80.0, 90.0], 100.0, SETTINGS) == 3


def test_cold_starts_before_the_window_do_not_count() -> None:
    assert wanted([10.0, 20.0, 30.0, 90.0], 100.0, SETTINGS) == 2


def test_the_cap_bounds_any_rate() -> None:
    assert wanted([99.0] * 50, 100.0, SETTINGS) == 4


# In a serving process


def test_holders_are_made_ahead_on_the_networks_functions_use(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path, {"Pub": "handler: whoami", "Priv": "handler: whoami, network: private"}
    )

    async def scenario() -> None:
        async with fake_service(
            path,
            {"whoami": whoami},
            networks=(NETWORK_PUBLIC, NETWORK_PRIVATE),
            holders=SETTINGS,
        ) as served:
            await eventually(lambda: ready_holders(served) == 2, what="public holders")
            await eventually(
                lambda: ready_holders(served, NETWORK_PRIVATE) == 2, what="private holders"
            )
            specs = served.backend.holder_specs
            assert {s.network for s in specs} == {NETWORK_PUBLIC, NETWORK_PRIVATE}
            for spec in specs:
                assert spec.labels[LABEL_MANAGED] == "1"
                assert spec.labels[LABEL_OWNER] == served.owner
                assert spec.labels[LABEL_ROLE] == ROLE_HOLDER
                assert spec.image.endswith("/python3.13:latest")

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_a_cold_start_joins_a_holder_and_is_told_apart_by_its_address(tmp_path: Path) -> None:
    """The environment's container joins the holder (its spec names it) and its runtime speaks
    from the holder's address, by which the Runtime API finds it (P2 with holders)."""
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        async with fake_service(path, {"whoami": whoami}, holders=SETTINGS) as served:
            await eventually(lambda: ready_holders(served) == 2, what="holders")
            first = await served.service.invoke("Who", request())
            spec = served.backend.specs[-1]
            assert spec.holder is not None
            answer = json.loads(first.payload)
            assert answer["ip"] == spec.holder.ip
            # Two environments at once: two holders, two addresses, each answers its own.
            gate = asyncio.Event()

            async def held(event: Any, context: FakeContext) -> dict[str, Any]:
                await gate.wait()
                return whoami(event, context)

            served.backend.handlers["whoami"] = held
            both = [
                asyncio.ensure_future(served.service.invoke("Who", request())) for _ in range(2)
            ]
            # One takes the warm environment, the other starts one, on a holder of its own.
            await eventually(lambda: len(served.backend.specs) == 2, what="a second environment")
            gate.set()
            answers = [json.loads(r.payload) for r in await asyncio.gather(*both)]
            holders = [s.holder for s in served.backend.specs]
            assert all(h is not None for h in holders)
            assert len({h.ip for h in holders if h is not None}) == 2
            assert {a["ip"] for a in answers} == {h.ip for h in holders if h is not None}
            assert len({a["container"] for a in answers}) == 2

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_a_holder_goes_with_its_environment(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        async with fake_service(path, {"whoami": whoami}, holders=SETTINGS) as served:
            await eventually(lambda: ready_holders(served) == 2, what="holders")
            await served.service.invoke("Who", request())
            holder = served.backend.specs[-1].holder
            assert holder is not None
            assert holder.id in live_holders(served.backend)
            crashed = served.backend.specs[-1]
            env_container = next(fc for fc in served.backend.live() if fc.spec is crashed)
            served.backend.kill(env_container.id)
            await eventually(
                lambda: holder.id not in live_holders(served.backend), what="holder ended"
            )
        # Closing ends the ready ones too: nothing is left.
        assert live_holders(served.backend) == []

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_an_environment_whose_holder_dies_is_stopped(tmp_path: Path) -> None:
    """Its network (and so the Runtime API) is gone with the holder: it cannot serve again."""
    path = write_manifest(tmp_path, {"Who": "handler: whoami"})

    async def scenario() -> None:
        async with fake_service(path, {"whoami": whoami}, holders=SETTINGS) as served:
            await eventually(lambda: ready_holders(served) == 2, what="holders")
            await served.service.invoke("Who", request())
            spec = served.backend.specs[-1]
            assert spec.holder is not None
            served.backend.kill(spec.holder.id)
            await eventually(
                lambda: not any(fc.spec is spec for fc in served.backend.live()),
                what="the environment stopped",
            )
            again = await served.service.invoke("Who", request())
            assert json.loads(again.payload)["ip"] != spec.holder.ip

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_the_pool_grows_with_the_cold_start_rate_and_shrinks_after(tmp_path: Path) -> None:
    async def scenario() -> None:
        backend = FakeBackend({}, loop=asyncio.get_running_loop())
        clock = Clock(1000.0)
        holders = NetworkHolders(backend, {LABEL_OWNER: "unit"}, SETTINGS, clock)
        holders.expect({NETWORK_PUBLIC: "lrun/python3.13:latest"})
        await eventually(lambda: holders.ready(NETWORK_PUBLIC) == 2, what="the floor")
        taken = [holders.take(NETWORK_PUBLIC) for _ in range(5)]
        assert sum(t is not None for t in taken) == 2  # the rest start without one
        await eventually(lambda: holders.ready(NETWORK_PUBLIC) == 4, what="up to the cap")
        clock.advance(SETTINGS.window_s + 1)
        holders.take(NETWORK_PUBLIC)  # one cold start now: back to the floor
        await eventually(lambda: holders.ready(NETWORK_PUBLIC) == 2, what="back to the floor")
        await eventually(lambda: len(live_holders(backend)) == 2 + 3, what="surplus ended")
        await holders.close()
        await eventually(lambda: len(live_holders(backend)) == 3, what="ready ones ended")
        await backend.aclose()

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_a_crashed_servers_holders_are_leftovers_to_remove() -> None:
    """Holders carry their owner's labels: a restarted server finds them as it finds
    environments (survey), once their owner is provably gone."""

    async def scenario() -> None:
        backend = FakeBackend({}, loop=asyncio.get_running_loop())
        gone = {LABEL_OWNER: "serve-999999999-dead", LABEL_HOST: host_identity()}
        holders = NetworkHolders(backend, gone, SETTINGS)
        holders.expect({NETWORK_PUBLIC: "lrun/python3.13:latest"})
        await eventually(lambda: holders.ready(NETWORK_PUBLIC) == 2, what="holders")
        orphaned, _ = await asyncio.to_thread(survey, backend)
        assert {c.id for c in orphaned} == set(live_holders(backend))
        await holders.close()
        await backend.aclose()

    run(asyncio.wait_for(scenario(), TIMEOUT_S))


def test_holders_are_made_again_after_the_engine_failed_to_make_one() -> None:
    """A failure (a busy engine) leaves the pool empty only until the next try, not until the
    next cold start."""

    async def scenario() -> None:
        backend = FakeBackend({}, loop=asyncio.get_running_loop())
        backend.run_error = BackendError("Docker could not start a network holder: busy")
        holders = NetworkHolders(backend, {LABEL_OWNER: "unit"}, SETTINGS)
        holders.expect({NETWORK_PUBLIC: "lrun/python3.13:latest"})
        await eventually(lambda: backend.calls.count("hold_network") >= 2, what="a second try")
        assert holders.ready(NETWORK_PUBLIC) == 0
        backend.run_error = None
        await eventually(lambda: holders.ready(NETWORK_PUBLIC) == 2, what="the floor, later")
        await holders.close()
        await backend.aclose()

    run(asyncio.wait_for(scenario(), TIMEOUT_S))
