"""One baseline everywhere: simulate, loops --dominance, run and ensemble layer the same parameters."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from conftest import MODELS, ROOT
from test_cli import sdloop


def test_simulate_uses_the_runs_baseline_and_says_so(tmp_path):
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(MODELS / "policy_loop.project.toml").select(scenarios="baseline"))
    assert "" in study.project.fitted, "the national fit is committed in calibration/fitted/"
    expected = float(study.run(progress=False).metrics.loc[0, "High Tech Share"])
    result = sdloop("simulate", MODELS / "policy_loop.mdl", "--columns", "High Tech Share", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "parameters: model defaults < fitted (" in result.stderr
    assert "calibration/fitted/national.toml)" in result.stderr
    calibrated = pd.read_csv(io.StringIO(result.stdout))["High Tech Share"].iloc[-1]
    assert calibrated == pytest.approx(expected, rel=1e-9)
    priors = sdloop("simulate", MODELS / "policy_loop.mdl", "--columns", "High Tech Share", "--uncalibrated",
                    cwd=ROOT)
    assert "fitted values ignored (--uncalibrated)" in priors.stderr
    assert pd.read_csv(io.StringIO(priors.stdout))["High Tech Share"].iloc[-1] != pytest.approx(calibrated)


def test_simulate_takes_cases_scenarios_and_strategies_of_the_project(tmp_path):
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(MODELS / "sector.project.toml").select(cases="ic", scenarios="export_controls",
                                                                      strategies="lifecycle_phased"))
    metrics = study.run(progress=False).metrics  # also holds the baseline run (diff() metrics) and no_policy
    expected = metrics.set_index(["scenario", "strategy"]).loc[("export_controls", "lifecycle_phased"), "peak_shortfall"]
    result = sdloop("simulate", MODELS / "sector_lifecycle.mdl", "--case", "ic", "--scenario", "export_controls",
                    "--strategy", "lifecycle_phased", "--columns", "Supply Shortfall", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "case ic < fitted (" in result.stderr
    assert "calibration/fitted/ic.toml) < scenario export_controls < strategy lifecycle_phased" in result.stderr
    assert pd.read_csv(io.StringIO(result.stdout))["Supply Shortfall"].max() == pytest.approx(expected, rel=1e-9)
    bad = sdloop("simulate", MODELS / "sector_lifecycle.mdl", "--strategy", "lifecycle", cwd=ROOT)
    assert bad.returncode == 2 and "unknown strategy 'lifecycle'" in bad.stderr and "lifecycle_phased" in bad.stderr


def test_loops_dominance_says_which_parameters_it_ran(tmp_path):
    result = sdloop("loops", MODELS / "policy_loop.mdl", "--dominance", "--format", "json", "--uncalibrated",
                    cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "parameters: model defaults < fitted values ignored (--uncalibrated)" in result.stderr


def test_simulate_lays_a_strategys_per_case_values_as_run_does():
    """A strategy's [NAME.cases.CASE] table applies in simulate as in run (`historical` in IC
    opens Big Fund I in 2014.73; simulate once ran it with no lever open, as no_policy)."""
    from sdloop.experiments.project import load_project

    project = load_project(MODELS / "sector.project.toml")
    own = project.strategies["historical"].cases["ic"]
    result = sdloop("simulate", MODELS / "sector_lifecycle.mdl", "--case", "ic", "--strategy", "historical",
                    "--columns", ",".join(own), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    first = pd.read_csv(io.StringIO(result.stdout)).iloc[0]
    assert {name: first[name] for name in own} == pytest.approx(dict(own))
