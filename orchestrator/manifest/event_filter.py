"""Lambda's event-filtering patterns (``FilterCriteria``), for queue mappings: the manifest's
``filter:`` and the API's, as the schedule language lives beside the manifest's ``schedule:``.

A pattern is a JSON object whose keys name fields of the record and whose leaves are lists of
matchers; a record passes when every key matches (and, in a list, when any matcher does). The
matchers are those Lambda documents: exact values (strings, numbers, ``true``/``false``,
``null``, ``""``), ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (values, or
a prefix/suffix/equals-ignore-case), ``numeric`` (``=``, or a range of ``>``/``>=`` and
``<``/``<=``), ``exists``, and ``$or`` between objects. A field holding a list matches when any
of its elements does. A mapping with several filters passes a record any one of them matches.

For a queue's records the ``body`` is matched as JSON when it is a JSON object, else as the
plain string it is; every other field of the record (``attributes``, ``messageAttributes``,
``messageId``...) as the function would receive it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_PATTERN = 4096  # characters: the API model's limit on a pattern
MAX_FILTERS = 5  # Lambda's quota of filters per mapping
_STRING_OPS = ("prefix", "suffix", "equals-ignore-case")
_LOWER_OPS = (">", ">=")
_UPPER_OPS = ("<", "<=")


class FilterError(ValueError):
    """A pattern that is not one Lambda accepts; ``str`` says what is wrong with it."""


@dataclass(frozen=True)
class Filter:
    """One compiled pattern, with its text as given (what the API shows back)."""

    text: str
    pattern: Mapping[str, Any]

    def matches(self, record: Mapping[str, Any]) -> bool:
        return _object_matches(self.pattern, record, present=True)


def parse(text: object) -> Filter:
    """A pattern's JSON text as a ``Filter``; ``FilterError`` when it is not a valid pattern."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError("a pattern must be a JSON object, as text")
    if len(text) > MAX_PATTERN:
        raise FilterError(f"a pattern is at most {MAX_PATTERN} characters, not {len(text)}")
    try:
        pattern = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FilterError(f"a pattern must be JSON: {exc}") from None
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError("a pattern must be a non-empty JSON object")
    _check_object(pattern, "")
    return Filter(text, pattern)


def passes(filters: Sequence[Filter], record: Mapping[str, Any]) -> bool:
    """Whether a record goes to the function: no filters, or any filter matching."""
    return not filters or any(f.matches(record) for f in filters)


def sqs_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A queue record as patterns see it: a JSON object body parsed, the rest as it is."""
    view = dict(record)
    body = record.get("body")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            view["body"] = parsed
    return view


# Checking a pattern


def _check_object(pattern: Mapping[str, Any], where: str) -> None:
    for key, value in pattern.items():
        at = f"{where}.{key}" if where else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise FilterError(f"{at}: $or takes a list of at least two patterns")
            for index, branch in enumerate(value):
                if not isinstance(branch, dict) or not branch:
                    raise FilterError(f"{at}[{index}]: each $or branch must be a JSON object")
                _check_object(branch, f"{at}[{index}]")
        elif isinstance(value, dict):
            if not value:
                raise FilterError(f"{at}: an empty object matches nothing; give fields")
            _check_object(value, at)
        elif isinstance(value, list):
            if not value:
                raise FilterError(f"{at}: an empty list matches nothing; give values")
            for matcher in value:
                _check_matcher(matcher, at)
        else:
            raise FilterError(f"{at}: {json.dumps(value)} must be a list of values or an object")


def _check_matcher(matcher: object, at: str) -> None:
    if matcher is None or isinstance(matcher, str | bool):
        return
    if isinstance(matcher, int | float):
        if not math.isfinite(matcher):
            raise FilterError(f"{at}: {matcher} is not a finite number")
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise FilterError(f"{at}: {json.dumps(matcher)} is not a value or one operator")
    ((op, operand),) = matcher.items()
    if op in _STRING_OPS:
        if not isinstance(operand, str):
            raise FilterError(f"{at}: {op} takes a string, not {json.dumps(operand)}")
    elif op == "exists":
        if not isinstance(operand, bool):
            raise FilterError(f"{at}: exists takes true or false, not {json.dumps(operand)}")
    elif op == "numeric":
        _check_numeric(operand, at)
    elif op == "anything-but":
        _check_anything_but(operand, at)
    else:
        raise FilterError(f"{at}: unknown operator {op!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_numeric(operand: object, at: str) -> None:
    bad = FilterError(
        f"{at}: numeric takes [op, number] or a range [>|>=, number, <|<=, number], "
        f"not {json.dumps(operand)}"
    )
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise bad
    ops, numbers = operand[0::2], operand[1::2]
    if not all(_number(n) for n in numbers):
        raise bad
    if len(operand) == 2:
        if ops[0] not in ("=", *_LOWER_OPS, *_UPPER_OPS):
            raise bad
    elif ops[0] not in _LOWER_OPS or ops[1] not in _UPPER_OPS or numbers[0] >= numbers[1]:
        raise bad


def _check_anything_but(operand: object, at: str) -> None:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in _STRING_OPS:
            raise FilterError(f"{at}: anything-but takes values or one of {', '.join(_STRING_OPS)}")
        if not isinstance(next(iter(operand.values())), str):
            raise FilterError(f"{at}: anything-but's {next(iter(operand))} takes a string")
        return
    values = operand if isinstance(operand, list) else [operand]
    if not values or not all(isinstance(v, str) or _number(v) for v in values):
        raise FilterError(f"{at}: anything-but takes strings or numbers, not {json.dumps(operand)}")


# Matching


def _object_matches(pattern: Mapping[str, Any], value: object, present: bool) -> bool:
    fields = value if isinstance(value, dict) else {}
    if present and not isinstance(value, dict):
        # An object pattern against a scalar: only "does not exist" conditions can hold.
        present = False
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_object_matches(branch, value, present) for branch in sub):
                return False
            continue
        there = present and key in fields
        field = fields.get(key) if there else None
        if isinstance(sub, dict):
            if not _object_matches(sub, field, there):
                return False
        elif not _leaf_matches(sub, field, there):
            return False
    return True


def _leaf_matches(matchers: Sequence[Any], value: object, present: bool) -> bool:
    if not present:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    values = value if isinstance(value, list) else [value]
    return any(_matches(m, v) for m in matchers for v in values)


def _matches(matcher: object, value: object) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    ((op, operand),) = matcher.items()
    if op == "exists":
        return operand is True
    if op == "numeric":
        return _number(value) and _in_range(operand, value)
    if op == "anything-but":
        if isinstance(operand, dict):
            return isinstance(value, str) and not _string_op(*next(iter(operand.items())), value)
        excluded = operand if isinstance(operand, list) else [operand]
        return value is not None and not any(_equal(e, value) for e in excluded)
    return isinstance(value, str) and _string_op(op, operand, value)


def _string_op(op: str, operand: str, value: str) -> bool:
    if op == "prefix":
        return value.startswith(operand)
    if op == "suffix":
        return value.endswith(operand)
    return value.casefold() == operand.casefold()


def _equal(expected: object, value: object) -> bool:
    if expected is None or isinstance(expected, bool):
        return value is expected
    if _number(expected):
        return _number(value) and float(value) == float(expected)  # type: ignore[arg-type]
    return isinstance(value, str) and value == expected


def _in_range(operand: Sequence[Any], value: Any) -> bool:
    for op, bound in zip(operand[0::2], operand[1::2], strict=True):
        ok = {
            "=": value == bound,
            ">": value > bound,
            ">=": value >= bound,
            "<": value < bound,
            "<=": value <= bound,
        }[op]
        if not ok:
            return False
    return True
