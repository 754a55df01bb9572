"""The gameability audit: actions, paired measurement, summary, report files and CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import PASSIVE, WHALE
from experiments.cli import main
from experiments.studies import audit as au
from market.adl import get_policy
from market.errors import InputError
from market.exchange import BackstopConfig, Exchange
from market.spec import MarketSpec

TAKER = MarketSpec().taker_fee

# --------------------------------------------------------------------------- a hand-built world
#
# Book row 0, then L (long 20 @ 100, cash 150), A (short 30 @ 120, cash 300), B (short 40 @ 110,
# cash 1000), C (short 30 @ 95, cash 1000); mark 100, fund 0.  The wave step moves the mark to
# 90: L's equity is 150 - 200 < 0, it is liquidated into the book and leaves a hole D of about
# $50.5 (50 plus a little slippage), raised by ADL from the shorts A, B, C.
#
# At 90: A has PNL% 25 % and leverage 2700/1200 = 2.25 (BitMEX score 0.5625, Hyperliquid
# (120/90)*2.25 = 3.0); B 18.2 % x 2.0 = 0.364 (HL 2.44); C 5.3 % x 2.35 = 0.12 (HL 2.48).
# A heads both queues.


def hand_world(l_entry: float = 100.0) -> tuple[au.World, tuple[int, int, int, int]]:
    ex = Exchange((MarketSpec(lot_size=1.0),), 100.0, backstop=BackstopConfig(capital=0.0))
    acc = ex.open_accounts(4, np.array([150.0, 300.0, 1000.0, 1000.0]))
    L, A, B, C = (int(i) for i in acc)
    ex.trade_genesis([L], 0, [20], [l_entry])
    ex.trade_genesis([A], 0, [-30], [120.0])
    ex.trade_genesis([B], 0, [-40], [110.0])
    ex.trade_genesis([C], 0, [-30], [95.0])
    ex.acc.kind[[L, A, B, C]] = [PASSIVE, WHALE, PASSIVE, PASSIVE]
    marks = np.array([[90.0]])
    world = au.World(1, ex, marks, marks.copy(), 1, np.random.SeedSequence(0))
    return world, (L, A, B, C)


def small_cfg(**kw) -> au.AuditConfig:
    return au.AuditConfig(**{"accounts": 300, "targets": 2, **kw})


# --------------------------------------------------------------------------- actions
def test_close_reopen_resets_entry_through_the_book():
    world, (_, A, _, _) = hand_world()
    ex = world.pre.clone()
    eq0, fees0 = float(ex.equity()[A]), float(ex.acc.fees_paid[A])
    au.apply_close_reopen(ex, A)
    assert ex.acc.pos[A, 0] == -30
    assert ex.acc.entry[A, 0] != 120.0
    assert abs(ex.acc.entry[A, 0] - 100.0) < 0.5  # reopened near the mark, not at 120
    # the 600 dollars of profit are realised into cash and the gains ledger
    assert ex.acc.cash[A] == pytest.approx(300.0 + 600.0, abs=10.0)
    assert ex.acc.gains[A].sum() > 580.0
    # two taker fees on about $3000 of notional each, and the spread: equity only falls
    fees = float(ex.acc.fees_paid[A]) - fees0
    assert fees == pytest.approx(2 * 3000 * TAKER, rel=0.01)
    assert float(ex.equity()[A]) < eq0 - fees + 1e-9


def test_wash_trade_resets_entry_at_the_mark_with_zero_net_position_change():
    world, (_, A, _, _) = hand_world()
    ex = world.pre.clone()
    oi0 = ex.open_interest().copy()
    book0 = int(ex.acc.pos[ex.book, 0])
    eq0 = float(ex.equity()[A])
    au.apply_wash_trade(ex, A)
    assert ex.acc.pos[A, 0] == -30
    assert ex.acc.entry[A, 0] == 100.0  # exactly the mark: no book walk
    assert ex.acc.pos[ex.book, 0] == book0
    np.testing.assert_array_equal(ex.open_interest(), oi0)
    fee = 2 * 30 * 100.0 * TAKER  # two legs of $3000 at the taker fee = $2.70
    assert ex.acc.fees_paid[A] == pytest.approx(fee, rel=1e-12)
    assert float(ex.equity()[A]) == pytest.approx(eq0 - fee, rel=1e-12)
    assert ex.acc.gains[A].sum() == pytest.approx(600.0 - fee, rel=1e-12)


def test_margin_topup_then_withdrawal_restores_cash():
    world, (_, A, _, _) = hand_world()
    ex = world.pre.clone()
    cash0, ext0 = float(ex.acc.cash[A]), ex.external
    eq0 = float(ex.equity()[A])  # 300 + 30 * 20 = 900
    assert eq0 == pytest.approx(900.0)
    (params,) = au.ACTIONS["margin_topup"].candidates(ex, A, au.AuditConfig())
    assert params == {"amount": pytest.approx(900.0)}
    au.apply_margin_topup(ex, A, None, **params)
    assert ex.acc.cash[A] == pytest.approx(cash0 + 900.0)
    assert ex.leverage()[A] == pytest.approx(3000.0 / 1800.0)
    au.undo_margin_topup(ex, A, **params)
    assert ex.acc.cash[A] == pytest.approx(cash0, abs=1e-9)
    assert ex.external == pytest.approx(ext0, abs=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {"shape": "equal", "accounts": 4},
        {"shape": "equal", "accounts": 3},
        {"shape": "sacrificial", "accounts": 4, "level": 0.5},
        {"shape": "concentrated", "accounts": 3, "level": 0.25},
    ],
)
def test_sybil_split_keeps_total_position_and_cash_in_one_group(params):
    world, (_, A, _, _) = hand_world()
    ex = world.pre.clone()
    n0, cash0 = ex.n_accounts, float(ex.acc.cash[A])
    au.apply_sybil_split(ex, A, None, **params)
    k = params["accounts"]
    members = np.flatnonzero(ex.acc.group == ex.acc.group[A])
    assert members.tolist() == [A, *range(n0, n0 + k - 1)]
    assert ex.acc.pos[members, 0].sum() == -30
    assert (ex.acc.pos[members, 0] < 0).all()
    assert ex.acc.cash[members].sum() == pytest.approx(cash0, abs=1e-9)
    np.testing.assert_array_equal(ex.acc.entry[members, 0], 120.0)  # moved at entry
    assert (ex.acc.kind[members] == WHALE).all()
    # every account of the owner meets initial margin
    assert (ex.equity()[members] >= ex.initial_margin()[members] - 1e-9).all()


def test_sybil_candidates_and_decoy_leverage():
    world, (_, A, _, _) = hand_world()
    cfg = au.AuditConfig(sybil_accounts=4)
    variants = au.sybil_candidates(world.pre, A, cfg)
    assert variants[0] == {"shape": "equal", "accounts": 4}
    assert len(variants) == 1 + 2 * len(cfg.safe_levels)
    ex = world.pre.clone()
    au.apply_sybil_split(ex, A, None, shape="sacrificial", accounts=4, level=0.5)
    members = np.flatnonzero(ex.acc.group == ex.acc.group[A])
    lev = ex.leverage()[members]
    # before the split: notional 3000, equity 900 (cash 300 + PnL 600), leverage 3.33.  The
    # decoy cannot run at 40x: the PnL its lots carry ($20 a lot) is equity already, so with
    # no cash it runs at 100 / 20 = 5x; safe accounts at 3.33 / 2.  Equity
    # E = s * 3000 / 1.667 + (1 - s) * 600 = 900 gives s = 0.25: 7.5 safe lots (3 + 3 + 2 by
    # largest remainder), 22 for the decoy.  Equity targets 150 each and 450 for the decoy:
    # cash = target - PnL carried = 150 - 60, 150 - 60, 150 - 40 and 450 - 440 (sum 300)
    assert ex.acc.pos[members, 0].tolist() == [-3, -3, -2, -22]
    np.testing.assert_allclose(ex.acc.cash[members], [90.0, 90.0, 110.0, 10.0], atol=1e-9)
    np.testing.assert_allclose(lev, [2.0, 2.0, 200 / 150, 2200 / 450], rtol=1e-12)


def test_refused_split_changes_nothing_and_raises():
    world, (L, _, _, _) = hand_world()
    ex = world.pre.clone()
    ex.acc.cash[L] = 0.0  # no positive equity: 0 + 20 * 0 = 0
    n0 = ex.n_accounts
    with pytest.raises(au.ActionRefused):
        au.apply_sybil_split(ex, L, None)
    assert ex.n_accounts == n0


# --------------------------------------------------------------------------- paired runs
@pytest.mark.parametrize(
    ("policy", "action"),
    [("bitmex", "close_reopen"), ("bitmex", "wash_trade"), ("hyperliquid", "margin_topup")],
)
def test_target_escaping_a_queue_entirely_has_g_one(policy, action):
    world, (_, A, B, C) = hand_world()
    pol = get_policy(policy)
    honest = au.honest_run(world.pre, world.marks, pol)
    assert honest.burden[A] > 0
    assert honest.burden[[B, C]].sum() == 0  # A alone pays: it heads the queue
    got = au.gamed_run(
        world, pol, A, au.ACTIONS[action], au.AuditConfig(), np.random.default_rng(0)
    )
    assert got.params is not None and got.forced is got.outcome  # it acted
    run = got.outcome
    out = au.pair_outcome(honest, run, A)
    assert out["b_gamed"] == 0.0
    assert out["G"] == 1.0
    # everything A shed lands on the passive accounts; nothing on whales or bad debt
    assert out["shift_whale"] == 0.0
    assert out["shift_residual"] == 0.0
    assert out["shift_passive"] + out["shift_rounding"] + out["shift_other"] == pytest.approx(1.0)
    if policy == "bitmex":
        # the hole is 20 lots of L at D/20 each: the honest A and then B pay exactly D
        deficit = float(world.pre.clone(policy=pol).step(world.marks[0]).deficit)
        assert honest.burden[A] == pytest.approx(deficit, rel=1e-12)
        assert run.burden[B] == pytest.approx(deficit, rel=1e-12)
        assert out["shift_passive"] == pytest.approx(1.0, rel=1e-12)


def _split_outcome(accounts: int) -> dict[str, float]:
    world, (_, A, _, _) = hand_world()
    pol = get_policy("pro_rata")
    honest = au.honest_run(world.pre, world.marks, pol)
    ex = world.pre.clone(policy=pol)
    au.apply_sybil_split(ex, A, None, shape="equal", accounts=accounts)
    return au.pair_outcome(honest, au.run_world(ex, world.marks), A)


def test_pro_rata_ignores_a_lot_aligned_sybil_split():
    # every capacity is lot-limited (c = lots * D/20): pro rata takes 20/100 of every row's
    # lots, so A pays 6 of its 30 lots; split 10 + 10 + 10 the pieces pay 2 + 2 + 2
    out = _split_outcome(3)
    assert out["lots_honest"] == 6.0
    assert out["G"] == pytest.approx(0.0, abs=1e-12)
    assert out["shift_passive"] == pytest.approx(0.0, abs=1e-12)


def test_pro_rata_sybil_split_rounding_is_unbiased():
    # split 9 + 7 + 7 + 7, the pieces want 1.8 + 1.4 * 3 lots and are floored to 1 each; the
    # two rounding lots are placed by systematic sampling on the remainders (0.8, 0.4, 0.4,
    # 0.4 and the other rows'), so one instance may shed or add at most the rounding lots,
    # never more: |G| <= 2/6.  (With the old "smallest share first" rule the split shed both
    # lots every time: G = 1/3 always.)  The expectation over instances is tested in
    # tests/test_adl_smooth.py.
    out = _split_outcome(4)
    assert abs(out["G"]) <= 2 / 6 + 1e-12
    assert out["lots_honest"] == 6.0


def test_seniority_ledger_ignores_close_and_reopen_in_the_hand_world():
    world, (_, A, _, _) = hand_world()
    pol = get_policy("seniority")
    assert au.eligibility_for(pol).cap == "gains"
    assert au.eligibility_for(get_policy("pro_rata")).cap == "pnl"
    assert au.eligibility_for(pol, "equity").cap == "equity"
    honest = au.honest_run(world.pre, world.marks, pol)
    cfg = au.AuditConfig(abstain=False)
    got = au.gamed_run(world, pol, A, au.ACTIONS["close_reopen"], cfg, np.random.default_rng(0))
    out = au.pair_outcome(honest, got.outcome, A)
    assert out["b_honest"] > 0
    assert out["cost"] > 0
    # the ledger is short only by what the flip cost, and pro-rata takes the share B / U of
    # that shortfall less: the burden shed is below the cost, so the action never pays
    assert 0.0 <= out["G"] * out["b_honest"] < out["cost"]
    # allowed to abstain, the adversary sees no gain and keeps its fees
    got = au.gamed_run(
        world, pol, A, au.ACTIONS["close_reopen"], au.AuditConfig(), np.random.default_rng(0)
    )
    assert got.params is None
    assert au.pair_outcome(honest, got.outcome, A)["cost"] == 0.0


def test_adversary_abstains_from_an_action_that_backfires():
    # L entered at 110: the hole is about $250 and lots raise $12.5 each, so C's capacity is
    # its PnL, 30 x (95 - 90) = 150, not its lots.  Closing and reopening at ~100 resets it to
    # 30 x 10 = 300: under pro rata C would pay about twice as much
    world, (_, _, _, C) = hand_world(l_entry=110.0)
    pol = get_policy("pro_rata")
    honest = au.honest_run(world.pre, world.marks, pol)
    action = au.ACTIONS["close_reopen"]
    got = au.gamed_run(world, pol, C, action, au.AuditConfig(), np.random.default_rng(0))
    assert got.params is None  # abstained
    assert au.pair_outcome(honest, got.outcome, C)["G"] == 0.0
    forced = au.pair_outcome(honest, got.forced, C)
    assert forced["G"] < -0.5
    forced_again = au.gamed_run(
        world, pol, C, action, au.AuditConfig(abstain=False), np.random.default_rng(0)
    )
    assert forced_again.params == {}
    assert au.pair_outcome(honest, forced_again.outcome, C)["G"] == forced["G"]


# --------------------------------------------------------------------------- worlds and runs
def test_build_world_is_reproducible_and_stops_before_the_first_wave():
    cfg = small_cfg()
    w1, w2 = au.build_world(cfg, 3), au.build_world(cfg, 3)
    assert w1.pre is not None
    np.testing.assert_array_equal(w1.pre.acc.pos, w2.pre.acc.pos)
    np.testing.assert_array_equal(w1.marks, w2.marks)
    kinds = w1.pre.acc.kind[1 : 1 + cfg.accounts]
    assert int((kinds == WHALE).sum()) == math.floor(0.02 * 300)
    assert int((kinds == PASSIVE).sum()) == 300 - 6
    # the whales are the largest by notional
    nt = w1.pre.notional()[1 : 1 + cfg.accounts, 0]
    assert nt[kinds == WHALE].min() >= nt[kinds == PASSIVE].max()
    rep = w1.pre.clone().step(w1.marks[0])
    assert rep.deficit - rep.backstop_used > 0
    assert w1.marks.shape == (cfg.horizon, 1)
    assert (w1.script > 0).all()


def test_run_audit_is_the_same_whatever_the_workers():
    cfg = small_cfg()
    args = (cfg, ["pro_rata", "hyperliquid"], ["margin_topup", "wash_trade"], 2)
    one = au.run_audit(*args, workers=1)
    two = au.run_audit(*args, workers=2)
    assert json.dumps(one.records, sort_keys=True) == json.dumps(two.records, sort_keys=True)
    assert [r["policy"] + r["action"] for r in one.rows] == [
        "pro_ratamargin_topup",
        "pro_ratawash_trade",
        "hyperliquidmargin_topup",
        "hyperliquidwash_trade",
    ]
    by = {(r["policy"], r["action"]): r for r in one.rows}
    # pro rata on "profits only" never reads cash: topping up changes nothing
    assert by["pro_rata", "margin_topup"]["G"] == 0.0
    assert by["pro_rata", "margin_topup"]["reading"] == "does not pay"
    assert by["pro_rata", "margin_topup"]["targets"] == 4


def test_summarise_weights_targets_by_honest_burden():
    records = [_rec(1, 1.0, 1.0), _rec(1, 3.0, 0.0), _rec(2, 2.0, 0.5)]
    (row,) = au.summarise(records, ["p"], ["a"], au.AuditConfig())
    # seed 1: (1*1 + 3*0) / 4 = 0.25; seed 2: 0.5; mean 0.375
    assert row["G"] == pytest.approx(0.375)
    # interval on -log(1 - G) (G <= 1): se = sd / sqrt(2) = .125, slope 1 / (1 - m) = 1.6
    t1, m, se = 12.706204736174707, 0.375, np.std([0.25, 0.5], ddof=1) / np.sqrt(2)
    assert row["ci_low"] == pytest.approx(1 - (1 - m) * np.exp(t1 * se / (1 - m)))
    assert row["ci_high"] == pytest.approx(1 - (1 - m) * np.exp(-t1 * se / (1 - m)))
    assert row["ci_high"] < 1.0
    # cost .1 of the honest burden on every target: G net = .15 and .4 per seed
    assert row["cost"] == pytest.approx(0.1)
    assert row["G_net"] == pytest.approx(0.275)
    assert row["G_net_low"] < row["G_net"] < row["G_net_high"] < 1.0
    assert row["G_unweighted"] == pytest.approx(0.5)
    assert row["G_forced"] == pytest.approx(0.75)
    assert row["acted"] == pytest.approx((0.5 + 1.0) / 2)
    assert row["shift_passive"] == pytest.approx(0.375)
    assert row["honest_burden"] == pytest.approx((2.0 + 2.0) / 2)
    assert (row["seeds"], row["targets"], row["refused"]) == (2, 3, 0)
    assert row["reading"] == "inconclusive"


def test_the_verdict_is_decided_net_of_the_action_cost():
    # a close-and-reopen that sheds 60 % of the burden but pays 70 % of it in fees and spread
    gs = [0.60, 0.62, 0.58, 0.61, 0.59, 0.60]
    records = [_rec(seed, 1.0, g, cost=0.7) for seed, g in enumerate(gs, start=1)]
    (row,) = au.summarise(records, ["p"], ["a"], au.AuditConfig())
    assert au.reading(row["G"], row["ci_low"], row["ci_high"]) == "pays"  # gross G: the trap
    assert row["G_net"] == pytest.approx(np.mean(gs) - 0.7)
    assert row["G_net_high"] < 0 and row["reading"] == "does not pay"
    # the same saving at a small cost does pay
    cheap = [_rec(seed, 1.0, g, cost=0.01) for seed, g in enumerate(gs, start=1)]
    (row,) = au.summarise(cheap, ["p"], ["a"], au.AuditConfig())
    assert row["reading"] == "pays"


def test_float_noise_in_the_cost_keeps_g_net_at_most_one():
    # a Sybil split costs nothing, up to float noise of the equity sums (-1e-10 of the burden):
    # that must not unbound G net, whose interval stays <= 1
    gs = [0.99, 0.7, 1.0, 0.95, 0.9]
    records = [_rec(s, 1.0, g, cost=-1e-10) for s, g in enumerate(gs, start=1)]
    (row,) = au.summarise(records, ["p"], ["a"], au.AuditConfig())
    assert row["G_net"] == pytest.approx(row["G"])
    assert row["G_net_high"] <= 1.0 and row["ci_high"] <= 1.0
    assert (row["G_net_low"], row["G_net_high"]) == pytest.approx((row["ci_low"], row["ci_high"]))


def test_markdown_says_seeds_without_a_wave_and_few_seeds():
    records = [_rec(1, 1.0, 0.2), _rec(3, 1.0, 0.4)]
    for r in records:
        r.update(policy="pro_rata", action="close_reopen")
    cfg = au.AuditConfig()
    rows = au.summarise(records, ["pro_rata"], ["close_reopen"], cfg)
    result = au.AuditResult(rows, records, cfg, ["pro_rata"], ["close_reopen"], [1, 2, 3])
    text = au.format_markdown(result).replace("\n", " ")
    assert "Seeds without an ADL wave" in text and "1 of 3 (2)" in text
    assert "not yet informative" in text
    assert "G net" in text and "Reading, on G net of the action's cost" in text


def _rec(seed, b, g, cost=0.1):
    base = {f"shift_{t}": 0.0 for t in au.SHIFT_TYPES}
    return {
        "seed": seed,
        "policy": "p",
        "action": "a",
        "status": "ok",
        "b_honest": b,
        "lots_honest": 2.0,
        "G": g,
        "G_forced": 2 * g,
        "acted": float(g > 0),
        "cost": cost,
        **base,
        "shift_passive": g,
        "shift_residual": 0.0,
        "shift_rounding": 0.0,
        "shift_other": 0.0,
    }


@pytest.mark.parametrize(
    ("g", "low", "high", "verdict"),
    [
        (0.5, 0.2, 0.8, "pays"),
        (0.03, 0.01, 0.04, "does not pay"),
        (0.0, -0.1, 0.04, "does not pay"),
        (-0.5, -0.8, -0.2, "does not pay"),
        (0.04, 0.01, 0.07, "inconclusive"),
        (0.1, -0.1, 0.3, "inconclusive"),
        (0.1, math.nan, math.nan, "inconclusive"),
    ],
)
def test_reading(g, low, high, verdict):
    assert au.reading(g, low, high, 0.05) == verdict


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(au.ACTION_NAMES), min_size=1, max_size=4))
def test_parse_names(names):
    got = au.parse_names(",".join(names), au.ACTION_NAMES, "--actions", au.ACTION_NAMES)
    assert got == list(dict.fromkeys(names))
    assert au.parse_names("all", au.ACTION_NAMES, "--actions", ["x"]) == ["x"]


def test_parse_names_rejects_unknown_and_empty():
    with pytest.raises(InputError, match="--actions"):
        au.parse_names("close_reopen,teleport", au.ACTION_NAMES, "--actions", au.ACTION_NAMES)
    with pytest.raises(InputError, match="--policy"):
        au.parse_names(" , ", ["a"], "--policy", ["a"])


def test_default_policies_skip_exact_small_only_rules():
    names = au.default_policies()
    assert "min_max_ilp" not in names
    assert {"hyperliquid", "pro_rata", "seniority"} <= set(names)


def test_config_rejects_bad_values():
    with pytest.raises(InputError, match=r"audit\.sybil_accounts"):
        au.AuditConfig(sybil_accounts=1)
    with pytest.raises(InputError, match=r"audit\.cap"):
        au.AuditConfig(cap="everything")


# --------------------------------------------------------------------------- CLI
def test_cli_writes_both_files_and_prints_rows(tmp_path, capsys):
    out = tmp_path / "audit"
    argv = ["audit", "--policy", "pro_rata", "--actions", "margin_topup,wash_trade"]
    argv += ["--seeds", "2", "--out", str(out), "--json", "--workers", "1"]
    assert main([*argv, "--accounts", "300"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["policy"], r["action"]) for r in rows] == [
        ("pro_rata", "margin_topup"),
        ("pro_rata", "wash_trade"),
    ]
    assert rows[0]["G"] == 0.0 and rows[0]["seeds"] == 2
    with (out / "gameability.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["action"] for r in table] == ["margin_topup", "wash_trade"]
    assert set(au.CSV_COLUMNS) == set(table[0])
    assert float(table[1]["G"]) == pytest.approx(rows[1]["G"], rel=1e-12)
    md = (out / "gameability.md").read_text()
    assert "| pro_rata | margin_topup |" in md
    assert "does not pay" in md and "Seeds 1..2" in md


@pytest.mark.parametrize(
    ("flag", "value"), [("--policy", "pro_rata,nope"), ("--actions", "teleport")]
)
def test_cli_bad_names_fail_cleanly(tmp_path, capsys, flag, value):
    out = tmp_path / "never"
    argv = {"--policy": "pro_rata", "--actions": "close_reopen", flag: value}
    args = ["audit", *[x for kv in argv.items() for x in kv], "--seeds", "1", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert flag in err and ("pro_rata" in err if flag == "--policy" else "close_reopen" in err)
    assert not out.exists()


def test_cli_bad_number_fails_cleanly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--policy", "all", "--actions", "all", "--seeds", "0", "--out", "x"])
    assert exc.value.code == 2
    assert "--seeds" in capsys.readouterr().err
