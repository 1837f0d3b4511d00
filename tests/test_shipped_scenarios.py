"""Every shipped scenario validates and runs (shortened to keep the suite fast); the scenario library of
docs/scenarios.md is complete, each file opens with its question, theory, source and command, and every arm runs."""

import re
from pathlib import Path

import numpy as np
import pytest

from collabsim import load_scenario, simulate
from collabsim.design import build_design
from collabsim.recorder import METRIC_DESCRIPTIONS
from collabsim.rules import load_rule_table

ROOT = Path(__file__).parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
#: The built-in defaults (`collabsim run mandated`); every other shipped file is a library scenario (a question).
BUILT_IN = {"baseline", "voluntary", "mandated", "buddying"}
#: The library of issue 4 (point 4), plus the second peer review setting of settings.md.
LIBRARY = {
    "mandated_vs_voluntary",
    "buddying_imposed_vs_self_selected",
    "ics_vs_buddying",
    "formalisation_by_regime",
    "size_proximity",
    "mandate_midway",
    "pandemic_shock",
    "peer_review_trial",
    "peer_review_lung_cancer",
    "commissioned_integrated_service",
    "competitive_baseline",
}
#: Library scenarios built from ../shared/theory/settings.md, and the section each expresses.
FROM_SETTINGS = {
    "peer_review_trial": "Reciprocal peer review between paired clinical units",
    "peer_review_lung_cancer": "Reciprocal peer-to-peer review with facilitation",
    "commissioned_integrated_service": "A commissioned integrated service",
    "competitive_baseline": "A competitive regional baseline",
}
#: Comparisons: the arms each must have (they differ only in what the question varies).
ARMS = {
    "mandated_vs_voluntary": {"voluntary", "mandated"},
    "buddying_imposed_vs_self_selected": {"imposed", "self_selected"},
    "ics_vs_buddying": {"ics", "buddying_pair"},
    "formalisation_by_regime": {"voluntary", "mandated"},
    "mandate_midway": {"mandate_at_36", "no_mandate"},
    "pandemic_shock": {"pandemic", "no_pandemic"},
    "peer_review_trial": {"peer_review", "control"},
    "peer_review_lung_cancer": {"facilitated_review", "no_review"},
}
MAY_BE_NAN = {
    "months_to_synergy",
    "mean_trust",
    "mean_faith",
    "mean_confidence",
    "mean_risk_tolerance",
    "mean_collaborative_behaviour",
    "share_pathological",
    "share_bureaucratic",
    "share_generative",
}
RULE_ID = re.compile(r"\b(?:fn|rf|gl|as|sh|bg|dc|pf|model)-[a-z0-9]+(?:-[a-z0-9]+)+(?:@[a-z_]+)?\b")


def header(path: Path) -> str:
    """The opening comment of a scenario file."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def short(sc, months: int = 24):
    """The scenario over at most ``months`` (keeping scheduled events inside the horizon)."""
    last = max([e.month for e in sc.events.schedule] + [i.start_month for i in sc.interventions], default=-1)
    horizon = min(sc.horizon_months, max(months, last + 2))
    if horizon == sc.horizon_months:
        return sc
    overrides = {"horizon_months": horizon}
    for i, item in enumerate(sc.interventions):
        if item.end_month is not None and item.end_month > horizon:
            overrides[f"interventions[{i}].end_month"] = horizon
    return sc.with_overrides(overrides)


def check_result(name, sc, r):
    assert set(r.summary) == set(METRIC_DESCRIPTIONS)
    assert r.summary["n_collaborations"] > 0, f"{name}: no collaboration formed"
    assert len(r.timeseries) > 0 and len(r.organisations) == sc.population.n_orgs
    not_finite = {k for k, v in r.summary.items() if not np.isfinite(v)}
    assert not_finite <= MAY_BE_NAN, f"{name}: {sorted(not_finite - MAY_BE_NAN)} not finite"


def test_required_scenarios_ship():
    assert {p.stem for p in SCENARIOS} == BUILT_IN | LIBRARY, "a scenario was added or removed: update this test"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs(path):
    sc = load_scenario(path)
    r = simulate(short(sc))
    check_result(path.stem, sc, r)


@pytest.mark.parametrize("path", [p for p in SCENARIOS if load_scenario(p).arms], ids=lambda p: p.stem)
def test_every_arm_validates_and_runs(path):
    sc = load_scenario(path)
    design = build_design(sc)
    for arm in sc.arms:
        # the first and the last design point of each arm (a grid's corners), over a short horizon
        for point in {0, len(design) - 1}:
            run = sc.arm(arm).with_overrides(design.points[point]) if design.points[point] else sc.arm(arm)
            r = simulate(short(run, months=12), key=(0,))
            check_result(f"{path.stem}[{arm}, point {point}]", run, r)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_file_opens_with_question_theory_source_and_command(name):
    path = ROOT / "scenarios" / f"{name}.yaml"
    text = header(path)
    assert "Question:" in text, f"{name}: the opening comment must state the question"
    assert "Source:" in text, f"{name}: the opening comment must name its source"
    assert f"scenarios/{name}.yaml" in text and "collabsim " in text, f"{name}: the command to run it"
    ids = set(RULE_ID.findall(text))
    assert ids, f"{name}: the opening comment names no rule or CMOC id"
    unknown = ids - load_rule_table().ids()
    assert not unknown, f"{name}: unknown rule ids in the opening comment: {sorted(unknown)}"
    if name in FROM_SETTINGS:
        assert "settings.md" in text and FROM_SETTINGS[name] in text, f"{name}: names its settings.md section"
        for settings in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):  # ../shared from a checkout
            if (settings / "theory" / "settings.md").exists():
                assert f"## {FROM_SETTINGS[name]}" in (settings / "theory" / "settings.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(ARMS))
def test_comparisons_have_their_arms_and_replications(name):
    sc = load_scenario(name)
    assert set(sc.arms or {}) == ARMS[name]
    assert sc.sweep_spec is not None and sc.sweep_spec.replications >= 100


def test_formalisation_by_regime_is_a_three_by_two():
    sc = load_scenario("formalisation_by_regime")
    design = build_design(sc)
    assert [p["partnering.formalisation"] for p in design.points] == ["none", "mou", "contract"]
    assert {sc.arm(a).partnering.regime for a in sc.arms} == {"voluntary", "mandated"}


def test_mandate_midway_overtakes_voluntary_alliances():
    sc = load_scenario("mandate_midway")
    assert sc.partnering.regime == "voluntary" and sc.partnering.type == "multiservice_chain_group_alliance"
    (event,) = sc.arm("mandate_at_36").events.schedule
    assert (event.type, event.month) == ("mandate", 36)
    assert sc.arm("no_mandate").events.schedule == []


def test_peer_review_trial_arms_are_the_trial_arms():
    sc = load_scenario("peer_review_trial")
    treated, control = sc.arm("peer_review"), sc.arm("control")
    assert (treated.population.n_orgs, control.population.n_orgs) == (54, 46)  # 27 and 23 pairs
    assert {i.type for i in treated.interventions} == {"peer_review", "external_broker"}
    assert all(i.coverage == 1.0 for i in treated.interventions) and control.interventions == []


def test_mandated_scenario_is_mandated_and_voluntary_is_not():
    mand, vol = simulate(load_scenario("mandated")), simulate(load_scenario("voluntary"))
    assert mand.timeseries["mandated"].all() and not vol.timeseries["mandated"].any()
