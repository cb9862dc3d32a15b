"""`lrun tune FN --payload ...`: invoke a function warm at several memory sizes and show what
each costs and how fast it is, and the cheapest size within a latency bound."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import connect_backend, find_project, project_options
from orchestrator.errors import LrunError
from orchestrator.observe.tuning import DEFAULT_SIZES, TuneRow, cheapest, plot

MAX_RUNS = 200
MIN_MEMORY, MAX_MEMORY = 128, 10240


@click.command()
@project_options
@click.argument("function")
@click.option("--payload", default="{}", show_default=True, help="The event, as JSON.")
@click.option(
    "--memory",
    "sizes",
    default=",".join(map(str, DEFAULT_SIZES)),
    show_default=True,
    help="Memory sizes to try, in MB, comma-separated.",
)
@click.option("--runs", type=click.IntRange(1, MAX_RUNS), default=10, show_default=True,
              help="Warm invocations per size (after one cold one).")  # fmt: skip
@click.option("--max-ms", type=click.FloatRange(min=0), default=None,
              help="Latency bound: the cheapest size whose p50 is within it.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def tune(
    manifest_path: Path | None,
    template_path: Path | None,
    parameter_overrides: tuple[str, ...],
    function: str,
    payload: str,
    sizes: str,
    runs: int,
    max_ms: float | None,
    as_json: bool,
) -> None:
    """Invoke FUNCTION at several memory sizes (CPU follows memory, as on Lambda) and print the
    duration, the cost per million invocations and the cheapest size within --max-ms."""
    from orchestrator.api.server import host_architecture
    from orchestrator.aws import REGION
    from orchestrator.cli.runtimes import ensure_image
    from orchestrator.observe.prices import PRICE_TABLE_DATE, prices_for
    from orchestrator.sandbox.invocation import check_payload

    memories = _sizes(sizes)
    body = check_payload(payload.encode())
    spec = find_project(manifest_path, template_path, parameter_overrides).load().function(function)
    backend = connect_backend()
    ensure_image(backend, spec)
    rows = asyncio.run(_measure(backend, spec, body, memories, runs))
    prices, arch = prices_for(REGION), host_architecture()
    best = cheapest(rows, prices, arch, max_ms)
    if as_json:
        click.echo(json.dumps(_as_json(rows, prices, arch, best, max_ms)))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "memory", "cold init", "p50", "p90", "billed (mean)", "errors", f"$ per million ({arch})",
        title=f"{function}: {runs} warm invocations per size; Lambda prices, {prices.region}, "
        f"table of {PRICE_TABLE_DATE}",
    )  # fmt: skip
    for row in rows:
        mark = " ◀" if best is not None and row.memory_mb == best.memory_mb else ""
        table.add_row(
            f"{row.memory_mb} MB{mark}",
            "-" if row.init_ms is None else f"{row.init_ms:.0f} ms",
            f"{row.p50_ms:.1f} ms",
            f"{row.p90_ms:.1f} ms",
            f"{row.billed_ms:.1f} ms",
            str(row.errors),
            f"${row.cost_per_million(prices, arch):.4f}",
        )
    Console().print(table)
    for line in plot(rows, prices, arch):
        click.echo(line)
    bound = f" with p50 within {max_ms:g} ms" if max_ms is not None else ""
    if best is None:
        click.echo(f"no size{bound} ran without errors")
    else:
        click.echo(
            f"cheapest{bound}: {best.memory_mb} MB, p50 {best.p50_ms:.1f} ms, "
            f"${best.cost_per_million(prices, arch):.4f} per million"
        )


def _sizes(text: str) -> list[int]:
    try:
        found = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        found = []
    if not found or not all(MIN_MEMORY <= m <= MAX_MEMORY for m in found) or len(found) > 12:
        raise LrunError(
            f"--memory {text!r} is not a list of sizes: give up to 12 comma-separated sizes "
            f"from {MIN_MEMORY} to {MAX_MEMORY} MB, e.g. --memory 128,512,1769"
        )
    return found


async def _measure(
    backend: Any, spec: Any, body: bytes, memories: list[int], runs: int
) -> list[TuneRow]:
    from orchestrator.aws import function_arn
    from orchestrator.sandbox.container import network_name
    from orchestrator.sandbox.invocation import InvokeRequest
    from orchestrator.sandbox.invoker import new_owner
    from orchestrator.sandbox.oneshot import hosted_invoker

    rows = []
    async with hosted_invoker(backend, new_owner("tune"), [network_name(spec)]) as invoker:
        for memory in memories:
            sized = dataclasses.replace(spec, memory=memory)
            env = await invoker.start_environment(sized)
            durations: list[float] = []
            init_ms = None
            errors = 0
            try:
                for index in range(runs + 1):
                    request = InvokeRequest(body, function_arn(spec.name)).with_request_id()
                    result = await invoker.run_on(env, sized, request)
                    errors += result.function_error is not None
                    if index == 0:
                        init_ms = result.report.init_duration_ms
                    else:
                        durations.append(result.report.duration_ms)
                    if env.exited is not None or not await env.came_back(float(sized.timeout)):
                        break
            finally:
                await invoker.stop_environment(env)
            rows.append(TuneRow(memory, tuple(durations), init_ms, errors))
    return rows


def _as_json(
    rows: list[TuneRow], prices: Any, arch: str, best: TuneRow | None, max_ms: float | None
) -> dict[str, Any]:
    return {
        "architecture": arch,
        "region": prices.region,
        "max_ms": max_ms,
        "cheapest_mb": None if best is None else best.memory_mb,
        "sizes": [
            {
                "memory_mb": r.memory_mb,
                "init_ms": r.init_ms,
                "p50_ms": r.p50_ms,
                "p90_ms": r.p90_ms,
                "billed_ms": r.billed_ms,
                "errors": r.errors,
                "runs": len(r.durations_ms),
                "cost_per_million": r.cost_per_million(prices, arch),
            }
            for r in rows
        ],
    }
