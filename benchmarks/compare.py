"""Before/after ratios of two benchmark result files: python benchmarks/compare.py before.json after.json"""

import json
import sys
from pathlib import Path


def main(before: str, after: str) -> None:
    a, b = (json.loads(Path(p).read_text())["results"] for p in (before, after))
    print(f"{'configuration':<20}{'before s':>10}{'after s':>10}{'speed-up':>10}")
    for name in sorted(a.keys() & b.keys()):
        x, y = a[name]["run_s"]["median"], b[name]["run_s"]["median"]
        print(f"{name:<20}{x:>10.3f}{y:>10.3f}{x / y:>10.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
