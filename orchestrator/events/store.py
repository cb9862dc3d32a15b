"""lrun's durable state: one SQLite database (WAL) in the state directory (DESIGN D6).

Everything accepted for later (asynchronous invocations, queue messages) is written here before
it is acknowledged. One thread owns the connection; callers on the event loop submit work and
await it. Work that arrives while a transaction commits is committed together in the next one
(group commit), so a burst of requests costs one disk flush, not one each.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.errors import LrunError

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    request_id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    received REAL NOT NULL,        -- epoch seconds
    attempts INTEGER NOT NULL DEFAULT 0,   -- attempts that ended in a function error
    next_at REAL NOT NULL,         -- epoch seconds: not before
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS events_due ON events (next_at);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_timeout REAL NOT NULL,
    max_receive_count INTEGER,
    dead_letter_queue TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,      -- JSON: message attributes as SQS shows them
    sent REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received REAL,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS messages_order ON messages (queue, sent);
CREATE TABLE IF NOT EXISTS invoke_configs (
    function TEXT PRIMARY KEY,
    config TEXT NOT NULL           -- JSON: the function's event-invoke configuration
);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,         -- e.g. a schedule's last tick, a bucket's snapshot
    value TEXT NOT NULL
);
"""

Work = Callable[[sqlite3.Connection], Any]


class StoreClosed(LrunError):
    """The store was used after it was closed (or before it was opened)."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._work: queue.SimpleQueue[
            tuple[Work, asyncio.Future[Any], asyncio.AbstractEventLoop] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="lrun-store", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a transaction, committed (durably) before this returns."""
        if self._thread is None or not self._thread.is_alive():
            raise StoreClosed(f"lrun's store {self.path} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._work.put((work, future, loop))
        return await future

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a transaction is on disk when it commits, so an acknowledged event
            # survives even the machine going down, not only lrun being killed.
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(SCHEMA)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._work.get()
            batch = [item]
            while not self._work.empty():  # everything that queued up meanwhile: one commit
                batch.append(self._work.get_nowait())
            closing = None in batch
            jobs = [job for job in batch if job is not None]
            results: list[tuple[asyncio.Future[Any], asyncio.AbstractEventLoop, Any, bool]] = []
            connection.execute("BEGIN IMMEDIATE")
            for work, future, loop in jobs:
                connection.execute("SAVEPOINT job")
                try:
                    value = work(connection)
                except Exception as exc:  # one job's failure does not undo the others'
                    connection.execute("ROLLBACK TO job")
                    results.append((future, loop, exc, False))
                else:
                    results.append((future, loop, value, True))
                connection.execute("RELEASE job")
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:  # nothing of the batch is kept: every job fails
                connection.rollback()
                results = [(future, loop, exc, False) for future, loop, _, _ in results]
            for future, loop, value, ok in results:
                try:
                    loop.call_soon_threadsafe(_settle, future, value, ok)
                except RuntimeError:  # the caller's loop is gone: nobody waits for this
                    pass
            if closing:
                connection.close()
                return


def _settle(future: asyncio.Future[Any], value: Any, ok: bool) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
