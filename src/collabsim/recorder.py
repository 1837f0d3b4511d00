"""Record each month into per-month column buffers and turn a finished run into a RunResult.

The summary metrics are defined here, once, with their descriptions (``METRIC_DESCRIPTIONS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from collabsim.rules import DISSOLVED, STAGES
from collabsim.variables import COLUMN

STAGE_NAMES = (*STAGES, "dissolved")
MATURITY_LEVELS = ("pathological", "bureaucratic", "generative")
MATURITY_BANDS = (1 / 3, 2 / 3)  # catalogue maturity_levels.suggested_band (a proposal, not in the source)

# 001 Table 11 elements -> (aggregate, variable). Confidence is scored by formalisation fit: Table 11 calls
# a collaboration pathological when its legal frameworks do not suit its type.
MATURITY_ELEMENTS = (
    ("DK", "trust"),
    ("MK", "faith"),
    ("K", "formalisation_appropriateness"),
    ("DK", "cultural_assimilation"),
    ("MK", "perceived_legitimacy"),
    ("DK", "interpersonal_communication"),
    ("K", "vision_clarity"),
    ("DK", "vision_sharedness"),
    ("MK", "risk_tolerance"),
)

METRIC_DESCRIPTIONS = {
    "mean_trust": "Mean trust over the dyads of collaborations still running at the end (NaN if none)",
    "mean_faith": "Mean faith over the active memberships at the end (NaN if none)",
    "mean_confidence": "Mean confidence over the active dyads at the end (NaN if none)",
    "mean_risk_tolerance": "Mean risk tolerance over the active memberships at the end (NaN if none)",
    "mean_collaborative_behaviour": "Mean collaborative behaviour over the active memberships at the end (NaN if none)",
    "task_achievement": "Mean task achievement over every collaboration formed (dissolved ones at dissolution)",
    "share_synergy": "Share of collaborations formed that are running and in collaborative behaviour at the end",
    "months_to_synergy": "Median months from formation to synergy over collaborations that got there (NaN if none)",
    "share_dissolved": "Share of collaborations formed that dissolved",
    "share_pathological": "Share of running collaborations at maturity level pathological (001 Table 11)",
    "share_bureaucratic": "Share of running collaborations at maturity level bureaucratic (001 Table 11)",
    "share_generative": "Share of running collaborations at maturity level generative (001 Table 11)",
    "patient_coverage": "Mean patient coverage over all organisations at the end",
    "cost_savings": "Mean cost savings over all organisations at the end",
    "care_quality": "Mean care quality over all organisations at the end",
    "n_collaborations": "Number of collaborations formed during the run",
}

TIMESERIES_COLUMNS = (
    ("DK", "trust"),
    ("DK", "confidence"),
    ("DK", "conflict"),
    ("DK", "interpersonal_communication"),
    ("MK", "faith"),
    ("MK", "risk_tolerance"),
    ("MK", "perception_of_progress"),
    ("MK", "collaborative_behaviour"),
    ("K", "task_achievement"),
)


def maturity_score(st, agg: dict[str, np.ndarray]) -> np.ndarray:
    src = {"K": st.K, **agg}
    return np.mean([src[a][COLUMN[v]] for a, v in MATURITY_ELEMENTS], axis=0)


def maturity_level(score: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(MATURITY_BANDS), score, side="right")


@dataclass
class Recorder:
    months: list[np.ndarray] = field(default_factory=list)
    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def record(self, month: int, st, agg: dict[str, np.ndarray]) -> None:
        n = st.n_col
        src = {"K": st.K, **agg}
        cols = {
            "month": np.full(n, month, np.int32),
            "collaboration": np.arange(n, dtype=np.int32),
            "stage": st.col_stage.copy(),
            "n_members": np.add.reduceat(st.mem_active.astype(np.int32), st.col_mem_ptr[:-1])
            if n
            else np.zeros(0, np.int32),
        }
        running = cols["n_members"] > 0  # a dissolved collaboration has no members to average over: NaN
        for a, v in TIMESERIES_COLUMNS:
            cols[v] = np.where(running, src[a][COLUMN[v]], np.nan)
        cols["maturity"] = np.where(running, maturity_level(maturity_score(st, agg)), -1).astype(np.int8)
        for k, v in cols.items():
            self.columns.setdefault(k, []).append(v)

    def timeseries(self, st, type_names) -> pd.DataFrame:
        if not self.columns or not sum(len(c) for c in self.columns["month"]):
            return pd.DataFrame(
                columns=[
                    "month",
                    "collaboration",
                    "type",
                    "mandated",
                    "stage",
                    "n_members",
                    *[v for _, v in TIMESERIES_COLUMNS],
                    "maturity",
                ]
            )
        df = pd.DataFrame({k: np.concatenate(v) for k, v in self.columns.items()})
        df.insert(2, "type", pd.Categorical.from_codes(st.col_type[df["collaboration"]], categories=list(type_names)))
        df.insert(3, "mandated", st.K[COLUMN["mandated"], df["collaboration"]] > 0)
        df["stage"] = pd.Categorical.from_codes(df["stage"], categories=list(STAGE_NAMES))
        df["maturity"] = pd.Categorical.from_codes(df["maturity"], categories=list(MATURITY_LEVELS))
        return df


def summarise(st, agg: dict[str, np.ndarray], synergy_share: float) -> dict[str, float]:
    """The summary metrics of METRIC_DESCRIPTIONS from the final state."""

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if len(a) else math.nan

    d_act, m_act = st.dyad_active(), st.mem_active
    running = st.col_stage != DISSOLVED
    formed = st.n_col
    synergy_now = running & (agg["MK"][COLUMN["above_threshold"]] >= synergy_share)
    levels = maturity_level(maturity_score(st, agg))[running]
    reached = st.col_synergy_month >= 0
    out = {
        "mean_trust": mean(st.D[COLUMN["trust"], d_act]),
        "mean_faith": mean(st.M[COLUMN["faith"], m_act]),
        "mean_confidence": mean(st.D[COLUMN["confidence"], d_act]),
        "mean_risk_tolerance": mean(st.M[COLUMN["risk_tolerance"], m_act]),
        "mean_collaborative_behaviour": mean(st.M[COLUMN["collaborative_behaviour"], m_act]),
        "task_achievement": mean(st.K[COLUMN["task_achievement"]]),
        "share_synergy": float(synergy_now.sum() / formed) if formed else math.nan,
        "months_to_synergy": float(np.median(st.col_synergy_month[reached] - st.col_formed[reached]))
        if reached.any()
        else math.nan,
        "share_dissolved": float((~running).sum() / formed) if formed else math.nan,
        **{
            f"share_{name}": float((levels == i).mean()) if len(levels) else math.nan
            for i, name in enumerate(MATURITY_LEVELS)
        },
        "patient_coverage": mean(st.O[COLUMN["patient_coverage"]]),
        "cost_savings": mean(st.O[COLUMN["cost_savings"]]),
        "care_quality": mean(st.O[COLUMN["care_quality"]]),
        "n_collaborations": float(formed),
    }
    return out
