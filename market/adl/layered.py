"""Layered ADL rules: the seniority ledger and queue / pro-rata hybrids.

Both rules wrap other policies.  :class:`Seniority` splits each row's capacity into layers of
money ordered from most junior (recent gains) to most senior (principal) and runs an inner rule
inside one layer at a time, so a senior layer is touched only when every junior layer together
cannot cover the budget (Beyond Queues, thogiti, Jan 2026, §16-17).  :class:`Hybrid` mixes a
ranking queue with wealth pro-rata, either by quantile buckets of the queue's score or as a
convex blend of the two allocations (Chitra, arXiv 2512.01112 v2, appendix: ``pi_hyb``).

Inner policies may be given as registry names; the registry hands in its lookup when it loads
(:func:`use_registry`), so this module never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from market.adl.base import ADLPolicy, Allocation, PerInstance, Snapshot, execute
from market.adl.ordering import order_prefix, rank_rows
from market.errors import require

#: Properties a seniority ledger passes through from its inner rule when the inner rule has them.
_SENIORITY_INHERITED = frozenset({"relabeling", "sybil", "scale"})

#: Modes of :class:`Hybrid`.
HYBRID_MODES = ("bucketed", "blend")


def resolve_policy(spec: str | ADLPolicy, field: str) -> ADLPolicy:
    """The policy named by ``spec``: an :class:`ADLPolicy` as is, or a registry name.

    Raises:
        InputError: if ``spec`` is neither a non-empty string nor an :class:`ADLPolicy`
            (unknown names are rejected by the registry).
    """
    if isinstance(spec, ADLPolicy):
        return spec
    require(isinstance(spec, str) and bool(spec), field, "a registry name or an ADLPolicy", spec)
    require(_LOOKUP, field, "an ADLPolicy (no registry is loaded to resolve names)", spec)
    return _LOOKUP[0](spec)


#: The registry's name lookup, handed in by :mod:`market.adl.registry` when it loads (it
#: imports this module, so this module cannot import it).
_LOOKUP: list[Callable[[str], ADLPolicy]] = []


def use_registry(lookup: Callable[[str], ADLPolicy]) -> None:
    """Resolve policy names with ``lookup`` (:func:`market.adl.registry.get_policy`)."""
    _LOOKUP[:] = [lookup]


def _check_policy_spec(spec: Any, field: str) -> None:
    require(
        isinstance(spec, ADLPolicy) or (isinstance(spec, str) and bool(spec)),
        field,
        "a registry name or an ADLPolicy",
        spec if isinstance(spec, str) else type(spec).__name__,
    )


def _round_up_to_lots(snap: Snapshot, amount: np.ndarray) -> np.ndarray:
    """``amount`` rounded up to whole lots of ``lot_value`` per row, capped by capacity."""
    v = np.asarray(snap.lot_value, dtype=np.float64)
    pos = v > 0
    safe = np.where(pos, v, 1.0)
    up = np.where(pos, np.ceil(amount / safe - 1e-9) * safe, amount)
    return np.minimum(np.maximum(up, amount), snap.capacity)


def _lot_grid_total(snap: Snapshot, room: np.ndarray) -> float:
    """Dollars whole lots can raise within ``room`` (``room`` itself when lots are not used)."""
    v = np.asarray(snap.lot_value, dtype=np.float64)
    pos = v > 0
    lots = np.floor(room / np.where(pos, v, 1.0) + 1e-9)
    lots = np.where(pos, np.minimum(lots, snap.lots), 0.0)
    return float((lots * v).sum())


def _pro_rata(capacity: np.ndarray, budget: float) -> np.ndarray:
    """Wealth pro-rata: ``h = c * min(B, sum c) / sum c``."""
    total = float(capacity.sum())
    if total <= 0.0:
        return np.zeros_like(capacity)
    if budget >= total:
        return capacity.copy()
    return capacity * (budget / total)


class Seniority(ADLPolicy):
    """Seniority ledger: exhaust junior layers of money before senior ones.

    Layers, most junior first.  With ``ladder=True``: recent gains plus positive unrealised PnL
    (``gains[:, 0] + max(upnl, 0)``), older gains (``gains[:, 1]``), settled gains
    (``gains[:, 2]``), then principal.  With ``ladder=False``: all gains plus positive
    unrealised PnL, then principal.  Principal is whatever capacity is left after the gains
    layers.  Each layer's cap is intersected with the capacity still left; inside a layer the
    inner rule raises ``min(B_left, sum(layer cap))`` through its ``allocate_wealth`` on
    ``snap.with_capacity(layer cap)``, and the loop stops when the budget is met.  Principal
    is touched only when every gains layer was exhausted: if the inner rule's own caps (e.g.
    capped pro-rata's ``max_fraction``) hold part of a gains layer back, what it leaves unraised
    goes to the next gains layer and then stays a residual (reported by ``execute``), never a
    charge on principal.

    Because realised gains enter the recent layer next to positive unrealised PnL, closing and
    reopening a position (which moves unrealised PnL into ``gains[:, 0]``) does not change what
    the ledger takes.

    Parameters:
        inner: the rule used inside each layer, a registry name or an :class:`ADLPolicy`.
        ladder: split gains into recent / older / settled layers (True) or keep one layer.
        close_lots: False (default): the ledger is clawed back in cash (price rule
            ``"none"``), so realised gains pay as well as open profit, whatever the position
            left to close; True: lots are force-closed at the inner rule's price, so no row
            gives more than closing its position there raises (``lots * lot_value``), which
            in a crash usually binds before the ledger does and makes the rule play close to
            its inner rule.

    Claims ``principal_protect``, plus ``relabeling``, ``sybil`` and ``scale`` when the inner
    rule claims them (per instance: read ``policy.properties``).  The sides follow the inner
    rule; the price rule too when ``close_lots`` is set.
    """

    name = "seniority"
    description = (
        "exhaust gains layers (recent, older, settled) before principal; inner rule per layer"
    )
    source = "Beyond Queues (thogiti, Jan 2026) §16-17"
    #: the ledger is defined on realised gains plus positive unrealised PnL
    default_cap = "gains"
    properties = PerInstance(  # type: ignore[assignment]
        frozenset({"principal_protect"}),
        lambda self: (
            frozenset({"principal_protect"})
            | (self.inner_policy().properties & _SENIORITY_INHERITED)
        ),
    )
    price_rule = PerInstance(  # type: ignore[assignment]
        "none", lambda self: self.inner_policy().price_rule if self.close_lots else "none"
    )
    sides = PerInstance("opposite", lambda self: self.inner_policy().sides)  # type: ignore[assignment]

    def __init__(
        self, inner: str | ADLPolicy = "pro_rata", ladder: bool = True, close_lots: bool = False
    ) -> None:
        self.inner = inner
        self.ladder = ladder
        self.close_lots = close_lots
        self._check()

    def _check(self) -> None:
        _check_policy_spec(self.inner, "seniority.inner")
        require(
            isinstance(self.ladder, bool | np.bool_),
            "seniority.ladder",
            "True or False",
            self.ladder,
        )
        require(
            isinstance(self.close_lots, bool | np.bool_),
            "seniority.close_lots",
            "True or False",
            self.close_lots,
        )

    def inner_policy(self) -> ADLPolicy:
        """The inner rule as a policy object (a registry name is looked up)."""
        return resolve_policy(self.inner, "seniority.inner")

    def layers(self, snap: Snapshot) -> np.ndarray:
        """Gains layers before intersection with capacity, shape ``(k, n)``, most junior first.

        ``k = 3`` with the ladder, 1 without.  Negative ledger entries count as zero.
        Principal (the capacity left after these layers) is not included.
        """
        gains = np.maximum(np.asarray(snap.gains, dtype=np.float64), 0.0)
        positive_pnl = np.maximum(np.asarray(snap.upnl, dtype=np.float64), 0.0)
        if self.ladder:
            return np.stack([gains[:, 0] + positive_pnl, gains[:, 1], gains[:, 2]])
        return (gains.sum(axis=1) + positive_pnl)[None, :]

    def gains_available(self, snap: Snapshot) -> np.ndarray:
        """What the gains layers together can give per row: ``min(capacity, sum(layers))``."""
        return np.minimum(np.asarray(snap.capacity, dtype=np.float64), self.layers(snap).sum(0))

    def _layered(self, snap: Snapshot, budget: float) -> tuple[np.ndarray, bool]:
        """The wealth allocation and whether every gains layer was exhausted."""
        self._check()
        inner = self.inner_policy()
        cap = np.asarray(snap.capacity, dtype=np.float64)
        target = min(float(budget), float(cap.sum()))
        tol = 1e-9 * max(1.0, target)
        taken = np.zeros(snap.n)
        left = cap.copy()
        need = target
        exhausted = True  # every gains layer so far gave all it holds
        # A loop over at most four layers (not over accounts): each step is vectorised.
        for layer in [*self.layers(snap), None]:
            if need <= tol or (layer is None and not exhausted):
                break
            layer_cap = left.copy() if layer is None else np.minimum(layer, left)
            avail = float(layer_cap.sum())
            if avail <= 0.0:
                continue
            ask = min(need, avail)
            x = np.asarray(
                inner.allocate_wealth(snap.with_capacity(layer_cap), ask), dtype=np.float64
            )
            x = np.clip(x, 0.0, layer_cap)
            got = float(x.sum())
            if layer is not None and got < avail - tol:
                exhausted = False  # the layer still holds money (budget met, or inner caps)
            taken += x
            left = np.maximum(left - x, 0.0)
            need -= got
        return np.minimum(taken, cap), exhausted

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Raise the budget layer by layer, junior first, with the inner rule in each layer."""
        return self._layered(snap, budget)[0]

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Wealth allocation, then whole lots placed so that rounding respects seniority.

        While the gains layers are not exhausted, :func:`execute` may only place lots within
        each row's gains rounded up to a whole lot (principal is touched by less than one lot
        per row, for granularity alone); when the inner rule held money back by its own caps,
        only within its allocation rounded up to a whole lot, so the shortfall stays a
        residual.  Once principal is in play, or when whole lots within the gains cannot reach
        the budget, lots may go anywhere within capacity.
        """
        h, exhausted = self._layered(snap, budget)
        room_snap = snap
        if not exhausted:
            target = min(float(budget), float(snap.capacity.sum()))
            held_back = float(h.sum()) < target - 1e-9 * max(1.0, target)
            room = np.maximum(
                _round_up_to_lots(snap, h if held_back else self.gains_available(snap)), h
            )
            if held_back or _lot_grid_total(snap, room) >= target - 1e-9 * max(1.0, target):
                room_snap = snap.with_capacity(room)
        return execute(room_snap, budget, h, price_rule=self.price_rule, order=self.priority(snap))

    def priority(self, snap: Snapshot) -> np.ndarray | None:
        """The inner rule's rounding order."""
        return self.inner_policy().priority(snap)


class Hybrid(ADLPolicy):
    """Queue / pro-rata hybrids.

    ``mode="bucketed"``: rows with positive capacity are cut into ``n_buckets`` quantile
    buckets of the queue's ``score(snap)`` (ties share a bucket; a nan score ranks lowest).
    The budget is raised from the highest-scoring bucket first, wealth pro-rata to capacity
    inside a bucket, and a bucket is touched only when every higher bucket is exhausted.

    ``mode="blend"``: ``h = queue_weight * h_queue + (1 - queue_weight) * h_pro_rata`` where
    ``h_queue`` is the queue's own ``allocate_wealth`` and ``h_pro_rata = c * B / sum(c)``.
    Both parts are feasible and raise the same amount, so their convex combination is too.
    The default weight 0.2 is the ``pi_hyb`` of 2512.01112 v2 (20% queue, 80% pro-rata).

    Parameters:
        mode: ``"bucketed"`` or ``"blend"``.
        queue: the queue policy, a registry name or an :class:`ADLPolicy` (bucketed mode needs
            a ``score(snap)`` method returning one score per row, higher = first to give).
        n_buckets: number of quantile buckets (bucketed mode).
        queue_weight: weight of the queue allocation in ``[0, 1]`` (blend mode).

    Price rule and sides follow the queue.  Claims ``relabeling`` only when the queue claims
    it; queues are not Sybil resistant, and neither is a hybrid.
    """

    name = "hybrid"
    description = "queue score buckets with pro-rata inside, or a queue / pro-rata blend"
    source = (
        "Chitra, Autodeleveraging: Impossibilities and Optimization, arXiv 2512.01112 v2, appendix"
    )
    properties = PerInstance(  # type: ignore[assignment]
        frozenset(), lambda self: self.queue_policy().properties & frozenset({"relabeling"})
    )
    price_rule = PerInstance(  # type: ignore[assignment]
        "prev_mark", lambda self: self.queue_policy().price_rule
    )
    sides = PerInstance("opposite", lambda self: self.queue_policy().sides)  # type: ignore[assignment]

    def __init__(
        self,
        mode: str = "bucketed",
        queue: str | ADLPolicy = "hyperliquid",
        n_buckets: int = 5,
        queue_weight: float = 0.2,
    ) -> None:
        self.mode = mode
        self.queue = queue
        self.n_buckets = n_buckets
        self.queue_weight = queue_weight
        self._check()

    def _check(self) -> None:
        require(
            self.mode in HYBRID_MODES, "hybrid.mode", f"one of {', '.join(HYBRID_MODES)}", self.mode
        )
        _check_policy_spec(self.queue, "hybrid.queue")
        require(
            isinstance(self.n_buckets, int | np.integer)
            and not isinstance(self.n_buckets, bool)
            and self.n_buckets >= 1,
            "hybrid.n_buckets",
            "an integer >= 1",
            self.n_buckets,
        )
        w = self.queue_weight
        require(
            isinstance(w, int | float | np.number)
            and not isinstance(w, bool)
            and bool(np.isfinite(w))
            and 0.0 <= float(w) <= 1.0,
            "hybrid.queue_weight",
            "a number in [0, 1]",
            w,
        )

    def queue_policy(self) -> ADLPolicy:
        """The queue as a policy object (a registry name is looked up)."""
        return resolve_policy(self.queue, "hybrid.queue")

    def scores(self, snap: Snapshot) -> np.ndarray:
        """The queue's score per row as floats (nan replaced by ``-inf``: ranked last)."""
        queue = self.queue_policy()
        score_fn = getattr(queue, "score", None)
        require(
            callable(score_fn),
            "hybrid.queue",
            "a queue policy with a score(snap) method",
            type(queue).__name__,
        )
        s = np.asarray(score_fn(snap), dtype=np.float64)
        require(
            s.shape == (snap.n,), "hybrid.queue.score", f"an array of shape ({snap.n},)", s.shape
        )
        return np.where(np.isnan(s), -np.inf, s)

    def buckets(self, snap: Snapshot) -> np.ndarray:
        """Quantile bucket per row, ``n_buckets - 1`` = highest scores; -1 for zero capacity.

        With ``m`` rows of positive capacity and ``r`` a row's rank by score (1 = lowest, tied
        rows share the highest rank of their tie), the bucket is ``ceil(r * n_buckets / m) - 1``:
        equal-sized buckets when there are no ties, and ties never split.
        """
        self._check()
        return self._buckets(snap, self.scores(snap))

    def _buckets(self, snap: Snapshot, score: np.ndarray) -> np.ndarray:
        """:meth:`buckets` from the scores already computed.

        Bucket ``>= b`` exactly when at least ``floor(b * m / n_buckets) + 1`` active rows
        score at most the row's score, that is when the row's score reaches the
        ``floor(b * m / n_buckets)``-th smallest active score (0-based): one O(n) partition
        finds those ``n_buckets - 1`` thresholds, a search places every row.
        """
        cap = np.asarray(snap.capacity, dtype=np.float64)
        out = np.full(snap.n, -1, dtype=np.int64)
        active = cap > 0
        m = int(active.sum())
        if m == 0:
            return out
        sa = score[active]
        nb = int(self.n_buckets)
        if nb == 1:
            out[active] = 0
            return out
        thresholds = np.empty(nb - 1)
        part, last = sa, m
        for b in range(nb - 1, 0, -1):  # one k at a time, each on the part below the last
            k = (b * m) // nb  # (numpy's partition is several times slower with a list of k)
            if k == last:  # fewer active rows than buckets: the same threshold again
                thresholds[b - 1] = thresholds[b]
                continue
            part = np.partition(part, k)
            thresholds[b - 1] = part[k]
            part, last = part[:k], k
        out[active] = np.searchsorted(thresholds, sa, side="right")
        return out

    def allocate_wealth(self, snap: Snapshot, budget: float) -> np.ndarray:
        """Bucketed: top bucket first, pro-rata inside; blend: convex mix of queue and pro-rata."""
        self._check()
        return self._wealth(snap, budget, None)

    def _wealth(self, snap: Snapshot, budget: float, score: np.ndarray | None) -> np.ndarray:
        """:meth:`allocate_wealth`, reusing the scores when the caller has them."""
        cap = np.asarray(snap.capacity, dtype=np.float64)
        target = min(float(budget), float(cap.sum()))
        if self.mode == "blend":
            w = float(self.queue_weight)
            h_pr = _pro_rata(cap, target)
            if w == 0.0:
                return h_pr
            h_q = np.asarray(self.queue_policy().allocate_wealth(snap, target), dtype=np.float64)
            require(
                h_q.shape == cap.shape,
                "hybrid.queue.allocate_wealth",
                f"an array of shape {cap.shape}",
                h_q.shape,
            )
            h_q = np.clip(h_q, 0.0, cap)
            return np.minimum(w * h_q + (1.0 - w) * h_pr, cap)
        bucket = self._buckets(snap, self.scores(snap) if score is None else score)
        h = np.zeros(snap.n)
        active = bucket >= 0
        if target <= 0.0 or not active.any():
            return h
        nb = int(self.n_buckets)
        size = np.bincount(bucket[active], weights=cap[active], minlength=nb)
        above = np.cumsum(size[::-1])[::-1] - size  # capacity in strictly higher buckets
        with np.errstate(over="ignore"):  # a subnormal bucket size just saturates to 1
            ratio = (target - above) / np.where(size > 0, size, 1.0)
        frac = np.where(size > 0, np.clip(ratio, 0.0, 1.0), 0.0)
        h[active] = cap[active] * frac[bucket[active]]
        return h

    @staticmethod
    def _tie_order(score: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Argsort of rows tied on the score: by row."""
        return lambda rows: np.lexsort((rows, -score[rows]))

    def priority(self, snap: Snapshot) -> np.ndarray:
        """Rows by descending queue score (row order breaks ties)."""

        score = self.scores(snap)
        return rank_rows(np.arange(snap.n), score, self._tie_order(score))

    def allocate(self, snap: Snapshot, budget: float) -> Allocation:
        """Wealth allocation, then rounding lots in :meth:`priority` order.

        The scores are computed once; :func:`market.adl.base.execute` gets the order as a
        prefix function (:func:`market.adl.ordering.order_prefix`), so only the rows the
        rounding reaches are sorted.
        """

        self._check()
        score = self.scores(snap)
        h = self._wealth(snap, budget, score)
        order = order_prefix(score, self._tie_order(score))
        return execute(snap, budget, h, price_rule=self.price_rule, order=order)
