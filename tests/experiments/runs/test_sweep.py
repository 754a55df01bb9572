"""Sweep files: designs, seeds shared across cells and policies, validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.game.scenario import load_scenario, to_dict
from experiments.runs.runner import RunSpec
from experiments.runs.sweep import Sweep, load_sweep, sweep_from_dict
from market.errors import InputError

TINY = {"run.traders": 200, "run.crises": 2, "run.calm_steps": 3, "run.crisis_steps": 4}


def _sweep(**extra) -> Sweep:
    data = {
        "policies": ["hyperliquid", "pro_rata"],
        "seeds": 3,
        "root_seed": 7,
        "overrides": dict(TINY),
        "parameters": {"crisis.drop_median": [0.1, 0.2, 0.3], "passive.leverage_median": [2, 4]},
    }
    data.update(extra)
    return sweep_from_dict(data, name="t")


def test_factorial_cells_and_specs():
    sw = _sweep()
    cells = sw.cells()
    assert len(cells) == 3 * 2
    assert cells[0] == {"crisis.drop_median": 0.1, "passive.leverage_median": 2}
    assert cells[-1] == {"crisis.drop_median": 0.3, "passive.leverage_median": 4}
    specs = sw.specs()
    assert len(specs) == 6 * 2 * 3
    assert len({s.key for s in specs}) == len(specs)
    # the overrides and the cell values are in each run's scenario
    s = specs[-1]
    assert s.scenario["run"]["traders"] == 200
    assert s.scenario["crisis"]["drop_median"] == 0.3
    assert s.scenario["passive"]["leverage_median"] == 4.0
    assert isinstance(s.cell["passive.leverage_median"], float)  # normalised by the scenario
    assert s.tags == {"sweep": "t"}


def test_same_seeds_for_every_cell_and_policy():
    sw = _sweep()
    by_group: dict[tuple, list[int]] = {}
    for s in sw.specs():
        by_group.setdefault((tuple(s.cell.values()), s.policy), []).append(s.seed)
    lists = list(by_group.values())
    assert len(lists) == 12
    assert all(lst == lists[0] for lst in lists)
    assert lists[0] == sw.seed_list()
    assert len(set(lists[0])) == 3
    # seeds come from SeedSequence(root_seed): reproducible, and more seeds keep the first ones
    _, stream = np.random.SeedSequence(7).spawn(2)
    assert sw.seed_list() == [int(c.generate_state(1)[0]) for c in stream.spawn(3)]
    assert _sweep(seeds=5).seed_list()[:3] == sw.seed_list()
    assert _sweep(root_seed=8).seed_list() != sw.seed_list()


def _lhs(design="lhs", samples=8, root_seed=3, params=None):
    fixed = {k: v for k, v in TINY.items() if k not in (params or {})}
    return _sweep(
        overrides=fixed,
        design=design,
        samples=samples,
        root_seed=root_seed,
        parameters=params
        or {"crisis.drop_median": [0.05, 0.25], "passive.leverage_median": [2.0, 6.0]},
    )


def test_lhs_inside_bounds_stratified_and_reproducible():
    sw = _lhs()
    cells = sw.cells()
    assert len(cells) == 8
    x = np.array([c["crisis.drop_median"] for c in cells])
    y = np.array([c["passive.leverage_median"] for c in cells])
    assert ((x >= 0.05) & (x <= 0.25)).all() and ((y >= 2.0) & (y <= 6.0)).all()
    # Latin hypercube: exactly one point in each of the 8 strata of every axis
    assert sorted(np.floor((x - 0.05) / 0.2 * 8).astype(int).tolist()) == list(range(8))
    assert sorted(np.floor((y - 2.0) / 4.0 * 8).astype(int).tolist()) == list(range(8))
    assert _lhs().cells() == cells
    assert _lhs(root_seed=4).cells() != cells
    assert len(sw.specs()) == 8 * 2 * 3


def test_sobol_inside_bounds_and_reproducible():
    sw = _lhs(design="sobol", samples=16)
    cells = sw.cells()
    assert len(cells) == 16
    x = np.array([c["crisis.drop_median"] for c in cells])
    assert ((x >= 0.05) & (x <= 0.25)).all()
    # scrambled Sobol' points are balanced: 8 of 16 in each half of every axis
    assert int((x < 0.15).sum()) == 8
    assert _lhs(design="sobol", samples=16).cells() == cells
    assert _lhs(design="sobol", samples=16, root_seed=9).cells() != cells


def test_integer_parameters_are_whole_numbers_in_range():
    sw = _lhs(params={"run.traders": [50, 54], "crisis.drop_median": [0.1, 0.2]}, samples=10)
    values = [c["run.traders"] for c in sw.cells()]
    assert all(isinstance(v, int) for v in values)
    assert set(values) <= {50, 51, 52, 53, 54}
    # 10 LHS strata over 5 integers: each integer gets exactly two
    assert sorted(values) == [50, 50, 51, 51, 52, 52, 53, 53, 54, 54]


def test_policy_parameters_reach_the_scenario():
    sw = sweep_from_dict(
        {
            "policies": ["capped_pro_rata", "rap"],
            "overrides": dict(TINY),
            "parameters": {"policy.max_fraction": [0.5, 1.0]},
        }
    )
    specs = sw.specs()
    assert len(specs) == 4
    for s in specs:
        assert s.scenario["adl"]["policy"] == s.policy
        assert s.scenario["adl"]["params"] == {"max_fraction": s.cell["policy.max_fraction"]}


def test_scenario_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.toml").write_text('name = "mine"\n[run]\ntraders = 200\n')
    (tmp_path / "s.toml").write_text('scenario = "sub/mine.toml"\npolicies = ["pro_rata"]\n')
    sw = load_sweep(tmp_path / "s.toml")
    assert sw.name == "s"
    assert sw.scenario.name == "mine"
    assert sw.scenario.run.traders == 200
    assert [s.scenario["name"] for s in sw.specs()] == ["mine"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bogus": 1}, "sweep.bogus"),
        ({"design": "grid"}, "sweep.design"),
        ({"policies": ["nope"]}, "sweep.policies"),
        ({"policies": []}, "sweep.policies"),
        ({"severity": "harsh"}, "sweep.severity"),
        ({"seeds": 0}, "sweep.seeds"),
        ({"seeds": 2.5}, "sweep.seeds"),
        ({"root_seed": -1}, "sweep.root_seed"),
        ({"samples": 4}, "sweep.samples"),
        ({"scenario": "no-such-scenario"}, "sweep.scenario"),
        ({"parameters": {"crisis.nope": [1]}}, "sweep.parameters.crisis.nope"),
        ({"parameters": {"drop_median": [0.1]}}, "sweep.parameters.drop_median"),
        ({"parameters": {"crisis.drop_median": [0.1, 1.2]}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {"crisis.drop_median": []}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {"crisis.drop_median": [0.1, 0.1]}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {"adl.policy": ["pro_rata"]}}, "sweep.parameters.adl.policy"),
        ({"parameters": {"policy.max_fraction": [0.5]}}, "sweep.parameters.policy.max_fraction"),
        ({"overrides": {"run.traders": 0}}, "sweep.overrides.run.traders"),
        ({"overrides": {"run.nope": 3}}, "sweep.overrides.run.nope"),
        (
            {"overrides": {"crisis.drop_median": 0.2}},
            "sweep.parameters.crisis.drop_median",  # both fixed and varied
        ),
    ],
)
def test_validation_names_the_field(change, field):
    data = {
        "policies": ["hyperliquid", "pro_rata"],
        "overrides": dict(TINY),
        "parameters": {"crisis.drop_median": [0.1, 0.2]},
    }
    if "overrides" in change:
        data["overrides"] = {**data["overrides"], **change.pop("overrides")}
    data.update(change)
    with pytest.raises(InputError) as err:
        sweep_from_dict(data)
    assert err.value.field == field
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"samples": 6, "design": "sobol"}, "sweep.samples"),
        ({"samples": 0}, "sweep.samples"),
        ({"parameters": {"crisis.drop_median": [0.3, 0.1]}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {"crisis.drop_median": [0.1]}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {"run.traders": [10, 20.5]}}, "sweep.parameters.run.traders"),
        ({"parameters": {"crisis.drop_median": [0.0, 0.2]}}, "sweep.parameters.crisis.drop_median"),
        ({"parameters": {}}, "sweep.parameters"),
    ],
)
def test_validation_of_sampled_designs(change, field):
    data = {
        "policies": ["pro_rata"],
        "design": "lhs",
        "samples": 4,
        "overrides": dict(TINY),
        "parameters": {"crisis.drop_median": [0.1, 0.2]},
    }
    data.update(change)
    with pytest.raises(InputError) as err:
        sweep_from_dict(data)
    assert err.value.field == field


def test_a_cell_the_scenario_rejects_is_named():
    # a value above the scenario's drop_max (0.6): the value itself is named
    with pytest.raises(InputError) as err:
        sweep_from_dict(
            {"policies": ["pro_rata"], "parameters": {"crisis.drop_median": [0.3, 0.7]}}
        )
    assert err.value.field == "sweep.parameters.crisis.drop_median (scenario.crisis.drop_max)"
    # each value is fine alone, but one combination breaks drop_max >= drop_median
    with pytest.raises(InputError) as err:
        sweep_from_dict(
            {
                "policies": ["pro_rata"],
                "parameters": {"crisis.drop_median": [0.3, 0.5], "crisis.drop_max": [0.4, 0.6]},
            }
        )
    assert err.value.field == (
        "sweep.parameters (cell 2: {'crisis.drop_median': 0.5, 'crisis.drop_max': 0.4}) "
        "scenario.crisis.drop_max"
    )


def test_run_spec_key_is_the_run_identity():
    sc = to_dict(load_scenario().replace(**TINY))
    a = RunSpec(sc, "pro_rata", "full", 5, cell={"run.traders": 200}, tags={"x": 1})
    assert a.key == RunSpec(sc, "pro_rata", "full", 5).key  # labels are not identity
    assert len(a.key) == 64 and int(a.key, 16) >= 0
    assert a.key != RunSpec(sc, "pro_rata", "full", 6).key
    assert a.key != RunSpec(sc, "hyperliquid", "full", 5).key
    assert a.key != RunSpec(sc, "pro_rata", "backoff", 5).key
    other = to_dict(load_scenario().replace(**{**TINY, "run.traders": 201}))
    assert a.key != RunSpec(other, "pro_rata", "full", 5).key
    with pytest.raises(InputError, match=r"RunSpec\.policy"):
        RunSpec(sc, "nope")
    with pytest.raises(InputError, match=r"RunSpec\.seed"):
        RunSpec(sc, "pro_rata", seed=-1)
    with pytest.raises(InputError, match=r"RunSpec\.cell"):
        RunSpec(sc, "pro_rata", cell={"traders": 3})


def test_cli_rejects_a_bad_sweep_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('policies = ["pro_rata"]\ndesign = "grid"\n')
    r = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "sweep", str(f), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "adlgame sweep: error: sweep.design: must be one of factorial, lhs, sobol (got 'grid')"
    ]
    assert not (tmp_path / "o").exists()


def test_a_list_of_severities_shares_the_seeds():
    sw = _sweep(severity=["full", "backoff"], parameters={"crisis.drop_median": [0.2]})
    specs = sw.specs()
    assert len(specs) == 1 * 2 * 2 * 3
    assert {s.severity for s in specs} == {"full", "backoff"}
    for sev in ("full", "backoff"):
        assert [s.seed for s in specs if s.severity == sev and s.policy == "pro_rata"] == (
            sw.seed_list()
        )


def test_summary_means_and_t_intervals_by_hand():
    import pandas as pd

    from experiments.runs.sweep import format_report, summarize

    rows = pd.DataFrame(
        {
            "key": ["a", "b", "c", "d"],
            "policy": ["pro_rata"] * 3 + ["hyperliquid"],
            "severity": ["full"] * 4,
            "seed": [1, 2, 3, 1],
            "tag.sweep": ["t"] * 4,
            "crisis.drop_median": [0.2] * 4,
            "adl_raised": [1.0, 3.0, np.nan, 5.0],
            "status": ["ok", "ok", "error", "ok"],
            "error": ["", "", "RuntimeError: x", ""],
            "traceback": ["", "", "Traceback ...", ""],
            "seconds": [0.1, 0.1, 0.1, 0.1],
        }
    )
    s = summarize(rows)
    assert list(s.columns) == [
        "crisis.drop_median",
        "policy",
        "severity",
        "metric",
        "runs",
        "failed",
        "n",
        "mean",
        "low",
        "high",
    ]
    assert list(s["metric"]) == ["adl_raised", "adl_raised"]  # seconds is not a metric
    pr = s[s["policy"] == "pro_rata"].iloc[0]
    assert (pr["runs"], pr["failed"], pr["n"]) == (3, 1, 2)
    # mean 2, sd sqrt(2), t_{0.975, 1} = 12.7062047...: half-width 12.7062047 * sqrt(2)/sqrt(2)
    assert pr["mean"] == 2.0
    assert pr["high"] - 2.0 == pytest.approx(12.706204736174696, rel=1e-12)
    assert pr["low"] == pytest.approx(2.0 - 12.706204736174696, rel=1e-12)
    hl = s[s["policy"] == "hyperliquid"].iloc[0]
    assert (hl["n"], hl["mean"]) == (1, 5.0) and np.isnan(hl["low"])
    sw = sweep_from_dict({"policies": ["pro_rata", "hyperliquid"], "overrides": dict(TINY)})
    text = format_report(sw, rows, s, Path("res"))
    assert "| crisis.drop_median | policy | severity | runs | ADL raised $ |" in text
    assert "| 0.2 | pro_rata | full | 3 (1 failed) | 2 ± 13 |" in text
    assert "| 0.2 | hyperliquid | full | 1 | 5 |" in text
    assert "- `c` pro_rata seed 3: RuntimeError: x" in text
