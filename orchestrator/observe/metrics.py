"""Lambda's metrics for each function and version, counted behind the invocations.

The log book's writer hands every batch of finished invocations to ``Metrics.observe`` on the
event loop (``LogBook.on_batch``), a quarter second or so after they ended: so a warm invocation
pays for none of this (DESIGN D5; ``bench/metrics_overhead.py`` measures the server's CPU per
invocation with and without). Throttles are counted by the service where it refuses, and the
asynchronous figures by the event queue; gauges (concurrent executions, provisioned
utilisation) are read from the pool when asked.

Kept per (function, version): totals (invocations, errors, cold starts, durations as
histograms, billed milliseconds, GB-seconds, memory) and per-minute figures of the last
``MINUTES_KEPT`` minutes and per-hour ones of the last ``HOURS_KEPT`` hours, which answer
CloudWatch's statistics and ``lrun cost --since``. At most ``MAX_SERIES`` pairs are kept
(DESIGN D9: versions are made by callers); beyond it, invocations of new pairs are counted in
``dropped`` only.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.logbook import Record
from orchestrator.observe.prices import Prices, gb_seconds
from orchestrator.sandbox.invocation import InvocationResult

DURATION_BUCKETS_MS = (
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000,
)  # fmt: skip
MAX_SERIES = 500
MINUTES_KEPT = 180
HOURS_KEPT = 24 * 14


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_MS) + 1))
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(DURATION_BUCKETS_MS, value)] += 1
        self.total += value
        self.count += 1


@dataclass
class Period:
    """One minute's (or hour's) figures of one series, as CloudWatch's statistics need them."""

    start: int  # epoch seconds
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    duration_sum: float = 0.0
    duration_min: float = float("inf")
    duration_max: float = 0.0
    billed_ms: int = 0
    gb_seconds: float = 0.0

    def add(self, result: InvocationResult, gbs: float) -> None:
        duration = result.report.duration_ms
        self.invocations += 1
        self.errors += result.function_error is not None
        self.cold_starts += result.report.init_duration_ms is not None
        self.duration_sum += duration
        self.duration_min = min(self.duration_min, duration)
        self.duration_max = max(self.duration_max, duration)
        self.billed_ms += result.report.billed_duration_ms
        self.gb_seconds += gbs


@dataclass
class Series:
    function: str
    version: str
    memory_mb: int = 0
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    billed_ms: int = 0
    gb_seconds: float = 0.0
    max_memory_used_mb: int = 0  # of the latest invocation
    duration: Histogram = field(default_factory=Histogram)
    init_duration: Histogram = field(default_factory=Histogram)
    minutes: dict[int, Period] = field(default_factory=dict)
    hours: dict[int, Period] = field(default_factory=dict)

    def add(self, result: InvocationResult, now: float) -> None:
        report = result.report
        gbs = gb_seconds(report.memory_mb, report.billed_duration_ms)
        self.memory_mb = report.memory_mb
        self.invocations += 1
        self.errors += result.function_error is not None
        self.billed_ms += report.billed_duration_ms
        self.gb_seconds += gbs
        self.max_memory_used_mb = report.max_memory_used_mb
        self.duration.add(report.duration_ms)
        if report.init_duration_ms is not None:
            self.cold_starts += 1
            self.init_duration.add(report.init_duration_ms)
        for periods, size, kept in (
            (self.minutes, 60, MINUTES_KEPT),
            (self.hours, 3600, HOURS_KEPT),
        ):
            start = int(now) // size * size
            period = periods.get(start)
            if period is None:
                period = periods[start] = Period(start)
                while len(periods) > kept:
                    del periods[next(iter(periods))]  # the oldest: inserted first
            period.add(result, gbs)

    def periods(self, since: float, size: int) -> Iterator[Period]:
        source = self.minutes if size < 3600 else self.hours
        return (p for p in source.values() if p.start + size > since)


class Metrics:
    def __init__(self, prices: Prices, architecture: str, max_series: int = MAX_SERIES) -> None:
        self.prices = prices
        self.architecture = architecture  # the host's: what the functions really run on
        self.max_series = max_series
        self.series: dict[tuple[str, str], Series] = {}
        self.dropped = 0  # invocations of pairs beyond max_series
        self.started = time.time()

    def observe(self, records: list[Record]) -> None:
        """A ``LogBook.on_batch`` sink: count a batch of finished invocations."""
        now = time.time()
        for function, result, _spec, _stream in records:
            if not isinstance(result, InvocationResult):
                continue
            key = (function, result.executed_version)
            series = self.series.get(key)
            if series is None:
                if len(self.series) >= self.max_series:
                    self.dropped += 1
                    continue
                series = self.series[key] = Series(*key)
            series.add(result, now)

    def cost(self, series: Series, architecture: str | None = None) -> float:
        return self.prices.cost(
            series.invocations, series.gb_seconds, architecture or self.architecture
        )

    def totals_since(self, since: float | None) -> dict[str, dict[str, Any]]:
        """Per function: invocations, errors, billed ms, GB-seconds and cost on x86 and Arm,
        since ``since`` (epoch seconds; None: since the server started)."""
        found: dict[str, dict[str, Any]] = {}
        for series in self.series.values():
            if since is None or since <= self.started:
                requests, billed, gbs, errors = (
                    series.invocations, series.billed_ms, series.gb_seconds, series.errors,
                )  # fmt: skip
            else:
                size = 60 if time.time() - since <= MINUTES_KEPT * 60 else 3600
                periods = list(series.periods(since, size))
                requests = sum(p.invocations for p in periods)
                billed = sum(p.billed_ms for p in periods)
                gbs = sum(p.gb_seconds for p in periods)
                errors = sum(p.errors for p in periods)
            row = found.setdefault(
                series.function,
                {"invocations": 0, "errors": 0, "billed_ms": 0, "gb_seconds": 0.0},
            )
            row["invocations"] += requests
            row["errors"] += errors
            row["billed_ms"] += billed
            row["gb_seconds"] += gbs
        for row in found.values():
            for arch in ("x86_64", "arm64"):
                row[f"cost_{arch}"] = self.prices.cost(row["invocations"], row["gb_seconds"], arch)
        return found


# Prometheus' text format


def _labels(**values: str) -> str:
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in values.items()) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, labels: str, value: float, suffix: str = "") -> None:
        self.lines.append(f"{self.name}{suffix}{labels} {_number(value)}")


def render(
    metrics: Metrics,
    throttles: dict[tuple[str, str], int],
    gauges: Iterable[tuple[str, str, int, int, int]],
    async_figures: dict[str, Any],
) -> str:
    """/metrics: ``gauges`` are (function, version, busy, busy provisioned, provisioned)."""
    families: list[_Family] = []

    def family(name: str, kind: str, help_text: str) -> _Family:
        made = _Family(name, kind, help_text)
        families.append(made)
        return made

    invocations = family("lambda_invocations_total", "counter", "Invocations (Invocations).")
    errors = family("lambda_errors_total", "counter", "Invocations with a function error (Errors).")
    cold = family("lambda_cold_starts_total", "counter", "Invocations that started an environment.")
    duration = family("lambda_duration_milliseconds", "histogram", "Duration (REPORT's).")
    init = family("lambda_init_duration_milliseconds", "histogram", "Init Duration (cold starts).")
    memory = family(
        "lambda_max_memory_used_megabytes", "gauge", "Max Memory Used, latest invocation."
    )
    memory_size = family("lambda_memory_size_megabytes", "gauge", "Memory Size configured.")
    billed = family("lambda_billed_duration_milliseconds_total", "counter", "Billed Duration.")
    gbs = family("lambda_gb_seconds_total", "counter", "Memory (GB) x billed duration (s).")
    cost = family(
        "lambda_cost_usd_total",
        "counter",
        f"Requests and GB-seconds at Lambda's prices ({metrics.prices.region}).",
    )
    for series in sorted(metrics.series.values(), key=lambda s: (s.function, s.version)):
        labels = _labels(function_name=series.function, version=series.version)
        invocations.add(labels, series.invocations)
        errors.add(labels, series.errors)
        cold.add(labels, series.cold_starts)
        for histogram, target in ((series.duration, duration), (series.init_duration, init)):
            cumulative = 0
            for bound, count in zip(
                (*DURATION_BUCKETS_MS, float("inf")), histogram.counts, strict=True
            ):
                cumulative += count
                le = _labels(
                    function_name=series.function, version=series.version, le=_number(float(bound))
                )
                target.add(le, cumulative, "_bucket")
            target.add(labels, round(histogram.total, 3), "_sum")
            target.add(labels, histogram.count, "_count")
        memory.add(labels, series.max_memory_used_mb)
        memory_size.add(labels, series.memory_mb)
        billed.add(labels, series.billed_ms)
        gbs.add(labels, round(series.gb_seconds, 6))
        for arch in ("x86_64", "arm64"):
            cost.add(
                _labels(function_name=series.function, version=series.version, architecture=arch),
                round(metrics.cost(series, arch), 12),
            )
    throttled = family("lambda_throttles_total", "counter", "Invocations refused (Throttles).")
    for (function, version), count in sorted(throttles.items())[: metrics.max_series]:
        throttled.add(_labels(function_name=function, version=version), count)
    concurrent = family(
        "lambda_concurrent_executions", "gauge", "Invocations running now (ConcurrentExecutions)."
    )
    utilisation = family(
        "lambda_provisioned_concurrency_utilization",
        "gauge",
        "Busy provisioned environments / provisioned (ProvisionedConcurrencyUtilization).",
    )
    for function, version, busy, busy_provisioned, provisioned in gauges:
        labels = _labels(function_name=function, version=version)
        concurrent.add(labels, busy)
        if provisioned:
            utilisation.add(labels, round(busy_provisioned / provisioned, 4))
    async_families = {
        "received": family("lambda_async_events_received_total", "counter", "Events accepted."),
        "age_ms_max": family(
            "lambda_async_event_age_max_milliseconds", "gauge", "Oldest event age at an attempt."
        ),
        "age_ms_sum": family(
            "lambda_async_event_age_milliseconds_sum", "counter", "Event ages at attempts, summed."
        ),
        "attempts": family(
            "lambda_async_event_age_milliseconds_count", "counter", "Attempts (AsyncEventAge)."
        ),
        "dropped": family(
            "lambda_async_events_dropped_total", "counter", "Events discarded (AsyncEventsDropped)."
        ),
        "dead_letter_errors": family(
            "lambda_dead_letter_errors_total", "counter", "Dead-letter deliveries that failed."
        ),
        "destination_failures": family(
            "lambda_destination_delivery_failures_total", "counter", "Destinations that failed."
        ),
    }
    for function, figures in sorted(async_figures.items()):
        labels = _labels(function_name=function)
        for name, target in async_families.items():
            target.add(labels, getattr(figures, name))
    dropped = family(
        "lrun_metrics_dropped_invocations_total",
        "counter",
        f"Invocations of (function, version) pairs beyond the {metrics.max_series} kept.",
    )
    dropped.add("", metrics.dropped)
    return "\n".join(line for f in families for line in f.lines) + "\n"
