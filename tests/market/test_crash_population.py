"""Synthetic crash populations shaped like a venue: a few positions per account, popular
markets, a balanced exchange."""

from __future__ import annotations

import numpy as np
import pytest

from market.errors import InputError
from market.exchange import BackstopConfig, Exchange
from market.invariants import check_invariants
from market.population import PopulationSpec, seed_population


def world(markets: int, accounts: int = 20_000, **spec) -> tuple[Exchange, np.ndarray]:
    ex = Exchange(markets, 100.0, backstop=BackstopConfig("fund", 1e6), capacity=accounts + 8)
    idx = seed_population(ex, PopulationSpec(accounts=accounts, **spec), np.random.default_rng(5))
    return ex, idx


def test_most_accounts_hold_a_few_markets_and_a_few_hold_dozens():
    ex, idx = world(162)
    held = (ex.acc.pos[idx] != 0).sum(axis=1)
    assert held.min() >= 1
    assert 0.55 < (held == 1).mean() < 0.75  # P(count = 1) = 1 - 2**-1.5 = 0.65, less merges
    assert (held <= 3).mean() > 0.85
    assert held.max() >= 24 and (held >= 12).mean() < 0.05
    # popularity: market 0 is the most traded, the tail thin
    per_market = (ex.acc.pos[idx] != 0).sum(axis=0)
    assert per_market[0] == per_market.max() and per_market[0] > 5 * np.median(per_market)
    inv = check_invariants(ex)
    assert inv.ok and not inv.oi_imbalance.any()


def test_one_market_and_the_old_shape_are_one_position_each():
    for ex, idx in (world(1, 5_000), world(8, 5_000, positions_tail=0.0, market_zipf=0.0)):
        held = (ex.acc.pos[idx] != 0).sum(axis=1)
        assert (held == 1).all()
    ex, idx = world(8, 5_000, positions_tail=0.0, market_zipf=0.0)
    share = (ex.acc.pos[idx] != 0).mean(axis=0)
    np.testing.assert_allclose(share, 1 / 8, atol=0.02)  # uniform


def test_funding_matches_total_notional_over_leverage():
    ex, idx = world(16, 2_000, entry_spread=0.0, leverage_min=4.0, leverage_max=4.0)
    notional = (np.abs(ex.acc.pos[idx]) * ex.lot * ex.marks).sum(axis=1)
    np.testing.assert_allclose(ex.equity()[idx], notional / 4.0, rtol=1e-9)


@pytest.mark.parametrize(("field", "value"), [("positions_tail", 0.3), ("market_zipf", -1.0)])
def test_bad_shapes_name_their_field(field, value):
    with pytest.raises(InputError, match=f"population.{field}"):
        PopulationSpec(**{field: value})


def test_sums_over_open_positions_match_the_column_sums():
    # many markets: the waterfall sums over open positions only; the same to rounding
    ex, idx = world(24, 3_000)
    ex.marks = ex.marks * np.linspace(0.8, 1.1, 24)
    sparse = ex._account_sums()
    rows = idx[::7]
    sparse_rows = ex._account_sums(rows)
    ex.sparse_sums_min_markets = 10**9  # force the column-by-column path
    dense = ex._account_sums()
    dense_rows = ex._account_sums(rows)
    for a, b in ((sparse, dense), (sparse_rows, dense_rows)):
        for x, y in zip(a[:3], b[:3], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(a[3], b[3])


@pytest.mark.parametrize(
    ("backstop", "policy"), [("fund", "hyperliquid"), ("vault", "pro_rata"), ("none", "drift")]
)
def test_crash_steps_agree_across_the_two_paths(backstop, policy):
    # many markets: sums, hole totals and snapshot candidates over open positions, against
    # the column-by-column path, over three steps of a crash
    from market.adl import get_policy

    out = []
    for min_markets in (9, 10**9):
        ex = Exchange(
            24,
            100.0,
            backstop=BackstopConfig(backstop, 1e5),
            policy=get_policy(policy),
            capacity=4_008,
        )
        ex.sparse_sums_min_markets = min_markets
        seed_population(ex, PopulationSpec(accounts=4_000), np.random.default_rng(2))
        reps = [ex.step(ex.marks * f) for f in (0.85, 0.9, 1.05)]
        assert check_invariants(ex).ok
        out.append((ex, reps))
    (ea, ra), (eb, rb) = out
    assert sum(r.liquidated for r in ra) > 0 and sum(r.adl_raised for r in ra) > 0
    for x, y in zip(ra, rb, strict=True):
        assert x.liquidated == y.liquidated and x.waves == y.waves
        for key in ("deficit", "backstop_used", "adl_raised", "residual", "overshoot"):
            assert getattr(x, key) == pytest.approx(getattr(y, key), rel=1e-9, abs=1e-6), key
    np.testing.assert_array_equal(ea.acc.pos, eb.acc.pos)
    np.testing.assert_allclose(ea.acc.cash, eb.acc.cash, rtol=1e-9, atol=1e-6)
