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

from orchestrator.errors import LrunError, StoreCorrupt, StoreFailed

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    request_id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload BLOB NOT NULL,
    received REAL NOT NULL,        -- epoch seconds
    attempts INTEGER NOT NULL DEFAULT 0,   -- attempts that ended in a function error
    next_at REAL NOT NULL,         -- epoch seconds: not before
    last_error TEXT,
    qualifier TEXT                 -- the version or alias invoked (NULL: the function)
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
CREATE TABLE IF NOT EXISTS mappings (
    uuid TEXT PRIMARY KEY,         -- an event source mapping created through the API
    config TEXT NOT NULL           -- JSON: its settings (orchestrator.events.mappings)
);
CREATE TABLE IF NOT EXISTS function_meta (
    function TEXT PRIMARY KEY,
    data TEXT NOT NULL             -- JSON: tags, resource-based policy, recursion setting
);
CREATE TABLE IF NOT EXISTS api_functions (
    name TEXT PRIMARY KEY,         -- a function created through the API
    record TEXT NOT NULL           -- JSON: orchestrator.events.api_functions.ApiFunction
);
CREATE TABLE IF NOT EXISTS layers (
    name TEXT PRIMARY KEY,         -- a layer published through the API
    last INTEGER NOT NULL          -- its highest version number ever: numbers are never reused
);
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,          -- JSON: orchestrator.events.layer_versions.LayerVersion
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS function_urls (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,       -- '' for the unqualified function, else an alias
    config TEXT NOT NULL,          -- JSON: orchestrator.events.url_store.UrlRecord
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE IF NOT EXISTS versions (
    function TEXT NOT NULL,        -- a function's published version
    number INTEGER NOT NULL,
    record TEXT NOT NULL,          -- JSON: orchestrator.events.versions.Version
    PRIMARY KEY (function, number)
);
CREATE TABLE IF NOT EXISTS version_numbers (
    function TEXT PRIMARY KEY,     -- the last version number a function was given
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,          -- JSON: where it points (orchestrator.events.versions)
    PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS provisioned (
    function TEXT NOT NULL,        -- provisioned concurrency set on a version or an alias
    qualifier TEXT NOT NULL,
    requested INTEGER NOT NULL,
    modified REAL NOT NULL,        -- epoch seconds
    PRIMARY KEY (function, qualifier)
);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,         -- e.g. a schedule's last tick, a bucket's snapshot
    value TEXT NOT NULL
);
-- Each queue's messages and their bytes (body and attributes), kept by triggers so a send
-- checks its queue's bounds without counting rows (orchestrator.events.queues).
CREATE TABLE IF NOT EXISTS queue_sizes (
    queue TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS message_counted AFTER INSERT ON messages BEGIN
    INSERT INTO queue_sizes (queue, count, bytes)
    VALUES (NEW.queue, 1, length(CAST(NEW.body AS BLOB)) + length(CAST(NEW.attributes AS BLOB)))
    ON CONFLICT (queue) DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS message_uncounted AFTER DELETE ON messages BEGIN
    UPDATE queue_sizes SET count = count - 1,
        bytes = bytes - length(CAST(OLD.body AS BLOB)) - length(CAST(OLD.attributes AS BLOB))
    WHERE queue = OLD.queue;
END;
-- A store from before the counts: count what it holds, once (the row of no queue, '', says
-- it was done; no queue has an empty name).
INSERT OR REPLACE INTO queue_sizes (queue, count, bytes)
    SELECT queue, count(*), sum(length(CAST(body AS BLOB)) + length(CAST(attributes AS BLOB)))
    FROM messages WHERE NOT EXISTS (SELECT 1 FROM queue_sizes WHERE queue = '')
    GROUP BY queue;
INSERT OR IGNORE INTO queue_sizes (queue, count, bytes) VALUES ('', 0, 0);
"""

# Columns added since a table was first made: added to a store made before them.
COLUMNS = (("events", "qualifier", "TEXT"),)

Work = Callable[[sqlite3.Connection], Any]
Result = tuple["asyncio.Future[Any]", asyncio.AbstractEventLoop, Any, bool]


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
        """Open (or create) the database; a one-line ``LrunError`` naming the file and the fix
        if it cannot be used."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LrunError(
                f"cannot create lrun's state directory {self.path.parent}: {exc.strerror}; "
                "make it writable or set LRUN_STATE_DIR to a directory that is"
            ) from None
        self._thread = threading.Thread(target=self._run, name="lrun-store", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            error, self._error = self._error, None
            self._thread.join()
            self._thread = None
            raise error

    def close(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a transaction, committed (durably) before this returns. SQLite's
        own failures (disk full, I/O error, corruption) arrive as ``StoreFailed``; the store
        goes on, and later work succeeds once the cause is gone."""
        if self._thread is None or not self._thread.is_alive():
            raise StoreClosed(f"lrun's store {self.path} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._work.put((work, future, loop))
        return await future

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a transaction is on disk when it commits, so an acknowledged event
            # survives even the machine going down, not only lrun being killed.
            connection.execute("PRAGMA synchronous=FULL")
            # A damaged file is named now, in one line, not by the first request to touch it.
            (verdict,) = connection.execute("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                found = " ".join(str(verdict).replace("*** in database main ***", "").split())
                raise sqlite3.DatabaseError(f"database disk image is malformed: {found}")
            connection.executescript(SCHEMA)
            for table, column, kind in COLUMNS:
                have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _run(self) -> None:
        try:
            connection = self._connect()
        except sqlite3.Error as exc:
            self._error = _open_error(self.path, exc)
            self._ready.set()
            return
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
            jobs = [job for job in batch if job is not None]
            for future, loop, value, ok in self._commit(connection, jobs):
                try:
                    loop.call_soon_threadsafe(_settle, future, value, ok)
                except RuntimeError:  # the caller's loop is gone: nobody waits for this
                    pass
            if None in batch:
                connection.close()
                return

    def _commit(
        self,
        connection: sqlite3.Connection,
        jobs: list[tuple[Work, asyncio.Future[Any], asyncio.AbstractEventLoop]],
    ) -> list[Result]:
        """Run the jobs in one transaction. Whatever SQLite does (disk full, I/O error), this
        thread goes on: a failure that costs the transaction fails every job of the batch."""
        results: list[Result] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for work, future, loop in jobs:
                connection.execute("SAVEPOINT job")
                try:
                    value = work(connection)
                except Exception as exc:  # one job's failure does not undo the others'
                    if not connection.in_transaction:
                        # SQLite rolled the whole transaction back (SQLITE_FULL can): the
                        # batch is lost, for the reason this job met.
                        raise
                    connection.execute("ROLLBACK TO job")
                    results.append((future, loop, self._failure(exc), False))
                else:
                    results.append((future, loop, value, True))
                connection.execute("RELEASE job")
            connection.execute("COMMIT")
        except Exception as exc:  # nothing of the batch is kept: every job fails
            if connection.in_transaction:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the next BEGIN says whether the connection is still usable
            failure = self._failure(exc)
            return [(future, loop, failure, False) for _, future, loop in jobs]
        return results

    def _failure(self, exc: Exception) -> Exception:
        """What a caller is told: SQLite's operational failures as ``StoreFailed`` (a 500
        ServiceException at the API, one line, no traceback); a job's own errors as raised."""
        if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
            return StoreFailed(
                f"lrun could not write its store {self.path} ({exc}); free space on that disk "
                "or fix the state directory (LRUN_STATE_DIR), then retry"
            )
        return exc


def _open_error(path: Path, exc: sqlite3.Error) -> LrunError:
    if type(exc) is sqlite3.DatabaseError:  # not a database, or a damaged one
        # Its write-ahead log goes too: SQLite would replay it into the new file.
        files = [path, *(p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())]
        moves = "; ".join(f"mv {f} {f}.corrupt" for f in files)
        return StoreCorrupt(
            f"lrun's store {path} is damaged ({exc}); move it aside to start with an empty "
            f"one (its queued events, queue messages and settings are lost): {moves}"
        )
    return LrunError(
        f"cannot open lrun's store {path} ({exc}); make the state directory writable, free "
        "space on its disk, or set LRUN_STATE_DIR to another directory"
    )


def _settle(future: asyncio.Future[Any], value: Any, ok: bool) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
