"""The ADL plug-in interface: snapshot in, allocation out.

Every ADL wave reduces to one object (design.md §1): given a budget ``B``, an eligible set of
positions and a cap ``c_i`` for each, pick haircuts ``0 <= h_i <= c_i`` with ``sum(h) >= B`` or
report the residual ``B - sum(h)`` when ``sum(c) < B``.

A policy works in *wealth space* (dollars per account) and is executed in *contract space*:
rules that force-close positions close whole lots, each raising ``lot_value`` dollars (the gap
between the mark and the rule's execution price, times the lot size).  :func:`execute` turns a
wealth-space vector into lots by flooring every account and then adding single lots, largest
remainder first, until the budget is met, so that ``B <= sum(h) < B + max(lot_value)``.

Policies follow the scikit-learn estimator habit: parameters are stored in ``__init__`` under
their own names and nothing else; :meth:`ADLPolicy.get_params` reads them back, so sweeps and
cloning need no special code.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from market.errors import InputError, require

#: Properties a policy may claim; :func:`market.adl.check_adl_policy` verifies each claim.
KNOWN_PROPERTIES = frozenset(
    {
        "relabeling",  # permuting accounts permutes the haircuts
        "sybil",  # splitting an account into parts does not change what the group pays
        "scale",  # scaling every capacity and the budget by s scales haircuts by s
        "monotone",  # larger capacity never leaves a smaller surviving endowment
        "principal_protect",  # principal untouched while the gains layer can cover the budget
    }
)

#: Price rules: where force-closed lots are executed (sets ``lot_value``).
PRICE_RULES = ("bankruptcy", "prev_mark", "none")

#: Which positions are eligible: the side opposite the liquidated flow, or every open position.
SIDE_RULES = ("opposite", "all")


def _readonly(a: Any, dtype: Any, n: int | None = None, name: str = "") -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if n is not None and arr.ndim >= 1 and arr.shape[0] != n:
        raise InputError(f"snapshot.{name}", f"an array of length {n}", f"length {arr.shape[0]}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Snapshot:
    """A read-only view of the eligible positions in one market at one ADL wave.

    One row per eligible position.  Arrays are copies with ``writeable=False``, so a policy
    cannot change the exchange through them.

    Attributes:
        account: account index in the exchange (or any id), int64.
        side: +1 long, -1 short.
        lots: position size in whole lots (absolute), int64.
        entry: average entry price of the position.
        upnl: unrealised PnL of this position at the mark, dollars.
        cash: account cash (collateral), dollars.
        equity: account equity (cash + unrealised PnL over all markets), dollars.
        account_upnl: unrealised PnL of the account over all markets, dollars.
        leverage: account notional over equity (inf when equity <= 0).
        maintenance: account maintenance margin requirement, dollars.
        gains: realised-gains ledger per account, shape (n, 3): recent, older, settled.
        lot_value: dollars raised by force-closing one lot at the policy's price rule.
        capacity: ``c_i``, the most that may be taken from the row (eligibility applied).
        group: owner id; accounts with the same group belong to one economic owner (Sybils).
        mark: current mark price of the market.
        prev_mark: mark price one step earlier.
        bankruptcy_price: the liquidated order's bankruptcy(-equivalent) price.
        lot_size: base units per lot.
        market: market index.
    """

    account: np.ndarray
    side: np.ndarray
    lots: np.ndarray
    entry: np.ndarray
    upnl: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    account_upnl: np.ndarray
    leverage: np.ndarray
    maintenance: np.ndarray
    gains: np.ndarray
    lot_value: np.ndarray
    capacity: np.ndarray
    group: np.ndarray
    mark: float = 1.0
    prev_mark: float = 1.0
    bankruptcy_price: float = 1.0
    lot_size: float = 1.0
    market: int = 0

    @property
    def n(self) -> int:
        """Number of eligible rows."""
        return int(self.capacity.shape[0])

    @property
    def notional(self) -> np.ndarray:
        """Position notional at the mark, dollars."""
        return self.lots * self.lot_size * self.mark

    @property
    def gains_layer(self) -> np.ndarray:
        """Junior money per row: realised-gains ledger plus positive unrealised PnL."""
        g = self.gains
        return g[:, 0] + g[:, 1] + g[:, 2] + np.maximum(self.upnl, 0.0)

    @classmethod
    def build(
        cls,
        capacity: Any,
        *,
        lots: Any = None,
        lot_value: Any = None,
        side: Any = None,
        entry: Any = None,
        upnl: Any = None,
        cash: Any = None,
        equity: Any = None,
        account_upnl: Any = None,
        leverage: Any = None,
        maintenance: Any = None,
        gains: Any = None,
        account: Any = None,
        group: Any = None,
        mark: float = 1.0,
        prev_mark: float | None = None,
        bankruptcy_price: float | None = None,
        lot_size: float = 1.0,
        market: int = 0,
    ) -> Snapshot:
        """Build a snapshot from arrays, filling sensible defaults for what is not given.

        Defaults describe winners holding one-dollar lots at the mark: ``lot_value = 1`` and
        ``lots = ceil(capacity)``, ``upnl = capacity``, ``equity = 2 * capacity``, leverage 1.
        Used by tests, the conformance checker and the oct10 replay.
        """
        cap = np.asarray(capacity, dtype=np.float64)
        require(cap.ndim == 1, "snapshot.capacity", "a 1-d array", cap.shape)
        require(bool(np.all(np.isfinite(cap))), "snapshot.capacity", "finite", "non-finite")
        require(
            bool(np.all(cap >= 0)),
            "snapshot.capacity",
            ">= 0 everywhere",
            float(cap.min(initial=0)),
        )
        n = cap.shape[0]
        lv = (
            np.ones(n) if lot_value is None else np.broadcast_to(np.asarray(lot_value, float), (n,))
        )
        if lots is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                lt = np.where(lv > 0, np.ceil(cap / np.where(lv > 0, lv, 1.0) - 1e-12), 0)
            lt = np.maximum(lt, 0).astype(np.int64)
        else:
            lt = np.broadcast_to(np.asarray(lots, np.int64), (n,))
        up = cap if upnl is None else np.broadcast_to(np.asarray(upnl, float), (n,))
        eq = 2.0 * cap if equity is None else np.broadcast_to(np.asarray(equity, float), (n,))
        cs = eq - up if cash is None else np.broadcast_to(np.asarray(cash, float), (n,))
        notional = lt * lot_size * mark
        if leverage is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                lev = np.where(eq > 0, notional / np.where(eq > 0, eq, 1.0), np.inf)
        else:
            lev = np.broadcast_to(np.asarray(leverage, float), (n,))
        g = np.zeros((n, 3)) if gains is None else np.asarray(gains, float).reshape(n, -1)
        if g.shape[1] == 1:
            g = np.hstack([g, np.zeros((n, 2))])
        acc = np.arange(n, dtype=np.int64) if account is None else account
        return cls(
            account=_readonly(acc, np.int64, n, "account"),
            side=_readonly(
                np.ones(n) if side is None else np.broadcast_to(side, (n,)), np.int8, n, "side"
            ),
            lots=_readonly(lt, np.int64, n, "lots"),
            entry=_readonly(
                np.full(n, mark) if entry is None else np.broadcast_to(entry, (n,)),
                np.float64,
                n,
                "entry",
            ),
            upnl=_readonly(up, np.float64, n, "upnl"),
            cash=_readonly(cs, np.float64, n, "cash"),
            equity=_readonly(eq, np.float64, n, "equity"),
            account_upnl=_readonly(
                up if account_upnl is None else np.broadcast_to(account_upnl, (n,)),
                np.float64,
                n,
                "account_upnl",
            ),
            leverage=_readonly(lev, np.float64, n, "leverage"),
            maintenance=_readonly(
                np.zeros(n) if maintenance is None else np.broadcast_to(maintenance, (n,)),
                np.float64,
                n,
                "maintenance",
            ),
            gains=_readonly(g, np.float64, n, "gains"),
            lot_value=_readonly(lv, np.float64, n, "lot_value"),
            capacity=_readonly(cap, np.float64, n, "capacity"),
            group=_readonly(acc if group is None else group, np.int64, n, "group"),
            mark=float(mark),
            prev_mark=float(mark if prev_mark is None else prev_mark),
            bankruptcy_price=float(mark if bankruptcy_price is None else bankruptcy_price),
            lot_size=float(lot_size),
            market=int(market),
        )

    def take(self, idx: np.ndarray) -> Snapshot:
        """A snapshot of the rows ``idx`` (in that order)."""
        kw = {
            name: getattr(self, name)[idx]
            for name in (
                "account",
                "side",
                "lots",
                "entry",
                "upnl",
                "cash",
                "equity",
                "account_upnl",
                "leverage",
                "maintenance",
                "gains",
                "lot_value",
                "capacity",
                "group",
            )
        }
        for arr in kw.values():
            arr.setflags(write=False)
        return Snapshot(
            **kw,
            mark=self.mark,
            prev_mark=self.prev_mark,
            bankruptcy_price=self.bankruptcy_price,
            lot_size=self.lot_size,
            market=self.market,
        )

    def with_capacity(self, capacity: np.ndarray) -> Snapshot:
        """The same snapshot with another capacity vector (used by layered rules)."""
        cap = np.array(capacity, dtype=np.float64)
        cap.setflags(write=False)
        return Snapshot(**{**self.__dict__, "capacity": cap})


@dataclass(frozen=True)
class Allocation:
    """What a policy decided for one wave, in both wealth and contract space.

    Attributes:
        haircut: dollars taken per snapshot row (``0 <= haircut <= capacity``).
        lots: whole lots force-closed per row (0 for rules that do not close positions).
        price: execution price of the closed lots per row (nan where nothing was closed).
        from_gains: part of ``haircut`` taken from the gains layer (ledger + positive PnL).
        from_principal: part of ``haircut`` taken from principal.
        budget: the budget ``B`` the policy was asked to raise.
        residual: ``max(B - sum(haircut), 0)``: what could not be covered, reported not hidden.
        overshoot: ``max(sum(haircut) - B, 0)``: what lot rounding took beyond the budget.
        granularity: ``Delta``, the largest lot value among rows that could be touched.
        wealth: the wealth-space vector before lot rounding (for diagnostics and checks).
    """

    haircut: np.ndarray
    lots: np.ndarray
    price: np.ndarray
    from_gains: np.ndarray
    from_principal: np.ndarray
    budget: float
    residual: float
    overshoot: float
    granularity: float
    wealth: np.ndarray = field(repr=False)

    @property
    def raised(self) -> float:
        """Total dollars raised, ``sum(haircut)``."""
        return float(self.haircut.sum())

    @property
    def touched(self) -> int:
        """Number of rows with a positive haircut."""
        return int(np.count_nonzero(self.haircut > 0))


class ADLPolicy:
    """Base class of every ADL policy.

    Subclasses set the class attributes below, store their constructor arguments under the
    same names, and implement :meth:`allocate_wealth` (or override :meth:`allocate` when they
    work in contract space natively).

    Class attributes:
        name: registry name.
        description: one line for ``adlgame policies``.
        source: venue document or paper the rule comes from.
        properties: the claims :func:`check_adl_policy` verifies (subset of KNOWN_PROPERTIES).
        price_rule: ``"bankruptcy"``, ``"prev_mark"`` (force-close lots) or ``"none"``
            (a cash debit without closing positions, e.g. Drift's funding adjustment).
        sides: ``"opposite"`` (winners facing the liquidated flow) or ``"all"`` open positions.
        exact_small_only: True for rules that are only tractable on small instances.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    properties: ClassVar[frozenset[str]] = frozenset()
    price_rule: ClassVar[str] = "bankruptcy"
    sides: ClassVar[str] = "opposite"
    exact_small_only: ClassVar[bool] = False

    # -- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, read back from the attributes of the same names."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and isinstance(value, ADLPolicy):
                out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> ADLPolicy:
        """Set constructor parameters by name; unknown names raise :class:`InputError`."""
        valid = set(self._param_names())
        for key, value in params.items():
            head, _, rest = key.partition("__")
            if head not in valid:
                raise InputError(f"{self.name}.{head}", f"one of {sorted(valid)}", head)
            if rest:
                getattr(self, head).set_params(**{rest: value})
            else:
                setattr(self, key, value)
        return self

    def clone(self) -> ADLPolicy:
        """A fresh policy with the same parameters."""
        return type(self)(**dict(self.get_params(deep=False).items()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # -- the work ----------------------------------------------------------------------
    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Dollars to take per row, ``0 <= h <= capacity``, ``sum(h) = min(B, sum(capacity))``."""
        raise NotImplementedError

    def priority(self, snap: Snapshot) -> np.ndarray | None:
        """Optional order (row indices, first = first to give) used to place rounding lots."""
        return None

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Allocate the budget over the snapshot: wealth space, then whole lots."""
        h = np.asarray(self.allocate_wealth(snap, budget), dtype=np.float64)
        return execute(snap, budget, h, price_rule=self.price_rule, order=self.priority(snap))

    def __call__(self, snap: Snapshot, budget: float) -> Allocation:
        """Validate the inputs and allocate; see :meth:`allocate`."""
        require(
            isinstance(snap, Snapshot), "snapshot", "a market.adl.Snapshot", type(snap).__name__
        )
        require(bool(np.isfinite(budget)) and budget >= 0, "budget", "a finite number >= 0", budget)
        return self.allocate(snap, float(budget))


def _tol(budget: float) -> float:
    return 1e-9 * max(1.0, abs(budget))


def execute(
    snap: Snapshot,
    budget: float,
    wealth: np.ndarray,
    *,
    price_rule: str = "bankruptcy",
    order: np.ndarray | None = None,
) -> Allocation:
    """Turn a wealth-space haircut vector into an :class:`Allocation` on the lot grid.

    With ``price_rule="none"`` the dollars are taken as they are (no positions closed).
    Otherwise every row is floored to whole lots (so no row exceeds its cap), then lots are
    added until the budget is met: for ranked rules (``order`` given) to the rows the policy
    wanted a part lot from, in its order; for smooth rules (``order=None``) where one more lot
    adds the smallest share of the row's capacity, so rounding does not create the largest
    haircut.  The overshoot this causes is below the largest lot value added.

    Raises:
        InputError: if ``wealth`` is not finite, negative, or above ``capacity``.
    """
    h = np.asarray(wealth, dtype=np.float64)
    cap = snap.capacity
    tol = _tol(budget)
    require(h.shape == cap.shape, "allocation.haircut", f"an array of shape {cap.shape}", h.shape)
    require(bool(np.all(np.isfinite(h))), "allocation.haircut", "finite", "non-finite")
    require(bool(np.all(h >= -tol)), "allocation.haircut", ">= 0", float(h.min(initial=0)))
    require(
        bool(np.all(h <= cap + tol * (1 + cap))),
        "allocation.haircut",
        "<= capacity on every row",
        float(np.max(h - cap, initial=0)),
    )
    h = np.clip(h, 0.0, cap)
    n = snap.n
    if price_rule == "none" or n == 0:
        lots = np.zeros(n, dtype=np.int64)
        price = np.full(n, np.nan)
        taken = h
        gran = 0.0
    else:
        v = snap.lot_value
        pos_v = v > 0
        safe_v = np.where(pos_v, v, 1.0)
        max_lots = np.where(
            pos_v,
            np.minimum(snap.lots, np.floor(cap / safe_v * (1.0 + 1e-12) + 1e-12)),
            0,
        ).astype(np.int64)
        exact = h / safe_v
        lots = np.where(pos_v, np.floor(exact + 1e-9), 0).astype(np.int64)
        lots = np.minimum(lots, max_lots)
        short = budget - float((lots * v).sum())
        if short > tol:
            spare = max_lots - lots
            cand = np.flatnonzero(spare > 0)
            if cand.size:
                if order is None:
                    # smooth rules: the extra lot goes where it adds the least burden
                    # (smallest resulting share of capacity), ties by row
                    key = (lots[cand] + 1) * v[cand] / np.maximum(cap[cand], 1e-300)
                else:
                    # ranked rules: rows the policy wanted a part lot from, in its order
                    frac = exact[cand] - np.floor(exact[cand] + 1e-9)
                    rank = np.full(n, n, dtype=np.int64)
                    base = np.asarray(order)
                    rank[base] = np.arange(base.size)
                    key = (rank[cand] - n * (frac > 1e-9)).astype(np.float64)
                vc = v[cand]
                if vc.size and vc.min() == vc.max() and vc.size * vc[0] >= short - tol:
                    # one lot value for every row (what the exchange produces): exactly
                    # ceil(short / v) rows get one more lot; an O(n) partition finds them
                    need = min(int(np.ceil((short - tol) / vc[0])), cand.size)
                    if need < cand.size:
                        cand = cand[np.argpartition(key, need - 1)[:need]]
                    lots[cand] += 1
                    cand = cand[:0]
                else:
                    cand = _first_by_key(cand, key, short / float(vc.min()) + 1.0)
                one = np.cumsum(v[cand])
                if cand.size == 0:
                    pass
                elif one[-1] >= short - tol:
                    # one extra lot each, in priority order, until the budget is met
                    k = int(np.searchsorted(one, short - tol))
                    lots[cand[: k + 1]] += 1
                else:
                    # the policy left more than a lot per row: fill spare lots in order
                    cum = np.cumsum(spare[cand] * v[cand])
                    k = int(np.searchsorted(cum, short - tol))
                    lots[cand[: min(k, cand.size)]] += spare[cand[: min(k, cand.size)]]
                    if k < cand.size:
                        before = cum[k - 1] if k > 0 else 0.0
                        need = int(np.ceil((short - before) / v[cand[k]] - 1e-9))
                        lots[cand[k]] += min(max(need, 0), spare[cand[k]])
        taken = lots * v
        touched = lots > 0
        gran = float(v[touched].max()) if touched.any() else 0.0
        sgn = -snap.side.astype(np.float64)  # a long is closed below the mark, a short above
        price = np.where(touched, snap.mark + sgn * v / snap.lot_size, np.nan)
    raised = float(taken.sum())
    layer = np.maximum(snap.gains_layer, 0.0)
    from_gains = np.minimum(taken, layer)
    return Allocation(
        haircut=taken,
        lots=lots,
        price=price,
        from_gains=from_gains,
        from_principal=taken - from_gains,
        budget=float(budget),
        residual=max(budget - raised, 0.0) if budget - raised > tol else 0.0,
        overshoot=max(raised - budget, 0.0) if raised - budget > tol else 0.0,
        granularity=gran,
        wealth=h,
    )


def _first_by_key(cand: np.ndarray, key: np.ndarray, need: float) -> np.ndarray:
    """Candidates ordered by (key, row), keeping at least the first ``need`` of them.

    When few are needed, an O(n) partition picks them before the sort, which keeps the lot
    rounding linear at a million rows.
    """
    k = int(min(np.ceil(need), cand.size))
    if k < cand.size // 4:
        part = np.argpartition(key, k)[: k + 1]
        cand, key = cand[part], key[part]
    return cand[np.lexsort((cand, key))]


def water_fill(
    capacity: np.ndarray, budget: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Capped proportional allocation: ``h_i = min(c_i, eta * w_i)`` with ``sum(h) = B``.

    ``weights=capacity`` gives (capped) pro-rata, where every row gives the same share of its
    capacity until it is exhausted; ``weights=None`` gives equal dollar levels.  Rows with zero
    weight give nothing unless the weighted rows cannot cover the budget, in which case they
    share the rest pro rata to capacity.  Vectorised by sorting the ratios ``c_i / w_i`` once
    (O(n log n)).  Returns ``capacity`` when ``B >= sum(capacity)``.
    """
    c = np.asarray(capacity, dtype=np.float64)
    w = np.ones_like(c) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(c.sum())
    if budget >= total or c.size == 0:
        return c.copy()
    h = np.zeros_like(c)
    if budget <= 0:
        return h
    active = (w > 0) & (c > 0)
    ca, wa = c[active], w[active]
    weighted_total = float(ca.sum())
    if weighted_total <= budget:
        h[active] = ca
        rest = ~active & (c > 0)
        if rest.any():
            h[rest] = c[rest] * min((budget - weighted_total) / float(c[rest].sum()), 1.0)
        return h
    ratio = ca / wa
    idx = np.argsort(ratio, kind="stable")
    r_sorted, c_sorted, w_sorted = ratio[idx], ca[idx], wa[idx]
    # If the level eta lies between r_sorted[j-1] and r_sorted[j], rows < j are capped and
    # rows >= j get eta * w: sum = cumc[j] + eta * tailw[j].
    cumc = np.concatenate([[0.0], np.cumsum(c_sorted)])
    tailw = np.concatenate([np.cumsum(w_sorted[::-1])[::-1], [0.0]])
    level_at = cumc[:-1] + r_sorted * tailw[:-1]  # raised when eta = r_sorted[j]
    j = min(int(np.searchsorted(level_at, budget, side="left")), r_sorted.size - 1)
    eta = (budget - cumc[j]) / tailw[j]
    h[active] = np.minimum(ca, eta * wa)
    return h
