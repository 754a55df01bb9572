"""The 10 October 2025 yardstick: packaged data, loader checks, synthesis, replay, report."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.studies import oct10
from experiments.studies.oct10 import waves as replay_module
from market.adl import get_policy
from market.adl.base import max_lots
from market.errors import InputError

QUEUES = ("hyperliquid", "bitmex", "binance", "dydx")


@pytest.fixture(scope="module")
def data() -> oct10.Oct10Data:
    return oct10.load_oct10()


@pytest.fixture(scope="module")
def fit(data) -> oct10.RatioFit:
    q = data.ratio_quantiles
    return oct10.RatioFit.from_quantiles(q["median"], q["p10"], q["p90"])


@pytest.fixture()
def copy(tmp_path) -> Path:
    """A writable copy of the packaged data folder."""
    dst = tmp_path / "oct10"
    shutil.copytree(Path(str(oct10.data_folder())), dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


# ------------------------------------------------------------------ the packaged files
def test_loaded_totals_match_the_published_files(data):
    w = data.waves
    assert len(w) == 16
    assert w["wave"].tolist() == [1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 17, 21, 25, 28]
    # the headline totals of arXiv 2512.01112 v3, to the cent
    assert round(float(w["deficit_usd"].sum()), 2) == 100_063_386.69
    assert round(float(w["budget_needed_usd"].sum()), 2) == 15_079_669.61
    assert round(float(w["budget_prod_usd"].sum()), 2) == 60_108_335.33
    assert round(float(w["overshoot_prod_usd"].sum()), 2) == 45_028_665.72
    # the horizon sweep and the headline carry the same totals
    h0 = data.horizons.set_index("eval_horizon_ms").loc[0]
    assert h0["total_deficit_usd"] == pytest.approx(w["deficit_usd"].sum(), rel=1e-12)
    assert h0["total_budget_needed_usd"] == pytest.approx(w["budget_needed_usd"].sum(), rel=1e-12)
    assert data.prod_overshoot == pytest.approx(45_028_665.7191367, rel=1e-12)
    assert data.horizons["total_overshoot_prod_minus_needed_usd"].max() == pytest.approx(
        51_673_606.61, abs=0.01
    )
    q = data.ratio_quantiles
    assert (q["p10"], q["median"], q["p90"]) == pytest.approx((2.2831, 4.4128, 14.9585), abs=1e-4)


def test_package_copy_keeps_licence_and_matches_provenance_hashes():
    folder = Path(str(oct10.data_folder()))
    assert "MIT License" in (folder / "LICENSE-autodeleveraging-analysis").read_text()
    prov = (folder / "PROVENANCE.md").read_text()
    rows = re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", prov)
    assert {name for name, _ in rows} >= set(oct10.DATA_FILES)
    for name, digest in rows:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_pyproject_ships_the_data_and_matplotlib():
    text = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text()
    assert '"matplotlib>=3.7,<4"' in text
    rule = re.search(r'\[tool\.setuptools\.package-data\]\s*"\*" = \[([^\]]*)\]', text)
    assert rule is not None
    globs = set(re.findall(r'"([^"]+)"', rule.group(1)))
    assert {"*.csv", "*.json", "*.md", "LICENSE*", "*.toml"} <= globs


# ------------------------------------------------------------------ damaged files
def _edit_csv(path: Path, fn) -> None:
    df = pd.read_csv(path)
    fn(df).to_csv(path, index=False)


def test_missing_column_names_file_and_column(copy):
    name = "two_pass_equity_delta_by_wave_h0.csv"
    _edit_csv(copy / name, lambda d: d.drop(columns=["budget_needed_usd"]))
    with pytest.raises(InputError) as err:
        oct10.load_oct10(copy)
    msg = str(err.value)
    assert name in msg and "budget_needed_usd" in msg
    assert "\n" not in msg


def test_text_in_a_numeric_column_names_the_row(copy):
    name = "bad_debt_loser_waves.csv"

    def damage(d):
        d["deficit_usd"] = d["deficit_usd"].astype(object)
        d.loc[2, "deficit_usd"] = "ten million"
        return d

    _edit_csv(copy / name, damage)
    with pytest.raises(InputError, match=r"bad_debt_loser_waves.csv: column deficit_usd.*row 3"):
        oct10.load_oct10(copy)


def test_truncated_and_fractional_ids_and_missing_files_are_refused(copy):
    name = "policy_per_wave_metrics.csv"
    lines = (copy / name).read_text().splitlines()
    (copy / name).write_text("\n".join(lines[:10]) + "\n")
    with pytest.raises(InputError, match=r"policy_per_wave_metrics.csv: must be 16 wave rows"):
        oct10.load_oct10(copy)
    shutil.copy(Path(str(oct10.data_folder())) / name, copy / name)
    _edit_csv(copy / "bad_debt_loser_waves.csv", lambda d: d.assign(wave=d["wave"] + 0.5))
    with pytest.raises(InputError, match=r"column wave: must be whole numbers"):
        oct10.load_oct10(copy)
    (copy / "bad_debt_loser_waves.csv").unlink()
    with pytest.raises(InputError, match=r"bad_debt_loser_waves.csv"):
        oct10.load_oct10(copy)


def test_inconsistent_files_and_bad_json_are_refused(copy):
    _edit_csv(
        copy / "bad_debt_loser_waves.csv",
        lambda d: d.assign(deficit_usd=d["deficit_usd"] * 1.01),
    )
    with pytest.raises(InputError, match=r"bad_debt_loser_waves.csv: column deficit_usd"):
        oct10.load_oct10(copy)
    shutil.copy(
        Path(str(oct10.data_folder())) / "bad_debt_loser_waves.csv",
        copy / "bad_debt_loser_waves.csv",
    )
    (copy / "headlines.json").write_text('{"headline": {"prod_overshoot_vs_needed_usd": "x"}}')
    with pytest.raises(InputError, match=r"headlines.json: headline.prod_overshoot_vs_needed_usd"):
        oct10.load_oct10(copy)
    (copy / "headlines.json").write_text("{not json")
    with pytest.raises(InputError, match=r"headlines.json: must be valid JSON"):
        oct10.load_oct10(copy)


# ------------------------------------------------------------------ synthesis
def test_ratio_fit_meets_the_published_quantiles(fit, data):
    # sigma_lo = ln(4.41284 / 2.28312) / 1.28155 = 0.51420; sigma_hi = ln(14.9585 / 4.41284)
    # / 1.28155 = 0.95256
    assert fit.sigma_lo == pytest.approx(0.514200, abs=1e-6)
    assert fit.sigma_hi == pytest.approx(0.952562, abs=1e-6)
    q = data.ratio_quantiles
    got = fit.quantile([0.1, 0.5, 0.9])
    assert got == pytest.approx([q["p10"], q["median"], q["p90"]], rel=1e-12)
    assert fit.quantile([1e-9]).min() == 1.0  # floored: equity >= PnL
    # a check, not a fit: the fitted 3%-trimmed mean lands near the published 6.66
    assert 6.0 < fit.trimmed_mean() < 7.0


def test_couple_ratios_reaches_both_ends():
    pnl = np.array([1.0, 2.0, 3.0])
    ratios = np.array([3.0, 1.0, 2.0])
    noise = np.array([0.3, -0.2, 0.1])
    r, rho = oct10.couple_ratios(pnl, ratios, noise, target=14.0)  # 1*1 + 2*2 + 3*3
    assert r.tolist() == [1.0, 2.0, 3.0] and rho > 0
    r, rho = oct10.couple_ratios(pnl, ratios, noise, target=10.0)  # 1*3 + 2*2 + 3*1
    assert r.tolist() == [3.0, 2.0, 1.0] and rho < 0


@pytest.mark.parametrize("row", [0, 4, 10, 15])
def test_synthetic_wave_meets_the_aggregates_exactly(data, fit, row):
    wave = data.waves.iloc[row]
    cfg = oct10.ReplayConfig()
    sw = oct10.synth_wave(wave, 3, fit, 700, cfg)
    s = sw.snapshot
    assert s.n == 700
    assert s.capacity.sum() == pytest.approx(wave["winners_pnl_start_usd"], rel=1e-12)
    assert s.equity.sum() == pytest.approx(wave["winners_equity_start_usd"], rel=1e-12)
    assert np.all(s.equity >= s.capacity) and np.all(s.capacity > 0)
    assert np.all(s.side == -1)
    # closing a whole position at its entry price raises exactly its PnL
    np.testing.assert_allclose(s.lots * s.lot_value, s.capacity, rtol=1e-12)
    np.testing.assert_allclose((s.entry - s.mark) * s.lots * s.lot_size, s.upnl, rtol=1e-12)
    assert np.array_equal(max_lots(s), s.lots)
    again = oct10.synth_wave(wave, 3, fit, 700, cfg).snapshot
    assert np.array_equal(again.capacity, s.capacity)
    assert not np.array_equal(
        oct10.synth_wave(wave, 4, fit, 700, cfg).snapshot.capacity, s.capacity
    )


@settings(max_examples=25, deadline=None)
@given(
    pnl=st.floats(1e3, 1e9),
    ratio=st.floats(1.05, 30.0),
    n=st.integers(5, 400),
    seed=st.integers(0, 10_000),
)
def test_synthesis_matches_any_aggregates(fit, pnl, ratio, n, seed):
    wave = {"wave": 1, "winners_pnl_start_usd": pnl, "winners_equity_start_usd": pnl * ratio}
    s = oct10.synth_wave(wave, seed, fit, n, oct10.ReplayConfig()).snapshot
    assert s.capacity.sum() == pytest.approx(pnl, rel=1e-9)
    assert s.equity.sum() == pytest.approx(pnl * ratio, rel=1e-9)
    assert np.all(s.equity >= s.capacity * (1 - 1e-12))


def test_accounts_per_wave_follow_pnl_with_bounds(data):
    cfg = oct10.ReplayConfig()
    n = oct10.accounts_per_wave(data.waves, cfg, 17_771)
    assert n.min() == 50 and n.max() <= 20_000
    # wave 13 holds 648.37M of 3,497.74M winners' PnL: round(17,771 * 0.18537) = 3,294 or so
    big = int(n[data.waves["wave"].to_numpy() == 13][0])
    share = 648_367_351.68837 / data.waves["winners_pnl_start_usd"].sum()
    assert big == round(17_771 * share)


# ------------------------------------------------------------------ the replay
def test_pro_rata_meets_every_budget_to_the_cent_and_queues_never_undershoot(data, fit):
    cfg = oct10.ReplayConfig()
    n = oct10.accounts_per_wave(data.waves, cfg, 17_771)
    pro = get_policy("pro_rata")
    queues = [get_policy(q) for q in QUEUES]
    for seed in (1, 2):
        for i, wave in data.waves.iterrows():
            snap = oct10.synth_wave(wave, seed, fit, int(n[i]), cfg).snapshot
            b = float(wave["budget_needed_usd"])
            assert b <= float((max_lots(snap) * snap.lot_value).sum())  # feasible on the grid
            a = pro(snap, b)
            assert abs(float(a.wealth.sum()) - b) < 0.005  # wealth pro-rata: zero to the cent
            assert b - 1e-9 * b <= a.raised < b + float(snap.lot_value.max())
            for q in queues:
                assert q(snap, b).raised >= b * (1 - 1e-12), (q.name, int(wave["wave"]))


def test_replay_runs_and_labels_every_column(data):
    cfg = oct10.ReplayConfig(ilp_rows=20, max_accounts=400)
    runs, draws = oct10.replay(data, 2, cfg, policies=["hyperliquid", "pro_rata", "min_max_ilp"])
    assert set(runs["policy"]) == {
        "hyperliquid",
        oct10.HL_AT_PROD,
        "pro_rata",
        oct10.PRO_RATA_WEALTH,
        "min_max_ilp",
    }
    assert len(draws) == 32 and len(runs) == 32 * 5
    wealth = runs[runs["policy"] == oct10.PRO_RATA_WEALTH]
    assert wealth["overshoot"].abs().max() < 0.005
    # the queue asked for production's H raises it: its overshoot is production's, wave by wave
    at_prod = runs[(runs["policy"] == oct10.HL_AT_PROD) & (runs["seed"] == 1)]
    np.testing.assert_allclose(
        at_prod["overshoot"].to_numpy(), data.waves["overshoot_prod_usd"].to_numpy(), atol=1e3
    )
    assert (runs[runs["policy"] == "min_max_ilp"]["subsample"] == 20).all()
    table = oct10.wave_table(data, runs)
    for col in table.columns:
        if col not in ("wave", "policy", "published"):
            assert col.split("_")[0] in ("real", "derived", "synthetic"), col
    tot = table[table["wave"] == "total"].set_index("policy")
    assert tot.loc["hyperliquid", "derived_published_overshoot"] == pytest.approx(
        45_028_665.72, abs=0.01
    )
    assert "published:vector" in tot.index and "published:pnl_pr" in tot.index
    hl = table[(table["policy"] == "hyperliquid") & (table["wave"] == "1")].iloc[0]
    assert hl["real_published_budget"] == pytest.approx(414_233.97, abs=0.01)
    assert hl["synthetic_raised_low"] <= hl["synthetic_raised_mean"] <= hl["synthetic_raised_high"]


def test_wave_metrics_by_hand():
    from market.adl import Snapshot

    snap = Snapshot.build([10.0, 30.0], equity=[20.0, 40.0])
    h = np.array([2.0, 6.0])
    m = replay_module._wave_metrics(h, snap, budget=8.0, deficit=20.0, max_loss=5.0)
    # raised 8, survivor max(8, 24) = 24; PTSR = 24/8 = 3; theta = 8/20 = 0.4, PMR = 24/(0.4*5)
    assert m["raised"] == 8.0 and m["overshoot"] == 0.0 and m["survivor"] == 24.0
    assert m["ptsr"] == pytest.approx(3.0)
    assert m["pmr"] == pytest.approx(12.0)
    # published definitions: D - raised = 12 -> 24/12 = 2; theta' = 0.6 -> 24/(0.6*5) = 8
    assert m["ptsr_pubdef"] == pytest.approx(2.0)
    assert m["pmr_pubdef"] == pytest.approx(8.0)
    assert m["max_pct_equity"] == pytest.approx(0.15)  # 6/40
    assert m["max_pct_capacity"] == pytest.approx(0.2)
    assert m["touched"] == 2.0


def test_experiment_writes_report_with_every_policy_and_published_columns(tmp_path, data):
    cfg = oct10.ReplayConfig(ilp_rows=20, max_accounts=300)
    from viz.figures import write_figures

    out = oct10.run_experiment(
        tmp_path / "exp",
        2,
        cfg=cfg,
        data=data,
        figures=write_figures,
        game_seeds=1,
        game_traders=1000,
    )
    folder = tmp_path / "exp"
    figs = ("overshoot_per_wave", "cumulative_overshoot", "horizon_curve", "game_vs_published")
    for f in ("report.md", "waves.csv", "runs.csv"):
        assert (folder / f).is_file(), f
    for stem in figs:
        for suffix in (".png", ".svg"):
            assert (folder / f"{stem}{suffix}").is_file(), stem + suffix
    report = (folder / "report.md").read_text()
    assert "## 5. Figures" in report and "## 7. Synthesis settings" in report
    for stem in figs:
        assert f"]({stem}.png)" in report and f"[SVG]({stem}.svg)" in report, stem
    assert sorted(out["figures"]) == sorted(figs)
    for name in oct10.replay_policies():
        assert f"`{name}`" in report, name
    assert "$45.03M" in report and "(real)" in report and "(synthetic)" in report
    assert "## 3b. Production's overshoot, measured in position mode" in report
    assert "| `hyperliquid` | 1 | position |" in report and "H / B = 3.99" in report
    assert set(out["game_ratio_h0_over_b"]) == {"hyperliquid", "pro_rata"}
    assert "(derived" in report
    for desc in oct10.PUBLISHED_POLICIES.values():
        assert desc in report
    waves = pd.read_csv(folder / "waves.csv")
    assert set(waves["wave"].astype(str)) == {*map(str, data.waves["wave"]), "total"}
    assert out["published_prod_overshoot"] == pytest.approx(45_028_665.72, abs=0.01)
    assert abs(out["overshoot_total"]["pro_rata_wealth"]) < 0.005
    assert out["overshoot_total"][oct10.HL_AT_PROD] == pytest.approx(45_028_665.72, rel=1e-3)


# ------------------------------------------------------------------ command line and scenario
def test_cli_lists_and_refuses_bad_input(capsys, tmp_path):
    assert main(["experiment", "--list"]) == 0
    assert "oct10" in capsys.readouterr().out
    assert main(["experiment", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "experiment: must be one of" in err and "oct10" in err
    assert main(["experiment", "oct10"]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    assert main(["experiment", "oct10", "--out", str(tmp_path / "full")]) == 2


def test_cli_runs_the_experiment(capsys, tmp_path, monkeypatch):
    small = oct10.ReplayConfig(ilp_rows=20, max_accounts=200)
    monkeypatch.setattr(oct10, "ReplayConfig", lambda: small)
    assert (
        main(["experiment", "oct10", "--seeds", "1", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert Path(out["report"]).is_file()
    assert set(out["overshoot_total"]) >= set(oct10.replay_policies())
    # experiments.cli alone has no figure writer: no figure section, no image files
    folder = tmp_path / "e"
    assert "Figures" not in (folder / "report.md").read_text()
    assert not list(folder.glob("*.png")) and not list(folder.glob("*.svg"))
    assert out["figures"] == []


def test_oct10_scenario_loads_and_runs(tmp_path, capsys):
    sc = load_scenario("oct10")
    assert sc.name == "oct10" and sc.run.crises == 1 and sc.run.crisis_steps == 32
    assert sc.mix.flipper == pytest.approx(27 / 627, abs=0.001)
    game = ADLGame(sc.replace(**{"run.traders": 1500}), seed=1, policy="hyperliquid")
    game.run()
    waves = game.exchange.log.waves.to_array()
    assert np.count_nonzero(waves["raised"] > 0) >= 5
    out = tmp_path / "run"
    argv = ["run", "--scenario", "oct10", "--policy", "hyperliquid", "--seed", "1"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "oct10" and summary["adl_raised"] > 0
    capsys.readouterr()


def test_published_budget_needed_is_the_liquidated_quantity_at_the_gap():
    # why the replay cannot measure production's overshoot: B needed is qty x gap, to the cent
    err = oct10.gap_check()
    assert err is not None and err < 0.01


def test_game_measures_the_queue_in_position_mode():
    game = oct10.game_overshoot(1, traders=1000)
    by = game.set_index("policy")
    assert by.loc["hyperliquid", "execution"] == "position"
    assert by.loc["pro_rata", "execution"] == "budget"
    for _, r in game.iterrows():
        assert r["adl_steps"] > 0 and r["B_needed"] > 0
        assert r["overshoot"] == pytest.approx(r["H0"] - r["B_needed"], abs=1e-6 * r["B_needed"])
        assert r["overshoot"] == pytest.approx(r["over"] - r["under"], abs=1e-6 * r["B_needed"])
        assert r["ratio"] == pytest.approx(r["H0"] / r["B_needed"])
    # pro-rata asked for the need never takes more than a lot beyond it
    assert by.loc["pro_rata", "over"] <= 1e-3 * by.loc["pro_rata", "B_needed"]
