"""The oct10 replay per market: coin grids, coin budgets, the published contract pro-rata."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.studies.oct10 import ReplayConfig, load_oct10, replay
from experiments.studies.oct10.data import load_coin_grid
from experiments.studies.oct10.per_market import (
    PUBLISHED_FORM,
    assign_coins,
    coin_snapshot,
    per_market_lines,
    per_market_totals,
    published_contract_pro_rata,
    replay_per_market,
    spread_table,
)
from market.adl import Snapshot

SMALL = ReplayConfig(max_accounts=300)


def test_coin_grid_splits_each_waves_budget_as_published():
    data = load_oct10()
    grid = load_coin_grid()
    assert (grid["gap_usd"] > 0).all() and (grid["gap_per_contract"] > 0).all()
    assert grid["coin"].nunique() > 100
    per_wave = grid.groupby("wave")["gap_usd"].sum()
    b = data.waves.set_index("wave")["budget_needed_usd"]
    # B needed is the ADL'd quantity priced at the gap, summed over coins (real)
    np.testing.assert_allclose(per_wave.reindex(b.index).to_numpy(), b.to_numpy(), rtol=1e-6)


def test_every_coin_gets_a_holder_and_shares_are_followed():
    share = np.array([0.7, 0.2, 0.09, 0.01])
    coin = assign_coins(10_000, share, np.random.default_rng(1))
    counts = np.bincount(coin, minlength=4)
    assert (counts > 0).all()
    np.testing.assert_allclose(counts / counts.sum(), share, atol=0.02)
    few = assign_coins(4, np.array([0.97, 0.01, 0.01, 0.01]), np.random.default_rng(2))
    assert sorted(few.tolist()) == [0, 1, 2, 3]


def test_a_coin_snapshot_holds_whole_contracts_of_the_coins_gap():
    snap = Snapshot.build(np.array([10.0, 0.5, 2500.0]), lots=np.array([10, 1, 2500]))
    cs = coin_snapshot(snap, np.array([0, 1, 2]), 966.0)
    assert cs.lots.tolist() == [1, 1, 3]  # ceil(PnL / gap), at least one
    assert (cs.lot_value == 966.0).all()
    np.testing.assert_array_equal(cs.capacity, snap.capacity)
    hedged = coin_snapshot(snap, np.array([2]), 100.0, multiple=np.array([4.0]))
    assert hedged.lots.tolist() == [100]


def test_the_published_form_rounds_up_and_loses_what_capped_holders_cannot_give():
    snap = Snapshot.build(
        np.array([100.0, 3.0, 100.0]), lots=np.array([10, 5, 1]), lot_value=np.full(3, 2.0)
    )
    # 8 contracts needed: shares 5, 2.5 -> 3, 0.5 -> 1; the middle holder is capped at 3
    h = published_contract_pro_rata(snap, 16.0)
    assert h.tolist() == [10.0, 3.0, 2.0]
    assert h.sum() < 16.0  # nobody else pays the capped holder's part


def test_per_market_grids_show_the_integer_effects_the_pooled_replay_hides():
    data = load_oct10()
    runs = replay_per_market(data, 1, SMALL, ["contract_pro_rata", "pro_rata", PUBLISHED_FORM])
    assert len(runs) == 3 * len(data.waves)
    assert (runs["max_pct_equity"] <= 1.0 + 1e-12).all()
    # the registry's rules overshoot by less than one contract per coin
    lot_sum = load_coin_grid().groupby("wave")["gap_per_contract"].sum()
    mine = runs[runs["policy"] != PUBLISHED_FORM]
    assert (mine["overshoot"] <= mine["wave"].map(lot_sum) + 1e-6).all()
    pooled, _ = replay(data, 1, SMALL, policies=["contract_pro_rata", "pro_rata"])
    tot = per_market_totals(runs, data, pooled).set_index("policy")
    cpr = tot.loc["contract_pro_rata"]
    assert cpr["max_pct"] > 2 * cpr["pooled_max_pct"]  # coarse grids: larger haircuts
    assert cpr["published_overshoot"] == pytest.approx(-3_020_120.65, abs=1)
    assert cpr["published_max_pct"] == pytest.approx(0.7365, abs=1e-4)
    # the published form rounds every holder up: on coarse grids it takes more than needed
    assert tot.loc[PUBLISHED_FORM, "overshoot"] > 0
    lines = "\n".join(per_market_lines(tot.reset_index(), None))
    assert "## 3c. Per market" in lines and "contract_pro_rata@published" in lines


def test_positions_worth_more_than_their_accounts_profit_turn_the_overshoot_into_a_shortfall():
    data = load_oct10()
    table = spread_table(data, 1, SMALL, spreads=(0.0, 4.0), policies=(PUBLISHED_FORM,))
    o = table.set_index("spread")["overshoot"]
    assert o[0.0] > 0 > o[4.0]
