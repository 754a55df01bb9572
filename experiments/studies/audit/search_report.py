"""The searched audit's files: search.csv, search_curve.csv, side_by_side.csv, search.md."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.studies.audit.report import write_report
from experiments.studies.audit.search import SEARCH_VERDICTS, SearchResult
from experiments.studies.audit.summary import AuditResult

#: The searched column's name in the side-by-side table.
SEARCHED = "searched"


def side_by_side(result: SearchResult, scripted: AuditResult | None) -> pd.DataFrame:
    """Per policy, every scripted action's G net of cost and the searched exploitability.

    Columns ``policy``, ``move`` (an action name or ``"searched"``), ``value``, ``low``,
    ``high``, ``n`` (seeds), ``reading``.  Both are shares of the honest ADL burden, net of
    what the moves cost, measured on the same held-out seeds (the scripted audit is run on
    the search's held-out seeds).
    """
    rows: list[dict[str, Any]] = []
    for p in result.policies:
        if scripted is not None:
            for r in scripted.rows:
                if r["policy"] != p.policy:
                    continue
                rows.append(
                    {
                        "policy": p.policy,
                        "move": r["action"],
                        "value": r["G_net"],
                        "low": r["G_net_low"],
                        "high": r["G_net_high"],
                        "n": r["seeds"],
                        "reading": r["reading"],
                    }
                )
        rows.append(
            {
                "policy": p.policy,
                "move": SEARCHED,
                "value": p.exploitability,
                "low": p.ci_low,
                "high": p.ci_high,
                "n": p.n,
                "reading": p.verdict,
            }
        )
    return pd.DataFrame(rows)


def curves(result: SearchResult) -> pd.DataFrame:
    """The search curves: one row per (policy, generation)."""
    return pd.DataFrame([{"policy": p.policy, **c} for p in result.policies for c in p.curve])


def _pct(x: Any) -> str:
    return "n/a" if not (isinstance(x, float | int) and np.isfinite(x)) else f"{x:+.1%}"


def format_search_markdown(result: SearchResult, scripted: AuditResult | None) -> str:
    """The searched audit's report: verdicts, best responses in words, side by side."""
    s, c = result.search, result.config
    train = f"{c.first_seed}-{c.first_seed + s.seeds - 1}"
    held = f"{c.first_seed + s.seeds}-{c.first_seed + s.seeds + s.holdout - 1}"
    lines = [
        "# Searched audit: best responses per rule",
        "",
        f"CMA-ES over the strategy space (moves: {', '.join(s.moves)}; {s.budget} strategy "
        f"evaluations per policy), each strategy played by {c.targets} ADL-paying accounts per "
        f"world of {c.accounts} accounts, training seeds {train}; the best strategy found is "
        f"replayed on held-out seeds {held}. Exploitability is the strategic owner's wealth "
        "gain over its honest twin (same world, same marks) as a share of the twin's ADL "
        "burden, net of everything the strategy costs (fees, spread, impact, exposure given "
        f"up); interval: {int(c.level * 100)} % t interval over the held-out seeds (n below).",
        "",
        "| policy | exploitability | interval | n | shed | cost | outside ADL | verdict "
        "| best response |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result.policies:
        lines.append(
            f"| {p.policy} | {_pct(p.exploitability)} | [{_pct(p.ci_low)}, {_pct(p.ci_high)}] "
            f"| {p.n} | {_pct(p.shed)} | {_pct(p.cost)} | {_pct(p.outside)} | {p.verdict} | "
            f"{p.strategy.describe()} |"
        )
    lines += [
        "",
        "Exploitability = shed - cost (shares of the honest burden). `outside ADL` is what the "
        "best response earned beyond the ADL burden (chiefly strategic default: free "
        "collateral withdrawn before a scripted crash, the bankruptcy socialised); it is "
        "reported, not credited, since it measures the venue's margin rules rather than its "
        "ADL rule.",
    ]
    safe = [p.policy for p in result.policies if p.verdict == SEARCH_VERDICTS[1]]
    broken = [p for p in result.policies if p.verdict == SEARCH_VERDICTS[0]]
    lines += ["", "## Reading", ""]
    lines.append(
        "- unexploitable within the searched space: " + (", ".join(safe) if safe else "none")
    )
    for p in broken:
        carry = [m for m, g in p.moves.items() if not g > p.exploitability - c.threshold]
        lines.append(
            f"- {p.policy} is exploitable: {p.strategy.describe()}"
            + (f" (the gain rests on: {', '.join(carry)})" if carry else "")
        )
    idle = [p.policy for p in result.policies if p.verdict == SEARCH_VERDICTS[3]]
    if idle:
        lines.append(
            "- no ADL burden to shed (no held-out account paid ADL: the rule names its own "
            "shortfall bearer): " + ", ".join(idle)
        )
    others = [p.policy for p in result.policies if p.verdict == SEARCH_VERDICTS[2]]
    if others:
        lines.append(
            "- inconclusive (the interval neither excludes 0 nor rules out a material "
            "gain): " + ", ".join(others)
        )
    lines += [
        "",
        "Each move of a best response switched off in turn, held-out gain (a move whose "
        "removal drops the gain carries it):",
        "",
    ]
    for p in result.policies:
        if p.moves:
            parts = ", ".join(f"without {m} {_pct(g)}" for m, g in p.moves.items())
            lines.append(f"- {p.policy}: {parts}")
        else:
            lines.append(f"- {p.policy}: no move")
    lines += [
        "",
        f"The training gain is optimistic (the strategy was chosen on those seeds); "
        f"`train_best` is the best the optimiser saw before moves adding less than "
        f"{c.threshold / 10:.1%} of the burden were dropped.",
        "",
        "| policy | train_gain | train_best | evaluations | refused |",
        "|---|---|---|---|---|",
    ]
    for p in result.policies:
        lines.append(
            f"| {p.policy} | {_pct(p.train_gain)} | {_pct(p.train_best)} | {p.evaluations} "
            f"| {_pct(p.refused)} |"
        )
    table = side_by_side(result, scripted)
    moves = list(dict.fromkeys(table["move"]))
    lines += [
        "",
        "## Scripted and searched, side by side",
        "",
        "G net of cost for each scripted action (the audit's four moves, on the same held-out "
        "seeds) beside the searched exploitability; mean [interval].",
        "",
        "| policy | " + " | ".join(moves) + " |",
        "|---|" + "---|" * len(moves),
    ]
    for pol, grp in table.groupby("policy", sort=False):
        cells = []
        for m in moves:
            r = grp[grp["move"] == m]
            if r.empty:
                cells.append("")
                continue
            r0 = r.iloc[0]
            cells.append(f"{_pct(r0['value'])} [{_pct(r0['low'])}, {_pct(r0['high'])}]")
        lines.append(f"| {pol} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def json_rows(result: SearchResult, scripted: AuditResult | None) -> list[dict[str, Any]]:
    """Per policy: the search row, with the scripted actions' G net of cost beside it."""
    out = []
    for row in result.rows():
        row = {k: _clean(v) for k, v in row.items()}
        if scripted is not None:
            row["scripted"] = {
                r["action"]: {
                    "G_net": _clean(r["G_net"]),
                    "low": _clean(r["G_net_low"]),
                    "high": _clean(r["G_net_high"]),
                    "reading": r["reading"],
                }
                for r in scripted.rows
                if r["policy"] == row["policy"]
            }
        out.append(row)
    return out


def write_search_report(
    result: SearchResult, scripted: AuditResult | None, out: str | Path
) -> list[Path]:
    """Write search.csv, search_curve.csv, side_by_side.csv, search.md (and the scripted
    audit's gameability files when given) into ``out``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = result.rows()
    table = d / "search.csv"
    with table.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    paths.append(table)
    curve = d / "search_curve.csv"
    curves(result).to_csv(curve, index=False)
    paths.append(curve)
    sbs = d / "side_by_side.csv"
    side_by_side(result, scripted).to_csv(sbs, index=False)
    paths.append(sbs)
    md = d / "search.md"
    md.write_text(format_search_markdown(result, scripted))
    paths.append(md)
    if scripted is not None:
        paths += write_report(scripted, d)
    return paths
