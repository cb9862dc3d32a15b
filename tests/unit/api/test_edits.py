"""Unit tests for orchestrator.api.edits: edits seen through real file notifications on a real
directory, with the service on the fake engine. A save followed by an invocation must run what
was saved; a walk that fails must not count as an edit."""

from __future__ import annotations

import asyncio
import errno
import json
import time
from pathlib import Path

from orchestrator import manifest
from orchestrator.api import edits
from orchestrator.api.edits import watch_edits
from orchestrator.template import Project
from tests.fakes import Served
from tests.unit.test_service import body, call, scenario, write_manifest

SAVE_TO_INVOKE_S = 0.2  # far under the old one-second polling, far over a notification's delay
SETTLE_S = 0.3  # for the watcher to start watching


def watching(s: Served, path: Path, events: list[str]) -> asyncio.Task[None]:
    async def reload() -> None:
        s.service.load(manifest.load(path))

    watched = Project(path, "manifest").watched()
    return asyncio.ensure_future(watch_edits(s.service, watched, reload, events.append))


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_a_save_then_an_invocation_runs_the_saved_code(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        events: list[str] = []
        task = watching(s, path, events)
        try:
            await asyncio.sleep(SETTLE_S)
            pid = body(await call(s.service, "echo"))["pid"]
            for n in range(3):
                (tmp_path / "code" / "app.py").write_text(f"# edit {n}\n")
                await asyncio.sleep(SAVE_TO_INVOKE_S)
                again = body(await call(s.service, "echo"))["pid"]
                assert again != pid, f"edit {n} was not seen: {events}"
                pid = again
        finally:
            await stopped(task)

    scenario(path, test)


def test_an_invocation_waits_while_an_edit_is_looked_at(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        first = body(await call(s.service, "echo"))["pid"]
        s.service.hold(["echo"])  # as the watcher does the moment a notification arrives
        waiting = asyncio.ensure_future(call(s.service, "echo"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        (tmp_path / "code" / "app.py").write_text("# edited\n")
        await s.service.rescan(["echo"])
        s.service.release(["echo"])
        assert body(await waiting)["pid"] != first

    scenario(path, test)


def test_edits_to_bytecode_are_not_edits(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        events: list[str] = []
        task = watching(s, path, events)
        try:
            await asyncio.sleep(SETTLE_S)
            pid = body(await call(s.service, "echo"))["pid"]
            (tmp_path / "code" / "__pycache__").mkdir()
            (tmp_path / "code" / "__pycache__" / "app.cpython-313.pyc").write_bytes(b"\0")
            await asyncio.sleep(SAVE_TO_INVOKE_S)
            assert body(await call(s.service, "echo"))["pid"] == pid
            assert events == []
        finally:
            await stopped(task)

    scenario(path, test)


def test_a_manifest_edit_is_seen_before_the_next_invocation(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        events: list[str] = []
        task = watching(s, path, events)
        try:
            await asyncio.sleep(SETTLE_S)
            await call(s.service, "echo")
            # written as editors do: a new file renamed over the old one
            staged = path.with_name(".lrun.yaml.swp")
            staged.write_text(path.read_text().replace("app.echo", "app.echo, memory: 512"))
            staged.replace(path)
            await asyncio.sleep(SAVE_TO_INVOKE_S)
            result = await call(s.service, "echo")
            assert result.report.memory_mb == 512, events
        finally:
            await stopped(task)

    scenario(path, test)


def test_a_walk_that_fails_is_not_an_edit(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        events: list[str] = []
        s.service._on_event = events.append
        pid = body(await call(s.service, "echo"))["pid"]
        revision = s.service.functions["echo"].revision
        failed = OSError(errno.EMFILE, "Too many open files")
        assert s.service.apply_revisions({"echo": failed}) is False
        assert s.service.functions["echo"].revision == revision
        assert body(await call(s.service, "echo"))["pid"] == pid
        assert events[-1:] == [
            "echo: cannot read its code ([Errno 24] Too many open files); keeping what runs"
        ]

    scenario(path, test)


def test_a_function_whose_code_cannot_be_read_keeps_its_revision(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        revision = s.service.functions["echo"].revision
        (tmp_path / "code").rename(tmp_path / "elsewhere")
        found = s.service.scan_revisions()
        assert isinstance(found["echo"], OSError)
        assert s.service.apply_revisions(found) is False
        assert s.service.functions["echo"].revision == revision
        assert json.loads((await call(s.service, "echo")).payload)["echo"] == {}

    scenario(path, test)


TEMPLATE = """\
Resources:
  echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code/, Handler: app.echo, Runtime: python3.13, MemorySize: 256}
"""


def test_a_template_edit_is_applied_as_a_manifest_edit_is(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    project = Project(template, "template")

    async def test(s: Served) -> None:
        s.service.load(project.load())

        async def reload() -> None:
            s.service.load(project.load())

        events: list[str] = []
        task = asyncio.ensure_future(
            watch_edits(s.service, project.watched(), reload, events.append)
        )
        try:
            await asyncio.sleep(SETTLE_S)
            assert (await call(s.service, "echo")).report.memory_mb == 256
            staged = template.with_name(".template.yaml.swp")
            staged.write_text(TEMPLATE.replace("MemorySize: 256", "MemorySize: 512"))
            staged.replace(template)
            await asyncio.sleep(SAVE_TO_INVOKE_S)
            assert (await call(s.service, "echo")).report.memory_mb == 512, events
        finally:
            await stopped(task)

    scenario(path, test)


def test_watching_threads_end_soon_after_the_watcher_is_cancelled(tmp_path: Path) -> None:
    """watchfiles waits in a thread the loop cannot interrupt; cancelling lrun's watcher sets
    its stop event at once, so the thread returns within a step (nothing polls it on a timer)."""
    path = write_manifest(tmp_path, {"echo": "handler: app.echo"})

    async def test(s: Served) -> None:
        task = watching(s, path, [])
        await asyncio.sleep(SETTLE_S)
        assert len(edits._watchers) == 2  # the manifest's directory, the code's
        cancelled_at = time.monotonic()
        await stopped(task)
        while edits._watchers:
            assert time.monotonic() - cancelled_at < 1.0, "a watching thread did not stop"
            await asyncio.sleep(0.01)

    scenario(path, test)
