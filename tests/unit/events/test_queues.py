"""Unit tests for orchestrator.queues: a real Store on a temporary file and a fake clock.

Each call runs on a fresh event loop (``run``), as the store serves any loop; time moves only
when a test advances the clock.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.errors import InvalidParameterValue
from orchestrator.events import queues as queues_module
from orchestrator.events.queue_bounds import RETENTION_S, OverLimit, QueueLimits
from orchestrator.events.queues import (
    MAX_BODY,
    QueueDoesNotExist,
    QueueNameExists,
    Queues,
    QueueStats,
    ReceiptHandleIsInvalid,
    Received,
    queue_arn,
    sqs_record,
)
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import QueueSpec
from tests.fakes import Clock, run

T = TypeVar("T")
START = 1_700_000_000.0  # epoch seconds


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def queues(store: Store, clock: Clock) -> Queues:
    made = Queues(store, clock)
    run(made.create("orders"))
    return made


def bodies(received: list[Received]) -> list[str]:
    return [message.body for message in received]


# Send, receive, delete


def test_send_then_receive_then_delete(queues: Queues, clock: Clock) -> None:
    sent = run(queues.send("orders", "hello"))
    assert uuid.UUID(sent.message_id).version == 4
    assert sent.md5_of_body == hashlib.md5(b"hello").hexdigest()
    assert sent.sent_timestamp_ms == int(START * 1000)
    clock.advance(2.5)
    [received] = run(queues.receive("orders"))
    assert (received.message_id, received.body, received.md5_of_body) == (
        sent.message_id,
        "hello",
        sent.md5_of_body,
    )
    assert received.receive_count == 1
    assert received.sent_timestamp_ms == int(START * 1000)
    assert received.first_receive_timestamp_ms == int((START + 2.5) * 1000)
    assert run(queues.delete("orders", received.receipt)) is True
    assert run(queues.delete("orders", received.receipt)) is False  # gone already
    clock.advance(60)
    assert run(queues.receive("orders")) == []


def test_visibility_timeout_hides_a_message_then_reveals_it(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "m"))
    first = run(queues.receive("orders"))[0]
    assert run(queues.receive("orders")) == []
    clock.advance(29.9)
    assert run(queues.receive("orders")) == []
    clock.advance(0.1)
    again = run(queues.receive("orders"))[0]
    assert again.message_id == first.message_id
    assert again.receive_count == 2
    assert again.first_receive_timestamp_ms == first.first_receive_timestamp_ms
    assert again.receipt != first.receipt


def test_a_receive_may_set_its_own_visibility_timeout(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "m"))
    run(queues.receive("orders", visibility_timeout=5))
    clock.advance(4.9)
    assert run(queues.receive("orders")) == []
    clock.advance(0.1)
    assert bodies(run(queues.receive("orders", visibility_timeout=0))) == ["m"]
    assert bodies(run(queues.receive("orders"))) == ["m"]  # 0: still visible


def test_a_stale_receipt_deletes_nothing(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "m"))
    old = run(queues.receive("orders"))[0]
    clock.advance(30)
    new = run(queues.receive("orders"))[0]
    assert run(queues.delete("orders", old.receipt)) is False
    assert run(queues.stats("orders")).in_flight == 1
    assert run(queues.delete("orders", new.receipt)) is True
    assert run(queues.stats("orders")).in_flight == 0


def test_a_receipt_lrun_did_not_give_is_refused(queues: Queues) -> None:
    for receipt in ("nonsense", "", "%%%", "bm8tY29sb24"):
        with pytest.raises(ReceiptHandleIsInvalid, match="is not one lrun gave"):
            run(queues.delete("orders", receipt))


def test_change_visibility_hides_or_reveals_a_message(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "m"))
    received = run(queues.receive("orders"))[0]
    assert run(queues.change_visibility("orders", received.receipt, 0)) is True
    again = run(queues.receive("orders"))[0]
    assert run(queues.change_visibility("orders", received.receipt, 100)) is False  # stale
    assert run(queues.change_visibility("orders", again.receipt, 100)) is True
    clock.advance(99)
    assert run(queues.receive("orders")) == []
    clock.advance(1)
    assert run(queues.receive("orders"))[0].receive_count == 3


def test_purge_deletes_every_message(queues: Queues) -> None:
    run(queues.send_many("orders", ["a", "b", "c"]))
    run(queues.receive("orders"))
    assert run(queues.purge("orders")) == 3
    assert run(queues.stats("orders")) == QueueStats("orders", 0, 0, None, None, None)
    assert run(queues.purge("orders")) == 0


def test_oldest_messages_come_first(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "a"))
    clock.advance(1)
    run(queues.send_many("orders", ["b", "c"]))
    assert bodies(run(queues.receive("orders"))) == ["a"]
    clock.advance(30)
    run(queues.send("orders", "d"))
    assert bodies(run(queues.receive("orders", max_messages=10))) == ["a", "b", "c", "d"]


def test_receive_takes_at_most_max_messages(queues: Queues) -> None:
    run(queues.send_many("orders", [str(n) for n in range(12)]))
    assert bodies(run(queues.receive("orders", max_messages=5))) == ["0", "1", "2", "3", "4"]
    assert len(run(queues.receive("orders", max_messages=10000))) == 7


# Redrive


def redriving(queues: Queues, max_receive_count: int) -> None:
    run(queues.create("orders-dlq"))
    run(queues.create("jobs", 30, max_receive_count, "orders-dlq"))


def test_a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue(
    queues: Queues, clock: Clock
) -> None:
    redriving(queues, 2)
    attributes = {"kind": {"DataType": "String", "StringValue": "order"}}
    sent = run(queues.send("jobs", "work", attributes))
    counts = []
    for _ in range(3):
        counts += [m.receive_count for m in run(queues.receive("jobs"))]
        clock.advance(30)
    assert counts == [1, 2]  # the third receive moved it instead of handing it out
    assert run(queues.stats("jobs")) == QueueStats("jobs", 0, 0, None, "orders-dlq", 1)
    [dead] = run(queues.receive("orders-dlq"))
    assert dead.message_id != sent.message_id
    assert (dead.body, dead.md5_of_body, dead.receive_count) == ("work", sent.md5_of_body, 1)
    assert dead.attributes == {
        "kind": {
            "stringValue": "order",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert dead.sent_timestamp_ms == sent.sent_timestamp_ms  # its age goes on counting


def test_redrive_hands_out_the_messages_below_the_limit(queues: Queues, clock: Clock) -> None:
    redriving(queues, 1)
    run(queues.send("jobs", "old"))
    run(queues.receive("jobs"))
    clock.advance(30)
    run(queues.send("jobs", "new"))
    assert bodies(run(queues.receive("jobs", max_messages=10, visibility_timeout=0))) == ["new"]
    assert bodies(run(queues.receive("orders-dlq", max_messages=10))) == ["old"]


def test_no_redrive_without_a_dead_letter_queue(queues: Queues, clock: Clock) -> None:
    run(queues.ensure(QueueSpec("loose", 30, 1, None)))
    run(queues.send("loose", "m"))
    for count in (1, 2, 3):
        assert [m.receive_count for m in run(queues.receive("loose"))] == [count]
        clock.advance(30)


# Figures


def test_stats_count_depth_in_flight_age_and_dead_letters(queues: Queues, clock: Clock) -> None:
    redriving(queues, 1)
    run(queues.send_many("jobs", ["a", "b", "c"]))
    clock.advance(10)
    run(queues.receive("jobs"))
    assert run(queues.stats("jobs")) == QueueStats("jobs", 2, 1, 10.0, "orders-dlq", 0)
    clock.advance(30)
    run(queues.receive("jobs", max_messages=2))  # "a" goes to the DLQ; "b", "c" in flight
    assert run(queues.stats("jobs")) == QueueStats("jobs", 0, 2, 40.0, "orders-dlq", 1)
    assert run(queues.stats("orders-dlq")) == QueueStats("orders-dlq", 1, 0, 40.0, None, None)


def test_list_gives_every_queue_by_name(queues: Queues) -> None:
    redriving(queues, 3)
    run(queues.send("orders", "x"))
    assert run(queues.list()) == [
        QueueStats("jobs", 0, 0, None, "orders-dlq", 0),
        QueueStats("orders", 1, 0, 0.0, None, None),
        QueueStats("orders-dlq", 0, 0, None, None, None),
    ]


# Durability


def test_messages_and_counts_survive_reopening_the_store(
    tmp_path: Path, store: Store, queues: Queues, clock: Clock
) -> None:
    run(queues.send_many("orders", ["a", "b"]))
    received = run(queues.receive("orders"))[0]
    store.close()
    reopened = Store(tmp_path / "lrun.db")
    reopened.open()
    try:
        later = Queues(reopened, clock)
        assert run(later.stats("orders")) == QueueStats("orders", 1, 1, 0.0, None, None)
        clock.advance(30)
        again = run(later.receive("orders", max_messages=10))
        assert [(m.body, m.receive_count) for m in again] == [("a", 2), ("b", 1)]
        assert again[0].first_receive_timestamp_ms == received.first_receive_timestamp_ms
        assert run(later.delete("orders", received.receipt)) is False
    finally:
        reopened.close()


# The Lambda event record


def test_sqs_record_has_lambdas_shape(queues: Queues, clock: Clock) -> None:
    attributes = {"kind": {"DataType": "String", "StringValue": "order"}}
    sent = run(queues.send("orders", "Test message.", attributes))
    clock.advance(0.002)
    [received] = run(queues.receive("orders"))
    assert sqs_record(received, "orders") == {
        "messageId": sent.message_id,
        "receiptHandle": received.receipt,
        "body": "Test message.",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(START * 1000)),
            "SenderId": "000000000000",
            "ApproximateFirstReceiveTimestamp": str(int((START + 0.002) * 1000)),
        },
        "messageAttributes": {
            "kind": {
                "stringValue": "order",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": hashlib.md5(b"Test message.").hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
        "awsRegion": "us-east-1",
    }
    assert list(sqs_record(received, "orders")) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert queue_arn("q") == "arn:aws:sqs:us-east-1:000000000000:q"


def test_attributes_in_records_shape_are_kept(queues: Queues) -> None:
    shown = {"blob": {"binaryValue": "AAE=", "dataType": "Binary"}}
    run(queues.send("orders", "m", shown))
    [received] = run(queues.receive("orders"))
    assert received.attributes == {
        "blob": {
            "binaryValue": "AAE=",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        }
    }


# Queues themselves


def test_create_again_with_the_same_settings_changes_nothing(queues: Queues) -> None:
    run(queues.send("orders", "m"))
    assert run(queues.create("orders")) == QueueSpec("orders")
    assert run(queues.stats("orders")).depth == 1


def test_create_with_other_settings_is_refused(queues: Queues) -> None:
    with pytest.raises(QueueNameExists, match="'orders' already exists with other settings"):
        run(queues.create("orders", visibility_timeout=60))


def test_ensure_updates_the_settings_and_keeps_the_messages(queues: Queues, clock: Clock) -> None:
    run(queues.send("orders", "m"))
    run(queues.ensure(QueueSpec("orders", visibility_timeout=5)))
    run(queues.ensure(QueueSpec("fresh")))
    run(queues.receive("orders"))
    clock.advance(5)
    assert bodies(run(queues.receive("orders"))) == ["m"]
    assert [s.name for s in run(queues.list())] == ["fresh", "orders"]


def test_delete_queue_removes_it_and_its_messages(queues: Queues, store: Store) -> None:
    run(queues.send("orders", "m"))
    run(queues.delete_queue("orders"))
    assert run(queues.list()) == []
    count = run(store.run(lambda db: db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]))
    assert count == 0


def test_a_dead_letter_queue_in_use_cannot_be_deleted(queues: Queues) -> None:
    redriving(queues, 2)
    with pytest.raises(InvalidParameterValue, match="'orders-dlq' is the dead_letter_queue of"):
        run(queues.delete_queue("orders-dlq"))


def test_send_in_commits_with_the_callers_work(queues: Queues, store: Store) -> None:
    run(store.run(lambda db: queues.send_in(db, "orders", "with", {})))

    def failing(db: sqlite3.Connection) -> None:
        queues.send_in(db, "orders", "without", {})
        raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        run(store.run(failing))
    assert bodies(run(queues.receive("orders", max_messages=10))) == ["with"]


# Errors


def test_an_unknown_queue_is_named_with_a_suggestion(queues: Queues) -> None:
    run(queues.create("invoices"))
    with pytest.raises(QueueDoesNotExist) as caught:
        run(queues.send("ordrs", "m"))
    assert caught.value.message == (
        "queue 'ordrs' does not exist; did you mean 'orders'? (known queues: invoices, orders)"
    )
    with pytest.raises(QueueDoesNotExist) as caught:
        run(queues.receive("zzz"))
    assert caught.value.message == (
        "queue 'zzz' does not exist (known queues: invoices, orders); "
        "create it with: lrun queue create zzz"
    )


def test_an_unknown_queue_when_there_are_none(store: Store) -> None:
    with pytest.raises(QueueDoesNotExist, match=r"\(no queues yet\); create it with"):
        run(Queues(store).purge("orders"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda q: q.receive("orders", max_messages=0),
            "max_messages 0 is out of range; use a whole number from 1 to 10000",
        ),
        (
            lambda q: q.receive("orders", visibility_timeout=43201),
            "visibility_timeout 43201 is out of range; use a whole number from 0 to 43200 seconds",
        ),
        (
            lambda q: q.create("q", visibility_timeout=-1),
            "visibility_timeout -1 is out of range; use a whole number from 0 to 43200 seconds",
        ),
        (
            lambda q: q.create("q", visibility_timeout=True),
            "visibility_timeout True is out of range",
        ),
        (
            lambda q: q.create("q", max_receive_count=0, dead_letter_queue="orders"),
            "max_receive_count 0 is out of range; use a whole number from 1 to 1000",
        ),
        (
            lambda q: q.create("q", max_receive_count=3),
            "queue 'q': max_receive_count 3 and dead_letter_queue None make a redrive policy",
        ),
        (
            lambda q: q.create("a b"),
            "queue name 'a b' is invalid; use 1 to 80 letters, digits, hyphens or underscores",
        ),
        (
            lambda q: q.create("q", max_receive_count=1, dead_letter_queue="q"),
            "queue 'q' cannot be its own dead_letter_queue",
        ),
        (lambda q: q.change_visibility("orders", "x", -1), "visibility_timeout -1 is out of"),
        (lambda q: q.send("orders", ""), "message body of 0 bytes is out of range"),
        (
            lambda q: q.send("orders", "x" * (MAX_BODY + 1)),
            f"message body of {MAX_BODY + 1} bytes is out of range; send 1 to {MAX_BODY} bytes",
        ),
        (lambda q: q.send("orders", b"bytes"), "message body b'bytes' is not text"),
        (
            lambda q: q.send("orders", "ok\x00"),
            "message body has character U+0000 at offset 2, which SQS refuses",
        ),
        (lambda q: q.send("orders", "\ud800"), "message body has character U+D800 at offset 0"),
        (
            lambda q: q.send("orders", "m", {"k": {"DataType": "Text", "StringValue": "v"}}),
            "message attribute 'k'",
        ),
        (lambda q: q.send("orders", "m", {"k": "v"}), "message attribute 'k': 'v' is invalid"),
        (lambda q: q.send("orders", "m", {"a b": {}}), "message attribute name 'a b'"),
        (lambda q: q.send_many("orders", []), "a batch of 0 messages is out of range"),
    ],
)
def test_bad_values_are_named_with_the_allowed_range(
    queues: Queues, call: Any, message: str
) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        run(call(queues))
    assert caught.value.message.startswith(message)


def test_create_needs_an_existing_dead_letter_queue(queues: Queues) -> None:
    with pytest.raises(QueueDoesNotExist, match="queue 'nowhere' does not exist"):
        run(queues.create("jobs", 30, 2, "nowhere"))
    assert [s.name for s in run(queues.list())] == ["orders"]


def test_a_batch_with_one_bad_body_sends_nothing(queues: Queues) -> None:
    with pytest.raises(InvalidParameterValue):
        run(queues.send_many("orders", ["good", ""]))
    assert run(queues.stats("orders")).depth == 0


def test_a_caller_cannot_make_lrun_keep_queues_without_end(
    queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queues_module, "MAX_QUEUES", 5)
    made = [run(queues.create(f"q{n}")) for n in range(4)]  # "orders" exists already
    assert len(made) == 4
    with pytest.raises(InvalidParameterValue, match="lrun keeps at most 5 queues; delete one"):
        run(queues.create("one-too-many"))
    run(queues.delete_queue("q0"))
    assert run(queues.create("one-too-many")) == QueueSpec("one-too-many")


# Bounds, as SQS bounds its queues


def test_a_queue_refuses_sends_past_its_message_limit_with_sqs_s_error(
    store: Store, clock: Clock
) -> None:
    """The attack: send until refused. The refusal is SQS's OverLimit, names the queue and the
    fix, and sends nothing of a batch that does not fit; room made by deleting takes again."""
    queues = Queues(store, clock, QueueLimits(max_messages=25))
    run(queues.create("orders"))
    run(queues.create("other"))
    sent = 0
    with pytest.raises(OverLimit) as refused:
        while sent < 1000:
            run(queues.send_many("orders", [f"m{sent + i}" for i in range(10)]))
            sent += 10
    assert sent == 20  # the third batch of 10 would make 30
    assert refused.value.error_type == "OverLimit" and refused.value.status == 403
    assert "queue 'orders' holds 20 messages, and lrun keeps at most 25 in a queue" in str(
        refused.value
    )
    run(queues.send_many("orders", ["a", "b", "c", "d", "e"]))  # exactly to the limit
    with pytest.raises(OverLimit):
        run(queues.send("orders", "one more"))
    assert run(queues.stats("orders")).depth == 25
    run(queues.send("other", "another queue has its own room"))
    for received in run(queues.receive("orders", 10)):
        assert run(queues.delete("orders", received.receipt))
    run(queues.send_many("orders", [f"again{i}" for i in range(10)]))
    run(queues.purge("orders"))
    run(queues.send_many("orders", [f"after purge {i}" for i in range(10)]))


def test_the_queues_together_are_held_to_a_number_of_bytes(store: Store, clock: Clock) -> None:
    queues = Queues(store, clock, QueueLimits(max_bytes=10_000))
    for name in ("a", "b"):
        run(queues.create(name))
    run(queues.send_many("a", ["x" * 1000] * 4))
    run(queues.send_many("b", ["y" * 1000] * 4))
    with pytest.raises(OverLimit, match="the queues hold 8016 bytes of messages, and lrun keeps"):
        run(queues.send_many("b", ["z" * 1000] * 2))
    run(queues.send("b", "z" * 1000))  # what fits still goes
    run(queues.delete_queue("a"))
    run(queues.send_many("b", ["z" * 1000] * 4))


def test_messages_older_than_sqs_s_retention_period_are_deleted(store: Store, clock: Clock) -> None:
    queues = Queues(store, clock)
    run(queues.create("orders"))
    run(queues.send("orders", "old"))
    clock.advance(RETENTION_S - 10)
    run(queues.send("orders", "newer"))
    assert run(queues.stats("orders")).depth == 2
    clock.advance(11)  # "old" is 4 days and a second old: SQS would have deleted it
    assert run(queues.stats("orders")).depth == 1
    assert bodies(run(queues.receive("orders", 10))) == ["newer"]


def test_the_counts_survive_a_restart_and_a_store_from_before_them_is_counted(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "lrun.db"
    first = Store(path)
    first.open()
    queues = Queues(first, clock, QueueLimits(max_messages=5))
    run(queues.create("orders"))
    run(queues.send_many("orders", ["1", "2", "3"]))
    first.close()
    # As a store written before the counts: no counts, not counted yet.
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM queue_sizes")
    db.close()
    second = Store(path)
    second.open()
    try:
        later = Queues(second, clock, QueueLimits(max_messages=5))
        run(later.send_many("orders", ["4", "5"]))
        with pytest.raises(OverLimit, match="holds 5 messages"):
            run(later.send("orders", "6"))
    finally:
        second.close()
