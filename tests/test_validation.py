"""Pattern-oriented validation (issue 6, docs/validation.md): the machinery fast, each pattern at reduced
replications slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from collabsim import validation
from collabsim.cli import main
from collabsim.validation import (
    BIMODALITY_THRESHOLD,
    PATTERNS,
    Contrast,
    Pattern,
    bimodality_coefficient,
    dip_pvalue,
    evaluate_pattern,
    paired_ci,
)


def test_bimodality_coefficient_on_constructed_samples():
    rng = np.random.default_rng(1)
    two_modes = np.concatenate([rng.normal(0.1, 0.03, 500), rng.normal(0.9, 0.03, 500)])
    one_mode = rng.normal(0.5, 0.1, 1000)
    uniform = np.linspace(0, 1, 2001)
    assert bimodality_coefficient(two_modes) > 0.8
    assert bimodality_coefficient(one_mode) < BIMODALITY_THRESHOLD - 0.1
    assert bimodality_coefficient(uniform) == pytest.approx(5 / 9, abs=0.01)
    assert math.isnan(bimodality_coefficient(np.ones(10)))


def test_dip_test_rejects_two_modes_wherever_they_lie_and_not_one_mode():
    rng = np.random.default_rng(2)
    one_mode = rng.beta(5, 2, 400)  # skewed, one mode near 0.8
    stalled_or_synergy = np.concatenate([rng.uniform(0.0, 0.1, 60), rng.normal(0.75, 0.04, 340)])
    assert dip_pvalue(one_mode) > 0.05
    assert dip_pvalue(stalled_or_synergy) < 0.001  # modes at 0.05 and 0.75: no band around 0 and 1 is assumed
    assert math.isnan(dip_pvalue(np.array([0.1, 0.9, 0.5])))


def test_bimodality_pattern_needs_both_statistics():
    p = Pattern("b", "b", "s", "baseline", {"a": {}}, statistic="bimodality")
    rng = np.random.default_rng(3)

    def result(groups):
        return evaluate_pattern(p, {"a": [{"collab_behaviour": g} for g in groups]})

    two = [np.concatenate([rng.uniform(0, 0.1, 5), rng.normal(0.75, 0.03, 15)]) for _ in range(10)]
    normal = [rng.normal(0.5, 0.1, 20) for _ in range(10)]
    skewed = [rng.beta(0.3, 3, 40) for _ in range(10)]  # one mode at 0 with a long tail: fools Sarle's coefficient
    assert result(two).passed
    assert not result(normal).passed
    sarle, dip = result(skewed).stats
    assert sarle.passed and not dip.passed  # so the dip test is what rejects it


def test_paired_ci_is_the_t_interval():
    d = np.array([0.1, 0.3, 0.2, 0.4, 0.0])
    m, lo, hi = paired_ci(d)
    ref = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (m, lo, hi) == pytest.approx((d.mean(), *ref))


def _obs(values):
    return [{"x": v, "collab_behaviour": np.array([v])} for v in values]


def test_a_contrast_passes_only_when_its_ci_is_on_the_expected_side():
    p = Pattern("t", "t", "s", "baseline", {"a": {}, "b": {}}, (Contrast("x", "b", "a", +1),))
    up = evaluate_pattern(p, {"a": _obs([0, 0, 0, 0]), "b": _obs([1.0, 1.1, 0.9, 1.0])})
    noisy = evaluate_pattern(p, {"a": _obs([0, 0, 0, 0]), "b": _obs([1.0, -1.0, 0.5, -0.4])})
    down = evaluate_pattern(p, {"a": _obs([0, 0, 0, 0]), "b": _obs([-1.0, -1.1, -0.9, -1.0])})
    assert up.passed and not noisy.passed and not down.passed
    assert up.stats[0].estimate == pytest.approx(1.0)


def test_bimodality_statistic_on_constructed_arms():
    p = Pattern("b", "b", "s", "baseline", {"a": {}}, statistic="bimodality")
    rng = np.random.default_rng(2)
    split = [{"collab_behaviour": np.r_[rng.uniform(0, 0.1, 5), rng.uniform(0.9, 1, 5)]} for _ in range(10)]
    middle = [{"collab_behaviour": rng.uniform(0.4, 0.7, 10)} for _ in range(10)]
    assert evaluate_pattern(p, {"a": split}).passed
    assert not evaluate_pattern(p, {"a": middle}).passed


def test_patterns_are_named_sourced_and_build_valid_scenarios():
    names = [p.name for p in PATTERNS]
    assert len(names) == len(set(names)) == 9
    for p in PATTERNS:
        assert p.source.startswith("001") and p.role in ("check", "calibration")
        assert p.statistic == "bimodality" or p.contrasts
        for c in p.contrasts:
            assert c.treatment in p.arms and c.control in p.arms and c.expected in (1, -1)
        for arm in p.arms:
            validation.pattern_scenario(p, arm)


def test_cli_validate_patterns_writes_a_report(tmp_path):
    code = main(["validate", "--patterns", "--replications", "2", "--out", str(tmp_path), "--quiet"])
    text = (tmp_path / "validation.md").read_text()
    assert code == (0 if "Overall: **PASS**" in text else 1)  # the exit status says what the report says
    for p in PATTERNS:
        assert p.name in text
    assert (tmp_path / "validation_patterns.csv").exists()
    # the calibration target is re-evaluated and reported apart from the checks
    assert "## Calibration target" in text and "| C1 |" in text


def test_cli_validate_bad_input_exits_2(capsys):
    assert main(["validate", "--replications", "0"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in PATTERNS])
def test_pattern_holds(name):
    pattern = next(p for p in PATTERNS if p.name == name)
    # 10 replicates for a contrast; the distributional test keeps its own (docs/decisions.md 47)
    replications = None if pattern.statistic == "bimodality" else 10
    (result,) = validation.run_patterns([name], replications=replications, workers=2)
    assert result.passed, [(s.label, s.estimate, s.lo, s.hi) for s in result.stats]


def test_one_replicate_gives_no_interval_so_nothing_passes_on_it():
    m, lo, hi = validation.paired_ci(np.array([0.3]))
    assert m == 0.3 and math.isnan(lo) and math.isnan(hi)
    assert not validation.on_side(lo, hi, +1)
    assert all(math.isnan(x) for x in validation.replicate_bootstrap_ci([np.array([1.0, 2.0])], np.mean))


def test_cli_validate_refuses_bad_output_and_one_replicate_before_running(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["validate", "--rules", "--quiet", "--out", str(a_file)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["validate", "--patterns", "--replications", "1", "--out", str(tmp_path / "out")]) == 2
    assert "--replications" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_switched_off_row_is_checked_at_a_small_weight_and_reported_as_switched_off():
    """isolated_table checks a weight-0 row at OFF_ROW_WEIGHT (its sign as written); the rules table says so."""
    from collabsim.rules import load_rule_table  # noqa: PLC0415

    full = load_rule_table()
    rid = full.rows[0].id
    table = full.with_overrides([rid], {})
    assert next(r for r in table.rows if r.id == rid).weight == 0
    isolated = validation.isolated_table(table, rid)
    assert next(r for r in isolated.rows if r.id == rid).weight == validation.OFF_ROW_WEIGHT
    local = validation.local_sign_checks(table, ids=[rid])
    rows = {r[0]: r for r in validation.rules_table_rows(table, local, None)}
    assert rows[rid][2].endswith(f"(row switched off: checked at weight {validation.OFF_ROW_WEIGHT:g})")
    other = full.rows[1].id
    plain = {r[0]: r for r in validation.rules_table_rows(full, validation.local_sign_checks(full, ids=[other]), None)}
    assert "switched off" not in plain[other][2]


def _same_observation(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)  # NaN equals NaN here


def test_observe_replicates_joined_equal_each_run_observed_alone(monkeypatch):
    """Validation advances its replicates together (decision 56); every observation, the sampled run-means and the
    end-of-run behaviour of each collaboration included, is the one the run gives alone, also across groups."""
    sc = validation.pattern_scenario(next(p for p in PATTERNS if p.name == "turnover_sets_trust_back"), "turnover")
    keys = [(0,), (1,), (5,)]
    alone = [validation.observe(sc, 3, key) for key in keys]
    assert len({o["run:trust"] for o in alone}) == 3  # three different runs
    for a, b in zip(alone, validation.observe_replicates(sc, 3, keys), strict=True):
        _same_observation(a, b)
    calls = []
    real = validation._observe_together
    monkeypatch.setattr(validation, "joined_replicates", lambda scenario: 2)
    monkeypatch.setattr(validation, "_observe_together", lambda engines: calls.append(len(engines)) or real(engines))
    for a, b in zip(alone, validation.observe_replicates(sc, 3, keys), strict=True):
        _same_observation(a, b)
    assert calls == [2, 1]


def test_patterns_on_worker_processes_equal_one_process_in_task_order(monkeypatch):
    """Worker processes (forkserver, as sweeps) return the runs in task order although they finish in any order,
    also after this process has run numba's thread pool (forking it then is unsafe), and an arm's replicates split
    into several tasks give what one task gives."""
    from numba.np.ufunc import parallel  # noqa: PLC0415

    from collabsim import probe  # noqa: PLC0415

    probe.stream_loop(np.zeros(1000), np.zeros(1000))  # numba's thread pool now runs in this process
    assert parallel._is_initialized
    names = ["mandated_lower_initial_trust", "scale_complexity"]
    one = validation.run_patterns(names, replications=3, workers=1)  # each arm one task of 3 runs
    monkeypatch.setattr(validation, "joined_replicates", lambda scenario: 2)  # each arm two tasks: 2 runs, 1 run
    two = validation.run_patterns(names, replications=3, workers=2)
    for a, b in zip(one, two, strict=True):
        assert a.arm_means == b.arm_means
        assert [(s.estimate, s.lo, s.hi) for s in a.stats] == [(s.estimate, s.lo, s.hi) for s in b.stats]
