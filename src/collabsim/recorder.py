"""What a run records (kernels.record fills it each month) and how a finished run becomes tables and metrics.

The summary metrics are defined here, once, with their descriptions (``METRIC_DESCRIPTIONS``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from collabsim.network import TYPE_NAMES
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
#: Metrics whose every value lies in [0, 1] by definition: shares, and means of variables in [0, 1] (every model
#: variable is: docs/decisions.md 5). Their intervals are clipped to [0, 1]; months_to_synergy and
#: n_collaborations are unbounded.
BOUNDED_METRICS = (
    "share_synergy",
    "share_dissolved",
    "share_pathological",
    "share_bureaucratic",
    "share_generative",
    "mean_trust",
    "mean_faith",
    "mean_confidence",
    "mean_risk_tolerance",
    "mean_collaborative_behaviour",
    "task_achievement",
    "patient_coverage",
    "cost_savings",
    "care_quality",
)

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


def timeseries_columns(records: list[tuple[int, np.ndarray]], st) -> dict[str, np.ndarray]:
    """The time series as plain column arrays: one row per month and collaboration existing then (the row of month m
    is the state after m months; means are NaN for collaborations without active members). ``type``, ``stage`` and
    ``maturity`` are codes into TYPE_NAMES, STAGE_NAMES and MATURITY_LEVELS (maturity -1: undefined)."""
    parts = [(m0, rec) for m0, rec in records if rec.shape[2]]
    months = np.concatenate(
        [np.repeat(np.arange(m0 + 1, m0 + 1 + rec.shape[0], dtype=np.int32), rec.shape[2]) for m0, rec in parts]
        or [np.zeros(0, np.int32)]
    )
    collab = np.concatenate(
        [np.tile(np.arange(rec.shape[2], dtype=np.int32), rec.shape[0]) for _, rec in parts] or [np.zeros(0, np.int32)]
    )

    # every part (months, fields, collaborations) as (fields, months * collaborations), side by side: one copy
    fields = np.concatenate(
        [rec.transpose(1, 0, 2).reshape(rec.shape[1], -1) for _, rec in parts]
        or [np.zeros((3 + len(TIMESERIES_COLUMNS), 0))],
        axis=1,
    )

    def field(f: int) -> np.ndarray:
        return fields[f]

    cols = {
        "month": months,
        "collaboration": collab,
        "type": st.col_type[collab].astype(np.int8),
        "mandated": st.K[COLUMN["mandated"], collab] > 0,
        "stage": field(0).astype(np.int8),
        "n_members": field(1).astype(np.int32),
    }
    for f, (_, v) in enumerate(TIMESERIES_COLUMNS):
        cols[v] = field(2 + f)
    cols["maturity"] = maturity_level(field(-1)).astype(np.int8)
    return cols


CATEGORIES = {"type": TYPE_NAMES, "stage": STAGE_NAMES, "maturity": MATURITY_LEVELS}


def timeseries(records: list[tuple[int, np.ndarray]], st) -> pd.DataFrame:
    """The time series as a tidy DataFrame (``timeseries_columns`` with categorical type, stage and maturity)."""
    cols = timeseries_columns(records, st)
    for name, categories in CATEGORIES.items():
        cols[name] = pd.Categorical.from_codes(cols[name], categories=list(categories))
    return pd.DataFrame(cols)


def timeseries_arrow(columns: list[dict[str, np.ndarray]], extra: dict[str, list[int]]) -> pa.Table:
    """Several runs' ``timeseries_columns`` as one Arrow table, with ``extra`` constant-per-run int64 columns (e.g.
    run_id) first; the categorical columns become dictionary arrays over the full category lists, so every file of
    a sweep has the same schema and pandas reads them back as Categoricals."""
    n = [len(c["month"]) for c in columns]
    arrays = {name: np.repeat(np.asarray(values, np.int64), n) for name, values in extra.items()}
    for name in columns[0]:
        values = np.concatenate([c[name] for c in columns])
        if name in CATEGORIES:
            arrays[name] = pa.DictionaryArray.from_arrays(
                pa.array(values, mask=values < 0), pa.array(CATEGORIES[name], pa.string())
            )
        else:
            arrays[name] = values
    return pa.table(arrays)


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
