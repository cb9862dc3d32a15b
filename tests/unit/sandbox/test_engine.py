"""Unit tests for orchestrator.sandbox.engine: finding the engine, choosing the Runtime API mode."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestrator.errors import BackendUnavailable, LrunError
from orchestrator.sandbox import engine
from orchestrator.sandbox.engine import Demux


def write_context(config: Path, name: str, host: str, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": endpoint}}))
    if tls:
        (config / "contexts" / "tls" / digest / "docker").mkdir(parents=True)


def test_docker_host_comes_first(tmp_path: Path) -> None:
    write_context(tmp_path / ".docker", "colima", "unix:///colima.sock")
    found = engine.locate({"DOCKER_HOST": "tcp://h:2375", "DOCKER_CONTEXT": "colima"}, tmp_path)
    assert (found.url, found.source) == ("tcp://h:2375", "DOCKER_HOST")


def test_docker_context_names_the_engine(tmp_path: Path) -> None:
    write_context(tmp_path / ".docker", "colima", "unix:///home/me/.colima/docker.sock", tls=True)
    found = engine.locate({"DOCKER_CONTEXT": "colima"}, tmp_path)
    assert found.url == "unix:///home/me/.colima/docker.sock"
    assert found.context == "colima"
    assert found.source == "Docker context 'colima' (DOCKER_CONTEXT=colima)"
    assert found.tls_dir is not None and found.tls_dir.is_dir()


def test_the_current_context_of_the_docker_cli_config(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    write_context(config, "desktop-linux", "unix:///home/me/.docker/desktop/docker.sock")
    (config / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    found = engine.locate({"DOCKER_CONFIG": str(config)}, tmp_path)
    assert found.url == "unix:///home/me/.docker/desktop/docker.sock"
    assert "currentContext 'desktop-linux'" in found.source


def test_the_default_context_is_the_default_socket(tmp_path: Path) -> None:
    config = tmp_path / ".docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"currentContext": "default"}))
    found = engine.locate({"XDG_RUNTIME_DIR": str(tmp_path / "run")}, tmp_path)
    assert found.context is None
    assert found.url.startswith("unix://")


def test_a_rootless_podman_socket_is_found_when_docker_has_none(tmp_path: Path) -> None:
    socket = tmp_path / "run" / "podman" / "podman.sock"
    socket.parent.mkdir(parents=True)
    socket.touch()
    no_docker = str(tmp_path / "docker.sock")
    found = engine.locate({"XDG_RUNTIME_DIR": str(tmp_path / "run")}, tmp_path, no_docker)
    assert found.url == f"unix://{socket}"


def test_an_unreadable_context_says_which_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as caught:
        engine.locate({"DOCKER_CONTEXT": "nope"}, tmp_path)
    message = str(caught.value)
    assert message.startswith("Docker context 'nope' (DOCKER_CONTEXT=nope) cannot be read from ")
    assert message.endswith("check it with `docker context inspect`, or set DOCKER_HOST")


def test_peer_addresses_where_every_container_has_its_own() -> None:
    assert engine.choose([False, False], None) is Demux.PEER


def test_a_listener_per_environment_behind_nat() -> None:
    assert engine.choose([True], None) is Demux.LISTENER


def test_the_listener_mode_can_be_forced_on_any_engine() -> None:
    assert engine.forced_mode({engine.MODE_VARIABLE: "listener"}) is Demux.LISTENER
    assert engine.choose([False], Demux.LISTENER) is Demux.LISTENER


def test_peer_mode_cannot_be_forced_behind_nat() -> None:
    with pytest.raises(LrunError, match="LRUN_RUNTIME_API_MODE=peer cannot work on this engine"):
        engine.choose([True], Demux.PEER)


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(LrunError) as caught:
        engine.forced_mode({engine.MODE_VARIABLE: "magic"})
    assert str(caught.value) == (
        "LRUN_RUNTIME_API_MODE='magic' is not a Runtime API mode; use peer or listener, or "
        "unset it to let lrun choose"
    )


def test_a_gateway_of_this_host_can_be_listened_on_and_another_cannot() -> None:
    assert engine.can_listen_on("127.0.0.1")
    assert not engine.can_listen_on("198.51.100.7")  # TEST-NET-2: documentation only
    assert not engine.can_listen_on("host-gateway")


def test_host_names_for_runtime_apis_are_secret_and_valid() -> None:
    names = {engine.runtime_api_name() for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert len(name) <= 63 and name.startswith("lrun-")
        assert all(c in "abcdef0123456789" for c in name.removeprefix("lrun-"))
