"""The rule table: load and validate the theory-as-data, apply scenario overrides, compile to typed arrays.

The table (``data/rules.yaml``, format in ``docs/rule_format.md``) holds one row per causal link, each naming the
CMOC of Millar et al. 2023 it implements. Compilation flattens the rows into arrays that numba kernels and the
plain-Python reference evaluate identically; no Python callable ever reaches numba.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from collabsim.errors import CollabsimInputError
from collabsim.variables import COLUMN, VARIABLES, Phase

STAGES: tuple[str, ...] = ("contemplating", "connecting", "planning", "implementation", "maintenance")
DISSOLVED = len(STAGES)  # stage code of a dissolved collaboration
ALL_STAGES_MASK = (1 << len(STAGES)) - 1
LINKS = ("mechanism", "outcome", "model")
_RULES_FILE = "rules.yaml"


@dataclass(frozen=True)
class Chain:
    """What a row claims over a whole run (docs/rule_format.md, ``chain:``): with the row acting, ``outcome`` moves
    in ``sign`` compared with the same run without the row. ``shown: false`` says the whole-run sign cannot be shown
    under the shipped defaults, and ``reason`` says why (checked by ``collabsim validate --rules``)."""

    outcome: str | None
    sign: int
    shown: bool = True
    reason: str = ""
    contradicted: bool = False
    """The outcome is measured to move against ``sign`` (declared, so the check fails if that changes either way)."""


@dataclass(frozen=True)
class Rule:
    """One row of the rule table."""

    id: str
    cmoc: str | None
    source: str
    link: str
    context: tuple[str, ...]
    mechanism: str
    sign: int
    weight: float
    stages: tuple[str, ...]
    inverted: bool = False
    note: str = ""
    chain: Chain | None = None
    pairs_with: str | None = None
    """Id of the row this one forms a relaxation pair with (``relaxation_pairs``), declared in rules.yaml."""
    prior_weight: float | None = None
    """The weight written in rules.yaml (its strength class) before calibration; None for an uncalibrated table."""
    terms: tuple[tuple[str, bool], ...] = field(init=False, repr=False, compare=False)
    """Context terms as (variable, negated) pairs; ``not x`` reads 1 - x (parsed once: partner search reads them
    for every candidate pair)."""

    def __post_init__(self) -> None:
        terms = tuple((t[4:], True) if t.startswith("not ") else (t, False) for t in self.context)
        object.__setattr__(self, "terms", terms)

    @property
    def phase(self) -> Phase:
        return VARIABLES[self.mechanism].phase  # type: ignore[return-value]


@dataclass(frozen=True)
class RuleTable:
    rows: tuple[Rule, ...]
    path: str = _RULES_FILE

    def fingerprint(self) -> str:
        """SHA-256 of what the dynamics read from each row (id, link, context, mechanism, sign, weight, stages), so
        notes and sources can change without invalidating a calibration."""
        fields = [(r.id, r.link, r.context, r.mechanism, r.sign, r.weight, r.stages, r.pairs_with) for r in self.rows]
        return hashlib.sha256(repr(fields).encode()).hexdigest()

    def ids(self) -> set[str]:
        return {r.id for r in self.rows} | {r.cmoc for r in self.rows if r.cmoc}

    def with_overrides(
        self,
        disable: list[str] | tuple[str, ...] = (),
        weights: dict[str, float] | None = None,
        file: str | None = None,
    ) -> RuleTable:
        """Disable rows, or multiply their weights, by row id or by catalogue id (which addresses all its rows).

        ``weights`` are multipliers of the table's weights (2.0 doubles a rule); a row id's multiplier takes
        precedence over its catalogue id's."""
        weights = dict(weights or {})
        known = self.ids()
        for key, bad in [("rules.disable", d) for d in disable] + [(f"rules.weights.{w}", w) for w in weights]:
            if bad not in known:
                raise CollabsimInputError(
                    file=file, key=key, value=bad, allowed="a rule id or catalogue id listed by `collabsim rules`"
                )
        rows = []
        for r in self.rows:
            factor = 1.0
            for name in (r.cmoc, r.id):  # a row id's multiplier overrides its catalogue id's
                if name in weights:
                    factor = float(weights[name])
            w = r.weight * factor
            if r.id in disable or (r.cmoc is not None and r.cmoc in disable):
                w = 0.0
            rows.append(replace(r, weight=w))
        return RuleTable(tuple(rows), self.path)


def _parse_stages(spec: Any, where: str) -> tuple[str, ...]:
    if spec == "all":
        return STAGES
    if isinstance(spec, str) and spec.startswith("from_") and spec[5:] in STAGES:
        return STAGES[STAGES.index(spec[5:]) :]
    if isinstance(spec, list) and spec and all(s in STAGES for s in spec):
        return tuple(s for s in STAGES if s in spec)
    raise CollabsimInputError(
        file=where, key="stages", value=spec, allowed=f"all, from_<stage> or a list of stages from {list(STAGES)}"
    )


def _parse_pairs_with(spec: Any, where: str, at: str) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec
    raise CollabsimInputError(file=where, key=f"{at}.pairs_with", value=spec, allowed="the id of another row")


def _parse_chain(spec: Any, where: str, at: str) -> Chain | None:
    """The optional ``chain:`` block of a row: {outcome, sign[, shown, reason, contradicted]}."""
    if spec is None:
        return None
    allowed = (
        "a mapping {outcome: <state variable or null>, sign: +1|-1, shown: true|false, reason: <text>, "
        "contradicted: true|false}"
    )
    keys = {"outcome", "sign", "shown", "reason", "contradicted"}
    if not isinstance(spec, dict) or not {"outcome"} <= spec.keys() <= keys:
        raise CollabsimInputError(file=where, key=f"{at}.chain", value=spec, allowed=allowed)
    outcome, shown, reason = spec["outcome"], spec.get("shown", True), spec.get("reason", "")
    if outcome is not None and (outcome not in VARIABLES or VARIABLES[outcome].kind not in ("state", "initial")):
        raise CollabsimInputError(
            file=where, key=f"{at}.chain.outcome", value=outcome, allowed="a variable of kind state or initial, or null"
        )
    sign = spec.get("sign", 0 if outcome is None else None)
    if outcome is not None and (sign not in (1, -1) or isinstance(sign, bool)):
        raise CollabsimInputError(file=where, key=f"{at}.chain.sign", value=sign, allowed="+1 or -1")
    if not isinstance(shown, bool) or not isinstance(reason, str):
        raise CollabsimInputError(file=where, key=f"{at}.chain", value=spec, allowed=allowed)
    if (outcome is None or not shown) and (shown or not reason.strip()):
        raise CollabsimInputError(
            file=where,
            key=f"{at}.chain.reason",
            value=reason,
            allowed="shown: false and a reason when the whole-run sign cannot be shown (or there is no outcome)",
        )
    contradicted = spec.get("contradicted", False)
    if not isinstance(contradicted, bool) or (contradicted and (shown or outcome is None)):
        raise CollabsimInputError(
            file=where,
            key=f"{at}.chain.contradicted",
            value=contradicted,
            allowed="true only with an outcome and shown: false (the outcome moves against the stated sign)",
        )
    return Chain(outcome=outcome, sign=int(sign), shown=shown, reason=reason.strip(), contradicted=contradicted)


def parse_rows(raw: list[dict[str, Any]], where: str = _RULES_FILE) -> RuleTable:
    """Validate raw rows (as loaded from YAML) into a RuleTable; every problem names the row and the key."""
    if not isinstance(raw, list):
        raise CollabsimInputError(file=where, key=None, value=type(raw).__name__, allowed="a list of rule rows")
    required = {"id", "cmoc", "source", "link", "context", "mechanism", "sign", "weight", "stages"}
    optional = {"inverted", "note", "chain", "pairs_with"}
    rows: list[Rule] = []
    seen: set[str] = set()
    for i, row in enumerate(raw):
        at = f"[{i}]"
        if not isinstance(row, dict):
            raise CollabsimInputError(file=where, key=at, value=row, allowed="a mapping")
        missing, unknown = required - row.keys(), row.keys() - required - optional
        if missing or unknown:
            raise CollabsimInputError(
                file=where,
                key=f"{at}.{row.get('id', '?')}",
                value=sorted(missing or unknown),
                allowed=f"keys {sorted(required)} plus optional {sorted(optional)}",
            )
        rid = row["id"]
        at = f"[{i}] {rid}"
        if not isinstance(rid, str) or rid in seen:
            raise CollabsimInputError(file=where, key=at, value=rid, allowed="a unique string id")
        seen.add(rid)
        if row["link"] not in LINKS:
            raise CollabsimInputError(file=where, key=f"{at}.link", value=row["link"], allowed=str(LINKS))
        mech = VARIABLES.get(row["mechanism"])
        if mech is None or mech.kind not in ("state", "initial"):
            raise CollabsimInputError(
                file=where,
                key=f"{at}.mechanism",
                value=row["mechanism"],
                allowed="a variable of kind state or initial (collabsim.variables)",
            )
        ctx = row["context"]
        if not isinstance(ctx, list) or not all(isinstance(t, str) for t in ctx):
            raise CollabsimInputError(file=where, key=f"{at}.context", value=ctx, allowed="a list of variable names")
        for t in ctx:
            name = t[4:] if t.startswith("not ") else t
            if name not in VARIABLES:
                raise CollabsimInputError(
                    file=where, key=f"{at}.context", value=t, allowed="a model variable, optionally as 'not <name>'"
                )
        if row["sign"] not in (1, -1) or isinstance(row["sign"], bool):
            raise CollabsimInputError(file=where, key=f"{at}.sign", value=row["sign"], allowed="+1 or -1")
        w = row["weight"]
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise CollabsimInputError(file=where, key=f"{at}.weight", value=w, allowed="a finite number >= 0")
        rows.append(
            Rule(
                id=rid,
                cmoc=row["cmoc"],
                source=str(row["source"]),
                link=row["link"],
                context=tuple(ctx),
                mechanism=row["mechanism"],
                sign=int(row["sign"]),
                weight=float(w),
                stages=_parse_stages(row["stages"], where),
                inverted=bool(row.get("inverted", False)),
                note=str(row.get("note") or ""),
                chain=_parse_chain(row.get("chain"), where, at),
                pairs_with=_parse_pairs_with(row.get("pairs_with"), where, at),
            )
        )
    by_id = {r.id: r for r in rows}
    for i, r in enumerate(rows):
        if r.pairs_with is not None and not _is_pair(r, by_id.get(r.pairs_with)):
            raise CollabsimInputError(
                file=where,
                key=f"[{i}] {r.id}.pairs_with",
                value=r.pairs_with,
                allowed="the id of a row moving the same variable the other way, with the same weight and stages, "
                "whose context differs only in terms read as 'x' by one row and 'not x' by the other",
            )
    return RuleTable(tuple(rows), where)


def _is_pair(a: Rule, b: Rule | None) -> bool:
    """a and b form a relaxation pair: opposite signs, equal weights and stages, and contexts that differ only in
    terms read as ``x`` by one row and ``not x`` by the other (at a neutral context, every term 0.5, they cancel)."""
    if b is None or a.sign != -b.sign or a.mechanism != b.mechanism or a.weight != b.weight or a.stages != b.stages:
        return False
    only_a, only_b = set(a.context) - set(b.context), set(b.context) - set(a.context)
    return bool(only_a) and {_negated(t) for t in only_a} == only_b


def _negated(term: str) -> str:
    return term[4:] if term.startswith("not ") else "not " + term


# libyaml's parser (PyYAML's C extension, in its wheels) reads the 130 kB rule table in 0.05 s instead of 0.43 s:
# every process that runs the model (a sweep's workers, `collabsim run`) pays this once. Same safe constructor.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=1)
def load_prior_table() -> RuleTable:
    """The rule table as written in rules.yaml: each weight is its row's strength class (the prior)."""
    text = resources.files("collabsim").joinpath("data", _RULES_FILE).read_text(encoding="utf-8")
    return parse_rows(yaml.load(text, Loader=_YAML_LOADER), where=f"collabsim/data/{_RULES_FILE}")  # noqa: S506


# Formation rows set a starting value once; they are balanced like every variable but not on the monthly clock.
ONCE_VARIABLES = frozenset({"initial_trust", "initial_faith"})


def neutral_hazard(rule: Rule) -> float:
    """A row's hazard when every context term reads 0.5 (the neutral context of the balance step)."""
    return rule.weight * 0.5 ** len(rule.context)


def relaxation_pairs(table: RuleTable) -> set[str]:
    """Ids of the rows that form relaxation pairs (``_is_pair``): two ``model`` rows, or a row and the row its
    ``pairs_with`` names. A pair differing in one term holds the variable at the level ``x`` (e.g. care quality at
    the organisation's own performance); every pair cancels at a neutral context by construction."""
    model = [r for r in table.rows if r.link == "model"]
    by_id = {r.id: r for r in table.rows}
    candidates = [(a, b) for a in model for b in model] + [(r, by_id.get(r.pairs_with)) for r in table.rows]
    return {r.id for a, b in candidates if b is not None and _is_pair(a, b) for r in (a, b)}


def calibrate(prior: RuleTable, rate: float) -> RuleTable:
    """The calibration procedure of docs/calibration.md, applied to a prior table.

    1. Balance: for every variable moved both ways, its raising rows are scaled by (U + D) / 2U and its lowering
       rows by (U + D) / 2D, where U and D are their summed neutral hazards: at a neutral context the rules then give
       the variable no drift of its own (the source gives signs, not sizes, and reports more raising than lowering
       links for most mechanisms), and its total rate stays the same. Relaxation pairs (``relaxation_pairs``) are
       left out: they hold a variable at an organisation's own level, which balancing would move.
    2. Rate: every monthly row is multiplied by ``rate``, the one magnitude fitted to the calibration target
       (``data/calibration.yaml``, written by ``experiments/calibrate.py``).
    """
    fixed = relaxation_pairs(prior)
    up: dict[str, float] = {}
    down: dict[str, float] = {}
    for r in prior.rows:
        if r.id not in fixed:
            side = up if r.sign > 0 else down
            side[r.mechanism] = side.get(r.mechanism, 0.0) + neutral_hazard(r)
    rows = []
    for r in prior.rows:
        u, d = up.get(r.mechanism, 0.0), down.get(r.mechanism, 0.0)
        factor = 1.0
        if r.id not in fixed and u > 0 and d > 0:
            factor = (u + d) / (2 * u) if r.sign > 0 else (u + d) / (2 * d)
        if r.mechanism not in ONCE_VARIABLES:
            factor *= rate
        rows.append(replace(r, weight=r.weight * factor, prior_weight=r.weight))
    return RuleTable(tuple(rows), prior.path)


@lru_cache(maxsize=1)
def load_calibration() -> dict[str, Any]:
    """data/calibration.yaml: the fitted rate and how it was obtained."""
    text = resources.files("collabsim").joinpath("data", "calibration.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    rate = data.get("rate") if isinstance(data, dict) else None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        where = "collabsim/data/calibration.yaml"
        raise CollabsimInputError(file=where, key="rate", value=rate, allowed="a number > 0")
    return data


@lru_cache(maxsize=1)
def load_rule_table() -> RuleTable:
    """The packaged rule table with the shipped calibration applied: what every run uses by default."""
    return calibrate(load_prior_table(), float(load_calibration()["rate"]))


@dataclass(frozen=True)
class CompiledRules:
    """Rule rows flattened to arrays (one entry per row r; terms in CSR form).

    mech_level, mech_col: where the moved variable lives; phase: when it moves; sign (+1/-1); weight (float64);
    stage_mask: bit s set when the row acts in stage s; term_ptr[r]:term_ptr[r+1] index term_level, term_col, term_neg.
    """

    mech_level: np.ndarray
    mech_col: np.ndarray
    phase: np.ndarray
    sign: np.ndarray
    weight: np.ndarray
    stage_mask: np.ndarray
    term_ptr: np.ndarray
    term_level: np.ndarray
    term_col: np.ndarray
    term_neg: np.ndarray
    rows: tuple[Rule, ...] = field(repr=False, default=())

    def __len__(self) -> int:
        return len(self.mech_col)

    @property
    def table(self) -> tuple[np.ndarray, ...]:
        """The arrays the rule kernels read, in their order: sign, weight, stage_mask and the CSR terms."""
        return (self.sign, self.weight, self.stage_mask, self.term_ptr, self.term_level, self.term_col, self.term_neg)


def compile_rules(table: RuleTable) -> CompiledRules:
    rows = [r for r in table.rows if r.weight > 0.0]  # zero-weight rows cannot move anything
    terms = [t for r in rows for t in r.terms]
    ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(r.context) for r in rows])
    return CompiledRules(
        mech_level=np.array([VARIABLES[r.mechanism].level for r in rows], dtype=np.int8),
        mech_col=np.array([COLUMN[r.mechanism] for r in rows], dtype=np.int32),
        phase=np.array([r.phase for r in rows], dtype=np.int8),
        sign=np.array([r.sign for r in rows], dtype=np.int8),
        weight=np.array([r.weight for r in rows], dtype=np.float64),
        stage_mask=np.array([sum(1 << STAGES.index(s) for s in r.stages) for r in rows], dtype=np.int32),
        term_ptr=ptr,
        term_level=np.array([VARIABLES[n].level for n, _ in terms], dtype=np.int8),
        term_col=np.array([COLUMN[n] for n, _ in terms], dtype=np.int32),
        term_neg=np.array([neg for _, neg in terms], dtype=np.bool_),
        rows=tuple(rows),
    )
