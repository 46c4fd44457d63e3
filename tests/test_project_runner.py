"""The project-driven runner: the bundled studies give the numbers of the old definitions,
subsets, entries added as data, names checked before any run, fitted values layered."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from sdloop.errors import SdloopError
from sdloop.experiments.overrides import load_collection
from test_cli import sdloop

SECTOR = MODELS / "sector.project.toml"
POLICY = MODELS / "policy_loop.project.toml"
EXPECTED_COLUMNS = ("case,strategy,scenario,breakthrough_year,self_sufficiency_2035,global_share_2035,"
                    "peak_shortfall,cumulative_fiscal_cost,cost_per_capability,"  # the original columns, then
                    "milestone_year,milestone_reached,shortfall_years,extra_shortfall,extra_shortfall_years")


# The metrics.csv definitions as sdloop computed them before they became data
# (sdloop/metrics.py at commit 9db780e), written out here as the reference; cost per capability
# since issue #12 divides by the capability gained beyond no policy (same case and scenario).
def old_sector_metrics(frame: pd.DataFrame, threshold: float, no_policy: pd.DataFrame,
                       horizon: float = 2035) -> dict[str, float]:
    at = frame.loc[:horizon].iloc[-1]
    capability = frame.loc[:horizon, "Technological Capability"]
    reached = capability[capability >= threshold]
    gained = at["Technological Capability"] - no_policy.loc[:horizon, "Technological Capability"].iloc[-1]
    cost = float(at["Cumulative Fiscal Cost"])
    return {
        "breakthrough_year": float(reached.index[0]) if len(reached) else math.nan,
        "self_sufficiency_2035": float(at["Self Sufficiency"]),
        "global_share_2035": float(at["Global Market Share"]),
        "peak_shortfall": float(frame.loc[:horizon, "Supply Shortfall"].max()),
        "cumulative_fiscal_cost": cost,
        "cost_per_capability": cost / gained if gained > 0 else math.nan,
    }


OLD_SUMMARY = ["Technological Capability", "High Tech Share", "R and D Intensity", "Policy Precision",
               "Performance Gap", "Cumulative Policy Funds"]


def test_sector_metrics_equal_the_old_definitions_on_the_same_runs():
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(SECTOR))
    result = study.run(progress=False)
    assert list(result.metrics.columns) == EXPECTED_COLUMNS.split(",")
    cases = len(study.project.cases)
    strategies = len(study.project.entries("strategy"))
    assert cases >= 3 and len(result.metrics) == len(study.params) == cases * 4 * strategies
    for row in result.metrics.itertuples(index=False):
        key = (row.case, row.scenario, row.strategy)
        value = {**study.sim.defaults, **study.params[key]}.__getitem__
        gap_years = value("Breakthrough Gap Years")  # a breakthrough given in years behind the frontier
        threshold = math.exp(-value("Frontier Growth Rate") * gap_years) if gap_years > 0 else value("Breakthrough Threshold")
        old = old_sector_metrics(result.runs[key], threshold, result.runs[(row.case, row.scenario, "no_policy")])
        for name, value in old.items():
            new = getattr(row, name)
            if math.isnan(value):
                assert not math.isfinite(new), (key, name)  # never / undefined stay empty in metrics.csv
            else:
                assert new == pytest.approx(value, rel=1e-12, abs=1e-12), (key, name)
        frame, base = result.runs[key], result.runs[(row.case, "baseline", row.strategy)]
        shortfall = frame.loc[:2035, "Supply Shortfall"]
        assert row.shortfall_years == pytest.approx(np.trapezoid(shortfall, shortfall.index), rel=1e-9, abs=1e-12)
        extra = shortfall - base.loc[:2035, "Supply Shortfall"]
        assert row.extra_shortfall == pytest.approx(extra.max(), abs=1e-12)
        assert row.extra_shortfall_years == pytest.approx(np.trapezoid(extra, extra.index), abs=1e-9)
        params = study.params[key]
        after = frame.loc[max(2006.25, params.get("Milestone Assessment Start", 0)):2035]
        holds = ((after["Capability Gap Years"] <= params.get("Milestone Gap Years", 1000))
                 & (after["Anchor Unit Cost"] <= params.get("Milestone Unit Cost", 1e9)))
        assert row.milestone_reached == float(holds.any())
        assert (row.milestone_year == holds.index[holds.to_numpy()][0]) if holds.any() else math.isinf(row.milestone_year)


def test_policy_summary_equals_the_old_table_on_the_same_runs():
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(POLICY))
    result = study.run(progress=False)
    assert list(result.metrics.columns) == ["scenario", *OLD_SUMMARY]
    for row in result.metrics.to_dict("records"):
        frame = result.runs[("", row["scenario"], "")]
        old = frame.loc[:study.sim.control["final time"]].iloc[-1][OLD_SUMMARY]
        np.testing.assert_allclose([row[v] for v in OLD_SUMMARY], old.to_numpy(dtype=float), rtol=1e-12)


def test_the_numpy_engine_runs_match_pysd_for_the_study(tmp_path):
    """The study's runs (numpy engine, strategies side by side) agree with PySD run one by one."""
    from sdloop.engines.numpy_engine import compare_frames
    from sdloop.engines.pysd_model import load_model
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study

    study = Study(load_project(SECTOR).select(cases="ic", scenarios="export_controls"))
    assert study.choice.kind in ("compiled", "numpy")  # numpy where no kernel can be compiled
    result = study.run(progress=False)
    model = load_model(study.project.model)
    for key, frame in result.runs.items():
        reference = model.run(study.params[key], columns=list(frame.columns))
        assert compare_frames(frame, reference) < 1e-9, key


def test_run_subset_writes_metrics_with_exact_columns(tmp_path):
    result = sdloop("run", SECTOR, "--results", tmp_path, "--cases", "nev",
                    "--strategies", "no_policy,lifecycle_phased", "--scenarios", "baseline", "--no-ensemble")
    assert result.returncode == 0, result.stderr
    latest = tmp_path / "latest"
    assert (latest / "metrics.csv").read_text().splitlines()[0] == EXPECTED_COLUMNS
    metrics = pd.read_csv(latest / "metrics.csv")
    assert list(metrics["strategy"]) == ["no_policy", "lifecycle_phased"]
    assert set(metrics["case"]) == {"nev"} and set(metrics["scenario"]) == {"baseline"}
    assert ((metrics["self_sufficiency_2035"] >= 0) & (metrics["self_sufficiency_2035"] <= 1)).all()
    for name in ("nev_baseline_strategies.png", "nev_baseline_strategies.pdf", "nev_ranking.png"):
        assert (latest / "sector" / "figures" / name).exists()
    trajectories = pd.read_csv(latest / "sector" / "trajectories.csv", nrows=5)
    assert list(trajectories.columns[:4]) == ["case", "scenario", "strategy", "time"]
    claims = pd.read_csv(latest / "claims.csv")
    assert list(claims.columns) == ["claim", "holds", "text", "values"]
    # claims about runs not made (other cases, strategies) are listed as not evaluated, not as false
    assert claims["holds"].isna().all() and claims["values"].str.startswith("not evaluated").all()
    assert re.search(r"engine: (compiled C engine|vectorized numpy engine)", result.stdout)
    assert "parameters: model defaults < case < fitted" in result.stdout


@pytest.mark.parametrize("option, bad, known", [
    ("--strategies", "no_policy,bogus", "lifecycle_phased"),
    ("--scenarios", "nope", "export_controls"),
    ("--cases", "solar", "nev"),
])
def test_unknown_names_fail_with_the_known_ones(tmp_path, option, bad, known):
    result = sdloop("run", SECTOR, "--results", tmp_path, option, bad)
    assert result.returncode == 2
    assert known in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "latest").exists()


def copy_models(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(MODELS.parent / "calibration" / "fitted", tmp_path / "calibration" / "fitted")
    return models


def test_a_ninth_strategy_added_in_toml_appears_in_the_next_run(tmp_path):
    models = copy_models(tmp_path)
    with open(models / "strategies.toml", "a") as handle:
        handle.write('\n[talent_first]\ndescription = "Talent and platforms only, from 2010"\n'
                     '[talent_first.parameters]\n"Research Start Year" = 2010\n')
    result = sdloop("run", models / "sector.project.toml", "--results", tmp_path / "results", "--cases", "nev",
                    "--scenarios", "baseline", "--no-ensemble", "--only", "metrics")
    assert result.returncode == 0, result.stderr
    metrics = pd.read_csv(tmp_path / "results" / "latest" / "metrics.csv")
    known = len(load_collection(MODELS / "strategies.toml"))
    assert len(metrics) == known + 1 and "talent_first" in set(metrics["strategy"])
    assert "talent_first" in result.stdout


def test_a_strategy_naming_an_unknown_lever_fails_before_any_run(tmp_path):
    models = copy_models(tmp_path)
    with open(models / "strategies.toml", "a") as handle:
        handle.write('\n[typo]\n[typo.parameters]\n"Research Strat Year" = 2010\n')
    result = sdloop("run", models / "sector.project.toml", "--results", tmp_path / "results")
    assert result.returncode == 2
    line = (models / "strategies.toml").read_text().splitlines().index('"Research Strat Year" = 2010') + 1
    assert f"strategies.toml:{line}: Research Strat Year:" in result.stderr
    assert "did you mean 'Research Start Year'" in result.stderr
    assert not (tmp_path / "results" / "latest").exists()


def test_fitted_parameters_are_layered_over_the_case_and_named_in_the_manifest(tmp_path):
    models = copy_models(tmp_path)
    fitted = tmp_path / "calibration" / "fitted"
    (fitted / "nev.toml").write_text('description = "fit"\n[parameters]\n"Breakthrough Threshold" = 0.5\n')
    args = ("--cases", "nev", "--strategies", "no_policy", "--scenarios", "baseline", "--only", "metrics")
    result = sdloop("run", models / "sector.project.toml", "--results", tmp_path / "r", *args)
    assert result.returncode == 0, result.stderr
    assert "Calibrated parameters used for: nev" in result.stdout
    manifest = json.loads((tmp_path / "r" / "latest" / "manifest.json").read_text())
    assert manifest["notes"]["calibrated"] == ["nev"]
    assert manifest["parameters"]["sector/nev/baseline/no_policy"]["Breakthrough Threshold"] == 0.5
    assert "sector/fitted/nev" in manifest["inputs"]
    uncalibrated = sdloop("run", models / "sector.project.toml", "--results", tmp_path / "u", "--uncalibrated",
                          *args)
    assert "none (documented priors)" in uncalibrated.stdout
    assert "fitted values ignored (--uncalibrated)" in uncalibrated.stdout


def test_two_projects_writing_the_same_file_are_refused(tmp_path):
    models = copy_models(tmp_path)
    (models / "copy.project.toml").write_text((models / "sector.project.toml").read_text())
    result = sdloop("run", "--models", models, "--results", tmp_path / "r")
    assert result.returncode == 2 and "both write" in result.stderr


def test_project_errors_are_sdloop_errors():
    from sdloop.experiments.project import load_project

    with pytest.raises(SdloopError, match="no such project file"):
        load_project(MODELS / "nope.project.toml")
