"""Statistics of comparisons against closed forms and synthetic data with a known truth (no simulation)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from collabsim import stats
from collabsim.compare import compare_summaries
from collabsim.recorder import BOUNDED_METRICS, METRIC_DESCRIPTIONS


def coverage(draw, truth, n_sets=300, **kwargs) -> float:
    rng = np.random.default_rng(12345)
    hits = 0
    for _ in range(n_sets):
        num, den = draw(rng)
        lo, hi = stats.bootstrap_ci(num, den, n_resamples=1000, rng=rng, **kwargs)
        hits += lo <= truth <= hi
    return hits / n_sets


# -- intervals of a mean ---------------------------------------------------------------------------------------------


def test_t_interval_is_the_student_t_interval():
    x = np.array([0.2, 0.5, 0.4, 0.9, 0.7, np.nan])
    mean, lo, hi, n = stats.t_interval(x)
    ref = sps.t.interval(0.95, 4, loc=np.nanmean(x), scale=sps.sem(x[:5]))
    assert n == 5 and mean == pytest.approx(0.54)
    assert (lo, hi) == pytest.approx(ref)
    assert stats.t_interval(np.array([0.3]))[1:3] == (pytest.approx(math.nan, nan_ok=True),) * 2
    assert stats.t_interval(np.full(4, 0.25))[1:3] == (0.25, 0.25)  # no spread: the mean itself


@pytest.mark.parametrize(
    ("name", "draw", "truth"),
    [
        ("normal", lambda rng: (rng.normal(0.3, 1.0, 40), None), 0.3),
        ("skewed", lambda rng: (rng.exponential(1.0, 40) - 0.5, None), 0.5),
        ("shares", lambda rng: (rng.binomial(10, 0.35, 60) / 10 - rng.binomial(10, 0.2, 60) / 10, None), 0.15),
    ],
)
def test_bootstrap_ci_covers_a_known_difference_at_about_the_nominal_rate(name, draw, truth):
    # 300 data sets: the coverage of a 95% interval has a binomial SD of 1.3 points
    assert 0.90 <= coverage(draw, truth) <= 0.985, name


def test_bootstrap_ci_of_a_ratio_covers_the_true_ratio():
    def draw(rng):
        gap = rng.normal(-0.5, 0.2, 50)
        part = 0.4 * gap + rng.normal(0, 0.05, 50)  # the part is 40% of the gap, replicate by replicate
        return part, gap

    assert 0.90 <= coverage(draw, 0.4) <= 0.985


def test_percentile_method_also_covers():
    assert 0.90 <= coverage(lambda rng: (rng.normal(1.0, 2.0, 50), None), 1.0, method="percentile") <= 0.985


def test_bca_agrees_with_scipy():
    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, 1.0, 80)
    ours = stats.bootstrap_ci(x, n_resamples=20000, rng=np.random.default_rng(1))
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="BCa", rng=np.random.default_rng(2))
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.05 * se)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.05 * se)


def test_bootstrap_edge_cases():
    assert stats.bootstrap_ci(np.full(10, 0.2)) == (0.2, 0.2)  # no spread: the difference itself
    assert all(math.isnan(v) for v in stats.bootstrap_ci(np.array([1.0])))
    assert all(math.isnan(v) for v in stats.bootstrap_ci(np.array([np.nan, np.nan, 1.0])))
    a = stats.bootstrap_ci(np.arange(10.0), rng=stats.rng_for(5, 1))
    b = stats.bootstrap_ci(np.arange(10.0), rng=stats.rng_for(5, 1))
    assert a == b  # seeded: re-analysis gives the same interval
    # a ratio whose denominator is zero in many resamples has no interval
    assert all(math.isnan(v) for v in stats.bootstrap_ci(np.ones(6), np.array([1.0, -1, 1, -1, 1, -1])))


# -- effect sizes ----------------------------------------------------------------------------------------------------


def test_hedges_g_av_closed_form():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([2.0, 4.0, 4.0, 6.0])
    sd = (a.std(ddof=1) + b.std(ddof=1)) / 2
    j = 1 - 3 / (4 * 3 - 1)
    assert stats.hedges_g_av(a, b) == pytest.approx(j * 1.5 / sd)
    assert stats.hedges_g_av(b, a) == pytest.approx(-j * 1.5 / sd)
    # it does not depend on how the replicates are paired (unlike d_z = mean/sd of the differences)
    assert stats.hedges_g_av(a, b[::-1]) == pytest.approx(stats.hedges_g_av(a, b))
    assert math.isnan(stats.hedges_g_av(np.full(5, 0.3), np.full(5, 0.3)))
    assert math.isnan(stats.hedges_g_av(a[:2], b[:2]))


def test_hedges_g_av_without_spread_is_undefined_even_when_the_arms_differ():
    """Constant arms that differ have no spread to standardise by: NaN, not ±inf (decision 39)."""
    assert math.isnan(stats.hedges_g_av(np.full(5, 0.3), np.full(5, 0.5)))
    assert math.isnan(stats.hedges_g_av(np.full(5, 0.5), np.full(5, 0.3)))
    third = np.full(7, 0.1) + np.array([0, 1e-17, 0, -1e-17, 0, 0, 0])  # rounding is no spread either
    assert math.isnan(stats.hedges_g_av(third, third + 0.4))
    # one arm varying is spread enough: a finite effect
    assert math.isfinite(stats.hedges_g_av(np.full(5, 0.3), np.array([0.4, 0.5, 0.6, 0.5, 0.5])))
    summary = pd.DataFrame(
        {"arm": ["a"] * 4 + ["b"] * 4, "replicate": [0, 1, 2, 3] * 2, "mean_confidence": [0.2] * 4 + [0.6] * 4}
    )
    r = compare_summaries(summary, "a", "b", ["mean_confidence"], seed=0).loc["mean_confidence"]
    assert math.isnan(r["effect_size"]) and r["difference"] == pytest.approx(0.4)


def test_p_superiority_closed_form():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert stats.p_superiority(a, a + 0.1) == 1.0
    assert stats.p_superiority(a, a) == 0.5
    assert stats.p_superiority(a, np.array([0.2, 0.1, 0.3, np.nan])) == pytest.approx((1 + 0 + 0.5) / 3)
    # normal differences: P(D > 0) = Phi(mu / sigma)
    d = np.random.default_rng(3).normal(0.5, 1.0, 200_000)
    assert stats.p_superiority(np.zeros_like(d), d) == pytest.approx(sps.norm.cdf(0.5), abs=0.005)


def test_intervals_of_bounded_metrics_stay_in_0_1():
    """A share near 0 at 3 replicates: the t interval reaches below 0, which a share cannot; clipped (decision 37).
    Unbounded metrics keep their symmetric interval."""
    x = np.array([0.0, 0.0, 0.144])
    mean, lo, hi, _ = stats.t_interval(x)
    assert lo < 0  # the plain interval leaves [0, 1]
    assert stats.t_interval(x, bounds=(0.0, 1.0)) == (mean, 0.0, hi, 3)
    assert stats.t_interval(1 - x, bounds=(0.0, 1.0))[2] == 1.0
    assert math.isnan(stats.t_interval(x[:1], bounds=(0.0, 1.0))[1])  # one value: still no interval
    values = {"share_generative": x, "mean_trust": x, "months_to_synergy": 10 * x, "n_collaborations": 10 * x}
    rows = [{"arm": arm, "replicate": r, **{m: v[r] for m, v in values.items()}} for arm in "ab" for r in range(3)]
    t = compare_summaries(pd.DataFrame(rows), "a", "b", list(values), seed=0)
    for m in ("share_generative", "mean_trust"):
        assert t.at[m, "a_ci_low"] == 0.0 and t.at[m, "b_ci_low"] == 0.0
        assert t.at[m, "a_ci_high"] == pytest.approx(hi)
    for m in ("months_to_synergy", "n_collaborations"):
        assert t.at[m, "a_ci_low"] == pytest.approx(10 * lo) and t.at[m, "a_ci_low"] < 0


def test_bounded_metrics_are_the_shares_and_means_of_unit_variables():
    assert set(BOUNDED_METRICS) <= set(METRIC_DESCRIPTIONS)
    assert set(METRIC_DESCRIPTIONS) - set(BOUNDED_METRICS) == {"months_to_synergy", "n_collaborations"}
    assert {m for m in METRIC_DESCRIPTIONS if m.startswith("share_")} <= set(BOUNDED_METRICS)


# -- the comparison table: paired vs unpaired with common random numbers ------------------------------------------


def synthetic_summary(shared_sd: float, noise_sd: float, delta: float, n: int, seed: int, paired: bool):
    rng = np.random.default_rng(seed)
    u1 = rng.normal(0, shared_sd, n)
    u2 = u1 if paired else rng.normal(0, shared_sd, n)  # common random numbers: the same economy in both arms
    first = 0.5 + u1 + rng.normal(0, noise_sd, n)
    second = 0.5 + delta + u2 + rng.normal(0, noise_sd, n)
    rows = [{"arm": "a", "replicate": r, "share_synergy": v} for r, v in enumerate(first)]
    rows += [{"arm": "b", "replicate": r, "share_synergy": v} for r, v in enumerate(second)]
    return pd.DataFrame(rows), first, second


def test_paired_and_unpaired_standard_errors_follow_their_closed_forms():
    n, s_u, s_e, delta = 400, 0.1, 0.01, 0.02
    summary, first, second = synthetic_summary(s_u, s_e, delta, n, seed=11, paired=True)
    t = compare_summaries(summary, "a", "b", ["share_synergy"], seed=1).loc["share_synergy"]
    assert t["difference"] == pytest.approx(np.mean(second - first))
    assert t["a"] == pytest.approx(first.mean()) and t["b"] == pytest.approx(second.mean())
    # Var(b - a) = 2 s_e^2 with CRN; 2 (s_u^2 + s_e^2) for independent arms
    assert t["se_paired"] == pytest.approx(math.sqrt(2 * s_e**2 / n), rel=0.15)
    assert t["se_unpaired"] == pytest.approx(math.sqrt(2 * (s_u**2 + s_e**2) / n), rel=0.15)
    assert t["ci_low"] <= delta <= t["ci_high"]
    assert t["ci_high"] - t["ci_low"] == pytest.approx(2 * 1.96 * t["se_paired"], rel=0.15)
    assert t["n_pairs"] == n and t["p_superiority"] > 0.9

    independent, *_ = synthetic_summary(s_u, s_e, delta, n, seed=12, paired=False)
    t2 = compare_summaries(independent, "a", "b", ["share_synergy"], seed=1).loc["share_synergy"]
    assert t2["se_paired"] == pytest.approx(t2["se_unpaired"], rel=0.15)  # pairing buys nothing without CRN
    assert t2["se_paired"] > 5 * t["se_paired"]


def test_comparison_table_columns_and_undefined_values():
    summary = pd.DataFrame(
        {
            "arm": ["v"] * 4 + ["m"] * 4,
            "replicate": [0, 1, 2, 3] * 2,
            "mean_trust": [0.5, 0.6, np.nan, 0.7, 0.4, np.nan, 0.3, 0.6],
        }
    )
    t = compare_summaries(summary, "v", "m", ["mean_trust"], seed=0)
    assert list(t.columns) == [
        "description",
        "v",
        "v_ci_low",
        "v_ci_high",
        "v_n",
        "m",
        "m_ci_low",
        "m_ci_high",
        "m_n",
        "difference",
        "ci_low",
        "ci_high",
        "effect_size",
        "p_superiority",
        "n_pairs",
        "se_paired",
        "se_unpaired",
    ]
    r = t.loc["mean_trust"]
    assert r["v_n"] == 3 and r["m_n"] == 3 and r["n_pairs"] == 2  # replicates 0 and 3 pair up
    assert r["difference"] == pytest.approx(((0.4 - 0.5) + (0.6 - 0.7)) / 2)
    assert r["v"] == pytest.approx(0.6)


# -- Kaplan–Meier -------------------------------------------------------------------------------------------------


def test_kaplan_meier_without_censoring_is_the_empirical_distribution():
    t = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    grid, s = stats.kaplan_meier(t, np.ones(8, bool), horizon=10)
    assert np.allclose(1 - s, [(t <= g).mean() for g in grid])


def test_kaplan_meier_textbook_example():
    # times 1, 2+, 3, 3, 4+, 5 (+ censored): S(1) = 5/6, S(3) = 5/6 * 2/4, S(5) = 5/6 * 2/4 * 0/1
    time = np.array([1, 2, 3, 3, 4, 5])
    event = np.array([1, 0, 1, 1, 0, 1], bool)
    _, s = stats.kaplan_meier(time, event, horizon=6)
    expected = [1, 5 / 6, 5 / 6, 5 / 12, 5 / 12, 0, 0]
    assert np.allclose(s, expected)


def aalen_johansen(time, cause, horizon):
    """Cumulative incidence of cause 1 with competing cause 2 and censoring (0): the textbook estimator."""
    cif, surv, out = 0.0, 1.0, []
    for t in range(horizon + 1):
        at_risk = np.sum(time >= t)
        d1 = np.sum((time == t) & (cause == 1))
        d_any = np.sum((time == t) & (cause > 0))
        if at_risk:
            cif += surv * d1 / at_risk
            surv *= 1 - d_any / at_risk
        out.append(cif)
    return np.array(out)


def competing(n, horizon, seed, staggered=True):
    rng = np.random.default_rng(seed)
    followup = horizon - rng.integers(0, 40, n) if staggered else np.full(n, horizon)
    t1 = rng.geometric(0.04, n)  # synergy
    t2 = rng.geometric(0.02, n)  # dissolution (competing: no synergy after it; a tie goes to synergy)
    first1 = t1 <= t2
    event_time = np.where(first1, t1, t2)
    censored = event_time > followup
    time = np.where(censored, followup, event_time)
    cause = np.where(censored, 0, np.where(first1, 1, 2))
    synergy = cause == 1
    # as collaboration_events/event_curves: dissolved units stay at risk until their follow-up ends
    our_time = np.where(synergy, time, followup)
    return time, cause, synergy, our_time


def test_competing_event_kept_at_risk_without_censoring_is_the_share_that_got_there():
    horizon = 60
    time, cause, synergy, our_time = competing(500, horizon, seed=4, staggered=False)
    c = stats.cumulative_incidence(our_time, synergy, np.zeros(500, int), 1, horizon, np.ones((1, 1)))
    assert np.allclose(c.share, [np.mean(synergy & (time <= t)) for t in range(horizon + 1)])
    assert np.allclose(c.share, aalen_johansen(time, cause, horizon))


def test_competing_event_kept_at_risk_estimates_the_cumulative_incidence():
    # staggered entry: follow-up = horizon - formed (administrative censoring, known for everyone)
    n, horizon = 20_000, 60
    time, cause, synergy, our_time = competing(n, horizon, seed=5)
    c = stats.cumulative_incidence(our_time, synergy, np.zeros(n, int), 1, horizon, np.ones((1, 1)))
    k = np.arange(horizon + 1)
    q = (1 - 0.04) * (1 - 0.02)
    truth = 0.04 * (1 - q**k) / (1 - q)  # P(T1 <= t, T1 <= T2) for geometric times
    assert np.max(np.abs(c.share - truth)) < 0.012
    assert np.max(np.abs(c.share - aalen_johansen(time, cause, horizon))) < 0.01
    # treating dissolution as censoring would overstate it (the naive 1 - KM)
    _, naive = stats.kaplan_meier(time, synergy, horizon)
    assert (1 - naive)[-1] > truth[-1] + 0.05


def test_cluster_bootstrap_weights_pair_and_reproduce():
    rng = np.random.default_rng(0)
    time = rng.integers(1, 30, 120)
    event = rng.random(120) < 0.7
    cluster = np.repeat(np.arange(12), 10)
    ones = np.ones((3, 12))
    c = stats.cumulative_incidence(time, event, cluster, 12, 40, ones)
    _, s = stats.kaplan_meier(time, event, 40)
    assert np.allclose(c.share, 1 - s) and np.allclose(c.boot, c.share)  # weights 1 = the data itself
    w = stats.replicate_weights(12, 500, rng)
    assert np.all(w.sum(axis=1) == 12)
    c = stats.cumulative_incidence(time, event, cluster, 12, 40, w)
    lo, hi = c.band()
    assert np.all(lo <= c.share + 1e-12) and np.all(c.share <= hi + 1e-12)
    # a resample that draws replicate 0 twelve times is the KM of replicate 0 alone
    only0 = np.zeros((1, 12))
    only0[0, 0] = 12
    c0 = stats.cumulative_incidence(time, event, cluster, 12, 40, only0)
    _, s0 = stats.kaplan_meier(time[:10], event[:10], 40)
    assert np.allclose(c0.boot[0], 1 - s0)
    assert stats.first_crossing(np.arange(5), np.array([0, 0.2, 0.5, 0.7, 1.0])) == 2.0
    assert math.isnan(stats.first_crossing(np.arange(3), np.array([0, 0.1, 0.2])))
