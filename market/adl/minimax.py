"""Min-max ADL rules: leverage draining and the exact integer min-max burden.

* :class:`MinimaxLeverage` ("leverage draining", Campbell-Hey-Moallemi-Nutz 2603.15963):
  take from the most levered accounts first, lowering their post-ADL leverage to a common
  level, so the largest leverage left in the market is as small as the budget allows.
* :class:`MinMaxILP` (Chitra et al. 2602.15182 benchmark): the integer allocation on the lot
  grid that minimises the largest haircut fraction ``h_i / c_i``, solved exactly with
  ``scipy.optimize.milp`` (small snapshots only).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from market.adl.base import ADLPolicy, Allocation, Snapshot, execute
from market.adl.prorata import pro_rata_fill
from market.errors import InputError, require

__all__ = ["MinMaxILP", "MinimaxLeverage", "post_leverage"]

#: Bisection steps of the leverage level; the bracket reaches float resolution well before.
_BISECT_STEPS = 200


def _tol(budget: float) -> float:
    return 1e-9 * max(1.0, abs(budget))


def _shed_per_dollar(snap: Snapshot) -> np.ndarray:
    """``k_i = lot_size * mark / lot_value_i``: notional closed per dollar raised (inf if 0)."""
    v = snap.lot_value
    with np.errstate(divide="ignore"):
        return np.where(v > 0, snap.lot_size * snap.mark / np.where(v > 0, v, 1.0), np.inf)


def _pre_leverage(snap: Snapshot) -> np.ndarray:
    """``N_i / E_i`` with ``N = lots * lot_size * mark``; inf where equity <= 0."""
    e = snap.equity
    notional = snap.notional.astype(np.float64)
    with np.errstate(over="ignore"):
        return np.where(e > 0, notional / np.where(e > 0, e, 1.0), np.inf)


def post_leverage(snap: Snapshot, haircut: np.ndarray) -> np.ndarray:
    """Leverage per row after taking ``haircut`` dollars by closing lots at ``lot_value``.

    ``(N_i - k_i h_i) / (E_i - h_i)`` with ``k_i = lot_size * mark / lot_value_i``: each dollar
    taken closes ``1 / lot_value`` lots (fractional lots allowed, wealth space) and costs a
    dollar of equity.  Rows left with equity <= 0 report ``inf``.
    """
    h = np.asarray(haircut, dtype=np.float64)
    require(h.shape == snap.capacity.shape, "haircut", f"shape {snap.capacity.shape}", h.shape)
    v = snap.lot_value
    closed = np.where(v > 0, h / np.where(v > 0, v, 1.0), 0.0)
    notional = np.maximum(snap.notional - closed * snap.lot_size * snap.mark, 0.0)
    eq = snap.equity - h
    with np.errstate(over="ignore"):
        return np.where(eq > 0, notional / np.where(eq > 0, eq, 1.0), np.inf)


class MinimaxLeverage(ADLPolicy):
    """Leverage draining: lower the most levered rows to a common post-ADL leverage level.

    Taking ``h_i`` dollars closes ``h_i / lot_value_i`` lots, shedding ``k_i h_i`` notional
    (``k_i = lot_size * mark / lot_value_i``) and ``h_i`` equity, so the post leverage is
    ``l_i(h) = (N_i - k_i h_i) / (E_i - h_i)``.  The rule, in three passes:

    1. rows with equity <= 0 (infinite leverage) give first, pro-rata to capacity;
    2. the rest of the budget drains leverage: the level ``eta`` is the highest with
       ``sum_i min(c_i, h_i(eta)) >= B``, ``h_i(eta) = (N_i - eta E_i) / (k_i - eta)`` for rows
       above the level and 0 for rows at or below it (vectorised bisection; the last step is
       interpolated so the sum is exactly ``B``).  Only rows with ``0 < N_i/E_i < k_i`` can be
       drained: when ``N/E >= k`` closing lots at this price raises leverage instead;
    3. if draining every drainable row to ``min(c_i, N_i/k_i)`` (leverage 0, or its cap) still
       leaves part of ``B``, that part is spread pro-rata over the remaining capacity of all
       rows (including the undrainable ones): the rule then no longer minimises the maximum.

    Rounding lots go to the most levered rows first, ties by account id.
    """

    name: ClassVar[str] = "minimax_leverage"
    description: ClassVar[str] = "leverage draining: lower the most levered to a common level"
    source: ClassVar[str] = (
        "Campbell, Hey, Moallemi, Nutz, Risk-Based Auto-Deleveraging (2603.15963)"
    )
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale"})

    def __init__(self) -> None:
        pass

    def _solve(self, snap: Snapshot, budget: float) -> tuple[np.ndarray, float]:
        c = snap.capacity
        h = np.zeros_like(c)
        rest = min(float(budget), float(c.sum()))
        tol = _tol(budget)
        if rest <= 0:
            return h, np.inf
        live = c > 0
        broke = live & (snap.equity <= 0)
        if broke.any():
            h = pro_rata_fill(np.where(broke, c, 0.0), rest)
            rest -= float(h.sum())
            if rest <= tol:
                return np.minimum(h, c), np.inf
        lam = _pre_leverage(snap)
        k = _shed_per_dollar(snap)
        drain = live & ~broke & (lam > 0) & (lam < k)
        level = np.nan
        if drain.any():
            cd, ed, kd, lamd = c[drain], snap.equity[drain], k[drain], lam[drain]
            nd = snap.notional[drain].astype(np.float64)

            def fill(eta: float) -> np.ndarray:
                above = lamd > eta  # then eta < lam < k: both numerator and denominator > 0
                den = np.where(above, kd - eta, 1.0)
                return np.where(above, np.minimum(cd, np.maximum(nd - eta * ed, 0.0) / den), 0.0)

            h_lo = fill(0.0)
            if float(h_lo.sum()) <= rest:
                hd, level = h_lo, 0.0
            else:
                lo, hi = 0.0, float(lamd.max())
                for _ in range(_BISECT_STEPS):
                    mid = 0.5 * (lo + hi)
                    if not lo < mid < hi:
                        break
                    if float(fill(mid).sum()) >= rest:
                        lo = mid
                    else:
                        hi = mid
                h_lo, h_hi = fill(lo), fill(hi)
                s_lo, s_hi = float(h_lo.sum()), float(h_hi.sum())
                t = (rest - s_hi) / (s_lo - s_hi) if s_lo > s_hi else 1.0
                hd = h_hi + min(max(t, 0.0), 1.0) * (h_lo - h_hi)
                level = lo
            h[drain] = hd
            rest -= float(hd.sum())
        if rest > tol:
            h = h + pro_rata_fill(np.maximum(c - h, 0.0), rest)
        return np.clip(h, 0.0, c), level

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Dollars per row after the three passes (see the class docstring)."""
        return self._solve(snap, budget)[0]

    def level(self, snap: Snapshot, budget: float) -> float:
        """The common leverage level ``eta`` rows are drained to.

        ``inf`` when rows with equity <= 0 (or a zero budget) cover everything, ``0.0`` when
        draining could not reach the budget, ``nan`` when no row can be drained.
        """
        return self._solve(snap, float(budget))[1]

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Most levered rows first (equity <= 0 first of all), ties by account id."""
        return np.lexsort((snap.account, -_pre_leverage(snap)))


class MinMaxILP(ADLPolicy):
    """Exact integer min-max burden on the lot grid (``scipy.optimize.milp``).

    Variables: lots ``n_i in {0..max_lots_i}`` with ``max_lots_i = min(lots_i,
    floor(c_i / lot_value_i))``, and the burden ``z``.  Minimise
    ``z + eps * sum(n_i v_i)`` subject to ``sum(n_i v_i) >= B`` and
    ``n_i v_i <= z * (c_i + tiny)``: the smallest possible largest fraction ``h_i / c_i``, and
    among those (``eps`` is tiny: the tie-break is worth at most 1e-7 of ``z``) the least
    overshoot.  When even every lot cannot reach ``B`` every row gives its ``max_lots`` and
    the rest is a residual.  Only for small snapshots: ``n > max_n`` raises
    :class:`~market.errors.InputError`.
    """

    name: ClassVar[str] = "min_max_ilp"
    description: ClassVar[str] = "exact integer min-max haircut fraction on the lot grid (MILP)"
    source: ClassVar[str] = "Chitra et al., ADL as Online Learning (2602.15182), min-max ILP"
    properties: ClassVar[frozenset[str]] = frozenset()
    exact_small_only: ClassVar[bool] = True

    def __init__(self, max_n: int = 400) -> None:
        self.max_n = max_n

    def _check(self, snap: Snapshot) -> None:
        require(
            isinstance(self.max_n, (int, np.integer))
            and not isinstance(self.max_n, bool)
            and self.max_n >= 1,
            f"{self.name}.max_n",
            "an integer >= 1",
            self.max_n,
        )
        if snap.n > self.max_n:
            raise InputError(
                "snapshot.n",
                "<= max_n rows for min_max_ilp (use capped_pro_rata for large N)",
                snap.n,
            )

    def max_lots(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Most lots each row may give: ``min(lots, floor(c / lot_value))`` (0 if no value)."""
        v = snap.lot_value
        tol = _tol(budget)
        pos = v > 0
        safe = np.where(pos, v, 1.0)
        cap_lots = np.floor((snap.capacity + tol) / safe + 1e-9)
        return np.where(pos, np.minimum(snap.lots, cap_lots), 0).astype(np.int64)

    def solve_lots(self, snap: Snapshot, budget: float) -> np.ndarray:
        """The optimal lots per row (validates ``max_n``)."""
        self._check(snap)
        budget = float(budget)
        v = snap.lot_value
        m = self.max_lots(snap, budget)
        out = np.zeros(snap.n, dtype=np.int64)
        tol = _tol(budget)
        if budget <= tol:
            return out
        if float((m * v).sum()) < budget - tol:
            return m
        rows = np.flatnonzero(m > 0)
        vr, mr, cr = v[rows], m[rows].astype(np.float64), snap.capacity[rows]
        k = rows.size
        scale = max(budget, float(vr.max()))
        tiny = 1e-12 * float(cr.max())
        eps = 1e-7 / float((mr * vr).sum() / scale)
        cost = np.concatenate([eps * vr / scale, [1.0]])
        cover = LinearConstraint(
            np.concatenate([vr / scale, [0.0]])[None, :], (budget - tol) / scale, np.inf
        )
        # n_i v_i / (c_i + tiny) - z <= 0, one row per account (sparse)
        ratio = sparse.hstack([sparse.diags(vr / (cr + tiny)), -np.ones((k, 1))], format="csr")
        burden = LinearConstraint(ratio, -np.inf, 0.0)
        res = milp(
            cost,
            constraints=[cover, burden],
            integrality=np.concatenate([np.ones(k), [0.0]]),
            bounds=Bounds(np.zeros(k + 1), np.concatenate([mr, [np.inf]])),
            options={"mip_rel_gap": 1e-9},
        )
        if res.x is None:  # pragma: no cover - the instance is feasible by construction
            raise RuntimeError(f"min_max_ilp: milp failed: {res.message}")
        out[rows] = np.clip(np.round(res.x[:k]), 0, mr).astype(np.int64)
        return out

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``n * lot_value`` for the optimal lots ``n``."""
        return self.solve_lots(snap, budget) * snap.lot_value

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Whole lots from the MILP; ``execute`` floors them exactly (nothing to round)."""
        h = self.allocate_wealth(snap, budget)
        return execute(snap, budget, h, price_rule=self.price_rule)
