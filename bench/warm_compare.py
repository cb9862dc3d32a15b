#!/usr/bin/env python3
"""Warm invoke latency of this tree beside an earlier revision of lrun, and SAM CLI, in one run.

For a change that touches the warm path (issue 8's access checks, say): is warm invoke p50 within
a few per cent of what it was? Both lrun trees serve bench/sam_app/lrun.yaml's `Echo` (python3.11,
1769 MB) from their own `lrun serve`, started one after the other from the same interpreter
(the base revision is checked out with `git worktree` in a temporary directory and imported
from there instead of the installed tree, so only lrun's own code differs). Each server runs
--rounds series of --n sequential invokes on one keep-alive connection, the servers alternating
round by round so load drift hits both alike; the figures are each server's median of its
series' p50 (and p99) and, less moved by other work on a shared machine, the CPU time each
series cost the server process (all its threads, from the scheduler's nanosecond account) and
the function's container (its cgroup), per invocation. SAM CLI's `sam local start-lambda` (warm
containers EAGER) runs the same series once, as the yardstick.

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
    docker_inspect,
    ensure_sam,
    free_port,
    keep_alive_invokes,
    machine,
    make_parser,
    nearest_rank,
    peers_dir,
    proc_cpu_ns,
    read_int,
    run_cli,
    warm_up,
)


def series_figures(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50": round(nearest_rank(ms, 50), 3), "p99": round(nearest_rank(ms, 99), 3)}


def server_containers(pid: int) -> list[Path]:
    """The cpuacct cgroup folders of the running containers of the `lrun serve` process ``pid``
    (its owner label), found through each container's first process: lrun may place a
    container in a cgroup of its own rather than the engine's default."""
    listed = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", "label=lrun.managed=1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    mine = []
    for row in docker_inspect(listed):
        labels = row.get("Config", {}).get("Labels") or {}
        if not str(labels.get("lrun.owner", "")).startswith(f"serve-{pid}-"):
            continue
        try:
            with open(f"/proc/{row['State']['Pid']}/cgroup") as f:
                for line in f:
                    _, controllers, path = line.rstrip("\n").split(":", 2)
                    if "cpuacct" in controllers.split(","):
                        mine.append(Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/"))
        except (OSError, KeyError, ValueError):
            continue
    return mine


def cgroup_cpu_s(folders: list[Path]) -> float:
    return sum((read_int(folder / "cpuacct.usage") or 0) / 1e9 for folder in folders)


def measured_series(server: LrunServer, body: bytes, n: int) -> dict[str, float]:
    """One series of ``n`` keep-alive invokes: its p50 and p99, and the CPU microseconds per
    invocation the server process and its function's containers used meanwhile."""
    containers = server_containers(server.pid)
    server_ns = proc_cpu_ns(server.pid)
    container_s = cgroup_cpu_s(containers)
    times, _ = keep_alive_invokes(server.url, "Echo", [body] * n)
    server_ns = proc_cpu_ns(server.pid) - server_ns
    container_s = cgroup_cpu_s(containers) - container_s
    figures = series_figures(times)
    figures["server_cpu_us"] = round(server_ns / 1000 / n, 1)
    figures["container_cpu_us"] = round(container_s * 1e6 / n, 1)
    return figures


def base_tree(revision: str, into: Path) -> Path:
    """A checkout of ``revision`` of this repository (no install: used through PYTHONPATH)."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), revision],
        check=True,
        capture_output=True,
    )
    return into


# Runs ``python -m orchestrator`` from the tree in argv[1], not the installed (editable) one.
# With argv[2] ``any-image``, a runtime image that exists counts as current: an older tree
# would see the image of today's runtime inputs as outdated and rebuild it over the one in use
# (another's, on a shared engine); this way both trees run the same image, and only lrun's
# own code differs.
LAUNCH = (
    "import runpy, sys\n"
    "tree = sys.argv.pop(1)\n"
    "any_image = sys.argv.pop(1) == 'any-image'\n"
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]\n"
    "sys.path.insert(0, tree)\n"
    "if any_image:\n"
    "    from orchestrator.sandbox import images\n"
    "    images.is_current = lambda backend, name: (\n"
    "        backend.image(images.RUNTIMES[name].image) is not None)\n"
    "runpy.run_module('orchestrator', run_name='__main__', alter_sys=True)\n"
)


def lrun_server(tree: Path, work: Path, name: str, any_image: bool = False) -> LrunServer:
    server = LrunServer(
        [sys.executable, "-c", LAUNCH, str(tree), "any-image" if any_image else "as-built"],
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
                "base": lrun_server(base, work, f"lrun ({args.base})", any_image=True),
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
                        series[key].append(measured_series(lrun[key], body, args.n))
            for key, server in lrun.items():
                servers.stop(server)
                result[key] = {
                    "p50_ms": round(statistics.median(s["p50"] for s in series[key]), 3),
                    "p99_ms": round(statistics.median(s["p99"] for s in series[key]), 3),
                    "server_cpu_us": round(
                        statistics.median(s["server_cpu_us"] for s in series[key]), 1
                    ),
                    "container_cpu_us": round(
                        statistics.median(s["container_cpu_us"] for s in series[key]), 1
                    ),
                    "series": series[key],
                }
            for figure in ("p50_ms", "server_cpu_us"):
                result[f"{figure}_change_pct"] = round(
                    100 * (result["head"][figure] / result["base"][figure] - 1), 1
                )
            result["p50_change_pct"] = result["p50_ms_change_pct"]
            # Each round's two series ran back to back, under about the same load: the median
            # of their ratios is steadier on a shared machine than the ratio of the medians.
            for figure in ("p50", "server_cpu_us"):
                pairs = zip(series["head"], series["base"], strict=True)
                ratios = [head[figure] / base[figure] for head, base in pairs]
                result[f"{figure}_paired_change_pct"] = round(
                    100 * (statistics.median(ratios) - 1), 1
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
        f"{'':28}{'p50 ms':>10}{'p99 ms':>10}{'server CPU us':>15}{'function CPU us':>17}",
    ]
    for key, label in (("base", f"lrun {result['revision']}"), ("head", "lrun (this tree)")):
        row = result[key]
        rows.append(
            f"{label:28}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}"
            f"{row['server_cpu_us']:>15.1f}{row['container_cpu_us']:>17.1f}"
        )
    if "sam" in result:
        sam = result["sam"]
        rows.append(f"{'SAM CLI (one series)':28}{sam['p50_ms']:>10.3f}{sam['p99_ms']:>10.3f}")
    rows.append(
        f"this tree against {result['revision']}: p50 {result['p50_change_pct']:+.1f} %, "
        f"server CPU per invocation {result['server_cpu_us_change_pct']:+.1f} %; median of "
        f"the rounds' ratios: p50 {result['p50_paired_change_pct']:+.1f} %, server CPU "
        f"{result['server_cpu_us_paired_change_pct']:+.1f} %"
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
