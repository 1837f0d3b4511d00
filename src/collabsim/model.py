"""The Mesa façade: ``CollabModel`` runs the numba engine; its agents are views into the State arrays.

So Mesa's own tools work on it: ``model.agents`` (an AgentSet of OrganisationAgent), ``mesa.DataCollector`` and
``mesa.batch_run``. Agents hold no state of their own; reading an attribute reads the engine's arrays.

    >>> model = CollabModel("baseline", seed=1, **{"population.n_orgs": 12, "horizon_months": 6})
    >>> model.run_model()
    >>> model.datacollector.get_model_vars_dataframe().shape[0]
    7
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from collabsim.engine import Engine
from collabsim.scenario import Scenario, load_scenario
from collabsim.variables import COLUMN, Level, names_at


class OrganisationAgent(mesa.Agent):
    """A view of organisation ``index``: organisation variables read ``State.O``; ``trust``, ``faith``... read the
    mean over its active collaborations (NaN when it has none)."""

    def __init__(self, model: CollabModel, index: int) -> None:
        super().__init__(model)
        self.index = index

    def __getattr__(self, name: str) -> Any:  # only called for names not found normally
        engine = self.__dict__.get("model") and self.model.engine
        if engine is None:
            raise AttributeError(name)
        if name in _ORG_VARS:
            return float(engine.state.O[COLUMN[name], self.index])
        if name in _MEMBER_VARS or name in _DYAD_VARS:
            if not self.n_collaborations:
                return float("nan")
            agg = engine.MO if name in _MEMBER_VARS else engine.DO
            return float(agg[COLUMN[name], self.index])
        raise AttributeError(name)

    @property
    def n_collaborations(self) -> int:
        st = self.model.engine.state
        return int(np.count_nonzero(st.mem_active & (st.mem_org == self.index)))

    @property
    def sector(self) -> str:
        from collabsim.population import SECTORS

        return SECTORS[self.model.engine.state.pop.sector[self.index]]

    @property
    def pos_km(self) -> tuple[float, float]:
        pop = self.model.engine.state.pop
        return float(pop.x[self.index]), float(pop.y[self.index])


_ORG_VARS = set(names_at(Level.ORG))
_MEMBER_VARS = set(names_at(Level.MEMBER))
_DYAD_VARS = set(names_at(Level.DYAD))


class CollabModel(mesa.Model):
    """A Mesa model whose step is one month of the numba engine.

    Args: scenario (Scenario, path or built-in name), seed (None: a fresh seed from Mesa's generator, so
    ``mesa.batch_run`` iterations differ), and dotted-key overrides as keyword arguments
    (``**{"partnering.regime": "mandated"}``), which is how ``mesa.batch_run`` passes its parameters.
    """

    def __init__(self, scenario: Scenario | str = "baseline", seed: int | None = None, **overrides: Any) -> None:
        super().__init__(seed=seed)
        if seed is None:  # Mesa's convention: no seed, a fresh run (e.g. each batch_run iteration) from Mesa's RNG
            seed = self.random.randrange(2**63)
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if overrides:
            sc = sc.with_overrides(overrides)
        self.scenario = sc
        self.engine = Engine(sc, seed=seed)
        self.engine.refresh_aggregates()
        for i in range(self.engine.state.n_org):
            OrganisationAgent(self, i)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "month": lambda m: m.engine.month,
                "mean_trust": lambda m: _nanmean(m.engine.state.D[COLUMN["trust"], m.engine.state.dyad_active()]),
                "mean_faith": lambda m: _nanmean(m.engine.state.M[COLUMN["faith"], m.engine.state.mem_active]),
                "collaborating": lambda m: _nanmean(
                    m.engine.state.M[COLUMN["collaborative_behaviour"], m.engine.state.mem_active]
                ),
                "care_quality": lambda m: float(m.engine.state.O[COLUMN["care_quality"]].mean()),
            },
            agent_reporters={
                "faith": "faith",
                "collaborative_behaviour": "collaborative_behaviour",
                "care_quality": "care_quality",
            },
        )
        self.running = sc.horizon_months > 0
        self.datacollector.collect(self)

    def step(self) -> None:
        self.engine.step()
        self.engine.refresh_aggregates()
        self.datacollector.collect(self)
        self.running = self.engine.month < self.scenario.horizon_months

    def run_model(self) -> None:
        while self.running:
            self.step()


def _nanmean(a: np.ndarray) -> float:
    return float(a.mean()) if len(a) else float("nan")
