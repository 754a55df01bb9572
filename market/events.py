"""Structured event log: trades, bankruptcies and ADL fills as numpy record arrays."""

from __future__ import annotations

import numpy as np

#: Trade kinds in :data:`TRADE_DTYPE`.
TRADE_KINDS = ("order", "liquidation", "vault_takeover", "vault_unwind", "adl_close", "settle")

TRADE_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("account", np.int64),
        ("counterparty", np.int64),
        ("market", np.int16),
        ("lots", np.int64),  # signed: + bought, - sold, from the account's view
        ("price", np.float64),
        ("mark", np.float64),
        ("fee", np.float64),
        ("realised", np.float64),
        ("kind", np.int8),
    ]
)

BANKRUPTCY_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("account", np.int64),
        ("deficit", np.float64),  # shortfall before the backstop
        ("backstop", np.float64),  # covered by the backstop
        ("adl", np.float64),  # covered by ADL
        ("residual", np.float64),  # written off as bad debt
    ]
)

ADL_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("wave", np.int64),
        ("market", np.int16),
        ("account", np.int64),
        ("lots", np.int64),  # lots force-closed (absolute)
        ("price", np.float64),  # effective execution price (nan for cash-only rules)
        ("mark", np.float64),
        ("haircut", np.float64),  # dollars taken
        ("capacity", np.float64),  # the account's cap in this wave
        ("base", np.float64),  # the eligibility base (before the lot and fairness caps)
        ("equity", np.float64),  # equity before the haircut
        ("from_gains", np.float64),
        ("from_principal", np.float64),
    ]
)

SOCIALISED_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("account", np.int64),
        ("haircut", np.float64),  # dollars charged at settlement
        ("base", np.float64),  # what the account could give (its profit, at most its equity)
        ("equity", np.float64),  # equity before the charge
    ]
)

WAVE_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("wave", np.int64),
        ("market", np.int16),
        ("deficit", np.float64),  # need: this market's share of the deficit after the backstop
        ("theta", np.float64),
        ("budget", np.float64),  # what the policy was asked to raise
        ("capacity", np.float64),
        ("raised", np.float64),
        ("overshoot", np.float64),  # raised above the need (deficit), >= 0
        ("undershoot", np.float64),  # raised below the need, >= 0
        ("rounding", np.float64),  # lot rounding above the budget, >= 0
        ("residual", np.float64),  # budget the policy could not raise (caps, capacity)
        ("execution", np.int8),  # 0 budget-sized, 1 position-sized
        ("lots_target", np.int64),  # position execution: uncovered liquidated lots to close
        ("granularity", np.float64),
        ("lot_value", np.float64),
        ("eligible", np.int64),
        ("touched", np.int64),
        ("price_fallback", np.bool_),
        ("max_capacity", np.float64),  # largest endowment before the wave (upsilon)
        ("max_survivor", np.float64),  # largest endowment left after it (upsilon^pi)
        ("max_shortfall", np.float64),  # largest single hole of the step (Delta)
        ("max_haircut_frac", np.float64),  # largest haircut / capacity
        ("max_haircut_equity_frac", np.float64),  # largest haircut / equity
        ("positive", np.int64),  # eligible rows with capacity > 0
        ("base_positive", np.int64),  # eligible rows with base > 0
        ("base_total", np.float64),  # sum of the eligible rows' eligibility base
        ("max_base_survivor", np.float64),  # largest base left after the wave
        ("max_haircut_base_frac", np.float64),  # largest haircut / base
        ("severity_flag", np.bool_),  # the controller judged its assumption broken (mdic)
        ("severity_elasticity", np.float64),  # its fitted elasticity then (nan: none)
    ]
)


#: Types :meth:`EventTable.append` takes as one row's value.
_SCALAR = (int, float, bool, np.number, np.bool_)


class EventTable:
    """An append-only table of records with a fixed dtype, appended in vectorised blocks."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self._types = {name: dtype.fields[name][0] for name in dtype.names}  # each field's type
        # blocks in order: record arrays, or (rows, columns) kept as columns until read
        self._blocks: list[np.ndarray | tuple[int, dict[str, np.ndarray]]] = []
        self._rows: list[tuple] = []  # one-row appends since the last block, as tuples
        self._count = 0  # rows held, blocks and pending rows together
        self._cache: np.ndarray | None = None

    def _flush(self) -> None:
        """Turn the pending one-row appends into one block (the same rows, in order)."""
        if self._rows:
            self._blocks.append(np.array(self._rows, dtype=self.dtype))
            self._rows = []

    def append(self, **cols: object) -> None:
        """Append rows; every column is a scalar or an array of one common length."""
        row = []
        for name in self.dtype.names:  # one row of scalars or arrays of one element?
            v = cols.get(name, 0)
            if isinstance(v, np.ndarray):
                if v.size != 1:
                    break
                v = v.reshape(-1)[0]
            elif not isinstance(v, _SCALAR):
                break
            row.append(v)
        else:  # one row: kept as a tuple until the table is read
            self._rows.append(tuple(row))
            self._count += 1
            self._cache = None
            return
        # the block kept as its columns until the table is read: arrays copied in the fields'
        # types, scalars as given (written over the block's rows when it is read)
        types, block, lengths = self._types, {}, set()
        for name, value in cols.items():
            kind = types.get(name)
            if kind is None:
                raise ValueError(f"no field of name {name}")
            if isinstance(value, _SCALAR):
                block[name] = value
                continue
            block[name] = column = np.array(value, dtype=kind)
            if column.ndim:
                lengths.add(column.size)
        n = lengths.pop() if lengths else 1
        if lengths:
            raise ValueError(f"columns of different lengths: {sorted(lengths | {n})}")
        if n == 0:
            return
        self._flush()
        self._blocks.append((n, block))
        self._count += n
        self._cache = None

    def append_row(self, *values: object) -> None:
        """Append one row given as its scalar values in column order: :meth:`append` of one
        row, without looking at each value's type."""
        self._rows.append(values)
        self._count += 1
        self._cache = None

    def to_array(self) -> np.ndarray:
        """All rows as one structured array (cached until the next append)."""
        if self._cache is None:
            self._flush()
            blocks = [b if isinstance(b, np.ndarray) else self._records(*b) for b in self._blocks]
            self._cache = np.concatenate(blocks) if blocks else np.zeros(0, dtype=self.dtype)
            self._blocks = [self._cache] if self._cache.size else []
        return self._cache

    def _records(self, n: int, cols: dict[str, np.ndarray]) -> np.ndarray:
        """A block kept as columns, as records (columns not given are 0)."""
        block = np.zeros(n, dtype=self.dtype)
        for name, value in cols.items():
            block[name] = value
        return block

    def __len__(self) -> int:
        return self._count


class EventLog:
    """The exchange's log: ``trades``, ``bankruptcies``, ``adl`` fills, ``waves`` and the
    ``socialised`` charges made at settlement."""

    def __init__(self) -> None:
        self.trades = EventTable(TRADE_DTYPE)
        self.bankruptcies = EventTable(BANKRUPTCY_DTYPE)
        self.adl = EventTable(ADL_DTYPE)
        self.waves = EventTable(WAVE_DTYPE)
        self.socialised = EventTable(SOCIALISED_DTYPE)
