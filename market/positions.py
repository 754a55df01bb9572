"""Open positions stored by market: cost follows open positions, not accounts x markets.

For each market k the store holds the accounts with an entry in k (ascending), their signed
lots and their average entry prices: a compressed-column layout of the accounts x markets
position matrix.  A venue lists hundreds of markets and its accounts hold a few positions
each, so a dense (N, K) array is almost all zeros (99.4 % at 437,723 accounts x 162 markets).

Every pass over positions reads them *market by market, accounts ascending within a market*
(:meth:`Positions.entries`), so a per-account sum built from it by ``np.bincount`` adds each
account's terms in market order: the same additions, in the same order, as the column-by-column
sums over a dense array (bit for bit, skipped flat cells adding exact zeros).

A position closed to zero keeps its entry (lots 0) until its column holds more zeros than open
positions, then the column is compacted: reopening costs no insertion, and a column never
holds more than twice its open positions.

Indexed the other way too: a bit per (account, market) says which markets an account holds
(``K / 8`` bytes per account), so the positions of a few accounts are found without visiting
every market.
"""

from __future__ import annotations

import numpy as np

from market import arrays
from market.arrays import unique_sorted

_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)


def sum_by(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``weights`` summed per ``index`` in their order, float64 of length ``n`` (``bincount``
    returns integers when there is nothing to sum)."""
    return np.bincount(index, weights=weights, minlength=n).astype(np.float64, copy=False)


class Positions:
    """Signed whole lots and average entry prices per (account, market), stored by market.

    Attributes:
        k: number of markets.
        acct: per market, the accounts with an entry, ascending (int64).
        lots: per market, their signed lots (int64; 0 for a closed entry awaiting compaction).
        entry: per market, their average entry prices (0 where flat).
        held: per account, a bit per market held (uint8, ``(accounts, ceil(K / 8))``), stored
            column by column (Fortran order): the bits of markets k to k + 7 for every
            account are one contiguous byte column, so a market's update touches one
            column.
        version: incremented by every change (readers cache derived arrays against it).
    """

    def __init__(self, markets: int, accounts: int = 1024) -> None:
        self.k = int(markets)
        self.acct: list[np.ndarray] = [_EMPTY_I.copy() for _ in range(self.k)]
        self.lots: list[np.ndarray] = [_EMPTY_I.copy() for _ in range(self.k)]
        self.entry: list[np.ndarray] = [_EMPTY_F.copy() for _ in range(self.k)]
        self.held = np.zeros((max(int(accounts), 16), (self.k + 7) // 8), dtype=np.uint8, order="F")
        self.version = 0
        self._flat: tuple[np.ndarray, ...] | None = None  # see _laid_out

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without the laid-out arrays: a copy's columns are arrays
        of their own, no longer views of them."""
        state = self.__dict__.copy()
        state["_flat"] = None
        return state

    def _replace(self, k: int, acct: np.ndarray, lots: np.ndarray, entry: np.ndarray) -> None:
        """Put new arrays in market k's column (the columns are no longer laid out)."""
        self.acct[k], self.lots[k], self.entry[k] = acct, lots, entry
        self._flat = None

    def _laid_out(self) -> tuple[np.ndarray, ...]:
        """The columns laid end to end, market by market: ``(accounts, lots, entries, market
        of each entry, where each market starts)``.  Every column is then a view of these
        arrays, so writing a column in place writes them too; they stay valid until a column
        is replaced (an insertion or a compaction), then are laid out again when next asked."""
        if self._flat is None:
            sizes = np.fromiter(map(len, self.acct), dtype=np.int64, count=self.k)
            starts = np.zeros(self.k + 1, dtype=np.int64)
            np.cumsum(sizes, out=starts[1:])
            if self.k == 1:  # one column: it is the layout
                a, q, e = self.acct[0], self.lots[0], self.entry[0]
            else:
                a = np.concatenate(self.acct)
                q = np.concatenate(self.lots)
                e = np.concatenate(self.entry)
                for k, (lo, hi) in enumerate(zip(starts[:-1].tolist(), starts[1:].tolist())):
                    self.acct[k], self.lots[k], self.entry[k] = a[lo:hi], q[lo:hi], e[lo:hi]
            mk = np.repeat(np.arange(self.k, dtype=np.int64), sizes)
            self._flat = (a, q, e, mk, starts)
        return self._flat

    def _reserve(self, n: int) -> None:
        if n > self.held.shape[0]:
            grown = np.zeros(
                (max(n, 2 * self.held.shape[0]), self.held.shape[1]), np.uint8, order="F"
            )
            grown[: self.held.shape[0]] = self.held
            self.held = grown

    # ------------------------------------------------------------------ lookups
    def locate(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where ``rows`` (int64) sit in market k's column, and whether they are there: the
        ``where`` that :meth:`read` and :meth:`write` take (valid until market k changes)."""
        col = self.acct[k]
        slot = col.searchsorted(rows)
        if col.size == 0:
            return slot, np.zeros(slot.shape, dtype=bool)
        # a row past the column's end compares with its last account, which is smaller
        found = col[np.minimum(slot, col.size - 1)] == rows
        return slot, found

    def read(self, k: int, where: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(lots, entry) at a :meth:`locate` result (0 and 0.0 where not held); ``found`` may
        be None when every row is held (slots read off the column, as :meth:`holders_at` and
        :meth:`entries_at` give them)."""
        slot, found = where
        if found is None or arrays.all_true(found):
            return self.lots[k][slot], self.entry[k][slot]
        q = np.zeros(slot.shape, dtype=np.int64)
        e = np.zeros(slot.shape)
        s = slot[found]
        q[found] = self.lots[k][s]
        e[found] = self.entry[k][s]
        return q, e

    def get(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lots, entry) of ``rows`` in market k (0 and 0.0 where they hold nothing)."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.read(k, self.locate(k, rows))

    def get_one(self, k: int, row: int) -> tuple[int, float, int]:
        """(lots, entry, slot) of one account in market k, in scalars; ``slot`` is where it
        sits, or ``-1 - insertion point`` when it holds nothing (for :meth:`set_one`)."""
        col = self.acct[k]
        s = int(col.searchsorted(row))
        if s < col.size and col.item(s) == row:
            return self.lots[k].item(s), self.entry[k].item(s), s
        return 0, 0.0, -1 - s

    def set_one(self, k: int, row: int, lots: int, entry: float, slot: int) -> None:
        """:meth:`set` for one account at a :meth:`get_one` slot (valid until market k
        changes)."""
        self.version += 1
        if not lots:
            entry = 0.0
        if slot >= 0:
            self.lots[k][slot] = lots
            self.entry[k][slot] = entry
        elif lots:
            at = -1 - slot
            self._replace(
                k,
                np.insert(self.acct[k], at, row),
                np.insert(self.lots[k], at, lots),
                np.insert(self.entry[k], at, entry),
            )
        if row >= self.held.shape[0]:
            self._reserve(row + 1)
        byte, bit = k >> 3, 1 << (k & 7)
        if lots:
            self.held[row, byte] |= bit
        else:
            self.held[row, byte] &= 0xFF ^ bit
            if slot >= 0:
                self._compact(k)

    def markets_of(self, row: int) -> list[int]:
        """The markets one account holds, ascending (from its held-markets bits)."""
        if row >= self.held.shape[0]:
            return []
        if self.k <= 8:
            b = self.held.item(row, 0)
            return [k for k in range(self.k) if b >> k & 1]
        bits = np.unpackbits(self.held[row], bitorder="little")[: self.k]
        return np.flatnonzero(bits).tolist()

    def lots_of(self, rows: np.ndarray, k: int) -> np.ndarray:
        """Signed lots of ``rows`` in market k."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim == 1 and rows.size <= arrays.FEW_ROWS:  # a few rows: one scalar lookup each
            return np.array([self.get_one(k, r)[0] for r in rows.tolist()], dtype=np.int64)
        return self.get(k, rows)[0]

    def set(self, k: int, rows: np.ndarray, lots: np.ndarray, entry: np.ndarray) -> None:
        """Write the lots and entries of unique ``rows`` in market k (new entries inserted;
        the entry of a flat position is stored as 0)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        self.write(k, rows, self.locate(k, rows), lots, entry)

    def write(
        self,
        k: int,
        rows: np.ndarray,
        where: tuple[np.ndarray, np.ndarray],
        lots: np.ndarray,
        entry: np.ndarray,
    ) -> None:
        """:meth:`set` at a :meth:`locate` result of the same unique int64 ``rows``."""
        if rows.size == 0:
            return
        lots = arrays.per_row(lots, rows.shape, np.int64)
        entry = arrays.per_row(entry, rows.shape, np.float64)
        opened = lots != 0
        all_open = bool(opened.all())
        if not all_open:
            entry = np.where(opened, entry, 0.0)  # no entry price where flat
        self.version += 1
        slot, found = where
        every = found is None or bool(found.all())
        s = slot if every else slot[found]
        # every row held an open position and keeps one: its held-market bit stands
        bits_stand = every and all_open and arrays.all_true(self.lots[k][s])
        if s.size:
            self.lots[k][s] = lots if every else lots[found]
            self.entry[k][s] = entry if every else entry[found]
        if not every:
            new = ~found & opened
            if new.any():
                r = rows[new]
                order = r.argsort()  # unique rows: any sort gives the one order
                if self.acct[k].size == 0:  # an empty column: the new entries are the column
                    self._replace(k, r[order], lots[new][order], entry[new][order])
                else:
                    at = slot[new][order]
                    self._replace(
                        k,
                        np.insert(self.acct[k], at, r[order]),
                        np.insert(self.lots[k], at, lots[new][order]),
                        np.insert(self.entry[k], at, entry[new][order]),
                    )
        if not bits_stand:
            self._mark_held(rows, k, None if all_open else opened)
        if not all_open and s.size:
            self._compact(k)

    def _mark_held(
        self, rows: np.ndarray, market: int | np.ndarray, opened: np.ndarray | None
    ) -> None:
        """Set the held-market bits of ``rows`` in ``market`` (one market, or one per row:
        each row at most once per market) where ``opened`` (None: every row), clear the rest.

        The (row, byte) cells as flat indices.  Distinct rows have distinct cells, so one
        fancy update with each cell's own bit is exact; otherwise one bit at a time: a row
        holds one entry per market, so the cells of one bit (markets k with the same k % 8)
        are unique."""
        top = int(rows.max()) + 1
        if top > self.held.shape[0]:
            self._reserve(top)
        if not self.held.flags.f_contiguous:  # the flat view below must write through
            self.held = np.asfortranarray(self.held)
        flat = self.held.T.reshape(-1)
        cells = (market >> 3) * self.held.shape[0] + rows
        if np.ndim(market) == 0:
            groups = [(None, np.uint8(1 << (int(market) & 7)))]
        elif not arrays.has_repeats(rows, self.held.shape[0]):  # distinct cells: one update
            groups = [(None, np.left_shift(1, market & 7).astype(np.uint8))]
        else:
            bit_of = market & 7
            groups = [(bit_of == b, np.uint8(1 << b)) for b in unique_sorted(bit_of).tolist()]
        for sel, bit in groups:
            c = cells if sel is None else cells[sel]
            if opened is None:
                flat[c] |= bit
                continue
            o = opened if sel is None else opened[sel]
            per_cell = np.ndim(bit) > 0  # a bit per cell, or one for every cell
            if arrays.any_true(o):
                flat[c[o]] |= bit[o] if per_cell else bit
            flat[c[~o]] &= ~(bit[~o] if per_cell else bit)

    def laid_out(self) -> bool:
        """Whether the columns are laid out now (:meth:`read_at` and :meth:`write_at` then
        read and write every market at once)."""
        return self._flat is not None

    def read_at(self, market: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lots, entry) of the entries at ``slots`` of their ``market`` columns (every one
        held), every market at once; the columns must be laid out (:meth:`laid_out`)."""
        _, q, e, _, starts = self._flat  # type: ignore[misc]
        at = starts[market] + slots
        return q[at], e[at]

    def write_at(
        self,
        market: np.ndarray,
        rows: np.ndarray,
        slots: np.ndarray,
        lots: np.ndarray,
        entry: np.ndarray,
    ) -> None:
        """:meth:`write` for the held entries of ``rows`` at ``slots`` of their ``market``
        columns (ascending, each market's rows unique), every market at once: the same
        lots, entries, held-market bits and compactions as one :meth:`write` per market.
        The columns must be laid out (:meth:`laid_out`)."""
        if rows.size == 0:
            return
        _, q, e, _, starts = self._flat  # type: ignore[misc]
        opened = lots != 0
        all_open = bool(opened.all())
        if not all_open:
            entry = np.where(opened, entry, 0.0)  # no entry price where flat
        self.version += 1
        at = starts[market] + slots
        q[at] = lots
        e[at] = entry
        self._mark_held(rows, market, None if all_open else opened)
        if not all_open:
            for k in unique_sorted(market[~opened]).tolist():
                self._compact(k)

    def _compact(self, k: int, force: bool = False) -> None:
        q = self.lots[k]
        flat = q.size - np.count_nonzero(q)
        if flat and (force or 2 * flat > q.size):
            keep = q != 0
            self._replace(k, self.acct[k][keep], q[keep], self.entry[k][keep])

    def holders(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(accounts ascending, lots, entries) of the open positions of market k (copies)."""
        return self.holders_at(k)[:3]

    def holders_at(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`holders` and where each sits in market k's column (valid until it
        changes; ``(slot, None)`` is a :meth:`locate` result for :meth:`read` and
        :meth:`write`)."""
        q = self.lots[k]
        slot = np.flatnonzero(q)
        return self.acct[k][slot], q[slot], self.entry[k][slot], slot

    def holders_of(
        self, markets: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`holders_at` of several markets (ascending, distinct) end to end, and how
        many each holds: the same arrays as concatenating one call per market.  Laid-out
        columns (:meth:`laid_out`) are read in one pass over every stored entry."""
        if self._flat is None or len(markets) < 2:
            held = [self.holders_at(k) for k in markets]
            sizes = np.array([h[0].size for h in held], dtype=np.int64)
            if not held:
                e_i = np.zeros(0, dtype=np.int64)
                return e_i, e_i, np.zeros(0), e_i, sizes
            return (*(np.concatenate([h[j] for h in held]) for j in range(4)), sizes)
        a, q, e, mk, starts = self._flat
        at = np.flatnonzero(q)  # every open entry, market by market, slots ascending
        m_at = mk[at]
        if len(markets) < self.k:  # keep the markets asked for
            want = np.zeros(self.k, dtype=bool)
            want[markets] = True
            keep = want[m_at]
            at, m_at = at[keep], m_at[keep]
        sizes = np.bincount(m_at, minlength=self.k)[markets]
        return a[at], q[at], e[at], at - starts[m_at], sizes

    def entries(
        self, rows: np.ndarray | None = None, n: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every open position, market by market, accounts ascending within a market.

        Returns ``(i, k, lots, entry)``: ``i`` the account (``rows is None``) or its index in
        ``rows`` (unique rows; ``n`` the number of accounts).  Few rows are found through the
        held-markets bits (the markets they hold only); many through a lookup table over the
        accounts while every column is read once.
        """
        return self._entries(rows, n, False)

    def entries_at(
        self, rows: np.ndarray, n: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`entries` of unique ``rows`` and where each position sits in its market's
        column (``(i, k, lots, entry, slot)``; the slots are valid until that market
        changes)."""
        return self._entries(rows, n, True)

    def _entries(self, rows: np.ndarray | None, n: int | None, slots: bool) -> tuple:
        if rows is None:
            return self._scan(None, slots)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return (_EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_I)[: 4 + slots]
        stored = sum(a.size for a in self.acct)
        if n is not None and rows.size * self.held.shape[1] * 8 > stored + 64 * self.k:
            where = np.full(n, -1, dtype=np.int64)
            where[rows] = np.arange(rows.size)
            return self._scan(where, slots)
        return self._by_bits(rows, slots)

    def _scan(self, where: np.ndarray | None, slots: bool = False) -> tuple[np.ndarray, ...]:
        """Read every column once; ``where`` maps accounts to output indices (-1: skip);
        ``slots``: also where each position sits in its column.

        The columns are laid end to end (market by market) and filtered in one pass."""
        a, q, e, mk, starts = self._laid_out()
        if a.size == 0:
            return (_EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_I)[: 4 + slots]
        if where is None:
            keep = np.flatnonzero(q)
            i = a[keep]
        else:
            pos = where[a]
            keep = np.flatnonzero((pos >= 0) & (q != 0))
            i = pos[keep]
        k = mk[keep]
        out = (i, k, q[keep], e[keep])
        if slots:  # the index in the laid-out columns, less where its column starts
            out += (keep - starts[k],)
        return out

    def stored(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored entry, market by market, accounts ascending: :meth:`entries` with the
        closed entries awaiting compaction too (lots 0, entry 0).  No selection, so cheaper
        where a closed entry adds nothing (a sum of its terms: an exact zero).  Read-only
        views of the store, valid until it next changes."""
        a, q, e, mk, _ = self._laid_out()
        return a, mk, q, e

    def per_stored(self, values: np.ndarray) -> np.ndarray | np.generic:
        """A value per market spread over :meth:`stored`'s entries (``values[k]`` for each
        entry of market k): ``values[stored()[1]]`` by a repeat, cheaper than a gather."""
        if values.size == 1:  # one market: its value broadcasts (arrays.gather)
            return values[0]
        starts = self._laid_out()[4]
        return np.repeat(values, np.diff(starts))

    def _by_bits(self, rows: np.ndarray, slots: bool = False) -> tuple[np.ndarray, ...]:
        """The open positions of a few unique ``rows``, found through the held-markets bits
        (``slots``: also where each sits in its column)."""
        none = (_EMPTY_I, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_I)[: 4 + slots]
        if rows.size > 1 and not arrays.all_true(rows[1:] > rows[:-1]):
            order = rows.argsort()  # unique rows: any sort gives the one order
            srt = rows[order]
        else:
            order, srt = None, rows
        if self.k == 1:  # one market: its sorted column is the whole lookup
            acct = self.acct[0]
            if acct.size == 0 or srt.size == 0:
                return none
            slot = np.minimum(acct.searchsorted(srt), acct.size - 1)
            q_all = self.lots[0][slot]
            jj = np.flatnonzero((acct[slot] == srt) & (q_all != 0))
            if jj.size == 0:
                return none
            i = jj if order is None else order[jj]
            out = (i, np.zeros(jj.size, dtype=np.int64), q_all[jj], self.entry[0][slot[jj]])
            return (*out, slot[jj]) if slots else out
        inside = srt < self.held.shape[0]
        words = np.zeros((srt.size, self.held.shape[1]), dtype=np.uint8)
        words[inside] = self.held[srt[inside]]
        bits = np.unpackbits(words, axis=1, bitorder="little")[:, : self.k]
        kk, jj = np.nonzero(bits.T)  # market by market, accounts ascending within one
        if kk.size == 0:
            return none
        q = np.empty(kk.size, dtype=np.int64)
        e = np.empty(kk.size)
        at = np.empty(kk.size, dtype=np.int64)
        bounds = np.flatnonzero(np.diff(kk)) + 1
        for lo, hi in zip(
            np.concatenate([[0], bounds]).tolist(),
            np.concatenate([bounds, [kk.size]]).tolist(),
            strict=True,
        ):
            k = int(kk[lo])
            slot = self.acct[k].searchsorted(srt[jj[lo:hi]])
            q[lo:hi] = self.lots[k][slot]
            e[lo:hi] = self.entry[k][slot]
            at[lo:hi] = slot
        i = jj if order is None else order[jj]
        out = (i, kk.astype(np.int64), q, e)
        return (*out, at) if slots else out

    def count(self) -> int:
        """Number of open positions."""
        return int(sum(np.count_nonzero(q) for q in self.lots))

    def has_position(self, n: int) -> np.ndarray:
        """Boolean (n,): the accounts holding at least one open position."""
        out = np.zeros(n, dtype=bool)
        m = min(n, self.held.shape[0])
        out[:m] = self.held[:m].any(axis=1)
        return out

    def dense(self, n: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lots, entries) as dense (len(rows) or n, K) arrays: O(rows x K), for inspection."""
        if rows is None:
            i, k, q, e = self.entries()
            size = n
        else:
            rows = np.asarray(rows, dtype=np.int64)
            uniq, inv = np.unique(rows.ravel(), return_inverse=True)
            i, k, q, e = self.entries(uniq, n)
            size = uniq.size
        lots = np.zeros((size, self.k), dtype=np.int64)
        ent = np.zeros((size, self.k))
        lots[i, k] = q
        ent[i, k] = e
        if rows is not None:
            lots = lots[inv].reshape((*rows.shape, self.k))
            ent = ent[inv].reshape((*rows.shape, self.k))
        return lots, ent

    def copy(self) -> Positions:
        """An independent copy."""
        other = Positions.__new__(Positions)
        other.k = self.k
        other.version = self.version
        other.acct = [a.copy() for a in self.acct]
        other.lots = [q.copy() for q in self.lots]
        other.entry = [e.copy() for e in self.entry]
        other.held = self.held.copy(order="K")
        other._flat = None
        return other
