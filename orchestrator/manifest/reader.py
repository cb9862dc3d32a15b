"""Reading the manifest's YAML: typed fields, located problems, nested sections, references.

``Reader`` walks the composed YAML node tree (so every problem carries its line) and collects
every problem instead of stopping at the first; the function and trigger readers build on it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar, cast

import yaml

from orchestrator.errors import Problem
from orchestrator.errors import did_you_mean as _did_you_mean
from orchestrator.errors import show as _show
from orchestrator.manifest.apis import ApiSpec, HttpRoute, WebSocketRoute
from orchestrator.manifest.triggers import BucketSpec, QueueSpec, Triggers
from orchestrator.manifest.urls import UrlSpec

_WORD = re.compile(r"\S+")

_D = TypeVar("_D", int, None)
Items = dict[str, tuple[yaml.Node, yaml.Node]]


class Reader:
    """Walks the composed YAML, reading typed values and collecting located problems."""

    def __init__(self, file: str, base: Path) -> None:
        self.file = file
        self.base = base  # the manifest's directory, which code paths are relative to
        self.problems: list[Problem] = []
        self.constructor = yaml.constructor.SafeConstructor()
        self.path = ""  # the section being read, e.g. "functions.hello"
        self.fields: Items = {}  # its entries
        self.triggers: dict[str, Triggers] = {}
        self.tags: dict[str, Mapping[str, str]] = {}  # by function, when it declares any
        self.queues: dict[str, QueueSpec] = {}
        self.buckets: dict[str, BucketSpec] = {}
        self.references: list[tuple[yaml.Node, str, str, str]] = []  # node, where, kind, name
        self.apis: dict[str, ApiSpec] = {}
        self.api_names: set[str] = set()  # declared, valid or not (so routes are not blamed)
        self.http_routes: list[tuple[yaml.Node, str, HttpRoute]] = []  # node, where, route
        self.websocket_routes: list[tuple[yaml.Node, str, WebSocketRoute]] = []  # likewise
        self.urls: dict[str, UrlSpec] = {}  # function URLs, by function
        self.url_ports: list[tuple[yaml.Node, str, int]] = []  # node, where, port

    def add(self, node: yaml.Node | None, where: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None and node.start_mark else None
        self.problems.append(Problem(self.file, line, where, message))

    def value(self, node: yaml.Node) -> object:
        return cast(object, self.constructor.construct_object(node, deep=True))

    def items(self, node: yaml.MappingNode, where: str, allowed: frozenset[str] | None) -> Items:
        """The mapping's entries by key (merges applied); unknown and repeated keys are reported."""
        result: Items = {}
        for key, value in node.value:
            name = str(key.value)  # a scalar: unhashable keys already failed construction
            path = f"{where}.{name}" if where else name
            if allowed is not None and name not in allowed:
                fix = _did_you_mean(name, allowed) or f"allowed keys: {', '.join(sorted(allowed))}"
                self.add(key, path, f"unknown key {name!r}; {fix}")
                continue
            # Merged (<<) entries come first and from before this mapping: overriding them is fine.
            if name in result and result[name][0].start_mark.index >= node.start_mark.index:
                line = result[name][0].start_mark.line + 1
                self.add(key, path, f"duplicate key {name!r}; keep only one (see line {line})")
            result[name] = (key, value)
        return result

    def get(self, field: str) -> tuple[yaml.Node, object, str] | None:  # value node, value, path
        if field not in self.fields:
            return None
        node = self.fields[field][1]
        return node, self.value(node), f"{self.path}.{field}"

    def integer(self, field: str, low: int, high: int | None, unit: str, default: _D) -> int | _D:
        """An integer field (never a bool) from ``low`` to ``high``; ``default`` if absent/bad."""
        if (got := self.get(field)) is None:
            return default
        node, value, where = got
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        rule = f"{field} must be an integer {f'number of {unit} ' if unit else ''}{span}"
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(node, where, f"{_show(value)} is not an integer; {rule}")
        elif value < low or (high is not None and value > high):
            self.add(node, where, f"{value} is out of range; {rule}")
        else:
            return value
        return default

    def text(self, field: str, limit: int | None, rule: str) -> str | None:
        if (got := self.get(field)) is None:
            return None
        node, value, where = got
        if isinstance(value, str) and len(value) <= (limit or len(value)):
            if field in ("description", "schedule") or _WORD.fullmatch(value):
                return value
        self.add(node, where, f"{_show(value)} is not a valid {field}; {rule}")
        return None

    def choice(self, field: str, choices: Sequence[str]) -> str | None:
        if (got := self.get(field)) is None:
            return None
        node, value, where = got
        if isinstance(value, str) and value in choices:
            return value
        hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
        fix = f"{hint + ' ' if hint else ''}{field} must be one of: {', '.join(choices)}"
        self.add(node, where, f"unknown {field} {_show(value)}; {fix}")
        return None

    def strings(self, field: str, example: str, allowed: bool) -> tuple[str, ...] | None:
        if (got := self.get(field)) is None:
            return None
        node, value, where = got
        if not allowed:
            fix = "remove it, or use image instead of runtime"
            self.add(self.fields[field][0], where, f"{field} is only for image functions; {fix}")
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        else:
            fix = f"write it as a list, e.g. {field}: [{example}]"
            self.add(node, where, f"{_show(value)} is not a non-empty list of strings; {fix}")
        return None

    def string_list(self, field: str, example: str) -> tuple[str, ...] | None:
        """A list of non-empty strings; None if absent or not one (reported)."""
        if (got := self.get(field)) is None:
            return None
        node, value, where = got
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return tuple(value)
        fix = f"write e.g. {field}: {example}"
        self.add(node, where, f"{_show(value)} is not a list of strings; {fix}")
        return None

    def flag(self, field: str) -> bool:
        """A true/false field; False if absent or not one (reported)."""
        if (got := self.get(field)) is None:
            return False
        node, value, where = got
        if isinstance(value, bool):
            return value
        self.add(node, where, f"{_show(value)} is not true or false")
        return False

    # What starts functions besides a call, and where asynchronous results go

    @contextlib.contextmanager
    def section(self, node: yaml.Node, where: str, allowed: frozenset[str]) -> Iterator[bool]:
        """Read a nested mapping with the field helpers; yields False if it is not one."""
        saved = self.path, self.fields
        if not isinstance(node, yaml.MappingNode):
            self.add(node, where, f"{_show(self.value(node))} is not a mapping; write key: value")
            yield False
            return
        self.path, self.fields = where, self.items(node, where, allowed)
        try:
            yield True
        finally:
            self.path, self.fields = saved

    def refer(self, field: str, kind: str) -> str | None:
        """A name that must exist among the manifest's ``kind`` (checked once all are read)."""
        name = self.text(field, None, f"{field} must name one of the manifest's {kind}")
        if name is not None:
            self.references.append((self.fields[field][1], f"{self.path}.{field}", kind, name))
        return name
