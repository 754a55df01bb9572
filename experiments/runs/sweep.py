"""Sweep files: a scenario, the parameters to vary, a design and seeds, in one TOML file.

::

    name = "drop-vs-leverage"       # optional; default: the file's name without .toml
    scenario = "default"            # a built-in name or a TOML path (relative to this file)
    policies = ["hyperliquid", "pro_rata"]
    severity = "full"               # or a list of severity controllers
    seeds = 4                       # per cell: the same seed list for every cell and policy
    root_seed = 1
    design = "factorial"            # factorial | lhs | sobol
    samples = 8                     # cells, lhs and sobol only (sobol: a power of 2)

    [overrides]                     # fixed values, by dotted name
    "run.traders" = 500
    "policy.max_fraction" = 0.5     # policy.NAME: a parameter of every swept policy

    [parameters]                    # factorial: lists of values; lhs / sobol: [low, high]
    "crisis.drop_median" = [0.08, 0.16]
    "passive.leverage_median" = [2.0, 5.0]

Dotted names are ``section.field`` of the scenario (``adlgame`` scenario TOML: ``run.traders``,
``crisis.drop_median``, ``whale.learning_rate``, …) or ``policy.NAME`` for a constructor
parameter of the policies (every swept policy must accept it).  ``adl.policy``,
``adl.severity`` and ``adl.params`` are set by ``policies``, ``severity`` and ``policy.NAME``.

Design: ``factorial`` crosses every list; ``lhs`` (Latin hypercube) and ``sobol`` (scrambled
Sobol' points) draw ``samples`` points in the unit cube (``scipy.stats.qmc``, seeded from
``root_seed``) and scale them to each ``[low, high]``; an integer parameter takes the integers
``low..high`` with equal chances (``floor(low + u (high - low + 1))``).

Seeds: ``SeedSequence(root_seed)`` spawns two children, one seeding the design and one whose
``seeds`` children give the run seeds.  Every cell, policy and severity uses the same seed
list (common random numbers), so a paired difference between two policies in a cell compares
runs that saw the same prices, crises and traders.  Adding seeds keeps the earlier ones.

``adlgame sweep FILE.toml --out DIR`` runs the sweep (:mod:`experiments.runs.runner`), then writes
``DIR/_summary.csv`` (per cell, policy and severity: every metric's mean and 95 % Student-t
interval over the ok runs) and ``DIR/_report.md``; the rows are ``pandas.read_parquet(DIR)``.
The summary files start with ``_`` so the Parquet reader skips them.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.game.scenario import Scenario, builtin_scenarios, load_scenario, to_dict
from experiments.runs.runner import (
    ID_COLUMNS,
    STATUS_COLUMNS,
    RunSpec,
    check_results_dir,
    parse_executor,
    run_specs,
)
from market.errors import InputError

#: The keys a sweep file may hold.
SWEEP_KEYS = (
    "name",
    "scenario",
    "policies",
    "severity",
    "seeds",
    "root_seed",
    "design",
    "samples",
    "overrides",
    "parameters",
)
DESIGNS = ("factorial", "lhs", "sobol")
#: Metrics shown in the report table (every metric is in the summary CSV).
REPORT_METRICS = (
    ("total_deficit", "deficit $"),
    ("adl_raised", "ADL raised $"),
    ("residual_bad_debt", "bad debt $"),
    ("overshoot", "overshoot $"),
    ("accounts_touched", "accounts touched"),
    ("retention", "retention"),
)
_RESERVED = ("adl.policy", "adl.severity", "adl.params")
_NAMES_HELP = "a dotted scenario parameter (section.field, e.g. run.traders) or policy.NAME"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep (build it with :func:`load_sweep` or :func:`sweep_from_dict`).

    Attributes:
        name: the sweep's name (tag ``sweep`` of every run).
        scenario: the base scenario with the fixed scenario overrides applied.
        policies, severities: what every cell is played under.
        seeds: seeds per cell; root_seed: the root of the design and seed streams.
        design: factorial, lhs or sobol; samples: cells drawn by lhs / sobol (None otherwise).
        policy_params: fixed ``policy.NAME`` overrides, NAME -> value.
        parameters: the varied parameters, dotted name -> list of values (factorial) or
            (low, high) (lhs, sobol), in file order.
        integers: varied parameters that are integers (lhs / sobol draw whole numbers).
    """

    name: str
    scenario: Scenario
    policies: tuple[str, ...]
    severities: tuple[str, ...] = ("full",)
    seeds: int = 1
    root_seed: int = 1
    design: str = "factorial"
    samples: int | None = None
    policy_params: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    integers: frozenset = frozenset()

    def _streams(self) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
        design, seeds = np.random.SeedSequence(self.root_seed).spawn(2)
        return design, seeds

    def seed_list(self) -> list[int]:
        """The run seeds, shared by every cell, policy and severity (32-bit integers)."""
        _, stream = self._streams()
        return [int(c.generate_state(1)[0]) for c in stream.spawn(self.seeds)]

    def unit_points(self) -> np.ndarray:
        """The lhs / sobol design in the unit cube, shape (samples, parameters)."""
        from scipy.stats import qmc

        d = len(self.parameters)
        rng = np.random.default_rng(self._streams()[0])
        engine = qmc.LatinHypercube if self.design == "lhs" else qmc.Sobol
        try:
            sampler = engine(d, rng=rng)
        except TypeError:  # scipy < 1.15 names the generator `seed`
            sampler = engine(d, seed=rng)
        if self.design == "lhs":
            return sampler.random(self.samples)
        return sampler.random_base2(int(self.samples).bit_length() - 1)

    def cells(self) -> list[dict[str, Any]]:
        """The cells of the design, each a dict dotted name -> value, in design order."""
        names = list(self.parameters)
        if self.design == "factorial":
            lists = [self.parameters[n] for n in names]
            return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]
        u = self.unit_points()
        cells = []
        for row in u:
            cell = {}
            for j, name in enumerate(names):
                low, high = self.parameters[name]
                if name in self.integers:
                    value: Any = min(int(high), math.floor(low + row[j] * (high - low + 1)))
                else:
                    value = float(low + row[j] * (high - low))
                cell[name] = value
            cells.append(cell)
        return cells

    def specs(self) -> list[RunSpec]:
        """Every run: for each cell, severity and policy, one run per seed of :meth:`seed_list`.

        Raises:
            InputError: a cell the scenario rejects (e.g. a cross-check between parameters),
                naming the cell.
        """
        seeds = self.seed_list()
        base_policy = self.scenario.adl.policy
        base_params = dict(self.scenario.adl.params)
        out: list[RunSpec] = []
        for index, cell in enumerate(self.cells()):
            scen = {k: v for k, v in cell.items() if not k.startswith("policy.")}
            pol = {k.removeprefix("policy."): v for k, v in cell.items() if k.startswith("policy.")}
            try:
                sc = self.scenario.replace(**scen) if scen else self.scenario
            except InputError as exc:
                raise InputError(
                    f"sweep.parameters (cell {index}: {cell}) {exc.field}", exc.allowed, exc.got
                ) from None
            data = to_dict(sc)
            labels = {
                k: (_lookup(data, k) if not k.startswith("policy.") else v) for k, v in cell.items()
            }
            for severity in self.severities:
                for policy in self.policies:
                    params = {
                        **(base_params if policy == base_policy else {}),
                        **self.policy_params,
                        **pol,
                    }
                    run_data = {**data, "adl": {**data["adl"], "policy": policy, "params": params}}
                    for seed in seeds:
                        out.append(
                            RunSpec(
                                scenario=run_data,
                                policy=policy,
                                severity=severity,
                                seed=seed,
                                cell=labels,
                                tags={"sweep": self.name},
                            )
                        )
        return out


def _lookup(data: dict, dotted: str) -> Any:
    section, name = dotted.split(".", 1)
    return data[section][name]


def _field_meta(dotted: str) -> dict | None:
    """The validation metadata of scenario field ``section.field`` (None if unknown)."""
    import dataclasses

    parts = dotted.split(".")
    if len(parts) != 2:
        return None
    sections = {f.name: f for f in dataclasses.fields(Scenario)}
    sec = sections.get(parts[0])
    if sec is None or not (isinstance(sec.default_factory, type)):
        return None
    if not dataclasses.is_dataclass(sec.default_factory):
        return None
    fields_ = {f.name: f for f in dataclasses.fields(sec.default_factory)}
    fl = fields_.get(parts[1])
    return None if fl is None else dict(fl.metadata)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_int(data: dict, key: str, default: int, lo: int, section: str = "sweep") -> int:
    """``data[key]`` (or ``default``) as an integer >= ``lo``; an error names ``section.key``."""
    value = data.get(key, default)
    if not _is_int(value) or value < lo:
        raise InputError(f"{section}.{key}", f"an integer >= {lo}", value)
    return int(value)


def check_names(
    data: dict, key: str, allowed: Any, default: Any, section: str = "sweep"
) -> tuple[str, ...]:
    """``data[key]`` (or ``default``): a name or a list of distinct names from ``allowed``, as
    a tuple; an error names ``section.key``."""
    value = data.get(key, default)
    items = [value] if isinstance(value, str) else value
    ok = (
        isinstance(items, list)
        and items
        and all(isinstance(v, str) and v in allowed for v in items)
        and len(set(items)) == len(items)
    )
    if not ok:
        raise InputError(
            f"{section}.{key}",
            f"a name or a list of distinct names from {', '.join(allowed)}",
            value,
        )
    return tuple(items)


def _known(policy: str, where: str) -> None:
    """Refuse a plug-in policy that cannot be loaded, naming ``where``."""
    from market.adl import policy_class

    try:
        policy_class(policy)
    except InputError as exc:
        raise InputError(where, exc.allowed, policy) from None


def _policy_param(name: str, policies: tuple[str, ...], where: str) -> bool:
    """Check that every policy takes parameter ``name``; True if it is an integer parameter."""
    from market.adl import policy_class

    integer = True
    for p in policies:
        cls = policy_class(p)
        valid = cls._param_names()
        if name not in valid:
            raise InputError(
                where,
                f"a parameter of every swept policy ({p} takes {', '.join(valid) or 'none'})",
                f"policy.{name}",
            )
        default = inspect.signature(cls).parameters[name].default
        integer = integer and _is_int(default)
    return integer


def _check_name(name: Any, where: str, policies: tuple[str, ...]) -> tuple[str, bool]:
    """Validate a dotted name; returns (kind "scenario" or "policy", is-integer)."""
    if not isinstance(name, str):
        raise InputError(where, _NAMES_HELP, name)
    if name.startswith(_RESERVED):
        raise InputError(
            where,
            "set by policies, severity and policy.NAME (not adl.policy/severity/params)",
            name,
        )
    if name.startswith("policy."):
        return "policy", _policy_param(name.removeprefix("policy."), policies, where)
    meta = _field_meta(name)
    if meta is None:
        raise InputError(where, _NAMES_HELP, name)
    return "scenario", meta.get("kind") == "int"


def _check_value(base: Scenario, kind: str, name: str, value: Any, where: str) -> None:
    """A single value of a parameter, checked against the scenario's own validation."""
    if kind == "policy":
        if not isinstance(value, str | bool | int | float):
            raise InputError(where, "a number, a boolean or a string", value)
        return
    try:
        base.replace(**{name: value})
    except InputError as exc:
        if exc.field == f"scenario.{name}":
            raise InputError(where, exc.allowed, exc.got) from None
        raise InputError(f"{where} ({exc.field})", exc.allowed, exc.got) from None


def resolve_scenario(source: Any, base_dir: Path | None, section: str = "sweep") -> Scenario:
    """The scenario a file names: a built-in name, or a TOML path relative to ``base_dir``
    (the file's folder); an error names ``section.scenario``."""
    if not isinstance(source, str) or not source:
        raise InputError(
            f"{section}.scenario",
            f"a built-in name ({', '.join(builtin_scenarios())}) or a TOML path",
            source,
        )
    path = Path(source)
    if base_dir is not None and not path.is_absolute() and source not in builtin_scenarios():
        path = base_dir / path
        source = str(path)
    try:
        return load_scenario(source)
    except InputError as exc:
        if exc.field == "scenario":
            raise InputError(f"{section}.scenario", exc.allowed, exc.got) from None
        raise


def sweep_from_dict(
    data: dict, *, name: str = "sweep", base_dir: str | Path | None = None
) -> Sweep:
    """Validate a sweep given as a dict (the parsed TOML) and build it.

    Args:
        data: the sweep table (keys :data:`SWEEP_KEYS`).
        name: the sweep's name when ``data`` has none.
        base_dir: the folder a relative scenario path is taken from.

    Raises:
        InputError: unknown keys, bad values, unknown dotted names, values the scenario
            rejects, bad ranges or sample counts, each as one line naming the field.
    """
    from market.adl import POLICIES, SEVERITIES

    if not isinstance(data, dict):
        raise InputError("sweep", "a table", type(data).__name__)
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise InputError(
            f"sweep.{unknown[0]}", f"a known key ({', '.join(SWEEP_KEYS)})", unknown[0]
        )
    sweep_name = data.get("name", name)
    if not isinstance(sweep_name, str) or not sweep_name:
        raise InputError("sweep.name", "a non-empty string", sweep_name)
    base = resolve_scenario(data.get("scenario", "default"), Path(base_dir) if base_dir else None)
    if "policies" not in data:
        raise InputError("sweep.policies", f"a list of policy names from {', '.join(POLICIES)}")
    from market.adl.plugins import entry_point_policies, is_plugin_spec

    given = data.get("policies")
    plugins = [
        v
        for v in ([given] if isinstance(given, str) else given or [])
        if isinstance(v, str) and is_plugin_spec(v)
    ]
    policies = check_names(
        data, "policies", {**POLICIES, **entry_point_policies(), **dict.fromkeys(plugins)}, None
    )
    for p in plugins:
        _known(p, "sweep.policies")
    severities = check_names(data, "severity", SEVERITIES, "full")
    seeds = check_int(data, "seeds", 1, 1)
    root_seed = check_int(data, "root_seed", 1, 0)
    design = data.get("design", "factorial")
    if design not in DESIGNS:
        raise InputError("sweep.design", f"one of {', '.join(DESIGNS)}", design)
    samples: int | None = None
    if design == "factorial":
        if "samples" in data:
            raise InputError("sweep.samples", "absent for design factorial (lhs / sobol only)")
    else:
        samples = check_int(data, "samples", 0, 1)
        if design == "sobol" and samples & (samples - 1):
            raise InputError("sweep.samples", "a power of 2 for design sobol", samples)

    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        raise InputError("sweep.overrides", "a table of dotted name = value", overrides)
    scen_over: dict[str, Any] = {}
    policy_params: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"sweep.overrides.{key}"
        kind, _ = _check_name(key, where, policies)
        _check_value(base, kind, key, value, where)
        if kind == "policy":
            policy_params[key.removeprefix("policy.")] = value
        else:
            scen_over[key] = value
    if scen_over:
        try:
            base = base.replace(**scen_over)
        except InputError as exc:
            raise InputError(f"sweep.overrides ({exc.field})", exc.allowed, exc.got) from None

    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise InputError("sweep.parameters", "a table of dotted name = values", params)
    if design != "factorial" and not params:
        raise InputError("sweep.parameters", f"at least one [low, high] range for {design}")
    parameters: dict[str, Any] = {}
    integers = set()
    for key, spec in params.items():
        where = f"sweep.parameters.{key}"
        kind, integer = _check_name(key, where, policies)
        if key in overrides:
            raise InputError(where, "a name not also in [overrides]", key)
        if design == "factorial":
            if not isinstance(spec, list) or not spec:
                raise InputError(where, "a non-empty list of values (design factorial)", spec)
            if len({repr(v) for v in spec}) != len(spec):
                raise InputError(where, "distinct values", spec)
            for v in spec:
                _check_value(base, kind, key, v, where)
            parameters[key] = list(spec)
        else:
            ok = (
                isinstance(spec, list)
                and len(spec) == 2
                and all(_is_number(v) for v in spec)
                and spec[0] < spec[1]
            )
            if not ok:
                raise InputError(
                    where, f"[low, high] numbers with low < high (design {design})", spec
                )
            if integer and not all(float(v).is_integer() for v in spec):
                raise InputError(where, "whole-number [low, high] (an integer parameter)", spec)
            for v in spec:
                _check_value(base, kind, key, int(v) if integer else v, where)
            parameters[key] = (int(spec[0]), int(spec[1])) if integer else tuple(spec)
            if integer:
                integers.add(key)
    sweep = Sweep(
        name=sweep_name,
        scenario=base,
        policies=policies,
        severities=severities,
        seeds=seeds,
        root_seed=root_seed,
        design=design,
        samples=samples,
        policy_params=policy_params,
        parameters=parameters,
        integers=frozenset(integers),
    )
    sweep.specs()  # every cell must be a valid scenario
    return sweep


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep TOML file (see the module docstring for its keys)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("sweep", "an existing sweep TOML file", str(path))
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError("sweep", "valid TOML", str(exc).splitlines()[0]) from None
    return sweep_from_dict(data, name=p.stem, base_dir=p.parent)


def metric_names(rows: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a results frame (not identity, labels or status)."""
    skip = {*ID_COLUMNS, *STATUS_COLUMNS}
    return [
        c
        for c in rows.columns
        if c not in skip and "." not in c and pd.api.types.is_numeric_dtype(rows[c])
    ]


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell, policy and severity, every metric's mean and 95 % t interval over ok runs.

    One row per (cell, policy, severity, metric): the cell's parameter columns, ``policy``,
    ``severity``, ``metric``, ``runs`` (all runs of the group), ``failed``, ``n`` (ok runs
    where the metric is defined), ``mean``, ``low``, ``high``
    (:func:`experiments.metrics.confidence_interval`).
    """
    from experiments.metrics import confidence_interval

    cells = [c for c in rows.columns if "." in c and not c.startswith("tag.")]
    group = [*cells, "policy", "severity"]
    metrics = metric_names(rows)
    out = []
    for values, g in rows.groupby(group, sort=False, dropna=False):
        label = dict(zip(group, values, strict=True))
        ok = g[g["status"] == "ok"]
        for m in metrics:
            v = ok[m].to_numpy(dtype=np.float64)
            ci = confidence_interval(v)
            out.append(
                {
                    **label,
                    "metric": m,
                    "runs": len(g),
                    "failed": int((g["status"] != "ok").sum()),
                    "n": int(np.isfinite(v).sum()),
                    "mean": ci.mean,
                    "low": ci.low,
                    "high": ci.high,
                }
            )
    cols = [*group, "metric", "runs", "failed", "n", "mean", "low", "high"]
    return pd.DataFrame(out, columns=cols)


def _fmt(x: Any) -> str:
    if isinstance(x, float | np.floating):
        return "–" if not np.isfinite(x) else f"{x:.4g}"
    return str(x)


def format_report(sweep: Sweep, rows: pd.DataFrame, summary: pd.DataFrame, out: Path) -> str:
    """A short Markdown report: what was run, a table of headline means ± 95 % half-widths."""
    failed = int((rows["status"] != "ok").sum()) if len(rows) else 0
    cells = [c for c in summary.columns if "." in c]
    n_cells = len(rows.drop_duplicates(cells)) if cells and len(rows) else 1
    lines = [
        f"# Sweep {sweep.name}",
        "",
        f"Scenario `{sweep.scenario.name}`; design {sweep.design} with {n_cells} cell(s); "
        f"policies {', '.join(sweep.policies)}; severity {', '.join(sweep.severities)}; "
        f"{sweep.seeds} seed(s) per cell from root seed {sweep.root_seed}, shared by every "
        f"cell and policy.  {len(rows)} runs, {failed} failed.",
        "",
        f'Rows: `pandas.read_parquet("{out}")`.  Every metric with its 95 % t interval: '
        "`_summary.csv`.  Cells below: mean ± half-width of the 95 % interval over seeds.",
        "",
    ]
    shown = [(m, label) for m, label in REPORT_METRICS if m in set(summary["metric"])]
    head = [*cells, "policy", "severity", "runs", *[label for _, label in shown]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    keys = [*cells, "policy", "severity"]
    for values, g in summary.groupby(keys, sort=False, dropna=False):
        by = g.set_index("metric")
        cells_txt = [_fmt(v) for v in values]
        runs = int(g["runs"].iloc[0])
        fail = int(g["failed"].iloc[0])
        figures = []
        for m, _ in shown:
            r = by.loc[m]
            half = (r["high"] - r["low"]) / 2 if np.isfinite(r["high"]) else np.nan
            figures.append(_fmt(r["mean"]) + ("" if not np.isfinite(half) else f" ± {half:.2g}"))
        runs_txt = f"{runs}" + (f" ({fail} failed)" if fail else "")
        lines.append("| " + " | ".join([*cells_txt, runs_txt, *figures]) + " |")
    bad = rows[rows["status"] != "ok"] if len(rows) else rows
    if len(bad):
        lines += ["", "## Failed runs", ""]
        for _, r in bad.head(20).iterrows():
            lines.append(f"- `{r['key'][:12]}` {r['policy']} seed {r['seed']}: {r['error']}")
        if len(bad) > 20:
            lines.append(f"- … and {len(bad) - 20} more (column `traceback` has the details)")
    return "\n".join(lines) + "\n"


@dataclass
class SweepResult:
    """What :func:`run_sweep` produced: the rows, the summary and the files written."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    summary_path: Path
    report_path: Path


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_sweep(
    path: str | Path,
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    quiet: bool = False,
    retry_failed: bool = False,
) -> SweepResult:
    """Load a sweep file, run it into ``out`` (resuming), write ``_summary.csv``/``_report.md``.

    Raises:
        InputError: a bad sweep file, executor, workers or results folder (nothing runs).
        experiments.runs.runner.Interrupted: SIGINT/SIGTERM; rerun to resume.
    """
    sweep = load_sweep(path)
    parse_executor(executor)
    folder = Path(out)
    check_results_dir(folder)
    specs = sweep.specs()
    text = Path(path).read_text()
    try:
        rows = run_specs(
            specs,
            folder,
            executor=executor,
            workers=workers,
            quiet=quiet,
            retry_failed=retry_failed,
        )
    finally:
        if folder.is_dir():  # the sweep file beside its runs, interrupted or not
            _write_text(folder / "_sweep.toml", text)
    summary = summarize(rows)
    summary_path = folder / "_summary.csv"
    report_path = folder / "_report.md"
    _write_text(summary_path, summary.to_csv(index=False))
    _write_text(report_path, format_report(sweep, rows, summary, folder))
    return SweepResult(rows, summary, summary_path, report_path)
