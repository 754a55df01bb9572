"""Venues as scenarios: each production venue's documented mechanics on the default world.

``load_scenario("venue:bybit")`` (``adlgame run --scenario venue:bybit``) is the default
scenario with the venue's ADL rule, its backstop's kind and its base-tier fees, and nothing
else changed: the traders, prices and crises are the default scenario's, so venues compare on
the same crises (``adlgame experiment compare --venues``).

What each preset sets, and from where:

* ``adl.policy`` -- the venue's rule (:mod:`market.adl.queues`, :mod:`market.adl.venues`),
  which carries its ADL price and, for Paradex and Deribit, the shortfall's bearer.
* ``backstop.kind`` -- ``vault`` where a liquidator vault takes positions over (Hyperliquid's
  HLP, Lighter's LLP, GMX's pool), ``fund`` where an insurance fund pays (the venue notes).
* ``backstop.max_drawdown`` -- Bybit's 2025 drawdown trigger (ADL once the pool is 30 % below
  its 8-hour maximum, the docs' example constant) and OKX's threshold (30 % below its 8-hour
  average, from an older text: UNVERIFIED), both measured here from the crisis start.
* ``market.taker_fee`` / ``maker_fee`` -- the base-tier fees the venues publicised in 2025,
  rounded; they change often, so :data:`FEE_NOTE` says to check them before relying on them.

Not set (kept at the default scenario's, and the same for every venue): fund size, margin
rates, lot sizes, depth.
"""

from __future__ import annotations

from typing import Any

from market.errors import require

__all__ = ["FEE_NOTE", "VENUES", "venue_overrides"]

#: How the fee figures should be read.
FEE_NOTE = (
    "base-tier taker/maker fees as the venues publicised them in 2025, rounded; they change "
    "often: check the venue's fee page before relying on them"
)

#: Venue -> (scenario overrides, one line on what is modelled).
VENUES: dict[str, tuple[dict[str, Any], str]] = {
    "hyperliquid": (
        {
            "adl.policy": "hyperliquid",
            "backstop.kind": "vault",
            "market.taker_fee": 0.00045,
            "market.maker_fee": 0.00015,
        },
        "queue at the previous mark; HLP liquidator vault",
    ),
    "binance": (
        {
            "adl.policy": "binance",
            "backstop.kind": "fund",
            "market.taker_fee": 0.0005,
            "market.maker_fee": 0.0002,
        },
        "PNL% x EffLev queue at the bankruptcy price; insurance fund",
    ),
    "bybit": (
        {
            "adl.policy": "bybit",
            "backstop.kind": "fund",
            "backstop.max_drawdown": 0.3,
            "market.taker_fee": 0.00055,
            "market.maker_fee": 0.0002,
        },
        "profit x leverage queue (UNVERIFIED form) at the bankruptcy price; ADL once the "
        "pool is 30 % below its level at the crisis start (the 2025 drawdown trigger)",
    ),
    "okx": (
        {
            "adl.policy": "okx",
            "backstop.kind": "fund",
            "backstop.max_drawdown": 0.3,
            "market.taker_fee": 0.0005,
            "market.maker_fee": 0.0002,
        },
        "PnL% x leverage queue at the bankruptcy price; ADL once the fund is 30 % below its "
        "level at the crisis start (its threshold trigger, an older text's figure)",
    ),
    "bitmex": (
        {
            "adl.policy": "bitmex",
            "backstop.kind": "fund",
            "market.taker_fee": 0.00075,
            "market.maker_fee": 0.0002,
        },
        "PNL% x EffLev queue at the bankruptcy price; insurance fund",
    ),
    "dydx": (
        {
            "adl.policy": "dydx",
            "backstop.kind": "fund",
            "market.taker_fee": 0.0005,
            "market.maker_fee": 0.0001,
        },
        "unranked walk at the bankruptcy price; insurance fund",
    ),
    "drift": (
        {
            "adl.policy": "drift",
            "backstop.kind": "fund",
            "market.taker_fee": 0.001,
            "market.maker_fee": -0.000025,
        },
        "socialised per base unit over every open position; insurance fund",
    ),
    "aevo": (
        {
            "adl.policy": "aevo",
            "backstop.kind": "fund",
            "market.taker_fee": 0.0008,
            "market.maker_fee": 0.0005,
        },
        "PNL% x margin ratio queue near the mark; insurance fund",
    ),
    "lighter": (
        {
            "adl.policy": "lighter",
            "backstop.kind": "vault",
            "market.taker_fee": 0.0,
            "market.maker_fee": 0.0,
        },
        "PnL-then-leverage queue (UNVERIFIED) after the LLP; zero fees for standard accounts",
    ),
    "gmx": (
        {
            "adl.policy": "gmx",
            "backstop.kind": "vault",
            "market.taker_fee": 0.0006,
            "market.maker_fee": 0.0004,
        },
        "profit cap at the oracle price; the pool is the counterparty (vault)",
    ),
    "paradex": (
        {
            "adl.policy": "paradex",
            "backstop.kind": "fund",
            "market.taker_fee": 0.0,
            "market.maker_fee": 0.0,
        },
        "no ADL; the loss is cut from withdrawals; zero retail fees",
    ),
    "deribit": (
        {
            "adl.policy": "deribit",
            "backstop.kind": "fund",
            "market.taker_fee": 0.0005,
            "market.maker_fee": 0.0,
        },
        "no ranked ADL; the session's losses socialised among its winners at settlement",
    ),
}


def venue_overrides(name: str) -> dict[str, Any]:
    """The scenario overrides of venue ``name`` (with ``name = "venue:<name>"``).

    Raises:
        InputError: for an unknown venue, listing them.
    """
    require(name in VENUES, "venue", f"one of {', '.join(VENUES)}", name)
    return {"name": f"venue:{name}", **VENUES[name][0]}
