"""Acceptance tests run the real `lrun` command as a user would, against the real engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import BackendUnavailable
from orchestrator.sandbox import docker_backend
from orchestrator.sandbox.backend import LABEL_MANAGED, LABEL_OWNER
from orchestrator.sandbox.ownership import host_identity, judge

Lrun = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session", autouse=True)
def engine_ready() -> Iterator[None]:
    try:
        backend = docker_backend.connect()
    except BackendUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
    yield
    here = host_identity()
    for container in backend.containers({LABEL_MANAGED: "1"}):
        # Only leftovers: the engine may be shared, and a live owner's containers are not ours.
        verdict = judge(container.labels, here)
        if (
            container.labels.get(LABEL_OWNER, "").startswith("oneshot-")
            and verdict
            and verdict.orphan
        ):
            backend.kill(container.id)


@pytest.fixture
def lrun(tmp_path: Path) -> Lrun:
    """Run `lrun ARGS...` in a directory (default: the test's tmp_path); never raises."""

    def call(
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=cwd or tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
        )
        # lrun's own tracebacks would name its modules; a function's may appear in its log.
        assert "orchestrator/" not in done.stderr and "click/" not in done.stderr, done.stderr
        return done

    return call


# `lrun serve` as a subprocess, on its own port and state directory (the engine may be shared)

HERE = Path(__file__).resolve().parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


def serve_command() -> list[str]:
    """The real `lrun` entry point, as a subprocess."""
    return [sys.executable, "-m", "orchestrator"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def lrun_containers() -> list[tuple[str, str]]:
    """(id, owner label) of every container labelled ``lrun.managed=1``, running or not."""
    listed = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            f"label={LABEL_MANAGED}=1",
            "--format",
            f'{{{{.ID}}}}\t{{{{.Label "{LABEL_OWNER}"}}}}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        (line.split("\t")[0], line.partition("\t")[2])
        for line in listed.stdout.splitlines()
        if line
    ]


class LrunServer:
    """One `lrun serve` this test session started, and what it printed."""

    def __init__(self, manifest_dir: Path, state_dir: Path, args: list[str], env: dict[str, str]):
        self.manifest_dir = manifest_dir
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir.parent / f"{state_dir.name}-serve.log"
        command = serve_command()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*command, "serve", "--port", str(self.port), *args],
                cwd=manifest_dir,
                env={**os.environ, **self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def env(self) -> dict[str, str]:
        """What another `lrun` command needs to find this server."""
        return {"LRUN_STATE_DIR": str(self.state_dir)}

    @property
    def owner_prefix(self) -> str:
        return f"serve-{self.pid}-"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 10.0) -> Any:
        sent = urllib.request.Request(self.url + path, headers=self.signature("GET", path))
        with urllib.request.urlopen(sent, timeout=timeout) as response:
            return json.loads(response.read())

    def signature(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        """Headers signing a request as this server requires (none if it does not): with the
        key pair it announced to its owner's `lrun` commands."""
        from orchestrator.api import client, sigv4

        try:
            record = json.loads((self.state_dir / "server.json").read_text())
        except (OSError, ValueError):
            return {}
        keys = client._credentials(record.get("credentials"))
        if keys is None:
            return {}
        host = {"Host": f"127.0.0.1:{self.port}"}
        return {**host, **sigv4.sign(method, path, {}, host, body, keys, "us-east-1")}

    def environments(self, function: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.get("/lrun/environments")
        return [r for r in rows if function is None or r["function"] == function]

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"lrun serve exited {self.process.returncode}:\n{self.output()}")
            try:
                if self.get("/lrun/health", timeout=1.0)["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"lrun serve did not answer within {timeout:.0f} s:\n{self.output()}")

    def owned_containers(self) -> list[str]:
        return [cid for cid, owner in lrun_containers() if owner.startswith(self.owner_prefix)]

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then the exit status (killed, and the test failed, if it takes too long)."""
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"lrun serve did not stop within {timeout:.0f} s:\n{self.output()}")

    def wait_no_containers(self, timeout: float = 15.0) -> list[str]:
        """This server's containers still there after ``timeout`` (auto-removal takes a moment)."""
        deadline = time.monotonic() + timeout
        while (left := self.owned_containers()) and time.monotonic() < deadline:
            time.sleep(0.25)
        return left

    def finish(self) -> None:
        """Stop gracefully and check it exited 0 leaving none of its containers behind."""
        try:
            status = self.stop()
            assert status == 0, f"lrun serve exited {status}:\n{self.output()}"
            left = self.wait_no_containers()
            assert not left, f"lrun serve left containers {left}:\n{self.output()}"
        finally:
            self.clean_up()

    def clean_up(self) -> None:
        """Whatever happened, leave nothing of this server's behind (its own containers only)."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for cid in self.owned_containers():
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


def start_server(
    manifest_dir: Path,
    state_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> LrunServer:
    """Start `lrun serve` on the manifest in ``manifest_dir`` and wait until it answers."""
    server = LrunServer(manifest_dir, state_dir, list(args), env or {})
    try:
        server.wait_ready()
    except BaseException:
        server.clean_up()
        raise
    return server


ServerFactory = Callable[..., LrunServer]


@pytest.fixture
def serve_lrun(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers for one test: ``serve_lrun(manifest_dir, *args)``. Each
    gets its own port and state directory; whatever a test leaves running is removed after it."""
    started: list[LrunServer] = []

    def start(manifest_dir: Path, *args: str, env: dict[str, str] | None = None) -> LrunServer:
        state = tmp_path / f"state-{len(started)}"
        server = start_server(manifest_dir, state, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.clean_up()
