"""Benchmark reference, not product API: the game written the plain Mesa way.

:class:`NaiveADLGame` is :class:`experiments.game.model.ADLGame` with its agent layer rewritten
the way a plain Mesa model is usually written: every trader is an agent that, every step,
reads its own account(s) from the exchange arrays as Python scalars, checks its own margin in
Python (equity = cash + sum of position x lot x (mark - entry), maintenance requirement, margin
ratio, under-maintenance flag) and decides its own order with scalar arithmetic.  It exists
so that the benchmark (:func:`bench_game`) can put the fast game's agent-steps per second
beside a naive version of the *same* game; nothing else in the package uses it.

What is shared and what is not:

* Setup is literally the same (the subclass runs ``ADLGame.__init__``): population, opening
  positions, price path, crisis draws, exchange, policies, random streams.  So is the step
  order: ``ADLGame.step`` and ``ADLGame._end_crisis`` run unchanged, and this class overrides
  only their agent hooks (``_agents_act``, ``_agents_after_crisis``, ``_start_crisis`` for the
  agents' own note of their equity) and the per-trader crisis-end parts (``_churn``,
  ``_imitate``, ``_entry``), so the reference cannot drift from the game's step order.
* The exchange (``market/``) is the shared engine: its waterfall, liquidations, backstop and
  ADL are not re-implemented.  The naive reference differs in the agent layer only, which is
  what a plain Mesa model would write per agent.
* Agents step in a fixed order: type by type in :data:`experiments.game.model.TRADER_TYPES` order
  (staged activation), and within a type in the order of Mesa's ``model.agents_by_type``
  (the order agents joined that type), via ``AgentSet.do``.  That is creation order except
  for traders who switched strategy by imitation: they join the end of their new type's set,
  and the fast game's order batches follow the same order, so this one and not the uid
  order reproduces its fills.
* Orders.  The exchange prices a batch of market orders with aggregate impact (the book is
  walked in array order and its consumption accumulates within a step), checks margin for
  the batch, and books the counterparty side as one fill per direction.  Submitting each
  agent's order on its own would therefore give other prices.  So agents post their orders
  (intents) and the model sends each stage's intents to the exchange as one batch per market,
  in the agents' order, the way a Mesa model collects agents' intents before resolving them.
  The same holds for the settlement of leaving traders, the opening orders of entrants, the
  flippers' close-and-reopen round trips and the recapitalisation of broke whales.
* Crisis ends: churn draws, whale learning, Sybil re-arranging (per owner in plain Python,
  its closes, transfers and orders posted as intents), imitation and entrants' opening
  orders run one agent at a time.  Agents remember
  their own equity at the start of each crisis.  Venue-level aggregates (the ADL log per
  account, the venue's record that sets the entry rate, the population total of equity at
  risk in the churn hazard) are read or reduced by the model, not by agents.  Recording (the
  step series through Mesa's ``DataCollector``, the per-crisis agent panel) is the fast
  game's own code: it observes the agents and is not behaviour.

Numbers are identical to the fast game, bit for bit, on the default scenario: per-account
arithmetic uses the same formulas in the same order (IEEE arithmetic in Python gives the same
results as numpy element-wise); sums over an agent's markets or accounts run left to right,
which is what numpy does for fewer than 8 terms (exact for up to 7 markets and 7 Sybil
accounts; more would differ in the last bits because numpy then sums pairwise); ``exp`` and
``log`` are numpy's (``math.exp`` / ``math.log`` differ from numpy's in the last bit for a few
per cent of inputs); the population total in the churn hazard is reduced with numpy over the
agents' reports in agent order, the pairwise sum the fast game uses.  The maintenance
requirement the margin check computes is a Python sum over markets, where the exchange uses a
matrix product (BLAS); it only sets the under-maintenance flags, and for one market the two
are the same product.
"""

from __future__ import annotations

import bisect
import gc
import json
import math
import time
from collections.abc import Callable

import numpy as np

from agents import Entrant, Flipper, PassiveTrader, SybilOwner, Trader, Whale, sybil_split
from agents.whale import EXPLORE, UTILITY_FLOOR
from experiments.game.model import TRADER_TYPES, ADLGame, CrisisRecord
from experiments.game.popularity import draw_markets
from experiments.game.scenario import Scenario, load_scenario
from market.errors import require
from market.spec import MarketSpec

__all__ = [
    "BENCH_DEFINITION",
    "NAIVE_STEPS",
    "NaiveADLGame",
    "account_margin",
    "bench_game",
    "flipper_step",
    "margin_check",
    "passive_step",
    "sybil_step",
    "target_delta",
    "whale_step",
]

#: How :func:`bench_game` counts and times (the ``definition`` it returns).
BENCH_DEFINITION = (
    "agent-steps/s = (live traders summed over the timed steps) / (seconds spent in step() "
    "over those steps); live traders = traders in the model when a step starts (those whose "
    "behaviour runs in it). Setup (ADLGame.__init__: population, opening positions, price "
    "path; the same code for both games) is excluded from both and reported apart. "
    "Window = the whole run (every crisis and the last calm period) by default, or the first "
    "naive_crises calm + crisis cycles (crisis ends included), timed for both games in the "
    "same process; the first cycle's figures are read off the same runs, and the fast game's "
    "full run is timed too. Seconds are wall-clock; the *_cpu_seconds figures (process CPU "
    "time over the same steps) are less sensitive to other load on the machine."
)


# ---------------------------------------------------------------------- per-agent margin
def _maintenance_of(notional: float, spec: MarketSpec) -> float:
    """Maintenance requirement of one position's notional (Binance-style tiers), scalar."""
    if not spec.tiers:
        return notional * spec.maintenance_margin
    floors, rates, ded = spec.tier_arrays()
    tier = bisect.bisect_right(floors.tolist(), notional) - 1
    return notional * float(rates[tier]) - float(ded[tier])


def account_margin(model: ADLGame, account: int) -> tuple[float, float, float, bool]:
    """One account's margin state in plain Python: (equity, maintenance, initial, has_position).

    Reads the account's cash, positions and entries from the exchange arrays as Python
    scalars: equity = cash + sum over markets of lots x lot size x (mark - entry),
    maintenance and initial requirements from each position's notional at the mark.
    """
    ex = model.exchange
    acc = ex.acc
    cash, pos, entry = acc.cash, acc.pos, acc.entry
    marks, lots = ex.marks, ex.lot
    upnl = 0.0
    maint = 0.0
    init = 0.0
    has = False
    for k in range(ex.K):
        q = pos.item(account, k)
        mark = marks.item(k)
        lot = lots.item(k)
        u = q * lot * (mark - entry.item(account, k))
        upnl = u if k == 0 else upnl + u
        if q:
            has = True
            spec = ex.specs[k]
            notional = abs(q) * (lot * mark)
            maint += _maintenance_of(notional, spec)
            init += notional * spec.initial_margin
    return cash.item(account) + upnl, maint, init, has


def margin_check(agent: Trader, model: NaiveADLGame) -> float:
    """The agent checks its own margin, account by account; returns its main account's equity.

    Sets ``agent.margin_ratio`` (the lowest equity / maintenance over its accounts, inf when
    it holds no position) and ``agent.margin_calls`` (its accounts under maintenance: a
    position open and equity below the requirement, the exchange's liquidation test), and
    reports those accounts to the model (``model.margin_flags``).
    """
    main = 0.0
    ratio = math.inf
    calls: list[int] = []
    for j, a in enumerate(agent.accounts.tolist()):
        eq, maint, _init, has = account_margin(model, a)
        if j == 0:
            main = eq
        if maint > 0:
            ratio = min(ratio, eq / maint)
        if has and eq < maint:
            calls.append(a)
    agent.margin_ratio = ratio
    agent.margin_calls = calls
    if calls:
        model.margin_flags.extend(calls)
    return main


def target_delta(agent: Trader, model: ADLGame, equity: float) -> int:
    """Lots the agent must trade to hold ``side * leverage * equity`` of notional (scalar).

    ``floor(max(equity, 0) * leverage / (mark * lot)) * side`` minus the position it holds:
    a trader with no equity left closes out.
    """
    ex = model.exchange
    k = agent.market
    price = ex.marks.item(k) * ex.lot.item(k)
    want = math.floor(max(equity, 0.0) * agent.leverage / price) * agent.side
    return want - ex.acc.pos.item(agent.account, k)


# ---------------------------------------------------------------------- per-agent steps
def passive_step(agent: Trader, model: NaiveADLGame) -> None:
    """A passive trader (or entrant): check margin; in calm steps rebalance with a small chance."""
    equity = margin_check(agent, model)
    if model.phase != "calm":
        return
    if model.draw("rebalance", agent.uid) < model.scenario.passive.rebalance_prob:
        delta = target_delta(agent, model, equity)
        if delta != 0:
            model.submit(agent.account, agent.market, delta)


def whale_step(agent: Trader, model: NaiveADLGame) -> None:
    """A whale: check margin; at the start of a calm period choose side and leverage, trade."""
    equity = margin_check(agent, model)
    if model.phase != "calm" or model.period_step != 0:
        return
    u_side = model.draw("whale_side", agent.uid)
    u_lev = model.draw("whale_leverage", agent.uid)
    w = agent.weights / agent.weights.sum()
    p = (1.0 - EXPLORE) * w + EXPLORE / w.size
    agent.choice = int(min(np.searchsorted(np.cumsum(p), u_lev), p.size - 1))
    agent.leverage = float(agent.grid[agent.choice])
    agent.side = 1 if u_side < 0.5 else -1
    agent.period_equity = equity
    delta = target_delta(agent, model, equity)
    if delta != 0:
        model.submit(agent.account, agent.market, delta)


def flipper_step(agent: Trader, model: NaiveADLGame) -> None:
    """A flipper: check margin; in a crisis decide on a flip from its light, post due flips.

    It flips when its published light is at least the threshold, its position is in profit and
    the round trip (two taker fees and the spread) costs at most ``cost_tolerance`` times the
    haircut it expects to avoid (``light / 4`` of its unrealised profit).
    """
    margin_check(agent, model)
    if model.phase != "crisis":
        return
    spec = model.scenario.flipper
    ex = model.exchange
    a, k = agent.account, agent.market
    q = ex.acc.pos.item(a, k)
    mark = ex.marks.item(k)
    lot = ex.lot.item(k)
    upnl = q * lot * (mark - ex.acc.entry.item(a, k))
    light = model.published_lights.item(a)
    market = ex.specs[k]
    notional = abs(q) * lot * mark
    cost = 2.0 * notional * (market.taker_fee + market.impact * 0.1)
    expected = (light / 4.0) * max(upnl, 0.0)
    if (
        agent.due < 0
        and q != 0
        and light >= spec.threshold
        and upnl > 0
        and cost <= spec.cost_tolerance * expected
    ):
        agent.due = model.t + spec.delay
    if 0 <= agent.due <= model.t and q != 0:
        model.post_flip(agent, q)


def sybil_step(agent: Trader, model: NaiveADLGame) -> None:
    """A Sybil owner: check the margin of each of its accounts (it trades only between crises)."""
    margin_check(agent, model)


def _remember_crisis_start(agent: Trader, model: NaiveADLGame) -> None:
    """The agent notes its accounts' equity as a crisis starts (for churn and imitation)."""
    agent.crisis_equity = [account_margin(model, a)[0] for a in agent.accounts.tolist()]


#: The per-agent step of each trader type.
NAIVE_STEPS: dict[type[Trader], Callable[[Trader, NaiveADLGame], None]] = {
    PassiveTrader: passive_step,
    Whale: whale_step,
    Flipper: flipper_step,
    SybilOwner: sybil_step,
    Entrant: passive_step,
}


# ---------------------------------------------------------------------- the model
class NaiveADLGame(ADLGame):
    """The game with a plain-Mesa agent layer (benchmark reference; see the module docstring).

    Same arguments as :class:`experiments.game.model.ADLGame`.  Attributes added:

    Attributes:
        margin_flags: accounts the agents found under maintenance in their checks this step.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int = 1,
        policy: str | None = None,
        severity: str | None = None,
        two_pass: bool = True,
    ) -> None:
        self.margin_flags: list[int] = []
        self._orders: list[tuple[int, int, int]] = []
        self._flips: list[tuple[Trader, int]] = []
        super().__init__(scenario, seed=seed, policy=policy, severity=severity, two_pass=two_pass)

    # ------------------------------------------------------------------ intents
    def submit(self, account: int, market: int, lots: int) -> None:
        """An agent posts a market order of ``lots`` signed lots for its account."""
        self._orders.append((int(account), int(market), int(lots)))

    def post_flip(self, agent: Trader, lots: int) -> None:
        """A flipper posts a close-and-reopen of its position of ``lots`` lots."""
        self._flips.append((agent, int(lots)))

    def _send_orders(self) -> None:
        """Send the posted orders to the exchange: one batch per market, in posting order."""
        orders, self._orders = self._orders, []
        for k in sorted({m for _, m, _ in orders}):
            acc = np.array([a for a, m, _ in orders if m == k], dtype=np.int64)
            lots = np.array([q for _, m, q in orders if m == k], dtype=np.int64)
            self.exchange.trade(acc, k, lots)

    def _send_flips(self) -> None:
        """Carry out the posted flips (close batch, then reopen batch, per market)."""
        flips, self._flips = self._flips, []
        ex = self.exchange
        for k in sorted({agent.market for agent, _ in flips}):
            mine = [(agent, q) for agent, q in flips if agent.market == k]
            rows = np.array([agent.account for agent, _ in mine], dtype=np.int64)
            lots = np.array([q for _, q in mine], dtype=np.int64)
            before = [account_margin(self, agent.account)[0] for agent, _ in mine]
            closed = ex.trade(rows, k, -lots)
            reopened = np.zeros_like(closed)
            if closed.any():
                reopened[closed] = ex.trade(rows[closed], k, lots[closed])
            for j, (agent, _) in enumerate(mine):
                paid = before[j] - account_margin(self, agent.account)[0]
                if closed[j] and reopened[j]:
                    agent.flips += 1
                    agent.cost_paid += paid
        for agent, _ in flips:
            agent.due = -1

    def _traders_in_order(self) -> list[Trader]:
        """Every live trader, type by type, each type in Mesa's agent-set order."""
        by_type = self.agents_by_type
        return [a for cls in TRADER_TYPES if cls in by_type for a in by_type[cls]]

    def margin_scan(self) -> np.ndarray:
        """Every trader checks its margin now; returns the flagged accounts, sorted."""
        self.margin_flags = []
        for agent in self._traders_in_order():
            margin_check(agent, self)
        return np.array(sorted(self.margin_flags), dtype=np.int64)

    # ------------------------------------------------------------------ the game's hooks
    def _start_crisis(self, crisis: int) -> None:
        """The model opens the crisis record; every trader notes its equity at the start."""
        super()._start_crisis(crisis)
        by_type = self.agents_by_type
        for cls in TRADER_TYPES:
            if cls in by_type:
                by_type[cls].do(_remember_crisis_start, self)

    def _agents_act(self, phase: str) -> None:
        """The agent layer of a step: staged by type, each agent steps itself.

        Overrides :meth:`ADLGame._agents_act` (the step around it is the game's own); the
        intents each stage posts are sent to the exchange at the end of the stage.
        """
        by_type = self.agents_by_type
        self.margin_flags = []
        for cls in TRADER_TYPES:
            if cls not in by_type or not len(by_type[cls]):
                continue
            by_type[cls].do(NAIVE_STEPS[cls], self)
            self._send_orders()
            self._send_flips()
            if cls is Whale and phase == "calm" and self.period_step == 0:
                self.invalidate(Whale)  # sides and leverages changed

    def _agents_after_crisis(self) -> None:
        """Whales learn and broke whales are recapitalised; Sybil owners re-arrange; per agent.

        Overrides :meth:`ADLGame._agents_after_crisis`.
        """
        by_type = self.agents_by_type
        eta = self.scenario.whale.learning_rate
        broke: list[Trader] = []
        for agent in list(by_type.get(Whale, ())):
            start = max(agent.period_equity, 1e-9)
            end = account_margin(self, agent.account)[0]
            u = max(np.log(max(end, 1e-12) / start), UTILITY_FLOOR)
            agent.weights[agent.choice] *= np.exp(eta * u)
            agent.weights /= agent.weights.sum()
            if end < 0.05 * agent.stake:
                broke.append(agent)
        if broke:
            acc = np.array([a.account for a in broke], dtype=np.int64)
            self.exchange.deposit(acc, np.array([a.stake for a in broke]))
        self._rearrange_sybils(list(by_type.get(SybilOwner, ())))
        self.invalidate()

    def _rearrange_sybils(self, owners: list[Trader]) -> None:
        """Sybil owners re-arrange one by one in plain Python, posting intents: closes of every
        open position (sent as one batch per market), transfers between each owner's own
        accounts after :func:`agents.sybil.sybil_split` (sent as the model's two transfer
        batches: to each owner's first account, then out again), then the new orders."""
        if not owners:
            return
        ex = self.exchange
        pos = ex.acc.pos
        for agent in owners:
            for a in agent.accounts.tolist():
                for k in range(ex.K):
                    q = pos.item(a, k)
                    if q:
                        self.submit(a, k, -q)
        self._send_orders()
        safe = self.scenario.passive.leverage_median
        to_head: list[tuple[int, int, float]] = []
        out_again: list[tuple[int, int, float]] = []
        orders: list[tuple[int, int, int]] = []
        for agent in owners:
            accs = agent.accounts.tolist()
            cash = [ex.acc.cash.item(a) for a in accs]
            total = sum(cash)
            k = agent.market
            max_lev = 0.9 / ex.specs[k].initial_margin
            eq, nt = sybil_split(total, agent.leverage, len(accs), safe, max_lev)
            head = accs[0]
            to_head += [(a, head, c) for a, c in zip(accs[1:], cash[1:], strict=True) if c > 0]
            left = total
            for a, e in zip(accs[1:], eq[1:].tolist(), strict=True):
                give = min(e, left) if e > 0 else 0.0
                left -= give
                if give > 0:
                    out_again.append((head, a, give))
            price = ex.marks.item(k) * ex.lot.item(k)
            for a, n in zip(accs, nt.tolist(), strict=True):
                lots = math.floor(n / price) * agent.side
                if lots:
                    orders.append((a, k, lots))
        for batch in (to_head, out_again):
            if batch:
                src, dst, amt = (np.array(x) for x in zip(*batch, strict=True))
                ex.transfer_many(src, dst, amt)
        for a, k, lots in orders:
            self.submit(a, k, lots)
        self._send_orders()

    def _churn(self, haircut: np.ndarray, liquidated: np.ndarray) -> list[Trader]:
        """Each trader draws whether it leaves after this crisis; leavers are settled together."""
        sc = self.scenario
        traders = self._traders_in_order()
        if not traders:
            return []
        # each trader reports its equity at risk (its crisis-start equity, floored at 0)
        at_risk = [max(eq, 0.0) for a in traders for eq in a.crisis_equity]
        total_w = float(np.array(at_risk).sum())
        mean_x = float(haircut.sum() / total_w) if total_w > 0 else 0.0
        table = self._stream_at("churn", len(self.crises)).random(self.uid_capacity)
        beta, surprise = sc.churn.beta, sc.churn.surprise
        leave: list[Trader] = []
        for agent in traders:
            accounts = agent.accounts.tolist()
            cut = 0.0
            w = 0.0
            hit = False
            for j, a in enumerate(accounts):
                h_a = haircut.item(a)
                w_a = max(agent.crisis_equity[j], 0.0)
                cut = h_a if j == 0 else cut + h_a
                w = w_a if j == 0 else w + w_a
                hit = hit or bool(liquidated[a])
            x = cut / max(w, 1e-12) if cut > 0 else 0.0
            hazard = beta * x + surprise * abs(x - mean_x) * (x > 0)
            p = 1.0 - float(np.exp(-hazard))
            if hit and isinstance(agent, PassiveTrader):
                p = 1.0 - (1.0 - p) * (1.0 - sc.passive.liquidation_churn)
            if table.item(agent.uid) < p:
                leave.append(agent)
        if leave:
            self.exchange.deactivate(np.concatenate([a.accounts for a in leave]))
            for agent in leave:
                agent.remove()
            self.churned_total += len(leave)
            self.invalidate()
        return leave

    def _imitate(self, crisis: int) -> int:
        """Each passive trader and flipper meets one other and may copy its strategy."""
        imi = self.scenario.imitation
        by_type = self.agents_by_type
        pool = list(by_type.get(PassiveTrader, ())) + list(by_type.get(Flipper, ()))
        if imi.rate <= 0 or len(pool) < 2:
            return 0
        ret = []
        for agent in pool:
            start = agent.crisis_equity[0]
            if start > 0:
                now = account_margin(self, agent.account)[0]
                ret.append(now / max(start, 1e-9) - 1.0)
            else:
                ret.append(0.0)
        rng = self._stream_at("imitation", crisis)
        meet = rng.random(self.uid_capacity)
        switch = rng.random(self.uid_capacity)
        flipper = [isinstance(a, Flipper) for a in pool]
        go = []
        for i, agent in enumerate(pool):
            other = min(int(meet.item(agent.uid) * len(pool)), len(pool) - 1)
            p = min(max(imi.rate * (ret[other] - ret[i]) / imi.scale, 0.0), 1.0)
            if switch.item(agent.uid) < p and flipper[other] != flipper[i]:
                go.append(i)
        for i in go:
            self._convert(pool[i], PassiveTrader if flipper[i] else Flipper)
        return len(go)

    def _entry(self, c: CrisisRecord) -> int:
        """Entrants arrive (the rate falls with the venue's record); each opens its position."""
        sc = self.scenario
        ex = self.exchange
        count = self._entrant_count(c)  # venue-level, the same draw as the game's
        if count <= 0:
            return 0
        p = sc.passive
        max_lev = 0.9 / sc.market.initial_margin
        new = []
        for _ in range(count):
            rng = self._stream_at("population", 1, self.next_uid)
            notional = min(
                p.min_notional * (1.0 - rng.random()) ** (-1.0 / p.size_alpha), p.min_notional * 1e4
            )
            lev = float(
                np.clip(
                    p.leverage_median * np.exp(p.leverage_sigma * rng.standard_normal()),
                    1.0,
                    max_lev,
                )
            )
            side = 1 if rng.random() < 0.5 else -1
            if self.market_shares is None:
                market = int(rng.integers(0, sc.market.markets))
            else:
                market = int(draw_markets(rng, sc.market.markets, self.market_shares, 1)[0])
            acc = ex.open_accounts(1, notional / lev)
            new.append(self._new_agent(Entrant, acc, market, side, lev))
        self.entrants_left -= count
        for agent in new:  # each entrant sizes its own opening order
            delta = target_delta(agent, self, account_margin(self, agent.account)[0])
            if delta != 0:
                self.submit(agent.account, agent.market, delta)
        self._send_orders()
        if self.published_lights.size < ex.acc._cap:
            self.published_lights = np.zeros(ex.acc._cap, dtype=np.int64)
        return count


# ---------------------------------------------------------------------- the benchmark
def _live(game: ADLGame) -> int:
    """Traders in the model now."""
    by_type = game.agents_by_type
    return sum(len(by_type[cls]) for cls in TRADER_TYPES if cls in by_type)


def _timed_steps(game: ADLGame, steps: int) -> tuple[float, float, int]:
    """Run up to ``steps`` steps; (wall seconds in step(), CPU seconds in step(), agent-steps)."""
    wall = 0.0
    cpu = 0.0
    agent_steps = 0
    for _ in range(steps):
        if not game.running or game.t >= game.total_steps:
            break
        agent_steps += _live(game)
        c0 = time.process_time()
        t0 = time.perf_counter()
        game.step()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    return wall, cpu, agent_steps


def _headline(game: ADLGame) -> dict:
    """Figures compared between the two games at the end of the window."""
    from experiments.runs.results import RunResult

    out = dict(RunResult.from_game(game).metrics)
    frame = game.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    out["timeseries"] = frame.to_dict(orient="list")
    ex = game.exchange
    out["cash"] = ex.acc.cash.tolist()
    out["pos"] = ex.acc.pos.tolist()
    return out


def _timed_game(game: ADLGame, cuts: tuple[int, ...]) -> list[tuple[float, float, int]]:
    """Run ``game`` in consecutive stretches of ``cuts`` steps; (wall, cpu, agent-steps) each."""
    return [_timed_steps(game, n) for n in cuts]


def _rate(agent_steps: int, seconds: float) -> float:
    return agent_steps / seconds if seconds > 0 else math.inf


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.inf


def bench_game(
    traders: int = 100_000,
    crises: int = 10,
    naive_crises: int | None = None,
    seed: int = 1,
    scenario: Scenario | None = None,
) -> dict:
    """Agent-steps per second of the fast game and of the naive reference, in one process.

    Both run ``scenario`` (default: the built-in default) at ``traders`` traders and
    ``crises`` crises, with ``two_pass=False``.  The fast :class:`ADLGame` runs the whole
    schedule; the :class:`NaiveADLGame` runs the window: the whole run too by default
    (``naive_crises=None``, or ``naive_crises == crises``), else the first ``naive_crises``
    calm + crisis cycles.  The headline rates and ratio are over the window for both (see
    :data:`BENCH_DEFINITION`); the first cycle's ratio (``first_cycle_*``) is read off the
    same runs, and the fast game's full run is reported as its own figure.
    ``headline_equal`` says whether both games ended the window with identical summaries,
    step series, cash and positions.
    """
    require(int(traders) >= 1, "traders", "an integer >= 1", traders)
    require(int(crises) >= 1, "crises", "an integer >= 1", crises)
    if naive_crises is None:
        naive_crises = int(crises)
    require(
        1 <= int(naive_crises) <= int(crises), "naive_crises", f"in [1, {crises}]", naive_crises
    )
    sc = (scenario or load_scenario()).replace(
        **{"run.traders": int(traders), "run.crises": int(crises)}
    )
    cycle = sc.run.calm_steps + sc.run.crisis_steps
    t0 = time.perf_counter()
    fast = ADLGame(sc, seed=seed, two_pass=False)
    fast_setup = time.perf_counter() - t0
    total_steps = fast.total_steps
    # the whole run (the last calm period included) when the naive game plays every crisis
    window = total_steps if int(naive_crises) == int(crises) else int(naive_crises) * cycle
    cuts = (cycle, window - cycle)
    f_first, f_rest = _timed_game(fast, cuts)
    fast_head = _headline(fast)
    f_after = _timed_steps(fast, total_steps)
    del fast
    gc.collect()  # the fast game's garbage is not collected on the naive game's clock

    t0 = time.perf_counter()
    naive = NaiveADLGame(sc, seed=seed, two_pass=False)
    naive_setup = time.perf_counter() - t0
    n_first, n_rest = _timed_game(naive, cuts)
    naive_head = _headline(naive)
    del naive
    gc.collect()

    equal = json.dumps(fast_head, sort_keys=True, default=str) == json.dumps(
        naive_head, sort_keys=True, default=str
    )
    w_secs, w_cpu, w_agent_steps = (f_first[i] + f_rest[i] for i in range(3))
    n_secs, n_cpu, n_agent_steps = (n_first[i] + n_rest[i] for i in range(3))
    game_rate = _rate(w_agent_steps, w_secs)
    naive_rate = _rate(n_agent_steps, n_secs)
    full_secs = w_secs + f_after[0]
    full_agent_steps = w_agent_steps + f_after[2]
    return {
        "traders": int(traders),
        "crises": int(crises),
        "steps": int(total_steps),
        "window_steps": int(window),
        "window_agent_steps": int(w_agent_steps),
        "game_agent_steps_per_s": float(game_rate),
        "naive_mesa_agent_steps_per_s": float(naive_rate),
        "game_speedup_vs_naive": float(_ratio(game_rate, naive_rate)),
        "game_seconds": float(w_secs),
        "naive_seconds": float(n_secs),
        "game_full_run_seconds": float(full_secs),
        "game_full_run_agent_steps": int(full_agent_steps),
        "game_full_run_agent_steps_per_s": float(_rate(full_agent_steps, full_secs)),
        "game_cpu_seconds": float(w_cpu),
        "naive_cpu_seconds": float(n_cpu),
        "game_speedup_vs_naive_cpu": float(_ratio(n_cpu, w_cpu)),
        "first_cycle_steps": int(min(cycle, window)),
        "game_first_cycle_seconds": float(f_first[0]),
        "naive_first_cycle_seconds": float(n_first[0]),
        "first_cycle_speedup_vs_naive": float(
            _ratio(_rate(f_first[2], f_first[0]), _rate(n_first[2], n_first[0]))
        ),
        "first_cycle_speedup_vs_naive_cpu": float(_ratio(n_first[1], f_first[1])),
        "game_setup_seconds": float(fast_setup),
        "naive_setup_seconds": float(naive_setup),
        "headline_equal": bool(equal and n_agent_steps == w_agent_steps),
        "definition": BENCH_DEFINITION,
    }


if __name__ == "__main__":  # pragma: no cover - manual benchmark entry point
    print(json.dumps(bench_game(), indent=2))
