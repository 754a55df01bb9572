"""The oct10 replay per market: each coin on its own lot grid, each coin's share of the budget.

The pooled replay (:func:`experiments.studies.oct10.waves.replay`) puts a wave's winners in one
market of one-dollar lots, so lot rounding costs at most a dollar per winner: contract pro-rata
then lands within dollars of the budget (+$51 over the event) with a largest haircut of 6 %,
where the published contract pro-rata (per coin, integer contracts) fell $3.02M short with a
largest haircut of 73.6 % of equity.  The published files carry, per wave and coin, the
quantity ADL closed and the gap between mark and execution per contract
(``two_pass_wave_coin_gap_per_contract_h0.csv``, real): enough for each coin's lot grid and
its share of the wave's budget, not for who held which coin.

Per wave and seed, :func:`replay_per_market` takes the pooled replay's synthetic winners (the
same draw) and:

* spreads them over the wave's coins, each winner holding one coin, drawn in proportion to the
  coin's share of the wave's gap dollars (synthetic; a coin left without a holder takes one
  from the most held coin);
* gives each holder ``ceil(PnL / gap per contract)`` contracts of its coin: closing its whole
  position at the coin's gap takes its profit, as in the pooled replay, but one contract now
  takes the coin's gap per contract, from $0.0006 to $966 (real);
* asks each policy, coin by coin, for the coin's share of the wave's budget needed,
  ``B x gap_c / sum gap`` (the published split), and adds the haircuts up.

Queue scores see contracts where the pooled replay saw dollars (the snapshot's notional is the
contracts' count), so the queues' orders are stylised here; the integer effects of the pro-rata
rules are the like-for-like comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from experiments.metrics import accounts_touched, max_haircut_equity_fraction
from experiments.studies.oct10.data import Oct10Data, load_coin_grid
from experiments.studies.oct10.population import load_wallet_targets
from experiments.studies.oct10.synth import RatioFit, ReplayConfig, synth_wave, wave_sizes
from market.adl import POLICIES, Snapshot, get_policy
from market.errors import require

#: Published per-coin integer benchmarks set beside the per-market replay (policy -> suffix).
PUBLISHED_INTEGER = {
    "contract_pro_rata": "contract_pr",
    "contract_pro_rata@published": "contract_pr",
    "min_max_ilp": "fixed_point_ilp_integer",
}

#: Spawn key of the coin assignment stream (far from wave ids and the population's key).
COIN_KEY = 2_000_000


def assign_coins(n: int, share: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A coin index per winner, drawn in proportion to ``share``; every coin gets a holder
    when there are at least as many winners as coins (a coin left empty takes one winner
    from the most held coin)."""
    coin = np.minimum(
        np.searchsorted(np.cumsum(share), rng.random(n), side="right"), share.size - 1
    )
    if n >= share.size:
        counts = np.bincount(coin, minlength=share.size)
        for c in np.flatnonzero(counts == 0).tolist():
            donor = int(np.argmax(counts))
            j = int(np.flatnonzero(coin == donor)[0])
            coin[j] = c
            counts[donor] -= 1
            counts[c] += 1
    return coin


def coin_snapshot(
    snap: Snapshot,
    rows: np.ndarray,
    gap_per_contract: float,
    multiple: float | np.ndarray = 1.0,
) -> Snapshot:
    """The winners ``rows`` of ``snap`` holding one coin: ``ceil(multiple x capacity / gap)``
    contracts each (at least one), one contract handing over ``gap_per_contract`` dollars.

    ``multiple`` (one per row, or one for all) is the position's worth at the gap over the
    account's capacity: 1 when the account's profit is all in this position; above 1 when its
    other positions lose (cross margin: a hedged account's profit is far smaller than any of
    its positions), which the capacity then caps."""
    sub = snap.take(rows)
    contracts = np.maximum(np.ceil(multiple * sub.capacity / gap_per_contract - 1e-12), 1.0).astype(
        np.int64
    )
    return Snapshot.build(
        sub.capacity,
        lots=contracts,
        lot_value=np.full(rows.size, gap_per_contract),
        side=sub.side,
        entry=np.full(rows.size, 1.0 + gap_per_contract),
        upnl=sub.upnl,
        cash=sub.cash,
        equity=sub.equity,
        account_upnl=sub.account_upnl,
        leverage=sub.leverage,
        maintenance=sub.maintenance,
        gains=sub.gains,
        account=sub.account,
        group=sub.group,
        mark=1.0,
        prev_mark=1.0,
        bankruptcy_price=1.0,
        lot_size=1.0,
        market=snap.market,
    )


#: The published form of contract pro-rata, replayed beside the registry's rules.
PUBLISHED_FORM = "contract_pro_rata@published"


def published_contract_pro_rata(snap: Snapshot, budget: float) -> np.ndarray:
    """Contract pro-rata as the published benchmark computes it, on one coin: the contracts
    the budget needs (``budget / lot value``) are closed pro rata to contracts held, each
    holder's share rounded up and at most its position; each holder's loss (closed contracts
    x lot value) is then capped at its capacity, and what a capped holder cannot give is not
    asked of anyone else.  Returns the dollars taken per row."""
    if snap.n == 0 or budget <= 0:
        return np.zeros(snap.n)
    v = float(snap.lot_value[0])
    held = snap.lots.astype(np.float64)
    need = budget / v
    closed = np.minimum(np.ceil(need * held / held.sum() - 1e-9), held)
    return np.minimum(closed * v, snap.capacity)


def per_market_policies() -> list[str]:
    """Every registered policy that runs at scale (``min_max_ilp`` is exact on small
    instances only; its published integer figure is set beside the others)."""
    return [name for name, cls in POLICIES.items() if not cls.exact_small_only]


def replay_per_market(
    data: Oct10Data,
    seeds: int = 3,
    cfg: ReplayConfig | None = None,
    policies: list[str] | None = None,
    grid: pd.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
    spread: float = 0.0,
) -> pd.DataFrame:
    """Every policy on every wave, coin by coin (see the module docstring), seeds 1..``seeds``.

    Returns one row per (wave, seed, policy): ``budget`` (B needed, real), ``raised``,
    ``overshoot`` (raised - budget), ``max_pct_equity`` (largest haircut over equity),
    ``touched``, ``coins`` (coins with a positive gap in the wave) and ``rounding_loss`` (the
    budget the coins' capacities could not give on their grids: sum over coins of
    ``max(B_c - raised_c, 0)``).  ``spread``: positions are worth ``exp(spread z - spread^2
    / 2)`` times their account's profit (z standard normal per winner, mean multiple 1; 0: all
    exactly their profit), see :func:`coin_snapshot`.
    """
    require(isinstance(seeds, int) and seeds >= 1, "--seeds", "an integer >= 1", seeds)
    cfg = cfg or ReplayConfig()
    grid = load_coin_grid() if grid is None else grid
    names = policies or [*per_market_policies(), PUBLISHED_FORM]
    objs = {name: get_policy(name) for name in names if name != PUBLISHED_FORM}
    fills = cfg.fills_total or load_wallet_targets().fills
    q = data.ratio_quantiles
    fit = RatioFit.from_quantiles(q["median"], q["p10"], q["p90"])
    rows: list[dict[str, Any]] = []
    steps, done = seeds * len(data.waves), 0
    for seed in range(1, seeds + 1):
        members = wave_sizes(data.waves, seed, cfg, fills)
        for i, wave in data.waves.iterrows():
            wid = int(wave["wave"])
            size = members[i]
            snap = synth_wave(wave, seed, fit, size.size, cfg, sizes=size).snapshot
            coins = grid[grid["wave"] == wid]
            b = float(wave["budget_needed_usd"])
            share = coins["gap_usd"].to_numpy() / coins["gap_usd"].sum()
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(wid, COIN_KEY)))
            coin = assign_coins(snap.n, share, rng)
            z = rng.standard_normal(snap.n)
            mult = np.exp(spread * z - spread**2 / 2) if spread > 0 else np.ones(snap.n)
            parts = [
                (np.flatnonzero(coin == c), float(g), b * float(share[c]))
                for c, g in enumerate(coins["gap_per_contract"].to_numpy())
            ]
            parts = [(r, g, bc) for r, g, bc in parts if r.size]
            snaps = [(r, coin_snapshot(snap, r, g, mult[r]), bc) for r, g, bc in parts]
            for name in names:
                h = np.zeros(snap.n)
                short = 0.0
                for r, cs, bc in snaps:
                    if name == PUBLISHED_FORM:
                        taken = published_contract_pro_rata(cs, bc)
                    else:
                        taken = objs[name](cs, min(bc, float(cs.capacity.sum()))).haircut
                    h[r] += taken
                    short += max(bc - float(taken.sum()), 0.0)
                raised = float(h.sum())
                rows.append(
                    {
                        "wave": wid,
                        "seed": seed,
                        "policy": name,
                        "budget": b,
                        "raised": raised,
                        "overshoot": raised - b,
                        "max_pct_equity": max_haircut_equity_fraction(h, snap.equity),
                        "touched": float(accounts_touched(h)),
                        "coins": len(coins),
                        "rounding_loss": short,
                        "spread": spread,
                    }
                )
            done += 1
            if progress is not None:
                progress(done, steps)
    return pd.DataFrame(rows)


def per_market_totals(runs: pd.DataFrame, data: Oct10Data, pooled: pd.DataFrame | None = None):
    """Per policy: overshoot summed over waves and largest haircut over the event, mean and
    range over seeds; the pooled replay's figures (when given) and the published integer
    benchmarks beside them (real, where published)."""
    per_seed = runs.groupby(["policy", "seed"], sort=False).agg(
        overshoot=("overshoot", "sum"), max_pct=("max_pct_equity", "max")
    )
    out = per_seed.groupby("policy", sort=False).agg(
        overshoot=("overshoot", "mean"),
        overshoot_lo=("overshoot", "min"),
        overshoot_hi=("overshoot", "max"),
        max_pct=("max_pct", "mean"),
        seeds=("overshoot", "size"),
    )
    if pooled is not None and not pooled.empty:
        ps = pooled.groupby(["policy", "seed"], sort=False).agg(
            overshoot=("overshoot", "sum"), max_pct=("max_pct_equity", "max")
        )
        pm = ps.groupby("policy", sort=False).mean()
        out["pooled_overshoot"] = pm["overshoot"].reindex(out.index)
        out["pooled_max_pct"] = pm["max_pct"].reindex(out.index)
    pub = data.policies
    out["published_overshoot"] = [
        float(pub[f"overshoot_{PUBLISHED_INTEGER[p]}"].sum()) if p in PUBLISHED_INTEGER else np.nan
        for p in out.index
    ]
    out["published_max_pct"] = [
        float(pub[f"max_pct_{PUBLISHED_INTEGER[p]}"].max()) if p in PUBLISHED_INTEGER else np.nan
        for p in out.index
    ]
    return out.reset_index()


def spread_table(
    data: Oct10Data,
    seeds: int,
    cfg: ReplayConfig | None = None,
    spreads: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0),
    policies: tuple[str, ...] = (PUBLISHED_FORM, "contract_pro_rata"),
) -> pd.DataFrame:
    """Overshoot and largest haircut per policy as positions' worth spreads around their
    account's profit (``spread``, see :func:`replay_per_market`; mean over seeds): how far
    the account-wide cap alone moves the integer results."""
    out = []
    for sp in spreads:
        runs = replay_per_market(data, seeds, cfg, list(policies), spread=sp)
        tot = per_market_totals(runs, data)
        tot.insert(0, "spread", sp)
        out.append(tot)
    return pd.concat(out, ignore_index=True)


def per_market_lines(totals: pd.DataFrame, spreads: pd.DataFrame | None) -> list[str]:
    """The report's per-market section (markdown lines)."""

    def usd(x: float) -> str:
        return "-" if not np.isfinite(x) else f"${x:,.0f}"

    def pct(x: float) -> str:
        return "-" if not np.isfinite(x) else f"{100 * x:.1f} %"

    seeds = int(totals["seeds"].max()) if len(totals) else 0
    lines = [
        "## 3c. Per market: each coin on its own lot grid",
        "",
        "The pooled replay above puts each wave's winners in one market of $1 lots. Here the "
        "same synthetic winners are spread over the wave's coins (in proportion to each coin's "
        "gap dollars), each holds `ceil(PnL / gap per contract)` contracts of its coin (real "
        "gaps: $0.0006 to $966 a contract) and each coin is asked for its published share of B "
        f"needed (mean over {seeds} seeds; range in brackets; synthetic).",
        "",
        "| policy | overshoot, per market | largest haircut, per market | overshoot, pooled | "
        "largest, pooled | published overshoot | published largest |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in totals.iterrows():
        pooled_o = r.get("pooled_overshoot", np.nan)
        pooled_m = r.get("pooled_max_pct", np.nan)
        lines.append(
            f"| {r['policy']} | {usd(r['overshoot'])} [{usd(r['overshoot_lo'])}, "
            f"{usd(r['overshoot_hi'])}] | {pct(r['max_pct'])} | {usd(pooled_o)} | "
            f"{pct(pooled_m)} | {usd(r['published_overshoot'])} | {pct(r['published_max_pct'])} |"
        )
    lines += [
        "",
        "Coarse grids move the largest haircut from the pooled few per cent towards the "
        "published integer 73.6 %: one contract of a large coin can be most of a small winner's "
        "profit, and a coin whose few holders cannot cover its share gives all they have. The "
        "registry's `contract_pro_rata` water-fills: what a capped holder cannot give is asked "
        "of the other holders, so each coin's share is met wherever its holders can meet it "
        "(the small shortfall is coins whose holders cannot). The published benchmark "
        "(`contract_pro_rata@published`) does not re-route: it rounds each holder's contracts "
        "up (on coarse grids an overshoot) and loses what a capped holder cannot give. Its "
        "$3.02M shortfall needs accounts whose positions are worth far more at the gap than "
        "their account-wide profit (hedged accounts: under cross margin the cap is the "
        "account's profit, not the position's). The files hold no positions per account, so "
        "the table spreads each position's worth around its account's profit (log-normal, mean "
        "1, `spread` its sigma; synthetic):",
        "",
    ]
    if spreads is not None and len(spreads):
        lines += [
            "| spread | policy | overshoot | largest haircut |",
            "|---|---|---|---|",
            *[
                f"| {r['spread']:g} | {r['policy']} | {usd(r['overshoot'])} | {pct(r['max_pct'])} |"
                for _, r in spreads.iterrows()
            ],
            "",
        ]
    return lines


__all__ = [
    "COIN_KEY",
    "PUBLISHED_FORM",
    "PUBLISHED_INTEGER",
    "assign_coins",
    "coin_snapshot",
    "per_market_lines",
    "per_market_policies",
    "per_market_totals",
    "published_contract_pro_rata",
    "replay_per_market",
    "spread_table",
]
