"""Collaborations, memberships and dyads: who partners with whom, and the context of each pair.

Voluntary partnering (organisations propose to, and may be declined by, partners chosen by expected initial trust,
proximity and complementarity) and mandated assignment by a regulator (geographic footprints, or a lower performer
buddied with a better one). Partner search uses a k-d tree (a scan of every pair below 34 free organisations), so
it is O(N log N), never O(N^2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from collabsim.population import Population
from collabsim.rng import pair_uniform
from collabsim.rules import CompiledRules, Rule
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


# Dyad context variables whose value for the pair i -> j equals that for j -> i, bit for bit (distances, absolute
# differences and draws of the unordered pair): partner search computes them once for both directions.
SYMMETRIC_CONTEXT = frozenset(
    (
        "geographic_proximity",
        "cultural_distance",
        "it_interoperability",
        "history_of_competition",
        "prior_successful_collaboration",
        "size_discrepancy",
    )
)


def dyad_context(pop: Population, O: np.ndarray, scenario, salt: np.uint64):
    """Return f(i, j, names=None) -> {dyad context variable: array} for ordered pairs i -> j (arrays of organisation
    ids): every variable, or only ``names`` (partner search reads a few)."""
    p = scenario.population

    def f(i: np.ndarray, j: np.ndarray, names: frozenset[str] | None = None) -> dict[str, np.ndarray]:
        def want(name: str) -> bool:
            return names is None or name in names

        out: dict[str, np.ndarray] = {}
        cross = (pop.sector[i] != pop.sector[j]).astype(float)
        if want("geographic_proximity"):
            dist = np.hypot(pop.x[i] - pop.x[j], pop.y[i] - pop.y[j])
            out["geographic_proximity"] = np.exp(-dist / p.proximity_scale_km)
        if want("cultural_distance"):
            out["cultural_distance"] = np.minimum(
                1.0, np.abs(pop.culture[i] - pop.culture[j]) + p.cross_sector_culture_gap * cross
            )
        if want("it_interoperability"):
            out["it_interoperability"] = (pop.it_system[i] == pop.it_system[j]).astype(float)
        if want("history_of_competition"):
            # Competition is mostly between organisations of the same sector (Ch5); half as likely across sectors.
            u_hist = pair_uniform(salt, i, j, channel=1)
            same = 1.0 - cross
            out["history_of_competition"] = np.minimum(1.0, 2.0 * p.history_of_competition * u_hist) * (
                same + 0.5 * cross
            )
        if want("prior_successful_collaboration"):
            u_prior = pair_uniform(salt, i, j, channel=2)
            out["prior_successful_collaboration"] = (u_prior < p.prior_collaboration).astype(float)
        if want("size_discrepancy"):
            size = O[COLUMN["organisation_size"]]
            out["size_discrepancy"] = np.abs(size[i] - size[j])
        if want("performance_gap"):
            perf = O[COLUMN["baseline_performance"]]
            out["performance_gap"] = np.maximum(0.0, perf[j] - perf[i])
        if want("partner_reputation"):
            out["partner_reputation"] = O[COLUMN["reputation"], j].copy()
        return out

    return f


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


def expected_initial_trust(
    rows: Sequence[Rule], values: dict[str, np.ndarray | float], baseline: float, n: int
) -> np.ndarray:
    """Initial trust the formation ``rows`` (those moving initial_trust) would give n candidate pairs, with numpy.

    ``values`` maps variable names to arrays (n,) or scalars; variables not given read 0.5 (unknown yet).
    The same update form as the kernels, so choosing partners by expected initial trust uses the theory's own rows.
    """
    up = np.zeros(n)
    down = np.zeros(n)
    for r in rows:
        c = r.weight  # a row of scalar terms stays a scalar: the same products, without building (n,) copies
        for name, neg in r.terms:
            v = values.get(name, 0.5)
            c = c * (1.0 - v if neg else v)
        if r.sign > 0:
            up += c
        else:
            down += c
    x = np.full(n, baseline)
    return x - (1.0 - x) * np.expm1(-up) + x * np.expm1(-down)


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
    return rows, nbr[rows, slots]


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
    dyad_ctx,
    S_values: dict[str, float],
    type_name: str,
) -> list[np.ndarray]:
    """Free organisations propose partnerships; invitees accept when their expected trust in the proposer is high
    enough. Candidates: the nearest free organisations within the search radius, scored by expected initial trust,
    proximity and complementarity (a partner strong where the proposer is weak, as in the peer-review pairing)."""
    pa = scenario.partnering
    idx = np.flatnonzero(free)
    if len(idx) < 2:
        return []
    design = collab_values(scenario, type_name, False, pa.formalisation)
    trust_rows, org_names, pair_names = formation_reads(rules)
    rows, cols = candidate_pairs(pop.x[idx], pop.y[idx], pa.search_radius_km)
    i, j = idx[rows], idx[cols]
    rows, i, j = rows[i != j], i[i != j], j[i != j]

    def expected_trust(a: np.ndarray, pair: dict[str, np.ndarray]) -> np.ndarray:  # a's trust in its partners
        ctx = {**S_values, **design, **{name: O[COLUMN[name], a] for name in org_names}, **pair}
        return expected_initial_trust(trust_rows, ctx, scenario.dynamics.baseline_trust, len(a))

    perf = O[COLUMN["baseline_performance"]]
    forward = dyad_ctx(i, j, pair_names | {"geographic_proximity"})
    score = expected_trust(i, forward) + forward["geographic_proximity"] + np.abs(perf[j] - perf[i])
    # the invitee's view of the proposer decides acceptance; symmetric variables are the forward ones
    back_pair = dyad_ctx(j, i, pair_names - SYMMETRIC_CONTEXT)
    back_pair.update({name: forward[name] for name in pair_names & SYMMETRIC_CONTEXT})
    accepts = expected_trust(j, back_pair) >= pa.acceptance_threshold
    order = np.lexsort((-score, rows))  # by proposer, best first; ties keep nearest first (stable)
    # proposals in random order: each free proposer invites its best still-free candidates (plain lists: a few
    # dozen candidates, where numpy's per-call cost would dominate)
    cand, accepts = j[order].tolist(), accepts[order].tolist()
    start = np.searchsorted(rows[order], np.arange(len(idx) + 1)).tolist()
    pos = dict(zip(idx.tolist(), range(len(idx)), strict=True))
    is_free = free.tolist()
    groups = []
    for proposer in rng.permutation(idx).tolist():
        if not is_free[proposer]:
            continue
        p = pos[proposer]
        invited = [c for c in range(start[p], start[p + 1]) if is_free[cand[c]]][: pa.group_size - 1]
        chosen = [cand[c] for c in invited if accepts[c]]
        if not chosen:
            continue
        for org in (proposer, *chosen):
            is_free[org] = False
        groups.append(np.array([proposer, *chosen], dtype=np.int32))
    return groups


# id(rules) -> (rules, what formation_reads returns); holding the rules keeps the id from being reused
_FORMATION_READS: dict[int, tuple[CompiledRules, tuple[list[Rule], list[str], frozenset[str]]]] = {}


def formation_reads(rules: CompiledRules) -> tuple[list[Rule], list[str], frozenset[str]]:
    """The rows moving initial trust, the organisation variables and the dyad context variables they read: what
    partner search evaluates, once per compiled rule table rather than at every search round."""
    hit = _FORMATION_READS.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    trust_rows = [r for r in rules.rows if r.mechanism == "initial_trust"]
    read = {name for r in trust_rows for name, _ in r.terms}
    org_names = [name for name in names_at(Level.ORG) if name in read]  # only what the formation rows read
    pair_names = frozenset(name for name in names_at(Level.DYAD) if name in read)
    if len(_FORMATION_READS) >= 64:
        _FORMATION_READS.clear()
    _FORMATION_READS[id(rules)] = (rules, (trust_rows, org_names, pair_names))
    return trust_rows, org_names, pair_names


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
