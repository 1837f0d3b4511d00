"""The Mesa façade: CollabModel runs the engine; agents are views into the State, so Mesa's tools work."""

import math

import mesa
import numpy as np

from collabsim.engine import Engine
from collabsim.model import CollabModel, OrganisationAgent
from collabsim.variables import COLUMN

SMALL = {"population.n_orgs": 10, "horizon_months": 6}


def test_agents_are_views_into_the_engine_state():
    model = CollabModel("baseline", seed=4, **SMALL)
    assert len(model.agents) == 10 and all(isinstance(a, OrganisationAgent) for a in model.agents)
    model.step()
    a = model.agents.select(lambda a: a.n_collaborations > 0)[0]
    st = model.engine.state
    assert a.care_quality == st.O[COLUMN["care_quality"], a.index]
    st.O[COLUMN["care_quality"], a.index] = 0.123  # writing the state is seen through the view
    assert a.care_quality == 0.123
    mine = st.mem_active & (st.mem_org == a.index)
    assert math.isclose(a.faith, st.M[COLUMN["faith"], mine].mean())


def test_facade_runs_the_same_numbers_as_the_engine():
    model = CollabModel("baseline", seed=4, **SMALL)
    model.run_model()
    engine = Engine(model.scenario, seed=4)
    for _ in range(6):
        engine.step()
    np.testing.assert_array_equal(model.engine.state.M, engine.state.M)
    df = model.datacollector.get_model_vars_dataframe()
    assert len(df) == 7 and df["month"].tolist() == list(range(7))
    agents = model.datacollector.get_agent_vars_dataframe()
    assert set(agents.columns) >= {"faith", "care_quality"}


def test_mesa_batch_run_works():
    results = mesa.batch_run(
        CollabModel,
        parameters={"seed": [1, 2], "population.n_orgs": 8, "horizon_months": 3},
        iterations=1,
        max_steps=10,
        number_processes=1,
        display_progress=False,
    )
    assert len(results) == 2 * 8
    assert {r["seed"] for r in results} == {1, 2}
    assert all("care_quality" in r for r in results)


def test_no_seed_means_a_fresh_run_each_time():
    a, b = CollabModel("baseline", **SMALL), CollabModel("baseline", **SMALL)
    assert a.engine.seed != b.engine.seed
    c, d = CollabModel("baseline", seed=9, **SMALL), CollabModel("baseline", seed=9, **SMALL)
    np.testing.assert_array_equal(c.engine.state.O, d.engine.state.O)
