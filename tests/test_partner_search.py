"""Partner search and the dyad context of pairs, compiled, against plain-Python oracles written from their
specification (docs/model.md, section 4; network.py's docstrings)."""

import math

import numpy as np
import pytest

from collabsim import load_scenario
from collabsim.engine import Engine
from collabsim.network import PAIR_CONTEXT, candidate_pairs, collab_values, voluntary_groups
from collabsim.rng import pair_uniform
from collabsim.variables import COLUMN, Level, names_at

SYMMETRIC = {
    "geographic_proximity",
    "cultural_distance",
    "it_interoperability",
    "history_of_competition",
    "prior_successful_collaboration",
    "size_discrepancy",
}


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


def groups_oracle(engine, free: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Voluntary partner search, one pair at a time: each free organisation in random turn invites its best
    group_size - 1 still-free candidates (within the radius, nearest MAX_CANDIDATES; ranked by expected initial
    trust + proximity + performance difference, ties nearest first) and partners with those whose expected initial
    trust in it reaches the acceptance threshold."""
    sc, st = engine.scenario, engine.state
    pa, org = sc.partnering, set(names_at(Level.ORG))
    idx = np.flatnonzero(free)
    if len(idx) < 2:
        return []
    known = {name: st.S[COLUMN[name]] for name in ("regulatory_favourability", "financial_constraints")}
    known.update(collab_values(sc, pa.type, False, pa.formalisation))
    rows = [r for r in engine.rules.rows if r.mechanism == "initial_trust"]

    def expected_trust(a: int, b: int) -> float:  # a's in b
        pair = context_oracle(engine, a, b)
        up = down = 0.0
        for r in rows:
            c = r.weight
            for name, neg in r.terms:
                v = st.O[COLUMN[name], a] if name in org else pair.get(name, known.get(name, 0.5))
                c = c * (1.0 - v if neg else v)
            up, down = (up + c, down) if r.sign > 0 else (up, down + c)
        x = sc.dynamics.baseline_trust
        return x - (1.0 - x) * math.expm1(-up) + x * math.expm1(-down)

    perf = st.O[COLUMN["baseline_performance"]]
    candidates: dict[int, list[int]] = {a: [] for a in idx.tolist()}
    for r, c in zip(*candidate_pairs(st.pop.x[idx], st.pop.y[idx], pa.search_radius_km), strict=True):
        if r != c:
            candidates[int(idx[r])].append(int(idx[c]))  # nearest first

    def score(a: int, b: int) -> float:
        return expected_trust(a, b) + context_oracle(engine, a, b)["geographic_proximity"] + abs(perf[b] - perf[a])

    ranked = {a: sorted(bs, key=lambda b, a=a: -score(a, b)) for a, bs in candidates.items()}  # stable: ties nearest
    still_free, groups = set(candidates), []
    for a in rng.permutation(idx).tolist():
        if a not in still_free:
            continue
        invited = [b for b in ranked[a] if b in still_free][: pa.group_size - 1]
        chosen = [b for b in invited if expected_trust(b, a) >= pa.acceptance_threshold]
        if chosen:
            groups.append([a, *chosen])
            still_free -= {a, *chosen}
    return groups


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
    and every group is made of free organisations, proposer first, none in two groups, at most group_size."""
    formed = declined = 0
    for engine in engines:
        st, pa = engine.state, engine.scenario.partnering
        S_values = {name: st.S[COLUMN[name]] for name in ("regulatory_favourability", "financial_constraints")}
        rng = np.random.default_rng(11)
        for n_free in (0, 1, 2, 3, 7, 20, 34, 35, 60):
            free = np.zeros(st.n_org, bool)
            free[rng.choice(st.n_org, n_free, replace=False)] = True
            turn_seed = int(rng.integers(1 << 30))
            got = voluntary_groups(
                engine.scenario,
                st.pop,
                st.O,
                free,
                np.random.default_rng(turn_seed),
                engine.rules,
                engine.dyad_ctx,
                S_values,
                pa.type,
            )
            want = groups_oracle(engine, free, np.random.default_rng(turn_seed))
            assert [g.tolist() for g in got] == want, (pa.group_size, n_free)
            members = [m for g in want for m in g]
            assert len(members) == len(set(members)) and all(free[m] for m in members)
            assert all(2 <= len(g) <= pa.group_size for g in want)
            formed += len(want)
            declined += sum(len(g) < pa.group_size for g in want)
    assert formed > 20 and declined > 5  # groups formed, and some invitees declined or were missing
