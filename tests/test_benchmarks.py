"""Smoke run of the benchmark harness at tiny size: it runs and reports; it never asserts a time."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_harness():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_measures_a_tiny_configuration():
    bench = load_harness()
    sc = bench.scenario_for(12, "mandated", 3, 4)
    row = bench.time_engine(sc, seed=0)
    assert row["orgs"] == 12 and row["dyads"] == 4 * 3 * 2  # four groups of three: six ordered pairs each
    assert set(row) == {"setup_s", "run_s", "dyads", "orgs"}
    assert bench.time_reference(sc, seed=0, months=1) >= 0.0
    assert bench.stats([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert set(bench.QUICK) <= set(bench.CONFIGS)
