"""`collabsim sensitivity`: factor choice, SALib on tiny designs (morris and sobol), the paired gap, and refusals."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from collabsim import load_scenario
from collabsim.cli import main
from collabsim.design import build_design, design_size
from collabsim.errors import CollabsimInputError
from collabsim.rules import load_rule_table
from collabsim.sensitivity import (
    SCENARIO_PARAMETERS,
    _outputs,
    default_factors,
    parse_parameters,
    rule_family,
    sensitivity_scenario,
)

TINY = ["--samples", "2", "--replications", "2", "--set", "horizon_months=24", "--executor", "serial", "--quiet"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("collabsim: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


# ---- factors -------------------------------------------------------------------------------------------------------


def test_default_factors_cover_every_active_rule_once_grouped_by_mechanism():
    sc = load_scenario("mandated_vs_voluntary")
    factors = default_factors(sc)
    rule_keys = [k for f in factors if f.name.startswith("rules:") for k in f.ranges]
    active = [r for r in load_rule_table().rows if r.weight > 0]
    assert sorted(rule_keys) == sorted(f"rules.weights.{r.id}" for r in active)
    by_id = {r.id: r for r in active}
    for f in factors:
        for key, rng in f.ranges.items():
            if f.name.startswith("rules:"):
                assert f.name == rule_family(by_id[key.removeprefix("rules.weights.")].mechanism)
                assert (rng["low"], rng["high"], rng["scale"]) == (0.5, 2.0, "log")
    trust = next(f for f in factors if f.name == "rules:trust")
    assert trust.n_keys == sum(r.mechanism == "trust" for r in active)
    # scenario parameters: one factor each, centred on the scenario's value, within [0, 1]
    ambition = next(f for f in factors if f.name == "partnering.ambition")
    assert ambition.ranges == {"partnering.ambition": {"low": 0.25, "high": 0.75}}
    assert {f.name for f in factors} >= set(SCENARIO_PARAMETERS)


def test_factors_respect_the_scenario_and_its_arms():
    sc = load_scenario("mandated_vs_voluntary").with_overrides(
        {
            "rules.weights": {"gl-trust-risk-loop": 2.0},
            "rules.disable": ["rf-mou-trust-risk"],
            "arms.mandated.partnering.ambition": 0.7,
            "dynamics.baseline_trust": 0.9,
        }
    )
    factors = {f.name: f for f in default_factors(sc)}
    keys = {k: rng for f in factors.values() for k, rng in f.ranges.items()}
    assert "partnering.ambition" not in keys  # set by an arm: not a factor
    assert not any("rf-mou-trust-risk" in k for k in keys)  # disabled: no weight to vary
    loop = [k for k in keys if k.startswith("rules.weights.gl-trust-risk-loop")]
    assert loop and all((keys[k]["low"], keys[k]["high"]) == (1.0, 4.0) for k in loop)  # around its multiplier 2
    assert keys["dynamics.baseline_trust"] == {"low": 0.65, "high": 1.0}  # clipped to [0, 1]


def test_parse_parameters():
    sc = load_scenario("mandated_vs_voluntary")
    names = [f.name for f in parse_parameters(sc, ["rules:trust", "partnering.ambition", "population.n_orgs=10:40"])]
    assert names == ["rules:trust", "partnering.ambition", "population.n_orgs"]
    assert all(f.name.startswith("rules:") for f in parse_parameters(sc, ["rules"]))
    assert [f.name for f in parse_parameters(sc, ["scenario"])] == list(SCENARIO_PARAMETERS)
    log = parse_parameters(sc, ["rules.weights.gl-trust-risk-loop=0.5:2:log"])[0]
    assert log.ranges == {"rules.weights.gl-trust-risk-loop": {"low": 0.5, "high": 2.0, "scale": "log"}}
    with pytest.raises(CollabsimInputError) as info:
        parse_parameters(sc, ["rules:trsut"])
    assert "--parameters" in info.value.message and "did you mean rules:trust?" in info.value.message
    with pytest.raises(CollabsimInputError):
        parse_parameters(sc, ["partnering.ambition=high"])


def test_sensitivity_design_uses_salib_groups():
    sc = load_scenario("mandated_vs_voluntary")
    factors = parse_parameters(sc, ["rules:trust", "rules:faith", "partnering.ambition"])
    s = sensitivity_scenario(sc, "morris", factors, samples=3, replications=1)
    design = build_design(s)
    assert len(design) == design_size(s.sweep_spec) == 3 * (3 + 1)  # trajectories x (groups + 1), not keys + 1
    assert sorted(set(design.problem["groups"])) == ["partnering.ambition", "rules:faith", "rules:trust"]
    assert set(s.arms) == {"voluntary", "mandated"}
    sobol = sensitivity_scenario(sc, "sobol", factors, samples=4, replications=1)
    assert len(build_design(sobol)) == 4 * (3 + 2)
    with pytest.raises(CollabsimInputError):
        sensitivity_scenario(sc, "fast", factors)


def test_groups_are_checked_by_the_sweep_schema():
    base = load_scenario("baseline")
    block = {"design": "morris", "samples": 2, "parameters": {"partnering.ambition": {"low": 0.2, "high": 0.8}}}
    with pytest.raises(CollabsimInputError) as info:
        base.with_overrides({"sweep": {**block, "groups": {"partnering.ambitio": "g"}}})
    assert "sweep.groups" in info.value.message and "not a swept parameter" in info.value.message
    with pytest.raises(CollabsimInputError) as info:
        base.with_overrides({"sweep": {"design": "grid", "parameters": {"partnering.ambition": [0.2]}, "groups": {}}})
    assert "groups are for sobol and morris" in info.value.message


def test_gap_is_second_arm_minus_first_paired_by_replicate():
    rows = []
    for point in range(2):
        for rep in range(3):
            base = 0.1 * rep + point
            rows += [
                {"point": point, "replicate": rep, "arm": "voluntary", "share_synergy": base},
                {"point": point, "replicate": rep, "arm": "mandated", "share_synergy": base + 0.5 + 0.01 * rep},
            ]
    results = SimpleNamespace(summary=pd.DataFrame(rows), manifest={"n_points": 2}, arms=["voluntary", "mandated"])
    outs = {name: y for name, _, _, y in _outputs(results, ["share_synergy"])}
    assert set(outs) == {
        "share_synergy [voluntary]",
        "share_synergy [mandated]",
        "share_synergy gap [mandated - voluntary]",
    }
    np.testing.assert_allclose(outs["share_synergy gap [mandated - voluntary]"], [0.51, 0.51])
    np.testing.assert_allclose(outs["share_synergy [voluntary]"], [0.1, 1.1])


# ---- SALib on tiny designs ------------------------------------------------------------------------------------------


def test_morris_on_a_tiny_design_ranks_and_writes(capsys, tmp_path: Path):
    out = tmp_path / "m"
    code, _, err = run_cli(
        capsys,
        "sensitivity",
        "mandated_vs_voluntary",
        "--method",
        "morris",
        "--parameters",
        "dynamics.synergy_threshold_faith=0.05:0.95",
        "--parameters",
        "partnering.leave_faith_threshold=0.1:0.4",  # mandated members cannot leave: no effect in that arm
        "--parameters",
        "rules:trust",
        "--out",
        str(out),
        *TINY,
    )
    assert code == 0, err
    table = pd.read_csv(out / "sensitivity.csv")
    assert (out / "sensitivity.png").stat().st_size > 0
    assert set(table["output"]) == {
        "share_synergy [voluntary]",
        "share_synergy [mandated]",
        "share_synergy gap [mandated - voluntary]",
        "task_achievement [voluntary]",
        "task_achievement [mandated]",
        "task_achievement gap [mandated - voluntary]",
    }
    assert np.isfinite(table[["mu_star", "mu_star_conf"]].to_numpy()).all()
    for _, df in table.groupby("output"):
        assert list(df["rank"]) == [1, 2, 3] and df["mu_star"].is_monotonic_decreasing
    for output in ("share_synergy [mandated]", "task_achievement [mandated]"):
        leave = table[(table["output"] == output) & (table["factor"] == "partnering.leave_faith_threshold")].iloc[0]
        assert leave["mu_star"] == 0.0 and leave["mu_star_conf"] == 0.0  # ranked last, or tied last
    synergy = table[table["output"] == "share_synergy [voluntary]"]
    # the faith threshold gates synergy directly, so it must move the share reaching it
    assert synergy.set_index("factor").loc["dynamics.synergy_threshold_faith", "mu_star"] > 0
    # running the same command again resumes (nothing to run) and gives the same table
    code, _, err = run_cli(
        capsys,
        "sensitivity",
        "mandated_vs_voluntary",
        "--parameters",
        "dynamics.synergy_threshold_faith=0.05:0.95",
        "--parameters",
        "partnering.leave_faith_threshold=0.1:0.4",
        "--parameters",
        "rules:trust",
        "--out",
        str(out),
        *TINY,
    )
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(out / "sensitivity.csv"), table)


def test_sobol_on_a_tiny_design(capsys, tmp_path: Path):
    out = tmp_path / "s"
    code, stdout, err = run_cli(
        capsys,
        "sensitivity",
        "mandated_vs_voluntary",
        "--method",
        "sobol",
        "--parameters",
        "dynamics.synergy_threshold_faith=0.05:0.95",
        "--parameters",
        "rules:trust",
        "--out",
        str(out),
        *[a for a in TINY if a != "--quiet"],
    )
    assert code == 0, err
    table = pd.read_csv(out / "sensitivity.csv")
    assert {"ST", "ST_conf", "S1", "S1_conf"} <= set(table.columns)
    assert np.isfinite(table["ST"]).all()
    assert "share_synergy gap [mandated - voluntary]: ST" in stdout


# ---- refusals -------------------------------------------------------------------------------------------------------


def test_bad_method_exits_2_naming_the_option(capsys):
    code, _, err = run_cli(capsys, "sensitivity", "mandated_vs_voluntary", "--method", "fast")
    assert code == 2
    assert "--method" in err and "morris" in err and "sobol" in err


def test_bad_parameters_exit_2_naming_the_option(capsys, tmp_path: Path):
    code, _, err = run_cli(
        capsys, "sensitivity", "mandated_vs_voluntary", "--parameters", "rules:nothing", "--out", str(tmp_path / "x")
    )
    assert code == 2
    one_error_line(err, "--parameters", "rules:nothing", "not a factor")
    code, _, err = run_cli(
        capsys, "sensitivity", "mandated_vs_voluntary", "--parameters", "population.n_orgs=1:5", *TINY
    )
    assert code == 2
    one_error_line(err, "population.n_orgs")
    code, _, err = run_cli(capsys, "sensitivity", "mandated_vs_voluntary", "--samples", "0")
    assert code == 2
    one_error_line(err, "--samples")


@pytest.mark.parametrize(
    ("argv", "option", "allowed"),
    [
        (["--samples", "1"], "--samples = 1", ">= 2 (trajectories)"),
        (["--samples", "3", "--method", "sobol"], "--samples = 3", "a power of 2"),
        (["--samples", "20000000"], "--samples = 20000000", "10000000"),
        (["--replications", "0"], "--replications = 0", ">= 1"),
        (["--replications", "2000000"], "--replications = 2000000", "1000000"),
    ],
)
def test_a_bad_sample_or_replication_count_names_the_option_not_the_file(capsys, tmp_path: Path, argv, option, allowed):
    """The user typed the option: the error names it, not the scenario's sweep block."""
    out = tmp_path / "x"
    code, _, err = run_cli(capsys, "sensitivity", "mandated_vs_voluntary", *argv, "--out", str(out))
    assert code == 2
    one_error_line(err, option, allowed)
    assert "sweep." not in err and ".yaml" not in err
    assert not out.exists()


def test_one_replicate_per_point_is_allowed():
    """Sensitivity indices use each point's mean, so --replications 1 is a valid (noisier) design, unlike compare."""
    sc = load_scenario("mandated_vs_voluntary")
    s = sensitivity_scenario(sc, "morris", parse_parameters(sc, ["partnering.ambition"]), samples=2, replications=1)
    assert s.sweep_spec.replications == 1


def test_a_scenarios_own_morris_design_is_used():
    sc = load_scenario("mandated_vs_voluntary").with_overrides(
        {
            "sweep": {
                "design": "morris",
                "samples": 4,
                "replications": 3,
                "parameters": {
                    "partnering.funding": {"low": 0.1, "high": 0.9},
                    "partnering.ambition": {"low": 0.1, "high": 0.9},
                },
                "groups": {"partnering.funding": "design", "partnering.ambition": "design"},
            }
        }
    )
    s = sensitivity_scenario(sc, "morris")
    spec = s.sweep_spec
    assert set(spec.parameters) == {"partnering.funding", "partnering.ambition"}
    assert (spec.samples, spec.replications, spec.groups["partnering.ambition"]) == (4, 3, "design")
    assert sensitivity_scenario(sc, "sobol").sweep_spec.samples == 64  # another method: its default sample
