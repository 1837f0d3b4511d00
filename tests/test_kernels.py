"""Kernel numerics that the oracle cannot see: the inlined expm1 against the C library, and the dyad rows summed once
per membership against the same rows summed per dyad."""

import dataclasses
import math

import numpy as np
import pytest
from numba import njit

from collabsim import kernels
from collabsim.engine import Engine, aggregate_needs, make_plan
from collabsim.rules import compile_rules, load_rule_table
from collabsim.validation import run_one_phase
from collabsim.variables import Level, Phase
from conftest import small


@njit
def _expm1_all(z):
    out = np.empty_like(z)
    for i in range(len(z)):
        out[i] = kernels._expm1(z[i])
    return out


def ulps(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_expm1_is_within_two_ulp_of_the_c_library():
    rng = np.random.default_rng(0)
    z = np.concatenate(
        [
            -np.logspace(-300, 2, 20_000),  # the update's arguments are -sums of rates: mostly small, negative
            np.logspace(-300, 2.8, 20_000),
            rng.uniform(-3.0, 1.0, 20_000),
            np.array([math.log(2) / 2 * s for s in (-1, 1, -3, 3)]),  # the edges of the range reduction
            np.array([-1e-300, 5e-324, -36.0, -38.0, 700.0]),
        ]
    )
    want = np.array([math.expm1(v) for v in z])
    assert ulps(_expm1_all(z), want).max() <= 2.0


def test_expm1_special_values():
    z = np.array([0.0, -60.0, -1e4, -np.inf, 1e-310])
    got = _expm1_all(z)
    assert got[0] == 0.0
    assert (got[1:4] == -1.0).all()  # exp underflows against 1 in double precision
    assert got[4] == 1e-310  # expm1(z) = z for subnormal z
    grid = np.linspace(-40.0, 5.0, 200_001)
    assert (np.diff(_expm1_all(grid)) >= 0).all()  # monotone, so the update keeps its bounds


def test_the_plan_puts_the_dyad_rows_that_read_no_dyad_variable_first():
    compiled = compile_rules(load_rule_table())
    plan = make_plan(compiled)
    assert sorted(plan.p_rule_idx.tolist()) == list(range(len(compiled)))  # every row once
    n_pre = 0
    for level in Level:
        for phase in Phase:
            g = plan.group(level, phase)
            for q in range(g.start, g.stop):
                rows = plan.p_rule_idx[plan.p_mech_ptr[q] : plan.p_mech_ptr[q + 1]]
                k = plan.p_pre[q]
                reads = [set(compiled.term_level[compiled.term_ptr[r] : compiled.term_ptr[r + 1]]) for r in rows]
                assert all(Level.DYAD not in lv for lv in reads[:k])
                if level != Level.DYAD:
                    assert k == 0
                else:
                    assert all(Level.DYAD in lv for lv in reads[k:])
                assert list(rows[:k]) == sorted(rows[:k]) and list(rows[k:]) == sorted(rows[k:])  # table order
                n_pre += k
    assert n_pre > 20  # most dyad mechanism rows read only their collaboration, organisation or membership


@pytest.mark.parametrize("regime", ["mandated", "voluntary"])
def test_rows_summed_per_membership_equal_rows_summed_per_dyad_bit_for_bit(baseline, regime):
    sc = small(baseline, **{"population.n_orgs": 30, "partnering.regime": regime})
    compiled = compile_rules(load_rule_table())
    plan, need = make_plan(compiled), aggregate_needs(compiled)
    per_dyad = dataclasses.replace(plan, p_pre=np.zeros_like(plan.p_pre))  # same order, nothing hoisted
    hoisted, plain = Engine(sc, seed=4), Engine(sc, seed=4)
    hoisted.advance(15)
    plain.advance(15)
    assert hoisted.state.n_dyad > 0
    for phase in (Phase.CONTEXT, Phase.MECHANISMS, Phase.BEHAVIOUR, Phase.OUTCOMES):
        run_one_phase(hoisted, compiled, plan, need, int(phase))
        run_one_phase(plain, compiled, per_dyad, need, int(phase))
        for level in ("D", "M", "K", "O"):
            np.testing.assert_array_equal(getattr(hoisted.state, level), getattr(plain.state, level))
    assert not np.array_equal(hoisted.state.D, Engine(sc, seed=4).state.D)  # the phases moved the dyads
