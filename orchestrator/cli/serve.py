"""`lrun serve`: warm pools behind Lambda's API, with a live view of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.common import connect_backend, find_project, project_options
from orchestrator.cli.runtimes import ensure_image

if TYPE_CHECKING:
    from orchestrator.api.access import AccessPolicy


@click.command()
@project_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Beyond loopback (e.g. 0.0.0.0) every request must be signed.",
)
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
@click.option(
    "--network-holders",
    type=click.IntRange(min=0),
    envvar="LRUN_NETWORK_HOLDERS",
    default=16,
    show_default=True,
    help="Network namespaces kept ready per network for cold starts, at most (0: none).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header is NAME (besides localhost and IP addresses).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let web pages from ORIGIN (scheme://host[:port]) call the API from a browser.",
)
@click.option(
    "--profile",
    default=None,
    metavar="NAME",
    help="Check signatures against this profile of ~/.aws/credentials (implies signing).",
)
@click.option(
    "--access-key-id",
    envvar="LRUN_ACCESS_KEY_ID",
    default=None,
    metavar="ID",
    help="Check signatures against this key (secret from LRUN_SECRET_ACCESS_KEY; implies signing).",
)
@click.option(
    "--log-max-mb",
    type=click.FloatRange(min=1),
    envvar="LRUN_LOG_MAX_MB",
    default=256.0,
    show_default=True,
    help="Disk kept for logs by group and stream (CloudWatch Logs API); oldest dropped first.",
)
@click.option(
    "--log-retention",
    envvar="LRUN_LOG_RETENTION",
    default="7d",
    show_default=True,
    metavar="AGE",
    help="Drop log events older than AGE (e.g. 12h, 7d, 90m).",
)
@click.option(
    "--require-signature",
    is_flag=True,
    help="Require signed requests on loopback too (always required beyond it).",
)
def serve(
    manifest_path: Path | None,
    template_path: Path | None,
    parameter_overrides: tuple[str, ...],
    host: str,
    port: int,
    idle_ttl: float,
    max_concurrency: int | None,
    network_holders: int,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    profile: str | None,
    access_key_id: str | None,
    require_signature: bool,
    log_max_mb: float,
    log_retention: str,
) -> None:
    """Serve the manifest's (or template's) functions with warm pools behind Lambda's HTTP API.

    Point boto3 or the AWS CLI at it with --endpoint-url http://127.0.0.1:9001.
    """

    from orchestrator.api import server as serving
    from orchestrator.observe.durations import parse_age
    from orchestrator.observe.log_store import MB, StoreLimits

    log_limits = StoreLimits(int(log_max_mb * MB), parse_age(log_retention, "--log-retention"))
    access = _access(host, allow_hosts, cors_origins, profile, access_key_id, require_signature)
    project = find_project(manifest_path, template_path, parameter_overrides)
    loaded = project.load()
    serving.check_store()
    backend = connect_backend()
    for spec in loaded.functions.values():
        ensure_image(backend, spec)
    settings = serving.ServeSettings(
        project.path,
        host,
        port,
        idle_ttl,
        max_concurrency,
        access,
        project,
        log_limits,
        network_holders,
    )
    view = _ServeView()
    with view:
        import uvloop

        uvloop.run(serving.run(backend, settings, view.event, view.attach))


def _access(
    host: str,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    profile: str | None,
    access_key_id: str | None,
    require_signature: bool,
) -> AccessPolicy:
    """Who may call the API. Signatures are checked when lrun listens beyond loopback, when
    asked to (--require-signature), or when given credentials: they have no other use."""
    import os

    from orchestrator.api import access as access_module
    from orchestrator.api import credentials as keys
    from orchestrator.api.access import AccessPolicy
    from orchestrator.errors import CredentialsError
    from orchestrator.state import state_dir

    names = {access_module.check_host_name(name) for name in allow_hosts}
    if not access_module.is_loopback(host) and not _is_address(host):
        names.add(access_module.check_host_name(host))  # the name it was told to listen on
    origins = frozenset(access_module.check_origin(origin) for origin in cors_origins)
    if profile is not None and access_key_id is not None:
        raise CredentialsError(
            f"give --profile {profile} or --access-key-id {access_key_id}, not both"
        )
    if profile is not None:
        credentials = keys.from_profile(profile)
    elif access_key_id is not None:
        credentials = keys.from_pair(access_key_id, os.environ.get("LRUN_SECRET_ACCESS_KEY"))
    elif require_signature or not access_module.is_loopback(host):
        credentials, made = keys.load_or_generate(state_dir())
        where = keys.generated_file(state_dir())
        if made:
            # Shown this once: it is in the file (mode 0600) from now on.
            click.echo(
                f"generated a key pair for signed requests, kept in {where} (profile "
                f"'{keys.GENERATED_PROFILE}'):\n"
                f"  aws_access_key_id = {credentials.access_key_id}\n"
                f"  aws_secret_access_key = {credentials.secret_access_key}\n"
                f"use it with: AWS_SHARED_CREDENTIALS_FILE={where} "
                f"AWS_PROFILE={keys.GENERATED_PROFILE} aws lambda ... --endpoint-url URL",
                err=True,
            )
        else:
            click.echo(
                f"signed requests required: access key {credentials.access_key_id}, secret in "
                f"{where} (profile '{keys.GENERATED_PROFILE}')",
                err=True,
            )
    else:
        credentials = None
    return AccessPolicy(frozenset(names), origins, credentials)


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


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
