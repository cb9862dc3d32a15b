"""What real functions see, as on Lambda, each from a real container: an X-Ray trace id, Max
Memory Used after an environment ends badly, /tmp on disk apart from memory, no /dev/shm."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.sandbox import scratch
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.state import state_dir
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, load_function, run

CODE = FUNCTIONS / "fidelity"
MANIFEST = f"""
functions:
  trace:  {{runtime: python3.13, handler: app.trace, code: {CODE}}}
  slow:   {{runtime: python3.13, handler: app.sleep, code: {CODE}, timeout: 1}}
  leave:  {{runtime: python3.11, handler: app.leave, code: {CODE}, memory: 256}}
  tmp:    {{runtime: python3.13, handler: app.fill_tmp, code: {CODE}, memory: 128, timeout: 60}}
  shm:    {{runtime: python3.13, handler: app.shm, code: {CODE}}}
"""
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
USED = re.compile(r"Max Memory Used: (\d+) MB")


def used_mb(log: str) -> int:
    found = USED.search(log)
    assert found, log
    return int(found[1])


def test_the_runtime_gets_a_trace_id_when_the_caller_sent_none(
    invoke, write_manifest: Callable[[str], Path]
) -> None:
    result = invoke(load_function(write_manifest(MANIFEST), "trace"))
    assert result.function_error is None, result.payload
    seen = json.loads(result.payload)["env"]
    assert seen and TRACE.match(seen), seen


def test_max_memory_used_is_reported_after_a_timeout(
    invoke, write_manifest: Callable[[str], Path]
) -> None:
    result = invoke(load_function(write_manifest(MANIFEST), "slow"), b'{"mb": 40, "s": 5}')
    assert result.report.status == "timeout", result.log
    assert used_mb(result.log) >= 40


def test_max_memory_used_is_reported_after_the_runtime_exits(
    invoke, write_manifest: Callable[[str], Path]
) -> None:
    result = invoke(load_function(write_manifest(MANIFEST), "leave"), b'{"mb": 60}')
    assert result.report.error_type == "Runtime.ExitError", result.log
    assert used_mb(result.log) >= 60


def test_tmp_holds_the_ephemeral_storage_apart_from_memory(
    invoke, write_manifest: Callable[[str], Path]
) -> None:
    """At 128 MB of memory, /tmp takes 400 MB; 600 MB is ENOSPC at 512 MB, not an OOM kill."""
    reason = scratch.unsupported()
    spec = load_function(write_manifest(MANIFEST), "tmp")
    fits = invoke(spec, b'{"mb": 400}')
    if reason is not None:  # this host keeps /tmp a tmpfs: the README and `lrun validate` say so
        assert fits.function_error is not None
        return
    assert fits.function_error is None, fits.log
    assert json.loads(fits.payload)["written_mb"] == 400
    too_much = invoke(spec, b'{"mb": 600}')
    assert too_much.function_error is None, too_much.log
    seen = json.loads(too_much.payload)
    assert seen["stopped"] == "ENOSPC", seen
    assert 512 <= seen["written_mb"] < 600
    assert seen["tmp_bytes"] >= 512 * 1024 * 1024


def test_there_is_no_dev_shm_as_on_lambda(invoke, write_manifest: Callable[[str], Path]) -> None:
    result = invoke(load_function(write_manifest(MANIFEST), "shm"))
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == {"dev_shm": False, "queue": "FileNotFoundError"}


def loop_backing_files() -> list[str]:
    files = []
    for device in Path("/sys/block").glob("loop*"):
        try:
            files.append((device / "loop" / "backing_file").read_text().strip())
        except OSError:
            continue  # not in use
    return files


def test_an_environments_tmp_goes_with_it(
    backend: DockerBackend, write_manifest: Callable[[str], Path]
) -> None:
    """Nothing of a /tmp disk outlives its environment: no mount, loop device or file."""
    if scratch.unsupported() is not None:
        return  # /tmp is a tmpfs here, which goes with the container anyway
    spec = load_function(write_manifest(MANIFEST), "trace")

    async def scenario() -> str:
        async with hosted_invoker(backend, OWNER) as invoker:
            env = await invoker.start_environment(spec)
            assert env.container is not None
            name = env.container.name
            await asyncio.wait_for(env.ready.wait(), 30)
            assert any(name in f for f in loop_backing_files())  # in use while it lives
            await invoker.stop_environment(env)
            await asyncio.wait_for(env.output_done.wait(), 30)
            return name

    name = run(scenario())
    deadline = time.monotonic() + 15
    while any(name in f for f in loop_backing_files()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(name in f for f in loop_backing_files())
    with open("/proc/self/mountinfo") as f:
        assert name not in f.read()
    assert not list((state_dir() / "scratch").glob(f"{name}*"))
