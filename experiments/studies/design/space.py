"""The searched space: a point of the unit cube as a candidate rule, and a candidate as runs.

Coordinates, in order: the family (when there are several), every family's parameters (only
the chosen family's are read), the shared scenario values, the severity (when there are
several).  A mixed space on one cube is what NSGA-II's operators work on; choices and
integers take equal slices of their coordinate (:meth:`Dim.value`).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.game.scenario import Scenario, to_dict
from experiments.runs.runner import RunSpec
from experiments.studies.design.spec import DesignSpec, Dim, Family
from market.adl import policy_class, policy_label


@dataclass(frozen=True)
class Candidate:
    """One rule with its parameters and the scenario values searched with it.

    Attributes:
        policy: the rule family's policy name.
        params: its parameters (searched and fixed).
        shared: the shared scenario values (dotted name -> value).
        severity: the severity controller.
    """

    policy: str
    params: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)
    severity: str = "full"

    @property
    def rule(self) -> str:
        """The rule as one name, ``policy(param=value, ...)`` (what the audit plays)."""
        return policy_label(self.policy, self.params)

    @property
    def key(self) -> str:
        """A stable identity (canonical JSON)."""
        return json.dumps(
            [self.policy, self.params, self.shared, self.severity], sort_keys=True, default=str
        )

    @property
    def label(self) -> str:
        """The candidate in words: the rule, then the shared values and the severity."""
        extra = [f"{k}={v}" for k, v in sorted(self.shared.items())]
        if self.severity != "full":
            extra.append(f"severity={self.severity}")
        return self.rule + (f" with {', '.join(extra)}" if extra else "")

    def scenario(self, base: Scenario, behaviour: dict[str, Any] | None = None) -> dict:
        """The scenario (plain dicts) this candidate plays under ``behaviour``."""
        sc = base.replace(**self.shared, **(behaviour or {}))
        data = to_dict(sc)
        data["adl"] = {
            **data["adl"],
            "policy": self.policy,
            "params": dict(self.params),
            "severity": self.severity,
        }
        return data

    def specs(self, base: Scenario, pairs: list[tuple[int, dict]], tag: str) -> list[RunSpec]:
        """One run per (seed, behaviour) pair, labelled with the candidate and the pair (each
        behaviour's scenario built and validated once)."""
        built: dict[str, dict] = {}
        out = []
        for seed, behaviour in pairs:
            key = json.dumps(behaviour, sort_keys=True, default=str)
            if key not in built:
                built[key] = self.scenario(base, behaviour)
            out.append(
                RunSpec(
                    scenario=built[key],
                    policy=self.policy,
                    severity=self.severity,
                    seed=int(seed),
                    cell=dict(behaviour),
                    tags={"design": tag, "candidate": self.label},
                )
            )
        return out


def builtin(policy: str, severity: str = "full") -> Candidate:
    """A built-in rule at its default parameters, with the base scenario's values."""
    return Candidate(policy=policy, severity=severity)


class Space:
    """The unit cube of a :class:`DesignSpec` and its decoding into candidates."""

    def __init__(self, spec: DesignSpec) -> None:
        self.spec = spec
        self.families: tuple[Family, ...] = spec.families
        self.dims: list[tuple[str, Dim | None]] = []  # (role, dim); role: family | param | ...
        if len(self.families) > 1:
            self.dims.append(("family", None))
        for fam in self.families:
            self.dims += [(fam.policy, d) for d in fam.dims]
        self.dims += [("shared", d) for d in spec.shared]
        if len(spec.severities) > 1:
            self.dims.append(("severity", None))

    @property
    def n_var(self) -> int:
        """Coordinates of the cube (at least 1: a space with nothing to vary has one
        coordinate that changes nothing)."""
        return max(len(self.dims), 1)

    def decode(self, x: np.ndarray) -> Candidate:
        """The candidate at the point ``x`` of the unit cube."""
        x = np.clip(np.asarray(x, dtype=float).reshape(-1), 0.0, 1.0)
        fam = self.families[0]
        severity = self.spec.severities[0]
        for (role, _d), u in zip(self.dims, x.tolist(), strict=False):
            if role == "family":
                fam = self.families[min(int(u * len(self.families)), len(self.families) - 1)]
            if role == "severity":
                sev = self.spec.severities
                severity = sev[min(int(u * len(sev)), len(sev) - 1)]
        params = dict(fam.fixed)
        shared = {}
        for (role, d), u in zip(self.dims, x.tolist(), strict=False):
            if d is None:
                continue
            if role == fam.policy:
                params[d.name.split(".", 1)[1]] = d.value(u)
            elif role == "shared":
                shared[d.name] = d.value(u)
        return Candidate(fam.policy, params, shared, severity)

    def default(self, fam: Family) -> tuple[Candidate, bool]:
        """The family's rule at its default parameters with the scenario's values, each moved
        into its range (or onto a choice) when it lies outside; and whether nothing had to
        move (the built-in default is a point of the space)."""
        sig = inspect.signature(policy_class(fam.policy).__init__).parameters
        inside = all(sig[p].default == v for p, v in fam.fixed.items() if p in sig)
        params = dict(fam.fixed)
        for d in fam.dims:
            p = d.name.split(".", 1)[1]
            value, ok = _into(d, sig[p].default if p in sig else None)
            params[p] = value
            inside &= ok
        base = self.spec.scenario
        shared = {}
        for d in self.spec.shared:
            node: Any = to_dict(base)
            for part in d.name.split("."):
                node = node[part]
            shared[d.name], ok = _into(d, node)
            inside &= ok
        severity = (
            base.adl.severity
            if base.adl.severity in self.spec.severities
            else (self.spec.severities[0])
        )
        inside &= severity == base.adl.severity
        return Candidate(fam.policy, params, shared, severity), inside

    def encode(self, c: Candidate) -> np.ndarray:
        """A point of the cube that decodes to ``c`` (other families' coordinates at 0.5)."""
        x = np.full(self.n_var, 0.5)
        names = [f.policy for f in self.families]
        for i, (role, d) in enumerate(self.dims):
            if role == "family":
                x[i] = (names.index(c.policy) + 0.5) / len(names)
            elif role == "severity":
                sev = self.spec.severities
                x[i] = (sev.index(c.severity) + 0.5) / len(sev)
            elif d is not None and role == c.policy:
                x[i] = d.unit(c.params[d.name.split(".", 1)[1]])
            elif d is not None and role == "shared":
                x[i] = d.unit(c.shared[d.name])
        return x


def _into(d: Dim, value: Any) -> tuple[Any, bool]:
    """``value`` moved onto the variable (a choice or into the range), and whether it was
    already there."""
    if d.choices:
        return (value, True) if value in d.choices else (d.choices[0], False)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return d.value(0.5), False
    x = min(max(float(value), d.lo), d.hi)
    x = int(x) if d.integer else x
    return x, x == value


__all__ = ["Candidate", "Space", "builtin"]
