"""Running sweeps: identical numbers from every executor, common random numbers, the store's layout and manifest."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import collabsim
from collabsim import load_results, simulate
from collabsim.recorder import METRIC_DESCRIPTIONS
from collabsim.scenario import Scenario
from collabsim.sweeps import SweepPlan

TINY = {
    "name": "tiny",
    "horizon_months": 12,
    "population": {"n_orgs": 6},
    "sweep": {"parameters": {"population.proximity_scale_km": [5, 50]}, "replications": 2},
    "arms": {
        "voluntary": {},
        "mandated": {"partnering.regime": "mandated", "partnering.type": "ics", "partnering.group_size": 3},
    },
}
METRICS = list(METRIC_DESCRIPTIONS)
POPULATION = ["sector", "x_km", "y_km", "staff", "it_system"]


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return Scenario.from_dict(TINY)


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    return collabsim.sweep(tiny, executor="serial", out=out, batch_size=3)


def bits(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=np.float64).view(np.uint64)


def assert_same_numbers(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for col in ("run_id", "arm", "point", "replicate", "seed", "population.proximity_scale_km"):
        assert a[col].tolist() == b[col].tolist(), col
    for m in METRICS:  # bitwise, NaN included
        assert np.array_equal(bits(a[m]), bits(b[m])), m


def test_serial_sweep_writes_the_store(reference, tiny):
    out = reference.path
    assert (out / "manifest.json").is_file() and (out / "summary.parquet").is_file()
    assert not (out / "_pending").exists()
    s = reference.summary
    assert len(s) == reference.n_runs == 2 * 2 * 2 and reference.complete
    assert list(s.columns) == [
        "run_id",
        "arm",
        "point",
        "replicate",
        "seed",
        "population.proximity_scale_km",
        *METRICS,
    ]
    assert s["run_id"].tolist() == list(range(8))
    assert pq.read_schema(out / "summary.parquet").field("run_id").type == "int64"
    # partitioned time series: one directory per arm and point
    parts = sorted(p.relative_to(out / "timeseries").parts[:2] for p in (out / "timeseries").rglob("*.parquet"))
    assert {p for p in parts} == {(f"arm={a}", f"point={i}") for a in ("voluntary", "mandated") for i in (0, 1)}
    one = reference.timeseries(arm="mandated", point=1)
    assert set(one["arm"]) == {"mandated"} and set(one["point"]) == {1}
    assert sorted(set(one["run_id"])) == [6, 7] and one["mandated"].all()
    by_path = pd.read_parquet(out / "timeseries" / "arm=voluntary")  # a user can load one arm by path
    assert set(by_path["point"].astype(int)) == {0, 1} and not by_path["mandated"].any()
    assert len(reference.timeseries()) == len(pd.read_parquet(out / "timeseries"))
    # the manifest: scenario and hash, design, seeds, versions
    m = json.loads((out / "manifest.json").read_text())
    assert m["scenario_hash"] == tiny.content_hash() and m["scenario"]["sweep"]["replications"] == 2
    assert m["design"]["design"] == "grid" and m["design"]["points"] == [
        {"population.proximity_scale_km": 5.0},
        {"population.proximity_scale_km": 50.0},
    ]
    assert m["seeds"]["seed"] == tiny.seed and m["seeds"]["run_key"] == "(replicate,)"
    assert {"collabsim", "numpy", "numba", "pyarrow", "SALib"} <= set(m["versions"])
    assert m["complete"] is True and m["finished_runs"] == 8 and m["sessions"][0]["executor"] == "serial"


def test_results_equal_simulate_with_the_replicate_key(reference, tiny):
    plan = SweepPlan(tiny)
    s = reference.summary.set_index("run_id")
    for run_id in (0, 5, 7):
        spec = plan.run(run_id)
        direct = simulate(plan.scenario_for(spec.arm, spec.point), seed=tiny.seed, key=(spec.replicate,))
        stored = s.loc[run_id]
        assert (stored["arm"], stored["point"], stored["replicate"]) == (spec.arm, spec.point, spec.replicate)
        for m in METRICS:
            assert np.array_equal(np.float64(stored[m]), np.float64(direct.summary[m]), equal_nan=True), m


def test_common_random_numbers(tiny):
    """Arms (and design points) with the same replicate share their population; replicates differ."""
    plan = SweepPlan(tiny)
    pops = {}
    for rep in (0, 1):
        for arm in plan.arm_names:
            for point in range(plan.n_points):
                result = simulate(plan.scenario_for(arm, point), seed=plan.seed, key=(rep,))
                pops[arm, point, rep] = result
    for rep in (0, 1):
        ref = pops["voluntary", 0, rep].organisations[POPULATION]
        for arm in plan.arm_names:
            for point in range(plan.n_points):
                pd.testing.assert_frame_equal(pops[arm, point, rep].organisations[POPULATION], ref)
        # the arms are different experiments on that same population
        assert not pops["mandated", 0, rep].timeseries["mandated"].eq(False).all()
        assert not pops["voluntary", 0, rep].timeseries["mandated"].any()
    a, b = pops["voluntary", 0, 0].organisations, pops["voluntary", 0, 1].organisations
    assert not np.array_equal(a["x_km"].to_numpy(), b["x_km"].to_numpy())


@pytest.mark.parametrize(("executor", "workers"), [("process", 1), ("process", 2), ("dask", 2)])
def test_every_executor_gives_identical_numbers(reference, tiny, tmp_path, executor, workers):
    result = collabsim.sweep(tiny, executor=executor, workers=workers, out=tmp_path / "out")
    assert result.complete
    assert_same_numbers(reference.summary, result.summary)
    pd.testing.assert_frame_equal(
        reference.timeseries(arm="mandated", point=0), result.timeseries(arm="mandated", point=0)
    )
    assert result.manifest["sessions"][0]["executor"] == executor


def test_summary_only_store(tiny, tmp_path, reference):
    result = collabsim.sweep(tiny, executor="serial", out=tmp_path / "out", timeseries=False)
    assert not (tmp_path / "out" / "timeseries").exists()
    assert_same_numbers(reference.summary, result.summary)
    assert result.timeseries().empty


def test_sweep_without_out_uses_a_temporary_directory():
    sc = Scenario.from_dict({"horizon_months": 6, "population": {"n_orgs": 4}, "sweep": {"replications": 2}})
    result = collabsim.sweep(sc, executor="serial")
    try:
        assert result.path.is_dir() and len(result.summary) == 2
        assert set(result.summary["arm"]) == {"base"} and result.summary["replicate"].tolist() == [0, 1]
        assert load_results(result.path).summary.equals(result.summary)
    finally:
        import shutil

        shutil.rmtree(result.path)


def test_table_by_arm_and_point(reference):
    from collabsim.sweeps import format_table

    table = reference.table()
    assert len(table) == 4 and set(table["n"]) == {2}
    text = format_table(reference)
    assert "mandated" in text and "voluntary" in text and "population.proximity_scale_km" in text


def test_time_series_sent_back_when_workers_do_not_share_files(reference, tiny, tmp_path):
    """A remote Dask cluster's workers cannot write into OUT: their time series come back to the caller."""
    from collabsim.executors import SerialExecutor

    exe = SerialExecutor()
    exe.shares_files = False
    result = collabsim.sweep(tiny, executor=exe, out=tmp_path / "out")
    assert_same_numbers(reference.summary, result.summary)
    pd.testing.assert_frame_equal(reference.timeseries(), result.timeseries())


def _fail_run(monkeypatch, key: tuple[int, ...], regime: str) -> None:
    """Make the runs of ``regime`` with ``key`` raise ValueError("boom") in their first month (also when they run
    joined with other replicates)."""
    from collabsim.engine import Engine

    real = Engine.begin_month

    def flaky(self):
        if self.scenario.partnering.regime == regime and self.streams.key == key:
            raise ValueError("boom")
        return real(self)

    monkeypatch.setattr(Engine, "begin_month", flaky)


def test_a_failing_run_is_named_and_finished_runs_are_kept(tiny, tmp_path, monkeypatch):
    from collabsim.sweeps import RunFailed

    with monkeypatch.context() as patch:
        _fail_run(patch, (1,), "mandated")
        with pytest.raises(RunFailed) as exc:
            collabsim.sweep(tiny, executor="serial", out=tmp_path / "out", batch_size=1)
    err = exc.value
    assert (err.run_id, err.arm, err.point, err.replicate) == (3, "mandated", 0, 1)
    assert "ValueError: boom" in str(err) and "Traceback" in err.trace
    assert load_results(tmp_path / "out").summary["run_id"].tolist() == [0, 1, 2]
    assert collabsim.sweep(tiny, executor="serial", out=tmp_path / "out").complete  # resume after the fix


def _count_joined(monkeypatch) -> list[int]:
    """Record the number of runs of every api.simulate_replicates call the sweep makes."""
    from collabsim import api

    real, sizes = api.simulate_replicates, []

    def counted(scenario, seed, keys):
        sizes.append(len(keys))
        return real(scenario, seed, keys)

    monkeypatch.setattr(api, "simulate_replicates", counted)
    return sizes


def test_a_failing_run_among_joined_replicates_is_named(tiny, tmp_path, monkeypatch):
    """Replicates run joined (one kernel call for several runs); when one of them fails, the error still names it."""
    from collabsim.sweeps import RunFailed

    sizes = _count_joined(monkeypatch)
    _fail_run(monkeypatch, (1,), "mandated")
    with pytest.raises(RunFailed) as exc, pytest.warns(UserWarning, match="one by one"):
        collabsim.sweep(tiny, executor="serial", out=tmp_path / "out", batch_size=4)
    assert sizes == [2, 2]  # voluntary replicates 0-1, then mandated 0-1 joined, which failed
    err = exc.value
    assert (err.run_id, err.arm, err.point, err.replicate) == (3, "mandated", 0, 1)
    assert "ValueError: boom" in str(err) and "Traceback" in err.trace


def test_a_joined_group_that_fails_is_run_again_one_by_one(reference, tiny, tmp_path, monkeypatch):
    """A failure of the joining itself (here every joined call) costs speed, not results."""
    from collabsim import api

    real = api.advance_together

    def fails_joined(engines, to):
        if len(engines) > 1:
            raise MemoryError("joined")
        return real(engines, to)

    monkeypatch.setattr(api, "advance_together", fails_joined)
    with pytest.warns(UserWarning, match="one by one"):
        result = collabsim.sweep(tiny, executor="serial", out=tmp_path / "out", batch_size=3)
    assert_same_numbers(reference.summary, result.summary)


def test_replicates_in_several_joined_groups(tiny, tmp_path, monkeypatch):
    """An arm and point's replicates split into joined groups of at most engine.joined_replicates runs: each
    stored run equals simulate with its replicate key."""
    from collabsim import engine

    monkeypatch.setattr(engine, "JOIN_ORGS", 2 * tiny.population.n_orgs)  # two runs a group
    sizes = _count_joined(monkeypatch)
    sc = tiny.with_overrides({"sweep.replications": 5})
    result = collabsim.sweep(sc, executor="serial", out=tmp_path / "out", batch_size=5)
    assert sizes == [2, 2, 1] * 4  # every (arm, point) is one batch of five runs
    plan = SweepPlan(sc)
    for row in result.summary.itertuples():
        direct = simulate(plan.scenario_for(row.arm, row.point), seed=sc.seed, key=(row.replicate,))
        for m in METRICS:
            assert np.array_equal(np.float64(getattr(row, m)), np.float64(direct.summary[m]), equal_nan=True), m


def test_stored_time_series_are_the_runs_own(reference, tiny):
    """The sweep writes Arrow straight from the recorded arrays; it must equal SimulationResult.timeseries."""
    plan = SweepPlan(tiny)
    stored = reference.timeseries(arm="mandated", point=1)
    for replicate in (0, 1):
        own = simulate(plan.scenario_for("mandated", 1), seed=tiny.seed, key=(replicate,)).timeseries
        got = stored[stored["replicate"] == replicate].reset_index(drop=True)
        assert (got["run_id"] == plan.run_id("mandated", 1, replicate)).all()
        pd.testing.assert_frame_equal(got[list(own.columns)], own)
