"""collabsim.compare, mechanism attribution, the report and their command lines, on tiny scenarios.

Expectations are invariants that hold whatever the weights: common random numbers make identical arms
identical; the analysis of the stored time series agrees with the engine's own summary; switching nothing off
reproduces the comparison; the report is self-contained.
"""

import json
import math
import re
import socket
from html import escape

import numpy as np
import pandas as pd
import pytest

import collabsim
from collabsim.cli import main
from collabsim.compare import (
    ALL_OFF,
    NOTHING_OFF,
    _switch_off,
    attribution_groups,
    collaboration_events,
    effective_weights,
    load_comparison,
    maturity_by_month,
    pair_scenarios,
    run_trajectories,
)
from collabsim.errors import CollabsimInputError
from collabsim.recorder import METRIC_DESCRIPTIONS
from collabsim.rules import load_rule_table
from collabsim.scenario import Scenario

TINY = {
    "name": "tiny_compare",
    "horizon_months": 18,
    "population": {"n_orgs": 8},
    "partnering": {"type": "provider_collaborative", "group_size": 2, "leave_after_months": 3},
    "arms": {
        "voluntary": {"partnering.regime": "voluntary"},
        "mandated": {"partnering.regime": "mandated", "partnering.assignment": "geographic"},
    },
    "sweep": {"replications": 4},
}
SECTIONS = (
    "Findings",
    "Every summary metric",
    "Time to synergy and to dissolution",
    "Trajectories",
    "Maturity",
    "Which mechanisms make the arms differ",
    "What the model assumes",
    "Scenario, runs and versions",
)


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return Scenario.from_dict(TINY)


@pytest.fixture(scope="module")
def compared(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    return collabsim.compare(tiny, executor="serial", out=out, attribute=True, attribute_replications=3)


def test_arms_in_file_order_and_arm_scenarios(tiny):
    assert list(tiny.arms) == ["voluntary", "mandated"]
    arm = tiny.arm("mandated")
    assert arm.arms is None and arm.partnering.regime == "mandated"
    collabsim.simulate(arm.with_overrides({"horizon_months": 2}), seed=1)  # a plain scenario simulate runs


def test_compare_table(compared):
    t = compared.table
    assert compared.arms == ("voluntary", "mandated")
    assert list(t.index) == list(METRIC_DESCRIPTIONS)
    for col in ("voluntary", "mandated", "difference", "ci_low", "ci_high", "effect_size", "p_superiority"):
        assert col in t.columns
    # independent recomputation from the stored runs: difference = mean over replicates of (second - first)
    s = compared.results.summary
    v = s[s["arm"] == "voluntary"].set_index("replicate")
    m = s[s["arm"] == "mandated"].set_index("replicate")
    for metric in METRIC_DESCRIPTIONS:
        d = (m[metric] - v[metric]).dropna()
        if len(d) == 0:
            continue
        assert t.at[metric, "difference"] == pytest.approx(d.mean())
        assert t.at[metric, "n_pairs"] == len(d)
        assert t.at[metric, "voluntary"] == pytest.approx(v[metric].mean())
        lo, hi = t.at[metric, "ci_low"], t.at[metric, "ci_high"]
        if len(d) < 2:  # one pair says nothing about spread: no interval
            assert math.isnan(lo) and math.isnan(hi)
            continue
        assert lo <= t.at[metric, "difference"] + 1e-12 and t.at[metric, "difference"] <= hi + 1e-12


def test_identical_arms_differ_by_exactly_nothing(tiny):
    sc = tiny.with_overrides({"arms": {"a": {}, "b": {"partnering.ambition": 0.5}}})  # b = a, written differently
    cmp = collabsim.compare(sc, executor="serial", replications=3)
    t = cmp.table[cmp.table["n_pairs"] > 0]
    assert (t["difference"] == 0).all()
    t = t[t["n_pairs"] > 1]  # an interval needs two pairs
    assert len(t) > 10 and (t["ci_low"] == 0).all() and (t["ci_high"] == 0).all()
    assert (t["p_superiority"] == 0.5).all()


def test_common_random_numbers_shrink_the_standard_error(tiny):
    sc = tiny.with_overrides({"arms": {"a": {}, "b": {"rules.weights": {"gl-trust-risk-loop": 1.05}}}})
    t = collabsim.compare(sc, executor="serial", replications=6).table
    assert t.at["mean_trust", "se_paired"] < 0.5 * t.at["mean_trust", "se_unpaired"]


def test_time_series_analysis_agrees_with_the_engine(tiny):
    """Kaplan–Meier inputs, trajectories and maturity come from the stored time series; each agrees with what the
    engine itself summarised for the same run."""
    for arm in tiny.arms:
        for r in range(2):
            res = collabsim.simulate(tiny.arm(arm), seed=tiny.seed, key=(r,))
            ts = res.timeseries.assign(arm=arm, replicate=r)
            st = res.engine.state
            ev = collaboration_events(ts, tiny.horizon_months).set_index("collaboration")
            assert np.array_equal(ev["formed"].to_numpy(), st.col_formed)
            reached = st.col_synergy_month >= 0
            syn = ev["synergy"].to_numpy()
            assert np.array_equal(np.isfinite(syn), reached)
            assert np.array_equal(syn[reached], (st.col_synergy_month - st.col_formed)[reached])
            if reached.any():
                assert np.median(syn[reached]) == res.summary["months_to_synergy"]
            dissolved = ev["dissolved"].notna().to_numpy()
            assert dissolved.mean() == pytest.approx(res.summary["share_dissolved"])
            last = run_trajectories(ts).iloc[-1]
            for var in ("trust", "faith", "confidence", "risk_tolerance", "collaborative_behaviour"):
                assert last[var] == pytest.approx(res.summary[f"mean_{var}"], nan_ok=True), var
            mat = maturity_by_month(ts).iloc[-1]
            for level in ("pathological", "bureaucratic", "generative"):
                assert mat[level] == pytest.approx(res.summary[f"share_{level}"]), level


def test_km_and_trajectory_tables(compared):
    km = compared.km
    assert set(km["event"]) == {"synergy", "dissolved"} and set(km["arm"]) == set(compared.arms)
    for _, k in km.groupby(["event", "arm"]):
        share = k["share"].to_numpy()
        assert np.all(np.diff(share) >= -1e-12) and share.min() >= 0 and share.max() <= 1
        assert np.all(k["ci_low"] <= k["share"] + 1e-12) and np.all(k["share"] <= k["ci_high"] + 1e-12)
    tr = compared.trajectories
    assert {"q05", "q25", "q50", "q75", "q95"} <= set(tr.columns)
    assert (tr["q05"] <= tr["q25"]).all() and (tr["q25"] <= tr["q50"]).all() and (tr["q75"] <= tr["q95"]).all()


# -- attribution ----------------------------------------------------------------------------------------------------


def test_attribution_nothing_off_reproduces_the_gap(compared):
    att = compared.attribution
    assert att.check == {"runs_compared": 2 * 3, "identical": True}
    t = att.table
    s = compared.results.summary
    for metric in METRIC_DESCRIPTIONS:
        row = t[(t["metric"] == metric) & (t["group"] == NOTHING_OFF)].iloc[0]
        v = s[(s["arm"] == "voluntary") & (s["replicate"] < 3)].set_index("replicate")[metric]
        m = s[(s["arm"] == "mandated") & (s["replicate"] < 3)].set_index("replicate")[metric]
        d = (m - v).dropna()
        if len(d):
            assert row["gap"] == d.mean()  # same seeds: exactly the comparison's gap on these replicates
            assert row["gap_without"] == row["gap"] and row["contribution"] == 0


def test_attribution_sums_are_consistent(compared):
    t = compared.attribution.table.dropna(subset=["gap"])
    shares = t[t["gap"] != 0]
    assert np.allclose(shares["share"], shares["contribution"] / shares["gap"], equal_nan=True)
    groups = set(t["group"])
    assert NOTHING_OFF in groups and ALL_OFF in groups and len(groups) == len(compared.attribution.groups)
    # with every rule off, no rule can make the arms differ in the rule-moved state the gap is measured on
    every = t[(t["group"] == ALL_OFF) & (t["metric"] == "mean_confidence")]
    assert every["gap_without"].abs().max() == 0 or math.isnan(every["gap_without"].iloc[0])


def test_switching_a_group_off_changes_exactly_its_rows(tiny):
    # row ids that are also CMOC ids (fn-x and fn-x@y): `rules.disable` would switch off the whole CMOC
    arm = tiny.arm("mandated").with_overrides({"rules.weights": {"fn-trust-faith-collab-behaviour": 2.0}})
    before = effective_weights(arm)
    for name, ids in attribution_groups("mechanism").items():
        after = effective_weights(arm.with_overrides(_switch_off(arm, ids)))
        changed = {rid for rid in before if after[rid] != before[rid]}
        assert changed == {rid for rid in ids if before[rid] > 0}, name
        assert all(after[rid] == 0 for rid in ids)
    calibrated = {r.id: r.weight for r in load_rule_table().rows}
    assert (
        before["fn-trust-faith-collab-behaviour@task_achievement"]
        == 2.0 * calibrated["fn-trust-faith-collab-behaviour@task_achievement"]
    )


def test_attribution_groups():
    by_mech = attribution_groups("mechanism")
    by_rule = attribution_groups("rule")
    assert sorted(sum(by_mech.values(), [])) == sorted(by_rule) == sorted(sum(attribution_groups("cmoc").values(), []))
    assert "trust" in by_mech and all(len(v) == 1 for v in by_rule.values())


# -- two files ------------------------------------------------------------------------------------------------------


def test_pair_of_files_makes_two_arms():
    a = collabsim.load_scenario("voluntary")
    b = collabsim.load_scenario("mandated")
    sc = pair_scenarios(a, b, replications=5)
    assert list(sc.arms) == [a.name, b.name] and sc.sweep_spec.replications == 5
    second = sc.arm(b.name).with_overrides({"name": b.name, "description": b.description, "seed": b.seed})
    assert second.content_hash() == b.content_hash()
    assert sc.arm(a.name).content_hash() == a.content_hash()


# -- report ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(compared, tmp_path_factory, request):
    out = tmp_path_factory.mktemp("report")

    def no_network(*args, **kwargs):
        raise AssertionError("the report tried to use the network")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", no_network)
    mp.setattr(socket, "create_connection", no_network)
    try:
        path = compared.write_report(out)
    finally:
        mp.undo()
    return path


def test_report_is_self_contained_and_has_every_section(report):
    html = report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html, section
    # nothing loaded from elsewhere: images are data URIs, no external stylesheet or script
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "<script" not in html and "<link" not in html
    assert html.count('src="data:image/png;base64,') >= 7
    assert "Mandated" in html or "mandated" in html
    assert "Seeds: seed 20231" in html and "numba" in html and "Calibrated to one stated target" in html
    out = report.parent
    for name in ("key_figure", "differences", "time_to_synergy", "trajectories", "maturity", "attribution"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    for name in ("comparison", "time_to_event", "km_curves", "trajectories", "maturity", "attribution"):
        assert (out / "tables" / f"{name}.csv").is_file()
    assert not list(out.rglob(".*tmp*"))  # atomic writes leave no temporaries


def test_findings_open_with_the_headline(compared):
    from collabsim.report import comparison_findings

    lines = comparison_findings(compared)
    assert "of mandated partnerships were in collaborative behaviour" in lines[0] and "95% CI" in lines[0]


def test_report_rebuilds_the_same_numbers(compared, tmp_path):
    again = load_comparison(compared.path)
    pd.testing.assert_frame_equal(again.table, compared.table)  # seeded bootstrap: same intervals
    pd.testing.assert_frame_equal(again.attribution.table, compared.attribution.table)


# -- command line ---------------------------------------------------------------------------------------------------


def write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def test_cli_compare_and_report(tmp_path, capsys):
    f = write(tmp_path / "tiny.yaml", {**TINY, "sweep": {"replications": 3}})
    out = tmp_path / "out"
    assert main(["compare", str(f), "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    first = (out / "tables" / "comparison.csv").read_text()
    assert (out / "report.html").is_file() and (out / "compare.json").is_file()
    (out / "report.html").unlink()
    assert main(["report", str(out), "--quiet"]) == 0
    assert (out / "report.html").is_file() and (out / "tables" / "comparison.csv").read_text() == first


def test_compare_two_files(tmp_path):
    a = write(tmp_path / "a.yaml", {"name": "a", "horizon_months": 6, "population": {"n_orgs": 6}})
    b = write(tmp_path / "b.yaml", {"name": "b", "horizon_months": 6, "population": {"n_orgs": 6, "region_km": 40}})
    cmp = collabsim.compare(a, b, executor="serial", replications=2)
    assert cmp.arms == ("a", "b") and {"a", "b", "difference"} <= set(cmp.table.columns)
    assert cmp.scenario.arms["b"] == {"population.region_km": 40.0}


@pytest.mark.parametrize(
    ("extra", "data", "needle"),
    [
        ([], {"name": "x", "horizon_months": 6}, "has no arms"),
        ([], {**TINY, "arms": {**TINY["arms"], "third": {}}}, "needs two arms"),
        (["--arms", "voluntary,nope"], TINY, "nope"),
        (["--metric", "share_synergies"], TINY, "--metric"),
        (["--replications", "1"], TINY, "--replications"),
        ([], {**TINY, "sweep": {"parameters": {"population.region_km": [50, 60]}}}, "sweep.parameters"),
    ],
)
def test_cli_compare_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, data, needle):
    f = write(tmp_path / "bad.yaml", data)
    out = tmp_path / "out"
    assert main(["compare", str(f), "--out", str(out), "--executor", "serial", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("collabsim: error:") and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_cli_report_of_something_else(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("collabsim: error:") and "holds no sweep" in err and len(err.splitlines()) == 1


def test_sweep_report_draws_heatmaps(tmp_path):
    sc = Scenario.from_dict(
        {
            "name": "grid",
            "horizon_months": 6,
            "population": {"n_orgs": 6},
            "sweep": {
                "parameters": {"population.size_median_staff": [200, 5000], "population.proximity_scale_km": [5, 50]},
                "replications": 1,
            },
        }
    )
    out = tmp_path / "sweep"
    collabsim.sweep(sc, executor="serial", out=out, timeseries=False)
    assert main(["report", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert (out / "figures" / "heatmap_share_synergy.png").is_file() and "heatmap of share_synergy" in html
    assert (out / "tables" / "means.csv").is_file()


def test_arms_with_different_horizons_are_refused(tiny, tmp_path):
    """Time to synergy and end-of-run metrics need one follow-up: an arm that changes the horizon is bad input."""
    sc = tiny.with_overrides({"arms": {"short": {"horizon_months": 12}, "long": {}}})
    with pytest.raises(CollabsimInputError, match="horizon_months"):
        collabsim.compare(sc, executor="serial", replications=2, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_metrics_interval_does_not_depend_on_which_metrics_are_analysed(compared):
    """Bootstrap streams are keyed by the metric's name, not its position in the list."""
    from collabsim.compare import compare_summaries  # noqa: PLC0415

    s, seed = compared.results.summary, compared.results.manifest["seeds"]["seed"]
    full = compared.table.loc["mean_trust", ["ci_low", "ci_high"]].to_numpy(float)
    alone = compare_summaries(s, "voluntary", "mandated", seed=seed, metrics=["mean_trust"])
    assert np.array_equal(alone.loc["mean_trust", ["ci_low", "ci_high"]].to_numpy(float), full)


# -- presentation: bounds, effect sizes without spread, months_to_synergy, organisations, wording ----------------------


def test_bounded_metrics_and_their_intervals_stay_in_0_1(compared):
    """Every value of a metric in recorder.BOUNDED_METRICS lies in [0, 1] in real runs, so clipping its interval to
    [0, 1] drops only values its mean cannot take."""
    from collabsim.recorder import BOUNDED_METRICS  # noqa: PLC0415

    s = compared.results.summary
    for m in BOUNDED_METRICS:
        v = s[m].to_numpy(float)
        v = v[np.isfinite(v)]
        assert ((v >= 0) & (v <= 1)).all(), m
        for arm in compared.arms:
            lo, hi = compared.table.loc[m, [f"{arm}_ci_low", f"{arm}_ci_high"]].to_numpy(float)
            assert not (lo < 0 or hi > 1), (m, arm, lo, hi)


def _constant_confidence(compared) -> pd.DataFrame:
    """The comparison's own table with mean_confidence re-analysed as constant within each arm but different."""
    from collabsim.compare import compare_summaries  # noqa: PLC0415

    s = compared.results.summary.copy()
    s["mean_confidence"] = np.where(s["arm"] == "mandated", 0.7, 0.5)
    t = compare_summaries(s, "voluntary", "mandated", seed=1)
    assert math.isnan(t.at["mean_confidence", "effect_size"])
    return t


def test_no_spread_within_arms_is_reported_as_undefined_not_infinite(compared):
    import dataclasses  # noqa: PLC0415

    from collabsim.report import NO_SPREAD, _summary_display, build_comparison_doc, comparison_findings  # noqa: PLC0415

    cmp = dataclasses.replace(compared, table=_constant_confidence(compared), metric="mean_confidence")
    shown = _summary_display(cmp).set_index("metric")
    assert shown.at["mean_confidence", "effect size g"] == "undefined: no spread within arms"
    finding = comparison_findings(cmp)[0]
    assert NO_SPREAD in finding and "∞" not in finding
    html = "".join(build_comparison_doc(cmp).parts)
    assert "∞" not in html and NO_SPREAD in html


def test_months_to_synergy_row_carries_its_note(report):
    from collabsim.report import MONTHS_TO_SYNERGY_NOTE  # noqa: PLC0415

    text = report.read_text(encoding="utf-8")
    assert "months_to_synergy †" in text
    note = text[text.index("<p class='note'>† ") :].split("</p>")[0]
    assert escape(MONTHS_TO_SYNERGY_NOTE) in note and "Time to synergy and to dissolution" in note


def test_report_names_each_arms_organisations_when_the_arms_change_the_population(tmp_path):
    from collabsim.report import _organisations  # noqa: PLC0415

    trial = collabsim.load_scenario("peer_review_trial")
    assert _organisations(trial, list(trial.arms)) == "54 organisations in peer_review, 46 in control"
    assert _organisations(Scenario.from_dict(TINY), ["voluntary", "mandated"]) == "8 organisations"
    sc = Scenario.from_dict(
        {**TINY, "arms": {"small": {"population.n_orgs": 6}, "large": {}}, "horizon_months": 6, "sweep": None}
    )
    cmp = collabsim.compare(sc, executor="serial", replications=2, out=tmp_path / "out")
    html = cmp.write_report().read_text(encoding="utf-8")
    sub = html[html.index('<p class="sub">') :].split("</p>")[0]
    assert "6 organisations in small, 8 in large" in sub
    assert "6 organisations in small, 8 in large, 6 months" in html  # the method section too


def test_findings_wording_singular_years_and_months_and_one_minus_sign(compared):
    import dataclasses  # noqa: PLC0415

    from collabsim.report import _num, comparison_findings  # noqa: PLC0415

    assert _num(-3.2e-5) == "−3.2e−05" and _num(3.2e-5) == "3.2e−05" and "-" not in _num(-0.5)
    one_year = dataclasses.replace(compared, scenario=compared.scenario.with_overrides({"horizon_months": 12}))
    text = " ".join(comparison_findings(one_year))
    assert "after 1 year" in text and "1 years" not in text
    assert "after 1.5 years" in " ".join(comparison_findings(compared))
    km = compared.km_summary.copy()
    median = (km["event"] == "synergy") & (km["quantity"] == "median months")
    km.loc[median, ["voluntary", "mandated"]] = [1.0, 2.0]
    text = " ".join(comparison_findings(dataclasses.replace(compared, km_summary=km)))
    assert "within 1 month of forming" in text and "within 2 months of forming" in text and "1 months" not in text
