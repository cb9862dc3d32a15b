"""Reading a CloudFormation template's text: YAML with CloudFormation's short-form tags, or JSON.

Short forms become the long forms CloudFormation defines (``!Ref X`` is ``{"Ref": "X"}``,
``!GetAtt A.B`` is ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` is ``{"Fn::Sub": "s"}``), so the
rest of the package sees one shape. Mappings are ``Located``: a dict that also knows the line
of each of its keys, so a problem or a notice names the line it is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import ManifestError, Problem

# CloudFormation's short-form tags that are not ``Fn::<Name>``.
_PLAIN = {"Ref": "Ref", "Condition": "Condition"}
MAX_TEMPLATE_BYTES = 10 * 1024 * 1024  # far beyond CloudFormation's 1 MB: a local file


class Located(dict[str, Any]):
    """A template mapping, with the 1-based line it starts on and the line of each key."""

    line: int | None = None
    key_lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    """YAML to plain values with ``Located`` mappings; dates stay text (``2010-09-09``)."""

    def construct_located(self, node: yaml.MappingNode) -> Any:
        mapping = Located()
        mapping.line = node.start_mark.line + 1
        yield mapping
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be text", key_node.start_mark
                )
            name = str(key)
            if name in mapping:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {name!r} (first at line {mapping.key_lines[name]})",
                    key_node.start_mark,
                )
            mapping[name] = self.construct_object(value_node, deep=True)
            mapping.key_lines[name] = key_node.start_mark.line + 1

    def construct_text(self, node: yaml.ScalarNode) -> str:
        return str(node.value)

    def construct_short_form(self, suffix: str, node: yaml.Node) -> Any:
        name = _PLAIN.get(suffix, f"Fn::{suffix}")
        if isinstance(node, yaml.ScalarNode):
            value: Any = self.construct_scalar(node)
            if name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)  # !GetAtt Resource.Attribute
        elif isinstance(node, yaml.SequenceNode):
            value = self.construct_sequence(node, deep=True)
        else:
            value = self.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        result = Located({name: value})
        result.line = node.start_mark.line + 1
        result.key_lines[name] = result.line
        return result


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_located)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_text)
_Loader.add_multi_constructor("!", _Loader.construct_short_form)


def read(path: Path) -> Located:
    """The template at ``path`` as located values; ``ManifestError`` naming the line if it is
    not YAML or JSON, or not a mapping."""
    file = str(path)
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            size = f"{path.stat().st_size:,} bytes"
            fix = f"a template lrun reads is at most {MAX_TEMPLATE_BYTES:,} bytes"
            raise ManifestError([Problem(file, None, "(file)", f"{size}; {fix}")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fix = "pass an existing template with -t PATH"
        raise ManifestError([Problem(file, None, "(file)", f"no such file; {fix}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot be read ({exc}); pass a readable, UTF-8 template"
        raise ManifestError([Problem(file, None, "(file)", message)]) from None
    return parse(text, file)


def parse(text: str, file: str) -> Located:
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        document = _json_instead(text, file, exc)
    finally:
        loader.dispose()
    if not isinstance(document, Located):
        what = "empty" if document is None else f"a {type(document).__name__}, not a mapping"
        fix = "a template is a mapping with a Resources section"
        raise ManifestError([Problem(file, None, "(file)", f"the template is {what}; {fix}")])
    return document


def _json_instead(text: str, file: str, error: yaml.YAMLError) -> Any:
    """JSON that YAML refuses (tabs between tokens): read as JSON, without lines."""
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except ValueError:
        pass
    fix = "fix the syntax (indentation, ':' after each key, matching quotes and brackets)"
    if isinstance(error, yaml.MarkedYAMLError) and (mark := error.problem_mark) is not None:
        what = ", ".join(filter(None, (error.context, error.problem)))
        message = f"invalid YAML: {what} (column {mark.column + 1}); {fix}"
        raise ManifestError([Problem(file, mark.line + 1, "(yaml)", message)]) from None
    raise ManifestError([Problem(file, None, "(yaml)", f"invalid YAML: {error}; {fix}")]) from None


def _pairs(pairs: list[tuple[str, Any]]) -> Located:
    return Located(pairs)
