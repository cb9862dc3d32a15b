"""``GET /metrics`` (Prometheus' text format) and ``GET /lrun/cost`` over ``observe.metrics``,
with the gauges read from the pool and the asynchronous figures from the event queue when
asked. Behind the Lambda API's access checks like every other route."""

from __future__ import annotations

import json
from collections.abc import Iterator

from orchestrator.events.event_queue import EventQueue
from orchestrator.http_server import Request, Response, Router
from orchestrator.observe.metrics import Metrics, render
from orchestrator.observe.prices import PRICE_SOURCE, PRICE_TABLE_DATE
from orchestrator.pool import Kind, Phase
from orchestrator.service import Service

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_SINCE_S = 14 * 24 * 3600.0


def add_metrics_routes(
    router: Router, metrics: Metrics, service: Service, events: EventQueue
) -> None:
    async def prometheus(request: Request) -> Response:
        text = render(metrics, service.throttled, _gauges(service), events.figures)
        return Response(200, text.encode(), {"Content-Type": PROMETHEUS_TYPE})

    async def cost(request: Request) -> Response:
        since_text = request.query.get("since")
        since = None
        if since_text is not None:
            try:
                since = float(since_text)
            except ValueError:
                since = None
        body = {
            "functions": metrics.totals_since(since),
            "region": metrics.prices.region,
            "architecture": metrics.architecture,
            "price_table_date": PRICE_TABLE_DATE,
            "price_source": PRICE_SOURCE,
            "per_million_requests": metrics.prices.per_million_requests,
            "per_gb_second": {
                "x86_64": metrics.prices.per_gb_second_x86,
                "arm64": metrics.prices.per_gb_second_arm,
            },
            "since": since if since is not None else metrics.started,
        }
        return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    router.add("GET", "/metrics", prometheus)
    router.add("GET", "/lrun/cost", cost)


def _gauges(service: Service) -> Iterator[tuple[str, str, int, int, int]]:
    """(function, version, busy, busy provisioned, provisioned) for every version with
    environments."""
    found: dict[tuple[str, str], list[int]] = {}
    for slot in service.pool.slots():
        row = found.setdefault((slot.function, slot.version), [0, 0, 0])
        is_provisioned = int(slot.kind is Kind.PROVISIONED)
        is_busy = int(slot.phase is Phase.BUSY)
        row[0] += is_busy
        row[1] += is_busy * is_provisioned
        row[2] += is_provisioned
    for (function, version), (busy, busy_provisioned, provisioned) in sorted(found.items()):
        yield function, version, busy, busy_provisioned, provisioned
