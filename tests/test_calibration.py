"""The calibration procedure (docs/calibration.md): balance, one rate, and the shipped calibration's provenance."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collabsim.errors import CollabsimInputError
from collabsim.rules import (
    ONCE_VARIABLES,
    calibrate,
    load_calibration,
    load_prior_table,
    load_rule_table,
    neutral_hazard,
    parse_rows,
    relaxation_pairs,
)

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


def test_communication_raises_trust_exactly_when_trust_is_below_one_minus_conflict():
    """decisions.md 45: the pair gate/reversal moves trust towards 1 - conflict, at the communication's rate."""
    table = load_rule_table()
    gate, reversal = (
        next(r for r in table.rows if r.id == rid)
        for rid in ("gl-daily-relationship-maintenance@trust", "fn-proximity-communication-trust@trust")
    )
    assert gate.weight == reversal.weight and gate.sign == -reversal.sign == 1

    def drift(trust, conflict, communication=0.8):  # the update of docs/rule_format.md with only the pair acting
        up = gate.weight * communication * (1 - conflict)
        down = reversal.weight * communication * conflict
        return (1 - trust) * (1 - math.exp(-up)) - trust * (1 - math.exp(-down))

    for trust in (0.2, 0.5, 0.8):
        for conflict in (0.1, 0.4, 0.6, 0.9):
            d = drift(trust, conflict)
            if abs(trust - (1 - conflict)) > 0.05:
                assert (d > 0) == (trust < 1 - conflict), (trust, conflict, d)


def test_a_declared_pair_must_be_a_pair():
    rows = yaml.safe_load(
        """
- {id: a, cmoc: null, source: s, link: model, context: [x_up, conflict], mechanism: trust, sign: 1, weight: 0.05,
   stages: all, pairs_with: b}
- {id: b, cmoc: null, source: s, link: model, context: [x_up, conflict], mechanism: trust, sign: -1, weight: 0.05,
   stages: all}
""".replace("x_up", "interpersonal_communication")
    )
    with pytest.raises(CollabsimInputError, match="pairs_with"):
        parse_rows(rows)  # same context on both sides: not a pair
    rows[1]["context"] = ["interpersonal_communication", "not conflict"]
    assert relaxation_pairs(parse_rows(rows)) == {"a", "b"}
    rows[1]["weight"] = 0.1
    with pytest.raises(CollabsimInputError, match="pairs_with"):
        parse_rows(rows)


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
