"""Results do not depend on the numba thread count: run the same scenario with 1 and 2 threads in subprocesses
(NUMBA_NUM_THREADS is read once per process) and compare the outputs bitwise."""

import json
import os
import subprocess
import sys

SCRIPT = """
import json, sys
import numba
from collabsim import kernels, load_scenario, simulate
from collabsim.variables import Level, Phase
# large enough that the dyad-and-membership pass (several chunks of memberships, estimated work above
# kernels.PARALLEL_WORK) and the means take their parallel paths; test_kernels checks the other kernels' parallel
# paths directly
sc = load_scenario("baseline").with_overrides({"population.n_orgs": 7000, "population.region_km": 1870,
    "horizon_months": 18, "partnering.regime": "mandated", "partnering.type": "ics", "partnering.group_size": 7})
r = simulate(sc, seed=3)
e = r.engine
def work(level, phase, n):
    g = e.plan.group(level, phase)
    return n * (e.plan.p_mech_ptr[g.stop] - e.plan.p_mech_ptr[g.start])
assert work(Level.DYAD, Phase.MECHANISMS, e.state.n_dyad) >= kernels.PARALLEL_WORK
assert work(Level.MEMBER, Phase.MECHANISMS, e.state.n_mem) >= kernels.PARALLEL_WORK
assert len(kernels.membership_bounds(e.state.mem_dyad_ptr, e.state.n_mem)) > 3
print(json.dumps({"threads": numba.get_num_threads(), "summary": r.summary,
                  "faith": r.organisations["mean_faith"].fillna(-1).tolist()}))
"""


def run_with_threads(n: int) -> dict:
    env = {**os.environ, "NUMBA_NUM_THREADS": str(n)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_and_two_threads_give_identical_results():
    one, two = run_with_threads(1), run_with_threads(2)
    assert one["threads"] == 1 and two["threads"] == 2
    assert json.dumps(one["summary"]) == json.dumps(two["summary"])
    assert one["faith"] == two["faith"]
