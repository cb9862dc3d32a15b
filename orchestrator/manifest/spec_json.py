"""A ``FunctionSpec`` as JSON, to keep a published version's configuration in lrun's store.

Paths are kept relative to a root (the state directory), so a version survives the state
directory being moved; a path outside the root cannot be kept (a version's code is always
copied under it first). Decoding follows the spec's type hints, so fields added to the spec
later decode with their defaults from records written before they existed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.manifest.functions import FunctionSpec


def encode(spec: FunctionSpec, root: Path) -> dict[str, Any]:
    """``spec`` as a JSON-ready mapping; ``ValueError`` if one of its paths is outside ``root``."""
    encoded: dict[str, Any] = _encode(spec, root)
    return encoded


def decode(data: Mapping[str, Any], root: Path) -> FunctionSpec:
    spec: FunctionSpec = _decode(FunctionSpec, data, root)
    return spec


def _encode(value: Any, root: Path) -> Any:
    if isinstance(value, Path):
        return str(value.relative_to(root))  # ValueError outside the root
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name), root) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _encode(v, root) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(v, root) for v in value]
    return value


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _decode(kind: Any, value: Any, root: Path) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _decode(inner, value, root)
    if kind is Path:
        relative = Path(value)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"a stored path must stay under lrun's state directory: {value}")
        return root / relative
    if origin is tuple:
        element = typing.get_args(kind)[0]
        return tuple(_decode(element, v, root) for v in value)
    if origin is dict or origin is Mapping or origin is typing.Mapping:
        return dict(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _decode(hints[k], v, root) for k, v in value.items() if k in known})
    return value
