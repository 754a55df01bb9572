"""Sybil owners: one economic exposure spread over several accounts to sit low in a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from agents.base import SYBIL, Members, Trader
from market.accounts import ACTIVE, BOOK, VAULT, book_gain
from market.events import TRADE_KINDS
from market.exchange import fill_arithmetic
from market.liquidity import average_impact

if TYPE_CHECKING:  # pragma: no cover
    from experiments.game.model import ADLGame


def sybil_split(
    equity: float, leverage: float, parts: int, safe_leverage: float, max_leverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Equity and notional per account for an owner hiding from a leverage-based score.

    The owner wants total notional ``leverage * equity``.  ``parts - 1`` accounts run at
    ``safe_leverage`` (low in a notional/equity ranking); one sacrificial account carries the
    rest of the notional at ``max_leverage`` with as little equity as that needs.  If the
    owner's leverage is already at or below the safe level, the parts are equal.

    Returns:
        (equity per account, notional per account), each of length ``parts``; the sums are
        ``equity`` and ``leverage * equity``.
    """
    total_n = leverage * equity
    if leverage <= safe_leverage or parts == 1:
        return np.full(parts, equity / parts), np.full(parts, total_n / parts)
    e_x = (total_n - safe_leverage * equity) / (max_leverage - safe_leverage)
    e_x = min(max(e_x, 0.0), equity)
    e_safe = (equity - e_x) / (parts - 1)
    eq = np.append(np.full(parts - 1, e_safe), e_x)
    notional = np.append(
        np.full(parts - 1, safe_leverage * e_safe), total_n - safe_leverage * (equity - e_x)
    )
    return eq, notional


class SybilOwner(Trader):
    """Holds one exposure over ``k`` accounts (one exchange group), arranged by :func:`sybil_split`.

    The safe level is the population's median leverage, so the safe accounts sit mid-queue
    under a leverage-based score; the sacrificial account is small.  Under a rule that looks
    at the group's total (pro-rata on profit) the split changes nothing.
    """

    type_code = SYBIL

    @classmethod
    def arrange(cls, model: ADLGame, agent: SybilOwner) -> None:
        """Open (or re-open) the owner's positions over its accounts."""
        ex = model.exchange
        k = agent.market
        accounts = agent.accounts
        if (ex.acc.pos[accounts, k] != 0).any():
            ex.close_all(accounts[ex.acc.pos[accounts, k] != 0])
        cash = ex.acc.cash[accounts].copy()
        total = float(cash.sum())
        safe = model.scenario.passive.leverage_median
        max_lev = 0.9 / ex.specs[k].initial_margin
        eq, notional = sybil_split(total, agent.leverage, accounts.size, safe, max_lev)
        # move cash between the owner's own (now flat) accounts to match the split
        head = int(accounts[0])
        for j in range(1, accounts.size):
            if cash[j] > 0:
                ex.transfer(int(accounts[j]), head, float(cash[j]))
        for j in range(1, accounts.size):
            if eq[j] > 0:
                ex.transfer(head, int(accounts[j]), float(min(eq[j], ex.acc.cash[head])))
        lots = np.floor(notional / (ex.marks[k] * ex.lot[k])).astype(np.int64) * agent.side
        go = lots != 0
        if go.any():
            ex.trade(accounts[go], k, lots[go])

    @classmethod
    def arrange_all(cls, model: ADLGame, agents: list[SybilOwner]) -> None:
        """:meth:`arrange` every owner in ``agents``, in order, as one batch.

        The result is the same, bit for bit, as calling :meth:`arrange` owner after owner
        (the reference): see :func:`_arrange_batch`.  Falls back to the reference loop for
        layouts the batch does not cover (owners with different account counts or more than
        seven accounts, positions in another market, inactive accounts).
        """
        if not agents:
            return
        if not _arrange_batch(model, agents):
            for agent in agents:
                cls.arrange(model, agent)

    @classmethod
    def after_crisis(cls, model: ADLGame, members: Members) -> None:
        """Re-arrange every owner after the crisis (ranks moved)."""
        cls.arrange_all(model, members.agents)


_KIND_ORDER = TRADE_KINDS.index("order")
#: Largest accounts per owner for the batch (numpy sums rows shorter than 8 left to right).
_BATCH_MAX_ACCOUNTS = 7
#: Rounds of the consumed-depth fixed point before falling back to the reference loop.
_BATCH_MAX_ROUNDS = 60


def _excl_cumsum(x: np.ndarray) -> np.ndarray:
    """Exclusive running sum along rows (left to right, as ``fill_prices`` walks a batch)."""
    out = np.zeros_like(x)
    if x.shape[1] > 1:
        out[:, 1:] = np.cumsum(x, axis=1)[:, :-1]
    return out


def _book_gain_rows(g: np.ndarray, amount: np.ndarray) -> None:
    """:func:`market.accounts.book_gain` over every row of ``g`` (in place)."""
    book_gain(g, np.arange(g.shape[0]), amount)


def _arrange_batch(model: ADLGame, agents: list[SybilOwner]) -> bool:
    """Arrange owners as a batch with the same bits as the owner-by-owner reference.

    Owner o's turn is two exchange calls in a fixed order (close its positions; transfers
    between its own accounts; open the new split).  Owners share only the book: the depth
    consumed so far in the step (``fill_prices`` walks it in call order), the book account,
    the fund and fee revenue.  Everything an owner does depends on the others only through
    the depth consumed before each of its calls, so the batch solves for that sequence as a
    fixed point: guess it, compute every owner's orders at once, recompute the sequence from
    the orders (a running sum per market and side, in call order), repeat until it does not
    change.  The k-th round fixes at least the first k calls, so the fixed point is the
    sequential answer; in practice two or three rounds.  Then the book, fund and fee
    revenue are updated call by call (scalars) and the accounts and log in one pass.

    Returns False (nothing changed) when the layout is not covered.
    """
    ex = model.exchange
    acc = ex.acc
    n_acc = {a.accounts.size for a in agents}
    if len(n_acc) != 1:
        return False
    k = n_acc.pop()
    if k > _BATCH_MAX_ACCOUNTS or k < 1:
        return False
    m_own = np.fromiter((a.market for a in agents), dtype=np.int64, count=len(agents))
    side = np.fromiter((a.side for a in agents), dtype=np.int64, count=len(agents))
    lev = np.fromiter((a.leverage for a in agents), dtype=np.float64, count=len(agents))
    accs = np.stack([a.accounts for a in agents]).astype(np.int64)
    flat = accs.ravel()
    n_own = len(agents)
    if np.unique(flat).size != flat.size:
        return False
    if flat.min() < 0 or flat.max() >= acc.n:
        return False
    flags = acc.flags[flat]
    if ((flags & ACTIVE) == 0).any() or ((flags & (BOOK | VAULT)) != 0).any():
        return False
    pos_all = acc.pos[flat]  # (M*k, K)
    own_m = np.repeat(m_own, k)
    other = pos_all.copy()
    other[np.arange(flat.size), own_m] = 0
    if (other != 0).any():
        return False
    mk = m_own[:, None]
    q0 = acc.pos[accs, mk]  # (M, k)
    e0 = acc.entry[accs, mk]
    cash0 = acc.cash[accs]
    fees0 = acc.fees_paid[accs]
    gains0 = acc.gains[flat]  # (M*k, 3)
    lot = ex.lot[m_own][:, None]
    mark = ex.marks[m_own][:, None]
    taker = np.array([s.taker_fee for s in ex.specs])[m_own][:, None]
    safe = model.scenario.passive.leverage_median
    max_lev = np.array([0.9 / s.initial_margin for s in ex.specs])[m_own]
    rates = np.array([s.initial_margin for s in ex.specs])[m_own][:, None]
    markets = np.unique(m_own)
    impact = {
        int(m): (
            ex._depth_eff(int(m)),
            ex.specs[m].impact,
            ex.specs[m].impact_exponent,
            ex.specs[m].max_impact,
        )
        for m in markets
    }

    def prices(start: np.ndarray, size: np.ndarray, sgn: np.ndarray) -> np.ndarray:
        out = np.empty_like(size)
        for m in markets:
            rows = m_own == m
            d, imp, expo, cap = impact[int(m)]
            avg = average_impact(start[rows], size[rows], d, imp, expo, cap)
            out[rows] = mark[rows] * (1.0 + sgn[rows] * avg)
        return out

    def walk(x: np.ndarray, sgn: np.ndarray, cb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Book starts of orders ``x`` (0 = no order) and the per-row, per-side consumption."""
        start = np.zeros_like(x)
        inc = np.zeros((n_own, 2))
        for j, sg in enumerate((-1, 1)):
            xs = np.where(sgn == sg, x, 0.0)
            start = np.where(sgn == sg, cb[:, j, None] + _excl_cumsum(xs), start)
            inc[:, j] = xs.sum(axis=1)
        return start, inc

    # the close call (only owners with an open position) has fixed orders
    close_dq = -q0
    has_close = (q0 != 0).any(axis=1)
    close_x = np.abs(close_dq) * lot * mark
    close_sgn = np.sign(close_dq)
    _, close_inc = walk(close_x, close_sgn, np.zeros((n_own, 2)))

    c0 = ex._consumed[m_own]  # (M, 2) depth already consumed in each owner's market

    def before(inc_close: np.ndarray, inc_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth consumed before each owner's close and open calls (running sums per market)."""
        cb_close = np.empty((n_own, 2))
        cb_open = np.empty((n_own, 2))
        for m in markets:
            rows = np.flatnonzero(m_own == m)
            for j in range(2):
                seq = np.empty(2 * rows.size + 1)
                seq[0] = ex._consumed[m, j]
                seq[1::2] = inc_close[rows, j]
                seq[2::2] = inc_open[rows, j]
                run = np.cumsum(seq)
                cb_close[rows, j] = run[0:-1:2]
                cb_open[rows, j] = run[1::2]
        return cb_close, cb_open

    cb_close = c0.copy()
    cb_open = c0.copy()
    state = None
    for _ in range(_BATCH_MAX_ROUNDS):
        state = _arrange_round(
            ex, accs, q0, e0, cash0, fees0, gains0, lot, mark, taker, rates, side, lev,
            safe, max_lev, close_x, close_sgn, cb_close, cb_open, prices, walk,
        )  # fmt: skip
        if state is None:
            return False
        nc, no = before(close_inc, state["open_inc"])
        if np.array_equal(nc, cb_close) and np.array_equal(no, cb_open):
            break
        cb_close, cb_open = nc, no
    else:
        return False
    _arrange_apply(ex, model, accs, m_own, has_close, close_dq, close_x, q0, state, lot)
    # depth consumed at the end: the last running sum per market and side
    for m in markets:
        last = np.flatnonzero(m_own == m)[-1]
        ex._consumed[m] = cb_open[last] + state["open_inc"][last]
    return True


def _arrange_round(
    ex, accs, q0, e0, cash0, fees0, gains0, lot, mark, taker, rates, side, lev, safe, max_lev,
    close_x, close_sgn, cb_close, cb_open, prices, walk,
) -> dict | None:  # fmt: skip
    """One round of the batch: every owner's close, transfers and open, given the depth."""
    n_own, k = accs.shape
    # close: fill every open position at the book
    start, _ = walk(close_x, close_sgn, cb_close)
    c_px = prices(start, close_x, close_sgn)
    closing = q0 != 0
    c_px = np.where(closing, c_px, 0.0)
    _, e_after, realised = fill_arithmetic(q0, e0, -q0, c_px, lot)
    e_after = np.where(closing, e_after, e0)
    g = gains0.copy()
    cash = np.where(closing, cash0 + realised, cash0)
    rl = np.where(closing, realised, 0.0).ravel()
    _book_gain_rows(g, np.where(closing.ravel(), rl, 0.0))
    c_fee = np.abs(-q0) * lot * c_px * taker
    cash = np.where(closing, cash - c_fee, cash)
    fees = np.where(closing, fees0 + c_fee, fees0)
    _book_gain_rows(g, np.where(closing.ravel(), -c_fee.ravel(), 0.0))
    g = g.reshape(n_own, k, 3)
    # the split, and transfers between the owner's own (now flat) accounts
    total = cash.sum(axis=1)
    eq_t, notional = _split_rows(total, lev, k, safe, max_lev)
    head = cash[:, 0].copy()
    gh = g[:, 0, :].copy()
    for j in range(1, k):
        go = cash[:, j] > 0
        amt = np.where(go, cash[:, j], 0.0)
        head = np.where(go, head + amt, head)
        gj = g[:, j, :].copy()
        book_gain(gj, np.flatnonzero(go), -amt[go])
        g[:, j, :] = gj
        cash[:, j] = np.where(go, cash[:, j] - amt, cash[:, j])
    for j in range(1, k):
        go = eq_t[:, j] > 0
        amt = np.where(go, np.minimum(eq_t[:, j], head), 0.0)
        if not (np.isfinite(amt[go]).all() and (amt[go] > 0).all()):
            return None  # the reference raises here; let it
        head = np.where(go, head - amt, head)
        book_gain(gh, np.flatnonzero(go), -amt[go])
        cash[:, j] = np.where(go, cash[:, j] + amt, cash[:, j])
    cash[:, 0] = head
    g[:, 0, :] = gh
    # open the split: margin checked at the quoted prices, filled at the book
    lots = np.floor(notional / (mark * lot)).astype(np.int64) * side[:, None]
    want = lots != 0
    o_x = np.abs(lots) * lot * mark
    o_sgn = np.sign(lots)
    o_x = np.where(want, o_x, 0.0)
    start, _ = walk(o_x, o_sgn, cb_open)
    quote = prices(start, o_x, o_sgn)
    cost = lots * lot * (quote - mark)
    fee_q = np.abs(lots) * lot * quote * taker
    eq_after = (cash + 0.0) - cost - fee_q  # flat accounts: equity = cash + a zero PnL
    nt = np.abs(lots) * (lot * mark)
    im_after = nt * rates  # one market per owner: the matmul's single non-zero term
    ok = want & (eq_after >= im_after)
    fx = np.where(ok, o_x, 0.0)
    start, open_inc = walk(fx, o_sgn, cb_open)
    o_px = np.where(ok, prices(start, fx, o_sgn), 0.0)
    return {
        "close_px": c_px,
        "close_fee": c_fee,
        "close_realised": realised,
        "e_after_close": e_after,
        "cash_before_open": cash.copy(),
        "gains_before_open": g.copy(),
        "fees_before_open": fees.copy(),
        "lots": lots,
        "ok": ok,
        "open_px": o_px,
        "open_inc": open_inc,
    }


def _split_rows(
    total: np.ndarray, lev: np.ndarray, k: int, safe: float, max_lev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sybil_split` for many owners at once (the same arithmetic), (M, k) each."""
    total_n = lev * total
    simple = (lev <= safe) | (k == 1)
    eq = np.repeat((total / k)[:, None], k, axis=1)
    nt = np.repeat((total_n / k)[:, None], k, axis=1)
    if k > 1 and not simple.all():
        with np.errstate(divide="ignore", invalid="ignore"):
            e_x = (total_n - safe * total) / (max_lev - safe)
            e_x = np.minimum(np.maximum(e_x, 0.0), total)
            e_safe = (total - e_x) / (k - 1)
        split_eq = np.repeat(e_safe[:, None], k, axis=1)
        split_eq[:, -1] = e_x
        split_nt = np.repeat((safe * e_safe)[:, None], k, axis=1)
        split_nt[:, -1] = total_n - safe * (total - e_x)
        eq = np.where(simple[:, None], eq, split_eq)
        nt = np.where(simple[:, None], nt, split_nt)
    return eq, nt


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def _arrange_apply(ex, model, accs, m_own, has_close, close_dq, close_x, q0, st, lot) -> None:
    """Write the batch's result: accounts at once, then the book, fund and fees call by call."""
    acc = ex.acc
    n_own, k = accs.shape
    mk = m_own[:, None]
    ok = st["ok"]
    lots = st["lots"]
    o_px = st["open_px"]
    # the owners' accounts: close, transfers (already in the round's state), open
    e_close = st["e_after_close"]
    zero = np.zeros_like(lots)
    _, e_open, r_open = fill_arithmetic(zero, e_close, lots, o_px, lot)
    o_fee = np.abs(lots) * lot * o_px * np.array([s.taker_fee for s in ex.specs])[mk]
    cash = st["cash_before_open"]
    cash = np.where(ok, cash + r_open, cash)
    cash = np.where(ok, cash - o_fee, cash)
    fees = np.where(ok, st["fees_before_open"] + o_fee, st["fees_before_open"])
    g = st["gains_before_open"].reshape(n_own * k, 3)
    okf = ok.ravel()
    book_gain(g, np.flatnonzero(okf), r_open.ravel()[okf])
    book_gain(g, np.flatnonzero(okf), -o_fee.ravel()[okf])
    acc.pos[accs, mk] = np.where(ok, lots, 0)
    acc.entry[accs, mk] = np.where(ok, e_open, e_close)
    acc.cash[accs] = cash
    acc.fees_paid[accs] = fees
    acc.gains[accs.ravel()] = g
    # the calls in order: owner by owner, close then open
    closing = q0 != 0
    c_px, c_fee, c_real = st["close_px"], st["close_fee"], st["close_realised"]
    valid = np.stack([closing, ok], axis=1)  # (M, 2, k)
    dq = np.stack([close_dq, lots], axis=1)
    px = np.stack([c_px, o_px], axis=1)
    fee = np.stack([c_fee, o_fee], axis=1)
    real = np.stack([c_real, r_open], axis=1)
    dq = np.where(valid, dq, 0)
    px = np.where(valid, px, 0.0)
    fee = np.where(valid, fee, 0.0)
    lot3 = lot[:, :, None]
    buy = valid & (dq > 0)
    sell = valid & (dq < 0)
    buy_q = np.where(buy, dq, 0).sum(axis=2)
    sell_q = np.where(sell, dq, 0).sum(axis=2)
    dqpx = dq * px
    buy_v = np.where(buy, dqpx, 0.0).sum(axis=2)
    sell_v = np.where(sell, dqpx, 0.0).sum(axis=2)
    taker_total = fee.sum(axis=2)
    maker_base = (np.abs(dq) * lot3 * px).sum(axis=2)
    called = valid.any(axis=2)
    book = ex.book
    fund_kind = ex.backstop.kind == "fund"
    share = ex.backstop.fee_share
    mm_k = [s.maker_fee for s in ex.specs]
    lot_k = ex.lot.tolist()
    bq = acc.pos[book].tolist()
    be = acc.entry[book].tolist()
    bcash = float(acc.cash[book])
    bfees = float(acc.fees_paid[book])
    bg = acc.gains[book].tolist()
    fund = ex.fund
    revenue = ex.fee_revenue

    def gain(amt: float) -> None:
        # market.accounts.book_gain for the book's one row, on Python floats: called once per
        # owner and side, where a numpy call each would cost more than the whole batch saves;
        # the same operations in the same order (arrange_all == arrange is tested bit for bit)
        if amt > 0:
            bg[0] += amt
        elif amt < 0:
            left = -amt
            for layer in range(len(bg)):
                take = min(bg[layer], left)
                bg[layer] -= take
                left = left - take

    rows = zip(
        called.ravel().tolist(),
        np.repeat(m_own, 2).tolist(),
        buy_q.ravel().tolist(),
        buy_v.ravel().tolist(),
        sell_q.ravel().tolist(),
        sell_v.ravel().tolist(),
        taker_total.ravel().tolist(),
        maker_base.ravel().tolist(),
        strict=True,
    )
    for on, m, b_q, b_v, s_q, s_v, tk, mb in rows:
        if not on:
            continue
        for q, v in ((b_q, b_v), (s_q, s_v)):
            if not q:
                continue
            vwap = v / q
            d = -q
            q0b, e0b = bq[m], be[m]
            q1 = q0b + d
            same = q0b == 0 or _sign(q0b) == _sign(d)
            closed = 0 if same else min(abs(d), abs(q0b))
            realised = closed * _sign(q0b) * lot_k[m] * (vwap - e0b)
            grown = (q0b * e0b + d * vwap) / (q1 if q1 != 0 else 1)
            flipped = (not same) and abs(d) > abs(q0b)
            bq[m] = q1
            be[m] = 0.0 if q1 == 0 else (grown if same else (vwap if flipped else e0b))
            bcash += realised
            gain(realised)
        to_fund = tk * share if fund_kind else 0.0
        fund += to_fund
        revenue += tk - to_fund
        maker = mb * mm_k[m]
        if maker:
            bcash -= maker
            bfees += maker
            gain(-maker)
            to_fund = maker * share if fund_kind else 0.0
            fund += to_fund
            revenue += maker - to_fund
    acc.pos[book] = bq
    acc.entry[book] = be
    acc.cash[book] = bcash
    acc.fees_paid[book] = bfees
    acc.gains[book] = bg
    ex.fund = fund
    ex.fee_revenue = revenue
    # the trade log: one row per filled order, in call order
    sel = valid.ravel()
    if sel.any():
        acc3 = np.stack([accs, accs], axis=1).ravel()[sel]
        mk3 = np.repeat(m_own, 2 * k)[sel]
        ex.log.trades.append(
            step=ex.step_no,
            account=acc3,
            counterparty=book,
            market=mk3,
            lots=dq.ravel()[sel],
            price=px.ravel()[sel],
            mark=ex.marks[mk3],
            fee=fee.ravel()[sel],
            realised=real.ravel()[sel],
            kind=_KIND_ORDER,
        )
