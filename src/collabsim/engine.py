"""The numba engine: runs of compiled months over the structure-of-arrays State.

Each month runs the named phases of DESIGN.md section 2 in order — events, context, mechanisms, behaviour,
outcomes, life cycle, record — entirely inside ``kernels.run_months``. Python only forms collaborations (partner
choice with a k-d tree, regulator assignment), at the start of the months where that happens, and runs the compiled
months between them. ``reference.py`` implements the same month agent by agent, in plain Python (docs/model.md).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from collabsim import kernels
from collabsim.network import (
    INTERVENTION_VARS,
    buddy_groups,
    build_design,
    dyad_context,
    geographic_groups,
    voluntary_groups,
)
from collabsim.population import generate_population
from collabsim.recorder import RECORD_COLUMNS
from collabsim.rng import Streams, pair_uniform
from collabsim.rules import STAGES, CompiledRules, compile_rules, load_rule_table
from collabsim.state import State
from collabsim.variables import COLUMN, N_VARS, Level, Phase

IMPLEMENTATION = STAGES.index("implementation")
MAINTENANCE = STAGES.index("maintenance")
STOPPING_DECAY = 0.8  # monthly persistence of the 'inappropriate stopping' shock after a member leaves
WORKFORCE_PERSISTENCE = 0.9  # monthly persistence of a workforce shock above the organisation's baseline
WORKFORCE_SHOCK = 0.3  # share of the remaining headroom a workforce shock adds
AGE_HALF_MONTHS = 18.0  # collaboration_age = months / (months + 18): half-way at 18 months (sh-18-months-...)

# Values of the state variables when a collaboration forms, before the formation rows act (docs/decisions.md).
INITIAL_MEMBER = {
    "perceived_legitimacy": 0.5,
    "perceived_task_complexity": 0.5,
    "perception_of_progress": 0.5,
    "intraorganisational_conflict": 0.2,
    "risk_tolerance": 0.3,
    "collaborative_behaviour": 0.0,
}
INITIAL_DYAD = {
    "power_imbalance": 0.0,
    "interpersonal_communication": 0.3,
    "conflict": 0.2,
    "confidence": 0.0,
    "vision_sharedness": 0.5,
}
INITIAL_COLLAB = {"functioning_workload": 0.3, "momentum": 0.0, "task_achievement": 0.0}
# Collaboration variables an intervention may raise for a while: reset to their design value every month.
DESIGN_VARS = (
    "external_broker",
    "stakeholder_involvement",
    "continuous_evaluation",
    "peer_review",
    "joint_appointments",
    "cultural_integration_plan",
    "mou",
    "formalisation",
    "external_funding",
)


@dataclass(frozen=True)
class RulePlan:
    """The compiled rows grouped by (level, phase) and by the variable they move, flattened for the kernels:
    group g = level * 5 + phase owns p_cols[g_ptr[g]:g_ptr[g+1]]; the rows moving p_cols[q] are
    p_rule_idx[p_mech_ptr[q]:p_mech_ptr[q+1]], in table order, except that at the dyad level the p_pre[q] rows
    that read no dyad variable come first (the kernels sum them once per membership; docs/decisions.md 49)."""

    g_ptr: np.ndarray
    p_cols: np.ndarray
    p_mech_ptr: np.ndarray
    p_rule_idx: np.ndarray
    p_pre: np.ndarray

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.g_ptr, self.p_cols, self.p_mech_ptr, self.p_rule_idx, self.p_pre)

    def group(self, level: Level, phase: Phase) -> slice:
        g = int(level) * len(Phase) + int(phase)
        return slice(int(self.g_ptr[g]), int(self.g_ptr[g + 1]))


def make_plan(rules: CompiledRules) -> RulePlan:
    g_ptr, cols, mech_ptr, idx, pre = [0], [], [0], [], []
    reads_dyad = np.array(
        [(rules.term_level[rules.term_ptr[r] : rules.term_ptr[r + 1]] == Level.DYAD).any() for r in range(len(rules))],
        bool,
    )
    for level in Level:
        for phase in Phase:
            sel = np.flatnonzero((rules.mech_level == level) & (rules.phase == phase))
            for c in np.unique(rules.mech_col[sel]):
                rows = sel[rules.mech_col[sel] == c]
                coarse = rows[~reads_dyad[rows]] if level == Level.DYAD else rows[:0]
                cols.append(c)
                idx.extend(coarse)
                idx.extend(np.setdiff1d(rows, coarse))  # sorted: table order
                mech_ptr.append(len(idx))
                pre.append(len(coarse))
            g_ptr.append(len(cols))
    return RulePlan(*(np.array(a, np.int64) for a in (g_ptr, cols, mech_ptr, idx, pre)))


def aggregate_needs(rules: CompiledRules) -> tuple[np.ndarray, ...]:
    """Columns of DM, DK, MK, OK, DO, MO, KO that anything reads in the compiled month: the rows' terms at finer
    levels, the named functions (inertia, key-actor absence, the synergy share) and the recorder."""
    need: dict[str, set[int]] = {a: set() for a in ("DM", "DK", "MK", "OK", "DO", "MO", "KO")}
    reads = {
        (Level.MEMBER, Level.DYAD): "DM",
        (Level.COLLAB, Level.DYAD): "DK",
        (Level.COLLAB, Level.MEMBER): "MK",
        (Level.COLLAB, Level.ORG): "OK",
        (Level.ORG, Level.DYAD): "DO",
        (Level.ORG, Level.MEMBER): "MO",
        (Level.ORG, Level.COLLAB): "KO",
    }
    for r in range(len(rules)):
        for t in range(rules.term_ptr[r], rules.term_ptr[r + 1]):
            agg = reads.get((Level(rules.mech_level[r]), Level(rules.term_level[t])))
            if agg:
                need[agg].add(int(rules.term_col[t]))
    need["MK"] |= {COLUMN["collaborative_behaviour"], COLUMN["above_threshold"]}
    need["OK"].add(COLUMN["leadership_turnover"])
    for src, col in RECORD_COLUMNS:  # source 0: DK, 1: MK, 2: the collaboration's own variable
        if src < 2:
            need[("DK", "MK")[src]].add(col)
    need["DM"] |= need["DK"] | need["DO"]
    return tuple(np.array(sorted(need[a]), np.int64) for a in ("DM", "DK", "MK", "OK", "DO", "MO", "KO"))


@lru_cache(maxsize=64)
def compiled_rules(
    disable: tuple[str, ...], weights: tuple[tuple[str, float], ...]
) -> tuple[CompiledRules, RulePlan, tuple[np.ndarray, ...]]:
    """The rule table with a scenario's overrides, compiled, planned and with its aggregate needs — once per
    process for each distinct override (a sweep's runs share it; the arrays are never written)."""
    rules = compile_rules(load_rule_table().with_overrides(disable, dict(weights)))
    return rules, make_plan(rules), aggregate_needs(rules)


def month_parameters(scenario) -> np.ndarray:
    """The P array of kernels.run_months (indices kernels.P_*)."""
    E, dyn, pa = scenario.events, scenario.dynamics, scenario.partnering
    P = np.zeros(kernels.N_PARAMETERS)
    for index, value in (
        (kernels.P_TURNOVER_RATE, E.leadership_turnover_rate),
        (kernels.P_SHOCK_RATE, E.workforce_shock_rate),
        (kernels.P_FAILURE_RATE, E.task_failure_rate),
        (kernels.P_QUICK_WIN, E.quick_win_threshold),
        (kernels.P_TRUST_RESET, E.turnover_trust_reset),
        (kernels.P_THRESHOLD_RISK, dyn.synergy_threshold_risk),
        (kernels.P_THRESHOLD_FAITH, dyn.synergy_threshold_faith),
        (kernels.P_SYNERGY_SHARE, dyn.synergy_share),
        (kernels.P_CONNECTING, dyn.connecting_months),
        (kernels.P_PLANNING, dyn.planning_months),
        (kernels.P_PACE, dyn.expected_pace),
        (kernels.P_LEAVE_FAITH, pa.leave_faith_threshold),
        (kernels.P_LEAVE_AFTER, pa.leave_after_months),
        (kernels.P_STOPPING_DECAY, STOPPING_DECAY),
        (kernels.P_WORKFORCE_PERSISTENCE, WORKFORCE_PERSISTENCE),
        (kernels.P_WORKFORCE_SHOCK, WORKFORCE_SHOCK),
        (kernels.P_AGE_HALF, AGE_HALF_MONTHS),
        (kernels.P_HYSTERESIS, dyn.threshold_hysteresis),
    ):
        P[index] = value
    return P


def system_values(scenario, month: int) -> np.ndarray:
    """System variables for a month: environment plus the scheduled crises and pandemics in force."""
    S = np.zeros(N_VARS[Level.SYSTEM])
    S[COLUMN["regulatory_favourability"]] = scenario.environment.regulatory_favourability
    S[COLUMN["financial_constraints"]] = scenario.environment.financial_constraints
    crisis, cut = 0.0, 0.0
    for ev in scenario.events.schedule:
        if ev.type in ("pandemic", "crisis") and ev.month <= month < ev.month + ev.duration_months:
            crisis = max(crisis, ev.severity)
            if ev.type == "pandemic":
                cut = max(cut, ev.contact_cut)
    S[COLUMN["external_crisis"]] = crisis
    S[COLUMN["face_to_face_contact"]] = 1.0 - cut
    return S


def intervention_table(scenario) -> np.ndarray:
    """One row per intervention: kind (kernels.IV_*), column raised, start, end (-1: none), coverage, intensity."""
    kinds = {"mou": kernels.IV_MOU, "interoperable_it": kernels.IV_IT, "champions": kernels.IV_CHAMPIONS}
    rows = [
        [
            kinds.get(iv.type, kernels.IV_RAISE),
            COLUMN.get(INTERVENTION_VARS.get(iv.type, ""), -1),
            iv.start_month,
            -1 if iv.end_month is None else iv.end_month,
            iv.coverage,
            iv.intensity,
        ]
        for iv in scenario.interventions
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def coverage_draws(salt: np.uint64, n_col: int) -> np.ndarray:
    """One uniform per collaboration deciding which interventions reach it: an intervention of coverage c reaches
    the collaborations whose draw is below c, so equal coverages reach the same collaborations (a trial arm gets
    the whole package) and smaller coverages reach a subset. Counter-based: a collaboration's draw never changes."""
    ks = np.arange(n_col)
    return pair_uniform(salt, ks, np.full(n_col, -1), channel=7)


def formation_due(scenario, month: int) -> tuple[bool, list]:
    """(voluntary search round at this month?, mandates scheduled at this month): formation happens at the start
    of a month, before its events."""
    pa = scenario.partnering
    search = pa.regime == "voluntary" and month > 0 and month % pa.search_interval_months == 0
    return search, [ev for ev in scenario.events.schedule if ev.type == "mandate" and ev.month == month]


@dataclass(frozen=True)
class ScenarioConstants:
    """What every run of one scenario uses whatever its seed and key: the compiled rules, the kernels' parameter and
    schedule arrays, and the months where collaborations form. Shared by the runs of a scenario (never written)."""

    rules: CompiledRules
    plan: RulePlan
    need: tuple[np.ndarray, ...]
    need_all: tuple[np.ndarray, ...]
    P: np.ndarray
    S_sched: np.ndarray
    funding_at: np.ndarray
    iv: np.ndarray
    design_cols: np.ndarray
    formation_months: frozenset[int]


def _scenario_constants(scenario) -> ScenarioConstants:
    rules, plan, need = compiled_rules(tuple(scenario.rules.disable), tuple(sorted(scenario.rules.weights.items())))
    need_all = tuple(
        np.arange(N_VARS[lv], dtype=np.int64)
        for lv in (Level.DYAD, Level.DYAD, Level.MEMBER, Level.ORG, Level.DYAD, Level.MEMBER, Level.COLLAB)
    )
    horizon = scenario.horizon_months
    funding_at = np.zeros(horizon + 1, np.bool_)
    for ev in scenario.events.schedule:
        if ev.type == "funding_end":
            funding_at[ev.month] = True
    return ScenarioConstants(
        rules,
        plan,
        need,
        need_all,
        month_parameters(scenario),
        np.array([system_values(scenario, t) for t in range(horizon + 1)]),
        funding_at,
        intervention_table(scenario),
        np.array([COLUMN[v] for v in DESIGN_VARS], np.int64),
        frozenset(t for t in range(horizon + 1) if any(formation_due(scenario, t))),
    )


# id(scenario) -> (weak reference, constants), most recently used last. Scenarios are frozen, so their constants
# never change; the weak reference tells a live scenario from a dead one whose id was reused.
_CONSTANTS: OrderedDict[int, tuple[weakref.ref, ScenarioConstants]] = OrderedDict()
_CONSTANTS_MAX = 64
_CONSTANTS_LOCK = threading.Lock()


def scenario_constants(scenario) -> ScenarioConstants:
    """The ScenarioConstants of ``scenario``, computed once per scenario object: a sweep's replicates of one (arm,
    point), and a loop of simulate() calls, build them once (about 1 ms a run otherwise)."""
    with _CONSTANTS_LOCK:  # a Dask worker may run tasks in threads
        hit = _CONSTANTS.get(id(scenario))
        if hit is not None and hit[0]() is scenario:
            _CONSTANTS.move_to_end(id(scenario))
            return hit[1]
    constants = _scenario_constants(scenario)
    with _CONSTANTS_LOCK:
        _CONSTANTS[id(scenario)] = (weakref.ref(scenario), constants)
        if len(_CONSTANTS) > _CONSTANTS_MAX:
            _CONSTANTS.popitem(last=False)
    return constants


class Engine:
    """One run of one scenario: owns the State, the compiled rules and the random streams."""

    def __init__(self, scenario, seed: int | None = None, key: tuple[int, ...] = ()) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.streams = Streams(self.seed, key)
        c = scenario_constants(scenario)
        self.rules, self.plan, self.need, self.need_all = c.rules, c.plan, c.need, c.need_all
        self.P, self.S_sched, self.funding_at, self.iv = c.P, c.S_sched, c.funding_at, c.iv
        self.design_cols, self.formation_months = c.design_cols, c.formation_months
        pop = generate_population(scenario, self.streams)
        self.state = State.from_population(pop, self.S_sched[0].copy())
        self.pair_salt = self.streams.salt("pairs")
        self.event_salt = self.streams.salt("events")
        self.dyad_ctx = dyad_context(pop, self.state.O, scenario, self.pair_salt)
        self.month = 0
        self.records: list[tuple[int, np.ndarray]] = []  # (first month, rec) of every compiled segment
        self._shape = (-1, -1, -1)
        self._allocate()
        self.form_initial()
        self.refresh_aggregates()

    # ---- formation (structure shared with the reference model) --------------------------------------------------
    def form_initial(self) -> None:
        pa = self.scenario.partnering
        if pa.regime == "mandated":
            self.form_mandated(pa.assignment, pa.type, pa.group_size, pa.formalisation)
        else:
            self.form_voluntary()

    def form_mandated(self, assignment: str, type_name: str, group_size: int, formalisation: str | None) -> None:
        st = self.state
        groups = (
            buddy_groups(st.pop, st.O)
            if assignment == "buddy_better_performer"
            else geographic_groups(st.pop, group_size)
        )
        self._add(build_design(self.scenario, type_name, True, groups, st.pop, formalisation, self.month))

    def free_for_voluntary(self) -> np.ndarray:
        st = self.state
        busy = np.zeros(st.n_org, bool)
        vol = st.mem_active & (st.K[COLUMN["mandated"], st.mem_col] == 0.0)
        busy[st.mem_org[vol]] = True
        return ~busy

    def form_voluntary(self) -> None:
        st, pa = self.state, self.scenario.partnering
        S_values = {name: st.S[COLUMN[name]] for name in ("regulatory_favourability", "financial_constraints")}
        groups = voluntary_groups(
            self.scenario,
            st.pop,
            st.O,
            self.free_for_voluntary(),
            self.streams["partners"],
            self.rules,
            self.dyad_ctx,
            S_values,
            pa.type,
        )
        if groups:  # most later search rounds form nothing
            self._add(build_design(self.scenario, pa.type, False, groups, st.pop, pa.formalisation, self.month))

    def _add(self, design) -> None:
        st = self.state
        st.month = self.month
        cs, ms, ds = st.add_collaborations(design, self.dyad_ctx)
        if cs.stop == cs.start:
            return
        self.initialise_new(cs, ms, ds)

    def initialise_new(self, cs: slice, ms: slice, ds: slice) -> None:
        """Starting values of new collaborations, then the formation rows (initial trust, initial faith) once."""
        st, dyn = self.state, self.scenario.dynamics
        for name, v in INITIAL_COLLAB.items():
            st.K[COLUMN[name], cs] = v
        for name, v in INITIAL_MEMBER.items():
            st.M[COLUMN[name], ms] = v
        for name, v in INITIAL_DYAD.items():
            st.D[COLUMN[name], ds] = v
        st.D[COLUMN["cultural_assimilation"], ds] = 1.0 - st.D[COLUMN["cultural_distance"], ds]
        st.D[COLUMN["initial_trust"], ds] = dyn.baseline_trust
        st.M[COLUMN["initial_faith"], ms] = dyn.baseline_faith
        self._allocate()
        self.apply_interventions()
        new_d = np.zeros(st.n_dyad, bool)
        new_d[ds] = True
        new_m = np.zeros(st.n_mem, bool)
        new_m[ms] = True
        self.run_level(Level.DYAD, Phase.FORMATION, new_d)
        self.refresh_aggregates(Level.MEMBER)
        self.run_level(Level.MEMBER, Phase.FORMATION, new_m)
        st.D[COLUMN["trust"], ds] = st.D[COLUMN["initial_trust"], ds]
        st.M[COLUMN["faith"], ms] = st.M[COLUMN["initial_faith"], ms]

    # ---- aggregates and rules ------------------------------------------------------------------------------------
    def _allocate(self) -> None:
        """(Re)allocate the aggregate buffers and topology maps when the numbers of entities change."""
        st = self.state
        if self._shape == (st.n_col, st.n_mem, st.n_dyad):
            return
        nD, nM, nO, nK = (N_VARS[lv] for lv in (Level.DYAD, Level.MEMBER, Level.ORG, Level.COLLAB))
        self.DM = np.zeros((nD, st.n_mem))
        self.DK, self.MK, self.OK = np.zeros((nD, st.n_col)), np.zeros((nM, st.n_col)), np.zeros((nO, st.n_col))
        self.DO, self.MO, self.KO = (np.zeros((n, st.n_org)) for n in (nD, nM, nK))
        self.dyad_col = st.mem_col[st.dyad_src].astype(np.int64)
        self.dyad_org = st.mem_org[st.dyad_src].astype(np.int64)
        self.col_cov = coverage_draws(self.pair_salt, st.n_col)
        # kernels.events draws for entity e with (salt[e], key[e]): this run's salt and e's index in this run
        self.draws = (
            np.full(st.n_org, self.event_salt, np.uint64),
            np.arange(st.n_org, dtype=np.int64),
            np.full(st.n_col, self.event_salt, np.uint64),
            np.arange(st.n_col, dtype=np.int64),
        )
        self._shape = (st.n_col, st.n_mem, st.n_dyad)

    def memory_bytes(self) -> dict[str, int]:
        """Bytes of the model's arrays by the entity they grow with (the state, the aggregates and the index maps),
        and of the months recorded so far; not the kernels' per-call scratch (``collabsim bench`` reports them)."""
        st = self.state
        self._allocate()
        by_level = {
            "dyad": (st.D, st.dyad_src, st.dyad_dst, st.dyad_it_base, self.dyad_col, self.dyad_org),
            "membership": (st.M, st.mem_org, st.mem_col, st.mem_active, st.mem_stall, st.mem_dyad_ptr, self.DM),
            "collaboration": (
                st.K,
                st.K_design,
                st.col_type,
                st.col_stage,
                st.col_formed,
                st.col_stage_since,
                st.col_synergy_month,
                st.col_quick_win_done,
                st.col_mem_ptr,
                self.col_cov,
                *self.draws[2:],
                self.DK,
                self.MK,
                self.OK,
            ),
            "organisation": (
                st.O,
                *self.draws[:2],
                st.org_workforce_base,
                self.DO,
                self.MO,
                self.KO,
                *(v for v in vars(st.pop).values() if isinstance(v, np.ndarray)),
            ),
        }
        out = {level: sum(a.nbytes for a in arrays) for level, arrays in by_level.items()}
        out["records"] = sum(rec.nbytes for _, rec in self.records)  # the recorded months, kept until the run ends
        return out

    @property
    def agg(self) -> tuple[np.ndarray, ...]:
        """The aggregate arrays in the kernels' order: DM, DK, MK, OK, DO, MO, KO."""
        return (self.DM, self.DK, self.MK, self.OK, self.DO, self.MO, self.KO)

    @property
    def topology(self) -> tuple[np.ndarray, ...]:
        """Who belongs where, in the order of the kernels' ``topo`` tuple; valid after ``_allocate``."""
        st = self.state
        return (
            st.mem_dyad_ptr,
            st.dyad_src,
            st.dyad_dst,
            self.dyad_col,
            self.dyad_org,
            st.mem_active,
            st.col_mem_ptr,
            st.mem_org,
            st.mem_col,
        )

    def refresh_aggregates(self, level: Level | None = None) -> None:
        """Means of finer levels seen from coarser ones (variables.py: level resolution): those ``level``'s rules
        read, or all of them when ``level`` is None."""
        st = self.state
        self._allocate()
        level_code = -1 if level is None else int(level)
        stale = np.zeros(kernels.FRESH_SHAPE, np.bool_)  # recompute every column asked for
        kernels.refresh(level_code, st.D, st.M, st.K, st.O, self.topology, self.agg, self.need_all, stale)

    def run_level(self, level: Level, phase: Phase, active: np.ndarray) -> None:
        """The rows of one (level, phase) for the entities in ``active`` (used for the formation rows)."""
        g = self.plan.group(level, phase)
        if g.start == g.stop:
            return
        st, r, p = self.state, self.rules, self.plan
        stage = {Level.DYAD: st.col_stage[self.dyad_col], Level.MEMBER: st.col_stage[st.mem_col]}[level]
        own = np.empty(0, np.int64)  # an empty index map reads the entity's own column
        X, maps = {
            Level.DYAD: (st.D, (st.O, self.dyad_org, st.K, self.dyad_col, st.M, st.dyad_src, st.D, own)),
            Level.MEMBER: (st.M, (st.O, st.mem_org, st.K, st.mem_col, st.M, own, self.DM, own)),
        }[level]
        kernels.apply_rules(
            X,
            active,
            (1 << stage.astype(np.int32)),
            p.p_cols[g],
            p.p_mech_ptr[g.start : g.stop + 1],
            p.p_rule_idx,
            r.table,
            st.S,
            maps,
            (np.empty((0, 0)), np.empty((0, 0)), own, p.p_pre[g]),  # every row summed here
        )

    def apply_interventions(self) -> None:
        st = self.state
        kernels.apply_interventions(
            self.month,
            self.iv,
            self.design_cols,
            st.K,
            st.K_design,
            st.O,
            st.D,
            st.col_stage,
            self.col_cov,
            st.mem_col,
            st.mem_org,
            st.mem_active,
            self.dyad_col,
            st.dyad_it_base,
        )

    # ---- running months -------------------------------------------------------------------------------------------
    def begin_month(self) -> None:
        """The start of a month: its system values, then any formation due (voluntary search, mandates)."""
        st = self.state
        st.S[:] = self.S_sched[self.month]
        search, mandates = formation_due(self.scenario, self.month)
        if search:
            self.form_voluntary()
        for ev in mandates:
            self.form_mandated(ev.assignment, ev.partnership_type, ev.group_size, None)

    def advance(self, to: int) -> None:
        """Run months until ``self.month == to``: compiled segments between the months where collaborations form."""
        advance_together((self,), to)

    def step(self) -> None:
        self.advance(self.month + 1)

    def run(self) -> None:
        self.advance(self.scenario.horizon_months)


# ---- several runs in one kernel call --------------------------------------------------------------------------------
# kernels.run_months over the union of several runs' states: their entities side by side, the index arrays shifted
# to the union's positions. No kernel reads across entities that are not linked through these arrays, and the
# event draws are keyed by each entity's run and index in its run (kernels.events), so every run gets the numbers it
# gets alone (tests/test_joined_runs.py). A small run's month is mostly the fixed cost of a rule pass over a few
# entities; joined, each pass covers the entities of all runs (docs/performance.md, decision 56).
_REC_SRC = np.array([s for s, _ in RECORD_COLUMNS], np.int64)
_REC_COL = np.array([c for _, c in RECORD_COLUMNS], np.int64)
_REC_FIELDS = 3 + len(RECORD_COLUMNS) - 9  # stage, active members, the time series fields, the maturity score


# Replicates of one scenario run joined up to this many organisations in all. Small scenarios then share each rule
# pass's fixed cost; measured a run (one thread, docs/performance.md): the 20-organisation baseline 0.45-0.52x the
# time with 8 to 64 runs joined, 100 organisations 0.76-0.79x with 8, 200 organisations 0.91x with 3, and 400
# organisations 1.02-1.05x with 2 to 4 (per-entity work: they run alone).
JOIN_ORGS = 640


def joined_replicates(scenario) -> int:
    """How many replicates of ``scenario`` to run joined (advance_together): as many as fit in JOIN_ORGS."""
    return max(1, JOIN_ORGS // scenario.population.n_orgs)


def _segment_arrays(e: Engine) -> tuple[tuple[np.ndarray, str, str | None, bool], ...]:
    """The per-run arrays of kernels.run_months, in its order (the draws first, the aggregates last), each with the
    level of the entities along its last axis, the level an index array points into ("ptr": a CSR pointer array,
    one more than its entities), and whether the kernels write it."""
    st = e.state
    return (
        *((a, lv, None, False) for a, lv in zip(e.draws, ("org", "org", "col", "col"), strict=True)),
        (st.O, "org", None, True),
        (st.K, "col", None, True),
        (st.K_design, "col", None, True),
        (st.M, "mem", None, True),
        (st.D, "dyad", None, True),
        (st.col_stage, "col", None, True),
        (st.col_formed, "col", None, False),
        (st.col_stage_since, "col", None, True),
        (st.col_synergy_month, "col", None, True),
        (st.col_quick_win_done, "col", None, True),
        (e.col_cov, "col", None, False),
        (st.col_mem_ptr, "ptr", "mem", False),
        (st.mem_org, "mem", "org", False),
        (st.mem_col, "mem", "col", False),
        (st.mem_active, "mem", None, True),
        (st.mem_stall, "mem", None, True),
        (st.mem_dyad_ptr, "ptr", "dyad", False),
        (st.dyad_src, "dyad", "mem", False),
        (st.dyad_dst, "dyad", "mem", False),
        (e.dyad_col, "dyad", "col", False),
        (e.dyad_org, "dyad", "org", False),
        (st.dyad_it_base, "dyad", None, False),
        (st.org_workforce_base, "org", None, False),
        *((a, lv, None, True) for a, lv in zip(e.agg, ("mem", "col", "col", "col", "org", "org", "org"), strict=True)),
    )


def advance_together(engines: Sequence[Engine], to: int) -> None:
    """Run engines of one scenario (a sweep's replicates: other seeds or keys) until month ``to``: formation in
    Python, engine by engine, and the compiled months between formation months in one kernel call for all of them.
    The same numbers as advancing each engine alone."""
    if not engines:
        return
    first = engines[0]
    if len({id(e) for e in engines}) < len(engines):
        raise ValueError("advance_together: an engine appears more than once")
    if any(e.scenario is not first.scenario for e in engines):
        raise ValueError("advance_together: the engines must share one scenario object")
    if any(e.month != first.month for e in engines):
        raise ValueError("advance_together: the engines must be at the same month")
    to = min(to, first.scenario.horizon_months)
    while first.month < to:
        for e in engines:
            e.begin_month()
        stop = first.month + 1
        while stop < to and stop not in first.formation_months:
            stop += 1
        _run_segment(engines, first.month, stop)
        for e in engines:
            e.month = e.state.month = stop


def _joined(column: tuple[tuple[np.ndarray, str, str | None, bool], ...], at: dict[str, list[int]]) -> np.ndarray:
    """One argument of the union from each run's (array, level, points into, written): side by side; an index array
    shifted by each run's first position in the level it points into (a CSR pointer array: each next run's without
    its leading 0)."""
    _, level, into, _ = column[0]
    arrays = [a for a, *_ in column]
    if into is not None:
        first, *rest = arrays
        arrays = [first, *((a[1:] if level == "ptr" else a) + o for a, o in zip(rest, at[into][1:], strict=True))]
    return np.concatenate(arrays, axis=-1)


def _run_segment(engines: Sequence[Engine], m0: int, m1: int) -> None:
    """Months m0 .. m1-1 of every engine in one kernels.run_months call; each engine's part of the recorded months
    is appended to its records. One engine runs on its own arrays; several on the union of theirs, whose values
    are copied back into each engine's arrays afterwards."""
    for e in engines:
        e._allocate()
    parts = [_segment_arrays(e) for e in engines]
    if len(engines) == 1:
        arrays = [a for a, *_ in parts[0]]
    else:
        sizes = {lv: [getattr(e.state, f"n_{lv}") for e in engines] for lv in ("org", "col", "mem", "dyad")}
        at = {lv: [int(x) for x in np.cumsum([0, *n[:-1]])] for lv, n in sizes.items()}  # each run's first position
        arrays = [_joined(column, at) for column in zip(*parts, strict=True)]
    first, n_col = engines[0], sum(e.state.n_col for e in engines)
    rec = np.empty((m1 - m0, _REC_FIELDS, n_col))
    kernels.run_months(
        m0,
        m1,
        tuple(arrays[:4]),  # the draws
        first.P,
        first.S_sched,
        first.funding_at,
        first.iv,
        first.design_cols,
        first.state.S,
        *arrays[4:-7],
        first.rules.table,
        first.plan.arrays,
        tuple(arrays[-7:]),  # the aggregates
        rec,
        _REC_SRC,
        _REC_COL,
        first.need,
    )
    if len(engines) == 1:
        first.records.append((m0, rec))
        return
    for i, e in enumerate(engines):  # what the kernels wrote, back into each run's own arrays
        for (mine, level, _, written), joined in zip(parts[i], arrays, strict=True):
            if written:
                lo = at[level][i]
                mine[...] = joined[..., lo : lo + mine.shape[-1]]
        e.state.S[:] = first.state.S
        lo = at["col"][i]
        e.records.append((m0, np.ascontiguousarray(rec[:, :, lo : lo + e.state.n_col])))
