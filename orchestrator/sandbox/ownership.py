"""Who owns a container (or a firewall rule), and whether that owner is provably gone.

An owner is one lrun process: ``<kind>-<pid>-<random>``. A pid means something only in one process
table, and the engine may be shared by several (a remote ``DOCKER_HOST``, lrun in a container,
CI jobs on one socket), so what lrun starts also carries the host identity (boot id and pid
namespace) and the owner's start time. Only something marked as this host's whose pid is gone, or
now belongs to a later process (pid reuse), is an orphan; anything else is left and reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sandbox.backend import LABEL_OWNER

LABEL_HOST = "lrun.host"  # "<boot id>/<pid namespace>" of the owner
LABEL_OWNER_STARTED = "lrun.owner-started"  # the owner's start time, clock ticks after boot
OWNER_KINDS = ("serve", "oneshot", "test")

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Identity:
    """An owner as it is written on what it starts."""

    owner: str
    host: str  # "" when this system does not say (no /proc): then nothing is provably ours
    started: str  # "" when unknown

    def labels(self) -> dict[str, str]:
        return {LABEL_OWNER: self.owner, LABEL_HOST: self.host, LABEL_OWNER_STARTED: self.started}


@dataclass(frozen=True)
class Verdict:
    orphan: bool
    checked: bool  # whether the owner could be checked from here at all
    reason: str  # why it is removed, or why it is left


def host_identity() -> str:
    """This boot of this machine, and this pid namespace: where a pid names one process."""
    try:
        boot = _BOOT_ID.read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot); None if there is no such process,
    "" if it exists but its start time cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None if not _exists(pid) else ""
    except OSError:
        return "" if _exists(pid) else None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(owner: str) -> int | None:
    """The process named in an owner label (``kind-pid-random``), if it is one."""
    parts = owner.split("-")
    if len(parts) != 3 or parts[0] not in OWNER_KINDS or not parts[1].isdigit():
        return None
    return int(parts[1])


def identify(owner: str) -> Identity:
    pid = owner_pid(owner)
    started = process_started(pid) if pid is not None else None
    return Identity(owner, host_identity(), started or "")


def judge(
    labels: Mapping[str, str],
    here: str,
    started: Callable[[int], str | None] = process_started,
) -> Verdict | None:
    """Whether what carries ``labels`` is provably orphaned on host ``here``; None when it has
    no lrun owner at all (then it is not lrun's to judge)."""
    owner = labels.get(LABEL_OWNER, "")
    pid = owner_pid(owner)
    if pid is None:
        return None
    host = labels.get(LABEL_HOST, "")
    if not host:
        return Verdict(False, False, f"owner {owner} did not record its host (an older lrun)")
    if not here or host != here:
        return Verdict(
            False,
            False,
            f"owner {owner} runs on another host or pid namespace ({host}), not this one",
        )
    now = started(pid)
    if now is None:
        return Verdict(True, True, f"owner {owner} is gone")
    recorded = labels.get(LABEL_OWNER_STARTED, "")
    if recorded and now and recorded != now:
        return Verdict(
            True, True, f"owner {owner} is gone (pid {pid} now belongs to a later process)"
        )
    return Verdict(False, True, f"owner {owner} is running")
