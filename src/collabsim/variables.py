"""The model's variable vocabulary: every quantity a rule can read or move.

Every variable lives at one *level* (system, organisation, collaboration, membership, dyad), takes values in
[0, 1], and has a *kind*:

- ``state``    moved by rules each month in its ``phase``;
- ``initial``  set once when a collaboration forms, by the formation rules (phase ``formation``);
- ``context``  set from the scenario or the population and held fixed (interventions switch some on and off);
- ``derived``  recomputed from other variables at the start of each month (named functions in ``kernels``);
- ``event``    a 0/1 flag raised for one month by an event (leadership turnover, task failure, quick win...).

Names follow ``core_variables`` of the CMOC catalogue (``theory/cmoc_catalogue.yaml``) where it has one.

Level resolution, used by rules: a rule acts at the level of the variable it moves. A context term at the same or
a *coarser* level is read directly (a dyad i→j in collaboration k reads its membership (i, k), organisation i,
collaboration k and the system); a term at a *finer* level is read as the mean over the entity's children (a
membership reads the mean over its outgoing dyads; a collaboration the mean over its active members; an
organisation the mean over its active memberships).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    SYSTEM = 0
    ORG = 1
    COLLAB = 2
    MEMBER = 3
    DYAD = 4


class Phase(IntEnum):
    FORMATION = 0
    CONTEXT = 1
    MECHANISMS = 2
    BEHAVIOUR = 3
    OUTCOMES = 4


@dataclass(frozen=True)
class Variable:
    name: str
    level: Level
    kind: str
    phase: Phase | None
    description: str


S, O, K, M, D = Level.SYSTEM, Level.ORG, Level.COLLAB, Level.MEMBER, Level.DYAD
F, C, ME, B, OU = Phase.FORMATION, Phase.CONTEXT, Phase.MECHANISMS, Phase.BEHAVIOUR, Phase.OUTCOMES

# (name, level, kind, phase, description)
_TABLE: list[tuple[str, Level, str, Phase | None, str]] = [
    # ---- system -------------------------------------------------------------------------------------------------
    ("regulatory_favourability", S, "context", None, "Policy and regulation favour collaboration (vs competition)"),
    ("financial_constraints", S, "context", None, "Financial pressure on the system"),
    ("external_crisis", S, "derived", None, "Severity of an external shock in force this month (e.g. pandemic)"),
    ("face_to_face_contact", S, "derived", None, "Share of normal face-to-face contact possible this month"),
    # ---- organisation: traits -----------------------------------------------------------------------------------
    ("organisation_size", O, "context", None, "Size, scaled to [0, 1] over the population (log of staff)"),
    ("baseline_performance", O, "context", None, "Performance before collaboration (audit/regulator rating)"),
    ("leadership_quality", O, "context", None, "Collaborative, open, consistent, inclusive leadership"),
    ("workforce_instability", O, "context", None, "Staff turnover, vacancies, restructuring"),
    ("organisational_flexibility", O, "context", None, "Flexibility and preserved autonomy"),
    ("implementation_capacity", O, "context", None, "Time, staff and money available for collaboration"),
    ("improvement_culture", O, "context", None, "Openness to feedback; improvement rather than blame"),
    ("perceived_professional_threat", O, "context", None, "Threat to services or professional standing"),
    ("champions", O, "context", None, "Champions promoting the collaboration inside the organisation (intervention)"),
    ("leadership_turnover", O, "event", None, "1 in a month the leader or a key person leaves"),
    # ---- organisation: performance chain (001 Box 2) ------------------------------------------------------------
    ("reputation", O, "state", OU, "Reputation in the health system"),
    ("system_communication", O, "state", OU, "Communication with the rest of the local system"),
    ("system_understanding", O, "state", OU, "Awareness of issues and needs in the local system"),
    ("coordination", O, "state", OU, "Coordination with other organisations"),
    ("patient_coverage", O, "state", OU, "Share of the population in need that is served"),
    ("duplication_of_effort", O, "state", OU, "Duplicated effort across organisations"),
    ("cost_savings", O, "state", OU, "Savings from avoided duplication and procurement"),
    ("economies_of_scale", O, "state", OU, "Purchasing power and scale benefits"),
    ("improvement_strategy_adoption", O, "state", OU, "Learning and implementing improvement strategies"),
    ("organisational_culture", O, "state", OU, "Productivity of attitudes and behaviours"),
    ("staff_attraction", O, "state", OU, "Recruitment: ability to attract staff"),
    ("local_influence", O, "state", OU, "Influence over the local and wider health economy"),
    ("resource_access", O, "state", OU, "Access to resources of partners"),
    ("service_consolidation", O, "state", OU, "Services consolidated to the best provider"),
    ("patient_travel_distance", O, "state", OU, "Extra travel distance for patients after consolidation"),
    ("clinical_technique_learning", O, "state", OU, "Sharing of clinical techniques"),
    ("cross_org_pathways", O, "state", OU, "Clinical pathways that cross organisations"),
    ("novel_equipment_access", O, "state", OU, "Access to novel technologies and expertise"),
    ("care_quality", O, "state", OU, "Quality of care"),
    # ---- collaboration: design (scenario) -----------------------------------------------------------------------
    ("mandated", K, "context", None, "1 if the collaboration is mandated by a regulator"),
    ("integration_depth", K, "context", None, "Integration depth of the partnership type (001 Table 2)"),
    ("formalisation", K, "context", None, "Formalisation: 0 none, 0.5 memorandum of understanding, 1 binding contract"),
    ("formalisation_optimum", K, "context", None, "Formalisation that suits the type and regime (001 Tables 2, 11)"),
    ("mou", K, "context", None, "1 if governed by a memorandum of understanding"),
    ("binding_contract", K, "context", None, "1 if governed by a binding contract"),
    ("cross_sector", K, "context", None, "Share of member pairs from different sectors"),
    ("number_of_organisations", K, "context", None, "Number of members, scaled: (n - 2) / (n + 8)"),
    ("buddying", K, "context", None, "1 if the partnership type is buddying"),
    ("ambition_level", K, "context", None, "Ambition of aims (0 timid, 0.5 appropriate, 1 grandiose)"),
    ("role_clarity", K, "context", None, "Clarity of roles"),
    ("accountability_arrangements", K, "context", None, "Appropriate, shared and clear accountability"),
    (
        "conflict_resolution_constructiveness",
        K,
        "context",
        None,
        "Constructive (1) vs destructive (0) conflict resolution",
    ),
    ("external_broker", K, "context", None, "An external broker or facilitator (intervention)"),
    ("stakeholder_involvement", K, "context", None, "Staff, patient and public involvement (intervention)"),
    ("continuous_evaluation", K, "context", None, "Continuous evaluation of progress (intervention)"),
    ("evaluation_dissemination", K, "context", None, "Progress is communicated to staff"),
    ("external_funding", K, "context", None, "External funding for the collaboration (scenario; cut by funding_end)"),
    ("peer_review", K, "context", None, "Reciprocal peer review visits (intervention)"),
    ("joint_appointments", K, "context", None, "Joint appointments and secondments (intervention)"),
    (
        "cultural_integration_plan",
        K,
        "context",
        None,
        "Transition support, joint teams, cultural due diligence (intervention)",
    ),
    ("relationship_building", K, "context", None, "Effort spent on meetings and day-to-day relationship maintenance"),
    # ---- collaboration: derived each month ----------------------------------------------------------------------
    ("aim_unambitiousness", K, "derived", None, "max(0, 1 - 2 ambition): the timid side of the inverted U"),
    ("overambition", K, "derived", None, "max(0, 2 ambition - 1): the grandiose side of the inverted U"),
    ("ambition_appropriateness", K, "derived", None, "1 - |2 ambition - 1|: the top of the inverted U"),
    (
        "confidence_weight",
        K,
        "derived",
        None,
        "How far confidence stands in for trust: max(mandated, integration depth)",
    ),
    ("overformalisation", K, "derived", None, "Formalisation above its optimum (001 Table 11)"),
    ("formalisation_appropriateness", K, "derived", None, "1 - |formalisation - its optimum|"),
    ("collaboration_age", K, "derived", None, "Age, scaled: months / (months + 18)"),
    ("slow_pace_of_development", K, "derived", None, "Shortfall of task achievement behind the expected pace"),
    ("key_actor_absence", K, "derived", None, "Share of members whose leader left this month"),
    ("collaborative_inertia", K, "derived", None, "1 - mean collaborative behaviour of the members"),
    # ---- collaboration: events and state ------------------------------------------------------------------------
    ("quick_wins", K, "event", None, "1 in a month an early milestone is reached"),
    ("collaborative_task_failure", K, "event", None, "1 in a month a collaborative task fails (acute event)"),
    ("inappropriate_stopping", K, "event", None, "1 after a member left the collaboration prematurely (decays)"),
    ("vision_clarity", K, "state", ME, "Clarity of aims and of the route to them"),
    ("functioning_workload", K, "state", ME, "Effort consumed by keeping the partnership functioning"),
    ("momentum", K, "state", ME, "Momentum from a drumbeat of visible successes"),
    ("task_achievement", K, "state", OU, "Cumulative achievement of the collaborative tasks"),
    # ---- membership (organisation i in collaboration k) ---------------------------------------------------------
    ("initial_faith", M, "initial", F, "Faith at the start, set by environment, legitimacy and form reputation"),
    ("perceived_legitimacy", M, "state", C, "Perceived authenticity and legitimacy of the collaboration"),
    ("perceived_task_complexity", M, "state", C, "Perceived complexity of the collaborative endeavour"),
    ("perception_of_progress", M, "state", ME, "Perceived advancement towards the collaboration's goals"),
    ("faith", M, "state", ME, "Belief in, and energy for, the collaboration"),
    ("intraorganisational_conflict", M, "state", ME, "Conflict inside the organisation about the collaboration"),
    ("risk_tolerance", M, "state", ME, "Willingness to take exploitable collaborative actions"),
    ("above_threshold", M, "derived", None, "1 when risk tolerance and faith are both past the synergy threshold"),
    ("collaborative_behaviour", M, "state", B, "Collaborative (1) rather than competitive (0) behaviour"),
    # ---- dyad (i -> j within k) ---------------------------------------------------------------------------------
    ("geographic_proximity", D, "context", None, "exp(-distance / proximity_scale_km)"),
    ("cultural_distance", D, "context", None, "Cultural incompatibility of i and j (higher across sectors)"),
    ("it_interoperability", D, "context", None, "1 if IT systems are compatible (or made interoperable)"),
    ("history_of_competition", D, "context", None, "Prior competition between i and j"),
    ("prior_successful_collaboration", D, "context", None, "Earlier successful collaboration between i and j"),
    ("size_discrepancy", D, "context", None, "|size_i - size_j|"),
    ("performance_gap", D, "context", None, "max(0, performance_j - performance_i): j is the better performer"),
    ("partner_reputation", D, "context", None, "Reputation of j as i sees it at formation"),
    ("initial_trust", D, "initial", F, "Trust at formation: history, reputation, agreements"),
    ("partner_reciprocation", D, "derived", None, "Collaborative behaviour of j in k last month (reciprocity)"),
    ("power_imbalance", D, "state", C, "Domination of i by j (size, resources, mandated pairing)"),
    ("interpersonal_communication", D, "state", ME, "Communication and information sharing between i and j"),
    ("conflict", D, "state", ME, "Perceived opposition between i and j"),
    ("cultural_assimilation", D, "state", ME, "Alignment of attitudes and behaviours of i and j"),
    ("vision_sharedness", D, "state", ME, "Agreement of i and j on the vision"),
    ("trust", D, "state", ME, "Trust of i in j (goodwill and competence)"),
    ("confidence", D, "state", ME, "Obligation-based expectation that j will cooperate"),
]

VARIABLES: dict[str, Variable] = {row[0]: Variable(*row) for row in _TABLE}

# Column of each variable inside its level's array (State stores one 2-D array per level, shape (n_vars, n)).
COLUMN: dict[str, int] = {}
for _level in Level:
    for _col, _v in enumerate(v for v in VARIABLES.values() if v.level == _level):
        COLUMN[_v.name] = _col
N_VARS: dict[Level, int] = {lv: sum(v.level == lv for v in VARIABLES.values()) for lv in Level}


def names_at(level: Level) -> list[str]:
    """Variable names stored at ``level``, in column order."""
    return [v.name for v in VARIABLES.values() if v.level == level]
