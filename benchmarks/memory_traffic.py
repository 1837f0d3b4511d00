"""Memory traffic of the compiled month: bytes per dyad-update against the machine's measured bandwidth.

    python benchmarks/memory_traffic.py                     # large: 180,000 dyads (about 5 minutes)
    python benchmarks/memory_traffic.py --config national   # 42,000 dyads: the state fits in the last-level cache

Needs valgrind (cachegrind). The configuration (``collabsim bench``'s, seed 0, one numba thread) runs twice under
cachegrind, to month A and to month B, and the difference is B - A months of the compiled loop alone: the imports,
the set-up and month-0 formation cancel. Cachegrind simulates a first-level data cache and a last-level cache of
this project's machines (32 KiB and 32 MiB, 64-byte lines) and counts every load and store. Valgrind 3.19 knows no
AVX-512, so the kernels are compiled for ``x86-64-v3`` (AVX2) there: the bytes they move are the same as natively,
the count of loads and stores is that of AVX2 code (a wider vector would make it smaller). Months A to B must hold
no formation month (partner search in Python would count too): the mandated configurations form all at month 0.

Per dyad-update (one dyad for one month, the unit of ``collabsim bench``), it reports the data references (a vector
load or store counts once), first-level misses x 64 bytes (what the core fetches from L2 and beyond), and
last-level misses x 64 bytes: what a month must bring from memory, a lower bound (cachegrind does not count the
write-back of dirty lines). Then, natively on this machine, the model's dyad-updates per second on 1 and 2 threads
over the same months, and the bandwidth of ``collabsim.probe``'s stream loop (bytes read + written per second; the
reads for ownership of the lines it writes are not counted, so its bandwidth reads low and the model's share of it
high) on 1 and 2 threads: the bandwidth the model draws, against what the machine gives. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=33554432,16,64")
LINE = 64
CPU = "x86-64-v3"  # AVX2: valgrind 3.19 cannot run AVX-512 code
# numba adds the host's features to a named CPU unless told which: then the host (AVX-512) and valgrind's CPU would
# key different cache entries, and the runs under cachegrind would compile everything again
FEATURES = "+avx2,+fma"


def _engine(config: str):
    from collabsim.bench import CONFIGS, scenario_for  # noqa: PLC0415
    from collabsim.engine import Engine  # noqa: PLC0415

    n, regime, group, months, *_ = CONFIGS[config]
    return Engine(scenario_for(n, regime, group, months), seed=0)


def child(config: str, month: int) -> None:
    """What runs under cachegrind: the configuration to ``month`` on one thread."""
    import numba  # noqa: PLC0415

    numba.set_num_threads(1)
    e = _engine(config)
    e.advance(month)
    print(json.dumps({"dyads": e.state.n_dyad, "month": e.month}))


def _counts(stderr: str) -> dict[str, int]:
    """Cachegrind's summary: data references and misses, reads + writes."""
    out = {}
    for key, label in (("refs", r"D\s+refs"), ("d1", r"D1\s+misses"), ("ll", r"LLd\s+misses")):
        m = re.search(label + r":\s+([\d,]+)", stderr)
        if m is None:
            raise SystemExit(f"memory_traffic: no '{label}' line in cachegrind's output:\n{stderr[-2000:]}")
        out[key] = int(m.group(1).replace(",", ""))
    return out


def under_cachegrind(config: str, month: int, env: dict[str, str]) -> tuple[dict[str, int], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            *CACHES,
            f"--cachegrind-out-file={os.path.join(tmp, 'cg.out')}",
            sys.executable,
            __file__,
            "--child",
            config,
            str(month),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"memory_traffic: the cachegrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return _counts(done.stderr), json.loads(done.stdout.strip().splitlines()[-1])


def native(config: str, a: int, b: int, repeats: int) -> dict[str, float]:
    """Dyad-updates per second over months a .. b on 1 and 2 threads (median of alternated repeats), and the stream
    loop's bytes per second on 1 and 2 threads at the same moments."""
    import statistics  # noqa: PLC0415

    import numba  # noqa: PLC0415

    from collabsim.probe import probes  # noqa: PLC0415

    values, passes = 8_000_000, 4
    stream = probes(stream_values=values, passes=passes)["stream"]
    stream_bytes = passes * 2 * 8 * values  # each pass reads and writes every double once
    threads = (1, 2) if numba.config.NUMBA_NUM_THREADS >= 2 else (1,)
    rates: dict[str, list[float]] = {f"{k}_{th}": [] for k in ("model", "stream") for th in threads}
    for th in threads:
        numba.set_num_threads(th)
        stream()  # compile or load, touch the arrays
    for r in range(repeats):
        for th in threads if r % 2 == 0 else threads[::-1]:
            numba.set_num_threads(th)
            e = _engine(config)
            e.advance(a)
            t = time.perf_counter()
            e.advance(b)
            rates[f"model_{th}"].append(e.state.n_dyad * (b - a) / (time.perf_counter() - t))
            t = time.perf_counter()
            stream()
            rates[f"stream_{th}"].append(stream_bytes / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in rates.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="large", help="a collabsim bench configuration (default: large)")
    p.add_argument("--months", nargs=2, type=int, default=(2, 5), metavar=("A", "B"), help="default: 2 5")
    p.add_argument("--repeats", type=int, default=5, help="native timings, alternated (default 5)")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    a, b = args.months
    if not 0 < a < b:
        raise SystemExit(f"memory_traffic: --months A B needs 0 < A < B, got {a} {b}")
    if shutil.which("valgrind") is None:
        raise SystemExit("memory_traffic: needs valgrind (apt install valgrind)")
    # the same work in both runs up to month A: one thread, one hash seed
    env = {**os.environ, "NUMBA_CPU_NAME": CPU, "NUMBA_CPU_FEATURES": FEATURES, "NUMBA_NUM_THREADS": "1"}
    env["PYTHONHASHSEED"] = "0"
    formed = sorted(m for m in _engine(args.config).formation_months if a <= m < b)  # begin_month(m) forms
    if formed:
        raise SystemExit(
            f"memory_traffic: {args.config} forms collaborations at months {formed}: choose A and B around them"
        )
    print(f"compiling for {CPU} (once; cached) ...", flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", args.config, str(a)], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"memory_traffic: compiling for {CPU} failed:\n{done.stderr[-3000:]}")
    print(f"{args.config}: months {a} and {b} under cachegrind ...", flush=True)
    (ca, _), (cb, info) = under_cachegrind(args.config, a, env), under_cachegrind(args.config, b, env)
    updates = info["dyads"] * (b - a)
    per = {k: (cb[k] - ca[k]) / updates for k in ca}
    rates = native(args.config, a, b, args.repeats)
    from_memory = per["ll"] * LINE
    out = {
        "config": args.config,
        "dyads": info["dyads"],
        "months": [a, b],
        "per_dyad_update": {
            "data_references": per["refs"],
            "bytes_past_l1": per["d1"] * LINE,
            "bytes_from_memory": from_memory,
        },
        "native": rates,
    }
    print(f"{info['dyads']:,} dyads, months {a}..{b}; per dyad-update (one dyad, one month):")
    if any(cb[k] <= ca[k] for k in ca):
        print("  (too little work in these months against the set-up's run-to-run noise: a larger configuration)")
    print(f"  data references (loads + stores): {per['refs']:,.0f}")
    print(f"  first-level misses x 64 B:        {per['d1'] * LINE:,.0f} B")
    print(f"  last-level misses x 64 B:         {from_memory:,.0f} B (from memory; write-backs not counted)")
    for th in (1, 2):
        if f"model_{th}" not in rates:
            continue
        model, stream = rates[f"model_{th}"], rates[f"stream_{th}"]
        drawn = from_memory * model
        print(
            f"  {th} thread{'s' if th > 1 else ' '}: {model / 1e6:.2f} M dyad-updates/s x {from_memory:,.0f} B ="
            f" {drawn / 1e9:.2f} GB/s from memory; the stream loop moves {stream / 1e9:.2f} GB/s"
            f" ({drawn / stream:.0%} of it)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
