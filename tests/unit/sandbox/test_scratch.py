"""Unit tests for orchestrator.sandbox.scratch: when /tmp can be a disk of its own, and what
`lrun validate` says when it cannot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.sandbox import scratch


def test_a_user_who_is_not_root_gets_a_tmpfs_and_is_told_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert scratch.unsupported() == (
        "lrun is not running as root, which loop-mounting a file system needs"
    )


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(scratch, "_tool", lambda name: None if name == "mkfs.ext4" else name)
    assert scratch.unsupported() == "mkfs.ext4 not found (install e2fsprogs and mount)"


def test_validate_says_when_tmp_is_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    manifest = tmp_path / "lrun.yaml"
    manifest.write_text("functions:\n  f: {runtime: python3.13, handler: a.b, code: ./code}\n")
    monkeypatch.setattr(scratch, "unsupported", lambda: "lrun is not running as root")
    told = CliRunner().invoke(main, ["validate", "-f", str(manifest)])
    assert told.exit_code == 0, told.output
    assert told.output.splitlines()[-1] == (
        "note: /tmp will be a tmpfs here, which counts against each function's memory (on "
        "Lambda it is disk, apart from memory), because lrun is not running as root"
    )
    monkeypatch.setattr(scratch, "unsupported", lambda: None)
    quiet = CliRunner().invoke(main, ["validate", "-f", str(manifest)])
    assert "note:" not in quiet.output


def dead_pid() -> int:
    """A pid no process has now."""
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def test_a_dead_process_leftovers_are_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    disks = scratch.ScratchDisks(tmp_path)
    mine = disks.directory
    assert mine.parent == tmp_path and mine.name.startswith(f"{os.getpid()}-")
    (mine / "lrun-live").mkdir(parents=True)
    dead = tmp_path / f"{dead_pid()}-12345"
    (dead / "lrun-gone").mkdir(parents=True)
    (dead / "lrun-gone.img").write_bytes(b"x")
    reused = tmp_path / f"{os.getpid()}-1"  # this pid, but a process that started earlier
    (reused / "lrun-old").mkdir(parents=True)
    disks._sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name]
    assert (mine / "lrun-live").is_dir()


@pytest.mark.skipif(scratch.unsupported() is not None, reason="needs root and loop mounts")
def test_a_mount_left_by_a_killed_process_is_unmounted(tmp_path: Path) -> None:
    dead = tmp_path / f"{dead_pid()}-12345"
    dead.mkdir()
    disk = scratch.ScratchDisk(dead, "lrun-left", 8 << 20)
    disk.mount()  # mounted, and never detached: as if its process was killed here
    assert os.path.ismount(disk.mountpoint)
    scratch.ScratchDisks(tmp_path)._sweep()
    assert not os.path.ismount(disk.mountpoint)
    assert list(tmp_path.iterdir()) == []
