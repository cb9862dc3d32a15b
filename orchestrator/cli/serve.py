"""`lrun serve`: warm pools behind Lambda's API, with a live view of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import connect_backend, manifest_option
from orchestrator.cli.runtimes import ensure_image


@click.command()
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
    from orchestrator.api import server as serving

    path = manifest.find(manifest_path, Path.cwd()).resolve()
    loaded = manifest.load(path)
    backend = connect_backend()
    for spec in loaded.functions.values():
        ensure_image(backend, spec)
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
