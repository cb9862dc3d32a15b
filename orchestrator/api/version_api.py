"""PublishVersion, ListVersionsByFunction and the versions side of DeleteFunction, GetFunction and
GetFunctionConfiguration: immutable snapshots of a function's code and configuration, kept in the
store (``events.versions``) and served each in environments of its own.

What a version runs never changes. An API-created function's code is a directory lrun unpacked
and never edits, so its versions share it; a manifest function's code is the user's to edit, so
publishing one copies its code (and layers from outside lrun's state) under the state directory
first (``snapshots``). Publishing what is already the latest version (same code and
configuration as when it was published) answers that version again, as Lambda does.

Manifest functions may be published: a version does not change the function, which stays the
manifest's. lrun publishes versions of its own for the manifest's ``provisioned_concurrency``
(``manifest_versions``); those are ``managed`` and deleted by lrun when superseded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.api.access import CODE_PATH
from orchestrator.api.function_names import LATEST, not_found, resolve, unqualified
from orchestrator.api.lambda_api import (
    LambdaApi,
    View,
    checked,
    json_body,
    json_response,
    timestamp,
)
from orchestrator.api.snapshots import copy_version, remove_version_copy
from orchestrator.aws import function_arn
from orchestrator.errors import (
    CodeStorageExceeded,
    InvalidParameterValue,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)
from orchestrator.events.function_meta import Meta
from orchestrator.events.versions import Version, Versions
from orchestrator.http_server import Request, Response
from orchestrator.served import Alias
from orchestrator.service import Service

MAX_VERSIONS = 1000  # published versions one server keeps, all functions together
PAGE_DEFAULT = 50
STALE_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/"
    "GetAlias API to retrieve the latest Revision Id"
)
# Members of a configuration that list operations leave out, as AWS's lists do.
_NOT_LISTED = (
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode",
    "RuntimeVersionConfig",
)


def listed(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as ListFunctions and ListVersionsByFunction show it."""
    return {k: v for k, v in config.items() if k not in _NOT_LISTED}


class VersionApi:
    def __init__(
        self,
        api: LambdaApi,
        versions: Versions,
        code_root: Path,
        busy: Callable[[str], bool] = lambda name: False,
        on_event: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.api = api
        self.versions = versions
        self.code_root = code_root  # API-created functions' code (functions/<token>)
        self.copies = versions.root / "versions"  # manifest functions' versions' code
        self._busy = busy
        self._on_event = on_event
        self._locks: dict[str, asyncio.Lock] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        # Hands an API-created function's code directory back once no version uses it (set by
        # FunctionApi, which owns those directories and removes them when nothing uses them).
        self.release_code: Callable[[str, int], None] = lambda token, timeout: None
        api.versions = versions
        api.qualified = self.view

    @property
    def service(self) -> Service:
        return self.api.service

    def add_routes(self) -> None:
        path = "/2015-03-31/functions/{function}/versions"
        self.api.router.add("POST", path, self.publish)
        self.api.router.add("GET", path, self.list_versions)

    def lock(self, name: str) -> asyncio.Lock:
        """Held while a function's versions or aliases change, so numbers and checks hold."""
        return self._locks.setdefault(name, asyncio.Lock())

    # Start-up, and functions coming and going

    async def restore(self) -> None:
        """Serve the stored versions, aliases and provisioned settings (loaded already) of
        every function that exists; remove version copies no version names (left by a crash)."""
        self.sync()
        kept = self.versions.tokens()
        await asyncio.to_thread(_sweep, self.copies, kept)

    def sync(self) -> None:
        """Serve what is stored for every function that exists now (after a manifest load or a
        restart): versions first, then aliases, then provisioned settings."""
        for name, kept in self.versions.functions.items():
            state = self.service.functions.get(name)
            if state is None:
                continue  # a function the manifest does not declare now: kept, not served
            for number, version in kept.versions.items():
                if str(number) not in state.published:
                    self.service.put_version(name, str(number), version.spec, version.revision)
            for alias in kept.aliases.values():
                target = Alias(alias.version, alias.weights)
                if state.aliases.get(alias.name) != target:
                    self.service.put_alias(name, alias.name, target)
            for qualifier, setting in kept.provisioned.items():
                if state.provisioned.get(qualifier) != setting:
                    self.service.set_provisioned(name, qualifier, setting.requested)
                    state.provisioned[qualifier] = setting

    async def drop(self, name: str) -> None:
        """A function is deleted (or created anew): its versions and aliases go with it."""
        kept = self.versions.functions.get(name)
        if kept is None:
            return
        tokens = {v.snapshot for v in kept.versions.values() if v.snapshot is not None}
        codes = {v.code_token for v in kept.versions.values() if v.code_token is not None}
        for qualifier in [*map(str, kept.versions), *kept.aliases]:
            await self.forget(name, qualifier)
        await self.versions.drop(name)
        state = self.service.functions.get(name)
        if state is not None:
            for alias in list(state.aliases):
                self.service.remove_alias(name, alias)
            for number in list(state.published):
                self.service.remove_version(name, number)
        timeout = max((v.spec.timeout for v in kept.versions.values()), default=3)
        for token in tokens:
            self.remove_copy_later(token, timeout)
        for token in codes:
            self.release_code(token, timeout)

    # PublishVersion

    async def publish(self, request: Request) -> Response:
        body = json_body(request)
        checked("PublishVersion", request, body)
        name = unqualified(request.params["function"], "PublishVersion")
        self.api.existing(name, LATEST)
        if body.get("PublishTo") is not None:
            raise InvalidParameterValue(
                "PublishTo LATEST_PUBLISHED is for functions with a capacity provider, which lrun "
                "does not run: publish without it"
            )
        await self.service.edits_seen(name)  # a save just made is in the version
        async with self.lock(name):
            self.api.existing(name, LATEST)  # deleted meanwhile
            revision = body.get("RevisionId")
            if revision is not None and revision != self.api.revision(name):
                raise PreconditionFailed(STALE_REVISION)
            sha = body.get("CodeSha256")
            if sha is not None:
                current = (await self.api.configuration_of(name))["CodeSha256"]
                if sha != current:
                    raise InvalidParameterValue(
                        f"CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST "
                        f"({current}). Please try again with the CodeSHA256 in $LATEST."
                    )
            version = await self.publish_latest(name, body.get("Description"))
        return json_response(201, dict(version.config))

    async def publish_latest(
        self, name: str, description: str | None = None, managed: bool = False
    ) -> Version:
        """Publish ``$LATEST`` as it is now (call it holding ``lock(name)``): the latest version
        again if nothing changed since it was published, else a new one."""
        if self._busy(name):
            raise ResourceConflict(
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: {function_arn(name)}"
            )
        state = self.api.existing(name, LATEST)
        record = self.api.api_record(name)
        seed = record.revision if record is not None else state.revision
        kept = self.versions.of(name)
        previous = kept.versions.get(kept.last)
        if previous is not None and previous.seed == seed:
            return previous
        if self.versions.count() >= MAX_VERSIONS:
            raise CodeStorageExceeded(
                f"Code storage limit exceeded: lrun serve keeps at most {MAX_VERSIONS} published "
                "versions; delete some first (aws lambda delete-function --qualifier N)"
            )
        config = await self.api.configuration_of(name)
        number = kept.last + 1
        spec, snapshot = state.spec, None
        if record is None and (spec.code is not None or spec.layers):
            snapshot = secrets.token_hex(16)
            code, layers = await asyncio.to_thread(
                copy_version, self.copies, snapshot, spec.code, spec.layers, self.versions.root
            )
            spec = dataclasses.replace(spec, code=code, layers=layers)
        if spec.image is not None:
            spec = dataclasses.replace(spec, image=await self._pinned(spec.image))
        now = time.time()
        config.update(
            FunctionArn=function_arn(name, str(number)),
            Version=str(number),
            RevisionId=str(uuid.uuid4()),
            LastModified=timestamp(now),
            State="Active",
            LastUpdateStatus="Successful",
        )
        if description is not None:
            config["Description"] = description
        version = Version(
            name,
            number,
            spec,
            f"v{number}-{spec.config_digest()}",
            seed,
            config,
            record.code_token if record is not None else None,
            snapshot,
            managed,
        )
        try:
            await self.versions.add(version)
        except BaseException:
            if snapshot is not None:
                await asyncio.to_thread(remove_version_copy, self.copies, snapshot)
            raise
        self.service.put_version(name, version.name, spec, version.revision)
        self._on_event(f"{name}: published version {number}")
        return version

    async def _pinned(self, image: str) -> str:
        """The image's id, so a tag moved later does not change the version."""
        return await self.service.image_id(image) or image

    # ListVersionsByFunction

    async def list_versions(self, request: Request) -> Response:
        given = checked("ListVersionsByFunction", request)
        name, _ = resolve(request.params["function"], None, "ListVersionsByFunction")
        self.api.existing(name)
        latest = await self.api.configuration_of(name)
        latest["FunctionArn"] = function_arn(name, LATEST)  # listed versions are qualified
        entries = [(LATEST, latest)] + [
            (str(n), dict(v.config)) for n, v in sorted(self.versions.of(name).versions.items())
        ]
        keys = [key for key, _ in entries]
        marker = request.query.get("Marker")
        if marker and marker not in keys:
            raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
        start = keys.index(marker) if marker else 0
        size = min(given.get("MaxItems") or PAGE_DEFAULT, PAGE_DEFAULT)
        page: dict[str, Any] = {
            "Versions": [listed(config) for _, config in entries[start : start + size]]
        }
        if start + size < len(entries):
            page["NextMarker"] = keys[start + size]
        return json_response(200, page)

    # Reads and deletes of one version

    async def view(self, name: str, qualifier: str, host: str) -> View | None:
        """A version's or an alias's configuration and code, as GetFunction shows them; None
        for an alias of ``$LATEST``, which is shown as ``$LATEST`` is."""
        kept = self.versions.of(name)
        version = _version(kept.versions, qualifier)
        arn = function_arn(name, qualifier)
        if version is None:
            alias = kept.aliases.get(qualifier)
            if alias is None:
                raise not_found(name, qualifier)
            if alias.version == LATEST:
                return None
            version = _version(kept.versions, alias.version)
            if version is None:
                raise not_found(name, qualifier)
        config = {**version.config, "FunctionArn": arn}
        if version.code_token is not None:
            code = {
                "RepositoryType": "S3",
                "Location": f"http://{host}{CODE_PATH}{version.code_token}",
            }
        elif version.config.get("PackageType") == "Image":
            code = {"RepositoryType": "ECR", "ImageUri": self._image_uri(version)}
        else:
            code = {"RepositoryType": "S3", "Location": f"file://{version.spec.code}"}
        return config, code

    def _image_uri(self, version: Version) -> str:
        record = self.api.api_record(version.function)
        manifest = self.service.manifest
        if record is not None and record.image_uri:
            return record.image_uri
        if manifest is not None and version.function in manifest.functions:
            return manifest.functions[version.function].image or ""
        return version.spec.image or ""

    async def delete_version(self, name: str, qualifier: str) -> None:
        """DeleteFunction with a qualifier: that version only (an absent one is no error, as on
        Lambda); one an alias points to is refused."""
        if not qualifier.isdigit():
            raise InvalidParameterValue("Deletion of aliases is not currently supported.")
        async with self.lock(name):
            kept = self.versions.of(name)
            version = kept.versions.get(int(qualifier))
            if version is None:
                return
            users = sorted(
                a.name for a in kept.aliases.values() if qualifier in (a.version, *dict(a.weights))
            )
            if users:
                raise ResourceConflict(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(users)}]"
                )
            await self.versions.remove(name, version.number)
            await self.forget(name, qualifier)
            if name in self.service.functions:
                self.service.remove_version(name, qualifier)
            if version.snapshot is not None:
                self.remove_copy_later(version.snapshot, version.spec.timeout)
            if version.code_token is not None:
                self.release_code(version.code_token, version.spec.timeout)

    async def forget(self, name: str, qualifier: str) -> None:
        """A version or an alias is gone: its own policy and event-invoke config go with it."""
        key = f"{name}:{qualifier}"
        if self.api.meta is not None and self.api.meta.get(key) != Meta():
            await self.api.meta.change(key, lambda meta: Meta())
        if self.api.configs is not None and self.api.configs.get(key) is not None:
            await self.api.configs.delete(key)

    def remove_copy_later(self, token: str, timeout: int) -> None:
        """Remove a version's copy once the invocations that may still run it are over."""

        async def remove() -> None:
            await asyncio.sleep(timeout + 5)
            if token not in self.versions.tokens():
                await asyncio.to_thread(remove_version_copy, self.copies, token)

        task = asyncio.ensure_future(remove())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)


def _version(versions: dict[int, Version], qualifier: str) -> Version | None:
    return versions.get(int(qualifier)) if qualifier.isdigit() else None


def _sweep(root: Path, kept: set[str]) -> None:
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name not in kept and entry.is_dir() and not entry.is_symlink():
            remove_version_copy(root, entry.name)


def alias_not_found(name: str, alias: str) -> ResourceNotFound:
    return ResourceNotFound(f"Cannot find alias arn: {function_arn(name, alias)}")
