"""EventBridge schedule expressions: ``rate(...)`` and ``cron(...)``, and when they next fire.

Pure: ``parse`` validates an expression; ``next_fire`` gives the first firing time after a moment.
Cron has EventBridge's six fields (minutes hours day-of-month month day-of-week year), one of the
two day fields being ``?``; lists, ranges, steps and names (JAN, MON) are supported, the rarer
``L``, ``W`` and ``#`` are refused with a clear message. Times are UTC, as EventBridge's are.
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import LrunError

UTC = datetime.UTC
_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.+)\)")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}


class ScheduleError(LrunError):
    """A schedule expression EventBridge would refuse."""


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # day of month; None when '?'
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday ... 7 = Saturday; None when '?'
    years: frozenset[int] | None  # None: every year


Schedule = Rate | Cron


def parse(expression: str) -> Schedule:
    text = expression.strip()
    if rate := _RATE.fullmatch(text):
        value, written = int(rate[1]), rate[2]
        unit = written.rstrip("s")
        if value < 1:
            raise ScheduleError(f"{expression!r}: the rate must be at least 1 {unit}")
        if (value == 1) != (written == unit):  # EventBridge: rate(1 minute), rate(5 minutes)
            right = f"rate(1 {unit})" if value == 1 else f"rate({value} {unit}s)"
            raise ScheduleError(f"{expression!r}: write {right}")
        return Rate(value * _UNITS[unit])
    if cron := _CRON.fullmatch(text):
        return _cron(expression, cron[1].split())
    raise ScheduleError(
        f"{expression!r} is not a schedule expression; write rate(5 minutes) or "
        "cron(0 12 * * ? *) (EventBridge syntax, UTC)"
    )


def _cron(expression: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ScheduleError(
            f"{expression!r}: cron takes six fields (minutes hours day-of-month month "
            f"day-of-week year), not {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(
            f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    return Cron(
        _field(expression, minute, 0, 59, {}),
        _field(expression, hour, 0, 23, {}),
        None if dom == "?" else _field(expression, dom, 1, 31, {}),
        _field(expression, month, 1, 12, _MONTHS),
        None if dow == "?" else _field(expression, dow, 1, 7, _DAYS),
        None if year == "*" else _field(expression, year, 1970, 2199, {}),
    )


def _field(
    expression: str, text: str, low: int, high: int, names: dict[str, int]
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        for token in re.split(r"[-/]", part):
            known = token == "*" or token.isdigit() or token.upper() in names
            if not known and any(c in token.upper() for c in "LW#"):
                raise ScheduleError(f"{expression!r}: '{part}' (L, W, #) is not supported by lrun")
        base, _, step_text = part.partition("/")
        step = _number(expression, step_text, {}) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _number(expression, first, names), _number(expression, last, names)
        else:
            start = _number(expression, base, names)
            end = high if step_text else start
        if not low <= start <= high or not low <= end <= high or step < 1:
            raise ScheduleError(f"{expression!r}: '{part}' is outside {low}-{high}")
        if start > end:
            raise ScheduleError(
                f"{expression!r}: the range '{part}' runs backwards; write it low-high, or as "
                "two parts separated by a comma"
            )
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(expression: str, text: str, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"{expression!r}: '{text}' is not a number")
    return int(text)


def next_fire(
    schedule: Schedule, after: datetime.datetime, origin: datetime.datetime
) -> datetime.datetime:
    """The first firing strictly after ``after``; rates count from ``origin``."""
    after = after.astimezone(UTC)
    if isinstance(schedule, Rate):
        elapsed = (after - origin).total_seconds()
        periods = int(elapsed // schedule.seconds) + 1
        return origin + datetime.timedelta(seconds=periods * schedule.seconds)
    moment = (after + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
    limit = after + datetime.timedelta(days=366 * 5)
    while moment <= limit:
        if not _day_matches(schedule, moment):
            moment = (moment + datetime.timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if moment.hour not in schedule.hours:
            moment = (moment + datetime.timedelta(hours=1)).replace(minute=0)
            continue
        if moment.minute not in schedule.minutes:
            moment += datetime.timedelta(minutes=1)
            continue
        return moment
    raise ScheduleError("the cron expression never fires in the next five years")


def _day_matches(cron: Cron, moment: datetime.datetime) -> bool:
    if cron.years is not None and moment.year not in cron.years:
        return False
    if moment.month not in cron.months:
        return False
    if cron.days is not None:
        return moment.day in cron.days
    weekday = moment.isoweekday() % 7 + 1  # Sunday = 1, as cron's day-of-week counts
    return cron.weekdays is not None and weekday in cron.weekdays


def scheduled_event(rule: str, now: datetime.datetime) -> dict[str, Any]:
    """The event EventBridge sends a function when rule ``rule`` fires at ``now`` (naive: UTC)."""

    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }
