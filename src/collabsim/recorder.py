"""What a run records (kernels.record fills it each month) and how a finished run becomes tables and metrics.

The summary metrics are defined here, once, with their descriptions (``METRIC_DESCRIPTIONS``).
"""

from __future__ import annotations

import math

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
# What kernels.record writes each month, per collaboration: stage, active members, the timeseries columns, then the
# maturity score from the nine Table 11 elements (source 0 = DK, 1 = MK, 2 = K; the last nine are the elements).
_SOURCE = {"DK": 0, "MK": 1, "K": 2}
RECORD_COLUMNS = tuple((_SOURCE[a], COLUMN[v]) for a, v in (*TIMESERIES_COLUMNS, *MATURITY_ELEMENTS))
assert len(MATURITY_ELEMENTS) == 9


def maturity_level(score: np.ndarray) -> np.ndarray:
    """0 pathological, 1 bureaucratic, 2 generative; -1 where the score is NaN (no active members)."""
    level = np.searchsorted(np.array(MATURITY_BANDS), score, side="right")
    return np.where(np.isnan(score), -1, level)


def timeseries(records: list[tuple[int, np.ndarray]], st, type_names) -> pd.DataFrame:
    """Tidy frame from the engine's compiled segments: one row per month and collaboration existing then. The row
    of month m is the state after m months; means are NaN for collaborations without active members."""
    names = [
        "month",
        "collaboration",
        "type",
        "mandated",
        "stage",
        "n_members",
        *[v for _, v in TIMESERIES_COLUMNS],
        "maturity",
    ]
    frames = []
    for m0, rec in records:
        months, _, n_col = rec.shape
        if n_col == 0:
            continue
        cols = {
            "month": np.repeat(np.arange(m0 + 1, m0 + 1 + months, dtype=np.int32), n_col),
            "collaboration": np.tile(np.arange(n_col, dtype=np.int32), months),
            "stage": rec[:, 0].ravel().astype(np.int8),
            "n_members": rec[:, 1].ravel().astype(np.int32),
        }
        for f, (_, v) in enumerate(TIMESERIES_COLUMNS):
            cols[v] = rec[:, 2 + f].ravel()
        cols["maturity"] = maturity_level(rec[:, -1].ravel()).astype(np.int8)
        frames.append(pd.DataFrame(cols))
    if not frames:
        return pd.DataFrame({n: [] for n in names})
    df = pd.concat(frames, ignore_index=True)
    df.insert(2, "type", pd.Categorical.from_codes(st.col_type[df["collaboration"]], categories=list(type_names)))
    df.insert(3, "mandated", st.K[COLUMN["mandated"], df["collaboration"]] > 0)
    df["stage"] = pd.Categorical.from_codes(df["stage"], categories=list(STAGE_NAMES))
    df["maturity"] = pd.Categorical.from_codes(df["maturity"], categories=list(MATURITY_LEVELS))
    return df


def summarise(st, agg: dict[str, np.ndarray], synergy_share: float, maturity: np.ndarray) -> dict[str, float]:
    """The summary metrics of METRIC_DESCRIPTIONS from the final state; ``maturity`` is the last recorded maturity
    score of every collaboration (kernels.record computes it)."""

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if len(a) else math.nan

    d_act, m_act = st.dyad_active(), st.mem_active
    running = st.col_stage != DISSOLVED
    formed = st.n_col
    synergy_now = running & (agg["MK"][COLUMN["above_threshold"]] >= synergy_share)
    levels = maturity_level(maturity)[running]
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
