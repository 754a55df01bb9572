"""Settings shared by the whole test suite.

Hypothesis runs without its per-example deadline: speed is measured by the benchmarks, never
by tests, and a correct example must not fail because a loaded machine ran it slowly (the
default 200 ms deadline turns a busy CI runner into a flaky failure).  Each test's own
``@settings`` still sets its number of examples.
"""

from hypothesis import settings

settings.register_profile("adlgame", deadline=None)
settings.load_profile("adlgame")
