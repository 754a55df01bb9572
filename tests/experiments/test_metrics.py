"""Metrics module: hand-computed examples for every metric, properties, bad input, a real run."""

from __future__ import annotations

import dataclasses
import math
from itertools import combinations, pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from experiments import metrics as M
from market.errors import InputError

# --------------------------------------------------------------------------- toy run data
#
# steps    0  1  2  3  4  5  6    7  8  9   10   11
# phase    c  c  c  X  X  c  c    X  X  c   c    c      (c = calm, X = crisis)
# crisis   0  0  0  0  0  1  1    1  1  2   2    2
# fund   100 100 100 80 60 70 90  50 50 95  120  130
# fees/step (first row is the baseline 0):
#          0  2  2  1  0  1  2.5  0  0  1   2    20     cumulative from 50
STEP_FEES = [0, 2, 2, 1, 0, 1, 2.5, 0, 0, 1, 2, 20]


def toy_timeseries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.arange(12),
            "phase": ["calm"] * 3 + ["crisis"] * 2 + ["calm"] * 2 + ["crisis"] * 2 + ["calm"] * 3,
            "crisis": [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2],
            "fund": [100, 100, 100, 80, 60, 70, 90, 50, 50, 95, 120, 130.0],
            "deficit": [0, 0, 0, 30, 25, 0, 0, 40, 10, 0, 0, 0.0],
            "backstop_used": [0, 0, 0, 20, 20, 0, 0, 40, 0, 0, 0, 0.0],
            "adl_raised": [0, 0, 0, 10, 5, 0, 0, 0, 8, 0, 0, 0.0],
            "overshoot": 0.0,
            "residual": [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0.0],
            "fee_revenue": 50 + np.cumsum(STEP_FEES),
        }
    )


def test_solvency_totals_hand_sums():
    out = M.solvency_totals(toy_timeseries())
    # deficit 30+25+40+10 = 105, backstop 20+20+40 = 80, ADL 10+5+8 = 23, residual 2
    assert out == pytest.approx(
        {"deficit": 105, "backstop_used": 80, "adl_raised": 23, "residual": 2, "covered": 103}
    )


def test_crisis_windows_and_refill_steps():
    ts = toy_timeseries().sample(frac=1.0, random_state=3)  # order must not matter
    win = M.crisis_windows(ts)
    assert win["start_step"].tolist() == [3, 7]
    assert win["end_step"].tolist() == [4, 8]
    assert win["fund_before"].tolist() == [100.0, 90.0]  # fund on steps 2 and 6
    # crisis 0 ends at step 4; fund first >= 100 at step 10 -> 6 steps; >= 90 at step 6 -> 2
    # crisis 1 ends at step 8; fund first >= 90 at step 9 -> 1 step
    assert M.backstop_refill_steps(ts).tolist() == [6.0, 1.0]
    assert M.backstop_refill_steps(ts, level=0.9).tolist() == [2.0, 1.0]
    # level 0.5: crisis 0 ends with fund 60 >= 50, crisis 1 with 50 >= 45 -> 0 steps each
    assert M.backstop_refill_steps(ts, level=0.5).tolist() == [0.0, 0.0]


def test_refill_never_is_nan():
    ts = toy_timeseries()
    ts["fund"] = [100, 100, 100, 80, 60, 70, 90, 50, 50, 60, 60, 60.0]
    # crisis 0 needs 100 (never again); crisis 1 needs 90 (never)
    assert np.isnan(M.backstop_refill_steps(ts)).all()


def test_fee_revenue_per_step_and_period():
    ts = toy_timeseries()
    assert M.fee_revenue_per_step(ts).tolist() == pytest.approx(STEP_FEES)
    per = M.fee_revenue_per_period(ts)
    assert per["phase"].tolist() == ["calm", "crisis", "calm", "crisis", "calm"]
    assert per["crisis"].tolist() == [0, 0, 1, 1, 2]
    assert per["start_step"].tolist() == [0, 3, 5, 7, 9]
    assert per["steps"].tolist() == [3, 2, 2, 2, 3]
    # calm0 0+2+2 = 4, crisis0 1+0 = 1, calm1 1+2.5 = 3.5, crisis1 0, calm2 1+2+20 = 23
    assert per["fees"].tolist() == pytest.approx([4, 1, 3.5, 0, 23])
    assert per["fees"].sum() == pytest.approx(81.5 - 50)


def test_revenue_recovery_steps_hand():
    ts = toy_timeseries()
    # pre-crisis per-step averages: crisis 0 (steps 1, 2) = 2, crisis 1 (steps 5, 6) = 1.75
    # window 1, level .95: crisis 0 target 1.9: step 5 fee 1 no, step 6 fee 2.5 yes -> 2
    #                      crisis 1 target 1.6625: step 9 fee 1 no, step 10 fee 2 yes -> 2
    assert M.revenue_recovery_steps(ts, window=1).tolist() == [2.0, 2.0]
    # window 2: crisis 0 means 1, 1.75, 1.25, 0, 0.5, 1.5, 11 (steps 5..11) -> step 11 -> 7
    #           crisis 1 means 1, 1.5, 11 (steps 9..11) -> step 11 -> 3
    assert M.revenue_recovery_steps(ts, window=2).tolist() == [7.0, 3.0]
    # level 1 with window 2: crisis 1 target 1.75 -> still step 11 -> 3
    assert M.revenue_recovery_steps(ts, level=1.0, window=2).tolist() == [7.0, 3.0]
    # level .5, window 2: the first step after a crisis counts alone (a shorter window):
    # crisis 0 target 1: step 5 fee 1 -> 1; crisis 1 target .875: step 9 fee 1 -> 1
    assert M.revenue_recovery_steps(ts, level=0.5, window=2).tolist() == [1.0, 1.0]
    ts2 = ts.iloc[:11]  # drop step 11: neither recovers with window 2
    assert np.isnan(M.revenue_recovery_steps(ts2, window=2)).all()


def test_ltv_discounted_sum():
    # 10 + 0.5 * 20 + 0.25 * 30 = 27.5
    assert M.ltv([10, 20, 30], 0.5) == pytest.approx(27.5)
    assert M.ltv([10, 20, 30], 1.0) == pytest.approx(60)
    assert M.ltv([], 0.9) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), max_size=20),
    st.floats(0.01, 1.0),
)
def test_ltv_matches_loop(fees, d):
    ref = 0.0
    for t, f in enumerate(fees):
        ref += d**t * f
    assert M.ltv(fees, d) == pytest.approx(ref, rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------- one wave
H = [0.0, 1.0, 3.0, 6.0]
C = [2.0, 2.0, 4.0, 12.0]
E = [4.0, 5.0, 6.0, 10.0]


def test_wave_vector_metrics_hand():
    assert M.accounts_touched(H) == 3
    # fractions h/c = 0, .5, .75, .5
    assert M.haircut_fractions(H, C).tolist() == [0.0, 0.5, 0.75, 0.5]
    assert M.max_haircut_fraction(H, C) == 0.75
    # h/e = 0, .2, .5, .6
    assert M.max_haircut_equity_fraction(H, E) == pytest.approx(0.6)
    # total 10: top 1 = 6, top 2 = 9
    assert M.top_k_share(H, 1) == pytest.approx(0.6)
    assert M.top_k_share(H, 2) == pytest.approx(0.9)
    assert M.top_k_share(H, 3) == pytest.approx(1.0)
    assert M.top_k_share(H, 9) == 1.0
    assert np.isnan(M.top_k_share([0.0, 0.0], 1))
    assert M.max_haircut_fraction([], []) == 0.0


def test_gini_hand():
    # sorted 0, .5, .5, .75; S = 1.75; sum i x_i = 0 + 1 + 1.5 + 3 = 5.5
    # G = 2 * 5.5 / (4 * 1.75) - 5/4 = 9/28 (mean |xi - xj| over ordered pairs: 4.5/16 / (2*.4375))
    fr = M.haircut_fractions(H, C)
    assert M.gini(fr) == pytest.approx(9 / 28)
    assert M.gini([0.5, 0.75, 0.5], size=4) == pytest.approx(9 / 28)
    # six eligible rows, three touched: positions 4, 5, 6 -> 2 + 2.5 + 4.5 = 9
    # G = 18 / (6 * 1.75) - 7/6 = 23/42
    assert M.gini([0.5, 0.75, 0.5], size=6) == pytest.approx(23 / 42)
    assert M.gini([0.0, 1.0]) == pytest.approx(0.5)  # max for n = 2 is 1 - 1/2
    assert M.gini([3.0, 3.0, 3.0]) == 0.0
    assert M.gini([0.0, 0.0]) == 0.0
    assert np.isnan(M.gini([]))


def test_inversion_rate_hand():
    # s = c - h = 2, 1, 1, 6.  Pairs with different capacity: (0,2) (0,3) (1,2) (1,3) (2,3).
    # (0,2): c 2 < 4 but s 2 > 1 -> inverted; (1,2): s tie -> not inverted.  1 / 5.
    assert M.inversion_rate(H, C) == pytest.approx(0.2)
    # pro-rata never inverts: s = (1 - t) c keeps the order
    assert M.inversion_rate(0.3 * np.array(C), C) == 0.0
    # a full queue on the largest account: c = 1, 2, 3; h = 0, 0, 3 -> s = 1, 2, 0
    # pairs (0,2) and (1,2) inverted out of 3
    assert M.inversion_rate([0.0, 0.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(2 / 3)
    assert np.isnan(M.inversion_rate([1.0, 0.0], [2.0, 2.0]))  # no pair with c_i != c_j


def reference_inversion_rate(h, c):
    """Plain-Python O(n^2) reference."""
    inv = pairs = 0
    for i, j in combinations(range(len(c)), 2):
        if c[i] == c[j]:
            continue
        pairs += 1
        hi, lo = (i, j) if c[i] > c[j] else (j, i)
        if c[hi] - h[hi] < c[lo] - h[lo]:
            inv += 1
    return inv / pairs if pairs else math.nan


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.floats(0.0, 1.0)),
        min_size=0,
        max_size=25,
    )
)
def test_inversion_rate_matches_reference(rows):
    c = np.array([float(r[0]) for r in rows])
    # coarse haircuts so that ties in c - h happen often
    h = np.round(np.array([r[1] for r in rows]) * c * 4) / 4
    got, ref = M.inversion_rate(h, c), reference_inversion_rate(h, c)
    assert (math.isnan(got) and math.isnan(ref)) or got == pytest.approx(ref, abs=1e-12)


def test_ptsr_pmr_hand():
    surv, deficit = [10.0, 4.0, 7.0], [5.0, 0.0, 2.0]
    # waves with D > 0: 10/5 = 2 and 7/2 = 3.5 -> mean 2.75, median 2.75,
    # deficit-weighted (10 + 7) / (5 + 2) = 17/7
    assert M.ptsr(surv, deficit) == pytest.approx(2.75)
    assert M.ptsr(surv, deficit, "median") == pytest.approx(2.75)
    assert M.ptsr(surv, deficit, "weighted") == pytest.approx(17 / 7)
    assert M.ptsr([1.0, 30.0, 2.0], [1.0, 1.0, 1.0], "median") == pytest.approx(2.0)
    # Delta^pi = theta * Delta = .5*4, 1*2, 1*0 -> 10/2 = 5, 4/2 = 2 -> mean 3.5
    assert M.pmr(surv, [4.0, 2.0, 0.0], [0.5, 1.0, 1.0]) == pytest.approx(3.5)
    assert M.pmr(surv, [4.0, 2.0, 0.0], [0.5, 1.0, 1.0], "weighted") == pytest.approx(14 / 4)
    assert M.pmr(surv, [4.0, 2.0, 0.0]) == pytest.approx((10 / 4 + 4 / 2) / 2)
    assert np.isnan(M.ptsr([1.0], [0.0]))
    assert np.isnan(M.ptsr([1.0], [0.0], "weighted"))
    waves = pd.DataFrame(
        {
            "max_survivor": surv,
            "max_base_survivor": [20.0, 8.0, 7.0],
            "budget": deficit,
            "raised": [9.0, 9.0, 9.0],  # what was raised does not enter: D^pi = theta D
            "max_shortfall": [4, 2, 0.0],
            "theta": [0.5, 1, 1],
        }
    )
    cap = M.run_ptsr_pmr(waves, "capacity")
    assert cap["ptsr_capacity"] == pytest.approx(2.75) and cap["pmr_capacity"] == 3.5
    base = M.run_ptsr_pmr(waves)
    # base survivors 20, 8, 7: PTSR 20/5 = 4, 7/2 = 3.5; weighted 27/7; PMR 20/2 = 10, 8/2 = 4
    assert base["ptsr_base"] == pytest.approx(3.75)
    assert base["ptsr_base_weighted"] == pytest.approx(27 / 7)
    assert base["pmr_base"] == pytest.approx(7.0) and base["pmr_base_median"] == 7.0
    assert base["pmr_base_weighted"] == pytest.approx(28 / 4)


def test_weighted_ptsr_is_not_dominated_by_a_tiny_deficit():
    # one wave socialises $1M with a $2M survivor, another 1 cent with a $1k survivor: the
    # plain mean is 50,001 (the cent dominates); the deficit-weighted PTSR stays near 2
    surv, deficit = [2e6, 1e3], [1e6, 0.01]
    assert M.ptsr(surv, deficit) == pytest.approx((2.0 + 1e5) / 2)
    assert M.ptsr(surv, deficit, "weighted") == pytest.approx((2e6 + 1e3) / (1e6 + 0.01))
    assert M.ptsr(surv, deficit, "median") == pytest.approx((2.0 + 1e5) / 2)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=30), st.integers(0, 10))
def test_gini_properties(x, pad):
    n = len(x) + pad
    g = M.gini(x, size=n)
    assert -1e-12 <= g <= 1 - 1 / n + 1e-9
    assert g == pytest.approx(M.gini(np.concatenate([x, np.zeros(pad)])), abs=1e-9)
    assert M.gini(np.full(len(x), 7.0)) == pytest.approx(0.0, abs=1e-12)
    if sum(x) > 1e-6:
        assert M.gini(np.array(x) * 3.5, size=n) == pytest.approx(g, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=30))
def test_top_k_share_properties(h):
    if sum(h) <= 0:
        assert np.isnan(M.top_k_share(h, 1))
        return
    shares = [M.top_k_share(h, k) for k in range(1, len(h) + 2)]
    assert all(b >= a - 1e-12 for a, b in pairwise(shares))  # monotone in k
    assert shares[-1] == 1.0 and shares[-2] == pytest.approx(1.0)
    for k, s in enumerate(shares[:-1], start=1):
        assert s >= k / len(h) - 1e-9  # the k largest pay at least their head-count share


# --------------------------------------------------------------------------- across waves
def toy_events() -> pd.DataFrame:
    rows = [
        # step, wave, market, account, dollars, capacity, base (eligibility base >= capacity)
        (3, 1, 0, 1, 1.0, 10.0, 40.0),
        (3, 1, 0, 2, 4.0, 10.0, 10.0),
        (3, 1, 0, 3, 3.0, 5.0, 6.0),
        (3, 1, 0, 4, 1.0, 4.0, 4.0),  # account 4 paid 1 + 1 in two rows
        (3, 1, 0, 4, 1.0, 4.0, 4.0),
        (4, 2, 0, 1, 3.0, 10.0, 40.0),
        (4, 2, 0, 2, 2.0, 10.0, 10.0),
        (4, 2, 0, 3, 4.0, 5.0, 6.0),
        (4, 2, 0, 5, 0.5, 2.0, 2.0),
        (4, 3, 1, 1, 1.0, 3.0, 4.0),  # another market: no previous wave there
        (5, 4, 0, 1, 2.0, 8.0, 16.0),
    ]
    cols = ["step", "wave", "market", "account", "dollars", "capacity", "base"]
    df = pd.DataFrame(rows, columns=cols)
    df["agent_type"] = "passive"
    return df


def toy_waves() -> pd.DataFrame:
    # wave 1 has 6 eligible rows, one of them with zero capacity (a loser under a profits-only
    # cap): 5 positive.  Base fractions: wave 1 .025 .4 .5 .5, wave 2 .075 .2 2/3 .25,
    # wave 3 .25, wave 4 .125; largest base left: 39, 37, 3, 14.
    return pd.DataFrame(
        {
            "step": [3, 4, 4, 5],
            "wave": [1, 2, 3, 4],
            "market": [0, 0, 1, 0],
            "deficit": [10.0, 9.5, 1.0, 2.0],
            "theta": 1.0,
            "budget": [10.0, 9.5, 1.0, 2.0],
            "raised": [10.0, 9.5, 1.0, 2.0],
            "overshoot": [0.0, 0.25, 0.0, 0.5],
            "eligible": [6, 4, 1, 1],
            "positive": [5, 4, 1, 1],
            "base_positive": [5, 4, 1, 1],
            "touched": [4, 4, 1, 1],
            "max_survivor": [9.0, 7.0, 2.0, 6.0],
            "max_shortfall": [5.0, 4.0, 1.0, 2.0],
            "max_haircut_frac": [0.6, 0.8, 1 / 3, 0.25],
            "max_haircut_equity_frac": [0.3, 0.4, 0.2, 0.1],
            "base_total": [62.0, 58.0, 4.0, 16.0],
            "max_base_survivor": [39.0, 37.0, 3.0, 14.0],
            "max_haircut_base_frac": [0.5, 2 / 3, 0.25, 0.125],
        }
    )


def test_rank_instability_hand():
    out = M.rank_instability(toy_events()).set_index("wave")
    assert out["touched"].tolist() == [4, 4, 1, 1]
    # wave 1: c = 10, 10, 5, 4; s = 9, 6, 2, 2 -> 5 pairs with different c, none inverted
    # wave 2: c = 10, 10, 5, 2; s = 7, 8, 1, 1.5 -> (5 vs 2): s 1 < 1.5 inverted -> 1/5
    assert out.loc[1, "inversion_rate"] == 0.0
    assert out.loc[2, "inversion_rate"] == pytest.approx(0.2)
    assert np.isnan(out.loc[3, "inversion_rate"])
    # wave 2 vs wave 1 over accounts 1, 2, 3: burden .1 .4 .6 -> .3 .2 .8
    # ranks 1 2 3 vs 2 1 3: d = 1, -1, 0 -> rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert out.loc[2, "prev_wave"] == 1 and out.loc[2, "common"] == 3
    assert out.loc[2, "spearman"] == pytest.approx(0.5)
    assert np.isnan(out.loc[1, "prev_wave"]) and np.isnan(out.loc[3, "prev_wave"])
    # wave 4 follows wave 2 in market 0, one common account -> undefined rho
    assert out.loc[4, "prev_wave"] == 2 and out.loc[4, "common"] == 1
    assert np.isnan(out.loc[4, "spearman"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 8), st.floats(0.0, 5.0), st.floats(0.5, 9.0)),
        min_size=1,
        max_size=40,
    )
)
def test_rank_instability_matches_scipy(rows):
    ev = pd.DataFrame(rows, columns=["wave", "account", "dollars", "capacity"])
    ev = ev.drop_duplicates(["wave", "account"])
    ev["step"], ev["market"] = ev["wave"], 0
    ev["dollars"] = np.minimum(ev["dollars"], ev["capacity"])
    out = M.rank_instability(ev).set_index("wave")
    for w in out.index:
        prev = out.loc[w, "prev_wave"]
        if np.isnan(prev):
            continue
        a = ev[ev["wave"] == w].set_index("account")
        b = ev[ev["wave"] == prev].set_index("account")
        common = a.index.intersection(b.index)
        assert out.loc[w, "common"] == len(common)
        x = (a["dollars"] / a["capacity"]).loc[common].to_numpy()
        y = (b["dollars"] / b["capacity"]).loc[common].to_numpy()
        if len(common) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            assert np.isnan(out.loc[w, "spearman"])
        else:
            assert out.loc[w, "spearman"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-9)


def test_wave_gini_pads_positive_capacity_rows_only():
    g = M.wave_gini(toy_events(), toy_waves())
    # wave 1: fractions .1 .4 .6 .5 among 5 rows with positive capacity (the 6th eligible row
    # has capacity 0 and is left out): sorted 0 .1 .4 .5 .6, S = 1.6,
    # sum i x = .2 + 1.2 + 2.0 + 3.0 = 6.4 -> G = 12.8 / 8 - 6/5 = 0.4
    assert g.loc[1] == pytest.approx(0.4)
    # the old padding to all 6 eligible rows gave 0.5: zero-capacity rows diluted it
    assert M.gini([0.1, 0.4, 0.6, 0.5], size=6) == pytest.approx(0.5)
    assert g.loc[2] == pytest.approx(M.gini([0.3, 0.2, 0.8, 0.25], size=4))
    assert g.loc[3] == 0.0 and g.loc[4] == 0.0  # one eligible row: G = 0
    # without the wave log only the touched rows count: sorted .1 .4 .5 .6, S = 1.6,
    # sum i x = .1 + .8 + 1.5 + 2.4 = 4.8 -> G = 9.6 / 6.4 - 5/4 = 0.25
    assert M.wave_gini(toy_events()).loc[1] == pytest.approx(0.25)


def test_wave_gini_on_the_base():
    g = M.wave_gini(toy_events(), toy_waves(), "base")
    # wave 1: h/base .025 .4 .5 .5 padded to 5: sorted 0 .025 .4 .5 .5, S = 1.425,
    # sum i x = .05 + 1.2 + 2 + 2.5 = 5.75 -> G = 11.5 / 7.125 - 6/5
    assert g.loc[1] == pytest.approx(11.5 / 7.125 - 1.2)
    assert g.loc[2] == pytest.approx(M.gini([3 / 40, 0.2, 4 / 6, 0.25], size=4))


def test_wave_gini_ignores_touched_rows_with_zero_capacity():
    ev = toy_events()
    # a lot closed at zero capacity and zero dollars (a row ADL touched but could take nothing
    # from) is not part of the burden distribution either
    extra = pd.DataFrame(
        [(3, 1, 0, 9, 0.0, 0.0, 0.0, "passive")], columns=[*ev.columns[:-1], "agent_type"]
    )
    ev2 = pd.concat([ev, extra], ignore_index=True)
    for base in ("capacity", "base"):
        got = M.wave_gini(ev2, toy_waves(), base)
        assert got.equals(M.wave_gini(ev, toy_waves(), base))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 4), st.floats(0.0, 1.0, allow_subnormal=False), st.floats(0.1, 9.0)
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_wave_gini_matches_gini(rows, extra, zero_cap):
    ev = pd.DataFrame(rows, columns=["wave", "frac", "capacity"])
    ev["account"] = np.arange(len(ev))
    ev["dollars"] = ev["frac"] * ev["capacity"]
    ev["base"] = 2.0 * ev["capacity"]
    ev["step"], ev["market"] = ev["wave"], 0
    counts = ev.groupby("wave").size()
    waves = pd.DataFrame(
        {"step": counts.index, "wave": counts.index, "market": 0, "raised": 1.0}
        | {"eligible": counts.to_numpy() + extra + zero_cap, "touched": counts.to_numpy()}
        | {"positive": counts.to_numpy() + extra, "base_positive": counts.to_numpy() + extra}
    )
    got = M.wave_gini(ev, waves)
    got_base = M.wave_gini(ev, waves, "base")
    for w, n in counts.items():
        sel = ev[ev["wave"] == w]
        fr = M.haircut_fractions(sel["dollars"], sel["capacity"])
        assert got.loc[w] == pytest.approx(M.gini(fr, size=int(n) + extra), abs=1e-9)
        # base = 2 x capacity: the fractions halve, and a Gini is scale-free
        assert got_base.loc[w] == pytest.approx(got.loc[w], abs=1e-9)


# --------------------------------------------------------------------------- moral hazard
def toy_bankruptcies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [3, 4, 4, 8, 10],
            "account": [7, 7, 9, 11, 12],
            "deficit": [30.0, 5.0, 20.0, 10.0, 5.0],
            "backstop": [20.0, 5.0, 15.0, 0.0, 5.0],
            "adl": [10.0, 0.0, 0.0, 8.0, 0.0],
            "residual": [0.0, 0.0, 5.0, 2.0, 0.0],
        }
    )


def toy_agents() -> pd.DataFrame:
    rows = [
        # crisis, step, uid, account, type, accounts, eq_start, target_lev, churned
        (0, 4, 1, 7, "passive", 1, 40.0, 2.0, False),
        (0, 4, 2, 9, "sybil", 3, 60.0, 1.0, False),
        (0, 4, 3, 11, "whale", 1, 100.0, 4.0, False),
        (0, 4, 4, 13, "whale", 1, 0.0, 2.0, True),
        (0, 4, 6, 14, "passive", 1, 50.0, 2.0, False),
        (1, 8, 1, 7, "passive", 1, 50.0, 2.0, False),
        (1, 8, 2, 9, "sybil", 3, 30.0, 1.0, True),
        (1, 8, 3, 11, "whale", 1, 25.0, 5.0, False),
        (1, 8, 6, 14, "passive", 1, 75.0, 2.0, True),
        (1, 8, 5, 15, "entrant", 1, 20.0, 3.0, False),
        (2, 12, 1, 7, "passive", 1, 10.0, 2.0, False),
        (2, 12, 5, 15, "entrant", 1, 10.0, 3.0, False),
    ]
    cols = ["crisis", "step", "uid", "account", "type", "accounts"]
    cols += ["equity_at_crisis_start", "target_leverage", "churned"]
    df = pd.DataFrame(rows, columns=cols)
    df["agent_id"] = df["uid"] + 100
    df["equity"] = df["equity_at_crisis_start"]
    return df


def test_externality_ratio_hand():
    b = toy_bankruptcies()
    # others paid 20 + 10 + 5 + 15 + 8 + 5 = 63 of a 70 deficit
    assert M.externality_ratio(b) == pytest.approx(63 / 70)
    # own equity: account 7 in crisis 0 (steps 3, 4 -> boundary at step 4): 40, counted once;
    # account 9 is a 3-account Sybil owner (not matched); account 11 at step 8 -> crisis 1: 25;
    # step 10 -> crisis 2 (boundary at step 12) where account 12 is not in the panel.
    # loss = 70 + 40 + 25 = 135 -> 63 / 135 = 7/15
    assert M.externality_ratio(b, toy_agents()) == pytest.approx(7 / 15)
    assert np.isnan(M.externality_ratio(b.iloc[:0]))


def test_leverage_drift_hand():
    a = toy_agents()
    # whales: crisis 0 -> (4 + 2) / 2 = 3, crisis 1 -> 5, crisis 2 -> none
    lev = M.leverage_by_crisis(a, "whale")
    assert lev.iloc[:2].tolist() == [3.0, 5.0] and np.isnan(lev.iloc[2])
    assert M.leverage_drift(a, "whale") == pytest.approx(2.0)
    # entrants: 3 -> 3
    assert M.leverage_drift(a, "entrant") == 0.0
    assert np.isnan(M.leverage_drift(a, "flipper"))


def test_retention_curve_hand():
    r = M.retention_curve(toy_agents())
    # cohort (crisis 0): passive uids 1, 6; sybil 2; whale 3, 4 (4 churned at crisis 0)
    # after crisis 0: passive 2/2, sybil 1/1, whale 1/2, all 4/5
    # after crisis 1: passive 1/2 (6 churned), sybil 0/1, whale 1/2, all 2/5
    # after crisis 2: passive 1/2, sybil 0 (gone), whale 0/2 (3 missing from the panel), all 1/5
    assert list(r.columns) == ["passive", "sybil", "whale", "all"]
    assert r.loc[0].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.8])
    assert r.loc[1].tolist() == pytest.approx([0.5, 0.0, 0.5, 0.4])
    assert r.loc[2].tolist() == pytest.approx([0.5, 0.0, 0.0, 0.2])


def test_ltv_lost_per_deficit_dollar_hand():
    ts, a = toy_timeseries(), toy_agents()
    # crisis 0: positive equity at start 40 + 60 + 100 + 0 + 50 = 250; churner uid 4 has 0
    # crisis 1: 50 + 30 + 25 + 75 + 20 = 200; churners uid 2 (30) and 6 (75): share .525
    # per-step rates: calm before crisis 0 = 2, before crisis 1 = 1.75
    # lost per step = 0 * 2 + .525 * 1.75 = 0.91875; covered = 80 + 23 = 103
    per_step = 0.525 * 1.75
    assert M.ltv_lost_per_deficit_dollar(a, ts) == pytest.approx(per_step * 100 / 103)
    # horizon 2 at discount .5: annuity 1 + .5 = 1.5
    got = M.ltv_lost_per_deficit_dollar(a, ts, discount=0.5, horizon=2)
    assert got == pytest.approx(per_step * 1.5 / 103)
    assert M.ltv_lost_per_deficit_dollar(a, ts, discount=1.0, horizon=3) == pytest.approx(
        per_step * 3 / 103
    )
    ts0 = ts.assign(backstop_used=0.0, adl_raised=0.0)
    assert np.isnan(M.ltv_lost_per_deficit_dollar(a, ts0))


# --------------------------------------------------------------------------- statistics
def test_confidence_interval_hand():
    # mean 2.5, s = sqrt(5/3) = 1.290994, se = 0.645497, t(.975, 3) = 3.182446
    mean, low, high, n = M.confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and n == 4
    assert low == pytest.approx(2.5 - 2.054260, abs=1e-5)
    assert high == pytest.approx(2.5 + 2.054260, abs=1e-5)
    got = M.confidence_interval([1.0, np.nan, 2.0, 3.0, 4.0])
    assert got == pytest.approx((mean, low, high, 4))  # the NaN is not counted in n
    one = M.confidence_interval([5.0])
    assert one.mean == 5.0 and np.isnan(one.low) and np.isnan(one.high) and one.n == 1
    none = M.confidence_interval([np.nan])
    assert np.isnan(none.mean) and np.isnan(none.low) and none.n == 0
    assert M.confidence_interval([2.0, 2.0]) == (2.0, 2.0, 2.0, 2)


def test_confidence_interval_logit_and_log_by_hand():
    # [0, 1]: .2 .4 .6 -> m = .4, se = .2 / sqrt(3), t(.975, 2) = 4.302653;
    # logit(.4) +- t se / (.4 * .6), mapped back with the logistic function
    t2 = 4.302653
    half = t2 * (0.2 / math.sqrt(3)) / 0.24
    expit = lambda y: 1 / (1 + math.exp(-y))  # noqa: E731
    lo, hi = expit(math.log(0.4 / 0.6) - half), expit(math.log(0.4 / 0.6) + half)
    got = M.confidence_interval([0.2, 0.4, 0.6], bounds=(0.0, 1.0))
    assert got.mean == pytest.approx(0.4)
    assert (got.low, got.high) == pytest.approx((lo, hi), abs=1e-6)
    assert 0.0 < got.low < 0.4 < got.high < 1.0
    # [0, inf): 1, 3 -> m = 2, se = 1, t(.975, 1) = 12.706205: 2 exp(+-12.706205 / 2)
    got = M.confidence_interval([1.0, 3.0], bounds=(0.0, np.inf))
    t1 = 12.706205
    assert (got.low, got.high) == pytest.approx((2 * math.exp(-t1 / 2), 2 * math.exp(t1 / 2)))
    # (-inf, 1]: 1 - (1 - m) exp(-+ t se / (1 - m)) for G-like metrics
    got = M.confidence_interval([0.5, -0.5], bounds=(-np.inf, 1.0))
    se = 0.5  # s = sqrt(.5), n = 2; at m = 0 the slope 1 / (1 - m) is 1
    assert got.high == pytest.approx(1 - math.exp(-t1 * se))
    assert got.low == pytest.approx(1 - math.exp(t1 * se))
    assert M.interval_method((0, 1)) == "logit-t"
    assert M.interval_method((0, np.inf)) == "log-t"
    assert M.interval_method((-np.inf, 1)) == "log-t"
    assert M.interval_method() == "t"


def test_interval_over_fractions_with_two_seeds_stays_in_range():
    # what compare drew with 2 seeds: a Student-t interval over [0, 1] data leaves [0, 1]
    v = [0.05, 0.95]
    old = M.confidence_interval(v)
    assert old.low < -5 and old.high > 6  # the trap: retention of -500 %
    got = M.confidence_interval(v, bounds=(0.0, 1.0))
    assert 0.0 <= got.low < got.mean < got.high <= 1.0 and got.n == 2
    # dollars (non-negative) never get a negative end, a count never either
    dollars = M.confidence_interval([10.0, 90_000.0], bounds=(0.0, np.inf))
    assert dollars.low > 0.0
    # a Gini of 0.99 and 0.98: the end stays below 1
    gini = M.confidence_interval([0.99, 0.98], bounds=(0.0, 1.0))
    assert gini.high <= 1.0 and gini.low >= 0.0


def test_interval_refuses_values_outside_the_declared_range():
    with pytest.raises(InputError) as err:
        M.confidence_interval([0.5, 1.5], bounds=(0.0, 1.0))
    assert err.value.field == "values"
    # float noise at an end is clipped, not refused
    got = M.confidence_interval([-1e-12, 0.5], bounds=(0.0, 1.0))
    assert got.low >= 0.0
    with pytest.raises(InputError):
        M.confidence_interval([1.0, 2.0], bounds=(1.0, 1.0))


def test_paired_difference_hand():
    # d = 2, 3, 4: mean 3, s = 1, se = 1/sqrt(3); t(.975, 2) = 4.302653 -> half 2.484138
    # t = 3 sqrt(3) = 5.196152; df 2: p = 1 - t / sqrt(t^2 + 2) = 1 - 5.196152/5.385165
    out = M.paired_difference([3.0, 5.0, 7.0, np.nan], [1.0, 2.0, 3.0, 4.0])
    assert out.n == 3 and out.mean == pytest.approx(3.0)
    assert out.low == pytest.approx(3 - 2.484138, abs=1e-5)
    assert out.high == pytest.approx(3 + 2.484138, abs=1e-5)
    assert out.p_value == pytest.approx(0.035099, abs=1e-5)
    same = M.paired_difference([1.0, 2.0], [1.0, 2.0])
    assert same.mean == 0.0 and same.p_value == 1.0
    assert M.paired_difference([2.0, 3.0], [1.0, 2.0]).p_value == 0.0


def test_paired_difference_of_fractions_stays_within_plus_minus_one():
    a, b = [0.9, 0.1], [0.05, 0.3]  # differences .85 and -.2 over 2 seeds
    old = M.paired_difference(a, b)
    assert old.low < -1 or old.high > 1  # the unbounded t interval leaves [-1, 1]
    got = M.paired_difference(a, b, bounds=(0.0, 1.0))
    assert -1.0 <= got.low < got.mean < got.high <= 1.0 and got.n == 2
    assert M.difference_bounds((0.0, 1.0)) == (-1.0, 1.0)
    assert M.difference_bounds((0.0, np.inf)) == (-np.inf, np.inf)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
)
def test_paired_p_value_agrees_with_the_interval(a, b):
    m = min(len(a), len(b))
    d = M.paired_difference(a[:m], b[:m], 0.95, bounds=(0.0, 1.0))
    assert -1.0 <= d.low <= d.mean <= d.high <= 1.0
    if np.isfinite(d.p_value) and d.high > d.low and abs(d.p_value - 0.05) > 1e-6:
        excludes = d.low > 0 or d.high < 0
        assert excludes == (d.p_value < 0.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_confidence_interval_properties(v):
    m, lo, hi, n = M.confidence_interval(v, 0.9)
    _, lo2, hi2, _ = M.confidence_interval(v, 0.99)
    assert n == len(v)
    assert m == pytest.approx(np.mean(v))
    assert lo <= m + 1e-6 and m <= hi + 1e-6
    assert lo2 <= lo + 1e-6 and hi2 >= hi - 1e-6  # a higher level is never narrower


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from([(0.0, 1.0), (0.0, np.inf), (-np.inf, 1.0), (-1.0, 1.0), (5.0, 7.5)]),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20),
    st.floats(0.5, 0.999),
)
def test_bounded_interval_stays_in_range_and_holds_the_mean(bounds, u, level):
    lo, hi = bounds
    # map unit draws onto the range (a wide finite stretch for an open side)
    a = lo if np.isfinite(lo) else hi - 1e4
    b = hi if np.isfinite(hi) else lo + 1e4
    v = a + (b - a) * np.asarray(u)
    got = M.confidence_interval(v, level, bounds)
    assert got.n == len(v)
    if len(v) == 1:
        assert np.isnan(got.low)
        return
    assert lo <= got.low <= got.mean <= got.high <= hi
    wider = M.confidence_interval(v, min(level + 0.0009, 0.9999), bounds)
    assert wider.low <= got.low + 1e-9 * (1 + abs(got.low))
    assert wider.high >= got.high - 1e-9 * (1 + abs(got.high))


# --------------------------------------------------------------------------- headline
def test_headline_toy():
    out = M.headline(toy_timeseries(), toy_agents(), toy_events(), toy_waves(), toy_bankruptcies())
    must = [
        "overshoot",
        "adl_waves",
        *M.WAVE_KEYS,
        "externality_ratio",
        "leverage_drift",
        "retention",
        "ltv_lost_per_deficit_dollar",
    ]
    assert set(must) <= set(out) and all(type(v) is float for v in out.values())
    assert out["overshoot"] == pytest.approx(0.75)  # 0 + .25 + 0 + .5
    assert out["adl_waves"] == 4.0
    assert out["max_haircut_capacity_frac"] == pytest.approx(0.8)
    assert out["max_haircut_base_frac"] == pytest.approx(2 / 3)
    assert out["max_haircut_equity_frac"] == pytest.approx(0.4)
    g = M.wave_gini(toy_events(), toy_waves())
    assert out["gini_haircut_capacity"] == pytest.approx(g.mean())
    gb = M.wave_gini(toy_events(), toy_waves(), "base")
    assert out["gini_haircut_base"] == pytest.approx(gb.mean())
    # capacity: ptsr 9/10, 7/9.5, 2/1, 6/2 -> mean; pmr: 9/5, 7/4, 2/1, 6/2 -> mean
    assert out["ptsr_capacity"] == pytest.approx((0.9 + 7 / 9.5 + 2 + 3) / 4)
    assert out["pmr_capacity"] == pytest.approx((1.8 + 1.75 + 2 + 3) / 4)
    # base: survivors 39, 37, 3, 14 over budgets 10, 9.5, 1, 2 and shortfalls 5, 4, 1, 2
    r = [3.9, 37 / 9.5, 3.0, 7.0]
    assert out["ptsr_base"] == pytest.approx(np.mean(r))
    assert out["ptsr_base_median"] == pytest.approx((3.9 + 37 / 9.5) / 2)
    assert out["ptsr_base_weighted"] == pytest.approx(93 / 22.5)
    assert out["pmr_base"] == pytest.approx(np.mean([39 / 5, 37 / 4, 3.0, 7.0]))
    assert out["pmr_base_weighted"] == pytest.approx(93 / 12)
    assert out["externality_ratio"] == pytest.approx(7 / 15)
    assert out["leverage_drift"] == pytest.approx(2.0)
    assert out["retention"] == pytest.approx(0.2)
    assert out["accounts_touched"] == 5.0
    assert out["deficit"] == 105.0 and out["refill_steps"] == pytest.approx(3.5)  # (6 + 1) / 2


def _price_rule_twin(events: pd.DataFrame, waves: pd.DataFrame, scale: float):
    """The same waves under another ADL price rule: same dollars and base, capacity x scale.

    A previous-mark rule and a bankruptcy-price rule close lots at different prices, so the
    capacity (lots x lot value, capped by the base) differs while the haircuts and the
    eligibility base do not.
    """
    ev = events.assign(capacity=np.minimum(events["capacity"] * scale, events["base"]))
    w = waves.copy()
    agg = M.wave_rows(ev).groupby("wave")
    w["max_haircut_frac"] = (agg["burden"].max()).reindex(w["wave"]).to_numpy()
    surv = (M.wave_rows(ev).eval("capacity - dollars")).groupby(M.wave_rows(ev)["wave"]).max()
    w["max_survivor"] = surv.reindex(w["wave"]).to_numpy()
    return ev, w


def test_price_rule_twins_share_every_base_metric():
    ev, w = toy_events(), toy_waves()
    ev2, w2 = _price_rule_twin(ev, w, 1.6)
    args = (toy_timeseries(), toy_agents())
    a = M.headline(*args, ev, w, toy_bankruptcies())
    b = M.headline(*args, ev2, w2, toy_bankruptcies())
    for key in M.WAVE_KEYS:
        if key.endswith("_capacity") or "capacity_frac" in key:
            continue
        if key in ("inversion_rate", "rank_correlation", "max_haircut_equity_frac"):
            continue
        assert a[key] == pytest.approx(b[key], nan_ok=True), key
    # the capacity versions tell the two rules apart although they took the same dollars
    assert a["max_haircut_capacity_frac"] != pytest.approx(b["max_haircut_capacity_frac"])
    assert a["gini_haircut_capacity"] != pytest.approx(b["gini_haircut_capacity"])
    assert a["ptsr_capacity"] != pytest.approx(b["ptsr_capacity"])


def test_headline_without_adl_is_nan_not_error():
    ev, w = toy_events().iloc[:0], toy_waves().iloc[:0]
    out = M.headline(toy_timeseries(), toy_agents(), ev, w, toy_bankruptcies().iloc[:0])
    assert out["overshoot"] == 0.0 and out["adl_waves"] == 0.0
    assert out["accounts_touched"] == 0.0  # counts count the run as it is
    for key in (*M.WAVE_KEYS, "externality_ratio"):
        assert np.isnan(out[key]), key  # a run without a wave has no largest haircut, no PTSR


def test_headline_on_a_real_run():
    from experiments.game.model import ADLGame
    from experiments.game.scenario import load_scenario
    from experiments.runs.results import adl_events_frame

    sc = load_scenario("default")
    sc = dataclasses.replace(sc, run=dataclasses.replace(sc.run, crises=3, traders=300))
    game = ADLGame(sc, seed=1)
    game.run()
    ts = game.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    agents = pd.concat([pd.DataFrame(p) for p in game.panel], ignore_index=True)
    events = adl_events_frame(game)
    waves = game.exchange.log.waves.to_array()
    bk = game.exchange.log.bankruptcies.to_array()
    out = M.headline(ts, agents, events, waves, bk)
    tot = M.solvency_totals(ts)
    # the three logs agree on what ADL raised and what the backstop paid
    assert tot["adl_raised"] == pytest.approx(events["dollars"].sum(), rel=1e-9, abs=1e-6)
    assert tot["adl_raised"] == pytest.approx(waves["raised"].sum(), rel=1e-9, abs=1e-6)
    assert bk["adl"].sum() <= tot["adl_raised"] + 1e-6
    assert out["overshoot"] == pytest.approx(waves["overshoot"].sum())
    assert 0.0 <= out["retention"] <= 1.0
    assert np.isnan(out["externality_ratio"]) or 0.0 <= out["externality_ratio"] <= 1.0
    assert out["max_haircut_capacity_frac"] <= 1.0 + 1e-9
    assert 0.0 <= out["max_haircut_base_frac"] <= 1.0 + 1e-9
    # the wave log's largest haircut over base is the ADL log's
    frac = M.wave_rows(events)["burden_base"].max()
    assert out["max_haircut_base_frac"] == pytest.approx(frac, rel=1e-9)
    assert out["adl_waves"] == float(len(waves))
    assert out["accounts_touched"] == float(np.unique(events["account"]).size)
    assert out["ltv_lost_per_deficit_dollar"] >= 0.0 or np.isnan(out["ltv_lost_per_deficit_dollar"])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: M.gini([1.0, -1.0]), "x"),
        (lambda: M.gini([1.0, 2.0], size=1), "size"),
        (lambda: M.gini([[1.0]]), "x"),
        (lambda: M.top_k_share([1.0], 0), "k"),
        (lambda: M.top_k_share([np.inf], 1), "haircut"),
        (lambda: M.haircut_fractions([1.0, 1.0], [0.0, 2.0]), "haircut"),
        (lambda: M.haircut_fractions([1.0], [1.0, 2.0]), "capacity"),
        (lambda: M.max_haircut_equity_fraction([1.0], [0.0]), "haircut"),
        (lambda: M.ptsr([1.0, 2.0], [1.0]), "deficit"),
        (lambda: M.ptsr([1.0], [1.0], "max"), "how"),
        (lambda: M.wave_gini(toy_events(), toy_waves(), "equity"), "base"),
        (lambda: M.wave_gini(toy_events().drop(columns="base"), None, "base"), "events"),
        (lambda: M.run_ptsr_pmr(toy_waves(), "margin"), "base"),
        (lambda: M.confidence_interval([0.5, 2.0], bounds=(0.0, 1.0)), "values"),
        (lambda: M.confidence_interval([0.5], bounds=(1.0, 0.0)), "bounds"),
        (lambda: M.pmr([1.0], [1.0], 2.0), "theta"),
        (lambda: M.ltv([1.0], 0.0), "discount"),
        (lambda: M.confidence_interval([1.0, 2.0], 1.5), "level"),
        (lambda: M.confidence_interval([1.0, np.inf]), "values"),
        (lambda: M.paired_difference([1.0], [1.0, 2.0]), "b"),
        (lambda: M.solvency_totals(toy_timeseries().drop(columns="fund")), "timeseries"),
        (lambda: M.solvency_totals([1, 2]), "timeseries"),
        (lambda: M.backstop_refill_steps(toy_timeseries(), level=0.0), "level"),
        (lambda: M.revenue_recovery_steps(toy_timeseries(), window=0), "window"),
        (lambda: M.rank_instability(toy_events().drop(columns="capacity")), "events"),
        (lambda: M.leverage_drift(toy_agents(), ""), "agent_type"),
        (lambda: M.ltv_lost_per_deficit_dollar(toy_agents(), toy_timeseries(), 1.0), "discount"),
        (lambda: M.ltv_lost_per_deficit_dollar(toy_agents(), toy_timeseries(), 0.9, 0), "horizon"),
        (
            lambda: M.fee_revenue_per_step(toy_timeseries().assign(fee_revenue=[5.0, 4.0] * 6)),
            "fee_revenue",
        ),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.field == field
    assert "\n" not in str(err.value)


def test_structured_arrays_accepted():
    w = toy_waves()
    rec = w.to_records(index=False)
    arr = np.array(rec, dtype=rec.dtype)
    assert M.run_ptsr_pmr(arr) == pytest.approx(M.run_ptsr_pmr(w))
    assert M.run_ptsr_pmr(arr, "capacity") == pytest.approx(M.run_ptsr_pmr(w, "capacity"))
    ev = toy_events().rename(columns={"dollars": "haircut"})  # the raw ADL log's name
    assert M.rank_instability(ev).equals(M.rank_instability(toy_events()))


def test_seeds_needed_by_hand():
    # d = [1, 3]: mean 2, sd sqrt(2); n = ((1.95996 + 0.84162) * 1.41421 / 2)^2 = 3.92 -> 4
    assert M.seeds_needed([1.0, 3.0], [0.0, 0.0]) == 4.0
    # half the difference needs four times the seeds
    assert M.seeds_needed([1.0, 3.0], [0.0, 0.0], delta=1.0) == 16.0
    assert M.seeds_needed([1.0, 1.0], [0.0, 0.0]) == 2.0  # no spread: the minimum
    assert M.seeds_needed([1.0, -1.0], [0.0, 0.0]) == float("inf")  # no difference to find
    assert np.isnan(M.seeds_needed([1.0], [0.0]))


def test_detectable_difference_inverts_seeds_needed():
    # d = [1, 3]: sd sqrt(2), n 2: (1.95996 + 0.84162) * 1.41421 / sqrt(2) = 2.8016
    assert M.detectable_difference([1.0, 3.0], [0.0, 0.0]) == pytest.approx(2.80158, rel=1e-4)
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, 50), rng.normal(0.0, 2.0, 50)
    mde = M.detectable_difference(a, b)
    # asking seeds_needed for that difference gives back about the pairs we have
    assert M.seeds_needed(a, b, delta=mde) == pytest.approx(50, abs=1)
    assert np.isnan(M.detectable_difference([1.0], [0.0]))


@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=30),
    st.integers(1, 50),
)
@settings(max_examples=200, deadline=None)
def test_prediction_interval_holds_the_mean_inside_the_range_and_is_wider(values, m):
    lo, hi = M.prediction_interval(values, m, bounds=(0.0, 1.0))
    mean = float(np.mean(values))
    assert 0.0 <= lo <= mean + 1e-12 and mean - 1e-12 <= hi <= 1.0
    ci = M.confidence_interval(values)  # unbounded: the plain t interval of the mean
    lo_u, hi_u = M.prediction_interval(values, m)  # unbounded: a new mean varies more
    assert hi_u - lo_u >= (ci.high - ci.low) - 1e-9
    lo2, hi2 = M.prediction_interval(values, m + 100, bounds=(0.0, 1.0))
    assert hi2 - lo2 <= hi - lo + 1e-12  # more new runs: a narrower interval
    assert math.isnan(M.prediction_interval([0.5], m)[0])
