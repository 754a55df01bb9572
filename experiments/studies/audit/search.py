"""Best-response search: the most a strategic trader gains under a rule, by any strategy.

For each policy, a derivative-free optimiser (CMA-ES, the ``cma`` package) searches the
strategy space of :mod:`.strategy` for the strategy that maximises the strategic trader's
**net gain**: the ADL burden it sheds net of what the strategy costs it, against its honest
twin on common random numbers (the same world, the same marks; the strategy is the only
difference), as a share of the twin's ADL burden.  Per target, with ``W`` the owner's
wealth at the end of the measured steps (equity of all its accounts, less what it deposited,
plus what it withdrew) and ``b`` its ADL burden::

    shed  = b_H - b_G
    other = (W_G - W_H) - shed      # the wealth change the ADL burden does not explain
    gain  = shed + min(other, 0)    # the burden shed, less what the strategy cost

``other`` holds everything the strategy costs (taker fees, spread and impact of each leg,
the exposure an exit gives up, funding) and anything it earns outside ADL.  A cost is
charged; an earning outside ADL is not credited but reported as ``outside``: the largest of
them is strategic default (withdrawing free collateral before a crash the trader knows is
scripted, so that its bankruptcy is socialised), a venue's margin question, not its ADL
rule's.  So ``gain <= shed <= 1``, a strategy that does nothing gains exactly 0, and for
moves that keep the exposure the gain is the audit's ``G_net``.

Who plays.  In each training seed's audit world (:func:`experiments.studies.audit.world.
build_world`), the policy's honest world picks ``targets`` accounts that pay ADL, as the
scripted audit does; every strategy is played by each of them in turn (one strategic
trader at a time among the population).  A seed's gain is ``sum(gain) / sum(honest burden)``
over its targets; the search maximises the mean over the training seeds.

What is reported.  The best strategy found on the training seeds is replayed on held-out
seeds it never saw; its mean there is the policy's **exploitability**, with a t interval
over the held-out seeds (n reported).  Doing nothing is always available, so when the best
strategy found does not beat it on the training seeds the best response is "do nothing"
(exploitability 0).  The verdict reads the interval as the scripted audit does
(:func:`experiments.studies.audit.summary.reading`): "exploitable" when it lies above 0
with a material mean, "unexploitable within the searched space" when a material gain is
ruled out, "inconclusive" otherwise.  Each move of the best strategy is then switched off
in turn on the held-out seeds, to say which moves carry the gain.

Evaluations run on the sweep executors (local processes or Dask): one task per (training
seed, generation), each worker keeping its seeds' worlds; the optimiser's own draws come
from the run's seed stream, so the result is the same whatever the number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from experiments.metrics import confidence_interval
from experiments.studies.audit.runs import honest_run, pick_targets, policy_streams
from experiments.studies.audit.strategy import (
    COORDS,
    IDLE,
    MOVES,
    Strategy,
    after_wave,
    apply,
    decode,
    embed,
    moves_mask,
)
from experiments.studies.audit.summary import G_RANGE, reading
from experiments.studies.audit.world import (
    ActionRefused,
    AuditConfig,
    World,
    build_world,
    eligibility_for,
)
from market.adl import get_policy, policy_class
from market.errors import require
from market.exchange import Exchange

#: The verdicts of a searched policy.
SEARCH_VERDICTS = (
    "exploitable",
    "unexploitable within the searched space",
    "inconclusive",
    "no ADL burden to shed",
)


@dataclass(frozen=True)
class SearchConfig:
    """What a best-response search depends on (with the audit configuration and seeds).

    Attributes:
        budget: strategy evaluations per policy (each plays every target of every training
            seed).
        seeds: training seeds (``first_seed ..``).
        holdout: held-out seeds, after the training seeds.
        moves: the moves searched (names of :data:`experiments.studies.audit.strategy.MOVES`).
        popsize: CMA-ES population per generation (0: the package's default, 4 + 3 ln d).
        sigma0: CMA-ES initial step size on the unit cube.
        max_lead: the latest "steps before the wave" a strategy may act at.
        max_split: the most accounts a strategy may split into.
    """

    budget: int = 200
    seeds: int = 4
    holdout: int = 8
    moves: tuple[str, ...] = tuple(MOVES)
    popsize: int = 0
    sigma0: float = 0.3
    max_lead: int = 2
    max_split: int = 4

    def __post_init__(self) -> None:
        def pos_int(v: Any) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1

        require(pos_int(self.budget), "--budget", "an integer >= 1", self.budget)
        require(pos_int(self.seeds), "--seeds", "an integer >= 1", self.seeds)
        require(pos_int(self.holdout), "--holdout", "an integer >= 1", self.holdout)
        require(len(self.moves) >= 1, "--moves", f"one or more of {', '.join(MOVES)}")
        moves_mask(self.moves)  # names checked
        require(isinstance(self.popsize, int) and self.popsize >= 0, "popsize", "an integer >= 0")
        require(0 < self.sigma0 <= 1, "sigma0", "in (0, 1]", self.sigma0)
        require(isinstance(self.max_lead, int) and self.max_lead >= 0, "max_lead", ">= 0")
        require(isinstance(self.max_split, int) and self.max_split >= 2, "max_split", ">= 2")

    @property
    def dims(self) -> int:
        """How many coordinates the search varies."""
        return int(moves_mask(self.moves).sum())


# --------------------------------------------------------------------------- worlds
@dataclass
class LeadWorld:
    """One seed's world at each lead before the first wave.

    Attributes:
        world: the audit world (``pre`` just before the wave).
        starts: the exchange ``L`` steps before the wave, for ``L = 0 .. max_lead`` (fewer
            when the crash is younger; a later lead plays the earliest one kept).
        marks: the marks from each start through the measured steps (the wave step is
            index ``L``).
    """

    world: World
    starts: list[Exchange | None]
    marks: list[np.ndarray]


def build_lead_world(cfg: AuditConfig, seed: int, max_lead: int) -> LeadWorld:
    """The seed's audit world and its states up to ``max_lead`` steps before the wave."""
    world = build_world(cfg, seed, keep_before=max_lead)
    starts: list[Exchange | None] = [world.pre, *world.before]
    marks = [world.marks, *world.before_marks]
    return LeadWorld(world, starts, marks)


@dataclass
class SeedContext:
    """One (policy, seed)'s world, targets and honest outcomes, kept by a worker."""

    lead: LeadWorld
    policy_name: str
    cap: str
    targets: np.ndarray
    honest: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def policy_copy(self, ex: Exchange) -> Exchange:
        """A copy of ``ex`` under the policy and its eligibility."""
        policy = get_policy(self.policy_name)
        out = ex.clone(policy=policy, with_log=False)
        out.eligibility = eligibility_for(policy, self.cap)
        return out


def seed_context(cfg: AuditConfig, search: SearchConfig, policy: str, seed: int) -> SeedContext:
    """Build a (policy, seed) context: the lead world and the audit's targets for the policy."""
    lw = build_lead_world(cfg, seed, search.max_lead)
    w = lw.world
    if w.pre is None:
        return SeedContext(lw, policy, cfg.cap, np.zeros(0, dtype=np.int64))
    honest = honest_run(w.pre, w.marks, get_policy(policy), cfg.cap)
    pick_ss, _ = policy_streams(w, policy)
    targets = pick_targets(w.pre, honest, cfg.targets, pick_ss)
    return SeedContext(lw, policy, cfg.cap, targets)


def _play(
    ctx: SeedContext, lead: int, target: int, s: Strategy | None
) -> tuple[float, float, bool]:
    """(owner's wealth at the end, owner's ADL burden, refused) for one target and strategy.

    ``s=None`` plays the honest twin.  Wealth is the equity of the owner's accounts less the
    net collateral it put in (deposits minus withdrawals) since the start.
    """
    start = ctx.lead.starts[lead]
    assert start is not None
    ex = ctx.policy_copy(start)
    step0 = ex.step_no
    ext0 = ex.external
    done = None
    refused = False
    if s is not None:
        try:
            done = apply(ex, target, s)
        except ActionRefused:
            ex = ctx.policy_copy(start)  # the refused strategy leaves the world untouched
            refused = True
    flows = ex.external - ext0
    marks = ctx.lead.marks[lead]
    for i, m in enumerate(marks):
        ex.step(m)
        if i == lead and done is not None:
            e0 = ex.external
            after_wave(ex, target, done)
            flows += ex.external - e0
    group = ex.acc.group[: ex.n_accounts] == int(ex.acc.group[target])
    wealth = float(ex.equity()[group].sum()) - flows
    adl = ex.log.adl.to_array()
    adl = adl[adl["step"] > step0]
    mine = group[adl["account"]]
    burden = float(adl["haircut"][mine].sum())
    return wealth, burden, refused


def _honest(ctx: SeedContext, lead: int, target: int) -> tuple[float, float]:
    key = (lead, int(target))
    got = ctx.honest.get(key)  # type: ignore[arg-type]
    if got is None:
        w, b, _ = _play(ctx, lead, target, None)
        got = (w, b)
        ctx.honest[key] = got  # type: ignore[index]
    return got  # type: ignore[return-value]


def evaluate(ctx: SeedContext, s: Strategy) -> dict[str, float]:
    """One strategy in one (policy, seed): the seed's gain, burden shed and refusals.

    Returns ``gain`` (the targets' net gains summed over the sum of their honest burdens;
    NaN when the seed has no paying target), ``shed`` (the burden shed, same scale),
    ``outside`` (what the strategy earned outside ADL, not credited to ``gain``, same scale),
    ``burden`` (dollars, the targets' honest burden), ``refused`` (targets whose exchange
    refused a leg; they count as doing nothing).  See the module docstring.
    """
    nothing = {"gain": math.nan, "shed": math.nan, "outside": math.nan, "burden": 0.0}
    if ctx.targets.size == 0:
        return {**nothing, "refused": 0.0}
    lead = min(s.lead, len(ctx.lead.starts) - 1)
    gain = shed = outside = burden = 0.0
    refused = 0
    for t in ctx.targets.tolist():
        w_h, b_h = _honest(ctx, lead, t)
        if s.idle:
            w_g, b_g, r = w_h, b_h, False
        else:
            w_g, b_g, r = _play(ctx, lead, t, s)
        d_b = b_h - b_g
        other = (w_g - w_h) - d_b
        gain += d_b + min(other, 0.0)
        outside += max(other, 0.0)
        shed += d_b
        burden += b_h
        refused += int(r)
    if not burden > 0:
        return {**nothing, "refused": float(refused)}
    return {
        "gain": gain / burden,
        "shed": shed / burden,
        "outside": outside / burden,
        "burden": burden,
        "refused": float(refused),
    }


#: A worker's contexts, by (audit config, search config, policy, seed).
_CONTEXTS: dict[tuple, SeedContext] = {}


def _context(cfg: AuditConfig, search: SearchConfig, policy: str, seed: int) -> SeedContext:
    key = (cfg, search.max_lead, policy, int(seed))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        if len(_CONTEXTS) > 64:
            _CONTEXTS.clear()
        ctx = seed_context(cfg, search, policy, seed)
        _CONTEXTS[key] = ctx
    return ctx


def evaluate_task(
    cfg: AuditConfig,
    search: SearchConfig,
    policy: str,
    seed: int,
    strategies: Sequence[Strategy],
) -> list[dict[str, float]]:
    """Task body: every strategy of a batch on one (policy, seed) (the worker keeps the world)."""
    ctx = _context(cfg, search, policy, seed)
    return [evaluate(ctx, s) for s in strategies]


# --------------------------------------------------------------------------- the search
@dataclass
class PolicySearch:
    """What the search found for one policy.

    Attributes:
        policy: the policy.
        strategy: the best response found (``Strategy()`` = do nothing).
        train_gain: its mean gain over the training seeds (optimistic: it was chosen there).
        train_best: the best training gain the optimiser saw, before moves that add less
            than a tenth of the materiality threshold were dropped (see ``_simplest``).
        exploitability, ci_low, ci_high, n: its mean gain on the held-out seeds, the interval
            and how many held-out seeds had a paying target.
        shed, cost: the burden it sheds and what it costs on the held-out seeds (shares of the
            honest burden; ``shed - cost = exploitability``).
        outside: what it earned outside ADL on the held-out seeds (not credited to the
            exploitability; share of the honest burden, see the module docstring).
        refused: the share of held-out targets whose exchange refused a leg of it.
        verdict: one of :data:`SEARCH_VERDICTS` (the last when no held-out seed had an
            account paying ADL: the rule names its own shortfall bearer, or nobody paid).
        moves: per move of the best strategy, the held-out gain with that move switched off.
        curve: one row per generation (evaluations, best so far, generation median).
        evaluations: strategies evaluated.
    """

    policy: str
    strategy: Strategy
    train_gain: float
    exploitability: float
    ci_low: float
    ci_high: float
    n: int
    shed: float
    cost: float
    outside: float
    refused: float
    verdict: str
    moves: dict[str, float]
    curve: list[dict[str, float]]
    evaluations: int
    train_best: float = math.nan

    def row(self) -> dict[str, Any]:
        """The summary row (CSV and JSON): figures, the strategy in words and parameters."""
        out: dict[str, Any] = {
            "policy": self.policy,
            "exploitability": self.exploitability,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "train_gain": self.train_gain,
            "train_best": self.train_best,
            "shed": self.shed,
            "cost": self.cost,
            "outside": self.outside,
            "refused": self.refused,
            "verdict": self.verdict,
            "strategy": self.strategy.describe(),
            "evaluations": self.evaluations,
        }
        out.update({f"param_{k}": v for k, v in self.strategy.as_dict().items()})
        out.update({f"without_{k}": v for k, v in self.moves.items()})
        return out


def _mean_gain(rows: list[dict[str, float]]) -> float:
    """The mean seed gain over seeds with a paying target (-inf when none has one)."""
    g = [r["gain"] for r in rows if np.isfinite(r["gain"])]
    return float(np.mean(g)) if g else -math.inf


class _Evaluator:
    """Evaluates batches of strategies over a set of seeds on a pool (or in this process)."""

    def __init__(self, cfg: AuditConfig, search: SearchConfig, policy: str, pool: Any) -> None:
        self.cfg, self.search, self.policy, self.pool = cfg, search, policy, pool

    def __call__(self, strategies: list[Strategy], seeds: Sequence[int]) -> list[list[dict]]:
        """Per strategy, its per-seed result rows (seed order)."""
        if self.pool is None:
            per_seed = [
                evaluate_task(self.cfg, self.search, self.policy, s, strategies) for s in seeds
            ]
        else:
            futs = [
                self.pool.executor.submit(
                    evaluate_task, self.cfg, self.search, self.policy, s, strategies
                )
                for s in seeds
            ]
            per_seed = [f.result() for f in futs]
        return [[per_seed[j][i] for j in range(len(seeds))] for i in range(len(strategies))]


def search_policy(
    cfg: AuditConfig,
    search: SearchConfig,
    policy: str,
    *,
    pool: Any = None,
    seed_seq: np.random.SeedSequence | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> PolicySearch:
    """Search the best response to ``policy`` (CMA-ES), then measure it on held-out seeds."""
    import cma

    mask = moves_mask(search.moves)
    train = list(range(cfg.first_seed, cfg.first_seed + search.seeds))
    held = list(range(train[-1] + 1, train[-1] + 1 + search.holdout))
    ev = _Evaluator(cfg, search, policy, pool)
    ss = seed_seq if seed_seq is not None else np.random.SeedSequence(cfg.first_seed)
    cma_seed = int(ss.generate_state(1)[0] % (2**31 - 2)) + 1

    def strat(free: np.ndarray) -> Strategy:
        return decode(embed(free, mask), max_lead=search.max_lead, max_split=search.max_split)

    d = int(mask.sum())
    opts: dict[str, Any] = {
        "bounds": [0.0, 1.0],
        "seed": cma_seed,
        "verbose": -9,
        "maxfevals": search.budget,
    }
    if search.popsize:
        opts["popsize"] = search.popsize
    # start at doing nothing: every move is explored from its idle point outwards
    x0 = np.array([IDLE[c] for c, on in zip(COORDS, mask, strict=True) if on])
    if d == 1:  # cma needs two dimensions: a dummy one the objective ignores
        x0 = np.append(x0, 0.5)
    es = cma.CMAEvolutionStrategy(x0, search.sigma0, opts)
    best = (0.0, Strategy())  # doing nothing gains exactly 0
    curve: list[dict[str, float]] = []
    done = 0
    while done < search.budget and not es.stop():
        xs = es.ask()
        xs = xs[: search.budget - done]
        strategies = [strat(np.asarray(x)[:d]) for x in xs]
        results = ev(strategies, train)
        gains = [_mean_gain(r) for r in results]
        done += len(xs)
        for g, s in zip(gains, strategies, strict=True):
            if g > best[0] + 1e-12:
                best = (g, s)
        if len(xs) == es.popsize:  # a generation cut short by the budget is not told
            es.tell(xs, [-g if np.isfinite(g) else 1e9 for g in gains])
        finite = [g for g in gains if np.isfinite(g)]
        curve.append(
            {
                "generation": len(curve) + 1,
                "evaluations": done,
                "best": best[0],
                "median": float(np.median(finite)) if finite else math.nan,
            }
        )
        if progress is not None:
            progress(policy, done, best[0])
        if len(xs) < es.popsize:
            break
    strategy, train_gain = _simplest(best[1], best[0], cfg.threshold / 10, train, ev)
    out = _held_out(cfg, search, policy, strategy, train_gain, held, ev, curve, done)
    out.train_best = float(best[0])
    return out


def _simplest(
    s: Strategy, gain: float, tol: float, train: list[int], ev: _Evaluator
) -> tuple[Strategy, float]:
    """``s`` without the moves that add no more than ``tol`` to its training gain.

    Moves are dropped one at a time (in :data:`MOVES` order) while the training gain stays
    within ``tol`` of the full strategy's; a strategy whose training gain is at most ``tol``
    is replaced by doing nothing (gain 0): nothing beyond noise was found.
    """
    if gain <= tol:
        return Strategy(), 0.0
    for move in _used_moves(s):
        simpler = _switched_off(s, move)
        g = _mean_gain(ev([simpler], train)[0]) if not simpler.idle else 0.0
        if g >= gain - tol:
            s = simpler
    g = _mean_gain(ev([s], train)[0]) if not s.idle else 0.0
    return s, g


def _switched_off(s: Strategy, move: str) -> Strategy:
    """``s`` with one move switched off."""
    off = {
        "timing": {"lead": 0},
        "exit": {"exit": 0.0},
        "reset": {"reset": 0.0},
        "split": {"split": 1},
        "margin": {"margin": 0.0},
    }[move]
    return replace(s, **off)


def _used_moves(s: Strategy) -> list[str]:
    used = []
    if s.lead > 0:
        used.append("timing")
    if s.exit > 0:
        used.append("exit")
    if s.reset > 0:
        used.append("reset")
    if s.split > 1:
        used.append("split")
    if s.margin != 0:
        used.append("margin")
    return used


def _held_out(
    cfg: AuditConfig,
    search: SearchConfig,
    policy: str,
    strategy: Strategy,
    train_gain: float,
    held: list[int],
    ev: _Evaluator,
    curve: list[dict[str, float]],
    evaluations: int,
) -> PolicySearch:
    """Measure the best strategy (and it with each move switched off) on the held-out seeds."""
    used = _used_moves(strategy)
    variants = [strategy, *(_switched_off(strategy, m) for m in used)]
    results = ev(variants, held)
    rows = results[0]
    ok = [r for r in rows if np.isfinite(r["gain"])]
    gains = np.array([r["gain"] for r in ok])
    ci = confidence_interval(gains, cfg.level, G_RANGE)  # gain <= shed <= 1
    shed = float(np.mean([r["shed"] for r in ok])) if ok else math.nan
    outside = float(np.mean([r["outside"] for r in ok])) if ok else math.nan
    targets = cfg.targets * max(len(ok), 1)
    refused = float(sum(r["refused"] for r in ok)) / targets if ok else math.nan
    verdict = {
        "pays": SEARCH_VERDICTS[0],
        "does not pay": SEARCH_VERDICTS[1],
    }.get(reading(ci.mean, ci.low, ci.high, cfg.threshold), SEARCH_VERDICTS[2])
    if strategy.idle and ok:  # nothing beat doing nothing: 0 exactly, by construction
        verdict = SEARCH_VERDICTS[1]
    if not ok:  # no held-out seed had an account paying ADL under this rule
        verdict = SEARCH_VERDICTS[3]
    moves = {m: _mean_gain(r) for m, r in zip(used, results[1:], strict=True)}
    return PolicySearch(
        policy=policy,
        strategy=strategy,
        train_gain=float(train_gain),
        exploitability=ci.mean,
        ci_low=ci.low if ci.n > 1 else math.nan,
        ci_high=ci.high if ci.n > 1 else math.nan,
        n=ci.n,
        shed=shed,
        cost=shed - ci.mean if ok else math.nan,
        outside=outside,
        refused=refused,
        verdict=verdict,
        moves=moves,
        curve=curve,
        evaluations=evaluations,
    )


@dataclass
class SearchResult:
    """Every policy's search, and what produced it."""

    policies: list[PolicySearch]
    config: AuditConfig
    search: SearchConfig
    executor: str = "local"

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per policy."""
        return [p.row() for p in self.policies]


def run_search(
    cfg: AuditConfig,
    search: SearchConfig,
    policies: Sequence[str],
    *,
    executor: str = "local",
    workers: int | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> SearchResult:
    """Search every policy's best response (policies in turn, evaluations in parallel).

    Each policy's optimiser draws from its own child of the run's seed sequence (keyed by
    the policy's stream slot, as the scripted audit's target streams are), so adding a policy
    does not change another's search.

    Raises:
        InputError: for an unknown policy, executor or worker count, or a bad search setting.
    """
    from experiments.runs.runner import open_pool

    for p in policies:
        policy_class(p)
    root = np.random.SeedSequence([cfg.first_seed, 0x5EA4C4])
    pool = open_pool(executor, workers)
    one = pool.workers == 1 and executor == "local"
    try:
        out = []
        for name in policies:
            slot = _policy_slot(name)
            ss = np.random.SeedSequence(root.entropy, spawn_key=(slot,))
            out.append(
                search_policy(
                    cfg, search, name, pool=None if one else pool, seed_seq=ss, progress=progress
                )
            )
    finally:
        pool.close()
    return SearchResult(out, cfg, search, executor)


def _policy_slot(name: str) -> int:
    from experiments.studies.audit.runs import _slot
    from market.adl import POLICIES

    return _slot(name, {p: i for i, p in enumerate(POLICIES)})


__all__ = [
    "COORDS",
    "SEARCH_VERDICTS",
    "LeadWorld",
    "PolicySearch",
    "SearchConfig",
    "SearchResult",
    "SeedContext",
    "build_lead_world",
    "evaluate",
    "evaluate_task",
    "run_search",
    "search_policy",
    "seed_context",
]
