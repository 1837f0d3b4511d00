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
# large enough that the dyad rules and every mean take their parallel paths (kernels.*PARALLEL_MIN entities)
sc = load_scenario("baseline").with_overrides({"population.n_orgs": 2200, "population.region_km": 1000,
    "horizon_months": 18, "partnering.regime": "mandated", "partnering.type": "ics", "partnering.group_size": 5})
r = simulate(sc, seed=3)
assert r.engine.state.n_dyad >= kernels.PARALLEL_MIN, r.engine.state.n_dyad
assert r.engine.state.n_mem >= kernels.MEANS_PARALLEL_MIN, r.engine.state.n_mem
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
