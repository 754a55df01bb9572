"""The ADL plug-in interface: snapshot in, allocation out.

Every ADL wave reduces to one object: given a budget ``B``, an eligible set of
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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from market.adl.params import Params
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

#: How an ADL wave is sized: ``"budget"`` closes just enough lots to raise the
#: budget (the research idealisation); ``"position"`` matches the bankrupt position's lots
#: against the ranked counterparties at the rule's price, so what winners lose is whatever
#: those lots are worth there, above or below the deficit (what production queues do).
EXECUTIONS = ("budget", "position")


def _readonly(a: Any, dtype: Any, n: int | None = None, name: str = "") -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if n is not None and arr.ndim >= 1 and arr.shape[0] != n:
        raise InputError(f"snapshot.{name}", f"an array of length {n}", f"length {arr.shape[0]}")
    arr.setflags(write=False)
    return arr


#: The per-row array fields of a :class:`Snapshot` (one entry per eligible position).
SNAPSHOT_ARRAYS = (
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
        wave: the exchange's wave counter (0 outside an exchange); rules that draw a fresh
            pseudo-random start every wave (dYdX) read it.
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
    wave: int = 0

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
        wave: int = 0,
    ) -> Snapshot:
        """Build a snapshot from arrays, filling sensible defaults for what is not given.

        Defaults describe winners holding one-dollar lots at the mark: ``lot_value = 1`` and
        ``lots = ceil(capacity)``, ``upnl = capacity``, ``equity = 2 * capacity``, leverage 1.
        ``gains`` takes 1 to 3 ledger columns per row (recent, older, settled; missing ones are
        zero), also for an empty snapshot.  Used by tests, the conformance checker and the
        oct10 replay.
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
        g = np.zeros((n, 3)) if gains is None else np.asarray(gains, dtype=np.float64)
        if gains is not None:
            cols = g.size // n if n else (g.shape[-1] if g.ndim == 2 else 1)
            require(
                (g.size == n * cols if n else g.size == 0) and 1 <= cols <= 3,
                "snapshot.gains",
                f"n={n} rows of 1 to 3 ledger values (recent, older, settled)",
                g.shape,
            )
            g = g.reshape(n, cols)
            if cols < 3:
                g = np.hstack([g, np.zeros((n, 3 - cols))])
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
            wave=int(wave),
        )

    def take(self, idx: np.ndarray) -> Snapshot:
        """A snapshot of the rows ``idx`` (in that order)."""
        kw = {name: getattr(self, name)[idx] for name in SNAPSHOT_ARRAYS}
        for arr in kw.values():
            arr.setflags(write=False)
        return Snapshot(
            **kw,
            mark=self.mark,
            prev_mark=self.prev_mark,
            bankruptcy_price=self.bankruptcy_price,
            lot_size=self.lot_size,
            market=self.market,
            wave=self.wave,
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


class PerInstance:
    """A class attribute whose value on an instance is computed from the instance's params.

    Read on the class it gives ``default`` (what every instance can claim, for listings); read
    on an instance it calls ``compute(instance)``.  Used for claims and price rules that depend
    on a parameter (``CappedProRata(keep_maintenance=True)`` is not monotone) or follow an
    inner policy (seniority, hybrids).
    """

    def __init__(self, default: Any, compute: Callable[[Any], Any]) -> None:
        self.default = default
        self.compute = compute

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.default
        return self.compute(obj)


class ADLPolicy(Params):
    """Base class of every ADL policy.

    Subclasses set the class attributes below, store their constructor arguments under the
    same names (and nothing else: a policy holds no state between calls), and implement
    :meth:`allocate_wealth` (or override :meth:`allocate` when they work in contract space
    natively, or to compute something once for both the wealth vector and the rounding order).

    The contract of :meth:`allocate_wealth`: ``0 <= h <= caps(snap) <= capacity`` and
    ``sum(h) == min(B, sum(caps(snap)))`` to about 1e-9 relative.

    Optional hooks:

    * :meth:`priority` -- the row order :func:`execute` uses to place rounding lots (ranked
      rules); ``None`` for smooth rules.
    * :meth:`caps` -- the per-row limits the rule holds itself to.  The default is the
      capacity.  A rule that holds money back on purpose (a fairness cap ``h_i <= alpha c_i``,
      "keep maintenance margin") returns its own caps; :func:`check_adl_policy` then computes
      what the lot grid can raise within those caps instead of within the capacity, and also
      checks ``haircut <= caps(snap)``.
    * :meth:`wave_caps` -- the same for one wave of a given budget, when the limits depend on
      the wave (default: :meth:`caps`).

    Class attributes (a :class:`PerInstance` may stand in for one that depends on parameters):
        name: registry name.
        description: one line for ``adlgame policies``.
        source: venue document or paper the rule comes from.
        properties: the claims :func:`check_adl_policy` verifies (subset of KNOWN_PROPERTIES).
        price_rule: ``"bankruptcy"``, ``"prev_mark"`` (force-close lots) or ``"none"``
            (a cash debit without closing positions, e.g. Drift's funding adjustment).
        sides: ``"opposite"`` (winners facing the liquidated flow) or ``"all"`` open positions.
        exact_small_only: True for rules that are only tractable on small instances.
        default_cap: the eligibility cap the rule is defined on (one of
            :data:`market.adl.eligibility.CAP_RULES`): ``"pnl"`` (profits only) for the
            research rules, ``"gains"`` for the seniority ledger, ``"equity"`` (whatever the
            account holds) for venues that close positions without a profit cap.  The exchange,
            the game and every experiment apply it unless the configuration names another.
        default_execution: ``"budget"`` or ``"position"`` (:data:`EXECUTIONS`): how the venue
            the rule comes from sizes a wave; overridable per exchange or scenario.
        default_shortfall: the shortfall bearer the venue uses (``None``: the exchange's or
            the scenario's default), e.g. ``"socialised"`` for Deribit.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    properties: ClassVar[frozenset[str]] = frozenset()
    price_rule: ClassVar[str] = "bankruptcy"
    sides: ClassVar[str] = "opposite"
    exact_small_only: ClassVar[bool] = False
    default_cap: ClassVar[str] = "pnl"
    default_execution: ClassVar[str] = "budget"
    default_shortfall: ClassVar[str | None] = None

    # -- the work ----------------------------------------------------------------------
    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Dollars to take per row, ``0 <= h <= capacity``, ``sum(h) = min(B, sum(capacity))``."""
        raise NotImplementedError

    def priority(self, snap: Snapshot) -> np.ndarray | None:
        """Optional order (row indices, first = first to give) used to place rounding lots."""
        return None

    def caps(self, snap: Snapshot) -> np.ndarray:
        """Per-row limits the rule holds itself to (``<= capacity``); default the capacity.

        Override when the rule keeps part of the capacity out of reach on purpose; the
        conformance checker measures the budget it must raise within these caps.
        """
        return snap.capacity

    def wave_caps(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Per-row limits the rule holds itself to in one wave of budget ``budget``.

        Default :meth:`caps`.  Override when what a row may give depends on the wave itself,
        as on dYdX, which skips an account whose offset would take it past bankruptcy and
        stops after a fixed number of visits: :func:`check_adl_policy` then measures the
        budget within these limits (and checks ``haircut <= wave_caps``), and the rest is the
        rule's reported residual.
        """
        return self.caps(snap)

    def order(self, snap: Snapshot) -> np.ndarray | Callable[[int], np.ndarray] | None:
        """The order the lot rounding places lots in (:func:`execute`'s ``order``).

        Default :meth:`priority` (None: a smooth rule's unbiased rounding).  A ranked rule
        may return a prefix function (:func:`market.adl.ordering.order_prefix`) so that only
        the head of its order the rounding reaches is sorted.
        """
        return self.priority(snap)

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Allocate the budget: wealth space within :meth:`caps`, then whole lots placed in
        :meth:`order` (never above the caps).  Rules override the hooks, rarely this."""
        cap = self.caps(snap)
        h = np.asarray(self.allocate_wealth(snap, budget), dtype=np.float64)
        grid = snap if cap is snap.capacity else snap.with_capacity(cap)
        return execute(grid, budget, h, price_rule=self.price_rule, order=self.order(snap))

    def __call__(self, snap: Snapshot, budget: float) -> Allocation:
        """Validate the inputs and allocate; see :meth:`allocate`."""
        require(
            isinstance(snap, Snapshot), "snapshot", "a market.adl.Snapshot", type(snap).__name__
        )
        require(bool(np.isfinite(budget)) and budget >= 0, "budget", "a finite number >= 0", budget)
        return self.allocate(snap, float(budget))


def _tol(budget: float) -> float:
    return 1e-9 * max(1.0, abs(budget))


def _shared_value(v: np.ndarray) -> float | None:
    """The lot value when every row has the same positive one, else None."""
    if v.size == 0:
        return None
    lo, hi = v.min(), v.max()
    return float(lo) if lo == hi and lo > 0 else None


def _max_lots(cap: np.ndarray, lots: np.ndarray, v: np.ndarray, v0: float | None) -> np.ndarray:
    """``min(lots, floor(cap / v * (1 + 1e-12) + 1e-12))``, 0 where ``v <= 0`` (int64)."""
    pos = None
    if v0 is not None:
        whole = cap / v0
    else:
        pos = v > 0
        whole = cap / np.where(pos, v, 1.0)
    whole *= 1.0 + 1e-12
    whole += 1e-12
    np.floor(whole, out=whole)
    np.minimum(whole, lots, out=whole)
    if pos is not None:
        whole[~pos] = 0.0
    return whole.astype(np.int64)


def max_lots(snap: Snapshot) -> np.ndarray:
    """Most whole lots :func:`execute` may close per row (int64).

    ``min(lots, floor(capacity / lot_value))``, with a relative slack of 1e-12 so that a
    capacity of 0.3 holds three lots of 0.1; 0 where the lot value is not positive.  What the
    lot grid can raise per row is ``max_lots(snap) * snap.lot_value``.
    """
    require(isinstance(snap, Snapshot), "snapshot", "a market.adl.Snapshot", type(snap).__name__)
    v = snap.lot_value
    return _max_lots(snap.capacity, snap.lots, v, _shared_value(v))


def _checked_wealth(wealth: np.ndarray, cap: np.ndarray, tol: float) -> np.ndarray:
    """``wealth`` validated against ``[0, cap]`` (with tolerance) and clipped into it, a copy."""
    h = np.asarray(wealth, dtype=np.float64)
    require(h.shape == cap.shape, "allocation.haircut", f"an array of shape {cap.shape}", h.shape)
    lo = float(h.min()) if h.size else 0.0
    if lo >= -tol and bool((h <= cap).all()):  # the common case: one pass, NaN falls through
        return np.maximum(h, 0.0) if lo < 0 else h.copy()
    require(bool(np.all(np.isfinite(h))), "allocation.haircut", "finite", "non-finite")
    require(bool(np.all(h >= -tol)), "allocation.haircut", ">= 0", float(h.min(initial=0)))
    within = h <= cap + tol * (1 + cap)
    if not bool(np.all(within)):
        require(False, "allocation.haircut", "<= capacity on every row", float(np.max(h - cap)))
    return np.clip(h, 0.0, cap)


def _add_in_order(
    lots: np.ndarray, seq: np.ndarray, spare: np.ndarray, v: np.ndarray, short: float, tol: float
) -> None:
    """Add lots to the rows ``seq`` in that order until ``short`` dollars are covered.

    One extra lot per row while that suffices; otherwise every spare lot of each row in turn,
    and the last row only as many as needed.
    """
    if seq.size == 0:
        return
    vs = v[seq]
    one = np.cumsum(vs)
    if one[-1] >= short - tol:
        k = int(np.searchsorted(one, short - tol))
        lots[seq[: k + 1]] += 1
        return
    # the policy left more than a lot per row: fill spare lots in order
    cum = np.cumsum(spare[seq] * vs)
    k = int(np.searchsorted(cum, short - tol))
    lots[seq[: min(k, seq.size)]] += spare[seq[: min(k, seq.size)]]
    if k < seq.size:
        before = cum[k - 1] if k > 0 else 0.0
        need = int(np.ceil((short - before) / vs[k] - 1e-9))
        lots[seq[k]] += min(max(need, 0), spare[seq[k]])


def _ranked_sequence(
    base: np.ndarray, mask: np.ndarray, h: np.ndarray, v: np.ndarray, v0: float | None
) -> tuple[np.ndarray, int]:
    """Rows of ``base`` with spare lots, part-lot rows first, each group in ``base`` order.

    Returns the sequence and how many part-lot rows (``h / lot_value`` not whole) lead it.
    """
    ranked = base[mask[base]]
    exact = h[ranked] / (v0 if v0 is not None else v[ranked])
    part = exact - np.floor(exact + 1e-9) > 1e-9
    lead = ranked[part]
    return np.concatenate([lead, ranked[~part]]), int(lead.size)


def _systematic_round_up(
    lots: np.ndarray,
    mx: np.ndarray,
    exact: np.ndarray,
    account: np.ndarray,
    short: float,
    v0: float,
    tol: float,
    budget: float,
) -> None:
    """Give one more lot to rows chosen by systematic sampling on their remainders (in place).

    Rows with a spare lot and a fractional remainder ``f = exact - lots`` are laid out by
    account id on a line of total length ``sum(f)``; points ``u, u+1, u+2, ...`` with an
    offset ``u`` in [0, 1) derived from the instance pick the rows they fall in, so each row
    gets its extra lot with probability ``f`` (unbiased: an owner's expected lots do not
    depend on how it splits its accounts).  At most ``ceil(short / v0)`` rows are picked, in
    line order; anything still missing is left to :func:`_round_up`.  O(n) when the account
    ids are already sorted (as the exchange produces them).
    """
    f = exact - lots
    ok = (mx > lots) & (f > 1e-9)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return
    acc = account[rows]
    if rows.size > 1 and np.any(acc[1:] < acc[:-1]):
        rows = rows[np.argsort(acc, kind="stable")]
    line = np.cumsum(np.minimum(f[rows], 1.0))
    seed = np.random.SeedSequence(
        [rows.size, int(abs(budget) * 1e4) % (2**62), int(line[-1] * 1e6) % (2**62)]
    )
    u = float(np.random.default_rng(seed).random())
    hits = np.floor(line - u) - np.floor(np.concatenate(([0.0], line[:-1])) - u)
    picked = rows[hits > 0]
    need = min(int(np.ceil((short - tol) / v0)), picked.size)
    lots[picked[:need]] += 1


def _round_up(
    lots: np.ndarray,
    spare: np.ndarray,
    h: np.ndarray,
    cap: np.ndarray,
    v: np.ndarray,
    v0: float | None,
    short: float,
    tol: float,
    order: np.ndarray | Callable[[int], np.ndarray] | None,
) -> None:
    """Add the lots that cover the ``short`` dollars left after flooring (in place).

    Candidates are the rows with spare lots.  With one lot value for every candidate and
    enough candidates, exactly ``ceil(short / v)`` of them get one more lot, the first ones by
    key; otherwise :func:`_add_in_order` walks the candidates by key.  The key is, for smooth
    rules, the share of capacity the extra lot brings the row to (ties by row); for ranked
    rules, the position in ``order``, rows the policy wanted a part lot from first, and rows
    missing from ``order`` after all of it, by row.
    """
    n = lots.shape[0]
    mask = spare > 0
    n_cand = int(np.count_nonzero(mask))
    if n_cand == 0:
        return
    if v0 is not None:
        vmin, uniform = v0, True
    else:
        vc = v[mask]
        vmin = float(vc.min())
        uniform = vmin == float(vc.max())
    # rows the rounding can reach: `need` in the uniform case, at most `depth + 1` otherwise
    fits_one_each = uniform and n_cand * vmin >= short - tol
    need = min(int(np.ceil((short - tol) / vmin)), n_cand) if fits_one_each else 0
    depth = int(min(np.ceil(short / vmin + 1.0), n_cand))
    if order is not None:
        want = min(depth + 1, n_cand)
        part_total: list[int] = []  # rows anywhere that want a part lot (counted on demand)

        def walkable(base: np.ndarray, seq: np.ndarray, n_part: int) -> bool:
            """True when the first ``want`` rows of ``seq`` are those of the full order."""
            if base.size >= n or n_part >= want:
                return True
            if seq.size < want:
                return False
            if not part_total:  # part-lot rows rank first: all of them must be in `base`
                ex = h / v0 if v0 is not None else h / np.where(v > 0, v, 1.0)
                part_total.append(int(np.count_nonzero(mask & (ex - np.floor(ex + 1e-9) > 1e-9))))
            return n_part == part_total[0]

        k = want
        while True:  # with a function, ask for longer prefixes until the walk is covered
            base = np.asarray(order(k) if callable(order) else order, dtype=np.int64).reshape(-1)
            seq, n_part = _ranked_sequence(base, mask, h, v, v0)
            ok = walkable(base, seq, n_part)
            if ok or not callable(order) or base.size < k or base.size >= n:
                break
            k = max(base.size + 2 * max(want - seq.size, 0), (3 * base.size) // 2)
        if ok:
            # every row the rounding can reach is placed by the order: nothing to sort
            if fits_one_each:
                lots[seq[:need]] += 1
            else:
                _add_in_order(lots, seq[: depth + 1], spare, v, short, tol)
            return
    cand = np.flatnonzero(mask)
    if order is None:
        # smooth rules: the extra lot goes where it adds the least burden
        # (smallest resulting share of capacity)
        vc_ = v0 if v0 is not None else v[cand]
        key = (lots[cand] + 1) * vc_ / np.maximum(cap[cand], 1e-300)
    else:
        rank = n + np.arange(n, dtype=np.int64)  # rows missing from `order` come last, by row
        rank[base] = np.arange(base.size)
        exact_c = h[cand] / (v0 if v0 is not None else v[cand])
        part_c = exact_c - np.floor(exact_c + 1e-9) > 1e-9
        key = (rank[cand] - 2 * n * part_c).astype(np.float64)
    if fits_one_each:
        # one lot value for every row (what the exchange produces): exactly `need` rows get
        # one more lot; an O(n) partition finds them
        if need < cand.size:
            cand = cand[np.argpartition(key, need - 1)[:need]]
        lots[cand] += 1
        return
    _add_in_order(lots, _first_by_key(cand, key, short / vmin + 1.0), spare, v, short, tol)


def execute(
    snap: Snapshot,
    budget: float,
    wealth: np.ndarray,
    *,
    price_rule: str = "bankruptcy",
    order: np.ndarray | Callable[[int], np.ndarray] | None = None,
) -> Allocation:
    """Turn a wealth-space haircut vector into an :class:`Allocation` on the lot grid.

    With ``price_rule="none"`` the dollars are taken as they are (no positions closed).
    Otherwise every row is floored to whole lots (at most :func:`max_lots`, so no row exceeds
    its cap), then lots are added until the budget is met: for ranked rules (``order`` given)
    to the rows the policy wanted a part lot from, in its order, then to the next rows in its
    order; for smooth rules (``order=None``) by unbiased systematic rounding on the rows'
    remainders (each row rounds up with probability equal to its remainder, so splitting an
    account does not pay in expectation), then, if lots are still missing, where one more lot
    adds the smallest share of the row's capacity.  The overshoot this causes is below the
    largest lot value added.

    ``order`` holds distinct row indices and may be a prefix of the policy's full order: rows
    missing from it rank after all of it, by row index.  It may also be a function
    ``k -> the first (at least) k rows of the order`` (all of them when ``k >= n``);
    ``execute`` then asks for as many rows as the rounding can reach, and for more while the
    rows it got cannot settle it, so a queue sorts only the head it needs and the lots are
    those of its full order.  Work is O(n) plus the sorting the policy does for ``order``;
    when one lot value is shared by every row (what the exchange produces) no O(n log n) step
    is needed here.

    Raises:
        InputError: if ``wealth`` is not finite, negative, or above ``capacity``.
    """
    cap = snap.capacity
    tol = _tol(budget)
    h = _checked_wealth(wealth, cap, tol)
    n = snap.n
    if price_rule == "none" or n == 0:
        lots = np.zeros(n, dtype=np.int64)
        taken = h
        gran = 0.0
        v = v0 = None
    else:
        v = snap.lot_value
        v0 = _shared_value(v)
        mx = _max_lots(cap, snap.lots, v, v0)
        exact = h / v0 if v0 is not None else h / np.where(v > 0, v, 1.0)
        exact *= 1.0 + 1e-12  # the slack of _max_lots: n * v / v is n at 1e10 lots too
        exact += 1e-9
        np.floor(exact, out=exact)
        np.minimum(exact, mx, out=exact)
        if v0 is None:
            exact[v <= 0] = 0.0
        lots = exact.astype(np.int64)
        taken = lots * (v0 if v0 is not None else v)
        short = budget - float(taken.sum())
        if short > tol and order is None and v0 is not None:
            # smooth rules: unbiased (systematic) rounding, so splitting an account into
            # parts does not change what the owner pays in expectation
            _systematic_round_up(lots, mx, h / v0, snap.account, short, v0, tol, budget)
            taken = lots * v0
            short = budget - float(taken.sum())
        if short > tol:
            _round_up(lots, mx - lots, h, cap, v, v0, short, tol, order)
            taken = lots * (v0 if v0 is not None else v)
    touched = np.flatnonzero(lots > 0) if v is not None else np.flatnonzero(h > 0)
    dense = touched.size * 4 >= n
    price = np.full(n, np.nan)
    if v is not None and touched.size:
        gran = v0 if v0 is not None else float(v[touched].max())
        vt = v0 if v0 is not None else v[touched]
        price[touched] = snap.mark + -snap.side[touched].astype(np.float64) * vt / snap.lot_size
    elif v is not None:
        gran = 0.0
    raised = float(taken.sum())
    if dense:
        from_gains = np.minimum(taken, np.maximum(snap.gains_layer, 0.0))
    else:
        g = snap.gains[touched]
        layer = g[:, 0] + g[:, 1] + g[:, 2] + np.maximum(snap.upnl[touched], 0.0)
        from_gains = np.zeros(n)
        from_gains[touched] = np.minimum(taken[touched], np.maximum(layer, 0.0))
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
