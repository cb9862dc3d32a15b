"""Local queues (the SQS role): durable messages, visibility timeouts, receive counts and redrive
to a dead-letter queue.

All state lives in the store (DESIGN D6): each operation is one transaction, so a message that
``send`` acknowledged survives a crash, and a message ``receive`` handed out is handed to no one
else until its visibility timeout ends. The store's work functions below the ``Queues`` class run
on the store's thread and hold the SQL.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import InvalidParameterValue, LambdaError
from orchestrator.events.queue_bounds import QueueLimits, check_room, expire
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import BATCH_RANGE, VISIBILITY_RANGE, QueueSpec

MAX_RECEIVE_COUNT_RANGE = (1, 1000)
RECEIVE_RANGE = BATCH_RANGE  # messages per receive for lrun's own batches; SQS's API allows 10
SEND_BATCH_MAX = BATCH_RANGE[1]
MAX_BODY = 1_048_576  # bytes of UTF-8: SQS's message size limit (raised from 256 KiB in 2025)
MAX_ATTRIBUTES = 10
MAX_QUEUES = 1000  # lrun's own bound (SQS has none): every queue is rows lrun keeps
SENDER_ID = ACCOUNT_ID  # SQS names the sender by account when the account itself sends
DATA_TYPES = ("String", "Number", "Binary")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
# What SQS accepts in a body (anything else is refused with InvalidMessageContents).
_FORBIDDEN_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class QueueDoesNotExist(LambdaError):
    error_type = "QueueDoesNotExist"
    status = 400
    kind = "User"


class QueueNameExists(LambdaError):
    error_type = "QueueNameExists"
    status = 400
    kind = "User"


class ReceiptHandleIsInvalid(LambdaError):
    error_type = "ReceiptHandleIsInvalid"
    status = 400
    kind = "User"


@dataclass(frozen=True)
class Message:
    """A message as sent."""

    message_id: str
    queue: str
    body: str
    attributes: dict[str, Any]  # message attributes, as Lambda's SQS records show them
    sent_timestamp_ms: int
    md5_of_body: str


@dataclass(frozen=True)
class Received:
    """A message as one receive handed it out; ``receipt`` deletes it until the next receive."""

    message_id: str
    receipt: str
    body: str
    attributes: dict[str, Any]
    receive_count: int
    sent_timestamp_ms: int
    first_receive_timestamp_ms: int
    md5_of_body: str


@dataclass(frozen=True)
class QueueStats:
    name: str
    depth: int  # visible messages
    in_flight: int  # received and not yet visible again
    oldest_age_s: float | None  # of the oldest message, visible or not; None when empty
    dead_letter_queue: str | None
    dead_letter_depth: int | None  # every message in the dead-letter queue


class Queues:
    """The local queues, all state in ``store``; ``clock`` gives epoch seconds."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        limits: QueueLimits | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.limits = limits or QueueLimits()

    async def ensure(self, spec: QueueSpec) -> None:
        """Create the queue, or give an existing one these settings (a manifest's queues)."""
        check_spec(spec)
        now = self._clock()
        await self._store.run(lambda db: _upsert(db, spec, now))

    async def create(
        self,
        name: str,
        visibility_timeout: int = 30,
        max_receive_count: int | None = None,
        dead_letter_queue: str | None = None,
    ) -> QueueSpec:
        """Create a queue; creating it again with the same settings changes nothing."""
        spec = QueueSpec(name, visibility_timeout, max_receive_count, dead_letter_queue)
        check_spec(spec)
        if (max_receive_count is None) != (dead_letter_queue is None):
            raise InvalidParameterValue(
                f"queue {name!r}: max_receive_count {max_receive_count!r} and dead_letter_queue "
                f"{dead_letter_queue!r} make a redrive policy together; give both or neither"
            )
        now = self._clock()
        await self._store.run(lambda db: _create(db, spec, now))
        return spec

    async def delete_queue(self, name: str) -> None:
        """Delete a queue and its messages."""
        await self._store.run(lambda db: _drop(db, name))

    async def send(
        self, name: str, body: str, attributes: Mapping[str, Any] | None = None
    ) -> Message:
        return (await self.send_many(name, [body], attributes))[0]

    async def send_many(
        self, name: str, bodies: Sequence[str], attributes: Mapping[str, Any] | None = None
    ) -> list[Message]:
        """Send every body (each with ``attributes``) in one transaction: all or none."""
        if not 1 <= len(bodies) <= SEND_BATCH_MAX:
            raise InvalidParameterValue(
                f"a batch of {len(bodies)} messages is out of range; send 1 to {SEND_BATCH_MAX}"
            )
        now = self._clock()
        messages = _messages(name, bodies, attributes, now)
        await self._store.run(lambda db: _insert(db, messages, self.limits, now))
        return messages

    def send_in(
        self, connection: sqlite3.Connection, name: str, body: str, attributes: dict[str, Any]
    ) -> None:
        """Send one message inside the caller's store work (so it commits with that work)."""
        now = self._clock()
        _insert(connection, _messages(name, [body], attributes, now), self.limits, now)

    async def receive(
        self, name: str, max_messages: int = 1, visibility_timeout: int | None = None
    ) -> list[Received]:
        """Take up to ``max_messages`` visible messages, oldest first, and hide them for the
        visibility timeout (the queue's unless given). Messages already received
        ``max_receive_count`` times go to the dead-letter queue instead."""
        check_range("max_messages", max_messages, RECEIVE_RANGE)
        if visibility_timeout is not None:
            check_range("visibility_timeout", visibility_timeout, VISIBILITY_RANGE, " seconds")
        now = self._clock()
        return await self._store.run(
            lambda db: _receive(db, name, max_messages, visibility_timeout, now, self.limits)
        )

    async def delete(self, name: str, receipt: str) -> bool:
        """Delete the message ``receipt`` came with; False (and nothing deleted) when the
        receipt is stale: the message was received again since, or is gone."""
        message_id = _message_id(receipt)
        return await self._store.run(lambda db: _delete(db, name, message_id, receipt))

    async def change_visibility(self, name: str, receipt: str, seconds: int) -> bool:
        """Make the message visible ``seconds`` from now (0: at once); False when the receipt
        is stale."""
        check_range("visibility_timeout", seconds, VISIBILITY_RANGE, " seconds")
        message_id = _message_id(receipt)
        visible_at = self._clock() + seconds
        return await self._store.run(
            lambda db: _change_visibility(db, name, message_id, receipt, visible_at)
        )

    async def purge(self, name: str) -> int:
        """Delete every message of the queue; returns how many there were."""
        return await self._store.run(lambda db: _purge(db, name))

    async def stats(self, name: str) -> QueueStats:
        now = self._clock()
        return await self._store.run(lambda db: _stats(db, name, now, self.limits))

    async def list(self) -> list[QueueStats]:
        """Every queue's figures, by name."""
        now = self._clock()
        return await self._store.run(lambda db: _list(db, now, self.limits))


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def sqs_record(received: Received, queue_name: str) -> dict[str, Any]:
    """One record of a Lambda SQS event (contract section 8.2)."""
    return {
        "messageId": received.message_id,
        "receiptHandle": received.receipt,
        "body": received.body,
        "attributes": {
            "ApproximateReceiveCount": str(received.receive_count),
            "SentTimestamp": str(received.sent_timestamp_ms),
            "SenderId": SENDER_ID,
            "ApproximateFirstReceiveTimestamp": str(received.first_receive_timestamp_ms),
        },
        "messageAttributes": received.attributes,
        "md5OfBody": received.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue_name),
        "awsRegion": REGION,
    }


# Checks (on the caller's side, before any store work)


def check_range(field: str, value: object, bounds: tuple[int, int], unit: str = "") -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterValue(
            f"{field} {value!r} is out of range; use a whole number from {low} to {high}{unit}"
        )


def check_name(name: object, field: str = "queue name") -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameterValue(
            f"{field} {name!r} is invalid; use 1 to 80 letters, digits, hyphens or underscores"
        )


def check_spec(spec: QueueSpec) -> None:
    check_name(spec.name)
    check_range("visibility_timeout", spec.visibility_timeout, VISIBILITY_RANGE, " seconds")
    if spec.max_receive_count is not None:
        check_range("max_receive_count", spec.max_receive_count, MAX_RECEIVE_COUNT_RANGE)
    if spec.dead_letter_queue is not None:
        check_name(spec.dead_letter_queue, "dead_letter_queue")
        if spec.dead_letter_queue == spec.name:
            raise InvalidParameterValue(
                f"queue {spec.name!r} cannot be its own dead_letter_queue; name another queue"
            )


def _check_body(body: object) -> str:
    if not isinstance(body, str):
        raise InvalidParameterValue(f"message body {body!r} is not text; send a string")
    if found := _FORBIDDEN_CHAR.search(body):
        raise InvalidParameterValue(
            f"message body has character U+{ord(found.group()):04X} at offset {found.start()}, "
            "which SQS refuses; encode binary data (base64) before sending it"
        )
    size = len(body.encode())
    if not 1 <= size <= MAX_BODY:
        raise InvalidParameterValue(
            f"message body of {size} bytes is out of range; send 1 to {MAX_BODY} bytes"
        )
    return body


def _attributes(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Message attributes in the shape Lambda's records show, from that shape or SendMessage's
    (``DataType``, ``StringValue``, ``BinaryValue``)."""
    given = given or {}
    if not isinstance(given, Mapping) or len(given) > MAX_ATTRIBUTES:
        raise InvalidParameterValue(
            f"message attributes {given!r} are invalid; give a mapping of at most "
            f"{MAX_ATTRIBUTES} names to values"
        )
    return {name: _attribute(name, value) for name, value in given.items()}


def _attribute(name: object, value: object) -> dict[str, Any]:
    fix = "give {DataType: String|Number|Binary, StringValue or BinaryValue: text}"
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
        raise InvalidParameterValue(f"message attribute name {name!r} is invalid; {fix}")
    fields = {_lower_first(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}
    data_type = fields.get("dataType")
    binary = isinstance(data_type, str) and data_type.startswith("Binary")
    key = "binaryValue" if binary else "stringValue"
    content = fields.get(key)
    typed = isinstance(data_type, str) and data_type.startswith(DATA_TYPES)
    if not typed or not isinstance(content, str):
        raise InvalidParameterValue(f"message attribute {name!r}: {value!r} is invalid; {fix}")
    return {key: content, "stringListValues": [], "binaryListValues": [], "dataType": data_type}


def _lower_first(key: object) -> str:
    """SendMessage's ``StringValue`` as Lambda's records spell it: ``stringValue``."""
    text = str(key)
    return text[:1].lower() + text[1:]


def _messages(
    name: str, bodies: Sequence[str], attributes: Mapping[str, Any] | None, now: float
) -> list[Message]:
    shown = _attributes(attributes)
    return [
        Message(str(uuid.uuid4()), name, _check_body(body), shown, _ms(now), _md5(body))
        for body in bodies
    ]


def _md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def _ms(epoch: float) -> int:
    return int(epoch * 1000)


def _receipt(message_id: str) -> str:
    """A fresh handle per receive, naming its message so delete needs no scan."""
    token = f"{message_id}:{uuid.uuid4().hex}".encode()
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _message_id(receipt: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(receipt + "=" * (-len(receipt) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    message_id, _, token = decoded.partition(":")
    if not message_id or not token:
        raise ReceiptHandleIsInvalid(
            f"receipt handle {receipt!r} is not one lrun gave; use the receipt of a receive"
        )
    return message_id


# Store work: runs on the store's thread, inside its transaction


def _spec(db: sqlite3.Connection, name: str) -> QueueSpec | None:
    row = db.execute(
        "SELECT visibility_timeout, max_receive_count, dead_letter_queue FROM queues "
        "WHERE name = ?",
        (name,),
    ).fetchone()
    return None if row is None else QueueSpec(name, int(row[0]), row[1], row[2])


def _require(db: sqlite3.Connection, name: str) -> QueueSpec:
    spec = _spec(db, name)
    if spec is None:
        raise _missing(db, name)
    return spec


def _missing(db: sqlite3.Connection, name: str) -> QueueDoesNotExist:
    known = [row[0] for row in db.execute("SELECT name FROM queues ORDER BY name")]
    listing = f"known queues: {', '.join(known)}" if known else "no queues yet"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return QueueDoesNotExist(
            f"queue {name!r} does not exist; did you mean {close[0]!r}? ({listing})"
        )
    return QueueDoesNotExist(
        f"queue {name!r} does not exist ({listing}); create it with: lrun queue create {name}"
    )


def _upsert(db: sqlite3.Connection, spec: QueueSpec, now: float) -> None:
    db.execute(
        "INSERT INTO queues (name, visibility_timeout, max_receive_count, dead_letter_queue, "
        "created) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "visibility_timeout = excluded.visibility_timeout, "
        "max_receive_count = excluded.max_receive_count, "
        "dead_letter_queue = excluded.dead_letter_queue",
        (spec.name, spec.visibility_timeout, spec.max_receive_count, spec.dead_letter_queue, now),
    )


def _create(db: sqlite3.Connection, spec: QueueSpec, now: float) -> None:
    existing = _spec(db, spec.name)
    if existing == spec:
        return
    if existing is not None:
        raise QueueNameExists(
            f"queue {spec.name!r} already exists with other settings ({_settings(existing)}); "
            "create it with those, or delete it first"
        )
    if spec.dead_letter_queue is not None:
        _require(db, spec.dead_letter_queue)
    (count,) = db.execute("SELECT count(*) FROM queues").fetchone()
    if count >= MAX_QUEUES:
        raise InvalidParameterValue(
            f"queue {spec.name!r}: lrun keeps at most {MAX_QUEUES} queues; delete one first"
        )
    _upsert(db, spec, now)


def _settings(spec: QueueSpec) -> str:
    return (
        f"visibility_timeout {spec.visibility_timeout}, max_receive_count "
        f"{spec.max_receive_count}, dead_letter_queue {spec.dead_letter_queue}"
    )


def _drop(db: sqlite3.Connection, name: str) -> None:
    _require(db, name)
    users = [
        row[0]
        for row in db.execute(
            "SELECT name FROM queues WHERE dead_letter_queue = ? ORDER BY name", (name,)
        )
    ]
    if users:
        raise InvalidParameterValue(
            f"queue {name!r} is the dead_letter_queue of {', '.join(users)}; delete those "
            "first, or give them another dead_letter_queue"
        )
    db.execute("DELETE FROM messages WHERE queue = ?", (name,))
    db.execute("DELETE FROM queues WHERE name = ?", (name,))
    db.execute("DELETE FROM queue_sizes WHERE queue = ?", (name,))


def _insert(
    db: sqlite3.Connection, messages: Sequence[Message], limits: QueueLimits, now: float
) -> None:
    adding: dict[str, int] = {}
    for message in messages:
        adding[message.queue] = adding.get(message.queue, 0) + 1
    for name in adding:
        _require(db, name)
        expire(db, name, limits, now)
    check_room(db, adding, sum(_size(message) for message in messages), limits)
    db.executemany(
        "INSERT INTO messages (id, queue, body, attributes, sent, visible_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [_row(message) for message in messages],
    )


def _size(message: Message) -> int:
    """Its bytes as the store's counts take them: body and attributes as stored."""
    return len(message.body.encode()) + len(json.dumps(message.attributes).encode())


def _row(message: Message) -> tuple[Any, ...]:
    sent = message.sent_timestamp_ms / 1000  # what SentTimestamp shows, to the millisecond
    attributes = json.dumps(message.attributes)
    return (message.message_id, message.queue, message.body, attributes, sent, sent)


# Visible messages in the order they were sent, from just after a (sent, rowid) position on.
# The unary + keeps visible_at from choosing the index: ordered by (queue, sent), the scan
# stops after LIMIT rows instead of sorting the whole backlog.
_VISIBLE = (
    "SELECT sent, rowid, id, body, attributes, receive_count, first_received FROM messages "
    "WHERE queue = ? AND +visible_at <= ? AND (sent, rowid) > (?, ?) "
    "ORDER BY sent, rowid LIMIT ?"
)


def _receive(
    db: sqlite3.Connection,
    name: str,
    limit: int,
    visibility: int | None,
    now: float,
    limits: QueueLimits,
) -> list[Received]:
    spec = _require(db, name)
    expire(db, name, limits, now)
    dead_letter = _dead_letter(db, spec)
    taken: list[tuple[Any, ...]] = []
    dead: list[tuple[Any, ...]] = []
    after: tuple[float, int] = (float("-inf"), -1)
    while len(taken) < limit:
        rows = db.execute(_VISIBLE, (name, now, *after, limit - len(taken))).fetchall()
        if not rows:
            break
        after = (rows[-1][0], rows[-1][1])
        for row in rows:
            spent = dead_letter is not None and row[5] >= dead_letter[1]
            (dead if spent else taken).append(row)
    if dead_letter is not None:
        _redrive(db, dead, dead_letter[0], now)
    hidden_until = now + (spec.visibility_timeout if visibility is None else visibility)
    handed = [_take(row, now) for row in taken]
    db.executemany(
        "UPDATE messages SET visible_at = ?, receive_count = ?, first_received = ?, receipt = ? "
        "WHERE id = ?",
        [(hidden_until, *update) for _, update in handed],
    )
    return [received for received, _ in handed]


def _dead_letter(db: sqlite3.Connection, spec: QueueSpec) -> tuple[str, int] | None:
    """Where the queue redrives messages, and after how many receives; None: it does not."""
    target, count = spec.dead_letter_queue, spec.max_receive_count
    if target is None or count is None or _spec(db, target) is None:
        return None
    return target, count


def _take(row: tuple[Any, ...], now: float) -> tuple[Received, tuple[Any, ...]]:
    """The message a ``_VISIBLE`` row holds as this receive hands it out, and the row's new
    receive count, first receive and receipt."""
    sent, _, message_id, body, attributes, count, first = row
    first = now if first is None else first
    receipt = _receipt(message_id)
    received = Received(
        message_id,
        receipt,
        body,
        json.loads(attributes),
        count + 1,
        _ms(sent),
        _ms(first),
        _md5(body),
    )
    return received, (count + 1, first, receipt, message_id)


def _redrive(db: sqlite3.Connection, rows: list[tuple[Any, ...]], target: str, now: float) -> None:
    """Move messages whose receives ran out to the dead-letter queue: as new messages there (new
    id, never received), keeping their sent time."""
    db.executemany(
        "INSERT INTO messages (id, queue, body, attributes, sent, visible_at) "
        "SELECT ?, ?, body, attributes, sent, ? FROM messages WHERE id = ?",
        [(str(uuid.uuid4()), target, now, row[2]) for row in rows],
    )
    db.executemany("DELETE FROM messages WHERE id = ?", [(row[2],) for row in rows])


def _delete(db: sqlite3.Connection, name: str, message_id: str, receipt: str) -> bool:
    _require(db, name)
    found = db.execute(
        "DELETE FROM messages WHERE id = ? AND queue = ? AND receipt = ?",
        (message_id, name, receipt),
    )
    return found.rowcount == 1


def _change_visibility(
    db: sqlite3.Connection, name: str, message_id: str, receipt: str, visible_at: float
) -> bool:
    _require(db, name)
    found = db.execute(
        "UPDATE messages SET visible_at = ? WHERE id = ? AND queue = ? AND receipt = ?",
        (visible_at, message_id, name, receipt),
    )
    return found.rowcount == 1


def _purge(db: sqlite3.Connection, name: str) -> int:
    _require(db, name)
    return db.execute("DELETE FROM messages WHERE queue = ?", (name,)).rowcount


Counts = dict[str, tuple[int, int, float | None]]  # queue -> visible, in flight, oldest sent


def _counts(db: sqlite3.Connection, now: float, names: Sequence[str] | None) -> Counts:
    where = f"WHERE queue IN ({', '.join('?' * len(names))})" if names is not None else ""
    rows = db.execute(
        "SELECT queue, SUM(visible_at <= ?), SUM(visible_at > ?), MIN(sent) FROM messages "
        f"{where} GROUP BY queue",
        (now, now, *(names or ())),
    )
    return {queue: (visible, hidden, oldest) for queue, visible, hidden, oldest in rows}


def _figures(spec: QueueSpec, counts: Counts, now: float) -> QueueStats:
    visible, hidden, oldest = counts.get(spec.name, (0, 0, None))
    target = spec.dead_letter_queue
    target_depth = sum(counts.get(target, (0, 0, None))[:2]) if target is not None else None
    age = None if oldest is None else round(max(0.0, now - oldest), 3)
    return QueueStats(spec.name, visible, hidden, age, target, target_depth)


def _stats(db: sqlite3.Connection, name: str, now: float, limits: QueueLimits) -> QueueStats:
    spec = _require(db, name)
    names = [name] if spec.dead_letter_queue is None else [name, spec.dead_letter_queue]
    for each in names:
        expire(db, each, limits, now)
    return _figures(spec, _counts(db, now, names), now)


def _list(db: sqlite3.Connection, now: float, limits: QueueLimits) -> list[QueueStats]:
    rows = db.execute(
        "SELECT name, visibility_timeout, max_receive_count, dead_letter_queue FROM queues "
        "ORDER BY name"
    )
    specs = [QueueSpec(name, int(timeout), count, target) for name, timeout, count, target in rows]
    for spec in specs:
        expire(db, spec.name, limits, now)
    counts = _counts(db, now, None)
    return [_figures(spec, counts, now) for spec in specs]
