"""A function's layers as ``lrun.yaml`` declares them: directories or zips of the project, or the
ARNs of layer versions published to lrun (PublishLayerVersion), laid over ``/opt`` in order.

The manifest checks what it can alone (paths inside the project, the ARN's form, region and
account, one version per layer, at most five); a zip is unpacked and an ARN found by the API's
layer catalogue (``api.layer_refs``), which sets each ``Layer.directory`` before the function
runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import show as _show
from orchestrator.manifest.reader import Reader

MAX_LAYERS = 5  # per function, as on Lambda
LayerKind = Literal["directory", "zip", "arn"]
# A layer version's ARN as CreateFunction's Layers take it (botocore's model), in parts.
LAYER_VERSION_ARN = re.compile(
    r"arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):"
    r"(?P<account>\d{12}):layer:(?P<name>[a-zA-Z0-9-_]+):(?P<version>[0-9]+)"
)
_EXAMPLE = "layers: [./layers/sdk, ./layers/tools.zip]"


@dataclass(frozen=True)
class Layer:
    """One of a function's layers: ``source`` as declared (an absolute directory or zip path, or
    a layer version ARN) and ``directory``, where its files are on this host (for a zip or an
    ARN, set once lrun has unpacked or found it)."""

    source: str
    kind: LayerKind
    directory: Path | None = None

    @classmethod
    def of_directory(cls, path: Path) -> Layer:
        return cls(str(path), "directory", path)


def same_layer_twice(arns: list[str]) -> str | None:
    """AWS's refusal of two versions of one layer (the first pair, in order), or None."""
    seen: dict[str, str] = {}
    for arn in arns:
        found = LAYER_VERSION_ARN.fullmatch(arn)
        if found is None:
            continue
        if found["name"] in seen:
            return (
                "Two different versions of the same layer are not allowed to be referenced in "
                f"the same function. {seen[found['name']]} and {arn} are versions of the same "
                "layer."
            )
        seen[found["name"]] = arn
    return None


def foreign(arn: str) -> str | None:
    """Why a layer version ARN names nothing lrun can hold (another region or account), as AWS
    says it when a function names one; None if it is lrun's."""
    found = LAYER_VERSION_ARN.fullmatch(arn)
    if found is None:
        return f"Layer version {arn} does not exist."
    if found["region"] != REGION:
        return (
            "Layers are not in the same region as the function. Layers are expected to be in "
            f"region {REGION}."
        )
    if found["account"] != ACCOUNT_ID:
        return (
            f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: "
            f"lambda:GetLayerVersion on resource: {arn} because no resource-based policy allows "
            "the lambda:GetLayerVersion action"
        )
    return None


def read_layers(reader: Reader) -> tuple[Layer, ...]:
    """``layers:`` of the function being read: each a directory or ``.zip`` inside the project,
    or a layer version ARN."""
    if (got := reader.get("layers")) is None:
        return ()
    node, value, where = got
    if not isinstance(node, yaml.SequenceNode) or not isinstance(value, list):
        fix = f"layers must be a list of directories, zips or layer version ARNs, e.g. {_EXAMPLE}"
        reader.add(node, where, f"{_show(value)} is not a list; {fix}")
        return ()
    if len(value) > MAX_LAYERS:
        fix = f"a function can use at most {MAX_LAYERS} layers, as on Lambda"
        reader.add(node, where, f"{len(value)} layers given; {fix}")
    layers: list[Layer] = []
    for index, (item_node, item) in enumerate(zip(node.value, value, strict=True)):
        at = f"{where}[{index}]"
        if not isinstance(item, str) or not item:
            fix = f"each layer is a directory, a zip or a layer version ARN, e.g. {_EXAMPLE}"
            reader.add(item_node, at, f"{_show(item)} is not a path; {fix}")
        elif item.startswith("arn:"):
            layer = _arn(reader, item_node, at, item)
            if layer is not None:
                layers.append(layer)
        else:
            layer = _local(reader, item_node, at, item)
            if layer is not None:
                layers.append(layer)
    twice = same_layer_twice([layer.source for layer in layers if layer.kind == "arn"])
    if twice is not None:
        reader.add(node, where, twice)
    return tuple(layers)


def _arn(reader: Reader, node: yaml.Node, at: str, item: str) -> Layer | None:
    if LAYER_VERSION_ARN.fullmatch(item) is None:
        fix = (
            "a layer version ARN reads arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION, e.g. "
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:sdk:1 (see lrun's ListLayerVersions)"
        )
        reader.add(node, at, f"{item!r} is not a layer version ARN; {fix}")
        return None
    why = foreign(item)
    if why is not None:
        fix = "name a layer version published to this lrun (aws lambda publish-layer-version)"
        reader.add(node, at, f"{why}; {fix}")
        return None
    return Layer(item, "arn")


def _local(reader: Reader, node: yaml.Node, at: str, item: str) -> Layer | None:
    """A directory or zip of the project, like its code: nothing outside it is laid over /opt."""
    resolved = (reader.base / Path(item).expanduser()).resolve()
    if not resolved.is_relative_to(reader.base.resolve()):
        fix = f"keep layers inside the project directory {reader.base}, e.g. {_EXAMPLE}"
        reader.add(node, at, f"{item!r} ({resolved}) is outside the project; {fix}")
    elif resolved.is_dir():
        return Layer.of_directory(resolved)
    elif resolved.is_file() and resolved.suffix.lower() == ".zip":
        return Layer(str(resolved), "zip")
    else:
        what = "is neither a directory nor a .zip" if resolved.exists() else "does not exist"
        fix = "a layer is a directory laid out as Lambda extracts one into /opt, or its zip"
        reader.add(node, at, f"{item!r} {what} ({resolved}); {fix}")
    return None
