"""Benchmark the hot loop from a checkout: the same as `collabsim bench` (see collabsim/bench.py).

python benchmarks/run.py --quick
python benchmarks/run.py --json results.json
"""

from collabsim.bench import main

if __name__ == "__main__":
    main()
