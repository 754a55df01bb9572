"""Conformance checker for ADL policies, in the spirit of Gymnasium's ``check_env``.

:func:`check_adl_policy` runs a policy over generated snapshots and budgets (hypothesis, fully
deterministic: ``derandomize=True``, no example database) plus a few fixed edge cases and one
large snapshot, and verifies the interface contract and every property the policy claims.

Checks (each reported pass / fail / skip with a counter-example):

* ``interface``: known property claims, valid ``price_rule`` / ``sides``, ``get_params`` and
  ``clone`` round-trip.
* ``runs``: every call returns an :class:`~market.adl.base.Allocation` of the right shape.
* ``bounds``: ``0 <= haircut <= capacity`` and the same for the wealth-space vector.
* ``budget``: the allocation raises ``min(B, C)`` where ``C`` is what the lot grid allows
  (``capacity`` itself for ``price_rule="none"``), and ``residual == B - sum(haircut)``.
  A policy that holds money back on purpose (a fairness cap ``h_i <= alpha * c_i``) exposes
  its own per-row caps as a method ``caps(snap)``, or ``wave_caps(snap, B)`` when they depend
  on the wave (dYdX skips accounts an offset would bankrupt); ``C`` is then computed within
  those caps and ``bounds`` also checks ``haircut`` against them.
* ``overshoot``: ``sum(haircut) < B + max lot value touched`` (``<= B`` without lots) and the
  reported overshoot equals ``sum(haircut) - B``.
* ``lots``: integer, ``0 <= lots <= snapshot lots``, ``haircut == lots * lot_value``.
* ``layers``: ``from_gains + from_principal == haircut``, ``from_gains <= gains layer``.
* ``principal_protect`` (if claimed): no principal in wealth space while the gains layer on
  the lot grid could cover the budget.
* ``deterministic``: two calls give identical arrays.
* ``no_mutation``: the snapshot is unchanged and still read-only (a write attempt that raises
  counts as a failure here, not as a crash).
* ``params_unchanged``: ``get_params()`` is the same before and after.
* ``relabeling``, ``sybil``, ``scale``, ``monotone`` (if claimed): see
  :data:`market.adl.base.KNOWN_PROPERTIES`; compared in wealth space (``Allocation.wealth``),
  relative tolerance 1e-7 (plus ``1e-9 * max(B, max c)`` absolute).
* ``large_n``: bounds, budget, overshoot and lots once on a ``large_n``-row snapshot.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from market.adl.base import (
    KNOWN_PROPERTIES,
    PRICE_RULES,
    SIDE_RULES,
    SNAPSHOT_ARRAYS,
    ADLPolicy,
    Allocation,
    Snapshot,
)
from market.adl.strategies import budgets, large_snapshot, lot_grid_capacity, snapshots
from market.errors import InputError, require

__all__ = [
    "CHECKS",
    "CheckResult",
    "PolicyCheckError",
    "PolicyCheckReport",
    "check_adl_policy",
]

#: The checks, in report order.
CHECKS = (
    "interface",
    "runs",
    "bounds",
    "budget",
    "overshoot",
    "lots",
    "layers",
    "principal_protect",
    "deterministic",
    "no_mutation",
    "params_unchanged",
    "relabeling",
    "sybil",
    "scale",
    "monotone",
    "large_n",
)

_PROPERTY_CHECKS = ("principal_protect", "relabeling", "sybil", "scale", "monotone")

#: Snapshot fields measured in dollars (split by a Sybil split, scaled by a currency change).
_DOLLAR_FIELDS = ("upnl", "cash", "equity", "account_upnl", "maintenance", "gains", "capacity")
_SCALAR_FIELDS = ("mark", "prev_mark", "bankruptcy_price", "lot_size", "market", "wave")
_SMALL_ONLY_MAX_N = 25
_DEFAULT_MAX_N = 60
_PROPERTY_RTOL = 1e-7
_LARGE_SEED = 20_251_010


class PolicyCheckError(AssertionError):
    """Raised by :func:`check_adl_policy` when a check fails; the message is the report."""

    def __init__(self, report: PolicyCheckReport) -> None:
        self.report = report
        super().__init__(str(report))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check over every example.

    Attributes:
        name: the check (one of :data:`CHECKS`).
        status: ``"pass"``, ``"fail"`` or ``"skip"``.
        evaluated: examples on which the check was evaluated.
        failures: examples on which it failed.
        detail: the smallest counter-example found (when failed) or why it was skipped.
    """

    name: str
    status: str
    evaluated: int = 0
    failures: int = 0
    detail: str = ""

    @property
    def passed(self) -> bool:
        """True unless the check failed (a skipped check does not fail)."""
        return self.status != "fail"


@dataclass(frozen=True)
class PolicyCheckReport:
    """What :func:`check_adl_policy` found for one policy.

    Attributes:
        policy: ``repr`` of the policy checked.
        name: its registry name.
        claims: the properties it claims.
        examples: generated and fixed examples run.
        max_n: the largest snapshot size generated.
        large_n: rows of the large snapshot (0 when skipped).
        checks: one :class:`CheckResult` per entry of :data:`CHECKS`, in that order.
        counterexamples: failed check name -> ``(snapshot, budget)`` of its smallest
            counter-example, to reproduce it (``policy(snapshot, budget)``).
    """

    policy: str
    name: str
    claims: frozenset[str]
    examples: int
    max_n: int
    large_n: int
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)
    counterexamples: dict[str, tuple[Snapshot, float]] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return [c.name for c in self.checks if c.status == "fail"]

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failed

    def __getitem__(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def verdict(self) -> str:
        """One line: PASS or FAIL, the policy and what failed."""
        ran = [c for c in self.checks if c.status != "skip"]
        if self.passed:
            return f"PASS: {self.policy} passed all {len(ran)} checks that apply"
        return f"FAIL: {self.policy} failed {len(self.failed)} of {len(ran)} checks: " + ", ".join(
            self.failed
        )

    def __str__(self) -> str:
        claims = ", ".join(sorted(self.claims)) or "none"
        large = f"large-N n={self.large_n}" if self.large_n else "no large-N case"
        lines = [
            f"ADL policy check: {self.policy} [{self.name}]",
            f"  claims: {claims}; {self.examples} examples (n <= {self.max_n}); {large}",
        ]
        for c in self.checks:
            if c.status == "skip":
                lines.append(f"  skip  {c.name:<17} {c.detail}")
                continue
            count = (
                f"{c.failures}/{c.evaluated} examples failed"
                if c.failures
                else f"{c.evaluated} examples"
            )
            lines.append(f"  {c.status.upper():<4}  {c.name:<17} {count}")
            if c.status == "fail" and c.detail:
                lines.append(f"        counter-example: {c.detail}")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)


# -- recording -------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if isinstance(x, float | np.floating):
        return f"{float(x):.10g}"
    return str(x)


def _fmt_arr(a: np.ndarray) -> str:
    return "[" + ", ".join(_fmt(v) for v in np.asarray(a).ravel()) + "]"


class _Recorder:
    """Collects per-example verdicts; keeps the smallest counter-example of each check."""

    def __init__(self) -> None:
        self.evaluated: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.failures: dict[str, int] = dict.fromkeys(CHECKS, 0)
        self.example: dict[str, tuple[int, float, str]] = {}
        self.cases: dict[str, tuple[Snapshot, float]] = {}
        self._seen: set[str] = set()
        self._failed: set[str] = set()

    def start(self) -> None:
        self._seen, self._failed = set(), set()

    def commit(self) -> None:
        for name in self._seen:
            self.evaluated[name] += 1
        for name in self._failed:
            self.failures[name] += 1

    def ok(self, name: str) -> None:
        self._seen.add(name)

    def check(
        self,
        name: str,
        bad: np.ndarray | bool,
        snap: Snapshot | None,
        budget: float,
        message: str,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> bool:
        """Record check ``name``; ``bad`` is a boolean row mask (or one bool). True if it held."""
        self._seen.add(name)
        mask = np.asarray(bad, dtype=bool)
        if not mask.any():
            return True
        self._failed.add(name)
        n = snap.n if snap is not None else 0
        best = self.example.get(name)
        if best is None or (n, budget) < best[:2]:
            self.example[name] = (n, budget, _summary(snap, budget, mask, message, arrays))
            if snap is not None:
                self.cases[name] = (snap, budget)
        return False

    def results(self, claims: frozenset[str], skipped: dict[str, str]) -> tuple[CheckResult, ...]:
        out = []
        for name in CHECKS:
            if name in skipped:
                out.append(CheckResult(name, "skip", detail=skipped[name]))
                continue
            if name in _PROPERTY_CHECKS and name not in claims:
                out.append(CheckResult(name, "skip", detail="not claimed"))
                continue
            fails = self.failures[name]
            detail = self.example[name][2] if name in self.example else ""
            if self.evaluated[name] == 0 and not fails:
                detail = "no example exercised it"
            out.append(
                CheckResult(name, "fail" if fails else "pass", self.evaluated[name], fails, detail)
            )
        return tuple(out)


def _summary(
    snap: Snapshot | None,
    budget: float,
    mask: np.ndarray,
    message: str,
    arrays: dict[str, np.ndarray] | None,
) -> str:
    if snap is None:
        return message
    head = f"n={snap.n}, B={_fmt(budget)}"
    if mask.ndim == 0 or mask.shape != (snap.n,):
        return f"{head}: {message}"
    rows = np.flatnonzero(mask)
    more = f" (+{rows.size - 5} more)" if rows.size > 5 else ""
    rows = rows[:5]
    parts = [f"capacity={_fmt_arr(snap.capacity[rows])}"]
    for key, arr in (arrays or {}).items():
        parts.append(f"{key}={_fmt_arr(np.asarray(arr)[rows])}")
    return f"{head}, rows {rows.tolist()}{more}: " + ", ".join(parts) + f"; {message}"


# -- helpers ---------------------------------------------------------------------------------


def _tol(scale: float) -> float:
    return 1e-9 * max(1.0, abs(float(scale)))


def _is_write_attempt(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, ValueError) and ("read-only" in text or "WRITEABLE" in text)


def _same(a: Any, b: Any) -> bool:
    """Structural equality that understands numpy arrays, NaN and nested policies."""
    if isinstance(a, ADLPolicy) or isinstance(b, ADLPolicy):
        return (
            type(a) is type(b)
            and isinstance(a, ADLPolicy)
            and _same(a.get_params(deep=False), b.get_params(deep=False))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
        except TypeError:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def _params(policy: ADLPolicy) -> dict[str, Any]:
    params = policy.get_params(deep=True)
    try:
        return copy.deepcopy(params)
    except Exception:
        return dict(params)


def _freeze(snap: Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {f: np.array(getattr(snap, f), copy=True) for f in SNAPSHOT_ARRAYS}
    out.update({f: getattr(snap, f) for f in _SCALAR_FIELDS})
    return out


def _mutated(snap: Snapshot, frozen: dict[str, Any]) -> list[str]:
    changed = []
    for f in SNAPSHOT_ARRAYS:
        arr = getattr(snap, f)
        if (
            not isinstance(arr, np.ndarray)
            or arr.dtype != frozen[f].dtype
            or not np.array_equal(arr, frozen[f], equal_nan=arr.dtype.kind == "f")
        ):
            changed.append(f)
        elif arr.flags.writeable:
            changed.append(f"{f} (made writeable)")
    changed += [f for f in _SCALAR_FIELDS if not _same(getattr(snap, f), frozen[f])]
    return changed


def _readonly_copy(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def _replace(snap: Snapshot, **changes: Any) -> Snapshot:
    fixed = {k: _readonly_copy(v) if isinstance(v, np.ndarray) else v for k, v in changes.items()}
    return dataclasses.replace(snap, **fixed)


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Row mask of values that differ beyond ``1e-7`` relative.

    Plus an absolute floor of ``1e-9 * scale`` (``scale = max(B, max c)``), so rounding noise
    on rows that get (almost) nothing does not count as a difference.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    tol = _PROPERTY_RTOL * np.maximum(np.abs(a), np.abs(b)) + 1e-9 * abs(float(scale))
    return np.abs(a - b) > tol


class _Caller:
    """Calls the policy, turning exceptions into recorded failures instead of crashes."""

    def __init__(self, policy: ADLPolicy, rec: _Recorder) -> None:
        self.policy = policy
        self.rec = rec

    def __call__(self, snap: Snapshot, budget: float, context: str) -> Allocation | None:
        rec = self.rec
        try:
            out = self.policy(snap, budget)
        except Exception as exc:
            text = f"{context}: raised {type(exc).__name__}: {exc}"
            if _is_write_attempt(exc):
                msg = f"tried to write the snapshot ({text})"
                rec.check("no_mutation", True, snap, budget, msg)
            elif isinstance(exc, InputError) and exc.field == "allocation.haircut":
                rec.check("bounds", True, snap, budget, f"execute() rejected the haircut ({text})")
            else:
                rec.check("runs", True, snap, budget, text)
            return None
        if not isinstance(out, Allocation):
            rec.check("runs", True, snap, budget, f"{context}: returned {type(out).__name__}")
            return None
        n = snap.n
        arrays = ("haircut", "lots", "price", "from_gains", "from_principal", "wealth")
        wrong = [a for a in arrays if np.shape(getattr(out, a)) != (n,)]
        if wrong:
            rec.check("runs", True, snap, budget, f"{context}: {wrong} not of shape ({n},)")
            return None
        nonfinite = ~np.isfinite(out.haircut) | ~np.isfinite(out.wealth)
        if not rec.check("runs", nonfinite, snap, budget, f"{context}: non-finite haircut"):
            return None
        return out


# -- the checks ------------------------------------------------------------------------------


def _own_caps(policy: ADLPolicy, snap: Snapshot, budget: float) -> np.ndarray | None:
    """The policy's own per-row caps, within capacity.

    From ``wave_caps(snap, budget)`` when the policy has it (every :class:`ADLPolicy` does;
    the default is ``caps(snap)``), else from an optional ``caps(snap)`` method.  None when
    the policy has neither or it does not give one finite value per row.
    """
    wave = getattr(policy, "wave_caps", None)
    fn = getattr(policy, "caps", None)
    if not callable(wave) and not callable(fn):
        return None
    try:
        got = wave(snap, budget) if callable(wave) else fn(snap)  # type: ignore[misc]
        caps = np.asarray(got, dtype=np.float64)
    except Exception:
        return None
    if caps.shape != (snap.n,) or not np.all(np.isfinite(caps)):
        return None
    return np.clip(caps, 0.0, snap.capacity)


def _check_allocation(
    a: Allocation,
    snap: Snapshot,
    budget: float,
    price_rule: str,
    rec: _Recorder,
    own_caps: np.ndarray | None = None,
) -> None:
    """bounds, budget, overshoot, lots and layers for one allocation."""
    cap = snap.capacity
    h = np.asarray(a.haircut, dtype=float)
    w = np.asarray(a.wealth, dtype=float)
    tol_b = _tol(budget)
    row_tol = 1e-9 * np.maximum(np.maximum(cap, 1.0), abs(budget))
    closes = price_rule != "none"
    v = snap.lot_value
    lots = np.asarray(a.lots)

    rec.check(
        "bounds",
        (h < -row_tol) | (h > cap + row_tol),
        snap,
        budget,
        "haircut outside [0, capacity]",
        {"haircut": h},
    )
    rec.check(
        "bounds",
        (w < -row_tol) | (w > cap + row_tol),
        snap,
        budget,
        "wealth-space vector outside [0, capacity]",
        {"wealth": w},
    )
    limited = snap
    if own_caps is not None:
        rec.check(
            "bounds",
            (h > own_caps + row_tol) | (w > own_caps + row_tol),
            snap,
            budget,
            "haircut above the policy's own caps(snap)",
            {"haircut": h, "wealth": w, "caps": own_caps},
        )
        limited = snap.with_capacity(own_caps)

    raised = float(h.sum())
    per_row = lot_grid_capacity(limited) if closes else limited.capacity
    limit = float(per_row.sum())
    need = min(budget, limit)
    what = "the policy's caps(snap)" if own_caps is not None else "capacity"
    rec.check(
        "budget",
        raised < need - tol_b,
        snap,
        budget,
        f"raised {_fmt(raised)} < min(B, achievable within {what} {_fmt(limit)}) = {_fmt(need)}",
    )
    rec.check(
        "budget",
        float(w.sum()) < need - tol_b,
        snap,
        budget,
        f"wealth-space vector raises {_fmt(float(w.sum()))} < {_fmt(need)}",
    )
    residual = max(budget - raised, 0.0)
    rec.check(
        "budget",
        abs(float(a.residual) - residual) > tol_b,
        snap,
        budget,
        f"reported residual {_fmt(a.residual)} != B - sum(haircut) = {_fmt(residual)}",
    )

    touched = (lots > 0) if closes else np.zeros(snap.n, dtype=bool)
    delta = float(v[touched].max()) if closes and touched.any() else 0.0
    over = raised - budget
    bad_over = over >= delta + tol_b if delta > 0 else over > tol_b
    rec.check(
        "overshoot",
        bad_over,
        snap,
        budget,
        f"sum(haircut) - B = {_fmt(over)} not below the largest lot value touched {_fmt(delta)}",
    )
    rec.check(
        "overshoot",
        abs(float(a.overshoot) - max(over, 0.0)) > tol_b,
        snap,
        budget,
        f"reported overshoot {_fmt(a.overshoot)} != sum(haircut) - B = {_fmt(max(over, 0.0))}",
    )

    if not np.issubdtype(lots.dtype, np.integer):
        rec.check("lots", True, snap, budget, f"lots dtype {lots.dtype} is not an integer type")
    else:
        rec.check(
            "lots",
            (lots < 0) | (lots > snap.lots),
            snap,
            budget,
            "lots outside [0, snapshot lots]",
            {"lots": lots, "snapshot lots": snap.lots},
        )
        if closes:
            rec.check(
                "lots",
                np.abs(h - lots * v) > 1e-9 * np.maximum(np.abs(h), 1.0),
                snap,
                budget,
                "haircut != lots * lot_value",
                {"haircut": h, "lots": lots, "lot_value": v},
            )

    fg = np.asarray(a.from_gains, dtype=float)
    fp = np.asarray(a.from_principal, dtype=float)
    layer = np.maximum(snap.gains_layer, 0.0)
    rec.check(
        "layers",
        np.abs(fg + fp - h) > row_tol,
        snap,
        budget,
        "from_gains + from_principal != haircut",
        {"haircut": h, "from_gains": fg, "from_principal": fp},
    )
    rec.check(
        "layers",
        (fg < -row_tol) | (fp < -row_tol) | (fg > layer + row_tol),
        snap,
        budget,
        "from_gains outside [0, gains layer] or from_principal < 0",
        {"from_gains": fg, "gains layer": layer, "from_principal": fp},
    )


def _check_principal(
    a: Allocation, snap: Snapshot, budget: float, price_rule: str, rec: _Recorder
) -> None:
    """No principal in wealth space while the gains layer (on the lot grid) covers B."""
    layer = np.minimum(np.maximum(snap.gains_layer, 0.0), snap.capacity)
    if price_rule != "none":
        layer = lot_grid_capacity(snap.with_capacity(layer))
    if float(layer.sum()) < budget:
        return
    principal = np.maximum(a.wealth - np.maximum(snap.gains_layer, 0.0), 0.0)
    rec.check(
        "principal_protect",
        principal > 1e-9 * max(1.0, budget),
        snap,
        budget,
        f"principal taken although the gains layer covers B ({_fmt(float(layer.sum()))})",
        {"wealth": a.wealth, "gains layer": snap.gains_layer},
    )


def _check_same(
    a: Allocation, b: Allocation, snap: Snapshot, budget: float, rec: _Recorder
) -> None:
    diff = np.zeros(snap.n, dtype=bool)
    for name in ("haircut", "lots", "wealth", "from_gains", "from_principal", "price"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        same = x == y
        if x.dtype.kind == "f" and y.dtype.kind == "f":
            same |= np.isnan(x) & np.isnan(y)
        diff |= ~same
    scalars = [
        s
        for s in ("budget", "residual", "overshoot", "granularity")
        if not _same(float(getattr(a, s)), float(getattr(b, s)))
    ]
    if scalars and not diff.any():
        rec.check("deterministic", True, snap, budget, f"{scalars} differ between two calls")
    else:
        rec.check(
            "deterministic",
            diff,
            snap,
            budget,
            "two calls on the same input differ",
            {"first": a.wealth, "second": b.wealth},
        )


def _check_monotone(a: Allocation, snap: Snapshot, budget: float, rec: _Recorder) -> None:
    """c_i >= c_j implies c_i - h_i >= c_j - h_j (wealth space), vectorised by sorting."""
    cap = snap.capacity
    if snap.n < 2:
        rec.ok("monotone")
        return
    surv = cap - a.wealth
    tol = _PROPERTY_RTOL * max(float(cap.max()), budget, 1e-300)
    order = np.lexsort((surv, cap))
    c_s, s_s = cap[order], surv[order]
    starts = np.flatnonzero(np.r_[True, c_s[1:] != c_s[:-1]])
    lo = np.minimum.reduceat(s_s, starts)
    hi = np.maximum.reduceat(s_s, starts)
    best_before = np.r_[-np.inf, np.maximum.accumulate(hi)[:-1]]
    block_bad = (hi - lo > tol) | (lo < best_before - tol)
    bad = np.zeros(snap.n, dtype=bool)
    sizes = np.diff(np.r_[starts, snap.n])
    bad[order] = np.repeat(block_bad, sizes)
    message = "a larger capacity leaves a smaller surviving endowment c - h"
    if bad.any():
        # a witness pair: the worst-off row of the first bad block against the best-off row
        # with at most its capacity
        blk = int(np.argmax(block_bad))
        i = int(order[starts[blk] + np.argmin(s_s[starts[blk] : starts[blk] + sizes[blk]])])
        upto = starts[blk] + sizes[blk]
        j = int(order[np.argmax(s_s[:upto])])
        message += (
            f", e.g. row {i} (c={_fmt(cap[i])}, c-h={_fmt(surv[i])}) vs row {j}"
            f" (c={_fmt(cap[j])}, c-h={_fmt(surv[j])})"
        )
    rec.check("monotone", bad, snap, budget, message, {"wealth": a.wealth, "survivor": surv})


def _split(snap: Snapshot, row: int, parts: np.ndarray) -> Snapshot:
    """``snap`` with ``row`` split into ``len(parts)`` accounts of the same owner (group)."""
    n, k = snap.n, parts.size
    idx = np.r_[np.arange(n), np.full(k - 1, row)]
    frac = parts / parts.sum()
    share = np.ones(n + k - 1)
    share[row] = frac[0]
    share[n:] = frac[1:]
    changes: dict[str, Any] = {}
    for f in SNAPSHOT_ARRAYS:
        arr = np.array(getattr(snap, f))[idx]
        if f in _DOLLAR_FIELDS:
            arr = arr * (share[:, None] if arr.ndim == 2 else share)
        changes[f] = arr
    lots = changes["lots"]
    lots[row] = parts[0]
    lots[n:] = parts[1:]
    account = changes["account"]
    account[n:] = int(snap.account.max(initial=0)) + 1 + np.arange(k - 1)
    return _replace(snap, **changes)


def _scaled(snap: Snapshot, s: float) -> Snapshot:
    changes: dict[str, Any] = {f: getattr(snap, f) * s for f in (*_DOLLAR_FIELDS, "lot_value")}
    changes["entry"] = snap.entry * s
    return _replace(
        snap,
        **changes,
        mark=snap.mark * s,
        prev_mark=snap.prev_mark * s,
        bankruptcy_price=snap.bankruptcy_price * s,
    )


@dataclass(frozen=True)
class _Case:
    snap: Snapshot
    budget: float
    seed: int = 0
    scale: float = 3.0
    k: int = 2


def _examine(policy: ADLPolicy, claims: frozenset[str], case: _Case, rec: _Recorder) -> None:
    """Every per-example check on one case."""
    snap, budget = case.snap, case.budget
    call = _Caller(policy, rec)
    price_rule = getattr(policy, "price_rule", "bankruptcy")
    frozen = _freeze(snap)
    before = _params(policy)
    a1 = call(snap, budget, "first call")
    a2 = call(snap, budget, "second call") if a1 is not None else None
    changed = _mutated(snap, frozen)
    rec.check("no_mutation", bool(changed), snap, budget, f"snapshot fields changed: {changed}")
    rec.check(
        "params_unchanged",
        not _same(before, _params(policy)),
        snap,
        budget,
        f"get_params() changed during a call: {before} -> {policy.get_params()}",
    )
    if a1 is None:
        return
    _check_allocation(a1, snap, budget, price_rule, rec, _own_caps(policy, snap, budget))
    if a2 is not None:
        _check_same(a1, a2, snap, budget, rec)
    if "principal_protect" in claims:
        _check_principal(a1, snap, budget, price_rule, rec)
    if "monotone" in claims:
        _check_monotone(a1, snap, budget, rec)
    rng = np.random.default_rng(case.seed)
    scale = max(budget, float(snap.capacity.max(initial=0.0)))
    if "relabeling" in claims:
        perm = rng.permutation(snap.n)
        ap = call(snap.take(perm), budget, "relabeled snapshot")
        if ap is not None:
            rec.check(
                "relabeling",
                _close(ap.wealth, a1.wealth[perm], scale),
                snap,
                budget,
                "permuting rows does not permute the wealth-space haircuts",
                {"original": a1.wealth, "after permutation": ap.wealth[np.argsort(perm)]},
            )
    if "sybil" in claims:
        _check_sybil(call, a1, snap, budget, case, rng, scale, rec)
    if "scale" in claims:
        s = case.scale
        asc = call(_scaled(snap, s), budget * s, f"snapshot scaled by {s}")
        if asc is not None:
            rec.check(
                "scale",
                _close(asc.wealth, s * a1.wealth, s * scale),
                snap,
                budget,
                f"scaling dollars, prices and B by {s} does not scale the haircuts by {s}",
                {"original": a1.wealth, f"scaled / {s}": asc.wealth / s},
            )


def _check_sybil(
    call: _Caller,
    a1: Allocation,
    snap: Snapshot,
    budget: float,
    case: _Case,
    rng: np.random.Generator,
    scale: float,
    rec: _Recorder,
) -> None:
    k = case.k
    cand = np.flatnonzero(snap.lots >= k)
    if cand.size == 0:
        return
    top = cand[np.argmax(snap.capacity[cand])]
    row = int(top if rng.random() < 0.5 else rng.choice(cand))
    total = int(snap.lots[row])
    first = int(rng.integers(1, total - k + 2))
    rest = total - first
    parts = np.array([first, rest]) if k == 2 else None
    if k == 3:
        second = int(rng.integers(1, rest))
        parts = np.array([first, second, rest - second])
    assert parts is not None
    split = _split(snap, row, parts.astype(np.int64))
    asp = call(split, budget, f"row {row} split into {k} accounts")
    if asp is None:
        return
    g = snap.group[row]
    before = float(a1.wealth[snap.group == g].sum())
    after = float(asp.wealth[split.group == g].sum())
    bad = bool(_close(np.array([after]), np.array([before]), scale)[0])
    mask = np.zeros(snap.n, dtype=bool)
    mask[row] = bad
    rec.check(
        "sybil",
        mask,
        snap,
        budget,
        f"splitting row {row} ({total} lots) into {parts.tolist()} lots changes what its owner "
        f"pays from {_fmt(before)} to {_fmt(after)}",
        {"wealth": a1.wealth},
    )


@st.composite
def _cases(draw: st.DrawFn, max_n: int) -> _Case:
    snap = draw(snapshots(1, max_n))
    return _Case(
        snap=snap,
        budget=float(draw(budgets(snap))),
        seed=draw(st.integers(0, 2**32 - 1)),
        scale=draw(st.sampled_from((3.0, 0.5))),
        k=draw(st.sampled_from((2, 3))),
    )


def _fixed_cases() -> list[_Case]:
    """Hand-made edge cases run before the generated ones."""
    b = Snapshot.build
    return [
        _Case(b([]), 0.0),
        _Case(b([]), 1.0),
        _Case(b([0.0]), 0.0),
        _Case(b([0.0, 0.0]), 1.0),
        _Case(b([4.0]), 2.5),
        _Case(b([4.0]), 9.0),
        _Case(b([5.0, 5.0, 5.0]), 7.0, seed=1, k=3),
        _Case(b([10.0, 9.0, 1.0]), 5.0, seed=2),
        _Case(b([3.0, 0.0, 1.5], lot_value=0.5), 4.5, seed=3, scale=0.5),
        _Case(b([3.0, 0.0, 1.5], lot_value=0.5), 0.0, seed=4),
        _Case(b([2.5, 7.25, 1.0, 7.25], lots=[3, 8, 1, 8], lot_value=1.0), 9.6, seed=5),
        _Case(
            b(
                [6.0, 2.0, 4.0],
                gains=[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0]],
                upnl=[1.0, 2.0, 0.0],
            ),
            5.0,
            seed=6,
        ),
    ]


def _interface(policy: ADLPolicy, claims: frozenset[str], rec: _Recorder) -> None:
    problems = []
    unknown = sorted(claims - KNOWN_PROPERTIES)
    if unknown:
        problems.append(f"unknown property claims {unknown} (known: {sorted(KNOWN_PROPERTIES)})")
    if getattr(policy, "price_rule", None) not in PRICE_RULES:
        problems.append(f"price_rule {policy.price_rule!r} not in {PRICE_RULES}")
    if getattr(policy, "sides", None) not in SIDE_RULES:
        problems.append(f"sides {policy.sides!r} not in {SIDE_RULES}")
    if not isinstance(policy.name, str) or not policy.name:
        problems.append("name is not a non-empty string")
    try:
        params = policy.get_params(deep=False)
        clone = policy.clone()
        if not _same(params, clone.get_params(deep=False)):
            problems.append("clone() does not reproduce get_params()")
        repr(policy)
    except Exception as exc:
        problems.append(f"get_params/clone/repr raised {type(exc).__name__}: {exc}")
    rec.start()
    rec.check("interface", bool(problems), None, 0.0, "; ".join(problems))
    rec.commit()


def _large(policy: ADLPolicy, n: int, rec: _Recorder) -> None:
    snap = large_snapshot(n, np.random.default_rng(_LARGE_SEED))
    budget = 0.5 * float(lot_grid_capacity(snap).sum())
    inner = _Recorder()
    inner.start()
    a = _Caller(policy, inner)(snap, budget, f"large snapshot (n={n})")
    if a is not None:
        rule = getattr(policy, "price_rule", "bankruptcy")
        _check_allocation(a, snap, budget, rule, inner, _own_caps(policy, snap, budget))
    inner.commit()
    rec.start()
    failed = [name for name in CHECKS if inner.failures[name]]
    detail = "; ".join(f"{name}: {inner.example[name][2]}" for name in failed)
    rec.check("large_n", bool(failed), None, budget, detail)
    rec.commit()


def _as_policy(policy: Any) -> ADLPolicy:
    if isinstance(policy, type) and issubclass(policy, ADLPolicy):
        try:
            return policy()
        except Exception as exc:
            raise InputError(
                "policy",
                "an ADLPolicy instance or a subclass constructible with defaults",
                f"{policy.__name__}() raised {type(exc).__name__}",
            ) from exc
    require(
        isinstance(policy, ADLPolicy),
        "policy",
        "an ADLPolicy instance or subclass",
        type(policy).__name__,
    )
    return policy


def check_adl_policy(
    policy: ADLPolicy | type[ADLPolicy],
    *,
    max_examples: int = 200,
    large_n: int = 100_000,
    raise_on_fail: bool = True,
) -> PolicyCheckReport:
    """Check that an ADL policy keeps the interface contract and every property it claims.

    Runs ``max_examples`` hypothesis-generated snapshots and budgets (deterministic:
    ``derandomize=True``, no database) with up to 60 rows (25 for ``exact_small_only``
    policies), a few fixed edge cases, and one ``large_n``-row snapshot (skipped when
    ``large_n == 0`` or the policy is ``exact_small_only``).  See the module docstring for the
    list of checks.  Exceptions raised by the policy are reported as failures, not raised.

    Args:
        policy: an :class:`~market.adl.base.ADLPolicy` instance, or a subclass (built with its
            default parameters).
        max_examples: generated examples to run (>= 1).
        large_n: rows of the large-N case (0 to skip it).
        raise_on_fail: raise :class:`PolicyCheckError` (an ``AssertionError`` whose message is
            the report) when any check fails.

    Returns:
        The :class:`PolicyCheckReport`; ``str(report)`` is readable, ``report.verdict`` is one
        line.

    Raises:
        InputError: for a bad ``policy``, ``max_examples`` or ``large_n``.
        PolicyCheckError: if a check failed and ``raise_on_fail`` is true.
    """
    pol = _as_policy(policy)
    require(
        isinstance(max_examples, int) and not isinstance(max_examples, bool) and max_examples >= 1,
        "max_examples",
        "an int >= 1",
        max_examples,
    )
    require(
        isinstance(large_n, int) and not isinstance(large_n, bool) and large_n >= 0,
        "large_n",
        "an int >= 0 (0 skips the large-N case)",
        large_n,
    )
    claims = frozenset(getattr(pol, "properties", frozenset()))
    small_only = bool(getattr(pol, "exact_small_only", False))
    max_n = _SMALL_ONLY_MAX_N if small_only else _DEFAULT_MAX_N
    rec = _Recorder()
    _interface(pol, claims, rec)

    ran = [0]

    def run_case(case: _Case) -> None:
        ran[0] += 1
        rec.start()
        _examine(pol, claims, case, rec)
        rec.commit()

    fixed = _fixed_cases()
    for case in fixed:
        run_case(case)
    _run_generated(run_case, max_n, max_examples)

    skipped: dict[str, str] = {}
    if small_only:
        skipped["large_n"] = "exact_small_only policy"
    elif large_n == 0:
        skipped["large_n"] = "large_n=0"
    else:
        _large(pol, large_n, rec)
    report = PolicyCheckReport(
        policy=repr(pol),
        name=str(getattr(pol, "name", type(pol).__name__)),
        claims=claims,
        examples=ran[0],
        max_n=max_n,
        large_n=0 if "large_n" in skipped else large_n,
        checks=rec.results(claims, skipped),
        counterexamples={k: v for k, v in rec.cases.items() if rec.failures.get(k)},
    )
    if raise_on_fail and not report.passed:
        raise PolicyCheckError(report)
    return report


def _run_generated(run_case: Callable[[_Case], None], max_n: int, max_examples: int) -> None:
    """Run ``run_case`` on ``max_examples`` hypothesis-generated cases, deterministically."""

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(_cases(max_n))
    def generated(case: _Case) -> None:
        run_case(case)

    generated()
