"""Calibration to the 10 October event: the real moments, the fit, the files, the scenario."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.game.scenario import load_scenario
from experiments.studies import catalogue as cat
from experiments.studies.calibrate import Calibrate, fit_pnl_power
from experiments.studies.calibrate_fit import fit_law
from experiments.studies.oct10 import ReplayConfig
from experiments.studies.oct10.population import (
    MOMENTS,
    WalletLaw,
    WalletTargets,
    fill_counts,
    load_wallet_targets,
    model_moments,
    observed_moments,
    wave_fills,
)
from experiments.studies.oct10.synth import FITTED_PNL_POWER, FITTED_POPULATION, FITTED_TAIL
from market.errors import InputError


@pytest.fixture(scope="module")
def targets() -> WalletTargets:
    return load_wallet_targets()


def test_the_real_moments_are_read_from_the_packaged_files(targets):
    assert (targets.fills, targets.wallets, targets.counts.size) == (35_022, 19_351, 789)
    m = observed_moments(targets)
    assert m["fills_per_wallet"] == pytest.approx(35_022 / 19_351)
    assert m["mean_fills_5plus"] == pytest.approx(6_225 / 789)
    assert m["top10_share"] == pytest.approx(0.0824, abs=1e-4)
    assert m["top100_share"] == pytest.approx(0.3110, abs=1e-4)
    assert set(m) == set(MOMENTS)


def test_a_missing_or_bad_per_wallet_file_names_itself(tmp_path, targets):
    with pytest.raises(InputError, match=r"passive_accounts\.csv"):
        load_wallet_targets(tmp_path)
    pd.DataFrame({"n_adl_events": [5, 2]}).to_csv(tmp_path / "passive_accounts.csv")
    with pytest.raises(InputError, match="n_adl_events"):
        load_wallet_targets(tmp_path)


def test_fills_land_in_proportion_to_size():
    sizes = np.array([1.0, 3.0])
    counts = fill_counts(sizes, np.random.default_rng(0).random(40_000))
    assert counts.sum() == 40_000 and counts[1] / counts.sum() == pytest.approx(0.75, abs=0.01)
    assert wave_fills(np.array([1.0, 2.0, 1.0]), 10).tolist() == [3, 5, 2]


def test_the_fit_recovers_a_known_law():
    # moments simulated from a known law with other uniforms: the fit lands close to it
    truth = WalletLaw(40_000, 1.6)
    rng = np.random.default_rng(42)
    n_max = 40 * 20_000
    m = model_moments(truth, 35_000, 800, rng.random(n_max), rng.random(35_000), rng.random(n_max))
    wallets = round(35_000 / m["fills_per_wallet"])
    fake = WalletTargets(fills=35_000, wallets=wallets, counts=np.full(800, 5))
    fit = fit_law(fake, seed=1, grid=15, target={k: m[k] for k in MOMENTS})
    assert fit.law.tail == pytest.approx(1.6, rel=0.1)
    # the population is identified by fills per wallet alone, more loosely than the tail
    assert fit.law.population == pytest.approx(40_000, rel=0.25)


def test_the_replay_defaults_are_the_fit(targets):
    point = fit_law(targets, seed=1)
    assert point.law.population == FITTED_POPULATION
    assert point.law.tail == pytest.approx(FITTED_TAIL, abs=1e-4)
    assert point.loss < 0.05  # every moment within ~10 %
    power, waves = fit_pnl_power(3, point.law.population, point.law.tail)
    assert power == pytest.approx(FITTED_PNL_POWER, abs=1e-3)
    cfg = ReplayConfig()
    assert (cfg.population, cfg.pnl_tail, cfg.pnl_power) == (
        FITTED_POPULATION,
        FITTED_TAIL,
        FITTED_PNL_POWER,
    )
    assert len(waves) == 16


@pytest.mark.slow
def test_calibrate_writes_fit_params_and_a_runnable_scenario(tmp_path):
    out = tmp_path / "cal"
    cat.run_experiment(Calibrate(replicates=3), 1, out, quiet=True)
    fit = pd.read_csv(out / "fit.csv")
    assert list(fit.columns[:5]) == ["moment", "target", "fitted", "source", "role"]
    assert set(fit["moment"]) == {*MOMENTS, "ptsr_pro_rata", "max_haircut_queue"}
    assert fit["source"].str.len().min() > 10
    assert set(fit["role"]) == {"target", "target (a published replay output)", "check"}
    params = pd.read_csv(out / "params.csv").set_index("parameter")
    assert params.loc["tail", "boot_low"] <= params.loc["tail", "estimate"] or np.isclose(
        params.loc["tail", "boot_low"], params.loc["tail", "estimate"], rtol=0.05
    )
    assert params.loc["tail", "replicates"] == 3
    sc = load_scenario(out / "calibrated.toml")
    assert sc.name == "oct10-calibrated" and 1 < sc.passive.size_alpha <= 10
    report = (out / "report.md").read_text()
    assert "published replay output" in report and "## Not calibrated" in report
