#!/usr/bin/env python3
"""A SAM template served by lrun beside `sam local start-api`, on the same template in one run.

Both read ../shared/peers/sam/app/template.yaml as it is (a copy of the app each: `Web` answers
GET /hello on an HttpApi, python3.11, 1769 MB). For each server, started from a cold state (no
container of its own running; images already built):

1. time to first response: from the moment the command is started to the first 200 answer to
   GET /hello, polled every 50 ms (lrun: `lrun serve -t template.yaml`, which reads the template,
   starts the API on a port it picks, and starts an environment on the first request; SAM:
   `sam local start-api`, in its default mode (a container per request) and with
   `--warm-containers EAGER`, which starts the containers at boot);
2. warm latency: after a warm-up, N sequential GET /hello on one keep-alive connection, request
   sent to response read: p50/p99 (nearest rank), for lrun and SAM EAGER (SAM's default mode
   starts a container per request: its "warm" figure would be a cold start each time).

Before each phase it waits (up to --max-wait s) for the 1-minute load to be at most --max-load
and records the load each phase ran under: on a shared machine the figures are meaningful only
as ratios against the peer measured in the same run.

    python3 bench/template_bench.py            # figures
    python3 bench/template_bench.py --json     # the same as one JSON object

Needs a Docker engine with lrun's python3.11 image, and SAM CLI as ../shared/peers/sam/setup.sh
sets it up (run when missing; PEERS_DIR, default /tmp/lrun-peers).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    PEERS,
    BenchError,
    Phases,
    add_quiet_arguments,
    code_digest,
    ensure_sam,
    find_lrun,
    free_port,
    get_json,
    machine,
    make_parser,
    nearest_rank,
    note,
    peers_dir,
    run_cli,
)

APP = PEERS / "sam" / "app"
HELLO = "/hello"
POLL_S = 0.05


def get(base: str, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    rest = base.removeprefix("http://")
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", ("/" + prefix if prefix else "") + path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def lrun_api_url(control: str) -> str | None:
    """The HttpApi's base URL once `lrun serve` answers on its Lambda API port."""
    try:
        rows = get_json(control, "/lrun/apis")
    except (OSError, BenchError, http.client.HTTPException, ValueError):
        return None
    urls = [r["url"] for r in rows if r.get("name") == "ServerlessHttpApi"]
    return str(urls[0]) if urls else None


def first_response(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path, base_of: Any, timeout_s: float
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``argv``; seconds until GET /hello answers 200 (``base_of()``: the base URL, None
    until known)."""
    note(" ".join(argv))
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    while time.perf_counter() - start < timeout_s:
        if proc.poll() is not None:
            raise BenchError(f"{argv[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        base = base_of()
        if base is not None:
            try:
                status, body = get(base, HELLO, timeout=timeout_s)
            except (OSError, http.client.HTTPException):
                status, body = 0, b""
            if status == 200 and body.startswith(b"hello from"):
                return proc, time.perf_counter() - start
        time.sleep(POLL_S)
    stop(proc)
    raise BenchError(f"no answer to GET {HELLO} within {timeout_s:g} s; see {log}")


def sequential(base: str, n: int) -> list[float]:
    rest = base.removeprefix("http://")
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    times = []
    try:
        for _ in range(n):
            begin = time.perf_counter()
            conn.request("GET", ("/" + prefix if prefix else "") + HELLO)
            response = conn.getresponse()
            body = response.read()
            times.append(time.perf_counter() - begin)
            if response.status != 200 or not body.startswith(b"hello from"):
                raise BenchError(f"GET {HELLO}: {response.status} {body[:200]!r}")
    finally:
        conn.close()
    return times


def latency(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "n": len(ms),
        "p50_ms": round(nearest_rank(ms, 50), 3),
        "p99_ms": round(nearest_rank(ms, 99), 3),
    }


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run(args: Any) -> dict[str, Any]:
    peers = peers_dir()
    sam = ensure_sam(peers)
    lrun = find_lrun(args.lrun)
    phases = Phases(args.max_load, args.max_wait)
    out: dict[str, Any] = {
        "machine": machine(),
        "lrun_code": code_digest(),
        "template": str(APP / "template.yaml"),
        "n": args.n,
    }
    work = Path(tempfile.mkdtemp(prefix="lrun-template-bench-"))
    try:
        for name in ("lrun", "sam-default", "sam-eager"):
            shutil.copytree(APP, work / name)
        # lrun
        control = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "LRUN_STATE_DIR": str(work / "state")}
        env.pop("LRUN_TRACE", None)
        argv = [*lrun, "serve", "-t", "template.yaml", "--port", control.rsplit(":", 1)[1]]
        with phases.run("lrun: time to first response"):
            proc, first = first_response(
                argv, work / "lrun", env, work / "lrun.log", lambda: lrun_api_url(control), 180
            )
        try:
            base = lrun_api_url(control)
            assert base is not None
            sequential(base, 50)
            with phases.run("lrun: warm latency"):
                warm = latency(sequential(base, args.n))
        finally:
            stop(proc, signal.SIGTERM)
        out["lrun"] = {"first_response_s": round(first, 3), "warm": warm}
        # SAM, its default mode and warm containers
        sam_env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        for mode, extra in (("sam-default", []), ("sam-eager", ["--warm-containers", "EAGER"])):
            port = free_port()
            argv = [
                str(sam), "local", "start-api", "--skip-pull-image", "-p", str(port), *extra,
            ]  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            with phases.run(f"{mode}: time to first response"):
                proc, first = first_response(
                    argv, work / mode, sam_env, work / f"{mode}.log", lambda b=base: b, 300
                )
            try:
                record: dict[str, Any] = {"first_response_s": round(first, 3)}
                if mode == "sam-eager":
                    sequential(base, 20)
                    with phases.run(f"{mode}: warm latency"):
                        record["warm"] = latency(sequential(base, args.n))
            finally:
                stop(proc)
            out[mode] = record
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["phases"] = phases.records
    return out


def render(r: dict[str, Any]) -> str:
    lrun, default, eager = r["lrun"], r["sam-default"], r["sam-eager"]
    lines = [
        f"template: {r['template']} (GET /hello on its HttpApi), {r['n']} warm requests",
        "",
        "| figure | lrun serve -t | sam local start-api | sam local start-api (EAGER) |",
        "|---|---|---|---|",
        f"| command to first 200 | {lrun['first_response_s']:.2f} s | "
        f"{default['first_response_s']:.2f} s | {eager['first_response_s']:.2f} s |",
        f"| warm p50 | {lrun['warm']['p50_ms']:.2f} ms | (a container per request) | "
        f"{eager['warm']['p50_ms']:.2f} ms |",
        f"| warm p99 | {lrun['warm']['p99_ms']:.2f} ms | | {eager['warm']['p99_ms']:.2f} ms |",
        "",
        "load (1 min) per phase: "
        + ", ".join(f"{k} {v['load1_start']}" for k, v in r["phases"].items()),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("-n", type=int, default=300, help="warm requests (300)")
    add_quiet_arguments(parser)
    return run_cli(parser.parse_args(), run, render)


if __name__ == "__main__":
    raise SystemExit(main())
