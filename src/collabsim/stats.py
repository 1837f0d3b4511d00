"""Statistics of a policy comparison: intervals, paired bootstrap, effect size, Kaplan–Meier with cluster bootstrap.

Pure functions on numpy arrays (no collabsim state), so each can be checked against closed forms and synthetic data
with a known truth (``tests/test_compare_stats.py``). The choices are recorded in ``docs/decisions.md`` (36–44) and
explained for users in ``docs/compare.md``.

- :func:`t_interval`: mean of one arm with a Student-t interval (replicates are independent runs).
- :func:`bootstrap_ci`: BCa bootstrap interval of a mean, or of a ratio of two means, resampling replicates (pairs)
  with replacement; used for the paired difference of two arms and for attribution shares.
- :func:`hedges_g_av`: standardised effect size of a paired comparison: the mean difference over the average of the
  two arms' standard deviations (Cohen's d_av), with Hedges' small-sample correction.
- :func:`p_superiority`: the probability that the second arm's value exceeds the first's in a paired replicate.
- :func:`cumulative_incidence`: Kaplan–Meier curves ``1 - S(t)`` with pointwise bands from a bootstrap of whole
  replicates (collaborations of one run are not independent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special  # not scipy.stats: it takes 0.3 s to import, in every sweep worker

from collabsim.rng import name_key

__all__ = [
    "IncidenceCurves",
    "bootstrap_ci",
    "cumulative_incidence",
    "hedges_g_av",
    "kaplan_meier",
    "p_superiority",
    "replicate_weights",
    "rng_for",
    "t_interval",
]

#: Resamples of the bootstrap intervals of differences and shares.
N_RESAMPLES = 9999
#: Fewest pairs with an effect size (Hedges' correction needs n - 1 > 1 for a stable J).
G_MIN_PAIRS = 3
#: spawn_key prefix of the analysis streams (runs use ``(replicate,)``: keys of another length never collide).
ANALYSIS_KEY = 0xA7A1


def rng_for(seed: int, *labels: int | str) -> np.random.Generator:
    """The random stream of one analysis (bootstrap) step: ``SeedSequence(seed, spawn_key=(ANALYSIS_KEY, *labels))``
    with names (a metric, a rule group) as their ``rng.name_key``, so a metric's interval does not depend on which
    other metrics are analysed. Re-analysing the same results gives the same intervals."""
    keys = (name_key(x) if isinstance(x, str) else int(x) for x in labels)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(ANALYSIS_KEY, *keys)))


def t_interval(
    x: np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the finite values of ``x``: the Student-t interval ``mean ± t·s/√n``.
    With one value the interval is unknown (NaN); with no spread it is the mean itself. ``bounds``: the range every
    value lies in by definition (e.g. (0, 1) for a share); the interval is clipped to it, since the symmetric t
    interval of a mean near a bound reaches values the mean cannot take."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2) * x.std(ddof=1) / math.sqrt(n))  # Student's t quantile
    lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return m, lo, hi, n


def _resampled_means(values: np.ndarray, idx_rows: int, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of the rows of ``values`` (shape (n, k)) -> (B, k).
    Drawn in blocks so memory stays small whatever n."""
    n = idx_rows
    out = np.empty((n_resamples, values.shape[1]))
    block = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        out[start : start + size] = values[idx].mean(axis=1)
    return out


def bootstrap_ci(
    num: np.ndarray,
    den: np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    rng: np.random.Generator | None = None,
    method: str = "bca",
) -> tuple[float, float]:
    """Bootstrap interval of ``mean(num)`` (or of ``mean(num) / mean(den)``), resampling the rows with replacement.

    Rows are the units of resampling: for a paired difference, ``num = second - first`` per replicate; for a ratio,
    ``num`` and ``den`` of the same replicate stay together. ``method="bca"`` (default): bias-corrected and
    accelerated (Efron 1987), the acceleration from the jackknife (closed form for means and ratios of means);
    ``"percentile"``: the plain percentile interval. Non-finite rows are dropped. Returns (NaN, NaN) with fewer than
    two rows, and (θ, θ) when no resample can differ from the estimate θ (no spread).
    """
    num = np.asarray(num, dtype=np.float64)
    ratio = den is not None
    den = np.ones_like(num) if den is None else np.asarray(den, dtype=np.float64)
    keep = np.isfinite(num) & np.isfinite(den)
    num, den = num[keep], den[keep]
    n = len(num)
    if n < 2:
        return math.nan, math.nan
    theta = num.mean() / den.mean() if den.mean() != 0 else math.nan
    if np.ptp(num) == 0 and np.ptp(den) == 0:
        return float(theta), float(theta)
    rng = rng if rng is not None else np.random.default_rng()
    means = _resampled_means(np.column_stack([num, den]) if ratio else num[:, None], n, rng, n_resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = means[:, 0] / means[:, 1] if ratio else means[:, 0]
    boot = boot[np.isfinite(boot)]
    if len(boot) < 0.99 * n_resamples or not math.isfinite(theta):
        return math.nan, math.nan  # the ratio is undefined in too many resamples (denominator at zero)
    alpha = (1 - confidence) / 2
    q = np.array([alpha, 1 - alpha])
    if method == "bca":
        below = (np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / len(boot)
        z0 = special.ndtri(below)
        # jackknife: leave-one-out means (or ratios of sums), closed form
        jack = (num.sum() - num) / (den.sum() - den) if ratio else (num.sum() - num) / (n - 1)
        d = jack.mean() - jack
        ss = float((d**2).sum())
        a = float((d**3).sum()) / (6 * ss**1.5) if ss > 0 else 0.0
        z = special.ndtri(q)
        adjusted = special.ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
        if np.all(np.isfinite(adjusted)):
            q = adjusted
    elif method != "percentile":
        raise ValueError(f"method must be 'bca' or 'percentile', not {method!r}")
    lo, hi = np.quantile(boot, q)
    return float(lo), float(hi)


def hedges_g_av(first: np.ndarray, second: np.ndarray) -> float:
    """Standardised effect of ``second - first`` over paired replicates (finite pairs only): Cohen's d_av, the mean
    difference over the mean of the two arms' standard deviations, times Hedges' correction
    ``J = 1 - 3 / (4 (n - 1) - 1)`` (Lakens 2013; Borenstein et al. 2009 use df = n - 1 for matched designs).

    It measures the difference against the spread of outcomes between runs, so it does not grow when common random
    numbers shrink the noise of the difference (as the paired d_z = mean/sd of differences would). NaN with fewer
    than three pairs, and NaN when neither arm varies: with no spread within the arms a standardised effect is
    undefined, whether or not the arms differ (the difference itself says how much they do).
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < G_MIN_PAIRS:
        return math.nan
    diff = float((b - a).mean())
    sd = (a.std(ddof=1) + b.std(ddof=1)) / 2
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-300)
    if sd <= 1e-12 * scale:  # no spread beyond rounding: nothing to standardise by (not an infinite effect)
        return math.nan
    j = 1 - 3 / (4 * (n - 1) - 1)
    return j * diff / sd


def p_superiority(first: np.ndarray, second: np.ndarray) -> float:
    """Probability that the second arm's value is higher than the first's in a replicate (ties count one half):
    the paired common-language effect size. 0.5 = no tendency either way. NaN without finite pairs."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if not keep.any():
        return math.nan
    a, b = a[keep], b[keep]
    return float(np.mean((b > a) + 0.5 * (b == a)))


# ---------------------------------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------------------------------


def kaplan_meier(time: np.ndarray, event: np.ndarray, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Product-limit estimate of S(t) = P(T > t) on the integer grid t = 0 ... horizon.

    ``time``: integer event or censoring times (>= 0); ``event``: True where the event happened at ``time``, False
    where the unit was censored then (still at risk at ``time``). Returns (t, S(t)).
    """
    time = np.asarray(time, dtype=np.int64)
    event = np.asarray(event, dtype=bool)
    horizon = int(time.max()) if horizon is None else int(horizon)
    e, r = _counts(time, event, horizon)
    return np.arange(horizon + 1), _survival(e, _at_risk(r, len(time)))


def _counts(time: np.ndarray, event: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Events and removals (events + censorings) at each t = 0 ... horizon (times beyond the horizon: censored at
    the horizon's end, i.e. still at risk throughout)."""
    inside = time <= horizon
    e = np.bincount(time[event & inside], minlength=horizon + 1).astype(np.float64)
    r = np.bincount(time[inside], minlength=horizon + 1).astype(np.float64)
    return e, r


def _at_risk(removed: np.ndarray, total: np.ndarray | float) -> np.ndarray:
    """At risk at t: everyone not removed before t (removals counted along the last axis)."""
    before = np.cumsum(removed, axis=-1) - removed
    return np.asarray(total)[..., None] - before if np.ndim(total) else total - before


def _survival(events: np.ndarray, at_risk: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1 - events / np.where(at_risk > 0, at_risk, 1), 1.0)
    return np.cumprod(factor, axis=-1)


def replicate_weights(n_replicates: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n_replicates) multiplicities of a bootstrap of whole replicates (each row sums to n)."""
    return rng.multinomial(n_replicates, np.full(n_replicates, 1.0 / n_replicates), size=n_resamples).astype(float)


@dataclass
class IncidenceCurves:
    """Cumulative share ``1 - S(t)`` of one group on t = 0 ... horizon, its bootstrap replicates and the at-risk
    counts."""

    t: np.ndarray
    share: np.ndarray  # (T,)
    boot: np.ndarray  # (B, T): the same replicate resamples for every group compared (paired)
    at_risk: np.ndarray  # (T,)

    def band(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        alpha = (1 - confidence) / 2
        return np.quantile(self.boot, alpha, axis=0), np.quantile(self.boot, 1 - alpha, axis=0)


def cumulative_incidence(
    time: np.ndarray, event: np.ndarray, cluster: np.ndarray, n_clusters: int, horizon: int, weights: np.ndarray
) -> IncidenceCurves:
    """Kaplan–Meier cumulative share ``1 - S(t)`` with a bootstrap of whole clusters (replicates).

    ``cluster`` (0 ... n_clusters - 1) says which replicate each unit belongs to; ``weights`` (B, n_clusters) are
    the bootstrap multiplicities of the replicates (:func:`replicate_weights`): passing the same weights for two
    arms pairs their resamples (common random numbers), so differences of the curves get paired intervals.
    """
    time = np.asarray(time, dtype=np.int64)
    event = np.asarray(event, dtype=bool)
    cluster = np.asarray(cluster, dtype=np.int64)
    n_t = horizon + 1
    inside = time <= horizon
    flat = cluster * n_t + np.minimum(time, horizon)
    e = np.bincount(flat[event & inside], minlength=n_clusters * n_t).reshape(n_clusters, n_t).astype(float)
    r = np.bincount(flat[inside], minlength=n_clusters * n_t).reshape(n_clusters, n_t).astype(float)
    total = np.bincount(cluster, minlength=n_clusters).astype(float)
    at_risk = _at_risk(r, total)  # (R, T)
    share = 1 - _survival(e.sum(0), at_risk.sum(0))
    boot = 1 - _survival(weights @ e, weights @ at_risk)
    return IncidenceCurves(np.arange(n_t), share, boot, at_risk.sum(0))


def first_crossing(t: np.ndarray, share: np.ndarray, level: float = 0.5) -> float:
    """First t where the cumulative share reaches ``level`` (the median time for 0.5); NaN if never."""
    hit = np.nonzero(share >= level - 1e-12)[0]
    return float(t[hit[0]]) if len(hit) else math.nan
