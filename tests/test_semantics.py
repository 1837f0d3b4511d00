"""Named functions and definitions checked against what they promise (docs/decisions.md, docs/model.md)."""

import math

import numpy as np

from collabsim import simulate
from collabsim.engine import IMPLEMENTATION, MAINTENANCE, Engine
from collabsim.network import formalisation_optimum
from collabsim.rules import load_rule_table
from collabsim.variables import COLUMN
from conftest import small


def test_rule_weights_in_a_scenario_multiply_the_table_weights():
    table = load_rule_table()
    base = {r.id: r.weight for r in table.rows}
    out = {r.id: r.weight for r in table.with_overrides(weights={"rf-mou-trust-risk": 2.0}).rows}
    assert out["rf-mou-trust-risk"] == 2.0 * base["rf-mou-trust-risk"]
    by_cmoc = table.with_overrides(weights={"fn-trust-faith-collab-behaviour": 0.5}, disable=["gl-faith-effort"]).rows
    for r in by_cmoc:
        if r.cmoc == "fn-trust-faith-collab-behaviour":  # a catalogue id scales all its rows
            assert r.weight == 0.5 * base[r.id]
        elif r.cmoc == "gl-faith-effort":
            assert r.weight == 0.0
        else:
            assert r.weight == base[r.id]


def test_without_collaboration_performance_stays_at_its_own_level(baseline):
    """Nobody accepts a partner, so nothing collaborates: the Box 2 chain must not move care quality, coverage or
    culture away from the organisation's own level (only the O(weight) bias of the relaxation remains), and no
    collaboration gain (savings, coordination) appears."""
    r = simulate(small(baseline, **{"partnering.acceptance_threshold": 1.0, "horizon_months": 120}), seed=3)
    assert r.summary["n_collaborations"] == 0
    o = r.organisations
    assert np.allclose(o["care_quality"], o["baseline_performance"], atol=0.01)
    assert np.allclose(o["patient_coverage"], o["baseline_performance"], atol=0.01)
    assert np.allclose(o["organisational_culture"], o["improvement_culture"], atol=0.01)
    assert (o[["cost_savings", "coordination", "economies_of_scale"]] == 0).all().all()
    assert o["mean_faith"].isna().all()


def test_below_the_threshold_behaviour_never_rises(baseline):
    """gl-threshold-synergy is a switch: a member below the threshold does not become more collaborative."""
    engine = Engine(small(baseline, **{"horizon_months": 36}), seed=5)
    seen_below = 0
    for _ in range(36):
        before = engine.state.M[COLUMN["collaborative_behaviour"]].copy()
        engine.step()
        st = engine.state
        below = st.mem_active[: len(before)] & (st.M[COLUMN["above_threshold"], : len(before)] == 0)
        seen_below += below.sum()
        assert (st.M[COLUMN["collaborative_behaviour"], : len(before)][below] <= before[below] + 1e-15).all()
    assert seen_below > 0, "no member was ever below the threshold: the test checks nothing"


def test_maintenance_means_synergy_now(baseline):
    """A collaboration is in maintenance exactly while enough of its members are past the threshold, and falls
    back to implementation (inertia) when they are not."""
    sc = small(
        baseline,
        **{
            "horizon_months": 60,
            "partnering.regime": "mandated",
            "partnering.type": "ics",
            "partnering.group_size": 4,
            "dynamics.threshold_hysteresis": 0.0,  # members cross both ways often: both halves of the switch show
        },
    )
    engine = Engine(sc, seed=2)
    fell_back = False
    for _ in range(60):
        was = engine.state.col_stage.copy()
        engine.step()
        engine.refresh_aggregates()
        st = engine.state
        share = engine.MK[COLUMN["above_threshold"]]
        enough = share >= sc.dynamics.synergy_share
        late = np.isin(st.col_stage, (IMPLEMENTATION, MAINTENANCE))
        assert ((st.col_stage == MAINTENANCE) == enough)[late].all()
        fell_back |= ((was[: len(st.col_stage)] == MAINTENANCE) & (st.col_stage[: len(was)] == IMPLEMENTATION)).any()
    reached = st.col_synergy_month >= 0
    assert reached.any()
    assert (st.col_synergy_month[reached] > st.col_formed[reached]).all()
    assert fell_back, "no collaboration fell back from synergy: the test checks only half the switch"


def test_funding_end_applies_to_collaborations_formed_later(baseline):
    sc = small(
        baseline,
        **{
            "partnering.funding": 1.0,
            "partnering.search_interval_months": 6,
            "partnering.leave_after_months": 1,
            "partnering.leave_faith_threshold": 0.6,
            "events.schedule": [{"type": "funding_end", "month": 3}],
        },
    )
    engine = Engine(sc, seed=1)
    for _ in range(24):
        engine.step()
    st = engine.state
    later = st.col_formed > 3
    assert later.any(), "no collaboration formed after the funding ended"
    assert (st.K[COLUMN["external_funding"], later] == 0).all()
    assert (st.K[COLUMN["external_funding"], st.col_formed == 0] == 0).all()


def test_formalisation_optimum_follows_type_and_regime():
    assert formalisation_optimum("federation", False) == 0.5  # Table 2: a federation needs an MoU
    assert formalisation_optimum("joint_venture", False) == 1.0  # a new legal entity: a contract
    assert formalisation_optimum("informal_partnering", False) < 0.5
    assert formalisation_optimum("buddying", True) == 0.6  # Table 11: mandated types need legal frameworks
    assert formalisation_optimum("federation", True) >= formalisation_optimum("federation", False)


def test_months_to_synergy_counts_months_of_dynamics(baseline):
    sc = small(baseline, **{"dynamics.connecting_months": 0, "dynamics.planning_months": 0, "horizon_months": 30})
    r = simulate(sc, seed=1)
    ts = r.timeseries
    first = ts[ts["stage"] == "maintenance"].groupby("collaboration")["month"].min()
    assert len(first)
    # the timeseries row of month m is the state after m months: the first maintenance row is months_to_synergy
    assert math.isclose(r.summary["months_to_synergy"], float(np.median(first.to_numpy())))


def test_past_the_threshold_a_member_stays_past_within_the_hysteresis():
    """decisions.md 25: a member crosses at the thresholds and leaves only more than the hysteresis below them."""
    from collabsim import kernels  # noqa: PLC0415

    P = np.zeros(kernels.N_PARAMETERS)
    P[kernels.P_THRESHOLD_RISK], P[kernels.P_THRESHOLD_FAITH], P[kernels.P_HYSTERESIS] = 0.5, 0.6, 0.05
    risk = np.array([0.50, 0.47, 0.44, 0.47, 0.50, 0.70])
    faith = np.array([0.60, 0.60, 0.60, 0.60, 0.56, 0.54])
    before = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    M = np.zeros((len(COLUMN), len(risk)))
    M[COLUMN["risk_tolerance"]], M[COLUMN["faith"]], M[COLUMN["above_threshold"]] = risk, faith, before
    kernels.threshold(P, M)
    # crosses at the thresholds; stays within 0.05 below; leaves further below; does not cross from below inside
    # the band; faith counts the same way
    assert M[COLUMN["above_threshold"]].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
