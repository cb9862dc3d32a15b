#!/usr/bin/env python3
"""`lrun serve` beside `sam local start-lambda`: the warm-pool figures of issue 3, in one run.

Both serve the same code (../shared/peers/sam/app/src: `Echo` returns {"echo": event}, `Sleep`
sleeps event["s"] seconds; python3.11, 1769 MB = 1 vCPU). In one run this script:

1. starts `lrun serve` on bench/sam_app/lrun.yaml and SAM CLI's start-lambda (warm containers
   EAGER), each on a free port, lrun with its own temporary LRUN_STATE_DIR;
2. runs ../shared/peers/invoke_bench.py (first invoke, boto3 and raw keep-alive warm latency,
   throughput with 8 Python clients, 10 parallel 1 s sleeps) against both; then, for lrun only,
   the 10 parallel sleeps again, now that all 10 Sleep environments are warm, and 1000 more raw
   keep-alive invokes with the CPU each process used;
3. wrk, 1 thread, 8 connections, 10 s, POST {"x": 1} to Echo on both (lrun first warmed with 8
   parallel invokes and a discarded 2 s wrk run; SAM with the same 2 s run), with the CPU time
   of the client, the server process (and its system calls and context switches), the function
   containers and the whole host; the memory of one warm Echo environment of each; and a py-spy
   profile of the lrun server under a second, separate wrk run (--no-profile skips it);
4. `lrun invoke Echo --payload '{"x": 1}'` from a shell (a subprocess in bench/sam_app, with the
   first server's state directory, so it goes through that server), `lrun --version` as its
   floor, and the AWS CLI's `aws lambda invoke` pointed at SAM (and at lrun: the same client on
   both);
5. cold starts inside a server: a temporary manifest of 10 functions Cold0..Cold9 on a second
   `lrun serve`, against SAM start-lambda with warm containers LAZY on a copy of its template
   with the same 10 functions; the first invoke of each, timed from request sent to response
   read, alternating lrun and SAM, cut by the engine's container create and start events; lrun's
   REPORT Init Duration of each from the server's invocation log;
6. 100 idle 128 MB environments on a third `lrun serve` (function `Idle`, the sleeper, 128 MB,
   --max-concurrency 128, plus `Hot`, the echo at 1769 MB): host memory (MemAvailable, and the
   RSS and PSS of each environment's processes, its containerd shim and its fuse-overlayfs)
   before and after 100 concurrent 1 s invokes of Idle, and Hot's raw keep-alive warm latency
   (three series of 1000) before and while the 100 idle environments exist.

Before each phase it waits (up to --max-wait seconds) until the 1-minute load average is at most
--max-load, and records the load each phase ran under. Every server it starts is stopped at
the end (SIGTERM for lrun, which removes its containers; SIGINT for SAM).

    python3.11 bench/serve_bench.py            # figures and the target table
    python3.11 bench/serve_bench.py --json     # the same as one JSON object

Needs Python 3.11 with boto3, a Docker engine with lrun's python3.11 image, wrk, the AWS CLI
(installed with pip if missing), py-spy for the profile (skipped if missing), and SAM CLI as set
up by ../shared/peers/sam/setup.sh (PEERS_DIR, default /tmp/lrun-peers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import (
    CODE_DIR,
    EVENT,
    EXPECTED,
    HERE,
    LRUN_APP,
    PEERS,
    BenchError,
    CpuWindow,
    LrunServer,
    Phases,
    SamServer,
    Servers,
    add_quiet_arguments,
    cgroup_dir,
    code_digest,
    command_output,
    concurrent_invokes,
    container_cpu_s,
    docker_inspect,
    ensure_sam,
    environments,
    find_lrun,
    find_py_spy,
    free_port,
    host_cpu_s,
    invoke_once,
    keep_alive_invokes,
    machine,
    make_parser,
    meminfo,
    nearest_rank,
    note,
    peers_dir,
    proc_cpu_s,
    py_spy_record,
    read_int,
    run_cli,
    run_wrk,
    running_containers,
    summarize_profile,
    summary,
    warm_up,
    wrk_version,
)

INVOKE_BENCH = PEERS / "invoke_bench.py"
POST_LUA = HERE / "post.lua"

COLD_FUNCTIONS = 10
IDLE_ENVIRONMENTS = 100
WRK_SECONDS = 10
WRK_CONNECTIONS = 8
CLI_RUNS = 20
AWS_CLI_RUNS = 10
LATENCY_RUNS = 1000  # raw keep-alive series for the idle-environments comparison

# The targets.
TARGET_RAW_P50_MS = 1.0
TARGET_RAW_P99_MS = 3.0
TARGET_THROUGHPUT = 2000.0
TARGET_PARALLEL_S = 1.5
TARGET_COLD_P50_MS = 300.0
TARGET_CLI_MS = 150.0
TARGET_IDLE_MIB = 20.0
# "Warm p99 unchanged" is met when the p99 with the idle environments is at most 25 % or
# 0.25 ms (whichever is larger) above the p99 without them.
UNCHANGED_RATIO = 1.25
UNCHANGED_ABS_MS = 0.25

INIT_DURATION = re.compile(r"Init Duration: (?P<ms>[\d.]+) ms")


# Figures


def small_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(seconds),
        **{f"{k}_ms": round(v * 1000, 1) for k, v in summary(seconds).items()},
    }


def ratio(slow: float | None, fast: float | None) -> float | None:
    if slow is None or fast is None or fast == 0:
        return None
    return round(slow / fast, 2)


# The Invoke API and lrun's


def raw_series(url: str, function: str, n: int) -> dict[str, float]:
    """Sequential invokes over one keep-alive connection, as invoke_bench.py's raw series."""
    bodies = (json.dumps({"x": i}).encode() for i in range(n))
    times, _ = keep_alive_invokes(url, function, bodies)
    return {
        "n": n,
        "p50_ms": round(nearest_rank(times, 50) * 1000, 3),
        "p99_ms": round(nearest_rank(times, 99) * 1000, 3),
        "max_ms": round(max(times) * 1000, 3),
    }


def env_counts(url: str, function: str) -> dict[str, int]:
    counts = Counter(r["state"] for r in environments(url) if r["function"] == function)
    return dict(counts)


# Processes and containers


def smaps(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cmdlines() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw:
            found[int(entry)] = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    return found


def pids_named(name: str) -> list[int]:
    return [pid for pid, argv in cmdlines().items() if Path(argv[0]).name == name]


def rss_kib(pids: Sequence[int]) -> int:
    return sum(smaps(pid)[0] for pid in pids)


def lrun_containers(server_pid: int, function: str | None = None) -> list[dict[str, Any]]:
    """The running containers of the `lrun serve` process ``server_pid`` (its owner label)."""
    ids = command_output(
        ["docker", "ps", "-q", "--no-trunc", "--filter", "label=lrun.managed=1"]
    ).split()
    prefix = f"serve-{server_pid}-"
    mine = []
    for row in docker_inspect(ids):
        labels = row.get("Config", {}).get("Labels") or {}
        if not str(labels.get("lrun.owner", "")).startswith(prefix):
            continue
        if function is not None and labels.get("lrun.function") != function:
            continue
        mine.append(row)
    return mine


def attribute_memory(containers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Host memory each container costs, by process: its own processes (its cgroup's), its
    containerd shim (found by ``-id <id>``) and its fuse-overlayfs (found by its merged
    directory), as RSS and PSS (shared pages split between their users), in MiB per container;
    plus the container's cgroup memory usage (its processes' memory, page cache and kernel
    memory charged to it)."""
    argvs = cmdlines()
    shim_of: dict[str, int] = {}
    fuse_of: dict[str, int] = {}
    for pid, argv in argvs.items():
        name = Path(argv[0]).name
        if name.startswith("containerd-shim") and "-id" in argv:
            index = argv.index("-id")
            if index + 1 < len(argv):
                shim_of[argv[index + 1]] = pid
        elif name == "fuse-overlayfs":
            fuse_of[argv[-1]] = pid
    totals: Counter[str] = Counter()
    counted = 0
    for row in containers:
        cid = row["Id"]
        folder = cgroup_dir("memory", cid)
        pids: list[int] = []
        if folder is not None:
            with contextlib.suppress(OSError):
                pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        if not pids and row.get("State", {}).get("Pid"):
            pids = [int(row["State"]["Pid"])]
        for pid in pids:
            rss, pss = smaps(pid)
            totals["processes_rss"] += rss
            totals["processes_pss"] += pss
        if cid in shim_of:
            rss, pss = smaps(shim_of[cid])
            totals["shim_rss"] += rss
            totals["shim_pss"] += pss
            totals["with_shim"] += 1
        merged = (row.get("GraphDriver", {}).get("Data") or {}).get("MergedDir")
        if merged in fuse_of:
            rss, pss = smaps(fuse_of[merged])
            totals["fuse_rss"] += rss
            totals["fuse_pss"] += pss
            totals["with_fuse"] += 1
        if folder is not None:
            usage = read_int(folder / "memory.usage_in_bytes")
            if usage is not None:
                totals["cgroup_usage"] += usage // 1024
                totals["with_cgroup"] += 1
            kmem = read_int(folder / "memory.kmem.usage_in_bytes")
            if kmem is not None:
                totals["cgroup_kmem"] += kmem // 1024
        counted += 1
    if counted == 0:
        return {"containers": 0}

    def per(key: str) -> float:
        return round(totals[key] / 1024 / counted, 2)

    pss_sum = totals["processes_pss"] + totals["shim_pss"] + totals["fuse_pss"]
    rss_sum = totals["processes_rss"] + totals["shim_rss"] + totals["fuse_rss"]
    return {
        "containers": counted,
        "with_shim": totals["with_shim"],
        "with_fuse_overlayfs": totals["with_fuse"],
        "processes_rss_mib": per("processes_rss"),
        "processes_pss_mib": per("processes_pss"),
        "shim_rss_mib": per("shim_rss"),
        "shim_pss_mib": per("shim_pss"),
        "fuse_overlayfs_rss_mib": per("fuse_rss"),
        "fuse_overlayfs_pss_mib": per("fuse_pss"),
        "total_pss_mib": round(pss_sum / 1024 / counted, 2),
        "total_rss_mib": round(rss_sum / 1024 / counted, 2),
        "cgroup_usage_mib": per("cgroup_usage") if totals["with_cgroup"] else None,
        "cgroup_kmem_mib": per("cgroup_kmem") if totals["with_cgroup"] else None,
    }


def docker_stats_mem(ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    text = command_output(
        ["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *ids]
    )
    found = {}
    for line in text.splitlines():
        short, _, usage = line.partition(" ")
        found[short] = usage
    return found


class ContainerEvents:
    """The engine's container create and start events while it is open (`docker events`,
    replayed from the moment it was opened, so none is missed while it subscribes)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> ContainerEvents:
        since = f"{time.time() - 0.5:.3f}"
        argv = [
            "docker", "events", "--since", since, "--format", "{{json .}}",
            "--filter", "type=container", "--filter", "event=create", "--filter", "event=start",
        ]  # fmt: skip
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.rows.append(json.loads(line))

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.0)  # the last events reach the stream
        assert self._proc is not None
        self._proc.terminate()
        self._proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)

    def times(self, match: Callable[[dict[str, str]], bool]) -> dict[str, dict[str, float]]:
        """Container id -> {"create": epoch s, "start": epoch s, and the attributes}, for the
        containers whose attributes (labels, name, image) ``match``."""
        found: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            attributes = (row.get("Actor") or {}).get("Attributes") or {}
            if not match(attributes):
                continue
            entry = found.setdefault(row["id"], {"attributes": attributes})
            entry[str(row.get("Action") or row.get("status"))] = row["timeNano"] / 1e9
        return found


def start_spread(events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How a burst of container starts went: how many, from the first create to the last
    start, and each container's create -> start (the engine's start) in ms."""
    pairs = [e for e in events.values() if "create" in e and "start" in e]
    if not pairs:
        return {"containers": 0}
    starts = [(e["start"] - e["create"]) * 1000 for e in pairs]
    first = min(e["create"] for e in pairs)
    return {
        "created_started_s": sorted(
            [round(e["create"] - first, 2), round(e["start"] - first, 2)] for e in pairs
        ),
        "containers": len(pairs),
        "first_create_to_last_start_s": round(
            max(e["start"] for e in pairs) - min(e["create"] for e in pairs), 2
        ),
        "engine_start_ms": {
            "p50": round(statistics.median(starts), 1),
            "max": round(max(starts), 1),
            "min": round(min(starts), 1),
        },
    }


# Tools


def ensure_awscli() -> None:
    check = [sys.executable, "-c", "import awscli"]
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        note("installing the AWS CLI with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "awscli"], check=True)


# Phase 2: invoke_bench.py, and the parallel sleeps again on a warm lrun


def run_invoke_bench(url: str, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(INVOKE_BENCH), url, "--n", str(n)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"invoke_bench.py {url}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def parallel_sleeps_boto3(url: str, parallel: int = 10) -> float:
    """invoke_bench.py's parallel test (boto3, one thread per call, {"s": 1}), once more."""
    import concurrent.futures as cf

    import boto3  # type: ignore[import-untyped]
    from botocore import UNSIGNED  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    cfg = Config(
        signature_version=UNSIGNED,
        retries={"max_attempts": 0},
        read_timeout=300,
        max_pool_connections=max(64, parallel * 2),
    )
    lam = boto3.client("lambda", endpoint_url=url, region_name="us-east-1", config=cfg)

    def sleep_once(_: int) -> None:
        r = lam.invoke(FunctionName="Sleep", Payload=json.dumps({"s": 1}))
        body = r["Payload"].read()
        if r["StatusCode"] != 200 or "FunctionError" in r:
            raise BenchError(f"Sleep: {r['StatusCode']} {body[:200]!r}")

    sleep_once(0)  # as invoke_bench.py does before its timing (and warms the client)
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(parallel) as ex:
        list(ex.map(sleep_once, range(parallel)))
    return time.perf_counter() - start


# Phase 3: wrk


def wrk_echo(url: str, seconds: int) -> dict[str, Any]:
    """wrk against Echo with bench/post.lua."""
    return run_wrk(url, "Echo", POST_LUA, seconds, WRK_CONNECTIONS)


# Phase 4: cold starts


def write_cold_manifest(folder: Path, count: int) -> Path:
    lines = ["functions:"]
    for i in range(count):
        lines += [
            f"  Cold{i}:",
            "    runtime: python3.11",
            "    handler: app.handler",
            f"    code: {CODE_DIR}",
            "    memory: 1769",
            "    timeout: 30",
        ]
    path = folder / "lrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sam_cold_app(peers: Path, folder: Path, count: int) -> Path:
    app = folder / "sam-cold"
    shutil.copytree(peers / "app" / "src", app / "src")
    lines = [
        "AWSTemplateFormatVersion: '2010-09-09'",
        "Transform: AWS::Serverless-2016-10-31",
        "Resources:",
    ]
    for i in range(count):
        lines += [
            f"  Cold{i}:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            "      CodeUri: src/",
            "      Handler: app.handler",
            "      Runtime: python3.11",
            "      MemorySize: 1769",
            "      Timeout: 30",
        ]
    (app / "template.yaml").write_text("\n".join(lines) + "\n")
    return app


def first_invoke(url: str, function: str, sent_at: list[float] | None = None) -> float:
    status, _, body, elapsed = invoke_once(url, function, EVENT, timeout=120, sent_at=sent_at)
    if status != 200 or json.loads(body) != EXPECTED:
        raise BenchError(f"first invoke of {function} at {url}: {status} {body[:200]!r}")
    return elapsed


def lrun_match(server_pid: int, function: str | None) -> Callable[[dict[str, str]], bool]:
    """Matches the event attributes of ``server_pid``'s containers (of ``function``)."""
    prefix = f"serve-{server_pid}-"

    def match(attributes: dict[str, str]) -> bool:
        if not attributes.get("lrun.owner", "").startswith(prefix):
            return False
        return function is None or attributes.get("lrun.function") == function

    return match


def sam_match(attributes: dict[str, str]) -> bool:
    return attributes.get("sam.cli.container.type") == "lambda"


def cold_breakdown(
    sent: dict[str, float],
    elapsed: dict[str, float],
    events: dict[str, dict[str, Any]],
    label: str,
    inits: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Each cold start cut by the engine's events (medians over the functions, ms): request
    sent -> container created (the server's work before and the engine's create), created ->
    started (the engine's start), started -> response read (runtime init, invoke, answer);
    with lrun's REPORT Init Duration, the last is cut again into init and the rest."""
    by_function = {e["attributes"].get(label): e for e in events.values()}
    parts: dict[str, list[float]] = {}
    for fn, at in sent.items():
        e = by_function.get(fn)
        if e is None or "create" not in e or "start" not in e:
            continue
        cut = {
            "request_to_created": e["create"] - at,
            "engine_start": e["start"] - e["create"],
            "started_to_response": at + elapsed[fn] - e["start"],
        }
        if inits is not None and fn in inits:
            cut["init_duration"] = inits[fn]
            cut["started_to_response_minus_init"] = cut["started_to_response"] - inits[fn]
        for key, value in cut.items():
            parts.setdefault(key, []).append(value * 1000)
    return {
        "n": len(parts.get("engine_start", [])),
        **{k: round(statistics.median(v), 1) for k, v in parts.items()},
    }


def sequential_cpu(server: LrunServer, n: int) -> dict[str, Any]:
    """A raw keep-alive series of Echo with the CPU it used: server, function containers,
    this client, the whole host."""
    ids = [c["Id"] for c in lrun_containers(server.pid, "Echo")]
    raw_series(server.url, "Echo", 100)  # discarded
    before = resource.getrusage(resource.RUSAGE_SELF)
    with CpuWindow(server.pid, ids) as window:
        figures: dict[str, Any] = raw_series(server.url, "Echo", n)
        after = resource.getrusage(resource.RUSAGE_SELF)
        client = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        figures["cpu"] = window.result(n, client)
    return figures


# Phase 5: the command line


def timed_run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr[-1000:]}")
    return elapsed, proc.stdout, proc.stderr


def lrun_invoke_series(lrun: list[str], state_dir: Path, runs: int) -> dict[str, Any]:
    env = {**os.environ, "LRUN_STATE_DIR": str(state_dir)}
    env.pop("LRUN_TRACE", None)
    argv = [*lrun, "invoke", "Echo", "--payload", json.dumps(EVENT)]
    times = []
    for i in range(runs + 1):  # the first is a discarded warm-up (page cache)
        elapsed, out, err = timed_run(argv, LRUN_APP, env)
        if json.loads(out.strip().splitlines()[-1]) != EXPECTED:
            raise BenchError(f"lrun invoke: unexpected response {out!r}")
        if i and "Init Duration" in err:  # a one-shot run is always cold; via the server, warm
            raise BenchError("lrun invoke did not go through the server (a cold start)")
        if i:
            times.append(elapsed)
    return {"command": f"(cd {LRUN_APP} && {' '.join(argv)})", **small_summary_ms(times)}


def version_series(lrun: list[str], runs: int) -> dict[str, Any]:
    """`lrun --version`: the interpreter and CLI start-up alone, a floor for `lrun invoke`."""
    argv = [*lrun, "--version"]
    times = [timed_run(argv, LRUN_APP, dict(os.environ))[0] for _ in range(runs + 1)][1:]
    return {"command": " ".join(argv), **small_summary_ms(times)}


def aws_cli_argv(url: str, outfile: Path) -> list[str]:
    return [
        sys.executable, "-m", "awscli", "lambda", "invoke",
        "--endpoint-url", url, "--region", "us-east-1", "--no-sign-request",
        "--function-name", "Echo", "--payload", json.dumps(EVENT), str(outfile),
    ]  # fmt: skip


def aws_cli_series(urls: dict[str, str], runs: int, folder: Path) -> dict[str, Any]:
    """`aws lambda invoke` against each endpoint, alternating, one discarded warm-up each."""
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}
    times: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(runs + 1):
        for name, url in urls.items():
            outfile = folder / f"aws-{name}.json"
            outfile.unlink(missing_ok=True)
            elapsed, _, _ = timed_run(aws_cli_argv(url, outfile), folder, env)
            if json.loads(outfile.read_text()) != EXPECTED:
                raise BenchError(f"aws lambda invoke ({name}): {outfile.read_text()!r}")
            if i:
                times[name].append(elapsed)
    return {
        name: {
            "command": " ".join(aws_cli_argv(urls[name], Path("out.json"))),
            **small_summary_ms(t),
        }
        for name, t in times.items()
    }


# Phase 6: idle environments


def write_idle_manifest(folder: Path) -> Path:
    path = folder / "lrun.yaml"
    path.write_text(
        "functions:\n"
        "  Idle:\n"
        "    runtime: python3.11\n"
        "    handler: app.sleeper\n"
        f"    code: {CODE_DIR}\n"
        "    memory: 128\n"
        "    timeout: 60\n"
        "  Hot:\n"
        "    runtime: python3.11\n"
        "    handler: app.handler\n"
        f"    code: {CODE_DIR}\n"
        "    memory: 1769\n"
        "    timeout: 30\n"
    )
    return path


def memory_snapshot(server_pid: int | None) -> dict[str, Any]:
    info = meminfo()
    snapshot = {
        "mem_available_mib": round(info["MemAvailable"] / 1024, 1),
        "mem_free_mib": round(info["MemFree"] / 1024, 1),
        "dockerd_rss_mib": round(rss_kib(pids_named("dockerd")) / 1024, 1),
        "containerd_rss_mib": round(rss_kib(pids_named("containerd")) / 1024, 1),
        "running_containers": running_containers(),
    }
    if server_pid is not None:
        snapshot["server_rss_mib"] = round(smaps(server_pid)[0] / 1024, 1)
    return snapshot


def cpu_without_requests(
    server_pid: int, containers: Sequence[dict[str, Any]], seconds: float = 5.0
) -> dict[str, float]:
    """CPUs used (CPU seconds per second) over ``seconds`` with no requests: by the server, by
    ``containers`` (their cgroups), their shims and fuse-overlayfs processes, dockerd,
    containerd, and the whole host."""
    ids = [c["Id"] for c in containers]
    merged = {(c.get("GraphDriver", {}).get("Data") or {}).get("MergedDir") for c in containers}
    helpers: dict[str, list[int]] = {"shims": [], "fuse_overlayfs": []}
    for pid, argv in cmdlines().items():
        name = Path(argv[0]).name
        if name.startswith("containerd-shim") and any(i in argv for i in ids):
            helpers["shims"].append(pid)
        elif name == "fuse-overlayfs" and argv[-1] in merged:
            helpers["fuse_overlayfs"].append(pid)
    groups = {
        "server": [server_pid],
        "dockerd": pids_named("dockerd"),
        "containerd": pids_named("containerd"),
        **helpers,
    }

    def sample() -> dict[str, float]:
        values = {"host": host_cpu_s(), "containers": sum(container_cpu_s(i) for i in ids)}
        for group, pids in groups.items():
            total = 0.0
            for pid in pids:
                with contextlib.suppress(OSError):
                    total += sum(proc_cpu_s(pid))
            values[group] = total
        values["wall"] = time.perf_counter()
        return values

    first = sample()
    time.sleep(seconds)
    last = sample()
    wall = last["wall"] - first["wall"]
    return {k: round((last[k] - first[k]) / wall, 3) for k in first if k != "wall"}


def latency_and_idle_cpu(
    url: str, function: str, repeats: int, n: int, server_pid: int
) -> dict[str, Any]:
    """``repeats`` raw keep-alive series of ``n`` (p50 and p99 of each, and their medians),
    then the CPU used over 5 s with no requests, by the server's containers and the rest."""
    series = [raw_series(url, function, n) for _ in range(repeats)]
    idle_cpu = cpu_without_requests(server_pid, lrun_containers(server_pid))
    return {
        "series": [{"p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"]} for s in series],
        "n": n,
        "p50_ms": statistics.median(s["p50_ms"] for s in series),
        "p99_ms": statistics.median(s["p99_ms"] for s in series),
        "host_cpus_busy_without_requests": idle_cpu["host"],
        "cpus_without_requests": idle_cpu,
    }


def wait_idle(url: str, function: str, count: int, timeout_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if env_counts(url, function).get("idle", 0) >= count:
            return time.perf_counter() - start
        time.sleep(1)
    raise BenchError(f"{function}: {env_counts(url, function)} after {timeout_s:g} s")


# The run


def run(args: argparse.Namespace) -> dict[str, Any]:
    lrun = find_lrun(args.lrun)
    peers = peers_dir()
    sam = ensure_sam(peers)
    ensure_awscli()
    py_spy = find_py_spy() if args.profile else None
    tmp = Path(tempfile.mkdtemp(prefix="lrun-serve-bench-"))
    phases = Phases(args.max_load, args.max_wait)
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "lrun": {
            "command": " ".join(lrun),
            "version": command_output([*lrun, "--version"]),
            "code_digest": code_digest(),
        },
        "sam": {"command": str(sam), "version": command_output([str(sam), "--version"])},
        "wrk_version": wrk_version(),
        "aws_cli_version": command_output([sys.executable, "-m", "awscli", "--version"]),
        "work_dir": str(tmp),
        "phases": phases.records,
    }
    servers = Servers()
    try:
        # 1. Start both.
        with phases.run("1 start"):
            main_state = tmp / "state-main"
            lrun_main = LrunServer(
                lrun,
                LRUN_APP / "lrun.yaml",
                main_state,
                tmp / "lrun-main.log",
                # environments stay warm through the waits for a quiet machine
                extra=["--idle-ttl", "3600"],
            )
            sam_main = SamServer(
                sam, peers / "app", free_port(), "EAGER", tmp / "sam-eager.log", "Echo"
            )
            servers.start(lrun_main)
            servers.start(sam_main)
            result["lrun"]["ready_s"] = round(lrun_main.wait_ready(), 2)
            result["sam"]["ready_s"] = round(sam_main.wait_ready(), 2)
            result["lrun"]["url"], result["sam"]["url"] = lrun_main.url, sam_main.url

        # 2. invoke_bench.py against both, then lrun's parallel sleeps once more.
        with phases.run("2 invoke_bench"):
            with ContainerEvents() as events:
                lrun_figures = run_invoke_bench(lrun_main.url, args.n)
            result["invoke_bench"] = {
                "lrun": lrun_figures,
                "sam": run_invoke_bench(sam_main.url, args.n),
            }
            result["lrun_invoke_bench_starts"] = {
                fn: start_spread(events.times(lrun_match(lrun_main.pid, fn)))
                for fn in ("Echo", "Sleep")
            }
            result["lrun_sleep_envs_before_rerun"] = env_counts(lrun_main.url, "Sleep")
            result["lrun_parallel_10x1s_all_warm_s"] = round(
                parallel_sleeps_boto3(lrun_main.url), 2
            )
            result["lrun_sleep_envs_after_rerun"] = env_counts(lrun_main.url, "Sleep")
            result["lrun_sequential_cpu"] = sequential_cpu(lrun_main, LATENCY_RUNS)

        # 3. wrk.
        with phases.run("3 wrk"):
            warm_up(lrun_main.url, "Echo", 8)
            wrk_echo(lrun_main.url, 2)  # discarded
            wrk_echo(sam_main.url, 2)  # discarded
            echo_ids = [c["Id"] for c in lrun_containers(lrun_main.pid, "Echo")]
            wrk: dict[str, Any] = {"lrun_echo_envs_before": env_counts(lrun_main.url, "Echo")}
            with CpuWindow(lrun_main.pid, echo_ids) as window:
                figures = wrk_echo(lrun_main.url, WRK_SECONDS)
                figures["cpu"] = window.result(figures["requests"], figures["client_cpu_s"])
            wrk["lrun"] = figures
            wrk["lrun_echo_envs_after"] = env_counts(lrun_main.url, "Echo")
            sam_ids = [c["Id"] for c in sam_main.containers("Echo")]
            with CpuWindow(sam_main.pid, sam_ids) as window:
                figures = wrk_echo(sam_main.url, WRK_SECONDS)
                figures["cpu"] = window.result(figures["requests"], figures["client_cpu_s"])
            wrk["sam"] = figures
            result["wrk"] = wrk
            # One warm 1769 MB environment of Echo, lrun's and SAM's, after the same work.
            lrun_echo = lrun_containers(lrun_main.pid, "Echo")
            sam_echo = sam_main.containers("Echo")
            result["warm_env_memory"] = {
                "lrun_echo": attribute_memory(lrun_echo),
                "sam_echo": attribute_memory(sam_echo),
                "docker_stats": {
                    "lrun_echo": list(docker_stats_mem([c["Id"] for c in lrun_echo]).values()),
                    "sam_echo": list(docker_stats_mem([c["Id"] for c in sam_echo]).values()),
                },
            }

        if py_spy is not None:
            with phases.run("3b profile"):
                raw = tmp / "py-spy-lrun.txt"
                spy = py_spy_record(py_spy, lrun_main.pid, 6, raw)
                time.sleep(0.5)
                profiled = wrk_echo(lrun_main.url, 8)
                spy.wait(60)
                result["profile"] = {
                    "file": str(raw),
                    "wrk_under_profiler_per_s": profiled["requests_per_s"],
                    **(summarize_profile(raw, 15) if raw.is_file() else {"samples": 0}),
                }

        # 4. The command line, against the running servers.
        with phases.run("4 cli"):
            result["cli"] = {
                "lrun_invoke": lrun_invoke_series(lrun, main_state, args.cli_runs),
                "lrun_version": version_series(lrun, 10),
                "aws_cli": aws_cli_series(
                    {"sam": sam_main.url, "lrun": lrun_main.url}, args.aws_runs, tmp
                ),
            }
        servers.stop(lrun_main)
        servers.stop(sam_main)

        # 5. Cold starts inside a running server.
        with phases.run("5 cold"):
            cold_dir = tmp / "cold"
            cold_dir.mkdir()
            cold_lrun = LrunServer(
                lrun,
                write_cold_manifest(cold_dir, args.cold_functions),
                tmp / "state-cold",
                tmp / "lrun-cold.log",
                name="lrun serve (cold)",
            )
            cold_sam = SamServer(
                sam,
                write_sam_cold_app(peers, tmp, args.cold_functions),
                free_port(),
                "LAZY",
                tmp / "sam-lazy.log",
                None,
            )
            servers.start(cold_lrun)
            servers.start(cold_sam)
            cold_lrun.wait_ready()
            cold_sam.wait_ready()
            elapsed: dict[str, dict[str, float]] = {"lrun": {}, "sam": {}}
            sent: dict[str, dict[str, float]] = {"lrun": {}, "sam": {}}
            with ContainerEvents() as events:
                for i in range(args.cold_functions):
                    for name, server in (("lrun", cold_lrun), ("sam", cold_sam)):
                        stamp: list[float] = []
                        elapsed[name][f"Cold{i}"] = first_invoke(server.url, f"Cold{i}", stamp)
                        sent[name][f"Cold{i}"] = stamp[0]
                        time.sleep(args.pause)
            servers.stop(cold_lrun)  # flushes its invocation logs
            servers.stop(cold_sam)
            inits: dict[str, float] = {}
            for fn in sent["lrun"]:
                log_file = tmp / "state-cold" / "logs" / f"{fn}.log"
                found = INIT_DURATION.search(log_file.read_text()) if log_file.is_file() else None
                if found:
                    inits[fn] = float(found.group("ms")) / 1000
            sam_cold_ids = set(cold_sam.container_ids())
            sam_events = {k: v for k, v in events.times(sam_match).items() if k in sam_cold_ids}
            lrun_times = list(elapsed["lrun"].values())
            sam_times = list(elapsed["sam"].values())
            result["cold"] = {
                "functions": args.cold_functions,
                "lrun": {**small_summary_ms(lrun_times), "all_ms": _ms(lrun_times)},
                "sam": {**small_summary_ms(sam_times), "all_ms": _ms(sam_times)},
                "lrun_init_duration": {
                    **small_summary_ms(list(inits.values())),
                    "all_ms": _ms(list(inits.values())),
                }
                if inits
                else None,
                "lrun_breakdown_ms": cold_breakdown(
                    sent["lrun"],
                    elapsed["lrun"],
                    events.times(lrun_match(cold_lrun.pid, None)),
                    "lrun.function",
                    inits,
                ),
                "sam_breakdown_ms": cold_breakdown(
                    sent["sam"], elapsed["sam"], sam_events, "sam.cli.function.name"
                ),
            }

        # 6. 100 idle 128 MB environments.
        with phases.run("6 idle"):
            idle_dir = tmp / "idle"
            idle_dir.mkdir()
            idle = LrunServer(
                lrun,
                write_idle_manifest(idle_dir),
                tmp / "state-idle",
                tmp / "lrun-idle.log",
                extra=["--max-concurrency", "128", "--idle-ttl", "1800"],
                name="lrun serve (idle)",
            )
            servers.start(idle)
            idle.wait_ready()
            first_invoke(idle.url, "Hot")
            time.sleep(3)  # let the new environment and the engine settle
            raw_series(idle.url, "Hot", 200)  # discarded warm-up
            before_latency = latency_and_idle_cpu(idle.url, "Hot", 3, LATENCY_RUNS, idle.pid)
            time.sleep(2)
            before = memory_snapshot(idle.pid)
            with ContainerEvents() as events:
                wall, statuses, errors = concurrent_invokes(
                    idle.url, "Idle", {"s": 1}, args.idle_envs
                )
            settle = wait_idle(idle.url, "Idle", args.idle_envs, 180)
            time.sleep(5)
            idle_envs = env_counts(idle.url, "Idle")
            after = memory_snapshot(idle.pid)
            idle_containers = lrun_containers(idle.pid, "Idle")
            attributed = attribute_memory(idle_containers)
            during_latency = latency_and_idle_cpu(idle.url, "Hot", 3, LATENCY_RUNS, idle.pid)
            after_latency = memory_snapshot(idle.pid)
            servers.stop(idle)
            time.sleep(3)
            stopped = memory_snapshot(None)
            made = len(idle_containers) or args.idle_envs
            result["idle"] = {
                "environments": args.idle_envs,
                "invokes_wall_s": round(wall, 2),
                "statuses": {str(k): v for k, v in statuses.items()},
                "errors": errors[:3],
                "settle_s": round(settle, 1),
                "starts": start_spread(events.times(lrun_match(idle.pid, "Idle"))),
                "idle_envs": idle_envs,
                "containers_found": len(idle_containers),
                "before": before,
                "after": after,
                "after_latency_series": after_latency,
                "after_stop": stopped,
                "mem_available_drop_mib_per_env": round(
                    (before["mem_available_mib"] - after["mem_available_mib"]) / made, 2
                ),
                "mem_available_back_after_stop_mib": round(
                    stopped["mem_available_mib"] - after["mem_available_mib"], 1
                ),
                "attributed": attributed,
                "server_rss_growth_mib_per_env": round(
                    (after["server_rss_mib"] - before["server_rss_mib"]) / made, 3
                ),
                "dockerd_rss_growth_mib_per_env": round(
                    (after["dockerd_rss_mib"] - before["dockerd_rss_mib"]) / made, 3
                ),
                "containerd_rss_growth_mib_per_env": round(
                    (after["containerd_rss_mib"] - before["containerd_rss_mib"]) / made, 3
                ),
                "hot_raw_before": before_latency,
                "hot_raw_during": during_latency,
            }
    finally:
        servers.stop_all()
    result["targets"] = targets(result)
    return result


def _ms(seconds: Sequence[float]) -> list[float]:
    return [round(s * 1000, 1) for s in seconds]


# Targets and output


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    ib_l, ib_s = r["invoke_bench"]["lrun"], r["invoke_bench"]["sam"]
    rows: list[dict[str, Any]] = []

    def add(
        name: str,
        target: str,
        lrun: float | None,
        sam: float | None,
        unit: str,
        met: bool | None,
        higher_is_better: bool = False,
        note_text: str = "",
    ) -> None:
        if higher_is_better:
            r_ = ratio(lrun, sam)
            ratio_text = f"lrun {r_}x SAM" if r_ is not None else "-"
        else:
            r_ = ratio(sam, lrun)
            ratio_text = f"SAM {r_}x lrun" if r_ is not None else "-"
        rows.append(
            {
                "figure": name,
                "target": target,
                "lrun": lrun,
                "sam": sam,
                "unit": unit,
                "ratio": ratio_text,
                "met": met,
                "note": note_text,
            }
        )

    p50, p99 = ib_l["raw_http_warm_p50_ms"], ib_l["raw_http_warm_p99_ms"]
    add("warm raw keep-alive p50", f"<= {TARGET_RAW_P50_MS:g} ms", p50,
        ib_s["raw_http_warm_p50_ms"], "ms", p50 <= TARGET_RAW_P50_MS)  # fmt: skip
    add("warm raw keep-alive p99", f"<= {TARGET_RAW_P99_MS:g} ms", p99,
        ib_s["raw_http_warm_p99_ms"], "ms", p99 <= TARGET_RAW_P99_MS)  # fmt: skip
    thr = r["wrk"]["lrun"]["requests_per_s"]
    add("wrk Echo, 8 connections", f">= {TARGET_THROUGHPUT:g}/s", thr,
        r["wrk"]["sam"]["requests_per_s"], "/s", thr is not None and thr >= TARGET_THROUGHPUT,
        higher_is_better=True)  # fmt: skip
    add("throughput, 8 boto3 clients (invoke_bench)", "-", ib_l["throughput_c8_per_s"],
        ib_s["throughput_c8_per_s"], "/s", None, higher_is_better=True)  # fmt: skip
    par_first = ib_l["parallel_10x1s_wall_s"]
    par_warm = r["lrun_parallel_10x1s_all_warm_s"]
    add("10 parallel 1 s sleeps (invoke_bench: 1 Sleep env warm, ~9 cold)",
        f"<= {TARGET_PARALLEL_S:g} s", par_first, ib_s["parallel_10x1s_wall_s"], "s",
        par_first <= TARGET_PARALLEL_S)  # fmt: skip
    add("10 parallel 1 s sleeps (again, all 10 envs warm)", f"<= {TARGET_PARALLEL_S:g} s",
        par_warm, ib_s["parallel_10x1s_wall_s"], "s", par_warm <= TARGET_PARALLEL_S,
        note_text="SAM figure: its only run (invoke_bench)")  # fmt: skip
    cold = r["cold"]
    add("cold start inside the server, p50 (request to response)",
        f"<= {TARGET_COLD_P50_MS:g} ms", cold["lrun"]["p50_ms"], cold["sam"]["p50_ms"], "ms",
        cold["lrun"]["p50_ms"] <= TARGET_COLD_P50_MS)  # fmt: skip
    add("cold start inside the server, p90", "-", cold["lrun"]["p90_ms"],
        cold["sam"]["p90_ms"], "ms", None)  # fmt: skip
    cli = r["cli"]
    lp50 = cli["lrun_invoke"]["p50_ms"]
    add("`lrun invoke` via the server p50 / SAM: `aws lambda invoke` p50",
        f"<= {TARGET_CLI_MS:g} ms", lp50, cli["aws_cli"]["sam"]["p50_ms"], "ms",
        lp50 <= TARGET_CLI_MS)  # fmt: skip
    sc = r["lrun_sequential_cpu"]
    add(f"warm raw keep-alive p50 / p99, {sc['n']} more (this script's series)", "-",
        sc["p50_ms"], None, "ms", None, note_text=f"p99 {sc['p99_ms']} ms")  # fmt: skip
    add("`lrun invoke` via the server p90", "-", cli["lrun_invoke"]["p90_ms"], None, "ms", None)
    add("`aws lambda invoke` p50, the same client on both", "-",
        cli["aws_cli"]["lrun"]["p50_ms"], cli["aws_cli"]["sam"]["p50_ms"], "ms",
        None)  # fmt: skip
    idle = r["idle"]
    per_env = idle["attributed"].get("total_pss_mib")
    add("host memory per idle 128 MB env (PSS: processes + shim + fuse-overlayfs)",
        f"<= {TARGET_IDLE_MIB:g} MiB", per_env,
        r["warm_env_memory"]["sam_echo"].get("total_pss_mib"), "MiB",
        per_env is not None and per_env <= TARGET_IDLE_MIB,
        note_text="SAM: its one warm Echo container (1769 MB); it cannot hold 100 of one "
        "function")  # fmt: skip
    drop = idle["mem_available_drop_mib_per_env"]
    add("MemAvailable drop per idle env", f"<= {TARGET_IDLE_MIB:g} MiB", drop, None, "MiB",
        drop <= TARGET_IDLE_MIB)  # fmt: skip
    b, d = idle["hot_raw_before"]["p99_ms"], idle["hot_raw_during"]["p99_ms"]
    limit = max(b * UNCHANGED_RATIO, b + UNCHANGED_ABS_MS)
    add(f"warm raw p99 with {idle['environments']} idle envs (median of 3 x "
        f"{LATENCY_RUNS}; without: {b} ms; p50 {idle['hot_raw_before']['p50_ms']} -> "
        f"{idle['hot_raw_during']['p50_ms']})",
        f"unchanged (<= {limit:.3f} ms)", d, None, "ms", d <= limit)  # fmt: skip
    return rows


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        f"lrun serve vs SAM start-lambda, {r['date']}",
        f"machine: {m['nproc']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}, Docker "
        f"{m['docker_server_version']} ({m['docker_storage_driver']}, cgroup "
        f"{m['docker_cgroup']}), Python {m['python']}",
        f"lrun: {r['lrun']['version']}, source digest {r['lrun']['code_digest']} "
        f"({r['lrun']['command']}); SAM: {r['sam']['version']}; "
        f"{r['wrk_version']}; {r['aws_cli_version']}",
        "phases (1-min load at start -> end, waited for quiet, containers running on the host "
        "(this run's included), duration):",
    ]
    for name, p in r["phases"].items():
        out.append(
            f"  {name}: load {p['load1_start']} -> {p['load1_end']}, waited {p['waited_s']:g} s, "
            f"{p['other_containers_start']} containers running at start, {p['elapsed_s']} s"
        )
    out.append("")
    out.append("invoke_bench.py:")
    for tool in ("lrun", "sam"):
        out.append(f"  {tool}: {json.dumps(r['invoke_bench'][tool])}")
    out.append(f"  lrun container starts during invoke_bench: {r['lrun_invoke_bench_starts']}")
    out.append(
        f"  lrun parallel 10x1 s again, all warm: {r['lrun_parallel_10x1s_all_warm_s']} s "
        f"(Sleep envs before: {r['lrun_sleep_envs_before_rerun']}, "
        f"after: {r['lrun_sleep_envs_after_rerun']})"
    )
    sc = r["lrun_sequential_cpu"]
    out.append(
        f"lrun raw keep-alive Echo x{sc['n']}: p50 {sc['p50_ms']} p99 {sc['p99_ms']} ms; "
        f"cpu {json.dumps(sc['cpu'])}"
    )
    w = r["wrk"]
    out.append(f"wrk ({WRK_CONNECTIONS} connections, {WRK_SECONDS} s):")
    for tool in ("lrun", "sam"):
        f = w[tool]
        out.append(
            f"  {tool}: {f['requests_per_s']}/s ({f['requests']} requests, non-2xx "
            f"{f['non_2xx']}, socket errors {f['socket_errors']}); latency p50 "
            f"{f.get('latency_p50_ms')} p90 {f.get('latency_p90_ms')} p99 "
            f"{f.get('latency_p99_ms')} ms"
        )
        out.append(f"    cpu: {json.dumps(f['cpu'])}")
    out.append(f"  lrun Echo envs before/after: {w['lrun_echo_envs_before']} / "
               f"{w['lrun_echo_envs_after']}")  # fmt: skip
    wm = r["warm_env_memory"]
    out.append(f"one warm Echo env (1769 MB): lrun {json.dumps(wm['lrun_echo'])}")
    out.append(f"                             SAM  {json.dumps(wm['sam_echo'])}")
    out.append(f"  docker stats: {json.dumps(wm['docker_stats'])}")
    if "profile" in r:
        p = r["profile"]
        out.append(
            f"py-spy on the lrun server under wrk ({p['samples']} samples; wrk under the "
            f"profiler {p['wrk_under_profiler_per_s']}/s; raw file {p['file']}):"
        )
        for kind in ("self", "inclusive"):
            out.append(f"  {kind}:")
            for frame, count, pct in p.get(kind, []):
                out.append(f"    {pct:5.1f}%  {count:6d}  {frame}")
    c = r["cold"]
    out.append(f"cold start inside the server ({c['functions']} functions, first invoke each):")
    out.append(f"  lrun: {json.dumps(c['lrun'])}")
    out.append(f"  SAM (LAZY): {json.dumps(c['sam'])}")
    out.append(f"  lrun REPORT Init Duration: {json.dumps(c['lrun_init_duration'])}")
    out.append(f"  lrun breakdown (medians, ms): {json.dumps(c['lrun_breakdown_ms'])}")
    out.append(f"  SAM breakdown (medians, ms): {json.dumps(c['sam_breakdown_ms'])}")
    cli = r["cli"]
    out.append(f"lrun invoke via the server: {json.dumps(cli['lrun_invoke'])}")
    out.append(f"lrun --version: {json.dumps(cli['lrun_version'])}")
    for tool in ("sam", "lrun"):
        out.append(f"aws lambda invoke -> {tool}: {json.dumps(cli['aws_cli'][tool])}")
    i = r["idle"]
    out.append(
        f"{i['environments']} idle 128 MB envs: invokes {i['invokes_wall_s']} s wall, statuses "
        f"{i['statuses']}, idle after {i['settle_s']} s: {i['idle_envs']}, containers found "
        f"{i['containers_found']}"
    )
    for key in ("before", "after", "after_latency_series", "after_stop"):
        out.append(f"  memory {key}: {json.dumps(i[key])}")
    out.append(
        f"  MemAvailable drop per env: {i['mem_available_drop_mib_per_env']} MiB (MemAvailable "
        f"came back by {i['mem_available_back_after_stop_mib']} MiB after the server stopped)"
    )
    starts = {k: v for k, v in i["starts"].items() if k != "created_started_s"}
    out.append(f"  container starts: {json.dumps(starts)}")
    out.append(f"  attributed per env: {json.dumps(i['attributed'])}")
    out.append(
        f"  growth per env: lrun server RSS {i['server_rss_growth_mib_per_env']} MiB, dockerd "
        f"{i['dockerd_rss_growth_mib_per_env']} MiB, containerd "
        f"{i['containerd_rss_growth_mib_per_env']} MiB"
    )
    out.append(f"  Hot raw before: {json.dumps(i['hot_raw_before'])}")
    out.append(f"  Hot raw during: {json.dumps(i['hot_raw_during'])}")
    out.append("")
    out.append("| figure | target | lrun | SAM | ratio | met? |")
    out.append("|---|---|---:|---:|---|---|")
    for row in r["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        sam = "-" if row["sam"] is None else row["sam"]
        note_text = f" ({row['note']})" if row["note"] else ""
        out.append(
            f"| {row['figure']}{note_text} | {row['target']} | {row['lrun']} {row['unit']} | "
            f"{sam} | {row['ratio']} | {met} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--n", type=int, default=300, help="invoke_bench.py's --n")
    ap.add_argument("--cli-runs", type=int, default=CLI_RUNS, help="`lrun invoke` runs")
    ap.add_argument("--aws-runs", type=int, default=AWS_CLI_RUNS, help="AWS CLI runs per server")
    ap.add_argument(
        "--cold-functions", type=int, default=COLD_FUNCTIONS, help="cold starts per server"
    )
    ap.add_argument(
        "--idle-envs", type=int, default=IDLE_ENVIRONMENTS, help="idle 128 MB environments"
    )
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between cold starts")
    add_quiet_arguments(ap)
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip py-spy")
    return run_cli(ap.parse_args(argv), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
