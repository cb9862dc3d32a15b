"""Unit tests for what a function sees and what its REPORT says, through the whole service on
the fake engine: X-Ray trace headers, and Max Memory Used when an environment ends badly."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from orchestrator.aws import function_arn
from orchestrator.sandbox.invocation import InvokeRequest, trace_header
from tests.fakes import FakeContext, OutOfMemory, Served
from tests.unit.test_service import call, scenario, write_manifest

TRACE = re.compile(r"^Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")


def traced(event: Any, context: FakeContext) -> dict[str, Any]:
    return {"trace_id": context.trace_id}


async def slow(event: Any, context: FakeContext) -> None:
    await asyncio.sleep(5)


def crash(event: Any, context: FakeContext) -> None:
    raise SystemExit(3)


def hog(event: Any, context: FakeContext) -> None:
    raise OutOfMemory()


HANDLERS = {"app.traced": traced, "app.slow": slow, "app.crash": crash, "app.hog": hog}


def test_trace_header_has_xrays_shape_and_the_time() -> None:
    header = trace_header(1_700_000_000.9)
    found = TRACE.match(header)
    assert found is not None, header
    assert int(found[1], 16) == 1_700_000_000
    assert trace_header(1_700_000_000.0) != trace_header(1_700_000_000.0)


def test_an_invocation_without_a_trace_header_gets_a_new_one_each_time(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"traced": "handler: app.traced"})

    async def test(s: Served) -> None:
        first = json.loads((await call(s.service, "traced")).payload)["trace_id"]
        second = json.loads((await call(s.service, "traced")).payload)["trace_id"]
        assert TRACE.match(first or ""), first
        assert TRACE.match(second or ""), second
        assert first != second

    scenario(path, test, HANDLERS)


def test_a_callers_trace_header_is_passed_through(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"traced": "handler: app.traced"})
    given = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    async def test(s: Served) -> None:
        request = InvokeRequest(b"{}", function_arn("traced"), trace_id=given).with_request_id()
        result = await s.service.invoke("traced", request)
        assert json.loads(result.payload)["trace_id"] == given

    scenario(path, test, HANDLERS)


def test_max_memory_used_is_reported_after_a_timeout(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"slow": "handler: app.slow, timeout: 1"})

    async def test(s: Served) -> None:
        result = await call(s.service, "slow")
        assert result.report.status == "timeout"
        assert result.report.max_memory_used_mb == 42
        assert "Max Memory Used: 42 MB" in result.log

    scenario(path, test, HANDLERS)


def test_max_memory_used_is_reported_after_the_runtime_exits(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"crash": "handler: app.crash"})

    async def test(s: Served) -> None:
        result = await call(s.service, "crash")
        assert result.report.error_type == "Runtime.ExitError"
        assert result.report.max_memory_used_mb == 42

    scenario(path, test, HANDLERS)


def test_max_memory_used_after_an_oom_kill_is_the_memory_size(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"hog": "handler: app.hog, memory: 256"})

    async def test(s: Served) -> None:
        result = await call(s.service, "hog")
        assert result.report.error_type == "Runtime.OutOfMemory"
        assert result.report.max_memory_used_mb == 256

    scenario(path, test, HANDLERS)
