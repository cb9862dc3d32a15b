"""Unit tests for orchestrator.schedule: parsing rate and cron expressions, and when they fire."""

from __future__ import annotations

import datetime
import re

import pytest

from orchestrator.manifest.schedule import Cron, Rate, ScheduleError, next_fire, parse

UTC = datetime.UTC
UNSUPPORTED = "(L, W, #) is not supported by lrun"


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron(expression: str) -> Cron:
    schedule = parse(expression)
    assert isinstance(schedule, Cron)
    return schedule


def fire(expression: str, after: str) -> datetime.datetime:
    moment = at(after)
    return next_fire(parse(expression), moment, moment)


# rate


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
        ("  rate(10 minutes)  ", 600),
    ],
)
def test_rate_parses_to_seconds(expression: str, seconds: int) -> None:
    assert parse(expression) == Rate(seconds)


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(0 hours)", "rate(0 day)"])
def test_rate_of_zero_is_refused(expression: str) -> None:
    with pytest.raises(ScheduleError, match="at least 1"):
        parse(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(5 seconds)",
        "rate(-1 minutes)",
        "rate(1.5 hours)",
        "rate(minutes)",
        "rate(5minutes)",
        "every 5 minutes",
        "",
    ],
)
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError, match="is not a schedule expression"):
        parse(expression)


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)"])
def test_rate_unit_must_agree_with_the_value(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expression)


# cron: structure


def test_cron_parses_its_six_fields() -> None:
    assert parse("cron(15 10 ? * MON *)") == Cron(
        minutes=frozenset({15}),
        hours=frozenset({10}),
        days=None,
        months=frozenset(range(1, 13)),
        weekdays=frozenset({2}),
        years=None,
    )


@pytest.mark.parametrize(
    ("expression", "count"),
    [("cron(0 12 * * ?)", 5), ("cron(0 12 * * ? * *)", 7), ("cron(0)", 1)],
)
def test_cron_needs_six_fields(expression: str, count: int) -> None:
    with pytest.raises(ScheduleError, match=f"cron takes six fields .*, not {count}"):
        parse(expression)


@pytest.mark.parametrize(
    "expression", ["cron(0 12 ? * ? *)", "cron(0 12 * * * *)", "cron(0 12 1 * MON *)"]
)
def test_exactly_one_day_field_is_a_question_mark(expression: str) -> None:
    with pytest.raises(ScheduleError, match="exactly one of day-of-month and day-of-week"):
        parse(expression)


def test_question_mark_in_either_day_field() -> None:
    by_date = cron("cron(0 12 1 * ? *)")
    assert (by_date.days, by_date.weekdays) == (frozenset({1}), None)
    by_weekday = cron("cron(0 12 ? * 2 *)")
    assert (by_weekday.days, by_weekday.weekdays) == (None, frozenset({2}))


def test_cron_year_star_is_every_year_and_a_range_is_kept() -> None:
    assert cron("cron(0 0 1 1 ? *)").years is None
    assert cron("cron(0 0 1 1 ? 2026-2028)").years == frozenset({2026, 2027, 2028})


# cron: field syntax


@pytest.mark.parametrize(
    ("minutes", "values"),
    [
        ("*", set(range(60))),
        ("7", {7}),
        ("0,15,30", {0, 15, 30}),
        ("10-13", {10, 11, 12, 13}),
        ("*/15", {0, 15, 30, 45}),
        ("0/20", {0, 20, 40}),
        ("5/20", {5, 25, 45}),
        ("10-30/10", {10, 20, 30}),
        ("1,10-12,50/5", {1, 10, 11, 12, 50, 55}),
    ],
)
def test_cron_lists_ranges_and_steps(minutes: str, values: set[int]) -> None:
    assert cron(f"cron({minutes} 0 * * ? *)").minutes == frozenset(values)


@pytest.mark.parametrize(
    ("months", "values"),
    [
        ("JAN", {1}),
        ("dec", {12}),
        ("JAN-MAR", {1, 2, 3}),
        ("FEB,APR,nov", {2, 4, 11}),
        ("MAR-SEP/3", {3, 6, 9}),
    ],
)
def test_cron_month_names(months: str, values: set[int]) -> None:
    assert cron(f"cron(0 0 1 {months} ? *)").months == frozenset(values)


@pytest.mark.parametrize(
    ("weekdays", "values"),
    [
        ("SUN", {1}),
        ("MON-FRI", {2, 3, 4, 5, 6}),
        ("SUN,SAT", {1, 7}),
        ("tue,THU", {3, 5}),
        ("1-7", set(range(1, 8))),
    ],
)
def test_cron_day_names(weekdays: str, values: set[int]) -> None:
    assert cron(f"cron(0 0 ? * {weekdays} *)").weekdays == frozenset(values)


@pytest.mark.parametrize(
    ("expression", "field", "value"),
    [
        ("cron(0 0 1 JUL ? *)", "months", 7),
        ("cron(0 0 ? * WED *)", "weekdays", 4),
        ("cron(0 0 ? * MON-WED *)", "weekdays", 3),
    ],
)
def test_cron_names_containing_l_or_w(expression: str, field: str, value: int) -> None:
    assert value in getattr(cron(expression), field)


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 L * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 ? * 6L *)",
        "cron(0 0 ? * 6#3 *)",
    ],
)
def test_cron_l_w_and_hash_are_refused_with_a_clear_message(expression: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(UNSUPPORTED)):
        parse(expression)


@pytest.mark.parametrize(
    ("expression", "part", "bounds"),
    [
        ("cron(60 0 * * ? *)", "60", "0-59"),
        ("cron(0 24 * * ? *)", "24", "0-23"),
        ("cron(0 0 0 * ? *)", "0", "1-31"),
        ("cron(0 0 32 * ? *)", "32", "1-31"),
        ("cron(0 0 1 0 ? *)", "0", "1-12"),
        ("cron(0 0 1 13 ? *)", "13", "1-12"),
        ("cron(0 0 ? * 0 *)", "0", "1-7"),
        ("cron(0 0 ? * 8 *)", "8", "1-7"),
        ("cron(0 0 1 1 ? 1969)", "1969", "1970-2199"),
        ("cron(0 0 1 1 ? 2200)", "2200", "1970-2199"),
        ("cron(0-60 0 * * ? *)", "0-60", "0-59"),
        ("cron(*/0 0 * * ? *)", "*/0", "0-59"),
    ],
)
def test_cron_values_out_of_range_are_refused(expression: str, part: str, bounds: str) -> None:
    with pytest.raises(ScheduleError, match=f"'{part}' is outside {bounds}"):
        parse(expression)


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("cron(x 0 * * ? *)", "x"),
        ("cron(0 0 1 JANUARY ? *)", "JANUARY"),
        ("cron(0 0 1,,2 * ? *)", ""),
        ("cron(0 0 ? * MON-FUN *)", "FUN"),
        ("cron(0 0 1 MON ? *)", "MON"),  # a day name in the month field
    ],
)
def test_cron_non_numbers_are_refused(expression: str, text: str) -> None:
    with pytest.raises(ScheduleError, match=f"'{text}' is not a number"):
        parse(expression)


@pytest.mark.parametrize("expression", ["cron(0 22-2 * * ? *)", "cron(0 0 ? * FRI-MON *)"])
def test_a_reversed_range_is_refused_or_wraps(expression: str) -> None:
    try:
        schedule = cron(expression)
    except ScheduleError:
        return
    assert schedule.hours and schedule.weekdays


# next_fire: rate


def test_rate_fires_counted_from_the_origin() -> None:
    origin = at("2026-03-02T10:00:07")
    every_five = parse("rate(5 minutes)")

    assert next_fire(every_five, origin, origin) == at("2026-03-02T10:05:07")
    assert next_fire(every_five, at("2026-03-02T10:07:00"), origin) == at("2026-03-02T10:10:07")
    assert next_fire(every_five, at("2026-03-02T13:59:59"), origin) == at("2026-03-02T14:00:07")


def test_rate_fires_strictly_after() -> None:
    origin = at("2026-03-02T10:00:00")
    hourly = parse("rate(1 hour)")

    assert next_fire(hourly, at("2026-03-02T11:00:00"), origin) == at("2026-03-02T12:00:00")
    assert next_fire(hourly, at("2026-03-02T10:59:59.999999"), origin) == at("2026-03-02T11:00:00")


def test_rate_before_its_origin_first_fires_at_the_origin() -> None:
    origin = at("2026-03-02T10:00:00")
    assert next_fire(parse("rate(1 day)"), at("2026-03-02T09:59:00"), origin) == origin


# next_fire: cron


def test_cron_daily_at_noon() -> None:
    noon = "cron(0 12 * * ? *)"
    assert fire(noon, "2026-03-02T11:00:00") == at("2026-03-02T12:00:00")
    assert fire(noon, "2026-03-02T11:59:59") == at("2026-03-02T12:00:00")
    assert fire(noon, "2026-03-02T12:00:00") == at("2026-03-03T12:00:00")
    assert fire(noon, "2026-03-02T12:00:30") == at("2026-03-03T12:00:00")
    assert fire(noon, "2026-03-02T18:00:00") == at("2026-03-03T12:00:00")


def test_cron_weekdays_only_skip_the_weekend() -> None:
    weekdays = "cron(0 9 ? * MON-FRI *)"
    # 2026-03-06 is a Friday.
    assert fire(weekdays, "2026-03-06T08:00:00") == at("2026-03-06T09:00:00")
    assert fire(weekdays, "2026-03-06T10:00:00") == at("2026-03-09T09:00:00")
    assert fire(weekdays, "2026-03-07T09:00:00") == at("2026-03-09T09:00:00")


def test_cron_sunday_is_day_one() -> None:
    # 2026-03-08 is a Sunday, 2026-03-14 a Saturday.
    assert fire("cron(0 0 ? * 1 *)", "2026-03-02T00:00:00") == at("2026-03-08T00:00:00")
    assert fire("cron(0 0 ? * SAT *)", "2026-03-02T00:00:00") == at("2026-03-07T00:00:00")
    assert fire("cron(0 0 ? * 7 *)", "2026-03-08T00:00:00") == at("2026-03-14T00:00:00")


def test_cron_every_fifteen_minutes() -> None:
    quarters = "cron(0/15 * * * ? *)"
    assert fire(quarters, "2026-03-02T10:07:30") == at("2026-03-02T10:15:00")
    assert fire(quarters, "2026-03-02T10:15:00") == at("2026-03-02T10:30:00")
    assert fire(quarters, "2026-03-02T10:45:00") == at("2026-03-02T11:00:00")
    assert fire(quarters, "2026-03-02T23:50:00") == at("2026-03-03T00:00:00")


def test_cron_specific_date_in_a_year_range() -> None:
    june = "cron(30 8 15 6 ? 2027-2029)"
    assert fire(june, "2026-01-01T00:00:00") == at("2027-06-15T08:30:00")
    assert fire(june, "2027-06-15T08:30:00") == at("2028-06-15T08:30:00")
    with pytest.raises(ScheduleError, match="never fires"):
        fire(june, "2029-06-15T08:30:00")


def test_cron_crosses_month_and_year_boundaries() -> None:
    first = "cron(0 0 1 * ? *)"
    assert fire(first, "2026-01-31T12:00:00") == at("2026-02-01T00:00:00")
    assert fire(first, "2026-12-31T23:59:59") == at("2027-01-01T00:00:00")
    # Months without a 31st are skipped.
    assert fire("cron(0 12 31 * ? *)", "2026-04-01T00:00:00") == at("2026-05-31T12:00:00")
    assert fire("cron(0 12 31 * ? *)", "2026-05-31T12:00:00") == at("2026-07-31T12:00:00")


def test_cron_leap_day_waits_for_a_leap_year() -> None:
    assert fire("cron(0 0 29 2 ? *)", "2026-01-01T00:00:00") == at("2028-02-29T00:00:00")


def test_cron_that_never_fires_raises() -> None:
    with pytest.raises(ScheduleError, match="never fires"):
        fire("cron(0 0 31 2 ? *)", "2026-01-01T00:00:00")


def test_cron_is_evaluated_in_utc_whatever_the_timezone_of_after() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    after = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=plus_two)  # 07:00 UTC
    assert next_fire(parse("cron(0 12 * * ? *)"), after, after) == at("2026-03-02T12:00:00")
