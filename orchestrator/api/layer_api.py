"""Lambda's layer operations: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn,
ListLayers, ListLayerVersions, DeleteLayerVersion, and a version's resource-based policy
(AddLayerVersionPermission, GetLayerVersionPolicy, RemoveLayerVersionPermission; stored and
shown as AWS does, not enforced: lrun has one account).

A published zip is unpacked as a function's is (``code_package``: hostile input) under
``<state>/layers/<token>``, the zip kept beside it for ``Content.Location``. Errors and messages
are AWS's (recorded on AWS where LocalStack's snapshots have them; see wire_cases).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.api import validation
from orchestrator.api.code_package import MAX_UPLOAD_REQUEST, Packages, too_large
from orchestrator.api.downloads import Downloads, location
from orchestrator.api.function_api import CREATABLE_RUNTIMES, zip_bytes
from orchestrator.api.lambda_api import LambdaApi, json_body, json_response, timestamp
from orchestrator.api.policy import MAX_POLICY_BYTES, compact, document, principal
from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import (
    AccessDenied,
    CodeStorageExceeded,
    InvalidParameterValue,
    PolicyLengthExceeded,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from orchestrator.events.layer_versions import (
    MAX_LAYER_VERSIONS,
    LayerVersion,
    LayerVersions,
    layer_arn,
    layer_version_arn,
)
from orchestrator.http_server import Request, Response

_LAYERS = "/2018-10-31/layers"
_VERSION = _LAYERS + "/{LayerName}/versions/{VersionNumber}"
_LAYER_ARN = re.compile(
    r"arn:(?:aws[a-zA-Z-]*)?:lambda:(?P<region>[^:]+):(?P<account>\d{12}):layer:(?P<name>[^:]+)"
)
_NO_RESOURCE = "The resource you requested does not exist."
_STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API "
    "to retrieve the latest Revision Id"
)
_RUNTIMES = CREATABLE_RUNTIMES.split(", ")
PAGE = 50  # items in a page when the caller sets no MaxItems, as on AWS


class LayerApi:
    def __init__(
        self,
        api: LambdaApi,
        versions: LayerVersions,
        packages: Packages,
        downloads: Downloads,
        in_use: Callable[[], set[str]] = set,
    ) -> None:
        """``in_use``: the layer version ARNs functions use now (their content is kept after a
        delete while they do)."""
        self.api = api
        self.versions = versions
        self.packages = packages
        self.in_use = in_use
        downloads.add(self._zip_of)

    def add_routes(self) -> None:
        add = self.api.router.add

        async def publish_too_large(request: Request, size: int | None) -> Response:
            raise too_large("PublishLayerVersion", size)

        versions = _LAYERS + "/{LayerName}/versions"
        add("POST", versions, self.publish, publish_too_large, MAX_UPLOAD_REQUEST)
        add("GET", versions, self.list_versions)
        add("GET", _LAYERS, self.list_layers)
        add("GET", _LAYERS + "/", self.list_layers)
        add("GET", _VERSION, self.get)
        add("DELETE", _VERSION, self.delete)
        add("POST", _VERSION + "/policy", self.add_permission)
        add("GET", _VERSION + "/policy", self.get_policy)
        add("DELETE", _VERSION + "/policy/{StatementId}", self.remove_permission)

    async def restore(self) -> None:
        """Forget deleted versions nothing uses, and remove content no record names (left by a
        crash between unpacking and storing). The versions are loaded already."""
        await self.collect()
        kept = {v.token for v in self.versions.all_stored()}
        await asyncio.to_thread(self.packages.sweep, kept)

    async def collect(self) -> None:
        """Forget deleted versions no function uses any more, and remove their content."""
        used = self.in_use()
        for record in self.versions.all_stored():
            if record.deleted and record.arn not in used:
                await self.versions.forget(record)
                await asyncio.to_thread(self.packages.remove, record.token)

    # Operations

    async def publish(self, request: Request) -> Response:
        body = json_body(request)
        given = validation.values("PublishLayerVersion", request, body)
        runtimes = given.pop("CompatibleRuntimes", None)
        validation.refuse(
            _runtime_problems(runtimes) + validation.problems("PublishLayerVersion", given)
        )
        name = self._name(request, "PublishLayerVersion", None)
        if name is None:
            raise InvalidParameterValue(
                f"lrun serves region {REGION} only: publish the layer there, by its name"
            )
        content = body["Content"] if isinstance(body["Content"], dict) else {}
        if content.get("S3Bucket") is not None or content.get("S3Key") is not None:
            raise InvalidParameterValue(
                "lrun cannot read a layer from S3: send the zip itself (Content.ZipFile; the "
                "AWS CLI's --zip-file fileb://layer.zip)"
            )
        if self.versions.count() >= MAX_LAYER_VERSIONS:
            raise CodeStorageExceeded(
                f"Code storage limit exceeded: lrun serve keeps at most {MAX_LAYER_VERSIONS} "
                "layer versions; delete some (aws lambda delete-layer-version) first"
            )
        data = zip_bytes(
            content,
            "the layer's content: Content.ZipFile (the AWS CLI's --zip-file fileb://layer.zip)",
        )
        token, unzipped = await asyncio.to_thread(self.packages.store, data, "PublishLayerVersion")
        draft = LayerVersion(
            name=name,
            version=0,
            description=_text(body.get("Description")) or "",
            license_info=_text(body.get("LicenseInfo")),
            compatible_runtimes=None if runtimes is None else tuple(runtimes),
            compatible_architectures=_tuple(body.get("CompatibleArchitectures")),
            created=time.time(),
            code_sha256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
            code_size=len(data),
            unzipped_size=unzipped,
            token=token,
        )
        try:
            record = await self.versions.publish(draft)
        except BaseException:
            await asyncio.to_thread(self.packages.remove, token)
            raise
        return json_response(201, self.describe(record, request))

    async def get(self, request: Request) -> Response:
        validation.check("GetLayerVersion", validation.values("GetLayerVersion", request, None))
        number = _number(request)
        name = self._name(request, "GetLayerVersion", number)
        record = self.versions.get(name, number) if name is not None else None
        if record is None:
            raise ResourceNotFound(_NO_RESOURCE)
        return json_response(200, self.describe(record, request))

    async def list_layers(self, request: Request) -> Response:
        if request.query.get("find") == "LayerVersion":
            return await self.get_by_arn(request)
        given = validation.values("ListLayers", request, None)
        validation.check("ListLayers", given)
        runtime, architecture = given.get("CompatibleRuntime"), given.get("CompatibleArchitecture")
        layers = []
        for name in self.versions.names():
            latest = next(
                (v for v in self.versions.versions(name) if _matches(v, runtime, architecture)),
                None,
            )
            if latest is not None:
                layers.append(
                    {
                        "LayerName": name,
                        "LayerArn": layer_arn(name),
                        "LatestMatchingVersion": _item(latest),
                    }
                )
        page, marker = _page(layers, [str(layer["LayerName"]) for layer in layers], given)
        body: dict[str, Any] = {"Layers": page}
        if marker is not None:
            body["NextMarker"] = marker
        return json_response(200, body)

    async def get_by_arn(self, request: Request) -> Response:
        given = validation.values("GetLayerVersionByArn", request, None)
        validation.check("GetLayerVersionByArn", given)
        arn = given["Arn"]
        found = _LAYER_ARN.match(arn)
        record = None
        if found is not None and ":awslayer:" not in arn:
            number = int(arn.rsplit(":", 1)[1])
            _check_account(found["account"], "GetLayerVersion", arn)
            if found["region"] == REGION:
                record = self.versions.get(found["name"], number)
        if record is None:
            raise ResourceNotFound(_NO_RESOURCE)
        return json_response(200, self.describe(record, request))

    async def list_versions(self, request: Request) -> Response:
        given = validation.values("ListLayerVersions", request, None)
        validation.check("ListLayerVersions", given)
        name = self._name(request, "ListLayerVersions", None)
        runtime, architecture = given.get("CompatibleRuntime"), given.get("CompatibleArchitecture")
        found = [
            v
            for v in (self.versions.versions(name) if name is not None else [])
            if _matches(v, runtime, architecture)
        ]
        page, marker = _page([_item(v) for v in found], [str(v.version) for v in found], given)
        body: dict[str, Any] = {"LayerVersions": page}
        if marker is not None:
            body["NextMarker"] = marker
        return json_response(200, body)

    async def delete(self, request: Request) -> Response:
        validation.check(
            "DeleteLayerVersion", validation.values("DeleteLayerVersion", request, None)
        )
        number = _number(request)
        name = self._name(request, "DeleteLayerVersion", number)
        record = self.versions.get(name, number) if name is not None else None
        if record is not None:  # deleting what is not there succeeds too, as on AWS
            await self.versions.put(replace(record, deleted=True))
            await self.collect()
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    # A version's policy

    async def add_permission(self, request: Request) -> Response:
        body = json_body(request)
        given = validation.values("AddLayerVersionPermission", request, body)
        validation.check("AddLayerVersionPermission", given)
        record = self._existing(request, "AddLayerVersionPermission")
        sid = body["StatementId"]
        if any(s["Sid"] == sid for s in record.statements):
            raise ResourceConflict(
                f"The statement id ({sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement."
            )
        revision = given.get("RevisionId")
        if revision is not None and revision != record.policy_revision:
            raise PreconditionFailed(_STALE)
        made: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": principal(body["Principal"]),
            "Action": body["Action"],
            "Resource": record.arn,
        }
        if "OrganizationId" in body:
            made["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": body["OrganizationId"]}}
        statements = (*record.statements, made)
        size = len(compact(document(statements)))
        if size > MAX_POLICY_BYTES:
            raise PolicyLengthExceeded(
                f"The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES})."
            )
        changed = replace(record, statements=statements, policy_revision=str(uuid.uuid4()))
        await self.versions.put(changed)
        return json_response(
            201, {"Statement": compact(made), "RevisionId": changed.policy_revision}
        )

    async def get_policy(self, request: Request) -> Response:
        validation.check(
            "GetLayerVersionPolicy", validation.values("GetLayerVersionPolicy", request, None)
        )
        record = self._existing(request, "GetLayerVersionPolicy")
        if not record.statements:
            raise ResourceNotFound("No policy is associated with the given resource.")
        return json_response(
            200,
            {"Policy": compact(document(record.statements)), "RevisionId": record.policy_revision},
        )

    async def remove_permission(self, request: Request) -> Response:
        given = validation.values("RemoveLayerVersionPermission", request, None)
        validation.check("RemoveLayerVersionPermission", given)
        record = self._existing(request, "RemoveLayerVersionPermission")
        revision = given.get("RevisionId")
        if revision is not None and revision != record.policy_revision:
            raise PreconditionFailed(_STALE)
        sid = request.params["StatementId"]
        kept = tuple(s for s in record.statements if s["Sid"] != sid)
        if len(kept) == len(record.statements):
            raise ResourceNotFound(f"Statement {sid} is not found in resource policy.")
        await self.versions.put(replace(record, statements=kept, policy_revision=str(uuid.uuid4())))
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    # Helpers

    def describe(self, record: LayerVersion, request: Request) -> dict[str, Any]:
        """A version as PublishLayerVersion and GetLayerVersion answer it."""
        described: dict[str, Any] = {
            "Content": {
                "Location": location(request, record.token),
                "CodeSha256": record.code_sha256,
                "CodeSize": record.code_size,
            },
            "LayerArn": layer_arn(record.name),
            **_item(record),
        }
        return described

    def _zip_of(self, token: str) -> Path | None:
        if not any(v.token == token and not v.deleted for v in self.versions.all_stored()):
            return None
        return self.packages.zip(token)

    def _name(self, request: Request, operation: str, number: int | None) -> str | None:
        """The layer a request's LayerName names (a name, or an ARN of lrun's account); None
        for an ARN of another region, where lrun has no layers."""
        name, here = _target(request, operation, number)
        return name if here else None

    def _existing(self, request: Request, operation: str) -> LayerVersion:
        """The version a policy request names: AWS's "does not exist" naming its ARN."""
        number = _number(request)
        name, here = _target(request, operation, number)
        record = self.versions.get(name, number) if here else None
        if record is None:
            raise ResourceNotFound(
                f"Layer version {layer_version_arn(name, number)} does not exist."
            )
        return record


def _target(request: Request, operation: str, number: int | None) -> tuple[str, bool]:
    """The layer name a request's LayerName gives, and whether it is in lrun's region."""
    given = request.params["LayerName"]
    found = _LAYER_ARN.fullmatch(given)
    if found is None:
        return given, True
    resource = given if number is None else f"{given}:{number}"
    _check_account(found["account"], operation, resource)
    return found["name"], found["region"] == REGION


def _runtime_problems(runtimes: object) -> list[str]:
    """CompatibleRuntimes as AWS checks them: against the runtimes a function can be created
    with, the whole list quoted (recorded on AWS, see wire_cases)."""
    if runtimes is None:
        return []
    found = []
    if isinstance(runtimes, list) and len(runtimes) > 15:
        found.append(
            f"Value {validation.show(runtimes)} at 'compatibleRuntimes' failed to satisfy "
            "constraint: Member must have length less than or equal to 15"
        )
    if not isinstance(runtimes, list) or any(r not in _RUNTIMES for r in runtimes):
        found.append(
            f"Value {validation.show(runtimes)} at 'compatibleRuntimes' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{CREATABLE_RUNTIMES}]"
        )
    return found


def _check_account(account: str, operation: str, resource: str) -> None:
    if account != ACCOUNT_ID:
        action = f"lambda:{operation}"
        raise AccessDenied(
            f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: {action} on "
            f"resource: {resource} because no resource-based policy allows the {action} action"
        )


def _number(request: Request) -> int:
    text = request.params["VersionNumber"]
    if re.fullmatch(r"-?\d{1,18}", text) is None:
        raise InvalidParameterValue(f"VersionNumber {text!r} is not a whole number")
    number = int(text)
    if number < 1:
        raise InvalidParameterValue("Layer Version Cannot be less than 1")
    return number


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _tuple(value: object) -> tuple[str, ...] | None:
    return None if not isinstance(value, list) else tuple(str(v) for v in value)


def _matches(record: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    if runtime is not None and runtime not in (record.compatible_runtimes or ()):
        return False
    return architecture is None or architecture in (record.compatible_architectures or ())


def _item(record: LayerVersion) -> dict[str, Any]:
    """A version as ListLayerVersions lists it (members AWS leaves out when they were not
    given are left out)."""
    item: dict[str, Any] = {
        "LayerVersionArn": record.arn,
        "Version": record.version,
        "Description": record.description,
        "CreatedDate": timestamp(record.created),
    }
    if record.compatible_runtimes is not None:
        item["CompatibleRuntimes"] = list(record.compatible_runtimes)
    if record.license_info is not None:
        item["LicenseInfo"] = record.license_info
    if record.compatible_architectures is not None:
        item["CompatibleArchitectures"] = list(record.compatible_architectures)
    return item


def _page(
    items: list[dict[str, Any]], keys: list[str], given: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` from the caller's Marker (the key of its first item), and the
    marker of the next page if there is one."""
    marker = given.get("Marker")
    if marker is not None and marker not in keys:
        raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
    start = keys.index(marker) if marker is not None else 0
    size = given.get("MaxItems", PAGE)
    if not isinstance(size, int):
        raise InvalidParameterValue(f"MaxItems must be a whole number, not {size!r}")
    end = start + size
    return items[start:end], keys[end] if end < len(keys) else None
