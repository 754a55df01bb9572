"""The best-response search: the strategy space, the paired evaluation, the search's findings."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.studies.audit import search as se
from experiments.studies.audit import strategy as sg
from experiments.studies.audit.world import AuditConfig
from market.errors import InputError

SMALL = AuditConfig(accounts=500)


# --------------------------------------------------------------------------- the space
def test_idle_vector_decodes_to_doing_nothing():
    x = np.array([sg.IDLE[c] for c in sg.COORDS])
    s = sg.decode(x)
    assert s.idle and s == sg.Strategy()
    assert s.describe() == "do nothing"


@given(st.lists(st.floats(0, 1), min_size=8, max_size=8))
@settings(max_examples=200, deadline=None)
def test_every_vector_decodes_inside_the_space(v):
    s = sg.decode(np.array(v), max_lead=2, max_split=4)
    assert 0 <= s.lead <= 2 and 1 <= s.split <= 4
    assert 0 <= s.exit <= 1 and 0 <= s.reset <= 1
    assert 0.05 <= s.split_share <= 0.95 and 0.05 <= s.split_equity <= 0.95
    assert -0.9 <= s.margin <= 2.0
    assert isinstance(s.describe(), str) and s.describe()


def test_dead_zones_and_ends():
    base = np.array([sg.IDLE[c] for c in sg.COORDS])
    i = sg.COORDS.index("margin")
    for m, want in [(0.5, 0.0), (0.53, 0.0), (1.0, 2.0), (0.0, -0.9)]:
        x = base.copy()
        x[i] = m
        assert sg.decode(x).margin == pytest.approx(want)
    x = base.copy()
    x[sg.COORDS.index("reset")] = 0.05
    assert sg.decode(x).reset == 0.0  # inside the dead zone
    x[sg.COORDS.index("reset")] = 1.0
    assert sg.decode(x).reset == 1.0


def test_bad_vectors_and_moves_are_refused():
    with pytest.raises(InputError, match="strategy vector"):
        sg.decode(np.zeros(3))
    with pytest.raises(InputError, match="--moves"):
        sg.moves_mask(("reset", "teleport"))
    with pytest.raises(InputError, match=r"strategy\.margin"):
        sg.Strategy(margin=-1.0)
    with pytest.raises(InputError, match="--budget"):
        se.SearchConfig(budget=0)


def test_embed_fills_the_unsearched_coordinates_with_idle():
    mask = sg.moves_mask(("reset",))
    assert mask.sum() == 2
    x = sg.embed(np.array([1.0, 1.0]), mask)
    s = sg.decode(x)
    assert s.reset == 1.0 and s.reset_mode == "cross"
    assert s.split == 1 and s.margin == 0.0 and s.exit == 0.0 and s.lead == 0


# --------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def hl_ctx():
    return se.seed_context(SMALL, se.SearchConfig(), "hyperliquid", 1)


def test_doing_nothing_gains_exactly_zero(hl_ctx):
    r = se.evaluate(hl_ctx, sg.Strategy())
    assert r["gain"] == 0.0 and r["shed"] == 0.0 and r["burden"] > 0


@pytest.mark.parametrize(
    "s",
    [
        sg.Strategy(reset=1.0, reset_mode="cross"),
        sg.Strategy(reset=0.5),
        sg.Strategy(margin=1.0),
        sg.Strategy(margin=-0.5),
        sg.Strategy(split=3, split_share=0.8, split_equity=0.3),
        sg.Strategy(lead=1, reset=1.0, reset_mode="cross", margin=0.5),
    ],
)
def test_moves_that_keep_exposure_gain_at_most_what_they_shed(hl_ctx, s):
    """Fees, spread and impact are costs: gain = shed - cost with cost >= 0."""
    r = se.evaluate(hl_ctx, s)
    assert r["gain"] <= r["shed"] + 1e-9
    assert r["shed"] <= 1.0 + 1e-12


def test_a_deposit_buys_out_of_the_hyperliquid_queue_for_free(hl_ctx):
    r = se.evaluate(hl_ctx, sg.Strategy(margin=2.0))
    assert r["shed"] == pytest.approx(1.0)
    assert r["gain"] == pytest.approx(1.0, abs=1e-9)


def test_an_exit_sheds_the_burden_but_pays_for_the_exposure_it_gives_up(hl_ctx):
    r = se.evaluate(hl_ctx, sg.Strategy(exit=1.0))
    assert r["shed"] == pytest.approx(1.0)
    assert r["gain"] < 0.5


def test_lead_worlds_step_back_from_the_wave():
    lw = se.build_lead_world(SMALL, 1, 2)
    assert lw.starts[0] is lw.world.pre
    for lead in range(1, len(lw.starts)):
        assert lw.starts[lead].step_no == lw.world.pre.step_no - lead
        assert lw.marks[lead].shape[0] == lead + SMALL.horizon
        np.testing.assert_array_equal(lw.marks[lead][lead:], lw.world.marks)


_CTX: dict[str, se.SeedContext] = {}


def _ctx(policy: str) -> se.SeedContext:
    if policy not in _CTX:
        _CTX[policy] = se.seed_context(SMALL, se.SearchConfig(), policy, 2)
    return _CTX[policy]


@given(
    st.lists(st.floats(0, 1), min_size=8, max_size=8),
    st.sampled_from(["hyperliquid", "pro_rata", "seniority", "bitmex", "drift"]),
)
@settings(max_examples=60, deadline=None)
def test_any_strategy_plays_out_and_never_gains_more_than_it_sheds(v, policy):
    """Every point of the space runs through the exchange (refusals count as doing nothing);
    the gain is the burden shed less a cost, never more."""
    s = sg.decode(np.array(v))
    r = se.evaluate(_ctx(policy), s)
    assert np.isfinite(r["gain"]) and r["burden"] > 0
    assert r["gain"] <= r["shed"] + 1e-9 and r["shed"] <= 1 + 1e-9 and r["outside"] >= 0


# --------------------------------------------------------------------------- the findings
def _search(moves, policy, budget=30, workers=1, holdout=8):
    sc = se.SearchConfig(budget=budget, seeds=3, holdout=holdout, moves=moves)
    return se.run_search(SMALL, sc, [policy], workers=workers).policies[0]


def test_search_rediscovers_the_entry_reset_against_the_hyperliquid_queue():
    p = _search(("reset",), "hyperliquid", holdout=12)
    assert p.strategy.reset > 0  # an entry reset, found from "do nothing"
    assert p.exploitability > 0 and p.ci_low > 0
    assert p.verdict == "exploitable" and p.n == 12
    assert p.moves["reset"] == 0.0  # switching the reset off removes the gain


def test_search_finds_nothing_beyond_noise_for_splits_against_pro_rata():
    p = _search(("split",), "pro_rata")
    assert p.strategy.idle or p.ci_low <= 0  # the interval does not exclude 0
    assert p.verdict != "exploitable"


def test_search_finds_no_entry_reset_gain_when_the_seniority_ledger_binds():
    p = _search(("reset",), "seniority")
    assert p.strategy.idle
    assert p.exploitability == 0.0 and p.verdict == "unexploitable within the searched space"


def test_search_is_the_same_whatever_the_number_of_workers():
    one = _search(("reset", "margin"), "hyperliquid", budget=16, workers=1)
    two = _search(("reset", "margin"), "hyperliquid", budget=16, workers=2)
    assert one.row() == two.row()
    assert one.curve == two.curve


# --------------------------------------------------------------------------- the command
def test_cli_search_prints_exploitability_per_policy(tmp_path, capsys):
    from viz.cli import main as viz_main

    out = tmp_path / "search"
    argv = ["audit", "--search", "--policy", "hyperliquid,seniority", "--budget", "12"]
    argv += ["--seeds", "2", "--holdout", "3", "--accounts", "300", "--out", str(out)]
    assert viz_main([*argv, "--json", "--workers", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in rows] == ["hyperliquid", "seniority"]
    for r in rows:
        for key in ("exploitability", "ci_low", "ci_high", "strategy", "verdict", "n"):
            assert key in r
        assert set(r["scripted"]) == {"close_reopen", "sybil_split", "margin_topup", "wash_trade"}
    for name in ("search.csv", "search_curve.csv", "side_by_side.csv", "search.md"):
        assert (out / name).is_file()
    assert (out / "exploitability.png").is_file() and (out / "search_curves.png").is_file()
    with (out / "side_by_side.csv").open() as f:
        moves = {r["move"] for r in csv.DictReader(f)}
    assert moves == {"close_reopen", "sybil_split", "margin_topup", "wash_trade", "searched"}
    md = (out / "search.md").read_text()
    assert "unexploitable within the searched space" in md
    assert "Scripted and searched, side by side" in md


def test_cli_search_bad_moves_fail_cleanly(tmp_path, capsys):
    out = tmp_path / "never"
    argv = ["audit", "--search", "--policy", "pro_rata", "--moves", "reset,teleport"]
    assert main([*argv, "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--moves" in err and "teleport" in err
    assert not out.exists()


def test_cli_audit_without_search_still_needs_actions(tmp_path, capsys):
    argv = ["audit", "--policy", "pro_rata", "--seeds", "1", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "--actions" in capsys.readouterr().err


def test_strategic_default_is_reported_outside_adl_not_credited():
    """Under Drift every position pays, losers too: a losing account that withdraws its free
    collateral before the scripted crash sheds its share (the equity cap) and has its
    bankruptcy socialised.  Only the first counts as exploitability."""
    ctx = se.seed_context(SMALL, se.SearchConfig(), "drift", 1)
    r = se.evaluate(ctx, sg.Strategy(margin=-0.9))
    assert 0 < r["gain"] <= r["shed"] <= 1
    assert r["outside"] > 1  # far more than the whole honest burden, earned outside ADL
