"""The log store: invocations' logs kept by group and stream in segments, read back as one event
per line, bounded by size and age (the attack: a function logging without end), with an index
rebuilt after a restart."""

from __future__ import annotations

import time
from pathlib import Path

from orchestrator.observe.log_store import LogStore, StoreLimits

STREAM = "2026/12/01/[$LATEST]" + "a" * 32
OTHER = "2026/12/01/[3]" + "b" * 32
RID = "0f5d0c6e-6d0f-4c1e-9d52-2a2f1b8e4e11"
LOG = (
    f"START RequestId: {RID} Version: $LATEST\nhello\n\nEND RequestId: {RID}\n"
    f"REPORT RequestId: {RID}\tDuration: 1.00 ms\t\n"
)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_an_invocation_becomes_one_event_per_line_stamped_by_start_and_end(
    tmp_path: Path,
) -> None:
    store = LogStore(tmp_path)
    t = now_ms()
    store.add([("/aws/lambda/a", STREAM, t, t + 5, LOG)])
    events = list(store.events("/aws/lambda/a"))
    assert [e.message.split(" ")[0] for e in events] == ["START", "hello", "END", "REPORT"]
    assert [e.timestamp for e in events] == [t, t, t + 5, t + 5]
    assert len({e.event_id for e in events}) == 4
    stream = store.groups["/aws/lambda/a"].streams[STREAM]
    assert (stream.first_event, stream.last_event) == (t, t + 5)


def test_events_by_group_stream_time_and_position(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    t = now_ms()
    store.add(
        [
            ("/aws/lambda/a", STREAM, t, t, "one\ntwo"),
            ("/aws/lambda/a", OTHER, t + 1, t + 1, "hello from 3"),
            ("/aws/lambda/b", STREAM, t + 2, t + 2, "other function"),
        ]
    )
    assert sorted(store.groups) == ["/aws/lambda/a", "/aws/lambda/b"]
    assert sorted(store.groups["/aws/lambda/a"].streams) == sorted([STREAM, OTHER])
    assert [e.message for e in store.events("/aws/lambda/a")] == ["one", "two", "hello from 3"]
    assert [e.message for e in store.events("/aws/lambda/a", {OTHER})] == ["hello from 3"]
    assert [e.message for e in store.events("/aws/lambda/a", start_ms=t + 1)] == ["hello from 3"]
    # Going on from an event's position gives what follows it, once: within a record too.
    first = next(iter(store.events("/aws/lambda/a")))
    assert [e.message for e in store.events("/aws/lambda/a", after=first.resume)] == [
        "two",
        "hello from 3",
    ]
    # Only numbers name files: a group or stream name never becomes a path.
    assert all(p.name[:-6].isdigit() for p in tmp_path.iterdir())


def test_the_index_is_rebuilt_from_disk(tmp_path: Path) -> None:
    LogStore(tmp_path).add([("/g", STREAM, now_ms(), now_ms(), "kept")])
    again = LogStore(tmp_path)
    again.load()
    assert list(again.groups) == ["/g"]
    assert [e.message for e in again.events("/g", {STREAM})] == ["kept"]
    again.add([("/g", STREAM, now_ms(), now_ms(), "more")])
    assert [e.message for e in again.events("/g")] == ["kept", "more"]


def test_attack_endless_logging_keeps_the_disk_bounded_oldest_dropped_first(
    tmp_path: Path,
) -> None:
    limits = StoreLimits(max_bytes=64 * 1024, segment_bytes=8 * 1024)
    store = LogStore(tmp_path, limits)
    line = "x" * 200
    for batch in range(200):  # about 2 MB offered, in 200 writes
        t = now_ms()
        store.add([("/g", STREAM, t, t, f"{batch:04d} {line}") for _ in range(50)])
        on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
        assert on_disk <= limits.max_bytes + limits.segment_bytes + 1024
    kept = [e.message[:4] for e in store.events("/g")]
    assert kept[-1] == "0199"  # the newest is kept
    assert kept[0] > "0150"  # the oldest went first


def test_events_past_the_age_limit_are_dropped(tmp_path: Path) -> None:
    store = LogStore(tmp_path, StoreLimits(max_age_s=3600))
    old = now_ms() - 2 * 3600 * 1000
    store.add([("/old", STREAM, old, old, "stale")])
    assert "/old" not in store.groups  # dropped as soon as it was written: too old to keep
    store.add([("/new", STREAM, now_ms(), now_ms(), "fresh")])
    assert list(store.groups) == ["/new"]


def test_a_line_is_cut_at_cloudwatchs_event_size(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.add([("/g", STREAM, now_ms(), now_ms(), "y" * 300_000)])
    assert len(next(iter(store.events("/g"))).message) == 256 * 1024
