"""The scenario schema: shipped files, defaults, extends, overrides, hashing, describe, error messages."""

from __future__ import annotations

import math
import pickle
import textwrap
import typing
from pathlib import Path

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from collabsim import scenario as scenario_module
from collabsim.errors import CollabsimInputError
from collabsim.scenario import (
    PARTNERSHIP_TYPE_NAMES,
    PARTNERSHIP_TYPES,
    SECTORS,
    Partnering,
    Scenario,
    Trait,
    builtin_scenario_names,
    builtin_scenario_path,
    describe_schema,
    format_schema,
    load_scenario,
    parse_set_option,
    validate_rule_ids,
)

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "scenarios").glob("*.yaml"))
REQUIRED = {
    "baseline",
    "voluntary",
    "mandated",
    "buddying",
    "peer_review_trial",
    "commissioned_integrated_service",
    "competitive_baseline",
    "mandate_midway",
    "pandemic_shock",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(fn, *args, **kwargs) -> CollabsimInputError:
    with pytest.raises(CollabsimInputError) as info:
        fn(*args, **kwargs)
    return info.value


# ---- shipped scenarios ---------------------------------------------------------------------------------------------


def test_required_scenarios_ship():
    assert {p.stem for p in SHIPPED} >= REQUIRED
    assert set(builtin_scenario_names()) >= REQUIRED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_validates(path: Path):
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description.strip()
    assert sc.source_file == path.resolve()
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# "), "each scenario file starts with a comment saying what it represents"
    # every shipped scenario is also loadable by name
    assert load_scenario(path.stem).content_hash() == sc.content_hash()


def test_shipped_scenarios_express_their_designs():
    mandated = load_scenario("mandated")
    assert mandated.partnering.regime == "mandated"
    assert mandated.partnering.type in ("ics", "provider_collaborative")
    assert (mandated.partnering.assignment, mandated.partnering.group_size) == ("geographic", 5)
    buddying = load_scenario("buddying")
    assert (buddying.partnering.regime, buddying.partnering.type) == ("mandated", "buddying")
    assert buddying.partnering.assignment == "buddy_better_performer"
    voluntary = load_scenario("voluntary")
    assert voluntary.partnering.regime == "voluntary"
    at36 = load_scenario("mandate_midway")
    assert at36.partnering.regime == "voluntary"
    (event,) = at36.events.schedule
    assert (event.type, event.month, event.assignment) == ("mandate", 36, "geographic")
    trial = load_scenario("peer_review_trial")
    assert trial.partnering.type == "informal_partnering"
    assert 12 <= trial.horizon_months <= 18
    assert {i.type for i in trial.interventions} == {"peer_review", "external_broker"}
    assert trial.population.n_orgs == 100  # 27 + 23 pairs
    assert all(math.isclose(i.coverage, 0.54) for i in trial.interventions)  # 27 of 50 pairs
    pandemic = load_scenario("pandemic_shock")
    assert [e.type for e in pandemic.events.schedule] == ["pandemic"]
    commissioned = load_scenario("commissioned_integrated_service")
    assert commissioned.horizon_months == 24
    assert commissioned.partnering.resolved_formalisation == "contract"


def test_baseline_file_equals_the_defaults():
    assert load_scenario("baseline").content_hash() == Scenario().content_hash()
    # voluntary differs from baseline only in name and description
    assert load_scenario("voluntary").content_hash() == Scenario().content_hash()


def test_builtin_scenario_path():
    assert builtin_scenario_path("baseline").name == "baseline.yaml"
    assert builtin_scenario_path("baseline.yaml").is_file()
    err = error_of(builtin_scenario_path, "baseline2")
    assert "did you mean baseline?" in err.message
    error_of(builtin_scenario_path, "../pyproject")


# ---- defaults -----------------------------------------------------------------------------------------------------


def test_defaults():
    sc = Scenario()
    assert (sc.name, sc.seed, sc.horizon_months) == ("baseline", 20231, 120)
    p = sc.population
    assert p.n_orgs == 20
    assert p.sector_mix == {
        "acute": 0.25,
        "community": 0.2,
        "primary_care": 0.3,
        "mental_health": 0.1,
        "social_care": 0.15,
    }
    assert (p.size_median_staff, p.size_sigma, p.region_km, p.spatial_clusters) == (1500, 1.0, 100, 0)
    assert (p.proximity_scale_km, p.n_it_systems, p.history_of_competition, p.prior_collaboration) == (25, 3, 0.4, 0.2)
    assert p.leadership_quality == Trait(mean=0.5, sd=0.15)
    assert p.workforce_instability == Trait(mean=0.3, sd=0.1)
    assert p.professional_threat == Trait(mean=0.3, sd=0.1)
    pa = sc.partnering
    assert (pa.regime, pa.type, pa.group_size, pa.assignment, pa.formalisation) == (
        "voluntary",
        "federation",
        2,
        "geographic",
        "type_default",
    )
    assert (pa.external_broker, pa.evaluation, pa.search_radius_km, pa.acceptance_threshold) == (0.0, 0.3, 50, 0.3)
    assert (pa.leave_faith_threshold, pa.leave_after_months, pa.search_interval_months) == (0.25, 12, 12)
    d = sc.dynamics
    assert (d.connecting_months, d.planning_months, d.synergy_share, d.expected_pace) == (3, 6, 0.5, 0.02)
    e = sc.events
    assert (e.leadership_turnover_rate, e.task_failure_rate, e.quick_win_threshold) == (0.01, 0.02, 0.1)
    assert (e.workforce_shock_rate, e.turnover_trust_reset, e.schedule) == (0.005, 0.5, [])
    assert sc.interventions == [] and sc.rules.disable == [] and sc.rules.weights == {}
    assert sc.sweep is None and sc.arms is None
    assert sc.environment.regulatory_favourability == 0.5


def test_float_fields_hold_floats():
    sc = Scenario.from_dict({"population": {"region_km": 100}})
    assert isinstance(sc.population.region_km, float)


def test_scenarios_are_immutable():
    sc = Scenario()
    with pytest.raises(Exception):  # noqa: B017,PT011 - pydantic's frozen-instance error
        sc.population.n_orgs = 3  # type: ignore[misc]


# ---- partnership types --------------------------------------------------------------------------------------------


def test_partnership_types_table():
    assert tuple(PARTNERSHIP_TYPES) == PARTNERSHIP_TYPE_NAMES and len(PARTNERSHIP_TYPES) == 13
    depth = {k: v.integration_depth for k, v in PARTNERSHIP_TYPES.items()}
    assert depth["informal_partnering"] == depth["buddying"] == depth["clinical_network"] == 0.2
    assert depth["federation"] == depth["service_level_chain"] == 0.35
    assert depth["ics"] == depth["pcn"] == depth["joint_venture"] == 0.5
    assert depth["management_contract"] == 0.7 and depth["merger"] == depth["acquisition"] == 0.9
    usual = {k: v.usual_formalisation for k, v in PARTNERSHIP_TYPES.items()}
    assert usual["federation"] == "mou" and usual["informal_partnering"] == "none" and usual["merger"] == "contract"
    assert {usual[t] for t in ("provider_collaborative", "pcn", "ics")} == {"mou"}
    for info in PARTNERSHIP_TYPES.values():
        if info.usual_regime == "mandated":
            assert info.formalisation_optimum == max(info.integration_depth, 0.6)
        else:
            assert info.formalisation_optimum == info.integration_depth
        assert info.description


@pytest.mark.parametrize("type_name", PARTNERSHIP_TYPE_NAMES)
def test_resolved_formalisation(type_name: str):
    p = Partnering(type=type_name)
    assert p.resolved_formalisation == PARTNERSHIP_TYPES[type_name].usual_formalisation
    assert Partnering(type=type_name, formalisation="contract").resolved_formalisation == "contract"
    assert Partnering(type=type_name, formalisation="none").formalisation_level == 0.0


# ---- loading and extends ------------------------------------------------------------------------------------------


def test_extends_chain_merges_deeply(tmp_path: Path):
    write(tmp_path, "parent.yaml", "extends: baseline\nname: parent\npopulation: {n_orgs: 30, region_km: 50}\n")
    write(
        tmp_path,
        "sub/child.yaml",
        """
        extends: ../parent.yaml
        name: child
        population:
          n_orgs: 40
          leadership_quality: {mean: 0.7}
        """,
    )
    sc = load_scenario(tmp_path / "sub" / "child.yaml")
    assert sc.name == "child"
    assert sc.population.n_orgs == 40  # child wins
    assert sc.population.region_km == 50  # from parent
    assert sc.population.size_median_staff == 1500  # from baseline
    assert sc.population.leadership_quality == Trait(mean=0.7, sd=0.15)  # sd kept


def test_extends_replaces_lists_and_sector_mix(tmp_path: Path):
    write(
        tmp_path,
        "parent.yaml",
        """
        population: {sector_mix: {acute: 0.5, community: 0.5}}
        interventions: [{type: peer_review}, {type: champions}]
        """,
    )
    write(
        tmp_path,
        "child.yaml",
        "extends: parent.yaml\npopulation: {sector_mix: {primary_care: 1.0}}\ninterventions: [{type: mou}]\n",
    )
    sc = load_scenario(tmp_path / "child.yaml")
    assert sc.population.sector_mix == {"primary_care": 1.0}
    assert [i.type for i in sc.interventions] == ["mou"]


def test_extends_bare_name_is_builtin(tmp_path: Path):
    path = write(tmp_path, "x.yaml", "extends: mandated\nname: x\n")
    assert load_scenario(path).partnering.regime == "mandated"
    # a plain file name that does not exist next to the file falls back to the built-in scenario
    path = write(tmp_path, "y.yaml", "extends: mandated.yaml\nname: y\n")
    assert load_scenario(path).partnering.regime == "mandated"


def test_extends_cycle(tmp_path: Path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: c.yaml\n")
    write(tmp_path, "c.yaml", "extends: a.yaml\n")
    err = error_of(load_scenario, tmp_path / "a.yaml")
    assert "cycle" in err.message and "a.yaml" in err.message and err.key == "extends"
    write(tmp_path, "self.yaml", "extends: self.yaml\n")
    assert "cycle" in error_of(load_scenario, tmp_path / "self.yaml").message


def test_extends_missing(tmp_path: Path):
    path = write(tmp_path, "a.yaml", "extends: nowhere/missing.yaml\n")
    err = error_of(load_scenario, path)
    assert err.key == "extends" and "missing.yaml" in err.message and "a.yaml" in err.message
    path = write(tmp_path, "b.yaml", "extends: 3\n")
    assert error_of(load_scenario, path).key == "extends"
    path = write(tmp_path, "c.yaml", "extends: baselin\n")
    assert "did you mean baseline?" in error_of(load_scenario, path).message


def test_error_is_attributed_to_the_file_that_sets_the_key(tmp_path: Path):
    write(tmp_path, "parent.yaml", "population: {n_orgs: 1}\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: child\n")
    err = error_of(load_scenario, child)
    assert err.file is not None and err.file.endswith("parent.yaml")
    assert err.key == "population.n_orgs"


def test_empty_file_is_all_defaults(tmp_path: Path):
    path = write(tmp_path, "empty.yaml", "# nothing but a comment\n")
    assert load_scenario(path).content_hash() == Scenario().content_hash()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("population: [1, 2\n", "malformed YAML at line"),
        ("population:\n  n_orgs: 3\n  n_orgs: 4\n", "duplicate key"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, "bad.yaml", text)
    err = error_of(load_scenario, path)
    assert expected in err.message and "bad.yaml" in err.message


def test_yaml_exponent_numbers(tmp_path: Path):
    path = write(tmp_path, "e.yaml", "population: {size_median_staff: 2e3, n_orgs: 20}\n")
    assert load_scenario(path).population.size_median_staff == 2000.0


def test_missing_and_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert "file not found" in error_of(load_scenario, tmp_path / "none.yaml").message
    assert "directory" in error_of(load_scenario, tmp_path).message
    path = write(tmp_path, "locked.yaml", "name: x\n")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    assert "permission denied" in error_of(load_scenario, path).message


def test_not_utf8(tmp_path: Path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    assert "UTF-8" in error_of(load_scenario, path).message


# ---- strict validation and messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"population.n_orgs": -3}, "population.n_orgs", "an integer from 2 to 1000000"),
        ({"population.n_orgs": "40"}, "population.n_orgs", "an integer"),
        ({"population.n_orgs": 40.0}, "population.n_orgs", "an integer"),
        ({"partnering.ambition": True}, "partnering.ambition", "a number from 0 to 1"),
        ({"partnering.ambition": "0.5"}, "partnering.ambition", "a number from 0 to 1"),
        ({"partnering.ambition": float("nan")}, "partnering.ambition", "a number from 0 to 1"),
        ({"partnering.type": "federaton"}, "partnering.type", "did you mean federation?"),
        ({"partnering.regime": "imposed"}, "partnering.regime", "one of: voluntary, mandated"),
        ({"population.sector_mix": {"acute": 0.5}}, "population.sector_mix", "sum to 1"),
        ({"population.sector_mix.acutee": 0.1}, "population.sector_mix.acutee", "did you mean acute?"),
        ({"population.sector_mix.acute": -0.1}, "population.sector_mix.acute", "a number from 0 to 1"),
        ({"population.leadership_quality.sd": 0.5}, "population.leadership_quality.sd", "Beta"),
        ({"seed": 2**63}, "seed", "an integer from 0 to 9223372036854775807"),
        ({"rules.weights": {"x": -1.0}}, "rules.weights.x", ">= 0"),
        ({"rules.weights": {"x": float("inf")}}, "rules.weights.x", "finite"),
        ({"rules.disable": "x"}, "rules.disable", "a list"),
        ({"events.schedule": [{"type": "mandate", "month": 120}]}, "events.schedule[0].month", "0 to 119"),
        ({"events.schedule": [{"type": "pandemc", "month": 1}]}, "events.schedule[0].type", "did you mean pandemic?"),
        ({"events.schedule": [{"month": 1}]}, "events.schedule[0].type", "one of: mandate, pandemic"),
        ({"events.schedule": [{"type": "crisis"}]}, "events.schedule[0].month", "required"),
        ({"events.schedule": [{"type": "crisis", "month": 2, "severity": 2}]}, "events.schedule[0].severity", "0 to 1"),
        ({"interventions": [{"type": "peer_review", "start_month": 500}]}, "interventions[0].start_month", "0 to 119"),
        ({"population.n_orgs": 3, "partnering.group_size": 4}, "partnering.group_size", "from 2 to 3"),
        (
            {"events.schedule": [{"type": "mandate", "month": 1, "group_size": 21}]},
            "events.schedule[0].group_size",
            "20",
        ),
        ({"interventions": [{"type": "mou", "start_month": 5, "end_month": 5}]}, "interventions[0].end_month", "6"),
        ({"interventions": [{"type": "hugs"}]}, "interventions[0].type", "peer_review"),
        ({"population": 5}, "population", "a mapping with keys: n_orgs"),
        ({"population.n_org": 5}, "population.n_org", "did you mean population.n_orgs?"),
        ({"n_orgs": 5}, "n_orgs", "did you mean population.n_orgs?"),
        ({"population.n_orgs.x": 5}, "population.n_orgs.x", "not a section"),
        ({"interventions[3].type": "mou"}, "interventions[3].type", "does not exist"),
        ({"arms": {"a": {"population.n_orgs": 1}}}, "arms.a: population.n_orgs", "from 2 to"),
        ({"arms": {"a": {"populaton.n_orgs": 4}}}, "arms.a: populaton", "did you mean population?"),
        ({"arms": {"a": {"sweep": {}}}}, "arms.a.sweep", "not arms or sweep"),
    ],
)
def test_with_overrides_rejects(overrides: dict, key: str, fragment: str):
    err = error_of(Scenario().with_overrides, overrides, source="--set")
    assert err.key == key
    assert err.file == "--set"
    assert fragment in err.message
    assert "\n" not in err.message
    assert err.message.startswith(f"--set: {key}")


def test_with_overrides_applies_and_validates(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(scenario_module, "_known_rule_ids", lambda: None)  # any rule id is accepted here
    sc = Scenario()
    new = sc.with_overrides(
        {
            "population.n_orgs": 40,
            "events.schedule": [{"type": "mandate", "month": 36}],
            "population.sector_mix": {"acute": 0.5, "primary_care": 0.5},
        }
    )
    assert new.population.n_orgs == 40 and sc.population.n_orgs == 20
    assert new.events.schedule[0].group_size == 5
    assert new.population.sector_mix == {"acute": 0.5, "primary_care": 0.5}
    again = new.with_overrides({"events.schedule[0].month": 12, "rules.weights.some-rule": 2})
    assert again.events.schedule[0].month == 12
    assert again.rules.weights == {"some-rule": 2.0}
    # cross-field checks see the overridden horizon
    err = error_of(new.with_overrides, {"horizon_months": 36})
    assert err.key == "events.schedule[0].month"


def test_with_overrides_keeps_source_file():
    sc = load_scenario("mandated")
    assert sc.with_overrides({"seed": 1}).source_file == sc.source_file


def test_arms():
    sc = Scenario().with_overrides(
        {"arms": {"control": {}, "big": {"population.n_orgs": 50, "partnering.type": "ics"}}}
    )
    big = sc.arm("big")
    assert big.population.n_orgs == 50 and big.partnering.type == "ics" and big.arms is None
    assert sc.arm("control").content_hash() != sc.content_hash()  # arms are part of the design
    assert "did you mean big?" in error_of(sc.arm, "bog").message


def test_parse_set_option():
    assert parse_set_option("population.n_orgs=40") == ("population.n_orgs", 40)
    assert parse_set_option("partnering.ambition=0.7") == ("partnering.ambition", 0.7)
    assert parse_set_option("name=my run") == ("name", "my run")
    assert parse_set_option("rules.disable=[a, b]") == ("rules.disable", ["a", "b"])
    assert parse_set_option("population.size_median_staff=1e4") == ("population.size_median_staff", 10000.0)
    assert parse_set_option("events.schedule[0].month = 3") == ("events.schedule[0].month", 3)
    for bad in ("population.n_orgs", "=3", "a..b=3", "x=[1, 2"):
        err = error_of(parse_set_option, bad)
        assert err.file == "--set"


def test_errors_pickle():
    err = error_of(Scenario().with_overrides, {"population.n_orgs": -3})
    again = pickle.loads(pickle.dumps(err))
    assert again.message == err.message and again.key == err.key


# ---- rule ids -----------------------------------------------------------------------------------------------------


def test_validate_rule_ids(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(scenario_module, "_known_rule_ids", lambda: frozenset({"fn-proximity-communication", "x"}))
    ok = Scenario().with_overrides({"rules.disable": ["x"], "rules.weights": {"fn-proximity-communication": 2.0}})
    validate_rule_ids(ok)
    err = error_of(Scenario().with_overrides, {"rules.disable": ["fn-proximity-comunication"]})
    assert err.key == "rules.disable[0]" and "did you mean fn-proximity-communication?" in err.message
    err = error_of(Scenario().with_overrides, {"rules.weights": {"nope": 1.0}})
    assert err.key == "rules.weights.nope"
    err = error_of(Scenario().with_overrides, {"arms": {"a": {"rules.disable": ["nope"]}}})
    assert err.key is not None and err.key.startswith("arms.a")


def test_validate_rule_ids_without_rule_table(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(scenario_module, "_known_rule_ids", lambda: None)
    validate_rule_ids(Scenario().with_overrides({"rules.disable": ["anything"]}))


# ---- content hash -------------------------------------------------------------------------------------------------


def test_content_hash_stable_and_sensitive(tmp_path: Path):
    a = write(tmp_path, "a.yaml", "name: a\npopulation: {region_km: 100, n_orgs: 20}\n")
    b = write(tmp_path, "b.yaml", "description: other\nname: b\npopulation: {n_orgs: 20, region_km: 100.0}\n")
    h = load_scenario(a).content_hash()
    assert len(h) == 64 and h == load_scenario(a).content_hash()
    assert h == load_scenario(b).content_hash() == Scenario().content_hash()  # name, description, 100 vs 100.0
    assert Scenario().with_overrides({"population.n_orgs": 21}).content_hash() != h
    assert Scenario().with_overrides({"partnering.ambition": 0.5000001}).content_hash() != h


def test_resolved_dict_round_trips():
    sc = load_scenario("mandate_midway")
    data = sc.resolved_dict()
    assert data["events"]["schedule"][0]["group_size"] == 5
    assert Scenario.from_dict(data).content_hash() == sc.content_hash()


# ---- describe -----------------------------------------------------------------------------------------------------


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Walk the models independently of describe_schema."""
    keys = []
    for name, field in model.model_fields.items():
        tp = field.annotation
        key = prefix + name
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys += _leaf_keys(tp, key + ".")
            continue
        keys.append(key)
        if typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            if typing.get_origin(item) is typing.Annotated:
                item = typing.get_args(item)[0]
            variants = typing.get_args(item) or (item,)
            for v in variants:
                if isinstance(v, type) and issubclass(v, BaseModel):
                    if "type" in v.model_fields and len(variants) > 1:
                        tag = typing.get_args(v.model_fields["type"].annotation)[0]
                        keys += _leaf_keys(v, f"{key}[type={tag}].")
                    else:
                        keys += _leaf_keys(v, f"{key}[].")
    return keys


def test_describe_covers_every_leaf_key():
    rows = describe_schema()
    keys = [r.key for r in rows]
    assert keys == _leaf_keys(Scenario)
    assert len(keys) == len(set(keys))
    for row in rows:
        assert row.type and row.default and row.allowed and row.description, row
    by_key = {r.key: r for r in rows}
    assert by_key["population.n_orgs"].allowed == "an integer from 2 to 1000000"
    assert by_key["population.n_orgs"].default == "20"
    assert by_key["population.workforce_instability.sd"].default == "0.1"
    assert by_key["events.schedule[type=mandate].month"].default == "(required)"
    assert by_key["events.schedule[type=mandate].partnership_type"].default == '"ics"'
    assert "federation" in by_key["partnering.type"].allowed
    for sector in SECTORS:
        assert sector in by_key["population.sector_mix"].allowed


def test_every_numeric_field_has_a_range():
    def walk(model: type[BaseModel]):
        for name, field in model.model_fields.items():
            tp = field.annotation
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                yield from walk(tp)
            elif tp in (int, float, int | None):
                kinds = {type(m) for m in field.metadata}
                assert kinds & {annotated_types.Ge, annotated_types.Gt}, f"{model.__name__}.{name}"
                assert kinds & {annotated_types.Le, annotated_types.Lt}, f"{model.__name__}.{name}"
                yield name

    assert len(list(walk(Scenario))) > 50


def test_format_schema():
    md = format_schema(fmt="markdown")
    rows = describe_schema()
    assert md.count("\n") == len(rows) + 2
    assert "| `population.n_orgs` | integer | `20` |" in md
    table = format_schema(fmt="table")
    assert table.splitlines()[0].startswith("key")
    with pytest.raises(ValueError, match="unknown format"):
        format_schema(fmt="html")


def test_docs_table_is_current():
    doc = (REPO / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert format_schema(fmt="markdown") in doc, "regenerate: python -m collabsim scenario describe --format markdown"


# ---- property: any in-range value of a bounded scalar is accepted, out-of-range values are named --------------------

_SCALARS = [
    r
    for r in describe_schema()
    if r.type in ("integer", "number")
    and "[" not in r.key
    and r.allowed.startswith(("an integer from", "a number from"))
    and not r.key.endswith((".sd", ".mean"))  # Beta feasibility couples a trait's mean and sd
    and r.key not in ("horizon_months", "partnering.group_size")  # coupled to schedule months / n_orgs
]


def _bounds(row) -> tuple[float, float]:
    lo, hi = row.allowed.split(" from ")[1].split(" to ")
    return float(lo), float(hi)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_bounded_scalars_property(data):
    row = data.draw(st.sampled_from(_SCALARS))
    lo, hi = _bounds(row)
    if row.type == "integer":
        good = data.draw(st.integers(int(lo), int(hi)))
        bad = data.draw(st.one_of(st.integers(max_value=int(lo) - 1), st.integers(min_value=int(hi) + 1)))
    else:
        good = data.draw(st.floats(lo, hi))
        bad = data.draw(
            st.one_of(
                st.floats(max_value=lo, exclude_max=True, allow_infinity=False),
                st.floats(min_value=hi, exclude_min=True, allow_infinity=False),
            )
        )
    assert Scenario().with_overrides({row.key: good}).resolved_dict() is not None
    err = error_of(Scenario().with_overrides, {row.key: bad})
    assert err.key == row.key and row.allowed in err.message
