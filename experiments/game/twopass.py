"""The two-pass counterfactual: what an ADL wave really took from its winners.

As in Chitra's ADL papers: replay the same wave twice on the same price path, once with
the exchange's ADL policy (pass A) and once without it (pass B: a copy with ``policy=None``,
so the uncovered deficit is written off as bad debt instead), and compare the winners' equity
at the end of the wave and after a horizon of further steps:

    W      = accounts that paid ADL in pass A at step t (haircut > 0)
    H(h)   = sum over W of (equity_B - equity_A)_+ after h further steps
    O(h)   = H(h) - B_needed,  B_needed = the deficit the backstop left at step t (the
             deficit-based need, not the severity-scaled budget)

As the online-learning paper does (Chitra et al., arXiv 2602.15182), over- and undershoot are
reported apart: ``over(h) = (H(h) - B_needed)_+`` and ``under(h) = (B_needed - H(h))_+``; a
game sums them over waves, so an overshoot in one wave never hides an undershoot in another.

At h = 0, H is what ADL debited (the exchange closes lots at the mark and debits the haircut,
so a winner's equity drops by exactly its haircut): O(0) is the lot-rounding overshoot under
budget execution at full severity, the position-sized over- or under-deleveraging under
position execution, and ``-(1 - theta) * need`` for a severity below 1.  At h > 0 allocations
that close different positions part: a winner whose kept lots are liquidated later in pass B,
or whose missed move turns its delta negative (clipped at 0 per winner), counts differently
from one that is not.
For h > 0 the winners of pass B still hold the lots pass A closed, so they keep those lots'
later gains or losses: per winner, delta(h) = haircut + (lots closed) * lot size * (the later
move in the winners' favour), clipped at 0 in H.  That is the horizon curve.

Isolation.  Between step t and t + h nothing but the marks changes: no agent acts, the market
maker's depth stays where it was at step t, and (by default, ``isolate=True``) pass A runs the
later steps without its ADL policy too, so later liquidations are written off as bad debt in
both passes and the difference between them is the wave at step t alone.  With
``isolate=False`` pass A keeps its policy and later waves add to H(h).

Cost.  :class:`TwoPassRecorder` copies the exchange before every crisis step and replays the
steps with ADL twice (pass A reuses the copy, pass B is one more copy).  Copies are made with
:func:`light_clone`: ``Exchange.clone`` minus the event log, which grows all run and is the
only part of the exchange whose copy cost grows with time.  The replay itself costs one
waterfall per pass and replayed step, 2 (1 + max horizon) waterfalls per ADL step.
:func:`measure_clone_cost` measures the copy costs for any game (``adlgame bench`` holds the
figures).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from market.accounts import BOOK, VAULT
from market.errors import require
from market.exchange import Exchange
from market.waterfall import StepReport

if TYPE_CHECKING:
    from experiments.game.model import ADLGame

__all__ = [
    "DEFAULT_HORIZONS",
    "TwoPassRecorder",
    "light_clone",
    "measure_clone_cost",
    "step_figures",
    "two_pass_wave",
]

#: Horizons (further steps after the wave) at which H is measured by default.
DEFAULT_HORIZONS: tuple[int, ...] = (0, 1, 2, 5)


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    """Unique sorted non-negative integer horizons (InputError otherwise)."""
    hs = list(horizons) if not isinstance(horizons, int | np.integer) else [horizons]
    ok = len(hs) > 0 and all(
        isinstance(h, int | np.integer) and not isinstance(h, bool) and h >= 0 for h in hs
    )
    require(ok, "horizons", "a non-empty sequence of integers >= 0", list(hs)[:6])
    return tuple(sorted({int(h) for h in hs}))


def _check_path(exchange: Exchange, marks_path: Any, t: Any) -> np.ndarray:
    """The marks path as a (T+1, K) float array; ``t`` must be the exchange's next step."""
    require(isinstance(exchange, Exchange), "exchange_before", "an Exchange", type(exchange))
    path = np.asarray(marks_path, dtype=np.float64)
    if path.ndim == 1 and exchange.K == 1:
        path = path[:, None]
    require(
        path.ndim == 2 and path.shape[1] == exchange.K,
        "marks_path",
        f"an array of shape (steps + 1, {exchange.K})",
        path.shape,
    )
    require(
        bool(np.all(np.isfinite(path))) and bool(np.all(path > 0)),
        "marks_path",
        "finite prices > 0",
        "bad value",
    )
    require(
        isinstance(t, int | np.integer) and not isinstance(t, bool) and 1 <= t < path.shape[0],
        "t",
        f"an integer in [1, {path.shape[0] - 1}]",
        t,
    )
    require(
        int(t) == exchange.step_no + 1,
        "t",
        f"the exchange's next step, exchange_before.step_no + 1 = {exchange.step_no + 1}",
        t,
    )
    return path


def light_clone(exchange: Exchange, *, policy: Any = "same") -> Exchange:
    """A deep copy of ``exchange`` with a fresh, empty event log (``clone(with_log=False)``)."""
    require(isinstance(exchange, Exchange), "exchange", "an Exchange", type(exchange))
    return exchange.clone(policy=policy, with_log=False)


def _trader_mask(ex: Exchange) -> np.ndarray:
    return (ex.acc.flags & (BOOK | VAULT)) == 0


def two_pass_wave(
    exchange_before: Exchange,
    marks_path: Any,
    t: int,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    *,
    isolate: bool = True,
    consume: bool = False,
) -> dict[str, Any]:
    """Replay step ``t`` with and without ADL and measure what ADL took from its winners.

    Args:
        exchange_before: the exchange as it was just before step t's waterfall (after step
            t-1, with the step's book depth already set); it must have an ADL policy.
            Left unchanged unless ``consume`` is True.
        marks_path: marks of every step, row s = marks of step s (shape (T+1, K); a 1-d path
            is accepted for one market).
        t: the step to replay; must equal ``exchange_before.step_no + 1``.
        horizons: further steps after the wave at which H is measured; the replay stops at
            the end of the path (see ``reached``).
        isolate: run the later steps of pass A without ADL, so only wave t differs between
            the passes (default).  False keeps the policy in pass A for the later steps.
        consume: use ``exchange_before`` itself as pass A (saves one deep copy); it is then
            stepped forward and must not be used as "before" again.

    Returns:
        A dict with
        ``step`` (t); ``horizons``; ``H``, ``overshoot`` (H - B_needed), ``over`` and
        ``under`` (its positive and negative parts; dicts horizon -> dollars);
        ``reached`` (horizon -> further steps actually replayed, less than h at the end of the
        path); ``B_needed`` (the deficit left after the backstop at t, what ADL needed to
        raise); ``target`` (what A's policies were asked to raise); ``raised`` (A's ADL at t);
        ``deficit`` and ``backstop_used`` (step t, the same in both passes); ``bad_debt_B``
        (what pass B wrote off at t); ``waves`` (ADL waves at t); ``winners`` (account ids
        W); ``haircut`` and ``lots_closed`` (per winner, pass A at t); ``delta`` (per winner,
        equity_B - equity_A at h = 0); ``bystander_delta`` (sum over the other trader accounts
        of |equity_B - equity_A| at h = 0, which is 0 when ADL touched nobody else).

    Raises:
        InputError: bad path, step, horizons, or an exchange without an ADL policy.
    """
    path = _check_path(exchange_before, marks_path, t)
    hs = _check_horizons(horizons)
    require(
        exchange_before.policy is not None,
        "exchange_before.policy",
        "an ADL policy (pass A runs with it)",
        None,
    )
    t = int(t)
    b = light_clone(exchange_before, policy=None)
    a = exchange_before if consume else light_clone(exchange_before)
    n0 = len(a.log.adl)
    rep_a = a.step(path[t])
    rep_b = b.step(path[t])
    fills = a.log.adl.to_array()[n0:]
    paid = fills[fills["haircut"] > 0]
    winners, inv = np.unique(paid["account"], return_inverse=True)
    haircut = np.bincount(inv, weights=paid["haircut"], minlength=winners.size)
    lots = np.bincount(inv, weights=paid["lots"], minlength=winners.size).astype(np.int64)
    if isolate:
        a.policy = None

    bystanders = _trader_mask(a)
    bystanders[winners] = False
    H: dict[int, float] = {}
    reached: dict[int, int] = {}
    delta0 = np.zeros(winners.size)
    spill = 0.0
    done = 0
    last_row = path.shape[0] - 1
    for h in hs:
        while done < h and t + done < last_row:
            done += 1
            a.step(path[t + done])
            b.step(path[t + done])
        diff = b.equity() - a.equity()
        d_w = diff[winners]
        H[h] = float(np.maximum(d_w, 0.0).sum())
        reached[h] = done
        if h == 0:
            delta0 = d_w.copy()
            spill = float(np.abs(diff[bystanders]).sum())
    if 0 not in H:  # the h = 0 figures are always reported
        delta0 = np.zeros(winners.size)
    need = float(rep_a.adl_budget)
    return {
        "step": t,
        "horizons": hs,
        "H": H,
        "overshoot": {h: H[h] - need for h in hs},
        "over": {h: max(H[h] - need, 0.0) for h in hs},
        "under": {h: max(need - H[h], 0.0) for h in hs},
        "reached": reached,
        "B_needed": need,
        "target": float(rep_a.adl_target),
        "raised": float(rep_a.adl_raised),
        "deficit": float(rep_a.deficit),
        "backstop_used": float(rep_a.backstop_used),
        "bad_debt_B": float(rep_b.residual),
        "waves": len(rep_a.waves),
        "winners": winners,
        "haircut": haircut,
        "lots_closed": lots,
        "delta": delta0,
        "bystander_delta": spill,
    }


def step_figures(exchange: Exchange, step: int) -> dict[str, float]:
    """Deficit, ADL budget and ADL raised of one past step, read from the exchange's log.

    The same figures a :class:`~market.waterfall.StepReport` carries, for callers that did not
    keep the report (the game's ``step`` does not return it).
    """
    require(isinstance(exchange, Exchange), "exchange", "an Exchange", type(exchange))
    waves = exchange.log.waves.to_array()
    w = waves[waves["step"] == step]
    bk = exchange.log.bankruptcies.to_array()
    d = bk[bk["step"] == step]
    return {
        "deficit": float(d["deficit"].sum()),
        "adl_budget": float(w["budget"].sum()),
        "adl_raised": float(w["raised"].sum()),
    }


class TwoPassRecorder:
    """Runs :func:`two_pass_wave` on every step of a game where ADL raised money.

    Call :meth:`before` just before each step of the game and :meth:`after` just after it:

        rec = TwoPassRecorder()
        while game.running:
            rec.before(game)
            game.step()
            rec.after(game)            # or rec.after(game, step_report) when you have it

    ``before`` keeps a deep copy of the exchange (without its log, see :func:`light_clone`)
    only when the coming step is a crisis step (every step with ``crisis_only=False``) and the
    exchange has an ADL policy; it never changes the game.  ``after`` replays the step on that
    copy with and without ADL when the step raised ADL money, and appends one row.

    The copy is taken before the game's market maker sets the step's book depth, so ``after``
    gives the copy the depth the real step ran with (``exchange.depth_scale``, which only the
    maker changes, before the waterfall) and checks the replay: ``replay_error`` is
    |raised in pass A - raised in the real step| and should be 0.

    Args:
        horizons: further steps after the wave at which H is measured.
        isolate: see :func:`two_pass_wave`.
        crisis_only: copy only before crisis steps (the default) or before every step.

    Attributes:
        rows: one dict per replayed step (see :meth:`frame` for the columns).
        last: the full result of the last :func:`two_pass_wave` call (per-account arrays).
    """

    def __init__(
        self,
        horizons: Sequence[int] = DEFAULT_HORIZONS,
        *,
        isolate: bool = True,
        crisis_only: bool = True,
    ) -> None:
        self.horizons = _check_horizons(horizons)
        self.isolate = bool(isolate)
        self.crisis_only = bool(crisis_only)
        self.rows: list[dict[str, Any]] = []
        self.last: dict[str, Any] | None = None
        self._before: Exchange | None = None

    def columns(self) -> list[str]:
        """Column names of :meth:`frame`, in order."""
        return [
            "step",
            "crisis",
            "waves",
            "winners",
            "deficit",
            "B_needed",
            "raised",
            *(f"H_{h}" for h in self.horizons),
            *(f"overshoot_{h}" for h in self.horizons),
            *(f"over_{h}" for h in self.horizons),
            *(f"under_{h}" for h in self.horizons),
            "bad_debt_B",
            "max_reached",
            "replay_error",
        ]

    @staticmethod
    def _coming_phase(game: ADLGame) -> str | None:
        """Phase of the game's next step ("calm" / "crisis"), None after the last step."""
        return game.phase_of_step(game.t + 1)

    def before(self, game: ADLGame) -> None:
        """Keep a copy of the exchange when the coming step may need a two-pass replay."""
        self._before = None
        ex = game.exchange
        if ex.policy is None:
            return
        phase = self._coming_phase(game)
        if phase is None or (self.crisis_only and phase != "crisis"):
            return
        self._before = light_clone(ex)

    def after(self, game: ADLGame, rep: StepReport | None = None) -> dict[str, Any] | None:
        """Replay the step just run if it raised ADL money; returns the new row (or None).

        ``rep`` is the step's :class:`~market.waterfall.StepReport`; without it the figures
        are read from the exchange's log (:func:`step_figures`).
        """
        before, self._before = self._before, None
        ex = game.exchange
        if before is None or ex.step_no != before.step_no + 1:
            return None
        real = (
            {"adl_raised": float(rep.adl_raised)}
            if rep is not None
            else step_figures(ex, ex.step_no)
        )
        if real["adl_raised"] <= 0:
            return None
        before.depth_scale[:] = ex.depth_scale
        res = two_pass_wave(
            before,
            game.marks_path,
            ex.step_no,
            self.horizons,
            isolate=self.isolate,
            consume=True,
        )
        self.last = res
        row: dict[str, Any] = {
            "step": res["step"],
            "crisis": int(game.crisis_of_step(res["step"])),
            "waves": res["waves"],
            "winners": int(res["winners"].size),
            "deficit": res["deficit"],
            "B_needed": res["B_needed"],
            "raised": res["raised"],
        }
        row.update({f"H_{h}": res["H"][h] for h in self.horizons})
        row.update({f"overshoot_{h}": res["overshoot"][h] for h in self.horizons})
        row.update({f"over_{h}": res["over"][h] for h in self.horizons})
        row.update({f"under_{h}": res["under"][h] for h in self.horizons})
        row["bad_debt_B"] = res["bad_debt_B"]
        row["max_reached"] = max(res["reached"].values())
        row["replay_error"] = abs(res["raised"] - real["adl_raised"])
        self.rows.append(row)
        return row

    def frame(self) -> pd.DataFrame:
        """The recorded rows as a DataFrame (fixed columns, also when empty)."""
        return pd.DataFrame(self.rows, columns=self.columns())


def measure_clone_cost(game: ADLGame, repeat: int = 3) -> dict[str, float]:
    """Best-of-``repeat`` seconds to copy ``game.exchange`` (with and without its log).

    A benchmark helper for the cost table in this module's docstring; it does not change the
    game.  Returns ``rows`` (accounts), ``log_rows`` (trade log), ``clone`` (full
    ``Exchange.clone``) and ``light_clone`` seconds.
    """
    ex = game.exchange
    out = {"rows": float(ex.n_accounts), "log_rows": float(len(ex.log.trades))}
    for name, fn in (("clone", ex.clone), ("light_clone", lambda: light_clone(ex))):
        best = np.inf
        for _ in range(max(int(repeat), 1)):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = float(best)
    return out
