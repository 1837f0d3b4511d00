"""Policy comparison: two arms of a scenario, run with common random numbers, and what differs between them.

    cmp = collabsim.compare("scenarios/mandated_vs_voluntary.yaml", replications=200, workers=2, out="out/")
    cmp.table                 # one row per summary metric: each arm's mean and 95% interval, the paired difference
                              # (second arm minus first) with a bootstrap 95% CI, effect size, P(second > first)
    cmp.km                    # time to synergy / to dissolution: cumulative shares by month since formation
    cmp.trajectories          # trust, faith, confidence, risk tolerance, behaviour: run-level quantiles by month
    cmp.maturity              # maturity-level shares per arm (at the end, and by month)
    cmp.attribution           # with attribute=True: how much of the gap each mechanism accounts for
    cmp.write_report("out/")  # report.html, figures/*.png, tables/*.csv (collabsim.report)

A comparison *is* a sweep of the arms (``collabsim.sweep``): ``OUT`` is a sweep directory (resumable, any executor,
replicate ``r`` of both arms on the same random streams), and the analysis reads it back, so ``collabsim report OUT``
rebuilds everything from the stored runs. Attribution is a second sweep (``OUT/attribution-<by>/``) whose arms are
the two arms with one group of rules switched off at a time. Method: ``docs/compare.md``; decisions:
``docs/decisions.md``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabsim import stats
from collabsim.errors import NO_VALUE, CollabsimInputError
from collabsim.io import FORMAT, SweepResults, atomic_write, jsonable, load_results
from collabsim.scenario import Scenario, load_scenario

__all__ = [
    "ATTRIBUTE_BY",
    "Attribution",
    "Comparison",
    "attribution_groups",
    "attribution_scenario",
    "compare",
    "compare_summaries",
    "effective_weights",
    "load_comparison",
    "pair_scenarios",
]

COMPARE_FILE = "compare.json"
COMPARE_FORMAT = "collabsim-compare/1"
#: Replicates of a comparison when the scenario has no ``sweep.replications``.
DEFAULT_REPLICATIONS = 100
#: Replicates of an attribution (at most the comparison's).
DEFAULT_ATTRIBUTION_REPLICATIONS = 50
ATTRIBUTE_BY = ("mechanism", "cmoc", "rule")
#: Groups every attribution has besides the rule groups.
NOTHING_OFF = "(nothing)"
ALL_OFF = "(all rules)"
#: The trajectories of the report (timeseries columns) and the level they are averaged at (D: dyads, M: members).
TRAJECTORY_VARIABLES = {
    "trust": "D",
    "faith": "M",
    "confidence": "D",
    "risk_tolerance": "M",
    "collaborative_behaviour": "M",
}
TRAJECTORY_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Months after formation at which the time-to-event table reads the curves.
EVENT_MONTHS = (12, 24, 36, 60, 120)
KM_RESAMPLES = 1000
_FIXED_COLUMNS = {
    "description",
    "difference",
    "ci_low",
    "ci_high",
    "effect_size",
    "p_superiority",
    "n_pairs",
    "se_paired",
    "se_unpaired",
}


# ---------------------------------------------------------------------------------------------------------------------
# Statistics of the summary metrics
# ---------------------------------------------------------------------------------------------------------------------


def _metric_descriptions() -> dict[str, str]:
    from collabsim.recorder import METRIC_DESCRIPTIONS  # noqa: PLC0415

    return dict(METRIC_DESCRIPTIONS)


def _bounds(metric: str) -> tuple[float, float] | None:
    from collabsim.recorder import BOUNDED_METRICS  # noqa: PLC0415

    return (0.0, 1.0) if metric in BOUNDED_METRICS else None


def _by_replicate(summary: pd.DataFrame, arm: str, metrics: Sequence[str]) -> pd.DataFrame:
    return summary[summary["arm"] == arm].set_index("replicate")[list(metrics)].sort_index()


def compare_summaries(
    summary: pd.DataFrame,
    first: str,
    second: str,
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = stats.N_RESAMPLES,
) -> pd.DataFrame:
    """One row per metric (the index): ``<arm>`` (each arm's mean) with ``<arm>_ci_low``, ``<arm>_ci_high``
    (Student-t, clipped to [0, 1] for the metrics bounded there: ``recorder.BOUNDED_METRICS``) and ``<arm>_n``;
    ``difference`` = mean over replicates of (second − first) with its bootstrap ``ci_low``/``ci_high`` (BCa, pairs
    resampled), ``effect_size`` (Hedges' g_av; NaN when neither arm varies), ``p_superiority`` (P(second > first)
    in a replicate), ``n_pairs``, and the standard errors of the difference as paired (``se_paired``) and as if the
    arms were independent (``se_unpaired``): their ratio is what common random numbers bought.

    ``summary`` has one row per run with ``arm``, ``replicate`` and the metric columns; replicates with the same
    number are pairs. A metric undefined in a run (NaN) leaves that run out of its arm's mean and its pair out of the
    difference.
    """
    descriptions = _metric_descriptions()
    if metrics is None:
        metrics = [m for m in descriptions if m in summary.columns]
    a = _by_replicate(summary, first, metrics)
    b = _by_replicate(summary, second, metrics)
    common = a.index.intersection(b.index)
    rows = []
    for m in metrics:
        xa, xb = a[m].to_numpy(float), b[m].to_numpy(float)
        pa_, pb_ = a.loc[common, m].to_numpy(float), b.loc[common, m].to_numpy(float)
        ok = np.isfinite(pa_) & np.isfinite(pb_)
        d = pb_[ok] - pa_[ok]
        n = len(d)
        row: dict[str, Any] = {"metric": m, "description": descriptions.get(m, "")}
        for arm, x in ((first, xa), (second, xb)):
            mean, lo, hi, k = stats.t_interval(x, confidence, _bounds(m))
            row.update({arm: mean, f"{arm}_ci_low": lo, f"{arm}_ci_high": hi, f"{arm}_n": k})
        lo, hi = stats.bootstrap_ci(d, confidence=confidence, n_resamples=n_resamples, rng=stats.rng_for(seed, 1, m))
        row.update(
            {
                "difference": float(d.mean()) if n else math.nan,
                "ci_low": lo,
                "ci_high": hi,
                "effect_size": stats.hedges_g_av(pa_, pb_),
                "p_superiority": stats.p_superiority(pa_, pb_),
                "n_pairs": n,
                "se_paired": float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                "se_unpaired": float(math.sqrt((pa_[ok].var(ddof=1) + pb_[ok].var(ddof=1)) / n)) if n > 1 else math.nan,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


# ---------------------------------------------------------------------------------------------------------------------
# Time series: events, trajectories, maturity
# ---------------------------------------------------------------------------------------------------------------------


def collaboration_events(ts: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """One row per (arm, replicate, collaboration): ``formed`` (its first recorded month − 1: the month it formed),
    ``synergy`` and ``dissolved`` (months after formation of the first month in maintenance / dissolved; NaN if
    never) and ``followup`` (horizon − formed: months it could be observed)."""
    keys = ["arm", "replicate", "collaboration"]
    if ts.empty:
        return pd.DataFrame(columns=[*keys, "formed", "synergy", "dissolved", "followup"])
    g = ts.groupby(keys, observed=True, sort=True)
    out = (g["month"].min() - 1).rename("formed").to_frame()
    stage = ts["stage"].astype(str)
    for name, code in (("synergy", "maintenance"), ("dissolved", "dissolved")):
        first = ts[stage == code].groupby(keys, observed=True)["month"].min()
        out[name] = first.reindex(out.index) - out["formed"]
    out["followup"] = horizon - out["formed"]
    return out.reset_index()


def event_curves(
    events: pd.DataFrame, arms: Sequence[str], replicates: Sequence[int], horizon: int, seed: int
) -> dict[str, dict[str, stats.IncidenceCurves]]:
    """Kaplan–Meier cumulative shares by months since formation, per event and arm, with paired cluster-bootstrap
    replicates (the same resampled replicates for both arms).

    ``synergy``: time to the first month in maintenance. Dissolution before synergy rules synergy out (a competing
    event): such collaborations stay in the risk set until their follow-up would have ended (censoring here is only
    the end of the run, known for every collaboration: the Fine–Gray risk set), so ``1 - KM`` estimates the
    cumulative incidence, the share that actually got there (exactly that share when every collaboration is followed
    as long), not the share that would get there if nothing dissolved. ``dissolved``: time to dissolution,
    censored at the end of follow-up.
    """
    index = {r: i for i, r in enumerate(replicates)}
    weights = stats.replicate_weights(len(replicates), KM_RESAMPLES, stats.rng_for(seed, 2))
    out: dict[str, dict[str, stats.IncidenceCurves]] = {}
    for event in ("synergy", "dissolved"):
        out[event] = {}
        for arm in arms:
            e = events[(events["arm"] == arm) & events["replicate"].isin(index)]
            happened = e[event].notna().to_numpy()
            time = np.where(happened, e[event].fillna(0), e["followup"]).astype(np.int64)
            cluster = e["replicate"].map(index).to_numpy(np.int64)
            out[event][arm] = stats.cumulative_incidence(time, happened, cluster, len(replicates), horizon, weights)
    return out


def km_tables(
    curves: dict[str, dict[str, stats.IncidenceCurves]], arms: Sequence[str], confidence: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, summary): the curves as a tidy table (event, arm, month, share, ci_low, ci_high, at_risk); the
    summary reads them at EVENT_MONTHS and gives the median time, each with a bootstrap interval, and the paired
    difference second − first."""
    alpha = (1 - confidence) / 2
    tidy, summary = [], []
    first, second = arms
    for event, by_arm in curves.items():
        for arm, c in by_arm.items():
            lo, hi = c.band(confidence)
            tidy.append(
                pd.DataFrame(
                    {
                        "event": event,
                        "arm": arm,
                        "month": c.t,
                        "share": c.share,
                        "ci_low": lo,
                        "ci_high": hi,
                        "at_risk": c.at_risk,
                    }
                )
            )
        horizon = int(by_arm[first].t[-1])
        months = [m for m in EVENT_MONTHS if m <= horizon] or [horizon]
        for m in months:
            row: dict[str, Any] = {"event": event, "quantity": f"share by month {m}"}
            for arm in arms:
                c = by_arm[arm]
                row[arm] = c.share[m]
                row[f"{arm}_ci_low"], row[f"{arm}_ci_high"] = np.quantile(c.boot[:, m], [alpha, 1 - alpha])
            d = by_arm[second].boot[:, m] - by_arm[first].boot[:, m]
            row["difference"] = by_arm[second].share[m] - by_arm[first].share[m]
            row["ci_low"], row["ci_high"] = np.quantile(d, [alpha, 1 - alpha])
            summary.append(row)
        row = {"event": event, "quantity": "median months"}
        for arm in arms:
            c = by_arm[arm]
            row[arm] = stats.first_crossing(c.t, c.share)
            boot = np.array([stats.first_crossing(c.t, b) for b in c.boot])
            row[f"{arm}_ci_low"], row[f"{arm}_ci_high"] = _nan_quantiles(boot, alpha)
        row["difference"] = row[second] - row[first]
        boot_d = np.array(
            [
                stats.first_crossing(by_arm[second].t, b2) - stats.first_crossing(by_arm[first].t, b1)
                for b1, b2 in zip(by_arm[first].boot, by_arm[second].boot, strict=True)
            ]
        )
        row["ci_low"], row["ci_high"] = _nan_quantiles(boot_d, alpha)
        summary.append(row)
    return pd.concat(tidy, ignore_index=True), pd.DataFrame(summary)


def _nan_quantiles(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values where NaN means 'not reached within the horizon' (above any month):
    the bound is NaN when the quantile falls among them."""
    never = 1e18
    lo, hi = np.quantile(np.where(np.isnan(boot), never, boot), [alpha, 1 - alpha], method="inverted_cdf")
    return (float(lo) if lo < never / 2 else math.nan), (float(hi) if hi < never / 2 else math.nan)


def run_trajectories(ts: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, replicate, month): each variable of TRAJECTORY_VARIABLES averaged over the running
    collaborations' dyads (trust, confidence) or active memberships (the others), as the summary metrics average
    them at the end (so the last month equals ``mean_trust`` etc.). NaN when nothing is running."""
    keys = ["arm", "replicate", "month"]
    n = ts["n_members"].to_numpy(float)
    parts = {}
    for var, level in TRAJECTORY_VARIABLES.items():
        w = n * (n - 1) if level == "D" else n
        v = ts[var].to_numpy(float)
        ok = np.isfinite(v) & (w > 0)
        parts[f"{var}__w"] = np.where(ok, w, 0.0)
        parts[f"{var}__wv"] = np.where(ok, w * np.where(ok, v, 0.0), 0.0)
    frame = pd.DataFrame({k: ts[k].to_numpy() for k in keys} | parts)
    sums = frame.groupby(keys, sort=True).sum()
    out = pd.DataFrame(index=sums.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        for var in TRAJECTORY_VARIABLES:
            w = sums[f"{var}__w"].to_numpy()
            out[var] = np.where(w > 0, sums[f"{var}__wv"].to_numpy() / np.where(w > 0, w, 1), np.nan)
    return out.reset_index()


def trajectory_bands(runs: pd.DataFrame) -> pd.DataFrame:
    """Quantiles (TRAJECTORY_QUANTILES) over replicates of the run-level trajectories, by arm, variable and month:
    the median and the 50% and 90% bands of what a run (one local health economy) looks like."""
    long = runs.melt(id_vars=["arm", "replicate", "month"], var_name="variable", value_name="value")
    g = long.groupby(["arm", "variable", "month"], sort=True)["value"]
    q = g.quantile(list(TRAJECTORY_QUANTILES)).unstack()
    q.columns = [f"q{int(round(p * 100)):02d}" for p in TRAJECTORY_QUANTILES]
    q["n_runs"] = g.count()
    return q.reset_index()


def maturity_by_month(ts: pd.DataFrame) -> pd.DataFrame:
    """Share of running collaborations at each maturity level, by arm and month: the mean over replicates of each
    run's shares (runs with nothing running left out), as the summary's share_* metrics at the end."""
    from collabsim.recorder import MATURITY_LEVELS  # noqa: PLC0415

    running = ts[(ts["stage"].astype(str) != "dissolved") & ts["maturity"].notna()]
    keys = ["arm", "replicate", "month"]
    counts = pd.crosstab([running[k] for k in keys], running["maturity"].astype(str))
    counts = counts.reindex(columns=list(MATURITY_LEVELS), fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    return shares.groupby(["arm", "month"]).mean().reset_index()


# ---------------------------------------------------------------------------------------------------------------------
# Attribution
# ---------------------------------------------------------------------------------------------------------------------


def effective_weights(scenario: Scenario) -> dict[str, float]:
    """The weight every rule row has in ``scenario`` (after its ``rules.disable`` and ``rules.weights``)."""
    from collabsim.rules import load_rule_table  # noqa: PLC0415

    table = load_rule_table().with_overrides(list(scenario.rules.disable), dict(scenario.rules.weights))
    return {r.id: float(r.weight) for r in table.rows}


def attribution_groups(by: str = "mechanism", active: set[str] | None = None) -> dict[str, list[str]]:
    """Groups of rule row ids to switch off together: by the variable the rows move (``mechanism``), by catalogue
    CMOC (``cmoc``; model rows by their own id) or one row each (``rule``). Only rows in ``active`` (rows with a
    weight in some arm) are kept; empty groups are dropped. Ordered by name."""
    from collabsim.rules import load_rule_table  # noqa: PLC0415

    if by not in ATTRIBUTE_BY:
        raise CollabsimInputError("--attribute-by", None, by, "one of: " + ", ".join(ATTRIBUTE_BY))
    groups: dict[str, list[str]] = {}
    for r in load_rule_table().rows:
        if active is not None and r.id not in active:
            continue
        name = {"mechanism": r.mechanism, "cmoc": r.cmoc or r.id, "rule": r.id}[by]
        groups.setdefault(name, []).append(r.id)
    return dict(sorted(groups.items()))


def _switch_off(scenario: Scenario, rule_ids: Sequence[str]) -> dict[str, Any]:
    """Overrides that give exactly the rows ``rule_ids`` weight 0 in ``scenario`` and leave every other row as it
    is. Done with ``rules.weights`` by row id: a row id that is also a CMOC id (``fn-x`` with a further row
    ``fn-x@y``) would, in ``rules.disable``, switch off every row of that CMOC; the other rows of such a CMOC are
    therefore pinned to their own multipliers (a row id's multiplier takes precedence over its CMOC's)."""
    from collabsim.rules import load_rule_table  # noqa: PLC0415

    weights = dict(scenario.rules.weights)
    off = set(rule_ids)
    new = dict(weights)
    for rid in off:
        new[rid] = 0.0
    for r in load_rule_table().rows:
        if r.id not in off and r.cmoc in off:
            factor = 1.0
            for name in (r.cmoc, r.id):
                if name in weights:
                    factor = float(weights[name])
            new[r.id] = factor
    return {"rules.weights": dict(sorted(new.items()))}


def _arm_overrides(scenario: Scenario, arm: str) -> dict[str, Any]:
    return dict((scenario.arms or {})[arm])


def attribution_scenario(
    scenario: Scenario, groups: Mapping[str, Sequence[str]], replications: int
) -> tuple[Scenario, dict[str, tuple[str, str]]]:
    """The sweep of an attribution: for each group (first NOTHING_OFF, last ALL_OFF) and each arm of ``scenario``, an
    arm named ``g<index>.<arm>`` with the group's rows switched off in that arm. Returns the scenario and
    ``{attribution arm: (group, arm)}``."""
    arms = list(scenario.arms or {})
    data = scenario.model_dump(mode="json", exclude={"arms", "sweep"})
    new_arms: dict[str, dict[str, Any]] = {}
    index: dict[str, tuple[str, str]] = {}
    resolved = {arm: scenario.arm(arm) for arm in arms}
    for gi, (group, ids) in enumerate(groups.items()):
        for arm in arms:
            name = f"g{gi:03d}.{arm}"[:64]
            overrides = _arm_overrides(scenario, arm)
            if ids:
                overrides.update(_switch_off(resolved[arm], ids))
            new_arms[name] = overrides
            index[name] = (group, arm)
    data["arms"] = new_arms
    data["sweep"] = {"replications": int(replications)}
    data["name"] = f"{scenario.name}-attribution"
    sc = Scenario.from_dict(data, scenario.source_file)
    sc._source_file = scenario.source_file
    return sc, index


@dataclass
class Attribution:
    """Which mechanisms make the arms differ: the gap (second − first) with each group of rules switched off in both
    arms. ``table`` has one row per (metric, group); ``groups`` maps each group to its rule ids."""

    by: str
    groups: dict[str, list[str]]
    replications: int
    results: SweepResults
    table: pd.DataFrame
    check: dict[str, Any] = field(default_factory=dict)

    def for_metric(self, metric: str) -> pd.DataFrame:
        return self.table[self.table["metric"] == metric].set_index("group")


def attribution_table(
    summary: pd.DataFrame,
    index: Mapping[str, tuple[str, str]],
    first: str,
    second: str,
    metrics: Sequence[str],
    seed: int,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per (metric, group): ``<arm>_without`` (each arm's mean with the group switched off), ``gap`` (second − first
    with nothing switched off, over the replicates where every value
    is defined), ``gap_without`` (with the group off in both arms), ``contribution = gap - gap_without`` with a paired
    bootstrap CI, and ``share = contribution / gap`` with a bootstrap CI of the ratio (BCa; replicates resampled
    with all four runs of a replicate together). ``contribution + gap_without == gap`` exactly."""
    s = summary.copy()
    s["group"] = s["arm"].map(lambda a: index[a][0])
    s["base_arm"] = s["arm"].map(lambda a: index[a][1])
    groups = list(dict.fromkeys(g for g, _ in index.values()))
    rows = []
    for m in metrics:
        wide = s.pivot_table(index="replicate", columns=["group", "base_arm"], values=m, aggfunc="first", dropna=False)
        gap0 = wide[(NOTHING_OFF, second)] - wide[(NOTHING_OFF, first)]
        for g in groups:
            gap_g = wide[(g, second)] - wide[(g, first)]
            ok = np.isfinite(gap0.to_numpy()) & np.isfinite(gap_g.to_numpy())
            g0, gg = gap0.to_numpy()[ok], gap_g.to_numpy()[ok]
            contrib = g0 - gg
            n = int(ok.sum())
            gap = float(g0.mean()) if n else math.nan
            lo, hi = stats.bootstrap_ci(contrib, confidence=confidence, rng=stats.rng_for(seed, 3, m, str(g), 0))
            slo, shi = stats.bootstrap_ci(contrib, g0, confidence=confidence, rng=stats.rng_for(seed, 3, m, str(g), 1))
            rows.append(
                {
                    "metric": m,
                    "group": g,
                    f"{first}_without": float(wide[(g, first)].to_numpy()[ok].mean()) if n else math.nan,
                    f"{second}_without": float(wide[(g, second)].to_numpy()[ok].mean()) if n else math.nan,
                    "gap": gap,
                    "gap_without": float(gg.mean()) if n else math.nan,
                    "contribution": float(contrib.mean()) if n else math.nan,
                    "contribution_ci_low": lo,
                    "contribution_ci_high": hi,
                    "share": float(contrib.mean()) / gap if n and gap != 0 else math.nan,
                    "share_ci_low": slo,
                    "share_ci_high": shi,
                    "n_pairs": n,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """The analysis of a two-arm comparison stored in ``results`` (a sweep directory)."""

    scenario: Scenario
    arms: tuple[str, str]
    results: SweepResults
    table: pd.DataFrame
    km: pd.DataFrame | None = None
    km_summary: pd.DataFrame | None = None
    trajectories: pd.DataFrame | None = None
    maturity: pd.DataFrame | None = None
    attribution: Attribution | None = None
    metric: str = "share_synergy"
    confidence: float = 0.95

    @property
    def path(self) -> Path:
        return self.results.path

    @property
    def first(self) -> str:
        return self.arms[0]

    @property
    def second(self) -> str:
        return self.arms[1]

    @property
    def replications(self) -> int:
        return int(self.results.manifest["replications"])

    def write_report(self, out: str | os.PathLike[str] | None = None) -> Path:
        """Write ``report.html``, ``figures/`` and ``tables/`` into ``out`` (default: the comparison's directory);
        returns the path of report.html."""
        from collabsim.report import write_comparison_report  # noqa: PLC0415 - matplotlib loads only here

        return write_comparison_report(self, Path(out) if out is not None else self.path)


def _analyse(
    scenario: Scenario,
    results: SweepResults,
    arms: tuple[str, str],
    *,
    metric: str,
    confidence: float = 0.95,
    attribution: tuple[str, dict[str, list[str]], SweepResults, dict[str, tuple[str, str]]] | None = None,
) -> Comparison:
    first, second = arms
    seed = int(results.manifest["seeds"]["seed"])
    summary = results.summary
    table = compare_summaries(summary, first, second, seed=seed, confidence=confidence)
    cmp = Comparison(scenario, arms, results, table, metric=metric, confidence=confidence)
    if results.manifest.get("timeseries", True):
        cols = ["month", "collaboration", "stage", "n_members", "maturity", *TRAJECTORY_VARIABLES]
        ts = pd.concat([results.timeseries(arm=a, columns=cols) for a in arms], ignore_index=True)
        if not ts.empty:
            horizon = int(scenario.horizon_months)
            replicates = sorted(set(summary["replicate"].astype(int)))
            events = collaboration_events(ts, horizon)
            curves = event_curves(events, arms, replicates, horizon, seed)
            cmp.km, cmp.km_summary = km_tables(curves, arms, confidence)
            cmp.trajectories = trajectory_bands(run_trajectories(ts))
            cmp.maturity = maturity_by_month(ts)
    if attribution is not None:
        by, groups, att_results, index = attribution
        metrics = [m for m in _metric_descriptions() if m in att_results.summary.columns]
        att_table = attribution_table(att_results.summary, index, first, second, metrics, seed, confidence)
        check = _check(results, att_results, index)
        reps = int(att_results.manifest["replications"])
        cmp.attribution = Attribution(by, groups, reps, att_results, att_table, check)
    return cmp


def _check(results: SweepResults, att: SweepResults, index: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Switching nothing off must reproduce the comparison on the same replicates (same seeds): the runs of the
    attribution's NOTHING_OFF group are compared with the comparison's runs, every metric bit for bit."""
    metrics = [m for m in _metric_descriptions() if m in att.summary.columns and m in results.summary.columns]
    none = {name: arm for name, (group, arm) in index.items() if group == NOTHING_OFF}
    a = att.summary[att.summary["arm"].isin(none)].assign(arm=lambda d: d["arm"].map(none))
    a = a.set_index(["arm", "replicate"])[metrics].sort_index()
    main = results.summary.set_index(["arm", "replicate"])[metrics].sort_index()
    common = a.index.intersection(main.index)
    x = a.loc[common].to_numpy(np.float64)
    y = main.loc[common].to_numpy(np.float64)
    return {"runs_compared": int(len(common)), "identical": bool(np.array_equal(x.view(np.uint64), y.view(np.uint64)))}


def pair_scenarios(first: Scenario, second: Scenario, replications: int | None = None) -> Scenario:
    """One scenario with two arms from two plain scenario files: the first file with arms ``{first: {},
    second: <the keys where the second file differs>}``. Both arms use the first file's seed (common random
    numbers); arm names are the scenarios' names (file stems when they are equal)."""
    for sc in (first, second):
        if sc.arms:
            raise CollabsimInputError(
                sc.source_file,
                "arms",
                list(sc.arms),
                problem="compare A B takes two scenarios without arms",
                hint=f"compare this file alone: collabsim compare {sc.source_file}",
            )
        _check_single_point(sc)
    names = [first.name, second.name]
    if names[0] == names[1]:
        names = [Path(str(s.source_file or s.name)).stem for s in (first, second)]
    if names[0] == names[1]:
        names = ["first", "second"]
    names = [_arm_name(n) for n in names]
    da = first.model_dump(mode="json", exclude={"arms", "sweep", "name", "description", "seed"})
    db = second.model_dump(mode="json", exclude={"arms", "sweep", "name", "description", "seed"})
    overrides = _diff(da, db)
    data = first.model_dump(mode="json", exclude={"arms"})
    data["name"] = f"{first.name}_vs_{second.name}"
    data["description"] = f"{names[1]} ({second.source_file or second.name}) against {names[0]} " + (
        f"({first.source_file or first.name})"
    )
    data["arms"] = {names[0]: {}, names[1]: overrides}
    reps = replications or (first.sweep_spec.replications if first.sweep is not None else DEFAULT_REPLICATIONS)
    data["sweep"] = {"replications": int(reps)}
    sc = Scenario.from_dict(data, first.source_file)
    sc._source_file = first.source_file
    return sc


def _arm_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-")[:64]
    return cleaned or "arm"


def _diff(a: Any, b: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-key overrides that turn ``a`` into ``b`` (mappings with the same keys are compared key by key; other
    values, lists included, are replaced whole)."""
    if a == b:
        return {}
    if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
        out: dict[str, Any] = {}
        for k in a:
            out.update(_diff(a[k], b[k], f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): b}


def _check_single_point(sc: Scenario) -> None:
    spec = sc.sweep_spec
    if spec is not None and spec.parameters:
        raise CollabsimInputError(
            sc.source_file,
            "sweep.parameters",
            list(spec.parameters),
            problem="compare runs the arms at one design point, this scenario's sweep varies parameters",
            hint="run `collabsim sweep` and then `collabsim report OUT` (heatmaps by arm), or remove sweep.parameters",
        )


def _choose_arms(sc: Scenario, arms: Sequence[str] | None) -> tuple[str, str]:
    names = list(sc.arms or {})
    if arms:
        for a in arms:
            if a not in names:
                from collabsim.errors import suggest  # noqa: PLC0415

                close = suggest(a, names)
                raise CollabsimInputError(
                    "--arms",
                    None,
                    a,
                    "arms of the scenario: " + ", ".join(names),
                    hint=f"did you mean {close}?" if close else None,
                )
        if len(arms) != 2 or arms[0] == arms[1]:
            raise CollabsimInputError("--arms", None, ",".join(arms), "two different arms of the scenario, e.g. a,b")
        chosen = (arms[0], arms[1])
    elif len(names) == 2:
        chosen = (names[0], names[1])
    else:
        raise CollabsimInputError(
            sc.source_file,
            "arms",
            names or NO_VALUE,
            "exactly two arms, or choose two with --arms first,second",
            problem=f"compare needs two arms, the scenario has {len(names)}" if names else "the scenario has no arms",
            hint=None if names else "add arms: {a: {...}, b: {...}}, or compare two files: collabsim compare A B",
        )
    for a in chosen:
        if a in _FIXED_COLUMNS or any(a == f"{b}_{s}" for b in chosen for s in ("ci_low", "ci_high", "n")):
            raise CollabsimInputError(
                sc.source_file, f"arms.{a}", a, "an arm name that is not a column of the comparison table"
            )
    return chosen


def _comparison_scenario(
    scenario: Scenario | str | os.PathLike[str],
    other: Scenario | str | os.PathLike[str] | None,
    replications: int | None,
    arms: Sequence[str] | None,
) -> tuple[Scenario, tuple[str, str]]:
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if other is not None:
        if arms:
            raise CollabsimInputError("--arms", None, ",".join(arms), problem="only for one scenario with arms")
        sc2 = other if isinstance(other, Scenario) else load_scenario(other)
        sc = pair_scenarios(sc, sc2, replications)
    else:
        _check_single_point(sc)
    chosen = _choose_arms(sc, arms)
    lengths = {a: sc.arm(a).horizon_months for a in chosen}
    if len(set(lengths.values())) > 1:  # time-to-event curves and end-of-run metrics need one follow-up
        a, b = chosen
        raise CollabsimInputError(
            sc.source_file,
            "horizon_months",
            lengths,
            "the same horizon in both arms",
            problem=f"arm {a} runs {lengths[a]} months and arm {b} {lengths[b]}",
            hint="set horizon_months once for the scenario, not in an arm (or in one file only)",
        )
    data = sc.model_dump(mode="json")
    data["arms"] = {a: dict(sc.arms[a]) for a in chosen}  # type: ignore[index]
    reps = replications or (sc.sweep_spec.replications if sc.sweep is not None else DEFAULT_REPLICATIONS)
    if isinstance(reps, bool) or not isinstance(reps, int) or not 2 <= reps <= 1_000_000:
        raise CollabsimInputError("--replications", None, reps, "an integer from 2 to 1000000")
    data["sweep"] = {"replications": int(reps)}
    out = Scenario.from_dict(data, sc.source_file)
    out._source_file = sc.source_file
    return out, chosen


def compare(
    scenario: Scenario | str | os.PathLike[str],
    other: Scenario | str | os.PathLike[str] | None = None,
    *,
    replications: int | None = None,
    workers: int | None = None,
    executor: str = "process",
    scheduler: str | None = None,
    out: str | os.PathLike[str] | None = None,
    arms: Sequence[str] | None = None,
    attribute: bool = False,
    attribute_by: str = "mechanism",
    attribute_replications: int | None = None,
    metric: str = "share_synergy",
    confidence: float = 0.95,
    progress: bool = False,
    log: Any = None,
) -> Comparison:
    """Run and analyse a comparison of two arms with common random numbers.

    Args:
        scenario: a scenario with two ``arms`` (a Scenario, a file or a built-in name); or, with ``other``, the first
            of two plain scenarios (the arms are the two files, the second applied as overrides of the first).
        replications: paired replicates (default: the scenario's ``sweep.replications``, else 100).
        workers, executor, scheduler: as for :func:`collabsim.sweep`.
        out: the results directory (a sweep directory; default: a new temporary one). Running again into it resumes.
        arms: two arm names when the scenario has more than two (the first is the reference).
        attribute: also run the mechanism attribution (:class:`Attribution`).
        attribute_by: ``mechanism`` (rows grouped by the variable they move), ``cmoc`` or ``rule``.
        attribute_replications: replicates of the attribution (default: min(50, replications)).
        metric: the headline metric of the report and of the attribution figure.
        progress: progress bars on stderr.

    Returns a :class:`Comparison`; ``.table`` has one row per summary metric.
    """
    from collabsim import executors as executors_module  # noqa: PLC0415
    from collabsim.sweeps import sweep  # noqa: PLC0415

    sc, chosen = _comparison_scenario(scenario, other, replications, arms)
    descriptions = _metric_descriptions()
    if metric not in descriptions:
        raise CollabsimInputError("--metric", None, metric, "one of: " + ", ".join(descriptions))
    if attribute_by not in ATTRIBUTE_BY:
        raise CollabsimInputError("--attribute-by", None, attribute_by, "one of: " + ", ".join(ATTRIBUTE_BY))
    reps = int(sc.sweep_spec.replications)  # type: ignore[union-attr]
    att_reps = attribute_replications or min(DEFAULT_ATTRIBUTION_REPLICATIONS, reps)
    if attribute and (isinstance(att_reps, bool) or not 2 <= int(att_reps) <= reps):
        raise CollabsimInputError(
            "--attribute-replications", None, att_reps, f"an integer from 2 to {reps} (the comparison's replications)"
        )
    log = log if log is not None else (sys.stderr if progress else None)
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        _check_compare_dir(out_path)
    exe = executors_module.make(executor, workers, scheduler, 1)
    try:
        results = sweep(sc, executor=exe, out=out_path, progress=progress, log=log)
        out_path = results.path
        meta: dict[str, Any] = {"format": COMPARE_FORMAT, "arms": list(chosen), "metric": metric}
        if attribute:
            active = {rid for a in chosen for rid, w in effective_weights(sc.arm(a)).items() if w > 0}
            groups = {NOTHING_OFF: [], **attribution_groups(attribute_by, active), ALL_OFF: sorted(active)}
            att_sc, index = attribution_scenario(sc, groups, att_reps)
            att_dir = out_path / f"attribution-{attribute_by}"
            if log is not None:
                print(
                    f"attribution by {attribute_by}: {len(groups) - 2} group(s) switched off one at a time, plus "
                    f"nothing and all rules, x 2 arms x {att_reps} replicates = {len(index) * att_reps} runs",
                    file=log,
                )
            att_results = sweep(att_sc, executor=exe, out=att_dir, timeseries=False, progress=progress, log=log)
            del att_results  # read back by load_comparison
            meta["attribution"] = {
                "by": attribute_by,
                "dir": att_dir.name,
                "replications": att_reps,
                "groups": groups,
                "arms": {k: list(v) for k, v in index.items()},
            }
        elif (out_path / COMPARE_FILE).exists():
            previous = _read_meta(out_path)
            if previous.get("attribution") and previous.get("arms") == list(chosen):
                meta["attribution"] = previous["attribution"]  # keep an earlier attribution in the report
        _write_meta(out_path, meta)
    finally:
        exe.close()
    if log is not None:
        print(f"compare: analysing {out_path} (bootstrap intervals, Kaplan–Meier, trajectories)", file=log)
    return load_comparison(out_path, scenario=sc, confidence=confidence)


def _check_compare_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CollabsimInputError("--out", None, str(out), problem=f"{out} exists and is not a directory")


def _read_meta(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / COMPARE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise CollabsimInputError(str(out / COMPARE_FILE), problem="cannot be read as a comparison") from None
    return data if isinstance(data, dict) else {}


def _write_meta(out: Path, meta: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(jsonable(meta), indent=1) + "\n", encoding="utf-8")

    atomic_write(out / COMPARE_FILE, write)


def load_comparison(
    out: str | os.PathLike[str], *, scenario: Scenario | None = None, confidence: float = 0.95
) -> Comparison:
    """The comparison stored in ``out``: the directory of ``collabsim compare``, or any sweep directory with two
    arms at one design point. Re-analyses the stored runs (the intervals are seeded: the same numbers each time)."""
    out = Path(out)
    results = load_results(out)
    meta = _read_meta(out) if (out / COMPARE_FILE).exists() else {}
    arms = tuple(meta.get("arms") or results.arms)
    if len(arms) != 2 or len(results.design) != 1:
        raise CollabsimInputError(
            str(out),
            problem=f"holds a sweep of {len(results.arms)} arm(s) at {len(results.design)} design point(s), not a "
            "comparison of two arms at one point",
        )
    if results.summary.empty:
        raise CollabsimInputError(str(out), problem="holds no finished runs yet")
    sc = scenario if scenario is not None else Scenario.from_dict(results.manifest["scenario"])
    att = None
    info = meta.get("attribution")
    if info:
        att_dir = out / info["dir"]
        if (att_dir / "manifest.json").exists():
            att_results = load_results(att_dir)
            index = {k: (v[0], v[1]) for k, v in info["arms"].items()}
            att_results.summary = att_results.summary[att_results.summary["arm"].isin(index)]
            if not att_results.summary.empty:
                att = (info["by"], info["groups"], att_results, index)
    return _analyse(
        sc,
        results,
        (arms[0], arms[1]),
        metric=meta.get("metric", "share_synergy"),
        confidence=confidence,
        attribution=att,
    )


def is_comparison_dir(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` holds a comparison (compare.json, or a sweep of two arms at one design point)."""
    out = Path(out)
    if (out / COMPARE_FILE).exists():
        return True
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and len(manifest.get("arms", {})) == 2
        and int(manifest.get("n_points", 0)) == 1
    )
