"""All numba code: pure functions on arrays. Nothing here allocates state or draws random numbers.

Shapes: level arrays are (n_vars, n_entities) float64 (structure of arrays: each variable is contiguous). Index
arrays are int32/int64. Each kernel states what it mutates. Loops over entities are ``prange``: every entity
writes only its own column, so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from collabsim.rules import ALL_STAGES_MASK as ALL_STAGES


@njit(cache=True, inline="always")
def _context(r, e, term_ptr, term_level, term_col, term_neg, S, O, Oi, K, Ki, M, Mi, D, Di):
    """Product of rule r's context terms for entity e; level arrays are indexed through the per-level maps."""
    c = 1.0
    for t in range(term_ptr[r], term_ptr[r + 1]):
        lv = term_level[t]
        col = term_col[t]
        if lv == 0:
            v = S[col]
        elif lv == 1:
            v = O[col, Oi[e]]
        elif lv == 2:
            v = K[col, Ki[e]]
        elif lv == 3:
            v = M[col, Mi[e]]
        else:
            v = D[col, Di[e]]
        if term_neg[t]:
            v = 1.0 - v
        c *= v
    return c


@njit(cache=True, parallel=True)
def apply_rules(
    X,
    active,
    stage_bits,
    mech_cols,
    mech_ptr,
    rule_idx,
    sign,
    weight,
    stage_mask,
    term_ptr,
    term_level,
    term_col,
    term_neg,
    S,
    O,
    Oi,
    K,
    Ki,
    M,
    Mi,
    D,
    Di,
    out,
):
    """One synchronous rule update of the variables ``mech_cols`` of every active entity of one level.

    X: (n_vars, n) the level's array, MUTATED in rows mech_cols for active entities. stage_bits: int32 (n,), bit s
    set when the entity is in stage s (an organisation: the stages of its running collaborations). A row acts when
    it acts in every stage (mask ALL_STAGES) or in one of the entity's stages. Rows of
    rule_idx[mech_ptr[q]:mech_ptr[q+1]] move mech_cols[q], in table order. Every context is read before any value
    is written (``out`` is an (len(mech_cols), n) scratch array), so rule order inside a phase
    does not matter. x <- x + (1 - x)(1 - exp(-up)) - x(1 - exp(-down)) keeps x in [0, 1].
    """
    n = X.shape[1]
    nq = len(mech_cols)
    for e in prange(n):
        if not active[e]:
            continue
        bits = stage_bits[e]
        for q in range(nq):
            up = 0.0
            down = 0.0
            for p in range(mech_ptr[q], mech_ptr[q + 1]):
                r = rule_idx[p]
                if stage_mask[r] != ALL_STAGES and (stage_mask[r] & bits) == 0:
                    continue
                c = weight[r] * _context(r, e, term_ptr, term_level, term_col, term_neg, S, O, Oi, K, Ki, M, Mi, D, Di)
                if sign[r] > 0:
                    up += c
                else:
                    down += c
            x = X[mech_cols[q], e]
            out[q, e] = x - (1.0 - x) * math.expm1(-up) + x * math.expm1(-down)
    for e in prange(n):
        if active[e]:
            for q in range(nq):
                X[mech_cols[q], e] = out[q, e]


@njit(cache=True)
def member_means_of_dyads(D, mem_dyad_ptr, dyad_src, dyad_dst, mem_active, DM):
    """DM[:, m] = mean of D over the active dyads of membership m (0 when none). MUTATES DM (n_dyad_vars, n_mem)."""
    nv = D.shape[0]
    for m in range(len(mem_active)):
        cnt = 0
        for v in range(nv):
            DM[v, m] = 0.0
        if not mem_active[m]:
            continue
        for d in range(mem_dyad_ptr[m], mem_dyad_ptr[m + 1]):
            if mem_active[dyad_dst[d]]:
                cnt += 1
                for v in range(nv):
                    DM[v, m] += D[v, d]
        if cnt > 0:
            for v in range(nv):
                DM[v, m] /= cnt


@njit(cache=True)
def collab_means(X, idx, col_mem_ptr, mem_active, out):
    """out[:, k] = mean over the active members m of k of X[:, idx[m]] (0 when none). MUTATES out (nv, n_col)."""
    nv = X.shape[0]
    for k in range(len(col_mem_ptr) - 1):
        cnt = 0
        for v in range(nv):
            out[v, k] = 0.0
        for m in range(col_mem_ptr[k], col_mem_ptr[k + 1]):
            if mem_active[m]:
                cnt += 1
                for v in range(nv):
                    out[v, k] += X[v, idx[m]]
        if cnt > 0:
            for v in range(nv):
                out[v, k] /= cnt


@njit(cache=True)
def org_means(X, idx, mem_org, mem_active, n_org, out):
    """out[:, i] = mean over the active memberships m of organisation i of X[:, idx[m]], in membership order
    (0 when none). MUTATES out (nv, n_org)."""
    nv = X.shape[0]
    cnt = np.zeros(n_org, np.int64)
    out[:, :] = 0.0
    for m in range(len(mem_org)):
        if mem_active[m]:
            i = mem_org[m]
            cnt[i] += 1
            for v in range(nv):
                out[v, i] += X[v, idx[m]]
    for i in range(n_org):
        if cnt[i] > 0:
            for v in range(nv):
                out[v, i] /= cnt[i]
