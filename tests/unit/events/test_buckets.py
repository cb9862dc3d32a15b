"""Unit tests for orchestrator.buckets: scanning a directory, its changes, filters and S3 events."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.events.buckets import (
    Change,
    ObjectInfo,
    Snapshot,
    changes,
    matches,
    s3_event,
    scan,
)
from orchestrator.manifest.triggers import BucketSource

NOW = datetime.datetime(2026, 3, 2, 10, 20, 30, 123456, tzinfo=datetime.UTC)
HEX16 = re.compile(r"[0-9A-F]{16}")


def put(root: Path, key: str, content: bytes) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def info(size: int = 1, mtime_ns: int = 1, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(size, mtime_ns, etag)


def record(event: dict[str, Any]) -> dict[str, Any]:
    assert list(event) == ["Records"]
    assert len(event["Records"]) == 1
    only: dict[str, Any] = event["Records"][0]
    return only


# scan


def test_scan_lists_nested_files_by_slash_separated_key(tmp_path: Path) -> None:
    top = put(tmp_path, "top.txt", b"hello")
    deep = put(tmp_path, "a/b/c.json", b"{}")
    (tmp_path / "empty").mkdir()

    snapshot = scan(tmp_path)

    assert list(snapshot) == ["a/b/c.json", "top.txt"]
    assert snapshot["top.txt"] == ObjectInfo(5, top.stat().st_mtime_ns, md5(b"hello"))
    assert snapshot["a/b/c.json"] == ObjectInfo(2, deep.stat().st_mtime_ns, md5(b"{}"))


def test_scan_etag_is_the_md5_of_the_content(tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 7)  # more than one read's worth
    put(tmp_path, "big.bin", content)
    put(tmp_path, "empty.txt", b"")

    snapshot = scan(tmp_path)

    assert snapshot["big.bin"].etag == md5(content)
    assert snapshot["big.bin"].size == len(content)
    assert snapshot["empty.txt"].etag == "d41d8cd98f00b204e9800998ecf8427e"


def test_scan_skips_hidden_files_and_directories(tmp_path: Path) -> None:
    put(tmp_path, "report.txt", b"x")
    put(tmp_path, ".report.txt.swp", b"swap")
    put(tmp_path, "sub/.hidden", b"x")
    put(tmp_path, ".git/config", b"x")
    put(tmp_path, "sub/.cache/data", b"x")

    assert list(scan(tmp_path)) == ["report.txt"]


def test_scan_of_an_empty_bucket_is_empty(tmp_path: Path) -> None:
    assert scan(tmp_path) == {}


def test_scan_of_a_missing_bucket_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan(tmp_path / "nowhere")


def test_scan_does_not_follow_a_linked_directory(tmp_path: Path) -> None:
    put(tmp_path, "a.txt", b"x")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")

    assert list(scan(tmp_path)) == ["a.txt", "link.txt"]


def test_scan_keeps_the_previous_etag_of_an_unchanged_file(tmp_path: Path) -> None:
    path = put(tmp_path, "data.csv", b"a,b\n")
    first = scan(tmp_path)
    # A wrong etag survives only if the file was not read again.
    previous = {"data.csv": ObjectInfo(first["data.csv"].size, first["data.csv"].mtime_ns, "kept")}

    assert scan(tmp_path, previous)["data.csv"].etag == "kept"

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    rescanned = scan(tmp_path, previous)["data.csv"]
    assert rescanned.etag == md5(b"a,b\n")
    assert rescanned.mtime_ns == stat.st_mtime_ns + 1_000_000_000


def test_scan_recomputes_the_etag_when_the_size_changes(tmp_path: Path) -> None:
    path = put(tmp_path, "data.csv", b"a,b\n")
    stat = path.stat()
    previous = {"data.csv": ObjectInfo(stat.st_size, stat.st_mtime_ns, "stale")}
    path.write_bytes(b"a,b,c\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, new size

    assert scan(tmp_path, previous)["data.csv"].etag == md5(b"a,b,c\n")


def test_scan_then_changes_sees_a_new_file(tmp_path: Path) -> None:
    put(tmp_path, "old.txt", b"x")
    before = scan(tmp_path)
    put(tmp_path, "in/new.txt", b"y")
    after = scan(tmp_path, before)

    assert [(c.kind, c.key) for c in changes(before, after)] == [("created", "in/new.txt")]


# changes


def test_changes_reports_created_overwritten_and_removed_sorted_by_key() -> None:
    before: Snapshot = {
        "b/kept": info(1, 10, "k"),
        "c/overwritten": info(1, 10, "o1"),
        "a/removed": info(3, 10, "r"),
        "d/touched": info(1, 10, "t"),
    }
    after: Snapshot = {
        "b/kept": info(1, 10, "k"),
        "c/overwritten": info(2, 10, "o2"),
        "d/touched": info(1, 11, "t"),
        "0/created": info(4, 12, "n"),
    }

    assert changes(before, after) == [
        Change("created", "0/created", info(4, 12, "n")),
        Change("removed", "a/removed", info(3, 10, "r")),
        Change("created", "c/overwritten", info(2, 10, "o2")),
        Change("created", "d/touched", info(1, 11, "t")),
    ]


def test_changes_between_equal_snapshots_is_empty() -> None:
    snapshot: Snapshot = {"a": info(), "b": info(2, 2, "x")}
    assert changes(snapshot, dict(snapshot)) == []
    assert changes({}, {}) == []


def test_changes_from_nothing_creates_everything_and_to_nothing_removes_everything() -> None:
    snapshot: Snapshot = {"z": info(), "a": info()}
    assert [(c.kind, c.key) for c in changes({}, snapshot)] == [("created", "a"), ("created", "z")]
    assert [(c.kind, c.key) for c in changes(snapshot, {})] == [("removed", "a"), ("removed", "z")]


# matches


@pytest.mark.parametrize(
    ("source", "change", "expected"),
    [
        (BucketSource("b"), Change("created", "x", info()), True),
        (BucketSource("b"), Change("removed", "x", info()), True),
        (BucketSource("b", events=("created",)), Change("removed", "x", info()), False),
        (BucketSource("b", events=("removed",)), Change("removed", "x", info()), True),
        (BucketSource("b", events=("removed",)), Change("created", "x", info()), False),
        (BucketSource("b", prefix="in/"), Change("created", "in/a.csv", info()), True),
        (BucketSource("b", prefix="in/"), Change("created", "out/a.csv", info()), False),
        (BucketSource("b", prefix="in/"), Change("created", "in", info()), False),
        (BucketSource("b", suffix=".csv"), Change("created", "in/a.csv", info()), True),
        (BucketSource("b", suffix=".csv"), Change("created", "in/a.csv.tmp", info()), False),
        (
            BucketSource("b", events=("created",), prefix="in/", suffix=".csv"),
            Change("created", "in/a.csv", info()),
            True,
        ),
        (
            BucketSource("b", events=("created",), prefix="in/", suffix=".csv"),
            Change("created", "in/a.json", info()),
            False,
        ),
        (
            BucketSource("b", events=("created",), prefix="in/", suffix=".csv"),
            Change("removed", "in/a.csv", info()),
            False,
        ),
    ],
)
def test_matches_applies_kinds_prefix_and_suffix(
    source: BucketSource, change: Change, expected: bool
) -> None:
    assert matches(source, change) is expected


# s3_event


def test_s3_event_for_a_created_object_has_s3s_exact_shape() -> None:
    change = Change("created", "in/data.csv", ObjectInfo(1305107, 1, md5(b"x")))

    event = s3_event("uploads", change, NOW)
    rec = record(event)

    assert set(rec) == {
        "eventVersion",
        "eventSource",
        "awsRegion",
        "eventTime",
        "eventName",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "s3",
    }
    assert rec["eventVersion"] == "2.1"
    assert rec["eventSource"] == "aws:s3"
    assert rec["awsRegion"] == REGION
    assert rec["eventTime"] == "2026-03-02T10:20:30.123Z"
    assert rec["eventName"] == "ObjectCreated:Put"
    assert set(rec["userIdentity"]) == {"principalId"}
    assert isinstance(rec["userIdentity"]["principalId"], str)
    assert rec["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert set(rec["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}
    assert HEX16.fullmatch(rec["responseElements"]["x-amz-request-id"])
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", rec["responseElements"]["x-amz-id-2"])
    s3 = rec["s3"]
    assert set(s3) == {"s3SchemaVersion", "configurationId", "bucket", "object"}
    assert s3["s3SchemaVersion"] == "1.0"
    assert s3["configurationId"] == "lrun"
    assert s3["bucket"] == {
        "name": "uploads",
        "ownerIdentity": {"principalId": s3["bucket"]["ownerIdentity"]["principalId"]},
        "arn": "arn:aws:s3:::uploads",
    }
    assert isinstance(s3["bucket"]["ownerIdentity"]["principalId"], str)
    assert ACCOUNT_ID in s3["bucket"]["ownerIdentity"]["principalId"]
    obj = s3["object"]
    assert list(obj) == ["key", "size", "eTag", "sequencer"]
    assert obj["key"] == "in/data.csv"
    assert obj["size"] == 1305107
    assert isinstance(obj["size"], int)
    assert obj["eTag"] == md5(b"x")
    assert HEX16.fullmatch(obj["sequencer"])
    assert json.loads(json.dumps(event)) == event


def test_s3_event_for_a_removed_object_has_no_size_or_etag() -> None:
    rec = record(s3_event("uploads", Change("removed", "old.txt", info(9, 9, "e")), NOW))

    assert rec["eventName"] == "ObjectRemoved:Delete"
    assert list(rec["s3"]["object"]) == ["key", "sequencer"]
    assert rec["s3"]["object"]["key"] == "old.txt"
    assert HEX16.fullmatch(rec["s3"]["object"]["sequencer"])


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("my photos/été 2024.jpg", "my+photos/%C3%A9t%C3%A9+2024.jpg"),
        ("a+b=c&d.txt", "a%2Bb%3Dc%26d.txt"),
        ("deep/er/file-name_v1.0~x", "deep/er/file-name_v1.0~x"),
        ("日本/語.txt", "%E6%97%A5%E6%9C%AC/%E8%AA%9E.txt"),
    ],
)
def test_s3_event_url_encodes_the_key_as_s3_does(key: str, encoded: str) -> None:
    rec = record(s3_event("b", Change("created", key, info()), NOW))
    assert rec["s3"]["object"]["key"] == encoded


def test_s3_event_sequencers_increase_across_calls() -> None:
    change = Change("created", "k", info())
    sequencers = [
        record(s3_event("b", change, NOW))["s3"]["object"]["sequencer"] for _ in range(50)
    ]

    assert all(HEX16.fullmatch(s) for s in sequencers)
    assert sequencers == sorted(sequencers)
    assert len(set(sequencers)) == len(sequencers)


def test_s3_event_request_ids_differ_between_events() -> None:
    change = Change("created", "k", info())
    first, second = (record(s3_event("b", change, NOW)) for _ in range(2))
    assert first["responseElements"] != second["responseElements"]


def test_s3_event_time_is_utc_with_milliseconds() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=1))
    change = Change("created", "k", info())

    local = datetime.datetime(2026, 3, 2, 11, 20, 30, 5000, tzinfo=paris)
    assert record(s3_event("b", change, local))["eventTime"] == "2026-03-02T10:20:30.005Z"
    naive = datetime.datetime(2026, 3, 2, 10, 20, 30)
    assert record(s3_event("b", change, naive))["eventTime"] == "2026-03-02T10:20:30.000Z"
