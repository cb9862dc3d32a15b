"""The CloudWatch Logs API that tools use to read logs, over lrun's store of them
(``observe.log_store``): DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents.

AWS JSON 1.1 (``X-Amz-Target: Logs_20140328.<Operation>``) on the Lambda API's endpoint, behind
the same access checks (signatures scoped to ``logs``). Values are checked against botocore's
``logs`` model (lengths, patterns, ranges) with its ``InvalidParameterException``; a group or
stream that does not exist is ``ResourceNotFoundException`` with CloudWatch's messages.
Reads run in a thread: the store reads files.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from typing import Any

from orchestrator.api.aws_json import JsonTargets
from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import ServiceError
from orchestrator.observe.filter_pattern import FilterPatternError, compile_pattern
from orchestrator.observe.log_store import GroupInfo, LogEvent, LogStore

PREFIX = "Logs_20140328."
RESPONSE_BYTES = 1024 * 1024  # GetLogEvents and FilterLogEvents answer at most 1 MB of events
EVENT_LIMIT = 10_000
PAGE_LIMIT = 50  # DescribeLogGroups / DescribeLogStreams
GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
_GROUP = re.compile(r"[\.\-_/#A-Za-z0-9]+")
_IDENTIFIER = re.compile(r"[\w#+=/:,.@-]*")
_STREAM = re.compile(r"[^:*]*")


def add_logs_operations(targets: JsonTargets, store: LogStore) -> None:
    api = _LogsApi(store)
    operations: dict[str, Callable[[dict[str, Any]], Any]] = {
        "DescribeLogGroups": api.describe_log_groups,
        "DescribeLogStreams": api.describe_log_streams,
        "GetLogEvents": api.get_log_events,
        "FilterLogEvents": api.filter_log_events,
    }
    for name, operation in operations.items():
        targets.operations[PREFIX + name] = _threaded(operation)


def _threaded(operation: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    async def run(body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(operation, body)

    return run


def group_arn(name: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"


def _invalid(member: str, value: object, constraint: str) -> ServiceError:
    return ServiceError(
        "InvalidParameterException",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _text(body: dict[str, Any], member: str, pattern: re.Pattern[str], most: int) -> str | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(member, value, "Member must be a string")
    if not 1 <= len(value) <= most:
        raise _invalid(member, value, f"Member must have length between 1 and {most}")
    if not pattern.fullmatch(value):
        raise _invalid(
            member, value, f"Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def _number(body: dict[str, Any], member: str, low: int, high: int | None) -> int | None:
    value = body.get(member)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(member, value, "Member must be a number")
    if value < low or (high is not None and value > high):
        bound = (
            f"less than or equal to {high}"
            if high is not None and value > high
            else (f"greater than or equal to {low}")
        )
        raise _invalid(member, value, f"Member must have value {bound}")
    return value


def _token(value: object, parts: int) -> tuple[int, ...]:
    """A nextToken this API gave: numbers only, never trusted further."""
    try:
        text = base64.urlsafe_b64decode(str(value).encode()).decode()
        numbers = tuple(int(n) for n in text.split(":"))
        if len(numbers) != parts or min(numbers) < 0:
            raise ValueError
        return numbers
    except ValueError:
        raise ServiceError(
            "InvalidParameterException", "The specified nextToken is invalid."
        ) from None


def _make_token(*numbers: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, numbers)).encode()).decode()


class _LogsApi:
    def __init__(self, store: LogStore) -> None:
        self.store = store

    def _group(self, body: dict[str, Any]) -> GroupInfo:
        name = _text(body, "logGroupName", _GROUP, 512)
        identifier = _text(body, "logGroupIdentifier", _IDENTIFIER, 2048)
        if name is not None and identifier is not None:
            raise ServiceError(
                "InvalidParameterException",
                "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
            )
        if identifier is not None:
            name = identifier
            if identifier.startswith("arn:"):
                name = identifier.partition(":log-group:")[2].removesuffix(":*")
        if not name:
            raise ServiceError(
                "InvalidParameterException",
                "Should provide either a log group name or log group identifier.",
            )
        self.store.load()
        group = self.store.groups.get(name)
        if group is None:
            raise ServiceError("ResourceNotFoundException", GROUP_NOT_FOUND)
        return group

    def describe_log_groups(self, body: dict[str, Any]) -> dict[str, Any]:
        prefix = _text(body, "logGroupNamePrefix", _GROUP, 512)
        pattern = body.get("logGroupNamePattern")
        if pattern is not None and not (isinstance(pattern, str) and len(pattern) <= 512):
            raise _invalid("logGroupNamePattern", pattern, "Member must have length <= 512")
        if prefix is not None and pattern:
            raise ServiceError(
                "InvalidParameterException",
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            )
        limit = _number(body, "limit", 1, PAGE_LIMIT) or PAGE_LIMIT
        start = _token(body["nextToken"], 1)[0] if body.get("nextToken") else 0
        self.store.load()
        groups = sorted(self.store.groups.values(), key=lambda g: g.name)
        chosen = [
            g
            for g in groups
            if (prefix is None or g.name.startswith(prefix)) and (not pattern or pattern in g.name)
        ]
        page = chosen[start : start + limit]
        answer: dict[str, Any] = {
            "logGroups": [
                {
                    "logGroupName": g.name,
                    "creationTime": g.created,
                    "retentionInDays": self.store.limits.retention_days,
                    "metricFilterCount": 0,
                    "arn": group_arn(g.name) + ":*",
                    "storedBytes": g.stored_bytes,
                    "logGroupClass": "STANDARD",
                    "logGroupArn": group_arn(g.name),
                }
                for g in page
            ]
        }
        if start + limit < len(chosen):
            answer["nextToken"] = _make_token(start + limit)
        return answer

    def describe_log_streams(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        prefix = _text(body, "logStreamNamePrefix", _STREAM, 512)
        order = body.get("orderBy", "LogStreamName")
        if order not in ("LogStreamName", "LastEventTime"):
            raise _invalid(
                "orderBy",
                order,
                "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
            )
        if order == "LastEventTime" and prefix is not None:
            raise ServiceError(
                "InvalidParameterException",
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            )
        limit = _number(body, "limit", 1, PAGE_LIMIT) or PAGE_LIMIT
        start = _token(body["nextToken"], 1)[0] if body.get("nextToken") else 0
        streams = [
            s for s in list(group.streams.values()) if prefix is None or s.name.startswith(prefix)
        ]
        if order == "LogStreamName":
            streams.sort(key=lambda s: s.name, reverse=bool(body.get("descending")))
        else:
            streams.sort(key=lambda s: s.last_event, reverse=bool(body.get("descending")))
        page = streams[start : start + limit]
        answer: dict[str, Any] = {
            "logStreams": [
                {
                    "logStreamName": s.name,
                    "creationTime": s.created,
                    "firstEventTimestamp": s.first_event,
                    "lastEventTimestamp": s.last_event,
                    "lastIngestionTime": s.last_ingestion,
                    "uploadSequenceToken": "1",
                    "arn": f"{group_arn(group.name)}:log-stream:{s.name}",
                    "storedBytes": 0,  # deprecated on AWS too, where it is always 0
                }
                for s in page
            ]
        }
        if start + limit < len(streams):
            answer["nextToken"] = _make_token(start + limit)
        return answer

    def get_log_events(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        stream = _text(body, "logStreamName", _STREAM, 512)
        if stream is None:
            raise _invalid("logStreamName", None, "Member must not be null")
        if stream not in group.streams:
            raise ServiceError("ResourceNotFoundException", STREAM_NOT_FOUND)
        start_ms = _number(body, "startTime", 0, None)
        end_ms = _number(body, "endTime", 0, None)
        limit = _number(body, "limit", 1, EVENT_LIMIT) or EVENT_LIMIT
        events = list(self.store.events(group.name, {stream}, start_ms=start_ms, end_ms=end_ms))
        token = body.get("nextToken")
        if token:
            text = str(token)
            direction, _, rest = text.partition("/")
            if direction not in ("f", "b"):
                raise ServiceError(
                    "InvalidParameterException", "The specified nextToken is invalid."
                )
            index = min(_token(rest, 1)[0], len(events))
            forward = direction == "f"
        else:
            forward = bool(body.get("startFromHead"))
            index = 0 if forward else len(events)
        if forward:
            first, last = index, index
            size = 0
            while last < len(events) and last - first < limit:
                size += len(events[last].message.encode()) + 26
                if size > RESPONSE_BYTES and last > first:
                    break
                last += 1
        else:
            first, last = index, index
            size = 0
            while first > 0 and last - first < limit:
                size += len(events[first - 1].message.encode()) + 26
                if size > RESPONSE_BYTES and last > first:
                    break
                first -= 1
        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion}
                for e in events[first:last]
            ],
            "nextForwardToken": f"f/{_make_token(last)}",
            "nextBackwardToken": f"b/{_make_token(first)}",
        }

    def filter_log_events(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        names = body.get("logStreamNames")
        prefix = _text(body, "logStreamNamePrefix", _STREAM, 512)
        if names is not None and prefix is not None:
            raise ServiceError(
                "InvalidParameterException",
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            )
        streams: set[str] | None = None
        if names is not None:
            if not isinstance(names, list) or not 1 <= len(names) <= 100:
                raise _invalid("logStreamNames", names, "Member must have length between 1 and 100")
            streams = {str(n) for n in names}
        elif prefix is not None:
            streams = {s for s in list(group.streams) if s.startswith(prefix)}
        pattern = body.get("filterPattern") or ""
        if not isinstance(pattern, str):
            raise _invalid("filterPattern", pattern, "Member must be a string")
        if len(pattern) > 1024:
            raise _invalid(
                "filterPattern",
                pattern[:64] + "...",
                "Member must have length less than or equal to 1024",
            )
        try:
            matches = compile_pattern(pattern)
        except FilterPatternError as exc:
            raise ServiceError("InvalidParameterException", str(exc)) from None
        start_ms = _number(body, "startTime", 0, None)
        end_ms = _number(body, "endTime", 0, None)
        limit = _number(body, "limit", 1, EVENT_LIMIT) or EVENT_LIMIT
        after = _token(body["nextToken"], 3) if body.get("nextToken") else (0, 0, 0)
        found: list[LogEvent] = []
        size = 0
        more = False
        for event in self.store.events(
            group.name, streams, (after[0], after[1], after[2]), start_ms, end_ms
        ):
            if not matches(event.message):
                continue
            if len(found) >= limit or size + len(event.message) > RESPONSE_BYTES and found:
                more = True
                break
            found.append(event)
            size += len(event.message) + 100
        answer: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion,
                    "eventId": e.event_id,
                }
                for e in found
            ],
            "searchedLogStreams": [],
        }
        if more:
            answer["nextToken"] = _make_token(*found[-1].resume)
        return answer
