"""The committed fitted files are reproduced by a fresh calibration (slow: minutes per case)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from calibration.fit import default_workers
from calibration.run import calibrate
from calibration.targets import load_targets
from sdloop.engines.pysd_model import load_model
from sdloop.experiments.overrides import load_case

ROOT = Path(__file__).resolve().parents[1]
CASES = ["nev", "ic", "national"]


def committed(case):
    path = ROOT / "calibration" / "fitted" / f"{case}.toml"
    text = path.read_text(encoding="utf-8")
    found = re.search(r"seed (\d+), (\d+) starts", text)
    return load_case(path), int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("case", CASES)
def test_fitted_file_is_a_loadable_case_with_every_fitted_parameter(case):
    targets = load_targets(ROOT / "calibration" / "targets" / f"{case}.toml")
    model = load_model(targets.model)
    fitted, _, _ = committed(case)
    values = fitted.checked(model)  # every name is a constant of the model
    targets = targets.checked(model)
    for p in targets.parameters:
        assert p.lower <= values[p.name] <= p.upper
    # estimates only: the historical calendar lives in CASE.history.toml
    assert set(values) == {p.name for p in targets.parameters}
    history = load_case(ROOT / "calibration" / "fitted" / f"{case}.history.toml").checked(model)
    assert history == {model.resolve(name): value for name, value in targets.inputs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_calibrate_reproduces_the_committed_fit(case):
    fitted, seed, starts = committed(case)
    targets = load_targets(ROOT / "calibration" / "targets" / f"{case}.toml")
    cal = calibrate(targets, seed=seed, starts=starts, workers=default_workers(), progress=False, draws=0)
    model = load_model(targets.model)
    values = fitted.checked(model)
    for p in cal.targets.parameters:
        # within 1% of the search range (linear or log), the optimizer's resolution
        assert abs(p.to_unit(cal.result.params[p.name]) - p.to_unit(values[p.name])) < 0.01, p.name


def test_bundled_national_fit_follows_the_high_tech_share_within_20_percent():
    """The national model, at its committed estimates, within 20% of every NBS high-tech share."""
    from calibration.data import load_series

    targets = load_targets(ROOT / "calibration" / "targets" / "national.toml")
    model = load_model(targets.model)
    fitted, _, _ = committed("national")
    params = {**{model.resolve(k): v for k, v in targets.inputs.items()}, **fitted.checked(model)}
    run = model.run(params, final_time=2023, columns=["High Tech Share"])
    data = load_series(ROOT / "calibration" / "data" / "china_hightech_mfg_share_industrial_va_nbs.csv")
    t = run.index.to_numpy(float)
    for year, value in zip(data.years, data.values):
        inside = (t >= year) & (t <= year + 1)
        model_pct = 100 * np.trapezoid(run["High Tech Share"].to_numpy()[inside], t[inside])
        assert abs(model_pct / value - 1) < 0.2, (year, model_pct, value)


@pytest.mark.parametrize("case", CASES)
def test_posterior_draws_are_saved_next_to_the_fitted_file(case):
    import pandas as pd

    targets = load_targets(ROOT / "calibration" / "targets" / f"{case}.toml")
    path = ROOT / "calibration" / "fitted" / f"{case}.posterior.csv"
    draws = pd.read_csv(path, comment="#")
    assert list(draws.columns) == [p.name for p in targets.parameters] + ["log_prob"]
    assert len(draws) >= 1000 and draws.notna().all().all()
    for p in targets.parameters:
        assert ((draws[p.name] >= p.lower) & (draws[p.name] <= p.upper)).all()
    assert "ESS" in path.read_text().splitlines()[2]
