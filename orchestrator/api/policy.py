"""AddPermission, RemovePermission and GetPolicy: a function's resource-based policy, kept and
shown as Lambda shows it (a JSON document in a string, statements in the order added).

The policy is stored, not yet enforced: lrun checks who may invoke once requests are signed by
callers of their own (issue 10 leaves enforcement to that work).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from orchestrator.api.function_names import LATEST, not_found, resolve
from orchestrator.api.lambda_api import (
    LambdaApi,
    checked,
    json_body,
    json_response,
    revision_id,
)
from orchestrator.aws import function_arn
from orchestrator.errors import (
    InvalidParameterValue,
    PolicyLengthExceeded,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.http_server import Request, Response

STALE_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to "
    "retrieve the latest Revision Id"
)
_NO_RESOURCE = "The resource you requested does not exist."
MAX_POLICY_BYTES = 20480  # a function's resource-based policy, as on Lambda
_ACCOUNT = re.compile(r"\d{12}")
_SERVICE = re.compile(r"[a-z0-9.-]+\.(amazonaws\.com|amazon\.com|aws\.internal)")


def principal(value: str) -> str | dict[str, str]:
    """A statement's Principal as AWS writes it for AddPermission's ``Principal``."""
    if value == "*":
        return "*"
    if _ACCOUNT.fullmatch(value):
        return {"AWS": f"arn:aws:iam::{value}:root"}
    if value.startswith("arn:aws"):
        return {"AWS": value}
    if _SERVICE.fullmatch(value):
        return {"Service": value}
    raise InvalidParameterValue(
        "The provided principal was invalid. Please check the principal and try again."
    )


def statement(body: Mapping[str, Any], resource: str) -> dict[str, Any]:
    """The policy statement AddPermission's request makes, keys in AWS's order."""
    made: dict[str, Any] = {
        "Sid": body["StatementId"],
        "Effect": "Allow",
        "Principal": principal(body["Principal"]),
        "Action": body["Action"],
        "Resource": resource,
    }
    equals: dict[str, str] = {}
    if "SourceAccount" in body:
        equals["AWS:SourceAccount"] = body["SourceAccount"]
    if "FunctionUrlAuthType" in body:
        equals["lambda:FunctionUrlAuthType"] = body["FunctionUrlAuthType"]
    if "PrincipalOrgID" in body:
        equals["aws:PrincipalOrgID"] = body["PrincipalOrgID"]
    if "EventSourceToken" in body:
        equals["lambda:EventSourceToken"] = body["EventSourceToken"]
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if "SourceArn" in body:
        condition["ArnLike"] = {"AWS:SourceArn": body["SourceArn"]}
    if body.get("InvokedViaFunctionUrl") is True:
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        made["Condition"] = condition
    return made


def document(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Policies:
    def __init__(self, api: LambdaApi, meta: FunctionMeta) -> None:
        self.api = api
        self.meta = meta

    def _target(self, request: Request, operation: str) -> tuple[str, str | None]:
        """The function and the version or alias a request names (None: the function itself,
        which ``$LATEST`` names too)."""
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), operation
        )
        return name, None if qualifier == LATEST else qualifier

    def _no_such_qualifier(self, name: str, qualifier: str) -> ResourceNotFound:
        """A version or alias of ``name`` that does not exist."""
        if qualifier.isdigit():
            return not_found(name, qualifier)
        return ResourceNotFound(f"Cannot find alias arn: {function_arn(name, qualifier)}")

    def _exists(self, name: str, qualifier: str | None) -> bool:
        state = self.api.service.functions.get(name)
        if state is None:
            return False
        return qualifier is None or qualifier in state.published or qualifier in state.aliases

    def _revision(self, name: str, qualifier: str | None) -> str:
        """The RevisionId a policy shows and a change checks: the function's, or the version's
        or alias's own (each has its policy)."""
        if qualifier is None:
            return self.api.revision(name)
        kept = self.api.versions.of(name) if self.api.versions is not None else None
        seed = qualifier
        if kept is not None and qualifier.isdigit() and int(qualifier) in kept.versions:
            seed = str(kept.versions[int(qualifier)].config.get("RevisionId", qualifier))
        elif kept is not None and qualifier in kept.aliases:
            seed = kept.aliases[qualifier].revision_id
        return revision_id(seed, self.meta.stamp(policy_key(name, qualifier)))

    async def add(self, request: Request) -> Response:
        body = json_body(request)
        checked("AddPermission", request, body)
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), "AddPermission"
        )
        if qualifier == LATEST:
            raise InvalidParameterValue("We currently do not support adding policies for $LATEST.")
        self.api.existing(name)
        if not self._exists(name, qualifier):
            assert qualifier is not None
            raise self._no_such_qualifier(name, qualifier)
        key = policy_key(name, qualifier)
        made = statement(body, function_arn(name, qualifier))
        revision = body.get("RevisionId")
        if revision is not None and revision != self._revision(name, qualifier):
            raise PreconditionFailed(STALE_REVISION)
        statements = self.meta.get(key).statements
        if any(s["Sid"] == made["Sid"] for s in statements):
            raise ResourceConflict(
                f"The statement id ({made['Sid']}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement."
            )
        size = len(compact(document((*statements, made))))
        if size > MAX_POLICY_BYTES:
            raise PolicyLengthExceeded(
                f"The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES})."
            )
        await self.meta.change(key, lambda meta: replace(meta, statements=(*meta.statements, made)))
        return json_response(201, {"Statement": compact(made)})

    async def get(self, request: Request) -> Response:
        checked("GetPolicy", request)
        name, qualifier = self._target(request, "GetPolicy")
        statements = self.meta.get(policy_key(name, qualifier)).statements
        if not self._exists(name, qualifier) or not statements:
            raise ResourceNotFound(_NO_RESOURCE)
        return json_response(
            200,
            {
                "Policy": compact(document(statements)),
                "RevisionId": self._revision(name, qualifier),
            },
        )

    async def remove(self, request: Request) -> Response:
        given = checked("RemovePermission", request)
        name, qualifier = self._target(request, "RemovePermission")
        if name not in self.api.service.functions:
            raise ResourceNotFound(f"No policy found for: {function_arn(name, qualifier)}")
        if not self._exists(name, qualifier):
            assert qualifier is not None
            raise self._no_such_qualifier(name, qualifier)
        key = policy_key(name, qualifier)
        statements = self.meta.get(key).statements
        if not statements:
            raise ResourceNotFound("No policy is associated with the given resource.")
        revision = given.get("RevisionId")
        if revision is not None and revision != self._revision(name, qualifier):
            raise PreconditionFailed(STALE_REVISION)
        sid = request.params["StatementId"]
        kept = tuple(s for s in statements if s["Sid"] != sid)
        if len(kept) == len(statements):
            raise ResourceNotFound(f"Statement {sid} is not found in resource policy.")
        await self.meta.change(key, lambda meta: replace(meta, statements=kept))
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})


def policy_key(name: str, qualifier: str | None) -> str:
    """What a policy is kept under: the function's name, or ``name:qualifier`` for a version's
    or an alias's own."""
    return name if qualifier is None else f"{name}:{qualifier}"


def add_policy_routes(api: LambdaApi, meta: FunctionMeta) -> Policies:
    policies = Policies(api, meta)
    policy = "/2015-03-31/functions/{function}/policy"
    api.router.add("POST", policy, policies.add)
    api.router.add("GET", policy, policies.get)
    api.router.add("DELETE", f"{policy}/{{StatementId}}", policies.remove)
    return policies
