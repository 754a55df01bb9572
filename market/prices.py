"""Mark-price paths for one or more markets.

A price path is a ``(T + 1, K)`` float64 array of mark prices: row 0 is the starting mark,
row ``t`` the mark after step ``t``, one column per market.  Every generator here returns
strictly positive, finite prices, and every random number is drawn from a
:class:`numpy.random.Generator` that the caller passes in (never a global generator and never
a default seed), so a run is reproduced exactly by reseeding the caller's stream.

Three kinds of path:

* :func:`gbm_jump_path` - geometric Brownian motion in log price with Poisson jump arrivals of
  heavy-tailed (Student-t) size, optionally correlated across markets;
* :func:`crash_path` - a scripted crash: a linear fall in log price over a window, an optional
  partial rebound, optional dispersion of the fall across markets and optional noise;
* :func:`replay_path` - a given array of prices, validated.

:class:`PricePath` bundles a marks array with the kind and parameters that made it, and builds
any of the three from a plain dict (:meth:`PricePath.from_spec`), which is what scenario files
hold.

Parameters that describe a market (``s0``, ``mu``, ``sigma``, the jump parameters and the
crash ``drop``) may be a single number, used for every market, or a 1-d array with one value per
market; the number of markets ``K`` is the common length of those arrays (and of ``corr``), or
1 when all are numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from market.errors import InputError, require

__all__ = [
    "JUMP_LOG_CLIP",
    "PATH_KINDS",
    "PricePath",
    "crash_path",
    "gbm_jump_path",
    "replay_path",
]

#: Largest absolute size of one jump in log price: one jump moves a price by at most a factor
#: ``exp(5) ~ 148`` up or down, so a Student-t draw far in its tail cannot drive a price to zero
#: or infinity.
JUMP_LOG_CLIP = 5.0

#: The kinds of path :meth:`PricePath.from_spec` can build.
PATH_KINDS = ("gbm", "crash", "replay")

# Log prices are kept inside the float64 range so exp() is always positive and finite.
_LOG_MIN = float(np.log(np.finfo(np.float64).tiny)) + 1.0
_LOG_MAX = float(np.log(np.finfo(np.float64).max)) - 1.0

# Tolerances for the correlation-matrix checks.
_CORR_TOL = 1e-10


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """Human-readable text of an allowed interval, e.g. ``in (0, 1)`` or ``>= 0``."""
    if lo is not None and hi is not None:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        return f"in {left}{lo:g}, {hi:g}{right}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "finite"


def _in_range(
    arr: np.ndarray, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool
) -> np.ndarray:
    """Element-wise mask of values that are finite and inside the interval."""
    ok = np.isfinite(arr)
    if lo is not None:
        ok &= (arr > lo) if lo_open else (arr >= lo)
    if hi is not None:
        ok &= (arr < hi) if hi_open else (arr <= hi)
    return ok


def _real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array, refusing strings, booleans, objects and complex numbers."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise InputError(name, "real numbers", type(value).__name__) from exc
    require(raw.dtype.kind in "iuf", name, "real numbers", f"dtype {raw.dtype}")
    return raw.astype(np.float64)


def _per_market(
    value: Any,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> np.ndarray:
    """A number or a non-empty 1-d array of numbers inside an interval, as float64."""
    arr = _real_array(value, name)
    require(
        arr.ndim == 0 or (arr.ndim == 1 and arr.size >= 1),
        name,
        "a number or a non-empty 1-d array with one value per market",
        f"shape {arr.shape}",
    )
    ok = _in_range(arr, lo, hi, lo_open, hi_open)
    if not bool(np.all(ok)):
        bad = float(np.atleast_1d(arr)[~np.atleast_1d(ok)][0])
        raise InputError(name, _interval(lo, hi, lo_open, hi_open), bad)
    return arr


def _scalar(
    value: Any,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A single real number inside an interval."""
    arr = _real_array(value, name)
    require(arr.ndim == 0, name, "a single number", f"shape {arr.shape}")
    x = float(arr)
    require(
        bool(_in_range(arr, lo, hi, lo_open, hi_open)), name, _interval(lo, hi, lo_open, hi_open), x
    )
    return x


def _integer(value: Any, name: str, minimum: int) -> int:
    """A Python or numpy integer (not a bool) that is at least ``minimum``."""
    require(
        isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_),
        name,
        f"an integer >= {minimum}",
        value if isinstance(value, int | float | str) else type(value).__name__,
    )
    n = int(value)
    require(n >= minimum, name, f"an integer >= {minimum}", n)
    return n


def _generator(rng: Any, name: str, why: str = "") -> np.random.Generator:
    """Check that ``rng`` is a numpy Generator."""
    allowed = "a numpy.random.Generator" + (f" {why}" if why else "")
    require(isinstance(rng, np.random.Generator), name, allowed, type(rng).__name__)
    return rng


def _n_markets(sizes: dict[str, int]) -> int:
    """The common number of markets of the per-market inputs (0 marks a plain number)."""
    given = {name: n for name, n in sizes.items() if n > 0}
    if not given:
        return 1
    first, k = next(iter(given.items()))
    for name, n in given.items():
        require(
            n == k,
            name,
            f"sized for {k} markets (as {first}) or a single number",
            f"{n} values",
        )
    return k


def _check_marks(prices: Any, name: str) -> np.ndarray:
    """Validate a (T+1,) or (T+1, K) array of positive finite prices; return (T+1, K) float64."""
    arr = _real_array(prices, name)
    require(arr.ndim in (1, 2), name, "a 1-d (T+1,) or 2-d (T+1, K) array", f"shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr[:, None]
    require(
        arr.shape[0] >= 2 and arr.shape[1] >= 1,
        name,
        "at least 2 rows (steps >= 1) and 1 market column",
        f"shape {arr.shape}",
    )
    finite = np.isfinite(arr)
    if not bool(np.all(finite)):
        raise InputError(name, "finite prices (no NaN or inf)", float(arr[~finite][0]))
    positive = arr > 0
    if not bool(np.all(positive)):
        raise InputError(name, "strictly positive prices", float(arr[~positive][0]))
    return np.array(arr, dtype=np.float64, copy=True)


def _corr_factor(corr: Any, k: int) -> np.ndarray:
    """Validate a (k, k) correlation matrix and return ``L`` with ``L @ L.T == corr``.

    Cholesky is used when the matrix is positive definite; a positive semi-definite but
    singular matrix (for example all ones: perfectly correlated markets) falls back to the
    symmetric eigen-factor ``V sqrt(w)``.
    """
    name = "gbm.corr"
    c = _real_array(corr, name)
    require(
        c.shape == (k, k), name, f"a ({k}, {k}) matrix (one row per market)", f"shape {c.shape}"
    )
    require(bool(np.all(np.isfinite(c))), name, "finite", "non-finite entries")
    asym = float(np.max(np.abs(c - c.T)))
    require(asym <= _CORR_TOL, name, "symmetric", f"max |c - c.T| = {asym:.3g}")
    diag_err = float(np.max(np.abs(np.diag(c) - 1.0)))
    require(diag_err <= _CORR_TOL, name, "a unit diagonal", f"max |diag - 1| = {diag_err:.3g}")
    c = 0.5 * (c + c.T)
    w_min = float(np.linalg.eigvalsh(c)[0])
    require(
        w_min >= -_CORR_TOL * k, name, "positive semi-definite", f"smallest eigenvalue {w_min:.3g}"
    )
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(c)
        return v * np.sqrt(np.clip(w, 0.0, None))


def _exp_prices(log_prices: np.ndarray) -> np.ndarray:
    """``exp`` of log prices clipped to the float64 range (so positive and finite)."""
    return np.exp(np.clip(log_prices, _LOG_MIN, _LOG_MAX))


# --------------------------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------------------------


def gbm_jump_path(
    s0: ArrayLike,
    steps: int,
    rng: np.random.Generator,
    *,
    mu: ArrayLike = 0.0,
    sigma: ArrayLike = 0.02,
    dt: float = 1.0,
    jump_rate: ArrayLike = 0.01,
    jump_scale: ArrayLike = 0.05,
    jump_tail: ArrayLike = 3.0,
    corr: ArrayLike | None = None,
) -> np.ndarray:
    """Geometric Brownian motion with heavy-tailed Poisson jumps, for ``K`` markets.

    Each step adds to the log price of market ``k``::

        (mu_k - sigma_k**2 / 2) * dt + sigma_k * sqrt(dt) * Z_k + sum of N_k jumps

    where ``Z`` is standard normal, correlated across markets by ``corr`` when given
    (``Z = L @ eps`` with ``L @ L.T == corr``), ``N_k ~ Poisson(jump_rate_k)`` is the number of
    jumps in the step (``jump_rate`` is per step, whatever ``dt`` is), and each jump has log size
    ``jump_scale_k * t`` with ``t`` Student-t with ``jump_tail_k`` degrees of freedom, clipped to
    ``[-JUMP_LOG_CLIP, JUMP_LOG_CLIP]``.  Jumps are not compensated: with symmetric jumps the
    expected log return is unchanged, the expected price return is not.

    Random draws, in this order: ``rng.standard_normal((steps, K))`` for the diffusion,
    ``rng.poisson`` for the jump counts, ``rng.standard_t`` for the jump sizes (one per jump).

    Args:
        s0: starting mark, > 0; a number or one per market.
        steps: number of steps ``T`` >= 1; the path has ``T + 1`` rows.
        rng: the caller's numpy Generator.
        mu: drift per unit time (finite); a number or one per market.
        sigma: volatility per sqrt unit time, >= 0; a number or one per market.
        dt: time per step, > 0.
        jump_rate: expected jumps per step, >= 0; a number or one per market.
        jump_scale: scale of a jump in log price, >= 0; a number or one per market.
        jump_tail: Student-t degrees of freedom of jump sizes, > 0 (smaller = heavier tail).
        corr: optional (K, K) correlation matrix of the diffusion: symmetric, unit diagonal,
            positive semi-definite.

    Returns:
        A ``(steps + 1, K)`` float64 array of strictly positive, finite marks; row 0 is ``s0``.
    """
    rng = _generator(rng, "gbm.rng")
    t_steps = _integer(steps, "gbm.steps", 1)
    s0_a = _per_market(s0, "gbm.s0", 0.0, lo_open=True)
    mu_a = _per_market(mu, "gbm.mu")
    sigma_a = _per_market(sigma, "gbm.sigma", 0.0)
    dt_f = _scalar(dt, "gbm.dt", 0.0, lo_open=True)
    rate_a = _per_market(jump_rate, "gbm.jump_rate", 0.0)
    scale_a = _per_market(jump_scale, "gbm.jump_scale", 0.0)
    tail_a = _per_market(jump_tail, "gbm.jump_tail", 0.0, lo_open=True)
    corr_a = None
    if corr is not None:
        corr_a = _real_array(corr, "gbm.corr")
        require(
            corr_a.ndim == 2 and corr_a.shape[0] == corr_a.shape[1] and corr_a.shape[0] >= 1,
            "gbm.corr",
            "a square (K, K) matrix",
            f"shape {corr_a.shape}",
        )
    named = {
        "gbm.s0": s0_a,
        "gbm.mu": mu_a,
        "gbm.sigma": sigma_a,
        "gbm.jump_rate": rate_a,
        "gbm.jump_scale": scale_a,
        "gbm.jump_tail": tail_a,
    }
    sizes = {name: (a.size if a.ndim == 1 else 0) for name, a in named.items()}
    if corr_a is not None:
        sizes["gbm.corr"] = corr_a.shape[0]
    k = _n_markets(sizes)
    factor = None if corr_a is None else _corr_factor(corr_a, k)
    s0_k, mu_k, sigma_k, rate_k, scale_k, tail_k = (
        np.broadcast_to(a, (k,)) for a in named.values()
    )

    # diffusion
    z = rng.standard_normal((t_steps, k))
    if factor is not None:
        z = z @ factor.T
    incr = (mu_k - 0.5 * sigma_k**2) * dt_f + sigma_k * np.sqrt(dt_f) * z

    # jumps: counts per (step, market) cell, then one Student-t draw per jump, summed per cell
    counts = rng.poisson(np.broadcast_to(rate_k, (t_steps, k)))
    cell = np.repeat(np.arange(t_steps * k), counts.ravel())
    market_of_jump = cell % k
    sizes_t = rng.standard_t(tail_k[market_of_jump]) if cell.size else np.empty(0)
    jump_log = np.clip(sizes_t * scale_k[market_of_jump], -JUMP_LOG_CLIP, JUMP_LOG_CLIP)
    incr += np.bincount(cell, weights=jump_log, minlength=t_steps * k).reshape(t_steps, k)

    log_p = np.empty((t_steps + 1, k))
    log_p[0] = np.log(s0_k)
    np.cumsum(incr, axis=0, out=log_p[1:])
    log_p[1:] += log_p[0]
    marks = _exp_prices(log_p)
    marks[0] = s0_k  # exact start, not exp(log(s0))
    return marks


def crash_path(
    s0: ArrayLike,
    steps: int,
    *,
    drop: ArrayLike = 0.3,
    start: int = 0,
    duration: int = 1,
    rebound: float = 0.0,
    correlation: float = 1.0,
    rng: np.random.Generator | None = None,
    noise: float = 0.0,
) -> np.ndarray:
    """A scripted crash: a fall of ``drop`` over ``duration`` steps from row ``start``.

    Without noise the marks of market ``k`` are::

        s0_k                                  for rows t <= start
        s0_k * (1 - d_k) ** ((t - start) / duration)    during the fall (linear in log price)
        s0_k * (1 - d_k)                      exactly, at row start + duration

    and, when ``rebound = r > 0``, they then climb linearly in log price over the next
    ``duration`` steps to ``s0_k * (1 - d_k * (1 - r))`` - i.e. they win back the fraction ``r``
    of the fall *in price* - and stay there.  ``rebound = 1`` returns to ``s0``.

    The fall ``d_k`` is ``drop_k`` itself when there is one market or ``correlation == 1``.
    With ``K > 1`` markets and ``correlation < 1`` each market falls by
    ``drop_k * (correlation + (1 - correlation) * U_k)``, ``U_k ~ uniform[0, 1)`` drawn as
    ``rng.random(K)``: ``correlation = 1`` moves all markets together, ``0`` scatters them
    between no fall and the full ``drop``.

    ``noise > 0`` multiplies every row after row 0 by ``exp(noise * eps)``, ``eps`` standard
    normal drawn as ``rng.standard_normal((steps, K))`` after ``U``: independent log noise
    around the script (not a random walk), so the shape of the crash survives.

    Args:
        s0: starting mark, > 0; a number or one per market.
        steps: number of steps ``T`` >= 1; the path has ``T + 1`` rows.
        drop: fraction of price lost, in (0, 1); a number or one per market.
        start: row where the fall begins, >= 0.
        duration: steps the fall takes, >= 1; ``start + duration <= steps``.
        rebound: fraction of the fall won back, in [0, 1]; when > 0 the rebound window must
            fit: ``start + 2 * duration <= steps``.
        correlation: in [0, 1], how alike the falls of several markets are.
        rng: the caller's numpy Generator; required when ``noise > 0`` or when ``K > 1`` and
            ``correlation < 1``, otherwise unused.
        noise: standard deviation of the log noise, >= 0.

    Returns:
        A ``(steps + 1, K)`` float64 array of strictly positive, finite marks.
    """
    t_steps = _integer(steps, "crash.steps", 1)
    s0_a = _per_market(s0, "crash.s0", 0.0, lo_open=True)
    drop_a = _per_market(drop, "crash.drop", 0.0, 1.0, lo_open=True, hi_open=True)
    t0 = _integer(start, "crash.start", 0)
    dur = _integer(duration, "crash.duration", 1)
    require(dur <= t_steps, "crash.duration", f"<= steps ({t_steps})", dur)
    require(t0 + dur <= t_steps, "crash.start", f"<= steps - duration ({t_steps - dur})", t0)
    reb = _scalar(rebound, "crash.rebound", 0.0, 1.0)
    require(
        reb == 0.0 or t0 + 2 * dur <= t_steps,
        "crash.rebound",
        f"0 unless the rebound window fits (start + 2*duration = {t0 + 2 * dur} <= "
        f"steps = {t_steps})",
        reb,
    )
    rho = _scalar(correlation, "crash.correlation", 0.0, 1.0)
    noise_f = _scalar(noise, "crash.noise", 0.0)
    k = _n_markets(
        {
            "crash.s0": s0_a.size if s0_a.ndim == 1 else 0,
            "crash.drop": drop_a.size if drop_a.ndim == 1 else 0,
        }
    )
    disperse = k > 1 and rho < 1.0
    if disperse or noise_f > 0.0:
        _generator(rng, "crash.rng", "(needed when noise > 0, or correlation < 1 with K > 1)")
    elif rng is not None:
        _generator(rng, "crash.rng", "or None")
    s0_k = np.broadcast_to(s0_a, (k,))
    drop_k = np.broadcast_to(drop_a, (k,)).copy()
    if disperse:
        drop_k *= rho + (1.0 - rho) * rng.random(k)

    rows = np.arange(t_steps + 1, dtype=np.float64)
    down = np.clip((rows - t0) / dur, 0.0, 1.0)[:, None]
    up = np.clip((rows - t0 - dur) / dur, 0.0, 1.0)[:, None] if reb > 0.0 else None
    bottom = 1.0 - drop_k
    log_bottom = np.log1p(-drop_k)
    log_mult = down * log_bottom
    if up is not None:
        final = 1.0 - drop_k * (1.0 - reb)
        log_mult = log_mult + up * (np.log(final) - log_bottom)
    mult = np.exp(log_mult)
    # pin the plateaus to exact values rather than exp(log(.)) round trips
    at_bottom = down >= 1.0 if up is None else (down >= 1.0) & (up <= 0.0)
    mult = np.where(at_bottom, bottom, mult)
    if up is not None:
        mult = np.where(up >= 1.0, final, mult)
    marks = s0_k * mult
    if noise_f > 0.0:
        eps = rng.standard_normal((t_steps, k))
        marks[1:] = _exp_prices(np.log(marks[1:]) + noise_f * eps)
    marks[0] = s0_k
    return np.clip(marks, np.finfo(np.float64).tiny, np.finfo(np.float64).max)


def replay_path(prices: ArrayLike) -> np.ndarray:
    """Validate a recorded price series and return it as a fresh ``(T + 1, K)`` float64 array.

    Args:
        prices: a ``(T + 1,)`` series for one market or a ``(T + 1, K)`` array, ``T >= 1``,
            every price finite and > 0.

    Returns:
        A new float64 array of shape ``(T + 1, K)`` (a 1-d input becomes one column).
    """
    return _check_marks(prices, "replay.prices")


# --------------------------------------------------------------------------------------------
# the bundle
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PricePath:
    """A price path with the kind and parameters that made it.

    Attributes:
        marks: read-only ``(T + 1, K)`` float64 array of strictly positive, finite marks.
        kind: one of :data:`PATH_KINDS`.
        params: the parameters the path was built from (without ``kind``; for ``replay`` an
            empty dict, the prices being ``marks`` itself).
    """

    marks: np.ndarray
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    #: Keys a spec may hold for each kind, and the ones it must hold.
    SPEC_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "gbm": ("s0", "steps", "mu", "sigma", "dt", "jump_rate", "jump_scale", "jump_tail", "corr"),
        "crash": ("s0", "steps", "drop", "start", "duration", "rebound", "correlation", "noise"),
        "replay": ("prices",),
    }
    REQUIRED_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "gbm": ("s0", "steps"),
        "crash": ("s0", "steps"),
        "replay": ("prices",),
    }

    def __post_init__(self) -> None:
        """Validate, copy and freeze the marks; check kind and params."""
        require(self.kind in PATH_KINDS, "price_path.kind", f"one of {PATH_KINDS}", self.kind)
        require(
            isinstance(self.params, Mapping),
            "price_path.params",
            "a dict",
            type(self.params).__name__,
        )
        marks = _check_marks(self.marks, "price_path.marks")
        marks.setflags(write=False)
        object.__setattr__(self, "marks", marks)
        object.__setattr__(self, "params", dict(self.params))

    @property
    def steps(self) -> int:
        """Number of steps ``T`` (rows minus one)."""
        return int(self.marks.shape[0] - 1)

    @property
    def markets(self) -> int:
        """Number of markets ``K`` (columns)."""
        return int(self.marks.shape[1])

    def returns(self) -> np.ndarray:
        """Log returns ``log(marks[t] / marks[t-1])``, a new ``(T, K)`` array."""
        return np.diff(np.log(self.marks), axis=0)

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], rng: np.random.Generator | None = None
    ) -> PricePath:
        """Build a path from a plain dict such as a scenario file holds.

        ``spec["kind"]`` picks the generator (``"gbm"``, ``"crash"`` or ``"replay"``); the other
        keys are that generator's arguments (see :attr:`SPEC_KEYS`).  ``rng`` is passed to
        :func:`gbm_jump_path` (required) and :func:`crash_path` (when it needs one).

        Example: ``PricePath.from_spec({"kind": "crash", "s0": 100.0, "steps": 10,
        "drop": 0.3, "start": 2, "duration": 3})``.
        """
        require(isinstance(spec, Mapping), "spec", "a dict with a 'kind' key", type(spec).__name__)
        kind = spec.get("kind")
        require(
            isinstance(kind, str) and kind in PATH_KINDS, "spec.kind", f"one of {PATH_KINDS}", kind
        )
        params = {key: val for key, val in spec.items() if key != "kind"}
        allowed = cls.SPEC_KEYS[kind]
        for key in params:
            require(
                key in allowed,
                f"spec.{key}",
                f"absent: not a key of kind {kind!r} (keys: {', '.join(allowed)})",
            )
        for key in cls.REQUIRED_KEYS[kind]:
            require(key in params, f"spec.{key}", f"given for kind {kind!r}")
        if kind == "gbm":
            marks = gbm_jump_path(rng=rng, **params)
        elif kind == "crash":
            marks = crash_path(rng=rng, **params)
        else:
            marks = replay_path(params["prices"])
            params = {}
        return cls(marks=marks, kind=kind, params=params)
