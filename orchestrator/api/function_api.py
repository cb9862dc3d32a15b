"""CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration and DeleteFunction: functions
made through Lambda's API, beside the manifest's.

An API-created function is a record in the store (``events.api_functions``) and, for a zip, its
code unpacked under ``<state>/functions/<token>`` (a name lrun draws; the zip is kept beside it
for GetFunction's ``Code.Location``). Each update of the code unpacks into a new directory and
serves the function anew, so environments of the old code drain and no later invocation runs
it; the old directory is removed once the invocations that may still use it are over.

States move as on AWS: CreateFunction answers ``Pending`` and UpdateFunction* answer
``LastUpdateStatus: InProgress``; the work is done by then, so the next read says ``Active`` /
``Successful`` and botocore's waiters (``function_active_v2``, ``function_updated_v2``) pass.

Manifest functions belong to the manifest: changing or deleting one through the API is
``ResourceConflictException`` naming the manifest.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.api.code_package import MAX_UPLOAD_REQUEST, Packages, too_large
from orchestrator.api.downloads import Downloads
from orchestrator.api.function_names import LATEST, not_found, unqualified
from orchestrator.api.lambda_api import LambdaApi, checked, json_body, json_response, resolve
from orchestrator.api.layer_refs import LayerCatalog
from orchestrator.api.version_api import VersionApi
from orchestrator.aws import ACCOUNT_ID, function_arn
from orchestrator.errors import (
    CodeStorageExceeded,
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
)
from orchestrator.events.api_functions import ApiFunction, ApiFunctions
from orchestrator.events.function_meta import FunctionMeta, Meta
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.versions import Version
from orchestrator.http_server import Request, Response
from orchestrator.manifest import FunctionSpec
from orchestrator.manifest.functions import RESERVED_ENV_NAMES, RUNTIME_NAMES
from orchestrator.manifest.layers import Layer
from orchestrator.manifest.logging_config import LoggingConfig, LoggingConfigError, merged
from orchestrator.manifest.revision import code_digest

MAX_FUNCTIONS = 1000  # API-created functions one server keeps (AWS bounds code storage instead)
MAX_MEMORY, MAX_TIMEOUT = 10240, 900  # Lambda's, tighter than the model's
ENV_SIZE_LIMIT = 4096
# AWS's runtimes lrun runs with another of its images.
_RUNTIME_IMAGES = {"provided.al2": "provided", "provided.al2023": "provided"}
# The runtimes a function can be created with, in the order AWS's message lists them (recorded
# on AWS: LocalStack's test_lambda_api snapshot, test_create_lambda_exceptions).
CREATABLE_RUNTIMES = (
    "nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, "
    "java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, "
    "java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2"
)
_ENV_PREFIX = (
    "Lambda was unable to configure your environment variables because the environment variables "
    "you have provided"
)
_ZIP_NEEDS = (
    "Runtime and Handler are mandatory parameters for functions created with deployment packages."
)


class FunctionApi:
    def __init__(
        self,
        api: LambdaApi,
        records: ApiFunctions,
        code_root: Path,
        meta: FunctionMeta | None = None,
        configs: InvokeConfigs | None = None,
        on_event: Callable[[str], None] = lambda message: None,
        downloads: Downloads | None = None,
    ) -> None:
        self.api = api
        self.records = records
        self.code_root = code_root
        self.packages = Packages(code_root)
        self.meta = meta
        self.configs = configs
        self._on_event = on_event
        self._busy: set[str] = set()  # functions being created or changed right now
        self.versions: VersionApi | None = None  # set when versions can be published
        self._cleanups: set[asyncio.Task[None]] = set()
        self.downloads = downloads if downloads is not None else Downloads(api.router)
        self.downloads.add(self._zip_of)
        # Published layers, once lrun keeps them; and what to call when a function stops using
        # some (their deleted versions' content can go).
        self.catalog: LayerCatalog | None = None
        self.layers_released: Callable[[], Awaitable[None]] | None = None

    def add_routes(self) -> None:
        add = self.api.router.add
        fn = "/2015-03-31/functions/{function}"

        async def create_too_large(request: Request, size: int | None) -> Response:
            raise too_large("CreateFunction", size)

        async def code_too_large(request: Request, size: int | None) -> Response:
            raise too_large("UpdateFunctionCode", size)

        # Inserted before LambdaApi's routes would not matter: no pattern of theirs matches these.
        add("POST", "/2015-03-31/functions", self.create, create_too_large, MAX_UPLOAD_REQUEST)
        add("POST", "/2015-03-31/functions/", self.create, create_too_large, MAX_UPLOAD_REQUEST)
        add("PUT", f"{fn}/code", self.update_code, code_too_large, MAX_UPLOAD_REQUEST)
        add("PUT", f"{fn}/configuration", self.update_configuration)
        add("DELETE", fn, self.delete)

    # Start-up

    async def restore(self) -> None:
        """Serve every stored function again, and remove code no record names (left by a crash
        between unpacking and storing, or by a delete whose removal never ran)."""
        await self.records.load()
        for record in self.records.records.values():
            if self.api.service.from_manifest(record.name):
                self._on_event(
                    f"{record.name}: the manifest declares it; its API-created one is hidden"
                )
                continue
            spec = self.spec(record)
            self.api.service.put_function(spec, await asyncio.to_thread(_revision, spec))
        await asyncio.to_thread(self.packages.sweep, self._kept())

    def spec(self, record: ApiFunction) -> FunctionSpec:
        runtime = record.runtime
        return FunctionSpec(
            name=record.name,
            runtime=_RUNTIME_IMAGES.get(runtime, runtime) if runtime else None,
            handler=record.handler,
            image=record.image_uri,
            command=None,
            entrypoint=None,
            code=self.code_root / record.code_token if record.code_token else None,
            memory=record.memory,
            timeout=record.timeout,
            ephemeral_storage=record.ephemeral_storage,
            environment=dict(record.environment),
            reserved_concurrency=None,
            provisioned_concurrency=0,
            network="public",
            description=record.description,
            logging=record.logging,
            layers=tuple(self._layer(arn) for arn in record.layers),
        )

    def _layer(self, arn: str) -> Layer:
        if self.catalog is None:
            return Layer(arn, "arn")
        return self.catalog.layer(arn)

    def _layer_arns(self, body: Mapping[str, Any], package: str) -> tuple[str, ...]:
        """The layer versions a request's ``Layers`` name, checked as AWS checks them."""
        given = body.get("Layers") or []
        if given and package == "Image":
            raise InvalidParameterValue(
                "Lambda layers are not supported for functions created with container images."
            )
        if given and self.catalog is None:
            raise InvalidParameterValue("this lrun keeps no layers: Layers cannot be used")
        if self.catalog is not None:
            self.catalog.check_arns(given)
        return tuple(given)

    # Operations

    async def create(self, request: Request) -> Response:
        body = json_body(request)
        checked("CreateFunction", request, _without_runtime(body))
        name = unqualified(body["FunctionName"], "CreateFunction")
        if name in self.api.service.functions or name in self._busy:
            raise ResourceConflict(f"Function already exist: {name}")
        _refuse_unsupported(body)
        if len(self.records.records) >= MAX_FUNCTIONS:
            raise CodeStorageExceeded(
                f"Code storage limit exceeded: lrun serve keeps at most {MAX_FUNCTIONS} functions "
                "created through the API; delete some (aws lambda delete-function) first"
            )
        package = body.get("PackageType", "Zip")
        code = body["Code"] if isinstance(body.get("Code"), dict) else {}
        runtime, handler = body.get("Runtime"), body.get("Handler")
        settings = _settings(body, None, name)
        layers = self._layer_arns(body, package)
        self._busy.add(name)
        try:
            if self.versions is not None:  # left by a function of this name: it starts anew
                await self.versions.drop(name)
            if package == "Image":
                if runtime is not None or handler is not None:
                    raise InvalidParameterValue(
                        "Runtime and Handler are not supported for functions with PackageType "
                        "Image: the image's CMD and ENTRYPOINT say what runs"
                    )
                uri = await self._image(code.get("ImageUri"), "creating", package)
                token, sha, size = None, _sha(uri.encode()), 0
            else:
                if code.get("ImageUri") is not None:
                    raise InvalidParameterValue(
                        "Please don't provide ImageUri when creating a function with "
                        "packageType Zip."
                    )
                if runtime is None or handler is None:
                    raise InvalidParameterValue(_ZIP_NEEDS)
                _check_runtime(runtime)
                uri = None
                data = zip_bytes(code)
                token, sha, size = await self._unpack(data, "CreateFunction"), _sha(data), len(data)
            record = ApiFunction(
                name=name,
                package_type=package,
                runtime=runtime,
                handler=handler,
                image_uri=uri,
                code_token=token,
                code_sha256=sha,
                code_size=size,
                last_modified=time.time(),
                revision=str(uuid.uuid4()),
                has_environment="Environment" in body,
                layers=layers,
                **settings,
            )
            try:
                await self._serve(record)
            except BaseException:
                if token is not None:
                    await asyncio.to_thread(self.packages.remove, token)
                raise
            tags = body.get("Tags")
            if isinstance(tags, dict) and tags and self.meta is not None:
                await self.meta.change(name, lambda m: Meta(tags=dict(tags)))
        finally:
            self._busy.discard(name)
        published = await self._publish(name) if body.get("Publish") else None
        config = await self.api.configuration_of(name)
        config.pop("LastUpdateStatus", None)
        config.update(
            State="Pending",
            StateReason="The function is being created.",
            StateReasonCode="Creating",
        )
        if published is not None:  # AWS names the version, the ARN stays unqualified
            config["Version"] = published.name
        return json_response(201, config)

    async def update_code(self, request: Request) -> Response:
        body = json_body(request)
        checked("UpdateFunctionCode", request, body)
        record = self._own(request, "UpdateFunctionCode")
        _refuse_unsupported(body)
        self._check_revision(record, body.get("RevisionId"))
        self._busy.add(record.name)
        try:
            if record.package_type == "Image":
                if body.get("ZipFile") is not None:
                    raise InvalidParameterValue(
                        "Please provide ImageUri when updating a function with packageType Image."
                    )
                uri = await self._image(body.get("ImageUri"), "updating", "Image")
                if body.get("DryRun"):
                    return json_response(200, await self.api.configuration_of(record.name))
                changed = replace(record, image_uri=uri, code_sha256=_sha(uri.encode()))
            else:
                if body.get("ImageUri") is not None:
                    raise InvalidParameterValue(
                        "Please don't provide ImageUri when updating a function with "
                        "packageType Zip."
                    )
                data = zip_bytes(body)
                if body.get("DryRun"):
                    return json_response(200, await self.api.configuration_of(record.name))
                token = await self._unpack(data, "UpdateFunctionCode")
                changed = replace(record, code_token=token, code_sha256=_sha(data))
                changed = replace(changed, code_size=len(data))
            await self._change(record, changed)
        finally:
            self._busy.discard(record.name)
        if body.get("Publish"):
            return await self._published(record.name)
        return await self._in_progress(record.name)

    async def update_configuration(self, request: Request) -> Response:
        body = json_body(request)
        checked("UpdateFunctionConfiguration", request, _without_runtime(body))
        record = self._own(request, "UpdateFunctionConfiguration")
        _refuse_unsupported(body)
        self._check_revision(record, body.get("RevisionId"))
        runtime = body.get("Runtime", record.runtime)
        handler = body.get("Handler", record.handler)
        if record.package_type == "Zip":
            if runtime is not None:
                _check_runtime(runtime)
        elif "Runtime" in body or "Handler" in body:
            raise InvalidParameterValue(
                "Runtime and Handler are not supported for functions with PackageType Image"
            )
        changed = replace(
            record, runtime=runtime, handler=handler, **_settings(body, record, record.name)
        )
        if "Environment" in body:
            changed = replace(changed, has_environment=True)
        if "Layers" in body:
            changed = replace(changed, layers=self._layer_arns(body, record.package_type))
        self._busy.add(record.name)
        try:
            await self._change(record, changed)
        finally:
            self._busy.discard(record.name)
        return await self._in_progress(record.name)

    async def delete(self, request: Request) -> Response:
        checked("DeleteFunction", request)
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), "DeleteFunction"
        )
        if qualifier == LATEST:
            raise InvalidParameterValue(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if qualifier is not None:
            # One version: of any function, the manifest's too (a version is not the function).
            self.api.existing(name)
            if self.versions is None:
                raise not_found(name, qualifier)
            await self.versions.delete_version(name, qualifier)
            await self._release_layers()  # a layer version only that version used may go
            return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
        record = self._record(name)
        if name in self._busy:
            raise _in_progress_conflict(name)
        if self.versions is not None:
            await self.versions.drop(name)
        await self.records.delete(name)
        self.api.service.remove_function(name)
        if self.meta is not None and self.meta.get(name) != Meta():
            await self.meta.change(name, lambda m: Meta())
        if self.configs is not None:
            await self.configs.delete(name)
        if record.code_token is not None:
            self.remove_code_later(record.code_token, record.timeout)
        if record.layers:
            await self._release_layers()
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    def _zip_of(self, token: str) -> Path | None:
        """A function's zip, as GetFunction's ``Code.Location`` names it."""
        if token not in self._kept():
            return None
        return self.packages.zip(token)

    # Helpers

    def busy(self, name: str) -> bool:
        """Is the function being created or changed right now?"""
        return name in self._busy

    def _kept(self) -> set[str]:
        """The code directories in use: functions' and their published versions'."""
        kept = {r.code_token for r in self.records.records.values() if r.code_token}
        if self.versions is not None:
            kept |= self.versions.versions.tokens()
        return kept

    async def _publish(self, name: str) -> Version | None:
        """Publish ``$LATEST`` (Publish on CreateFunction or UpdateFunctionCode)."""
        if self.versions is None:
            return None
        async with self.versions.lock(name):
            return await self.versions.publish_latest(name)

    async def _published(self, name: str) -> Response:
        """UpdateFunctionCode with Publish: AWS answers with the version it is creating."""
        last = self.versions.versions.of(name).last if self.versions is not None else 0
        version = await self._publish(name)
        if version is None:
            return await self._in_progress(name)
        config = dict(version.config)
        if version.number > last:
            config.pop("LastUpdateStatus", None)
            config.update(
                State="Pending",
                StateReason="The function is being created.",
                StateReasonCode="Creating",
            )
        return json_response(200, config)

    def _record(self, name: str, qualifier: str | None = None) -> ApiFunction:
        """The API-created function ``name``: a manifest one is refused, naming the manifest."""
        manifest = self.api.service.manifest
        if manifest is not None and name in manifest.functions:
            raise ResourceConflict(
                f"Function {name} is managed by the manifest {manifest.path}: change it there "
                "(lrun applies edits to it while serving), not through the API"
            )
        record = self.records.records.get(name)
        if record is None:
            raise not_found(name, qualifier)
        return record

    def _own(self, request: Request, operation: str) -> ApiFunction:
        name = unqualified(request.params["function"], operation)
        record = self._record(name)
        if name in self._busy:
            raise _in_progress_conflict(name)
        return record

    def _check_revision(self, record: ApiFunction, given: object) -> None:
        if given is not None and given != self.api.revision(record.name):
            raise PreconditionFailed(
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    async def _image(self, uri: object, doing: str, package: str) -> str:
        if not isinstance(uri, str) or not uri:
            raise InvalidParameterValue(
                f"Please provide ImageUri when {doing} a function with packageType {package}."
            )
        if not await self.api.service.image_exists(uri):
            raise InvalidParameterValue(
                f"Source image {uri} does not exist. Provide a valid source image."
            )
        return uri

    async def _unpack(self, data: bytes, operation: str) -> str:
        """Unpack a zip into a new directory lrun names; its token. The zip is kept beside it."""
        token, _ = await asyncio.to_thread(self.packages.store, data, operation)
        return token

    async def _serve(self, record: ApiFunction) -> None:
        spec = self.spec(record)
        if spec.layers and self.catalog is not None:  # code and layers within Lambda's limit
            spec = await asyncio.to_thread(self.catalog.resolve, spec)
        revision = await asyncio.to_thread(_revision, spec)
        await self.records.put(record)  # durable before it is served or acknowledged
        self.api.service.put_function(spec, revision)

    async def _change(self, before: ApiFunction, after: ApiFunction) -> None:
        after = replace(after, last_modified=time.time(), revision=str(uuid.uuid4()))
        try:
            await self._serve(after)
        except BaseException:
            if after.code_token not in (None, before.code_token):
                assert after.code_token is not None
                await asyncio.to_thread(self.packages.remove, after.code_token)
            raise
        if before.code_token is not None and before.code_token != after.code_token:
            self.remove_code_later(before.code_token, before.timeout)
        if before.layers != after.layers:
            await self._release_layers()

    async def _release_layers(self) -> None:
        if self.layers_released is not None:
            await self.layers_released()

    def remove_code_later(self, token: str, timeout: int) -> None:
        """Remove old code once the invocations that may still run it are over (they were
        started before the change, so within the function's timeout)."""

        async def remove() -> None:
            await asyncio.sleep(timeout + 5)
            if token not in self._kept():
                await asyncio.to_thread(self.packages.remove, token)

        task = asyncio.ensure_future(remove())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _in_progress(self, name: str) -> Response:
        config = await self.api.configuration_of(name)
        config.update(
            LastUpdateStatus="InProgress",
            LastUpdateStatusReason="The function is being created.",
            LastUpdateStatusReasonCode="Creating",
        )
        return json_response(200, config)


def _settings(body: Mapping[str, Any], record: ApiFunction | None, name: str) -> dict[str, Any]:
    """The settings CreateFunction takes (defaults as AWS's) or an update changes."""
    current: dict[str, Any] = (
        {
            "role": record.role,
            "memory": record.memory,
            "timeout": record.timeout,
            "ephemeral_storage": record.ephemeral_storage,
            "environment": record.environment,
            "description": record.description,
            "architectures": record.architectures,
            "logging": record.logging,
        }
        if record is not None
        else {
            "role": body.get("Role", f"arn:aws:iam::{ACCOUNT_ID}:role/lrun-local"),
            "memory": 128,
            "timeout": 3,
            "ephemeral_storage": 512,
            "environment": {},
            "description": "",
            "architectures": ("x86_64",),
            "logging": LoggingConfig(),
        }
    )
    if "Role" in body:
        current["role"] = body["Role"]
    if "MemorySize" in body:
        current["memory"] = _at_most("MemorySize", body["MemorySize"], MAX_MEMORY)
    if "Timeout" in body:
        current["timeout"] = _at_most("Timeout", body["Timeout"], MAX_TIMEOUT)
    storage = body.get("EphemeralStorage")
    if isinstance(storage, dict) and "Size" in storage:
        current["ephemeral_storage"] = storage["Size"]
    if "Description" in body:
        current["description"] = body["Description"]
    given = body.get("LoggingConfig")
    if isinstance(given, dict):
        try:
            current["logging"] = merged(current["logging"], given, name)
        except LoggingConfigError as exc:
            raise InvalidParameterValue(str(exc)) from None
    if "Architectures" in body:
        current["architectures"] = tuple(body["Architectures"])
    environment = body.get("Environment")
    if isinstance(environment, dict):
        variables = environment.get("Variables") or {}
        _check_environment(variables)
        current["environment"] = dict(variables)
    return current


def _at_most(member: str, value: int, limit: int) -> int:
    if value > limit:
        raise InvalidParameterValue(
            f"'{member}' value failed to satisfy constraint: Member must have value less than "
            f"or equal to {limit}"
        )
    return value


def _check_environment(variables: Mapping[str, str]) -> None:
    reserved = sorted(set(variables) & RESERVED_ENV_NAMES)
    if reserved:
        raise InvalidParameterValue(
            f"{_ENV_PREFIX} contains reserved keys that are currently not supported for "
            f"modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(dict(variables), separators=(",", ":"))
    if len(measured) > ENV_SIZE_LIMIT:
        raise InvalidParameterValue(
            f"{_ENV_PREFIX} exceeded the 4KB limit. String measured: {measured}"
        )


def _without_runtime(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "Runtime"}


def _check_runtime(runtime: object) -> None:
    if not isinstance(runtime, str) or (
        runtime not in CREATABLE_RUNTIMES.split(", ") and runtime not in RUNTIME_NAMES
    ):
        raise InvalidParameterValue(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{CREATABLE_RUNTIMES}] or be a valid ARN"
        )
    if _RUNTIME_IMAGES.get(runtime, runtime) not in RUNTIME_NAMES:
        known = ", ".join([*RUNTIME_NAMES, *_RUNTIME_IMAGES])
        raise InvalidParameterValue(
            f"lrun has no image for runtime {runtime}: choose one of {known} (or package the "
            "function as an image, PackageType Image)"
        )


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    """What lrun cannot honour yet, refused in one line rather than accepted and ignored."""
    if body.get("PublishTo") is not None:
        raise InvalidParameterValue(
            "PublishTo LATEST_PUBLISHED is for functions with a capacity provider, which lrun "
            "does not run: call again without it (Publish publishes a numbered version)"
        )
    code = body.get("Code") if isinstance(body.get("Code"), dict) else body
    if isinstance(code, dict) and code.get("S3Bucket") is not None:
        raise InvalidParameterValue(
            "lrun cannot read code from S3: send the zip itself (ZipFile; the AWS CLI's "
            "--zip-file fileb://code.zip)"
        )


def zip_bytes(
    code: Mapping[str, Any],
    what: str = "the function's code: ZipFile (the AWS CLI's --zip-file fileb://code.zip)",
) -> bytes:
    """The zip a request carries in ``ZipFile`` (base64 in JSON), refused as AWS refuses a
    package it cannot read."""
    given = code.get("ZipFile")
    if not isinstance(given, str) or not given:
        raise InvalidParameterValue(f"Please provide {what}")
    try:
        return base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameterValue(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from exc


def _sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _in_progress_conflict(name: str) -> ResourceConflict:
    return ResourceConflict(
        "The operation cannot be performed at this time. An update is in progress for "
        f"resource: {function_arn(name)}"
    )


def _revision(spec: FunctionSpec) -> str:
    return f"{spec.config_digest()}-{code_digest(spec.code)}"
