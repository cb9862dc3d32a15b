"""Unit tests for the event source mapping routes (``orchestrator.api.mapping_api``), through
``Router.dispatch`` with the server's error table, over a real Store, real Queues, real Sources
and a Service on the fake engine: the requests AWS's clients send, AWS's answers and errors, a
manifest's mappings beside the API's, and the API's kept across a new ``Mappings`` on the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api.lambda_api import error_response
from orchestrator.api.mapping_api import add_mapping_routes
from orchestrator.events import sources as sources_module
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.mappings import Mappings, manifest_uuid
from orchestrator.events.queues import Queues
from orchestrator.events.sources import Sources
from orchestrator.events.store import Store
from orchestrator.http_server import Request, Response, Router
from orchestrator.manifest import load
from orchestrator.manifest.triggers import AsyncConfig
from orchestrator.served import Alias
from orchestrator.service import Service
from tests.fakes import FakeContext, eventually, fake_service, run

BASE = "/2015-03-31/event-source-mappings/"
ARN = "arn:aws:sqs:us-east-1:000000000000:{}"
MANIFEST = """\
queues:
  jobs:
  declared:
functions:
  consumer: {runtime: python3.13, code: ./code, handler: app.consumer}
  watcher:
    runtime: python3.13
    code: ./code
    handler: app.consumer
    events:
      - queue: declared
        filter: [{body: {kind: [order]}}]
"""


@dataclass
class World:
    router: Router
    mappings: Mappings
    sources: Sources
    queues: Queues
    store: Store
    seen: list[str]
    path: Path
    delay: list[float]
    started: list[str]
    notes: list[str]
    service: Service
    ran: list[str]  # the version each invocation ran

    async def settled(self, queue: str) -> None:
        """Wait until the queue holds nothing, visible or in flight."""
        for _ in range(200):
            stats = await self.queues.stats(queue)
            if (stats.depth, stats.in_flight) == (0, 0):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"queue {queue} did not empty")


@pytest.fixture(autouse=True)
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources_module, "IDLE_POLL_S", 0.02)


@contextlib.asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[tuple[World, Callable[..., Awaitable[Response]]]]:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "app.py").write_text("# handlers come from the fake's registry\n")
    path = tmp_path / "lrun.yaml"
    path.write_text(MANIFEST)
    seen: list[str] = []

    delay: list[float] = []  # seconds each invocation takes, when the test sets one
    started: list[str] = []

    ran: list[str] = []

    async def consumer(event: Any, context: FakeContext) -> None:
        ran.append(context.env["AWS_LAMBDA_FUNCTION_VERSION"])
        started.extend(record["body"] for record in event["Records"])
        await asyncio.sleep(delay[0] if delay else 0.0)
        seen.extend(record["body"] for record in event["Records"])

    store = Store(tmp_path / "state" / "lrun.db")
    await asyncio.to_thread(store.open)
    try:
        async with fake_service(path, {"app.consumer": consumer}) as served:
            queues = Queues(store)
            manifest = load(path)
            for spec in manifest.queues.values():
                await queues.ensure(spec)
            events = EventQueue(
                store, served.service, lambda name, qualifier: AsyncConfig(), queues.send_in
            )
            mappings = Mappings(store)
            await mappings.load()
            notes: list[str] = []
            sources = Sources(served.service, events, queues, store, notes.append, mappings)
            router = Router(error_response)
            add_mapping_routes(router, served.service, queues, mappings, sources.sync)
            sources.restart(manifest)
            w = World(
                router,
                mappings,
                sources,
                queues,
                store,
                seen,
                path,
                delay,
                started,
                notes,
                served.service,
                ran,
            )

            async def call(method: str, url: str, body: object = None, **query: str) -> Response:
                raw = b"" if body is None else json.dumps(body).encode()
                return await router.dispatch(Request(method, url, query, {}, raw, "127.0.0.1"))

            try:
                yield w, call
            finally:
                await sources.wait_stopped()
    finally:
        await asyncio.to_thread(store.close)


def body(response: Response) -> Any:
    return json.loads(response.body)


def error(response: Response) -> tuple[int, str, str]:
    found = body(response)
    message = found.get("message", found.get("Message"))
    return response.status, response.headers["x-amzn-ErrorType"], message


def scenario(tmp_path: Path, test: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        async with world(tmp_path) as (w, call):
            await test(w, call)

    run(main(), 10.0)


def test_a_mapping_invokes_the_version_or_alias_it_names(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        spec = w.service.function("consumer").spec
        w.service.put_version("consumer", "1", spec, "consumer-1")
        w.service.put_alias("consumer", "live", Alias("1"))
        missing = await call(
            "POST", BASE, {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer:nope"}
        )
        assert error(missing) == (400, "InvalidParameterValueException", "Function does not exist")
        created = await call(
            "POST", BASE, {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer:live"}
        )
        assert created.status == 202, created.body
        assert body(created)["FunctionArn"] == (
            "arn:aws:lambda:us-east-1:000000000000:function:consumer:live"
        )
        await w.queues.send("jobs", "one")
        await w.settled("jobs")
        assert (w.seen, w.ran) == (["one"], ["1"])

    scenario(tmp_path, test)


def test_create_get_update_list_delete(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        created = await call(
            "POST",
            BASE,
            {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer", "Enabled": False},
        )
        assert created.status == 202
        made = body(created)
        assert made["State"] == "Creating"
        assert made["BatchSize"] == 10 and made["MaximumBatchingWindowInSeconds"] == 0
        assert made["FunctionResponseTypes"] == []
        assert "FilterCriteria" not in made and "ScalingConfig" not in made
        assert isinstance(made["LastModified"], float)
        key = made["UUID"]
        assert made["EventSourceMappingArn"].endswith(f":event-source-mapping:{key}")
        assert body(await call("GET", BASE + key))["State"] == "Disabled"

        await w.queues.send("jobs", "one")
        await asyncio.sleep(0.2)
        assert w.seen == []  # disabled
        updated = await call("PUT", BASE + key, {"Enabled": True, "BatchSize": 5})
        assert (updated.status, body(updated)["State"]) == (202, "Enabling")
        await eventually(lambda: w.seen == ["one"], what="the message delivered")
        same = await call("PUT", BASE + key, {"FunctionResponseTypes": ["ReportBatchItemFailures"]})
        assert body(same)["State"] == "Updating"
        assert body(same)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert body(same)["BatchSize"] == 5  # unchanged settings stay

        listed = body(await call("GET", BASE, FunctionName="consumer"))
        assert [m["UUID"] for m in listed["EventSourceMappings"]] == [key]
        every = body(await call("GET", BASE))["EventSourceMappings"]
        assert len(every) == 2
        by_queue = body(await call("GET", BASE, EventSourceArn=ARN.format("declared")))
        assert [m["UUID"] for m in by_queue["EventSourceMappings"]] == [
            manifest_uuid("watcher", "declared")
        ]

        deleted = await call("DELETE", BASE + key)
        assert (deleted.status, body(deleted)["State"]) == (202, "Deleting")
        assert error(await call("GET", BASE + key)) == (
            404,
            "ResourceNotFoundException",
            "The resource you requested does not exist.",
        )
        assert error(await call("PUT", BASE + key, {"Enabled": True}))[0] == 404
        assert error(await call("DELETE", BASE + key))[0] == 404

    scenario(tmp_path, test)


def test_filters_drop_messages_and_delete_them(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        pattern = json.dumps({"body": {"n": [{"numeric": [">", 1]}]}})
        created = await call(
            "POST",
            BASE,
            {
                "EventSourceArn": ARN.format("jobs"),
                "FunctionName": "consumer",
                "FilterCriteria": {"Filters": [{"Pattern": pattern}]},
            },
        )
        assert body(created)["FilterCriteria"] == {"Filters": [{"Pattern": pattern}]}
        for n in (1, 2, 3):
            await w.queues.send("jobs", json.dumps({"n": n}))
        await eventually(lambda: len(w.seen) == 2, what="two messages delivered")
        await w.settled("jobs")  # the filtered one is deleted too
        assert sorted(w.seen) == ['{"n": 2}', '{"n": 3}']
        # The manifest's filter too.
        await w.queues.send("declared", '{"kind": "refund"}')
        await w.queues.send("declared", '{"kind": "order"}')
        await eventually(lambda: '{"kind": "order"}' in w.seen, what="the order delivered")
        await w.settled("declared")
        assert '{"kind": "refund"}' not in w.seen
        # Clearing the filter.
        cleared = await call("PUT", BASE + body(created)["UUID"], {"FilterCriteria": {}})
        assert "FilterCriteria" not in body(cleared)

    scenario(tmp_path, test)


def test_errors_as_aws_sends_them(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        jobs = ARN.format("jobs")
        first = body(await call("POST", BASE, {"EventSourceArn": jobs, "FunctionName": "consumer"}))
        again = await call("POST", BASE, {"EventSourceArn": jobs, "FunctionName": "consumer"})
        assert error(again) == (
            409,
            "ResourceConflictException",
            f'An event source mapping with SQS arn (" {jobs} ") and function (" consumer ") '
            f"already exists. Please update or delete the existing mapping with UUID "
            f"{first['UUID']}",
        )
        assert body(again)["Type"] == "User"
        declared = ARN.format("declared")
        cases: list[tuple[dict[str, Any], tuple[int, str, str]]] = [
            (
                {"EventSourceArn": declared, "FunctionName": "consumer", "BatchSize": 11},
                (
                    400,
                    "InvalidParameterValueException",
                    "Maximum batch window in seconds must be greater than 0 if maximum batch "
                    "size is greater than 10",
                ),
            ),
            (
                {"EventSourceArn": declared, "FunctionName": "consumer", "BatchSize": 0},
                (
                    400,
                    "ValidationException",
                    "1 validation error detected: Value '0' at 'batchSize' failed to satisfy "
                    "constraint: Member must have value greater than or equal to 1",
                ),
            ),
            (
                {
                    "EventSourceArn": declared,
                    "FunctionName": "consumer",
                    "ScalingConfig": {"MaximumConcurrency": 1},
                },
                (
                    400,
                    "ValidationException",
                    "1 validation error detected: Value '1' at "
                    "'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member "
                    "must have value greater than or equal to 2",
                ),
            ),
            (
                {"EventSourceArn": declared, "FunctionName": "nobody"},
                (400, "InvalidParameterValueException", "Function does not exist"),
            ),
            (
                {"EventSourceArn": declared},
                (
                    400,
                    "ValidationException",
                    "1 validation error detected: Value null at 'functionName' failed to "
                    "satisfy constraint: Member must not be null",
                ),
            ),
            (
                {
                    "EventSourceArn": ARN.replace("000000000000", "111111111111").format("jobs"),
                    "FunctionName": "consumer",
                },
                (
                    400,
                    "InvalidParameterValueException",
                    "Error occurred while ReceiveMessage. SQS Error Code: "
                    "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified "
                    "queue does not exist or you do not have access to it.",
                ),
            ),
            (
                {
                    "EventSourceArn": declared,
                    "FunctionName": "consumer",
                    "StartingPosition": "LATEST",
                },
                (
                    400,
                    "InvalidParameterValueException",
                    "StartingPosition is not valid for SQS event sources.",
                ),
            ),
            (
                {
                    "EventSourceArn": declared,
                    "FunctionName": "consumer",
                    "FilterCriteria": {"Filters": [{"Pattern": '{"body": ["x"'}]},
                },
                (400, "InvalidParameterValueException", "Invalid filter pattern definition."),
            ),
        ]
        for request, expected in cases:
            assert error(await call("POST", BASE, request)) == expected, request
        # The manifest's mapping is the manifest's.
        key = manifest_uuid("watcher", "declared")
        for method, request in (("PUT", {"BatchSize": 1}), ("DELETE", None)):
            status, kind, message = error(await call(method, BASE + key, request))
            assert (status, kind) == (409, "ResourceConflictException")
            assert str(w.path) in message
        conflict = await call("POST", BASE, {"EventSourceArn": declared, "FunctionName": "watcher"})
        assert error(conflict)[2].endswith(f"existing mapping with UUID {key}")
        # Moving a mapping onto a function that has one on the queue is the same conflict.
        other = body(
            await call("POST", BASE, {"EventSourceArn": declared, "FunctionName": "consumer"})
        )
        moved = await call("PUT", BASE + other["UUID"], {"FunctionName": "watcher"})
        assert error(moved)[:2] == (409, "ResourceConflictException")
        assert error(moved)[2].endswith(f"existing mapping with UUID {key}")
        assert body(await call("GET", BASE + other["UUID"]))["FunctionArn"].endswith(":consumer")

    scenario(tmp_path, test)


def test_api_mappings_survive_and_manifest_ones_keep_their_uuid(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        made = body(
            await call(
                "POST",
                BASE,
                {
                    "EventSourceArn": ARN.format("jobs"),
                    "FunctionName": "consumer",
                    "BatchSize": 50,
                    "MaximumBatchingWindowInSeconds": 2,
                    "Enabled": False,
                },
            )
        )
        fresh = Mappings(w.store)
        await fresh.load()
        kept = fresh.get(made["UUID"])
        assert kept is not None and (kept.batch_size, kept.enabled) == (50, False)
        assert kept.last_modified == made["LastModified"]
        declared = w.mappings.get(manifest_uuid("watcher", "declared"))
        w.sources.restart(load(w.path))  # a reload: the same UUID and LastModified
        assert w.mappings.get(manifest_uuid("watcher", "declared")) == declared
        listed = body(await call("GET", BASE, MaxItems="1"))
        following = body(await call("GET", BASE, MaxItems="1", Marker=listed["NextMarker"]))
        assert "NextMarker" not in following
        uuids = {
            listed["EventSourceMappings"][0]["UUID"],
            following["EventSourceMappings"][0]["UUID"],
        }
        assert uuids == {made["UUID"], manifest_uuid("watcher", "declared")}

    scenario(tmp_path, test)


def test_changing_a_mapping_while_it_delivers_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """The old settings' workers finish the batch in hand (its messages deleted, not left in
    flight until their visibility timeout), the new ones take the rest."""

    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        made = body(
            await call(
                "POST",
                BASE,
                {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer", "BatchSize": 2},
            )
        )
        bodies = [f"m{n}" for n in range(30)]
        await w.queues.send_many("jobs", bodies)
        for size in (3, 1, 4, 2):
            await asyncio.sleep(0.01)
            assert (await call("PUT", BASE + made["UUID"], {"BatchSize": size})).status == 202
        await eventually(lambda: len(w.seen) >= len(bodies), what="every message delivered")
        await w.settled("jobs")
        assert sorted(w.seen) == sorted(bodies)

    scenario(tmp_path, test)


def test_a_manifest_reload_does_not_cut_a_batch_short(tmp_path: Path) -> None:
    """Mappings the reload leaves unchanged keep their workers: the batch being processed is
    finished and deleted, not left in flight until its visibility timeout (30 s here)."""

    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        await call("POST", BASE, {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer"})
        w.delay.append(0.3)
        await w.queues.send("jobs", "api")
        await w.queues.send("declared", '{"kind": "order"}')
        await eventually(lambda: len(w.started) == 2, what="both batches started")
        w.sources.restart(load(w.path))
        await eventually(lambda: len(w.seen) == 2, what="both batches finished")
        await w.settled("jobs")
        await w.settled("declared")

    scenario(tmp_path, test)


def test_the_manifest_declaring_an_api_mapping_polls_only_its_own(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        made = await call(
            "POST", BASE, {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer"}
        )
        key = body(made)["UUID"]
        w.path.write_text(
            MANIFEST.replace(
                "consumer: {runtime: python3.13, code: ./code, handler: app.consumer}",
                "consumer:\n    runtime: python3.13\n    code: ./code\n    handler: app.consumer\n"
                "    events: [{queue: jobs, filter: {body: {kind: [order]}}}]",
            )
        )
        w.sources.restart(load(w.path))
        assert any(key in note and "manifest declares the same" in note for note in w.notes)
        await w.queues.send_many(
            "jobs", [json.dumps({"kind": "refund", "n": n}) for n in range(10)]
        )
        await w.settled("jobs")
        assert w.seen == []  # only the manifest's filtered poller ran; the API's would not filter
        listed = body(await call("GET", BASE, EventSourceArn=ARN.format("jobs")))
        assert key in {m["UUID"] for m in listed["EventSourceMappings"]}

    scenario(tmp_path, test)


def test_a_mapping_whose_function_is_gone_leaves_its_messages_alone(tmp_path: Path) -> None:
    async def test(w: World, call: Callable[..., Awaitable[Response]]) -> None:
        await call("POST", BASE, {"EventSourceArn": ARN.format("jobs"), "FunctionName": "consumer"})
        w.path.write_text(
            MANIFEST.replace(
                "  consumer: {runtime: python3.13, code: ./code, handler: app.consumer}\n", ""
            )
        )
        manifest = load(w.path)
        w.service.load(manifest)
        w.sources.restart(manifest)
        await w.queues.send("jobs", "waits")
        await asyncio.sleep(0.3)
        (left,) = await w.queues.receive("jobs", 10)  # here, and received for the first time
        assert left.receive_count == 1
        assert w.seen == []

    scenario(tmp_path, test)
