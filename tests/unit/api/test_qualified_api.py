"""Unit tests of what takes a version or an alias beside Invoke: asynchronous invocations (and
their destination records), event-invoke configs and resource-based policies of a version or an
alias, and ListVersionsByFunction's pages; through the real router, service and event queue on
the fake engine. Expected messages are AWS's as recorded on AWS (LocalStack's AWS-validated
snapshots: test_lambda_permission_fn_versioning, test_ops_on_nonexisting_version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes import eventually
from tests.unit.api.test_function_api import ok
from tests.unit.api.test_lambda_api import ARN, FUNCTIONS, assert_error, invoke_path
from tests.unit.api.test_version_api import (
    RECORDED,
    VERSIONS,
    Wired,
    create,
    scenario,
    set_handler,
)

EIC = "/2019-09-25/functions/{}/event-invoke-config"
POLICY = FUNCTIONS + "/{}/policy"
ALIASES = FUNCTIONS + "/{}/aliases"


async def recorder_with_live(w: Wired) -> None:
    """``rec`` (app.record) with version 1, the alias live on it, and $LATEST on app.one."""
    await create(w, "rec", handler="app.record")
    ok(await w("POST", VERSIONS.format("rec")), 201)
    ok(await w("POST", ALIASES.format("rec"), {"Name": "live", "FunctionVersion": "1"}), 201)
    await set_handler(w, "app.one", "rec")


def test_an_event_invocation_of_an_alias_runs_its_version(tmp_path: Path) -> None:
    RECORDED.clear()

    async def test(w: Wired) -> None:
        await recorder_with_live(w)
        await create(w, "sink", handler="app.record")
        # The alias's own config: its successes go to the function sink.
        config = {"DestinationConfig": {"OnSuccess": {"Destination": f"{ARN}:sink"}}}
        put = ok(await w("PUT", EIC.format("rec"), config, query={"Qualifier": "live"}))
        assert put["FunctionArn"] == f"{ARN}:rec:live"
        accepted = await w(
            "POST",
            invoke_path("rec"),
            {"n": 1},
            {"X-Amz-Invocation-Type": "Event"},
            {"Qualifier": "live"},
        )
        assert accepted.status == 202, accepted.body
        await eventually(lambda: len(RECORDED) == 2, timeout=3, what="the event and its record")
        (ran, event), (sink, destination) = RECORDED
        assert (ran, event) == ("1", {"n": 1})
        assert sink == "$LATEST"
        assert destination["requestContext"]["functionArn"] == f"{ARN}:rec:live"
        assert destination["responseContext"]["executedVersion"] == "1"
        # A version that does not exist is refused before anything is queued.
        missing = await w(
            "POST",
            invoke_path("rec"),
            {},
            {"X-Amz-Invocation-Type": "Event"},
            {"Qualifier": "9"},
        )
        assert assert_error(missing, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:rec:9"
        )

    scenario(tmp_path, test)


def test_event_invoke_configs_are_kept_per_version_and_alias(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await recorder_with_live(w)
        path = EIC.format("rec")
        ok(await w("PUT", path, {"MaximumRetryAttempts": 0}))
        ok(await w("PUT", path, {"MaximumRetryAttempts": 1}, query={"Qualifier": "1"}))
        ok(await w("PUT", path, {"MaximumEventAgeInSeconds": 60}, query={"Qualifier": "live"}))
        latest = ok(await w("GET", path, query={"Qualifier": "$LATEST"}))
        assert (latest["FunctionArn"], latest["MaximumRetryAttempts"]) == (f"{ARN}:rec:$LATEST", 0)
        one = ok(await w("GET", path, query={"Qualifier": "1"}))
        assert (one["FunctionArn"], one["MaximumRetryAttempts"]) == (f"{ARN}:rec:1", 1)
        listed = ok(await w("GET", path + "/list"))["FunctionEventInvokeConfigs"]
        assert [c["FunctionArn"] for c in listed] == [
            f"{ARN}:rec:$LATEST",
            f"{ARN}:rec:1",
            f"{ARN}:rec:live",
        ]
        # As on AWS, a version or an alias does not take the function's settings.
        assert w.api.api.effective_config("rec", "live").maximum_event_age == 60
        assert w.api.api.effective_config("rec", "live").maximum_retry_attempts == 2
        missing = await w("GET", path, query={"Qualifier": "1221"})
        assert assert_error(missing, 404, "ResourceNotFoundException")["Message"] == (
            f"The function {ARN}:rec:1221 doesn't have an EventInvokeConfig"
        )
        # Deleting the alias takes its config with it.
        ok(await w("DELETE", ALIASES.format("rec") + "/live"), 204)
        listed = ok(await w("GET", path + "/list"))["FunctionEventInvokeConfigs"]
        assert [c["FunctionArn"] for c in listed] == [f"{ARN}:rec:$LATEST", f"{ARN}:rec:1"]

    scenario(tmp_path, test)


def test_a_version_or_alias_has_its_own_policy(tmp_path: Path) -> None:
    grant = {
        "StatementId": "s3",
        "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com",
        "SourceArn": "arn:aws:s3:::bucket",
    }

    async def test(w: Wired) -> None:
        await recorder_with_live(w)
        ok(await w("POST", POLICY.format("rec"), grant), 201)
        # The function's policy is not the version's (recorded: get_policy_after_publishing_new
        # _version is "The resource you requested does not exist.").
        none = await w("GET", POLICY.format("rec"), query={"Qualifier": "1"})
        assert assert_error(none, 404, "ResourceNotFoundException")["Message"] == (
            "The resource you requested does not exist."
        )
        added = ok(await w("POST", POLICY.format("rec:1"), grant, query={"Qualifier": "1"}), 201)
        assert json.loads(added["Statement"])["Resource"] == f"{ARN}:rec:1"
        version = ok(await w("GET", POLICY.format("rec"), query={"Qualifier": "1"}))
        [statement] = json.loads(version["Policy"])["Statement"]
        assert statement["Resource"] == f"{ARN}:rec:1"
        stale = await w(
            "POST",
            POLICY.format("rec"),
            {**grant, "StatementId": "s3b", "RevisionId": "wrong"},
            query={"Qualifier": "live"},
        )
        assert assert_error(stale, 412, "PreconditionFailedException")["message"] == (
            "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy "
            "API to retrieve the latest Revision Id"
        )
        ok(await w("POST", POLICY.format("rec"), grant, query={"Qualifier": "live"}), 201)
        function = ok(await w("GET", POLICY.format("rec")))
        [own] = json.loads(function["Policy"])["Statement"]
        assert own["Resource"] == f"{ARN}:rec"
        ok(await w("DELETE", POLICY.format("rec") + "/s3", query={"Qualifier": "live"}), 204)
        gone = await w("GET", POLICY.format("rec"), query={"Qualifier": "live"})
        assert_error(gone, 404, "ResourceNotFoundException")
        nope = await w("POST", POLICY.format("rec"), grant, query={"Qualifier": "nope"})
        assert assert_error(nope, 404, "ResourceNotFoundException")["Message"] == (
            f"Cannot find alias arn: {ARN}:rec:nope"
        )

    scenario(tmp_path, test)


def test_list_versions_by_function_pages(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await create(w, "paged", handler="app.one")
        for handler in ("app.two", "app.three", "app.one"):
            ok(await w("POST", VERSIONS.format("paged")), 201)
            await set_handler(w, handler, "paged")
        seen: list[str] = []
        query: dict[str, Any] = {"MaxItems": "2"}
        while True:
            page = ok(await w("GET", VERSIONS.format("paged"), query=query))
            assert len(page["Versions"]) <= 2
            seen.extend(v["Version"] for v in page["Versions"])
            if "NextMarker" not in page:
                break
            query = {"MaxItems": "2", "Marker": page["NextMarker"]}
        assert seen == ["$LATEST", "1", "2", "3"]

    scenario(tmp_path, test)
