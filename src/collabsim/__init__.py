"""collabsim: an agent-based simulation of inter-organisational collaboration in health care.

The theory (Millar et al. 2023) is executable data: every monthly update is a rule of ``data/rules.yaml`` naming
the CMOC it implements. Start with ``simulate(load_scenario("baseline"))`` or ``collabsim run``; run designs, arms
and replications with ``sweep(scenario, out=...)`` or ``collabsim sweep`` and read them with ``load_results``;
compare two arms with ``compare(scenario, out=...)`` or ``collabsim compare``.
"""

from collabsim.api import SimulationResult, simulate
from collabsim.compare import Comparison, compare, load_comparison
from collabsim.io import SweepResults, load_results
from collabsim.scenario import Scenario, load_scenario
from collabsim.sweeps import sweep

__all__ = [
    "Comparison",
    "Scenario",
    "SimulationResult",
    "SweepResults",
    "compare",
    "load_comparison",
    "load_results",
    "load_scenario",
    "simulate",
    "sweep",
]
__version__ = "0.1.0"
