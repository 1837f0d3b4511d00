"""All numba code: pure functions on arrays. Nothing here allocates state or draws random numbers.

Shapes: level arrays are (n_vars, n_entities) float64 (structure of arrays: each variable is contiguous). Index
arrays are int32/int64. Each kernel states what it mutates. Loops over entities are ``prange``: every entity
writes only its own column, so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from collabsim.rules import ALL_STAGES_MASK as ALL_STAGES
from collabsim.variables import COLUMN, N_VARS, Level

CHUNK = 2048  # entities per work item: a chunk's scratch stays in cache while every rule streams over it (the
# dyad-and-membership pass cuts wider chunks of dyads: DYAD_CHUNK_MAX below)


# expm1 by range reduction and a Taylor polynomial: z = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2,
# as in fdlibm), expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!) (truncation < 1e-17 relative), then
# expm1(z) = 2^k expm1(r) + (2^k - 1), both exact scalings. Within 2 ulp of the C library (tests/test_kernels.py),
# branch-free so that the update loop vectorises, and the same bits on every platform (no libm in the hot loop).
_INV_LN2, _LN2_HI, _LN2_LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = (1.0 / math.factorial(n) for n in range(2, 14))


@njit(cache=True, inline="always")
def _expm1(z):
    """expm1(z) for any z (below -60 it is -1 to double precision; above 709 exp overflows, so z is clamped)."""
    z = min(max(z, -60.0), 709.0)
    kf = math.floor(z * _INV_LN2 + 0.5)
    r = (z - kf * _LN2_HI) - kf * _LN2_LO
    q = _C12 + r * _C13
    q = _C11 + r * q
    q = _C10 + r * q
    q = _C9 + r * q
    q = _C8 + r * q
    q = _C7 + r * q
    q = _C6 + r * q
    q = _C5 + r * q
    q = _C4 + r * q
    q = _C3 + r * q
    q = _C2 + r * q
    p = r + (r * r) * q
    two_k = np.uint64((np.int64(kf) + 1023) << 52).view(np.float64)
    return two_k * p + (two_k - 1.0)


# The term passes and row sums run without numba's reference counting (_nrt=False: they allocate nothing, and their
# callers hold every array they read): each array view they take would otherwise cost an atomic increment and
# decrement, about 10 of a pass's 25-35 ns fixed cost. Small runs spend most of a month in such passes over a few
# dozen entities (the 20-organisation baseline: 13% faster a run, paired).
@njit(cache=True, _nrt=False)
def _term_pass(mode, c, acc, A, idx, col, neg, lo, w, s, every, mask, bits):
    """One term of a row over the w entities of a chunk (entity lo + i reads A[col, idx[lo + i]], or its own column
    when idx is empty; ``neg``: 1 - that). mode 0: c = weight * term (the row's first term), 1: c *= term, 2:
    acc += c * term (its last), 3: acc += weight * term (its only term); the weight is s, or 0 in a stage where the
    row does not act. The same products and sums, in the same order, as one pass per factor. Loops index 1-d
    slices from 0 so that numba can drop its negative-index checks and vectorise them."""
    a, b = A[col], bits[lo : lo + w]
    if len(idx) == 0:
        v = a[lo : lo + w]
        if mode == 0:
            for i in range(w):
                c[i] = (s if every or (mask & b[i]) != 0 else 0.0) * (1.0 - v[i] if neg else v[i])
        elif mode == 1:
            for i in range(w):
                c[i] *= 1.0 - v[i] if neg else v[i]
        elif mode == 2:
            for i in range(w):
                acc[i] += c[i] * (1.0 - v[i] if neg else v[i])
        else:
            for i in range(w):
                acc[i] += (s if every or (mask & b[i]) != 0 else 0.0) * (1.0 - v[i] if neg else v[i])
    else:
        ix = idx[lo : lo + w]
        if mode == 0:
            for i in range(w):
                c[i] = (s if every or (mask & b[i]) != 0 else 0.0) * (1.0 - a[ix[i]] if neg else a[ix[i]])
        elif mode == 1:
            for i in range(w):
                c[i] *= 1.0 - a[ix[i]] if neg else a[ix[i]]
        elif mode == 2:
            for i in range(w):
                acc[i] += c[i] * (1.0 - a[ix[i]] if neg else a[ix[i]])
        else:
            for i in range(w):
                acc[i] += (s if every or (mask & b[i]) != 0 else 0.0) * (1.0 - a[ix[i]] if neg else a[ix[i]])


@njit(cache=True, _nrt=False)
def _scalar_pass(mode, c, acc, v, lo, w, s, every, mask, bits):
    """_term_pass for a term with the same value v for every entity (a system variable; 1.0: a row without terms)."""
    b = bits[lo : lo + w]
    if mode == 0:
        for i in range(w):
            c[i] = (s if every or (mask & b[i]) != 0 else 0.0) * v
    elif mode == 1:
        for i in range(w):
            c[i] *= v
    elif mode == 2:
        for i in range(w):
            acc[i] += c[i] * v
    else:
        for i in range(w):
            acc[i] += (s if every or (mask & b[i]) != 0 else 0.0) * v


@intrinsic
def _take_ticket(typingctx, counter):
    """The next work item of a parallel loop: counter[0] += 1 atomically, returning the value before.

    Numba's prange hands each thread an equal block of iterations (OpenMP's static schedule), so a region lasts as
    long as its slower thread: the one woken from sleep starts 50-100 us late, and a vCPU's speed moves with the
    host's other tenants. Each thread of a ``for _ in prange(n)`` loop instead takes tickets until none is left
    (the loop's other iterations find none), so a thread that is free takes the next chunk. A chunk's values do
    not depend on the thread that computes it: the same bits on any number of threads, in any order. Numba does
    not see this write, so the function that runs the loop must not read the counter afterwards (it may read the
    value from before the loop); a caller can."""
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [context.get_constant(types.intp, 0)])
        # no ordering needed: the counter only hands out indices; the region's closing barrier publishes the results
        return builder.atomic_rmw("add", ptr, context.get_constant(types.int64, 1), "monotonic")

    return sig, codegen


@njit(cache=True)
def _ticket_counter():
    """A fresh ticket counter. Allocated here, not in the parallel function: there numba turns np.zeros into a
    parallel loop of its own, one more region (and wake-up) per call."""
    return np.zeros(1, np.int64)


# A parallel region pays when its work takes longer than waking the other threads, which sleep between regions
# (OMP_WAIT_POLICY=PASSIVE): 10-70 us a region on the test machines, about what one thread does in 2**18
# element-operations (a mask set; a row for one entity is about 2, a dyad value averaged about 4, measured at national
# scale). Below this estimated work a kernel runs its chunks on one thread; chunks are the work items either way, so
# the numbers are the same.
PARALLEL_WORK = 1 << 18
MEANS_CHUNK = 512  # memberships per work item of the dyad means: enough items for an even split between threads
COLLAB_CHUNK = 256  # collaborations per work item of the collaboration means
# Dyads per work item of the dyad-and-membership pass: a membership chunk's rows stream over too few memberships below
# CHUNK dyads (a pass costs about 90 ns whatever its width); at most DYAD_CHUNK_MAX (measured: 8,192 and 16,384 the
# same at 180,000 dyads, 4,096 slower); and eight or more work items where there are enough dyads, for an even split.
DYAD_CHUNK_MAX = 8192


@njit(cache=True, _nrt=False)
def _row_sums(c, up, down, p0, p1, lo, w, rule_idx, table, S, reads, stage_bits):
    """Adds the rows rule_idx[p0:p1] over the w entities of a chunk from lo into up (raising rows) or down
    (lowering rows), in that order; c is scratch."""
    sign, weight, stage_mask, term_ptr, term_level, term_col, term_neg = table
    O, Oi, K, Ki, M, Mi, D, Di = reads
    for p in range(p0, p1):
        r = rule_idx[p]
        s, mask = weight[r], stage_mask[r]
        every = mask == ALL_STAGES
        acc = up if sign[r] > 0 else down
        t0, t1 = term_ptr[r], term_ptr[r + 1]
        if t0 == t1:
            _scalar_pass(3, c, acc, 1.0, lo, w, s, every, mask, stage_bits)
        for t in range(t0, t1):
            # the row's product is formed left to right, as weight * term * term ..., then added
            mode = (3 if t == t1 - 1 else 0) if t == t0 else (2 if t == t1 - 1 else 1)
            lv, col, neg = term_level[t], term_col[t], term_neg[t]
            if lv == 0:
                _scalar_pass(mode, c, acc, 1.0 - S[col] if neg else S[col], lo, w, s, every, mask, stage_bits)
            elif lv == 1:
                _term_pass(mode, c, acc, O, Oi, col, neg, lo, w, s, every, mask, stage_bits)
            elif lv == 2:
                _term_pass(mode, c, acc, K, Ki, col, neg, lo, w, s, every, mask, stage_bits)
            elif lv == 3:
                _term_pass(mode, c, acc, M, Mi, col, neg, lo, w, s, every, mask, stage_bits)
            else:
                _term_pass(mode, c, acc, D, Di, col, neg, lo, w, s, every, mask, stage_bits)


@njit(cache=True)
def _rules_range(lo, hi, X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre):
    """The rows of entities lo .. hi-1 (a chunk: see apply_rules), then their new values into X."""
    U0, D0, pre_idx, n_pre = pre
    nq, w = len(mech_cols), hi - lo
    scratch = np.empty((nq + 3, w))
    c, up, down, res = scratch[nq], scratch[nq + 1], scratch[nq + 2], scratch[:nq]
    for q in range(nq):
        p0 = mech_ptr[q]
        if len(pre_idx):  # the sums of the variable's first n_pre[q] rows, taken once per coarser entity
            ix, u0, d0 = pre_idx[lo : lo + w], U0[q], D0[q]
            for i in range(w):
                up[i] = u0[ix[i]]
                down[i] = d0[ix[i]]
            p0 += n_pre[q]
        else:
            up[:] = 0.0
            down[:] = 0.0
        _row_sums(c, up, down, p0, mech_ptr[q + 1], lo, w, rule_idx, table, S, reads, stage_bits)
        x, y = X[mech_cols[q], lo : lo + w], res[q]
        for i in range(w):
            y[i] = x[i] - (1.0 - x[i]) * _expm1(-up[i]) + x[i] * _expm1(-down[i])
    act = active[lo : lo + w]
    for q in range(nq):  # the chunk's entities are read by no other chunk: write back now
        x, y = X[mech_cols[q], lo : lo + w], res[q]
        for i in range(w):
            if act[i]:
                x[i] = y[i]


@njit(cache=True, parallel=True)
def _apply_rules_parallel(X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre):
    n = X.shape[1]
    n_items = (n + CHUNK - 1) // CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * CHUNK
            _rules_range(
                lo, min(n, lo + CHUNK), X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre
            )
            ch = _take_ticket(ticket)


@njit(cache=True)
def _presum_range(lo, hi, mech_ptr, n_pre, rule_idx, table, S, reads, stage_bits, U0, D0):
    """U0[q, e] and D0[q, e]: the raising and lowering sums of the first n_pre[q] rows of variable q (see
    apply_rules) for entities lo .. hi-1 of a coarser level that reads them through ``reads`` with ``stage_bits``.
    MUTATES U0, D0 (nq, n). The dyad level hoists its rows that read no dyad variable to the memberships this way:
    such a row has the same value for every dyad of a membership."""
    w = hi - lo
    c = np.empty(w)
    for q in range(len(n_pre)):
        up, down = U0[q, lo:hi], D0[q, lo:hi]
        up[:] = 0.0
        down[:] = 0.0
        _row_sums(c, up, down, mech_ptr[q], mech_ptr[q] + n_pre[q], lo, w, rule_idx, table, S, reads, stage_bits)


@njit(cache=True)
def apply_rules(X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre):
    """One synchronous rule update of the variables ``mech_cols`` of every active entity of one level.

    X: (n_vars, n) the level's array, MUTATED in rows mech_cols for active entities. stage_bits: int32 (n,), bit s
    set when the entity is in stage s (an organisation: the stages of its running collaborations); a row acts when
    it acts in every stage (mask ALL_STAGES) or in one of the entity's stages. Rows of
    rule_idx[mech_ptr[q]:mech_ptr[q+1]] move mech_cols[q], in table order. A context term at level L reads
    L's array through the entity's index map (``reads`` = (O, Oi, K, Ki, M, Mi, D, Di); S directly); an empty map
    reads the entity's own column, and X must be read through an empty map (an entity reads only its own values
    of its level). Every value of an entity is computed before any is written, so rule order inside a phase does
    not matter. x <- x + (1 - x)(1 - exp(-up)) - x(1 - exp(-down)) keeps x in [0, 1]. Each chunk of entities is
    one work item: rules stream over it (cache- and vector-friendly), and threads never share an entity.
    pre = (U0, D0, pre_idx, n_pre): when pre_idx is not empty, the sums of the first n_pre[q] rows of variable q
    start from U0[q, pre_idx[e]] and D0[q, pre_idx[e]] (``_presum_range``) instead of being formed here; the same sums.
    """
    n, nq = X.shape[1], len(mech_cols)
    if n > CHUNK and 2 * n * (mech_ptr[nq] - mech_ptr[0]) >= PARALLEL_WORK:  # ~2 ops a row and entity
        _apply_rules_parallel(X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre)
    else:
        for lo in range(0, n, CHUNK):
            _rules_range(
                lo, min(n, lo + CHUNK), X, active, stage_bits, mech_cols, mech_ptr, rule_idx, table, S, reads, pre
            )


@njit(cache=True, inline="always")
def _dyad_means_chunk(lo, hi, D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, cols):
    """Memberships lo .. hi-1 (loops over slices from 0, as everywhere in a chunk: numba then drops its
    negative-index checks, which cost 3x in a parallel loop)."""
    ptr, act, c = mem_dyad_ptr[lo : hi + 1], mem_active[lo:hi], cnt[lo:hi]
    for i in range(hi - lo):
        c[i] = 0.0
        if act[i]:
            for d in range(ptr[i], ptr[i + 1]):
                if mem_active[dyad_dst[d]]:
                    c[i] += 1.0
    for v in cols:
        row, out = D[v], DM[v, lo:hi]
        for i in range(hi - lo):
            total = 0.0
            if c[i] > 0.0:
                for d in range(ptr[i], ptr[i + 1]):
                    if mem_active[dyad_dst[d]]:
                        total += row[d]
                total /= c[i]
            out[i] = total


@njit(cache=True, parallel=True)
def _dyad_means_parallel(D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, cols):
    n_mem = len(mem_active)
    n_items = (n_mem + MEANS_CHUNK - 1) // MEANS_CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):  # memberships are independent: the same sums
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * MEANS_CHUNK
            _dyad_means_chunk(lo, min(n_mem, lo + MEANS_CHUNK), D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, cols)
            ch = _take_ticket(ticket)


@njit(cache=True)
def member_means_of_dyads(D, mem_dyad_ptr, dyad_src, dyad_dst, mem_active, DM, cols):
    """DM[v, m] = mean of D[v] over the active dyads of membership m (0 when none), for v in ``cols``. MUTATES DM
    (n_dyad_vars, n_mem). With many dyads, chunks of memberships run on parallel threads (each mean computed exactly
    as on one)."""
    n_mem = len(mem_active)
    cnt = np.empty(n_mem)
    if n_mem > MEANS_CHUNK and 4 * D.shape[1] * len(cols) >= PARALLEL_WORK:  # ~4 ops a value: gathered, divided
        _dyad_means_parallel(D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, cols)
    else:
        _dyad_means_chunk(0, n_mem, D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, cols)


@njit(cache=True, inline="always")
def _collab_means_chunk(lo, hi, sources, maps, col_mem_ptr, mem_active, cnt, outs, cols):
    """Collaborations lo .. hi-1 of every aggregate a: outs[a][v] from sources[a][v] (read through maps[a]; an empty
    map: the membership's own column) for v in cols[a]."""
    ptr, c = col_mem_ptr[lo : hi + 1], cnt[lo:hi]
    for i in range(hi - lo):
        c[i] = 0.0
        for m in range(ptr[i], ptr[i + 1]):
            c[i] += mem_active[m]
    for a in range(len(sources)):
        idx, own = maps[a], len(maps[a]) == 0
        for v in cols[a]:
            row, out = sources[a][v], outs[a][v, lo:hi]
            for i in range(hi - lo):
                total = 0.0
                if c[i] > 0.0:
                    for m in range(ptr[i], ptr[i + 1]):
                        if mem_active[m]:
                            total += row[m] if own else row[idx[m]]
                    total /= c[i]
                out[i] = total


@njit(cache=True, parallel=True)
def _collab_means_parallel(sources, maps, col_mem_ptr, mem_active, cnt, outs, cols):
    n_col = len(cnt)
    n_items = (n_col + COLLAB_CHUNK - 1) // COLLAB_CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):  # collaborations are independent
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * COLLAB_CHUNK
            hi = min(n_col, lo + COLLAB_CHUNK)
            _collab_means_chunk(lo, hi, sources, maps, col_mem_ptr, mem_active, cnt, outs, cols)
            ch = _take_ticket(ticket)


@njit(cache=True)
def collab_means(sources, maps, col_mem_ptr, mem_active, outs, cols):
    """outs[a][v, k] = mean over the active members m of k of sources[a][v, maps[a][m]] (an empty map: column m),
    in member order (0 when none), for v in cols[a], for each aggregate a. MUTATES outs (nv, n_col). With many
    memberships, chunks of collaborations run on parallel threads, every aggregate in one pass (each mean computed
    exactly as on one thread; balanced even when only one column is stale)."""
    cnt = np.empty(len(col_mem_ptr) - 1)
    if len(cnt) > COLLAB_CHUNK and len(mem_active) * (len(cols[0]) + len(cols[1]) + len(cols[2])) >= PARALLEL_WORK:
        _collab_means_parallel(sources, maps, col_mem_ptr, mem_active, cnt, outs, cols)
    else:
        _collab_means_chunk(0, len(cnt), sources, maps, col_mem_ptr, mem_active, cnt, outs, cols)


@njit(cache=True, inline="always")
def _org_means_of_one(row, idx, mem_org, mem_active, cnt, acc):
    own = len(idx) == 0
    acc[:] = 0.0
    for m in range(len(mem_org)):
        if mem_active[m]:
            acc[mem_org[m]] += row[m] if own else row[idx[m]]
    for i in range(len(cnt)):
        if cnt[i] > 0.0:
            acc[i] /= cnt[i]


@njit(cache=True, parallel=True)
def _org_means_parallel(sources, maps, mem_org, mem_active, cnt, outs, items):
    n_items = len(items)
    ticket = _ticket_counter()
    for _ in prange(n_items):  # each (aggregate, variable) scatters into its own row: no shared target
        j = _take_ticket(ticket)
        while j < n_items:
            a, v = items[j, 0], items[j, 1]
            _org_means_of_one(sources[a][v], maps[a], mem_org, mem_active, cnt, outs[a][v])
            j = _take_ticket(ticket)


@njit(cache=True)
def org_means(sources, maps, mem_org, mem_active, n_org, outs, cols):
    """outs[a][v, i] = mean over the active memberships m of organisation i of sources[a][v, maps[a][m]] (an empty
    map: column m), in membership order (0 when none), for v in cols[a]. MUTATES outs (nv, n_org). Parallel over
    the (aggregate, variable) pairs with many memberships."""
    cnt = np.zeros(n_org)
    for m in range(len(mem_org)):
        if mem_active[m]:
            cnt[mem_org[m]] += 1.0
    n = 0
    for a in range(len(cols)):
        n += len(cols[a])
    items = np.empty((n, 2), np.int64)
    n = 0
    for a in range(len(cols)):
        for v in cols[a]:
            items[n, 0], items[n, 1] = a, v
            n += 1
    if n > 1 and len(mem_org) * n >= PARALLEL_WORK:
        _org_means_parallel(sources, maps, mem_org, mem_active, cnt, outs, items)
    else:
        for j in range(n):
            a, v = items[j, 0], items[j, 1]
            _org_means_of_one(sources[a][v], maps[a], mem_org, mem_active, cnt, outs[a][v])


# ---- the whole month in compiled code --------------------------------------------------------------------------
# Columns read by the named functions (compile-time constants for numba).
_C = COLUMN
TURNOVER, WORKFORCE, CHAMPIONS = _C["leadership_turnover"], _C["workforce_instability"], _C["champions"]
TRUST, INITIAL_TRUST, IT, RECIPROCATION = (
    _C["trust"],
    _C["initial_trust"],
    _C["it_interoperability"],
    _C["partner_reciprocation"],
)
FAITH, RISK, ABOVE, BEHAVIOUR = _C["faith"], _C["risk_tolerance"], _C["above_threshold"], _C["collaborative_behaviour"]
TASK, FAILURE, QUICK_WINS, STOPPING = (
    _C["task_achievement"],
    _C["collaborative_task_failure"],
    _C["quick_wins"],
    _C["inappropriate_stopping"],
)
AGE, SLOW, ABSENCE, INERTIA = (
    _C["collaboration_age"],
    _C["slow_pace_of_development"],
    _C["key_actor_absence"],
    _C["collaborative_inertia"],
)
MANDATED, FORMALISATION, OPTIMUM, MOU = _C["mandated"], _C["formalisation"], _C["formalisation_optimum"], _C["mou"]
OVERFORMAL, APPROPRIATE, FUNDING = _C["overformalisation"], _C["formalisation_appropriateness"], _C["external_funding"]

# Parameters (P array) of the month, in this order: engine.month_parameters builds it from the scenario.
(
    P_TURNOVER_RATE,
    P_SHOCK_RATE,
    P_FAILURE_RATE,
    P_QUICK_WIN,
    P_TRUST_RESET,
    P_THRESHOLD_RISK,
    P_THRESHOLD_FAITH,
    P_SYNERGY_SHARE,
    P_CONNECTING,
    P_PLANNING,
    P_PACE,
    P_LEAVE_FAITH,
    P_LEAVE_AFTER,
    P_STOPPING_DECAY,
    P_WORKFORCE_PERSISTENCE,
    P_WORKFORCE_SHOCK,
    P_AGE_HALF,
    P_HYSTERESIS,
) = range(18)
N_PARAMETERS = 18
# Intervention kinds (column 0 of the intervention table): raise a collaboration variable, MoU, IT, champions.
IV_RAISE, IV_MOU, IV_IT, IV_CHAMPIONS = 0, 1, 2, 3
# Draw channels of the counter-based event draws.
CH_TURNOVER, CH_SHOCK, CH_FAILURE = 0, 1, 2
# Stage codes (rules.STAGES): connecting, planning, implementation, maintenance; dissolved after them.
ST_CONNECTING, ST_PLANNING, ST_IMPLEMENTATION, ST_MAINTENANCE, ST_DISSOLVED = 1, 2, 3, 4, 5
N_PHASES = 5
FRESH_SHAPE = (7, max(N_VARS.values()))  # refresh's freshness flags: (aggregate DM .. KO, column)
ALL_K, ALL_O = np.arange(N_VARS[Level.COLLAB]), np.arange(N_VARS[Level.ORG])
# The tuples run_phase and refresh take (one argument each instead of a long list), in this order:
#   topo   (mem_dyad_ptr, dyad_src, dyad_dst, dyad_col, dyad_org, mem_active, col_mem_ptr, mem_org, mem_col)
#   masks  (act_d, act_m, act_k, act_o, bits_d, bits_m, bits_k, bits_o): active flags and stage bits
#   idents (ident_d, ident_m, ident_k, ident_o): identity index maps of each level


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def event_uniform(salt, month, entity, channel):
    """A uniform [0, 1) draw that depends only on (salt, month, entity, channel): counter-based, so it needs no
    stream state, is the same in the engine and the reference, and cannot depend on threads or entity order."""
    z = np.uint64(salt) ^ _mix(np.uint64(month) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(channel))
    z = _mix(z + np.uint64(entity) * np.uint64(0xD1B54A32D192ED03))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _dyad_masks(lo, hi, col_stage, mem_active, dyad_src, dyad_dst, dyad_col, act_d, bits_d):
    a, b, src, dst, kc = act_d[lo:hi], bits_d[lo:hi], dyad_src[lo:hi], dyad_dst[lo:hi], dyad_col[lo:hi]
    for i in range(hi - lo):
        a[i] = mem_active[src[i]] and mem_active[dst[i]]
        b[i] = 1 << col_stage[kc[i]]


@njit(cache=True, inline="always")
def _member_bits(lo, hi, col_stage, mem_col, bits_m):
    b, kc = bits_m[lo:hi], mem_col[lo:hi]
    for i in range(hi - lo):
        b[i] = 1 << col_stage[kc[i]]


@njit(cache=True, parallel=True)
def _member_bits_parallel(col_stage, mem_col, bits_m):
    n = len(bits_m)
    n_items = (n + CHUNK - 1) // CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * CHUNK
            _member_bits(lo, min(n, lo + CHUNK), col_stage, mem_col, bits_m)
            ch = _take_ticket(ticket)


@njit(cache=True)
def stage_masks(col_stage, mem_col, mem_org, mem_active, dyad_src, dyad_dst, dyad_col, masks):
    """The activity flags and stage bits of ``masks`` (act_d, act_m, act_k, act_o, bits_d, bits_m, bits_k, bits_o):
    a dyad acts when both its members are active, a collaboration until it dissolves (act_m is mem_active and act_o
    all ones: not written); bit s is set when the entity is in stage s (an organisation: OR over its active
    memberships). MUTATES act_d, act_k and the bits. (run_months sets the dyads' in its dyad pass, ``dyads_month``,
    and the rest with ``stage_bits``.)"""
    act_d, bits_d = masks[0], masks[4]
    _dyad_masks(0, len(act_d), col_stage, mem_active, dyad_src, dyad_dst, dyad_col, act_d, bits_d)
    stage_bits(col_stage, mem_col, mem_org, mem_active, masks)


@njit(cache=True)
def stage_bits(col_stage, mem_col, mem_org, mem_active, masks):
    """stage_masks but the dyads': the stage bits of memberships (in parallel chunks at scale: each writes only its
    own), the flags and bits of collaborations, and the organisations' OR (a scatter, on one thread)."""
    act_d, act_m, act_k, act_o, bits_d, bits_m, bits_k, bits_o = masks
    if len(bits_m) >= PARALLEL_WORK:
        _member_bits_parallel(col_stage, mem_col, bits_m)
    else:
        _member_bits(0, len(bits_m), col_stage, mem_col, bits_m)
    for k in range(len(col_stage)):
        act_k[k] = col_stage[k] != ST_DISSOLVED
        bits_k[k] = 1 << col_stage[k]
    bits_o[:] = 0
    for m in range(len(mem_col)):
        if mem_active[m]:
            bits_o[mem_org[m]] |= bits_m[m]


@njit(cache=True, inline="always")
def _stale_cols(need, fresh):
    """The columns of ``need`` not marked fresh, marking them fresh (the caller recomputes them)."""
    n = 0
    for c in need:
        n += not fresh[c]
    cols = np.empty(n, np.int64)
    n = 0
    for c in need:
        if not fresh[c]:
            cols[n] = c
            n += 1
            fresh[c] = True
    return cols


@njit(cache=True)
def refresh(level, D, M, K, O, topo, agg, need, fresh):
    """The aggregates a level's rules read (level -1: those of every level). ``need`` holds, for DM, DK, MK, OK,
    DO, MO, KO in that order, the columns anything reads (engine.aggregate_needs): the others are never
    computed. ``fresh`` (bool FRESH_SHAPE: aggregate, column) says which columns still equal what they would be
    recomputed to (``stale`` clears them when their sources change): those are skipped, so the numbers are the same
    as always recomputing. MUTATES the aggregate arrays and ``fresh``."""
    DM, DK, MK, OK, DO, MO, KO = agg
    mem_dyad_ptr, dyad_src, dyad_dst, dyad_col, dyad_org, mem_active, col_mem_ptr, mem_org, mem_col = topo
    if level == 4:
        return
    cols = _stale_cols(need[0], fresh[0])
    if len(cols):
        member_means_of_dyads(D, mem_dyad_ptr, dyad_src, dyad_dst, mem_active, DM, cols)
    own = mem_org[:0]  # an empty map: a membership's own column
    if level == -1 or level == 2:
        cols = (_stale_cols(need[1], fresh[1]), _stale_cols(need[2], fresh[2]), _stale_cols(need[3], fresh[3]))
        if len(cols[0]) + len(cols[1]) + len(cols[2]):
            collab_means((DM, M, O), (own, own, mem_org), col_mem_ptr, mem_active, (DK, MK, OK), cols)
    if level == -1 or level == 1:
        cols = (_stale_cols(need[4], fresh[4]), _stale_cols(need[5], fresh[5]), _stale_cols(need[6], fresh[6]))
        if len(cols[0]) + len(cols[1]) + len(cols[2]):
            org_means((DM, M, K), (own, own, mem_col), mem_org, mem_active, O.shape[1], (DO, MO, KO), cols)


@njit(cache=True)
def stale(fresh, level, cols):
    """Columns ``cols`` of ``level`` (4 dyads, 3 memberships, 2 collaborations, 1 organisations; -1 anything, e.g.
    which members are active) changed: clear the freshness of the aggregate columns computed from them. MUTATES
    fresh."""
    if level == -1:
        fresh[:] = False
        return
    for c in cols:
        if level == 4:
            fresh[0, c] = False  # DM, and DK, DO averaged from it
            fresh[1, c] = False
            fresh[4, c] = False
        elif level == 3:
            fresh[2, c] = False  # MK
            fresh[5, c] = False  # MO
        elif level == 2:
            fresh[6, c] = False  # KO
        else:
            fresh[3, c] = False  # OK


@njit(cache=True)
def _dyads_and_members(lo, hi, D, M, masks, topo, rows, rule_idx, table, S, d_reads, m_reads, hoisted, DM, dm):
    """One phase's rules for memberships lo .. hi-1 and their dyads, which are the contiguous mem_dyad_ptr[lo] ..
    mem_dyad_ptr[hi]-1 (dyads are stored by source membership): the dyads' rows (the sums their memberships share
    first, when hoisted), then the memberships' stale dyad means (``dm``: the columns and a count scratch) and their
    rows. A dyad's rows read, of what the phase changes, only its own values and its source membership's; a
    membership's only its own and its dyads'. So chunks of memberships are independent work items, and every value
    is computed exactly as level by level."""
    act_d, act_m, _, _, bits_d, bits_m, _, _ = masks
    mem_dyad_ptr, dyad_dst, mem_active = topo[0], topo[2], topo[5]
    cols_d, ptr_d, n_pre, cols_m, ptr_m = rows  # the phase's dyad and membership variables and their rows
    U0, D0, pre_idx = hoisted
    dm_cols, cnt = dm
    d0, d1 = mem_dyad_ptr[lo], mem_dyad_ptr[hi]
    if len(cols_d) and d1 > d0:
        if len(pre_idx):
            _presum_range(lo, hi, ptr_d, n_pre, rule_idx, table, S, m_reads, bits_m, U0, D0)
        pre = (U0, D0, pre_idx, n_pre)
        _rules_range(d0, d1, D, act_d, bits_d, cols_d, ptr_d, rule_idx, table, S, d_reads, pre)
    if len(cols_m):
        if len(dm_cols):
            _dyad_means_chunk(lo, hi, D, mem_dyad_ptr, dyad_dst, mem_active, cnt, DM, dm_cols)
        no_pre = (U0[:0], D0[:0], pre_idx[:0], n_pre[:0])
        _rules_range(lo, hi, M, act_m, bits_m, cols_m, ptr_m, rule_idx, table, S, m_reads, no_pre)


@njit(cache=True, parallel=True)
def _dyads_and_members_parallel(bounds, D, M, masks, topo, rows, rule_idx, table, S, d_reads, m_reads, hoisted, DM, dm):
    n_items = len(bounds) - 1
    ticket = _ticket_counter()
    for _ in prange(n_items):  # (flat tuples only: numba's parallel regions take no nested ones)
        j = _take_ticket(ticket)
        while j < n_items:
            lo, hi = bounds[j], bounds[j + 1]
            _dyads_and_members(lo, hi, D, M, masks, topo, rows, rule_idx, table, S, d_reads, m_reads, hoisted, DM, dm)
            j = _take_ticket(ticket)


@njit(cache=True)
def membership_bounds(mem_dyad_ptr, n_mem):
    """Chunks of memberships for the dyad-and-membership pass: memberships bounds[j] .. bounds[j+1]-1 hold about
    ``size`` dyads (and at most CHUNK memberships), cut only between memberships. Each cut is a binary search."""
    size = max(CHUNK, min(DYAD_CHUNK_MAX, mem_dyad_ptr[n_mem] // 8))
    ptr = mem_dyad_ptr[: n_mem + 1]
    bounds = np.empty(n_mem + 1, np.int64)
    bounds[0], n, lo = 0, 1, 0
    while lo < n_mem:
        hi = np.searchsorted(ptr, ptr[lo] + size)  # the first membership whose dyads start size or more later
        lo = max(lo + 1, min(hi, lo + CHUNK, n_mem))
        bounds[n] = lo
        n += 1
    return bounds[:n]


@njit(cache=True)
def run_phase(phase, S, O, K, M, D, masks, topo, idents, agg, table, plan, need, fresh):
    """Every rule of one phase, finest level first, each level seeing the finer levels' new values. ``fresh``: the
    aggregates' freshness flags (``refresh``); a level's rules make what is averaged from it stale. The dyads and
    memberships go together, chunk by chunk of memberships (``_dyads_and_members``): one parallel region instead
    of four (their shared sums, the dyad rows, the dyad means, the membership rows), with the same numbers."""
    DM, DK, MK, OK, DO, MO, KO = agg
    act_k, act_o, bits_k, bits_o = masks[2], masks[3], masks[6], masks[7]
    mem_dyad_ptr, dyad_src, dyad_col, dyad_org, mem_org, mem_col = topo[0], topo[1], topo[3], topo[4], topo[7], topo[8]
    own = idents[0][:0]  # an empty map: each entity reads its own column
    g_ptr, p_cols, p_mech_ptr, p_rule_idx, p_pre = plan
    n_mem, n_dyad = len(mem_org), len(dyad_src)
    gd, gm = 4 * N_PHASES + phase, 3 * N_PHASES + phase
    ad, bd, am, bm = g_ptr[gd], g_ptr[gd + 1], g_ptr[gm], g_ptr[gm + 1]
    if ad < bd or am < bm:
        stale(fresh, 4, p_cols[ad:bd])
        dm_cols = _stale_cols(need[0], fresh[0]) if am < bm else need[0][:0]  # what refresh(3) would recompute
        stale(fresh, 3, p_cols[am:bm])
        n_pre = p_pre[ad:bd]
        # a dyad's rows that read no dyad variable (the first n_pre[q]) are the same for every dyad of its source
        # membership, with the same stage bits: summed once per membership (the same sums either way); not for
        # pairs, where a membership has one dyad and nothing is shared
        hoist = ad < bd and n_dyad >= 2 * n_mem
        nq = (bd - ad) if hoist else 0
        hoisted = (np.empty((nq, n_mem)), np.empty((nq, n_mem)), dyad_src if hoist else dyad_src[:0])
        d_reads = (O, dyad_org, K, dyad_col, M, dyad_src, D, own)
        m_reads = (O, mem_org, K, mem_col, M, own, DM, own)
        cnt = np.empty(n_mem)  # scratch of the dyad means
        bounds = membership_bounds(mem_dyad_ptr, n_mem)
        n_hoisted = n_pre.sum() if hoist else 0
        rows_d = p_mech_ptr[bd] - p_mech_ptr[ad] - n_hoisted
        rows_m = p_mech_ptr[bm] - p_mech_ptr[am] + n_hoisted
        work = 2 * (n_dyad * rows_d + n_mem * rows_m) + 4 * n_dyad * len(dm_cols)  # ops: ~2 a row, ~4 a mean term
        rows = (p_cols[ad:bd], p_mech_ptr[ad : bd + 1], n_pre, p_cols[am:bm], p_mech_ptr[am : bm + 1])
        args = (D, M, masks, topo, rows, p_rule_idx, table, S, d_reads, m_reads, hoisted, DM, (dm_cols, cnt))
        if len(bounds) > 2 and work >= PARALLEL_WORK:
            _dyads_and_members_parallel(bounds, *args)
        else:
            for j in range(len(bounds) - 1):
                _dyads_and_members(bounds[j], bounds[j + 1], *args)
    none = np.empty((0, 0))
    for level in (2, 1):
        g = level * N_PHASES + phase
        a, b = g_ptr[g], g_ptr[g + 1]
        if a == b:
            continue
        refresh(level, D, M, K, O, topo, agg, need, fresh)
        cols, mptr = p_cols[a:b], p_mech_ptr[a : b + 1]
        stale(fresh, level, cols)
        no_pre = (none, none, own, p_pre[a:b])
        if level == 2:
            apply_rules(K, act_k, bits_k, cols, mptr, p_rule_idx, table, S, (OK, own, K, own, MK, own, DK, own), no_pre)
        else:
            apply_rules(O, act_o, bits_o, cols, mptr, p_rule_idx, table, S, (O, own, KO, own, MO, own, DO, own), no_pre)


@njit(cache=True, inline="always")
def _dyad_it(lo, hi, its, iv, D, dyad_it_base, dyad_col, col_stage, col_cov):
    """IT interoperability of dyads lo .. hi-1: its base value, raised by the IT interventions ``its`` (rows of iv,
    in table order) that reach the dyad's collaboration. Each dyad writes only its own value."""
    it, base, kc = D[IT, lo:hi], dyad_it_base[lo:hi], dyad_col[lo:hi]
    for i in range(hi - lo):
        x = base[i]
        for v in its:
            if col_stage[kc[i]] != ST_DISSOLVED and col_cov[kc[i]] < iv[v, 4]:
                x = max(x, iv[v, 5])
        it[i] = x


@njit(cache=True)
def apply_interventions(
    t, iv, design_cols, K, K_design, O, D, col_stage, col_cov, mem_col, mem_org, mem_active, dyad_col, dyad_it_base
):
    """Interventions in force at month t. iv rows: kind, column, start, end (-1: none), coverage, intensity. An
    intervention reaches the running collaborations whose coverage draw is below its coverage. MUTATES K, O, D.
    (run_months sets the dyads' IT in its dyad pass, ``dyads_month``, and the rest with ``interventions``.)"""
    its = interventions(t, iv, design_cols, K, K_design, O, col_stage, col_cov, mem_col, mem_org, mem_active)
    _dyad_it(0, len(dyad_it_base), its, iv, D, dyad_it_base, dyad_col, col_stage, col_cov)


@njit(cache=True)
def interventions(t, iv, design_cols, K, K_design, O, col_stage, col_cov, mem_col, mem_org, mem_active):
    """apply_interventions but the dyads' IT: returns the IT interventions in force (rows of iv, in table order).
    MUTATES K, O."""
    n_col = K.shape[1]
    for c in design_cols:
        for k in range(n_col):
            K[c, k] = K_design[c, k]
    O[CHAMPIONS, :] = 0.0
    its, n_it = np.empty(iv.shape[0], np.int64), 0  # the IT interventions in force, in table order
    for v in range(iv.shape[0]):
        kind, col, start, end, cov, level = int(iv[v, 0]), int(iv[v, 1]), iv[v, 2], iv[v, 3], iv[v, 4], iv[v, 5]
        if t < start or (end >= 0 and t >= end):
            continue
        if kind == IV_RAISE:
            for k in range(n_col):
                if col_stage[k] != ST_DISSOLVED and col_cov[k] < cov:
                    K[col, k] = max(K[col, k], level)
        elif kind == IV_MOU:
            for k in range(n_col):
                if col_stage[k] != ST_DISSOLVED and col_cov[k] < cov:
                    K[MOU, k] = 1.0
                    K[FORMALISATION, k] = max(K[FORMALISATION, k], 0.5)
        elif kind == IV_IT:
            its[n_it] = v
            n_it += 1
        else:
            for m in range(len(mem_col)):
                k = mem_col[m]
                if mem_active[m] and col_stage[k] != ST_DISSOLVED and col_cov[k] < cov:
                    O[CHAMPIONS, mem_org[m]] = max(O[CHAMPIONS, mem_org[m]], level)
    for k in range(n_col):  # formalisation may have changed (an MoU): its Table 11 derivatives follow
        K[OVERFORMAL, k] = max(0.0, K[FORMALISATION, k] - K[OPTIMUM, k])
        K[APPROPRIATE, k] = 1.0 - abs(K[FORMALISATION, k] - K[OPTIMUM, k])
    return its[:n_it]


@njit(cache=True, inline="always")
def _org_events(lo, hi, t, draws, P, O, workforce_base):
    """Turnover and workforce of organisations lo .. hi-1 (each writes only its own column of O)."""
    work, turn, base = O[WORKFORCE, lo:hi], O[TURNOVER, lo:hi], workforce_base[lo:hi]
    salt, key = draws[0][lo:hi], draws[1][lo:hi]
    for i in range(hi - lo):
        w = work[i]
        turnover = event_uniform(salt[i], t, key[i], CH_TURNOVER) < P[P_TURNOVER_RATE] * (0.5 + w)
        turn[i] = 1.0 if turnover else 0.0
        w = base[i] + P[P_WORKFORCE_PERSISTENCE] * (w - base[i])
        if event_uniform(salt[i], t, key[i], CH_SHOCK) < P[P_SHOCK_RATE]:
            w += P[P_WORKFORCE_SHOCK] * (1.0 - w)
        work[i] = w


@njit(cache=True, inline="always")
def _trust_resets(lo, hi, P, O, D, mem_org, mem_active, dyad_src, dyad_dst):
    """The trust reset of dyads lo .. hi-1 whose organisations changed leader (each writes only its own trust)."""
    trust, initial, src, dst, turn = (
        D[TRUST, lo:hi],
        D[INITIAL_TRUST, lo:hi],
        dyad_src[lo:hi],
        dyad_dst[lo:hi],
        O[TURNOVER],
    )
    for i in range(hi - lo):
        s, r = src[i], dst[i]
        if mem_active[s] and mem_active[r] and (turn[mem_org[s]] > 0.0 or turn[mem_org[r]] > 0.0):
            trust[i] -= P[P_TRUST_RESET] * max(0.0, trust[i] - initial[i])


@njit(cache=True, parallel=True)
def _org_events_parallel(t, draws, P, O, workforce_base):
    n = O.shape[1]
    n_items = (n + CHUNK - 1) // CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * CHUNK
            _org_events(lo, min(n, lo + CHUNK), t, draws, P, O, workforce_base)
            ch = _take_ticket(ticket)


@njit(cache=True)
def events(t, draws, P, O, K, workforce_base, col_stage, col_quick_win_done):
    """Stochastic events of month t (counter-based draws): leadership turnover, workforce shocks, task failure,
    quick wins, and the decay of the inappropriate-stopping shock. MUTATES O, K, col_quick_win_done. The trust reset
    that a leadership change causes (rf-leadership-turnover-reset) follows in the dyad pass (``dyads_month``).
    Organisations run in parallel chunks at scale: each writes only its own values. ``draws`` = (salt and key of
    each organisation, salt and key of each collaboration): the draw of entity e is event_uniform(salt[e], t,
    key[e], channel), its run's salt and its index in its run, so runs joined into one call draw as they would
    alone (engine.advance_together)."""
    n_org = O.shape[1]
    if 6 * n_org >= PARALLEL_WORK:  # two counter-based draws an organisation: 1.2 ns, about 6 of PARALLEL_WORK's ops
        _org_events_parallel(t, draws, P, O, workforce_base)
    else:
        _org_events(0, n_org, t, draws, P, O, workforce_base)
    col_salt, col_key = draws[2], draws[3]
    for k in range(K.shape[1]):
        running = col_stage[k] != ST_DISSOLVED
        fail = (
            running
            and col_stage[k] >= ST_IMPLEMENTATION
            and event_uniform(col_salt[k], t, col_key[k], CH_FAILURE) < P[P_FAILURE_RATE]
        )
        K[FAILURE, k] = 1.0 if fail else 0.0
        win = running and not col_quick_win_done[k] and K[TASK, k] >= P[P_QUICK_WIN]
        K[QUICK_WINS, k] = 1.0 if win else 0.0
        if win:
            col_quick_win_done[k] = True
        K[STOPPING, k] *= P[P_STOPPING_DECAY]


@njit(cache=True)
def derived_context(t, P, K, col_formed, MK, OK):
    """Derived variables of the collaborations in month t, read from their means (refreshed by the caller); the
    dyads' (partner reciprocation) are set in the dyad pass (``dyads_month``). MUTATES K."""
    for k in range(K.shape[1]):
        age = float(t - col_formed[k])
        K[AGE, k] = age / (age + P[P_AGE_HALF])
        impl = max(0.0, t - col_formed[k] - P[P_CONNECTING] - P[P_PLANNING])
        expected = min(1.0, P[P_PACE] * impl)
        K[SLOW, k] = min(1.0, max(0.0, 1.0 - K[TASK, k] / expected)) if expected > 0 else 0.0
        K[ABSENCE, k] = OK[TURNOVER, k]
        K[INERTIA, k] = 1.0 - MK[BEHAVIOUR, k]


@njit(cache=True, inline="always")
def _reciprocation(lo, hi, M, D, dyad_dst):
    """Partner reciprocation of dyads lo .. hi-1: the partner member's behaviour (each writes only its own value)."""
    rec, dst, behaviour = D[RECIPROCATION, lo:hi], dyad_dst[lo:hi], M[BEHAVIOUR]
    for i in range(hi - lo):
        rec[i] = behaviour[dst[i]]


@njit(cache=True, inline="always")
def _dyads_month(lo, hi, its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d):
    mem_dyad_ptr, dyad_src, dyad_dst, dyad_col, dyad_org, mem_active, col_mem_ptr, mem_org, mem_col = topo
    _dyad_it(lo, hi, its, iv, D, dyad_it_base, dyad_col, col_stage, col_cov)
    _trust_resets(lo, hi, P, O, D, mem_org, mem_active, dyad_src, dyad_dst)
    _dyad_masks(lo, hi, col_stage, mem_active, dyad_src, dyad_dst, dyad_col, act_d, bits_d)
    _reciprocation(lo, hi, M, D, dyad_dst)


@njit(cache=True, parallel=True)
def _dyads_month_parallel(its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d):
    n = D.shape[1]
    n_items = (n + CHUNK - 1) // CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * CHUNK
            _dyads_month(
                lo, min(n, lo + CHUNK), its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d
            )
            ch = _take_ticket(ticket)


@njit(cache=True)
def dyads_month(its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d):
    """The dyads' part of a month's start, in one pass: IT interoperability under the IT interventions ``its``
    (``interventions``), the trust reset of a leadership change (after ``events``), the activity flags and stage
    bits (``stage_masks``) and partner reciprocation (the partner member's behaviour). None of them reads what
    another writes, so one pass gives what four would. MUTATES D (IT, trust, reciprocation), act_d, bits_d. In
    parallel chunks at scale: each dyad writes only its own values."""
    n = D.shape[1]
    if 30 * n >= PARALLEL_WORK:  # measured 5 ns a dyad at 180,000 dyads: about 30 of PARALLEL_WORK's ops
        _dyads_month_parallel(its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d)
    else:
        _dyads_month(0, n, its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d)


@njit(cache=True, inline="always")
def _threshold(lo, hi, P, M):
    h, above, risk, faith = P[P_HYSTERESIS], M[ABOVE, lo:hi], M[RISK, lo:hi], M[FAITH, lo:hi]
    for i in range(hi - lo):
        if above[i] > 0.5:
            past = risk[i] >= P[P_THRESHOLD_RISK] - h and faith[i] >= P[P_THRESHOLD_FAITH] - h
        else:
            past = risk[i] >= P[P_THRESHOLD_RISK] and faith[i] >= P[P_THRESHOLD_FAITH]
        above[i] = 1.0 if past else 0.0


@njit(cache=True, parallel=True)
def _threshold_parallel(P, M):
    n = M.shape[1]
    n_items = (n + CHUNK - 1) // CHUNK
    ticket = _ticket_counter()
    for _ in prange(n_items):
        ch = _take_ticket(ticket)
        while ch < n_items:
            lo = ch * CHUNK
            _threshold(lo, min(n, lo + CHUNK), P, M)
            ch = _take_ticket(ticket)


@njit(cache=True)
def threshold(P, M):
    """gl-threshold-synergy: a member crosses the threshold when risk tolerance and faith both reach theirs, and,
    past it (a "novel state"), stays past until either falls more than the hysteresis below its threshold
    (docs/decisions.md 25). MUTATES M. Chunks of members in parallel at scale (each writes only its own value)."""
    if M.shape[1] >= PARALLEL_WORK:
        _threshold_parallel(P, M)
    else:
        _threshold(0, M.shape[1], P, M)


@njit(cache=True)
def life_cycle(
    t, P, K, M, col_stage, col_stage_since, col_synergy_month, col_mem_ptr, mem_col, mem_active, mem_stall, MK
):
    """Stage transitions, synergy and its loss, voluntary leaving and dissolution at the end of month t. MK must
    be fresh. MUTATES the stage and membership arrays and K (inappropriate stopping). Returns True when a member left
    or a collaboration dissolved (the aggregates' sources changed)."""
    changed = False
    for k in range(K.shape[1]):
        if col_stage[k] == ST_DISSOLVED:
            continue
        if col_stage[k] == ST_CONNECTING and t + 1 - col_stage_since[k] >= P[P_CONNECTING]:
            col_stage[k], col_stage_since[k] = ST_PLANNING, t + 1
        if col_stage[k] == ST_PLANNING and t + 1 - col_stage_since[k] >= P[P_PLANNING]:
            col_stage[k], col_stage_since[k] = ST_IMPLEMENTATION, t + 1
        enough = MK[ABOVE, k] >= P[P_SYNERGY_SHARE]
        if col_stage[k] == ST_IMPLEMENTATION and enough:
            col_stage[k], col_stage_since[k] = ST_MAINTENANCE, t + 1
        elif col_stage[k] == ST_MAINTENANCE and not enough:
            col_stage[k], col_stage_since[k] = ST_IMPLEMENTATION, t + 1
        if col_stage[k] == ST_MAINTENANCE and col_synergy_month[k] < 0:
            col_synergy_month[k] = t + 1
    # fn-progress-stall-dissolution: voluntary members leave when faith stays low; mandated members cannot
    for m in range(M.shape[1]):
        low = mem_active[m] and M[FAITH, m] < P[P_LEAVE_FAITH]
        mem_stall[m] = mem_stall[m] + 1 if low else 0
        if low and K[MANDATED, mem_col[m]] == 0.0 and mem_stall[m] >= P[P_LEAVE_AFTER]:
            mem_active[m] = False
            K[STOPPING, mem_col[m]] = 1.0
            changed = True
    for k in range(K.shape[1]):
        if col_stage[k] == ST_DISSOLVED:
            continue
        n = 0
        for m in range(col_mem_ptr[k], col_mem_ptr[k + 1]):
            n += mem_active[m]
        if n < 2:
            col_stage[k], col_stage_since[k] = ST_DISSOLVED, t + 1
            for m in range(col_mem_ptr[k], col_mem_ptr[k + 1]):
                mem_active[m] = False
            changed = True
    return changed


@njit(cache=True)
def record(row, rec, rec_src, rec_col, col_stage, col_mem_ptr, mem_active, K, DK, MK):
    """One month into rec[row]: stage, active members, then the fields (rec_src: 0 DK, 1 MK, 2 K) in order; the
    last field is the maturity score (mean of the listed elements). NaN for collaborations without members. Field
    by field (rows of rec stream); the score adds the elements in field order, as one collaboration at a time."""
    nf, n_col, out = len(rec_src), K.shape[1], rec[row]
    for k in range(n_col):
        n = 0
        for m in range(col_mem_ptr[k], col_mem_ptr[k + 1]):
            n += mem_active[m]
        out[0, k] = col_stage[k]
        out[1, k] = n
    members, score = out[1], out[2 + nf - 9]  # the last nine fields are the maturity elements: summed in place
    score[:] = 0.0
    for f in range(nf):
        src = rec_src[f]
        x = DK[rec_col[f]] if src == 0 else (MK[rec_col[f]] if src == 1 else K[rec_col[f]])
        if f >= nf - 9:
            for k in range(n_col):
                score[k] += x[k]
        else:
            y = out[2 + f]
            for k in range(n_col):
                y[k] = x[k] if members[k] > 0 else np.nan
    for k in range(n_col):
        score[k] = score[k] / 9.0 if members[k] > 0 else np.nan


@njit(cache=True)
def run_months(
    m0,
    m1,
    draws,
    P,
    S_sched,
    funding_at,
    iv,
    design_cols,
    S,
    O,
    K,
    K_design,
    M,
    D,
    col_stage,
    col_formed,
    col_stage_since,
    col_synergy_month,
    col_quick_win_done,
    col_cov,
    col_mem_ptr,
    mem_org,
    mem_col,
    mem_active,
    mem_stall,
    mem_dyad_ptr,
    dyad_src,
    dyad_dst,
    dyad_col,
    dyad_org,
    dyad_it_base,
    workforce_base,
    table,
    plan,
    agg,
    rec,
    rec_src,
    rec_col,
    need,
):
    """Months m0 .. m1-1, each: system values, funding end, interventions, events, derived context, the rule
    phases (context, mechanisms, behaviour with the threshold, outcomes), life cycle, record into rec[t - m0].
    No collaboration forms inside (the engine splits runs at formation months). MUTATES the state arrays."""
    DM, DK, MK, OK, DO, MO, KO = agg
    n_org, n_col, n_mem, n_dyad = O.shape[1], K.shape[1], M.shape[1], D.shape[1]
    ident_d = np.arange(n_dyad)
    ident_m = np.arange(n_mem)
    ident_k = np.arange(n_col)
    ident_o = np.arange(n_org)
    act_d = np.zeros(n_dyad, np.bool_)
    act_k = np.zeros(n_col, np.bool_)
    act_o = np.ones(n_org, np.bool_)
    bits_d, bits_m = np.zeros(n_dyad, np.int32), np.zeros(n_mem, np.int32)
    bits_k, bits_o = np.zeros(n_col, np.int32), np.zeros(n_org, np.int32)
    fresh = np.zeros(FRESH_SHAPE, np.bool_)  # the aggregates handed in may be stale
    topo = (mem_dyad_ptr, dyad_src, dyad_dst, dyad_col, dyad_org, mem_active, col_mem_ptr, mem_org, mem_col)
    masks = (act_d, mem_active, act_k, act_o, bits_d, bits_m, bits_k, bits_o)
    idents = (ident_d, ident_m, ident_k, ident_o)
    for t in range(m0, m1):
        S[:] = S_sched[t]
        if funding_at[t]:
            K_design[FUNDING, :] = 0.0
        its = interventions(t, iv, design_cols, K, K_design, O, col_stage, col_cov, mem_col, mem_org, mem_active)
        events(t, draws, P, O, K, workforce_base, col_stage, col_quick_win_done)
        dyads_month(its, iv, P, O, M, D, dyad_it_base, topo, col_stage, col_cov, act_d, bits_d)
        stage_bits(col_stage, mem_col, mem_org, mem_active, masks)
        stale(fresh, 4, (IT, TRUST, RECIPROCATION))  # interventions, events and the dyad pass move these dyad values,
        stale(fresh, 2, ALL_K)  # and collaboration and organisation values
        stale(fresh, 1, ALL_O)
        refresh(2, D, M, K, O, topo, agg, need, fresh)
        derived_context(t, P, K, col_formed, MK, OK)
        stale(fresh, 2, (AGE, SLOW, ABSENCE, INERTIA))
        for phase in (1, 2, 3, 4):  # context, mechanisms, behaviour, outcomes
            if phase == 3:
                threshold(P, M)
                stale(fresh, 3, (ABOVE,))
            run_phase(phase, S, O, K, M, D, masks, topo, idents, agg, table, plan, need, fresh)
        refresh(2, D, M, K, O, topo, agg, need, fresh)
        if life_cycle(
            t, P, K, M, col_stage, col_stage_since, col_synergy_month, col_mem_ptr, mem_col, mem_active, mem_stall, MK
        ):
            stale(fresh, -1, ALL_O)  # members left or collaborations dissolved: every aggregate
        refresh(2, D, M, K, O, topo, agg, need, fresh)
        record(t - m0, rec, rec_src, rec_col, col_stage, col_mem_ptr, mem_active, K, DK, MK)
