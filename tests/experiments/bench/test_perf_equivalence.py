"""Batched fast paths give the same bits as the one-at-a-time code they replace."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import SybilOwner
from experiments.game.model import ADLGame, OwnerAccounts
from experiments.game.scenario import load_scenario
from experiments.game.seeding import FixedSeed, child_seed_states
from market.exchange import Exchange


def _busy_exchange(seed: int = 0, n: int = 40) -> Exchange:
    rng = np.random.default_rng(seed)
    ex = Exchange(2, [100.0, 50.0])
    acc = ex.open_accounts(n, rng.uniform(100.0, 5_000.0, n))
    for k in range(2):
        lots = rng.integers(-20, 21, n)
        lots[lots == 0] = 1
        ex.trade_genesis(acc, k, lots, rng.uniform(40.0, 120.0, n))
    ex.step([97.3, 51.2])
    return ex


def test_equity_of_a_subset_equals_rows_of_the_full_array():
    ex = _busy_exchange()
    full = ex.equity()
    idx = np.array([5, 1, 33, 5, 0, 12])
    assert np.array_equal(ex.equity(idx), full[idx])
    assert ex.equity(np.array([], dtype=np.int64)).shape == (0,)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=30),
    st.integers(0, 2**32 - 1),
)
def test_opening_accounts_by_owner_equals_one_call_per_owner(counts, seed):
    rng = np.random.default_rng(seed)
    cash = rng.uniform(0.0, 1e6, sum(counts)) * 10.0 ** rng.integers(-6, 3, sum(counts))
    a = Exchange(1, 100.0, capacity=16)
    b = Exchange(1, 100.0, capacity=16)
    a.external = b.external = 0.1  # a non-round start makes the summation order visible
    idx = a.open_accounts_by_owner(np.array(counts), cash)
    parts, start = [], 0
    for c in counts:
        parts.append(b.open_accounts(c, cash[start : start + c]))
        start += c
    assert np.array_equal(idx, np.concatenate(parts))
    assert a.external == b.external
    assert a.acc._cap == b.acc._cap
    assert np.array_equal(a.acc.cash, b.acc.cash)
    assert np.array_equal(a.acc.group, b.acc.group)


def test_open_accounts_by_owner_rejects_negative_counts():
    ex = Exchange(1, 100.0)
    with pytest.raises(ValueError, match="counts"):
        ex.open_accounts_by_owner(np.array([1, -1]), [1.0])


def test_owner_sums_equal_per_owner_numpy_sums():
    rng = np.random.default_rng(3)
    lists = [np.array(x) for x in ([0], [1, 2, 3, 4], [5], [6, 7, 8, 9, 10, 11, 12, 13, 14], [15])]
    values = rng.standard_normal(16) * 10.0 ** rng.integers(-8, 8, 16)
    own = OwnerAccounts(lists)
    assert own.sum(values).tolist() == [float(values[a].sum()) for a in lists]
    mask = np.zeros(16, dtype=bool)
    mask[[2, 15]] = True
    assert own.any(mask).tolist() == [False, True, False, False, True]
    assert own.first.tolist() == [0, 1, 5, 6, 15]
    assert own.subset_sum(values, 9).tolist() == [float(values[a[a < 9]].sum()) for a in lists]


def _game(accounts: int) -> ADLGame:
    sc = load_scenario().replace(
        **{
            "run.traders": 400,
            "run.crises": 1,
            "run.calm_steps": 4,
            "run.crisis_steps": 4,
            "mix.sybil": 0.1,
            "market.markets": 2,
            "sybil.accounts": accounts,
        }
    )
    game = ADLGame(sc, seed=8, two_pass=False)
    for _ in range(7):  # into the crisis: positions, losses and a thinned book
        game.step()
    return game


@pytest.mark.parametrize("accounts", [2, 4, 7])
def test_batched_sybil_arrangement_equals_owner_by_owner(accounts):
    """With a book of unlimited depth every order fills at the mark whatever its turn, so the
    batched arrangement (all closes, then all openings) must leave what owner-by-owner
    arrangement leaves, up to floating-point order."""
    a, b = _game(accounts), _game(accounts)
    for g in (a, b):
        g.exchange.specs = tuple(replace(s, depth=1e40) for s in g.exchange.specs)
    owners_a = a.members(SybilOwner).agents
    owners_b = b.members(SybilOwner).agents
    assert len(owners_a) >= 20
    SybilOwner.arrange_all(a, owners_a)
    for owner in owners_b:
        SybilOwner.arrange(b, owner)
    ea, eb = a.exchange, b.exchange
    assert np.array_equal(ea.acc.pos, eb.acc.pos)
    assert np.array_equal(ea.acc.flags, eb.acc.flags)
    # the book took the other side in another sequence: its PnL splits differently between
    # realised (cash, gains) and unrealised (entry), its equity is the same
    traders = np.arange(ea.acc.n) != ea.book
    for name in ("cash", "entry", "gains", "fees_paid"):
        np.testing.assert_allclose(
            getattr(ea.acc, name)[traders],
            getattr(eb.acc, name)[traders],
            rtol=1e-9,
            atol=1e-6,
            err_msg=name,
        )
    assert ea.equity([ea.book])[0] == pytest.approx(eb.equity([eb.book])[0], rel=1e-9)
    for x, y in ((ea.fund, eb.fund), (ea.fee_revenue, eb.fee_revenue), (ea.external, eb.external)):
        assert x == pytest.approx(y, rel=1e-9)
    ta, tb = ea.log.trades.to_array(), eb.log.trades.to_array()
    now = ta["step"] == ea.step_no
    assert now.sum() > 0
    key = ["account", "market", "lots"]
    sa = np.sort(ta[now][key], order=key)
    sb = np.sort(tb[tb["step"] == eb.step_no][key], order=key)
    assert sa.tolist() == sb.tolist()  # the same orders, in another sequence


def _book_gain_reference(gains: np.ndarray, idx: np.ndarray, amount: np.ndarray) -> None:
    """The ledger update row subset by row subset, as first written (the reference)."""
    pos = amount > 0
    gains[idx[pos], 0] += amount[pos]
    neg = ~pos & (amount < 0)
    rows, left = idx[neg], -amount[neg]
    for layer in range(gains.shape[1]):
        take = np.minimum(gains[rows, layer], left)
        gains[rows, layer] -= take
        left = left - take


@pytest.mark.parametrize("order", ["C", "F"])  # the exchange keeps its ledger in F order
@pytest.mark.parametrize("n", [60, 2_000, 12_000])
@pytest.mark.parametrize("share", [0.05, 0.4, 0.5, 0.9, 1.0])
def test_book_gain_equals_the_reference_bit_for_bit(share, n, order):
    from market.accounts import book_gain

    rng = np.random.default_rng(11)
    gains = np.zeros((n, 3), order=order)
    gains[:, 0] = np.maximum(rng.normal(0.0, 5.0, n), 0.0)
    gains[::3, 1] = rng.uniform(0.0, 9.0, n)[::3]
    gains[::7, 2] = rng.uniform(0.0, 9.0, n)[::7]
    idx = rng.permutation(n)[: int(share * n)]
    amount = rng.normal(0.0, 6.0, idx.size)
    amount[::11] = 0.0
    fast, ref = gains.copy(order="K"), gains.copy()
    book_gain(fast, idx, amount)
    _book_gain_reference(ref, idx, amount)
    assert np.array_equal(fast.view(np.int64), ref.view(np.int64))
    assert (fast >= 0).all()
    # a hand case: 10 of gains over two layers, a loss of 7 drains layer 0 then layer 1
    g = np.zeros((5000, 3))
    g[:, 0], g[:, 1] = 4.0, 6.0
    book_gain(g, np.arange(5000), np.full(5000, -7.0))
    assert g[0].tolist() == [0.0, 3.0, 0.0]


def test_member_tables_filtered_and_appended_equal_rebuilt_ones():
    from agents import Flipper, Members, PassiveTrader

    sc = load_scenario().replace(
        **{"run.traders": 300, "mix.sybil": 0.1, "mix.flipper": 0.2, "sybil.accounts": 3}
    )
    game = ADLGame(sc, seed=4, two_pass=False)
    for cls in (PassiveTrader, SybilOwner, Flipper):
        mem = game.members(cls)
        lengths, flat = mem.layout()
        want = [a.accounts for a in mem.agents]
        assert lengths.tolist() == [len(a) for a in want]
        assert flat.tolist() == np.concatenate(want).tolist()
        assert mem.unique_id.tolist() == [a.unique_id for a in mem.agents]
        leave = np.zeros(len(mem), dtype=bool)
        leave[::4] = True
        cut = mem.without(leave)
        rebuilt = Members([a for a, x in zip(mem.agents, leave, strict=True) if not x])
        both = cut.plus(Members(mem.agents[:3]))
        again = Members(rebuilt.agents + mem.agents[:3])
        for got, ref in ((cut, rebuilt), (both, again)):
            assert got.agents == ref.agents
            for name in ("uid", "account", "market", "side", "leverage", "unique_id"):
                assert np.array_equal(getattr(got, name), getattr(ref, name))
            assert [x.tolist() for x in got.layout()] == [x.tolist() for x in ref.layout()]


def test_owner_accounts_from_a_layout_equal_the_lists():
    lists = [np.array([3]), np.array([7, 1, 2]), np.array([0]), np.array([5, 4])]
    a = OwnerAccounts(lists)
    b = OwnerAccounts.from_layout(np.array([1, 3, 1, 2]), np.array([3, 7, 1, 2, 0, 5, 4]))
    values = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    assert b.sum(values).tolist() == a.sum(values).tolist() == [4.0, 67.0, 0.5, 24.0]
    assert b.first.tolist() == a.first.tolist() == [3, 7, 0, 5]


@settings(max_examples=25, deadline=None)
@given(
    st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32, 2**130)),
    st.integers(0, 7),
    st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=12),
)
def test_child_seed_states_equal_numpy_seed_sequences(seed, child, uids):
    """The vectorised seeding hash gives numpy's own state for every key."""
    ss = np.random.SeedSequence(seed).spawn(8)[child]
    got = child_seed_states(ss, (1,), np.array(uids, dtype=np.int64))
    assert got.shape == (len(uids), 4)
    assert got.dtype == np.uint64
    for row, u in zip(got, uids, strict=True):
        want = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 1, u))
        assert np.array_equal(row, want.generate_state(4, np.uint64))


@pytest.mark.parametrize("pool_size", [4, 8])
@pytest.mark.parametrize("prefix", [(), (1,), (2**40, 3)])
def test_child_seed_states_of_a_root_sequence_and_a_larger_pool(pool_size, prefix):
    """No spawn key before the keys' word, longer prefixes, another pool size: numpy's state."""
    ss = np.random.SeedSequence(2**200 + 17, pool_size=pool_size)
    uids = [0, 1, 77, 2**32 - 1]
    got = child_seed_states(ss, prefix, np.array(uids, dtype=np.int64))
    for row, u in zip(got, uids, strict=True):
        want = np.random.SeedSequence(ss.entropy, spawn_key=(*prefix, u), pool_size=pool_size)
        assert np.array_equal(row, want.generate_state(4, np.uint64))


def test_fixed_seed_streams_equal_default_rng_streams():
    """A PCG64 fed a precomputed state draws what default_rng(SeedSequence) draws."""
    ss = np.random.SeedSequence(12345).spawn(3)[2]
    uids = np.array([0, 1, 2, 99_999, 2**32 - 1])
    states = child_seed_states(ss, (1, 7), uids)
    for row, u in zip(states, uids.tolist(), strict=True):
        ref = np.random.default_rng(
            np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 1, 7, u))
        )
        fast = np.random.Generator(np.random.PCG64(FixedSeed(row)))
        assert fast.random() == ref.random()
        assert fast.standard_normal() == ref.standard_normal()
        assert np.array_equal(fast.integers(0, 5, 9), ref.integers(0, 5, 9))
    with pytest.raises(ValueError):
        child_seed_states(ss, (1,), np.array([2**32]))
    with pytest.raises(ValueError):
        FixedSeed(states[0]).generate_state(8, np.uint32)


def test_draw_tables_are_prefixes_of_the_full_capacity_table():
    """draw() makes only the uids so far; the values are those of the full-capacity table."""
    sc = load_scenario("default").replace(**{"run.traders": 50, "run.crises": 1})
    g = ADLGame(sc, seed=4, two_pass=False)
    uid = np.array([0, 7, g.next_uid - 1])
    got = g.draw("rebalance", uid)
    tag = int.from_bytes(hashlib.sha256(b"rebalance").digest()[:4], "little")
    beh = g._streams["behaviour"]
    full = np.random.default_rng(
        np.random.SeedSequence(beh.entropy, spawn_key=(*beh.spawn_key, tag, g.t))
    ).random(g.uid_capacity)
    assert np.array_equal(got, full[uid])
    g.next_uid += 3  # a table made before new uids exist is redrawn longer, same prefix
    longer = g.draw("rebalance", np.array([g.next_uid - 1, 0]))
    assert np.array_equal(longer, full[[g.next_uid - 1, 0]])


def test_book_gain_with_one_amount_for_every_row():
    """A scalar amount is booked on every row, as the same amount repeated would be."""
    from market.accounts import book_gain

    g = np.array([[4.0, 6.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    book_gain(g, np.array([0, 1]), np.float64(-5.0))
    assert g.tolist() == [[0.0, 5.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    book_gain(g, np.array([2, 0]), 1.5)
    assert g.tolist() == [[1.5, 5.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]]
