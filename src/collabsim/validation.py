"""Validation: does the model do what the theory says? (issue 6; docs/validation.md)

Two kinds of check, both run by ``collabsim validate``:

1. **Rule conformance**, generated from the rule table itself. For every row:
   - *local sign*: in a tiny collaboration put in a stage where the row acts, with every other row that moves the same
     variable switched off, the row's context terms are set high (0.9) or low (0.1), everything else identical; one
     pass of the row's phase (the engine's own ``kernels.run_phase``) must move the row's variable by more in the
     row's sign when the context is high. The effect size is (increment, high) - (increment, low). The same pass in a
     stage where the row does not act must move nothing (the stage gate).
   - *chain sign*: over a whole run (``CHAIN_SCENARIOS``), the row acting vs the same run without the row (common
     random numbers, ``CHAIN_REPLICATIONS`` replicates) must move the outcome named in the row's ``chain:`` block
     (the catalogue's outcome, checked against the catalogue by tests/test_rule_table.py) in its stated sign: the
     95% confidence interval of the paired difference of its run-mean lies on the stated side of zero. A row whose
     whole-run sign cannot be shown says so, and why, in the table (``chain: {shown: false, reason: ...}``); the
     check then fails if it *is* shown (the note is stale), so the table stays honest.
2. **Patterns** (``PATTERNS``): system-level patterns stated in 001, each a named check with arms (overrides of a
   built-in scenario), a metric, an expected direction, replications and a confidence interval over paired
   replicates (replicate r of every arm uses the random streams ``SeedSequence(seed, spawn_key=(r,))``).

Nothing here changes the model: a check that fails is reported as FAIL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import diptest
import numpy as np
from scipy import stats

from collabsim import executors, kernels
from collabsim import stats as compare_stats
from collabsim.api import run_engine
from collabsim.engine import Engine, advance_together, aggregate_needs, joined_replicates, make_plan
from collabsim.rules import DISSOLVED, STAGES, Rule, RuleTable, compile_rules, load_rule_table
from collabsim.scenario import Scenario, load_scenario
from collabsim.variables import COLUMN, VARIABLES, Level, names_at

# ---------------------------------------------------------------------------------------------------------------------
# Rule conformance: local sign (one pass of the row's phase)
# ---------------------------------------------------------------------------------------------------------------------

HIGH, LOW = 0.9, 0.1  # a context term's value when the context is raised / lowered
MID = 0.5  # the moved variable's value before the pass (so both directions can show)
REACHABLE = STAGES[1:]  # collaborations start in connecting: contemplating is never reached by the engine
# The fixture: one mandated collaboration of three organisations (three memberships, six dyads).
LOCAL_FIXTURE = {
    "population.n_orgs": 3,
    "partnering.regime": "mandated",
    "partnering.assignment": "geographic",
    "partnering.group_size": 3,
    "horizon_months": 12,
}


@dataclass(frozen=True)
class LocalResult:
    """One row's local-sign check: ``effect`` = (increment with the context high) - (increment with it low)."""

    rule_id: str
    mechanism: str
    sign: int
    stage: str
    effect: float
    gated_stage: str | None  # a reachable stage where the row does not act (None: it acts in all)
    gated_effect: float  # what the row moved there (must be 0)

    @property
    def sign_ok(self) -> bool:
        return self.effect != 0.0 and math.copysign(1, self.effect) == self.sign

    @property
    def gate_ok(self) -> bool:
        return self.gated_effect == 0.0

    @property
    def ok(self) -> bool:
        return self.sign_ok and self.gate_ok


def _fixture_engine() -> Engine:
    return Engine(load_scenario("baseline").with_overrides(LOCAL_FIXTURE), seed=1)


def _set_everywhere(engine: Engine, name: str, value: float) -> None:
    """Set a variable for every entity of its level (the fixture is one collaboration: means are exact)."""
    st = engine.state
    level, col = VARIABLES[name].level, COLUMN[name]
    arr = {Level.SYSTEM: st.S, Level.ORG: st.O, Level.COLLAB: st.K, Level.MEMBER: st.M, Level.DYAD: st.D}[level]
    if level == Level.SYSTEM:
        arr[col] = value
    else:
        arr[col, :] = value


def run_one_phase(engine: Engine, compiled, plan, need, phase: int) -> None:
    """One pass of ``phase`` (every level, finest first) over the engine's state, with the given compiled rules:
    exactly what ``kernels.run_months`` does for a phase, without the named functions around it. MUTATES state."""
    st = engine.state
    engine._allocate()
    n_org, n_col, n_mem, n_dyad = st.n_org, st.n_col, st.n_mem, st.n_dyad
    act_d, act_k, act_o = np.zeros(n_dyad, np.bool_), np.zeros(n_col, np.bool_), np.ones(n_org, np.bool_)
    bits_d, bits_m = np.zeros(n_dyad, np.int32), np.zeros(n_mem, np.int32)
    bits_k, bits_o = np.zeros(n_col, np.int32), np.zeros(n_org, np.int32)
    masks = (act_d, st.mem_active, act_k, act_o, bits_d, bits_m, bits_k, bits_o)
    kernels.stage_masks(
        st.col_stage, st.mem_col, st.mem_org, st.mem_active, st.dyad_src, st.dyad_dst, engine.dyad_col, masks
    )
    idents = (np.arange(n_dyad), np.arange(n_mem), np.arange(n_col), np.arange(n_org))
    stale = np.zeros(kernels.FRESH_SHAPE, np.bool_)  # no aggregate is known fresh
    kernels.run_phase(
        phase,
        st.S,
        st.O,
        st.K,
        st.M,
        st.D,
        masks,
        engine.topology,
        idents,
        engine.agg,
        compiled.table,
        plan.arrays,
        need,
        stale,
    )


#: Weight at which the local-sign check runs a row that is switched off (weight 0) in the table.
OFF_ROW_WEIGHT = 0.05


def isolated_table(table: RuleTable, rule_id: str) -> RuleTable:
    """The table with every other row that moves the same variable switched off (weight 0). A row of weight 0 in
    the table is checked at weight OFF_ROW_WEIGHT (its sign as written); the rules table of the report says so."""
    target = next(r for r in table.rows if r.id == rule_id)
    rows = []
    for r in table.rows:
        if r.id == rule_id:
            rows.append(replace(r, weight=r.weight if r.weight > 0 else OFF_ROW_WEIGHT))
        elif r.mechanism == target.mechanism:
            rows.append(replace(r, weight=0.0))
        else:
            rows.append(r)
    return RuleTable(tuple(rows), table.path)


def _moved_mean(engine: Engine, rule: Rule) -> float:
    st = engine.state
    level, col = VARIABLES[rule.mechanism].level, COLUMN[rule.mechanism]
    arr = {Level.ORG: st.O, Level.COLLAB: st.K, Level.MEMBER: st.M, Level.DYAD: st.D}[level]
    return float(arr[col].mean())


def _increment(engine: Engine, snapshot, rule: Rule, compiled, plan, need, stage: str, value: float) -> float:
    """Restore the fixture, put it in ``stage``, set the row's context terms to ``value`` (the term's value: a
    ``not x`` term gets x = 1 - value) and its moved variable to MID, run the row's phase once: the mean increment
    of the moved variable. A term that is the moved variable itself stays at MID (it is what is measured)."""
    st = engine.state
    st.S[:], st.O[:], st.K[:], st.M[:], st.D[:] = (a.copy() for a in snapshot)
    st.col_stage[:] = STAGES.index(stage)
    _set_everywhere(engine, rule.mechanism, MID)
    for name, neg in rule.terms:
        if name != rule.mechanism:
            _set_everywhere(engine, name, 1.0 - value if neg else value)
    before = _moved_mean(engine, rule)
    run_one_phase(engine, compiled, plan, need, int(rule.phase))
    return _moved_mean(engine, rule) - before


def local_sign_checks(table: RuleTable | None = None, ids: Iterable[str] | None = None) -> dict[str, LocalResult]:
    """The local-sign check of every row (or of ``ids``), on one fixture engine (fast: no run, one pass each)."""
    table = load_rule_table() if table is None else table
    engine = _fixture_engine()
    st = engine.state
    snapshot = tuple(a.copy() for a in (st.S, st.O, st.K, st.M, st.D))
    wanted = None if ids is None else set(ids)
    out: dict[str, LocalResult] = {}
    for rule in table.rows:
        if wanted is not None and rule.id not in wanted:
            continue
        compiled = compile_rules(isolated_table(table, rule.id))
        plan, need = make_plan(compiled), aggregate_needs(compiled)
        acting = [s for s in REACHABLE if s in rule.stages]
        idle = [s for s in REACHABLE if s not in rule.stages]
        stage = acting[0] if acting else REACHABLE[0]
        effect = (
            _increment(engine, snapshot, rule, compiled, plan, need, stage, HIGH)
            - _increment(engine, snapshot, rule, compiled, plan, need, stage, LOW)
            if acting
            else 0.0
        )
        gated = idle[-1] if idle else None
        gated_effect = (
            _increment(engine, snapshot, rule, compiled, plan, need, gated, HIGH)
            - _increment(engine, snapshot, rule, compiled, plan, need, gated, LOW)
            if gated
            else 0.0
        )
        out[rule.id] = LocalResult(rule.id, rule.mechanism, rule.sign, stage, effect, gated, gated_effect)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Whole runs: what a run is observed by
# ---------------------------------------------------------------------------------------------------------------------

SAMPLE_EVERY = 3  # months between samples of the run-means
EARLY_MONTHS = 24  # the "early" window (the first two years)
_LEVELS = (Level.ORG, Level.COLLAB, Level.MEMBER, Level.DYAD)
_NAMES = {level: names_at(level) for level in _LEVELS}


def _level_means(engine: Engine) -> dict[str, float]:
    """Mean of every variable over the entities running now: all organisations, running collaborations, active
    memberships and dyads (NaN for a level with none)."""
    st = engine.state
    masks = {
        Level.ORG: np.ones(st.n_org, bool),
        Level.COLLAB: st.col_stage != DISSOLVED,
        Level.MEMBER: st.mem_active,
        Level.DYAD: st.dyad_active(),
    }
    arrays = {Level.ORG: st.O, Level.COLLAB: st.K, Level.MEMBER: st.M, Level.DYAD: st.D}
    out = {}
    for level in _LEVELS:
        mask = masks[level]
        means = arrays[level][:, mask].mean(axis=1) if mask.any() else np.full(arrays[level].shape[0], np.nan)
        out.update(zip(_NAMES[level], means.tolist(), strict=True))
    return out


def observe(scenario: Scenario, seed: int, key: tuple[int, ...]) -> dict[str, Any]:
    """Run a scenario and observe it: ``run:<var>`` = the mean over the run (sampled every SAMPLE_EVERY months) of
    the variable's mean over running entities, ``early:<var>`` the same over the first EARLY_MONTHS months,
    ``end:<var>`` its value at the end, ``start:initial_trust``/``start:initial_faith`` the means over the
    collaborations formed at month 0, ``collab_behaviour`` the end-of-run collaborative behaviour of every
    collaboration formed (0 for a dissolved one: it stalled and ended), and every summary metric."""
    return observe_replicates(scenario, seed, [key])[0]


def observe_replicates(scenario: Scenario, seed: int, keys: Sequence[tuple[int, ...]]) -> list[dict[str, Any]]:
    """``[observe(scenario, seed, key) for key in keys]``, the same numbers, with ``joined_replicates(scenario)``
    runs at a time advanced together (one kernel call for their months, as sweeps do: docs/decisions.md 56)."""
    step = joined_replicates(scenario)
    out: list[dict[str, Any]] = []
    for lo in range(0, len(keys), step):
        engines = [Engine(scenario, seed=seed, key=key) for key in keys[lo : lo + step]]
        out += _observe_together(engines)
    return out


def _observe_together(engines: list[Engine]) -> list[dict[str, Any]]:
    horizon = engines[0].scenario.horizon_months
    starts = [
        {
            "start:initial_trust": float(e.state.D[COLUMN["initial_trust"]].mean()) if e.state.n_dyad else math.nan,
            "start:initial_faith": float(e.state.M[COLUMN["initial_faith"]].mean()) if e.state.n_mem else math.nan,
        }
        for e in engines
    ]
    samples: list[list[dict[str, float]]] = [[] for _ in engines]
    early: list[list[dict[str, float]]] = [[] for _ in engines]
    while engines[0].month < horizon:
        advance_together(engines, min(horizon, engines[0].month + SAMPLE_EVERY))
        for e, run, first in zip(engines, samples, early, strict=True):
            means = _level_means(e)
            run.append(means)
            if e.month <= EARLY_MONTHS:
                first.append(means)
    return [_observation(e, *parts) for e, *parts in zip(engines, starts, samples, early, strict=True)]


def _observation(
    engine: Engine, starts: dict[str, Any], samples: list[dict[str, float]], early: list[dict[str, float]]
) -> dict[str, Any]:
    """What ``observe`` returns, from an engine run to its horizon, its month-0 means and its samples."""
    out = dict(starts)
    st = engine.state
    result = run_engine(engine)
    for prefix, group in (("run", samples), ("early", early)):
        for name in samples[0] if samples else ():
            vals = np.array([s[name] for s in group], float)
            ok = vals[~np.isnan(vals)]
            out[f"{prefix}:{name}"] = float(ok.mean()) if len(ok) else math.nan
    for name, v in (samples[-1] if samples else {}).items():
        out[f"end:{name}"] = v
    engine.refresh_aggregates()
    behaviour = engine.MK[COLUMN["collaborative_behaviour"]].copy()
    behaviour[st.col_stage == DISSOLVED] = 0.0
    out["collab_behaviour"] = behaviour
    out.update(result.summary)
    return out


def paired_ci(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its t confidence interval (NaN differences dropped)."""
    d = np.asarray(diffs, float)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    m = float(d.mean())
    if len(d) < 2:  # one pair says nothing about spread: no interval, so no pattern can pass on it
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return m, m - half, m + half


def on_side(lo: float, hi: float, expected: int) -> bool:
    """The interval [lo, hi] lies strictly on the expected side of zero."""
    if math.isnan(lo) or math.isnan(hi):
        return False
    return lo > 0 if expected > 0 else hi < 0


def _map(fn: Callable, tasks: list, workers: int, progress: str | None) -> list:
    """fn over tasks, each task's list of runs' results one after another in task order; worker processes (one numba
    thread each, as sweeps run) when workers > 1; a tqdm bar of runs when ``progress`` names it (a task's replicates
    are its last item)."""
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=sum(len(t[-1]) for t in tasks), desc=progress, unit="run", leave=False)
    done: dict[int, list] = {}
    exe = executors.ProcessExecutor(workers) if workers > 1 else executors.SerialExecutor(numba_threads=None)
    try:
        with exe:
            for i, r in exe.map_unordered(_indexed, [(fn, i, t, exe.numba_threads) for i, t in enumerate(tasks)]):
                done[i] = r
                if bar:
                    bar.update(len(r))
    finally:
        if bar:
            bar.close()
    return [x for i in range(len(tasks)) for x in done[i]]


def _indexed(job: tuple[Callable, int, Any, int | None]) -> tuple[int, list]:
    fn, i, task, threads = job
    with executors.numba_threads(threads):
        return i, fn(task)


# ---------------------------------------------------------------------------------------------------------------------
# Rule conformance: chain sign (whole runs, the row on vs off)
# ---------------------------------------------------------------------------------------------------------------------

CHAIN_REPLICATIONS = 8
CHAIN_SEED = 20231
# Every context the table reads is present at a moderate level in one of these (overrides of the baseline): the
# interventions at half intensity reach every collaboration, a pandemic at months 24-35 gives the crisis rows
# something to act on, groups of three make number_of_organisations non-zero.
_CHAIN_COMMON: dict[str, Any] = {
    "population.n_orgs": 30,
    "horizon_months": 60,
    "partnering.group_size": 3,
    "partnering.external_broker": 0.5,
    "partnering.evaluation": 0.5,
    "interventions": [
        {"type": t, "start_month": 0, "coverage": 1.0, "intensity": 0.5}
        for t in ("peer_review", "joint_appointments", "cultural_integration_plan", "champions")
    ],
    "events.schedule": [
        {"type": "pandemic", "month": 24, "duration_months": 12, "severity": 0.5, "contact_cut": 0.5},
    ],
}
CHAIN_SCENARIOS: dict[str, dict[str, Any]] = {
    "voluntary": {**_CHAIN_COMMON},
    "mandated": {
        **_CHAIN_COMMON,
        "partnering.regime": "mandated",
        "partnering.type": "provider_collaborative",
        "partnering.assignment": "geographic",
    },
    "buddying": {
        **_CHAIN_COMMON,
        "partnering.regime": "mandated",
        "partnering.type": "buddying",
        "partnering.assignment": "buddy_better_performer",
        "partnering.group_size": 2,
    },
    "voluntary_buddying": {**_CHAIN_COMMON, "partnering.type": "buddying", "partnering.group_size": 2},
    "contract": {**_CHAIN_COMMON, "partnering.formalisation": "contract"},
    "timid": {**_CHAIN_COMMON, "partnering.ambition": 0.1},
    "ambitious": {**_CHAIN_COMMON, "partnering.ambition": 0.9},
    "leaving": {**_CHAIN_COMMON, "partnering.leave_faith_threshold": 0.55, "partnering.leave_after_months": 3},
}


def chain_scenario_name(rule: Rule) -> str:
    """Where a row's context is present: buddying rows in a buddying regime (voluntary buddying when the row needs
    a voluntary one), contract and over-formalisation rows under contracts, timid- and over-ambition rows with such
    aims, rows on premature leaving where members leave, rows that need a mandate (or confidence weighting)
    mandated, everything else voluntary."""
    terms = dict(rule.terms)
    if terms.get("buddying") is False:
        return "voluntary_buddying" if terms.get("mandated") is True else "buddying"
    if terms.get("aim_unambitiousness") is False:
        return "timid"
    if terms.get("overambition") is False:
        return "ambitious"
    if terms.get("inappropriate_stopping") is False:
        return "leaving"
    if terms.get("binding_contract") is False or terms.get("overformalisation") is False:
        return "contract"
    if terms.get("mandated") is False or terms.get("confidence_weight") is False:
        return "mandated"
    return "voluntary"


def ablation_weights(table: RuleTable, rule_id: str) -> dict[str, float]:
    """``rules.weights`` that switch off exactly one row: a weight keyed by a catalogue id scales all its rows, so
    the rows sharing the switched-off id as their catalogue id are kept at 1."""
    weights = {rule_id: 0.0}
    for r in table.rows:
        if r.cmoc == rule_id and r.id != rule_id:
            weights[r.id] = 1.0
    return weights


@lru_cache(maxsize=16)
def _chain_base(name: str) -> Scenario:
    return load_scenario("baseline").with_overrides(CHAIN_SCENARIOS[name])


def _chain_task(task: tuple[str, tuple[tuple[str, float], ...], int, range]) -> list[dict[str, float]]:
    name, weights, seed, replicates = task
    sc = _chain_base(name)
    if weights:
        sc = sc.with_overrides({"rules.weights": dict(weights)})
    obs = observe_replicates(sc, seed, [(k,) for k in replicates])
    return [{k: v for k, v in o.items() if k.startswith("run:")} for o in obs]


@dataclass(frozen=True)
class ChainResult:
    rule_id: str
    scenario: str
    outcome: str | None
    sign: int
    declared_shown: bool
    declared_contradicted: bool
    reason: str
    effect: float  # mean paired difference of the outcome's run-mean, row on - row off
    lo: float
    hi: float
    mechanism_effect: float  # the same for the row's own variable (diagnostic)

    @property
    def shown(self) -> bool:
        return self.outcome is not None and on_side(self.lo, self.hi, self.sign)

    @property
    def contradicted(self) -> bool:
        return self.outcome is not None and on_side(self.lo, self.hi, -self.sign)

    @property
    def ok(self) -> bool:
        """Consistent with the table: shown where the table says shown, not shown where it says why not, and
        contradicted (the outcome moves against the stated sign) exactly where the table declares it."""
        return self.shown == self.declared_shown and self.contradicted == self.declared_contradicted


def chain_checks(
    table: RuleTable | None = None,
    replications: int = CHAIN_REPLICATIONS,
    seed: int = CHAIN_SEED,
    workers: int = 1,
    ids: Iterable[str] | None = None,
    progress: bool = False,
) -> dict[str, ChainResult]:
    """The chain-sign check of every row (or of ``ids``): runs of its chain scenario with and without the row."""
    table = load_rule_table() if table is None else table
    wanted = None if ids is None else set(ids)
    rows = [r for r in table.rows if (wanted is None or r.id in wanted)]
    measured = [r for r in rows if r.chain is not None and r.chain.outcome is not None and r.weight > 0]
    names = sorted({chain_scenario_name(r) for r in measured})
    reps = range(replications)
    tasks = [(n, (), seed, reps) for n in names]  # one task a scenario: its replicates run joined
    tasks += [
        (chain_scenario_name(r), tuple(sorted(ablation_weights(table, r.id).items())), seed, reps) for r in measured
    ]
    results = _map(_chain_task, tasks, workers, "chain sign" if progress else None)
    assert len(results) == len(tasks) * replications  # one result a run, in task order
    n_base = len(names) * replications
    base = {(n, k): results[i * replications + k] for i, n in enumerate(names) for k in reps}
    off = results[n_base:]
    out: dict[str, ChainResult] = {}
    for r in rows:
        ch = r.chain
        if ch is None or ch.outcome is None or r.weight <= 0:
            reason = (
                "no chain: block in the table"
                if ch is None
                else (ch.reason if ch.outcome is not None or ch.reason else "no outcome")
            )
            if r.weight <= 0 and ch is not None and ch.outcome is not None:
                reason = "the row is switched off (weight 0)"
            out[r.id] = ChainResult(
                r.id,
                chain_scenario_name(r),
                None,
                0,
                ch.shown if ch else True,
                False,
                reason,
                math.nan,
                math.nan,
                math.nan,
                math.nan,
            )
            continue
        i = measured.index(r)
        name = chain_scenario_name(r)
        ablated = off[i * replications : (i + 1) * replications]
        diffs = [base[(name, k)][f"run:{ch.outcome}"] - ablated[k][f"run:{ch.outcome}"] for k in range(replications)]
        mech = [base[(name, k)][f"run:{r.mechanism}"] - ablated[k][f"run:{r.mechanism}"] for k in range(replications)]
        m, lo, hi = paired_ci(np.array(diffs))
        out[r.id] = ChainResult(
            r.id,
            name,
            ch.outcome,
            ch.sign,
            ch.shown,
            ch.contradicted,
            ch.reason,
            m,
            lo,
            hi,
            paired_ci(np.array(mech))[0],
        )
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Patterns (001, system level)
# ---------------------------------------------------------------------------------------------------------------------

BIMODALITY_THRESHOLD = 5.0 / 9.0  # Sarle's coefficient of a uniform distribution: above it, bimodality is indicated
DIP_ALPHA = 0.05  # Hartigan's dip test rejects unimodality when its p-value is below this (docs/decisions.md 47)
PATTERN_SEED = 20231
PATTERN_REPLICATIONS = 30


@dataclass(frozen=True)
class Contrast:
    """``metric`` in arm ``treatment`` minus arm ``control``, paired by replicate; ``expected`` its sign."""

    metric: str
    treatment: str
    control: str
    expected: int
    label: str = ""


@dataclass(frozen=True)
class Pattern:
    """A system-level pattern of 001 as a named check. ``arms`` are overrides of the built-in scenario ``base``
    (plus ``common``); ``statistic`` is ``paired_difference`` (every contrast's CI must lie on its expected side)
    or ``bimodality`` (in every arm, the end-of-run behaviour of its collaborations over all replicates: Sarle's
    coefficient with its bootstrap CI above 5/9, and the p-value of Hartigan's dip test of unimodality with its
    bootstrap CI below 0.05)."""

    name: str
    title: str
    source: str
    base: str
    arms: dict[str, dict[str, Any]]
    contrasts: tuple[Contrast, ...] = ()
    statistic: str = "paired_difference"
    common: dict[str, Any] = field(default_factory=dict)
    replications: int = PATTERN_REPLICATIONS
    role: str = "check"  # check | calibration (a target the weights were calibrated on: reported apart)
    note: str = ""


_SMALL = {"population.n_orgs": 40, "horizon_months": 120}
_MANDATED_ICS = {
    "partnering.regime": "mandated",
    "partnering.type": "ics",
    "partnering.assignment": "geographic",
    "partnering.group_size": 4,
}

# Contexts that lower or raise dyad conflict through the rule table (fn-cultural-compatibility-conflict,
# rf-cultural-mismatch-conflict, fn-accountability-conflict, as-clear-vision-trust, fn-shared-vision-conflict).
_CALM = {
    "population.culture_spread": 0.05,
    "population.cross_sector_culture_gap": 0.0,
    "partnering.accountability": 0.9,
    "partnering.vision_clarity": 0.9,
}
_CONFLICT = {
    "population.culture_spread": 0.9,
    "population.cross_sector_culture_gap": 0.9,
    "partnering.accountability": 0.1,
    "partnering.vision_clarity": 0.1,
}

PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        name="bimodal_outcomes",
        title="Collaborations either stall in inertia or cross into collaborative behaviour",
        source="001 Ch4 gleaning text – MRT (gl-threshold-synergy: 'once trust and faith reach a certain threshold, "
        "then a novel state is entered'; gl-early-inertia; Box 1 fn-low-trust-faith-inertia)",
        base="baseline",
        common=_SMALL,
        arms={"voluntary": {}, "mandated": _MANDATED_ICS},
        statistic="bimodality",
        replications=100,  # the dip test needs about 2,000 collaborations to see a stalled mode of a few per cent
        note="End-of-run collaborative behaviour of every collaboration formed (dissolved ones count as 0), in each "
        "regime on its own. 100 replicates: the dip test has little power against a small second mode "
        "(docs/decisions.md 47).",
    ),
    Pattern(
        name="mandated_lower_initial_trust",
        title="Mandated partnerships start with lower trust than voluntary ones",
        source="001 Ch4 refinement text – Trust versus confidence (rf-mandated-inherent-mistrust: 'an inherent "
        "mistrust taking place in organisations involved in mandated partnerships')",
        base="mandated_vs_voluntary",
        common=_SMALL,
        arms={
            "voluntary": {"partnering.regime": "voluntary"},
            "mandated": {"partnering.regime": "mandated", "partnering.assignment": "geographic"},
        },
        contrasts=(Contrast("start:initial_trust", "mandated", "voluntary", -1, "initial trust"),),
    ),
    Pattern(
        name="formalisation_by_type",
        title="Formalisation helps mandated or integrative types and hurts voluntary ones",
        source="001 Box 1 – Confidence (fn-formalisation-confidence: 'Greater formalisation in a mandated or more "
        "integrative collaboration type ... can increase confidence ..., leading to greater collaborative "
        "behaviour'); Ch4 – Trust versus confidence (rf-overformalisation-undermines-trust)",
        base="baseline",
        common=_SMALL,
        arms={
            "voluntary_none": {"partnering.type": "informal_partnering", "partnering.formalisation": "none"},
            "voluntary_contract": {"partnering.type": "informal_partnering", "partnering.formalisation": "contract"},
            "mandated_none": {**_MANDATED_ICS, "partnering.formalisation": "none"},
            "mandated_contract": {**_MANDATED_ICS, "partnering.formalisation": "contract"},
        },
        contrasts=(
            Contrast("run:collaborative_behaviour", "mandated_contract", "mandated_none", +1, "mandated ICS"),
            Contrast("run:collaborative_behaviour", "voluntary_contract", "voluntary_none", -1, "voluntary informal"),
        ),
    ),
    Pattern(
        name="scale_complexity",
        title="Many large cross-sector partners: higher complexity and slower progress than a small pair",
        source="001 Box 1 – Perception of task complexity (fn-org-size-complexity); Table 10 (as-many-partners-"
        "complexity: 'very large organisations, or many partners ... an increase in the perception of complexity'); "
        "Ch5 – Task complexity (sh-org-count-complexity)",
        base="baseline",
        common={**_SMALL, "partnering.regime": "mandated", "partnering.type": "provider_collaborative"},
        arms={
            "small_pair": {
                "partnering.group_size": 2,
                "population.size_median_staff": 200,
                "population.sector_mix": {"primary_care": 1.0},
            },
            "large_group": {"partnering.group_size": 6, "population.size_median_staff": 10000},
        },
        contrasts=(
            Contrast("run:perceived_task_complexity", "large_group", "small_pair", +1, "complexity"),
            Contrast("task_achievement", "large_group", "small_pair", -1, "progress (task achievement)"),
        ),
    ),
    Pattern(
        name="proximity_needs_low_conflict",
        title="Proximity helps trust only when conflict is low",
        source="001 Box 1 – Interpersonal communication (fn-proximity-communication-trust: 'which can increase or "
        "decrease trust, depending on whether or not conflict is occurring'); Ch4 (rf-proximity-communication)",
        base="baseline",
        common={**_SMALL, **_MANDATED_ICS, "partnering.group_size": 3},
        arms={
            "near_calm": {"population.proximity_scale_km": 100, **_CALM},
            "far_calm": {"population.proximity_scale_km": 5, **_CALM},
            "near_conflict": {"population.proximity_scale_km": 100, **_CONFLICT},
            "far_conflict": {"population.proximity_scale_km": 5, **_CONFLICT},
        },
        contrasts=(
            Contrast("run:conflict", "near_conflict", "near_calm", +1, "manipulation check: conflict is higher"),
            Contrast("run:trust", "near_calm", "far_calm", +1, "low conflict: near - far"),
            Contrast("run:trust", "near_conflict", "far_conflict", -1, "high conflict: near - far"),
        ),
        note="Mandated geographic footprints, so both proximity arms have the same groups (locations are common "
        "random numbers). Conflict is set through the contexts the rule table says raise or lower it (cultural "
        "distance, accountability, vision clarity; docs/decisions.md 46), and the first contrast checks that it is.",
    ),
    Pattern(
        name="turnover_sets_trust_back",
        title="Leadership turnover sets trust-building back",
        source="001 Ch4 refinement text – Atemporal elements (rf-leadership-turnover-reset: 'significant leadership "
        "turnover meant starting over with trust-building exercises')",
        base="baseline",
        common=_SMALL,
        arms={
            "stable": {"events.leadership_turnover_rate": 0.0},
            "turnover": {"events.leadership_turnover_rate": 0.05},
        },
        contrasts=(Contrast("run:trust", "turnover", "stable", -1, "trust"),),
    ),
    Pattern(
        name="quick_wins_lift_trust_and_faith",
        title="Quick wins lift trust and faith",
        source="001 Ch4 refinement text – Middle stage (rf-quick-wins-trust: 'quick wins ... also help to increase "
        "faith'); Table 10 (as-quick-wins-beginning)",
        base="baseline",
        common=_SMALL,
        arms={"no_quick_wins": {"events.quick_win_threshold": 1.0}, "quick_wins": {"events.quick_win_threshold": 0.05}},
        contrasts=(
            Contrast("run:trust", "quick_wins", "no_quick_wins", +1, "trust"),
            Contrast("run:faith", "quick_wins", "no_quick_wins", +1, "faith"),
        ),
        note="A quick win is the first month task achievement reaches the threshold; threshold 1 means never.",
    ),
    Pattern(
        name="overambition_erodes_faith",
        title="Over-ambition erodes faith over years",
        source="001 Box 1 – Trust (fn-overambition-progress: 'Overambition in the aims ... can reduce perception of "
        "progress ..., leading to reduced trust and faith'); Ch4 (rf-progress-quick-wins)",
        base="baseline",
        common={**_SMALL, **_MANDATED_ICS},
        arms={"appropriate": {"partnering.ambition": 0.5}, "overambitious": {"partnering.ambition": 0.95}},
        contrasts=(Contrast("end:faith", "overambitious", "appropriate", -1, "faith after ten years"),),
        note="Mandated (members cannot leave), so faith is not read only on the survivors.",
    ),
    Pattern(
        name="inadequate_capacity_undermines_faith",
        title="Inadequate capacity at the start undermines faith",
        source="001 Table 10 – Ensuring capacity (as-inadequate-capacity-start: 'begin a collaboration without first "
        "ensuring there is adequate capacity, then this can undermine faith'); Ch5 (sh-capacity-constraints-faith)",
        base="baseline",
        common={**_SMALL, **_MANDATED_ICS},
        arms={
            "adequate": {"population.implementation_capacity": {"mean": 0.7, "sd": 0.1}},
            "inadequate": {"population.implementation_capacity": {"mean": 0.2, "sd": 0.1}},
        },
        contrasts=(Contrast("early:faith", "inadequate", "adequate", -1, "faith in the first two years"),),
        note="Mandated (members cannot leave), so faith is not read only on the survivors.",
    ),
)
PATTERN_NAMES = tuple(p.name for p in PATTERNS)


def pattern_scenario(pattern: Pattern, arm: str) -> Scenario:
    return load_scenario(pattern.base).with_overrides({**pattern.common, **pattern.arms[arm]})


def bimodality_coefficient(x: np.ndarray) -> float:
    """Sarle's bimodality coefficient (g1^2 + 1) / (g2 + 3 (n-1)^2 / ((n-2)(n-3))) with the bias-corrected sample
    skewness g1 and excess kurtosis g2 (SAS's definition). 5/9 for a uniform distribution; above it suggests
    bimodality. NaN with fewer than 4 values or no spread."""
    x = np.asarray(x, float)
    n = len(x)
    if n < 4 or np.ptp(x) == 0:
        return math.nan
    g1 = stats.skew(x, bias=False)
    g2 = stats.kurtosis(x, fisher=True, bias=False)
    return float((g1**2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def dip_pvalue(x: np.ndarray) -> float:
    """p-value of Hartigan and Hartigan's dip test of unimodality (the ``diptest`` package: interpolated from the
    tabulated critical values; small when the distribution has more than one mode, wherever they lie). NaN with
    fewer than 4 values."""
    x = np.asarray(x, float)
    if len(x) < 4:
        return math.nan
    return float(diptest.diptest(x)[1])


def replicate_bootstrap_ci(
    groups: list[np.ndarray], fn: Callable, n_boot: int = 500, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% CI of fn(pooled values), resampling whole replicates (groups) with replacement; NaN with fewer
    than two replicates (resampling one gives no spread)."""
    if len(groups) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        vals.append(fn(np.concatenate([groups[i] for i in pick])))
    v = np.array(vals, float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    return float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))


@dataclass(frozen=True)
class StatResult:
    """One statistic of a pattern: its estimate, CI, expected direction and threshold."""

    label: str
    metric: str
    estimate: float
    lo: float
    hi: float
    expected: int
    threshold: float = 0.0
    effect_size: float = math.nan  # Hedges' g_av (docs/decisions.md 39: not d_z, which CRN inflate); NaN: bimodality,
    # or no spread within the arms (a standardised effect is undefined)

    @property
    def passed(self) -> bool:
        return on_side(self.lo - self.threshold, self.hi - self.threshold, self.expected)


@dataclass(frozen=True)
class PatternResult:
    pattern: Pattern
    replications: int
    stats: tuple[StatResult, ...]
    arm_means: dict[str, dict[str, float]]

    @property
    def passed(self) -> bool:
        return bool(self.stats) and all(s.passed for s in self.stats)


def _pattern_task(task: tuple[str, str, int, range]) -> list[dict[str, Any]]:
    name, arm, seed, replicates = task
    pattern = next(p for p in PATTERNS if p.name == name)
    return observe_replicates(pattern_scenario(pattern, arm), seed, [(k,) for k in replicates])


def evaluate_pattern(pattern: Pattern, observations: dict[str, list[dict[str, Any]]]) -> PatternResult:
    """The pattern's statistics from the observations of each arm (one per replicate, replicate order)."""
    reps = min(len(v) for v in observations.values())
    stats_out: list[StatResult] = []
    if pattern.statistic == "bimodality":
        for arm in pattern.arms:  # each arm on its own: pooling two regimes would make two modes by construction
            groups = [np.asarray(observations[arm][k]["collab_behaviour"], float) for k in range(reps)]
            pooled = np.concatenate(groups) if groups else np.zeros(0)
            for label, fn, threshold, expected in (
                ("Sarle's bimodality coefficient", bimodality_coefficient, BIMODALITY_THRESHOLD, +1),
                ("dip test p-value", dip_pvalue, DIP_ALPHA, -1),
            ):
                lo, hi = replicate_bootstrap_ci(groups, fn)
                stats_out.append(
                    StatResult(f"{arm}: {label}", "collab_behaviour", fn(pooled), lo, hi, expected, threshold)
                )
    else:
        for c in pattern.contrasts:
            diffs = np.array(
                [observations[c.treatment][k][c.metric] - observations[c.control][k][c.metric] for k in range(reps)],
                float,
            )
            m, lo, hi = paired_ci(diffs)
            control = [observations[c.control][k][c.metric] for k in range(reps)]
            treated = [observations[c.treatment][k][c.metric] for k in range(reps)]
            g = compare_stats.hedges_g_av(np.array(control, float), np.array(treated, float))
            stats_out.append(StatResult(c.label or c.metric, c.metric, m, lo, hi, c.expected, 0.0, g))
    metrics = {c.metric for c in pattern.contrasts} | {
        "share_synergy",
        "run:collaborative_behaviour",
        "run:trust",
        "run:confidence",
        "run:risk_tolerance",
        "run:faith",
        "run:conflict",
    }

    def mean(values: list[float]) -> float:
        v = np.asarray(values, float)
        v = v[~np.isnan(v)]
        return float(v.mean()) if len(v) else math.nan

    arm_means = {
        a: {m: mean([o.get(m, math.nan) for o in obs[:reps]]) for m in sorted(metrics)}
        for a, obs in observations.items()
    }
    return PatternResult(pattern, reps, tuple(stats_out), arm_means)


def run_patterns(
    names: Iterable[str] | None = None,
    replications: int | None = None,
    seed: int = PATTERN_SEED,
    workers: int = 1,
    progress: bool = False,
) -> list[PatternResult]:
    """Run the named patterns (all by default), every arm with the same replicates (common random numbers)."""
    chosen = [p for p in PATTERNS if names is None or p.name in set(names)]
    tasks = []  # an arm's replicates in groups that run joined
    for p in chosen:
        n = replications if replications is not None else p.replications
        for arm in p.arms:
            step = joined_replicates(pattern_scenario(p, arm))
            tasks += [(p.name, arm, seed, range(lo, min(n, lo + step))) for lo in range(0, n, step)]
    obs = iter(_map(_pattern_task, tasks, workers, "patterns" if progress else None))
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in tasks:
        by.setdefault((t[0], t[1]), []).extend(next(obs) for _ in t[3])
    assert next(obs, None) is None  # one result a run, in task order
    return [evaluate_pattern(p, {a: by[(p.name, a)] for a in p.arms}) for p in chosen]


# ---------------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------------


def _f(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if abs(x) >= 10 ** (-digits) or x == 0 else f"{x:+.2e}"


def rules_table_rows(
    table: RuleTable, local: dict[str, LocalResult], chain: dict[str, ChainResult] | None
) -> list[list[str]]:
    """One line per row: id, local sign ok, chain sign ok, effect sizes, and the chain status."""
    out = []
    for r in table.rows:
        lr = local.get(r.id)
        cr = chain.get(r.id) if chain else None
        local_ok = "–" if lr is None else ("ok" if lr.ok else ("FAIL (stage gate)" if lr.sign_ok else "FAIL"))
        if lr is not None and r.weight <= 0:  # checked at OFF_ROW_WEIGHT: its sign as written, not what runs
            local_ok += f" (row switched off: checked at weight {OFF_ROW_WEIGHT:g})"
        if cr is None:
            chain_ok, status = "–", "not run"
        elif cr.outcome is None:
            chain_ok, status = "n/a", cr.reason
        else:
            if cr.shown and cr.declared_shown:
                chain_ok, status = "ok", "shown"
            elif cr.shown:
                chain_ok, status = "FAIL", "shown, but the table says it is not: remove the stale reason"
            elif cr.declared_shown:
                chain_ok, status = "FAIL", "contradicted" if cr.contradicted else "not shown (CI includes 0)"
            elif cr.contradicted != cr.declared_contradicted:
                chain_ok = "FAIL"
                status = "contradicted, but the table does not say so" if cr.contradicted else "no longer contradicted"
            elif cr.contradicted:
                chain_ok, status = "contradicted (declared)", cr.reason
            else:
                chain_ok, status = "not shown (declared)", cr.reason
        out.append(
            [
                r.id,
                f"{r.mechanism} {r.sign:+d}",
                local_ok,
                _f(lr.effect) if lr else "–",
                "–" if cr is None or cr.outcome is None else f"{cr.outcome} {cr.sign:+d}",
                chain_ok,
                "–" if cr is None else _f(cr.effect),
                "–" if cr is None or cr.outcome is None else f"[{_f(cr.lo)}, {_f(cr.hi)}]",
                status,
            ]
        )
    return out


RULE_COLUMNS = [
    "rule id",
    "moves",
    "local sign ok",
    "local effect",
    "chain outcome",
    "chain sign ok",
    "chain effect",
    "chain 95% CI",
    "chain status",
]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in esc]]
    )


def pattern_rows(results: list[PatternResult]) -> list[list[str]]:
    out = []
    for pr in results:
        for s in pr.stats:
            thr = f" (threshold {s.threshold:.3f})" if s.threshold else ""
            out.append(
                [
                    pr.pattern.name,
                    pr.pattern.role,
                    s.label,
                    f"{'>' if s.expected > 0 else '<'} {f'{s.threshold:.3f}' if s.threshold else '0'}",
                    _f(s.estimate),
                    f"[{_f(s.lo)}, {_f(s.hi)}]{thr}",
                    "–" if math.isnan(s.effect_size) else f"{s.effect_size:+.2f}",
                    "PASS" if s.passed else "FAIL",
                ]
            )
    return out


PATTERN_COLUMNS = ["pattern", "role", "statistic", "expected", "estimate", "95% CI", "g_av", "result"]


@dataclass
class ValidationReport:
    table: RuleTable
    local: dict[str, LocalResult] = field(default_factory=dict)
    chain: dict[str, ChainResult] | None = None
    patterns: list[PatternResult] | None = None
    calibration: dict[str, Any] | None = None  # the calibration target re-evaluated (not a check)
    seconds: float = 0.0

    @property
    def rules_passed(self) -> bool:
        local_ok = all(r.ok for r in self.local.values())
        chain_ok = self.chain is None or all(c.ok for c in self.chain.values())
        return local_ok and chain_ok

    @property
    def patterns_passed(self) -> bool:
        return self.patterns is None or all(p.passed for p in self.patterns if p.pattern.role == "check")

    @property
    def passed(self) -> bool:
        return self.rules_passed and self.patterns_passed

    def counts(self) -> dict[str, int]:
        c = {"rules": len(self.table.rows)}
        if self.local:
            c["local_ok"] = sum(r.ok for r in self.local.values())
        if self.chain is not None:
            ch = self.chain.values()
            c.update(
                chain_shown=sum(x.shown for x in ch),
                chain_declared_not_shown=sum(not x.declared_shown for x in ch),
                chain_consistent=sum(x.ok for x in ch),
                chain_contradicted=sum(x.contradicted for x in ch),
            )
        if self.patterns is not None:
            c.update(patterns=len(self.patterns), patterns_passed=sum(p.passed for p in self.patterns))
        return c

    def markdown(self) -> str:
        lines = ["# collabsim validation report", ""]
        c = self.counts()
        lines.append(
            f"Overall: **{'PASS' if self.passed else 'FAIL'}** ({self.seconds:.0f} s). See docs/validation.md."
        )
        lines.append("")
        if self.patterns is not None:
            checks = [p for p in self.patterns if p.pattern.role == "check"]
            calib = [p for p in self.patterns if p.pattern.role != "check"]
            lines += [
                "## Patterns (001, system level)",
                "",
                f"{sum(p.passed for p in checks)} of {len(checks)} checks pass. Each statistic is a paired difference "
                "over replicates with common random numbers (treatment - control) with its t 95% CI, or for "
                "bimodality a bootstrap 95% CI over replicates; a statistic passes when its CI lies on the expected "
                "side (of zero, or of the threshold). g_av = Hedges' g_av, the difference over the arms' mean standard "
                "deviation (common random numbers do not inflate it, unlike d_z); – for bimodality, and when "
                "neither arm varies (no spread within arms: a standardised effect is undefined).",
                "",
                _md_table(PATTERN_COLUMNS, pattern_rows(checks)),
                "",
            ]
            if calib:
                lines += [
                    "### Calibration targets (reported apart: the weights were calibrated on them)",
                    "",
                    _md_table(PATTERN_COLUMNS, pattern_rows(calib)),
                    "",
                ]
            if self.calibration is not None:
                k = self.calibration
                t = k["target"]
                lines += [
                    "## Calibration target (the rate was fitted to it: reported apart, not a check)",
                    "",
                    "| id | target | statistic | scenario | value | band | now | at the fit | in band |",
                    "|---|---|---|---|---|---|---|---|---|",
                    f"| {t.id} | {t.description} | {t.statistic} | `{t.scenario}` | {t.value:g} | "
                    f"{t.band[0]:g}–{t.band[1]:g} | {k['value']:g} | {k['fitted']} | "
                    f"{'yes' if t.band[0] <= k['value'] <= t.band[1] else 'NO'} |",
                    "",
                    f"Rate {k['rate']}, {k['replications']} replicates per arm (docs/calibration.md). "
                    f"Source: {t.source}.",
                    "",
                ]
            lines += ["### Pattern details", ""]
            for pr in self.patterns:
                p = pr.pattern
                lines += [
                    f"**{p.name}** — {p.title}. {'PASS' if pr.passed else 'FAIL'} ({pr.replications} replicates).",
                    "",
                    f"- source: {p.source}",
                    f"- base scenario: `{p.base}`; common overrides: `{p.common}`",
                    *[f"- arm `{a}`: `{ov}`" for a, ov in p.arms.items()],
                ]
                if p.note:
                    lines.append(f"- note: {p.note}")
                for a, means in pr.arm_means.items():
                    lines.append(
                        f"- mean over replicates, `{a}`: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
                    )
                lines.append("")
        if self.local or self.chain is not None:
            lines += ["## Rule conformance", ""]
            lines.append(
                f"{c['rules']} rows. Local sign ok: {c['local_ok']} of {len(self.local)}."
                + (
                    f" Chain sign shown: {c['chain_shown']}; declared not shown (with a reason in the table): "
                    f"{c['chain_declared_not_shown']}; contradicted (CI on the wrong side): {c['chain_contradicted']}; "
                    f"consistent with the table: {c['chain_consistent']} of {c['rules']}."
                    if self.chain is not None
                    else " Chain sign: not run (`collabsim validate --rules` runs it)."
                )
            )
            lines += [
                "",
                "Local effect: the row's variable's one-pass increment with its context high minus with it low, "
                "every other row moving that variable off. Chain effect: the run-mean of the catalogue outcome with "
                "the row on minus off, paired over replicates.",
                "",
                _md_table(RULE_COLUMNS, rules_table_rows(self.table, self.local, self.chain)),
                "",
            ]
        return "\n".join(lines)

    def write(self, out: str | Path) -> Path:
        """Write the report and its tables into ``out``, each file atomically (complete or absent), the report last."""
        import csv  # noqa: PLC0415

        from collabsim.io import atomic_write  # noqa: PLC0415

        out = Path(out)

        def table(name: str, header: Sequence[str], rows: list) -> None:
            def write(tmp: Path) -> None:
                with open(tmp, "w", newline="", encoding="utf-8") as fh:
                    w = csv.writer(fh)
                    w.writerow(header)
                    w.writerows(rows)

            atomic_write(out / name, write)

        if self.local or self.chain is not None:
            table("validation_rules.csv", RULE_COLUMNS, rules_table_rows(self.table, self.local, self.chain))
        if self.patterns is not None:
            table("validation_patterns.csv", PATTERN_COLUMNS, pattern_rows(self.patterns))
        path = out / "validation.md"
        atomic_write(path, lambda tmp: tmp.write_text(self.markdown(), encoding="utf-8"))
        return path


def validate(
    rules: bool = True,
    patterns: bool = True,
    replications: int | None = None,
    workers: int = 1,
    progress: bool = False,
    chain: bool = True,
) -> ValidationReport:
    """Everything ``collabsim validate`` runs. ``replications`` overrides the patterns' replications."""
    import time  # noqa: PLC0415

    t0 = time.perf_counter()
    table = load_rule_table()
    report = ValidationReport(table)
    if rules:
        report.local = local_sign_checks(table)
        if chain:
            # the table's chain notes were decided at CHAIN_REPLICATIONS: the chain check always uses them
            report.chain = chain_checks(table, workers=workers, progress=progress)
    if patterns:
        report.patterns = run_patterns(replications=replications, workers=workers, progress=progress)
        from collabsim.calibration import C1, c1_statistic  # noqa: PLC0415
        from collabsim.rules import load_calibration  # noqa: PLC0415

        fit = load_calibration()  # re-evaluated on the fit's own runs: it must reproduce the fitted value
        reps = int(fit.get("target", {}).get("replications_per_arm", 100))
        report.calibration = {
            "target": C1,
            "value": c1_statistic(replications=reps),
            "fitted": fit.get("target", {}).get("achieved", "–"),
            "rate": fit["rate"],
            "replications": reps,
        }
    report.seconds = time.perf_counter() - t0
    return report
