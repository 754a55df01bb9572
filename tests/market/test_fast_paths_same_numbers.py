"""The batched and scalar fast paths leave every number as the paths they replace, bit for bit:
each account's cash and gains entries and every position are updated by the same operations
in the same order, so accounts, positions and every log compare equal byte for byte."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import PassiveTrader
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.studies.crash import CrashConfig, crash_exchange
from market import arrays
from market.adl import get_policy
from market.exchange import BackstopConfig, Exchange
from market.liquidity import fill_prices, fill_prices_books
from market.spec import MarketSpec
from market.waterfall import Waterfall


def _digest(ex: Exchange) -> str:
    """Accounts, positions, backstop and every event log of an exchange, as one hash."""
    h = hashlib.sha256()
    acc = ex.acc
    for a in (acc.cash, acc.gains, acc.fees_paid, acc.flags):
        h.update(np.ascontiguousarray(a).tobytes())
    for k in range(ex.K):
        for a in acc.positions.holders(k):
            h.update(a.tobytes())
    for name in ("trades", "bankruptcies", "adl", "waves", "socialised"):
        h.update(getattr(ex.log, name).to_array().tobytes())
    h.update(np.array([ex.fund, ex.debt, ex.fee_revenue]).tobytes())
    return h.hexdigest()


def _crash(policy: str, markets: int, shape: str) -> str:
    flat = {"positions_tail": 0.0, "market_zipf": 0.0} if shape == "one" else {}
    cfg = CrashConfig(accounts=3000, markets=markets, seed=4, fund=2e4, **flat)
    ex = crash_exchange(cfg, get_policy(policy), np.random.default_rng(4))
    for s in range(4):
        ex.step(ex.marks * (0.85 if s % 2 == 0 else 1.05))
    return _digest(ex)


@pytest.mark.parametrize("policy", ["hyperliquid", "pro_rata", "seniority", "dydx", "rap"])
@pytest.mark.parametrize(("markets", "shape"), [(1, "one"), (6, "venue"), (30, "venue")])
def test_waves_executed_together_equal_wave_by_wave(monkeypatch, policy, markets, shape):
    together = _crash(policy, markets, shape)
    monkeypatch.setattr(Waterfall, "batch_adl", False)
    assert _crash(policy, markets, shape) == together


def _game(policy: str) -> str:
    sc = load_scenario("default").replace(**{"run.traders": 400, "run.crises": 2})
    game = ADLGame(sc, seed=5, policy=policy, two_pass=False)
    game.run()
    return _digest(game.exchange)


@pytest.mark.parametrize("policy", ["hyperliquid", "seniority"])
def test_scalar_paths_for_few_rows_equal_the_array_paths(monkeypatch, policy):
    scalar = _game(policy)
    monkeypatch.setattr(arrays, "FEW_ROWS", 0)  # every call through the array paths
    assert _game(policy) == scalar


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.floats(1e-3, 1e9), min_size=1, max_size=arrays.FEW_ROWS),
    sides=st.lists(st.sampled_from([-1, 1]), min_size=arrays.FEW_ROWS, max_size=arrays.FEW_ROWS),
    consumed=st.tuples(st.floats(0, 1e9), st.floats(0, 1e9)),
    depth=st.floats(1e3, 1e9),
    exponent=st.sampled_from([0.5, 1.0, 1.5, 2.0, 0.37]),
    cap=st.floats(0.001, 0.5),
)
def test_few_orders_walk_the_book_as_the_array_path(sizes, sides, consumed, depth, exponent, cap):
    """The scalar walk of a few orders gives the array walk's prices and consumption, bit for
    bit (the impact cap reached or not, both sides mixed)."""
    size = np.array(sizes)
    side = np.array(sides[: size.size])
    args = (100.0, size, side, np.array(consumed), depth, 0.01, exponent, cap)
    few = fill_prices(*args)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arrays, "FEW_ROWS", 0)
        full = fill_prices(*args)
    assert few[0].tobytes() == full[0].tobytes()
    assert few[1].tobytes() == full[1].tobytes()


@st.composite
def _books(draw):
    """Several books' orders (one side or both, some empty books, zero orders) and curves."""
    n_books = draw(st.integers(1, 6))
    sizes, sides, bounds, marks = [], [], [0], []
    consumed, depth, impact, exponent, cap = [], [], [], [], []
    for _ in range(n_books):
        n = draw(st.integers(0, 40))
        one_side = draw(st.sampled_from([-1, 1, 0]))  # 0: both sides mixed
        mark = draw(st.floats(1e-3, 1e5))
        for _ in range(n):
            zero = draw(st.integers(0, 19)) == 0
            sizes.append(0.0 if zero else draw(st.floats(1e-3, 1e9)))
            sides.append(0 if zero else one_side or draw(st.sampled_from([-1, 1])))
            marks.append(mark)
        bounds.append(len(sizes))
        consumed.append((draw(st.floats(0, 1e9)), draw(st.floats(0, 1e9))))
        depth.append(draw(st.floats(1e3, 1e9)))
        impact.append(draw(st.floats(1e-4, 0.1)))
        exponent.append(draw(st.sampled_from([0.5, 1.0, 1.5, 0.37])))
        cap.append(draw(st.floats(0.001, 0.5)))
    return sizes, sides, bounds, marks, consumed, depth, impact, exponent, cap


@settings(max_examples=300, deadline=None)
@given(books=_books())
def test_books_walked_together_equal_one_walk_per_book(books):
    """Orders of several books priced in one call get the prices and book consumption of one
    :func:`fill_prices` call per book, bit for bit (each book its own curve and exponent, one
    side or both, zero orders priced at the mark)."""
    sizes, sides, bounds, marks, consumed, depth, impact, exponent, cap = books
    size, side, mark = np.array(sizes), np.array(sides, dtype=np.int64), np.array(marks)
    got, new = fill_prices_books(
        mark, size, side, bounds, np.array(consumed), depth, impact, exponent, cap
    )
    for b in range(len(bounds) - 1):
        lo, hi = bounds[b], bounds[b + 1]
        if lo == hi:
            assert new[b].tobytes() == np.array(consumed[b]).tobytes()
            continue
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(arrays, "FEW_ROWS", 0)
            px, used = fill_prices(
                marks[lo], size[lo:hi], side[lo:hi], np.array(consumed[b]),
                depth[b], impact[b], exponent[b], cap[b],
            )  # fmt: skip
        priced = side[lo:hi] != 0
        assert got[lo:hi][priced].tobytes() == px[priced].tobytes()
        assert (got[lo:hi][~priced] == marks[lo]).all()
        assert new[b].tobytes() == used.tobytes()


def _snapshot_bytes(ex: Exchange, side: int) -> bytes:
    out = []
    for snap in ex.ranking_snapshots(side):
        for name in ("account", "lots", "equity", "maintenance", "leverage", "capacity"):
            out.append(np.ascontiguousarray(getattr(snap, name)).tobytes())
    return b"".join(out)


@pytest.mark.parametrize("backstop", ["fund", "vault"])
@pytest.mark.parametrize("markets", [1, 3])
def test_ranking_snapshots_from_kept_sums_equal_fresh_ones(backstop, markets):
    """The lights' snapshots read the sums the waterfall step kept (the liquidated rows, the
    book and the vault read anew) when nothing moved since: the same snapshots, bit for bit,
    as from sums computed afresh; anything that moves a position drops them."""
    sc = load_scenario("default").replace(
        **{
            "run.traders": 300,
            "run.crises": 2,
            "market.markets": markets,
            "backstop.kind": backstop,
        }
    )
    game = ADLGame(sc, seed=3, two_pass=False, record=False)
    ex = game.exchange
    kept_steps = 0
    while game.running and game.t < game.total_steps:
        game.step()
        for side in (-1, 1):
            kept = ex._kept_sums() is not None
            got = _snapshot_bytes(ex, side)
            saved, ex._sums_kept = ex._sums_kept, None
            assert got == _snapshot_bytes(ex, side)
            ex._sums_kept = saved
            kept_steps += kept
    assert kept_steps > 0
    # a trade moves positions: the kept sums no longer stand
    ex.step(ex.marks)
    assert ex._kept_sums() is not None
    pas = game.members(PassiveTrader)
    k = int(pas.market[0])
    rows, lots, _ = ex.acc.positions.holders(k)
    mine = np.isin(rows, pas.account)  # a passive trader's position (not the book's)
    row, lot = rows[mine][:1], lots[mine][:1]
    assert ex.trade(row, k, -np.sign(lot))[0]  # a reducing order always fills
    assert ex._kept_sums() is None


@st.composite
def _few_orders(draw):
    """An exchange with open positions (one market or several, a fund with or without debt)
    and a few orders on unique rows: opens, adds, reductions, closes and flips, some too
    large for the margin, on both sides."""
    markets = draw(st.sampled_from([1, 3]))
    specs = tuple(
        MarketSpec(
            name=f"M{k}",
            lot_size=draw(st.sampled_from([1.0, 0.1, 0.001])),
            initial_margin=draw(st.sampled_from([0.02, 0.1])),
            taker_fee=draw(st.sampled_from([0.00045, 0.0])),
            maker_fee=draw(st.sampled_from([0.00015, 0.0, -0.0001])),
            depth=draw(st.sampled_from([1e4, 5e6])),
        )
        for k in range(markets)
    )
    marks = [draw(st.floats(1.0, 1e5)) for _ in range(markets)]
    debt = draw(st.sampled_from([0.0, 50.0]))
    n = draw(st.integers(1, 12))
    cash = [draw(st.floats(0.0, 1e6)) for _ in range(n)]
    held = [
        (draw(st.integers(0, n - 1)), draw(st.integers(0, markets - 1)), draw(st.integers(-50, 50)))
        for _ in range(draw(st.integers(0, 15)))
    ]
    m = draw(st.integers(0, markets - 1))
    rows = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=arrays.FEW_ROWS, unique=True))
    lots = []
    for r in rows:  # closing or halving a held position, or any order
        net = sum(q for r2, k, q in held if (r2, k) == (r, m))
        way = draw(st.sampled_from(["close", "half", "any"])) if net else "any"
        if way == "close" or (way == "half" and abs(net) < 2):
            lots.append(-net)
        else:
            lots.append(-(net // 2) if way == "half" else draw(st.integers(-80, 80).filter(bool)))
    fee = draw(st.booleans())
    consumed = (draw(st.floats(0.0, 1e5)), draw(st.floats(0.0, 1e5)))
    return specs, marks, debt, cash, held, m, sorted(rows), lots, fee, consumed


def _few_exchange(specs, marks, debt, cash, held, consumed) -> tuple[Exchange, np.ndarray]:
    ex = Exchange(
        specs, marks, backstop=BackstopConfig(capital=1e4, fee_share=0.2), shortfall="fund_debt"
    )
    ex.debt = debt
    rows = ex.open_accounts(len(cash), np.array(cash))
    for r, k, q in held:
        if q:
            ex.trade_genesis(rows[r : r + 1], k, np.array([q]), ex.marks[k] * 1.01)
    ex._consumed[:] = consumed
    return ex, rows


@settings(max_examples=300, deadline=None)
@given(case=_few_orders())
def test_few_orders_trade_as_the_array_path(case):
    """A few orders at the book (one lookup per row for its check and its fill, the fees
    charged row by row) leave the accounts, positions, backstop and logs of the array path,
    bit for bit, and refuse the same orders."""
    specs, marks, debt, cash, held, m, order_rows, lots, fee, consumed = case
    ex, rows = _few_exchange(specs, marks, debt, cash, held, consumed)
    ref, _ = _few_exchange(specs, marks, debt, cash, held, consumed)
    got = ex.trade(rows[order_rows], m, np.array(lots), fee=fee)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arrays, "FEW_ROWS", 0)
        want = ref.trade(rows[order_rows], m, np.array(lots), fee=fee)
    assert got.tolist() == want.tolist()
    assert _digest(ex) == _digest(ref)
    assert ex._consumed.tobytes() == ref._consumed.tobytes()


def _held_bits_match_lots(ex: Exchange) -> bool:
    """Whether every account's held-market bits name exactly the markets it holds lots in."""
    book = ex.acc.positions
    lots, _ = book.dense(ex.acc.n)
    return all(book.markets_of(r) == np.flatnonzero(lots[r]).tolist() for r in range(ex.acc.n))


@settings(max_examples=200, deadline=None)
@given(case=_few_orders(), more=st.integers(0, 12))
def test_one_market_margin_terms_equal_the_entries_path(case, more):
    """On one market, the margin check's equity and initial requirement from the rows' own
    lots and entries equal, bit for bit, those summed from their open positions; an array
    order of many rows keeps the held-market bits in step with the lots."""
    specs, marks, debt, cash, held, _, order_rows, _, fee, consumed = case
    held = [(r, 0, q) for r, _, q in held]
    ex, rows = _few_exchange(specs[:1], marks[:1], debt, cash + [1e5] * more, held, consumed)
    idx = rows[np.array(sorted(set(order_rows) | set(range(len(cash), len(cash) + more))))]
    book = ex.acc.positions
    fast = ex._equity_and_initial(idx, book.read(0, book.locate(0, idx)))
    slow = ex._equity_and_initial(idx)
    assert fast[0].tobytes() == slow[0].tobytes()
    assert fast[1].tobytes() == slow[1].tobytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arrays, "FEW_ROWS", 0)  # every order through Positions.write
        ex.trade(idx, 0, np.where(np.arange(idx.size) % 2 == 0, 3, -2), fee=fee)
        assert _held_bits_match_lots(ex)
        holders, q, _ = book.holders(0)
        traders = holders != ex.book
        close = holders[traders][: max(traders.sum() // 3, 1)]
        if close.size:  # closed (their entries kept while few), then reopened in place
            ex.deposit(close, 1e6)
            ex.trade(close, 0, -q[traders][: close.size], fee=fee)
            assert _held_bits_match_lots(ex)
            ex.trade(close, 0, 1, fee=fee)
            assert _held_bits_match_lots(ex)


@st.composite
def _ledger_turns(draw):
    """Unique rows of a small ledger, two or three turns of amounts (some -0.0: no entry),
    cash and ledger cells that include signed zeros."""
    n = draw(st.integers(1, 40))
    k = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rows = rng.permutation(n)[:k]
    values = [0.0, -0.0, 1.0, 2.5, 1e-300, 7.25]
    cash = np.array([values[i] for i in rng.integers(0, len(values), n)]) * rng.choice([1, -1], n)
    gains = np.abs(rng.normal(0.0, 3.0, (n, 3))) * (rng.random((n, 3)) < 0.6)
    turns = []
    for _ in range(draw(st.integers(1, 3))):
        a = rng.normal(0.0, 4.0, k)
        a[rng.random(k) < 0.3] = -0.0  # no entry for these rows this turn
        a[rng.random(k) < 0.1] = 0.0
        turns.append(a)
    return rows, cash, gains, turns


@settings(max_examples=300, deadline=None)
@given(case=_ledger_turns(), order=st.sampled_from(["C", "F"]), few=st.booleans())
def test_entries_booked_in_turns_equal_one_pass_per_turn(case, order, few):
    """``book_turns`` (rows read once, written once) leaves cash and ledger bit for bit as
    ``cash += a; book_gain`` turn by turn, whatever the ledger's memory order and whether the
    few-row scalar paths are on."""
    from market.accounts import book_gain, book_turns

    rows, cash, gains, turns = case
    gains = np.array(gains, order=order)
    with pytest.MonkeyPatch.context() as mp:
        if not few:
            mp.setattr(arrays, "FEW_ROWS", 0)
        c1, g1 = cash.copy(), gains.copy(order="K")
        book_turns(c1, g1, rows, turns)
        c2, g2 = cash.copy(), gains.copy(order="K")
        for a in turns:
            c2[rows] += a
            book_gain(g2, rows, a)
    assert c1.view(np.int64).tolist() == c2.view(np.int64).tolist()
    assert np.ascontiguousarray(g1).view(np.int64).tolist() == (
        np.ascontiguousarray(g2).view(np.int64).tolist()
    )
