"""Entry and imitation families: values, ranges, errors, and that the game plays them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.population import (
    ENTRY_FAMILIES,
    IMITATION_FAMILIES,
    entry_factor,
    imitation_probability,
    poisson_quantile,
)
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from market.errors import InputError


def test_poisson_quantile_equals_scipys_ppf():
    """The entry count's quantile is scipy's poisson.ppf, value for value (edges included)."""
    rng = np.random.default_rng(3)
    q = np.concatenate([[0.0, 1e-300, 0.5, 1.0 - 2.0**-53], rng.random(2000)])
    mu = np.concatenate([[3.0, 5.0, 1e-12, 1e-5], np.exp(rng.uniform(-8.0, 9.0, 2000))])
    got = [poisson_quantile(float(a), float(b)) for a, b in zip(q, mu, strict=True)]
    assert got == stats.poisson.ppf(q, mu).tolist()


@pytest.mark.parametrize(
    ("family", "z", "expected"),
    [
        ("exponential", 0.0, 1.0),
        ("exponential", 1.0, np.exp(-1.0)),
        ("linear", 0.25, 0.75),
        ("linear", 3.0, 0.0),
        ("step", 0.999, 1.0),
        ("step", 1.0, 0.0),
    ],
)
def test_entry_factor_values(family, z, expected):
    assert entry_factor(family, z) == pytest.approx(expected)


@pytest.mark.parametrize("family", ENTRY_FAMILIES)
def test_entry_never_rises_with_a_worse_record(family):
    zs = np.linspace(0, 5, 101)
    f = np.array([entry_factor(family, z) for z in zs])
    assert (np.diff(f) <= 1e-15).all() and f[0] == 1.0 and (f >= 0).all()


def test_fermi_copies_worse_strategies_sometimes_and_proportional_never():
    gap = np.array([-0.2, -0.01, 0.0, 0.01, 0.2])
    prop = imitation_probability("proportional", 0.5, gap, 0.05)
    fermi = imitation_probability("fermi", 0.5, gap, 0.05)
    assert (prop[:3] == 0).all() and prop[-1] == 1.0
    assert (fermi > 0).all() and (fermi < 0.5).all() and fermi[2] == pytest.approx(0.25)
    assert (np.diff(fermi) > 0).all()
    huge = imitation_probability("fermi", 1.0, np.array([-1e9, 1e9]), 1e-9)
    assert np.isfinite(huge).all()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: entry_factor("cubic", 1.0), "entry.family"),
        (lambda: imitation_probability("best", 0.5, np.zeros(2), 0.1), "imitation.family"),
    ],
)
def test_unknown_families_name_the_field(call, field):
    with pytest.raises(InputError, match=field):
        call()


def test_scenario_rejects_an_unknown_family_with_the_allowed_values():
    with pytest.raises(InputError, match="exponential, linear, step"):
        load_scenario().replace(**{"entry.family": "cubic"})
    assert set(IMITATION_FAMILIES) == {"proportional", "fermi"}


def test_the_game_plays_the_families():
    # same seed, same crises: the switching rule changes how many traders switch strategy
    base = load_scenario().replace(**{"run.traders": 400, "run.crises": 3})
    switched = {}
    for fam in IMITATION_FAMILIES:
        g = ADLGame(base.replace(**{"imitation.family": fam}), seed=3, policy="hyperliquid")
        g.run()
        switched[fam] = sum(c.switched for c in g.crises)
    assert switched["fermi"] != switched["proportional"]
    entrants = {}
    for fam in ("exponential", "step"):
        sc = base.replace(**{"entry.family": fam, "entry.sensitivity": 20.0})
        g = ADLGame(sc, seed=3, policy="hyperliquid")
        g.run()
        entrants[fam] = sum(c.entrants for c in g.crises)
    # the third crisis ADLs (z ~ 0.7): exp(-z) deters about half, the step none
    assert entrants["exponential"] < entrants["step"]
