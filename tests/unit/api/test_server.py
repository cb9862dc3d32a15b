"""Unit tests for orchestrator.api.server: what it announces and what it refuses to start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator.api.access import AccessPolicy
from orchestrator.api.server import ServeSettings, announced_url, exposure, run
from orchestrator.api.sigv4 import Credentials
from orchestrator.errors import LrunError
from tests.fakes import FakeBackend

KEY = Credentials("LRUNTESTKEY000000000", "secret")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9001"),
        ("0.0.0.0", "http://127.0.0.1:9001"),
        ("::", "http://[::1]:9001"),
        ("::1", "http://[::1]:9001"),
        ("192.168.1.20", "http://192.168.1.20:9001"),
        ("lrun.example.lan", "http://lrun.example.lan:9001"),
    ],
)
def test_other_commands_are_told_a_reachable_url(host: str, url: str) -> None:
    assert announced_url(host, 9001) == url


def test_beyond_loopback_without_a_key_pair_it_refuses_to_start(tmp_path: Path) -> None:
    backend = FakeBackend()
    settings = ServeSettings(tmp_path / "lrun.yaml", host="0.0.0.0")
    with pytest.raises(LrunError, match="refusing to serve on 0.0.0.0 without checking"):
        asyncio.run(run(backend, settings, lambda line: None))
    assert backend.calls == []  # refused before any container is looked at


def test_the_start_up_lines_say_what_is_exposed_and_never_the_secret() -> None:
    settings = ServeSettings(
        Path("lrun.yaml"),
        host="0.0.0.0",
        access=AccessPolicy(frozenset({"lrun.lan"}), frozenset({"http://localhost:3000"}), KEY),
    )
    text = "\n".join(exposure(settings))
    assert "beyond loopback" in text and KEY.access_key_id in text
    assert "lrun.lan" in text and "http://localhost:3000" in text
    assert KEY.secret_access_key not in text
    assert exposure(ServeSettings(Path("lrun.yaml"))) == []
