"""The design's answer on disk: ``pareto.csv``, ``recommended.toml`` and ``report.md``
(with ``search.csv``, the optimiser's history, and ``builtins.csv``, the built-in rules on
the same fresh seeds)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.game.scenario import from_dict, to_toml
from experiments.runs.results import json_safe
from experiments.studies.design.search import (
    DesignResult,
    Finalist,
    Score,
    cell_label,
    feasible,
    fresh_pairs,
    history_frame,
    metrics_of,
)
from experiments.studies.design.spec import EXPLOITABILITY
from experiments.studies.report import FigureWriter, ci_text, figure_section, fmt, md_table

#: The files :func:`write_design` writes.
DESIGN_FILES = ("pareto.csv", "recommended.toml", "report.md", "search.csv", "builtins.csv")


def pareto_frame(result: DesignResult) -> pd.DataFrame:
    """One row per front member: the rule, its parameters, every objective's mean with its
    interval and prediction interval, the constraint metrics, and for finalists the checks."""
    spec = result.spec
    m_fresh = len(fresh_pairs(spec))
    fin = {f.candidate.key: f for f in result.finalists}
    rows = []
    for key in result.front:
        s = result.scores[key]
        c = s.candidate
        row: dict[str, Any] = {"candidate": c.label, "policy": c.policy, "severity": c.severity}
        for p, v in sorted(c.params.items()):
            row[f"param.{p}"] = v
        for name, v in sorted(c.shared.items()):
            row[name] = v
        for m in metrics_of(spec):
            mean, lo, hi, n = s.interval(m)
            p_lo, p_hi = s.prediction(m, m_fresh)
            row.update(
                {
                    m: mean,
                    f"{m}.ci_low": lo,
                    f"{m}.ci_high": hi,
                    f"{m}.n": n,
                    f"{m}.pi_low": p_lo,
                    f"{m}.pi_high": p_hi,
                }
            )
        f = fin.get(key)
        row["finalist"] = f is not None
        if f is not None:
            for m in metrics_of(spec):
                row[f"{m}.fresh"] = f.fresh.mean(m)
            row["exploitability"] = f.audit.get("exploitability", math.nan)
            row["exploitability.ci_low"] = f.audit.get("ci_low", math.nan)
            row["exploitability.ci_high"] = f.audit.get("ci_high", math.nan)
            row["exploitability.verdict"] = f.audit.get("verdict", "")
            row["confirmed"] = f.confirmed
            row["why_not"] = "; ".join(f.reasons)
        row["recommended"] = result.recommended is not None and (
            result.recommended.candidate.key == key
        )
        rows.append(row)
    return pd.DataFrame(rows)


def recommended_toml(result: DesignResult) -> str:
    """The recommended rule as a whole scenario TOML (``adlgame run --scenario FILE``)."""
    rec = result.recommended
    spec = result.spec
    if rec is None:
        return (
            f"# adlgame design {spec.name}: no candidate met the constraints, so there is no\n"
            "# recommended rule; see report.md for the closest ones.\n"
        )
    c = rec.candidate
    sc = from_dict(c.scenario(spec.scenario))
    sc = sc.replace(name=f"{spec.name}-recommended")
    m, sense = spec.primary
    status = (
        "confirmed out of sample" if rec.confirmed else ("NOT confirmed: " + "; ".join(rec.reasons))
    )
    if result.recommended_kind == "built-in":
        status = "a built-in at its default parameters: no designed finalist held up"
    header = (
        f"adlgame design {spec.name}: the recommended rule ({'quick' if result.quick else 'full'}"
        f" search)\n"
        f"rule: {c.rule}\n"
        + "".join(f"{k} = {v}\n" for k, v in sorted(c.shared.items()))
        + f"primary objective: {sense} {m} = {rec.fresh.mean(m):.6g} on fresh seeds\n"
        f"status: {status}\n"
        "play it: adlgame run --scenario THIS_FILE --out DIR"
    )
    return to_toml(sc, header=header)


def _trade_offs(result: DesignResult) -> list[str]:
    """Along the front, how each pair of objectives moves together, in words."""
    spec = result.spec
    if len(spec.objectives) < 2 or len(result.front) < 3:
        return [
            "The front has too few members to read trade-offs from."
            if len(spec.objectives) > 1
            else "One objective: no trade-off to read."
        ]
    lines = []
    objs = spec.objectives
    vals = {m: np.array([result.scores[k].mean(m) for k in result.front]) for m, _ in objs}
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            (a, sa), (b, sb) = objs[i], objs[j]
            x, y = vals[a], vals[b]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
                continue
            r = float(np.corrcoef(x[ok], y[ok])[0, 1])
            # better-a and better-b move together when the signed correlation is positive
            same = r * (1 if sa == sb else -1)
            kind = "conflict" if same < 0 else "go together"
            lines.append(
                f"- {sa} {a} and {sb} {b} {kind} along the front (correlation {r:+.2f} over "
                f"{int(ok.sum())} members): from {fmt(float(x[ok].min()))} to "
                f"{fmt(float(x[ok].max()))} of {a} against {fmt(float(y[ok].min()))} to "
                f"{fmt(float(y[ok].max()))} of {b}."
            )
    return lines or ["The front does not vary enough to read trade-offs."]


def _finalist_rows(result: DesignResult) -> list[list[str]]:
    spec = result.spec
    m = spec.primary[0]
    n_fresh = len(fresh_pairs(spec))
    rows = []
    for f in result.finalists:
        mean, lo, hi, n = f.score.interval(m)
        p_lo, p_hi = f.score.prediction(m, n_fresh)
        ex = f.audit
        rows.append(
            [
                f.candidate.label,
                f"{ci_text(mean, lo, hi)} n={n}",
                f"[{fmt(p_lo)}, {fmt(p_hi)}]",
                f"{fmt(f.fresh.mean(m))} (n={int(np.isfinite(f.fresh.values[m]).sum())})",
                (
                    ci_text(
                        float(ex.get("exploitability", math.nan)),
                        float(ex.get("ci_low", math.nan)),
                        float(ex.get("ci_high", math.nan)),
                    )
                    + f" {ex.get('verdict', '')}"
                ),
                "confirmed" if f.confirmed else "rejected: " + "; ".join(f.reasons),
            ]
        )
    return rows


def _behaviour_rows(result: DesignResult) -> list[list[str]]:
    spec = result.spec
    rows = []
    for f in result.finalists:
        for m in metrics_of(spec):
            per = f.fresh.by_behaviour(m)
            rows.append(
                [
                    f.candidate.label,
                    m,
                    *[fmt(per.get(cell_label(c), math.nan)) for c in spec.behaviour_cells()],
                ]
            )
    return rows


def _compared(result: DesignResult) -> list[dict[str, Any]]:
    """The built-ins the recommended rule is compared with (not itself, when it is one)."""
    rec = result.recommended
    itself = (
        rec.candidate.policy if rec is not None and result.recommended_kind == "built-in" else None
    )
    return [v for v in result.versus if v["policy"] != itself]


def _versus_lines(result: DesignResult) -> list[str]:
    spec = result.spec
    m = spec.primary[0]
    rec = result.recommended
    if rec is None:
        return ["No candidate met the constraints, so nothing is compared with the built-ins."]
    rows, lost, feas, blank = [], [], 0, []
    for v in sorted(_compared(result), key=lambda r: r.get("improvement", 0.0)):
        better = v.get("improvement", math.nan)
        if v["feasible"]:
            feas += 1
            if not math.isfinite(better):  # no pair where both runs define the metric
                blank.append(v["policy"])
            elif not better > 0:
                lost.append(v["policy"])
        rows.append(
            [
                v["policy"],
                "yes" if v["feasible"] else "no",
                fmt(v[m]),
                ci_text(
                    better, v.get("improvement_low", math.nan), v.get("improvement_high", math.nan)
                )
                + f" n={v.get('pairs', 0)}",
            ]
        )
    out = md_table(
        [
            "built-in (default parameters)",
            "meets the constraints",
            f"{m} (fresh)",
            f"recommended's improvement on {m} (paired, 95 %)",
        ],
        rows,
    )
    if blank:
        out += [
            "",
            f"Not comparable on {m} ({', '.join(blank)}): no fresh run pair where both rules "
            "define it (e.g. no ADL wave, so no haircut).",
        ]
    feas -= len(blank)
    if feas == 0:
        verdict = (
            "No built-in rule meets the constraints at its default parameters, so the "
            "recommended rule has no feasible built-in to beat."
        )
    elif not lost:
        sig = sum(1 for v in _compared(result) if v["feasible"] and v.get("improvement_low", 0) > 0)
        verdict = (
            f"The recommended rule beats every one of the {feas} built-ins that meet the "
            f"constraints on {m} ({sig} of them with a paired interval above zero)."
        )
    else:
        inside = [
            p for p in lost if any(v["policy"] == p and v.get("in_space") for v in result.versus)
        ]
        outside = [p for p in lost if p not in inside]
        why = []
        if inside:
            why.append(
                f"{', '.join(inside)} lie{'s' if len(inside) == 1 else ''} inside the searched "
                "space (the default point was a first-generation candidate), so the search "
                "found nothing better on its own seeds that also held out of sample: there, "
                "the built-in default is as good as this search can tell (more seeds or "
                "generations may separate them)"
            )
        if outside:
            why.append(
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the "
                "searched families or ranges: add the family to the specification to search "
                "around it"
            )
        verdict = (
            f"The recommended rule does not beat {', '.join(lost)} on {m} at equal "
            "constraints. Why: " + "; ".join(why) + "."
        )
    return [*out, "", verdict]


def format_report(result: DesignResult) -> str:
    """The design report in Markdown."""
    spec = result.spec
    m, sense = spec.primary
    rec = result.recommended
    n_fresh = len(fresh_pairs(spec))
    lines = [
        f"# adlgame design: {spec.name}",
        "",
        f"{'Quick search' if result.quick else 'Search'}: NSGA-II, {spec.generations} "
        f"generations of {spec.population}, {len(result.scores)} distinct candidates, "
        f"{spec.seeds} search seeds (common random numbers), {result.runs} game runs played "
        f"or found, {result.seconds / 60:.1f} min. Scenario `{spec.scenario.name}` with "
        f"{spec.scenario.run.traders:,} traders and {spec.scenario.run.crises} crises; the "
        "whales' leverage learning and the passive / flipper imitation run inside every "
        "evaluation.",
        "",
        "## What was asked",
        "",
        "- families: "
        + "; ".join(
            f"`{fam.policy}`"
            + (
                " ("
                + ", ".join(f"{d.name.split('.', 1)[1]}: {d.describe()}" for d in fam.dims)
                + ")"
                if fam.dims
                else ""
            )
            for fam in spec.families
        ),
        "- shared: " + ("; ".join(f"`{d.name}` {d.describe()}" for d in spec.shared) or "none"),
        "- objectives: "
        + ", ".join(f"{s} `{o}`" for o, s in spec.objectives)
        + f" (primary: {sense} `{m}`)",
        "- constraints: " + (", ".join(f"`{c.text()}`" for c in spec.constraints) or "none"),
        "- behaviour cells: " + ", ".join(cell_label(c) for c in spec.behaviour_cells()),
        f"- out-of-sample: {spec.fresh_seeds} fresh seeds x {len(spec.behaviour_cells())} "
        f"cells = {n_fresh} runs per finalist and per built-in",
        "",
        "## The recommended rule",
        "",
    ]
    if rec is None:
        lines += [
            "No candidate met the constraints on its search seeds. The search history "
            "(`search.csv`) shows the closest; relax a constraint or widen a range."
        ]
    elif result.recommended_kind == "built-in":
        mean, lo, hi, n = rec.fresh.interval(m)
        lines += [
            "No designed finalist held up (see the finalists below). The best built-in rule "
            "that meets every constraint on the fresh seeds"
            + (" and against a best-responding trader" if rec.stackelberg else "")
            + f" is **{rec.candidate.label}** at its default parameters: the design "
            "recommends keeping it.",
            "",
            f"- {m}: {fmt(mean)} on the fresh seeds (95 % interval [{fmt(lo)}, {fmt(hi)}], "
            f"n = {n}).",
            f"- exploitability: {fmt(float(rec.audit.get('exploitability', math.nan)))} "
            f"({rec.audit.get('verdict', 'not measured')}).",
            "- `recommended.toml` is the whole scenario with this rule.",
        ]
    else:
        mean, lo, hi, n = rec.score.interval(m)
        p_lo, p_hi = rec.score.prediction(m, n_fresh)
        lines += [
            f"**{rec.candidate.label}** ({'confirmed' if rec.confirmed else 'NOT confirmed'}"
            " out of sample).",
            "",
            f"- {m}: {fmt(mean)} on the search seeds (95 % interval [{fmt(lo)}, {fmt(hi)}],"
            f" n = {n}); a re-run on {n_fresh} fresh runs should land in [{fmt(p_lo)}, "
            f"{fmt(p_hi)}] (95 % prediction interval) and gave {fmt(rec.fresh.mean(m))}.",
            f"- exploitability against a best-responding trader: "
            f"{fmt(float(rec.audit.get('exploitability', math.nan)))} "
            f"({rec.audit.get('verdict', 'not measured')}; best response: "
            f"{rec.audit.get('strategy', 'n/a')}).",
            "- `recommended.toml` is the whole scenario with this rule: "
            "`adlgame run --scenario recommended.toml --out DIR` plays it.",
        ]
        others = [f"{o} {fmt(rec.fresh.mean(o))}" for o, _ in spec.objectives[1:]]
        if others:
            lines.append(
                "- the other objectives on the fresh seeds (what the primary costs): "
                + ", ".join(others)
                + "."
            )
        if not rec.confirmed:
            lines += [
                "",
                "It is the best finalist, but it failed its checks: "
                + "; ".join(rec.reasons)
                + ".",
            ]
    lines += ["", "## Against the built-in rules", "", *_versus_lines(result)]
    lines += ["", "## The front", ""]
    if result.front:
        rows = []
        for key in result.front:
            s = result.scores[key]
            cells = [s.candidate.label]
            for o, _ in spec.objectives:
                mean, lo, hi, n = s.interval(o)
                cells.append(ci_text(mean, lo, hi))
            rows.append(cells)
        lines += [
            *md_table(["candidate", *[f"{s} {o} (95 %)" for o, s in spec.objectives]], rows),
            "",
            *_trade_offs(result),
        ]
    else:
        lines += ["Empty: no candidate met every constraint on its search seeds."]
    lines += ["", "## Finalists: out of sample and against best-responding traders", ""]
    if result.finalists:
        lines += [
            *md_table(
                [
                    "finalist",
                    f"{m} search (95 %)",
                    "prediction interval",
                    f"{m} fresh",
                    "exploitability (held-out, 95 %)",
                    "verdict",
                ],
                _finalist_rows(result),
            ),
            "",
        ]
        lines += [
            "Per behaviour cell (fresh seeds):",
            "",
            *md_table(
                ["finalist", "metric", *[cell_label(c) for c in spec.behaviour_cells()]],
                _behaviour_rows(result),
            ),
        ]
    lines += [
        "",
        "## Limits",
        "",
        "- Objectives are means over the search seeds; a candidate's interval is over "
        "its own runs (n given), so a front member's ranking is uncertain within it.",
        "- The Stackelberg check plays the audit's synthetic crash world with the rule and "
        "its parameters; the scenario values of the design (e.g. the fund's fee share) "
        "do not enter it. The built-ins are not searched for exploitability.",
        "- Traders respond inside the game (leverage learning, imitation, churn and "
        "entry); they do not re-optimise against each candidate beyond that, except in "
        "the finalists' best-response search.",
    ]
    lines += [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def write_design(
    result: DesignResult, out: str | Path, figures: FigureWriter | None = None
) -> list[Path]:
    """Write the files of :data:`DESIGN_FILES` into ``out`` (and, with a figure writer such as
    :func:`viz.figures.write_figures`, the front's figure); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in DESIGN_FILES]
    front = pareto_frame(result)
    versus = pd.DataFrame(result.versus)
    front.to_csv(paths[0], index=False)
    paths[1].write_text(recommended_toml(result))
    refs = []
    if figures is not None:
        spec = result.spec
        ctx = {
            "name": spec.name,
            "objectives": [list(o) for o in spec.objectives],
            "seeds": spec.seeds,
            "fresh": len(fresh_pairs(spec)),
        }
        refs = figures("design", out, front, versus, ctx)
        paths += [out / f"{r.stem}.png" for r in refs]
    paths[2].write_text(format_report(result) + "\n".join(figure_section(refs)))
    history_frame(result).to_csv(paths[3], index=False)
    versus.to_csv(paths[4], index=False)
    return paths


def summary(result: DesignResult) -> dict[str, Any]:
    """The design's outcome as plain data (``--json``)."""
    rec = result.recommended
    m = result.spec.primary[0]
    out: dict[str, Any] = {
        "name": result.spec.name,
        "candidates": len(result.scores),
        "front": len(result.front),
        "finalists": len(result.finalists),
        "runs": result.runs,
        "seconds": round(result.seconds, 1),
        "recommended": None,
    }
    if rec is not None:
        mean, lo, hi, n = rec.score.interval(m)
        p_lo, p_hi = rec.score.prediction(m, len(fresh_pairs(result.spec)))
        out["recommended"] = {
            "rule": rec.candidate.rule,
            "shared": rec.candidate.shared,
            "confirmed": rec.confirmed,
            "objective": m,
            "mean": mean,
            "ci_low": lo,
            "ci_high": hi,
            "n": n,
            "pi_low": p_lo,
            "pi_high": p_hi,
            "fresh": rec.fresh.mean(m),
            EXPLOITABILITY: rec.audit.get("exploitability"),
        }
    feasible = [v for v in _compared(result) if v["feasible"]]
    better = {v["policy"]: v.get("improvement", math.nan) for v in feasible}
    out["beats_builtins"] = [p for p, x in better.items() if x > 0]
    out["not_beaten"] = [p for p, x in better.items() if math.isfinite(x) and not x > 0]
    out["not_comparable"] = [p for p, x in better.items() if not math.isfinite(x)]
    return json_safe(out)  # type: ignore[return-value]


__all__ = [
    "DESIGN_FILES",
    "Finalist",
    "Score",
    "feasible",
    "format_report",
    "pareto_frame",
    "recommended_toml",
    "summary",
    "write_design",
]
