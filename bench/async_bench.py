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
import contextlib
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = REPO.parent / "shared" / "peers"
CODE_DIR = PEERS / "sam" / "app" / "src"
SETUP = PEERS / "sam" / "setup.sh"
DEFAULT_PEERS_DIR = "/tmp/lrun-peers"

INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
EVENT = {"x": 1}
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


class BenchError(Exception):
    pass


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# The machine and its load


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def _out(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (proc.stdout or proc.stderr).strip()


def machine() -> dict[str, Any]:
    fmt = "{{.ServerVersion}}|{{.Driver}}|{{.CgroupVersion}}|{{.CgroupDriver}}"
    fields = (_out(["docker", "info", "--format", fmt]).split("|") + [""] * 4)[:4]
    with open("/proc/meminfo") as f:
        total_kib = int(f.readline().split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "docker": f"{fields[0]} ({fields[1]}, cgroup v{fields[2]} {fields[3]})",
        "python": platform.python_version(),
        "sqlite": _sqlite_version(),
        "wrk": _out(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else None,
    }


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


# Other people's benchmarks on this shared machine: a phase waits while one runs.
BENCHMARK_PROCESSES = re.compile(
    r"(^|/)(wrk|py-spy)( |$)|serve_bench\.py|invoke_bench\.py|cold_invoke\.py|async_bench\.py"
    r"|sam local start-lambda"
)
NOT_RUNNING_IT = re.compile(r"\b(mypy|ruff|pytest|grep|less|vim?|nano)\b")  # only looking


def others_benchmarking() -> list[str]:
    """Command lines of benchmark processes this run did not start (not its own descendants)."""
    mine = {os.getpid()}
    found: list[tuple[int, int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found.append((int(entry.name), ppid, cmdline))
    parents = {pid: ppid for pid, ppid, _ in found}
    for pid, _, _ in found:  # descendants of this process are its own
        ancestor, hops = pid, 0
        while ancestor in parents and ancestor not in mine and hops < 50:
            ancestor, hops = parents[ancestor], hops + 1
        if ancestor in mine:
            mine.add(pid)
    return [
        cmdline[:120]
        for pid, _, cmdline in found
        if pid not in mine
        and BENCHMARK_PROCESSES.search(cmdline)
        and not NOT_RUNNING_IT.search(cmdline)
    ]


@dataclass
class Phases:
    """Waits for a quiet machine before each phase (1-minute load at most ``max_load``, no one
    else's benchmark running) and records the load each one ran under."""

    max_load: float
    max_wait_s: float
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @contextlib.contextmanager
    def run(self, name: str) -> Iterator[None]:
        waited = 0.0
        while waited < self.max_wait_s:
            others = others_benchmarking()
            if load1() <= self.max_load and not others:
                break
            note(f"{name}: 1-min load {load1()} (max {self.max_load}); others: {others}; 30 s")
            time.sleep(30)
            waited += 30
        others = others_benchmarking()
        record: dict[str, Any] = {
            "load1_start": load1(),
            "waited_s": waited,
            "quiet_at_start": load1() <= self.max_load and not others,
            "other_benchmarks_start": others,
            "other_containers_start": len(_out(["docker", "ps", "-q"]).split()),
        }
        note(f"{name}: starting (1-min load {record['load1_start']})")
        start = time.perf_counter()
        try:
            yield
        finally:
            record["other_benchmarks_end"] = others_benchmarking()
            record["load1_end"] = load1()
            record["elapsed_s"] = round(time.perf_counter() - start, 1)
            self.records[name] = record


# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_s() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuWindow:
    """The lrun server's CPU seconds (and the host's) over a window."""

    pid: int
    wall: float = 0.0
    server: float = 0.0
    host: float = 0.0

    def __enter__(self) -> CpuWindow:
        self.wall, self.server, self.host = time.perf_counter(), proc_cpu_s(self.pid), host_busy_s()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def result(self, requests: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        server = proc_cpu_s(self.pid) - self.server
        host = host_busy_s() - self.host
        return {
            "wall_s": round(wall, 2),
            "server_cpu_s": round(server, 2),
            "server_cpus_busy": round(server / wall, 2) if wall else None,
            "host_cpus_busy": round(host / wall, 2) if wall else None,
            "server_cpu_ms_per_request": round(1000 * server / requests, 3) if requests else None,
            "host_cpu_ms_per_request": round(1000 * host / requests, 3) if requests else None,
        }


class Lrun:
    """`lrun serve` on a manifest, with its own port and state directory."""

    def __init__(self, lrun: list[str], manifest: Path, state_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LRUN_STATE_DIR": str(state_dir)}
        env.pop("LRUN_TRACE", None)
        self.argv = [*lrun, "serve", "-f", str(manifest), "--port", str(self.port)]
        self.log_path = log_path
        note(f"lrun: {' '.join(self.argv)}")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=manifest.parent, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"lrun serve exited {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, BenchError, http.client.HTTPException):
                if get_json(self.url, "/lrun/health").get("status") == "ok":
                    return
            time.sleep(0.2)
        raise BenchError(f"lrun serve not ready after {timeout_s:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM: lrun lets in-flight invocations finish and removes its containers."""
        if self.proc.poll() is not None:
            return
        note("lrun: stopping (SIGTERM)")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(180)
        except subprocess.TimeoutExpired:
            note("lrun: still running after 180 s; SIGKILL")
            self.proc.kill()
            self.proc.wait()


def find_lrun(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "lrun"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "orchestrator"]


def code_digest() -> str:
    """A digest of lrun's source as it was measured (the tree may change between runs)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def write_manifest(folder: Path) -> Path:
    common = f"runtime: python3.11, handler: app.handler, code: {CODE_DIR}, memory: 1769"
    text = f"""\
# Written by bench/async_bench.py: SAM's Echo three times (see the module's docstring).
queues:
  jobs: {{visibility_timeout: 60}}
functions:
  Echo: {{{common}, timeout: 30}}
  EchoE2E:
    {{{common}, timeout: 30, async: {{on_success: {{file: ./out/e2e.jsonl}}}}}}
  Consumer:
    {{{common}, timeout: 30,
     events: [{{queue: jobs, batch_size: {QUEUE_BATCH},
               maximum_concurrency: {QUEUE_CONCURRENCY}}}]}}
"""
    path = folder / "lrun.yaml"
    path.write_text(text)
    return path


# HTTP


def host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


def call(
    url: str, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(
            method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(url: str, path: str) -> Any:
    status, _, data = call(url, "GET", path)
    if status != 200:
        raise BenchError(f"GET {path}: {status} {data[:200]!r}")
    return json.loads(data)


def post_json(url: str, path: str, body: object) -> Any:
    status, _, data = call(url, "POST", path, body)
    if status not in (200, 201):
        raise BenchError(f"POST {path}: {status} {data[:200]!r}")
    return json.loads(data) if data else None


def concurrent_sync(url: str, function: str, n: int) -> None:
    """``n`` synchronous invokes at once (warms ``n`` environments)."""
    errors: list[str] = []

    def one() -> None:
        status, _, data = call(url, "POST", INVOKE_PATH.format(function), EVENT)
        if status != 200:
            errors.append(f"{status} {data[:200]!r}")

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"warm-up invokes of {function} failed: {errors[:3]}")


def send_events(url: str, function: str, count: int, connections: int) -> tuple[set[str], float]:
    """``count`` Event invokes on ``connections`` keep-alive connections; (request ids, seconds
    from the first request to the last 202)."""
    host, port = host_port(url)
    path = INVOKE_PATH.format(function)
    ids: set[str] = set()
    problems: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(connections + 1)

    def sender(share: range) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        mine: list[str] = []
        barrier.wait()
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

    threads = [
        threading.Thread(target=sender, args=(range(k, count, connections),))
        for k in range(connections)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if problems or len(ids) != count:
        raise BenchError(f"Event invokes of {function}: {len(ids)} accepted, {problems[:3]}")
    return ids, elapsed


def sequential_sync(url: str, function: str, bodies: Sequence[str]) -> float:
    """Each body as one synchronous invoke, one after another on one keep-alive connection."""
    host, port = host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    path = INVOKE_PATH.format(function)
    start = time.perf_counter()
    try:
        for body in bodies:
            conn.request(
                "POST", path, body=body.encode(), headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise BenchError(f"invoke of {function}: {resp.status} {data[:200]!r}")
    finally:
        conn.close()
    return time.perf_counter() - start


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


# wrk


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(url: str, function: str, script: Path, seconds: int) -> dict[str, Any]:
    target = url + INVOKE_PATH.format(function)
    argv = [
        "wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(script), target,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {text}")
    out: dict[str, Any] = {"command": " ".join(argv)}
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(found.group(1)) if found else None
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    out["requests"] = int(found.group(1)) if found else 0
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(found.group(1)) if found else 0
    found = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = found.group(1).strip() if found else None
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if found:
            out[f"latency_p{pct}_ms"] = round(float(found.group(1)) * _WRK_UNITS[found.group(2)], 3)
    return out


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return str(beside)
    return shutil.which("py-spy")


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
    ordered = sorted(times)
    return {
        "n": n,
        "p50_ms": round(ordered[n // 2], 3),
        "p90_ms": round(ordered[int(n * 0.9)], 3),
        "max_ms": round(ordered[-1], 3),
    }


def py_spy_record(py_spy: str, pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    argv = [
        py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
        "--threads", "--format", "raw", "--output", str(out), "--nonblocking",
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """py-spy's raw output with --threads (``thread;frame;... count``): samples per thread, and
    by innermost Python frame (self) and by lrun's own frames anywhere on the stack
    (inclusive)."""
    threads: Counter[str] = Counter()
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        threads[re.sub(r"\s*\(?0x[0-9a-f]+\)?", "", thread).strip() or thread] += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
        frames = [re.sub(r"\((?:.*/)?([^/]+)\)$", r"(\1)", f) for f in frames]
        if frames:
            self_counts[frames[-1]] += count
        for frame in set(frames):
            if frame.endswith(OWN_FILES):
                inclusive[frame] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, int, float]]:
        return [(f, c, round(100 * c / total, 1)) for f, c in counter.most_common(n)]

    return {
        "samples": total,
        "threads": share(threads, 8),
        "self": share(self_counts, top),
        "inclusive": share(inclusive, top),
    }


# The peer


def sam_event_answer(peers_dir: Path, event_lua: Path, sync_lua: Path) -> dict[str, Any]:
    """Start SAM CLI's start-lambda (warm containers EAGER) on the app, send one Event invoke
    (raw HTTP and through boto3) and record what it answers and whether the function ran
    (its log's REPORT lines); then the same wrk runs as lrun's, RequestResponse first, and
    how many of the accepted events had run 5 s after the Event run."""
    sam = peers_dir / "sam-venv" / "bin" / "sam"
    app = peers_dir / "app"
    if not (sam.is_file() and (app / "template.yaml").is_file()):
        note(f"setting up SAM CLI in {peers_dir} with {SETUP}")
        subprocess.run(
            ["bash", str(SETUP)], env={**os.environ, "PEERS_DIR": str(peers_dir)}, check=True
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(sam), "local", "start-lambda", "--skip-pull-image",
        "--warm-containers", "EAGER", "-p", str(port),
    ]  # fmt: skip
    note(f"sam: {' '.join(argv)}")
    log_path = Path(tempfile.mkstemp(prefix="sam-start-lambda-", suffix=".log")[1])
    result: dict[str, Any] = {
        "command": "SAM_CLI_TELEMETRY=0 " + " ".join(argv[:-2] + ["-p", "PORT"])
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=app, env={**os.environ, "SAM_CLI_TELEMETRY": "0"}, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise BenchError(f"sam exited {proc.returncode}: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _, data = call(url, "POST", INVOKE_PATH.format("Echo"), EVENT)
                if status == 200:
                    result["sync_answer"] = json.loads(data)
                    break
            if time.monotonic() > deadline:
                raise BenchError("sam start-lambda not ready within 300 s")
            time.sleep(1)
        status, headers, data = call(
            url, "POST", INVOKE_PATH.format("Echo"), EVENT, {"X-Amz-Invocation-Type": "Event"}
        )
        result["event_raw"] = {
            "status": status,
            "error_type": headers.get("x-amzn-errortype"),
            "body": data.decode(errors="replace")[:500],
        }
        result["event_boto3"] = boto3_event(url)
        reports = _reports(log_path)
        result["event_ran_within_10_s"] = _wait_reports(log_path, reports, 10.0) > reports
        with CpuWindow(proc.pid) as cpu:
            sync = run_wrk(url, "Echo", sync_lua, WRK_SECONDS)
            sync["cpu"] = cpu.result(sync["requests"])
        result["wrk_sync"] = sync
        before = _reports(log_path)
        with CpuWindow(proc.pid) as cpu:
            event = run_wrk(url, "Echo", event_lua, WRK_SECONDS)
            event["cpu"] = cpu.result(event["requests"])
        event["ran_by_end"] = _reports(log_path) - before
        time.sleep(5)
        event["ran_5_s_later"] = _reports(log_path) - before
        result["wrk_event"] = event
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        leftover = sorted(
            set(
                re.findall(
                    r"SAM_CONTAINER_ID: ([0-9a-f]{64})", log_path.read_text(errors="replace")
                )
            )
        )
        if leftover:
            _out(["docker", "rm", "-f", *leftover])
        log_path.unlink(missing_ok=True)
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
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

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
        "machine": machine(),
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
    server = Lrun(lrun, manifest, work / "state", work / "serve.log")
    try:
        server.wait_ready()
        result["fsync_in_state_dir"] = fsync_latency_ms(work / "state")
        concurrent_sync(server.url, "Echo", WRK_CONNECTIONS)

        # (a) Event accepts vs synchronous invokes, alternating; each Event run drained after.
        rounds: list[dict[str, Any]] = []
        result["a_rounds"] = rounds
        run_wrk(server.url, "Echo", sync_lua, 2)  # warm-up, discarded
        for index in range(args.rounds):
            entry: dict[str, Any] = {}
            order = ("sync", "event") if index % 2 == 0 else ("event", "sync")
            for kind in order:
                with phases.run(f"a{index + 1}-{kind}"):
                    syncs = SyscallCount(server.pid)
                    with CpuWindow(server.pid) as cpu:
                        figures = run_wrk(
                            server.url, "Echo", event_lua if kind == "event" else sync_lua,
                            WRK_SECONDS,
                        )  # fmt: skip
                        window = cpu.result(figures["requests"])
                    figures["cpu"] = window
                    figures["sync_calls"] = syncs.stop()
                    if kind == "event":
                        backlog = event_depth(server.url, "Echo")
                        figures["environments_after_wrk"] = len(
                            [e for e in get_json(server.url, "/lrun/environments")
                             if e["function"] == "Echo"]
                        )  # fmt: skip
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
                spy = py_spy_record(py_spy, server.pid, WRK_SECONDS, accepting)
                time.sleep(0.5)
                figures = run_wrk(server.url, "Echo", event_lua, WRK_SECONDS)
                spy.wait(60)
                backlog = event_depth(server.url, "Echo")
                spy = py_spy_record(py_spy, server.pid, 5, draining)
                spy.wait(60)
                wait_drained(server.url, "Echo")
                profile: dict[str, Any] = {
                    "requests_per_s_under_py_spy": figures["requests_per_s"],
                    "backlog": backlog,
                }
                for name, path in (("accepting", accepting), ("draining", draining)):
                    if path.exists():
                        profile[name] = summarize_profile(path)
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
        envs = [e for e in get_json(server.url, "/lrun/environments") if e["function"] == "EchoE2E"]
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
        server.stop()
        if not args.skip_sam:
            with phases.run("sam"):
                peers_dir = Path(os.environ.get("PEERS_DIR", DEFAULT_PEERS_DIR))
                result["sam"] = sam_event_answer(peers_dir, event_lua, sync_lua)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = load1()
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=2, help="alternating wrk rounds of (a)")
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--max-wait", type=float, default=600.0, help="seconds, per phase")
    parser.add_argument("--lrun", help="the lrun command (default: beside the interpreter)")
    parser.add_argument("--skip-sam", action="store_true", help="do not start SAM CLI")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy run")
    args = parser.parse_args(argv)
    # SIGTERM ends the run through its clean-up (servers stopped, temporary files removed).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        result = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result["targets"] = targets(result)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
