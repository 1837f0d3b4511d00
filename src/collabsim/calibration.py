"""The calibration target (docs/calibration.md): its definition and its statistic, in one place.

``experiments/calibrate.py`` fits the rate to it; ``collabsim validate`` re-evaluates it at the shipped rate and
reports it apart from the checks (a target the model was fitted to cannot also confirm the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabsim.api import simulate_replicates
from collabsim.rules import ONCE_VARIABLES, load_calibration, load_prior_table
from collabsim.scenario import load_scenario


@dataclass(frozen=True)
class Target:
    id: str
    description: str
    source: str
    scenario: str  # a built-in scenario with two arms
    statistic: str
    value: float
    band: tuple[float, float]


C1 = Target(
    id="C1",
    description="Collaborations that reach collaborative behaviour take about two years to get there",
    source="001 Ch5: an ICS 'spent 18 months building relationships ... before they even tried to change anything'",
    scenario="mandated_vs_voluntary",
    statistic="median over runs (both arms) of months_to_synergy",
    value=24.0,
    band=(18.0, 36.0),
)


def c1_statistic(rate: float | None = None, replications: int = 100, progress: bool = False) -> float:
    """C1's statistic with every monthly row at ``rate`` (None: the shipped rate): the median over runs of both arms
    (scenario seed, replicates 0 .. replications-1) of months_to_synergy. Runs without synergy have none and are
    left out, as the metric defines; +inf when no run reaches synergy (slower than any target)."""
    shipped = float(load_calibration()["rate"])
    factor = 1.0 if rate is None else rate / shipped
    monthly = {r.id: factor for r in load_prior_table().rows if r.mechanism not in ONCE_VARIABLES}
    overrides = {"rules.weights": monthly} if factor != 1.0 else {}  # at the shipped rate the runs are the default
    sc = load_scenario(C1.scenario)
    scenarios = {arm: sc.arm(arm).with_overrides(overrides) for arm in sc.arms or {}}
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=len(scenarios) * replications, desc=f"C1 at rate {rate or shipped:.4g}", leave=False)
    values = []
    for arm_sc in scenarios.values():  # the replicates joined as in a sweep (the same numbers)
        results = simulate_replicates(arm_sc, None, [(r,) for r in range(replications)])
        values += [result.summary["months_to_synergy"] for result in results]
        if bar is not None:
            bar.update(replications)
    if bar is not None:
        bar.close()
    values = np.array(values, dtype=float)
    reached = values[~np.isnan(values)]
    return float(np.median(reached)) if len(reached) else np.inf
