"""The command line as a user types it: simulate, run, and every bad-input case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURES, MODELS, ROOT

GOOD = FIXTURES / "core" / "goal_lookup.mdl"


def sdloop(*args, cwd=None):
    """Run the installed CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "sdloop.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


# simulate ---------------------------------------------------------------------------------

def test_simulate_writes_time_and_every_variable_under_its_vensim_name(tmp_path):
    out = tmp_path / "run.csv"
    result = sdloop("simulate", MODELS / "policy_loop.mdl", "--out", out)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert frame.columns[0] == "time"
    assert {"Technological Capability", "Supply Side Instruments", "Policy Funds"} <= set(frame.columns)
    assert frame["time"].iloc[0] == 2006 and frame["time"].iloc[-1] == 2035


def test_simulate_columns_final_time_set_and_case(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text('description = "test"\n[parameters]\n"Policy Fund Multiplier" = 3\n')
    out = tmp_path / "run.csv"
    result = sdloop("simulate", MODELS / "policy_loop.mdl", "--case", case, "--set", "Gap Sensitivity=0",
                    "--final-time", 2020, "--columns", "Policy Funds,Policy Effort", "--out", out)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "Policy Funds", "Policy Effort"]
    assert frame["time"].iloc[-1] == 2020
    assert (frame["Policy Effort"] == 1).all()  # gap sensitivity 0: effort never moves


def test_later_case_files_override_earlier_ones(tmp_path):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text('[parameters]\n"Capacity" = 30\n')
    second.write_text('[parameters]\n"Capacity" = 300\n')
    out_ab, out_b = tmp_path / "ab.csv", tmp_path / "b.csv"
    assert sdloop("simulate", GOOD, "--case", first, "--case", second, "--out", out_ab).returncode == 0
    assert sdloop("simulate", GOOD, "--case", second, "--out", out_b).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(out_ab), pd.read_csv(out_b))


def test_simulate_to_stdout():
    result = sdloop("simulate", GOOD, "--columns", "Stock", "--final-time", 2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "time,Stock"


# run ---------------------------------------------------------------------------------------

SMALL_RUN = ("--scenarios", "baseline,doubled_funds", "--no-ensemble")
PROJECTS = (MODELS / "policy_loop.project.toml",)


def test_run_writes_a_complete_run_directory_and_never_overwrites(tmp_path):
    first = sdloop("run", *PROJECTS, "--results", tmp_path / "results", *SMALL_RUN)
    assert first.returncode == 0, first.stderr
    assert "Technological Capability" in first.stdout  # the summary table
    latest = (tmp_path / "results" / "latest").resolve()
    expected = {"manifest.json", "policy_loop/trajectories.csv", "policy_loop/summary.csv",
                "policy_loop/key_stocks_baseline.pdf", "policy_loop/key_stocks_baseline.png",
                "policy_loop/scenario_comparison.pdf", "policy_loop/scenario_comparison.png"}
    written = {str(p.relative_to(latest)) for p in latest.rglob("*") if p.is_file()}
    assert expected <= written
    manifest = json.loads((latest / "manifest.json").read_text())
    assert {"sdloop", "pysd", "python"} <= set(manifest["versions"])
    assert manifest["models"]["policy_loop"]["sha256"]
    assert manifest["parameters"]["policy_loop/doubled_funds"]["Policy Fund Multiplier"] == 2.0
    before = {p: p.stat().st_mtime_ns for p in latest.rglob("*")}

    second = sdloop("run", *PROJECTS, "--results", tmp_path / "results", *SMALL_RUN)
    assert second.returncode == 0, second.stderr
    assert "reused 2 of 2 runs from the cache; figures: 3 reused, 0 drawn" in second.stdout
    new_latest = (tmp_path / "results" / "latest").resolve()
    assert new_latest != latest
    assert {p: p.stat().st_mtime_ns for p in latest.rglob("*")} == before
    runs = [p for p in (tmp_path / "results").iterdir() if not p.name.startswith(".") and p.name != "latest"]
    assert len(runs) == 2


def test_run_subset_and_unknown_scenario(tmp_path):
    ok = sdloop("run", *PROJECTS, "--results", tmp_path, "--scenarios", "baseline,doubled_funds", "--only", "metrics")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "latest" / "policy_loop" / "summary.csv").read_text().count("\n") == 3
    assert not list((tmp_path / "latest").rglob("*.png"))  # --only metrics: no figures
    bad = sdloop("run", *PROJECTS, "--results", tmp_path / "r2", "--scenarios", "baseline,nope")
    assert bad.returncode == 2
    assert "'nope'" in bad.stderr and "doubled_funds" in bad.stderr
    assert not (tmp_path / "r2" / "latest").exists()


# bad input ---------------------------------------------------------------------------------

def broken_model(tmp_path: Path, old: str, new: str) -> Path:
    text = GOOD.read_text()
    assert old in text
    path = tmp_path / "broken.mdl"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, line, variable, words", [
    ("Stock / Lifetime", "Stock / * Lifetime", 18, "Outflow", "cannot parse"),
    ("Stock / Lifetime", "Stock / Lifetme", 18, "Outflow", "undefined name 'Lifetme'"),
    ("Stock / Lifetime", "SMOOTHIE(Stock, Lifetime)", 18, "Outflow", "unknown function 'SMOOTHIE'"),
    ("Assumed for the test.\n\t|\n\nLifetime", "Assumed for the test.\n\nLifetime", 23, "Growth Rate",
     "not terminated by '|'"),
])
def test_bad_model_file(tmp_path, old, new, line, variable, words):
    path = broken_model(tmp_path, old, new)
    out = tmp_path / "out.csv"
    result = sdloop("simulate", path, "--out", out)
    assert result.returncode == 2
    assert f"{path}:{line}: {variable}: " in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["broken.mdl"]  # nothing written beside it


@pytest.mark.parametrize("body, line, variable, words", [
    ('description = "x"\n[parameters]\n"Capacty" = 3\n', 3, "Capacty", "did you mean 'Capacity'"),
    ('[parameters]\n"Capacity" = 3\n"Lifetime" = "ten"\n', 3, "Lifetime", "not a number"),
    ('[parameters]\n"Capacity" = \n', 2, None, "malformed TOML"),
    ('[parameters]\n"Outflow" = 2\n', 2, "Outflow", "not a constant"),
])
def test_bad_case_file(tmp_path, body, line, variable, words):
    case = tmp_path / "case.toml"
    case.write_text(body)
    out = tmp_path / "out.csv"
    result = sdloop("simulate", GOOD, "--case", case, "--out", out)
    assert result.returncode == 2
    prefix = f"{case}:{line}: " + (f"{variable}: " if variable else "")
    assert prefix in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_bad_set_value_and_missing_model(tmp_path):
    bad = sdloop("simulate", GOOD, "--set", "Capacity=lots")
    assert bad.returncode == 2 and "Capacity: value 'lots' is not a number" in bad.stderr
    missing = sdloop("simulate", tmp_path / "nope.mdl")
    assert missing.returncode == 2 and "nope.mdl: no such model file" in missing.stderr


def test_debug_shows_the_traceback(tmp_path):
    path = broken_model(tmp_path, "Stock / Lifetime", "Stock / Lifetme")
    result = sdloop("simulate", path, "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_failed_write_keeps_the_earlier_result(tmp_path):
    out = tmp_path / "run.csv"
    assert sdloop("simulate", GOOD, "--out", out).returncode == 0
    earlier = out.read_text()
    result = sdloop("simulate", GOOD, "--set", "Capacty=3", "--out", out)
    assert result.returncode == 2
    assert out.read_text() == earlier


@pytest.mark.slow
def test_full_default_run(tmp_path):
    """What `make run` does: both models, every case, strategy and scenario."""
    result = sdloop("run", "--results", tmp_path, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    metrics = pd.read_csv(tmp_path / "latest" / "metrics.csv")
    strategies = len(__import__("tomllib").loads((MODELS / "strategies.toml").read_text()))
    scenarios = len(__import__("tomllib").loads((MODELS / "scenarios.toml").read_text()))
    cases = len(__import__("tomllib").loads((MODELS / "sector.project.toml").read_text())["cases"])
    assert len(metrics) == cases * strategies * scenarios
    assert len(list((tmp_path / "latest" / "sector" / "figures").glob("*.png"))) == cases * (scenarios + 1)
    claims = pd.read_csv(tmp_path / "latest" / "ensemble" / "claims.csv")
    assert claims["share_of_draws"].between(0, 1).all()
