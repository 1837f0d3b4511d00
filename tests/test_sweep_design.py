"""Sweep designs: sizes, bounds, types, order and reproducibility from the seed; the sweep block's schema."""

import numpy as np
import pytest

from collabsim.design import build_design, design_size
from collabsim.errors import CollabsimInputError
from collabsim.scenario import Scenario
from collabsim.sweeps import SweepPlan

RANGES = {
    "population.n_orgs": {"low": 10, "high": 40},  # integer key
    "population.region_km": {"low": 5, "high": 500, "scale": "log"},  # number, log-uniform
    "partnering.ambition": {"low": 0.2, "high": 0.8},  # number, linear
    "partnering.regime": ["voluntary", "mandated"],  # a choice
}


def sampled(design: str, samples: int, **extra) -> Scenario:
    return Scenario.from_dict(
        {"sweep": {"design": design, "samples": samples, "parameters": RANGES, "seed": 7, **extra}}
    )


def test_grid_is_the_full_product_in_declared_order():
    sc = Scenario.from_dict(
        {
            "sweep": {
                "parameters": {
                    "population.size_median_staff": [200, 1500, 10000],
                    "population.proximity_scale_km": {"low": 5, "high": 100, "num": 4},
                    "partnering.regime": ["voluntary", "mandated"],
                },
                "replications": 3,
            }
        }
    )
    d = build_design(sc)
    assert len(d) == design_size(sc.sweep_spec) == 3 * 4 * 2
    assert d.keys == ("population.size_median_staff", "population.proximity_scale_km", "partnering.regime")
    # the first parameter varies slowest, the last fastest
    assert [p["partnering.regime"] for p in d.points[:2]] == ["voluntary", "mandated"]
    assert d.points[0]["population.size_median_staff"] == d.points[7]["population.size_median_staff"] == 200.0
    assert d.points[8]["population.size_median_staff"] == 1500.0
    scales = sorted({p["population.proximity_scale_km"] for p in d.points})
    assert scales == pytest.approx([5, 5 + 95 / 3, 5 + 190 / 3, 100]) and scales[0] == 5.0 and scales[-1] == 100.0
    # values are of the key's type: floats for number keys, even when written as integers
    assert all(isinstance(p["population.size_median_staff"], float) for p in d.points)
    assert SweepPlan(sc).n_runs == 24 * 3


def test_grid_integer_and_log_ranges():
    sc = Scenario.from_dict(
        {
            "sweep": {
                "parameters": {
                    "population.n_orgs": {"low": 10, "high": 40, "num": 4},
                    "population.region_km": {"low": 1, "high": 1000, "scale": "log", "num": 4},
                }
            }
        }
    )
    d = build_design(sc)
    assert sorted({p["population.n_orgs"] for p in d.points}) == [10, 20, 30, 40]
    assert all(type(p["population.n_orgs"]) is int for p in d.points)
    assert sorted({p["population.region_km"] for p in d.points}) == pytest.approx([1, 10, 100, 1000])


def test_grid_integer_range_that_repeats_is_refused():
    sc = Scenario.from_dict({"sweep": {"parameters": {"population.n_orgs": {"low": 10, "high": 12, "num": 5}}}})
    with pytest.raises(CollabsimInputError, match="repeat once rounded to integers"):
        build_design(sc)


def test_no_sweep_block_is_one_point():
    d = build_design(Scenario())
    assert len(d) == 1 and d.points == ({},)
    plan = SweepPlan(Scenario())
    assert plan.n_runs == 1 and plan.arm_names == ("base",)


@pytest.mark.parametrize(
    ("design", "samples", "extra", "size"),
    [
        ("lhs", 16, {}, 16),
        ("sobol", 8, {}, 8 * (4 + 2)),
        ("sobol", 8, {"second_order": True}, 8 * (2 * 4 + 2)),
        ("morris", 5, {}, 5 * (4 + 1)),
        ("morris", 3, {"levels": 6}, 3 * (4 + 1)),
    ],
)
def test_sampled_design_sizes_and_bounds(design, samples, extra, size):
    sc = sampled(design, samples, **extra)
    d = build_design(sc)
    assert len(d) == design_size(sc.sweep_spec) == size
    assert d.sample is not None and d.sample.shape == (size, 4)
    assert d.problem["names"] == list(RANGES)
    n_orgs = [p["population.n_orgs"] for p in d.points]
    assert all(type(v) is int and 10 <= v <= 40 for v in n_orgs)
    assert all(5 <= p["population.region_km"] <= 500 for p in d.points)
    assert all(0.2 <= p["partnering.ambition"] <= 0.8 for p in d.points)
    assert {p["partnering.regime"] for p in d.points} <= {"voluntary", "mandated"}
    for point in d.points[:5]:  # every point is a valid scenario
        Scenario().with_overrides(point)


def test_lhs_is_a_latin_hypercube():
    d = build_design(sampled("lhs", 20))
    for j, p in enumerate(d.parameters):
        lo, hi = p.bounds()
        strata = np.floor((d.sample[:, j] - lo) / (hi - lo) * 20).astype(int)
        assert sorted(strata) == list(range(20)), p.key  # one point in each of the 20 strata
    # integers spread over the whole range, and both choices appear
    assert min(x["population.n_orgs"] for x in d.points) <= 12
    assert max(x["population.n_orgs"] for x in d.points) >= 38
    assert {x["partnering.regime"] for x in d.points} == {"voluntary", "mandated"}


def test_log_scale_samples_log_uniformly():
    d = build_design(sampled("lhs", 64))
    logs = np.log10([p["population.region_km"] for p in d.points])
    # log10(5) .. log10(500) = 0.7 .. 2.7: a log-uniform sample has about half its points below 1.7 (50 km)
    assert 0.35 < np.mean(logs < 1.7) < 0.65


@pytest.mark.parametrize("design", ["lhs", "sobol", "morris"])
def test_sampled_designs_are_reproducible_from_the_seed(design):
    a, b = build_design(sampled(design, 8)), build_design(sampled(design, 8))
    assert a.points == b.points
    assert np.array_equal(a.sample, b.sample)
    other = build_design(sampled(design, 8, seed=8))
    assert other.points != a.points
    # without sweep.seed the scenario's seed is used
    base = Scenario.from_dict({"seed": 7, "sweep": {"design": design, "samples": 8, "parameters": RANGES}})
    assert build_design(base).points == a.points and build_design(base).seed == 7


def test_sobol_follows_saltelli():
    d = build_design(sampled("sobol", 4))
    k = len(RANGES)
    a_rows, b_rows = d.sample[0 :: k + 2], d.sample[k + 1 :: k + 2]
    for i in range(k):  # the A_B^i matrices: A with column i taken from B
        ab = d.sample[1 + i :: k + 2]
        expected = a_rows.copy()
        expected[:, i] = b_rows[:, i]
        assert np.array_equal(ab, expected)


def test_morris_trajectories_move_one_factor_at_a_time():
    d = build_design(sampled("morris", 4))
    k = len(RANGES)
    for t in range(4):
        traj = d.sample[t * (k + 1) : (t + 1) * (k + 1)]
        changed = (np.diff(traj, axis=0) != 0).sum(axis=1)
        assert (changed == 1).all()


def test_design_to_dict_is_json_ready():
    import json

    d = build_design(sampled("sobol", 4))
    data = json.loads(json.dumps(d.to_dict()))
    assert data["design"] == "sobol" and data["n_points"] == len(d)
    assert data["salib_problem"]["names"] == list(RANGES)
    assert data["points"][3] == d.points[3]


def test_run_ids_enumerate_points_arms_replicates():
    sc = Scenario.from_dict(
        {
            "sweep": {"parameters": {"population.n_orgs": [10, 20, 30]}, "replications": 4},
            "arms": {"voluntary": {}, "mandated": {"partnering.regime": "mandated"}},
        }
    )
    plan = SweepPlan(sc)
    assert plan.n_runs == 3 * 2 * 4
    seen = set()
    for spec in plan.runs():
        assert plan.run_id(spec.arm, spec.point, spec.replicate) == spec.run_id
        assert spec.key == (spec.replicate,)
        seen.add((spec.arm, spec.point, spec.replicate))
    assert len(seen) == plan.n_runs
    assert plan.run(5) == plan.run(5) and plan.run(5).arm == "mandated" and plan.run(5).point == 0
    mand = plan.scenario_for("mandated", 2)
    assert mand.partnering.regime == "mandated" and mand.population.n_orgs == 30
    assert mand.sweep is None and mand.arms is None
    assert (
        plan.scenario_for("voluntary", 0).content_hash()
        == sc.arm("voluntary").with_overrides({"population.n_orgs": 10}).content_hash()
    )
    sizes = [len(plan.batch_runs(b, 5)) for b in range(plan.n_batches(5))]
    assert sum(sizes) == plan.n_runs and max(sizes) == 5


def test_plan_refuses_a_point_that_breaks_a_cross_field_rule():
    sc = Scenario.from_dict(
        {
            "sweep": {"parameters": {"population.n_orgs": [4, 10]}},
            "arms": {"small_groups": {}, "big_groups": {"partnering.group_size": 5}},
        }
    )
    with pytest.raises(CollabsimInputError) as exc:
        SweepPlan(sc).validate()
    assert "partnering.group_size" in exc.value.message and "point 0" in exc.value.message
    assert "big_groups" in exc.value.message


def test_sweep_block_is_normalised_and_hashed():
    short = Scenario.from_dict({"sweep": {"parameters": {"population.n_orgs": [10, 20]}}})
    long = Scenario.from_dict(
        {"sweep": {"design": "grid", "replications": 1, "parameters": {"population.n_orgs": {"values": [10, 20]}}}}
    )
    assert short.sweep == long.sweep and short.content_hash() == long.content_hash()
    assert short.content_hash() != Scenario().content_hash()
    more = short.with_overrides({"sweep.replications": 3})
    assert more.sweep["replications"] == 3 and more.content_hash() != short.content_hash()
    # dotted parameter keys work in --set style overrides
    again = short.with_overrides({"sweep.parameters.population.n_orgs.values": [10, 30]})
    assert again.sweep["parameters"]["population.n_orgs"] == {"values": [10, 30]}


@pytest.mark.parametrize(
    ("sweep", "key", "fragment"),
    [
        ({"parameters": {"population.n_org": [10]}}, "sweep.parameters.population.n_org", "did you mean"),
        ({"parameters": {"population.n_orgs": []}}, "sweep.parameters.population.n_orgs.values", "empty range"),
        (
            {"parameters": {"population.n_orgs": {"low": 10, "high": 10, "num": 2}}},
            "sweep.parameters.population.n_orgs.high",
            "empty range",
        ),
        (
            {"parameters": {"population.n_orgs": {"low": 30, "high": 10, "num": 2}}},
            "sweep.parameters.population.n_orgs.low",
            "lower end above upper end",
        ),
        ({"parameters": {"population.n_orgs": [1, 10]}}, "sweep.parameters.population.n_orgs.values[0]", "from 2"),
        ({"replications": 0}, "sweep.replications", "an integer from 1"),
        ({"replication": 2}, "sweep.replication", "did you mean sweep.replications?"),
        ({"design": "sobol", "samples": 12, "parameters": RANGES}, "sweep.samples", "a power of 2"),
        ({"design": "lhs", "parameters": RANGES}, "sweep.samples", "required"),
        ({"samples": 4, "parameters": RANGES}, "sweep.samples", "for lhs, sobol and morris"),
        ({"parameters": {"population.n_orgs": {"low": 10, "high": 20}}}, "sweep.parameters.population.n_orgs.num", ""),
        (
            {"parameters": {"partnering.regime": {"low": 0, "high": 1, "num": 2}}},
            "sweep.parameters.partnering.regime",
            "numeric",
        ),
        ({"parameters": {"seed": [1, 2]}}, "sweep.parameters.seed", "replications"),
        ({"parameters": {"population.n_orgs": 10}}, "sweep.parameters.population.n_orgs", "a list of values"),
        (
            {"parameters": {"population.region_km": {"low": 0, "high": 10, "num": 2, "scale": "log"}}},
            "sweep.parameters.population.region_km.low",
            "> 0",
        ),
    ],
)
def test_bad_sweep_blocks_name_the_key(sweep, key, fragment):
    with pytest.raises(CollabsimInputError) as exc:
        Scenario.from_dict({"sweep": sweep}, "x.yaml")
    err = exc.value
    assert err.key == key, err.message
    assert fragment in err.message
    assert err.message.startswith(f"x.yaml: {key}") and "\n" not in err.message


def test_a_key_is_swept_or_set_by_arms_not_both():
    with pytest.raises(CollabsimInputError, match="also set by arm m"):
        Scenario.from_dict(
            {
                "sweep": {"parameters": {"partnering.regime": ["voluntary", "mandated"]}},
                "arms": {"m": {"partnering.regime": "mandated"}},
            }
        )
    with pytest.raises(CollabsimInputError, match="not a valid arm name"):
        Scenario.from_dict({"arms": {"no/slash": {}}})
