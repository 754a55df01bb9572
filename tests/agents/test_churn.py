"""Churn hazard families: the ranking of rules on leavers depends on the family."""

from __future__ import annotations

import numpy as np
import pytest

from agents.churn import CHURN_FAMILIES, foreseen_share, leave_probability
from market.errors import InputError


def expected_leavers(x: np.ndarray, family: str, **kw) -> float:
    return float(leave_probability(x, family, mean=float(x.mean()), **kw).sum())


@pytest.mark.parametrize(
    ("family", "pro_rata", "queue"),
    [
        ("exponential", 109, 68),  # concave: many small haircuts make more leavers
        ("linear", 115, 100),
        ("power", 13, 100),  # convex (x / 0.2)^2: the ranking flips
        ("logistic", 21, 100),  # threshold at 10 %
    ],
)
def test_the_worked_example_of_1000_identical_winners(family, pro_rata, queue):
    # equity 1, capacity 0.23 each, budget 10 % of the total capacity (23): pro-rata takes
    # 0.023 from everyone, a queue takes 0.23 from the first 100 (no surprise term)
    spread = np.full(1000, 0.023)
    ranked = np.r_[np.full(100, 0.23), np.zeros(900)]
    assert round(expected_leavers(spread, family, surprise=0.0)) == pro_rata
    assert round(expected_leavers(ranked, family, surprise=0.0)) == queue


def test_predictability_charges_the_gap_to_what_the_signal_foretold():
    # a queue that hits exactly the lit accounts is foreseen: nobody leaves; a random hit is not
    lit = np.r_[np.ones(100, dtype=int), np.zeros(900, dtype=int)]
    ranked = np.r_[np.full(100, 0.23), np.zeros(900)]
    fx = foreseen_share(ranked, lit)
    assert leave_probability(ranked, "predictability", foreseen=fx).sum() < 1e-9
    shuffled = np.roll(ranked, 50)  # half the hits fall on unlit accounts
    fx = foreseen_share(shuffled, lit)
    assert leave_probability(shuffled, "predictability", foreseen=fx).sum() > 10
    with pytest.raises(InputError, match=r"^churn\.foreseen"):
        leave_probability(ranked, "predictability")


@pytest.mark.parametrize("family", CHURN_FAMILIES)
def test_every_family_is_a_probability_and_zero_without_a_haircut(family):
    x = np.array([0.0, 1e-6, 0.05, 0.3, 2.0, 1e6])
    p = leave_probability(x, family, mean=0.1, foreseen=np.zeros_like(x))
    assert p[0] == 0.0 and np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p[1:]) >= -1e-12)  # more haircut, no less leaving


def test_unknown_family_names_the_field():
    with pytest.raises(InputError, match=r"^churn\.family: must be one of exponential"):
        leave_probability(np.ones(2), "cubic")


def test_the_family_is_a_scenario_choice_that_changes_the_game():
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import RunResult

    small = {"run.traders": 400, "run.crises": 2, "run.calm_steps": 6, "run.crisis_steps": 6}
    churned = {}
    for family in ("exponential", "power"):
        sc = load_scenario().replace(**small, **{"churn.family": family})
        game = ADLGame(sc, seed=2, policy="pro_rata", two_pass=False)
        game.run()
        churned[family] = RunResult.from_game(game)["traders_churned"]
    assert churned["exponential"] != churned["power"]
    with pytest.raises(InputError, match=r"churn\.family"):
        load_scenario().replace(**{"churn.family": "cubic"})
