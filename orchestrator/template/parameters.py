"""A template's ``Parameters``: each one's value from ``--parameter-overrides``, else its default.

Values are checked as CloudFormation checks them at deployment (``AllowedValues``,
``AllowedPattern``, lengths, numbers' ranges). A parameter with neither a value nor a default,
or an SSM parameter (its value lives in AWS), is ``Unresolvable``: only what uses it is left
out, with a notice saying to give it on the command line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import Problem, did_you_mean
from orchestrator.template.document import Located
from orchestrator.template.intrinsics import ParameterValue, Unresolvable

_OVERRIDE = re.compile(r"ParameterKey=([^,]+),ParameterValue=(.*)", re.DOTALL)
_LIST_TYPES = ("CommaDelimitedList", "List<")


def parse_overrides(items: tuple[str, ...]) -> dict[str, str]:
    """``--parameter-overrides`` as SAM CLI takes them: ``Key=Value`` (several in one
    argument, separated by spaces, quoted as a shell quotes) or
    ``ParameterKey=Key,ParameterValue=Value``. ``ValueError`` names a malformed one."""
    found: dict[str, str] = {}
    for item in items:
        try:
            words = shlex.split(item)
        except ValueError as exc:
            raise ValueError(f"{item!r}: {exc}") from None
        for word in words:
            if long_form := _OVERRIDE.fullmatch(word):
                key, value = long_form[1], long_form[2]
            elif "=" in word and not word.startswith("="):
                key, value = word.split("=", 1)
            else:
                raise ValueError(
                    f"{word!r} is not KEY=VALUE; write e.g. --parameter-overrides Stage=dev"
                )
            found[key] = value
    return found


def read_parameters(
    declared: Any, overrides: Mapping[str, str], file: str
) -> tuple[dict[str, ParameterValue], list[Problem]]:
    """Each declared parameter's value, and the problems with the declarations or values."""
    problems: list[Problem] = []
    values: dict[str, ParameterValue] = {}
    if declared is None:
        declared = Located()
    if not isinstance(declared, dict):
        problems.append(Problem(file, None, "Parameters", "is not a mapping of parameters"))
        declared = Located()
    for name in overrides:
        if name not in declared:
            hint = did_you_mean(name, declared)
            names = ", ".join(declared) or "none"
            message = (
                f"--parameter-overrides gives {name!r}, which the template does not declare"
                f"{f' ({hint})' if hint else ''}; its parameters: {names}"
            )
            problems.append(Problem(file, None, "Parameters", message))
    for name, spec in declared.items():
        where = f"Parameters.{name}"
        line = declared.line_of(name) if isinstance(declared, Located) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("Type"), str):
            problems.append(Problem(file, line, where, "has no Type; give it Type: String"))
            continue
        kind: str = spec["Type"]
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            values[name] = Unresolvable(
                f"parameter {name!r} has no Default; give it a value with "
                f"--parameter-overrides {name}=VALUE"
            )
            continue
        if kind.startswith("AWS::SSM::Parameter::Value<") and name not in overrides:
            values[name] = Unresolvable(
                f"parameter {name!r} is the value of SSM parameter {raw!r}, which lives in AWS; "
                f"give it with --parameter-overrides {name}=VALUE"
            )
            continue
        text = _text(raw)
        problem = _check(spec, kind, text)
        if problem is not None:
            origin = "given" if name in overrides else "its Default"
            problems.append(Problem(file, line, where, f"{origin} {text!r} {problem}"))
            continue
        values[name] = _value(kind, text)
    return values, problems


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, list):
        return ",".join(_text(item) for item in raw)
    return str(raw)


def _value(kind: str, text: str) -> ParameterValue:
    if kind.startswith(_LIST_TYPES) or kind.startswith("AWS::SSM::Parameter::Value<List<"):
        return [item.strip() for item in text.split(",")] if text else []
    return text


def _check(spec: Mapping[str, Any], kind: str, text: str) -> str | None:
    """Why ``text`` is not a valid value of the parameter, or None."""
    allowed = spec.get("AllowedValues")
    items = text.split(",") if kind.startswith(_LIST_TYPES) else [text]
    if isinstance(allowed, list):
        choices = [_text(v) for v in allowed]
        for item in items:
            if item.strip() not in choices:
                return f"is not one of the AllowedValues: {', '.join(choices)}"
    pattern = spec.get("AllowedPattern")
    if isinstance(pattern, str):
        try:
            matched = all(re.fullmatch(pattern, item) for item in items)
        except re.error:
            matched = True  # a pattern Python cannot read: CloudFormation's own dialect
        if not matched:
            return f"does not match AllowedPattern {pattern!r}"
    if kind in ("Number", "List<Number>"):
        for item in items:
            try:
                number = float(item)
            except ValueError:
                return "is not a number"
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            if low is not None and number < float(low) or high is not None and number > float(high):
                return f"is outside MinValue {low} to MaxValue {high}"
    low, high = spec.get("MinLength"), spec.get("MaxLength")
    if low is not None and len(text) < int(low) or high is not None and len(text) > int(high):
        return f"has {len(text)} characters, outside MinLength {low} to MaxLength {high}"
    return None
