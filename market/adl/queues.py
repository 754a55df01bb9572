"""Production ADL queues: the ranked force-close queues of the venues, dYdX and Drift.

A *queue* sorts the eligible positions by a venue score and takes whole capacities in that
order until the budget is met: the marginal row gives the remainder and every row after it
gives nothing.  This is the sparse, brittle end of the design space: few
accounts are touched, and what an account pays jumps when its score crosses a neighbour's.

Ranked queues here (all close lots, so they run through :func:`market.adl.base.execute`):

* :class:`HyperliquidQueue` -- ``(mark/entry) * (notional/equity)`` (entry/mark for shorts).
* :class:`BitmexQueue` -- ``PNL% * EffLev`` in profit, ``PNL% / EffLev`` otherwise.
* :class:`BinanceQueue` -- the current FAQ form (as BitMEX, PNL% on notional) or the legacy
  ``LeveragePnl``.

Unranked rules: :class:`DydxQueue` (an account-id walk from a fresh pseudo-random start each
wave, skipping accounts an offset would bankrupt, at most ``max_iterate`` visits) and
:class:`DriftSocialLoss` (loss spread over every open position pro rata to base size, no force
close).  :func:`quantile_indicator` gives the 5-light ADL indicator of BitMEX and Binance.

Ranked queues break score ties by a key read from the row data (capacity descending, then
account id ascending), never by row position, and rows equal on the whole key share their
run's take equally, so permuting the snapshot rows permutes the haircuts ("relabeling").  No
queue is Sybil resistant: splitting an account moves the parts along the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from market.adl.base import (
    ADLPolicy,
    Allocation,
    Snapshot,
    _max_lots,
    _shared_value,
    _tol,
    execute,
)
from market.adl.ordering import (
    checked_budget,
    order_prefix,
    queue_cut,
    rank_rows,
    walk_queue,
)
from market.adl.prorata import capped_fill
from market.errors import require

__all__ = [
    "BinanceQueue",
    "BitmexQueue",
    "DriftSocialLoss",
    "DydxQueue",
    "HyperliquidQueue",
    "RankedQueue",
    "leverage_pnl_score",
    "profit_leverage_score",
    "quantile_indicator",
]


def quantile_indicator(score: Any, n_lights: int = 5, *, side: Any = None) -> np.ndarray:
    """The BitMEX/Binance ADL lights: each row's score percentile on its side, as 0..L-1.

    For a row with score ``s`` on a side holding ``m`` rows, let ``k`` be the number of rows on
    that side with score ``<= s`` (so ties share a light, the higher one).  Its light is
    ``ceil(k * n_lights / m) - 1``: with ``n_lights = 5`` the top 20% of a side show 4 (all
    lights), the next 20% show 3, and so on; a side with one row shows ``n_lights - 1``.
    Computed in integers (no rounding at the bucket edges), vectorised by one sort (a lexsort
    by side and score when ranked within sides).

    Args:
        score: the queue scores, 1-d, no NaN (``+-inf`` allowed).
        n_lights: number of lights (BitMEX and Binance use 5), an int >= 1.
        side: optional group label per row (e.g. +1/-1); rows are ranked within their side.
            ``None`` ranks all rows together.

    Returns:
        int64 array of lights in ``0..n_lights-1``.
    """
    s = np.asarray(score, dtype=np.float64)
    require(s.ndim == 1, "score", "a 1-d array", s.shape)
    require(not bool(np.isnan(s).any()), "score", "free of NaN (use +-inf to rank first/last)")
    require(
        isinstance(n_lights, int | np.integer) and not isinstance(n_lights, bool) and n_lights >= 1,
        "n_lights",
        "an int >= 1",
        n_lights,
    )
    n = s.shape[0]
    if side is None:  # one group: a sort by score (the order among ties changes no light)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.argsort(s)
        ss = s[order]
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = ss[1:] != ss[:-1]
        run_last = np.append(np.flatnonzero(new_run)[1:], n) - 1  # a run's last position
        at_or_below = run_last[np.cumsum(new_run) - 1] + 1
        out = np.empty(n, dtype=np.int64)
        out[order] = (at_or_below * int(n_lights) + n - 1) // n - 1
        return out
    sd = np.asarray(side)
    require(sd.shape == s.shape, "side", f"an array of shape {s.shape}", sd.shape)
    g = np.unique(sd, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((s, g))  # by side, then score ascending
    gs, ss = g[order], s[order]
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])
    run_id = np.cumsum(new_run) - 1
    run_last = np.append(np.flatnonzero(new_run)[1:], n) - 1  # last sorted position of a run
    count = np.bincount(g)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    at_or_below = run_last[run_id] - first[gs] + 1
    m = count[gs]
    lights_sorted = (at_or_below * int(n_lights) + m - 1) // m - 1
    out = np.empty(n, dtype=np.int64)
    out[order] = lights_sorted
    return out


def _finish_score(raw: np.ndarray, snap: Snapshot) -> np.ndarray:
    """Common clean-up, in place on ``raw``: NaN -> -inf, rows without lots last, -0.0 -> 0.0."""
    np.copyto(raw, -np.inf, where=np.isnan(raw))
    np.copyto(raw, -np.inf, where=snap.lots <= 0)
    raw += 0.0
    return raw


def _by_side(
    snap: Snapshot, long: Callable[[], np.ndarray], short: Callable[[], np.ndarray]
) -> np.ndarray:
    """``long()`` on long rows and ``short()`` on the others, computing only what is used."""
    is_long = snap.side > 0
    if is_long.all():
        return long()
    if not is_long.any():
        return short()
    return np.where(is_long, long(), short())


def _require_prices(snap: Snapshot) -> None:
    require(isinstance(snap, Snapshot), "snapshot", "a market.adl.Snapshot", type(snap).__name__)
    require(
        bool(np.isfinite(snap.mark)) and snap.mark > 0, "snapshot.mark", "finite and > 0", snap.mark
    )
    require(
        bool(np.isfinite(snap.lot_size)) and snap.lot_size > 0,
        "snapshot.lot_size",
        "finite and > 0",
        snap.lot_size,
    )


class RankedQueue(ADLPolicy):
    """Base of the score-ranked queues: sort by :meth:`score`, take capacities in order.

    Subclasses implement :meth:`score`.  The queue order is score descending, then capacity
    descending, then account id ascending (a key read from the rows, so relabeling the rows
    does not change who pays).  Rows equal on all three share what their run takes equally.
    :meth:`priority` returns this order so that :func:`market.adl.base.execute` places the
    rounding lots in queue order.
    """

    properties: ClassVar[frozenset[str]] = frozenset({"relabeling"})
    #: production queues close the liquidated position against the ranked counterparties
    #: without a profit cap: what an account holds bounds what it can lose
    default_cap: ClassVar[str] = "equity"
    default_execution: ClassVar[str] = "position"

    def score(self, snap: Snapshot) -> np.ndarray:
        """The venue's ranking score per row (higher pays first); ``-inf`` for empty rows."""
        raise NotImplementedError

    @staticmethod
    def _tie_order(snap: Snapshot, score: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Argsort of tied rows by the whole key (score desc, capacity desc, account asc), then
        by row, as one stable lexsort of every row would have them."""
        cap, acc = snap.capacity, snap.account
        return lambda rows: np.lexsort((rows, acc[rows], -cap[rows], -score[rows]))

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Row indices in queue order (first = first to be deleveraged)."""
        s = self.score(snap)
        return rank_rows(np.arange(snap.n), s, self._tie_order(snap, s))

    def _queue(
        self, snap: Snapshot, budget: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, float, np.ndarray, np.ndarray] | None]:
        """The wealth vector, the scores (computed once per call) and the :func:`queue_cut`.

        Only the rows around the point where the budget runs out are sorted (see
        :func:`queue_cut`).  Rows equal on the whole key around the marginal row share that
        run's take equally (runs before it give their capacity, runs after it nothing).
        """
        b = checked_budget(budget)
        s = self.score(snap)
        cap = snap.capacity
        cut = queue_cut(s, cap, b, self._tie_order(snap, s))
        if cut is None:
            return cap.copy(), s, None
        h, k = walk_queue(cap, cut, b)
        order = cut[2]
        acc = snap.account
        row = order[k]

        def same(j: int) -> bool:
            r = order[j]
            return bool(s[r] == s[row] and cap[r] == cap[row] and acc[r] == acc[row])

        if (k > 0 and same(k - 1)) or (k + 1 < order.size and same(k + 1)):
            # rows equal on the whole key around the marginal row share its run's take
            run = order[(s[order] == s[row]) & (cap[order] == cap[row]) & (acc[order] == acc[row])]
            h[run] = min(float(h[run].sum()) / run.size, float(cap[row]))
        return h, s, cut

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Whole capacities in queue order until the budget is met (see :func:`queue_allocate`)."""
        return self._queue(snap, budget)[0]

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Wealth allocation and whole lots, ordering only the head of the queue.

        :func:`market.adl.base.execute` gets the queue order as a function of how many rows it
        needs (:func:`order_prefix`): rounding lots that walk past the rows the budget
        reached get a longer sorted prefix, never a full sort unless the walk needs it.  The
        lots are those of the full queue order.
        """
        h, s, cut = self._queue(snap, budget)
        tie_order = self._tie_order(snap, s)
        head = None
        if cut is not None and cut[0].size:  # the rows above the band, sorted, then the band
            head = np.concatenate([rank_rows(cut[0], s, tie_order), cut[2]])  # a true prefix
        elif cut is not None:  # the band alone
            head = cut[2]
        return execute(
            snap, budget, h, price_rule=self.price_rule, order=order_prefix(s, tie_order, head)
        )

    def lights(self, snap: Snapshot, n_lights: int = 5) -> np.ndarray:
        """The ADL indicator per row: :func:`quantile_indicator` of :meth:`score` by side."""
        return quantile_indicator(self.score(snap), n_lights, side=snap.side)


class HyperliquidQueue(RankedQueue):
    """Hyperliquid's ADL queue, closed at the previous mark price.

    Sorting index (Hyperliquid docs, auto-deleveraging page)::

        long:  score = (mark / entry) * (notional / equity)
        short: score = (entry / mark) * (notional / equity)

    with ``notional = lots * lot_size * mark`` and ``equity`` the account value.  Rows whose
    account value is ``<= 0`` rank first (``+inf``); rows holding no lots rank last
    (``-inf``).  Not Sybil resistant: moving margin between sub-accounts moves them along the
    queue.
    """

    name: ClassVar[str] = "hyperliquid"
    description: ClassVar[str] = (
        "Hyperliquid queue: (mark/entry)*(notional/equity) descending, at the previous mark"
    )
    source: ClassVar[str] = (
        "Hyperliquid docs, Trading > Auto-deleveraging "
        "(https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging)"
    )
    price_rule: ClassVar[str] = "prev_mark"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        """``(mark/entry)*(notional/equity)`` for longs, ``(entry/mark)*(...)`` for shorts."""
        _require_prices(snap)
        eq = snap.equity
        with np.errstate(divide="ignore", invalid="ignore"):
            price_ratio = _by_side(
                snap, lambda: snap.mark / snap.entry, lambda: snap.entry / snap.mark
            )
            raw = price_ratio * (snap.notional / eq)
        np.copyto(raw, np.inf, where=eq <= 0)
        return _finish_score(raw, snap)


def _pnl_times_leverage(pnl_pct: np.ndarray, eff_lev: np.ndarray) -> np.ndarray:
    """``pnl% * lev`` where ``pnl% > 0`` else ``pnl% / lev`` (the BitMEX ranking form)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = pnl_pct * eff_lev
        losing = ~(pnl_pct > 0)
        np.divide(pnl_pct, eff_lev, out=out, where=losing)
    return out


def _effective_leverage(snap: Snapshot, notional: np.ndarray | None = None) -> np.ndarray:
    """``notional / equity``, ``+inf`` where equity <= 0 (cross-margin effective leverage)."""
    eq = snap.equity
    notional = snap.notional if notional is None else notional
    solvent = eq > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if solvent.all():
            return notional / eq
        return np.where(solvent, notional / np.where(solvent, eq, 1.0), np.inf)


class BitmexQueue(RankedQueue):
    """BitMEX's ADL ranking (copied by MEXC, CoinEx, Poloniex), closed at the bankruptcy price.

    The venue text (BitMEX, Auto-Deleveraging, "Priority Ranking Calculation")::

        Ranking = PNL% * EffLev   if PNL% > 0
                  PNL% / EffLev   if PNL% < 0
        EffLev  = abs(MarkValue) / (MarkValue - BankruptValue)
        PNL%    = (MarkValue - AvgEntryValue) / abs(AvgEntryValue)

    with the values the position's value at the mark, at its bankruptcy price and at its
    average entry price; longs and shorts are ranked apart, highest first.  On a snapshot,
    with signed position values (a short's value is negative)::

        PNL%   = upnl / (lots * lot_size * entry)      (the same for longs and shorts)
        EffLev = notional / equity                     (+inf if equity <= 0)

    ``MarkValue - BankruptValue`` is the move in the position's value that wipes out the
    margin behind it: for an isolated position its own margin plus unrealised PnL, for a
    cross-margined one the whole account's equity (the bankruptcy price is where the account,
    not the position, runs out).  The snapshot's accounts are cross-margined, so EffLev is
    this market's notional over the account's equity (not the account's leverage over all
    markets).

    Losing positions are ranked too, behind every winner (their score is negative; among them
    a larger leverage brings a score closer to zero, so the more levered loser comes first),
    and they are reached when the budget runs past the winners and their capacity allows it:
    under the equity cap ``c_i = min(max(equity_i, 0), lots_i * lot_value)`` a loser with
    equity pays, under the profits-only cap it has nothing to give.  Rows whose account
    equity is ``<= 0`` have infinite EffLev: first of all when in profit, score 0 when
    losing.  Rows holding no lots rank last (``-inf``).  The 5-light indicator is the score
    quintile on the row's side (:meth:`lights`).
    """

    name: ClassVar[str] = "bitmex"
    description: ClassVar[str] = (
        "BitMEX queue: PNL%*EffLev in profit, PNL%/EffLev otherwise, at the bankruptcy price"
    )
    source: ClassVar[str] = (
        "BitMEX, Auto-Deleveraging (https://www.bitmex.com/app/autoDeleveraging)"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    def __init__(self) -> None:
        pass

    def score(self, snap: Snapshot) -> np.ndarray:
        """``PNL% * EffLev`` when ``PNL% > 0`` else ``PNL% / EffLev`` (PNL% on entry value)."""
        _require_prices(snap)
        entry_value = snap.lots * snap.lot_size * snap.entry
        with np.errstate(divide="ignore", invalid="ignore"):
            pnl_pct = np.divide(snap.upnl, entry_value, out=entry_value)
        return _finish_score(_pnl_times_leverage(pnl_pct, _effective_leverage(snap)), snap)


class BinanceQueue(RankedQueue):
    """Binance USDⓈ-M ADL ranking, closed at the bankruptcy price of the liquidated order.

    ``formula="current"`` (the current FAQ)::

        PNL%   = upnl / notional
        EffLev = notional / equity        (+inf if equity <= 0)
        score  = PNL% * EffLev if PNL% > 0 else PNL% / EffLev

    ``formula="legacy"`` (the older FAQ, also Aevo's form)::

        score = max(0, upnl) / max(1, cash) * maintenance / equity    (0 if equity <= 0)

    with ``cash`` the wallet balance.  Rows holding no lots rank last (``-inf``).

    Args:
        formula: ``"current"`` or ``"legacy"``.
    """

    name: ClassVar[str] = "binance"
    description: ClassVar[str] = (
        "Binance queue: PNL%*EffLev (current) or LeveragePnl (legacy), at the bankruptcy price"
    )
    source: ClassVar[str] = (
        "Binance FAQ, What is Auto-Deleveraging (ADL) "
        "(https://www.binance.com/en/support/faq/detail/360033525471)"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    #: Accepted values of ``formula``.
    FORMULAS: ClassVar[tuple[str, ...]] = ("current", "legacy")

    def __init__(self, formula: str = "current") -> None:
        self.formula = formula

    def score(self, snap: Snapshot) -> np.ndarray:
        """The current (PNL% x EffLev) or legacy (LeveragePnl) Binance ranking per row."""
        require(
            self.formula in self.FORMULAS,
            "binance.formula",
            f"one of {self.FORMULAS}",
            self.formula,
        )
        _require_prices(snap)
        if self.formula == "current":
            return profit_leverage_score(snap)
        return leverage_pnl_score(snap)


def profit_leverage_score(snap: Snapshot) -> np.ndarray:
    """``PNL% * EffLev`` in profit, ``PNL% / EffLev`` otherwise, with ``PNL% = upnl /
    notional`` and ``EffLev = notional / equity``: Binance's current ranking, and the form
    Bybit's is taken to have.  Rows without lots last (``-inf``)."""
    notional = snap.notional
    with np.errstate(divide="ignore", invalid="ignore"):
        pnl_pct = snap.upnl / notional
    return _finish_score(_pnl_times_leverage(pnl_pct, _effective_leverage(snap, notional)), snap)


def leverage_pnl_score(snap: Snapshot) -> np.ndarray:
    """``max(0, upnl) / max(1, cash) * maintenance / equity`` (0 where equity <= 0): Binance's
    legacy ``LeveragePnl``, which Aevo uses.  Rows without lots last (``-inf``)."""
    eq = snap.equity
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_ratio = np.where(eq > 0, snap.maintenance / np.where(eq > 0, eq, 1.0), 0.0)
        raw = np.maximum(snap.upnl, 0.0) / np.maximum(snap.cash, 1.0) * margin_ratio
    return _finish_score(raw, snap)


def _whole_lots(x: Any) -> Any:
    """``ceil(x)`` lots, forgiving float noise: ``ceil(x - 1e-9 - 1e-12 |x|)``."""
    return np.ceil(x - 1e-9 - 1e-12 * np.abs(x))


#: dYdX v4's default ``MaxDeleveragingSubaccountsToIterate``: ``DefaultMaxDeleveragingSubaccounts
#: ToIterate = 500`` in ``protocol/x/clob/flags/flags.go`` (dydxprotocol/v4-chain).
DYDX_MAX_ITERATE = 500


class DydxQueue(ADLPolicy):
    """dYdX v4 deleveraging: not ranked; an account-id walk from a fresh pseudo-random start.

    What the chain does (``OffsetSubaccountPerpetualPosition`` in
    ``protocol/x/clob/keeper/deleveraging.go``, dydxprotocol/v4-chain): it lists the
    subaccounts holding a position on the opposite side, starts at ``pseudoRand.Intn(n)``
    (``GetPseudoRand`` seeds Go's ``rand`` with the previous block's time, so every block
    draws a new start), and visits at most ``MaxDeleveragingSubaccountsToIterate`` of them
    cyclically.  Each visited subaccount is offered ``min(remaining, its position)`` base
    quantums at the *liquidated* subaccount's bankruptcy price (``ProcessDeleveraging``).  If
    the subaccount update fails the collateral check -- the code comment: "likely because the
    subaccounts' bankruptcy prices do not overlap" -- the subaccount is skipped entirely (no
    partial fill) and the walk moves on; whatever is left after the walk is not offset.
    Nothing is ranked, and a losing position is offered like any other.

    Here, on a snapshot:

    * the list is the rows holding lots, by account id (equal ids by row); the start is
      ``default_rng(SeedSequence([seed, market, wave, m])).integers(m)`` with ``m`` the rows
      listed and ``wave`` the exchange's wave counter (:attr:`Snapshot.wave`), so consecutive
      waves start at fresh places, and the same seed, market, wave and list give the same walk;
    * at most ``max_iterate`` listed rows are visited (skipped ones count, as on the chain);
      what is left after them is the wave's residual (reported by the allocation);
    * with one lot value ``v`` for every row (what the exchange produces: the gap between the
      mark and the bankruptcy price times the lot size) the budget is ``need = ceil(B / v)``
      lots of the liquidated position, and a row is offered ``min(remaining, lots_i)`` lots;
    * overlap test: a row is skipped when that offer, in dollars at the bankruptcy price,
      exceeds its capacity ``c_i`` (more precisely when the offered lots exceed
      :func:`~market.adl.base.max_lots`, ``floor(c_i / v)``): under the equity cap
      ``c_i = min(max(equity_i, 0), lots_i * v)`` this is "the offset would take the account
      past its own bankruptcy".  A skipped row gives nothing, not a partial fill.  A row whose
      whole position fits its capacity is never skipped; one whose position does not is used
      only when the remaining lots fit (it then ends the walk).  The chain's own check is
      richer: ``UpdateSubaccounts`` passes an undercollateralised result only if the
      subaccount stays initially collateralised or its collateral/maintenance ratio does not
      fall (``IsValidStateTransitionForUndercollateralizedSubaccount`` in
      ``protocol/x/subaccounts/lib/updates.go``); the snapshot carries no initial margin, so
      the test here is that check with the margin requirement set to zero;
    * with a lot value per row (not produced by the exchange) the remaining amount is tracked
      in dollars and a row is offered ``min(ceil(remaining / v_i), lots_i)`` lots; rows with a
      zero lot value raise nothing.

    The walk is vectorised: full rows before the end give their whole position, rows that do
    not fit are skipped, and the end is the first row whose offer covers what remains (one
    cumulative sum along the visited rows).  Only the first ``max_iterate`` rows of the walk
    are put in order (an O(n) partition of the walk positions, then a sort of those rows).
    The wealth vector is whole lots (``lots * lot_value``), and :meth:`allocate` executes
    exactly those lots.  :meth:`wave_caps` reports what the walk may take in this wave (zero
    on skipped rows and rows beyond the iteration cap), so the allocation's residual is the
    venue's.  No property is claimed.

    Args:
        seed: non-negative int feeding the start index.
        max_iterate: most listed rows visited per wave (an int >= 1), or None for no cap.
            Default :data:`DYDX_MAX_ITERATE` (the chain's default flag value).
    """

    name: ClassVar[str] = "dydx"
    description: ClassVar[str] = (
        "dYdX v4: account-id walk from a per-wave pseudo-random start, skipping non-overlapping "
        "accounts, at bankruptcy"
    )
    source: ClassVar[str] = (
        "dYdX v4 chain, protocol/x/clob/keeper/deleveraging.go (OffsetSubaccountPerpetualPosition) "
        "and protocol/x/clob/flags/flags.go (https://github.com/dydxprotocol/v4-chain)"
    )
    price_rule: ClassVar[str] = "bankruptcy"
    #: an offset is skipped only where the offsetting account would go past its own
    #: bankruptcy price: losers are eligible, bounded by their equity
    default_cap: ClassVar[str] = "equity"
    default_execution: ClassVar[str] = "position"

    def __init__(self, seed: int = 0, max_iterate: int | None = DYDX_MAX_ITERATE) -> None:
        self.seed = seed
        self.max_iterate = max_iterate

    # -- parameters and the walk order ---------------------------------------------------
    def _check(self, snap: Snapshot) -> None:
        require(
            isinstance(self.seed, int | np.integer)
            and not isinstance(self.seed, bool)
            and self.seed >= 0,
            "dydx.seed",
            "an int >= 0",
            self.seed,
        )
        it = self.max_iterate
        is_int = isinstance(it, int | np.integer) and not isinstance(it, bool)
        require(
            it is None or (is_int and it >= 1),
            "dydx.max_iterate",
            "an int >= 1 or None",
            it,
        )
        require(snap.market >= 0, "snapshot.market", "an int >= 0", snap.market)
        require(snap.wave >= 0, "snapshot.wave", "an int >= 0", snap.wave)

    @staticmethod
    def listed(snap: Snapshot) -> np.ndarray:
        """Rows the walk lists: those holding lots (subaccounts with an open position)."""
        return np.flatnonzero(snap.lots > 0)

    def start_index(self, snap: Snapshot) -> int:
        """Index, in the account-id order of :meth:`listed`, of the first row visited.

        ``default_rng(SeedSequence([seed, market, wave, m])).integers(m)``; 0 when no row is
        listed.
        """
        self._check(snap)
        m = int(np.count_nonzero(snap.lots > 0))
        if m == 0:
            return 0
        seq = np.random.SeedSequence([int(self.seed), int(snap.market), int(snap.wave), m])
        return int(np.random.default_rng(seq).integers(m))

    def walk(self, snap: Snapshot, k: int | None = None) -> np.ndarray:
        """The first ``k`` listed rows in visiting order (all of them when ``k`` is None).

        By account id from the start index, cyclically; equal ids by row.  An O(m) partition
        of the walk positions picks the first ``k``; only those are sorted.
        """
        start = self.start_index(snap)
        rows = self.listed(snap)
        m = rows.size
        k = m if k is None else min(int(k), m)
        if m == 0 or k <= 0:
            return rows[:0]
        acc = snap.account[rows]
        lo, hi = int(acc.min()), int(acc.max())
        if hi - lo >= 2**62:  # ids too spread to shift: sort them all
            by_id = rows[np.argsort(acc, kind="stable")]
            return np.roll(by_id, -start)[:k]
        a_s = np.partition(acc, start)[start]
        place = acc - a_s  # ids at or after the start id: their distance from it
        span = hi - lo + 1
        np.add(place, span, out=place, where=place < 0)  # ids below it come after the wrap
        below = int(np.count_nonzero(acc < a_s))
        if start > below:  # rows holding the start id before the start index go last
            place[np.flatnonzero(acc == a_s)[: start - below]] = span
        if k < m:
            kth = np.partition(place, k - 1)[k - 1]
            keep = np.flatnonzero(place <= kth)
        else:
            keep = np.arange(m)
        keep = keep[np.lexsort((keep, place[keep]))]
        return rows[keep[:k]]

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Row indices in visiting order (the whole cycle), then rows holding no lots by row."""
        order = self.walk(snap)
        rest = np.flatnonzero(snap.lots <= 0)
        return np.concatenate([order, rest])

    # -- the walk ------------------------------------------------------------------------
    def _offsets(
        self, snap: Snapshot, budget: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """``(win, take, fits, end)``: the visited rows, lots taken from each, whether each
        row's whole position fits its capacity, and the position of the row that ends the walk
        in ``win`` (``-1`` when the walk ran out of rows first)."""
        b = checked_budget(budget)
        self._check(snap)
        tol = _tol(b)
        win = self.walk(snap, self.max_iterate)
        none = np.zeros(win.size, dtype=np.int64)
        if win.size == 0 or b <= tol:
            return win, none, np.ones(win.size, dtype=bool), -1
        lots = snap.lots[win]
        v = snap.lot_value[win]
        v0 = _shared_value(snap.lot_value)
        fit_lots = _max_lots(snap.capacity[win], lots, v, v0)  # most lots each row can pay
        fits = fit_lots >= lots
        if v0 is not None:
            # integer lots of the liquidated position: exact at any magnitude
            total = int(lots.sum())
            need = int(min(_whole_lots(b / v0), float(total + 1)))
            paid = np.where(fits, lots, 0)
            left = need - (np.cumsum(paid) - paid)  # lots still to offset when a row is visited
            ends = (left <= fit_lots) & (left > 0)  # the offer fits: this row ends the walk
            offer = left
        else:
            pos = v > 0
            fits &= pos
            paid_d = np.where(fits, lots * v, 0.0)
            left_d = b - (np.cumsum(paid_d) - paid_d)  # dollars still to raise
            with np.errstate(divide="ignore", invalid="ignore"):
                offer_f = _whole_lots(left_d / np.where(pos, v, 1.0))
            ends = pos & (left_d > tol) & (offer_f <= fit_lots)
            offer = np.where(ends, offer_f, 0.0).astype(np.int64)
            paid = np.where(fits, lots, 0)
        take = paid.astype(np.int64, copy=True)
        end = int(np.argmax(ends)) if ends.any() else -1
        if end >= 0:
            take[end] = offer[end]
            take[end + 1 :] = 0
        return win, take, fits, end

    def wave_caps(self, snap: Snapshot, budget: float) -> np.ndarray:
        """What the walk may take from each row in a wave of budget ``budget``.

        The capacity on the visited rows that were not skipped, and on the rows of the first
        ``max_iterate`` that the walk did not reach because the budget was met; zero on
        skipped rows (their offer did not fit) and on every row beyond ``max_iterate`` or
        holding no lots.
        """
        win, _, fits, end = self._offsets(snap, budget)
        caps = np.zeros(snap.n)
        stop = win.size if end < 0 else end
        usable = np.ones(win.size, dtype=bool)
        usable[:stop] = fits[:stop]
        caps[win[usable]] = snap.capacity[win[usable]]
        return caps

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Whole lots along the walk, in dollars: ``lots taken * lot_value`` per row."""
        win, take, _, _ = self._offsets(snap, budget)
        h = np.zeros(snap.n)
        h[win] = take * snap.lot_value[win]
        return h

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """The walk's lots, executed as they are.

        :func:`market.adl.base.execute` runs on the snapshot with each row's capacity set to
        what the walk took, so it closes exactly the walk's lots and adds none to skipped or
        unvisited rows; anything the walk could not offset is the residual.
        """
        win, take, _, _ = self._offsets(snap, budget)
        h = np.zeros(snap.n)
        h[win] = take * snap.lot_value[win]
        return execute(snap.with_capacity(h), budget, h, price_rule=self.price_rule, order=win)


class DriftSocialLoss(ADLPolicy):
    """Drift v2 socialised loss: every open position pays per unit of base size.

    The venue (drift-labs/protocol-v2, ``resolve_perp_bankruptcy`` in
    ``programs/drift/src/controller/liquidation.rs`` and
    ``calculate_funding_rate_deltas_to_resolve_bankruptcy`` in
    ``programs/drift/src/math/liquidation.rs``): what the insurance fund and the market's fee
    pool leave of a bankrupt user's loss is socialised as ``delta = |loss| / (|base_long| +
    |base_short|)`` per unit of base (rounded up), added to ``cumulative_funding_rate_long``
    and subtracted from ``cumulative_funding_rate_short``.  Every open position in the market,
    long or short, winning or losing, then pays ``delta * |base|`` at its next funding
    settlement.  Nothing is capped at profit and nothing is force-closed.

    Here (``sides = "all"``, ``price_rule = "none"``)::

        h = capped_fill(capacity, B, weights = lots * lot_size)
          = min(c_i, eta * lots_i * lot_size),   sum(h) = min(B, sum(c))

    When no cap binds, ``eta = B / sum(size)`` is Drift's delta and ``h_i = size_i * B /
    sum(size)`` for every row, losers included.  The capacity is the only bound, and it is
    the model's, not the venue's: Drift would push a position whose equity is below its share
    under water (a new hole); here a row never gives more than its capacity -- under the
    equity cap ``c_i = max(equity_i, 0)``, so the socialisation never opens a new hole -- and
    the rest is water-filled over the other rows by size.  Under the profits-only cap losers
    have no capacity and pay nothing: the venue's rule is the equity cap.  If the sized rows
    cannot cover ``B`` and the snapshot carries rows with capacity but no lots (inconsistent
    input), the rest is taken from those pro rata to capacity, so the budget contract holds.
    """

    name: ClassVar[str] = "drift"
    description: ClassVar[str] = (
        "Drift v2 socialised loss: all open positions pay pro rata to base size, no force close"
    )
    source: ClassVar[str] = (
        "Drift protocol v2, resolve_perp_bankruptcy (cumulative funding adjustment) "
        "(https://github.com/drift-labs/protocol-v2)"
    )
    properties: ClassVar[frozenset[str]] = frozenset({"relabeling", "sybil", "scale"})
    price_rule: ClassVar[str] = "none"
    sides: ClassVar[str] = "all"
    #: every open position pays per base unit, winners and losers alike, not capped at profit
    default_cap: ClassVar[str] = "equity"

    def __init__(self) -> None:
        pass

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``min(c_i, eta * base_size_i)`` with ``sum = min(B, sum(c))``."""
        b = checked_budget(budget)
        cap = snap.capacity
        size = snap.lots * snap.lot_size
        # zero-size rows have zero weight: capped_fill uses them, pro rata to capacity, only
        # when the sized rows cannot hold the budget
        return capped_fill(cap, b, size)
