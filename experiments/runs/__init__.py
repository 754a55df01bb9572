"""The run engine: one run's results and files (:mod:`.results`), many runs on local
processes or Dask (:mod:`.runner`), designed sweeps (:mod:`.sweep`)."""
