"""Unit tests for orchestrator.service's versions and aliases: each version runs in environments
of its own, aliases route (a weighted one exactly), provisioned concurrency follows the version
or alias it is set on. On the fake engine, whose handlers say which version ran them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import manifest
from orchestrator.aws import function_arn
from orchestrator.errors import ResourceNotFound, TooManyRequests
from orchestrator.pool import LATEST
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.served import Alias, pick
from orchestrator.service import Service
from tests.fakes import FakeContext, Handler, Served, eventually
from tests.unit.test_service import provisioned, scenario, write_manifest


def which(event: Any, context: FakeContext) -> dict[str, Any]:
    return {
        "handler": context.env["_HANDLER"],
        "version": context.env["AWS_LAMBDA_FUNCTION_VERSION"],
        "stream": context.env["AWS_LAMBDA_LOG_STREAM_NAME"],
        "init_type": context.env["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "pid": context.pid,
    }


HANDLERS: dict[str, Handler] = {"app.latest": which, "app.one": which, "app.two": which}


def publish(s: Served, name: str, version: str, handler: str) -> None:
    """Serve ``version`` of ``name`` as ``$LATEST`` is now, but with another handler."""
    spec = dataclasses.replace(s.service.function(name).spec, handler=handler)
    s.service.put_version(name, version, spec, f"rev-{version}")


async def call(service: Service, name: str, qualifier: str | None = None) -> InvocationResult:
    version = service.route(name, qualifier)
    request = InvokeRequest(b"{}", function_arn(name, qualifier), version).with_request_id()
    return await service.invoke(name, request)


def ran(result: InvocationResult) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(result.payload)
    return answer


def test_each_version_runs_its_own_code_in_its_own_environments(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        latest = await call(s.service, "fn")
        one = await call(s.service, "fn", "1")
        assert (ran(latest)["handler"], ran(latest)["version"]) == ("app.latest", LATEST)
        assert (ran(one)["handler"], ran(one)["version"]) == ("app.one", "1")
        assert "[1]" in ran(one)["stream"] and "[$LATEST]" in ran(latest)["stream"]
        assert ran(one)["pid"] != ran(latest)["pid"]
        assert one.executed_version == "1" and latest.executed_version == LATEST
        assert f"START RequestId: {one.request_id} Version: 1" in one.log
        again = await call(s.service, "fn", "1")
        assert ran(again)["pid"] == ran(one)["pid"]  # its warm environment, not $LATEST's
        views = {(v.version, v.state) for v in s.service.environments()}
        assert views == {(LATEST, "idle"), ("1", "idle")}

    scenario(path, test, HANDLERS)


def test_an_edit_to_latest_leaves_a_published_version_running(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        first = await call(s.service, "fn", "1")
        write_manifest(tmp_path, {"fn": "handler: app.two"})
        s.service.load(manifest.load(path))
        assert ran(await call(s.service, "fn"))["handler"] == "app.two"
        after = await call(s.service, "fn", "1")
        assert ran(after)["pid"] == ran(first)["pid"]  # never drained: it did not change

    scenario(path, test, HANDLERS)


def test_removing_a_version_stops_its_environments(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        await call(s.service, "fn", "1")
        await call(s.service, "fn")
        await eventually(lambda: s.service.pool.in_flight() == 0)
        s.service.remove_version("fn", "1")
        await eventually(lambda: len(s.backend.live()) == 1)
        assert [v.version for v in s.service.environments()] == [LATEST]
        with pytest.raises(ResourceNotFound) as caught:
            s.service.route("fn", "1")
        assert caught.value.message == f"Function not found: {function_arn('fn', '1')}"

    scenario(path, test, HANDLERS)


def test_an_alias_runs_its_version_and_unknown_qualifiers_are_not_found(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        s.service.put_alias("fn", "live", Alias("1"))
        result = await call(s.service, "fn", "live")
        assert (ran(result)["handler"], result.executed_version) == ("app.one", "1")
        assert s.service.environments()[0].aliases == ("live",)
        for qualifier in ("nope", "7"):
            with pytest.raises(ResourceNotFound) as caught:
                s.service.route("fn", qualifier)
            assert caught.value.message == (f"Function not found: {function_arn('fn', qualifier)}")
        with pytest.raises(ResourceNotFound) as caught:
            s.service.route("other", "live")
        assert caught.value.message == f"Function not found: {function_arn('other', 'live')}"
        s.service.remove_alias("fn", "live")
        with pytest.raises(ResourceNotFound):
            s.service.route("fn", "live")

    scenario(path, test, HANDLERS)


def test_a_weighted_alias_splits_exactly_over_any_run() -> None:
    alias = Alias("1", (("2", 0.1),))
    credit, seen = 0, []
    for _ in range(1000):
        version, credit = pick(alias, credit)
        seen.append(version)
    assert seen.count("2") == 100
    # Within one of its share over every prefix, not only in the end.
    for n in range(1, 1001):
        assert abs(seen[:n].count("2") - n * 0.1) < 1
    odd = Alias("1", (("2", 0.333333),))
    credit, count = 0, 0
    for _ in range(3000):
        version, credit = pick(odd, credit)
        count += version == "2"
    assert abs(count - 3000 * 0.333333) < 1


def test_invocations_of_a_weighted_alias_run_both_versions_by_weight(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        publish(s, "fn", "2", "app.two")
        s.service.put_alias("fn", "live", Alias("1", (("2", 0.25),)))
        results = [await call(s.service, "fn", "live") for _ in range(40)]
        versions = [r.executed_version for r in results]
        assert versions.count("2") == 10 and versions.count("1") == 30
        assert all(ran(r)["version"] == r.executed_version for r in results)
        s.service.put_alias("fn", "live", Alias("2"))  # all of it to version 2 now
        assert {(await call(s.service, "fn", "live")).executed_version for _ in range(5)} == {"2"}

    scenario(path, test, HANDLERS)


def test_provisioned_concurrency_of_an_alias_moves_with_it(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        publish(s, "fn", "2", "app.two")
        s.service.put_alias("fn", "live", Alias("1"))
        s.service.set_provisioned("fn", "live", 2)
        await eventually(lambda: provisioned(s, "fn", "live") == (2, 2))
        assert {(v.version, v.state) for v in s.service.environments()} == {("1", "provisioned")}
        result = await call(s.service, "fn", "live")
        assert ran(result)["init_type"] == "provisioned-concurrency"
        assert result.report.init_duration_ms is None
        first = {fc.id for fc in s.backend.live()}
        s.service.put_alias("fn", "live", Alias("2"))
        await eventually(lambda: provisioned(s, "fn", "live") == (2, 2), timeout=3)
        await eventually(lambda: not first & {fc.id for fc in s.backend.live()}, timeout=3)
        assert {v.version for v in s.service.environments()} == {"2"}
        assert ran(await call(s.service, "fn", "live"))["init_type"] == "provisioned-concurrency"

    scenario(path, test, HANDLERS)


def test_provisioned_concurrency_of_a_weighted_alias_is_split_by_weight(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        publish(s, "fn", "2", "app.two")
        s.service.put_alias("fn", "live", Alias("1", (("2", 0.25),)))
        s.service.set_provisioned("fn", "live", 4)
        await eventually(lambda: provisioned(s, "fn", "live") == (4, 4), timeout=3)
        versions = sorted(v.version for v in s.service.environments())
        assert versions == ["1", "1", "1", "2"]
        s.service.set_provisioned("fn", "live", 0)
        await eventually(lambda: s.backend.live() == [], timeout=3)
        assert s.service.provisioned_status("fn", "live") is None

    scenario(path, test, HANDLERS)


def test_a_version_provisioned_to_the_function_reserve_leaves_latest_throttled(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest, reserved_concurrency: 1"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        s.service.set_provisioned("fn", "1", 1)
        await eventually(lambda: provisioned(s, "fn", "1") == (1, 1))
        with pytest.raises(TooManyRequests):
            await call(s.service, "fn")
        assert (await call(s.service, "fn", "1")).executed_version == "1"

    scenario(path, test, HANDLERS)


def test_removing_a_function_stops_the_environments_of_all_its_versions(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path, {"fn": "handler: app.latest"})

    async def test(s: Served) -> None:
        publish(s, "fn", "1", "app.one")
        s.service.set_provisioned("fn", "1", 1)
        await eventually(lambda: provisioned(s, "fn", "1") == (1, 1))
        await call(s.service, "fn")
        from orchestrator import manifest

        write_manifest(tmp_path, {"other": "handler: app.latest"})
        s.service.load(manifest.load(path))
        await eventually(lambda: s.backend.live() == [], timeout=3)
        await asyncio.sleep(0.1)
        s.service.housekeeping()  # nothing provisioned any more
        await asyncio.sleep(0.1)
        assert s.backend.live() == []

    scenario(path, test, HANDLERS)
