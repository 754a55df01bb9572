"""Learning traders inside the game: their accounts, their moves, what they see and earn.

A learner is an owner of ``max_split`` exchange accounts (one group, unlabelled kind 0, no
Mesa agent: the game's behaviours, churn and imitation never touch it) plus an off-exchange
wallet.  Every step it chooses four numbers in ``[-1, 1]``, the strategy space of the
searched audit (:mod:`experiments.studies.audit.strategy`) made per-step:

0. ``exposure``: the signed notional it wants, as a share of its maximum leverage times its
   equity on the exchange (-1 = fully short, 1 = fully long);
1. ``reset``: above 0.5, close and reopen every position through the book (entry reset);
2. ``margin``: above 0.5, deposit ``(a - 0.5) / 0.5`` of the wallet; below -0.5, withdraw
   that share of the free collateral to the wallet (leverage down or up);
3. ``split``: how many of its accounts carry the position, ``1 + round(max(a, 0) (S - 1))``
   (``a <= 0``: one account, ``a = 1``: all ``S``); the position is spread equally over
   them and cash follows.

Every move goes through the exchange as for anyone: orders walk the book and pay the taker
fee, orders that break initial margin are refused, withdrawals are limited to free
collateral.  Positions move between its accounts only by trading (a venue does not transfer
positions between sub-accounts).  Wealth is the wallet plus the equity of its accounts; the
reward is the change of wealth over a step, as a share of the starting wealth.

Everything is vectorised over learners (one order per account per step, in one exchange
call per market and direction).
"""

from __future__ import annotations

import numpy as np

from market import arrays
from market.accounts import ACTIVE
from market.arrays import any_true, sum_list, unique_sorted
from market.exchange import Exchange

#: Length of one learner's observation.
OBS_SIZE = 13

#: The observation's fields, in order.
OBS_FIELDS = (
    "exposure",  # signed notional / wealth
    "entry_gap",  # (mark - entry) / mark, signed by the position (profit per unit of price)
    "upnl",  # unrealised PnL / wealth
    "on_exchange",  # equity on the exchange / wealth
    "wallet",  # wallet / wealth
    "leverage",  # notional / equity, over the maximum leverage
    "lights",  # the venue's published ADL indicator of its accounts (0-4), over 4
    "fund",  # backstop capital over its starting capital
    "crisis",  # 1 in a crisis step, else 0
    "progress",  # steps into the current phase over the phase's length
    "mark",  # mark / starting mark - 1
    "accounts",  # accounts carrying the position over max_split
    "haircut",  # ADL haircut taken in the last step / wealth
)

#: Length of one learner's action.
ACT_SIZE = 4


class Learners:
    """``n`` learning traders of one game, each with ``max_split`` accounts and a wallet.

    Args:
        game: the running game (:class:`experiments.game.model.ADLGame`).
        n: learners.
        cash: each learner's starting collateral on the exchange (in its first account).
        wallet: each learner's starting wallet (off the exchange).
        market: the market each learner trades (one index, or one per learner).
        max_split: accounts per learner.
        max_leverage: the most leverage an exposure of 1 asks for (capped by the market's
            initial margin).
    """

    def __init__(
        self,
        game: object,
        n: int,
        *,
        cash: float = 10_000.0,
        wallet: float = 10_000.0,
        market: int | np.ndarray = 0,
        max_split: int = 4,
        max_leverage: float = 10.0,
    ) -> None:
        self.game = game
        ex: Exchange = game.exchange  # type: ignore[attr-defined]
        self.ex = ex
        self.n = int(n)
        self.S = int(max_split)
        first_group = int(ex.acc.group[: ex.n_accounts].max(initial=-1)) + 1
        groups = np.repeat(np.arange(first_group, first_group + self.n), self.S)
        cash_each = np.zeros((self.n, self.S))
        cash_each[:, 0] = float(cash)
        rows = ex.open_accounts(self.n * self.S, cash_each.ravel(), kind=0, group=groups)
        self.rows = rows.reshape(self.n, self.S)
        self.market = np.broadcast_to(np.asarray(market, dtype=np.int64), (self.n,)).copy()
        self._markets = unique_sorted(self.market).tolist()  # the markets learners trade
        im = np.array([ex.specs[int(k)].initial_margin for k in self.market])
        self.max_lev = np.minimum(float(max_leverage), 0.95 / im)
        self.wallet = np.full(self.n, float(wallet))
        self.used = np.ones(self.n, dtype=np.int64)
        self._slots = np.arange(self.S)[None, :]  # each account's place among its learner's
        self.mark0 = ex.marks.copy()
        self.fund0 = max(ex.backstop_capital(), 1e-9)
        # the accounts as the last step closed, read once (kept until act moves them): equity,
        # unrealised PnL and signed lots, (n, S) each
        self._eq: np.ndarray | None = None
        self._upnl: np.ndarray | None = None
        self._held: np.ndarray | None = None
        self._wealth: np.ndarray | None = None  # and the wealth they give
        self._closed_at = -1  # the game step they were read at
        self.wealth0 = self.wealth()
        self.last_wealth = self.wealth0.copy()
        self.last_haircut = np.zeros(self.n)
        self._adl_seen = len(ex.log.adl)

    # ------------------------------------------------------------------ state
    def _kept(self) -> bool:
        """Whether the reads :meth:`after_step` kept still hold (no game step since)."""
        if self._closed_at != self.game.t:  # type: ignore[attr-defined]
            self._eq = self._upnl = self._held = self._wealth = None
            return False
        return True

    def equity(self) -> np.ndarray:
        """Equity of each learner's accounts, (n, S) (read once per step after it closes)."""
        if self._kept() and self._eq is not None:
            return self._eq
        if self._upnl is not None:  # cash moved, positions did not: equity(rows), bit for bit
            rows = self.rows.ravel()
            return (self.ex.acc.cash[rows] + self._upnl.ravel()).reshape(self.n, self.S)
        return self.ex.equity(self.rows.ravel()).reshape(self.n, self.S)

    def wealth(self) -> np.ndarray:
        """Wallet plus equity on the exchange, per learner."""
        if self._wealth is not None and self._kept():
            return self._wealth
        return self.wallet + self.equity().sum(axis=1)

    def alive(self) -> np.ndarray:
        """Learners with positive wealth."""
        return self.wealth() > 0

    def _lots(self) -> np.ndarray:
        """Signed lots of each account in its learner's market, (n, S)."""
        if self._kept() and self._held is not None:
            return self._held
        book = self.ex.acc.positions
        if len(self._markets) == 1:  # every learner in one market
            return book.lots_of(self.rows.ravel(), self._markets[0]).reshape(self.n, self.S)
        out = np.zeros((self.n, self.S), dtype=np.int64)
        for k in self._markets:
            sel = self.market == k
            out[sel] = book.lots_of(self.rows[sel].ravel(), k).reshape(-1, self.S)
        return out

    # ------------------------------------------------------------------ acting
    def act(self, actions: np.ndarray) -> None:
        """Carry out one step's moves (``actions``: (n, 4) in [-1, 1]; NaN counts as 0).

        Learners with a few accounts in all (up to ``arrays.FEW_ROWS``, as one learner of
        four) move on Python scalars (:meth:`_act_few`): the same operations in the same
        order, the same exchange calls with the same arguments, so the same numbers; more
        move as arrays."""
        if self.n * self.S <= arrays.FEW_ROWS:
            self._act_few(np.asarray(actions, dtype=np.float64).reshape(self.n, ACT_SIZE))
        else:
            self._act_arrays(actions)

    def _act_arrays(self, actions: np.ndarray) -> None:
        """:meth:`act` on arrays (every learner at once)."""
        a = np.asarray(actions, dtype=np.float64)
        a = np.minimum(np.maximum(np.where(np.isnan(a), 0.0, a), -1.0), 1.0)  # into [-1, 1]
        a = a.reshape(self.n, ACT_SIZE)
        ex = self.ex
        active = (ex.acc.flags[self.rows] & ACTIVE) != 0  # (n, S)
        # margin in: deposits from the wallet, spread over the accounts in use
        dep = np.where(a[:, 2] > 0.5, (a[:, 2] - 0.5) / 0.5 * self.wallet, 0.0)
        before = self.used
        self.used = 1 + np.rint(np.maximum(a[:, 3], 0.0) * (self.S - 1)).astype(np.int64)
        changed = self.used != before
        in_use = self._slots < self.used[:, None]
        if any_true(dep > 0):
            share = np.where(in_use & active, 1.0, 0.0)
            share /= np.maximum(share.sum(axis=1, keepdims=True), 1.0)
            amount = (dep[:, None] * share).ravel()
            go = amount > 0
            ex.deposit(self.rows.ravel()[go], amount[go])
            self.wallet -= (dep[:, None] * share).sum(axis=1)
            self._eq = self._wealth = None  # the cash moved
        # the orders: each learner's target lots spread over its accounts in use
        eq = self.equity()
        total_eq = np.maximum(eq.sum(axis=1), 0.0)
        price = ex.marks[self.market] * ex.lot[self.market]
        target = np.trunc(a[:, 0] * self.max_lev * total_eq / price).astype(np.int64)
        per = _spread(target, self.used, self._slots)
        per = np.where(active, per, 0)
        now = self._lots()
        self._eq = self._upnl = self._held = self._wealth = None  # the moves change them
        delta = per - now
        if any_true(changed):  # reduce first, move the cash, then add (the cash follows the lots)
            reducing = (delta != 0) & (np.abs(per) < np.abs(now))
            self._orders(np.where(reducing, delta, 0))
            self._rebalance_cash(in_use & active, changed)
            self._orders(np.where(reducing, 0, delta))
        else:
            self._orders(delta)
        # entry reset: close and reopen through the book
        if any_true(a[:, 1] > 0.5):
            lots = np.where((a[:, 1] > 0.5)[:, None], self._lots(), 0)
            self._orders(-lots)
            self._orders(lots)
        # margin out: withdraw a share of the free collateral to the wallet
        out = np.where(a[:, 2] < -0.5, (-a[:, 2] - 0.5) / 0.5, 0.0)
        if any_true(out > 0):
            rows = self.rows[out > 0].ravel()
            f = np.repeat(out[out > 0], self.S)
            ok = (ex.acc.flags[rows] & ACTIVE) != 0
            amount = f * ex.free_collateral(rows)
            go = ok & (amount > 0)
            if any_true(go):
                ext0 = ex.external
                ex.withdraw(rows[go], amount[go])
                got = ext0 - ex.external  # what left the exchange (a withdrawal cut stays)
                paid = np.zeros(self.n)
                owner = np.repeat(np.flatnonzero(out > 0), self.S)[go]
                np.add.at(paid, owner, amount[go])
                total = float(paid.sum())
                self.wallet += paid * (got / total if total > 0 else 0.0)

    def _act_few(self, acts: np.ndarray) -> None:
        """:meth:`act` on Python scalars (``acts``: (n, 4)), learner by learner: the array
        path's arithmetic in its order, and its exchange calls (one per market and move, the
        accounts in the same order) with the same arguments."""
        ex, n, S = self.ex, self.n, self.S
        a = [[0.0 if x != x else min(max(x, -1.0), 1.0) for x in row] for row in acts.tolist()]
        rows = self.rows.tolist()
        active = [[f & ACTIVE != 0 for f in row] for row in ex.acc.flags[self.rows].tolist()]
        wallet = self.wallet.tolist()
        before = self.used.tolist()
        used = [1 + round(max(x[3], 0.0) * (S - 1)) for x in a]  # round: half to even, as rint
        self.used[:] = used
        changed = [u != b for u, b in zip(used, before, strict=True)]
        live = [[s < u and on for s, on in enumerate(act)] for u, act in zip(used, active)]
        # margin in: deposits from the wallet, spread over the accounts in use
        dep = [(x[2] - 0.5) / 0.5 * w if x[2] > 0.5 else 0.0 for x, w in zip(a, wallet)]
        if any(d > 0 for d in dep):
            to, amounts = [], []
            for i in range(n):
                share = [1.0 if on else 0.0 for on in live[i]]
                count = max(sum_list(share), 1.0)
                part = [dep[i] * (x / count) for x in share]
                to += [r for r, x in zip(rows[i], part) if x > 0]
                amounts += [x for x in part if x > 0]
                wallet[i] -= sum_list(part)
            ex.deposit(np.array(to, dtype=np.int64), np.array(amounts, dtype=np.float64))
            self.wallet[:] = wallet
            self._eq = self._wealth = None  # the cash moved
        # the orders: each learner's target lots spread over its accounts in use
        eq = self.equity().tolist()
        market, max_lev = self.market.tolist(), self.max_lev.tolist()
        per = []
        for i, k in enumerate(market):
            total_eq = max(sum_list(eq[i]), 0.0)
            price = ex.marks.item(k) * ex.lot.item(k)
            target = _trunc_lots(a[i][0] * max_lev[i] * total_eq / price)
            per.append(
                [x if on else 0 for x, on in zip(_spread_one(target, used[i], S), active[i])]
            )
        now = self._lots().tolist()
        self._eq = self._upnl = self._held = self._wealth = None  # the moves change them
        delta = [[p - q for p, q in zip(pr, qr)] for pr, qr in zip(per, now)]
        if any(changed):  # reduce first, move the cash, then add (the cash follows the lots)
            cut = [
                [d != 0 and abs(p) < abs(q) for d, p, q in zip(dr, pr, qr)]
                for dr, pr, qr in zip(delta, per, now)
            ]
            self._orders_few([[d if c else 0 for d, c in zip(*dc)] for dc in zip(delta, cut)])
            self._rebalance_cash_few(live, changed)
            self._orders_few([[0 if c else d for d, c in zip(*dc)] for dc in zip(delta, cut)])
        else:
            self._orders_few(delta)
        # entry reset: close and reopen through the book
        if any(x[1] > 0.5 for x in a):
            held = self._lots().tolist()
            lots = [h if x[1] > 0.5 else [0] * S for x, h in zip(a, held)]
            self._orders_few([[-q for q in row] for row in lots])
            self._orders_few(lots)
        # margin out: withdraw a share of the free collateral to the wallet
        out = [(-x[2] - 0.5) / 0.5 if x[2] < -0.5 else 0.0 for x in a]
        if any(f > 0 for f in out):
            who = [i for i, f in enumerate(out) if f > 0]
            acc = np.array([r for i in who for r in rows[i]], dtype=np.int64)
            ok = (ex.acc.flags[acc] & ACTIVE).tolist()
            free = ex.free_collateral(acc).tolist()
            amount = [out[i] * x for i, x in zip(np.repeat(who, S).tolist(), free)]
            go = [j for j, x in enumerate(amount) if ok[j] and x > 0]
            if go:
                ext0 = ex.external
                ex.withdraw(acc[go], np.array([amount[j] for j in go], dtype=np.float64))
                got = ext0 - ex.external  # what left the exchange (a withdrawal cut stays)
                paid = [0.0] * n
                for j in go:
                    paid[who[j // S]] += amount[j]
                total = sum_list(paid)
                factor = got / total if total > 0 else 0.0
                self.wallet[:] = [w + x * factor for w, x in zip(wallet, paid)]

    def _orders(self, delta: np.ndarray) -> None:
        """Send ``delta`` (n, S) signed lots, one exchange call per market."""
        if len(self._markets) == 1:  # every learner in one market
            go = delta != 0
            if any_true(go):
                self.ex.trade(self.rows[go], self._markets[0], delta[go])
            return
        if not delta.any():
            return
        for k in self._markets:
            sel = (self.market == k)[:, None] & (delta != 0)
            if sel.any():
                self.ex.trade(self.rows[sel], int(k), delta[sel])

    def _rebalance_cash(self, in_use: np.ndarray, changed: np.ndarray) -> None:
        """For the learners whose accounts in use ``changed``: even the cash out over the
        accounts in use, taking it from those out of use (within free collateral; a refused
        transfer leaves the cash where it is)."""
        ex = self.ex
        cash = ex.acc.cash[self.rows]
        free = ex.free_collateral(self.rows.ravel()).reshape(self.n, self.S)
        n_in = np.maximum(in_use.sum(axis=1, keepdims=True), 1)
        want = np.where(in_use, cash.sum(axis=1, keepdims=True) / n_in, 0.0)
        give = np.minimum(np.maximum(cash - want, 0.0), free)
        need = np.maximum(want - cash, 0.0)
        give_rows = give > 1e-8  # (give >= 0) > 1e-9 and not isclose(give, 0)
        if not any_true(give_rows) or not any_true(need > 1e-9):
            return
        src, dst, amt = [], [], []
        todo = changed & give_rows.any(axis=1) & (need > 1e-9).any(axis=1)
        for i in np.flatnonzero(todo).tolist():
            g = give[i].copy()
            d = need[i].copy()
            for s in np.flatnonzero(g > 1e-9).tolist():
                for t in np.flatnonzero(d > 1e-9).tolist():
                    x = min(g[s], d[t])
                    if x <= 1e-9:
                        continue
                    src.append(self.rows[i, s])
                    dst.append(self.rows[i, t])
                    amt.append(x)
                    g[s] -= x
                    d[t] -= x
        if src:
            ex.transfer_many(np.array(src), np.array(dst), np.array(amt))

    def _rebalance_cash_few(self, in_use: list[list[bool]], changed: list[bool]) -> None:
        """:meth:`_rebalance_cash` on Python scalars (the same transfers, one exchange call)."""
        ex, S = self.ex, self.S
        flat = self.rows.ravel()
        cash_all = ex.acc.cash[flat].tolist()
        free_all = ex.free_collateral(flat).tolist()
        give, need = [], []
        for i, use in enumerate(in_use):
            cash, free = cash_all[i * S : (i + 1) * S], free_all[i * S : (i + 1) * S]
            mean = sum_list(cash) / max(sum(use), 1)
            want = [mean if u else 0.0 for u in use]
            give.append([min(max(c - w, 0.0), f) for c, w, f in zip(cash, want, free)])
            need.append([max(w - c, 0.0) for c, w in zip(cash, want)])
        if not any(g > 1e-8 for row in give for g in row):
            return
        if not any(d > 1e-9 for row in need for d in row):
            return
        rows = self.rows.tolist()
        src, dst, amt = [], [], []
        for i, (g, d) in enumerate(zip(give, need)):
            if not (changed[i] and any(x > 1e-8 for x in g) and any(x > 1e-9 for x in d)):
                continue
            for s in [s for s, x in enumerate(g) if x > 1e-9]:
                for t in [t for t, x in enumerate(d) if x > 1e-9]:
                    x = min(g[s], d[t])
                    if x <= 1e-9:
                        continue
                    src.append(rows[i][s])
                    dst.append(rows[i][t])
                    amt.append(x)
                    g[s] -= x
                    d[t] -= x
        if src:
            ex.transfer_many(np.array(src), np.array(dst), np.array(amt))

    def _orders_few(self, delta: list[list[int]]) -> None:
        """:meth:`_orders` of ``delta`` given as lists: the same exchange calls."""
        rows = self.rows.tolist()
        market = self.market.tolist() if len(self._markets) > 1 else [self._markets[0]] * self.n
        for k in self._markets:
            acc, lots = [], []
            for i, (rr, dr) in enumerate(zip(rows, delta)):
                if market[i] == k:
                    acc += [r for r, d in zip(rr, dr) if d]
                    lots += [d for d in dr if d]
            if acc:
                self.ex.trade(np.array(acc, dtype=np.int64), int(k), np.array(lots, dtype=np.int64))

    # ------------------------------------------------------------------ seeing
    def after_step(self) -> np.ndarray:
        """Close the step: the ADL haircuts taken, and the reward per learner."""
        ex = self.ex
        n_adl = len(ex.log.adl)
        self.last_haircut = np.zeros(self.n)
        if n_adl > self._adl_seen:
            adl = ex.log.adl.to_array()[self._adl_seen :]
            owner = np.full(ex.n_accounts + 1, -1, dtype=np.int64)
            owner[self.rows.ravel()] = np.repeat(np.arange(self.n), self.S)
            who = owner[np.minimum(adl["account"], ex.n_accounts)]
            mine = who >= 0
            np.add.at(self.last_haircut, who[mine], adl["haircut"][mine])
            self._adl_seen = n_adl
        # equity as the step closed, and its PnL part for the observation: equity(rows) is
        # cash + account_upnl(rows) row by row (unique rows), so one read gives both
        self._eq = self._upnl = self._held = self._wealth = None  # read anew
        rows = self.rows.ravel()
        upnl = ex.account_upnl(rows)
        self._held = self._lots()
        self._eq = (ex.acc.cash[rows] + upnl).reshape(self.n, self.S)
        self._upnl = upnl.reshape(self.n, self.S)
        self._closed_at = self.game.t  # type: ignore[attr-defined]
        w = self._wealth = self.wealth()
        reward = (w - self.last_wealth) / self.wealth0
        self.last_wealth = w
        return reward

    def observe(self) -> np.ndarray:
        """The observation of every learner, (n, 13) float32 (fields: :data:`OBS_FIELDS`).

        For learners with a few accounts in all (up to ``arrays.FEW_ROWS``) computed on
        Python scalars (:meth:`_observe_few`, the same operations, so the same values)."""
        few = self.n * self.S <= arrays.FEW_ROWS
        obs = self._observe_few() if few else self._observe_arrays()
        return obs.astype(np.float32)

    def _observe_arrays(self) -> np.ndarray:
        """:meth:`observe` on arrays (every learner at once), in float64."""
        ex, game = self.ex, self.game
        rows = self.rows.ravel()
        eq = self.equity()
        on_ex = eq.sum(axis=1)
        wealth = self.wallet + on_ex
        size = np.abs(wealth)
        scale = np.where(size > 1e-9, size, 1.0)
        lots = self._lots()
        q = lots.sum(axis=1)
        mark = ex.marks[self.market]
        notional = q * ex.lot[self.market] * mark
        upnl = ex.account_upnl(rows).reshape(self.n, self.S) if self._upnl is None else self._upnl
        upnl = upnl.sum(axis=1)
        entry_value = notional - upnl  # q * lot * entry
        obs = np.zeros((self.n, OBS_SIZE))  # the columns of OBS_FIELDS, in order
        gross = np.abs(notional)
        np.divide(notional - entry_value, gross, out=obs[:, 1], where=q != 0)  # 0 when flat
        np.divide(gross, on_ex, out=obs[:, 5], where=on_ex > 0)
        obs[:, 5] /= self.max_lev
        obs[:, 0] = notional / scale
        obs[:, 2] = upnl / scale
        obs[:, 3] = on_ex / scale
        obs[:, 4] = self.wallet / scale
        pub = game.published_lights  # type: ignore[attr-defined]
        lights = pub[np.minimum(rows, pub.size - 1)] * (rows < pub.size)
        obs[:, 6] = lights.reshape(self.n, self.S).max(axis=1) / 4.0
        obs[:, 7] = ex.backstop_capital() / self.fund0
        crisis = game.phase == "crisis"  # type: ignore[attr-defined]
        obs[:, 8] = 1.0 if crisis else 0.0
        sc = game.scenario  # type: ignore[attr-defined]
        length = sc.run.crisis_steps if crisis else sc.run.calm_steps
        obs[:, 9] = game.period_step / max(length, 1)  # type: ignore[attr-defined]
        obs[:, 10] = mark / self.mark0[self.market] - 1.0
        obs[:, 11] = self.used / self.S
        obs[:, 12] = self.last_haircut / scale
        # inside the observation space: NaN as 0, everything clipped to +-1e6
        obs[np.isnan(obs)] = 0.0
        np.maximum(obs, -1e6, out=obs)
        return np.minimum(obs, 1e6, out=obs)

    def _observe_few(self) -> np.ndarray:
        """:meth:`observe` on Python scalars, learner by learner, in float64 (the array
        path's arithmetic in its order; a division by zero hands over to the array path,
        whose numpy rules give it its value)."""
        ex, game, n, S = self.ex, self.game, self.n, self.S
        eq = self.equity().tolist()
        lots = self._lots().tolist()
        ups = self._upnl if self._upnl is not None else ex.account_upnl(self.rows.ravel())
        upnl_rows = ups.reshape(n, S).tolist()
        pub = game.published_lights  # type: ignore[attr-defined]
        fund = ex.backstop_capital() / self.fund0
        crisis = game.phase == "crisis"  # type: ignore[attr-defined]
        sc = game.scenario  # type: ignore[attr-defined]
        length = sc.run.crisis_steps if crisis else sc.run.calm_steps
        progress = game.period_step / max(length, 1)  # type: ignore[attr-defined]
        wallet, used = self.wallet.tolist(), self.used.tolist()
        haircut, max_lev = self.last_haircut.tolist(), self.max_lev.tolist()
        out = []
        try:
            for i, (k, rows) in enumerate(zip(self.market.tolist(), self.rows.tolist())):
                on_ex = sum_list(eq[i])
                size = abs(wallet[i] + on_ex)
                scale = size if size > 1e-9 else 1.0
                q = sum(lots[i])
                mark = ex.marks.item(k)
                notional = q * ex.lot.item(k) * mark
                upnl = sum_list(upnl_rows[i])
                entry_value = notional - upnl  # q * lot * entry
                gross = abs(notional)
                light = max(pub.item(r) if r < pub.size else 0 for r in rows)
                row = [
                    notional / scale,
                    (notional - entry_value) / gross if q != 0 else 0.0,
                    upnl / scale,
                    on_ex / scale,
                    wallet[i] / scale,
                    (gross / on_ex if on_ex > 0 else 0.0) / max_lev[i],
                    light / 4.0,
                    fund,
                    1.0 if crisis else 0.0,
                    progress,
                    mark / self.mark0.item(k) - 1.0,
                    used[i] / S,
                    haircut[i] / scale,
                ]
                # inside the observation space: NaN as 0, everything clipped to +-1e6
                out.append([0.0 if x != x else min(max(x, -1e6), 1e6) for x in row])
        except ZeroDivisionError:
            return self._observe_arrays()
        return np.array(out, dtype=np.float64)


def _spread(total: np.ndarray, used: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``total`` lots per learner over its first ``used`` accounts, equal shares, the
    remainder one lot each to the first accounts (signs kept), (n, size); ``j``: the
    accounts' places, ``arange(size)[None, :]``."""
    mag = np.abs(total)
    base = mag // used
    extra = mag - base * used
    per = np.where(j < used[:, None], base[:, None] + (j < extra[:, None]), 0)
    return per * np.sign(total)[:, None]


def _trunc_lots(x: float) -> int:
    """``np.trunc(x).astype(np.int64)`` of one float (one outside the int64 range, or not a
    number, through numpy's own cast)."""
    return int(x) if abs(x) < 2.0**63 else int(np.array(x).astype(np.int64))


def _spread_one(total: int, used: int, size: int) -> list[int]:
    """:func:`_spread` of one learner's ``total`` lots over its first ``used`` of ``size``
    accounts, as a list."""
    mag = abs(total)
    base = mag // used
    extra = mag - base * used
    sign = (total > 0) - (total < 0)
    return [(base + (j < extra)) * sign if j < used else 0 for j in range(size)]
