"""Lambda's HTTP API as boto3 and the AWS CLI speak it: a route table and one error table.

Handlers are small functions of a parsed request; every error becomes a response in one place,
with Lambda's status, ``x-amzn-ErrorType`` header and body (contract section 2.4).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator.aws import ACCOUNT_ID, function_arn
from orchestrator.errors import (
    EventInvokeConfigNotFound,
    InvalidParameterValue,
    InvalidRequestContent,
    LambdaError,
    LrunError,
    ProvisionedConfigNotFound,
    RequestTooLarge,
    ResourceNotFound,
)
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.invoke_config import InvokeConfigs, from_api, to_api
from orchestrator.http_server import Request, Response, Router
from orchestrator.manifest import FunctionSpec
from orchestrator.manifest.triggers import AsyncConfig
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import (
    MAX_SYNC_PAYLOAD,
    InvocationResult,
    InvokeRequest,
    check_payload,
    parse_json,
)
from orchestrator.service import FunctionState, Service

log = logging.getLogger(__name__)

LATEST = "$LATEST"
MAX_ASYNC_PAYLOAD = 1_048_576  # bytes: Lambda's limit for an Event invocation's payload
_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,64})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)
_JSON = {"Content-Type": "application/json"}


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    base = {**_JSON, "x-amzn-RequestId": str(uuid.uuid4())}
    return Response(status, json.dumps(body).encode(), {**base, **(headers or {})})


def error_response(exc: Exception) -> Response:
    """The one mapping from errors to responses."""
    if not isinstance(exc, LambdaError):
        if not isinstance(exc, LrunError):
            log.exception("unexpected error", exc_info=exc)
        exc = LambdaError(str(exc))
    headers = {"x-amzn-ErrorType": exc.error_type, "x-amzn-RequestId": str(uuid.uuid4())}
    return json_response(exc.status, exc.body(), headers)


def resolve(function: str, qualifier: str | None) -> tuple[str, str | None]:
    """A function name (name, partial or full ARN, maybe qualified) as (name, qualifier); the
    qualifier is None when the caller gave none."""
    found = _NAME.match(function)
    if found is None:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{function}' at 'functionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
            "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )
    derived = found["qualifier"]
    if derived and qualifier and derived != qualifier:
        raise InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return found["name"], derived or qualifier


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        parsed = parse_json(request.body)
    except ValueError as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequestContent("Could not parse request body into json: not an object")
    return parsed


def _stamp(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def configuration(state: FunctionState, code_size: int) -> dict[str, Any]:
    """GetFunctionConfiguration's shape for a manifest function ($LATEST)."""
    spec: FunctionSpec = state.spec
    sha = base64.b64encode(hashlib.sha256(state.revision.encode()).digest()).decode()
    config: dict[str, Any] = {
        "FunctionName": spec.name,
        "FunctionArn": function_arn(spec.name),
        "Role": f"arn:aws:iam::{ACCOUNT_ID}:role/lrun-local",
        "CodeSize": code_size,
        "Description": spec.description,
        "Timeout": spec.timeout,
        "MemorySize": spec.memory,
        "LastModified": _stamp(state.provisioned_at),
        "CodeSha256": sha,
        "Version": LATEST,
        "Environment": {"Variables": dict(spec.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(uuid.UUID(hashlib.md5(state.revision.encode()).hexdigest())),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Image" if spec.image else "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": spec.ephemeral_storage},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{spec.name}"},
    }
    if spec.runtime is not None:
        config["Runtime"] = spec.runtime
    if spec.handler is not None:
        config["Handler"] = spec.handler
    return config


class LambdaApi:
    """Routes of the Invoke and management APIs, plus lrun's own under /lrun/."""

    def __init__(
        self,
        service: Service,
        events: EventQueue | None = None,
        configs: InvokeConfigs | None = None,
    ) -> None:
        self.service = service
        self.events = events
        self.configs = configs
        self.router = Router(error_response)
        fn = "/2015-03-31/functions/{function}"
        add = self.router.add
        add("POST", f"{fn}/invocations", self.invoke, _invoke_too_large)
        add("GET", "/2015-03-31/functions", self.list_functions)
        add("GET", "/2015-03-31/functions/", self.list_functions)
        add("GET", fn, self.get_function)
        add("GET", f"{fn}/configuration", self.get_configuration)
        add("GET", "/2016-08-19/account-settings", self.account_settings)
        add("GET", "/2016-08-19/account-settings/", self.account_settings)
        add("PUT", "/2017-10-31/functions/{function}/concurrency", self.put_concurrency)
        add("GET", "/2019-09-30/functions/{function}/concurrency", self.get_concurrency)
        add("DELETE", "/2017-10-31/functions/{function}/concurrency", self.delete_concurrency)
        pc = "/2019-09-30/functions/{function}/provisioned-concurrency"
        add("PUT", pc, self.put_provisioned)
        add("GET", pc, self.get_provisioned)
        add("DELETE", pc, self.delete_provisioned)
        eic = "/2019-09-25/functions/{function}/event-invoke-config"
        add("PUT", eic, self.put_invoke_config)
        add("POST", eic, self.update_invoke_config)
        add("GET", eic, self.get_invoke_config)
        add("DELETE", eic, self.delete_invoke_config)
        add("GET", f"{eic}/list", self.list_invoke_configs)
        add("GET", "/lrun/environments", self.environments)
        add("GET", "/lrun/health", self.health)

    # Invoke

    async def invoke(self, request: Request) -> Response:
        state = self._latest(request)
        name = state.spec.name
        _, qualifier = resolve(request.params["function"], request.query.get("Qualifier"))
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise InvalidParameterValue(
                f"Unsupported invocation type {kind!r}: use RequestResponse, Event or DryRun"
            )
        payload = check_payload(request.body)
        if kind == "Event" and len(payload) > MAX_ASYNC_PAYLOAD:
            raise RequestTooLarge(
                f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the InvokeAsync "
                f"operation (this one is {len(payload)} bytes)"
            )
        if kind == "DryRun":
            return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
        context = request.headers.get("x-amz-client-context")
        invocation = InvokeRequest(
            payload,
            function_arn(state.spec.name, qualifier),  # as invoked: qualified only if it was
            LATEST,
            _client_context(context) if context and kind != "Event" else None,
            request.headers.get("x-amzn-trace-id"),
            str(uuid.uuid4()),
        )
        if kind == "Event":
            if self.events is None:
                raise LambdaError("asynchronous invocations need the server's event queue")
            await self.events.accept(name, payload, invocation.request_id)  # durable, then 202
            return Response(202, b"", {"x-amzn-RequestId": invocation.request_id})
        tail = request.headers.get("x-amz-log-type") == "Tail"
        full_log = request.headers.get("x-lrun-log") == "full"
        if tail or full_log:
            result = await self.service.invoke(name, invocation)
            return _invoke_response(result, tail, full_log)
        # Answer the client as soon as the function has; the log is completed behind it.
        answered: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def on_answer(outcome: Outcome) -> None:
            if not answered.done():
                answered.set_result(outcome)

        def on_end(run: asyncio.Future[InvocationResult]) -> None:
            error = None if run.cancelled() else run.exception()
            if answered.done():
                if error is not None:
                    log.warning("invocation %s: %s", invocation.request_id, error)
            elif error is not None:
                answered.set_exception(error)
            else:
                answered.cancel()

        # The invocation is the service's: a client that goes away cancels only this wait.
        await self.service.edits_seen(name)
        self.service.start(name, invocation, on_answer, settle=False).add_done_callback(on_end)
        return _answer_response(invocation.request_id, await answered)

    # Functions

    async def list_functions(self, request: Request) -> Response:
        names = sorted(self.service.functions)
        marker = request.query.get("Marker")
        if marker and marker not in names:
            raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
        start = names.index(marker) if marker else 0
        size = _max_items(request.query.get("MaxItems"))
        page = names[start : start + size]
        body: dict[str, Any] = {"Functions": [await self._configuration(n) for n in page]}
        if start + size < len(names):
            body["NextMarker"] = names[start + size]
        return json_response(200, body)

    async def _configuration(self, name: str) -> dict[str, Any]:
        state = self.service.function(name)
        return configuration(state, await self.service.code_size(state))

    def _latest(self, request: Request) -> FunctionState:
        """The function a request names, which must be unqualified or ``$LATEST``."""
        name, qualifier = resolve(request.params["function"], request.query.get("Qualifier"))
        state = self.service.function(name)
        if qualifier not in (None, LATEST):
            raise ResourceNotFound(f"Function not found: {function_arn(name, qualifier)}")
        return state

    async def get_function(self, request: Request) -> Response:
        state = self._latest(request)
        body: dict[str, Any] = {"Configuration": await self._configuration(state.spec.name)}
        if state.spec.image:
            body["Code"] = {"RepositoryType": "ECR", "ImageUri": state.spec.image}
        else:
            body["Code"] = {"RepositoryType": "S3", "Location": f"file://{state.spec.code}"}
        if state.reserved is not None:
            body["Concurrency"] = {"ReservedConcurrentExecutions": state.reserved}
        return json_response(200, body)

    async def get_configuration(self, request: Request) -> Response:
        return json_response(200, await self._configuration(self._latest(request).spec.name))

    async def account_settings(self, request: Request) -> Response:
        limit = self.service.pool.host_limit
        functions = list(self.service.functions.values())
        reserved = sum(f.reserved or 0 for f in functions)
        total = sum([await self.service.code_size(f) for f in functions])
        return json_response(
            200,
            {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": limit - reserved,
                },
                "AccountUsage": {"TotalCodeSize": total, "FunctionCount": len(functions)},
            },
        )

    # Concurrency

    async def put_concurrency(self, request: Request) -> Response:
        name = self._unqualified(request)
        value = _body(request).get("ReservedConcurrentExecutions")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidParameterValue(
                f"ReservedConcurrentExecutions must be an integer >= 0, not {value!r}"
            )
        others = sum(f.reserved or 0 for n, f in self.service.functions.items() if n != name)
        if others + value > self.service.pool.host_limit:
            raise InvalidParameterValue(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of [0]."
            )
        self.service.set_reserved(name, value)
        return json_response(200, {"ReservedConcurrentExecutions": value})

    async def get_concurrency(self, request: Request) -> Response:
        state = self.service.function(self._unqualified(request))
        if state.reserved is None:
            return json_response(200, {})
        return json_response(200, {"ReservedConcurrentExecutions": state.reserved})

    async def delete_concurrency(self, request: Request) -> Response:
        self.service.set_reserved(self._unqualified(request), None)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    def _unqualified(self, request: Request) -> str:
        name, qualifier = resolve(request.params["function"], None)
        if qualifier is not None:
            raise InvalidParameterValue(
                "This operation is permitted on Lambda functions only. Aliases and versions do "
                "not support this operation. Please specify either a function name or an "
                "unqualified function ARN."
            )
        return name

    async def put_provisioned(self, request: Request) -> Response:
        name, qualifier = self._qualified(request)
        value = _body(request).get("ProvisionedConcurrentExecutions")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidParameterValue(
                f"ProvisionedConcurrentExecutions must be an integer >= 1, not {value!r}"
            )
        state = self.service.function(name)
        if state.reserved is not None and value > state.reserved:
            raise InvalidParameterValue(
                f"ProvisionedConcurrentExecutions ({value}) cannot exceed the function's "
                f"reserved concurrency ({state.reserved})."
            )
        self.service.set_provisioned(name, value)
        return json_response(202, self._provisioned_config(name, qualifier, with_arn=False))

    async def get_provisioned(self, request: Request) -> Response:
        if request.query.get("List") == "ALL":
            name, _ = resolve(request.params["function"], None)
            state = self.service.function(name)
            configs = [self._provisioned_config(name, LATEST, True)] if state.provisioned else []
            return json_response(200, {"ProvisionedConcurrencyConfigs": configs})
        name, qualifier = self._qualified(request)
        if not self.service.function(name).provisioned:
            raise ProvisionedConfigNotFound(
                "No Provisioned Concurrency Config found for this function"
            )
        return json_response(200, self._provisioned_config(name, qualifier, with_arn=False))

    async def delete_provisioned(self, request: Request) -> Response:
        name, _ = self._qualified(request)
        self.service.set_provisioned(name, 0)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    def _qualified(self, request: Request) -> tuple[str, str]:
        name, qualifier = resolve(request.params["function"], request.query.get("Qualifier"))
        self.service.function(name)
        if qualifier is None:
            raise InvalidParameterValue("Qualifier is required: use $LATEST until versions exist")
        if qualifier != LATEST:
            raise ResourceNotFound(f"Function not found: {function_arn(name, qualifier)}")
        return name, qualifier

    def _provisioned_config(self, name: str, qualifier: str, with_arn: bool) -> dict[str, Any]:
        requested, ready = self.service.provisioned_status(name)
        state = self.service.function(name)
        status = "READY" if ready >= requested else "IN_PROGRESS"
        if status != "READY" and state.provision_failure is not None:
            status = "FAILED"
        body: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": requested,
            "AvailableProvisionedConcurrentExecutions": ready,
            "AllocatedProvisionedConcurrentExecutions": ready,
            "Status": status,
            "LastModified": _stamp(state.provisioned_at),
        }
        if status == "FAILED":
            body["StatusReason"] = f"FUNCTION_ERROR_INIT_FAILURE: {state.provision_failure}"
        if with_arn:
            body = {"FunctionArn": function_arn(name, qualifier), **body}
        return body

    # Asynchronous invocation settings

    def effective_config(self, name: str) -> AsyncConfig:
        """A function's asynchronous settings: those set through the API, else the manifest's."""
        if self.configs is not None and (set_ := self.configs.get(name)) is not None:
            return set_[0]
        manifest = self.service.manifest
        triggers = manifest.triggers.get(name) if manifest is not None else None
        return triggers.async_config if triggers is not None else AsyncConfig()

    def _invoke_configs(self) -> InvokeConfigs:
        if self.configs is None:
            raise LambdaError("asynchronous invocation settings need the server's store")
        return self.configs

    async def put_invoke_config(self, request: Request) -> Response:
        return await self._set_invoke_config(request, merge=False)

    async def update_invoke_config(self, request: Request) -> Response:
        return await self._set_invoke_config(request, merge=True)

    async def _set_invoke_config(self, request: Request, merge: bool) -> Response:
        state = self._latest(request)
        name = state.spec.name
        manifest = self.service.manifest
        files = manifest.file_destinations if manifest is not None else frozenset()
        config = from_api(_body(request), self.effective_config(name), merge, files)
        for destination in (config.on_success, config.on_failure):
            if destination is not None and destination.kind == "function":
                if destination.target == name:
                    raise InvalidParameterValue(
                        "You can't specify the function as a destination for itself."
                    )
                self.service.function(destination.target)
        modified = await self._invoke_configs().put(name, config)
        return json_response(200, to_api(name, config, modified))

    async def get_invoke_config(self, request: Request) -> Response:
        name = self._latest(request).spec.name
        found = self._invoke_configs().get(name)
        if found is None:
            raise EventInvokeConfigNotFound(
                f"The function {function_arn(name, LATEST)} doesn't have an EventInvokeConfig"
            )
        return json_response(200, to_api(name, *found))

    async def delete_invoke_config(self, request: Request) -> Response:
        name = self._latest(request).spec.name
        if not await self._invoke_configs().delete(name):
            raise EventInvokeConfigNotFound(
                f"The function {function_arn(name, LATEST)} doesn't have an EventInvokeConfig"
            )
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def list_invoke_configs(self, request: Request) -> Response:
        name = self._latest(request).spec.name
        found = self._invoke_configs().get(name)
        configs = [] if found is None else [to_api(name, *found)]
        return json_response(200, {"FunctionEventInvokeConfigs": configs})

    # lrun's own

    async def environments(self, request: Request) -> Response:
        return json_response(200, [view.__dict__ for view in self.service.environments()])

    async def health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", "functions": sorted(self.service.functions)})


def _max_items(value: str | None) -> int:
    if not value:
        return 50
    if not value.isdigit() or not 1 <= int(value) <= 10000:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy "
            "constraint: Member must have value between 1 and 10000"
        )
    return min(int(value), 50)


async def _invoke_too_large(request: Request, size: int | None) -> Response:
    """A payload refused while it was read (the server never holds more than the limit)."""
    this = f" (this one is {size} bytes)" if size is not None else ""
    raise RequestTooLarge(
        f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction "
        f"operation{this}"
    )


def _client_context(header: str) -> str:
    try:
        return base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestContent(
            "Client context must be a valid Base64-encoded JSON object."
        ) from exc


def _answer_response(request_id: str, outcome: Outcome) -> Response:
    headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": LATEST}
    if isinstance(outcome, Answer):
        headers["Content-Type"] = outcome.content_type
        if outcome.error_type is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return Response(200, outcome.body, headers)
    headers["Content-Type"] = "application/json"
    headers["X-Amz-Function-Error"] = "Unhandled"
    return Response(200, outcome.payload(), headers)


def _invoke_response(result: InvocationResult, tail: bool, full_log: bool) -> Response:
    headers = {
        "x-amzn-RequestId": result.request_id,
        "X-Amz-Executed-Version": result.executed_version,
        "Content-Type": result.content_type,
    }
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    if tail:
        headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail().encode()).decode()
    if full_log:
        headers["X-Lrun-Log"] = base64.b64encode(result.log.encode()).decode()
    return Response(200, result.payload, headers)
