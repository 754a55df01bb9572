"""Smooth pro-rata ADL rules: wealth, contract, capped and risk-aware pro-rata.

Every rule here spreads the budget ``B`` over all eligible rows instead of walking a queue:

* :class:`ProRata` takes the same fraction ``B / sum(c)`` of every capacity;
* :class:`ContractProRata` is proportional to contracts held (``lots * lot_value``) on the
  lot grid, as integer pro-rata venues do;
* :class:`CappedProRata` water-fills a common fraction under per-row caps (a fairness cap
  ``max_fraction`` and optionally "keep maintenance margin");
* :class:`RiskAwareProRata` (RAP) makes the fraction grow with effective leverage through a
  risk weight ``g``; :func:`psi` is the one-step expected shortfall behind the optimal ``g``.

All allocations are vectorised over rows with numpy (water-filling by one sort).  Wealth-space
vectors satisfy ``0 <= h <= cap`` and ``sum(h) = min(B, sum(cap))``, where ``cap`` is the
capacity or, for the capped rules, the capped capacity; :func:`market.adl.base.execute` then
turns them into whole lots and reports any residual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from scipy import special

from market.adl.base import ADLPolicy, PerInstance, Snapshot
from market.adl.ordering import order_prefix, rank_rows
from market.errors import require

__all__ = [
    "FILL_PASSES",
    "RAP_G",
    "CappedProRata",
    "ContractProRata",
    "ProRata",
    "RiskAwareProRata",
    "capped_fill",
    "log_psi",
    "pro_rata_fill",
    "psi",
]

#: Risk-weight families accepted by :class:`RiskAwareProRata`.
RAP_G = ("linear", "power", "cvar", "optimal")

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


# -- shared fills --------------------------------------------------------------------------


def pro_rata_fill(capacity: np.ndarray, amount: float) -> np.ndarray:
    """Plain pro-rata in closed form: ``c * min(1, amount / sum(c))`` (zeros if nothing)."""
    c = np.asarray(capacity, dtype=np.float64)
    total = float(c.sum())
    if amount <= 0 or total <= 0:
        return np.zeros_like(c)
    return c * min(1.0, float(amount) / total)


#: Newton passes of :func:`capped_fill` before it sorts the rows still open (each pass is O(n)
#: and caps every row the current level reaches; a few passes are typical).
FILL_PASSES = 12

_TINY = float(np.finfo(np.float64).tiny)
#: Above this many rows :func:`capped_fill` narrows its passes to a band around the level.
_BAND_MIN_N = 4096


def _fill_sorted(c: np.ndarray, lw: np.ndarray, budget: float) -> np.ndarray:
    """The exact capped fill of ``budget`` over rows ``c > 0`` with log weights ``lw``, by one sort.

    Used by :func:`capped_fill` when its Newton passes have not finished.  Rows sorted by
    ``c / w`` ascending; if the level lies between the ratios of rows ``j-1`` and ``j``, rows
    before ``j`` are capped and the rest get ``eta * w``: the sum is ``cumc[j] + eta *
    tail_w[j]``.  Logs enter only through differences of nearby numbers (tail minus row), which
    keeps huge log-weights exact enough.
    """
    idx = np.argsort(np.log(c) - lw, kind="stable")  # ascending c / w
    c_s, lw_s = c[idx], lw[idx]
    cumc = np.concatenate([[0.0], np.cumsum(c_s)])
    log_tail = np.logaddexp.accumulate(lw_s[::-1])[::-1]
    with np.errstate(over="ignore"):
        level_at = cumc[:-1] + np.exp(np.log(c_s) + (log_tail - lw_s))
    j = min(int(np.searchsorted(level_at, budget, side="left")), c.size - 1)
    share = np.exp(lw_s[j:] - log_tail[j])
    share /= share.sum()
    out = np.empty_like(c)
    out[idx[:j]] = c_s[:j]
    out[idx[j:]] = np.minimum(c_s[j:], max(budget - float(cumc[j]), 0.0) * share)
    return out


def capped_fill(
    capacity: np.ndarray,
    budget: float,
    weights: np.ndarray | None = None,
    *,
    log_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Capped proportional fill ``h_i = min(c_i, eta * w_i)`` with ``sum(h) = min(B, sum(c))``.

    The water-filling of :func:`market.adl.base.water_fill`, made robust and fast:

    * the level ``eta`` is found by Newton steps from below, each a few O(n) passes: share
      what the capped rows leave over the open rows in proportion to their weights, cap every
      row whose share reaches its cap (the true level is at least this high, so those rows
      are capped in the answer too) and repeat until no new row is capped.  After
      :data:`FILL_PASSES` steps the rows still open are solved exactly by one sort
      (:func:`_fill_sorted`);
    * weights may be given as ``log_weights`` (``-inf`` = zero weight).  Shares use the
      weights shifted by the largest one; if the open rows' weights underflow (weights
      spanning more than the float range, ``exp(-1000)`` next to ``1``) the open rows are
      solved in log space, so once the heavy rows are capped the budget goes to the next
      heaviest rather than to everyone equally;
    * rows with zero weight (or a weight that is not a finite positive number) give nothing,
      unless the weighted rows cannot hold the budget: those are then filled to their caps
      and the rest is spread over the zero-weight rows pro-rata to capacity (all weights zero:
      plain pro-rata);
    * a budget equal to the capacity up to rounding, or ties in ``c / w``, are harmless.
    """
    c = np.asarray(capacity, dtype=np.float64)
    total_c = float(c.sum())
    budget = min(float(budget), total_c)
    if budget <= 0 or c.size == 0:
        return np.zeros_like(c)
    if log_weights is None:
        w = np.ones_like(c) if weights is None else np.asarray(weights, dtype=np.float64)
        w_min = float(w.min())
        if not (w_min >= 0 and float(w.max()) < np.inf):  # (NaN fails both)
            with np.errstate(divide="ignore", invalid="ignore"):
                usable = (w > 0) & (w < np.inf)
                log_weights = np.where(usable, np.log(np.where(usable, w, 1.0)), -np.inf)
    # rows off the fill (zero weight), as a mask or None when there are none
    if log_weights is None:
        off = (w == 0) if w_min == 0 else None
        e = w
    else:
        lw = np.asarray(log_weights, dtype=np.float64)
        off = ~np.isfinite(lw)
        if not off.any():
            off = None
        top = lw.max() if off is None else np.where(off, -np.inf, lw).max()
        with np.errstate(invalid="ignore", over="ignore"):
            e = np.exp(lw - top)
        if off is not None:
            np.copyto(e, 0.0, where=off)
    held = total_c if off is None else float(np.einsum("i,i->", c, ~off))
    if held <= budget:  # the weighted rows cannot hold the budget: all of theirs, then the rest
        h = c.copy()
        if off is not None:
            h[off] = pro_rata_fill(c[off], budget - held)
        return h
    total_w = float(e.sum())
    if not _TINY < total_w < np.inf:  # linear weights too large or too small to sum: rescale
        e = e / e.max()
        total_w = float(e.sum())
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # a row is capped once the level reaches c / w; zero-weight rows get inf (or NaN when
        # c = 0 too), so they are never capped and take eta * 0 = 0
        ratio = c / e
    rest, open_w, n_capped = budget, total_w, 0
    # The passes look at every row at first; after one pass on a large snapshot only at a band
    # of ratios (eta_0, top] around the level, with the rows below it capped (c_fixed, n_fixed)
    # and those above it open (w_fixed) for as long as the level stays <= top.
    c_v, e_v, r_v = c, e, ratio
    c_fixed = w_fixed = 0.0
    n_fixed, top, eta_over = 0, np.inf, -np.inf
    for step in range(FILL_PASSES):
        eta = rest / open_w if _TINY < open_w < np.inf else np.inf
        if not eta < np.inf:
            break  # the open rows' weights left the float range: solve them in log space
        eta = max(eta, eta_over)  # the steps rise; rounding must not undo a cap
        if eta > top:  # the level left the band: look at every row again
            c_v, e_v, r_v, c_fixed, w_fixed, n_fixed, top = c, e, ratio, 0.0, 0.0, 0, np.inf
            n_capped = -1
        over = r_v <= eta
        eta_over = eta
        k = n_fixed + int(np.count_nonzero(over))
        if k == n_capped:  # no new row capped: eta is the level
            with np.errstate(over="ignore"):  # capped rows may overflow: min() takes c
                h = eta * e
            return np.minimum(h, c, out=h)
        n_capped = k
        # masked sums by einsum: boolean indexing is slower, and a BLAS dot can stall on a
        # busy machine (its threads spin)
        capped_c = c_fixed + float(np.einsum("i,i->", c_v, over))
        rest = budget - capped_c
        if rest <= 0:
            return np.where(ratio <= eta, c, 0.0)
        open_w = w_fixed + float(np.einsum("i,i->", e_v, ~over))
        if step == 0 and c.size > _BAND_MIN_N and _TINY < open_w < np.inf:
            nxt = rest / open_w  # the next level, still a lower bound
            top = nxt + 2.0 * (nxt - eta)
            above = ratio > top
            band = np.flatnonzero((ratio > eta) & ~above)
            c_v, e_v, r_v = c[band], e[band], ratio[band]
            w_fixed = float(np.einsum("i,i->", e, above))  # (not open_w minus the band's:
            c_fixed, n_fixed = capped_c, k  # weights may span the float range)
    h = np.where(ratio <= eta_over, c, 0.0)
    open_rows = (ratio > eta_over) & (c > 0)
    rows = np.flatnonzero(open_rows if off is None else open_rows & ~off)
    if rows.size == 0:  # every weighted row is capped: what is left of `rest` is rounding
        return h
    with np.errstate(divide="ignore"):
        lw_open = lw[rows] if log_weights is not None else np.log(w[rows])
    h[rows] = _fill_sorted(c[rows], lw_open, rest)
    return h


# -- the expected-shortfall kernel of RAP(g*) ------------------------------------------------


def log_psi(u: np.ndarray | float, sigma: float = 0.1) -> np.ndarray:
    """Logarithm of :func:`psi`, accurate far into the tail (``u / sigma`` up to ~1e150).

    With ``t = u / sigma``: ``psi = sigma * phi(t) * (1 - t * R(t))`` where
    ``R(t) = Phi(-t) / phi(t)`` is Mills' ratio, computed with ``scipy.special.erfcx``; beyond
    ``t = 50`` the bracket uses its asymptotic series ``t^-2 - 3 t^-4 + 15 t^-6 - ...``.
    """
    require(bool(np.isfinite(sigma)) and sigma > 0, "sigma", "a finite number > 0", sigma)
    t = np.asarray(u, dtype=np.float64) / sigma
    out = np.empty_like(t)
    neg = t < 0
    mid = (t >= 0) & (t <= 50.0)
    far = t > 50.0
    log_phi = -0.5 * t * t - _LOG_SQRT_2PI
    if neg.any():  # both terms positive: no cancellation
        tn = t[neg]
        out[neg] = np.log(np.exp(log_phi[neg]) - tn * special.ndtr(tn * -1.0))
    if mid.any():
        tm = t[mid]
        mills = np.sqrt(np.pi / 2.0) * special.erfcx(tm / np.sqrt(2.0))
        out[mid] = log_phi[mid] + np.log1p(-tm * mills)
    if far.any():
        inv2 = 1.0 / (t[far] * t[far])
        series = inv2 * (1 + inv2 * (-3 + inv2 * (15 + inv2 * (-105 + inv2 * 945))))
        out[far] = log_phi[far] + np.log(series)
    out = out + np.log(sigma)
    return out if out.ndim else out[()]


def psi(u: np.ndarray | float, sigma: float = 0.1) -> np.ndarray:
    """One-step expected shortfall ``psi(u) = E[(u + Z)_-]`` for ``Z ~ N(0, sigma^2)``.

    Closed form ``sigma * phi(u / sigma) - u * Phi(-u / sigma)``; ``u`` is a margin buffer
    as a fraction of notional (``1 / leverage``), so ``psi`` is the expected loss beyond
    equity per dollar of notional after one price shock of volatility ``sigma``.
    """
    return np.exp(log_psi(u, sigma))


# -- the policies -------------------------------------------------------------------------


class ProRata(ADLPolicy):
    """Wealth pro-rata: every row gives the same fraction ``B / sum(c)`` of its capacity.

    ``h = B * c / sum(c)`` (``= c`` when ``B >= sum(c)``): no overshoot in wealth space; lot
    rounding is then done by :func:`market.adl.base.execute`.
    """

    name: ClassVar[str] = "pro_rata"
    description: ClassVar[str] = "wealth pro-rata: the same fraction B/sum(c) of every capacity"
    source: ClassVar[str] = (
        "Chitra, Autodeleveraging: Impossibilities and Optimization (2512.01112) §2"
    )
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale", "monotone"})

    def __init__(self) -> None:
        pass

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``B * c / sum(c)``, or the whole capacity when the budget exceeds it."""
        c = snap.capacity
        total = float(c.sum())
        if total <= 0 or budget <= 0:
            return np.zeros_like(c)
        if budget >= total:
            return c.copy()
        return c * (budget / total)


class ContractProRata(ADLPolicy):
    """Contract pro-rata on the lot grid: haircuts proportional to the contracts held.

    Wealth space: ``h = water_fill(c, B, weights=lots * lot_value)`` (a row's weight is what
    closing its whole position would raise); rows with no contracts but spare capacity are
    used pro-rata only if the contract holders cannot cover ``B``.  Rounding lots go first to
    rows holding more lots, ties by account id.
    """

    name: ClassVar[str] = "contract_pro_rata"
    description: ClassVar[str] = "integer pro-rata to contracts held, rounding to larger holders"
    source: ClassVar[str] = (
        "Drift/Binance-style integer pro-rata; Chitra et al., ADL as Online Learning "
        "(2602.15182) benchmarks"
    )
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "scale"})

    def __init__(self) -> None:
        pass

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Capped fill proportional to ``lots * lot_value``."""
        weights = snap.lots.astype(np.float64) * snap.lot_value
        return capped_fill(snap.capacity, budget, weights)

    @staticmethod
    def _order_parts(snap: Snapshot) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """Score and tie order of the rounding order: lots held desc, account id, row.

        Lots are whole numbers and tie a lot, so when the ranges allow it the score packs
        lots and account id into one int64 (``lots * span - (account - min)``) and only rows
        equal on both are left to the tie order.
        """
        lots, acc = snap.lots, snap.account
        if lots.size:
            lo, hi = int(acc.min()), int(acc.max())
            span = hi - lo + 1
            if int(lots.max()) < 2**62 // span and int(lots.min()) >= 0:
                packed = lots * span - (acc - lo)
                return packed, lambda rows: np.lexsort((rows, -packed[rows]))
        lots_f = lots.astype(np.float64)
        return lots_f, lambda rows: np.lexsort((rows, acc[rows], -lots_f[rows]))

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Rows with more lots first, ties by account id."""

        return rank_rows(np.arange(snap.n), *self._order_parts(snap))

    def order(self, snap: Snapshot) -> Callable[[int], np.ndarray]:
        """:meth:`priority` as a prefix function: only the rows the rounding reaches are
        sorted."""
        return order_prefix(*self._order_parts(snap))


def _finite(value: object) -> bool:
    """True for a finite real number (not a bool)."""
    return (
        isinstance(value, (int, float, np.floating, np.integer))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def _check_fraction(policy: str, value: float) -> None:
    require(
        _finite(value) and 0.0 <= float(value) <= 1.0,
        f"{policy}.max_fraction",
        "a number in [0, 1]",
        value,
    )


class CappedProRata(ADLPolicy):
    """Capped pro-rata: a common haircut fraction, water-filled under per-row caps.

    ``cap'_i = max_fraction * c_i``, and with ``keep_maintenance`` also
    ``cap'_i <= max(equity_i - maintenance_i, 0)`` so nobody is pushed below maintenance.
    ``h = water_fill(cap', B, weights=c)``: every uncapped row gives the same fraction
    ``h_i / c_i``.  When ``sum(cap') < B`` the rest is a residual, reported by ``execute``
    (lots are placed on the capped capacities, so no rounding lot breaks a cap).

    The "monotone" claim holds for proportional caps (``keep_maintenance=False``, the
    default); maintenance caps are not proportional to capacity and can break it, so an
    instance with ``keep_maintenance=True`` does not claim it (``properties`` is per
    instance; read on the class it lists what every instance claims).
    """

    name: ClassVar[str] = "capped_pro_rata"
    description: ClassVar[str] = "pro-rata water-filled under a fraction cap and maintenance caps"
    source: ClassVar[str] = "Chitra 2512.01112, Alg. 'Capped Pro-Rata'"
    properties = PerInstance(  # type: ignore[assignment]
        frozenset({"relabeling", "sybil", "scale"}),
        lambda self: (
            frozenset({"relabeling", "sybil", "scale"})
            | (frozenset() if self.keep_maintenance else frozenset({"monotone"}))
        ),
    )

    def __init__(self, max_fraction: float = 1.0, keep_maintenance: bool = False) -> None:
        self.max_fraction = max_fraction
        self.keep_maintenance = keep_maintenance

    def caps(self, snap: Snapshot) -> np.ndarray:
        """The capped capacities ``cap'`` (validates the parameters)."""
        _check_fraction(self.name, self.max_fraction)
        require(
            isinstance(self.keep_maintenance, (bool, np.bool_)),
            f"{self.name}.keep_maintenance",
            "True or False",
            self.keep_maintenance,
        )
        cap = float(self.max_fraction) * snap.capacity
        if self.keep_maintenance:
            cap = np.minimum(cap, np.maximum(snap.equity - snap.maintenance, 0.0))
        return cap

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``water_fill(cap', B, weights=c)``; sums to ``min(B, sum(cap'))``."""
        return capped_fill(self.caps(snap), budget, weights=snap.capacity)


def _effective_leverage(snap: Snapshot) -> np.ndarray:
    """``snap.leverage`` with inf/NaN set to the largest finite value and negatives to 0."""
    lev = snap.leverage
    if lev.size == 0:
        return lev
    lo = float(lev.min())
    if lo >= 0 and float(lev.max()) < np.inf:
        return lev  # the usual case (NaN fails both tests): nothing to fix
    finite = np.isfinite(lev)
    out = np.where(finite, lev, -np.inf)
    top = float(out.max()) if finite.any() else 1.0
    np.copyto(out, top, where=~finite)
    if not lo >= 0:  # negatives (or NaN, already replaced) present
        np.maximum(out, 0.0, out=out)
    return out


class RiskAwareProRata(ADLPolicy):
    """Risk-aware pro-rata (RAP): the haircut fraction grows with effective leverage.

    With ``lambda_i`` = effective leverage (``snap.leverage``; inf/NaN count as the largest
    finite leverage in the snapshot, negatives as 0), the fraction ``h_i / c_i`` is
    proportional to ``lambda_i * g(lambda_i)`` under the cap ``max_fraction * c_i``:
    ``h = water_fill(max_fraction * c, B, weights=c * lambda * g(lambda))``.

    ``g``: ``"linear"`` (g = 1, levered pro-rata LPR), ``"power"`` (``lambda ** power``),
    ``"cvar"`` (``(lambda - threshold)_+``), ``"optimal"`` (``g*(l) = psi(1/l)``, so the weight
    is ``c * rho(lambda)`` with ``rho(l) = l * psi(1/l)``, the expected next-step shortfall per
    dollar of equity under ``N(0, sigma^2)`` shocks).  Weights are handled in log space, so
    rows whose ``g*`` underflows still rank by leverage.  Rows with zero weight are used only
    when the weighted rows cannot cover the budget (all zero: plain pro-rata).
    """

    name: ClassVar[str] = "rap"
    description: ClassVar[str] = "risk-aware pro-rata: haircut fraction grows with leverage"
    source: ClassVar[str] = "Chitra 2512.01112, Risk-Aware Pro-Rata (RAP)"
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale"})

    def __init__(
        self,
        g: str = "linear",
        power: float = 2.0,
        threshold: float = 1.0,
        sigma: float = 0.1,
        max_fraction: float = 1.0,
    ) -> None:
        self.g = g
        self.power = power
        self.threshold = threshold
        self.sigma = sigma
        self.max_fraction = max_fraction

    def _check(self) -> None:
        require(self.g in RAP_G, f"{self.name}.g", f"one of {list(RAP_G)}", self.g)
        require(
            _finite(self.power) and self.power >= 0,
            f"{self.name}.power",
            "a finite number >= 0",
            self.power,
        )
        require(
            _finite(self.threshold),
            f"{self.name}.threshold",
            "a finite number",
            self.threshold,
        )
        require(
            _finite(self.sigma) and self.sigma > 0,
            f"{self.name}.sigma",
            "a finite number > 0",
            self.sigma,
        )
        _check_fraction(self.name, self.max_fraction)

    def log_risk_weight(self, leverage: np.ndarray) -> np.ndarray:
        """``log(lambda * g(lambda))`` per row (``-inf`` where the weight is zero)."""
        self._check()
        lam = np.asarray(leverage, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_lam = np.log(lam)
            if self.g == "linear":
                return log_lam
            if self.g == "power":
                return (1.0 + float(self.power)) * log_lam
            if self.g == "cvar":
                return log_lam + np.log(np.maximum(lam - float(self.threshold), 0.0))
        # optimal: lambda * psi(1 / lambda); zero leverage has no shortfall
        out = np.full(lam.shape, -np.inf)
        pos = lam > 0
        out[pos] = log_lam[pos] + log_psi(1.0 / lam[pos], float(self.sigma))
        return out

    def caps(self, snap: Snapshot) -> np.ndarray:
        """The capped capacities ``max_fraction * c`` (validates the parameters)."""
        self._check()
        return float(self.max_fraction) * snap.capacity

    def _linear_weight(self, capacity: np.ndarray, lam: np.ndarray) -> np.ndarray | None:
        """``c * lambda * g(lambda)`` in plain floats, or None when it would leave their range.

        Every positive weight must be a normal float below 1e300 (so no weight overflows or
        flushes to zero), else the caller works with log weights.  ``"optimal"`` always uses
        logs (its shortfall underflows for low leverage).
        """
        if self.g == "optimal":
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            if self.g == "linear":
                factor = lam
            elif self.g == "power":
                factor = lam ** (1.0 + float(self.power))
            else:
                factor = lam * np.maximum(lam - float(self.threshold), 0.0)
            w = capacity * factor
        if not float(w.max(initial=0.0)) < 1e300:
            return None
        tiny = 1e-150  # both factors of every positive weight well inside the float range
        for x in (capacity, factor):
            if bool(((x > 0) & (x < tiny)).any()):
                return None
        return w

    def risk_weights(self, snap: Snapshot) -> np.ndarray:
        """The fill weights ``c * lambda * g(lambda)`` per row, as plain floats.

        For display and reference checks: extreme inputs overflow to ``inf`` or flush to 0
        here, while the allocation itself then works with log weights.
        """
        self._check()
        lam = _effective_leverage(snap)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            return np.exp(np.log(snap.capacity) + self.log_risk_weight(lam))

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Capped fill with weights ``c * lambda * g(lambda)`` (in logs when out of range)."""
        return self._fill(snap, budget, self.caps(snap))

    def _fill(self, snap: Snapshot, budget: float, cap: np.ndarray) -> np.ndarray:
        """:meth:`allocate_wealth` within the caps ``cap`` already computed."""
        lam = _effective_leverage(snap)
        w = self._linear_weight(snap.capacity, lam)
        if w is not None:
            return capped_fill(cap, budget, w)
        log_w = self.log_risk_weight(lam)
        with np.errstate(divide="ignore"):
            log_w = np.log(snap.capacity) + log_w
        return capped_fill(cap, budget, log_weights=log_w)
