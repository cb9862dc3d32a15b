"""The host firewall's bookkeeping, with iptables replaced by a recording stand-in.

The rules themselves are proven against the real kernel by tests/acceptance/test_network_isolation.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from orchestrator.sandbox import host_firewall
from orchestrator.sandbox.docker_backend import DockerBackend
from orchestrator.sandbox.ownership import Identity, host_identity

HERE = host_identity()
GONE = Identity("serve-999999999-dead", HERE, "1")


class FakeIptables:
    """Chains as lists of rule lines, as ``iptables -S`` prints them."""

    def __init__(self, chains: dict[str, list[str]]) -> None:
        self.chains = chains
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        if args[0] == "-S":
            lines = self.chains.get(args[1])
            if lines is None:
                return subprocess.CompletedProcess(args, 1, "", "no chain")
            return subprocess.CompletedProcess(args, 0, "\n".join([f"-N {args[1]}", *lines]), "")
        if args[0] == "-D":
            rule = host_firewall.shlex.join(["-A", *args[1:]])
            self.chains[args[1]].remove(rule)
        return subprocess.CompletedProcess(args, 0, "", "")


def rule(chain: str, identity: Identity, target: str) -> str:
    spec = ["-A", chain, "-s", "169.254.101.0/24"]
    spec += ["-m", "comment", "--comment", host_firewall.comment(identity), "-j", target]
    return host_firewall.shlex.join(spec)


def test_sweep_removes_only_rules_of_owners_gone_from_this_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = Identity("serve-999999999-away", "other-boot/pid:[1]", "1")
    alive = Identity(f"serve-{1}-init", HERE, "")  # pid 1 is alive
    chains = {
        "INPUT": [
            rule("INPUT", GONE, host_firewall.CHAIN),
            rule("INPUT", elsewhere, host_firewall.CHAIN),
            rule("INPUT", alive, host_firewall.CHAIN),
            '-A INPUT -s 10.0.0.0/8 -m comment --comment "not lrun\'s" -j ACCEPT',
        ],
        host_firewall.CHAIN: [
            rule(host_firewall.CHAIN, GONE, "ACCEPT"),
            rule(host_firewall.CHAIN, GONE, "REJECT"),
        ],
    }
    fake = FakeIptables(chains)
    monkeypatch.setattr(host_firewall, "_iptables", fake)
    assert host_firewall.sweep() == [GONE.owner]
    assert len(chains["INPUT"]) == 3 and all(GONE.owner not in r for r in chains["INPUT"])
    assert chains[host_firewall.CHAIN] == []
    assert ("-X", host_firewall.CHAIN) in fake.calls  # the emptied chain is dropped


def test_remove_takes_one_owners_rules_and_keeps_the_chain_others_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = Identity("serve-1-other", HERE, "")
    chains = {
        "INPUT": [rule("INPUT", GONE, host_firewall.CHAIN), rule("INPUT", other, "LRUN-HOST")],
        host_firewall.CHAIN: [rule(host_firewall.CHAIN, GONE, "ACCEPT")],
    }
    chains[host_firewall.CHAIN].append(rule(host_firewall.CHAIN, other, "REJECT"))
    fake = FakeIptables(chains)
    monkeypatch.setattr(host_firewall, "_iptables", fake)
    host_firewall.remove(GONE.owner)
    assert chains["INPUT"] == [rule("INPUT", other, "LRUN-HOST")]
    assert chains[host_firewall.CHAIN] == [rule(host_firewall.CHAIN, other, "REJECT")]
    assert ("-X", host_firewall.CHAIN) not in fake.calls


def test_without_the_privilege_the_warning_says_what_stays_exposed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host_firewall, "unavailable", lambda: "lrun is not running as root")
    monkeypatch.setattr(host_firewall, "listening_ports", lambda: [22, 5432, 40000])
    backend: Any = DockerBackend(client=_NoEngine())
    warning = backend.guard_host("serve-1-ab", 40000, [])
    assert warning is not None
    assert "TCP ports listening now: 22, 5432" in warning and "40000" not in warning
    assert "lrun is not running as root" in warning
    assert "\n" not in warning


class _NoEngine:
    """Stands in for the Docker client: guard_host must not call the engine."""

    api = None


def test_a_new_owners_rules_are_put_in_place_without_checking_for_them_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each rule names its owner, so an owner this process never installed for has none: one
    iptables process per rule, no -C before it. Installed again, each rule is checked first
    and not doubled."""
    fake = FakeIptables({"INPUT": [], host_firewall.CHAIN: []})
    monkeypatch.setattr(host_firewall, "_iptables", fake)
    owner = Identity(f"oneshot-{os.getpid()}-fresh", HERE, "1")
    guarded = [host_firewall.Guarded("169.254.100.0/24", "169.254.100.1", True)]
    host_firewall.install(owner, 4000, guarded)
    first = [call[0] for call in fake.calls]
    assert "-C" not in first
    assert first.count("-I") + first.count("-A") == 6
    fake.calls.clear()
    host_firewall.install(owner, 4000, guarded)  # FakeIptables answers every -C: "there"
    again = [call[0] for call in fake.calls]
    assert again.count("-C") == 6 and "-I" not in again and "-A" not in again
    host_firewall.remove(owner.owner)
