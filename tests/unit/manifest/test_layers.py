"""Unit tests for a function's layers in the manifest (directories, zips and layer version ARNs,
kept in the project) and for how several are merged at /opt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import load
from orchestrator.manifest.layers import Layer
from orchestrator.sandbox.container import layer_binds
from tests.unit.manifest.test_functions import problems, write_function

ARN = "arn:aws:lambda:us-east-1:000000000000:layer:sdk:3"


def test_layers_are_resolved_in_order_relative_to_the_manifest(tmp_path: Path) -> None:
    for name in ("sdk", "tools"):
        (tmp_path / "layers" / name).mkdir(parents=True)
    (tmp_path / "layers" / "more.zip").write_bytes(b"PK")
    path = write_function(tmp_path, layers=["./layers/sdk", "layers/more.zip", ARN, "layers/tools"])
    spec = load(path).function("hello")
    assert spec.layers == (
        Layer.of_directory(tmp_path / "layers" / "sdk"),
        Layer(str(tmp_path / "layers" / "more.zip"), "zip"),
        Layer(ARN, "arn"),
        Layer.of_directory(tmp_path / "layers" / "tools"),
    )


def test_no_layers_by_default_and_layers_change_the_digest(tmp_path: Path) -> None:
    (tmp_path / "sdk").mkdir()
    plain = load(write_function(tmp_path)).function("hello")
    assert plain.layers == ()
    layered = load(write_function(tmp_path, layers=["sdk"])).function("hello")
    assert layered.config_digest() != plain.config_digest()


def test_a_layer_outside_the_project_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "outside.zip").write_bytes(b"PK")
    (project / "escape").symlink_to(tmp_path / "elsewhere")
    path = write_function(project, layers=["../elsewhere", "escape", "/etc", "../outside.zip"])
    found = problems(path)
    assert [p.where for p in found] == [f"functions.hello.layers[{i}]" for i in range(4)]
    assert all("is outside the project; keep layers inside" in p.message for p in found)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("./sdk", "'./sdk' is not a list; layers must be a list of directories, zips or layer"),
        ([3], "3 is not a path; each layer is a directory, a zip or a layer version ARN"),
        (["missing"], "'missing' does not exist"),
        (["file.txt"], "'file.txt' is neither a directory nor a .zip"),
        ([f"l{i}" for i in range(6)], "6 layers given; a function can use at most 5 layers"),
        (
            ["arn:aws:lambda:us-east-1:000000000000:layer:sdk"],
            "is not a layer version ARN; a layer version ARN reads arn:aws:lambda:REGION:",
        ),
        (
            ["arn:aws:lambda:eu-west-1:000000000000:layer:sdk:1"],
            "Layers are not in the same region as the function. Layers are expected to be in "
            "region us-east-1.; name a layer version published to this lrun",
        ),
        (
            ["arn:aws:lambda:us-east-1:123456789012:layer:sdk:1"],
            "User: arn:aws:iam::000000000000:root is not authorized to perform: "
            "lambda:GetLayerVersion on resource: arn:aws:lambda:us-east-1:123456789012:layer:"
            "sdk:1 because no resource-based policy",
        ),
        (
            [ARN, ARN.replace(":3", ":4")],
            "Two different versions of the same layer are not allowed to be referenced in the same "
            f"function. {ARN} and {ARN.replace(':3', ':4')} are versions of the same layer.",
        ),
    ],
)
def test_bad_layers_are_one_clear_problem(tmp_path: Path, value: object, message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    for i in range(6):
        (tmp_path / f"l{i}").mkdir()
    [problem] = problems(write_function(tmp_path, layers=value))
    assert problem.where.startswith("functions.hello.layers")
    assert message in problem.message


def test_image_functions_take_no_layers(tmp_path: Path) -> None:
    (tmp_path / "sdk").mkdir()
    path = write_function(
        tmp_path, runtime=None, handler=None, code=None, image="mine:latest", layers=["sdk"]
    )
    with pytest.raises(ManifestError, match="layers are not allowed with image"):
        load(path)


# Merging at /opt


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(parents=True, exist_ok=True)
    return root


def merged_view(binds: tuple[tuple[Path, str], ...]) -> dict[str, str]:
    """What a container sees under /opt through ``binds``: path -> file text."""
    seen: dict[str, str] = {}
    for source, target in binds:
        if source.is_file():
            seen[target] = source.read_text()
            continue
        for root, _, files in os.walk(source):
            for name in files:
                inside = os.path.relpath(os.path.join(root, name), source)
                seen[f"{target}/{inside}"] = Path(root, name).read_text()
    return seen


def test_one_layer_is_opt_itself(tmp_path: Path) -> None:
    assert layer_binds(()) == ()
    assert layer_binds((tmp_path,)) == ((tmp_path, "/opt"),)


def test_several_layers_merge_file_by_file_later_ones_winning(tmp_path: Path) -> None:
    """As Lambda extracts each layer over /opt in order: two Python layers both have python/,
    and both packages are there; a file both have is the later layer's."""
    first = make(
        tmp_path / "a",
        {"python/powertools/__init__.py": "pt", "python/shared.py": "a", "bin/tool": "a"},
    )
    second = make(
        tmp_path / "b",
        {"python/requests/__init__.py": "rq", "python/shared.py": "b", "nodejs/x.js": "b"},
    )
    binds = layer_binds((first, second))
    assert merged_view(binds) == {
        "/opt/python/powertools/__init__.py": "pt",
        "/opt/python/requests/__init__.py": "rq",
        "/opt/python/shared.py": "b",
        "/opt/bin/tool": "a",
        "/opt/nodejs/x.js": "b",
    }
    # Only what two layers share is split: each layer's own directories are mounted whole.
    assert (first / "bin", "/opt/bin") in binds
    assert (first / "python" / "powertools", "/opt/python/powertools") in binds
    assert len(binds) == 5


def test_a_later_file_replaces_an_earlier_directory_and_back(tmp_path: Path) -> None:
    first = make(tmp_path / "a", {"x/inner": "a", "y": "a"})
    second = make(tmp_path / "b", {"x": "b", "y/inner": "b"})
    assert merged_view(layer_binds((first, second))) == {"/opt/x": "b", "/opt/y/inner": "b"}


def test_a_link_is_mounted_as_its_target_inside_its_layer_and_never_outside(
    tmp_path: Path,
) -> None:
    """The engine follows a bind mount's source on the host: a link leading out of its layer
    (to the host's files) must never be mounted; one inside is mounted as what it leads to."""
    secret = make(tmp_path / "host", {"secret": "host's"})
    first = make(tmp_path / "a", {"lib/libfoo.so.1": "foo"})
    second = make(tmp_path / "b", {"lib/real.so": "real"})
    (first / "lib" / "libfoo.so").symlink_to("libfoo.so.1")
    (second / "lib" / "escape").symlink_to(secret / "secret")
    (second / "lib" / "escape-dir").symlink_to(secret)
    binds = layer_binds((first, second))
    assert merged_view(binds) == {
        "/opt/lib/libfoo.so.1": "foo",
        "/opt/lib/libfoo.so": "foo",
        "/opt/lib/real.so": "real",
    }
    assert all(not source.is_relative_to(secret) for source, _ in binds)
