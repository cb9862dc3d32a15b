"""A function at its concurrency limit whose environment has answered but not yet asked for the
next event: a call made then waits for it (briefly) instead of being throttled, as a client
calling again as soon as it has its answer expects; a call while it is really busy is still
throttled at once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.aws import function_arn
from orchestrator.errors import TooManyRequests
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import InvokeRequest
from orchestrator.service import Service
from tests.fakes import FakeContext, fake_service, run


async def nap(event: Any, context: FakeContext) -> dict[str, Any]:
    await asyncio.sleep(event.get("s", 0))
    return {"pid": context.pid}


def write(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    path = tmp_path / "lrun.yaml"
    path.write_text(
        "functions:\n  one: {runtime: python3.13, code: ./code, handler: app.nap, "
        "reserved_concurrency: 1}\n"
    )
    return path


def request(event: dict[str, Any]) -> InvokeRequest:
    return InvokeRequest(json.dumps(event).encode(), function_arn("one")).with_request_id()


async def answer(service: Service, event: dict[str, Any]) -> Any:
    """The function's answer as soon as it has one, as the Lambda API's Invoke and the API
    Gateway listeners take it (not when its runtime has asked for the next event)."""
    answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    run = service.start("one", request(event), answered.set_result, settle=False)
    await asyncio.wait({answered, run}, return_when=asyncio.FIRST_COMPLETED)
    if not answered.done():
        run.result()  # its failure (a throttle) raises here
    found = answered.result()
    assert isinstance(found, Answer)
    return json.loads(found.body)


def test_a_call_right_after_an_answer_waits_for_the_environment(tmp_path: Path) -> None:
    async def main() -> None:
        # The runtime takes 200 ms after each answer to ask for the next event.
        async with fake_service(write(tmp_path), {"app.nap": nap}, next_delay=0.2) as s:
            first = await answer(s.service, {})
            second = await answer(s.service, {})  # before the runtime is back for more
            assert first == second  # the same environment
            assert s.service.functions["one"].throttles == 0

    run(main(), 5.0)


def test_a_call_while_the_environment_is_busy_is_still_throttled(tmp_path: Path) -> None:
    async def main() -> None:
        async with fake_service(write(tmp_path), {"app.nap": nap}, next_delay=0.2) as s:
            busy = asyncio.ensure_future(s.service.invoke("one", request({"s": 0.5})))
            await asyncio.sleep(0.1)
            with pytest.raises(TooManyRequests):
                await s.service.invoke("one", request({}))
            await busy
            assert s.service.functions["one"].throttles == 1

    run(main(), 5.0)
