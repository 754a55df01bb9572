"""The benchmark module's logic (experiments/bench.py): records, references, the table.

No timing is asserted: speed is what `adlgame bench` prints, not what tests check.
"""

from __future__ import annotations

import numpy as np
import pytest

from experiments.bench import (
    PRO_RATA_LIKE,
    QUEUE_LIKE,
    bench_policies,
    format_policy_table,
    reference_call,
    reference_n,
)
from market.adl import POLICIES, get_policy
from market.adl.base import Snapshot
from market.adl.strategies import large_snapshot


def test_reference_n_is_the_largest_size_up_to_1e5():
    assert reference_n([1000, 10_000, 100_000, 1_000_000]) == 100_000
    assert reference_n([500, 20]) == 500
    assert reference_n([1_000_000]) is None
    assert reference_n([]) is None


def _distinct_snapshot(n: int = 300) -> Snapshot:
    """Distinct scores and capacities, so the reference queue's row-order tie-break and the
    policies' key tie-break cannot differ."""
    rng = np.random.default_rng(1)
    cap = rng.uniform(1.0, 100.0, n)
    return Snapshot.build(
        cap,
        lots=np.ceil(cap).astype(np.int64) + 5,
        equity=rng.uniform(50.0, 500.0, n),
        upnl=cap * rng.uniform(0.5, 1.0, n),
        entry=rng.uniform(80.0, 99.0, n),
        leverage=rng.uniform(0.5, 40.0, n),
        mark=100.0,
        account=rng.permutation(n),
    )


@pytest.mark.parametrize("name", [*QUEUE_LIKE, *PRO_RATA_LIKE])
def test_reference_call_computes_what_the_kernel_computes(name):
    snap = _distinct_snapshot()
    pol = get_policy(name)
    budget = 0.3 * float(snap.capacity.sum())
    call = reference_call(name, pol, snap, budget)
    assert call is not None
    np.testing.assert_allclose(
        call(), pol.allocate_wealth(snap, budget), rtol=1e-9, atol=1e-9 * budget
    )


def test_reference_call_is_none_without_a_reference():
    snap = _distinct_snapshot(20)
    for name in ("minimax_leverage", "seniority", "hybrid"):
        assert reference_call(name, get_policy(name), snap, 1.0) is None


def test_bench_policies_records():
    rows = bench_policies([150, 400], repeat=1, seed=3)
    names = [r["policy"] for r in rows]
    assert list(dict.fromkeys(names)) == list(POLICIES)
    for r in rows:
        assert set(r) == {
            "policy",
            "n",
            "seconds",
            "kernel_seconds",
            "reference_seconds",
            "speedup_vs_reference",
            "cores",
        }
        assert r["seconds"] > 0 and r["kernel_seconds"] > 0
        small_only = get_policy(r["policy"]).exact_small_only
        assert r["n"] == 200 if small_only else r["n"] in (150, 400)
        has_ref = r["policy"] in QUEUE_LIKE + PRO_RATA_LIKE and r["n"] == 400
        assert (r["speedup_vs_reference"] is not None) == has_ref
        if has_ref:
            want = r["reference_seconds"] / r["kernel_seconds"]
            assert r["speedup_vs_reference"] == pytest.approx(want)
    # the same seed gives the same snapshots: the reference sizes agree with large_snapshot
    assert large_snapshot(150, np.random.default_rng(3)).n == 150


def test_format_policy_table_hand_rows():
    rows = [
        {"policy": "q", "n": 1000, "seconds": 0.0032, "kernel_seconds": 0.00041,
         "reference_seconds": None, "speedup_vs_reference": None, "cores": 2},
        {"policy": "q", "n": 100000, "seconds": 0.25, "kernel_seconds": 0.0123,
         "reference_seconds": 0.6, "speedup_vs_reference": 48.78, "cores": 2},
        {"policy": "ilp", "n": 200, "seconds": 0.612, "kernel_seconds": 0.598,
         "reference_seconds": None, "speedup_vs_reference": None, "cores": 2},
        {"policy": "old", "n": 1000, "seconds": 0.05, "cores": 2},
    ]  # fmt: skip
    text = format_policy_table(rows)
    lines = text.splitlines()
    assert lines[0] == "ADL allocation time in ms, kernel/full (best of repeats), 2 cores"
    assert lines[1].split() == ["policy", "N=2e+02", "N=1e+03", "N=1e+05", "vs", "ref"]
    assert lines[3].split() == ["q", "-", "0.41/3.20", "12.3/250", "49x"]
    assert lines[4].split() == ["ilp", "598/612", "-", "-", "-"]
    assert lines[5].split() == ["old", "-", "50.0", "-", "-"]  # a record without a kernel time
    assert "reference time / kernel time at N=1e5" in lines[-1]
    assert max(len(line) for line in lines) <= 100
