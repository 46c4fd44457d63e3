"""The likelihood, the population fit and the posterior on the synthetic diffusion problem."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from calibration.fit import fit, make_problem
from calibration.posterior import sample, split_rhat
from calibration.stats import lag1_autocorrelation, runs_test
from calibration.targets import load_targets
from calibration.validate import logistic_forecast, random_walk_forecast
from calibration_helpers import TRUE, write_targets


def problem_for(tmp_path, **kwargs):
    targets = load_targets(write_targets(tmp_path, 1, **kwargs))
    return make_problem(targets)[0]


def test_ar1_likelihood_is_the_multivariate_normal_density(tmp_path):
    """With a fixed sigma and AR(1) coefficient the NLL is exactly -log N(r; 0, sigma^2 rho^|i-j|),
    summed over the series (data years with a gap use rho^gap)."""
    problem = problem_for(tmp_path, error="sigma = 0.1\nar1 = 0.6", extra="")
    u = np.array([0.4, 0.6])
    ev = problem.evaluate(u[None, :])
    expected = 0.0
    for sd in problem.series:
        r = ev.residual[sd.target.name][0]
        years = sd.years.astype(float)
        cov = 0.1 ** 2 * 0.6 ** np.abs(years[:, None] - years[None, :])
        expected -= multivariate_normal(np.zeros(len(r)), cov).logpdf(r)
    assert ev.nll[0] == pytest.approx(expected, rel=1e-10)


def test_a_group_shares_one_scale_so_a_bad_series_cannot_be_ignored(tmp_path):
    problem = problem_for(tmp_path)
    u = problem.unit(TRUE)
    ev = problem.evaluate(u[None, :])
    assert ev.sigma["adopters"][0] == ev.sigma["adoption"][0]
    # the shared scale is the root mean square residual over both series
    pooled = np.concatenate([ev.residual[s][0] for s in ("adopters", "adoption")])
    assert ev.sigma["adopters"][0] == pytest.approx(np.sqrt(np.mean(pooled ** 2)), rel=1e-12)


def test_population_is_one_call_and_matches_single_runs(tmp_path):
    problem = problem_for(tmp_path)
    U = np.random.default_rng(0).uniform(size=(7, 2))
    together = problem.nll(U)
    one_by_one = np.array([problem.nll(u[None, :])[0] for u in U])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12)


def test_fit_is_deterministic_whatever_the_workers(tmp_path):
    targets = load_targets(write_targets(tmp_path, 5))
    a = fit(None, targets, rng=np.random.default_rng(7), starts=2, progress=False, workers=1)
    b = fit(None, targets, rng=np.random.default_rng(7), starts=2, progress=False, workers=2)
    assert a.params == b.params and a.nll == b.nll
    assert a.converged and a.agreeing_starts == 2


def test_posterior_covers_the_truth_and_reports_convergence(tmp_path):
    targets = load_targets(write_targets(tmp_path, 3))
    result = fit(None, targets, rng=np.random.default_rng(1), starts=1, progress=False)
    post = sample(result.problem, result.u, rng=np.random.default_rng(2), draws=4000, burn=150, progress=False)
    summary = post.summary().set_index("parameter")
    for name, truth in TRUE.items():
        assert summary.loc[name, "q2.5"] < truth < summary.loc[name, "q97.5"], name
    assert len(post.draws) >= 4000
    assert 0.15 < post.acceptance < 0.8
    assert all(r < 1.05 for r in post.rhat.values()) and all(e > 100 for e in post.ess.values())


def test_split_rhat_flags_chains_that_disagree():
    rng = np.random.default_rng(0)
    agree = rng.standard_normal((200, 8, 1))
    apart = agree.copy()
    apart[:, 4:, 0] += 3.0  # half the walkers sit elsewhere
    assert split_rhat(agree)[0] < 1.02
    assert split_rhat(apart)[0] > 1.5


def test_residual_diagnostics():
    alternating = np.array([1, -1] * 6, dtype=float)
    trending = np.array([-3, -2, -1, -1, -0.5, 0.5, 1, 1, 2, 3], dtype=float)
    assert lag1_autocorrelation(alternating) < -0.8
    assert lag1_autocorrelation(trending) > 0.5
    runs, expected, p = runs_test(trending)
    assert runs == 2 and expected > runs and p < 0.05
    assert runs_test(alternating)[0] == 12


def test_benchmarks_random_walk_and_logistic():
    years = [2012, 2013, 2014, 2015, 2016]
    assert list(random_walk_forecast(years, [1, 2, 3, 4, 5], [2017, 2018])) == [5, 5]
    truth = lambda t: 40 / (1 + np.exp(-0.5 * (np.asarray(t, float) - 2016)))  # noqa: E731
    forecast = logistic_forecast(years, truth(years), [2018, 2020], ceiling=100)
    np.testing.assert_allclose(forecast, truth([2018, 2020]), rtol=1e-3)


@pytest.mark.slow
def test_calibration_bench_reports_fit_and_posterior_figures(capsys):
    from calibration.bench import main

    assert main(["--cases", "ic", "--draws", "500", "--json"]) == 0
    import json

    (row,) = json.loads(capsys.readouterr().out)
    for key in ("fit_seconds", "posterior_seconds", "min_ess", "max_rhat", "posterior_draws"):
        assert key in row
    assert row["posterior_draws"] >= 500 and row["fit_converged"]


def test_cumulative_series_is_the_integral_of_the_flow_since_its_start(tmp_path):
    """aggregate = "cumulative": a flow integrated from ``from`` is the growth of its stock."""
    from calibration.likelihood import annual_weights, as_measured
    from calibration.errors import CalibrationError

    t = np.arange(0.0, 10.01, 0.25)
    w = annual_weights(t, [3, 5], "cumulative", 2.3)  # integral of v(t) = t from 2.3 to y + 1
    np.testing.assert_allclose(w @ t, [(4 ** 2 - 2.3 ** 2) / 2, (6 ** 2 - 2.3 ** 2) / 2], rtol=1e-12)

    path = write_targets(tmp_path, 5)
    text = path.read_text().replace('variable = "Adoption"\n',
                                    'variable = "Adoption"\naggregate = "cumulative"\nfrom = 2001\n')
    path.write_text(text)
    problem, _ = make_problem(load_targets(path))
    u = problem.unit(TRUE)[None, :]
    batch = problem.run(u)
    adoption = next(sd for sd in problem.series if sd.target.name == "adoption")
    stock = batch.values["Adopters"][:, 0]
    since = np.interp(adoption.years + 1.0, batch.times, stock) - np.interp(2001.0, batch.times, stock)
    # the stock is Euler-integrated, the series by the trapezoid rule: equal up to O(dt) early on
    np.testing.assert_allclose(problem.annual(batch, adoption)[0], since, rtol=0.06)
    running = as_measured(adoption.target, batch.times, batch.values["Adoption"])[:, 0]
    np.testing.assert_allclose(np.interp(adoption.years + 1.0, batch.times, running),
                               problem.annual(batch, adoption)[0], rtol=1e-12)

    path.write_text(text.replace('aggregate = "cumulative"\n', ""))
    with pytest.raises(CalibrationError, match="'from'"):
        load_targets(path)


def test_progress_bars_do_not_stop_the_fit(tmp_path):
    """The progress callback must not end the evolution early (tqdm's update returns True on a redraw)."""
    targets = load_targets(write_targets(tmp_path, 5))
    quiet = fit(None, targets, rng=np.random.default_rng(7), starts=1, progress=False, workers=1)
    shown = fit(None, targets, rng=np.random.default_rng(7), starts=1, progress=True, workers=1)
    assert shown.converged and "stop early" not in shown.message
    assert shown.params == quiet.params and shown.nll == quiet.nll
