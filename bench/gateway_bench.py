#!/usr/bin/env python3
"""lrun's API Gateway beside `sam local start-api`: issue 11's HTTP figures, in one run.

Both serve the same code (../shared/peers/sam/app/src: `Web` answers "hello from <path>" as a
2.0/1.0 full response, `Sleep` sleeps 1 s; python3.11, 1769 MB = 1 vCPU): lrun on
bench/sam_app/gateway.yaml (an HTTP API with GET /hello and GET /sleep, a REST API with
GET /rest/hello on its Prod stage), SAM CLI 1.170.0 on a copy of the peer app whose template
also routes GET /sleep (HttpApi) to `Sleep`, with warm containers EAGER. For each, in turn:

1. warm latency: after a warm-up, N sequential GET /hello (and the REST route) on one keep-alive
   connection, request sent to response read: p50/p99 (nearest rank);
2. throughput: wrk, 1 thread, 8 connections, 10 s, GET /hello (after 8 parallel requests twice,
   so lrun has 8 warm environments, and a discarded 2 s run), with lrun's server process CPU per
   request over the run;
3. 10 parallel 1 s requests (GET /sleep, released together, each on its own connection): the
   wall time from release to the last answer, twice (the first may start environments; the
   second finds all ten warm on lrun).

Before each phase it waits (up to --max-wait s) for the 1-minute load to be at most --max-load
and records the load each phase ran under: on a shared machine the figures are only meaningful
as ratios against the peer measured in the same run.

    python3 bench/gateway_bench.py            # figures and the target table
    python3 bench/gateway_bench.py --json     # the same as one JSON object

Needs a Docker engine with lrun's python3.11 image, wrk (installed from Debian's packages when
missing and run as root), and SAM CLI as ../shared/peers/sam/setup.sh sets it up (run when
missing; PEERS_DIR, default /tmp/lrun-peers).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import (
    LRUN_APP,
    BenchError,
    LrunServer,
    Phases,
    Server,
    Servers,
    add_quiet_arguments,
    at_once,
    code_digest,
    ensure_sam,
    find_lrun,
    free_port,
    get_json,
    load1,
    machine,
    make_parser,
    nearest_rank,
    note,
    peers_dir,
    proc_cpu_s,
    run_cli,
    wrk_version,
)

MANIFEST = LRUN_APP / "gateway.yaml"
POST_SCRIPT = Path(__file__).resolve().parent / "post.lua"
HELLO, SLEEP, REST_HELLO = "/hello", "/sleep", "/rest/hello"
TARGETS = {"p50_ms": 1.5, "requests_per_s": 1500.0, "ten_sleeps_s": 1.5}
_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
SLEEP_EVENT = """      Events:
        HttpSleep:
          Type: HttpApi
          Properties:
            Path: /sleep
            Method: get
"""


class SamApi(Server):
    """`sam local start-api` on a copy of the peer app with GET /sleep routed to `Sleep`."""

    def __init__(self, sam: Path, app_dir: Path, port: int, log_path: Path) -> None:
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        argv = [
            str(sam), "local", "start-api", "--skip-pull-image",
            "--warm-containers", "EAGER", "-p", str(port),
        ]  # fmt: skip
        super().__init__(argv, app_dir, env, log_path)
        self.name = "sam local start-api (EAGER)"
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        status, body = get(self.url, HELLO)
        return status == 200 and body.startswith(b"hello from")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            note(f"{self.name}: stopping (SIGINT)")
            self.proc.send_signal(2)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class LrunApi(LrunServer):
    """`lrun serve` on gateway.yaml; ``api_url`` is the HTTP API's, ``rest_url`` the REST's."""

    api_url = ""
    rest_url = ""

    def ready(self) -> bool:
        if not super().ready():
            return False
        apis = {row["name"]: row["url"] for row in get_json(self.url, "/lrun/apis")}
        self.api_url, self.rest_url = apis["http"], apis["rest"]
        return True


def get(url: str, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    host, port, base = split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", base + path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def split(url: str) -> tuple[str, int, str]:
    """(host, port, base path) of a base URL such as http://127.0.0.1:9002/Prod."""
    rest = url.removeprefix("http://")
    hostport, _, base = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), ("/" + base) if base else ""


def sequential(url: str, path: str, n: int) -> list[float]:
    """``n`` GETs one after another on one keep-alive connection: each one's seconds."""
    host, port, base = split(url)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            conn.request("GET", base + path)
            response = conn.getresponse()
            body = response.read()
            times.append(time.perf_counter() - start)
            if response.status != 200 or not body.startswith(b"hello from"):
                raise BenchError(f"GET {base + path}: {response.status} {body[:200]!r}")
    finally:
        conn.close()
    return times


def latency(times: Sequence[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "n": len(ms),
        "p50_ms": round(nearest_rank(ms, 50), 3),
        "p99_ms": round(nearest_rank(ms, 99), 3),
        "min_ms": round(ms[0], 3),
    }


def parallel(url: str, path: str, n: int) -> dict[str, Any]:
    """``n`` GETs released together, each on its own connection: wall seconds and statuses."""
    host, port, base = split(url)
    statuses: list[int] = []
    lock = threading.Lock()

    def one(ready: Callable[[], object]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.connect()
            ready()
            conn.request("GET", base + path)
            response = conn.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = 0
        finally:
            conn.close()
        with lock:
            statuses.append(status)

    wall = at_once([one] * n)
    return {"wall_s": round(wall, 3), "ok": statuses.count(200), "statuses": sorted(statuses)}


def ensure_wrk() -> None:
    """wrk from Debian's packages, when it is missing (as root, as the bench machines are)."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise BenchError("wrk is missing: install Debian's package (apt-get install wrk)")
    note("installing wrk from Debian's packages")
    quiet = {"stdout": sys.stderr, "stderr": sys.stderr}  # stdout is the figures' (--json)
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, **quiet)


def wrk(
    url: str, path: str, seconds: int, connections: int = 8, script: Path | None = None
) -> dict[str, Any]:
    host, port, base = split(url)
    target = f"http://{host}:{port}{base}{path}"
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", target]
    if script is not None:
        argv[-1:-1] = ["-s", str(script)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed: {done.stdout}{done.stderr}")
    text = done.stdout
    out: dict[str, Any] = {"command": " ".join(argv)}
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(found.group(1)) if found else None
    found = re.search(r"(\d+) requests in", text)
    out["requests"] = int(found.group(1)) if found else 0
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(found.group(1)) if found else 0
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if found:
            out[f"latency_p{pct}_ms"] = round(float(found.group(1)) * _WRK_UNITS[found.group(2)], 3)
    return out


def sam_app(peers: Path, into: Path) -> Path:
    """A copy of the peer app whose template also routes GET /sleep to `Sleep`."""
    app = into / "app"
    shutil.copytree(peers / "app", app)
    template = app / "template.yaml"
    text = template.read_text()
    marker = (
        "      Handler: app.sleeper\n      Runtime: python3.11\n"
        "      MemorySize: 1769\n      Timeout: 30\n"
    )
    if marker not in text:
        raise BenchError(f"{template}: the Sleep function is not as expected")
    template.write_text(text.replace(marker, marker + SLEEP_EVENT))
    return app


def cpu_during(pid: int | None, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run``'s wrk figures, with the server's CPU milliseconds per request over it."""
    before = proc_cpu_s(pid) if pid else None
    result = run()
    if pid and before is not None:
        after = proc_cpu_s(pid)
        cpu = (after[0] - before[0]) + (after[1] - before[1])
        result["server_cpu_ms_per_request"] = round(cpu * 1000 / (result["requests"] or 1), 4)
    return result


def measure(
    name: str,
    phases: Phases,
    api: str,
    rest: str,
    n: int,
    server_pid: int | None,
    invoke_url: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with phases.run(f"{name}: warm latency"):
        sequential(api, HELLO, 20)
        result["warm"] = latency(sequential(api, HELLO, n))
        sequential(rest, REST_HELLO, 20)
        result["warm_rest"] = latency(sequential(rest, REST_HELLO, n))
    with phases.run(f"{name}: wrk"):
        # Eight warm environments first (lrun starts one per concurrent request; SAM has one),
        # then a discarded 2 s run.
        for _ in range(2):
            warmed = parallel(api, HELLO, 8)
            if warmed["ok"] != 8:
                raise BenchError(f"{name}: warm-up requests answered {warmed['statuses']}")
        wrk(api, HELLO, 2)
        result["wrk"] = cpu_during(server_pid, lambda: wrk(api, HELLO, 10))
        if invoke_url is not None:
            # The same function through lrun's Invoke API, same server, same run: what the
            # API Gateway layer adds is the difference.
            path = "/2015-03-31/functions/Web/invocations"
            result["wrk_invoke_api"] = cpu_during(
                server_pid, lambda: wrk(invoke_url, path, 10, script=POST_SCRIPT)
            )
    with phases.run(f"{name}: 10 parallel 1 s requests"):
        result["ten_sleeps_first"] = parallel(api, SLEEP, 10)
        result["ten_sleeps_warm"] = parallel(api, SLEEP, 10)
    return result


def run(args: Any) -> dict[str, Any]:
    ensure_wrk()
    peers = peers_dir()
    sam = ensure_sam(peers)
    lrun = find_lrun(args.lrun)
    phases = Phases(args.max_load, args.max_wait)
    servers = Servers()
    out: dict[str, Any] = {
        "machine": machine(),
        "wrk": wrk_version(),
        "lrun_code": code_digest(),
        "load1_start": load1(),
        "n": args.n,
    }
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        try:
            lrun_server = LrunApi(lrun, MANIFEST, work / "state", work / "lrun.log")
            servers.start(lrun_server)
            lrun_server.wait_ready()
            out["lrun_urls"] = {"http": lrun_server.api_url, "rest": lrun_server.rest_url}
            out["lrun"] = measure(
                "lrun",
                phases,
                lrun_server.api_url,
                lrun_server.rest_url,
                args.n,
                lrun_server.pid,
                lrun_server.url,
            )
            servers.stop(lrun_server)
            sam_server = SamApi(sam, sam_app(peers, work), free_port(), work / "sam.log")
            servers.start(sam_server)
            sam_server.wait_ready(300)
            out["sam"] = measure("sam", phases, sam_server.url, sam_server.url, args.sam_n, None)
        finally:
            servers.stop_all()
    out["phases"] = phases.records
    out["load1_end"] = load1()
    return out


def render(r: dict[str, Any]) -> str:
    lrun, sam = r["lrun"], r["sam"]
    rows = [
        ("warm p50, HTTP API GET /hello (ms)", lrun["warm"]["p50_ms"], sam["warm"]["p50_ms"]),
        ("warm p99 (ms)", lrun["warm"]["p99_ms"], sam["warm"]["p99_ms"]),
        ("warm p50, REST API (ms)", lrun["warm_rest"]["p50_ms"], sam["warm_rest"]["p50_ms"]),
        ("warm p99, REST API (ms)", lrun["warm_rest"]["p99_ms"], sam["warm_rest"]["p99_ms"]),
        ("wrk 8 connections (req/s)", lrun["wrk"]["requests_per_s"], sam["wrk"]["requests_per_s"]),
        ("wrk p50 / p99 (ms)",
         f"{lrun['wrk'].get('latency_p50_ms')} / {lrun['wrk'].get('latency_p99_ms')}",
         f"{sam['wrk'].get('latency_p50_ms')} / {sam['wrk'].get('latency_p99_ms')}"),
        ("10 parallel 1 s, first (s)", lrun["ten_sleeps_first"]["wall_s"],
         sam["ten_sleeps_first"]["wall_s"]),
        ("10 parallel 1 s, again (s)", lrun["ten_sleeps_warm"]["wall_s"],
         sam["ten_sleeps_warm"]["wall_s"]),
    ]  # fmt: skip
    lines = [f"{'figure':40} {'lrun':>18} {'sam start-api':>18}"]
    lines += [f"{name:40} {a!s:>18} {b!s:>18}" for name, a, b in rows]
    invoke = lrun.get("wrk_invoke_api", {})
    lines.append(
        f"lrun server CPU per request under wrk: {lrun['wrk'].get('server_cpu_ms_per_request')} ms"
        f" through the HTTP API, {invoke.get('server_cpu_ms_per_request')} ms through the Invoke"
        f" API ({invoke.get('requests_per_s')} req/s, p50 {invoke.get('latency_p50_ms')} ms)"
    )
    met = {
        "warm p50 <= 1.5 ms": lrun["warm"]["p50_ms"] <= TARGETS["p50_ms"],
        ">= 1,500 req/s": (lrun["wrk"]["requests_per_s"] or 0) >= TARGETS["requests_per_s"],
        "10 x 1 s in <= 1.5 s (warm)": lrun["ten_sleeps_warm"]["wall_s"] <= TARGETS["ten_sleeps_s"],
    }
    lines += [f"target {k}: {'met' if v else 'NOT met'}" for k, v in met.items()]
    loads = ", ".join(f"{k}: {v['load1_start']}" for k, v in r["phases"].items())
    lines.append(f"1-min load at each phase's start: {loads}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = make_parser(__doc__)
    ap.add_argument("--n", type=int, default=1000, help="sequential requests for lrun's latency")
    ap.add_argument("--sam-n", type=int, default=300, help="the same for SAM (slower)")
    add_quiet_arguments(ap)
    return run_cli(ap.parse_args(argv), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
