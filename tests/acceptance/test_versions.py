"""Versions and aliases against a real `lrun serve`, through boto3 and the AWS CLI unchanged:
create from a zip, invoke, update the code, publish, an alias with a 90/10 split invoked many
times (each version runs in its own environments, X-Amz-Executed-Version says which), provisioned
concurrency on the alias, a restart, `lrun functions` and `lrun ps`, and deletion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import Lrun, start_server
from tests.acceptance.test_api_functions import ROLE, client, code_zip, project, wait

# The weighted alias splits exactly (orchestrator.served.pick): of 100 invocations 10 run the
# second version, whatever the order they come in. The bound below allows one either way.
INVOCATIONS = 100


def executed(lam: Any, name: str) -> tuple[str, dict[str, Any]]:
    answer = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return answer["ExecutedVersion"], json.loads(answer["Payload"].read())


def test_boto3_publishes_routes_an_alias_90_10_and_deletes(tmp_path: Path, lrun: Lrun) -> None:
    root = project(tmp_path / "project")
    state = tmp_path / "state"
    server = start_server(root, state)
    try:
        lam = client(server)
        lam.create_function(
            FunctionName="shop",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": code_zip(1)},
        )
        wait(lam, "function_active_v2", "shop")
        assert executed(lam, "shop") == ("$LATEST", {"version": 1, "color": None, "memory": "128"})
        one = lam.publish_version(FunctionName="shop", Description="first")
        assert (one["Version"], one["FunctionArn"].rsplit(":", 1)[1]) == ("1", "1")
        lam.get_waiter("published_version_active").wait(FunctionName="shop", Qualifier="1")

        lam.update_function_code(FunctionName="shop", ZipFile=code_zip(2))
        wait(lam, "function_updated_v2", "shop")
        two = lam.publish_version(
            FunctionName="shop",
            CodeSha256=lam.get_function(FunctionName="shop")["Configuration"]["CodeSha256"],
        )
        assert two["Version"] == "2"
        versions = lam.list_versions_by_function(FunctionName="shop")["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
        assert executed(lam, "shop:1")[1]["version"] == 1  # a version is immutable
        assert executed(lam, "shop:2")[1]["version"] == 2

        live = lam.create_alias(
            FunctionName="shop",
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
        )
        assert live["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
        ran = []
        for _ in range(INVOCATIONS):
            version, body = executed(lam, "shop:live")
            assert body["version"] == int(version)  # the header names the version that ran
            ran.append(version)
        assert abs(ran.count("2") - INVOCATIONS * 0.1) <= 1, ran.count("2")
        assert ran.count("1") + ran.count("2") == INVOCATIONS
        # Each version has environments of its own, and lrun ps says which.
        environments = server.environments("shop")
        assert {e["version"] for e in environments} >= {"1", "2"}
        assert all("live" in e["aliases"] for e in environments if e["version"] in ("1", "2"))

        # Provisioned concurrency on the alias: environments of the version it points to.
        lam.update_alias(FunctionName="shop", Name="live", FunctionVersion="2", RoutingConfig={})
        lam.put_provisioned_concurrency_config(
            FunctionName="shop", Qualifier="live", ProvisionedConcurrentExecutions=1
        )
        deadline = time.monotonic() + 120
        while (
            lam.get_provisioned_concurrency_config(FunctionName="shop", Qualifier="live")["Status"]
            != "READY"
        ):
            assert time.monotonic() < deadline, "live's provisioned concurrency never READY"
            time.sleep(0.5)
        provisioned = [e for e in server.environments("shop") if e["state"] == "provisioned"]
        assert [e["version"] for e in provisioned] == ["2"]
        with pytest.raises(ClientError) as caught:
            lam.put_provisioned_concurrency_config(
                FunctionName="shop", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
            )
        assert caught.value.response["Error"]["Message"] == (
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
        )
        with pytest.raises(ClientError) as caught:
            lam.put_function_concurrency(FunctionName="shop", ReservedConcurrentExecutions=0)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"

        # lrun's own views.
        wide = {**server.env, "COLUMNS": "200"}
        listed = lrun("functions", "ls", "--json", cwd=root, env=server.env)
        (row,) = [r for r in json.loads(listed.stdout) if r["FunctionName"] == "shop"]
        assert row["Versions"] == ["1", "2"]
        assert row["Aliases"] == {"live": {"FunctionVersion": "2", "Weights": {}}}
        table = lrun("functions", "ls", cwd=root, env=wide)
        assert "live -> 2" in table.stdout, table.stdout
        got = lrun("functions", "get", "shop", cwd=root, env=wide)
        assert "Version 1" in got.stdout and "Alias live" in got.stdout, got.stdout
        ps = lrun("ps", cwd=root, env=wide)
        assert "2 (live)" in ps.stdout, ps.stdout

        # A restart: versions, the alias and its provisioned concurrency are still there.
        server.finish()
        server = start_server(root, state)
        lam = client(server)
        wait(lam, "function_active_v2", "shop")
        assert executed(lam, "shop:live")[0] == "2"
        assert executed(lam, "shop:1")[1]["version"] == 1
        assert (
            lam.get_provisioned_concurrency_config(FunctionName="shop", Qualifier="live")[
                "RequestedProvisionedConcurrentExecutions"
            ]
            == 1
        )

        with pytest.raises(ClientError) as caught:
            lam.delete_function(FunctionName="shop", Qualifier="2")
        assert caught.value.response["Error"]["Message"] == (
            "Unable to delete version because the following aliases reference it: [live]"
        )
        lam.delete_function(FunctionName="shop", Qualifier="1")
        assert [
            v["Version"] for v in lam.list_versions_by_function(FunctionName="shop")["Versions"]
        ] == ["$LATEST", "2"]
        lam.delete_function(FunctionName="shop")
        with pytest.raises(ClientError) as caught:
            lam.get_alias(FunctionName="shop", Name="live")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        deadline = time.monotonic() + 60
        while server.environments("shop") or list((state / "functions").iterdir()):
            # Its code, $LATEST's and the versions', goes once nothing can run it any more.
            assert time.monotonic() < deadline, list((state / "functions").iterdir())
            time.sleep(0.2)
        server.finish()
    finally:
        server.clean_up()


def test_the_aws_cli_publishes_and_routes_an_alias(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    server = start_server(root, tmp_path / "state")
    (tmp_path / "v1.zip").write_bytes(code_zip(1))
    (tmp_path / "v2.zip").write_bytes(code_zip(2))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", server.url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    try:
        created = aws(
            "create-function",
            "--function-name",
            "cart",
            "--runtime",
            "python3.13",
            "--role",
            ROLE,
            "--handler",
            "app.handler",
            "--zip-file",
            "fileb://v1.zip",
            "--publish",
        )
        assert created["Version"] == "1"
        aws("wait", "function-active-v2", "--function-name", "cart")
        updated = aws(
            "update-function-code",
            "--function-name",
            "cart",
            "--zip-file",
            "fileb://v2.zip",
            "--publish",
        )
        assert (updated["Version"], updated["FunctionArn"].endswith(":cart:2")) == ("2", True)
        aws("wait", "function-updated-v2", "--function-name", "cart")
        versions = aws("list-versions-by-function", "--function-name", "cart")["Versions"]
        assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
        alias = aws(
            "create-alias",
            "--function-name",
            "cart",
            "--name",
            "live",
            "--function-version",
            "1",
            "--routing-config",
            "AdditionalVersionWeights={2=0.1}",
        )
        assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
        assert aws("get-alias", "--function-name", "cart", "--name", "live")["FunctionVersion"] == (
            "1"
        )
        ran = []
        for _ in range(20):
            answer = aws("invoke", "--function-name", "cart", "--qualifier", "live", "out.json")
            body = json.loads((tmp_path / "out.json").read_text())
            assert body["version"] == int(answer["ExecutedVersion"])
            ran.append(answer["ExecutedVersion"])
        assert abs(ran.count("2") - 2) <= 1, ran  # 10% of 20
        aws("delete-alias", "--function-name", "cart", "--name", "live")
        assert aws("list-aliases", "--function-name", "cart") == {"Aliases": []}
        aws("delete-function", "--function-name", "cart", "--qualifier", "1")
        aws("delete-function", "--function-name", "cart")
        server.finish()
    finally:
        server.clean_up()
