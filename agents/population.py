"""Who arrives and who copies whom between crises: entry and imitation families.

Both are behavioural assumptions with no published calibration for ADL, so each is a named
family in the scenario and the ``robustness`` experiment checks conclusions across them.

Entry (``EntrySpec.family``): the expected number of entrants after a crisis is
``rate * traders * g(z)`` with ``z = sensitivity * badness`` (badness: the crisis' haircuts and
bad debt over active equity):

* ``exponential``: ``g = exp(-z)`` (smooth deterrence; the behaviour so far).
* ``linear``: ``g = max(0, 1 - z)`` (deterrence proportional to the record, entry stops at z=1).
* ``step``: ``g = 1`` for ``z < 1``, else 0 (newcomers ignore a record until it crosses a line).

Imitation (``ImitationSpec.family``): a trader meeting another whose return beat its own by
``gap`` switches to the other's strategy with probability

* ``proportional``: ``min(1, rate * max(gap, 0) / scale)`` (proportional imitation, Schlag
  1998, Journal of Economic Theory 78: only better strategies are copied);
* ``fermi``: ``rate / (1 + exp(-gap / scale))`` (the Fermi rule of noisy imitation, Szabo and
  Toke 1998, Physical Review E 58: worse strategies are sometimes copied).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from market.errors import require

__all__ = [
    "ENTRY_FAMILIES",
    "IMITATION_FAMILIES",
    "entry_factor",
    "imitation_probability",
    "poisson_quantile",
]

#: Entry deterrence families (see the module docstring).
ENTRY_FAMILIES = ("exponential", "linear", "step")
#: Imitation switching rules (see the module docstring).
IMITATION_FAMILIES = ("proportional", "fermi")


def entry_factor(family: str, z: float) -> float:
    """The share of the usual entrants who still arrive after a record of ``z`` (>= 0)."""
    require(family in ENTRY_FAMILIES, "entry.family", f"one of {', '.join(ENTRY_FAMILIES)}", family)
    z = max(float(z), 0.0)
    if family == "exponential":
        return float(np.exp(-z))
    if family == "linear":
        return max(0.0, 1.0 - z)
    return 1.0 if z < 1.0 else 0.0


def imitation_probability(family: str, rate: float, gap: np.ndarray, scale: float) -> np.ndarray:
    """Per trader, the probability of switching to the strategy of one met with return ``gap``
    above its own (vectorised; values in [0, rate] for ``fermi``, [0, 1] for ``proportional``)."""
    require(
        family in IMITATION_FAMILIES,
        "imitation.family",
        f"one of {', '.join(IMITATION_FAMILIES)}",
        family,
    )
    gap = np.asarray(gap, dtype=np.float64)
    if family == "proportional":
        return np.clip(rate * gap / scale, 0.0, 1.0)
    z = np.clip(gap / scale, -700.0, 700.0)
    return rate / (1.0 + np.exp(-z))


def poisson_quantile(q: float, mu: float) -> float:
    """``scipy.stats.poisson.ppf(q, mu)`` for ``0 <= q < 1`` and ``mu > 0``, without the
    distribution's argument handling (scipy's own steps: the ``pdtrik`` guess, then one
    ``pdtr`` check of the value below it; ``-1`` at ``q = 0``, the support's start minus 1)."""
    if q == 0:
        return -1.0
    vals = float(np.ceil(special.pdtrik(q, mu)))
    below = max(vals - 1.0, 0.0)
    return below if special.pdtr(below, mu) >= q else vals
