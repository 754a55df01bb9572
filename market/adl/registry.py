"""The registry of built-in ADL policies: ``POLICIES`` and :func:`get_policy`."""

from __future__ import annotations

from typing import Any

from market.adl.base import ADLPolicy
from market.adl.layered import Hybrid, Seniority, use_registry
from market.adl.minimax import MinimaxLeverage
from market.adl.minmax_ilp import MinMaxILP
from market.adl.prorata import CappedProRata, ContractProRata, ProRata, RiskAwareProRata
from market.adl.queues import (
    BinanceQueue,
    BitmexQueue,
    DriftSocialLoss,
    DydxQueue,
    HyperliquidQueue,
)
from market.errors import InputError

#: Registry name -> policy class, in the order ``adlgame policies`` lists them.
POLICIES: dict[str, type[ADLPolicy]] = {
    cls.name: cls
    for cls in (
        HyperliquidQueue,
        BitmexQueue,
        BinanceQueue,
        DydxQueue,
        DriftSocialLoss,
        ProRata,
        ContractProRata,
        CappedProRata,
        RiskAwareProRata,
        MinimaxLeverage,
        MinMaxILP,
        Seniority,
        Hybrid,
    )
}


def get_policy(name: str | ADLPolicy, **params: Any) -> ADLPolicy:
    """A policy by registry name with its parameters (an instance is returned as it is).

    Raises:
        InputError: for an unknown name (listing the known ones) or an unknown parameter.
    """
    if isinstance(name, ADLPolicy):
        return name.set_params(**params) if params else name
    if name not in POLICIES:
        raise InputError("policy", f"one of {', '.join(POLICIES)}", name)
    cls = POLICIES[name]
    valid = cls._param_names()
    bad = sorted(set(params) - set(valid))
    if bad:
        raise InputError(
            f"{name}.{bad[0]}", f"one of {', '.join(valid) or '(no parameters)'}", bad[0]
        )
    return cls(**params)


use_registry(get_policy)  # Hybrid and Seniority name their inner rules


def describe_policies() -> list[dict[str, Any]]:
    """One record per built-in policy: name, description, claimed properties, source, params."""
    rows = []
    for name, cls in POLICIES.items():
        pol = cls()
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "properties": sorted(pol.properties),
                "price_rule": pol.price_rule,
                "sides": pol.sides,
                "exact_small_only": bool(pol.exact_small_only),
                "source": cls.source,
                "params": {
                    k: (v if isinstance(v, int | float | str | bool | None) else repr(v))
                    for k, v in pol.get_params(deep=False).items()
                },
            }
        )
    return rows
