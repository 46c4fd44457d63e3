"""Synthetic recovery: data simulated from known parameters plus noise; the fit recovers
them inside its reported 95% profile-likelihood intervals."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.fit import fit
from calibration.run import calibrate
from calibration.targets import load_targets
from calibration.uncertainty import profile_likelihood
from calibration_helpers import MODEL, TRUE, write_targets
from sdloop.engines.pysd_model import load_model


def recover(tmp_path, seed):
    targets = load_targets(write_targets(tmp_path, seed))
    result = fit(load_model(MODEL), targets, rng=np.random.default_rng(seed), starts=3, progress=False)
    assert result.converged, result.message
    return result, profile_likelihood(result, progress=False)


def check_inside(result, profiles):
    inside = {}
    for prof in profiles:
        truth = TRUE[prof.name]
        inside[prof.name] = prof.lower <= truth <= prof.upper
        assert prof.identified, prof.name
        assert prof.lower < result.params[prof.name] < prof.upper
    return inside


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_known_parameters_inside_intervals(tmp_path, seed):
    result, profiles = recover(tmp_path, seed)
    inside = check_inside(result, profiles)
    assert all(inside.values()), (seed, result.params, [(p.lower, p.upper) for p in profiles])
    # the estimated error scale is close to the noise put in
    assert 0.04 < result.prediction.sigma["adopters"] < 0.16


def test_same_seed_same_result(tmp_path):
    targets = load_targets(write_targets(tmp_path, 5))
    model = load_model(MODEL)
    a = fit(model, targets, rng=np.random.default_rng(7), starts=3, progress=False)
    b = fit(model, targets, rng=np.random.default_rng(7), starts=3, progress=False)
    assert a.params == b.params and a.nll == b.nll
    assert [s.nll for s in a.starts] == [s.nll for s in b.starts]


def test_full_calibration_reports_holdout_and_statistics(tmp_path):
    cal = calibrate(write_targets(tmp_path, 3), seed=1, starts=2, holdout_from=2015, progress=False, draws=0)
    assert set(cal.statistics["series"]) == {"adopters", "adoption"}
    assert (cal.statistics["R2"] > 0.9).all()
    assert cal.parameters["identified"].all()
    summary = cal.holdout_summary.set_index("series")
    assert list(summary["test_points"]) == [5, 5] and list(summary["train_points"]) == [14, 14]
    # the right structure beats a log-linear trend and a random walk once growth saturates
    assert (summary["model_RMSLE"] < summary["trend_RMSLE"]).all()
    assert (summary["model_RMSLE"] < summary["random_walk_RMSLE"]).all()
    assert cal.parity < 1e-9  # the engine's fitted run is PySD's


def test_unidentified_parameter_is_flagged(tmp_path):
    """Market Size cannot be learned from the first years of exponential growth alone."""
    path = write_targets(tmp_path, 4)
    text = path.read_text()
    # keep only 2001-2005 (before crowding matters) by windowing both series
    text = text.replace('variable = "Adopters"', 'variable = "Adopters"\nlast_year = 2005')
    text = text.replace('variable = "Adoption"', 'variable = "Adoption"\nlast_year = 2005')
    path.write_text(text)
    targets = load_targets(path)
    result = fit(load_model(MODEL), targets, rng=np.random.default_rng(0), starts=2, progress=False)
    profiles = {p.name: p for p in profile_likelihood(result, progress=False)}
    assert not profiles["Market Size"].identified
    assert profiles["Market Size"].upper_open


@pytest.mark.slow
def test_interval_coverage_over_many_seeds(tmp_path):
    hits = total = 0
    for seed in range(10, 30):
        directory = tmp_path / str(seed)
        directory.mkdir()
        _, profiles = recover(directory, seed)
        for prof in profiles:
            total += 1
            hits += prof.lower <= TRUE[prof.name] <= prof.upper
    assert hits / total >= 0.85, (hits, total)


def test_a_series_measured_only_in_holdout_years_is_named_as_not_clean(tmp_path):
    """The full fit learns from a hold-out-only series what the hold-out fit never sees: say so."""
    from types import SimpleNamespace

    from calibration.report import _holdout_only_lines
    from calibration.validate import holdout_only_series, out_of_sample_table

    path = write_targets(tmp_path, 3)
    path.write_text(path.read_text().replace('variable = "Adoption"', 'variable = "Adoption"\nfirst_year = 2016'))
    targets = load_targets(path)
    holdout = fit(load_model(MODEL), targets, rng=np.random.default_rng(0), starts=1, progress=False,
                  fit_before=2015)
    _, summary = out_of_sample_table(holdout)
    verdicts = summary.set_index("series")["verdict"]
    assert holdout_only_series(summary) == ["adoption"]
    assert "not clean" in verdicts["adoption"] and "not clean" not in verdicts["adopters"]
    lines = _holdout_only_lines(SimpleNamespace(holdout_summary=summary, targets=targets, holdout=holdout))
    assert "not clean for adoption" in lines[0] and "from 2015 on" in lines[0]
