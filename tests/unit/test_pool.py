"""Unit tests for orchestrator.pool: the pure warm-pool core, driven with plain numbers for time."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orchestrator.pool import (
    HOST_LIMIT,
    RESERVED_LIMIT,
    Create,
    FunctionLimits,
    Kind,
    Phase,
    Pool,
    Reuse,
    Slot,
    Throttle,
)

INIT = Phase.INITIALISING
IDLE = Phase.IDLE
BUSY = Phase.BUSY


def make_pool(*limits: FunctionLimits, host_limit: int = 10) -> Pool:
    pool = Pool(host_limit)
    assert pool.configure(limits) == []
    return pool


def on_demand(
    slot_id: str,
    phase: Phase,
    since: float,
    created: float,
    invocations: int = 1,
    serving: bool = False,
    function: str = "f",
    config: str = "v1",
) -> Slot:
    return Slot(
        slot_id, function, config, Kind.ON_DEMAND, phase, since, created, invocations, serving
    )


def provisioned(
    slot_id: str,
    phase: Phase,
    since: float,
    created: float,
    invocations: int = 0,
    function: str = "f",
    config: str = "v1",
) -> Slot:
    return Slot(slot_id, function, config, Kind.PROVISIONED, phase, since, created, invocations)


def warm(pool: Pool, slot_id: str, now: float, function: str = "f") -> None:
    """Create an on-demand environment, finish its init and release it at ``now``."""
    assert pool.acquire(function, now, slot_id) == Create(slot_id)
    pool.started(slot_id, now)
    assert pool.release(slot_id, now) is True


def warm_provisioned(pool: Pool, ids: list[str], now: float) -> None:
    """Provision ``ids`` (exactly the missing slots) and finish their init, one per tick."""
    assert [s.id for s in pool.provision(now, ids)] == ids
    for i, slot_id in enumerate(ids):
        pool.started(slot_id, now + i)


def ids(pool: Pool) -> list[str]:
    return [s.id for s in pool.slots()]


def phases(pool: Pool) -> dict[str, Phase]:
    return {s.id: s.phase for s in pool.slots()}


# Warm reuse and scale-out


def test_create_then_start_then_release_then_reuse_the_same_environment() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))

    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.slots() == [on_demand("e1", INIT, 0, 0, serving=True)]
    assert pool.in_flight() == 1
    assert pool.in_flight("f") == 1

    pool.started("e1", 1)
    assert pool.slots() == [on_demand("e1", BUSY, 1, 0)]
    assert pool.in_flight() == 1

    assert pool.release("e1", 2) is True
    assert pool.slots() == [on_demand("e1", IDLE, 2, 0)]
    assert pool.in_flight() == 0

    assert pool.acquire("f", 3, "e2") == Reuse("e1")
    assert pool.slots() == [on_demand("e1", BUSY, 3, 0, invocations=2)]
    assert pool.get("e2") is None
    assert pool.in_flight("f") == 1

    assert pool.release("e1", 4) is True
    assert pool.acquire("f", 5, "e3") == Reuse("e1")
    assert pool.get("e1") == on_demand("e1", BUSY, 5, 0, invocations=3)


@pytest.mark.parametrize("n", [1, 2, 5], ids=lambda n: f"{n}-concurrent")
def test_concurrent_acquires_each_create_a_new_environment(n: int) -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    new = [f"e{i}" for i in range(1, n + 1)]

    assert [pool.acquire("f", i, e) for i, e in enumerate(new)] == [Create(e) for e in new]
    assert pool.slots() == [on_demand(e, INIT, i, i, serving=True) for i, e in enumerate(new)]
    assert pool.in_flight() == n

    for e in new:
        pool.started(e, 10)
    assert pool.acquire("f", 11, "extra") == Create("extra")
    assert pool.in_flight("f") == n + 1


@pytest.mark.parametrize(
    "release_order",
    [("e1", "e2", "e3"), ("e3", "e1", "e2"), ("e2", "e3", "e1")],
    ids=lambda order: "-".join(order),
)
def test_idle_on_demand_environments_are_reused_most_recently_released_first(
    release_order: tuple[str, ...],
) -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    for e in ("e1", "e2", "e3"):
        assert pool.acquire("f", 0, e) == Create(e)
        pool.started(e, 1)
    for t, e in enumerate(release_order, start=10):
        assert pool.release(e, t) is True

    decisions = [pool.acquire("f", 20, "new") for _ in release_order]

    assert decisions == [Reuse(e) for e in reversed(release_order)]
    assert pool.get("new") is None


def test_lifo_reuse_lets_the_other_idle_environments_expire() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    for e in ("e1", "e2", "e3"):
        assert pool.acquire("f", 0, e) == Create(e)
        pool.started(e, 1)
    assert pool.release("e1", 10) is True
    assert pool.release("e2", 11) is True
    assert pool.release("e3", 12) is True

    # A trickle of one invocation at a time keeps only the most recent environment warm.
    for t in (13, 15, 17):
        assert pool.acquire("f", t, "new") == Reuse("e3")
        assert pool.release("e3", t + 1) is True

    assert pool.expired(18, 5) == ["e1", "e2"]
    assert pool.slots() == [on_demand("e3", IDLE, 18, 0, invocations=4)]


# Provisioned concurrency


def test_provisioned_environment_is_preferred_over_a_more_recent_on_demand_one() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=1))
    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.provision(0, ["p1"]) == [provisioned("p1", INIT, 0, 0)]
    pool.started("p1", 1)
    assert pool.get("p1") == provisioned("p1", IDLE, 1, 0)
    pool.started("e1", 2)
    assert pool.release("e1", 5) is True  # idle more recently than p1

    assert pool.acquire("f", 6, "new") == Reuse("p1")
    assert pool.get("p1") == provisioned("p1", BUSY, 6, 0, invocations=1)
    assert pool.acquire("f", 7, "new") == Reuse("e1")
    assert pool.get("new") is None


def test_when_provisioned_environments_are_busy_the_next_invocation_spills_to_on_demand() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)  # p1 idle since 0, p2 since 1

    decisions = [pool.acquire("f", 5, "e1") for _ in range(3)]

    assert decisions == [Reuse("p2"), Reuse("p1"), Create("e1")]
    assert pool.in_flight("f") == 3
    assert pool.slots() == [
        provisioned("p1", BUSY, 5, 0, invocations=1),
        provisioned("p2", BUSY, 5, 0, invocations=1),
        on_demand("e1", INIT, 5, 5, serving=True),
    ]


def test_initialising_provisioned_slots_are_not_in_flight_and_are_not_handed_out() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2), host_limit=1)
    pool.provision(0, ["p1", "p2"])

    assert pool.in_flight() == 0
    assert pool.in_flight("f") == 0
    # The host limit is not reached by slots still initialising.
    assert pool.acquire("f", 1, "e1") == Create("e1")
    assert pool.in_flight("f") == 1


def test_busy_provisioned_environments_count_against_reserved_concurrency() -> None:
    pool = make_pool(FunctionLimits("f", "v1", reserved=2, provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)
    assert pool.in_flight("f") == 0

    assert pool.acquire("f", 5, "e1") == Reuse("p2")
    assert pool.acquire("f", 5, "e1") == Reuse("p1")
    assert pool.in_flight("f") == 2
    assert pool.acquire("f", 5, "e1") == Throttle(RESERVED_LIMIT)
    assert ids(pool) == ["p1", "p2"]


# Throttling


def test_reserved_concurrency_caps_in_flight_invocations_until_one_is_released() -> None:
    pool = make_pool(FunctionLimits("f", "v1", reserved=2))
    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.acquire("f", 0, "e2") == Create("e2")

    # Both still initialising: they count, so the third is throttled and nothing is recorded.
    assert pool.acquire("f", 0, "e3") == Throttle(
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    )
    assert ids(pool) == ["e1", "e2"]
    assert pool.in_flight() == 2

    pool.started("e1", 1)
    pool.started("e2", 1)
    assert pool.acquire("f", 2, "e3") == Throttle(RESERVED_LIMIT)

    assert pool.release("e1", 3) is True
    assert pool.acquire("f", 4, "e3") == Reuse("e1")
    assert pool.acquire("f", 4, "e3") == Throttle(RESERVED_LIMIT)
    assert ids(pool) == ["e1", "e2"]


def test_reserved_concurrency_counts_only_the_functions_own_invocations() -> None:
    pool = make_pool(FunctionLimits("f", "v1", reserved=1), FunctionLimits("g", "v1"))
    assert pool.acquire("g", 0, "g1") == Create("g1")
    assert pool.acquire("g", 0, "g2") == Create("g2")
    assert pool.acquire("f", 0, "f1") == Create("f1")
    assert pool.acquire("f", 0, "f2") == Throttle(RESERVED_LIMIT)
    assert pool.acquire("g", 0, "g3") == Create("g3")
    assert pool.in_flight("f") == 1
    assert pool.in_flight("g") == 3
    assert pool.in_flight() == 4


@pytest.mark.parametrize("with_idle_env", [False, True], ids=["empty-pool", "idle-env-present"])
def test_reserved_zero_throttles_every_invocation(with_idle_env: bool) -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    if with_idle_env:
        warm(pool, "e1", 0)
    assert pool.configure([FunctionLimits("f", "v1", reserved=0)]) == []
    before = pool.slots()

    for t in range(3):
        assert pool.acquire("f", t, "new") == Throttle(RESERVED_LIMIT)

    assert pool.slots() == before
    assert pool.in_flight() == 0


def test_host_limit_caps_in_flight_invocations_across_functions() -> None:
    pool = make_pool(FunctionLimits("f", "v1"), FunctionLimits("g", "v1"), host_limit=3)
    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.acquire("f", 0, "e2") == Create("e2")
    assert pool.acquire("g", 0, "e3") == Create("e3")

    assert pool.acquire("g", 1, "e4") == Throttle("ConcurrentInvocationLimitExceeded")
    assert pool.acquire("f", 1, "e4") == Throttle(HOST_LIMIT)
    assert ids(pool) == ["e1", "e2", "e3"]

    pool.started("e1", 2)
    assert pool.release("e1", 3) is True
    assert pool.acquire("g", 4, "e4") == Create("e4")
    assert pool.acquire("f", 4, "e5") == Throttle(HOST_LIMIT)  # e1 idle, but the host is full
    assert pool.in_flight() == 3


def test_host_limit_blocks_reuse_of_an_idle_environment() -> None:
    pool = make_pool(FunctionLimits("f", "v1"), FunctionLimits("g", "v1"), host_limit=1)
    warm(pool, "e1", 0)
    assert pool.acquire("g", 1, "g1") == Create("g1")

    assert pool.acquire("f", 2, "e2") == Throttle(HOST_LIMIT)
    assert pool.get("e1") == on_demand("e1", IDLE, 0, 0)


def test_reserved_limit_is_reported_before_the_host_limit() -> None:
    pool = make_pool(FunctionLimits("f", "v1", reserved=1), host_limit=1)
    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.acquire("f", 0, "e2") == Throttle(RESERVED_LIMIT)


# Expiry


@pytest.mark.parametrize(
    ("now", "expired"),
    [
        (14, []),
        (14.999, []),
        (15, ["e1"]),
        (1000, ["e1"]),
    ],
    ids=["well-before-ttl", "just-before-ttl", "exactly-ttl", "long-after-ttl"],
)
def test_idle_on_demand_environment_expires_at_ttl(now: float, expired: list[str]) -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    warm(pool, "e1", 10)

    assert pool.expired(now, 5) == expired
    assert ids(pool) == ([] if expired else ["e1"])


def test_expiry_ignores_busy_and_initialising_environments() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    assert pool.acquire("f", 0, "e1") == Create("e1")  # initialising
    assert pool.acquire("f", 0, "e2") == Create("e2")
    pool.started("e2", 0)  # busy
    warm(pool, "e3", 0)  # idle

    assert pool.expired(100, 5) == ["e3"]
    assert phases(pool) == {"e1": INIT, "e2": BUSY}


def test_expiry_counts_from_the_last_release_not_from_creation() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    warm(pool, "e1", 0)
    assert pool.acquire("f", 8, "new") == Reuse("e1")
    assert pool.release("e1", 9) is True

    assert pool.expired(13, 5) == []
    assert pool.expired(14, 5) == ["e1"]


def test_provisioned_environments_never_expire() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm(pool, "e1", 0)
    warm_provisioned(pool, ["p1", "p2"], 0)
    assert pool.acquire("f", 2, "new") == Reuse("p2")
    assert pool.release("p2", 3) is True

    assert pool.expired(10**9, 1) == ["e1"]
    assert pool.slots() == [
        provisioned("p1", IDLE, 0, 0),
        provisioned("p2", IDLE, 3, 0, invocations=1),
    ]


# Provisioning


@pytest.mark.parametrize("setting", [0, 1, 3], ids=lambda n: f"provisioned={n}")
def test_provision_creates_exactly_the_missing_number(setting: int) -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=setting))
    new = [f"p{i}" for i in range(1, setting + 1)]

    created = pool.provision(7, iter([*new, "unused1", "unused2"]))

    assert created == [provisioned(p, INIT, 7, 7) for p in new]
    assert pool.slots() == created
    assert pool.in_flight() == 0
    assert pool.provision(8, ["again"]) == []
    assert pool.get("again") is None


def test_provision_counts_busy_and_initialising_provisioned_but_not_on_demand() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=3))
    warm(pool, "e1", 0)  # on-demand: does not count
    pool.provision(1, ["p1", "p2", "p3"])
    pool.started("p1", 2)
    pool.started("p2", 3)
    assert pool.acquire("f", 4, "new") == Reuse("p2")  # p1 idle, p2 busy, p3 initialising

    assert pool.provision(5, ["p4"]) == []
    assert ids(pool) == ["e1", "p1", "p2", "p3"]


def test_provision_replaces_a_dead_provisioned_environment() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)

    pool.remove("p1")

    assert pool.provision(5, ["p3", "p4"]) == [provisioned("p3", INIT, 5, 5)]
    assert ids(pool) == ["p2", "p3"]


def test_provision_covers_each_function_separately() -> None:
    pool = make_pool(
        FunctionLimits("f", "v1", provisioned=1),
        FunctionLimits("g", "v9", provisioned=2),
        FunctionLimits("h", "v1"),
    )

    created = pool.provision(0, ["p1", "p2", "p3", "p4"])

    assert created == [
        provisioned("p1", INIT, 0, 0),
        provisioned("p2", INIT, 0, 0, function="g", config="v9"),
        provisioned("p3", INIT, 0, 0, function="g", config="v9"),
    ]


def test_provision_creates_new_environments_for_a_changed_config() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)

    assert pool.configure([FunctionLimits("f", "v2", provisioned=2)]) == ["p1", "p2"]
    assert pool.slots() == []

    assert pool.provision(5, ["p3", "p4"]) == [
        provisioned("p3", INIT, 5, 5, config="v2"),
        provisioned("p4", INIT, 5, 5, config="v2"),
    ]


def test_provision_does_not_count_busy_stale_provisioned_environments() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)
    assert pool.acquire("f", 2, "new") == Reuse("p2")

    assert pool.configure([FunctionLimits("f", "v2", provisioned=2)]) == ["p1"]
    assert [s.id for s in pool.provision(3, ["p3", "p4"])] == ["p3", "p4"]

    assert pool.release("p2", 4) is False
    assert ids(pool) == ["p3", "p4"]


@pytest.mark.parametrize(
    ("busy", "surplus_now", "surplus_after_release"),
    [
        ([], 2, 0),
        (["p3"], 2, 0),
        (["p3", "p2"], 1, 1),
        (["p3", "p2", "p1"], 0, 2),
    ],
    ids=["all-idle", "one-busy", "two-busy", "all-busy"],
)
def test_surplus_provisioned_removes_idle_ones_beyond_a_lowered_setting(
    busy: list[str], surplus_now: int, surplus_after_release: int
) -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=3))
    warm_provisioned(pool, ["p1", "p2", "p3"], 0)
    assert [pool.acquire("f", 5, "new") for _ in busy] == [Reuse(p) for p in busy]
    assert pool.surplus_provisioned() == []

    assert pool.configure([FunctionLimits("f", "v1", provisioned=1)]) == []
    removed = pool.surplus_provisioned()

    assert len(removed) == surplus_now
    assert set(removed).isdisjoint(busy)
    assert set(removed).isdisjoint(ids(pool))
    assert len(pool.slots()) == 3 - surplus_now
    assert pool.surplus_provisioned() == []

    for p in busy:
        assert pool.release(p, 6) is True
    assert len(pool.surplus_provisioned()) == surplus_after_release
    assert [s.kind for s in pool.slots()] == [Kind.PROVISIONED]
    assert pool.provision(7, ["p4"]) == []


def test_surplus_provisioned_leaves_on_demand_environments_alone() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=1))
    warm(pool, "e1", 0)
    warm_provisioned(pool, ["p1"], 0)
    assert pool.acquire("f", 2, "e2") == Reuse("p1")
    assert pool.acquire("f", 2, "e2") == Reuse("e1")
    assert pool.acquire("f", 2, "e2") == Create("e2")

    assert pool.configure([FunctionLimits("f", "v1", provisioned=0)]) == []
    assert pool.surplus_provisioned() == []  # p1 is busy
    assert pool.release("p1", 3) is True
    assert pool.surplus_provisioned() == ["p1"]
    assert ids(pool) == ["e1", "e2"]


def test_surplus_provisioned_ignores_stale_busy_environments_after_a_config_change() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=2))
    warm_provisioned(pool, ["p1", "p2"], 0)
    assert pool.acquire("f", 2, "x") == Reuse("p2")
    assert pool.acquire("f", 2, "x") == Reuse("p1")

    assert pool.configure([FunctionLimits("f", "v2", provisioned=2)]) == []  # both busy
    warm_provisioned(pool, ["p3", "p4"], 3)  # the two current ones the setting asks for

    assert pool.surplus_provisioned() == []
    assert pool.release("p1", 6) is False
    assert pool.release("p2", 6) is False
    assert pool.slots() == [
        provisioned("p3", IDLE, 3, 3, config="v2"),
        provisioned("p4", IDLE, 4, 3, config="v2"),
    ]


# Reconfiguration


def test_configure_with_a_changed_config_retires_stale_environments() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    for e in ("e1", "e2", "e3"):
        assert pool.acquire("f", 0, e) == Create(e)
    pool.started("e1", 1)
    pool.started("e2", 1)
    assert pool.release("e1", 1) is True  # e1 idle, e2 busy, e3 initialising for an invocation

    assert pool.configure([FunctionLimits("f", "v2")]) == ["e1"]
    assert ids(pool) == ["e2", "e3"]
    assert pool.in_flight("f") == 2

    assert pool.release("e2", 2) is False
    assert ids(pool) == ["e3"]

    assert pool.acquire("f", 3, "e4") == Create("e4")
    assert pool.get("e4") == on_demand("e4", INIT, 3, 3, serving=True, config="v2")

    pool.started("e3", 4)
    assert pool.get("e3") == on_demand("e3", BUSY, 4, 0)
    assert pool.release("e3", 5) is False
    assert pool.get("e3") is None


def test_stale_idle_environment_is_never_reused() -> None:
    pool = make_pool(FunctionLimits("f", "v1"), FunctionLimits("g", "v1"))
    warm(pool, "e1", 0)
    warm(pool, "g1", 0, function="g")

    assert pool.configure([FunctionLimits("f", "v2"), FunctionLimits("g", "v1")]) == ["e1"]

    assert pool.acquire("f", 1, "e2") == Create("e2")
    assert pool.acquire("g", 1, "g2") == Reuse("g1")


def test_configure_with_unchanged_config_keeps_everything() -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=1))
    warm(pool, "e1", 0)
    warm_provisioned(pool, ["p1"], 1)
    before = pool.slots()

    assert pool.configure([FunctionLimits("f", "v1", reserved=5, provisioned=1)]) == []
    assert pool.slots() == before
    assert pool.limits("f") == FunctionLimits("f", "v1", reserved=5, provisioned=1)


def test_configure_without_a_function_retires_its_idle_environments() -> None:
    pool = make_pool(FunctionLimits("f", "v1"), FunctionLimits("g", "v1"))
    warm(pool, "e1", 0)
    warm(pool, "g1", 0, function="g")
    assert pool.acquire("g", 1, "g2") == Reuse("g1")

    assert pool.configure([FunctionLimits("f", "v1")]) == []
    assert pool.limits("g") is None
    assert pool.release("g1", 2) is False
    assert ids(pool) == ["e1"]


# Lifecycle reports


@pytest.mark.parametrize(
    "report",
    [
        lambda pool: pool.started("ghost", 9),
        lambda pool: pool.release("ghost", 9),
        lambda pool: pool.remove("ghost"),
    ],
    ids=["started", "release", "remove"],
)
def test_reports_about_unknown_environments_are_harmless(report: Callable[[Pool], object]) -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    warm(pool, "e1", 0)
    assert pool.acquire("f", 1, "e2") == Reuse("e1")
    before = pool.slots()

    report(pool)
    report(pool)

    assert pool.slots() == before
    assert pool.get("ghost") is None
    assert pool.in_flight() == 1


def test_release_of_an_unknown_or_removed_environment_returns_false() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    assert pool.release("ghost", 0) is False

    assert pool.acquire("f", 0, "e1") == Create("e1")
    pool.started("e1", 1)
    pool.remove("e1")
    assert pool.release("e1", 2) is False
    pool.remove("e1")
    assert pool.slots() == []
    assert pool.in_flight() == 0


def test_removing_an_initialising_environment_frees_its_in_flight_count() -> None:
    pool = make_pool(FunctionLimits("f", "v1", reserved=1))
    assert pool.acquire("f", 0, "e1") == Create("e1")
    assert pool.acquire("f", 0, "e2") == Throttle(RESERVED_LIMIT)

    pool.remove("e1")  # its init failed

    assert pool.in_flight() == 0
    assert pool.acquire("f", 1, "e2") == Create("e2")


@pytest.mark.parametrize(
    ("make", "phase_after_start"),
    [
        (lambda pool: pool.acquire("f", 0, "x"), BUSY),
        (lambda pool: pool.provision(0, ["x"]), IDLE),
    ],
    ids=["serving-on-demand-becomes-busy", "provisioned-becomes-idle"],
)
def test_started_moves_an_initialising_environment_to_its_next_phase(
    make: Callable[[Pool], object], phase_after_start: Phase
) -> None:
    pool = make_pool(FunctionLimits("f", "v1", provisioned=1))
    make(pool)
    slot = pool.get("x")
    assert slot is not None
    assert slot.phase is INIT

    pool.started("x", 3)

    slot = pool.get("x")
    assert slot is not None
    assert (slot.phase, slot.since, slot.serving) == (phase_after_start, 3, False)
    assert pool.in_flight() == (1 if phase_after_start is BUSY else 0)


def test_started_is_ignored_for_an_environment_that_is_not_initialising() -> None:
    pool = make_pool(FunctionLimits("f", "v1"))
    assert pool.acquire("f", 0, "e1") == Create("e1")
    pool.started("e1", 1)
    pool.started("e1", 2)  # duplicate report while busy
    assert pool.get("e1") == on_demand("e1", BUSY, 1, 0)

    assert pool.release("e1", 3) is True
    pool.started("e1", 4)  # late report while idle
    assert pool.get("e1") == on_demand("e1", IDLE, 3, 0)


# Versions: each has its own environments; the function's reserved concurrency covers them all


def test_each_version_has_its_own_environments() -> None:
    pool = make_pool(FunctionLimits("f", "c0"), FunctionLimits("f", "c1", version="1"))
    warm(pool, "latest", 0)
    # An idle environment of $LATEST never serves version 1: it runs other code.
    assert pool.acquire("f", 1, "one", "1") == Create("one")
    pool.started("one", 1)
    assert pool.release("one", 2) is True
    assert pool.acquire("f", 3, "x") == Reuse("latest")
    assert pool.acquire("f", 3, "x", "1") == Reuse("one")
    assert [(s.id, s.version, s.config) for s in pool.slots()] == [
        ("latest", "$LATEST", "c0"),
        ("one", "1", "c1"),
    ]


def test_a_version_no_longer_served_has_its_idle_environments_stopped() -> None:
    pool = make_pool(FunctionLimits("f", "c0"), FunctionLimits("f", "c1", version="1"))
    assert pool.acquire("f", 0, "one", "1") == Create("one")
    pool.started("one", 0)
    assert pool.release("one", 0) is True
    assert pool.configure([FunctionLimits("f", "c0")]) == ["one"]
    assert pool.slots() == []


def test_reserved_concurrency_is_shared_by_every_version() -> None:
    pool = make_pool(
        FunctionLimits("f", "c0", reserved=2), FunctionLimits("f", "c1", reserved=2, version="1")
    )
    assert pool.acquire("f", 0, "a") == Create("a")
    assert pool.acquire("f", 0, "b", "1") == Create("b")
    assert pool.acquire("f", 0, "c", "1") == Throttle(RESERVED_LIMIT)
    assert pool.acquire("f", 0, "c") == Throttle(RESERVED_LIMIT)
    assert pool.in_flight("f") == 2


def test_provisioned_environments_are_kept_per_version() -> None:
    pool = make_pool(
        FunctionLimits("f", "c0"),
        FunctionLimits("f", "c1", provisioned=2, version="1"),
        FunctionLimits("f", "c2", provisioned=1, version="2"),
    )
    made = pool.provision(0, ["p1", "p2", "p3"])
    assert [(s.id, s.version, s.config, s.kind) for s in made] == [
        ("p1", "1", "c1", Kind.PROVISIONED),
        ("p2", "1", "c1", Kind.PROVISIONED),
        ("p3", "2", "c2", Kind.PROVISIONED),
    ]
    for slot_id in ("p1", "p2", "p3"):
        pool.started(slot_id, 1)
    # $LATEST has none: its invocation starts an on-demand environment.
    assert pool.acquire("f", 2, "e1") == Create("e1")
    assert pool.acquire("f", 2, "e2", "2") == Reuse("p3")
    assert pool.provision(3, ["p4"]) == []  # every version at its number
    pool.configure(
        [
            FunctionLimits("f", "c0"),
            FunctionLimits("f", "c1", provisioned=1, version="1"),
            FunctionLimits("f", "c2", provisioned=1, version="2"),
        ]
    )
    assert pool.surplus_provisioned() == ["p1"]  # version 1 lowered; version 2's p3 is busy


def test_reserved_concurrency_counts_the_provisioned_environments_of_every_version() -> None:
    # As on Lambda: provisioned environments are set aside from the function's reserved
    # concurrency, so with reserved == provisioned nothing else of the function may run.
    limits = [
        FunctionLimits("f", "c0", reserved=2),
        FunctionLimits("f", "c1", reserved=2, provisioned=2, version="1"),
    ]
    pool = make_pool(*limits)
    assert pool.acquire("f", 0, "e1") == Throttle(RESERVED_LIMIT)  # even before they exist
    warm_provisioned(pool, ["p1", "p2"], 0)
    assert pool.acquire("f", 5, "e1") == Throttle(RESERVED_LIMIT)
    assert pool.acquire("f", 5, "e1", "1") == Reuse("p2")
    assert pool.acquire("f", 5, "e1", "1") == Reuse("p1")
    assert pool.acquire("f", 5, "e1", "1") == Throttle(RESERVED_LIMIT)  # no spill-over room
    pool.configure(
        [
            FunctionLimits("f", "c0", reserved=3),
            FunctionLimits("f", "c1", reserved=3, provisioned=2, version="1"),
        ]
    )
    assert pool.acquire("f", 6, "e1", "1") == Create("e1")  # one on-demand beyond them
    assert pool.acquire("f", 6, "e2") == Throttle(RESERVED_LIMIT)
