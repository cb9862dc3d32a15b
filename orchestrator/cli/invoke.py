"""`lrun invoke`: one invocation, through the running server when there is one, else one-shot."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import click

from orchestrator import trace
from orchestrator.cli.common import connect_backend, find_project, project_options
from orchestrator.cli.runtimes import ensure_image
from orchestrator.errors import ServerUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.manifest import FunctionSpec
    from orchestrator.sandbox.backend import Backend
    from orchestrator.sandbox.invocation import InvocationResult
    from orchestrator.sandbox.output import FileSpill

FUNCTION_ERROR_EXIT = 1


def _read_payload(payload: str | None, payload_file: str | None) -> bytes:
    if payload is not None and payload_file is not None:
        raise click.UsageError("give the payload once: --payload or --payload-file, not both")
    if payload_file == "-" or payload == "-":
        return sys.stdin.buffer.read()
    if payload_file is not None:
        try:
            return Path(payload_file).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {payload_file}: {exc.strerror}") from exc
    return (payload or "").encode()


@click.command()
@click.argument("function")
@click.argument("stdin_marker", required=False, metavar="[-]")
@click.option("--payload", "-p", help="The event, as JSON text ('-' reads standard input).")
@click.option("--payload-file", type=str, help="Read the event from a file ('-': stdin).")
@click.option(
    "--async",
    "asynchronous",
    is_flag=True,
    help="Queue it (InvocationType Event) on the running server; print its request id.",
)
@project_options
def invoke(
    function: str,
    stdin_marker: str | None,
    payload: str | None,
    payload_file: str | None,
    asynchronous: bool,
    manifest_path: Path | None,
    template_path: Path | None,
    parameter_overrides: tuple[str, ...],
) -> None:
    """Invoke FUNCTION once and print its response; its log goes to standard error.

    Exits 0 on success and 1 when the function failed (its error JSON is printed).
    """
    from orchestrator.sandbox import invocation

    if stdin_marker is not None and stdin_marker != "-":
        raise click.UsageError(f"unexpected argument {stdin_marker!r}; use '-' to read stdin")
    body = _read_payload("-" if stdin_marker == "-" else payload, payload_file)
    body = invocation.check_payload(body)  # refused before any container starts
    from orchestrator.api import client

    project = find_project(manifest_path, template_path, parameter_overrides)
    path = project.path
    server = client.find(path)
    if asynchronous:
        if server is None:
            raise ServerUnavailable(
                f"asynchronous invocations are queued by `lrun serve`; start it for {path} "
                "first (lrun serve), then invoke with --async"
            )
        click.echo(
            json.dumps({"StatusCode": 202, "RequestId": server.invoke_event(function, body)})
        )
        return
    if server is not None:  # it knows the functions: no need to read the manifest here
        try:
            served = server.invoke(function, body)
        except client.ServerGone:
            pass  # a stale state file: invoke without the server
        else:
            _print_and_exit(served.log, served.payload, served.function_error)
    if ":" in function:  # a version or an alias: only the server has them
        raise ServerUnavailable(
            f"{function} names a version or an alias, which live in the running server: start "
            f"`lrun serve` for {path}, then invoke {function} again"
        )
    loaded = project.load()
    spec = loaded.function(function)
    if spec.layers:  # a zip to unpack, a published version to find: as `lrun serve` would
        from orchestrator.api.layer_refs import resolve_alone
        from orchestrator.state import state_dir

        spec = resolve_alone(spec, path, state_dir())
    trace.mark("manifest loaded")
    backend = connect_backend()
    trace.mark("docker connected")
    ensure_image(backend, spec)
    trace.mark("image checked")
    # Output beyond what is kept in memory is spilled to a directory that goes with this
    # process, and printed from there: all of it is shown, none of it held.
    import tempfile

    from orchestrator.logbook import LogLimits
    from orchestrator.sandbox.output import FileSpill
    from orchestrator.state import state_dir

    outputs = state_dir() / "invoke"
    outputs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outputs) as spilled:
        spill = FileSpill(Path(spilled), LogLimits.from_env().per_output)
        result = _invoke_once(backend, spec, body, spill)
        _print_result(result)


def _invoke_once(
    backend: Backend, spec: FunctionSpec, payload: bytes, spill: FileSpill | None = None
) -> InvocationResult:
    import asyncio

    from orchestrator.sandbox.oneshot import invoke_once

    result = asyncio.run(invoke_once(backend, spec, payload, spill=spill))
    trace.mark("loop closed")
    return result


def _print_result(result: InvocationResult) -> None:
    _print_and_exit(result.write_log, result.payload, result.function_error)


def _print_and_exit(
    log: str | Callable[[BinaryIO], None], payload: bytes, function_error: str | None
) -> NoReturn:
    """Print the log (text, or what writes it) and the response; the exit code says whether the
    function failed (the process itself ends in ``cli.entry``)."""
    if isinstance(log, str):
        sys.stderr.write(log)  # as written: click.echo would strip a function's colours
    else:
        sys.stderr.flush()
        log(sys.stderr.buffer)
    sys.stderr.flush()
    click.echo(payload)
    trace.mark("printed")
    raise click.exceptions.Exit(FUNCTION_ERROR_EXIT if function_error else 0)
