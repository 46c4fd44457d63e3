"""The committed fitted files are reproduced by a fresh calibration (slow: minutes per case)."""

from __future__ import annotations

import re
from pathlib import Path

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
    cal = calibrate(targets, seed=seed, starts=starts, workers=default_workers(), progress=False)
    model = load_model(targets.model)
    values = fitted.checked(model)
    for p in cal.targets.parameters:
        # within 1% of the search range (linear or log), the optimizer's resolution
        assert abs(p.to_unit(cal.result.params[p.name]) - p.to_unit(values[p.name])) < 0.01, p.name
