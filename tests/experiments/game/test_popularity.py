"""Markets alike but for their size: market.popularity in the game and its scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.game.model import ADLGame
from experiments.game.popularity import coin_names, market_shares
from experiments.game.scenario import load_scenario
from market.errors import InputError


def test_shares_sum_to_one_and_follow_their_law():
    assert market_shares("uniform", 7) is None
    z = market_shares("zipf", 5, 1.0)
    assert z.sum() == pytest.approx(1.0) and (np.diff(z) < 0).all()
    np.testing.assert_allclose(z / z[0], 1.0 / np.arange(1, 6))
    o = market_shares("oct10", 162)
    assert o.sum() == pytest.approx(1.0) and (o > 0).all()  # zero-capacity coins get the floor
    assert o[0] == pytest.approx(0.397, abs=0.002)  # XPL, the event's largest winners' capacity
    assert coin_names(3) == ["XPL", "BTC", "ETH"]
    with pytest.raises(InputError, match=r"^market\.markets: must be at most 162"):
        market_shares("oct10", 163)


def test_the_game_draws_traders_and_sizes_books_by_share():
    sc = load_scenario().replace(
        **{"run.traders": 3000, "market.markets": 4, "market.popularity": "zipf"}
    )
    game = ADLGame(sc, seed=2, two_pass=False)
    ex = game.exchange
    share = market_shares("zipf", 4, 1.0)
    depth = np.array([s.depth for s in ex.specs])
    np.testing.assert_allclose(depth, sc.market.depth * 4 * share)
    mk = np.array([t.market for t in game.traders()])
    counts = np.bincount(mk, minlength=4) / mk.size
    np.testing.assert_allclose(counts, share, atol=0.03)
    # uniform keeps the historical draws: the default scenario's first traders are unchanged
    a = ADLGame(load_scenario().replace(**{"run.traders": 300}), seed=2, two_pass=False)
    b = ADLGame(
        load_scenario().replace(**{"run.traders": 300, "market.popularity": "uniform"}),
        seed=2,
        two_pass=False,
    )
    assert [t.market for t in a.traders()] == [t.market for t in b.traders()]
    assert np.array_equal(a.exchange.acc.pos, b.exchange.acc.pos)


def test_oct10_markets_are_the_events_coins_and_bad_values_are_named():
    sc = load_scenario("oct10_venue").replace(**{"run.traders": 400, "market.markets": 12})
    game = ADLGame(sc, seed=1, two_pass=False)
    assert [s.name for s in game.exchange.specs][:2] == ["XPL", "BTC"]
    full = load_scenario("oct10_venue")
    assert (full.market.markets, full.run.traders, full.run.crises) == (162, 437_723, 10)
    with pytest.raises(InputError, match=r"^scenario\.market\.popularity: must be one of"):
        load_scenario().replace(**{"market.popularity": "huge"})
