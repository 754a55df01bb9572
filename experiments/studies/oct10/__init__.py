"""The 10 October 2025 yardstick: replay the published ADL waves through every policy.

On 10 October 2025 Hyperliquid auto-deleveraged about $2.1B of positions in 16 global waves
(21:16-21:27 UTC).  The open-source analysis behind arXiv 2512.01112 v3 and 2602.15182 published
per-wave figures (copied into ``experiments/data/oct10/``, see PROVENANCE.md there):

* **real** -- a number read unchanged from those files (deficit, budget needed, production's
  two-pass haircut at horizon 0, winners' aggregate equity and PnL, published per-policy
  results);
* **derived** -- a number computed here from real numbers only (theta = B/D, equity/PnL of a
  wave, the largest winner's share implied by the published pro-rata PTSR, sums and means);
* **synthetic** -- a number that depends on the per-account draws made here, because
  per-account detail is not in the published files.

The replay (:func:`replay`) builds, for each wave and seed, a snapshot of eligible winners
whose aggregates match the wave exactly (:func:`synth_wave`), runs every registered policy with
the wave's real budget needed, and measures what each raised, its overshoot against the
budget, the largest haircut, PTSR, PMR and accounts touched.  :func:`run_experiment` writes
``report.md`` (tables and figures, the published columns beside the game's) and ``waves.csv``.
``adlgame experiment oct10 [--seeds N] --out DIR`` calls it.

No replay setting is chosen to match a published replay output: the winners come from one
population for the whole event whose size and tail are fitted to real per-wallet fill counts
(:mod:`.population`, ``adlgame experiment calibrate``).  Where the game differs the report
says by how much and why it may.

The package: :mod:`.data` (the published files), :mod:`.population` (the event's winner
population), :mod:`.synth` (synthetic winners), :mod:`.waves` (every policy on every wave),
:mod:`.game` (production's overshoot in the oct10 game), :mod:`.report` (report.md) and
:mod:`.experiment` (the whole run).
"""

from __future__ import annotations

from experiments.studies.oct10.data import (
    COUNTERPARTS,
    DATA_FILES,
    DESCRIPTION,
    GAP_FILE,
    HL_AT_PROD,
    N_WAVES,
    PRO_RATA_WEALTH,
    PUBLISHED_POLICIES,
    Oct10Data,
    data_folder,
    load_oct10,
)
from experiments.studies.oct10.experiment import (
    run_experiment,
)
from experiments.studies.oct10.game import (
    GAME_POLICIES,
    game_overshoot,
    gap_check,
)
from experiments.studies.oct10.report import (
    write_report,
)
from experiments.studies.oct10.synth import (
    RatioFit,
    ReplayConfig,
    SyntheticWave,
    accounts_per_wave,
    couple_ratios,
    synth_wave,
)
from experiments.studies.oct10.waves import (
    METRICS,
    replay,
    replay_policies,
    run_totals,
    wave_table,
)

__all__ = [
    "COUNTERPARTS",
    "DATA_FILES",
    "DESCRIPTION",
    "GAME_POLICIES",
    "GAP_FILE",
    "HL_AT_PROD",
    "METRICS",
    "N_WAVES",
    "PRO_RATA_WEALTH",
    "PUBLISHED_POLICIES",
    "Oct10Data",
    "RatioFit",
    "ReplayConfig",
    "SyntheticWave",
    "accounts_per_wave",
    "couple_ratios",
    "data_folder",
    "game_overshoot",
    "gap_check",
    "load_oct10",
    "replay",
    "replay_policies",
    "run_experiment",
    "run_totals",
    "synth_wave",
    "wave_table",
    "write_report",
]
