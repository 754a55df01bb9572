"""Metrics of a game run: solvency, concentration and fairness, moral hazard, LTV attrition.

Pure functions: numpy arrays or pandas frames in, numbers or small frames out; nothing is
read from or written to disk.  Every function states its formula and its source: C3 is
Chitra, *Autodeleveraging: Impossibilities and Optimization* (arXiv 2512.01112v3), OL is
Chitra et al., *Autodeleveraging as Online Learning* (arXiv 2602.15182), and "this project"
marks a definition made here.

Tables may be pandas frames or numpy structured arrays (the exchange's wave, bankruptcy and ADL
logs).  The ADL log's ``haircut`` column is read as ``dollars`` (the name in adl_events.parquet).
Undefined quantities (no wave, nothing taken, nothing covered) are NaN, never an exception;
malformed input raises :class:`market.errors.InputError` before any work.

Fairness metrics divide haircuts by one of two denominators (:data:`FAIRNESS_BASES`) and their
names say which: ``_base``, the eligibility base before the lot and fairness caps (the same
whatever price the ADL rule closes lots at), or ``_capacity``, the wave's cap (priced at the
rule's price).  :func:`confidence_interval` is the project's one interval over runs: it keeps
each metric inside its declared range and reports its n.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from market.errors import InputError, require

TS_COLUMNS = ("step", "phase", "crisis", "fund", "deficit", "backstop_used", "adl_raised")
AGENT_COLUMNS = ("crisis", "step", "uid", "account", "type", "accounts", "equity_at_crisis_start")
EVENT_COLUMNS = ("step", "wave", "market", "account", "dollars", "capacity")
WAVE_COLUMNS = ("step", "wave", "market", "raised", "eligible", "touched")
FAIRNESS_COLUMNS = ("theta", "budget", "max_survivor", "max_shortfall")
FRAC_COLUMNS = ("max_haircut_frac", "max_haircut_equity_frac")

#: The two denominators of the fairness metrics.  ``"base"``: the payer's eligibility base
#: before the lot and fairness caps (``max(upnl, 0)`` under the "pnl" cap, gains + PnL under
#: "gains", equity under "equity", ...), which does not depend on the ADL price rule: C3's
#: haircutable endowment w_i = (PNL_i)_+ under the "pnl" cap.  ``"capacity"``: the wave's cap
#: c_i = min(alpha * base_i, lots_i * lot_value_i), whose lot value is priced at the rule's
#: price (previous mark, bankruptcy price, ...), so it differs between price rules that take
#: the same dollars.  Per denominator: (ADL log column, wave log column of the largest
#: haircut fraction, wave log column of the largest endowment left after the wave).
FAIRNESS_BASES: dict[str, tuple[str, str, str]] = {
    "base": ("base", "max_haircut_base_frac", "max_base_survivor"),
    "capacity": ("capacity", "max_haircut_frac", "max_survivor"),
}

#: How the ratios of the waves of a run are averaged (:func:`ptsr`, :func:`pmr`).
AVERAGES = ("mean", "median", "weighted")
BANKRUPTCY_COLUMNS = ("step", "account", "deficit", "backstop", "adl")


# --------------------------------------------------------------------------- input helpers
def _table(obj: Any, name: str, columns: Iterable[str]) -> pd.DataFrame:
    """A DataFrame from a frame or a structured array, holding ``columns`` (else InputError)."""
    if isinstance(obj, np.ndarray) and obj.dtype.names is not None:
        obj = pd.DataFrame({c: obj[c] for c in obj.dtype.names})
    if not isinstance(obj, pd.DataFrame):
        raise InputError(name, "a pandas DataFrame or numpy structured array", type(obj).__name__)
    if "dollars" not in obj.columns and "haircut" in obj.columns and "dollars" in columns:
        obj = obj.rename(columns={"haircut": "dollars"})
    missing = [c for c in columns if c not in obj.columns]
    require(not missing, name, f"a table with columns {list(columns)}", missing or None)
    return obj


def _vector(x: Any, name: str, *, nonneg: bool = True, nan: bool = False) -> np.ndarray:
    """A finite 1-D float array (non-negative unless ``nonneg=False``; NaN allowed if ``nan``)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(name, "a 1-D array of numbers", type(x).__name__) from None
    require(arr.ndim == 1, name, "a 1-D array", f"{arr.ndim}-D")
    ok = ~np.isinf(arr) if nan else np.isfinite(arr)
    require(bool(ok.all()), name, "finite numbers or NaN" if nan else "finite numbers", arr)
    if nonneg:
        require(bool((arr >= 0).all()), name, "non-negative numbers", arr)
    return arr


def _same_length(a: np.ndarray, b: np.ndarray, name: str) -> None:
    require(a.shape == b.shape, name, f"the same length as the first vector ({a.size})", b.size)


def _fraction(value: float, name: str, *, closed: bool = False) -> float:
    """A number in (0, 1) (or (0, 1] with ``closed``)."""
    ok = isinstance(value, numbers.Real) and value > 0 and (value <= 1 if closed else value < 1)
    require(ok, name, "a number in (0, 1]" if closed else "a number in (0, 1)", value)
    return float(value)


def _sorted_ts(timeseries: Any, extra: Iterable[str] = ()) -> pd.DataFrame:
    ts = _table(timeseries, "timeseries", (*TS_COLUMNS, *extra))
    return ts.sort_values("step", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- solvency
def solvency_totals(timeseries: Any) -> dict[str, float]:
    """Run totals of the waterfall: deficit D, backstop used, ADL raised, residual (bad debt).

    Each is the sum of the per-step column; ``covered = backstop_used + adl_raised``.
    Source: this project ("Solvency").
    """
    ts = _sorted_ts(timeseries, ("residual",))
    out = {k: float(ts[k].sum()) for k in ("deficit", "backstop_used", "adl_raised", "residual")}
    out["covered"] = out["backstop_used"] + out["adl_raised"]
    return out


def crisis_windows(timeseries: Any) -> pd.DataFrame:
    """One row per crisis (indexed by crisis): ``start_step``, ``end_step``, ``fund_before``.

    A crisis is the rows with ``phase == "crisis"`` and one ``crisis`` index; ``fund_before``
    is the backstop capital on the row just before its first step (NaN if there is none).
    Source: this project (the game's calm/crisis schedule).
    """
    ts = _sorted_ts(timeseries)
    pos = pd.Series(np.arange(len(ts)))[(ts["phase"] == "crisis").to_numpy()]
    g = pos.groupby(ts["crisis"].to_numpy()[pos.to_numpy()])
    first, last = g.min().to_numpy(), g.max().to_numpy()
    fund = np.append(ts["fund"].to_numpy(dtype=np.float64), np.nan)  # [-1] -> NaN
    steps = ts["step"].to_numpy()
    return pd.DataFrame(
        {"start_step": steps[first], "end_step": steps[last], "fund_before": fund[first - 1]},
        index=pd.Index(g.min().index, name="crisis"),
    )


def _first_after(ts: pd.DataFrame, ok: dict[Any, np.ndarray], offset: int) -> pd.Series:
    """Per crisis c: ``step - end_step`` of the first row at or after end_pos + offset where
    ``ok[c]`` (a mask over rows) holds; NaN if none.  One pass per crisis (a handful)."""
    steps = ts["step"].to_numpy()
    out = {}
    for c, end in crisis_windows(ts)["end_step"].items():
        start = int(np.searchsorted(steps, end)) + offset
        hit = np.flatnonzero(ok[c][start:])
        out[c] = float(steps[start + hit[0]] - end) if hit.size else np.nan
    return pd.Series(out, dtype=np.float64).rename_axis("crisis")


def backstop_refill_steps(timeseries: Any, level: float = 1.0) -> pd.Series:
    """Per crisis: steps after its last step until ``fund >= level * fund_before``.

    ``fund_before`` is the capital on the step before the crisis began (crisis_windows).
    0 when the fund ends the crisis at that level; NaN when it never gets back within the run.
    Source: this project ("time to refill the fund"); C3's clock tau_solv = inf{t: IF_t >= delta}.
    """
    _fraction(level, "level", closed=True)
    ts = _sorted_ts(timeseries)
    fund = ts["fund"].to_numpy(dtype=np.float64)
    before = crisis_windows(ts)["fund_before"]
    ok = {c: fund >= level * f - 1e-9 for c, f in before.items()}
    return _first_after(ts, ok, 0).rename("refill_steps")


# --------------------------------------------------------------------------- one wave
def accounts_touched(h: Any) -> int:
    """Number of accounts with a positive haircut, ``#{i: h_i > 0}``."""
    return int(np.count_nonzero(_vector(h, "haircut")))


def haircut_fractions(h: Any, c: Any) -> np.ndarray:
    """Per-row haircut fraction ``h_i / c_i`` (0 where ``c_i = 0``), C3's h_i = x_i / w_i.

    Raises:
        InputError: if a row with zero capacity has a positive haircut.
    """
    hv, cv = _vector(h, "haircut"), _vector(c, "capacity")
    _same_length(hv, cv, "capacity")
    require(bool((hv[cv == 0] == 0).all()), "haircut", "0 where capacity is 0", hv[cv == 0])
    return np.divide(hv, cv, out=np.zeros_like(hv), where=cv > 0)


def max_haircut_fraction(h: Any, c: Any) -> float:
    """Largest haircut fraction ``max_i h_i / c_i`` (0 for an empty wave).

    Source: OL's concentration m_t = max_i x_i / (u_i + eps), with eps = 0 here.
    """
    return float(haircut_fractions(h, c).max(initial=0.0))


def max_haircut_equity_fraction(h: Any, e: Any) -> float:
    """Largest haircut as a share of equity, ``max_i h_i / e_i`` (0 for an empty wave).

    Source: the open analysis of 10 Oct 2025 ("max % haircut").

    Raises:
        InputError: if a row with non-positive equity has a positive haircut.
    """
    hv, ev = _vector(h, "haircut"), _vector(e, "equity", nonneg=False)
    _same_length(hv, ev, "equity")
    require(bool((hv[ev <= 0] == 0).all()), "haircut", "0 where equity <= 0", hv[ev <= 0])
    return float(np.divide(hv, ev, out=np.zeros_like(hv), where=ev > 0).max(initial=0.0))


def top_k_share(h: Any, k: int) -> float:
    """Share of the wave's dollars paid by its ``k`` largest payers: ``sum top-k h / sum h``.

    1 when ``k >= n``; NaN when nothing was taken.  Source: this project and the forced
    concentration bound ``B - sum_{j>k} c_(j)``.
    """
    require(isinstance(k, int | np.integer) and k >= 1, "k", "an integer >= 1", k)
    hv = _vector(h, "haircut")
    total = float(hv.sum())
    if total <= 0:
        return np.nan
    if k >= hv.size:
        return 1.0
    return float(np.partition(hv, hv.size - k)[hv.size - k :].sum() / total)


def gini(x: Any, size: int | None = None) -> float:
    """Gini coefficient of non-negative values, with ``size - len(x)`` implicit zeros.

    With values sorted ascending (zeros first) at positions i = 1..n and S = sum x:
    ``G = 2 sum_i i x_(i) / (n S) - (n + 1) / n``, in [0, 1 - 1/n]; 0 for equal values or
    S = 0; NaN for n = 0.  Used on haircut fractions h/c over the eligible rows, zeros
    included.  Source: this project (none of the ADL papers uses a Gini).
    """
    xv = np.sort(_vector(x, "x"))
    m = xv.size
    n = m if size is None else size
    require(isinstance(n, int | np.integer) and n >= m, "size", f"an integer >= len(x) = {m}", n)
    total = float(xv.sum())
    if n == 0:
        return np.nan
    if total <= 0:
        return 0.0
    pos = np.arange(n - m + 1, n + 1, dtype=np.float64)
    return float(max(2.0 * float(pos @ xv) / (n * total) - (n + 1) / n, 0.0))


def lorenz_points(x: Any, size: int | None = None, points: int = 21) -> np.ndarray:
    """Lorenz curve of non-negative values at population shares ``linspace(0, 1, points)``.

    ``size - len(x)`` implicit zeros are the poorest rows (as in
    :func:`experiments.metrics.gini`).  With values sorted ascending at positions i = 1..n and
    S = sum x, the curve passes through (i/n, sum_{j<=i} x_(j) / S) and is interpolated
    linearly between them; it is the diagonal when S = 0 (nothing taken: nobody is singled
    out) and all NaN when n = 0.
    """
    xv = np.sort(np.asarray(x, dtype=np.float64))
    m = xv.size
    n = m if size is None else max(int(size), m)
    grid = np.linspace(0.0, 1.0, points)
    if n == 0:
        return np.full(points, np.nan)
    total = float(xv.sum())
    if total <= 0:
        return grid.copy()
    px = np.concatenate(([0.0], np.arange(n - m, n + 1, dtype=np.float64) / n))
    py = np.concatenate(([0.0, 0.0], np.cumsum(xv) / total))
    return np.clip(np.interp(grid, px, py), 0.0, 1.0)


def _average(ratio_num: np.ndarray, den: np.ndarray, how: str) -> float:
    """Average of ``num / den`` over the rows with ``den > 0`` (NaN if none), see AVERAGES."""
    require(how in AVERAGES, "how", f"one of {', '.join(AVERAGES)}", how)
    ok = den > 0
    if not ok.any():
        return np.nan
    if how == "weighted":
        return float(ratio_num[ok].sum() / den[ok].sum())
    r = ratio_num[ok] / den[ok]
    return float(np.median(r) if how == "median" else np.mean(r))


def ptsr(max_survivor: Any, deficit: Any, how: str = "mean") -> float:
    """Peak-to-socialised-loss ratio, ``PTSR = E[upsilon^pi / D^pi]`` (C3 §3).

    Per wave: upsilon^pi = the largest endowment left after the wave (``max_survivor``: on
    the eligibility base, C3's max_i (w_i - x_i)_+, or on the capacity) and D^pi = theta D,
    the deficit the wave was asked to socialise (the wave log's ``budget``).  Over the waves
    with D^pi > 0 (NaN if none), ``how`` picks the average:

    * ``"mean"``: the plain mean of the ratios, C3's E with every wave equally likely;
    * ``"median"``: their median (robust to a wave with a tiny deficit and a large survivor);
    * ``"weighted"``: the D^pi-weighted mean, ``sum upsilon^pi / sum D^pi``: each wave counts
      by the dollars it socialised.
    """
    s, d = _vector(max_survivor, "max_survivor"), _vector(deficit, "deficit")
    _same_length(s, d, "deficit")
    return _average(s, d, how)


def pmr(max_survivor: Any, max_shortfall: Any, theta: Any = 1.0, how: str = "mean") -> float:
    """Peak-to-max-shortfall ratio, ``PMR = E[upsilon^pi / Delta^pi]`` (C3 §3).

    Per wave: Delta^pi = theta * Delta, with Delta the largest single hole of the step
    (``max_shortfall``) and theta the wave's severity (scalar or per-wave).  Over the waves
    with Delta^pi > 0 (NaN if none), ``how`` is the plain mean, the median, or the
    Delta^pi-weighted mean ``sum upsilon^pi / sum Delta^pi`` (as :func:`ptsr`).
    """
    s, m = _vector(max_survivor, "max_survivor"), _vector(max_shortfall, "max_shortfall")
    _same_length(s, m, "max_shortfall")
    th = np.broadcast_to(np.asarray(theta, dtype=np.float64), s.shape)
    require(bool(((th >= 0) & (th <= 1)).all()), "theta", "numbers in [0, 1]", th)
    return _average(s, th * m, how)


def run_ptsr_pmr(waves: Any, base: str = "base") -> dict[str, float]:
    """PTSR and PMR of a run from the exchange's wave log (one row per market wave).

    On the denominator ``base`` (:data:`FAIRNESS_BASES`: the survivor column is
    ``max_base_survivor`` on ``"base"``, ``max_survivor`` on ``"capacity"``), every average of
    :data:`AVERAGES`: keys ``ptsr_<base>`` (mean), ``ptsr_<base>_median``,
    ``ptsr_<base>_weighted`` and the same for ``pmr``.  D^pi is the wave's ``budget``
    (theta D); see :func:`ptsr` and :func:`pmr`.
    """
    require(base in FAIRNESS_BASES, "base", f"one of {', '.join(FAIRNESS_BASES)}", base)
    surv_col = FAIRNESS_BASES[base][2]
    w = _table(waves, "waves", (*FAIRNESS_COLUMNS, surv_col))
    surv = w[surv_col].to_numpy(dtype=np.float64)
    out: dict[str, float] = {}
    for how in AVERAGES:
        tail = "" if how == "mean" else f"_{how}"
        out[f"ptsr_{base}{tail}"] = ptsr(surv, w["budget"].to_numpy(dtype=np.float64), how)
    for how in AVERAGES:
        tail = "" if how == "mean" else f"_{how}"
        out[f"pmr_{base}{tail}"] = pmr(surv, w["max_shortfall"].to_numpy(), w["theta"], how)
    return out


def inversion_rate(h: Any, c: Any) -> float:
    """Share of account pairs whose post-haircut order inverts their capacity order.

    Over pairs with c_i != c_j: ``#{c_i > c_j and c_i - h_i < c_j - h_j} / #{c_i != c_j}``;
    NaN with no such pair.  Counted in O(n log n) from Kendall's tau-b of (c, c - h):
    discordant = ((n0 - n1 - n2 + n3) - tau_b sqrt((n0 - n1)(n0 - n2))) / 2, with n0 all
    pairs, n1 / n2 pairs tied in c / in c - h and n3 tied in both.  Source: OL's monotonicity
    violations (C3's monotonicity axiom w_i >= w_j => (1 - h_i) w_i >= (1 - h_j) w_j).
    """
    hv, cv = _vector(h, "haircut"), _vector(c, "capacity")
    _same_length(hv, cv, "capacity")
    s = cv - hv

    def tied(*cols: np.ndarray) -> float:
        keys = cols[0] if len(cols) == 1 else np.stack(cols, axis=1)
        counts = np.unique(keys, axis=0 if len(cols) > 1 else None, return_counts=True)[1]
        return float((counts * (counts - 1) // 2).sum())

    n = cv.size
    n0 = n * (n - 1) / 2.0
    n1 = tied(cv) if n else 0.0
    if n0 - n1 <= 0:
        return np.nan
    n2 = tied(s)
    if n0 - n2 <= 0:
        return 0.0
    n3 = tied(cv, s)
    tau = stats.kendalltau(cv, s).statistic
    disc = np.rint(((n0 - n1 - n2 + n3) - tau * np.sqrt((n0 - n1) * (n0 - n2))) / 2.0)
    return float(max(disc, 0.0) / (n0 - n1))


# --------------------------------------------------------------------------- across waves
def wave_rows(events: Any) -> pd.DataFrame:
    """Events summed per (market, wave, account): dollars, capacity, burden = dollars/capacity.

    With a ``base`` column (the eligibility base, :data:`FAIRNESS_BASES`) also ``base`` (its
    largest value in the group) and ``burden_base = dollars / base`` (NaN where base is 0).
    """
    ev = _table(events, "events", EVENT_COLUMNS)
    named = {"step": ("step", "first"), "dollars": ("dollars", "sum")}
    named["capacity"] = ("capacity", "max")
    if "base" in ev.columns:
        named["base"] = ("base", "max")
    agg = ev.groupby(["market", "wave", "account"], sort=True).agg(**named).reset_index()
    dollars = agg["dollars"].to_numpy(dtype=np.float64)
    for den, col in (("capacity", "burden"), ("base", "burden_base")):
        if den in agg.columns:
            d = agg[den].to_numpy(dtype=np.float64)
            agg[col] = np.divide(dollars, d, out=np.full(d.size, np.nan), where=d > 0)
    return agg


def rank_instability(events: Any) -> pd.DataFrame:
    """Per ADL wave: ordering inversions within it and rank stability against the previous wave.

    One row per (market, wave) in the ADL log with ``touched``, ``inversion_rate``
    (:func:`inversion_rate` over the touched rows: untouched eligible rows are not in the log),
    ``prev_wave`` (the previous wave of the same market), ``common`` (accounts in both) and
    ``spearman``: Spearman's rho of normalised burden dollars/capacity over the common
    accounts (Pearson correlation of average ranks; NaN with < 2 accounts or constant
    burden).  Source: OL's adjacent-round rank correlation of normalised burden and
    monotonicity violations.
    """
    agg = wave_rows(events).dropna(subset=["burden"])
    keys = ["market", "wave"]
    out = agg.groupby(keys).size().rename("touched").reset_index()
    out["inversion_rate"] = [
        inversion_rate(g["dollars"].to_numpy(), g["capacity"].to_numpy())
        for _, g in agg.groupby(keys, sort=True)  # one call per wave, vectorised inside
    ]
    out["prev_wave"] = out.groupby("market")["wave"].shift(1)
    prev = agg.merge(out[[*keys, "prev_wave"]], on=keys)
    pair = prev.merge(
        agg[["market", "wave", "account", "burden"]].rename(
            columns={"wave": "prev_wave", "burden": "burden_prev"}
        ),
        on=["market", "prev_wave", "account"],
    )
    gk = pair.groupby(keys)
    rx = gk["burden"].rank(method="average")
    ry = gk["burden_prev"].rank(method="average")
    dx = rx - rx.groupby([pair["market"], pair["wave"]]).transform("mean")
    dy = ry - ry.groupby([pair["market"], pair["wave"]]).transform("mean")
    sums = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy, **pair[keys]})
    sums = sums.groupby(keys).agg(xy=("xy", "sum"), xx=("xx", "sum"), yy=("yy", "sum"))
    sums["common"] = gk.size()
    den = np.sqrt(sums["xx"] * sums["yy"])
    sums["spearman"] = np.where((den > 0) & (sums["common"] >= 2), sums["xy"] / den, np.nan)
    out = out.merge(sums[["common", "spearman"]].reset_index(), on=keys, how="left")
    has_prev = out["prev_wave"].notna()
    out["common"] = np.where(has_prev, out["common"].fillna(0), np.nan)
    return out


def wave_gini(events: Any, waves: Any | None = None, base: str = "capacity") -> pd.Series:
    """Per wave (indexed by wave number): Gini of haircut fractions over rows with capacity > 0.

    The fraction is h / capacity (``base="capacity"``) or h / eligibility base
    (``base="base"``, price-rule independent; :data:`FAIRNESS_BASES`).  Rows that could give
    nothing (capacity 0: a loser under a profits-only cap) are left out: they are not part of
    the distribution of burden, and counting them as zeros would push every rule towards 1.
    The ADL log holds only touched rows; the wave log's ``positive`` (eligible rows with
    capacity > 0) or ``base_positive`` (with base > 0) pads the untouched ones with zeros
    (:func:`gini` with ``size``), whichever matches the denominator.  Without
    ``waves``, or for a wave missing from it, only the touched rows with a positive
    denominator count.  Wave numbers are unique across markets (as the exchange numbers
    them).  Computed for all waves at once by group sums.  Source: this project.

    Raises:
        InputError: for an unknown ``base``, or an ADL log without its column.
    """
    require(base in FAIRNESS_BASES, "base", f"one of {', '.join(FAIRNESS_BASES)}", base)
    den = FAIRNESS_BASES[base][0]
    _table(events, "events", (*EVENT_COLUMNS, den))
    agg = wave_rows(events)
    agg = agg[agg[den].to_numpy(dtype=np.float64) > 0].copy()
    agg["frac"] = agg["burden" if den == "capacity" else "burden_base"].to_numpy()
    n_touched = agg.groupby("wave").size()
    size = n_touched.astype(np.float64)
    if waves is not None:
        count = "positive" if den == "capacity" else "base_positive"
        w = _table(waves, "waves", (*WAVE_COLUMNS, count)).set_index("wave")[count]
        size = np.maximum(w.reindex(size.index).fillna(size), size)
    agg = agg.sort_values(["wave", "frac"], kind="stable")
    zeros = (size - n_touched).reindex(agg["wave"]).to_numpy()
    agg["pos"] = agg.groupby("wave").cumcount().to_numpy() + 1 + zeros
    agg["wx"] = agg["pos"] * agg["frac"]
    g = agg.groupby("wave").agg(wx=("wx", "sum"), s=("frac", "sum"))
    n = size.reindex(g.index).to_numpy()
    s = g["s"].to_numpy()
    val = np.divide(2.0 * g["wx"].to_numpy(), n * s, out=np.zeros_like(s), where=s > 0)
    gin = np.where(s > 0, np.maximum(val - (n + 1) / n, 0.0), 0.0)
    return pd.Series(gin, index=g.index, name="gini")


# --------------------------------------------------------------------------- moral hazard
def crisis_of(steps: np.ndarray, agents: pd.DataFrame) -> np.ndarray:
    """Crisis index for each step: the first crisis boundary at or after it (-1 if none)."""
    ends = agents.groupby("crisis")["step"].max().sort_values()
    idx = np.searchsorted(ends.to_numpy(), steps, side="left")
    crises = np.append(ends.index.to_numpy(), -1)
    return crises[idx]


def externality_ratio(bankruptcies: Any, agents: Any | None = None) -> float:
    """Share of bankrupt accounts' losses paid by others: ``(backstop + adl) / loss``.

    loss = sum of deficits left (the bankruptcy log) plus, when ``agents`` is given, the
    bankrupt traders' own equity at the start of their crisis (``max(e, 0)``, once per
    (crisis, account)); a bankruptcy at step s belongs to the first crisis boundary at or
    after s.  Only single-account traders are matched (a Sybil owner's equity is spread over
    accounts the panel does not list), so their losses count the deficit only.  Without
    ``agents`` the ratio is (backstop + adl) / deficit.  NaN if loss is 0.
    Source: this project ("Moral hazard"; C3 §2 discusses the transfer).
    """
    b = _table(bankruptcies, "bankruptcies", BANKRUPTCY_COLUMNS)
    paid = float(b["backstop"].sum() + b["adl"].sum())
    loss = float(b["deficit"].sum())
    if agents is not None and len(b):
        a = _table(agents, "agents", AGENT_COLUMNS)
        keys = pd.DataFrame(
            {"crisis": crisis_of(b["step"].to_numpy(), a), "account": b["account"].to_numpy()}
        ).drop_duplicates()
        single = a.loc[a["accounts"] == 1, ["crisis", "account", "equity_at_crisis_start"]]
        own = keys.merge(single.drop_duplicates(["crisis", "account"]), on=["crisis", "account"])
        loss += float(np.maximum(own["equity_at_crisis_start"].to_numpy(), 0.0).sum())
    return paid / loss if loss > 0 else np.nan


def leverage_by_crisis(agents: Any, agent_type: str = "whale") -> pd.Series:
    """Mean ``target_leverage`` of the type's traders at each crisis boundary (NaN if none).

    The panel row of crisis k is written before the traders adapt to crisis k, so it holds
    what they learned from crises 0..k-1.  Source: this project ("leverage drift").
    """
    ok = isinstance(agent_type, str) and agent_type != ""
    require(ok, "agent_type", "a type name such as 'whale'", agent_type)
    a = _table(agents, "agents", (*AGENT_COLUMNS, "target_leverage"))
    crises = np.sort(a["crisis"].unique())
    sel = a[a["type"] == agent_type]
    return sel.groupby("crisis")["target_leverage"].mean().reindex(crises).rename(agent_type)


def leverage_drift(agents: Any, agent_type: str = "whale") -> float:
    """Change in the type's mean target leverage from its first to its last crisis boundary.

    ``mean_lev[last] - mean_lev[first]`` over the boundaries where the type has traders
    (:func:`leverage_by_crisis`); NaN if it has none.  Source: this project.
    """
    series = leverage_by_crisis(agents, agent_type).dropna()
    return float(series.iloc[-1] - series.iloc[0]) if len(series) else np.nan


# --------------------------------------------------------------------------- LTV attrition
def retention_curve(agents: Any) -> pd.DataFrame:
    """Share of each type's first-crisis traders still active (not churned) after each crisis.

    Index: crisis; columns: each type in the first crisis' panel and ``"all"``.  A cohort
    trader counts as active after crisis k if the crisis-k panel lists its ``uid`` with
    ``churned`` false.  Source: this project ("retention").
    """
    a = _table(agents, "agents", (*AGENT_COLUMNS, "churned"))
    if not len(a):
        return pd.DataFrame(columns=["all"], dtype=np.float64)
    first = a["crisis"].min()
    cohort = a.loc[a["crisis"] == first, ["uid", "type"]].drop_duplicates("uid")
    size = cohort.groupby("type").size()
    rows = a.loc[~a["churned"].astype(bool), ["crisis", "uid"]].merge(cohort, on="uid")
    crises = np.sort(a["crisis"].unique())
    kept = rows.groupby(["crisis", "type"]).size().unstack(fill_value=0)
    kept = kept.reindex(index=crises, columns=size.index, fill_value=0)
    out = kept / size
    out["all"] = kept.sum(axis=1) / float(size.sum())
    out.index.name = "crisis"
    out.columns.name = None
    return out.astype(np.float64)


def fee_revenue_per_step(timeseries: Any) -> pd.Series:
    """Fee revenue earned in each step: the first difference of cumulative ``fee_revenue``.

    The first row is the baseline (0): fees booked before it, such as the opening trades
    recorded at step 0, belong to no step.  Source: this project.

    Raises:
        InputError: if the cumulative column decreases.
    """
    ts = _sorted_ts(timeseries, ("fee_revenue",))
    rev = ts["fee_revenue"].to_numpy(dtype=np.float64)
    d = np.diff(rev, prepend=rev[:1])
    tol = 1e-9 * max(float(np.abs(rev).max(initial=0.0)), 1.0)
    require(bool((d >= -tol).all()), "fee_revenue", "a non-decreasing cumulative column", d.min())
    return pd.Series(d, index=ts["step"].to_numpy(), name="fees").rename_axis("step")


def _calm_rate(ts: pd.DataFrame, fees: np.ndarray) -> pd.Series:
    """Mean per-step fees of each crisis' preceding calm period (baseline row excluded)."""
    calm = (ts["phase"] == "calm").to_numpy() & (np.arange(len(ts)) > 0)
    return pd.Series(fees[calm]).groupby(ts["crisis"].to_numpy()[calm]).mean()


def fee_revenue_per_period(timeseries: Any) -> pd.DataFrame:
    """Fees earned in each calm or crisis period, from the cumulative ``fee_revenue`` column.

    A period is a maximal run of rows with the same (phase, crisis).  Columns: phase,
    crisis, start_step, end_step, steps, fees; the periods' fees sum to the last row's
    cumulative value minus the first's (:func:`fee_revenue_per_step`).  Source: this project.
    """
    ts = _sorted_ts(timeseries, ("fee_revenue",))
    fees = fee_revenue_per_step(ts).to_numpy()
    change = (ts["phase"] != ts["phase"].shift()) | (ts["crisis"] != ts["crisis"].shift())
    period = np.cumsum(change.to_numpy()) - 1
    frame = ts[["phase", "crisis", "step"]].assign(period=period, fees=fees)
    named = {"phase": ("phase", "first"), "crisis": ("crisis", "first")}
    named |= {"start_step": ("step", "min"), "end_step": ("step", "max")}
    named |= {"steps": ("step", "size"), "fees": ("fees", "sum")}
    return frame.groupby("period").agg(**named)


def ltv(fees_per_period: Any, discount: float) -> float:
    """Discounted sum ``LTV = sum_t discount^t f_t`` (t = 0, 1, ...).

    Source: C3's LTV_T = sum_t beta^t sum_i e_{t,i} r_{t,i}, here on aggregate fee flows.
    """
    f = _vector(fees_per_period, "fees_per_period", nonneg=False)
    d = _fraction(discount, "discount", closed=True)
    return float(f @ np.power(d, np.arange(f.size, dtype=np.float64)))


def ltv_lost_per_deficit_dollar(
    agents: Any, timeseries: Any, discount: float = 0.99, horizon: int | None = None
) -> float:
    """Discounted future fees of churned traders per dollar of deficit covered.

    Estimate (per-trader fees are not recorded): F_k = mean per-step fee revenue over the calm
    period before crisis k; a trader's fee rate is F_k times its share of positive equity at
    the crisis start among the crisis-k panel.  Each trader that churns at crisis k loses the
    annuity ``rate * sum_{t<H} discount^t`` (H = ``horizon`` steps, or 1/(1 - discount) for an
    unbounded horizon), valued at the boundary where it leaves.  Every churn counts (after a
    haircut or a liquidation); attributing it to the ADL rule needs a policy comparison.
    Ratio = sum of the annuities / (backstop_used + adl_raised over the run); NaN if nothing
    was covered.  Source: C3's RevLoss = H r w p (TEX2 App.), re-estimated here.
    """
    d = _fraction(discount, "discount", closed=True)
    ok_h = horizon is None or (isinstance(horizon, int | np.integer) and horizon >= 1)
    require(ok_h, "horizon", "None or an integer >= 1 (steps)", horizon)
    require(horizon is not None or d < 1, "discount", "< 1 when horizon is None", discount)
    if horizon is None:
        annuity = 1.0 / (1.0 - d)
    else:
        annuity = float(horizon) if d == 1 else (1.0 - d**horizon) / (1.0 - d)
    a = _table(agents, "agents", (*AGENT_COLUMNS, "churned"))
    ts = _sorted_ts(timeseries, ("fee_revenue",))
    covered = float(ts["backstop_used"].sum() + ts["adl_raised"].sum())
    if covered <= 0:
        return np.nan
    rate = _calm_rate(ts, fee_revenue_per_step(ts).to_numpy())
    e = np.maximum(a["equity_at_crisis_start"].to_numpy(dtype=np.float64), 0.0)
    tot = a.assign(e=e).groupby("crisis")["e"].transform("sum").to_numpy()
    share = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)
    lost = share * a["crisis"].map(rate).fillna(0.0).to_numpy() * a["churned"].to_numpy(bool)
    return float(lost.sum() * annuity / covered)


def revenue_recovery_steps(timeseries: Any, level: float = 0.95, window: int = 5) -> pd.Series:
    """Per crisis: steps after it until rolling per-step fee revenue regains its calm average.

    pre_k = mean per-step fees over the calm period before crisis k (the baseline row
    excluded); recovery is the first step s after the crisis' last step where the mean of
    per-step fees over the last ``window`` steps after the crisis (fewer at first) is
    ``>= level * pre_k``; the result is s - end_step (NaN if never within the run).
    Source: C3's clock tau_rev = inf{t: E[LTV_t] >= (1 - eps) LTV_pre}, on fee flow.
    """
    _fraction(level, "level", closed=True)
    ok_w = isinstance(window, int | np.integer) and window >= 1
    require(ok_w, "window", "an integer >= 1", window)
    ts = _sorted_ts(timeseries, ("fee_revenue",))
    fees = fee_revenue_per_step(ts).to_numpy()
    pre = _calm_rate(ts, fees)
    steps = ts["step"].to_numpy()
    ok = {}
    for c, end in crisis_windows(ts)["end_step"].items():  # a handful of crises
        start = int(np.searchsorted(steps, end)) + 1
        roll = pd.Series(fees[start:]).rolling(window, min_periods=1).mean().to_numpy()
        ok[c] = np.zeros(len(ts), dtype=bool)
        ok[c][start:] = roll >= level * pre.get(c, np.nan) - 1e-12
    return _first_after(ts, ok, 1).rename("recovery_steps")


# --------------------------------------------------------------------------- statistics
#: The whole real line: the range of a metric with no declared bounds.
UNBOUNDED = (-np.inf, np.inf)

#: Below this many seeds an interval is reported but said to be not yet informative: with
#: n - 1 degrees of freedom the t quantile is 12.7 at n = 2, 4.3 at n = 3, 3.2 at n = 4.
MIN_INFORMATIVE_N = 5


class Interval(NamedTuple):
    """A mean with the low and high ends of its confidence interval and the values it used."""

    mean: float
    low: float
    high: float
    n: int


class PairedDifference(NamedTuple):
    """Mean of paired differences a - b, its interval, the pair count and a p-value."""

    mean: float
    low: float
    high: float
    n: int
    p_value: float


def _bounds(bounds: Any) -> tuple[float, float]:
    ok = (
        isinstance(bounds, tuple | list)
        and len(bounds) == 2
        and all(isinstance(b, numbers.Real) and not np.isnan(b) for b in bounds)
        and bounds[0] < bounds[1]
    )
    require(ok, "bounds", "a pair (low, high) with low < high (+-inf for an open side)", bounds)
    return float(bounds[0]), float(bounds[1])


def interval_method(bounds: Any = UNBOUNDED) -> str:
    """The name of the interval :func:`confidence_interval` draws on ``bounds``.

    ``"t"`` (unbounded), ``"log-t"`` (one finite end) or ``"logit-t"`` (both ends finite).
    """
    lo, hi = _bounds(bounds)
    finite = int(np.isfinite(lo)) + int(np.isfinite(hi))
    return ("t", "log-t", "logit-t")[finite]


def _in_range(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``v`` clipped into [lo, hi] when outside by float noise only (else InputError)."""
    ends = [abs(b) for b in (lo, hi) if np.isfinite(b)]
    scale = max(1.0, *ends, float(np.abs(v).max(initial=0.0)))
    tol = 1e-9 * scale
    bad = (v < lo - tol) | (v > hi + tol)
    require(not bad.any(), "values", f"numbers in the metric's range [{lo:g}, {hi:g}]", v[bad])
    return np.clip(v, lo, hi)


def _transform(m: float, lo: float, hi: float) -> tuple[Any, Any, float]:
    """(g, g^-1, g'(m)) of the scale the interval is drawn on for a mean ``m`` in (lo, hi)."""
    if np.isfinite(lo) and np.isfinite(hi):
        r = hi - lo

        def g(x: Any) -> Any:
            u = (np.asarray(x, dtype=np.float64) - lo) / r
            return np.log(u) - np.log1p(-u)

        def inv(y: Any) -> Any:
            return lo + r * (0.5 * (1.0 + np.tanh(0.5 * np.asarray(y, dtype=np.float64))))

        u = (m - lo) / r
        return g, inv, 1.0 / (r * u * (1.0 - u))
    if np.isfinite(lo):
        return (lambda x: np.log(np.asarray(x) - lo)), (lambda y: lo + np.exp(y)), 1.0 / (m - lo)
    if np.isfinite(hi):
        return (lambda x: -np.log(hi - np.asarray(x))), (lambda y: hi - np.exp(-y)), 1 / (hi - m)
    return (lambda x: np.asarray(x)), (lambda y: np.asarray(y)), 1.0


def _mean_interval(
    v: np.ndarray, level: float, lo: float, hi: float, null: float | None = None
) -> tuple[Interval, float]:
    """Interval of the mean of ``v`` (finite, in [lo, hi]) and the p-value of ``mean = null``."""
    n = int(v.size)
    if n == 0:
        return Interval(np.nan, np.nan, np.nan, 0), np.nan
    m = float(v.mean())
    if n == 1:
        return Interval(m, np.nan, np.nan, 1), np.nan
    sd = float(v.std(ddof=1))
    if sd == 0.0 or not lo < m < hi:  # every value equal (only float noise puts m on an end)
        p = np.nan if null is None else (1.0 if m == null else 0.0)
        return Interval(m, m, m, n), p
    se = sd / np.sqrt(n)
    tq = float(stats.t.ppf(0.5 + level / 2, n - 1))
    g, inv, slope = _transform(m, lo, hi)
    gm, half = float(g(m)), tq * se * slope  # delta method: se of g(mean) = g'(m) se
    low, high = float(inv(gm - half)), float(inv(gm + half))
    low, high = min(max(low, lo), m), max(min(high, hi), m)  # float guard at the ends
    p = np.nan
    if null is not None:
        stat = (gm - float(g(null))) / (se * slope) if lo < null < hi else np.inf
        p = float(2.0 * stats.t.sf(abs(stat), n - 1))
    return Interval(m, low, high, n), p


def confidence_interval(values: Any, level: float = 0.95, bounds: Any = UNBOUNDED) -> Interval:
    """Mean over runs and a ``level`` interval that stays inside the metric's ``bounds``.

    NaN values (runs where the metric is undefined) are dropped; ``n`` counts the values
    used.  With n = 0 the mean and ends are NaN, with n = 1 the ends are; with zero spread
    the interval is the mean itself.  Otherwise, with m the mean, s the standard deviation,
    ``se = s / sqrt(n)`` and ``t = t_{(1+level)/2, n-1}``, a Student-t interval is drawn on
    a scale g that maps the metric's range onto the real line and mapped back (the delta
    method: the standard error of g(m) is g'(m) se):

    * unbounded (``bounds = (-inf, inf)``): g(x) = x, ``m +- t se``;
    * one finite end: g(x) = log(x - lo) (or -log(hi - x)), ``lo + (m - lo) exp(+-t se /
      (m - lo))``: a positive metric never gets a negative end;
    * both ends finite: g = logit((x - lo) / (hi - lo)), so an interval over [0, 1] data
      stays in [0, 1].

    Values outside ``bounds`` by more than float noise raise (a wrong declaration or a
    broken metric, not something to clip away).  Source: standard t interval (scipy.stats.t)
    on a log / logit scale; see :func:`interval_method` for the name of each.

    Raises:
        InputError: for a level outside (0, 1), bad bounds, or non-finite or out-of-range
            values.
    """
    _fraction(level, "level")
    lo, hi = _bounds(bounds)
    v = _vector(values, "values", nonneg=False, nan=True)
    v = _in_range(v[~np.isnan(v)], lo, hi)
    return _mean_interval(v, level, lo, hi)[0]


def difference_bounds(bounds: Any = UNBOUNDED) -> tuple[float, float]:
    """The range of a - b for a and b in ``bounds``: ``(-(hi - lo), hi - lo)``."""
    lo, hi = _bounds(bounds)
    return -(hi - lo), hi - lo


def prediction_interval(
    values: Any, m: int, level: float = 0.95, bounds: Any = UNBOUNDED
) -> tuple[float, float]:
    """A ``level`` prediction interval for the mean of ``m`` new runs, from these runs'
    ``values``: ``mean +- t s sqrt(1/n + 1/m)`` (Student t with n - 1 degrees of freedom; NaN
    values dropped), clipped to the metric's ``bounds``.  Where a re-run's mean should land
    (wider than :func:`confidence_interval`, which bounds the mean itself).  (NaN, NaN) with
    fewer than two values.  Source: the standard prediction interval for a future sample
    mean (normal data, scipy.stats.t).
    """
    _fraction(level, "level")
    lo, hi = _bounds(bounds)
    require(isinstance(m, int) and m >= 1, "m", "an integer >= 1", m)
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1)
    half *= math.sqrt(1 / v.size + 1 / m)
    return max(float(v.mean()) - half, lo), min(float(v.mean()) + half, hi)


def paired_difference(
    a: Any, b: Any, level: float = 0.95, bounds: Any = UNBOUNDED
) -> PairedDifference:
    """Paired comparison over seeds: d_i = a_i - b_i, its mean, interval and p-value.

    Pairs where either side is NaN are dropped.  The interval is :func:`confidence_interval`
    of d on :func:`difference_bounds` (a metric in [0, 1] has differences in [-1, 1]).  p
    is the two-sided test of mean(d) = 0 on the same scale (the t-test when unbounded), so
    the interval excludes 0 exactly when p < 1 - level; 1 if every d is 0, 0 if every d is
    the same non-zero number.  Source: standard paired t statistics (scipy.stats), for
    common-random-number seeds.
    """
    _fraction(level, "level")
    av, bv = _vector(a, "a", nonneg=False, nan=True), _vector(b, "b", nonneg=False, nan=True)
    _same_length(av, bv, "b")
    lo, hi = _bounds(bounds)
    keep = ~(np.isnan(av) | np.isnan(bv))
    dlo, dhi = difference_bounds((lo, hi))
    d = _in_range(av[keep], lo, hi) - _in_range(bv[keep], lo, hi)
    ci, p = _mean_interval(d, level, dlo, dhi, null=0.0)
    return PairedDifference(ci.mean, ci.low, ci.high, ci.n, p)


def seeds_needed(
    a: Any, b: Any, delta: float | None = None, level: float = 0.95, power: float = 0.8
) -> float:
    """Paired seeds needed to detect a mean difference ``delta`` with the given power.

    ``n = ((z_{1-alpha/2} + z_power) * sd(d) / delta)^2`` rounded up (normal approximation to
    the paired t-test), with ``d = a - b`` over the pairs defined on both sides and ``delta``
    the observed mean difference when not given.  NaN with fewer than 2 pairs, ``inf`` when
    ``delta`` is 0 and the differences vary, 2 when they do not vary at all.  Source: the
    standard sample-size formula for a paired comparison.
    """
    _fraction(level, "level")
    _fraction(power, "power")
    av, bv = _vector(a, "a", nonneg=False, nan=True), _vector(b, "b", nonneg=False, nan=True)
    _same_length(av, bv, "b")
    keep = ~(np.isnan(av) | np.isnan(bv))
    d = av[keep] - bv[keep]
    if d.size < 2:
        return float("nan")
    sd = float(np.std(d, ddof=1))
    eff = abs(float(d.mean()) if delta is None else float(delta))
    if sd == 0:
        return 2.0
    if eff == 0:
        return float("inf")
    z = float(stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power))
    return float(max(2.0, np.ceil((z * sd / eff) ** 2)))


def detectable_difference(a: Any, b: Any, level: float = 0.95, power: float = 0.8) -> float:
    """The smallest mean paired difference the pairs ``(a, b)`` would detect with the given
    power: ``(z_{1-alpha/2} + z_power) * sd(a - b) / sqrt(n)`` (the inverse of
    :func:`seeds_needed`).  NaN with fewer than 2 pairs."""
    _fraction(level, "level")
    _fraction(power, "power")
    av, bv = _vector(a, "a", nonneg=False, nan=True), _vector(b, "b", nonneg=False, nan=True)
    _same_length(av, bv, "b")
    keep = ~(np.isnan(av) | np.isnan(bv))
    d = av[keep] - bv[keep]
    if d.size < 2:
        return float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2) + stats.norm.ppf(power))
    return z * float(np.std(d, ddof=1)) / float(np.sqrt(d.size))


# --------------------------------------------------------------------------- headline
#: Headline keys left NaN by a run without any ADL wave (they describe how waves shared the
#: burden; a run without one has no such thing).  Every other key counts such a run as it is
#: (0 dollars raised, 0 accounts touched, ...).
WAVE_KEYS = (
    "max_haircut_base_frac",
    "max_haircut_capacity_frac",
    "max_haircut_equity_frac",
    "gini_haircut_base",
    "gini_haircut_capacity",
    "ptsr_base",
    "ptsr_base_median",
    "ptsr_base_weighted",
    "ptsr_capacity",
    "pmr_base",
    "pmr_base_median",
    "pmr_base_weighted",
    "pmr_capacity",
    "inversion_rate",
    "rank_correlation",
)


def headline(
    timeseries: Any, agents: Any, events: Any, waves: Any, bankruptcies: Any
) -> dict[str, float]:
    """The run's headline figures as plain floats (NaN where undefined).

    Fairness keys name their denominator (:data:`FAIRNESS_BASES`): ``_base`` on the
    eligibility base (price-rule independent: compare rules with these), ``_capacity`` on the
    wave's capacity (priced at the rule's price), ``_equity`` on equity.

    overshoot: sum of the wave log's overshoot (the two-pass value will replace it);
    adl_waves: rows of the wave log (market waves); max_haircut_<base>_frac: largest haircut
    fraction over the wave log; gini_haircut_<base>: mean over waves with a haircut of
    :func:`wave_gini` (rows with positive capacity only); ptsr_base, pmr_base with their
    ``_median`` and ``_weighted`` variants, ptsr_capacity and pmr_capacity
    (:func:`run_ptsr_pmr`); externality_ratio (with the agents panel); leverage_drift
    (whales); retention (share of the first crisis' traders still active after the last);
    ltv_lost_per_deficit_dollar (defaults); plus the solvency totals, accounts_touched, the
    mean inversion_rate and rank_correlation (:func:`rank_instability`), and the mean refill
    / recovery steps over crises that recovered.  A run without any wave has every key of
    :data:`WAVE_KEYS` NaN.  Source: this project.
    """
    need = (*WAVE_COLUMNS, *FAIRNESS_COLUMNS, *FRAC_COLUMNS, "overshoot", "positive")
    w = _table(waves, "waves", (*need, "max_base_survivor", "max_haircut_base_frac"))
    ev = _table(events, "events", (*EVENT_COLUMNS, "base"))
    out: dict[str, float] = dict(solvency_totals(timeseries))
    out["overshoot"] = float(w["overshoot"].sum())
    out["adl_waves"] = float(len(w))
    cols = {
        "max_haircut_base_frac": "max_haircut_base_frac",
        "max_haircut_capacity_frac": "max_haircut_frac",
        "max_haircut_equity_frac": "max_haircut_equity_frac",
    }
    for key, col in cols.items():
        out[key] = float(w[col].to_numpy(dtype=np.float64).max(initial=0.0))
    out["accounts_touched"] = float(ev.loc[ev["dollars"] > 0, "account"].nunique())
    for base in ("base", "capacity"):
        out[f"gini_haircut_{base}"] = float(wave_gini(ev, w, base).mean())
    out.update(run_ptsr_pmr(w, "base"))
    cap = run_ptsr_pmr(w, "capacity")
    out["ptsr_capacity"], out["pmr_capacity"] = cap["ptsr_capacity"], cap["pmr_capacity"]
    out["externality_ratio"] = externality_ratio(bankruptcies, agents)
    out["leverage_drift"] = leverage_drift(agents, "whale")
    ret = retention_curve(agents)
    out["retention"] = float(ret["all"].iloc[-1]) if len(ret) else np.nan
    out["ltv_lost_per_deficit_dollar"] = ltv_lost_per_deficit_dollar(agents, timeseries)
    ri = rank_instability(ev)
    out["inversion_rate"] = float(ri["inversion_rate"].mean())  # NaN-skipping means
    out["rank_correlation"] = float(ri["spearman"].mean())
    out["refill_steps"] = float(backstop_refill_steps(timeseries).mean())
    out["recovery_steps"] = float(revenue_recovery_steps(timeseries).mean())
    if not len(w):
        out.update(dict.fromkeys(WAVE_KEYS, np.nan))
    return {k: float(v) for k, v in out.items()}
