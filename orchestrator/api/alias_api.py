"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias and ListAliases: names for a version of a
function, or for two with a weighted split (``RoutingConfig.AdditionalVersionWeights``), kept in
the store and served by the service's ``route``. Errors are AWS's, as recorded on AWS (LocalStack's
AWS-validated snapshots, ``TestLambdaAlias``).

The alias lrun keeps for a manifest function's ``provisioned_concurrency`` (``live``) is the
manifest's: changing or deleting it through the API is refused, naming the manifest.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator.api.function_names import LATEST, not_found, unqualified
from orchestrator.api.lambda_api import checked, json_body, json_response
from orchestrator.api.version_api import STALE_REVISION, VersionApi
from orchestrator.aws import function_arn
from orchestrator.errors import (
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
    UntypedInvalidParameterValue,
)
from orchestrator.events.versions import AliasRecord
from orchestrator.http_server import Request, Response
from orchestrator.served import Alias

MAX_ALIASES = 1000  # aliases one server keeps, all functions together
PAGE_DEFAULT = 50


def to_api(alias: AliasRecord) -> dict[str, Any]:
    """An alias as AWS shows it (RoutingConfig only when it routes to a second version)."""
    body: dict[str, Any] = {
        "AliasArn": function_arn(alias.function, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        body["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return body


class AliasApi:
    def __init__(self, versions: VersionApi) -> None:
        self.versions = versions
        self.api = versions.api

    def add_routes(self) -> None:
        add = self.api.router.add
        many = "/2015-03-31/functions/{function}/aliases"
        add("POST", many, self.create)
        add("GET", many, self.list_aliases)
        add("GET", many + "/{Name}", self.get)
        add("PUT", many + "/{Name}", self.update)
        add("DELETE", many + "/{Name}", self.delete)

    async def create(self, request: Request) -> Response:
        body = json_body(request)
        checked("CreateAlias", request, body)
        name = unqualified(request.params["function"], "CreateAlias")
        target = body["FunctionVersion"]
        self.api.existing(name, target)
        async with self.versions.lock(name):
            self.api.existing(name, target)
            weights = self._routing(name, target, body.get("RoutingConfig"))
            kept = self.versions.versions.of(name)
            if body["Name"] in kept.aliases:
                raise ResourceConflict(f"Alias already exists: {function_arn(name, body['Name'])}")
            if self.versions.versions.alias_count() >= MAX_ALIASES:
                raise InvalidParameterValue(
                    f"lrun serve keeps at most {MAX_ALIASES} aliases: delete some first (aws "
                    "lambda delete-alias)"
                )
            alias = AliasRecord(
                name,
                body["Name"],
                target,
                weights,
                body.get("Description", ""),
                str(uuid.uuid4()),
            )
            await self._put(alias)
        return json_response(201, to_api(alias))

    async def get(self, request: Request) -> Response:
        checked("GetAlias", request)
        name = unqualified(request.params["function"], "GetAlias")
        alias_name = request.params["Name"]
        self.api.existing(name)
        alias = self.versions.versions.of(name).aliases.get(alias_name)
        if alias is None:
            raise ResourceNotFound(f"Cannot find alias arn: {function_arn(name, alias_name)}")
        return json_response(200, to_api(alias))

    async def update(self, request: Request) -> Response:
        body = json_body(request)
        checked("UpdateAlias", request, body)
        name = unqualified(request.params["function"], "UpdateAlias")
        alias_name = request.params["Name"]
        self.api.existing(name)
        async with self.versions.lock(name):
            alias = self.versions.versions.of(name).aliases.get(alias_name)
            if alias is None:
                raise ResourceNotFound(f"Alias not found: {function_arn(name, alias_name)}")
            self._own(alias)
            revision = body.get("RevisionId")
            if revision is not None and revision != alias.revision_id:
                raise PreconditionFailed(STALE_REVISION)
            target = body.get("FunctionVersion", alias.version)
            routing = body.get("RoutingConfig")
            weights = (
                self._routing(name, target, routing)
                if routing is not None
                else self._routing(name, target, {"AdditionalVersionWeights": dict(alias.weights)})
            )
            changed = AliasRecord(
                name,
                alias_name,
                target,
                weights,
                body.get("Description", alias.description),
                str(uuid.uuid4()),
            )
            await self._put(changed)
        return json_response(200, to_api(changed))

    async def delete(self, request: Request) -> Response:
        checked("DeleteAlias", request)
        name = unqualified(request.params["function"], "DeleteAlias")
        alias_name = request.params["Name"]
        self.api.existing(name)
        async with self.versions.lock(name):
            alias = self.versions.versions.of(name).aliases.get(alias_name)
            if alias is not None:  # an absent one is no error, as on AWS
                self._own(alias)
                await self.versions.versions.remove_alias(name, alias_name)
                await self.versions.forget(name, alias_name)
                self.api.service.remove_alias(name, alias_name)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def list_aliases(self, request: Request) -> Response:
        given = checked("ListAliases", request)
        name = unqualified(request.params["function"], "ListAliases")
        self.api.existing(name)
        version = given.get("FunctionVersion")
        aliases = [
            a
            for _, a in sorted(self.versions.versions.of(name).aliases.items())
            if version is None or version in (a.version, *dict(a.weights))
        ]
        keys = [a.name for a in aliases]
        marker = request.query.get("Marker")
        if marker and marker not in keys:
            raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
        start = keys.index(marker) if marker else 0
        size = min(given.get("MaxItems") or PAGE_DEFAULT, PAGE_DEFAULT)
        page: dict[str, Any] = {"Aliases": [to_api(a) for a in aliases[start : start + size]]}
        if start + size < len(aliases):
            page["NextMarker"] = keys[start + size]
        return json_response(200, page)

    # Helpers

    def _routing(
        self, name: str, target: str, routing: Mapping[str, Any] | None
    ) -> tuple[tuple[str, float], ...]:
        """The checked weights of a RoutingConfig, AWS's errors in AWS's order."""
        versions = self.versions.versions.of(name).versions
        if not _exists(versions, target):
            raise not_found(name, target)
        given = (routing or {}).get("AdditionalVersionWeights") or {}
        if not isinstance(given, Mapping):
            raise InvalidParameterValue("AdditionalVersionWeights must be a map of versions")
        if len(given) > 1:
            raise InvalidParameterValue(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        for version in given:
            if version == target:
                raise InvalidParameterValue(
                    f"Invalid function version {version}. Function version {version} is already "
                    "included in routing configuration."
                )
            if target == LATEST:
                raise UntypedInvalidParameterValue(
                    "$LATEST is not supported for an alias pointing to more than 1 version"
                )
            if version == LATEST or not _exists(versions, version):
                raise not_found(name, version)
        return tuple((version, float(weight)) for version, weight in given.items())

    async def _put(self, alias: AliasRecord) -> None:
        await self.versions.versions.put_alias(alias)
        self.api.service.put_alias(alias.function, alias.name, Alias(alias.version, alias.weights))

    def _own(self, alias: AliasRecord) -> None:
        """An alias lrun keeps for the manifest is the manifest's."""
        if alias.managed:
            manifest = self.api.service.manifest
            where = manifest.path if manifest is not None else "the manifest"
            raise ResourceConflict(
                f"Alias {alias.name} of {alias.function} is kept by lrun for the "
                f"provisioned_concurrency that {where} declares: change that instead"
            )


def _exists(versions: Mapping[int, object], version: str) -> bool:
    """Is ``version`` ``$LATEST`` or a published version? (``$LATEST.PUBLISHED`` names what
    only functions with a capacity provider have: never, in lrun.)"""
    return version == LATEST or (version.isdigit() and int(version) in versions)
