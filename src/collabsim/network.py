"""Collaborations, memberships and dyads: who partners with whom, and the context of each pair.

Voluntary partnering (organisations propose to, and may be declined by, partners chosen by expected initial trust,
proximity and complementarity) and mandated assignment by a regulator (geographic footprints, or a lower performer
buddied with a better one). Partner search uses a k-d tree (a scan of every pair below 34 free organisations), so
it is O(N log N), never O(N^2); scoring the candidates and the proposals are one compiled call per search round.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from collabsim.population import Population
from collabsim.rng import splitmix_pair
from collabsim.rules import CompiledRules
from collabsim.scenario import PARTNERSHIP_TYPES
from collabsim.state import CollabDesign
from collabsim.variables import COLUMN, Level, names_at

TYPE_NAMES = tuple(PARTNERSHIP_TYPES)
FORMALISATION_LEVEL = {"none": 0.0, "mou": 0.5, "contract": 1.0}
MAX_CANDIDATES = 32  # nearest free organisations a proposer considers
INTERVENTION_VARS = {  # intervention type -> collaboration variable it raises (mou, IT, champions act otherwise)
    "peer_review": "peer_review",
    "external_broker": "external_broker",
    "stakeholder_involvement": "stakeholder_involvement",
    "joint_appointments": "joint_appointments",
    "continuous_evaluation": "continuous_evaluation",
    "cultural_integration_plan": "cultural_integration_plan",
}


# The dyad context of a pair (who the partners are, not what happens between them), in the rows of _pair_context.
PAIR_CONTEXT = (
    "geographic_proximity",
    "cultural_distance",
    "it_interoperability",
    "history_of_competition",
    "prior_successful_collaboration",
    "size_discrepancy",
    "performance_gap",
    "partner_reputation",
)
_PROXIMITY = PAIR_CONTEXT.index("geographic_proximity")
_SIZE, _PERFORMANCE, _REPUTATION = (COLUMN[n] for n in ("organisation_size", "baseline_performance", "reputation"))


@njit(cache=True, inline="always")
def _context_value(q, a, b, orgs, p, salt):
    """Dyad context variable q (PAIR_CONTEXT order) of the ordered pair a -> b of organisations."""
    x, y, sector, culture, it_system, O = orgs
    scale, culture_gap, competition, prior = p
    cross = 1.0 if sector[a] != sector[b] else 0.0
    lo, hi = np.uint64(min(a, b)), np.uint64(max(a, b))  # pair draws depend on the unordered pair
    if q == 0:  # geographic proximity
        return np.exp(-np.hypot(x[a] - x[b], y[a] - y[b]) / scale)
    if q == 1:  # cultural distance
        return min(1.0, abs(culture[a] - culture[b]) + culture_gap * cross)
    if q == 2:  # IT interoperability
        return 1.0 if it_system[a] == it_system[b] else 0.0
    if q == 3:  # history of competition: mostly between organisations of the same sector (Ch5); half as likely across
        return min(1.0, 2.0 * competition * splitmix_pair(salt, lo, hi, np.uint64(1))) * (1.0 - cross + 0.5 * cross)
    if q == 4:  # prior successful collaboration
        return 1.0 if splitmix_pair(salt, lo, hi, np.uint64(2)) < prior else 0.0
    if q == 5:  # size discrepancy
        return abs(O[_SIZE, a] - O[_SIZE, b])
    if q == 6:  # performance gap
        return max(0.0, O[_PERFORMANCE, b] - O[_PERFORMANCE, a])
    return O[_REPUTATION, b]  # partner reputation


@njit(cache=True)
def _pair_context(i, j, want, orgs, p, salt):
    """The dyad context of the ordered pairs i[n] -> j[n]: the rows of PAIR_CONTEXT flagged in ``want`` (the others
    are NaN). Every variable but partner_reputation and performance_gap is symmetric: the same bits either way."""
    out = np.full((len(want), len(i)), np.nan)
    for q in range(len(want)):
        if want[q]:
            for n in range(len(i)):
                out[q, n] = _context_value(q, i[n], j[n], orgs, p, salt)
    return out


@dataclass(frozen=True, eq=False)
class PairContext:
    """The dyad context of pairs of one population: ``ctx(i, j)`` -> {variable: array} for the ordered pairs i -> j
    (arrays of organisation ids). Its fields are what the compiled context reads (partner search passes them on)."""

    orgs: tuple[np.ndarray, ...]  # x, y, sector, culture, it_system, O
    params: tuple[float, float, float, float]  # proximity scale, cross-sector culture gap, competition, prior
    salt: np.uint64

    def __call__(self, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        every = np.ones(len(PAIR_CONTEXT), np.bool_)
        return dict(zip(PAIR_CONTEXT, _pair_context(i, j, every, self.orgs, self.params, self.salt), strict=True))


def dyad_context(pop: Population, O: np.ndarray, scenario, salt: np.uint64) -> PairContext:
    """The dyad context of pairs of ``pop`` (organisation variables read from O when called)."""
    p = scenario.population
    orgs = (pop.x, pop.y, pop.sector, pop.culture, pop.it_system, O)
    params = (p.proximity_scale_km, p.cross_sector_culture_gap, p.history_of_competition, p.prior_collaboration)
    return PairContext(orgs, params, np.uint64(salt))


def formalisation_optimum(type_name: str, mandated: bool) -> float:
    """The formalisation that suits a collaboration (docs/decisions.md): at least its type's usual formalisation
    (001 Table 2: a federation needs an MoU, a joint venture a contract), at least its integration depth, and at
    least 0.6 when mandated (001 Table 11: mandated or integrative types need legal frameworks; voluntary,
    non-integrative ones are hurt by too many)."""
    info = PARTNERSHIP_TYPES[type_name]
    return max(FORMALISATION_LEVEL[info.usual_formalisation], info.integration_depth, 0.6 if mandated else 0.0)


def funding_ended(scenario, month: int) -> bool:
    """True once a scheduled funding_end has passed: collaborations formed later get no external funding either."""
    return any(ev.type == "funding_end" and ev.month <= month for ev in scenario.events.schedule)


def collab_values(
    scenario, type_name: str, mandated: bool, formalisation: str | None = None, month: int = 0
) -> dict[str, float]:
    """Collaboration-level design variables shared by every new collaboration of one type (the group-dependent
    ones, cross_sector and number_of_organisations, are added by ``build_design``)."""
    pa = scenario.partnering
    info = PARTNERSHIP_TYPES[type_name]
    if formalisation is None or formalisation == "type_default":
        formalisation = info.usual_formalisation
    f = FORMALISATION_LEVEL[formalisation]
    return {
        "mandated": float(mandated),
        "integration_depth": info.integration_depth,
        "formalisation": f,
        "mou": float(formalisation == "mou"),
        "binding_contract": float(formalisation == "contract"),
        "buddying": float(type_name == "buddying"),
        "ambition_level": pa.ambition,
        "role_clarity": pa.role_clarity,
        "accountability_arrangements": pa.accountability,
        "conflict_resolution_constructiveness": pa.conflict_resolution,
        "external_broker": pa.external_broker,
        "stakeholder_involvement": pa.stakeholder_involvement,
        "continuous_evaluation": pa.evaluation,
        "evaluation_dissemination": pa.evaluation,
        "external_funding": 0.0 if funding_ended(scenario, month) else pa.funding,
        "relationship_building": pa.relationship_building,
        "vision_clarity": pa.vision_clarity,
        # constant per collaboration: the inverted U of ambition and the type's formalisation optimum (Table 11)
        "aim_unambitiousness": max(0.0, 1.0 - 2.0 * pa.ambition),
        "overambition": max(0.0, 2.0 * pa.ambition - 1.0),
        "ambition_appropriateness": 1.0 - abs(2.0 * pa.ambition - 1.0),
        "confidence_weight": max(float(mandated), info.integration_depth),
        "formalisation_optimum": (opt := formalisation_optimum(type_name, mandated)),
        "overformalisation": max(0.0, f - opt),
        "formalisation_appropriateness": 1.0 - abs(f - opt),
    }


@njit(cache=True)
def _expected_trust(a, ctx, plan, scalars, O, baseline):
    """Initial trust the formation rows (``plan``, see formation_plan) would give pairs whose trusting side is
    organisation a[n] and whose dyad context is ctx[:, n]: the kernels' update form, so choosing partners by expected
    initial trust uses the theory's own rows. Each row's product runs left to right over its terms."""
    weight, sign, term_ptr, term_src, term_idx, term_neg = plan
    up, down = np.zeros(len(a)), np.zeros(len(a))
    for r in range(len(weight)):
        for n in range(len(a)):
            c = weight[r]
            for t in range(term_ptr[r], term_ptr[r + 1]):
                k = term_idx[t]
                v = scalars[k] if term_src[t] == 0 else (O[k, a[n]] if term_src[t] == 1 else ctx[k, n])
                c = c * (1.0 - v if term_neg[t] else v)
            if sign[r] > 0:
                up[n] += c
            else:
                down[n] += c
    x = baseline
    out = np.empty(len(a))
    for n in range(len(a)):
        out[n] = x - (1.0 - x) * np.expm1(-up[n]) + x * np.expm1(-down[n])
    return out


def candidate_pairs(x: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest MAX_CANDIDATES + 1 points (itself included) closer than ``radius``: (rows, cols) by row,
    nearest first. A k-d tree (O(N log N)); a plain scan when there are at most that many points, where every point
    within the radius is a candidate and building a tree costs 30-50 us a search round (most rounds of a small
    population have a handful of free organisations). Both give the same pairs; only points at exactly equal
    distances may come in another order (the tree's is not by index), which partner search uses only to break
    exact ties of score."""
    if len(x) <= MAX_CANDIDATES + 1:
        return _pairs_within(x, y, radius)
    points = np.column_stack([x, y])
    dist, nbr = cKDTree(points).query(points, k=MAX_CANDIDATES + 1, distance_upper_bound=radius)
    rows, slots = np.nonzero(np.isfinite(dist))  # the query pads missing neighbours with infinite distance
    return np.ascontiguousarray(rows), nbr[rows, slots]  # (contiguous, as the scan's: one compiled _propose)


@njit(cache=True)
def _pairs_within(x, y, radius):
    """Every pair (a, b) with distance < radius (strictly, as cKDTree's upper bound), by a, then nearest b first
    (equal distances by index)."""
    n = len(x)
    rows, cols = np.empty(n * n, np.int64), np.empty(n * n, np.int64)
    d2 = np.empty(n)
    m = 0
    for a in range(n):
        for b in range(n):
            dx, dy = x[b] - x[a], y[b] - y[a]
            d2[b] = dx * dx + dy * dy
        for b in np.argsort(d2, kind="mergesort"):
            if d2[b] >= radius * radius:
                break
            rows[m], cols[m] = a, b
            m += 1
    return rows[:m], cols[:m]


def voluntary_groups(
    scenario,
    pop: Population,
    O: np.ndarray,
    free: np.ndarray,
    rng: np.random.Generator,
    rules: CompiledRules,
    dyad_ctx: PairContext,
    S_values: dict[str, float],
    type_name: str,
) -> list[np.ndarray]:
    """Free organisations propose partnerships; invitees accept when their expected trust in the proposer is high
    enough. Candidates: the nearest free organisations within the search radius, scored by expected initial trust,
    proximity and complementarity (a partner strong where the proposer is weak, as in the peer-review pairing).
    Proposers take turns in random order (``rng``)."""
    pa = scenario.partnering
    idx = np.flatnonzero(free)
    if len(idx) < 2:
        return []
    plan, scalar_names, want = formation_plan(rules)
    known = {**S_values, **collab_values(scenario, type_name, False, pa.formalisation)}
    scalars = np.array([known.get(name, 0.5) for name in scalar_names], float)  # not known yet: 0.5
    rows, cols = candidate_pairs(pop.x[idx], pop.y[idx], pa.search_radius_km)
    members, ptr = _propose(
        idx,
        rows,
        cols,
        rng.permutation(idx),
        free,
        pa.group_size,
        pa.acceptance_threshold,
        scenario.dynamics.baseline_trust,
        plan,
        scalars,
        want,
        dyad_ctx.orgs,
        dyad_ctx.params,
        dyad_ctx.salt,
    )
    return [members[a:b] for a, b in pairwise(ptr.tolist())]


@njit(cache=True)
def _propose(idx, rows, cols, turns, free, group_size, threshold, baseline, plan, scalars, want, orgs, p, salt):
    """voluntary_groups' choices, compiled: the free organisations ``idx`` with candidates idx[cols] of proposer
    idx[rows] (by row, nearest first), proposing in the order ``turns``. A proposer ranks its candidates by score,
    best first (ties: nearest first), invites its best group_size - 1 still-free ones, and forms a group with those
    whose expected trust in it reaches the threshold. Returns the groups' members, proposer first, and their
    offsets."""
    O = orgs[5]
    keep = idx[rows] != idx[cols]
    rows = rows[keep]
    i, j = idx[rows], idx[cols[keep]]
    forward = want.copy()
    forward[_PROXIMITY] = True
    ctx = _pair_context(i, j, forward, orgs, p, salt)
    score = _expected_trust(i, ctx, plan, scalars, O, baseline) + ctx[_PROXIMITY]
    for n in range(len(i)):
        score[n] += abs(O[_PERFORMANCE, j[n]] - O[_PERFORMANCE, i[n]])
    # the invitee's view of the proposer decides acceptance
    accepts = _expected_trust(j, _pair_context(j, i, want, orgs, p, salt), plan, scalars, O, baseline) >= threshold
    start = np.searchsorted(rows, np.arange(len(idx) + 1))
    order = np.empty(len(rows), np.int64)
    for q in range(len(idx)):  # each proposer's candidates, best first; a stable sort keeps ties nearest first
        order[start[q] : start[q + 1]] = start[q] + np.argsort(-score[start[q] : start[q + 1]], kind="mergesort")
    position = np.full(len(free), -1)
    position[idx] = np.arange(len(idx))
    is_free = free.copy()
    members, ptr = np.empty(len(idx), np.int32), np.zeros(len(idx) + 1, np.int64)
    n_groups = 0
    for proposer in turns:
        if not is_free[proposer]:
            continue
        q, m = position[proposer], ptr[n_groups]
        members[m] = proposer
        invited = chosen = 0
        for c in order[start[q] : start[q + 1]]:
            if invited == group_size - 1:
                break
            if is_free[j[c]]:
                invited += 1
                if accepts[c]:
                    chosen += 1
                    members[m + chosen] = j[c]
        if chosen:
            is_free[members[m : m + 1 + chosen]] = False
            n_groups += 1
            ptr[n_groups] = m + 1 + chosen
    return members[: ptr[n_groups]], ptr[: n_groups + 1]


# id(rules) -> (rules, what formation_plan returns); holding the rules keeps the id from being reused
_FORMATION_PLANS: dict[int, tuple[CompiledRules, tuple]] = {}


def formation_plan(rules: CompiledRules) -> tuple[tuple[np.ndarray, ...], tuple[str, ...], np.ndarray]:
    """The rows moving initial trust as arrays for _expected_trust, once per compiled rule table: weight, sign,
    term offsets, and for each term where it reads (0: a scalar slot, 1: the trusting organisation's variable, a row
    of O, 2: the pair's context, a row of PAIR_CONTEXT), which one and whether negated. Also the scalar slots'
    variable names (system and collaboration design values, read per round; any other variable is not known yet)
    and the pair context the rows read."""
    hit = _FORMATION_PLANS.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    trust_rows = [r for r in rules.rows if r.mechanism == "initial_trust"]
    org = set(names_at(Level.ORG))
    scalar_names: list[str] = []
    terms = []  # (source, which, negated) of every term, row by row
    want = np.zeros(len(PAIR_CONTEXT), np.bool_)
    for r in trust_rows:
        for name, negated in r.terms:
            if name in org:
                terms.append((1, COLUMN[name], negated))
            elif name in PAIR_CONTEXT:
                terms.append((2, PAIR_CONTEXT.index(name), negated))
                want[PAIR_CONTEXT.index(name)] = True
            else:
                if name not in scalar_names:
                    scalar_names.append(name)
                terms.append((0, scalar_names.index(name), negated))
    src, col, neg = zip(*terms, strict=True) if terms else ((), (), ())
    plan = (
        np.array([r.weight for r in trust_rows], float),
        np.array([r.sign for r in trust_rows], np.int64),
        np.concatenate([[0], np.cumsum([len(r.terms) for r in trust_rows])]).astype(np.int64),
        np.array(src, np.int64),
        np.array(col, np.int64),
        np.array(neg, np.bool_),
    )
    if len(_FORMATION_PLANS) >= 64:
        _FORMATION_PLANS.clear()
    _FORMATION_PLANS[id(rules)] = (rules, (plan, tuple(scalar_names), want))
    return plan, tuple(scalar_names), want


def morton_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Organisations ordered along a Z-order (Morton) curve: neighbours in space are neighbours in the order."""

    def spread(v):
        v = v.astype(np.uint64) & np.uint64(0xFFFF)
        for s, m in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(s))) & np.uint64(m)
        return v

    span = max(np.ptp(x), np.ptp(y), 1e-12)
    qx = ((x - x.min()) / span * 65535).astype(np.uint64)
    qy = ((y - y.min()) / span * 65535).astype(np.uint64)
    return np.argsort(spread(qx) | (spread(qy) << np.uint64(1)), kind="stable")


def geographic_groups(pop: Population, group_size: int) -> list[np.ndarray]:
    """A regulator's footprints: consecutive runs of the Morton order, a short last run joining the one before."""
    order = morton_order(pop.x, pop.y).astype(np.int32)
    groups = [order[s : s + group_size] for s in range(0, len(order), group_size)]
    if len(groups) > 1 and len(groups[-1]) < 2:
        last = groups.pop()
        groups[-1] = np.concatenate([groups[-1], last])
    return groups


def buddy_groups(pop: Population, O: np.ndarray) -> list[np.ndarray]:
    """Each organisation of the lower-performing half, worst first, is buddied with the nearest unassigned one of
    the better-performing half (001 Table 2: buddying)."""
    perf = O[COLUMN["baseline_performance"]]
    order = np.argsort(perf, kind="stable")
    half = len(order) // 2
    mentees, mentors = order[:half], order[len(order) - half :]
    tree = cKDTree(np.column_stack([pop.x[mentors], pop.y[mentors]]))
    taken = np.zeros(len(mentors), dtype=bool)
    groups = []
    for m in mentees:
        k = 16
        while True:  # widen the search until a free mentor is among the k nearest (k-d tree, no N x N distances)
            _, near = tree.query([pop.x[m], pop.y[m]], k=min(k, len(mentors)))
            free_near = [c for c in np.atleast_1d(near) if not taken[c]]
            if free_near or k >= len(mentors):
                break
            k *= 4
        c = free_near[0]
        taken[c] = True
        groups.append(np.array([m, mentors[c]], dtype=np.int32))
    return groups


def build_design(
    scenario,
    type_name: str,
    mandated: bool,
    groups: list[np.ndarray],
    pop: Population,
    formalisation: str | None,
    month: int = 0,
) -> CollabDesign:
    n = np.array([len(g) for g in groups], dtype=float)
    cross = np.array(
        [(pop.sector[g][:, None] != pop.sector[g][None, :]).sum() / (len(g) * (len(g) - 1.0)) for g in groups]
    )
    values = {
        **collab_values(scenario, type_name, mandated, formalisation, month),
        "cross_sector": cross,
        "number_of_organisations": (n - 2.0) / (n + 8.0),
    }
    return CollabDesign(groups=groups, type_code=TYPE_NAMES.index(type_name), values=values)
