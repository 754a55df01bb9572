"""The live dashboard behind ``adlgame dashboard``: the model it drives, its series, its server.

The page itself (Solara components over Mesa's :func:`mesa.visualization.SolaraViz`) lives in
:mod:`viz.dashboard_app`, the module ``solara run`` imports; this module stays light (no
solara import) so the command line loads fast:

* :class:`DashboardModel` -- the Mesa model the page drives: a thin wrapper whose keyword
  arguments are the controls on the page (policy, severity, agent mix, passive leverage,
  crisis size, traders, crises, seed).  It builds ``load_scenario("default").replace(...)`` at
  a small size and plays an :class:`experiments.game.model.ADLGame` on it (one pass, no
  counterfactual, so a step takes milliseconds).  A refused value never raises: the model is
  built in an *error state* (``error`` holds the one-line :class:`market.errors.InputError`
  message naming the field, ``game`` is None) that the page shows instead of a traceback,
  while it keeps the last good game.
* :func:`series` -- the game's DataCollector table plus the derived columns the page plots
  (cumulative deficit and ADL, flipper share, traders active against the start);
* :func:`haircut_shares` -- haircut as a share of equity per account hit, over the run so
  far or the latest crisis (the histogram);
* :func:`command` -- ``adlgame dashboard`` (its ``--port`` / ``--host`` options are declared
  in :mod:`viz.cli`): the blocking server (Solara's ``run`` command on
  :mod:`viz.dashboard_app`, production mode, no browser opened, no version check or
  telemetry: it works offline).

The dashboard reads the game; it writes nothing into results.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import socket
import warnings
from typing import Any, ClassVar

import mesa
import numpy as np
import pandas as pd

from experiments.game.model import ADLGame, haircut_by_type
from experiments.game.scenario import Scenario, load_scenario
from experiments.runs.results import RunResult
from experiments.studies.experiment import game_policies
from market.adl import SEVERITIES, policy_class
from market.errors import InputError, require

__all__ = [
    "APP_MODULE",
    "DEFAULTS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DashboardModel",
    "command",
    "haircut_shares",
    "series",
    "solara_args",
    "who_paid",
]

#: Port the dashboard serves on unless ``--port`` says otherwise.
DEFAULT_PORT = 8765
#: Address the dashboard binds unless ``--host`` says otherwise (this machine only).
DEFAULT_HOST = "127.0.0.1"
#: The module ``solara run`` serves (its import defines ``Page``).
APP_MODULE = "viz.dashboard_app"

#: The page's starting values: the default scenario at a size that steps in milliseconds.
DEFAULTS: dict[str, Any] = {
    "policy": "hyperliquid",
    "severity": "full",
    "whale": 0.03,
    "flipper": 0.04,
    "sybil": 0.02,
    "leverage_median": 3.0,
    "drop_median": 0.12,
    "traders": 600,
    "crises": 4,
    "seed": 1,
    "compare_with": "none",
}

#: Step columns whose first difference marks where two rules on one world part.
PART_COLUMNS = ("adl_raised", "backstop_used", "fund", "residual", "traders_active")


def _number(value: Any) -> Any:
    """A number typed on the page (a string) as an int or float; anything else unchanged.

    Text that is not a number is passed on as it is, so the scenario validator refuses it
    with a message naming the field.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return value


def _seed(value: Any) -> int:
    """The seed as an int (the page's text box gives a string); InputError otherwise."""
    text = str(value).strip()
    ok = not isinstance(value, bool) and (
        (isinstance(value, int | np.integer) and value >= 0) or text.isdigit()
    )
    require(ok, "seed", "an integer >= 0", value)
    return int(text)


class DashboardModel(mesa.Model):
    """The model the dashboard drives: one :class:`~experiments.game.model.ADLGame` built from the
    page's controls, or an error state naming the refused field.

    Args:
        policy: ADL policy, one of :func:`experiments.studies.experiment.game_policies`.
        severity: severity controller, one of :data:`market.adl.SEVERITIES`.
        whale: share of leveraged whales among the starting traders.  Every number may also
            be given as text (the page's input boxes), e.g. ``"0.05"``.
        flipper: share of flippers.
        sybil: share of Sybil owners (passive traders get the rest).
        leverage_median: median leverage of passive traders.
        drop_median: median crash size (fraction of the mark).
        traders: starting traders.
        crises: crises in the run.
        seed: the run's root seed (an integer >= 0; digits in a string are accepted).
        compare_with: ``"none"``, or a second rule (a built-in name, ``FILE.py:Class`` or
            ``module:Class``) played on the same world (same scenario and seed: the same
            prices, crises and traders) beside the first, step for step.

    Attributes:
        params: the keyword arguments as given.
        error: None, or the one-line message of the refused value (the game is then None).
        game: the game being played (None in the error state).
        game_b: the second rule's game, or None.
        scenario: the validated scenario (None in the error state).
    """

    #: Scenario keys (dotted) set from the keyword arguments of the same role.
    OVERRIDES: ClassVar[dict[str, str]] = {
        "whale": "mix.whale",
        "flipper": "mix.flipper",
        "sybil": "mix.sybil",
        "leverage_median": "passive.leverage_median",
        "drop_median": "crisis.drop_median",
        "traders": "run.traders",
        "crises": "run.crises",
    }

    def __init__(
        self,
        *,
        policy: str = DEFAULTS["policy"],
        severity: str = DEFAULTS["severity"],
        whale: float = DEFAULTS["whale"],
        flipper: float = DEFAULTS["flipper"],
        sybil: float = DEFAULTS["sybil"],
        leverage_median: float = DEFAULTS["leverage_median"],
        drop_median: float = DEFAULTS["drop_median"],
        traders: int = DEFAULTS["traders"],
        crises: int = DEFAULTS["crises"],
        seed: int | str = DEFAULTS["seed"],
        compare_with: str = DEFAULTS["compare_with"],
    ) -> None:
        super().__init__(rng=np.random.default_rng(0))
        self.params: dict[str, Any] = {
            "policy": policy,
            "severity": severity,
            "whale": whale,
            "flipper": flipper,
            "sybil": sybil,
            "leverage_median": leverage_median,
            "drop_median": drop_median,
            "traders": traders,
            "crises": crises,
            "seed": seed,
            "compare_with": compare_with,
        }
        self.error: str | None = None
        self.game_b: ADLGame | None = None
        self._result: RunResult | None = None
        self.game: ADLGame | None = None
        self.scenario: Scenario | None = None
        try:
            self.scenario = self.build_scenario(self.params)
            self.game = ADLGame(
                self.scenario,
                seed=_seed(seed),
                policy=str(policy),
                severity=str(severity),
                two_pass=False,
            )
            other = str(compare_with).strip()
            if other and other != "none":
                try:
                    policy_class(other)
                except InputError as exc:
                    raise InputError("compare_with", f"none or {exc.allowed}", other) from None
                self.game_b = ADLGame(
                    self.scenario,
                    seed=_seed(seed),
                    policy=other,
                    severity=str(severity),
                    two_pass=False,
                )
        except InputError as exc:
            self.error = str(exc)
            self.scenario = None
            self.game = self.game_b = None
            self.running = False

    @classmethod
    def build_scenario(cls, params: dict[str, Any]) -> Scenario:
        """The validated scenario of ``params`` (policy and severity checked too).

        Raises:
            InputError: a value the game or the scenario validator refuses, naming the field.
        """
        policies = game_policies()
        policy = params.get("policy", DEFAULTS["policy"])
        require(policy in policies, "policy", f"one of {', '.join(policies)}", policy)
        severity = params.get("severity", DEFAULTS["severity"])
        require(severity in SEVERITIES, "severity", f"one of {', '.join(SEVERITIES)}", severity)
        _seed(params.get("seed", DEFAULTS["seed"]))
        base = load_scenario("default")
        dotted = {
            key: _number(params.get(name, DEFAULTS[name])) for name, key in cls.OVERRIDES.items()
        }
        drop = dotted["crisis.drop_median"]
        if isinstance(drop, int | float) and not isinstance(drop, bool) and 0 < drop < 0.95:
            # a bigger median crash lifts the cap on crash sizes with it (up to its own limit)
            dotted["crisis.drop_max"] = min(max(base.crisis.drop_max, float(drop)), 0.95)
        return base.replace(
            **dotted, **{"adl.policy": policy, "adl.severity": severity, "adl.params": {}}
        )

    @property
    def datacollector(self) -> mesa.DataCollector | None:
        """The game's DataCollector (what Mesa's plot components read); None in error state."""
        return None if self.game is None else self.game.datacollector

    @property
    def total_steps(self) -> int:
        """Steps in the whole run (0 in the error state)."""
        return 0 if self.game is None else self.game.total_steps

    def result(self) -> RunResult | None:
        """The finished run's :class:`~experiments.runs.results.RunResult` (the figures
        ``adlgame run`` writes to summary.json), computed once; None until the game ends."""
        if self.game is None or self.game.running:
            return None
        if self._result is None:
            self._result = RunResult.from_game(self.game)
        return self._result

    def step(self) -> None:
        """One step of the game (does nothing in the error state or past the end)."""
        if self.game is None:
            self.running = False
            return
        self.game.step()
        if self.game_b is not None:
            self.game_b.step()
        self.running = bool(self.game.running)

    def parted_at(self) -> int | None:
        """The first step at which the two rules' worlds differ (ADL raised, backstop, fund,
        residual or traders active); None while they agree or without a second rule."""
        if self.game is None or self.game_b is None:
            return None
        a = self.game.datacollector.get_model_vars_dataframe()
        b = self.game_b.datacollector.get_model_vars_dataframe()
        n = min(len(a), len(b))
        if n == 0:
            return None
        cols = [c for c in PART_COLUMNS if c in a.columns and c in b.columns]
        x = a[cols].iloc[:n].to_numpy(dtype=np.float64)
        y = b[cols].iloc[:n].to_numpy(dtype=np.float64)
        differ = ~np.isclose(x, y, rtol=1e-9, atol=1e-6).all(axis=1)
        hit = np.flatnonzero(differ)
        return int(a["step"].iloc[hit[0]]) if hit.size else None


def series(model: DashboardModel | ADLGame) -> pd.DataFrame:
    """The DataCollector table with the derived columns the dashboard plots.

    Added columns: ``cum_deficit``, ``cum_backstop``, ``cum_adl`` (running sums, dollars),
    ``flipper_share`` (flippers / traders active, NaN when nobody is left) and ``active_share``
    (traders active / traders active at step 0, entrants included: not the run's
    ``retention``, which follows the first crisis' traders; see
    :meth:`DashboardModel.result`).  Empty in the error state.
    """
    game = model.game if isinstance(model, DashboardModel) else model
    if game is None:
        return pd.DataFrame()
    df = game.datacollector.get_model_vars_dataframe().copy()
    active = df["traders_active"].to_numpy(dtype=np.float64)
    flippers = df["flippers_active"].to_numpy(dtype=np.float64)
    df["cum_deficit"] = df["deficit"].astype(float).cumsum()
    df["cum_backstop"] = df["backstop_used"].astype(float).cumsum()
    df["cum_adl"] = df["adl_raised"].astype(float).cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        df["flipper_share"] = np.where(active > 0, flippers / active, np.nan)
        df["active_share"] = active / active[0] if active.size and active[0] > 0 else np.nan
    return df


def latest_crisis_start(game: ADLGame) -> int | None:
    """First step of the crisis in progress or, in a calm period, of the last one; None
    before the first crisis.  Read from the DataCollector's ``phase`` and ``crisis`` columns.
    """
    df = game.datacollector.get_model_vars_dataframe()
    crisis_rows = df[df["phase"] == "crisis"]
    if crisis_rows.empty:
        return None
    last = crisis_rows["crisis"].iloc[-1]
    return int(crisis_rows.loc[crisis_rows["crisis"] == last, "step"].min())


def haircut_shares(model: DashboardModel | ADLGame, scope: str = "run") -> np.ndarray:
    """Haircut as a share of equity, one value per account ADL has hit (sorted by account).

    An account's share is the sum of its haircuts in the scope over its equity before its
    first haircut in the scope (accounts with no positive equity then are left out).

    Args:
        model: the dashboard model or a game.
        scope: ``"run"`` (every ADL fill so far) or ``"crisis"`` (fills since the latest
            crisis began: the one in progress, or the last one during a calm period).
    """
    require(scope in ("run", "crisis"), "scope", "run or crisis", scope)
    game = model.game if isinstance(model, DashboardModel) else model
    if game is None:
        return np.zeros(0)
    adl = game.exchange.log.adl.to_array()
    if scope == "crisis":
        start = latest_crisis_start(game)
        if start is None:
            return np.zeros(0)
        adl = adl[adl["step"] >= start]
    if adl.size == 0:
        return np.zeros(0)
    # np.unique's first index is the account's first fill: the log is in time order
    _, first, inverse = np.unique(adl["account"], return_index=True, return_inverse=True)
    taken = np.bincount(inverse, weights=adl["haircut"])
    equity = adl["equity"][first]
    keep = equity > 0
    return taken[keep] / equity[keep]


def who_paid(game: ADLGame | None) -> dict[str, float]:
    """ADL dollars taken so far by agent type (``book``: the market makers' account)."""
    if game is None:
        return {}
    ex = game.exchange
    adl = ex.log.adl.to_array()
    per_account = np.bincount(adl["account"], weights=adl["haircut"], minlength=ex.n_accounts)
    return haircut_by_type(ex, per_account.astype(np.float64, copy=False))


# ---------------------------------------------------------------------- command line
def _check_port_free(host: str, port: int) -> None:
    """Raise InputError unless ``host:port`` can be bound now (bad host or port in use)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InputError("--host", "an address or name of this machine", host) from None
    family, kind, proto, _, address = infos[0]
    with contextlib.closing(socket.socket(family, kind, proto)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError("--port", "a port no other program is using", port) from None
            if exc.errno == errno.EACCES:
                raise InputError("--port", "a port this user may bind (>= 1024)", port) from None
            raise InputError("--host", "an address of this machine", host) from None


def solara_args(host: str, port: int) -> list[str]:
    """Arguments of ``solara run`` that serve the dashboard: production mode, no browser
    opened, no version check (it would go online), quiet server log."""
    return [
        APP_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--production",
        "--no-open",
        "--no-check-version",
        "--log-level-uvicorn",
        "warning",
    ]


def command(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C; returns the exit status (0).

    Prints the URL first.  Raises :class:`InputError` (one line naming ``--port`` or
    ``--host``) for a port outside 1..65535, a port in use or an address that cannot be bound.
    """
    port = getattr(args, "port", DEFAULT_PORT)
    host = getattr(args, "host", DEFAULT_HOST)
    require(
        isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536,
        "--port",
        "an integer in 1..65535",
        port,
    )
    require(isinstance(host, str) and host.strip() != "", "--host", "an address", host)
    _check_port_free(host, port)
    # offline: no telemetry and no hook-rule warnings from Mesa's components on the console
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "false")
    os.environ.setdefault("SOLARA_CHECK_HOOKS", "off")
    # plain-http on localhost: solara warns on every page load that it falls back to lax cookies
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")
    from solara.__main__ import run as solara_run

    shown = f"[{host}]" if ":" in host else host
    print(f"adlgame dashboard: serving http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    from click.exceptions import Abort  # click turns Ctrl-C into Abort

    with contextlib.suppress(KeyboardInterrupt, Abort):
        solara_run.main(args=solara_args(host, port), standalone_mode=False)
    return 0
