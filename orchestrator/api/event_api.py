"""lrun's own route for seeing asynchronous invocations: ``GET /lrun/events``."""

from __future__ import annotations

import dataclasses

from orchestrator.api.lambda_api import json_response
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.queues import Queues
from orchestrator.http_server import Request, Response, Router


def add_event_routes(router: Router, events: EventQueue, queues: Queues) -> None:
    async def stats(request: Request) -> Response:
        depths = {q.name: q.depth + q.in_flight for q in await queues.list()}
        rows = await events.stats(depths.get)
        return json_response(200, [dataclasses.asdict(row) for row in rows])

    router.add("GET", "/lrun/events", stats)
