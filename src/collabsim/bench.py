"""Benchmark the hot loop: named configurations, medians over repeats, ratios against the reference.

    collabsim bench --quick                           # small and medium, a minute or two
    collabsim bench --json results.json               # every configuration up to 10^6 dyads
    collabsim bench --only national --threads 1
    collabsim bench --only large dyads-1e6 --reference-months 1   # the Mesa reference at 30,000 and 100,000 orgs
    collabsim bench --only large --speedup            # all threads against one, side by side, same bits checked
    collabsim bench --only large --speedup --repeats 9    # more seed pairs: a steadier median on a shared machine
    python benchmarks/run.py ...                      # the same, from a checkout
    python benchmarks/compare.py before.json after.json

Reports, per configuration: set-up (population, partner search) and run time (median, min, max over repeats;
compilation excluded by a warm-up run), dyad-updates per second, and, where the plain-Python Mesa reference is
run too (a few months, per-month time extrapolated), the engine/reference speed ratio; with ``--speedup``, the
speed-up of all threads over one, timed seed by seed side by side, whether both end in the same state bit for
bit (``DIFFER`` flags a pair that does not), and the speed-up of two ideal parallel loops timed beside each seed
(``collabsim.probe``: what the machine itself allowed at those moments). The first-ever compile
time is measured in a fresh process with an empty numba cache. Nothing is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

# numba, the engine and the reference load when a benchmark runs, not when the command line is built

# name -> (organisations, regime, group size, months, repeats, reference months (0: not run))
CONFIGS = {
    "small": (20, "voluntary", 2, 120, 20, 24),
    "small-mandated": (20, "mandated", 5, 120, 20, 24),
    "medium": (1_000, "mandated", 5, 120, 5, 3),
    "national": (7_000, "mandated", 7, 120, 3, 1),  # ~42,000 dyads: ICS-like groups of 7
    "national-voluntary": (7_000, "voluntary", 2, 120, 3, 0),
    "large": (30_000, "mandated", 7, 60, 2, 0),
    "dyads-1e6": (100_000, "mandated", 11, 12, 1, 0),  # 1.1 million dyads
}
QUICK = ("small", "small-mandated", "medium")


def scenario_for(n_orgs: int, regime: str, group: int, months: int):
    """Constant density: the region grows with sqrt(n) (20 organisations on 100 km x 100 km)."""
    from collabsim import load_scenario  # noqa: PLC0415

    overrides = {
        "population.n_orgs": n_orgs,
        "population.region_km": min(100.0 * (n_orgs / 20) ** 0.5, 2000.0),
        "horizon_months": months,
        "partnering.regime": regime,
        "partnering.group_size": group,
    }
    if regime == "mandated":
        overrides["partnering.type"] = "ics"
    return load_scenario("baseline").with_overrides(overrides)


def time_engine(sc, seed: int, digest: bool = False) -> dict:
    """Set-up and run seconds of one Engine; ``digest``: also a hash of the final state, to compare runs bit for
    bit (e.g. on 1 and 2 threads)."""
    from collabsim.engine import Engine  # noqa: PLC0415

    t0 = time.perf_counter()
    e = Engine(sc, seed=seed)
    t1 = time.perf_counter()
    e.run()
    t2 = time.perf_counter()
    row = {"setup_s": t1 - t0, "run_s": t2 - t1, "dyads": e.state.n_dyad, "orgs": e.state.n_org}
    row["memory_bytes"] = e.memory_bytes()
    st = e.state
    row["entities"] = {"dyad": st.n_dyad, "membership": st.n_mem, "collaboration": st.n_col, "organisation": st.n_org}
    if digest:
        row["digest"] = hashlib.sha256(b"".join(a.tobytes() for a in (st.O, st.K, st.M, st.D))).hexdigest()
    return row


def time_speedup(sc, repeats: int, threads: int, loops: dict | None = None) -> dict:
    """Run time on ``threads`` against one thread, measured side by side: each seed runs on both, alternating which
    goes first, so drifts in the machine's speed hit both alike. Reports the median and range of the per-seed
    ratios, and whether every pair ended with the same state, bit for bit. Beside each seed the same is measured for
    two ideal parallel loops (``collabsim.probe``: compute-bound and memory-streaming), so that the model's speed-up
    can be read against what the machine allowed at those moments (``loops``: name -> call; default
    ``probe.probes()``)."""
    import numba  # noqa: PLC0415

    from collabsim.probe import probes  # noqa: PLC0415

    loops = loops or probes()
    before = numba.get_num_threads()
    ratios, same = [], True
    ideal: dict[str, list[float]] = {name: [] for name in loops}
    try:
        for th in (threads, 1):  # compile the loops (or load them) and touch their arrays once
            numba.set_num_threads(th)
            for loop in loops.values():
                loop()
        for seed in range(repeats):
            order = (threads, 1) if seed % 2 == 0 else (1, threads)
            rows = {}
            for th in order:
                numba.set_num_threads(th)
                rows[th] = time_engine(sc, seed, digest=True)
            ratios.append(rows[1]["run_s"] / rows[threads]["run_s"])
            same = same and rows[1]["digest"] == rows[threads]["digest"]
            for name, loop in loops.items():
                took = {}
                for th in order:
                    numba.set_num_threads(th)
                    t = time.perf_counter()
                    loop()
                    took[th] = time.perf_counter() - t
                ideal[name].append(took[1] / took[threads])
    finally:
        numba.set_num_threads(before)
    return {
        "threads": threads,
        "ratio": stats(ratios),
        "identical": same,
        "ideal_loops": {name: stats(r) for name, r in ideal.items()},
    }


def time_reference(sc, seed: int, months: int) -> float:
    """Seconds per month of the reference (months run after construction)."""
    from collabsim.reference import ReferenceModel  # noqa: PLC0415

    ref = ReferenceModel(sc, seed=seed)
    t = time.perf_counter()
    for _ in range(months):
        ref.step()
    return (time.perf_counter() - t) / months


def scaling_exponent(rows: list[dict], key: str = "run") -> float:
    """The fitted exponent b of time ~ dyads^b (least squares on logs) over the rows given. key "run": the run's time
    a month; "setup": the set-up (population and month-0 partner search), which happens once whatever the horizon."""
    import numpy as np  # noqa: PLC0415

    times = [r["run_s"]["median"] / r["months"] if key == "run" else r["setup_s"]["median"] for r in rows]
    return float(np.polyfit(np.log([r["dyads"] for r in rows]), np.log(times), 1)[0])


def summary(results: dict[str, dict]) -> dict:
    """Memory per dyad, membership, collaboration and organisation (from the largest configuration run) and, when
    three or more mandated configurations of at least 1,000 dyads ran, the scaling exponents against dyads."""
    if not results:
        return {}
    name, big = max(results.items(), key=lambda kv: kv[1]["dyads"])
    mem, n = big["memory_bytes"], big["entities"]
    out = {
        "memory_from": name,
        "bytes_per": {level: mem[level] / max(n[level], 1) for level in n},
        "memory_mb": sum(mem.values()) / 1e6,
    }
    curve = sorted(
        (r for r in results.values() if r["regime"] == "mandated" and r["dyads"] >= 1000), key=lambda r: r["dyads"]
    )
    if len(curve) >= 3:
        out["scaling"] = {
            "dyads": [curve[0]["dyads"], curve[-1]["dyads"]],
            "run_per_month": scaling_exponent(curve),
            "setup": scaling_exponent(curve, "setup"),
        }
    return out


def summary_lines(s: dict) -> list[str]:
    """``summary`` as the lines the table ends with."""
    if not s:
        return []
    b = s["bytes_per"]
    lines = [
        f"memory of the model's arrays ({s['memory_from']}): {b['dyad']:,.0f} B a dyad, {b['membership']:,.0f} B a "
        f"membership, {b['collaboration']:,.0f} B a collaboration, {b['organisation']:,.0f} B an organisation; "
        f"{s['memory_mb']:,.1f} MB in all with the recorded months"
    ]
    if "scaling" in s:
        sc = s["scaling"]
        lines.append(
            f"scaling over the mandated configurations, {sc['dyads'][0]:,} to {sc['dyads'][1]:,} dyads: "
            f"run time a month ~ dyads^{sc['run_per_month']:.2f}; set-up (population and partner search, once a "
            f"run) ~ dyads^{sc['setup']:.2f}"
        )
    return lines


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def first_compile_seconds() -> float:
    """`collabsim run` of a 1-month baseline in a fresh process with an empty numba cache, minus the same run with
    the cache warm: the price of the first-ever compilation."""
    code = (
        "import time; t=time.perf_counter(); from collabsim import load_scenario, simulate; "
        "simulate(load_scenario('baseline').with_overrides({'horizon_months': 1})); "
        "print(time.perf_counter()-t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        warm = float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
    return cold - warm


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: an integer >= 1")
    return value


def build_parser(ap: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    ap = ap or argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="run these configurations")
    ap.add_argument("--threads", type=int, help="numba threads (default: all cores)")
    ap.add_argument(
        "--speedup",
        action="store_true",
        help="also time each configuration on one thread, interleaved, and report the parallel speed-up",
    )
    ap.add_argument(
        "--repeats",
        type=_positive_int,
        metavar="N",
        help="runs (seeds) per configuration, and pairs for --speedup; default: each configuration's own "
        "(on a shared machine a few more pairs narrow the speed-up's median)",
    )
    ap.add_argument(
        "--reference-months",
        type=_positive_int,
        metavar="N",
        help="run the Mesa reference N months for every configuration (default: a few months where it takes under "
        "a minute; none for large and dyads-1e6, where one month takes minutes)",
    )
    ap.add_argument("--compile", action="store_true", help="also measure the first-ever compile time")
    ap.add_argument("--json", help="write the results to this file")
    return ap


def main(argv: list[str] | None = None) -> None:
    run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks selected by ``args`` (see build_parser), print the table, optionally write JSON."""
    import numba  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    if args.threads:
        numba.set_num_threads(args.threads)
    names = args.only or (QUICK if args.quick else list(CONFIGS))
    out = {
        "machine": {
            "python": platform.python_version(),
            "numba": numba.__version__,
            "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": numba.get_num_threads(),
        },
        "results": {},
    }
    time_engine(scenario_for(20, "voluntary", 2, 3), 0)  # compile (or load the cache) once
    print(
        f"{'configuration':<20}{'orgs':>8}{'dyads':>10}{'months':>7}{'setup s':>9}{'run s (median)':>16}"
        f"{'M dyad-upd/s':>14}{'x reference':>13}" + (f"{'x 1 thread':>22}" if args.speedup else "")
    )
    for name in names:
        n, regime, group, months, repeats, ref_months = CONFIGS[name]
        ref_months = args.reference_months or ref_months
        chosen = args.repeats
        repeats = chosen or repeats
        sc = scenario_for(n, regime, group, months)
        runs = [time_engine(sc, seed) for seed in range(repeats)]
        run_s = stats([r["run_s"] for r in runs])
        row = {
            "orgs": n,
            "regime": regime,
            "group_size": group,
            "months": months,
            "dyads": runs[0]["dyads"],
            "setup_s": stats([r["setup_s"] for r in runs]),
            "run_s": run_s,
            "dyad_updates_per_s": runs[0]["dyads"] * months / run_s["median"],
            "memory_bytes": runs[0]["memory_bytes"],
            "entities": runs[0]["entities"],
        }
        ratio = ""
        if ref_months:
            ref_per_month = time_reference(sc, 0, ref_months)
            row["reference_s_per_month"] = ref_per_month
            row["ratio_vs_reference"] = ref_per_month / (run_s["median"] / months)
            ratio = f"{row['ratio_vs_reference']:,.0f}"
        speedup = ""
        if args.speedup and numba.get_num_threads() > 1:
            row["speedup"] = time_speedup(sc, chosen or max(repeats, 3), numba.get_num_threads())
            r = row["speedup"]["ratio"]
            differ = "" if row["speedup"]["identical"] else " DIFFER"
            speedup = f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}){differ}"
        out["results"][name] = row
        print(
            f"{name:<20}{n:>8}{row['dyads']:>10}{months:>7}{row['setup_s']['median']:>9.2f}"
            f"{run_s['median']:>16.3f}{row['dyad_updates_per_s'] / 1e6:>14.1f}{ratio:>13}{speedup:>22}",
            flush=True,
        )
        if speedup:
            m = row["speedup"]["ideal_loops"]
            print(
                f"{'':<20}the machine at the same moments, {row['speedup']['threads']} threads against 1: "
                + ", ".join(f"{k} loop {v['median']:.2f} ({v['min']:.2f}-{v['max']:.2f})" for k, v in m.items()),
                flush=True,
            )
    out["summary"] = summary(out["results"])
    for line in summary_lines(out["summary"]):
        print(line)
    if args.compile:
        out["first_compile_s"] = first_compile_seconds()
        print(f"first-ever compile: {out['first_compile_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    main()
