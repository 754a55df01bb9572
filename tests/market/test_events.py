"""The event tables: blocks kept as columns until read give the records an eager table gives."""

import numpy as np
import pytest

from market.events import TRADE_DTYPE, EventTable


def _eager(appends: list[dict]) -> np.ndarray:
    """What the appends give when every block is written as records at once."""
    out = []
    for cols in appends:
        n = max((np.size(v) for v in cols.values() if np.ndim(v)), default=1)
        block = np.zeros(n, dtype=TRADE_DTYPE)
        for name, value in cols.items():
            block[name] = value
        out.append(block)
    return np.concatenate(out)


def test_blocks_and_single_rows_read_back_in_order():
    rows = np.array([4, 9, 2])
    appends = [
        {"step": 1, "account": rows, "lots": np.array([3, -1, 7]), "price": 101.5, "kind": 5},
        {"step": 2, "account": 7, "lots": -2, "price": 99.0},  # one row, kept as a tuple
        {"step": 3, "account": np.array([1, 2]), "market": np.array([300, 2]), "fee": 0.5},
        {"step": 4, "account": np.array([5]), "realised": np.array([-1.25])},
    ]
    table = EventTable(TRADE_DTYPE)
    for cols in appends:
        table.append(**cols)
    rows[:] = 0  # the caller reuses its array: the table kept a copy
    assert len(table) == 7
    got = table.to_array()
    assert (
        got.tobytes()
        == _eager([{**appends[0], "account": np.array([4, 9, 2])}, *appends[1:]]).tobytes()
    )
    table.append(step=5, account=np.array([8, 8]), lots=np.array([1.9, -2.7]))  # cast as stored
    assert table.to_array()["lots"][-2:].tolist() == [1, -2]
    assert len(table) == 9


def test_bad_blocks_are_refused_when_appended():
    table = EventTable(TRADE_DTYPE)
    with pytest.raises(ValueError, match="different lengths"):
        table.append(account=np.array([1, 2]), lots=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="no field of name"):
        table.append(account=np.array([1, 2]), volume=np.array([1.0, 2.0]))
    assert len(table) == 0
    table.append(account=np.zeros(0, dtype=np.int64))  # an empty block adds nothing
    assert table.to_array().size == 0


def test_block_scalars_are_written_as_their_fields_store_them():
    """Scalars of a block are kept as given and cast when read; a 0-d array is copied."""
    mark = np.array(101.25)
    appends = [
        {"step": 3, "account": np.array([1, 2]), "market": 2, "mark": mark, "lots": 1.9},
        {"step": np.int64(4), "account": np.array([5, 6, 7]), "price": np.float32(9.5)},
    ]
    table = EventTable(TRADE_DTYPE)
    for cols in appends:
        table.append(**cols)
    want = _eager([{**appends[0], "mark": 101.25}, appends[1]])
    mark[...] = 0.0  # the caller reuses its 0-d array: the table kept a copy
    assert table.to_array().tobytes() == want.tobytes()
