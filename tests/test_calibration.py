"""The calibration procedure (docs/calibration.md): balance, one rate, and the shipped calibration's provenance."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from collabsim import validation
from collabsim.engine import aggregate_needs, make_plan
from collabsim.errors import CollabsimInputError
from collabsim.rules import (
    ONCE_VARIABLES,
    STAGES,
    RuleTable,
    calibrate,
    compile_rules,
    load_calibration,
    load_prior_table,
    load_rule_table,
    neutral_hazard,
    parse_rows,
    relaxation_pairs,
)
from collabsim.variables import COLUMN

ROOT = Path(__file__).resolve().parents[1]


def sums(table, exclude):
    up, down = {}, {}
    for r in table.rows:
        if r.id not in exclude:
            side = up if r.sign > 0 else down
            side[r.mechanism] = side.get(r.mechanism, 0.0) + neutral_hazard(r)
    return up, down


def test_balance_gives_no_drift_at_a_neutral_context_and_keeps_each_total_rate():
    """Exact in maintenance, where every row acts (docs/calibration.md gives the earlier stages' resting points)."""
    prior = load_prior_table()
    assert all("maintenance" in r.stages for r in prior.rows)
    pairs = relaxation_pairs(prior)
    balanced = calibrate(prior, rate=1.0)
    (u0, d0), (u1, d1) = sums(prior, pairs), sums(balanced, pairs)
    both = [m for m in u0 if m in d0]
    assert len(both) > 30  # most variables are moved both ways
    for m in both:
        assert u1[m] == pytest.approx(d1[m], rel=1e-12), m
        assert u1[m] + d1[m] == pytest.approx(u0[m] + d0[m], rel=1e-12), m
    for m in set(u0) ^ set(d0):  # moved one way only: nothing to balance
        assert (u1.get(m), d1.get(m)) == pytest.approx((u0.get(m), d0.get(m))), m


def test_relaxation_pairs_are_matched_model_rows_or_declared_and_stay_matched():
    prior = load_prior_table()
    pairs = relaxation_pairs(prior)
    assert {"model-care-quality-toward-baseline", "model-care-quality-decay"} <= pairs
    assert "model-behaviour-decays-below-threshold" not in pairs  # one-sided closure: balanced like a theory row
    declared = {r.id for r in prior.rows if r.pairs_with} | {r.pairs_with for r in prior.rows if r.pairs_with}
    assert declared == {"gl-daily-relationship-maintenance@trust", "fn-proximity-communication-trust@trust"}
    by_id = {r.id: r for r in calibrate(prior, rate=3.0).rows}
    for rid in pairs:
        r = by_id[rid]
        assert r.link == "model" or rid in declared
        assert r.weight == pytest.approx(3.0 * r.prior_weight)  # only the rate touches them


PAIR = ("gl-daily-relationship-maintenance@trust", "fn-proximity-communication-trust@trust")


def test_communication_raises_trust_below_conflict_one_half_and_lowers_it_above_at_any_trust():
    """decisions.md 45: with only the pair moving trust, one pass of the engine's own kernel over a fixture
    collaboration moves trust up when conflict < 1/2 and down when conflict > 1/2, whatever trust is."""
    table = load_rule_table()
    gate, reversal = (next(r for r in table.rows if r.id == rid) for rid in PAIR)
    assert gate.weight == reversal.weight and gate.sign == -reversal.sign == 1  # the balance step left it alone
    only_pair = RuleTable(
        tuple(replace(r, weight=0.0) if r.mechanism == "trust" and r.id not in PAIR else r for r in table.rows)
    )
    compiled = compile_rules(only_pair)
    plan, need = make_plan(compiled), aggregate_needs(compiled)
    engine = validation._fixture_engine()
    st = engine.state
    snapshot = tuple(a.copy() for a in (st.S, st.O, st.K, st.M, st.D))
    for trust in (0.2, 0.5, 0.8):
        for conflict in (0.1, 0.3, 0.45, 0.55, 0.7, 0.9):
            st.S[:], st.O[:], st.K[:], st.M[:], st.D[:] = (a.copy() for a in snapshot)
            st.col_stage[:] = STAGES.index("maintenance")
            for name, value in (("interpersonal_communication", 0.8), ("conflict", conflict), ("trust", trust)):
                st.D[COLUMN[name]] = value
            validation.run_one_phase(engine, compiled, plan, need, int(gate.phase))
            change = st.D[COLUMN["trust"]] - trust
            assert np.all(np.sign(change) == np.sign(0.5 - conflict)), (trust, conflict, change)


def test_a_declared_pair_must_be_a_pair():
    def rows():
        return yaml.safe_load(
            """
- {id: a, cmoc: null, source: s, link: outcome, context: [interpersonal_communication, not conflict, trust],
   mechanism: trust, sign: 1, weight: 0.05, stages: all, pairs_with: b}
- {id: b, cmoc: null, source: s, link: outcome, context: [interpersonal_communication, conflict, not trust],
   mechanism: trust, sign: -1, weight: 0.05, stages: all}
"""
        )

    assert relaxation_pairs(parse_rows(rows())) == {"a", "b"}  # declared: outcome rows are never paired unasked
    for key, value in (
        ("context", ["interpersonal_communication", "conflict", "faith"]),  # a differing term not negated
        ("weight", 0.1),
        ("stages", "from_planning"),
        ("mechanism", "faith"),
        ("sign", 1),
    ):
        bad = rows()
        bad[1][key] = value
        if key == "mechanism":
            bad[1]["context"] = ["interpersonal_communication", "conflict", "not faith"]
        with pytest.raises(CollabsimInputError, match="pairs_with"):
            parse_rows(bad)
    undeclared = rows()
    del undeclared[0]["pairs_with"]
    assert relaxation_pairs(parse_rows(undeclared)) == set()


def test_the_rate_scales_monthly_rows_only():
    prior = load_prior_table()
    one, two = calibrate(prior, rate=1.0), calibrate(prior, rate=2.5)
    for a, b in zip(one.rows, two.rows, strict=True):
        expected = a.weight if a.mechanism in ONCE_VARIABLES else 2.5 * a.weight
        assert b.weight == pytest.approx(expected), a.id
        assert a.prior_weight == b.prior_weight == next(r.weight for r in prior.rows if r.id == a.id)


def test_runs_use_the_shipped_calibration():
    shipped = calibrate(load_prior_table(), float(load_calibration()["rate"]))
    assert [r.weight for r in load_rule_table().rows] == [r.weight for r in shipped.rows]


def test_shipped_calibration_was_fitted_to_the_shipped_rules():
    """Changing rules.yaml without re-running experiments/calibrate.py fails here: the rate belongs to the table."""
    data = load_calibration()
    assert data["rules_fingerprint"] == load_prior_table().fingerprint(), "re-run python experiments/calibrate.py"
    target = data["target"]
    assert target["band"][0] <= target["achieved"] <= target["band"][1]


def test_calibration_target_holds_at_the_shipped_rate():
    """C1 re-evaluated from scratch (fewer replicates than the fit, so only the band is checked)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "calibrate.py"), "--check", "--replications", "25"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok" in out.stdout
