"""Unit tests of CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction
and GetFunction's code download, through the real router and service on the fake engine. The
store is a real SQLite file, reopened to prove API-created functions survive a restart."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.api.code_package import Packages
from orchestrator.api.function_api import FunctionApi
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.layer_api import LayerApi
from orchestrator.api.layer_refs import LayerCatalog
from orchestrator.api.server import layers_in_use
from orchestrator.events.api_functions import ApiFunctions
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.layer_versions import LayerVersions
from orchestrator.events.store import Store
from orchestrator.http_server import Request, Response
from tests.fakes import fake_service
from tests.unit.api.test_lambda_api import (
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
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def a_zip(text: str = "def handler(event, context):\n    return 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def create_body(name: str = "made", **extra: Any) -> dict[str, Any]:
    return {
        "FunctionName": name,
        "Runtime": "python3.13",
        "Role": ROLE,
        "Handler": "app.echo",
        "Code": {"ZipFile": base64.b64encode(a_zip()).decode()},
        **extra,
    }


def scenario(tmp_path: Path, test: Callable[[Api, FunctionApi], Awaitable[T]]) -> T:
    path = write_manifest(tmp_path)

    async def main() -> T:
        async with fake_service(path, HANDLERS) as served:
            store = Store(tmp_path / "state" / "lrun.db")
            store.open()
            try:
                meta = FunctionMeta(store)
                await meta.load()
                configs = InvokeConfigs(store)
                api = LambdaApi(served.service, None, configs, meta)
                records = ApiFunctions(store)
                api.api_functions = records
                functions = FunctionApi(
                    api, records, tmp_path / "state" / "functions", meta, configs
                )
                functions.add_routes()
                versions = LayerVersions(store)
                await versions.load()
                layers = tmp_path / "state" / "layers"
                catalog = LayerCatalog(versions, Packages(layers), layers / "local")
                api.layer_catalog = functions.catalog = catalog
                layer_api = LayerApi(
                    api,
                    versions,
                    catalog.packages,
                    functions.downloads,
                    partial(layers_in_use, served.service, records),
                )
                layer_api.add_routes()
                functions.layers_released = layer_api.collect
                await functions.restore()
                await layer_api.restore()
                return await test(Api(api, served), functions)
            finally:
                store.close()

    return run(main(), TIMEOUT_S)


async def streamed(response: Response) -> bytes:
    """A streamed response's body, read whole (as its client would)."""
    assert response.stream is not None and response.body == b""
    return b"".join([piece async for piece in response.stream])


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return json.loads(response.body) if response.body else None


def test_create_answers_pending_then_reads_active_and_it_invokes(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        created = ok(await api("POST", FUNCTIONS, create_body(Description="d")), 201)
        assert created["State"] == "Pending"
        assert created["StateReasonCode"] == "Creating"
        assert created["FunctionArn"].endswith(":function:made")
        assert created["Role"] == ROLE
        assert created["Runtime"] == "python3.13"
        assert created["CodeSize"] == len(a_zip())
        assert created["Description"] == "d"
        assert created["MemorySize"] == 128 and created["Timeout"] == 3
        assert "Environment" not in created  # AWS omits it when none was given
        with_env = ok(
            await api("POST", FUNCTIONS, create_body("empty", Environment={"Variables": {}})), 201
        )
        assert with_env["Environment"] == {"Variables": {}}  # and shows it once given
        got = ok(await api("GET", f"{FUNCTIONS}/made"))
        assert got["Configuration"]["State"] == "Active"
        assert got["Configuration"]["LastUpdateStatus"] == "Successful"
        assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
        listed = ok(await api("GET", FUNCTIONS))
        assert "made" in [f["FunctionName"] for f in listed["Functions"]]
        answer = ok(await api("POST", invoke_path("made"), {"n": 1}))
        assert answer["event"] == {"n": 1}

    scenario(tmp_path, test)


def test_get_function_location_downloads_the_zip(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        got = ok(await api("GET", f"{FUNCTIONS}/made", headers={"Host": "127.0.0.1:9001"}))
        location = got["Code"]["Location"]
        assert location.startswith("http://127.0.0.1:9001/lrun/code/")
        path = location.removeprefix("http://127.0.0.1:9001")
        downloaded = await api("GET", path)
        assert downloaded.status == 200
        assert await streamed(downloaded) == a_zip()
        assert downloaded.headers["Content-Type"] == "application/zip"
        # Any other token names nothing, and cannot name a path.
        assert_error(await api("GET", "/lrun/code/" + "0" * 32), 404, "ResourceNotFoundException")
        assert_error(await api("GET", "/lrun/code/..%2Flrun.db"), 404, "ResourceNotFoundException")

    scenario(tmp_path, test)


def test_update_configuration_and_code_change_what_runs(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        ok(await api("POST", invoke_path("made"), {}))
        first = api.served.service.functions["made"].revision
        changed = ok(
            await api(
                "PUT",
                f"{FUNCTIONS}/made/configuration",
                {"MemorySize": 256, "Environment": {"Variables": {"AB": "1"}}, "Timeout": 7},
            )
        )
        assert changed["LastUpdateStatus"] == "InProgress"
        assert changed["MemorySize"] == 256 and changed["Timeout"] == 7
        got = ok(await api("GET", f"{FUNCTIONS}/made/configuration"))
        assert got["LastUpdateStatus"] == "Successful"
        assert got["Environment"] == {"Variables": {"AB": "1"}}
        state = api.served.service.functions["made"]
        assert state.spec.memory == 256 and dict(state.spec.environment) == {"AB": "1"}
        assert state.revision != first
        # New code: a new directory, a new revision; the old environment is not reused.
        before = got["RevisionId"]
        new_zip = a_zip("# new\n")
        body = {"ZipFile": base64.b64encode(new_zip).decode(), "RevisionId": before}
        updated = ok(await api("PUT", f"{FUNCTIONS}/made/code", body))
        assert updated["LastUpdateStatus"] == "InProgress"
        assert updated["CodeSize"] == len(new_zip)
        assert updated["RevisionId"] != before
        spec = api.served.service.functions["made"].spec
        assert spec.code is not None and (spec.code / "app.py").read_text() == "# new\n"
        since = len(api.served.backend.calls)
        answer = ok(await api("POST", invoke_path("made"), {"n": 2}))
        assert answer["event"] == {"n": 2}
        # The warm environment of the old code did not serve it: a new one was started.
        assert "run" in api.served.backend.engine_calls(since)
        # A stale RevisionId is refused.
        stale = await api("PUT", f"{FUNCTIONS}/made/code", body)
        assert_error(stale, 412, "PreconditionFailedException")

    scenario(tmp_path, test)


def test_delete_removes_the_function_and_its_record(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body(Tags={"team": "a"})), 201)
        assert ok(await api("GET", f"{FUNCTIONS}/made"))["Tags"] == {"team": "a"}
        ok(await api("DELETE", f"{FUNCTIONS}/made"), 204)
        missing = assert_error(
            await api("GET", f"{FUNCTIONS}/made"), 404, "ResourceNotFoundException"
        )
        assert missing["Message"].endswith(":function:made")
        assert "made" not in functions.records.records
        again = await api("DELETE", f"{FUNCTIONS}/made")
        assert_error(again, 404, "ResourceNotFoundException")
        # Made again under the same name, it has none of the old one's tags.
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        assert "Tags" not in ok(await api("GET", f"{FUNCTIONS}/made"))

    scenario(tmp_path, test)


def test_api_functions_and_their_code_survive_a_restart(tmp_path: Path) -> None:
    async def first(api: Api, functions: FunctionApi) -> str:
        created = ok(await api("POST", FUNCTIONS, create_body(MemorySize=512)), 201)
        return str(created["CodeSha256"])

    sha = scenario(tmp_path, first)

    async def second(api: Api, functions: FunctionApi) -> None:
        got = ok(await api("GET", f"{FUNCTIONS}/made"))
        assert got["Configuration"]["CodeSha256"] == sha
        assert got["Configuration"]["MemorySize"] == 512
        ok(await api("POST", invoke_path("made"), {}))

    scenario(tmp_path, second)


def test_errors_are_awss(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        again = assert_error(
            await api("POST", FUNCTIONS, create_body()), 409, "ResourceConflictException"
        )
        assert again["message"] == "Function already exist: made"
        manifest_one = await api("POST", FUNCTIONS, create_body("echo"))
        assert json.loads(manifest_one.body)["message"] == "Function already exist: echo"
        for method, path in (
            ("PUT", f"{FUNCTIONS}/echo/configuration"),
            ("PUT", f"{FUNCTIONS}/echo/code"),
            ("DELETE", f"{FUNCTIONS}/echo"),
        ):
            body = {"MemorySize": 256} if method == "PUT" else b""
            managed = assert_error(await api(method, path, body), 409, "ResourceConflictException")
            assert "managed by the manifest" in managed["message"]
            assert "lrun.yaml" in managed["message"]
        unknown = await api("PUT", f"{FUNCTIONS}/nope/configuration", {"MemorySize": 256})
        assert_error(unknown, 404, "ResourceNotFoundException")
        assert json.loads(unknown.body)["Message"].endswith(":function:nope")
        no_handler = await api("POST", FUNCTIONS, {**create_body("x"), "Handler": None})
        body = assert_error(no_handler, 400, "InvalidParameterValueException")
        assert body["message"] == (
            "Runtime and Handler are mandatory parameters for functions created with deployment "
            "packages."
        )
        bad_runtime = await api("POST", FUNCTIONS, create_body("x", Runtime="python9"))
        # Recorded on AWS (LocalStack's test_lambda_api snapshot, test_create_lambda_exceptions).
        assert assert_error(bad_runtime, 400, "InvalidParameterValueException")["message"] == (
            "Value python9 at 'runtime' failed to satisfy constraint: Member must satisfy enum "
            "value set: [nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, "
            "nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, "
            "ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, "
            "dotnet6, nodejs18.x, provided.al2, java8.al2] or be a valid ARN"
        )
        dotnet = await api("POST", FUNCTIONS, create_body("x", Runtime="dotnet8"))
        assert (
            "lrun has no image for runtime dotnet8"
            in assert_error(dotnet, 400, "InvalidParameterValueException")["message"]
        )
        arn = "arn:aws:lambda:us-east-1:000000000000:layer:l:1"
        layers = await api("POST", FUNCTIONS, create_body("x", Layers=[arn]))
        assert assert_error(layers, 400, "InvalidParameterValueException")["message"] == (
            f"Layer version {arn} does not exist."
        )
        publish_to = await api("POST", FUNCTIONS, create_body("x", PublishTo="LATEST_PUBLISHED"))
        assert (
            "PublishTo LATEST_PUBLISHED is for functions with a capacity provider"
            in assert_error(publish_to, 400, "InvalidParameterValueException")["message"]
        )
        reserved = await api(
            "POST", FUNCTIONS, create_body("x", Environment={"Variables": {"AWS_REGION": "x"}})
        )
        assert assert_error(reserved, 400, "InvalidParameterValueException")["message"].endswith(
            "Reserved keys used in this request: AWS_REGION"
        )
        memory = await api("POST", FUNCTIONS, create_body("x", MemorySize=20000))
        assert_error(memory, 400, "InvalidParameterValueException")
        no_role = {k: v for k, v in create_body("x").items() if k != "Role"}
        assert_error(await api("POST", FUNCTIONS, no_role), 400, "ValidationException")
        image = await api(
            "POST",
            FUNCTIONS,
            {
                "FunctionName": "x",
                "Role": ROLE,
                "PackageType": "Image",
                "Code": {"ImageUri": "nope:1"},
            },
        )
        assert assert_error(image, 400, "InvalidParameterValueException")["message"] == (
            "Source image nope:1 does not exist. Provide a valid source image."
        )
        latest = await api("DELETE", f"{FUNCTIONS}/made", query={"Qualifier": "$LATEST"})
        assert_error(latest, 400, "InvalidParameterValueException")
        bomb = await api(
            "POST", FUNCTIONS, {**create_body("x"), "Code": {"ZipFile": "bm90IGEgemlw"}}
        )
        assert assert_error(bomb, 400, "InvalidParameterValueException")["message"] == (
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        )
        assert "x" not in api.served.service.functions

    scenario(tmp_path, test)


def test_the_number_of_api_functions_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr("orchestrator.api.function_api.MAX_FUNCTIONS", 2)

    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body("one")), 201)
        ok(await api("POST", FUNCTIONS, create_body("two")), 201)
        third = await api("POST", FUNCTIONS, create_body("three"))
        assert (
            "at most 2 functions"
            in assert_error(third, 400, "CodeStorageExceededException")["message"]
        )
        assert "three" not in api.served.service.functions

    scenario(tmp_path, test)


def test_code_is_unpacked_where_lrun_says_whatever_the_name(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        # A full ARN as the name: the directory is still lrun's token, under functions/.
        arn = "arn:aws:lambda:us-east-1:000000000000:function:byarn"
        ok(await api("POST", FUNCTIONS, create_body(arn)), 201)
        code = api.served.service.functions["byarn"].spec.code
        assert code is not None and code.parent == tmp_path / "state" / "functions"
        assert len(code.name) == 32

    scenario(tmp_path, test)


def test_a_request_for_the_upload_route_may_be_larger_than_the_server_limit(
    tmp_path: Path,
) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        router = api.api.router
        assert router.body_limit("POST", FUNCTIONS) == 69_905_067
        assert router.body_limit("PUT", f"{FUNCTIONS}/made/code") == 69_905_067
        assert router.body_limit("POST", invoke_path("made")) is None
        request = Request("POST", FUNCTIONS, {}, {}, b"", "127.0.0.1")
        refused = await router.dispatch_too_large(request, 70_000_000, 69_905_067)
        body = assert_error(refused, 413, "RequestEntityTooLargeException")
        assert body["Message"] == (
            "Request must be smaller than 69905067 bytes for the CreateFunction operation"
        )

    scenario(tmp_path, test)


def test_lrun_functions_lists_both_kinds_with_their_source(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        rows = {row["FunctionName"]: row for row in ok(await api("GET", "/lrun/functions"))}
        assert rows["made"]["Source"] == "api"
        assert rows["echo"]["Source"] == str(tmp_path / "lrun.yaml")
        assert rows["made"]["LayerSources"] == [] and rows["made"]["State"] == "Active"

    scenario(tmp_path, test)


def test_logging_config_is_set_merged_shown_and_kept_as_on_aws(tmp_path: Path) -> None:
    """CreateFunction and UpdateFunctionConfiguration take LoggingConfig; the function's
    environments get it (a new spec, so new environments) and GetFunctionConfiguration shows it
    as AWS does (LocalStack's TestLoggingConfig snapshots, recorded on AWS 25-11-2025)."""
    group = "/aws/lambda/made"

    async def first(api: Api, functions: FunctionApi) -> None:
        created = ok(
            await api("POST", FUNCTIONS, create_body(LoggingConfig={"LogFormat": "JSON"})), 201
        )
        assert created["LoggingConfig"] == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "INFO",
            "LogGroup": group,
        }
        spec = api.served.service.functions["made"].spec
        assert spec.logging.runtime_variables()["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
        path = f"{FUNCTIONS}/made/configuration"
        ok(await api("PUT", path, {"LoggingConfig": {"ApplicationLogLevel": "DEBUG"}}))
        got = ok(await api("GET", path))["LoggingConfig"]
        assert got["ApplicationLogLevel"] == "DEBUG" and got["SystemLogLevel"] == "INFO"
        refused = await api(
            "PUT", path, {"LoggingConfig": {"LogFormat": "Text", "SystemLogLevel": "WARN"}}
        )
        body = assert_error(refused, 400, "InvalidParameterValueException")
        assert body["message"] == (
            'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from '
            'your request or change the LogFormat to "JSON" and try again.'
        )
        bad = await api("PUT", path, {"LoggingConfig": {"LogFormat": "XML"}})
        assert_error(bad, 400, "ValidationException")
        ok(await api("PUT", path, {"LoggingConfig": {"LogGroup": "/team/app"}}))

    scenario(tmp_path, first)

    async def after_restart(api: Api, functions: FunctionApi) -> None:
        got = ok(await api("GET", f"{FUNCTIONS}/made/configuration"))["LoggingConfig"]
        assert got == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "DEBUG",
            "SystemLogLevel": "INFO",
            "LogGroup": "/team/app",
        }
        path = f"{FUNCTIONS}/made/configuration"
        ok(await api("PUT", path, {"LoggingConfig": {"LogFormat": "Text"}}))
        got = ok(await api("GET", path))["LoggingConfig"]
        assert got == {"LogFormat": "Text", "LogGroup": "/team/app"}

    scenario(tmp_path, after_restart)
