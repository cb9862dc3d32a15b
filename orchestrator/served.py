"""A function as `lrun serve` serves it: its ``$LATEST``, its published versions and its aliases,
with the provisioned-concurrency settings of each. Plain values and pure decisions; the service
(``orchestrator.service``) owns them and starts environments for them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from orchestrator.manifest import FunctionSpec
from orchestrator.pool import LATEST

# The alias lrun publishes a manifest function's versions under for its provisioned_concurrency
# (the name SAM's examples give AutoPublishAlias).
MANIFEST_ALIAS = "live"
WEIGHT_PARTS = 1_000_000  # an alias's weights are counted in millionths: exact, no float drift


@dataclass
class VersionState:
    """One version as served: what its environments run, and how many are kept provisioned."""

    spec: FunctionSpec
    revision: str  # digest of configuration and code: environments of another are drained
    provisioned: int = 0  # environments kept initialised: its own setting and its aliases'
    provision_failure: str | None = None  # why the last provisioned environment failed
    provision_retry_at: float = 0.0  # no new provisioned environment before this (epoch)


@dataclass(frozen=True)
class Alias:
    """Where an alias sends invocations: ``version``, but ``weights``' share to another."""

    version: str
    weights: tuple[tuple[str, float], ...] = ()  # (version, share in [0, 1]); at most one

    def versions(self) -> tuple[str, ...]:
        return (self.version, *(v for v, _ in self.weights))


@dataclass(frozen=True)
class Provisioned:
    """A provisioned-concurrency setting of a version or an alias."""

    requested: int
    modified: float  # epoch seconds


@dataclass(frozen=True)
class ProvisionedStatus:
    requested: int
    ready: int
    modified: float
    failure: str | None  # why a provisioned environment of it failed lately


@dataclass
class FunctionState:
    """A function as served: its ``$LATEST``, its published versions and aliases, and settings
    changed through the API."""

    latest: VersionState
    reserved: int | None
    modified_at: float = 0.0  # when $LATEST last changed (epoch seconds)
    published: dict[str, VersionState] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    provisioned: dict[str, Provisioned] = field(default_factory=dict)  # by version or alias
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    durations_ms: list[float] = field(default_factory=list)
    code_size: tuple[str, int] | None = None  # (revision, bytes) as last measured
    # Set while an edit to the code is being looked at: invocations wait for it, so none runs
    # code older than a save that came before it.
    changing: asyncio.Future[None] | None = None

    @property
    def spec(self) -> FunctionSpec:
        """``$LATEST``'s spec."""
        return self.latest.spec

    @property
    def revision(self) -> str:
        return self.latest.revision

    def version(self, version: str) -> VersionState | None:
        """``$LATEST`` or a published version (None if there is no such version)."""
        return self.latest if version == LATEST else self.published.get(version)

    def versions(self) -> list[tuple[str, VersionState]]:
        return [(LATEST, self.latest), *self.published.items()]

    def aliases_of(self, version: str) -> tuple[str, ...]:
        """The aliases that send invocations (some or all) to ``version``."""
        found = (a for a, target in self.aliases.items() if version in target.versions())
        return tuple(sorted(found))

    def shares(self, qualifier: str, requested: int) -> list[tuple[str, int]]:
        """How ``requested`` provisioned environments of ``qualifier`` split over versions: an
        alias's go to the versions it points to, by their weights (rounded; the rest to its
        main version)."""
        alias = self.aliases.get(qualifier)
        if alias is None:
            return [(qualifier, requested)]
        split = [(v, round(requested * w)) for v, w in alias.weights]
        return [(alias.version, requested - sum(n for _, n in split)), *split]


def pick(alias: Alias, credit: int) -> tuple[str, int]:
    """The version one invocation of a weighted alias runs, and the alias's credit after it.

    The split is exact, not drawn at random as Lambda draws it: the credit grows by the second
    version's weight with every invocation and the second version runs whenever it reaches one
    whole, so over any run of invocations its count is within one of its share. A local test of
    a 90/10 alias is then meaningful at any number of invocations."""
    other, weight = alias.weights[0]
    credit += round(weight * WEIGHT_PARTS)
    if credit >= WEIGHT_PARTS:
        return other, credit - WEIGHT_PARTS
    return alias.version, credit
