"""The run engine: many game runs, in parallel, resumable, one Parquet shard per run.

Every run is a :class:`RunSpec` (scenario as plain nested dicts, policy, severity controller,
seed, plus the varied parameters of its cell and free-form tags).  Its identity,
:attr:`RunSpec.key`, is the SHA-256 of a canonical JSON of (scenario, policy, severity, seed,
package version): the same run always has the same key, and any change to what it computes
gives a new one.

:func:`run_specs` plays the runs on an executor and writes each finished run as its own
Parquet shard ``OUT/<key>.parquet``, atomically (written under a temporary ``.<key>…tmp``
name in the same folder, then renamed).  A rerun skips every key whose shard exists, so a
killed sweep loses nothing but the runs in flight.  A failing run is recorded as a row with
``status="error"``, the error message and the traceback, and does not stop the others; failed
runs are *not* retried on the next invocation (they would usually fail the same way) unless
``retry_failed=True`` (``adlgame sweep --retry-failed``).  SIGINT/SIGTERM stop cleanly: no new
runs start, runs not yet started are cancelled, runs already running finish and are written
(a second signal abandons them), then :class:`Interrupted` is raised; the next call resumes.

Executors (all go through the same submit / wait-for-first-completed loop, and every run is
deterministic given its spec, so the rows are identical whatever the executor and the number
of workers; only ``seconds`` differs):

- ``"local"``: a process pool of ``workers`` processes (default: the number of CPUs), forked
  after the game is imported so that no worker imports it again (``START_METHOD``; set
  ``ADLGAME_START_METHOD=forkserver`` or ``spawn`` to change it); ``workers=1`` runs in this
  process;
- ``"dask-local"``: a fresh ``distributed.LocalCluster`` of ``workers`` single-threaded worker
  processes;
- ``"dask://HOST:PORT"``: an existing Dask distributed scheduler (its workers need adlgame
  installed; the results are written here, so they need no shared file system).

The results folder is a Parquet dataset::

    import pandas as pd
    rows = pd.read_parquet(OUT)          # one row per run (or experiments.runs.runner.load_results)

Files starting with ``_`` or ``.`` (``_summary.csv``, ``_report.md``, ``_sweep.toml``,
temporary files) are ignored by the Parquet reader, so they can live beside the shards.
Columns, in this order:

- ``key`` (str), ``scenario`` (its name), ``policy``, ``severity``, ``seed`` (int64),
  ``package_version``;
- ``tag.<name>`` for each tag (e.g. ``tag.sweep``, the sweep's name);
- one column per varied parameter, named by its dotted name (``crisis.drop_median``,
  ``policy.max_fraction``), holding the cell's value;
- every scalar figure of :class:`experiments.runs.results.RunResult` as float64
  (``total_deficit``, ``backstop_used``, ``adl_raised``, ``residual_bad_debt``,
  ``overshoot``, ``accounts_touched``, ``gini_haircut_base``, ``retention``, …) and the two-pass
  overshoot curve flattened as ``overshoot_h0``, ``overshoot_h1``, … (one per horizon);
  NaN in failed runs;
- small per-run curves as JSON text (lists of floats, ``"[]"`` in failed runs; see
  :data:`VECTOR_COLUMNS` and :func:`run_vectors`): ``lorenz_haircut``,
  ``retention_by_crisis``, ``revenue_by_crisis``, ``leverage_drift_by_crisis``,
  ``externality_by_crisis`` (read one with ``json.loads``);
- ``status`` (``"ok"`` or ``"error"``), ``error`` (one line, ``""`` when ok),
  ``traceback`` (``""`` when ok), ``seconds`` (wall time of the run: the only column that
  differs between two executions of the same run).

Every shard of a folder has the same columns (failed rows carry every metric column as NaN),
so the reader's schema does not depend on which shard it reads first.  Keep one sweep per
folder: shards of another sweep would bring other parameter columns.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import importlib
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market.errors import InputError

#: The allowed ``--executor`` values, as shown in error messages.
EXECUTOR_FORMS = "local, dask-local or dask://HOST:PORT"
#: Columns naming the run, first in every row.
ID_COLUMNS = ("key", "scenario", "policy", "severity", "seed", "package_version")
#: Columns closing every row.
STATUS_COLUMNS = ("status", "error", "traceback", "seconds")
#: Per-run curves stored as JSON text columns (after the scalar metrics), in this order.
VECTOR_COLUMNS = (
    "lorenz_haircut",
    "retention_by_crisis",
    "revenue_by_crisis",
    "leverage_drift_by_crisis",
    "externality_by_crisis",
)
#: Points of the stored Lorenz curve: population shares 0, 0.05, ..., 1.
LORENZ_POINTS = 21
_SHARD = re.compile(r"^[0-9a-f]{64}\.parquet$")


@functools.cache
def _package_version() -> str:
    from experiments.runs.results import package_version

    return package_version()


def _plain(obj: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Sorted-key, whitespace-free JSON: equal configurations give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)


@dataclass(frozen=True)
class RunSpec:
    """One game run: what to play and the labels its row carries.

    Args:
        scenario: the scenario as plain nested dicts (:func:`experiments.game.scenario.to_dict`),
            so the spec pickles small.
        policy: ADL policy name (see ``adlgame policies``).
        severity: severity controller name.
        seed: the run's root seed.
        cell: the varied parameters of this run's cell, dotted name -> value (labels only:
            their values are already in ``scenario``).
        tags: free labels, e.g. ``{"sweep": "drop-vs-leverage"}`` (columns ``tag.<name>``).
    """

    scenario: dict
    policy: str
    severity: str = "full"
    seed: int = 1
    cell: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from market.adl import SEVERITIES, policy_class

        if not isinstance(self.scenario, dict):
            raise InputError("RunSpec.scenario", "a dict (experiments.game.scenario.to_dict)")
        try:
            policy_class(self.policy)
        except InputError as exc:
            raise InputError("RunSpec.policy", exc.allowed, self.policy) from None
        if self.severity not in SEVERITIES:
            raise InputError("RunSpec.severity", f"one of {', '.join(SEVERITIES)}", self.severity)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise InputError("RunSpec.seed", "an integer >= 0", self.seed)
        if self.seed < 0:
            raise InputError("RunSpec.seed", "an integer >= 0", self.seed)
        for name in ("cell", "tags"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise InputError(f"RunSpec.{name}", "a dict with string keys", value)
        if any("." not in k for k in self.cell):
            raise InputError("RunSpec.cell", "dotted parameter names (section.name)", self.cell)

    @functools.cached_property
    def key(self) -> str:
        """SHA-256 (hex) of (scenario, policy, severity, seed, package version): the identity."""
        ident = {
            "scenario": self.scenario,
            "policy": self.policy,
            "severity": self.severity,
            "seed": int(self.seed),
            "version": _package_version(),
        }
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()

    def __hash__(self) -> int:
        return hash(self.key)


def _label(value: Any) -> Any:
    """A cell or tag value as a Parquet-friendly scalar (lists and tables as JSON text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple | dict):
        return canonical_json(value)
    return value


def _head(spec: RunSpec) -> dict[str, Any]:
    """The identity and label columns of a spec's row."""
    row: dict[str, Any] = {
        "key": spec.key,
        "scenario": str(spec.scenario.get("name", "")),
        "policy": spec.policy,
        "severity": spec.severity,
        "seed": int(spec.seed),
        "package_version": _package_version(),
    }
    for name, value in spec.tags.items():
        row[f"tag.{name}"] = _label(value)
    for name, value in spec.cell.items():
        row[name] = _label(value)
    return row


def run_vectors(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The run's small curves (:data:`VECTOR_COLUMNS`) as JSON lists, from its frames.

    - ``lorenz_haircut``: :func:`experiments.metrics.lorenz_points` of the haircut fractions
      h/base (the eligibility base, price-rule independent) of every (wave, account with
      positive capacity) pair of the run, pooled over waves; untouched rows count as zeros
      (the wave log's ``positive``), as in ``gini_haircut_base``;
    - ``retention_by_crisis``: :func:`experiments.metrics.retention_curve` ``["all"]``, one
      value per crisis boundary;
    - ``revenue_by_crisis``: fees earned per cycle (the calm period before crisis k plus
      crisis k; the last entry is the calm after the last crisis), from
      :func:`experiments.metrics.fee_revenue_per_period`, in dollars;
    - ``leverage_drift_by_crisis``: whales' mean target leverage at each crisis boundary minus
      the first (:func:`experiments.metrics.leverage_by_crisis`);
    - ``externality_by_crisis``: :func:`experiments.metrics.externality_ratio` of the
      bankruptcies of each crisis cycle (a bankruptcy belongs to the first crisis boundary at
      or after its step).

    NaN entries are written as ``null``.
    """
    from experiments import metrics as mx
    from experiments.runs.results import json_safe

    ts, agents = frames["timeseries"], frames["agents"]
    events, waves, bank = frames["adl_events"], frames["waves"], frames["bankruptcies"]
    out: dict[str, Any] = {}
    if len(events) and len(waves):
        rows = mx.wave_rows(events)
        rows = rows[rows["base"].to_numpy(dtype=np.float64) > 0]
        frac = rows["burden_base"].to_numpy(dtype=np.float64)
        touched = rows.groupby("wave").size()
        positive = waves.set_index("wave")["positive"].reindex(touched.index).fillna(0.0)
        size = int(np.maximum(positive.to_numpy(), touched.to_numpy()).sum())
        out["lorenz_haircut"] = mx.lorenz_points(frac, size, LORENZ_POINTS)
    else:
        out["lorenz_haircut"] = []
    ret = mx.retention_curve(agents) if len(agents) else pd.DataFrame()
    out["retention_by_crisis"] = ret["all"].to_numpy() if "all" in ret else []
    per = mx.fee_revenue_per_period(ts)
    out["revenue_by_crisis"] = per.groupby("crisis")["fees"].sum().to_numpy()
    if len(agents):
        lev = mx.leverage_by_crisis(agents, "whale")
        first = lev.dropna()
        out["leverage_drift_by_crisis"] = (
            (lev - first.iloc[0]).to_numpy() if len(first) else lev.to_numpy()
        )
        crises = np.sort(agents["crisis"].unique())
        of = mx.crisis_of(bank["step"].to_numpy(), agents) if len(bank) else np.array([])
        out["externality_by_crisis"] = [
            mx.externality_ratio(bank[of == c], agents) if (of == c).any() else np.nan
            for c in crises  # one call per crisis (a handful), vectorised inside
        ]
    else:
        out["leverage_drift_by_crisis"] = []
        out["externality_by_crisis"] = []
    return {
        k: json.dumps(json_safe(np.asarray(out[k], dtype=np.float64).tolist()))
        for k in VECTOR_COLUMNS
    }


def metric_columns() -> tuple[str, ...]:
    """Names of the metric columns of an ok row, in order
    (:func:`experiments.runs.results.run_metric_names`); failed rows get them as NaN, so every
    shard of a results folder has one schema."""
    from experiments.runs.results import run_metric_names

    return run_metric_names()


def _error_text(exc: BaseException) -> str:
    """One line: the exception's type and first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Play one run to the end and return its row (see the module docstring for the columns).

    Never raises for a failing run: the row then has ``status="error"``, the error message and
    the traceback, and no metric columns (:func:`run_specs` fills them with NaN).
    """
    start = time.perf_counter()
    row = _head(spec)
    try:
        from experiments.game.model import ADLGame
        from experiments.game.scenario import from_dict
        from experiments.runs.results import RunResult

        scenario = from_dict(spec.scenario)
        # The scenario's own policy keeps its parameters (adl.params); another one is named.
        policy = None if scenario.adl.policy == spec.policy else spec.policy
        game = ADLGame(scenario, seed=int(spec.seed), policy=policy, severity=spec.severity)
        game.run()
        result = RunResult.from_game(game)
        row.update(result.row())
        row.update(run_vectors(result.frames))
        row.update(status="ok", error="", traceback="")
    except Exception as exc:
        row.update(status="error", error=_error_text(exc), traceback=traceback.format_exc())
    row["seconds"] = time.perf_counter() - start
    return row


def _failed_row(spec: RunSpec, exc: BaseException) -> dict[str, Any]:
    """The row of a run whose task died outside :func:`run_one` (e.g. its worker process)."""
    row = _head(spec)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    row.update(status="error", error=_error_text(exc), traceback=tb, seconds=math.nan)
    return row


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Order the columns (identity, labels, metrics, status) and pad missing metrics with NaN."""
    status = {k: row.get(k, "") for k in STATUS_COLUMNS}
    status["seconds"] = float(row.get("seconds", math.nan))
    head = {k: row[k] for k in row if k in ID_COLUMNS}
    labels = {k: row[k] for k in row if k not in ID_COLUMNS and "." in k}
    metrics = {
        k: float(v)
        for k, v in row.items()
        if k not in ID_COLUMNS
        and k not in STATUS_COLUMNS
        and k not in VECTOR_COLUMNS
        and "." not in k
    }
    vectors = {k: str(row.get(k, "[]")) for k in VECTOR_COLUMNS}
    if status["status"] != "ok":
        metrics = {name: metrics.get(name, math.nan) for name in metric_columns()} | metrics
    return {**head, **labels, **metrics, **vectors, **status}


def shard_path(out: str | Path, key: str) -> Path:
    """Where the shard of run ``key`` lives."""
    return Path(out) / f"{key}.parquet"


def write_shard(out: str | Path, row: dict[str, Any]) -> Path:
    """Write one row as ``out/<key>.parquet`` atomically (temporary file, fsync, rename)."""
    row = _normalise(row)
    final = shard_path(out, row["key"])
    tmp = final.with_name(f".{row['key']}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        pd.DataFrame([row]).to_parquet(tmp, index=False)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a deterministic order: tags, cell parameters, policy, severity, seed, key."""
    cols = list(frame.columns)
    tags = [c for c in cols if c.startswith("tag.")]
    cells = [c for c in cols if "." in c and not c.startswith("tag.")]
    order = [*tags, *cells, *[c for c in ("policy", "severity", "seed", "key") if c in cols]]
    if not order or frame.empty:
        return frame.reset_index(drop=True)
    return frame.sort_values(order, kind="mergesort", na_position="last").reset_index(drop=True)


def load_results(out: str | Path) -> pd.DataFrame:
    """Every run of a results folder, one row each, sorted (``pandas.read_parquet(out)``)."""
    return sort_rows(pd.read_parquet(Path(out)))


def _read_rows(out: Path, keys: Iterable[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(shard_path(out, k)) for k in keys]
    if not frames:
        return pd.DataFrame(columns=[*ID_COLUMNS, *STATUS_COLUMNS])
    return sort_rows(pd.concat(frames, ignore_index=True))


class Interrupted(Exception):
    """A run of :func:`run_specs` stopped by SIGINT/SIGTERM; finished runs are kept.

    Attributes:
        signum: the signal received; done: runs finished (earlier invocations included);
        total: runs asked for; out: the results folder; exit_code: 128 + signum.
    """

    def __init__(self, signum: int, done: int, total: int, out: Path) -> None:
        self.signum = signum
        self.done = done
        self.total = total
        self.out = out
        self.exit_code = 128 + int(signum)
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name}: {done} of {total} runs are done and kept in {out}; "
            "run the same command again to resume"
        )


def parse_executor(executor: str) -> tuple[str, str | None]:
    """``"local"``, ``"dask-local"`` or ``"dask://HOST:PORT"`` -> (kind, address or None)."""
    if executor in ("local", "dask-local"):
        return executor, None
    if isinstance(executor, str):
        m = re.fullmatch(r"dask://([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})", executor)
        if m and 0 < int(m.group(2)) < 65536:
            return "dask", f"tcp://{m.group(1)}:{m.group(2)}"
    raise InputError("--executor", EXECUTOR_FORMS, executor)


class _InlineExecutor(cf.Executor):
    """Runs each task in this process when it is submitted (``workers=1``)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> cf.Future:  # type: ignore[override]
        """Run ``fn(*args, **kwargs)`` now; return a finished future."""
        fut: cf.Future = cf.Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


def _worker_init() -> None:
    """Pool workers leave Ctrl-C to the parent (which stops them cleanly)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: How local worker processes start (``fork`` on Linux: they inherit the imported game, so
#: nothing is imported twice; ``ADLGAME_START_METHOD`` overrides it, e.g. ``forkserver``).
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
#: Modules a worker needs, imported before workers start.
_WORKER_MODULES = ("experiments.game.model", "experiments.runs.results", "experiments.metrics")


def _start_method() -> str:
    """The start method of local workers (``ADLGAME_START_METHOD`` or :data:`START_METHOD`)."""
    method = os.environ.get("ADLGAME_START_METHOD", START_METHOD)
    allowed = multiprocessing.get_all_start_methods()
    if method not in allowed:
        raise InputError("ADLGAME_START_METHOD", f"one of {', '.join(allowed)}", method)
    return method


def _call_run_one(spec: RunSpec) -> dict[str, Any]:
    """Task body: looks ``run_one`` up at call time (so it can be replaced in tests)."""
    return run_one(spec)


class _Pool:
    """One executor behind the common loop: submit, in-flight limit, repair, close."""

    def __init__(self, kind: str, address: str | None, workers: int) -> None:
        self.kind = kind
        self.workers = workers
        self.generation = 0
        self._client: Any = None
        self._cluster: Any = None
        if kind == "local":
            self.executor = self._local()
            self.limit = 1 if workers == 1 else workers + 1
        else:
            self.executor = self._dask(address)

    def _local(self) -> cf.Executor:
        if self.workers == 1:
            return _InlineExecutor()
        method = _start_method()
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(list(_WORKER_MODULES))
        else:
            # Import the game here once; forked workers start with it loaded.
            for name in _WORKER_MODULES:
                importlib.import_module(name)
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init)

    def _dask(self, address: str | None) -> cf.Executor:
        import logging

        from distributed import Client, LocalCluster

        if address is None:
            with warnings.catch_warnings():
                # "Port 8787 is already in use": another Dask is running; a free port is taken.
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(address, timeout="10s")
            except OSError as exc:
                raise InputError(
                    "--executor", "a reachable Dask scheduler at dask://HOST:PORT", address
                ) from exc
        threads = sum(self._client.nthreads().values()) or 1
        self.limit = 2 * threads
        return self._client.get_executor(pure=False)

    def submit(self, spec: RunSpec) -> tuple[cf.Future, int]:
        """Start one run; returns its future and the pool generation it runs in."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self.executor.submit(_call_run_one, spec), self.generation
        except BrokenProcessPool:
            self.repair()
            return self.executor.submit(_call_run_one, spec), self.generation

    def repair(self) -> None:
        """Replace a local process pool broken by a dead worker (a new generation)."""
        if isinstance(self.executor, cf.ProcessPoolExecutor):
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._local()
            self.generation += 1

    def abandon(self) -> None:
        """Stop now: kill local workers, cancel remote tasks."""
        if isinstance(self.executor, cf.ProcessPoolExecutor):
            procs = list((getattr(self.executor, "_processes", None) or {}).values())
            self.executor.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                with contextlib.suppress(Exception):
                    p.terminate()
        elif self.kind != "local":
            self.executor.shutdown(wait=False)

    def close(self) -> None:
        """Release the executor (and the Dask client and local cluster)."""
        if isinstance(self.executor, cf.ProcessPoolExecutor):
            self.executor.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


class _Stop:
    """SIGINT/SIGTERM: the first sets the flag, the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stop]:
        """Install the handlers (main thread only) and restore the old ones after."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)


def check_results_dir(out: Path) -> None:
    """Refuse a folder holding files that are not run shards (nothing is written here)."""
    if out.exists() and not out.is_dir():
        raise InputError("--out", "a folder path (not an existing file)", str(out))
    if not out.is_dir():
        return
    for p in sorted(out.iterdir()):
        if p.name.startswith(("_", ".")) or _SHARD.match(p.name):
            continue
        raise InputError(
            "--out",
            "a new folder or a results folder of run shards (<key>.parquet and _ or . files)",
            f"{out} holds {p.name}",
        )


def _positive_workers(workers: int | None) -> int:
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise InputError("--workers", "a positive integer", workers)
    return int(workers)


def open_pool(executor: str = "local", workers: int | None = None) -> _Pool:
    """An executor for tasks other than game runs (the audit's best-response search).

    ``pool.executor.submit(fn, *args)`` runs ``fn`` in a local process (``workers=1``: in this
    process) or on Dask, like a sweep's runs; ``pool.close()`` releases it.

    Raises:
        InputError: for a bad executor or worker count.
    """
    kind, address = parse_executor(executor)
    return _Pool(kind, address, _positive_workers(workers))


def _is_done(path: Path, retry_failed: bool) -> bool:
    if not path.exists():
        return False
    if not retry_failed:
        return True
    status = pd.read_parquet(path, columns=["status"])["status"]
    return bool((status == "ok").all())


def run_specs(
    specs: Iterable[RunSpec],
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    quiet: bool = False,
    retry_failed: bool = False,
) -> pd.DataFrame:
    """Run every spec not already in ``out`` and return one row per distinct key, sorted.

    Args:
        specs: the runs; specs with the same key (the same run) are played once.
        out: the results folder (created if missing); see the module docstring.
        executor: ``"local"``, ``"dask-local"`` or ``"dask://HOST:PORT"``.
        workers: processes for local / dask-local (default: the number of CPUs); ignored for
            an existing Dask cluster, whose threads set the parallelism.
        quiet: no progress bar.
        retry_failed: also rerun runs recorded with ``status="error"``.

    Returns:
        The rows of the given specs (from their shards), sorted by tags, cell parameters,
        policy, severity, seed.

    Raises:
        InputError: bad executor, workers, specs or results folder (before anything runs).
        Interrupted: SIGINT or SIGTERM arrived; finished runs are kept and the next call
            resumes.
    """
    kind, address = parse_executor(executor)
    n_workers = _positive_workers(workers)
    if kind == "local" and n_workers > 1:
        _start_method()
    unique: dict[str, RunSpec] = {}
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise InputError("specs", "RunSpec objects", type(spec).__name__)
        unique.setdefault(spec.key, spec)
    path = Path(out)
    check_results_dir(path)
    for stale in path.glob(".*.tmp"):  # left by a killed writer; never a finished shard
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    todo = [s for k, s in unique.items() if not _is_done(shard_path(path, k), retry_failed)]
    if todo:
        _execute(todo, path, kind, address, n_workers, quiet, total=len(unique))
    path.mkdir(parents=True, exist_ok=True)
    return _read_rows(path, unique)


def _execute(
    todo: list[RunSpec],
    out: Path,
    kind: str,
    address: str | None,
    workers: int,
    quiet: bool,
    *,
    total: int,
) -> None:
    """The submit / wait-for-first-completed loop shared by every executor."""
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    stop = _Stop()
    queue = deque(todo)
    running: dict[cf.Future, tuple[RunSpec, int]] = {}
    attempts: dict[str, int] = {}
    done = total - len(todo)
    failures = 0
    warned = False
    with stop.installed():
        pool = _Pool(kind, address, workers)  # may fail (unreachable scheduler): nothing written
        out.mkdir(parents=True, exist_ok=True)
        bar = None
        try:
            while queue or running:
                while queue and len(running) < pool.limit and stop.signum is None:
                    spec = queue.popleft()
                    fut, gen = pool.submit(spec)
                    running[fut] = (spec, gen)
                if bar is None:  # after the first submissions: workers fork before its thread
                    bar = tqdm(
                        total=total,
                        initial=done,
                        unit="run",
                        desc="adlgame sweep",
                        file=sys.stderr,
                        disable=quiet,
                        dynamic_ncols=True,
                    )
                    bar.set_postfix(failures=0)
                if stop.signum is not None and not warned:
                    warned = True
                    for fut in list(running):
                        if fut.cancel():
                            del running[fut]
                    if running:
                        tqdm.write(
                            f"adlgame sweep: stopping after {len(running)} running run(s) "
                            "finish (send the signal again to abandon them)",
                            file=sys.stderr,
                        )
                if not running:
                    break
                finished, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    spec, gen = running.pop(fut)
                    if stop.signum is not None and (fut.cancelled() or fut.exception()):
                        continue  # not a failure of the run: it reruns next time
                    if fut.cancelled():  # cancelled by a pool repair: run it again
                        queue.appendleft(spec)
                        continue
                    try:
                        row = fut.result()
                    except BrokenProcessPool as exc:
                        # A worker died (crash, out of memory, killed): every run in flight
                        # fails with it.  Each gets a second chance before it is recorded.
                        if gen == pool.generation:
                            pool.repair()
                        attempts[spec.key] = attempts.get(spec.key, 0) + 1
                        if attempts[spec.key] < 2:
                            queue.appendleft(spec)
                            continue
                        row = _failed_row(spec, exc)
                    except Exception as exc:
                        row = _failed_row(spec, exc)
                    write_shard(out, row)
                    done += 1
                    if row.get("status") != "ok":
                        failures += 1
                        if bar is not None:
                            bar.set_postfix(failures=failures, refresh=False)
                    if bar is not None:
                        bar.update(1)
        except KeyboardInterrupt:
            pool.abandon()
            if stop.signum is None:
                stop.signum = signal.SIGINT
        finally:
            if bar is not None:
                bar.close()
            pool.close()
    if stop.signum is not None:
        raise Interrupted(stop.signum, done, total, out)
