"""A CDK app's synthesised output (``cdk.out/``): its stacks' templates, with assets as code.

``cdk synth`` writes a cloud assembly: ``manifest.json`` lists the artifacts, among them each
stack (``aws:cloudformation:stack``, its ``templateFile``), each stack's asset manifest
(``cdk:asset-manifest``: which S3 object key is which ``asset.<hash>`` directory) and nested
assemblies (a CDK Pipelines stage, ``cdk:cloud-assembly``). A function whose ``Code`` names an
asset's S3 key (or whose ``Metadata`` names ``aws:asset:path``) runs from that directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import ManifestError, Problem
from orchestrator.manifest import Manifest
from orchestrator.template.builder import Builder
from orchestrator.template.convert import build_stack, finish
from orchestrator.template.document import read
from orchestrator.template.layout import ASSEMBLY_MANIFEST
from orchestrator.template.stack import open_stack

_MAX_NESTING = 4


def load_assembly(directory: Path, overrides: Mapping[str, str]) -> Manifest:
    """The manifest every stack of the cloud assembly in ``directory`` becomes."""
    directory = Path(os.path.abspath(directory))
    builders: list[Builder] = []
    _stacks(directory, directory.parent, overrides, builders, 0)
    return finish(directory / ASSEMBLY_MANIFEST, builders)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fix = "run cdk synth first, or pass the cdk.out directory with -t"
        raise ManifestError([Problem(str(path), None, "(file)", f"no such file; {fix}")]) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        message = f"cannot be read as JSON ({exc}); run cdk synth again"
        raise ManifestError([Problem(str(path), None, "(file)", message)]) from None


def _stacks(
    directory: Path,
    root: Path,
    overrides: Mapping[str, str],
    builders: list[Builder],
    depth: int,
) -> None:
    manifest_path = directory / ASSEMBLY_MANIFEST
    found = _read_json(manifest_path)
    artifacts = found.get("artifacts") if isinstance(found, dict) else None
    if not isinstance(artifacts, dict):
        message = "has no artifacts; run cdk synth again"
        raise ManifestError([Problem(str(manifest_path), None, "artifacts", message)])
    assets: dict[str, Path] = {}
    for artifact in artifacts.values():
        if isinstance(artifact, dict) and artifact.get("type") == "cdk:asset-manifest":
            assets.update(_assets(directory, artifact.get("properties", {}).get("file")))
    for artifact_id, artifact in artifacts.items():
        if not isinstance(artifact, dict):
            continue
        properties = artifact.get("properties") or {}
        if artifact.get("type") == "aws:cloudformation:stack":
            template = properties.get("templateFile")
            if not isinstance(template, str):
                continue
            path = _inside(directory, template, manifest_path)
            name = str(properties.get("stackName") or artifact.get("displayName") or artifact_id)
            stack = open_stack(read(path), str(path), name.replace("/", "-"), overrides)
            builders.append(build_stack(stack, directory, root, assets))
        elif artifact.get("type") == "cdk:cloud-assembly" and depth < _MAX_NESTING:
            nested = properties.get("directoryName")
            if isinstance(nested, str):
                _stacks(_inside(directory, nested, manifest_path), root, overrides, builders,
                        depth + 1)  # fmt: skip


def _inside(directory: Path, name: str, manifest_path: Path) -> Path:
    """A path the assembly names, which must stay inside it (the files are not lrun's)."""
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        message = f"names {name!r}, outside the assembly {directory}; lrun does not follow it"
        raise ManifestError([Problem(str(manifest_path), None, "artifacts", message)])
    return path


def _assets(directory: Path, name: Any) -> dict[str, Path]:
    """S3 object key -> asset path (relative to the assembly), from an asset manifest."""
    if not isinstance(name, str):
        return {}
    found = _read_json(_inside(directory, name, directory / ASSEMBLY_MANIFEST))
    files = found.get("files") if isinstance(found, dict) else None
    result: dict[str, Path] = {}
    for entry in (files or {}).values():
        if not isinstance(entry, dict):
            continue
        source = (entry.get("source") or {}).get("path")
        if not isinstance(source, str):
            continue
        for destination in (entry.get("destinations") or {}).values():
            key = destination.get("objectKey") if isinstance(destination, dict) else None
            if isinstance(key, str):
                result[key] = Path(source)
    return result
