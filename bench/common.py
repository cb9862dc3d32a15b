"""What the benchmarks in bench/ share: the machine and its load, CPU accounting from /proc, HTTP
against the Invoke API, `lrun serve` and SAM CLI's `start-lambda` as servers, wrk and py-spy,
figures (percentiles and summaries) and the command line (parser, signals, printing the result).

Each script in bench/ holds only its scenario and imports the rest from here; run as a script
(``python bench/serve_bench.py``, from the repository's top or from bench/), Python puts bench/
on ``sys.path`` first, so ``import common`` finds this module. Standard library only.
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
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LRUN_APP = HERE / "sam_app"  # lrun.yaml: Echo and Sleep exactly as SAM's template declares them
PEERS = REPO.parent / "shared" / "peers"
CODE_DIR = PEERS / "sam" / "app" / "src"
SETUP = PEERS / "sam" / "setup.sh"
DEFAULT_PEERS_DIR = "/tmp/lrun-peers"

INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
EVENT: dict[str, Any] = {"x": 1}
EXPECTED: dict[str, Any] = {"echo": EVENT}

SAM_CONTAINER = re.compile(r"SAM_CONTAINER_ID: (?P<id>[0-9a-f]{64})")


class BenchError(Exception):
    """A tool failed or answered something else than expected: the figures would be lies."""


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Figures


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, `inclusive` quantiles), for
    small series."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def nearest_rank(values: Sequence[float], p: float) -> float:
    """../shared/peers/invoke_bench.py's percentile (sorted[int(p/100 * n)]), so series
    compare with its figures."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, p90 (interpolated), min and max of a small series."""
    return {
        "p50": statistics.median(values),
        "p90": percentile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


# The machine and its load


def command_output(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """What a command prints (standard output, else standard error: `wrk -v` exits 1), or
    ``unavailable (why)`` if it cannot be run."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (proc.stdout or proc.stderr).strip()


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    values: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    return values


def running_containers() -> int:
    """Every running container on the host (a benchmark's own included)."""
    return len(command_output(["docker", "ps", "-q"]).split())


def wrk_version() -> str | None:
    return command_output(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else None


def machine() -> dict[str, Any]:
    fmt = "{{.ServerVersion}}|{{.Driver}}|{{.CgroupVersion}}|{{.CgroupDriver}}|{{.NCPU}}"
    fields = (command_output(["docker", "info", "--format", fmt]).split("|") + [""] * 5)[:5]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(meminfo()["MemTotal"] / 1024 / 1024, 1),
        "kernel": platform.release(),
        "docker_server_version": fields[0],
        "docker_storage_driver": fields[1],
        "docker_cgroup": f"v{fields[2]} {fields[3]}",
        "docker_ncpu": fields[4],
        "python": platform.python_version(),
    }


# Other people's benchmarks on this shared machine: a phase waits while one runs.
BENCHMARK_PROCESSES = re.compile(
    r"(^|/)(wrk|py-spy)( |$)|serve_bench\.py|invoke_bench\.py|cold_invoke\.py|async_bench\.py"
    r"|sam local start-lambda"
)
NOT_RUNNING_IT = re.compile(r"\b(mypy|ruff|pytest|grep|less|vim?|nano)\b")  # only looking


def others_benchmarking() -> list[str]:
    """Command lines of benchmark processes this run did not start (neither its descendants nor
    its ancestors)."""
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
    # Its ancestors too (the shell or `timeout` that started it, whose command line names it),
    # but not their other descendants.
    ancestors: set[int] = set()
    ancestor = parents.get(os.getpid(), 0)
    while ancestor > 1 and ancestor not in ancestors:
        ancestors.add(ancestor)
        ancestor = parents.get(ancestor, 0)
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
        and pid not in ancestors
        and BENCHMARK_PROCESSES.search(cmdline)
        and not NOT_RUNNING_IT.search(cmdline)
    ]


@dataclass
class Phases:
    """Waits for a quiet machine before each phase (1-minute load at most ``max_load``, no one
    else's benchmark running; for ``max_wait_s`` at the most) and records the load each one ran
    under."""

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
            # every running container on the host, this run's own included
            "other_containers_start": running_containers(),
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


# CPU accounting


def proc_cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def proc_cpu_ns(pid: int) -> int:
    """Nanoseconds a process has run on a CPU, all its threads together (the scheduler's own
    account, ``/proc/PID/task/*/schedstat``): exact where ``/proc/PID/stat`` counts 10 ms ticks,
    so a few hundred requests are enough to tell microseconds per request apart. Threads that
    have ended are not counted; lrun's warm path runs on its event loop's thread."""
    total = 0
    for task in os.scandir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"{task.path}/schedstat") as f:
                total += int(f.read().split()[0])
    return total


def proc_counters(pid: int) -> dict[str, int]:
    """A process's read and write system calls (all threads) and its main thread's context
    switches: voluntary (a sleep in the event loop's poll) and not (preempted while runnable)."""
    counters = {
        "syscr": 0,
        "syscw": 0,
        "voluntary_ctxt_switches": 0,
        "nonvoluntary_ctxt_switches": 0,
    }
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in counters:
                    counters[key] = int(value)
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    counters[key] = int(value)
    return counters


def host_cpu_s() -> float:
    """Busy CPU seconds of the whole host (all CPUs; idle and iowait excluded)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def cgroup_dir(controller: str, container_id: str) -> Path | None:
    """A container's cgroup folder (cgroup v1 with ``controller``, or v2), if there is one: the
    engine's default place, or under the cgroup parent lrun gives its containers
    (``lrun/<container name>``, see sandbox/docker_backend.py)."""
    for candidate in (
        Path("/sys/fs/cgroup") / controller / "docker" / container_id,
        Path("/sys/fs/cgroup") / "docker" / container_id,
        Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",
        *(Path("/sys/fs/cgroup") / controller / "lrun").glob(f"*/{container_id}"),
        *(Path("/sys/fs/cgroup") / "lrun").glob(f"*/{container_id}"),
    ):
        if candidate.is_dir():
            return candidate
    return None


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def container_cpu_s(container_id: str) -> float:
    """CPU seconds a container's processes used (its cgroup's accounting); 0 if not found."""
    folder = cgroup_dir("cpuacct", container_id)
    if folder is not None:
        usage = read_int(folder / "cpuacct.usage")
        if usage is not None:
            return usage / 1e9
    folder = cgroup_dir("", container_id)
    if folder is not None:
        with contextlib.suppress(OSError):
            for line in (folder / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    return 0.0


@dataclass
class CpuWindow:
    """CPU seconds used during a window: by a server process (and its system calls and context
    switches), by function containers (their cgroups; only if ``container_ids`` is given) and by
    the whole host."""

    server_pid: int
    container_ids: Sequence[str] | None = None
    start: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CpuWindow:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _sample(self) -> dict[str, float]:
        user, system = proc_cpu_s(self.server_pid)
        counters = proc_counters(self.server_pid)
        return {
            "server_reads": counters["syscr"],
            "server_writes": counters["syscw"],
            "server_sleeps": counters["voluntary_ctxt_switches"],
            "server_preemptions": counters["nonvoluntary_ctxt_switches"],
            "wall": time.perf_counter(),
            "server": user + system,
            "server_system": system,
            "containers": sum(container_cpu_s(c) for c in self.container_ids or ()),
            "host": host_cpu_s(),
        }

    def result(self, requests: int, client_cpu_s: float | None = None) -> dict[str, Any]:
        """The window so far, in all and per request; with the client's CPU seconds, what is
        left of the host's (``other``: neither server, containers nor client)."""
        end = self._sample()
        delta = {k: end[k] - self.start[k] for k in end}
        wall = delta["wall"]

        def per_request(value: float, digits: int = 3, scale: float = 1000.0) -> float | None:
            return round(value * scale / requests, digits) if requests else None

        out: dict[str, Any] = {
            "wall_s": round(wall, 2),
            "server_cpu_s": round(delta["server"], 2),
            "server_system_cpu_s": round(delta["server_system"], 2),
        }
        known = delta["server"]
        if self.container_ids is not None:
            out["function_containers_cpu_s"] = round(delta["containers"], 2)
            known += delta["containers"]
        if client_cpu_s is not None:
            out["client_cpu_s"] = round(client_cpu_s, 2)
            known += client_cpu_s
        out["host_busy_cpu_s"] = round(delta["host"], 2)
        if client_cpu_s is not None:
            out["other_cpu_s"] = round(delta["host"] - known, 2)
        out["server_cpus_busy"] = round(delta["server"] / wall, 2) if wall else None
        out["host_cpus_busy"] = round(delta["host"] / wall, 2) if wall else None
        out["server_cpu_ms_per_request"] = per_request(delta["server"])
        out["server_system_cpu_ms_per_request"] = per_request(delta["server_system"])
        if self.container_ids is not None:
            out["containers_cpu_ms_per_request"] = per_request(delta["containers"])
        if client_cpu_s is not None:
            out["client_cpu_ms_per_request"] = per_request(client_cpu_s)
            out["other_cpu_ms_per_request"] = per_request(delta["host"] - known)
        out["host_cpu_ms_per_request"] = per_request(delta["host"])
        for key, name in (
            ("server_reads", "server_read_syscalls"),
            ("server_writes", "server_write_syscalls"),
            ("server_sleeps", "server_loop_sleeps"),
            ("server_preemptions", "server_preemptions"),
        ):
            out[f"{name}_per_request"] = per_request(delta[key], digits=2, scale=1.0)
        return out


# Tools


def peers_dir() -> Path:
    """Where ../shared/peers/sam/setup.sh puts SAM CLI and its app ($PEERS_DIR)."""
    return Path(os.environ.get("PEERS_DIR", DEFAULT_PEERS_DIR))


def find_lrun(explicit: str | None, *, console_script: bool = False) -> list[str]:
    """The lrun command: ``explicit``, else the console script next to this interpreter; else
    ``python -m orchestrator`` (this tree's code), or, with ``console_script`` (a benchmark that
    times lrun's own start-up), the console script on PATH."""
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "lrun"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    if not console_script:
        return [sys.executable, "-m", "orchestrator"]
    found = shutil.which("lrun")
    if found is None:
        raise BenchError("lrun not found next to this interpreter nor on PATH; pass --lrun PATH")
    if "/shims/" in found:
        print(
            f"warning: {found} is a version-manager shim; it adds its own start-up time "
            "to every lrun run (pass --lrun with the real console script)",
            file=sys.stderr,
        )
    return [found]


def ensure_sam(peers: Path, setup: Path = SETUP) -> Path:
    """SAM CLI as ``setup`` installs it in ``peers`` (running it first if it is missing)."""
    sam = peers / "sam-venv" / "bin" / "sam"
    if not (sam.is_file() and (peers / "app" / "template.yaml").is_file()):
        note(f"setting up SAM CLI in {peers} with {setup}")
        env = {**os.environ, "PEERS_DIR": str(peers)}
        subprocess.run(["bash", str(setup)], env=env, check=True)
    if not sam.is_file():
        raise BenchError(f"{setup} did not produce {sam}")
    return sam


def code_digest() -> str:
    """A digest of lrun's source as it was measured (the tree may change between runs)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "orchestrator").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return str(beside)
    return shutil.which("py-spy")


def py_spy_record(
    py_spy: str,
    pid: int,
    seconds: int,
    out: Path,
    *,
    rate: int | None = None,
    threads: bool = False,
) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` for ``seconds`` into ``out`` (raw format), in the background."""
    argv = [
        py_spy, "record", "--pid", str(pid), "--duration", str(seconds),
        "--format", "raw", "--output", str(out), "--nonblocking",
    ]  # fmt: skip
    if rate is not None:
        argv += ["--rate", str(rate)]
    if threads:
        argv.append("--threads")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(
    path: Path, top: int, *, threads: bool = False, inclusive_files: tuple[str, ...] = ()
) -> dict[str, Any]:
    """py-spy's raw output (``frame;frame;... count``; with ``threads``, py-spy's --threads, the
    thread first: then samples per thread too): samples by innermost Python frame (self) and by
    every frame on the stack (inclusive; only frames of ``inclusive_files``, given as
    ``(name.py)``, if any), by function and file."""
    thread_counts: Counter[str] = Counter()
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
        if threads:
            thread, frames = frames[0], frames[1:]
            thread_counts[re.sub(r"\s*\(?0x[0-9a-f]+\)?", "", thread).strip() or thread] += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
        frames = [re.sub(r"\((?:.*/)?([^/]+)\)$", r"(\1)", f) for f in frames]
        if frames:
            self_counts[frames[-1]] += count
        for frame in set(frames):
            if not inclusive_files or frame.endswith(inclusive_files):
                inclusive[frame] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, int, float]]:
        return [(f, c, round(100 * c / total, 1)) for f, c in counter.most_common(n)]

    result: dict[str, Any] = {"samples": total}
    if threads:
        result["threads"] = share(thread_counts, 8)
    result["self"] = share(self_counts, top)
    result["inclusive"] = share(inclusive, top)
    return result


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(
    url: str, function: str, script: Path, seconds: int, connections: int
) -> dict[str, Any]:
    """`wrk -t1 --latency` with ``script`` against ``function``'s invoke path: its figures and
    its own CPU seconds (from wait4's rusage)."""
    target = url + INVOKE_PATH.format(function)
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(script), target,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    hang = threading.Timer(seconds + 60, proc.kill)  # far above any run; only catches a hang
    hang.start()
    try:
        with proc.stdout:
            text = proc.stdout.read().decode(errors="replace")
    finally:
        hang.cancel()
        hang.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {text}")
    out: dict[str, Any] = {
        "command": " ".join(argv),
        "client_cpu_s": usage.ru_utime + usage.ru_stime,
    }
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(found.group(1)) if found else None
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    out["requests"] = int(found.group(1)) if found else 0
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(found.group(1)) if found else 0
    found = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = found.group(1).strip() if found else None
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if found:
            out[f"latency_p{pct}_ms"] = round(float(found.group(1)) * _WRK_UNITS[found.group(2)], 3)
    return out


# HTTP against the Invoke API and lrun's own API


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def call(
    url: str,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection, ``body`` as JSON: (status, headers, body)."""
    host, port = host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
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
    status, _, data = call(url, "GET", path, timeout=30)
    if status != 200:
        raise BenchError(f"GET {path}: {status} {data[:200]!r}")
    return json.loads(data)


def post_json(url: str, path: str, body: object) -> Any:
    status, _, data = call(url, "POST", path, body)
    if status not in (200, 201):
        raise BenchError(f"POST {path}: {status} {data[:200]!r}")
    return json.loads(data) if data else None


def environments(url: str, function: str | None = None) -> list[dict[str, Any]]:
    """`lrun serve`'s environments (of ``function``)."""
    rows: list[dict[str, Any]] = get_json(url, "/lrun/environments")
    return [r for r in rows if function is None or r["function"] == function]


def invoke_once(
    url: str,
    function: str,
    payload: object,
    headers: dict[str, str] | None = None,
    timeout: float = 300.0,
    sent_at: list[float] | None = None,
) -> tuple[int, dict[str, str], bytes, float]:
    """One invocation on a new connection: (status, headers, body, seconds from the request's
    first byte sent to the response's last byte read; the connect is not included). The
    wall-clock time of sending is appended to ``sent_at``, if given."""
    host, port = host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
        body = json.dumps(payload).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if sent_at is not None:
            sent_at.append(time.time())
        start = time.perf_counter()
        conn.request("POST", INVOKE_PATH.format(function), body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - start
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, elapsed
    finally:
        conn.close()


def at_once(jobs: Sequence[Callable[[Callable[[], object]], None]]) -> float:
    """Runs each job on a thread of its own, all released together: a job calls the function
    it is given when it is ready to go (after connecting, say). Seconds from the release to the
    end of the last job."""
    barrier = threading.Barrier(len(jobs) + 1)

    def run(job: Callable[[Callable[[], object]], None]) -> None:
        try:
            job(barrier.wait)
        except threading.BrokenBarrierError:
            pass  # another job failed before the release (and says why)
        except BaseException:
            barrier.abort()  # one that fails before the release must not hold the rest forever
            raise

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError as exc:
        raise BenchError("a job failed before the release (see its traceback above)") from exc
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def concurrent_invokes(
    url: str, function: str, payload: object, n: int, timeout: float = 300.0
) -> tuple[float, Counter[int], list[str]]:
    """``n`` invocations released at once, each on its own connection: (wall seconds from the
    release to the last response, status counts, error bodies)."""
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def one(ready: Callable[[], object]) -> None:
        ready()
        try:
            status, _, body, _ = invoke_once(url, function, payload, timeout=timeout)
        except OSError as exc:
            status, body = 0, str(exc).encode()
        with lock:
            statuses[status] += 1
            if status != 200:
                errors.append(body[:200].decode(errors="replace"))

    return at_once([one] * n), statuses, errors


def warm_up(url: str, function: str, n: int) -> None:
    """``n`` synchronous invokes at once (warms ``n`` environments); all must answer 200."""
    _, statuses, errors = concurrent_invokes(url, function, EVENT, n)
    if statuses[200] != n:
        raise BenchError(f"warm-up invokes of {function}: {dict(statuses)} {errors[:3]}")


def keep_alive_invokes(
    url: str, function: str, bodies: Iterable[bytes], *, check_echo: bool = True
) -> tuple[list[float], float]:
    """Each body as one synchronous invoke, one after another on one keep-alive connection:
    (each invoke's seconds from request sent to response read, the series' wall seconds). Every
    answer must be 200 and, with ``check_echo``, the echo of its body."""
    host, port = host_port(url)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    path = INVOKE_PATH.format(function)
    headers = {"Content-Type": "application/json"}
    times: list[float] = []
    series_start = time.perf_counter()
    try:
        for body in bodies:
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            times.append(time.perf_counter() - start)
            if resp.status != 200 or (
                check_echo and json.loads(data) != {"echo": json.loads(body)}
            ):
                raise BenchError(f"invoke of {function}: {resp.status} {data[:200]!r}")
    finally:
        conn.close()
    return times, time.perf_counter() - series_start


# Servers


def docker_inspect(ids: Sequence[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    proc = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, check=False, timeout=120
    )
    if not proc.stdout.strip():
        return []
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


class Server:
    """A server process started by a benchmark, its output in a log file."""

    name = "server"

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.argv, self.cwd, self.env, self.log_path = argv, cwd, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        note(f"{self.name}: {' '.join(self.argv)}")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with {self.proc.returncode}; its log "
                f"({self.log_path}) ends with:\n{self.log_text()[-2000:]}"
            )

    def ready(self) -> bool:
        raise NotImplementedError

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds until it answered ``ready``; fails if it exits or takes ``timeout_s``."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout_s:
            self._check_alive()
            with contextlib.suppress(OSError, BenchError, http.client.HTTPException):
                if self.ready():
                    return time.perf_counter() - start
            time.sleep(0.2)
        raise BenchError(f"{self.name} not ready after {timeout_s:g} s; see {self.log_path}")

    def _signal_and_wait(self, sig: int, timeout_s: float) -> bool:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        raise NotImplementedError


class LrunServer(Server):
    """`lrun serve` on a manifest, with its own port (a free one unless given) and state
    directory, and without LRUN_TRACE."""

    def __init__(
        self,
        lrun: list[str],
        manifest: Path,
        state_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        extra: Sequence[str] = (),
        name: str = "lrun serve",
    ) -> None:
        port = free_port() if port is None else port
        env = {**os.environ, "LRUN_STATE_DIR": str(state_dir)}
        env.pop("LRUN_TRACE", None)
        argv = [*lrun, "serve", "-f", str(manifest), "--port", str(port), *extra]
        super().__init__(argv, manifest.parent, env, log_path)
        self.name, self.state_dir = name, state_dir
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        health = get_json(self.url, "/lrun/health")
        return bool(health.get("status") == "ok")

    def stop(self) -> None:
        """SIGTERM: lrun lets in-flight invocations finish and removes its containers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        note(f"{self.name}: stopping (SIGTERM)")
        if not self._signal_and_wait(signal.SIGTERM, 180):
            note(f"{self.name}: still running after 180 s; SIGKILL")
            self._signal_and_wait(signal.SIGKILL, 10)


class SamServer(Server):
    """SAM CLI's `sam local start-lambda` on an app, warm containers ``warm`` (EAGER or LAZY)."""

    def __init__(
        self, sam: Path, app_dir: Path, port: int, warm: str, log_path: Path, probe: str | None
    ) -> None:
        env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
        argv = [
            str(sam), "local", "start-lambda", "--skip-pull-image",
            "--warm-containers", warm, "-p", str(port),
        ]  # fmt: skip
        super().__init__(argv, app_dir, env, log_path)
        self.name = f"sam start-lambda ({warm})"
        self.url = f"http://127.0.0.1:{port}"
        self.probe = probe  # a function to invoke as the readiness check; None: any answer
        self.probe_answer: Any = None  # the probe's answer, once ready

    def ready(self) -> bool:
        if self.probe is not None:
            status, _, body, _ = invoke_once(self.url, self.probe, EVENT, timeout=60)
            self.probe_answer = json.loads(body) if status == 200 else None
            return status == 200 and self.probe_answer == EXPECTED
        host, port = host_port(self.url)
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:  # answered at all (405: GET on an invoke path) without starting any container
            conn.request("GET", INVOKE_PATH.format("Probe"))
            conn.getresponse().read()
            return True
        finally:
            conn.close()

    def container_ids(self) -> list[str]:
        return sorted(set(SAM_CONTAINER.findall(self.log_text())))

    def containers(self, function: str | None = None) -> list[dict[str, Any]]:
        rows = [r for r in docker_inspect(self.container_ids()) if r["State"]["Running"]]
        if function is not None:
            rows = [
                r
                for r in rows
                if (r["Config"].get("Labels") or {}).get("sam.cli.function.name") == function
            ]
        return rows

    def stop(self) -> None:
        """SIGINT (Ctrl-C) first: SAM then removes its warm containers itself."""
        if self.proc is not None and self.proc.poll() is None:
            note(f"{self.name}: stopping (SIGINT)")
            if not self._signal_and_wait(signal.SIGINT, 30):
                note(f"{self.name}: still running after SIGINT; SIGTERM")
                if not self._signal_and_wait(signal.SIGTERM, 20):
                    self._signal_and_wait(signal.SIGKILL, 10)
        # Containers this SAM started (it prints their ids) that are somehow still there.
        leftover = [r["Id"] for r in docker_inspect(self.container_ids())]
        if leftover:
            note(f"{self.name}: removing {len(leftover)} containers it left")
            command_output(["docker", "rm", "-f", *leftover])


class Servers:
    """Everything a run started, stopped at the end whatever happens."""

    def __init__(self) -> None:
        self.running: list[Server] = []

    def start(self, server: Server) -> Server:
        self.running.append(server)
        server.start()
        return server

    def stop(self, server: Server) -> None:
        try:
            server.stop()
        finally:
            if server in self.running:
                self.running.remove(server)

    def stop_all(self) -> None:
        for server in reversed(list(self.running)):
            with contextlib.suppress(Exception):
                self.stop(server)


# The command line


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's parser: the first paragraph of ``doc`` as its description; --json, --lrun."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lrun", help="the lrun command (default: next to this interpreter)")
    return parser


def add_quiet_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-load and --max-wait, for ``Phases``."""
    parser.add_argument(
        "--max-load", type=float, default=1.5, help="quiet: 1-min load at most (1.5)"
    )
    parser.add_argument(
        "--max-wait", type=float, default=600.0, help="seconds to wait for quiet, per phase (600)"
    )


def handle_signals() -> None:
    """SIGTERM ends a run through its clean-up (servers stopped, temporary files removed); a run
    started in the background by a shell (SIGINT ignored) gets SIGINT back, and so do the
    servers it starts (SAM CLI is stopped with SIGINT)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_cli(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    failure: str = "error",
) -> int:
    """Runs a benchmark and prints its result (one JSON object with --json, else ``render``'s
    text); a ``BenchError`` is printed after ``failure`` and exits 1."""
    handle_signals()
    try:
        result = run(args)
    except BenchError as exc:
        print(f"{failure}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else render(result), flush=True)
    return 0
