"""Benchmark the hot loop: numba engine vs the plain-Python Mesa reference, and scaling with the population.

    python benchmarks/bench_engine.py                 # quick: ratio on 20 organisations, scaling to 7,000
    python benchmarks/bench_engine.py --full --json out.json

Reports medians of repeated runs (compilation excluded by a warm-up run) and the engine/reference speed ratio.
Nothing here is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numba

from collabsim import load_scenario
from collabsim.engine import Engine
from collabsim.reference import ReferenceModel


def time_run(cls, scenario, seed: int, months: int) -> tuple[float, float]:
    """(setup seconds, seconds per month) of one run."""
    t0 = time.perf_counter()
    model = cls(scenario, seed=seed)
    t1 = time.perf_counter()
    for _ in range(months):
        model.step()
    return t1 - t0, (time.perf_counter() - t1) / months


def median_run(cls, scenario, months: int, repeats: int) -> dict[str, float]:
    runs = [time_run(cls, scenario, seed, months) for seed in range(repeats)]
    return {"setup_s": statistics.median(r[0] for r in runs), "per_month_s": statistics.median(r[1] for r in runs)}


def scenario_for(n_orgs: int, regime: str, months: int):
    # keep density constant: region side grows with sqrt(n) (20 organisations on 100 km)
    region = 100.0 * (n_orgs / 20) ** 0.5
    overrides = {
        "population.n_orgs": n_orgs,
        "population.region_km": min(region, 2000.0),
        "horizon_months": months,
        "partnering.regime": regime,
    }
    if regime == "mandated":
        overrides.update({"partnering.type": "ics", "partnering.group_size": 5})
    return load_scenario("baseline").with_overrides(overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="more repeats and larger populations")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    repeats = 5 if args.full else 3
    results: dict = {
        "python": platform.python_version(),
        "numba": numba.__version__,
        "threads": numba.get_num_threads(),
        "ratio": [],
        "scaling": [],
    }
    time_run(Engine, scenario_for(20, "voluntary", 3), 0, 3)  # compile once

    print(f"engine vs reference (median of {repeats}, seconds per simulated month)")
    for n, regime in ((20, "voluntary"), (20, "mandated"), (60, "mandated")):
        sc = scenario_for(n, regime, 24)
        eng, ref = median_run(Engine, sc, 24, repeats), median_run(ReferenceModel, sc, 24, repeats)
        ratio = ref["per_month_s"] / eng["per_month_s"]
        results["ratio"].append({"n_orgs": n, "regime": regime, "engine": eng, "reference": ref, "ratio": ratio})
        print(
            f"  {n:>5} orgs {regime:<9}  engine {eng['per_month_s'] * 1e3:8.3f} ms   "
            f"reference {ref['per_month_s'] * 1e3:9.2f} ms   x{ratio:,.0f}"
        )

    sizes = (100, 1000, 7000, 30000) if args.full else (100, 1000, 7000)
    print("engine scaling (120 months)")
    for regime in ("voluntary", "mandated"):
        for n in sizes:
            sc = scenario_for(n, regime, 120)
            r = median_run(Engine, sc, 120, 1 if n >= 7000 else repeats)
            total = r["setup_s"] + 120 * r["per_month_s"]
            results["scaling"].append({"n_orgs": n, "regime": regime, **r, "total_120_months_s": total})
            print(
                f"  {n:>6} orgs {regime:<9}  setup {r['setup_s']:7.2f} s   {r['per_month_s'] * 1e3:8.2f} ms/month"
                f"   120 months {total:7.2f} s"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
