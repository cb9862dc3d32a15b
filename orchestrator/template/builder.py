"""The manifest a template becomes, built up entry by entry, each entry remembering its origin.

Every value put in the manifest records where in the template it came from (file, line and a
path such as ``Resources.Hello.Properties.MemorySize``), so that when lrun's manifest rules
refuse a value the problem names the template's line and property, not lrun's keys. Notices
(what lrun does otherwise or not at all) and problems (what is wrong) are collected here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import Problem
from orchestrator.template.intrinsics import Resolver


@dataclass(frozen=True)
class Origin:
    """Where a manifest entry came from in a template."""

    file: str
    line: int | None
    where: str  # e.g. "Resources.Hello.Properties.MemorySize"


@dataclass
class Builder:
    """One stack's contribution to the manifest (several, for a CDK app with several stacks)."""

    file: str
    base: Path  # the template's directory: CodeUri and ContentUri are relative to it
    resolver: Resolver
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)  # by manifest path, "functions.x"
    notices: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Logical IDs of functions lrun serves, and their names (a skipped one is in neither).
    functions: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)  # local queue name: its logical ID
    buckets: dict[str, str] = field(default_factory=dict)  # bucket name: its logical ID
    layers: dict[str, Path] = field(default_factory=dict)  # layer ARN: its directory
    cdk_assets: dict[str, Path] = field(default_factory=dict)  # S3 object key: asset path

    def notice(self, line: int | None, where: str, message: str) -> None:
        problem = Problem(self.file, line, where, message)
        if problem not in self.notices:
            self.notices.append(problem)

    def problem(self, line: int | None, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, where, message))

    def put(self, path: str, value: Any, origin: Origin) -> None:
        """Set the manifest's ``path`` (dot-separated keys) to ``value``."""
        *parents, last = path.split(".")
        node = self.data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
        self.origins[path] = origin

    def get(self, path: str) -> Any:
        node: Any = self.data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def origin(self, line: int | None, where: str) -> Origin:
        return Origin(self.file, line, where)


def merge(builders: list[Builder]) -> tuple[dict[str, Any], dict[str, Origin], list[Problem]]:
    """One manifest from several stacks: their entries, origins and the problems of names two
    stacks both use."""
    data: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    clashes: list[Problem] = []
    for builder in builders:
        for section, entries in builder.data.items():
            into = data.setdefault(section, {})
            for name, entry in entries.items():
                path = f"{section}.{name}"
                if name in into:
                    first = origins[path]
                    where = builder.origins.get(path, builder.origin(None, "Resources"))
                    message = (
                        f"{section[:-1]} name {name!r} is also used by {first.where} in "
                        f"{first.file}; give one of them another name"
                    )
                    clashes.append(Problem(where.file, where.line, where.where, message))
                    continue
                into[name] = entry
        origins.update({k: v for k, v in builder.origins.items() if k not in origins})
    return data, origins, clashes


def to_node(value: Any, path: str, origins: dict[str, Origin], line: int | None) -> yaml.Node:
    """``value`` as the YAML node tree the manifest reader walks, each node marked with the
    template line its entry came from (the nearest recorded one above it)."""
    if path in origins:
        line = origins[path].line
    mark = yaml.Mark("template", 0, (line or 1) - 1, 0, "", 0)
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            key_node = yaml.ScalarNode("tag:yaml.org,2002:str", str(key), mark, mark)
            pairs.append((key_node, to_node(item, child, origins, line)))
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs, mark, mark)
    if isinstance(value, list | tuple):
        items = [to_node(item, f"{path}[{i}]", origins, line) for i, item in enumerate(value)]
        return yaml.SequenceNode("tag:yaml.org,2002:seq", items, mark, mark)
    if isinstance(value, bool):
        return yaml.ScalarNode("tag:yaml.org,2002:bool", str(value).lower(), mark, mark)
    if isinstance(value, int):
        return yaml.ScalarNode("tag:yaml.org,2002:int", str(value), mark, mark)
    if isinstance(value, float):
        return yaml.ScalarNode("tag:yaml.org,2002:float", repr(value), mark, mark)
    if value is None:
        return yaml.ScalarNode("tag:yaml.org,2002:null", "null", mark, mark)
    return yaml.ScalarNode("tag:yaml.org,2002:str", str(value), mark, mark)


def relocate(problem: Problem, origins: dict[str, Origin], fallback: str) -> Problem:
    """A problem the manifest rules found, named by the template entry it came from."""
    best = ""
    for path in origins:
        if len(path) > len(best) and (
            problem.where == path or problem.where.startswith((path + ".", path + "["))
        ):
            best = path
    if not best:
        return Problem(fallback, problem.line, problem.where, problem.message)
    origin = origins[best]
    return Problem(origin.file, origin.line, origin.where, problem.message)
