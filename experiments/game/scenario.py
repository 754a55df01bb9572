"""Scenarios: every parameter of a game run, loaded from TOML and validated on load.

A scenario is a tree of frozen dataclasses with defaults.  Each field carries its allowed
values in its metadata (type, range or choices), so :func:`load_scenario` can reject unknown
keys, wrong types and out-of-range values with one line that names the field and what is
allowed, e.g. ``scenario.crisis.drop_median: must be a number in (0, 0.95) (got 1.2)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from market.errors import InputError


def _num(
    lo: float | None = None,
    hi: float | None = None,
    *,
    integer: bool = False,
    open_lo: bool = False,
    open_hi: bool = False,
) -> dict:
    return {
        "kind": "int" if integer else "float",
        "lo": lo,
        "hi": hi,
        "open_lo": open_lo,
        "open_hi": open_hi,
    }


def _choice(*values: str) -> dict:
    return {"kind": "choice", "values": values}


def f(default: Any, meta: dict, doc: str = "") -> Any:
    """A dataclass field with validation metadata and a one-line description."""
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata={**meta, "doc": doc})
    return field(default=default, metadata={**meta, "doc": doc})


@dataclass(frozen=True)
class RunSpec:
    """Length of the run."""

    crises: int = f(5, _num(1, 1000, integer=True), "number of crises")
    calm_steps: int = f(20, _num(1, 10_000, integer=True), "calm steps before each crisis")
    crisis_steps: int = f(10, _num(2, 1_000, integer=True), "steps each crisis lasts")
    traders: int = f(2000, _num(1, 10_000_000, integer=True), "traders at the start")


@dataclass(frozen=True)
class MarketSection:
    """The markets (alike but for their size) and calm-period price dynamics."""

    markets: int = f(1, _num(1, 400, integer=True), "markets, cross-margined")
    popularity: str = f(
        "uniform",
        _choice("uniform", "zipf", "oct10"),
        "how traders and book depth spread over markets: equally, Zipf (`zipf`), or as the "
        "10 October 2025 coins' sizes (the largest `markets` of its 162)",
    )
    zipf: float = f(1.0, _num(0, 5), "Zipf exponent of market popularity (popularity = zipf)")
    mark: float = f(100.0, _num(0, None, open_lo=True), "starting mark price")
    lot_size: float = f(0.1, _num(0, None, open_lo=True), "base units per lot")
    initial_margin: float = f(0.02, _num(0, 1, open_lo=True), "initial margin rate")
    maintenance_margin: float = f(0.01, _num(0, 1, open_lo=True, open_hi=True), "maintenance rate")
    taker_fee: float = f(0.00045, _num(0, 0.05), "taker fee rate")
    maker_fee: float = f(0.00015, _num(-0.01, 0.05), "maker fee rate (negative: rebate)")
    liquidation_fee: float = f(0.005, _num(0, 0.05), "clearance fee on liquidated notional")
    depth: float = f(5e6, _num(0, None, open_lo=True), "book depth, dollars at 1 % impact")
    impact_exponent: float = f(0.5, _num(0.1, 3), "impact curve exponent")
    stress_thinning: float = f(0.8, _num(0, 1, open_hi=True), "depth lost at full stress")
    calm_vol: float = f(0.004, _num(0, 0.2), "per-step log volatility in calm periods")
    funding_rate: float = f(1.5e-5, _num(-0.01, 0.01), "funding rate per calm step (longs pay)")


@dataclass(frozen=True)
class CrisisSpec:
    """How crises are drawn (all draws come from the run's 'crises' stream, up front)."""

    drop_median: float = f(0.12, _num(0, 0.95, open_lo=True, open_hi=True), "median crash size")
    drop_tail: float = f(3.0, _num(1, 50), "tail index of crash sizes (smaller: heavier)")
    drop_max: float = f(0.6, _num(0, 0.95, open_lo=True), "largest crash size")
    sign: str = f("down", _choice("down", "up", "random"), "direction of the crash")
    correlation: float = f(1.0, _num(0, 1), "cross-market correlation of crash sizes")
    rebound: float = f(0.3, _num(0, 1), "share of the fall recovered by the end of the crisis")
    noise: float = f(0.003, _num(0, 0.2), "per-step log noise during the crisis")


@dataclass(frozen=True)
class BackstopSpec:
    """The backstop: insurance fund or liquidator vault, and its liquidity providers."""

    kind: str = f("fund", _choice("fund", "vault", "none"), "backstop kind")
    capital: float = f(2e5, _num(0), "starting capital, dollars")
    fee_share: float = f(0.2, _num(0, 1), "share of trading fees paid into the fund")
    lp_topup: float = f(0.0, _num(0, 1), "share of the gap to `capital` LPs refill after a crisis")
    max_drawdown: float = f(
        1.0,
        _num(0, 1),
        "share of its balance at the crisis start the fund pays before ADL starts (1: until "
        "empty; Bybit's and OKX's triggers: about 0.3)",
    )


@dataclass(frozen=True)
class AdlSpec:
    """The ADL policy, its severity controller and eligibility."""

    policy: str = f("hyperliquid", {"kind": "str"}, "ADL policy name (adlgame policies)")
    severity: str = f("full", _choice("full", "backoff", "mirror_descent", "mdic"), "severity")
    cap: str = f(
        "auto",
        _choice("auto", "pnl", "gains", "equity_buffer", "equity"),
        "eligibility cap (auto: the policy's own, e.g. gains for seniority)",
    )
    account_fraction: float = f(1.0, _num(0, 1), "per-account fairness cap alpha")
    execution: str = f(
        "auto",
        _choice("auto", "budget", "position"),
        "wave sizing (auto: the policy's own; position for production queues)",
    )
    shortfall: str = f(
        "auto",
        _choice("auto", "written_off", "fund_debt", "venue", "socialised", "withdrawals"),
        "who carries what backstop and ADL leave uncovered (auto: the policy's own, e.g. "
        "socialised for deribit, withdrawals for paradex; else fund_debt)",
    )
    params: dict = f({}, {"kind": "table"}, "policy parameters by name")  # noqa: RUF009


@dataclass(frozen=True)
class MixSpec:
    """Shares of the starting traders by type (passive gets the rest)."""

    whale: float = f(0.03, _num(0, 1), "leveraged whales")
    flipper: float = f(0.04, _num(0, 1), "flippers (close-and-reopen when ranked high)")
    sybil: float = f(0.02, _num(0, 1), "Sybil owners (one exposure over several accounts)")


@dataclass(frozen=True)
class PassiveSpec:
    """Passive traders."""

    leverage_median: float = f(3.0, _num(1, 50), "median leverage")
    leverage_sigma: float = f(0.7, _num(0, 3), "log-normal spread of leverage")
    min_notional: float = f(2_000.0, _num(0, None, open_lo=True), "smallest position, dollars")
    size_alpha: float = f(1.6, _num(1, 10, open_lo=True), "Pareto tail of position size")
    rebalance_prob: float = f(0.02, _num(0, 1), "chance per calm step of resetting leverage")
    liquidation_churn: float = f(0.3, _num(0, 1), "chance of leaving after being liquidated")


@dataclass(frozen=True)
class WhaleSpec:
    """Leveraged whales that learn their leverage."""

    size_mult: float = f(40.0, _num(1), "size relative to a passive trader's minimum, Pareto")
    leverage_grid: list = f(  # noqa: RUF009
        [2.0, 5.0, 10.0, 20.0, 35.0], {"kind": "floats", "lo": 1.0, "hi": 100.0}, "leverage choices"
    )
    learning_rate: float = f(0.5, _num(0, 10), "multiplicative-weights learning rate")
    ruin: str = f(
        "recapitalise",
        _choice("recapitalise", "replace"),
        "a wiped-out whale: recapitalise (same stake, keeps what it learned; so far) or "
        "replace (same stake, a newcomer's uniform weights: ruin ends that learner)",
    )


@dataclass(frozen=True)
class FlipperSpec:
    """Flippers watching the venue's ADL indicator."""

    threshold: int = f(3, _num(0, 4, integer=True), "light (0-4) at which they act")
    delay: int = f(1, _num(0, 100, integer=True), "reaction delay, steps")
    lag: int = f(1, _num(0, 100, integer=True), "venue's indicator update lag, steps")
    cost_tolerance: float = f(1.0, _num(0), "max cost paid per dollar of expected haircut avoided")
    leverage: float = f(5.0, _num(1, 50), "leverage of a flipper's position")


@dataclass(frozen=True)
class SybilSpec:
    """Sybil owners."""

    accounts: int = f(4, _num(2, 100, integer=True), "accounts per owner")
    leverage: float = f(5.0, _num(1, 50), "owner's overall leverage")


@dataclass(frozen=True)
class MakerSpec:
    """Market makers supplying the book."""

    withdraw: float = f(0.6, _num(0, 0.99), "share of depth withdrawn at full stress")
    recover: float = f(0.3, _num(0, 1), "share of the lost depth restored per calm step")
    thinning: str = f(
        "both",
        _choice("both", "makers"),
        "both: market.stress_thinning and the makers' withdrawal compound (depth thinned twice,"
        " the behaviour so far); makers: the makers' withdrawal alone",
    )


@dataclass(frozen=True)
class ChurnSpec:
    """Leaving after a crisis: a hazard family over the haircut share x = h/w
    (:mod:`agents.churn`; the default is the exponential 1 - exp(-beta x - surprise |x - mean|))."""

    family: str = f(
        "exponential",
        _choice("exponential", "linear", "power", "logistic", "predictability"),
        "hazard family (an assumption: check conclusions across them)",
    )
    base: str = f(
        "equity",
        _choice("equity", "pnl"),
        "w: equity at the crisis start, or the crisis' peak profit plus the haircut",
    )
    beta: float = f(5.0, _num(0, 100), "sensitivity to x (exponential, linear, predictability)")
    surprise: float = f(2.0, _num(0, 100), "extra hazard for x away from the mean (exp., linear)")
    power: float = f(2.0, _num(0.1, 10), "exponent of the power family")
    scale: float = f(0.2, _num(0, 10, open_lo=True), "x at which the power family reaches 1")
    threshold: float = f(0.1, _num(0, 10), "x at the logistic family's midpoint")
    steepness: float = f(50.0, _num(0, 10_000, open_lo=True), "the logistic family's slope")


@dataclass(frozen=True)
class EntrySpec:
    """New traders after each crisis: Poisson(rate * traders * g(sensitivity * badness)), where
    badness is the crisis' ADL haircuts and bad debt over active equity.

    ``g`` is the entry family, an assumption (no published elasticity of venue entry to ADL):
    ``exponential`` ``exp(-z)`` (the behaviour so far), ``linear`` ``max(0, 1 - z)``, or
    ``step`` (1 below ``z = 1``, 0 from it: newcomers stay away once the record crosses a line).
    """

    rate: float = f(0.03, _num(0, 1), "entrants per crisis as a share of starting traders")
    sensitivity: float = f(20.0, _num(0, 1000), "how much a bad record deters entry")
    family: str = f(
        "exponential",
        _choice("exponential", "linear", "step"),
        "how entry falls with the record (an assumption: check conclusions across them)",
    )


@dataclass(frozen=True)
class ImitationSpec:
    """Traders copying the strategy that paid (passive <-> flipper) after each crisis.

    Each passive trader or flipper meets one random other; if the other's return over the
    crisis was higher, it switches to the other's strategy with probability
    ``rate * (difference / scale)``, capped at 1 (``proportional`` imitation, the behaviour so
    far; Schlag 1998), or with probability ``rate / (1 + exp(-difference / scale))`` whatever the
    sign of the difference (``fermi``: noisy imitation, Szabo and Toke 1998, under which a
    worse strategy is sometimes copied).  Rate and scale are assumptions.
    """

    rate: float = f(0.5, _num(0, 1), "imitation strength (0: nobody switches)")
    scale: float = f(0.05, _num(0, None, open_lo=True), "return gap at which switching is sure")
    family: str = f(
        "proportional",
        _choice("proportional", "fermi"),
        "switching rule (an assumption: check conclusions across them)",
    )


@dataclass(frozen=True)
class Scenario:
    """A whole game configuration."""

    name: str = f("default", {"kind": "str"}, "scenario name")
    run: RunSpec = field(default_factory=RunSpec)
    market: MarketSection = field(default_factory=MarketSection)
    crisis: CrisisSpec = field(default_factory=CrisisSpec)
    backstop: BackstopSpec = field(default_factory=BackstopSpec)
    adl: AdlSpec = field(default_factory=AdlSpec)
    mix: MixSpec = field(default_factory=MixSpec)
    passive: PassiveSpec = field(default_factory=PassiveSpec)
    whale: WhaleSpec = field(default_factory=WhaleSpec)
    flipper: FlipperSpec = field(default_factory=FlipperSpec)
    sybil: SybilSpec = field(default_factory=SybilSpec)
    maker: MakerSpec = field(default_factory=MakerSpec)
    churn: ChurnSpec = field(default_factory=ChurnSpec)
    entry: EntrySpec = field(default_factory=EntrySpec)
    imitation: ImitationSpec = field(default_factory=ImitationSpec)

    def replace(self, **dotted: Any) -> Scenario:
        """A copy with values changed by dotted name, validated (``run.crises=3``)."""
        data = to_dict(self)
        for key, value in dotted.items():
            node = data
            parts = key.split(".")
            for p in parts[:-1]:
                if p not in node or not isinstance(node[p], dict):
                    raise InputError(f"scenario.{key}", "a known dotted parameter name", key)
                node = node[p]
            if parts[-1] not in node:
                raise InputError(f"scenario.{key}", "a known dotted parameter name", key)
            node[parts[-1]] = value
        return from_dict(data)


def to_dict(obj: Any) -> Any:
    """A scenario (or section) as plain nested dicts, TOML-ready."""
    if dataclasses.is_dataclass(obj):
        return {fl.name: to_dict(getattr(obj, fl.name)) for fl in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def scenario_digest(sc: Scenario) -> str:
    """A short fingerprint (16 hex digits) of a scenario's full configuration."""
    text = json.dumps(to_dict(sc), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        if v != v:
            return "nan"
        return repr(v) if abs(v) != float("inf") else ("inf" if v > 0 else "-inf")
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def to_toml(sc: Scenario, header: str = "") -> str:
    """The scenario as TOML that :func:`load_scenario` reads back to an equal scenario.

    ``header`` is written first as comment lines.
    """
    lines = [f"# {h}".rstrip() for h in header.splitlines()] if header else []
    data = to_dict(sc)
    tables: list[tuple[str, dict]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    while tables:
        name, table = tables.pop(0)
        lines += ["", f"[{name}]"]
        for key, value in table.items():
            if isinstance(value, dict):
                tables.insert(0, (f"{name}.{key}", value))
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _describe(meta: dict) -> str:
    kind = meta["kind"]
    if kind == "choice":
        return "one of " + ", ".join(meta["values"])
    if kind == "str":
        return "a string"
    if kind == "table":
        return "a table"
    if kind == "floats":
        return f"a list of numbers in [{meta['lo']}, {meta['hi']}]"
    lo, hi = meta["lo"], meta["hi"]
    noun = "an integer" if kind == "int" else "a number"
    if lo is None and hi is None:
        return noun
    left = "(" if meta["open_lo"] else "["
    right = ")" if meta["open_hi"] or hi is None else "]"
    lo_s = "-inf" if lo is None else lo
    hi_s = "inf" if hi is None else hi
    return f"{noun} in {left}{lo_s}, {hi_s}{right}"


def _check_value(path: str, value: Any, meta: dict) -> Any:
    kind = meta["kind"]
    allowed = _describe(meta)
    if kind == "choice":
        if value not in meta["values"]:
            raise InputError(path, allowed, value)
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise InputError(path, allowed, value)
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise InputError(path, allowed, value)
        return dict(value)
    if kind == "floats":
        if not isinstance(value, list | tuple) or not value:
            raise InputError(path, allowed, value)
        for v in value:
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not meta["lo"] <= v <= meta["hi"]
            ):
                raise InputError(path, allowed, value)
        return [float(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(path, allowed, value)
    if kind == "int" and (not isinstance(value, int) and not float(value).is_integer()):
        raise InputError(path, allowed, value)
    x = int(value) if kind == "int" else float(value)
    lo, hi = meta["lo"], meta["hi"]
    if (
        x != x
        or (lo is not None and (x < lo or (meta["open_lo"] and x == lo)))
        or (hi is not None and (x > hi or (meta["open_hi"] and x == hi)))
    ):
        raise InputError(path, allowed, value)
    return x


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(path, "a table", data)
    fields_ = {fl.name: fl for fl in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields_))
    if unknown:
        raise InputError(f"{path}.{unknown[0]}", f"a known key ({', '.join(fields_)})", unknown[0])
    kwargs = {}
    for name, value in data.items():
        fl = fields_[name]
        sub = f"{path}.{name}"
        factory = fl.default_factory
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            kwargs[name] = _build(factory, value, sub)
        else:
            kwargs[name] = _check_value(sub, value, fl.metadata)
    return cls(**kwargs)


def from_dict(data: dict) -> Scenario:
    """Build and validate a scenario from nested dicts (missing keys take defaults)."""
    sc = _build(Scenario, data, "scenario")
    _cross_checks(sc)
    return sc


def _cross_checks(sc: Scenario) -> None:
    m = sc.market
    if m.maintenance_margin > m.initial_margin:
        raise InputError(
            "scenario.market.maintenance_margin", "<= market.initial_margin", m.maintenance_margin
        )
    share = sc.mix.whale + sc.mix.flipper + sc.mix.sybil
    if share > 1:
        raise InputError(
            "scenario.mix",
            "shares that add up to at most 1 (passive gets the rest)",
            round(share, 6),
        )
    if sc.crisis.drop_max < sc.crisis.drop_median:
        raise InputError("scenario.crisis.drop_max", ">= crisis.drop_median", sc.crisis.drop_max)
    from market.adl import get_policy, policy_class

    try:
        policy_class(sc.adl.policy)
    except InputError as exc:
        raise InputError("scenario.adl.policy", exc.allowed, sc.adl.policy) from None
    try:
        get_policy(sc.adl.policy, **sc.adl.params)
    except InputError as exc:
        raise InputError(
            f"scenario.adl.params.{exc.field.split('.')[-1]}", exc.allowed, exc.got
        ) from None
    max_lev = 1.0 / m.initial_margin
    if max(sc.whale.leverage_grid) > max_lev:
        raise InputError(
            "scenario.whale.leverage_grid",
            f"leverages <= 1/initial_margin = {max_lev:g}",
            sc.whale.leverage_grid,
        )


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    folder = resources.files("experiments") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_scenario(source: str | Path | None = None) -> Scenario:
    """Load a scenario: None (the default), a built-in name, ``venue:<name>`` (the default
    world with a venue's mechanics, :mod:`experiments.game.venues`) or a TOML file path.

    Raises:
        InputError: unknown file or name, TOML syntax errors, unknown keys, wrong types and
            out-of-range values, each as one line naming the field and what is allowed.
    """
    if source is None:
        source = "default"
    if isinstance(source, str) and source.startswith("venue:"):
        from experiments.game.venues import venue_overrides

        return load_scenario("default").replace(**venue_overrides(source[len("venue:") :]))
    text: str
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(
                "scenario",
                f"an existing TOML file or a built-in name ({', '.join(builtin_scenarios())})",
                str(source),
            )
        text = path.read_text()
    else:
        if str(source) not in builtin_scenarios():
            raise InputError(
                "scenario",
                f"a TOML file or a built-in name ({', '.join(builtin_scenarios())})",
                str(source),
            )
        text = (resources.files("experiments") / "scenarios" / f"{source}.toml").read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError("scenario", "valid TOML", str(exc).splitlines()[0]) from None
    return from_dict(data)
