"""Who leaves after a crisis: churn hazard families over the haircut share.

A trader's haircut share is ``x = h / w``: what ADL took from it in the crisis over its base
``w`` (equity at the crisis start, or positive unrealised PnL then, ``ChurnSpec.base``).  The
probability of leaving is one of these families; which one holds is not known, and the ranking
of rules on retention depends on it (a concave hazard makes many small haircuts cost more
leavers than a few large ones; a convex or threshold hazard the reverse), so the family is a
scenario choice and every behavioural conclusion should be checked across them.

* ``exponential``: ``1 - exp(-beta x - surprise |x - mean| [x > 0])``.  The form is an
  assumption; ``beta = 5`` is the papers' sensitivity (Chitra, arXiv 2512.01112, on a PnL
  base: on an equity base it is about 4x weaker per dollar); ``surprise`` has no source.
* ``linear``: ``min(1, beta x + surprise |x - mean| [x > 0])``.  Assumption.
* ``power`` (convex): ``min(1, (x / scale)^power)``; small haircuts are shrugged off, large
  ones drive traders away.  Assumption.
* ``logistic`` (threshold): ``sigma(steepness (x - threshold)) [x > 0]``: traders tolerate
  haircuts up to a threshold.  Assumption.
* ``predictability``: ``1 - exp(-beta |x - xhat|)``: what drives leaving is the gap between the
  haircut and what the trader could foresee, ``xhat`` the mean share of the traders who saw the
  same signal (the venue's published ADL light).  Under pro-rata everyone foresees the common
  share; under a queue the lit accounts foresee being hit.  Assumption (the seed essay's
  argument that unpredictable losses cost more customer value than predictable ones).

:data:`CHURN_FAMILIES` names them; :func:`leave_probability` evaluates one, vectorised.
"""

from __future__ import annotations

import numpy as np

from market.errors import require

__all__ = ["CHURN_BASES", "CHURN_FAMILIES", "foreseen_share", "leave_probability"]

#: Churn hazard families (see the module docstring).
CHURN_FAMILIES = ("exponential", "linear", "power", "logistic", "predictability")
#: What a haircut share is measured against.
CHURN_BASES = ("equity", "pnl")


def foreseen_share(x: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Per trader, the mean haircut share of the traders who saw the same ``signal``."""
    x = np.asarray(x, dtype=np.float64)
    sig = np.asarray(signal)
    if x.size == 0:
        return x.copy()
    keys, inv = np.unique(sig, return_inverse=True)
    mean = np.bincount(inv, weights=x, minlength=keys.size) / np.bincount(inv, minlength=keys.size)
    return mean[inv]


def leave_probability(
    x: np.ndarray,
    family: str = "exponential",
    *,
    beta: float = 5.0,
    surprise: float = 0.0,
    mean: float = 0.0,
    power: float = 2.0,
    scale: float = 0.2,
    threshold: float = 0.1,
    steepness: float = 50.0,
    foreseen: np.ndarray | None = None,
) -> np.ndarray:
    """The probability of leaving for haircut shares ``x`` (>= 0) under ``family``.

    ``mean`` is the venue-wide share (for ``surprise``); ``foreseen`` the share each trader
    could foresee (``predictability`` only; see :func:`foreseen_share`).  Traders with no
    haircut get 0 in every family.

    Raises:
        InputError: for an unknown family or a missing ``foreseen``.
    """
    require(family in CHURN_FAMILIES, "churn.family", f"one of {', '.join(CHURN_FAMILIES)}", family)
    x = np.asarray(x, dtype=np.float64)
    hit = x > 0
    with np.errstate(over="ignore", invalid="ignore"):
        if family in ("exponential", "linear"):
            hazard = beta * x + surprise * np.abs(x - mean) * hit
            p = 1.0 - np.exp(-hazard) if family == "exponential" else np.minimum(hazard, 1.0)
        elif family == "power":
            p = np.minimum((x / scale) ** power, 1.0)
        elif family == "logistic":
            p = 1.0 / (1.0 + np.exp(-steepness * (x - threshold)))
        else:
            require(foreseen is not None, "churn.foreseen", "the foreseen shares (predictability)")
            p = 1.0 - np.exp(-beta * np.abs(x - np.asarray(foreseen, dtype=np.float64)))
    return np.where(hit, np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0), 0.0)
