"""Smoke run of the benchmark harness at tiny size: it runs and reports; it never asserts a time."""

import numba

from collabsim import bench
from collabsim.cli import build_parser


def test_harness_measures_a_tiny_configuration():
    sc = bench.scenario_for(12, "mandated", 3, 4)
    row = bench.time_engine(sc, seed=0)
    assert row["orgs"] == 12 and row["dyads"] == 4 * 3 * 2  # four groups of three: six ordered pairs each
    assert set(row) == {"setup_s", "run_s", "dyads", "orgs"}
    assert bench.time_reference(sc, seed=0, months=1) >= 0.0
    assert bench.stats([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert set(bench.QUICK) <= set(bench.CONFIGS)


def test_speedup_runs_both_thread_counts_and_compares_their_states():
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    sc = bench.scenario_for(12, "mandated", 3, 4)
    out = bench.time_speedup(sc, repeats=2, threads=threads)
    assert out["threads"] == threads and out["ratio"]["n"] == 2 and out["ratio"]["min"] > 0.0
    assert out["identical"]  # a run ends in the same state on one thread and on several
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
