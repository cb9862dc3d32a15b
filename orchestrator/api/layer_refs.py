"""A function's layers made real: the layer versions a function's ``Layers`` name (refused as
AWS refuses them), a manifest's zips unpacked, and every layer's directory found, with Lambda's
250 MB limit on code and layers together.

A manifest's zip is hostile input like an uploaded one: ``orchestrator.unzip`` unpacks it under
the state directory, in a directory named by the digest of its bytes (so an unchanged zip is
unpacked once), through a temporary directory renamed into place whole.

Blocking, except ``resolve_manifest``: call in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orchestrator.api.code_package import Packages, tree_size
from orchestrator.errors import (
    AccessDenied,
    InvalidParameterValue,
    LambdaError,
    ManifestError,
    Problem,
)
from orchestrator.events.layer_versions import LayerVersion, LayerVersions
from orchestrator.events.store import Store
from orchestrator.manifest import FunctionSpec, Manifest
from orchestrator.manifest.layers import (
    LAYER_VERSION_ARN,
    MAX_LAYERS,
    Layer,
    foreign,
    same_layer_twice,
)
from orchestrator.sandbox.container import MAX_LAYER_MOUNTS, layer_binds
from orchestrator.unzip import MAX_UNZIPPED, MAX_ZIPPED, extract_file, sweep


class LayerCatalog:
    """Published layer versions and unpacked manifest zips, as functions use them."""

    def __init__(self, versions: LayerVersions, packages: Packages, local_root: Path) -> None:
        self.versions = versions
        self.packages = packages
        self.local_root = local_root

    # Layers of functions made through the API

    def check_arns(self, arns: Sequence[str]) -> tuple[LayerVersion, ...]:
        """The live layer versions ``arns`` name, in order; AWS's refusals otherwise."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValue(f"Cannot reference more than {MAX_LAYERS} layers.")
        for arn in arns:
            why = foreign(arn)
            if why is not None:
                raise AccessDenied(why) if why.startswith("User:") else InvalidParameterValue(why)
        twice = same_layer_twice(list(arns))
        if twice is not None:
            raise InvalidParameterValue(twice)
        found = []
        for arn in arns:
            version = self.find(arn, live=True)
            if version is None:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            found.append(version)
        return tuple(found)

    def find(self, arn: str, live: bool) -> LayerVersion | None:
        """The version an ARN of lrun's names; with ``live`` False, a deleted one still kept
        for the functions that use it too."""
        parts = LAYER_VERSION_ARN.fullmatch(arn)
        if parts is None or foreign(arn) is not None:
            return None
        name, number = parts["name"], int(parts["version"])
        return self.versions.get(name, number) if live else self.versions.stored(name, number)

    def layer(self, arn: str) -> Layer:
        """A function's layer for a version ARN, its directory set if lrun still keeps it."""
        found = self.find(arn, live=False)
        directory = None if found is None else self.packages.directory(found.token)
        return Layer(arn, "arn", directory)

    def shown(self, layers: Iterable[Layer]) -> list[dict[str, Any]]:
        """``Layers`` as GetFunction shows them: the layer versions, with their zips' sizes
        (a manifest's own directories and zips are no layer versions: ``lrun functions``
        shows them)."""
        listed = []
        for layer in layers:
            if layer.kind == "arn":
                found = self.find(layer.source, live=False)
                size = found.code_size if found is not None else 0
                listed.append({"Arn": layer.source, "CodeSize": size})
        return listed

    # Any function

    def resolve(self, spec: FunctionSpec, unzipped: int | None = None) -> FunctionSpec:
        """``spec`` with every layer's directory found (a manifest's zips unpacked), refused with
        AWS's error if code and layers together pass Lambda's unzipped limit. ``unzipped``: the
        code's size if known, else measured."""
        if not spec.layers:
            return spec
        layers = tuple(self._resolved(layer) for layer in spec.layers)
        directories = [layer.directory for layer in layers if layer.directory is not None]
        if unzipped is None:
            unzipped = tree_size(spec.code) if spec.code is not None else 0
        total = unzipped + sum(self._size(layer) for layer in layers)
        if total > MAX_UNZIPPED:
            raise InvalidParameterValue(
                "Function code combined with layers exceeds the maximum allowed size of "
                f"{MAX_UNZIPPED} bytes. The actual size is {total} bytes."
            )
        mounts = len(layer_binds(tuple(directories)))
        if mounts > MAX_LAYER_MOUNTS:
            raise InvalidParameterValue(
                f"The layers of {spec.name} share directories so deeply that lrun would need "
                f"{mounts} mounts to merge them at /opt (at most {MAX_LAYER_MOUNTS}); merge "
                "the layers that share directories into one"
            )
        return replace(spec, layers=layers)

    def _resolved(self, layer: Layer) -> Layer:
        if layer.directory is not None:
            return layer
        if layer.kind == "zip":
            return replace(layer, directory=self._unpack_local(Path(layer.source)))
        found = self.find(layer.source, live=False)
        if found is None:
            raise InvalidParameterValue(f"Layer version {layer.source} does not exist.")
        return replace(layer, directory=self.packages.directory(found.token))

    def _size(self, layer: Layer) -> int:
        if layer.kind == "arn":
            found = self.find(layer.source, live=False)
            return found.unzipped_size if found is not None else 0
        return tree_size(layer.directory) if layer.directory is not None else 0

    def _unpack_local(self, zip_path: Path) -> Path:
        return extract_file(zip_path, self.local_root, max_zipped=MAX_ZIPPED)

    def sweep_local(self, kept: set[Path]) -> None:
        """Remove unpacked zips no function uses (and what an interrupted unpack left)."""
        sweep(self.local_root, kept)

    async def resolve_manifest(self, manifest: Manifest) -> Manifest:
        """``manifest`` with its functions' layers resolved; ``ManifestError`` naming each
        function whose layers cannot be used."""

        def work() -> tuple[dict[str, FunctionSpec], list[Problem]]:
            specs: dict[str, FunctionSpec] = {}
            problems = []
            for name, spec in manifest.functions.items():
                try:
                    specs[name] = self.resolve(spec)
                except LambdaError as exc:
                    where = f"functions.{name}.layers"
                    problems.append(Problem(str(manifest.path), None, where, exc.message))
            return specs, problems

        if not any(spec.layers for spec in manifest.functions.values()):
            return manifest
        specs, problems = await asyncio.to_thread(work)
        if problems:
            raise ManifestError(problems)
        functions: Mapping[str, FunctionSpec] = MappingProxyType(specs)
        return replace(manifest, functions=functions)


def resolve_alone(spec: FunctionSpec, manifest: Path, state: Path) -> FunctionSpec:
    """``spec`` with its layers resolved without a server (`lrun invoke` with none running):
    published versions are read from the store; ``ManifestError`` if they cannot be used."""
    store = Store(state / "lrun.db")
    versions = LayerVersions(store)
    if any(layer.kind == "arn" for layer in spec.layers):
        store.open()
        try:
            asyncio.run(versions.load())
        finally:
            store.close()
    catalog = LayerCatalog(versions, Packages(state / "layers"), state / "layers" / "local")
    try:
        return catalog.resolve(spec)
    except LambdaError as exc:
        where = f"functions.{spec.name}.layers"
        raise ManifestError([Problem(str(manifest), None, where, exc.message)]) from None
