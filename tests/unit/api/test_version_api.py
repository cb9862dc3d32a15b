"""Unit tests of PublishVersion, ListVersionsByFunction, Publish on CreateFunction and
UpdateFunctionCode, qualified GetFunction/GetFunctionConfiguration/Invoke and DeleteFunction with a
qualifier, through the real router and service on the fake engine; the store is a real SQLite file,
reopened to prove versions survive a restart. Expected errors are AWS's as recorded on AWS
(LocalStack's AWS-validated snapshot tests/aws/services/lambda_/test_lambda_api.snapshot.json,
TestLambdaVersions and TestLambdaFunction.test_delete_on_nonexisting_version)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.api import version_api
from orchestrator.api.alias_api import AliasApi
from orchestrator.api.function_api import FunctionApi
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.policy import add_policy_routes
from orchestrator.api.provisioned_api import ProvisionedApi
from orchestrator.api.version_api import VersionApi
from orchestrator.events.api_functions import ApiFunctions
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.queues import Queues
from orchestrator.events.store import Store
from orchestrator.events.versions import Versions
from tests.fakes import FakeContext, Handler, Served, eventually, fake_service
from tests.unit.api.test_function_api import a_zip, create_body, ok, streamed
from tests.unit.api.test_lambda_api import (
    ARN,
    FUNCTIONS,
    HANDLERS,
    TIMEOUT_S,
    Api,
    assert_error,
    invoke_path,
    write_manifest,
)
from tests.unit.rawhttp import run

T = TypeVar("T")


def which(event: Any, context: FakeContext) -> dict[str, Any]:
    return {
        "handler": context.env["_HANDLER"],
        "version": context.env["AWS_LAMBDA_FUNCTION_VERSION"],
        "arn": context.invoked_function_arn,
        "init_type": context.env["AWS_LAMBDA_INITIALIZATION_TYPE"],
    }


RECORDED: list[tuple[str, Any]] = []  # (version, event) of each run of app.record


def record(event: Any, context: FakeContext) -> dict[str, Any]:
    RECORDED.append((context.env["AWS_LAMBDA_FUNCTION_VERSION"], event))
    return {"recorded": True}


ALL_HANDLERS: dict[str, Handler] = {
    **HANDLERS,
    "app.one": which,
    "app.two": which,
    "app.three": which,
    "app.record": record,
}


@dataclass
class Wired:
    """The API with versions, aliases and provisioned concurrency, as `lrun serve` wires it."""

    api: Api
    functions: FunctionApi
    versions: VersionApi
    state: Path

    async def __call__(
        self,
        method: str,
        path: str,
        body: bytes | object = b"",
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        return await self.api(method, path, body, headers, query)


@contextlib.asynccontextmanager
async def wired(served: Served, state: Path) -> AsyncIterator[Wired]:
    store = Store(state / "lrun.db")
    store.open()
    try:
        meta = FunctionMeta(store)
        await meta.load()
        configs = InvokeConfigs(store)
        api = LambdaApi(served.service, None, configs, meta)
        records = ApiFunctions(store)
        api.api_functions = records
        functions = FunctionApi(api, records, state / "functions", meta, configs)
        functions.add_routes()
        versions = VersionApi(api, Versions(store, state), state / "functions", functions.busy)
        versions.add_routes()
        AliasApi(versions).add_routes()
        ProvisionedApi(versions).add_routes()
        add_policy_routes(api, meta)
        functions.versions = versions
        versions.release_code = functions.remove_code_later
        await versions.versions.load()
        await functions.restore()
        await versions.restore()
        events = EventQueue(store, served.service, api.effective_config, Queues(store).send_in)
        api.events = events
        dispatcher = asyncio.ensure_future(events.run())
        try:
            yield Wired(Api(api, served), functions, versions, state)
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)
            await events.close(1.0)
    finally:
        store.close()


def scenario(
    tmp_path: Path, test: Callable[[Wired], Awaitable[T]], restarts: int = 0, **options: Any
) -> T:
    """``test`` against the wired API; with ``restarts``, called again that many times, each
    time on a new service and a reopened store (a restart of `lrun serve`)."""
    path = write_manifest(tmp_path)

    async def main() -> T:
        result: Any = None
        for _ in range(restarts + 1):
            async with fake_service(path, ALL_HANDLERS, **options) as served:
                async with wired(served, tmp_path / "state") as w:
                    result = await test(w)
                    await quiet(served)
        return result  # type: ignore[no-any-return]

    return run(main(), TIMEOUT_S * (restarts + 1))


VERSIONS = FUNCTIONS + "/{}/versions"


async def quiet(served: Served) -> None:
    """Wait until no environment is starting: the fake engine's containers must not be
    launched while the test's event loop ends (a start begun in a thread finishes after it)."""
    await eventually(
        lambda: all(v.state != "initialising" for v in served.service.environments()),
        timeout=3,
        what="every environment started",
    )


async def create(w: Wired, name: str = "made", handler: str = "app.one", **extra: Any) -> Any:
    return ok(await w("POST", FUNCTIONS, create_body(name, Handler=handler, **extra)), 201)


async def set_handler(w: Wired, handler: str, name: str = "made") -> None:
    ok(await w("PUT", f"{FUNCTIONS}/{name}/configuration", {"Handler": handler}))


async def invoke(w: Wired, name: str, qualifier: str | None = None) -> tuple[Any, str]:
    query = {"Qualifier": qualifier} if qualifier else None
    response = await w("POST", invoke_path(name), {}, query=query)
    assert response.status == 200, response.body
    return json.loads(response.body), response.headers["X-Amz-Executed-Version"]


def test_publish_list_invoke_and_delete_versions(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await create(w, Description="fn")
        first = ok(await w("POST", VERSIONS.format("made"), {"Description": "first"}), 201)
        assert (first["Version"], first["FunctionArn"]) == ("1", f"{ARN}:made:1")
        assert (first["Description"], first["State"], first["LastUpdateStatus"]) == (
            "first",
            "Active",
            "Successful",
        )
        # Nothing changed since: AWS answers the same version again.
        again = ok(await w("POST", VERSIONS.format("made")), 201)
        assert (again["Version"], again["RevisionId"]) == ("1", first["RevisionId"])
        await set_handler(w, "app.two")
        second = ok(await w("POST", VERSIONS.format("made")), 201)
        assert (second["Version"], second["Description"], second["Handler"]) == (
            "2",
            "fn",
            "app.two",
        )
        listed = ok(await w("GET", VERSIONS.format("made")))["Versions"]
        assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]
        assert [v["FunctionArn"] for v in listed] == [
            f"{ARN}:made:$LATEST",
            f"{ARN}:made:1",
            f"{ARN}:made:2",
        ]
        assert not {"State", "LastUpdateStatus", "RuntimeVersionConfig"} & set(listed[1])
        assert listed[1]["Handler"] == "app.one"
        # Each runs its own code and configuration, and says which ran.
        assert await invoke(w, "made", "1") == (
            {
                "handler": "app.one",
                "version": "1",
                "arn": f"{ARN}:made:1",
                "init_type": "on-demand",
            },
            "1",
        )
        body, executed = await invoke(w, "made")
        assert (body["handler"], executed) == ("app.two", "$LATEST")
        assert (await invoke(w, "made:2"))[1] == "2"
        config = ok(await w("GET", f"{FUNCTIONS}/made/configuration", query={"Qualifier": "1"}))
        assert config == {k: v for k, v in first.items()}
        got = ok(await w("GET", f"{FUNCTIONS}/made:1"))
        assert got["Configuration"]["FunctionArn"] == f"{ARN}:made:1"
        token = got["Code"]["Location"].rsplit("/", 1)[1]
        download = await w("GET", f"/lrun/code/{token}")
        assert await streamed(download) == a_zip()
        # Deleting a version: the others stay; numbers are never given again.
        ok(await w("DELETE", f"{FUNCTIONS}/made", query={"Qualifier": "1"}), 204)
        listed = ok(await w("GET", VERSIONS.format("made")))["Versions"]
        assert [v["Version"] for v in listed] == ["$LATEST", "2"]
        missing = await w("POST", invoke_path("made"), {}, query={"Qualifier": "1"})
        assert assert_error(missing, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:made:1"
        )
        kept = await w("GET", f"/lrun/code/{token}")
        assert kept.status == 200 and await streamed(kept) == a_zip()  # $LATEST's zip still
        await set_handler(w, "app.three")
        third = ok(await w("POST", VERSIONS.format("made")), 201)
        assert third["Version"] == "3"

    scenario(tmp_path, test)


def test_publish_checks_revision_and_code_sha_as_aws(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        created = await create(w)
        latest = ok(await w("GET", f"{FUNCTIONS}/made"))["Configuration"]
        stale = await w("POST", VERSIONS.format("made"), {"RevisionId": "wrong"})
        assert assert_error(stale, 412, "PreconditionFailedException") == {
            "Type": "User",
            "message": "The Revision Id provided does not match the latest Revision Id. Call "
            "the GetFunction/GetAlias API to retrieve the latest Revision Id",
        }
        sha = await w("POST", VERSIONS.format("made"), {"CodeSha256": "nope"})
        assert assert_error(sha, 400, "InvalidParameterValueException") == {
            "Type": "User",
            "message": f"CodeSHA256 (nope) is different from current CodeSHA256 in $LATEST "
            f"({created['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST.",
        }
        published = await w(
            "POST",
            VERSIONS.format("made"),
            {"RevisionId": latest["RevisionId"], "CodeSha256": created["CodeSha256"]},
        )
        assert ok(published, 201)["Version"] == "1"
        # Publishing changes $LATEST's RevisionId, as on AWS.
        after = ok(await w("GET", f"{FUNCTIONS}/made"))["Configuration"]
        assert after["RevisionId"] != latest["RevisionId"]
        gone = await w("POST", VERSIONS.format("nope"))
        assert assert_error(gone, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:nope:$LATEST"
        )
        listing = await w("GET", VERSIONS.format("nope"))
        assert assert_error(listing, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:nope"
        )

    scenario(tmp_path, test)


def test_publish_on_create_and_on_update_code(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        created = await create(w, Publish=True)
        # As recorded on AWS: the version is named, the ARN is not qualified.
        assert (created["Version"], created["FunctionArn"], created["State"]) == (
            "1",
            f"{ARN}:made",
            "Pending",
        )
        code = base64.b64encode(a_zip("# two\n")).decode()
        updated = ok(await w("PUT", f"{FUNCTIONS}/made/code", {"ZipFile": code, "Publish": True}))
        assert (updated["Version"], updated["FunctionArn"], updated["State"]) == (
            "2",
            f"{ARN}:made:2",
            "Pending",
        )
        assert "LastUpdateStatus" not in updated
        assert updated["CodeSha256"] != created["CodeSha256"]
        two = ok(await w("GET", f"{FUNCTIONS}/made", query={"Qualifier": "2"}))["Configuration"]
        assert (two["State"], two["CodeSha256"]) == ("Active", updated["CodeSha256"])
        # UpdateFunctionConfiguration has no Publish in AWS's model: it is ignored, as AWS does.
        ok(await w("PUT", f"{FUNCTIONS}/made/configuration", {"Timeout": 9, "Publish": True}))
        listed = ok(await w("GET", VERSIONS.format("made")))["Versions"]
        assert [v["Version"] for v in listed] == ["$LATEST", "1", "2"]

    scenario(tmp_path, test)


def test_delete_function_with_a_qualifier_as_aws(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await create(w, Publish=True)
        latest = await w("DELETE", f"{FUNCTIONS}/made", query={"Qualifier": "$LATEST"})
        assert assert_error(latest, 400, "InvalidParameterValueException")["message"] == (
            "$LATEST version cannot be deleted without deleting the function."
        )
        # A version that does not exist: no error, as recorded on AWS.
        ok(await w("DELETE", f"{FUNCTIONS}/made", query={"Qualifier": "1233"}), 204)
        nothing = await w("DELETE", f"{FUNCTIONS}/nope", query={"Qualifier": "1233"})
        assert assert_error(nothing, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:nope"
        )
        ok(
            await w("POST", f"{FUNCTIONS}/made/aliases", {"Name": "live", "FunctionVersion": "1"}),
            201,
        )
        alias = await w("DELETE", f"{FUNCTIONS}/made", query={"Qualifier": "live"})
        assert assert_error(alias, 400, "InvalidParameterValueException")["message"] == (
            "Deletion of aliases is not currently supported."
        )
        used = await w("DELETE", f"{FUNCTIONS}/made:1")
        assert assert_error(used, 409, "ResourceConflictException")["message"] == (
            "Unable to delete version because the following aliases reference it: [live]"
        )
        # Deleting the function takes its versions and aliases; one made anew starts at 1.
        ok(await w("DELETE", f"{FUNCTIONS}/made"), 204)
        assert w.versions.versions.of("made").versions == {}
        await create(w, handler="app.two")
        again = ok(await w("POST", VERSIONS.format("made")), 201)
        assert again["Version"] == "1" and again["Handler"] == "app.two"
        assert ok(await w("GET", f"{FUNCTIONS}/made/aliases")) == {"Aliases": []}

    scenario(tmp_path, test)


def test_versions_survive_a_restart(tmp_path: Path) -> None:
    runs: list[int] = []

    async def test(w: Wired) -> None:
        runs.append(1)
        if len(runs) == 1:
            await create(w, Publish=True)
            await set_handler(w, "app.two")
            return
        assert (await invoke(w, "made", "1"))[0]["handler"] == "app.one"
        assert (await invoke(w, "made"))[0]["handler"] == "app.two"
        assert ok(await w("POST", VERSIONS.format("made")), 201)["Version"] == "2"

    scenario(tmp_path, test, restarts=1)
    assert len(runs) == 2


def test_a_manifest_function_is_published_as_a_copy_of_its_code(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        published = ok(await w("POST", VERSIONS.format("echo"), {"Description": "v1"}), 201)
        assert published["Version"] == "1" and published["Description"] == "v1"
        version = w.versions.versions.of("echo").versions[1]
        assert version.spec.code is not None and version.snapshot is not None
        assert version.spec.code.is_relative_to(w.state / "versions")
        assert (version.spec.code / "app.py").read_text() == (
            "# handlers come from the fake registry\n"
        )
        # An edit of the project's code is $LATEST's, never the version's.
        (tmp_path / "code" / "app.py").write_text("# edited\n")
        assert (version.spec.code / "app.py").read_text().startswith("# handlers")
        assert (await invoke(w, "echo", "1"))[1] == "1"
        # The function stays the manifest's: changing it through the API is still refused.
        refused = await w("PUT", f"{FUNCTIONS}/echo/configuration", {"Timeout": 5})
        assert_error(refused, 409, "ResourceConflictException")
        ok(await w("DELETE", f"{FUNCTIONS}/echo", query={"Qualifier": "1"}), 204)
        assert w.versions.versions.of("echo").versions == {}

    scenario(tmp_path, test)


def test_a_version_copy_stops_at_lambdas_unzipped_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.api import snapshots

    monkeypatch.setattr(snapshots, "MAX_UNZIPPED", 10)

    async def test(w: Wired) -> None:
        (tmp_path / "code" / "big.bin").write_bytes(b"x" * 11)
        refused = await w("POST", VERSIONS.format("echo"))
        assert assert_error(refused, 400, "InvalidParameterValueException")["message"] == (
            "Unzipped size must be smaller than 10 bytes"
        )
        assert list((w.state / "versions").iterdir()) == []  # nothing half-copied is kept

    scenario(tmp_path, test)


def test_published_versions_stop_at_the_servers_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(version_api, "MAX_VERSIONS", 3)

    async def test(w: Wired) -> None:
        await create(w)
        for handler in ("app.two", "app.three", "app.one"):
            ok(await w("POST", VERSIONS.format("made")), 201)
            await set_handler(w, handler)
        refused = await w("POST", VERSIONS.format("made"))
        body = assert_error(refused, 400, "CodeStorageExceededException")
        assert "at most 3 published versions" in body["message"]
        assert [v for v in w.versions.versions.of("made").versions] == [1, 2, 3]

    scenario(tmp_path, test)
