#!/usr/bin/env python3
"""Mixed load over time (issue 8): does lrun's memory and fd count stay flat, and is nothing left?

Functions (python3.11): `Echo` (returns {"echo": event}, 1769 MB), `Hog` (writes 512 MB into
memory at 128 MB: the cgroup OOM killer ends it, every time) and `EchoAsync` (Echo's code, its
successes recorded in a JSON-lines file destination). For --seconds (150) in one run:

- one client sends synchronous invokes on a keep-alive connection, every 10th one to `Hog`
  (an OOM kill, a replaced environment), the rest to `Echo`;
- a second client sends `Event` invokes of `EchoAsync`, --event-rate (20) a second.

Every 5 s it samples the server's RSS (VmRSS) and open file descriptors (/proc/PID/fd) and the
containers it runs. At the end: every accepted event must be in the success file (waited for,
up to 120 s), the server is stopped (SIGTERM) and no container of its must be left.

The peer, in the same run: SAM CLI's `sam local start-lambda` (warm containers EAGER) under the
synchronous part of the same load (SAM has no durable Event queue), with a `Hog` of its own at
128 MB in a copy of ../shared/peers/sam/app: its process RSS, fds and containers left.

    python3.11 bench/soak_bench.py                 # figures as a table
    python3.11 bench/soak_bench.py --json          # one JSON object
    python3.11 bench/soak_bench.py --skip-sam      # lrun only

Needs a Docker engine with lrun's python3.11 image, and SAM CLI as set up by
../shared/peers/sam/setup.sh (PEERS_DIR, default /tmp/lrun-peers).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    CODE_DIR,
    INVOKE_PATH,
    BenchError,
    LrunServer,
    Phases,
    SamServer,
    Servers,
    add_quiet_arguments,
    code_digest,
    command_output,
    ensure_sam,
    find_lrun,
    free_port,
    host_port,
    machine,
    make_parser,
    peers_dir,
    run_cli,
)

HOG = '''

def hog(event, context):
    """Writes 512 MB into memory: beyond any small function's limit."""
    block = b"x" * (512 << 20)
    return len(block)
'''
OOM_EVERY = 10
SAMPLE_EVERY_S = 5.0

MANIFEST = """\
functions:
  Echo: {runtime: python3.11, code: ./src, handler: app.handler, memory: 1769, timeout: 30}
  Hog: {runtime: python3.11, code: ./src, handler: app.hog, memory: 128, timeout: 30}
  EchoAsync:
    runtime: python3.11
    code: ./src
    handler: app.handler
    memory: 1769
    timeout: 30
    async: {maximum_retry_attempts: 0, on_success: {file: ./out/ok.jsonl}}
"""

SAM_HOG = """\
  Hog:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.hog
      Runtime: python3.11
      MemorySize: 128
      Timeout: 30
"""


def process_sample(pid: int) -> dict[str, int]:
    """RSS (KiB) and open file descriptors of a process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


def containers_of(pid: int) -> list[str]:
    """Containers, running or not, whose lrun owner label names process ``pid``."""
    out = command_output(
        ["docker", "ps", "-a", "--filter", "label=lrun.managed=1", "--format",
         '{{.ID}} {{.Label "lrun.owner"}}']
    )  # fmt: skip
    return [
        line.split()[0]
        for line in out.splitlines()
        if len(line.split()) == 2 and str(pid) in line.split()[1].split("-")
    ]


class SyncLoad(threading.Thread):
    """Synchronous invokes on one keep-alive connection: every OOM_EVERY-th to ``hog``."""

    def __init__(self, url: str, echo: str, hog: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.echo, self.hog, self.stop_flag = url, echo, hog, stop
        self.counts: dict[str, int] = {"ok": 0, "oom": 0, "other": 0, "errors": 0}

    def run(self) -> None:
        host, port = host_port(self.url)
        conn = http.client.HTTPConnection(host, port, timeout=120)
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            name = self.hog if n % OOM_EVERY == 0 else self.echo
            try:
                conn.request(
                    "POST",
                    INVOKE_PATH.format(name),
                    body=json.dumps({"n": n}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                self.counts["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
                time.sleep(0.1)
                continue
            failed = resp.getheader("X-Amz-Function-Error")
            if resp.status == 200 and not failed:
                self.counts["ok"] += 1
            elif name == self.hog and (failed or b"OutOfMemory" in body or b"exit" in body):
                self.counts["oom"] += 1
            else:
                self.counts["other"] += 1
        conn.close()


class EventLoad(threading.Thread):
    """``Event`` invokes on one keep-alive connection, ``rate`` a second; counts the 202s."""

    def __init__(self, url: str, function: str, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.function, self.rate, self.stop_flag = url, function, rate, stop
        self.accepted = 0
        self.refused = 0

    def run(self) -> None:
        host, port = host_port(self.url)
        conn = http.client.HTTPConnection(host, port, timeout=120)
        start, sent = time.monotonic(), 0
        while not self.stop_flag.is_set():
            ahead = start + sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            sent += 1
            try:
                conn.request(
                    "POST",
                    INVOKE_PATH.format(self.function),
                    body=json.dumps({"i": self.accepted}).encode(),
                    headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
                )
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                self.refused += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=120)
                continue
            if resp.status == 202:
                self.accepted += 1
            else:
                self.refused += 1
                time.sleep(0.05)  # a throttle: do not spin
        conn.close()


def soak(
    seconds: float, pid: Callable[[], int], loads: list[threading.Thread], count: Callable[[], int]
) -> list[dict[str, Any]]:
    """Runs ``loads`` for ``seconds``, sampling the server every SAMPLE_EVERY_S."""
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    for load in loads:
        load.start()
    while (elapsed := time.monotonic() - start) < seconds:
        samples.append({"t_s": round(elapsed, 1), **process_sample(pid()), "containers": count()})
        time.sleep(min(SAMPLE_EVERY_S, max(0.0, seconds - elapsed)))
    samples.append(
        {"t_s": round(time.monotonic() - start, 1), **process_sample(pid()), "containers": count()}
    )
    return samples


def growth(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """First sample after warm-up (the second), the largest, the last: flat means last ~ first."""
    values = [s[key] for s in samples]
    settled = values[1] if len(values) > 1 else values[0]
    return {
        "first": settled,
        "max": max(values),
        "last": values[-1],
        "growth": values[-1] - settled,
    }


def line_count(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def run_lrun(args: argparse.Namespace, work: Path, servers: Servers) -> dict[str, Any]:
    project = work / "lrun"
    shutil.copytree(CODE_DIR, project / "src")
    with open(project / "src" / "app.py", "a") as f:
        f.write(HOG)
    (project / "lrun.yaml").write_text(MANIFEST)
    server = LrunServer(
        find_lrun(args.lrun), project / "lrun.yaml", work / "state", work / "lrun.log"
    )
    servers.start(server)
    server.wait_ready()
    stop = threading.Event()
    sync = SyncLoad(server.url, "Echo", "Hog", stop)
    events = EventLoad(server.url, "EchoAsync", args.event_rate, stop)
    samples = soak(
        args.seconds,
        lambda: server.pid,
        [sync, events],
        lambda: len(containers_of(server.pid)),
    )
    stop.set()
    sync.join(120)
    events.join(120)
    ok_file = project / "out" / "ok.jsonl"
    deadline = time.monotonic() + 120
    while line_count(ok_file) < events.accepted and time.monotonic() < deadline:
        time.sleep(0.5)
    delivered = line_count(ok_file)
    pid = server.pid
    servers.stop(server)
    time.sleep(1)
    left = containers_of(pid)
    return {
        "sync": sync.counts,
        "events_accepted": events.accepted,
        "events_refused": events.refused,
        "events_delivered": delivered,
        "rss_kib": growth(samples, "rss_kib"),
        "fds": growth(samples, "fds"),
        "containers_left": len(left),
        "samples": samples,
    }


def run_sam(args: argparse.Namespace, work: Path, servers: Servers) -> dict[str, Any]:
    sam = ensure_sam(peers_dir())
    app = work / "sam-app"
    shutil.copytree(peers_dir() / "app", app)
    with open(app / "src" / "app.py", "a") as f:
        f.write(HOG)
    template = (app / "template.yaml").read_text()
    (app / "template.yaml").write_text(template.rstrip() + "\n" + SAM_HOG)
    server = SamServer(sam, app, free_port(), "EAGER", work / "sam.log", probe="Echo")
    servers.start(server)
    server.wait_ready(300)
    stop = threading.Event()
    sync = SyncLoad(server.url, "Echo", "Hog", stop)
    samples = soak(args.seconds, lambda: server.pid, [sync], lambda: len(server.containers()))
    stop.set()
    sync.join(180)
    servers.stop(server)
    left = [
        c
        for c in server.container_ids()
        if command_output(["docker", "ps", "-aq", "--filter", f"id={c}"])
    ]
    return {
        "sync": sync.counts,
        "rss_kib": growth(samples, "rss_kib"),
        "fds": growth(samples, "fds"),
        "containers_left": len(left),
        "samples": samples,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    phases = Phases(args.max_load, args.max_wait)
    result: dict[str, Any] = {"machine": machine(), "code": code_digest(), "seconds": args.seconds}
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="lrun-soak-") as tmp:
        work = Path(tmp)
        try:
            with phases.run("lrun"):
                result["lrun"] = run_lrun(args, work, servers)
            if not args.skip_sam:
                with phases.run("sam"):
                    result["sam"] = run_sam(args, work, servers)
        except BenchError:
            raise
        finally:
            servers.stop_all()
    result["phases"] = phases.records
    return result


def render(result: dict[str, Any]) -> str:
    rows = [f"mixed load for {result['seconds']:g} s (every {OOM_EVERY}th sync call an OOM kill)"]
    rows.append(f"{'':24}{'lrun':>24}{'SAM CLI':>24}")

    def cell(name: str, fn: Callable[[dict[str, Any]], str]) -> str:
        side = result.get(name)
        return fn(side) if side else "-"

    def line(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        rows.append(f"{label:24}{cell('lrun', fn):>24}{cell('sam', fn):>24}")

    line(
        "sync ok / oom / other",
        lambda s: f"{s['sync']['ok']}/{s['sync']['oom']}/{s['sync']['other']}",
    )
    line(
        "RSS MiB first->last",
        lambda s: f"{s['rss_kib']['first'] / 1024:.1f}->{s['rss_kib']['last'] / 1024:.1f}",
    )
    line("RSS MiB max", lambda s: f"{s['rss_kib']['max'] / 1024:.1f}")
    line(
        "fds first->last (max)",
        lambda s: f"{s['fds']['first']}->{s['fds']['last']} ({s['fds']['max']})",
    )
    line("containers left", lambda s: str(s["containers_left"]))
    lrun = result["lrun"]
    rows.append(
        f"lrun events: {lrun['events_delivered']}/{lrun['events_accepted']} delivered "
        f"({lrun['events_refused']} refused)"
    )
    return "\n".join(rows)


def main() -> int:
    parser = make_parser(__doc__)
    add_quiet_arguments(parser)
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the load runs")
    parser.add_argument("--event-rate", type=float, default=20.0, help="Event invokes a second")
    parser.add_argument("--skip-sam", action="store_true", help="leave SAM CLI out")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        return run_cli(args, run, render)
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
