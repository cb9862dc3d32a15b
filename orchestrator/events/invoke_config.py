"""Functions' asynchronous-invocation settings: the manifest's, or those set through Lambda's
Put/Update/Delete FunctionEventInvokeConfig, which win and are kept in the store.

Destinations travel through the API as ARNs: a function's, a queue's (``arn:aws:sqs:...``), or,
for the JSON-lines files only lrun has, ``arn:lrun:file:::NAME``, NAME being the file's path
relative to the manifest's directory. The API may only name a file the manifest declares as a
destination: an API caller must never choose where lrun writes on the host (DESIGN D9).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Collection, Mapping
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION, function_arn
from orchestrator.errors import InvalidParameterValue
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import EVENT_AGE_RANGE, RETRY_RANGE, AsyncConfig, Destination

_FUNCTION_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]+)")
_QUEUE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:\d{12}:([a-zA-Z0-9_-]+)")
_FILE_ARN = re.compile(r"arn:lrun:file:::(.+)")


def destination_arn(destination: Destination) -> str:
    if destination.kind == "function":
        return function_arn(destination.target)
    if destination.kind == "queue":
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{destination.target}"
    return f"arn:lrun:file:::{destination.target}"


def parse_destination(arn: object, files: Collection[str]) -> Destination:
    """The destination an ARN names; ``files``: the file destinations the manifest declares."""
    text = arn if isinstance(arn, str) else ""
    for pattern, kind in ((_FUNCTION_ARN, "function"), (_QUEUE_ARN, "queue")):
        if found := pattern.fullmatch(text):
            return Destination(kind, found[1])  # type: ignore[arg-type]
    if (found := _FILE_ARN.fullmatch(text)) and found[1] in files:
        return Destination("file", found[1])
    shown = text or repr(arn)
    declared = ", ".join(f"arn:lrun:file:::{name}" for name in sorted(files)) or "none"
    # AWS's sentence first (botocore users match on it), then what lrun takes.
    raise InvalidParameterValue(
        f"The destination ARN {shown} is invalid. Use a function ARN, a queue ARN "
        f"(arn:aws:sqs:{REGION}:{ACCOUNT_ID}:NAME) or a file destination the manifest declares "
        f"(declared: {declared})."
    )


ALL_FIELDS = frozenset({"MaximumRetryAttempts", "MaximumEventAgeInSeconds"})


def to_api(
    function: str,
    config: AsyncConfig,
    modified: float,
    fields: frozenset[str] = ALL_FIELDS,
    qualifier: str = "$LATEST",
) -> dict[str, Any]:
    """FunctionEventInvokeConfig's shape. AWS shows the limits only once they were set (a
    default is not echoed) and always both destinations, empty when unset; ``fields``: the
    limits set through the API."""
    body: dict[str, Any] = {
        "LastModified": modified,
        "FunctionArn": function_arn(function, qualifier),
    }
    if "MaximumRetryAttempts" in fields:
        body["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if "MaximumEventAgeInSeconds" in fields:
        body["MaximumEventAgeInSeconds"] = config.maximum_event_age
    body["DestinationConfig"] = {
        "OnSuccess": {}
        if config.on_success is None
        else {"Destination": destination_arn(config.on_success)},
        "OnFailure": {}
        if config.on_failure is None
        else {"Destination": destination_arn(config.on_failure)},
    }
    return body


def from_api(
    body: Mapping[str, Any], base: AsyncConfig, merge: bool, files: Collection[str] = ()
) -> AsyncConfig:
    """The settings a Put (``merge`` False: all of them) or an Update (merge) asks for;
    ``files``: the file destinations the manifest declares, the only ones it may name."""
    keys = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}
    if not keys & set(body):
        raise InvalidParameterValue(
            "You must specify at least one of error handling or destination setting."
        )
    defaults = (
        base
        if merge
        else AsyncConfig(retry_delay=base.retry_delay, dead_letter_queue=base.dead_letter_queue)
    )
    retries = body.get("MaximumRetryAttempts", defaults.maximum_retry_attempts)
    age = body.get("MaximumEventAgeInSeconds", defaults.maximum_event_age)
    _check_int("MaximumRetryAttempts", retries, *RETRY_RANGE)
    _check_int("MaximumEventAgeInSeconds", age, *EVENT_AGE_RANGE)
    on_success, on_failure = defaults.on_success, defaults.on_failure
    if "DestinationConfig" in body:
        config = body["DestinationConfig"] or {}
        if not isinstance(config, dict):
            raise InvalidParameterValue(
                f"DestinationConfig {config!r} is not an object: give "
                '{"OnSuccess": {"Destination": ARN}, "OnFailure": {"Destination": ARN}}'
            )
        if not merge or "OnSuccess" in config:
            on_success = _destination(config.get("OnSuccess"), files)
        if not merge or "OnFailure" in config:
            on_failure = _destination(config.get("OnFailure"), files)
    return AsyncConfig(
        retries, age, base.retry_delay, on_success, on_failure, base.dead_letter_queue
    )


def _destination(entry: object, files: Collection[str]) -> Destination | None:
    if not entry:
        return None
    arn = entry.get("Destination") if isinstance(entry, dict) else None
    return parse_destination(arn, files) if arn else None


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterValue(
            f"1 validation error detected: Value '{value}' at '{name[0].lower() + name[1:]}' "
            "failed to "
            f"satisfy constraint: Member must have value between {low} and {high}"
        )


class InvokeConfigs:
    """Settings set through the API, by function, kept in the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._configs: dict[str, tuple[AsyncConfig, float]] = {}
        self._fields: dict[str, frozenset[str]] = {}

    async def load(self) -> None:
        rows = await self._store.run(
            lambda db: db.execute("SELECT function, config FROM invoke_configs").fetchall()
        )
        for function, text in rows:
            data = json.loads(text)
            self._configs[function] = (_decode(data["config"]), data["modified"])
            self._fields[function] = frozenset(data.get("fields", ALL_FIELDS))

    def get(self, function: str) -> tuple[AsyncConfig, float] | None:
        return self._configs.get(function)

    def fields(self, function: str) -> frozenset[str]:
        """The limits a function's settings were given through the API (the rest default)."""
        return self._fields.get(function, frozenset())

    async def put(
        self, function: str, config: AsyncConfig, fields: frozenset[str] = ALL_FIELDS
    ) -> float:
        modified = time.time()
        text = json.dumps(
            {"config": _encode(config), "modified": modified, "fields": sorted(fields)}
        )

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO invoke_configs (function, config) VALUES (?, ?) "
                "ON CONFLICT (function) DO UPDATE SET config = excluded.config",
                (function, text),
            )

        await self._store.run(write)
        self._configs[function] = (config, modified)
        self._fields[function] = fields
        return modified

    async def delete(self, function: str) -> bool:
        await self._store.run(
            lambda db: db.execute("DELETE FROM invoke_configs WHERE function = ?", (function,))
        )
        self._fields.pop(function, None)
        return self._configs.pop(function, None) is not None


def _encode(config: AsyncConfig) -> dict[str, Any]:
    def one(d: Destination | None) -> list[str] | None:
        return None if d is None else [d.kind, d.target]

    return {
        "retries": config.maximum_retry_attempts,
        "age": config.maximum_event_age,
        "delay": config.retry_delay,
        "success": one(config.on_success),
        "failure": one(config.on_failure),
        "dlq": config.dead_letter_queue,
    }


def _decode(data: dict[str, Any]) -> AsyncConfig:
    def one(value: list[str] | None) -> Destination | None:
        return None if value is None else Destination(value[0], value[1])  # type: ignore[arg-type]

    return AsyncConfig(
        data["retries"],
        data["age"],
        data["delay"],
        one(data["success"]),
        one(data["failure"]),
        data["dlq"],
    )
