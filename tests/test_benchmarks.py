"""Smoke run of the benchmark harness at tiny size: it runs and reports; it never asserts a time."""

from contextlib import contextmanager

import numba
import numpy as np
import pytest

from collabsim import bench
from collabsim.cli import build_parser
from collabsim.variables import N_VARS, Level


@contextmanager
def _threads(n):
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def test_harness_measures_a_tiny_configuration():
    sc = bench.scenario_for(12, "mandated", 3, 4)
    row = bench.time_engine(sc, seed=0)
    assert row["orgs"] == 12 and row["dyads"] == 4 * 3 * 2  # four groups of three: six ordered pairs each
    assert set(row) == {"setup_s", "run_s", "dyads", "orgs", "memory_bytes", "entities"}
    assert row["entities"] == {"dyad": 24, "membership": 12, "collaboration": 4, "organisation": 12}
    # a dyad's arrays: its float64 variables, source and destination (int32), base IT, collaboration and
    # organisation maps (int64)
    assert row["memory_bytes"]["dyad"] == row["dyads"] * (8 * N_VARS[Level.DYAD] + 4 + 4 + 8 + 8 + 8)
    assert row["memory_bytes"]["organisation"] > row["orgs"] * 8 * N_VARS[Level.ORG]
    assert row["memory_bytes"]["records"] > 0  # the four recorded months
    assert bench.time_reference(sc, seed=0, months=1) >= 0.0
    assert bench.stats([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert set(bench.QUICK) <= set(bench.CONFIGS)


def test_speedup_runs_both_thread_counts_and_compares_their_states():
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    sc = bench.scenario_for(12, "mandated", 3, 4)
    calls = []
    loops = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}  # stand-ins for the ideal loops
    out = bench.time_speedup(sc, repeats=2, threads=threads, loops=loops)
    assert out["threads"] == threads and out["ratio"]["n"] == 2 and out["ratio"]["min"] > 0.0
    assert out["identical"]  # a run ends in the same state on one thread and on several
    assert set(out["ideal_loops"]) == {"a", "b"} and all(m["n"] == 2 for m in out["ideal_loops"].values())
    assert calls == ["a", "b"] * 2 + ["a", "a", "b", "b"] * 2  # warmed up on both thread counts; a seed: each on both
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # the caller's setting is restored
    a, b = (bench.time_engine(sc, seed, digest=True)["digest"] for seed in (0, 1))
    assert a != b  # the digest tells different runs apart


def test_collabsim_bench_parses_its_options():
    args = build_parser().parse_args(["bench", "--quick", "--threads", "1", "--speedup"])
    assert args.quick and args.threads == 1 and args.speedup and args.handler.__name__ == "_cmd_bench"


def test_bench_repeats_overrides_the_configurations_and_rejects_non_positive(capsys):
    from collabsim import cli

    assert build_parser().parse_args(["bench", "--only", "small", "--repeats", "7"]).repeats == 7
    assert build_parser().parse_args(["bench"]).repeats is None  # each configuration's own
    for bad in ("0", "-2", "three"):
        assert cli.main(["bench", "--repeats", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("collabsim: error: argument --repeats") and repr(bad) in err and ">= 1" in err


def test_machine_probes_compute_what_they_say_on_any_number_of_threads():
    from collabsim import probe

    out = np.zeros(probe.ITEMS)
    src = np.linspace(0.0, 1.0, 1_000)
    dst = np.empty_like(src)
    x = (np.arange(probe.ITEMS)[:, None] + np.arange(probe.WIDTH)[None, :]) * 1e-3
    for _ in range(3):  # the loop's three iterations, written out in NumPy
        x = x * (1.0 - 1e-9 * x) + 1e-7
    with _threads(min(2, numba.config.NUMBA_NUM_THREADS)):
        probe.compute_loop(3, out)
        probe.stream_loop(src, dst)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-13)  # every item, by whichever thread (NumPy sums pairwise)
    np.testing.assert_array_equal(dst, 1.0001 * src + 0.5)
    loops = probe.probes(compute_reps=1, stream_values=64, passes=1)
    assert set(loops) == {"compute", "stream"}
    for loop in loops.values():  # the closures run (their loops' values are checked above)
        loop()


def test_scaling_exponents_and_summary_recover_known_power_laws():
    def row(dyads, months, regime="mandated"):  # a month takes 1e-8 dyads^0.9 s; the set-up 2e-6 dyads^1.2 s
        n = {"dyad": dyads, "membership": dyads // 6, "collaboration": dyads // 42, "organisation": dyads // 6}
        return {
            "regime": regime,
            "dyads": dyads,
            "months": months,
            "run_s": {"median": months * 1e-8 * dyads**0.9},
            "setup_s": {"median": 2e-6 * dyads**1.2},
            "entities": n,
            "memory_bytes": {
                "dyad": 168 * dyads,
                "membership": 0,
                "collaboration": 0,
                "organisation": 1000 * n["organisation"],
                "records": 10**6,
            },
        }

    rows = [row(4_000, 120), row(42_000, 120), row(180_000, 60), row(1_000_000, 12)]  # the horizons differ
    assert abs(bench.scaling_exponent(rows) - 0.9) < 1e-12
    assert abs(bench.scaling_exponent(rows, "setup") - 1.2) < 1e-12
    results = {str(r["dyads"]): r for r in rows} | {"voluntary": row(20_000_000, 12, "voluntary")}
    s = bench.summary(results)
    assert s["memory_from"] == "voluntary" and s["bytes_per"]["dyad"] == 168 and s["bytes_per"]["organisation"] == 1000
    assert s["scaling"]["dyads"] == [4_000, 1_000_000]  # the voluntary configuration is left out of the curve
    memory, scaling = bench.summary_lines(s)
    assert "168 B a dyad" in memory and "1,000 B an organisation" in memory
    assert "dyads^0.90" in scaling and "dyads^1.20" in scaling
    small = {k: results[k] for k in ("4000", "42000")} | {"tiny": row(500, 120)}  # under 1,000 dyads: not in the fit
    assert "scaling" not in bench.summary(small) and len(bench.summary_lines(bench.summary(small))) == 1
    assert bench.summary({}) == {} and bench.summary_lines({}) == []


def test_reference_months_option_overrides_the_configurations():
    assert build_parser().parse_args(["bench", "--only", "large", "--reference-months", "1"]).reference_months == 1
    assert build_parser().parse_args(["bench"]).reference_months is None  # each configuration's own


def test_sweep_benchmark_script_runs_at_tiny_size(tmp_path):
    """benchmarks/bench_sweep.py end to end (a few runs of a 3-month baseline): every executor row is reported and
    every rate is a rate (no time is asserted)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep.py"
    out = tmp_path / "sweep.json"
    cmd = [
        sys.executable,
        str(script),
        "--runs",
        "8",
        "--months",
        "3",
        "--no-dask",
        "--workers",
        "2",
        "--json",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.read_text())["horizons"]
    assert row["months"] == 3 and row["replicates_loop_runs_per_s"] > 0 and row["simulate_loop_runs_per_s"] > 0
    labels = [(s["executor"], s["workers"], s["timeseries"]) for s in row["sweeps"]]
    assert labels == [("serial", None, True), ("process", 1, True), ("process", 2, True), ("process", 2, False)]
    assert all(s["runs"] == 8 and s["runs_per_s"] > 0 for s in row["sweeps"])
    assert row["sweeps"][0]["steady_runs_per_s"] is None  # serial: its progress reader would wait for the GIL
    assert "runs/s with 2 workers" in done.stdout


def _memory_traffic():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "memory_traffic.py"
    spec = importlib.util.spec_from_file_location("memory_traffic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CACHEGRIND_SUMMARY = """==2182== D   refs:      170,075,450  (117,097,075 rd   + 52,978,375 wr)
==2182== D1  misses:      5,017,398  (  4,426,638 rd   +    590,760 wr)
==2182== LLd misses:        363,095  (     78,594 rd   +    284,501 wr)
==2182== D1  miss rate:         3.0% (        3.8%     +        1.1%  )
"""


def test_memory_traffic_reads_cachegrind_summary_and_refuses_what_it_cannot_read():
    """benchmarks/memory_traffic.py takes the reads + writes totals of cachegrind's data lines."""
    mt = _memory_traffic()
    assert mt._counts(CACHEGRIND_SUMMARY) == {"refs": 170_075_450, "d1": 5_017_398, "ll": 363_095}
    with pytest.raises(SystemExit, match="LLd"):
        mt._counts(CACHEGRIND_SUMMARY.replace("LLd", "LL?"))
    with pytest.raises(SystemExit, match="0 < A < B"):
        mt.main(["--months", "3", "2"])


@pytest.mark.slow
def test_memory_traffic_script_runs_end_to_end_under_cachegrind(tmp_path):
    """The whole script at a tiny size (minutes: the kernels compile for x86-64-v3, and run under valgrind)."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "memory_traffic.py"
    out = tmp_path / "traffic.json"
    cmd = [sys.executable, str(script), "--config", "small-mandated", "--months", "1", "2", "--repeats", "1"]
    done = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr
    res = json.loads(out.read_text())
    assert res["dyads"] == 80 and res["months"] == [1, 2]
    assert res["per_dyad_update"]["data_references"] > 0
    assert all(v > 0 for v in res["native"].values())
    assert "from memory" in done.stdout
