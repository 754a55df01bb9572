"""The positions store (by market, open positions only) against a dense reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.exchange import Exchange
from market.invariants import check_invariants
from market.positions import Positions

N, K = 40, 5

writes = st.lists(
    st.tuples(
        st.integers(0, K - 1),
        st.lists(st.integers(0, N - 1), min_size=1, max_size=12, unique=True),
        st.lists(st.integers(-3, 3), min_size=12, max_size=12),
        st.lists(st.floats(1.0, 1e4), min_size=12, max_size=12),
    ),
    max_size=40,
)


def _check_against(book: Positions, lots: np.ndarray, ent: np.ndarray) -> None:
    dq, de = book.dense(N)
    assert np.array_equal(dq, lots)
    assert np.array_equal(de, np.where(lots != 0, ent, 0.0))
    i, k, q, e = book.entries()
    # market by market, accounts ascending within a market, open positions only
    assert np.array_equal(np.lexsort((i, k)), np.arange(i.size))
    assert (q != 0).all()
    assert np.array_equal(q, lots[i, k]) and np.array_equal(e, ent[i, k])
    assert book.count() == np.count_nonzero(lots)
    assert np.array_equal(book.has_position(N), (lots != 0).any(axis=1))
    for m in range(K):
        a, hq, _ = book.holders(m)
        assert np.array_equal(a, np.flatnonzero(lots[:, m]))
        assert np.array_equal(hq, lots[a, m])
        # a column never holds more than twice its open positions (plus the one write)
        assert book.acct[m].size <= max(2 * np.count_nonzero(lots[:, m]), 0) + 12


@settings(max_examples=60, deadline=None)
@given(writes, st.lists(st.integers(0, N - 1), min_size=1, max_size=30, unique=True))
def test_store_matches_a_dense_array_through_any_writes(ops, subset):
    book = Positions(K)
    lots = np.zeros((N, K), dtype=np.int64)
    ent = np.zeros((N, K))
    for k, rows, q, e in ops:
        r = np.array(rows)
        qq, ee = np.array(q[: r.size], dtype=np.int64), np.array(e[: r.size])
        book.set(k, r, qq, ee)
        lots[r, k] = qq
        ent[r, k] = ee
        _check_against(book, lots, ent)
        got_q, got_e = book.get(k, np.arange(N))
        assert np.array_equal(got_q, lots[:, k])
        assert np.array_equal(got_e, np.where(lots[:, k] != 0, ent[:, k], 0.0))
    rows = np.array(subset)
    for n in (None, N):  # both lookups: by search in each column, by a table over accounts
        i, k, q, _ = book.entries(rows, n)
        assert np.array_equal(q, lots[rows[i], k])
        expect = sorted((m, int(a)) for m in range(K) for a in rows if lots[a, m])
        assert sorted(zip(k.tolist(), rows[i].tolist(), strict=True)) == expect
    dq, _ = book.dense(N, np.array([rows[0], rows[0]]))  # repeated rows
    assert np.array_equal(dq, lots[[rows[0], rows[0]]])


def test_copy_is_independent_and_dense_view_is_read_only():
    ex = Exchange(3, [100.0, 50.0, 10.0])
    a = ex.open_accounts(3, 1e5)
    ex.trade_genesis(a, 1, np.array([5, -2, 7]), np.array([50.0, 50.0, 50.0]))
    other = ex.acc.copy()
    ex.trade_genesis(a[:1], 1, np.array([1]), np.array([50.0]))
    assert other.pos[a[0], 1] == 5 and ex.acc.pos[a[0], 1] == 6
    with pytest.raises(ValueError):
        ex.acc.pos[a[0], 1] = 0


def test_hundreds_of_markets_and_real_magnitudes_keep_the_invariants():
    """400 markets, lot values over eight decades, positions up to 1e10 lots, a few accounts
    across hundreds of markets: the sums the waterfall reads equal a dense reference and
    money and open interest balance through a crash."""
    rng = np.random.default_rng(3)
    k_m = 400
    marks = 10.0 ** rng.uniform(-3, 5, k_m)
    ex = Exchange(k_m, marks)
    n = 300
    acc = ex.open_accounts(n, 10.0 ** rng.uniform(3, 9, n))
    for k in range(k_m):
        held = acc[rng.random(n) < (0.9 if k < 3 else 0.01)]
        held = np.union1d(held, acc[:4])  # four accounts across every market
        lots = rng.integers(1, 10**10 if k == 0 else 10**4, held.size) * rng.choice(
            [-1, 1], held.size
        )
        ex.trade_genesis(held, k, lots, marks[k] * np.exp(rng.normal(0, 0.02, held.size)))
    pos, ent = ex.acc.pos, ex.acc.entry
    up_ref = (pos * ex.lot * (ex.marks - ent)).sum(axis=1)
    usum, mm, nt, has = ex._account_sums()
    mm_ref = (np.abs(pos) * ex.lot * ex.marks * [s.maintenance_margin for s in ex.specs]).sum(1)
    np.testing.assert_allclose(mm, mm_ref, rtol=1e-12)
    np.testing.assert_allclose(usum, up_ref, rtol=1e-9, atol=1e-6 * np.abs(up_ref).max())
    np.testing.assert_allclose(nt, (np.abs(pos) * ex.lot * ex.marks).sum(axis=1), rtol=1e-12)
    assert np.array_equal(has, (pos != 0).any(axis=1))
    assert ex.acc.positions.count() == np.count_nonzero(pos)
    for _ in range(3):
        ex.step(ex.marks * np.exp(rng.normal(-0.1, 0.05, k_m)))
        rep = check_invariants(ex)
        assert rep.conservation_error < 1e-9
        assert not rep.oi_imbalance.any()


@settings(max_examples=80, deadline=None)
@given(writes, st.data())
def test_writing_every_market_at_once_equals_one_write_per_market(ops, data):
    """Held entries rewritten at once through the laid-out columns (some closed, so columns
    may compact) leave the store as one :meth:`Positions.write` per market leaves it."""
    book = Positions(K)
    for k, rows, q, e in ops:
        r = np.array(rows)
        book.set(k, r, np.array(q[: r.size], dtype=np.int64), np.array(e[: r.size]))
    book.stored()  # lay the columns out
    i, k, q, _, slot = book.entries_at(np.arange(N), N)
    if i.size == 0:
        return
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=i.size, max_size=i.size)))
    new_q = np.array(
        data.draw(st.lists(st.integers(-3, 3), min_size=i.size, max_size=i.size)), dtype=np.int64
    )[keep]
    new_e = np.array(data.draw(st.lists(st.floats(1.0, 1e4), min_size=i.size, max_size=i.size)))
    i, k, slot, new_e = i[keep], k[keep], slot[keep], new_e[keep]
    other = book.copy()  # not laid out: one write per market
    assert book.laid_out() and not other.laid_out()
    book.write_at(k, i, slot, new_q, new_e)
    for m in np.unique(k).tolist():
        sel = k == m
        other.write(m, i[sel], (slot[sel], None), new_q[sel], new_e[sel])
    for a, b in zip(book.dense(N), other.dense(N), strict=True):
        assert a.tobytes() == b.tobytes()
    assert np.array_equal(book.held, other.held)
    for m in range(K):
        assert np.array_equal(book.acct[m], other.acct[m])
        assert np.array_equal(book.lots[m], other.lots[m])
    # every stored entry (closed ones too) is the columns laid end to end
    a, mk, sq, se = book.stored()
    assert np.array_equal(a, np.concatenate(other.acct))
    assert np.array_equal(sq, np.concatenate(other.lots))
    assert np.array_equal(se, np.concatenate(other.entry))
    assert np.array_equal(mk, np.repeat(np.arange(K), [c.size for c in other.acct]))


@settings(max_examples=60, deadline=None)
@given(writes, st.lists(st.integers(0, K - 1), max_size=K, unique=True), st.booleans())
def test_holders_of_several_markets_equals_one_call_per_market(ops, markets, lay_out):
    """The open positions of several markets read at once (from the laid-out columns, or
    column by column) are each market's :meth:`Positions.holders_at`, end to end."""
    book = Positions(K)
    for k, rows, q, e in ops:
        r = np.array(rows)
        book.set(k, r, np.array(q[: r.size], dtype=np.int64), np.array(e[: r.size]))
    if lay_out:
        book.stored()
    ks = sorted(markets)
    acct, lots, entry, slot, sizes = book.holders_of(ks)
    each = [book.holders_at(k) for k in ks]
    assert sizes.tolist() == [h[0].size for h in each]
    for got, j in zip((acct, lots, entry, slot), range(4), strict=True):
        want = np.concatenate([h[j] for h in each]) if each else np.zeros(0, dtype=got.dtype)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
