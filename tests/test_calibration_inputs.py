"""Bad input: a clear message naming file, line and variable, a non-zero exit, and no
fitted file overwritten."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.errors import CalibrationError, FitFailed
from calibration.run import calibrate
from calibration.targets import load_targets
from calibration_helpers import MODEL, write_targets
from sdloop.cli import main
from sdloop.engines.pysd_model import load_model
from sdloop.experiments.overrides import load_case

SENTINEL = "# the committed fitted file\n"


def run_cli(tmp_path, targets, capsys):
    fitted = tmp_path / "fitted"
    fitted.mkdir(exist_ok=True)
    (fitted / f"{targets.stem}.toml").write_text(SENTINEL)
    status = main(["calibrate", str(targets), "--results", str(tmp_path / "results"), "--fitted-dir",
                   str(fitted), "--workers", "1", "--starts", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert (fitted / f"{targets.stem}.toml").read_text() == SENTINEL  # never overwritten
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*calibrate*"))
    return status, err


def line_of(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_unknown_model_variable(tmp_path, capsys):
    path = write_targets(tmp_path, adopters_variable="Adoptres")
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 2
    assert f"{path}:{line_of(path, '[[series]]')}: Adoptres: unknown model variable" in err
    assert "'Adopters'" in err  # close match offered


def test_unknown_indicator(tmp_path, capsys):
    path = write_targets(tmp_path, adoption_file="no_such_indicator.csv")
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 2
    assert f"{path}:{line_of(path, 'no_such_indicator')}: adoption: unknown indicator" in err


def test_unknown_parameter_name(tmp_path, capsys):
    path = write_targets(tmp_path)
    path.write_text(path.read_text().replace('name = "Market Size"', 'name = "Market Sise"'))
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 2
    assert "Market Sise: unknown constant" in err and "'Market Size'" in err


def test_bounds_exclude_start(tmp_path, capsys):
    path = write_targets(tmp_path, rate_bounds=(0.05, 0.3), rate_start=0.4)
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 2
    assert f"{path}:{line_of(path, 'start = 0.4')}: Adoption Rate: start value 0.4 lies outside" in err


def test_bounds_exclude_model_default(tmp_path):
    # no explicit start: the model's value (0.4) is the start and lies outside [0.05, 0.3]
    path = write_targets(tmp_path, rate_bounds=(0.05, 0.3))
    with pytest.raises(CalibrationError, match="Adoption Rate: start value 0.4 lies outside"):
        load_targets(path).checked(load_model(MODEL))


@pytest.mark.parametrize("bad, message", [("", "missing value"), ("n/a", "is not a number")])
def test_csv_with_missing_or_non_numeric_value(tmp_path, capsys, bad, message):
    path = write_targets(tmp_path)
    csv = tmp_path / "data" / "adoption.csv"
    lines = csv.read_text().splitlines()
    fields = lines[3].split(",")
    fields[1] = bad
    lines[3] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 2
    assert f"{csv}:4: value: " in err and message in err


def test_thin_group_needs_fixed_sigmas(tmp_path):
    path = write_targets(tmp_path, extra="first_year = 2018\n")
    text = path.read_text().replace('variable = "Adopters"', 'variable = "Adopters"\nfirst_year = 2018')
    path.write_text(text)
    with pytest.raises(CalibrationError, match=r"group 'synthetic' has 4 data points: too few"):
        load_targets(path)


def test_a_free_scale_per_series_is_refused(tmp_path):
    path = write_targets(tmp_path, error='sigma = "estimate"')
    with pytest.raises(CalibrationError, match=r"adopters: a free error scale per series lets the fit ignore"):
        load_targets(path)
    path = write_targets(tmp_path, extra='group = "alone"\n', error="")
    path.write_text(path.read_text().replace('variable = "Adopters"\n\n', 'variable = "Adopters"\nsigma = 0.1\n'))
    with pytest.raises(CalibrationError, match=r"group 'alone' has one series"):
        load_targets(path)


def test_non_convergence_fails_without_writing(tmp_path, capsys):
    # Adoption is positive, but a log error model on a variable that is zero everywhere
    # (Initial Adopters = 0) leaves no valid point: the fit cannot converge.
    path = write_targets(tmp_path)
    path.write_text(path.read_text().replace('"Initial Adopters" = 5', '"Initial Adopters" = 0'))
    status, err = run_cli(tmp_path, path, capsys)
    assert status == 1
    assert "did not converge" in err and str(path) in err


def test_evaluation_budget_exhausted_is_not_converged(tmp_path):
    path = write_targets(tmp_path)
    with pytest.raises(FitFailed, match="did not converge"):
        calibrate(path, starts=1, maxiter=2, draws=0, progress=False)


def test_malformed_toml_names_the_line(tmp_path):
    path = write_targets(tmp_path)
    path.write_text(path.read_text().replace('lower = 50', 'lower = = 50'))
    with pytest.raises(CalibrationError, match=rf"{path}:\d+: malformed TOML"):
        load_targets(path)


def test_simulator_is_swappable(tmp_path):
    """fit() takes any batch simulate(params, n) -> Batch callable: PySD here, the engine by default."""
    from calibration.fit import fit
    from calibration.simulate import PySDSimulator

    path = write_targets(tmp_path, 2)
    model = load_model(MODEL)
    targets = load_targets(path).checked(model)
    inner = PySDSimulator(MODEL, targets.base_parameters(model), final_time=2021, columns=["Adopters", "Adoption"])
    calls = []

    def simulate(params, n):
        calls.append((set(params), n))
        return inner(params, n)

    result = fit(None, targets, rng=np.random.default_rng(0), starts=1, simulate=simulate, progress=False,
                 maxiter=3, popsize=2)
    assert calls and calls[0][0] == {"Adoption Rate", "Market Size"}
    assert calls[0][1] >= 4  # a whole population (scipy: at least 5 members) in one call
    assert result.prediction.ok


def test_successful_calibration_writes_report_figures_and_fitted_file(tmp_path, capsys):
    path = write_targets(tmp_path)
    fitted = tmp_path / "fitted"
    status = main(["calibrate", str(path), "--results", str(tmp_path / "results"), "--fitted-dir", str(fitted),
                   "--workers", "1", "--starts", "2", "--draws", "2000", "--no-progress"])
    assert status == 0, capsys.readouterr().err
    latest = tmp_path / "results" / "latest"
    posterior = pd.read_csv(fitted / f"{path.stem}.posterior.csv", comment="#")
    assert list(posterior.columns) == ["Adoption Rate", "Market Size", "log_prob"] and len(posterior) >= 2000
    assert "ESS" in (fitted / f"{path.stem}.posterior.csv").read_text().splitlines()[2]
    for name in ("fit", "residuals", "profiles", "holdout"):
        assert (latest / f"{name}.png").stat().st_size > 0 and (latest / f"{name}.pdf").stat().st_size > 0
    assert (latest / "report.md").exists() and (latest / "manifest.json").exists()
    assert r"\toprule" in (latest / "parameters.tex").read_text() and (latest / "fit_statistics.tex").exists()
    index = (latest / "index.md").read_text()
    assert "- `parameters.csv`: estimated parameters" in index and "- `fit.pdf`, `.png`: figure: model against data" in index
    assert load_case(fitted / f"{path.stem}.toml").parameters
