"""The design specification: what ``adlgame design SPEC.toml`` searches, for what, under what.

A specification is a TOML file (``adlgame design --example`` prints a complete one)::

    name = "fair-and-solvent"
    scenario = "default"         # a built-in name or a TOML path (relative to this file)
    seeds = 3                    # search seeds: every candidate plays the same ones
    fresh_seeds = 4              # out-of-sample seeds for the finalists and the built-ins
    root_seed = 1                # the optimiser's draws
    population = 16              # NSGA-II population per generation
    generations = 8
    finalists = 3                # front members re-checked out of sample and against traders

    [overrides]                  # fixed scenario values, by dotted name
    "run.traders" = 2000

    [[families]]                 # a rule family and the ranges of its parameters
    policy = "capped_pro_rata"
    params = { max_fraction = [0.05, 1.0] }

    [shared]                     # scenario values searched for every family
    "backstop.fee_share" = [0.0, 0.5]

    [objectives]                 # metric = "min" | "max"; the first is the primary
    max_haircut_base_frac = "min"
    retention = "max"

    [constraints]                # metric = "<= x" | ">= x" on the mean over seeds
    residual_bad_debt = "<= 1000"
    exploitability = "<= 0.05"   # measured on the finalists by the best-response search

    [behaviours]                 # behaviour families to be robust across
    "churn.family" = ["exponential", "power", "logistic"]

    [audit]                      # the best-response search of the Stackelberg check
    budget = 24
    seeds = 2
    holdout = 4
    accounts = 1000

A range is written ``[low, high]`` (integers when both ends are integers); a list of strings
or booleans, or ``{ choices = [...] }``, is a set of choices; a single value is fixed.
Objectives and constraints name the run metrics of :func:`experiments.runs.results.
run_metric_names` (``exploitability`` only as a constraint: it is measured on the finalists,
not on every candidate, see :mod:`experiments.studies.design.search`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from experiments.game.scenario import Scenario, to_dict
from experiments.runs.results import run_metric_names
from experiments.runs.sweep import check_int, check_names, resolve_scenario
from market.adl import SEVERITIES, get_policy, policy_class
from market.errors import InputError, require

#: The keys a design file may hold.
SPEC_KEYS = (
    "name",
    "scenario",
    "seeds",
    "fresh_seeds",
    "root_seed",
    "population",
    "generations",
    "finalists",
    "severities",
    "overrides",
    "families",
    "shared",
    "objectives",
    "constraints",
    "behaviours",
    "audit",
)
#: The keys of the ``[audit]`` table, with their defaults.
AUDIT_DEFAULTS = {"budget": 24, "seeds": 2, "holdout": 4, "accounts": 1000}
#: The metric measured on the finalists only (the best-response search's gain).
EXPLOITABILITY = "exploitability"
#: The limits ``--quick`` puts on a specification (smaller worlds, fewer evaluations).
QUICK_LIMITS = {
    "run.traders": 400,
    "population": 12,
    "generations": 4,
    "seeds": 3,
    "fresh_seeds": 3,
    "finalists": 3,
    "audit.budget": 12,
    "audit.seeds": 2,
    "audit.holdout": 3,
    "audit.accounts": 600,
}

_CONSTRAINT = re.compile(r"^\s*(<=|>=)\s*([-+0-9.eE]+|inf|-inf)\s*$")


@dataclass(frozen=True)
class Dim:
    """One searched variable: a range ``[lo, hi]`` (``integer``: whole numbers) or choices.

    Attributes:
        name: the dotted name (``capped_pro_rata.max_fraction``, ``backstop.fee_share``).
        lo, hi: the range (NaN for choices).
        integer: a range of whole numbers.
        choices: the values to choose from (empty for a range).
    """

    name: str
    lo: float = math.nan
    hi: float = math.nan
    integer: bool = False
    choices: tuple = ()

    def value(self, u: float) -> Any:
        """The value at ``u`` in [0, 1]: choices and integers in equal slices, a range
        linearly, rounded to 4 significant digits (nearby points are one candidate)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.choices:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.integer:
            return int(min(math.floor(self.lo + u * (self.hi - self.lo + 1)), self.hi))
        x = self.lo + u * (self.hi - self.lo)
        return float(f"{x:.4g}")

    def unit(self, value: Any) -> float:
        """A point of [0, 1] that :meth:`value` maps to ``value`` (the middle of its slice)."""
        if self.choices:
            return (self.choices.index(value) + 0.5) / len(self.choices)
        if self.integer:
            return (int(value) - self.lo + 0.5) / (self.hi - self.lo + 1)
        return 0.0 if self.hi == self.lo else (float(value) - self.lo) / (self.hi - self.lo)

    def describe(self) -> str:
        """The variable's range in words."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = "integers" if self.integer else "range"
        return f"{kind} [{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class Family:
    """A rule family: a policy and its searched (``dims``) and fixed (``fixed``) parameters."""

    policy: str
    dims: tuple[Dim, ...] = ()
    fixed: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Constraint:
    """``metric <op> bound`` on a candidate's mean over seeds (``op``: ``<=`` or ``>=``)."""

    metric: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` is outside (0 inside; NaN counts as infinitely far)."""
        if not math.isfinite(value):
            return math.inf
        gap = value - self.bound if self.op == "<=" else self.bound - value
        return max(gap, 0.0)

    def text(self) -> str:
        """The constraint as written."""
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class DesignSpec:
    """A parsed, validated design specification (see the module docstring).

    Attributes:
        name: the design's name (default: the file's stem).
        scenario: the base scenario, with ``overrides`` applied.
        overrides: the fixed scenario values (dotted name -> value).
        families: the rule families.
        shared: scenario values searched for every family.
        severities: severity controllers (more than one: a searched choice).
        objectives: (metric, "min" | "max"), the first the primary.
        constraints: the constraints.
        behaviours: behaviour families to be robust across (dotted name -> values).
        seeds, fresh_seeds, root_seed, population, generations, finalists: see above.
        audit: the best-response search's settings (:data:`AUDIT_DEFAULTS` keys).
        source: the file it came from (None for a dict).
    """

    name: str
    scenario: Scenario
    overrides: dict
    families: tuple[Family, ...]
    shared: tuple[Dim, ...]
    severities: tuple[str, ...]
    objectives: tuple[tuple[str, str], ...]
    constraints: tuple[Constraint, ...]
    behaviours: dict
    seeds: int = 3
    fresh_seeds: int = 4
    root_seed: int = 1
    population: int = 16
    generations: int = 8
    finalists: int = 3
    audit: dict = field(default_factory=lambda: dict(AUDIT_DEFAULTS))
    source: str | None = None

    @property
    def primary(self) -> tuple[str, str]:
        """The primary objective (metric, sense): it picks the recommended rule."""
        return self.objectives[0]

    def behaviour_cells(self) -> list[dict[str, Any]]:
        """Every combination of the behaviour families (one empty cell when none)."""
        cells: list[dict[str, Any]] = [{}]
        for name, values in self.behaviours.items():
            cells = [{**c, name: v} for c in cells for v in values]
        return cells

    def quick(self) -> DesignSpec:
        """The specification within :data:`QUICK_LIMITS` (a smaller, faster search)."""
        q = QUICK_LIMITS
        traders = min(self.scenario.run.traders, q["run.traders"])
        overrides = {**self.overrides, "run.traders": traders}
        audit = {k: min(v, q[f"audit.{k}"]) for k, v in self.audit.items()}
        return dataclasses.replace(
            self,
            scenario=self.scenario.replace(**{"run.traders": traders}),
            overrides=overrides,
            population=min(self.population, q["population"]),
            generations=min(self.generations, q["generations"]),
            seeds=min(self.seeds, q["seeds"]),
            fresh_seeds=min(self.fresh_seeds, q["fresh_seeds"]),
            finalists=min(self.finalists, q["finalists"]),
            audit=audit,
        )

    def as_dict(self) -> dict[str, Any]:
        """The specification as plain data (written beside the results; a resumed design
        must have the same)."""
        return {
            "name": self.name,
            "scenario": to_dict(self.scenario),
            "overrides": self.overrides,
            "families": [
                {
                    "policy": f.policy,
                    "dims": [dataclasses.asdict(d) for d in f.dims],
                    "fixed": f.fixed,
                }
                for f in self.families
            ],
            "shared": [dataclasses.asdict(d) for d in self.shared],
            "severities": list(self.severities),
            "objectives": [list(o) for o in self.objectives],
            "constraints": [c.text() for c in self.constraints],
            "behaviours": self.behaviours,
            "seeds": self.seeds,
            "fresh_seeds": self.fresh_seeds,
            "root_seed": self.root_seed,
            "population": self.population,
            "generations": self.generations,
            "finalists": self.finalists,
            "audit": self.audit,
        }


# --------------------------------------------------------------------------- parsing
def _dim(name: str, raw: Any, where: str) -> Dim | Any:
    """A variable from its TOML value, or the value itself when it is fixed."""
    allowed = "[low, high], a list of strings or booleans, { choices = [...] } or one value"
    if isinstance(raw, dict):
        require(set(raw) == {"choices"}, where, allowed, raw)
        raw = raw["choices"]
        require(isinstance(raw, list) and len(raw) >= 1, where, "a non-empty choices list", raw)
        return Dim(name, choices=tuple(raw)) if len(raw) > 1 else raw[0]
    if not isinstance(raw, list):
        return raw
    require(len(raw) >= 1, where, allowed, raw)
    if all(isinstance(v, str | bool) for v in raw):
        return Dim(name, choices=tuple(raw)) if len(raw) > 1 else raw[0]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    require(numbers and len(raw) == 2, where, allowed, raw)
    lo, hi = raw
    require(math.isfinite(lo) and math.isfinite(hi) and lo <= hi, where, "low <= high", raw)
    integer = isinstance(lo, int) and isinstance(hi, int)
    return Dim(name, lo=float(lo), hi=float(hi), integer=integer)


def _metric(name: str, where: str, finalist_only_ok: bool) -> str:
    known = run_metric_names()
    if name == EXPLOITABILITY:
        require(
            finalist_only_ok,
            where,
            "a run metric (exploitability is measured on the finalists only, so it can be a "
            "constraint, not an objective)",
            name,
        )
        return name
    require(name in known, where, f"a run metric ({', '.join(known)})", name)
    return name


def _families(raw: Any) -> tuple[Family, ...]:
    require(isinstance(raw, list) and raw, "design.families", "one or more [[families]]", raw)
    out = []
    for i, fam in enumerate(raw):
        where = f"design.families[{i}]"
        require(isinstance(fam, dict), where, "a table with policy and params", fam)
        bad = sorted(set(fam) - {"policy", "params"})
        require(not bad, f"{where}.{bad[0] if bad else ''}", "policy or params", bad)
        name = fam.get("policy")
        require(isinstance(name, str), f"{where}.policy", "a policy name", name)
        try:
            cls = policy_class(name)
        except InputError as exc:
            raise InputError(f"{where}.policy", exc.allowed, name) from None
        require(
            not cls.exact_small_only,
            f"{where}.policy",
            "a rule that plays the game (not an exact-small-only rule)",
            name,
        )
        params = fam.get("params", {})
        require(isinstance(params, dict), f"{where}.params", "a table", params)
        valid = cls._param_names()
        dims, fixed = [], {}
        for p, v in params.items():
            require(p in valid, f"{where}.params.{p}", f"one of {', '.join(valid) or '(none)'}", p)
            d = _dim(f"{name}.{p}", v, f"{where}.params.{p}")
            if isinstance(d, Dim):
                dims.append(d)
            else:
                fixed[p] = d
        for probe in _corners(dims):  # the family's corners must build
            try:
                get_policy(name, **fixed, **probe)
            except (InputError, TypeError, ValueError) as exc:
                raise InputError(f"{where}.params", "values the policy accepts", str(exc)) from None
        out.append(Family(name, tuple(dims), fixed))
    names = [f.policy for f in out]
    require(len(set(names)) == len(names), "design.families", "each policy once", names)
    return tuple(out)


def _corners(dims: list[Dim] | tuple[Dim, ...]) -> list[dict[str, Any]]:
    """The lowest and highest point of every variable (and every choice), for validation."""
    probes = [{}]
    for d in dims:
        short = d.name.split(".", 1)[-1]
        values = d.choices if d.choices else (d.value(0.0), d.value(1.0))
        probes = [{**p, short: v} for p in probes for v in values][:64]
    return probes


def design_from_dict(data: dict, base_dir: Path | None = None, name: str = "design") -> DesignSpec:
    """Validate a specification given as plain data (what a design TOML file holds).

    Raises:
        InputError: naming the first bad key and what it allows.
    """
    require(isinstance(data, dict), "design", "a table", type(data).__name__)
    bad = sorted(set(data) - set(SPEC_KEYS))
    require(
        not bad,
        f"design.{bad[0] if bad else ''}",
        f"a known key ({', '.join(SPEC_KEYS)})",
        bad[0] if bad else None,
    )
    base = resolve_scenario(data.get("scenario", "default"), base_dir, "design")
    overrides = data.get("overrides", {})
    require(isinstance(overrides, dict), "design.overrides", "a table of dotted names", overrides)
    try:
        scenario = base.replace(**overrides) if overrides else base
    except InputError as exc:
        raise InputError(f"design.overrides ({exc.field})", exc.allowed, exc.got) from None
    families = _families(data.get("families"))
    shared_raw = data.get("shared", {})
    require(isinstance(shared_raw, dict), "design.shared", "a table of dotted names", shared_raw)
    shared = []
    for key, raw in shared_raw.items():
        require(
            not key.startswith("adl.policy") and key not in ("adl.params", "adl.severity"),
            f"design.shared.{key}",
            "a scenario value other than the rule (families and severities choose it)",
            key,
        )
        d = _dim(key, raw, f"design.shared.{key}")
        require(
            isinstance(d, Dim),
            f"design.shared.{key}",
            "a range or choices (fixed values go in [overrides])",
            raw,
        )
        for probe in _corners([d]):
            try:
                scenario.replace(**{key: probe[key.split(".", 1)[-1]]})
            except InputError as exc:
                raise InputError(f"design.shared.{key}", exc.allowed, exc.got) from None
        shared.append(d)
    sev = check_names(data, "severities", SEVERITIES, scenario.adl.severity, "design")
    objectives_raw = data.get("objectives", {})
    require(
        isinstance(objectives_raw, dict) and objectives_raw,
        "design.objectives",
        'one or more metric = "min" | "max"',
        objectives_raw,
    )
    objectives = []
    for m, sense in objectives_raw.items():
        _metric(m, f"design.objectives.{m}", finalist_only_ok=False)
        require(sense in ("min", "max"), f"design.objectives.{m}", '"min" or "max"', sense)
        objectives.append((m, sense))
    cons_raw = data.get("constraints", {})
    require(
        isinstance(cons_raw, dict), "design.constraints", 'a table of metric = "<= x"', cons_raw
    )
    constraints = []
    for m, text in cons_raw.items():
        _metric(m, f"design.constraints.{m}", finalist_only_ok=True)
        hit = _CONSTRAINT.match(str(text)) if isinstance(text, str) else None
        require(hit is not None, f"design.constraints.{m}", '"<= number" or ">= number"', text)
        constraints.append(Constraint(m, hit.group(1), float(hit.group(2))))
    behaviours = data.get("behaviours", {})
    require(
        isinstance(behaviours, dict), "design.behaviours", "a table of dotted names", behaviours
    )
    for key, values in behaviours.items():
        require(
            isinstance(values, list) and values,
            f"design.behaviours.{key}",
            "a non-empty list of values",
            values,
        )
        for v in values:
            try:
                scenario.replace(**{key: v})
            except InputError as exc:
                raise InputError(f"design.behaviours.{key}", exc.allowed, exc.got) from None
    audit = dict(AUDIT_DEFAULTS)
    audit_raw = data.get("audit", {})
    require(isinstance(audit_raw, dict), "design.audit", "a table", audit_raw)
    for k in audit_raw:
        require(k in AUDIT_DEFAULTS, f"design.audit.{k}", f"one of {', '.join(AUDIT_DEFAULTS)}", k)
        audit[k] = check_int(audit_raw, k, 0, 100 if k == "accounts" else 1, "design.audit")
    spec = DesignSpec(
        name=str(data.get("name", name)),
        scenario=scenario,
        overrides=dict(overrides),
        families=families,
        shared=tuple(shared),
        severities=sev,
        objectives=tuple(objectives),
        constraints=tuple(constraints),
        behaviours={k: list(v) for k, v in behaviours.items()},
        seeds=check_int(data, "seeds", 3, 2, "design"),
        fresh_seeds=check_int(data, "fresh_seeds", 4, 2, "design"),
        root_seed=check_int(data, "root_seed", 1, 0, "design"),
        population=check_int(data, "population", 16, 4, "design"),
        generations=check_int(data, "generations", 8, 1, "design"),
        finalists=check_int(data, "finalists", 3, 1, "design"),
        audit=audit,
    )
    return spec


def load_design(path: str | Path) -> DesignSpec:
    """Read and validate a design TOML file (see the module docstring).

    Raises:
        InputError: a missing file, bad TOML, or the first bad key.
    """
    p = Path(path)
    require(p.is_file(), "design", "an existing TOML file", str(path))
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError("design", "valid TOML", str(exc).splitlines()[0]) from None
    spec = design_from_dict(data, p.parent, p.stem)
    return dataclasses.replace(spec, source=str(p))


def example_text() -> str:
    """The README's example specification (``adlgame design --example``)."""
    return (resources.files("experiments.studies.design") / "example.toml").read_text()


def example_path() -> Path:
    """Where the packaged example specification is."""
    return Path(str(resources.files("experiments.studies.design") / "example.toml"))


__all__ = [
    "AUDIT_DEFAULTS",
    "EXPLOITABILITY",
    "QUICK_LIMITS",
    "Constraint",
    "DesignSpec",
    "Dim",
    "Family",
    "design_from_dict",
    "example_path",
    "example_text",
    "load_design",
]
