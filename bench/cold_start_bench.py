#!/usr/bin/env python3
"""Cold starts inside a running server: lrun with network holders, lrun without, SAM CLI.

Three servers in one run, on the same machine at the same time:

- ``lrun serve`` as it runs by default (network holders kept ready, issue 12),
- ``lrun serve --network-holders 0`` (every environment gets its network made when it starts,
  as before issue 12),
- ``sam local start-lambda --warm-containers LAZY`` on a copy of SAM's app.

Each serves 10 functions Cold0..Cold9 (a hello world, ``app.handler`` of
../shared/peers/sam/app/src, 1769 MB; python3.13 for lrun, the issue's target, and python3.11 for
SAM, the only image it has here) and ``Sleep`` (``app.sleeper``, python3.11 on all three).

1. Cold starts: the first invocation of each ColdN, timed from the request's first byte to the
   response's last, on a new connection, rotating which server goes first, 1 s apart. lrun's own
   clock cuts each one (the server's "started ... environment" line: the engine's create and
   start of the container, and whether its network was made ahead; REPORT's Init Duration: the
   runtime's start to its first /next); what is left of the request's time is lrun's own work
   and the invocation itself. Medians over the 10 functions.
2. 10 parallel 1 s requests that need 9 new environments: one warm ``Sleep`` environment (one
   invoke, then 3 s for the holders behind it to be made), then 10 ``{"s": 1}`` released at once,
   each on its own connection: the wall time to the last response. The lrun servers' ready
   holders just before the burst are counted (``docker ps``, label ``lrun.role=holder``).

Every phase records the 1-minute load and the containers running, at its start and end; with
other people's work on the machine, compare the servers within a run, and lrun's breakdown
(its own timestamps of each step) more than the request-to-response figures.

    python3.11 bench/cold_start_bench.py            # the table
    python3.11 bench/cold_start_bench.py --json     # one JSON object

Needs Python 3.11+ (standard library only), a Docker engine with lrun's python3.13 and python3.11
images, and SAM CLI as ../shared/peers/sam/setup.sh sets it up ($PEERS_DIR, default
/tmp/lrun-peers; run here if missing).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    CODE_DIR,
    EVENT,
    EXPECTED,
    BenchError,
    LrunServer,
    SamServer,
    Servers,
    command_output,
    concurrent_invokes,
    ensure_sam,
    find_lrun,
    free_port,
    invoke_once,
    load1,
    machine,
    make_parser,
    note,
    peers_dir,
    running_containers,
)

FUNCTIONS = 10
PARALLEL = 10
TARGET_COLD_MS = 300.0
TARGET_PARALLEL_S = 1.5
# `Cold3: started on-demand environment 1a2b3c4d (engine create 41 ms, start 152 ms; network
# held ahead)`, as the server's event line says it.
STARTED = re.compile(
    r"(?P<fn>\w+): started on-demand environment \w+ \(engine create (?P<create>\d+) ms, "
    r"start (?P<start>\d+) ms; network (?P<network>held ahead|made now)\)"
)
INIT = re.compile(r"Init Duration: (?P<ms>[\d.]+) ms")


def lrun_manifest(folder: Path) -> Path:
    lines = ["functions:"]
    for i in range(FUNCTIONS):
        lines += [f"  Cold{i}: {{runtime: python3.13, handler: app.handler, code: {CODE_DIR},"]
        lines += ["           memory: 1769, timeout: 30}"]
    lines += [f"  Sleep: {{runtime: python3.11, handler: app.sleeper, code: {CODE_DIR},"]
    lines += ["          memory: 1769, timeout: 30}"]
    folder.mkdir(parents=True)
    path = folder / "lrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sam_app(peers: Path, folder: Path) -> Path:
    app = folder / "sam-cold"
    shutil.copytree(peers / "app" / "src", app / "src")
    lines = [
        "AWSTemplateFormatVersion: '2010-09-09'",
        "Transform: AWS::Serverless-2016-10-31",
        "Resources:",
    ]
    handlers = [*((f"Cold{i}", "app.handler") for i in range(FUNCTIONS)), ("Sleep", "app.sleeper")]
    for name, handler in handlers:
        lines += [
            f"  {name}:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            "      CodeUri: src/",
            f"      Handler: {handler}",
            "      Runtime: python3.11",
            "      MemorySize: 1769",
            "      Timeout: 30",
        ]
    (app / "template.yaml").write_text("\n".join(lines) + "\n")
    return app


def conditions() -> dict[str, Any]:
    return {"load1": load1(), "containers": running_containers()}


def first_invoke(url: str, function: str) -> float:
    status, _, body, elapsed = invoke_once(url, function, EVENT, timeout=120)
    if status != 200 or json.loads(body) != EXPECTED:
        raise BenchError(f"first invoke of {function} at {url}: {status} {body[:200]!r}")
    return elapsed * 1000


def ready_holders(server: LrunServer) -> int:
    """The network holders of ``server`` alive now (ready ones, and any an environment uses)."""
    listing = ["docker", "ps", "--filter", "label=lrun.role=holder"]
    owners = command_output([*listing, "--format", '{{.Label "lrun.owner"}}']).split()
    return sum(owner.startswith(f"serve-{server.pid}-") for owner in owners)


def lrun_breakdown(server: LrunServer, elapsed: dict[str, float]) -> dict[str, Any]:
    """Each cold start cut by lrun's own timestamps (medians over the functions, ms)."""
    starts = {m["fn"]: m for m in STARTED.finditer(server.log_text())}
    parts: dict[str, list[float]] = {}
    networks: list[str] = []
    for fn, total in elapsed.items():
        started = starts.get(fn)
        log_file = server.state_dir / "logs" / f"{fn}.log"
        init = INIT.search(log_file.read_text()) if log_file.is_file() else None
        if started is None or init is None:
            continue
        create, start = float(started["create"]), float(started["start"])
        init_ms = float(init["ms"])
        networks.append(started["network"])
        for key, value in (
            ("request_to_response", total),
            ("engine_create", create),
            ("engine_start", start),
            ("runtime_init", init_ms),
            ("lrun_and_invoke", total - create - start - init_ms),
        ):
            parts.setdefault(key, []).append(value)
    return {
        "n": len(networks),
        "network": {n: networks.count(n) for n in sorted(set(networks))},
        **{k: round(statistics.median(v), 1) for k, v in parts.items()},
    }


def summary_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between cold starts")
    args = parser.parse_args()
    lrun = find_lrun(args.lrun)
    peers = peers_dir()
    sam = ensure_sam(peers)
    result: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="lrun-cold-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            lrun_servers = {
                "lrun": LrunServer(
                    lrun, lrun_manifest(tmp / "with"), tmp / "state-with", tmp / "with.log"
                ),
                "lrun_no_holders": LrunServer(
                    lrun,
                    lrun_manifest(tmp / "without"),
                    tmp / "state-without",
                    tmp / "without.log",
                    extra=["--network-holders", "0"],
                    name="lrun serve (no holders)",
                ),
            }
            every: dict[str, Any] = {
                **lrun_servers,
                "sam": SamServer(
                    sam, sam_app(peers, tmp), free_port(), "LAZY", tmp / "sam.log", None
                ),
            }
            for server in every.values():
                servers.start(server)
            for server in every.values():
                server.wait_ready()
            time.sleep(5)  # the holders' floor is made behind the start

            # 1. Cold starts
            note("cold starts")
            result["cold_conditions"] = [conditions()]
            elapsed: dict[str, dict[str, float]] = {name: {} for name in every}
            names = list(every)
            for i in range(FUNCTIONS):
                order = names[i % 3 :] + names[: i % 3]
                for name in order:
                    elapsed[name][f"Cold{i}"] = first_invoke(every[name].url, f"Cold{i}")
                    time.sleep(args.pause)
            result["cold_conditions"].append(conditions())
            result["cold_ms"] = {name: summary_ms(list(v.values())) for name, v in elapsed.items()}
            result["cold_all_ms"] = elapsed

            # 2. 10 parallel 1 s requests, 9 of them on new environments
            note("10 parallel 1 s requests")
            result["parallel_conditions"] = [conditions()]
            result["parallel_s"] = {}
            result["holders_ready_before_burst"] = {}
            for name, server in every.items():
                status, _, body, _ = invoke_once(server.url, "Sleep", {"s": 0}, timeout=120)
                if status != 200:
                    raise BenchError(f"{name}: Sleep answered {status}: {body[:200]!r}")
                time.sleep(3)
                if name in lrun_servers:
                    result["holders_ready_before_burst"][name] = ready_holders(server)
                wall, statuses, errors = concurrent_invokes(server.url, "Sleep", {"s": 1}, PARALLEL)
                if statuses[200] != PARALLEL:
                    raise BenchError(f"{name}: parallel sleeps {dict(statuses)} {errors[:3]}")
                result["parallel_s"][name] = round(wall, 3)
                time.sleep(2)
            result["parallel_conditions"].append(conditions())
            for name in lrun_servers:
                servers.stop(every[name])  # flushes its invocation logs
            result["lrun_breakdown_ms"] = {
                name: lrun_breakdown(server, elapsed[name]) for name, server in lrun_servers.items()
            }
        finally:
            servers.stop_all()
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    c0, c1 = r["cold_conditions"]
    p0, p1 = r["parallel_conditions"]
    out = [
        f"Cold starts inside a server, {FUNCTIONS} functions each ({r['started']})",
        f"machine: {m['nproc']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}, Docker "
        f"{m['docker_server_version']} ({m['docker_storage_driver']}, cgroup {m['docker_cgroup']})",
        f"load (1 min) / containers running: cold starts {c0['load1']}/{c0['containers']} -> "
        f"{c1['load1']}/{c1['containers']}; parallel {p0['load1']}/{p0['containers']} -> "
        f"{p1['load1']}/{p1['containers']}",
        "",
        f"{'request to response, ms':<34}{'p50':>8}{'min':>8}{'max':>8}",
    ]
    for name, s in r["cold_ms"].items():
        out.append(f"{name:<34}{s['p50']:8.1f}{s['min']:8.1f}{s['max']:8.1f}")
    out.append(f"target: lrun p50 <= {TARGET_COLD_MS:.0f} ms")
    out += ["", "lrun's own timestamps, medians (ms):"]
    for name, b in r["lrun_breakdown_ms"].items():
        out.append(
            f"  {name:<17} n={b['n']} network {b['network']}: engine create "
            f"{b.get('engine_create')}, engine start {b.get('engine_start')}, runtime init "
            f"{b.get('runtime_init')}, lrun + invoke {b.get('lrun_and_invoke')}"
        )
    out += ["", f"{PARALLEL} parallel 1 s requests (1 environment warm), wall s:"]
    for name, wall in r["parallel_s"].items():
        ready = r["holders_ready_before_burst"].get(name)
        extra = f"  ({ready} holders alive: ready or in use)" if ready is not None else ""
        out.append(f"  {name:<17}{wall:8.3f}{extra}")
    out.append(f"target: lrun <= {TARGET_PARALLEL_S} s")
    return "\n".join(out)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
