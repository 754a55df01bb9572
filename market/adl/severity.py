"""Severity controllers: how much of a wave's deficit to raise now.

A controller picks ``theta`` in ``[0, 1]``; the wave's ADL budget is ``B = theta * D``.  The
separation principle of Chitra (arXiv 2512.01112, §4) splits ADL into this scalar (which sets
solvency: the residual is ``(1 - theta) D``) and the allocation of ``B`` over accounts (which
sets fairness); Chitra, Thogiti, Trujillo Ramirez and Xu, *Autodeleveraging as Online Learning*
(arXiv 2602.15182) treat the choice of ``theta`` over a sequence of waves as online learning.
See /work/shared/research/adl-papers.md §2.

Controllers follow the scikit-learn habit (parameters stored in ``__init__`` under their own
names and nothing else) and carry no hidden state: all memory lives in a plain dict that the
caller threads through ``init_state() -> theta(state, wave) -> update(state, wave, outcome)``.
``update`` returns a new dict and never mutates its argument.  Waves with zero deficit are not
waves: ``update`` returns an unchanged copy for them.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from market.errors import InputError, require

#: How close to 0 or 1 the mirror-descent iterate may get in logit space.
_EPS = 1e-6


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _check_number(
    value: Any, field: str, lo: float = -math.inf, hi: float = math.inf, *, finite: bool = True
) -> None:
    ok = _is_number(value) and not math.isnan(float(value)) and lo <= float(value) <= hi
    if finite:
        ok = ok and math.isfinite(float(value))
    lo_s = "-inf" if lo == -math.inf else f"{lo:g}"
    hi_s = "inf" if hi == math.inf else f"{hi:g}"
    kind = "a finite number" if finite else "a number"
    require(ok, field, f"{kind} in [{lo_s}, {hi_s}]", value)


@dataclass(frozen=True)
class WaveState:
    """What a controller sees of one ADL wave before choosing ``theta``.

    Attributes:
        index: the step (tick) of the wave; gaps between indices are calm steps.
        deficit: ``D``, the deficit left after the backstop, dollars (>= 0).
        capacity: ``U``, the total eligible capacity of the wave, dollars (>= 0).
        backstop: what the backstop (insurance fund / vault) has left, dollars (>= 0).
        max_shortfall: the largest single bankrupt account's shortfall, dollars (>= 0).
    """

    index: int
    deficit: float
    capacity: float
    backstop: float = 0.0
    max_shortfall: float = 0.0

    def __post_init__(self) -> None:
        require(
            isinstance(self.index, int | np.integer) and not isinstance(self.index, bool),
            "wave.index",
            "an integer",
            self.index,
        )
        for name in ("deficit", "capacity", "backstop", "max_shortfall"):
            _check_number(getattr(self, name), f"wave.{name}", 0.0)


@dataclass(frozen=True)
class WaveOutcome:
    """What happened in a wave, fed back to the controller.

    Attributes:
        raised: dollars ADL raised (>= 0).
        residual: dollars left uncovered (>= 0).
        max_haircut_frac: the largest haircut as a fraction of the account's base (>= 0).
    """

    raised: float = 0.0
    residual: float = 0.0
    max_haircut_frac: float = 0.0

    def __post_init__(self) -> None:
        for name in ("raised", "residual", "max_haircut_frac"):
            _check_number(getattr(self, name), f"outcome.{name}", 0.0)


def _logit(p: float) -> float:
    q = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(q / (1.0 - q))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _snap01(x: float) -> float:
    """Clip to [0, 1], snapping values within the logit margin onto the bounds."""
    if x <= _EPS:
        return 0.0
    if x >= 1.0 - _EPS:
        return 1.0
    return x


class SeverityController:
    """Base class of severity controllers.

    Class attributes ``name``, ``description`` and ``source`` describe the rule; subclasses
    store their constructor arguments under the same names and implement :meth:`init_state`,
    :meth:`theta` and :meth:`update`.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""

    # -- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def _check(self) -> None:
        """Validate the parameters (subclasses extend)."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, read back from the attributes of the same names."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> SeverityController:
        """Set parameters by name; nothing changes unless every new value is valid."""
        valid = self._param_names()
        for key in params:
            if key not in valid:
                allowed = f"one of {', '.join(valid)}" if valid else "absent (no parameters)"
                raise InputError(f"{self.name}.{key}", allowed, key)
        type(self)(**{**self.get_params(), **params})  # validates without touching self
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def clone(self) -> SeverityController:
        """A fresh controller with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the work ----------------------------------------------------------------------
    def init_state(self) -> dict[str, Any]:
        """The state before the first wave."""
        return {}

    def theta(self, state: dict[str, Any], wave: WaveState) -> float:
        """The share of ``wave.deficit`` to raise now, in ``[0, 1]``."""
        raise NotImplementedError

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """The state after ``wave`` with ``outcome`` (a new dict; ``state`` is not changed)."""
        return dict(state)

    def budget(self, state: dict[str, Any], wave: WaveState) -> float:
        """``theta(state, wave) * wave.deficit``: the dollars to raise in this wave."""
        return self.theta(state, wave) * float(wave.deficit)


class FullSeverity(SeverityController):
    """Raise the whole deficit at every wave: ``theta = 1`` (the production default)."""

    name = "full"
    description = "theta = 1: raise the whole deficit now"
    source = "Chitra, arXiv 2512.01112 §4 (static severity)"

    def __init__(self) -> None:
        pass

    def theta(self, state: dict[str, Any], wave: WaveState) -> float:
        """Always 1."""
        return 1.0


class ExponentialBackoff(SeverityController):
    """``theta_t = max(theta0 * alpha**k_t, floor)``, ``k_t`` = earlier waves of this crisis.

    A crisis is a run of waves; it ends when more than ``reset_after`` calm steps (steps with
    no wave, read from gaps in ``wave.index``) pass, and the next wave starts again at
    ``theta0``.  Chitra, arXiv 2512.01112 §4 (exponential backoff ``theta_0 alpha^{k_t}``).

    Parameters:
        theta0: severity of a crisis' first wave, in ``[0, 1]``.
        alpha: decay per wave, in ``[0, 1]``.
        floor: lowest severity, in ``[0, 1]``.
        reset_after: calm steps (an integer >= 0) after which the next wave opens a new crisis.

    State: ``{"k": waves so far in the crisis, "last_index": index of the last wave or None}``.
    """

    name = "backoff"
    description = "exponential backoff: theta0 * alpha**k, reset after a calm spell"
    source = "Chitra, arXiv 2512.01112 §4; Chitra et al., arXiv 2602.15182"

    def __init__(
        self, theta0: float = 1.0, alpha: float = 0.5, floor: float = 0.0, reset_after: int = 10
    ) -> None:
        self.theta0 = theta0
        self.alpha = alpha
        self.floor = floor
        self.reset_after = reset_after
        self._check()

    def _check(self) -> None:
        _check_number(self.theta0, "backoff.theta0", 0.0, 1.0)
        _check_number(self.alpha, "backoff.alpha", 0.0, 1.0)
        _check_number(self.floor, "backoff.floor", 0.0, 1.0)
        require(
            isinstance(self.reset_after, int | np.integer)
            and not isinstance(self.reset_after, bool)
            and self.reset_after >= 0,
            "backoff.reset_after",
            "an integer >= 0",
            self.reset_after,
        )

    def init_state(self) -> dict[str, Any]:
        """No wave yet."""
        return {"k": 0, "last_index": None}

    def waves_in_crisis(self, state: dict[str, Any], wave: WaveState) -> int:
        """``k_t``: earlier waves of the crisis ``wave`` belongs to (0 after a reset)."""
        last = state.get("last_index")
        if last is None:
            return 0
        calm = int(wave.index) - int(last) - 1
        return 0 if calm > int(self.reset_after) else int(state.get("k", 0))

    def theta(self, state: dict[str, Any], wave: WaveState) -> float:
        """``max(theta0 * alpha**k_t, floor)``."""
        self._check()
        k = self.waves_in_crisis(state, wave)
        value = max(float(self.theta0) * float(self.alpha) ** k, float(self.floor))
        return min(max(value, 0.0), 1.0)

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """Count the wave in its crisis."""
        if wave.deficit <= 0:
            return dict(state)
        return {**state, "k": self.waves_in_crisis(state, wave) + 1, "last_index": int(wave.index)}


class MirrorDescent(SeverityController):
    """Online mirror descent on ``theta`` with the logit (binary-entropy) mirror map.

    Per wave, with ``D`` = deficit, ``U`` = capacity and ``M = target_fraction * D``, the
    surrogate cost of Chitra (arXiv 2512.01112 v2, empirical appendix; §4) is
    ``f(theta) = -lam theta D + mu (M - theta D)_+ + nu (theta D - U)_+^2``: reward for what is
    raised, a penalty for falling short of the solvency target, and a quadratic penalty for
    asking more than the winners hold.  It is measured here in units of the deficit,
    ``f / D = -lam theta + mu (m - theta)_+ + nu (theta - u)_+^2`` with ``m = target_fraction``
    and ``u = U / D``, so the parameters are unit-free (``nu`` here is the paper's ``nu * D``).

    The played value is ``theta_t = min(sigmoid(z_t), R / (1 + R) * U / D)`` (the price-of-
    anarchy cap; ``R = inf`` leaves the feasibility cap ``U / D``).  After the wave the
    iterate moves in logit space: ``z_{t+1} = logit(theta_t) - eta_t g_t`` with
    ``g_t = f'(theta_t) / D`` and ``eta_t = eta / sqrt(t)``.  Projection onto ``[0, cap]`` in
    one dimension is the clip above.  Online-learning view: Chitra et al., arXiv 2602.15182.

    Parameters:
        eta: base step size (> 0).
        lam, mu, nu: surrogate weights (>= 0).
        R: price-of-anarchy ratio (> 0, ``inf`` for no extra cap).
        theta0: first severity, in ``[0, 1]``.
        target_fraction: the solvency target ``M / D``, in ``[0, 1]``.

    State: ``{"t": waves learned from, "theta": the unprojected iterate sigmoid(z_t)}``.
    """

    name = "mirror_descent"
    description = "online mirror descent on theta (logit mirror map) with a price-of-anarchy cap"
    source = "Chitra, arXiv 2512.01112 §4 and v2 appendix; Chitra et al., arXiv 2602.15182"

    def __init__(
        self,
        eta: float = 0.5,
        lam: float = 1.0,
        mu: float = 1.0,
        nu: float = 1.0,
        R: float = math.inf,
        theta0: float = 1.0,
        target_fraction: float = 1.0,
    ) -> None:
        self.eta = eta
        self.lam = lam
        self.mu = mu
        self.nu = nu
        self.R = R
        self.theta0 = theta0
        self.target_fraction = target_fraction
        self._check()

    def _check(self) -> None:
        field = self.name
        _check_number(self.eta, f"{field}.eta", 0.0)
        require(float(self.eta) > 0, f"{field}.eta", "a finite number > 0", self.eta)
        _check_number(self.lam, f"{field}.lam", 0.0)
        _check_number(self.mu, f"{field}.mu", 0.0)
        _check_number(self.nu, f"{field}.nu", 0.0)
        _check_number(self.R, f"{field}.R", 0.0, finite=False)
        require(float(self.R) > 0, f"{field}.R", "a number > 0 (inf allowed)", self.R)
        _check_number(self.theta0, f"{field}.theta0", 0.0, 1.0)
        _check_number(self.target_fraction, f"{field}.target_fraction", 0.0, 1.0)

    def init_state(self) -> dict[str, Any]:
        """Start at ``theta0``."""
        return {"t": 0, "theta": float(self.theta0)}

    def cap(self, wave: WaveState) -> float:
        """The price-of-anarchy cap ``min(1, R / (1 + R) * U / D)`` (1 when ``D = 0``)."""
        d = float(wave.deficit)
        if d <= 0:
            return 1.0
        share = 1.0 if math.isinf(float(self.R)) else float(self.R) / (1.0 + float(self.R))
        return min(1.0, share * float(wave.capacity) / d)

    def theta(self, state: dict[str, Any], wave: WaveState) -> float:
        """The current iterate, capped for this wave."""
        self._check()
        current = float(state.get("theta", self.theta0))
        return min(max(current, 0.0), self.cap(wave))

    def surrogate(self, theta: float, wave: WaveState) -> float:
        """``f(theta) / D`` for this wave (0 when ``D = 0``)."""
        d = float(wave.deficit)
        if d <= 0:
            return 0.0
        u = float(wave.capacity) / d
        m = float(self.target_fraction)
        over = max(theta - u, 0.0)
        return -self.lam * theta + self.mu * max(m - theta, 0.0) + self.nu * over * over

    def gradient(self, theta: float, wave: WaveState) -> float:
        """A subgradient of :meth:`surrogate` at ``theta``."""
        d = float(wave.deficit)
        if d <= 0:
            return 0.0
        u = float(wave.capacity) / d
        short = 1.0 if float(self.target_fraction) > theta else 0.0
        return -self.lam - self.mu * short + 2.0 * self.nu * max(theta - u, 0.0)

    def _step(self, state: dict[str, Any], played: float, t: int, grad: float) -> dict[str, Any]:
        z = _logit(played) - float(self.eta) / math.sqrt(t) * grad
        return {**state, "t": t, "theta": _snap01(_sigmoid(z))}

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """One mirror step from the played ``theta`` along the surrogate's subgradient."""
        if wave.deficit <= 0:
            return dict(state)
        played = self.theta(state, wave)
        t = int(state.get("t", 0)) + 1
        return self._step(state, played, t, self.gradient(played, wave))


class MDIC(MirrorDescent):
    """Mirror descent with an incentive-compatibility (fairness) constraint.

    As :class:`MirrorDescent`, plus the constraint ``max_haircut_frac <= beta`` handled by a
    dual variable (Chitra, arXiv 2512.01112 §4, "MDIC"; Chitra et al., arXiv 2602.15182):
    after each wave ``lam_ic <- [lam_ic + gamma_t (max_haircut_frac - beta)]_+`` with
    ``gamma_t = gamma / sqrt(t)``, then the primal step uses the Lagrangian subgradient
    ``g_t + lam_ic * s_t`` where ``s_t = max_haircut_frac / theta_t`` estimates how the largest
    haircut grows with ``theta`` (haircuts scale with the budget).  The dual step comes first,
    so a violation lowers the very next ``theta``; while the constraint holds and ``lam_ic``
    is 0 the controller moves exactly as :class:`MirrorDescent`.

    Parameters: those of :class:`MirrorDescent`, plus ``gamma`` (dual step, >= 0) and ``beta``
    (largest allowed haircut fraction, >= 0).

    State: ``{"t", "theta", "lam_ic"}``.
    """

    name = "mdic"
    description = "mirror descent on theta with a dual variable on the largest haircut fraction"
    source = "Chitra, arXiv 2512.01112 §4 (MDIC); Chitra et al., arXiv 2602.15182"

    def __init__(
        self,
        eta: float = 0.5,
        gamma: float = 1.0,
        beta: float = 0.5,
        theta0: float = 1.0,
        lam: float = 1.0,
        mu: float = 1.0,
        nu: float = 1.0,
        R: float = math.inf,
        target_fraction: float = 1.0,
    ) -> None:
        self.eta = eta
        self.gamma = gamma
        self.beta = beta
        self.theta0 = theta0
        self.lam = lam
        self.mu = mu
        self.nu = nu
        self.R = R
        self.target_fraction = target_fraction
        self._check()

    def _check(self) -> None:
        super()._check()
        _check_number(self.gamma, "mdic.gamma", 0.0)
        _check_number(self.beta, "mdic.beta", 0.0)

    def init_state(self) -> dict[str, Any]:
        """Start at ``theta0`` with no constraint pressure."""
        return {**super().init_state(), "lam_ic": 0.0}

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """Dual step on the fairness constraint, then a primal mirror step."""
        if wave.deficit <= 0:
            return dict(state)
        played = self.theta(state, wave)
        t = int(state.get("t", 0)) + 1
        frac = float(outcome.max_haircut_frac)
        step = float(self.gamma) / math.sqrt(t)
        lam_ic = max(float(state.get("lam_ic", 0.0)) + step * (frac - float(self.beta)), 0.0)
        # how the largest haircut grows with theta; the floor keeps a tiny theta finite
        sensitivity = frac / max(played, _EPS)
        grad = self.gradient(played, wave) + (lam_ic * sensitivity if lam_ic > 0 else 0.0)
        return {**self._step(state, played, t, grad), "lam_ic": lam_ic}


#: Registry of severity controllers by name.
SEVERITIES: dict[str, type[SeverityController]] = {
    cls.name: cls for cls in (FullSeverity, ExponentialBackoff, MirrorDescent, MDIC)
}


def get_severity(name: str, **params: Any) -> SeverityController:
    """A severity controller by registry name, built with ``params``.

    Raises:
        InputError: for an unknown name (the message lists the allowed ones) or bad params.
    """
    require(
        isinstance(name, str) and name in SEVERITIES,
        "severity",
        f"one of {', '.join(SEVERITIES)}",
        name,
    )
    cls = SEVERITIES[name]
    valid = cls._param_names()
    for key in params:
        if key not in valid:
            allowed = f"one of {', '.join(valid)}" if valid else "absent (it takes no parameters)"
            raise InputError(f"{name}.{key}", allowed, key)
    return cls(**params)
