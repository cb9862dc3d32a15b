"""The warm pool's state and decisions, pure: no engine, no threads, no clock (DESIGN D1).

The pool knows every execution environment by id, which function and configuration it belongs
to, whether it is on-demand or provisioned, and whether it is initialising, idle or busy. Asked
for an environment, it answers with a decision as data (reuse this one, start a new one, or
throttle with Lambda's reason); the caller does the work and reports back. Time comes in as
``now`` on every call, so tests drive it with plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
HOST_LIMIT = "ConcurrentInvocationLimitExceeded"


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


@dataclass(frozen=True)
class FunctionLimits:
    """What the pool needs to know of a function: its current configuration and concurrency."""

    name: str
    config: str
    reserved: int | None = None  # None: unreserved
    provisioned: int = 0


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
        slot.id, slot.function, slot.config, slot.kind, phase, since, slot.created, invocations
    )


class Pool:
    def __init__(self, host_limit: int) -> None:
        self.host_limit = host_limit
        self._slots: dict[str, Slot] = {}
        self._functions: dict[str, FunctionLimits] = {}
        # Indexes kept in step with _slots by _put/_drop, so an acquire costs O(1), not O(n):
        # idle ids by function in release order (dicts keep insertion order), and counters.
        self._idle: dict[tuple[str, Kind], dict[str, None]] = {}
        self._busy: dict[str, int] = {}
        self._busy_total = 0

    def _put(self, slot: Slot) -> None:
        self._drop(slot.id)
        self._slots[slot.id] = slot
        if slot.phase is Phase.IDLE:
            self._idle.setdefault((slot.function, slot.kind), {})[slot.id] = None
        if slot.phase is Phase.BUSY or slot.serving:
            self._busy[slot.function] = self._busy.get(slot.function, 0) + 1
            self._busy_total += 1

    def _drop(self, slot_id: str) -> Slot | None:
        slot = self._slots.pop(slot_id, None)
        if slot is not None:
            if slot.phase is Phase.IDLE:
                self._idle.get((slot.function, slot.kind), {}).pop(slot.id, None)
            if slot.phase is Phase.BUSY or slot.serving:
                self._busy[slot.function] -= 1
                self._busy_total -= 1
        return slot

    # Configuration

    def configure(self, limits: Iterable[FunctionLimits]) -> list[str]:
        """Take the functions' current limits; returns idle environments now out of date, which
        the caller stops (busy ones are retired when they are released)."""
        self._functions = {f.name: f for f in limits}
        stale = [
            s.id for s in self._slots.values() if s.phase is Phase.IDLE and not self._current(s)
        ]
        for slot_id in stale:
            self._drop(slot_id)
        return stale

    def limits(self, function: str) -> FunctionLimits | None:
        return self._functions.get(function)

    def _current(self, slot: Slot) -> bool:
        limits = self._functions.get(slot.function)
        return limits is not None and limits.config == slot.config

    # Invocations

    def in_flight(self, function: str | None = None) -> int:
        """Invocations running or waiting for a new environment (of one function, or all)."""
        if function is None:
            return self._busy_total
        return self._busy.get(function, 0)

    def acquire(self, function: str, now: float, new_id: str) -> Decision:
        """An environment for one invocation of ``function``: an idle one of its current
        configuration (provisioned first, then the most recently used), a new one, or a
        throttle. ``new_id`` names the environment if one must be started."""
        limits = self._functions[function]
        if limits.reserved is not None and self._busy.get(function, 0) >= limits.reserved:
            return Throttle(RESERVED_LIMIT)
        if self._busy_total >= self.host_limit:
            return Throttle(HOST_LIMIT)
        for kind in (Kind.PROVISIONED, Kind.ON_DEMAND):
            idle = self._idle.get((function, kind))
            while idle:
                slot = self._slots[next(reversed(idle))]
                if slot.config != limits.config:  # out of date: never reused
                    self._drop(slot.id)
                    continue
                self._put(_moved(slot, Phase.BUSY, now, slot.invocations + 1))
                return Reuse(slot.id)
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
            )
        )
        return Create(new_id)

    def started(self, slot_id: str, now: float) -> None:
        """A new environment finished its init: it serves its invocation, or waits for work."""
        slot = self._slots.get(slot_id)
        if slot is not None and slot.phase is Phase.INITIALISING:
            phase = Phase.BUSY if slot.serving else Phase.IDLE
            self._put(_moved(slot, phase, now, slot.invocations))

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
                if s.function == limits.name and s.kind is Kind.PROVISIONED and self._current(s)
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
                )
                self._put(slot)
                created.append(slot)
        return created

    def surplus_provisioned(self) -> list[str]:
        """Idle provisioned environments to stop: out of date ones, and current ones beyond a
        function's (lowered) provisioned setting."""
        surplus = [
            s.id
            for s in self._slots.values()
            if s.kind is Kind.PROVISIONED and s.phase is Phase.IDLE and not self._current(s)
        ]
        for limits in self._functions.values():
            current = [
                s
                for s in self._slots.values()
                if s.function == limits.name and s.kind is Kind.PROVISIONED and self._current(s)
            ]
            extra = len(current) - limits.provisioned
            idle = [s.id for s in current if s.phase is Phase.IDLE]
            surplus.extend(idle[: max(0, extra)])
        for slot_id in surplus:
            self._drop(slot_id)
        return surplus

    def slots(self) -> list[Slot]:
        return sorted(self._slots.values(), key=lambda s: (s.function, s.created, s.id))

    def get(self, slot_id: str) -> Slot | None:
        return self._slots.get(slot_id)
