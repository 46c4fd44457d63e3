"""Project files: form errors and unknown names fail before any run with FILE:LINE and close names;
a new model and project run from scratch without Python; outputs stay inside the run directory."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURES, MODELS, ROOT
from test_cli import sdloop

SECTOR = MODELS / "sector.project.toml"

GROWTH = FIXTURES / "exponential_growth.mdl"


def project_with(tmp_path, old: str, new: str):
    text = SECTOR.read_text()
    assert old in text, old
    text = text.replace(old, new, 1)
    for name in ["sector_lifecycle.mdl", "strategies.toml", "scenarios.toml", "uncertainty.toml",
                 *[f"cases/{p.name}" for p in (MODELS / "cases").glob("*.toml")]]:
        text = text.replace(f'"{name}"', f'"{MODELS / name}"')
    text = text.replace('"../calibration/fitted"', f'"{ROOT / "calibration" / "fitted"}"')
    path = tmp_path / "study.project.toml"
    path.write_text(text)
    return path, text


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


@pytest.mark.parametrize("old, new, at, words", [
    ("max(\"Supply Shortfall\")", "max(\"Suply Shortfall\")", "Suply", "did you mean 'Supply Shortfall'"),
    ('vars = ["Technological Capability"', 'vars = ["Technological Capabilty"', "Capabilty",
     "did you mean 'Technological Capability'"),
    ('holds = \'global_share_2035(strategy="perpetual_protection")',
     'holds = \'global_share_2036(strategy="perpetual_protection")', "global_share_2036", "did you mean"),
    ('strategy = "lifecycle_phased" }', 'strategy = "lifecycle_phase" }', "lifecycle_phase\"", "sobol strategy"),
    ('file = "figures/{case}_ranking"', 'file = "../../etc/{case}_ranking"', "../../etc", "inside the run directory"),
    ('horizon = 2035', 'horizon = 2035\ncolour = "red"', "colour", "unknown key"),
    ('better = "lower"\nlabel = "peak', 'better = "less"\nlabel = "peak', "\"less\"", "'better' is"),
    ('expr = \'at("Cumulative Fiscal Cost")\'', 'expr = \'open("x").read()\'', "open(", "only plain function names"),
])
def test_a_bad_project_fails_before_any_run_with_file_line_and_close_names(tmp_path, old, new, at, words):
    path, text = project_with(tmp_path, old, new)
    result = sdloop("run", path, "--results", tmp_path / "results")
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert f"{path}:{line_of(text, at)}: " in result.stderr, result.stderr
    assert words in result.stderr
    assert not (tmp_path / "results" / "latest").exists()
    assert not list(tmp_path.glob("etc*"))


def test_a_new_model_and_project_run_without_python(tmp_path):
    """The researcher's path: a .mdl and a project file with metrics, claims and figures."""
    (tmp_path / "growth.mdl").write_text(GROWTH.read_text())
    (tmp_path / "growth.project.toml").write_text('''
name = "growth"
model = "growth.mdl"
horizon = 30
[scenarios.baseline]
[scenarios.fast.parameters]
"birth fraction" = 0.06

[metrics.final_population]
expr = 'at(Population)'
better = "higher"
[metrics.doubling_time]
expr = 'first_time(Population >= 2 * initial(Population)) - initial(Time)'
better = "lower"

[[claims]]
name = "fast_doubles_sooner"
text = "A higher birth fraction doubles the population sooner"
holds = 'doubling_time(scenario="fast") < doubling_time(scenario="baseline")'

[[figures]]
kind = "compare"
across = "scenario"
file = "population"
variables = ["Population", "births"]
''')
    result = sdloop("run", tmp_path / "growth.project.toml", "--results", tmp_path / "results")
    assert result.returncode == 0, result.stderr
    latest = tmp_path / "results" / "latest"
    metrics = pd.read_csv(latest / "metrics.csv")
    assert list(metrics.columns) == ["scenario", "final_population", "doubling_time"]
    fast = metrics.set_index("scenario").loc["fast"]
    assert fast["doubling_time"] == pytest.approx(11.5, abs=0.3)  # ln 2 / 0.06 = 11.55 years, saved yearly
    claims = pd.read_csv(latest / "claims.csv")
    assert claims.loc[0, "claim"] == "fast_doubles_sooner" and bool(claims.loc[0, "holds"])
    assert (latest / "growth" / "population.png").exists() and (latest / "growth" / "trajectories.csv").exists()
    assert re.search(r"engine: (compiled C engine|vectorized numpy engine)", result.stdout)


LOGISTIC = FIXTURES / "logistic_growth.mdl"


def test_an_ensemble_without_cases_or_histograms_gives_true_percentiles_and_figures(tmp_path):
    """A newcomer's ensemble: no cases, no declared histogram, years far from zero. The percentiles
    of a first_time year are those of the draws (within a save step), not of bins 1% of 2000 wide;
    the figures show the strategies (not an empty grid) with no case label to lead their titles."""
    model = LOGISTIC.read_text().replace("INITIAL TIME = 0", "INITIAL TIME = 2000").replace(
        "FINAL TIME = 30", "FINAL TIME = 2030").replace("SAVEPER = TIME STEP", "SAVEPER = 0.25")
    (tmp_path / "m.mdl").write_text(model)
    (tmp_path / "u.toml").write_text('[parameters."growth fraction"]\ndistribution = "uniform"\nlow = 0.3\n'
                                     'high = 0.7\nsource = "test"\n')
    (tmp_path / "p.project.toml").write_text('''
model = "m.mdl"
[strategies.slow]
[strategies.fast.parameters]
"carrying capacity" = 2000
[metrics.half_year]
expr = 'first_time(Population >= 500)'
better = "lower"
[metrics.final]
expr = 'at(Population)'
better = "higher"
[ensemble]
uncertainty = "u.toml"
samples = 64
seed = 3
save_samples = true
[[ensemble.figures]]
kind = "best_probability"
file = "best"
''')
    result = sdloop("run", tmp_path / "p.project.toml", "--results", tmp_path / "results")
    assert result.returncode == 0, result.stderr
    assert "identical low and high" not in result.stderr  # an empty heat map (no rows matched)
    ensemble = tmp_path / "results" / "latest" / "ensemble"
    robust = pd.read_csv(ensemble / "robustness.csv").set_index(["strategy", "metric"])
    samples = pd.read_parquet(ensemble / "samples.parquet")
    for strategy in ("slow", "fast"):
        years = samples.loc[samples.strategy == strategy, "half_year"].to_numpy()
        assert 2004 < years.min() and years.max() < 2030
        row = robust.loc[(strategy, "half_year")]
        for column, q in (("p5", 5), ("median", 50), ("p95", 95)):
            assert abs(row[column] - np.percentile(years, q)) <= 0.5, (strategy, column, row[column])
    import matplotlib.image

    pixels = matplotlib.image.imread(ensemble / "best.png")
    gray = pixels if pixels.ndim == 2 else pixels[..., :3].mean(axis=-1)  # PNGs are stored as 8-bit gray
    assert (gray < 0.5).mean() > 0.01  # the grid's dark cells and numbers are drawn


def test_a_metric_without_format_shows_a_year_whole():
    from sdloop.experiments.metrics import MetricSpec, format_value

    spec = MetricSpec(name="y", expr="at(x)")
    assert format_value(2024.75, spec) == "2024.75"  # was 2.02e+03: 2024.75 and 2027 looked alike in claims.csv
    assert format_value(float("inf"), spec) == "never"


SMALL = '''
model = "m.mdl"
horizon = 2025
strategies = "s.toml"
[metrics.half_year]
expr = 'first_time(Population >= 500)'
unit = "year"
better = "lower"
[metrics.final]
expr = 'at(Population)'
unit = "Person"
[metrics.peak_growth]
expr = 'max("net growth", start=2005, end=2020)'
[[claims]]
name = "fast_is_earlier"
holds = 'half_year(strategy="fast") < half_year(strategy="slow")'
[ensemble]
uncertainty = "u.toml"
samples = 4
'''


@pytest.mark.parametrize("file, old, new, at, words", [
    ("p.project.toml", 'start=2005, end=2020', 'start=2035, end=2040', "start=2035",
     "max(): start 2035 is outside the run (INITIAL TIME 2000 to FINAL TIME 2030)"),
    ("p.project.toml", "at(Population)", "at(Population, 2050)", "2050", "at(): the time 2050 is outside the run"),
    ("p.project.toml", 'start=2005, end=2020', 'start=2020, end=2005', "start=2020", "the window starts (2020) after"),
    ("p.project.toml", "horizon = 2025", "horizon = 2040", "horizon", "horizon 2040 is outside the run"),
    ("p.project.toml", 'half_year(strategy="slow")', 'final(strategy="slow")', "holds",
     "compares half_year (year) and final (Person): metrics of different units"),
    ("p.project.toml", 'half_year(strategy="fast") < half_year(strategy="slow")',
     'peak_growth(strategy="fast") < final(strategy="slow")', "holds",
     "compares peak_growth (Person/Year) and final (Person)"),  # peak_growth's unit read from its expression
    ("p.project.toml", '"s.toml"', '"strategy.toml"', "strategies", "strategy.toml: no such file"),
    ("u.toml", '"growth fraction"', '"growth fractoin"', "growth fractoin", "did you mean 'growth fraction'"),
    ("s.toml", "[fast.parameters]", "[fast.parameter]", "fast.parameter", "did you mean [fast.parameters]?"),
    ("p.project.toml", '[metrics.final]', '[[figures]]\nkind = "plott"\nfile = "x"\n[metrics.final]', "plott",
     "did you mean 'plot'?"),
])
def test_a_newcomers_mistake_fails_before_any_run_in_one_line(tmp_path, file, old, new, at, words):
    model = LOGISTIC.read_text().replace("INITIAL TIME = 0", "INITIAL TIME = 2000").replace(
        "FINAL TIME = 30", "FINAL TIME = 2030")
    files = {"m.mdl": model, "p.project.toml": SMALL,
             "s.toml": '[slow]\n[fast.parameters]\n"growth fraction" = 0.8\n',
             "u.toml": '[parameters."growth fraction"]\ndistribution = "uniform"\nlow = 0.3\nhigh = 0.7\n'}
    assert old in files[file]
    files[file] = files[file].replace(old, new, 1)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = sdloop("run", tmp_path / "p.project.toml", "--results", tmp_path / "results")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{tmp_path / file}:{line_of(files[file], at)}: " in result.stderr, result.stderr
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_run_in_a_study_folder_finds_its_project_and_refuses_a_model_file(tmp_path):
    """A researcher's own folder has no models/: `sdloop run` there runs its *.project.toml;
    `sdloop run MODEL.mdl` says it wants a project file (not "malformed TOML")."""
    (tmp_path / "m.mdl").write_text(LOGISTIC.read_text())
    (tmp_path / "p.project.toml").write_text('model = "m.mdl"\n[metrics.final]\nexpr = "at(Population)"\n')
    result = sdloop("run", "--results", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "latest" / "metrics.csv").exists()
    result = sdloop("run", "m.mdl", cwd=tmp_path)
    assert result.returncode == 2 and "is a model file" in result.stderr and "sdloop simulate" in result.stderr
    result = sdloop("run", cwd=tmp_path / "out")
    assert result.returncode == 2 and "no project files" in result.stderr and "Traceback" not in result.stderr


def test_a_run_that_goes_non_finite_names_the_line_variable_and_time_and_leaves_nothing(tmp_path):
    (tmp_path / "m.mdl").write_text(LOGISTIC.read_text())
    (tmp_path / "p.project.toml").write_text('model = "m.mdl"\n[strategies.ok]\n[strategies.broken.parameters]\n'
                                             '"carrying capacity" = 0\n[metrics.final]\nexpr = "at(Population)"\n')
    result = sdloop("run", tmp_path / "p.project.toml", "--results", tmp_path / "results", "--no-ensemble")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    found = re.search(r"m\.mdl:(\d+): ([\w ]+): run broken became non-finite at time 0\b", result.stderr)
    assert found, result.stderr
    assert int(found.group(1)) == line_of(LOGISTIC.read_text(), f"{found.group(2)} = ")  # the variable's own line
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
