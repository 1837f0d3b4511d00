"""The Python API: ``simulate(scenario, seed=...)`` -> SimulationResult."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabsim.engine import Engine, advance_together, joined_replicates
from collabsim.population import SECTORS
from collabsim.recorder import summarise, timeseries
from collabsim.scenario import Scenario, load_scenario
from collabsim.variables import COLUMN, Level, names_at


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("collabsim", "numpy", "numba", "mesa", "pandas", "scipy", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@dataclass
class SimulationResult:
    """The results of one run. ``summary`` is computed at once; ``manifest`` (what produced the run), ``timeseries``
    (one row per month and collaboration) and ``organisations`` (one row per organisation at the end) are built on
    first access, so a sweep pays only for what it stores (a manifest dumps and hashes the whole scenario)."""

    summary: dict[str, float]
    engine: Engine = field(repr=False)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        sc, engine = self.engine.scenario, self.engine
        return {
            "scenario": sc.resolved_dict(),
            "scenario_hash": sc.content_hash(),
            "seed": engine.seed,
            "key": list(engine.streams.key),
            "horizon_months": sc.horizon_months,
            "versions": dict(versions()),
        }

    @cached_property
    def timeseries(self) -> pd.DataFrame:
        return timeseries(self.engine.records, self.engine.state)

    @cached_property
    def organisations(self) -> pd.DataFrame:
        return organisations_frame(self.engine)


def organisations_frame(engine: Engine) -> pd.DataFrame:
    st = engine.state
    pop = st.pop
    df = pd.DataFrame(
        {
            "organisation": range(st.n_org),
            "sector": pd.Categorical.from_codes(pop.sector, list(SECTORS)),
            "x_km": pop.x,
            "y_km": pop.y,
            "staff": pop.staff,
            "it_system": pop.it_system,
        }
    )
    for col, name in enumerate(names_at(Level.ORG)):
        df[name] = st.O[col]
    counts = np.bincount(st.mem_org[st.mem_active], minlength=st.n_org)
    none = counts == 0  # no running collaboration: nothing to average (NaN), as in the Mesa façade
    for agg, names in (
        (engine.MO, ("faith", "risk_tolerance", "collaborative_behaviour")),
        (engine.DO, ("trust", "confidence")),
    ):
        for name in names:
            df["mean_" + name] = np.where(none, np.nan, agg[COLUMN[name]])
    df["n_active_collaborations"] = counts
    return df


def run_engine(engine: Engine) -> SimulationResult:
    """Run the engine to its horizon and collect its results."""
    engine.run()
    return _result(engine)


def _result(engine: Engine) -> SimulationResult:
    """The results of an engine that has run to its horizon."""
    engine.refresh_aggregates()
    agg = {"DK": engine.DK, "MK": engine.MK}
    _, last = engine.records[-1]
    summary = summarise(engine.state, agg, engine.scenario.dynamics.synergy_share, last[-1, -1])
    return SimulationResult(summary, engine)


def _scenario_for(scenario: Scenario | str | Path | None, seed: int | None) -> Scenario:
    if scenario is None:
        scenario = "baseline"
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if seed is not None and seed != scenario.seed:  # the manifest then records the seed actually used
        scenario = scenario.with_overrides({"seed": int(seed)})
    return scenario


def simulate(
    scenario: Scenario | str | Path | None = None, seed: int | None = None, key: tuple[int, ...] = ()
) -> SimulationResult:
    """Run one scenario (a Scenario, a path, a built-in name, or None for the baseline) and return its results.

    ``seed`` defaults to the scenario's; ``key`` names the run inside a sweep (e.g. ``(replicate,)``): the random
    streams are those of ``SeedSequence(seed, spawn_key=key)``, so a run's numbers depend only on (seed, key).
    """
    return run_engine(Engine(_scenario_for(scenario, seed), seed=seed, key=key))


def simulate_replicates(
    scenario: Scenario | str | Path | None, seed: int | None, keys: Sequence[tuple[int, ...]]
) -> list[SimulationResult]:
    """``[simulate(scenario, seed, key) for key in keys]``, with the same results, but the runs' compiled months
    joined into one kernel call per segment (``engine.advance_together``), ``engine.joined_replicates(scenario)``
    runs at a time (up to 640 organisations in all). Small scenarios run about twice as fast a run (their months are
    mostly fixed costs per rule pass); from a few hundred organisations a run is per-entity work and runs alone.
    Sweeps run their replicates this way."""
    sc = _scenario_for(scenario, seed)
    step = joined_replicates(sc)
    out: list[SimulationResult] = []
    for lo in range(0, len(keys), step):
        engines = [Engine(sc, seed=seed, key=key) for key in keys[lo : lo + step]]
        advance_together(engines, sc.horizon_months)
        out += [_result(e) for e in engines]
    return out
