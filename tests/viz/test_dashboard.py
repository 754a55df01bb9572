"""The dashboard without a browser: model factory, error state, series, histogram data,
components and the command's argument checks (the browser test is test_dashboard_browser)."""

from __future__ import annotations

import argparse
import os
import socket

os.environ.setdefault("SOLARA_CHECK_HOOKS", "off")  # Mesa's ComponentsView trips the linter

import numpy as np
import pytest

from experiments.cli import build_parser
from experiments.game.model import ADLGame
from experiments.game.scenario import load_scenario
from experiments.studies.experiment import game_policies
from market.adl import SEVERITIES
from market.errors import InputError
from viz import dashboard
from viz.cli import add_viz_commands
from viz.dashboard import DashboardModel, haircut_shares, latest_crisis_start, series

SMALL = {"traders": 100, "crises": 2}
#: A run with ADL in both crises (pro rata touches many accounts).
ADL_RUN = {"policy": "pro_rata", "traders": 600, "crises": 2}


def test_factory_builds_every_policy_and_severity():
    for policy in game_policies():
        for severity in SEVERITIES:
            m = DashboardModel(policy=policy, severity=severity, **SMALL)
            assert m.error is None, (policy, severity, m.error)
            assert m.game.policy_name == policy
            assert m.game.severity_name == severity
            assert m.game.two_pass is None
            assert m.scenario.run.traders == 100
            assert m.scenario.run.crises == 2
            # 2 crises of 20 calm + 10 crisis steps, then a last calm period
            assert m.total_steps == 2 * 30 + 20


def test_every_policy_plays_through_a_crisis():
    for policy in game_policies():
        m = DashboardModel(policy=policy, drop_median=0.3, **SMALL)
        for _ in range(31):
            m.step()
        assert m.game.t == 31 and m.running
        df = series(m)
        assert len(df) == 32
        assert df["cum_deficit"].iloc[-1] > 0, policy  # a 30 % median crash leaves a hole


def test_defaults_are_the_default_scenario_at_small_size():
    m = DashboardModel()
    base = load_scenario("default")
    sc = m.scenario
    assert (sc.run.traders, sc.run.crises) == (600, 4)
    assert sc.mix == base.mix
    assert sc.passive.leverage_median == base.passive.leverage_median
    assert sc.crisis.drop_median == base.crisis.drop_median
    assert m.params == dashboard.DEFAULTS


def test_numbers_typed_as_text_are_accepted():
    m = DashboardModel(whale="0.05", flipper=" 0.1 ", traders="300", crises="3", seed="7")
    assert m.error is None
    assert m.scenario.mix.whale == 0.05
    assert m.scenario.mix.flipper == 0.1
    assert m.scenario.run.traders == 300
    assert m.scenario.run.crises == 3
    assert m.game.seed == 7


def test_a_bigger_crash_lifts_the_cap_on_crash_sizes():
    m = DashboardModel(drop_median=0.8, **SMALL)
    assert m.error is None
    assert m.scenario.crisis.drop_median == 0.8
    assert m.scenario.crisis.drop_max == 0.8
    assert DashboardModel(**SMALL).scenario.crisis.drop_max == 0.6  # default unchanged


@pytest.mark.parametrize(
    ("kwargs", "field", "got"),
    [
        ({"whale": 0.7, "flipper": 0.5}, "scenario.mix", "1.22"),
        ({"policy": "nope"}, "policy", "'nope'"),
        ({"policy": "min_max_ilp"}, "policy", "'min_max_ilp'"),  # exact-small-only rule
        ({"severity": "gentle"}, "severity", "'gentle'"),
        ({"seed": "x"}, "seed", "'x'"),
        ({"seed": -1}, "seed", "-1"),
        ({"traders": 0}, "scenario.run.traders", "0"),
        ({"traders": "abc"}, "scenario.run.traders", "'abc'"),
        ({"drop_median": "1.2"}, "scenario.crisis.drop_median", "1.2"),
        ({"leverage_median": 0.5}, "scenario.passive.leverage_median", "0.5"),
        ({"crises": 2.5}, "scenario.run.crises", "2.5"),
    ],
)
def test_bad_parameter_gives_an_error_state_naming_the_field(kwargs, field, got):
    m = DashboardModel(**kwargs)
    assert m.game is None and m.scenario is None and m.datacollector is None
    assert m.error.startswith(f"{field}: must be ")
    assert m.error.endswith(f"(got {got})")
    assert "\n" not in m.error
    assert not m.running
    m.step()  # a no-op, not a crash
    assert m.total_steps == 0
    assert series(m).empty
    assert haircut_shares(m).size == 0


def test_stepping_changes_the_series():
    m = DashboardModel(**SMALL)
    df0 = series(m)
    assert len(df0) == 1
    # hand numbers at step 0: floor(0.04 * 100) = 4 flippers of 100 traders, all still there
    assert df0["flipper_share"].iloc[0] == pytest.approx(0.04)
    assert df0["active_share"].iloc[0] == 1.0
    assert df0["cum_deficit"].iloc[0] == 0.0
    for _ in range(25):
        m.step()
    df = series(m)
    assert len(df) == 26
    assert df["step"].tolist() == list(range(26))
    assert df["mark_0"].nunique() > 20  # the price moved every step
    assert df["phase"].iloc[21] == "crisis" and df["phase"].iloc[20] == "calm"
    np.testing.assert_allclose(df["cum_deficit"], np.cumsum(df["deficit"]))
    np.testing.assert_allclose(df["cum_adl"], np.cumsum(df["adl_raised"]))
    np.testing.assert_allclose(df["cum_backstop"], np.cumsum(df["backstop_used"]))
    active = df["traders_active"].to_numpy(float)
    np.testing.assert_allclose(df["active_share"], active / active[0])
    np.testing.assert_allclose(df["flipper_share"], df["flippers_active"] / active)
    assert m.steps == 25  # Mesa's counter on the wrapper (the page's "Step: N")


def test_haircut_shares_by_hand():
    game = ADLGame(load_scenario("default").replace(**{"run.traders": 50}), two_pass=False)
    game.exchange.log.adl.append(
        step=[1, 1, 2],
        account=[5, 7, 5],
        haircut=[10.0, 4.0, 6.0],
        equity=[100.0, 40.0, 80.0],
    )
    # account 5: (10 + 6) / 100 (its equity before its first haircut); account 7: 4 / 40
    np.testing.assert_allclose(haircut_shares(game, "run"), [0.16, 0.1])
    assert haircut_shares(game, "crisis").size == 0  # no crisis yet
    with pytest.raises(InputError, match=r"^scope: must be run or crisis"):
        haircut_shares(game, "wave")


def _reference_shares(adl: np.ndarray) -> np.ndarray:
    """Plain-Python reference: per account, haircuts summed over the first fill's equity."""
    out = {}
    for row in adl:  # reference implementation: a loop over log rows
        acc = int(row["account"])
        taken, equity = out.get(acc, (0.0, float(row["equity"])))
        out[acc] = (taken + float(row["haircut"]), equity)
    return np.array([t / e for _, (t, e) in sorted(out.items()) if e > 0])


def test_haircut_shares_match_a_reference_over_a_run_and_a_crisis():
    m = DashboardModel(**ADL_RUN)
    for _ in range(55):  # through crisis 1 (steps 21-30) into crisis 2 (51-60)
        m.step()
    assert latest_crisis_start(m.game) == 51
    adl = m.game.exchange.log.adl.to_array()
    assert set(adl["step"]) & set(range(21, 31)) and set(adl["step"]) & set(range(51, 56))
    np.testing.assert_allclose(haircut_shares(m, "run"), _reference_shares(adl))
    np.testing.assert_allclose(
        haircut_shares(m, "crisis"), _reference_shares(adl[adl["step"] >= 51])
    )
    # the ADL log's step is the game's step (the exchange steps once per game step)
    assert m.game.exchange.step_no == m.game.t


def test_latest_crisis_start_in_calm_is_the_last_crisis():
    m = DashboardModel(**SMALL)
    for _ in range(20):
        m.step()
    assert latest_crisis_start(m.game) is None
    for _ in range(15):
        m.step()
    assert m.game.phase == "calm"
    assert latest_crisis_start(m.game) == 21


# ---------------------------------------------------------------------- components
def test_keep_last_good_refuses_an_error_model_and_keeps_the_game():
    from viz.dashboard_app import KeepLastGood

    good = DashboardModel(**SMALL)
    r = KeepLastGood(good)
    good.step()
    r.set(DashboardModel(whale=0.9, flipper=0.3))
    assert r.value is good and r.value.game.t == 1
    assert r.refused.value.startswith("scenario.mix: must be ")
    r.value.step()  # the kept game still plays
    assert r.value.game.t == 2
    fresh = DashboardModel(policy="pro_rata", **SMALL)
    r.set(fresh)
    assert r.value is fresh and r.refused.value is None


def test_components_render():
    import ipyvuetify as v
    import ipywidgets
    import solara

    from viz import dashboard_app as app

    _, rc = solara.render(app.Page(), handle_error=False)
    assert len(rc.find(ipywidgets.Image).widgets) == len(app.COMPONENTS) == 6
    status = rc.find(v.Html, class_="adl-status").widget.children[0]
    assert status.startswith("Policy hyperliquid · severity full · step 0 / 140")
    rc.close()

    model = app.KeepLastGood(DashboardModel(**SMALL))
    _, rc = solara.render(app.Status(model), handle_error=False)
    model.set(DashboardModel(traders=-5))
    alert = rc.find(v.Alert, class_="adl-error").widget
    assert alert.children[0].startswith("scenario.run.traders: must be an integer")
    assert "previous game is kept" in alert.children[0]
    rc.close()


def test_plot_components_draw_pngs():
    from viz import dashboard_app as app

    m = DashboardModel(**ADL_RUN)
    for _ in range(31):
        m.step()
    assert haircut_shares(m).size > 0
    for component in (app.HaircutHistogram, app.FlipperSharePlot, app.RetentionPlot):
        element = component(m)
        fig = element.args[0] if element.args else element.kwargs["figure"]
        ax = fig.axes[0]
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    hist = app.HaircutHistogram(m)
    fig = hist.args[0] if hist.args else hist.kwargs["figure"]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == f"run so far ({haircut_shares(m).size})"


# ---------------------------------------------------------------------- command line
def test_cli_options_defaults():
    p = build_parser(add_viz_commands)
    args = p.parse_args(["dashboard"])
    assert (args.port, args.host) == (dashboard.DEFAULT_PORT, dashboard.DEFAULT_HOST)
    assert (args.port, args.host) == (8765, "127.0.0.1")
    args = p.parse_args(["dashboard", "--port", "9001", "--host", "0.0.0.0"])
    assert (args.port, args.host) == (9001, "0.0.0.0")


def test_cli_refuses_a_port_out_of_range(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser(add_viz_commands).parse_args(["dashboard", "--port", "70000"])
    assert exc.value.code == 2
    assert "--port" in capsys.readouterr().err


@pytest.mark.parametrize("port", [0, -1, 65536, True, "8765", 80.0])
def test_command_refuses_a_bad_port(port):
    with pytest.raises(InputError, match=r"^--port: must be an integer in 1\.\.65535"):
        dashboard.command(argparse.Namespace(port=port, host="127.0.0.1"))


def test_command_refuses_a_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=r"^--port: must be a port no other program is using"):
            dashboard.command(argparse.Namespace(port=port, host="127.0.0.1"))


def test_command_refuses_an_empty_host():
    with pytest.raises(InputError, match=r"^--host: must be an address"):
        dashboard.command(argparse.Namespace(port=8765, host=" "))


def test_solara_args_serve_the_app_offline():
    args = dashboard.solara_args("127.0.0.1", 9000)
    assert args[0] == "viz.dashboard_app"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "9000"
    for flag in ("--production", "--no-open", "--no-check-version"):
        assert flag in args


def test_finished_run_shows_the_run_result_of_summary_json():
    from experiments.game.model import ADLGame
    from experiments.runs.results import RunResult

    m = DashboardModel(**ADL_RUN)
    assert m.result() is None  # not finished yet
    while m.running:
        m.step()
    got = m.result()
    assert got is m.result()  # computed once
    # the same figures a plain run of the same game gives (what summary.json holds)
    game = ADLGame(
        m.scenario,
        seed=int(m.params["seed"]),
        policy=m.params["policy"],
        severity=m.params["severity"],
        two_pass=False,
    )
    game.run()
    want = RunResult.from_game(game)
    for key in ("total_deficit", "adl_raised", "accounts_touched", "retention", "fee_revenue"):
        assert got[key] == want[key]
