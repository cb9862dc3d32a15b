#!/usr/bin/env python3
"""Asynchronous invocation and event sources (issue 4): what `lrun serve` sustains, in one run.

Functions: the code of ../shared/peers/sam/app/src (`Echo` returns {"echo": event}; python3.11,
1769 MB = 1 vCPU), declared in a temporary manifest as `Echo` (Event invokes, no destination),
`EchoE2E` (Event invokes; on-success destination: a JSON-lines file) and `Consumer` (an event
source mapping on the local queue `jobs`: batches of 10, maximum concurrency 4). In one run:

(a) durable `Event` invokes accepted per second: wrk, 1 thread, 8 connections, 10 s, POST
    {"x": 1} with `X-Amz-Invocation-Type: Event` to Echo (every 202 means the event is on disk,
    fsync'd); the dispatcher runs the events meanwhile, as it would for a user. Alternated
    with the same wrk run without the header (synchronous RequestResponse), the comparison
    figure; after each Event run the backlog is drained (timed) before anything else runs.
    The lrun server's CPU time per request comes from /proc/PID/stat (utime + stime). Then
    one more Event run under py-spy (not counted) shows where the server's time goes. The peer:
    SAM CLI's `sam local start-lambda` is asked for one Event invoke, and its answer recorded.
(b) end to end: 2,000 Event invokes of EchoE2E (8 keep-alive connections), from the first
    request sent to the 2,000th request id in the on-success file; EchoE2E warmed first.
(c) queue -> function: 5,000 messages sent to `jobs` (10 requests of 500), timed until the
    queue is empty (no message visible or in flight); against the same 5,000 bodies sent as
    synchronous invokes of Echo one by one on one keep-alive connection.

Before each phase it waits (up to --max-wait seconds) until the 1-minute load average is at most
--max-load, and records the load each phase ran under.

    python3.11 bench/async_bench.py            # figures and the target table
    python3.11 bench/async_bench.py --json     # the same as one JSON object

Needs Python 3.11 with boto3, a Docker engine with lrun's python3.11 image, wrk, py-spy for the
profile (skipped if missing), and SAM CLI as set up by ../shared/peers/sam/setup.sh (PEERS_DIR,
default /tmp/lrun-peers; --skip-sam to leave SAM out).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import (
    CODE_DIR,
    EVENT,
    INVOKE_PATH,
    REPO,
    BenchError,
    CpuWindow,
    LrunServer,
    Phases,
    SamServer,
    Servers,
    add_quiet_arguments,
    at_once,
    call,
    code_digest,
    ensure_sam,
    environments,
    find_lrun,
    find_py_spy,
    free_port,
    get_json,
    host_port,
    keep_alive_invokes,
    load1,
    machine,
    make_parser,
    nearest_rank,
    note,
    peers_dir,
    post_json,
    py_spy_record,
    run_cli,
    run_wrk,
    summarize_profile,
    warm_up,
    wrk_version,
)

WRK_SECONDS = 10
WRK_CONNECTIONS = 8
E2E_EVENTS = 2000
E2E_WARM_EVENTS = 200
E2E_CONNECTIONS = 8
QUEUE_MESSAGES = 5000
QUEUE_SEND_CHUNK = 500
QUEUE_BATCH = 10
QUEUE_CONCURRENCY = 4

TARGET_EVENT_ACCEPTS = 2000.0  # durable Event invokes accepted per second

LUA = """\
-- wrk script: Event invokes of the Invoke API, body {"x": 1} (written by bench/async_bench.py)
wrk.method = "POST"
wrk.body = '{"x": 1}'
wrk.headers["Content-Type"] = "application/json"
%s
"""
EVENT_HEADER = 'wrk.headers["X-Amz-Invocation-Type"] = "Event"'


def machine_info() -> dict[str, Any]:
    return {**machine(), "sqlite": sqlite3.sqlite_version, "wrk": wrk_version()}


def write_manifest(folder: Path) -> Path:
    settings = f"runtime: python3.11, handler: app.handler, code: {CODE_DIR}, memory: 1769"
    text = f"""\
# Written by bench/async_bench.py: SAM's Echo three times (see the module's docstring).
queues:
  jobs: {{visibility_timeout: 60}}
functions:
  Echo: {{{settings}, timeout: 30}}
  EchoE2E:
    {{{settings}, timeout: 30, async: {{on_success: {{file: ./out/e2e.jsonl}}}}}}
  Consumer:
    {{{settings}, timeout: 30,
     events: [{{queue: jobs, batch_size: {QUEUE_BATCH},
               maximum_concurrency: {QUEUE_CONCURRENCY}}}]}}
"""
    path = folder / "lrun.yaml"
    path.write_text(text)
    return path


# HTTP


def send_events(url: str, function: str, count: int, connections: int) -> tuple[set[str], float]:
    """``count`` Event invokes on ``connections`` keep-alive connections; (request ids, seconds
    from the first request to the last 202)."""
    host, port = host_port(url)
    path = INVOKE_PATH.format(function)
    ids: set[str] = set()
    problems: list[str] = []
    lock = threading.Lock()

    def sender(share: range, ready: Callable[[], object]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        mine: list[str] = []
        ready()
        try:
            for i in share:
                conn.request(
                    "POST",
                    path,
                    body=json.dumps({"x": i}).encode(),
                    headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
                )
                resp = conn.getresponse()
                data = resp.read()
                request_id = resp.getheader("x-amzn-RequestId")
                if resp.status != 202 or not request_id:
                    with lock:
                        problems.append(f"{resp.status} {data[:200]!r}")
                else:
                    mine.append(request_id)
        finally:
            conn.close()
        with lock:
            ids.update(mine)

    elapsed = at_once(
        [functools.partial(sender, range(k, count, connections)) for k in range(connections)]
    )
    if problems or len(ids) != count:
        raise BenchError(f"Event invokes of {function}: {len(ids)} accepted, {problems[:3]}")
    return ids, elapsed


def sequential_sync(url: str, function: str, bodies: Sequence[str]) -> float:
    """Each body as one synchronous invoke, one after another on one keep-alive connection."""
    _, elapsed = keep_alive_invokes(url, function, (b.encode() for b in bodies), check_echo=False)
    return elapsed


def event_depth(url: str, function: str) -> int:
    rows = get_json(url, "/lrun/events")
    for row in rows:
        if row["function"] == function:
            return int(row["depth"])
    return 0


def wait_drained(url: str, function: str, timeout_s: float = 600.0) -> float:
    start = time.perf_counter()
    while event_depth(url, function) > 0:
        if time.perf_counter() - start > timeout_s:
            raise BenchError(f"{function}: events not drained within {timeout_s:g} s")
        time.sleep(0.1)
    return time.perf_counter() - start


def record_ids(path: Path) -> set[str]:
    """Request ids of the complete records in an on-success file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return set()
    ids = set()
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            ids.add(json.loads(line)["requestContext"]["requestId"])
    return ids


# Measuring the server


SYNC_CALLS = ("fdatasync", "fsync")
# lrun's own modules (but the CLI, on every stack of the main thread): inclusive shares.
OWN_FILES = tuple(f"({p.name})" for p in (REPO / "orchestrator").glob("*.py") if p.name != "cli.py")


class SyscallCount:
    """Counts of the server's fdatasync/fsync calls over a window (perf's tracepoints; cheap,
    nothing is traced), or nothing if perf cannot count them here."""

    def __init__(self, pid: int) -> None:
        self.proc: subprocess.Popen[str] | None = None
        if shutil.which("perf") is None:
            return
        events = ",".join(f"syscalls:sys_enter_{name}" for name in SYNC_CALLS)
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-e", events, "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> dict[str, int] | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        counts: dict[str, int] = {}
        for line in err.splitlines():
            parts = line.split(",")
            for name in SYNC_CALLS:
                if len(parts) > 2 and parts[2] == f"syscalls:sys_enter_{name}":
                    counts[name] = int(parts[0]) if parts[0].isdigit() else -1
        return counts or None


def fsync_latency_ms(folder: Path, n: int = 200) -> dict[str, float]:
    """Append 4 KiB and fdatasync it, ``n`` times, in ``folder`` (where lrun's store is): what
    one durable commit costs this disk at least."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return {
        "n": n,
        "p50_ms": round(nearest_rank(times, 50), 3),
        "p90_ms": round(nearest_rank(times, 90), 3),
        "max_ms": round(max(times), 3),
    }


# The peer


def sam_event_answer(work: Path, event_lua: Path, sync_lua: Path) -> dict[str, Any]:
    """Start SAM CLI's start-lambda (warm containers EAGER) on the app, send one Event invoke
    (raw HTTP and through boto3) and record what it answers and whether the function ran
    (its log's REPORT lines); then the same wrk runs as lrun's, RequestResponse first, and
    how many of the accepted events had run 5 s after the Event run."""
    peers = peers_dir()
    sam = SamServer(
        ensure_sam(peers), peers / "app", free_port(), "EAGER", work / "sam.log", probe="Echo"
    )
    result: dict[str, Any] = {
        "command": "SAM_CLI_TELEMETRY=0 " + " ".join(sam.argv[:-2] + ["-p", "PORT"])
    }
    log_path = sam.log_path
    sam.start()
    try:
        sam.wait_ready(300)
        result["sync_answer"] = sam.probe_answer
        status, headers, data = call(
            sam.url, "POST", INVOKE_PATH.format("Echo"), EVENT, {"X-Amz-Invocation-Type": "Event"}
        )
        result["event_raw"] = {
            "status": status,
            "error_type": headers.get("x-amzn-errortype"),
            "body": data.decode(errors="replace")[:500],
        }
        result["event_boto3"] = boto3_event(sam.url)
        reports = _reports(log_path)
        result["event_ran_within_10_s"] = _wait_reports(log_path, reports, 10.0) > reports
        with CpuWindow(sam.pid) as cpu:
            sync = run_wrk(sam.url, "Echo", sync_lua, WRK_SECONDS, WRK_CONNECTIONS)
            sync["cpu"] = cpu.result(sync["requests"])
        result["wrk_sync"] = sync
        before = _reports(log_path)
        with CpuWindow(sam.pid) as cpu:
            event = run_wrk(sam.url, "Echo", event_lua, WRK_SECONDS, WRK_CONNECTIONS)
            event["cpu"] = cpu.result(event["requests"])
        event["ran_by_end"] = _reports(log_path) - before
        time.sleep(5)
        event["ran_5_s_later"] = _reports(log_path) - before
        result["wrk_event"] = event
    finally:
        sam.stop()
    return result


def _reports(log_path: Path) -> int:
    """Invocations SAM has logged as finished (REPORT lines of its containers' output)."""
    try:
        return log_path.read_text(errors="replace").count("REPORT RequestId")
    except OSError:
        return 0


def _wait_reports(log_path: Path, above: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := _reports(log_path)) <= above and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


def boto3_event(url: str) -> dict[str, Any]:
    """One Event invoke of Echo through boto3: its status, or the error it raises."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )
    try:
        response = client.invoke(FunctionName="Echo", InvocationType="Event", Payload=b'{"x": 1}')
    except ClientError as exc:
        return {"error": str(exc)}
    return {"status": response["StatusCode"]}


# The run


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    lrun = find_lrun(args.lrun)
    phases = Phases(args.max_load, args.max_wait)
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine_info(),
        "lrun": lrun,
        "lrun_code_digest": code_digest(),
        "load_before": load1(),
        "phases": phases.records,
    }
    work = Path(tempfile.mkdtemp(prefix="lrun-async-bench-"))
    manifest = write_manifest(work)
    event_lua, sync_lua = work / "event.lua", work / "post.lua"
    event_lua.write_text(LUA % EVENT_HEADER)
    sync_lua.write_text(LUA % "")
    servers = Servers()
    server = LrunServer(lrun, manifest, work / "state", work / "serve.log")
    try:
        servers.start(server)
        server.wait_ready()
        result["fsync_in_state_dir"] = fsync_latency_ms(work / "state")
        warm_up(server.url, "Echo", WRK_CONNECTIONS)

        # (a) Event accepts vs synchronous invokes, alternating; each Event run drained after.
        rounds: list[dict[str, Any]] = []
        result["a_rounds"] = rounds
        run_wrk(server.url, "Echo", sync_lua, 2, WRK_CONNECTIONS)  # warm-up, discarded
        for index in range(args.rounds):
            entry: dict[str, Any] = {}
            order = ("sync", "event") if index % 2 == 0 else ("event", "sync")
            for kind in order:
                with phases.run(f"a{index + 1}-{kind}"):
                    syncs = SyscallCount(server.pid)
                    with CpuWindow(server.pid) as cpu:
                        script = event_lua if kind == "event" else sync_lua
                        figures = run_wrk(server.url, "Echo", script, WRK_SECONDS, WRK_CONNECTIONS)
                        window = cpu.result(figures["requests"])
                    figures["cpu"] = window
                    figures["sync_calls"] = syncs.stop()
                    if kind == "event":
                        backlog = event_depth(server.url, "Echo")
                        figures["environments_after_wrk"] = len(environments(server.url, "Echo"))
                        with CpuWindow(server.pid) as cpu:
                            drain_s = wait_drained(server.url, "Echo")
                            processed = figures["requests"]
                            figures["backlog_after_wrk"] = backlog
                            figures["drain_s"] = round(drain_s, 2)
                            figures["drain_cpu"] = cpu.result(backlog)
                            figures["processed_per_s_total"] = round(
                                processed / (WRK_SECONDS + drain_s), 1
                            )
                    entry[kind] = figures
                    note(f"a{index + 1}-{kind}: {figures['requests_per_s']} /s")
            rounds.append(entry)
        result["a"] = summarize_rounds(rounds, phases.records)
        py_spy = find_py_spy()
        if py_spy and not args.no_profile:
            with phases.run("a-profile"):
                # py-spy during an Event run (accepting while the dispatcher runs events), then
                # during the drain of its backlog (running events only).
                accepting, draining = work / "profile-accepting.txt", work / "profile-draining.txt"
                spy = py_spy_record(
                    py_spy, server.pid, WRK_SECONDS, accepting, rate=200, threads=True
                )
                time.sleep(0.5)
                figures = run_wrk(server.url, "Echo", event_lua, WRK_SECONDS, WRK_CONNECTIONS)
                spy.wait(60)
                backlog = event_depth(server.url, "Echo")
                spy = py_spy_record(py_spy, server.pid, 5, draining, rate=200, threads=True)
                spy.wait(60)
                wait_drained(server.url, "Echo")
                profile: dict[str, Any] = {
                    "requests_per_s_under_py_spy": figures["requests_per_s"],
                    "backlog": backlog,
                }
                for name, path in (("accepting", accepting), ("draining", draining)):
                    if path.exists():
                        profile[name] = summarize_profile(
                            path, 12, threads=True, inclusive_files=OWN_FILES
                        )
                result["a_profile"] = profile

        # (b) end to end: accepted -> all processed, from the on-success file.
        e2e_file = work / "out" / "e2e.jsonl"
        warm_ids, _ = send_events(server.url, "EchoE2E", E2E_WARM_EVENTS, E2E_CONNECTIONS)
        while not warm_ids <= record_ids(e2e_file):
            time.sleep(0.1)
        wait_drained(server.url, "EchoE2E")
        with phases.run("b-e2e"):
            with CpuWindow(server.pid) as cpu:
                start = time.perf_counter()
                ids, accept_s = send_events(server.url, "EchoE2E", E2E_EVENTS, E2E_CONNECTIONS)
                while not ids <= record_ids(e2e_file):
                    if time.perf_counter() - start > 600:
                        raise BenchError("EchoE2E: events not all processed within 600 s")
                    time.sleep(0.02)
                total_s = time.perf_counter() - start
                window = cpu.result(E2E_EVENTS)
        envs = environments(server.url, "EchoE2E")
        result["b"] = {
            "events": E2E_EVENTS,
            "accept_s": round(accept_s, 3),
            "accepted_per_s": round(E2E_EVENTS / accept_s, 1),
            "all_processed_s": round(total_s, 3),
            "processed_per_s": round(E2E_EVENTS / total_s, 1),
            "environments": len(envs),
            "cpu": window,
        }

        # (c) queue -> function in batches, against synchronous invokes one by one.
        bodies = [json.dumps({"m": i}) for i in range(QUEUE_MESSAGES)]
        post_json(server.url, "/lrun/queues/jobs/messages", {"messages": bodies[:40]})
        wait_queue_empty(server.url, "jobs")  # the mapping's environments warm
        with phases.run("c-queue"):
            with CpuWindow(server.pid) as cpu:
                start = time.perf_counter()
                for i in range(0, QUEUE_MESSAGES, QUEUE_SEND_CHUNK):
                    chunk = bodies[i : i + QUEUE_SEND_CHUNK]
                    post_json(server.url, "/lrun/queues/jobs/messages", {"messages": chunk})
                sent_s = time.perf_counter() - start
                wait_queue_empty(server.url, "jobs")
                queue_s = time.perf_counter() - start
                queue_cpu = cpu.result(QUEUE_MESSAGES)
        with phases.run("c-sync"):
            with CpuWindow(server.pid) as cpu:
                sync_s = sequential_sync(server.url, "Echo", bodies)
                sync_cpu = cpu.result(QUEUE_MESSAGES)
        result["c"] = {
            "messages": QUEUE_MESSAGES,
            "send_s": round(sent_s, 3),
            "queue_empty_s": round(queue_s, 3),
            "queue_messages_per_s": round(QUEUE_MESSAGES / queue_s, 1),
            "queue_cpu": queue_cpu,
            "sync_one_by_one_s": round(sync_s, 3),
            "sync_messages_per_s": round(QUEUE_MESSAGES / sync_s, 1),
            "sync_cpu": sync_cpu,
        }
        servers.stop(server)
        if not args.skip_sam:
            with phases.run("sam"):
                result["sam"] = sam_event_answer(work, event_lua, sync_lua)
    finally:
        servers.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = load1()
    result["targets"] = targets(result)
    return result


def wait_queue_empty(url: str, queue: str, timeout_s: float = 600.0) -> None:
    start = time.perf_counter()
    while True:
        stats = get_json(url, f"/lrun/queues/{queue}")
        if stats["depth"] == 0 and stats["in_flight"] == 0:
            return
        if time.perf_counter() - start > timeout_s:
            raise BenchError(f"queue {queue} not empty within {timeout_s:g} s: {stats}")
        time.sleep(0.02)


def summarize_rounds(
    rounds: list[dict[str, Any]], records: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Medians of (a)'s figures over the runs that had the machine to themselves (quiet at the
    start, no one else's benchmark at the end); over every run if none did."""
    summary: dict[str, Any] = {}
    for kind, name in (("event", "event_accepts"), ("sync", "sync_invokes")):
        runs = [(i, r[kind]) for i, r in enumerate(rounds, 1)]
        quiet = [
            f
            for i, f in runs
            if records.get(f"a{i}-{kind}", {}).get("quiet_at_start")
            and not records.get(f"a{i}-{kind}", {}).get("other_benchmarks_end")
        ]
        used = quiet or [f for _, f in runs]
        summary[f"{name}_per_s_median"] = median([f["requests_per_s"] for f in used])
        summary[f"{name}_per_s_all"] = [f["requests_per_s"] for _, f in runs]
        summary[f"{kind}_quiet_runs"] = len(quiet)
        summary[f"{kind}_server_cpu_ms_median"] = median(
            [f["cpu"]["server_cpu_ms_per_request"] for f in used]
        )
    return summary


def accept_cpu_ms(event: dict[str, Any]) -> float | None:
    """The server's CPU per accept alone, derived from an Event round: its CPU during the wrk
    run, less what the events it ran meanwhile cost at the drain's CPU per event."""
    requests: int = event["requests"]
    backlog: int | None = event.get("backlog_after_wrk")
    per_event: float | None = event.get("drain_cpu", {}).get("server_cpu_ms_per_request")
    if not requests or backlog is None or per_event is None:
        return None
    ran_meanwhile = requests - backlog
    server_cpu_s: float = event["cpu"]["server_cpu_s"]
    cpu_ms = server_cpu_s * 1000 - per_event * ran_meanwhile
    return round(cpu_ms / requests, 3)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    a, b, c = r["a"], r["b"], r["c"]
    sam = r.get("sam")
    if sam:
        answer = sam["event_raw"]
        sam_text = (
            f"SAM start-lambda Event: {answer['status']} {answer['error_type'] or ''}, "
            f"{sam['wrk_event']['requests_per_s']}/s (in memory, not durable); SAM "
            f"RequestResponse {sam['wrk_sync']['requests_per_s']}/s"
        )
    else:
        sam_text = "SAM not run"
    return [
        {
            "figure": (
                f"(a) durable Event invokes accepted /s (wrk, 8 conn., 10 s; median of "
                f"{a['event_quiet_runs'] or 'all'} quiet runs)"
            ),
            "target": f">= {TARGET_EVENT_ACCEPTS:.0f}/s",
            "lrun": a["event_accepts_per_s_median"],
            "comparison": f"lrun RequestResponse {a['sync_invokes_per_s_median']}/s; {sam_text}",
            "met": a["event_accepts_per_s_median"] >= TARGET_EVENT_ACCEPTS,
        },
        {
            "figure": f"(b) {b['events']} Event invokes, accepted -> all processed",
            "target": "none given",
            "lrun": f"{b['processed_per_s']}/s ({b['all_processed_s']} s)",
            "comparison": f"accepts alone {b['accepted_per_s']}/s",
            "met": None,
        },
        {
            "figure": f"(c) {c['messages']} queue messages, batches of 10, until empty",
            "target": "none given",
            "lrun": f"{c['queue_messages_per_s']}/s ({c['queue_empty_s']} s)",
            "comparison": f"sync invokes one by one {c['sync_messages_per_s']}/s",
            "met": None,
        },
    ]


def render(r: dict[str, Any]) -> str:
    lines = [
        f"lrun async bench, {r['started']}; machine {json.dumps(r['machine'])}",
        f"lrun {' '.join(r['lrun'])} (code {r['lrun_code_digest']}); load {r['load_before']} "
        f"-> {r['load_after']}",
        "",
        f"fdatasync of 4 KiB in the state directory: {json.dumps(r['fsync_in_state_dir'])}",
        "(a) wrk, 1 thread, 8 connections, 10 s, Echo:",
    ]
    for index, entry in enumerate(r["a_rounds"], 1):
        for kind in ("sync", "event"):
            f = entry[kind]
            extra = ""
            if kind == "event":
                extra = (
                    f"; {f.get('environments_after_wrk')} environments; "
                    f"backlog {f['backlog_after_wrk']} drained in {f['drain_s']} s "
                    f"(server CPU {f['drain_cpu']['server_cpu_ms_per_request']} ms/event run; "
                    f"so {accept_cpu_ms(f)} ms/accept)"
                )
            cpu = f["cpu"]
            if f.get("sync_calls") and f["requests"]:
                calls = sum(v for v in f["sync_calls"].values() if v > 0)
                per = f"{f['requests'] / calls:.1f} requests each" if calls else "none"
                extra += f"; fdatasync+fsync calls {calls} ({per})"
            lines.append(
                f"  round {index} {kind:5}: {f['requests_per_s']}/s, "
                f"p50 {f.get('latency_p50_ms')} ms, p99 {f.get('latency_p99_ms')} ms, "
                f"non-2xx {f['non_2xx']}, server CPU {cpu['server_cpu_ms_per_request']} "
                f"ms/request ({cpu['server_cpus_busy']} CPUs), host {cpu['host_cpus_busy']} "
                f"CPUs busy{extra}"
            )
    if "a_profile" in r:
        p = r["a_profile"]
        lines.append(
            f"  py-spy, a separate Event run ({p['requests_per_s_under_py_spy']}/s under py-spy; "
            f"backlog {p['backlog']}):"
        )
        for name in ("accepting", "draining"):
            if name in p:
                q = p[name]
                threads = ", ".join(f"{t} {pct} %" for t, _, pct in q["threads"][:3])
                lines.append(f"   {name} ({q['samples']} samples): {threads}")
                lines += [f"    self {frame}: {pct} %" for frame, _, pct in q["self"]]
                lines += [f"    incl {frame}: {pct} %" for frame, _, pct in q["inclusive"]]
    b, c = r["b"], r["c"]
    lines += [
        "",
        f"(b) {b['events']} Event invokes of EchoE2E: accepted in {b['accept_s']} s "
        f"({b['accepted_per_s']}/s), all processed after {b['all_processed_s']} s "
        f"({b['processed_per_s']}/s), {b['environments']} environments; server CPU "
        f"{b['cpu']['server_cpu_ms_per_request']} ms/event",
        f"(c) {c['messages']} messages: sent in {c['send_s']} s, queue empty after "
        f"{c['queue_empty_s']} s ({c['queue_messages_per_s']}/s; server CPU "
        f"{c['queue_cpu']['server_cpu_ms_per_request']} ms/message); synchronous invokes one "
        f"by one: {c['sync_one_by_one_s']} s ({c['sync_messages_per_s']}/s; server CPU "
        f"{c['sync_cpu']['server_cpu_ms_per_request']} ms/invoke)",
    ]
    if "sam" in r:
        sam = r["sam"]
        lines.append(
            f"SAM: {sam['command']}; one Event invoke: {json.dumps(sam['event_raw'])}, boto3 "
            f"{json.dumps(sam['event_boto3'])}, ran within 10 s: {sam['event_ran_within_10_s']}"
        )
        for kind in ("sync", "event"):
            f = sam[f"wrk_{kind}"]
            ran = ""
            if kind == "event":
                ran = (
                    f"; of them run by the end: {f['ran_by_end']}, 5 s later: {f['ran_5_s_later']}"
                )
            lines.append(
                f"  SAM wrk {kind:5}: {f['requests_per_s']}/s ({f['requests']}), p50 "
                f"{f.get('latency_p50_ms')} ms, p99 {f.get('latency_p99_ms')} ms, non-2xx "
                f"{f['non_2xx']}, SAM CPU {f['cpu']['server_cpu_ms_per_request']} ms/request{ran}"
            )
    lines += ["", "| target | lrun | comparison | met? |", "|---|---|---|---|"]
    for t in targets(r):
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['figure']}: {t['target']} | {t['lrun']} | {t['comparison']} | {met} |")
    lines.append("")
    lines.append("phases: " + json.dumps(r["phases"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="alternating wrk rounds of (a)")
    add_quiet_arguments(parser)
    parser.add_argument("--skip-sam", action="store_true", help="do not start SAM CLI")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    return run_cli(parser.parse_args(argv), run, render)


if __name__ == "__main__":
    sys.exit(main())
