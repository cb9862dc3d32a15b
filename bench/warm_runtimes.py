#!/usr/bin/env python3
"""Warm invoke latency of a hello-world function on each runtime, in one run, at 1769 MB.

Each runtime's template from templates/ (as init_bench.py uses them; only ``runtime`` and
``memory`` changed, the function named ``warm-<runtime>``) is served by its own ``lrun serve``;
all servers run at once. After one invoke (the cold start) and ``--warm`` discarded ones, each
round runs ``--n`` sequential invokes of every runtime in turn, each on one raw keep-alive HTTP
connection (``--rounds`` rounds; the runtimes' order alternates, so load drift hits them
alike). Per runtime: p50 and p99 of each round (nearest rank), and the median of the rounds'
figures; the CPU the function's container used per invoke (its cgroup's accounting, so it
hardly moves with the machine's load: the runtime client's own work per invocation) and the
CPU of the runtime's ``lrun serve`` per invoke. The 1-minute load is recorded at the start and
end of each round.

    python3 bench/warm_runtimes.py                                  # python3.13, python3.14, java21
    python3 bench/warm_runtimes.py --runtime java21 --runtime nodejs20.x --json
    python3 bench/warm_runtimes.py --runtime java21 --base REV --base-prefix lrun-old

With ``--base``, each runtime is also served by lrun at revision REV (checked out with ``git
worktree`` in a temporary directory and run from there, LRUN_HOME pointing at it) with images
under ``--base-prefix`` (LRUN_IMAGE_PREFIX), in the same rounds: a runtime client's change
measured against the client before it. Images of that prefix that are not current for REV are
built by its ``lrun serve``, as always.

Lambda publishes no warm-invoke latency per runtime (lambda-perf, whose Init Duration figures
init_bench.py cites, measures cold starts only): the runtimes are compared with each other, in
the same run, and python3.13 is the reference whose figures serve_bench.py sets beside SAM's.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    REPO,
    BenchError,
    LrunServer,
    container_cpu_s,
    find_lrun,
    keep_alive_invokes,
    load1,
    machine,
    make_parser,
    nearest_rank,
    note,
    proc_cpu_s,
    run_cli,
)

MEMORY = 1769
TEMPLATES = {
    "python3.11": "python",
    "python3.13": "python",
    "python3.14": "python3.14",
    "nodejs20.x": "nodejs",
    "nodejs22.x": "nodejs22.x",
    "nodejs24.x": "nodejs24.x",
    "ruby3.3": "ruby",
    "provided": "provided",
    "java21": "java",
}
DEFAULT = ("python3.13", "python3.14", "java21")
EVENT = json.dumps({"name": "bench"}).encode()


def function_name(runtime: str) -> str:
    return "warm-" + runtime.replace(".", "-")


def project(root: Path, runtime: str, name: str) -> Path:
    """The runtime's template, on this runtime, at 1769 MB, its function called ``name``."""
    where = root / name
    shutil.copytree(REPO / "templates" / TEMPLATES[runtime], where)
    text = (where / "lrun.yaml").read_text()  # the templates' layout: one setting a line
    text = re.sub(r"(?m)^(\s+runtime:) \S+$", rf"\1 {runtime}", text)
    text = re.sub(r"(?m)^(\s+memory:) \d+$", rf"\1 {MEMORY}", text)
    text = re.sub(r"(?m)^  hello:", f"  {name}:", text)
    (where / "lrun.yaml").write_text(text)
    return where / "lrun.yaml"


def containers_of(function: str) -> list[str]:
    """The function's containers (a server may have started more than one environment: an idle
    one adds nothing to the CPU figures)."""
    found = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=lrun.function={function}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not found:
        raise BenchError(f"no environment of {function} is running")
    return found


def series(server: LrunServer, function: str, n: int) -> dict[str, float]:
    containers = containers_of(function)
    cpu_before = sum(container_cpu_s(c) for c in containers)
    server_before = sum(proc_cpu_s(server.pid))
    times, _ = keep_alive_invokes(server.url, function, [EVENT] * n, check_echo=False)
    cpu = sum(container_cpu_s(c) for c in containers) - cpu_before
    server_cpu = sum(proc_cpu_s(server.pid)) - server_before
    ms = sorted(t * 1000 for t in times)
    return {
        "p50": round(nearest_rank(ms, 50), 3),
        "p99": round(nearest_rank(ms, 99), 3),
        "container_cpu_ms": round(cpu * 1000 / n, 3),
        "server_cpu_ms": round(server_cpu * 1000 / n, 3),
    }


# Runs ``python -m orchestrator`` from the tree in argv[1], not the installed (editable) one
# (as warm_compare.py does).
LAUNCH = (
    "import runpy, sys\n"
    "tree = sys.argv.pop(1)\n"
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]\n"
    "sys.path.insert(0, tree)\n"
    "runpy.run_module('orchestrator', run_name='__main__', alter_sys=True)\n"
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    lrun = find_lrun(args.lrun)
    runtimes = args.runtime or list(DEFAULT)
    for name in runtimes:
        if name not in TEMPLATES:
            raise BenchError(f"unknown runtime {name!r}; known: {', '.join(TEMPLATES)}")
    # Each row: (label, runtime, function name); the base's rows follow the head's.
    rows_of = [(r, r, function_name(r)) for r in runtimes]
    if args.base:
        rows_of += [(f"{r} @ {args.base}", r, function_name(r) + "-base") for r in runtimes]
    rounds: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in rows_of}
    loads: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="lrun-warm-bench-") as tmp:
        root = Path(tmp)
        servers: dict[str, LrunServer] = {}
        try:
            base = None
            if args.base:
                base = root / "base-tree"
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
                    check=True,
                    capture_output=True,
                )
            for label, r, name in rows_of:
                manifest = project(root, r, name)
                on_base = base is not None and name.endswith("-base")
                command = [sys.executable, "-c", LAUNCH, str(base)] if on_base else lrun
                server = LrunServer(command, manifest, root / f"state-{name}", root / f"{name}.log")
                if on_base:
                    server.env = {
                        **server.env,
                        "LRUN_HOME": str(base),
                        "LRUN_IMAGE_PREFIX": args.base_prefix,
                    }
                server.start()
                servers[label] = server
            for label, _, name in rows_of:
                servers[label].wait_ready()
                url = servers[label].url
                keep_alive_invokes(url, name, [EVENT] * (1 + args.warm), check_echo=False)
            for turn in range(args.rounds):
                before = load1()
                order = rows_of if turn % 2 == 0 else list(reversed(rows_of))
                note(f"round {turn + 1} of {args.rounds} (load {before})")
                for label, _, name in order:
                    rounds[label].append(series(servers[label], name, args.n))
                loads.append((before, load1()))
        finally:
            for server in servers.values():
                server.stop()
            if base is not None:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)],
                    check=False,
                    capture_output=True,
                )
    rows = []
    for label, _, _ in rows_of:
        row: dict[str, Any] = {"runtime": label, "rounds": rounds[label]}
        for key in ("p50", "p99", "container_cpu_ms", "server_cpu_ms"):
            row[key] = round(statistics.median(x[key] for x in rounds[label]), 3)
        rows.append(row)
    return {
        "machine": machine(),
        "n": args.n,
        "memory": MEMORY,
        "base": args.base,
        "loads": loads,
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        "| runtime | warm p50 | warm p99 | function CPU per invoke | lrun serve CPU per invoke |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['runtime']} | {row['p50']:.2f} ms | {row['p99']:.2f} ms "
            f"| {row['container_cpu_ms']:.3f} ms | {row['server_cpu_ms']:.3f} ms |"
        )
    loads = ", ".join(f"{a} -> {b}" for a, b in result["loads"])
    lines.append(
        f"\nmedians of {len(result['loads'])} rounds of {result['n']} sequential invokes on one "
        f"keep-alive connection, {result['memory']} MB; 1-min load per round: {loads}; "
        f"{result['machine']}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--n", type=int, default=1000, help="invokes per round and runtime")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (runtimes in turn)")
    parser.add_argument("--warm", type=int, default=50, help="discarded invokes first")
    parser.add_argument("--runtime", action="append", help="only this runtime (repeatable)")
    parser.add_argument("--base", help="also serve each runtime from lrun at this revision")
    parser.add_argument(
        "--base-prefix", default="lrun-base", help="LRUN_IMAGE_PREFIX of --base's images"
    )
    return run_cli(parser.parse_args(), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
