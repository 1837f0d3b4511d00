"""Bad input on the command line: one line on stderr naming file, key, value and what is allowed; exit status 2."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collabsim import cli

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("collabsim: error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


# ---- scenario files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("run",), ("scenario", "check")])
def test_unknown_key_suggests(tmp_path, capsys, command):
    path = write(tmp_path, "typo.yaml", "population:\n  n_org: 40\n")
    code, out, err = run_cli(capsys, *command, str(path))
    assert code == 2 and out == ""
    assert_one_line_error(err, "typo.yaml", "population.n_org", "40", "unknown key", "did you mean population.n_orgs?")


def test_wrong_type(tmp_path, capsys):
    path = write(tmp_path, "type.yaml", 'population:\n  n_orgs: "forty"\n')
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert_one_line_error(err, "type.yaml", "population.n_orgs", '"forty"', "an integer from 2 to 1000000")


def test_bool_is_not_a_number(tmp_path, capsys):
    path = write(tmp_path, "bool.yaml", "partnering:\n  ambition: yes\n")
    code, _, err = run_cli(capsys, "scenario", "check", str(path))
    assert code == 2
    assert_one_line_error(err, "bool.yaml", "partnering.ambition", "true", "a number from 0 to 1")


def test_out_of_range(tmp_path, capsys):
    path = write(tmp_path, "range.yaml", "population:\n  n_orgs: -3\n")
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    line = assert_one_line_error(err, "range.yaml", "population.n_orgs", "-3", "an integer from 2 to 1000000")
    assert line.endswith("range.yaml: population.n_orgs = -3 is not allowed: an integer from 2 to 1000000")


def test_bad_choice(tmp_path, capsys):
    path = write(tmp_path, "choice.yaml", "partnering:\n  type: federaton\n")
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert_one_line_error(err, "choice.yaml", "partnering.type", '"federaton"', "one of:", "did you mean federation?")


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nowhere.yaml"
    code, _, err = run_cli(capsys, "run", str(missing))
    assert code == 2
    assert_one_line_error(err, "nowhere.yaml", "file not found")


def test_unreadable_file(tmp_path, capsys):
    path = write(tmp_path, "locked.yaml", "name: locked\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read any file (root)")
        code, _, err = run_cli(capsys, "run", str(path))
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert code == 2
    assert_one_line_error(err, "locked.yaml", "permission denied")


def test_unreadable_file_simulated(tmp_path, capsys, monkeypatch):
    """The same path as chmod 000, exercised even when the tests run as root."""
    path = write(tmp_path, "locked.yaml", "name: locked\n")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    code, _, err = run_cli(capsys, "scenario", "check", str(path))
    assert code == 2
    assert_one_line_error(err, "locked.yaml", "permission denied")


def test_directory_instead_of_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, str(tmp_path.name), "directory")


def test_malformed_yaml(tmp_path, capsys):
    path = write(tmp_path, "broken.yaml", "population:\n  n_orgs: [1, 2\nname: x\n")
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert_one_line_error(err, "broken.yaml", "malformed YAML at line", "column")


def test_top_level_not_a_mapping(tmp_path, capsys):
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    code, _, err = run_cli(capsys, "scenario", "check", str(path))
    assert code == 2
    assert_one_line_error(err, "list.yaml", "mapping")


def test_schedule_month_beyond_horizon(tmp_path, capsys):
    path = write(
        tmp_path,
        "late.yaml",
        """
        horizon_months: 24
        events:
          schedule:
            - {type: mandate, month: 36}
        """,
    )
    code, _, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert_one_line_error(err, "late.yaml", "events.schedule[0].month", "36", "an integer from 0 to 23", "horizon")


def test_extends_cycle(tmp_path, capsys):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    code, _, err = run_cli(capsys, "scenario", "check", str(tmp_path / "a.yaml"))
    assert code == 2
    assert_one_line_error(err, "a.yaml", "extends", "cycle")


def test_bad_value_in_parent_names_the_parent(tmp_path, capsys):
    write(tmp_path, "parent.yaml", "partnering:\n  group_size: 99\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: child\n")
    code, _, err = run_cli(capsys, "run", str(child))
    assert code == 2
    assert_one_line_error(err, "parent.yaml", "partnering.group_size", "99", "an integer from 2 to 50")


# ---- --set -------------------------------------------------------------------------------------------------------


def test_bad_set_key(capsys):
    code, _, err = run_cli(capsys, "run", "--set", "population.n_org=40")
    assert code == 2
    assert_one_line_error(err, "--set", "population.n_org", "40", "unknown key", "did you mean population.n_orgs?")


def test_bad_set_value(capsys):
    code, _, err = run_cli(capsys, "run", "mandated", "--set", "partnering.group_size=1")
    assert code == 2
    assert_one_line_error(err, "--set", "partnering.group_size", "= 1 ", "an integer from 2 to 50")


def test_bad_set_type(capsys):
    code, _, err = run_cli(capsys, "scenario", "check", "baseline", "--set", "partnering.ambition=high")
    assert code == 2
    assert_one_line_error(err, "--set", "partnering.ambition", '"high"', "a number from 0 to 1")


@pytest.mark.parametrize("option", ["population.n_orgs", "=40", "population..n_orgs=3", "interventions=[{type: mou"])
def test_malformed_set_option(capsys, option):
    code, _, err = run_cli(capsys, "run", "--set", option)
    assert code == 2
    assert_one_line_error(err, "--set")


def test_set_schedule_month_beyond_horizon(capsys):
    code, _, err = run_cli(capsys, "run", "mandate_midway", "--set", "horizon_months=30")
    assert code == 2
    assert_one_line_error(err, "--set", "events.schedule[0].month", "36", "an integer from 0 to 29")


def test_unknown_builtin_scenario(capsys):
    code, _, err = run_cli(capsys, "run", "mandatd")
    assert code == 2
    assert_one_line_error(err, "mandatd", "file not found", "did you mean mandated?")


# ---- options, argparse, interruption -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "--seed", "-1"),
        ("run", "--seed", "ten"),
        ("frobnicate",),
        (),
        ("scenario",),
        ("scenario", "describe", "--format", "html"),
        ("rules", "--format", "xml"),
    ],
)
def test_argparse_errors_exit_2(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err and "error:" in err


def test_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    code, _, err = run_cli(capsys, "run", "--out", str(target))
    assert code == 2
    assert_one_line_error(err, "--out", "taken", "not a directory")


def test_keyboard_interrupt_exits_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_scenario", interrupted)
    code, _, err = run_cli(capsys, "scenario", "check", "baseline")
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err


def test_help_and_version_exit_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0


def test_scenario_check_describe_show_ok(capsys):
    code, out, err = run_cli(capsys, "scenario", "check", "mandated", "--set", "population.n_orgs=30")
    assert code == 0 and err == "" and "OK" in out
    code, out, _ = run_cli(capsys, "scenario", "describe", "--format", "markdown")
    assert code == 0 and "| `population.n_orgs` |" in out
    code, out, _ = run_cli(capsys, "scenario", "describe")
    assert code == 0 and "population.n_orgs" in out
    code, out, _ = run_cli(capsys, "scenario", "show", "mandate_midway")
    assert code == 0 and "month: 36" in out


# ---- a real process: python -m collabsim ----------------------------------------------------------------------------


def _subprocess(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env.pop("COLLABSIM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "collabsim", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_subprocess_out_of_range(tmp_path):
    write(tmp_path, "bad.yaml", "population:\n  n_orgs: -3\n")
    proc = _subprocess("run", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        "collabsim: error: bad.yaml: population.n_orgs = -3 is not allowed: an integer from 2 to 1000000"
    )


def test_subprocess_bad_set_key_and_malformed_yaml(tmp_path):
    proc = _subprocess("run", "--set", "partnering.typ=ics", cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "--set", "partnering.typ", "did you mean partnering.type?")
    write(tmp_path, "broken.yaml", "a: [\n")
    proc = _subprocess("scenario", "check", "broken.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "broken.yaml", "malformed YAML")


# ---- --out is written atomically: a failure leaves nothing behind -------------------------------------------------


class _FakeResult:
    def __init__(self, fail: BaseException | None):
        import pandas as pd

        self.summary = {"metric": 1.0}
        self.timeseries = pd.DataFrame({"month": [0, 1]})
        self.organisations = pd.DataFrame({"organisation": [0, 1]})
        self.manifest = {"seed": 1}
        if fail is not None:

            def boom(*args, **kwargs):
                raise fail

            self.organisations.to_parquet = boom  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("fail", "status"), [(OSError(28, "No space left on device"), 2), (RuntimeError("bug"), 1)], ids=["oserror", "bug"]
)
def test_failed_write_leaves_nothing(tmp_path, capsys, monkeypatch, fail, status):
    seen = {}

    def fake_simulate(scenario, seed):
        seen["seed"] = seed
        return _FakeResult(fail)

    monkeypatch.setattr("collabsim.api.simulate", fake_simulate)
    out = tmp_path / "results"
    code, _, err = run_cli(capsys, "run", "--seed", "7", "--out", str(out), "--quiet")
    assert code == status and seen["seed"] == 7
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # neither the directory nor a temporary one
