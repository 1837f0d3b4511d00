"""Scenarios: the closed, documented schema of everything a run can be told, and how it is loaded.

A scenario is a YAML file validated against the models below (pydantic v2). The schema is *closed* (an unknown key
is an error, with a "did you mean ...?" suggestion) and *strict* (``"40"`` is not a number, ``true`` is not a number,
``2.0`` is not an integer). Every field has a default, an allowed range or set of choices, and a one-line
description; ``collabsim scenario describe`` prints them all (see :func:`describe_schema`).

Loading::

    scenario = load_scenario("scenarios/mandated.yaml")      # or load_scenario("mandated"): a built-in scenario
    variant = scenario.with_overrides({"population.n_orgs": 40, "events.schedule[0].month": 24})
    variant.content_hash()                                   # identifies the resolved design (not name/description)

``extends: other.yaml`` (relative to the file; a bare name such as ``baseline`` is a built-in scenario) deep-merges
the file over its parent: mappings merge key by key, while lists and ``population.sector_mix`` are replaced whole.

All problems with user input raise :class:`collabsim.errors.CollabsimInputError` with a one-line message naming the
file, the dotted key, the value and what is allowed.

Theory: Millar et al. 2023 (seed 001) — partnership types from Table 2, life-cycle stages from Figure 7, the
formalisation optimum from the confidence element of Table 11; see ``docs/scenarios.md``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.resources
import json
import math
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from collabsim.errors import NO_VALUE, CollabsimInputError, format_value, suggest

__all__ = [
    "FORMALISATION_LEVELS",
    "INTERVENTION_TYPES",
    "PARTNERSHIP_TYPES",
    "PARTNERSHIP_TYPE_NAMES",
    "SECTORS",
    "CrisisEvent",
    "Dynamics",
    "Environment",
    "Events",
    "FundingEndEvent",
    "Intervention",
    "MandateEvent",
    "PandemicEvent",
    "Partnering",
    "Population",
    "RuleOverrides",
    "SWEEP_DESIGNS",
    "Scenario",
    "SchemaRow",
    "SweepParameter",
    "SweepSpec",
    "Trait",
    "TypeInfo",
    "builtin_scenario_names",
    "builtin_scenario_path",
    "describe_schema",
    "format_schema",
    "load_scenario",
    "parse_set_option",
    "validate_rule_ids",
]

# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------------------------

SECTORS: tuple[str, ...] = (
    "acute",
    "community",
    "primary_care",
    "mental_health",
    "social_care",
    "commissioner",
)
Sector = Literal["acute", "community", "primary_care", "mental_health", "social_care", "commissioner"]

PARTNERSHIP_TYPE_NAMES: tuple[str, ...] = (
    "informal_partnering",
    "buddying",
    "federation",
    "clinical_network",
    "joint_venture",
    "provider_collaborative",
    "pcn",
    "service_level_chain",
    "multiservice_chain_group_alliance",
    "management_contract",
    "ics",
    "merger",
    "acquisition",
)
PartnershipType = Literal[
    "informal_partnering",
    "buddying",
    "federation",
    "clinical_network",
    "joint_venture",
    "provider_collaborative",
    "pcn",
    "service_level_chain",
    "multiservice_chain_group_alliance",
    "management_contract",
    "ics",
    "merger",
    "acquisition",
]

INTERVENTION_TYPES: tuple[str, ...] = (
    "peer_review",
    "mou",
    "external_broker",
    "stakeholder_involvement",
    "joint_appointments",
    "interoperable_it",
    "continuous_evaluation",
    "champions",
    "cultural_integration_plan",
)
InterventionType = Literal[
    "peer_review",
    "mou",
    "external_broker",
    "stakeholder_involvement",
    "joint_appointments",
    "interoperable_it",
    "continuous_evaluation",
    "champions",
    "cultural_integration_plan",
]

#: Numeric formalisation of a collaboration (the ``formalisation`` variable of ``collabsim.variables``).
FORMALISATION_LEVELS: dict[str, float] = {"none": 0.0, "mou": 0.5, "contract": 1.0}


@dataclass(frozen=True)
class TypeInfo:
    """What the model assumes about one partnership type (001 Table 2)."""

    integration_depth: float
    """0.2 low, 0.35 low-medium, 0.5 medium, 0.7 medium-high, 0.9 high (catalogue ``integration_depth``)."""
    usual_regime: str
    """voluntary, mandated, either, or not_stated (catalogue ``mandated_or_voluntary``)."""
    usual_formalisation: str
    """none, mou or contract: what ``formalisation: type_default`` resolves to."""
    formalisation_optimum: float
    """Formalisation at which the type works best (001 Table 11, confidence element)."""
    description: str
    """The Table 2 definition, shortened."""


_DEPTH = {"low": 0.2, "low-medium": 0.35, "medium": 0.5, "medium-high": 0.7, "high": 0.9}

# Partnership types of 001 Table 2, transcribed from theory/cmoc_catalogue.yaml `partnership_types`
# (integration_depth, mandated_or_voluntary). Usual formalisation: informal types need none; Table 2 says a federation
# needs a memorandum of understanding; contractual and consolidating types (Dalton's contractual / consolidation
# categories, joint ventures creating a legal entity) rest on a binding contract; the statutory but relational forms
# (provider collaboratives, PCNs, ICSs) are governed by MoU-like agreements. Types whose regime the source leaves
# open are "not_stated" (the alliance/group model appears voluntary in Ch5, so it is recorded as voluntary).
# (name, integration depth, usual regime, usual formalisation, description)
_TYPE_TABLE: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "informal_partnering",
        "low",
        "voluntary",
        "none",
        "Voluntary, flexible small-scale collaboration focused on sharing organisational learning",
    ),
    (
        "buddying",
        "low",
        "mandated",
        "none",
        "Mandated mentoring of a lower-performing organisation by a more experienced one, for turnaround",
    ),
    (
        "federation",
        "low-medium",
        "voluntary",
        "mou",
        "Relatively informal joint delivery of a service or administration; an MoU but no legal agreement",
    ),
    (
        "clinical_network",
        "low",
        "not_stated",
        "none",
        "Network reducing unwarranted variation by optimising particular care pathways",
    ),
    (
        "joint_venture",
        "medium",
        "voluntary",
        "contract",
        "A new legal entity created by several organisations to deliver a service on their behalf",
    ),
    (
        "provider_collaborative",
        "medium",
        "mandated",
        "mou",
        "Providers sharing pathway and budget management for specialised services",
    ),
    (
        "pcn",
        "medium",
        "mandated",
        "mou",
        "Primary care network: general practices with community, mental health, social care and pharmacy services",
    ),
    (
        "service_level_chain",
        "low-medium",
        "not_stated",
        "contract",
        "A provider contracted to provide services for another",
    ),
    (
        "multiservice_chain_group_alliance",
        "medium",
        "voluntary",
        "contract",
        "A group setting governance, standards and back office for sites with delegated decision-making",
    ),
    (
        "management_contract",
        "medium-high",
        "not_stated",
        "contract",
        "Control of a set of operations handed to another organisation for an agreed duration",
    ),
    (
        "ics",
        "medium",
        "mandated",
        "mou",
        "Integrated care system: primary, community, acute, mental and public health and social care together",
    ),
    ("merger", "high", "either", "contract", "Two organisations combined into a new one"),
    ("acquisition", "high", "either", "contract", "One organisation subsumed by another"),
)


def _type_info(depth_label: str, regime: str, formalisation: str, description: str) -> TypeInfo:
    depth = _DEPTH[depth_label]
    # 001 Table 11 (confidence element): a low formalisation optimum for voluntary or low-integration types, a high one
    # for mandated or integrative types. Integrative types already carry their depth; mandated ones at least 0.6.
    optimum = max(depth, 0.6) if regime == "mandated" else depth
    return TypeInfo(depth, regime, formalisation, optimum, description)


PARTNERSHIP_TYPES: dict[str, TypeInfo] = {row[0]: _type_info(*row[1:]) for row in _TYPE_TABLE}
assert tuple(PARTNERSHIP_TYPES) == PARTNERSHIP_TYPE_NAMES

# ---------------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------------

_MAX_SEED = 2**63 - 1


class _FieldProblem(ValueError):
    """Raised inside validators: a problem with the value at ``loc`` (relative to the model being validated)."""

    def __init__(
        self,
        loc: tuple[str | int, ...],
        value: Any,
        allowed: str = "",
        problem: str | None = None,
        hint: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(problem or allowed)
        self.loc = loc
        self.value = value
        self.allowed = allowed
        self.problem = problem
        self.hint = hint
        self.key = key  # a pre-rendered key replacing loc (used for arms)


def _range(default: Any, description: str, ge: float | None = None, le: float | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if ge is not None:
        kwargs["ge"] = ge
    if le is not None:
        kwargs["le"] = le
    return Field(default, description=description, **kwargs)


def _unit(default: float, description: str) -> Any:
    return Field(default, ge=0.0, le=1.0, description=description)


class _Model(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        allow_inf_nan=False,
        validate_default=True,
        frozen=True,
    )


class Trait(_Model):
    """A trait distributed over organisations as a Beta distribution with this mean and standard deviation."""

    mean: float = _unit(0.5, "Mean of the Beta distribution")
    sd: float = _range(0.15, "Standard deviation of the Beta distribution (0 = every organisation at the mean)", 0, 0.5)

    @model_validator(mode="after")
    def _beta_feasible(self) -> Trait:
        if self.sd > 0 and not self.sd**2 < self.mean * (1.0 - self.mean):
            limit = math.sqrt(self.mean * (1.0 - self.mean))
            allowed = (
                f"with mean {self.mean:g} a Beta distribution needs sd < {limit:.4g} (or sd = 0 for a constant)"
                if limit > 0
                else f"with mean {self.mean:g} the trait is a constant: sd must be 0"
            )
            raise _FieldProblem(("sd",), self.sd, allowed)
        return self


_TRAIT_DEFAULTS: dict[str, tuple[float, float]] = {
    "leadership_quality": (0.5, 0.15),
    "implementation_capacity": (0.5, 0.15),
    "workforce_instability": (0.3, 0.1),
    "organisational_flexibility": (0.5, 0.15),
    "improvement_culture": (0.5, 0.15),
    "baseline_performance": (0.5, 0.15),
    "professional_threat": (0.3, 0.1),
}


def _trait(name: str, description: str) -> Any:
    mean, sd = _TRAIT_DEFAULTS[name]
    return Field(default_factory=lambda: Trait(mean=mean, sd=sd), description=description)


_DEFAULT_SECTOR_MIX: dict[str, float] = {
    "acute": 0.25,
    "community": 0.2,
    "primary_care": 0.3,
    "mental_health": 0.1,
    "social_care": 0.15,
}


class Population(_Model):
    """The organisations of the local health economy and their geography."""

    n_orgs: int = _range(20, "Number of organisations", 2, 1_000_000)
    sector_mix: dict[Sector, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: dict(_DEFAULT_SECTOR_MIX),
        description="Share of organisations in each sector (shares >= 0 summing to 1; an absent sector has none)",
        json_schema_extra={
            "allowed": "a mapping from sectors (" + ", ".join(SECTORS) + ") to shares >= 0 that sum to 1 (within 1e-6)"
        },
    )
    size_median_staff: float = _range(1500.0, "Median organisation size in staff (lognormal)", 10, 200_000)
    size_sigma: float = _range(1.0, "Sigma of the lognormal size distribution", 0, 3)
    region_km: float = _range(100.0, "Side of the square region, km", 1, 2000)
    spatial_clusters: int = _range(
        0, "0 = uniform placement; otherwise organisations cluster in this many towns", 0, 10_000
    )
    cluster_spread_km: float = _range(10.0, "Spread (sd) of organisations around their town centre, km", 0.1, 500)
    proximity_scale_km: float = _range(
        25.0, "Distance scale of geographic proximity: proximity = exp(-distance / scale), km", 0.1, 1000
    )
    culture_spread: float = _unit(0.3, "Spread of organisational cultures within a sector")
    cross_sector_culture_gap: float = _unit(0.3, "Extra cultural distance between organisations of different sectors")
    n_it_systems: int = _range(3, "Number of distinct IT systems in use (same system = interoperable)", 1, 50)
    history_of_competition: float = _unit(0.4, "Mean prior competition between pairs of organisations")
    prior_collaboration: float = _unit(0.2, "Share of pairs with a successful past collaboration")
    leadership_quality: Trait = _trait("leadership_quality", "Collaborative, open, consistent, inclusive leadership")
    implementation_capacity: Trait = _trait(
        "implementation_capacity", "Time, staff and money available for collaboration"
    )
    workforce_instability: Trait = _trait("workforce_instability", "Staff turnover, vacancies and restructuring")
    organisational_flexibility: Trait = _trait("organisational_flexibility", "Flexibility and preserved autonomy")
    improvement_culture: Trait = _trait("improvement_culture", "Openness to feedback; improvement rather than blame")
    baseline_performance: Trait = _trait("baseline_performance", "Performance before collaboration (audit rating)")
    professional_threat: Trait = _trait(
        "professional_threat", "Perceived threat of collaboration to services or professional standing"
    )

    @model_validator(mode="before")
    @classmethod
    def _partial_traits(cls, data: Any) -> Any:
        # `leadership_quality: {mean: 0.7}` keeps this trait's default sd, not Trait's generic one.
        if isinstance(data, dict):
            for name, (mean, sd) in _TRAIT_DEFAULTS.items():
                value = data.get(name)
                if isinstance(value, dict) and not {"mean", "sd"} <= value.keys():
                    data = {**data, name: {"mean": mean, "sd": sd, **value}}
        return data

    @field_validator("sector_mix")
    @classmethod
    def _shares_sum_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        total = math.fsum(mix.values())
        if abs(total - 1.0) > 1e-6:
            raise _FieldProblem(
                (),
                mix,
                "shares >= 0 that sum to 1 (within 1e-6)",
                problem=f"the shares sum to {total:.6g}, not 1",
            )
        return mix


class Environment(_Model):
    """The system around the collaborations."""

    regulatory_favourability: float = _unit(0.5, "Policy and regulation favour collaboration (1) or competition (0)")
    financial_constraints: float = _unit(0.5, "Financial pressure on the system")


class Partnering(_Model):
    """How collaborations form and what they are like (001 Table 2 type, design features from Ch4-Ch6)."""

    regime: Literal["voluntary", "mandated"] = Field(
        "voluntary",
        description="voluntary: organisations seek partners and may leave; mandated: a regulator assigns them",
    )
    type: PartnershipType = Field("federation", description="Partnership type (001 Table 2)")
    group_size: int = _range(2, "Organisations per collaboration", 2, 50)
    assignment: Literal["geographic", "buddy_better_performer"] = Field(
        "geographic",
        description="Mandated assignment: geographic footprints, or each lower performer buddied with a better one",
    )
    formalisation: Literal["none", "mou", "contract", "type_default"] = Field(
        "type_default",
        description="Governance: none, memorandum of understanding, binding contract, or the type's usual level",
    )
    ambition: float = _unit(0.5, "Ambition of the aims (0 timid, 0.5 appropriate, 1 grandiose)")
    vision_clarity: float = _unit(0.5, "Initial clarity of aims and of the route to them")
    role_clarity: float = _unit(0.5, "Clarity of roles")
    accountability: float = _unit(0.5, "Appropriate, shared and clear accountability arrangements")
    conflict_resolution: float = _unit(0.5, "Constructive (1) rather than destructive (0) conflict resolution")
    external_broker: float = _unit(0.0, "An external broker or facilitator (before interventions)")
    stakeholder_involvement: float = _unit(0.5, "Staff, patient and public involvement")
    evaluation: float = _unit(0.3, "Evaluation of the collaboration's progress, and its dissemination")
    funding: float = _unit(0.5, "External funding for the collaboration")
    relationship_building: float = _unit(0.5, "Effort spent on meetings and day-to-day relationship maintenance")
    search_radius_km: float = _range(50.0, "Voluntary partner search radius, km", 0.1, 5000)
    acceptance_threshold: float = _unit(
        0.3, "A voluntary invitee declines when its expected trust in the proposer is below this"
    )
    leave_faith_threshold: float = _unit(0.25, "Faith below which a voluntary member starts thinking of leaving")
    leave_after_months: int = _range(
        12, "Voluntary members leave after faith stays below the threshold this many months", 1, 600
    )
    search_interval_months: int = _range(
        12, "Unpartnered voluntary organisations look for partners again this often, months", 1, 600
    )

    @property
    def type_info(self) -> TypeInfo:
        """The :class:`TypeInfo` of this partnership type."""
        return PARTNERSHIP_TYPES[self.type]

    @property
    def resolved_formalisation(self) -> str:
        """The concrete formalisation: ``none``, ``mou`` or ``contract`` (``type_default`` -> the type's usual)."""
        if self.formalisation == "type_default":
            return PARTNERSHIP_TYPES[self.type].usual_formalisation
        return self.formalisation

    @property
    def formalisation_level(self) -> float:
        """The resolved formalisation as a number: 0 none, 0.5 MoU, 1 binding contract."""
        return FORMALISATION_LEVELS[self.resolved_formalisation]


class Dynamics(_Model):
    """Modelling parameters of the collaboration dynamics (modelling decisions, not from the source)."""

    synergy_threshold_risk: float = _unit(
        0.5, "Risk tolerance a member needs, with enough faith, to behave collaboratively"
    )
    synergy_threshold_faith: float = _unit(0.5, "Faith a member needs, with enough risk tolerance, to collaborate")
    threshold_hysteresis: float = Field(
        0.05,
        ge=0.0,
        le=0.5,
        description="A member past the threshold stays past until risk tolerance or faith falls this far below it",
    )
    baseline_trust: float = _unit(0.5, "Trust between new partners before the formation rules apply")
    baseline_faith: float = _unit(0.5, "Faith of a new member before the formation rules apply")
    connecting_months: int = _range(3, "Months a new collaboration spends in the connecting stage", 0, 120)
    planning_months: int = _range(6, "Months in the planning stage before implementation", 0, 120)
    synergy_share: float = _unit(
        0.5, "Share of members behaving collaboratively for the collaboration to enter maintenance"
    )
    expected_pace: float = _unit(
        0.02, "Task achievement per month that members expect; a shortfall is slow pace of development"
    )


class MandateEvent(_Model):
    """A regulator imposes collaborations at ``month``: organisations are assigned to groups and cannot leave."""

    type: Literal["mandate"] = Field("mandate", description="A regulator imposes partnerships (mandate)")
    month: int = Field(ge=0, le=1199, description="Month the mandate comes into force (0 = the first month)")
    assignment: Literal["geographic", "buddy_better_performer"] = Field(
        "geographic", description="How the regulator groups organisations"
    )
    partnership_type: PartnershipType = Field("ics", description="Partnership type the mandate creates")
    group_size: int = _range(5, "Organisations per mandated collaboration", 2, 50)


class PandemicEvent(_Model):
    """An external crisis that also cuts face-to-face contact (e.g. COVID-19)."""

    type: Literal["pandemic"] = Field("pandemic", description="A pandemic: crisis plus loss of face-to-face contact")
    month: int = Field(ge=0, le=1199, description="Month the pandemic starts")
    duration_months: int = _range(18, "Months the pandemic lasts", 1, 1200)
    severity: float = _unit(0.8, "Severity of the crisis while it lasts")
    contact_cut: float = _unit(0.7, "Share of face-to-face contact lost while it lasts")


class FundingEndEvent(_Model):
    """External funding of the collaborations stops."""

    type: Literal["funding_end"] = Field("funding_end", description="External funding ends")
    month: int = Field(ge=0, le=1199, description="Month the external funding stops")


class CrisisEvent(_Model):
    """An external crisis (financial, regulatory, a service failure) without loss of contact."""

    type: Literal["crisis"] = Field("crisis", description="An external crisis")
    month: int = Field(ge=0, le=1199, description="Month the crisis starts")
    duration_months: int = _range(12, "Months the crisis lasts", 1, 1200)
    severity: float = _unit(0.5, "Severity of the crisis while it lasts")


ScheduledEvent = Annotated[
    Union[MandateEvent, PandemicEvent, FundingEndEvent, CrisisEvent],  # noqa: UP007 - a union of models
    Field(discriminator="type"),
]


class Events(_Model):
    """Stochastic events (rates) and scheduled events."""

    leadership_turnover_rate: float = _unit(
        0.01, "Chance per organisation-month that the leader or a key person leaves (scaled by workforce instability)"
    )
    task_failure_rate: float = _unit(
        0.02, "Chance per collaboration-month of a collaborative task failure (from implementation on)"
    )
    quick_win_threshold: float = _unit(0.1, "Task achievement milestone whose first crossing is a quick win")
    workforce_shock_rate: float = _unit(0.005, "Chance per organisation-month of a workforce shock")
    turnover_trust_reset: float = _unit(
        0.5, "Share of the trust built above initial trust that a leadership change wipes out"
    )
    schedule: list[ScheduledEvent] = Field(
        default_factory=list,
        description="Scheduled events: mandate, pandemic, funding_end, crisis (each with a month < horizon_months)",
    )


class Intervention(_Model):
    """An intervention applied to a share of the collaborations from ``start_month`` to ``end_month``."""

    type: InterventionType = Field(description="What is done")
    start_month: int = _range(0, "First month the intervention acts", 0, 1199)
    end_month: int | None = _range(None, "Month it stops (exclusive); null = until the end of the run", 1, 1200)
    coverage: float = _unit(1.0, "Share of collaborations that receive it")
    intensity: float = _unit(1.0, "Strength of the intervention where it is applied")


class RuleOverrides(_Model):
    """Switch rules of the rule table off, or re-weight them (by rule id or CMOC id; see ``collabsim rules``)."""

    disable: list[str] = Field(
        default_factory=list,
        description="Rule ids or CMOC ids to switch off",
        json_schema_extra={"allowed": "a list of rule ids or CMOC ids (see `collabsim rules`)"},
    )
    weights: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict,
        description="Multiplier of a rule's weight, by rule id or CMOC id",
        json_schema_extra={"allowed": "a mapping from rule ids or CMOC ids to finite numbers >= 0"},
    )


# ---------------------------------------------------------------------------------------------------------------------
# Sweeps (the `sweep:` block; designs are built by collabsim.design, runs by collabsim.sweep)
# ---------------------------------------------------------------------------------------------------------------------

SWEEP_DESIGNS: tuple[str, ...] = ("grid", "lhs", "sobol", "morris")
#: Top-level keys a sweep may not vary: the seed is varied by replications; names and blocks are not parameters.
UNSWEEPABLE_KEYS: tuple[str, ...] = ("name", "description", "seed", "sweep", "arms")
_ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SweepParameter(_Model):
    """One swept scenario key: a list of ``values``, or a numeric range from ``low`` to ``high``."""

    values: list[Any] | None = Field(None, description="The values to try (anything the key allows)")
    low: float | None = Field(None, description="Lower end of a numeric range")
    high: float | None = Field(None, description="Upper end of a numeric range")
    num: int | None = _range(None, "grid: how many evenly spaced values from low to high, ends included", 2, 1_000_000)
    scale: Literal["linear", "log"] = Field("linear", description="Spacing of a range: linear, or log (low > 0)")

    @model_validator(mode="after")
    def _one_kind(self) -> SweepParameter:
        ranged = self.low is not None or self.high is not None
        if self.values is not None:
            if ranged or self.num is not None:
                raise _FieldProblem(
                    (),
                    NO_VALUE,
                    "either values: [...] or low and high",
                    problem="give either values or a range (low, high), not both",
                )
            if not self.values:
                raise _FieldProblem(("values",), [], "a list of at least one value", problem="empty range: no values")
            if self.scale != "linear":
                raise _FieldProblem(("scale",), self.scale, "linear (scale applies to ranges)")
            return self
        if not ranged:
            raise _FieldProblem(
                (), NO_VALUE, "values: [a, b, ...] or a range {low: ..., high: ...}", problem="no values and no range"
            )
        if self.low is None or self.high is None:
            missing = "low" if self.low is None else "high"
            raise _FieldProblem((missing,), NO_VALUE, "a number", problem="required for a range")
        if self.low > self.high:
            raise _FieldProblem(
                ("low",),
                self.low,
                f"a number below high ({_num(self.high)})",
                problem=f"lower end above upper end ({_num(self.low)} > {_num(self.high)})",
            )
        if self.low == self.high:
            raise _FieldProblem(
                ("high",),
                self.high,
                f"a number above low ({_num(self.low)}), or values: [{_num(self.low)}] for one value",
                problem="empty range: low equals high",
            )
        if self.scale == "log" and self.low <= 0:
            raise _FieldProblem(("low",), self.low, "a number > 0 (scale: log)")
        return self


class SweepSpec(_Model):
    """The ``sweep:`` block: an experiment design over scenario keys, with replications (see docs/sweeps.md)."""

    design: Literal["grid", "lhs", "sobol", "morris"] = Field(
        "grid",
        description="grid: every combination; lhs: Latin hypercube; sobol: Saltelli's scheme; morris: trajectories",
    )
    parameters: dict[str, SweepParameter] = Field(
        default_factory=dict,
        description="Swept scenario keys (dotted, as in --set), each values: [...] (or a plain list) or low/high",
    )
    replications: int = _range(
        1, "Runs of each design point and arm; replicate r uses the random streams keyed (r,)", 1, 1_000_000
    )
    samples: int | None = _range(
        None, "lhs: points; sobol: base sample N (a power of 2); morris: trajectories. Not for grid", 1, 10_000_000
    )
    seed: int | None = _range(
        None, "Seed of the design's own sampling (lhs, sobol, morris); null = the scenario's seed", 0, _MAX_SEED
    )
    levels: int = _range(4, "morris: number of levels of the grid the trajectories walk on", 2, 1000)
    second_order: bool = Field(False, description="sobol: sample for second-order indices too (N(2D+2) points)")
    groups: dict[str, str] | None = Field(
        None,
        description="sobol, morris: SALib groups, parameter key -> group name; the keys of a group move together and "
        "get one index; a parameter not listed is a group of its own (D becomes the number of groups)",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, data: Any) -> Any:
        # `key: [a, b, c]` is short for `key: {values: [a, b, c]}`.
        if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
            params = {}
            for key, value in data["parameters"].items():
                if isinstance(value, list):
                    value = {"values": value}
                elif not isinstance(value, dict):
                    raise _FieldProblem(
                        ("parameters", key),
                        value,
                        "a list of values, or a mapping with values: [...] or low, high (and num for a grid)",
                    )
                params[key] = value
            data = {**data, "parameters": params}
        return data

    @model_validator(mode="after")
    def _design_rules(self) -> SweepSpec:
        sampled = self.design != "grid"
        if sampled and not self.parameters:
            raise _FieldProblem(
                ("parameters",), {}, "at least one parameter", problem=f"a {self.design} design needs parameters"
            )
        if not sampled and self.samples is not None:
            raise _FieldProblem(
                ("samples",),
                self.samples,
                "null for a grid (its size is the product of the values)",
                problem="samples is for lhs, sobol and morris designs",
            )
        if sampled and self.samples is None:
            raise _FieldProblem(
                ("samples",), NO_VALUE, "an integer >= 1", problem=f"required by a {self.design} design"
            )
        if self.design == "sobol" and self.samples is not None and self.samples & (self.samples - 1):
            raise _FieldProblem(("samples",), self.samples, "a power of 2 (Saltelli's scheme): 64, 128, 256, ...")
        if self.design == "morris" and self.samples is not None and self.samples < 2:
            raise _FieldProblem(("samples",), self.samples, "an integer >= 2 (trajectories)")
        if self.groups is not None:
            if self.design not in ("sobol", "morris"):
                raise _FieldProblem(
                    ("groups",), NO_VALUE, "null for a grid or lhs design", problem="groups are for sobol and morris"
                )
            for key, group in self.groups.items():
                if key not in self.parameters:
                    hint = suggest(key, self.parameters)
                    raise _FieldProblem(
                        ("groups", key),
                        group,
                        "a key of sweep.parameters",
                        problem="not a swept parameter",
                        hint=f"did you mean {hint}?" if hint else None,
                    )
                if not group:
                    raise _FieldProblem(("groups", key), group, "a non-empty group name")
        keys = list(self.parameters)
        for key, param in self.parameters.items():
            try:
                parts = _parse_key(key, origin=None)
            except CollabsimInputError as exc:
                raise _FieldProblem(("parameters", key), NO_VALUE, exc.allowed, problem=exc.problem) from None
            if parts[0] in UNSWEEPABLE_KEYS:
                allowed = "a scenario key other than " + ", ".join(UNSWEEPABLE_KEYS)
                why = "replications vary the random streams" if parts[0] == "seed" else "not a model parameter"
                raise _FieldProblem(("parameters", key), NO_VALUE, allowed, problem=f"cannot be swept ({why})")
            for other in keys:
                if other != key and _keys_overlap(key, other):
                    raise _FieldProblem(
                        ("parameters", key), NO_VALUE, "distinct keys", problem=f"overlaps parameter {other}"
                    )
            if param.values is None and not sampled and param.num is None:
                raise _FieldProblem(
                    ("parameters", key, "num"),
                    NO_VALUE,
                    "an integer from 2 to 1000000",
                    problem="required for a range in a grid design",
                )
            if sampled and param.num is not None:
                raise _FieldProblem(
                    ("parameters", key, "num"),
                    param.num,
                    "null (lhs, sobol and morris sample the range)",
                    problem="num is for grid designs",
                )
        return self


def _keys_overlap(a: str, b: str) -> bool:
    """True when two dotted keys name the same setting or one lies inside the other."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and long[len(short)] in ".["


class Scenario(_Model):
    """A complete scenario: everything a run needs besides the seed it may be given."""

    name: str = Field("baseline", description="Short name of the scenario")
    description: str = Field("", description="What the scenario represents")
    seed: int = _range(20231, "Default random seed of a run (a run's --seed overrides it)", 0, _MAX_SEED)
    horizon_months: int = _range(120, "Months simulated", 1, 1200)
    population: Population = Field(default_factory=Population, description="Organisations and geography")
    environment: Environment = Field(default_factory=Environment, description="System context")
    partnering: Partnering = Field(default_factory=Partnering, description="How collaborations form and their design")
    dynamics: Dynamics = Field(default_factory=Dynamics, description="Modelling parameters of the dynamics")
    events: Events = Field(default_factory=Events, description="Stochastic and scheduled events")
    interventions: list[Intervention] = Field(default_factory=list, description="Interventions")
    rules: RuleOverrides = Field(default_factory=RuleOverrides, description="Rule table overrides")
    sweep: dict[str, Any] | None = Field(
        None,
        description="An experiment design over scenario keys (grid, lhs, sobol, morris) with replications "
        "(docs/sweeps.md)",
        json_schema_extra={
            "allowed": "null or a mapping with keys design, parameters, replications, samples, seed, levels, "
            "second_order, groups"
        },
    )
    arms: dict[str, dict[str, Any]] | None = Field(
        None,
        description="Named comparison arms, each applying its overrides over this scenario",
        json_schema_extra={"allowed": "null or a mapping from arm names to {dotted key: value} overrides"},
    )

    _source_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_field(self) -> Scenario:
        horizon = self.horizon_months
        n_orgs = self.population.n_orgs
        if self.partnering.group_size > n_orgs:
            raise _FieldProblem(
                ("partnering", "group_size"),
                self.partnering.group_size,
                f"an integer from 2 to {n_orgs} (no more than population.n_orgs = {n_orgs})",
            )
        for i, event in enumerate(self.events.schedule):
            if event.month >= horizon:
                raise _FieldProblem(
                    ("events", "schedule", i, event.type, "month"),
                    event.month,
                    f"an integer from 0 to {horizon - 1} (before horizon_months = {horizon})",
                )
            if isinstance(event, MandateEvent) and event.group_size > n_orgs:
                raise _FieldProblem(
                    ("events", "schedule", i, event.type, "group_size"),
                    event.group_size,
                    f"an integer from 2 to {n_orgs} (no more than population.n_orgs = {n_orgs})",
                )
        for i, item in enumerate(self.interventions):
            if item.start_month >= horizon:
                raise _FieldProblem(
                    ("interventions", i, "start_month"),
                    item.start_month,
                    f"an integer from 0 to {horizon - 1} (before horizon_months = {horizon})",
                )
            if item.end_month is not None and not item.start_month < item.end_month <= horizon:
                raise _FieldProblem(
                    ("interventions", i, "end_month"),
                    item.end_month,
                    f"null or an integer from {item.start_month + 1} (after start_month) to {horizon} (horizon_months)",
                )
        for arm in self.arms or {}:
            if not _ARM_NAME.fullmatch(arm):
                raise _FieldProblem(
                    (),
                    arm,
                    "letters, digits, '_', '-' and '.', starting with a letter or digit (at most 64)",
                    problem="not a valid arm name",
                    key=f"arms.{arm}",
                )
            self._arm_data(arm)  # raises _FieldProblem naming arms.<arm>...
        if self.sweep is not None:
            self._check_sweep()
        return self

    @field_validator("sweep")
    @classmethod
    def _sweep_block(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Validate the block on its own and store it normalised (defaults filled, list shorthand expanded)."""
        if value is None:
            return None
        try:
            spec = SweepSpec.model_validate(value)
        except ValidationError as exc:
            inner = _convert_validation_error(exc, None, SweepSpec, ("sweep",))
            raise _FieldProblem(
                (), inner.value, inner.allowed, problem=inner.problem, hint=inner.hint, key=inner.key
            ) from None
        data = spec.model_dump(mode="json", exclude_none=True)
        for param in data["parameters"].values():
            if "values" in param:
                param.pop("scale", None)  # always linear for values
        return data

    # -- sweep ------------------------------------------------------------------------------------------------------

    @property
    def sweep_spec(self) -> SweepSpec | None:
        """The ``sweep:`` block as a :class:`SweepSpec` (None when the scenario has none)."""
        return None if self.sweep is None else SweepSpec.model_validate(self.sweep)

    def sweep_key_kind(self, key: str) -> str:
        """What a swept key holds: ``integer``, ``number``, ``boolean``, ``choice`` or ``other``."""
        return _key_kind(_parse_key(key, origin=None), self.model_dump(mode="json", exclude={"arms", "sweep"}))

    def _check_sweep(self) -> None:
        """Every swept key is a scenario key, every value or bound is allowed there, and no arm sets it too."""
        spec = SweepSpec.model_validate(self.sweep)
        base = self.model_dump(mode="json", exclude={"arms", "sweep"})
        for key, param in spec.parameters.items():
            where = f"sweep.parameters.{key}"
            for arm, overrides in (self.arms or {}).items():
                for arm_key in overrides:
                    if _keys_overlap(key, str(arm_key)):
                        raise _FieldProblem(
                            (),
                            NO_VALUE,
                            "a key that no arm sets",
                            problem=f"also set by arm {arm} ({arm_key}): a key is either swept or set by arms",
                            key=where,
                        )
            parts = _parse_key(key, origin=None)
            kind = _key_kind(parts, base)
            if param.values is None and kind not in ("integer", "number"):
                _check_sweep_value(base, parts, key, where, None, unknown_only=True)
                raise _FieldProblem(
                    (),
                    NO_VALUE,
                    "values: [...] (a range needs a numeric key)",
                    problem=f"{key} holds {'a ' + kind if kind != 'other' else 'values that are not numbers'}",
                    key=where,
                )
            if param.values is not None:
                candidates = [(f"{where}.values[{i}]", v) for i, v in enumerate(param.values)]
            else:
                candidates = [(f"{where}.low", param.low), (f"{where}.high", param.high)]
            for shown, value in candidates:
                if kind == "integer" and isinstance(value, float) and value.is_integer():
                    value = int(value)
                _check_sweep_value(base, parts, key, shown, value)

    # -- arms -------------------------------------------------------------------------------------------------------

    def _arm_data(self, arm: str) -> Scenario:
        overrides = (self.arms or {})[arm]
        base = self.model_dump(mode="json", exclude={"arms", "sweep"})
        for key, value in overrides.items():
            try:
                parts: list[str | int] | None = _parse_key(key, origin=None)
            except CollabsimInputError:
                parts = None
            if not parts or parts[0] in ("arms", "sweep"):
                raise _FieldProblem(
                    (),
                    value,
                    "a dotted scenario key such as population.n_orgs (not arms or sweep)",
                    problem="not a valid key for an arm",
                    key=f"arms.{arm}.{key}",
                )
            try:
                _apply_override(base, parts, value, origin=None)
            except CollabsimInputError as exc:
                raise _FieldProblem(
                    (), value, exc.allowed, problem=exc.problem, hint=exc.hint, key=f"arms.{arm}.{key}"
                ) from None
        try:
            return Scenario.model_validate(base)
        except ValidationError as exc:
            inner = _convert_validation_error(exc, None)
            raise _FieldProblem(
                (),
                inner.value,
                inner.allowed,
                problem=inner.problem,
                hint=inner.hint,
                key=f"arms.{arm}: {inner.key}" if inner.key else f"arms.{arm}",
            ) from None

    def arm(self, name: str) -> Scenario:
        """This scenario with the overrides of arm ``name`` applied (and no arms of its own)."""
        if not self.arms or name not in self.arms:
            hint = suggest(name, self.arms or {})
            raise CollabsimInputError(
                self._source_file,
                "arms",
                name,
                "one of: " + ", ".join(self.arms) if self.arms else "no arms are defined",
                problem="no such arm",
                hint=f"did you mean {hint}?" if hint else None,
            )
        result = self._arm_data(name)
        result._source_file = self._source_file
        return result

    # -- public helpers ----------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, file: str | os.PathLike[str] | None = None) -> Scenario:
        """Validate a plain mapping (as read from YAML); problems raise one :class:`CollabsimInputError`."""
        return _validate(data, file)

    @property
    def source_file(self) -> Path | None:
        """The file this scenario was loaded from, if any."""
        return self._source_file

    def resolved_dict(self) -> dict[str, Any]:
        """A plain dict of every setting, defaults filled in (JSON types only)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`resolved_dict`, ignoring ``name`` and ``description``."""
        data = self.resolved_dict()
        data.pop("name", None)
        data.pop("description", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str = "overrides") -> Scenario:
        """A new scenario with ``{"dotted.key": value}`` applied, validated exactly like a file.

        Keys may index lists (``events.schedule[0].month``) and mappings (``population.sector_mix.acute``); a value
        replaces what was there (a mapping value replaces the whole mapping). Errors name ``source`` (``"--set"`` on
        the command line) and the key.
        """
        data = self.resolved_dict()
        for key, value in overrides.items():
            parts = _parse_key(key, origin=source)
            _apply_override(data, parts, value, origin=source)
        result = _validate(data, source)
        result._source_file = self._source_file
        validate_rule_ids(result, source)
        return result


def _key_kind(parts: list[str | int], data: dict[str, Any]) -> str:
    """``integer``, ``number``, ``boolean``, ``choice`` or ``other``: the type of the scenario key at ``parts``
    (``data`` is a resolved scenario, used to find the type tags of events)."""
    loc: list[Any] = []
    node: Any = data
    site: _Site | None = None
    for i, part in enumerate(parts):
        loc.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        site = _locate(tuple(loc))
        if site.annotation is None:
            return "other"
        if site.in_union and i + 1 < len(parts):
            tag = node.get("type") if isinstance(node, dict) else None
            if tag is None:
                return "other"
            loc.append(tag)
    if site is None or site.annotation is None:
        return "other"
    bare, _, _ = _strip(site.annotation)
    if bare is bool:
        return "boolean"
    if bare is int:
        return "integer"
    if bare is float:
        return "number"
    if typing.get_origin(bare) is Literal:
        return "choice"
    return "other"


def _check_sweep_value(
    base: dict[str, Any], parts: list[str | int], key: str, shown: str, value: Any, unknown_only: bool = False
) -> None:
    """Raise a _FieldProblem (named ``shown``) unless the scenario ``base`` with ``key`` set to ``value`` is valid
    (with ``unknown_only``, only when ``key`` is not a scenario key)."""
    data = copy.deepcopy(base)
    try:
        _apply_override(data, parts, value, origin=None)
    except CollabsimInputError as exc:
        raise _FieldProblem((), value, exc.allowed, problem=exc.problem, hint=exc.hint, key=shown) from None
    try:
        Scenario.model_validate(data)
    except ValidationError as exc:
        inner = _convert_validation_error(exc, None)
        if inner.problem == "unknown key":
            raise _FieldProblem(
                (),
                NO_VALUE,
                inner.allowed,
                problem="unknown scenario key",
                hint=inner.hint,
                key=f"sweep.parameters.{key}",
            ) from None
        if unknown_only:
            return
        if inner.key == _render_key(parts):
            raise _FieldProblem((), value, inner.allowed, problem=inner.problem, hint=inner.hint, key=shown) from None
        raise _FieldProblem(
            (),
            value,
            inner.allowed,
            problem=f"makes {inner.key} = {format_value(inner.value)} invalid",
            hint=inner.hint,
            key=shown,
        ) from None


# ---------------------------------------------------------------------------------------------------------------------
# Type introspection (shared by error messages and describe_schema)
# ---------------------------------------------------------------------------------------------------------------------


def _strip(tp: Any) -> tuple[Any, list[Any], bool]:
    """Remove Annotated and Optional layers: (bare type, constraint metadata, nullable)."""
    metadata: list[Any] = []
    nullable = False
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            args = typing.get_args(tp)
            tp = args[0]
            for extra in args[1:]:
                if isinstance(extra, FieldInfo):
                    metadata.extend(extra.metadata)
                    if extra.discriminator is not None:
                        metadata.append(("discriminator", extra.discriminator))
                else:
                    metadata.append(extra)
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) < len(typing.get_args(tp)):
                nullable = True
            if len(args) == 1:
                tp = args[0]
                continue
        return tp, metadata, nullable


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_models(tp: Any) -> list[type[BaseModel]] | None:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        if args and all(_is_model(a) for a in args):
            return list(args)
    return None


def _tag_of(model: type[BaseModel]) -> str:
    return typing.get_args(model.model_fields["type"].annotation)[0]


def _bounds(metadata: list[Any]) -> tuple[Any, Any, Any, Any]:
    ge = gt = le = lt = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            ge = m.ge
        elif isinstance(m, annotated_types.Gt):
            gt = m.gt
        elif isinstance(m, annotated_types.Le):
            le = m.le
        elif isinstance(m, annotated_types.Lt):
            lt = m.lt
    return ge, gt, le, lt


def _num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def _choices(tp: Any) -> list[Any]:
    return list(typing.get_args(tp))


def _allowed_text(tp: Any, metadata: list[Any] | None = None) -> str:
    """What is allowed for a value of type ``tp`` with constraints ``metadata``, in words."""
    bare, extra, nullable = _strip(tp)
    metadata = list(metadata or []) + extra
    text = _allowed_bare(bare, metadata)
    return f"null or {text}" if nullable else text


def _allowed_bare(tp: Any, metadata: list[Any]) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        noun = "an integer" if tp is int else "a number"
        ge, gt, le, lt = _bounds(metadata)
        low = (">=", ge) if ge is not None else (">", gt) if gt is not None else None
        high = ("<=", le) if le is not None else ("<", lt) if lt is not None else None
        if low and high and low[0] == ">=" and high[0] == "<=":
            return f"{noun} from {_num(low[1])} to {_num(high[1])}"
        bits = [f"{bound[0]} {_num(bound[1])}" for bound in (low, high) if bound is not None]
        if tp is float:
            noun = "a finite number"
        return f"{noun} " + " and ".join(bits) if bits else noun
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of: " + ", ".join(str(c) for c in _choices(tp))
    if tp is Any:
        return "any value"
    models = _union_models(tp)
    if models:
        return "a mapping whose type is one of: " + ", ".join(_tag_of(m) for m in models)
    if origin is list:
        (item,) = typing.get_args(tp)
        bare, _, _ = _strip(item)
        models = _union_models(bare)
        if models:
            return "a list of events, each a mapping whose type is one of: " + ", ".join(_tag_of(m) for m in models)
        if _is_model(bare):
            return f"a list of mappings ({bare.__name__.lower()} settings)"
        return "a list of " + _plural(_allowed_text(item))
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        key_bare, _, _ = _strip(key_tp)
        if typing.get_origin(key_bare) is Literal:
            keys = "keys " + ", ".join(str(c) for c in _choices(key_bare))
        else:
            keys = "names"
        return f"a mapping from {keys} to {_allowed_text(value_tp)}"
    if _is_model(tp):
        return "a mapping with keys: " + ", ".join(tp.model_fields)
    return getattr(tp, "__name__", str(tp))


def _field_allowed(field: FieldInfo) -> str:
    """What a model field allows: its ``allowed`` note when it has one, else derived from its type."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("allowed"), str):
        return extra["allowed"]
    return _allowed_text(field.annotation, list(field.metadata))


def _plural(text: str) -> str:
    for article in ("an ", "a "):
        if text.startswith(article):
            noun, _, rest = text[len(article) :].partition(" ")
            return f"{noun}s {rest}".strip()
    return text


def _type_name(tp: Any) -> str:
    bare, _, nullable = _strip(tp)
    origin = typing.get_origin(bare)
    if bare is bool:
        name = "boolean"
    elif bare is int:
        name = "integer"
    elif bare is float:
        name = "number"
    elif bare is str:
        name = "string"
    elif origin is Literal:
        name = "choice"
    elif origin is list:
        name = "list"
    elif origin is dict or _is_model(bare):
        name = "mapping"
    else:
        name = "any"
    return f"{name} or null" if nullable else name


@dataclass
class _Site:
    """Where a pydantic error location points in the schema."""

    parts: list[str | int]  # rendered path (union tags and '[key]' markers removed)
    annotation: Any  # the type expected there (None when unknown)
    metadata: list[Any]  # constraints of that field
    parent: Any  # the model (or union) holding the last key, for unknown-key suggestions
    field: FieldInfo | None  # the model field the location ends at, if it ends at one
    dict_key: bool  # the error is about a mapping key, not a value
    in_union: list[type[BaseModel]] | None  # the error is at a discriminated union (tag problems)


def _locate(loc: tuple[Any, ...], root: Any = None, prefix: tuple[str | int, ...] = ()) -> _Site:
    """Where ``loc`` points in the schema of ``root`` (default: Scenario); rendered keys start with ``prefix``."""
    tp: Any = Scenario if root is None else root
    metadata: list[Any] = []
    parts: list[str | int] = list(prefix)
    parent: Any = None
    field: FieldInfo | None = None
    dict_key = False
    i = 0
    while i < len(loc):
        el = loc[i]
        field = None
        bare, extra, _ = _strip(tp) if tp is not None else (None, [], False)
        origin = typing.get_origin(bare)
        models = _union_models(bare) if bare is not None else None
        if _is_model(bare):
            parent = bare
            parts.append(el)
            field = bare.model_fields.get(el) if isinstance(el, str) else None
            if field is None:
                tp, metadata = None, []
            else:
                tp, metadata = field.annotation, list(field.metadata)
        elif models is not None:
            match = [m for m in models if _tag_of(m) == el]
            if not match:
                break
            tp, metadata = match[0], []
        elif origin is list and isinstance(el, int):
            parts.append(el)
            tp, metadata = typing.get_args(bare)[0], []
        elif origin is dict:
            parts.append(el)
            key_tp, value_tp = typing.get_args(bare)
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                dict_key = True
                tp, metadata = key_tp, []
                i += 1
            else:
                tp, metadata = value_tp, []
        else:
            parts.append(el)
            tp, metadata = None, []
        i += 1
    in_union = None
    if tp is not None:
        bare, extra, _ = _strip(tp)
        metadata = metadata + extra
        in_union = _union_models(bare)
    return _Site(parts, tp, metadata, parent, field, dict_key, in_union)


def _render_key(parts: list[str | int] | tuple[str | int, ...]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


@functools.cache
def _all_leaf_keys() -> tuple[str, ...]:
    """Every documented key and every section above one (``population``, ``population.leadership_quality``...)."""
    keys: dict[str, None] = {}
    for row in describe_schema():
        parts = row.key.split(".")
        for i in range(1, len(parts) + 1):
            keys[".".join(parts[:i])] = None
    return tuple(keys)


def _unknown_key_hint(site: _Site) -> tuple[str | None, str]:
    """(hint, allowed) for an unknown key at ``site``."""
    unknown = site.parts[-1]
    prefix = site.parts[:-1]
    siblings: list[str] = list(site.parent.model_fields) if _is_model(site.parent) else []
    allowed = "keys here: " + ", ".join(siblings) if siblings else ""
    close = suggest(str(unknown), siblings)
    if close:
        return f"did you mean {_render_key([*prefix, close])}?", ""
    # The key may belong to another section (e.g. `n_orgs` at the top level).
    elsewhere = [k for k in _all_leaf_keys() if k.rsplit(".", 1)[-1] == unknown and "[" not in k and k != unknown]
    if elsewhere:
        return f"did you mean {elsewhere[0]}?", ""
    leaves = {k.rsplit(".", 1)[-1]: k for k in _all_leaf_keys() if "[" not in k}
    close = suggest(str(unknown), leaves, cutoff=0.75)
    if close:
        return f"did you mean {leaves[close]}?", ""
    return None, allowed


def _convert_validation_error(
    exc: ValidationError, file: str | os.PathLike[str] | None, root: Any = None, prefix: tuple[str | int, ...] = ()
) -> CollabsimInputError:
    """One :class:`CollabsimInputError` for the first error of a pydantic ``ValidationError``.

    ``root`` is the model that was validated (default: Scenario); keys are rendered below ``prefix``.
    """
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input", NO_VALUE)
    ctx = err.get("ctx") or {}

    problem = ctx.get("error")
    if isinstance(problem, _FieldProblem):
        site = _locate(loc + problem.loc, root, prefix)
        key = problem.key or _render_key(site.parts) or None
        return CollabsimInputError(
            file, key, problem.value, problem.allowed, problem=problem.problem, hint=problem.hint
        )

    site = _locate(loc, root, prefix)
    key = _render_key(site.parts) or None

    if kind == "extra_forbidden":
        hint, allowed = _unknown_key_hint(site)
        return CollabsimInputError(file, key, value, allowed, problem="unknown key", hint=hint)

    if kind in ("union_tag_invalid", "union_tag_not_found") and site.in_union:
        tags = [_tag_of(m) for m in site.in_union]
        key = _render_key([*site.parts, "type"])
        allowed = "one of: " + ", ".join(tags)
        if kind == "union_tag_not_found":
            return CollabsimInputError(file, key, NO_VALUE, allowed, problem="missing (every event needs a type)")
        tag = ctx.get("tag", value)
        close = suggest(str(tag), tags)
        return CollabsimInputError(file, key, tag, allowed, hint=f"did you mean {close}?" if close else None)

    if site.field is not None:
        allowed = _field_allowed(site.field)
    elif site.annotation is not None:
        allowed = _allowed_text(site.annotation, site.metadata)
    else:
        allowed = ""
    if not allowed:
        allowed = str(err.get("msg", ""))

    if kind == "missing":
        return CollabsimInputError(file, key, NO_VALUE, allowed, problem="required but missing")

    if site.dict_key:
        choices = _choices(_strip(site.annotation)[0]) if site.annotation is not None else []
        close = suggest(str(value), [str(c) for c in choices])
        return CollabsimInputError(
            file, key, NO_VALUE, allowed, problem="unknown key", hint=f"did you mean {close}?" if close else None
        )

    hint = None
    bare = _strip(site.annotation)[0] if site.annotation is not None else None
    if typing.get_origin(bare) is Literal and isinstance(value, str):
        close = suggest(value, [str(c) for c in _choices(bare)])
        hint = f"did you mean {close}?" if close else None
    return CollabsimInputError(file, key, value, allowed, hint=hint)


def _validate(data: Any, file: str | os.PathLike[str] | None) -> Scenario:
    if not isinstance(data, dict):
        raise CollabsimInputError(
            file,
            None,
            data,
            "a mapping of scenario keys (name, population, partnering, ...)",
            problem=f"the scenario must be a mapping, not {_kind(data)}",
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _convert_validation_error(exc, file) from None


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e3`` as a number (YAML 1.2) and rejects duplicate keys."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _parse_yaml(text: str, file: str | os.PathLike[str] | None) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise CollabsimInputError(file, problem=f"malformed YAML{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise CollabsimInputError(file, problem=f"malformed YAML: {' '.join(str(exc).split())}") from None


def _read_text(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CollabsimInputError(shown, problem="file not found") from None
    except IsADirectoryError:
        raise CollabsimInputError(shown, problem="is a directory, not a scenario file") from None
    except PermissionError:
        raise CollabsimInputError(shown, problem="cannot be read: permission denied") from None
    except UnicodeDecodeError as exc:
        raise CollabsimInputError(shown, problem=f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CollabsimInputError(shown, problem=f"cannot be read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------------------------------
# Built-in scenarios, extends, loading
# ---------------------------------------------------------------------------------------------------------------------


def _builtin_dirs() -> Iterator[Path]:
    try:
        res = importlib.resources.files("collabsim").joinpath("scenarios")
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - not importable as a package
        res = None
    if res is not None:
        try:
            path = Path(os.fspath(res))  # type: ignore[arg-type]
        except TypeError:
            path = None
        if path is not None and path.is_dir():
            yield path
    repo = Path(__file__).resolve().parents[2] / "scenarios"  # editable install / source checkout
    if repo.is_dir():
        yield repo


def builtin_scenario_names() -> list[str]:
    """Names of the scenarios shipped with collabsim (``baseline``, ``mandated``, ...)."""
    names: set[str] = set()
    for d in _builtin_dirs():
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def builtin_scenario_path(name: str) -> Path:
    """Path of the built-in scenario ``name`` (``baseline`` or ``baseline.yaml``).

    Looks in the installed package (``collabsim/scenarios``) first, then in the ``scenarios/`` directory of a source
    checkout. Raises :class:`CollabsimInputError` when there is no such scenario.
    """
    stem = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    if stem and "/" not in stem and "\\" not in stem and stem not in (".", ".."):
        for d in _builtin_dirs():
            candidate = d / f"{stem}.yaml"
            if candidate.is_file():
                return candidate
    names = builtin_scenario_names()
    close = suggest(stem, names)
    raise CollabsimInputError(
        None,
        None,
        name,
        "a scenario file or a built-in scenario: " + ", ".join(names),
        problem="no such scenario",
        hint=f"did you mean {close}?" if close else None,
    )


def _is_bare_name(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", text)) and text not in (".", "..")


def _shown(path: Path) -> str:
    """How a path is shown in messages: relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _resolve_extends(value: Any, file: Path, shown: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise CollabsimInputError(
            shown, "extends", value, "a scenario file (relative to this file) or a built-in scenario name"
        )
    candidate = Path(value).expanduser()
    if not candidate.is_absolute():
        candidate = file.parent / candidate
    if candidate.is_file():
        return candidate
    if _is_bare_name(value):
        try:
            return builtin_scenario_path(value)
        except CollabsimInputError:
            pass
    names = builtin_scenario_names()
    close = suggest(Path(value).stem, names)
    raise CollabsimInputError(
        shown,
        "extends",
        value,
        "a scenario file relative to this file, or a built-in scenario: " + ", ".join(names),
        problem=f"no such file ({_shown(candidate)})",
        hint=f"did you mean {close}?" if close else None,
    )


_REPLACED_WHOLE = {("population", "sector_mix")}


def _deep_merge(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """``over`` merged into ``base``: mappings key by key; lists, scalars and ``population.sector_mix`` replaced."""
    if isinstance(base, dict) and isinstance(over, dict) and path not in _REPLACED_WHOLE:
        out = dict(base)
        for k, v in over.items():
            out[k] = _deep_merge(base[k], v, (*path, str(k))) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _load_layers(path: Path, chain: tuple[Path, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The file and its ancestors, child first, each as (shown name, mapping without ``extends``)."""
    shown = _shown(path)
    text = _read_text(path, shown)
    data = _parse_yaml(text, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CollabsimInputError(
            shown,
            None,
            NO_VALUE,
            "a mapping of scenario keys (name, population, partnering, ...)",
            problem=f"the top level must be a mapping of keys, not {_kind(data)}",
        )
    if "extends" not in data:
        return [(shown, data)]
    parent_ref = data.pop("extends")
    parent = _resolve_extends(parent_ref, path, shown).resolve()
    if parent in chain or parent == path.resolve():
        cycle = " -> ".join(_shown(p) for p in (*chain, path.resolve(), parent))
        raise CollabsimInputError(
            shown,
            "extends",
            parent_ref,
            "a scenario that does not extend this one, directly or indirectly",
            problem=f"extends cycle: {cycle}",
        )
    return [(shown, data), *_load_layers(parent, (*chain, path.resolve()))]


def _has_path(data: Any, parts: list[str | int]) -> bool:
    for p in parts:
        if isinstance(p, int):
            if not isinstance(data, list) or not 0 <= p < len(data):
                return False
        elif not isinstance(data, dict) or p not in data:
            return False
        data = data[p]
    return True


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file (YAML), following ``extends``.

    ``path`` may also be the name of a built-in scenario (``"baseline"``, ``"mandated"``...) when no such file
    exists. Every problem raises one :class:`CollabsimInputError` naming the file (the ancestor file that holds the
    offending key, for keys inherited through ``extends``).
    """
    text = os.fspath(path)
    p = Path(text).expanduser()
    if not p.exists() and _is_bare_name(text):
        try:
            p = builtin_scenario_path(text)
        except CollabsimInputError as exc:
            raise CollabsimInputError(
                text, problem="file not found, and no built-in scenario of that name", hint=exc.hint
            ) from None
    layers = _load_layers(p, ())
    merged: dict[str, Any] = {}
    for _, data in reversed(layers):
        merged = _deep_merge(merged, data)
    try:
        scenario = Scenario.model_validate(merged)
    except ValidationError as exc:
        error = _convert_validation_error(exc, layers[0][0])
        loc = tuple(exc.errors(include_url=False)[0].get("loc", ()))
        parts = _locate(loc).parts
        for shown, data in layers:  # attribute the error to the file that sets the key
            if parts and _has_path(data, parts):
                error = error.with_file(shown)
                break
        raise error from None
    scenario._source_file = p.resolve()
    validate_rule_ids(scenario, layers[0][0])
    return scenario


# ---------------------------------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------------------------------

_KEY_PART = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def _parse_key(key: str, origin: str | None) -> list[str | int]:
    """``"events.schedule[0].month"`` -> ``["events", "schedule", 0, "month"]``."""
    if not isinstance(key, str) or not key.strip():
        raise CollabsimInputError(origin, None, key, "a dotted key such as population.n_orgs", problem="empty key")
    parts: list[str | int] = []
    for piece in key.strip().split("."):
        m = _KEY_PART.fullmatch(piece)
        if not m:
            raise CollabsimInputError(
                origin,
                key,
                NO_VALUE,
                "a dotted key such as population.n_orgs or events.schedule[0].month",
                problem="malformed key",
            )
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    # Arm entries are flat {dotted key: value} mappings.
    if len(parts) > 2 and parts[0] == "arms" and isinstance(parts[1], str):
        rest = _render_key(parts[2:])
        parts = ["arms", parts[1], rest]
    # Swept keys are dotted keys too: sweep.parameters.<key>[.values|low|high|num|scale].
    if len(parts) > 3 and parts[:2] == ["sweep", "parameters"]:
        rest = parts[2:]
        if rest[-1] in SweepParameter.model_fields:
            parts = ["sweep", "parameters", _render_key(rest[:-1]), rest[-1]]
        else:
            parts = ["sweep", "parameters", _render_key(rest)]
    return parts


def _apply_override(data: dict[str, Any], parts: list[str | int], value: Any, origin: str | None) -> None:
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        here = _render_key(parts[: depth + 1])
        nxt = parts[depth + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                size = len(node) if isinstance(node, list) else 0
                raise CollabsimInputError(
                    origin,
                    _render_key(parts),
                    value,
                    f"an index from 0 to {size - 1}" if size else "nothing: the list is empty",
                    problem=f"{here} does not exist",
                )
        else:
            if not isinstance(node, dict):
                raise CollabsimInputError(
                    origin, _render_key(parts), value, problem=f"{_render_key(parts[:depth])} is not a mapping"
                )
            if node.get(part) is None:
                node[part] = [] if isinstance(nxt, int) else {}
        child = node[part]
        if not isinstance(child, (dict, list)):
            raise CollabsimInputError(
                origin,
                _render_key(parts),
                value,
                problem=f"{here} is a single value, not a section",
                hint=f"set {here} itself",
            )
        node = child
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not 0 <= last < len(node):
            size = len(node) if isinstance(node, list) else 0
            raise CollabsimInputError(
                origin,
                _render_key(parts),
                value,
                f"an index from 0 to {size - 1}" if size else "nothing: the list is empty",
                problem="no such list item",
            )
    elif not isinstance(node, dict):
        raise CollabsimInputError(
            origin, _render_key(parts), value, problem=f"{_render_key(parts[:-1])} is not a mapping"
        )
    node[last] = copy.deepcopy(value)


def parse_set_option(text: str) -> tuple[str, Any]:
    """Parse a ``--set`` option ``"dotted.key=value"``; the value is read as YAML (``40``, ``0.5``, ``[a, b]``...)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CollabsimInputError(
            "--set",
            None,
            text,
            "KEY=VALUE with a dotted key, e.g. --set population.n_orgs=40",
            problem=f"expected KEY=VALUE, got {format_value(text)}",
        )
    _parse_key(key, origin="--set")
    try:
        value = _parse_yaml(raw, "--set")
    except CollabsimInputError as exc:
        raise CollabsimInputError(
            "--set",
            key,
            raw,
            "a YAML value (a number, a string, true/false, [a list] or {a: mapping})",
            problem=exc.problem,
        ) from None
    return key, value


# ---------------------------------------------------------------------------------------------------------------------
# Rule ids
# ---------------------------------------------------------------------------------------------------------------------


@functools.cache
def _known_rule_ids() -> frozenset[str] | None:
    try:
        from collabsim.rules import load_rule_table  # noqa: PLC0415 - optional, written by another team
    except ImportError:
        return None
    table = load_rule_table()
    ids: set[str] = set()
    for row in table.rows:
        ids.add(row.id)
        cmoc = getattr(row, "cmoc", None)
        if cmoc:
            ids.add(cmoc)
    return frozenset(ids)


def validate_rule_ids(scenario: Scenario, file: str | os.PathLike[str] | None = None) -> None:
    """Check that every id in ``rules.disable`` and ``rules.weights`` (and in each arm) is a rule id or a CMOC id.

    Uses ``collabsim.rules.load_rule_table()`` when that module exists; does nothing before it does.
    """
    checks: list[tuple[str, str, Any]] = []  # (key, id, value)
    for i, rid in enumerate(scenario.rules.disable):
        checks.append((f"rules.disable[{i}]", rid, rid))
    for rid, weight in scenario.rules.weights.items():
        checks.append((f"rules.weights.{rid}", rid, weight))
    arms = scenario.arms or {}
    if not checks and not any(str(k).startswith("rules") for ov in arms.values() for k in ov):
        return
    known = _known_rule_ids()
    if known is None:
        return
    for key, rid, value in checks:
        if rid not in known:
            close = suggest(rid, known)
            raise CollabsimInputError(
                file,
                key,
                value if key.startswith("rules.disable") else NO_VALUE,
                "a rule id or CMOC id listed by `collabsim rules`",
                problem="unknown rule id"
                if key.startswith("rules.disable")
                else f"unknown rule id {format_value(rid)}",
                hint=f"did you mean {close}?" if close else None,
            )
    for name in arms:
        try:
            validate_rule_ids(scenario.arm(name), file)
        except CollabsimInputError as exc:
            raise CollabsimInputError(
                file, f"arms.{name}: {exc.key}", exc.value, exc.allowed, problem=exc.problem, hint=exc.hint
            ) from None


# ---------------------------------------------------------------------------------------------------------------------
# Describe
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaRow:
    """One documented scenario key."""

    key: str  # dotted key; list items as `interventions[].type`, events as `events.schedule[type=mandate].month`
    type: str  # integer, number, string, boolean, choice, list, mapping (… or null)
    default: str  # the default, as YAML; "(required)" when there is none
    allowed: str  # allowed range or choices, in words
    description: str


def _field_default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    if field.is_required():
        return NO_VALUE
    return field.default


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _describe(model: type[BaseModel], prefix: str, defaults: Any, context: str, rows: list[SchemaRow]) -> None:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        bare, _, _ = _strip(field.annotation)
        description = field.description or ""
        if isinstance(defaults, dict) and name in defaults:
            default = defaults[name]
        else:
            default = _jsonable(_field_default(field))
        if _is_model(bare):
            sub_context = description if bare is Trait else ""
            _describe(bare, f"{key}.", default, sub_context, rows)
            continue
        if context:
            description = f"{context}: {description[0].lower()}{description[1:]}"
        rows.append(
            SchemaRow(
                key=key,
                type=_type_name(field.annotation),
                default="(required)" if default is NO_VALUE else format_value(default, limit=200),
                allowed=_field_allowed(field),
                description=description,
            )
        )
        if typing.get_origin(bare) is list:
            item, _, _ = _strip(typing.get_args(bare)[0])
            models = _union_models(item)
            if models:
                for variant in models:
                    _describe(variant, f"{key}[type={_tag_of(variant)}].", None, "", rows)
            elif _is_model(item):
                _describe(item, f"{key}[].", None, "", rows)


def describe_schema() -> list[SchemaRow]:
    """Every scenario key with its type, default, allowed values and description (``collabsim scenario describe``)."""
    rows: list[SchemaRow] = []
    _describe(Scenario, "", Scenario().resolved_dict(), "", rows)
    return rows


def format_schema(rows: list[SchemaRow] | None = None, fmt: str = "table") -> str:
    """Render :func:`describe_schema` rows as an aligned text ``table`` or a GitHub ``markdown`` table."""
    rows = describe_schema() if rows is None else rows
    header = ("key", "type", "default", "allowed", "description")
    cells = [(r.key, r.type, r.default, r.allowed, r.description) for r in rows]
    if fmt == "markdown":

        def esc(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for key, tp, default, allowed, description in cells:
            lines.append(f"| `{esc(key)}` | {tp} | `{esc(default)}` | {esc(allowed)} | {esc(description)} |")
        return "\n".join(lines) + "\n"
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    widths = [max(len(h), *(min(len(c[i]), 44) for c in cells)) for i, h in enumerate(header[:4])]
    out = ["  ".join(h.ljust(w) for h, w in zip(header[:4], widths, strict=False)) + "  " + header[4]]
    for row in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=False)) + "  " + row[4])
    return "\n".join(out) + "\n"
