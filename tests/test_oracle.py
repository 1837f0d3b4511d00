"""The numba engine against the plain-Python Mesa reference: same scenario, same seed, same draws, and every state
variable equal to 1e-9 at every step."""

import numpy as np
import pytest

from collabsim.engine import Engine
from collabsim.reference import ReferenceModel
from collabsim.rules import DISSOLVED
from collabsim.scenario import INTERVENTION_TYPES
from conftest import small

TOL = 1e-9


def compare(engine: Engine, ref: ReferenceModel, month: int) -> None:
    st, arrays = engine.state, ref.arrays()
    assert arrays["K"].shape == st.K.shape, f"month {month}: collaborations differ"
    assert arrays["D"].shape == st.D.shape, f"month {month}: dyads differ"
    for level in ("S", "O", "K", "M", "D"):
        got, want = getattr(st, level), arrays[level]
        if got.size:
            err = np.abs(got - want).max()
            assert err <= TOL, f"month {month}: level {level} differs by {err:.3g}"
    np.testing.assert_array_equal(st.col_stage, arrays["col_stage"], err_msg=f"month {month}: stages")
    np.testing.assert_array_equal(st.mem_active, arrays["mem_active"], err_msg=f"month {month}: memberships")


CASES = {
    "voluntary": {},
    "mandated": {"partnering.regime": "mandated", "partnering.type": "ics", "partnering.group_size": 4},
    "buddying": {
        "partnering.regime": "mandated",
        "partnering.type": "buddying",
        "partnering.assignment": "buddy_better_performer",
    },
    # faith low enough that members leave, collaborations dissolve and free organisations search again
    "churn": {
        "horizon_months": 48,
        "partnering.leave_after_months": 2,
        "partnering.leave_faith_threshold": 0.47,
        "partnering.search_interval_months": 6,
        "events.leadership_turnover_rate": 0.2,
        "events.task_failure_rate": 0.3,
        "dynamics.baseline_faith": 0.3,
        "environment.financial_constraints": 1.0,
    },
    "shocks_and_interventions": {
        "events.schedule": [
            {"type": "mandate", "month": 5, "assignment": "geographic", "group_size": 3},
            {"type": "pandemic", "month": 3, "duration_months": 6},
            {"type": "funding_end", "month": 10},
        ],
        "interventions": [
            {"type": "peer_review", "start_month": 2, "end_month": 12, "coverage": 0.7},
            {"type": "interoperable_it"},
            {"type": "champions", "coverage": 0.5},
            {"type": "mou", "start_month": 4},
        ],
    },
    "crisis_buddy_mandate_no_setup": {
        "dynamics.connecting_months": 0,
        "dynamics.planning_months": 0,
        "events.schedule": [
            {"type": "crisis", "month": 2, "duration_months": 5, "severity": 0.9},
            {
                "type": "mandate",
                "month": 4,
                "assignment": "buddy_better_performer",
                "partnership_type": "buddying",
                "group_size": 2,
            },
        ],
    },
    "mandated_churn_all_interventions": {
        "partnering.regime": "mandated",
        "partnering.type": "provider_collaborative",
        "partnering.group_size": 3,
        "partnering.leave_after_months": 1,
        "partnering.leave_faith_threshold": 0.9,
        "interventions": [
            {"type": t, "start_month": i, "end_month": 10 + i, "coverage": 0.3 + 0.07 * i, "intensity": 0.9}
            for i, t in enumerate(INTERVENTION_TYPES)
        ],
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [1, 2])
def test_engine_matches_reference_every_step(baseline, case, seed):
    sc = small(baseline, **CASES[case])
    engine, ref = Engine(sc, seed=seed), ReferenceModel(sc, seed=seed)
    compare(engine, ref, 0)
    for month in range(sc.horizon_months):
        engine.step()
        ref.step()
        compare(engine, ref, month + 1)
    st = engine.state
    assert st.n_col > 0, "the case formed no collaboration, so it tests nothing"
    if case == "churn":  # the case must exercise leaving, dissolution, re-partnering and synergy
        assert (st.col_stage == DISSOLVED).any() and (st.col_formed > 0).any() and (st.col_synergy_month >= 0).any()


def test_a_whole_run_equals_month_by_month(baseline):
    """Compiled segments between formation months give the same numbers as one compiled month at a time."""
    sc = small(baseline, **CASES["churn"])
    whole, stepped = Engine(sc, seed=4), Engine(sc, seed=4)
    whole.run()
    for _ in range(sc.horizon_months):
        stepped.step()
    for level in ("O", "K", "M", "D"):
        np.testing.assert_array_equal(getattr(whole.state, level), getattr(stepped.state, level))
    np.testing.assert_array_equal(whole.state.col_stage, stepped.state.col_stage)


def test_reference_handles_a_population_with_no_collaboration(baseline):
    sc = small(baseline, **{"partnering.acceptance_threshold": 1.0, "horizon_months": 3})
    engine, ref = Engine(sc, seed=1), ReferenceModel(sc, seed=1)
    for month in range(3):
        engine.step()
        ref.step()
        compare(engine, ref, month + 1)
    assert engine.state.n_col == 0
