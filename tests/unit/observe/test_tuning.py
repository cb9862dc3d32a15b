"""`lrun tune`'s figures: cost per million from warm durations, the cheapest size within a
latency bound, and the terminal plot."""

from __future__ import annotations

import math

from orchestrator.observe.prices import prices_for
from orchestrator.observe.tuning import TuneRow, cheapest, plot

PRICES = prices_for("us-east-1")
ROWS = [
    TuneRow(128, (400.2, 410.0, 390.5), 900.0, 0),
    TuneRow(512, (100.1, 101.0, 99.5), 600.0, 0),
    TuneRow(1769, (30.2, 29.9, 30.4), 400.0, 0),
    TuneRow(3008, (30.1, 30.0, 30.3), 380.0, 0),
]


def test_cost_per_million_is_requests_plus_billed_gb_seconds() -> None:
    row = ROWS[1]
    billed = (101 + 101 + 100) / 3  # each rounded up to the millisecond
    assert math.isclose(row.billed_ms, billed)
    expected = 0.20 + 1_000_000 * 0.5 * billed / 1000 * 0.0000166667
    assert math.isclose(row.cost_per_million(PRICES, "x86_64"), expected)
    assert row.cost_per_million(PRICES, "arm64") < expected


def test_cheapest_within_a_bound_and_without_one() -> None:
    # 3008 MB is no faster than 1769 MB here (the host's cores are used up), only dearer.
    costs = {r.memory_mb: r.cost_per_million(PRICES, "x86_64") for r in ROWS}
    best = cheapest(ROWS, PRICES, "x86_64", None)
    assert best is not None and best.memory_mb == min(costs, key=lambda m: costs[m])
    fast = cheapest(ROWS, PRICES, "x86_64", 50.0)
    assert fast is not None and fast.memory_mb == 1769
    assert cheapest(ROWS, PRICES, "x86_64", 10.0) is None
    failing = [TuneRow(128, (1.0,), None, 1), *ROWS[1:]]
    assert cheapest(failing, PRICES, "x86_64", None) is not None
    assert cheapest(failing, PRICES, "x86_64", None).memory_mb != 128  # type: ignore[union-attr]


def test_plot_has_a_bar_per_size_scaled_to_the_largest() -> None:
    lines = plot(ROWS, PRICES, "x86_64")
    assert len(lines) == 1 + len(ROWS)
    assert lines[1].startswith("   128 MB ") and lines[1].count("█") > lines[3].count("█")
    assert plot([TuneRow(128, (), None, 1)], PRICES, "x86_64") == []
