"""Functions reach neither each other nor the host's services, as on Lambda (DESIGN D9).

Each test performs the attack from inside real functions served by a real `lrun serve`: one
function listens, another (of the same server or another one) tries to connect to it; functions
try every address of the host where a service listens on 0.0.0.0. Public functions keep their
egress: they reach a listener outside the host's own addresses (another network namespace here,
routed as the internet would be).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from orchestrator.sandbox import docker_backend, host_firewall
from orchestrator.sandbox.backend import NETWORK_PRIVATE, NETWORK_PUBLIC
from tests.acceptance.conftest import LrunServer, ServerFactory
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "python"
LISTENER_PORT = 7000  # netprobe.PORT
# How long the engine may take to free lrun's networks when an older lrun's tests still use them.
NETWORK_WAIT_S = 300.0
CAN_FIREWALL = host_firewall.unavailable() is None


def write_project(directory: Path, functions: dict[str, tuple[str, str]]) -> Path:
    """name: (handler, network) -> a project directory with its lrun.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["functions:"]
    for name, (handler, network) in functions.items():
        lines.append(
            f"  {name}: {{runtime: python3.13, handler: {handler}, code: {CODE}, "
            f"network: {network}, timeout: 30}}"
        )
    (directory / "lrun.yaml").write_text("\n".join(lines) + "\n")
    return directory


def invoke(server: LrunServer, function: str, event: Any = None) -> Any:
    client = boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )
    response = client.invoke(FunctionName=function, Payload=json.dumps(event or {}).encode())
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload  # the function ran: its Runtime API works
    return payload


def attempts(server: LrunServer, attacker: str, targets: list[tuple[str, int]]) -> list[Any]:
    event = {"targets": [{"host": h, "port": p} for h, p in targets], "timeout": 3}
    results: list[Any] = invoke(server, attacker, event)["results"]
    return results


def connected(results: list[Any]) -> list[Any]:
    return [r for r in results if r["connected"]]


def banner_from_host(address: str, port: int) -> bytes:
    """Connect from the host: proves the listener is up, so a refused attacker was blocked."""
    with socket.create_connection((address, port), timeout=5) as conn:
        return conn.recv(64)


@pytest.fixture(scope="module")
def isolated_networks() -> None:
    """lrun's networks as this lrun makes them. An older lrun's network is made again once
    nothing uses it; on an engine shared with older lrun processes that may take a while."""
    backend = docker_backend.connect()
    deadline = time.monotonic() + NETWORK_WAIT_S
    for name in (NETWORK_PUBLIC, NETWORK_PRIVATE):
        while not backend.network(name, name == NETWORK_PRIVATE).isolated:
            if time.monotonic() > deadline:
                pytest.fail(f"network {name} stayed in use by an older lrun for {NETWORK_WAIT_S} s")
            time.sleep(2)


class HostListener:
    """A service of the host's own, listening on every address (0.0.0.0)."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("0.0.0.0", 0))
        self.socket.listen(16)
        self.port: int = self.socket.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"host-service\n")
            conn.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def host_listener() -> Iterator[HostListener]:
    listener = HostListener()
    yield listener
    listener.close()


def host_addresses() -> list[str]:
    """Every IPv4 address of this host but loopback (lrun's gateways among them)."""
    listed = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True, timeout=10
    )
    found = [line.split()[3].split("/")[0] for line in listed.stdout.splitlines()]
    return [a for a in found if not a.startswith("127.")]


def firewall_rules(owner_prefix: str) -> list[str]:
    rules = []
    for chain in ("INPUT", host_firewall.CHAIN):
        listed = subprocess.run(
            ["iptables", "-w", "-S", chain], capture_output=True, text=True, timeout=30
        )
        rules += [line for line in listed.stdout.splitlines() if f"owner={owner_prefix}" in line]
    return rules


# 1. Environments cannot reach each other


def test_functions_cannot_connect_to_each_others_listeners(
    isolated_networks: None, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    one = serve_lrun(
        write_project(
            tmp_path / "one",
            {
                "listener": ("netprobe.listen", "public"),
                "attacker": ("netprobe.connect", "public"),
                "plistener": ("netprobe.listen", "private"),
                "pattacker": ("netprobe.connect", "private"),
            },
        )
    )
    other = serve_lrun(
        write_project(tmp_path / "two", {"outsider": ("netprobe.connect", "public")})
    )
    public = invoke(one, "listener")["address"]
    private = invoke(one, "plistener")["address"]
    for address in (public, private):
        assert banner_from_host(address, LISTENER_PORT) == b"lrun-netprobe\n"
    targets = [(public, LISTENER_PORT), (private, LISTENER_PORT)]

    assert connected(attempts(one, "attacker", targets)) == []  # same server, public
    assert connected(attempts(one, "pattacker", targets)) == []  # same server, private
    assert connected(attempts(other, "outsider", targets)) == []  # another lrun serve's
    for server in (one, other):
        assert "can reach each other's listeners" not in server.output()
        server.finish()


# 2. Functions cannot reach the host's services, only the Runtime API


def test_functions_cannot_reach_host_services_but_the_runtime_api(
    serve_lrun: ServerFactory, tmp_path: Path, host_listener: HostListener
) -> None:
    server = serve_lrun(
        write_project(
            tmp_path / "project",
            {
                "attacker": ("netprobe.connect", "public"),
                "pattacker": ("netprobe.connect", "private"),
            },
        )
    )
    addresses = host_addresses()
    assert {"169.254.100.1", "169.254.101.1"} <= set(addresses), addresses
    for address in addresses:  # reachable from the host itself: the service is up
        assert banner_from_host(address, host_listener.port) == b"host-service\n"
    targets = [(address, host_listener.port) for address in addresses]
    if not CAN_FIREWALL:
        # Without the privilege lrun says so, naming what stays exposed.
        output = server.output()
        assert "could not install its host firewall rules" in output, output
        assert str(host_listener.port) in output, output
        server.finish()
        pytest.skip(f"host firewall not testable here: {host_firewall.unavailable()}")
    accepted = host_listener.accepted
    for attacker in ("pattacker", "attacker"):  # each answered: the Runtime API still works
        assert connected(attempts(server, attacker, targets)) == [], attacker
    assert host_listener.accepted == accepted
    assert "could not install its host firewall rules" not in server.output()
    server.finish()


@pytest.mark.skipif(not CAN_FIREWALL, reason="the host firewall needs root and iptables")
def test_firewall_rules_go_with_their_server_and_a_crashed_servers_are_swept(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "project", {"attacker": ("netprobe.connect", "private")})
    crashed = serve_lrun(project)
    assert firewall_rules(crashed.owner_prefix), "no rules installed"
    crashed.process.send_signal(signal.SIGKILL)
    crashed.process.wait()
    assert firewall_rules(crashed.owner_prefix), "a crashed server cannot remove its rules"

    server = serve_lrun(project)
    assert firewall_rules(crashed.owner_prefix) == []  # swept at the next start
    assert firewall_rules(server.owner_prefix)
    invoke(server, "attacker", {"targets": []})
    server.finish()
    assert firewall_rules(server.owner_prefix) == []


# 3. Public functions keep their egress


@pytest.fixture
def outside_listener() -> Iterator[tuple[str, int]]:
    """A listener in a network namespace of its own, reached through the host's routing as an
    address on the internet would be (there is no internet here)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network namespace needs root and iproute2")
    token = secrets.token_hex(3)
    namespace, outer, inner = f"lrun-egress-{token}", f"lre{token}a", f"lre{token}b"
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    commands = [
        ["ip", "netns", "add", namespace],
        ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
        ["ip", "link", "set", inner, "netns", namespace],
        ["ip", "addr", "add", f"{subnet}.1/30", "dev", outer],
        ["ip", "link", "set", outer, "up"],
        ["ip", "netns", "exec", namespace, "ip", "addr", "add", f"{subnet}.2/30", "dev", inner],
        ["ip", "netns", "exec", namespace, "ip", "link", "set", inner, "up"],
    ]
    listener = None
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=30)
        script = (
            "import socket\n"
            "s = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen(8)\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    c, _ = s.accept(); c.sendall(b'outside\\n'); c.close()\n"
        )
        listener = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None and listener.stdout.readline() == "ready\n"
        yield f"{subnet}.2", 8080
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
            if listener.stdout is not None:
                listener.stdout.close()
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


def test_public_functions_reach_beyond_the_host_and_private_ones_do_not(
    serve_lrun: ServerFactory, tmp_path: Path, outside_listener: tuple[str, int]
) -> None:
    server = serve_lrun(
        write_project(
            tmp_path / "project",
            {"public": ("netprobe.connect", "public"), "private": ("netprobe.connect", "private")},
        )
    )
    [reached] = attempts(server, "public", [outside_listener])
    assert reached["connected"] and reached["received"] == "outside\n", reached
    [refused] = attempts(server, "private", [outside_listener])
    assert not refused["connected"], refused
    server.finish()
