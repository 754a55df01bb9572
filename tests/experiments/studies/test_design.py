"""``adlgame design``: the specification, the searched space, the front, the checks, the
answer on disk (a tiny design end to end, resumed), and the rule-with-parameters names."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.studies.audit.strategy import Applied, _halved, after_wave
from experiments.studies.design import (
    Space,
    design_from_dict,
    example_path,
    example_text,
    load_design,
    run_design,
    summary,
    write_design,
)
from experiments.studies.design.search import Score, _confirm, _front
from experiments.studies.design.space import Candidate
from market.adl import get_policy, policy_label, split_policy
from market.errors import InputError
from market.exchange import Exchange
from market.spec import MarketSpec

#: A design small enough for the test suite: a tiny game, a few candidates and checks.
TINY = {
    "name": "tiny",
    "scenario": "default",
    "overrides": {
        "run.traders": 150,
        "run.crises": 2,
        "run.calm_steps": 4,
        "run.crisis_steps": 3,
    },
    "seeds": 2,
    "fresh_seeds": 2,
    "population": 4,
    "generations": 2,
    "finalists": 1,
    "families": [
        {"policy": "capped_pro_rata", "params": {"max_fraction": [0.2, 1.0]}},
        {"policy": "hyperliquid"},
    ],
    "shared": {"backstop.fee_share": [0.0, 0.5]},
    "objectives": {"max_haircut_base_frac": "min", "retention": "max"},
    "constraints": {"residual_bad_debt": "<= 1e12", "exploitability": "<= 1"},
    "behaviours": {"churn.family": ["exponential", "power"]},
    "audit": {"budget": 4, "seeds": 1, "holdout": 2, "accounts": 300},
}


# --------------------------------------------------------------------------- rule names
def test_a_rule_is_named_with_its_parameters():
    name, params = split_policy("hybrid(mode='blend', queue_weight=0.5)")
    assert (name, params) == ("hybrid", {"mode": "blend", "queue_weight": 0.5})
    assert split_policy(policy_label(name, params)) == (name, params)
    assert policy_label("pro_rata", {}) == "pro_rata"
    p = get_policy("capped_pro_rata(max_fraction=0.3)")
    assert p.get_params()["max_fraction"] == 0.3
    assert get_policy("capped_pro_rata(max_fraction=0.3)", max_fraction=0.4).max_fraction == 0.4
    with pytest.raises(InputError, match="policy: must be name or name"):
        get_policy("rap(sigma=)")
    with pytest.raises(InputError, match=r"rap\.bad"):
        get_policy("rap(bad=1)")


# --------------------------------------------------------------------------- the spec
def test_the_example_loads_and_prints():
    spec = load_design(example_path())
    assert spec.primary == ("max_haircut_base_frac", "min")
    assert {c.metric for c in spec.constraints} >= {"residual_bad_debt", "exploitability"}
    assert len(spec.behaviour_cells()) == 3
    assert "[[families]]" in example_text()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": 1}, "design.colour"),
        ({"objectives": {"nonsense": "min"}}, "design.objectives.nonsense"),
        ({"objectives": {"exploitability": "min"}}, "design.objectives.exploitability"),
        ({"objectives": {"retention": "up"}}, "design.objectives.retention"),
        ({"constraints": {"retention": "== 1"}}, "design.constraints.retention"),
        ({"families": [{"policy": "nope"}]}, r"design.families\[0\].policy"),
        ({"families": [{"policy": "min_max_ilp"}]}, r"design.families\[0\].policy"),
        (
            {"families": [{"policy": "rap", "params": {"colour": [0, 1]}}]},
            r"design.families\[0\].params.colour",
        ),
        (
            {"families": [{"policy": "rap", "params": {"sigma": [0.5, 0.1]}}]},
            r"design.families\[0\].params.sigma",
        ),
        ({"shared": {"backstop.fee_share": [0.0, 7.0]}}, "design.shared.backstop.fee_share"),
        ({"shared": {"run.nothing": [0, 1]}}, "design.shared.run.nothing"),
        ({"behaviours": {"churn.family": ["square"]}}, "design.behaviours.churn.family"),
        ({"seeds": 1}, "design.seeds"),
        ({"audit": {"budget": 0}}, "design.audit.budget"),
    ],
)
def test_bad_specifications_name_the_field(change, field):
    with pytest.raises(InputError, match=field) as err:
        design_from_dict({**TINY, **change})
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- the space
@given(st.lists(st.floats(0, 1), min_size=8, max_size=8))
@settings(max_examples=200, deadline=None)
def test_every_point_decodes_to_a_candidate_that_encodes_back(u):
    spec = load_design(example_path())
    space = Space(spec)
    c = space.decode(np.array(u[: space.n_var] + [0.5] * max(space.n_var - len(u), 0)))
    assert c.policy in {f.policy for f in spec.families}
    get_policy(c.rule)  # a valid rule with its parameters
    assert space.decode(space.encode(c)) == c
    for d in spec.shared:
        v = c.shared[d.name]
        assert v in d.choices if d.choices else d.lo <= v <= d.hi


def test_family_defaults_are_points_of_the_space():
    space = Space(design_from_dict(TINY))
    for fam in space.families:
        c, inside = space.default(fam)
        assert inside and space.decode(space.encode(c)) == c
    assert space.default(space.families[0])[0].params == {"max_fraction": 1.0}


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_the_front_against_brute_force(pts):
    """The design's front: exactly the feasible candidates no other one dominates."""
    spec = design_from_dict(TINY)
    p = np.array(pts, dtype=float)
    scores = {
        str(i): Score(
            Candidate("pro_rata", {"i": i}),
            {
                "max_haircut_base_frac": np.full(2, x / 10),
                "retention": np.full(2, 1 - y / 10),  # maximised: 1 - y/10, so y is minimised
                "residual_bad_debt": np.zeros(2),
            },
            [(1, {}), (2, {})],
        )
        for i, (x, y) in enumerate(pts)
    }
    got = {int(k) for k in _front(spec, scores)}
    want = {
        i
        for i in range(len(p))
        if not any((p[j] <= p[i]).all() and (p[j] < p[i]).any() for j in range(len(p)))
    }
    assert got == want


def test_prediction_interval_and_the_out_of_sample_check():
    spec = design_from_dict(TINY)
    c = Candidate("pro_rata")
    pairs = [(1, {}), (2, {}), (3, {})]
    s = Score(
        c,
        {
            "max_haircut_base_frac": np.array([0.2, 0.3, 0.25]),
            "retention": np.array([0.9, 0.8, 0.85]),
            "residual_bad_debt": np.zeros(3),
        },
        pairs,
    )
    lo, hi = s.prediction("max_haircut_base_frac", 4)
    assert 0.0 <= lo < 0.25 < hi <= 1.0
    mean, c_lo, c_hi, n = s.interval("max_haircut_base_frac")
    assert n == 3 and c_lo <= mean <= c_hi and hi - lo > c_hi - c_lo  # wider: a new mean
    inside = Score(c, {**s.values, "max_haircut_base_frac": np.full(3, 0.25)}, pairs)
    assert _confirm(spec, s, inside) == []
    far = Score(c, {**s.values, "max_haircut_base_frac": np.full(3, 0.9)}, pairs)
    assert any("prediction interval" in r for r in _confirm(spec, s, far))
    broke = Score(c, {**inside.values, "residual_bad_debt": np.full(3, 2e12)}, pairs)
    assert any("residual_bad_debt" in r for r in _confirm(spec, s, broke))


# --------------------------------------------------------------------------- end to end
def test_a_tiny_design_writes_its_answer_and_resumes(tmp_path):
    spec = design_from_dict(TINY)
    out = tmp_path / "d"
    res = run_design(spec, out, workers=1)
    paths = write_design(res, out)
    assert {p.name for p in paths} >= {"pareto.csv", "recommended.toml", "report.md"}
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) == len(res.front) >= 1
    for m in ("max_haircut_base_frac", "retention"):
        assert (front[f"{m}.ci_low"] <= front[m] + 1e-12).all()
        assert (front[m] <= front[f"{m}.ci_high"] + 1e-12).all()
        assert (front[f"{m}.ci_low"] >= 0).all() and (front[f"{m}.ci_high"] <= 1).all()
    assert res.recommended is not None
    # the recommended rule plays as a scenario
    sc = load_scenario(out / "recommended.toml")
    rec = res.recommended.candidate
    assert sc.adl.policy == rec.policy and dict(sc.adl.params) == rec.params
    game = ADLGame(sc, seed=3, two_pass=False, record=False)
    game.run()
    report = (out / "report.md").read_text()
    assert "## Against the built-in rules" in report and "hyperliquid" in report
    # --json prints strict JSON: undefined figures are null, every feasible built-in classed
    out_json = summary(res)
    json.dumps(out_json, allow_nan=False)
    classed = out_json["beats_builtins"] + out_json["not_beaten"] + out_json["not_comparable"]
    # a recommended built-in is not compared with itself
    builtin_rec = res.recommended_kind == "built-in"
    itself = res.recommended.candidate.policy if builtin_rec else None
    assert itself not in classed
    assert sorted(classed) == sorted(
        v["policy"] for v in res.versus if v["feasible"] and v["policy"] != itself
    )
    # every built-in was played on the fresh seeds
    assert {v["policy"] for v in res.versus} >= {"pro_rata", "hyperliquid", "seniority"}
    # resuming asks for the same candidates and finds every run done
    shards = sorted(p.name for p in (out / "runs").rglob("*.parquet"))
    again = run_design(spec, out, workers=1)
    assert sorted(p.name for p in (out / "runs").rglob("*.parquet")) == shards
    assert again.front == res.front
    assert again.recommended.candidate == res.recommended.candidate
    # another design in the same folder is refused
    with pytest.raises(InputError, match="--out"):
        run_design(design_from_dict({**TINY, "seeds": 3}), out, workers=1)


def test_the_command_prints_the_example_and_refuses_bad_input(capsys, tmp_path):
    assert main(["design", "--example"]) == 0
    assert "[objectives]" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[[families]]\npolicy = "pro_rata"\n[objectives]\nretention = "sideways"\n'
    )
    assert main(["design", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "design.objectives.retention" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- audit fix
def test_a_refused_short_reopen_halves_to_zero_and_stops():
    assert [_halved(x) for x in (-5, -2, -1, 0, 1, 5)] == [-2, -1, 0, 0, 0, 2]
    spec = MarketSpec(lot_size=1.0, initial_margin=0.1)  # a 1-lot short needs $10
    ex = Exchange([spec], 100.0)
    (a,) = ex.open_accounts(1, 1.0)  # $1 of margin: any short of 1 lot ($100) is refused
    done = Applied(np.array([a]), [(0, -7)], 0.0)
    after_wave(ex, int(a), done)  # used to loop forever: -1 // 2 == -1
    assert ex.acc.positions.lots_of(np.array([a]), 0)[0] == 0
    assert math.isfinite(float(ex.acc.cash[a]))
    assert json.dumps(done.reopen) == "[[0, -7]]"


def test_the_readme_example_is_the_packaged_one():
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = next(
        b
        for b in re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
        if 'name = "smallest-haircut"' in b
    )
    assert design_from_dict(tomllib.loads(block)).as_dict() == load_design(
        example_path()
    ).as_dict() | {"name": "smallest-haircut"}


def test_a_candidate_the_game_refuses_scores_as_failed(tmp_path):
    from experiments.studies.design.search import PENALTY, objectives_and_constraints, score_runs

    spec = design_from_dict(TINY)
    bad = Candidate(
        "pro_rata", shared={"market.maintenance_margin": 0.015, "market.initial_margin": 0.012}
    )
    got = score_runs(spec, [bad], [(1, {}), (2, {})], tmp_path, "t", "local", 1)[bad.key]
    assert got.failed == 2 and "maintenance_margin" in got.refused
    f, g = objectives_and_constraints(spec, got)
    assert (f == PENALTY).all() and (g > 0).all()
