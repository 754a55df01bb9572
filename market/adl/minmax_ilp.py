"""Exact integer min-max burden on the lot grid, solved lexicographically.

Chitra's min-max ILP asks for whole lots ``n_i in {0..m_i}`` (``m_i`` =
:func:`market.adl.base.max_lots`) raising at least the budget ``B`` with the least largest
haircut fraction ``z = max_i n_i v_i / c_i``.  :class:`MinMaxILP` solves it in two stages,
each to optimality:

1. **Least largest fraction.**  For a level ``z`` a row can give at most
   ``u_i(z) = max{k <= m_i : k v_i / c_i <= z}`` lots, and ``F(z) = sum u_i(z) v_i`` grows
   with ``z``, jumping only at the breakpoints ``k v_i / c_i``.  The optimum ``z*`` is the
   smallest breakpoint with ``F(z*) >= B``: a geometric then arithmetic bisection brackets it
   and the bracket is snapped to the exact breakpoint, with each ``u_i`` corrected against the
   fraction as the allocation will be measured (``(k * v_i) / c_i`` in float64), so counts up
   to ``1e10`` lots and lot values over eight decades give the optimum.  No solver is needed.
2. **Least overshoot at that level.**  With ``n_i <= u_i(z*)`` every solution has largest
   fraction exactly ``z*``; among them the one raising least above ``B`` removes the most
   value ``sum r_i v_i <= E`` from ``u(z*)``, ``E = F(z*) - B``, a bounded subset sum.  With
   one lot value for every row (what the exchange produces) it is ``floor(E / v)`` lots,
   exactly; otherwise only rows with ``v_i <= E`` can give, and the subset sum is solved by
   a depth-first branch and bound in float64 (the arithmetic the allocation is measured
   in), handing over to HiGHS (``scipy.optimize.milp``, zero gap, status checked, answer
   re-verified in float64) when its node budget runs out.  Overshoots within the budget
   tolerance (``1e-9 * max(1, B)``, as :func:`market.adl.execute` uses) count as equal.  When
   optimality cannot be proven it raises :class:`NotProvenError` rather than return a
   non-optimal answer.

Ties at the optimum (which rows give the lots removed) go to the rows with the largest
fraction, then the lowest row index, so the result is deterministic.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from market.adl.base import ADLPolicy, Snapshot, _tol, max_lots
from market.errors import InputError, require

__all__ = ["MinMaxILP", "NotProvenError"]

#: Most branch-and-bound nodes the overshoot stage visits before handing over to HiGHS.
_NODES = 20_000
#: Most candidate rows the branch and bound takes (it recurses once per row).
_DEPTH = 800
#: Bisection steps (geometric, then arithmetic) before the bracket is snapped.
_BISECT = 200


class NotProvenError(InputError):
    """The exact min-max rule could not prove its answer optimal on this instance."""

    def __init__(self, reason: str) -> None:
        super().__init__("min_max_ilp", "an instance it can solve to proven optimality", reason)


def _units(z: float, c: np.ndarray, v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``u_i(z)``: most lots with ``(k * v_i) / c_i <= z`` and ``k <= m_i`` (int64)."""
    k = np.floor(z * c / v)
    np.clip(k, 0.0, m, out=k)
    for _ in range(3):  # float floor can be one off at large counts: correct both ways
        over = (k > 0) & ((k * v) / c > z)
        k[over] -= 1.0
        up = (k < m) & (((k + 1.0) * v) / c <= z)
        k[up] += 1.0
        if not (over.any() or up.any()):
            break
    return k.astype(np.int64)


def _raised(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u.astype(np.float64), v))


def _least_level(
    c: np.ndarray, v: np.ndarray, m: np.ndarray, need: float
) -> tuple[float, np.ndarray]:
    """The least largest fraction ``z*`` with ``F(z*) >= need`` and the lots ``u(z*)``."""
    first = v / c  # every row's first breakpoint
    lo = float(first.min()) * 0.5  # below every breakpoint: F(lo) = 0 < need
    hi = float(((m * v) / c).max())  # every lot: F(hi) >= need (checked by the caller)
    for i in range(_BISECT):
        mid = float(np.sqrt(lo * hi)) if hi > 2.0 * lo and i < _BISECT // 2 else 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if _raised(_units(mid, c, v, m), v) >= need:
            hi = mid
        else:
            lo = mid
    while True:  # snap: the smallest breakpoint above lo, until it raises enough
        k = _units(lo, c, v, m)
        nxt = np.where(k < m, ((k + 1.0) * v) / c, np.inf)
        z = float(nxt.min())
        require(np.isfinite(z), "min_max_ilp", "a feasible instance", "no breakpoint left")
        u = _units(z, c, v, m)
        if _raised(u, v) >= need:
            return z, u
        lo = z


def _branch_and_bound(
    v: np.ndarray, rmax: np.ndarray, room: float, tol: float
) -> np.ndarray | None:
    """Most value ``sum r_i v_i <= room + tol`` with integers ``0 <= r_i <= rmax_i``, proven.

    Depth-first branch and bound over the rows by decreasing lot value (counts tried from the
    most that fit down to 0), seeded with the greedy answer and pruned by the bound
    ``value + min(room left, value of every later lot)``; it stops early on an exact fill.
    Sums are float64 as the allocation measures them.  Returns None when it could not prove
    its answer within :data:`_NODES` nodes (or :data:`_DEPTH` rows).
    """
    n = v.size
    r = np.zeros(n, dtype=np.int64)
    if n == 0 or room <= 0:
        return r
    order = np.lexsort((np.arange(n), -v))
    vs, ks = v[order].tolist(), rmax[order].tolist()
    cap = room + tol
    rest = np.concatenate([np.cumsum((v[order] * rmax[order])[::-1])[::-1], [0.0]]).tolist()
    best_val, best = 0.0, [0] * n
    cur = [0] * n
    val = 0.0
    for j in range(n):  # greedy seed: largest lots first
        k = min(ks[j], int((cap - val) // vs[j])) if vs[j] > 0 else 0
        while k > 0 and val + k * vs[j] > cap:
            k -= 1
        cur[j], val = k, val + k * vs[j]
    best_val, best = val, list(cur)
    if best_val < cap - tol and n > _DEPTH:
        return None
    nodes = 0
    cur = [0] * n

    def search(j: int, value: float) -> None:
        nonlocal best_val, best, nodes
        nodes += 1
        if nodes > _NODES:
            raise _GiveUp
        if value > best_val:
            best_val, best = value, list(cur[:j]) + [0] * (n - j)
        if j == n or best_val >= cap - tol:
            return
        if value + min(cap - value, rest[j]) <= best_val:
            return
        if rest[j] <= cap - value:  # everything left fits: the best this branch can do
            for i in range(j, n):
                cur[i] = ks[i]
            total = value + rest[j]
            if total > best_val:
                best_val, best = total, list(cur)
            for i in range(j, n):
                cur[i] = 0
            return
        k = min(ks[j], int((cap - value) // vs[j]))
        while k > 0 and value + k * vs[j] > cap:
            k -= 1
        for cnt in range(k, -1, -1):
            cur[j] = cnt
            search(j + 1, value + cnt * vs[j])
            if best_val >= cap - tol:
                break
        cur[j] = 0

    if best_val < cap - tol:
        try:
            search(0, 0.0)
        except _GiveUp:
            return None
    r[order] = np.asarray(best, dtype=np.int64)
    return r


class _GiveUp(Exception):
    """The branch and bound ran out of nodes."""


def _milp(
    v: np.ndarray, rmax: np.ndarray, room: float, tol: float, time_limit: float
) -> np.ndarray:
    """The subset sum by HiGHS (``scipy.optimize.milp``) on variables scaled by ``room``.

    Accepted only with an optimal status at zero gap and after a float64 re-check of the bound;
    a solution the solver's tolerance let over the bound tightens it (a few times).
    """
    bound = 1.0
    for _ in range(5):
        res = milp(
            -v / room,
            constraints=[LinearConstraint((v / room)[None, :], -np.inf, bound)],
            integrality=np.ones(v.size),
            bounds=Bounds(np.zeros(v.size), rmax.astype(np.float64)),
            options={"mip_rel_gap": 0.0, "time_limit": time_limit},
        )
        if res.status != 0 or res.x is None:
            raise NotProvenError(f"the overshoot subset sum was not solved ({res.message})")
        cand = np.clip(np.round(res.x), 0, rmax).astype(np.int64)
        val = _raised(cand, v)
        if val <= room + tol:
            return cand
        bound -= 1.5 * (val - room) / room + 1e-15
    raise NotProvenError("the overshoot subset sum stayed above its bound after 5 tightenings")


def _subset_sum(
    v: np.ndarray, rmax: np.ndarray, room: float, tol: float, time_limit: float
) -> np.ndarray:
    """Most value ``sum r_i v_i <= room`` (to ``tol``) with ``0 <= r_i <= rmax_i``, proven:
    the branch and bound, then HiGHS where it gave up."""
    r = _branch_and_bound(v, rmax, room, tol)
    return _milp(v, rmax, room, tol, time_limit) if r is None else r


class MinMaxILP(ADLPolicy):
    """Exact integer min-max burden on the lot grid: least largest fraction, then least
    overshoot (see the module docstring for the method).

    Every answer is optimal or the call raises :class:`NotProvenError`; snapshots with more
    than ``max_n`` rows raise :class:`~market.errors.InputError`.  When even every lot cannot
    reach the budget, every row gives all its lots and the rest is the residual.

    Parameters:
        max_n: the most rows it accepts (>= 1).
        time_limit: seconds HiGHS may spend on the overshoot stage of one call (> 0) before
            the rule gives up with :class:`NotProvenError`.
    """

    name: ClassVar[str] = "min_max_ilp"
    description: ClassVar[str] = (
        "exact integer min-max haircut fraction on the lot grid, then least overshoot"
    )
    source: ClassVar[str] = "Chitra et al., ADL as Online Learning (2602.15182), min-max ILP"
    properties: ClassVar[frozenset[str]] = frozenset()
    exact_small_only: ClassVar[bool] = True

    def __init__(self, max_n: int = 100_000, time_limit: float = 30.0) -> None:
        self.max_n = max_n
        self.time_limit = time_limit

    def _check(self, snap: Snapshot) -> None:
        require(
            isinstance(self.max_n, int | np.integer)
            and not isinstance(self.max_n, bool)
            and self.max_n >= 1,
            f"{self.name}.max_n",
            "an integer >= 1",
            self.max_n,
        )
        require(
            isinstance(self.time_limit, int | float) and self.time_limit > 0,
            f"{self.name}.time_limit",
            "a number of seconds > 0",
            self.time_limit,
        )
        if snap.n > self.max_n:
            raise InputError("snapshot.n", f"<= max_n = {self.max_n} rows for min_max_ilp", snap.n)

    def solve_lots(self, snap: Snapshot, budget: float) -> np.ndarray:
        """The optimal lots per row (int64; validates ``max_n``)."""
        self._check(snap)
        budget = float(budget)
        m_all = max_lots(snap)
        out = np.zeros(snap.n, dtype=np.int64)
        tol = _tol(budget)
        if budget <= tol:
            return out
        v_all = snap.lot_value
        if _raised(m_all, v_all) < budget - tol:
            return m_all  # infeasible: every lot, the rest is residual
        rows = np.flatnonzero(m_all > 0)
        c, v, m = snap.capacity[rows], v_all[rows], m_all[rows].astype(np.float64)
        need = budget - tol
        z, u = _least_level(c, v, m, need)
        room = _raised(u, v) - budget
        if room > tol:
            give = (v <= room + tol) & (u > 0)
            cand = np.flatnonzero(give)
            # rows at the largest fractions first, then by row: ties go there
            frac = (u[cand] * v[cand]) / c[cand]
            cand = cand[np.lexsort((cand, -frac))]
            vc = v[cand]
            if vc.size and float(vc.min()) == float(vc.max()):
                k = int(min(np.floor((room + tol) / vc[0]), u[cand].sum()))
                take = np.zeros(cand.size, dtype=np.int64)
                left = k
                while left > 0:  # one lot per row per pass, largest fractions first
                    can = np.flatnonzero(u[cand] - take > 0)[:left]
                    take[can] += 1
                    left -= can.size
                u[cand] -= take
            else:
                rmax = np.minimum(u[cand], np.floor((room + tol) / vc).astype(np.int64))
                u[cand] -= _subset_sum(vc, rmax, room, tol, float(self.time_limit))
        out[rows] = u
        del z
        return out

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``n * lot_value`` for the optimal lots ``n``."""
        return self.solve_lots(snap, budget) * snap.lot_value
