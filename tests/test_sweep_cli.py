"""`collabsim sweep` on the command line: the happy path, and every refusal with exit status 2 and one clear line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collabsim.cli import main
from collabsim.errors import CollabsimInputError
from collabsim.io import load_results

ROOT = Path(__file__).resolve().parent.parent

GOOD = {
    "name": "cli-tiny",
    "horizon_months": 8,
    "population": {"n_orgs": 5},
    "sweep": {"parameters": {"population.region_km": [20, 200]}, "replications": 2},
    "arms": {"voluntary": {}, "mandated": {"partnering.regime": "mandated", "partnering.group_size": 3}},
}


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("collabsim: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep of GOOD, made by the command line."""
    tmp = tmp_path_factory.mktemp("cli")
    scenario = write(tmp, GOOD)
    out = tmp / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "collabsim", "sweep", str(scenario), "--executor", "serial", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return scenario, out, proc


def test_sweep_command_writes_store_and_prints_table(finished):
    _, out, proc = finished
    assert proc.returncode == 0, proc.stderr
    assert "sweep cli-tiny: 2 design point(s) (grid) x 2 arm(s) x 2 replicate(s) = 8 runs" in proc.stderr
    assert "run/s" in proc.stderr  # the progress bar: runs done, rate, ETA
    table = proc.stdout.splitlines()
    assert table[0].split()[:4] == ["arm", "point", "population.region_km", "n"]
    assert "share_synergy" in table[0] and len([t for t in table if t.startswith(("mandated", "voluntary"))]) == 4
    assert "8 of 8 runs" in proc.stdout
    assert {p.name for p in out.iterdir()} >= {"manifest.json", "summary.parquet", "timeseries"}
    assert len(load_results(out).summary) == 8


def test_rerunning_a_finished_sweep_skips_every_run(finished, capsys):
    scenario, out, _ = finished
    code, out_text, err = run_cli(capsys, "sweep", str(scenario), "--out", str(out), "--resume", "--quiet")
    assert code == 0 and out_text == "" and err == ""
    assert len(load_results(out).summary) == 8


def test_a_changed_scenario_is_refused_in_the_same_out(finished, capsys, tmp_path):
    scenario, out, _ = finished
    before = (out / "manifest.json").read_text()
    code, _, err = run_cli(capsys, "sweep", str(scenario), "--out", str(out), "--set", "horizon_months=9")
    assert code == 2
    line = one_error_line(err)
    assert "holds a sweep of a different scenario" in line and "choose another --out" in line
    changed = write(tmp_path, {**GOOD, "sweep": {**GOOD["sweep"], "replications": 3}})
    code, _, err = run_cli(capsys, "sweep", str(changed), "--out", str(out))
    assert code == 2 and "different scenario" in one_error_line(err)
    assert (out / "manifest.json").read_text() == before  # nothing touched


@pytest.mark.parametrize(
    ("sweep", "fragment"),
    [
        ({"parameters": {"population.n_org": [5, 6]}}, "sweep.parameters.population.n_org: unknown scenario key"),
        ({"parameters": {"population.region_km": []}}, "sweep.parameters.population.region_km.values = []: empty"),
        (
            {"parameters": {"population.region_km": {"low": 50, "high": 50, "num": 3}}},
            "sweep.parameters.population.region_km.high = 50.0: empty range",
        ),
        (
            {"parameters": {"population.region_km": {"low": 500, "high": 50, "num": 3}}},
            "sweep.parameters.population.region_km.low = 500.0: lower end above upper end",
        ),
        ({"replications": 0}, "sweep.replications = 0 is not allowed: an integer from 1 to 1000000"),
        (
            {"parameters": {"population.region_km": [20, 5000]}},
            "sweep.parameters.population.region_km.values[1] = 5000 is not allowed: a number from 1 to 2000",
        ),
        ({"design": "latin", "samples": 4}, "sweep.design"),
    ],
)
def test_bad_sweep_blocks_exit_2_with_one_clear_line(tmp_path, capsys, sweep, fragment):
    bad = write(tmp_path, {**GOOD, "sweep": sweep}, "bad.yaml")
    code, out, err = run_cli(capsys, "sweep", str(bad), "--out", str(tmp_path / "out"))
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert fragment in line, line
    assert "bad.yaml: sweep" in line
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_bad_sweep_block_exit_status_from_a_real_process(tmp_path):
    bad = write(tmp_path, {**GOOD, "sweep": {"replications": 0}}, "bad.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "collabsim", "sweep", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "sweep.replications = 0 is not allowed" in one_error_line(proc.stderr)


def test_bad_set_override_of_the_sweep(tmp_path, capsys):
    good = write(tmp_path, GOOD)
    code, _, err = run_cli(capsys, "sweep", str(good), "--set", "sweep.parameters.population.n_orgs=[1, 5]")
    assert code == 2 and "--set: sweep.parameters.population.n_orgs.values[0] = 1" in one_error_line(err)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--executor", "process", "--scheduler", "tcp://127.0.0.1:1"], "needs --executor dask"),
        (["--executor", "serial", "--workers", "2"], "the serial executor runs one worker"),
        (["--workers", "0"], "an integer >= 1"),
        (["--executor", "threads"], "invalid choice"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, extra, fragment):
    good = write(tmp_path, GOOD)
    code, _, err = run_cli(capsys, "sweep", str(good), "--out", str(tmp_path / "new"), *extra)
    assert code == 2
    assert fragment in err


def test_an_out_holding_something_else_is_refused(tmp_path, capsys):
    good = write(tmp_path, GOOD)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "sweep", str(good), "--out", str(other))
    assert code == 2 and "is not empty and holds no sweep" in one_error_line(err)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    run_out = tmp_path / "run"
    assert main(["run", "--set", "horizon_months=3", "--set", "population.n_orgs=4", "--out", str(run_out)]) == 0
    capsys.readouterr()
    code, _, err = run_cli(capsys, "sweep", str(good), "--out", str(run_out))
    assert code == 2 and "holds the output of `collabsim run`" in one_error_line(err)
    code, _, err = run_cli(capsys, "sweep", str(good), "--out", str(other / "notes.txt"))
    assert code == 2


def test_load_results_of_a_directory_that_is_not_a_sweep(tmp_path):
    with pytest.raises(CollabsimInputError, match="not a collabsim sweep directory"):
        load_results(tmp_path)


def test_shipped_size_proximity_scenario_is_a_grid_with_replications():
    from collabsim import load_scenario
    from collabsim.sweeps import SweepPlan

    sc = load_scenario(ROOT / "scenarios" / "size_proximity.yaml")
    spec = sc.sweep_spec
    assert spec.design == "grid" and spec.replications >= 10
    assert set(spec.parameters) == {"population.size_median_staff", "population.proximity_scale_km"}
    plan = SweepPlan(sc)
    plan.validate()
    assert plan.n_points == 9 and plan.n_runs == 9 * spec.replications
    text = (ROOT / "scenarios" / "size_proximity.yaml").read_text()
    assert text.startswith("# Size and proximity") and "Question:" in text.split("\n\n")[0]
    manifest = json.loads(json.dumps(plan.manifest(4, True)))
    assert manifest["n_runs"] == plan.n_runs


@pytest.mark.slow
def test_readme_commands_give_identical_numbers(tmp_path):
    """The README's two commands: the shipped size-proximity sweep with 2 workers, then with Dask."""
    scenario = str(ROOT / "scenarios" / "size_proximity.yaml")
    runs = {}
    for out, extra in (("out", []), ("out-dask", ["--executor", "dask"])):
        cmd = [sys.executable, "-m", "collabsim", "sweep", scenario, *extra, "--workers", "2", "--out", f"{out}/"]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr
        assert "180 of 180 runs" in proc.stdout and "run/s" in proc.stderr
        runs[out] = load_results(tmp_path / out)
    a, b = runs["out"].summary, runs["out-dask"].summary
    assert a.equals(b)
    assert runs["out"].timeseries(point=4).equals(runs["out-dask"].timeseries(point=4))
