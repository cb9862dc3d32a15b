"""Unit tests for orchestrator.store: one thread owns SQLite, work is committed in groups.

A real Store on a temporary file. To put several jobs in one batch for certain (not by luck of
timing), a first job holds the store's thread until the test has queued the others; the store's
transactions are observed through SQLite's statement trace (``set_trace_callback``), installed by
that first job on the store's own connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.errors import LrunError, StoreCorrupt, StoreFailed
from orchestrator.events.store import Store
from tests.fakes import run

T = TypeVar("T")
WAIT_S = 2.0  # the longest a store job holds the thread: a bug must fail, never hang


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "lrun.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    opened.open()
    yield opened
    opened.close()


def put_mark(name: str, value: str = "v") -> Callable[[sqlite3.Connection], str]:
    def work(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO marks (name, value) VALUES (?, ?)", (name, value))
        return name

    return work


def marks_on_disk(path: Path) -> dict[str, str]:
    """The marks as another connection sees them: only what was committed."""
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT name, value FROM marks ORDER BY name").fetchall()
    other.close()
    return dict(rows)


class Held:
    """A first job that holds the store's thread (recording the store's statements from then
    on) until ``release``: whatever is submitted meanwhile waits for the next batch."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._started = threading.Event()
        self._gate = threading.Event()

    def __call__(self, db: sqlite3.Connection) -> str:
        db.set_trace_callback(self.statements.append)
        self._started.set()
        self._gate.wait(WAIT_S)
        return "held"

    async def started(self) -> None:
        assert await asyncio.to_thread(self._started.wait, WAIT_S), "the held job never ran"

    def release(self) -> None:
        self._gate.set()

    def after_release(self) -> list[str]:
        """The statements of the batches after the held one, up to ``untrace``'s."""
        start = self.statements.index("COMMIT") + 1
        end = self.statements.index(UNTRACED)
        assert self.statements[end - 2 : end] == ["BEGIN IMMEDIATE", "SAVEPOINT job"]
        return self.statements[start : end - 2]


UNTRACED = "-- untraced"


async def untrace(store: Store, held: Held) -> None:
    """Stop recording (in a batch of its own: submitted after the others were answered)."""

    def work(db: sqlite3.Connection) -> None:
        held.statements.append(UNTRACED)
        db.set_trace_callback(None)

    await store.run(work)


async def held_then(store: Store, works: list[Callable[[sqlite3.Connection], Any]]) -> Any:
    """Hold the thread, submit ``works`` concurrently, release; returns (held, tasks)."""
    held = Held()
    first = asyncio.ensure_future(store.run(held))
    await held.started()
    tasks = [asyncio.ensure_future(store.run(work)) for work in works]
    await asyncio.sleep(0)  # each task runs up to its await: every job is queued now
    held.release()
    assert await first == "held"
    return held, tasks


# run


def test_run_returns_the_works_value(store: Store) -> None:
    async def main() -> None:
        assert await store.run(lambda db: db.execute("SELECT 6 * 7").fetchone()[0]) == 42
        assert await store.run(put_mark("a")) == "a"
        assert await store.run(lambda db: None) is None

    run(main())


def test_run_is_committed_before_it_returns(store: Store, path: Path) -> None:
    async def main() -> None:
        await store.run(put_mark("committed", "yes"))
        assert marks_on_disk(path) == {"committed": "yes"}  # another connection sees it

    run(main())


def test_the_schema_is_there_after_open(store: Store) -> None:
    tables = run(
        store.run(
            lambda db: {
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        )
    )
    assert {"events", "queues", "messages", "invoke_configs", "marks"} <= tables


def test_the_store_serves_callers_on_different_event_loops(store: Store) -> None:
    assert run(store.run(put_mark("first"))) == "first"
    assert run(store.run(put_mark("second"))) == "second"
    assert run(store.run(lambda db: db.execute("SELECT COUNT(*) FROM marks").fetchone()[0])) == 2


# Failures


def test_an_exception_is_raised_to_its_caller_and_undoes_only_its_own_job(
    store: Store, path: Path
) -> None:
    class Refused(Exception):
        pass

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO marks (name, value) VALUES ('half', 'written')")
        raise Refused("job 2 refuses")

    async def main() -> None:
        works = [put_mark("job-0"), put_mark("job-1"), half_done, put_mark("job-3")]
        held, tasks = await held_then(store, works)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await untrace(store, held)
        assert results[:2] == ["job-0", "job-1"]
        assert isinstance(results[2], Refused) and str(results[2]) == "job 2 refuses"
        assert results[3] == "job-3"
        batch = held.after_release()
        assert batch.count("BEGIN IMMEDIATE") == 1  # the four jobs were one transaction
        assert batch.count("ROLLBACK TO job") == 1
        assert batch[-1] == "COMMIT"

    run(main())
    assert marks_on_disk(path) == {"job-0": "v", "job-1": "v", "job-3": "v"}


def test_a_constraint_violation_reaches_its_caller_and_the_store_goes_on(store: Store) -> None:
    async def main() -> None:
        await store.run(put_mark("dup", "first"))
        with pytest.raises(sqlite3.IntegrityError):
            await store.run(put_mark("dup", "second"))
        assert await store.run(put_mark("after")) == "after"
        value = await store.run(
            lambda db: db.execute("SELECT value FROM marks WHERE name = 'dup'").fetchone()[0]
        )
        assert value == "first"

    run(main())


# Group commit


def test_concurrent_submissions_are_committed_in_fewer_transactions_than_jobs(
    store: Store, path: Path
) -> None:
    jobs = 20

    async def main() -> None:
        held, tasks = await held_then(store, [put_mark(f"job-{i:02}") for i in range(jobs)])
        assert await asyncio.gather(*tasks) == [f"job-{i:02}" for i in range(jobs)]
        await untrace(store, held)
        batch = held.after_release()
        # One transaction for the twenty jobs, each in its own savepoint.
        assert batch.count("BEGIN IMMEDIATE") == 1
        assert batch.count("COMMIT") == 1
        assert batch.count("SAVEPOINT job") == jobs
        assert batch.count("RELEASE job") == jobs

    run(main())
    assert len(marks_on_disk(path)) == jobs


def test_a_lone_submission_is_committed_at_once(store: Store) -> None:
    async def main() -> None:
        held, tasks = await held_then(store, [put_mark("alone")])
        await asyncio.gather(*tasks)
        await untrace(store, held)
        batch = held.after_release()
        assert batch == [
            "BEGIN IMMEDIATE",
            "SAVEPOINT job",
            "INSERT INTO marks (name, value) VALUES ('alone', 'v')",
            "RELEASE job",
            "COMMIT",
        ]

    run(main())


# Durability, open and close


def test_data_survives_close_and_reopen(path: Path) -> None:
    first = Store(path)
    first.open()
    run(first.run(put_mark("kept", "across restarts")))
    first.close()

    second = Store(path)
    second.open()
    try:
        value = run(
            second.run(
                lambda db: db.execute("SELECT value FROM marks WHERE name = 'kept'").fetchone()
            )
        )
        assert value == ("across restarts",)
    finally:
        second.close()


def test_open_uses_wal_and_full_synchronous_writes(store: Store) -> None:
    mode, sync = run(
        store.run(
            lambda db: (
                db.execute("PRAGMA journal_mode").fetchone()[0],
                db.execute("PRAGMA synchronous").fetchone()[0],
            )
        )
    )
    assert mode == "wal"
    assert sync == 2  # FULL


def test_open_creates_the_state_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "lrun.db"
    store = Store(path)
    store.open()
    store.close()
    assert path.is_file()


def test_open_raises_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "lrun.db"
    path.mkdir()  # a directory where the database file should be
    store = Store(path)
    with pytest.raises(LrunError) as caught:
        store.open()
    assert str(caught.value) == (
        f"cannot open lrun's store {path} (unable to open database file); make the state "
        "directory writable, free space on its disk, or set LRUN_STATE_DIR to another directory"
    )
    store.close()  # nothing to stop: no error


@pytest.mark.parametrize("damage", ["not a database", "damaged pages"])
def test_a_damaged_store_is_one_line_naming_the_fix(path: Path, damage: str) -> None:
    if damage == "not a database":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"this is not SQLite\n" * 100)
    else:
        store = Store(path)
        store.open()
        run(store.run(put_mark("x" * 10, "y" * 100_000)))  # pages worth damaging
        store.close()
        data = bytearray(path.read_bytes())
        data[8192:16384] = b"\xff" * 8192
        path.write_bytes(bytes(data))
    store = Store(path)
    with pytest.raises(StoreCorrupt) as caught:
        store.open()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"lrun's store {path} is damaged (")
    assert message.endswith(f"mv {path} {path}.corrupt")
    store.close()


def test_the_fix_for_a_damaged_store_moves_its_write_ahead_log_too(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    Path(f"{path}-wal").write_bytes(b"")
    with pytest.raises(StoreCorrupt) as caught:
        Store(path).open()
    assert str(caught.value).endswith(f"mv {path} {path}.corrupt; mv {path}-wal {path}-wal.corrupt")


def test_a_full_database_fails_the_batch_with_store_failed_and_the_store_goes_on(
    store: Store, path: Path
) -> None:
    # max_page_count: the database may not grow, exactly as when the disk is full. SQLite
    # then rolls the whole transaction back, savepoints and all.
    async def main() -> None:
        await store.run(lambda db: db.execute("PRAGMA max_page_count = 1"))
        with pytest.raises(StoreFailed) as caught:
            await store.run(put_mark("big", "x" * 100_000))
        assert caught.value.message == (
            f"lrun could not write its store {path} (database or disk is full); free space on "
            "that disk or fix the state directory (LRUN_STATE_DIR), then retry"
        )
        assert caught.value.status == 500 and caught.value.error_type == "ServiceException"
        await store.run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        assert await store.run(put_mark("big", "x" * 100_000)) == "big"

    run(main())
    assert list(marks_on_disk(path)) == ["big"]


def test_a_job_that_ends_the_transaction_fails_its_batch_but_not_the_store(store: Store) -> None:
    def rude(db: sqlite3.Connection) -> None:
        db.execute("ROLLBACK")  # the savepoints are gone: the store's own statements fail
        raise RuntimeError("rude")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="rude"):
            await store.run(rude)
        assert await store.run(put_mark("after")) == "after"

    run(main())


def test_close_commits_work_submitted_before_it(path: Path) -> None:
    store = Store(path)
    store.open()

    async def main() -> list[str]:
        tasks = [asyncio.ensure_future(store.run(put_mark(f"late-{i}"))) for i in range(5)]
        await asyncio.sleep(0)  # all five queued
        store.close()  # blocks this loop until the store's thread has finished
        return await asyncio.gather(*tasks)

    assert run(main()) == [f"late-{i}" for i in range(5)]
    assert marks_on_disk(path) == {f"late-{i}": "v" for i in range(5)}


def test_close_twice_and_close_without_open_do_nothing(path: Path) -> None:
    never_opened = Store(path)
    never_opened.close()

    store = Store(path)
    store.open()
    run(store.run(put_mark("x")))
    store.close()
    store.close()  # the second close finds no thread and returns at once
    assert marks_on_disk(path) == {"x": "v"}


def test_a_store_made_before_a_column_existed_gets_it(path: Path) -> None:
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE events (request_id TEXT PRIMARY KEY, function TEXT NOT NULL, payload BLOB "
        "NOT NULL, received REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT "
        "NULL, last_error TEXT)"
    )
    old.execute(
        "INSERT INTO events (request_id, function, payload, received, next_at) VALUES "
        "('r', 'f', x'7b7d', 1, 1)"
    )
    old.commit()
    old.close()
    store = Store(path)
    store.open()
    try:
        rows = run(
            store.run(lambda db: db.execute("SELECT request_id, qualifier FROM events").fetchall())
        )
        assert rows == [("r", None)]  # the old event is kept, for the function itself
    finally:
        store.close()
