"""gameability.csv and gameability.md."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from experiments.metrics import MIN_INFORMATIVE_N
from experiments.studies.audit.actions import (
    ACTIONS,
)
from experiments.studies.audit.runs import (
    _MEAN_COLS,
)
from experiments.studies.audit.summary import (
    AuditResult,
)
from experiments.studies.audit.world import (
    SHIFT_TYPES,
    AuditConfig,
    eligibility_for,
)
from market.adl import POLICIES, get_policy

#: Columns of gameability.csv, in order.
CSV_COLUMNS = (
    "policy",
    "action",
    "G",
    "ci_low",
    "ci_high",
    "G_net",
    "G_net_low",
    "G_net_high",
    "seeds",
    "targets",
    "refused",
    "honest_burden",
    "honest_lots",
    "cost",
    *(f"shift_{t}" for t in SHIFT_TYPES),
    "shift_residual",
    "shift_rounding",
    "shift_other",
    "G_forced",
    "acted",
    "G_unweighted",
    "reading",
)


def _fmt(x: Any, pct: bool = False) -> str:
    if isinstance(x, float):
        if not np.isfinite(x):
            return "n/a"
        return f"{x:+.1%}" if pct else f"{x:,.2f}"
    return str(x)


def format_markdown(result: AuditResult) -> str:
    """The audit as a markdown page: configuration, the table, and how to read it."""
    cfg = result.config
    shown = [
        t
        for t in SHIFT_TYPES
        if any(abs(r[f"shift_{t}"]) > 0 for r in result.rows if np.isfinite(r[f"shift_{t}"]))
    ] or ["passive"]
    audited = {r["seed"] for r in result.records}
    no_wave = [x for x in result.seeds if x not in audited]
    lines = [
        "# Gameability audit",
        "",
        f"Seeds {result.seeds[0]}..{result.seeds[-1]} ({len(result.seeds)}); "
        f"{cfg.accounts:,} accounts per world ({cfg.whale_share:.0%} labelled whales by "
        f"notional); crash of {cfg.drop:.0%} over {cfg.crash_steps} steps (noise "
        f"{cfg.noise:g}); insurance fund ${cfg.fund_per_account * cfg.accounts:,.0f}; "
        f"measured over {cfg.horizon} step(s) "
        f"from the first ADL wave; up to {cfg.targets} targets per seed and policy; Sybil "
        f"splits over {cfg.sybil_accounts} accounts; top-up {cfg.topup_fraction:g} x equity; "
        f"eligibility cap {cfg.cap!r}; {cfg.level:.0%} t-intervals over seeds on a scale that "
        "keeps G <= 1 (n = the seeds column).",
        "",
        f"Seeds without an ADL wave (the crash never outran the fund, nothing to audit): "
        f"{len(no_wave)} of {len(result.seeds)}"
        + (f" ({', '.join(map(str, no_wave))})" if no_wave else "")
        + "; they are in no row's n.",
        "",
    ]
    if len(audited) < MIN_INFORMATIVE_N:
        lines += [
            f"**{len(audited)} audited seed(s): these intervals are not yet informative** "
            f"(fewer than {MIN_INFORMATIVE_N}); run more seeds before reading a verdict.",
            "",
        ]
    lines += [
        "G is the share of its ADL burden a gaming account sheds against an honest twin with "
        "the same exposure in an otherwise identical world (1: escapes entirely, 0: no effect, "
        "< 0: pays more). Cost is what the action itself cost (fees, spread, impact), and the "
        "shift columns say who paid the shed burden instead, all as shares of the honest "
        "burden. G net = G - cost, what the owner keeps after paying for the action: the "
        "reading is decided on it.",
        "",
    ]
    head = [
        "policy",
        "action",
        "G",
        f"{cfg.level:.0%} CI",
        "G net",
        f"net {cfg.level:.0%} CI",
        "seeds",
        "targets",
        "honest burden ($)",
        "lots",
        "acted",
        "G if forced",
        "cost",
        *(f"to {t}" for t in shown),
        "to bad debt",
        "rounding",
        "reading",
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for r in result.rows:
        ci = f"[{_fmt(r['ci_low'], True)}, {_fmt(r['ci_high'], True)}]"
        ci_net = f"[{_fmt(r['G_net_low'], True)}, {_fmt(r['G_net_high'], True)}]"
        cells = [
            r["policy"],
            r["action"],
            _fmt(r["G"], True),
            ci,
            _fmt(r["G_net"], True),
            ci_net,
            str(r["seeds"]),
            str(r["targets"]),
            _fmt(r["honest_burden"]),
            _fmt(r["honest_lots"]),
            f"{r['acted']:.0%}" if np.isfinite(r["acted"]) else "n/a",
            _fmt(r["G_forced"], True),
            _fmt(r["cost"], True),
            *(_fmt(r[f"shift_{t}"], True) for t in shown),
            _fmt(r["shift_residual"], True),
            _fmt(r["shift_rounding"], True),
            r["reading"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = [n for n, c in POLICIES.items() if getattr(c, "exact_small_only", False)]
    caps = {p: eligibility_for(get_policy(p), cfg.cap).cap for p in result.policies}
    pick = (
        f"on {cfg.rehearsals} rehearsal path(s) (the crash script with fresh noise), ex ante"
        if cfg.rehearsals
        else "on the realised path (clairvoyant)"
    )
    lines += [
        "",
        "G per seed is burden-weighted over the seed's targets, sum(b_H - b_G) / sum(b_H); "
        "lots is the targets' mean honest burden in lots closed (when it is a few lots, G is "
        "dominated by lot granularity). Among an action's variants the adversary keeps the one "
        f"with the lowest group burden {pick}"
        + (
            ", and acts only if that lowers its burden (acted: share of targets that did; "
            "G if forced: every target takes its best variant)."
            if cfg.abstain
            else "; every target acts."
        ),
        "",
        f'Reading, on G net of the action\'s cost: "pays" when its interval lies above 0 and '
        f'G net above {cfg.threshold:.0%}; "does not pay" when the whole interval lies below '
        f'{cfg.threshold:.0%}; otherwise "inconclusive".',
        "",
        "Eligibility cap per policy: " + ", ".join(f"{p} = {c}" for p, c in caps.items()) + ".",
    ]
    if skipped and not set(skipped) & set(result.policies):
        lines.append(f'Not audited by "all": {", ".join(skipped)} (exact on small instances only).')
    lines.append("")
    lines.append(
        "Actions: " + "; ".join(f"{a}: {ACTIONS[a].description}" for a in result.actions) + "."
    )
    return "\n".join(lines) + "\n"


def write_report(result: AuditResult, out: str | Path) -> list[Path]:
    """Write gameability.csv, gameability.md and gameability_targets.csv into ``out``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    table = d / "gameability.csv"
    with table.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        w.writeheader()
        for r in result.rows:
            w.writerow(r)
    md = d / "gameability.md"
    md.write_text(format_markdown(result))
    detail = d / "gameability_targets.csv"
    cols = [
        "seed",
        "policy",
        "action",
        "target",
        "kind",
        "wave_step",
        "status",
        "variants",
        "variant",
        "b_honest",
        "b_gamed",
        "lots_honest",
        *_MEAN_COLS,
        "G_forced",
        "acted",
    ]
    with detail.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in result.records:
            w.writerow(r)
    return [table, md, detail]


def config_dict(cfg: AuditConfig) -> dict[str, Any]:
    """The configuration as a plain dict (for JSON)."""
    return asdict(cfg)
