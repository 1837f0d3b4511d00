"""Population draws: common random numbers across runs that differ in one parameter."""

import numpy as np

from collabsim.population import generate_population
from collabsim.rng import Streams
from collabsim.variables import COLUMN


def test_changing_one_trait_leaves_every_other_draw_unchanged(baseline):
    base = baseline.with_overrides({"population.n_orgs": 50})
    other = base.with_overrides({"population.leadership_quality": {"mean": 0.9, "sd": 0.05}})
    zero_sd = base.with_overrides({"population.leadership_quality": {"mean": 0.5, "sd": 0.0}})
    a = generate_population(base, Streams(1, (0,)))
    for changed in (other, zero_sd):
        b = generate_population(changed, Streams(1, (0,)))
        assert not np.array_equal(a.O[COLUMN["leadership_quality"]], b.O[COLUMN["leadership_quality"]])
        same = [c for c in range(a.O.shape[0]) if c != COLUMN["leadership_quality"]]
        np.testing.assert_array_equal(a.O[same], b.O[same])
        for name in ("x", "y", "sector", "staff", "culture", "it_system"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_quantile_coupling_keeps_each_organisations_rank(baseline):
    base = baseline.with_overrides({"population.n_orgs": 50})
    big = base.with_overrides({"population.size_median_staff": 5000.0})
    a, b = (generate_population(sc, Streams(2, (3,))) for sc in (base, big))
    assert (b.staff > a.staff).all()
    np.testing.assert_array_equal(np.argsort(a.staff), np.argsort(b.staff))


def test_beta_quantiles_are_scipys_beta_quantiles():
    """population.beta_quantiles calls the quantile function directly; it must equal scipy.stats.beta.ppf."""
    import scipy.stats  # noqa: PLC0415

    from collabsim.population import beta_quantiles  # noqa: PLC0415

    u = np.random.default_rng(0).random(1000)
    for mean, sd in ((0.5, 0.15), (0.3, 0.1), (0.9, 0.05), (0.02, 0.01)):
        var_max = mean * (1 - mean)
        k = var_max / min(sd * sd, 0.99 * var_max) - 1
        np.testing.assert_array_equal(beta_quantiles(u, mean, sd), scipy.stats.beta.ppf(u, mean * k, (1 - mean) * k))
