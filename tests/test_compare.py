"""`sdloop compare`: the run directory keeps its inputs; two runs compared file by file, parameter by
parameter, metric by metric; LaTeX tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sdloop.report.output import file_sha256
from sdloop.report.tables import booktabs
from test_cli import sdloop
from test_project_runner import copy_models

SUBSET = ("--cases", "nev", "--scenarios", "baseline", "--strategies", "no_policy,lifecycle_phased",
          "--no-ensemble", "--only", "metrics")


def test_booktabs_escapes_aligns_and_marks_missing_and_never():
    frame = pd.DataFrame({"strategy": ["no_policy", "R&D 50%"], "year": [2023.5, math.inf],
                          "cost": [np.nan, 1234.5678]})
    tex = booktabs(frame, formats={"cost": ",.1f"}, caption="Cost & year", label="tab:x")
    lines = tex.splitlines()
    assert lines[lines.index(r"\toprule") + 1] == r"strategy & year & cost \\"
    assert r"\begin{tabular}{lrr}" in lines and r"\midrule" in lines and r"\bottomrule" in lines
    assert r"no\_policy & 2023.5 & -- \\" in lines
    assert r"R\&D 50\% & never & 1,234.6 \\" in lines
    assert r"\caption{Cost \& year}" in lines


def test_a_negative_number_that_prints_as_zero_prints_without_its_sign():
    from sdloop.report.figure_kinds import format_cell
    from sdloop.report.tables import format_number

    assert format_number(-0.001, ".2f") == "0.00" and format_cell(-0.004, ".2f") == "0.00"
    assert format_number(-0.0, ".3g") == "0" and format_number(-1e-9, ".1e") == "-1.0e-09"
    assert format_number(-0.01, ".2f") == "-0.01" and format_number(-0.4, ".0f") == "0"
    assert format_number(-1234.5, ",.1f") == "-1,234.5"
    tex = booktabs(pd.DataFrame({"change": [-0.0001, -0.02]}), formats={"change": ".2f"})
    assert r"0.00 \\" in tex.splitlines() and r"-0.02 \\" in tex.splitlines()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run A, then run B after one fitted value of the nev case changed (0.8 times its value)."""
    tmp = tmp_path_factory.mktemp("compare")
    models = copy_models(tmp)
    a = sdloop("run", models / "sector.project.toml", "--results", tmp / "a", *SUBSET)
    assert a.returncode == 0, a.stderr
    fitted = tmp / "calibration" / "fitted" / "nev.toml"
    text = fitted.read_text()
    found = re.search(r'^"([^"]+)" = ([-+0-9.eE]+)', text, re.M)
    name, value = found.group(1), float(found.group(2))
    fitted.write_text(text[:found.start(2)] + repr(0.8 * value) + text[found.end(2):])
    b = sdloop("run", models / "sector.project.toml", "--results", tmp / "b", *SUBSET)
    assert b.returncode == 0, b.stderr
    return tmp, (tmp / "a" / "latest").resolve(), (tmp / "b" / "latest").resolve(), name, value


def test_a_run_directory_keeps_a_copy_of_every_model_and_input_file(two_runs):
    _, a, _, _, _ = two_runs
    manifest = json.loads((a / "manifest.json").read_text())
    copies = manifest["copies"]
    recorded = {**{f"{k}/model": v for k, v in manifest["models"].items()}, **manifest["inputs"]}
    assert {"sector/model", "sector/project", "sector/fitted/nev", "sector/case/nev"} <= set(copies)
    for name, where in copies.items():
        assert (a / where).is_file() and (a / where).resolve().is_relative_to(a / "inputs")
        assert file_sha256(a / where) == recorded[name]["sha256"], name


def test_the_manifest_names_the_commit_of_the_sdloop_code_that_ran(two_runs):
    """The run's models are copied outside any repository; sdloop's own checkout is one."""
    import subprocess

    import sdloop as package

    tmp, a, _, _, _ = two_runs
    manifest = json.loads((a / "manifest.json").read_text())
    source = Path(package.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("sdloop is not installed from a git checkout")
    assert manifest["sdloop_git_commit"].removesuffix("-dirty") == head.stdout.strip()
    assert sdloop("compare", a, a, "--out", tmp / "code").returncode == 0
    assert f"- git commit of sdloop: {manifest['sdloop_git_commit']}" in (tmp / "code" / "compare.md").read_text()


def test_compare_shows_the_changed_file_parameter_metrics_and_trajectories(two_runs):
    tmp, a, b, name, value = two_runs
    out = tmp / "report"
    result = sdloop("compare", a, b, "--out", out)
    assert result.returncode == 0, result.stderr
    summary = (out / "compare.md").read_text()
    assert "`sector/fitted/nev`" in summary and "`sector/model`" not in summary  # only the changed file
    diff = (out / "changes.diff").read_text()
    assert re.search(rf'^-"{re.escape(name)}" = ', diff, re.M) and re.search(rf'^\+"{re.escape(name)}" = ', diff, re.M)
    params = pd.read_csv(out / "parameters.csv")
    assert set(params["parameter"]) == {name} and len(params) == 2  # both strategies' runs
    assert np.allclose(params["A"].astype(float), value) and np.allclose(params["B"].astype(float), 0.8 * value)
    deltas = pd.read_csv(out / "metric_deltas.csv")
    ma, mb = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    keys = ["case", "strategy", "scenario"]
    for row in deltas.itertuples(index=False):
        at = (ma[keys] == [row.case, row.strategy, row.scenario]).all(axis=1)
        va, vb = ma.loc[at, row.metric].item(), mb.loc[at, row.metric].item()
        assert (math.isnan(va) and math.isnan(row.A)) or va == pytest.approx(row.A, rel=1e-6)
        if not (math.isnan(va) or math.isnan(vb)):
            assert row.change == pytest.approx(vb - va, rel=1e-5, abs=1e-12)
    assert (deltas["change"].abs() > 0).any()
    assert (out / "metric_deltas.tex").read_text().count(r"\midrule") == 1
    moved = pd.read_csv(out / "trajectory_changes.csv")
    assert moved["relative_to_scale"].is_monotonic_decreasing and moved["relative_to_scale"].iloc[0] > 0
    assert (out / "changed_trajectories.png").exists() and (out / "changed_trajectories.pdf").exists()


def test_a_run_compared_with_itself_changes_nothing(two_runs):
    tmp, a, _, _, _ = two_runs
    result = sdloop("compare", a, a, "--out", tmp / "same")
    assert result.returncode == 0, result.stderr
    assert "none: every model and input file has the same content" in result.stdout
    assert not (tmp / "same" / "changes.diff").exists()
    assert (pd.read_csv(tmp / "same" / "metric_deltas.csv")["change"].fillna(0) == 0).all()
    assert not (tmp / "same" / "changed_trajectories.png").exists()


def test_compare_refuses_a_folder_that_is_not_a_run_in_one_line(tmp_path, two_runs):
    _, a, _, _, _ = two_runs
    result = sdloop("compare", a, tmp_path, "--results", tmp_path / "results")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "manifest.json" in result.stderr
    assert not (tmp_path / "results").exists()


GROWTH = """{UTF-8}
S = INTEG(g * S * effort, 1) ~ Widgets ~ Start: one widget (test). |
g = 0.1 ~ 1/Year ~ Assumed, range 0.05-0.2 (test). |
effort = 1 ~ Dmnl ~ Assumed: strategy lever (test). |
INITIAL TIME = 0 ~ Year ~ Start. |
FINAL TIME = 10 ~ Year ~ End. |
TIME STEP = 0.25 ~ Year ~ Step. |
SAVEPER = TIME STEP ~ Year ~ Save. |
"""


def test_compare_two_ensembles_gives_statistic_and_claim_deltas(tmp_path):
    (tmp_path / "m.mdl").write_text(GROWTH)
    (tmp_path / "u.toml").write_text('[parameters.g]\ndistribution = "uniform"\nlow = 0.05\nhigh = 0.2\n'
                                     'source = "assumed (test)"\n')
    project = tmp_path / "p.project.toml"
    project.write_text('name = "p"\nmodel = "m.mdl"\n'
                       '[metrics.final]\nexpr = \'at("S", 10)\'\nbetter = "higher"\n'
                       '[strategies.low]\ndescription = "d"\n[strategies.low.parameters]\neffort = 0.5\n'
                       '[strategies.high]\ndescription = "d"\n[strategies.high.parameters]\neffort = 1.5\n'
                       '[[claims]]\nname = "high_wins"\ntext = "t"\n'
                       'holds = \'final(strategy="high") > final(strategy="low") * 3\'\n'
                       '[ensemble]\nuncertainty = "u.toml"\nsamples = 32\nseed = 1\n')
    for name, seed in (("a", "1"), ("b", "2")):
        done = sdloop("ensemble", project, "--out", tmp_path / name, "--seed", seed, "--no-figures")
        assert done.returncode == 0, done.stderr
    result = sdloop("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "cmp")
    assert result.returncode == 0, result.stderr
    deltas = pd.read_csv(tmp_path / "cmp" / "ensemble_deltas.csv")
    assert set(deltas["statistic"]) == {"median", "mean", "p_best", "max_regret"}
    assert set(deltas["strategy"]) == {"low", "high"}
    median = deltas[(deltas.statistic == "median") & (deltas.strategy == "high")].iloc[0]
    assert median.A != median.B and median.change == pytest.approx(median.B - median.A)  # other draws
    best = deltas[(deltas.statistic == "p_best") & (deltas.strategy == "high")].iloc[0]
    assert best.A == best.B == 1.0  # high effort wins on every draw of both ensembles
    claims = pd.read_csv(tmp_path / "cmp" / "claim_deltas.csv")
    row = claims[claims.claim == "high_wins"].iloc[0]
    assert row.measure == "share_of_draws" and 0 < row.A < 1 and 0 < row.B < 1  # depends on g
    assert "## Ensemble" in (tmp_path / "cmp" / "compare.md").read_text()
