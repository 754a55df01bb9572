"""The market game: a Mesa model of heterogeneous traders on an exchange through crises.

A run alternates calm periods (trading, funding, fees, rebalancing) and crises (a crash
drawn up front, market makers withdrawing depth, the exchange's waterfall and ADL every
step).  After each crisis traders churn (``p = 1 - exp(-beta h/w - surprise |h/w - mean|)``),
whales learn their leverage, Sybil owners re-arrange, entrants arrive at a rate that falls
with the venue's record, and the backstop's LPs refill part of its gap.

Common random numbers.  One :class:`numpy.random.SeedSequence` per run is split into named
streams.  Everything exogenous is drawn up front or at fixed shapes: the crisis schedule
(``crises``), the calm and crisis price shocks (``prices``, one vector per step), the starting
population (``population``).  Per-trader decisions read a uniform from a table indexed by
the trader's ``uid`` (creation order), drawn per (decision, step) from its own child seed, so a
trader's draw does not depend on which other traders are alive.  Two runs with the same seed
and different policies therefore see the same prices, crises and population, and the same
draws for the same trader, until their histories differ.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress

import mesa
import numpy as np

from agents import (
    BackstopLP,
    Entrant,
    Flipper,
    MarketMaker,
    Members,
    PassiveTrader,
    SybilOwner,
    Trader,
    Whale,
)
from agents.base import TYPE_NAMES, target_orders
from agents.churn import foreseen_share, leave_probability
from agents.population import entry_factor, imitation_probability, poisson_quantile
from experiments.game.popularity import coin_names, draw_markets, market_shares
from experiments.game.scenario import Scenario
from experiments.game.seeding import FixedSeed, child_seed_states
from experiments.game.twopass import TwoPassRecorder
from market.accounts import ACTIVE, LIQUIDATED
from market.adl import Eligibility, get_policy, get_severity
from market.adl.queues import quantile_indicator
from market.arrays import unique_sorted
from market.exchange import BackstopConfig, Exchange
from market.spec import MarketSpec

STREAMS = ("population", "prices", "crises", "behaviour", "churn", "entry", "mesa", "imitation")
TRADER_TYPES: tuple[type[Trader], ...] = (PassiveTrader, Whale, Flipper, SybilOwner, Entrant)


@dataclass
class CrisisRecord:
    """What one crisis did (dollars unless said otherwise)."""

    index: int
    start_step: int
    end_step: int = 0
    drop: float = 0.0
    deficit: float = 0.0
    backstop_used: float = 0.0
    adl_raised: float = 0.0
    overshoot: float = 0.0
    undershoot: float = 0.0
    residual: float = 0.0
    carried: float = 0.0
    venue_paid: float = 0.0
    socialised: float = 0.0
    liquidated: int = 0
    touched: int = 0
    churned: int = 0
    entrants: int = 0
    switched: int = 0
    haircut_by_type: dict[str, float] = field(default_factory=dict)
    notional_by_type: dict[str, float] = field(default_factory=dict)  # gross, at the start


def haircut_by_type(ex: Exchange, haircut: np.ndarray) -> dict[str, float]:
    """Dollars of a per-account ``haircut`` (over the first ``haircut.size`` accounts) by
    agent type, and ``book`` for the market makers' account (ADL'd like any other)."""
    kinds = ex.acc.kind[: haircut.size]
    out = {name: float(haircut[kinds == t].sum()) for t, name in TYPE_NAMES.items()}
    out["book"] = float(haircut[ex.book]) if ex.book < haircut.size else 0.0
    return out


class OwnerAccounts:
    """The accounts of a list of traders, laid out for per-trader sums without a Python loop.

    ``sum(values)[i]`` equals ``values[accounts_i].sum()`` bit for bit: single-account traders
    read their one value, and owners with ``L > 1`` accounts are summed as rows of an
    ``(n_L, L)`` array (numpy sums a row of a 2-d array in the same order as the 1-d array).

    Attributes:
        first: each trader's main account, (n,).
        lengths: accounts per trader, (n,).
        flat: every account, trader by trader (``np.concatenate`` of the lists).
    """

    def __init__(self, acc_lists: list[np.ndarray]) -> None:
        n = len(acc_lists)
        self._setup(
            np.fromiter(map(len, acc_lists), dtype=np.int64, count=n),
            np.concatenate(acc_lists).astype(np.int64, copy=False)
            if n
            else np.zeros(0, dtype=np.int64),
        )

    @classmethod
    def from_layout(cls, lengths: np.ndarray, flat: np.ndarray) -> OwnerAccounts:
        """The same object from accounts per trader and every account trader by trader."""
        out = cls.__new__(cls)
        out._setup(np.asarray(lengths, dtype=np.int64), np.asarray(flat, dtype=np.int64))
        return out

    def _setup(self, lengths: np.ndarray, flat: np.ndarray) -> None:
        n = lengths.size
        self.lengths = lengths
        self.flat = flat
        starts = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(self.lengths[:-1], out=starts[1:])
        self.first = self.flat[starts] if n else np.zeros(0, dtype=np.int64)
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []
        for length in unique_sorted(self.lengths[self.lengths > 1]):
            rows = np.flatnonzero(self.lengths == length)
            cols = starts[rows, None] + np.arange(int(length))
            self.groups.append((rows, self.flat[cols]))

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-trader sum of ``values`` over the trader's accounts."""
        out = values[self.first].astype(np.float64)
        for rows, acc in self.groups:
            out[rows] = values[acc].sum(axis=1)
        return out

    def max(self, values: np.ndarray) -> np.ndarray:
        """Per-trader maximum of ``values`` over the trader's accounts."""
        out = values[self.first].copy()
        for rows, acc in self.groups:
            out[rows] = values[acc].max(axis=1)
        return out

    def any(self, mask: np.ndarray) -> np.ndarray:
        """Per-trader: does any of the trader's accounts have ``mask`` set."""
        out = mask[self.first].astype(bool)
        for rows, acc in self.groups:
            out[rows] = mask[acc].any(axis=1)
        return out

    def subset_sum(self, values: np.ndarray, size: int) -> np.ndarray:
        """Per-trader sum of ``values`` over the trader's accounts below ``size`` only."""
        inside = self.flat < size
        if inside.all():
            return self.sum(values)
        out = np.zeros(self.lengths.size)
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        for i in range(self.lengths.size):  # rare: accounts opened after the reference point
            acc = self.flat[starts[i] : starts[i] + self.lengths[i]]
            out[i] = float(values[acc[acc < size]].sum())
        return out


@functools.cache
def _name_tag(name: str) -> int:
    """The spawn-key word of a decision's name in :meth:`ADLGame.draw` (its SHA-256 prefix)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


class ADLGame(mesa.Model):
    """The game.

    Args:
        scenario: the configuration (see :mod:`experiments.game.scenario`).
        seed: the run's root seed.
        policy: ADL policy name overriding the scenario's.
        severity: severity controller name overriding the scenario's.
        two_pass: replay every ADL step with and without ADL (the two-pass counterfactual,
            :mod:`experiments.game.twopass`) to measure what ADL really took.
        record: collect the per-step model series (Mesa's DataCollector); the learning
            environments (:mod:`experiments.envs`), which read the state directly, turn it off.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int = 1,
        policy: str | None = None,
        severity: str | None = None,
        two_pass: bool = True,
        record: bool = True,
    ) -> None:
        root = np.random.SeedSequence(int(seed))
        children = dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))
        super().__init__(rng=np.random.default_rng(children["mesa"]))
        self.seed = int(seed)
        self.scenario = scenario
        self._streams = children
        self.policy_name = policy or scenario.adl.policy
        self.severity_name = severity or scenario.adl.severity
        sc = scenario
        m = sc.market
        self.market_shares = market_shares(m.popularity, m.markets, m.zipf)
        names = (
            coin_names(m.markets)
            if m.popularity == "oct10"
            else [f"M{k}" for k in range(m.markets)]
        )
        depth = (
            np.full(m.markets, m.depth)
            if self.market_shares is None
            else m.depth * m.markets * self.market_shares
        )
        specs = tuple(
            MarketSpec(
                name=names[k],
                lot_size=m.lot_size,
                initial_margin=m.initial_margin,
                maintenance_margin=m.maintenance_margin,
                taker_fee=m.taker_fee,
                maker_fee=m.maker_fee,
                liquidation_fee=m.liquidation_fee,
                depth=float(depth[k]),
                impact_exponent=m.impact_exponent,
                # the makers carry the stress thinning alone unless both are asked for
                stress_thinning=m.stress_thinning if sc.maker.thinning == "both" else 0.0,
            )
            for k in range(m.markets)
        )
        self.policy = get_policy(self.policy_name, **(sc.adl.params if policy is None else {}))
        self.exchange = Exchange(
            specs,
            m.mark,
            backstop=BackstopConfig(
                kind=sc.backstop.kind,
                capital=sc.backstop.capital,
                fee_share=sc.backstop.fee_share,
                max_drawdown=sc.backstop.max_drawdown,
            ),
            policy=self.policy,
            severity=get_severity(self.severity_name),
            eligibility=Eligibility(
                cap=self.policy.default_cap if sc.adl.cap == "auto" else sc.adl.cap,
                account_fraction=sc.adl.account_fraction,
            ),
            execution=None if sc.adl.execution == "auto" else sc.adl.execution,
            shortfall=(self.policy.default_shortfall or "fund_debt")
            if sc.adl.shortfall == "auto"
            else sc.adl.shortfall,
            capacity=int(sc.run.traders * 1.2) + 16,
        )
        self.t = 0
        self.phase = "calm"
        self.period_step = 0
        self._schedule = self._build_schedule()
        self._crisis_draws = self._draw_crises()
        self.marks_path = self._price_path()
        self._tables: dict[type, Members] = {}
        self._draw_cache: dict[tuple[str, int], np.ndarray] = {}
        self._draw_seeds: dict[str, np.ndarray] = {}
        self.next_uid = 0
        n_sybil_accounts = sc.sybil.accounts
        entrant_cap = int(np.ceil(sc.run.traders * sc.entry.rate * sc.run.crises * 4)) + 50
        self.uid_capacity = sc.run.traders + entrant_cap
        self.entrants_left = entrant_cap
        self.published_lights = np.zeros(self.exchange.acc._cap, dtype=np.int64)
        self._account_agent: dict[int, Trader] = {}
        self._churn_rows: tuple[list, list[Trader]] | None = None
        self.maker = MarketMaker(self, sc.maker.withdraw, sc.maker.recover)
        self.lp = BackstopLP(self, sc.backstop.capital, sc.backstop.lp_topup)
        self._populate(np.random.default_rng(children["population"]), n_sybil_accounts)
        self.crises: list[CrisisRecord] = []
        self._current: CrisisRecord | None = None
        self._eq_at_crisis = np.zeros(0)
        self._pnl_at_crisis = np.zeros(0)
        self._adl_rows_at_crisis = 0
        self.rows: list[dict] = []
        self.panel: list[dict[str, np.ndarray]] = []
        self.churned_total = 0
        self.two_pass = TwoPassRecorder() if two_pass and self.policy is not None else None
        self.record = bool(record)
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters())
        self._record({})

    # ------------------------------------------------------------------ randomness
    def draw(self, name: str, uid: np.ndarray) -> np.ndarray:
        """Uniform [0, 1) draws of decision ``name`` at the current step for traders ``uid``.

        Drawn once per (name, step) from a child seed keyed by the name and the step, one value
        per uid in creation order, so the value a trader gets does not depend on who else
        exists (only the uids made so far are drawn: the table's prefix, the same values).
        """
        key = (name, self.t)
        table = self._draw_cache.get(key)
        if table is None or table.size < self.next_uid:
            seeds = self._draw_seeds.get(name)
            if seeds is None:  # the name's child seeds of every step at once
                steps = np.arange(self.total_steps + 1)
                seeds = child_seed_states(self._streams["behaviour"], (_name_tag(name),), steps)
                self._draw_seeds[name] = seeds
            # only the uids made so far: random(n) is the first n values of random(capacity)
            rng = np.random.Generator(np.random.PCG64(FixedSeed(seeds[self.t])))
            table = rng.random(self.next_uid)
            if len(self._draw_cache) > 64:
                self._draw_cache.clear()
            self._draw_cache[key] = table
        return table[uid]

    def _stream_at(self, stream: str, *key: int) -> np.random.Generator:
        ss = self._streams[stream]
        # what default_rng(seed_sequence) builds, without its argument dispatch (per entrant)
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, *key)))
        )

    # ------------------------------------------------------------------ schedule and prices
    def _build_schedule(self) -> list[tuple[str, int, int]]:
        """(phase, crisis index, step within phase) for every step of the run."""
        r = self.scenario.run
        out: list[tuple[str, int, int]] = []
        for c in range(r.crises):
            out += [("calm", c, j) for j in range(r.calm_steps)]
            out += [("crisis", c, j) for j in range(r.crisis_steps)]
        out += [("calm", r.crises, j) for j in range(r.calm_steps)]
        return out

    def phase_of_step(self, step: int) -> str | None:
        """Phase ("calm" / "crisis") of a (1-based) step; None past the end of the run."""
        return self._schedule[step - 1][0] if 1 <= step <= self.total_steps else None

    def crisis_of_step(self, step: int) -> int:
        """Crisis index of a (1-based) step: the crisis it belongs to or follows."""
        return self._schedule[min(max(step, 1), self.total_steps) - 1][1]

    @property
    def total_steps(self) -> int:
        """Steps in the whole run."""
        return len(self._schedule)

    def _draw_crises(self) -> dict[str, np.ndarray]:
        """Crash sizes, signs and per-market factors for every crisis, drawn up front."""
        sc = self.scenario
        rng = np.random.default_rng(self._streams["crises"])
        n, k = sc.run.crises, sc.market.markets
        t = rng.standard_t(sc.crisis.drop_tail, size=n)
        size = np.clip(sc.crisis.drop_median * np.exp(0.5 * t), 0.01, sc.crisis.drop_max)
        u_sign = rng.random(n)
        sign = {"down": np.full(n, -1), "up": np.full(n, 1)}.get(
            sc.crisis.sign, np.where(u_sign < 0.5, -1, 1)
        )
        rho = sc.crisis.correlation
        factors = rho + (1.0 - rho) * rng.random((n, k))
        return {"size": size, "sign": sign.astype(np.int64), "factor": factors}

    def _price_path(self) -> np.ndarray:
        """The marks of every step, drawn up front (prices are exogenous to trading).

        One normal vector per step from the 'prices' stream whatever the phase: calm steps
        follow a driftless log random walk; a crisis falls by its drawn size over the first
        half of its steps and then recovers ``rebound`` of the fall, with log noise.
        Row 0 is the starting mark; row t is the mark of step t.
        """
        sc = self.scenario
        rng = np.random.default_rng(self._streams["prices"])
        k = sc.market.markets
        path = np.empty((self.total_steps + 1, k))
        path[0] = sc.market.mark
        d = self._crisis_draws
        steps = sc.run.crisis_steps
        fall = max(steps // 2, 1)
        start = path[0]
        for t, (phase, crisis, j) in enumerate(self._schedule, start=1):
            z = rng.standard_normal(k)
            if phase == "calm":
                path[t] = path[t - 1] * np.exp(sc.market.calm_vol * z)
                continue
            if j == 0:
                start = path[t - 1]
            size = d["size"][crisis] * d["factor"][crisis]
            depth = np.log1p(-size) if d["sign"][crisis] < 0 else np.log1p(size)
            frac = min((j + 1) / fall, 1.0)
            after = max(j + 1 - fall, 0) / max(steps - fall, 1)
            path[t] = start * np.exp(
                depth * (frac - sc.crisis.rebound * after) + sc.crisis.noise * z
            )
        return path

    # ------------------------------------------------------------------ population
    def _new_agent(
        self, cls: type[Trader], accounts: np.ndarray, market: int, side: int, leverage: float, **kw
    ) -> Trader:
        agent = cls(self, self.next_uid, accounts, market, side, leverage, **kw)
        self.next_uid += 1
        for a in np.atleast_1d(accounts):
            self._account_agent[int(a)] = agent
        self.exchange.acc.kind[np.atleast_1d(accounts)] = cls.type_code
        self._tables.pop(cls, None)
        return agent

    def _populate(self, rng: np.random.Generator, sybil_accounts: int) -> None:
        sc = self.scenario
        n = sc.run.traders
        shares = np.array([sc.mix.whale, sc.mix.flipper, sc.mix.sybil])
        counts = np.floor(shares * n).astype(int)
        n_passive = n - counts.sum()
        kinds = np.repeat([0, 1, 2, 3], [n_passive, *counts])
        kinds = kinds[rng.permutation(n)]
        # every draw below has a fixed shape, so the population is the same for every policy
        market = draw_markets(rng, sc.market.markets, self.market_shares, n)
        side = np.where(rng.random(n) < 0.5, 1, -1)
        u_size = rng.random(n)
        z_lev = rng.standard_normal(n)
        p = sc.passive
        notional = p.min_notional * (1.0 - u_size) ** (-1.0 / p.size_alpha)
        notional = np.minimum(notional, p.min_notional * 1e4)
        max_lev = 0.9 / sc.market.initial_margin
        lev = np.clip(p.leverage_median * np.exp(p.leverage_sigma * z_lev), 1.0, max_lev)
        whale_grid = tuple(sc.whale.leverage_grid)
        k = int(sybil_accounts)
        # every owner's deposit, in the order the traders are created
        stake = notional * sc.whale.size_mult / 10.0
        cash = np.select(
            [kinds == 1, kinds == 2, kinds == 3],
            [stake, notional / sc.flipper.leverage, notional / sc.sybil.leverage],
            notional / lev,
        )
        counts = np.where(kinds == 3, k, 1)
        per_account = np.repeat(np.where(kinds == 3, cash / k, cash), counts)
        ex = self.exchange
        idx = ex.open_accounts_by_owner(counts, per_account)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ex.acc.group[idx] = np.repeat(idx[starts], counts)
        classes = (PassiveTrader, Whale, Flipper, SybilOwner)
        codes = np.array([c.type_code for c in classes])
        ex.acc.kind[idx] = np.repeat(codes[kinds], counts)
        target = np.select(
            [kinds == 1, kinds == 2, kinds == 3],
            [whale_grid[len(whale_grid) // 2], sc.flipper.leverage, sc.sybil.leverage],
            lev,
        )
        uid0 = self.next_uid
        made: list[Trader] = []
        rows = zip(
            kinds.tolist(),
            starts.tolist(),
            counts.tolist(),
            market.tolist(),
            side.tolist(),
            target.tolist(),
            stake.tolist(),
            strict=True,
        )
        for i, (kind, s0, c, mk, sd, tl, st) in enumerate(rows):
            accounts = idx[s0 : s0 + c]
            if kind == 1:
                agent = Whale(self, uid0 + i, accounts, mk, sd, tl, stake=st, grid=whale_grid)
            else:
                agent = classes[kind](self, uid0 + i, accounts, mk, sd, tl)
            made.append(agent)
        self.next_uid = uid0 + n
        owner = np.repeat(np.arange(n), counts).tolist()
        self._account_agent.update(zip(idx.tolist(), [made[o] for o in owner], strict=True))
        self._tables.clear()
        del made
        self.published_lights = np.zeros(self.exchange.acc._cap, dtype=np.int64)
        # opening positions: every type trades to its target (Sybils arrange their split)
        for cls in (PassiveTrader, Whale, Flipper):
            mem = self.members(cls)
            if len(mem):
                target_orders(self, mem.account, mem.market, mem.side, mem.leverage)
        SybilOwner.arrange_all(self, self.members(SybilOwner).agents)
        eq = self.exchange.equity()
        for w in self.members(Whale).agents:
            w.period_equity = float(eq[w.account])

    def members(self, cls: type[Trader]) -> Members:
        """The live members of one agent type, as arrays (cached until invalidated)."""
        table = self._tables.get(cls)
        if table is None:
            # agents_by_type is keyed by the exact class, so no subclass slips in
            table = Members(list(self.agents_by_type.get(cls, [])))
            self._tables[cls] = table
        return table

    def invalidate(self, cls: type[Trader] | None = None) -> None:
        """Forget cached member tables (after agents change targets, join or leave)."""
        if cls is None:
            self._tables.clear()
        else:
            self._tables.pop(cls, None)

    def traders(self) -> list[Trader]:
        """Every live trader."""
        return [a for cls in TRADER_TYPES for a in self.members(cls).agents]

    # ------------------------------------------------------------------ the step
    def step(self) -> None:
        """One step of the schedule."""
        if self.t >= self.total_steps:
            self.running = False
            return
        if self.two_pass is not None:
            self.two_pass.before(self)
        phase, crisis, j = self._schedule[self.t]
        self.t += 1
        self.phase, self.period_step = phase, j
        if phase == "crisis" and j == 0:
            self._start_crisis(crisis)
        marks = self.marks_path[self.t]
        self.maker.quote(marks, phase)
        rep = self.exchange.step(marks)
        if self.two_pass is not None:
            self.two_pass.after(self, rep)
        if self._current is not None:
            c = self._current
            c.deficit += rep.deficit
            c.backstop_used += rep.backstop_used
            c.adl_raised += rep.adl_raised
            c.overshoot += rep.overshoot
            c.undershoot += rep.undershoot
            c.residual += rep.residual
            c.carried += rep.carried
            c.venue_paid += rep.venue_paid
            c.liquidated += rep.liquidated
        if phase == "crisis":
            self._publish_lights(crisis)
            if self.scenario.churn.base == "pnl":  # the largest profit held in the crisis
                up = np.maximum(self.exchange.account_upnl(), 0.0)
                peak = np.pad(self._pnl_at_crisis, (0, max(up.size - self._pnl_at_crisis.size, 0)))
                self._pnl_at_crisis = np.maximum(peak[: up.size], up)
        self._agents_act(phase)
        if phase == "calm":
            self.exchange.apply_funding(self.scenario.market.funding_rate)
        if self.record:
            self._record(rep.__dict__)
        if phase == "crisis" and j == self.scenario.run.crisis_steps - 1:
            self._end_crisis()
        if self.t >= self.total_steps:
            self.running = False

    def _agents_act(self, phase: str) -> None:
        """The traders' turn in a step: each type's vectorised ``act``, in ``TRADER_TYPES`` order.

        The hook a per-agent version of the game overrides (the step order around it stays).
        """
        for cls in TRADER_TYPES:
            mem = self.members(cls)
            if len(mem):
                cls.act(self, mem, phase)

    def _agents_after_crisis(self) -> None:
        """The traders' adaptation at a crisis end: each type's ``after_crisis``, in order.

        Member tables of the types whose ``after_crisis`` does something are forgotten after
        it (it may change targets or accounts); the hook a per-agent version overrides.
        """
        for cls in TRADER_TYPES:
            mem = self.members(cls)
            if len(mem):
                cls.after_crisis(self, mem)
        for cls in TRADER_TYPES:
            if cls.after_crisis.__func__ is not Trader.after_crisis.__func__:
                self.invalidate(cls)

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Run every step of the schedule, calling ``progress(done, total)`` after each."""
        while self.running and self.t < self.total_steps:
            self.step()
            if progress is not None:
                progress(self.t, self.total_steps)

    def _publish_lights(self, crisis: int) -> None:
        """The venue's ADL indicator (quantile lights 0-4), refreshed every ``lag`` steps.

        Winners face the crash: shorts in a fall, longs in a squeeze.  Ranked rules publish
        lights from their own score; rules without a score publish the quantile of profit.
        """
        lag = max(self.scenario.flipper.lag, 1)
        if (self.period_step % lag) != 0:
            return
        ex = self.exchange
        liq_side = -int(self._crisis_draws["sign"][crisis])  # longs are liquidated in a fall
        lights = np.zeros(ex.acc._cap, dtype=np.int64)
        for snap in ex.ranking_snapshots(liq_side):
            if snap.n == 0:
                continue
            score = (
                self.policy.score(snap)
                if hasattr(self.policy, "score")
                else np.maximum(snap.upnl, 0.0)
            )
            # an account may be lit in several markets: its highest light
            lights[snap.account] = np.maximum(lights[snap.account], quantile_indicator(score))
        self.published_lights = lights

    # ------------------------------------------------------------------ crisis boundaries
    def _start_crisis(self, crisis: int) -> None:
        self._current = CrisisRecord(
            index=crisis, start_step=self.t, drop=float(self._crisis_draws["size"][crisis])
        )
        self.exchange.set_fund_reference()  # backstop.max_drawdown counts from here
        self._eq_at_crisis = self.exchange.equity().copy()
        kinds = self.exchange.acc.kind[: self._eq_at_crisis.size]
        gross = self.exchange.account_notional()
        self._current.notional_by_type = {
            name: float(gross[kinds == t].sum()) for t, name in TYPE_NAMES.items()
        }
        self._pnl_at_crisis = np.maximum(self.exchange.account_upnl(), 0.0)
        self._adl_rows_at_crisis = len(self.exchange.log.adl)
        self._liq_flags_before = (self.exchange.acc.flags & LIQUIDATED).copy()

    def _end_crisis(self) -> None:
        c = self._current
        assert c is not None
        ex = self.exchange
        c.end_step = self.t
        n_social = len(ex.log.socialised)
        c.socialised = ex.settle()  # a carried shortfall socialised at settlement
        adl = ex.log.adl.to_array()[self._adl_rows_at_crisis :]
        n = ex.n_accounts
        haircut = np.bincount(adl["account"], weights=adl["haircut"], minlength=n)[:n]
        haircut = haircut.astype(np.float64, copy=False)  # an empty log gives int counts
        social = ex.log.socialised.to_array()[n_social:]
        if social.size:  # what settlement charged counts as a haircut (churn, panel)
            haircut += np.bincount(social["account"], weights=social["haircut"], minlength=n)[:n]
        c.touched = int(np.count_nonzero(haircut))
        c.haircut_by_type = haircut_by_type(ex, haircut)
        before = np.pad(self._liq_flags_before, (0, n - self._liq_flags_before.size))
        liquidated_now = ((ex.acc.flags & LIQUIDATED) != 0) & (before == 0)
        churned = self._churn(haircut, liquidated_now)
        c.churned = len(churned)
        self._panel_record(c.index, haircut, liquidated_now, churned)
        self._agents_after_crisis()
        c.switched = self._imitate(c.index)
        c.entrants = self._entry(c)
        self.lp.refill()
        ex.age_gains()
        self.crises.append(c)
        self._current = None

    def _churn(self, haircut: np.ndarray, liquidated: np.ndarray) -> list[Trader]:
        """Traders who leave after this crisis; their accounts are settled."""
        sc = self.scenario
        ex = self.exchange
        self._churn_rows = None
        # w: equity at the crisis start, or the largest profit held in the crisis plus what
        # ADL took from it (so that w >= h)
        base = self._eq_at_crisis if sc.churn.base == "equity" else self._pnl_at_crisis
        w = np.maximum(base[: haircut.size], 0.0)
        w = np.pad(w, (0, haircut.size - w.size))
        if sc.churn.base == "pnl":
            w = w + haircut
        mems = [(cls, self.members(cls)) for cls in TRADER_TYPES]
        if not any(len(m) for _, m in mems):
            return []
        layouts = [m.layout() for _, m in mems]
        own = OwnerAccounts.from_layout(
            np.concatenate([lay[0] for lay in layouts]), np.concatenate([lay[1] for lay in layouts])
        )
        uid = np.concatenate([m.uid for _, m in mems])
        h_sum = own.sum(haircut)
        w_sum = own.sum(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            owner_x = np.where(h_sum > 0, h_sum / np.maximum(w_sum, 1e-12), 0.0)
        total_w = float(w[own.flat].sum())
        mean_x = float(haircut.sum() / total_w) if total_w > 0 else 0.0
        ch = sc.churn
        foreseen = None
        if ch.family == "predictability":  # the share of the owners who saw the same light
            lights = self.published_lights[: haircut.size]
            lights = np.pad(lights, (0, haircut.size - lights.size))
            foreseen = foreseen_share(owner_x, own.max(lights))
        p = leave_probability(
            owner_x,
            ch.family,
            beta=ch.beta,
            surprise=ch.surprise,
            mean=mean_x,
            power=ch.power,
            scale=ch.scale,
            threshold=ch.threshold,
            steepness=ch.steepness,
            foreseen=foreseen,
        )
        liq = own.any(liquidated)
        passive = np.concatenate([np.full(len(m), issubclass(c, PassiveTrader)) for c, m in mems])
        p = np.where(liq & passive, 1.0 - (1.0 - p) * (1.0 - sc.passive.liquidation_churn), p)
        u = self._stream_at("churn", len(self.crises)).random(self.next_uid)[uid]
        go = u < p
        leave: list[Trader] = []
        masks: list[tuple[type[Trader], Members, np.ndarray]] = []
        start = 0
        for cls, mem in mems:
            sel = go[start : start + len(mem)]
            start += len(mem)
            if sel.any():
                agents = mem.agents
                leave.extend(agents[i] for i in np.flatnonzero(sel).tolist())
                masks.append((cls, mem, sel))
        if leave:
            ex.deactivate(own.flat[np.repeat(go, own.lengths)])
            for a in leave:  # Mesa's documented deregistration (what Agent.remove calls)
                self.deregister_agent(a)
            self.churned_total += len(leave)
            for cls, mem, sel in masks:  # the same tables a rebuild would give, filtered
                self._tables[cls] = mem.without(sel)
        self._churn_rows = (masks, leave)
        return leave

    def _imitate(self, crisis: int) -> int:
        """Passive traders and flippers copy the strategy that paid better this crisis.

        Each meets one other member of the two groups, drawn by creation number from the
        'imitation' stream; returns are equity now over equity at the crisis start, minus 1.
        A switch keeps the trader's identity (uid), accounts and position; only the
        behaviour changes.  Returns the number of switches.
        """
        imi = self.scenario.imitation
        pool = self.members(PassiveTrader).agents + self.members(Flipper).agents
        if imi.rate <= 0 or len(pool) < 2:
            return 0
        eq = self.exchange.equity()
        start = self._eq_at_crisis
        pas, fl = self.members(PassiveTrader), self.members(Flipper)
        acc = np.concatenate([pas.account, fl.account])
        known = acc < start.size
        s0 = np.where(known, start[np.where(known, acc, 0)], 0.0)
        ok = known & (s0 > 0)
        ret = np.where(ok, eq[acc] / np.maximum(s0, 1e-9) - 1.0, 0.0)
        uid = np.concatenate([pas.uid, fl.uid])
        rng_u = self._stream_at("imitation", crisis)
        # the first next_uid values of two uid_capacity-long tables (one uint64 per double)
        meet_u = rng_u.random(self.next_uid)[uid]
        rng_u.bit_generator.advance(self.uid_capacity - self.next_uid)
        switch_u = rng_u.random(self.next_uid)[uid]
        other = np.minimum((meet_u * len(pool)).astype(np.int64), len(pool) - 1)
        gap = ret[other] - ret
        p = imitation_probability(imi.family, imi.rate, gap, imi.scale)
        kinds = np.concatenate([np.zeros(len(pas), dtype=bool), np.ones(len(fl), dtype=bool)])
        go = (switch_u < p) & (kinds[other] != kinds)
        idx = np.flatnonzero(go).tolist()
        if not idx:
            return 0
        to_passive = kinds[idx].tolist()  # flippers become passive traders, and the reverse
        new = self._convert_all(
            [pool[i] for i in idx], [PassiveTrader if f else Flipper for f in to_passive]
        )
        # the tables a rebuild would give: leavers dropped, newcomers appended
        self._tables[PassiveTrader] = pas.without(go[: len(pas)]).plus(
            Members(list(compress(new, to_passive)))
        )
        self._tables[Flipper] = fl.without(go[len(pas) :]).plus(
            Members([a for a, f in zip(new, to_passive, strict=True) if not f])
        )
        return len(idx)

    def _convert(self, agent: Trader, cls: type[Trader]) -> Trader:
        """Give ``agent``'s accounts and identity to a new agent of type ``cls``."""
        return self._convert_all([agent], [cls])[0]

    def _convert_all(self, agents: list[Trader], classes: list[type[Trader]]) -> list[Trader]:
        """:meth:`_convert` of each agent to its class, in order; returns the new agents.

        The new agents are made in that order (so they get the unique ids, and the places in
        Mesa's agent sets, one conversion after the other would give), then the old ones leave.
        """
        if not agents:
            return []
        new = [
            cls(self, a.uid, a.accounts, a.market, a.side, a.leverage)
            for a, cls in zip(agents, classes, strict=True)
        ]
        self.exchange.acc.kind[np.concatenate([a.accounts for a in agents])] = np.repeat(
            [cls.type_code for cls in classes], [a.accounts.size for a in agents]
        )
        for old, agent in zip(agents, new, strict=True):
            self._account_agent.update(dict.fromkeys(old.accounts.tolist(), agent))
            old.remove()
        for cls in {type(a) for a in agents} | set(classes):
            self.invalidate(cls)
        return new

    def _entrant_count(self, c: CrisisRecord) -> int:
        """How many traders arrive after crisis ``c``: a Poisson draw whose rate falls with
        the venue's record (ADL haircuts and bad debt relative to active equity)."""
        sc = self.scenario
        ex = self.exchange
        eq = ex.equity()
        active = (ex.acc.flags & ACTIVE) != 0
        total_eq = float(np.maximum(eq[active], 0).sum()) or 1.0
        badness = (c.adl_raised + c.residual) / total_eq
        deter = entry_factor(sc.entry.family, sc.entry.sensitivity * badness)
        lam = sc.entry.rate * sc.run.traders * deter
        u = self._stream_at("entry", c.index).random()
        return int(min(poisson_quantile(u, lam) if lam > 0 else 0, self.entrants_left))

    def _entry(self, c: CrisisRecord) -> int:
        """New traders, fewer after a bad record (haircuts and bad debt relative to equity)."""
        sc = self.scenario
        ex = self.exchange
        count = self._entrant_count(c)
        if count <= 0:
            return 0
        p = sc.passive
        max_lev = 0.9 / sc.market.initial_margin
        draws = []
        ss = self._streams["population"]
        seeds = child_seed_states(ss, (1,), np.arange(self.next_uid, self.next_uid + count))
        one_market = sc.market.markets == 1
        for j in range(count):  # each entrant's draws come from its own uid's stream
            rng = np.random.Generator(np.random.PCG64(FixedSeed(seeds[j])))
            notional = min(
                p.min_notional * (1.0 - rng.random()) ** (-1.0 / p.size_alpha), p.min_notional * 1e4
            )
            lev = p.leverage_median * np.exp(p.leverage_sigma * rng.standard_normal())
            lev = float(min(max(lev, 1.0), max_lev))  # np.clip's value, without its overhead
            side = 1 if rng.random() < 0.5 else -1
            if one_market:
                market = 0
            elif self.market_shares is None:
                market = int(rng.integers(0, sc.market.markets))
            else:
                market = int(draw_markets(rng, sc.market.markets, self.market_shares, 1)[0])
            draws.append((notional / lev, market, side, lev))
        acc = ex.open_accounts_by_owner(np.ones(count, dtype=np.int64), [d[0] for d in draws])
        ex.acc.kind[acc] = Entrant.type_code
        uid0 = self.next_uid
        new = [
            Entrant(self, uid0 + j, acc[j : j + 1], market, side, lev)
            for j, (_, market, side, lev) in enumerate(draws)
        ]
        self.next_uid = uid0 + count
        self._account_agent.update(zip(acc.tolist(), new, strict=True))
        old = self._tables.get(Entrant)
        if old is not None:  # Mesa appends new agents to the type's set: so does the table
            self._tables[Entrant] = old.plus(Members(new))
        self.entrants_left -= count
        mem = self.members(Entrant)
        fresh = slice(len(mem) - count, len(mem))  # the newcomers are the table's tail
        target_orders(
            self, mem.account[fresh], mem.market[fresh], mem.side[fresh], mem.leverage[fresh]
        )
        if self.published_lights.size < ex.acc._cap:
            self.published_lights = np.zeros(ex.acc._cap, dtype=np.int64)
        return count

    # ------------------------------------------------------------------ recording
    def _reporters(self) -> dict[str, Callable]:
        names = (
            "step",
            "phase",
            "crisis",
            "fund",
            "deficit",
            "backstop_used",
            "adl_raised",
            "overshoot",
            "undershoot",
            "residual",
            "carried_debt",
            "venue_paid",
            "liquidated",
            "traders_active",
            "flippers_active",
            "fee_revenue",
            "bad_debt",
            "depth_scale",
            "open_interest_lots",
        )
        out = {name: (lambda m, n=name: m._row.get(n)) for name in names}
        for k in range(self.scenario.market.markets):
            out[f"mark_{k}"] = lambda m, k=k: float(m.exchange.marks[k])
        return out

    def _record(self, rep: dict) -> None:
        ex = self.exchange
        counts = {cls: len(self.members(cls)) for cls in TRADER_TYPES}
        self._row = {
            "step": self.t,
            "phase": self.phase,
            "crisis": self._schedule[self.t - 1][1] if self.t else 0,
            "fund": ex.backstop_capital(),
            "deficit": rep.get("deficit", 0.0),
            "backstop_used": rep.get("backstop_used", 0.0),
            "adl_raised": rep.get("adl_raised", 0.0),
            "overshoot": rep.get("overshoot", 0.0),
            "undershoot": rep.get("undershoot", 0.0),
            "residual": rep.get("residual", 0.0),
            "carried_debt": ex.debt,
            "venue_paid": ex.venue_paid,
            "liquidated": rep.get("liquidated", 0),
            "traders_active": int(sum(counts.values())),
            "flippers_active": counts[Flipper],
            "fee_revenue": ex.fee_revenue,
            "bad_debt": ex.bad_debt,
            "depth_scale": float(ex.depth_scale.mean()),
            "open_interest_lots": int(ex.open_interest()[0].sum()),
        }
        self.datacollector.collect(self)

    def _panel_record(
        self, crisis: int, haircut: np.ndarray, liquidated: np.ndarray, churned: list[Trader]
    ) -> None:
        """One row per trader (alive at the crisis start) at this crisis boundary.

        Live traders come first (type by type, from the member tables), then the churned ones
        (they have left the model already), in the order :meth:`_churn` returned them.
        """
        ex = self.exchange
        cached, self._churn_rows = self._churn_rows, None
        segments: list[tuple[type[Trader], Members, np.ndarray | None]] = [
            (cls, self.members(cls), None) for cls in TRADER_TYPES
        ]
        if cached is not None and cached[1] is churned:
            segments += cached[0]
            generic: list[Trader] = []
        else:
            generic = list(churned)
        segments = [seg for seg in segments if len(seg[1]) and (seg[2] is None or seg[2].any())]
        n_rows = sum(len(m) if sel is None else int(sel.sum()) for _, m, sel in segments)
        n_rows += len(generic)
        cols: dict[str, list[np.ndarray]] = {
            k: [] for k in ("lengths", "flat", "uid", "agent_id", "type", "lev", "flips")
        }
        for cls, mem, sel in segments:
            lengths, flat = mem.layout()
            uid, agent_id, target, agents = mem.uid, mem.unique_id, mem.leverage, mem.agents
            if sel is not None:
                flat = flat[np.repeat(sel, lengths)]
                lengths, uid, agent_id, target = lengths[sel], uid[sel], agent_id[sel], target[sel]
                agents = [agents[i] for i in np.flatnonzero(sel).tolist()]
            cols["lengths"].append(lengths)
            cols["flat"].append(flat)
            cols["uid"].append(uid)
            cols["agent_id"].append(agent_id)
            cols["type"].append(np.full(len(agents), TYPE_NAMES[cls.type_code]))
            cols["lev"].append(target)
            cols["flips"].append(
                np.fromiter((a.flips for a in agents), dtype=np.int64, count=len(agents))
                if issubclass(cls, Flipper)
                else np.zeros(len(agents), dtype=np.int64)
            )
        if generic or n_rows == 0:  # churned agents without their tables: read one by one
            gen = OwnerAccounts([a.accounts for a in generic])
            cols["lengths"].append(gen.lengths)
            cols["flat"].append(gen.flat)
            cols["uid"].append(np.array([a.uid for a in generic], dtype=np.int64))
            cols["agent_id"].append(np.array([a.unique_id for a in generic]))
            cols["type"].append(np.array([a.type_name for a in generic]))
            cols["lev"].append(np.array([a.leverage for a in generic]))
            cols["flips"].append(np.array([getattr(a, "flips", 0) for a in generic]))
        col = {k: np.concatenate(v) for k, v in cols.items()}
        n_churned = n_rows - sum(len(m) for _, m, sel in segments if sel is None)
        eq = ex.equity()
        lev = ex.leverage()
        own = OwnerAccounts.from_layout(col["lengths"], col["flat"])
        acc0 = own.first
        churn_flag = np.zeros(n_rows, dtype=bool)
        churn_flag[n_rows - n_churned :] = True
        self.panel.append(
            {
                "crisis": np.full(n_rows, crisis),
                "step": np.full(n_rows, self.t),
                "agent_id": col["agent_id"],
                "uid": col["uid"],
                "account": acc0,
                "type": col["type"],
                "accounts": own.lengths,
                "equity": own.sum(eq),
                "equity_at_crisis_start": own.subset_sum(
                    self._eq_at_crisis, self._eq_at_crisis.size
                ),
                "leverage": np.where(np.isfinite(lev[acc0]), lev[acc0], np.nan),
                "target_leverage": col["lev"],
                "haircut": own.sum(haircut),
                "liquidated": own.any(liquidated),
                "churned": churn_flag,
                "flips": col["flips"],
            }
        )

    # ------------------------------------------------------------------ results
