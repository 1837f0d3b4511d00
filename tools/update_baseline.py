"""Regenerate the fixed-seed regression baseline (tests/baselines/regression.json).

Run this ONLY when a change to the model's numbers is intended, and say why in the commit message:

    python tools/update_baseline.py
"""

from __future__ import annotations

import json
from pathlib import Path

from collabsim import load_scenario, simulate

CASES = {  # name -> (scenario, overrides, seed)
    "baseline": ("baseline", {"horizon_months": 60}, 11),
    "mandated": ("mandated", {"horizon_months": 60}, 11),
    "voluntary": ("voluntary", {"horizon_months": 60}, 12),
}
PATH = Path(__file__).resolve().parent.parent / "tests" / "baselines" / "regression.json"


def compute() -> dict[str, dict[str, float]]:
    out = {}
    for name, (scenario, overrides, seed) in CASES.items():
        out[name] = simulate(load_scenario(scenario).with_overrides(overrides), seed=seed).summary
    return out


if __name__ == "__main__":
    PATH.write_text(json.dumps(compute(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
