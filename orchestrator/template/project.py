"""Which file describes the project: ``lrun.yaml``, a SAM/CloudFormation template, or a CDK
app's ``cdk.out/``; how to load it, and which edits reload it.

Found without reading it, so that a command can consult a running server first. With neither
``-f`` nor ``-t``, the current directory's ``lrun.yaml`` wins; otherwise a SAM project's built
template (``.aws-sam/build/template.yaml``, as ``sam local`` prefers it), then
``template.yaml``, ``template.yml``, ``template.json``, then ``cdk.out/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from orchestrator import manifest
from orchestrator.errors import LrunError, ManifestError, Problem
from orchestrator.manifest import Manifest
from orchestrator.template.layout import (
    ASSEMBLY_MANIFEST,
    CDK_OUT,
    SAM_BUILD,
    TEMPLATE_NAMES,
    is_assembly,
)

Kind = Literal["manifest", "template", "cdk"]


@dataclass(frozen=True)
class Project:
    """The file a project is described by (a ``cdk.out`` directory for CDK), and its kind."""

    path: Path
    kind: Kind
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def load(self) -> Manifest:
        # The readers are imported here: a command that only looks for a running server for
        # the project never pays for them.
        if self.kind == "manifest":
            return manifest.load(self.path)
        if self.kind == "cdk":
            from orchestrator.template.cdk import load_assembly

            return load_assembly(self.path, self.parameters)
        from orchestrator.template.convert import load_template

        return load_template(self.path, self.parameters)

    def watched(self) -> tuple[Path, Callable[[str], bool]]:
        """The directory whose edits may change the project, and which changed paths do."""
        if self.kind == "cdk":
            return self.path, _assembly_file
        name = self.path.name
        return self.path.parent, lambda changed: Path(changed).name == name


def _assembly_file(changed: str) -> bool:
    name = Path(changed).name
    return name == ASSEMBLY_MANIFEST or name.endswith((".template.json", ".assets.json"))


def find(
    manifest_path: Path | None,
    template_path: Path | None,
    cwd: Path,
    parameters: Mapping[str, str] | None = None,
) -> Project:
    """The project to use: ``-f``'s manifest, ``-t``'s template, or what ``cwd`` holds."""
    given = MappingProxyType(dict(parameters or {}))
    if manifest_path is not None and template_path is not None:
        raise LrunError(
            f"give the manifest (-f {manifest_path}) or the template (-t {template_path}), not both"
        )
    if manifest_path is not None:
        _no_parameters(given, "lrun.yaml")
        return Project(manifest.find(manifest_path, cwd), "manifest")
    if template_path is not None:
        return _template(Path(os.path.abspath(cwd / template_path)), given)
    if (cwd / manifest.DEFAULT_MANIFEST).is_file():
        _no_parameters(given, manifest.DEFAULT_MANIFEST)
        return Project(Path(os.path.abspath(cwd / manifest.DEFAULT_MANIFEST)), "manifest")
    found = _discover(Path(os.path.abspath(cwd)), given)
    if found is None:
        fix = (
            "run 'lrun init' (or 'lrun init sam') to create one, or pass -f lrun.yaml or "
            "-t template.yaml"
        )
        message = f"no lrun.yaml, template.yaml or {CDK_OUT}/ found in {cwd}; {fix}"
        raise ManifestError([Problem(str(cwd), None, "(file)", message)])
    return found


def _no_parameters(parameters: Mapping[str, str], what: str) -> None:
    if parameters:
        raise LrunError(
            f"--parameter-overrides are for templates, and {what} is not one; give the "
            "template with -t"
        )


def _discover(directory: Path, parameters: Mapping[str, str]) -> Project | None:
    for candidate in (SAM_BUILD, *TEMPLATE_NAMES):
        if (directory / candidate).is_file():
            return Project(directory / candidate, "template", parameters)
    if is_assembly(directory / CDK_OUT):
        return Project(directory / CDK_OUT, "cdk", parameters)
    return None


def _template(path: Path, parameters: Mapping[str, str]) -> Project:
    if path.is_dir():
        if is_assembly(path):
            return Project(path, "cdk", parameters)
        found = _discover(path, parameters)
        if found is not None:
            return found
        message = f"is a directory with no template.yaml, template.json or {CDK_OUT}/ in it"
        fix = "pass the template file itself with -t"
        raise ManifestError([Problem(str(path), None, "(file)", f"{message}; {fix}")])
    if path.name == ASSEMBLY_MANIFEST and is_assembly(path.parent):
        return Project(path.parent, "cdk", parameters)
    if not path.is_file():
        fix = "pass an existing template (template.yaml) or a cdk.out directory with -t"
        raise ManifestError([Problem(str(path), None, "(file)", f"no such file; {fix}")])
    return Project(path, "template", parameters)
