import os

import pytest
from hypothesis import settings

# CI explores the same examples every run (reproducible failures); locally Hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Small, fast scenarios for the dynamics tests; numba compiles once per process (cache=True keeps it on disk).
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".numba_cache"))


@pytest.fixture(scope="session")
def baseline():
    from collabsim import load_scenario

    return load_scenario("baseline")


def small(scenario, **overrides):
    """A small, short variant of a scenario for oracle and property tests."""
    base = {"population.n_orgs": 12, "horizon_months": 24}
    base.update(overrides)
    return scenario.with_overrides(base)
