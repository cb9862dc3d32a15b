"""What the local queues may hold, as SQS bounds its queues.

SQS keeps a message for its queue's retention period (4 days unless told otherwise) and then
deletes it; it has no limit on a queue's backlog, but refuses with ``OverLimit`` past 120,000
messages in flight in a standard queue. lrun deletes old messages as SQS does, and holds each
queue to that number of messages in all (received or not: each is disk lrun keeps) and every
queue together to a number of bytes, refusing a send past either with ``OverLimit``.

The counts come from the store's ``queue_sizes`` table, which triggers keep as messages come and
go, so a send checks its bounds without counting rows. Store work: runs on the store's thread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.errors import LambdaError

RETENTION_S = 345_600  # SQS's default MessageRetentionPeriod: 4 days
MAX_MESSAGES = 120_000  # SQS's quota of messages in flight in a standard queue
MAX_BYTES = 2 * 1024 * 1024 * 1024  # lrun's own: every queue's bodies and attributes together
MB = 1024 * 1024


class OverLimit(LambdaError):
    """SQS's refusal of an action that violates one of its limits (403)."""

    error_type = "OverLimit"
    status = 403
    kind = "User"


@dataclass(frozen=True)
class QueueLimits:
    """What the queues may hold: messages per queue, bytes in all, and how long a message is
    kept. ``LRUN_QUEUE_MAX_MESSAGES`` and ``LRUN_QUEUE_MAX_MB`` lower the first two (tests,
    small disks)."""

    max_messages: int = MAX_MESSAGES
    max_bytes: int = MAX_BYTES
    retention_s: float = RETENTION_S

    @classmethod
    def from_env(cls) -> QueueLimits:
        return cls(
            _whole_from_env("LRUN_QUEUE_MAX_MESSAGES", MAX_MESSAGES),
            _whole_from_env("LRUN_QUEUE_MAX_MB", MAX_BYTES // MB) * MB,
        )


def _whole_from_env(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    return max(1, int(value)) if value.isdigit() else default


def expire(db: sqlite3.Connection, name: str, limits: QueueLimits, now: float) -> None:
    """Delete the queue's messages older than the retention period, as SQS does."""
    db.execute(
        "DELETE FROM messages WHERE queue = ? AND sent < ?", (name, now - limits.retention_s)
    )


def check_room(
    db: sqlite3.Connection, adding: Mapping[str, int], size: int, limits: QueueLimits
) -> None:
    """Refuse, with SQS's ``OverLimit``, ``adding`` messages (by queue) of ``size`` bytes in all
    that would take a queue or the queues together past their bounds."""
    for name, count in adding.items():
        row = db.execute("SELECT count FROM queue_sizes WHERE queue = ?", (name,)).fetchone()
        held = row[0] if row is not None else 0
        if held + count > limits.max_messages:
            raise OverLimit(
                f"queue {name!r} holds {held} messages, and lrun keeps at most "
                f"{limits.max_messages} in a queue (SQS's limit of messages in flight); receive "
                "and delete some, or purge it (lrun queue purge), then send again"
            )
    (total,) = db.execute("SELECT coalesce(sum(bytes), 0) FROM queue_sizes").fetchone()
    if total + size > limits.max_bytes:
        raise OverLimit(
            f"the queues hold {total} bytes of messages, and lrun keeps at most "
            f"{limits.max_bytes} in all; receive and delete some, or purge a queue, then send "
            "again"
        )
