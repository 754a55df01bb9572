"""``adlgame design``: choose a rule's parameters on the trilemma while the traders respond.

:mod:`.spec` reads the specification, :mod:`.space` maps the searched cube to rules and runs,
:mod:`.search` runs NSGA-II with the checks, :mod:`.report` writes the answer.
"""

from experiments.studies.design.report import DESIGN_FILES, format_report, summary, write_design
from experiments.studies.design.search import DesignResult, run_design
from experiments.studies.design.space import Candidate, Space
from experiments.studies.design.spec import (
    DesignSpec,
    design_from_dict,
    example_path,
    example_text,
    load_design,
)

__all__ = [
    "DESIGN_FILES",
    "Candidate",
    "DesignResult",
    "DesignSpec",
    "Space",
    "design_from_dict",
    "example_path",
    "example_text",
    "format_report",
    "load_design",
    "run_design",
    "summary",
    "write_design",
]
