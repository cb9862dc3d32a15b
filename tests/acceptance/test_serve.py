"""`lrun serve` as clients use it: boto3, the AWS CLI and `lrun` itself against a real server.

One server (module-scoped, its own port and state directory) serves the functions below for most
tests. A test that asserts on an environment's state (its invocation count, whether it exists)
has a function to itself, so tests may run in any order. Tests of the server's life (graceful
stop, clean-up on start) start servers of their own.

Inside a container the runtime is PID 1, so ``probe.count``'s pid is the same in every
environment; its invocation counter is what proves that a call reused a warm environment.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from orchestrator.api.server import orphans
from orchestrator.manifest.revision import zipped_size
from orchestrator.sandbox import docker_backend
from orchestrator.sandbox.backend import LABEL_MANAGED, LABEL_OWNER
from orchestrator.sandbox.ownership import LABEL_HOST, LABEL_OWNER_STARTED, identify
from tests.acceptance.conftest import (
    Lrun,
    LrunServer,
    ServerFactory,
    lrun_containers,
    serve_command,
    start_server,
)
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "python"
ACCOUNT = "000000000000"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
HOST_LIMIT = 20
RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REPORT = re.compile(rf"^REPORT RequestId: ({REQUEST_ID})\t(.*)$", re.MULTILINE)
ORPHAN_IMAGE = "lrun/provided:latest"

# name: (handler, extra settings); every function is python3.13 code from tests/integration
FUNCTIONS_SERVED: dict[str, tuple[str, str]] = {
    "capped": ("probe.sleep", "timeout: 5, reserved_concurrency: 1"),
    "count": ("probe.count", ""),
    "dry": ("probe.count", ""),
    "evcount": ("probe.count", ""),
    "fail": ("probe.fail", ""),
    "pc": ("probe.introspect", ""),
    "reuse": ("probe.count", ""),
    "sleep": ("probe.sleep", "memory: 256, timeout: 5, description: naps"),
    "tunable": ("probe.count", ""),
    "viacli": ("probe.count", ""),
    "warm": ("probe.introspect", "provisioned_concurrency: 2"),
    "zero": ("probe.count", "reserved_concurrency: 0"),
}


def write_manifest(directory: Path, functions: dict[str, tuple[str, str]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["functions:"]
    for name, (handler, extra) in functions.items():
        settings = f"runtime: python3.13, handler: {handler}, code: {CODE}"
        lines.append(f"  {name}: {{{settings}{', ' + extra if extra else ''}}}")
    (directory / "lrun.yaml").write_text("\n".join(lines) + "\n")
    return directory


def lambda_client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("serve")
    manifest_dir = write_manifest(root / "project", FUNCTIONS_SERVED)
    started = start_server(
        manifest_dir,
        root / "state",
        "--idle-ttl",
        "300",
        "--max-concurrency",
        str(HOST_LIMIT),
    )
    yield started
    started.finish()


@pytest.fixture(scope="module")
def client(server: LrunServer) -> Any:
    return lambda_client(server.url)


def payload_of(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


def tail_of(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def report_fields(log: str, request_id: str) -> list[str]:
    """The tab-separated fields of the REPORT line of ``request_id`` in ``log``."""
    for found in REPORT.finditer(log):
        if found[1] == request_id:
            return found[2].split("\t")
    raise AssertionError(f"no REPORT for {request_id} in:\n{log}")


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def status_of(error: ClientError) -> int:
    status: int = error.response["ResponseMetadata"]["HTTPStatusCode"]
    return status


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


# 1. Invoke


def test_request_response_invoke(client: Any) -> None:
    response = client.invoke(FunctionName="count", Payload=b"{}")
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    body = payload_of(response)
    assert body["invocations"] >= 1 and isinstance(body["pid"], int)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert re.fullmatch(REQUEST_ID, headers["x-amzn-requestid"])
    assert response["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
    assert headers["content-type"] == "application/json"


def test_tail_log_has_the_request_s_start_end_and_report(client: Any) -> None:
    response = client.invoke(FunctionName="sleep", Payload=b'{"s": 0}', LogType="Tail")
    assert response["StatusCode"] == 200 and payload_of(response) == {"slept": 0}
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    log = tail_of(response)
    assert f"START RequestId: {request_id} Version: $LATEST\n" in log
    assert "deadline " in log  # the handler's own print
    assert f"\nEND RequestId: {request_id}\n" in log
    fields = report_fields(log, request_id)
    assert fields[0].startswith("Duration: ") and fields[-1] == ""  # Lambda's trailing tab
    assert "Memory Size: 256 MB" in fields


def test_function_error_is_200_unhandled_with_the_error_json(client: Any) -> None:
    response = client.invoke(FunctionName="fail", Payload=b'{"a": 1}', LogType="Tail")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["ExecutedVersion"] == "$LATEST"
    error = payload_of(response)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == 'boom: {"a": 1}'
    assert isinstance(error["stackTrace"], list)
    assert "[ERROR] ValueError: boom" in tail_of(response)


def test_dry_run_is_204_and_runs_nothing(client: Any, server: LrunServer) -> None:
    response = client.invoke(FunctionName="dry", InvocationType="DryRun", Payload=b"{}")
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""
    assert server.environments("dry") == []
    bad = error_of(lambda: client.invoke(FunctionName="dry", InvocationType="DryRun", Payload=b"{"))
    assert bad.response["Error"]["Code"] == "InvalidRequestContentException"


def test_event_is_202_and_runs_with_that_request_id(client: Any, server: LrunServer) -> None:
    response = client.invoke(FunctionName="evcount", InvocationType="Event", Payload=b'{"e": 1}')
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    assert "ExecutedVersion" not in response
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    # The server keeps invocation logs in <state dir>/logs/<function>.log.
    log_file = server.state_dir / "logs" / "evcount.log"

    def logged() -> str:
        text = log_file.read_text() if log_file.exists() else ""
        return text if f"REPORT RequestId: {request_id}\t" in text else ""

    log = wait_for("the event's REPORT in the log", logged, timeout=30)
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    # The event ran the handler in the environment a synchronous call now reuses.
    after = client.invoke(FunctionName="evcount", Payload=b"{}")
    assert payload_of(after)["invocations"] == 2


@pytest.mark.parametrize(
    ("name", "qualifier"),
    [
        (f"{ACCOUNT}:function:count", None),
        (f"{ARN}:count", None),
        ("count", "$LATEST"),
        ("count:$LATEST", None),
        (f"{ARN}:count:$LATEST", "$LATEST"),
    ],
)
def test_function_named_by_arn_or_qualified(client: Any, name: str, qualifier: str | None) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    response = client.invoke(FunctionName=name, Payload=b"{}", **extra)
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert payload_of(response)["invocations"] >= 1


# 2. Errors, as botocore parses them


def test_unknown_function_is_resource_not_found(client: Any) -> None:
    error = error_of(lambda: client.invoke(FunctionName="nosuch", Payload=b"{}"))
    assert error.response["Error"]["Code"] == "ResourceNotFoundException"
    assert status_of(error) == 404
    assert error.response["Error"]["Message"] == f"Function not found: {ARN}:nosuch:$LATEST"
    for call in (
        lambda: client.get_function(FunctionName="nosuch"),
        lambda: client.get_function_configuration(FunctionName=f"{ARN}:nosuch"),
        lambda: client.invoke(FunctionName="count", Qualifier="7", Payload=b"{}"),
    ):
        other = error_of(call)
        assert other.response["Error"]["Code"] == "ResourceNotFoundException"
        assert status_of(other) == 404


def test_qualifier_that_contradicts_the_name_is_invalid(client: Any) -> None:
    error = error_of(
        lambda: client.invoke(FunctionName="count:$LATEST", Qualifier="prod", Payload=b"{}")
    )
    assert error.response["Error"]["Code"] == "InvalidParameterValueException"
    assert status_of(error) == 400


def test_payload_that_is_not_json_is_invalid_request_content(client: Any) -> None:
    error = error_of(lambda: client.invoke(FunctionName="count", Payload=b"{not json"))
    assert error.response["Error"]["Code"] == "InvalidRequestContentException"
    assert status_of(error) == 400
    assert error.response["Error"]["Message"].startswith("Could not parse request body into json")


def test_payload_over_6_mb_is_request_entity_too_large(client: Any) -> None:
    limit = 6 * 1024 * 1024
    at_limit = b'"' + b"a" * (limit - 2) + b'"'
    assert client.invoke(FunctionName="count", Payload=at_limit)["StatusCode"] == 200
    error = error_of(lambda: client.invoke(FunctionName="count", Payload=at_limit + b" "))
    assert error.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert status_of(error) == 413


def test_reserved_concurrency_zero_throttles(client: Any) -> None:
    error = error_of(lambda: client.invoke(FunctionName="zero", Payload=b"{}"))
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert status_of(error) == 429
    assert error.response["Reason"] == RESERVED
    assert error.response["Error"]["Message"] == "Rate Exceeded."


def test_reserved_concurrency_one_throttles_the_second_concurrent_call(client: Any) -> None:
    outcomes: list[Any] = []

    def call() -> None:
        try:
            outcomes.append(payload_of(client.invoke(FunctionName="capped", Payload=b'{"s": 2}')))
        except ClientError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join(60)
    throttled = [o for o in outcomes if isinstance(o, ClientError)]
    assert [o for o in outcomes if not isinstance(o, ClientError)] == [{"slept": 2}], outcomes
    assert len(throttled) == 1, outcomes
    assert throttled[0].response["Error"]["Code"] == "TooManyRequestsException"
    assert status_of(throttled[0]) == 429 and throttled[0].response["Reason"] == RESERVED
    # Once the first is done, the slot is free again.
    assert payload_of(client.invoke(FunctionName="capped", Payload=b'{"s": 0}')) == {"slept": 0}


# 3. Management


def test_list_functions_and_its_pagination(client: Any) -> None:
    names = sorted(FUNCTIONS_SERVED)
    listed = client.list_functions()
    assert [f["FunctionName"] for f in listed["Functions"]] == names
    assert "NextMarker" not in listed
    first = client.list_functions(MaxItems=5)
    assert [f["FunctionName"] for f in first["Functions"]] == names[:5]
    second = client.list_functions(MaxItems=5, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in second["Functions"]] == names[5:10]
    paginator = client.get_paginator("list_functions")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Functions"]) for p in pages] == [5, 5, 2]
    assert [f["FunctionName"] for p in pages for f in p["Functions"]] == names
    some = paginator.paginate(PaginationConfig={"MaxItems": 7, "PageSize": 5}).build_full_result()
    assert [f["FunctionName"] for f in some["Functions"]] == names[:7]
    rest = paginator.paginate(
        PaginationConfig={"PageSize": 5, "StartingToken": some["NextToken"]}
    ).build_full_result()
    assert [f["FunctionName"] for f in rest["Functions"]] == names[7:]


def test_get_function_and_its_configuration(client: Any) -> None:
    config = client.get_function_configuration(FunctionName="sleep")
    assert config["FunctionName"] == "sleep"
    assert config["FunctionArn"] == f"{ARN}:sleep"
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] == "probe.sleep"
    assert config["MemorySize"] == 256
    assert config["Timeout"] == 5
    assert config["Description"] == "naps"
    assert config["State"] == "Active" and config["LastUpdateStatus"] == "Successful"
    assert config["Version"] == "$LATEST" and config["PackageType"] == "Zip"
    assert config["EphemeralStorage"] == {"Size": 512}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", config["LastModified"])
    assert len(base64.b64decode(config["CodeSha256"])) == 32
    assert config["CodeSize"] == zipped_size(CODE) > 0  # the code zipped, as on upload
    function = client.get_function(FunctionName=f"{ARN}:sleep")
    del config["ResponseMetadata"]
    assert function["Configuration"] == config
    assert function["Code"]["RepositoryType"] == "S3"
    assert "Concurrency" not in function
    capped = client.get_function(FunctionName="capped")
    assert capped["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert capped["Configuration"]["Timeout"] == 5 and capped["Configuration"]["MemorySize"] == 128
    client.get_waiter("function_active_v2").wait(FunctionName="sleep")
    client.get_waiter("function_updated_v2").wait(FunctionName="sleep")


def test_account_settings(client: Any) -> None:
    settings = client.get_account_settings()
    limit = settings["AccountLimit"]
    assert limit["ConcurrentExecutions"] == HOST_LIMIT  # --max-concurrency
    reserved = sum(
        client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions", 0)
        for name in FUNCTIONS_SERVED
    )
    assert reserved >= 1  # capped's 1 (and zero's 0) from the manifest
    assert limit["UnreservedConcurrentExecutions"] == HOST_LIMIT - reserved
    assert settings["AccountUsage"]["FunctionCount"] == len(FUNCTIONS_SERVED)


def test_put_get_delete_function_concurrency(client: Any) -> None:
    def unreserved() -> int:
        value: int = client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
        return value

    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="tunable"
    )
    before = unreserved()
    put = client.put_function_concurrency(FunctionName="tunable", ReservedConcurrentExecutions=3)
    assert put["ReservedConcurrentExecutions"] == 3
    assert client.get_function_concurrency(FunctionName="tunable")[
        "ReservedConcurrentExecutions"
    ] == (3)
    assert client.get_function(FunctionName="tunable")["Concurrency"] == {
        "ReservedConcurrentExecutions": 3
    }
    assert unreserved() == before - 3
    assert payload_of(client.invoke(FunctionName="tunable", Payload=b"{}"))["invocations"] == 1
    client.put_function_concurrency(FunctionName="tunable", ReservedConcurrentExecutions=0)
    throttled = error_of(lambda: client.invoke(FunctionName="tunable", Payload=b"{}"))
    assert status_of(throttled) == 429 and throttled.response["Reason"] == RESERVED
    deleted = client.delete_function_concurrency(FunctionName="tunable")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="tunable"
    )
    assert unreserved() == before
    assert payload_of(client.invoke(FunctionName="tunable", Payload=b"{}"))["invocations"] == 2
    too_many = error_of(
        lambda: client.put_function_concurrency(
            FunctionName="tunable", ReservedConcurrentExecutions=HOST_LIMIT + 1
        )
    )
    assert too_many.response["Error"]["Code"] == "InvalidParameterValueException"
    qualified = error_of(
        lambda: client.put_function_concurrency(
            FunctionName="tunable:$LATEST", ReservedConcurrentExecutions=1
        )
    )
    assert qualified.response["Error"]["Code"] == "InvalidParameterValueException"
    assert status_of(qualified) == 400


def provisioned_ready(client: Any, name: str, qualifier: str = "live") -> dict[str, Any] | None:
    config: dict[str, Any] = client.get_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier
    )
    return config if config["Status"] == "READY" else None


def test_provisioned_concurrency_config_lifecycle(client: Any, server: LrunServer) -> None:
    # As on Lambda: a published version or an alias, never $LATEST.
    latest = error_of(
        lambda: client.put_provisioned_concurrency_config(
            FunctionName="pc", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    )
    assert latest.response["Error"]["Code"] == "InvalidParameterValueException"
    assert latest.response["Error"]["Message"] == (
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    )
    version = client.publish_version(FunctionName="pc")["Version"]

    def missing() -> ClientError:
        return error_of(
            lambda: client.get_provisioned_concurrency_config(FunctionName="pc", Qualifier=version)
        )

    absent = missing()
    assert absent.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert status_of(absent) == 404
    assert client.list_provisioned_concurrency_configs(FunctionName="pc")[
        "ProvisionedConcurrencyConfigs"
    ] == ([])
    put = client.put_provisioned_concurrency_config(
        FunctionName="pc", Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_for("pc READY", lambda: provisioned_ready(client, "pc", version))
    assert ready["AvailableProvisionedConcurrentExecutions"] == 1
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1
    (listed,) = client.list_provisioned_concurrency_configs(FunctionName="pc")[
        "ProvisionedConcurrencyConfigs"
    ]
    assert listed["FunctionArn"] == f"{ARN}:pc:{version}" and listed["Status"] == "READY"
    (env,) = server.environments("pc")
    assert env["kind"] == "provisioned-concurrency" and env["state"] == "provisioned"
    assert env["version"] == version
    response = client.invoke(FunctionName="pc", Qualifier=version, Payload=b"{}", LogType="Tail")
    assert response["ExecutedVersion"] == version
    seen = payload_of(response)
    assert seen["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert seen["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == version
    assert [e["id"] for e in server.environments("pc")] == [env["id"]]  # it served the call
    deleted = client.delete_provisioned_concurrency_config(FunctionName="pc", Qualifier=version)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    gone = missing()
    assert gone.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert status_of(gone) == 404
    wait_for("pc's provisioned environment stopped", lambda: not server.environments("pc"), 30)


def test_provisioned_from_the_manifest(client: Any, server: LrunServer) -> None:
    # The manifest's provisioned_concurrency: a version lrun published behind the alias live.
    ready = wait_for("warm READY", lambda: provisioned_ready(client, "warm"))
    assert ready["RequestedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    live = client.get_alias(FunctionName="warm", Name="live")
    assert live["AliasArn"] == f"{ARN}:warm:live"
    envs = server.environments("warm")
    assert len(envs) == 2
    assert {e["kind"] for e in envs} == {"provisioned-concurrency"}
    assert {(e["version"], tuple(e["aliases"])) for e in envs} == {
        (live["FunctionVersion"], ("live",))
    }


def test_provisioned_environment_reports_no_init_duration(client: Any, server: LrunServer) -> None:
    wait_for("warm READY", lambda: provisioned_ready(client, "warm"))
    before = {e["id"]: e["invocations"] for e in server.environments("warm")}
    assert sorted(before.values()) == [0, 0]  # no request has reached them yet
    response = client.invoke(FunctionName="warm:live", Payload=b"{}", LogType="Tail")
    seen = payload_of(response)
    assert seen["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert response["ExecutedVersion"] == seen["env"]["AWS_LAMBDA_FUNCTION_VERSION"] != "$LATEST"
    after = {e["id"]: e["invocations"] for e in server.environments("warm")}
    assert after.keys() == before.keys() and sorted(after.values()) == [0, 1]
    fields = report_fields(tail_of(response), seen["request_id"])
    assert not [f for f in fields if f.startswith("Init Duration")], fields  # init ran earlier
    billed = next(f for f in fields if f.startswith("Billed Duration: "))
    duration = next(f for f in fields if f.startswith("Duration: "))
    assert int(billed.split()[2]) <= float(duration.split()[1]) + 1  # and is not billed here


def test_management_responses_carry_a_request_id(client: Any) -> None:
    for response in (
        client.get_function_configuration(FunctionName="count"),
        client.list_functions(),
        client.get_account_settings(),
    ):
        assert re.fullmatch(REQUEST_ID, response["ResponseMetadata"].get("RequestId", ""))


# 4. Warm reuse


def test_second_invoke_reuses_the_warm_environment(client: Any, server: LrunServer) -> None:
    first = client.invoke(FunctionName="reuse", Payload=b"{}", LogType="Tail")
    second = client.invoke(FunctionName="reuse", Payload=b"{}", LogType="Tail")
    one, two = payload_of(first), payload_of(second)
    assert one["pid"] == two["pid"]
    assert (one["invocations"], two["invocations"]) == (1, 2)  # module state survived
    first_id, second_id = (
        r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] for r in (first, second)
    )
    cold = report_fields(tail_of(first), first_id)
    warm = report_fields(tail_of(second), second_id)
    assert [f for f in cold if f.startswith("Init Duration: ")], cold
    assert not [f for f in warm if f.startswith("Init Duration")], warm
    (env,) = server.environments("reuse")
    assert env["invocations"] == 2 and env["state"] == "idle" and env["kind"] == "on-demand"


# 5. The AWS CLI


def awscli_version() -> tuple[int, ...]:
    try:
        from awscli import __version__
    except ImportError:
        return (0,)
    return tuple(int(part) for part in __version__.split(".")[:2])


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
            [sys.executable, "-m", "awscli", *args, "--endpoint-url", server.url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**_environ_without_aws(), **env},
        )

    return run


# AWS CLI v2 reads blob arguments as base64 unless told otherwise; v1 (what `pip install awscli`
# gives) sends them as they are and does not know the option at all.
BINARY_FORMAT = ("--cli-binary-format", "raw-in-base64-out") if awscli_version()[0] >= 2 else ()


def _environ_without_aws() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def test_aws_cli_invoke(aws: Callable[..., Any], tmp_path: Path) -> None:
    done = aws(
        "lambda",
        "invoke",
        "--function-name",
        "count",
        "--payload",
        "{}",
        *BINARY_FORMAT,
        "--log-type",
        "Tail",
        "--region",
        "us-east-1",
        "out.json",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["StatusCode"] == 200 and printed["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId: " in base64.b64decode(printed["LogResult"]).decode()
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["invocations"] >= 1 and isinstance(result["pid"], int)
    missing = aws(
        "lambda", "invoke", "--function-name", "nosuch", "--region", "us-east-1", "out2.json"
    )
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr


def test_aws_cli_list_functions_pages_through_all(aws: Callable[..., Any]) -> None:
    done = aws("lambda", "list-functions", "--page-size", "5")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["Functions"]
    assert [f["FunctionName"] for f in listed] == sorted(FUNCTIONS_SERVED)
    assert {f["Runtime"] for f in listed} == {"python3.13"}


# 6. `lrun` itself finds the server


def test_lrun_invoke_and_ps_use_the_running_server(
    client: Any, server: LrunServer, lrun: Lrun
) -> None:
    seen = payload_of(client.invoke(FunctionName="viacli", Payload=b"{}"))
    assert seen["invocations"] == 1
    done = lrun("invoke", "viacli", "--payload", "{}", cwd=server.manifest_dir, env=server.env)
    assert done.returncode == 0, done.stderr
    through = json.loads(done.stdout)
    # The same warm environment: a one-shot run would be a fresh process with a count of 1.
    assert through == {"pid": seen["pid"], "invocations": 2}
    start = re.search(rf"^START RequestId: ({REQUEST_ID}) Version: \$LATEST$", done.stderr, re.M)
    assert start, done.stderr
    assert f"END RequestId: {start[1]}" in done.stderr
    warm = report_fields(done.stderr, start[1])
    assert not [f for f in warm if f.startswith("Init Duration")], warm

    listed = lrun("ps", "--json", cwd=server.manifest_dir, env=server.env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    (mine,) = [r for r in rows if r["function"] == "viacli"]
    assert mine["state"] == "idle" and mine["kind"] == "on-demand"
    assert mine["invocations"] == 2 and mine["memory_mb"] == 128
    assert isinstance(mine["memory_used_mb"], int) and 0 < mine["memory_used_mb"] <= 128
    assert {r["function"] for r in rows} >= {"viacli", "warm"}
    assert {r["id"] for r in rows} == {r["id"] for r in server.environments()}

    table = lrun("ps", cwd=server.manifest_dir, env={**server.env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[1]
    for column in ("environment", "function", "state", "kind", "age", "invocations", "memory"):
        assert column in header, table.stdout
    # The environments' table, then what the invocations would cost (issue 14): a row each.
    (line,) = [row for row in table.stdout.splitlines() if mine["id"][:12] in row]
    assert " viacli " in line and " idle " in line and " on-demand " in line
    assert "/ 128 MB" in line
    assert "cost x86_64" in table.stdout
    lines = table.stdout.splitlines()
    (cost,) = [r for r in lines if " viacli " in r and mine["id"][:12] not in r]
    assert "$" in cost
    assert " $LATEST " in line and "version" in header, table.stdout
    # warm's provisioned environments run the version behind live, and say so.
    ids = [e["id"][:12] for e in server.environments("warm")]
    warm = [r for r in lines if any(i in r for i in ids)]
    assert len(warm) == len(ids) == 2 and all("(live)" in r for r in warm), table.stdout


# 7. Graceful stop


def test_sigterm_lets_in_flight_invocations_finish(
    serve_lrun: ServerFactory, tmp_path: Path, lrun: Lrun
) -> None:
    project = write_manifest(tmp_path / "project", {"nap": ("probe.sleep", "timeout: 10")})
    server = serve_lrun(project)
    client = lambda_client(server.url)
    assert (server.state_dir / "server.json").exists()
    outcomes: dict[str, Any] = {}

    def call(key: str, **extra: Any) -> None:
        try:
            response = client.invoke(FunctionName="nap", Payload=b'{"s": 2}', **extra)
            outcomes[key] = (
                response["StatusCode"],
                payload_of(response),
                response.get("LogResult"),
            )
        except Exception as exc:  # reported by the assertions below
            outcomes[key] = exc

    threads = [
        threading.Thread(target=call, args=("plain",)),
        threading.Thread(target=call, args=("tail",), kwargs={"LogType": "Tail"}),
    ]
    for thread in threads:
        thread.start()
    wait_for(
        "both invocations running",
        lambda: [e["state"] for e in server.environments("nap")] == ["busy", "busy"],
        timeout=30,
    )
    server.terminate()
    assert all(thread.is_alive() for thread in threads), "the invocations ended before SIGTERM"
    time.sleep(0.5)
    refused = refuses_connections(server.url)
    for thread in threads:
        thread.join(60)
    assert outcomes["plain"][:2] == (200, {"slept": 2}), outcomes
    assert outcomes["tail"][:2] == (200, {"slept": 2}), outcomes
    assert "REPORT RequestId: " in base64.b64decode(outcomes["tail"][2]).decode()
    assert refused, "the server still took new connections after SIGTERM"
    server.finish()
    output = server.output()
    assert "stopping: no new requests; letting in-flight invocations finish" in output
    assert "stopped; all environments removed" in output
    assert not (server.state_dir / "server.json").exists()
    after = lrun("ps", cwd=project, env=server.env)
    assert after.returncode == 2 and "no `lrun serve` is running" in after.stderr


def refuses_connections(url: str) -> bool:
    """True if a new connection to ``url`` is refused."""
    try:
        urllib.request.urlopen(url + "/lrun/health", timeout=5).close()
    except OSError:
        return True
    return False


# 8. Clean-up on start


def plant_container(*labels: str, auto_remove: bool) -> str:
    """A container this test owns, from an lrun image, with ``labels`` (key=value)."""
    command = ["docker", "run", "-d", *(["--rm"] if auto_remove else [])]
    for label in labels:
        command += ["--label", label]
    command += ["--entrypoint", "sleep", ORPHAN_IMAGE, "300"]
    started = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return started.stdout.strip()


def remove_container(container_id: str) -> None:
    subprocess.run(["docker", "rm", "-f", container_id], capture_output=True, timeout=60)


class CrashedServer:
    """An owner label naming a real process, which ``crash()`` ends, as a crashed server's would.

    Its containers are not orphans until then, so a sweep by some other `lrun serve` on a shared
    engine cannot take them while they are being planted."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(["sleep", "300"])
        self.owner = f"serve-{self._process.pid}-{secrets.token_hex(4)}"
        # Labelled as lrun labels what it starts: this host, and the owner's start time.
        self.labels = [f"{k}={v}" for k, v in identify(self.owner).labels().items()]

    def crash(self) -> None:
        self._process.kill()
        self._process.wait()


@pytest.fixture
def crashed() -> Iterator[CrashedServer]:
    server = CrashedServer()
    yield server
    server.crash()


def removed_count(output: str) -> int:
    found = re.search(r"removed (\d+) containers left behind by an earlier lrun", output)
    assert found, output
    return int(found[1])


def check_removed_count(output: str) -> None:
    # At least the planted one: anything else a dead lrun process left goes too.
    assert removed_count(output) >= 1, output


def present(container_id: str) -> bool:
    return any(cid == container_id for cid, _ in lrun_containers())


def test_start_removes_containers_a_crashed_server_left(
    serve_lrun: ServerFactory, tmp_path: Path, crashed: CrashedServer
) -> None:
    # Labelled and auto-removing, as lrun runs its containers.
    planted = plant_container(f"{LABEL_MANAGED}=1", *crashed.labels, auto_remove=True)
    try:
        crashed.crash()
        project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
        server = serve_lrun(project)
        check_removed_count(server.output())
        wait_for(f"container {planted[:12]} removed", lambda: not present(planted), timeout=10)
        # The server itself is unaffected: it serves, and stops cleanly.
        response = lambda_client(server.url).invoke(FunctionName="count", Payload=b"{}")
        assert payload_of(response)["invocations"] == 1
        server.finish()
    finally:
        remove_container(planted)


def test_start_removes_left_behind_containers_that_do_not_remove_themselves(
    serve_lrun: ServerFactory, tmp_path: Path, crashed: CrashedServer
) -> None:
    planted = plant_container(f"{LABEL_MANAGED}=1", *crashed.labels, auto_remove=False)
    try:
        crashed.crash()
        project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
        server = serve_lrun(project)
        check_removed_count(server.output())
        # Said removed, before the server answered: gone now (no auto-removal to wait for).
        assert not present(planted), f"container {planted[:12]} is still there"
        server.finish()
    finally:
        remove_container(planted)


def test_start_leaves_live_owners_containers_alone(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    # Owned by this test process, which is alive: not an orphan, whatever the sweep's scope.
    owner = identify(f"serve-{os.getpid()}-{secrets.token_hex(4)}")
    planted = plant_container(
        f"{LABEL_MANAGED}=1", *(f"{k}={v}" for k, v in owner.labels().items()), auto_remove=True
    )
    try:
        project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
        server = serve_lrun(project)
        assert "containers left behind" not in server.output()
        assert planted in {cid for cid, _ in lrun_containers()}
        server.finish()
    finally:
        remove_container(planted)


def test_start_leaves_and_reports_containers_it_cannot_prove_orphaned(
    serve_lrun: ServerFactory, tmp_path: Path, crashed: CrashedServer
) -> None:
    """A dead pid means nothing on another host or in another pid namespace (a remote
    DOCKER_HOST, CI jobs sharing an engine), nor for a container an older lrun did not mark."""
    labels = dict(label.split("=", 1) for label in crashed.labels)
    elsewhere = {**labels, LABEL_HOST: "another-boot-id/pid:[4026531836]"}
    other_namespace = {**labels, LABEL_HOST: labels[LABEL_HOST].split("/")[0] + "/pid:[1]"}
    older = {k: v for k, v in labels.items() if k == LABEL_OWNER}
    planted = [
        plant_container(
            f"{LABEL_MANAGED}=1", *(f"{k}={v}" for k, v in chosen.items()), auto_remove=True
        )
        for chosen in (elsewhere, other_namespace, older)
    ]
    try:
        crashed.crash()  # each owner's pid is now dead in this process table
        project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
        server = serve_lrun(project)
        output = server.output()
        for container in planted:
            assert present(container), f"container {container[:12]} was removed:\n{output}"
        lines = {c: [line for line in output.splitlines() if c[:12] in line] for c in planted}
        assert all(len(found) == 1 for found in lines.values()), output  # one line each
        assert "another host or pid namespace" in lines[planted[0]][0]
        assert "another host or pid namespace" in lines[planted[1]][0]
        assert "did not record its host" in lines[planted[2]][0]
        assert all(f"docker rm -f {c[:12]}" in lines[c][0] for c in planted)
        server.finish()
    finally:
        for container in planted:
            remove_container(container)


def test_start_removes_containers_whose_owner_pid_now_names_a_later_process(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    # This test process is alive, but it is not the process that started the container: that
    # one started at another time, and its pid was reused.
    owner = identify(f"serve-{os.getpid()}-{secrets.token_hex(4)}")
    reused = {**owner.labels(), LABEL_OWNER_STARTED: str(int(owner.started) - 1)}
    planted = plant_container(
        f"{LABEL_MANAGED}=1", *(f"{k}={v}" for k, v in reused.items()), auto_remove=False
    )
    try:
        project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
        server = serve_lrun(project)
        check_removed_count(server.output())
        assert not present(planted), f"container {planted[:12]} is still there"
        server.finish()
    finally:
        remove_container(planted)


def test_orphan_sweep_spares_containers_lrun_did_not_start() -> None:
    """Runtime images do not mark their containers as lrun's, and a container without an
    lrun owner label is never taken for a dead server's."""
    token = secrets.token_hex(6)
    from_image = plant_container(f"lrun-acceptance.token={token}", auto_remove=True)
    unowned = plant_container(f"{LABEL_MANAGED}=1", auto_remove=True)
    try:
        labels = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Labels}}", from_image],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert LABEL_MANAGED not in json.loads(labels.stdout)  # not inherited from the image
        found = {c.id for c in orphans(docker_backend.connect())}
        assert from_image not in found and unowned not in found
    finally:
        remove_container(from_image)
        remove_container(unowned)


def test_parallel_servers_do_not_collide(serve_lrun: ServerFactory, tmp_path: Path) -> None:
    """A second server (own port, own state directory) serves beside the first."""
    project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
    one, two = serve_lrun(project), serve_lrun(project)
    assert one.port != two.port
    for server in (one, two):
        record = json.loads((server.state_dir / "server.json").read_text())
        assert record == {
            "url": server.url,
            "pid": server.pid,
            "manifest": str((project / "lrun.yaml").resolve()),
        }
        assert (
            payload_of(lambda_client(server.url).invoke(FunctionName="count"))["invocations"] == 1
        )
    one.finish()
    assert payload_of(lambda_client(two.url).invoke(FunctionName="count"))["invocations"] == 2
    two.finish()


def test_port_in_use_is_a_one_line_error(serve_lrun: ServerFactory, tmp_path: Path) -> None:
    project = write_manifest(tmp_path / "project", {"count": ("probe.count", "")})
    first = serve_lrun(project)
    second = subprocess.run(
        [*serve_command(), "serve", "--port", str(first.port)],
        cwd=project,
        env={**os.environ, "LRUN_STATE_DIR": str(tmp_path / "second-state")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{first.port}: ")
    assert "address already in use" in line.lower()
    assert line.endswith("; is another `lrun serve` running? choose another with --port")
    assert "Traceback" not in second.stderr
    assert (first.state_dir / "server.json").exists()  # the first server's record is untouched
    assert payload_of(lambda_client(first.url).invoke(FunctionName="count"))["invocations"] == 1
    first.finish()
