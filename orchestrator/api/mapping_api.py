"""Lambda's event source mapping operations for lrun's local queues (the SQS role).

``Create/Get/List/Update/DeleteEventSourceMapping`` as boto3, the AWS CLI and Terraform call
them, with AWS's shapes, states and errors. Mappings the manifest declares are listed too, and
refused any change through the API (the manifest owns them: an API change would be undone by
the next reload). A change takes effect at once; the answer shows the state AWS reports while
it does (``Creating``, ``Updating``, ``Enabling``, ``Disabling``, ``Deleting``), later reads the
settled one (``Enabled``, ``Disabled``).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.api.lambda_api import json_response, resolve
from orchestrator.api.validation import json_object
from orchestrator.aws import ACCOUNT_ID, REGION, function_arn
from orchestrator.errors import (
    InvalidParameterValue,
    InvalidRequestContent,
    LambdaError,
    ResourceConflict,
    ResourceNotFound,
    Validation,
)
from orchestrator.events.mappings import Mapping, Mappings
from orchestrator.events.queues import QueueDoesNotExist, Queues, queue_arn
from orchestrator.http_server import Request, Response, Router
from orchestrator.manifest.event_filter import MAX_FILTERS, MAX_PATTERN, FilterError, parse
from orchestrator.service import Service

BASE = "/2015-03-31/event-source-mappings"
LATEST = "$LATEST"
BATCH_RANGE = (1, 10000)  # the API model's; SQS allows all of it (above 10 with a window)
WINDOW_RANGE = (0, 300)
CONCURRENCY_RANGE = (2, 1000)
PAGE_DEFAULT = 100
MAX_ITEMS_RANGE = (1, 10000)
UPDATABLE = frozenset(
    {
        "FunctionName",
        "Enabled",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes",
        "ScalingConfig",
        "FilterCriteria",
    }
)
IGNORED = frozenset({"Tags", "KMSKeyArn", "MetricsConfig"})  # accepted; lrun has no use for them
_SQS_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sqs:(?P<region>[^:]*):(?P<account>[^:]*):(?P<name>.+)")
NOT_FOUND = "The resource you requested does not exist."
NO_QUEUE = (
    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
    "SQS Error Message: The specified queue does not exist or you do not have access to it."
)


class MappingParameterError(InvalidParameterValue):
    """InvalidParameterValueException as these operations send it: ``Type`` and ``message``."""

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


def add_mapping_routes(
    router: Router,
    service: Service,
    queues: Queues,
    mappings: Mappings,
    on_change: Callable[[], None],
) -> None:
    routes = _MappingRoutes(service, queues, mappings, on_change)
    for base in (BASE, BASE + "/"):
        router.add("POST", base, routes.create)
        router.add("GET", base, routes.list_mappings)
    one = BASE + "/{uuid}"
    router.add("GET", one, routes.get)
    router.add("PUT", one, routes.update)
    router.add("DELETE", one, routes.delete)


def to_api(mapping: Mapping, state: str | None = None) -> dict[str, Any]:
    """A mapping as AWS shows an SQS one."""
    settled = "Enabled" if mapping.enabled else "Disabled"
    body: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": mapping.batch_size,
        "MaximumBatchingWindowInSeconds": mapping.maximum_batching_window,
        "EventSourceArn": queue_arn(mapping.queue),
        "FunctionArn": function_arn(mapping.function, mapping.qualifier),
        "LastModified": mapping.last_modified,
        "State": state or settled,
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": (
            ["ReportBatchItemFailures"] if mapping.report_batch_item_failures else []
        ),
        "EventSourceMappingArn": (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:event-source-mapping:{mapping.uuid}"
        ),
    }
    if mapping.filters:
        body["FilterCriteria"] = {"Filters": [{"Pattern": text} for text in mapping.filters]}
    if mapping.maximum_concurrency is not None:
        body["ScalingConfig"] = {"MaximumConcurrency": mapping.maximum_concurrency}
    return body


class _MappingRoutes:
    def __init__(
        self,
        service: Service,
        queues: Queues,
        mappings: Mappings,
        on_change: Callable[[], None],
    ) -> None:
        self._service = service
        self._queues = queues
        self._mappings = mappings
        self._on_change = on_change

    async def create(self, request: Request) -> Response:
        fields = _fields(request)
        _check_keys(fields, UPDATABLE | IGNORED | {"EventSourceArn"})
        source = fields.get("EventSourceArn")
        if "FunctionName" not in fields:
            raise _null("functionName")
        _check_shapes(fields)
        if not isinstance(source, str) or not source:
            raise MappingParameterError(
                "Unrecognized event source, must be kafka or specify an EventSourceArn"
            )
        name, qualifier = self._function(fields["FunctionName"])
        queue = await self._queue(source)
        mapping = _apply(
            Mapping(str(uuid.uuid4()), name, queue, qualifier=qualifier),
            fields,
            self._mappings.now(),
        )
        self._unique(mapping)
        await self._mappings.put(mapping)
        self._on_change()
        return json_response(202, to_api(mapping, "Creating"))

    async def get(self, request: Request) -> Response:
        return json_response(200, to_api(self._find(request)))

    async def update(self, request: Request) -> Response:
        mapping = self._find(request)
        fields = _fields(request)
        _check_keys(fields, UPDATABLE | IGNORED)
        _check_shapes(fields)
        self._owned(mapping)
        name, qualifier = mapping.function, mapping.qualifier
        if "FunctionName" in fields:
            name, qualifier = self._function(fields["FunctionName"])
        changed = _apply(
            dataclasses.replace(mapping, function=name, qualifier=qualifier),
            fields,
            self._mappings.now(),
        )
        self._unique(changed)
        await self._mappings.put(changed)
        self._on_change()
        if changed.enabled != mapping.enabled:
            state = "Enabling" if changed.enabled else "Disabling"
        else:
            state = "Updating"
        return json_response(202, to_api(changed, state))

    async def delete(self, request: Request) -> Response:
        mapping = self._find(request)
        self._owned(mapping)
        await self._mappings.delete(mapping.uuid)
        self._on_change()
        return json_response(202, to_api(mapping, "Deleting"))

    async def list_mappings(self, request: Request) -> Response:
        query = request.query
        found = self._mappings.all()
        if source := query.get("EventSourceArn"):
            found = [m for m in found if queue_arn(m.queue) == source]
        if function := query.get("FunctionName"):
            name, qualifier = resolve(function, None)
            found = [
                m
                for m in found
                if m.function == name and (qualifier is None or m.qualifier == qualifier)
            ]
        size = _max_items(query.get("MaxItems"))
        start = 0
        if marker := query.get("Marker"):
            keys = [m.uuid for m in found]
            if marker not in keys:
                raise MappingParameterError(f"Invalid marker: {marker}")
            start = keys.index(marker)
        page = found[start : start + size]
        body: dict[str, Any] = {"EventSourceMappings": [to_api(m) for m in page]}
        if start + size < len(found):
            body["NextMarker"] = found[start + size].uuid
        return json_response(200, body)

    # Checks

    def _find(self, request: Request) -> Mapping:
        mapping = self._mappings.get(request.params["uuid"])
        if mapping is None:
            raise ResourceNotFound(NOT_FOUND)
        return mapping

    def _unique(self, mapping: Mapping) -> None:
        """One mapping per queue and function, as Lambda allows for SQS."""
        for other in self._mappings.all():
            if (other.queue, other.function) == (mapping.queue, mapping.function):
                if other.uuid != mapping.uuid:
                    raise ResourceConflict(
                        f'An event source mapping with SQS arn (" {queue_arn(mapping.queue)} ") '
                        f'and function (" {mapping.function} ") already exists. Please update or '
                        f"delete the existing mapping with UUID {other.uuid}"
                    )

    def _owned(self, mapping: Mapping) -> None:
        if mapping.manifest is not None:
            raise ResourceConflict(
                f"The event source mapping {mapping.uuid} (queue {mapping.queue} -> function "
                f"{mapping.function}) is declared in the manifest {mapping.manifest}; change or "
                "remove it there, under the function's events:"
            )

    def _function(self, given: object) -> tuple[str, str | None]:
        if not isinstance(given, str):
            raise _wrong_type("FunctionName", given)
        if not 1 <= len(given) <= 140:
            raise Validation(
                f"1 validation error detected: Value '{given}' at 'functionName' failed to "
                "satisfy constraint: Member must have length "
                + ("greater than or equal to 1" if not given else "less than or equal to 140")
            )
        try:
            name, qualifier = resolve(given, None)
        except InvalidParameterValue as exc:
            raise Validation(exc.message) from None
        state = self._service.functions.get(name)
        if state is None or qualifier not in (
            None,
            LATEST,
            *state.published,
            *state.aliases,
        ):
            raise MappingParameterError("Function does not exist")
        return name, qualifier

    async def _queue(self, source: str) -> str:
        found = _SQS_ARN.fullmatch(source)
        if found is None:
            raise MappingParameterError(
                f"lrun polls only its local queues, by their ARNs "
                f"(arn:aws:sqs:{REGION}:{ACCOUNT_ID}:NAME), not {source}"
            )
        if found["region"] != REGION or found["account"] != ACCOUNT_ID:
            raise MappingParameterError(NO_QUEUE)
        try:
            await self._queues.stats(found["name"])
        except QueueDoesNotExist:
            raise MappingParameterError(NO_QUEUE) from None
        return found["name"]


def _fields(request: Request) -> dict[str, Any]:
    return json_object(request)


def _check_keys(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in fields:
        if key == "StartingPosition" or key == "StartingPositionTimestamp":
            raise MappingParameterError("StartingPosition is not valid for SQS event sources.")
        if key not in allowed:
            raise MappingParameterError(
                f"Unsupported {key} parameter for given event source mapping type."
            )


def _check_shapes(fields: dict[str, Any]) -> None:
    """The API model's constraints, as ValidationException (types as the model's shapes)."""
    _integer(fields, "BatchSize", "batchSize", BATCH_RANGE)
    _integer(
        fields, "MaximumBatchingWindowInSeconds", "maximumBatchingWindowInSeconds", WINDOW_RANGE
    )
    if "Enabled" in fields and not isinstance(fields["Enabled"], bool):
        raise _wrong_type("Enabled", fields["Enabled"])
    if "ScalingConfig" in fields:
        scaling = fields["ScalingConfig"]
        if not isinstance(scaling, dict) or set(scaling) - {"MaximumConcurrency"}:
            raise _wrong_type("ScalingConfig", scaling)
        _integer(
            scaling, "MaximumConcurrency", "scalingConfig.maximumConcurrency", CONCURRENCY_RANGE
        )
    if "FunctionResponseTypes" in fields:
        types = fields["FunctionResponseTypes"]
        if not isinstance(types, list) or len(types) > 1:
            raise _wrong_type("FunctionResponseTypes", types)
        if any(t != "ReportBatchItemFailures" for t in types):
            shown = ", ".join(str(t) for t in types)
            raise Validation(
                f"1 validation error detected: Value '[{shown}]' at 'functionResponseTypes' "
                "failed to satisfy constraint: Member must satisfy constraint: [Member must "
                "satisfy enum value set: [ReportBatchItemFailures]]"
            )
    if "FilterCriteria" in fields:
        _patterns(fields["FilterCriteria"])


def _integer(fields: dict[str, Any], key: str, path: str, bounds: tuple[int, int]) -> None:
    if key not in fields:
        return
    value = fields[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type(key, value)
    low, high = bounds
    if value < low:
        raise Validation(
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
            f"constraint: Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise Validation(
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
            f"constraint: Member must have value less than or equal to {high}"
        )


def _patterns(criteria: object) -> tuple[str, ...]:
    if not isinstance(criteria, dict) or set(criteria) - {"Filters"}:
        raise _wrong_type("FilterCriteria", criteria)
    filters = criteria.get("Filters", [])
    if not isinstance(filters, list) or not all(
        isinstance(f, dict) and set(f) <= {"Pattern"} for f in filters
    ):
        raise _wrong_type("FilterCriteria", criteria)
    texts = tuple(f.get("Pattern") for f in filters)
    for index, text in enumerate(texts):
        if isinstance(text, str) and len(text) > MAX_PATTERN:
            raise Validation(
                f"1 validation error detected: Value '{text}' at "
                f"'filterCriteria.filters.{index + 1}.member.pattern' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_PATTERN}"
            )
    if len(texts) > MAX_FILTERS:
        raise MappingParameterError(
            f"The maximum number of filters per event source mapping is {MAX_FILTERS}; "
            f"this request gives {len(texts)}."
        )
    for text in texts:
        try:
            parse(text)
        except FilterError:
            raise MappingParameterError("Invalid filter pattern definition.") from None
    return tuple(str(text) for text in texts)


def _apply(mapping: Mapping, fields: dict[str, Any], now: float) -> Mapping:
    """``mapping`` with the request's settings (already checked for shape), checked together."""
    scaling = fields.get("ScalingConfig", ...)
    changed = dataclasses.replace(
        mapping,
        batch_size=fields.get("BatchSize", mapping.batch_size),
        maximum_batching_window=fields.get(
            "MaximumBatchingWindowInSeconds", mapping.maximum_batching_window
        ),
        report_batch_item_failures=(
            fields["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            if "FunctionResponseTypes" in fields
            else mapping.report_batch_item_failures
        ),
        enabled=fields.get("Enabled", mapping.enabled),
        maximum_concurrency=(
            mapping.maximum_concurrency if scaling is ... else scaling.get("MaximumConcurrency")
        ),
        filters=(
            _patterns(fields["FilterCriteria"]) if "FilterCriteria" in fields else mapping.filters
        ),
        last_modified=now,
    )
    if changed.batch_size > 10 and changed.maximum_batching_window == 0:
        raise MappingParameterError(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10"
        )
    return changed


def _max_items(value: str | None) -> int:
    if not value:
        return PAGE_DEFAULT
    low, high = MAX_ITEMS_RANGE
    if not value.isdigit() or not low <= int(value) <= high:
        raise Validation(
            f"1 validation error detected: Value '{value}' at 'maxItems' failed to satisfy "
            f"constraint: Member must have value between {low} and {high}"
        )
    return min(int(value), PAGE_DEFAULT)


def _null(path: str) -> LambdaError:
    return Validation(
        f"1 validation error detected: Value null at '{path}' failed to satisfy constraint: "
        "Member must not be null"
    )


def _wrong_type(key: str, value: object) -> LambdaError:
    return InvalidRequestContent(
        f"Could not parse request body into json: {key} has the wrong type ({value!r})"
    )
