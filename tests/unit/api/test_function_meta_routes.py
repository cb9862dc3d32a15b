"""Unit tests of the routes for what Lambda keeps beside a function: tags, its resource-based
policy, code-signing and recursion settings. Driven through the real router and
service on the fake engine; the store is a real SQLite file, reopened to prove durability."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.api.function_configs import add_function_config_routes
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.policy import add_policy_routes
from orchestrator.api.tags import add_tag_routes
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.store import Store
from tests.fakes import fake_service
from tests.unit.api.test_lambda_api import (
    ARN,
    FUNCTIONS,
    HANDLERS,
    TIMEOUT_S,
    Api,
    assert_error,
    write_manifest,
)
from tests.unit.rawhttp import run

T = TypeVar("T")
TAGS = "/2017-03-31/tags/"
POLICY = FUNCTIONS + "/{}/policy"


def scenario(tmp_path: Path, test: Callable[[Api], Awaitable[T]], tags: str = "") -> T:
    path = write_manifest(tmp_path)
    if tags:  # echo declares these tags in the manifest
        path.write_text(path.read_text().replace("says it back,", f"says it back, tags: {tags},"))

    async def main() -> T:
        async with fake_service(path, HANDLERS) as served:
            store = Store(tmp_path / "state" / "lrun.db")
            store.open()
            try:
                meta = FunctionMeta(store)
                await meta.load()
                api = LambdaApi(served.service, None, InvokeConfigs(store), meta)
                add_tag_routes(api, meta)
                add_policy_routes(api, meta)
                add_function_config_routes(api, meta)
                return await test(Api(api, served))
            finally:
                store.close()

    return run(main(), TIMEOUT_S)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, response.body
    return json.loads(response.body) if response.body else None


# Tags


def test_tag_list_untag_lifecycle_and_get_function_shows_them(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        arn = f"{TAGS}{ARN}:echo"
        assert ok(await api("GET", arn)) == {"Tags": {}}
        before = ok(await api("GET", f"{FUNCTIONS}/echo"))
        assert "Tags" not in before  # AWS leaves the member out when there are none
        ok(await api("POST", arn, {"Tags": {"A": "a", "B": "b", "C": "c"}}), 204)
        ok(await api("POST", arn, {"Tags": {"C": "c2", "D": "d"}}), 204)
        assert ok(await api("GET", arn)) == {"Tags": {"A": "a", "B": "b", "C": "c2", "D": "d"}}
        after = ok(await api("GET", f"{FUNCTIONS}/echo"))
        assert after["Tags"] == {"A": "a", "B": "b", "C": "c2", "D": "d"}
        # Tagging changes the RevisionId, as on AWS.
        assert after["Configuration"]["RevisionId"] != before["Configuration"]["RevisionId"]
        removed = await api("DELETE", arn, query={"tagKeys": "A"})
        ok(removed, 204)
        assert ok(await api("GET", arn)) == {"Tags": {"B": "b", "C": "c2", "D": "d"}}

    scenario(tmp_path, test)


def test_untag_takes_every_repeated_tag_key(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        arn = f"{TAGS}{ARN}:echo"
        ok(await api("POST", arn, {"Tags": {"A": "a", "B": "b", "C": "c"}}), 204)
        request_path = arn
        from orchestrator.http_server import Request

        request = Request(
            "DELETE",
            request_path,
            {"tagKeys": "B"},
            {},
            b"",
            "127.0.0.1",
            raw_query="tagKeys=A&tagKeys=B&tagKeys=nope",
        )
        ok(await api.api.router.dispatch(request), 204)
        assert ok(await api("GET", arn)) == {"Tags": {"C": "c"}}

    scenario(tmp_path, test)


def test_manifest_tags_show_and_api_changes_to_them_are_kept(tmp_path: Path) -> None:
    arn = f"{TAGS}{ARN}:echo"

    async def first(api: Api) -> None:
        assert ok(await api("GET", arn)) == {"Tags": {"team": "core", "stage": "dev"}}
        assert ok(await api("GET", f"{FUNCTIONS}/echo"))["Tags"] == {"team": "core", "stage": "dev"}
        ok(await api("POST", arn, {"Tags": {"stage": "prod", "owner": "ana"}}), 204)
        ok(await api("DELETE", arn, query={"tagKeys": "team"}), 204)
        assert ok(await api("GET", arn)) == {"Tags": {"stage": "prod", "owner": "ana"}}

    async def second(api: Api) -> None:  # a restart: the manifest's team stays removed
        assert ok(await api("GET", arn)) == {"Tags": {"stage": "prod", "owner": "ana"}}
        ok(await api("POST", arn, {"Tags": {"team": "web"}}), 204)
        assert ok(await api("GET", arn))["Tags"]["team"] == "web"

    scenario(tmp_path, first, tags="{team: core, stage: dev}")
    scenario(tmp_path, second, tags="{team: core, stage: dev}")


def test_tag_errors_are_aws_s(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        missing = assert_error(
            await api("POST", f"{TAGS}{ARN}:nope", {"Tags": {"A": "a"}}),
            404,
            "ResourceNotFoundException",
        )
        assert missing == {"Type": "User", "Message": f"Function not found: {ARN}:nope"}
        qualified = assert_error(
            await api("POST", f"{TAGS}{ARN}:echo:$LATEST", {"Tags": {"A": "a"}}),
            400,
            "InvalidParameterValueException",
        )
        assert qualified["message"] == (
            "Tags on function aliases and versions are not supported. Please specify a "
            "function ARN."
        )
        bad = assert_error(await api("GET", f"{TAGS}arn:aws:something"), 400, "ValidationException")
        assert bad["message"].startswith(
            "1 validation error detected: Value 'arn:aws:something' at 'resource' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: arn:(aws"
        )
        no_keys = assert_error(await api("DELETE", f"{TAGS}{ARN}:echo"), 400, "ValidationException")
        assert no_keys == {
            "message": "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
            "constraint: Member must not be null"
        }
        empty = assert_error(
            await api("POST", f"{TAGS}{ARN}:echo", {"Tags": {}}),
            400,
            "InvalidParameterValueException",
        )
        assert empty["message"] == "An error occurred and the request cannot be processed."
        many = {f"k{i}": "v" for i in range(51)}
        over = assert_error(
            await api("POST", f"{TAGS}{ARN}:echo", {"Tags": many}),
            400,
            "InvalidParameterValueException",
        )
        assert over["message"] == "Number of tags exceeds resource tag limit."
        elsewhere = "arn:aws:lambda:eu-west-1:000000000000:function:echo"
        region = assert_error(
            await api("GET", f"{TAGS}{elsewhere}"), 404, "ResourceNotFoundException"
        )
        assert region["Message"] == (
            "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
        )
        uuid = f"{'0' * 8}-0000-0000-0000-{'0' * 12}"
        esm = f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid}"
        mapping = assert_error(await api("GET", f"{TAGS}{esm}"), 404, "ResourceNotFoundException")
        assert mapping["Message"] == f"Event source mapping not found: {esm}"
        assert ok(await api("GET", f"{TAGS}{ARN}:echo")) == {"Tags": {}}  # nothing was kept

    scenario(tmp_path, test)


def test_tags_and_policy_survive_a_restart(tmp_path: Path) -> None:
    async def first(api: Api) -> None:
        ok(await api("POST", f"{TAGS}{ARN}:echo", {"Tags": {"team": "core"}}), 204)
        body = {
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        }
        ok(await api("POST", POLICY.format("echo"), body), 201)
        loop = {"RecursiveLoop": "Allow"}
        ok(await api("PUT", "/2024-08-31/functions/echo/recursion-config", loop))

    async def second(api: Api) -> None:
        assert ok(await api("GET", f"{TAGS}{ARN}:echo")) == {"Tags": {"team": "core"}}
        policy = json.loads(ok(await api("GET", POLICY.format("echo")))["Policy"])
        assert [s["Sid"] for s in policy["Statement"]] == ["s3"]
        recursion = ok(await api("GET", "/2024-08-31/functions/echo/recursion-config"))
        assert recursion == {"RecursiveLoop": "Allow"}

    scenario(tmp_path, first)
    scenario(tmp_path, second)


# Permissions


def test_add_permission_get_policy_remove_permission(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        nothing = assert_error(
            await api("GET", POLICY.format("echo")), 404, "ResourceNotFoundException"
        )
        assert nothing == {"Type": "User", "Message": "The resource you requested does not exist."}
        added = ok(
            await api(
                "POST",
                POLICY.format("echo"),
                {
                    "StatementId": "s3",
                    "Action": "lambda:InvokeFunction",
                    "Principal": "s3.amazonaws.com",
                    "SourceArn": "arn:aws:s3:::my-bucket",
                    "SourceAccount": "000000000000",
                },
            ),
            201,
        )
        statement = {
            "Sid": "s3",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": f"{ARN}:echo",
            "Condition": {
                "StringEquals": {"AWS:SourceAccount": "000000000000"},
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
            },
        }
        assert json.loads(added["Statement"]) == statement
        assert added["Statement"] == json.dumps(statement, separators=(",", ":"))
        got = ok(await api("GET", POLICY.format("echo")))
        assert json.loads(got["Policy"]) == {
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [statement],
        }
        config = ok(await api("GET", f"{FUNCTIONS}/echo/configuration"))
        assert got["RevisionId"] == config["RevisionId"]  # the function's, as on AWS
        duplicate = assert_error(
            await api(
                "POST",
                POLICY.format("echo"),
                {"StatementId": "s3", "Action": "lambda:InvokeFunction", "Principal": "*"},
            ),
            409,
            "ResourceConflictException",
        )
        assert duplicate == {
            "Type": "User",
            "message": "The statement id (s3) provided already exists. Please provide a new "
            "statement id, or remove the existing statement.",
        }
        stale = assert_error(
            await api("DELETE", POLICY.format("echo") + "/s3", query={"RevisionId": "old"}),
            412,
            "PreconditionFailedException",
        )
        assert stale["message"].startswith("The Revision Id provided does not match")
        unknown = assert_error(
            await api("DELETE", POLICY.format("echo") + "/nope"), 404, "ResourceNotFoundException"
        )
        assert unknown["Message"] == "Statement nope is not found in resource policy."
        removed = await api(
            "DELETE", POLICY.format("echo") + "/s3", query={"RevisionId": got["RevisionId"]}
        )
        ok(removed, 204)
        gone = assert_error(
            await api("DELETE", POLICY.format("echo") + "/s3"), 404, "ResourceNotFoundException"
        )
        assert gone["Message"] == "No policy is associated with the given resource."

    scenario(tmp_path, test)


def test_add_permission_principals_and_conditions(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        async def added(sid: str, **fields: Any) -> dict[str, Any]:
            body = {"StatementId": sid, "Action": "lambda:InvokeFunction", **fields}
            made: dict[str, Any] = json.loads(
                ok(await api("POST", POLICY.format("echo"), body), 201)["Statement"]
            )
            return made

        assert (await added("acct", Principal="123456789012"))["Principal"] == {
            "AWS": "arn:aws:iam::123456789012:root"
        }
        assert (await added("all", Principal="*"))["Principal"] == "*"
        url = await added(
            "url",
            Principal="*",
            FunctionUrlAuthType="NONE",
            PrincipalOrgID="o-1234567890",
            SourceAccount="000000000000",
        )
        assert url["Condition"] == {
            "StringEquals": {
                "AWS:SourceAccount": "000000000000",
                "lambda:FunctionUrlAuthType": "NONE",
                "aws:PrincipalOrgID": "o-1234567890",
            }
        }
        invalid = assert_error(
            await api(
                "POST",
                POLICY.format("echo"),
                {"StatementId": "x", "Action": "lambda:InvokeFunction", "Principal": "nobody"},
            ),
            400,
            "InvalidParameterValueException",
        )
        assert invalid["message"] == (
            "The provided principal was invalid. Please check the principal and try again."
        )

    scenario(tmp_path, test)


def test_add_permission_errors_are_aws_s(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        base = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
        sid = assert_error(
            await api("POST", POLICY.format("echo"), {**base, "StatementId": "example.com"}),
            400,
            "ValidationException",
        )
        assert sid == {
            "message": "1 validation error detected: Value 'example.com' at 'statementId' "
            "failed to satisfy constraint: Member must satisfy regular expression pattern: "
            "([a-zA-Z0-9-_]+)"
        }
        body = {**base, "StatementId": "s"}
        latest = assert_error(
            await api("POST", POLICY.format("echo"), body, query={"Qualifier": "$LATEST"}),
            400,
            "InvalidParameterValueException",
        )
        assert latest["message"] == "We currently do not support adding policies for $LATEST."
        missing = assert_error(
            await api("POST", POLICY.format("nope"), body), 404, "ResourceNotFoundException"
        )
        assert missing["Message"] == f"Function not found: {ARN}:nope"
        alias = assert_error(
            await api("POST", POLICY.format("echo"), body, query={"Qualifier": "live"}),
            404,
            "ResourceNotFoundException",
        )
        assert alias["Message"] == f"Cannot find alias arn: {ARN}:echo:live"
        stale = assert_error(
            await api("POST", POLICY.format("echo"), {**body, "RevisionId": "old"}),
            412,
            "PreconditionFailedException",
        )
        assert stale["message"] == (
            "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy "
            "API to retrieve the latest Revision Id"
        )
        no_fn = assert_error(
            await api("DELETE", POLICY.format("nope") + "/s"), 404, "ResourceNotFoundException"
        )
        assert no_fn["Message"] == f"No policy found for: {ARN}:nope"

    scenario(tmp_path, test)


# Code signing, recursion


def test_code_signing_config_reads_none_and_refuses_unknown_configs(tmp_path: Path) -> None:
    csc = "/2020-06-30/functions/{}/code-signing-config"

    async def test(api: Api) -> None:
        assert ok(await api("GET", csc.format("echo"))) == {}
        ok(await api("DELETE", csc.format("echo")), 204)
        arn = "arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefg"
        refused = assert_error(
            await api("PUT", csc.format("echo"), {"CodeSigningConfigArn": arn}),
            404,
            "CodeSigningConfigNotFoundException",
        )
        assert refused["Message"] == (
            "The code signing configuration cannot be found. Check that the provided "
            f"configuration is not deleted: {arn}."
        )
        missing = assert_error(
            await api("GET", csc.format("nope")), 404, "ResourceNotFoundException"
        )
        assert missing["Message"] == f"Function not found: {ARN}:nope"

    scenario(tmp_path, test)


def test_recursion_config_defaults_to_terminate_and_refuses_other_values(tmp_path: Path) -> None:
    path = "/2024-08-31/functions/echo/recursion-config"

    async def test(api: Api) -> None:
        assert ok(await api("GET", path)) == {"RecursiveLoop": "Terminate"}
        assert ok(await api("PUT", path, {"RecursiveLoop": "Allow"})) == {"RecursiveLoop": "Allow"}
        assert ok(await api("GET", path)) == {"RecursiveLoop": "Allow"}
        bad = assert_error(
            await api("PUT", path, {"RecursiveLoop": "InvalidValue"}), 400, "ValidationException"
        )
        assert bad == {
            "message": "1 validation error detected: Value 'InvalidValue' at 'recursiveLoop' "
            "failed to satisfy constraint: Member must satisfy enum value set: [Terminate, Allow]"
        }

    scenario(tmp_path, test)


def test_a_policy_stops_growing_at_lambdas_size_limit(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        base = {"Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
        added = 0
        while True:  # a caller adding statements for ever
            answer = await api("POST", POLICY.format("echo"), {**base, "StatementId": f"s{added}"})
            if answer.status != 201:
                break
            added += 1
            assert added < 1000, "the policy never stopped growing"
        refused = assert_error(answer, 400, "PolicyLengthExceededException")
        assert re.fullmatch(
            r"The final policy size \(\d+\) is bigger than the limit \(20480\)\.",
            refused["message"],
        )
        policy = ok(await api("GET", POLICY.format("echo")))
        assert len(policy["Policy"]) <= 20480
        assert len(json.loads(policy["Policy"])["Statement"]) == added

    scenario(tmp_path, test)
