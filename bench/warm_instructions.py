#!/usr/bin/env python3
"""Instructions per warm invocation of `lrun serve`, this tree beside an earlier revision.

A figure a busy machine cannot move: the number of instructions the server process runs (all
its threads, user space), counted by valgrind's callgrind. The hardware counters `perf stat`
would read are not there on a virtual machine without a PMU (`perf stat -e instructions` says
"not supported" on ours); callgrind counts the instructions itself, on a simulated CPU, about
50 times slower, which is why it counts a window of a few hundred invocations only.

Each server runs under `valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no`
(nothing is counted while it starts), serves bench/sam_app's `Echo` (python3.11, 1769 MB) as
bench/warm_compare.py does, and gets one warm-up invocation and 30 more once counting is on.
Then each thread's count is read (`callgrind_control -e`) around two windows: IDLE seconds with
no request, and N sequential invokes on one keep-alive connection. What a server does by the
clock (its sweeps, housekeeping, its edit watchers' threads) is in both, and under valgrind a
window of invokes lasts tens of seconds; per invocation is therefore
(invokes window - idle window x its wall / idle wall) / N, given for the event loop's thread
(where requests are handled; its clock-driven work is small, so this figure is steady) and for
all threads. The instructions the kernel runs for the server's system calls are not in these
counts (bench/warm_compare.py's CPU time has them).

    python3.11 bench/warm_instructions.py --base 8fa2ae9          # table
    python3.11 bench/warm_instructions.py --base 8fa2ae9 --json   # one JSON object

Needs valgrind (the Debian package) and lrun's python3.11 image. The two servers run one after
the other (about 3 minutes each).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    EVENT,
    REPO,
    BenchError,
    Servers,
    code_digest,
    keep_alive_invokes,
    load1,
    machine,
    make_parser,
    run_cli,
    warm_up,
)
from warm_compare import base_tree, lrun_server


def thread_counts(pid: int) -> dict[int, int]:
    """Instructions counted so far in each thread of a callgrind run (1: the main thread)."""
    shown = subprocess.run(
        ["callgrind_control", "-e", str(pid)], check=True, capture_output=True, text=True
    ).stdout
    return {
        int(found[1]): int(found[2].replace(",", ""))
        for found in re.finditer(r"(?m)^\s*Th (\d+)\s+([\d,]+)", shown)
    }


def window(before: dict[int, int], after: dict[int, int]) -> tuple[int, int]:
    """(main thread, all threads) instructions between two readings."""
    main = after.get(1, 0) - before.get(1, 0)
    return main, sum(after.values()) - sum(before.get(t, 0) for t in after)


def count(
    tree: Path, work: Path, name: str, any_image: bool, n: int, idle_s: float
) -> dict[str, Any]:
    """Instructions per invocation of the server of ``tree`` (see the module's docstring)."""
    work.mkdir()
    server = lrun_server(tree, work, name, any_image=any_image)
    server.argv = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={work}/callgrind.out",
        *server.argv,
    ]
    body = json.dumps(EVENT).encode()
    servers = Servers()
    try:
        servers.start(server)
        server.wait_ready(900)
        warm_up(server.url, "Echo", 1)
        subprocess.run(
            ["callgrind_control", "--instr=on", str(server.pid)], check=True, capture_output=True
        )
        keep_alive_invokes(server.url, "Echo", [body] * 30)
        load_start = load1()
        first = thread_counts(server.pid)
        started = time.perf_counter()
        time.sleep(idle_s)
        idle_wall = time.perf_counter() - started
        second = thread_counts(server.pid)
        _, wall = keep_alive_invokes(server.url, "Echo", [body] * n)
        third = thread_counts(server.pid)
        load_end = load1()
    finally:
        servers.stop_all()
    if 1 not in third:
        raise BenchError(f"callgrind_control showed no thread counts for {name}")
    idle_main, idle_all = window(first, second)
    busy_main, busy_all = window(second, third)
    scale = wall / idle_wall
    return {
        "main_thread_per_invoke": round((busy_main - idle_main * scale) / n),
        "all_threads_per_invoke": round((busy_all - idle_all * scale) / n),
        "window_wall_s": round(wall, 1),
        "idle_main_thread_per_s": round(idle_main / idle_wall),
        "idle_all_threads_per_s": round(idle_all / idle_wall),
        "threads": len(third),
        "load1": [load_start, load_end],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise BenchError("valgrind is not installed (apt-get install valgrind)")
    result: dict[str, Any] = {
        "machine": machine(),
        "code": code_digest(),
        "revision": args.base,
        "n": args.n,
        "idle_s": args.idle,
    }
    with tempfile.TemporaryDirectory(prefix="lrun-instr-") as tmp:
        work = Path(tmp)
        base = base_tree(args.base, work / "base")
        try:
            result["head"] = count(REPO, work / "head-run", "head", False, args.n, args.idle)
            result["base"] = count(base, work / "base-run", "base", True, args.n, args.idle)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)],
                capture_output=True,
            )
    for figure in ("main_thread_per_invoke", "all_threads_per_invoke"):
        change = result["head"][figure] / result["base"][figure] - 1
        result[f"{figure}_change_pct"] = round(100 * change, 1)
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        f"instructions per warm invocation, {result['n']} invokes counted per server",
        f"{'':24}{'main thread':>14}{'all threads':>14}",
    ]
    for key, label in (("base", f"lrun {result['revision']}"), ("head", "lrun (this tree)")):
        row = result[key]
        rows.append(
            f"{label:24}{row['main_thread_per_invoke']:>14,}{row['all_threads_per_invoke']:>14,}"
            f"   (idle, all threads: {row['idle_all_threads_per_s']:,}/s; load "
            f"{row['load1'][0]} -> {row['load1'][1]})"
        )
    rows.append(
        f"this tree against {result['revision']}: main thread "
        f"{result['main_thread_per_invoke_change_pct']:+.1f} %, all threads "
        f"{result['all_threads_per_invoke_change_pct']:+.1f} %"
    )
    return "\n".join(rows)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--n", type=int, default=300, help="invokes counted per server")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    args = parser.parse_args()
    return run_cli(args, run, render)


if __name__ == "__main__":
    raise SystemExit(main())
