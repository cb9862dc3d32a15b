"""Unit tests for runtime image names: the repository prefix every image lrun makes carries."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from orchestrator.errors import RuntimeImageError
from orchestrator.sandbox import images
from tests.fakes import FakeBackend


def test_images_are_under_lrun_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRUN_IMAGE_PREFIX", raising=False)
    rt = images.RUNTIMES["python3.13"]
    assert rt.image == "lrun/python3.13:latest"
    assert images.base_image(rt) == f"lrun/base-trixie:{images.base_digest(rt)}"


def test_the_prefix_variable_renames_runtimes_and_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", "lrun-rt")
    for name, rt in images.RUNTIMES.items():
        assert rt.image == f"lrun-rt/{name}:latest"
        assert images.base_image(rt) == f"lrun-rt/base-{rt.suite}:{images.base_digest(rt)}"
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", "me/lrun.dev")
    assert images.RUNTIMES["provided"].image == "me/lrun.dev/provided:latest"


@pytest.mark.parametrize("bad", ["Lrun", "lrun/", "-lrun", "lrun:1", "a b", "lrun//x"])
def test_a_bad_prefix_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", bad)
    with pytest.raises(RuntimeImageError, match="LRUN_IMAGE_PREFIX=.*is not a valid image"):
        _ = images.RUNTIMES["provided"].image


def mmdebstrap_command(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """The mmdebstrap command line the base build of runtime NAME runs."""
    seen: list[list[str]] = []
    monkeypatch.setattr(images, "_run", lambda command, what: seen.append(command))
    images._mmdebstrap(images.RUNTIMES[name], Path("/nowhere/rootfs.tar"))
    (command,) = seen
    return command


def test_only_the_expired_snapshot_suite_skips_apt_s_valid_until_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    option = '--aptopt=Acquire::Check-Valid-Until "false"'
    sid = mmdebstrap_command(monkeypatch, "python3.14")
    assert option in sid and sid[-2:] == ["sid", "/nowhere/rootfs.tar"]
    for name, rt in images.RUNTIMES.items():
        if rt.suite != "sid":
            assert not any("Valid-Until" in arg for arg in mmdebstrap_command(monkeypatch, name))


def python_hook(monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    hooks = [
        arg.removeprefix("--customize-hook=")
        for arg in mmdebstrap_command(monkeypatch, name)
        if "usr/bin/python3" in arg
    ]
    assert len(hooks) == 1, hooks
    return hooks[0]


@pytest.mark.parametrize("name", [n for n in images.RUNTIMES if n.startswith("python")])
def test_the_base_build_stops_when_the_suite_s_python3_is_another_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    """The hook runs as mmdebstrap runs it (sh -c, the root as $1) on a root whose python3
    points at the right release, then at another."""
    hook = python_hook(monkeypatch, name)
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    python3 = tmp_path / "usr" / "bin" / "python3"
    python3.symlink_to(f"python{images.RUNTIMES[name].python}")
    ok = subprocess.run(["sh", "-c", hook, "exec", str(tmp_path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    python3.unlink()
    python3.symlink_to("python3.9")
    wrong = subprocess.run(
        ["sh", "-c", hook, "exec", str(tmp_path)], capture_output=True, text=True
    )
    assert wrong.returncode == 1
    suite = images.RUNTIMES[name].suite
    assert wrong.stderr.startswith(f"lrun: python3 in Debian {suite} is not python3."), wrong


def test_runtimes_without_python_get_no_python_check(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, rt in images.RUNTIMES.items():
        if rt.python is None:
            assert not any("python3" in a for a in mmdebstrap_command(monkeypatch, name))


def test_java21_compiles_in_a_build_stage_whose_base_adds_the_jdk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The JDK is only in BUILD_BASE (the Dockerfile's build stage): the image runs on the JRE."""
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", "lrun-test")
    java = images.RUNTIMES["java21"]
    assert "openjdk-21-jdk-headless" not in java.packages
    build_base = images.build_base_image(java)
    assert build_base is not None and build_base != images.base_image(java)
    assert build_base.startswith("lrun-test/base-trixie:")
    assert all(images.build_base_image(rt) is None for rt in images.RUNTIMES.values() if rt != java)

    made: list[str] = []

    def mmdebstrap(rt: images.RuntimeDef, tarball: Path) -> None:
        made.append(",".join(rt.packages))
        tarball.write_bytes(b"rootfs")

    monkeypatch.setattr(images, "_mmdebstrap", mmdebstrap)
    backend = FakeBackend()
    built: list[dict[str, str]] = []
    original = backend.build

    def build(context: Path, name: str, args: Mapping[str, str], labels: Mapping[str, str]) -> None:
        built.append(dict(args))
        original(context, name, args, labels)

    monkeypatch.setattr(backend, "build", build)
    assert images.build(backend, "java21", progress=lambda step: None)
    assert made == [
        "openjdk-21-jre-headless,libjackson2-databind-java,libjackson2-modules-java8-java",
        "openjdk-21-jre-headless,libjackson2-databind-java,libjackson2-modules-java8-java,"
        "openjdk-21-jdk-headless",
    ]
    assert built == [{"BASE": images.base_image(java), "BUILD_BASE": build_base, "NODE_MAJOR": ""}]
    assert images.is_current(backend, "java21")
