"""lrun's networks keep containers from reaching each other, and an older lrun's network that
lets them is made again as soon as nothing uses it (never while something does: the engine is
shared by every lrun process on it).

On networks of this test's own (name and subnet), so that lrun processes using the real ones on
a shared engine are never disturbed; tests/acceptance/test_network_isolation performs the same
attack through `lrun serve` on the real ones.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from orchestrator.sandbox.backend import LABEL_MANAGED
from orchestrator.sandbox.docker_backend import DockerBackend

IMAGE = "lrun/python3.13:latest"
LISTENER = """
import socket
s = socket.socket(); s.bind(("0.0.0.0", 7000)); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b"listener\\n"); c.close()
"""
ATTACKER = """
import socket, sys
s = socket.socket(); s.settimeout(3)
try:
    s.connect((sys.argv[1], 7000)); print("connected", s.recv(16))
except OSError as exc:
    print("blocked", repr(exc))
"""


@pytest.fixture
def network_name(engine: docker.DockerClient) -> Iterator[tuple[str, str]]:
    name = f"lrun-test-{secrets.token_hex(4)}"
    subnet = f"169.254.{160 + secrets.randbelow(90)}.0/24"
    yield name, subnet
    for container in engine.containers.list(all=True, filters={"network": name}):
        container.remove(force=True)
    for network in engine.networks.list(names=[name]):
        if network.name == name:
            network.remove()


def older_lruns_network(engine: docker.DockerClient, name: str, subnet: str) -> str:
    """A network as lrun made it before it isolated containers."""
    pool = docker.types.IPAMPool(subnet=subnet, gateway=subnet.replace(".0/24", ".1"))
    network = engine.networks.create(
        name,
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        labels={LABEL_MANAGED: "1"},
    )
    return str(network.id)


def listener(engine: docker.DockerClient, network: str) -> tuple[Container, str]:
    """A container listening on port 7000, and its address."""
    container = engine.containers.run(
        IMAGE, ["-c", LISTENER], entrypoint="python3", network=network, detach=True, remove=True
    )
    container.reload()
    address = str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
    assert wait_listening(address) == b"listener\n"
    return container, address


def attack(engine: docker.DockerClient, network: str, target: str) -> str:
    output = engine.containers.run(
        IMAGE, ["-c", ATTACKER, target], entrypoint="python3", network=network, remove=True
    )
    return bytes(output).decode()


def wait_listening(address: str) -> bytes:
    """From the host (which may always reach its containers): the listener is up."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((address, 7000), timeout=2) as conn:
                return conn.recv(16)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_containers_on_an_lrun_network_cannot_reach_each_other(
    engine: docker.DockerClient, network_name: tuple[str, str]
) -> None:
    name, subnet = network_name
    backend = DockerBackend(engine, {name: subnet})
    network = backend.network(name, internal=False)
    assert network.isolated and network.subnet == subnet
    _, address = listener(engine, name)
    assert attack(engine, name, address).startswith("blocked"), "containers reached each other"


def test_an_older_lruns_network_is_made_again_only_once_unused(
    engine: docker.DockerClient, network_name: tuple[str, str]
) -> None:
    name, subnet = network_name
    old_id = older_lruns_network(engine, name, subnet)
    user, address = listener(engine, name)
    # The attack works there: what lrun must not leave in place.
    assert attack(engine, name, address).startswith("connected")

    in_use = DockerBackend(engine, {name: subnet}).network(name, internal=False)
    assert not in_use.isolated
    assert engine.networks.get(name).id == old_id  # whoever uses it keeps it

    user.remove(force=True)
    made_again = DockerBackend(engine, {name: subnet}).network(name, internal=False)
    assert made_again.isolated
    info = engine.networks.get(name)
    assert info.id != old_id
    assert info.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    _, address = listener(engine, name)
    assert attack(engine, name, address).startswith("blocked")
