"""The conformance checker and the snapshot strategies it draws from.

The checker must pass a correct toy rule and fail (naming the check) on deliberately broken
ones; every registered policy must pass it.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from market.adl.base import ADLPolicy, Allocation, Snapshot, execute, water_fill
from market.adl.checker import (
    CHECKS,
    PolicyCheckError,
    PolicyCheckReport,
    check_adl_policy,
)
from market.adl.strategies import budgets, large_snapshot, lot_grid_capacity, snapshots
from market.errors import InputError

FAST = {"max_examples": 40, "large_n": 2_000, "raise_on_fail": False}
FIND = settings(database=None, derandomize=True, max_examples=2_000, phases=(Phase.generate,))
PROPS = settings(
    max_examples=150,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


# -- toy policies ----------------------------------------------------------------------------


class ToyProRata(ADLPolicy):
    """Correct wealth pro-rata (water-filled so the sum is exact)."""

    name = "toy_pro_rata"
    description = "toy wealth pro-rata"
    properties = frozenset({"relabeling", "sybil", "scale", "monotone"})

    def __init__(self) -> None:
        pass

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        return water_fill(snap.capacity, budget, weights=snap.capacity)


class OverCap(ADLPolicy):
    """Splits the budget equally, ignoring capacities, and builds the Allocation itself."""

    name = "over_cap"
    description = "broken: ignores caps"

    def __init__(self) -> None:
        pass

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        h = np.full(snap.n, budget / max(snap.n, 1))
        return Allocation(
            haircut=h,
            lots=np.zeros(snap.n, dtype=np.int64),
            price=np.full(snap.n, np.nan),
            from_gains=np.zeros(snap.n),
            from_principal=h,
            budget=budget,
            residual=0.0,
            overshoot=0.0,
            granularity=0.0,
            wealth=h,
        )


class OverCapWealth(ToyProRata):
    """Asks execute() for 1.5x capacity on every row (execute rejects it)."""

    name = "over_cap_wealth"
    properties = frozenset()

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        return 1.5 * snap.capacity + 1.0


class UnderRaise(ToyProRata):
    """Raises half the budget and reports no residual."""

    name = "under_raise"
    properties = frozenset()

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        half = water_fill(snap.capacity, budget / 2, weights=snap.capacity)
        a = execute(snap, budget / 2, half, price_rule=self.price_rule)
        return dataclasses.replace(a, budget=budget, residual=0.0)


_COUNTER = itertools.count()


class NonDeterministic(ToyProRata):
    """Weights rows by the parity of an unseeded global counter."""

    name = "non_deterministic"
    properties = frozenset()

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        tick = next(_COUNTER)
        weights = snap.capacity * (1.0 + ((np.arange(snap.n) + tick) % 2))
        return water_fill(snap.capacity, budget, weights=weights)


class WritesSnapshot(ToyProRata):
    """Tries to zero the snapshot's first capacity (snapshots are read-only, so this raises)."""

    name = "writes_snapshot"
    properties = frozenset()

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        snap.capacity[:1] = 0.0
        return super().allocate_wealth(snap, budget)


class SneakyWriter(ToyProRata):
    """Turns the write flag back on and halves the lot values (mutates without raising)."""

    name = "sneaky_writer"
    properties = frozenset()

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        h = super().allocate_wealth(snap, budget)
        snap.lot_value.setflags(write=True)
        snap.lot_value[:] = snap.lot_value * 0.5
        return h


class CountsCalls(ToyProRata):
    """Keeps a call counter in a constructor parameter (hidden state)."""

    name = "counts_calls"
    properties = frozenset()

    def __init__(self, calls: int = 0) -> None:
        self.calls = calls

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        self.calls += 1
        return super().allocate_wealth(snap, budget)


class Crashes(ToyProRata):
    """Raises on any snapshot with more than three rows."""

    name = "crashes"
    properties = frozenset()

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        if snap.n > 3:
            raise RuntimeError("boom")
        return super().allocate_wealth(snap, budget)


class CapacityQueue(ADLPolicy):
    """Largest capacity first (ties by account id); claims what a queue does not have."""

    name = "capacity_queue"
    description = "queue by capacity"
    properties = frozenset({"relabeling", "sybil"})

    def __init__(self) -> None:
        pass

    def priority(self, snap: Snapshot) -> np.ndarray:
        return np.lexsort((snap.account, -snap.capacity))

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        order = self.priority(snap)
        c = snap.capacity[order]
        before = np.concatenate([[0.0], np.cumsum(c)[:-1]])
        h = np.zeros(snap.n)
        h[order] = np.clip(budget - before, 0.0, c)
        return h


class MonotoneClaimQueue(CapacityQueue):
    """The same queue, claiming monotonicity instead (it is not monotone)."""

    name = "monotone_claim_queue"
    properties = frozenset({"relabeling", "monotone"})


class PositionQueue(CapacityQueue):
    """Queue in row order, claiming relabeling invariance (it is not)."""

    name = "position_queue"
    properties = frozenset({"relabeling"})

    def priority(self, snap: Snapshot) -> np.ndarray:
        return np.arange(snap.n)


class DollarFloor(ToyProRata):
    """Pro-rata to capacity plus one dollar: neither scale invariant nor Sybil resistant."""

    name = "dollar_floor"
    properties = frozenset({"scale"})

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        return water_fill(snap.capacity, budget, weights=snap.capacity + 1.0)


class GainsFirst(ToyProRata):
    """Pro-rata within the gains layer, then pro-rata over what is left: protects principal."""

    name = "gains_first"
    properties = frozenset({"principal_protect", "relabeling"})

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        layer = np.minimum(np.maximum(snap.gains_layer, 0.0), snap.capacity)
        first = water_fill(layer, budget, weights=layer)
        left = snap.capacity - first
        rest = budget - float(first.sum())
        if rest <= 1e-12 * max(1.0, budget):
            return first
        return first + water_fill(left, rest, weights=left)


class ProRataClaimingProtection(ToyProRata):
    """Plain pro-rata claiming principal protection (false)."""

    name = "fake_protect"
    properties = frozenset({"principal_protect"})


class UnknownClaim(ToyProRata):
    """Claims a property the checker does not know."""

    name = "unknown_claim"
    properties = frozenset({"relabeling", "envy_free"})


# -- the checker on toys ---------------------------------------------------------------------


def test_correct_toy_passes_with_default_settings():
    report = check_adl_policy(ToyProRata())
    assert isinstance(report, PolicyCheckReport)
    assert report.passed and report.failed == []
    assert [c.name for c in report.checks] == list(CHECKS)
    assert report["principal_protect"].status == "skip"
    for name in ("bounds", "budget", "relabeling", "sybil", "scale", "monotone"):
        assert report[name].status == "pass"
        assert report[name].evaluated >= 150
    assert report["large_n"].status == "pass" and report.large_n == 100_000
    assert report.verdict.startswith("PASS")
    assert "PASS  budget" in str(report)


def test_policy_class_is_accepted_and_reports_are_deterministic():
    a = check_adl_policy(ToyProRata, **FAST)
    b = check_adl_policy(ToyProRata(), **FAST)
    assert a.passed and str(a) == str(b)
    assert a.examples == b.examples > 40


@pytest.mark.parametrize(
    ("policy", "check"),
    [
        (OverCap(), "bounds"),
        (OverCapWealth(), "bounds"),
        (UnderRaise(), "budget"),
        (NonDeterministic(), "deterministic"),
        (WritesSnapshot(), "no_mutation"),
        (SneakyWriter(), "no_mutation"),
        (CountsCalls(), "params_unchanged"),
        (Crashes(), "runs"),
        (CapacityQueue(), "sybil"),
        (MonotoneClaimQueue(), "monotone"),
        (PositionQueue(), "relabeling"),
        (DollarFloor(), "scale"),
        (ProRataClaimingProtection(), "principal_protect"),
        (UnknownClaim(), "interface"),
    ],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_broken_toy_fails_the_named_check(policy, check):
    report = check_adl_policy(policy, **FAST)
    assert not report.passed
    assert check in report.failed
    result = report[check]
    assert result.status == "fail"
    assert result.detail  # a counter-example or a reason
    assert f"FAIL  {check}" in str(report)
    assert report.verdict.startswith("FAIL") and check in report.verdict


def test_queue_claims_fail_only_where_false():
    # the capacity queue is relabeling invariant (ties broken by account id) but not Sybil proof
    report = check_adl_policy(CapacityQueue(), **FAST)
    assert report.failed == ["sybil"]
    assert report["relabeling"].status == "pass"
    assert "splitting row" in report["sybil"].detail
    snap, budget = report.counterexamples["sybil"]
    assert isinstance(snap, Snapshot) and budget >= 0


def test_principal_protecting_toy_passes():
    report = check_adl_policy(GainsFirst(), **FAST)
    assert report.passed
    assert report["principal_protect"].evaluated > 10


def test_counterexample_names_rows_and_reproduces():
    report = check_adl_policy(OverCap(), **FAST)
    detail = report["bounds"].detail
    assert detail.startswith("n=") and "rows [" in detail and "haircut=" in detail
    snap, budget = report.counterexamples["bounds"]
    a = OverCap()(snap, budget)
    assert np.any(a.haircut > snap.capacity)


def test_write_attempt_is_a_failure_not_a_crash():
    report = check_adl_policy(WritesSnapshot(), **FAST)
    assert "no_mutation" in report.failed
    assert "read-only" in report["no_mutation"].detail
    assert "runs" not in report.failed


def test_raise_on_fail_raises_assertion_with_the_report():
    with pytest.raises(PolicyCheckError) as info:
        check_adl_policy(UnderRaise(), max_examples=20, large_n=0)
    assert isinstance(info.value, AssertionError)
    assert str(info.value) == str(info.value.report)
    assert "FAIL  budget" in str(info.value)


def test_exact_small_only_skips_large_n_and_limits_rows():
    class SmallOnly(ToyProRata):
        """Pretends to be exact and small-only."""

        exact_small_only = True

    report = check_adl_policy(SmallOnly(), **FAST)
    assert report.max_n == 25 and report.large_n == 0
    assert report["large_n"].status == "skip"
    assert report.passed


def test_large_n_zero_skips():
    report = check_adl_policy(ToyProRata(), max_examples=5, large_n=0)
    assert report["large_n"].status == "skip" and report["large_n"].detail == "large_n=0"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policy": "pro_rata"}, "policy"),
        ({"policy": ToyProRata(), "max_examples": 0}, "max_examples"),
        ({"policy": ToyProRata(), "max_examples": 2.5}, "max_examples"),
        ({"policy": ToyProRata(), "large_n": -1}, "large_n"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs, field):
    policy = kwargs.pop("policy")
    with pytest.raises(InputError) as info:
        check_adl_policy(policy, **kwargs)
    assert info.value.field == field


# -- every registered policy -----------------------------------------------------------------

from market.adl.registry import POLICIES  # noqa: E402


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_registered_policy_passes_at_default_settings(name):
    # the checker exactly as a user runs it: default examples, default large-N case
    report = check_adl_policy(POLICIES[name], raise_on_fail=False)
    assert report.passed, str(report)


def test_strategies_reach_real_magnitudes():
    # lot counts to 1e10, lot values over eight decades, leverage to 1e4 are all drawn
    seen = {"lots": 0.0, "decades": 0.0, "leverage": 0.0}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(snapshots(1, 25))
    def draw(snap):
        seen["lots"] = max(seen["lots"], float(snap.lots.max()))
        v = snap.lot_value[snap.lot_value > 0]
        if v.size:
            seen["decades"] = max(seen["decades"], float(np.log10(v.max() / v.min())))
        lev = snap.leverage[np.isfinite(snap.leverage)]
        if lev.size:
            seen["leverage"] = max(seen["leverage"], float(lev.max()))

    draw()
    assert seen["lots"] > 1e9 and seen["lots"] <= 1e10
    assert seen["decades"] > 6.0
    assert seen["leverage"] > 1e3


# -- strategies ------------------------------------------------------------------------------


@PROPS
@given(st.data())
def test_snapshots_are_valid_and_consistent(data):
    snap = data.draw(snapshots(1, 30))
    assert 1 <= snap.n <= 30
    pos = snap.lot_value > 0
    assert np.all(snap.lots[pos] * snap.lot_value[pos] >= snap.capacity[pos])
    assert np.all(snap.capacity >= 0) and np.all(np.isfinite(snap.capacity))
    assert np.all(snap.lots >= 0) and snap.lots.dtype == np.int64
    assert np.all(np.isin(snap.side, (-1, 1)))
    assert snap.gains.shape == (snap.n, 3) and np.all(snap.gains >= 0)
    assert np.unique(snap.account).size == snap.n
    assert not snap.capacity.flags.writeable
    # prices: winners' PnL matches entry, mark and size
    assert np.allclose(
        snap.upnl,
        snap.side * (snap.mark - snap.entry) * snap.lots * snap.lot_size,
        rtol=1e-9,
        atol=1e-9 * max(1.0, float(np.abs(snap.upnl).max())),
    )
    b = data.draw(budgets(snap))
    total = float(snap.capacity.sum())
    assert 0.0 <= b <= max(1.5 * total, 1.0)
    feasible = data.draw(budgets(snap, infeasible=False))
    assert 0.0 <= feasible <= min(total, float(lot_grid_capacity(snap).sum())) + 1e-12


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("one row", lambda s: s.n == 1),
        ("all zero", lambda s: s.n > 1 and not s.capacity.any()),
        ("exact ties", lambda s: s.capacity.all() and np.unique(s.capacity).size < s.n),
        ("per-row lot values", lambda s: np.unique(s.lot_value).size > 1),
        ("both sides", lambda s: np.unique(s.side).size == 2),
        ("short side", lambda s: bool(np.all(s.side == -1))),
        ("non-positive equity", lambda s: bool(np.any(s.equity <= 0))),
        ("gains ladder", lambda s: bool(np.all(s.gains.sum(1) > 0))),
        ("shared owners", lambda s: np.unique(s.group).size < s.n),
        ("tail over 100x the median", lambda s: s.capacity.max() > 100 * np.median(s.capacity)),
        (
            "capacity on the lot grid",
            lambda s: (
                bool(np.all(lot_grid_capacity(s) == s.capacity)) and s.n > 3 and s.capacity.all()
            ),
        ),
    ],
)
def test_snapshots_cover_edge_cases(what, condition):
    assert condition(find(snapshots(), condition, settings=FIND))


def test_snapshot_options_restrict_what_is_drawn():
    under = find(
        snapshots(2, 10, lot_grid=False),
        lambda s: bool(np.any(s.lots * s.lot_value < s.capacity)),
        settings=FIND,
    )
    assert np.any(under.lots * under.lot_value < under.capacity)

    @PROPS
    @given(snapshots(1, 20, allow_zero=False, allow_ties=False))
    def no_zero_no_ties(snap):
        assert np.all(snap.capacity > 0) and np.all(snap.lot_value > 0)
        assert np.unique(snap.capacity).size == snap.n

    no_zero_no_ties()


def test_budgets_hit_the_special_values():
    snap = Snapshot.build([3.0, 1.5, 0.0, 2.25], lot_value=0.5)
    total = 6.75
    assert find(budgets(snap), lambda b: b == 0.0, settings=FIND) == 0.0
    assert find(budgets(snap), lambda b: b == total, settings=FIND) == total
    assert find(budgets(snap), lambda b: b > total, settings=FIND) <= 1.5 * total
    grid = float(lot_grid_capacity(snap).sum())
    assert grid == 6.5  # 2.25 holds 4 whole half-dollar lots
    assert find(budgets(snap, infeasible=False), lambda b: b == grid, settings=FIND) == grid
    zero = Snapshot.build([0.0, 0.0])
    assert find(budgets(zero), lambda b: b > 0, settings=FIND) == 1.0


def test_lot_grid_capacity_hand_example():
    snap = Snapshot.build([2.5, 3.0, 1.0, 4.0], lots=[3, 2, 5, 9], lot_value=[1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(lot_grid_capacity(snap), [2.0, 2.0, 1.0, 0.0])
    # 0.3 is three lots of 0.1 although 0.3 / 0.1 = 2.9999999999999996 in floating point
    snap = Snapshot.build([0.3], lots=[5], lot_value=0.1)
    assert lot_grid_capacity(snap)[0] == pytest.approx(0.3)


def test_large_snapshot_is_deterministic_and_consistent():
    a = large_snapshot(5_000, np.random.default_rng(7))
    b = large_snapshot(5_000, np.random.default_rng(7))
    c = large_snapshot(5_000, np.random.default_rng(8))
    assert a.n == 5_000
    np.testing.assert_array_equal(a.capacity, b.capacity)
    assert not np.array_equal(a.capacity, c.capacity)
    assert np.all(a.lots * a.lot_value >= a.capacity)
    assert np.unique(a.lot_value).size == 1
    assert 0.02 < np.mean(a.capacity == 0) < 0.08
    with pytest.raises(InputError) as info:
        large_snapshot(0, np.random.default_rng(0))
    assert info.value.field == "large_snapshot.n"
    with pytest.raises(InputError) as info:
        large_snapshot(10, 3)  # type: ignore[arg-type]
    assert info.value.field == "large_snapshot.rng"


def test_snapshots_rejects_bad_bounds():
    with pytest.raises(InputError) as info:
        snapshots(5, 2)
    assert info.value.field == "snapshots.max_n"
    with pytest.raises(InputError) as info:
        snapshots(-1, 2)
    assert info.value.field == "snapshots.min_n"


# -- a bug the checker found -----------------------------------------------------------------


def test_water_fill_takes_everything_when_budget_equals_total_up_to_rounding():
    # 0.4 + 0.3 + 0.2 == 0.9 but np.sum([0.2, 0.4, 0.3]) == 0.9000000000000001: a budget equal
    # to the total summed in another order must still take (almost) everything, not nothing.
    # Found by the checker's relabeling and sybil checks on "drift" (budget = sum(capacity)).
    c = np.array([0.2, 0.4, 0.3])
    h = water_fill(c, 0.9, weights=np.array([1.0, 3.0, 3.0]))
    assert float(h.sum()) == pytest.approx(0.9, rel=1e-12)
    np.testing.assert_allclose(h, c, rtol=1e-12)
    snap = Snapshot.build(c, lots=[1, 3, 3], lot_value=1.0)
    drift = POLICIES["drift"]() if "drift" in POLICIES else None
    if drift is not None:
        a = drift(snap, 0.9)
        assert a.residual == 0.0 and a.raised == pytest.approx(0.9, rel=1e-12)


# -- per-wave caps ---------------------------------------------------------------------------


class HalfReach(ToyProRata):
    """Declares it may take only from rows whose capacity is above the budget's median row."""

    name = "half_reach"
    properties = frozenset()

    def wave_caps(self, snap: Snapshot, budget: float) -> np.ndarray:
        c = snap.capacity
        if c.size == 0:
            return c
        return np.where(c >= np.median(c), c, 0.0)

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        caps = self.wave_caps(snap, budget)
        h = water_fill(caps, budget, weights=caps)
        return execute(snap.with_capacity(caps), budget, h, price_rule=self.price_rule)


class LyingReach(HalfReach):
    """Declares the same limits but takes from every row."""

    name = "lying_reach"

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        h = water_fill(snap.capacity, budget, weights=snap.capacity)
        return execute(snap, budget, h, price_rule=self.price_rule)


def test_wave_caps_set_the_budget_a_rule_must_raise_and_bind_its_haircuts():
    # a rule that keeps to its declared per-wave limits passes, reporting the rest as residual
    report = check_adl_policy(HalfReach(), **FAST)
    assert report.passed, str(report)
    snap = Snapshot.build([1.0, 2.0, 3.0, 4.0])
    a = HalfReach()(snap, 9.0)
    assert a.haircut.tolist() == [0.0, 0.0, 3.0, 4.0] and a.residual == 2.0
    # one that takes beyond them fails the bounds check
    report = check_adl_policy(LyingReach(), **FAST)
    assert "bounds" in report.failed
    assert "caps" in report["bounds"].detail
    # and a rule without the hook is held to caps(snap), as before
    assert ADLPolicy().wave_caps(snap, 1.0) is snap.capacity
