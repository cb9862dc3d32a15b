"""The `lrun` command: one module per command group; this one only assembles them.

This is the composition root and the only package that writes to the terminal. Heavy modules
(the Docker SDK, the server) are imported inside the commands that need them, so `lrun --help`
and a one-shot `lrun invoke` start fast.
May import: everything.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator import __version__, trace
from orchestrator.cli.common import err
from orchestrator.cli.invoke import invoke
from orchestrator.cli.project import init, validate
from orchestrator.cli.queue import queue
from orchestrator.cli.runtimes import runtimes
from orchestrator.cli.serve import serve
from orchestrator.cli.status import events, ps
from orchestrator.errors import LrunError


class _Group(click.Group):
    """Catches lrun's errors once, for every command: one line, the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        trace.mark("cli ready")
        try:
            return super().invoke(ctx)
        except LrunError as exc:
            err(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}")
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="lrun")
def main() -> None:
    """Run AWS Lambda functions locally, in real containers, the way Lambda runs them."""


for command in (validate, runtimes, invoke, init, serve, ps, events, queue):
    main.add_command(command)
