"""The `lrun` command: one module per command group; this one only assembles them.

This is the composition root and the only package that writes to the terminal. Heavy modules
(the Docker SDK, the server) are imported inside the commands that need them, so `lrun --help`
and a one-shot `lrun invoke` start fast. Commands never end the process themselves: they return
or raise (``click.exceptions.Exit`` for an exit code), so click's ``CliRunner`` can run any of them
in-process; only ``entry``, the console script, ends the process, and fast.
May import: everything.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from orchestrator import __version__, trace
from orchestrator.cli.common import err
from orchestrator.errors import LrunError

# Each command's module, imported only when that command runs (or help lists them all): a
# one-shot `lrun invoke` does not pay for the others' imports.
COMMANDS = {
    "validate": "project",
    "runtimes": "runtimes",
    "invoke": "invoke",
    "init": "project",
    "serve": "serve",
    "ps": "status",
    "events": "status",
    "queue": "queue",
    "functions": "functions",
    "logs": "logs",
    "cost": "cost",
    "tune": "tune",
}


class _Group(click.Group):
    """Catches lrun's errors once, for every command: one line, the right exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module = importlib.import_module(f"orchestrator.cli.{COMMANDS[cmd_name]}")
            self.add_command(getattr(module, cmd_name))
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        trace.mark("cli ready")
        try:
            return super().invoke(ctx)
        except LrunError as exc:
            err(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}")
            raise click.exceptions.Exit(exc.exit_code) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="lrun")
def main() -> None:
    """Run AWS Lambda functions locally, in real containers, the way Lambda runs them."""


def entry() -> NoReturn:
    """The `lrun` console script: run the command, flush its output, end the process at once.

    Skipping the interpreter's tear-down (tens of milliseconds of module and thread clean-up)
    keeps a one-shot `lrun invoke` fast. Safe here, and only here: every command has finished,
    its event loop is closed, and a one-shot container removes itself.
    """
    try:
        main(prog_name="lrun")  # standalone: always ends with SystemExit
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int | None):
            err(str(exc.code))
    trace.dump()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (lrun ... | head): nothing left to say
            pass
    os._exit(code)
