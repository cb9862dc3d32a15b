"""lrun's own route for seeing asynchronous invocations: ``GET /lrun/events``."""

from __future__ import annotations

import dataclasses

from orchestrator.api import json_response
from orchestrator.eventqueue import EventQueue
from orchestrator.http_server import Request, Response, Router
from orchestrator.queues import Queues


def add_event_routes(router: Router, events: EventQueue, queues: Queues) -> None:
    async def stats(request: Request) -> Response:
        depths = {q.name: q.depth + q.in_flight for q in await queues.list()}
        rows = await events.stats(depths.get)
        return json_response(200, [dataclasses.asdict(row) for row in rows])

    router.add("GET", "/lrun/events", stats)
