"""What starts a function besides a direct call, and where asynchronous results go.

Values of the manifest (DESIGN G4): local queues (the SQS role), local buckets (the S3 role),
event sources (a queue polled in batches, a schedule, a bucket's file events) and a function's
asynchronous-invocation settings (retries, maximum event age, destinations, dead-letter queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DestinationKind = Literal["function", "queue", "file"]

RETRY_RANGE = (0, 2)
EVENT_AGE_RANGE = (60, 21600)  # seconds
DEFAULT_RETRY_DELAY = 60.0  # seconds before the first retry (Lambda: about a minute), doubling
VISIBILITY_RANGE = (0, 43200)  # seconds
BATCH_RANGE = (1, 10000)
WINDOW_RANGE = (0, 300)  # seconds
CONCURRENCY_RANGE = (2, 1000)
BUCKET_EVENTS = ("created", "removed")


@dataclass(frozen=True)
class Destination:
    """Where an asynchronous invocation's outcome record goes."""

    kind: DestinationKind
    # A function's name, a queue's, or a file's (JSON lines): its path relative to the
    # manifest's directory, posix, without '.' or '..' parts, e.g. "out/ok.jsonl".
    target: str


@dataclass(frozen=True)
class AsyncConfig:
    maximum_retry_attempts: int = 2
    maximum_event_age: int = 21600
    retry_delay: float = DEFAULT_RETRY_DELAY
    on_success: Destination | None = None
    on_failure: Destination | None = None
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class QueueSource:
    """An event source mapping: the queue polled in batches for the function."""

    queue: str
    batch_size: int = 10
    maximum_batching_window: int = 0  # seconds to gather a batch
    maximum_concurrency: int = 2  # environments the mapping may keep busy
    report_batch_item_failures: bool = False
    # Lambda event-filtering patterns (JSON text); a message none matches is deleted unseen.
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleSource:
    expression: str  # rate(...) or cron(...), EventBridge syntax


@dataclass(frozen=True)
class BucketSource:
    bucket: str
    events: tuple[str, ...] = BUCKET_EVENTS
    prefix: str = ""
    suffix: str = ""


EventSource = QueueSource | ScheduleSource | BucketSource


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int = 30
    max_receive_count: int | None = None
    dead_letter_queue: str | None = None


@dataclass(frozen=True)
class BucketSpec:
    name: str
    path: Path  # absolute


@dataclass(frozen=True)
class Triggers:
    """A function's event sources and asynchronous settings, as the manifest gives them."""

    async_config: AsyncConfig = field(default_factory=AsyncConfig)
    events: tuple[EventSource, ...] = ()
