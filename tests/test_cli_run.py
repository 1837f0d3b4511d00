"""The happy paths of the command line: run (built-in baseline and a file with --out) and rules."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from collabsim.cli import main
from collabsim.recorder import METRIC_DESCRIPTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_run_builtin_baseline_prints_every_metric(capsys):
    assert main(["run", "--set", "horizon_months=12"]) == 0
    out = capsys.readouterr().out
    assert "scenario baseline" in out
    for metric in METRIC_DESCRIPTIONS:
        assert metric in out


def test_run_with_out_writes_the_four_files(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "collabsim",
        "run",
        str(ROOT / "scenarios" / "mandated.yaml"),
        "--out",
        str(out),
        "--seed",
        "5",
        "--set",
        "horizon_months=12",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "organisations.parquet",
        "summary.json",
        "timeseries.parquet",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == set(METRIC_DESCRIPTIONS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and len(manifest["scenario_hash"]) == 64
    assert manifest["scenario"]["partnering"]["regime"] == "mandated"
    assert {"collabsim", "numpy", "numba", "mesa", "python"} <= set(manifest["versions"])
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert ts["month"].max() == 12 and ts["mandated"].all()
    orgs = pd.read_parquet(out / "organisations.parquet")
    assert len(orgs) == manifest["scenario"]["population"]["n_orgs"]


def test_rules_json_lists_every_box1_and_box2_cmoc(capsys):
    assert main(["rules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {r["cmoc"] for r in rows}
    catalogue = yaml.safe_load((ROOT / "theory" / "cmoc_catalogue.yaml").read_text())["cmocs"]
    boxes = {c["id"] for c in catalogue if c["subgroup"].startswith(("Box 1", "Box 2"))}
    assert len(boxes) == 39 + 17
    assert boxes <= listed
    assert all({"id", "source", "context", "mechanism", "sign", "weight"} <= r.keys() for r in rows)


def test_rules_dot_draws_signed_edges(capsys):
    assert main(["rules", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph collabsim {") and dot.rstrip().endswith("}")
    conflict_trust = [line for line in dot.splitlines() if line.strip().startswith('"conflict" -> "trust"')]
    red = [line for line in conflict_trust if "firebrick" in line]
    assert len(red) == 1 and "fn-significant-conflict-trust" in red[0]  # conflict lowers trust (Box 1)
    # constructive resolution offsets part of the harm: the moderator row draws a green conflict -> trust edge
    assert any("fn-constructive-resolution-trust" in line and "darkgreen" in line for line in conflict_trust)
