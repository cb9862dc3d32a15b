"""Put/Get/Delete/ListProvisionedConcurrencyConfig(s): environments kept initialised for a
published version or an alias, as on Lambda (never ``$LATEST``, which changes under them). An
alias's apply to the version(s) it points to (split by its weights) and move with it. Settings
are kept in the store (``events.versions``) and survive restarts.

Errors and their order are AWS's, as recorded on AWS (LocalStack's AWS-validated snapshots,
``TestLambdaProvisionedConcurrency`` and ``test_lambda_provisioned_concurrency_scheduling``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from orchestrator.api.function_names import LATEST, not_found, resolve
from orchestrator.api.lambda_api import (
    LambdaApi,
    checked,
    json_body,
    json_response,
    timestamp,
)
from orchestrator.api.version_api import VersionApi
from orchestrator.aws import function_arn
from orchestrator.errors import (
    InvalidParameterValue,
    ProvisionedConfigNotFound,
    ResourceConflict,
    ResourceNotFound,
    UntypedInvalidParameterValue,
)
from orchestrator.http_server import Request, Response
from orchestrator.served import Provisioned

NOT_PUBLISHED = (
    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
)
NOT_A_VERSION = "The function resource provided must be an alias or a published version."
NONE_FOUND = "No Provisioned Concurrency Config found for this function"


class ProvisionedApi:
    def __init__(self, versions: VersionApi) -> None:
        self.versions = versions
        self.api: LambdaApi = versions.api

    def add_routes(self) -> None:
        path = "/2019-09-30/functions/{function}/provisioned-concurrency"
        self.api.router.add("PUT", path, self.put)
        self.api.router.add("GET", path, self.get)
        self.api.router.add("DELETE", path, self.delete)

    async def put(self, request: Request) -> Response:
        body = json_body(request)
        checked("PutProvisionedConcurrencyConfig", request, body)
        if self._qualifier(request) == LATEST:
            raise InvalidParameterValue(NOT_PUBLISHED)
        name, qualifier = self._target(request, "PutProvisionedConcurrencyConfig")
        value = body["ProvisionedConcurrentExecutions"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidParameterValue(
                f"ProvisionedConcurrentExecutions must be an integer >= 1, not {value!r}"
            )
        async with self.versions.lock(name):
            name, qualifier = self._target(request, "PutProvisionedConcurrencyConfig")
            state = self.api.existing(name)
            others = sum(p.requested for q, p in state.provisioned.items() if q != qualifier)
            if state.reserved is not None and state.reserved < others + value:
                raise InvalidParameterValue(
                    "Requested Provisioned Concurrency should not be greater than the "
                    "reservedConcurrentExecution for function"
                )
            limit = self.api.service.pool.host_limit
            if value > limit:
                raise UntypedInvalidParameterValue(
                    "Specified ConcurrentExecutions for function is greater than account's "
                    f"unreserved concurrency [{limit}]."
                )
            self._check_conflicts(name, qualifier)
            setting = Provisioned(value, time.time())
            await self.versions.versions.put_provisioned(name, qualifier, setting)
            self.api.service.set_provisioned(name, qualifier, value)
            state.provisioned[qualifier] = setting
        return json_response(202, self.config(name, qualifier, with_arn=False))

    async def get(self, request: Request) -> Response:
        if request.query.get("List") == "ALL":
            return await self.list_configs(request)
        checked("GetProvisionedConcurrencyConfig", request)
        if self._qualifier(request) == LATEST:
            raise InvalidParameterValue(NOT_A_VERSION)
        name, qualifier = self._target(request, "GetProvisionedConcurrencyConfig")
        return json_response(200, self.config(name, qualifier, with_arn=False))

    async def delete(self, request: Request) -> Response:
        checked("DeleteProvisionedConcurrencyConfig", request)
        if self._qualifier(request) == LATEST:
            raise InvalidParameterValue(NOT_A_VERSION)
        name, qualifier = self._target(request, "DeleteProvisionedConcurrencyConfig")
        async with self.versions.lock(name):
            if qualifier in self.api.existing(name).provisioned:  # else nothing to do, as on AWS
                await self.versions.versions.put_provisioned(name, qualifier, None)
                self.api.service.set_provisioned(name, qualifier, 0)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def list_configs(self, request: Request) -> Response:
        checked("ListProvisionedConcurrencyConfigs", request)
        name, _ = resolve(request.params["function"], None, "ListProvisionedConcurrencyConfigs")
        state = self.api.existing(name)
        configs = [self.config(name, q, with_arn=True) for q in sorted(state.provisioned)]
        return json_response(200, {"ProvisionedConcurrencyConfigs": configs})

    def config(self, name: str, qualifier: str, with_arn: bool) -> dict[str, Any]:
        """A version's or an alias's provisioned setting and how much of it is ready."""
        found = self.api.service.provisioned_status(name, qualifier)
        if found is None:
            raise ProvisionedConfigNotFound(NONE_FOUND)
        status = "READY" if found.ready >= found.requested else "IN_PROGRESS"
        if status != "READY" and found.failure is not None:
            status = "FAILED"
        body: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": found.requested,
            "AvailableProvisionedConcurrentExecutions": found.ready,
            "AllocatedProvisionedConcurrentExecutions": found.ready,
            "Status": status,
            "LastModified": timestamp(found.modified),
        }
        if status == "FAILED":
            body["StatusReason"] = f"FUNCTION_ERROR_INIT_FAILURE: {found.failure}"
        if with_arn:
            body = {"FunctionArn": function_arn(name, qualifier), **body}
        return body

    # Helpers

    def _qualifier(self, request: Request) -> str | None:
        """The qualifier as given (in the name or the query), before anything is looked up."""
        _, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), "GetFunction"
        )
        return qualifier

    def _target(self, request: Request, operation: str) -> tuple[str, str]:
        """The function and the version or alias a request names; AWS's "not found" for each
        (an alias of a function that does not exist is a missing alias too)."""
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), operation
        )
        if qualifier is None:  # the model requires it: validation has refused this already
            raise InvalidParameterValue("Qualifier is required")
        kept = self.versions.versions.of(name)
        exists = name in self.api.service.functions
        if qualifier.isdigit():
            if not exists or int(qualifier) not in kept.versions:
                raise not_found(name, qualifier)
        elif not exists or qualifier not in kept.aliases:
            raise ResourceNotFound(f"Cannot find alias arn: {function_arn(name, qualifier)}")
        return name, qualifier

    def _check_conflicts(self, name: str, qualifier: str) -> None:
        """A version is provisioned through itself or through aliases, never both."""
        kept = self.versions.versions.of(name)
        settings = self.api.existing(name).provisioned
        alias = kept.aliases.get(qualifier)
        if alias is not None:
            if alias.version in settings:
                raise ResourceConflict(
                    "Alias can't be used for Provisioned Concurrency configuration on an already "
                    "Provisioned version"
                )
        elif any(a.version == qualifier and a.name in settings for a in kept.aliases.values()):
            raise ResourceConflict("Version is pointed by a Provisioned Concurrency alias")
