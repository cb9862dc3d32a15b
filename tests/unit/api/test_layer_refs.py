"""Unit tests of how a manifest function's layers become directories: zips of the project
unpacked (as hostile as an upload), published versions found in the store, Lambda's 250 MB limit
on code and layers together, and the bound on the mounts a merge needs."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import layer_refs
from orchestrator.api.code_package import Packages
from orchestrator.api.layer_refs import LayerCatalog, resolve_alone
from orchestrator.errors import InvalidParameterValue, ManifestError
from orchestrator.events.layer_versions import LayerVersion, LayerVersions
from orchestrator.events.store import Store
from orchestrator.manifest import load
from orchestrator.sandbox import container
from tests.unit.manifest.test_functions import write_function

ARN = "arn:aws:lambda:us-east-1:000000000000:layer:sdk:1"


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def catalog(tmp_path: Path, versions: LayerVersions | None = None) -> LayerCatalog:
    state = tmp_path / "state"
    found = versions or LayerVersions(Store(state / "lrun.db"))
    return LayerCatalog(found, Packages(state / "layers"), state / "layers" / "local")


def test_a_zip_of_the_project_is_unpacked_once_where_lrun_says(tmp_path: Path) -> None:
    (tmp_path / "sdk.zip").write_bytes(zip_of({"python/sdk.py": "X = 1\n"}))
    spec = load(write_function(tmp_path, layers=["sdk.zip"])).function("hello")
    layers = catalog(tmp_path)
    resolved = layers.resolve(spec)
    directory = resolved.layers[0].directory
    assert directory is not None and directory.parent == tmp_path / "state" / "layers" / "local"
    assert (directory / "python" / "sdk.py").read_text() == "X = 1\n"
    assert layers.resolve(spec).layers[0].directory == directory  # the same bytes: no new copy
    assert resolved.config_digest() != spec.config_digest()
    layers.sweep_local(set())
    assert not directory.exists()


@pytest.mark.parametrize(
    "files", [{"../../outside.txt": "x"}, {"/etc/cron.d/evil": "x"}, {"a/../../x": "x"}]
)
def test_a_hostile_zip_of_the_project_is_refused(tmp_path: Path, files: dict[str, str]) -> None:
    (tmp_path / "evil.zip").write_bytes(zip_of(files))
    spec = load(write_function(tmp_path, layers=["evil.zip"])).function("hello")
    with pytest.raises(InvalidParameterValue, match="Could not unzip uploaded file: entry"):
        catalog(tmp_path).resolve(spec)
    assert not (tmp_path / "outside.txt").exists()
    local = tmp_path / "state" / "layers" / "local"
    assert list(local.iterdir()) == []  # nothing half-unpacked is left


def test_a_zip_too_large_to_upload_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_refs, "MAX_ZIPPED", 10)
    (tmp_path / "big.zip").write_bytes(zip_of({"a": "x" * 100}))
    spec = load(write_function(tmp_path, layers=["big.zip"])).function("hello")
    with pytest.raises(InvalidParameterValue, match="more than the 10 bytes Lambda takes"):
        catalog(tmp_path).resolve(spec)


def test_code_and_layers_are_held_to_the_unzipped_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_refs, "MAX_UNZIPPED", 100)
    (tmp_path / "hello" / "app.py").parent.mkdir()
    (tmp_path / "hello" / "app.py").write_text("x" * 60)
    (tmp_path / "sdk").mkdir()
    (tmp_path / "sdk" / "lib.py").write_text("y" * 50)
    spec = load(write_function(tmp_path, layers=["sdk"])).function("hello")
    with pytest.raises(InvalidParameterValue) as refused:
        catalog(tmp_path).resolve(spec)
    assert refused.value.message == (
        "Function code combined with layers exceeds the maximum allowed size of 100 bytes. "
        "The actual size is 110 bytes."
    )


def test_layers_that_would_need_too_many_mounts_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_refs, "MAX_LAYER_MOUNTS", 3)
    for layer in ("a", "b"):
        for index in range(3):
            (tmp_path / layer / "python" / f"{layer}{index}").mkdir(parents=True)
    spec = load(write_function(tmp_path, layers=["a", "b"])).function("hello")
    with pytest.raises(InvalidParameterValue, match="would need 6 mounts"):
        catalog(tmp_path).resolve(spec)
    assert container.MAX_LAYER_MOUNTS == 256


def published(store: Store) -> LayerVersions:
    versions = LayerVersions(store)

    async def main() -> None:
        await versions.load()
        record = LayerVersion("sdk", 0, "", None, None, None, 0.0, "sha", 10, 5, "a" * 32)
        await versions.publish(record)

    asyncio.run(main())
    return versions


def test_a_published_version_is_found_and_an_unknown_one_is_a_manifest_problem(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state" / "lrun.db")
    store.open()
    try:
        versions = published(store)
    finally:
        store.close()
    (tmp_path / "state" / "layers" / ("a" * 32)).mkdir(parents=True)
    layers = catalog(tmp_path, versions)
    manifest = load(write_function(tmp_path, layers=[ARN]))
    resolved = asyncio.run(layers.resolve_manifest(manifest))
    assert resolved.function("hello").layers[0].directory == tmp_path / "state" / "layers" / (
        "a" * 32
    )
    missing = load(write_function(tmp_path, layers=[ARN.replace(":1", ":2")]))
    with pytest.raises(ManifestError) as refused:
        asyncio.run(layers.resolve_manifest(missing))
    [problem] = refused.value.problems
    assert problem.where == "functions.hello.layers"
    assert problem.message == f"Layer version {ARN.replace(':1', ':2')} does not exist."


def test_lrun_invoke_without_a_server_finds_published_versions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = Store(state / "lrun.db")
    store.open()
    try:
        published(store)
    finally:
        store.close()
    (state / "layers" / ("a" * 32)).mkdir(parents=True)
    path = write_function(tmp_path, layers=[ARN])
    spec = resolve_alone(load(path).function("hello"), path, state)
    assert spec.layers[0].directory == state / "layers" / ("a" * 32)
    other: Any = load(write_function(tmp_path, layers=[ARN.replace("sdk", "nope")]))
    with pytest.raises(ManifestError, match="does not exist"):
        resolve_alone(other.function("hello"), path, state)
