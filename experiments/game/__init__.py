"""The market game: the Mesa model (:mod:`.model`), its scenario schema (:mod:`.scenario`),
per-run random streams (:mod:`.seeding`) and the two-pass replay it runs beside ADL
(:mod:`.twopass`)."""
