"""Conformance of the rule table (src/collabsim/data/rules.yaml) with the CMOC catalogue (theory/cmoc_catalogue.yaml).

The catalogue is the independent source: ids, sources, poles and signs are read from it, never from the table.
Sign conventions (catalogue `conventions`): the stated effect of a CMOC on its mechanism is pole x sign_mechanism
(pole: high = +1, low = -1). A `link: mechanism` row states that effect, so ``sign * (-1 if inverted else 1)`` must
equal it; a `link: outcome` row (id ``<cmoc>@<variable>``) must carry the catalogue sign_outcome of that outcome.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from collabsim.variables import VARIABLES

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "src" / "collabsim" / "data" / "rules.yaml"
CATALOGUE = ROOT / "theory" / "cmoc_catalogue.yaml"

REQUIRED_PREFIXES = ("fn", "gl", "rf", "pf", "as")
STAGES = ("contemplating", "connecting", "planning", "implementation", "maintenance")
POLE = {"high": 1, "low": -1}
STRENGTH_WEIGHT = {"unspecified": 0.05, "strong": 0.10, "weak": 0.02, "no_association": 0.0}
FORMATION_WEIGHT = 0.3
MODEL_SOURCE = "modelling decision (docs/decisions_rules.md)"
# Model variables that stand for a catalogue outcome under another name (variables.py descriptions).
OUTCOME_ALIAS = {"organisational_culture": "organisational_culture_productivity"}
# Model variables that are the complement of a catalogue variable (inverted rows).
COMPLEMENT_OF = {"collaborative_behaviour": "collaborative_inertia"}

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=1)
def rules() -> list[dict]:
    return yaml.load(RULES.read_text(encoding="utf-8"), Loader=_Loader)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    data = yaml.load(CATALOGUE.read_text(encoding="utf-8"), Loader=_Loader)
    return {c["id"]: c for c in data["cmocs"]}


def _name(term: str) -> str:
    return term[4:] if term.startswith("not ") else term


def _prefix(cid: str) -> str:
    return cid.split("-", 1)[0]


def _rows(link: str) -> list[dict]:
    return [r for r in rules() if r["link"] == link]


def _expected_mechanism_sign(row: dict, c: dict) -> int:
    """Stated effect of the CMOC on the variable the row moves."""
    pole = POLE[c["context_pole"]]
    mech = row["mechanism"]
    parallel = {p["name"]: p["sign"] for p in c.get("parallel_mechanisms") or []}
    if c["rule_form"] == "direct":  # context and mechanism are one construct: the row moves a stated outcome
        assert mech in c["outcome"], f"{row['id']}: a direct-form row must move one of {c['outcome']}"
        return pole * c["sign_mechanism"] * c["sign_outcome"][c["outcome"].index(mech)]
    if mech in parallel and mech != c["mechanism"]:
        return pole * parallel[mech]
    return pole * c["sign_mechanism"]


def test_table_is_a_list_of_rows_with_the_documented_keys():
    required = {"id", "cmoc", "source", "link", "context", "mechanism", "sign", "weight", "stages"}
    allowed = required | {"inverted", "note", "chain", "pairs_with"}
    assert isinstance(rules(), list) and rules()
    for row in rules():
        assert required <= row.keys() <= allowed, row.get("id")
        assert row["link"] in ("mechanism", "outcome", "model"), row["id"]
        assert row["sign"] in (1, -1) and not isinstance(row["sign"], bool), row["id"]
        assert isinstance(row.get("inverted", False), bool), row["id"]
        assert isinstance(row["context"], list) and row["context"], row["id"]


def test_row_ids_are_unique():
    ids = [r["id"] for r in rules()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_required_catalogue_entry_has_exactly_one_mechanism_row():
    ids = [r["id"] for r in rules()]
    required = [cid for cid in catalogue() if _prefix(cid) in REQUIRED_PREFIXES]
    assert len(required) == 163  # 39 fn, 7 gl, 68 rf, 25 pf, 24 as
    missing = [cid for cid in required if ids.count(cid) != 1]
    assert not missing, missing
    by_id = {r["id"]: r for r in rules()}
    assert all(by_id[cid]["link"] == "mechanism" and by_id[cid]["cmoc"] == cid for cid in required)


def test_every_box_1_and_box_2_entry_is_present():
    ids = {r["id"] for r in rules()}
    boxed = [cid for cid, c in catalogue().items() if c["subgroup"].startswith(("Box 1", "Box 2"))]
    assert len(boxed) >= 50
    assert not [cid for cid in boxed if cid not in ids]


def test_rows_name_their_catalogue_entry_and_copy_its_source():
    cat = catalogue()
    for row in rules():
        if row["cmoc"] is None:
            assert row["link"] == "model" and row["id"].startswith("model-"), row["id"]
            assert row["source"] == MODEL_SOURCE, row["id"]
            continue
        assert row["link"] != "model", row["id"]
        assert row["cmoc"] in cat, row["id"]
        assert row["source"] == cat[row["cmoc"]]["source"], row["id"]
        if row["link"] == "mechanism":
            assert row["id"] == row["cmoc"], row["id"]
        else:
            assert row["id"] == f"{row['cmoc']}@{row['mechanism']}", row["id"]


def test_mechanism_row_signs_conform_to_the_catalogue():
    cat = catalogue()
    bad = []
    for row in _rows("mechanism"):
        stated = row["sign"] * (-1 if row.get("inverted", False) else 1)
        if stated != _expected_mechanism_sign(row, cat[row["cmoc"]]):
            bad.append(row["id"])
    assert not bad, bad


# Outcome rows that carry a sign reversal a catalogue modifier states: row id -> the modifier's words.
REVERSED_BY_MODIFIER = {
    "fn-proximity-communication-trust@trust": "reverses (-1) when conflict is already occurring",
}


def test_outcome_row_signs_conform_to_the_catalogue():
    cat = catalogue()
    bad = []
    for row in _rows("outcome"):
        c = cat[row["cmoc"]]
        if row["id"] in REVERSED_BY_MODIFIER:  # the stated reversal, acting exactly where the modifier says
            assert any(REVERSED_BY_MODIFIER[row["id"]] in m for m in c["modifiers"]), row["id"]
            assert (
                "conflict" in row["context"] and row["sign"] == -c["sign_outcome"][c["outcome"].index(row["mechanism"])]
            )
            continue
        inverted = row.get("inverted", False)
        mech = row["mechanism"]
        name = COMPLEMENT_OF.get(mech) if inverted else OUTCOME_ALIAS.get(mech, mech)
        assert name in c["outcome"], f"{row['id']}: {name} is not an outcome of {c['id']} ({c['outcome']})"
        if row["sign"] * (-1 if inverted else 1) != c["sign_outcome"][c["outcome"].index(name)]:
            bad.append(row["id"])
    assert not bad, bad


def test_names_are_model_variables_and_mechanisms_are_state_or_initial():
    for row in rules():
        for term in row["context"]:
            assert isinstance(term, str) and _name(term) in VARIABLES, (row["id"], term)
        assert row["mechanism"] in VARIABLES, row["id"]
        assert VARIABLES[row["mechanism"]].kind in ("state", "initial"), row["id"]


def test_stage_specs_are_valid_and_follow_the_catalogue():
    cat = catalogue()
    for row in rules():
        spec = row["stages"]
        valid = (
            spec == "all"
            or (isinstance(spec, str) and spec.startswith("from_") and spec[5:] in STAGES)
            or (isinstance(spec, list) and spec and all(s in STAGES for s in spec))
        )
        assert valid, (row["id"], spec)
        if row.get("pairs_with"):  # a relaxation pair acts in the same stages on both sides (rule_format.md)
            assert spec == next(r["stages"] for r in rules() if r["id"] == row["pairs_with"]), row["id"]
            continue
        if row["cmoc"] is None:
            continue
        stage = cat[row["cmoc"]]["stage"]
        formation = VARIABLES[row["mechanism"]].kind == "initial"
        expected = "all" if formation or stage == "atemporal" else f"from_{stage}"
        assert spec == expected, (row["id"], spec, expected)


def test_weights_are_finite_non_negative_and_follow_the_scheme():
    cat = catalogue()
    for row in rules():
        w = row["weight"]
        assert isinstance(w, int | float) and not isinstance(w, bool), row["id"]
        assert math.isfinite(w) and w >= 0, row["id"]
        if row["cmoc"] is None:
            continue
        formation = VARIABLES[row["mechanism"]].kind == "initial"
        expected = FORMATION_WEIGHT if formation else STRENGTH_WEIGHT[cat[row["cmoc"]]["strength"]]
        assert w == pytest.approx(expected), (row["id"], w, expected)


def test_every_state_variable_can_rise_and_fall():
    """Nothing is pinned at 0 or 1: each state (and initial) variable has a raising and a lowering row."""
    moved = {}
    for row in rules():
        if row["weight"] > 0:
            moved.setdefault(row["mechanism"], set()).add(row["sign"])
    for name, var in VARIABLES.items():
        if var.kind in ("state", "initial"):
            assert moved.get(name) == {1, -1}, (name, moved.get(name))


def test_behaviour_rises_only_past_the_threshold():
    """gl-threshold-synergy: below the threshold a member stays in inertia, so every row that raises collaborative
    behaviour carries the threshold gate, except the threshold row itself and dc-mandate-kickstart (a mandate
    compels some joint work before trust or faith are there; docs/decisions.md)."""
    exempt = {"gl-threshold-synergy", "dc-mandate-kickstart"}
    raising = [r for r in rules() if r["mechanism"] == "collaborative_behaviour" and int(r["sign"]) > 0]
    assert len(raising) > len(exempt)
    for r in raising:
        assert r["id"] in exempt or "above_threshold" in r["context"], r["id"]


def _chain_claim(row: dict) -> tuple[str | None, int]:
    """The whole-run claim the catalogue makes for a row (docs/rule_format.md, ``chain:``), derived independently:
    model and outcome rows claim their own variable in their sign; a direct-form row the outcome it moves; a
    mechanism row the first catalogue outcome that is a model state variable, preferring one other than the variable
    the row moves, in the stated sign pole x sign_mechanism x sign_outcome."""
    if row["link"] != "mechanism" or catalogue()[row["cmoc"]]["rule_form"] == "direct":
        return row["mechanism"], int(row["sign"])
    c = catalogue()[row["cmoc"]]
    effect = POLE[c["context_pole"]] * c["sign_mechanism"]
    found = []
    for name, s in zip(c["outcome"], c["sign_outcome"], strict=True):
        flip = 1
        if name in COMPLEMENT_OF.values():
            name, flip = next(k for k, v in COMPLEMENT_OF.items() if v == name), -1
        name = next((k for k, v in OUTCOME_ALIAS.items() if v == name), name)
        if name in VARIABLES and VARIABLES[name].kind in ("state", "initial"):
            found.append((name != row["mechanism"], name, effect * s * flip))
    if not found:
        return None, 0
    best = max(found, key=lambda f: f[0])  # the first one down the chain, else the row's own variable
    best = next(f for f in found if f[0] == best[0])
    return best[1], best[2]


def test_every_row_states_its_whole_run_claim_as_the_catalogue_does():
    for row in rules():
        chain = row.get("chain")
        assert isinstance(chain, dict), row["id"]
        outcome, sign = _chain_claim(row)
        assert chain["outcome"] == outcome, (row["id"], chain, outcome)
        if outcome is not None:
            assert chain["sign"] == sign, (row["id"], chain, sign)
        else:
            assert chain.get("shown") is False and "not a model state variable" in chain["reason"], row["id"]
        if chain.get("shown", True) is False:
            assert len(chain.get("reason", "")) > 20, row["id"]


def test_a_contradiction_must_be_declared_with_shown_false():
    from collabsim.errors import CollabsimInputError  # noqa: PLC0415
    from collabsim.rules import _parse_chain  # noqa: PLC0415

    ok = _parse_chain(
        {"outcome": "trust", "sign": 1, "shown": False, "contradicted": True, "reason": "moves down"}, "f", "r"
    )
    assert ok.contradicted and not ok.shown
    with pytest.raises(CollabsimInputError, match="contradicted"):
        _parse_chain({"outcome": "trust", "sign": 1, "contradicted": True}, "f", "r")


def test_the_packaged_table_reads_the_same_with_the_pure_python_parser():
    """The engine reads rules.yaml with libyaml's parser (8x faster start-up); PyYAML's own gives the same table."""
    from collabsim.rules import load_prior_table, parse_rows

    pure = parse_rows(yaml.safe_load(RULES.read_text(encoding="utf-8")), where="rules.yaml")
    assert pure.rows == load_prior_table().rows
    assert len(pure.rows) > 200
