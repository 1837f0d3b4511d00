"""Partner search and the dyad context of pairs, compiled, against plain-Python oracles written from their
specification (docs/model.md, section 4; network.py's docstrings)."""

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from collabsim import load_scenario
from collabsim.engine import Engine
from collabsim.network import (
    PAIR_CONTEXT,
    _expected_trust,
    _pair_context,
    candidate_pairs,
    collab_values,
    formation_plan,
    voluntary_groups,
)
from collabsim.rng import pair_uniform
from collabsim.variables import COLUMN, Level, names_at

SYMMETRIC = set(PAIR_CONTEXT) - {"performance_gap", "partner_reputation"}  # the same either way round


def context_oracle(engine, a: int, b: int) -> dict[str, float]:
    """The dyad context of a -> b, one pair at a time, from its definition."""
    pop, O, p = engine.state.pop, engine.state.O, engine.scenario.population
    cross = float(pop.sector[a] != pop.sector[b])
    u_hist, u_prior = (float(pair_uniform(engine.pair_salt, a, b, channel=ch)[0]) for ch in (1, 2))
    size, perf = O[COLUMN["organisation_size"]], O[COLUMN["baseline_performance"]]
    return {
        "geographic_proximity": math.exp(
            -float(np.hypot(pop.x[a] - pop.x[b], pop.y[a] - pop.y[b])) / p.proximity_scale_km
        ),
        "cultural_distance": min(1.0, abs(pop.culture[a] - pop.culture[b]) + p.cross_sector_culture_gap * cross),
        "it_interoperability": float(pop.it_system[a] == pop.it_system[b]),
        "history_of_competition": min(1.0, 2.0 * p.history_of_competition * u_hist) * (1.0 - cross + 0.5 * cross),
        "prior_successful_collaboration": float(u_prior < p.prior_collaboration),
        "size_discrepancy": abs(size[a] - size[b]),
        "performance_gap": max(0.0, perf[b] - perf[a]),
        "partner_reputation": O[COLUMN["reputation"], b],
    }


def known_values(engine) -> dict[str, float]:
    """What partner search knows of a prospective collaboration: the system values it reads and the design."""
    sc, st = engine.scenario, engine.state
    known = {name: st.S[COLUMN[name]] for name in ("regulatory_favourability", "financial_constraints")}
    known.update(collab_values(sc, sc.partnering.type, False, sc.partnering.formalisation))
    return known


def trust_oracle(engine, rows, a: int, b: int) -> float:
    """a's expected initial trust in b: the formation ``rows`` evaluated for the pair, reading a's organisation
    variables, the pair's context, the known system and design values, and 0.5 for anything else."""
    st, org, known = engine.state, set(names_at(Level.ORG)), known_values(engine)
    pair = context_oracle(engine, a, b)
    up = down = 0.0
    for r in rows:
        c = r.weight
        for name, neg in r.terms:
            v = st.O[COLUMN[name], a] if name in org else pair.get(name, known.get(name, 0.5))
            c = c * (1.0 - v if neg else v)
        up, down = (up + c, down) if r.sign > 0 else (up, down + c)
    x = engine.scenario.dynamics.baseline_trust
    return x - (1.0 - x) * math.expm1(-up) + x * math.expm1(-down)


def groups_oracle(engine, rules, free: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Voluntary partner search, one pair at a time: each free organisation in random turn invites its best
    group_size - 1 still-free candidates (within the radius, nearest MAX_CANDIDATES; ranked by expected initial
    trust + proximity + performance difference, ties nearest first) and partners with those whose expected initial
    trust in it reaches the acceptance threshold."""
    st, pa = engine.state, engine.scenario.partnering
    idx = np.flatnonzero(free)
    if len(idx) < 2:
        return []
    rows = [r for r in rules.rows if r.mechanism == "initial_trust"]
    perf = st.O[COLUMN["baseline_performance"]]
    candidates: dict[int, list[int]] = {a: [] for a in idx.tolist()}
    pairs = candidate_pairs(st.pop.x[idx], st.pop.y[idx], pa.search_radius_km)
    assert np.all(np.diff(pairs[0]) >= 0)  # by proposer, as partner search requires
    for r, c in zip(*pairs, strict=True):
        if r != c:
            candidates[int(idx[r])].append(int(idx[c]))  # nearest first

    def score(a: int, b: int) -> float:
        proximity = context_oracle(engine, a, b)["geographic_proximity"]
        return trust_oracle(engine, rows, a, b) + proximity + abs(perf[b] - perf[a])

    ranked = {a: sorted(bs, key=lambda b, a=a: -score(a, b)) for a, bs in candidates.items()}  # stable: ties nearest
    still_free, groups = set(candidates), []
    for a in rng.permutation(idx).tolist():
        if a not in still_free:
            continue
        invited = [b for b in ranked[a] if b in still_free][: pa.group_size - 1]
        chosen = [b for b in invited if trust_oracle(engine, rows, b, a) >= pa.acceptance_threshold]
        if chosen:
            groups.append([a, *chosen])
            still_free -= {a, *chosen}
    return groups


def search(engine, free: np.ndarray, seed: int, rules=None) -> list[list[int]]:
    st, sc = engine.state, engine.scenario
    S_values = {name: st.S[COLUMN[name]] for name in ("regulatory_favourability", "financial_constraints")}
    rng = np.random.default_rng(seed)
    rules = engine.rules if rules is None else rules
    groups = voluntary_groups(sc, st.pop, st.O, free, rng, rules, engine.dyad_ctx, S_values, sc.partnering.type)
    return [g.tolist() for g in groups]


def synthetic_rules(engine, contexts: list[tuple[tuple[str, ...], int, float]]) -> SimpleNamespace:
    """A rule table whose initial-trust rows read ``contexts`` (terms, sign, weight): every kind of term partner
    search distinguishes, negated or not."""
    template = next(r for r in engine.rules.rows if r.mechanism == "initial_trust")
    rows = [replace(template, context=c, sign=s, weight=w) for c, s, w in contexts]
    return SimpleNamespace(rows=rows)


CONTEXTS = [  # (terms, sign, weight) of synthetic formation rows: every kind of term partner search reads
    (("not cultural_distance", "leadership_quality"), +1, 0.8),
    (("partner_reputation", "not financial_constraints"), +1, 0.5),
    (("performance_gap", "external_funding", "not history_of_competition"), -1, 0.6),
    # not known before the collaboration exists (a dyad's state, a membership's): 0.5 each, weighed heavily enough
    # that another stand-in value would change choices
    (("trust",), -1, 1.5),
    (("not faith", "leadership_quality"), +1, 1.0),
    ((), -1, 0.3),
]


@pytest.fixture(scope="module")
def engines():
    """Populations of 60 (free organisations above MAX_CANDIDATES + 1 take the k-d tree path, fewer the scan),
    with group sizes and acceptance thresholds that make invitees both accept and decline."""
    base = load_scenario("baseline")
    out = []
    for seed, (group_size, threshold, radius) in enumerate(((2, 0.35, 50.0), (3, 0.45, 80.0), (5, 0.4, 30.0))):
        sc = base.with_overrides(
            {
                "population.n_orgs": 60,
                "partnering.group_size": group_size,
                "partnering.acceptance_threshold": threshold,
                "partnering.search_radius_km": radius,
            }
        )
        out.append(Engine(sc, seed=seed + 1))
    return out


def test_pair_context_equals_its_definition_bit_for_bit(engines):
    engine = engines[0]
    rng = np.random.default_rng(5)
    i, j = rng.integers(0, engine.state.n_org, 300), rng.integers(0, engine.state.n_org, 300)
    got, back = engine.dyad_ctx(i, j), engine.dyad_ctx(j, i)
    assert set(got) == set(PAIR_CONTEXT)
    for n in range(len(i)):
        want = context_oracle(engine, int(i[n]), int(j[n]))
        assert {k: got[k][n] for k in PAIR_CONTEXT} == want, n
        assert all(back[k][n] == want[k] for k in SYMMETRIC), n  # the same bits in both directions
    # the draws and pair variables vary: the oracle is not comparing constants
    assert all(len(np.unique(got[k])) > 1 for k in PAIR_CONTEXT)


def test_voluntary_groups_equal_the_plain_python_search(engines):
    """The compiled search forms exactly the oracle's groups, in its order, for scanned and tree-searched free sets,
    with the shipped formation rows and with synthetic ones that read every kind of term; every group is made of
    free organisations, proposer first, none in two groups, at most group_size."""
    formed = declined = 0
    for engine in engines:
        st, pa = engine.state, engine.scenario.partnering
        rng = np.random.default_rng(11)
        for n_free in (0, 1, 2, 3, 7, 20, 34, 35, 60):
            free = np.zeros(st.n_org, bool)
            free[rng.choice(st.n_org, n_free, replace=False)] = True
            turn_seed = int(rng.integers(1 << 30))
            for rules in (engine.rules, synthetic_rules(engine, CONTEXTS)):
                want = groups_oracle(engine, rules, free, np.random.default_rng(turn_seed))
                assert search(engine, free, turn_seed, rules) == want, (pa.group_size, n_free)
            members = [m for g in want for m in g]
            assert len(members) == len(set(members)) and all(free[m] for m in members)
            assert all(2 <= len(g) <= pa.group_size for g in want)
            formed += len(want)
            declined += sum(len(g) < pa.group_size for g in want)
    assert formed > 20 and declined > 5  # groups formed, and some invitees declined or were missing


def test_pair_context_names_are_dyad_variables_only():
    """Partner search reads a term from the trusting organisation when the name is an organisation variable and
    from the pair's context when it is in PAIR_CONTEXT: the two sets must not overlap."""
    assert set(PAIR_CONTEXT) <= set(names_at(Level.DYAD))
    assert not set(PAIR_CONTEXT) & set(names_at(Level.ORG))


def test_expected_trust_of_every_kind_of_term_equals_the_oracle(engines):
    """Organisation, pair (symmetric and not), known system and design values, unknown variables (a dyad state, a
    membership variable), negated terms, a row with no terms, both signs, and a table without formation rows."""
    engine = engines[1]
    contexts = CONTEXTS
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, engine.state.n_org, 50), rng.integers(0, engine.state.n_org, 50)
    for rows in (contexts, contexts[:1], []):
        rules = synthetic_rules(engine, rows)
        plan, names, want = formation_plan(rules)
        known = known_values(engine)
        scalars = np.array([known.get(name, 0.5) for name in names], float)
        ctx = _pair_context(a, b, want, engine.dyad_ctx.orgs, engine.dyad_ctx.params, engine.dyad_ctx.salt)
        got = _expected_trust(a, ctx, plan, scalars, engine.state.O, engine.scenario.dynamics.baseline_trust)
        expected = [trust_oracle(engine, rules.rows, int(x), int(y)) for x, y in zip(a, b, strict=True)]
        assert got.tolist() == expected, len(rows)
        assert len(set(expected)) > 1 or not rows  # values vary with the pair unless nothing is read


def test_tied_scores_keep_the_nearest_candidate_first(engines):
    """On a grid of organisations with equal performance and no formation rows every candidate at the same distance
    scores the same: the proposer must invite them in candidate order (nearest first), as a stable sort keeps it;
    and an expected trust exactly at the acceptance threshold accepts."""
    sc = engines[0].scenario
    base = sc.with_overrides(
        {
            "partnering.group_size": 3,
            "partnering.search_radius_km": 45.0,  # up to 32 candidates each, many at equal distances
            # without formation rows expected trust is the baseline: an invitee accepts when it reaches the threshold
            "partnering.acceptance_threshold": sc.dynamics.baseline_trust,
        }
    )
    for n_orgs in (25, 60):  # the scan and the k-d tree
        engine = Engine(base.with_overrides({"population.n_orgs": n_orgs}), seed=4)
        pop, O = engine.state.pop, engine.state.O
        pop.x[:], pop.y[:] = 10.0 * (np.arange(n_orgs) % 5), 10.0 * (np.arange(n_orgs) // 5)
        O[COLUMN["baseline_performance"]] = 0.5
        rules = synthetic_rules(engine, [])
        free = np.ones(n_orgs, bool)
        free[::7] = False
        for seed in range(5):
            want = groups_oracle(engine, rules, free, np.random.default_rng(seed))
            assert search(engine, free, seed, rules) == want, (n_orgs, seed)
            assert len(want) > 3
