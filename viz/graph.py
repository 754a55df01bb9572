"""Loss-transfer graphs: who paid for whose bankruptcy, wave by wave (``adlgame graph``).

Model
-----
A *wave* is one row of ``waves.parquet``: one (step, wave id) pair.  Wave ids are numbered
by the exchange across the whole run (1, 2, ...), and each wave belongs to one market; a step
whose bankrupt accounts held positions in several markets runs one wave per market, so a step
may have several waves.  The graph of a wave is a :class:`networkx.DiGraph` whose edges point
from where a loss came from to who bore it, weighted in dollars (edge attribute ``weight``,
with ``kind`` naming the flow):

- ``adl``: bankrupt account ``i`` -> payer ``p``.  The loss that reached ADL in the step is
  owed by the step's bankrupt accounts in proportion to their ``adl`` column of
  ``bankruptcies.parquet`` (A = Σ adl).  What payer ``p`` paid in the wave (d_p, its
  ``dollars`` in ``adl_events.parquet``) is split over those sources:
  ``w(i, p) = d_p · adl_i / R``, with R the ADL dollars raised in the whole step.
- ``surplus``: ``"backstop"`` -> payer ``p``, ``w = d_p · (R - A) / R``.  Lot rounding makes
  ADL raise a little more than the holes needed; the exchange sends that surplus to the
  insurance fund, so that part of a payer's loss went to the backstop, not to a bankrupt.
- ``backstop``: bankrupt ``i`` -> ``"backstop"``, the dollars of ``i``'s hole the backstop
  absorbed; ``bad_debt``: bankrupt ``i`` -> ``"bad_debt"``, the part written off (residual),
  only when > 0.  When a step has several waves these two are split over the waves in
  proportion to the waves' ``deficit`` column (each market's share of the step's deficit;
  equal shares if those are all zero).
- ``same_owner``: weight 0 between two accounts of one owner group (a Sybil owner's
  accounts), chained in account order; they make each group a weakly connected component of
  the graph restricted to same-owner links (:func:`sybil_components`).  Every edge carries a
  boolean ``same_owner``; when two accounts of one owner are already joined by a money edge in
  both directions, that edge is marked instead of adding a parallel one.

Hence, exactly (up to float rounding): Σ in-edges of a payer = what it paid in the wave; Σ
``adl`` out-edges of a bankrupt account = its ``adl`` share assigned to this wave
(``adl_i · R_wave / R``), which over the step's waves adds to ``adl_i``; and over the waves
of a step the ``adl`` + ``backstop`` + ``bad_debt`` edges add to the step's bankruptcy
deficit, while ``surplus`` edges add to ``R - A``.

Nodes are account ids (int) plus the strings ``"backstop"`` and ``"bad_debt"``.  Node
attributes: ``kind`` ("bankrupt", "payer", "backstop", "bad_debt"), ``agent_type`` (from
``accounts.parquet``; "unknown" for a bankrupt account of a run written before that table
existed), ``group`` (owner group, -1 for the two special nodes), ``account`` (-1 for them),
``equity`` (payers: equity before the haircut), ``dollars_in``, ``dollars_out`` and
``dollars`` (what a payer paid, what a bankrupt account passed on, what the backstop absorbed
or was written off).  ``transfer_graph(run, None)`` is the ``all`` aggregate: the wave graphs
of the whole run added edge by edge (steps with bankruptcies but no ADL wave are not in it);
an account that was bankrupt in one wave and paid in another is ``kind="bankrupt"`` there,
with both dollar totals, and a payer's ``equity`` is the one before its first haircut.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from market.errors import require

#: Files a folder needs to be read as an ``adlgame run`` output.
REQUIRED_FILES = ("adl_events.parquet", "bankruptcies.parquet", "waves.parquet")
#: Without ``--wave``: at most this many wave files (the largest by dollars raised).
MAX_WAVE_FILES = 24
#: Most account nodes drawn per column of a PNG (the rest are counted in the subtitle).
MAX_DRAWN_PAYERS = 60
MAX_DRAWN_SOURCES = 40
#: Owner groups always drawn per column (the largest), outlined.
MAX_DRAWN_GROUPS = 6
BACKSTOP = "backstop"
BAD_DEBT = "bad_debt"
_SPECIAL_ID = {BACKSTOP: -1, BAD_DEBT: -2}
_SPECIAL_NAME = {v: k for k, v in _SPECIAL_ID.items()}
#: Marker shape and grey shade per agent type (legible in greyscale).
STYLE: dict[str, tuple[str, str]] = {
    "passive": ("o", "#ffffff"),
    "whale": ("s", "#202020"),
    "flipper": ("^", "#909090"),
    "sybil": ("D", "#c8c8c8"),
    "entrant": ("v", "#585858"),
    "vault": ("h", "#404040"),
    "book": ("P", "#707070"),
    "other": ("p", "#b0b0b0"),
    "unknown": ("8", "#e4e4e4"),
    BACKSTOP: ("*", "#000000"),
    BAD_DEBT: ("X", "#000000"),
}
_EDGE_COLUMNS = {
    "step": np.int64,
    "wave": np.int64,
    "source": np.int64,
    "target": np.int64,
    "weight": np.float64,
    "kind": object,
}
_EDGE_STYLE = {
    "adl": ("solid", "#303030"),
    "surplus": ((0, (5, 1, 1, 1)), "#606060"),
    "backstop": ("dashed", "#808080"),
    "bad_debt": ("dotted", "#000000"),
}


@dataclass
class Run:
    """The tables of one run folder that the graphs read (see :func:`load_run`)."""

    path: Path
    adl: pd.DataFrame
    bankruptcies: pd.DataFrame
    waves: pd.DataFrame
    accounts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def load_run(run_dir: str | Path) -> Run:
    """Read an ``adlgame run`` folder; ``InputError`` naming ``run_dir`` if it is not one."""
    path = Path(run_dir)
    require(path.is_dir(), "run_dir", "an existing folder written by 'adlgame run'", str(path))
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    require(
        not missing,
        "run_dir",
        "an 'adlgame run' output folder (with " + ", ".join(REQUIRED_FILES) + ")",
        f"{path} lacks {', '.join(missing)}",
    )
    adl = pd.read_parquet(path / "adl_events.parquet")
    bk = pd.read_parquet(path / "bankruptcies.parquet")
    waves = pd.read_parquet(path / "waves.parquet")
    acc_path = path / "accounts.parquet"
    if acc_path.is_file():
        accounts = pd.read_parquet(acc_path)
    else:  # a run written before accounts.parquet existed: payers are typed by adl_events
        accounts = pd.DataFrame(
            {"account": pd.Series(dtype=np.int64), "agent_type": pd.Series(dtype=object)}
        )
    summary: dict[str, Any] = {}
    if (path / "summary.json").is_file():
        try:
            summary = json.loads((path / "summary.json").read_text())
        except ValueError:
            summary = {}
    for name, frame, cols in (
        ("adl_events.parquet", adl, ("step", "wave", "account", "dollars")),
        ("bankruptcies.parquet", bk, ("step", "account", "deficit", "backstop", "adl")),
        ("waves.parquet", waves, ("step", "wave", "market", "deficit")),
    ):
        lack = [c for c in cols if c not in frame.columns]
        require(not lack, "run_dir", f"{name} with columns {', '.join(cols)}", str(lack))
    return Run(path, adl, bk, waves, accounts, summary)


def wave_ids(run: Run) -> list[int]:
    """The wave ids of the run, ascending (empty when the run had no ADL wave)."""
    ids = np.union1d(run.waves["wave"].to_numpy(), run.adl["wave"].to_numpy())
    return [int(w) for w in ids]


def _wave_shares(run: Run) -> pd.DataFrame:
    """step, wave and each wave's share of its step's deficit (equal if all zero)."""
    w = run.waves[["step", "wave", "market", "deficit"]].copy()
    tot = w.groupby("step")["deficit"].transform("sum")
    cnt = w.groupby("step")["deficit"].transform("size")
    w["share"] = np.where(tot > 0, w["deficit"] / tot.where(tot > 0, 1.0), 1.0 / cnt)
    return w


def edge_table(run: Run, waves: list[int] | None = None) -> pd.DataFrame:
    """Money edges of the given waves (None: all) as a frame, vectorised over the run.

    Columns: step, wave, source, target (account ids; -1 backstop, -2 bad debt), weight
    (dollars), kind ("adl", "surplus", "backstop", "bad_debt").  See the module docstring.
    """
    shares = _wave_shares(run)
    ev = run.adl
    if waves is not None:
        shares = shares[shares["wave"].isin(waves)]
        ev = ev[ev["wave"].isin(waves)]
    steps = shares["step"].unique()
    pay = ev.groupby(["step", "wave", "account"], as_index=False)["dollars"].sum()
    raised = run.adl.groupby("step")["dollars"].sum().rename("R")
    bk = run.bankruptcies[run.bankruptcies["step"].isin(steps)]
    bk = bk.groupby(["step", "account"], as_index=False)[
        ["deficit", "backstop", "adl", "residual"]
    ].sum()
    owed = bk.groupby("step")["adl"].sum().rename("A")
    pay = pay.join(raised, on="step").join(owed, on="step")
    pay["A"] = pay["A"].fillna(0.0)
    parts = []
    # bankrupt -> payer, pro rata the sources' adl column
    src = bk.loc[bk["adl"] > 0, ["step", "account", "adl"]].rename(columns={"account": "source"})
    adl_e = pay.merge(src, on="step")
    adl_e["weight"] = adl_e["dollars"] * adl_e["adl"] / adl_e["R"]
    adl_e = adl_e.rename(columns={"account": "target"})
    adl_e["kind"] = "adl"
    parts.append(adl_e[["step", "wave", "source", "target", "weight", "kind"]])
    # backstop -> payer: the lot-rounding surplus the exchange sent to the fund
    surplus = (pay["R"] - pay["A"]).clip(lower=0.0)
    keep = (pay["R"] > 0) & (surplus > 1e-9 * pay["R"])
    sur = pay.loc[keep, ["step", "wave", "account"]].rename(columns={"account": "target"})
    sur["source"] = _SPECIAL_ID[BACKSTOP]
    sur["weight"] = (pay["dollars"] * surplus / pay["R"])[keep]
    sur["kind"] = "surplus"
    parts.append(sur[["step", "wave", "source", "target", "weight", "kind"]])
    # bankrupt -> backstop / bad debt, split over the step's waves by deficit share
    per_wave = shares[["step", "wave", "share"]].merge(bk, on="step")
    for col, node in (("backstop", BACKSTOP), ("residual", BAD_DEBT)):
        part = per_wave.loc[per_wave[col] > 0, ["step", "wave", "account"]].rename(
            columns={"account": "source"}
        )
        part["target"] = _SPECIAL_ID[node]
        part["weight"] = (per_wave[col] * per_wave["share"])[per_wave[col] > 0]
        part["kind"] = node
        parts.append(part[["step", "wave", "source", "target", "weight", "kind"]])
    parts = [p for p in parts if len(p)]
    if not parts:
        parts = [pd.DataFrame({c: pd.Series(dtype=t) for c, t in _EDGE_COLUMNS.items()})]
    out = pd.concat(parts, ignore_index=True)
    out = out[out["weight"] > 0]
    return out.astype({"source": np.int64, "target": np.int64}).reset_index(drop=True)


def _node_id(x: int) -> int | str:
    return _SPECIAL_NAME.get(int(x), int(x))


def _account_info(run: Run, ids: np.ndarray) -> pd.DataFrame:
    """agent_type and group per account id (accounts table first, then adl_events)."""
    info = pd.DataFrame({"account": ids})
    acc = run.accounts
    cols = [c for c in ("account", "agent_type", "group", "owner") if c in acc.columns]
    info = info.merge(acc[cols], on="account", how="left")
    ev = run.adl.drop_duplicates("account")[
        [c for c in ("account", "agent_type", "group") if c in run.adl.columns]
    ]
    info = info.merge(ev, on="account", how="left", suffixes=("", "_ev"))
    for col in ("agent_type", "group"):
        if f"{col}_ev" in info.columns:
            base = info[col] if col in info.columns else pd.Series(np.nan, index=info.index)
            info[col] = base.where(base.notna(), info[f"{col}_ev"])
    if "agent_type" not in info.columns:
        info["agent_type"] = "unknown"
    info["agent_type"] = info["agent_type"].fillna("unknown").astype(str)
    if "group" not in info.columns:
        info["group"] = -1
    info["group"] = info["group"].fillna(-1).astype(np.int64)
    if "owner" in info.columns:
        info["owner"] = info["owner"].fillna(-1).astype(np.int64)
    return info


def transfer_graph(run: Run, wave: int | None) -> nx.DiGraph:
    """The loss-transfer graph of one wave (``None``: all waves added up); see the module doc.

    Raises ``InputError`` naming ``--wave`` when ``wave`` is not a wave id of the run.
    """
    ids = wave_ids(run)
    if wave is not None:
        require(wave in ids, "--wave", _allowed_waves(ids), wave)
    edges = edge_table(run, None if wave is None else [int(wave)])
    if wave is None:
        edges = edges.groupby(["source", "target", "kind"], as_index=False)["weight"].sum()
    G = nx.DiGraph()
    pay_ev = run.adl if wave is None else run.adl[run.adl["wave"] == wave]
    # nodes
    money_out = edges.groupby("source")["weight"].sum()
    money_in = edges.groupby("target")["weight"].sum()
    bankrupt = np.unique(edges.loc[edges["kind"].isin(["adl", BACKSTOP, BAD_DEBT]), "source"])
    bankrupt = bankrupt[bankrupt >= 0]
    payers = np.setdiff1d(
        np.unique(edges.loc[edges["kind"].isin(["adl", "surplus"]), "target"]), bankrupt
    )
    accounts = np.concatenate([bankrupt, payers]).astype(np.int64)
    info = _account_info(run, accounts).set_index("account")
    rows = info.to_dict("index")
    first = pay_ev.sort_values(["step", "wave"]).drop_duplicates("account").set_index("account")
    equity = first["equity"].to_dict() if "equity" in first.columns else {}
    n_waves = pay_ev.groupby("account")["wave"].nunique()
    is_bankrupt = set(bankrupt.tolist())
    for acc in accounts.tolist():
        row = rows[acc]
        attrs: dict[str, Any] = {
            "kind": "bankrupt" if acc in is_bankrupt else "payer",
            "agent_type": str(row["agent_type"]),
            "group": int(row["group"]),
            "account": int(acc),
            "dollars_in": float(money_in.get(acc, 0.0)),
            "dollars_out": float(money_out.get(acc, 0.0)),
        }
        if "owner" in info.columns:
            attrs["owner"] = int(row["owner"])
        if acc in equity:
            attrs["equity"] = float(equity[acc])
            attrs["waves_paid"] = int(n_waves.get(acc, 0))
        attrs["dollars"] = (
            attrs["dollars_out"] if attrs["kind"] == "bankrupt" else attrs["dollars_in"]
        )
        G.add_node(acc, **attrs)
    for name in (BACKSTOP, BAD_DEBT):
        nid = _SPECIAL_ID[name]
        if nid in money_in.index or nid in money_out.index:
            G.add_node(
                name,
                kind=name,
                agent_type=name,
                group=-1,
                account=-1,
                dollars_in=float(money_in.get(nid, 0.0)),
                dollars_out=float(money_out.get(nid, 0.0)),
                dollars=float(money_in.get(nid, 0.0)),
            )
    for s, t, w, k in zip(
        edges["source"].tolist(),
        edges["target"].tolist(),
        edges["weight"].tolist(),
        edges["kind"].tolist(),
    ):
        G.add_edge(_node_id(s), _node_id(t), weight=float(w), kind=k, same_owner=False)
    _add_same_owner(G, info)
    _graph_attrs(G, run, wave, edges)
    return G


def _add_same_owner(G: nx.DiGraph, info: pd.DataFrame) -> None:
    """Chain the accounts of each owner group with >1 accounts in the graph (weight 0)."""
    grp = info["group"]
    grp = grp[grp >= 0].sort_index(kind="stable")
    order = grp.sort_values(kind="stable")
    acc = order.index.to_numpy()
    g = order.to_numpy()
    link = np.flatnonzero(g[1:] == g[:-1])
    for i in link.tolist():
        u, v = int(acc[i]), int(acc[i + 1])
        if not G.has_edge(u, v):
            G.add_edge(u, v, weight=0.0, kind="same_owner", same_owner=True)
        elif not G.has_edge(v, u):
            G.add_edge(v, u, weight=0.0, kind="same_owner", same_owner=True)
        else:
            G.edges[u, v]["same_owner"] = True


def _graph_attrs(G: nx.DiGraph, run: Run, wave: int | None, edges: pd.DataFrame) -> None:
    w = run.waves if wave is None else run.waves[run.waves["wave"] == wave]
    by_kind = edges.groupby("kind")["weight"].sum()
    G.graph.update(
        wave=-1 if wave is None else int(wave),
        label="all waves" if wave is None else f"wave {int(wave)}",
        step=int(w["step"].iloc[0]) if wave is not None and len(w) else -1,
        market=int(w["market"].iloc[0]) if wave is not None and len(w) else -1,
        waves=len(w),
        adl_dollars=float(by_kind.get("adl", 0.0)),
        surplus_dollars=float(by_kind.get("surplus", 0.0)),
        backstop_dollars=float(by_kind.get(BACKSTOP, 0.0)),
        bad_debt_dollars=float(by_kind.get(BAD_DEBT, 0.0)),
        paid_dollars=float(by_kind.get("adl", 0.0) + by_kind.get("surplus", 0.0)),
        seed=str(run.summary.get("seed", "?")),
        policy=str(run.summary.get("policy", "?")),
        severity=str(run.summary.get("severity", "?")),
        scenario=str(run.summary.get("scenario", "?")),
        run_dir=str(run.path),
    )
    if wave is not None and len(w) and "crisis" in run.adl.columns:
        cr = run.adl.loc[run.adl["wave"] == wave, "crisis"]
        G.graph["crisis"] = int(cr.iloc[0]) if len(cr) else -1


def sybil_components(G: nx.DiGraph) -> list[set]:
    """Owner groups with more than one account in ``G``: the weakly connected components of
    ``G`` restricted to same-owner links, largest first (ties by smallest account)."""
    links = [(u, v) for u, v, d in G.edges(data=True) if d.get("same_owner")]
    H = nx.DiGraph(links)
    comps = [set(c) for c in nx.weakly_connected_components(H) if len(c) > 1]
    return sorted(comps, key=lambda c: (-len(c), min(str(x) for x in c)))


def _allowed_waves(ids: list[int]) -> str:
    if not ids:
        return "a wave id of the run (this run has no ADL wave)"
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"one of {ids[0]}..{ids[-1]}"
    head = ", ".join(str(i) for i in ids[:12])
    return f"one of {head}" + (", ..." if len(ids) > 12 else "")


# ---------------------------------------------------------------------- drawing
def _money(x: float) -> str:
    ax = abs(x)
    if ax >= 1e6:
        return f"${x / 1e6:,.2f}M"
    if ax >= 1e3:
        return f"${x / 1e3:,.1f}k"
    return f"${x:,.2f}"


def _column_order(G: nx.DiGraph, nodes: list, comps: list[set], cap: int) -> tuple[list, int]:
    """Nodes of a column to draw, owner groups kept together, biggest clusters on top.

    At most ``cap`` nodes: up to ``MAX_DRAWN_GROUPS`` owner groups (largest in dollars) are
    always kept so that Sybil groups stay visible, the rest are the largest by dollars.
    """
    comp_of: dict[Any, int] = {}
    for i, c in enumerate(comps):
        for n in c:
            comp_of[n] = i
    clusters: dict[Any, list] = {}
    for n in nodes:
        clusters.setdefault(("c", comp_of[n]) if n in comp_of else ("n", n), []).append(n)

    def size(ms: list) -> float:
        return sum(G.nodes[m]["dollars"] for m in ms)

    ranked = sorted(clusters.items(), key=lambda kv: (-size(kv[1]), str(kv[0])))
    groups = [kv for kv in ranked if kv[0][0] == "c" and len(kv[1]) > 1][:MAX_DRAWN_GROUPS]
    chosen = {kv[0] for kv in groups}
    room = cap - sum(len(kv[1]) for kv in groups)
    for key, ms in ranked:
        if key in chosen:
            continue
        if len(ms) > room:
            continue
        chosen.add(key)
        room -= len(ms)
    order = [
        m
        for key, ms in ranked
        if key in chosen
        for m in sorted(ms, key=lambda m: (-G.nodes[m]["dollars"], str(m)))
    ]
    return order, len(nodes) - len(order)


def draw_graph(G: nx.DiGraph, path_png: str | Path, title: str | None = None) -> Path:
    """Draw ``G`` to a PNG: bankrupt accounts left, backstop and bad debt centre, payers right.

    Marker shape and grey shade give the agent type (legend), edge width the dollars, line
    style the flow kind; accounts of one owner sit together inside a dashed outline.  The
    subtitle names the run's seed, policy, severity, step and the dollar balance.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch

    path_png = Path(path_png)
    comps = sybil_components(G)
    kinds = nx.get_node_attributes(G, "kind")
    sources = [n for n, k in kinds.items() if k == "bankrupt"]
    payers = [n for n, k in kinds.items() if k == "payer"]
    src_drawn, src_hidden = _column_order(G, sources, comps, MAX_DRAWN_SOURCES)
    pay_drawn, pay_hidden = _column_order(G, payers, comps, MAX_DRAWN_PAYERS)
    specials = [n for n in (BACKSTOP, BAD_DEBT) if n in G]
    rows = max(len(src_drawn), len(pay_drawn), 4)
    height = float(np.clip(3.0 + 0.18 * rows, 5.0, 16.0))
    fig, ax = plt.subplots(figsize=(11.0, height))
    pos: dict[Any, tuple[float, float]] = {}
    for x, col in ((0.0, src_drawn), (2.0, pay_drawn)):
        ys = np.linspace(1.0, 0.0, len(col)) if len(col) > 1 else np.array([0.5])
        for n, y in zip(col, ys):
            pos[n] = (x, float(y))
    for n, y in zip(specials, (0.75, 0.25) if len(specials) == 2 else (0.5,)):
        pos[n] = (1.0, y)
    drawn = set(pos)
    sub = G.subgraph(drawn)
    money = [(u, v, d) for u, v, d in sub.edges(data=True) if d["kind"] != "same_owner"]
    wmax = max((d["weight"] for _, _, d in money), default=1.0) or 1.0
    for kind, (style, colour) in _EDGE_STYLE.items():
        es = [(u, v) for u, v, d in money if d["kind"] == kind]
        if not es:
            continue
        widths = [0.3 + 6.0 * np.sqrt(sub.edges[e]["weight"] / wmax) for e in es]
        nx.draw_networkx_edges(
            sub,
            pos,
            edgelist=es,
            width=widths,
            edge_color=colour,
            style=style,
            alpha=0.45,
            arrows=False,
            ax=ax,
        )
    dmax = max((G.nodes[n]["dollars"] for n in drawn), default=1.0) or 1.0
    types_seen = []
    for t, (marker, shade) in STYLE.items():
        ns = [n for n in drawn if G.nodes[n]["agent_type"] == t]
        if not ns:
            continue
        types_seen.append(t)
        sizes = [25.0 + 175.0 * np.sqrt(G.nodes[n]["dollars"] / dmax) for n in ns]
        nx.draw_networkx_nodes(
            G,
            pos,
            nodelist=ns,
            node_shape=marker,
            node_color=shade,
            edgecolors="black",
            linewidths=0.8,
            node_size=sizes,
            ax=ax,
        )
    for n in drawn:
        x, y = pos[n]
        label = str(n) if n in specials else f"#{n}"
        label += f"  {_money(G.nodes[n]['dollars'])}"
        ha = "right" if x < 0.5 else "left" if x > 1.5 else "center"
        dx = -0.06 if x < 0.5 else 0.06 if x > 1.5 else 0.0
        dy = 0.0 if n not in specials else 0.05
        ax.text(x + dx, y + dy, label, fontsize=6.5, ha=ha, va="center", parse_math=False)
    for comp in comps:
        pts = np.array([pos[n] for n in comp if n in pos])
        if len(pts) < 2:
            continue
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        pad, pad_y = 0.035, 0.4 / max(rows - 1, 1)
        ax.add_patch(
            FancyBboxPatch(
                (x0 - pad, y0 - pad_y),
                x1 - x0 + 2 * pad,
                y1 - y0 + 2 * pad_y,
                boxstyle="round,pad=0.0",
                fill=False,
                linestyle="--",
                linewidth=1.0,
                edgecolor="black",
            )
        )
        grp = G.nodes[next(iter(comp))].get("group", -1)
        right = x0 < 0.5  # the side away from the account labels
        ax.text(
            x1 + pad + 0.01 if right else x0 - pad - 0.01,
            (y0 + y1) / 2,
            f"owner {grp}",
            fontsize=6,
            style="italic",
            ha="left" if right else "right",
            va="center",
        )
    handles = [
        Line2D(
            [],
            [],
            marker=STYLE[t][0],
            color="none",
            markerfacecolor=STYLE[t][1],
            markeredgecolor="black",
            markersize=8,
            label=t,
        )
        for t in types_seen
    ]
    handles += [
        Line2D([], [], color=c, linestyle=s, linewidth=2, label=f"{k} flow")
        for k, (s, c) in _EDGE_STYLE.items()
        if any(d["kind"] == k for _, _, d in money)
    ]
    if comps:
        handles.append(
            Line2D(
                [], [], color="black", linestyle="--", linewidth=1, label="same owner (Sybil group)"
            )
        )
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=5,
        fontsize=7,
        frameon=False,
    )
    g = G.graph
    where = (
        f"step {g.get('step')}, market {g.get('market')}"
        if g.get("wave", -1) >= 0
        else (f"{g.get('waves', 0)} waves")
    )
    ax.set_title(
        title or f"Who paid for whom: {g.get('label', '')} ({where})",
        fontsize=11,
        pad=26,
        parse_math=False,
    )
    hidden = ""
    if src_hidden or pay_hidden:
        hidden = f"; not drawn: {src_hidden} bankrupt, {pay_hidden} payers"
    subtitle = (
        f"run seed {g.get('seed')} · policy {g.get('policy')} · severity {g.get('severity')} · "
        f"scenario {g.get('scenario')} · {where}\n"
        f"bankrupt {len(sources)} -> ADL {_money(g.get('adl_dollars', 0.0))} paid by "
        f"{len(payers)} accounts, backstop {_money(g.get('backstop_dollars', 0.0))}, "
        f"bad debt {_money(g.get('bad_debt_dollars', 0.0))}, lot surplus to fund "
        f"{_money(g.get('surplus_dollars', 0.0))}{hidden}; flows run left to right"
    )
    ax.text(
        0.5,
        1.005,
        subtitle,
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=7,
        parse_math=False,
    )
    for x, lab in ((0.0, "bankrupt accounts"), (1.0, "backstop / bad debt"), (2.0, "payers")):
        ax.text(x, -0.06, lab, ha="center", va="top", fontsize=8, weight="bold")
    ax.set_xlim(-0.7, 2.7)
    ax.set_ylim(-0.1, 1.08)
    ax.axis("off")
    path_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path_png, dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path_png


# ---------------------------------------------------------------------- GraphML
def _scalar(v: Any) -> Any:
    """A GraphML-safe scalar (numpy scalars made plain; None dropped by the caller)."""
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, int | float | str):
        return v
    return str(v)


def export_graphml(G: nx.DiGraph, path: str | Path) -> Path:
    """Write ``G`` as GraphML that :func:`networkx.read_graphml` reads back (node ids become
    strings there; the ``account`` attribute keeps the integer id)."""
    H = nx.DiGraph()
    H.graph.update({k: _scalar(v) for k, v in G.graph.items() if v is not None})
    for n, d in G.nodes(data=True):
        H.add_node(str(n), **{k: _scalar(v) for k, v in d.items() if v is not None})
    for u, v, d in G.edges(data=True):
        H.add_edge(str(u), str(v), **{k: _scalar(x) for k, x in d.items() if x is not None})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(H, path, infer_numeric_types=True)
    return path


# ---------------------------------------------------------------------- command
def default_out(run_dir: str | Path) -> Path:
    """Where ``adlgame graph`` writes without ``--out``: ``<RUN_DIR>-graphs`` beside the run."""
    path = Path(run_dir)
    return path.parent / f"{path.name}-graphs"


def command(args: argparse.Namespace) -> int:
    """``adlgame graph``: PNG + GraphML per wave (or one wave) of a run folder; exit status.

    Without ``--wave``: the ``MAX_WAVE_FILES`` waves that raised the most dollars, each as
    ``wave_<id>.png`` / ``.graphml``, plus ``all.png`` / ``all.graphml``.  A run without any
    ADL wave prints one line and writes nothing (exit 0), with or without ``--wave``.  Bad
    input raises ``InputError`` before anything is written.
    """
    run = load_run(args.run_dir)
    ids = wave_ids(run)
    if not ids:
        print(f"adlgame graph: {run.path} has no ADL wave; nothing to draw")
        return 0
    wave = getattr(args, "wave", None)
    if wave is not None:
        require(
            isinstance(wave, int | np.integer) and int(wave) in ids,
            "--wave",
            _allowed_waves(ids),
            wave,
        )
    # default beside the run folder, not inside it: viz writes nothing into results it reads
    out = Path(args.out) if getattr(args, "out", None) else default_out(run.path)
    require(not out.exists() or out.is_dir(), "--out", "a folder path (not a file)", str(out))
    if wave is not None:
        chosen: list[int | None] = [int(wave)]
        skipped = 0
    else:
        raised = run.adl.groupby("wave")["dollars"].sum().reindex(ids, fill_value=0.0)
        top = raised.sort_values(ascending=False, kind="stable").index[:MAX_WAVE_FILES]
        chosen = [*sorted(int(w) for w in top), None]
        skipped = len(ids) - len(top)
    width = max(len(str(ids[-1])), 3)
    for w in chosen:
        G = transfer_graph(run, w)
        stem = "all" if w is None else f"wave_{w:0{width}d}"
        draw_graph(G, out / f"{stem}.png")
        export_graphml(G, out / f"{stem}.graphml")
    note = f" ({skipped} smaller waves skipped; use --wave K)" if skipped else ""
    print(f"adlgame graph: {len(chosen)} graphs (PNG + GraphML) written to {out}/{note}")
    return 0
