"""Unit tests of the manifest's provisioned_concurrency kept as Lambda allows it: a version lrun
publishes and the alias ``live`` on it, moved when the function changes, through the real router
and service on the fake engine (orchestrator.api.manifest_versions)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import manifest
from orchestrator.api.manifest_versions import ManifestVersions
from tests.fakes import eventually, fake_service
from tests.unit.api.test_function_api import ok
from tests.unit.api.test_lambda_api import ARN, FUNCTIONS, TIMEOUT_S, assert_error
from tests.unit.api.test_version_api import ALL_HANDLERS, VERSIONS, Wired, invoke, quiet, wired
from tests.unit.rawhttp import run

T = TypeVar("T")
ALIASES = FUNCTIONS + "/{}/aliases"


def write(tmp_path: Path, settings: str) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# handlers come from the fake registry\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(
        "functions:\n"
        f"  warm: {{runtime: python3.13, code: ./code, handler: app.one, {settings}}}\n"
        "  plain: {runtime: python3.13, code: ./code, handler: app.two}\n"
    )
    return path


def scenario(
    tmp_path: Path,
    settings: str,
    test: Callable[[Wired, ManifestVersions, Path], Awaitable[T]],
    restarts: int = 0,
) -> T:
    path = write(tmp_path, settings)

    async def main() -> T:
        result: Any = None
        for _ in range(restarts + 1):
            async with fake_service(path, ALL_HANDLERS) as served:
                async with wired(served, tmp_path / "state") as w:
                    kept = ManifestVersions(w.versions, lambda message: None)
                    kept.watch()
                    kept.sync_all()
                    await kept.settled()
                    result = await test(w, kept, path)
                    await kept.settled()
                    await quiet(served)
        return result  # type: ignore[no-any-return]

    return run(main(), TIMEOUT_S * (restarts + 1))


def live_of(w: Wired, name: str = "warm") -> Any:
    return w.versions.versions.of(name).aliases.get("live")


def test_provisioned_concurrency_is_a_version_behind_the_alias_live(tmp_path: Path) -> None:
    async def test(w: Wired, kept: ManifestVersions, path: Path) -> None:
        alias = ok(await w("GET", ALIASES.format("warm") + "/live"))
        assert (alias["FunctionVersion"], alias["AliasArn"]) == ("1", f"{ARN}:warm:live")
        config = ok(
            await w(
                "GET",
                "/2019-09-30/functions/warm/provisioned-concurrency",
                query={"Qualifier": "live"},
            )
        )
        assert config["RequestedProvisionedConcurrentExecutions"] == 2
        await eventually(
            lambda: (
                [(v.version, v.state) for v in w.api.served.service.environments()]
                == [("1", "provisioned")] * 2
            ),
            timeout=3,
        )
        body, executed = await invoke(w, "warm", "live")
        assert (executed, body["init_type"]) == ("1", "provisioned-concurrency")
        # Unqualified is $LATEST, on demand, as on Lambda.
        body, executed = await invoke(w, "warm")
        assert (executed, body["init_type"]) == ("$LATEST", "on-demand")
        assert w.api.served.service.trigger_qualifier("warm") == "live"
        assert w.api.served.service.trigger_qualifier("plain") is None
        assert live_of(w, "plain") is None
        # The alias is the manifest's: the API may not change it.
        moved = await w("PUT", ALIASES.format("warm") + "/live", {"FunctionVersion": "$LATEST"})
        assert (
            "provisioned_concurrency"
            in assert_error(moved, 409, "ResourceConflictException")["message"]
        )
        gone = await w("DELETE", ALIASES.format("warm") + "/live")
        assert_error(gone, 409, "ResourceConflictException")

    scenario(tmp_path, "provisioned_concurrency: 2", test)


def test_an_edit_publishes_again_moves_live_and_drops_the_old_version(tmp_path: Path) -> None:
    async def test(w: Wired, kept: ManifestVersions, path: Path) -> None:
        first = w.versions.versions.of("warm").versions[1]
        assert first.managed and first.snapshot is not None
        copy = w.state / "versions" / first.snapshot
        assert copy.is_dir()
        service = w.api.served.service
        path.write_text(path.read_text().replace("handler: app.one,", "handler: app.three,"))
        service.load(manifest.load(path))
        await kept.settled()
        assert live_of(w).version == "2"
        assert sorted(w.versions.versions.of("warm").versions) == [2]  # 1 was lrun's, unused
        body, executed = await invoke(w, "warm", "live")
        assert (body["handler"], executed) == ("app.three", "2")
        # A version someone else points at stays.
        ok(await w("POST", ALIASES.format("warm"), {"Name": "keep", "FunctionVersion": "2"}), 201)
        path.write_text(path.read_text().replace("handler: app.three,", "handler: app.one,"))
        service.load(manifest.load(path))
        await kept.settled()
        assert live_of(w).version == "3"
        assert sorted(w.versions.versions.of("warm").versions) == [2, 3]

    scenario(tmp_path, "provisioned_concurrency: 1", test)


def test_no_provisioned_concurrency_any_more_removes_live(tmp_path: Path) -> None:
    async def test(w: Wired, kept: ManifestVersions, path: Path) -> None:
        assert live_of(w) is not None
        write(tmp_path, "memory: 256")
        w.api.served.service.load(manifest.load(path))
        await kept.settled()
        assert live_of(w) is None
        assert w.versions.versions.of("warm").versions == {}
        assert w.versions.versions.of("warm").provisioned == {}
        await eventually(lambda: w.api.served.backend.live() == [], timeout=3)

    scenario(tmp_path, "provisioned_concurrency: 1", test)


def test_a_restart_keeps_the_same_version_for_the_same_code(tmp_path: Path) -> None:
    seen: list[list[int]] = []

    async def test(w: Wired, kept: ManifestVersions, path: Path) -> None:
        seen.append(sorted(w.versions.versions.of("warm").versions))
        assert live_of(w).version == "1"
        listed = ok(await w("GET", VERSIONS.format("warm")))["Versions"]
        assert [v["Version"] for v in listed] == ["$LATEST", "1"]
        assert json.loads(json.dumps(listed[1]))["Description"] == (
            "published by lrun for provisioned_concurrency"
        )

    scenario(tmp_path, "provisioned_concurrency: 1", test, restarts=1)
    assert seen == [[1], [1]]


def test_an_alias_live_made_through_the_api_is_left_alone(tmp_path: Path) -> None:
    notes: list[str] = []

    async def test(w: Wired, kept: ManifestVersions, path: Path) -> None:
        ok(await w("POST", VERSIONS.format("plain")), 201)
        ok(await w("POST", ALIASES.format("plain"), {"Name": "live", "FunctionVersion": "1"}), 201)
        path.write_text(
            path.read_text().replace(
                "handler: app.two}", "handler: app.two, provisioned_concurrency: 1}"
            )
        )
        kept._on_event = notes.append  # noqa: SLF001
        w.api.served.service.load(manifest.load(path))
        await kept.settled()
        assert not live_of(w, "plain").managed
        assert w.versions.versions.of("plain").provisioned == {}
        assert any("made through the API is in the way" in n for n in notes), notes

    scenario(tmp_path, "memory: 128", test)
