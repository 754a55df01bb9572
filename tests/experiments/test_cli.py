"""The command line: crash, policies, bench; golden numbers of one seeded crash."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments.cli import main
from market.adl import POLICIES


def run_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_crash_reports_deficit_backstop_and_conservation(capsys):
    out = run_json(
        capsys, "crash", "--drop", "0.3", "--accounts", "100000", "--seed", "1", "--json"
    )
    for key in (
        "liquidated",
        "deficit",
        "backstop_used",
        "adl_raised",
        "residual",
        "conservation_error",
    ):
        assert key in out
    assert out["deficit"] > 0
    assert 0 < out["backstop_used"] <= out["config"]["fund"] + 1e-6 + out["deficit"]
    assert out["adl_raised"] == 0.0
    # without ADL, whatever the backstop did not pay is bad debt
    assert out["residual"] == pytest.approx(out["deficit"] - out["backstop_used"], rel=1e-9)
    assert out["conservation_error"] < 1e-9
    again = run_json(
        capsys, "crash", "--drop", "0.3", "--accounts", "100000", "--seed", "1", "--json"
    )
    assert again == out


def test_crash_golden_numbers(capsys):
    """A fixed seed must give the same numbers as the last commit (update on purpose only)."""
    out = run_json(capsys, "crash", "--accounts", "20000", "--seed", "7", "--fund", "1e5", "--json")
    golden = {
        "liquidated": 6937,
        "deficit": 282044.63792834856,
        "backstop_used": 103803.52828550589,  # the fund's 1e5 plus liquidation fees it earned
        "residual": 178241.1096428427,
    }
    got = {k: out[k] for k in golden}
    assert got["liquidated"] == golden["liquidated"]
    for key in ("deficit", "backstop_used", "residual"):
        assert got[key] == pytest.approx(golden[key], rel=1e-9, abs=1e-6), key


@pytest.mark.parametrize("policy", ["pro_rata", "hyperliquid", "seniority"])
def test_crash_with_policy_covers_what_the_backstop_left(capsys, policy):
    out = run_json(
        capsys,
        "crash",
        "--drop",
        "0.3",
        "--accounts",
        "100000",
        "--seed",
        "1",
        "--policy",
        policy,
        "--json",
    )
    left = out["deficit"] - out["backstop_used"]
    assert left > 0
    # ADL raises the rest, or the residual is exactly what capacity could not give
    assert out["adl_raised"] + out["residual"] >= left * (1 - 1e-9)
    assert out["adl_raised"] - out["overshoot"] <= left * (1 + 1e-9)
    assert out["conservation_error"] < 1e-9
    assert out["accounts_touched"] > 0


def test_policies_json_lists_every_policy(capsys):
    rows = run_json(capsys, "policies", "--json")
    names = {r["name"] for r in rows}
    assert set(POLICIES) <= names
    assert {
        "hyperliquid",
        "bitmex",
        "binance",
        "dydx",
        "drift",
        "pro_rata",
        "contract_pro_rata",
        "capped_pro_rata",
        "rap",
        "minimax_leverage",
        "min_max_ilp",
        "seniority",
        "hybrid",
    } <= names
    for r in rows:
        assert r["description"] and r["source"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["crash", "--drop", "1.5"], "--drop"),
        (["crash", "--accounts", "0"], "--accounts"),
        (["crash", "--backstop", "bank"], "--backstop"),
        (["crash", "--policy", "nope", "--accounts", "10"], "policy"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_flags_one_line_error_exit_2(argv, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert needle in err
    assert len(err.splitlines()) == 1
    assert proc.stdout == ""


def test_demo_and_summary_json_agree_on_every_shared_figure(capsys, tmp_path):
    # one RunResult behind both: the demo's printed figures are summary.json's, same seed
    assert main(["demo", "--traders", "300", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    figures = {
        "deficit after liquidations": "total_deficit",
        "paid by the insurance fund": "backstop_used",
        "raised from winners by ADL": "adl_raised",
        "of which beyond what was needed": "overshoot",
        "left uncovered": "residual_bad_debt",
        "accounts that paid ADL": "accounts_touched",
        "traders who left": "traders_churned",
        "traders active at the end": "traders_active_end",
        "fee revenue": "fee_revenue",
    }
    for col, policy in enumerate(("hyperliquid", "pro_rata")):
        out = tmp_path / policy
        argv = ["run", "--policy", policy, "--seed", "2", "--traders", "300", "--out", str(out)]
        assert main(argv) == 0
        capsys.readouterr()
        summary = json.loads((out / "summary.json").read_text())
        for label, key in figures.items():
            line = next(ln for ln in lines if ln.strip().startswith(label))
            printed = float(line.split()[-2 + col].replace(",", ""))
            assert printed == pytest.approx(summary[key], abs=0.5), (label, policy)
