"""Studies built on the game and the policy library: the experiment catalogue
(:mod:`.catalogue`: compare, moral hazard, attrition, frontier, plus the registry and the
shared report writer), the bounds check (:mod:`.bounds`), the gameability audit
(:mod:`.audit`), the 10 October 2025 replay (:mod:`.oct10`) and the one-shot crash
(:mod:`.crash`)."""
