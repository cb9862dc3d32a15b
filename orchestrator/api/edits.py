"""Edits while serving: the manifest (or template) and the functions' code, seen as they happen.

The kernel tells lrun about every change (``watchfiles``: inotify on Linux), so nothing walks the
code trees on a timer and no invocation waits for one. An edit to a function's code *holds* the
function at once: its invocations wait while its revision is computed again (one walk of that
function's code, in a thread) and then run the new code on new environments. A save followed by
an invocation therefore runs what was saved, as soon as the notification has arrived (at most
about a tenth of a second: ``_STEP_MS`` twice). A walk that fails (out of file descriptors,
permissions) keeps the revision that runs: it is never reported as a change. Warm invocations
touch no file.

If the host cannot watch (inotify's watch limit reached), lrun says so and falls back to
``watchfiles``' polling.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from orchestrator.service import Service

# watchfiles hands over changes once none arrived for a step, and its thread wakes up (and
# takes the interpreter lock) every step, edits or not: 5 ms made each watcher wake 200 times a
# second, which cost a busy server a few per cent of its CPU and an idle one its sleep. 50 ms
# (watchfiles' default) keeps the time from a save to the hold within about 0.1 s.
_STEP_MS = 50
_DEBOUNCE_MS = 200


def _not_bytecode(change: Change, path: str) -> bool:
    return f"{os.sep}__pycache__" not in path  # nor are they part of a revision


async def watch_edits(
    service: Service,
    watched: tuple[Path, Callable[[str], bool]],
    reload: Callable[[], Awaitable[None]],
    on_event: Callable[[str], None],
) -> None:
    """Reload the project when its description changes (``watched``: the directory, and which
    changed paths in it are the manifest, the template or a CDK assembly's files) and notice
    edits to functions' code, until cancelled."""
    directory, describes = watched
    code = asyncio.ensure_future(_watch_code(service, on_event))
    try:
        async for _ in _changes(
            [directory],
            lambda change, path: describes(path),
            False,
            on_event,
        ):
            await reload()
            code.cancel()  # its directories may have changed: watch them anew
            await asyncio.gather(code, return_exceptions=True)
            code = asyncio.ensure_future(_watch_code(service, on_event))
    finally:
        code.cancel()
        await asyncio.gather(code, return_exceptions=True)


async def _watch_code(service: Service, on_event: Callable[[str], None]) -> None:
    owners: dict[str, list[str]] = {}  # code directory: the functions whose code it is
    for name, state in service.functions.items():
        if name in service.api_functions:  # unpacked by lrun, never edited in place
            continue
        if state.spec.code is not None and state.spec.code.is_dir():
            owners.setdefault(str(state.spec.code.resolve()), []).append(name)
    if not owners:
        return
    pending: set[str] = set()
    scanning: asyncio.Future[None] | None = None

    async def scan() -> None:
        while pending:
            batch = set(pending)
            pending.clear()
            try:
                await service.rescan(batch)
            finally:
                service.release(batch - pending)  # an edit since has its own scan to wait for

    async for changes in _changes(list(owners), _not_bytecode, True, on_event):
        edited = {
            name
            for _, path in changes
            for directory, names in owners.items()
            if path == directory or path.startswith(directory + os.sep)
            for name in names
        }
        service.hold(edited)
        pending |= edited
        if scanning is None or scanning.done():
            scanning = asyncio.ensure_future(scan())


Changes = set[tuple[Change, str]]
_watchers: set[asyncio.Task[None]] = set()  # watching threads' tasks, ending on their own


async def _changes(
    paths: list[Path] | list[str],
    keep: Callable[[Change, str], bool],
    recursive: bool,
    on_event: Callable[[str], None],
) -> AsyncIterator[Changes]:
    """Batches of changes under ``paths``: notifications, else (if the host refuses) polling.

    watchfiles waits for changes in a thread, which the loop cannot interrupt: cancelling the
    task that awaits it takes effect only once the thread returns. So the watching runs in a
    task of its own, and this generator only reads what it finds: closing it (its consumer was
    cancelled) sets the stop event at once, and the thread returns within a step. Hence no
    timeout either (``rust_timeout=0``): the thread comes back to the loop only with changes,
    not every fraction of a second to see whether it should stop.
    """
    stop = threading.Event()
    found: asyncio.Queue[Changes | BaseException | None] = asyncio.Queue()

    async def watch() -> None:
        polling = False
        try:
            while True:
                try:
                    async for changes in awatch(
                        *paths,
                        watch_filter=keep,
                        debounce=_DEBOUNCE_MS,
                        step=_STEP_MS,
                        stop_event=stop,
                        rust_timeout=0,
                        recursive=recursive,
                        force_polling=polling,
                        ignore_permission_denied=True,
                    ):
                        found.put_nowait(changes)
                    return
                except OSError as exc:
                    if polling:
                        raise
                    where = ", ".join(str(p) for p in paths)
                    on_event(f"cannot watch {where} for edits ({exc}); polling for them instead")
                    polling = True
        except Exception as exc:  # the reader raises it
            found.put_nowait(exc)
        finally:
            found.put_nowait(None)

    watcher = asyncio.ensure_future(watch())
    _watchers.add(watcher)
    watcher.add_done_callback(_watchers.discard)
    try:
        while (item := await found.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
