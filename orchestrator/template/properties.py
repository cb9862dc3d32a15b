"""Reading one resource's properties: evaluated, typed, and located for problems and notices.

A value that cannot be evaluated is reported once, where it is, and read as absent: a template
mistake as a problem, a value lrun cannot know (``Unresolvable``) as a notice.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.template.builder import Builder, Origin
from orchestrator.template.document import Located
from orchestrator.template.intrinsics import Resource, TemplateError, Unresolvable

_ARN = re.compile(r"arn:aws[a-z-]*:([a-z0-9-]+):([^:]*):([^:]*):(.+)")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def arn_parts(value: str) -> tuple[str, str] | None:
    """``(service, resource)`` of an ARN (``resource`` is everything after the account)."""
    found = _ARN.fullmatch(value)
    return (found[1], found[4]) if found else None


class Properties:
    """The properties of ``resource`` (or of a mapping inside them, such as one event's)."""

    def __init__(
        self,
        builder: Builder,
        resource: Resource,
        values: Located | None = None,
        where: str | None = None,
    ) -> None:
        self.builder = builder
        self.resource = resource
        self.values = resource.properties if values is None else values
        self.where = where or f"Resources.{resource.logical}.Properties"

    @property
    def logical(self) -> str:
        return self.resource.logical

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def line(self, name: str | None = None) -> int | None:
        line = self.values.line_of(name) if name is not None else self.values.line
        return line if line is not None else self.resource.line

    def at(self, name: str) -> str:
        return f"{self.where}.{name}"

    def origin(self, name: str | None = None) -> Origin:
        return self.builder.origin(self.line(name), self.at(name) if name else self.where)

    def notice(self, name: str | None, message: str) -> None:
        self.builder.notice(self.line(name), self.at(name) if name else self.where, message)

    def problem(self, name: str | None, message: str) -> None:
        self.builder.problem(self.line(name), self.at(name) if name else self.where, message)

    def value(self, name: str, default: Any = MISSING) -> Any:
        """The property evaluated; ``default`` if absent, removed, or not computable."""
        if name not in self.values:
            return default
        return self.evaluate(self.values[name], name, default)

    def evaluate(self, raw: Any, name: str, default: Any = MISSING) -> Any:
        from orchestrator.template.intrinsics import NO_VALUE

        try:
            found = self.builder.resolver.resolve(raw)
        except TemplateError as exc:
            self.problem(name, str(exc))
            return default
        except Unresolvable as exc:
            self.notice(name, f"{exc}; lrun leaves {name.split('.')[-1]} out")
            return default
        return default if found is NO_VALUE else found

    def text(self, name: str, default: Any = MISSING) -> Any:
        found = self.value(name, default)
        if found is default:
            return default
        if isinstance(found, bool):
            return str(found).lower()
        if isinstance(found, int | float):
            return str(found)
        if not isinstance(found, str):
            self.problem(name, f"must be text, not {_kind(found)}")
            return default
        return found

    def integer(self, name: str, default: Any = MISSING) -> Any:
        """An integer property; CloudFormation also takes one written as text ("128")."""
        found = self.value(name, default)
        if found is default:
            return default
        if isinstance(found, str) and re.fullmatch(r"-?\d+", found.strip()):
            return int(found)
        if isinstance(found, bool) or not isinstance(found, int):
            self.problem(name, f"{found!r} is not an integer")
            return default
        return found

    def flag(self, name: str, default: Any = MISSING) -> Any:
        found = self.value(name, default)
        if found is default:
            return default
        if isinstance(found, str) and found.lower() in ("true", "false"):
            return found.lower() == "true"
        if not isinstance(found, bool):
            self.problem(name, f"{found!r} is not true or false")
            return default
        return found

    def mapping(self, name: str) -> Properties | None:
        """A nested mapping property, read with the same helpers (unevaluated until read)."""
        raw = self.values.get(name)
        if raw is None:
            return None
        if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in ("Fn::If", "Ref"):
            evaluated = self.value(name)
            if evaluated is MISSING:
                return None
            raw = evaluated
        if not isinstance(raw, dict):
            self.problem(name, f"must be a mapping, not {_kind(raw)}")
            return None
        located = raw if isinstance(raw, Located) else Located(raw)
        if located.line is None:
            located.line = self.line(name)
        return Properties(self.builder, self.resource, located, self.at(name))


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
