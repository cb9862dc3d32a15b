"""The warm pool's state and decisions, pure: no engine, no threads, no clock (DESIGN D1).

The pool knows every execution environment by id, which function, version and configuration
it belongs to, whether it is on-demand or provisioned, and whether it is initialising, idle or
busy. An environment runs exactly one version of a function (``$LATEST`` or a published one), so
each version has its own idle environments and its own provisioned ones; a function's reserved
concurrency is shared by all its versions and counts its provisioned environments, as on Lambda.
Asked for an environment, the pool answers with a decision as data (reuse this one, start a new
one, or throttle with Lambda's reason); the caller does the work and reports back. Time comes in
as ``now`` on every call, so tests drive it with plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
HOST_LIMIT = "ConcurrentInvocationLimitExceeded"
LATEST = "$LATEST"


class Kind(enum.Enum):
    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned-concurrency"


class Phase(enum.Enum):
    INITIALISING = "initialising"
    IDLE = "idle"
    BUSY = "busy"


@dataclass(frozen=True)
class Slot:
    """The pool's record of one environment."""

    id: str
    function: str
    config: str  # digest of the configuration and code it was started with
    kind: Kind
    phase: Phase
    since: float  # when it entered its phase
    created: float
    invocations: int = 0
    serving: bool = False  # initialising for an invocation that waits for it
    version: str = LATEST  # the version of the function it runs


@dataclass(frozen=True)
class FunctionLimits:
    """What the pool needs to know of one version of a function: its current configuration,
    the function's reserved concurrency (shared by all its versions) and how many environments
    of this version to keep provisioned."""

    name: str
    config: str
    reserved: int | None = None  # None: unreserved
    provisioned: int = 0
    version: str = LATEST

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)


@dataclass(frozen=True)
class Reuse:
    id: str


@dataclass(frozen=True)
class Create:
    id: str


@dataclass(frozen=True)
class Throttle:
    reason: str


Decision = Reuse | Create | Throttle


def _moved(slot: Slot, phase: Phase, since: float, invocations: int) -> Slot:
    """The slot in a new phase (no longer serving a start). Built directly: this is on every
    invocation's path, and ``dataclasses.replace`` costs several times more."""
    return Slot(
        slot.id,
        slot.function,
        slot.config,
        slot.kind,
        phase,
        since,
        slot.created,
        invocations,
        False,
        slot.version,
    )


class Pool:
    def __init__(self, host_limit: int) -> None:
        self.host_limit = host_limit
        self._slots: dict[str, Slot] = {}
        self._functions: dict[tuple[str, str], FunctionLimits] = {}  # by (function, version)
        self._provisioned: dict[str, int] = {}  # by function: its versions' provisioned, summed
        # Indexes kept in step with _slots by _put/_drop, so an acquire costs O(1), not O(n):
        # idle ids by version in release order (dicts keep insertion order), and counters.
        self._idle: dict[tuple[str, str, Kind], dict[str, None]] = {}
        self._busy: dict[str, int] = {}  # by function, every version and kind
        self._busy_on_demand: dict[str, int] = {}  # by function: what its reserved limit counts
        self._busy_total = 0

    def _put(self, slot: Slot) -> None:
        self._drop(slot.id)
        self._slots[slot.id] = slot
        if slot.phase is Phase.IDLE:
            self._idle.setdefault((slot.function, slot.version, slot.kind), {})[slot.id] = None
        if slot.phase is Phase.BUSY or slot.serving:
            self._busy[slot.function] = self._busy.get(slot.function, 0) + 1
            if slot.kind is Kind.ON_DEMAND:
                self._busy_on_demand[slot.function] = self._busy_on_demand.get(slot.function, 0) + 1
            self._busy_total += 1

    def _drop(self, slot_id: str) -> Slot | None:
        slot = self._slots.pop(slot_id, None)
        if slot is not None:
            if slot.phase is Phase.IDLE:
                self._idle.get((slot.function, slot.version, slot.kind), {}).pop(slot.id, None)
            if slot.phase is Phase.BUSY or slot.serving:
                self._busy[slot.function] -= 1
                if slot.kind is Kind.ON_DEMAND:
                    self._busy_on_demand[slot.function] -= 1
                self._busy_total -= 1
        return slot

    # Configuration

    def configure(self, limits: Iterable[FunctionLimits]) -> list[str]:
        """Take the current limits of every version served; returns idle environments now out
        of date (or of a version no longer served), which the caller stops (busy ones are
        retired when they are released)."""
        self._functions = {f.key: f for f in limits}
        self._provisioned = {}
        for f in self._functions.values():
            self._provisioned[f.name] = self._provisioned.get(f.name, 0) + f.provisioned
        stale = [
            s.id for s in self._slots.values() if s.phase is Phase.IDLE and not self._current(s)
        ]
        for slot_id in stale:
            self._drop(slot_id)
        return stale

    def limits(self, function: str, version: str = LATEST) -> FunctionLimits | None:
        return self._functions.get((function, version))

    def _current(self, slot: Slot) -> bool:
        limits = self._functions.get((slot.function, slot.version))
        return limits is not None and limits.config == slot.config

    # Invocations

    def in_flight(self, function: str | None = None) -> int:
        """Invocations running or waiting for a new environment (of one function, or all)."""
        if function is None:
            return self._busy_total
        return self._busy.get(function, 0)

    def acquire(self, function: str, now: float, new_id: str, version: str = LATEST) -> Decision:
        """An environment for one invocation of ``version`` of ``function``: an idle one of its
        current configuration (provisioned first, then the most recently used), a new one, or
        a throttle. ``new_id`` names the environment if one must be started.

        The function's reserved concurrency bounds its provisioned environments (all of them,
        idle or not, as Lambda sets them aside) plus its busy on-demand ones."""
        limits = self._functions[(function, version)]
        below_host_limit = self._busy_total < self.host_limit
        if below_host_limit:
            slot_id = self._take_idle(function, version, Kind.PROVISIONED, limits.config, now)
            if slot_id is not None:
                return Reuse(slot_id)
        if limits.reserved is not None and (
            self._busy_on_demand.get(function, 0) + self._provisioned.get(function, 0)
            >= limits.reserved
        ):
            return Throttle(RESERVED_LIMIT)
        if not below_host_limit:
            return Throttle(HOST_LIMIT)
        slot_id = self._take_idle(function, version, Kind.ON_DEMAND, limits.config, now)
        if slot_id is not None:
            return Reuse(slot_id)
        self._put(
            Slot(
                new_id,
                function,
                limits.config,
                Kind.ON_DEMAND,
                Phase.INITIALISING,
                now,
                now,
                invocations=1,
                serving=True,
                version=version,
            )
        )
        return Create(new_id)

    def _take_idle(
        self, function: str, version: str, kind: Kind, config: str, now: float
    ) -> str | None:
        """The most recently used idle environment of this kind, now busy; out of date ones
        met on the way are dropped (the caller's ``configure`` has them stopped)."""
        idle = self._idle.get((function, version, kind))
        while idle:
            slot = self._slots[next(reversed(idle))]
            if slot.config != config:  # out of date: never reused
                self._drop(slot.id)
                continue
            self._put(_moved(slot, Phase.BUSY, now, slot.invocations + 1))
            return slot.id
        return None

    def started(self, slot_id: str, now: float) -> bool:
        """A new environment finished its init: it serves its invocation, or waits for work.
        False if it is idle and out of date (its version changed or went while it started):
        it is dropped, and the caller stops it."""
        slot = self._slots.get(slot_id)
        if slot is not None and slot.phase is Phase.INITIALISING:
            if not slot.serving and not self._current(slot):
                self._drop(slot_id)
                return False
            phase = Phase.BUSY if slot.serving else Phase.IDLE
            self._put(_moved(slot, phase, now, slot.invocations))
        return True

    def release(self, slot_id: str, now: float) -> bool:
        """An invocation ended and its environment is healthy: True if it may be reused,
        False if it is out of date and the caller must stop it."""
        slot = self._slots.get(slot_id)
        if slot is None:
            return False
        if not self._current(slot):
            self._drop(slot_id)
            return False
        self._put(_moved(slot, Phase.IDLE, now, slot.invocations))
        return True

    def remove(self, slot_id: str) -> None:
        """The environment is gone (it died, timed out, or was stopped)."""
        self._drop(slot_id)

    # Housekeeping

    def expired(self, now: float, idle_ttl: float) -> list[str]:
        """On-demand environments idle for ``idle_ttl`` seconds: removed here, to be stopped."""
        old = [
            s.id
            for s in self._slots.values()
            if s.kind is Kind.ON_DEMAND and s.phase is Phase.IDLE and now - s.since >= idle_ttl
        ]
        for slot_id in old:
            self._drop(slot_id)
        return old

    def provision(self, now: float, new_ids: Iterable[str]) -> list[Slot]:
        """Provisioned environments to start so each function has its configured number of
        current ones; they are initialised before they take traffic."""
        ids = iter(new_ids)
        created = []
        for limits in self._functions.values():
            have = sum(
                1
                for s in self._slots.values()
                if (s.function, s.version) == limits.key
                and s.kind is Kind.PROVISIONED
                and self._current(s)
            )
            for _ in range(limits.provisioned - have):
                slot = Slot(
                    next(ids),
                    limits.name,
                    limits.config,
                    Kind.PROVISIONED,
                    Phase.INITIALISING,
                    now,
                    now,
                    version=limits.version,
                )
                self._put(slot)
                created.append(slot)
        return created

    def surplus_provisioned(self) -> list[str]:
        """Idle provisioned environments to stop: out of date ones, and current ones beyond a
        version's (lowered) provisioned setting."""
        surplus = [
            s.id
            for s in self._slots.values()
            if s.kind is Kind.PROVISIONED and s.phase is Phase.IDLE and not self._current(s)
        ]
        for limits in self._functions.values():
            current = [
                s
                for s in self._slots.values()
                if (s.function, s.version) == limits.key
                and s.kind is Kind.PROVISIONED
                and self._current(s)
            ]
            extra = len(current) - limits.provisioned
            idle = [s.id for s in current if s.phase is Phase.IDLE]
            surplus.extend(idle[: max(0, extra)])
        for slot_id in surplus:
            self._drop(slot_id)
        return surplus

    def slots(self) -> list[Slot]:
        return sorted(self._slots.values(), key=lambda s: (s.function, s.version, s.created, s.id))

    def get(self, slot_id: str) -> Slot | None:
        return self._slots.get(slot_id)
