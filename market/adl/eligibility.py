"""Eligibility: what may be taken from each position (``c_i``) and from the wave as a whole.

Every ADL wave picks haircuts ``0 <= h_i <= c_i``.  The cap ``c_i`` is a venue
choice, and it decides which facts the game shows: "profits only" (``c = max(upnl, 0)``) is
feasible only while the budget is below total profit; a fairness cap ``h_i <= alpha * base_i``
is infeasible when ``B > alpha * sum(base)``; a wave cap leaves part of the deficit as residual.

:class:`Eligibility` turns account arrays into the capacity vector (vectorised over rows) and
cuts the wave's budget; whatever it cuts is reported by the exchange as residual, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from market.adl.params import Params
from market.errors import require

#: The base amount per row each cap rule starts from.
CAP_RULES = ("pnl", "gains", "equity_buffer", "equity")
_CAP_CHOICES = f"one of {', '.join(CAP_RULES)}"

#: Which input arrays each cap rule reads.
_NEEDS = {
    "pnl": ("upnl",),
    "gains": ("upnl", "gains_total"),
    "equity_buffer": ("equity", "maintenance"),
    "equity": ("equity",),
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _nonneg_array(value: Any, field: str, n: int | None) -> np.ndarray:
    """:func:`_array`, also checked ``>= 0`` everywhere."""
    arr = _array(value, field, n)
    require(
        bool(np.all(arr >= 0)), f"eligibility.{field}", ">= 0 everywhere", float(arr.min(initial=0))
    )
    return arr


def _array(value: Any, field: str, n: int | None) -> np.ndarray:
    """A finite 1-d float array (a scalar is broadcast to ``n`` rows when ``n`` is known)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    require(arr.ndim == 1, f"eligibility.{field}", "a 1-d array", arr.shape)
    if n is not None:
        require(arr.shape[0] == n, f"eligibility.{field}", f"an array of length {n}", arr.shape[0])
    require(bool(np.all(np.isfinite(arr))), f"eligibility.{field}", "finite", "non-finite")
    return arr


@dataclass
class Eligibility(Params):
    """Per-position and per-wave caps on what ADL may take.

    Parameters (stored under their own names, scikit-learn style; see :meth:`get_params`):
        cap: the base per row, one of
            ``"pnl"`` — ``max(upnl, 0)``, the position's unrealised profit ("profits only");
            ``"gains"`` — ``max(gains_total + max(upnl, 0), 0)``, the realised-gains ledger
            plus positive unrealised PnL;
            ``"equity_buffer"`` — ``max(equity - buffer * maintenance, 0)``, equity above a
            multiple of maintenance margin;
            ``"equity"`` — ``max(equity, 0)``.
        buffer: multiple of maintenance margin kept back under ``"equity_buffer"`` (>= 0).
        account_fraction: ``alpha`` in ``[0, 1]``: a row gives at most ``alpha * base``
            (the fairness cap ``h_i <= alpha * base_i``).
        wave_fraction: in ``[0, 1]``: one wave raises at most ``wave_fraction * sum(base)``.

    Raises:
        InputError: on construction or :meth:`set_params` with a value outside the above.
    """

    name: ClassVar[str] = "eligibility"

    cap: str = "pnl"
    buffer: float = 1.0
    account_fraction: float = 1.0
    wave_fraction: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    # -- parameters ---------------------------------------------------------------------
    def validate(self) -> None:
        """Check every parameter; raise :class:`InputError` naming the first bad one."""
        require(
            isinstance(self.cap, str) and self.cap in CAP_RULES,
            "eligibility.cap",
            _CAP_CHOICES,
            self.cap,
        )
        require(
            _number(self.buffer) and bool(np.isfinite(self.buffer)) and self.buffer >= 0,
            "eligibility.buffer",
            "a finite number >= 0",
            self.buffer,
        )
        for name in ("account_fraction", "wave_fraction"):
            value = getattr(self, name)
            require(
                _number(value) and bool(np.isfinite(value)) and 0.0 <= value <= 1.0,
                f"eligibility.{name}",
                "a number in [0, 1]",
                value,
            )

    # -- the work -----------------------------------------------------------------------
    def base(
        self,
        upnl: Any = None,
        gains_total: Any = None,
        equity: Any = None,
        maintenance: Any = None,
    ) -> np.ndarray:
        """The base amount per row under :attr:`cap` (before ``account_fraction``), >= 0.

        Only the arrays the cap rule reads are required (the others may be None).
        ``gains_total`` may also be the ``(n, 3)`` ledger; it is summed over its columns.

        Raises:
            InputError: if a needed array is missing, not 1-d, of mismatched length or not
                finite.
        """
        self.validate()
        given = {
            "upnl": upnl,
            "gains_total": gains_total,
            "equity": equity,
            "maintenance": maintenance,
        }
        if gains_total is not None and "gains_total" in _NEEDS[self.cap]:  # summed if read
            g = np.asarray(gains_total, dtype=np.float64)
            if g.ndim == 2:
                given["gains_total"] = g.sum(axis=1)
        n: int | None = None
        arrays: dict[str, np.ndarray] = {}
        for name in _NEEDS[self.cap]:
            value = given[name]
            if value is None:
                require(False, f"eligibility.{name}", f"given when cap={self.cap!r}")
            arrays[name] = _array(value, name, n)
            if n is None:
                n = arrays[name].shape[0]
        if self.cap == "pnl":
            return np.maximum(arrays["upnl"], 0.0)
        if self.cap == "gains":
            return np.maximum(arrays["gains_total"] + np.maximum(arrays["upnl"], 0.0), 0.0)
        if self.cap == "equity_buffer":
            buffered = arrays["equity"] - float(self.buffer) * arrays["maintenance"]
            return np.maximum(buffered, 0.0)
        return np.maximum(arrays["equity"], 0.0)

    def capacity(
        self,
        upnl: Any = None,
        gains_total: Any = None,
        equity: Any = None,
        maintenance: Any = None,
        lots: Any = None,
        lot_value: Any = None,
        closes_lots: bool = True,
    ) -> np.ndarray:
        """``c_i = alpha * base_i``, and ``<= lots_i * lot_value_i`` when the rule closes lots.

        A rule that force-closes positions cannot raise more from a row than closing all of it
        does, so with ``closes_lots=True`` the cap is also limited by ``lots * lot_value``
        (negative products count as zero).  Vectorised over rows.

        Raises:
            InputError: as :meth:`base`; also when ``closes_lots`` and ``lots`` or ``lot_value``
                is missing, or ``lots`` is negative.
        """
        require(
            isinstance(closes_lots, bool | np.bool_),
            "eligibility.closes_lots",
            "True or False",
            closes_lots,
        )
        base = self.base(upnl, gains_total, equity, maintenance)
        n = base.shape[0]
        if closes_lots:
            require(lots is not None, "eligibility.lots", "given when closes_lots=True")
            require(lot_value is not None, "eligibility.lot_value", "given when closes_lots=True")
            lt = _nonneg_array(lots, "lots", n)
            lv = _array(lot_value, "lot_value", n)
        c = float(self.account_fraction) * base
        if closes_lots:
            c = np.minimum(c, np.maximum(lt * lv, 0.0))
        return c

    def budget(self, budget: float, capacity: Any, base: Any = None) -> tuple[float, float]:
        """The budget this wave may raise, and the part cut from it: ``(B_eff, B - B_eff)``.

        ``B_eff = min(B, sum(capacity), wave_fraction * sum(base))``; ``base`` defaults to
        ``capacity`` (pass :meth:`base` to cap the wave relative to the uncapped pool).  The cut
        includes what the capacities cannot cover, so the exchange reports ``cut`` plus the
        policy's own residual as the wave's residual and counts nothing twice.

        Raises:
            InputError: if ``budget`` is not a finite number >= 0 or the arrays are not finite
                and >= 0.
        """
        self.validate()
        require(
            _number(budget) and bool(np.isfinite(budget)) and budget >= 0,
            "eligibility.budget",
            "a finite number >= 0",
            budget,
        )
        cap = self.checked_capacity(capacity)
        pool = cap
        if base is not None:
            pool = _nonneg_array(base, "base", None)
        return self.budget_of_sums(float(budget), float(cap.sum()), float(pool.sum()))

    @staticmethod
    def checked_capacity(capacity: Any) -> np.ndarray:
        """``capacity`` as a 1-d float array, checked finite and >= 0 everywhere (what
        :meth:`budget` requires; a caller holding many waves' rows checks them once).

        Raises:
            InputError: if it is not a finite 1-d array >= 0.
        """
        return _nonneg_array(capacity, "capacity", None)

    def budget_of_sums(
        self, budget: float, capacity_sum: float, base_sum: float | None = None
    ) -> tuple[float, float]:
        """:meth:`budget` from the wave's sums (``base_sum`` defaults to ``capacity_sum``),
        for callers whose inputs are already checked: the same arithmetic, no validation."""
        pool = capacity_sum if base_sum is None else base_sum
        b_eff = max(min(budget, capacity_sum, float(self.wave_fraction) * pool), 0.0)
        return b_eff, budget - b_eff
