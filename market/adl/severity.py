"""Severity controllers: how much of a wave's deficit to raise now.

A controller picks ``theta`` in ``[0, 1]``; the wave's ADL budget is ``B = theta * D``.  The
separation principle of Chitra (arXiv 2512.01112, §4) splits ADL into this scalar (which sets
solvency: the residual is ``(1 - theta) D``) and the allocation of ``B`` over accounts (which
sets fairness); Chitra, Thogiti, Trujillo Ramirez and Xu, *Autodeleveraging as Online Learning*
(arXiv 2602.15182) treat the choice of ``theta`` over a sequence of waves as online learning.

Controllers follow the scikit-learn habit (parameters stored in ``__init__`` under their own
names and nothing else) and carry no hidden state: all memory lives in a plain dict that the
caller threads through ``init_state() -> theta(state, wave) -> update(state, wave, outcome)``.
``update`` returns a new dict and never mutates its argument.  Waves with zero deficit are not
waves: ``update`` returns an unchanged copy for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from market.adl.params import Params
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
        deficit: ``D_t``, the deficit left after the backstop, dollars (>= 0).
        capacity: ``U_t``, the total eligible capacity of the wave, dollars (>= 0).
        backstop: what the backstop (insurance fund / vault) has left, dollars (>= 0).
        max_shortfall: the largest single bankrupt account's shortfall, dollars (>= 0).
        max_capacity: ``M_t``, the largest winner's capacity in the wave, dollars (between 0
            and ``capacity``), or ``None`` when the caller does not know it.  Chitra's
            surrogate and price-of-anarchy cap are written in ``M_t = max_i w_{t,i}``
            (arXiv 2512.01112 v2, App. "Empirical Methodology", "Scalar severity surrogate").
            An exchange passes, over the wave's markets, the largest per-account sum of the
            snapshot capacities (``max_i sum_k c_{i,k}``; with one market, ``capacity.max()``).
            ``None`` makes the controllers that need ``M_t`` use ``capacity`` instead, an
            upper bound on ``M_t`` (their cap is then looser than the paper's).
    """

    index: int
    deficit: float
    capacity: float
    backstop: float = 0.0
    max_shortfall: float = 0.0
    max_capacity: float | None = None

    def __post_init__(self) -> None:
        require(
            isinstance(self.index, int | np.integer) and not isinstance(self.index, bool),
            "wave.index",
            "an integer",
            self.index,
        )
        for name in ("deficit", "capacity", "backstop", "max_shortfall"):
            _check_number(getattr(self, name), f"wave.{name}", 0.0)
        if self.max_capacity is not None:
            _check_number(self.max_capacity, "wave.max_capacity", 0.0, float(self.capacity))

    @property
    def largest(self) -> float:
        """``M_t``: ``max_capacity`` when known, else ``capacity`` (an upper bound)."""
        return float(self.capacity if self.max_capacity is None else self.max_capacity)


@dataclass(frozen=True)
class WaveOutcome:
    """What happened in a wave, fed back to the controller.

    Attributes:
        raised: dollars ADL raised (>= 0).
        residual: dollars left uncovered (>= 0).
        max_haircut_frac: the largest haircut as a fraction of the account's eligibility base
            (before the lot and fairness caps, so it does not depend on the price rule; >= 0).
        budget_share: in the market where ``max_haircut_frac`` occurred, the budget the
            allocation rule was asked for (after eligibility cuts) over that market's total
            capacity, ``B_eff,k / U_k`` in ``[0, 1]``: the largest fraction pro-rata would
            have taken there.  ``None`` when unknown; :class:`MDIC` then uses the wave-level
            ``theta * D / U`` (exact for one market without eligibility cuts).
    """

    raised: float = 0.0
    residual: float = 0.0
    max_haircut_frac: float = 0.0
    budget_share: float | None = None

    def __post_init__(self) -> None:
        for name in ("raised", "residual", "max_haircut_frac"):
            _check_number(getattr(self, name), f"outcome.{name}", 0.0)
        if self.budget_share is not None:
            _check_number(self.budget_share, "outcome.budget_share", 0.0, 1.0)


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


class SeverityController(Params):
    """Base class of severity controllers.

    Class attributes ``name``, ``description`` and ``source`` describe the rule; subclasses
    store their constructor arguments under the same names and implement :meth:`init_state`,
    :meth:`theta` and :meth:`update`.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""

    def _check(self) -> None:
        """Validate the parameters (subclasses extend)."""

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


#: Surrogate forms of :class:`MirrorDescent`: the paper's (default) and the capacity form.
SURROGATES = ("paper", "capacity")
#: Deficit forecasts of :class:`MirrorDescent`: the wave's own deficit, or the last wave's.
FORECASTS = ("current", "lagged")
#: Step geometries of :class:`MirrorDescent`: Euclidean (default) or the logit mirror map.
GEOMETRIES = ("euclidean", "logit")


def _check_choice(value: Any, field: str, choices: tuple[str, ...]) -> None:
    require(
        isinstance(value, str) and value in choices, field, f"one of {', '.join(choices)}", value
    )


class MirrorDescent(SeverityController):
    """Online mirror descent on ``theta`` along Chitra's scalar severity surrogate.

    Source: Chitra, *Autodeleveraging: Impossibilities and Optimization*, arXiv 2512.01112
    v2, appendix "Empirical Methodology": subsection "Losses and objectives" (paragraphs
    "Scalar severity surrogate" and "Lagged severity publication") and subsection "Policies"
    (paragraphs "Exponential backoff", which defines the price-of-anarchy cap, and "Mirror
    descent").  Regret: same paper, appendix "Regret Analysis" (Theorem "OMD Regret",
    Corollary "Severity Regret").  Online-learning view: Chitra et al., arXiv 2602.15182.

    **Surrogate** (``surrogate="paper"``, the default).  With ``D_t`` the wave's deficit and
    ``M_t = max_i w_{t,i}`` the largest winner's capacity (:attr:`WaveState.largest`), the
    paper's loss is ``f_t(theta) = -lam theta D_t + mu (M_t - theta D_t)_+
    + nu_p (theta D_t - D_t)_+^2``: a reward for what is raised, a penalty for raising less
    than the largest winner holds, a quadratic penalty for raising more than the deficit.
    It is used here per dollar of deficit, ``f_t / D_t = -lam theta + mu (M_t/D_t - theta)_+
    + nu (theta - 1)_+^2``, so ``lam`` and ``mu`` are the paper's and ``nu = nu_p * D_t``.
    Because ``theta`` stays in ``[0, 1]`` (§4 of the paper; the exchange clips to it) the
    overshoot term is zero on the whole domain and, for ``lam > 0``, ``f_t`` falls strictly
    with ``theta``: the controller climbs toward its cap, and what it raises is set by the cap,
    ``theta0`` and ``eta``.  Under a finite ``R`` the played ``theta`` is always below
    ``M_t / D_t``, so the subgradient is the constant ``-(lam + mu)``.

    **Cap** (``surrogate="paper"``).  ``Theta_t = R / (1 + R) * M_t / D_t``; the played value
    is ``theta_t = min(theta_hat_t, Theta_t, 1)``.  ``R = inf`` means no cap, as the paper
    says ("uncapped if R = infinity"; the formula's own limit would be ``M_t / D_t``).  Our
    reading of ``R``: any allocation leaves the largest winner at least ``M_t - theta_t D_t
    >= theta_t D_t / R``, so the cap bounds what a wave raises by ``R`` times what the largest
    winner keeps, whatever the allocation rule (a queue included): PTSR >= 1 / R with the
    paper's PTSR = largest survivor / post-policy deficit ``theta_t D_t``.  The default
    ``R = 1`` lets a wave raise at most half the largest winner's capacity.

    **Capacity form** (``surrogate="capacity"``, a named alternative that is not the
    paper's): ``f_t / D_t = -lam theta + mu (m - theta)_+ + nu (theta - U_t/D_t)_+^2`` with
    ``m = target_fraction`` and ``U_t`` the wave's total capacity, capped at
    ``min(1, R / (1 + R) * U_t / D_t)`` (``R = inf``: ``U_t / D_t``, feasibility).  It puts
    total capacity where the paper puts the largest winner, and a fixed target where the paper
    puts ``M_t``.  ``target_fraction`` is read by this form only.

    **Step.**  ``eta_t = eta / sqrt(t)`` and ``g_t = f_t'(theta_t) / D_t``.
    ``geometry="euclidean"`` (default): projected gradient, ``theta_hat_{t+1} =
    clip(theta_t - eta_t g_t, 0, 1)``, the paper's empirical controller and the geometry of
    its severity regret bound (its "short backtracking line-search" is not reproduced).
    ``geometry="logit"``: the binary-entropy mirror map, ``theta_hat_{t+1} =
    sigmoid(logit(theta_t) - eta_t g_t)``; it moves slowly near 0 and 1 (a step changes
    ``theta`` by about ``theta (1 - theta)`` times the logit step), so from ``theta0 = 1`` it
    barely moves.  Each step starts from the played (capped) ``theta_t``; the next wave's
    cap projects the iterate onto ``[0, Theta_{t+1}]`` when it is played, so a rising cap is
    followed with a lag of one step per wave.

    **Forecast.**  ``forecast="current"`` (default): the budget is ``theta_t D_t``; the
    exchange knows ``D_t`` before it raises (ADL runs after liquidation has fixed the
    deficit).  ``forecast="lagged"``: the paper's lagged publication, ``B_t = theta_t
    D_hat_t`` with ``D_hat_t = D_{t-1}`` (the previous wave's deficit; ``D_t`` on the first
    wave), so :meth:`theta` returns ``min(1, theta_t D_hat_t / D_t)``; the cap and the update
    still use the actual ``D_t``.  Raising more than the deficit is cut at ``D_t`` here, so the
    forecast overshoot the paper measures cannot happen; the paper's forecast is per coin
    where a :class:`WaveState` covers all markets of a step; and the budget may exceed
    ``Theta_t D_t``, so the cap's guarantee above holds for ``forecast="current"`` only.

    Mapping to the paper: ``eta`` = ``eta_0``, ``theta0`` = ``theta_init``, ``lam``, ``mu``,
    ``R`` the same, ``nu`` = ``nu_p D_t``.  The paper tunes ``(lam, mu, nu_p, theta_init,
    eta_0)`` by coarse search and reports neither them nor ``R``; the defaults are ours.

    Parameters:
        eta: base step size (> 0).
        lam, mu, nu: surrogate weights (>= 0).
        R: price-of-anarchy ratio (> 0, ``inf`` for no cap).
        theta0: first severity, in ``[0, 1]``.
        target_fraction: solvency target of the capacity form, in ``[0, 1]``.
        surrogate: ``"paper"`` or ``"capacity"``.
        forecast: ``"current"`` or ``"lagged"``.
        geometry: ``"euclidean"`` or ``"logit"``.

    State: ``{"t": waves learned from, "theta": the iterate theta_hat (before the cap),
    "last_deficit": the last wave's deficit or None}``.
    """

    name = "mirror_descent"
    description = "online mirror descent on theta along Chitra's surrogate, price-of-anarchy cap"
    source = "Chitra, arXiv 2512.01112 v2 (appendix Empirical Methodology); arXiv 2602.15182"

    def __init__(
        self,
        eta: float = 0.5,
        lam: float = 1.0,
        mu: float = 1.0,
        nu: float = 1.0,
        R: float = 1.0,
        theta0: float = 1.0,
        target_fraction: float = 1.0,
        surrogate: str = "paper",
        forecast: str = "current",
        geometry: str = "euclidean",
    ) -> None:
        self.eta = eta
        self.lam = lam
        self.mu = mu
        self.nu = nu
        self.R = R
        self.theta0 = theta0
        self.target_fraction = target_fraction
        self.surrogate = surrogate
        self.forecast = forecast
        self.geometry = geometry
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
        _check_choice(self.surrogate, f"{field}.surrogate", SURROGATES)
        _check_choice(self.forecast, f"{field}.forecast", FORECASTS)
        _check_choice(self.geometry, f"{field}.geometry", GEOMETRIES)

    def init_state(self) -> dict[str, Any]:
        """Start at ``theta0`` with no wave seen."""
        return {"t": 0, "theta": float(self.theta0), "last_deficit": None}

    def cap(self, wave: WaveState) -> float:
        """This wave's cap on ``theta`` (1 when ``D = 0``).

        Paper form: ``min(1, R / (1 + R) * M / D)``, 1 when ``R = inf``.  Capacity form:
        ``min(1, R / (1 + R) * U / D)``, ``min(1, U / D)`` when ``R = inf``.
        """
        d = float(wave.deficit)
        if d <= 0:
            return 1.0
        inf = math.isinf(float(self.R))
        share = 1.0 if inf else float(self.R) / (1.0 + float(self.R))
        if self.surrogate == "paper":
            return 1.0 if inf else min(1.0, share * wave.largest / d)
        return min(1.0, share * float(wave.capacity) / d)

    def iterate(self, state: dict[str, Any], wave: WaveState) -> float:
        """``theta_t``: the stored iterate projected onto ``[0, cap(wave)]``.

        The surrogate and the update are evaluated here; it is also what :meth:`theta`
        returns unless ``forecast="lagged"``.
        """
        current = float(state.get("theta", self.theta0))
        return min(max(current, 0.0), self.cap(wave))

    def forecast_deficit(self, state: dict[str, Any], wave: WaveState) -> float:
        """``D_hat_t``: ``D_t``, or with ``forecast="lagged"`` the last wave's deficit."""
        last = state.get("last_deficit")
        if self.forecast == "lagged" and last is not None:
            return float(last)
        return float(wave.deficit)

    def theta(self, state: dict[str, Any], wave: WaveState) -> float:
        """The share of ``wave.deficit`` to raise: ``min(1, theta_t * D_hat_t / D_t)``."""
        self._check()
        played = self.iterate(state, wave)
        d = float(wave.deficit)
        if d <= 0:
            return played
        return min(played * self.forecast_deficit(state, wave) / d, 1.0)

    def surrogate_value(self, theta: float, wave: WaveState) -> float:
        """``f_t(theta) / D_t`` for this wave and ``theta >= 0`` (0 when ``D = 0``)."""
        d = float(wave.deficit)
        if d <= 0:
            return 0.0
        lam, mu, nu = float(self.lam), float(self.mu), float(self.nu)
        if self.surrogate == "paper":
            over = max(theta - 1.0, 0.0)
            return -lam * theta + mu * max(wave.largest / d - theta, 0.0) + nu * over * over
        over = max(theta - float(wave.capacity) / d, 0.0)
        short = max(float(self.target_fraction) - theta, 0.0)
        return -lam * theta + mu * short + nu * over * over

    def gradient(self, theta: float, wave: WaveState) -> float:
        """A subgradient of :meth:`surrogate_value` at ``theta`` (the paper's ``f_t'/D_t``).

        At the kink of the shortfall term the right derivative is taken (the penalty is
        counted only while strictly short), as in the paper's indicator ``1{M_t > theta D_t}``.
        """
        d = float(wave.deficit)
        if d <= 0:
            return 0.0
        if self.surrogate == "paper":
            target, ceiling = wave.largest / d, 1.0
        else:
            target, ceiling = float(self.target_fraction), float(wave.capacity) / d
        short = 1.0 if target > theta else 0.0
        return (
            -float(self.lam)
            - float(self.mu) * short
            + 2.0 * float(self.nu) * max(theta - ceiling, 0.0)
        )

    def _step(
        self, state: dict[str, Any], wave: WaveState, played: float, t: int, grad: float
    ) -> dict[str, Any]:
        step = float(self.eta) / math.sqrt(t) * grad
        if self.geometry == "logit":
            new = _snap01(_sigmoid(_logit(played) - step))
        else:
            new = min(max(played - step, 0.0), 1.0)
        return {**state, "t": t, "theta": new, "last_deficit": float(wave.deficit)}

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """One mirror step from the played ``theta_t`` along the surrogate's subgradient."""
        if wave.deficit <= 0:
            return dict(state)
        played = self.iterate(state, wave)
        t = int(state.get("t", 0)) + 1
        return self._step(state, wave, played, t, self.gradient(played, wave))


#: Evidence pairs MDIC keeps to judge its sensitivity assumption (the most recent ones).
IC_WINDOW = 16
#: Fewest evidence pairs before MDIC judges its sensitivity assumption.
IC_MIN_POINTS = 3
#: A budget share at or above this is saturated for every rule (all capacity taken).
_FULL_SHARE = 1.0 - 1e-9


def elasticity(points: list[list[float]], min_spread: float) -> tuple[float | None, float]:
    """Least-squares slope of ``log frac`` on ``log share`` over ``points``, and the spread.

    ``points`` holds ``[share, frac]`` pairs with ``0 < share < 1`` and ``frac > 0``.  The
    spread is ``max share / min share`` (1 with fewer than two points).  The slope is ``None``
    (no judgement) with fewer than :data:`IC_MIN_POINTS` pairs or a spread below
    ``min_spread``.  Pro-rata gives slope 1 (``frac = share``), any rule whose largest haircut
    fraction scales with the budget gives 1, and a queue that takes its first account whole
    at every budget gives 0.
    """
    if len(points) < 2:
        return None, 1.0
    x = np.log(np.array([p[0] for p in points], dtype=float))
    y = np.log(np.array([p[1] for p in points], dtype=float))
    log_spread = float(x.max() - x.min())
    spread = math.exp(log_spread) if log_spread < 700.0 else math.inf
    if len(points) < IC_MIN_POINTS or log_spread < math.log(float(min_spread)):
        return None, spread
    dx = x - x.mean()
    return float((dx * (y - y.mean())).sum() / (dx * dx).sum()), spread


class MDIC(MirrorDescent):
    """Mirror descent with an incentive-compatibility (fairness) constraint, and a check of it.

    As :class:`MirrorDescent`, plus the follower constraint ``max_haircut_frac <= beta`` (the
    FIC cap ``h_i <= beta_i`` with one ``beta`` for all, Chitra, arXiv 2512.01112 v2,
    §"Incentive Compatibility and Constraints") handled by a dual variable as in the same
    paper's §"Learning the Optimal ADL Policy", paragraph "Mirror Descent with IC constraints
    (MDIC)" (dual ascent ``lambda_{t+1} = [lambda_t + gamma_t c_t]_+``, steps ``O(t^-1/2)``):
    after each wave ``lam_ic <- [lam_ic + gamma_t (max_haircut_frac - beta)]_+`` with
    ``gamma_t = gamma / sqrt(t)``, then the primal step uses the Lagrangian subgradient
    ``g_t + lam_ic * s_t``.

    **Sensitivity assumption.**  The paper writes the penalty gradient as
    ``grad_pi <lam_t, c(pi; s_t)>`` without saying how it is obtained; here it is
    ``s_t = max_haircut_frac / theta_t``, the derivative of the largest haircut fraction in
    ``theta`` *if that fraction is proportional to the budget*: true for pro-rata
    (``frac = B / U``) and for any rule whose weights do not depend on the budget.  It fails
    for a queue, which takes its first account whole (fraction 1) at every budget above that
    account's capacity (below it the fraction does fall, but only once the wave raises less
    than one account holds), and wherever whole-lot execution or a saturated account sets the
    largest fraction.  Used anyway, the violation never clears, ``lam_ic`` grows without bound
    and ``theta`` is driven toward 0 (the exchange then writes the deficit off as bad debt) to
    meet a constraint the allocation rule, not the severity, breaks.

    **Check.**  Each wave adds the pair ``(share, frac)``: ``share`` is
    :attr:`WaveOutcome.budget_share` (else ``theta * D / U``), ``frac`` the largest haircut
    fraction; pairs with ``share >= 1`` (every rule takes everything) or ``frac = 0`` carry no
    information and are skipped.  Over the last :data:`IC_WINDOW` pairs, once there are
    :data:`IC_MIN_POINTS` and the shares span a factor ``min_spread``, the controller fits the
    elasticity of ``frac`` in ``share`` (:func:`elasticity`; 1 when proportional).  Below
    ``min_elasticity`` the assumption is judged broken: the largest fraction did not fall
    (enough) when the budget did.  Without a fresh judgement the last one stands.

    **Remedy while broken.**  The dual variable is frozen and the sensitivity term dropped: the
    controller moves as plain :class:`MirrorDescent` on the surrogate (the true local
    sensitivity of a fraction stuck at 1 is 0).  The constraint stays violated and the state
    says so; severity is the wrong lever for it, the allocation rule is.

    Parameters: those of :class:`MirrorDescent`, plus ``gamma`` (dual step, >= 0), ``beta``
    (largest allowed haircut fraction, >= 0), ``min_elasticity`` (in ``[0, 1]``) and
    ``min_spread`` (finite, > 1).

    State: that of :class:`MirrorDescent` plus ``lam_ic`` (dual variable), ``ic_points`` (the
    evidence pairs), ``ic_broken`` (the flag), ``ic_elasticity`` (the last fitted elasticity or
    None) and ``ic_evidence`` (None, or the last judgement: ``{"index", "elasticity",
    "spread", "points"}``).  An exchange logs ``ic_broken`` and ``ic_elasticity`` per wave.
    """

    name = "mdic"
    description = "mirror descent on theta with a dual variable on the largest haircut fraction"
    source = "Chitra, arXiv 2512.01112 v2 (MDIC, appendix Empirical Methodology); 2602.15182"

    def __init__(
        self,
        eta: float = 0.5,
        gamma: float = 1.0,
        beta: float = 0.5,
        theta0: float = 1.0,
        lam: float = 1.0,
        mu: float = 1.0,
        nu: float = 1.0,
        R: float = 1.0,
        target_fraction: float = 1.0,
        surrogate: str = "paper",
        forecast: str = "current",
        geometry: str = "euclidean",
        min_elasticity: float = 0.5,
        min_spread: float = 2.0,
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
        self.surrogate = surrogate
        self.forecast = forecast
        self.geometry = geometry
        self.min_elasticity = min_elasticity
        self.min_spread = min_spread
        self._check()

    def _check(self) -> None:
        super()._check()
        _check_number(self.gamma, "mdic.gamma", 0.0)
        _check_number(self.beta, "mdic.beta", 0.0)
        _check_number(self.min_elasticity, "mdic.min_elasticity", 0.0, 1.0)
        _check_number(self.min_spread, "mdic.min_spread", 1.0)
        require(
            float(self.min_spread) > 1, "mdic.min_spread", "a finite number > 1", self.min_spread
        )

    def init_state(self) -> dict[str, Any]:
        """Start at ``theta0`` with no constraint pressure and no evidence."""
        return {
            **super().init_state(),
            "lam_ic": 0.0,
            "ic_points": [],
            "ic_broken": False,
            "ic_elasticity": None,
            "ic_evidence": None,
        }

    def update(
        self, state: dict[str, Any], wave: WaveState, outcome: WaveOutcome
    ) -> dict[str, Any]:
        """Judge the sensitivity assumption, then a dual step and a primal mirror step."""
        if wave.deficit <= 0:
            return dict(state)
        played = self.iterate(state, wave)
        t = int(state.get("t", 0)) + 1
        frac = float(outcome.max_haircut_frac)
        share = outcome.budget_share
        if share is None:
            u = float(wave.capacity)
            share = self.theta(state, wave) * float(wave.deficit) / u if u > 0 else 0.0
        points = [list(p) for p in state.get("ic_points", [])]
        if 0.0 < float(share) < _FULL_SHARE and frac > 0:
            points = [*points, [float(share), frac]][-IC_WINDOW:]
        slope, spread = elasticity(points, float(self.min_spread))
        broken = bool(state.get("ic_broken", False))
        last_slope = state.get("ic_elasticity")
        evidence = state.get("ic_evidence")
        if slope is not None:
            broken = slope < float(self.min_elasticity)
            last_slope = slope
            evidence = {
                "index": int(wave.index),
                "elasticity": slope,
                "spread": spread,
                "points": [list(p) for p in points],
            }
        lam_ic = float(state.get("lam_ic", 0.0))
        grad = self.gradient(played, wave)
        if not broken:
            step = float(self.gamma) / math.sqrt(t)
            lam_ic = max(lam_ic + step * (frac - float(self.beta)), 0.0)
            if lam_ic > 0:
                # d frac / d theta if frac is proportional to theta; the floor keeps it finite
                grad += lam_ic * frac / max(played, _EPS)
        return {
            **self._step(state, wave, played, t, grad),
            "lam_ic": lam_ic,
            "ic_points": points,
            "ic_broken": broken,
            "ic_elasticity": last_slope,
            "ic_evidence": evidence,
        }


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
