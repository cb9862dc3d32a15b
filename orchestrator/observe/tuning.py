"""`lrun tune`'s figures: a function's warm durations at several memory sizes, their cost per
million invocations, the cheapest size within a latency bound, and a plot for the terminal.

CPU follows memory in lrun as on Lambda (1,769 MB = one vCPU, DESIGN D4), so the curve is the
function's own: a CPU-bound handler gets faster with memory until the host's cores run out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.observe.prices import Prices, gb_seconds

DEFAULT_SIZES = (128, 256, 512, 1024, 1769, 3008)
BAR = 30  # characters of the longest bar


@dataclass(frozen=True)
class TuneRow:
    memory_mb: int
    durations_ms: tuple[float, ...]  # warm invocations only
    init_ms: float | None
    errors: int

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.durations_ms) if self.durations_ms else math.nan

    @property
    def p90_ms(self) -> float:
        if not self.durations_ms:
            return math.nan
        ordered = sorted(self.durations_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]

    @property
    def billed_ms(self) -> float:
        """Mean billed milliseconds of a warm invocation (each rounded up, as Lambda bills)."""
        if not self.durations_ms:
            return math.nan
        return statistics.fmean(math.ceil(d) for d in self.durations_ms)

    def cost_per_million(self, prices: Prices, architecture: str) -> float:
        gbs = gb_seconds(self.memory_mb, 1) * self.billed_ms  # GB-s of one invocation
        return prices.cost(1_000_000, gbs * 1_000_000, architecture)


def cheapest(
    rows: Sequence[TuneRow], prices: Prices, architecture: str, max_ms: float | None
) -> TuneRow | None:
    """The size with the lowest cost per million among those without errors whose p50 is
    within ``max_ms`` (any, without a bound); None if none is."""
    fitting = [
        r
        for r in rows
        if r.durations_ms and not r.errors and (max_ms is None or r.p50_ms <= max_ms)
    ]
    return min(
        fitting, key=lambda r: (r.cost_per_million(prices, architecture), r.p50_ms), default=None
    )


def plot(rows: Sequence[TuneRow], prices: Prices, architecture: str) -> list[str]:
    """Two bar charts, one line per size: p50 duration and cost per million."""
    measured = [r for r in rows if r.durations_ms]
    if not measured:
        return []
    longest = max(r.p50_ms for r in measured) or 1.0
    dearest = max(r.cost_per_million(prices, architecture) for r in measured) or 1.0
    lines = ["p50 duration                                   cost per million"]
    for row in measured:
        cost = row.cost_per_million(prices, architecture)
        left = "█" * max(1, round(BAR * row.p50_ms / longest))
        right = "█" * max(1, round(BAR * cost / dearest))
        lines.append(
            f"{row.memory_mb:>6} MB {left:<{BAR}} {row.p50_ms:>8.1f} ms  {right:<{BAR}} ${cost:.4f}"
        )
    return lines
