"""Resume: a sweep killed (SIGKILL) or interrupted (Ctrl-C) part-way, then resumed, equals an uninterrupted one; the
store never holds a corrupt file and survives a merge cut short."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import collabsim
from collabsim import load_results
from collabsim.io import SweepStore

SCENARIO = {
    "name": "resumable",
    "horizon_months": 18,
    "population": {"n_orgs": 8},
    "sweep": {"parameters": {"population.size_median_staff": [300, 3000]}, "replications": 20},
    "arms": {"voluntary": {}, "mandated": {"partnering.regime": "mandated", "partnering.group_size": 4}},
}
BATCH = 2  # 80 runs in 40 batches


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "resumable.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


@pytest.fixture(scope="module")
def uninterrupted(scenario_file, tmp_path_factory):
    return collabsim.sweep(scenario_file, executor="serial", out=tmp_path_factory.mktemp("ref") / "out")


def start_sweep(scenario_file: Path, out: Path, executor: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "collabsim", "sweep", str(scenario_file), "--out", str(out), "--quiet"]
    cmd += ["--executor", executor, "--batch-size", str(BATCH)]
    if executor == "process":
        cmd += ["--workers", "2"]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_batches(out: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((out / "_pending").glob("summary-*.parquet"))) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before it could be stopped: {proc.communicate()}")
        time.sleep(0.01)
    pytest.fail("the sweep made no progress")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the workers and forkserver it started, if still alive


def assert_no_corrupt_file(out: Path) -> None:
    json.loads((out / "manifest.json").read_text())
    for p in out.rglob("*.parquet"):
        if not p.name.startswith("."):
            pq.read_table(p)  # raises on a truncated or corrupt file


def assert_same_results(a, b) -> None:
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    for arm in ("voluntary", "mandated"):
        pd.testing.assert_frame_equal(a.timeseries(arm=arm), b.timeseries(arm=arm), check_exact=True)


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_killed_sweep_resumes_to_the_same_results(scenario_file, uninterrupted, tmp_path, executor):
    out = tmp_path / "out"
    proc = start_sweep(scenario_file, out, executor)
    try:
        wait_for_batches(out, 3, proc)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 the sweep itself, mid-run
        proc.wait(timeout=30)
        if executor == "process":  # the workers (and the forkserver) notice and leave by themselves
            deadline = time.monotonic() + 20
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not group_alive(proc.pid), "worker processes outlived the killed sweep"
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert_no_corrupt_file(out)
    partial = load_results(out)  # a killed sweep can be read: its finished runs
    assert 0 < len(partial.summary) < partial.n_runs
    assert partial.summary["run_id"].is_unique
    resumed = collabsim.sweep(scenario_file, executor="serial", out=out)
    assert resumed.complete
    assert_same_results(resumed, uninterrupted)
    assert [s["runs_before"] for s in resumed.manifest["sessions"]] == [0, len(partial.summary)]
    assert not list(out.rglob(".*.tmp-*"))


def test_ctrl_c_stops_cleanly_and_resumes(scenario_file, uninterrupted, tmp_path):
    out = tmp_path / "out"
    proc = start_sweep(scenario_file, out, "process")
    try:
        wait_for_batches(out, 2, proc)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    assert not list((out / "_pending").glob("*.parquet"))  # finished batches were merged on the way out
    done = len(load_results(out).summary)
    assert 0 < done < 80
    cmd = [sys.executable, "-m", "collabsim", "sweep", str(scenario_file), "--out", str(out), "--resume"]
    finished = subprocess.run([*cmd, "--executor", "serial"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"resuming: {done} of 80 runs already done" in finished.stderr
    assert "80 of 80 runs" in finished.stdout
    assert_same_results(load_results(out), uninterrupted)


def test_merge_cut_short_and_leftover_temporaries(scenario_file, uninterrupted, tmp_path):
    out = tmp_path / "out"
    done = collabsim.sweep(scenario_file, executor="serial", out=out, batch_size=BATCH)
    store = SweepStore(out)
    store.manifest = done.manifest
    # killed after summary.parquet was replaced but before the merged part was deleted: the part is back
    batch = 7
    part = pq.read_table(out / "summary.parquet").filter(
        pq.read_table(out / "summary.parquet").column("run_id").to_numpy() // BATCH == batch
    )
    (out / "_pending").mkdir()
    pq.write_table(part, store.part_path(batch))
    # and temporaries of writes cut short, and a corrupt part (never renamed into place in reality)
    (out / ".summary.parquet.tmp-123-abcd1234").write_bytes(b"PAR1 garbage")
    ts_dir = out / "timeseries" / "arm=voluntary" / "point=0"
    (ts_dir / ".batch-000003.parquet.tmp-99-0badf00d").write_bytes(b"garbage")
    pd.DataFrame({"x": [1]}).to_parquet(out / "_pending" / "summary-000999.parquet")
    (out / "_pending" / "summary-000998.parquet").write_bytes(b"PAR1 truncated")
    loaded = load_results(out)
    assert loaded.summary["run_id"].is_unique and len(loaded.summary) == 80
    again = collabsim.sweep(scenario_file, executor="serial", out=out)
    assert_same_results(again, uninterrupted)
    assert not list(out.rglob(".*.tmp-*"))
    assert pq.read_metadata(out / "summary.parquet").num_rows == 80


def test_an_orphan_time_series_file_is_not_a_result(scenario_file, tmp_path):
    out = tmp_path / "out"
    done = collabsim.sweep(scenario_file, executor="serial", out=out, batch_size=40)  # batches 0 and 1
    ts = done.timeseries(arm="voluntary", point=0)
    orphan = out / "timeseries" / "arm=voluntary" / "point=0" / "batch-000005.parquet"
    ts.drop(columns=["arm", "point"]).to_parquet(orphan)  # as if batch 5 had been killed before its commit
    assert load_results(out).timeseries(arm="voluntary", point=0).equals(ts)
