"""docs/ODD.md describes the model the code defines: every state variable, phase, level and bookkeeping field is
named, the ODD+D sections are there, and every rule id it cites exists."""

import dataclasses
import re
from pathlib import Path

import pytest

from collabsim.population import Population
from collabsim.rules import load_rule_table
from collabsim.state import State
from collabsim.variables import VARIABLES, Level, Phase

ODD = (Path(__file__).resolve().parent.parent / "docs" / "ODD.md").read_text(encoding="utf-8")
RULE_ID = re.compile(r"\b(?:fn|rf|gl|as|sh|bg|dc|pf|model)-[a-z0-9*]+(?:-[a-z0-9*]+)+(?:@[a-z_]+)?\b")


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_every_state_variable_is_named(name):
    assert f"`{name}`" in ODD, f"docs/ODD.md does not name the variable {name} (variables.py)"


def test_every_variable_is_in_its_levels_table():
    tables = re.split(r"^\*\*(System|Organisation|Collaboration|Membership|Dyad)\b", ODD, flags=re.M)
    by_level = {tables[i]: tables[i + 1] for i in range(1, len(tables) - 1, 2)}
    titles = {
        Level.SYSTEM: "System",
        Level.ORG: "Organisation",
        Level.COLLAB: "Collaboration",
        Level.MEMBER: "Membership",
        Level.DYAD: "Dyad",
    }
    for v in VARIABLES.values():
        section = by_level[titles[v.level]].split("\n\n**")[0]
        row = f"| `{v.name}` | {v.kind} |"
        assert row in section, f"{v.name}: not in the {titles[v.level]} table with kind {v.kind}"


def test_every_bookkeeping_field_is_named():
    per_entity = [
        f.name
        for f in dataclasses.fields(State)
        if f.name.startswith(("col_", "mem_", "dyad_", "org_")) and not f.name.endswith("_ptr")
    ]
    for name in [*per_entity, "K_design", *(f.name for f in dataclasses.fields(Population) if f.name != "O")]:
        assert f"`{name}`" in ODD, f"docs/ODD.md does not name the state field {name}"


def test_phases_levels_and_odd_d_sections():
    for phase in Phase:
        assert phase.name.lower() in ODD
    for step in ("events", "context", "mechanisms", "behaviour", "outcomes", "life cycle", "record"):
        assert f"**{step}**" in ODD, f"the month's phase {step} is not in the process overview"
    for level in ("system", "organisations", "collaborations", "memberships", "dyads"):
        assert f"**{level}**" in ODD
    for heading in (
        "Purpose and patterns",
        "Entities, state variables and scales",
        "Process overview and scheduling",
        "Theoretical and empirical background",
        "Individual decision-making",
        "Learning",
        "Individual sensing",
        "Individual prediction",
        "Interaction",
        "Collectives",
        "Heterogeneity",
        "Stochasticity",
        "Observation",
        "Initialisation",
        "Input data",
        "Submodels",
    ):
        assert re.search(rf"^#+ [\d.]* ?{re.escape(heading)}", ODD, flags=re.M), heading
    assert "docs/decisions.md" in ODD and "rules.yaml" in ODD


def test_cited_rule_ids_exist():
    ids = load_rule_table().ids()
    cited = {i for i in RULE_ID.findall(ODD) if "*" not in i}
    assert len(cited) > 30
    assert cited <= ids, f"unknown rule ids in docs/ODD.md: {sorted(cited - ids)}"
