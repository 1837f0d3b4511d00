"""collabsim: an agent-based simulation of inter-organisational collaboration in health care.

The theory (Millar et al. 2023) is executable data: every monthly update is a rule of ``data/rules.yaml`` naming
the CMOC it implements. Start with ``simulate(load_scenario("baseline"))`` or ``collabsim run``; run designs, arms
and replications with ``sweep(scenario, out=...)`` or ``collabsim sweep`` and read them with ``load_results``;
compare two arms with ``compare(scenario, out=...)`` or ``collabsim compare``.
"""

import os

# Numba's parallel kernels run on OpenMP threads; by default idle threads spin for a while before they sleep, which
# makes two threads several times slower than one when another process keeps a core busy (docs/performance.md).
# Sleeping at once costs about 10 microseconds per parallel region on an idle machine. Set before numba starts its
# threads; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collabsim.api import SimulationResult, simulate, simulate_replicates  # noqa: E402
from collabsim.compare import Comparison, compare, load_comparison  # noqa: E402
from collabsim.io import SweepResults, load_results  # noqa: E402
from collabsim.scenario import Scenario, load_scenario  # noqa: E402
from collabsim.sweeps import sweep  # noqa: E402

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
    "simulate_replicates",
    "sweep",
]
__version__ = "0.1.0"
