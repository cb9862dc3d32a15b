"""`lrun ps` and `lrun events`: what the running server holds, as tables or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from orchestrator.errors import ServerUnavailable


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--apis", "apis_only", is_flag=True, help="Show only the APIs and their URLs.")
@click.option("--urls", "urls_only", is_flag=True, help="Show only the function URLs.")
def ps(as_json: bool, apis_only: bool, urls_only: bool) -> None:
    """Show every execution environment of the running server (with the version it runs), its
    APIs' URLs and its function URLs."""
    from orchestrator.api import client
    from orchestrator.errors import ServerUnavailable

    server = client.find()
    if server is None:
        raise ServerUnavailable("no `lrun serve` is running; start one with: lrun serve")
    if urls_only:
        urls = server.urls()
        if as_json:
            click.echo(json.dumps(urls))
        else:
            _print_urls(urls)
        return
    if apis_only:
        apis = server.apis()
        if as_json:
            click.echo(json.dumps(apis))
        else:
            _print_apis(apis)
        return
    rows = server.environments()
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "environment", "function", "version", "state", "kind", "age", "invocations", "memory"
    )
    for row in rows:
        used = row["memory_used_mb"]
        memory = f"{used if used is not None else '?'} / {row['memory_mb']} MB"
        version = row.get("version", "$LATEST")
        if row.get("aliases"):  # the aliases that route to it, e.g. "3 (live)"
            version += f" ({', '.join(row['aliases'])})"
        table.add_row(
            row["id"][:12],
            row["function"],
            version,
            row["state"],
            row["kind"],
            f"{row['age_s']:.0f} s",
            str(row["invocations"]),
            memory,
        )
    Console().print(table)
    from orchestrator.cli.cost import print_cost

    spent = server.cost()
    if spent["functions"]:
        print_cost(spent)
    apis = server.apis()
    if apis:
        _print_apis(apis)
    urls = server.urls()
    if urls:
        _print_urls(urls)


def _print_urls(urls: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("function URL", "function", "auth", "invoke mode", "source")
    for url in urls:
        function = url["function"] + (f":{url['qualifier']}" if url["qualifier"] else "")
        table.add_row(url["url"], function, url["auth_type"], url["invoke_mode"], url["source"])
    Console().print(table)


def _print_apis(apis: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("api", "type", "stage", "url", "routes")
    for api in apis:
        routes = "\n".join(f"{r['route']} -> {r['function']}" for r in api["routes"]) or "-"
        table.add_row(api["name"], api["type"], api["stage"], api["url"], routes)
    Console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def events(as_json: bool) -> None:
    """Show asynchronous invocations by function: queued, oldest, running, retrying, dead."""
    from orchestrator.api import client

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
