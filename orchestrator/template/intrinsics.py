"""CloudFormation's intrinsic functions, conditions and pseudo parameters, evaluated for lrun.

``Resolver.resolve`` turns a property's value into plain data: ``Ref``, ``Fn::GetAtt``, both
forms of ``Fn::Sub``, ``Fn::Join``, ``Fn::If``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::Base64``, ``Fn::Equals``/``And``/``Or``/``Not``, ``Fn::GetAZs``,
``Fn::Length`` and ``Fn::ToJsonString``. ``AWS::NoValue`` removes the entry holding it.

Two failures, kept apart: ``TemplateError`` is a mistake CloudFormation would refuse too (a Ref
to nothing, a malformed function), and stops the load; ``Unresolvable`` is a value lrun cannot
know (``Fn::ImportValue``, another stack's export; an SSM parameter's value; a parameter with
no default nor override), and only drops the property that needs it, with a notice.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orchestrator.template.references as references
from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import did_you_mean
from orchestrator.template.document import Located

_SUB = re.compile(r"\$\{([^}]*)\}")
_MAX_DEPTH = 64


class TemplateError(Exception):
    """The template is wrong as CloudFormation sees it: its message says what and how to fix."""


class Unresolvable(Exception):
    """A value lrun cannot compute here: its message says why and what to do instead."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Resource:
    """One entry of the template's ``Resources``, before any of it is evaluated."""

    logical: str
    kind: str
    properties: Located
    line: int | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    entry: Located = field(default_factory=Located)  # the whole entry (Condition, DependsOn...)


ParameterValue = str | list[str] | Unresolvable


class Resolver:
    """Evaluates values against one stack's parameters, mappings, conditions and resources."""

    def __init__(
        self,
        stack_name: str,
        parameters: Mapping[str, ParameterValue],
        mappings: Mapping[str, Any],
        conditions: Mapping[str, Any],
        resources: Mapping[str, Resource],
    ) -> None:
        self.stack_name = stack_name
        self.parameters = parameters
        self.mappings = mappings
        self.conditions = conditions
        self.resources = dict(resources)
        # Names CloudFormation makes for a SAM template without them being written: Ref of
        # ``Fn.Alias`` and ``Fn.Version``, the implicit APIs. logical -> (type, physical name)
        self.implicit: dict[str, tuple[str, str]] = {}
        self._truths: dict[str, bool] = {}
        self._deciding: list[str] = []
        self._names: dict[str, str] = {}
        self._depth = 0

    @property
    def pseudo(self) -> dict[str, object]:
        return {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/"
                "00000000-0000-0000-0000-000000000000"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    # Values

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated (``NO_VALUE`` if it is removed)."""
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                raise TemplateError(f"values nested more than {_MAX_DEPTH} deep; simplify them")
            if isinstance(value, dict):
                if len(value) == 1:
                    ((key, argument),) = value.items()
                    if key == "Ref":
                        return self._ref(argument)
                    if key.startswith("Fn::"):
                        function = _FUNCTIONS.get(key)
                        if function is None:
                            raise Unresolvable(f"{key} is not an intrinsic function lrun knows")
                        return function(self, argument)
                result = Located()
                result.line = getattr(value, "line", None)
                for key, item in value.items():
                    resolved = self.resolve(item)
                    if resolved is not NO_VALUE:
                        result[key] = resolved
                        if isinstance(value, Located) and key in value.key_lines:
                            result.key_lines[key] = value.key_lines[key]
                return result
            if isinstance(value, list):
                items = (self.resolve(item) for item in value)
                return [item for item in items if item is not NO_VALUE]
            return value
        finally:
            self._depth -= 1

    def text(self, value: Any, what: str) -> str:
        """A value that must be text (numbers are taken as CloudFormation takes them)."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool) or not isinstance(resolved, str | int | float):
            raise TemplateError(f"{what} must be text, not {_kind(resolved)}")
        return str(resolved)

    def name_of(self, logical: str) -> str:
        """The physical name of a resource: its name property if it sets one, else its logical
        ID, as a valid local name (see ``references.local_name``)."""
        if logical in self._names:
            return self._names[logical]
        resource = self.resources[logical]
        chosen = logical
        prop = references.NAME_PROPERTIES.get(resource.kind)
        if prop is not None and prop in resource.properties:
            self._names[logical] = logical  # a name that refers to itself ends here
            try:
                chosen = self.text(resource.properties[prop], f"{prop} of {logical}")
            except Unresolvable:
                chosen = logical
        self._names[logical] = references.local_name(chosen)
        return self._names[logical]

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"Ref takes a name, not {_kind(name)}")
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            if isinstance(value, Unresolvable):
                raise value
            return value
        if name in self.resources:
            resource = self.resources[name]
            return references.ref(resource.kind, name, self.name_of(name))
        if name in self.implicit:
            kind, physical = self.implicit[name]
            return references.ref(kind, name, physical)
        raise TemplateError(f"Ref {name!r} names no parameter or resource{self._hint(name)}")

    def get_att(self, logical: Any, attribute: Any) -> Any:
        attribute = self.resolve(attribute)
        if not isinstance(logical, str) or not isinstance(attribute, str):
            raise TemplateError("Fn::GetAtt takes [LogicalId, AttributeName]")
        if logical in self.resources:
            kind, physical = self.resources[logical].kind, self.name_of(logical)
        elif logical in self.implicit:
            kind, physical = self.implicit[logical]
        else:
            raise TemplateError(f"Fn::GetAtt names no resource {logical!r}{self._hint(logical)}")
        try:
            return references.attribute(kind, logical, physical, attribute)
        except references.UnknownAttribute as exc:
            raise Unresolvable(f"Fn::GetAtt {logical}.{attribute}: {exc}") from None

    def _hint(self, name: str) -> str:
        known = [*self.parameters, *self.resources, *self.pseudo]
        hint = did_you_mean(name, known)
        return f"; {hint}" if hint else "; declare it under Parameters or Resources"

    # Conditions

    def condition(self, name: Any) -> bool:
        """The named condition's truth, evaluated once."""
        if not isinstance(name, str) or name not in self.conditions:
            hint = did_you_mean(str(name), self.conditions)
            raise TemplateError(
                f"condition {name!r} is not declared under Conditions"
                + (f"; {hint}" if hint else "")
            )
        if name in self._truths:
            return self._truths[name]
        if name in self._deciding:
            raise TemplateError(f"condition {name!r} depends on itself")
        self._deciding.append(name)
        try:
            truth = self._truth(self.conditions[name])
        finally:
            self._deciding.pop()
        self._truths[name] = truth
        return truth

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1 and "Condition" in value:
            return self.condition(value["Condition"])
        resolved = self.resolve(value)
        if isinstance(resolved, str) and resolved.lower() in ("true", "false"):
            return resolved.lower() == "true"
        if not isinstance(resolved, bool):
            raise TemplateError(
                f"a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition, "
                f"not {_kind(resolved)}"
            )
        return resolved


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _pair(argument: Any, function: str, count: int = 2) -> list[Any]:
    if not isinstance(argument, list) or len(argument) != count:
        raise TemplateError(f"{function} takes a list of {count} values")
    return argument


def _get_att(self: Resolver, argument: Any) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    logical, attribute = _pair(argument, "Fn::GetAtt")
    return self.get_att(logical, attribute)


def _sub(self: Resolver, argument: Any) -> str:
    if isinstance(argument, list):
        text, variables = _pair(argument, "Fn::Sub")
        if not isinstance(variables, dict):
            raise TemplateError("Fn::Sub's second value must map variable names to values")
    else:
        text, variables = argument, {}
    if not isinstance(text, str):
        raise TemplateError("Fn::Sub takes text with ${Name} variables")

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name.startswith("!"):
            return "${" + name[1:] + "}"  # ${!Literal} is written as ${Literal}
        if name in variables:
            found = self.resolve(variables[name])
        elif "." in name and not name.startswith("AWS::"):
            found = self.get_att(*name.split(".", 1))
        else:
            found = self._ref(name)
        if isinstance(found, bool) or not isinstance(found, str | int | float):
            raise TemplateError(f"Fn::Sub variable ${{{name}}} is {_kind(found)}, not text")
        return str(found)

    return _SUB.sub(value, text)


def _join(self: Resolver, argument: Any) -> str:
    delimiter, items = _pair(argument, "Fn::Join")
    items = self.resolve(items)
    if not isinstance(delimiter, str) or not isinstance(items, list):
        raise TemplateError("Fn::Join takes [delimiter, [values...]]")
    parts = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise TemplateError(f"Fn::Join can only join text, not {_kind(item)}")
        parts.append(str(item))
    return delimiter.join(parts)


def _select(self: Resolver, argument: Any) -> Any:
    index, items = (self.resolve(v) for v in _pair(argument, "Fn::Select"))
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(items, list):
        raise TemplateError("Fn::Select takes [index, [values...]]")
    if not 0 <= index < len(items):
        raise TemplateError(f"Fn::Select index {index} is outside a list of {len(items)}")
    return items[index]


def _split(self: Resolver, argument: Any) -> list[str]:
    delimiter, source = _pair(argument, "Fn::Split")
    source = self.resolve(source)
    if not isinstance(delimiter, str) or not delimiter or not isinstance(source, str):
        raise TemplateError("Fn::Split takes [delimiter, text]")
    return source.split(delimiter)


def _find_in_map(self: Resolver, argument: Any) -> Any:
    default: Any = None
    if isinstance(argument, list) and len(argument) == 4:
        extra = argument[3]
        if not isinstance(extra, dict) or set(extra) != {"DefaultValue"}:
            raise TemplateError("Fn::FindInMap's fourth value must be {DefaultValue: value}")
        default, argument = extra["DefaultValue"], argument[:3]
    names = [self.resolve(v) for v in _pair(argument, "Fn::FindInMap", 3)]
    if not all(isinstance(n, str | int) and not isinstance(n, bool) for n in names):
        raise TemplateError("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
    found: Any = self.mappings
    for depth, name in enumerate(str(n) for n in names):
        if not isinstance(found, dict) or name not in found:
            if default is not None:
                return self.resolve(default)
            where = ("Mappings", names[0], names[1])[depth]
            raise TemplateError(f"Fn::FindInMap: no key {name!r} in {where}")
        found = found[name]
    return self.resolve(found)


def _base64(self: Resolver, argument: Any) -> str:
    return base64.b64encode(self.text(argument, "Fn::Base64's value").encode()).decode()


def _if(self: Resolver, argument: Any) -> Any:
    name, when_true, when_false = _pair(argument, "Fn::If", 3)
    return self.resolve(when_true if self.condition(name) else when_false)


def _equals(self: Resolver, argument: Any) -> bool:
    left, right = (self.resolve(v) for v in _pair(argument, "Fn::Equals"))
    return bool(_comparable(left) == _comparable(right))


def _comparable(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


def _conditions(argument: Any, function: str) -> list[Any]:
    if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
        raise TemplateError(f"{function} takes a list of 2 to 10 conditions")
    return argument


def _and(self: Resolver, argument: Any) -> bool:
    return all(self._truth(c) for c in _conditions(argument, "Fn::And"))


def _or(self: Resolver, argument: Any) -> bool:
    return any(self._truth(c) for c in _conditions(argument, "Fn::Or"))


def _not(self: Resolver, argument: Any) -> bool:
    if not isinstance(argument, list) or len(argument) != 1:
        raise TemplateError("Fn::Not takes a list of one condition")
    return not self._truth(argument[0])


def _get_azs(self: Resolver, argument: Any) -> list[str]:
    region = self.resolve(argument) or REGION
    return [f"{region}{zone}" for zone in "abc"]


def _import_value(self: Resolver, argument: Any) -> Any:
    try:
        name = self.text(argument, "Fn::ImportValue's name")
    except (TemplateError, Unresolvable):
        name = "?"
    raise Unresolvable(
        f"Fn::ImportValue {name!r} reads another stack's export, which lrun cannot see; give "
        "the value as a parameter instead (--parameter-overrides NAME=VALUE)"
    )


def _length(self: Resolver, argument: Any) -> int:
    items = self.resolve(argument)
    if not isinstance(items, list):
        raise TemplateError("Fn::Length takes a list")
    return len(items)


def _to_json_string(self: Resolver, argument: Any) -> str:
    return json.dumps(self.resolve(argument), separators=(",", ":"))


def _unsupported(name: str) -> Callable[[Resolver, Any], Any]:
    def refuse(self: Resolver, argument: Any) -> Any:
        raise Unresolvable(f"{name} is not evaluated by lrun")

    return refuse


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::Not": _not,
    "Fn::GetAZs": _get_azs,
    "Fn::ImportValue": _import_value,
    "Fn::Length": _length,
    "Fn::ToJsonString": _to_json_string,
    "Fn::Cidr": _unsupported("Fn::Cidr"),
    "Fn::Transform": _unsupported("Fn::Transform (a macro)"),
}
