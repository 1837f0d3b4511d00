"""Kernel numerics that the oracle cannot see: the inlined expm1 against the C library, and the dyad rows summed once
per membership against the same rows summed per dyad."""

import contextlib
import dataclasses
import math

import numba
import numpy as np
import pytest
from numba import get_thread_id, njit, prange

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


# Every chunked parallel kernel against its chunk function run over all entities on one thread. The engine calls the
# parallel versions only above kernels.PARALLEL_WORK of estimated work (below it, the serial loop): called directly
# here, at a size with several chunks, so the parallel paths are checked whatever the thresholds.
@pytest.fixture(scope="module")
def midsize():
    from collabsim.bench import scenario_for

    e = Engine(scenario_for(3000, "mandated", 5, 12), seed=4)
    e.advance(6)
    assert e.state.n_dyad > 4 * kernels.CHUNK and e.state.n_mem > kernels.CHUNK
    return e


@contextlib.contextmanager
def _two_threads():
    """Numba runs on two threads inside the block where the machine has them."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _both(serial, parallel, arrays):
    """Run serial(copies) and parallel(other copies) on two threads where the machine has them; the copies after."""
    a, b = [x.copy() for x in arrays], [x.copy() for x in arrays]
    serial(*a)
    with _two_threads():
        parallel(*b)
    return a, b


@njit(parallel=True)
def _take_all(n, ticket):
    """The kernels' ticket loop over n items: how often each item was taken (the counter is left in ``ticket``)."""
    taken = np.zeros(n, np.int64)
    for _ in prange(n):
        j = kernels._take_ticket(ticket)
        while j < n:
            taken[j] += 1
            j = kernels._take_ticket(ticket)
    return taken


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_each_chunk_of_a_parallel_loop_is_taken_exactly_once(n):
    ticket = np.zeros(1, np.int64)
    with _two_threads():
        taken = _take_all(n, ticket)
    assert (taken == 1).all()
    assert ticket[0] == 2 * n  # n tickets taken, and each of the n iterations' last try found none left


@njit(parallel=True)
def _slow_first_item(n, spin, ticket):
    """The ticket loop where item 0 takes long (``spin`` steps) and the others nothing: which thread took each."""
    who = np.full(n, -1, np.int64)
    sink = np.zeros(n)
    for _ in prange(n):
        j = kernels._take_ticket(ticket)
        while j < n:
            who[j] = get_thread_id()
            if j == 0:
                x = 0.0
                for k in range(spin):
                    x += math.sqrt(k)
                sink[j] = x
            j = kernels._take_ticket(ticket)
    return who


def test_a_free_thread_takes_the_chunks_a_busy_one_cannot():
    """Chunks are handed out by ticket, not in one equal block per thread: while one thread is busy with a slow
    first chunk, the other takes the rest. (A static split would leave the busy thread half of them.)"""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    with _two_threads():
        _slow_first_item(64, 10, np.zeros(1, np.int64))  # compile
        who = _slow_first_item(64, 50_000_000, np.zeros(1, np.int64))  # item 0: about 50 ms of arithmetic
    assert (who >= 0).all()
    assert (who == who[0]).sum() < 32  # a static split gives the thread of item 0 items 0..31


def test_parallel_elementwise_kernels_equal_their_serial_loops(midsize):
    e, st = midsize, midsize.state
    n_org, n_mem, n_dyad = st.n_org, st.n_mem, st.n_dyad
    P, topo, stages = e.P, e.topology, (st.col_stage, e.col_cov)
    O = st.O.copy()
    O[kernels.TURNOVER] = (np.arange(n_org) % 7 == 0).astype(float)  # some leaders change: resets happen
    M, D = st.M.copy(), st.D.copy()  # inputs each kernel must change
    M[kernels.ABOVE] = 1.0 - M[kernels.ABOVE]
    D[kernels.RECIPROCATION] = -1.0
    D[kernels.IT] = -1.0  # no IT intervention in force: each dyad gets its base value
    no_its, it_base = np.empty(0, np.int64), st.dyad_it_base
    cases = {
        "threshold": (
            lambda M: kernels._threshold(0, n_mem, P, M),
            lambda M: kernels._threshold_parallel(P, M),
            [M],
        ),
        "organisation events": (
            lambda O: kernels._org_events(0, n_org, 7, e.draws, P, O, st.org_workforce_base),
            lambda O: kernels._org_events_parallel(7, e.draws, P, O, st.org_workforce_base),
            [st.O],
        ),
        "the dyad pass": (
            lambda D, a, b: kernels._dyads_month(0, n_dyad, no_its, e.iv, P, O, st.M, D, it_base, topo, *stages, a, b),
            lambda D, a, b: kernels._dyads_month_parallel(no_its, e.iv, P, O, st.M, D, it_base, topo, *stages, a, b),
            [D, np.zeros(n_dyad, np.bool_), np.zeros(n_dyad, np.int32)],
        ),
        "member bits": (
            lambda b: kernels._member_bits(0, n_mem, st.col_stage, st.mem_col, b),
            lambda b: kernels._member_bits_parallel(st.col_stage, st.mem_col, b),
            [np.zeros(n_mem, np.int32)],
        ),
    }
    after = {}
    for name, (serial, parallel, arrays) in cases.items():
        a, after[name] = _both(serial, parallel, arrays)
        for x, y, before in zip(a, after[name], arrays, strict=True):
            assert np.array_equal(x, y), name
            assert not np.array_equal(x, before), name  # the kernel did something
    D_after = after["the dyad pass"][0]
    assert np.array_equal(D_after[kernels.IT], it_base)  # its IT, trust resets and reciprocation all happened
    assert np.array_equal(D_after[kernels.RECIPROCATION], st.M[kernels.BEHAVIOUR, st.dyad_dst])
    assert (D_after[kernels.TRUST] < D[kernels.TRUST]).any()


@pytest.fixture(scope="module")
def pairs():
    from collabsim.bench import scenario_for

    e = Engine(scenario_for(6000, "mandated", 2, 12), seed=4)
    e.advance(6)
    assert e.state.n_dyad < 2 * e.state.n_mem  # one dyad a membership: the engine hoists nothing
    return e


@pytest.mark.parametrize("layout", ["midsize", "pairs"])
@pytest.mark.parametrize("known_fresh", [False, True])
@pytest.mark.parametrize("phase", [Phase.CONTEXT, Phase.MECHANISMS, Phase.BEHAVIOUR])
def test_dyads_and_members_by_chunks_of_memberships_equal_level_by_level(request, layout, known_fresh, phase):
    """kernels.run_phase runs a phase's dyads and memberships together, chunk by chunk of memberships (on parallel
    threads where the work pays); level by level (every dyad row per dyad, then every dyad mean, then the membership
    rows, each level over all its entities) must give the same bits. ``known_fresh``: run_phase is told that every
    aggregate is current (they are), so it must recompute exactly the dyad means that the phase's dyad rows move."""
    e = request.getfixturevalue(layout)
    st = e.state
    plan, table, need = e.plan, e.rules.table, e.need
    n_org, n_col, n_mem, n_dyad = st.n_org, st.n_col, st.n_mem, st.n_dyad
    masks = (np.zeros(n_dyad, np.bool_), st.mem_active, np.zeros(n_col, np.bool_), np.ones(n_org, np.bool_))
    masks += tuple(np.zeros(n, np.int32) for n in (n_dyad, n_mem, n_col, n_org))
    kernels.stage_masks(
        st.col_stage, st.mem_col, st.mem_org, st.mem_active, st.dyad_src, st.dyad_dst, e.dyad_col, masks
    )
    assert len(kernels.membership_bounds(st.mem_dyad_ptr, n_mem)) > 3  # several work items

    DM0 = e.DM.copy()  # the dyad means before the phase, exact
    kernels.member_means_of_dyads(st.D, st.mem_dyad_ptr, st.dyad_src, st.dyad_dst, st.mem_active, DM0, e.need[0])
    D, M, DM = st.D.copy(), st.M.copy(), DM0.copy()  # level by level, on copies
    own, none = np.empty(0, np.int64), np.empty((0, 0))
    gd, gm = plan.group(Level.DYAD, phase), plan.group(Level.MEMBER, phase)
    d_reads = (st.O, e.dyad_org, st.K, e.dyad_col, M, st.dyad_src, D, own)
    m_reads = (st.O, st.mem_org, st.K, st.mem_col, M, own, DM, own)
    if gd.start < gd.stop:
        pre = (none, none, own, np.zeros(gd.stop - gd.start, np.int64))  # nothing hoisted
        cols, ptr = plan.p_cols[gd], plan.p_mech_ptr[gd.start : gd.stop + 1]
        kernels.apply_rules(D, masks[0], masks[4], cols, ptr, plan.p_rule_idx, table, st.S, d_reads, pre)
    kernels.member_means_of_dyads(D, st.mem_dyad_ptr, st.dyad_src, st.dyad_dst, st.mem_active, DM, need[0])
    pre = (none, none, own, np.zeros(gm.stop - gm.start, np.int64))
    cols, ptr = plan.p_cols[gm], plan.p_mech_ptr[gm.start : gm.stop + 1]
    kernels.apply_rules(M, st.mem_active, masks[5], cols, ptr, plan.p_rule_idx, table, st.S, m_reads, pre)

    idents = tuple(np.arange(n) for n in (n_dyad, n_mem, n_col, n_org))
    state = [a.copy() for a in (st.O, st.K, st.M, st.D)]
    agg = (DM0.copy(), *(a.copy() for a in e.agg[1:]))
    fresh = np.full(kernels.FRESH_SHAPE, known_fresh)  # all stale: every aggregate recomputed where read

    def run(O, K, M2, D2):
        kernels.run_phase(
            int(phase), st.S, O, K, M2, D2, masks, e.topology, idents, agg, table, plan.arrays, need, fresh
        )

    _, (O2, K2, M2, D2) = _both(lambda *a: None, run, state)
    assert np.array_equal(D2, D) and np.array_equal(M2, M)
    assert np.array_equal(agg[0][need[0]], DM[need[0]])
    assert not np.array_equal(M2, st.M)  # the phase moved the memberships


@pytest.mark.parametrize("seed", range(5))
def test_membership_chunks_cover_every_membership_once_and_cut_at_the_first_membership_past_the_size(seed):
    rng = np.random.default_rng(seed)
    per_mem = rng.choice(
        [0, 1, 6, 10, 3000, 20000], size=int(rng.integers(1, 6000)), p=[0.05, 0.3, 0.4, 0.24, 0.009, 0.001]
    )
    ptr = np.concatenate(([0], np.cumsum(per_mem))).astype(np.int64)
    n_mem = len(per_mem)
    bounds = kernels.membership_bounds(ptr, n_mem)
    size = max(kernels.CHUNK, min(kernels.DYAD_CHUNK_MAX, ptr[-1] // 8))
    assert bounds[0] == 0 and bounds[-1] == n_mem and np.all(np.diff(bounds) > 0)
    for lo, hi in zip(bounds[:-2], bounds[1:-1], strict=True):  # every chunk but the last
        assert hi - lo <= kernels.CHUNK
        full = hi - lo == kernels.CHUNK or ptr[hi] - ptr[lo] >= size
        assert full and (hi - lo == 1 or ptr[hi - 1] - ptr[lo] < size)  # cut at the first membership that fills it
