"""Production ADL queues: the ranked force-close queues of the venues, dYdX and Drift.

A *queue* sorts the eligible positions by a venue score and takes whole capacities in that
order until the budget is met: the marginal row gives the remainder and every row after it
gives nothing.  This is the sparse, brittle end of the design space (design.md §2): few
accounts are touched, and what an account pays jumps when its score crosses a neighbour's.

Ranked queues here (all close lots, so they run through :func:`market.adl.base.execute`):

* :class:`HyperliquidQueue` -- ``(mark/entry) * (notional/equity)`` (entry/mark for shorts).
* :class:`BitmexQueue` -- ``PNL% * EffLev`` in profit, ``PNL% / EffLev`` otherwise.
* :class:`BinanceQueue` -- the current FAQ form (as BitMEX, PNL% on notional) or the legacy
  ``LeveragePnl``.

Unranked rules: :class:`DydxQueue` (account-id order from a pseudo-random start, cyclic) and
:class:`DriftSocialLoss` (loss spread over every open position pro rata to base size, no force
close).  :func:`quantile_indicator` gives the 5-light ADL indicator of BitMEX and Binance.

Ranked queues break score ties by a key read from the row data (capacity descending, then
account id ascending), never by row position, and rows equal on the whole key share their
run's take equally, so permuting the snapshot rows permutes the haircuts ("relabeling").  No
queue is Sybil resistant: splitting an account moves the parts along the queue.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from market.adl.base import ADLPolicy, Snapshot, water_fill
from market.errors import require

__all__ = [
    "BinanceQueue",
    "BitmexQueue",
    "DriftSocialLoss",
    "DydxQueue",
    "HyperliquidQueue",
    "RankedQueue",
    "quantile_indicator",
    "queue_allocate",
]


def _budget_ok(budget: Any) -> float:
    try:
        b = float(budget)
    except (TypeError, ValueError):
        b = float("nan")
    require(bool(np.isfinite(b)) and b >= 0, "budget", "a finite number >= 0", budget)
    return b


def queue_allocate(capacity: Any, score: Any, budget: float) -> np.ndarray:
    """Take whole capacities in descending score order until ``budget`` is met.

    Rows are sorted by ``score`` descending; the sort is stable, so equal scores keep row
    index order (lower index first).  With ``cum`` the running sum of sorted capacities and
    ``k`` the first sorted position where ``cum >= budget``: rows before ``k`` give their whole
    capacity, row ``k`` gives ``budget - cum[k-1]`` and later rows give 0.  When ``budget >=
    sum(capacity)`` the capacity itself is returned.  Vectorised (argsort + cumsum +
    searchsorted); :func:`market.adl.reference.reference_queue` is the plain-loop definition.

    Args:
        capacity: ``c_i >= 0``, finite, 1-d.
        score: same shape; ``+inf`` ranks first, ``-inf`` last; NaN is refused.
        budget: ``B >= 0``, finite.

    Returns:
        ``h`` (float64) with ``0 <= h <= capacity`` and ``sum(h) == min(B, sum(capacity))``.

    Raises:
        InputError: on a bad shape, a negative or non-finite capacity, a NaN score or a bad
            budget.
    """
    c = np.asarray(capacity, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    require(c.ndim == 1, "capacity", "a 1-d array", c.shape)
    require(s.shape == c.shape, "score", f"an array of shape {c.shape}", s.shape)
    require(bool(np.all(np.isfinite(c))), "capacity", "finite", "non-finite")
    require(bool(np.all(c >= 0)), "capacity", ">= 0 everywhere", float(c.min(initial=0)))
    require(not bool(np.isnan(s).any()), "score", "free of NaN (use +-inf to rank first/last)")
    b = _budget_ok(budget)
    n = c.shape[0]
    if n == 0:
        return c.copy()
    order = np.argsort(-s, kind="stable")
    c_sorted = c[order]
    cum = np.cumsum(c_sorted)
    if b >= cum[-1]:
        return c.copy()
    k = int(np.searchsorted(cum, b, side="left"))  # k < n because b < cum[-1]
    h_sorted = np.where(np.arange(n) < k, c_sorted, 0.0)
    before = float(cum[k - 1]) if k > 0 else 0.0
    h_sorted[k] = min(max(b - before, 0.0), float(c_sorted[k]))
    h = np.empty(n, dtype=np.float64)
    h[order] = h_sorted
    return h


def _rank_from_order(order: np.ndarray) -> np.ndarray:
    """A score that makes :func:`queue_allocate` follow ``order`` exactly (first = highest)."""
    n = order.shape[0]
    s = np.empty(n, dtype=np.float64)
    s[order] = -np.arange(n, dtype=np.float64)
    return s


def quantile_indicator(score: Any, n_lights: int = 5, *, side: Any = None) -> np.ndarray:
    """The BitMEX/Binance ADL lights: each row's score percentile on its side, as 0..L-1.

    For a row with score ``s`` on a side holding ``m`` rows, let ``k`` be the number of rows on
    that side with score ``<= s`` (so ties share a light, the higher one).  Its light is
    ``ceil(k * n_lights / m) - 1``: with ``n_lights = 5`` the top 20% of a side show 4 (all
    lights), the next 20% show 3, and so on; a side with one row shows ``n_lights - 1``.
    Computed in integers (no rounding at the bucket edges), vectorised by one lexsort.

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
    if side is None:
        g = np.zeros(n, dtype=np.int64)
    else:
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
    """Common clean-up: NaN -> -inf, rows without lots last, -0.0 -> 0.0."""
    s = np.where(np.isnan(raw), -np.inf, raw)
    s = np.where(snap.lots > 0, s, -np.inf)
    return s + 0.0


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

    def score(self, snap: Snapshot) -> np.ndarray:
        """The venue's ranking score per row (higher pays first); ``-inf`` for empty rows."""
        raise NotImplementedError

    def _order(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        s = self.score(snap)
        order = np.lexsort((snap.account, -snap.capacity, -s))
        s_o, c_o, a_o = s[order], snap.capacity[order], snap.account[order]
        n = order.shape[0]
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = (s_o[1:] != s_o[:-1]) | (c_o[1:] != c_o[:-1]) | (a_o[1:] != a_o[:-1])
        return order, np.cumsum(new_run) - 1

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Row indices in queue order (first = first to be deleveraged)."""
        return self._order(snap)[0]

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Whole capacities in queue order until the budget is met (see :func:`queue_allocate`)."""
        order, run = self._order(snap)
        h = queue_allocate(snap.capacity, _rank_from_order(order), budget)
        if run.size and run[-1] + 1 < run.size:  # some rows tie on the whole key: share
            h_o = h[order]
            share = np.bincount(run, weights=h_o) / np.bincount(run)
            h[order] = np.minimum(share[run], snap.capacity[order])
        return h

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
            price_ratio = np.where(snap.side > 0, snap.mark / snap.entry, snap.entry / snap.mark)
            raw = price_ratio * (snap.notional / eq)
        raw = np.where(eq <= 0, np.inf, raw)
        return _finish_score(raw, snap)


def _pnl_times_leverage(pnl_pct: np.ndarray, eff_lev: np.ndarray) -> np.ndarray:
    """``pnl% * lev`` where ``pnl% > 0`` else ``pnl% / lev`` (the BitMEX ranking form)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(pnl_pct > 0, pnl_pct * eff_lev, pnl_pct / eff_lev)


def _effective_leverage(snap: Snapshot) -> np.ndarray:
    """``notional / equity``, ``+inf`` where equity <= 0 (cross-margin effective leverage)."""
    eq = snap.equity
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(eq > 0, snap.notional / np.where(eq > 0, eq, 1.0), np.inf)


class BitmexQueue(RankedQueue):
    """BitMEX's ADL ranking (copied by MEXC, CoinEx, Poloniex), closed at the bankruptcy price.

    Ranking (BitMEX ADL page)::

        PNL%   = upnl / (lots * lot_size * entry)
        EffLev = notional / equity        (cross-margin reading of |MarkValue| /
                                           (MarkValue - BankruptValue); +inf if equity <= 0)
        score  = PNL% * EffLev   if PNL% > 0
                 PNL% / EffLev   otherwise

    Rows holding no lots rank last (``-inf``).  The 5-light indicator is the score quintile
    on the row's side (:meth:`lights`).
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
            pnl_pct = snap.upnl / entry_value
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
        eq = snap.equity
        if self.formula == "current":
            with np.errstate(divide="ignore", invalid="ignore"):
                pnl_pct = snap.upnl / snap.notional
            raw = _pnl_times_leverage(pnl_pct, _effective_leverage(snap))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                margin_ratio = np.where(eq > 0, snap.maintenance / np.where(eq > 0, eq, 1.0), 0.0)
                raw = np.maximum(snap.upnl, 0.0) / np.maximum(snap.cash, 1.0) * margin_ratio
        return _finish_score(raw, snap)


class DydxQueue(ADLPolicy):
    """dYdX v4 deleveraging: not ranked; account-id order from a pseudo-random start.

    Rows are put in order of account id, the walk starts at index ``start`` and goes round
    cyclically, each row offsetting ``min(remaining, capacity)`` (so it is
    :func:`queue_allocate` along that cyclic order).  ``start`` is
    ``default_rng(SeedSequence([seed, market, n])).integers(n)``: deterministic given the
    seed, the market and the number of eligible rows.  Closed at the bankruptcy price.
    No property is claimed.

    Args:
        seed: non-negative int feeding the start index.
    """

    name: ClassVar[str] = "dydx"
    description: ClassVar[str] = (
        "dYdX v4: account-id order from a seeded pseudo-random start, cyclic, at bankruptcy"
    )
    source: ClassVar[str] = (
        "dYdX v4 chain, protocol/x/clob/keeper/deleveraging.go "
        "(https://github.com/dydxprotocol/v4-chain)"
    )
    price_rule: ClassVar[str] = "bankruptcy"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def start_index(self, snap: Snapshot) -> int:
        """Index, in account-id order, of the first row offset (0 when the snapshot is empty)."""
        require(
            isinstance(self.seed, int | np.integer)
            and not isinstance(self.seed, bool)
            and self.seed >= 0,
            "dydx.seed",
            "an int >= 0",
            self.seed,
        )
        require(snap.market >= 0, "snapshot.market", "an int >= 0", snap.market)
        n = snap.n
        if n == 0:
            return 0
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), int(snap.market), n]))
        return int(rng.integers(n))

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Row indices in offsetting order: by account id, rotated to start at the start index."""
        start = self.start_index(snap)
        by_account = np.argsort(snap.account, kind="stable")
        return np.roll(by_account, -start)

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Whole capacities along the cyclic order until the budget is met."""
        return queue_allocate(snap.capacity, _rank_from_order(self.priority(snap)), budget)


class DriftSocialLoss(ADLPolicy):
    """Drift v2 socialised loss: every open position pays pro rata to its base size.

    Drift does not force-close: ``resolve_perp_bankruptcy`` adds ``loss / (base_long +
    base_short)`` per base unit to the cumulative funding of both sides, so longs and shorts
    pay in proportion to size.  Here, capped by capacity (water-filling)::

        h = water_fill(capacity, B, weights = lots * lot_size)
          = min(c_i, eta * lots_i * lot_size),   sum(h) = B

    Eligible set is every open position (``sides = "all"``) and no lots are closed
    (``price_rule = "none"``).  If the sized rows cannot cover ``B`` and the snapshot
    carries rows with capacity but no lots (inconsistent input), the rest is taken from those
    pro rata to capacity, so the budget contract still holds.
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

    def __init__(self) -> None:
        pass

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """``min(c_i, eta * base_size_i)`` with ``sum = min(B, sum(c))``."""
        b = _budget_ok(budget)
        cap = snap.capacity
        size = snap.lots * snap.lot_size
        sized = size > 0
        h = np.zeros(snap.n, dtype=np.float64)
        h[sized] = water_fill(cap[sized], b, weights=size[sized])
        rest = b - float(h.sum())
        unsized = ~sized & (cap > 0)
        if rest > 1e-12 * max(1.0, b) and unsized.any():
            h[unsized] = water_fill(cap[unsized], rest, weights=cap[unsized])
        return h
