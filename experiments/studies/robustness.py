"""The ``robustness`` experiment: does a conclusion survive the behavioural assumptions?

Every headline comparison the catalogue makes (each game policy against ``pro_rata`` on
retention, fee revenue, LTV lost per deficit dollar, the externality ratio, the largest haircut
and the gaming traders' shelter from ADL) is recomputed in every cell of a design over the
behaviour: Morris elementary-effect trajectories (SALib) over the behavioural parameters
(:data:`PARAMETERS`) and the entry and imitation families (:data:`CATEGORIES`), the trajectories
dealt out in turn to the churn hazard families (:data:`agents.churn.CHURN_FAMILIES`), the same
seeds for every policy (paired); ``quick`` deals its seeds over the cells in turn (one run per
cell and policy).  Runs go through the run engine, so ``--executor dask://...`` works.

A conclusion (policy, metric) is the sign of the paired difference ``policy - pro_rata``.  It
is **robust** when that sign holds in at least 90 % of the cells (cell means over seeds) and the
95 % interval over seeds (each seed's mean over its cells: a seed's cells share one world, so
seeds are the sampling unit) excludes zero; otherwise it is
**fragile**, and ``flips_under`` names the churn families under which some cell's sign flips.
A policy whose numbers equal pro_rata's in every run **coincides** with it (no conclusion).
``verdicts.csv`` holds the verdicts; ``sensitivity.csv`` what moves each difference: Morris
``mu_star`` (mean absolute elementary effect, with its bootstrap confidence half-width and
``sigma``) per factor, and for the churn family the share of the difference's variance
between families (``eta_squared``).

Gameability here is the in-game shelter of the gaming traders (``gaming_shelter``); the
audit's counterfactual gameability is its own experiment (``adlgame audit``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from agents.churn import CHURN_FAMILIES
from agents.population import ENTRY_FAMILIES, IMITATION_FAMILIES
from experiments.game.scenario import Scenario
from experiments.metrics import confidence_interval
from experiments.studies.experiment import Experiment, check_seeds
from experiments.studies.report import md_table, ok_rows, seed_text

__all__ = [
    "CATEGORIES",
    "CONCLUSION_METRICS",
    "PARAMETERS",
    "Robustness",
    "morris_design",
    "sensitivity",
    "verdicts",
]

#: Behavioural parameters the design varies, with their ranges (dotted scenario names).
PARAMETERS: dict[str, tuple[float, float]] = {
    "churn.beta": (1.0, 20.0),
    "churn.surprise": (0.0, 5.0),
    "passive.liquidation_churn": (0.0, 0.6),
    "entry.sensitivity": (5.0, 50.0),
    "imitation.rate": (0.0, 0.3),
}
#: The metrics whose comparisons against pro-rata are judged, with the better direction.
CONCLUSION_METRICS: dict[str, str] = {
    "retention": "higher",
    "fee_revenue": "higher",
    "ltv_lost_per_deficit_dollar": "lower",
    "externality_ratio": "lower",
    "max_haircut_base_frac": "lower",
    "gaming_shelter": "lower",
}
#: Behavioural choices the design varies as Morris factors (a factor's unit level picks one).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "entry.family": ENTRY_FAMILIES,
    "imitation.family": IMITATION_FAMILIES,
}
#: Morris grid levels (SALib's ``num_levels``).
LEVELS = 4
#: Share of the design a sign must hold in for a robust verdict.
ROBUST_SHARE = 0.9


def _problem() -> dict[str, Any]:
    """The SALib problem: every factor on the unit interval (scaled or categorised later)."""
    names = [*PARAMETERS, *CATEGORIES]
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


def _cell_of(unit: np.ndarray, family: str) -> dict[str, Any]:
    """Scenario overrides of one design point (unit coordinates) under a churn family."""
    cell: dict[str, Any] = {"churn.family": family}
    for (name, (lo, hi)), u in zip(PARAMETERS.items(), unit, strict=False):
        cell[name] = float(lo + (hi - lo) * u)
    for (name, values), u in zip(CATEGORIES.items(), unit[len(PARAMETERS) :], strict=True):
        cell[name] = values[min(int(u * len(values)), len(values) - 1)]
    return cell


def morris_design(per_family: int, seed: int = 7) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Morris trajectories over :data:`PARAMETERS` and :data:`CATEGORIES`, ``per_family`` of
    them for each churn family (trajectory ``k`` goes to family ``k mod F``).

    Returns the unit design (one row per point, ``(factors + 1)`` rows per trajectory) and one
    cell of scenario overrides per row.
    """
    from SALib.sample import morris as morris_sample

    n_traj = max(int(per_family), 1) * len(CHURN_FAMILIES)
    unit = morris_sample.sample(_problem(), N=n_traj, num_levels=LEVELS, seed=seed)
    k = len(PARAMETERS) + len(CATEGORIES) + 1
    cells = [
        _cell_of(row, CHURN_FAMILIES[(i // k) % len(CHURN_FAMILIES)]) for i, row in enumerate(unit)
    ]
    return unit, cells


def _cell_key(row: Any) -> str:
    """A text key of a cell's overrides (the same for a design cell and its runs' rows)."""
    cols = ("churn.family", *PARAMETERS, *CATEGORIES)
    return "|".join(
        f"{float(row[c]):.12g}" if c in PARAMETERS else str(row[c]) for c in cols if c in row
    )


def sensitivity(
    rows: pd.DataFrame, unit: np.ndarray, cells: list[dict[str, Any]], baseline: str = "pro_rata"
) -> pd.DataFrame:
    """What moves each conclusion: per (policy, metric), the Morris indices of the paired
    difference ``policy - baseline`` (cell means over seeds) for every factor, and the churn
    family's between-family share of its variance.

    Columns ``policy, metric, factor, method`` (``morris`` or ``eta_squared``), ``mu_star``,
    ``mu_star_conf``, ``sigma``, ``share`` (``mu_star`` over the pair's total, or eta squared).
    Pairs with a missing design point (a failed run) or a constant difference are skipped.
    """
    from SALib.analyze import morris as morris_analyze

    ok = ok_rows(rows)
    if ok.empty:
        return pd.DataFrame()
    ok = ok.assign(_key=[_cell_key(r) for r in ok.to_dict("records")])
    keys = [_cell_key(c) for c in cells]
    families = np.array([c["churn.family"] for c in cells])
    base = ok[ok["policy"] == baseline].set_index(["_key", "seed"])
    out = []
    for policy, g in ok[ok["policy"] != baseline].groupby("policy", sort=False):
        g = g.set_index(["_key", "seed"])
        both = g.index.intersection(base.index)
        for metric in CONCLUSION_METRICS:
            if metric not in g.columns:
                continue
            d = pd.to_numeric(g.loc[both, metric], errors="coerce") - pd.to_numeric(
                base.loc[both, metric], errors="coerce"
            )
            per_cell = d.groupby(level="_key").mean()
            y = per_cell.reindex(keys).to_numpy(dtype=np.float64)
            if not np.isfinite(y).all() or np.ptp(y) <= 1e-12 * max(np.abs(y).max(), 1e-300):
                continue
            res = morris_analyze.analyze(
                _problem(), unit, y, num_levels=LEVELS, seed=11, print_to_console=False
            )
            mu = np.asarray(res["mu_star"], dtype=np.float64)
            total = float(mu.sum()) or 1.0
            for j, name in enumerate(res["names"]):
                out.append(
                    {
                        "policy": policy,
                        "metric": metric,
                        "factor": name,
                        "method": "morris",
                        "mu_star": float(mu[j]),
                        "mu_star_conf": float(res["mu_star_conf"][j]),
                        "sigma": float(res["sigma"][j]),
                        "share": float(mu[j] / total),
                    }
                )
            means = pd.Series(y).groupby(families).transform("mean").to_numpy()
            eta = float(np.sum((means - y.mean()) ** 2) / np.sum((y - y.mean()) ** 2))
            out.append(
                {
                    "policy": policy,
                    "metric": metric,
                    "factor": "churn.family",
                    "method": "eta_squared",
                    "mu_star": np.nan,
                    "mu_star_conf": np.nan,
                    "sigma": np.nan,
                    "share": eta,
                }
            )
    return pd.DataFrame(out)


def verdicts(rows: pd.DataFrame, baseline: str = "pro_rata", level: float = 0.95) -> pd.DataFrame:
    """One row per (policy, metric): the conclusion, its sign share over the design's cells,
    the pooled paired interval, the verdict and the churn families where its sign flips."""
    ok = ok_rows(rows)
    key = ["cell_id", "seed"]
    base = ok[ok["policy"] == baseline].set_index(key)
    out = []
    for policy, g in ok[ok["policy"] != baseline].groupby("policy", sort=False):
        g = g.set_index(key)
        both = g.index.intersection(base.index)
        for metric, better in CONCLUSION_METRICS.items():
            if metric not in g.columns:
                continue
            d = pd.to_numeric(g.loc[both, metric], errors="coerce") - pd.to_numeric(
                base.loc[both, metric], errors="coerce"
            )
            d = d.dropna()
            if d.empty:
                continue
            per_cell = d.groupby(level="cell_id").mean()
            # seeds are the sampling unit (every cell of a seed shares its world), so the
            # interval is over per-seed means across cells
            per_seed = d.groupby(level="seed").mean()
            scale = max(float(np.abs(base.loc[both, metric]).max()), 1e-12)
            same = bool((d.abs() <= 1e-9 * scale).all())
            majority = float(np.sign(per_cell.median())) or float(np.sign(per_cell.mean()))
            share = float((np.sign(per_cell) == majority).mean()) if majority else 0.0
            ci = confidence_interval(per_seed.to_numpy(), level)
            excludes = ci.low > 0 or ci.high < 0
            good = (majority > 0) == (better == "higher")
            fam_of = g.reset_index().drop_duplicates("cell_id").set_index("cell_id")["churn.family"]
            flips = sorted({fam_of[c] for c in per_cell.index if np.sign(per_cell[c]) != majority})
            verdict = "robust" if share >= ROBUST_SHARE and excludes else "fragile"
            if same:
                verdict, flips = "coincides", []
            text = "equals" if same else ("beats" if good else "trails")
            out.append(
                {
                    "conclusion": f"{policy} {text} {baseline} on {metric} ({better} is better)",
                    "metric": metric,
                    "policy": policy,
                    "baseline": baseline,
                    "cells": int(per_cell.size),
                    "n": int(ci.n),
                    "runs": int(d.size),
                    "mean_diff": ci.mean,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "sign_share": share,
                    "verdict": verdict,
                    "flips_under": ",".join(flips),
                }
            )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class Robustness(Experiment):
    """Each policy against pro_rata over a Morris design across the behaviour families.

    Attributes:
        trajectories: Morris trajectories per churn family (``quick``: 1); each has one point
            per factor plus one, so the design has ``5 * trajectories * 8`` cells.
        quick: a small design for a first look (one trajectory per churn family).
    """

    name: ClassVar[str] = "robustness"
    #: ``--quick``: 8 seeds dealt over the 40 cells, one run per cell and policy.
    quick_seeds: ClassVar[int] = 8
    description: ClassVar[str] = (
        "every policy against pro_rata across the behaviour families and a Morris design over "
        "the behavioural parameters: which conclusions are robust, and what moves them"
    )

    trajectories: int = 4
    quick: bool = False

    def specs(self, seeds: int, base: Scenario) -> list[Any]:
        """Every cell with seeds 1..N; ``quick``: cell ``i`` with seed ``i mod N + 1`` alone, so
        N seeds spread over the design at one run per cell and policy."""
        every = super().specs(seeds, base)
        if not self.quick:
            return every
        n = check_seeds(seeds)
        keys = [json.dumps(c, sort_keys=True) for c in self.cells(base)]
        seed_of = {k: i % n + 1 for i, k in enumerate(keys)}
        return [s for s in every if s.seed == seed_of[json.dumps(s.cell, sort_keys=True)]]

    def design(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The unit Morris design and its cells (:func:`morris_design`)."""
        return morris_design(1 if self.quick else int(self.trajectories))

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """One cell of scenario overrides per design point."""
        return self.design()[1]

    def group_by(self) -> list[str]:
        """Verdicts are per policy and metric (see :func:`verdicts`)."""
        return ["policy"]

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """The verdict table (``attrs["sensitivity"]``: the indices) and the report."""
        rows = _with_cell_ids(rows)
        table = verdicts(rows)
        unit, cells = self.design()
        sens = sensitivity(rows, unit, cells) if len(rows) else pd.DataFrame()
        table.attrs["sensitivity"] = sens
        ok = ok_rows(rows)
        seeds = sorted({int(s) for s in ok["seed"]}) if "seed" in ok.columns else []
        per = 1 if self.quick else self.trajectories
        lines = [
            f"# Experiment {self.name}",
            "",
            self.description[:1].upper() + self.description[1:] + ".",
            "",
            f"- cells: {rows['cell_id'].nunique() if len(rows) else 0} distinct of "
            f"{len(cells)} design points: {per} Morris trajector{'y' if per == 1 else 'ies'} "
            f"({LEVELS} levels) per churn family ({', '.join(CHURN_FAMILIES)}) over "
            f"{', '.join(PARAMETERS)} (ranges {_ranges()}) and "
            + ", ".join(f"{k} ({', '.join(v)})" for k, v in CATEGORIES.items())
            + (
                f"; seeds {seed_text(seeds)} dealt to the cells in turn (one run per cell and "
                "policy)"
                if self.quick
                else f"; seeds {seed_text(seeds)} in every cell"
            ),
            f"- robust: the sign holds in >= {ROBUST_SHARE:.0%} of cells and the 95 % "
            "interval of the paired difference over seeds (each seed's mean over its cells: "
            "the cells of a seed share its world) excludes zero; otherwise fragile; "
            "coincides: equal to the baseline in every run",
            "",
        ]
        if table.empty:
            return table, "\n".join([*lines, "(no finished runs)"]) + "\n"
        body = [
            [
                r["conclusion"],
                r["verdict"],
                f"{r['sign_share']:.0%}",
                f"{r['mean_diff']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}] "
                f"(seeds={r['n']}, runs={r['runs']})",
                r["flips_under"] or "-",
                _drivers(sens, r["policy"], r["metric"]),
            ]
            for _, r in table.iterrows()
        ]
        lines += md_table(
            [
                "conclusion",
                "verdict",
                "sign share",
                "mean diff [95 %]",
                "flips under",
                "moved most by",
            ],
            body,
        )
        lines += [
            "",
            "`moved most by`: the two factors with the largest Morris mu* share of the "
            "difference (mean absolute elementary effect over the factor's range, SALib), and "
            "the churn family's between-family share of its variance (eta squared); all "
            "indices, with bootstrap confidence half-widths, are in `sensitivity.csv`.",
        ]
        return table, "\n".join(lines) + "\n"

    def write_outputs(self, out: Path, summary: pd.DataFrame) -> dict[str, Any]:
        """Writes ``verdicts.csv`` and ``sensitivity.csv``; counts the verdicts for the info."""
        summary.to_csv(Path(out) / "verdicts.csv", index=False)
        summary.attrs.get("sensitivity", pd.DataFrame()).to_csv(
            Path(out) / "sensitivity.csv", index=False
        )
        robust = int((summary["verdict"] == "robust").sum()) if len(summary) else 0
        return {"verdicts": len(summary), "robust": robust}


def _ranges() -> str:
    return ", ".join(f"{lo:g}-{hi:g}" for lo, hi in PARAMETERS.values())


def _drivers(sens: pd.DataFrame, policy: str, metric: str) -> str:
    """The two largest Morris shares and the family's eta squared of one conclusion."""
    if sens.empty:
        return "-"
    s = sens[(sens["policy"] == policy) & (sens["metric"] == metric)]
    if s.empty:
        return "-"
    mor = s[s["method"] == "morris"].nlargest(2, "share")
    parts = [f"{r.factor} {r.share:.0%}" for r in mor.itertuples()]
    eta = s[s["method"] == "eta_squared"]["share"]
    if len(eta):
        parts.append(f"family eta2 {float(eta.iloc[0]):.2f}")
    return "; ".join(parts)


def _with_cell_ids(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a ``cell_id``: one id per distinct combination of the design's columns."""
    cols = [c for c in ("churn.family", *PARAMETERS, *CATEGORIES) if c in rows.columns]
    if not cols or rows.empty:
        return rows.assign(cell_id=0)
    keys = [_cell_key(r) for r in rows[cols].to_dict("records")]
    return rows.assign(cell_id=pd.factorize(pd.Series(keys))[0])
