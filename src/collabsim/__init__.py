"""collabsim: an agent-based simulation of inter-organisational collaboration in health care.

The theory (Millar et al. 2023) is executable data: every monthly update is a rule of ``data/rules.yaml`` naming
the CMOC it implements. Start with ``simulate(load_scenario("baseline"))`` or ``collabsim run``.
"""

from collabsim.api import SimulationResult, simulate
from collabsim.scenario import Scenario, load_scenario

__all__ = ["Scenario", "SimulationResult", "load_scenario", "simulate"]
__version__ = "0.1.0"
