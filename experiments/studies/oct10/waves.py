"""Every policy on every published wave; per-wave and total tables beside the published figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from experiments.metrics import (
    accounts_touched,
    confidence_interval,
    max_haircut_equity_fraction,
    max_haircut_fraction,
    pmr,
    ptsr,
)
from experiments.studies.oct10.data import (
    COUNTERPARTS,
    HL_AT_PROD,
    PRO_RATA_WEALTH,
    PUBLISHED_POLICIES,
    Oct10Data,
)
from experiments.studies.oct10.population import load_wallet_targets
from experiments.studies.oct10.synth import (
    RatioFit,
    ReplayConfig,
    accounts_per_wave,
    synth_wave,
    wave_sizes,
)
from market.adl import POLICIES, Snapshot, get_policy


# =========================================================================== replay
def replay_policies() -> list[str]:
    """Registry names replayed on every wave (all of them; min_max_ilp on a subsample)."""
    return list(POLICIES)


def _wave_metrics(
    h: np.ndarray, snap: Snapshot, budget: float, deficit: float, max_loss: float
) -> dict[str, float]:
    """What one allocation did to one wave (see :func:`replay` for the definitions)."""
    raised = float(h.sum())
    survivor = float(np.max(snap.capacity - h, initial=0.0))
    theta = min(raised / deficit, 1.0) if deficit > 0 else 0.0
    left = deficit - raised
    theta_pub = min(max(left / deficit, 0.0), 1.0) if deficit > 0 else 0.0
    return {
        "budget": budget,
        "raised": raised,
        "overshoot": raised - budget,
        "residual": max(budget - raised, 0.0),
        "max_pct_equity": max_haircut_equity_fraction(h, snap.equity),
        "max_pct_capacity": max_haircut_fraction(h, snap.capacity),
        "touched": float(accounts_touched(h)),
        "max_haircut": float(np.max(h, initial=0.0)),
        "survivor": survivor,
        "ptsr": ptsr([survivor], [raised]),
        "pmr": pmr([survivor], [max_loss], theta) if theta > 0 else np.nan,
        "ptsr_pubdef": survivor / left if left > 0 else np.nan,
        "pmr_pubdef": survivor / (theta_pub * max_loss) if theta_pub * max_loss > 0 else np.nan,
    }


def _ilp_subsample(snap: Snapshot, budget: float, max_n: int) -> tuple[Snapshot, float]:
    """The ``max_n`` rows of largest capacity and the budget scaled by their capacity share."""
    if snap.n <= max_n:
        return snap, budget
    top = np.argpartition(-snap.capacity, max_n - 1)[:max_n]
    top = top[np.argsort(top)]
    share = float(snap.capacity[top].sum() / snap.capacity.sum())
    return snap.take(top), budget * share


def replay(
    data: Oct10Data,
    seeds: int = 5,
    cfg: ReplayConfig | None = None,
    policies: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every policy on every wave for seeds 1..``seeds``.

    Each policy is called as ``policy(snapshot, budget_needed)`` and executed on the lot grid.
    ``pro_rata_wealth`` is pro_rata's wealth-space vector before lot rounding (the published
    wealth pro-rata is continuous).  ``hyperliquid@prod_budget`` is the Hyperliquid queue asked
    for production's real haircut H instead (its overshoot vs needed is production's by
    construction; it is there for the concentration figures).  ``min_max_ilp`` is exact only
    for small instances: it runs on the ``cfg.ilp_rows`` largest-capacity rows with the
    budget scaled by their capacity share, so its overshoot is against that scaled budget.

    Metrics per (wave, seed, policy), h the dollars taken, c the capacities, e the equity:
    ``raised = sum h``; ``overshoot = raised - B_needed`` (negative: a shortfall);
    ``max_pct_equity = max h/e`` (the published "max %"); ``max_pct_capacity = max h/c``;
    ``touched = #{h > 0}``; ``survivor = upsilon^pi = max (c - h)``; ``ptsr`` and ``pmr`` as
    :func:`experiments.metrics.ptsr` / :func:`~experiments.metrics.pmr` (D^pi = raised,
    Delta^pi = theta * max_loss with theta = min(raised / D, 1)); ``ptsr_pubdef =
    upsilon^pi / (D - raised)`` and ``pmr_pubdef = upsilon^pi / (theta' max_loss)`` with
    ``theta' = clip((D - raised) / D, 0, 1)``: the definitions the published csv uses (NaN
    where nothing is left to socialise).

    Returns:
        ``(runs, draws)``: one row per (wave, seed, policy) with the metrics above, and one
        row per (wave, seed) with the synthetic draw's diagnostics.
    """
    cfg = cfg or ReplayConfig()
    q = data.ratio_quantiles
    fit = RatioFit.from_quantiles(q["median"], q["p10"], q["p90"])
    total = cfg.accounts_total or int(q["n_users"])
    n_acc = accounts_per_wave(data.waves, cfg, total)
    fills = cfg.fills_total or (load_wallet_targets().fills if cfg.population else 0)
    names = policies or replay_policies()
    objs = {name: get_policy(name) for name in names}
    rows: list[dict[str, Any]] = []
    draws: list[dict[str, Any]] = []
    steps, done = seeds * len(data.waves), 0
    for seed in range(1, seeds + 1):
        members = wave_sizes(data.waves, seed, cfg, fills) if cfg.population else None
        for i, wave in data.waves.iterrows():
            if members is None:
                sw = synth_wave(wave, seed, fit, int(n_acc[i]), cfg)
            else:
                size = members[i]
                sw = synth_wave(wave, seed, fit, size.size, cfg, sizes=size)
            snap = sw.snapshot
            b = float(wave["budget_needed_usd"])
            d, dmax = float(wave["deficit_usd"]), float(wave["max_loss_usd"])
            key = {"wave": int(wave["wave"]), "seed": seed}
            draws.append(
                {
                    **key,
                    "n_accounts": snap.n,
                    "rho": sw.rho,
                    "ratio_median": sw.ratio_median,
                    "ratio_p10": sw.ratio_p10,
                    "ratio_p90": sw.ratio_p90,
                    "top_share": sw.top_share,
                    "capacity": float(snap.capacity.sum()),
                }
            )
            for name, pol in objs.items():
                if getattr(pol, "exact_small_only", False):
                    sub, bsub = _ilp_subsample(snap, b, min(cfg.ilp_rows, int(pol.max_n)))
                    alloc = pol(sub, bsub)
                    met = _wave_metrics(alloc.haircut, sub, bsub, d, dmax)
                    rows.append({**key, "policy": name, **met, "subsample": sub.n})
                    continue
                alloc = pol(snap, b)
                rows.append(
                    {
                        **key,
                        "policy": name,
                        **_wave_metrics(alloc.haircut, snap, b, d, dmax),
                        "subsample": 0,
                    }
                )
                if name == "pro_rata":
                    rows.append(
                        {
                            **key,
                            "policy": PRO_RATA_WEALTH,
                            **_wave_metrics(alloc.wealth, snap, b, d, dmax),
                            "subsample": 0,
                        }
                    )
                if name == "hyperliquid":
                    prod = pol(snap, float(wave["budget_prod_usd"]))
                    met = _wave_metrics(prod.haircut, snap, b, d, dmax)
                    rows.append({**key, "policy": HL_AT_PROD, **met, "subsample": 0})
            done += 1
            if progress is not None:
                progress(done, steps)
    return pd.DataFrame(rows), pd.DataFrame(draws)


_SUM_METRICS = ("budget", "raised", "overshoot", "residual", "touched")
_MAX_METRICS = ("max_pct_equity", "max_pct_capacity")
_MEAN_METRICS = ("ptsr", "pmr", "ptsr_pubdef", "pmr_pubdef")
METRICS = (*_SUM_METRICS, *_MAX_METRICS, *_MEAN_METRICS)


def run_totals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, policy) over the waves: sums of dollars and touched, max of the largest
    haircut, mean over waves of PTSR/PMR (waves where they are defined; C3's E)."""
    g = runs.groupby(["seed", "policy"], sort=False)
    out = g[list(_SUM_METRICS)].sum()
    out = out.join(g[list(_MAX_METRICS)].max()).join(g[list(_MEAN_METRICS)].mean())
    return out.reset_index()


def _ci_columns(frame: pd.DataFrame, by: list[str], level: float) -> pd.DataFrame:
    """Mean and t-interval over seeds of every metric, per ``by`` group (synthetic_ columns)."""
    recs = []
    for key, g in frame.groupby(by, sort=False):  # one pass per (wave, policy): a few hundred
        rec = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        for m in METRICS:
            ci = confidence_interval(g[m].to_numpy(dtype=np.float64), level)
            rec[f"synthetic_{m}_mean"] = ci.mean
            rec[f"synthetic_{m}_low"] = ci.low
            rec[f"synthetic_{m}_high"] = ci.high
        recs.append(rec)
    return pd.DataFrame(recs)


def _published_rows(data: Oct10Data) -> pd.DataFrame:
    """Long table of the published per-wave results: one row per (wave, published policy)."""
    pol = data.policies
    recs = []
    for suffix in PUBLISHED_POLICIES:
        recs.append(
            pd.DataFrame(
                {
                    "wave": pol["wave"],
                    "published": suffix,
                    "real_published_budget": pol[f"budget_{suffix}"],
                    "real_published_overshoot": pol[f"overshoot_{suffix}"],
                    "real_published_max_pct": pol[f"max_pct_{suffix}"],
                    "real_published_ptsr": pol[f"ptsr_{suffix}"],
                    "real_published_pmr": pol[f"pmr_{suffix}"],
                }
            )
        )
    return pd.concat(recs, ignore_index=True)


def _published_totals(data: Oct10Data) -> pd.DataFrame:
    """Published totals per policy: sums of budget and overshoot (derived), max of max %
    (derived), mean over defined waves of PTSR / PMR (derived)."""
    p = _published_rows(data)
    g = p.groupby("published", sort=False)
    out = pd.DataFrame(
        {
            "real_published_budget": g["real_published_budget"].sum(),
            "real_published_overshoot": g["real_published_overshoot"].sum(),
            "real_published_max_pct": g["real_published_max_pct"].max(),
            "real_published_ptsr": g["real_published_ptsr"].mean(),
            "real_published_pmr": g["real_published_pmr"].mean(),
        }
    )
    # totals are sums/means of real per-wave figures: label them derived
    out.columns = [c.replace("real_", "derived_") for c in out.columns]
    return out.reset_index()


def wave_table(data: Oct10Data, runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """``waves.csv``: one row per (wave, policy) plus ``total`` rows, labelled columns.

    Columns start with ``real_`` (read from the published files), ``derived_`` (computed from
    real figures only) or ``synthetic_`` (depends on the synthetic per-account draws: mean,
    low and high of a t interval over seeds).  ``published`` names the nearest published
    counterpart of the row's policy (empty when there is none); rows with ``policy`` starting
    ``published:`` hold published benchmarks the game has no rule for.
    """
    w = data.waves
    per = _ci_columns(runs, ["wave", "policy"], level)
    per["published"] = per["policy"].map(COUNTERPARTS).fillna("")
    pub = _published_rows(data)
    per = per.merge(pub, on=["wave", "published"], how="left")
    extra = pub[~pub["published"].isin(set(COUNTERPARTS.values()) - {"prod"})].copy()
    extra["policy"] = "published:" + extra["published"]
    per = pd.concat([per, extra], ignore_index=True)
    base = pd.DataFrame(
        {
            "wave": w["wave"],
            "real_t_start_utc": pd.to_datetime(w["t_start_ms"], unit="ms", utc=True).astype(str),
            "real_deficit_usd": w["deficit_usd"],
            "real_max_loss_usd": w["max_loss_usd"],
            "real_budget_needed_usd": w["budget_needed_usd"],
            "real_budget_prod_usd": w["budget_prod_usd"],
            "real_overshoot_prod_usd": w["overshoot_prod_usd"],
            "real_winners_equity_usd": w["winners_equity_start_usd"],
            "real_winners_pnl_usd": w["winners_pnl_start_usd"],
            "derived_theta_needed": w["budget_needed_usd"] / w["deficit_usd"],
            "derived_equity_over_pnl": w["winners_equity_start_usd"] / w["winners_pnl_start_usd"],
        }
    )
    table = base.merge(per, on="wave", how="right")
    tot = _ci_columns(run_totals(runs), ["policy"], level)
    tot["published"] = tot["policy"].map(COUNTERPARTS).fillna("")
    ptot = _published_totals(data)
    tot = tot.merge(ptot, on="published", how="left")
    extra_t = ptot[~ptot["published"].isin(set(COUNTERPARTS.values()) - {"prod"})].copy()
    extra_t["policy"] = "published:" + extra_t["published"]
    tot = pd.concat([tot, extra_t], ignore_index=True)
    tot["wave"] = "total"
    tot["real_deficit_usd"] = float(w["deficit_usd"].sum())
    tot["real_budget_needed_usd"] = float(w["budget_needed_usd"].sum())
    tot["real_budget_prod_usd"] = float(w["budget_prod_usd"].sum())
    tot["real_overshoot_prod_usd"] = float(w["overshoot_prod_usd"].sum())
    for c in (
        "real_deficit_usd",
        "real_budget_needed_usd",
        "real_budget_prod_usd",
        "real_overshoot_prod_usd",
    ):
        tot = tot.rename(columns={c: c.replace("real_", "derived_total_")})
    table["wave"] = table["wave"].astype(str)
    out = pd.concat([table, tot], ignore_index=True)
    lead = ["wave", "policy", "published"]
    return out[lead + [c for c in out.columns if c not in lead]]
