"""Conformance of every rule, generated from the rule table itself (issue 6, docs/validation.md).

Local sign (fast): one pass of the row's phase with its context high vs low, every other row moving the same
variable off, must move the row's variable in the row's sign; a stage where the row does not act must see nothing.
Chain sign (slow: whole runs): with the row on vs off, the catalogue outcome named in the row's ``chain:`` block
moves in its stated sign, exactly where the table says it can be shown.
"""

from __future__ import annotations

import numpy as np
import pytest

from collabsim import validation
from collabsim.rules import compile_rules as real_compile_rules
from collabsim.rules import load_rule_table

TABLE = load_rule_table()
IDS = [r.id for r in TABLE.rows]
BY_ID = {r.id: r for r in TABLE.rows}


@pytest.fixture(scope="module")
def local():
    return validation.local_sign_checks(TABLE)


@pytest.mark.parametrize("rule_id", IDS)
def test_local_sign(local, rule_id):
    r = local[rule_id]
    assert r.sign_ok, f"{rule_id}: {r.mechanism} moved {r.effect:+.3g} with its context raised, sign {r.sign:+d}"
    assert r.gate_ok, f"{rule_id}: moved {r.gated_effect:+.3g} in stage {r.gated_stage}, where it does not act"


def test_local_check_covers_every_row_and_both_gates(local):
    assert set(local) == set(IDS)
    assert any(r.gated_stage is not None for r in local.values()), "no row is stage-gated: the gate check is idle"
    assert all(abs(r.effect) > 1e-6 for r in local.values())


def test_local_check_fails_when_the_engine_ignores_signs(monkeypatch):
    """The check can fail: an engine that applies every row with the opposite sign fails every row."""

    def flipped(table):
        c = real_compile_rules(table)
        object.__setattr__(c, "sign", (-c.sign).astype(np.int8))
        return c

    monkeypatch.setattr(validation, "compile_rules", flipped)
    ids = IDS[::25]
    res = validation.local_sign_checks(TABLE, ids=ids)
    assert not any(res[i].sign_ok for i in ids)


def test_local_check_fails_when_stages_are_ignored(monkeypatch):
    def all_stages(table):
        c = real_compile_rules(table)
        object.__setattr__(c, "stage_mask", np.full_like(c.stage_mask, (1 << 5) - 1))
        return c

    gated = [r.id for r in TABLE.rows if len(r.stages) < 5][:10]
    assert gated
    monkeypatch.setattr(validation, "compile_rules", all_stages)
    res = validation.local_sign_checks(TABLE, ids=gated)
    assert not any(res[i].gate_ok for i in gated)


def test_every_row_states_its_whole_run_claim():
    for r in TABLE.rows:
        assert r.chain is not None, r.id
        if not r.chain.shown:
            assert len(r.chain.reason) > 20, r.id


def test_ablation_switches_off_exactly_one_row():
    for rid in (
        "fn-trust-faith-collab-behaviour",
        "fn-trust-faith-collab-behaviour@task_achievement",
        "gl-faith-effort",
    ):
        weights = validation.ablation_weights(TABLE, rid)
        after = {r.id: r.weight for r in TABLE.with_overrides(weights=weights).rows}
        changed = [i for i in IDS if after[i] != BY_ID[i].weight]
        assert changed == [rid]


def test_chain_scenario_makes_the_context_present():
    assert validation.chain_scenario_name(BY_ID["rf-mandated-inherent-mistrust"]) == "mandated"
    assert validation.chain_scenario_name(BY_ID["fn-overambition-progress"]) == "ambitious"
    assert validation.chain_scenario_name(BY_ID["rf-voluntary-buddying-high-initial"]) == "voluntary_buddying"
    for name in validation.CHAIN_SCENARIOS:
        validation._chain_base(name)  # every chain scenario is a valid scenario


def test_chain_check_machinery_on_two_rows():
    """At 3 replicates: a strong link is shown, a link the model lacks by design moves its outcome by exactly 0."""
    res = validation.chain_checks(
        TABLE, replications=3, ids=["pf-communication-data-sharing-pathways", "pf-behaviour-procurement-scale"]
    )
    strong, absent = res["pf-communication-data-sharing-pathways"], res["pf-behaviour-procurement-scale"]
    assert strong.shown and strong.effect > 0.05
    assert absent.effect == 0.0 and not absent.shown and absent.mechanism_effect > 0


def test_chain_checks_of_rows_from_two_scenarios_equal_each_row_checked_alone():
    """The chain check runs every scenario's replicates and every row's ablation as tasks and puts their results
    together by position: rows of different chain scenarios checked together get what each gets alone."""
    ids = ["rf-mandated-inherent-mistrust", "fn-overambition-progress"]
    assert len({validation.chain_scenario_name(BY_ID[i]) for i in ids}) == 2
    both = validation.chain_checks(TABLE, replications=2, ids=ids)
    for rid in ids:
        (alone,) = validation.chain_checks(TABLE, replications=2, ids=[rid]).values()
        assert both[rid].outcome is not None and both[rid] == alone


@pytest.fixture(scope="module")
def chain():
    return validation.chain_checks(TABLE, workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("rule_id", IDS)
def test_chain_sign(chain, rule_id):
    c = chain[rule_id]
    if c.outcome is None:
        assert not c.declared_shown and c.reason
        return
    assert c.ok, (
        f"{rule_id}: {c.outcome} {c.sign:+d}, effect {c.effect:+.4g} [{c.lo:+.4g}, {c.hi:+.4g}] in {c.scenario}: "
        + ("the table says not shown, but it is: remove the reason" if c.shown else "not shown")
    )


def test_a_chain_result_is_ok_only_when_it_matches_what_the_table_declares():
    from collabsim.validation import ChainResult  # noqa: PLC0415

    def result(declared_shown, declared_contradicted, lo, hi):
        return ChainResult("r", "voluntary", "trust", +1, declared_shown, declared_contradicted, "", 0.0, lo, hi, 0.0)

    assert result(True, False, 0.1, 0.2).ok  # shown, as declared
    assert not result(False, False, 0.1, 0.2).ok  # shown, but declared not shown: a stale reason
    assert result(False, False, -0.1, 0.2).ok  # not shown, as declared
    assert not result(False, False, -0.2, -0.1).ok  # moves against the sign, undeclared
    assert result(False, True, -0.2, -0.1).ok  # ... declared
    assert not result(False, True, -0.1, 0.2).ok  # declared contradicted, no longer
