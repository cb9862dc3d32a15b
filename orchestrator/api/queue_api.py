"""lrun's HTTP API for local queues: JSON routes under ``/lrun/queues`` over ``Queues``.

The routes join the server's router, so their errors go through its one error table (Lambda's
status, ``x-amzn-ErrorType`` and body). Field values are checked by ``orchestrator.queues``; this
module only checks the shape of each request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import asdict
from typing import Any

from orchestrator.api.validation import json_object
from orchestrator.errors import InvalidParameterValue
from orchestrator.events.queues import Queues, check_range
from orchestrator.http_server import Request, Response, Router

BASE = "/lrun/queues"
RECEIVE_RANGE = (1, 10)  # messages per receive, as SQS's ReceiveMessage allows
CREATE_FIELDS = ("name", "visibility_timeout", "max_receive_count", "dead_letter_queue")


def add_queue_routes(router: Router, queues: Queues) -> None:
    routes = _QueueRoutes(queues)
    one = BASE + "/{name}"
    router.add("GET", BASE, routes.list_queues)
    router.add("POST", BASE, routes.create)
    router.add("GET", one, routes.stats)
    router.add("DELETE", one, routes.delete_queue)
    router.add("POST", one + "/messages", routes.send)
    router.add("POST", one + "/receive", routes.receive)
    router.add("DELETE", one + "/messages/{receipt}", routes.delete)
    router.add("POST", one + "/purge", routes.purge)


class _QueueRoutes:
    def __init__(self, queues: Queues) -> None:
        self._queues = queues

    async def list_queues(self, request: Request) -> Response:
        return _json(200, [asdict(stats) for stats in await self._queues.list()])

    async def create(self, request: Request) -> Response:
        fields = _fields(request, CREATE_FIELDS, required=("name",))
        spec = await self._queues.create(
            fields["name"],
            fields.get("visibility_timeout", 30),
            fields.get("max_receive_count"),
            fields.get("dead_letter_queue"),
        )
        return _json(201, asdict(spec))

    async def stats(self, request: Request) -> Response:
        return _json(200, asdict(await self._queues.stats(request.params["name"])))

    async def delete_queue(self, request: Request) -> Response:
        await self._queues.delete_queue(request.params["name"])
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def send(self, request: Request) -> Response:
        fields = _fields(request, ("body", "messages", "attributes"))
        if ("body" in fields) == ("messages" in fields):
            raise InvalidParameterValue(
                "give either body (one message) or messages (a list of bodies), not "
                f"{'both' if 'body' in fields else 'neither'}"
            )
        bodies = [fields["body"]] if "body" in fields else fields["messages"]
        if not isinstance(bodies, list):
            raise InvalidParameterValue(f"messages {bodies!r} is not a list of message bodies")
        sent = await self._queues.send_many(
            request.params["name"], bodies, fields.get("attributes")
        )
        ids = [{"message_id": m.message_id, "md5_of_body": m.md5_of_body} for m in sent]
        return _json(200, {"messages": ids})

    async def receive(self, request: Request) -> Response:
        fields = _fields(request, ("max_messages", "visibility_timeout"))
        count = fields.get("max_messages", 1)
        check_range("max_messages", count, RECEIVE_RANGE)
        received = await self._queues.receive(
            request.params["name"], count, fields.get("visibility_timeout")
        )
        return _json(200, {"messages": [asdict(message) for message in received]})

    async def delete(self, request: Request) -> Response:
        deleted = await self._queues.delete(request.params["name"], request.params["receipt"])
        return _json(200, {"deleted": deleted})

    async def purge(self, request: Request) -> Response:
        return _json(200, {"purged": await self._queues.purge(request.params["name"])})


def _fields(
    request: Request, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """The request's JSON object, holding only ``allowed`` keys and every ``required`` one."""
    parsed = json_object(request)
    for key in parsed:
        if key not in allowed:
            raise InvalidParameterValue(
                f"unknown field {key!r}; this request takes: {', '.join(allowed)}"
            )
    for key in required:
        if key not in parsed:
            raise InvalidParameterValue(f"field {key!r} is required")
    return parsed


def _json(status: int, body: object) -> Response:
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
    return Response(status, json.dumps(body).encode(), headers)
