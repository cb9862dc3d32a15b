#!/usr/bin/env python3
"""One-shot cold invoke: `lrun invoke Echo` against `sam local invoke Echo`, timed from outside.

Both tools run the same handler (../shared/peers/sam/app, python3.11, 1769 MB) with the same
event, each as a fresh process that starts a fresh container, answers once and exits. The two
are measured alternately in the same run, on the same machine, so noise from the machine hits
both; compare the ratio more than the absolute figures.

    python3.11 bench/cold_invoke.py --runs 8          # table + lrun's phase breakdown
    python3.11 bench/cold_invoke.py --runs 8 --json   # one JSON object instead

Wall time is measured with ``time.perf_counter`` around ``subprocess.run``: process spawn to
process exit, as a shell would see it. lrun runs with ``LRUN_TRACE=1`` so every run also yields
its phase marks (one list append each and one stderr write at exit).

Needs only the standard library, a Docker engine, lrun's runtime images and SAM CLI as set up
by ../shared/peers/sam/setup.sh (run here if ``$PEERS_DIR/sam-venv/bin/sam`` is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    EVENT,
    EXPECTED,
    LRUN_APP,
    SETUP,
    BenchError,
    command_output,
    ensure_sam,
    find_lrun,
    machine,
    make_parser,
    peers_dir,
    run_cli,
    running_containers,
    summary,
)

FUNCTION = "Echo"
TARGET_P50_S = 0.5
RUN_TIMEOUT_S = 120  # one invocation; far above either tool, only catches a hang

# `trace container started      +  310.2 ms  at  640.1 ms`
TRACE_LINE = re.compile(
    r"^trace (?P<phase>.+?)\s+\+\s*(?P<delta>[\d.]+) ms\s+at\s+(?P<at>[\d.]+) ms"
)
INIT_DURATION = re.compile(r"Init Duration: (?P<ms>[\d.]+) ms")
REPORT_DURATION = re.compile(r"\tDuration: (?P<ms>[\d.]+) ms")

PHASES = (
    "cli ready",
    "manifest loaded",
    "docker connected",
    "image checked",
    "runtime api up",
    "container created",
    "container started",
    "runtime ready",
    "answered",
    "output drained",
    "invoked",
    "loop closed",
    "printed",
)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CLI start + manifest", ("cli ready", "manifest loaded")),
    ("Docker SDK import + connect", ("docker connected",)),
    ("Runtime API + image check", ("image checked", "runtime api up")),
    ("container create", ("container created",)),
    ("container start", ("container started",)),
    ("runtime init", ("runtime ready",)),
    ("invoke", ("answered",)),
    ("clean-up / drain", ("output drained", "invoked", "loop closed", "printed")),
)
# Wall time not covered by any mark: fork/exec before the process's start tick, and the
# interpreter's exit after the last mark (plus the ~10 ms granularity of the start tick).
UNMARKED = "spawn + exit (wall - last mark)"


@dataclass
class Run:
    wall_s: float
    phases_ms: dict[str, float] = field(default_factory=dict)  # phase -> `+` delta
    last_mark_ms: float | None = None  # `at` of the last trace mark
    init_duration_ms: float | None = None  # REPORT's Init Duration
    report_duration_ms: float | None = None  # REPORT's Duration


@dataclass
class Tool:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)


# Running and checking


def parse_response(tool: str, stdout: str) -> Any:
    """The response is the last non-empty line of standard output (SAM adds no newline)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise BenchError(f"{tool}: no response on standard output")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise BenchError(f"{tool}: response is not JSON: {lines[-1]!r}") from exc


def run_once(tool: Tool) -> Run:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            tool.argv,
            cwd=tool.cwd,
            env=tool.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{tool.name} did not finish in {RUN_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise BenchError(f"{tool.name}: cannot run {tool.argv[0]}: {exc}") from exc
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"{tool.name} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
            f"--- stderr\n{proc.stderr}"
        )
    response = parse_response(tool.name, proc.stdout)
    if response != EXPECTED:
        raise BenchError(
            f"{tool.name} answered {response!r}, expected {EXPECTED!r}\n--- stderr\n{proc.stderr}"
        )
    run = Run(wall_s=wall)
    for line in proc.stderr.splitlines():
        if m := TRACE_LINE.match(line):
            run.phases_ms[m["phase"].strip()] = float(m["delta"])
            run.last_mark_ms = float(m["at"])
        elif line.startswith("REPORT "):
            if m := INIT_DURATION.search(line):
                run.init_duration_ms = float(m["ms"])
            if m := REPORT_DURATION.search(line):
                run.report_duration_ms = float(m["ms"])
    return run


def check_trace(run: Run) -> None:
    missing = [p for p in PHASES if p not in run.phases_ms]
    if missing:
        raise BenchError(
            f"lrun's trace lacks {missing}; is LRUN_TRACE honoured by this lrun? "
            f"(saw {sorted(run.phases_ms)})"
        )


def measure(tools: Sequence[Tool], runs: int, pause_s: float, log: bool) -> None:
    """One discarded warm-up per tool, then ``runs`` rounds; who goes first alternates."""
    for tool in tools:
        run_once(tool)
        time.sleep(pause_s)
    for i in range(runs):
        order = tools if i % 2 == 0 else tuple(reversed(tools))
        for tool in order:
            run = run_once(tool)
            if tool.name == "lrun":
                check_trace(run)
            tool.runs.append(run)
            if log:
                print(f"  run {i + 1:2}/{runs} {tool.name:<4} {run.wall_s:6.3f} s", file=sys.stderr)
            time.sleep(pause_s)  # lets the engine finish removing the container before the next


# Figures


def breakdown(runs: Sequence[Run]) -> dict[str, Any]:
    phases = {p: statistics.median(r.phases_ms[p] for r in runs) for p in PHASES}
    groups = {
        name: statistics.median(sum(r.phases_ms[p] for p in members) for r in runs)
        for name, members in GROUPS
    }
    unmarked = [r.wall_s * 1000 - (r.last_mark_ms or 0.0) for r in runs]
    groups[UNMARKED] = statistics.median(unmarked)
    return {"phases_ms": phases, "groups_ms": groups}


# Output


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"One-shot cold invoke of {FUNCTION}: {result['runs']} runs per tool, alternating "
        f"(+1 discarded warm-up each, {result['pause_s']:g} s pause between invocations)",
        f"machine: {m['nproc']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}, "
        f"Docker {m['docker_server_version']}, {m['docker_storage_driver']}, cgroup "
        f"{m['docker_cgroup']}; 1-min load {m['loadavg_start'][0]} at start, "
        f"{m['loadavg_end'][0]} at end; other containers running: "
        f"{m['containers_running_start']} at start, {m['containers_running_end']} at end",
        f"lrun: {result['lrun']['version']}: {result['lrun']['command']}",
        f"sam:  {result['sam']['version']}: {result['sam']['command']}",
        "",
        f"{'wall s':<10}{'p50':>8}{'p90':>8}{'min':>8}{'max':>8}",
    ]
    cols = ("p50", "p90", "min", "max")
    for name in ("lrun", "sam"):
        s = result[name]["wall_s"]
        lines.append(f"{name:<10}" + "".join(f"{s[k]:8.3f}" for k in cols))
    r = result["ratio_sam_over_lrun"]
    lines.append(f"{'sam/lrun':<10}" + "".join(f"{r[k]:7.2f}x" for k in cols))
    t = result["target"]
    verdict = (
        f"met, {-t['miss_s']:.3f} s to spare"
        if t["met"]
        else f"missed by {t['miss_s']:.3f} s ({t['p50_s'] / t['p50_max_s']:.2f}x the target)"
    )
    lines += ["", f"target: lrun p50 <= {t['p50_max_s']:.3f} s: {verdict}", ""]
    b = result["lrun"]["breakdown"]
    lines.append(f"lrun phases, median ms over {result['runs']} runs (LRUN_TRACE=1)")
    for name, members in GROUPS:
        detail = ", ".join(f"{p} {b['phases_ms'][p]:.1f}" for p in members)
        lines.append(f"  {name:<32}{b['groups_ms'][name]:8.1f}   ({detail})")
    lines.append(f"  {UNMARKED:<32}{b['groups_ms'][UNMARKED]:8.1f}")
    lines.append(
        f"  {'sum of the medians above':<32}{sum(b['groups_ms'].values()):8.1f}"
        f"   (wall p50 {result['lrun']['wall_s']['p50'] * 1000:.1f})"
    )
    init = result["lrun"]["report_init_duration_ms"]
    if init:
        lines.append(f"lrun REPORT Init Duration, median: {statistics.median(init):.1f} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    lrun = find_lrun(args.lrun, console_script=True)
    sam = ensure_sam(args.peers_dir, args.sam_setup)
    with tempfile.TemporaryDirectory(prefix="lrun-bench-") as tmp:
        event = Path(tmp) / "event.json"
        event.write_text(json.dumps(EVENT))
        lrun_tool = Tool(
            "lrun",
            [*lrun, "invoke", FUNCTION, "--payload", json.dumps(EVENT)],
            LRUN_APP,
            {**os.environ, "LRUN_TRACE": "1"},
        )
        sam_tool = Tool(
            "sam",
            [str(sam), "local", "invoke", FUNCTION, "--skip-pull-image", "--event", str(event)],
            args.peers_dir / "app",
            {**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        info = machine()
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
        info["containers_running_start"] = running_containers()
        versions = {
            "lrun": command_output([*lrun, "--version"]),
            "sam": command_output([str(sam), "--version"], sam_tool.env),
        }
        measure((lrun_tool, sam_tool), args.runs, args.pause, log=not args.json)
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        info["containers_running_end"] = running_containers()

    result: dict[str, Any] = {
        "benchmark": "one-shot cold invoke",
        "function": FUNCTION,
        "event": EVENT,
        "runs": args.runs,
        "pause_s": args.pause,
        "machine": info,
    }
    for tool in (lrun_tool, sam_tool):
        walls = [r.wall_s for r in tool.runs]
        result[tool.name] = {
            "version": versions[tool.name],
            "command": f"(cd {shlex.quote(str(tool.cwd))} && {shlex.join(tool.argv)})",
            "argv": tool.argv,
            "cwd": str(tool.cwd),
            "wall_s": summary(walls),
            "wall_s_runs": [round(w, 4) for w in walls],
            "report_duration_ms": [r.report_duration_ms for r in tool.runs],
            "report_init_duration_ms": [
                r.init_duration_ms for r in tool.runs if r.init_duration_ms is not None
            ],
        }
    result["lrun"]["breakdown"] = breakdown(lrun_tool.runs)
    result["lrun"]["phases_ms_runs"] = [r.phases_ms for r in lrun_tool.runs]
    lrun_s, sam_s = result["lrun"]["wall_s"], result["sam"]["wall_s"]
    result["ratio_sam_over_lrun"] = {k: sam_s[k] / lrun_s[k] for k in lrun_s}
    result["target"] = {
        "p50_max_s": TARGET_P50_S,
        "p50_s": lrun_s["p50"],
        "met": lrun_s["p50"] <= TARGET_P50_S,
        "miss_s": lrun_s["p50"] - TARGET_P50_S,
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--runs", type=int, default=10, help="measured runs per tool (10)")
    parser.add_argument(
        "--peers-dir",
        type=Path,
        default=peers_dir(),
        help="where setup.sh put SAM CLI and the app ($PEERS_DIR or /tmp/lrun-peers)",
    )
    parser.add_argument("--sam-setup", type=Path, default=SETUP, help="SAM's setup.sh")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between invocations (1.0)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return run_cli(args, run, render, failure="cold_invoke: FAILED")


if __name__ == "__main__":
    sys.exit(main())
