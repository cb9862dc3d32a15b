"""Unit tests for file destinations in the manifest: named by their path relative to the
manifest's directory, and never anywhere else (issue 8, finding 1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.manifest import load
from orchestrator.manifest.triggers import Destination
from tests.unit.manifest.test_functions import one_problem, write_function

FIX = "a file destination must be a path inside {base}, e.g. {{file: ./out/ok.jsonl}}"


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("./out/ok.jsonl", "out/ok.jsonl"),
        ("out/ok.jsonl", "out/ok.jsonl"),
        ("./out/./ok.jsonl", "out/ok.jsonl"),
        ("ok.jsonl", "ok.jsonl"),
    ],
)
def test_a_file_destination_is_named_by_its_path_inside_the_manifests_directory(
    tmp_path: Path, written: str, name: str
) -> None:
    loaded = load(write_function(tmp_path, **{"async": {"on_success": {"file": written}}}))
    assert loaded.triggers["hello"].async_config.on_success == Destination("file", name)
    assert loaded.file_destinations == {name}
    assert loaded.directory == tmp_path


def test_an_absolute_path_inside_the_manifests_directory_is_taken_as_relative(
    tmp_path: Path,
) -> None:
    written = str(tmp_path / "out" / "ok.jsonl")
    loaded = load(write_function(tmp_path, **{"async": {"on_failure": {"file": written}}}))
    assert loaded.triggers["hello"].async_config.on_failure == Destination("file", "out/ok.jsonl")


def test_every_declared_file_is_a_destination_the_api_may_name(tmp_path: Path) -> None:
    settings = {"async": {"on_success": {"file": "./a.jsonl"}, "on_failure": {"file": "b/c.jsonl"}}}
    assert load(write_function(tmp_path, **settings)).file_destinations == {"a.jsonl", "b/c.jsonl"}


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("/root/.bashrc", "is outside the manifest's directory"),
        ("/tmp/elsewhere.jsonl", "is outside the manifest's directory"),
        ("../outside.jsonl", "goes up with '..'"),
        ("./out/../../outside.jsonl", "goes up with '..'"),
        ("out/../ok.jsonl", "goes up with '..'"),
        (".", "is not a file path"),
    ],
)
def test_a_file_destination_outside_the_manifests_directory_is_refused(
    tmp_path: Path, written: str, what: str
) -> None:
    problem = one_problem(write_function(tmp_path, **{"async": {"on_success": {"file": written}}}))
    assert problem.where == "functions.hello.async.on_success"
    assert problem.message == f"{written!r} {what}; " + FIX.format(base=tmp_path)


@pytest.mark.parametrize("inside", [False, True])
def test_a_file_destination_through_a_symbolic_link_is_refused(
    tmp_path: Path, inside: bool
) -> None:
    # Even one that leads inside today: it is followed at no write, and could change any time.
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    os.symlink(project / "records" if inside else outside, project / "out")
    problem = one_problem(
        write_function(project, **{"async": {"on_failure": {"file": "./out/ok.jsonl"}}})
    )
    assert problem.message == (
        "'./out/ok.jsonl' passes through the symbolic link 'out', which lrun does not follow; "
        + FIX.format(base=project)
    )


def test_a_symbolic_link_as_the_file_itself_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("")
    (tmp_path / "project" / "out").mkdir(parents=True)
    os.symlink(victim, tmp_path / "project" / "out" / "ok.jsonl")
    problem = one_problem(
        write_function(tmp_path / "project", **{"async": {"on_success": {"file": "out/ok.jsonl"}}})
    )
    assert "passes through the symbolic link 'out/ok.jsonl'" in problem.message
