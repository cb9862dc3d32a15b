"""Unit tests for a function's layers: local directories laid over /opt, kept in the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import load
from orchestrator.sandbox.container import layer_binds
from tests.unit.manifest.test_functions import problems, write_function


def test_layers_are_resolved_in_order_relative_to_the_manifest(tmp_path: Path) -> None:
    for name in ("sdk", "tools"):
        (tmp_path / "layers" / name).mkdir(parents=True)
    path = write_function(tmp_path, layers=["./layers/sdk", "layers/tools"])
    spec = load(path).function("hello")
    assert spec.layers == (tmp_path / "layers" / "sdk", tmp_path / "layers" / "tools")


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
    (project / "escape").symlink_to(tmp_path / "elsewhere")
    path = write_function(project, layers=["../elsewhere", "escape", "/etc"])
    found = problems(path)
    assert [p.where for p in found] == [
        "functions.hello.layers[0]",
        "functions.hello.layers[1]",
        "functions.hello.layers[2]",
    ]
    assert all("is outside the project; keep layers inside" in p.message for p in found)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("./sdk", "'./sdk' is not a list; layers must be a list of directories"),
        ([3], "3 is not a path; each layer is a directory path"),
        (["missing"], "'missing' does not exist"),
        (["file.txt"], "'file.txt' is not a directory"),
        ([f"l{i}" for i in range(6)], "6 layers given; a function can use at most 5 layers"),
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


def test_one_layer_is_opt_itself(tmp_path: Path) -> None:
    assert layer_binds(()) == ()
    assert layer_binds((tmp_path,)) == ((tmp_path, "/opt"),)


def test_several_layers_merge_by_top_level_entry_later_ones_winning(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for layer, entries in ((first, ["nodejs", "bin"]), (second, ["python", "bin"])):
        for entry in entries:
            (layer / entry).mkdir(parents=True)
    assert dict((target, source) for source, target in layer_binds((first, second))) == {
        "/opt/bin": second / "bin",
        "/opt/nodejs": first / "nodejs",
        "/opt/python": second / "python",
    }
