"""The designer's optimiser: NSGA-II over rule parameters with the traders in the loop.

What :func:`run_design` does, in order:

1. **Search.**  NSGA-II (``pymoo``) over the unit cube of :class:`~.space.Space`, driven
   ask-and-tell.  Every candidate plays the same search seeds (common random numbers), seed
   ``i`` under behaviour cell ``i mod C`` of the specification's behaviour families, as full
   games: the whales' leverage learning and the imitation between passive traders and
   flippers run inside every evaluation, so a candidate is scored after the traders have
   responded to it within the game.  Runs go through the sweep engine
   (:func:`experiments.runs.runner.run_specs`, local processes or Dask) into
   ``OUT/runs``: the optimiser's draws come from ``root_seed``, so a second call with the
   same specification asks for the same candidates and finds their runs done (resumable).
   Objectives are means over the seeds; constraints are met when the mean is inside.
2. **Front.**  The non-dominated feasible candidates of everything evaluated (feasible: every
   game-metric constraint holds on the mean).  Each objective has a 95 % interval of the mean
   (inside the metric's range) and a 95 % prediction interval for the mean of
   ``fresh_seeds x behaviour cells`` new runs (the interval a re-run should land in).
3. **Finalists**, up to ``finalists`` front members: the best on the primary objective, then
   the best on each other objective, then the front's middle.  Each gets
   * the **Stackelberg check**: the audit's best-response search
     (:func:`experiments.studies.audit.search.run_search`) against the rule with its
     parameters; its exploitability (held-out seeds, with interval) must meet an
     ``exploitability`` constraint, when there is one;
   * the **out-of-sample check**: the fresh seeds under every behaviour cell.  Confirmed when
     every game-metric constraint holds on the fresh mean overall and in every behaviour
     cell, and the primary objective's fresh mean lies in its prediction interval.
4. **Recommended**: the confirmed finalist best on the primary objective (none confirmed:
   the best finalist, marked unconfirmed).
5. **Built-ins**: every built-in rule that plays the game, at its default parameters and the
   scenario's values, on the same fresh seeds and cells; the recommended rule's paired
   difference on the primary objective against each that meets the game-metric
   constraints.  (The built-ins' exploitability is not searched: that constraint applies to
   designed rules only, said in the report.)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.metrics import confidence_interval, paired_difference, prediction_interval
from experiments.runs.results import metric_range
from experiments.runs.runner import run_specs
from experiments.studies.design.space import Candidate, Space, builtin
from experiments.studies.design.spec import EXPLOITABILITY, DesignSpec
from experiments.studies.experiment import game_policies
from experiments.studies.report import pareto_efficient
from market.errors import InputError

#: Seeds: the search plays ``1 .. seeds``; the out-of-sample checks start here.
FRESH_SEED0 = 10_001
#: An objective or constraint that could not be measured counts as this far off.
PENALTY = 1e12


@dataclass
class Score:
    """What a candidate's runs say: per metric, the values over its runs (NaN: undefined).

    Attributes:
        candidate: the candidate.
        values: metric -> values over the runs, in (seed, behaviour) order.
        pairs: the (seed, behaviour) of each run.
        failed: runs that ended in an error (or were never played: ``refused``).
        refused: why the game refused the candidate's scenario ("" when it played).
    """

    candidate: Candidate
    values: dict[str, np.ndarray]
    pairs: list[tuple[int, dict]]
    failed: int = 0
    refused: str = ""

    def mean(self, metric: str) -> float:
        """Mean over the runs where the metric is defined (NaN if none)."""
        v = self.values.get(metric, np.zeros(0))
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else math.nan

    def interval(self, metric: str) -> tuple[float, float, float, int]:
        """(mean, low, high, n): the 95 % interval of the mean, inside the metric's range."""
        iv = confidence_interval(self.values.get(metric, np.zeros(0)), bounds=metric_range(metric))
        return iv.mean, iv.low, iv.high, iv.n

    def prediction(self, metric: str, m: int) -> tuple[float, float]:
        """95 % prediction interval for the mean of ``m`` new runs, inside the metric's range
        (:func:`experiments.metrics.prediction_interval`)."""
        return prediction_interval(
            self.values.get(metric, np.zeros(0)), m, bounds=metric_range(metric)
        )

    def by_behaviour(self, metric: str) -> dict[str, float]:
        """The metric's mean per behaviour cell (label -> mean)."""
        out: dict[str, list[float]] = {}
        for (_, cell), x in zip(self.pairs, self.values.get(metric, []), strict=False):
            out.setdefault(cell_label(cell), []).append(float(x))
        return {
            k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in out.items()
        }


def cell_label(cell: dict[str, Any]) -> str:
    """A behaviour cell in words (``churn.family=power``; ``as specified`` when empty)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(cell.items())) or "as specified"


@dataclass
class Finalist:
    """A front member's checks.

    Attributes:
        candidate: the candidate; score its search score.
        fresh: its out-of-sample score (fresh seeds x every behaviour cell).
        audit: the best-response search's row for its rule (exploitability, interval, ...).
        confirmed: the out-of-sample check passed; reasons: why not (empty when confirmed).
        stackelberg: the exploitability constraint holds (None: no such constraint).
    """

    candidate: Candidate
    score: Score
    fresh: Score
    audit: dict[str, Any]
    confirmed: bool
    reasons: list[str]
    stackelberg: bool | None


@dataclass
class DesignResult:
    """Everything a design produced (see the module docstring); the report reads it.

    Attributes:
        spec: the specification played.
        scores: every evaluated candidate's search score, by key.
        front: the keys of the non-dominated feasible candidates.
        history: one row per (generation, candidate).
        finalists: the finalists and their checks.
        recommended: the recommended rule: the best confirmed finalist; failing that, the
            best built-in that meets every constraint (``recommended_kind`` "built-in"); failing
            that, the best finalist, unconfirmed (kind "unconfirmed"); None with no front.
        builtins: every built-in's out-of-sample score, by policy.
        versus: one row per built-in: its means, feasibility and the paired difference.
        seconds: wall time; runs: game runs played or found.
        quick: played with ``--quick``.
    """

    spec: DesignSpec
    scores: dict[str, Score]
    front: list[str]
    history: list[dict[str, Any]]
    finalists: list[Finalist]
    recommended: Finalist | None
    builtins: dict[str, Score]
    versus: list[dict[str, Any]]
    seconds: float = 0.0
    runs: int = 0
    quick: bool = False
    notes: list[str] = field(default_factory=list)
    recommended_kind: str = "designed"


# --------------------------------------------------------------------------- scoring
def search_pairs(spec: DesignSpec) -> list[tuple[int, dict]]:
    """The search's (seed, behaviour cell) pairs: seed ``i`` under cell ``i mod C``."""
    cells = spec.behaviour_cells()
    return [(1 + i, cells[i % len(cells)]) for i in range(spec.seeds)]


def fresh_pairs(spec: DesignSpec) -> list[tuple[int, dict]]:
    """The out-of-sample pairs: every fresh seed under every behaviour cell."""
    cells = spec.behaviour_cells()
    return [(FRESH_SEED0 + i, c) for i in range(spec.fresh_seeds) for c in cells]


def metrics_of(spec: DesignSpec) -> list[str]:
    """The game metrics a design reads: objectives, then constraints (no exploitability)."""
    names = [m for m, _ in spec.objectives]
    names += [c.metric for c in spec.constraints if c.metric != EXPLOITABILITY]
    return list(dict.fromkeys(names))


def score_runs(
    spec: DesignSpec,
    candidates: list[Candidate],
    pairs: list[tuple[int, dict]],
    out: Path,
    tag: str,
    executor: str,
    workers: int | None,
) -> dict[str, Score]:
    """Play every candidate on ``pairs`` (one sweep-engine call) and score each.  A candidate
    whose scenario the game refuses (a combination of values failing a cross-check) scores
    as failed on every pair, with its reason in ``refused``."""
    per: dict[str, list] = {}
    refused: dict[str, str] = {}
    for c in candidates:
        try:
            per[c.key] = c.specs(spec.scenario, pairs, tag)
        except InputError as exc:
            per[c.key], refused[c.key] = [], str(exc)
    every = [s for specs in per.values() for s in specs]
    rows = run_specs(every, out / "runs", executor=executor, workers=workers, quiet=True)
    by_key = {r["key"]: r for r in rows.to_dict("records")}
    names = metrics_of(spec)
    scores = {}
    for c in candidates:
        if c.key in refused:
            nan = {m: np.full(len(pairs), math.nan) for m in names}
            scores[c.key] = Score(c, nan, list(pairs), failed=len(pairs), refused=refused[c.key])
            continue
        got = [by_key[s.key] for s in per[c.key]]
        ok = [r.get("status") == "ok" for r in got]
        values = {
            m: np.array(
                [
                    float(r.get(m, math.nan)) if good else math.nan
                    for r, good in zip(got, ok, strict=True)
                ]
            )
            for m in names
        }
        scores[c.key] = Score(c, values, list(pairs), failed=ok.count(False))
    return scores


def objectives_and_constraints(spec: DesignSpec, s: Score) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II's F (to minimise) and G (<= 0 feasible) of a score."""
    f = []
    for m, sense in spec.objectives:
        x = s.mean(m)
        f.append(PENALTY if not math.isfinite(x) else (x if sense == "min" else -x))
    g = []
    for c in spec.constraints:
        if c.metric == EXPLOITABILITY:
            continue
        x = s.mean(c.metric)
        g.append(
            PENALTY if not math.isfinite(x) else (x - c.bound if c.op == "<=" else c.bound - x)
        )
    if s.failed:
        f = [PENALTY] * len(f)
        g = [PENALTY] * max(len(g), 1)
    return np.array(f, dtype=float), np.array(g if g else [0.0], dtype=float)


def feasible(spec: DesignSpec, s: Score) -> bool:
    """Every game-metric constraint holds on the mean (and no run failed)."""
    return bool((objectives_and_constraints(spec, s)[1] <= 0).all())


# --------------------------------------------------------------------------- the run
def _check_out(out: Path, spec: DesignSpec, quick: bool) -> None:
    """A new folder, or one holding the same design (then it resumes)."""
    saved = out / "design.json"
    mine = {"spec": spec.as_dict(), "quick": quick}
    if saved.exists():
        if json.loads(saved.read_text()) != json.loads(json.dumps(mine, default=str)):
            raise InputError("--out", "a new folder or one holding the same design", str(out))
        return
    if out.exists() and any(out.iterdir()):
        raise InputError("--out", "a new or empty folder (or a design's own folder)", str(out))
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(mine, indent=2, default=str))


def _search(
    spec: DesignSpec,
    space: Space,
    out: Path,
    executor: str,
    workers: int | None,
    say: Callable[[str], None],
) -> tuple[dict[str, Score], list[dict[str, Any]]]:
    """NSGA-II ask-and-tell over the generations; every score and the history."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem

    n_con = max(sum(c.metric != EXPLOITABILITY for c in spec.constraints), 1)
    problem = Problem(
        n_var=space.n_var, n_obj=len(spec.objectives), n_ieq_constr=n_con, xl=0.0, xu=1.0
    )
    # the first generation: every family at its default parameters (warm start: a built-in
    # inside the space is a candidate from the start), the rest uniform from root_seed
    warm = np.array([space.encode(space.default(f)[0]) for f in space.families])
    rest = np.random.default_rng(spec.root_seed).random((spec.population, space.n_var))
    start = np.vstack([warm, rest])[: spec.population]
    algorithm = NSGA2(pop_size=spec.population, sampling=start, eliminate_duplicates=True)
    algorithm.setup(
        problem, termination=("n_gen", spec.generations), seed=spec.root_seed, verbose=False
    )
    pairs = search_pairs(spec)
    scores: dict[str, Score] = {}
    history: list[dict[str, Any]] = []
    for gen in range(spec.generations):
        pop = algorithm.ask()
        cands = [space.decode(x) for x in pop.get("X")]
        new = list({c.key: c for c in cands if c.key not in scores}.values())
        if new:
            scores.update(score_runs(spec, new, pairs, out, "search", executor, workers))
        fg = [objectives_and_constraints(spec, scores[c.key]) for c in cands]
        pop.set("F", np.array([f for f, _ in fg]))
        pop.set("G", np.array([g for _, g in fg]))
        algorithm.tell(infills=pop)
        for c, (_f, g) in zip(cands, fg, strict=True):
            row = {"generation": gen, "candidate": c.label, "feasible": bool((g <= 0).all())}
            for m, _ in spec.objectives:
                row[m] = scores[c.key].mean(m)
            history.append(row)
        best = min(
            (
                sc.mean(spec.primary[0]) * (1 if spec.primary[1] == "min" else -1)
                for sc in scores.values()
                if feasible(spec, sc)
            ),
            default=math.nan,
        )
        say(
            f"generation {gen + 1}/{spec.generations}: {len(scores)} candidates evaluated, "
            f"best feasible so far {spec.primary[0]} "
            f"{best if spec.primary[1] == 'min' else -best:.4g}"
        )
    return scores, history


def _front(spec: DesignSpec, scores: dict[str, Score]) -> list[str]:
    """The non-dominated feasible candidates, best primary objective first."""
    fg = {k: objectives_and_constraints(spec, s) for k, s in scores.items()}
    keys = [k for k, (_, g) in fg.items() if (g <= 0).all()]
    if not keys:
        return []
    points = np.array([fg[k][0] for k in keys])
    idx = np.flatnonzero(pareto_efficient(points, [False] * points.shape[1], rtol=0.0))
    return sorted((keys[i] for i in idx.tolist()), key=lambda k: fg[k][0].tolist())


def _pick_finalists(spec: DesignSpec, scores: dict[str, Score], front: list[str]) -> list[str]:
    """Best on the primary, then best on each other objective, then the front's middle."""
    f = {k: objectives_and_constraints(spec, scores[k])[0] for k in front}
    picks: list[str] = []
    for j in range(len(spec.objectives) if front else 0):
        k = min(front, key=lambda k: f[k][j])
        if k not in picks:
            picks.append(k)
    rest = [k for k in front if k not in picks]
    while rest and len(picks) < spec.finalists:
        picks.append(rest.pop(len(rest) // 2))
    return picks[: spec.finalists]


def _audit(
    spec: DesignSpec, rules: list[str], executor: str, workers: int | None
) -> dict[str, dict[str, Any]]:
    """The best-response search against each rule (with its parameters)."""
    from experiments.studies.audit.search import SearchConfig, run_search
    from experiments.studies.audit.world import AuditConfig

    if not rules:
        return {}
    a = spec.audit
    res = run_search(
        AuditConfig(accounts=int(a["accounts"])),
        SearchConfig(budget=int(a["budget"]), seeds=int(a["seeds"]), holdout=int(a["holdout"])),
        rules,
        executor=executor,
        workers=workers,
    )
    return {row["policy"]: row for row in res.rows()}


def _confirm(spec: DesignSpec, s: Score, fresh: Score) -> list[str]:
    """Why the out-of-sample check fails (empty: confirmed)."""
    why = []
    for c in spec.constraints:
        if c.metric == EXPLOITABILITY:
            continue
        x = fresh.mean(c.metric)
        if c.violation(x) > 0:
            why.append(f"{c.text()} fails on fresh seeds (mean {x:.4g})")
        for cell, v in fresh.by_behaviour(c.metric).items():
            if c.violation(v) > 0:
                why.append(f"{c.text()} fails under {cell} ({v:.4g})")
    m = spec.primary[0]
    lo, hi = s.prediction(m, len(fresh.pairs))
    x = fresh.mean(m)
    if not (math.isfinite(x) and lo <= x <= hi):
        why.append(
            f"{m} on fresh seeds {x:.4g} outside its prediction interval [{lo:.4g}, {hi:.4g}]"
        )
    return why


def _versus(
    spec: DesignSpec, rec: Finalist | None, builtins: dict[str, Score]
) -> list[dict[str, Any]]:
    """One row per built-in: fresh means, feasibility, the recommended rule's paired
    difference on the primary objective (better > 0 whatever the sense)."""
    m, sense = spec.primary
    rows = []
    for name, b in builtins.items():
        row: dict[str, Any] = {"policy": name, "feasible": feasible(spec, b)}
        for metric in metrics_of(spec):
            row[metric] = b.mean(metric)
        if rec is not None:
            a, other = rec.fresh.values[m], b.values[m]
            d = paired_difference(other, a) if sense == "min" else paired_difference(a, other)
            row.update(
                improvement=d.mean, improvement_low=d.low, improvement_high=d.high, pairs=d.n
            )
        rows.append(row)
    return rows


def _best_builtin(
    spec: DesignSpec,
    builtins: dict[str, Score],
    ex_con: list,
    executor: str,
    workers: int | None,
    tries: int = 3,
) -> Finalist | None:
    """The built-in best on the primary objective (fresh seeds) among those meeting the
    game-metric constraints and, when there is one, the exploitability constraint (searched
    for at most ``tries`` of them, best first); None when none does."""
    m, sense = spec.primary
    sign = 1.0 if sense == "min" else -1.0
    ok = [s for s in builtins.values() if feasible(spec, s) and math.isfinite(s.mean(m))]
    for s in sorted(ok, key=lambda s: sign * s.mean(m))[:tries]:
        audit = _audit(spec, [s.candidate.rule], executor, workers).get(s.candidate.rule, {})
        hi = float(audit.get("ci_high", math.nan))
        stack = all(k.violation(hi) == 0 for k in ex_con) if ex_con else None
        if stack is not False:
            return Finalist(s.candidate, s, s, audit, True, [], stack)
    return None


def run_design(
    spec: DesignSpec,
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DesignResult:
    """Search, check and recommend (see the module docstring); resumable in ``out``.

    Raises:
        InputError: a folder holding another design, a bad executor or worker count.
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    if quick:
        spec = spec.quick()
    out = Path(out)
    _check_out(out, spec, quick)
    space = Space(spec)
    scores, history = _search(spec, space, out, executor, workers, say)
    front = _front(spec, scores)
    picks = _pick_finalists(spec, scores, front)
    notes = []
    if len(spec.behaviour_cells()) > spec.seeds:
        notes.append(
            f"{len(spec.behaviour_cells())} behaviour cells but {spec.seeds} search "
            "seeds: some cells are seen only in the out-of-sample check"
        )
    say(f"front: {len(front)} candidates; checking {len(picks)} finalists")
    cands = [scores[k].candidate for k in picks]
    base_cands = [builtin(p, spec.scenario.adl.severity) for p in game_policies()]
    fresh_all = score_runs(
        spec, cands + base_cands, fresh_pairs(spec), out, "fresh", executor, workers
    )
    audits = _audit(spec, [c.rule for c in cands], executor, workers)
    ex_con = [c for c in spec.constraints if c.metric == EXPLOITABILITY]
    finalists = []
    for c in cands:
        a = audits.get(c.rule, {})
        why = _confirm(spec, scores[c.key], fresh_all[c.key])
        stack = None
        if ex_con:
            hi = float(a.get("ci_high", math.nan))
            stack = all(k.violation(hi) == 0 for k in ex_con)
            if not stack:
                why.append(
                    f"exploitability {float(a.get('exploitability', math.nan)):.3g} with its "
                    f"interval reaching {hi:.3g}: "
                    + "; ".join(k.text() for k in ex_con)
                    + " is not established"
                )
        finalists.append(Finalist(c, scores[c.key], fresh_all[c.key], a, not why, why, stack))
    m, sense = spec.primary
    sign = 1.0 if sense == "min" else -1.0
    ranked = sorted(
        finalists,
        key=lambda f: sign * f.fresh.mean(m) if math.isfinite(f.fresh.mean(m)) else math.inf,
    )
    confirmed = [f for f in ranked if f.confirmed]
    builtins = {b.policy: fresh_all[b.key] for b in base_cands}
    kind = "designed"
    rec = confirmed[0] if confirmed else None
    if rec is None:  # no designed rule holds up: the best built-in that does, if any
        rec = _best_builtin(spec, builtins, ex_con, executor, workers)
        kind = "built-in" if rec is not None else "unconfirmed"
    if rec is None and ranked:
        rec = ranked[0]
    versus = _versus(spec, rec, builtins)
    inside = {f.policy for f in space.families if space.default(f)[1]}
    for row in versus:  # the built-in's default point was a first-generation candidate
        row["in_space"] = row["policy"] in inside
    runs = len(scores) * spec.seeds + len(fresh_all) * len(fresh_pairs(spec))
    return DesignResult(
        spec,
        scores,
        front,
        history,
        finalists,
        rec,
        builtins,
        versus,
        seconds=time.perf_counter() - t0,
        runs=runs,
        quick=quick,
        notes=notes,
        recommended_kind=kind,
    )


def history_frame(result: DesignResult) -> pd.DataFrame:
    """The search's history: one row per (generation, candidate asked)."""
    return pd.DataFrame(result.history)


__all__ = [
    "FRESH_SEED0",
    "DesignResult",
    "Finalist",
    "Score",
    "cell_label",
    "fresh_pairs",
    "history_frame",
    "run_design",
    "search_pairs",
]
