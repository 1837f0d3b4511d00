"""The reference implementation: a slow, readable Mesa model of the same rule table and phase order.

One ``mesa.Agent`` per organisation does its own monthly updates in plain Python over dictionaries of named
variables. It is the oracle for the numba engine (tests/test_oracle.py): given the same scenario and seed, both
draw the same random numbers and must agree to 1e-9 on every state variable at every step.

Shared with the engine, because they decide structure rather than dynamics: the population, the random streams,
partner choice and regulator assignment (``network``), and the pair contexts of new dyads. Everything that happens
each month is written again here, agent by agent, from the specification in docs/model.md.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from collabsim.engine import (
    AGE_HALF_MONTHS,
    DESIGN_VARS,
    INITIAL_COLLAB,
    INITIAL_DYAD,
    INITIAL_MEMBER,
    STOPPING_DECAY,
    WORKFORCE_PERSISTENCE,
    WORKFORCE_SHOCK,
    coverage_draws,
    formation_due,
    system_values,
)
from collabsim.kernels import CH_FAILURE, CH_SHOCK, CH_TURNOVER
from collabsim.kernels import event_uniform as uniform
from collabsim.network import (
    INTERVENTION_VARS,
    buddy_groups,
    build_design,
    dyad_context,
    geographic_groups,
    voluntary_groups,
)
from collabsim.population import generate_population
from collabsim.rng import Streams
from collabsim.rules import DISSOLVED, STAGES, compile_rules, load_rule_table
from collabsim.state import State
from collabsim.variables import COLUMN, VARIABLES, Level, Phase, names_at

CONNECTING, PLANNING, IMPLEMENTATION, MAINTENANCE = (STAGES.index(s) for s in STAGES[1:])
LEVEL_ORDER = (Level.DYAD, Level.MEMBER, Level.COLLAB, Level.ORG)


def _mean(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values) if values else 0.0


class Collaboration:
    def __init__(self, index: int, type_code: int, values: dict[str, float], month: int) -> None:
        self.index = index
        self.type_code = type_code
        self.vars = {name: 0.0 for name in names_at(Level.COLLAB)}
        self.vars.update(values)
        self.design = dict(self.vars)
        self.members: list[Membership] = []
        self.stage = CONNECTING
        self.formed = month
        self.stage_since = month
        self.synergy_month = -1
        self.quick_win_done = False

    @property
    def running(self) -> bool:
        return self.stage != DISSOLVED

    def active_members(self) -> list[Membership]:
        return [m for m in self.members if m.active]

    def value(self, name: str, model: ReferenceModel) -> float:
        lv = VARIABLES[name].level
        if lv == Level.SYSTEM:
            return model.system[name]
        if lv == Level.COLLAB:
            return self.vars[name]
        members = self.active_members()
        if lv == Level.ORG:
            return _mean([m.org.vars[name] for m in members])
        if lv == Level.MEMBER:
            return _mean([m.vars[name] for m in members])
        return _mean([m.dyad_mean(name) for m in members])


class Membership:
    def __init__(self, org: OrgAgent, collab: Collaboration) -> None:
        self.org = org
        self.collab = collab
        self.vars = {name: 0.0 for name in names_at(Level.MEMBER)}
        self.active = True
        self.stall = 0
        self.dyads: list[Dyad] = []

    def dyad_mean(self, name: str) -> float:
        if not self.active:
            return 0.0
        return _mean([d.vars[name] for d in self.dyads if d.dst.active])

    def value(self, name: str, model: ReferenceModel) -> float:
        lv = VARIABLES[name].level
        if lv == Level.SYSTEM:
            return model.system[name]
        if lv == Level.ORG:
            return self.org.vars[name]
        if lv == Level.COLLAB:
            return self.collab.vars[name]
        if lv == Level.MEMBER:
            return self.vars[name]
        return self.dyad_mean(name)


class Dyad:
    def __init__(self, src: Membership, dst: Membership, context: dict[str, float]) -> None:
        self.src = src
        self.dst = dst
        self.vars = {name: 0.0 for name in names_at(Level.DYAD)}
        self.vars.update(context)
        self.it_base = context["it_interoperability"]

    @property
    def active(self) -> bool:
        return self.src.active and self.dst.active

    def value(self, name: str, model: ReferenceModel) -> float:
        lv = VARIABLES[name].level
        if lv == Level.SYSTEM:
            return model.system[name]
        if lv == Level.ORG:
            return self.src.org.vars[name]
        if lv == Level.COLLAB:
            return self.src.collab.vars[name]
        if lv == Level.MEMBER:
            return self.src.vars[name]
        return self.vars[name]


class OrgAgent(mesa.Agent):
    """An organisation: its traits and outcomes, and its memberships of collaborations."""

    def __init__(self, model: ReferenceModel, index: int, values: dict[str, float]) -> None:
        super().__init__(model)
        self.index = index
        self.vars = dict(values)
        self.workforce_base = values["workforce_instability"]
        self.memberships: list[Membership] = []

    def active_memberships(self) -> list[Membership]:
        return [m for m in self.memberships if m.active]

    def value(self, name: str, model: ReferenceModel) -> float:
        lv = VARIABLES[name].level
        if lv == Level.SYSTEM:
            return model.system[name]
        if lv == Level.ORG:
            return self.vars[name]
        ms = self.active_memberships()
        if lv == Level.COLLAB:
            return _mean([m.collab.vars[name] for m in ms])
        if lv == Level.MEMBER:
            return _mean([m.vars[name] for m in ms])
        return _mean([m.dyad_mean(name) for m in ms])

    # -- the organisation's own monthly updates -------------------------------------------------------------------
    def draw_events(self, u_turnover: float, u_shock: float) -> None:
        E = self.model.scenario.events
        w = self.vars["workforce_instability"]
        self.vars["leadership_turnover"] = 1.0 if u_turnover < E.leadership_turnover_rate * (0.5 + w) else 0.0
        w = self.workforce_base + WORKFORCE_PERSISTENCE * (w - self.workforce_base)
        if u_shock < E.workforce_shock_rate:
            w += WORKFORCE_SHOCK * (1.0 - w)
        self.vars["workforce_instability"] = w

    def update_dyads(self, phase: Phase) -> None:
        for m in self.memberships:
            for d in m.dyads:
                if d.active:
                    self.model.update(d, Level.DYAD, phase, {STAGES[d.src.collab.stage]})

    def update_memberships(self, phase: Phase) -> None:
        for m in self.memberships:
            if m.active:
                self.model.update(m, Level.MEMBER, phase, {STAGES[m.collab.stage]})

    def update_self(self, phase: Phase) -> None:
        self.model.update(self, Level.ORG, phase, {STAGES[m.collab.stage] for m in self.active_memberships()})


class ReferenceModel(mesa.Model):
    """Same scenario, same seed, same numbers as ``Engine``, one plain-Python agent at a time."""

    def __init__(self, scenario, seed: int | None = None, key: tuple[int, ...] = ()) -> None:
        super().__init__(seed=0)  # Mesa's own generator is never used for the dynamics
        self.scenario = scenario
        self.streams = Streams(scenario.seed if seed is None else int(seed), key)
        table = load_rule_table().with_overrides(scenario.rules.disable, scenario.rules.weights)
        self.compiled = compile_rules(table)  # partner choice reads it, as the engine's does
        self.rows = self.compiled.rows  # the same rows the engine compiles, in table order
        pop = generate_population(scenario, self.streams)
        self.shadow = State.from_population(pop, system_values(scenario, 0))  # structure only (partner choice)
        self.pair_salt = self.streams.salt("pairs")
        self.event_salt = self.streams.salt("events")
        self.dyad_ctx = dyad_context(pop, self.shadow.O, scenario, self.pair_salt)
        self.system = dict(zip(names_at(Level.SYSTEM), system_values(scenario, 0), strict=True))
        self.orgs = [OrgAgent(self, i, dict(zip(names_at(Level.ORG), pop.O[:, i], strict=True))) for i in range(pop.n)]
        self.collabs: list[Collaboration] = []
        self.month = 0
        pa = scenario.partnering
        if pa.regime == "mandated":
            self.form_mandated(pa.assignment, pa.type, pa.group_size, pa.formalisation)
        else:
            self.form_voluntary()

    # -- rules --------------------------------------------------------------------------------------------------
    def update(self, entity, level: Level, phase: Phase, stages: set[str]) -> None:
        """Apply every row of (level, phase) to one entity in ``stages`` (an organisation: the stages of its running
        collaborations): rows acting in every stage always act, others when they share a stage with the entity.
        Contexts are read first, then all moved values written."""
        new = {}
        for name in sorted(
            {r.mechanism for r in self.rows if VARIABLES[r.mechanism].level == level and r.phase == phase},
            key=COLUMN.get,
        ):
            up = down = 0.0
            for r in self.rows:
                if r.mechanism != name or (r.stages != STAGES and not stages.intersection(r.stages)):
                    continue
                c = r.weight
                for var, neg in r.terms:
                    v = entity.value(var, self)
                    c *= (1.0 - v) if neg else v
                if r.sign > 0:
                    up += c
                else:
                    down += c
            x = entity.vars[name]
            new[name] = x - (1.0 - x) * math.expm1(-up) + x * math.expm1(-down)
        entity.vars.update(new)

    def run_phase(self, phase: Phase) -> None:
        for level in LEVEL_ORDER:
            if level == Level.DYAD:
                for org in self.orgs:
                    org.update_dyads(phase)
            elif level == Level.MEMBER:
                for org in self.orgs:
                    org.update_memberships(phase)
            elif level == Level.COLLAB:
                for k in self.collabs:
                    if k.running:
                        self.update(k, Level.COLLAB, phase, {STAGES[k.stage]})
            else:
                for org in self.orgs:
                    org.update_self(phase)

    # -- formation ----------------------------------------------------------------------------------------------
    def _sync_shadow(self) -> None:
        """Copy what partner choice reads (organisation values, who is still a member) into the shadow State."""
        for org in self.orgs:
            for name, v in org.vars.items():
                self.shadow.O[COLUMN[name], org.index] = v
        n = 0
        for k in self.collabs:
            for m in k.members:
                self.shadow.mem_active[n] = m.active
                n += 1

    def form_mandated(self, assignment, type_name, group_size, formalisation) -> None:
        self._sync_shadow()
        pop = self.shadow.pop
        groups = (
            buddy_groups(pop, self.shadow.O)
            if assignment == "buddy_better_performer"
            else geographic_groups(pop, group_size)
        )
        self._add(build_design(self.scenario, type_name, True, groups, pop, formalisation, self.month))

    def form_voluntary(self) -> None:
        self._sync_shadow()
        st, pa = self.shadow, self.scenario.partnering
        busy = np.zeros(st.n_org, bool)
        for k in self.collabs:
            if k.vars["mandated"] == 0.0:
                for m in k.members:
                    busy[m.org.index] |= m.active
        S_values = {n: self.system[n] for n in ("regulatory_favourability", "financial_constraints")}
        groups = voluntary_groups(
            self.scenario,
            st.pop,
            st.O,
            ~busy,
            self.streams["partners"],
            self.compiled,
            self.dyad_ctx,
            S_values,
            pa.type,
        )
        self._add(build_design(self.scenario, pa.type, False, groups, st.pop, pa.formalisation, self.month))

    def _add(self, design) -> None:
        st = self.shadow
        st.month = self.month
        cs, ms, ds = st.add_collaborations(design, self.dyad_ctx)
        new_collabs = []
        for k in range(cs.start, cs.stop):
            values = {name: float(st.K[COLUMN[name], k]) for name in names_at(Level.COLLAB)}
            collab = Collaboration(k, int(st.col_type[k]), values, self.month)
            collab.coverage_draw = float(coverage_draws(self.pair_salt, k + 1)[k])
            for m in range(int(st.col_mem_ptr[k]), int(st.col_mem_ptr[k + 1])):
                org = self.orgs[int(st.mem_org[m])]
                mem = Membership(org, collab)
                collab.members.append(mem)
                org.memberships.append(mem)
            new_collabs.append(collab)
        members = [m for c in new_collabs for m in c.members]
        for m_index, mem in zip(range(ms.start, ms.stop), members, strict=True):
            for d in range(int(st.mem_dyad_ptr[m_index]), int(st.mem_dyad_ptr[m_index + 1])):
                dst = members[int(st.dyad_dst[d]) - ms.start]
                ctx = {name: float(st.D[COLUMN[name], d]) for name in names_at(Level.DYAD)}
                mem.dyads.append(Dyad(mem, dst, ctx))
        self.collabs.extend(new_collabs)
        if not new_collabs:
            return
        dyn = self.scenario.dynamics
        for c in new_collabs:
            c.vars.update(INITIAL_COLLAB)
            for m in c.members:
                m.vars.update(INITIAL_MEMBER)
                m.vars["initial_faith"] = dyn.baseline_faith
                for d in m.dyads:
                    d.vars.update(INITIAL_DYAD)
                    d.vars["cultural_assimilation"] = 1.0 - d.vars["cultural_distance"]
                    d.vars["initial_trust"] = dyn.baseline_trust
        self.apply_interventions()
        for c in new_collabs:
            for m in c.members:
                for d in m.dyads:
                    self.update(d, Level.DYAD, Phase.FORMATION, {STAGES[c.stage]})
        for c in new_collabs:
            for m in c.members:
                self.update(m, Level.MEMBER, Phase.FORMATION, {STAGES[c.stage]})
                m.vars["faith"] = m.vars["initial_faith"]
                for d in m.dyads:
                    d.vars["trust"] = d.vars["initial_trust"]

    # -- the month ----------------------------------------------------------------------------------------------
    def apply_interventions(self) -> None:
        t = self.month
        for org in self.orgs:
            org.vars["champions"] = 0.0
        for k in self.collabs:
            for name in DESIGN_VARS:  # reset every month to their design value
                k.vars[name] = k.design[name]
            for m in k.members:
                for d in m.dyads:
                    d.vars["it_interoperability"] = d.it_base
        for iv in self.scenario.interventions:
            if not (iv.start_month <= t and (iv.end_month is None or t < iv.end_month)):
                continue
            for k in self.collabs:
                if not (k.running and k.coverage_draw < iv.coverage):
                    continue
                if iv.type in INTERVENTION_VARS:
                    var = INTERVENTION_VARS[iv.type]
                    k.vars[var] = max(k.vars[var], iv.intensity)
                elif iv.type == "mou":
                    k.vars["mou"] = 1.0
                    k.vars["formalisation"] = max(k.vars["formalisation"], 0.5)
                elif iv.type == "interoperable_it":
                    for m in k.members:
                        for d in m.dyads:
                            d.vars["it_interoperability"] = max(d.vars["it_interoperability"], iv.intensity)
                elif iv.type == "champions":
                    for m in k.members:
                        if m.active:
                            m.org.vars["champions"] = max(m.org.vars["champions"], iv.intensity)
        for k in self.collabs:
            opt = k.vars["formalisation_optimum"]
            k.vars["overformalisation"] = max(0.0, k.vars["formalisation"] - opt)
            k.vars["formalisation_appropriateness"] = 1.0 - abs(k.vars["formalisation"] - opt)

    def begin_month(self) -> None:
        """System values of the month, then the formation due at its start (voluntary search, mandates)."""
        self.system = dict(zip(names_at(Level.SYSTEM), system_values(self.scenario, self.month), strict=True))
        search, mandates = formation_due(self.scenario, self.month)
        if search:
            self.form_voluntary()
        for ev in mandates:
            self.form_mandated(ev.assignment, ev.partnership_type, ev.group_size, None)

    def events(self) -> None:
        sc, t = self.scenario, self.month
        for ev in sc.events.schedule:
            if ev.type == "funding_end" and ev.month == t:
                for k in self.collabs:
                    k.design["external_funding"] = 0.0
        self.apply_interventions()
        for org in self.orgs:
            org.draw_events(
                uniform(self.event_salt, t, org.index, CH_TURNOVER), uniform(self.event_salt, t, org.index, CH_SHOCK)
            )
        E = sc.events
        for k in self.collabs:
            for m in k.members:
                for d in m.dyads:
                    if d.active and (d.src.org.vars["leadership_turnover"] or d.dst.org.vars["leadership_turnover"]):
                        d.vars["trust"] -= E.turnover_trust_reset * max(0.0, d.vars["trust"] - d.vars["initial_trust"])
        for k in self.collabs:
            k.vars["collaborative_task_failure"] = float(
                k.running
                and k.stage >= IMPLEMENTATION
                and uniform(self.event_salt, t, k.index, CH_FAILURE) < E.task_failure_rate
            )
            win = k.running and not k.quick_win_done and k.vars["task_achievement"] >= E.quick_win_threshold
            k.vars["quick_wins"] = float(win)
            k.quick_win_done = k.quick_win_done or win
            k.vars["inappropriate_stopping"] *= STOPPING_DECAY

    def context(self) -> None:
        t, dyn = self.month, self.scenario.dynamics
        for k in self.collabs:
            age = float(t - k.formed)
            k.vars["collaboration_age"] = age / (age + AGE_HALF_MONTHS)
            expected = min(1.0, dyn.expected_pace * max(0, t - k.formed - dyn.connecting_months - dyn.planning_months))
            task = k.vars["task_achievement"]
            k.vars["slow_pace_of_development"] = min(1.0, max(0.0, 1.0 - task / expected)) if expected > 0 else 0.0
            k.vars["key_actor_absence"] = k.value("leadership_turnover", self)
            k.vars["collaborative_inertia"] = 1.0 - k.value("collaborative_behaviour", self)
            for m in k.members:
                for d in m.dyads:
                    d.vars["partner_reciprocation"] = d.dst.vars["collaborative_behaviour"]
        self.run_phase(Phase.CONTEXT)

    def behaviour(self) -> None:
        dyn = self.scenario.dynamics
        for k in self.collabs:
            for m in k.members:
                # past the threshold, a member stays past until risk or faith falls more than the hysteresis below
                h = dyn.threshold_hysteresis if m.vars["above_threshold"] > 0.5 else 0.0
                m.vars["above_threshold"] = float(
                    m.vars["risk_tolerance"] >= dyn.synergy_threshold_risk - h
                    and m.vars["faith"] >= dyn.synergy_threshold_faith - h
                )
        self.run_phase(Phase.BEHAVIOUR)

    def life_cycle(self) -> None:
        t, sc = self.month, self.scenario
        dyn, pa = sc.dynamics, sc.partnering
        for k in self.collabs:
            if not k.running:
                continue
            for stage, months in ((CONNECTING, dyn.connecting_months), (PLANNING, dyn.planning_months)):
                if k.stage == stage and t + 1 - k.stage_since >= months:
                    k.stage, k.stage_since = stage + 1, t + 1
            enough = k.value("above_threshold", self) >= dyn.synergy_share
            if k.stage == IMPLEMENTATION and enough:
                k.stage, k.stage_since = MAINTENANCE, t + 1
            elif k.stage == MAINTENANCE and not enough:
                k.stage, k.stage_since = IMPLEMENTATION, t + 1
            if k.stage == MAINTENANCE and k.synergy_month < 0:
                k.synergy_month = t + 1
        for k in self.collabs:
            for m in k.members:
                low = m.active and m.vars["faith"] < pa.leave_faith_threshold
                m.stall = m.stall + 1 if low else 0
                if low and k.vars["mandated"] == 0.0 and m.stall >= pa.leave_after_months:
                    m.active = False
                    k.vars["inappropriate_stopping"] = 1.0
        for k in self.collabs:
            if k.running and len(k.active_members()) < 2:
                k.stage, k.stage_since = DISSOLVED, t + 1
                for m in k.members:
                    m.active = False

    def step(self) -> None:
        self.begin_month()
        self.events()
        self.context()
        self.run_phase(Phase.MECHANISMS)
        self.behaviour()
        self.run_phase(Phase.OUTCOMES)
        self.life_cycle()
        self.month += 1

    # -- comparison -----------------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The agents' state as the engine's arrays (same shapes and ordering), for comparison."""
        members = [m for k in self.collabs for m in k.members]
        dyads = [d for m in members for d in m.dyads]

        def level(entities, names):  # (n_vars, n_entities), also when there are no entities
            return np.array([[e.vars[n] for e in entities] for n in names], dtype=float).reshape(len(names), -1)

        return {
            "S": np.array([self.system[n] for n in names_at(Level.SYSTEM)]),
            "O": level(self.orgs, names_at(Level.ORG)),
            "K": level(self.collabs, names_at(Level.COLLAB)),
            "M": level(members, names_at(Level.MEMBER)),
            "D": level(dyads, names_at(Level.DYAD)),
            "col_stage": np.array([k.stage for k in self.collabs], dtype=np.int8),
            "mem_active": np.array([m.active for m in members], dtype=bool),
        }
