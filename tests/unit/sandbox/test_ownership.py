"""Which containers are provably orphaned on this host: only this host's, with their owner gone."""

from __future__ import annotations

import os
import subprocess

from orchestrator.sandbox.backend import LABEL_OWNER
from orchestrator.sandbox.ownership import (
    LABEL_HOST,
    LABEL_OWNER_STARTED,
    host_identity,
    identify,
    judge,
    owner_pid,
    process_started,
)

HERE = "boot-1/pid:[4026531836]"


def labels(owner: str, host: str = HERE, started: str = "100") -> dict[str, str]:
    return {LABEL_OWNER: owner, LABEL_HOST: host, LABEL_OWNER_STARTED: started}


def processes(**started: str) -> dict[int, str]:
    return {int(pid.lstrip("p")): value for pid, value in started.items()}


def test_a_gone_owner_on_this_host_is_an_orphan() -> None:
    verdict = judge(labels("serve-42-ab"), HERE, {}.get)
    assert verdict is not None and verdict.orphan and verdict.checked
    assert "serve-42-ab is gone" in verdict.reason


def test_a_running_owner_on_this_host_is_not() -> None:
    verdict = judge(labels("serve-42-ab"), HERE, processes(p42="100").get)
    assert verdict is not None and not verdict.orphan and verdict.checked


def test_a_reused_pid_does_not_keep_an_orphan_alive() -> None:
    verdict = judge(labels("serve-42-ab", started="100"), HERE, processes(p42="999").get)
    assert verdict is not None and verdict.orphan
    assert "later process" in verdict.reason


def test_an_unreadable_start_time_counts_as_the_same_process() -> None:
    verdict = judge(labels("serve-42-ab", started="100"), HERE, processes(p42="").get)
    assert verdict is not None and not verdict.orphan


def test_another_hosts_container_is_left_whatever_its_pid() -> None:
    other = "boot-2/pid:[4026531836]"
    verdict = judge(labels("serve-42-ab", host=other), HERE, {}.get)
    assert verdict is not None and not verdict.orphan and not verdict.checked
    assert other in verdict.reason


def test_another_pid_namespace_is_another_host() -> None:
    verdict = judge(labels("serve-42-ab", host="boot-1/pid:[4026532000]"), HERE, {}.get)
    assert verdict is not None and not verdict.orphan and not verdict.checked


def test_a_container_without_host_identity_is_left() -> None:
    verdict = judge({LABEL_OWNER: "serve-42-ab"}, HERE, {}.get)
    assert verdict is not None and not verdict.orphan and not verdict.checked
    assert "older lrun" in verdict.reason


def test_nothing_is_provably_ours_where_the_host_cannot_say() -> None:
    verdict = judge(labels("serve-42-ab", host=""), "", {}.get)
    assert verdict is not None and not verdict.orphan


def test_without_an_lrun_owner_there_is_nothing_to_judge() -> None:
    assert judge({}, HERE, {}.get) is None
    assert judge({LABEL_OWNER: "someone"}, HERE, {}.get) is None
    assert owner_pid("serve-12-ab") == 12
    assert owner_pid("serve-x-ab") is None
    assert owner_pid("other-12-ab") is None


def test_this_hosts_identity_is_boot_id_and_pid_namespace() -> None:
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    assert host_identity() == f"{boot}/{os.readlink('/proc/self/ns/pid')}"


def test_process_start_times_tell_processes_apart() -> None:
    first = subprocess.Popen(["sleep", "30"])
    try:
        started = process_started(first.pid)
        assert started and started.isdigit()
        assert process_started(first.pid) == started
        mine = identify(f"test-{first.pid}-ab")
        assert mine.labels() == {
            LABEL_OWNER: f"test-{first.pid}-ab",
            LABEL_HOST: host_identity(),
            LABEL_OWNER_STARTED: started,
        }
    finally:
        first.kill()
        first.wait()
    assert process_started(first.pid) is None
    verdict = judge(mine.labels(), host_identity())
    assert verdict is not None and verdict.orphan
