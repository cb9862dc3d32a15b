#!/usr/bin/env python3
"""What keeping log groups and metrics costs a warm invocation: the server's CPU per invocation
and p50/p99 with them (this tree as it is) and without (the same tree, LRUN_OBSERVE=0), in one
run, the two servers alternating round by round; SAM CLI's p50 on the same function beside.

Issue 14 asks that metrics slow the warm path by no more than 3 %. Both lrun servers serve
bench/sam_app/lrun.yaml's `Echo` (python3.11, 1769 MB); each round is --n sequential invokes on
one keep-alive connection; the server's CPU (user + system, all threads: the log writer's too)
is read from /proc around each round and divided by the invocations.

    python3.11 bench/metrics_overhead.py             # table
    python3.11 bench/metrics_overhead.py --json      # one JSON object

Needs a Docker engine with lrun's python3.11 image, and SAM CLI as set up by
../shared/peers/sam/setup.sh unless --skip-sam.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    EVENT,
    LRUN_APP,
    REPO,
    CpuWindow,
    LrunServer,
    Phases,
    SamServer,
    Servers,
    add_quiet_arguments,
    code_digest,
    ensure_sam,
    find_lrun,
    free_port,
    keep_alive_invokes,
    machine,
    make_parser,
    nearest_rank,
    peers_dir,
    run_cli,
    warm_up,
)


def behind_path_us(n: int = 20_000) -> dict[str, float]:
    """The work lrun does per invocation, behind it, for log groups and metrics, measured alone
    in this process (``time.process_time``): what the A/B above cannot resolve on a busy host.
    Invocations as the warm Echo's: START, one line of output, END, REPORT."""
    sys.path.insert(0, str(REPO))
    from orchestrator.observe.log_feed import store_sinks
    from orchestrator.observe.log_store import LogStore
    from orchestrator.observe.metrics import Metrics
    from orchestrator.observe.prices import prices_for
    from orchestrator.sandbox.invocation import InvocationResult, Report

    rid = "0f5d0c6e-6d0f-4c1e-9d52-2a2f1b8e4e11"
    text = (
        f'START RequestId: {rid} Version: $LATEST\n{{"echo": {{"x": 1}}}}\n'
        f"END RequestId: {rid}\nREPORT RequestId: {rid}\tDuration: 0.81 ms\t"
        "Billed Duration: 1 ms\tMemory Size: 1769 MB\tMax Memory Used: 40 MB\t\n"
    )
    stream = "2026/12/01/[$LATEST]" + "a" * 32
    with tempfile.TemporaryDirectory() as folder:
        encode, write = store_sinks(LogStore(Path(folder)))
        metrics = Metrics(prices_for("us-east-1"), "x86_64")
        batches = [
            [
                ("Echo", InvocationResult(rid, b"{}", None, "$LATEST", text,
                 Report(rid, 0.81, 1769, 40)), None, stream)
                for _ in range(50)
            ]
            for _ in range(n // 50)
        ]  # fmt: skip
        started = time.process_time()
        for batch in batches:
            encode(batch)
            write(batch)
        stored = time.process_time()
        for batch in batches:
            metrics.observe(batch)
        counted = time.process_time()
    return {
        "log_store_us": round((stored - started) * 1e6 / n, 2),
        "metrics_us": round((counted - stored) * 1e6 / n, 2),
    }


def figures(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50": round(nearest_rank(ms, 50), 3), "p99": round(nearest_rank(ms, 99), 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = Phases(args.max_load, args.max_wait)
    body = json.dumps(EVENT).encode()
    result: dict[str, Any] = {"machine": machine(), "code": code_digest(), "n": args.n}
    result["behind_path"] = behind_path_us()
    servers = Servers()
    lrun = find_lrun(args.lrun)
    with tempfile.TemporaryDirectory(prefix="lrun-observe-") as tmp:
        work = Path(tmp)
        try:
            made = {
                key: LrunServer(
                    lrun,
                    LRUN_APP / "lrun.yaml",
                    work / f"state-{key}",
                    work / f"{key}.log",
                    name=f"lrun ({key})",
                )  # fmt: skip
                for key in ("with", "without")
            }
            made["without"].env = {**made["without"].env, "LRUN_OBSERVE": "0"}
            for server in made.values():
                servers.start(server)
                server.wait_ready()
                warm_up(server.url, "Echo", 1)
                keep_alive_invokes(server.url, "Echo", [body] * 200)  # discarded
            rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in made}
            with phases.run("lrun"):
                for index in range(args.rounds):
                    order = list(made) if index % 2 == 0 else list(reversed(made))
                    for key in order:
                        with CpuWindow(made[key].pid) as window:
                            times, _ = keep_alive_invokes(made[key].url, "Echo", [body] * args.n)
                            # The log writer runs every 0.25 s: let it take this round's batch.
                            time.sleep(0.6)
                            cpu = window.result(args.n)
                        rounds[key].append(
                            {**figures(times), "cpu_ms": cpu["server_cpu_ms_per_request"]}
                        )
            for key, server in made.items():
                servers.stop(server)
                result[key] = {
                    "p50_ms": round(statistics.median(r["p50"] for r in rounds[key]), 3),
                    "p99_ms": round(statistics.median(r["p99"] for r in rounds[key]), 3),
                    "server_cpu_ms_per_invoke": round(
                        statistics.median(r["cpu_ms"] for r in rounds[key]), 4
                    ),
                    "rounds": rounds[key],
                }
            result["cpu_change_pct"] = round(
                100
                * (
                    result["with"]["server_cpu_ms_per_invoke"]
                    / result["without"]["server_cpu_ms_per_invoke"]
                    - 1
                ),
                1,
            )
            result["p50_change_pct"] = round(
                100 * (result["with"]["p50_ms"] / result["without"]["p50_ms"] - 1), 1
            )
            if not args.skip_sam:
                sam = ensure_sam(peers_dir())
                peer = SamServer(
                    sam, peers_dir() / "app", free_port(), "EAGER", work / "sam.log", "Echo"
                )
                servers.start(peer)
                peer.wait_ready(300)
                with phases.run("sam"):
                    times, _ = keep_alive_invokes(peer.url, "Echo", [body] * min(args.n, 500))
                servers.stop(peer)
                result["sam"] = {f"{k}_ms": v for k, v in figures(times).items()}
        finally:
            servers.stop_all()
    result["phases"] = phases.records
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        f"warm invoke of Echo, {result['n']} per round, rounds alternating",
        f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'server CPU ms/invoke':>22}",
    ]
    for key, label in (("without", "lrun, LRUN_OBSERVE=0"), ("with", "lrun, logs API + metrics")):
        row = result[key]
        rows.append(
            f"{label:34}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
            f"{row['server_cpu_ms_per_invoke']:>22.4f}"
        )
    if "sam" in result:
        sam = result["sam"]
        rows.append(f"{'SAM CLI (one series)':34}{sam['p50_ms']:>9.3f}{sam['p99_ms']:>9.3f}")
    rows.append(
        f"with against without: server CPU {result['cpu_change_pct']:+.1f} %, "
        f"p50 {result['p50_change_pct']:+.1f} %"
    )
    behind = result["behind_path"]
    share = (
        (behind["log_store_us"] + behind["metrics_us"])
        / 10
        / result["without"]["server_cpu_ms_per_invoke"]
    )
    rows.append(
        f"work behind each invocation, alone: log store {behind['log_store_us']:.1f} us, "
        f"metrics {behind['metrics_us']:.1f} us ({share:.1f} % of the server's CPU per invoke)"
    )
    return "\n".join(rows)


def main() -> int:
    parser = make_parser(__doc__)
    add_quiet_arguments(parser)
    parser.add_argument("--n", type=int, default=1000, help="invokes per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per lrun server")
    parser.add_argument("--skip-sam", action="store_true", help="leave SAM CLI out")
    return run_cli(parser.parse_args(), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
