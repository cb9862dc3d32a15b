#!/usr/bin/env python3
"""Warm invoke latency of this tree beside an earlier revision of lrun, and SAM CLI, in one run.

For a change that touches the warm path (issue 8's access checks, say): is warm invoke p50 within
a few per cent of what it was? Both lrun trees serve bench/sam_app/lrun.yaml's `Echo` (python3.11,
1769 MB) from their own `lrun serve`, started one after the other from the same interpreter
(the base revision is checked out with `git worktree` in a temporary directory and imported
from there instead of the installed tree, so only lrun's own code differs). Each server runs
--rounds series of --n sequential invokes on one keep-alive connection, the servers alternating
round by round so load drift hits both alike; the figure is each server's median of its
series' p50 (and p99). SAM CLI's `sam local start-lambda` (warm containers EAGER) runs the
same series once, as the yardstick.

    python3.11 bench/warm_compare.py --base 8fa2ae9          # table
    python3.11 bench/warm_compare.py --base 8fa2ae9 --json   # one JSON object

Needs a Docker engine with lrun's python3.11 image and SAM CLI as set up by
../shared/peers/sam/setup.sh (PEERS_DIR, default /tmp/lrun-peers; --skip-sam to leave it out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    EVENT,
    LRUN_APP,
    REPO,
    LrunServer,
    Phases,
    SamServer,
    Servers,
    add_quiet_arguments,
    code_digest,
    ensure_sam,
    free_port,
    keep_alive_invokes,
    machine,
    make_parser,
    nearest_rank,
    peers_dir,
    run_cli,
    warm_up,
)


def series_figures(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50": round(nearest_rank(ms, 50), 3), "p99": round(nearest_rank(ms, 99), 3)}


def base_tree(revision: str, into: Path) -> Path:
    """A checkout of ``revision`` of this repository (no install: used through PYTHONPATH)."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), revision],
        check=True,
        capture_output=True,
    )
    return into


# Runs ``python -m orchestrator`` from the tree in argv[1], not the installed (editable) one.
LAUNCH = (
    "import runpy, sys\n"
    "tree = sys.argv.pop(1)\n"
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]\n"
    "sys.path.insert(0, tree)\n"
    "runpy.run_module('orchestrator', run_name='__main__', alter_sys=True)\n"
)


def lrun_server(tree: Path, work: Path, name: str) -> LrunServer:
    server = LrunServer(
        [sys.executable, "-c", LAUNCH, str(tree)],
        LRUN_APP / "lrun.yaml",
        work / f"state-{name}",
        work / f"{name}.log",
        name=name,
    )
    server.env = {**server.env, "LRUN_HOME": str(tree)}
    return server


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = Phases(args.max_load, args.max_wait)
    body = json.dumps(EVENT).encode()
    result: dict[str, Any] = {
        "machine": machine(),
        "code": code_digest(),
        "revision": args.base,
        "n": args.n,
        "rounds": args.rounds,
    }
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="lrun-warm-") as tmp:
        work = Path(tmp)
        base = base_tree(args.base, work / "base")
        try:
            lrun = {
                "head": lrun_server(REPO, work, "lrun (this tree)"),
                "base": lrun_server(base, work, f"lrun ({args.base})"),
            }
            for server in lrun.values():
                servers.start(server)
                server.wait_ready()
                warm_up(server.url, "Echo", 1)
            series: dict[str, list[dict[str, float]]] = {key: [] for key in lrun}
            with phases.run("lrun"):
                for index in range(args.rounds):
                    order = list(lrun) if index % 2 == 0 else list(reversed(lrun))
                    for key in order:
                        times, _ = keep_alive_invokes(lrun[key].url, "Echo", [body] * args.n)
                        series[key].append(series_figures(times))
            for key, server in lrun.items():
                servers.stop(server)
                result[key] = {
                    "p50_ms": round(statistics.median(s["p50"] for s in series[key]), 3),
                    "p99_ms": round(statistics.median(s["p99"] for s in series[key]), 3),
                    "series": series[key],
                }
            result["p50_change_pct"] = round(
                100 * (result["head"]["p50_ms"] / result["base"]["p50_ms"] - 1), 1
            )
            if not args.skip_sam:
                sam = ensure_sam(peers_dir())
                peer = SamServer(
                    sam, peers_dir() / "app", free_port(), "EAGER", work / "sam.log", "Echo"
                )
                servers.start(peer)
                peer.wait_ready(300)
                with phases.run("sam"):
                    times, _ = keep_alive_invokes(peer.url, "Echo", [body] * args.n)
                servers.stop(peer)
                result["sam"] = {f"{k}_ms": v for k, v in series_figures(times).items()}
        finally:
            servers.stop_all()
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)],
                capture_output=True,
            )
    result["phases"] = phases.records
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        f"warm invoke, raw keep-alive, {result['rounds']} x {result['n']} per lrun server",
        f"{'':28}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    for key, label in (("base", f"lrun {result['revision']}"), ("head", "lrun (this tree)")):
        rows.append(f"{label:28}{result[key]['p50_ms']:>10.3f}{result[key]['p99_ms']:>10.3f}")
    if "sam" in result:
        sam = result["sam"]
        rows.append(f"{'SAM CLI (one series)':28}{sam['p50_ms']:>10.3f}{sam['p99_ms']:>10.3f}")
    rows.append(
        f"p50 change, this tree against {result['base']}: {result['p50_change_pct']:+.1f} %"
    )
    return "\n".join(rows)


def main() -> int:
    parser = make_parser(__doc__)
    add_quiet_arguments(parser)
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--n", type=int, default=2000, help="invokes per series")
    parser.add_argument("--rounds", type=int, default=6, help="series per lrun server")
    parser.add_argument("--skip-sam", action="store_true", help="leave SAM CLI out")
    args = parser.parse_args()
    return run_cli(args, run, render)


if __name__ == "__main__":
    raise SystemExit(main())
