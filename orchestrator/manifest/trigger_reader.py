"""Reading the manifest's triggers: queues, buckets, and each function's ``async`` and ``events``.

Part of the manifest's reading (``orchestrator.manifest``), apart only to keep modules small: each
function takes the manifest's reader and uses its typed field helpers, so every problem is
located and worded like the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

import yaml

from orchestrator.errors import did_you_mean as _did_you_mean
from orchestrator.errors import show as _show
from orchestrator.manifest.reader import Items, Reader
from orchestrator.manifest.triggers import (
    BATCH_RANGE,
    BUCKET_EVENTS,
    CONCURRENCY_RANGE,
    EVENT_AGE_RANGE,
    RETRY_RANGE,
    VISIBILITY_RANGE,
    WINDOW_RANGE,
    AsyncConfig,
    BucketSource,
    BucketSpec,
    Destination,
    EventSource,
    QueueSource,
    QueueSpec,
    ScheduleSource,
)

ASYNC_KEYS = frozenset(
    {
        "maximum_retry_attempts",
        "maximum_event_age",
        "retry_delay",
        "on_success",
        "on_failure",
        "dead_letter_queue",
    }
)
QUEUE_KEYS = frozenset({"visibility_timeout", "max_receive_count", "dead_letter_queue"})
SOURCE_KEYS = {
    "queue": frozenset(
        {
            "queue",
            "batch_size",
            "maximum_batching_window",
            "maximum_concurrency",
            "report_batch_item_failures",
            "filter",
        }
    ),
    "schedule": frozenset({"schedule"}),
    "bucket": frozenset({"bucket", "events", "prefix", "suffix"}),
}
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_FUNCTION_NAME_RULE = "use 1 to 64 letters, digits, hyphens or underscores"


def read_resources(self: Reader, items: Items) -> None:
    for kind in ("queues", "buckets"):
        key, node = items.get(kind, (None, None))
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            self.add(key, kind, f"{_show(self.value(node))} is not a mapping of {kind}")
            continue
        for name, (name_node, spec_node) in self.items(node, kind, None).items():
            if not _NAME.fullmatch(name):
                fix = _FUNCTION_NAME_RULE
                self.add(name_node, f"{kind}.{name}", f"name {name!r} is invalid; {fix}")
            if kind == "queues":
                _queue(self, name, spec_node)
            else:
                _bucket(self, name, spec_node)


def _queue(self: Reader, name: str, node: yaml.Node) -> None:
    if isinstance(node, yaml.ScalarNode) and self.value(node) is None:
        self.queues[name] = QueueSpec(name)  # `orders:` alone: all defaults
        return
    with self.section(node, f"queues.{name}", QUEUE_KEYS) as ok:
        if not ok:
            return
        spec = QueueSpec(
            name,
            self.integer("visibility_timeout", *VISIBILITY_RANGE, "seconds", 30),
            self.integer("max_receive_count", 1, 1000, "", None),
            self.refer("dead_letter_queue", "queues"),
        )
        if spec.dead_letter_queue == name:
            where = f"queues.{name}.dead_letter_queue"
            fix = "name another queue as its dead-letter queue"
            self.add(self.fields["dead_letter_queue"][1], where, f"{name!r} is this queue; {fix}")
        elif (spec.max_receive_count is None) != (spec.dead_letter_queue is None):
            fix = (
                "a redrive needs both max_receive_count and dead_letter_queue; give both or neither"
            )
            self.add(node, f"queues.{name}", fix)
        self.queues[name] = spec


def _bucket(self: Reader, name: str, node: yaml.Node) -> None:
    with self.section(node, f"buckets.{name}", frozenset({"path"})) as ok:
        if not ok:
            return
        got = self.get("path")
        if got is None or not isinstance(got[1], str) or not got[1]:
            fix = "path must be a directory, relative to the manifest, e.g. path: ./uploads"
            self.add(got[0] if got else None, f"buckets.{name}.path", f"missing path; {fix}")
            return
        self.buckets[name] = BucketSpec(name, (self.base / got[1]).resolve())


def read_async(self: Reader) -> AsyncConfig:
    if (got := self.get("async")) is None:
        return AsyncConfig()
    with self.section(got[0], got[2], ASYNC_KEYS) as ok:
        if not ok:
            return AsyncConfig()
        delay = self.get("retry_delay")
        retry_delay = 60.0
        if delay is not None:
            if isinstance(delay[1], bool) or not isinstance(delay[1], int | float):
                fix = "retry_delay must be a number of seconds, e.g. 1"
                self.add(delay[0], delay[2], f"{_show(delay[1])} is not a number; {fix}")
            elif not 0 <= delay[1] <= 3600:
                fix = "retry_delay must be from 0 to 3600 seconds"
                self.add(delay[0], delay[2], f"{delay[1]} is out of range; {fix}")
            else:
                retry_delay = float(delay[1])
        return AsyncConfig(
            self.integer("maximum_retry_attempts", *RETRY_RANGE, "", 2),
            self.integer("maximum_event_age", *EVENT_AGE_RANGE, "seconds", 21600),
            retry_delay,
            _destination(self, "on_success"),
            _destination(self, "on_failure"),
            self.refer("dead_letter_queue", "queues"),
        )


def _destination(self: Reader, field: str) -> Destination | None:
    if (got := self.get(field)) is None:
        return None
    node, value, where = got
    fix = f"write {field}: {{function: NAME}}, {{queue: NAME}} or {{file: ./path.jsonl}}"
    if not isinstance(value, dict) or len(value) != 1:
        self.add(node, where, f"{_show(value)} is not a destination; {fix}")
        return None
    ((kind, target),) = value.items()
    if kind not in ("function", "queue", "file") or not isinstance(target, str) or not target:
        self.add(node, where, f"{_show(value)} is not a destination; {fix}")
        return None
    if kind == "file":
        name = _file_name(self, node, where, target)
        return None if name is None else Destination("file", name)
    self.references.append((node, where, "functions" if kind == "function" else "queues", target))
    return Destination(kind, target)


def _file_name(self: Reader, node: yaml.Node, where: str, target: str) -> str | None:
    """A file destination's name: its path relative to the manifest's directory, which it must
    stay inside (DESIGN D9): the API may only name files declared here, and writing is confined
    to this directory again at write time (``events.destination_files``)."""
    path = PurePosixPath(target)
    fix = f"a file destination must be a path inside {self.base}, e.g. {{file: ./out/ok.jsonl}}"
    if path.is_absolute():
        try:
            path = path.relative_to(self.base)
        except ValueError:
            self.add(node, where, f"{target!r} is outside the manifest's directory; {fix}")
            return None
    parts = [part for part in path.parts if part != "."]
    if ".." in parts or not parts:
        what = "goes up with '..'" if parts else "is not a file path"
        self.add(node, where, f"{target!r} {what}; {fix}")
        return None
    # lrun never follows a symbolic link when it writes there (one could point anywhere, and
    # be changed at any time): say so now rather than at the first event.
    for depth in range(1, len(parts) + 1):
        if (self.base.joinpath(*parts[:depth])).is_symlink():
            link = PurePosixPath(*parts[:depth]).as_posix()
            what = f"passes through the symbolic link {link!r}, which lrun does not follow"
            self.add(node, where, f"{target!r} {what}; {fix}")
            return None
    return PurePosixPath(*parts).as_posix()


def read_events(self: Reader) -> tuple[EventSource, ...]:
    if (got := self.get("events")) is None:
        return ()
    node, _, where = got
    if not isinstance(node, yaml.SequenceNode):
        fix = "write a list, e.g. events: [{queue: orders}, {schedule: rate(1 minute)}]"
        self.add(node, where, f"{_show(self.value(node))} is not a list; {fix}")
        return ()
    sources: list[EventSource] = []
    for index, item in enumerate(node.value):
        path = f"{where}[{index}]"
        keys = (
            {str(k.value) for k, _ in item.value} if isinstance(item, yaml.MappingNode) else set()
        )
        kinds = [kind for kind in SOURCE_KEYS if kind in keys]
        if len(kinds) != 1:
            fix = "each event source has exactly one of: queue, schedule, bucket"
            self.add(item, path, f"{_show(self.value(item))} is not an event source; {fix}")
            continue
        with self.section(item, path, SOURCE_KEYS[kinds[0]]) as ok:
            if ok:
                source = _event_source(self, kinds[0])
                if source is not None:
                    sources.append(source)
    return tuple(sources)


def _event_source(self: Reader, kind: str) -> EventSource | None:
    if kind == "schedule":
        expression = self.text("schedule", None, "write rate(5 minutes) or cron(0 12 * * ? *)")
        if expression is None:
            return None
        from orchestrator.manifest.schedule import ScheduleError, parse

        try:
            parse(expression)
        except ScheduleError as exc:
            self.add(self.fields["schedule"][1], f"{self.path}.schedule", str(exc))
            return None
        return ScheduleSource(expression)
    if kind == "queue":
        queue = self.refer("queue", "queues")
        flag = self.get("report_batch_item_failures")
        report = False
        if flag is not None:
            if not isinstance(flag[1], bool):
                self.add(flag[0], flag[2], f"{_show(flag[1])} is not true or false")
            else:
                report = flag[1]
        source = QueueSource(
            queue or "",
            self.integer("batch_size", *BATCH_RANGE, "", 10),
            self.integer("maximum_batching_window", *WINDOW_RANGE, "seconds", 0),
            self.integer("maximum_concurrency", *CONCURRENCY_RANGE, "", 2),
            report,
            _filters(self),
        )
        return source if queue else None
    bucket = self.refer("bucket", "buckets")
    events = BUCKET_EVENTS
    if (got := self.get("events")) is not None:
        value = got[1]
        if not isinstance(value, list) or not value or not set(value) <= set(BUCKET_EVENTS):
            fix = "events must be a list of: created, removed"
            self.add(got[0], got[2], f"{_show(value)} is not a list of bucket events; {fix}")
        else:
            events = tuple(value)
    prefix = self.text("prefix", None, "prefix must be a string") or ""
    suffix = self.text("suffix", None, "suffix must be a string") or ""
    return BucketSource(bucket, events, prefix, suffix) if bucket else None


def _filters(self: Reader) -> tuple[str, ...]:
    """``filter:`` of a queue source: one event-filtering pattern (a mapping) or a list of up to
    five; a message none matches is deleted without invoking the function, as on AWS."""
    if (got := self.get("filter")) is None:
        return ()
    from orchestrator.manifest.event_filter import MAX_FILTERS, FilterError, parse

    node, value, where = got
    patterns = value if isinstance(value, list) else [value]
    fix = 'write e.g. filter: {body: {kind: ["order"]}} or a list of up to 5 such patterns'
    if not patterns or len(patterns) > MAX_FILTERS:
        self.add(node, where, f"{_show(value)} is not 1 to {MAX_FILTERS} patterns; {fix}")
        return ()
    texts: list[str] = []
    for index, pattern in enumerate(patterns):
        at = where if not isinstance(value, list) else f"{where}[{index}]"
        if not isinstance(pattern, dict):
            self.add(node, at, f"{_show(pattern)} is not a pattern; {fix}")
            continue
        try:
            texts.append(parse(json.dumps(pattern)).text)
        except (FilterError, TypeError, ValueError) as exc:
            self.add(node, at, f"invalid filter pattern: {exc}; {fix}")
    return tuple(texts)


def check_references(self: Reader, functions: Mapping[str, object]) -> None:
    known = {"functions": functions, "queues": self.queues, "buckets": self.buckets}
    for node, where, kind, name in self.references:
        if name not in known[kind]:
            hint = _did_you_mean(name, known[kind])
            names = ", ".join(known[kind]) or "none"
            fix = f"{hint + ' ' if hint else ''}define it under {kind}: (there: {names})"
            self.add(node, where, f"unknown {kind[:-1]} {name!r}; {fix}")
