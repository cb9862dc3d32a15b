"""One template's stack: its resources (those whose Condition holds), SAM's Globals applied, and
the resolver their values are evaluated with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.aws import function_arn
from orchestrator.errors import Problem
from orchestrator.template.document import Located
from orchestrator.template.intrinsics import (
    Resolver,
    Resource,
    TemplateError,
    Unresolvable,
)
from orchestrator.template.parameters import read_parameters

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
KNOWN_TRANSFORMS = (SAM_TRANSFORM, "AWS::LanguageExtensions")
# Globals sections and the resource type each applies to.
GLOBAL_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "LayerVersion": "AWS::Serverless::LayerVersion",
    "StateMachine": "AWS::Serverless::StateMachine",
}


@dataclass
class Stack:
    file: str
    name: str
    resolver: Resolver
    globals: dict[str, Located] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)  # logical ID: why it is not made

    @property
    def resources(self) -> dict[str, Resource]:
        return self.resolver.resources


def open_stack(document: Located, file: str, name: str, overrides: Mapping[str, str]) -> Stack:
    """The stack a template describes; its problems and notices so far are on it."""
    parameters, problems = read_parameters(document.get("Parameters"), overrides, file)
    resolver = Resolver(
        name,
        parameters,
        _mapping(document.get("Mappings")),
        _mapping(document.get("Conditions")),
        {},
    )
    stack = Stack(file, name, resolver, problems=problems)
    _check_transforms(stack, document)
    raw = document.get("Resources")
    if not isinstance(raw, Located) or not raw:
        what = "missing" if raw is None else "empty or not a mapping"
        fix = "a template declares its functions under Resources"
        line = document.line_of("Resources")
        stack.problems.append(Problem(file, line, "Resources", f"is {what}; {fix}"))
        return stack
    for logical, entry in raw.items():
        where = f"Resources.{logical}"
        line = raw.line_of(logical)
        if not isinstance(entry, Located) or not isinstance(entry.get("Type"), str):
            stack.problems.append(Problem(file, line, where, "has no Type; every resource has one"))
            continue
        properties = entry.get("Properties", Located())
        if not isinstance(properties, Located):
            stack.problems.append(Problem(file, line, f"{where}.Properties", "is not a mapping"))
            continue
        metadata = entry.get("Metadata")
        resolver.resources[logical] = Resource(
            logical,
            entry["Type"],
            properties,
            line,
            metadata if isinstance(metadata, dict) else {},
            entry,
        )
    _apply_conditions(stack)
    _apply_globals(stack, document.get("Globals"), document.line_of("Globals"))
    _add_implicit(stack)
    return stack


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _check_transforms(stack: Stack, document: Located) -> None:
    transform = document.get("Transform")
    names = transform if isinstance(transform, list) else [] if transform is None else [transform]
    for item in names:
        label = item.get("Name", item) if isinstance(item, dict) else item
        label = label if isinstance(label, str) else repr(label)
        if label not in KNOWN_TRANSFORMS:
            message = (
                f"transform {label!r} is not applied by lrun (it runs in CloudFormation); the "
                "template is read as written"
            )
            line = document.line_of("Transform")
            stack.notices.append(Problem(stack.file, line, "Transform", message))


def _apply_conditions(stack: Stack) -> None:
    for logical, resource in list(stack.resources.items()):
        condition = resource.entry.get("Condition")
        if condition is None:
            continue
        where = f"Resources.{logical}.Condition"
        try:
            holds = stack.resolver.condition(condition)
        except (TemplateError, Unresolvable) as exc:
            line = resource.entry.line_of("Condition")
            stack.problems.append(Problem(stack.file, line, where, str(exc)))
            holds = False
        if not holds:
            del stack.resources[logical]
            stack.absent[logical] = f"its Condition {condition} is false"


def _apply_globals(stack: Stack, found: Any, line: int | None) -> None:
    if found is None:
        return
    if not isinstance(found, dict):
        stack.problems.append(Problem(stack.file, line, "Globals", "is not a mapping"))
        return
    for section, values in found.items():
        kind = GLOBAL_SECTIONS.get(section)
        if kind is None or not isinstance(values, Located):
            where = f"Globals.{section}"
            fix = f"sections: {', '.join(GLOBAL_SECTIONS)}"
            at = found.line_of(section) if isinstance(found, Located) else line
            message = f"is not a Globals section; {fix}"
            stack.problems.append(Problem(stack.file, at, where, message))
            continue
        stack.globals[section] = values
        for logical, resource in stack.resources.items():
            if resource.kind == kind:
                merged = merge_globals(values, resource.properties)
                stack.resources[logical] = Resource(
                    logical, kind, merged, resource.line, resource.metadata, resource.entry
                )


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("Ref", "Condition")
        or isinstance(value, dict)
        and len(value) == 1
        and str(next(iter(value))).startswith("Fn::")
    )


def merge_globals(defaults: Located, own: Located) -> Located:
    """A resource's properties over its Globals, as SAM merges them: the resource's own value
    wins, mappings merge key by key, lists are the global items followed by the resource's."""
    result = Located(defaults)
    result.line = own.line
    result.key_lines = {**defaults.key_lines, **own.key_lines}
    for key, value in own.items():
        default = result.get(key)
        if (
            isinstance(default, dict)
            and isinstance(value, dict)
            and not (_is_intrinsic(default) or _is_intrinsic(value))
        ):
            inner_default = default if isinstance(default, Located) else Located(default)
            inner_own = value if isinstance(value, Located) else Located(value)
            result[key] = merge_globals(inner_default, inner_own)
        elif isinstance(default, list) and isinstance(value, list):
            result[key] = [*default, *value]
        else:
            result[key] = value
    return result


def _add_implicit(stack: Stack) -> None:
    """Names SAM makes without a template writing them, so Refs to them resolve."""
    implicit = stack.resolver.implicit
    implicit["ServerlessRestApi"] = ("AWS::Serverless::Api", "ServerlessRestApi")
    implicit["ServerlessHttpApi"] = ("AWS::Serverless::HttpApi", "ServerlessHttpApi")
    for logical, resource in stack.resources.items():
        if resource.kind == "AWS::Serverless::Function":
            implicit[f"{logical}Role"] = ("AWS::IAM::Role", f"{logical}Role")
            if "FunctionUrlConfig" in resource.properties:
                implicit[f"{logical}Url"] = ("AWS::Lambda::Url", f"{logical}Url")
            alias = resource.properties.get("AutoPublishAlias")
            if isinstance(alias, str):  # Ref Fn.Alias / Fn.Version: the qualified ARNs
                name = stack.resolver.name_of(logical)
                implicit[f"{logical}.Alias"] = ("lrun::Arn", function_arn(name, alias))
                implicit[f"{logical}.Version"] = ("lrun::Arn", function_arn(name, "1"))
        if resource.kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            implicit[f"{logical}.Stage"] = ("AWS::ApiGateway::Stage", "Prod")
            implicit[f"{logical}.Deployment"] = ("AWS::ApiGateway::Deployment", logical)
