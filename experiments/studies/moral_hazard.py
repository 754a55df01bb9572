"""The ``moral-hazard`` experiment: leverage drift, externality ratio and PTSR/PMR against
participation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from experiments.game.scenario import Scenario
from experiments.metrics import detectable_difference, seeds_needed
from experiments.runs.results import HEADLINE_METRICS
from experiments.studies.experiment import (
    Experiment,
)
from experiments.studies.report import (
    LEVEL,
    ci_text,
    fmt,
    md_table,
    ok_rows,
    pick,
)


@dataclass(frozen=True)
class MoralHazard(Experiment):
    """Leverage drift and externality ratio per policy, and PTSR/PMR against participation n.

    Attributes:
        trader_fractions: ``run.traders`` values as fractions of the base scenario's (the
            default 2000 gives n = 250, 500, 1000, 2000).
    """

    name: ClassVar[str] = "moral-hazard"
    #: Seeds by default: at the default size 40 paired seeds detect a difference of about 0.6
    #: in leverage drift and 0.02 in the externality ratio against pro_rata (80 % power), in
    #: about 6 min on 2 cores; 5 seeds detected only about 2.
    default_seeds: ClassVar[int] = 40
    description: ClassVar[str] = (
        "leverage drift and externality ratio per policy; PTSR/PMR against participation n "
        "(log-log slope)"
    )

    trader_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)

    #: The ratios fitted against n (C3's PTSR and PMR on the eligibility base).
    SCALED: ClassVar[tuple[str, str]] = ("ptsr_base", "pmr_base")

    def cells(self, base: Scenario) -> list[dict[str, Any]]:
        """One cell per trader count."""
        ns = sorted({max(10, round(base.run.traders * f)) for f in self.trader_fractions})
        return [{"run.traders": n} for n in ns]

    def group_by(self) -> list[str]:
        """Per trader count and policy."""
        return ["run.traders", "policy"]

    def metrics(self) -> tuple[str, ...]:
        """Moral-hazard metrics first, then the rest of the headline."""
        first = ("leverage_drift", "externality_ratio", *self.SCALED)
        return (*first, *(m for m in HEADLINE_METRICS if m not in first))

    def report_metrics(self) -> tuple[str, ...]:
        """The report shows the four moral-hazard metrics."""
        return ("leverage_drift", "externality_ratio", *self.SCALED)

    def scaling(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per policy and metric (PTSR, PMR): least-squares slope of log(metric) on log(n).

        Fitted on every finished run with a positive finite value
        (:func:`scipy.stats.linregress`); the interval is ``slope +- t * stderr``.  A slope of
        ``b`` means the metric scales like ``n^b``.
        """
        ok = ok_rows(rows)
        out = []
        for policy, g in ok.groupby("policy", sort=False):
            n = pd.to_numeric(g["run.traders"], errors="coerce").to_numpy(float)
            for m in self.SCALED:
                if m not in g.columns:
                    continue
                y = pd.to_numeric(g[m], errors="coerce").to_numpy(float)
                keep = np.isfinite(y) & (y > 0) & np.isfinite(n) & (n > 0)
                rec: dict[str, Any] = {
                    "run.traders": "all",
                    "policy": policy,
                    "metric": f"{m}_loglog_slope",
                    "n": int(keep.sum()),
                }
                if keep.sum() >= 3 and np.unique(n[keep]).size >= 2:
                    fit = stats.linregress(np.log(n[keep]), np.log(y[keep]))
                    half = float(stats.t.ppf(0.5 + LEVEL / 2, keep.sum() - 2) * fit.stderr)
                    rec.update(
                        mean=float(fit.slope),
                        ci_low=float(fit.slope - half),
                        ci_high=float(fit.slope + half),
                        r_value=float(fit.rvalue),
                        intercept=float(fit.intercept),
                    )
                else:
                    rec.update(mean=np.nan, ci_low=np.nan, ci_high=np.nan)
                out.append(rec)
        return pd.DataFrame(out)

    def summarise(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """Interval table per (n, policy) plus the log-log slope rows (``run.traders = all``)."""
        table = self.table(rows)
        slopes = self.scaling(rows)
        summary = pd.concat([table, slopes], ignore_index=True) if len(slopes) else table
        if "run.traders" in summary.columns:
            summary["run.traders"] = summary["run.traders"].astype(str)
        lines = self._report_lines(rows, table)
        lines += ["", "## PTSR and PMR against participation n", ""]
        ns = sorted(pd.to_numeric(ok_rows(rows)["run.traders"]).unique()) if len(rows) else []
        body = []
        for policy in dict.fromkeys(ok_rows(rows)["policy"]):
            cells = [policy]
            for m in self.SCALED:
                for n in ns:
                    r = pick(table, m, policy=policy, **{"run.traders": n})
                    cells.append("-" if r is None else fmt(r["mean"]))
                s = slopes[(slopes["policy"] == policy) & (slopes["metric"] == f"{m}_loglog_slope")]
                r = s.iloc[0] if len(s) else None
                cells.append(
                    "-"
                    if r is None
                    else f"{ci_text(r['mean'], r['ci_low'], r['ci_high'])} (n={int(r['n'])})"
                )
            body.append(cells)
        header = ["policy"]
        for m in self.SCALED:
            header += [f"{m} n={int(n)}" for n in ns] + [f"{m} slope"]
        lines += md_table(header, body)
        lines += [
            "",
            "Slope: least-squares fit of log(metric) on log(n) over every run with a positive "
            "value (scipy.stats.linregress; n = those runs: runs without a wave have no PTSR), "
            "with a 95 % interval; PTSR ~ n^slope. The theory "
            "(Chitra's ADL papers) has PTSR ~ b_n / (theta_n n): a negative slope means the "
            "largest survivor shrinks relative to the deficit as participation grows.",
        ]
        lines += self.resolution_lines(rows)
        return summary, "\n".join(lines) + "\n"

    def resolution_lines(self, rows: pd.DataFrame, workers: int = 2) -> list[str]:
        """Can this run tell the rules apart on leverage drift and the externality ratio?

        At the largest participation n (the default size), per policy against the baseline:
        the observed paired difference, the smallest difference these seeds detect (80 %
        power, 95 % level), the seeds the observed difference would need and the wall time
        those seeds would take for that policy and the baseline (the runs' mean seconds,
        ``workers`` processes)."""
        ok = ok_rows(rows)
        if ok.empty or self.baseline is None or "run.traders" not in ok.columns:
            return []
        n_col = pd.to_numeric(ok["run.traders"], errors="coerce")
        top = ok[n_col == n_col.max()]
        base = top[top["policy"] == self.baseline].set_index("seed")
        secs = pd.to_numeric(top.get("seconds", pd.Series(dtype=float)), errors="coerce")
        per_run = float(secs.mean()) if secs.notna().any() else float("nan")
        body = []
        for policy, g in top[top["policy"] != self.baseline].groupby("policy", sort=False):
            g = g.set_index("seed")
            both = g.index.intersection(base.index)
            for m in ("leverage_drift", "externality_ratio"):
                a = pd.to_numeric(g.loc[both, m], errors="coerce").to_numpy(float)
                b = pd.to_numeric(base.loc[both, m], errors="coerce").to_numpy(float)
                need = seeds_needed(a, b)
                mde = detectable_difference(a, b)
                minutes = need * 2 * per_run / workers / 60 if np.isfinite(need) else np.inf
                if len(both) and np.all(a == b):
                    verdict = "coincides"
                elif np.isfinite(need) and need <= len(both):
                    verdict = "differs"
                else:
                    verdict = "no detectable difference"
                body.append(
                    [
                        policy,
                        m,
                        fmt(float(np.nanmean(a - b))) if len(both) else "-",
                        fmt(mde),
                        "-" if not np.isfinite(need) else f"{need:,.0f}",
                        "-" if not np.isfinite(minutes) else f"{minutes:,.1f} min",
                        verdict,
                    ]
                )
        if not body:
            return []
        seeds = len(base)
        return [
            "",
            f"## Resolution at the default size (n = {int(n_col.max())}, {seeds} seeds)",
            "",
            *md_table(
                [
                    "policy",
                    "metric",
                    f"diff vs {self.baseline}",
                    "detectable with these seeds",
                    "seeds needed for the diff",
                    f"time for them ({workers} workers)",
                    "",
                ],
                body,
            ),
            "",
            "Detectable: the smallest paired difference these seeds find with 80 % power at "
            "the 95 % level; seeds needed: for the observed difference (infinite when it is "
            f"zero); time: those seeds for the policy and {self.baseline}, at this run's mean "
            f"{fmt(per_run)} s per run.  'No detectable difference' says the rules differ by "
            "less than the detectable column, if at all, at this size and behaviour.",
        ]
