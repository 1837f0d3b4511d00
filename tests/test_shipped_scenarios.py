"""Every shipped scenario validates and runs (shortened to keep the suite fast)."""

from pathlib import Path

import numpy as np
import pytest

from collabsim import load_scenario, simulate
from collabsim.recorder import METRIC_DESCRIPTIONS

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


def test_required_scenarios_ship():
    assert {"baseline.yaml", "voluntary.yaml", "mandated.yaml"} <= {p.name for p in SCENARIOS}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs(path):
    sc = load_scenario(path)
    short = sc.with_overrides({"horizon_months": min(sc.horizon_months, 24)}) if not sc.events.schedule else sc
    r = simulate(short)
    assert set(r.summary) == set(METRIC_DESCRIPTIONS)
    assert r.summary["n_collaborations"] > 0, f"{path.name}: no collaboration formed"
    assert len(r.timeseries) > 0 and len(r.organisations) == sc.population.n_orgs
    finite = [k for k, v in r.summary.items() if not np.isfinite(v)]
    assert set(finite) <= {
        "months_to_synergy",
        "mean_trust",
        "mean_faith",
        "mean_confidence",
        "mean_risk_tolerance",
        "mean_collaborative_behaviour",
        "share_pathological",
        "share_bureaucratic",
        "share_generative",
    }


def test_mandated_scenario_is_mandated_and_voluntary_is_not():
    mand, vol = simulate(load_scenario("mandated")), simulate(load_scenario("voluntary"))
    assert mand.timeseries["mandated"].all() and not vol.timeseries["mandated"].any()
