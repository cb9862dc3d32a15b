"""Host firewall rules that keep functions away from the host's own services (DESIGN D9).

A container reaches the host at its network's gateway and at every other address the host has,
so any service listening on 0.0.0.0 (a database, a dev server, lrun's own API) is one connect
away; on Lambda a function reaches no such thing. Where lrun may (root, with ``iptables``), each
lrun process puts rules in the INPUT chain for the subnets of its networks that let through only
the Runtime APIs listening on the gateway addresses (and, on the public network, DNS, which
Docker's resolver forwards from the container), and removes them when it ends. Every rule
carries a comment naming its owner the way container labels do, so the rules of a crashed
process are found and removed by the next one.

Rules of several lrun processes share one chain: each process inserts its ACCEPT rules at the
top and appends its REJECT rules at the end, so no process's REJECT shadows another's ACCEPT.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.sandbox.backend import LABEL_OWNER
from orchestrator.sandbox.ownership import (
    LABEL_HOST,
    LABEL_OWNER_STARTED,
    Identity,
    host_identity,
    judge,
)

CHAIN = "LRUN-HOST"
_installed: set[str] = set()  # owners this process has put rules in place for
_TAG = "lrun"
_TIMEOUT_S = 30.0
# The comment's words and the labels they stand for.
_KEYS = {"owner": LABEL_OWNER, "host": LABEL_HOST, "started": LABEL_OWNER_STARTED}


@dataclass(frozen=True)
class Guarded:
    """One network whose containers are kept off the host."""

    subnet: str
    gateway: str
    dns: bool  # whether DNS to the host stays open (the public network)


class FirewallError(Exception):
    """The rules could not be put in place; the message says why."""


def unavailable() -> str | None:
    """Why lrun cannot manage the host firewall here, or None if it can."""
    if shutil.which("iptables") is None:
        return "iptables is not installed"
    if os.geteuid() != 0:
        return "lrun is not running as root"
    done = _iptables("-S", "INPUT")
    if done.returncode != 0:
        return f"iptables failed: {done.stderr.strip() or done.returncode}"
    return None


def listening_ports() -> list[int]:
    """TCP ports something on this host listens on at a non-loopback address (or all of them)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A: LISTEN
                continue
            address, _, port = fields[1].partition(":")
            if not _loopback(address):
                ports.add(int(port, 16))
    return sorted(ports)


def _loopback(address: str) -> bool:
    """Whether a /proc/net/tcp address (hex, in host byte order per 32-bit word) is loopback."""
    if len(address) == 8:
        return address.endswith("7F")  # 127.0.0.0/8, little-endian
    return address in ("00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def comment(identity: Identity) -> str:
    return f"{_TAG} owner={identity.owner} host={identity.host} started={identity.started}"


def install(identity: Identity, port: int, networks: Sequence[Guarded]) -> None:
    """Put ``identity``'s rules in place (again: existing ones are kept, not doubled)."""
    # An owner this process has not installed for has no rules yet (each rule names its
    # owner): nothing to check for, one iptables process per rule fewer.
    check = identity.owner in _installed
    tag = ["-m", "comment", "--comment", comment(identity)]
    _iptables("-N", CHAIN)  # exists already when another lrun runs
    for net in networks:
        source = ["-s", net.subnet]
        opened = [[*source, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"]]
        if net.dns:
            opened += [[*source, "-p", proto, "--dport", "53"] for proto in ("udp", "tcp")]
        for match in opened:
            _ensure("-I", CHAIN, [*match, *tag, "-j", "ACCEPT"], check)
        to_gateway = [*source, "-d", net.gateway, "-p", "tcp"]
        try:
            # A listener bound to the gateway address itself, not to 0.0.0.0: the Runtime API of
            # every lrun process on this host, whatever its version, and nothing a user did not
            # deliberately put on lrun's address.
            _ensure("-I", CHAIN, [*to_gateway, "-m", "socket", *tag, "-j", "ACCEPT"], check)
        except FirewallError:  # no socket match in this kernel: this process's port only
            _ensure("-I", CHAIN, [*to_gateway, "--dport", str(port), *tag, "-j", "ACCEPT"], check)
        reject = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
        _ensure("-A", CHAIN, [*source, *tag, *reject], check)
        # Not the host's own traffic to its gateway addresses: that comes from them, over lo.
        _ensure("-I", "INPUT", [*source, "!", "-i", "lo", *tag, "-j", CHAIN], check)
    _installed.add(identity.owner)


def remove(owner: str) -> None:
    """Remove every rule ``owner`` put in place; the chain too once no rule is left in it."""
    _installed.discard(owner)
    for chain, spec, labels in _rules():
        if labels.get(LABEL_OWNER) == owner:
            _iptables("-D", chain, *spec)
    _drop_chain_if_unused()


def sweep() -> list[str]:
    """Remove the rules of owners provably gone from this host; says whose it removed."""
    here = host_identity()
    gone: set[str] = set()
    for chain, spec, labels in _rules():
        verdict = judge(labels, here)
        if verdict is not None and verdict.orphan:
            _iptables("-D", chain, *spec)
            gone.add(labels[LABEL_OWNER])
    _drop_chain_if_unused()
    return sorted(gone)


def _rules() -> list[tuple[str, list[str], dict[str, str]]]:
    """lrun's rules: (chain, rule spec without the chain, owner labels), jumps first."""
    found = []
    for chain in ("INPUT", CHAIN):
        listed = _iptables("-S", chain)
        for line in listed.stdout.splitlines():
            words = shlex.split(line)
            if len(words) < 2 or words[0] != "-A" or "--comment" not in words:
                continue
            note = words[words.index("--comment") + 1].split()
            if not note or note[0] != _TAG:
                continue
            labels = {
                _KEYS[key]: value
                for key, _, value in (word.partition("=") for word in note[1:])
                if key in _KEYS
            }
            found.append((chain, words[2:], labels))
    return found


def _drop_chain_if_unused() -> None:
    # Fails, harmlessly, while any rule is in it or any jump points at it: another lrun's.
    listed = _iptables("-S", CHAIN)
    if listed.returncode == 0 and all(
        not line.startswith("-A") for line in listed.stdout.split("\n")
    ):
        _iptables("-X", CHAIN)


def _ensure(action: str, chain: str, spec: list[str], check: bool = True) -> None:
    if check and _iptables("-C", chain, *spec).returncode == 0:
        return
    where = [chain, "1"] if action == "-I" else [chain]
    done = _iptables(action, *where, *spec)
    if done.returncode != 0 and chain == CHAIN:
        # Another lrun may have dropped the (then empty) chain just now: make it again.
        _iptables("-N", CHAIN)
        done = _iptables(action, *where, *spec)
    if done.returncode != 0:
        raise FirewallError(f"iptables {action} {chain} failed: {done.stderr.strip()}")


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["iptables", "-w", *args], capture_output=True, text=True, timeout=_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FirewallError(f"iptables could not be run: {exc}") from exc
