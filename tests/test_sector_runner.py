"""The sequencing-strategy runner: metrics, subsets, and strategies added as data."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import MODELS
from sdloop.errors import OverrideError
from sdloop.experiments.overrides import load_collection
from sdloop.experiments.metrics import METRIC_COLUMNS, breakthrough_year, rank_strategies, sector_metrics
from test_cli import sdloop

EXPECTED_COLUMNS = ("case,strategy,scenario,breakthrough_year,self_sufficiency_2035,global_share_2035,"
                    "peak_shortfall,cumulative_fiscal_cost,cost_per_capability")


def synthetic_run() -> pd.DataFrame:
    time = np.arange(2006, 2035.25, 0.25)
    return pd.DataFrame({
        "Technological Capability": np.linspace(0.2, 1.0, len(time)),
        "Self Sufficiency": np.full(len(time), 0.5),
        "Global Market Share": np.linspace(0, 0.3, len(time)),
        "Supply Shortfall": np.where((time > 2010) & (time < 2012), 0.4, 0.0),
        "Cumulative Fiscal Cost": np.linspace(0, 800, len(time)),
    }, index=pd.Index(time, name="time"))


def test_metrics_of_a_known_trajectory():
    m = sector_metrics(synthetic_run(), threshold=0.6)
    # capability rises linearly 0.2 -> 1.0 over 29 years: reaches 0.6 at 2020.5
    assert m["breakthrough_year"] == 2020.5
    assert m["self_sufficiency_2035"] == 0.5
    assert m["global_share_2035"] == pytest.approx(0.3)
    assert m["peak_shortfall"] == 0.4
    assert m["cumulative_fiscal_cost"] == pytest.approx(800)
    assert m["cost_per_capability"] == pytest.approx(800 / 0.8)


def test_no_breakthrough_and_no_gain():
    run = synthetic_run()
    assert math.isnan(breakthrough_year(run["Technological Capability"], 2.0))
    run["Technological Capability"] = 0.5
    assert math.isnan(sector_metrics(run, threshold=0.6)["cost_per_capability"])


def test_ranks_put_missing_values_last_and_share_ties():
    table = pd.DataFrame({c: [1.0, 1.0, 2.0] for c in METRIC_COLUMNS}, index=["a", "b", "c"])
    table["breakthrough_year"] = [2020.0, math.nan, 2018.0]
    ranks = rank_strategies(table)
    assert list(ranks["breakthrough_year"]) == [2, 3, 1]
    assert list(ranks["peak_shortfall"]) == [1, 1, 3]          # lower is better, tie shares rank 1
    assert list(ranks["global_share_2035"]) == [2, 2, 1]       # higher is better


def test_run_subset_writes_metrics_with_exact_columns(tmp_path):
    result = sdloop("run", "--models", MODELS, "--results", tmp_path, "--cases", "nev",
                    "--strategies", "no_policy,lifecycle_phased", "--scenarios", "baseline",
                    "--loop-scenarios", "baseline")
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


@pytest.mark.parametrize("option, bad, known", [
    ("--strategies", "no_policy,bogus", "lifecycle_phased"),
    ("--scenarios", "nope", "export_controls"),
    ("--cases", "solar", "nev"),
])
def test_unknown_names_fail_with_the_known_ones(tmp_path, option, bad, known):
    result = sdloop("run", "--models", MODELS, "--results", tmp_path, option, bad)
    assert result.returncode == 2
    assert known in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "latest").exists()


def test_a_ninth_strategy_added_in_toml_appears_in_the_next_run(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with open(models / "strategies.toml", "a") as handle:
        handle.write('\n[talent_first]\ndescription = "Talent and platforms only, from 2010"\n'
                     '[talent_first.parameters]\n"Research Start Year" = 2010\n')
    result = sdloop("run", "--models", models, "--results", tmp_path / "results", "--cases", "nev",
                    "--scenarios", "baseline", "--loop-scenarios", "baseline")
    assert result.returncode == 0, result.stderr
    metrics = pd.read_csv(tmp_path / "results" / "latest" / "metrics.csv")
    assert len(metrics) == len(load_collection(MODELS / "strategies.toml")) + 1 and "talent_first" in set(metrics["strategy"])
    assert "talent_first" in result.stdout


def test_a_strategy_naming_an_unknown_lever_fails_before_any_run(tmp_path):
    from sdloop.report.sector_report import load_experiment

    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    with open(models / "strategies.toml", "a") as handle:
        handle.write('\n[typo]\n[typo.parameters]\n"Research Strat Year" = 2010\n')
    experiment = load_experiment(models)
    with pytest.raises(OverrideError) as err:
        experiment.parameters()
    assert "strategies.toml" in str(err.value) and "Research Strat Year" in str(err.value)
    assert "Research Start Year" in str(err.value)


def test_fitted_parameters_are_layered_over_the_case_and_named_in_the_manifest(tmp_path):
    import json

    fitted = tmp_path / "fitted"
    fitted.mkdir()
    (fitted / "nev.toml").write_text('description = "fit"\n[parameters]\n"Breakthrough Threshold" = 0.5\n')
    result = sdloop("run", "--models", MODELS, "--results", tmp_path / "r", "--fitted", fitted, "--cases", "nev",
                    "--strategies", "no_policy", "--scenarios", "baseline", "--loop-scenarios", "baseline")
    assert result.returncode == 0, result.stderr
    assert "Calibrated parameters used for: nev" in result.stdout
    manifest = json.loads((tmp_path / "r" / "latest" / "manifest.json").read_text())
    assert manifest["notes"]["calibrated"] == ["nev"]
    assert manifest["parameters"]["sector/nev/baseline/no_policy"]["Breakthrough Threshold"] == 0.5
    assert "fitted/nev" in manifest["inputs"]
    uncalibrated = sdloop("run", "--models", MODELS, "--results", tmp_path / "u", "--fitted", fitted,
                          "--uncalibrated", "--cases", "nev", "--strategies", "no_policy",
                          "--scenarios", "baseline", "--loop-scenarios", "baseline")
    assert "none (documented priors)" in uncalibrated.stdout
