"""``cli.entry``, the console script: the one place the process ends, with the command's code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.cli import entry


class Ended(BaseException):
    """What the test's ``os._exit`` raises instead of ending the test run."""


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Ended

    monkeypatch.setattr(os, "_exit", fake_exit)
    return codes


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["validate"], 0),
        (["--version"], 0),
        (["invoke", "coutn"], 2),  # lrun's error: one line, its exit code
        (["invoke"], 2),  # click's usage error
        (["no-such-command"], 2),
        (["ps"], 2),
    ],
)
def test_entry_ends_the_process_once_with_the_command_s_code(
    runner: object,
    probe_dir: Path,
    exits: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
) -> None:
    monkeypatch.setattr(sys, "argv", ["lrun", *argv])
    with pytest.raises(Ended):
        entry()
    assert exits == [code]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code:
        assert err.strip(), "a failing command says why"
