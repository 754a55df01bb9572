"""The waterfall of every step, as a mixin of :class:`market.exchange.Exchange`: mark to
market, scan, liquidation into the book or the vault, holes, the backstop, ADL market by
market under the severity controller, and the shortfall's bearer.

Its methods read and write the exchange's state; :class:`market.exchange.Exchange` holds
the accounts, the order API and the money, and inherits these."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from market import arrays
from market import margin as mg
from market.accounts import (
    ACTIVE,
    ADLED,
    BANKRUPT,
    BOOK,
    LIQUIDATED,
    VAULT,
    book_gain,
    book_gain_one,
    book_turns,
    ledger_rows,
)
from market.adl.base import Snapshot
from market.adl.eligibility import Eligibility
from market.adl.severity import WaveOutcome, WaveState
from market.arrays import gather, has_repeats, stable_argsort, unique_sorted
from market.positions import sum_by


@dataclass
class StepReport:
    """What one step of the waterfall did (all dollars).

    ``deficit`` is the holes' total before the backstop, ``adl_budget`` what was left for ADL
    after the backstop (the deficit-based need), ``adl_target`` what the policies were asked to
    raise (``theta`` times the need under budget execution; the worth of the uncovered
    liquidated lots at the rule's price under position execution), ``adl_raised`` what ADL took.
    ``overshoot`` / ``undershoot`` sum, over the step's waves, what ADL took above / below each
    wave's need; ``rounding`` is the lot rounding above the targets.  ``residual`` is what
    neither the backstop nor ADL covered; its bearer (:data:`SHORTFALL_BEARERS`) took it as
    ``written_off`` bad debt, ``carried`` debt (fund debt or awaiting socialisation) or
    ``venue_paid``.
    """

    step: int
    liquidated: int = 0
    takeovers: int = 0
    bankrupt: int = 0
    deficit: float = 0.0
    backstop_used: float = 0.0
    theta: float = 1.0
    adl_budget: float = 0.0
    adl_target: float = 0.0
    adl_raised: float = 0.0
    overshoot: float = 0.0
    undershoot: float = 0.0
    rounding: float = 0.0
    residual: float = 0.0
    written_off: float = 0.0
    carried: float = 0.0
    venue_paid: float = 0.0
    touched: int = 0
    waves: list[int] = field(default_factory=list)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _seg_max(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment ``[bounds[i], bounds[i + 1])`` of ``x``: its maximum, floored at 0 (0 when
    empty): ``x[segment].max(initial=0.0)`` for each."""
    out = np.zeros(bounds.size - 1)
    full = np.flatnonzero(np.diff(bounds) > 0)
    if full.size:
        out[full] = np.maximum(np.maximum.reduceat(x, bounds[full]), 0.0)
    return out


def _seg_count(mask: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment of ``mask``: how many are True (integers)."""
    c = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return c[bounds[1:]] - c[bounds[:-1]]


class Waterfall:
    """Steps the exchange: see the module docstring (mixed into ``Exchange``)."""

    #: From this many markets on, :meth:`_run_adl` totals the holes' liquidated positions per
    #: market by ``bincount``; below it, as (holes, K) arrays summed column by column.
    sparse_sums_min_markets: int = 9
    #: Execute a step's ADL waves together after every rule call (the same operations, in the
    #: same order for each account, as wave by wave); False executes each wave after its own
    #: rule call, as a vault backstop always does (tests compare the two).
    batch_adl: bool = True

    # ------------------------------------------------------------------ the waterfall
    def step(self, marks: object) -> StepReport:
        """Move to new marks and run the waterfall once; returns what happened."""
        m = np.array(arrays.per_row(marks, (self.K,), np.float64))  # a copy of its own
        self._check_prices(m, "marks")
        self.step_no += 1
        self.prev_marks = self.marks
        self.marks = m
        ret = np.abs(np.log(self.marks / self.prev_marks))
        self.stress = np.minimum(ret / self.spec_field("stress_ref"), 1.0)
        self._consumed[:] = 0.0
        return self.run_waterfall()

    def run_waterfall(self) -> StepReport:
        """Liquidation scan → book / vault → backstop → ADL → bad debt, at the current marks."""
        rep = StepReport(step=self.step_no)
        acc = self.acc
        acc.flags[:] &= ~BANKRUPT  # a hole is filled or written off within the step it opened
        if self.vault >= 0:
            self._vault_unwind()
        usum, mm, ntsum, has_pos = self._account_sums()
        self._sums_kept = None
        eq = acc.cash + usum  # equity()
        liq = np.flatnonzero(has_pos & (eq < mm))
        liq = liq[(acc.flags[liq] & (BOOK | VAULT)) == 0]  # traders only
        if liq.size == 0 and self.vault < 0:  # nothing to liquidate: no hole (the report's 0s)
            self._keep_sums((usum, mm, ntsum), liq)
            return rep
        hole_rows, hole, sent = self._liquidations(liq, eq, mm, rep)
        acc.flags[hole_rows] |= BANKRUPT
        deficit = float(hole.sum())
        rep.bankrupt = int(hole_rows.size)
        rep.deficit = deficit
        if deficit <= 0:
            self._keep_sums((usum, mm, ntsum), liq)
            return rep
        # backstop
        paid = self._backstop_pay(hole_rows, hole)
        rep.backstop_used = float(paid.sum())
        left = hole - paid
        # ADL
        adl_paid = np.zeros_like(left)
        if self.policy is not None and left.sum() > 0:
            # reuse the scan's sums (see _account_sums); rows whose positions moved since the
            # scan (the liquidated, the book that absorbed them) anew
            sums = (usum, mm, ntsum)
            self._refresh_sums(sums, np.append(liq, self.book))
            adl_paid, rep = self._run_adl(hole_rows, hole, left, sent, rep, sums=sums)
        else:  # no ADL: only the liquidations moved positions
            self._keep_sums((usum, mm, ntsum), liq)
        left = left - adl_paid
        self._bear_shortfall(hole_rows, left, rep)
        self.log.bankruptcies.append(
            step=self.step_no,
            account=hole_rows,
            deficit=hole,
            backstop=paid,
            adl=adl_paid,
            residual=left,
        )
        return rep

    def _keep_sums(
        self, sums: tuple[np.ndarray, np.ndarray, np.ndarray], moved: np.ndarray
    ) -> None:
        """Keep the scan's per-account sums (upnl, maintenance, notional; see
        :meth:`_account_sums`) for the rest of the step, valid at the step's final positions:
        the ``moved`` rows (the liquidated), the book and the vault read anew.  They stand
        while the positions, the accounts and the marks stay as they are (:meth:`_kept_sums`)."""
        if moved.size or self.vault >= 0:
            self._refresh_sums(
                sums, np.append(moved, [self.book] + ([self.vault] if self.vault >= 0 else []))
            )
        self._sums_kept = (self.acc.positions.version, self.acc.n, self.marks.copy(), sums)

    def _refresh_sums(
        self, sums: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray
    ) -> None:
        """Recompute the scan's per-account sums of the unique ``rows`` (whose positions
        moved since the scan) in place."""
        sums[0][rows], sums[1][rows], sums[2][rows], _ = self._account_sums(rows)

    def _kept_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The sums :meth:`_keep_sums` kept, if nothing they depend on changed since; else
        None."""
        kept = self._sums_kept
        if kept is None:
            return None
        version, n, marks, sums = kept
        acc = self.acc
        if version != acc.positions.version or n != acc.n or not np.array_equal(marks, self.marks):
            return None
        return sums

    def _liquidations(
        self, liq: np.ndarray, eq: np.ndarray, mm: np.ndarray, rep: StepReport
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Liquidate ``liq`` (the vault takes over the deepest, the book the rest).

        Returns the holes left (rows and dollars: flat accounts with negative cash, and a
        vault under water) and what each hole's liquidation sent, one entry per position:
        ``(hole index, market, notional, signed lots)``."""
        acc = self.acc
        if liq.size == 0 and self.vault < 0:  # nothing to liquidate, no vault to look at
            rep.liquidated = 0
            e_i = np.zeros(0, dtype=np.int64)
            return e_i, np.zeros(0), (e_i, e_i, np.zeros(0), e_i)
        parts: list[tuple[np.ndarray, ...]] = []
        still_open = np.zeros(liq.size, dtype=bool)
        if liq.size:
            acc.flags[liq] |= LIQUIDATED
            if self.vault >= 0:
                take = eq[liq] < self.backstop.vault_trigger * mm[liq]
                rep.takeovers = int(take.sum())
                if take.any():
                    ii, kk, nt, lots = self._vault_takeover(liq[take])
                    parts.append((np.flatnonzero(take)[ii], kk, nt, lots))
                rest = ~take
            else:
                rest = np.ones(liq.size, dtype=bool)
            if rest.any():
                at = np.flatnonzero(rest)
                i, k, nt, lots, left_open = self._liquidate(liq[at], eq[liq[at]])
                parts.append((at[i], k, nt, lots))
                still_open[at] = left_open
        rep.liquidated = int(liq.size)
        hmask = ~still_open & (acc.cash[liq] < 0)  # flat accounts with negative cash
        hole_rows = liq[hmask]
        hole = -acc.cash[hole_rows]
        slot = np.full(liq.size, -1, dtype=np.int64)
        slot[hmask] = np.arange(hole_rows.size)
        e_i = np.zeros(0, dtype=np.int64)
        h, k, w, lots = (
            (np.concatenate(x) for x in zip(*parts, strict=True))
            if parts
            else (e_i, e_i, np.zeros(0), e_i)
        )
        keep = slot[h] >= 0
        h, k, w, lots = slot[h[keep]], k[keep], w[keep], lots[keep].astype(np.int64)
        if self.vault >= 0:
            v_eq = self._vault_equity()
            if v_eq < 0:
                _, vk, vq, _ = acc.positions.entries(np.array([self.vault]))
                h = np.append(h, np.full(vk.size, hole_rows.size))
                k = np.append(k, vk)
                w = np.append(w, np.abs(vq) * self.lot[vk] * self.marks[vk])
                lots = np.append(lots, vq)
                hole_rows = np.append(hole_rows, self.vault)
                hole = np.append(hole, -v_eq)
        return hole_rows, hole, (h, k, w, lots)

    def _bear_shortfall(self, rows: np.ndarray, left: np.ndarray, rep: StepReport) -> None:
        """Fill what the backstop and ADL left uncovered and book it to its bearer."""
        rest = float(left.sum())
        rep.residual = rest
        if rest <= 0:
            return
        self._fill_holes(rows, left)
        if self.shortfall == "written_off":
            self.bad_debt += rest
            rep.written_off = rest
        elif self.shortfall == "venue":
            self.external += rest  # the venue's own money comes in
            self.venue_paid += rest
            rep.venue_paid = rest
        else:  # fund_debt, socialised: carried
            self.debt += rest
            rep.carried = rest

    def settle(self) -> float:
        """Settlement (end of a crisis or trading day): socialise the carried shortfall.

        Only under ``shortfall="socialised"``: the carried debt is charged to the trader
        accounts in profit (positive unrealised PnL over their markets), pro rata to that
        profit and at most their equity, as a cash debit (gains ledger first), logged in
        ``log.socialised``; what they cannot cover stays carried.  Returns the dollars
        charged (0 under the other bearers).
        """
        if self.shortfall != "socialised" or self.debt <= 0:
            return 0.0
        acc = self.acc
        ups = self._account_sums(upnl_only=True)[0]
        eq = acc.cash + ups
        trader = ((acc.flags & (BOOK | VAULT)) == 0) & ((acc.flags & ACTIVE) != 0)
        room = np.where(trader, np.minimum(np.maximum(ups, 0.0), np.maximum(eq, 0.0)), 0.0)
        total = float(room.sum())
        if total <= 0:
            return 0.0
        take = room * min(self.debt / total, 1.0)
        rows = np.flatnonzero(take > 0)
        h = take[rows]
        acc.cash[rows] -= h
        book_gain(acc.gains, rows, -h)
        charged = float(h.sum())
        self.debt = max(self.debt - charged, 0.0)
        self.socialised += charged
        self.log.socialised.append(
            step=self.step_no, account=rows, haircut=h, base=room[rows], equity=eq[rows]
        )
        return charged

    def _fill_holes(self, rows: np.ndarray, amount: np.ndarray) -> None:
        """Credit money into holes (vault: into its cash)."""
        np.add.at(self.acc.cash, rows, amount)

    def _liquidate(self, rows: np.ndarray, eq: np.ndarray) -> tuple[np.ndarray, ...]:
        """Send the positions of ``rows`` to the book (chunked when large and solvent).

        Every market's orders are sized in one pass over the rows' positions and filled by
        :meth:`_fill_markets` (each market walks its own book, in market order).
        Returns ``(row index, market, notional, signed lots, still open)``: one entry per
        position sent, and per row whether a chunked position is left.
        """
        acc = self.acc
        # the open positions of the rows, by market, rows in order within one
        ri, ci, qi, ei, slot = acc.positions.entries_at(rows, acc.n)
        qa = np.abs(qi)
        lot, mark = self.lot[ci], self.marks[ci]
        nt = qa * lot * mark
        threshold = self.spec_field("chunk_threshold")[ci]
        fraction = self.spec_field("chunk_fraction")[ci]
        chunk = (nt > threshold) & (eq[ri] > 0)
        send = np.where(chunk, np.ceil(qa * fraction).astype(np.int64), qa)
        dq = -np.sign(qi) * send
        if ri.size:
            ascending = None
            if ri.size == rows.size:  # one position each: cash and ledger in account order
                ascending = np.empty_like(ri)  # (rows ascend: the inverse of ri sorts them)
                ascending[ri] = np.arange(ri.size)
            self._fill_markets(rows[ri], ci, dq, "liquidation", slots=slot, ledger_order=ascending)
        nt_sent = send * lot * mark
        still_open = np.bincount(ri, weights=send < qa, minlength=rows.size) > 0
        rate = self.spec_field("liquidation_fee")[ci]
        fee_due = sum_by(ri, nt_sent * rate, rows.size)  # market order
        # clearance fee out of whatever equity is left, to the backstop: equity(rows), their
        # upnl from what is left of the positions read above (entries unchanged by a close;
        # a closed position adds an exact zero), in the same market order as a scan
        left = qi + dq
        eq_after = acc.cash[rows] + sum_by(ri, left * lot * (mark - ei), rows.size)
        fee = np.minimum(fee_due, np.maximum(eq_after, 0.0))
        nz = fee > 0
        if nz.any():
            acc.cash[rows[nz]] -= fee[nz]
            acc.fees_paid[rows[nz]] += fee[nz]
            book_gain(acc.gains, rows[nz], -fee[nz])
            self._backstop_income(float(fee[nz].sum()))
        return ri, ci, nt_sent, (-dq).astype(np.int64), still_open  # -dq: the position sent

    def _backstop_income(self, amount: float) -> None:
        amount = self._repay(amount)
        if self.backstop.kind == "fund":
            self.fund += amount
        elif self.backstop.kind == "vault":
            self.acc.cash[self.vault] += amount
        else:
            self.fee_revenue += amount

    def _vault_takeover(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move the positions of ``rows`` to the vault at the mark; positive equity goes too."""
        acc = self.acc
        ri, ci, qi, _ = acc.positions.entries(rows, acc.n)  # by market, rows ascending
        notional = np.abs(qi) * self.lot[ci] * self.marks[ci]
        starts = np.searchsorted(ci, np.arange(self.K + 1))
        for k in unique_sorted(ci).tolist():
            sl = slice(starts[k], starts[k + 1])
            r = rows[ri[sl]]
            px = np.full(r.size, self.marks[k])
            self._fill(r, k, -qi[sl], px, "vault_takeover", counterparty=self.vault)
        margin_left = np.maximum(acc.cash[rows], 0.0)
        acc.cash[rows] -= margin_left
        book_gain(acc.gains, rows, -margin_left)
        acc.cash[self.vault] += float(margin_left.sum())
        return ri, ci, notional, qi

    def _vault_unwind(self) -> None:
        """Send a share of the vault's inventory to the book."""
        v = self.vault
        _, vk, vq, _ = self.acc.positions.entries(np.array([v]))
        for k, q in zip(vk.tolist(), vq.tolist(), strict=True):
            send = int(np.ceil(abs(q) * self.backstop.vault_unwind))
            dq = np.array([-np.sign(q) * send])
            px = self._book_prices(k, dq)
            self._fill(np.array([v]), k, dq, px, "vault_unwind")

    def _backstop_pay(self, rows: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Pay holes pro rata from the backstop's capital; returns what each hole received."""
        total = float(hole.sum())
        if self.backstop.kind == "fund":
            # the fund pays down to its floor; below it ADL starts (Bybit's, OKX's triggers)
            floor = (1.0 - self.backstop.max_drawdown) * self.fund_reference
            avail = max(self.fund - floor, 0.0)
        elif self.backstop.kind == "vault":
            avail = max(self._vault_equity(), 0.0)
            avail = min(avail, max(float(self.acc.cash[self.vault]), 0.0))
        else:
            avail = 0.0
        pay_total = min(avail, total)
        is_vault = rows == self.vault
        paid = (
            np.where(is_vault, 0.0, hole * (pay_total / total))
            if total > 0
            else np.zeros_like(hole)
        )
        pay_total = float(paid.sum())
        if pay_total <= 0:
            return paid
        if self.backstop.kind == "fund":
            self.fund = 0.0 if pay_total >= self.fund else self.fund - pay_total
        else:
            self.acc.cash[self.vault] -= pay_total
        self._fill_holes(rows, paid)
        return paid

    # ------------------------------------------------------------------ ADL
    def _run_adl(
        self,
        rows: np.ndarray,
        hole: np.ndarray,
        left: np.ndarray,
        sent: tuple[np.ndarray, ...],
        rep: StepReport,
        *,
        sums: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, StepReport]:
        """Raise the remaining deficit from winners, market by market.

        Each hole's deficit is split over markets by its liquidated notional; ``need_k`` is
        market k's share of what the backstop left.  Budget execution asks the policy for
        ``theta * need_k``.  Position execution asks it to close the liquidated lots the
        backstop did not take (``theta`` of them, whole lots) at the rule's price, so the
        dollars taken are whatever those lots are worth there: above the need (the surplus
        goes to the backstop) or below it (the rest stays with the shortfall's bearer).

        ``sent``: what each hole's liquidation sent, ``(hole, market, notional, signed
        lots)`` per position (:meth:`_liquidations`).  ``sums``: per-account (upnl sum, maintenance,
        notional sum) over every row, valid at the current state (see
        :meth:`_account_sums`), which the snapshots then gather.
        """
        total_left = float(left.sum())
        many = self.sparse_sums_min_markets <= self.K
        if many:  # over the holes' positions
            wsum = np.bincount(sent[0], weights=sent[2], minlength=rows.size)[:, None]
        else:  # as (holes, K) arrays, summed column by column
            w = np.zeros((rows.size, self.K))
            lots = np.zeros((rows.size, self.K), dtype=np.int64)
            w[sent[0], sent[1]] = sent[2]
            lots[sent[0], sent[1]] = sent[3]
            wsum = w.sum(axis=1, keepdims=True)
        if (wsum > 0).all():
            fallback_w = np.zeros(self.K)  # not used: every hole has liquidated notional
        else:
            oi = self.market_notional()
            fallback_w = oi / oi.sum() if oi.sum() > 0 else np.full(self.K, 1.0 / self.K)
        with np.errstate(divide="ignore", invalid="ignore"):
            uncovered = np.where(hole > 0, left / np.where(hole > 0, hole, 1.0), 0.0)
        is_vault = rows == self.vault
        if many:
            need_k, deficit_k, side_k, lots_k, open_k, vault_open_k = self._market_totals_open(
                hole, left, sent, wsum[:, 0], fallback_w, uncovered, is_vault
            )
        else:
            share = np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), fallback_w[None, :])
            need_k = (left[:, None] * share).sum(axis=0)
            deficit_k = (hole[:, None] * share).sum(axis=0)
            side_k = np.sign((np.sign(lots) * np.abs(w)).sum(axis=0)).astype(np.int64)
            abs_lots = np.abs(lots)
            lots_k = abs_lots.sum(axis=0)
            open_k = (abs_lots * uncovered[:, None]).sum(axis=0)  # lots the backstop left
            vault_open_k = (abs_lots[is_vault] * uncovered[is_vault, None]).sum(axis=0)
        position = self.execution == "position"
        snaps: dict[int, tuple[Snapshot, bool]] = {}
        ks = [int(k) for k in np.flatnonzero(need_k > 0)]
        built, wave_rows = self._snapshots(
            ks,
            [int(side_k[k]) for k in ks],
            [float(deficit_k[k]) for k in ks],
            [int(lots_k[k]) for k in ks],
            sums=sums,
            waves=[self.wave_no + 1 + j for j in range(len(ks))],
        )
        snaps.update(zip(ks, built, strict=True))
        self.wave_no += len(ks)
        first_wave = self.wave_no - len(snaps)
        cap_total = float(sum(float(sn.capacity.sum()) for sn, _ in snaps.values()))
        # M_t: the largest winner's capacity, summed over the markets it pays in
        acct = np.concatenate([sn.account for sn, _ in snaps.values()]) if snaps else None
        m_t = 0.0
        if acct is not None and acct.size:
            caps = np.concatenate([sn.capacity for sn, _ in snaps.values()])
            m_t = min(float(np.bincount(acct, weights=caps).max()), cap_total)
        wave = WaveState(
            index=self.step_no,
            deficit=total_left,
            capacity=cap_total,
            backstop=self.fund
            if self.backstop.kind == "fund"
            else max(self._vault_equity(), 0.0)
            if self.vault >= 0
            else 0.0,
            max_shortfall=float(left.max()),
            max_capacity=m_t,
        )
        theta = float(np.clip(self.severity.theta(self.severity_state, wave), 0.0, 1.0))
        flag = bool(self.severity_state.get("ic_broken", False))
        elasticity = self.severity_state.get("ic_elasticity")
        elasticity = float("nan") if elasticity is None else float(elasticity)
        rep.theta = theta
        raised_total = 0.0
        max_frac, share_at_max = 0.0, None
        rule = self.policy.price_rule
        # the waves' rows end to end: their eligibility base once, their statistics once below
        bounds = wave_rows["bounds"]
        cap_all = wave_rows["capacity"]
        eq_all = wave_rows["equity"]
        base_all = self.eligibility.base(
            upnl=wave_rows["upnl"],
            gains_total=wave_rows["gains"],
            equity=eq_all,
            maintenance=wave_rows["maintenance"],
        )
        taken: list[np.ndarray] = []
        per_wave: list[dict] = []  # the wave log's per-wave values (the rest are one value)
        b_effs: list[float] = []
        # without a vault nothing between two waves' executions reads what the first
        # changed: the waves are executed together after every rule call
        batched = self.batch_adl and self.vault < 0
        allocs: list = []
        max_shortfall = float(left.max(initial=0.0))
        # the eligibility's own budget rule on checked capacities: from their sums
        plain_budget = type(self.eligibility).budget is Eligibility.budget
        if plain_budget:  # what budget() checks per wave, once over every wave's rows
            self.eligibility.validate()
            self.eligibility.checked_capacity(cap_all)
        for i, (k, (snap, fallback)) in enumerate(snaps.items()):
            wave_no = first_wave + i + 1
            rep.waves.append(wave_no)
            need = float(need_k[k])
            target_lots = 0
            lot_value = float(snap.lot_value[0]) if snap.n else 0.0
            if position and rule != "none":
                target_lots = int(np.ceil(theta * float(open_k[k]) - 1e-9))
                budget = target_lots * lot_value
            else:
                budget = theta * need
            cap_k = float(snap.capacity.sum())
            if plain_budget:  # rows built and checked above: the sums suffice
                b_eff, cut = self.eligibility.budget_of_sums(budget, cap_k)
            else:
                b_eff, cut = self.eligibility.budget(budget, snap.capacity)
            alloc = self.policy(snap, b_eff)
            base = base_all[bounds[i] : bounds[i + 1]]
            if batched:
                allocs.append(alloc)
            else:
                self._execute_adl(k, snap, alloc, wave_no, base)
            raised = alloc.raised
            if position and target_lots and vault_open_k[k] > 0:
                self._vault_hands_over(k, alloc, float(vault_open_k[k] / open_k[k]))
            raised_total += raised
            rep.adl_budget += need
            rep.adl_target += budget
            over, under = max(raised - need, 0.0), max(need - raised, 0.0)
            tol = 1e-9 * max(need, 1.0)
            over, under = (over if over > tol else 0.0), (under if under > tol else 0.0)
            touched = alloc.touched
            rep.overshoot += over
            rep.undershoot += under
            rep.rounding += alloc.overshoot
            rep.touched += touched
            taken.append(alloc.haircut)
            b_effs.append(b_eff)
            per_wave.append(
                {
                    "wave": wave_no,
                    "market": k,
                    "deficit": need,
                    "budget": budget,
                    "capacity": cap_k,
                    "raised": raised,
                    "overshoot": over,
                    "undershoot": under,
                    "rounding": alloc.overshoot,
                    "residual": alloc.residual + cut,
                    "lots_target": target_lots,
                    "granularity": alloc.granularity,
                    "lot_value": lot_value,
                    "eligible": snap.n,
                    "touched": touched,
                    "price_fallback": fallback,
                    "base_total": float(base.sum()),
                }
            )
        h_all = _concat(taken)
        if batched:
            self._execute_adl_markets(list(snaps), allocs, first_wave + 1, wave_rows, base_all)
        with np.errstate(divide="ignore", invalid="ignore"):
            fr = np.where(cap_all > 0, h_all / cap_all, 0.0)
            fr_base = np.where(base_all > 0, h_all / np.where(base_all > 0, base_all, 1.0), 0.0)
            eq_pos = eq_all > 0
            fr_eq = np.where(eq_pos, h_all / np.where(eq_pos, eq_all, 1.0), 0.0)
        stats = {
            "max_capacity": _seg_max(cap_all, bounds),
            "max_survivor": _seg_max(cap_all - h_all, bounds),
            "max_haircut_frac": _seg_max(fr, bounds),
            "max_haircut_equity_frac": _seg_max(fr_eq, bounds),
            "positive": _seg_count(cap_all > 0, bounds),
            "base_positive": _seg_count(base_all > 0, bounds),
            "max_base_survivor": _seg_max(np.maximum(base_all - h_all, 0.0), bounds),
            "max_haircut_base_frac": _seg_max(fr_base, bounds),
        }
        for f_k, b_eff, rec in zip(
            stats["max_haircut_base_frac"].tolist(), b_effs, per_wave, strict=True
        ):
            if f_k > max_frac:  # the budget share where the largest haircut fraction occurred
                cap_k = rec["capacity"]
                max_frac, share_at_max = f_k, min(b_eff / cap_k, 1.0) if cap_k > 0 else None
        if per_wave:  # one block: each per-wave value as a column
            self.log.waves.append(
                step=self.step_no,
                theta=theta,
                execution=int(position),
                max_shortfall=max_shortfall,
                severity_flag=flag,
                severity_elasticity=elasticity,
                **{name: np.array([rec[name] for rec in per_wave]) for name in per_wave[0]},
                **stats,
            )
        rep.adl_raised = raised_total
        self.severity_state = self.severity.update(
            self.severity_state,
            wave,
            WaveOutcome(
                raised=raised_total,
                residual=max(total_left - raised_total, 0.0),
                max_haircut_frac=max_frac,
                budget_share=share_at_max,
            ),
        )
        # raised money fills holes pro rata; surplus goes to the backstop
        to_holes = min(raised_total, total_left)
        paid = left * (to_holes / total_left) if total_left > 0 else np.zeros_like(left)
        self._fill_holes(rows, paid)
        surplus = raised_total - float(paid.sum())
        if surplus > 0:
            self._backstop_income(surplus)
        return paid, rep

    def _market_totals_open(
        self,
        hole: np.ndarray,
        left: np.ndarray,
        sent: tuple[np.ndarray, ...],
        wsum: np.ndarray,
        fallback_w: np.ndarray,
        uncovered: np.ndarray,
        is_vault: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """The per-market totals of :meth:`_run_adl` (need, deficit, side, liquidated lots,
        lots the backstop left, the vault's share of them) over the holes' liquidated
        positions only (``sent``: hole index, market, notional, lots): the same sums up to
        floating-point order."""
        k_n = self.K
        h, k, wv, lv = sent
        ok = wsum[h] > 0
        share = np.where(ok, wv / np.where(ok, wsum[h], 1.0), 0.0)
        need_k = np.bincount(k, weights=left[h] * share, minlength=k_n)
        deficit_k = np.bincount(k, weights=hole[h] * share, minlength=k_n)
        flat = wsum <= 0  # holes without liquidated notional: spread by open interest
        if flat.any():
            need_k = need_k + float(left[flat].sum()) * fallback_w
            deficit_k = deficit_k + float(hole[flat].sum()) * fallback_w
        side = np.bincount(k, weights=np.sign(lv) * np.abs(wv), minlength=k_n)
        side_k = np.sign(side).astype(np.int64)
        al = np.abs(lv).astype(np.float64)
        lots_k = np.bincount(k, weights=al, minlength=k_n).round().astype(np.int64)
        open_k = np.bincount(k, weights=al * uncovered[h], minlength=k_n)
        if arrays.any_true(is_vault):
            vault_open_k = np.bincount(k, weights=al * uncovered[h] * is_vault[h], minlength=k_n)
        else:  # no vault among the holes: its terms are all +0.0
            vault_open_k = np.zeros(k_n)
        return need_k, deficit_k, side_k, lots_k, open_k, vault_open_k

    def _vault_hands_over(self, k: int, alloc, vault_share: float) -> None:
        """Position execution: the vault's part of the closed lots leaves the vault.

        The winners' lots were closed against the book; the vault's share of them (the
        vault's uncovered lots over all uncovered lots) moves from the vault to the book at
        the mark, so the bankrupt vault position is what the winners absorbed.  No money moves.
        """
        v = self.vault
        q = int(self.acc.positions.lots_of(np.array([v]), k)[0])
        n = min(round(float(alloc.lots.sum()) * vault_share), abs(q))
        if n <= 0:
            return
        dq = np.array([-int(np.sign(q)) * n])
        self._fill(np.array([v]), k, dq, np.array([self.marks[k]]), "adl_close")

    def _snapshot(
        self,
        k: int,
        liq_side: int,
        deficit: float,
        liq_lots: int,
        *,
        sums: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        wave: int = 0,
    ) -> tuple[Snapshot, bool]:
        """The eligible positions of market k for an ADL wave after ``deficit`` dollars of holes.

        Eligible: every active account (the book included: market makers are ADL'd like any
        account) on the side facing the liquidated flow (every open position for
        ``sides="all"``), except the vault and bankrupt accounts.  The book's account value
        counts the capital its liquidity providers hold behind it (``book_capital``).

        Per lot force-closed, the rule's price raises ``lot_value`` dollars: the previous mark's
        gap (``prev_mark``), or the liquidated order's bankruptcy price, at which closing the
        ``liq_lots`` liquidated lots raises exactly the holes' ``deficit`` (``bankruptcy``, and
        ``prev_mark`` when the mark did not move: the returned flag says so).

        ``sums`` (optional): per-account (upnl sum, maintenance, notional sum) over every row
        at the current state, from :meth:`_account_sums`; gathered instead of recomputed.
        Only the rows holding market k are examined (a row without a position is never
        eligible).  Returns the snapshot and the price-fallback flag.
        """
        built, _ = self._snapshots([k], [liq_side], [deficit], [liq_lots], sums=sums, waves=[wave])
        return built[0]

    def _snapshots(
        self,
        markets: list[int],
        liq_sides: list[int],
        deficits: list[float],
        liq_lots: list[int],
        *,
        sums: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        waves: list[int] | None = None,
    ) -> tuple[list[tuple[Snapshot, bool]], dict[str, np.ndarray]]:
        """:meth:`_snapshot` of several markets at once: the row arithmetic runs once over
        every market's holders (elementwise, so each snapshot holds the same numbers as its
        own call would), then each market's slice becomes its snapshot.

        Returns the (snapshot, price-fallback flag) pairs and the snapshots' rows end to end
        (read-only; each snapshot's arrays are views of them): ``bounds`` (where each
        snapshot starts, and the end), ``capacity``, ``equity``, ``upnl``, ``gains``,
        ``maintenance``."""
        acc = self.acc
        waves = list(waves) if waves is not None else [0] * len(markets)
        # open positions market by market, rows ascending within each
        cand, pos, ent, col_slot, sizes = acc.positions.holders_of(markets)
        seg = np.repeat(np.arange(len(markets)), sizes)
        flags = acc.flags[cand]
        ok = ((flags & (VAULT | BANKRUPT)) == 0) & ((flags & ACTIVE) != 0)
        if not (self.policy is not None and self.policy.sides == "all"):
            side = np.asarray(liq_sides, dtype=np.int64)[seg]
            # the side facing the liquidated flow: pos * liq_side < 0 (every side for 0)
            ok &= (pos * side < 0) | (side == 0)
        rows = cand[ok]
        seg = seg[ok]
        counts = np.bincount(seg, minlength=len(markets))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        rule = self.policy.price_rule if self.policy is not None else "bankruptcy"
        gaps, fallbacks = [], []
        for k, liq_side, deficit, n_liq in zip(markets, liq_sides, deficits, liq_lots, strict=True):
            lot, mark = self.lot[k], self.marks[k]
            gap_bk = deficit / max(int(n_liq), 1)
            fallback = False
            if rule == "prev_mark":
                gap = max(liq_side * (self.prev_marks[k] - mark) * lot, 0.0)
                if gap <= 0:
                    gap, fallback = gap_bk, True
            elif rule == "none":
                gap = 0.0
            else:
                gap = gap_bk
            gaps.append(gap)
            fallbacks.append(fallback)
        mk = np.asarray(markets, dtype=np.int64)[seg]
        q = pos[ok]
        lots = np.abs(q)
        cash = acc.cash[rows]
        entry = ent[ok]
        up = q * gather(self.lot, mk) * (gather(self.marks, mk) - entry)  # upnl()[rows, k]
        if sums is not None:
            usum, mm, nt = sums[0][rows], sums[1][rows], sums[2][rows]
        else:
            uniq, inv = np.unique(rows, return_inverse=True)
            u_s, m_s, n_s, _ = self._account_sums(uniq)
            usum, mm, nt = u_s[inv], m_s[inv], n_s[inv]
        eq = cash + usum
        is_book = rows == self.book
        if is_book.any():
            eq = np.where(is_book, eq + self.book_capital, eq)
        with np.errstate(divide="ignore", invalid="ignore"):
            lev = np.where(eq > 0, nt / np.where(eq > 0, eq, 1.0), np.inf)
        lot_value = np.asarray(gaps, dtype=np.float64)[seg]
        gains = ledger_rows(acc.gains, rows)
        cap = self.eligibility.capacity(
            upnl=up,
            gains_total=gains,  # the ledger, summed over its layers if the cap reads it
            equity=eq,
            maintenance=mm,
            lots=lots,
            lot_value=lot_value,
            closes_lots=rule != "none",
        )
        sign = np.sign(q).astype(np.int8)
        group = acc.group[rows]
        if rule == "none":
            lot_value = np.zeros(rows.size)
        arrays = {
            "account": rows,
            "side": sign,
            "lots": lots,
            "entry": entry,
            "upnl": up,
            "cash": cash,
            "equity": eq,
            "account_upnl": usum,
            "leverage": lev,
            "maintenance": mm,
            "gains": gains,
            "lot_value": lot_value,
            "capacity": cap,
            "group": group,
        }
        for arr in arrays.values():
            arr.setflags(write=False)  # the snapshots' arrays are views of these
        out = []
        for j, k in enumerate(markets):
            sl = slice(int(bounds[j]), int(bounds[j + 1]))
            lot, mark = float(self.lot[k]), float(self.marks[k])
            gap = gaps[j]
            bk_price = mark + liq_sides[j] * gap / lot if rule != "none" else mark
            snap = Snapshot(
                **{name: arr[sl] for name, arr in arrays.items()},
                mark=mark,
                prev_mark=float(self.prev_marks[k]),
                bankruptcy_price=float(bk_price),
                lot_size=lot,
                market=int(k),
                wave=int(waves[j]),
            )
            out.append((snap, fallbacks[j]))
        kept = ("account", "side", "capacity", "equity", "upnl", "gains")
        rows_out = {name: arrays[name] for name in kept}
        rows_out["maintenance"] = mm
        rows_out["slot"] = col_slot[ok]  # where each row sits in its market's column
        rows_out["bounds"] = bounds.astype(np.int64)
        return out, rows_out

    def _account_sums(
        self, rows: np.ndarray | None = None, *, upnl_only: bool = False
    ) -> tuple[np.ndarray, ...]:
        """Per-account sums the waterfall reads, over every row or over the unique rows ``rows``.

        Returns (upnl summed over markets, maintenance, notional summed over markets, has an
        open position): ``upnl().sum(axis=1)``, ``maintenance()``, ``notional().sum(axis=1)``
        and ``(pos != 0).any(axis=1)`` on those rows, from the stored positions (a closed
        entry's terms are exact zeros, which leave a sum as it is), each account's terms added
        in market order (:meth:`market.positions.Positions.entries`, ``stored``).
        None of them reads cash, so they stay valid for a row until its position or entry
        changes.  ``upnl_only``: the first one only.
        """
        acc = self.acc
        if upnl_only and rows is not None and np.size(rows) <= arrays.FEW_ROWS:
            # a few rows: on scalars, the same terms in the same market order
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            ups = [self._row_terms(r, initial=False)[0] for r in rows.tolist()]
            return (np.array(ups, dtype=float),)
        n = acc.n if rows is None else int(np.asarray(rows).size)
        book = acc.positions
        if rows is None:  # closed entries too: their terms are exact zeros, which add nothing
            i, c, q, e = book.stored()
            per = book.per_stored  # a market's value for each of its entries
        else:
            i, c, q, e = book.entries(rows, acc.n)

            def per(values: np.ndarray) -> np.ndarray | np.generic:
                return gather(values, c)

        ups = sum_by(i, q * per(self.lot) * (per(self.marks) - e), n)
        if upnl_only:
            return (ups,)
        ntv = np.abs(q) * per(self.lot * self.marks)
        ntsum = sum_by(i, ntv, n)
        if self._any_tiers():
            req = np.empty_like(ntv)
            for k in unique_sorted(c).tolist():  # tiered requirement market by market
                sel = c == k
                req[sel] = mg.tiered_requirement(ntv[sel], self.specs[k])
        else:
            req = ntv * per(self.spec_field("maintenance_margin"))
        mm = sum_by(i, req, n)
        has = ntsum > 0  # an open position has a positive notional (lot size and mark > 0)
        return ups, mm, ntsum, has

    def _row_terms(self, r: int, *, initial: bool = True) -> tuple[float, float]:
        """One account's (upnl summed over its markets, initial requirement), in scalars: the
        terms of :meth:`_account_sums` and ``_equity_and_initial`` added in the same market
        order, for paths that handle a few rows one by one.  ``initial=False``: the upnl
        only (the requirement returned as 0.0, its terms not computed)."""
        book = self.acc.positions
        lot, marks = self.lot, self.marks
        rates = self.spec_field("initial_margin") if initial else None
        ups, im = 0.0, 0.0
        for m in book.markets_of(r):
            q, e, _ = book.get_one(m, r)
            if not q:
                continue
            lot_m, mark_m = lot.item(m), marks.item(m)  # Python floats: the same arithmetic
            ups += q * lot_m * (mark_m - e)
            if rates is not None:
                im += abs(q) * (lot_m * mark_m) * rates.item(m)
        return ups, im

    def _credit_one(self, r: int, amounts: object) -> None:
        """Book signed ``amounts`` to one row's cash and gains ledger, one after the other."""
        cash, gains = self.acc.cash, self.acc.gains
        for x in amounts:  # type: ignore[attr-defined]
            cash[r] += x
            book_gain_one(gains, r, x)

    def _execute_adl_markets(
        self,
        markets: list[int],
        allocs: list,
        first_wave: int,
        wave_rows: dict[str, np.ndarray],
        base_all: np.ndarray,
    ) -> None:
        """:meth:`_execute_adl` for every wave of a step at once (waves numbered from
        ``first_wave``, market by market; ``wave_rows``: their snapshots' rows end to end).

        The same operations in the same order for every account: positions market by market,
        the fill arithmetic once, then each account's cash and gains entries in wave order
        (a wave's realised PnL, then its haircut), the book's in scalars; one trade-log block
        and one ADL-log block.  For steps without a vault (whose hand-over reads the state
        between waves)."""
        if not allocs:
            return
        hair = _concat([a.haircut for a in allocs])
        lots_all = np.concatenate([a.lots for a in allocs])
        touched = np.flatnonzero((hair > 0) | (lots_all > 0))
        if touched.size == 0:
            return
        sizes = np.diff(wave_rows["bounds"])
        seg = np.repeat(np.arange(len(markets)), sizes)[touched]
        market = np.asarray(markets, dtype=np.int64)[seg]
        rows = wave_rows["account"][touched]
        lots = lots_all[touched]
        h = hair[touched]
        price = _concat([a.price for a in allocs])[touched]
        ci = np.flatnonzero((lots > 0) & (rows != self.book))
        r_c, m_c = rows[ci], market[ci]
        dq = -wave_rows["side"][touched][ci].astype(np.int64) * lots[ci]
        # nothing has changed a position since the snapshots: their column slots hold
        slots = wave_rows["slot"][touched][ci]
        realised, _, book_pnl = self._fill_positions(r_c, m_c, dq, self.marks[m_c], slots=slots)
        # the book's entries, wave by wave: the other side of the wave's closes, its haircut
        b = self.book
        is_b = rows == b
        h_book = dict(zip(seg[is_b].tolist(), h[is_b].tolist(), strict=True))
        pnl_of = dict(zip(unique_sorted(seg[ci]).tolist(), book_pnl, strict=True))
        for j in sorted(set(pnl_of) | set(h_book)):
            self._credit_one(b, pnl_of.get(j, []) + ([-h_book[j]] if j in h_book else []))
        # everyone else: realised PnL then haircut, wave by wave
        nb = ~is_b
        if not has_repeats(rows, self.acc.n):  # one wave each: its PnL, then its haircut
            first = np.full(rows.size, -0.0)  # -0.0: no entry (see book_turns)
            first[ci] = realised
            first = first[nb]
            book_turns(self.acc.cash, self.acc.gains, rows[nb], [first, -h[nb]])
        else:
            order = stable_argsort(np.concatenate([2 * seg[ci], 2 * seg[nb] + 1]))
            self._ledger_in_order(
                np.concatenate([r_c, rows[nb]])[order], np.concatenate([realised, -h[nb]])[order]
            )
        self.acc.flags[rows] |= ADLED
        self._log_fills(r_c, m_c, dq, price[ci], realised, "adl_close")
        self.log.adl.append(
            step=self.step_no,
            wave=first_wave + seg,
            market=market,
            account=rows,
            lots=lots,
            price=price,
            mark=self.marks[market],
            haircut=h,
            capacity=wave_rows["capacity"][touched],
            base=base_all[touched],
            equity=wave_rows["equity"][touched],
            from_gains=_concat([a.from_gains for a in allocs])[touched],
            from_principal=_concat([a.from_principal for a in allocs])[touched],
        )

    def _execute_adl(
        self, k: int, snap: Snapshot, alloc, wave: int, base: np.ndarray | None = None
    ) -> None:
        """Close the allocated lots at the mark against the book and debit the haircuts.

        When the book itself is ADL'd, its closed lots would be matched against its own
        inventory (the liquidated lots it absorbed), so its position stays and only the
        haircut is debited.
        """
        touched = np.flatnonzero((alloc.haircut > 0) | (alloc.lots > 0))
        if touched.size == 0:
            return
        rows = snap.account[touched]
        lots = alloc.lots[touched]
        closing = (lots > 0) & (rows != self.book)
        realised = np.zeros(rows.size)
        if closing.any():
            r = rows[closing]
            dq = -snap.side[touched][closing].astype(np.int64) * lots[closing]
            px = np.full(r.size, self.marks[k])
            realised[closing] = self._fill(
                r, k, dq, px, "adl_close", logged_price=alloc.price[touched][closing]
            )
        h = alloc.haircut[touched]
        self.acc.cash[rows] -= h
        book_gain(self.acc.gains, rows, -h)
        self.acc.flags[rows] |= ADLED
        self.log.adl.append(
            step=self.step_no,
            wave=wave,
            market=k,
            account=rows,
            lots=lots,
            price=alloc.price[touched],
            mark=self.marks[k],
            haircut=h,
            capacity=snap.capacity[touched],
            base=(
                self.eligibility.base(
                    upnl=snap.upnl[touched],
                    gains_total=snap.gains[touched],
                    equity=snap.equity[touched],
                    maintenance=snap.maintenance[touched],
                )
                if base is None
                else base[touched]
            ),
            equity=snap.equity[touched],
            from_gains=alloc.from_gains[touched],
            from_principal=alloc.from_principal[touched],
        )
