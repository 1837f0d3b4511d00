"""Runs joined into one kernel call (engine.advance_together, api.simulate_replicates, sweep workers) get exactly
the numbers each gets alone: the joined state is the runs' entities side by side, and every event draw is keyed by
its run and its index in its run."""

import numpy as np
import pytest

from collabsim import kernels, load_scenario, simulate
from collabsim.api import simulate_replicates
from collabsim.engine import Engine, advance_together
from test_oracle import CASES


def everything(e: Engine) -> dict[str, np.ndarray]:
    """Every array a run ends with: its state, aggregates and recorded months."""
    out = {k: v for k, v in vars(e.state).items() if isinstance(v, np.ndarray)}
    out.update({f"agg{i}": a for i, a in enumerate(e.agg)})
    # every recorded month in order (months, fields, collaborations): the same however the run was split
    out["recorded"] = np.concatenate([rec.ravel() for _, rec in e.records])
    return out


def assert_same_run(a: Engine, b: Engine) -> None:
    xa, xb = everything(a), everything(b)
    assert xa.keys() == xb.keys()
    for name in xa:
        assert xa[name].dtype == xb[name].dtype, name
        assert np.array_equal(xa[name], xb[name], equal_nan=True), name  # bit for bit: no tolerance


CASE_NAMES = ("voluntary", "churn", "shocks_and_interventions", "crisis_buddy_mandate_no_setup")


def assert_joined_equal_alone(sc, runs: list[tuple[int, tuple[int, ...]]]) -> list[Engine]:
    alone = []
    for seed, key in runs:
        e = Engine(sc, seed=seed, key=key)
        e.run()
        alone.append(e)
    joined = [Engine(sc, seed=seed, key=key) for seed, key in runs]
    advance_together(joined, sc.horizon_months)
    for a, b in zip(alone, joined, strict=True):
        assert_same_run(a, b)
    # the check can fail: the runs differ from each other, also in their numbers of entities (so the union's
    # index shifting is exercised and a run's part copied back from the wrong place would be caught)
    assert not np.array_equal(alone[0].state.O, alone[1].state.O)
    assert len({(e.state.n_col, e.state.n_mem, e.state.n_dyad) for e in alone}) > 1
    return joined


@pytest.mark.parametrize("case", CASE_NAMES)
def test_joined_runs_equal_each_run_alone(case):
    sc = load_scenario("baseline").with_overrides({"population.n_orgs": 14, "horizon_months": 30, **CASES[case]})
    assert_joined_equal_alone(sc, [(sc.seed, (0,)), (sc.seed, (1,)), (sc.seed + 1, (0,)), (sc.seed, (5,))])


def test_a_union_large_enough_for_chunks_and_parallel_passes():
    """Six runs of 100 organisations with mandated groups of 12 and 3: the union has about 8,000 dyads, so its
    rule passes run in several chunks (in parallel where there are threads) that cut across runs, while each run
    alone takes the serial path in one chunk."""
    sc = load_scenario("baseline").with_overrides(
        {
            "population.n_orgs": 100,
            "horizon_months": 14,
            "events.schedule": [
                {"type": "mandate", "month": 3, "assignment": "geographic", "group_size": 12},
                {"type": "mandate", "month": 8, "assignment": "geographic", "group_size": 3},
            ],
        }
    )
    joined = assert_joined_equal_alone(sc, [(sc.seed, (k,)) for k in range(6)])
    assert sum(e.state.n_dyad for e in joined) > 2 * kernels.CHUNK


def test_joining_in_steps_equals_one_call():
    """advance_together stops where asked, like Engine.advance: two steps give what one call gives."""
    sc = load_scenario("baseline").with_overrides({"population.n_orgs": 12, "horizon_months": 26})
    one = [Engine(sc, key=(k,)) for k in range(3)]
    advance_together(one, 26)
    two = [Engine(sc, key=(k,)) for k in range(3)]
    advance_together(two, 13)
    assert {e.month for e in two} == {13}
    advance_together(two, 26)
    for a, b in zip(one, two, strict=True):
        assert a.month == b.month == 26
        assert_same_run(a, b)


def test_simulate_replicates_equals_simulate(monkeypatch):
    from collabsim import engine

    sc = load_scenario("baseline").with_overrides({"population.n_orgs": 16, "horizon_months": 24})
    monkeypatch.setattr(engine, "JOIN_ORGS", 32)  # two runs at a time: the three keys take two joined calls
    calls = []
    real = engine.advance_together
    monkeypatch.setattr("collabsim.api.advance_together", lambda es, to: calls.append(len(es)) or real(es, to))
    keys = [(0,), (3,), (4,)]
    joined = simulate_replicates(sc, 7, keys)
    assert calls == [2, 1]
    for key, result in zip(keys, joined, strict=True):
        own = simulate(sc, seed=7, key=key)
        assert result.summary.keys() == own.summary.keys()
        for k, v in own.summary.items():
            assert np.array_equal(v, result.summary[k], equal_nan=True), k
        assert_same_run(own.engine, result.engine)
        assert result.manifest["seed"] == 7 and result.manifest["key"] == list(key)


def test_only_runs_of_one_scenario_at_one_month_can_be_joined():
    sc = load_scenario("baseline").with_overrides({"population.n_orgs": 10, "horizon_months": 12})
    other = sc.with_overrides({"horizon_months": 12})  # equal content, another object: its constants may differ
    with pytest.raises(ValueError, match="one scenario"):
        advance_together([Engine(sc), Engine(other)], 12)
    ahead = Engine(sc)
    ahead.advance(3)
    with pytest.raises(ValueError, match="same month"):
        advance_together([Engine(sc), ahead], 12)
    with pytest.raises(ValueError, match="more than once"):
        advance_together([ahead, ahead], 12)
    advance_together([], 12)  # nothing to run
