"""The exchange: accounts, the order API and the money (the waterfall each step runs is
:mod:`market.waterfall`, mixed in).

Money model (zero-sum, cash-settled perpetuals):

* Every position has a counterparty inside the exchange.  Orders and liquidations fill
  against the *book account* (row 0, flag BOOK): the pooled inventory of the liquidity
  providers, which walks a depth curve (:mod:`market.liquidity`) and so fills worse with size
  and stress.  Long open interest equals short open interest in every market by construction.
* A liquidated account whose fills slip past its bankruptcy price ends with negative cash: a
  *hole*.  The holes of a step add up to the deficit D.
* The backstop pays holes first: an insurance fund (a capital figure fed by a share of fees
  and by liquidation fees) or a liquidator vault (an account, flag VAULT, that takes over
  accounts far below maintenance and unwinds their positions into the book; when the vault's
  own equity turns negative, that is a hole too).
* What the backstop cannot pay is the ADL need.  With an ADL policy configured, each market
  with a deficit share gets a snapshot of its eligible positions and the policy allocates
  haircuts (budget execution) or the liquidated lots are closed against its order (position
  execution); force-closed lots are closed at the mark against the book and the haircut is
  debited from the winner (gains ledger first), the same wealth transfer as closing at the
  rule's execution price.  Raised money fills the holes pro rata; any overshoot goes to the
  insurance fund.  What is still missing goes to the shortfall bearer (residual).

Conservation: ``sum(cash) + sum(upnl) + fund + fee_revenue - bad_debt - debt == external`` where
``external`` counts every dollar that entered (initial capital, deposits) minus withdrawals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress

import numpy as np

from market import arrays
from market import margin as mg
from market.accounts import (
    ACTIVE,
    BOOK,
    VAULT,
    Accounts,
    book_gain,
    book_gain_one,
)
from market.adl.base import EXECUTIONS, ADLPolicy, Snapshot
from market.adl.eligibility import Eligibility
from market.adl.severity import FullSeverity, SeverityController
from market.arrays import (
    all_true,
    any_true,
    gather,
    group_runs,
    has_repeats,
    per_row,
    stable_argsort,
    sum_list,
    unique_sorted,
)
from market.errors import InputError, require
from market.events import TRADE_KINDS, EventLog
from market.liquidity import fill_prices, fill_prices_books, fill_prices_few
from market.positions import sum_by
from market.spec import MarketSpec
from market.waterfall import Waterfall

BACKSTOP_KINDS = ("fund", "vault", "none")

#: Who carries the part of a deficit that neither the backstop nor ADL covered:
#: ``"written_off"`` — bad debt, the exchange is insolvent by that amount;
#: ``"fund_debt"`` — the backstop borrows it and repays it from its future income (fee share,
#: liquidation fees, LP deposits, ADL surplus) before it grows again; ``"venue"`` — the venue's
#: own equity pays it (money from outside, counted in ``venue_paid``); ``"socialised"`` — carried
#: until :meth:`Exchange.settle`, then charged to the accounts in profit pro rata to their
#: unrealised profit (Deribit-style socialisation at settlement).
SHORTFALL_BEARERS = ("written_off", "fund_debt", "venue", "socialised", "withdrawals")
_KIND = {name: i for i, name in enumerate(TRADE_KINDS)}


def fill_arithmetic(
    q0: np.ndarray, e0: np.ndarray, dq: np.ndarray, price: np.ndarray, lot: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, average entry and realised PnL after filling ``dq`` lots at ``price``.

    Elementwise over rows (``lot`` may be one number or one per row): the single place where
    a fill's arithmetic is written, so batched callers get the same bits as the exchange.

    Returns:
        (new position, new average entry (0 where flat), realised PnL).
    """
    q1 = q0 + dq
    sign0 = np.sign(q0)
    same = (q0 == 0) | (sign0 == np.sign(dq))
    size, held = np.abs(dq), np.abs(q0)
    closed = np.where(same, 0, np.minimum(size, held))
    realised = closed * sign0 * lot * (price - e0)
    flat = q1 == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        grown = (q0 * e0 + dq * price) / np.where(flat, 1, q1)
    flipped = ~same & (size > held)
    new_e = np.where(flat, 0.0, np.where(same, grown, np.where(flipped, price, e0)))
    return q1, new_e, realised


def fill_arithmetic_one(
    q0: int, e0: float, dq: int, price: float, lot: float
) -> tuple[int, float, float]:
    """:func:`fill_arithmetic` for one fill, in Python scalars: the same operations in the
    same order, so the same bits, without numpy's per-call cost."""
    q1 = q0 + dq
    same = q0 == 0 or ((q0 > 0) == (dq > 0) and dq != 0)
    closed = 0 if same else min(abs(dq), abs(q0))
    sign0 = (q0 > 0) - (q0 < 0)
    realised = closed * sign0 * lot * (price - e0)
    if q1 == 0:
        return 0, 0.0, realised
    if same:
        return q1, (q0 * e0 + dq * price) / q1, realised
    return q1, (price if abs(dq) > abs(q0) else e0), realised


def _one_side(lots: np.ndarray) -> bool:
    """Whether every order of ``lots`` (not empty) is a buy, or every one a sell (on scalars
    for a few)."""
    if lots.size <= arrays.FEW_ROWS:
        values = lots.tolist()
        return min(values) > 0 or max(values) < 0
    return bool(lots.min() > 0 or lots.max() < 0)


def _side_fills(lots: list[int], prices: list[float]) -> list[tuple[int, float]]:
    """The book's side of orders ``lots`` filled at ``prices``, in scalars: its fill of the
    buys, then its fill of the sells (sides without orders skipped), each the side's lots
    (negated) at the average price of its orders (their products summed as numpy sums)."""
    fills = []
    for buys in (True, False):
        side = [(d, p) for d, p in zip(lots, prices, strict=True) if d and (d > 0) == buys]
        if side:
            q = sum(d for d, _ in side)
            fills.append((-q, sum_list([d * p for d, p in side]) / q))
    return fills


@dataclass(frozen=True)
class BackstopConfig:
    """The backstop layer of the waterfall.

    Attributes:
        kind: "fund" (insurance fund), "vault" (liquidator vault account) or "none".
        capital: starting capital of the fund or vault, dollars.
        fee_share: share of trading fees paid into the fund (fund mode).
        vault_trigger: the vault takes over accounts whose equity < trigger * maintenance.
        vault_unwind: share of the vault's inventory sent to the book each step.
        max_drawdown: (fund) the share of its reference balance the fund may pay before ADL
            starts: it pays down to ``(1 - max_drawdown) * reference`` and ADL covers the
            rest.  1 (the default): until the fund is empty.  Bybit's 2025 trigger (the
            pool's drawdown against its 8-hour maximum held at -30 %) and OKX's threshold
            (30 % below its 8-hour average) are about 0.3.  The reference is the fund at
            construction, then wherever :meth:`Exchange.set_fund_reference` puts it (the game:
            the fund at each crisis start).
    """

    kind: str = "fund"
    capital: float = 0.0
    fee_share: float = 0.0
    vault_trigger: float = 2.0 / 3.0
    vault_unwind: float = 0.2
    max_drawdown: float = 1.0

    def __post_init__(self) -> None:
        require(
            self.kind in BACKSTOP_KINDS,
            "backstop.kind",
            f"one of {', '.join(BACKSTOP_KINDS)}",
            self.kind,
        )
        require(
            np.isfinite(self.capital) and self.capital >= 0,
            "backstop.capital",
            "a finite number >= 0",
            self.capital,
        )
        require(0 <= self.fee_share <= 1, "backstop.fee_share", "in [0, 1]", self.fee_share)
        require(
            0 <= self.max_drawdown <= 1, "backstop.max_drawdown", "in [0, 1]", self.max_drawdown
        )
        require(
            0 < self.vault_trigger <= 1, "backstop.vault_trigger", "in (0, 1]", self.vault_trigger
        )
        require(0 < self.vault_unwind <= 1, "backstop.vault_unwind", "in (0, 1]", self.vault_unwind)


class Exchange(Waterfall):
    """A vectorised perpetual-futures exchange over N accounts and K markets.

    Args:
        markets: market specs (or an int K for K default markets).
        marks: starting mark price per market.
        backstop: the backstop configuration.
        policy: ADL policy (None: uncovered deficits become residual bad debt).
        severity: severity controller choosing the share theta of the deficit raised now.
        eligibility: who may pay and how much (caps); default: the policy's ``default_cap``
            ("profits only" on the position, "pnl", unless the rule is defined on another).
        execution: ``"budget"`` (close just enough lots to raise theta times the deficit) or
            ``"position"`` (close the liquidated lots the backstop did not take, at the rule's
            price, whatever they raise); default: the policy's ``default_execution``.
        shortfall: who carries what the backstop and ADL leave uncovered, one of
            :data:`SHORTFALL_BEARERS`; default the policy's ``default_shortfall`` (the venues
            without a ranked ADL: Paradex's ``"withdrawals"``, Deribit's ``"socialised"``),
            else ``"written_off"`` (bad debt).  ``"withdrawals"`` carries it and cuts every
            withdrawal and leaver's payout by :meth:`withdrawal_factor` until it is repaid.
        book_capital: capital the liquidity providers hold behind the book account.  It stays
            outside the exchange (the book's cash starts at 0 and may go negative, as a
            credit line); :func:`market.invariants.check_invariants` reports the book insolvent
            when its equity falls below ``-book_capital``.
        capacity: initial row capacity of the account arrays.
    """

    def __init__(
        self,
        markets: Sequence[MarketSpec] | int = 1,
        marks: Sequence[float] | float = 100.0,
        *,
        backstop: BackstopConfig | None = None,
        policy: ADLPolicy | None = None,
        severity: SeverityController | None = None,
        eligibility: Eligibility | None = None,
        execution: str | None = None,
        shortfall: str | None = None,
        book_capital: float = 1e10,
        capacity: int = 1024,
    ) -> None:
        if isinstance(markets, int):
            require(markets >= 1, "markets", "an integer >= 1", markets)
            markets = tuple(MarketSpec(name=f"M{k}") for k in range(markets))
        self.specs: tuple[MarketSpec, ...] = tuple(markets)
        require(len(self.specs) >= 1, "markets", "at least one market", len(self.specs))
        self.K = len(self.specs)
        self.lot = np.array([s.lot_size for s in self.specs])
        m = np.broadcast_to(np.asarray(marks, dtype=np.float64), (self.K,)).copy()
        self._check_prices(m, "marks")
        self.marks = m
        self.prev_marks = m.copy()
        self.backstop = backstop or BackstopConfig()
        self.policy = policy
        self.severity = severity or FullSeverity()
        self.severity_state = self.severity.init_state()
        if eligibility is None:
            # the cap the rule is defined on (the seniority ledger: gains + PnL)
            eligibility = Eligibility(cap=policy.default_cap if policy is not None else "pnl")
        self.eligibility = eligibility
        if execution is None:
            execution = policy.default_execution if policy is not None else "budget"
        require(execution in EXECUTIONS, "execution", f"one of {', '.join(EXECUTIONS)}", execution)
        self.execution = execution
        if shortfall is None:
            shortfall = getattr(policy, "default_shortfall", None) or "written_off"
        require(
            shortfall in SHORTFALL_BEARERS,
            "shortfall",
            f"one of {', '.join(SHORTFALL_BEARERS)}",
            shortfall,
        )
        self.shortfall = shortfall
        require(book_capital > 0, "book_capital", "> 0", book_capital)
        self.book_capital = float(book_capital)
        self.acc = Accounts(self.K, capacity)
        self.log = EventLog()
        self.step_no = 0
        self.wave_no = 0
        self.fee_revenue = 0.0
        self.bad_debt = 0.0
        self.debt = 0.0  # carried shortfall: fund debt, or awaiting socialisation
        self.venue_paid = 0.0
        self.socialised = 0.0
        self.withdrawal_cut = 0.0  # kept from withdrawals to repay a carried shortfall
        self.fund = self.backstop.capital if self.backstop.kind == "fund" else 0.0
        self.fund_reference = self.fund  # what backstop.max_drawdown is measured against
        self.external = self.fund
        self.depth_scale = np.ones(self.K)
        self.stress = np.zeros(self.K)
        self._consumed = np.zeros((self.K, 2))
        self._sums_kept = None  # the last waterfall step's per-account sums (see _keep_sums)
        self.book = int(self.acc.add(1, 0.0)[0])
        self.acc.flags[self.book] |= BOOK
        self.vault = -1
        if self.backstop.kind == "vault":
            self.vault = int(self.acc.add(1, self.backstop.capital)[0])
            self.acc.flags[self.vault] |= VAULT
            self.external += self.backstop.capital

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _check_prices(p: np.ndarray, field_name: str) -> None:
        require(all_true(np.isfinite(p)), field_name, "finite prices", "non-finite")
        if not all_true(p > 0):  # the smallest price named only when it fails
            require(False, field_name, "prices > 0", float(np.min(p, initial=np.inf)))

    def _check_market(self, market: int) -> int:
        if not (isinstance(market, int | np.integer) and 0 <= int(market) < self.K):
            # the message formatted only when it fails
            require(False, "market", f"an integer in [0, {self.K - 1}]", market)
        return int(market)

    def _check_accounts(self, accounts: object, *, traders: bool = True) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(accounts))
        require(idx.dtype.kind in "iu", "account", "integer account indices", idx.dtype)
        idx = idx.astype(np.int64, copy=False)
        if idx.size <= arrays.FEW_ROWS:  # a few rows: the same checks on scalars
            rows = idx.reshape(-1).tolist()
            bad = [r for r in rows if not 0 <= r < self.acc.n][:3]
            if bad:
                raise InputError("account", f"indices in [0, {self.acc.n - 1}]", bad)
            if traders:
                flags = self.acc.flags
                bad = [r for r in rows if int(flags[r]) & (BOOK | VAULT)][:3]
                if bad:
                    raise InputError("account", "a trader account (not the book or vault)", bad)
            return idx
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.acc.n):
            bad = idx[(idx < 0) | (idx >= self.acc.n)][:3].tolist()
            raise InputError("account", f"indices in [0, {self.acc.n - 1}]", bad)
        if traders:
            special = (self.acc.flags[idx] & (BOOK | VAULT)) != 0
            if any_true(special):
                bad = idx[special][:3].tolist()
                raise InputError("account", "a trader account (not the book or vault)", bad)
        return idx

    @staticmethod
    def _check_amount(amount: object, field_name: str) -> np.ndarray:
        a = np.atleast_1d(np.asarray(amount, dtype=np.float64))
        require(all_true(np.isfinite(a)), field_name, "finite", "non-finite")
        if not all_true(a > 0):  # the smallest amount named only when it fails
            require(False, field_name, "> 0", float(a.min()))
        return a

    # ------------------------------------------------------------------ views
    @property
    def n_accounts(self) -> int:
        """Number of rows, including the book (and vault)."""
        return self.acc.n

    def upnl(self) -> np.ndarray:
        """Unrealised PnL per account and market at the marks, dense (N, K): O(N x K), for
        inspection and small worlds (per-account sums: :meth:`account_upnl`)."""
        return mg.upnl(self.acc.pos, self.acc.entry, self.marks, self.lot)

    def account_upnl(self, accounts: np.ndarray | None = None) -> np.ndarray:
        """Unrealised PnL summed over each account's markets: (N,), or the rows ``accounts``
        (unique, trusted) only.  Cost follows their open positions."""
        return self._account_sums(accounts, upnl_only=True)[0]

    def account_notional(self, accounts: np.ndarray | None = None) -> np.ndarray:
        """Notional at the marks summed over each account's markets, (N,) or the rows only."""
        return self._account_sums(accounts)[2]

    def equity(self, accounts: np.ndarray | None = None) -> np.ndarray:
        """Equity per account at the marks: (N,), or the rows ``accounts`` only.

        ``equity(idx)`` equals ``equity()[idx]`` bit for bit (each account's PnL is summed
        over its markets in market order either way) at a cost that follows the rows' open
        positions.  ``accounts`` are trusted row indices (repeats allowed).
        """
        a = self.acc
        if accounts is None:
            return a.cash + self.account_upnl()
        idx = np.asarray(accounts, dtype=np.int64)
        if idx.ndim == 1 and (idx.size < 2 or all_true(idx[1:] > idx[:-1])):
            return a.cash[idx] + self.account_upnl(idx)  # ascending: unique already
        uniq, inv = np.unique(idx, return_inverse=True)
        return (a.cash[uniq] + self.account_upnl(uniq))[inv.reshape(idx.shape)]

    def maintenance(self) -> np.ndarray:
        """Maintenance requirement per account, (N,)."""
        return self._account_sums()[1]

    def initial_margin(self, accounts: np.ndarray | None = None) -> np.ndarray:
        """Initial requirement per account, (N,), or the rows ``accounts`` (unique) only."""
        n = self.acc.n if accounts is None else int(np.asarray(accounts).size)
        i, k, q, _ = self.acc.positions.entries(accounts, self.acc.n)
        w = np.abs(q) * gather(self.lot * self.marks, k) * gather(self._initial_rates(), k)
        return sum_by(i, w, n)

    def _initial_rates(self) -> np.ndarray:
        """The markets' initial margin rates (kept while ``specs`` is the same tuple)."""
        return self.spec_field("initial_margin")

    def _spec_cache(self) -> dict:
        """What is derived from ``specs``, kept while ``specs`` is the same tuple."""
        cache = getattr(self, "_spec_fields", None)
        if cache is None or cache[0] is not self.specs:
            cache = (self.specs, {})
            self._spec_fields = cache
        return cache[1]

    def _any_tiers(self) -> bool:
        """Whether any market has maintenance tiers."""
        cache = self._spec_cache()
        if "any_tiers" not in cache:
            cache["any_tiers"] = any(sp.tiers for sp in self.specs)
        return cache["any_tiers"]

    def spec_field(self, name: str) -> np.ndarray:
        """One :class:`MarketSpec` field over the markets, as a read-only array, kept while
        ``specs`` is the same tuple (so a pass over many markets, or an agent reading fees
        every step, does not rebuild it)."""
        cache = self._spec_cache()
        arr = cache.get(name)
        if arr is None:
            arr = np.array([getattr(sp, name) for sp in self.specs])
            arr.setflags(write=False)
            cache[name] = arr
        return arr

    def _equity_and_initial(
        self, idx: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(equity(idx), initial_margin(idx))`` for unique rows from one read of their
        positions: the same terms, added in the same order, as the two calls.  ``held``: the
        rows' (lots, entries) in market 0, read by the caller; on an exchange of one market
        they are every term (a flat row's terms are exact zeros, added to 0 as the sums do)."""
        if held is None or self.K != 1:
            i, k, q, e = self.acc.positions.entries(idx, self.acc.n)
            n = int(idx.size)

            def total(terms: np.ndarray) -> np.ndarray:
                return sum_by(i, terms, n)
        else:
            (q, e), k = held, 0

            def total(terms: np.ndarray) -> np.ndarray:
                return 0.0 + terms  # one term per row, added to 0 as sum_by adds it

        ups = total(q * gather(self.lot, k) * (gather(self.marks, k) - e))
        value = gather(self.lot * self.marks, k)
        im = total(np.abs(q) * value * gather(self._initial_rates(), k))
        return self.acc.cash[idx] + ups, im

    def notional(self) -> np.ndarray:
        """Position notional per account and market, dense (N, K): O(N x K), for inspection
        and small worlds (per-account sums: :meth:`account_notional`)."""
        return mg.notional(self.acc.pos, self.marks, self.lot)

    def market_notional(self) -> np.ndarray:
        """Gross notional (longs plus shorts) per market at the marks, (K,)."""
        gross = np.array([np.abs(q).sum() for q in self.acc.positions.lots], dtype=np.float64)
        return gross * self.lot * self.marks

    def leverage(self) -> np.ndarray:
        """Account notional over equity (inf where equity <= 0 and a position is open)."""
        usum, _, nt, _ = self._account_sums()
        eq = self.acc.cash + usum
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(eq > 0, nt / np.where(eq > 0, eq, 1.0), np.where(nt > 0, np.inf, 0.0))

    def open_interest(self) -> np.ndarray:
        """(long lots, short lots) per market, shape (2, K)."""
        lots = self.acc.positions.lots
        gross = np.array([np.abs(q).sum() for q in lots], dtype=np.int64)
        net = np.array([q.sum() for q in lots], dtype=np.int64)
        return np.stack([(gross + net) // 2, (gross - net) // 2])  # integers: exact

    def position(self, accounts: object, market: int) -> tuple[np.ndarray, np.ndarray]:
        """(signed lots, average entry) of ``accounts`` in ``market`` (0 and 0.0 where flat)."""
        k = self._check_market(market)
        idx = np.atleast_1d(np.asarray(accounts, dtype=np.int64))
        return self.acc.positions.get(k, idx)

    # ------------------------------------------------------------------ accounts and money
    def open_accounts(
        self,
        count: int,
        cash: float | np.ndarray = 0.0,
        *,
        kind: int | np.ndarray = 0,
        group: np.ndarray | None = None,
    ) -> np.ndarray:
        """Open ``count`` accounts funded with ``cash`` (a deposit); returns their indices."""
        require(
            isinstance(count, int | np.integer) and count >= 0, "count", "an integer >= 0", count
        )
        c = np.broadcast_to(np.asarray(cash, dtype=np.float64), (int(count),))
        require(
            bool(np.all(np.isfinite(c))) and bool(np.all(c >= 0)),
            "cash",
            "finite and >= 0",
            "bad value",
        )
        if group is not None:
            g = np.broadcast_to(np.asarray(group), (int(count),))
            require(g.dtype.kind in "iu", "group", "integer owner ids", g.dtype)
        idx = self.acc.add(int(count), c, kind)
        if group is not None:
            self.acc.group[idx] = g
        self.external += float(c.sum())
        return idx

    def open_accounts_by_owner(self, counts: object, cash: object) -> np.ndarray:
        """Open accounts for many owners at once: ``counts[i]`` accounts for owner i.

        ``cash`` holds one amount per account (owner by owner).  The result equals calling
        ``open_accounts(counts[i], cash_of_owner_i)`` owner after owner, bit for bit: the
        deposits are credited to ``external`` owner by owner, each owner's total summed as
        one call would sum it.  Returns every new account index, owner by owner.
        """
        cnt = np.atleast_1d(np.asarray(counts))
        require(cnt.dtype.kind in "iu", "counts", "integer account counts", cnt.dtype)
        require(bool(np.all(cnt >= 0)), "counts", "integers >= 0", cnt.min(initial=0))
        total = int(cnt.sum())
        c = np.broadcast_to(np.asarray(cash, dtype=np.float64), (total,))
        require(
            bool(np.all(np.isfinite(c))) and bool(np.all(c >= 0)),
            "cash",
            "finite and >= 0",
            "bad value",
        )
        cnt = cnt.astype(np.int64)
        starts = np.zeros(cnt.size, dtype=np.int64)
        np.cumsum(cnt[:-1], out=starts[1:])
        per_owner = np.zeros(cnt.size)
        for length in unique_sorted(cnt[cnt > 0]):
            rows = np.flatnonzero(cnt == length)
            per_owner[rows] = c[starts[rows, None] + np.arange(int(length))].sum(axis=1)
        # grow the arrays as owner-by-owner calls would (the capacity is visible to callers)
        cap, ends = self.acc._cap, self.acc.n + np.cumsum(cnt)
        while ends.size and ends[-1] > cap:
            cap = max(cap * 2, int(ends[np.argmax(ends > cap)]))
        if cap != self.acc._cap:
            self.acc._alloc(cap)
        idx = self.acc.add(total, c, 0)
        # the owners' deposits, added one after another as separate calls would
        self.external = float(np.cumsum(np.concatenate([[self.external], per_owner]))[-1])
        return idx

    def deposit(self, account: object, amount: object) -> None:
        """Add collateral to accounts; negative or non-finite amounts are refused."""
        idx = self._check_accounts(account)
        a = np.broadcast_to(self._check_amount(amount, "deposit.amount"), idx.shape)
        require(not has_repeats(idx), "account", "unique indices per call", "duplicates")
        self.acc.cash[idx] += a
        self.external += float(a.sum())

    def free_collateral(self, idx: np.ndarray) -> np.ndarray:
        """What an account may withdraw: min(cash, equity - initial margin), floored at 0."""
        idx = np.asarray(idx)
        if idx.ndim == 1 and idx.size <= arrays.FEW_ROWS:  # row by row on scalars (the same terms)
            cash = self.acc.cash
            out = np.empty(idx.size)
            for j, r in enumerate(idx.tolist()):
                ups, im = self._row_terms(r)
                out[j] = max(min(cash[r], (cash[r] + ups) - im), 0.0)
            return out
        eq = self.equity(idx)
        uniq, inv = np.unique(idx, return_inverse=True)
        im = self.initial_margin(uniq)[inv.reshape(idx.shape)]
        return np.maximum(np.minimum(self.acc.cash[idx], eq - im), 0.0)

    def withdraw(self, account: object, amount: object) -> np.ndarray:
        """Withdraw collateral; refused (nothing changes) where it would break initial margin.

        Returns a boolean array: True where the withdrawal was carried out.
        """
        idx = self._check_accounts(account)
        a = np.broadcast_to(self._check_amount(amount, "withdraw.amount"), idx.shape)
        require(not has_repeats(idx), "account", "unique indices per call", "duplicates")
        ok = a <= self.free_collateral(idx) + 1e-9
        rows, amt = idx[ok], a[ok]
        kept = self._cut_withdrawals(amt)  # the factor at the equity before the withdrawal
        self.acc.cash[rows] -= amt
        book_gain(self.acc.gains, rows, -amt)
        self.external -= float(amt.sum() - kept.sum())
        return ok

    def withdrawal_factor(self) -> float:
        """Paradex's socialised loss factor: the share cut from a withdrawal while the exchange
        carries a shortfall under ``shortfall="withdrawals"``, ``min(1, debt / positive equity
        of the active trader accounts)``; 0 otherwise."""
        if self.shortfall != "withdrawals" or self.debt <= 0:
            return 0.0
        acc = self.acc
        trader = ((acc.flags & (BOOK | VAULT)) == 0) & ((acc.flags & ACTIVE) != 0)
        room = float(np.maximum(self.equity()[trader], 0.0).sum())
        return 1.0 if room <= 0 else min(self.debt / room, 1.0)

    def _cut_withdrawals(self, amounts: np.ndarray) -> np.ndarray:
        """Under ``shortfall="withdrawals"``: the part of each of ``amounts`` (money leaving)
        kept to repay the carried shortfall, which stays in the exchange (zeros otherwise)."""
        f = self.withdrawal_factor()
        if f <= 0 or amounts.size == 0:
            return np.zeros(amounts.shape)
        kept = amounts * f
        total = float(kept.sum())
        if total > self.debt:  # never keep more than is owed
            kept *= self.debt / total
            total = self.debt
        self.debt = max(self.debt - total, 0.0)
        self.withdrawal_cut += total
        return kept

    def transfer(self, src: int, dst: int, amount: float) -> bool:
        """Move collateral between two accounts; refused if it breaks the source's margin."""
        s = self._check_accounts(src)
        d = self._check_accounts(dst)
        a = float(self._check_amount(amount, "transfer.amount")[0])
        require(int(s[0]) != int(d[0]), "dst", "a different account from src", int(d[0]))
        if a > self.free_collateral(s)[0] + 1e-9:
            return False
        self.acc.cash[s] -= a
        book_gain(self.acc.gains, s, np.array([-a]))
        self.acc.cash[d] += a
        return True

    # ------------------------------------------------------------------ fills
    def _apply_fills(
        self,
        idx: np.ndarray,
        k: int,
        dq: np.ndarray,
        price: np.ndarray,
        where: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Apply fills of ``dq`` lots at ``price`` to unique rows ``idx`` in market k.

        Updates position, average entry, cash (realised PnL) and the gains ledger; returns the
        realised PnL per row.  ``where``: the rows' :meth:`Positions.locate` in market k, when
        the caller has it (still valid).
        """
        if idx.size == 0:
            return np.zeros(0)
        book = self.acc.positions
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size <= arrays.FEW_ROWS:  # row by row in scalars: the same operations, less overhead
            return self._apply_fills_few(idx, k, dq, price)
        if where is None:
            where = book.locate(k, idx)
        q0, e0 = book.read(k, where)
        q1, new_e, realised = fill_arithmetic(q0, e0, dq, price, self.lot[k])
        book.write(k, idx, where, q1, new_e)
        self.acc.cash[idx] += realised
        book_gain(self.acc.gains, idx, realised)
        return realised

    def _apply_fills_few(
        self, idx: np.ndarray, k: int, dq: np.ndarray, price: np.ndarray
    ) -> np.ndarray:
        """:meth:`_apply_fills` row by row on scalars (a few unique rows)."""
        dq, price = per_row(dq, idx.shape), per_row(price, idx.shape)
        rows = idx.tolist()
        out = self._positions_few(rows, k, dq.tolist(), price.tolist())
        for r, realised in zip(rows, out, strict=True):
            self._credit_one(r, (realised,))
        return np.array(out, dtype=np.float64)

    def _positions_few(
        self,
        rows: list[int],
        k: int,
        lots: list[int],
        prices: list[float],
        held: list[tuple[int, float, int]] | None = None,
    ) -> list[float]:
        """Fills of a few unique rows in market k, row by row on scalars: each row's position
        and entry (the same operations as :func:`fill_arithmetic`); no cash moves.  ``held``:
        the rows' :meth:`Positions.get_one`, read by the caller, used while market k's column
        is the one they were read from.  Returns the realised PnL per row."""
        book = self.acc.positions
        lot = self.lot.item(k)
        col = book.acct[k]
        out = []
        for j, (r, d, p) in enumerate(zip(rows, lots, prices, strict=True)):
            q0, e0, slot = held[j] if held and book.acct[k] is col else book.get_one(k, r)
            q1, e1, realised = fill_arithmetic_one(q0, e0, d, p, lot)
            book.set_one(k, r, q1, e1, slot)
            out.append(realised)
        return out

    def _margin_ok_few(
        self, idx: np.ndarray, k: int, q: np.ndarray, px: np.ndarray, fee: bool
    ) -> np.ndarray:
        """:meth:`_margin_ok` row by row on scalars (a few unique rows)."""
        book = self.acc.positions
        rows, lots, prices = idx.tolist(), q.tolist(), px.tolist()
        return np.array(
            [
                self._order_ok(r, k, d, p, book.get_one(k, r)[0], fee)
                for r, d, p in zip(rows, lots, prices, strict=True)
            ],
            dtype=bool,
        )

    def _order_ok(self, r: int, k: int, d: int, p: float, old: int, fee: bool) -> bool:
        """:meth:`_margin_ok` of one order of ``d`` lots at ``p`` for row ``r`` holding ``old``
        lots in market k, on scalars: an order that does not increase the exposure passes
        without reading the account's other terms."""
        new = old + d
        if not abs(new) > abs(old):
            return True
        lot, mark, spec = self.lot.item(k), self.marks.item(k), self.specs[k]
        ups, im = self._row_terms(r)
        eq = self.acc.cash.item(r) + ups
        cost = d * lot * (p - mark)
        fees = abs(d) * lot * p * spec.taker_fee if fee else 0.0
        eq_after = eq - cost - fees
        im_after = im + (abs(new) - abs(old)) * (lot * mark * spec.initial_margin)
        return eq_after >= im_after

    def _book_takes(self, k: int, dq: np.ndarray, px: np.ndarray, row: int | None = None) -> None:
        """The book (or ``row``) takes the other side of fills ``dq`` at prices ``px``.

        Buys and sells are applied as two fills at their own average prices, so the book's
        average entry stays a price inside the range of the fills (no cancellation error).
        """
        r = self.book if row is None else int(row)
        self._credit_one(r, self._book_side(k, dq, px, r))

    def _book_side(self, k: int, dq: np.ndarray, px: np.ndarray, r: int) -> list[float]:
        """The position side of :meth:`_book_takes`: row ``r``'s lots and entry in market k
        after taking the other side of ``dq`` at ``px`` (buys, then sells); returns the PnL
        each of the (at most two) fills realised, in order, for the caller to book."""
        fills = []
        if dq.size <= arrays.FEW_ROWS:  # a few fills: in scalars
            fills = _side_fills(dq.tolist(), px.tolist())
        elif _one_side(dq):  # one side only: no selection
            q = int(dq.sum())
            fills.append((-q, float((dq * px).sum()) / q))
        else:
            for mask in (dq > 0, dq < 0):
                d = dq[mask]
                q = int(d.sum())
                if q:
                    fills.append((-q, float((d * px[mask]).sum()) / q))
        return self._row_fills(k, r, fills)

    def _row_fills(self, k: int, r: int, fills: list[tuple[int, float]]) -> list[float]:
        """Fills ``(lots, price)`` one after the other on row ``r`` in market k, on scalars,
        then one write; returns the PnL each realised, in order."""
        if not fills:
            return []
        book = self.acc.positions
        q0, e0, slot = book.get_one(k, r)
        lot = float(self.lot[k])
        out = []
        for dq1, price in fills:
            q0, e0, realised = fill_arithmetic_one(q0, e0, dq1, price, lot)
            out.append(realised)
        book.set_one(k, r, q0, e0, slot)
        return out

    def _book_sides(
        self, ks: list[int], lo: list[int], hi: list[int], dq: np.ndarray, px: np.ndarray
    ) -> list[list[float]]:
        """:meth:`_book_side` of the book for the fills of several markets (market ``ks[m]``:
        orders ``lo[m]`` to ``hi[m]``), market by market: the same fills, sums and entries.
        Each market's buys and sells are summed as runs of the orders grouped by (market,
        side), in their order; the book's position is then updated in scalars."""
        local = np.repeat(np.arange(len(ks), dtype=np.int64), np.subtract(hi, lo))
        key = 3 * local + 1 - np.sign(dq)  # per market: buys, no order, sells
        order, key, starts, ends = group_runs(key)
        d, p = (dq, px) if order is None else (dq[order], px[order])
        lots = np.add.reduceat(d, starts).tolist()  # whole lots: exact in any order
        prod = d * p
        fills: list[list[tuple[int, float]]] = [[] for _ in ks]
        for g, a, b, q in zip(key[starts].tolist(), starts, ends, lots, strict=True):
            m, j = divmod(g, 3)
            if j != 1 and q:  # one fill per side with orders: its lots at their average price
                fills[m].append((-q, float(prod[a:b].sum()) / q))
        return [self._row_fills(k, self.book, fk) for k, fk in zip(ks, fills, strict=True)]

    def _fill(
        self,
        rows: np.ndarray,
        k: int,
        dq: np.ndarray,
        px: np.ndarray,
        kind: str,
        *,
        counterparty: int | None = None,
        logged_price: np.ndarray | None = None,
        fees: np.ndarray | float = 0.0,
        where: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Fill ``dq`` lots of ``rows`` at ``px`` against the book (or ``counterparty``), logged.

        The one path every fill takes: positions, entries, cash and gains ledgers of both
        sides, then a trade-log row per account (``logged_price`` when the recorded price
        differs from the fill, as for ADL closes; ``fees`` the taker fees the caller charges
        for it; ``where`` the rows' place in market k's column, when known).  Returns the
        realised PnL per row.
        """
        realised = self._apply_fills(rows, k, dq, px, where)
        self._book_takes(k, dq, px, row=counterparty)
        cp = self.book if counterparty is None else counterparty
        price = px if logged_price is None else logged_price
        if rows.size == 1 and arrays.FEW_ROWS:  # one row: its values, in column order
            self.log.trades.append_row(
                self.step_no,
                int(rows[0]),
                int(cp),
                k,
                int(np.reshape(dq, -1)[0]),
                float(np.reshape(price, -1)[0]),
                float(self.marks[k]),
                float(np.reshape(fees, -1)[0]),
                float(realised[0]),
                _KIND[kind],
            )
            return realised
        self.log.trades.append(
            step=self.step_no,
            account=rows,
            counterparty=cp,
            market=k,
            lots=dq,
            price=price,
            mark=self.marks[k],
            fee=fees,
            realised=realised,
            kind=_KIND[kind],
        )
        return realised

    def _fill_markets(
        self,
        rows: np.ndarray,
        market: np.ndarray,
        dq: np.ndarray,
        kind: str,
        slots: np.ndarray | None = None,
        ledger_order: np.ndarray | None = None,
    ):
        """Fill orders of ``rows`` in several markets against the book at once.

        ``market`` is ascending (market by market) and each market's rows are unique.  The
        same operations as one :meth:`_fill` per market in market order, at the prices each
        market's book gives: positions and entries per market, the fill arithmetic once over
        every order, each account's cash and gains entries in market order, the book's side
        market by market, the trade log in one block.  ``slots``: where each order's
        position sits in its market's column, when the caller knows (every row holds one).
        ``ledger_order``: when every row is unique, the order to book their cash and ledger
        entries in (any order gives the same numbers; account order reads memory in
        sequence).  Returns the realised PnL per order.
        """
        realised, px, book_pnl = self._fill_positions(rows, market, dq, slots=slots)
        for amounts in book_pnl:  # the book's side, market by market
            self._credit_one(self.book, amounts)
        if ledger_order is None:
            self._ledger_in_order(rows, realised)
        else:
            self._ledger_in_order(rows[ledger_order], realised[ledger_order])
        self._log_fills(rows, market, dq, px, realised, kind)
        return realised

    def _fill_positions(
        self,
        rows: np.ndarray,
        market: np.ndarray,
        dq: np.ndarray,
        px: np.ndarray | None = None,
        *,
        slots: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
        """The position side of :meth:`_fill_markets`: every order's position and entry, and
        the book's, market by market; no cash moves.  ``px``: the fill prices (None: walk each
        market's book in array order).  ``slots``: where the rows' positions sit in their
        columns (every row holds one), or None to look them up.  Returns (realised PnL per
        order, the fill prices, per market the book's realised PnL in order) for the caller
        to book."""
        if market.size == 0:
            return np.zeros(0), np.zeros(0) if px is None else px, []
        book = self.acc.positions
        k = int(market[0])
        if market[-1] == k and all_true(market == k):  # one market: its own walk, write, side
            if px is None:
                px = self._book_prices(k, dq)
            if rows.size <= arrays.FEW_ROWS:  # a few rows: on scalars
                realised = self._positions_few(rows.tolist(), k, dq.tolist(), px.tolist())
                return np.array(realised), px, [self._book_side(k, dq, px, self.book)]
            w = book.locate(k, rows) if slots is None else (slots, None)
            q0, e0 = book.read(k, w)
            q1, new_e, realised = fill_arithmetic(q0, e0, dq, px, self.lot[k])
            book.write(k, rows, w, q1, new_e)
            return realised, px, [self._book_side(k, dq, px, self.book)]
        bounds = np.flatnonzero(np.diff(market)) + 1
        lo = np.concatenate([[0], bounds]).tolist()
        hi = np.concatenate([bounds, [market.size]]).tolist()
        ks = market[lo].tolist()
        if px is None:  # walk each market's book
            px = self._book_prices_markets(ks, [*lo, hi[-1]], market, dq)
        if slots is not None and book.laid_out():  # every market at once
            q0, e0 = book.read_at(market, slots)
            q1, new_e, realised = fill_arithmetic(q0, e0, dq, px, self.lot[market])
            book.write_at(market, rows, slots, q1, new_e)
            return realised, px, self._book_sides(ks, lo, hi, dq, px)
        q0 = np.empty(rows.size, dtype=np.int64)
        e0 = np.empty(rows.size)
        where = []
        for k, a, b in zip(ks, lo, hi, strict=True):
            w = book.locate(k, rows[a:b]) if slots is None else (slots[a:b], None)
            q0[a:b], e0[a:b] = book.read(k, w)
            where.append(w)
        q1, new_e, realised = fill_arithmetic(q0, e0, dq, px, self.lot[market])
        for k, a, b, w in zip(ks, lo, hi, where, strict=True):
            book.write(k, rows[a:b], w, q1[a:b], new_e[a:b])
        return realised, px, self._book_sides(ks, lo, hi, dq, px)

    def _log_fills(
        self,
        rows: np.ndarray,
        market: np.ndarray,
        dq: np.ndarray,
        price: np.ndarray,
        realised: np.ndarray,
        kind: str,
    ) -> None:
        """One trade-log block for fills against the book (no fee charged with them)."""
        self.log.trades.append(
            step=self.step_no,
            account=rows,
            counterparty=self.book,
            market=market,
            lots=dq,
            price=price,
            mark=self.marks[market],
            fee=0.0,
            realised=realised,
            kind=_KIND[kind],
        )

    def _ledger_in_order(self, rows: np.ndarray, amount: np.ndarray) -> None:
        """``cash += amount`` and the gains ledger, entry by entry in the given order for each
        account (``rows`` may repeat): one pass per repetition, not per entry."""
        if rows.size == 0:
            return
        if rows.size <= arrays.FEW_ROWS:  # a few entries: one by one, in order, on scalars
            for r, a in zip(rows.tolist(), np.reshape(amount, -1).tolist(), strict=True):
                self._credit_one(r, (a,))
            return
        if not has_repeats(rows, self.acc.n):  # each account once: one pass
            self.acc.cash[rows] += amount
            book_gain(self.acc.gains, rows, amount)
            return
        order = stable_argsort(rows)  # by account, the given order within one
        r, a = rows[order], amount[order]
        first = np.ones(r.size, dtype=bool)
        first[1:] = r[1:] != r[:-1]
        starts = np.flatnonzero(first)
        turn = np.arange(r.size) - np.repeat(starts, np.diff(np.append(starts, r.size)))
        # each account's j-th entry in turn j: a selection per turn when there are a few
        # turns, else the entries grouped by turn with one sort
        turns = int(turn.max()) + 1
        if turns <= 4:
            groups = [starts, *(np.flatnonzero(turn == j) for j in range(1, turns))]
        else:
            by_turn = stable_argsort(turn)
            ends = np.cumsum(np.bincount(turn)).tolist()
            groups = [by_turn[lo:hi] for lo, hi in zip([0, *ends[:-1]], ends, strict=True)]
        for sel in groups:
            rr, aa = r[sel], a[sel]
            self.acc.cash[rr] += aa
            book_gain(self.acc.gains, rr, aa)

    def _charge_fees(self, idx: np.ndarray, fee: np.ndarray) -> None:
        if idx.size == 1 and arrays.FEW_ROWS:  # one row: the same operations on scalars
            self._charge_fee_one(int(idx[0]), float(np.reshape(fee, -1)[0]))
            return
        self.acc.cash[idx] -= fee
        self.acc.fees_paid[idx] += fee
        book_gain(self.acc.gains, idx, -fee)
        self._fee_income(float(fee.sum()))

    def _charge_fee_one(self, row: int, fee: float) -> None:
        """:meth:`_charge_fees` for one row and one fee, in scalars (the same operations)."""
        self._debit_fee_one(row, fee)
        self._fee_income(fee)

    def _debit_fee_one(self, row: int, fee: float) -> None:
        """One row's side of a fee, in scalars: out of its cash (gains ledger first), into
        its fees paid; the income is booked by the caller (:meth:`_fee_income`)."""
        self.acc.cash[row] -= fee
        self.acc.fees_paid[row] += fee
        book_gain_one(self.acc.gains, row, -fee)

    def _fee_income(self, total: float) -> None:
        """Fees of ``total`` dollars paid: the backstop's share (fund mode) repays fund debt
        first, then feeds the fund; the rest is the venue's revenue."""
        to_fund = total * self.backstop.fee_share if self.backstop.kind == "fund" else 0.0
        self.fund += self._repay(to_fund)
        self.fee_revenue += total - to_fund

    def _repay(self, amount: float) -> float:
        """Income for the backstop first repays carried fund debt; returns what is left."""
        if self.shortfall != "fund_debt" or self.debt <= 0 or amount <= 0:
            return amount
        paid = min(amount, self.debt)
        self.debt -= paid
        return amount - paid

    def _depth_eff(self, k: int) -> float:
        s = self.specs[k]
        return s.depth * self.depth_scale[k] * max(1.0 - s.stress_thinning * self.stress[k], 1e-3)

    def _walk(self, k: int, lots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fill prices, the book's consumption after them) for signed lot orders in market k,
        walking the book in array order; nothing changes."""
        s = self.specs[k]
        size = np.abs(lots) * self.lot[k] * self.marks[k]
        return fill_prices(
            self.marks[k],
            size,
            np.sign(lots),
            self._consumed[k],
            self._depth_eff(k),
            s.impact,
            s.impact_exponent,
            s.max_impact,
        )

    def _walk_few(self, k: int, lots: list[int]) -> tuple[list[float], np.ndarray]:
        """:meth:`_walk` of a few orders given as a list, on scalars (the same prices and
        consumption; the prices as a list)."""
        s = self.specs[k]
        lot, mark = self.lot.item(k), self.marks.item(k)
        sizes = [abs(d) * lot * mark for d in lots]
        if not all(x > 0 for x in sizes):  # (an order of no size: the array path)
            px, consumed = self._walk(k, np.array(lots, dtype=np.int64))
            return px.tolist(), consumed
        sides = [1 if d > 0 else -1 for d in lots]
        new = self._consumed[k].copy()
        depth = self._depth_eff(k)
        px = fill_prices_few(
            mark, sizes, sides, new, depth, s.impact, s.impact_exponent, s.max_impact
        )
        return px, new

    def _book_prices(self, k: int, lots: np.ndarray) -> np.ndarray:
        """Fill prices for signed lot orders in market k, walking the book in array order."""
        prices, self._consumed[k] = self._walk(k, lots)
        return prices

    def _book_prices_markets(
        self, ks: list[int], bounds: list[int], market: np.ndarray, lots: np.ndarray
    ) -> np.ndarray:
        """:meth:`_book_prices` for orders in several markets: market ``ks[b]``'s orders are
        ``bounds[b]`` to ``bounds[b + 1]`` (``market`` per order); the same prices and book
        consumption as one call per market in turn."""
        specs = [self.specs[k] for k in ks]
        size = np.abs(lots) * self.lot[market] * self.marks[market]
        prices, self._consumed[ks] = fill_prices_books(
            self.marks[market],
            size,
            np.sign(lots),
            bounds,
            self._consumed[ks],
            [self._depth_eff(k) for k in ks],
            [s.impact for s in specs],
            [s.impact_exponent for s in specs],
            [s.max_impact for s in specs],
        )
        return prices

    def quote(self, market: int, lots: object) -> np.ndarray:
        """Fill prices the book would give now for signed lot orders (no state change)."""
        k = self._check_market(market)
        return self._walk(k, np.atleast_1d(np.asarray(lots)))[0]

    def trade(
        self,
        accounts: object,
        market: int,
        lots: object,
        *,
        price: float | None = None,
        fee: bool = True,
    ) -> np.ndarray:
        """Market orders against the book: ``lots`` signed whole lots per account.

        Orders that increase exposure are refused when the account would end below initial
        margin; a refused order changes nothing.  ``price`` (optional) fills every order at
        that price without walking the book (genesis positions, replays); ``fee=False`` skips
        fees.  Accounts must be unique within one call.

        Returns:
            Boolean array: True where the order was filled.
        """
        k = self._check_market(market)
        idx = self._check_accounts(accounts)
        q = per_row(lots, idx.shape)
        if q.dtype.kind not in "iu" and not bool((np.mod(q, 1) == 0).all()):
            require(False, "lots", "whole lots (integers)", q[:3].tolist())
        q = q.astype(np.int64)
        self._check_orders(idx, q)
        if price is not None:
            self._check_prices(np.asarray([price], dtype=float), "price")
        elif idx.size <= arrays.FEW_ROWS:  # a few orders at the book: on scalars
            return self._trade_few(idx, k, q, fee)
        # first pass: check margin with prices as if every order fills
        consumed = None
        if price is not None:
            px = np.full(idx.shape, float(price))
        else:
            px, consumed = self._walk(k, q)
        where = self.acc.positions.locate(k, idx)  # for the check and the fill
        ok = self._margin_ok(idx, k, q, px, fee, where)
        filled = np.count_nonzero(ok)
        if not filled:
            return ok
        if filled == ok.size:  # every order fills: the first pass's prices and walk stand
            rows, qq = idx, q
            if consumed is not None:
                self._consumed[k] = consumed
        else:
            rows, qq = idx[ok], q[ok]
            where = (where[0][ok], where[1][ok])
            px = (
                np.full(rows.shape, float(price)) if price is not None else self._book_prices(k, qq)
            )
        notional = np.abs(qq) * self.lot[k] * px
        taker = notional * self.specs[k].taker_fee if fee else np.zeros(rows.size)
        self._fill(rows, k, qq, px, "order", fees=taker, where=where)
        if fee:
            self._charge_fees(rows, taker)
            maker = float(notional.sum() * self.specs[k].maker_fee)
            if maker:
                self._charge_fee_one(self.book, maker)
        return ok

    def _check_orders(self, idx: np.ndarray, q: np.ndarray) -> None:
        """:meth:`trade`'s checks of its orders: non-zero lots, unique and active accounts
        (on scalars for a few rows)."""
        if idx.size <= arrays.FEW_ROWS:
            rows = idx.tolist()
            require(all(q.tolist()), "lots", "non-zero whole lots", 0)
            unique = len(set(rows)) == len(rows)
            require(unique, "account", "unique indices per call", "duplicates")
            flags = self.acc.flags
            off = [r for r in rows if not int(flags[r]) & ACTIVE][:3]
            require(not off, "account", "active accounts", off)
            return
        require(np.count_nonzero(q) == q.size, "lots", "non-zero whole lots", 0)
        ascending = all_true(idx[1:] > idx[:-1])
        unique = ascending or not has_repeats(idx)
        require(unique, "account", "unique indices per call", "duplicates")
        inactive = (self.acc.flags[idx] & ACTIVE) == 0
        if any_true(inactive):
            require(False, "account", "active accounts", idx[inactive][:3].tolist())

    def _trade_few(self, idx: np.ndarray, k: int, q: np.ndarray, fee: bool) -> np.ndarray:
        """:meth:`trade` of a few checked orders at the book's prices, row by row on scalars:
        the same margin checks, fills, fees and log rows as the array path, each account's
        operations in the same order (so the same numbers).  Each row's position is looked
        up once for its check and its fill (while market k's column keeps its layout)."""
        book = self.acc.positions
        rows, lots = idx.tolist(), q.tolist()
        prices, consumed = self._walk_few(k, lots)
        held = [book.get_one(k, r) for r in rows]
        ok = [
            self._order_ok(r, k, d, p, h[0], fee)
            for r, d, p, h in zip(rows, lots, prices, held, strict=True)
        ]
        if not any(ok):
            return np.array(ok, dtype=bool)
        if all(ok):  # the first pass's prices and walk stand
            self._consumed[k] = consumed
        else:
            rows, lots, held = (list(compress(v, ok)) for v in (rows, lots, held))
            prices = self._book_prices(k, np.array(lots, dtype=np.int64)).tolist()
        spec = self.specs[k]
        lot, mark, rate = self.lot.item(k), self.marks.item(k), spec.taker_fee
        trades, step, cp, kind = self.log.trades, self.step_no, self.book, _KIND["order"]
        notional, taker = [], []
        realised_all = self._positions_few(rows, k, lots, prices, held)
        for r, d, p, realised in zip(rows, lots, prices, realised_all, strict=True):
            self._credit_one(r, (realised,))
            notional.append(abs(d) * lot * p)
            fee_r = notional[-1] * rate if fee else 0.0
            if fee:  # after its fill, as the array path charges it
                self._debit_fee_one(r, fee_r)
            taker.append(fee_r)
            trades.append_row(step, r, cp, k, d, p, mark, fee_r, realised, kind)
        self._credit_one(self.book, self._row_fills(k, self.book, _side_fills(lots, prices)))
        if fee:
            self._fee_income(sum_list(taker))
            maker = sum_list(notional) * spec.maker_fee
            if maker:
                self._charge_fee_one(self.book, maker)
        return np.array(ok, dtype=bool)

    def trade_genesis(
        self,
        accounts: object,
        market: int,
        lots: object,
        prices: object,
        *,
        check_input: bool = True,
    ) -> None:
        """Set up positions at given per-account prices against the book, without fees.

        For building a starting population or replaying recorded positions: no margin check
        and no book walk, but still zero-sum (the book takes the other side) and validated.
        ``check_input=False`` skips the validation, for a caller that built the arrays itself
        (as scikit-learn's ``check_input``): unique int64 trader rows, int64 lots and finite
        positive float64 prices of the same length.
        """
        if not check_input:
            self._fill(accounts, market, lots, prices, "settle")  # type: ignore[arg-type]
            return
        k = self._check_market(market)
        idx = self._check_accounts(accounts)
        q = np.broadcast_to(np.atleast_1d(np.asarray(lots)), idx.shape)
        require(q.dtype.kind in "iu", "lots", "whole lots (integers)", q.dtype)
        px = np.broadcast_to(np.atleast_1d(np.asarray(prices, dtype=np.float64)), idx.shape)
        self._check_prices(px, "price")
        require(not has_repeats(idx), "account", "unique indices per call", "duplicates")
        q = q.astype(np.int64)
        self._fill(idx, k, q, px, "settle")

    def _margin_ok(
        self,
        idx: np.ndarray,
        k: int,
        q: np.ndarray,
        px: np.ndarray,
        fee: bool,
        where: tuple[np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """Whether each order keeps its account at or above initial margin, or does not
        increase its exposure (``where``: the rows' place in market k's column)."""
        if idx.size <= arrays.FEW_ROWS:  # row by row on scalars (the same operations)
            return self._margin_ok_few(idx, k, q, px, fee)
        old, entry = self.acc.positions.read(k, where)
        held, held_after = np.abs(old), np.abs(old + q)
        increases = held_after > held
        if not any_true(increases):  # (every order passes)
            return ~increases
        cost = q * self.lot[k] * (px - self.marks[k])  # value given up vs the mark
        fees = np.abs(q) * self.lot[k] * px * self.specs[k].taker_fee if fee else 0.0
        eq, im = self._equity_and_initial(idx, (old, entry))
        eq_after = eq - cost - fees
        # the initial requirement with market k's position replaced by the new one
        per_lot = self.lot[k] * self.marks[k] * self.specs[k].initial_margin
        im_after = im + (held_after - held) * per_lot
        return ~increases | (eq_after >= im_after)

    def transfer_many(self, src: object, dst: object, amount: object) -> np.ndarray:
        """Move collateral along many transfers ``src[i] -> dst[i]`` of ``amount[i]`` at once.

        Every source's free collateral is read once, before any transfer of the call; a source
        whose transfers together exceed it has all of them refused (nothing of it changes).
        Sources' gains ledgers are drained by what they send, as :meth:`transfer` does.

        Returns:
            Boolean array: True where the transfer was carried out.
        """
        s = self._check_accounts(src)
        d = self._check_accounts(dst)
        if d.shape != s.shape:
            require(False, "dst", f"one account per source ({s.size})", d.size)
        a = np.broadcast_to(self._check_amount(amount, "transfer.amount"), s.shape)
        same = s == d
        if any_true(same):
            require(False, "dst", "accounts different from their sources", d[same][:3])
        if s.size == 0:
            return np.ones(0, dtype=bool)
        if s.size <= arrays.FEW_ROWS:
            return self._transfer_few(s, d, a)
        us, inv = np.unique(s, return_inverse=True)
        total = np.bincount(inv, weights=a, minlength=us.size)
        ok_src = total <= self.free_collateral(us) + 1e-9
        ok = ok_src[inv]
        np.subtract.at(self.acc.cash, s[ok], a[ok])
        np.add.at(self.acc.cash, d[ok], a[ok])
        book_gain(self.acc.gains, us[ok_src], -total[ok_src])
        return ok

    def _transfer_few(self, s: np.ndarray, d: np.ndarray, a: np.ndarray) -> np.ndarray:
        """:meth:`transfer_many` for a few transfers, on scalars (the same operations)."""
        src, dst, amt = s.tolist(), d.tolist(), a.tolist()
        total: dict[int, float] = {}
        for r, x in zip(src, amt, strict=True):  # in the order of the transfers, from 0
            total[r] = total.get(r, 0.0) + x
        us = sorted(total)
        free = dict(
            zip(us, self.free_collateral(np.array(us, dtype=np.int64)).tolist(), strict=True)
        )
        good = {r: total[r] <= free[r] + 1e-9 for r in us}
        cash = self.acc.cash
        ok = np.array([good[r] for r in src], dtype=bool)
        for r, x in zip(src, amt, strict=True):
            if good[r]:
                cash[r] -= x
        for r, t, x in zip(src, dst, amt, strict=True):
            if good[r]:
                cash[t] += x
        for r in us:
            if good[r]:
                book_gain_one(self.acc.gains, r, -total[r])
        return ok

    def close_all(self, accounts: object) -> None:
        """Close every position of the accounts at the book (settling a leaving trader)."""
        idx = self._check_accounts(accounts)
        for k, at, q in self._held_by_market(idx):
            self.trade(idx[at], k, -q)

    def _held_by_market(self, idx: np.ndarray):
        """Market by market (ascending), the positions of the unique rows ``idx``: yields
        ``(market, indices into idx in idx's order, signed lots)`` for the markets they hold."""
        i, ks, q, _ = self.acc.positions.entries(idx, self.acc.n)
        order = np.lexsort((i, ks))  # by market, then in idx's order
        i, ks, q = i[order], ks[order], q[order]
        bounds = np.flatnonzero(np.diff(ks)) + 1
        for a, b in zip(
            np.concatenate([[0], bounds]).tolist(),
            np.concatenate([bounds, [ks.size]]).tolist(),
            strict=True,
        ):
            if b > a:
                yield int(ks[a]), i[a:b], q[a:b]

    def apply_funding(self, rates: object) -> np.ndarray:
        """Pay funding: longs pay ``rate * notional`` to shorts (negative rate: the reverse).

        Zero-sum because long and short open interest are equal.  Returns payments received
        per account, (N,).
        """
        r = np.broadcast_to(np.asarray(rates, dtype=np.float64), (self.K,))
        if not all_true(np.abs(r) < 1):  # (fails for NaN and infinities too)
            require(False, "funding.rates", "finite, |rate| < 1", r.tolist())
        # every stored entry: a closed one's term is -(0 * x), an exact zero added to 0
        book = self.acc.positions
        i, _, q, _ = book.stored()
        pay = sum_by(i, -(q * book.per_stored(self.lot * self.marks * r)), self.acc.n)
        self.acc.cash[:] += pay
        nz = np.flatnonzero(pay != 0)  # = flatnonzero(pay), faster on a boolean mask
        book_gain(self.acc.gains, nz, pay[nz])
        return pay

    def clone(self, *, policy: ADLPolicy | str | None = "same", with_log: bool = True) -> Exchange:
        """An independent deep copy (for counterfactual replays and paired experiments).

        ``policy=None`` gives a copy without ADL (uncovered deficits become bad debt);
        another policy object replaces the policy; the default keeps it.  ``with_log=False``
        starts the copy with an empty event log (the log grows all run and is otherwise the
        only part whose copy cost grows with time).
        """
        import copy

        memo = {} if with_log else {id(self.log): EventLog()}
        other = copy.deepcopy(self, memo)
        if policy != "same":
            other.policy = policy  # type: ignore[assignment]
        return other

    def move_position(self, src: int, dst: int, market: int, lots: int) -> bool:
        """Move ``lots`` of ``src``'s position to ``dst`` at ``src``'s entry price.

        For accounts of one owner (same group): the split looks as if it had existed since the
        position was opened.  Zero-sum, no fee; refused (nothing changes) when the owners
        differ, ``lots`` exceeds the position, or either account would end below initial margin.
        """
        s = int(self._check_accounts(src)[0])
        d = int(self._check_accounts(dst)[0])
        k = self._check_market(market)
        require(isinstance(lots, int | np.integer) and lots > 0, "lots", "a positive integer", lots)
        require(s != d, "dst", "a different account from src", d)
        if self.acc.group[s] != self.acc.group[d]:
            return False
        pair = np.array([s, d]) if s < d else np.array([d, s])
        book = self.acc.positions
        q_sd, e_sd = book.get(k, np.array([s, d]))
        q, price = int(q_sd[0]), float(e_sd[0])
        if lots > abs(q):
            return False
        dq = int(np.sign(q)) * int(lots)
        saved = (self.acc.cash[pair].copy(), self.acc.gains[pair].copy())
        self._apply_fills(np.array([s]), k, np.array([-dq]), np.array([price]))
        self._apply_fills(np.array([d]), k, np.array([dq]), np.array([price]))
        eq = self.equity(pair)
        im = self.initial_margin(pair)
        if np.any(eq < im):
            book.set(k, np.array([s, d]), q_sd, e_sd)
            self.acc.cash[pair], self.acc.gains[pair] = saved
            return False
        return True

    def deactivate(self, accounts: object) -> np.ndarray:
        """Settle leaving accounts: close every position, pay out the cash, mark inactive.

        Returns the cash paid out per account (money leaving the exchange; under
        ``shortfall="withdrawals"`` after the socialised loss cut).
        """
        idx = self._check_accounts(accounts)
        live = idx[(self.acc.flags[idx] & ACTIVE) != 0]
        for k, at, q in self._held_by_market(live):
            rows, dq = live[at], -q
            px = self._book_prices(k, dq)
            self._fill(rows, k, dq, px, "settle")
        out = np.maximum(self.acc.cash[live], 0.0)
        kept = self._cut_withdrawals(out)  # before the leavers stop counting as active
        self.acc.cash[live] -= out
        book_gain(self.acc.gains, live, -out)
        self.external -= float(out.sum() - kept.sum())
        self.acc.flags[live] &= ~ACTIVE
        paid = np.zeros(idx.size)
        paid[np.isin(idx, live)] = out - kept
        return paid

    def set_fund_reference(self, value: float | None = None) -> None:
        """The balance ``backstop.max_drawdown`` is measured against (default: the fund now)."""
        v = self.fund if value is None else float(value)
        require(np.isfinite(v) and v >= 0, "fund_reference", "a finite number >= 0", v)
        self.fund_reference = v

    def fund_deposit(self, amount: float) -> None:
        """New capital for the backstop (insurance fund, or the vault's account)."""
        a = float(self._check_amount(amount, "fund_deposit.amount")[0])
        if self.backstop.kind not in ("fund", "vault"):
            raise InputError("fund_deposit", "a backstop of kind fund or vault", self.backstop.kind)
        self.external += a
        a = self._repay(a)  # the backstop's carried debt is repaid first
        if self.backstop.kind == "vault":
            self.acc.cash[self.vault] += a
        else:
            self.fund += a

    def _vault_equity(self) -> float:
        """The vault account's equity at the marks (``equity()[vault]``, one row's cost)."""
        return float(self.equity(np.array([self.vault]))[0])

    def backstop_capital(self) -> float:
        """Capital the backstop has now (fund, or the vault's equity)."""
        if self.backstop.kind == "vault":
            return self._vault_equity()
        return float(self.fund)

    def ranking_snapshot(self, market: int, liq_side: int) -> Snapshot:
        """The snapshot a wave in ``market`` would see now, for liquidations on ``liq_side``.

        What a venue's ADL indicator is computed from (the budget is not known yet, so the
        lot value is the previous-mark gap or, failing that, zero).
        """
        k = self._check_market(market)
        require(liq_side in (-1, 1), "liq_side", "+1 (longs liquidated) or -1", liq_side)
        return self._snapshot(k, int(liq_side), 0.0, 1)[0]

    def ranking_snapshots(self, liq_side: int) -> list[Snapshot]:
        """:meth:`ranking_snapshot` of every market (the same snapshots), with the per-account
        sums computed once for all of them (or the ones the last waterfall step kept, when no
        position, account or mark changed since)."""
        require(liq_side in (-1, 1), "liq_side", "+1 (longs liquidated) or -1", liq_side)
        sums = self._kept_sums()  # the last waterfall's, when nothing moved since
        if sums is None:
            sums = self._account_sums()[:3]
        ks = list(range(self.K))
        built, _ = self._snapshots(
            ks, [int(liq_side)] * self.K, [0.0] * self.K, [1] * self.K, sums=sums
        )
        return [snap for snap, _ in built]

    def age_gains(self) -> None:
        """Move the gains ladder one rung up: recent → older → settled."""
        g = self.acc.gains
        g[:, 2] += g[:, 1]
        g[:, 1] = g[:, 0]
        g[:, 0] = 0.0


def check_positions(exchange: Exchange) -> None:
    """Raise :class:`InputError` if any position is not whole lots (defensive)."""
    for q in exchange.acc.positions.lots:
        if q.dtype.kind not in "iu":
            raise InputError("positions", "whole lots (integer dtype)", q.dtype)
