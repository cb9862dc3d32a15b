"""The `lrun` command: parses options, builds the real objects, renders results.

This is the composition root and the only module that writes to the terminal. Heavy modules
(the Docker SDK, the server) are imported inside the commands that need them, so `lrun --help`
and a one-shot `lrun invoke` start fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from orchestrator import __version__, trace
from orchestrator.errors import LrunError, RuntimeImageError, ServerUnavailable
from orchestrator.queue_cli import queue as queue_group

if TYPE_CHECKING:
    from orchestrator.backend import Backend
    from orchestrator.invocation import InvocationResult
    from orchestrator.manifest import FunctionSpec, Manifest

F = TypeVar("F", bound=Callable[..., Any])

FUNCTION_ERROR_EXIT = 1


def _err(message: str) -> None:
    click.echo(message, err=True)


def manifest_option(command: F) -> F:
    return click.option(
        "-f",
        "--file",
        "manifest_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Manifest to read (default: ./lrun.yaml).",
    )(command)


def _load_manifest(path: Path | None) -> Manifest:
    from orchestrator import manifest

    return manifest.load(manifest.find(path, Path.cwd()))


def _backend() -> Backend:
    from orchestrator import docker_backend

    return docker_backend.connect()


class _Group(click.Group):
    """Catches lrun's errors once, for every command: one line, the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        trace.mark("cli ready")
        try:
            return super().invoke(ctx)
        except LrunError as exc:
            _err(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}")
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="lrun")
def main() -> None:
    """Run AWS Lambda functions locally, in real containers, the way Lambda runs them."""


main.add_command(queue_group)


@main.command()
@manifest_option
def validate(manifest_path: Path | None) -> None:
    """Check a manifest; list every problem and exit non-zero if there are any."""
    loaded = _load_manifest(manifest_path)
    names = ", ".join(loaded.functions)
    click.echo(f"{loaded.path}: ok ({len(loaded.functions)} functions: {names})")


# Runtimes


@main.group()
def runtimes() -> None:
    """Build and list the runtime images (made offline from Debian packages)."""


@runtimes.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even if the image is current.")
def runtimes_build(names: tuple[str, ...], force: bool) -> None:
    """Build the images of NAMES (default: all runtimes)."""
    from orchestrator.runtimes import RUNTIME_NAMES

    for name in names:
        _check_runtime_name(name)
    backend = _backend()
    for name in names or RUNTIME_NAMES:
        _build_image(backend, name, force)


def _check_runtime_name(name: str) -> None:
    from difflib import get_close_matches

    from orchestrator.runtimes import RUNTIME_NAMES

    if name not in RUNTIME_NAMES:
        close = get_close_matches(name, RUNTIME_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RuntimeImageError(
            f"unknown runtime {name!r}; {hint}known runtimes: {', '.join(RUNTIME_NAMES)}"
        )


def _build_image(backend: Backend, name: str, force: bool = False) -> None:
    from rich.console import Console

    from orchestrator import runtimes as rt

    console = Console(stderr=True)
    if not force and rt.is_current(backend, name):
        console.print(f"{name}: image {rt.RUNTIMES[name].image} is current")
        return
    with console.status(f"{name}: building") as status:

        def progress(step: str) -> None:
            status.update(f"{name}: {step}")
            if not console.is_terminal:
                console.print(f"{name}: {step}")

        rt.build(backend, name, progress, force=force)
    console.print(f"{name}: built {rt.RUNTIMES[name].image}")


@runtimes.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def runtimes_ls(as_json: bool) -> None:
    """Show each runtime and whether its image is built and current."""
    from orchestrator import runtimes as rt

    backend = _backend()
    rows = []
    for name, definition in rt.RUNTIMES.items():
        info = backend.image(definition.image)
        rows.append(
            {
                "runtime": name,
                "image": definition.image,
                "state": rt.image_state(backend, definition),
                "size_mb": round(info.size / 1e6) if info else None,
                "debian": definition.suite,
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("runtime", "image", "state", "size", "base")
    for row in rows:
        style = {"current": "green", "outdated": "yellow", "missing": "red"}[str(row["state"])]
        size_text = f"{row['size_mb']} MB" if row["size_mb"] is not None else "-"
        table.add_row(
            str(row["runtime"]),
            str(row["image"]),
            f"[{style}]{row['state']}[/]",
            size_text,
            f"Debian {row['debian']}",
        )
    Console().print(table)
    if any(row["state"] != "current" for row in rows):
        _err("build the missing ones with: lrun runtimes build")


# Invoke


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


@main.command()
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
@manifest_option
def invoke(
    function: str,
    stdin_marker: str | None,
    payload: str | None,
    payload_file: str | None,
    asynchronous: bool,
    manifest_path: Path | None,
) -> None:
    """Invoke FUNCTION once and print its response; its log goes to standard error.

    Exits 0 on success and 1 when the function failed (its error JSON is printed).
    """
    from orchestrator import invocation

    if stdin_marker is not None and stdin_marker != "-":
        raise click.UsageError(f"unexpected argument {stdin_marker!r}; use '-' to read stdin")
    body = _read_payload("-" if stdin_marker == "-" else payload, payload_file)
    body = invocation.check_payload(body)  # refused before any container starts
    from orchestrator import client
    from orchestrator.manifest_path import find

    path = find(manifest_path, Path.cwd())
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
    loaded = _load_manifest(path)
    spec = loaded.function(function)
    trace.mark("manifest loaded")
    backend = _backend()
    trace.mark("docker connected")
    _ensure_image(backend, spec)
    trace.mark("image checked")
    result = _invoke_once(backend, spec, body)
    _print_result(result)


def _ensure_image(backend: Backend, spec: FunctionSpec) -> None:
    from orchestrator import runtimes as rt

    if spec.runtime is not None:
        if not rt.is_current(backend, spec.runtime):
            _err(f"{spec.runtime}: the runtime image is missing or outdated; building it now")
            _build_image(backend, spec.runtime)
    elif spec.image is not None and backend.image(spec.image) is None:
        raise RuntimeImageError(
            f"function {spec.name!r}: image {spec.image!r} is not in the local Docker engine; "
            f"build or load it first (docker build -t {spec.image} .)"
        )


def _invoke_once(backend: Backend, spec: FunctionSpec, payload: bytes) -> InvocationResult:
    import asyncio

    from orchestrator.oneshot import invoke_once

    result = asyncio.run(invoke_once(backend, spec, payload))
    trace.mark("loop closed")
    return result


def _print_result(result: InvocationResult) -> None:
    _print_and_exit(result.log, result.payload, result.function_error)


def _print_and_exit(log: str, payload: bytes, function_error: str | None) -> NoReturn:
    sys.stderr.write(log)
    sys.stderr.flush()
    sys.stdout.buffer.write(payload + b"\n")
    sys.stdout.flush()
    trace.mark("printed")
    trace.dump()
    sys.stderr.flush()
    # Everything is written and the container removes itself: skip the interpreter's tear-down
    # (tens of milliseconds of module and thread clean-up that a one-shot command does not need).
    os._exit(FUNCTION_ERROR_EXIT if function_error else 0)


# Scaffolding


@main.command()
@click.argument("template", default="python")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(template: str, directory: Path) -> None:
    """Create a function from TEMPLATE (python, nodejs, provided) in DIRECTORY."""
    from difflib import get_close_matches

    from orchestrator.runtimes import source_dir

    templates = source_dir("templates")
    names = sorted(p.name for p in templates.iterdir() if p.is_dir())
    if template not in names:
        close = get_close_matches(template, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LrunError(f"unknown template {template!r}; {hint}templates: {', '.join(names)}")
    source = templates / template
    clashes = [
        directory / p.relative_to(source)
        for p in source.rglob("*")
        if (directory / p.relative_to(source)).exists() and p.is_file()
    ]
    if clashes:
        raise LrunError(
            f"{clashes[0]} already exists; choose an empty directory (lrun init {template} DIR)"
        )
    shutil.copytree(source, directory, dirs_exist_ok=True)
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"created a {template} function 'hello' in {directory.resolve()}")
    click.echo(f'invoke it with: {where}lrun invoke hello --payload \'{{"name": "lrun"}}\'')


# Serving


@main.command()
@manifest_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9001, show_default=True, help="Port of the Lambda API.")
@click.option(
    "--idle-ttl", default=300.0, show_default=True, help="Seconds an idle environment stays warm."
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Host-wide concurrent invocations (default: from memory and cores).",
)
def serve(
    manifest_path: Path | None, host: str, port: int, idle_ttl: float, max_concurrency: int | None
) -> None:
    """Serve the manifest's functions with warm pools behind Lambda's HTTP API.

    Point boto3 or the AWS CLI at it with --endpoint-url http://127.0.0.1:9001.
    """

    from orchestrator import manifest
    from orchestrator import serve as serving

    path = manifest.find(manifest_path, Path.cwd()).resolve()
    loaded = manifest.load(path)
    backend = _backend()
    for spec in loaded.functions.values():
        _ensure_image(backend, spec)
    settings = serving.ServeSettings(path, host, port, idle_ttl, max_concurrency)
    view = _ServeView()
    with view:
        import uvloop

        uvloop.run(serving.run(backend, settings, view.event, view.attach))


class _ServeView:
    """What `lrun serve` shows: a live summary on a terminal, plain event lines otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.events: list[str] = []
        self.service: Any = None
        self.live: Any = None
        self._refresher: Any = None
        self._table: Any = ""

    def __enter__(self) -> _ServeView:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=2,
                get_renderable=self._render,
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def attach(self, service: Any) -> None:
        """Called on the server's loop once it serves: the view refreshes from that loop, as
        the service's state may only be read there."""
        import asyncio

        self.service = service
        if self.live is not None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        import asyncio

        while True:
            self.live.update(self._render(), refresh=True)
            await asyncio.sleep(0.5)

    def event(self, message: str) -> None:
        import datetime

        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        line = f"{stamp} {message}"
        if self.live is None:
            click.echo(line, err=True)
        else:
            self.events = [*self.events[-7:], line]
            self.live.update(self._render(), refresh=True)

    def _render(self) -> Any:
        from rich.console import Group

        if self._serving():
            self._table = self._summary()
        return Group(self._table, *self.events)

    def _serving(self) -> bool:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return self.service is not None

    def _summary(self) -> Any:
        from rich.table import Table

        table = Table(
            "function",
            "initialising",
            "busy",
            "idle",
            "provisioned",
            "invocations",
            "errors",
            "throttles",
            "p50 ms",
            title="lrun serve",
        )
        if self.service is not None:
            views = self.service.environments()
            for name, state in sorted(self.service.functions.items()):
                mine = [v for v in views if v.function == name]
                counts = {
                    s: sum(v.state == s for v in mine)
                    for s in ("initialising", "busy", "idle", "provisioned")
                }
                durations = sorted(state.durations_ms)
                p50 = f"{durations[len(durations) // 2]:.2f}" if durations else "-"
                table.add_row(
                    name,
                    *(str(counts[s]) for s in counts),
                    str(state.invocations),
                    str(state.errors),
                    str(state.throttles),
                    p50,
                )
        return table


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ps(as_json: bool) -> None:
    """Show every execution environment of the running server."""
    from orchestrator import client
    from orchestrator.errors import ServerUnavailable

    server = client.find()
    if server is None:
        raise ServerUnavailable("no `lrun serve` is running; start one with: lrun serve")
    rows = server.environments()
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("environment", "function", "state", "kind", "age", "invocations", "memory")
    for row in rows:
        used = row["memory_used_mb"]
        memory = f"{used if used is not None else '?'} / {row['memory_mb']} MB"
        table.add_row(
            row["id"][:12],
            row["function"],
            row["state"],
            row["kind"],
            f"{row['age_s']:.0f} s",
            str(row["invocations"]),
            memory,
        )
    Console().print(table)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def events(as_json: bool) -> None:
    """Show asynchronous invocations by function: queued, oldest, running, retrying, dead."""
    from orchestrator import client

    server = client.find()
    if server is None:
        raise ServerUnavailable("no `lrun serve` is running; start one with: lrun serve")
    rows = server.events()
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("function", "queued", "oldest", "running", "retries pending", "dead-letter queue")
    for row in rows:
        oldest = "-" if row["oldest_age_s"] is None else f"{row['oldest_age_s']:.0f} s"
        dead = row["dead_letter_queue"] or "-"
        if row["dead_letter_queue"]:
            dead += f" ({row['dead_letter_depth']})"
        table.add_row(
            row["function"],
            str(row["depth"]),
            oldest,
            str(row["in_flight"]),
            str(row["retries_pending"]),
            dead,
        )
    Console().print(table)
