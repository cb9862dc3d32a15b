"""Lambda's public on-demand prices, to turn REPORT's billed durations into money.

Source: AWS's Lambda pricing page (aws.amazon.com/lambda/pricing), the first tier of each
architecture (the first 6 billion GB-seconds a month on x86, 7.5 billion on Arm): requests
$0.20 per million on both; duration $0.0000166667 per GB-second on x86_64 and $0.0000133334 on
arm64. These have been the prices of us-east-1, us-east-2, us-west-2 and eu-west-1 since Arm
functions were introduced (September 2021); recorded here on 2026-12-01 from copies of that
page (it cannot be fetched from this machine). Free tier and Savings Plans are left out: the
figures are what the invocations would be billed on top of them.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICE_TABLE_DATE = "2026-12-01"
PRICE_SOURCE = "https://aws.amazon.com/lambda/pricing/ (first tier, on-demand)"


@dataclass(frozen=True)
class Prices:
    region: str
    per_million_requests: float
    per_gb_second_x86: float
    per_gb_second_arm: float

    def per_gb_second(self, architecture: str) -> float:
        return self.per_gb_second_arm if architecture == "arm64" else self.per_gb_second_x86

    def cost(self, requests: int, gb_seconds: float, architecture: str) -> float:
        return requests * self.per_million_requests / 1_000_000 + gb_seconds * self.per_gb_second(
            architecture
        )


_SAME = (0.20, 0.0000166667, 0.0000133334)
TABLE = {
    region: Prices(region, *_SAME)
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")
}


def prices_for(region: str) -> Prices:
    """The region's prices; a region not in the table is priced as us-east-1 (and says so in
    its ``region``)."""
    return TABLE.get(region) or Prices(f"us-east-1 (for {region})", *_SAME)


def gb_seconds(memory_mb: int, billed_ms: int) -> float:
    return memory_mb / 1024 * billed_ms / 1000
