"""`lrun cost`: what the running server's invocations would cost on Lambda, per function, from
REPORT's billed durations at Lambda's public prices (``observe.prices``)."""

from __future__ import annotations

import json
import time
from typing import Any

import click


@click.command()
@click.option("--since", default=None, help="Only invocations since then: 10m, 2h, 1d.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def cost(since: str | None, as_json: bool) -> None:
    """Show requests, billed GB-seconds and their price on x86_64 and arm64, per function."""
    from orchestrator.api import client
    from orchestrator.errors import ServerUnavailable
    from orchestrator.observe.durations import parse_age

    moment = None if since is None else time.time() - parse_age(since, "--since")
    server = client.find()
    if server is None:
        raise ServerUnavailable("no `lrun serve` is running; start one with: lrun serve")
    found = server.cost(moment)
    if as_json:
        click.echo(json.dumps(found))
        return
    print_cost(found)


def print_cost(found: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "function",
        "requests",
        "errors",
        "billed",
        "GB-s",
        "cost x86_64",
        "cost arm64",
        title=f"Lambda prices, {found['region']} (table of {found['price_table_date']}; "
        f"these functions run on {found['architecture']})",
    )
    for name, row in sorted(found["functions"].items()):
        table.add_row(
            name,
            str(row["invocations"]),
            str(row["errors"]),
            f"{row['billed_ms'] / 1000:.3f} s",
            f"{row['gb_seconds']:.4f}",
            dollars(row["cost_x86_64"]),
            dollars(row["cost_arm64"]),
        )
    Console().print(table)
    click.echo(
        f"${found['per_million_requests']:.2f} per million requests, "
        f"${found['per_gb_second']['x86_64']:.10f} (x86_64) and "
        f"${found['per_gb_second']['arm64']:.10f} (arm64) per GB-second; source: "
        f"{found['price_source']}; free tier not deducted"
    )


def dollars(value: float) -> str:
    return f"${value:.8f}" if value < 0.01 else f"${value:.4f}"
