"""Report figures: drawing functions, PNG + SVG files, captions, the report hook, layering."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from experiments.metrics import lorenz_points
from experiments.runs.runner import VECTOR_COLUMNS
from experiments.studies import catalogue as cat
from experiments.studies import experiment as xp
from viz import figures as vf
from viz import style

ROOT = Path(__file__).resolve().parents[2]
UNIT = re.compile(r",\s*\S|\(.+\)|\[.+\]")
#: Labels of categorical axes (names, no unit).
CATEGORIES = {"policy", "cosmetic action", "game policy vs published rule"}
POLS = ("hyperliquid", "pro_rata")


# --------------------------------------------------------------------------- hand-made data
def _rows() -> pd.DataFrame:
    """Two policies x two seeds with every column the game figures read."""
    recs = []
    for i, p in enumerate(POLS):
        for seed in (1, 2):
            lor = np.linspace(0, 1, 21) ** (1 + 3 * (1 - i))  # the queue is more unequal
            recs.append(
                {
                    "policy": p,
                    "severity": "full",
                    "seed": seed,
                    "status": "ok",
                    "lorenz_haircut": json.dumps(lor.tolist()),
                    "retention_by_crisis": json.dumps([1.0, 0.9 - 0.1 * i, 0.8 - 0.2 * i]),
                    "revenue_by_crisis": json.dumps([100.0, 80.0 + seed, 90.0]),
                    "leverage_drift_by_crisis": json.dumps([0.0, 0.5 * (i + 1), 1.0]),
                    "externality_by_crisis": json.dumps([0.3, None, 0.5]),
                    "overshoot_h0": 10.0 * (i + 1) + seed,
                    "overshoot_h1": 12.0 * (i + 1) + seed,
                    "overshoot_h2": 15.0 * (i + 1) + seed,
                    "overshoot_h5": 20.0 * (i + 1) + seed,
                    "run.traders": 100 * seed,
                    "ptsr_base": 2.0 / seed + i,
                    "pmr_base": 3.0 / seed + i,
                }
            )
    return pd.DataFrame(recs)


def _summary(metrics=("adl_raised", "retention", "max_haircut_base_frac")) -> pd.DataFrame:
    recs = []
    for i, p in enumerate(POLS):
        for k, m in enumerate(metrics):
            mean = 1.0 + i + k
            recs.append(
                {
                    "policy": p,
                    "metric": m,
                    "mean": mean,
                    "ci_low": mean - 0.5,
                    "ci_high": mean + 0.5,
                }
            )
    return pd.DataFrame(recs)


def _frontier_summary() -> pd.DataFrame:
    recs = []
    for i, p in enumerate(POLS):
        for j, s in enumerate(("full", "backoff")):
            vals = {
                "residual_bad_debt": 10.0 * j,
                "max_haircut_base_frac": 0.5 - 0.2 * i,
                "fee_revenue": 100.0 + i,
            }
            for m, v in vals.items():
                recs.append({"policy": p, "severity": s, "metric": m, "mean": v, "pareto": j == 0})
    return pd.DataFrame(recs)


def _audit_summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"policy": p, "action": a, "G": g, "ci_low": g - 0.1, "ci_high": g + 0.1}
            for p, base in zip(POLS, (0.6, 0.0), strict=True)
            for a, g in (("close_reopen", base), ("sybil_split", base / 2))
        ]
    )


def _bounds_summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"policy": p, "check": c, "pass_rate": r}
            for p in POLS
            for c, r in (("infeasible", 1.0), ("granularity", 0.5))
        ]
    )


def _loglog_summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "policy": p,
                "metric": f"{m}_loglog_slope",
                "mean": -0.5,
                "intercept": 1.0,
                "ci_low": -0.6,
                "ci_high": -0.4,
            }
            for p in POLS
            for m in ("ptsr_base", "pmr_base")
        ]
    )


@pytest.fixture(scope="module")
def oct10_data():
    from experiments.studies.oct10 import load_oct10

    return load_oct10()


def _oct10_runs(data) -> pd.DataFrame:
    waves = data.waves["wave"].to_list()
    return pd.DataFrame(
        [
            {"policy": p, "wave": w, "seed": s, "overshoot": 1000.0 * (i + 1) + s}
            for i, p in enumerate(("hyperliquid", "pro_rata"))
            for w in waves
            for s in (1, 2)
        ]
    )


def _oct10_table() -> pd.DataFrame:
    recs = []
    for p, pub in (("hyperliquid", "prod"), ("pro_rata", "pr")):
        rec = {"wave": "total", "policy": p, "published": pub}
        for m, v in (("overshoot", 5e6), ("max_pct_equity", 0.2), ("ptsr_pubdef", 3.0)):
            rec |= {
                f"synthetic_{m}_mean": v,
                f"synthetic_{m}_low": v * 0.9,
                f"synthetic_{m}_high": v * 1.1,
            }
        rec |= {
            "derived_published_overshoot": 4.5e7,
            "derived_published_max_pct": 0.3,
            "derived_published_ptsr": 2.0,
        }
        recs.append(rec)
    return pd.DataFrame(recs)


def _drawings(data) -> dict:
    rows = _rows()
    pub = {
        "prod": "production",
        "pr": "wealth pro-rata",
        "vector": "vector",
        "contract_pr": "contract pro-rata",
        "fixed_point_ilp_integer": "ILP",
    }
    return {
        "intervals": lambda: vf.draw_policy_intervals(
            _summary(), ("adl_raised", "retention", "max_haircut_base_frac"), title="t"
        ),
        "lorenz": lambda: vf.draw_lorenz(rows),
        "crisis": lambda: vf.draw_crisis_curves(rows),
        "moral": lambda: vf.draw_crisis_curves(rows, (vf.LEVERAGE, vf.EXTERNALITY)),
        "horizon": lambda: vf.draw_overshoot_horizon(rows),
        "frontier": lambda: vf.draw_frontier(_frontier_summary()),
        "gameability": lambda: vf.draw_gameability(_audit_summary()),
        "pass_rates": lambda: vf.draw_pass_rates(_bounds_summary()),
        "loglog": lambda: vf.draw_loglog(rows, _loglog_summary()),
        "oct10_wave": lambda: vf.draw_oct10_per_wave(_oct10_runs(data), data, pub),
        "oct10_cum": lambda: vf.draw_oct10_cumulative(_oct10_runs(data), data, pub),
        "oct10_horizon": lambda: vf.draw_oct10_horizon(_oct10_runs(data), data),
        "oct10_pub": lambda: vf.draw_oct10_vs_published(
            _oct10_table(), {"hyperliquid": "prod", "pro_rata": "pr"}, pub
        ),
    }


# --------------------------------------------------------------------------- drawing functions
@pytest.mark.parametrize(
    "name",
    [
        "intervals",
        "lorenz",
        "crisis",
        "moral",
        "horizon",
        "frontier",
        "gameability",
        "pass_rates",
        "loglog",
        "oct10_wave",
        "oct10_cum",
        "oct10_horizon",
        "oct10_pub",
    ],
)
def test_each_drawing_is_labelled_and_writes_png_and_svg(name, tmp_path, oct10_data):
    fig = _drawings(oct10_data)[name]()
    assert fig is not None
    plots = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert plots
    for ax in plots:
        assert ax.get_title(), (name, "title")
        for lab in (ax.get_xlabel(), ax.get_ylabel()):
            assert lab and (lab in CATEGORIES or UNIT.search(lab)), (name, lab)
    paths = style.save(fig, tmp_path, name)
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
    img = mpimg.imread(paths[0])
    grey = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    assert grey.std() > 0.01  # not blank, also in grey
    assert "<svg" in paths[1].read_text()[:500]


def test_heat_map_cells_carry_their_numbers():
    fig = vf.draw_gameability(_audit_summary())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "0.60\n[0.50, 0.70]" in texts and "0.00\n[-0.10, 0.10]" in texts
    assert len(texts) == 4
    fig = vf.draw_pass_rates(_bounds_summary())
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["100%", "100%", "50%", "50%"]


def test_gameability_heat_map_shows_g_net_of_cost_when_there():
    net = _audit_summary().assign(
        G_net=lambda d: d["G"] - 0.7,
        G_net_low=lambda d: d["G"] - 0.8,
        G_net_high=lambda d: d["G"] - 0.6,
    )
    fig = vf.draw_gameability(net)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "-0.10\n[-0.20, 0.00]" in texts  # 0.60 gross, -0.10 net of a 0.70 cost
    assert "net of the action's cost" in fig.axes[-1].get_ylabel()


def test_policy_intervals_mark_a_short_n_and_a_coinciding_policy():
    s = _summary().assign(n=2, runs=2, coincides_with="")
    s.loc[(s["policy"] == POLS[1]) & (s["metric"] == "retention"), "n"] = 1
    s.loc[s["policy"] == POLS[1], "coincides_with"] = POLS[0]
    fig = vf.draw_policy_intervals(s, ("adl_raised", "retention"), title="t")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["n=1"]  # only the interval computed from fewer values than runs
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert f"{POLS[1]} (= {POLS[0]})" in ticks


def test_figure_intervals_come_from_the_one_interval_function():
    # overshoot curves and Lorenz means use experiments.metrics.confidence_interval: over
    # [0, 1] data with 2 seeds the ends stay in [0, 1] (a Student-t interval would not)
    mean, lo, hi, n = vf._mean_ci(np.array([[0.05, 0.5], [0.95, 0.5]]), (0.0, 1.0))
    assert (lo >= 0).all() and (hi <= 1).all() and n.tolist() == [2, 2]
    assert mean.tolist() == pytest.approx([0.5, 0.5]) and lo[1] == hi[1] == 0.5
    # no second interval implementation: only metrics.py calls Student's t for means
    for path in [ROOT / "viz" / "figures.py", *(ROOT / "experiments" / "studies").rglob("*.py")]:
        if path.name != "moral_hazard.py":  # a regression slope's interval, not a mean's
            assert "stats.t." not in path.read_text(), path
    assert "not yet informative" in vf.interval_words({"seeds": 2})
    assert "not yet informative" not in vf.interval_words({"seeds": 5})


def test_series_styles_differ_without_colour():
    triples = [
        (s["marker"], str(s["linestyle"]), s["fillstyle"])
        for s in (style.series_style(i) for i in range(style.DISTINCT))
    ]
    assert len(set(triples)) == style.DISTINCT
    # the first few differ in marker *and* line style
    first = triples[:5]
    assert len({t[0] for t in first}) == 5 and len({t[1] for t in first}) == 5
    # colours run dark to light in grey (cividis is monotone in lightness)
    greys = [style.grey_level(style.series_style(i, 6)["color"][:3]) for i in range(6)]
    assert greys == sorted(greys) and greys[-1] - greys[0] > 0.4
    assert len({style.hatch(i) for i in range(len(style.HATCHES))}) == len(style.HATCHES)


def test_two_series_stay_apart_in_a_grey_png(tmp_path):
    fig, axes = style.new_figure(size=(3, 2))
    ax = axes[0, 0]
    x = np.arange(5)
    for i in range(2):
        ax.plot(x, x * 0 + i, lw=2, **style.series_style(i, 2))
    ax.set_axis_off()
    png = style.save(fig, tmp_path, "two")[0]
    grey = mpimg.imread(png)[..., :3] @ np.array([0.299, 0.587, 0.114])
    rows = np.flatnonzero((grey < 0.9).any(axis=1))  # rows with ink
    # two separate bands of ink (the lines with their markers), not one smear
    gaps = np.diff(rows) > 1
    assert gaps.sum() >= 1


def test_lorenz_points_by_hand():
    # values 0 (implicit), 1, 1, 2; S = 4: L(0.25) = 0, L(0.5) = 1/4, L(0.75) = 2/4, L(1) = 1
    got = lorenz_points([1.0, 1.0, 2.0], 4, points=5)
    np.testing.assert_allclose(got, [0.0, 0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(lorenz_points([0.0, 0.0], points=3), [0.0, 0.5, 1.0])
    assert np.isnan(lorenz_points([], points=3)).all()
    np.testing.assert_allclose(lorenz_points([3.0, 3.0, 3.0], points=4), [0, 1 / 3, 2 / 3, 1])


def test_caption_names_seeds_scenario_and_policies():
    ctx = {
        "seeds": 3,
        "seed_list": [1, 2, 3],
        "scenario": "default",
        "traders": 200,
        "crises": 2,
        "calm_steps": 5,
        "crisis_steps": 4,
        "policies": list(POLS),
        "severities": ["full"],
    }
    text = vf.caption(ctx, "What it shows")
    assert text == (
        "What it shows; seeds 1..3; scenario default (200 traders, 2 crises, 5 calm + 4 "
        "crisis steps per cycle); policies hyperliquid, pro_rata; severity full."
    )
    assert vf.write_figures("nope", Path("/nonexistent"), pd.DataFrame(), pd.DataFrame(), {}) == []


# --------------------------------------------------------------------------- the report hook
def test_compare_tiny_report_links_every_figure(tmp_path):
    exp = cat.Compare(policies=POLS)
    tiny = xp.base_scenario("tiny")
    out = tmp_path / "cmp"
    cat.run_experiment(exp, 2, out, workers=2, quiet=True, base=tiny)
    report = (out / "report.md").read_text()
    assert "## Figures" not in report
    assert not list(out.glob("*.png")) and not list(out.glob("*.svg"))
    runs = pd.read_parquet(out / "runs.parquet")
    for col in VECTOR_COLUMNS:
        assert runs[col].map(lambda s: isinstance(json.loads(s), list)).all(), col
    assert runs["lorenz_haircut"].map(lambda s: len(json.loads(s))).eq(21).all()
    assert runs["retention_by_crisis"].map(lambda s: len(json.loads(s))).eq(2).all()
    # retention's last point is the scalar headline retention
    last = runs["retention_by_crisis"].map(lambda s: json.loads(s)[-1])
    np.testing.assert_allclose(last.to_numpy(float), runs["retention"].to_numpy(float))

    # again with figures: the runs are reused (resume), the figures drawn and linked
    summary = cat.run_experiment(
        exp, 2, out, workers=1, quiet=True, base=tiny, figures=vf.write_figures
    )
    report = (out / "report.md").read_text()
    assert "## Figures" in report
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    svgs = re.findall(r"\[SVG\]\(([^)]+)\)", report)
    assert len(images) == len(svgs) == 4
    for link in images + svgs:
        assert (out / link).is_file() and (out / link).stat().st_size > 0, link
    assert {p.name for p in out.glob("*.png")} == set(images)
    assert {p.name for p in out.glob("*.svg")} == set(svgs)
    assert summary.attrs["info"]["figures"] == [Path(i).stem for i in images]
    captions = [ln for ln in report.splitlines() if "[SVG](" in ln]
    assert all("seeds 1..2" in c and "scenario default" in c and "pro_rata" in c for c in captions)


def test_adlgame_experiment_command_writes_linked_figures(tmp_path, capsys):
    """The console script's path: `adlgame experiment compare --seeds 2 --out DIR`."""
    from viz.cli import main

    out = tmp_path / "cli_cmp"
    argv = ["experiment", "compare", "--seeds", "2", "--scale", "tiny", "--out", str(out)]
    assert main([*argv, "--quiet", "--workers", "2"]) == 0
    info = json.loads(capsys.readouterr().out)
    report = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report)
    assert images and info["figures"] == [Path(i).stem for i in images]
    for link in images:
        assert (out / link).stat().st_size > 0
        assert (out / link.replace(".png", ".svg")).stat().st_size > 0
