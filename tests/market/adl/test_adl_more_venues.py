"""The remaining production venues: Bybit, OKX, Aevo, Lighter, GMX, Paradex and Deribit."""

from __future__ import annotations

import numpy as np
import pytest

from market.adl import POLICIES, describe_policies, get_policy
from market.adl.base import Snapshot
from market.adl.checker import check_adl_policy
from market.errors import InputError

NEW = ("bybit", "okx", "aevo", "lighter", "gmx", "paradex", "deribit")


def snap(**overrides):
    # four winners at mark 110 (lot size 1); row 3 is the most levered, row 1 the most
    # profitable in dollars
    kw = {
        "lots": [10, 5, 4, 20],
        "side": [1, 1, 1, 1],
        "entry": [100.0, 80.0, 100.0, 105.0],
        "upnl": [100.0, 150.0, 40.0, 100.0],
        "equity": [1000.0, 300.0, 80.0, 150.0],
        "cash": [900.0, 150.0, 40.0, 50.0],
        "maintenance": [11.0, 5.5, 4.4, 22.0],
        "lot_value": [10.0, 30.0, 10.0, 5.0],
        "mark": 110.0,
        "account": [0, 1, 2, 3],
    }
    kw.update(overrides)
    return Snapshot.build(kw.pop("capacity", [100.0, 150.0, 40.0, 100.0]), **kw)


def test_every_venue_is_listed_with_its_source_and_labels():
    rows = {r["name"]: r for r in describe_policies()}
    for name in NEW:
        assert name in POLICIES and rows[name]["source"] and rows[name]["origin"] == "built-in"
    for name in ("bybit", "okx", "lighter", "gmx", "paradex", "deribit"):
        assert "UNVERIFIED" in rows[name]["source"], name
    assert get_policy("paradex").default_shortfall == "withdrawals"
    assert get_policy("deribit").default_shortfall == "socialised"


@pytest.mark.parametrize(
    "policy",
    [get_policy("aevo", exclude=(0,)), get_policy("lighter", pnl_order="ascending")],
    ids=["aevo-exclude", "lighter-ascending"],
)
def test_non_default_settings_pass_the_checker(policy):
    assert check_adl_policy(policy, max_examples=60, large_n=5_000).passed


def test_the_rankings_follow_their_documents():
    s = snap()
    # OKX and Bybit: PnL% (upnl / notional) x notional / equity = upnl / equity
    expect = np.array([100 / 1000, 150 / 300, 40 / 80, 100 / 150])
    np.testing.assert_allclose(get_policy("okx").score(s), expect)
    np.testing.assert_allclose(get_policy("bybit").score(s), expect)
    # Aevo: upnl / max(1, cash) * MM / equity
    aevo = np.array(
        [100 / 900 * 11 / 1000, 150 / 150 * 5.5 / 300, 1.0 * 4.4 / 80, 100 / 50 * 22 / 150]
    )
    np.testing.assert_allclose(get_policy("aevo").score(s), aevo)
    # GMX: the largest profit first; Lighter: profit, then leverage breaks the 100-100 tie
    assert list(get_policy("gmx").priority(s)) == [1, 0, 3, 2]  # ties: capacity, then account
    assert list(get_policy("lighter").priority(s)) == [1, 3, 0, 2]  # row 3 more levered
    assert get_policy("lighter", pnl_order="ascending").priority(s)[0] == 2


def test_aevo_leaves_an_excluded_market_alone_and_reports_the_residual():
    a = get_policy("aevo", exclude=(0,))(snap(), 50.0)
    assert a.haircut.sum() == 0 and a.residual == pytest.approx(50.0)
    b = get_policy("aevo", exclude=(1,))(snap(), 50.0)
    assert b.haircut.sum() >= 50.0 - 1e-9
    with pytest.raises(InputError, match=r"aevo\.exclude"):
        get_policy("aevo", exclude=("BTC",))(snap(), 50.0)


@pytest.mark.parametrize("name", ["paradex", "deribit"])
def test_venues_without_ranked_adl_take_nothing_in_a_wave(name):
    a = get_policy(name)(snap(), 120.0)
    assert a.haircut.sum() == 0 and a.residual == pytest.approx(120.0)


def test_the_game_plays_every_new_venue_differently_from_its_neighbours():
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import RunResult
    from market.invariants import check_invariants

    sc = load_scenario().replace(**{"run.traders": 600, "run.crises": 2})
    out = {}
    for name in (*NEW, "hyperliquid", "binance"):
        g = ADLGame(sc, seed=1, policy=name)
        g.run()
        assert check_invariants(g.exchange).ok, name
        out[name] = RunResult.from_game(g)
    assert out["paradex"]["adl_raised"] == 0 and out["paradex"].shortfall_bearer == "withdrawals"
    assert out["deribit"]["adl_raised"] == 0 and out["deribit"]["socialised"] > 0
    assert out["gmx"]["adl_raised"] != out["hyperliquid"]["adl_raised"]
    assert out["aevo"]["adl_raised"] != out["binance"]["adl_raised"]
    assert out["lighter"]["accounts_touched"] != out["binance"]["accounts_touched"]
