"""Unit tests of Lambda's layer operations and of functions that use layer versions, through the
real router, store and service on the fake engine (the store is reopened to prove versions
survive a restart). AWS's recorded messages are replayed in tests/acceptance/wire_cases.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from orchestrator.api import layer_api, layer_refs
from orchestrator.api.function_api import FunctionApi
from tests.unit.api.test_function_api import ROLE, create_body, ok, scenario, streamed
from tests.unit.api.test_lambda_api import FUNCTIONS, Api, assert_error

LAYERS = "/2018-10-31/layers"
ARN = "arn:aws:lambda:us-east-1:000000000000:layer"


def layer_zip(files: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (files or {"python/greeting.py": "WORD = 'hi'\n"}).items():
            archive.writestr(name, text)
    return buffer.getvalue()


def publish_body(data: bytes | None = None, **extra: Any) -> dict[str, Any]:
    return {"Content": {"ZipFile": base64.b64encode(data or layer_zip()).decode()}, **extra}


async def publish(api: Api, name: str = "sdk", **extra: Any) -> dict[str, Any]:
    published: dict[str, Any] = ok(
        await api("POST", f"{LAYERS}/{name}/versions", publish_body(**extra)), 201
    )
    return published


def test_publish_answers_as_aws_and_versions_only_grow(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        data = layer_zip()
        first = await publish(
            api,
            data=data,
            Description="the SDK",
            LicenseInfo="MIT",
            CompatibleRuntimes=["python3.13", "nodejs22.x"],
            CompatibleArchitectures=["x86_64"],
        )
        assert first["LayerArn"] == f"{ARN}:sdk"
        assert first["LayerVersionArn"] == f"{ARN}:sdk:1" and first["Version"] == 1
        assert first["Description"] == "the SDK" and first["LicenseInfo"] == "MIT"
        assert first["CompatibleRuntimes"] == ["python3.13", "nodejs22.x"]
        assert first["CompatibleArchitectures"] == ["x86_64"]
        assert first["Content"]["CodeSize"] == len(data)
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert first["Content"]["CodeSha256"] == sha
        assert first["CreatedDate"].endswith("+0000")
        # Members not given are left out, as AWS does; empty lists are shown.
        bare = await publish(api, "bare")
        assert set(bare) == {
            "Content",
            "LayerArn",
            "LayerVersionArn",
            "Description",
            "CreatedDate",
            "Version",
        }
        assert bare["Description"] == ""
        empty = await publish(api, "empty", CompatibleRuntimes=[], CompatibleArchitectures=[])
        assert empty["CompatibleRuntimes"] == [] and empty["CompatibleArchitectures"] == []
        # Deleting every version does not reuse their numbers.
        assert (await publish(api))["Version"] == 2
        for number in (1, 2):
            deleted = await api("DELETE", f"{LAYERS}/sdk/versions/{number}")
            assert deleted.status == 204
        assert ok(await api("GET", f"{LAYERS}/sdk/versions"))["LayerVersions"] == []
        assert (await publish(api))["Version"] == 3

    scenario(tmp_path, test)


def test_content_location_downloads_the_zip(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        data = layer_zip({"bin/tool": "#!/bin/sh\n"})
        location = (await publish(api, data=data))["Content"]["Location"]
        assert location.startswith("http://127.0.0.1/lrun/code/")
        path = urlparse(location).path
        downloaded = await api("GET", path, headers={"host": "127.0.0.1:9001"})
        assert downloaded.status == 200 and await streamed(downloaded) == data
        await api("DELETE", f"{LAYERS}/sdk/versions/1")
        assert_error(await api("GET", path), 404, "ResourceNotFoundException")

    scenario(tmp_path, test)


def test_get_list_and_filters(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        await publish(api, CompatibleRuntimes=["python3.13"], CompatibleArchitectures=["x86_64"])
        await publish(api, CompatibleRuntimes=["nodejs22.x"], CompatibleArchitectures=["arm64"])
        await publish(api, "tools")
        got = ok(await api("GET", f"{LAYERS}/sdk/versions/1"))
        assert got["LayerVersionArn"] == f"{ARN}:sdk:1" and "Location" in got["Content"]
        by_arn = ok(await api("GET", LAYERS, query={"find": "LayerVersion", "Arn": f"{ARN}:sdk:2"}))
        assert by_arn["Version"] == 2 and by_arn["CompatibleRuntimes"] == ["nodejs22.x"]
        by_layer_arn = ok(await api("GET", f"{LAYERS}/{ARN}:sdk/versions/1"))
        assert by_layer_arn["Version"] == 1
        versions = ok(await api("GET", f"{LAYERS}/sdk/versions"))["LayerVersions"]
        assert [v["Version"] for v in versions] == [2, 1]  # newest first
        assert "Content" not in versions[0] and "LayerArn" not in versions[0]
        python = ok(
            await api("GET", f"{LAYERS}/sdk/versions", query={"CompatibleRuntime": "python3.13"})
        )
        assert [v["Version"] for v in python["LayerVersions"]] == [1]
        layers = ok(await api("GET", LAYERS))["Layers"]
        assert [(la["LayerName"], la["LatestMatchingVersion"]["Version"]) for la in layers] == [
            ("sdk", 2),
            ("tools", 1),
        ]
        assert layers[0]["LayerArn"] == f"{ARN}:sdk"
        arm = ok(await api("GET", LAYERS, query={"CompatibleArchitecture": "x86_64"}))["Layers"]
        assert [(la["LayerName"], la["LatestMatchingVersion"]["Version"]) for la in arm] == [
            ("sdk", 1)
        ]
        assert ok(await api("GET", f"{LAYERS}/nope/versions")) == {"LayerVersions": []}

    scenario(tmp_path, test)


def test_paging(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        for _ in range(5):
            await publish(api)
        for name in ("a", "b", "c"):
            await publish(api, name)
        seen: list[int] = []
        query: dict[str, str] = {"MaxItems": "2"}
        while True:
            page = ok(await api("GET", f"{LAYERS}/sdk/versions", query=query))
            assert len(page["LayerVersions"]) <= 2
            seen += [v["Version"] for v in page["LayerVersions"]]
            if "NextMarker" not in page:
                break
            query = {"MaxItems": "2", "Marker": page["NextMarker"]}
        assert seen == [5, 4, 3, 2, 1]
        first = ok(await api("GET", LAYERS, query={"MaxItems": "3"}))
        assert [la["LayerName"] for la in first["Layers"]] == ["a", "b", "c"]
        rest = ok(await api("GET", LAYERS, query={"Marker": first["NextMarker"]}))
        assert [la["LayerName"] for la in rest["Layers"]] == ["sdk"] and "NextMarker" not in rest
        bad = await api("GET", LAYERS, query={"Marker": "zzz"})
        assert_error(bad, 400, "InvalidParameterValueException")
        too_many = await api("GET", LAYERS, query={"MaxItems": "51"})
        assert_error(too_many, 400, "ValidationException")

    scenario(tmp_path, test)


def test_errors_are_awss(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        await publish(api)
        missing = await api("GET", f"{LAYERS}/nope/versions/1")
        assert assert_error(missing, 404, "ResourceNotFoundException") == {
            "Type": "User",
            "Message": "The resource you requested does not exist.",
        }
        for number in ("0", "-1"):
            low = await api("GET", f"{LAYERS}/sdk/versions/{number}")
            body = assert_error(low, 400, "InvalidParameterValueException")
            assert body == {"Type": "User", "message": "Layer Version Cannot be less than 1"}
        delete_low = await api("DELETE", f"{LAYERS}/sdk/versions/0")
        assert_error(delete_low, 400, "InvalidParameterValueException")
        assert (await api("DELETE", f"{LAYERS}/nope/versions/1")).status == 204
        unversioned = await api("GET", LAYERS, query={"find": "LayerVersion", "Arn": f"{ARN}:sdk"})
        message = assert_error(unversioned, 400, "ValidationException")["message"]
        assert message.startswith(
            f"1 validation error detected: Value '{ARN}:sdk' at 'arn' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
        )
        bad = await api(
            "POST",
            f"{LAYERS}/x/versions",
            publish_body(
                CompatibleRuntimes=["invalidruntime", "nodejs20.x"],
                CompatibleArchitectures=["invalidarch"],
            ),
        )
        message = assert_error(bad, 400, "ValidationException")["message"]
        assert message.startswith(
            "2 validation errors detected: Value '[invalidruntime, nodejs20.x]' at "
            "'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value "
            "set: [nodejs20.x, python3.14, provided.al2023, "
        )
        assert message.endswith(
            "; Value '[invalidarch]' at 'compatibleArchitectures' failed to satisfy constraint: "
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, "
            "arm64], Member must not be null]"
        )
        foreign = await api(
            "GET", f"{LAYERS}/arn:aws:lambda:us-east-1:123456789012:layer:x/versions/1"
        )
        assert assert_error(foreign, 403, "AccessDeniedException")["Message"] == (
            "User: arn:aws:iam::000000000000:root is not authorized to perform: "
            "lambda:GetLayerVersion on resource: arn:aws:lambda:us-east-1:123456789012:layer:x:1 "
            "because no resource-based policy allows the lambda:GetLayerVersion action"
        )
        elsewhere = await api(
            "GET", f"{LAYERS}/arn:aws:lambda:eu-west-1:000000000000:layer:sdk/versions/1"
        )
        assert_error(elsewhere, 404, "ResourceNotFoundException")
        s3 = await api(
            "POST", f"{LAYERS}/x/versions", {"Content": {"S3Bucket": "bucket", "S3Key": "k"}}
        )
        assert (
            "cannot read a layer from S3"
            in assert_error(s3, 400, "InvalidParameterValueException")["message"]
        )
        no_content = await api("POST", f"{LAYERS}/x/versions", {})
        assert_error(no_content, 400, "ValidationException")
        not_an_object = await api("POST", f"{LAYERS}/x/versions", {"Content": "zip"})
        assert assert_error(not_an_object, 400, "InvalidParameterValueException")["message"] == (
            "Please provide the layer's content: Content.ZipFile (the AWS CLI's --zip-file "
            "fileb://layer.zip)"
        )

    scenario(tmp_path, test)


def test_a_hostile_zip_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        for files in ({"../../escape.txt": "x"}, {"/etc/owned": "x"}):
            refused = await api("POST", f"{LAYERS}/evil/versions", publish_body(layer_zip(files)))
            message = assert_error(refused, 400, "InvalidParameterValueException")["message"]
            assert message.startswith("Could not unzip uploaded file: entry ")
        not_a_zip = await api("POST", f"{LAYERS}/evil/versions", publish_body(b"not a zip"))
        assert_error(not_a_zip, 400, "InvalidParameterValueException")
        assert ok(await api("GET", f"{LAYERS}/evil/versions"))["LayerVersions"] == []
        assert not (tmp_path / "escape.txt").exists()
        root = tmp_path / "state" / "layers"
        assert not root.exists() or list(root.iterdir()) == []

    scenario(tmp_path, test)


def test_the_number_of_layer_versions_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(layer_api, "MAX_LAYER_VERSIONS", 3)

    async def test(api: Api, functions: FunctionApi) -> None:
        for _ in range(3):
            await publish(api)
        refused = await api("POST", f"{LAYERS}/sdk/versions", publish_body())
        message = assert_error(refused, 400, "CodeStorageExceededException")["message"]
        assert "at most 3 layer versions" in message
        await api("DELETE", f"{LAYERS}/sdk/versions/1")
        await publish(api)  # room again

    scenario(tmp_path, test)


def test_versions_and_their_content_survive_a_restart(tmp_path: Path) -> None:
    async def first(api: Api, functions: FunctionApi) -> str:
        return str((await publish(api, Description="kept"))["Content"]["Location"])

    location = scenario(tmp_path, first)

    async def second(api: Api, functions: FunctionApi) -> None:
        got = ok(await api("GET", f"{LAYERS}/sdk/versions/1"))
        assert got["Description"] == "kept" and got["Content"]["Location"] == location
        downloaded = await api("GET", urlparse(location).path)
        assert await streamed(downloaded) == layer_zip()
        assert (await publish(api))["Version"] == 2

    scenario(tmp_path, second)


def test_layer_version_permissions(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        await publish(api)
        policy = f"{LAYERS}/sdk/versions/1/policy"
        none = await api("GET", policy)
        assert assert_error(none, 404, "ResourceNotFoundException")["Message"] == (
            "No policy is associated with the given resource."
        )
        grant = {"StatementId": "s1", "Action": "lambda:GetLayerVersion", "Principal": "*"}
        added = ok(await api("POST", policy, grant), 201)
        assert json.loads(added["Statement"]) == {
            "Sid": "s1",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:GetLayerVersion",
            "Resource": f"{ARN}:sdk:1",
        }
        account = ok(
            await api(
                "POST",
                policy,
                {
                    **grant,
                    "StatementId": "s2",
                    "Principal": "123456789012",
                    "OrganizationId": "o-abcdefghij",
                },
            ),
            201,
        )
        statement = json.loads(account["Statement"])
        assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
        got = ok(await api("GET", policy))
        assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["s1", "s2"]
        assert got["RevisionId"] == account["RevisionId"] != added["RevisionId"]
        again = await api("POST", policy, grant)
        assert assert_error(again, 409, "ResourceConflictException")["message"] == (
            "The statement id (s1) provided already exists. Please provide a new statement id, "
            "or remove the existing statement."
        )
        stale = await api("POST", policy, {**grant, "StatementId": "s3"}, query={"RevisionId": "x"})
        assert_error(stale, 412, "PreconditionFailedException")
        wrong_action = await api("POST", policy, {**grant, "StatementId": "s4", "Action": "*"})
        assert assert_error(wrong_action, 400, "ValidationException")["message"] == (
            "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: lambda:GetLayerVersion"
        )
        no_version = await api("GET", f"{LAYERS}/sdk/versions/2/policy")
        assert assert_error(no_version, 404, "ResourceNotFoundException")["Message"] == (
            f"Layer version {ARN}:sdk:2 does not exist."
        )
        not_there = await api("DELETE", f"{policy}/nope")
        assert assert_error(not_there, 404, "ResourceNotFoundException")["Message"] == (
            "Statement nope is not found in resource policy."
        )
        assert (await api("DELETE", f"{policy}/s1")).status == 204
        left = json.loads(ok(await api("GET", policy))["Policy"])["Statement"]
        assert [s["Sid"] for s in left] == ["s2"]

    scenario(tmp_path, test)


# Functions that use layer versions


def test_a_function_uses_published_versions(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        sdk = await publish(api)
        tools = await publish(api, "tools", data=layer_zip({"bin/tool": "x"}))
        arns = [sdk["LayerVersionArn"], tools["LayerVersionArn"]]
        created = ok(await api("POST", FUNCTIONS, create_body(Layers=arns)), 201)
        expected = [
            {"Arn": sdk["LayerVersionArn"], "CodeSize": sdk["Content"]["CodeSize"]},
            {"Arn": tools["LayerVersionArn"], "CodeSize": tools["Content"]["CodeSize"]},
        ]
        assert created["Layers"] == expected
        got = ok(await api("GET", f"{FUNCTIONS}/made"))
        assert got["Configuration"]["Layers"] == expected
        spec = api.served.service.function("made").spec
        directories = [layer.directory for layer in spec.layers]
        assert all(d is not None and d.parent == tmp_path / "state" / "layers" for d in directories)
        assert (directories[0] / "python" / "greeting.py").is_file()  # type: ignore[operator]
        # Layers: [] takes them away; the configuration no longer shows the member.
        ok(await api("PUT", f"{FUNCTIONS}/made/configuration", {"Layers": []}))
        assert "Layers" not in ok(await api("GET", f"{FUNCTIONS}/made/configuration"))
        assert api.served.service.function("made").spec.layers == ()
        ok(await api("PUT", f"{FUNCTIONS}/made/configuration", {"Layers": arns[:1]}))
        rows = {row["FunctionName"]: row for row in ok(await api("GET", "/lrun/functions"))}
        assert rows["made"]["LayerSources"] == arns[:1]

    scenario(tmp_path, test)


def test_a_deleted_version_stays_for_the_functions_that_use_it(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        sdk = await publish(api)
        ok(await api("POST", FUNCTIONS, create_body(Layers=[sdk["LayerVersionArn"]])), 201)
        directory = api.served.service.function("made").spec.layers[0].directory
        assert (await api("DELETE", f"{LAYERS}/sdk/versions/1")).status == 204
        assert_error(await api("GET", f"{LAYERS}/sdk/versions/1"), 404, "ResourceNotFoundException")
        config = ok(await api("GET", f"{FUNCTIONS}/made/configuration"))
        assert config["Layers"][0]["Arn"] == sdk["LayerVersionArn"]  # as on AWS
        assert directory is not None and directory.is_dir()
        # A new function cannot name it any more.
        refused = await api(
            "POST", FUNCTIONS, create_body("other", Layers=[sdk["LayerVersionArn"]])
        )
        assert_error(refused, 400, "InvalidParameterValueException")
        # Once nothing uses it, its content goes.
        assert (await api("DELETE", f"{FUNCTIONS}/made")).status == 204
        assert not directory.exists()

    scenario(tmp_path, test)


def test_function_layer_errors_are_awss(tmp_path: Path) -> None:
    async def test(api: Api, functions: FunctionApi) -> None:
        one, two = await publish(api), await publish(api)
        arn1, arn2 = one["LayerVersionArn"], two["LayerVersionArn"]

        async def refused(layers: list[str], status: int, kind: str, **body: Any) -> dict[str, Any]:
            response = await api("POST", FUNCTIONS, create_body("x", Layers=layers, **body))
            return assert_error(response, status, kind)

        twice = await refused([arn1, arn2], 400, "InvalidParameterValueException")
        assert twice["message"] == (
            "Two different versions of the same layer are not allowed to be referenced in the "
            f"same function. {arn1} and {arn2} are versions of the same layer."
        )
        six = [f"{ARN}:l{i}:1" for i in range(6)]
        many = await refused(six, 400, "InvalidParameterValueException")
        assert many["message"] == "Cannot reference more than 5 layers."
        region = await refused(
            ["arn:aws:lambda:eu-west-1:000000000000:layer:sdk:1"],
            400,
            "InvalidParameterValueException",
        )
        assert region["message"] == (
            "Layers are not in the same region as the function. Layers are expected to be in "
            "region us-east-1."
        )
        account = await refused(
            ["arn:aws:lambda:us-east-1:123456789012:layer:sdk:1"], 403, "AccessDeniedException"
        )
        assert (
            "lambda:GetLayerVersion on resource: arn:aws:lambda:us-east-1:123456789012"
            in (account["Message"])
        )
        missing = await refused([f"{ARN}:sdk:9"], 400, "InvalidParameterValueException")
        assert missing["message"] == f"Layer version {ARN}:sdk:9 does not exist."
        unversioned = await refused([f"{ARN}:sdk"], 400, "ValidationException")
        assert unversioned["message"].startswith(
            f"1 validation error detected: Value '[{ARN}:sdk]' at 'layers' failed to satisfy "
            "constraint: Member must satisfy constraint: [Member must have length less than or "
            "equal to 2048, Member must have length greater than or equal to 1, Member must "
            "satisfy regular expression pattern: "
        )
        image = await api(
            "POST",
            FUNCTIONS,
            {
                "FunctionName": "img",
                "Role": ROLE,
                "PackageType": "Image",
                "Code": {"ImageUri": "x:latest"},
                "Layers": [arn1],
            },
        )
        assert assert_error(image, 400, "InvalidParameterValueException")["message"] == (
            "Lambda layers are not supported for functions created with container images."
        )
        assert "x" not in api.served.service.functions

    scenario(tmp_path, test)


def test_code_and_layers_together_are_held_to_lambdas_unzipped_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_refs, "MAX_UNZIPPED", 1000)

    async def test(api: Api, functions: FunctionApi) -> None:
        big = await publish(api, data=layer_zip({"python/big.py": "#" * 990}))
        response = await api("POST", FUNCTIONS, create_body(Layers=[big["LayerVersionArn"]]))
        message = assert_error(response, 400, "InvalidParameterValueException")["message"]
        assert message.startswith(
            "Function code combined with layers exceeds the maximum allowed size of 1000 bytes. "
            "The actual size is "
        )
        assert "made" not in api.served.service.functions
        assert list((tmp_path / "state" / "functions").iterdir()) == []  # its code is gone
        ok(await api("POST", FUNCTIONS, create_body()), 201)
        update = await api(
            "PUT", f"{FUNCTIONS}/made/configuration", {"Layers": [big["LayerVersionArn"]]}
        )
        assert_error(update, 400, "InvalidParameterValueException")
        assert api.served.service.function("made").spec.layers == ()

    scenario(tmp_path, test)


def test_published_function_versions_keep_their_layers(tmp_path: Path) -> None:
    """A function version published with a layer version keeps its content after the layer
    version is deleted, even once $LATEST no longer uses it."""

    async def test(api: Api, functions: FunctionApi) -> None:
        sdk = await publish(api)
        ok(await api("POST", FUNCTIONS, create_body(Layers=[sdk["LayerVersionArn"]])), 201)
        service = api.served.service
        latest = service.function("made").latest
        directory = latest.spec.layers[0].directory
        assert directory is not None
        service.put_version("made", "1", latest.spec, latest.revision)
        ok(await api("PUT", f"{FUNCTIONS}/made/configuration", {"Layers": []}))
        assert (await api("DELETE", f"{LAYERS}/sdk/versions/1")).status == 204
        assert (directory / "python" / "greeting.py").is_file()  # version 1 still uses it
        service.remove_version("made", "1")
        await functions.layers_released()  # type: ignore[misc]
        assert not directory.exists()

    scenario(tmp_path, test)
