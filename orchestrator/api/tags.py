"""TagResource, UntagResource and ListTags, by resource ARN, as Lambda answers them.

Functions are tagged by their unqualified ARN (AWS refuses versions and aliases); other kinds of
Lambda resource (event source mappings, ...) can be added by whoever owns them: ``kinds`` maps a
kind to a check that the resource exists, and their tags are kept under their full ARN.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace

from orchestrator.api.function_names import resolve
from orchestrator.api.lambda_api import LambdaApi, checked, json_body, json_response
from orchestrator.api.validation import request_list
from orchestrator.errors import InvalidParameterValue, ResourceNotFound
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.http_server import Request, Response

MAX_TAGS = 50  # per resource, as on AWS
_ARN = re.compile(r"arn:[^:]*:lambda:[^:]*:\d{12}:(?P<kind>[a-z-]+):(?P<rest>.+)")
# What AWS says of a resource of each kind that does not exist.
_MISSING = {
    "event-source-mapping": "Event source mapping not found: {}",
    "capacity-provider": "Capacity provider not found: {}",
    "network-connector": "Network connector not found: {}",
    "code-signing-config": "The Lambda code signing configuration {} can not be found.",
}
Exists = Callable[[str], bool]


class Tags:
    def __init__(self, api: LambdaApi, meta: FunctionMeta, kinds: Mapping[str, Exists]) -> None:
        self.api = api
        self.meta = meta
        self.kinds = dict(kinds)

    def _key(self, arn: str, operation: str) -> str:
        """The key a resource's tags are kept under; AWS's error if it names nothing here."""
        found = _ARN.fullmatch(arn)
        if found is not None and found["kind"] == "function":
            name, qualifier = resolve(arn, None, operation)
            if qualifier is not None:
                raise InvalidParameterValue(
                    "Tags on function aliases and versions are not supported. Please specify a "
                    "function ARN."
                )
            self.api.existing(name)
            return name
        kind = found["kind"] if found is not None else ""
        exists = self.kinds.get(kind)
        if exists is None or not exists(arn):
            missing = _MISSING.get(kind, "The resource you requested does not exist.")
            raise ResourceNotFound(missing.format(arn))
        return arn

    async def tag(self, request: Request) -> Response:
        body = json_body(request)
        checked("TagResource", request, body)
        key = self._key(request.params["Resource"], "TagResource")
        tags = body["Tags"]
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise InvalidParameterValue("Tags must be an object of string keys and values.")
        if not tags:
            raise InvalidParameterValue("An error occurred and the request cannot be processed.")
        if len({**self.api.tags_of(key), **tags}) > MAX_TAGS:
            raise InvalidParameterValue("Number of tags exceeds resource tag limit.")
        await self.meta.change(
            key,
            lambda meta: replace(
                meta, tags={**meta.tags, **tags}, untagged=meta.untagged - set(tags)
            ),
        )
        return _no_content()

    async def untag(self, request: Request) -> Response:
        given = checked("UntagResource", request)
        key = self._key(request.params["Resource"], "UntagResource")
        gone = set(given.get("TagKeys") or request_list(request, "tagKeys"))
        manifest = self.api.service.manifest
        declared = set(manifest.tags.get(key, {})) if manifest is not None else set()
        await self.meta.change(
            key,
            lambda meta: replace(
                meta,
                tags={k: v for k, v in meta.tags.items() if k not in gone},
                untagged=meta.untagged | (gone & declared),
            ),
        )
        return _no_content()

    async def list(self, request: Request) -> Response:
        checked("ListTags", request)
        key = self._key(request.params["Resource"], "ListTags")
        return json_response(200, {"Tags": self.api.tags_of(key)})


def _no_content() -> Response:
    return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})


def add_tag_routes(
    api: LambdaApi, meta: FunctionMeta, kinds: Mapping[str, Exists] | None = None
) -> Tags:
    tags = Tags(api, meta, kinds or {})
    path = "/2017-03-31/tags/{Resource}"
    api.router.add("POST", path, tags.tag)
    api.router.add("DELETE", path, tags.untag)
    api.router.add("GET", path, tags.list)
    return tags
