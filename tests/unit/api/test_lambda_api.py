"""Unit tests for orchestrator.api: name resolution, the error table, and every route.

Routes are driven through ``LambdaApi(service).router.dispatch`` with ``Request`` values built
here (the router fills in path parameters); the service behind is the real one, on a fake
container engine (``tests.fakes``), so invocations run end to end without Docker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.api.lambda_api import MAX_ASYNC_PAYLOAD, LambdaApi, error_response, resolve
from orchestrator.errors import (
    AccessDenied,
    BackendError,
    InvalidParameterValue,
    InvalidRequestContent,
    LrunError,
    RequestTooLarge,
    ResourceNotFound,
    TooManyRequests,
    Validation,
)
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.queues import Queues
from orchestrator.events.store import Store
from orchestrator.http_server import Request, Response
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD
from tests.fakes import FakeContext, Handler, Served, eventually, fake_service
from tests.unit.rawhttp import run

T = TypeVar("T")
TIMEOUT_S = 4.0
ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FUNCTIONS = "/2015-03-31/functions"
INVALID_NAME = (
    "1 validation error detected: Value '{}' at 'functionName' failed to satisfy constraint: "
    "Member must satisfy regular expression pattern: "
)
MISMATCH = "The derived qualifier from the function name does not match the specified qualifier."
QUALIFIED = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)


# resolve()


@pytest.mark.parametrize(
    ("function", "qualifier", "expected"),
    [
        ("echo", None, ("echo", None)),
        ("echo", "$LATEST", ("echo", "$LATEST")),
        ("echo:$LATEST", None, ("echo", "$LATEST")),
        ("echo:7", None, ("echo", "7")),
        ("echo:prod", "prod", ("echo", "prod")),
        ("my-fn_2", None, ("my-fn_2", None)),
        ("000000000000:function:echo", None, ("echo", None)),
        ("000000000000:function:echo:$LATEST", None, ("echo", "$LATEST")),
        (f"{ARN}:echo", None, ("echo", None)),
        (f"{ARN}:echo:prod", None, ("echo", "prod")),
        (f"{ARN}:echo", "3", ("echo", "3")),
        ("arn:aws:lambda:us-east-1:000000000000:function:echo", None, ("echo", None)),
        ("a" * 64, None, ("a" * 64, None)),
    ],
)
def test_resolve_accepts_names_and_arns(
    function: str, qualifier: str | None, expected: tuple[str, str | None]
) -> None:
    assert resolve(function, qualifier) == expected


@pytest.mark.parametrize(
    ("function", "qualifier"),
    [("echo:1", "2"), ("echo:$LATEST", "1"), (f"{ARN}:echo:prod", "$LATEST")],
)
def test_resolve_refuses_a_qualifier_that_differs_from_the_names(
    function: str, qualifier: str
) -> None:
    with pytest.raises(InvalidParameterValue) as refused:
        resolve(function, qualifier)
    assert refused.value.message == MISMATCH
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "function",
    [
        "bad name",
        "echo!",
        "echo:",
        "echo:1:2",
        "function:echo:x:y",
        f"{ARN}:",
        "00000:function:echo",
        "arn:aws:s3:::bucket",
    ],
)
def test_resolve_refuses_an_invalid_name_with_lambdas_validation_message(function: str) -> None:
    with pytest.raises(Validation) as refused:
        resolve(function, None)
    assert refused.value.message.startswith(INVALID_NAME.format(function))
    assert refused.value.error_type == "ValidationException"


def test_resolve_refuses_another_region_as_aws_does() -> None:
    with pytest.raises(ResourceNotFound) as refused:
        resolve("arn:aws:lambda:eu-west-1:000000000000:function:echo", None)
    assert refused.value.message == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )


def test_resolve_refuses_another_account_as_aws_does() -> None:
    with pytest.raises(AccessDenied) as refused:
        resolve("123456789012:function:echo", None, "Invoke")
    assert refused.value.status == 403
    assert refused.value.message == (
        "User: arn:aws:iam::000000000000:root is not authorized to perform: "
        "lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:echo "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )


# error_response()


def decoded(response: Response) -> Any:
    return json.loads(response.body)


def test_error_response_for_resource_not_found() -> None:
    response = error_response(ResourceNotFound(f"Function not found: {ARN}:nope:$LATEST"))
    assert response.status == 404
    assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert response.headers["Content-Type"] == "application/json"
    uuid.UUID(response.headers["x-amzn-RequestId"])
    assert decoded(response) == {
        "Type": "User",
        "Message": f"Function not found: {ARN}:nope:$LATEST",
    }


def test_error_response_for_too_many_requests_carries_the_reason() -> None:
    response = error_response(TooManyRequests("ConcurrentInvocationLimitExceeded"))
    assert response.status == 429
    assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert decoded(response) == {
        "Reason": "ConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    }


def test_error_response_for_request_too_large() -> None:
    response = error_response(RequestTooLarge("Request must be smaller than 6291456 bytes"))
    assert response.status == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert decoded(response) == {
        "Type": "User",
        "Message": "Request must be smaller than 6291456 bytes",
    }


def test_error_response_for_invalid_request_content_uses_lowercase_message() -> None:
    response = error_response(InvalidRequestContent("Could not parse request body into json"))
    assert response.status == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert decoded(response) == {
        "Type": "User",
        "message": "Could not parse request body into json",
    }


def test_error_response_for_invalid_parameter_value() -> None:
    response = error_response(InvalidParameterValue(MISMATCH))
    assert response.status == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert decoded(response) == {"Type": "User", "message": MISMATCH}


@pytest.mark.parametrize(
    "error",
    [LrunError("the state directory is not writable"), BackendError("Docker could not start")],
)
def test_error_response_for_an_lrun_error_is_a_service_exception(
    error: LrunError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="orchestrator.api.lambda_api"):
        response = error_response(error)
    assert response.status == 500
    assert response.headers["x-amzn-ErrorType"] == "ServiceException"
    assert decoded(response) == {"Type": "Service", "Message": str(error)}
    assert caplog.records == []  # an lrun error is expected: no traceback


def test_error_response_for_an_unexpected_exception_is_a_logged_service_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="orchestrator.api.lambda_api"):
        response = error_response(KeyError("surprise"))
    assert response.status == 500
    assert response.headers["x-amzn-ErrorType"] == "ServiceException"
    assert decoded(response) == {"Type": "Service", "Message": "'surprise'"}
    assert [r.exc_info is not None for r in caplog.records] == [True]  # a bug: traceback kept


# Routes


def write_manifest(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("# handlers come from the fake registry\n")
    fn = "runtime: python3.13, code: ./code"
    path = tmp_path / "lrun.yaml"
    path.write_text(
        "functions:\n"
        f"  echo: {{{fn}, handler: app.echo, description: says it back,"
        " environment: {GREETING: hello}}\n"
        f"  fail: {{{fn}, handler: app.fail}}\n"
        f"  crash: {{{fn}, handler: app.crash}}\n"
        f"  capped: {{{fn}, handler: app.echo, reserved_concurrency: 1, memory: 256, timeout: 9}}\n"
        f"  zero: {{{fn}, handler: app.echo, reserved_concurrency: 0}}\n"
    )
    return path


ALL = ["capped", "crash", "echo", "fail", "zero"]


def echo(event: Any, context: FakeContext) -> dict[str, Any]:
    context.log(f"handling {context.aws_request_id}")
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "client_context": context.client_context,
        "trace_id": context.trace_id,
    }


def fail(event: Any, context: FakeContext) -> None:
    context.log("about to fail")
    raise ValueError("boom")


def crash(event: Any, context: FakeContext) -> None:
    raise SystemExit(2)


HANDLERS: dict[str, Handler] = {"app.echo": echo, "app.fail": fail, "app.crash": crash}


@dataclass
class Api:
    api: LambdaApi
    served: Served

    async def __call__(
        self,
        method: str,
        path: str,
        body: bytes | object = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        request = Request(method, path, dict(query or {}), lowered, raw, "127.0.0.1")
        return await self.api.router.dispatch(request)


def scenario(
    tmp_path: Path,
    test: Callable[[Api], Awaitable[T]],
    handlers: Mapping[str, Handler] | None = None,
    **options: Any,
) -> T:
    path = write_manifest(tmp_path)

    async def main() -> T:
        async with fake_service(path, HANDLERS if handlers is None else handlers, **options) as s:
            store = Store(tmp_path / "state" / "lrun.db")
            store.open()
            configs = InvokeConfigs(store)
            api = LambdaApi(s.service, None, configs)
            events = EventQueue(store, s.service, api.effective_config, Queues(store).send_in)
            api.events = events
            dispatcher = asyncio.ensure_future(events.run())
            try:
                return await test(Api(api, s))
            finally:
                dispatcher.cancel()
                await asyncio.gather(dispatcher, return_exceptions=True)
                await events.close(1.0)
                store.close()

    return run(main(), TIMEOUT_S)


def assert_error(response: Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert response.headers["x-amzn-ErrorType"] == error_type
    body: dict[str, Any] = json.loads(response.body)
    return body


def invoke_path(function: str) -> str:
    return f"{FUNCTIONS}/{function}/invocations"


# Invoke


def test_invoke_request_response(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("echo"), {"n": 1})
        assert response.status == 200
        request_id = response.headers["x-amzn-RequestId"]
        uuid.UUID(request_id)
        assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
        assert response.headers["Content-Type"] == "application/json"
        assert "X-Amz-Function-Error" not in response.headers
        assert "X-Amz-Log-Result" not in response.headers
        answer = json.loads(response.body)
        assert answer["event"] == {"n": 1}
        assert answer["request_id"] == request_id  # the runtime got the same id
        assert answer["arn"] == f"{ARN}:echo"  # as invoked: unqualified
        assert answer["client_context"] is None

    scenario(tmp_path, test)


def test_invoke_is_warm_the_second_time(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        await api("POST", invoke_path("echo"))
        before = len(api.served.backend.calls)
        response = await api("POST", invoke_path("echo"))
        assert response.status == 200
        assert api.served.backend.engine_calls(before) == []
        assert len(api.served.backend.specs) == 1

    scenario(tmp_path, test)


def test_invoke_by_qualified_name_or_arn(tmp_path: Path) -> None:
    cases = [
        ("echo:$LATEST", {}, f"{ARN}:echo:$LATEST"),
        ("echo", {"Qualifier": "$LATEST"}, f"{ARN}:echo:$LATEST"),
        (f"{ARN}:echo", {}, f"{ARN}:echo"),
        ("000000000000:function:echo", {}, f"{ARN}:echo"),
    ]

    async def test(api: Api) -> None:
        for function, query, arn in cases:
            response = await api("POST", invoke_path(function), {}, query=query)
            assert response.status == 200, function
            assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
            assert json.loads(response.body)["arn"] == arn  # as invoked
        assert len(api.served.backend.specs) == 1  # one function, one warm environment

    scenario(tmp_path, test)


def test_invoke_passes_an_empty_body_as_an_empty_object(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("echo"), b"")
        assert json.loads(response.body)["event"] == {}

    scenario(tmp_path, test)


def test_invoke_passes_client_context_and_trace_id(tmp_path: Path) -> None:
    context = json.dumps({"custom": {"k": "v"}})
    headers = {
        "X-Amz-Client-Context": base64.b64encode(context.encode()).decode(),
        "X-Amzn-Trace-Id": "Root=1-5e1b4151-5ac6c58f5b5daa6532e4f2e8",
    }

    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("echo"), {}, headers)
        answer = json.loads(response.body)
        assert answer["client_context"] == context
        assert answer["trace_id"] == headers["X-Amzn-Trace-Id"]
        bad = await api("POST", invoke_path("echo"), {}, {"X-Amz-Client-Context": "%%%"})
        body = assert_error(bad, 400, "InvalidRequestContentException")
        assert body["message"] == "Client context must be a valid Base64-encoded JSON object."

    scenario(tmp_path, test)


def test_invoke_function_error_is_200_unhandled(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("fail"))
        assert response.status == 200
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
        answer = json.loads(response.body)
        assert answer["errorType"] == "ValueError" and answer["errorMessage"] == "boom"

    scenario(tmp_path, test)


def test_invoke_runtime_exit_is_200_unhandled_exit_error(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("crash"))
        assert response.status == 200
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        request_id = response.headers["x-amzn-RequestId"]
        assert json.loads(response.body) == {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
            "exit status 2",
        }

    scenario(tmp_path, test)


def log_of(response: Response) -> str:
    return base64.b64decode(response.headers["X-Amz-Log-Result"]).decode()


def test_invoke_with_log_type_tail_returns_the_invocations_log(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("echo"), {}, {"X-Amz-Log-Type": "Tail"})
        assert response.status == 200
        request_id = response.headers["x-amzn-RequestId"]
        assert json.loads(response.body)["request_id"] == request_id
        lines = log_of(response).splitlines()
        assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
        assert f"handling {request_id}" in lines
        assert lines[-2] == f"END RequestId: {request_id}"
        assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
        assert "Init Duration: " in lines[-1]  # the first invocation was a cold start
        warm = await api("POST", invoke_path("echo"), {}, {"X-Amz-Log-Type": "Tail"})
        assert "Init Duration" not in log_of(warm)
        assert warm.headers["x-amzn-RequestId"] in log_of(warm)

    scenario(tmp_path, test)


def test_invoke_with_log_type_tail_on_a_function_error(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("fail"), {}, {"X-Amz-Log-Type": "Tail"})
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        log = log_of(response)
        assert "about to fail\n[ERROR] ValueError: boom\n" in log
        assert f"END RequestId: {response.headers['x-amzn-RequestId']}" in log

    scenario(tmp_path, test)


def test_invoke_dry_run_is_204_and_runs_nothing(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("echo"), {}, {"X-Amz-Invocation-Type": "DryRun"})
        assert (response.status, response.body) == (204, b"")
        assert "x-amzn-RequestId" in response.headers
        assert api.served.backend.specs == []

    scenario(tmp_path, test)


def test_invoke_event_is_202_and_runs_behind(tmp_path: Path) -> None:
    seen: list[tuple[Any, str]] = []

    def record(event: Any, context: FakeContext) -> None:
        seen.append((event, context.aws_request_id))

    async def test(api: Api) -> None:
        response = await api(
            "POST", invoke_path("echo"), {"job": 1}, {"X-Amz-Invocation-Type": "Event"}
        )
        assert (response.status, response.body) == (202, b"")
        assert "X-Amz-Executed-Version" not in response.headers
        await eventually(lambda: len(seen) == 1, what="the event to run")
        assert seen == [({"job": 1}, response.headers["x-amzn-RequestId"])]
        await eventually(lambda: api.served.service.functions["echo"].invocations == 1)

    scenario(tmp_path, test, {"app.echo": record})


def test_invoke_with_bad_json_is_400_invalid_request_content(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for payload in (b"{", b"not json", b'{"a": 1} x', b"\xff"):
            response = await api("POST", invoke_path("echo"), payload)
            body = assert_error(response, 400, "InvalidRequestContentException")
            assert body["Type"] == "User"
            assert body["message"].startswith(
                "Could not parse request body into json: Could not parse payload into json: "
            )
            assert "Message" not in body
        assert api.served.backend.specs == []

    scenario(tmp_path, test)


def test_invoke_with_a_payload_over_6_mb_is_413(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        payload = b'"' + b"x" * (MAX_SYNC_PAYLOAD - 1) + b'"'
        response = await api("POST", invoke_path("echo"), payload)
        body = assert_error(response, 413, "RequestEntityTooLargeException")
        assert body["Message"].startswith("Request must be smaller than 6291456 bytes")

    scenario(tmp_path, test)


def test_invoke_event_with_a_payload_over_the_async_limit_is_413(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        payload = b'"' + b"x" * MAX_ASYNC_PAYLOAD + b'"'
        event = {"X-Amz-Invocation-Type": "Event"}
        response = await api("POST", invoke_path("echo"), payload, event)
        body = assert_error(response, 413, "RequestEntityTooLargeException")
        assert body["Message"].startswith(f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes")
        assert api.served.backend.specs == []

    scenario(tmp_path, test)


def test_invoke_an_unknown_function_is_404(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("nope"))
        body = assert_error(response, 404, "ResourceNotFoundException")
        assert body == {"Type": "User", "Message": f"Function not found: {ARN}:nope:$LATEST"}

    scenario(tmp_path, test)


def test_invoke_an_unknown_version_is_404(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for function, query in (("echo:7", {}), ("echo", {"Qualifier": "7"})):
            response = await api("POST", invoke_path(function), {}, query=query)
            body = assert_error(response, 404, "ResourceNotFoundException")
            assert body["Message"] == f"Function not found: {ARN}:echo:7"
        assert api.served.backend.specs == []

    scenario(tmp_path, test)


def test_invoke_with_mismatched_qualifiers_or_a_bad_name_is_400(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        mismatch = await api("POST", invoke_path("echo:1"), {}, query={"Qualifier": "2"})
        assert assert_error(mismatch, 400, "InvalidParameterValueException")["message"] == MISMATCH
        bad = await api("POST", invoke_path("bad!name"))
        body = assert_error(bad, 400, "ValidationException")
        assert body["message"].startswith(INVALID_NAME.format("bad!name"))
        kind = await api("POST", invoke_path("echo"), {}, {"X-Amz-Invocation-Type": "Later"})
        assert assert_error(kind, 400, "ValidationException") == {
            "message": "1 validation error detected: Value 'Later' at 'invocationType' failed to "
            "satisfy constraint: Member must satisfy enum value set: [DryRun, Event, "
            "RequestResponse]"
        }

    scenario(tmp_path, test)


def test_invoke_throttled_is_429_with_the_reason(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("POST", invoke_path("zero"))
        body = assert_error(response, 429, "TooManyRequestsException")
        assert body == {
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        }
        tail = await api("POST", invoke_path("zero"), {}, {"X-Amz-Log-Type": "Tail"})
        assert_error(tail, 429, "TooManyRequestsException")

    scenario(tmp_path, test)


# Functions


CONFIG_KEYS = {
    "FunctionName",
    "FunctionArn",
    "Runtime",
    "Role",
    "Handler",
    "CodeSize",
    "Description",
    "Timeout",
    "MemorySize",
    "LastModified",
    "CodeSha256",
    "Version",
    "Environment",
    "TracingConfig",
    "RevisionId",
    "State",
    "LastUpdateStatus",
    "PackageType",
    "Architectures",
    "EphemeralStorage",
    "LoggingConfig",
    "SnapStart",
    "RuntimeVersionConfig",
}


def assert_configuration(config: dict[str, Any], name: str, memory: int, timeout: int) -> None:
    assert set(config) == CONFIG_KEYS
    assert config["FunctionName"] == name
    assert config["FunctionArn"] == f"{ARN}:{name}"
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] in ("app.echo", "app.fail", "app.crash")
    assert (config["MemorySize"], config["Timeout"]) == (memory, timeout)
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "Successful")
    assert (config["PackageType"], config["Version"]) == ("Zip", "$LATEST")
    assert config["Role"] == "arn:aws:iam::000000000000:role/lrun-local"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", config["LastModified"])
    assert len(base64.b64decode(config["CodeSha256"])) == 32
    uuid.UUID(config["RevisionId"])
    assert config["EphemeralStorage"] == {"Size": 512}
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert config["TracingConfig"] == {"Mode": "PassThrough"}
    assert config["Architectures"] == ["x86_64"]
    assert config["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert re.fullmatch(
        r"arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}",
        config["RuntimeVersionConfig"]["RuntimeVersionArn"],
    )


def test_list_functions_returns_every_configuration(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for path in (FUNCTIONS, f"{FUNCTIONS}/"):
            response = await api("GET", path)
            assert response.status == 200
            body = json.loads(response.body)
            assert [f["FunctionName"] for f in body["Functions"]] == ALL
            assert "NextMarker" not in body
        capped = next(f for f in body["Functions"] if f["FunctionName"] == "capped")
        assert_configuration(capped, "capped", 256, 9)

    scenario(tmp_path, test)


def test_list_functions_pages_with_max_items_and_marker(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        names: list[str] = []
        query = {"MaxItems": "2"}
        pages = 0
        while True:
            body = json.loads((await api("GET", FUNCTIONS, query=query)).body)
            pages += 1
            assert len(body["Functions"]) <= 2
            names += [f["FunctionName"] for f in body["Functions"]]
            if "NextMarker" not in body:
                break
            query = {"MaxItems": "2", "Marker": body["NextMarker"]}
        assert (pages, names) == (3, ALL)
        first = json.loads((await api("GET", FUNCTIONS, query={"MaxItems": "2"})).body)
        assert first["NextMarker"] == "echo"  # the first name of the next page
        last = json.loads((await api("GET", FUNCTIONS, query={"Marker": "echo"})).body)
        assert [f["FunctionName"] for f in last["Functions"]] == ["echo", "fail", "zero"]
        many = json.loads((await api("GET", FUNCTIONS, query={"MaxItems": "500"})).body)
        assert len(many["Functions"]) == 5  # pages hold at most 50

    scenario(tmp_path, test)


def test_list_functions_refuses_an_invalid_max_items(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for max_items, constraint in (
            ("0", "greater than or equal to 1"),
            ("-1", "greater than or equal to 1"),
            ("10001", "less than or equal to 10000"),
        ):
            response = await api("GET", FUNCTIONS, query={"MaxItems": max_items})
            body = assert_error(response, 400, "ValidationException")
            assert body["message"] == (
                f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
                f"satisfy constraint: Member must have value {constraint}"
            )
        for max_items in ("abc", "1.5"):
            response = await api("GET", FUNCTIONS, query={"MaxItems": max_items})
            body = assert_error(response, 400, "InvalidParameterValueException")
            assert "MaxItems" in body["message"]

    scenario(tmp_path, test)


def test_list_functions_refuses_an_unknown_marker(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("GET", FUNCTIONS, query={"Marker": "nope"})
        body = assert_error(response, 400, "InvalidParameterValueException")
        assert "nope" in body["message"]

    scenario(tmp_path, test)


def test_get_function_shape(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("GET", f"{FUNCTIONS}/echo")
        assert response.status == 200
        body = json.loads(response.body)
        assert set(body) == {"Configuration", "Code"}  # no Concurrency: none reserved
        config = body["Configuration"]
        assert_configuration(config, "echo", 128, 3)
        assert config["Handler"] == "app.echo"
        assert config["Description"] == "says it back"
        assert config["Environment"] == {"Variables": {"GREETING": "hello"}}
        code = api.served.service.functions["echo"].spec.code
        assert body["Code"] == {"RepositoryType": "S3", "Location": f"file://{code}"}
        capped = json.loads((await api("GET", f"{FUNCTIONS}/capped")).body)
        assert capped["Concurrency"] == {"ReservedConcurrentExecutions": 1}
        by_arn = json.loads((await api("GET", f"{FUNCTIONS}/{ARN}:echo")).body)
        assert by_arn == body

    scenario(tmp_path, test)


def test_get_function_configuration_shape(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("GET", f"{FUNCTIONS}/echo/configuration")
        assert response.status == 200
        config = json.loads(response.body)
        assert_configuration(config, "echo", 128, 3)
        whole = json.loads((await api("GET", f"{FUNCTIONS}/echo")).body)
        assert config == whole["Configuration"]
        latest = await api("GET", f"{FUNCTIONS}/echo/configuration", query={"Qualifier": "$LATEST"})
        # AWS names the version asked for (recorded: test_publish_with_update's
        # get_function_latest_result in LocalStack's AWS-validated snapshots).
        assert json.loads(latest.body) == {
            **config,
            "FunctionArn": f"{config['FunctionArn']}:$LATEST",
        }

    scenario(tmp_path, test)


def test_get_function_of_an_unknown_function_is_404(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for path in (f"{FUNCTIONS}/nope", f"{FUNCTIONS}/nope/configuration"):
            body = assert_error(await api("GET", path), 404, "ResourceNotFoundException")
            assert body["Message"] == f"Function not found: {ARN}:nope"

    scenario(tmp_path, test)


def test_get_function_of_an_unknown_version_is_404(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        asked = [
            (f"{FUNCTIONS}/echo:7", {}),
            (f"{FUNCTIONS}/echo", {"Qualifier": "7"}),
            (f"{FUNCTIONS}/echo:7/configuration", {}),
            (f"{FUNCTIONS}/echo/configuration", {"Qualifier": "7"}),
        ]
        statuses = [(await api("GET", path, query=query)).status for path, query in asked]
        assert statuses == [404] * len(asked)

    scenario(tmp_path, test)


def test_get_account_settings(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for path in ("/2016-08-19/account-settings", "/2016-08-19/account-settings/"):
            response = await api("GET", path)
            assert response.status == 200
            assert json.loads(response.body) == {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": 10,
                    "UnreservedConcurrentExecutions": 9,  # capped reserves 1, zero 0
                },
                "AccountUsage": {
                    "TotalCodeSize": 5 * zip_size(tmp_path / "code"),
                    "FunctionCount": 5,
                },
            }

    scenario(tmp_path, test)


def zip_size(directory: Path) -> int:
    """The size of the directory really zipped, deflated, as `shutil.make_archive` zips it."""
    made = shutil.make_archive(str(directory.parent / "measured"), "zip", directory)
    size = os.path.getsize(made)
    os.unlink(made)
    return size


def test_code_size_is_the_size_of_the_code_zipped_and_follows_edits(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        code = tmp_path / "code"
        config = json.loads((await api("GET", f"{FUNCTIONS}/echo/configuration")).body)
        assert config["CodeSize"] == zip_size(code) > 0
        (code / "data.txt").write_text("lambda " * 5000)
        service = api.served.service
        service.apply_revisions(await asyncio.to_thread(service.scan_revisions))
        edited = json.loads((await api("GET", f"{FUNCTIONS}/echo")).body)["Configuration"]
        assert edited["CodeSize"] == zip_size(code) > config["CodeSize"]
        listed = json.loads((await api("GET", FUNCTIONS)).body)["Functions"]
        assert {f["CodeSize"] for f in listed} == {edited["CodeSize"]}

    scenario(tmp_path, test)


# Reserved concurrency


def test_an_event_invoke_config_cannot_name_a_file_the_manifest_does_not_declare(
    tmp_path: Path,
) -> None:
    path = "/2019-09-25/functions/echo/event-invoke-config"

    async def test(api: Api) -> None:
        async def refused(method: str) -> None:
            for arn in ("arn:lrun:file:::/etc/passwd", "arn:lrun:file:::../x.jsonl"):
                body = {"DestinationConfig": {"OnFailure": {"Destination": arn}}}
                error = assert_error(
                    await api(method, path, body), 400, "InvalidParameterValueException"
                )
                assert error["message"] == (
                    f"The destination ARN {arn} is invalid. Use a function ARN, a queue ARN "
                    "(arn:aws:sqs:us-east-1:000000000000:NAME) or a file destination the "
                    "manifest declares (declared: none)."
                )

        await refused("PUT")
        assert_error(await api("GET", path), 404, "ResourceNotFoundException")
        assert (await api("PUT", path, {"MaximumRetryAttempts": 1})).status == 200
        await refused("POST")
        kept = json.loads((await api("GET", path)).body)
        assert kept["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}

    scenario(tmp_path, test)


def concurrency_path(function: str, version: str = "2017-10-31") -> str:
    return f"/{version}/functions/{function}/concurrency"


def test_put_get_delete_function_concurrency(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        get = concurrency_path("echo", "2019-09-30")
        assert json.loads((await api("GET", get)).body) == {}
        put = await api("PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": 2})
        assert put.status == 200
        assert json.loads(put.body) == {"ReservedConcurrentExecutions": 2}
        got = await api("GET", get)
        assert (got.status, json.loads(got.body)) == (200, {"ReservedConcurrentExecutions": 2})
        assert api.served.service.functions["echo"].reserved == 2
        assert api.served.service.pool.limits("echo").reserved == 2  # type: ignore[union-attr]
        settings = json.loads((await api("GET", "/2016-08-19/account-settings")).body)
        assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 7
        deleted = await api("DELETE", concurrency_path("echo"))
        assert (deleted.status, deleted.body) == (204, b"")
        assert json.loads((await api("GET", get)).body) == {}
        assert api.served.service.functions["echo"].reserved is None

    scenario(tmp_path, test)


def test_put_function_concurrency_zero_throttles_invocations(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        await api("PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": 0})
        response = await api("POST", invoke_path("echo"))
        body = assert_error(response, 429, "TooManyRequestsException")
        assert body["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"

    scenario(tmp_path, test)


def test_function_concurrency_of_a_qualified_name_is_400(tmp_path: Path) -> None:
    methods = [("PUT", "2017-10-31"), ("GET", "2019-09-30"), ("DELETE", "2017-10-31")]
    functions = ["echo:1", "echo:$LATEST", f"{ARN}:echo:prod"]

    async def test(api: Api) -> None:
        for method, version in methods:
            for function in functions:
                response = await api(
                    method, concurrency_path(function, version), {"ReservedConcurrentExecutions": 1}
                )
                assert assert_error(response, 400, "InvalidParameterValueException") == {
                    "Type": "User",
                    "message": QUALIFIED,
                }
        assert api.served.service.functions["echo"].reserved is None

    scenario(tmp_path, test)


def test_put_function_concurrency_refuses_a_value_that_is_not_a_count(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for value in ("2", True, 1.5):
            response = await api(
                "PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": value}
            )
            body = assert_error(response, 400, "InvalidParameterValueException")
            assert body["message"] == (
                f"ReservedConcurrentExecutions must be an integer >= 0, not {value!r}"
            )
        for value, constraint in (
            (
                -1,
                "Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: "
                "Member must have value greater than or equal to 0",
            ),
            (
                None,
                "Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: "
                "Member must not be null",
            ),
        ):
            response = await api(
                "PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": value}
            )
            body = assert_error(response, 400, "ValidationException")
            assert body == {"message": f"1 validation error detected: {constraint}"}
        assert api.served.service.functions["echo"].reserved is None

    scenario(tmp_path, test)


def test_put_function_concurrency_beyond_the_host_limit_is_400(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        # capped holds 1 of the 10: 9 is the most echo can have.
        over = await api("PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": 10})
        body = assert_error(over, 400, "InvalidParameterValueException")
        assert "below its minimum value of [0]" in body["message"]
        ok = await api("PUT", concurrency_path("echo"), {"ReservedConcurrentExecutions": 9})
        assert ok.status == 200

    scenario(tmp_path, test)


def test_deep_or_non_numeric_json_is_400_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    nan = b'{"a": NaN}'

    async def test(api: Api) -> None:
        for payload in (deep, nan, b"[Infinity]"):
            for kind in ("RequestResponse", "Event"):
                headers = {"X-Amz-Invocation-Type": kind}
                response = await api("POST", invoke_path("echo"), payload, headers)
                body = assert_error(response, 400, "InvalidRequestContentException")
                assert body["message"].startswith(
                    "Could not parse request body into json: Could not parse payload into json: "
                )
            put = await api("PUT", concurrency_path("echo"), payload)
            assert_error(put, 400, "InvalidRequestContentException")
        assert api.served.backend.specs == []  # nothing was run

    with caplog.at_level(logging.ERROR):
        scenario(tmp_path, test)
    assert caplog.records == []


def test_function_concurrency_bad_body_or_unknown_function(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        bad = await api("PUT", concurrency_path("echo"), b"{nope")
        assert_error(bad, 400, "InvalidRequestContentException")
        listed = await api("PUT", concurrency_path("echo"), b"[1]")
        assert_error(listed, 400, "InvalidRequestContentException")
        for method, version in (("PUT", "2017-10-31"), ("GET", "2019-09-30")):
            missing = await api(
                method, concurrency_path("nope", version), {"ReservedConcurrentExecutions": 1}
            )
            named = f"{ARN}:nope:$LATEST" if method == "PUT" else f"{ARN}:nope"
            body = assert_error(missing, 404, "ResourceNotFoundException")
            assert body["Message"] == f"Function not found: {named}"

    scenario(tmp_path, test)


# Provisioned concurrency


# lrun's own


def test_lrun_environments_lists_the_pool(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        empty = await api("GET", "/lrun/environments")
        assert (empty.status, json.loads(empty.body)) == (200, [])
        await api("POST", invoke_path("echo"))
        await api("POST", invoke_path("echo"))
        # Busy until its runtime asks for the next event, which may trail the answer.
        pool = api.served.service.pool
        await eventually(lambda: pool.in_flight() == 0, what="the runtime to come back")
        [view] = json.loads((await api("GET", "/lrun/environments")).body)
        assert set(view) == {
            "id",
            "function",
            "state",
            "kind",
            "age_s",
            "invocations",
            "memory_used_mb",
            "memory_mb",
            "version",
            "aliases",
        }
        assert (view["function"], view["state"], view["kind"]) == ("echo", "idle", "on-demand")
        assert (view["version"], view["aliases"]) == ("$LATEST", [])
        assert (view["invocations"], view["memory_used_mb"], view["memory_mb"]) == (2, 42, 128)
        assert view["age_s"] >= 0

    scenario(tmp_path, test)


def test_lrun_health(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        response = await api("GET", "/lrun/health")
        assert response.status == 200
        assert json.loads(response.body) == {"status": "ok", "functions": ALL}

    scenario(tmp_path, test)


def test_an_unknown_route_is_404(tmp_path: Path) -> None:
    async def test(api: Api) -> None:
        for method, path in (("GET", "/2015-03-31/nothing-here"), ("DELETE", invoke_path("echo"))):
            response = await api(method, path)
            assert (response.status, response.body) == (404, b"<UnknownOperationException/>")
            assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"

    scenario(tmp_path, test)
