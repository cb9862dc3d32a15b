"""Every command block in the README runs as written, as a new user would run it.

A command block is a fenced ``sh``, ``bash``, ``shell`` or ``console`` block (in a ``console``
block, the lines starting with ``$ `` are the commands). Each runs with ``bash -e`` in a project
``lrun init python`` made, with the virtual environment's ``bin`` first on ``PATH`` (as after
``. .venv/bin/activate``), a home directory of its own and none of the caller's AWS settings,
as on a fresh machine. An HTML comment on the line before a block changes that:

- ``<!-- readme-test: skip (why) -->``: not run (long-running commands, ``make`` targets); keep
  these few.
- ``<!-- readme-test: serve -->``: run against an ``lrun serve`` the test starts in the project
  first; the block's ``127.0.0.1:9001`` is that server's address (its port is free, not 9001).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import ServerFactory
from tests.conftest import ROOT

README = ROOT / "README.md"
COMMAND_LANGUAGES = ("sh", "bash", "shell", "console")
MARKER = re.compile(r"^<!-- readme-test: (?P<kind>\w+)(?: \((?P<why>[^)]+)\))? -->$")
MOST_SKIPPED = 4
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None  # "skip", "serve" or None
    why: str | None

    def commands(self) -> str:
        if self.language != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def blocks(text: str) -> list[Block]:
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[i])  # also inside list items, indented
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marked = MARKER.match(before.strip())
        if fence[1] in COMMAND_LANGUAGES:
            found.append(
                Block(
                    i + 1,
                    fence[1],
                    textwrap.dedent("\n".join(lines[i + 1 : end]) + "\n"),
                    marked["kind"] if marked else None,
                    marked["why"] if marked else None,
                )
            )
        i = end + 1
    return found


ALL = blocks(README.read_text())
RUNNABLE = [b for b in ALL if b.marker != "skip"]


def test_the_readme_has_command_blocks_and_few_are_skipped() -> None:
    assert len(RUNNABLE) >= 2
    skipped = [b for b in ALL if b.marker == "skip"]
    assert len(skipped) <= MOST_SKIPPED, [b.line for b in skipped]
    assert all(b.why for b in skipped), (
        "say why a block is skipped: <!-- readme-test: skip (why) -->"
    )
    assert {b.marker for b in ALL} <= {None, "skip", "serve"}


def test_markers_sit_right_before_a_command_block() -> None:
    """A marker anywhere else would silently mark nothing."""
    lines = README.read_text().splitlines()
    marked = {b.line for b in ALL if b.marker is not None}
    for number, line in enumerate(lines, start=1):
        if MARKER.match(line.strip()):
            following = next(n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip())
            assert following in marked, f"README.md:{number}: marker not followed by a block"


def fresh_machine(home: Path, state: Path) -> dict[str, str]:
    """The environment of a new user with the virtual environment activated."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LRUN_", "BOTO")) and k not in ("PYTHONPATH",)
    }
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(Path(venv_bin).parent),
        HOME=str(home),
        LRUN_STATE_DIR=str(state),
    )
    return env


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"README.md:{b.line}" for b in RUNNABLE])
def test_the_command_block_runs_as_written(
    block: Block, tmp_path: Path, serve_lrun: ServerFactory
) -> None:
    home, state, project = tmp_path / "home", tmp_path / "state", tmp_path / "project"
    home.mkdir()
    env = fresh_machine(home, state)
    made = subprocess.run(
        ["lrun", "init", "python", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert made.returncode == 0, made.stderr
    commands = block.commands()
    if block.marker == "serve":
        server = serve_lrun(project)
        commands = commands.replace("127.0.0.1:9001", f"127.0.0.1:{server.port}")
        env.update(server.env)
    ran = subprocess.run(
        ["bash", "-e", "-c", commands],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert ran.returncode == 0, (
        f"README.md:{block.line} failed ({ran.returncode}):\n{commands}\n"
        f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
    )
    assert "Traceback" not in ran.stderr, ran.stderr
