"""The dashboard page: Mesa's SolaraViz over :class:`viz.dashboard.DashboardModel`.

``solara run viz.dashboard_app`` (what ``adlgame dashboard`` starts) imports this module and
serves :func:`Page`.  The sidebar is Mesa's: Reset / play / Step, the play and render
intervals, the model parameters (policy, severity, agent mix, passive leverage, crash size,
traders, crises, seed) and the step counter.  Changed parameters take effect on Reset, as in
every Mesa app.  Above the plots, :func:`Status` shows the game being played and, when Reset
met a value the scenario validator refuses, its one-line message; the last good game stays on
the page and keeps stepping (:class:`KeepLastGood`).

Plots (greyscale-readable: black and grey, line styles, hatching, labelled axes): price
(marks), backstop fund and per-step deficit / ADL raised are Mesa's
:func:`~mesa.visualization.make_plot_component` over DataCollector columns; the haircut
histogram, flipper share and traders active are components of this module.
"""

from __future__ import annotations

import os

os.environ.setdefault("SOLARA_CHECK_HOOKS", "off")  # Mesa's ComponentsView trips the linter
os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "false")  # offline: no telemetry

from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import solara
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from mesa.visualization import SolaraViz, make_plot_component
from mesa.visualization.utils import force_update, update_counter

from experiments.studies.experiment import game_policies
from market.adl import SEVERITIES
from viz.dashboard import DEFAULTS, DashboardModel, haircut_shares, series, who_paid
from viz.style import RC

__all__ = [
    "COMPONENTS",
    "MODEL_PARAMS",
    "TITLE",
    "FlipperSharePlot",
    "HaircutHistogram",
    "KeepLastGood",
    "Page",
    "RetentionPlot",
    "SideBySide",
    "Status",
]

#: Title in the page's app bar.
TITLE = "adlgame: live ADL game"


def _text(label: str, name: str) -> dict[str, Any]:
    """A Mesa text input showing DashboardModel's default for ``name``."""
    return {"type": "InputText", "value": str(DEFAULTS[name]), "label": label}


#: Mesa's user inputs (SolaraViz ``model_params``), keyed by DashboardModel's arguments.
#: Numbers are text boxes (their values stay visible; Enter or leaving the box applies the
#: text, Reset builds the game); a value the scenario refuses is reported by :func:`Status`.
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "policy": {
        "type": "Select",
        "value": DEFAULTS["policy"],
        "values": game_policies(),
        "label": "ADL policy",
    },
    "severity": {
        "type": "Select",
        "value": DEFAULTS["severity"],
        "values": list(SEVERITIES),
        "label": "Severity",
    },
    "whale": _text("Whale share (0-1)", "whale"),
    "flipper": _text("Flipper share (0-1)", "flipper"),
    "sybil": _text("Sybil share (0-1)", "sybil"),
    "leverage_median": _text("Passive leverage, median (1-50)", "leverage_median"),
    "drop_median": _text("Crisis size, median drop (0-0.95)", "drop_median"),
    "traders": _text("Traders", "traders"),
    "crises": _text("Crises", "crises"),
    "seed": _text("Seed", "seed"),
    "compare_with": _text("Compare with (none, a rule, FILE.py:Class)", "compare_with"),
}

_BLACK = "black"
_GREY = "0.55"


class KeepLastGood(solara.Reactive):
    """The page's model variable: it refuses a model built in the error state.

    Mesa's Reset builds a new :class:`DashboardModel` from the sidebar's values and assigns
    it here.  A model whose ``error`` is set is not installed: its message goes to
    :attr:`refused` (shown by :func:`Status`) and the previous game stays, still playable.
    A good model replaces the old one and clears the message.
    """

    def __init__(self, model: DashboardModel) -> None:
        super().__init__(model)
        #: The last refused model's one-line message (None after a good Reset).
        self.refused: solara.Reactive[str | None] = solara.Reactive(None)

    def set(self, value: Any) -> None:
        """Install ``value`` unless it is in the error state (then record its message)."""
        error = getattr(value, "error", None)
        if error:
            self.refused.set(error)
            force_update()
            return
        self.refused.set(None)
        super().set(value)


def _money(x: float) -> str:
    """Dollars in a short form ($1.23M, $45.6k, $789)."""
    ax = abs(x)
    if ax >= 1e6:
        return f"${x / 1e6:,.2f}M"
    if ax >= 1e3:
        return f"${x / 1e3:,.1f}k"
    return f"${x:,.0f}"


@solara.component
def Status(model: KeepLastGood) -> None:
    """The game being played (policy, severity, step, phase, totals) and any refused value."""
    update_counter.get()
    current: DashboardModel = model.value
    refused = model.refused.value
    with solara.Column(gap="4px", style={"padding": "8px 16px 0 16px"}):
        if refused:
            solara.Error(
                f"{refused}. The previous game is kept: fix the value and press Reset.",
                icon=True,
                classes=["adl-error"],
            )
        game = current.game
        if game is None:  # only if the very first model were refused
            solara.Error(current.error or "no game", classes=["adl-error"])
            return
        p = current.params
        crisis = game.crisis_of_step(game.t) if game.t else 0
        where = f"crisis {crisis + 1} of {game.scenario.run.crises}"
        if game.phase == "calm":
            where = (
                f"calm before crisis {crisis + 1}"
                if crisis < game.scenario.run.crises
                else "calm after the last crisis"
            )
        # plain text, not Markdown: Markdown pulls KaTeX from a CDN and the page is offline
        solara.Text(
            f"Policy {p['policy']}"
            + (f" vs {p['compare_with']}" if current.game_b is not None else "")
            + f" · severity {p['severity']} · "
            f"step {game.t} / {game.total_steps} ({where if game.t else 'not started'}) · "
            f"seed {p['seed']}, {p['traders']} traders, {p['crises']} crises · "
            f"whale / flipper / Sybil {p['whale']} / {p['flipper']} / {p['sybil']}, "
            f"leverage {p['leverage_median']}, median drop {p['drop_median']}",
            style={"font-size": "15px", "font-weight": "500"},
            classes=["adl-status"],
        )
        df = series(current)
        last = df.iloc[-1]
        solara.Text(
            f"deficit so far {_money(last['cum_deficit'])} · backstop paid "
            f"{_money(last['cum_backstop'])} · ADL raised {_money(last['cum_adl'])} · "
            f"fund {_money(last['fund'])} · traders {int(last['traders_active'])} "
            f"({last['active_share']:.0%} of the start), flippers {last['flipper_share']:.1%}",
            style={"font-size": "13px", "color": "#444"},
            classes=["adl-totals"],
        )
        result = current.result()
        if result is not None:  # the figures summary.json would hold for this run
            solara.Text(
                f"Run finished: deficit {_money(result['total_deficit'])} · ADL raised "
                f"{_money(result['adl_raised'])} from {result['accounts_touched']:,.0f} "
                f"accounts · largest haircut {result['max_haircut_capacity_frac']:.0%} of "
                f"capacity · retention {result['retention']:.0%} · fee revenue "
                f"{_money(result['fee_revenue'])}",
                style={"font-size": "13px", "font-weight": "500"},
                classes=["adl-result"],
            )
        solara.Text(
            "Change the parameters in the sidebar, then press Reset to start a game with them.",
            style={"font-size": "12px", "color": "#666"},
        )


def _who_paid_plot(paid: dict[str, float], title: str) -> Figure:
    """Bars: ADL dollars taken so far by agent type (hatched, greyscale-safe)."""

    def draw(ax: Axes) -> None:
        names = list(paid)
        ax.bar(names, [paid[n] for n in names], color=_GREY, edgecolor=_BLACK, hatch="//")
        ax.set_title(title)
        ax.set_ylabel("ADL taken so far, $")
        ax.tick_params(axis="x", labelsize=8)

    return _plot(draw)


@solara.component
def SideBySide(model: KeepLastGood) -> None:
    """Two rules on one world, in two columns: where they part and what each did to whom."""
    update_counter.get()
    current: DashboardModel = model.value
    a, b = current.game, current.game_b
    if a is None:
        return
    if b is None:
        solara.Text(
            "Set 'Compare with' to a second rule (a name, or your FILE.py:Class) and press "
            "Reset to play both on this world side by side.",
            style={"font-size": "12px", "color": "#666", "padding": "0 16px"},
        )
        return
    part = current.parted_at()
    where = (
        f"The two rules part at step {part}: the first step whose ADL, backstop, fund, residual "
        "or traders differ."
        if part is not None
        else "Same world, same draws: the two rules have not parted yet."
    )
    with solara.Column(gap="4px", style={"padding": "0 16px"}):
        solara.Text(
            where, style={"font-size": "14px", "font-weight": "500"}, classes=["adl-parted"]
        )
        with solara.Columns([1, 1]):
            for game, css in ((a, "adl-side-a"), (b, "adl-side-b")):
                df = series(game)
                last = df.iloc[-1]
                paid = who_paid(game)
                touched = int(np.unique(game.exchange.log.adl.to_array()["account"]).size)
                with solara.Column():
                    solara.Text(
                        f"{game.policy_name}: ADL raised {_money(last['cum_adl'])} from "
                        f"{touched:,} accounts · backstop paid {_money(last['cum_backstop'])} · "
                        f"fund {_money(last['fund'])} · traders {int(last['traders_active'])}",
                        style={"font-size": "13px"},
                        classes=[css],
                    )
                    solara.FigureMatplotlib(
                        _who_paid_plot(paid, f"Who paid under {game.policy_name}"),
                        format="png",
                    )


def _plot(draw: Callable[[Axes], None]) -> Figure:
    """A figure of one axes drawn by ``draw`` with the project's figure style.

    Fixed margins instead of a tight bounding box: the PNG is then drawn once per step, not
    twice (six figures are redrawn at every step of the game).
    """
    with plt.rc_context(RC):
        fig = Figure(figsize=(6.0, 3.6))
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.15, top=0.9)
        ax = fig.subplots()
        draw(ax)
    return fig


def _shade_crises(ax: Axes, df: Any) -> None:
    """Light grey bands over the crisis steps (greyscale-safe)."""
    crisis = (df["phase"] == "crisis").to_numpy()
    steps = df["step"].to_numpy()
    if not crisis.any():
        return
    edges = np.flatnonzero(np.diff(np.r_[0, crisis.astype(int), 0]))
    for a, b in zip(edges[::2], edges[1::2]):  # a handful of crises
        ax.axvspan(steps[a] - 0.5, steps[b - 1] + 0.5, color="0.88", lw=0, zorder=0)


def _line_plot(model: DashboardModel, column: str, title: str, ylabel: str) -> Any:
    df = series(model)

    def draw(ax: Axes) -> None:
        if df.empty:
            return
        _shade_crises(ax, df)
        ax.plot(df["step"], df[column], color=_BLACK, lw=1.6, label=ylabel)
        ax.set_title(title)
        ax.set_xlabel("Step (grey bands: crises)")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)

    return solara.FigureMatplotlib(_plot(draw), format="png")


def FlipperSharePlot(model: DashboardModel) -> Any:
    """Flippers as a share of the traders active, per step."""
    return _line_plot(model, "flipper_share", "Flipper share", "flippers / traders active")


def RetentionPlot(model: DashboardModel) -> Any:
    """Traders active over traders at the start, per step (entrants count as active)."""
    return _line_plot(model, "active_share", "Traders active", "traders active / starting")


def HaircutHistogram(model: DashboardModel) -> Any:
    """Histogram of haircut / equity for the accounts hit: whole run so far vs latest crisis."""
    run = haircut_shares(model, "run")
    crisis = haircut_shares(model, "crisis")

    def draw(ax: Axes) -> None:
        ax.set_title("Haircuts (accounts hit)")
        ax.set_xlabel("haircut / equity before the first haircut")
        ax.set_ylabel("accounts")
        if run.size == 0:
            ax.text(0.5, 0.5, "no ADL yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlim(0, 1)
            return
        top = max(float(run.max()) * 1.05, 1e-3)
        bins = np.linspace(0.0, top, 21)
        ax.hist(
            run, bins=bins, color=_GREY, edgecolor=_BLACK, lw=0.6, label=f"run so far ({run.size})"
        )
        if crisis.size:
            ax.hist(
                crisis,
                bins=bins,
                histtype="step",
                hatch="//",
                color=_BLACK,
                lw=1.4,
                label=f"latest crisis ({crisis.size})",
            )
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend(loc="upper right")

    return solara.FigureMatplotlib(_plot(draw), format="png")


def _style_axes(title: str, ylabel: str, styles: tuple[str, ...] = ("-",)) -> Callable:
    """A post-process for Mesa's plot component: title, labels, grey line styles."""

    def post(ax: Axes) -> None:
        for line, ls, color in zip(ax.get_lines(), styles, (_BLACK, _GREY, "0.3")):
            line.set_linestyle(ls)
            line.set_color(color)
            line.set_linewidth(1.6)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend(loc="best", fontsize=8)

    return post


#: The plots, in page order (Mesa's grid: two per row).
COMPONENTS: list[Any] = [
    make_plot_component("mark_0", post_process=_style_axes("Price (mark)", "mark, $")),
    make_plot_component("fund", post_process=_style_axes("Backstop fund", "capital, $")),
    make_plot_component(
        ["deficit", "adl_raised"],
        post_process=_style_axes("Deficit and ADL raised per step", "$", ("-", "--")),
    ),
    HaircutHistogram,
    FlipperSharePlot,
    RetentionPlot,
]


@solara.component
def Page() -> None:
    """The dashboard: status line above Mesa's SolaraViz (controls, parameters, plots)."""
    model = solara.use_memo(lambda: KeepLastGood(DashboardModel()), [])
    Status(model)
    SideBySide(model)
    SolaraViz(
        model,
        components=COMPONENTS,
        model_params=MODEL_PARAMS,
        name=TITLE,
        play_interval=150,
    )
