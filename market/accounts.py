"""Account state as arrays over N accounts (structure of arrays); positions by market in
:class:`market.positions.Positions`."""

from __future__ import annotations

import numpy as np

from market import arrays
from market.errors import require
from market.positions import Positions

#: Flag bits in :attr:`Accounts.flags`.
ACTIVE = np.uint8(1)
LIQUIDATED = np.uint8(2)
ADLED = np.uint8(4)
BOOK = np.uint8(8)
VAULT = np.uint8(16)
BANKRUPT = np.uint8(32)

#: Columns of the realised-gains ledger (the seniority ladder, most junior first).
GAIN_LAYERS = ("recent", "older", "settled")


class Accounts:
    """Growable arrays holding every account of the exchange.

    Attributes (views of the first ``n`` rows):
        cash: collateral in dollars, (N,).
        positions: the open positions (signed whole lots, positive long, and average entry
            prices), stored by market (:class:`market.positions.Positions`).
        pos, entry: the same as dense read-only (N, K) arrays, built on demand and cached
            until the next change: O(N x K), for inspection and small worlds only.
        gains: realised-gains ledger (N, 3): recent, older, settled.  Filled by realised
            profit, reduced by losses, fees and withdrawals (most junior layer first), and
            untouched by closing and reopening at the same price.  Stored column by column
            (Fortran order): each layer is one contiguous array, so updating scattered rows
            touches three compact columns instead of one wide table (the same values either
            way).
        fees_paid: cumulative fees paid, (N,).
        flags: bit set of ACTIVE, LIQUIDATED, ADLED, BOOK, VAULT, BANKRUPT, (N,).
        group: owner id (accounts of one owner share it; Sybil groups), (N,).
        kind: free label for the layer above (agent type code), (N,).
    """

    def __init__(self, markets: int, capacity: int = 1024) -> None:
        require(markets >= 1, "markets", "an integer >= 1", markets)
        self.k = int(markets)
        self.n = 0
        self.positions = Positions(self.k, max(int(capacity), 16))
        self._dense: tuple[int, int, np.ndarray, np.ndarray] | None = None
        self._alloc(max(int(capacity), 16))

    def _alloc(self, cap: int) -> None:
        old = getattr(self, "_cash", None)
        new = {
            "_cash": np.zeros(cap),
            "_gains": np.zeros((cap, 3), order="F"),
            "_fees": np.zeros(cap),
            "_flags": np.zeros(cap, dtype=np.uint8),
            "_group": np.zeros(cap, dtype=np.int64),
            "_kind": np.zeros(cap, dtype=np.int16),
        }
        if old is not None:
            for name, arr in new.items():
                arr[: self.n] = getattr(self, name)[: self.n]
        for name, arr in new.items():
            setattr(self, name, arr)
        self._cap = cap

    def add(
        self, count: int, cash: float | np.ndarray = 0.0, kind: int | np.ndarray = 0
    ) -> np.ndarray:
        """Append ``count`` active accounts; returns their indices."""
        require(count >= 0, "count", "an integer >= 0", count)
        cash_arr = np.broadcast_to(np.asarray(cash, dtype=np.float64), (count,))
        require(bool(np.all(np.isfinite(cash_arr))), "cash", "finite", "non-finite")
        require(bool(np.all(cash_arr >= 0)), "cash", ">= 0", float(cash_arr.min(initial=0)))
        if self.n + count > self._cap:
            self._alloc(max(self._cap * 2, self.n + count))
        idx = np.arange(self.n, self.n + count)
        self.n += count
        self._cash[idx] = cash_arr
        self._flags[idx] = ACTIVE
        self._group[idx] = idx
        self._kind[idx] = kind
        return idx

    # views -------------------------------------------------------------------------------
    @property
    def cash(self) -> np.ndarray:
        """Collateral per account (view)."""
        return self._cash[: self.n]

    def _dense_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        key = (self.positions.version, self.n)
        if self._dense is None or self._dense[:2] != key:
            lots, ent = self.positions.dense(self.n)
            lots.flags.writeable = False
            ent.flags.writeable = False
            self._dense = (*key, lots, ent)
        return self._dense[2], self._dense[3]

    @property
    def pos(self) -> np.ndarray:
        """Lots per account and market as a dense read-only (N, K) array (built on demand,
        cached until the next change; O(N x K): for inspection and small worlds)."""
        return self._dense_arrays()[0]

    @property
    def entry(self) -> np.ndarray:
        """Average entry price per account and market, dense read-only (N, K) (as ``pos``)."""
        return self._dense_arrays()[1]

    @property
    def gains(self) -> np.ndarray:
        """Realised-gains ledger (view)."""
        return self._gains[: self.n]

    @property
    def fees_paid(self) -> np.ndarray:
        """Cumulative fees per account (view)."""
        return self._fees[: self.n]

    @property
    def flags(self) -> np.ndarray:
        """Flag bits per account (view)."""
        return self._flags[: self.n]

    @property
    def group(self) -> np.ndarray:
        """Owner id per account (view)."""
        return self._group[: self.n]

    @property
    def kind(self) -> np.ndarray:
        """Agent-type label per account (view)."""
        return self._kind[: self.n]

    def has(self, flag: np.uint8) -> np.ndarray:
        """Boolean mask of accounts with ``flag`` set."""
        return (self.flags & flag) != 0

    def copy(self) -> Accounts:
        """A deep copy (used by two-pass counterfactual replays)."""
        other = Accounts.__new__(Accounts)
        other.k, other.n, other._cap = self.k, self.n, self._cap
        for name in ("_cash", "_gains", "_fees", "_flags", "_group", "_kind"):
            setattr(other, name, getattr(self, name).copy(order="K"))
        other.positions = self.positions.copy()
        other._dense = None
        return other


def book_gain(gains: np.ndarray, idx: np.ndarray, amount: np.ndarray) -> None:
    """Update the gains ledger of rows ``idx`` (unique) by signed ``amount``.

    Positive amounts fill the most junior layer; negative amounts drain layers from the most
    junior up, never below zero (a loss beyond the ledger comes out of principal).  Layer by
    layer, the draining rows' cells of that column are gathered, drained and written back
    (the ledger is stored column by column: see :class:`Accounts`).
    """
    if idx.size == 0:
        return
    amt = np.asarray(amount, dtype=np.float64)
    if amt.ndim == 0:  # one amount for every row
        amt = np.full(idx.shape, amt)
    if idx.size <= arrays.FEW_ROWS:  # a few rows: row by row on scalars (the same operations)
        for r, a in zip(idx.reshape(-1).tolist(), amt.reshape(-1).tolist(), strict=True):
            book_gain_one(gains, r, a)
        return
    n = gains.shape[0]
    if 2 * idx.size >= n and not np.signbit(gains).any():  # most rows (funding): whole columns
        _book_gain_dense(gains, idx, amt)
        return
    # selections by position lists (flatnonzero + take): the same elements in the same
    # order as boolean-mask indexing, several times cheaper on scattered masks
    pos = amt > 0
    if arrays.any_true(pos):
        sel = np.flatnonzero(pos)
        col0 = gains[:, 0]
        col0[idx.take(sel)] += amt.take(sel)
    neg = amt < 0  # (never where pos)
    if arrays.any_true(neg):
        if arrays.all_true(neg):  # every row drains (fees): no selection
            rows, left = idx.reshape(-1), -amt.reshape(-1)
        else:
            sel = np.flatnonzero(neg)
            rows = idx.take(sel)
            left = -amt.take(sel)
        for layer in range(gains.shape[1]):
            col = gains[:, layer]
            sub = col.take(rows)
            take = np.minimum(sub, left)
            sub -= take
            left -= take  # (left is a fresh array)
            col[rows] = sub


def ledger_rows(gains: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``gains[rows]`` as a new column-major array, gathered column by column (on the
    exchange's column-major ledger, far cheaper than a row gather at scattered rows)."""
    out = np.empty((rows.size, gains.shape[1]), order="F")
    for layer in range(gains.shape[1]):
        out[:, layer] = gains[:, layer].take(rows)
    return out


def book_turns(
    cash: np.ndarray, gains: np.ndarray, rows: np.ndarray, turns: list[np.ndarray]
) -> None:
    """Book several entries to each of the unique ``rows``, turn after turn: ``turns`` holds
    one amount per row for each turn (-0.0 where a turn books nothing for a row: adding it
    leaves cash as it is, and the ledger takes only amounts of either sign).

    The same operations in the same order as ``cash[rows] += a`` and :func:`book_gain`
    turn by turn, on the rows read once into compact arrays and written back once: one
    scattered read and one scattered write of each column instead of one per turn."""
    c = cash[rows]
    g = ledger_rows(gains, rows)
    local = np.arange(rows.size)
    for amount in turns:
        c += amount
        book_gain(g, local, amount)
    cash[rows] = c
    for layer in range(gains.shape[1]):
        gains[:, layer][rows] = g[:, layer]


def book_gain_one(gains: np.ndarray, row: int, amount: float) -> None:
    """:func:`book_gain` for one row and one amount, in scalars (the same operations)."""
    if amount > 0:
        gains[row, 0] += amount
    elif amount < 0:
        left = -amount
        layers = gains[row].tolist()  # the row read once and written once
        for layer, col in enumerate(layers):
            take = min(col, left)
            layers[layer] = col - take
            left = left - take
        gains[row] = layers


def _book_gain_dense(gains: np.ndarray, idx: np.ndarray, amt: np.ndarray) -> None:
    """:func:`book_gain` over whole columns, for updates touching most rows (funding).

    Rows outside ``idx`` get amount 0: they add +0.0 and drain min(g, 0) = 0, which leaves a
    ledger value unchanged as long as no value has its sign bit set (the caller checks it:
    the ledger is never below zero and never -0.0).  Rows inside get the same operations,
    in the same order, as in :func:`book_gain`.
    """
    full = np.zeros(gains.shape[0])
    full[idx] = amt
    col = gains[:, 0]
    col += np.maximum(full, 0.0)
    left = np.maximum(np.negative(full), 0.0)
    for layer in range(gains.shape[1]):
        col = gains[:, layer]
        take = np.minimum(col, left)
        col -= take
        left -= take
