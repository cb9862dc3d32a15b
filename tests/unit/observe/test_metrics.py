"""Lambda's metrics counted from finished invocations, rendered in Prometheus' text format and
parsed back by prometheus_client's parser; costs from the price table; the series bound."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.events.event_queue import AsyncFigures
from orchestrator.observe.metrics import Metrics, render
from orchestrator.observe.prices import PRICE_TABLE_DATE, prices_for
from orchestrator.sandbox.invocation import InvocationResult, Report


def result(
    duration_ms: float,
    version: str = "$LATEST",
    init_ms: float | None = None,
    error: bool = False,
    memory: int = 1024,
) -> InvocationResult:
    report = Report("r", duration_ms, memory, 60, init_ms)
    return InvocationResult("r", b"{}", "Unhandled" if error else None, version, "", report)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def labels(function: str, version: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"function_name": function, "version": version, **more}.items()))


def test_metrics_parse_as_prometheus_text_with_lambdas_figures() -> None:
    metrics = Metrics(prices_for("us-east-1"), "x86_64")
    metrics.observe(
        [
            ("fn", result(12.0, init_ms=300.0), None, "s"),
            ("fn", result(3.2), None, "s"),
            ("fn", result(40.0, error=True), None, "s"),
            ("fn", result(7.0, version="2"), None, "s"),
        ]
    )
    throttles = {("fn", "$LATEST"): 3}
    gauges = [("fn", "$LATEST", 2, 1, 2)]
    figures = {"fn": AsyncFigures(received=5, dropped=1, dead_letter_errors=1, attempts=4)}
    found = samples(render(metrics, throttles, gauges, figures))
    latest = labels("fn", "$LATEST")
    assert found[("lambda_invocations_total", latest)] == 3
    assert found[("lambda_invocations_total", labels("fn", "2"))] == 1
    assert found[("lambda_errors_total", latest)] == 1
    assert found[("lambda_cold_starts_total", latest)] == 1
    assert found[("lambda_throttles_total", latest)] == 3
    assert found[("lambda_concurrent_executions", latest)] == 2
    assert found[("lambda_provisioned_concurrency_utilization", latest)] == 0.5
    assert found[("lambda_duration_milliseconds_count", latest)] == 3
    assert found[("lambda_duration_milliseconds_bucket", labels("fn", "$LATEST", le="5.0"))] == 1
    assert found[("lambda_duration_milliseconds_bucket", labels("fn", "$LATEST", le="+Inf"))] == 3
    assert found[("lambda_init_duration_milliseconds_sum", latest)] == 300.0
    assert found[("lambda_async_events_dropped_total", (("function_name", "fn"),))] == 1
    assert found[("lambda_dead_letter_errors_total", (("function_name", "fn"),))] == 1
    # Billed: ceil(duration + init): 312 + 4 + 40 ms at 1 GB.
    assert found[("lambda_billed_duration_milliseconds_total", latest)] == 356
    x86 = found[("lambda_cost_usd_total", labels("fn", "$LATEST", architecture="x86_64"))]
    assert abs(x86 - (3 * 0.20 / 1e6 + 0.356 * 0.0000166667)) < 1e-12
    arm = found[("lambda_cost_usd_total", labels("fn", "$LATEST", architecture="arm64"))]
    assert arm < x86


def test_cost_since_a_moment_counts_only_what_came_after() -> None:
    metrics = Metrics(prices_for("eu-west-1"), "arm64")
    metrics.started -= 3600
    metrics.observe([("fn", result(100.0), None, "s")])
    totals = metrics.totals_since(None)["fn"]
    assert totals["invocations"] == 1 and totals["billed_ms"] == 100
    assert metrics.totals_since(time.time() + 120) == {"fn": {
        "invocations": 0, "errors": 0, "billed_ms": 0, "gb_seconds": 0.0,
        "cost_x86_64": 0.0, "cost_arm64": 0.0,
    }}  # fmt: skip
    assert PRICE_TABLE_DATE
    assert prices_for("ap-south-2").region == "us-east-1 (for ap-south-2)"


def test_attack_versions_without_end_keep_series_bounded() -> None:
    metrics = Metrics(prices_for("us-east-1"), "x86_64", max_series=50)
    metrics.observe([("fn", result(1.0, version=str(v)), None, "s") for v in range(1, 2001)])
    assert len(metrics.series) == 50
    assert metrics.dropped == 1950
    found = samples(render(metrics, {}, [], {}))
    assert found[("lrun_metrics_dropped_invocations_total", ())] == 1950
    assert sum(1 for name, _ in found if name == "lambda_invocations_total") == 50
