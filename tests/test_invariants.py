"""Invariants under Hypothesis-generated scenarios, including extreme values: every state in [0, 1], no NaN or
inf, memberships consistent with collaborations; and reproducibility from the seed."""

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collabsim import simulate
from collabsim.engine import Engine
from collabsim.rules import DISSOLVED
from collabsim.scenario import INTERVENTION_TYPES, PARTNERSHIP_TYPES
from collabsim.variables import COLUMN
from conftest import small

unit = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


def check_invariants(engine: Engine) -> None:
    s = engine.state
    for name in ("S", "O", "K", "M", "D"):
        a = getattr(s, name)
        assert np.isfinite(a).all(), f"{name} has NaN or inf"
        assert (a >= 0.0).all() and (a <= 1.0).all(), f"{name} leaves [0, 1]: {a.min()}, {a.max()}"
    # memberships: an active member belongs to a running collaboration with at least two active members
    running = s.col_stage != DISSOLVED
    assert running[s.mem_col[s.mem_active]].all()
    n_active = np.bincount(s.mem_col[s.mem_active], minlength=s.n_col)
    assert (n_active[running] >= 2).all()
    assert (n_active[~running] == 0).all()
    # dyads join two members of the same collaboration, never an organisation to itself
    assert (s.mem_col[s.dyad_src] == s.mem_col[s.dyad_dst]).all()
    assert (s.mem_org[s.dyad_src] != s.mem_org[s.dyad_dst]).all()
    # an organisation is in at most one voluntary collaboration at a time
    vol = s.mem_active & (s.K[COLUMN["mandated"], s.mem_col] == 0.0)
    assert np.bincount(s.mem_org[vol], minlength=s.n_org).max(initial=0) <= 1


INTERVENTIONS = list(INTERVENTION_TYPES)
TRAITS = ("ambition", "vision_clarity", "conflict_resolution", "stakeholder_involvement", "external_broker", "funding")
interventions = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(INTERVENTIONS), "start_month": st.integers(0, 10), "coverage": unit, "intensity": unit}
    ),
    max_size=4,
)
schedule = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("pandemic"), "month": st.integers(0, 17), "severity": unit, "contact_cut": unit}
        ),
        st.fixed_dictionaries({"type": st.just("funding_end"), "month": st.integers(0, 17)}),
        st.fixed_dictionaries(
            {
                "type": st.just("mandate"),
                "month": st.integers(0, 17),
                "group_size": st.just(2),
                "assignment": st.sampled_from(["geographic", "buddy_better_performer"]),
            }
        ),
    ),
    max_size=3,
)


@settings(
    max_examples=int(os.environ.get("COLLABSIM_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    regime=st.sampled_from(["voluntary", "mandated"]),
    ptype=st.sampled_from(sorted(PARTNERSHIP_TYPES)),
    n_orgs=st.integers(2, 30),
    group_size=st.integers(2, 6),
    traits=st.fixed_dictionaries({k: unit for k in TRAITS}),
    env=st.tuples(unit, unit),
    turnover=unit,
    seed=st.integers(0, 2**31),
    stages=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    interventions=interventions,
    schedule=schedule,
    weight=st.sampled_from([0.0, 0.5, 3.0, 1e3]),
)
def test_invariants_hold_every_month(
    baseline, regime, ptype, n_orgs, group_size, traits, env, turnover, seed, stages, interventions, schedule, weight
):
    overrides = {
        "population.n_orgs": n_orgs,
        "horizon_months": 18,
        "partnering.regime": regime,
        "partnering.type": ptype,
        "partnering.group_size": min(group_size, n_orgs),
        "environment.regulatory_favourability": env[0],
        "environment.financial_constraints": env[1],
        "events.leadership_turnover_rate": turnover,
        "partnering.search_interval_months": 5,
        "dynamics.connecting_months": stages[0],
        "dynamics.planning_months": stages[1],
        "interventions": interventions,
        "events.schedule": schedule,
        "rules.weights": {"gl-trust-risk-loop": weight, "fn-significant-conflict-trust": weight},
    }
    overrides.update({f"partnering.{k}": v for k, v in traits.items()})
    engine = Engine(baseline.with_overrides(overrides), seed=seed)
    check_invariants(engine)
    for _ in range(18):
        engine.step()
        check_invariants(engine)


def test_same_seed_same_numbers_different_seed_different_numbers(baseline):
    sc = small(baseline)
    a, b, c = simulate(sc, seed=7), simulate(sc, seed=7), simulate(sc, seed=8)
    assert a.summary.keys() == b.summary.keys()
    np.testing.assert_array_equal(np.array(list(a.summary.values())), np.array(list(b.summary.values())))
    assert a.timeseries.equals(b.timeseries) and a.organisations.equals(b.organisations)
    # different seeds: different dynamics, not merely different positions
    assert not np.array_equal(a.timeseries["trust"].to_numpy(), c.timeseries["trust"].to_numpy(), equal_nan=True)
    assert a.summary != c.summary


def test_geographic_groups_cover_everyone_once():
    """Regulator footprints partition the organisations into groups of at least two (a short last run joins the
    one before), for every population size, including the odd ones Hypothesis first broke."""
    from collabsim.network import geographic_groups
    from collabsim.population import Population

    rng = np.random.default_rng(0)
    for n in range(2, 40):
        for size in range(2, n + 1):
            pop = Population(
                x=rng.uniform(0, 50, n),
                y=rng.uniform(0, 50, n),
                sector=np.zeros(n, np.int8),
                staff=np.ones(n),
                culture=np.zeros(n),
                it_system=np.zeros(n, np.int16),
                O=np.zeros((1, n)),
            )
            groups = geographic_groups(pop, size)
            assert sorted(np.concatenate(groups).tolist()) == list(range(n))
            assert all(len(g) >= 2 for g in groups)


def _tree_pairs(x, y, radius):
    """The k-d tree query partner search uses for many free organisations, here on any number of points."""
    from scipy.spatial import cKDTree

    from collabsim.network import MAX_CANDIDATES

    points = np.column_stack([x, y])
    dist, nbr = cKDTree(points).query(points, k=min(MAX_CANDIDATES + 1, len(x)), distance_upper_bound=radius)
    dist, nbr = np.atleast_2d(dist), np.atleast_2d(nbr)  # one point: the query returns 1-d arrays
    rows, slots = np.nonzero(np.isfinite(dist))
    return rows, nbr[rows, slots]


def test_candidate_scan_for_few_organisations_equals_the_tree():
    """Up to MAX_CANDIDATES + 1 free organisations partner search scans every pair instead of building a k-d tree:
    the same candidates within the (strict) radius, in the same order (nearest first), self included."""
    from collabsim.network import MAX_CANDIDATES, candidate_pairs

    rng = np.random.default_rng(3)
    pairs = 0
    for n in range(1, MAX_CANDIDATES + 2):
        for radius in (1.0, 20.0, 60.0, 500.0):
            x, y = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
            rows, cols = candidate_pairs(x, y, radius)
            want_rows, want_cols = _tree_pairs(x, y, radius)
            assert np.array_equal(rows, want_rows) and np.array_equal(cols, want_cols), (n, radius)
            pairs += len(rows) - n
    assert pairs > 1000  # most cases have candidates besides the organisation itself
    # a partner exactly at the radius is out, as with the tree's upper bound; equal distances keep index order
    rows, cols = candidate_pairs(np.array([0.0, 3.0, -3.0]), np.array([0.0, 4.0, -4.0]), 5.0)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [0, 1, 2]
    rows, cols = candidate_pairs(np.array([0.0, 1.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), 1.5)
    assert cols[rows == 0].tolist() == [0, 1, 2, 3]
