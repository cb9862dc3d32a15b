"""Unit tests of CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, invocations through
an alias (a weighted one too), and provisioned concurrency on versions and aliases, through the
real router and service on the fake engine. Expected errors are AWS's as recorded on AWS
(LocalStack's AWS-validated snapshots test_lambda_api.snapshot.json: TestLambdaAlias,
TestLambdaProvisionedConcurrency, TestLambdaRevisions; test_lambda.snapshot.json:
test_lambda_provisioned_concurrency_scheduling's reserved/provisioned errors)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import alias_api
from tests.fakes import eventually
from tests.unit.api.test_function_api import ok
from tests.unit.api.test_lambda_api import ARN, FUNCTIONS, assert_error, invoke_path, log_of
from tests.unit.api.test_version_api import (
    VERSIONS,
    Wired,
    create,
    invoke,
    scenario,
    set_handler,
)

ALIASES = FUNCTIONS + "/{}/aliases"
PROVISIONED = "/2019-09-30/functions/{}/provisioned-concurrency"
ONE, TWO = {"Qualifier": "1"}, {"Qualifier": "2"}
LATEST_WITH_ANOTHER = "$LATEST is not supported for an alias pointing to more than 1 version"


async def two_versions(w: Wired, name: str = "made") -> None:
    """``name`` with version 1 (app.one) and version 2 (app.two); $LATEST is app.three."""
    await create(w, name)
    ok(await w("POST", VERSIONS.format(name)), 201)
    await set_handler(w, "app.two", name)
    ok(await w("POST", VERSIONS.format(name)), 201)
    await set_handler(w, "app.three", name)


def test_alias_lifecycle(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        made = await w(
            "POST",
            ALIASES.format("made"),
            {
                "Name": "live",
                "FunctionVersion": "1",
                "Description": "prod",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
            },
        )
        alias = ok(made, 201)
        assert {k: v for k, v in alias.items() if k != "RevisionId"} == {
            "AliasArn": f"{ARN}:made:live",
            "Name": "live",
            "FunctionVersion": "1",
            "Description": "prod",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
        }
        assert ok(await w("GET", ALIASES.format("made") + "/live")) == alias
        plain = ok(
            await w("POST", ALIASES.format("made"), {"Name": "old", "FunctionVersion": "1"}), 201
        )
        assert "RoutingConfig" not in plain and plain["Description"] == ""
        empty = {"Name": "bare", "FunctionVersion": "2", "RoutingConfig": {}}
        assert "RoutingConfig" not in ok(await w("POST", ALIASES.format("made"), empty), 201)
        listed = ok(await w("GET", ALIASES.format("made")))["Aliases"]
        assert [a["Name"] for a in listed] == ["bare", "live", "old"]
        of_two = ok(await w("GET", ALIASES.format("made"), query={"FunctionVersion": "2"}))
        assert [a["Name"] for a in of_two["Aliases"]] == ["bare", "live"]
        page = ok(await w("GET", ALIASES.format("made"), query={"MaxItems": "2"}))
        assert [a["Name"] for a in page["Aliases"]] == ["bare", "live"]
        rest = ok(await w("GET", ALIASES.format("made"), query={"Marker": page["NextMarker"]}))
        assert [a["Name"] for a in rest["Aliases"]] == ["old"] and "NextMarker" not in rest
        # UpdateAlias: what is given changes, with a new RevisionId; the rest stays.
        stale = await w(
            "PUT", ALIASES.format("made") + "/live", {"FunctionVersion": "2", "RevisionId": "x"}
        )
        assert assert_error(stale, 412, "PreconditionFailedException")["message"] == (
            "The Revision Id provided does not match the latest Revision Id. Call the "
            "GetFunction/GetAlias API to retrieve the latest Revision Id"
        )
        moved = ok(
            await w(
                "PUT",
                ALIASES.format("made") + "/live",
                {"RoutingConfig": {}, "RevisionId": alias["RevisionId"]},
            )
        )
        assert moved["FunctionVersion"] == "1" and "RoutingConfig" not in moved
        assert moved["Description"] == "prod" and moved["RevisionId"] != alias["RevisionId"]
        # GetFunction through an alias: its version's configuration, named by the alias.
        got = ok(await w("GET", f"{FUNCTIONS}/made", query={"Qualifier": "live"}))
        assert got["Configuration"]["FunctionArn"] == f"{ARN}:made:live"
        assert got["Configuration"]["Version"] == "1"
        assert got["Configuration"]["Handler"] == "app.one"
        ok(await w("DELETE", ALIASES.format("made") + "/live"), 204)
        ok(await w("DELETE", ALIASES.format("made") + "/live"), 204)  # gone already: no error
        missing = await w("GET", ALIASES.format("made") + "/live")
        assert assert_error(missing, 404, "ResourceNotFoundException") == {
            "Type": "User",
            "Message": f"Cannot find alias arn: {ARN}:made:live",
        }
        update = await w("PUT", ALIASES.format("made") + "/live", {"FunctionVersion": "1"})
        assert assert_error(update, 404, "ResourceNotFoundException")["Message"] == (
            f"Alias not found: {ARN}:made:live"
        )
        through = await w("GET", f"{FUNCTIONS}/made:live")
        assert assert_error(through, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:made:live"
        )

    scenario(tmp_path, test)


def test_alias_errors_are_awss(tmp_path: Path) -> None:
    def alias(version: str, weights: dict[str, Any] | None = None, name: str = "custom") -> Any:
        body: dict[str, Any] = {"Name": name, "FunctionVersion": version}
        if weights is not None:
            body["RoutingConfig"] = {"AdditionalVersionWeights": weights}
        return body

    async def test(w: Wired) -> None:
        await two_versions(w)
        path = ALIASES.format("made")
        cases: list[tuple[Any, int, str, dict[str, str]]] = [
            (
                alias("1", {"1": 0.8, "2": 0.2}),
                400,
                "InvalidParameterValueException",
                {
                    "Type": "User",
                    "message": "Number of items in AdditionalVersionWeights cannot be greater "
                    "than 1",
                },
            ),
            (
                alias("1", {"2": 2}),
                400,
                "ValidationException",
                {
                    "message": "1 validation error detected: Value '{2=2.0}' at "
                    "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map "
                    "value must satisfy constraint: [Member must have value less than or equal "
                    "to 1.0, Member must have value greater than or equal to 0.0, Member must "
                    "not be null]"
                },
            ),
            (
                alias("1", {"1": 0.5}),
                400,
                "InvalidParameterValueException",
                {
                    "Type": "User",
                    "message": "Invalid function version 1. Function version 1 is already "
                    "included in routing configuration.",
                },
            ),
            (
                alias("10", {"2": 0.5}),
                404,
                "ResourceNotFoundException",
                {"Type": "User", "Message": f"Function not found: {ARN}:made:10"},
            ),
            (
                alias("1", {"10": 0.5}),
                404,
                "ResourceNotFoundException",
                {"Type": "User", "Message": f"Function not found: {ARN}:made:10"},
            ),
            (
                alias("$LATEST", {"1": 0.5}),
                400,
                "InvalidParameterValueException",
                {"message": LATEST_WITH_ANOTHER},
            ),
            (
                alias("1", {"$LATEST": 0.5}),
                400,
                "ValidationException",
                {
                    "message": "1 validation error detected: Value '{$LATEST=0.5}' at "
                    "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map "
                    "keys must satisfy constraint: [Member must have length less than or equal "
                    "to 1024, Member must have length greater than or equal to 1, Member must "
                    "satisfy regular expression pattern: [0-9]+]"
                },
            ),
            (
                alias("1", name="2024"),
                400,
                "ValidationException",
                {
                    "message": "1 validation error detected: Value '2024' at 'name' failed to "
                    "satisfy constraint: Member must satisfy regular expression pattern: "
                    "(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
                },
            ),
        ]
        for body, status, error_type, expected in cases:
            assert assert_error(await w("POST", path, body), status, error_type) == expected
        nofn = await w("POST", ALIASES.format("nope"), alias("1", {"2": 0.5}))
        assert assert_error(nofn, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:nope:1"
        )
        ok(await w("POST", path, alias("1", {"2": 0.5})), 201)
        again = await w("POST", path, alias("1"))
        assert assert_error(again, 409, "ResourceConflictException")["message"] == (
            f"Alias already exists: {ARN}:made:custom"
        )
        # A name like a date is an alias, not a version.
        ok(await w("POST", path, alias("1", name="2024-01-02")), 201)
        assert (await invoke(w, "made", "2024-01-02"))[1] == "1"
        # An alias may name $LATEST (with no second version).
        ok(await w("POST", path, alias("$LATEST", name="latest")), 201)
        body, executed = await invoke(w, "made", "latest")
        assert (body["handler"], executed) == ("app.three", "$LATEST")

    scenario(tmp_path, test)


def test_a_weighted_alias_splits_invocations_exactly_by_weight(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        weights = {"AdditionalVersionWeights": {"2": 0.1}}
        body = {"Name": "live", "FunctionVersion": "1", "RoutingConfig": weights}
        ok(await w("POST", ALIASES.format("made"), body), 201)
        ran: list[str] = []
        for _ in range(100):
            answer, executed = await invoke(w, "made", "live")
            assert answer["version"] == executed  # the header names the version that ran
            assert answer["arn"] == f"{ARN}:made:live"  # the ARN as invoked
            ran.append(executed)
        # The split is exact (see served.pick): 10 of 100, never more than one off any prefix.
        assert ran.count("2") == 10 and ran.count("1") == 90
        assert all(abs(ran[:n].count("2") - n / 10) < 1 for n in range(1, 101))

    scenario(tmp_path, test)


def test_aliases_stop_at_the_servers_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alias_api, "MAX_ALIASES", 2)

    async def test(w: Wired) -> None:
        await two_versions(w)
        for name in ("a", "b"):
            ok(await w("POST", ALIASES.format("made"), {"Name": name, "FunctionVersion": "1"}), 201)
        refused = await w("POST", ALIASES.format("made"), {"Name": "c", "FunctionVersion": "1"})
        assert (
            "at most 2 aliases"
            in assert_error(refused, 400, "InvalidParameterValueException")["message"]
        )
        assert sorted(w.versions.versions.of("made").aliases) == ["a", "b"]

    scenario(tmp_path, test)


def test_aliases_survive_a_restart(tmp_path: Path) -> None:
    runs: list[int] = []

    async def test(w: Wired) -> None:
        runs.append(1)
        if len(runs) == 1:
            await two_versions(w)
            body = {"Name": "live", "FunctionVersion": "2"}
            ok(await w("POST", ALIASES.format("made"), body), 201)
            return
        assert (await invoke(w, "made", "live"))[0]["handler"] == "app.two"
        assert ok(await w("GET", ALIASES.format("made") + "/live"))["FunctionVersion"] == "2"

    scenario(tmp_path, test, restarts=1)
    assert len(runs) == 2


# Provisioned concurrency


async def provisioned_ready(w: Wired, name: str, qualifier: str) -> dict[str, Any]:
    path = PROVISIONED.format(name)
    deadline = asyncio.get_running_loop().time() + 3
    while True:
        got: dict[str, Any] = ok(await w("GET", path, query={"Qualifier": qualifier}))
        if got["Status"] == "READY":
            return got
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.01)


def test_provisioned_concurrency_on_a_version(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        path = PROVISIONED.format("made")
        put = await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=ONE)
        body = ok(put, 202)
        assert {k: v for k, v in body.items() if k != "LastModified"} == {
            "RequestedProvisionedConcurrentExecutions": 1,
            "AvailableProvisionedConcurrentExecutions": 0,
            "AllocatedProvisionedConcurrentExecutions": 0,
            "Status": "IN_PROGRESS",
        }
        got = await provisioned_ready(w, "made", "1")
        assert got["AvailableProvisionedConcurrentExecutions"] == 1 and "FunctionArn" not in got
        views = json.loads((await w("GET", "/lrun/environments")).body)
        assert [(v["version"], v["state"]) for v in views] == [("1", "provisioned")]
        invoked = await w(
            "POST",
            invoke_path("made"),
            {},
            {"X-Amz-Log-Type": "Tail"},
            {"Qualifier": "1"},
        )
        assert "Init Duration" not in log_of(invoked)  # its provisioned environment served it
        assert json.loads(invoked.body)["init_type"] == "provisioned-concurrency"
        listed = ok(await w("GET", path, query={"List": "ALL"}))
        [config] = listed["ProvisionedConcurrencyConfigs"]
        assert (config["FunctionArn"], config["Status"]) == (f"{ARN}:made:1", "READY")
        ok(await w("DELETE", path, query=ONE), 204)
        ok(await w("DELETE", path, query=ONE), 204)  # none left: no error
        await eventually(lambda: w.api.served.backend.live() == [], what="the environment to stop")
        gone = await w("GET", path, query=ONE)
        assert assert_error(gone, 404, "ProvisionedConcurrencyConfigNotFoundException") == {
            "Type": "User",
            "message": "No Provisioned Concurrency Config found for this function",
        }
        assert ok(await w("GET", path, query={"List": "ALL"})) == {
            "ProvisionedConcurrencyConfigs": []
        }

    scenario(tmp_path, test)


def test_provisioned_concurrency_on_an_alias_follows_it(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        ok(await w("POST", ALIASES.format("made"), {"Name": "live", "FunctionVersion": "1"}), 201)
        path = PROVISIONED.format("made")
        live = {"Qualifier": "live"}
        ok(await w("PUT", path, {"ProvisionedConcurrentExecutions": 2}, query=live), 202)
        await provisioned_ready(w, "made", "live")
        views = json.loads((await w("GET", "/lrun/environments")).body)
        assert [(v["version"], v["aliases"]) for v in views] == [("1", ["live"])] * 2
        ok(await w("PUT", ALIASES.format("made") + "/live", {"FunctionVersion": "2"}))
        await eventually(
            lambda: {v.version for v in w.api.served.service.environments()} == {"2"},
            timeout=3,
            what="the provisioned environments to move to version 2",
        )
        await provisioned_ready(w, "made", "live")
        answer, executed = await invoke(w, "made", "live")
        assert (executed, answer["init_type"]) == ("2", "provisioned-concurrency")
        # A version is provisioned through an alias or itself, never both.
        both = await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=TWO)
        assert assert_error(both, 409, "ResourceConflictException")["message"] == (
            "Version is pointed by a Provisioned Concurrency alias"
        )
        ok(await w("DELETE", path, query=live), 204)
        ok(
            await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=TWO),
            202,
        )
        again = await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=live)
        assert assert_error(again, 409, "ResourceConflictException")["message"] == (
            "Alias can't be used for Provisioned Concurrency configuration on an already "
            "Provisioned version"
        )

    scenario(tmp_path, test)


def test_provisioned_concurrency_errors_are_awss(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        path = PROVISIONED.format("made")
        one = {"ProvisionedConcurrentExecutions": 1}
        latest = await w("PUT", path, one, query={"Qualifier": "$LATEST"})
        assert assert_error(latest, 400, "InvalidParameterValueException") == {
            "Type": "User",
            "message": "Provisioned Concurrency Configs cannot be applied to unpublished "
            "function versions.",
        }
        for method in ("GET", "DELETE"):
            refused = await w(method, path, query={"Qualifier": "$LATEST"})
            assert assert_error(refused, 400, "InvalidParameterValueException")["message"] == (
                "The function resource provided must be an alias or a published version."
            )
        cases = [
            ("made", "10", f"Function not found: {ARN}:made:10"),
            ("made", "noalias", f"Cannot find alias arn: {ARN}:made:noalias"),
            ("nope", "1", f"Function not found: {ARN}:nope:1"),
            ("nope", "noalias", f"Cannot find alias arn: {ARN}:nope:noalias"),
        ]
        for function, qualifier, message in cases:
            for method in ("PUT", "GET", "DELETE"):
                response = await w(
                    method, PROVISIONED.format(function), one, query={"Qualifier": qualifier}
                )
                body = assert_error(response, 404, "ResourceNotFoundException")
                assert body["Message"] == message, (method, function, qualifier)
        listing = await w("GET", PROVISIONED.format("nope"), query={"List": "ALL"})
        assert assert_error(listing, 404, "ResourceNotFoundException")["Message"] == (
            f"Function not found: {ARN}:nope"
        )
        zero = await w("PUT", path, {"ProvisionedConcurrentExecutions": 0}, query=ONE)
        assert assert_error(zero, 400, "ValidationException")["message"] == (
            "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed "
            "to satisfy constraint: Member must have value greater than or equal to 1"
        )
        huge = await w(
            "PUT", path, {"ProvisionedConcurrentExecutions": 11}, query=ONE
        )  # the fake service's host limit is 10
        assert assert_error(huge, 400, "InvalidParameterValueException") == {
            "message": "Specified ConcurrentExecutions for function is greater than account's "
            "unreserved concurrency [10]."
        }
        assert w.api.served.backend.specs == []

    scenario(tmp_path, test)


def test_reserved_and_provisioned_concurrency_bound_each_other(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        concurrency = "/2017-10-31/functions/made/concurrency"
        path = PROVISIONED.format("made")
        ok(await w("PUT", concurrency, {"ReservedConcurrentExecutions": 2}))
        ok(
            await w("PUT", path, {"ProvisionedConcurrentExecutions": 2}, query=ONE),
            202,
        )
        more = await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=TWO)
        assert assert_error(more, 400, "InvalidParameterValueException") == {
            "Type": "User",
            "message": "Requested Provisioned Concurrency should not be greater than the "
            "reservedConcurrentExecution for function",
        }
        lower = await w("PUT", concurrency, {"ReservedConcurrentExecutions": 1})
        assert assert_error(lower, 400, "InvalidParameterValueException") == {
            "message": " ReservedConcurrentExecutions  1 should not be lower than function's "
            "total provisioned concurrency [2]."
        }
        await provisioned_ready(w, "made", "1")
        # Reserved == provisioned: nothing else of the function may run, as on AWS.
        latest = await w("POST", invoke_path("made"), {})
        assert assert_error(latest, 429, "TooManyRequestsException")["Reason"] == (
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        )
        assert (await invoke(w, "made", "1"))[1] == "1"

    scenario(tmp_path, test)


def test_provisioned_settings_survive_a_restart(tmp_path: Path) -> None:
    runs: list[int] = []

    async def test(w: Wired) -> None:
        runs.append(1)
        path = PROVISIONED.format("made")
        if len(runs) == 1:
            await two_versions(w)
            ok(
                await w("PUT", path, {"ProvisionedConcurrentExecutions": 1}, query=TWO),
                202,
            )
            return
        w.api.served.service.housekeeping()
        got = await provisioned_ready(w, "made", "2")
        assert got["RequestedProvisionedConcurrentExecutions"] == 1

    scenario(tmp_path, test, restarts=1)
    assert len(runs) == 2


def test_lrun_functions_lists_versions_and_aliases(tmp_path: Path) -> None:
    async def test(w: Wired) -> None:
        await two_versions(w)
        body = {
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
        }
        ok(await w("POST", ALIASES.format("made"), body), 201)
        rows = {row["FunctionName"]: row for row in ok(await w("GET", "/lrun/functions"))}
        assert rows["made"]["Versions"] == ["1", "2"]
        assert rows["made"]["Aliases"] == {"live": {"FunctionVersion": "1", "Weights": {"2": 0.1}}}
        assert (rows["echo"]["Versions"], rows["echo"]["Aliases"]) == ([], {})

    scenario(tmp_path, test)
