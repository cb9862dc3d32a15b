"""Lambda's HTTP API as boto3 and the AWS CLI speak it: a route table and one error table.

Handlers are small functions of a parsed request; every error becomes a response in one place,
with Lambda's status, ``x-amzn-ErrorType`` header and body (contract section 2.4).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from orchestrator.api import validation
from orchestrator.api.downloads import location
from orchestrator.api.function_names import LATEST, not_found, unqualified
from orchestrator.api.function_names import resolve as resolve_name
from orchestrator.api.layer_refs import LayerCatalog
from orchestrator.aws import ACCOUNT_ID, REGION, function_arn
from orchestrator.errors import (
    EventInvokeConfigNotFound,
    InvalidParameterValue,
    InvalidRequestContent,
    LambdaError,
    LrunError,
    RequestTooLarge,
    ResourceNotFound,
    UnknownOperation,
    UnreservedTooLow,
    UntypedInvalidParameterValue,
)
from orchestrator.events.api_functions import ApiFunction, ApiFunctions
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.function_meta import FunctionMeta, Meta
from orchestrator.events.invoke_config import ALL_FIELDS, InvokeConfigs, from_api, to_api
from orchestrator.events.versions import Versions
from orchestrator.http_server import Request, Response, Router
from orchestrator.manifest import FunctionSpec
from orchestrator.manifest.triggers import AsyncConfig
from orchestrator.sandbox.environment import Answer, Outcome
from orchestrator.sandbox.invocation import (
    MAX_SYNC_PAYLOAD,
    InvocationResult,
    InvokeRequest,
    check_payload,
    new_request_id,
    parse_json,
)
from orchestrator.served import FunctionState
from orchestrator.service import Service

log = logging.getLogger(__name__)

View = tuple[dict[str, Any], dict[str, Any]]  # a configuration and its code, as GetFunction's
MAX_ASYNC_PAYLOAD = 1_048_576  # bytes: Lambda's limit for an Event invocation's payload
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
    if isinstance(exc, UnknownOperation):  # not JSON: AWS's front end sends the bare element
        return Response(exc.status, exc.message.encode(), {**_JSON, **headers})
    return json_response(exc.status, exc.body(), headers)


@functools.lru_cache(maxsize=1024)  # every invocation names its function: once per name
def resolve(
    function: str, qualifier: str | None, operation: str = "GetFunction"
) -> tuple[str, str | None]:
    """A function name (name, partial or full ARN, maybe qualified) as (name, qualifier); the
    qualifier is None when the caller gave none. Checked against ``operation``'s model first."""
    validation.check(operation, {"FunctionName": function}, frozenset({"FunctionName"}))
    return resolve_name(function, qualifier, operation)


def checked(
    operation: str, request: Request, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The operation's input members in ``request``, refused with AWS's ValidationException if
    they break the model's constraints."""
    if body is None:
        return validation.checked_request(operation, request)
    given = validation.values(operation, request, body)
    validation.check(operation, given)
    return given


def json_body(request: Request) -> dict[str, Any]:
    """A request's JSON object body (empty when there is none)."""
    if not request.body:
        return {}
    try:
        parsed = parse_json(request.body)
    except ValueError as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequestContent("Could not parse request body into json: not an object")
    return parsed


def timestamp(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def configuration(state: FunctionState, code_size: int, stamp: str = "") -> dict[str, Any]:
    """GetFunctionConfiguration's shape for a manifest function ($LATEST); ``stamp`` changes
    with its tags and policy, which change its RevisionId on AWS too."""
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
        "LastModified": timestamp(state.modified_at),
        "CodeSha256": sha,
        "Version": LATEST,
        "Environment": {"Variables": dict(spec.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision_id(state.revision, stamp),
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Image" if spec.image else "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": spec.ephemeral_storage},
        "LoggingConfig": spec.logging.wire(spec.name),
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
    }
    if spec.runtime is not None:
        config["Runtime"] = spec.runtime
        # AWS names the runtime's exact build by a hash; lrun's runtime image is its build.
        build = hashlib.sha256(spec.runtime.encode()).hexdigest()
        config["RuntimeVersionConfig"] = {
            "RuntimeVersionArn": f"arn:aws:lambda:{REGION}::runtime:{build}"
        }
    if spec.handler is not None:
        config["Handler"] = spec.handler
    return config


def api_members(record: ApiFunction) -> dict[str, Any]:
    """The members of a configuration that an API-created function sets itself."""
    config: dict[str, Any] = {
        "Role": record.role,
        "CodeSize": record.code_size,
        "Description": record.description,
        "Timeout": record.timeout,
        "MemorySize": record.memory,
        "LastModified": timestamp(record.last_modified),
        "CodeSha256": record.code_sha256,
        "Environment": {"Variables": dict(record.environment)},
        "PackageType": record.package_type,
        "Architectures": list(record.architectures),
        "EphemeralStorage": {"Size": record.ephemeral_storage},
    }
    if record.runtime is not None:
        config["Runtime"] = record.runtime
    return config


def revision_id(revision: str, stamp: str = "") -> str:
    """A function's RevisionId: a UUID that changes with its code, configuration and stamp."""
    return str(uuid.UUID(hashlib.md5((revision + stamp).encode()).hexdigest()))


class LambdaApi:
    """Routes of the Invoke and management APIs, plus lrun's own under /lrun/."""

    def __init__(
        self,
        service: Service,
        events: EventQueue | None = None,
        configs: InvokeConfigs | None = None,
        meta: FunctionMeta | None = None,
    ) -> None:
        self.service = service
        self.events = events
        self.configs = configs
        self.meta = meta
        self.api_functions: ApiFunctions | None = None  # set when functions can be created
        self.layer_catalog: LayerCatalog | None = None  # set when layers can be published
        self.versions: Versions | None = None  # set when versions can be published
        # A version's or an alias's configuration and code, given the host a download link
        # names; None for an alias of $LATEST (set with ``versions``).
        self.qualified: Callable[[str, str, str], Awaitable[View | None]] | None = None
        self.router = Router(error_response, UnknownOperation())
        fn = "/2015-03-31/functions/{function}"
        add = self.router.add
        add("POST", f"{fn}/invocations", self.invoke, invoke_too_large)
        add("GET", "/2015-03-31/functions", self.list_functions)
        add("GET", "/2015-03-31/functions/", self.list_functions)
        add("GET", fn, self.get_function)
        add("GET", f"{fn}/configuration", self.get_configuration)
        add("GET", "/2016-08-19/account-settings", self.account_settings)
        add("GET", "/2016-08-19/account-settings/", self.account_settings)
        add("PUT", "/2017-10-31/functions/{function}/concurrency", self.put_concurrency)
        add("GET", "/2019-09-30/functions/{function}/concurrency", self.get_concurrency)
        add("DELETE", "/2017-10-31/functions/{function}/concurrency", self.delete_concurrency)
        eic = "/2019-09-25/functions/{function}/event-invoke-config"
        add("PUT", eic, self.put_invoke_config)
        add("POST", eic, self.update_invoke_config)
        add("GET", eic, self.get_invoke_config)
        add("DELETE", eic, self.delete_invoke_config)
        add("GET", f"{eic}/list", self.list_invoke_configs)
        add("GET", "/lrun/environments", self.environments)
        add("GET", "/lrun/functions", self.all_functions)
        add("GET", "/lrun/health", self.health)

    # Invoke

    async def invoke(self, request: Request) -> Response:
        checked("Invoke", request)
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), "Invoke"
        )
        version = self.service.route(name, qualifier)
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
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
            function_arn(name, qualifier),  # as invoked: qualified only if it was
            version,
            _client_context(context) if context and kind != "Event" else None,
            request.headers.get("x-amzn-trace-id"),
            new_request_id(),
        )
        if kind == "Event":
            if self.events is None:
                raise LambdaError("asynchronous invocations need the server's event queue")
            # Durable, then 202; the version an alias picks is picked when it runs.
            await self.events.accept(name, payload, invocation.request_id, qualifier)
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
        return _answer_response(invocation.request_id, version, await answered)

    # Functions

    async def list_functions(self, request: Request) -> Response:
        given = checked("ListFunctions", request)
        names = sorted(self.service.functions)
        marker = request.query.get("Marker")
        if marker and marker not in names:
            raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
        start = names.index(marker) if marker else 0
        size = _max_items(given.get("MaxItems"))
        page = names[start : start + size]
        body: dict[str, Any] = {"Functions": [await self.configuration_of(n) for n in page]}
        if start + size < len(names):
            body["NextMarker"] = names[start + size]
        return json_response(200, body)

    async def configuration_of(self, name: str) -> dict[str, Any]:
        state = self.service.function(name)
        stamp = self.stamp(name)
        record = self.api_record(name)
        if record is None:
            config = configuration(state, await self.service.code_size(state), stamp)
            return self._with_layers(config, state.spec)
        config = self._with_layers(configuration(state, record.code_size, stamp), state.spec)
        config.update(api_members(record))
        config["RevisionId"] = revision_id(record.revision, stamp)
        if not record.has_environment:  # AWS shows it only once it was given
            del config["Environment"]
        return config

    def _with_layers(self, config: dict[str, Any], spec: FunctionSpec) -> dict[str, Any]:
        """``Layers``, which AWS shows only for a function that uses some."""
        if self.layer_catalog is not None and spec.layers:
            shown = self.layer_catalog.shown(spec.layers)
            if shown:
                config["Layers"] = shown
        return config

    def api_record(self, name: str) -> ApiFunction | None:
        """The record of a function created through the API (None for a manifest one)."""
        if self.api_functions is None or name not in self.service.api_functions:
            return None
        if self.service.from_manifest(name):
            return None
        return self.api_functions.records.get(name)

    def tags_of(self, key: str) -> dict[str, str]:
        """A resource's tags: the manifest's (for a function that declares some), less those
        removed through the API, then those set through it."""
        manifest = self.service.manifest
        declared = manifest.tags.get(key, {}) if manifest is not None else {}
        meta = self.meta.get(key) if self.meta is not None else Meta()
        kept = {k: v for k, v in declared.items() if k not in meta.untagged}
        return {**kept, **meta.tags}

    def stamp(self, name: str) -> str:
        """What a function's RevisionId folds in beside its code and configuration: on AWS it
        changes with its tags and policy, and when a version is published from it."""
        stamp = self.meta.stamp(name) if self.meta is not None else ""
        if self.versions is not None and (last := self.versions.of(name).last):
            stamp += f"#{last}"
        return stamp

    def revision(self, name: str) -> str:
        """The RevisionId a function's configuration shows now."""
        stamp = self.stamp(name)
        record = self.api_record(name)
        seed = record.revision if record is not None else self.existing(name).revision
        return revision_id(seed, stamp)

    def existing(self, name: str, qualifier: str | None = None) -> FunctionState:
        """The function ``name``, or AWS's "Function not found" naming it as it was asked for."""
        state = self.service.functions.get(name)
        if state is None:
            raise not_found(name, qualifier)
        return state

    @staticmethod
    def client_context(header: str) -> str:
        """The ``X-Amz-Client-Context`` header decoded, as the runtime is given it."""
        return _client_context(header)

    async def view(
        self, request: Request, operation: str
    ) -> tuple[FunctionState, dict[str, Any], dict[str, Any]]:
        """The function a read names, its configuration and its code: of ``$LATEST``, or of the
        version or alias it is qualified with (its FunctionArn qualified as it was asked)."""
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), operation
        )
        state = self.existing(name, qualifier)
        host = request.headers.get("host", "127.0.0.1")
        if qualifier not in (None, LATEST):
            if self.qualified is None:
                raise not_found(name, qualifier)
            found = await self.qualified(name, qualifier, host)
            if found is not None:
                return state, *found
        config = await self.configuration_of(name)
        if qualifier is not None:
            config["FunctionArn"] = function_arn(name, qualifier)
        record = self.api_record(name)
        if record is not None and record.code_token is not None:
            # Where the zip is downloaded from lrun itself: the token is the authorisation.
            code = {
                "RepositoryType": "S3",
                "Location": location(request, record.code_token),
            }
        elif state.spec.image:
            code = {"RepositoryType": "ECR", "ImageUri": state.spec.image}
        else:
            code = {"RepositoryType": "S3", "Location": f"file://{state.spec.code}"}
        return state, config, code

    async def get_function(self, request: Request) -> Response:
        checked("GetFunction", request)
        state, config, code = await self.view(request, "GetFunction")
        name = state.spec.name
        body: dict[str, Any] = {"Configuration": config, "Code": code}
        tags = self.tags_of(name)
        if tags:  # AWS omits the member for a function without tags
            body["Tags"] = tags
        if state.reserved is not None:
            body["Concurrency"] = {"ReservedConcurrentExecutions": state.reserved}
        return json_response(200, body)

    async def get_configuration(self, request: Request) -> Response:
        checked("GetFunctionConfiguration", request)
        _, config, _ = await self.view(request, "GetFunctionConfiguration")
        return json_response(200, config)

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
        body = json_body(request)
        checked("PutFunctionConcurrency", request, body)
        name = self._unqualified(request, "PutFunctionConcurrency")
        self.existing(name, LATEST)  # AWS names $LATEST here, unlike GetFunctionConcurrency
        value = body.get("ReservedConcurrentExecutions")
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidParameterValue(
                f"ReservedConcurrentExecutions must be an integer >= 0, not {value!r}"
            )
        others = sum(f.reserved or 0 for n, f in self.service.functions.items() if n != name)
        if others + value > self.service.pool.host_limit:
            raise UnreservedTooLow(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                "UnreservedConcurrentExecution below its minimum value of [0]."
            )
        provisioned = sum(p.requested for p in self.existing(name).provisioned.values())
        if value < provisioned:  # AWS's message, its two odd spaces included
            raise UntypedInvalidParameterValue(
                f" ReservedConcurrentExecutions  {value} should not be lower than function's "
                f"total provisioned concurrency [{provisioned}]."
            )
        self.service.set_reserved(name, value)
        return json_response(200, {"ReservedConcurrentExecutions": value})

    async def get_concurrency(self, request: Request) -> Response:
        checked("GetFunctionConcurrency", request)
        state = self.existing(self._unqualified(request, "GetFunctionConcurrency"))
        if state.reserved is None:
            return json_response(200, {})
        return json_response(200, {"ReservedConcurrentExecutions": state.reserved})

    async def delete_concurrency(self, request: Request) -> Response:
        checked("DeleteFunctionConcurrency", request)
        name = self._unqualified(request, "DeleteFunctionConcurrency")
        self.existing(name, LATEST)
        self.service.set_reserved(name, None)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    def _unqualified(self, request: Request, operation: str) -> str:
        return unqualified(request.params["function"], operation)

    # Asynchronous invocation settings

    def effective_config(self, name: str, qualifier: str | None = None) -> AsyncConfig:
        """The asynchronous settings of a function, or of one of its versions or aliases: those
        set through the API for it, else the manifest's (for the function, and for the alias
        lrun keeps for its provisioned concurrency, which its triggers invoke), else Lambda's
        defaults. As on Lambda, a version or an alias does not take the function's."""
        key = config_key(name, qualifier)
        if self.configs is not None and (set_ := self.configs.get(key)) is not None:
            return set_[0]
        if key != name and qualifier != self.service.trigger_qualifier(name):
            return AsyncConfig()
        manifest = self.service.manifest
        triggers = manifest.triggers.get(name) if manifest is not None else None
        return triggers.async_config if triggers is not None else AsyncConfig()

    def _invoke_configs(self) -> InvokeConfigs:
        if self.configs is None:
            raise LambdaError("asynchronous invocation settings need the server's store")
        return self.configs

    async def put_invoke_config(self, request: Request) -> Response:
        return await self._set_invoke_config(request, "PutFunctionEventInvokeConfig")

    async def update_invoke_config(self, request: Request) -> Response:
        return await self._set_invoke_config(request, "UpdateFunctionEventInvokeConfig")

    def _invoke_config_target(self, request: Request, operation: str) -> tuple[str, str]:
        """(name, qualifier) of an event-invoke-config request; the qualifier is ``$LATEST``
        when none was given, as in AWS's messages."""
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), operation
        )
        return name, qualifier or LATEST

    def _qualifier_exists(self, name: str, qualifier: str) -> bool:
        """Is ``qualifier`` ``$LATEST``, or a version or an alias of the function ``name``?"""
        state = self.service.functions.get(name)
        if state is None:
            return False
        return qualifier == LATEST or qualifier in state.published or qualifier in state.aliases

    async def _set_invoke_config(self, request: Request, operation: str) -> Response:
        body = json_body(request)
        checked(operation, request, _without_file_destinations(body))
        name, qualifier = self._invoke_config_target(request, operation)
        if not self._qualifier_exists(name, qualifier):
            raise ResourceNotFound("The function doesn't exist.")
        key = config_key(name, qualifier)
        merge = operation == "UpdateFunctionEventInvokeConfig"
        configs = self._invoke_configs()
        if merge and configs.get(key) is None:  # AWS updates only what exists
            raise _no_invoke_config(name, qualifier)
        manifest = self.service.manifest
        files = manifest.file_destinations if manifest is not None else frozenset()
        config = from_api(body, self.effective_config(name, qualifier), merge, files)
        for destination in (config.on_success, config.on_failure):
            if destination is not None and destination.kind == "function":
                if destination.target == name:
                    raise InvalidParameterValue(
                        "You can't specify the function as a destination for itself."
                    )
                if destination.target not in self.service.functions:
                    raise InvalidParameterValue(
                        f"The destination ARN {function_arn(destination.target)} is invalid."
                    )
        given = frozenset(ALL_FIELDS & set(body))
        fields = (configs.fields(key) | given) if merge else given
        modified = await configs.put(key, config, fields)
        return json_response(200, to_api(name, config, modified, fields, qualifier))

    async def get_invoke_config(self, request: Request) -> Response:
        checked("GetFunctionEventInvokeConfig", request)
        name, qualifier = self._invoke_config_target(request, "GetFunctionEventInvokeConfig")
        key = config_key(name, qualifier)
        found = self._invoke_configs().get(key)
        if found is None or not self._qualifier_exists(name, qualifier):
            raise _no_invoke_config(name, qualifier)
        fields = self._invoke_configs().fields(key)
        return json_response(200, to_api(name, *found, fields, qualifier))

    async def delete_invoke_config(self, request: Request) -> Response:
        checked("DeleteFunctionEventInvokeConfig", request)
        name, qualifier = self._invoke_config_target(request, "DeleteFunctionEventInvokeConfig")
        if not await self._invoke_configs().delete(config_key(name, qualifier)):
            raise _no_invoke_config(name, qualifier)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def list_invoke_configs(self, request: Request) -> Response:
        checked("ListFunctionEventInvokeConfigs", request)
        name, _ = resolve(request.params["function"], None, "ListFunctionEventInvokeConfigs")
        state = self.service.functions.get(name)
        if state is None:
            raise ResourceNotFound("The function doesn't exist.")
        configs = self._invoke_configs()
        listed = []
        for qualifier in [LATEST, *sorted(state.published, key=int), *sorted(state.aliases)]:
            key = config_key(name, qualifier)
            found = configs.get(key)
            if found is not None:
                listed.append(to_api(name, *found, configs.fields(key), qualifier))
        return json_response(200, {"FunctionEventInvokeConfigs": listed})

    # lrun's own

    async def environments(self, request: Request) -> Response:
        return json_response(200, [view.__dict__ for view in self.service.environments()])

    async def all_functions(self, request: Request) -> Response:
        """Every function with where it comes from (`lrun functions ls`), unpaginated."""
        manifest = self.service.manifest
        rows = []
        for name in sorted(self.service.functions):
            config = await self.configuration_of(name)
            if self.api_record(name) is not None:
                config["Source"] = "api"
            else:
                config["Source"] = str(manifest.path) if manifest is not None else "manifest"
            state = self.service.functions[name]
            spec = state.spec
            config["LayerSources"] = [layer.source for layer in spec.layers]
            config["Versions"] = sorted(state.published, key=int)
            config["Aliases"] = {
                alias: {"FunctionVersion": target.version, "Weights": dict(target.weights)}
                for alias, target in sorted(state.aliases.items())
            }
            if spec.image:
                config["ImageUri"] = spec.image
            rows.append(config)
        return json_response(200, rows)

    async def health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", "functions": sorted(self.service.functions)})


def config_key(name: str, qualifier: str | None) -> str:
    """What a function's (or a version's, or an alias's) event-invoke config is kept under:
    the function's name, qualified unless it is the function itself (unqualified or
    ``$LATEST``, the same config on AWS)."""
    return name if qualifier in (None, LATEST) else f"{name}:{qualifier}"


def _max_items(value: object) -> int:
    """A page's size: what the caller asked (the model bounds it), at most 50 as on AWS."""
    if value is None:
        return 50
    if not isinstance(value, int):
        raise InvalidParameterValue(f"MaxItems must be a whole number, not {value!r}")
    return min(value, 50)


def _without_file_destinations(body: dict[str, Any]) -> dict[str, Any]:
    """An event-invoke-config body as the model sees it: lrun's own file destinations
    (``arn:lrun:file:::NAME``, no AWS ARN) are checked by ``from_api`` instead."""
    destinations = body.get("DestinationConfig")
    if not isinstance(destinations, dict):
        return body
    kept = {
        key: entry
        for key, entry in destinations.items()
        if not (
            isinstance(entry, dict)
            and str(entry.get("Destination", "")).startswith("arn:lrun:file:")
        )
    }
    return {**body, "DestinationConfig": kept}


def _no_invoke_config(name: str, qualifier: str) -> EventInvokeConfigNotFound:
    return EventInvokeConfigNotFound(
        f"The function {function_arn(name, qualifier)} doesn't have an EventInvokeConfig"
    )


async def invoke_too_large(request: Request, size: int | None) -> Response:
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


def _answer_response(request_id: str, version: str, outcome: Outcome) -> Response:
    headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": version}
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
