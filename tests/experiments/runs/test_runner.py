"""The run engine: rows, resume, failures, executors, SIGTERM, a real Dask cluster."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import experiments.runs.runner as runner
from experiments.game.model import ADLGame
from experiments.game.scenario import from_dict
from experiments.runs.results import RunResult
from experiments.runs.runner import RunSpec, load_results, run_one, run_specs
from experiments.runs.sweep import load_sweep, sweep_from_dict
from market.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
TINY = {
    "run.traders": 200,
    "run.crises": 2,
    "run.calm_steps": 3,
    "run.crisis_steps": 4,
}


def _specs(seeds: int = 2, **extra) -> list[RunSpec]:
    data = {
        "policies": ["hyperliquid", "pro_rata"],
        "seeds": seeds,
        "root_seed": 11,
        "overrides": dict(TINY),
        "parameters": {"crisis.drop_median": [0.25, 0.35]},
    }
    data.update(extra)
    return sweep_from_dict(data, name="unit").specs()


def _counting(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = runner.run_one

    def counted(spec):
        calls.append(spec.key)
        return real(spec)

    monkeypatch.setattr(runner, "run_one", counted)
    return calls


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds").reset_index(drop=True),
        b.drop(columns="seconds").reset_index(drop=True),
    )


def test_run_one_row_matches_a_direct_game():
    spec = _specs(seeds=1)[-1]  # pro_rata, drop 0.35
    row = run_one(spec)
    game = ADLGame(from_dict(spec.scenario), seed=spec.seed, severity="full")
    game.run()
    summary = RunResult.from_game(game).summary()
    assert summary["adl_raised"] > 0  # the tiny scenario does reach ADL
    assert row["status"] == "ok" and row["error"] == "" and row["traceback"] == ""
    assert row["key"] == spec.key and row["seed"] == spec.seed
    assert row["policy"] == "pro_rata" and row["severity"] == "full"
    assert row["crisis.drop_median"] == 0.35
    assert row["tag.sweep"] == "unit"
    assert row["scenario"] == "default"
    for name in ("adl_raised", "total_deficit", "residual_bad_debt", "retention", "overshoot"):
        assert row[name] == pytest.approx(summary[name], rel=0, abs=0)
    assert row["traders_active_end"] == float(summary["traders_active_end"])
    assert row["overshoot_h0"] == summary["overshoot_by_horizon"]["0"]
    assert row["overshoot_h5"] == summary["overshoot_by_horizon"]["5"]
    assert "scenario_config" not in row and "crises" not in row
    assert row["seconds"] > 0


def test_resume_skips_finished_runs(tmp_path, monkeypatch):
    specs = _specs()
    assert len(specs) == 8
    out = tmp_path / "out"
    first = run_specs(specs[:4], out, workers=1, quiet=True)
    assert len(first) == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    assert len(stamps) == 4
    calls = _counting(monkeypatch)
    rows = run_specs(specs + specs[:3], out, workers=1, quiet=True)  # duplicates run once
    assert sorted(calls) == sorted(s.key for s in specs[4:])
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet") if p.name in stamps} == (
        stamps
    )
    assert len(rows) == 8
    assert sorted(rows["key"]) == sorted(s.key for s in specs)
    assert (rows["status"] == "ok").all()
    # sorted by tags, cell, policy, seed
    assert list(rows["crisis.drop_median"]) == [0.25] * 4 + [0.35] * 4
    assert list(rows["policy"][:4]) == ["hyperliquid", "hyperliquid", "pro_rata", "pro_rata"]
    seeds = sorted({s.seed for s in specs})
    assert list(rows["seed"][:2]) == seeds
    # the folder is the dataset: one line loads it
    _same_rows(load_results(out), rows)
    assert len(pd.read_parquet(out)) == 8
    calls.clear()
    assert len(run_specs(specs, out, workers=1, quiet=True)) == 8
    assert calls == []


def test_failed_runs_are_recorded_and_the_rest_finish(tmp_path, monkeypatch):
    # max_fraction 1.5 is rejected by the policy when ADL first calls it (at run time)
    specs = _specs(
        policies=["capped_pro_rata"],
        overrides={**TINY, "crisis.drop_median": 0.3},
        parameters={"policy.max_fraction": [1.5, 0.5]},
    )
    out = tmp_path / "out"
    rows = run_specs(specs, out, workers=1, quiet=True)
    assert len(rows) == 4
    bad = rows[rows["policy.max_fraction"] == 1.5]
    good = rows[rows["policy.max_fraction"] == 0.5]
    assert list(bad["status"]) == ["error", "error"]
    assert list(good["status"]) == ["ok", "ok"]
    for _, r in bad.iterrows():
        assert r["error"].startswith("InputError: capped_pro_rata.max_fraction: must be")
        assert "\n" not in r["error"]
        assert r["traceback"].startswith("Traceback (most recent call last)")
        assert "max_fraction" in r["traceback"]
        assert math.isnan(r["adl_raised"]) and math.isnan(r["overshoot_h0"])
    assert (good["adl_raised"] > 0).all() and (good["error"] == "").all()
    # every shard has one schema, so the one-line reader sees every column
    schemas = {tuple(pq.read_schema(p).names) for p in out.glob("*.parquet")}
    schema_types = {tuple(map(str, pq.read_schema(p).types)) for p in out.glob("*.parquet")}
    assert len(schemas) == 1 and len(schema_types) == 1
    assert list(pd.read_parquet(out).columns) == list(rows.columns)
    # failures are kept, not retried, unless asked
    calls = _counting(monkeypatch)
    run_specs(specs, out, workers=1, quiet=True)
    assert calls == []
    again = run_specs(specs, out, workers=1, quiet=True, retry_failed=True)
    assert sorted(calls) == sorted(bad["key"])
    assert list(again["status"]) == list(rows["status"])


def test_a_task_that_dies_is_recorded(tmp_path, monkeypatch):
    specs = _specs(seeds=1)[:3]
    doomed = specs[1].key
    real = runner.run_one

    def flaky(spec):
        if spec.key == doomed:
            raise MemoryError("worker ran out of memory")
        return real(spec)

    monkeypatch.setattr(runner, "run_one", flaky)
    rows = run_specs(specs, tmp_path / "o", workers=1, quiet=True).set_index("key")
    assert rows.loc[doomed, "status"] == "error"
    assert rows.loc[doomed, "error"] == "MemoryError: worker ran out of memory"
    assert "flaky" in rows.loc[doomed, "traceback"]
    assert (rows.drop(index=doomed)["status"] == "ok").all()


def test_a_worker_process_that_dies_does_not_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("ADLGAME_START_METHOD", "fork")  # workers inherit the patch below
    specs = _specs(seeds=2)[:4]
    doomed = specs[0].key
    parent = os.getpid()
    real = runner.run_one

    def dying(spec):
        if spec.key == doomed and os.getpid() != parent:
            os._exit(3)  # the worker process dies, as on a crash or an out-of-memory kill
        return real(spec)

    monkeypatch.setattr(runner, "run_one", dying)
    out = tmp_path / "o"
    rows = run_specs(specs, out, workers=2, quiet=True).set_index("key")
    assert sorted(rows.index) == sorted(s.key for s in specs)
    assert rows.loc[doomed, "status"] == "error"  # tried twice, then recorded
    assert rows.loc[doomed, "error"].startswith("BrokenProcessPool")
    assert "BrokenProcessPool" in rows.loc[doomed, "traceback"]
    monkeypatch.setattr(runner, "run_one", real)
    again = run_specs(specs, out, workers=2, quiet=True, retry_failed=True)
    assert (again["status"] == "ok").all()


def test_one_or_two_local_workers_give_identical_rows(tmp_path):
    specs = _specs(seeds=2)[:6]
    one = run_specs(specs, tmp_path / "one", workers=1, quiet=True)
    two = run_specs(specs, tmp_path / "two", workers=2, quiet=True)
    _same_rows(one, two)
    assert (one["status"] == "ok").all()
    assert one["adl_raised"].gt(0).any()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"executor": "spark"}, "--executor"),
        ({"executor": "dask://127.0.0.1"}, "--executor"),
        ({"executor": "dask://127.0.0.1:99999"}, "--executor"),
        ({"executor": "dask-local:4"}, "--executor"),
        ({"workers": 0}, "--workers"),
        ({"workers": 1.5}, "--workers"),
    ],
)
def test_bad_executor_or_workers_write_nothing(tmp_path, kwargs, field):
    with pytest.raises(InputError) as err:
        run_specs(_specs(seeds=1)[:1], tmp_path / "o", **kwargs)
    assert err.value.field == field
    if field == "--executor":
        assert err.value.allowed == "local, dask-local or dask://HOST:PORT"
    assert not (tmp_path / "o").exists()


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "timeseries.parquet").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        run_specs(_specs(seeds=1)[:1], tmp_path)
    assert err.value.field == "--out"
    assert "timeseries.parquet" in str(err.value)


SIGTERM_SWEEP = """
policies = ["hyperliquid", "pro_rata"]
seeds = 3
root_seed = 5
[overrides]
"run.traders" = 1500
"run.crises" = 2
"run.calm_steps" = 5
"run.crisis_steps" = 6
"crisis.drop_median" = 0.3
"""


def test_sigterm_stops_cleanly_and_the_rerun_completes(tmp_path):
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(SIGTERM_SWEEP)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(sweep_file), "--out", str(out)]
    cmd += ["--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.parquet")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no run finished in 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = stderr.decode()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert "stopped by SIGTERM" in text and "run the same command again to resume" in text
    assert "Traceback" not in text
    done = sorted(p.name for p in out.glob("*.parquet"))
    assert 1 <= len(done) < 6
    assert not list(out.glob(".*.tmp"))

    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "6 runs (0 failed)" in again.stdout
    rows = pd.read_parquet(out)  # _summary.csv, _report.md and _sweep.toml are skipped
    assert len(rows) == 6 and rows["key"].is_unique
    assert set(done) <= {f"{k}.parquet" for k in rows["key"]}
    assert (out / "_summary.csv").exists() and (out / "_report.md").exists()
    summary = pd.read_csv(out / "_summary.csv")
    assert set(summary["policy"]) == {"hyperliquid", "pro_rata"}
    assert (summary["runs"] == 3).all()

    reference = run_specs(load_sweep(sweep_file).specs(), tmp_path / "ref", workers=1, quiet=True)
    _same_rows(load_results(out), reference)
    assert reference["adl_raised"].gt(0).all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows_as_local(tmp_path):
    from distributed import Client

    dask = [sys.executable, "-m", "dask"]  # dask[distributed] is a dependency: no skip

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("scheduler", "w1", "w2")]  # noqa: SIM115
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "scheduler",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=logs[0],
                stderr=subprocess.STDOUT,
            )
        )
        for log in logs[1:]:
            procs.append(
                subprocess.Popen(
                    [*dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                assert time.monotonic() < deadline, "the scheduler did not start"
                time.sleep(0.2)
        specs = _specs(seeds=2)[:6]
        remote = run_specs(specs, tmp_path / "dask", executor=f"dask://127.0.0.1:{port}")
        local = run_specs(specs, tmp_path / "local", workers=1, quiet=True)
        _same_rows(remote, local)
        assert (local["status"] == "ok").all()
        on_local_cluster = run_specs(specs, tmp_path / "dl", executor="dask-local", workers=2)
        _same_rows(on_local_cluster, local)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def test_interrupted_message_and_exit_code():
    exc = runner.Interrupted(signal.SIGINT, 3, 8, Path("results"))
    assert exc.exit_code == 130
    assert str(exc) == (
        "stopped by SIGINT: 3 of 8 runs are done and kept in results; "
        "run the same command again to resume"
    )


def test_seeds_are_plain_integers_in_rows(tmp_path):
    rows = run_specs(_specs(seeds=1)[:1], tmp_path, workers=1, quiet=True)
    assert rows["seed"].dtype == np.int64
    assert os.path.basename(runner.shard_path(tmp_path, rows["key"][0])).endswith(".parquet")
