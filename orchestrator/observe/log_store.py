"""Log events kept as CloudWatch Logs keeps them: groups, streams, events; bounded on disk.

Every invocation's log (START, the function's output, END, REPORT; or the JSON records) becomes
events, one per line, in the log group of its function (``/aws/lambda/<function>`` or its
LoggingConfig's group) and the stream of its environment (``YYYY/MM/DD/[version]<32 hex>``, the
name its runtime was given in ``AWS_LAMBDA_LOG_STREAM_NAME``).

Invocations are appended to segment files under ``<state dir>/logs/events/`` (``<seq>.jsonl``,
one JSON array per invocation: start and end times, ingestion time, group, stream, its log's
text; split into events, one per line, when read: one encoding per invocation keeps the writer
cheap) by the log book's writer thread, never in a request's path (DESIGN D5). A segment is
closed at ``segment_bytes``; the oldest segments are removed first when all of them pass
``max_bytes`` or when their newest event is older than ``max_age_s`` (DESIGN D9: a function
printing without end cannot fill the disk). Names from the API never become paths: files are
named by number only.

An index in memory (groups, streams, which segments hold which streams) answers the Describe
operations; reads go through the segments, in a thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 256 * MB
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
MAX_MESSAGE = 256 * 1024  # CloudWatch's event size limit: longer lines are cut there


@dataclass(frozen=True)
class StoreLimits:
    max_bytes: int = DEFAULT_MAX_BYTES  # all segments together
    max_age_s: float = DEFAULT_MAX_AGE_S  # events older than this are dropped
    segment_bytes: int = 4 * MB  # one segment file, before the next is begun

    def __post_init__(self) -> None:
        if self.segment_bytes > self.max_bytes // 4:  # at least four segments: drop by quarters
            object.__setattr__(self, "segment_bytes", max(1024, self.max_bytes // 4))

    @property
    def retention_days(self) -> int:
        return max(1, round(self.max_age_s / 86400))


@dataclass(frozen=True)
class LogEvent:
    group: str
    stream: str
    timestamp: int  # ms since the epoch
    ingestion: int
    message: str
    position: tuple[int, int, int]  # (segment, byte offset of its record, line in the record)

    @property
    def resume(self) -> tuple[int, int, int]:
        """Where to go on reading after this event."""
        return (self.position[0], self.position[1], self.position[2] + 1)

    @property
    def event_id(self) -> str:
        return f"{self.position[0]:016d}{self.position[1]:014d}{self.position[2]:06d}"


@dataclass
class StreamInfo:
    name: str
    created: int
    first_event: int
    last_event: int
    last_ingestion: int
    stored_bytes: int = 0


@dataclass
class GroupInfo:
    name: str
    created: int
    streams: dict[str, StreamInfo] = field(default_factory=dict)

    @property
    def stored_bytes(self) -> int:
        return sum(s.stored_bytes for s in self.streams.values())


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    newest: int = 0  # ms of its newest event
    streams: set[tuple[str, str]] = field(default_factory=set)


class LogStore:
    """Groups, streams and events on disk. ``add`` runs in the log writer's thread, reads in
    others; one lock keeps the index whole."""

    def __init__(self, directory: Path, limits: StoreLimits | None = None) -> None:
        self.directory = directory
        self.limits = limits or StoreLimits()
        self.groups: dict[str, GroupInfo] = {}
        self._segments: list[_Segment] = []
        self._lock = threading.Lock()
        self._loaded = False

    # Writing

    def encode(
        self, records: Iterable[tuple[str, str, int, int, str]], now_ms: int | None = None
    ) -> list[tuple[str, str, int, int, int, bytes]]:
        """Invocations' logs, (group, stream, start ms, end ms, text), as the lines ``write``
        appends: done on the event loop, where the log book puts its text together too (Python
        work in the writer's thread would fight the loop for the interpreter lock)."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        return [
            (
                group,
                stream,
                start,
                end,
                now,
                json.dumps([start, end, now, group, stream, text]).encode(),
            )
            for group, stream, start, end, text in records
            if text
        ]

    def add(
        self, records: Iterable[tuple[str, str, int, int, str]], now_ms: int | None = None
    ) -> None:
        """Append invocations' logs, (group, stream, start ms, end ms, text)."""
        self.write(self.encode(records, now_ms))

    def write(self, lines: list[tuple[str, str, int, int, int, bytes]]) -> None:
        """Append encoded invocations; then drop what is over the limits. From a thread."""
        self._load()
        if not lines:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        now = lines[-1][4]
        with self._lock:
            segment = self._current()
            out = open(segment.path, "ab")  # noqa: SIM115 - closed below, whatever happens
            try:
                for group, stream, start, end, _, data in lines:
                    if segment.size >= self.limits.segment_bytes:
                        out.close()
                        segment = self._new_segment()
                        out = open(segment.path, "ab")  # noqa: SIM115
                    out.write(data + b"\n")
                    segment.size += len(data) + 1
                    segment.newest = max(segment.newest, end)
                    segment.streams.add((group, stream))
                    self._index(group, stream, start, end, now, len(data) + 1)
            finally:
                out.close()
            self._trim(now)

    def _current(self) -> _Segment:
        if self._segments and self._segments[-1].size < self.limits.segment_bytes:
            return self._segments[-1]
        return self._new_segment()

    def _new_segment(self) -> _Segment:
        seq = self._segments[-1].seq + 1 if self._segments else 1
        segment = _Segment(seq, self.directory / f"{seq:016d}.jsonl")
        self._segments.append(segment)
        return segment

    def _index(self, group: str, stream: str, start: int, end: int, now: int, size: int) -> None:
        info = self.groups.get(group)
        if info is None:
            info = self.groups[group] = GroupInfo(group, now)
        found = info.streams.get(stream)
        if found is None:
            found = info.streams[stream] = StreamInfo(stream, now, start, end, now)
        found.first_event = min(found.first_event, start)
        found.last_event = max(found.last_event, end)
        found.last_ingestion = now
        found.stored_bytes += size

    def _trim(self, now: int) -> None:
        """Drop the oldest segments while over the size limit or past the age limit."""
        oldest_kept = now - int(self.limits.max_age_s * 1000)
        total = sum(s.size for s in self._segments)
        while self._segments:
            first = self._segments[0]
            over = total > self.limits.max_bytes and len(self._segments) > 1
            if not over and first.newest >= oldest_kept:
                break
            self._segments.pop(0)
            total -= first.size
            with contextlib.suppress(FileNotFoundError):
                first.path.unlink()
        self._reindex()

    def _reindex(self) -> None:
        """Streams and groups whose every segment is gone are gone too."""
        held = set().union(*(s.streams for s in self._segments)) if self._segments else set()
        for name in list(self.groups):
            group = self.groups[name]
            for stream in [s for s in group.streams if (name, s) not in held]:
                del group.streams[stream]
            if not group.streams:
                del self.groups[name]

    # Loading what an earlier server left

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            with contextlib.suppress(FileNotFoundError):
                names = sorted(
                    p
                    for p in os.listdir(self.directory)
                    if p.endswith(".jsonl") and p[:-6].isdigit()
                )
                for name in names:
                    segment = _Segment(int(name[:-6]), self.directory / name)
                    self._segments.append(segment)
                    for record in self._records_of(segment, 0):
                        _, start, end, ingestion, group, stream, text = record
                        segment.newest = max(segment.newest, end)
                        segment.streams.add((group, stream))
                        self._index(group, stream, start, end, ingestion, len(text) + 64)
                    with contextlib.suppress(OSError):
                        segment.size = segment.path.stat().st_size
            self._trim(int(time.time() * 1000))

    def load(self) -> None:
        """Read the index of what is on disk (once; in a thread)."""
        self._load()

    # Reading

    def events(
        self,
        group: str,
        streams: set[str] | None = None,
        after: tuple[int, int, int] = (0, 0, 0),
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> Iterator[LogEvent]:
        """The events of ``group`` (of ``streams`` only, if given) from position ``after`` on
        (segment, record offset, line), in the order they were stored, within
        [start_ms, end_ms)."""
        self._load()
        with self._lock:
            segments = [
                s
                for s in self._segments
                if s.seq >= after[0]
                and any(g == group and (streams is None or st in streams) for g, st in s.streams)
            ]
        for segment in segments:
            offset = after[1] if segment.seq == after[0] else 0
            for here, start, end, ingestion, group_name, stream, text in self._records_of(
                segment, offset
            ):
                if group_name != group or (streams is not None and stream not in streams):
                    continue
                if (start_ms is not None and end < start_ms) or (
                    end_ms is not None and start >= end_ms
                ):
                    continue
                skip = after[2] if (segment.seq, here) == after[:2] else 0
                for index, (timestamp, message) in enumerate(_lines(text, start, end)):
                    if index < skip:
                        continue
                    if start_ms is not None and timestamp < start_ms:
                        continue
                    if end_ms is not None and timestamp >= end_ms:
                        continue
                    yield LogEvent(
                        group, stream, timestamp, ingestion, message, (segment.seq, here, index)
                    )

    def _records_of(
        self, segment: _Segment, offset: int
    ) -> Iterator[tuple[int, int, int, int, str, str, str]]:
        """(offset, start, end, ingestion, group, stream, text) of each record from ``offset``."""
        try:
            with open(segment.path, "rb") as f:
                f.seek(max(0, offset))
                position = f.tell()
                for line in f:
                    here = position
                    position += len(line)
                    if not line.endswith(b"\n"):
                        break  # being written
                    try:
                        start, end, ingestion, group, stream, text = json.loads(line)
                    except (ValueError, TypeError):
                        continue
                    yield here, start, end, ingestion, group, stream, text
        except FileNotFoundError:  # dropped meanwhile
            return

    def stored_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)


_CLOSING = ("END RequestId:", "REPORT RequestId:")


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    """An invocation's log as (timestamp, message) events, one per non-empty line: lines up to
    END (or platform.report) carry the invocation's start, END and REPORT its end (the text
    format's lines carry no time of their own). A line is cut at CloudWatch's event size."""
    ended = False
    for line in text.splitlines():
        if not line:
            continue
        ended = ended or line.startswith(_CLOSING) or "platform.report" in line[:80]
        yield (end if ended else start), line[:MAX_MESSAGE]
