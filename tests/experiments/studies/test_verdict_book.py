"""The packaged verdicts: current, quoted only for the screened scenario, and where users look."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.cli import main
from experiments.game.scenario import load_scenario, scenario_digest
from experiments.studies import catalogue as cat
from experiments.studies.compare import Compare
from experiments.studies.robustness import CONCLUSION_METRICS
from experiments.studies.verdict_book import (
    package_run,
    packaged_verdicts,
    readme_table,
    verdict_for,
    verdict_lines,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_packaged_screen_is_of_the_current_default_scenario():
    # fails when the default scenario changes: re-run `make verdicts`
    table, meta = packaged_verdicts()
    assert meta["scenario_digest"] == scenario_digest(load_scenario())
    assert set(table["metric"]) == set(CONCLUSION_METRICS)
    assert set(table["verdict"]) <= {"robust", "fragile", "coincides"}
    assert (table["cells"] <= meta["cells"]).all() and table["cells"].max() == meta["cells"]


def test_a_verdict_is_quoted_only_for_the_screened_scenario():
    assert verdict_for("hyperliquid", "retention") is not None
    other = load_scenario().replace(**{"run.traders": 300})
    assert verdict_for("hyperliquid", "retention", other) is None
    lines = "\n".join(verdict_lines(["hyperliquid"], other))
    assert "has not been screened" in lines and "| hyperliquid |" not in lines


def test_the_readme_shows_the_packaged_verdict_table():
    text = README.read_text()
    for line in readme_table():
        assert line in text


def test_the_demo_states_its_verdicts(capsys):
    assert main(["demo", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    for metric in ("retention", "fee_revenue", "ltv_lost_per_deficit_dollar"):
        v = verdict_for("hyperliquid", metric)
        assert f"pro_rata: {v['verdict']}" in out
    assert "Verdicts of hyperliquid against pro_rata" in out


def test_the_compare_report_carries_verdicts_or_says_why_not(tmp_path):
    exp = Compare(policies=("hyperliquid", "pro_rata"))
    cat.run_experiment(exp, 1, tmp_path / "c", quiet=True, scale="tiny")
    report = (tmp_path / "c" / "report.md").read_text()
    assert "## Behavioural comparisons against pro_rata: verdicts" in report
    assert "has not been screened" in report  # tiny is not the screened scenario


def test_package_run_round_trips(tmp_path):
    table, _ = packaged_verdicts()
    run = tmp_path / "run"
    run.mkdir()
    table.to_csv(run / "verdicts.csv", index=False)
    pd.DataFrame({"seed": [1, 2, 3]}).to_parquet(run / "runs.parquet")
    dest = package_run(run, tmp_path / "pkg")
    again = pd.read_csv(dest / "verdicts.csv", keep_default_na=False, na_values=[""])
    assert len(again) == len(table)
