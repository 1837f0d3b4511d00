"""The numba engine: phases, step and run over the structure-of-arrays State.

Each month runs the named phases of DESIGN.md section 2 in order: events, context, mechanisms, behaviour,
outcomes, life cycle, record. Per-entity work happens in numba kernels (``kernels``) or whole-array numpy; Python
only loops over months, phases and rule groups. ``reference.py`` implements the same month agent by agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabsim import kernels
from collabsim.network import (
    buddy_groups,
    build_design,
    dyad_context,
    geographic_groups,
    voluntary_groups,
)
from collabsim.population import generate_population
from collabsim.rng import Streams, pair_uniform
from collabsim.rules import DISSOLVED, STAGES, CompiledRules, compile_rules, load_rule_table
from collabsim.state import State
from collabsim.variables import COLUMN, N_VARS, VARIABLES, Level, Phase

IMPLEMENTATION = STAGES.index("implementation")
MAINTENANCE = STAGES.index("maintenance")
PLANNING = STAGES.index("planning")
CONNECTING = STAGES.index("connecting")
LEVEL_ORDER = (Level.DYAD, Level.MEMBER, Level.COLLAB, Level.ORG)  # finer levels first within a phase
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


@dataclass(frozen=True)
class RulePlan:
    """Rows of one (level, phase) grouped by the variable they move: rows rule_idx[mech_ptr[q]:mech_ptr[q+1]]
    move column mech_cols[q], in table order."""

    mech_cols: np.ndarray
    mech_ptr: np.ndarray
    rule_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.mech_cols)


def make_plans(rules: CompiledRules) -> dict[tuple[Level, Phase], RulePlan]:
    plans = {}
    for level in Level:
        for phase in Phase:
            sel = np.flatnonzero((rules.mech_level == level) & (rules.phase == phase))
            cols = np.unique(rules.mech_col[sel]).astype(np.int32)
            groups = [sel[rules.mech_col[sel] == c] for c in cols]
            ptr = np.zeros(len(cols) + 1, np.int64)
            ptr[1:] = np.cumsum([len(g) for g in groups])
            idx = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, np.int64)
            plans[(level, phase)] = RulePlan(cols, ptr, idx)
    return plans


def draw_month(streams: Streams, n_org: int, n_col: int) -> tuple[np.ndarray, np.ndarray]:
    """This month's uniform draws, indexed by entity: (n_org, 2) [leadership turnover, workforce shock] and
    (n_col, 1) [task failure]. Drawn outside every kernel, so thread count cannot change them."""
    rng = streams["events"]
    return rng.random((n_org, 2)), rng.random((n_col, 1))


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


def coverage_draws(salt: np.uint64, n_col: int) -> np.ndarray:
    """One uniform per collaboration deciding which interventions reach it: an intervention of coverage c reaches
    the collaborations whose draw is below c, so equal coverages reach the same collaborations (a trial arm gets
    the whole package) and smaller coverages reach a subset. Counter-based: a collaboration's draw never changes."""
    ks = np.arange(n_col)
    return pair_uniform(salt, ks, np.full(n_col, -1), channel=7)


INTERVENTION_VARS = {  # intervention type -> collaboration variable it raises
    "peer_review": "peer_review",
    "external_broker": "external_broker",
    "stakeholder_involvement": "stakeholder_involvement",
    "joint_appointments": "joint_appointments",
    "continuous_evaluation": "continuous_evaluation",
    "cultural_integration_plan": "cultural_integration_plan",
}


class Engine:
    """One run of one scenario: owns the State, the compiled rules and the random streams."""

    def __init__(self, scenario, seed: int | None = None, key: tuple[int, ...] = ()) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.streams = Streams(self.seed, key)
        table = load_rule_table().with_overrides(scenario.rules.disable, scenario.rules.weights)
        self.rules = compile_rules(table)
        self.plans = make_plans(self.rules)
        pop = generate_population(scenario, self.streams)
        self.state = State.from_population(pop, system_values(scenario, 0))
        self.pair_salt = self.streams.pair_seed()
        self.dyad_ctx = dyad_context(pop, self.state.O, scenario, self.pair_salt)
        self.month = 0
        self._aggregates_shape = (-1, -1)
        self.form_initial()

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
        self.apply_interventions()
        new_d = np.zeros(st.n_dyad, bool)
        new_d[ds] = True
        new_m = np.zeros(st.n_mem, bool)
        new_m[ms] = True
        self.refresh_aggregates(Level.DYAD)
        self.run_level(Level.DYAD, Phase.FORMATION, new_d)
        self.refresh_aggregates(Level.MEMBER)
        self.run_level(Level.MEMBER, Phase.FORMATION, new_m)
        st.D[COLUMN["trust"], ds] = st.D[COLUMN["initial_trust"], ds]
        st.M[COLUMN["faith"], ms] = st.M[COLUMN["initial_faith"], ms]

    # ---- rule evaluation --------------------------------------------------------------------------------------
    def refresh_aggregates(self, level: Level | None = None) -> None:
        """Means of finer levels seen from coarser ones (variables.py: level resolution): those ``level``'s rules
        read (dyad rules read none), or all of them when ``level`` is None."""
        st = self.state
        if self._aggregates_shape != (st.n_col, st.n_mem, st.n_dyad):
            nD, nM, nO, nK = (N_VARS[lv] for lv in (Level.DYAD, Level.MEMBER, Level.ORG, Level.COLLAB))
            self.DM = np.zeros((nD, st.n_mem))
            self.DK, self.MK, self.OK = np.zeros((nD, st.n_col)), np.zeros((nM, st.n_col)), np.zeros((nO, st.n_col))
            self.DO, self.MO, self.KO = (np.zeros((n, st.n_org)) for n in (nD, nM, nK))
            self.ident_m = np.arange(st.n_mem, dtype=np.int32)
            self.ident_k = np.arange(st.n_col, dtype=np.int32)
            self.ident_d = np.arange(st.n_dyad, dtype=np.int32)
            self.ident_o = np.arange(st.n_org, dtype=np.int32)
            self.dyad_col = st.mem_col[st.dyad_src]
            self.dyad_org = st.mem_org[st.dyad_src]
            self._aggregates_shape = (st.n_col, st.n_mem, st.n_dyad)
        if level == Level.DYAD:
            return
        kernels.member_means_of_dyads(st.D, st.mem_dyad_ptr, st.dyad_src, st.dyad_dst, st.mem_active, self.DM)
        if level in (None, Level.COLLAB):
            kernels.collab_means(self.DM, self.ident_m, st.col_mem_ptr, st.mem_active, self.DK)
            kernels.collab_means(st.M, self.ident_m, st.col_mem_ptr, st.mem_active, self.MK)
            kernels.collab_means(st.O, st.mem_org, st.col_mem_ptr, st.mem_active, self.OK)
        if level in (None, Level.ORG):
            kernels.org_means(self.DM, self.ident_m, st.mem_org, st.mem_active, st.n_org, self.DO)
            kernels.org_means(st.M, self.ident_m, st.mem_org, st.mem_active, st.n_org, self.MO)
            kernels.org_means(st.K, st.mem_col, st.mem_org, st.mem_active, st.n_org, self.KO)

    def run_level(self, level: Level, phase: Phase, active: np.ndarray) -> None:
        plan = self.plans[(level, phase)]
        if len(plan) == 0:
            return
        st, r = self.state, self.rules
        if level == Level.DYAD:
            X, bits = st.D, 1 << st.col_stage[self.dyad_col].astype(np.int32)
            maps = (st.O, self.dyad_org, st.K, self.dyad_col, st.M, st.dyad_src, st.D, self.ident_d)
        elif level == Level.MEMBER:
            X, bits = st.M, 1 << st.col_stage[st.mem_col].astype(np.int32)
            maps = (st.O, st.mem_org, st.K, st.mem_col, st.M, self.ident_m, self.DM, self.ident_m)
        elif level == Level.COLLAB:
            X, bits = st.K, 1 << st.col_stage.astype(np.int32)
            maps = (self.OK, self.ident_k, st.K, self.ident_k, self.MK, self.ident_k, self.DK, self.ident_k)
        else:  # an organisation is in the stages of its running collaborations (none: only all-stage rows act)
            X, bits = st.O, org_stage_bits(st)
            maps = (st.O, self.ident_o, self.KO, self.ident_o, self.MO, self.ident_o, self.DO, self.ident_o)
        out = np.empty((len(plan), X.shape[1]))
        kernels.apply_rules(
            X,
            active,
            bits,
            plan.mech_cols,
            plan.mech_ptr,
            plan.rule_idx,
            r.sign,
            r.weight,
            r.stage_mask,
            r.term_ptr,
            r.term_level,
            r.term_col,
            r.term_neg,
            st.S,
            *maps,
            out,
        )

    def run_phase(self, phase: Phase) -> None:
        st = self.state
        active = {
            Level.DYAD: st.dyad_active(),
            Level.MEMBER: st.mem_active,
            Level.COLLAB: st.col_active(),
            Level.ORG: np.ones(st.n_org, bool),
        }
        for level in LEVEL_ORDER:
            if len(self.plans[(level, phase)]):
                self.refresh_aggregates(level)
                self.run_level(level, phase, active[level])

    # ---- the month ----------------------------------------------------------------------------------------------
    def apply_interventions(self) -> None:
        """Interventions in force this month raise their variable to their intensity in the collaborations they
        cover (coverage drawn once per collaboration and intervention, counter-based)."""
        st, t = self.state, self.month
        st.K[:] = np.where(
            np.isin(np.arange(st.K.shape[0]), [COLUMN[v] for v in _DESIGN_VARS])[:, None], st.K_design, st.K
        )
        st.O[COLUMN["champions"]] = 0.0
        st.D[COLUMN["it_interoperability"]] = st.dyad_it_base
        if st.n_col == 0:
            return
        u = coverage_draws(self.pair_salt, st.n_col)
        for iv in self.scenario.interventions:
            on = iv.start_month <= t and (iv.end_month is None or t < iv.end_month)
            covered = st.col_active() & (u < iv.coverage)
            if not on or not covered.any():
                continue
            if iv.type in INTERVENTION_VARS:
                row = st.K[COLUMN[INTERVENTION_VARS[iv.type]]]
                row[covered] = np.maximum(row[covered], iv.intensity)
            elif iv.type == "mou":
                st.K[COLUMN["mou"], covered] = 1.0
                st.K[COLUMN["formalisation"], covered] = np.maximum(st.K[COLUMN["formalisation"], covered], 0.5)
            elif iv.type == "interoperable_it":
                dcov = covered[self_dyad_col(st)]
                st.D[COLUMN["it_interoperability"], dcov] = np.maximum(
                    st.D[COLUMN["it_interoperability"], dcov], iv.intensity
                )
            elif iv.type == "champions":
                mcov = covered[st.mem_col] & st.mem_active
                np.maximum.at(st.O[COLUMN["champions"]], st.mem_org[mcov], iv.intensity)
        # formalisation may have changed (an MoU): keep its Table 11 derivatives in step
        f, opt = st.K[COLUMN["formalisation"]], st.K[COLUMN["formalisation_optimum"]]
        st.K[COLUMN["overformalisation"]] = np.maximum(0.0, f - opt)
        st.K[COLUMN["formalisation_appropriateness"]] = 1.0 - np.abs(f - opt)

    def events(self) -> None:
        st, sc, t = self.state, self.scenario, self.month
        st.S[:] = system_values(sc, t)
        for ev in sc.events.schedule:
            if ev.type == "funding_end" and ev.month == t:
                st.K_design[COLUMN["external_funding"]] = 0.0
            if ev.type == "mandate" and ev.month == t:
                self.form_mandated(ev.assignment, ev.partnership_type, ev.group_size, None)
        self.apply_interventions()
        u_org, u_col = draw_month(self.streams, st.n_org, st.n_col)
        E = sc.events
        W = st.O[COLUMN["workforce_instability"]]
        turnover = u_org[:, 0] < E.leadership_turnover_rate * (0.5 + W)
        st.O[COLUMN["leadership_turnover"]] = turnover
        W[:] = st.org_workforce_base + WORKFORCE_PERSISTENCE * (W - st.org_workforce_base)
        shock = u_org[:, 1] < E.workforce_shock_rate
        W[shock] += WORKFORCE_SHOCK * (1.0 - W[shock])
        # rf-leadership-turnover-reset: a new leader wipes out part of the trust built above initial trust
        if st.n_dyad:
            hit = st.dyad_active() & (turnover[st.mem_org[st.dyad_src]] | turnover[st.mem_org[st.dyad_dst]])
            trust, init = st.D[COLUMN["trust"]], st.D[COLUMN["initial_trust"]]
            trust[hit] -= E.turnover_trust_reset * np.maximum(0.0, trust[hit] - init[hit])
        active = st.col_active()
        st.K[COLUMN["collaborative_task_failure"]] = (
            active & (st.col_stage >= IMPLEMENTATION) & (u_col[:, 0] < E.task_failure_rate)
        )
        win = active & ~st.col_quick_win_done & (st.K[COLUMN["task_achievement"]] >= E.quick_win_threshold)
        st.K[COLUMN["quick_wins"]] = win
        st.col_quick_win_done |= win
        st.K[COLUMN["inappropriate_stopping"]] *= STOPPING_DECAY

    def context(self) -> None:
        st, t, dyn = self.state, self.month, self.scenario.dynamics
        self.refresh_aggregates(Level.COLLAB)
        age = (t - st.col_formed).astype(float)
        st.K[COLUMN["collaboration_age"]] = age / (age + AGE_HALF_MONTHS)
        impl_months = np.maximum(0, t - st.col_formed - dyn.connecting_months - dyn.planning_months)
        expected = np.minimum(1.0, dyn.expected_pace * impl_months)
        task = st.K[COLUMN["task_achievement"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            st.K[COLUMN["slow_pace_of_development"]] = np.where(
                expected > 0, np.clip(1.0 - task / expected, 0.0, 1.0), 0.0
            )
        st.K[COLUMN["key_actor_absence"]] = self.OK[COLUMN["leadership_turnover"]]
        st.K[COLUMN["collaborative_inertia"]] = 1.0 - self.MK[COLUMN["collaborative_behaviour"]]
        st.D[COLUMN["partner_reciprocation"]] = st.M[COLUMN["collaborative_behaviour"], st.dyad_dst]
        self.run_phase(Phase.CONTEXT)

    def behaviour(self) -> None:
        st, dyn = self.state, self.scenario.dynamics
        # gl-threshold-synergy: collaborative behaviour needs both risk tolerance and faith past their thresholds
        st.M[COLUMN["above_threshold"]] = (st.M[COLUMN["risk_tolerance"]] >= dyn.synergy_threshold_risk) & (
            st.M[COLUMN["faith"]] >= dyn.synergy_threshold_faith
        )
        self.run_phase(Phase.BEHAVIOUR)

    def life_cycle(self) -> None:
        st, t, sc = self.state, self.month, self.scenario
        dyn, pa = sc.dynamics, sc.partnering
        active = st.col_active()
        for stage, months in ((CONNECTING, dyn.connecting_months), (PLANNING, dyn.planning_months)):
            move = active & (st.col_stage == stage) & (t + 1 - st.col_stage_since >= months)
            st.col_stage[move] = stage + 1
            st.col_stage_since[move] = t + 1
        self.refresh_aggregates(Level.COLLAB)
        # gl-threshold-synergy: enough members past the threshold is synergy (maintenance); falling back below it
        # is inertia again (implementation). The first month in synergy is kept (months to synergy).
        enough = self.MK[COLUMN["above_threshold"]] >= dyn.synergy_share
        for now, then in ((IMPLEMENTATION, MAINTENANCE), (MAINTENANCE, IMPLEMENTATION)):
            move = active & (st.col_stage == now) & (enough if then == MAINTENANCE else ~enough)
            st.col_stage[move] = then
            st.col_stage_since[move] = t + 1
        first = active & (st.col_stage == MAINTENANCE) & (st.col_synergy_month < 0)
        st.col_synergy_month[first] = t + 1
        # fn-progress-stall-dissolution: voluntary members leave when faith stays low; mandated members cannot
        voluntary = st.K[COLUMN["mandated"], st.mem_col] == 0.0
        low = st.mem_active & (st.M[COLUMN["faith"]] < pa.leave_faith_threshold)
        st.mem_stall[:] = np.where(low, st.mem_stall + 1, 0)
        leave = low & voluntary & (st.mem_stall >= pa.leave_after_months)
        st.mem_active[leave] = False
        st.K[COLUMN["inappropriate_stopping"], np.unique(st.mem_col[leave])] = 1.0
        n_active = np.add.reduceat(st.mem_active.astype(np.int64), st.col_mem_ptr[:-1]) if st.n_col else np.zeros(0)
        dissolve = active & (n_active < 2)
        st.col_stage[dissolve] = DISSOLVED
        st.col_stage_since[dissolve] = t + 1
        st.mem_active[dissolve[st.mem_col]] = False
        if pa.regime == "voluntary" and t + 1 < sc.horizon_months and (t + 1) % pa.search_interval_months == 0:
            self.month = t + 1  # new collaborations are formed at the start of next month
            self.form_voluntary()
            self.month = t

    def step(self) -> None:
        self.events()
        self.context()
        self.run_phase(Phase.MECHANISMS)
        self.behaviour()
        self.run_phase(Phase.OUTCOMES)
        self.life_cycle()
        self.month += 1
        self.state.month = self.month


_DESIGN_VARS = (
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


def org_stage_bits(st: State) -> np.ndarray:
    """Bit s set for organisation i when one of its active memberships is in a collaboration in stage s."""
    bits = np.zeros(st.n_org, np.int32)
    act = st.mem_active
    np.bitwise_or.at(bits, st.mem_org[act], 1 << st.col_stage[st.mem_col[act]].astype(np.int32))
    return bits


def self_dyad_col(st: State) -> np.ndarray:
    return st.mem_col[st.dyad_src]


assert all(VARIABLES[v].level == Level.COLLAB for v in _DESIGN_VARS)
