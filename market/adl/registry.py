"""The registry of built-in ADL policies: ``POLICIES`` and :func:`get_policy`."""

from __future__ import annotations

import ast
from typing import Any

from market.adl.base import ADLPolicy
from market.adl.layered import Hybrid, Seniority, use_registry
from market.adl.minimax import MinimaxLeverage
from market.adl.minmax_ilp import MinMaxILP
from market.adl.plugins import entry_point_policies, is_plugin_spec, load_plugin
from market.adl.prorata import CappedProRata, ContractProRata, ProRata, RiskAwareProRata
from market.adl.queues import (
    BinanceQueue,
    BitmexQueue,
    DriftSocialLoss,
    DydxQueue,
    HyperliquidQueue,
)
from market.adl.venues import (
    AevoQueue,
    BybitQueue,
    DeribitSessionLoss,
    GmxProfitCap,
    LighterQueue,
    OkxQueue,
    ParadexWithdrawalLoss,
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
        BybitQueue,
        OkxQueue,
        AevoQueue,
        LighterQueue,
        GmxProfitCap,
        ParadexWithdrawalLoss,
        DeribitSessionLoss,
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


def split_policy(text: str) -> tuple[str, dict[str, Any]]:
    """A policy written with its parameters, ``name(param=value, ...)``, as ``(name, params)``
    (values are Python literals: numbers, strings, booleans); a plain name gives no params.

    Raises:
        InputError: for a malformed parameter list.
    """
    if not isinstance(text, str) or "(" not in text or not text.rstrip().endswith(")"):
        return text, {}
    name, _, args = text.rstrip()[:-1].partition("(")
    allowed = "name or name(param=value, ...) with literal values"
    try:
        call = ast.parse(f"f({args})", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args
        params = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, AssertionError):
        raise InputError("policy", allowed, text) from None
    if None in params or not name.strip():
        raise InputError("policy", allowed, text)
    return name.strip(), params


def policy_label(name: str, params: dict[str, Any] | None = None) -> str:
    """The text :func:`split_policy` reads back: ``name`` or ``name(k=v, ...)``, keys sorted."""
    if not params:
        return name
    return f"{name}({', '.join(f'{k}={params[k]!r}' for k in sorted(params))})"


def policy_class(name: str) -> type[ADLPolicy]:
    """The class behind a policy name: a built-in, ``FILE.py:Class``, ``module:Class`` or an
    installed entry point (:mod:`market.adl.plugins`), optionally written with parameters
    (``name(param=value, ...)``, :func:`split_policy`).

    Raises:
        InputError: for a name that is none of these (listing the built-ins).
    """
    name = split_policy(name)[0]
    if isinstance(name, str) and name in POLICIES:
        return POLICIES[name]
    if is_plugin_spec(name):
        return load_plugin(name)
    installed = entry_point_policies()
    if isinstance(name, str) and name in installed:
        return load_plugin(installed[name])
    known = ", ".join([*POLICIES, *installed])
    raise InputError("policy", f"one of {known}, or FILE.py:Class, or module:Class", name)


def get_policy(name: str | ADLPolicy, **params: Any) -> ADLPolicy:
    """A policy by name with its parameters (an instance is returned as it is).

    ``name`` is a built-in registry name, ``FILE.py:Class``, ``module:Class`` or an installed
    entry point (:func:`policy_class`), optionally with parameters, ``name(param=value, ...)``
    (``params`` given here override them).

    Raises:
        InputError: for an unknown name (listing the known ones) or an unknown parameter.
    """
    if isinstance(name, ADLPolicy):
        return name.set_params(**params) if params else name
    name, written = split_policy(name)
    params = {**written, **params}
    cls = policy_class(name)
    valid = cls._param_names()
    bad = sorted(set(params) - set(valid))
    if bad:
        raise InputError(
            f"{name}.{bad[0]}", f"one of {', '.join(valid) or '(no parameters)'}", bad[0]
        )
    return cls(**params)


use_registry(get_policy)  # Hybrid and Seniority name their inner rules


def describe_policies() -> list[dict[str, Any]]:
    """One record per policy, the built-ins then installed entry points: name, description,
    claimed properties, source, params and ``origin`` (``built-in`` or the entry point)."""
    rows = []
    named: list[tuple[str, type[ADLPolicy], str]] = [
        (n, c, "built-in") for n, c in POLICIES.items()
    ]
    for n, value in entry_point_policies().items():
        try:
            named.append((n, load_plugin(value), f"entry point {value}"))
        except InputError:
            continue  # a broken installed plugin is left out of the listing
    for name, cls, origin in named:
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
                "origin": origin,
                "params": {
                    k: (v if isinstance(v, int | float | str | bool | None) else repr(v))
                    for k, v in pol.get_params(deep=False).items()
                },
            }
        )
    return rows
