#!/usr/bin/env python3
"""Init Duration of a hello-world function on every runtime, at 128 MB and at 1769 MB, beside
Lambda's published figures for the same runtimes.

Each run is a one-shot ``lrun invoke hello`` (a fresh container, so a cold start) of the
runtime's template from templates/, with only ``memory`` changed; the figure is the REPORT
line's ``Init Duration``. Runtimes and memory sizes are measured in turns, so the machine's load
hits them all alike; the 1-minute load is recorded before and after.

    python3 bench/init_bench.py --runs 5          # table
    python3 bench/init_bench.py --runs 5 --json   # one JSON object

Lambda's figures are lambda-perf's (github.com/maxday/lambda-perf, data/2026-08-22.json: the
mean Init Duration of 10 cold starts of a hello-world zip function, x86_64). lambda-perf
measures 128, 256, 512 and 1024 MB; its 1024 MB figure stands beside lrun's 1769 MB one (its
figures do not change with memory: Lambda's init is not held to the memory's share of a CPU).
``provided`` is compared with its "shell" function on provided.al2023, a bash bootstrap as
lrun's provided template is.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import REPO, BenchError, find_lrun, load1, machine, make_parser, note, run_cli

MEMORY_SIZES = (128, 1769)
# runtime: (template, Lambda's mean Init Duration in ms at 128 MB, at 1024 MB)
LAMBDA: dict[str, tuple[str, float, float]] = {
    "python3.11": ("python", 79, 73),
    "python3.13": ("python", 91, 84),
    "python3.14": ("python3.14", 102, 102),
    "nodejs20.x": ("nodejs", 138, 141),
    "nodejs22.x": ("nodejs22.x", 137, 140),
    "nodejs24.x": ("nodejs24.x", 135, 136),
    "ruby3.3": ("ruby", 249, 249),
    "provided": ("provided", 38, 42),
    "java21": ("java", 242, 235),
}
INIT = re.compile(r"Init Duration: ([\d.]+) ms")


def project(root: Path, runtime: str, memory: int) -> Path:
    """The runtime's template, on this runtime, at this memory size."""
    template, _, _ = LAMBDA[runtime]
    where = root / f"{runtime}-{memory}"
    shutil.copytree(REPO / "templates" / template, where)
    text = (where / "lrun.yaml").read_text()  # the templates' layout: one setting a line
    text = re.sub(r"(?m)^(\s+runtime:) \S+$", rf"\1 {runtime}", text)
    text = re.sub(r"(?m)^(\s+memory:) \d+$", rf"\1 {memory}", text)
    (where / "lrun.yaml").write_text(text)
    return where


def init_duration(lrun: list[str], where: Path) -> float:
    done = subprocess.run(
        [*lrun, "invoke", "hello", "--payload", '{"name": "bench"}'],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = INIT.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"lrun invoke in {where} failed: {done.stderr.strip()[-400:]}")
    return float(found[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    lrun = find_lrun(args.lrun)
    runtimes = args.runtime or list(LAMBDA)
    for name in runtimes:
        if name not in LAMBDA:
            raise BenchError(f"unknown runtime {name!r}; known: {', '.join(LAMBDA)}")
    load_before = load1()
    samples: dict[str, dict[int, list[float]]] = {
        r: {m: [] for m in MEMORY_SIZES} for r in runtimes
    }
    with tempfile.TemporaryDirectory(prefix="lrun-init-bench-") as tmp:
        projects = {(r, m): project(Path(tmp), r, m) for r in runtimes for m in MEMORY_SIZES}
        for where in projects.values():  # a first cold start builds missing images
            init_duration(lrun, where)
        for turn in range(args.runs):
            note(f"turn {turn + 1} of {args.runs} (load {load1()})")
            for (r, m), where in projects.items():
                samples[r][m].append(init_duration(lrun, where))
    rows = []
    for r in runtimes:
        _, lambda_small, lambda_large = LAMBDA[r]
        row: dict[str, Any] = {
            "runtime": r,
            "lambda_128": lambda_small,
            "lambda_1024": lambda_large,
        }
        for m in MEMORY_SIZES:
            row[f"lrun_{m}_median"] = round(statistics.median(samples[r][m]), 1)
            row[f"lrun_{m}_best"] = round(min(samples[r][m]), 1)
            row[f"lrun_{m}_all"] = [round(x, 1) for x in samples[r][m]]
        row["ratio_128"] = round(row["lrun_128_median"] / lambda_small, 2)
        rows.append(row)
    return {
        "machine": machine(),
        "load1_before": load_before,
        "load1_after": load1(),
        "runs": args.runs,
        "rows": rows,
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        "| runtime | lrun 128 MB, median (best) | Lambda 128 MB | lrun / Lambda "
        "| lrun 1769 MB, median (best) | Lambda 1024 MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['runtime']} | {row['lrun_128_median']:.0f} ({row['lrun_128_best']:.0f}) ms "
            f"| {row['lambda_128']:.0f} ms | {row['ratio_128']:.2f} "
            f"| {row['lrun_1769_median']:.0f} ({row['lrun_1769_best']:.0f}) ms "
            f"| {row['lambda_1024']:.0f} ms |"
        )
    lines.append(
        f"\nmedian of {result['runs']} cold starts each; 1-min load {result['load1_before']} "
        f"before, {result['load1_after']} after; {result['machine']}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="cold starts per runtime and size")
    parser.add_argument("--runtime", action="append", help="only this runtime (repeatable)")
    return run_cli(parser.parse_args(), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
