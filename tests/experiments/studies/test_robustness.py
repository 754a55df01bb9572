"""The robustness experiment: verdicts over churn families and a behavioural design."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.studies import catalogue as cat
from experiments.studies.experiment import base_scenario
from experiments.studies.robustness import ROBUST_SHARE, Robustness, _with_cell_ids, verdicts


def rows_from(diffs: dict[str, list[float]]) -> pd.DataFrame:
    """pro_rata at 0 and 'q' at the given differences, one list per churn family (cells)."""
    out = []
    for family, ds in diffs.items():
        for seed, d in enumerate(ds, start=1):
            for policy, v in (("pro_rata", 0.5), ("q", 0.5 + d)):
                out.append(
                    {"policy": policy, "seed": seed, "churn.family": family, "retention": v,
                     "status": "ok"}
                )
    return _with_cell_ids(pd.DataFrame(out))


def test_a_sign_that_holds_everywhere_is_robust():
    rows = rows_from({f: [0.10, 0.12, 0.11] for f in ("exponential", "power", "logistic")})
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "robust" and v["sign_share"] == 1.0 and v["flips_under"] == ""
    assert v["conclusion"].startswith("q beats pro_rata on retention")


def test_a_sign_that_flips_under_a_family_is_fragile_and_names_it():
    rows = rows_from({"exponential": [0.1, 0.12, 0.11], "power": [-0.1, -0.09, -0.12],
                      "linear": [0.05, 0.06, 0.04]})
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "fragile" and v["sign_share"] < ROBUST_SHARE
    assert v["flips_under"] == "power"


def test_the_design_crosses_every_family_with_its_points():
    cells = Robustness(points=2).cells(base_scenario("tiny"))
    assert len(cells) == 10 and {c["churn.family"] for c in cells} == {
        "exponential", "linear", "power", "logistic", "predictability"
    }
    assert len(Robustness(quick=True).cells(base_scenario("tiny"))) == 5


@pytest.mark.parametrize("quick", [True])
def test_quick_robustness_writes_its_verdicts(tmp_path, quick):
    exp = Robustness(quick=quick, policies=("hyperliquid", "pro_rata"))
    summary = cat.run_experiment(exp, 2, tmp_path / "rob", workers=2, quiet=True, scale="tiny")
    table = pd.read_csv(tmp_path / "rob" / "verdicts.csv")
    assert set(table["verdict"]) <= {"robust", "fragile", "coincides"} and len(table) == 5
    assert (table["cells"] == 5).all() and summary.attrs["info"]["verdicts"] == 5
    assert "| conclusion | verdict |" in (tmp_path / "rob" / "report.md").read_text()


def test_a_rule_that_repeats_pro_rata_coincides():
    rows = rows_from({f: [0.0, 0.0] for f in ("exponential", "power")})
    v = verdicts(rows).set_index("metric").loc["retention"]
    assert v["verdict"] == "coincides" and v["conclusion"].startswith("q equals pro_rata")
