"""The experiment catalogue: specs (common random numbers), summaries, bounds, files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from experiments.cli import EXPERIMENTS, main
from experiments.runs.results import HEADLINE_RANGES
from experiments.studies import bounds as cb
from experiments.studies import catalogue as cat
from experiments.studies import experiment as xp
from experiments.studies import report as rep
from market.adl import POLICIES, SEVERITIES, ADLPolicy, water_fill
from market.errors import InputError

GAME = [p for p in POLICIES if p != "min_max_ilp"]


@pytest.fixture(scope="module")
def tiny():
    return xp.base_scenario("tiny")


# --------------------------------------------------------------------------- registry and CLI
def test_every_experiment_is_listed(capsys):
    assert tuple(cat.CATALOGUE) == EXPERIMENTS
    assert set(EXPERIMENTS) >= {
        "compare",
        "audit",
        "moral-hazard",
        "attrition",
        "frontier",
        "bounds",
        "oct10",
    }
    assert main(["experiment", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(EXPERIMENTS)
    for name, line in zip(EXPERIMENTS, lines, strict=True):
        assert line.split()[0] == name
        assert len(line.split()) > 4  # a real one-line description follows the name


def test_cli_refuses_bad_input(capsys, tmp_path):
    assert main(["experiment", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "experiment: must be one of compare, audit" in err and "'nope'" in err
    assert main(["experiment", "bounds"]) == 2
    assert "--out" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "f").write_text("x")
    assert main(["experiment", "bounds", "--out", str(full)]) == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(InputError, match="--seeds"):
        cat.run_experiment("bounds", 0, tmp_path / "y")
    with pytest.raises(InputError, match="--scale"):
        cat.run_experiment("bounds", 1, tmp_path / "y", scale="huge")


def test_game_policies_leave_out_the_exact_small_rule():
    assert xp.game_policies() == GAME
    assert "min_max_ilp" not in xp.game_policies()


# --------------------------------------------------------------------------- specs (CRN)
def _by_policy(specs):
    out: dict[tuple, list[int]] = {}
    for s in specs:
        out.setdefault((s.policy, s.severity, json.dumps(s.cell, sort_keys=True)), []).append(
            s.seed
        )
    return out


def test_compare_specs_pair_every_policy_on_the_same_seeds(tiny):
    specs = cat.CATALOGUE["compare"].specs(3, tiny)
    assert len(specs) == len(GAME) * 3
    groups = _by_policy(specs)
    assert {k[0] for k in groups} == set(GAME)
    assert all(sorted(v) == [1, 2, 3] for v in groups.values())
    # one scenario for every run: only the policy differs between paired runs
    assert all(s.scenario == specs[0].scenario for s in specs)
    assert specs[0].scenario["run"]["traders"] == 200
    assert {s.severity for s in specs} == {tiny.adl.severity}
    assert all(s.tags["experiment"] == "compare" for s in specs)
    assert len({(s.policy, s.seed) for s in specs}) == len(specs)


def test_moral_hazard_specs_vary_participation(tiny):
    specs = cat.CATALOGUE["moral-hazard"].specs(2, xp.base_scenario())
    ns = sorted({s.cell["run.traders"] for s in specs})
    assert ns == [250, 500, 1000, 2000]
    for s in specs:
        assert s.scenario["run"]["traders"] == s.cell["run.traders"]
    groups = _by_policy(specs)
    assert len(groups) == len(GAME) * 4
    assert all(sorted(v) == [1, 2] for v in groups.values())
    # the trader grid follows the base scenario
    tiny_ns = sorted({s.cell["run.traders"] for s in cat.MoralHazard().specs(1, tiny)})
    assert tiny_ns == [25, 50, 100, 200]


def test_attrition_and_frontier_specs(tiny):
    att = cat.CATALOGUE["attrition"].specs(2, tiny)
    assert all(s.scenario["run"]["crises"] == 20 and s.cell == {"run.crises": 20} for s in att)
    assert all(sorted(v) == [1, 2] for v in _by_policy(att).values())
    fr = cat.CATALOGUE["frontier"].specs(2, tiny)
    assert len(fr) == len(GAME) * len(SEVERITIES) * 2
    pairs = _by_policy(fr)
    assert {(p, s) for p, s, _ in pairs} == {(p, s) for p in GAME for s in SEVERITIES}
    assert all(sorted(v) == [1, 2] for v in pairs.values())
    with pytest.raises(InputError, match="severity"):
        cat.Frontier(severity_names=("nope",)).specs(1, tiny)
    with pytest.raises(InputError, match="policy"):
        cat.Compare(policies=("nope",)).specs(1, tiny)


# --------------------------------------------------------------------------- summaries
def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy": ["pro_rata"] * 3 + ["queue"] * 3 + ["queue"],
            "seed": [1, 2, 3, 1, 2, 3, 4],
            "x": [1.0, 2.0, 3.0, 2.0, 4.0, 9.0, 100.0],
            "status": ["ok"] * 6 + ["error"],
        }
    )


def test_interval_table_hand_numbers():
    t = rep.interval_table(_rows(), ["policy"], ["x", "absent"], baseline="pro_rata")
    assert list(t["metric"]) == ["x", "x"]  # missing metrics skipped
    base = t[t["policy"] == "pro_rata"].iloc[0]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # values 1, 2, 3: sd 1
    assert base["mean"] == pytest.approx(2.0)
    assert base["ci_low"] == pytest.approx(2.0 - half)
    assert base["ci_high"] == pytest.approx(2.0 + half)
    assert base["n"] == 3 and np.isnan(base["diff_mean"]) and base["interval"] == "t"
    assert base["runs"] == 3 and np.isnan(base["no_wave"])  # no adl_waves column: unknown
    q = t[t["policy"] == "queue"].iloc[0]
    assert q["mean"] == pytest.approx(5.0)  # the failed run (100) is left out
    # paired differences 1, 2, 6: mean 3, sd sqrt(7)
    dhalf = stats.t.ppf(0.975, 2) * np.sqrt(7.0) / np.sqrt(3)
    assert q["diff_mean"] == pytest.approx(3.0)
    assert q["diff_low"] == pytest.approx(3.0 - dhalf)
    assert q["diff_high"] == pytest.approx(3.0 + dhalf)
    assert q["diff_n"] == 3 and q["baseline"] == "pro_rata"


def _two_seed_rows() -> pd.DataFrame:
    """Two seeds of three policies: q2 repeats pro_rata's numbers; seed 2 had no ADL wave."""
    return pd.DataFrame(
        {
            "policy": ["pro_rata", "pro_rata", "q", "q", "q2", "q2"],
            "seed": [1, 2] * 3,
            "retention": [0.05, 0.95, 0.9, 0.2, 0.05, 0.95],
            "adl_raised": [10.0, 90_000.0, 50.0, 0.0, 10.0, 90_000.0],
            "adl_waves": [3.0, 0.0, 4.0, 0.0, 3.0, 0.0],
            "ptsr_base": [2.0, np.nan, 5.0, np.nan, 2.0, np.nan],
            "status": "ok",
        }
    )


def test_interval_table_keeps_intervals_in_each_metric_range():
    t = rep.interval_table(
        _two_seed_rows(), ["policy"], ["retention", "adl_raised", "ptsr_base"], baseline="pro_rata"
    )
    ret = t[t["metric"] == "retention"].set_index("policy")
    # Student-t over .05 and .95 with 2 seeds is [-5.3, 6.3]: a retention of -530 %
    assert (ret["ci_low"] >= 0).all() and (ret["ci_high"] <= 1).all()
    assert (ret["interval"] == "logit-t").all()
    assert (ret["diff_low"].dropna() >= -1).all() and (ret["diff_high"].dropna() <= 1).all()
    raised = t[t["metric"] == "adl_raised"].set_index("policy")
    assert (raised["ci_low"] >= 0).all() and (raised["interval"] == "log-t").all()


def test_interval_table_counts_runs_without_a_wave():
    rows = _two_seed_rows()
    t = rep.interval_table(rows, ["policy"], ["ptsr_base", "adl_raised"])
    p = t[t["metric"] == "ptsr_base"].set_index("policy")
    # seed 2 had no wave: PTSR is undefined there, so n = 1 of 2 runs (no interval), and the
    # run is counted, not dropped: no_wave = 1
    assert (p["n"] == 1).all() and (p["runs"] == 2).all() and (p["no_wave"] == 1).all()
    assert p["ci_low"].isna().all()
    a = t[t["metric"] == "adl_raised"].set_index("policy")
    assert (a["n"] == 2).all()  # dollars count the run without a wave as 0
    lines = "\n".join(rep.no_wave_lines(rows))
    assert "runs with no ADL wave: 3 of 6 (pro_rata 1, q 1, q2 1)" in lines
    _, report = cat.Compare(policies=("pro_rata", "q", "q2")).summarise(rows)
    assert "(n=1)" in report  # the cell computed from fewer values than the runs says so
    assert "| policy | n |" in report


def test_coinciding_policies_are_named_not_repeated():
    rows = _two_seed_rows()
    same = rep.coinciding(rows, ["policy"], ["retention", "adl_raised", "ptsr_base"])
    assert same == {("q2",): "pro_rata"}
    summary, report = cat.Compare(policies=("pro_rata", "q", "q2")).summarise(rows)
    flag = summary.drop_duplicates("policy").set_index("policy")["coincides_with"]
    assert flag.to_dict() == {"pro_rata": "", "q": "", "q2": "pro_rata"}  # kept, flagged
    assert "q2 coincides with pro_rata on every seed at these parameters" in report
    assert "| q2 |" not in report
    # one cent apart on one seed is another rule
    other = rows.copy()
    other.loc[5, "adl_raised"] += 0.01
    assert rep.coinciding(other, ["policy"], ["adl_raised"]) == {}


def test_report_says_when_intervals_are_not_yet_informative():
    rows = pd.DataFrame(
        {"policy": "pro_rata", "seed": range(1, 6), "retention": 0.5, "status": "ok"}
    )
    two = "\n".join(rep.interval_lines(2, "pro_rata"))
    five = "\n".join(rep.interval_lines(5, "pro_rata"))
    assert "not yet informative" in two and "not yet informative" not in five
    _, report = cat.Compare(policies=("pro_rata",)).summarise(rows)
    assert "not yet informative" not in report
    _, report = cat.Compare(policies=("pro_rata",)).summarise(rows.iloc[:3])
    assert "**3 seeds: these intervals are not yet informative**" in report


def test_values_outside_a_declared_range_fall_back_flagged():
    rows = pd.DataFrame(
        {"policy": "p", "seed": [1, 2], "fee_revenue": [-5.0, 20.0], "status": "ok"}
    )
    t = rep.interval_table(rows, ["policy"], ["fee_revenue"])
    assert t["interval"].iloc[0] == "t (values outside [0, inf])"
    assert t["ci_low"].iloc[0] < 0  # the plain t interval, said to be one


def test_interval_table_pairs_within_cells():
    rows = pd.DataFrame(
        {
            "policy": ["pro_rata", "q", "pro_rata", "q"] * 2,
            "run.traders": [10, 10, 20, 20] * 2,
            "seed": [1, 1, 1, 1, 2, 2, 2, 2],
            "x": [1.0, 2.0, 10.0, 30.0, 2.0, 4.0, 20.0, 50.0],
        }
    )
    t = rep.interval_table(rows, ["run.traders", "policy"], ["x"], baseline="pro_rata")
    q = t[t["policy"] == "q"].set_index("run.traders")
    assert q.loc[10, "diff_mean"] == pytest.approx(1.5)  # (2-1 + 4-2) / 2
    assert q.loc[20, "diff_mean"] == pytest.approx(25.0)  # (20 + 30) / 2


def test_pareto_efficient_by_hand():
    pts = np.array(
        [
            [1.0, 1.0, 5.0],  # efficient
            [2.0, 2.0, 5.0],  # dominated by row 0
            [0.5, 3.0, 1.0],  # efficient (best solvency)
            [1.0, 1.0, 5.0],  # a tie with row 0: neither dominates
            [np.nan, 0.0, 9.0],  # undefined: never efficient
        ]
    )
    got = rep.pareto_efficient(pts, [False, False, True])
    assert got.tolist() == [True, False, True, True, False]


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_pareto_matches_a_plain_loop(points):
    pts = np.array(points, dtype=float)
    got = rep.pareto_efficient(pts, [False, True])
    for i, p in enumerate(pts):
        dominated = any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in pts)
        assert got[i] == (not dominated)


def test_moral_hazard_slope_recovers_a_power_law():
    n = np.repeat([250, 500, 1000, 2000], 3)
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "policy": "pro_rata",
            "run.traders": n,
            "seed": np.tile([1, 2, 3], 4),
            "ptsr_base": 7.0 * n**-0.5 * np.exp(rng.normal(0, 0.01, n.size)),
            "pmr_base": 3.0 * n**0.25,
            "status": "ok",
        }
    )
    slopes = cat.MoralHazard().scaling(rows).set_index("metric")
    assert slopes.loc["ptsr_base_loglog_slope", "mean"] == pytest.approx(-0.5, abs=0.02)
    assert (
        slopes.loc["ptsr_base_loglog_slope", "ci_low"]
        < -0.5
        < slopes.loc["ptsr_base_loglog_slope", "ci_high"]
    )
    assert slopes.loc["ptsr_base_loglog_slope", "n"] == 12
    assert slopes.loc["pmr_base_loglog_slope", "mean"] == pytest.approx(0.25, abs=1e-9)
    summary, report = cat.MoralHazard().summarise(rows)
    assert "ptsr_base n=250" in report and "ptsr_base_loglog_slope" in set(summary["metric"])
    assert "(n=12)" in report


def test_frontier_summary_marks_the_pareto_pairs():
    rows = []
    values = {  # (policy, severity): residual, max haircut, fees
        ("pro_rata", "full"): (0.0, 0.2, 10.0),
        ("pro_rata", "backoff"): (5.0, 0.1, 10.0),
        ("q", "full"): (0.0, 0.9, 10.0),  # dominated by pro_rata/full
        ("q", "backoff"): (5.0, 0.1, 12.0),  # dominates pro_rata/backoff
    }
    for (p, s), (r, m, f) in values.items():
        for seed in (1, 2):
            rows.append(
                {
                    "policy": p,
                    "severity": s,
                    "seed": seed,
                    "residual_bad_debt": r + seed * 1e-3,
                    "max_haircut_base_frac": m,
                    "fee_revenue": f,
                    "status": "ok",
                }
            )
    summary, report = cat.Frontier().summarise(pd.DataFrame(rows))
    eff = summary.groupby(["policy", "severity"])["pareto"].first().to_dict()
    assert eff == {
        ("pro_rata", "full"): True,
        ("pro_rata", "backoff"): False,
        ("q", "full"): False,
        ("q", "backoff"): True,
    }
    assert "Pareto-efficient" in report


# --------------------------------------------------------------------------- bounds
def test_instances_are_on_the_lot_grid_and_reproducible():
    a, b = cb.make_instance(3), cb.make_instance(3)
    np.testing.assert_array_equal(a.snap.capacity, b.snap.capacity)
    assert cb.check_budgets(a) == cb.check_budgets(b)
    k = a.snap.capacity / a.snap.lot_value
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert (a.snap.lots >= np.round(k)).all()
    assert (a.gains <= a.snap.capacity + 1e-12).all() and (a.gains > 0).all()
    assert a.delta == float(a.snap.lot_value.max())
    assert not np.array_equal(cb.make_instance(4).snap.capacity[:5], a.snap.capacity[:5])


def test_bounds_pass_for_every_policy():
    rows = cb.run_bounds([1, 2, 3])
    assert set(rows["policy"]) == set(POLICIES) | {cb.CAPPED_AT_ALPHA}
    assert len(rows) == 3 * (len(POLICIES) * len(cb.CHECKS) + 1)
    failed = rows[~rows["passed"]]
    assert failed.empty, failed[["policy", "check", "seed", "margin", "detail"]]
    inf = rows[rows["check"] == "infeasible"]
    # the residual is B minus what the rule may take in the wave (its wave caps) ...
    np.testing.assert_allclose(inf["value"], inf["bound"], rtol=1e-9)
    # ... which is every capacity for every rule but dYdX (its walk skips accounts an offset
    # would bankrupt: positions of k..3k lots against capacities of k lots)
    full = inf[~inf["policy"].isin(["dydx", "paradex", "deribit"])]
    np.testing.assert_allclose(full["value"], full["budget"] - full["total_capacity"], rtol=1e-9)
    walk = inf[inf["policy"] == "dydx"]
    assert (walk["value"] > walk["budget"] - walk["total_capacity"]).all()
    # ... and nothing for the venues without a ranked ADL: all of B is the residual
    none = inf[inf["policy"].isin(["paradex", "deribit"])]
    np.testing.assert_allclose(none["value"], none["budget"], rtol=1e-9)
    summary, report = cb.summarise_bounds(rows)
    assert (summary["pass_rate"] == 1.0).all()
    assert "Failing rows: 0." in report


class HalfProRata(ADLPolicy):
    """A broken toy rule: raises only half of what it is asked for (a cash debit, no lots)."""

    name = "half"
    price_rule = "none"

    def allocate_wealth(self, snap, budget):
        return water_fill(snap.capacity, 0.5 * budget, snap.capacity)


class Greedy(ADLPolicy):
    """A broken toy rule: takes everything from everyone, whatever the budget."""

    name = "greedy"
    price_rule = "none"

    def allocate_wealth(self, snap, budget):
        return np.array(snap.capacity)


class Crashing(ADLPolicy):
    """A broken toy rule that raises."""

    name = "crash"

    def allocate_wealth(self, snap, budget):
        raise RuntimeError("boom")


def test_bounds_catch_broken_rules():
    rows = cb.run_bounds([1, 2], {"half": HalfProRata(), "greedy": Greedy(), "crash": Crashing()})
    res = rows.set_index(["policy", "check", "seed"])["passed"]
    # half: residual wrong when infeasible, too little raised everywhere
    for check in ("infeasible", "fairness_cap", "concentration", "granularity"):
        assert not res[("half", check, 1)], check
    # greedy: overshoot (sum h = sum c > B) fails granularity; facts that need coverage hold
    assert not res[("greedy", "granularity", 1)]
    assert res[("greedy", "concentration", 1)] and res[("greedy", "infeasible", 1)]
    crash = rows[rows["policy"] == "crash"]
    assert len(crash) == 2 * len(cb.CHECKS) and not crash["passed"].any()
    assert crash["detail"].str.contains("boom").all()
    half = rows[(rows["policy"] == "half") & (rows["check"] == "infeasible")].iloc[0]
    assert half["margin"] < 0 and half["value"] > half["bound"]  # residual too large


def test_the_exact_rule_keeps_the_granularity_guarantee():
    # seed 36: the old MILP bought its smaller largest fraction with more than a lot of
    # overshoot; minimising the overshoot second keeps it below the largest lot touched
    inst = cb.make_instance(36)
    rows = {r["check"]: r for r in cb.check_policy("min_max_ilp", POLICIES["min_max_ilp"](), inst)}
    g = rows["granularity"]
    assert g["kind"] == "guarantee" and g["passed"] and g["value"] <= g["bound"]
    assert all(rows[c]["passed"] for c, kind in cb.CHECKS.items() if kind == "fact")


# --------------------------------------------------------------------------- end to end
def test_compare_tiny_writes_three_files_with_every_policy(tmp_path, tiny):
    out = tmp_path / "cmp"
    summary = cat.run_experiment("compare", 2, out, workers=2, quiet=True, base=tiny)
    for name in ("runs.parquet", "summary.csv", "report.md"):
        assert (out / name).is_file(), name
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == len(GAME) * 2 and (runs["status"] == "ok").all()
    assert set(runs["policy"]) == set(GAME)
    assert (runs.groupby("seed")["policy"].nunique() == len(GAME)).all()
    csv = pd.read_csv(out / "summary.csv")
    assert set(csv["policy"]) == set(GAME)
    for col in ("mean", "ci_low", "ci_high", "diff_mean", "diff_low", "diff_high"):
        assert col in csv.columns
    raised = csv[csv["metric"] == "adl_raised"].set_index("policy")
    assert raised["ci_low"].notna().all() and (raised["ci_low"] <= raised["mean"]).all()
    assert raised.loc["pro_rata", "diff_mean"] != raised.loc["pro_rata", "diff_mean"]  # NaN
    assert raised.drop(index="pro_rata")["diff_n"].eq(2).all()
    report = (out / "report.md").read_text()
    assert "# Experiment compare" in report
    for p in GAME:  # a row, or a line saying which policy it coincides with
        same = csv.loc[csv["policy"] == p, "coincides_with"].fillna("").iloc[0]
        assert (f"- {p} coincides with {same} on every seed" if same else f"| {p} |") in report
    assert "not yet informative" in report and "runs with no ADL wave:" in report
    # every interval stays in its metric's range and says its n
    for m, (lo, hi) in HEADLINE_RANGES.items():
        sub = csv[csv["metric"] == m]
        assert (sub["ci_low"].dropna() >= lo).all() and (sub["ci_high"].dropna() <= hi).all(), m
        assert (sub["n"] <= sub["runs"]).all() and (sub["runs"] == 2).all()
    info = summary.attrs["info"]
    assert info["experiment"] == "compare" and info["runs"] == len(GAME) * 2
    assert info["runs_failed"] == 0
    # a second call into the same folder reuses the shards in out/runs: the same rows
    assert len(list((out / "runs").glob("*.parquet"))) == len(GAME) * 2
    again = cat.run_experiment("compare", 2, out, workers=1, quiet=True, base=tiny)
    pd.testing.assert_frame_equal(again, summary)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), runs)


def test_cli_runs_bounds(capsys, tmp_path):
    out = tmp_path / "b"
    assert main(["experiment", "bounds", "--seeds", "2", "--out", str(out), "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["experiment"] == "bounds" and info["failed_facts"] == 0
    rows = pd.read_parquet(out / "runs.parquet")
    assert set(rows["seed"]) == {1, 2} and rows["passed"].all()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["check"]) == set(cb.CHECKS)
    assert "# Experiment bounds" in (out / "report.md").read_text()


def test_moral_hazard_attrition_frontier_tiny(tmp_path, tiny):
    two = ("hyperliquid", "pro_rata")
    mh = cat.run_experiment(
        cat.MoralHazard(policies=two), 2, tmp_path / "mh", workers=2, quiet=True, base=tiny
    )
    runs = pd.read_parquet(tmp_path / "mh" / "runs.parquet")
    assert sorted(runs["run.traders"].unique()) == [25, 50, 100, 200]
    assert len(runs) == 4 * 2 * 2 and runs["tag.experiment"].eq("moral-hazard").all()
    slopes = mh[mh["metric"] == "ptsr_base_loglog_slope"]
    assert set(slopes["policy"]) == set(two) and (slopes["run.traders"] == "all").all()
    assert {"leverage_drift", "externality_ratio"} <= set(mh["metric"])
    report = (tmp_path / "mh" / "report.md").read_text()
    assert "PTSR and PMR against participation n" in report
    assert "## Resolution at the default size (n = 200, 2 seeds)" in report
    assert "| hyperliquid | leverage_drift |" in report

    att = cat.run_experiment(
        cat.Attrition(policies=two), 2, tmp_path / "att", workers=2, quiet=True, base=tiny
    )
    runs = pd.read_parquet(tmp_path / "att" / "runs.parquet")
    assert (runs["run.crises"] == 20).all() and len(runs) == 4
    ret = att[(att["metric"] == "retention") & (att["policy"] == "hyperliquid")].iloc[0]
    pr = runs[runs["policy"] == "pro_rata"].set_index("seed")["retention"]
    hl = runs[runs["policy"] == "hyperliquid"].set_index("seed")["retention"]
    assert ret["diff_mean"] == pytest.approx(float((hl - pr).mean()))

    fr = cat.run_experiment(
        cat.Frontier(policies=two, severity_names=("full", "backoff")),
        2,
        tmp_path / "fr",
        workers=2,
        quiet=True,
        base=tiny,
    )
    assert set(zip(fr["policy"], fr["severity"], strict=True)) == {
        (p, s) for p in two for s in ("full", "backoff")
    }
    assert fr["pareto"].any()
    assert "Pareto-efficient" in (tmp_path / "fr" / "report.md").read_text()


def test_audit_and_oct10_tiny_through_the_cli(capsys, tmp_path):
    for name in ("audit", "oct10"):
        out = tmp_path / name
        argv = ["experiment", name, "--seeds", "2", "--out", str(out), "--quiet", "--scale", "tiny"]
        assert main(argv) == 0, name
        info = json.loads(capsys.readouterr().out)
        assert info["experiment"] == name
        for f in ("runs.parquet", "summary.csv", "report.md"):
            assert (out / f).is_file(), (name, f)
    audit = pd.read_csv(tmp_path / "audit" / "summary.csv")
    assert {"policy", "action", "G", "ci_low", "ci_high"} <= set(audit.columns)
    assert set(audit["policy"]) == set(GAME)
    assert (tmp_path / "audit" / "gameability.md").is_file()
    oct_ = pd.read_csv(tmp_path / "oct10" / "summary.csv")
    assert {"pro_rata", "hyperliquid", "min_max_ilp"} <= set(oct_["policy"])
    assert oct_.loc[oct_["metric"] == "overshoot", "ci_low"].notna().any()
    assert "overshoot_total" in info  # oct10's own figures are passed through


def test_pareto_treats_float_noise_as_a_tie():
    pts = np.array([[0.0, 1.0, 100.0], [0.07, 1.0, 100.0], [2e5, 0.5, 120.0]])
    assert rep.pareto_efficient(pts, [False, False, True]).tolist() == [True, True, True]
    assert rep.pareto_efficient(pts, [False, False, True], rtol=0.0).tolist() == [
        True,
        False,
        True,
    ]


def test_bad_experiment_parameters_fail_before_writing(tmp_path, tiny):
    out = tmp_path / "never"
    with pytest.raises(InputError, match="severity"):
        cat.run_experiment(cat.Frontier(severity_names=("nope",)), 1, out, base=tiny)
    with pytest.raises(InputError, match="experiment"):
        cat.run_experiment("nope", 1, out)
    assert not out.exists()
