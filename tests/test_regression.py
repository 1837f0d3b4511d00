"""Fixed-seed regression baseline: the summary metrics of three fixed runs must not move unless the baseline is
regenerated on purpose with `python tools/update_baseline.py`."""

import importlib.util
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_summary_matches_the_recorded_baseline():
    spec = importlib.util.spec_from_file_location("update_baseline", ROOT / "tools" / "update_baseline.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    recorded = json.loads(tool.PATH.read_text())
    assert recorded.keys() == tool.CASES.keys()
    for name, summary in tool.compute().items():
        for metric, value in summary.items():
            want = recorded[name][metric]
            same = math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(value) and math.isnan(want))
            assert same, (
                f"{name}.{metric} = {value!r}, baseline {want!r}; if this change is intended, "
                "run `python tools/update_baseline.py` and explain why in the commit"
            )
