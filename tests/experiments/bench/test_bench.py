"""The benchmark module's logic (experiments/bench/suite.py): records, references, the table.

No timing is asserted: speed is what `adlgame bench` prints, not what tests check.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from experiments.bench.suite import (
    NO_ADL,
    PRO_RATA_LIKE,
    QUEUE_LIKE,
    QUICK_WAVE_ACCOUNTS,
    SECTIONS,
    TARGETS,
    WAVE_QUEUES,
    WaveConfig,
    bench_policies,
    bench_wave,
    check_sections,
    evaluate_targets,
    format_policy_table,
    format_report,
    reference_call,
    reference_n,
    run_benchmarks,
    wave_once,
)
from experiments.studies.experiment import game_policies
from market.adl import POLICIES, get_policy
from market.adl.base import Snapshot
from market.adl.strategies import large_snapshot
from market.errors import InputError


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


# =========================================================================== the suite
@pytest.fixture(scope="module")
def quick():
    """One quick run of the kernels, wave and sweep sections, with its progress lines."""
    lines: list[str] = []
    result = run_benchmarks(("sweep", "wave", "kernels"), quick=True, progress=lines.append)
    return result, lines


def test_quick_result_top_level(quick):
    r, lines = quick
    json.dumps(r, allow_nan=False)  # JSON-safe as it is
    assert r["sections"] == ["kernels", "wave", "sweep"]  # run in SECTIONS order
    assert r["quick"] is True
    assert r["cores"]["cpu_count"] >= r["cores"]["usable"] >= 1
    assert set(r["machine"]) >= {"platform", "python", "numpy", "load_average_start"}
    assert r["machine"]["numpy"] == np.__version__
    assert r["game"] is None and r["game_speedup_vs_naive"] is None  # not requested
    assert r["seconds"] > 0
    assert any("min_max_ilp" in note for note in r["notes"])
    assert len(lines) >= len(game_policies()) + 3  # a line per wave policy at least


def test_quick_policy_kernels(quick):
    rows = quick[0]["policy_kernels"]
    assert {r["policy"] for r in rows} == set(POLICIES)
    for r in rows:
        assert set(r) >= {"policy", "n", "seconds", "kernel_seconds", "speedup_vs_reference"}
        assert r["seconds"] > 0 and r["kernel_seconds"] > 0
        if r["exact_small_only"]:
            assert r["n"] == 200
        else:
            assert r["n"] in (1_000, 10_000)
        sp = r["speedup_vs_reference"]
        assert sp is None or sp > 0
        if r["policy"] in QUEUE_LIKE + PRO_RATA_LIKE and r["n"] == 10_000:
            assert sp == pytest.approx(r["reference_seconds"] / r["kernel_seconds"])


def test_quick_wave_adl_ran_under_every_game_policy(quick):
    wave = quick[0]["wave_1m"]
    assert list(wave) == game_policies()
    assert "min_max_ilp" not in wave
    first = wave[game_policies()[0]]
    for name, rec in wave.items():
        assert "error" not in rec, rec
        assert rec["accounts"] == QUICK_WAVE_ACCOUNTS and rec["markets"] == 4
        assert rec["kind"] == ("queue" if name in WAVE_QUEUES else "smooth")
        # the waterfall before ADL does not depend on the rule
        assert rec["deficit"] == first["deficit"]
        assert rec["liquidated"] == first["liquidated"]
        assert rec["backstop_used"] == first["backstop_used"]
        # a real deficit, larger than the backstop, so ADL runs and covers the rest
        assert rec["deficit"] > rec["backstop_used"] > 0
        assert rec["adl_budget"] == pytest.approx(rec["deficit"] - rec["backstop_used"])
        if name in NO_ADL:  # no ranked ADL: the bearer carries it
            assert rec["adl_raised"] == 0
            continue
        assert rec["adl_raised"] > 0
        # what ADL took against what it needed: over- and undershoot are measured
        assert rec["adl_raised"] - rec["adl_budget"] == pytest.approx(
            rec["overshoot"] - rec["undershoot"], abs=1e-6 * rec["deficit"]
        )
        if rec["execution"] == "budget":  # budget-sized: the need, to lot rounding
            assert rec["adl_budget"] * (1 - 1e-9) <= rec["adl_raised"] <= rec["deficit"]
            assert rec["residual"] == pytest.approx(0.0, abs=1e-6 * rec["deficit"])
        assert rec["touched"] > 0
        assert rec["deterministic"] is True
        assert rec["seconds"] > 0 and rec["setup_seconds"] > 0
        assert rec["peak_mb"] >= rec["setup_mb"] >= rec["baseline_mb"] > 0
        assert rec["step_alloc_mb"] > 0


def test_quick_sweep(quick):
    r = quick[0]
    sw = r["sweep"]
    assert sw["runs"] == 4 and sw["failed"] == 0 and sw["scale"] == "tiny"
    assert sw["cpu_seconds_1"] > 0 and sw["cpu_seconds_2"] > 0  # workers' CPU is counted
    assert r["sweep_seconds_1"] == sw["sweep_seconds_1"] > 0
    assert r["sweep_seconds_2"] == sw["sweep_seconds_2"] > 0
    assert r["sweep_speedup_2_vs_1"] == pytest.approx(sw["sweep_seconds_1"] / sw["sweep_seconds_2"])


def test_quick_targets_well_formed(quick):
    r = quick[0]
    targets = r["targets"]
    want = {f"wave.{p}.{f}" for p in game_policies() for f in ("seconds", "peak_mb")}
    assert set(targets) == want | {"sweep_speedup_2_vs_1"}
    for key, t in targets.items():
        assert set(t) == {"value", "target", "op", "unit", "what", "pass"}
        assert isinstance(t["pass"], bool)
        cmp = t["value"] <= t["target"] if t["op"] == "<=" else t["value"] >= t["target"]
        assert t["pass"] == cmp, key
    assert targets["wave.pro_rata.seconds"]["target"] == TARGETS["wave_smooth_seconds"] == 0.6
    assert targets["wave.hyperliquid.seconds"]["target"] == TARGETS["wave_queue_seconds"] == 0.6
    assert targets["sweep_speedup_2_vs_1"]["op"] == ">="


def test_format_report_names_size_figure_and_cores(quick):
    r = quick[0]
    text = format_report(r)
    cores = r["cores"]["usable"]
    wave_lines = [ln for ln in text.splitlines() if ln.startswith("wave 20,000 accounts x 4")]
    assert len(wave_lines) == len(game_policies())
    for ln in wave_lines:
        assert " s (cpu " in ln and ")  peak " in ln and " MB  target <= " in ln
        assert ln.endswith(f"touched; {cores} cores)")
    assert any(ln.startswith("sweep 4 runs (tiny scenario") for ln in text.splitlines())
    assert f"targets met: {sum(t['pass'] for t in r['targets'].values())} of " in text
    assert "N=1e+03" in text and "N=1e+04" in text  # the kernel table


def test_sections_validated():
    assert check_sections(("sweep", "kernels", "sweep")) == ("kernels", "sweep")
    assert check_sections("wave") == ("wave",)
    assert check_sections(SECTIONS) == SECTIONS
    for bad in (("kernels", "waves"), (), [3], None):
        with pytest.raises(InputError) as err:
            check_sections(bad)
        assert err.value.field == "--section"
        assert "kernels, wave, game, sweep" in str(err.value)
    with pytest.raises(InputError, match="--section"):
        run_benchmarks(("nope",), quick=True)


def test_game_section_uses_naive_mesa_or_skips(monkeypatch):
    fake = types.ModuleType("experiments.bench.naive_mesa")
    calls = []

    def bench_game(traders, crises, naive_crises):
        calls.append((traders, crises, naive_crises))
        return {
            "traders": traders,
            "crises": crises,
            "steps": 30,
            "game_agent_steps_per_s": 3000.0,
            "naive_mesa_agent_steps_per_s": 100.0,
            "game_speedup_vs_naive": 30.0,
            "game_seconds": 1.0,
            "naive_seconds": 2.0,
        }

    fake.bench_game = bench_game
    monkeypatch.setitem(sys.modules, "experiments.bench.naive_mesa", fake)
    r = run_benchmarks("game", quick=True)
    assert calls == [(2_000, 1, None)]
    assert r["game_speedup_vs_naive"] == 30.0 and r["naive_mesa_agent_steps_per_s"] == 100.0
    assert r["targets"]["game_speedup_vs_naive"]["pass"] is True  # 30 >= 20
    assert "game 2,000 traders x 1 crises  fast 3,000 agent-steps/s" in format_report(r)
    monkeypatch.setitem(sys.modules, "experiments.bench.naive_mesa", None)  # import fails
    r = run_benchmarks("game", quick=True)
    assert "skipped" in r["game"] and r["game_speedup_vs_naive"] is None
    assert r["targets"] == {}
    assert any(note.startswith("game: skipped") for note in r["notes"])


def test_evaluate_targets_by_hand():
    result = {
        "wave_1m": {
            "pro_rata": {"seconds": 1.25, "peak_mb": 900.0, "accounts": 10, "markets": 4},
            "dydx": {"seconds": 0.55, "peak_mb": 2100.0, "accounts": 10, "markets": 4},
            "hybrid": {"error": "child process ended with exit code -9"},
        },
        "sweep": {
            "runs": 16,
            "scale": "default",
            "traders": 2000,
            "policy": "hyperliquid",
            "sweep_seconds_1": 17.0,
            "sweep_seconds_2": 10.0,
            "sweep_speedup_2_vs_1": 1.7,
        },
    }
    t = evaluate_targets(result)
    assert t["wave.pro_rata.seconds"]["pass"] is False  # smooth rule: 1.25 > 0.6
    assert t["wave.dydx.seconds"]["pass"] is True  # queue: 0.55 <= 0.6
    assert t["wave.pro_rata.peak_mb"]["pass"] is True
    assert t["wave.dydx.peak_mb"]["pass"] is False  # 2100 > 2048
    assert t["wave.hybrid.seconds"]["pass"] is None and t["wave.hybrid.peak_mb"]["value"] is None
    assert t["sweep_speedup_2_vs_1"]["pass"] is True
    assert "game_speedup_vs_naive" not in t
    text = format_report({**result, "targets": t, "cores": {"cpu_count": 4, "usable": 2}})
    assert "wave  hybrid             failed: child process ended with exit code -9" in text
    assert "targets met: 3 of 7" in text  # dydx seconds, pro_rata peak, sweep
    assert "missed: wave.pro_rata.seconds, wave.dydx.peak_mb" in text
    assert "1 worker 17.0 s  2 workers 10.0 s  1.70x  target >= 1.6x  ok  (2 cores)" in text


def test_wave_once_in_process_small():
    cfg = WaveConfig(accounts=3_000, markets=2, drop=0.15)
    assert cfg.fund_capital == 3_000.0  # $1 per account by default
    rec = wave_once("pro_rata", cfg, repeat=2)
    assert len(rec["times"]) == 2 and rec["seconds"] == min(rec["times"])
    assert rec["deterministic"] is True
    assert rec["backstop_used"] >= 3_000.0  # the whole fund (plus liquidation fees paid in)
    assert 0 < rec["adl_raised"] <= rec["deficit"]


def test_wave_inputs_refused():
    with pytest.raises(InputError, match=r"wave\.drop"):
        WaveConfig(drop=1.5)
    with pytest.raises(InputError, match=r"wave\.accounts"):
        WaveConfig(accounts=0)
    with pytest.raises(InputError, match="policy"):
        bench_wave(WaveConfig(accounts=100), policies=["min_max_ilp"])
    with pytest.raises(InputError, match="policy"):
        bench_wave(WaveConfig(accounts=100), policies=["nope"])
    with pytest.raises(InputError, match="repeat"):
        bench_wave(WaveConfig(accounts=100), policies=["pro_rata"], repeat=0)


def test_cli_bench_prints_one_json_object(capsys):
    from viz.cli import main

    assert main(["bench", "--section", "kernels", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sections"] == ["kernels"]
    assert out["cores"]["usable"] >= 1
    names = {r["policy"] for r in out["policy_kernels"]}
    assert set(game_policies()) <= names
    assert out["wave_1m"] is None and out["sweep_speedup_2_vs_1"] is None


def test_cli_bench_refuses_an_unknown_section(capsys):
    from viz.cli import main

    assert main(["bench", "--section", "kernels,bogus", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "--section" in err and "kernels, wave, game, sweep" in err


def test_profile_tables_name_the_hot_functions():
    from experiments.bench.suite import profile

    text = profile("game", top=40, quick=True)  # enough rows for step() whatever else ranks
    assert text.startswith("profile: the game, 2,000 traders x 1 crises")
    assert "ncalls" in text and "model.py" in text and "(step)" in text
    text = profile("wave", top=40, quick=True, policy="hyperliquid")
    assert "20,000 accounts x 4 markets, hyperliquid" in text and "exchange.py" in text
    with pytest.raises(InputError, match=r"^--profile: must be one of game, wave"):
        profile("sweep")


def test_scaling_section_times_the_grid_and_fits_slopes(tmp_path):
    from experiments.bench.scaling import QUICK_SCALING_GRID, scaling_summary
    from viz.cli import main as adlgame

    result = run_benchmarks(["scaling"], quick=True)
    rows = result["scaling"]
    assert len(rows) == len(QUICK_SCALING_GRID)
    assert not [r for r in rows if "error" in r]
    for r in rows:
        assert r["peak_mb"] > 0
        if r["kind"] == "wave":
            assert r["step_seconds"] > 0 and r["liquidated"] > 0 and r["waves"] >= 1
            if r["shape"] == "one":  # one position per account, plus the book's per market
                assert r["positions"] == r["accounts"] + r["markets"]
        if r["kind"] == "crash":
            assert r["conservation_error"] < 1e-9
        if r["kind"] == "game":
            assert r["steps"] > 0 and r["deficit"] > 0
        if r["kind"] == "command":  # the command itself, against one market, both timed
            assert len(r["walls"]) == len(r["walls_one"]) == r["runs"]
            assert r["ratio"] == pytest.approx(r["seconds"] / r["seconds_one"])
            assert r["positions"] > r["positions_one"] > r["accounts"]  # venue-shaped
    summary = scaling_summary(rows)
    assert {(s["shape"], s["markets"]) for s in summary["slopes"]} == {("one", 1), ("one", 8)}
    over = {r["markets"]: r["ratio"] for r in summary["markets_overhead"]}
    assert over[1] == 1.0 and set(over) == {1, 8, 16}
    for r in summary["markets_overhead"]:  # what each market beyond the first adds, in ms
        if r["markets"] == 1:
            assert r["ms_per_extra_market"] is None
        else:
            base = r["step_seconds"] / r["ratio"]
            extra = (r["step_seconds"] - base) / (r["markets"] - 1)
            assert r["ms_per_extra_market"] == pytest.approx(1e3 * extra)
    assert summary["markets_doubling"]["doubled"] == 16
    assert [r["accounts"] for r in summary["markets_by_size"]] == [20_000]
    targets = result["targets"]
    for name in (
        "scaling_markets_overhead",
        "scaling_markets_doubling",
        "scaling_crash_peak_mb",
        "scaling_big_wave_seconds",
        "scaling_oct10_game_seconds",
        "scaling_crash_command_ratio",
    ):
        assert name in targets, name
    assert targets["scaling_markets_overhead"]["target"] == 1.5
    # the command line writes the records and the figure
    assert adlgame(["bench", "--section", "scaling", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "scaling.json").exists() and (tmp_path / "scaling.png").exists()


def test_envs_section_times_both_environments_and_the_game():
    r = run_benchmarks(("envs",), quick=True)
    envs = r["envs"]
    assert envs["traders"] == 300 and envs["gym_steps"] > 10
    # the pooled figure lies within its episodes' own rates, which are reported with it
    assert envs["gym_episodes"] >= 1
    lo, hi = envs["gym_episode_steps_per_s_min"], envs["gym_episode_steps_per_s_max"]
    assert lo * (1 - 1e-12) <= envs["gym_steps_per_s"] <= hi * (1 + 1e-12)
    for key in ("gym_steps_per_s", "gym_idle_steps_per_s", "parallel_steps_per_s"):
        assert envs[key] > 0
    # an environment step plays a game step: it is never faster than the game alone
    assert envs["gym_idle_steps_per_s"] < envs["game_steps_per_s"] * 1.5
    assert envs["parallel_learner_steps_per_s"] == pytest.approx(
        envs["parallel_steps_per_s"] * envs["learners_parallel"]
    )
    t = r["targets"]["envs_steps_per_s"]
    assert t["target"] == TARGETS["envs_steps_per_s"] == 1000.0 and t["op"] == ">="
    assert "envs 300 traders" in format_report(r)
    assert f"{envs['gym_episodes']} episodes, each" in format_report(r)
