"""The default scenario's robustness verdicts, packaged, so that every behavioural comparison
the tool prints (the demo, the compare report, the README) carries its verdict.

``experiments/data/verdicts/`` holds ``verdicts.csv`` from ``adlgame experiment robustness
--quick`` on the default scenario and ``meta.json`` (seeds, cells, the scenario's digest, the
package version, the command).  A verdict is only quoted for a scenario whose digest equals the
screened one; any other scenario is said to be unscreened.  Refresh with ``make verdicts``
(``python -m experiments.studies.verdict_book DIR`` packages a finished run's folder).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.game.scenario import Scenario, load_scenario, scenario_digest
from market.errors import require

__all__ = [
    "direction",
    "package_run",
    "packaged_verdicts",
    "readme_table",
    "verdict_for",
    "verdict_lines",
    "verdict_phrase",
]

#: Metric -> how the demo and the reports name it.
METRIC_WORDS = {
    "retention": "traders kept",
    "fee_revenue": "fee revenue",
    "ltv_lost_per_deficit_dollar": "LTV lost per deficit dollar",
    "externality_ratio": "externality ratio",
    "max_haircut_base_frac": "largest haircut",
    "gaming_shelter": "gaming traders' shelter",
}


def _folder() -> Any:
    return resources.files("experiments") / "data" / "verdicts"


def packaged_verdicts() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The packaged verdict table and its metadata (read once per process; copies)."""
    table, meta = _read_packaged()
    return table.copy(), dict(meta)


@functools.lru_cache(maxsize=1)
def _read_packaged() -> tuple[pd.DataFrame, dict[str, Any]]:
    folder = _folder()
    with (folder / "verdicts.csv").open("rb") as fh:
        table = pd.read_csv(fh, keep_default_na=False, na_values=[""])
    meta = json.loads((folder / "meta.json").read_text())
    table["flips_under"] = table["flips_under"].fillna("")
    return table, meta


def _digest(scenario: Scenario | str | None) -> str:
    if isinstance(scenario, str):
        return scenario
    return scenario_digest(scenario if scenario is not None else load_scenario())


def verdict_for(policy: str, metric: str, scenario: Scenario | str | None = None) -> dict | None:
    """The packaged verdict row of (policy, metric) as a dict, or None when there is none or
    ``scenario`` (a scenario or its digest; default: the default scenario) is not the screened
    one."""
    table, meta = packaged_verdicts()
    if _digest(scenario) != meta["scenario_digest"]:
        return None
    hit = table[(table["policy"] == policy) & (table["metric"] == metric)]
    return None if hit.empty else hit.iloc[0].to_dict()


def verdict_phrase(row: dict, cells: int | None = None) -> str:
    """``robust (sign in 100 % of 40 cells)``, ``fragile (100 %...; flips under power)``..."""
    if row["verdict"] == "coincides":
        return "coincides (equal in every run)"
    n = f" of {cells} cells" if cells else " of cells"
    text = f"{row['verdict']} (sign in {float(row['sign_share']):.0%}{n}"
    if row["verdict"] == "fragile" and row.get("flips_under"):
        text += f"; flips under {row['flips_under'].replace(',', ', ')}"
    return text + ")"


def direction(row: dict) -> str:
    """``beats``, ``trails`` or ``equals``: which way a verdict row's conclusion goes."""
    text = str(row["conclusion"])
    return "beats" if " beats " in text else "trails" if " trails " in text else "equals"


def verdict_lines(
    policies: Iterable[str], scenario: Scenario | None, baseline: str = "pro_rata"
) -> list[str]:
    """A report section: each behavioural comparison against ``baseline`` with its packaged
    verdict, or why there is none."""
    table, meta = packaged_verdicts()
    lines = ["", f"## Behavioural comparisons against {baseline}: verdicts", ""]
    if _digest(scenario) != meta["scenario_digest"]:
        return [
            *lines,
            "This scenario has not been screened: which rule keeps more traders, earns more "
            "fees or loses less LTV depends on the behaviour families (churn, entry, "
            "imitation), so read the differences above as this configuration's only.  Run "
            "`adlgame experiment robustness --out DIR` on it for verdicts.",
        ]
    lines += [
        f"From the packaged screen of this scenario ({meta['command']}: {meta['cells']} cells, "
        f"seeds {meta['seeds']}, adlgame {meta['version']}).  Robust: the sign holds in >= 90 % "
        "of the design's cells and the pooled interval excludes zero.",
        "",
        "| policy | metric | against " + baseline + " | verdict |",
        "|---|---|---|---|",
    ]
    for p in policies:
        for metric, word in METRIC_WORDS.items():
            hit = table[(table["policy"] == p) & (table["metric"] == metric)]
            if hit.empty:
                continue
            row = hit.iloc[0].to_dict()
            lines.append(
                f"| {p} | {word} | {direction(row)} | {verdict_phrase(row, meta['cells'])} |"
            )
    return lines


def readme_table() -> list[str]:
    """The README's grid: policy x metric, each cell ``beats/trails, verdict``."""
    table, _ = packaged_verdicts()
    metrics = [m for m in METRIC_WORDS if m in set(table["metric"])]
    head = "| policy vs pro_rata | " + " | ".join(METRIC_WORDS[m] for m in metrics) + " |"
    lines = [head, "|---" * (len(metrics) + 1) + "|"]
    for p in dict.fromkeys(table["policy"]):
        cells = []
        for m in metrics:
            hit = table[(table["policy"] == p) & (table["metric"] == m)]
            if hit.empty:
                cells.append("-")
                continue
            row = hit.iloc[0].to_dict()
            if row["verdict"] == "coincides":
                cells.append("coincides")
            else:
                cells.append(f"{direction(row)}, **{row['verdict']}** {row['sign_share']:.0%}")
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return lines


def package_run(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Copy a finished quick robustness run of the default scenario into the package data."""
    run = Path(run_dir)
    require((run / "verdicts.csv").is_file(), "run_dir", "a robustness results folder", str(run))
    runs = pd.read_parquet(run / "runs.parquet", columns=["seed"])
    table = pd.read_csv(run / "verdicts.csv")
    from experiments.runs.results import package_version

    meta = {
        "command": "adlgame experiment robustness --quick",
        "scenario": "default",
        "scenario_digest": scenario_digest(load_scenario()),
        "seeds": f"1..{int(runs['seed'].max())}",
        "cells": int(table["cells"].max()),
        "version": package_version(),
    }
    out = Path(dest) if dest is not None else Path(str(_folder()))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "verdicts.csv", index=False)
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


if __name__ == "__main__":  # python -m experiments.studies.verdict_book RUN_DIR
    print(package_run(sys.argv[1]))
