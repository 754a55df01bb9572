"""Generators of ADL snapshots: hypothesis strategies for property tests, numpy for large N.

:func:`snapshots` and :func:`budgets` are hypothesis strategies that tests and
:func:`market.adl.checker.check_adl_policy` draw from.  Hypothesis only draws a handful of
knobs (row count, Pareto tail index, tie and zero rates, lot mode, sides, prices and a seed);
the arrays themselves come from a seeded numpy generator, so drawing a snapshot is cheap
and a failing case still shrinks towards few rows and simple knobs.

:func:`large_snapshot` builds the same kind of snapshot from a numpy ``Generator`` alone, for
the large-N case of the checker and for benchmarks.

The snapshots look like what the exchange produces: winners on one side (sometimes both
sides), heavy-tailed Pareto capacities, a lot value that is the same for every row
(``|mark - execution price| * lot_size``) or, sometimes, per row, position sizes in whole lots
consistent with the capacity, prices, leverage, maintenance margin and a gains ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from market.adl.base import Snapshot, max_lots
from market.errors import require

__all__ = ["budgets", "large_snapshot", "lot_grid_capacity", "snapshots"]

_CAP_MODES = ("pareto", "on_grid", "mixed")
_LOT_MODES = ("uniform", "per_row")
_SIDE_MODES = ("long", "short", "mixed")
_GAINS_MODES = ("none", "some", "all")
_LOT_SIZES = (0.001, 0.01, 0.1, 1.0, 10.0)
#: Pareto draws are clipped at this multiple of the scale so sums stay finite and exact enough.
_PARETO_CLIP = 1e6
#: Most lots a generated row holds (real books have positions of 1e10 lots of tiny coins).
_MAX_LOTS = 1e10


@dataclass(frozen=True)
class _Spec:
    """The knobs of one generated snapshot (hypothesis draws these; numpy draws the rows)."""

    n: int
    alpha: float = 1.5
    cap_mode: str = "pareto"
    lots_per_row: float = 100.0
    zero_frac: float = 0.0
    tie_frac: float = 0.0
    tie_rows: bool = False
    lot_mode: str = "uniform"
    zero_lot_values: bool = False
    lot_grid: bool = True
    distinct: bool = False
    side_mode: str = "long"
    stressed: bool = False
    gains_mode: str = "none"
    shared_groups: bool = False
    mark: float = 100.0
    lot_size: float = 1.0
    gap: float = 0.01
    value_decades: float = 1.3
    leverage_top: float = 50.0


def _make(spec: _Spec, rng: np.random.Generator) -> Snapshot:
    """Draw the rows of one snapshot from ``rng`` following ``spec`` (all vectorised)."""
    n = spec.n
    mark, lot_size = spec.mark, spec.lot_size
    side0 = -1 if spec.side_mode == "short" else 1
    if spec.side_mode == "mixed":
        side = rng.choice(np.array([-1, 1], dtype=np.int64), size=n)
    else:
        side = np.full(n, side0, dtype=np.int64)

    # lot value: dollars raised per lot closed = price gap * lot size
    unit = mark * spec.gap * lot_size
    if spec.lot_mode == "per_row":
        half = 0.5 * spec.value_decades
        exponent = rng.uniform(-half, half, n)
        if n >= 2 and spec.value_decades > 2:  # the wide mode spans its decades exactly
            exponent[rng.choice(n, 2, replace=False)] = (-half, half)
        lot_value = unit * 10.0**exponent
        if spec.zero_lot_values:
            lot_value[rng.random(n) < 0.1] = 0.0
    else:
        lot_value = np.full(n, unit)
    pos_v = lot_value > 0
    safe_v = np.where(pos_v, lot_value, 1.0)

    # heavy-tailed capacities: Pareto(alpha) with minimum `scale` (numpy's pareto is Lomax)
    scale = unit * spec.lots_per_row
    cap = scale * np.minimum(rng.pareto(spec.alpha, n) + 1.0, _PARETO_CLIP)
    if spec.cap_mode == "on_grid":
        grid_rows = pos_v
    elif spec.cap_mode == "mixed":
        grid_rows = pos_v & (rng.random(n) < 0.5)
    else:
        grid_rows = np.zeros(n, dtype=bool)
    # at most 1e10 lots per row (a random ceiling below it, so distinct draws stay distinct)
    cap = np.minimum(cap, _MAX_LOTS * safe_v * rng.uniform(0.5, 1.0, n))
    whole = np.maximum(np.ceil(cap / safe_v), 1.0)
    cap = np.where(grid_rows, whole * lot_value, cap)
    if spec.zero_frac > 0:
        zero = rng.random(n) < spec.zero_frac
        if spec.distinct:  # at most one zero, so zeros do not tie either
            zero &= np.cumsum(zero) == 1
        cap[zero] = 0.0
    tie_dst = np.zeros(0, dtype=np.int64)
    tie_src = np.zeros(0, dtype=np.int64)
    if spec.tie_frac > 0 and n > 1:
        tie_dst = np.flatnonzero(rng.random(n) < spec.tie_frac)
        tie_src = rng.integers(0, n, tie_dst.size)
        if not spec.tie_rows:
            # a copied capacity must still fit the row's 1e10 lots at its own lot value
            fits = cap[tie_src] <= _MAX_LOTS * safe_v[tie_dst]
            tie_dst, tie_src = tie_dst[fits], tie_src[fits]
            cap[tie_dst] = cap[tie_src]

    # lots: the fewest whole lots covering the capacity, plus sometimes more (capacity is then
    # set by eligibility, not by the position); rows with a zero lot value hold some lots
    need = np.ceil(cap / safe_v)
    need = np.where((need - 1.0) * lot_value >= cap, need - 1.0, need)
    need = np.where(pos_v, need, rng.integers(1, 50, n))
    extra = np.where(rng.random(n) < 0.3, rng.geometric(0.2, n), 0)
    if spec.lot_grid:
        lots = need + extra
    else:
        lots = np.floor(need * rng.uniform(0.0, 1.3, n)) + extra * (rng.random(n) < 0.5)
    lots = np.where(cap > 0, lots, np.where(rng.random(n) < 0.8, 1 + extra, 0))
    lots = np.minimum(lots, _MAX_LOTS).astype(np.int64)
    notional = lots * lot_size * mark

    # prices: winners gain between 0.3 and 1.5 times their capacity (capped at 90% of the
    # notional), losers (some rows when both sides are eligible) lose up to half
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(notional > 0, cap * rng.uniform(0.3, 1.5, n) / notional, 0.0)
    ratio = np.clip(ratio, 0.0, 0.9)
    if spec.side_mode == "mixed":
        losers = rng.random(n) < 0.25
        ratio = np.where(losers, -rng.uniform(0.01, 0.5, n), ratio)
    entry = mark * (1.0 - side * ratio)
    upnl = side * (mark - entry) * lots * lot_size

    # collateral: a target leverage between 0.1 and the spec's top (50, sometimes 1e4);
    # stressed accounts lose elsewhere
    lev_target = 10.0 ** rng.uniform(-1.0, np.log10(spec.leverage_top), n)
    cash = np.where(notional > 0, notional / lev_target - upnl, cap * rng.uniform(0.5, 2.0, n))
    cash = np.maximum(cash, 0.0)
    other = np.zeros(n)
    if spec.stressed:
        hit = rng.random(n) < 0.3
        other = np.where(hit, -rng.uniform(0.0, 1.3, n) * np.abs(cash + upnl), 0.0)
    account_upnl = upnl + other
    equity = cash + account_upnl
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(equity > 0, notional / np.where(equity > 0, equity, 1.0), np.inf)
    mmr = rng.choice(np.array([0.005, 0.01, 0.03]), size=n)
    maintenance = notional * mmr

    gains = np.zeros((n, 3))
    if spec.gains_mode != "none":
        rows = np.ones(n, dtype=bool) if spec.gains_mode == "all" else rng.random(n) < 0.4
        ladder = cap[:, None] * rng.uniform(0.0, 0.6, (n, 3)) * (rng.random((n, 3)) < 0.7)
        gains = np.where(rows[:, None], ladder, 0.0)

    account = rng.choice(10 * n + 10, size=n, replace=False).astype(np.int64)
    group = account.copy()
    if spec.shared_groups and n > 1:
        owner = rng.integers(0, max(1, n // 3), n)
        joined = rng.random(n) < 0.5
        group = np.where(joined, account[owner], account)

    fields = {
        "capacity": cap,
        "lots": lots,
        "lot_value": lot_value,
        "side": side,
        "entry": entry,
        "upnl": upnl,
        "cash": cash,
        "equity": equity,
        "account_upnl": account_upnl,
        "leverage": leverage,
        "maintenance": maintenance,
        "gains": gains,
        "group": group,
    }
    if spec.tie_rows and tie_dst.size:
        # whole-row ties: identical positions held by different accounts
        for arr in fields.values():
            arr[tie_dst] = arr[tie_src]
    prev_mark = mark * (1.0 + rng.uniform(-0.02, 0.02))
    bankruptcy = mark * (1.0 - side0 * spec.gap)
    return Snapshot.build(
        account=account,
        mark=mark,
        prev_mark=prev_mark,
        bankruptcy_price=bankruptcy,
        lot_size=lot_size,
        **fields,
    )


def lot_grid_capacity(snap: Snapshot) -> np.ndarray:
    """Per row, the dollars :func:`market.adl.base.execute` can raise by closing whole lots.

    ``max_lots(snap) * lot_value`` (:func:`market.adl.base.max_lots`, the helper ``execute``
    itself uses: ``min(lots, floor(capacity / lot_value))`` with a relative slack of 1e-12, so
    0.3 holds three lots of 0.1; 0 where the lot value is 0).  Rules with
    ``price_rule="none"`` are not limited by the lot grid: their limit is ``capacity`` itself.
    """
    require(isinstance(snap, Snapshot), "snapshot", "a market.adl.Snapshot", type(snap).__name__)
    return max_lots(snap) * snap.lot_value


def _check_bounds(min_n: int, max_n: int) -> None:
    require(isinstance(min_n, int) and min_n >= 0, "snapshots.min_n", "an int >= 0", min_n)
    require(
        isinstance(max_n, int) and max_n >= max(min_n, 1),
        "snapshots.max_n",
        f"an int >= max(min_n, 1) = {max(min_n, 1)}",
        max_n,
    )


def _pick(draw: st.DrawFn, options: tuple[tuple[object, int], ...]) -> Any:
    """Draw one of ``options`` (value, weight) with the given integer weights.

    The first option is the one hypothesis shrinks towards.
    """
    total = sum(w for _, w in options)
    k = draw(st.integers(0, 2**16)) % total
    for value, weight in options:
        if k < weight:
            return value
        k -= weight
    return options[-1][0]  # pragma: no cover - unreachable


#: Exponents of the typical lots per row: a few to thousands, or thousands to 1e10.
_FEW_LOTS = st.floats(-0.5, 3.5)
_MANY_LOTS = st.floats(3.5, 10.0)


@st.composite
def _snapshots(
    draw: st.DrawFn, min_n: int, max_n: int, lot_grid: bool, allow_zero: bool, allow_ties: bool
) -> Snapshot:
    # Hypothesis favours the smallest value of a bounded integer strongly (about 40% of draws);
    # a wide integer taken modulo the span keeps small snapshots common but not dominant (about
    # one in seven draws is a one-row snapshot), and still shrinks towards min_n.
    span = _pick(draw, ((max_n - min_n, 5), (min(3, max_n - min_n), 1), (0, 1)))
    n = min_n + draw(st.integers(0, 2**16)) % (span + 1)
    spec = _Spec(
        n=n,
        alpha=draw(st.floats(1.1, 3.0)),
        cap_mode=draw(st.sampled_from(_CAP_MODES)) if allow_ties else "pareto",
        lots_per_row=10.0 ** draw(_pick(draw, ((_FEW_LOTS, 3), (_MANY_LOTS, 1)))),
        zero_frac=_pick(draw, ((0.0, 6), (0.2, 3), (0.5, 2), (1.0, 1))) if allow_zero else 0.0,
        tie_frac=_pick(draw, ((0.0, 2), (0.3, 1), (0.8, 1))) if allow_ties else 0.0,
        tie_rows=draw(st.booleans()),
        lot_mode=_pick(draw, (("uniform", 3), ("per_row", 1))),
        zero_lot_values=allow_zero and draw(st.booleans()),
        lot_grid=lot_grid,
        distinct=not allow_ties,
        side_mode=draw(st.sampled_from(_SIDE_MODES)),
        stressed=draw(st.booleans()),
        gains_mode=draw(st.sampled_from(_GAINS_MODES)),
        shared_groups=draw(st.booleans()),
        mark=10.0 ** draw(st.floats(-1.0, 4.7)),
        lot_size=draw(st.sampled_from(_LOT_SIZES)),
        gap=10.0 ** draw(st.floats(-4.0, -0.3)),
        value_decades=_pick(draw, ((1.3, 1), (8.0, 1))),
        leverage_top=_pick(draw, ((50.0, 3), (1e4, 1))),
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return _make(spec, np.random.default_rng(seed))


def snapshots(
    min_n: int = 1,
    max_n: int = 60,
    *,
    lot_grid: bool = True,
    allow_zero: bool = True,
    allow_ties: bool = True,
) -> st.SearchStrategy[Snapshot]:
    """Hypothesis strategy of varied ADL snapshots with ``min_n <= n <= max_n`` rows.

    Capacities are Pareto with tail index ``alpha`` in [1.1, 3] (some exactly on the lot grid),
    at real magnitudes: up to 1e10 lots per row; lot values are uniform per snapshot, as the
    exchange produces them, or sometimes per row, spread over 1.3 or eight decades; sides are
    all long, all short or mixed (with some losers); leverage from 0.1 to 50, sometimes to 1e4,
    and sometimes non-positive equity; an optional gains ladder; sometimes shared owners (groups).

    Args:
        min_n: fewest rows (0 allowed: the empty snapshot).
        max_n: most rows.
        lot_grid: if True, ``lots * lot_value >= capacity`` on every row with a positive lot
            value; if False some positions hold fewer lots than their capacity needs.
        allow_zero: allow zero capacities (sometimes every row), zero lot values on some rows.
        allow_ties: allow exact ties in capacity, or whole identical rows under other accounts;
            if False every capacity is distinct (continuous Pareto draws, at most one zero).

    Raises:
        InputError: for bad bounds.
    """
    _check_bounds(min_n, max_n)
    return _snapshots(min_n, max_n, bool(lot_grid), bool(allow_zero), bool(allow_ties))


def budgets(snapshot: Snapshot, infeasible: bool = True) -> st.SearchStrategy[float]:
    """Hypothesis strategy of budgets for ``snapshot``.

    With ``infeasible=True``: budgets in ``[0, 1.5 * sum(capacity)]``, drawn often exactly at
    0, ``sum(capacity)``, the lot-grid capacity, the largest and the smallest positive row
    capacity, and otherwise uniformly; an all-zero snapshot also gets a budget of 1.  With
    ``infeasible=False``: budgets in ``[0, min(sum(capacity), lot-grid capacity)]``, so every
    budget can be met both in wealth space and on the lot grid.
    """
    require(
        isinstance(snapshot, Snapshot), "snapshot", "a market.adl.Snapshot", type(snapshot).__name__
    )
    cap = snapshot.capacity
    total = float(cap.sum())
    grid = float(lot_grid_capacity(snapshot).sum())
    top = 1.5 * total if infeasible else min(total, grid)
    specials = {0.0, top}
    if infeasible:
        specials |= {total, grid}
        if total == 0.0:
            specials.add(1.0)
    positive = cap[cap > 0]
    if positive.size:
        specials |= {float(positive.max()), float(positive.min())}
    specials = {b for b in specials if b <= max(top, 1.0 if infeasible else 0.0)}
    uniform = st.floats(0.0, 1.0).map(lambda f: f * top)
    return st.one_of(st.sampled_from(sorted(specials)), uniform)


def large_snapshot(n: int, rng: np.random.Generator) -> Snapshot:
    """A large snapshot drawn with numpy only (no hypothesis), for large-N checks and benchmarks.

    ``n`` long winners with Pareto(1.5) capacities (5% zero, some exact ties), one lot value
    for every row, at least 100 lots per row with capacity, a gains ladder on some rows and
    leverage from 0.1 to 50.  The same ``rng`` state gives the same snapshot.
    """
    require(isinstance(n, int | np.integer) and n >= 1, "large_snapshot.n", "an int >= 1", n)
    require(
        isinstance(rng, np.random.Generator),
        "large_snapshot.rng",
        "a numpy.random.Generator",
        type(rng).__name__,
    )
    spec = _Spec(
        n=int(n),
        alpha=1.5,
        cap_mode="mixed",
        zero_frac=0.05,
        tie_frac=0.01,
        gains_mode="some",
        mark=100.0,
        lot_size=0.1,
        gap=0.02,
    )
    return _make(spec, rng)
