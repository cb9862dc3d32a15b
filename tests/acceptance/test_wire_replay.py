"""Replay AWS's recorded request/response pairs (tests/acceptance/wire_cases.py) against a real
`lrun serve` and fail on any difference in status, x-amzn-ErrorType, error code, message or
response members (volatile values excepted); then tags and permissions through boto3 and the
AWS CLI, unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import LrunServer, start_server
from tests.acceptance.test_serve import _environ_without_aws, lambda_client, write_manifest
from tests.acceptance.wire_cases import ANY, CASES, FN, Case


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("wire")
    functions = {name: ("probe.count", "") for name in ("echo", "other", "tagged", "cli")}
    functions["declared"] = ("probe.count", "tags: {team: core, stage: dev}")
    started = start_server(write_manifest(root / "project", functions), root / "state")
    yield started
    started.finish()


def send(server: LrunServer, case: Case) -> tuple[int, dict[str, str], bytes]:
    path = urllib.parse.quote(case.path, safe="/")
    body = b"" if case.body is None else json.dumps(case.body).encode()
    query = urllib.parse.urlencode(case.query)
    headers = {"Content-Type": "application/json", **case.headers}
    headers.update(server.signature(case.method, path, body))
    request = urllib.request.Request(
        server.url + path + (f"?{query}" if query else ""),
        data=body if case.method in ("POST", "PUT") else None,
        method=case.method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def differences(expected: Any, got: Any, where: str = "body") -> list[str]:
    if expected is ANY:
        return [] if got is not None else [f"{where}: missing"]
    if isinstance(expected, dict) and isinstance(got, dict):
        found = []
        for key in sorted(set(expected) | set(got)):
            if key not in got:
                found.append(f"{where}.{key}: missing")
            elif key not in expected:
                found.append(f"{where}.{key}: not sent by AWS ({got[key]!r})")
            else:
                found.extend(differences(expected[key], got[key], f"{where}.{key}"))
        return found
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [
            d
            for i, (e, g) in enumerate(zip(expected, got, strict=True))
            for d in differences(e, g, f"{where}[{i}]")
        ]
    return [] if expected == got else [f"{where}: AWS {expected!r}, lrun {got!r}"]


def compare(case: Case, status: int, headers: dict[str, str], raw: bytes) -> list[str]:
    found = []
    if status != case.status:
        found.append(f"status: AWS {case.status}, lrun {status}")
    error_type = {k.lower(): v for k, v in headers.items()}.get("x-amzn-errortype")
    if error_type != case.error:
        found.append(f"x-amzn-ErrorType: AWS {case.error}, lrun {error_type}")
    if case.raw is not None:
        if raw != case.raw:
            found.append(f"body: AWS {case.raw!r}, lrun {raw!r}")
        return found
    if case.response is None:
        if raw:
            found.append(f"body: AWS none, lrun {raw!r}")
        return found
    try:
        got = json.loads(raw)
    except ValueError:
        return [*found, f"body is not JSON: {raw[:200]!r}"]
    for name in case.json_fields:
        if isinstance(got, dict) and isinstance(got.get(name), str):
            got[name] = json.loads(got[name])
    return found + differences(case.response, got)


def test_aws_responses_replayed_against_lrun_serve_match(server: LrunServer) -> None:
    failures = []
    for number, case in enumerate(CASES):
        status, headers, raw = send(server, case)
        for difference in compare(case, status, headers, raw):
            failures.append(f"#{number} {case.method} {case.path} [{case.source}]: {difference}")
    assert not failures, "\n".join(failures)
    assert len(CASES) >= 60  # the table is the point: a shrunken one is a failure


def test_the_table_names_a_source_for_every_case() -> None:
    kinds = ("rec:", "model:", "docs:", "assumed:")
    assert all(case.source.startswith(kinds) for case in CASES)


# The same through real clients


@pytest.fixture(scope="module")
def client(server: LrunServer) -> Any:
    return lambda_client(server.url)


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value


def test_boto3_tags_lifecycle(client: Any) -> None:
    arn = f"{FN}:tagged"
    assert client.list_tags(Resource=arn)["Tags"] == {}
    client.tag_resource(Resource=arn, Tags={"team": "core", "stage": "dev"})
    client.tag_resource(Resource=arn, Tags={"stage": "prod"})
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "core", "stage": "prod"}
    assert client.get_function(FunctionName="tagged")["Tags"] == {"team": "core", "stage": "prod"}
    client.untag_resource(Resource=arn, TagKeys=["team", "nope"])
    assert client.list_tags(Resource=arn)["Tags"] == {"stage": "prod"}
    missing = error_of(lambda: client.list_tags(Resource=f"{FN}:nope"))
    assert missing.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": f"Function not found: {FN}:nope",
    }
    qualified = error_of(lambda: client.tag_resource(Resource=f"{arn}:1", Tags={"a": "b"}))
    assert isinstance(qualified, client.exceptions.InvalidParameterValueException)


def test_boto3_permissions_lifecycle(client: Any) -> None:
    added = client.add_permission(
        FunctionName="tagged",
        StatementId="from-bucket",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::uploads",
        SourceAccount="000000000000",
    )
    statement = json.loads(added["Statement"])
    assert statement["Condition"] == {
        "StringEquals": {"AWS:SourceAccount": "000000000000"},
        "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"},
    }
    policy = client.get_policy(FunctionName="tagged")
    assert json.loads(policy["Policy"])["Statement"] == [statement]
    revision = client.get_function(FunctionName="tagged")["Configuration"]["RevisionId"]
    assert policy["RevisionId"] == revision
    conflict = error_of(
        lambda: client.add_permission(
            FunctionName="tagged",
            StatementId="from-bucket",
            Action="lambda:InvokeFunction",
            Principal="*",
        )
    )
    assert isinstance(conflict, client.exceptions.ResourceConflictException)
    stale = error_of(
        lambda: client.remove_permission(
            FunctionName="tagged", StatementId="from-bucket", RevisionId="stale"
        )
    )
    assert isinstance(stale, client.exceptions.PreconditionFailedException)
    client.remove_permission(FunctionName="tagged", StatementId="from-bucket", RevisionId=revision)
    gone = error_of(lambda: client.get_policy(FunctionName="tagged"))
    assert isinstance(gone, client.exceptions.ResourceNotFoundException)


def test_boto3_reads_what_terraform_reads_on_refresh(client: Any) -> None:
    """aws_lambda_function's read: GetFunction, ListVersionsByFunction,
    GetFunctionCodeSigningConfig; and the settings it may read beside."""
    function = client.get_function(FunctionName="other")
    assert function["Configuration"]["FunctionArn"] == f"{FN}:other"
    versions = client.list_versions_by_function(FunctionName="other", MaxItems=10000)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST"]
    signing = client.get_function_code_signing_config(FunctionName="other")
    assert "CodeSigningConfigArn" not in signing
    assert (
        client.get_function_recursion_config(FunctionName="other")["RecursiveLoop"] == "Terminate"
    )
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="other"
    )
    settings = client.get_account_settings()
    assert settings["AccountUsage"]["FunctionCount"] == 5


def test_boto3_sees_the_manifest_s_tags(client: Any) -> None:
    arn = f"{FN}:declared"
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "core", "stage": "dev"}
    assert client.get_function(FunctionName="declared")["Tags"] == {"team": "core", "stage": "dev"}
    client.untag_resource(Resource=arn, TagKeys=["stage"])
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "core"}


def test_an_operation_lrun_lacks_is_unknown_to_boto3(client: Any) -> None:
    unknown = error_of(lambda: client.list_code_signing_configs())
    assert unknown.response["Error"]["Code"] == "UnknownOperationException"
    assert unknown.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.fixture
def aws(server: LrunServer, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", server.url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**_environ_without_aws(), **env},
        )

    return run


def test_aws_cli_tags_and_permissions(aws: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    arn = f"{FN}:cli"
    tagged = aws("tag-resource", "--resource", arn, "--tags", "team=core,stage=dev")
    assert tagged.returncode == 0, tagged.stderr
    listed = aws("list-tags", "--resource", arn)
    assert json.loads(listed.stdout)["Tags"] == {"team": "core", "stage": "dev"}
    untagged = aws("untag-resource", "--resource", arn, "--tag-keys", "stage")
    assert untagged.returncode == 0, untagged.stderr
    assert json.loads(aws("list-tags", "--resource", arn).stdout)["Tags"] == {"team": "core"}
    added = aws(
        "add-permission",
        "--function-name",
        "cli",
        "--statement-id",
        "sns",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "sns.amazonaws.com",
    )
    assert added.returncode == 0, added.stderr
    statement = json.loads(json.loads(added.stdout)["Statement"])
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    policy = json.loads(aws("get-policy", "--function-name", "cli").stdout)
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["sns"]
    again = aws(
        "add-permission",
        "--function-name",
        "cli",
        "--statement-id",
        "sns",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "sns.amazonaws.com",
    )
    assert again.returncode != 0
    assert (
        "(ResourceConflictException) when calling the AddPermission operation: The statement "
        in again.stderr
    )
    removed = aws("remove-permission", "--function-name", "cli", "--statement-id", "sns")
    assert removed.returncode == 0, removed.stderr
    missing = aws("get-policy", "--function-name", "cli")
    assert (
        "(ResourceNotFoundException) when calling the GetPolicy operation: The resource you "
        "requested does not exist." in missing.stderr
    )
