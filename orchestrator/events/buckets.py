"""Local buckets (the S3 role): a directory's files as objects, and the S3 events they make.

Pure core: a ``Snapshot`` maps each object key (the file's path relative to the bucket directory,
'/'-separated) to its ``ObjectInfo``; ``changes`` compares two snapshots, ``matches`` applies a
``BucketSource``'s filter and ``s3_event`` builds the notification S3 would send. The one I/O
piece is ``scan``, which reads a directory into a snapshot.

Names starting with '.' (files or directories, at any depth) are not objects: editors and tools
write their temporary and state files under such names (``.x.swp``, ``.git``), and an object
must not appear and vanish with each save.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.manifest.triggers import BucketSource

ChangeKind = Literal["created", "removed"]

_EVENT_NAMES: dict[ChangeKind, str] = {
    "created": "ObjectCreated:Put",
    "removed": "ObjectRemoved:Delete",
}


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    mtime_ns: int
    etag: str  # MD5 hex of the content, as S3 gives it for a single-part upload


Snapshot = dict[str, ObjectInfo]


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    key: str
    info: ObjectInfo  # the new state for "created", the last known one for "removed"


def scan(path: Path, previous: Snapshot | None = None) -> Snapshot:
    """The objects under ``path``; etags are taken from ``previous`` when size and mtime agree.

    A file or directory that vanishes while being scanned is left out; a missing bucket
    directory itself raises ``FileNotFoundError``.
    """
    known = previous or {}
    snapshot: Snapshot = {}
    for key, entry in _walk(path, ""):
        try:
            stat = entry.stat()
            old = known.get(key)
            if old is not None and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
                etag = old.etag
            else:
                etag = _md5(entry.path)
        except FileNotFoundError:
            continue
        snapshot[key] = ObjectInfo(stat.st_size, stat.st_mtime_ns, etag)
    return dict(sorted(snapshot.items()))


def _walk(directory: Path | str, prefix: str) -> list[tuple[str, os.DirEntry[str]]]:
    found: list[tuple[str, os.DirEntry[str]]] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        if not prefix:
            raise
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue
        key = prefix + entry.name
        try:
            # A linked directory is not followed (as os.walk does): a link upwards would loop.
            if entry.is_dir(follow_symlinks=False):
                found.extend(_walk(entry.path, key + "/"))
            elif entry.is_file():
                found.append((key, entry))
        except FileNotFoundError:
            continue
    return found


def _md5(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def changes(before: Snapshot, after: Snapshot) -> list[Change]:
    """What happened between two snapshots, by key; an overwrite is a creation, as in S3."""
    found: list[Change] = []
    for key in sorted(before.keys() | after.keys()):
        new = after.get(key)
        if new is None:
            found.append(Change("removed", key, before[key]))
            continue
        old = before.get(key)
        if old is None or (old.size, old.mtime_ns) != (new.size, new.mtime_ns):
            found.append(Change("created", key, new))
    return found


def matches(source: BucketSource, change: Change) -> bool:
    """Whether ``source``'s event kinds and key filter select ``change``."""
    return (
        change.kind in source.events
        and change.key.startswith(source.prefix)
        and change.key.endswith(source.suffix)
    )


def s3_event(bucket: str, change: Change, now: datetime.datetime) -> dict[str, Any]:
    """The S3 notification for one change, as a Lambda function receives it.

    ``now`` is the event time; a naive value is taken as UTC.
    """
    obj: dict[str, Any] = {"key": urllib.parse.quote_plus(change.key, safe="/")}
    if change.kind == "created":
        obj["size"] = change.info.size
        obj["eTag"] = change.info.etag
    obj["sequencer"] = _next_sequencer()
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": _utc(now).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": _EVENT_NAMES[change.kind],
        "userIdentity": {"principalId": f"AWS:{ACCOUNT_ID}"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(56)).decode("ascii"),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "lrun",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": ACCOUNT_ID},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


_sequencer_lock = threading.Lock()
_last_sequencer = 0


def _next_sequencer() -> str:
    # S3 consumers order events for one key by sequencer; nanoseconds since the epoch keep it
    # increasing across restarts too, and fit 16 hex digits until the year 2554.
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(time.time_ns(), _last_sequencer + 1)
        return f"{_last_sequencer:016X}"
