"""Loss-transfer graphs (viz.graph): hand-computed edges, a real run, GraphML, PNG, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import build_parser
from experiments.game.scenario import load_scenario
from experiments.runs.results import EXTRA_FILES, run_game
from market.errors import InputError
from viz import graph as vg
from viz.cli import add_viz_commands

# ---------------------------------------------------------------------- a hand-built run
# step 5, wave 7 (market 0): bankrupt 10 (deficit 100 = backstop 20 + adl 60 + residual 20)
# and 11 (50 = 10 + 40 + 0); A = 100.  Payers 20 (whale) 50, 21 and 22 (one Sybil owner,
# group 21) 50 and 25: R = 125, so a lot surplus of 25 went to the fund.
# step 9, waves 8 (market 0, deficit 30) and 9 (market 1, deficit 10): bankrupt 12
# (100 = 40 + 40 + 20); payer 20 pays 30 in wave 8, payer 23 pays 10 in wave 9; R = A = 40.
PAYERS = {  # (step, wave, market, account, dollars, equity, type, group)
    "rows": [
        (5, 7, 0, 20, 50.0, 500.0, "whale", 20),
        (5, 7, 0, 21, 50.0, 200.0, "sybil", 21),
        (5, 7, 0, 22, 25.0, 100.0, "sybil", 21),
        (9, 8, 0, 20, 30.0, 450.0, "whale", 20),
        (9, 9, 1, 23, 10.0, 300.0, "passive", 23),
    ]
}


def _adl_events(rows) -> pd.DataFrame:
    cols = ["step", "wave", "market", "account", "dollars", "equity", "agent_type", "group"]
    df = pd.DataFrame(rows, columns=cols)
    df["lots"] = 1
    df["price"] = 100.0
    df["mark"] = 99.0
    df["capacity"] = df["dollars"] * 2
    df["from_gains"] = df["dollars"]
    df["from_principal"] = 0.0
    df["layer"] = "gains"
    df["crisis"] = 0
    return df.astype({"market": np.int16})


def write_hand_run(path: Path, *, accounts: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _adl_events(PAYERS["rows"]).to_parquet(path / "adl_events.parquet", index=False)
    pd.DataFrame(
        {
            "step": [5, 5, 9],
            "account": [10, 11, 12],
            "deficit": [100.0, 50.0, 100.0],
            "backstop": [20.0, 10.0, 40.0],
            "adl": [60.0, 40.0, 40.0],
            "residual": [20.0, 0.0, 20.0],
        }
    ).to_parquet(path / "bankruptcies.parquet", index=False)
    pd.DataFrame(
        {
            "step": [5, 9, 9],
            "wave": [7, 8, 9],
            "market": np.array([0, 0, 1], dtype=np.int16),
            "deficit": [100.0, 30.0, 10.0],
            "theta": 1.0,
            "budget": [100.0, 30.0, 10.0],
            "raised": [125.0, 30.0, 10.0],
            "overshoot": [25.0, 0.0, 0.0],
            "residual": 0.0,
        }
    ).to_parquet(path / "waves.parquet", index=False)
    if accounts:
        types = ["book"] + ["passive"] * 23
        types[11] = types[20] = "whale"
        types[21] = types[22] = "sybil"
        group = np.arange(24)
        group[22] = 21
        pd.DataFrame(
            {
                "account": np.arange(24),
                "agent_type": types,
                "group": group,
                "owner": np.arange(24) - 1,
                "flags": np.ones(24, dtype=np.uint8),
            }
        ).to_parquet(path / "accounts.parquet", index=False)
    (path / "summary.json").write_text(json.dumps({"seed": 7, "policy": "pro_rata"}))
    return path


@pytest.fixture
def hand_run(tmp_path) -> Path:
    return write_hand_run(tmp_path / "run")


def _w(G, u, v) -> float:
    return G.edges[u, v]["weight"]


def _in_money(G, n) -> float:
    return sum(d["weight"] for _, _, d in G.in_edges(n, data=True) if d["kind"] != "same_owner")


def test_hand_built_wave_edges_are_the_hand_computed_dollars(hand_run):
    run = vg.load_run(hand_run)
    assert vg.wave_ids(run) == [7, 8, 9]
    G = vg.transfer_graph(run, 7)
    # bankrupt -> payer: d_p * adl_i / R with R = 125
    assert _w(G, 10, 20) == pytest.approx(24.0)
    assert _w(G, 10, 21) == pytest.approx(24.0)
    assert _w(G, 10, 22) == pytest.approx(12.0)
    assert _w(G, 11, 20) == pytest.approx(16.0)
    assert _w(G, 11, 21) == pytest.approx(16.0)
    assert _w(G, 11, 22) == pytest.approx(8.0)
    # the lot surplus R - A = 25 went to the fund: backstop -> payer, d_p * 25 / 125
    assert _w(G, "backstop", 20) == pytest.approx(10.0)
    assert _w(G, "backstop", 22) == pytest.approx(5.0)
    assert G.edges["backstop", 20]["kind"] == "surplus"
    # bankrupt -> backstop and bad debt (one wave in the step: all of it)
    assert _w(G, 10, "backstop") == pytest.approx(20.0)
    assert _w(G, 11, "backstop") == pytest.approx(10.0)
    assert _w(G, 10, "bad_debt") == pytest.approx(20.0)
    assert not G.has_edge(11, "bad_debt")
    # Σ in = what each paid; Σ adl out = its adl; all out = its deficit
    for acc, paid in ((20, 50.0), (21, 50.0), (22, 25.0)):
        assert _in_money(G, acc) == pytest.approx(paid)
        assert G.nodes[acc]["dollars"] == pytest.approx(paid)
    for acc, adl, deficit in ((10, 60.0, 100.0), (11, 40.0, 50.0)):
        out = G.out_edges(acc, data=True)
        assert sum(d["weight"] for _, _, d in out if d["kind"] == "adl") == pytest.approx(adl)
        assert sum(d["weight"] for _, _, d in out) == pytest.approx(deficit)
    # node attributes
    assert {"kind": "bankrupt", "agent_type": "passive", "group": 10}.items() <= G.nodes[10].items()
    assert G.nodes[11]["agent_type"] == "whale"
    assert G.nodes[20]["kind"] == "payer"
    assert G.nodes[20]["equity"] == 500.0
    assert G.nodes[21]["agent_type"] == "sybil"
    assert G.nodes[22]["group"] == 21
    assert G.nodes["backstop"]["kind"] == "backstop"
    assert G.nodes["backstop"]["dollars"] == pytest.approx(30.0)
    assert G.nodes["bad_debt"]["dollars"] == pytest.approx(20.0)
    assert G.graph["step"] == 5 and G.graph["seed"] == "7" and G.graph["policy"] == "pro_rata"
    # the Sybil owner's two accounts: one zero-weight same-owner link, one component
    assert G.edges[21, 22] == {"weight": 0.0, "kind": "same_owner", "same_owner": True}
    assert vg.sybil_components(G) == [{21, 22}]
    assert G.number_of_nodes() == 7
    assert G.number_of_edges() == 6 + 3 + 3 + 1


def test_a_step_with_two_waves_splits_backstop_and_bad_debt_by_deficit_share(hand_run):
    run = vg.load_run(hand_run)
    g8, g9 = vg.transfer_graph(run, 8), vg.transfer_graph(run, 9)
    # wave shares of step 9: 30 / 40 and 10 / 40; ADL edges follow what was paid per wave
    assert _w(g8, 12, 20) == pytest.approx(30.0)
    assert _w(g8, 12, "backstop") == pytest.approx(30.0)
    assert _w(g8, 12, "bad_debt") == pytest.approx(15.0)
    assert _w(g9, 12, 23) == pytest.approx(10.0)
    assert _w(g9, 12, "backstop") == pytest.approx(10.0)
    assert _w(g9, 12, "bad_debt") == pytest.approx(5.0)
    total = sum(d["weight"] for g in (g8, g9) for _, _, d in g.edges(data=True))
    assert total == pytest.approx(100.0)  # the step's deficit, no surplus (R = A)
    assert vg.sybil_components(g8) == []
    assert g9.graph["market"] == 1


def test_the_all_graph_adds_the_waves_up(hand_run):
    run = vg.load_run(hand_run)
    G = vg.transfer_graph(run, None)
    assert G.nodes[20]["dollars"] == pytest.approx(80.0)  # 50 in wave 7 + 30 in wave 8
    assert G.nodes[20]["waves_paid"] == 2
    assert G.nodes[20]["equity"] == 500.0  # before its first haircut
    assert _w(G, 12, "backstop") == pytest.approx(40.0)
    assert _w(G, 10, "backstop") == pytest.approx(20.0)
    money = sum(d["weight"] for _, _, d in G.edges(data=True))
    assert money == pytest.approx(100 + 50 + 100 + 25)  # deficits + the lot surplus
    assert G.graph["wave"] == -1 and G.graph["waves"] == 3


def test_a_run_without_accounts_table_still_types_the_payers(tmp_path):
    run = vg.load_run(write_hand_run(tmp_path / "old", accounts=False))
    G = vg.transfer_graph(run, 7)
    assert G.nodes[10]["agent_type"] == "unknown"
    assert G.nodes[10]["group"] == -1
    assert G.nodes[21]["agent_type"] == "sybil"
    assert vg.sybil_components(G) == [{21, 22}]


def test_same_owner_link_on_existing_money_edges_marks_them():
    G = nx.DiGraph()
    G.add_edge(1, 2, weight=3.0, kind="adl", same_owner=False)
    G.add_edge(2, 1, weight=1.0, kind="adl", same_owner=False)
    G.add_node(3)
    info = pd.DataFrame({"group": [1, 1, 3]}, index=[1, 2, 3])
    vg._add_same_owner(G, info)
    assert G.number_of_edges() == 2
    assert G.edges[1, 2]["weight"] == 3.0 and G.edges[1, 2]["same_owner"]
    assert vg.sybil_components(G) == [{1, 2}]


# ---------------------------------------------------------------------- property
@settings(max_examples=40, deadline=None)
@given(
    deficits=st.lists(st.floats(1.0, 1e4), min_size=1, max_size=4),
    cover=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=4, max_size=4),
    pays=st.lists(st.floats(0.01, 1e4), min_size=1, max_size=6),
    waves=st.integers(1, 3),
    surplus=st.floats(0.0, 0.2),
)
def test_edges_account_for_every_dollar(deficits, cover, pays, waves, surplus):
    n = len(deficits)
    d = np.array(deficits)
    b_frac = np.array([c[0] for c in cover[:n]])
    a_frac = np.array([c[1] for c in cover[:n]]) * (1 - b_frac)
    backstop, adl = d * b_frac, d * a_frac
    residual = d - backstop - adl
    A = adl.sum()
    pay = np.array(pays)
    pay = pay / pay.sum() * A * (1 + surplus) if A > 0 else pay * 0
    bk = pd.DataFrame(
        {
            "step": 1,
            "account": np.arange(n),
            "deficit": d,
            "backstop": backstop,
            "adl": adl,
            "residual": residual,
        }
    )
    wv = np.arange(len(pay)) % waves + 1
    ev = pd.DataFrame(
        {
            "step": 1,
            "wave": wv,
            "account": 100 + np.arange(len(pay)),
            "dollars": pay,
            "equity": 1.0,
            "agent_type": "passive",
            "group": 100 + np.arange(len(pay)),
        }
    )
    ev = ev[ev["dollars"] > 0]
    wdf = pd.DataFrame(
        {
            "step": 1,
            "wave": np.arange(1, waves + 1),
            "market": np.arange(waves),
            "deficit": np.arange(1, waves + 1, dtype=float),
        }
    )
    run = vg.Run(Path("."), ev, bk, wdf, pd.DataFrame({"account": [], "agent_type": []}))
    edges = vg.edge_table(run)
    tol = 1e-9 * (d.sum() + pay.sum())
    by_target = edges[edges["kind"].isin(["adl", "surplus"])].groupby("target")["weight"].sum()
    paid = ev.set_index("account")["dollars"]
    assert np.allclose(by_target.reindex(paid.index, fill_value=0.0), paid, atol=tol)
    flow = edges[edges["kind"] != "surplus"].groupby("source")["weight"].sum()
    assert np.allclose(flow.reindex(range(n), fill_value=0.0), d, atol=tol)
    adl_out = edges[edges["kind"] == "adl"].groupby("source")["weight"].sum()
    if pay.sum() > 0:
        assert np.allclose(adl_out.reindex(range(n), fill_value=0.0), adl, atol=tol)
    assert (edges["weight"] > 0).all()


# ---------------------------------------------------------------------- a real game
@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    sc = load_scenario().replace(
        **{
            "run.traders": 300,
            "run.crises": 2,
            "run.calm_steps": 6,
            "run.crisis_steps": 6,
            "mix.flipper": 0.1,
            "mix.sybil": 0.05,
            "mix.whale": 0.05,
            "market.markets": 2,
        }
    )
    out = tmp_path_factory.mktemp("graph") / "run"
    run_game(sc, seed=3, policy="pro_rata", severity=None, out=out)
    return out


def test_run_writes_an_accounts_table(real_run):
    assert "accounts.parquet" in EXTRA_FILES
    acc = pd.read_parquet(real_run / "accounts.parquet")
    assert list(acc.columns) == ["account", "agent_type", "group", "owner", "flags"]
    assert acc["account"].tolist() == list(range(len(acc)))
    assert acc.loc[0, "agent_type"] == "book" and acc.loc[0, "owner"] == -1
    ev = pd.read_parquet(real_run / "adl_events.parquet")
    merged = ev.merge(acc, on="account", suffixes=("_ev", ""))
    assert (merged["agent_type_ev"] == merged["agent_type"]).all()
    assert (merged["group_ev"] == merged["group"]).all()
    sybil = acc[acc["agent_type"] == "sybil"]
    assert (sybil.groupby("group").size() > 1).all()
    assert (sybil.groupby("group")["owner"].nunique() == 1).all()


def test_real_run_graphs_balance_the_logs(real_run):
    run = vg.load_run(real_run)
    ids = vg.wave_ids(run)
    assert len(ids) >= 2
    bk = pd.read_parquet(real_run / "bankruptcies.parquet").groupby("step")["deficit"].sum()
    ev = pd.read_parquet(real_run / "adl_events.parquet")
    per_step: dict[int, float] = {}
    surplus_step: dict[int, float] = {}
    multi = run.waves.groupby("step").size().max()
    assert multi >= 2  # the scenario has a step with two waves (two markets)
    sybils = 0
    for w in ids:
        G = vg.transfer_graph(run, w)
        paid = ev.loc[ev["wave"] == w].groupby("account")["dollars"].sum()
        for acc, dollars in paid.items():
            assert _in_money(G, acc) == pytest.approx(dollars, abs=1e-6)
        payer_in = sum(_in_money(G, n) for n, k in G.nodes(data="kind") if k == "payer")
        assert payer_in == pytest.approx(ev.loc[ev["wave"] == w, "dollars"].sum(), abs=1e-6)
        step = G.graph["step"]
        kinds = nx.get_edge_attributes(G, "kind")
        weights = nx.get_edge_attributes(G, "weight")
        per_step[step] = per_step.get(step, 0.0) + sum(
            weights[e] for e, k in kinds.items() if k in ("adl", "backstop", "bad_debt")
        )
        surplus_step[step] = surplus_step.get(step, 0.0) + sum(
            weights[e] for e, k in kinds.items() if k == "surplus"
        )
        sybils += len(vg.sybil_components(G))
        for comp in vg.sybil_components(G):
            assert len({G.nodes[n]["group"] for n in comp}) == 1
    for step, total in per_step.items():
        assert total == pytest.approx(bk[step], abs=1e-6)
        raised = ev.loc[ev["step"] == step, "dollars"].sum()
        adl = run.bankruptcies.loc[run.bankruptcies["step"] == step, "adl"].sum()
        assert surplus_step[step] == pytest.approx(max(raised - adl, 0.0), abs=1e-6)
    assert sybils > 0


def test_graphml_round_trips_and_png_is_drawn(real_run, tmp_path):
    run = vg.load_run(real_run)
    for w in (vg.wave_ids(run)[0], None):
        G = vg.transfer_graph(run, w)
        path = vg.export_graphml(G, tmp_path / f"g{w}.graphml")
        H = nx.read_graphml(path)
        assert H.number_of_nodes() == G.number_of_nodes()
        assert H.number_of_edges() == G.number_of_edges()
        assert H.size(weight="weight") == pytest.approx(G.size(weight="weight"), rel=1e-12)
        some = next(n for n, k in G.nodes(data="kind") if k == "payer")
        assert H.nodes[str(some)]["account"] == some
        assert H.nodes[str(some)]["equity"] == pytest.approx(G.nodes[some]["equity"])
        assert H.graph["policy"] == "pro_rata"
    png = vg.draw_graph(G, tmp_path / "all.png")
    img = mpimg.imread(png)
    grey = img[..., :3].mean(axis=2)
    ink = (grey < 0.9).mean()
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert 0.01 < ink < 0.9


# ---------------------------------------------------------------------- command
def _args(run_dir, wave=None, out=None) -> argparse.Namespace:
    parser = build_parser(add_viz_commands)
    argv = ["graph", str(run_dir)]
    if wave is not None:
        argv += ["--wave", str(wave)]
    if out is not None:
        argv += ["--out", str(out)]
    return parser.parse_args(argv)


def test_command_writes_one_pair_per_wave_and_all(hand_run, capsys):
    before = sorted(p.name for p in hand_run.iterdir())
    assert vg.command(_args(hand_run)) == 0
    assert sorted(p.name for p in hand_run.iterdir()) == before  # the run folder is untouched
    names = sorted(p.name for p in vg.default_out(hand_run).iterdir())
    assert names == [
        "all.graphml",
        "all.png",
        "wave_007.graphml",
        "wave_007.png",
        "wave_008.graphml",
        "wave_008.png",
        "wave_009.graphml",
        "wave_009.png",
    ]
    assert "4 graphs" in capsys.readouterr().out


def test_command_one_wave_to_an_out_folder(hand_run, tmp_path):
    out = tmp_path / "figs"
    assert vg.command(_args(hand_run, wave=8, out=out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["wave_008.graphml", "wave_008.png"]
    H = nx.read_graphml(out / "wave_008.graphml")
    assert H.edges["12", "20"]["weight"] == pytest.approx(30.0)


def test_command_without_waves_says_so_and_writes_nothing(tmp_path, capsys):
    run_dir = write_hand_run(tmp_path / "calm")
    for name in ("adl_events", "waves"):
        df = pd.read_parquet(run_dir / f"{name}.parquet")
        df.iloc[:0].to_parquet(run_dir / f"{name}.parquet", index=False)
    before = sorted(p.name for p in run_dir.iterdir())
    assert vg.command(_args(run_dir)) == 0
    assert vg.command(_args(run_dir, wave=3)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and "no ADL wave" in out[0]
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.parametrize(
    ("make", "wave", "field", "needle"),
    [
        (lambda p: p / "missing", None, "run_dir", "existing folder"),
        (lambda p: p, None, "run_dir", "adl_events.parquet"),
        (lambda p: write_hand_run(p / "r"), 4, "--wave", "one of 7..9"),
        (lambda p: write_hand_run(p / "r"), 10, "--wave", "one of 7..9"),
    ],
)
def test_command_bad_input_names_the_field(tmp_path, make, wave, field, needle):
    run_dir = make(tmp_path)
    with pytest.raises(InputError) as err:
        vg.command(_args(run_dir, wave=wave))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: must be")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
    if run_dir.is_dir():
        assert not vg.default_out(run_dir).exists()


def test_command_out_must_not_be_a_file(hand_run, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InputError, match="--out"):
        vg.command(_args(hand_run, out=f))
    assert f.read_text() == "x"
