"""The market game: determinism, conservation, common random numbers, agent behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents import Flipper, SybilOwner, sybil_split
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.runs.results import HEADLINE_METRICS, OUTPUT_FILES, RunResult
from market.adl import Eligibility, get_policy
from market.exchange import BackstopConfig, Exchange
from market.invariants import check_invariants
from market.spec import MarketSpec


def small(**over):
    base = {
        "run.traders": 300,
        "run.crises": 2,
        "run.calm_steps": 6,
        "run.crisis_steps": 6,
        "mix.flipper": 0.1,
        "mix.sybil": 0.05,
        "mix.whale": 0.05,
    }
    base.update(over)
    return load_scenario().replace(**base)


def run_game(policy="hyperliquid", seed=3, **over) -> ADLGame:
    game = ADLGame(small(**over), seed=seed, policy=policy)
    game.run()
    return game


def test_money_is_conserved_across_a_whole_multi_crisis_run():
    game = ADLGame(small(), seed=5, policy="hyperliquid")
    while game.running:
        game.step()
        rep = check_invariants(game.exchange)
        assert rep.conservation_error < 1e-9, game.t
        assert not rep.oi_imbalance.any()
    assert sum(c.deficit for c in game.crises) > 0


def test_common_random_numbers_across_policies():
    a = ADLGame(small(), seed=11, policy="hyperliquid")
    b = ADLGame(small(), seed=11, policy="pro_rata")
    # the same starting population, account by account
    assert np.array_equal(a.exchange.acc.pos, b.exchange.acc.pos)
    assert np.array_equal(a.exchange.acc.cash, b.exchange.acc.cash)
    a.run()
    b.run()
    ta = a.datacollector.get_model_vars_dataframe()
    tb = b.datacollector.get_model_vars_dataframe()
    # the same price path and crisis draws, whatever the policy did
    assert np.array_equal(ta["mark_0"].to_numpy(), tb["mark_0"].to_numpy())
    assert [c.drop for c in a.crises] == [c.drop for c in b.crises]
    # until the policy first matters (the first crisis step: the venue publishes its ADL
    # indicator, flippers read it, the first wave runs) the two runs are identical
    first = int(ta.index[ta["phase"] == "crisis"][0])
    cols = ["deficit", "liquidated", "traders_active", "fee_revenue", "open_interest_lots"]
    assert ta[cols].iloc[:first].equals(tb[cols].iloc[:first])
    assert not ta[cols].equals(tb[cols])  # and afterwards the policy does make a difference
    # and the same trader gets the same draw in both runs
    assert (
        a.draw("rebalance", np.arange(10)).tolist() == b.draw("rebalance", np.arange(10)).tolist()
    )


def test_flippers_flip_and_reset_their_entry_price():
    game = run_game("hyperliquid", seed=2)
    flippers = game.members(Flipper).agents
    assert sum(f.flips for f in flippers) > 0
    trades = game.exchange.log.trades.to_array()
    orders = trades[trades["kind"] == 0]
    checked = 0
    for f in flippers:
        if f.flips == 0:
            continue
        mine = orders[orders["account"] == f.account]
        for s in np.unique(mine["step"]):
            pair = mine[mine["step"] == s]
            if pair.size == 2 and pair["lots"][0] == -pair["lots"][1]:
                # reopened at the book: the new entry is the reopening price, near the mark
                assert abs(pair["price"][1] - pair["mark"][1]) / pair["mark"][1] < 0.05
                checked += 1
    assert checked > 0


def _flip_twins(policy, eligibility: Eligibility) -> tuple[float, float, float]:
    """An honest winner and a flipper with the same exposure; a loser goes bankrupt.

    Returns what each paid and what the flip cost the flipper (fees and the book's spread:
    its ledger's shortfall against the honest twin's before the wave)."""
    spec = MarketSpec(
        name="F",
        lot_size=1.0,
        initial_margin=0.05,
        maintenance_margin=0.025,
        taker_fee=0.0005,
        maker_fee=0.0,
        liquidation_fee=0.0,
        depth=50_000.0,
        impact=0.02,
        impact_exponent=1.0,
        stress_thinning=0.0,
        chunk_threshold=1e12,
    )
    ex = Exchange(
        [spec], 100.0, backstop=BackstopConfig("none"), policy=policy, eligibility=eligibility
    )
    honest, flipper, loser, bystander = ex.open_accounts(4, [2_000.0, 2_000.0, 400.0, 5_000.0])
    ex.trade_genesis(
        [honest, flipper, loser, bystander], 0, [-100, -100, 60, -60], [100.0, 100.0, 100.0, 90.0]
    )
    ex.step(97.0)  # winners in profit, loser near maintenance but alive
    ex.trade([flipper], 0, [100])  # close ...
    ex.trade([flipper], 0, [-100])  # ... and reopen at the book: entry reset to ~97
    eq = ex.equity()
    flip_cost = float(eq[honest] - eq[flipper])
    ex.step(93.0)  # the loser is bankrupt at the mark and slips further: an ADL wave
    adl = ex.log.adl.to_array()
    paid = {int(a): float(adl["haircut"][adl["account"] == a].sum()) for a in (honest, flipper)}
    assert adl.size > 0
    assert check_invariants(ex).ok
    return paid[honest], paid[flipper], flip_cost


def test_close_and_reopen_pays_under_an_entry_based_rule():
    honest, flipper, _ = _flip_twins(get_policy("hyperliquid"), Eligibility(cap="pnl"))
    assert honest > 0
    assert flipper < 0.5 * honest  # the reset entry moved the flipper down the queue


def test_close_and_reopen_gains_nothing_when_capacity_ignores_entry():
    honest, flipper, cost = _flip_twins(get_policy("seniority"), Eligibility(cap="gains"))
    assert honest > 0
    # same economic exposure, nearly the same burden: the flipper's ledger is short only by
    # what the flip cost it (fees, spread), so what it sheds is a small part of that cost
    assert flipper == pytest.approx(honest, rel=0.1)
    assert 0 <= honest - flipper < 0.1 * cost


def test_seniority_and_pro_rata_differ_in_the_game_and_principal_stays():
    """Why they differ: seniority is defined on the gains ledger (the cap its declaration
    names, which the game applies) and claws it back in cash, so realised gains pay too;
    pro-rata takes open profit only.  No payer's principal is touched."""
    sen, pr = run_game("seniority", seed=3), run_game("pro_rata", seed=3)
    assert sen.exchange.eligibility.cap == "gains" and pr.exchange.eligibility.cap == "pnl"
    assert RunResult.from_game(sen).metrics != RunResult.from_game(pr).metrics
    e_sen, e_pr = sen.exchange.log.adl.to_array(), pr.exchange.log.adl.to_array()
    assert e_sen.size and e_pr.size
    assert e_sen["from_principal"].sum() == 0.0
    assert (e_sen["lots"] == 0).all()  # a cash claw-back: no position is force-closed
    # the ledger is a larger base than open profit: the same deficits spread wider
    assert e_sen["base"].sum() > 1.5 * e_pr["base"].sum()


def test_sybil_owners_spread_over_k_accounts():
    game = ADLGame(small(**{"sybil.accounts": 5}), seed=4, policy="hyperliquid")
    owners = game.members(SybilOwner).agents
    assert owners
    for owner in owners:
        assert owner.accounts.size == 5
        groups = set(game.exchange.acc.group[owner.accounts].tolist())
        assert groups == {int(owner.accounts[0])}
        assert (game.exchange.acc.pos[owner.accounts, owner.market] != 0).sum() >= 2
    eq, nt = sybil_split(1_000.0, 10.0, 4, 3.0, 45.0)
    assert eq.sum() == pytest.approx(1_000.0)
    assert nt.sum() == pytest.approx(10_000.0)
    assert np.allclose(nt[:3] / eq[:3], 3.0)  # the safe parts sit at the safe leverage


def test_churned_traders_stop_trading_and_are_settled():
    game = run_game("hyperliquid", seed=6, **{"churn.beta": 50.0})
    assert game.churned_total > 0
    ex = game.exchange
    live = {int(a) for t in game.traders() for a in t.accounts}
    panel = pd.concat([pd.DataFrame(p) for p in game.panel])
    gone = panel.loc[panel["churned"], "account"].to_numpy()
    for acc in gone:
        assert acc not in live
        assert not ex.acc.flags[acc] & 1  # inactive
        assert (ex.acc.pos[acc] == 0).all()
        assert ex.acc.cash[acc] == pytest.approx(0.0, abs=1e-9)
    trades = ex.log.trades.to_array()
    last_step = {int(a): int(panel.loc[panel["account"] == a, "step"].max()) for a in gone}
    for acc, step in last_step.items():
        after = trades[(trades["account"] == acc) & (trades["step"] > step)]
        assert after.size == 0


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.cli", *argv], capture_output=True, text=True
    )


@pytest.mark.slow
def test_run_writes_four_files_and_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = _cli(
            "run",
            "--policy",
            "hyperliquid",
            "--seed",
            "1",
            "--crises",
            "5",
            "--traders",
            "2000",
            "--out",
            str(out),
            "--quiet",
        )
        assert proc.returncode == 0, proc.stderr
        assert set(OUTPUT_FILES) <= {p.name for p in out.iterdir()}
        outs.append(out)
    a, b = outs
    sa, sb = (json.loads((o / "summary.json").read_text()) for o in outs)
    assert sa == sb
    for key in (
        "scenario",
        "seed",
        "policy",
        "package_version",
        "total_deficit",
        "backstop_used",
        "adl_raised",
        "residual_bad_debt",
        "accounts_touched",
        "traders_active_end",
        "fee_revenue",
        "overshoot",
        "max_haircut_base_frac",
        "max_haircut_capacity_frac",
        "gini_haircut_base",
        "ptsr_base",
        "ptsr_base_weighted",
        "pmr_base",
        "adl_waves",
        "externality_ratio",
        "leverage_drift",
        "retention",
        "ltv_lost_per_deficit_dollar",
    ):
        assert key in sa
    assert set(HEADLINE_METRICS) <= set(sa)  # what experiments summarise is in every summary
    assert sa["conservation_error"] < 1e-9
    assert sa["overshoot_by_horizon"]["0"] == pytest.approx(sa["overshoot"])
    for name in ("timeseries", "agents", "adl_events", "waves", "bankruptcies", "two_pass"):
        assert pd.read_parquet(a / f"{name}.parquet").equals(pd.read_parquet(b / f"{name}.parquet"))
    events = pd.read_parquet(a / "adl_events.parquet")
    assert {"wave", "account", "agent_type", "lots", "price", "dollars", "layer"} <= set(
        events.columns
    )


def test_existing_nonempty_out_needs_force(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = _cli("run", "--traders", "50", "--crises", "1", "--out", str(out), "--quiet")
    assert proc.returncode == 2
    assert "--force" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[run]\ncrises = 0\n", "scenario.run.crises: must be an integer in [1, 1000] (got 0)"),
        ("[run]\ncrisis = 3\n", "scenario.run.crisis: must be a known key"),
        ("[crisis]\nsign = 'sideways'\n", "scenario.crisis.sign: must be one of down, up, random"),
        ("[market]\nmark = 'high'\n", "scenario.market.mark: must be a number"),
        ("[adl]\npolicy = 'fifo'\n", "scenario.adl.policy: must be one of hyperliquid"),
        (
            "[mix]\nwhale = 0.7\nflipper = 0.5\n",
            "scenario.mix: must be shares that add up to at most 1",
        ),
        ("[run\n", "scenario: must be valid TOML"),
    ],
)
def test_bad_scenario_files_give_one_line_errors_and_write_nothing(tmp_path, toml, needle):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    out = tmp_path / "out"
    proc = _cli("run", "--scenario", str(path), "--out", str(out), "--quiet")
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--policy", "fifo"], "--policy: must be one of"),
        (["--severity", "max"], "--severity: must be one of"),
        (["--crises", "0"], "--crises"),
        (["--scenario", "nowhere.toml"], "scenario: must be an existing TOML file"),
    ],
)
def test_bad_run_flags_give_one_line_errors_and_write_nothing(tmp_path, argv, needle):
    out = tmp_path / "out"
    proc = _cli("run", *argv, "--out", str(out), "--quiet")
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not Path(out).exists()


def test_default_scenario_loads_and_documents_itself():
    sc = load_scenario()
    assert sc.name == "default"
    assert sc.run.crises >= 1 and sc.adl.policy == "hyperliquid"


def test_stress_thins_the_book_twice_only_when_asked():
    # "both" (the behaviour so far) keeps the exchange's stress_thinning beside the makers'
    # withdrawal; "makers" leaves the thinning to the makers alone
    from experiments.game.scenario import load_scenario

    both = ADLGame(load_scenario().replace(**{"run.traders": 100}), seed=1, two_pass=False)
    alone = ADLGame(
        load_scenario().replace(**{"run.traders": 100, "maker.thinning": "makers"}),
        seed=1,
        two_pass=False,
    )
    assert both.exchange.specs[0].stress_thinning == 0.8
    assert alone.exchange.specs[0].stress_thinning == 0.0
    assert both.maker.withdraw == alone.maker.withdraw == 0.6


def test_ruin_ends_a_whales_learning_only_when_asked():
    from agents import Whale
    from experiments.game.scenario import load_scenario

    over = {"run.traders": 300, "run.crises": 3, "mix.whale": 0.2, "crisis.drop_median": 0.4}
    learned = {}
    for ruin in ("recapitalise", "replace"):
        game = ADLGame(
            load_scenario().replace(**over, **{"whale.ruin": ruin}), seed=4, two_pass=False
        )
        game.run()
        learned[ruin] = np.array([w.weights for w in game.members(Whale).agents])
    # the same worlds until a whale is ruined; from then on its seat learns afresh
    a, b = learned["recapitalise"], learned["replace"]
    n = min(len(a), len(b))
    assert n > 0 and (len(a) != len(b) or not np.allclose(a[:n], b[:n]))


def test_gaming_shelter_compares_haircut_per_dollar_held():
    import math
    from types import SimpleNamespace

    from experiments.runs.results import gaming_shelter

    def crisis(h, n):
        return SimpleNamespace(haircut_by_type=h, notional_by_type=n)

    same = [crisis({"flipper": 1.0, "passive": 10.0}, {"flipper": 10.0, "passive": 100.0})]
    assert gaming_shelter(same) == 0.0
    sheltered = [crisis({"flipper": 0.0, "passive": 10.0}, {"flipper": 10.0, "passive": 100.0})]
    assert gaming_shelter(sheltered) == 1.0
    # gamers pay twice as much per dollar held: (1 - 2) / (1 + 2)
    worse = [crisis({"sybil": 2.0, "entrant": 1.0}, {"sybil": 10.0, "entrant": 10.0})]
    assert gaming_shelter(worse) == pytest.approx(-1 / 3)
    assert math.isnan(gaming_shelter([crisis({"flipper": 1.0}, {"flipper": 1.0})]))
    assert math.isnan(gaming_shelter([crisis({}, {"flipper": 1.0, "passive": 1.0})]))


@pytest.mark.parametrize("name", ["default", "oct10"])
def test_to_toml_round_trips_every_builtin_scenario(tmp_path, name):
    from experiments.game.scenario import builtin_scenarios, load_scenario, to_toml

    assert name in builtin_scenarios()
    sc = load_scenario(name)
    if name == "default":  # a policy parameter table and a non-default choice
        sc = sc.replace(
            **{
                "adl.policy": "minimax_leverage",
                "adl.params": {"form": "fixed_equity"},
                "churn.family": "predictability",
            }
        )
    path = tmp_path / "s.toml"
    path.write_text(to_toml(sc, "a header\nof two lines"))
    assert path.read_text().startswith("# a header\n# of two lines\n")
    assert load_scenario(path) == sc
