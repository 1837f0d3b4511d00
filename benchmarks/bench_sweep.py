"""Benchmark sweep throughput (runs per second) on the 20-organisation baseline.

    python benchmarks/bench_sweep.py                     # 120-month baseline and a 24-month variant, 2 workers
    python benchmarks/bench_sweep.py --runs 400 --workers 4 --json out.json

For each horizon it reports:
- ``simulate loop``: ``collabsim.simulate`` called in a plain loop in this process on one numba thread (one run at a
  time), and ``api.simulate_replicates`` in the groups a sweep worker runs (replicates joined into one kernel call
  per segment: the ceiling a single worker can reach);
- each executor (serial, process with 1 and N workers, dask with N workers) running a sweep of ``--runs``
  replicates into a fresh directory, with the time series stored: runs/s from the start of the call to the end
  (worker start-up, numba cache loading and the closing merge included) and runs/s in the steady state (between the
  first and the last finished batch, read from the progress of the store; not for the serial executor, whose runs
  hold this process's GIL while the thread that reads the progress waits for it, which biased that figure high);
- where a run's time goes: building the Engine, running the months, and the rest of ``simulate`` (summary, pandas
  frames of the time series and of the organisations).

Nothing is asserted: speed is measured, not tested. Compilation is excluded by a warm-up run in this process; worker
processes load numba's on-disk cache when they start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

import collabsim
from collabsim import load_scenario, simulate
from collabsim.executors import available_cpus


def scenario(months: int, runs: int):
    return load_scenario("baseline").with_overrides({"horizon_months": months, "sweep": {"replications": runs}})


def simulate_loop(months: int, runs: int) -> float:
    """Runs/s of simulate() in a loop on one numba thread (as each sweep worker runs)."""
    import numba  # noqa: PLC0415

    sc = load_scenario("baseline").with_overrides({"horizon_months": months})
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        simulate(sc, seed=1, key=(10_000,))  # warm-up
        t = time.perf_counter()
        for r in range(runs):
            simulate(sc, seed=sc.seed, key=(r,))
        return runs / (time.perf_counter() - t)
    finally:
        numba.set_num_threads(before)


def replicates_loop(months: int, runs: int) -> tuple[float, int]:
    """Runs/s of api.simulate_replicates on one numba thread (which joins engine.joined_replicates runs at a time,
    as a sweep worker does), and that group size."""
    import numba  # noqa: PLC0415

    from collabsim.api import simulate_replicates  # noqa: PLC0415
    from collabsim.engine import joined_replicates  # noqa: PLC0415

    sc = load_scenario("baseline").with_overrides({"horizon_months": months})
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        simulate_replicates(sc, sc.seed, [(10_000 + r,) for r in range(joined_replicates(sc))])  # warm-up
        t = time.perf_counter()
        simulate_replicates(sc, sc.seed, [(r,) for r in range(runs)])
        return runs / (time.perf_counter() - t), joined_replicates(sc)
    finally:
        numba.set_num_threads(before)


def run_breakdown(months: int, reps: int = 20) -> dict[str, float]:
    """Seconds per run of simulate() on one numba thread, and how they split: building the Engine (population,
    partner choice, compiled rules), running the months, and the rest (summary, pandas frames of the time series and
    the organisations, manifest)."""
    import numba  # noqa: PLC0415

    from collabsim.engine import Engine  # noqa: PLC0415

    sc = load_scenario("baseline").with_overrides({"horizon_months": months})
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        simulate(sc, seed=1)
        t = time.perf_counter()
        for r in range(reps):
            simulate(sc, seed=sc.seed, key=(r,))
        total = (time.perf_counter() - t) / reps
        init = run = 0.0
        for r in range(reps):
            t0 = time.perf_counter()
            engine = Engine(sc, seed=sc.seed, key=(r,))
            t1 = time.perf_counter()
            engine.run()
            t2 = time.perf_counter()
            init += t1 - t0
            run += t2 - t1
    finally:
        numba.set_num_threads(before)
    init, run = init / reps, run / reps
    return {"simulate_s": total, "engine_init_s": init, "engine_run_s": run, "rest_s": max(total - init - run, 0.0)}


def _row_counter(out: Path):
    """Returns count() -> rows stored so far: the merged summary's and the pending parts'. Each part's metadata is
    read once (sampling every part each time took a growing share of a core from the workers being measured)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    rows_of: dict[str, int] = {}  # successful reads only: a part merged away meanwhile is counted in the summary

    def rows(p: Path) -> int | None:
        with contextlib.suppress(OSError):
            return pq.read_metadata(p).num_rows
        return None

    def count() -> int:
        pending = out / "_pending"
        parts = list(pending.glob("summary-*.parquet")) if pending.is_dir() else []
        for p in parts:
            if p.name not in rows_of and (n := rows(p)) is not None:
                rows_of[p.name] = n
        merged = (rows(out / "summary.parquet") or 0) if (out / "summary.parquet").exists() else 0
        return merged + sum(rows_of.get(p.name, 0) for p in parts)

    return count


def sweep_rate(
    months: int, runs: int, executor: str, workers: int | None, batch_size: int | None, timeseries: bool = True
) -> dict:
    sc = scenario(months, runs)
    out = Path(tempfile.mkdtemp(prefix="bench-sweep-")) / "out"
    marks: list[tuple[float, int]] = []
    stop = threading.Event()

    count = _row_counter(out)

    def watch() -> None:  # progress of the store, sampled
        while not stop.is_set():
            marks.append((time.perf_counter(), count()))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    try:
        collabsim.sweep(sc, executor=executor, out=out, workers=workers, batch_size=batch_size, timeseries=timeseries)
    finally:
        total = time.perf_counter() - t0
        stop.set()
        watcher.join()
        shutil.rmtree(out.parent, ignore_errors=True)
    started = [(t, n) for t, n in marks if n > 0]
    steady = None
    if executor != "serial" and len(started) >= 2 and started[-1][1] > started[0][1]:
        (ta, na), (tb, nb) = started[0], max(started, key=lambda m: (m[1], -m[0]))
        steady = (nb - na) / (tb - ta) if tb > ta else None
    return {
        "executor": executor,
        "workers": workers,
        "timeseries": timeseries,
        "runs": runs,
        "total_s": total,
        "runs_per_s": runs / total,
        "steady_runs_per_s": steady,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="replicates per sweep (default 200)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--months", type=int, nargs="*", default=[120, 24])
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args()
    results: dict = {
        "python": platform.python_version(),
        "cpus": available_cpus(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "numba_threads_env": os.environ.get("NUMBA_NUM_THREADS"),
        "horizons": [],
    }
    print(f"sweep throughput, 20-organisation baseline, {args.runs} runs, {results['cpus']} CPUs available")
    for months in args.months:
        row: dict = {"months": months}
        row["simulate_loop_runs_per_s"] = simulate_loop(months, max(20, args.runs // 5))
        row["replicates_loop_runs_per_s"], group = replicates_loop(months, max(64, args.runs // 5))
        b = row["breakdown"] = run_breakdown(months)
        print(
            f"\n{months} months: simulate() in a loop {row['simulate_loop_runs_per_s']:.1f} runs/s; per run "
            f"{b['simulate_s'] * 1e3:.1f} ms = Engine() {b['engine_init_s'] * 1e3:.1f} + months "
            f"{b['engine_run_s'] * 1e3:.1f} + summary and frames {b['rest_s'] * 1e3:.1f}\n"
            f"  simulate_replicates() {group} runs at a time, as sweep workers run them: "
            f"{row['replicates_loop_runs_per_s']:.1f} runs/s"
        )
        configs = [("serial", None, True), ("process", 1, True), ("process", args.workers, True)]
        configs.append(("process", args.workers, False))
        if not args.no_dask:
            configs.append(("dask", args.workers, True))
        row["sweeps"] = []
        for executor, workers, ts in configs:
            r = sweep_rate(months, args.runs, executor, workers, args.batch_size, ts)
            row["sweeps"].append(r)
            steady = f"{r['steady_runs_per_s']:.1f}" if r["steady_runs_per_s"] else "-"
            label = executor + (f" x{workers}" if workers else "") + ("" if ts else " (summary only)")
            print(f"  {label:<26} {r['runs_per_s']:7.1f} runs/s overall ({r['total_s']:.1f} s), {steady} runs/s steady")
        results["horizons"].append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    mine = [(row["months"], s) for row in results["horizons"] for s in row["sweeps"] if s["workers"] == args.workers]
    print(
        f"\nruns/s with {args.workers} workers, time series stored, from the start of the call (steady): "
        + ", ".join(
            f"{m} months {s['runs_per_s']:.1f} ({s['steady_runs_per_s'] or s['runs_per_s']:.1f})"
            for m, s in mine
            if s["timeseries"]
        )
    )


if __name__ == "__main__":
    main()
