"""Function URLs: Create/Get/Update/Delete/ListFunctionUrlConfigs, the manifest's ``url:``, and
one listener per URL.

Each function URL is served on a port of its own (``http://127.0.0.1:PORT/``), not behind one
listener routing by ``Host`` as Lambda's ``<id>.lambda-url.<region>.on.aws`` do: a port works
with every HTTP client as it is, where a per-URL host name needs DNS (``*.localhost`` resolves in
browsers and curl, but not through the C library most clients use). The port is kept with the
configuration, so a URL stays the same across restarts as Lambda's do. A URL the manifest
declares belongs to it: changing it through the API is ``ResourceConflictException`` naming the
manifest; the API's are kept in lrun's store.

Errors as AWS words them (LocalStack's snapshots recorded on AWS, test_lambda_api.py
``TestLambdaUrl``): a missing function is "Function does not exist" for Create, Update and List,
"The resource you requested does not exist." for Get and Delete and for a missing configuration;
a second Create is ``ResourceConflictException``; a qualifier must be an alias (the model's
pattern refuses versions and ``$LATEST``).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.api import validation
from orchestrator.api.lambda_api import LambdaApi, checked, json_body, json_response, resolve
from orchestrator.api.url_listener import ServedUrl, UrlAccess, UrlListener
from orchestrator.aws import function_arn
from orchestrator.errors import InvalidParameterValue, LrunError, ResourceConflict, ResourceNotFound
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.url_store import UrlRecord, UrlStore
from orchestrator.http_server import Limits, Request, Response, Server, serve
from orchestrator.manifest import Manifest
from orchestrator.manifest.apis import CorsSpec
from orchestrator.manifest.urls import UrlSpec
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD
from orchestrator.sandbox.response_stream import STREAM_LIMIT

PATH = "/2021-10-31/functions/{function}/url"
LIST_PATH = "/2021-10-31/functions/{function}/urls"
# A URL's clients: Lambda's 6 MB request; a request holds its connection while its function
# runs, so connections are capped as the Lambda API's are.
URL_LIMITS = Limits(max_body=MAX_SYNC_PAYLOAD, max_connections=1024)
MAX_URLS = 1000  # listeners one server keeps (each is a listening socket)
NO_FUNCTION = "Function does not exist"
NO_RESOURCE = "The resource you requested does not exist."
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_CORS_MEMBERS = (
    ("AllowCredentials", "allow_credentials"),
    ("AllowHeaders", "allow_headers"),
    ("AllowMethods", "allow_methods"),
    ("AllowOrigins", "allow_origins"),
    ("ExposeHeaders", "expose_headers"),
    ("MaxAge", "max_age"),
)


def url_id(function: str, qualifier: str | None) -> str:
    """A URL's 32-character id, as Lambda's, stable for its function and alias."""
    digest = hashlib.sha256(f"{function}:{qualifier or ''}".encode()).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cors_of(given: Mapping[str, Any] | None) -> CorsSpec | None:
    """Lambda's ``Cors`` structure as the listener applies it."""
    if given is None:
        return None
    return CorsSpec(
        tuple(given.get("AllowOrigins") or ()),
        tuple(given.get("AllowMethods") or ()),
        tuple(given.get("AllowHeaders") or ()),
        tuple(given.get("ExposeHeaders") or ()),
        given.get("MaxAge"),
        bool(given.get("AllowCredentials", False)),
    )


def api_cors(spec: CorsSpec | None) -> dict[str, Any] | None:
    """The manifest's ``cors:`` as Lambda's ``Cors`` structure (the settings it gives)."""
    if spec is None:
        return None
    found: dict[str, Any] = {}
    for member, attribute in _CORS_MEMBERS:
        value = getattr(spec, attribute)
        if value not in (None, (), False):
            found[member] = list(value) if isinstance(value, tuple) else value
    return found


def policy_allows(meta: FunctionMeta, function: str) -> bool:
    """Whether the function's resource-based policy lets anyone call its URL (AuthType NONE):
    a statement allowing ``lambda:InvokeFunctionUrl`` to ``*`` (AddPermission's
    ``--function-url-auth-type NONE``), as Lambda requires."""
    for statement in meta.get(function).statements:
        action = statement.get("Action")
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if (
            statement.get("Effect") == "Allow"
            and statement.get("Principal") in ("*", {"AWS": "*"})
            and action in ("lambda:InvokeFunctionUrl", "lambda:*")
            and condition.get("lambda:FunctionUrlAuthType", "NONE") == "NONE"
        ):
            return True
    return False


@dataclass
class _Running:
    listener: UrlListener
    server: Server


class FunctionUrls:
    """Every function URL of one server: their configurations, listeners and API routes."""

    def __init__(
        self,
        api: LambdaApi,
        store: UrlStore,
        host: str,
        access: UrlAccess,
        url_of: Callable[[int], str],
        on_event: Callable[[str], None],
        stream_limit: int = STREAM_LIMIT,
        max_urls: int = MAX_URLS,
    ) -> None:
        self._api = api
        self._store = store
        self._host = host
        self._access = access
        self._url_of = url_of  # a port -> the base URL clients reach it at
        self._on_event = on_event
        self._stream_limit = stream_limit
        self._max_urls = max_urls
        self._running: dict[tuple[str, str], _Running] = {}
        self._lock = asyncio.Lock()  # one change at a time: ports are bound in between

    def add_routes(self) -> None:
        add = self._api.router.add
        add("POST", PATH, self.create)
        add("GET", PATH, self.get)
        add("PUT", PATH, self.update)
        add("DELETE", PATH, self.delete)
        add("GET", LIST_PATH, self.list)

    # Serving

    async def load(self, manifest: Manifest) -> None:
        """Serve the manifest's URLs (those it no longer declares stop); ``LrunError`` if one
        cannot have its port."""
        async with self._lock:
            declared = {(name, ""): spec for name, spec in manifest.urls.items()}
            for key, record in list(self._store.records.items()):
                if record.from_manifest and key not in declared:
                    await self._stop(key)
                    await self._store.delete(key)
            for (name, _), spec in declared.items():
                await self._declare(name, spec)

    async def restore(self) -> None:
        """Serve the URLs made through the API (at start, once their functions are back)."""
        async with self._lock:
            for key, record in list(self._store.records.items()):
                if not record.from_manifest and key not in self._running:
                    try:
                        await self._store.put(await self._serve(record))
                    except LrunError as exc:
                        self._on_event(f"function URL of {record.function} not served: {exc}")

    async def _declare(self, name: str, spec: UrlSpec) -> None:
        key = (name, "")
        old = self._store.records.get(key)
        now = _now()
        record = UrlRecord(
            name,
            None,
            spec.auth,
            spec.port or (old.port if old is not None and old.from_manifest else 0),
            old.created if old is not None else now,
            now,
            api_cors(spec.cors),
            spec.invoke_mode,
            from_manifest=True,
        )
        running = self._running.get(key)
        if running is not None and (spec.port in (None, running.server.port)):
            record = replace(record, port=running.server.port)
            if old is not None and _same(old, record):
                return
            running.listener.served = self._served(record)
        else:
            await self._stop(key)
            record = await self._serve(record, pinned=spec.port is not None)
            self._on_event(self.announcement(key))
        await self._store.put(record)

    async def _serve(self, record: UrlRecord, pinned: bool = False) -> UrlRecord:
        """Start the record's listener, on its port if it has one (else, or if that is taken and
        not ``pinned``, a free one); the record with the port it got."""
        if len(self._running) >= self._max_urls:
            raise InvalidParameterValue(
                f"lrun serves at most {self._max_urls} function URLs at once; delete one first"
            )
        listener = UrlListener(
            self._served(record),
            self._api.service,
            self._access,
            self._on_event,
            self._stream_limit,
        )
        try:
            server = await serve(listener, self._host, record.port, URL_LIMITS)
        except OSError as exc:
            if record.port and not pinned:
                server = await serve(listener, self._host, 0, URL_LIMITS)
            else:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                raise LrunError(
                    f"the function URL of {record.function!r} cannot listen on "
                    f"{self._host}:{record.port}: {why}; give it another port "
                    f"(functions.{record.function}.url.port), or none for any free one"
                ) from exc
        listener.port = server.port
        self._running[record.key] = _Running(listener, server)
        return replace(record, port=server.port)

    def _served(self, record: UrlRecord) -> ServedUrl:
        return ServedUrl(
            record.function,
            record.qualifier,
            record.auth_type,
            record.mode,
            cors_of(record.cors),
            url_id(record.function, record.qualifier),
            needs_policy=not record.from_manifest,
        )

    async def _stop(self, key: tuple[str, str]) -> None:
        running = self._running.pop(key, None)
        if running is not None:
            await running.server.close()

    async def close(self) -> None:
        await asyncio.gather(*(r.server.close() for r in self._running.values()))
        self._running = {}

    async def stop_listening(self) -> None:
        for running in self._running.values():
            await running.server.stop_listening()

    def url(self, record: UrlRecord) -> str:
        return self._url_of(record.port) + "/"

    def announcement(self, key: tuple[str, str]) -> str:
        record = self._store.records.get(key) or self._record_of(key)
        what = record.function + (f":{record.qualifier}" if record.qualifier else "")
        return f"function URL of {what} ({record.auth_type}, {record.mode}): {self.url(record)}"

    def _record_of(self, key: tuple[str, str]) -> UrlRecord:
        running = self._running[key]
        served = running.listener.served
        now = _now()
        return UrlRecord(
            served.function,
            served.qualifier,
            served.auth_type,
            running.server.port,
            now,
            now,
            invoke_mode=served.invoke_mode,
        )

    def describe(self) -> list[dict[str, Any]]:
        """Each URL, as `lrun ps` shows it."""
        rows = []
        for key in sorted(self._running):
            record = self._store.records.get(key) or self._record_of(key)
            rows.append(
                {
                    "function": record.function,
                    "qualifier": record.qualifier,
                    "url": self.url(record),
                    "auth_type": record.auth_type,
                    "invoke_mode": record.mode,
                    "source": "manifest" if record.from_manifest else "api",
                }
            )
        return rows

    # The API

    def _target(self, request: Request, operation: str, missing: str) -> tuple[str, str | None]:
        name, qualifier = resolve(
            request.params["function"], request.query.get("Qualifier"), operation
        )
        if qualifier is not None:  # one the name carried, checked as the parameter is
            validation.check(operation, {"Qualifier": qualifier}, frozenset({"Qualifier"}))
        state = self._api.service.functions.get(name)
        if state is None or (qualifier is not None and qualifier not in state.aliases):
            raise ResourceNotFound(missing)
        return name, qualifier

    def _members(self, record: UrlRecord, full: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "FunctionUrl": self.url(record),
            "FunctionArn": function_arn(record.function, record.qualifier),
            "AuthType": record.auth_type,
        }
        if record.cors is not None:
            body["Cors"] = dict(record.cors)
        body["CreationTime"] = record.created
        if full:
            body["LastModifiedTime"] = record.modified
        return body

    def _existing(self, name: str, qualifier: str | None) -> UrlRecord:
        record = self._store.records.get((name, qualifier or ""))
        if record is None or record.key not in self._running:
            raise ResourceNotFound(NO_RESOURCE)
        return record

    def _not_the_manifests(self, record: UrlRecord) -> None:
        if record.from_manifest:
            manifest = self._api.service.manifest
            where = manifest.path if manifest is not None else "the manifest"
            raise ResourceConflict(
                f"The function URL of {record.function} is declared in {where} "
                f"(functions.{record.function}.url): change it there"
            )

    async def create(self, request: Request) -> Response:
        body = json_body(request)
        checked("CreateFunctionUrlConfig", request, body)
        name, qualifier = self._target(request, "CreateFunctionUrlConfig", NO_FUNCTION)
        async with self._lock:
            if (name, qualifier or "") in self._store.records:
                raise ResourceConflict(
                    "Failed to create function url config for [functionArn = "
                    f"{function_arn(name, qualifier)}]. Error message:  FunctionUrlConfig exists "
                    "for this Lambda function"
                )
            now = _now()
            record = UrlRecord(
                name,
                qualifier,
                body["AuthType"],
                0,
                now,
                now,
                body.get("Cors"),
                body.get("InvokeMode"),
            )
            record = await self._serve(record)
            try:
                await self._store.put(record)
            except BaseException:
                await self._stop(record.key)
                raise
        self._on_event(self.announcement(record.key))
        answer = self._members(record, full=False)
        if record.invoke_mode is not None:
            answer["InvokeMode"] = record.invoke_mode
        return json_response(201, answer)

    async def get(self, request: Request) -> Response:
        checked("GetFunctionUrlConfig", request)
        name, qualifier = self._target(request, "GetFunctionUrlConfig", NO_RESOURCE)
        record = self._existing(name, qualifier)
        return json_response(200, {**self._members(record, full=True), "InvokeMode": record.mode})

    async def update(self, request: Request) -> Response:
        body = json_body(request)
        checked("UpdateFunctionUrlConfig", request, body)
        name, qualifier = self._target(request, "UpdateFunctionUrlConfig", NO_FUNCTION)
        async with self._lock:
            record = self._existing(name, qualifier)
            self._not_the_manifests(record)
            record = replace(
                record,
                auth_type=body.get("AuthType", record.auth_type),
                cors=body["Cors"] if "Cors" in body else record.cors,
                invoke_mode=body.get("InvokeMode", record.invoke_mode),
                modified=_now(),
            )
            await self._store.put(record)
            self._running[record.key].listener.served = self._served(record)
        answer = self._members(record, full=True)
        if record.invoke_mode is not None:
            answer["InvokeMode"] = record.invoke_mode
        return json_response(200, answer)

    async def delete(self, request: Request) -> Response:
        checked("DeleteFunctionUrlConfig", request)
        name, qualifier = self._target(request, "DeleteFunctionUrlConfig", NO_RESOURCE)
        async with self._lock:
            record = self._existing(name, qualifier)
            self._not_the_manifests(record)
            await self._store.delete(record.key)
            await self._stop(record.key)
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def list(self, request: Request) -> Response:
        given = checked("ListFunctionUrlConfigs", request)
        name, _ = resolve(request.params["function"], None, "ListFunctionUrlConfigs")
        if name not in self._api.service.functions:
            raise ResourceNotFound(NO_FUNCTION)
        records = sorted(
            (r for k, r in self._store.records.items() if k[0] == name and k in self._running),
            key=lambda r: r.qualifier or "",
        )
        start = 0
        marker = request.query.get("Marker")
        if marker is not None:
            keys = [function_arn(r.function, r.qualifier) for r in records]
            if marker not in keys:
                raise InvalidParameterValue(f"Invalid marker {marker!r}: pass the NextMarker given")
            start = keys.index(marker)
        size = min(int(given.get("MaxItems") or 50), 50)
        page = records[start : start + size]
        answer: dict[str, Any] = {
            "FunctionUrlConfigs": [
                {**self._members(r, full=True), "InvokeMode": r.mode} for r in page
            ]
        }
        if start + size < len(records):
            following = records[start + size]
            answer["NextMarker"] = function_arn(following.function, following.qualifier)
        return json_response(200, answer)


def _same(old: UrlRecord, new: UrlRecord) -> bool:
    return (old.auth_type, old.cors, old.invoke_mode, old.port) == (
        new.auth_type,
        new.cors,
        new.invoke_mode,
        new.port,
    )
