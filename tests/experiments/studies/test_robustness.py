"""The robustness experiment: verdicts over churn families and a behavioural design."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.studies import catalogue as cat
from experiments.studies.experiment import base_scenario
from experiments.studies.robustness import (
    CATEGORIES,
    PARAMETERS,
    ROBUST_SHARE,
    Robustness,
    _with_cell_ids,
    morris_design,
    sensitivity,
    verdicts,
)


def rows_from(diffs: dict[str, list[float]]) -> pd.DataFrame:
    """pro_rata at 0 and 'q' at the given differences, one list per churn family (cells)."""
    out = []
    for family, ds in diffs.items():
        for seed, d in enumerate(ds, start=1):
            for policy, v in (("pro_rata", 0.5), ("q", 0.5 + d)):
                out.append(
                    {
                        "policy": policy,
                        "seed": seed,
                        "churn.family": family,
                        "retention": v,
                        "status": "ok",
                    }
                )
    return _with_cell_ids(pd.DataFrame(out))


def test_a_sign_that_holds_everywhere_is_robust():
    rows = rows_from({f: [0.10, 0.12, 0.11] for f in ("exponential", "power", "logistic")})
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "robust" and v["sign_share"] == 1.0 and v["flips_under"] == ""
    assert v["conclusion"].startswith("q beats pro_rata on retention")


def test_a_sign_that_flips_under_a_family_is_fragile_and_names_it():
    rows = rows_from(
        {
            "exponential": [0.1, 0.12, 0.11],
            "power": [-0.1, -0.09, -0.12],
            "linear": [0.05, 0.06, 0.04],
        }
    )
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "fragile" and v["sign_share"] < ROBUST_SHARE
    assert v["flips_under"] == "power"


def test_the_design_deals_morris_trajectories_to_every_family():
    cells = Robustness(trajectories=2).cells(base_scenario("tiny"))
    k = len(PARAMETERS) + len(CATEGORIES) + 1
    assert len(cells) == 2 * 5 * k
    fams = [c["churn.family"] for c in cells]
    assert {f: fams.count(f) for f in set(fams)} == dict.fromkeys(
        ("exponential", "linear", "power", "logistic", "predictability"), 2 * k
    )
    for c in cells:  # every value inside its range, every category a real choice
        for name, (lo, hi) in PARAMETERS.items():
            assert lo <= c[name] <= hi
        for name, values in CATEGORIES.items():
            assert c[name] in values
        base_scenario("tiny").replace(**c)  # valid overrides
    assert len(Robustness(quick=True).cells(base_scenario("tiny"))) == 5 * k


def design_rows(diff) -> tuple:
    """Rows of a design whose 'q - pro_rata' retention difference is diff(cell)."""
    unit, cells = morris_design(2)
    out = []
    for cell in cells:
        for seed in (1, 2):
            for policy, v in (("pro_rata", 0.5), ("q", 0.5 + diff(cell))):
                out.append({**cell, "policy": policy, "seed": seed, "retention": v, "status": "ok"})
    return pd.DataFrame(out), unit, cells


def test_morris_finds_the_one_parameter_that_moves_a_difference():
    lo, hi = PARAMETERS["churn.beta"]
    rows, unit, cells = design_rows(lambda c: (c["churn.beta"] - lo) / (hi - lo))
    s = sensitivity(rows, unit, cells).set_index("factor")
    assert s.loc["churn.beta", "share"] == pytest.approx(1.0)
    assert s.loc["churn.beta", "mu_star"] == pytest.approx(1.0)
    assert s.drop(["churn.beta", "churn.family"])["mu_star"].abs().max() < 1e-12
    assert s.loc["churn.family", "share"] < 0.5


def test_a_difference_set_by_the_family_alone_has_eta_squared_one():
    rank = {
        f: i for i, f in enumerate(("exponential", "linear", "power", "logistic", "predictability"))
    }
    rows, unit, cells = design_rows(lambda c: 0.1 * rank[c["churn.family"]] - 0.15)
    s = sensitivity(rows, unit, cells).set_index("factor")
    assert s.loc["churn.family", "share"] == pytest.approx(1.0)
    assert s.loc["entry.family", "mu_star"] == pytest.approx(0.0, abs=1e-12)


def test_a_category_that_moves_the_difference_is_found():
    rows, unit, cells = design_rows(lambda c: 0.2 if c["imitation.family"] == "fermi" else 0.0)
    s = sensitivity(rows, unit, cells).set_index("factor")
    assert s["share"].drop("churn.family").idxmax() == "imitation.family"


@pytest.mark.parametrize("quick", [True])
def test_quick_robustness_writes_its_verdicts(tmp_path, quick):
    exp = Robustness(quick=quick, policies=("hyperliquid", "pro_rata"))
    from viz.figures import write_figures

    summary = cat.run_experiment(  # through the sweep engine's Dask executor
        exp,
        2,
        tmp_path / "rob",
        executor="dask-local",
        workers=2,
        quiet=True,
        scale="tiny",
        figures=write_figures,
    )
    for stem in ("verdicts", "sensitivity"):
        assert (tmp_path / "rob" / f"{stem}.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "rob" / "verdicts.csv")
    assert set(table["verdict"]) <= {"robust", "fragile", "coincides"} and len(table) == 6
    # gaming_shelter is undefined in cells where no gamer or honest trader was hit
    assert (table.loc[table["metric"] != "gaming_shelter", "cells"] == 40).all()
    assert summary.attrs["info"]["verdicts"] == 6
    runs = pd.read_parquet(tmp_path / "rob" / "runs.parquet")
    # quick: the two seeds dealt over the 40 cells, one run per cell and policy
    assert len(runs) == 40 * 2 and runs.groupby("seed").size().to_dict() == {1: 40, 2: 40}
    assert (table.loc[table["metric"] != "gaming_shelter", "n"] == 2).all()
    report = (tmp_path / "rob" / "report.md").read_text()
    assert "| conclusion | verdict |" in report and "moved most by" in report
    sens = pd.read_csv(tmp_path / "rob" / "sensitivity.csv")
    assert set(sens["method"]) <= {"morris", "eta_squared"} and len(sens) > 0
    assert ((sens["share"] >= 0) & (sens["share"] <= 1 + 1e-9)).all()


def test_a_rule_that_repeats_pro_rata_coincides():
    rows = rows_from({f: [0.0, 0.0] for f in ("exponential", "power")})
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "coincides" and v["conclusion"].startswith("q equals pro_rata")
