"""Min-max ADL rules: leverage draining and the exact integer min-max burden.

* :class:`MinimaxLeverage` ("leverage draining", Campbell-Hey-Moallemi-Nutz 2603.15963):
  take from the most levered accounts first, lowering their post-ADL account leverage to a
  common level, so the largest leverage left is as small as the budget allows.
* :class:`MinMaxILP` (Chitra et al. 2602.15182 benchmark): the integer allocation on the lot
  grid that minimises the largest haircut fraction ``h_i / c_i``, solved exactly with
  ``scipy.optimize.milp`` (small snapshots only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from market.adl.base import ADLPolicy, Snapshot
from market.adl.ordering import order_prefix, rank_rows
from market.adl.prorata import pro_rata_fill
from market.errors import require

__all__ = ["LEVERAGE_FORMS", "MinimaxLeverage", "post_leverage"]

#: Most evaluations of the drained amount in the level search (safeguarded Newton steps,
#: with bisection when a step leaves the bracket); float resolution comes far sooner.
_LEVEL_STEPS = 200
#: Rows of the evenly spaced sample whose level starts the search on large snapshots.
_SAMPLE_N = 4096

#: The two readings of post-ADL leverage :class:`MinimaxLeverage` drains (``form``):
#: ``"fixed_equity"`` (the paper's, the default) divides by the pre-ADL equity,
#: ``"equity_reduced"`` by the equity left after the haircut.
LEVERAGE_FORMS = ("fixed_equity", "equity_reduced")


def _tol(budget: float) -> float:
    return 1e-9 * max(1.0, abs(budget))


def _check_form(form: object) -> str:
    require(
        isinstance(form, str) and form in LEVERAGE_FORMS,
        "minimax_leverage.form",
        f"one of {', '.join(LEVERAGE_FORMS)}",
        form,
    )
    return str(form)


def _shed_per_dollar(snap: Snapshot) -> np.ndarray:
    """``k_i = lot_size * mark / lot_value_i``: notional closed per dollar raised (inf if 0)."""
    v = snap.lot_value
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(v > 0, snap.lot_size * snap.mark / np.where(v > 0, v, 1.0), np.inf)


def _pre_leverage(snap: Snapshot) -> np.ndarray:
    """The account's leverage over all its markets (the snapshot's ``leverage``), ``>= 0``.

    ``inf`` where the equity is ``<= 0`` or the leverage is not a finite number.
    """
    lev = np.asarray(snap.leverage, dtype=np.float64)
    ok = (snap.equity > 0) & np.isfinite(lev)
    return np.where(ok, np.maximum(np.where(ok, lev, 0.0), 0.0), np.inf)


def post_leverage(snap: Snapshot, haircut: np.ndarray, form: str = "fixed_equity") -> np.ndarray:
    """Account leverage per row after taking ``haircut`` dollars by closing lots at ``lot_value``.

    With ``A_i = leverage_i * E_i`` the account's notional over all its markets, each dollar
    taken closes ``1 / lot_value_i`` lots (fractional lots, wealth space), shedding
    ``k_i = lot_size * mark / lot_value_i`` of notional:

    * ``form="fixed_equity"`` (the paper's): ``(A_i - k_i h_i) / E_i``;
    * ``form="equity_reduced"``: ``(A_i - k_i h_i) / (E_i - h_i)`` (each dollar also costs a
      dollar of equity).

    The notional left is floored at 0; rows left with equity ``<= 0`` (or starting there)
    report ``inf``.
    """
    form = _check_form(form)
    h = np.asarray(haircut, dtype=np.float64)
    require(h.shape == snap.capacity.shape, "haircut", f"shape {snap.capacity.shape}", h.shape)
    lam = _pre_leverage(snap)
    e = snap.equity
    live = np.isfinite(lam)
    k = _shed_per_dollar(snap)
    with np.errstate(invalid="ignore", over="ignore"):
        shed = np.where(np.isfinite(k), k * h, 0.0)
        left = np.maximum(np.where(live, lam * e, 0.0) - shed, 0.0)
    eq = e if form == "fixed_equity" else e - h
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(live & (eq > 0), left / np.where(eq > 0, eq, 1.0), np.inf)


def _fixed_equity_sum(lam: np.ndarray, w: np.ndarray, u: np.ndarray, eta: float) -> float:
    """``sum_i clip((lam_i - eta) w_i, 0, u_i)``: what draining to ``eta`` raises."""
    return float(np.clip((lam - eta) * w, 0.0, u).sum())


def _fixed_equity_bracket(
    lam: np.ndarray, w: np.ndarray, u: np.ndarray, rest: float
) -> tuple[float, float]:
    """A bracket ``S(lo) >= rest > S(hi)`` around the level, narrow on large snapshots.

    ``[0, max lam]`` on small ones.  On large ones, the level of an evenly spaced sample of the
    rows (raising the same share of ``sum(u)``) is widened by 1 % on each side, and four
    times more up to four times per side until it brackets the level (a side that still
    does not falls back to ``0`` or ``max lam``), so that the search starts with only the
    rows whose breakpoints fall near the level, for a few O(n) sums.
    """
    lo, hi = 0.0, float(lam.max())
    if lam.size <= 4 * _SAMPLE_N:
        return lo, hi
    pick = slice(0, None, lam.size // _SAMPLE_N)
    us = u[pick]
    want = rest * float(us.sum()) / float(u.sum())
    if not 0.0 < want < float(us.sum()):
        return lo, hi
    guess = _fixed_equity_fill(lam[pick], w[pick], us, want)[1]
    step = max(0.01 * guess, 1e-9 * hi)
    a = b = None
    for _ in range(4):  # a few widenings; then the side falls back to its end
        x = guess - step
        if x <= lo or _fixed_equity_sum(lam, w, u, x) >= rest:
            a = max(x, lo)
            break
        step *= 4.0
    step = max(0.01 * guess, 1e-9 * hi)
    for _ in range(4):
        x = guess + step
        if x >= hi or _fixed_equity_sum(lam, w, u, x) < rest:
            b = min(x, hi)
            break
        step *= 4.0
    return (lo if a is None else a), (hi if b is None else b)


def _fixed_equity_fill(
    lam: np.ndarray, w: np.ndarray, u: np.ndarray, rest: float
) -> tuple[np.ndarray, float]:
    """``h_i = clip((lam_i - eta) w_i, 0, u_i)`` with ``sum(h) = rest``: the haircuts and eta.

    Needs ``lam, w, u > 0``, ``u_i <= lam_i w_i`` and ``0 < rest < sum(u)``.  The sum
    ``S(eta)`` is piecewise linear and falls with ``eta``; its breakpoints are each row's
    ``lam_i`` (above it the row gives nothing) and ``lam_i - u_i / w_i`` (below it, all of
    ``u_i``).  A bracket ``S(lo) >= rest > S(hi)`` (:func:`_fixed_equity_bracket`) is halved
    over the breakpoints inside it (the median one, by an O(m) partition), and rows whose share
    is settled on the whole bracket (nothing, all of ``u``, or linear in ``eta``) leave the
    search as sums, so the work is O(n).  When no breakpoint is left inside, every row is
    linear on ``[lo, hi]``: the haircuts at ``lo`` and ``hi`` are computed directly and
    interpolated so that the sum is exactly ``rest``.
    """
    top = lam
    bot = np.maximum(lam - u / w, 0.0)
    lo, hi = _fixed_equity_bracket(lam, w, u, rest)
    # rows settled on the first bracket, without gathering: nothing, all of u, or linear
    zero = top <= lo
    capped = bot >= hi
    linear = (bot <= lo) & (top >= hi) & ~capped & ~zero
    fixed = float(u.sum(where=capped))  # rows giving all of u on the whole bracket
    lin_w = float(w.sum(where=linear))  # rows linear on it give lin_lw - eta * lin_w
    lin_lw = float((lam * w).sum(where=linear))
    idx = np.flatnonzero(~(zero | capped | linear))
    while idx.size:
        t, b = top[idx], bot[idx]
        inside = np.concatenate([t[(t > lo) & (t < hi)], b[(b > lo) & (b < hi)]])
        mid = inside.size // 2
        pivot = float(np.partition(inside, mid)[mid])
        give = np.clip((lam[idx] - pivot) * w[idx], 0.0, u[idx])
        if fixed + (lin_lw - pivot * lin_w) + float(give.sum()) >= rest:
            lo = pivot
        else:
            hi = pivot
        capped = b >= hi
        zero = t <= lo
        linear = (b <= lo) & (t >= hi) & ~capped & ~zero
        if capped.any():
            fixed += float(u[idx[capped]].sum())
        if linear.any():
            rows = idx[linear]
            lin_w += float(w[rows].sum())
            lin_lw += float((lam[rows] * w[rows]).sum())
        idx = idx[~(capped | zero | linear)]
    h_lo = np.clip((lam - lo) * w, 0.0, u)
    h_hi = np.clip((lam - hi) * w, 0.0, u)
    s_lo, s_hi = float(h_lo.sum()), float(h_hi.sum())
    frac = (rest - s_hi) / (s_lo - s_hi) if s_lo > s_hi else 1.0
    frac = min(max(frac, 0.0), 1.0)
    return h_hi + frac * (h_lo - h_hi), hi - frac * (hi - lo)


def _drained(
    eta: float, c: np.ndarray, e: np.ndarray, k: np.ndarray, lam: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """``min(c, (A - eta E) / (k - eta))`` on rows above the level ``eta``, 0 on the others."""
    above = lam > eta  # then eta < lam < k: numerator and denominator are both > 0
    den = np.where(above, k - eta, 1.0)
    return np.where(above, np.minimum(c, np.maximum(n - eta * e, 0.0) / den), 0.0)


def _drain_to_level(
    c: np.ndarray, e: np.ndarray, k: np.ndarray, lam: np.ndarray, n: np.ndarray, rest: float
) -> tuple[np.ndarray, float]:
    """Equity-reduced form: drain the rows (all with ``0 < lam < k``) to a common post
    leverage ``(A - k h) / (E - h)``, raising ``rest``; ``n`` is the account notional ``A``.

    ``S(eta) = sum_i h_i(eta)`` (see :func:`_drained`) falls with ``eta``; the level is the
    highest ``eta`` with ``S(eta) >= rest``.  Safeguarded Newton on ``S``: each step keeps a
    bracket ``S(lo) >= rest > S(hi)``, takes the Newton point when it falls inside and
    bisects otherwise; on the smooth pieces ``S`` is concave, so Newton closes in from above
    and a step past the level by the last step length brackets it tightly.  Rows that cannot
    change inside the bracket (at or below ``lo``: nothing; capped at ``hi``: their cap) leave
    the search as it narrows.  It stops when the bracket is ``1e-13`` of the level wide (or
    two adjacent floats), and the last step interpolates between ``lo`` and ``hi`` so that
    the sum is exactly ``rest``.  On large snapshots the search starts from the level of an
    evenly spaced sample of the rows.  Returns the haircuts and the level ``lo``; the
    haircuts at leverage 0 and level 0.0 when draining everyone to 0 cannot raise ``rest``.
    """
    if float(np.minimum(c, n / k).sum()) <= rest:  # draining everyone to leverage 0 falls short
        return _drained(0.0, c, e, k, lam, n), 0.0
    slope_num = n - k * e  # d h_i / d eta = slope_num / (k - eta)^2 on uncapped rows (< 0)
    rows = (c, e, k, lam, n, slope_num)
    where = np.arange(c.size)  # positions of the rows still in the search
    at_cap = []  # positions of the rows that left the search as capped
    fixed = 0.0  # their haircut
    lo, hi = 0.0, float(lam.max())
    x = 0.5 * hi
    if c.size > 4 * _SAMPLE_N:
        # start from the level of an evenly spaced sample holding the same share of capacity
        pick = slice(0, None, c.size // _SAMPLE_N)
        share = float(c[pick].sum()) / float(c.sum())
        x = _drain_to_level(c[pick], e[pick], k[pick], lam[pick], n[pick], rest * share)[1]
        x = x if lo < x < hi else 0.5 * hi
    for _ in range(_LEVEL_STEPS):
        ca, ea, ka, la, na, sa = rows
        above = la > x  # then x < lam < k: numerator and denominator are both > 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            den = ka - x
            raw = (na - x * ea) / den
            free = above & (raw < ca)
            total = fixed + float(np.where(above, np.minimum(raw, ca), 0.0).sum())
            slope = float(np.where(free, sa / (den * den), 0.0).sum())
        g = total - rest
        if g >= 0:
            lo, drop = x, ~above  # these give nothing anywhere in [lo, hi]
        else:
            hi, drop = x, above & ~free  # these give their cap anywhere in [lo, hi]
        if g == 0 or hi - lo <= 1e-13 * hi or not lo < 0.5 * (lo + hi) < hi:
            break
        n_drop = int(np.count_nonzero(drop))
        if n_drop * 8 > drop.size or (g < 0 and n_drop):
            if g < 0:
                gone = np.flatnonzero(drop)
                fixed += float(ca[gone].sum())
                at_cap.append(where[gone])
            keep = np.flatnonzero(~drop)
            rows = tuple(arr[keep] for arr in rows)
            where = where[keep]
        step = -g / slope if slope < 0 else np.inf
        xn = x + step
        if abs(step) < 1e-3 * (hi - lo):
            xn += step  # Newton closes in from one side: step past the level to bracket it
        x = xn if lo < xn < hi else 0.5 * (lo + hi)
    # rows out of the search give the same at lo and hi: 0, or their cap
    h = np.zeros(c.size)
    if at_cap:
        capped_rows = np.concatenate(at_cap)
        h[capped_rows] = c[capped_rows]
    ca, ea, ka, la, na, _ = rows
    h_lo = _drained(lo, ca, ea, ka, la, na)
    h_hi = _drained(hi, ca, ea, ka, la, na)
    s_lo, s_hi = fixed + float(h_lo.sum()), fixed + float(h_hi.sum())
    t = (rest - s_hi) / (s_lo - s_hi) if s_lo > s_hi else 1.0
    h[where] = h_hi + min(max(t, 0.0), 1.0) * (h_lo - h_hi)
    return h, lo


class MinimaxLeverage(ADLPolicy):
    """Leverage draining: lower the most levered accounts to a common post-ADL leverage.

    Campbell, Hey, Moallemi, Nutz, *Risk-Based Auto-Deleveraging* (arXiv 2603.15963): under an
    expected-loss objective the optimal ADL takes from the most levered accounts first, until
    their leverage falls to a common level (water-filling); cross-margined, leverage is the
    account's, over all its markets.  The companion code (github.com/nataschahey/adl-solver,
    ``solve_water_filling``) writes it with the pre-ADL equity ``E_i`` fixed:
    ``l_i = v'(q_i - x_i) / E_i``, ``l_i* = clip(eta, l_lo_i, l_hi_i)``.

    On a snapshot: ``A_i = leverage_i * E_i`` is the account's notional over all its markets
    (the snapshot's ``leverage`` field), and taking ``h_i`` dollars from the row closes
    ``h_i / lot_value_i`` lots of this market, shedding ``k_i h_i`` notional
    (``k_i = lot_size * mark / lot_value_i``).  ``form`` picks the post-ADL leverage:

    * ``"fixed_equity"`` (default, the paper's): ``l_i(h) = (A_i - k_i h_i) / E_i``, so
      ``h_i(eta) = clip((l_i - eta) E_i / k_i, 0, u_i)`` with ``u_i = min(c_i, A_i / k_i)``;
      the sum is piecewise linear in ``eta`` and the level is found exactly, in O(n)
      (:func:`_fixed_equity_fill`);
    * ``"equity_reduced"``: ``l_i(h) = (A_i - k_i h_i) / (E_i - h_i)`` (each dollar taken is a
      dollar of equity lost), ``h_i(eta) = min(c_i, (A_i - eta E_i) / (k_i - eta))``; the level
      is found by safeguarded Newton steps and the last step interpolated so the sum is
      exact.  Closing a lot lowers this leverage only while ``l_i < k_i``: at a realistic
      bankruptcy gap (lot value 2 % of the lot's notional, ``k = 50``) accounts levered 50x or
      more are never drained, and the most levered accounts are exactly the ones this form
      cannot reach.

    The default is the paper's fixed-equity form: it is the form the paper and its code
    optimise, it ranks accounts by the leverage they hold rather than by the equity the ADL
    itself removes, and it reaches every levered account, however high its leverage.

    The rule, in three passes:

    1. rows with equity ``<= 0`` (or no finite leverage) give first, pro-rata to capacity;
    2. the rest of the budget drains leverage: the level ``eta`` is the highest with
       ``sum_i h_i(eta) >= B``; rows at or below the level give nothing, rows above it are
       brought down to it (or give their cap);
    3. if draining every drainable row to leverage 0 (or its cap) still leaves part of ``B``,
       that part is spread pro-rata over the remaining capacity of all rows (including rows
       that cannot be drained): the rule then no longer minimises the maximum.

    Rounding lots go to the most levered accounts first, ties by account id.  Relabeling,
    Sybil (splitting an account's equity, lots and capacity in proportion keeps its leverage,
    so the parts give what the whole gave) and scale (dollars and prices scaled together)
    hold in both forms.

    Args:
        form: ``"fixed_equity"`` or ``"equity_reduced"`` (:data:`LEVERAGE_FORMS`).
    """

    name: ClassVar[str] = "minimax_leverage"
    description: ClassVar[str] = (
        "leverage draining: lower the most levered accounts to a common account leverage"
    )
    source: ClassVar[str] = (
        "Campbell, Hey, Moallemi, Nutz, Risk-Based Auto-Deleveraging (arXiv 2603.15963); "
        "companion code github.com/nataschahey/adl-solver"
    )
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale"})

    def __init__(self, form: str = "fixed_equity") -> None:
        self.form = form

    def _solve(
        self, snap: Snapshot, budget: float, lam: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """The haircuts and the level; ``lam`` is :func:`_pre_leverage` when already known."""
        form = _check_form(self.form)
        c = snap.capacity
        h = np.zeros_like(c)
        rest = min(float(budget), float(c.sum()))
        tol = 1e-12 * rest  # float dust only: relative, so scaling every dollar keeps the passes
        if rest <= 0:
            return h, np.inf
        lam = _pre_leverage(snap) if lam is None else lam
        live = c > 0
        broke = live & ~np.isfinite(lam)
        if broke.any():
            h = pro_rata_fill(np.where(broke, c, 0.0), rest)
            rest -= float(h.sum())
            if rest <= tol:
                return np.minimum(h, c), np.inf
        k = _shed_per_dollar(snap)
        e = snap.equity
        drain = live & ~broke & (lam > 0) & np.isfinite(k)
        if form == "equity_reduced":
            drain &= lam < k
        level = np.nan
        if drain.any():
            ld, ed, kd, cd = lam[drain], e[drain], k[drain], c[drain]
            if form == "fixed_equity":
                w = ed / kd  # dollars per unit of leverage
                u = np.minimum(cd, ld * w)  # at most down to leverage 0
                if float(u.sum()) <= rest:
                    hd, level = u, 0.0
                else:
                    hd, level = _fixed_equity_fill(ld, w, u, rest)
            else:
                hd, level = _drain_to_level(cd, ed, kd, ld, ld * ed, rest)
            h[drain] = hd
            rest -= float(hd.sum())
        if rest > tol:
            h = h + pro_rata_fill(np.maximum(c - h, 0.0), rest)
        return np.clip(h, 0.0, c), level

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Dollars per row after the three passes (see the class docstring)."""
        return self._solve(snap, budget)[0]

    def level(self, snap: Snapshot, budget: float) -> float:
        """The common account leverage ``eta`` rows are drained to.

        ``inf`` when rows with equity <= 0 (or a zero budget) cover everything, ``0.0`` when
        draining could not reach the budget, ``nan`` when no row can be drained.
        """
        return self._solve(snap, float(budget))[1]

    @staticmethod
    def _tie_order(snap: Snapshot, lam: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Argsort of rows tied on leverage: by account id, then row."""
        acc = snap.account
        return lambda rows: np.lexsort((rows, acc[rows], -lam[rows]))

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Most levered accounts first (equity <= 0 first of all), ties by account id."""
        lam = _pre_leverage(snap)
        return rank_rows(np.arange(snap.n), lam, self._tie_order(snap, lam))

    def order(self, snap: Snapshot) -> Callable[[int], np.ndarray]:
        """Lots to the most levered accounts first, as a prefix function (only the rows the
        rounding reaches are sorted)."""
        lam = _pre_leverage(snap)
        return order_prefix(lam, self._tie_order(snap, lam))
