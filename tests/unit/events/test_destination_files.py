"""Unit tests for orchestrator.events.destination_files: appending records inside the manifest's
directory, and refusing every way out of it that can appear after the manifest was read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from orchestrator.errors import UnsafePath
from orchestrator.events.destination_files import append, parts_of


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


def test_appends_lines_creating_the_directories(project: Path) -> None:
    append(project, "out/deep/ok.jsonl", b'{"a": 1}\n')
    append(project, "out/deep/ok.jsonl", b'{"a": 2}\n')
    assert (project / "out" / "deep" / "ok.jsonl").read_bytes() == b'{"a": 1}\n{"a": 2}\n'


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "//etc/passwd", "../outside.jsonl", "out/../../x", "", "."]
)
def test_a_name_that_could_leave_the_directory_is_refused(project: Path, name: str) -> None:
    with pytest.raises(UnsafePath, match="is not a path inside the manifest's directory"):
        parts_of(name)
    with pytest.raises(UnsafePath):
        append(project, name, b"attack\n")


def test_a_directory_replaced_by_a_symbolic_link_after_loading_is_not_followed(
    project: Path, outside: Path
) -> None:
    os.symlink(outside, project / "out")
    with pytest.raises(UnsafePath, match="'out' is a symbolic link"):
        append(project, "out/ok.jsonl", b"attack\n")
    assert list(outside.iterdir()) == []


def test_a_symbolic_link_planted_as_the_file_is_not_followed(project: Path, outside: Path) -> None:
    victim = outside / ".bashrc"
    victim.write_text("original\n")
    (project / "out").mkdir()
    os.symlink(victim, project / "out" / "ok.jsonl")
    with pytest.raises(UnsafePath, match="symbolic link or not a regular file"):
        append(project, "out/ok.jsonl", b"attack\n")
    assert victim.read_text() == "original\n"


def test_a_dangling_symbolic_link_is_not_followed_to_create_a_file(
    project: Path, outside: Path
) -> None:
    os.symlink(outside / "created", project / "ok.jsonl")
    with pytest.raises(UnsafePath):
        append(project, "ok.jsonl", b"attack\n")
    assert not (outside / "created").exists()


def test_a_hard_link_to_a_file_elsewhere_is_refused(project: Path, outside: Path) -> None:
    victim = outside / "victim"
    victim.write_text("original\n")
    os.link(victim, project / "ok.jsonl")
    with pytest.raises(UnsafePath, match="hard"):
        append(project, "ok.jsonl", b"attack\n")
    assert victim.read_text() == "original\n"


def test_a_fifo_does_not_block_the_writer(project: Path) -> None:
    os.mkfifo(project / "ok.jsonl")
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            append(project, "ok.jsonl", b"x\n")
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(5), "the writer blocked on a FIFO"
    assert len(errors) == 1 and isinstance(errors[0], UnsafePath)


def test_a_directory_in_the_files_place_is_an_os_error(project: Path) -> None:
    (project / "ok.jsonl").mkdir()
    with pytest.raises(OSError):
        append(project, "ok.jsonl", b"x\n")


def test_a_file_in_a_directorys_place_is_an_os_error_not_a_link(project: Path) -> None:
    (project / "out").write_text("a file\n")
    with pytest.raises(NotADirectoryError):
        append(project, "out/ok.jsonl", b"x\n")
