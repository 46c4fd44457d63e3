"""One calibration from a target file to results in memory (writing is in ``report``).

``calibrate`` fits (population optimizer on the engine), checks the fitted run against PySD,
profiles, samples the posterior, runs the out-of-sample check and the residual diagnostics.
It raises FitFailed (nothing written) when the fit does not converge.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.errors import FitFailed
from calibration.fit import FitResult, fit, make_problem
from calibration.posterior import Posterior, predictive_bands, sample
from calibration.simulate import Batch, parity
from calibration.stats import fit_statistics, lag1_autocorrelation, runs_test
from calibration.targets import Targets, load_targets, prior_years_problems
from calibration.uncertainty import Profile, band_points, parameter_table, profile_likelihood
from calibration.validate import out_of_sample_table

LEVEL = 0.95
PARITY_TOLERANCE = 1e-6  # largest relative difference engine vs PySD accepted at the estimate


@dataclass
class Calibration:
    targets: Targets
    seed: int
    starts: int
    result: FitResult
    profiles: list[Profile]
    parameters: pd.DataFrame
    statistics: pd.DataFrame
    holdout: FitResult | None
    holdout_points: pd.DataFrame
    holdout_summary: pd.DataFrame
    best_frame: pd.DataFrame
    band_frames: list[tuple[pd.DataFrame, dict[str, float]]]
    holdout_frame: pd.DataFrame | None
    posterior: Posterior | None
    bands: dict[str, pd.DataFrame] | None = None
    parity: float = math.nan
    prior_problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def statistics_table(result: FitResult) -> pd.DataFrame:
    """Per-series fit statistics (data units), error model and residual diagnostics."""
    rows = []
    frame = result.prediction.frame
    for s in result.targets.series:
        part = frame[(frame["series"] == s.name) & frame["used"]].sort_values("year")
        if part.empty:
            continue
        stats = fit_statistics(part["model"], part["data"])
        runs, expected, p_runs = runs_test(part["residual"])
        rows.append({"series": s.name, "variable": s.variable, "unit": result.targets.data[s.name].unit,
                     "years": f"{part['year'].min()}-{part['year'].max()}", **stats,
                     "error": s.error, "sigma": result.prediction.sigma.get(s.name),
                     "sigma_from": f"group {s.group}" if s.group else "fixed (measurement)",
                     "ar1": result.prediction.rho.get(s.name, 0.0),
                     "resid_acf1": lag1_autocorrelation(part["residual"]),
                     "runs": runs, "runs_expected": expected, "runs_p": p_runs,
                     "scale": result.prediction.scale.get(s.name), "scale_estimated": s.scale is None})
    return pd.DataFrame(rows)


def _frame(batch: Batch) -> pd.DataFrame:
    return batch.frame(0)


def calibrate(targets: str | Path | Targets, *, seed: int = 1, starts: int = 2,
              holdout_from: int | None = None, workers: int = 1, draws: int = 10_000,
              progress: bool = True, maxiter: int = 300, check_parity: bool = True) -> Calibration:
    """Fit ``targets`` (a path or loaded Targets), then check, profile, sample and validate.

    ``draws``: posterior draws kept after burn-in (0: no posterior).
    """
    targets = load_targets(targets) if not isinstance(targets, Targets) else targets
    rng = np.random.default_rng(seed)
    seconds = {}
    problem, _ = make_problem(targets)
    targets = problem.targets

    began = time.perf_counter()
    result = fit(None, targets, rng=rng, starts=starts, progress=progress, maxiter=maxiter, problem=problem)
    seconds["fit"] = time.perf_counter() - began
    if not result.converged:
        raise FitFailed(f"the fit did not converge ({result.message}; best NLL {result.nll:.6g}); "
                        "no fitted file written. Try more --starts or check the bounds",
                        file=targets.path)
    difference = math.nan
    if check_parity:
        began = time.perf_counter()
        sim = problem.simulate
        difference = parity(targets.model, getattr(sim, "base", {}), result.params,
                            final_time=getattr(sim, "final_time", None), columns=getattr(sim, "columns", None))
        seconds["parity"] = time.perf_counter() - began
        if not difference <= PARITY_TOLERANCE:
            raise FitFailed(f"the engine and PySD differ by {difference:.3g} (relative) at the estimate; "
                            "no fitted file written", file=targets.model)

    began = time.perf_counter()
    profiles = profile_likelihood(result, level=LEVEL, workers=workers, progress=progress)
    seconds["profiles"] = time.perf_counter() - began
    better = min(float(p.points["delta"].min()) for p in profiles)
    if better < -0.05:
        raise FitFailed(f"a profile search found a point {-better:.3g} log-likelihood units better than "
                        "the fit: the fit did not find the optimum. Try more --starts", file=targets.path)

    best_frame = _frame(problem.run(result.u))
    band_frames = []  # (trajectory, per-series scales) of every parameter set in the profile region
    for u in band_points(profiles, result, level=LEVEL):
        batch = problem.run(u)
        if batch.finite[0]:
            band_frames.append((_frame(batch), {k: float(v[0]) for k, v in problem.evaluate(u, batch).scale.items()}))

    post, bands = None, None
    if draws > 0:
        began = time.perf_counter()
        post = sample(problem, result.u, rng=np.random.default_rng(seed + 1), draws=draws, progress=progress)
        bands = predictive_bands(problem, post, rng=np.random.default_rng(seed + 2))
        seconds["posterior"] = time.perf_counter() - began

    holdout_year = targets.holdout_from if holdout_from is None else holdout_from
    began = time.perf_counter()
    holdout_problem, _ = make_problem(targets, fit_before=holdout_year, simulate=problem.simulate)
    holdout = fit(None, targets, rng=np.random.default_rng(seed), starts=1, progress=progress, maxiter=maxiter,
                  problem=holdout_problem, fit_before=holdout_year)
    seconds["holdout"] = time.perf_counter() - began
    points, summary = out_of_sample_table(holdout)
    holdout_frame = _frame(holdout_problem.run(holdout.u))

    return Calibration(
        targets=targets, seed=seed, starts=starts, result=result, profiles=profiles,
        parameters=parameter_table(result, profiles, level=LEVEL), statistics=statistics_table(result),
        holdout=holdout, holdout_points=points, holdout_summary=summary, best_frame=best_frame,
        band_frames=band_frames, holdout_frame=holdout_frame, posterior=post, bands=bands, parity=difference,
        prior_problems=prior_years_problems(targets), seconds=seconds,
    )


def fitted_case_text(cal: Calibration) -> str:
    """The estimates as a case file (``description`` + ``[parameters]``), intervals in comments.

    Only estimated parameters: this is the file a runner layers under its scenarios and
    strategies. The dated policy inputs the fit assumed are in ``history_case_text``.
    """
    t = cal.targets
    base = f" over the base case {t.case.name}" if t.case else ""
    history = f"calibration/fitted/{t.name}.history.toml"
    lines = [
        "# Written by `sdloop calibrate " + t.name + "`: do not edit by hand; run `make calibrate`.",
        f"# Targets: calibration/targets/{t.path.name}; seed {cal.seed}, {cal.starts} starts.",
        f"# The fit assumed the dated policy inputs of {history}; add it as a further --case",
        "# to reproduce the historical calibration run.",
        f"description = \"Calibrated parameters for {t.name}{base}: maximum-likelihood estimates "
        f"(95% profile-likelihood intervals in the comments).\"",
        "",
        "[parameters]",
        "# estimated: value  # units; 95% profile-likelihood interval; search bounds",
    ]
    units = {}
    try:
        from sdloop.engines.pysd_model import load_model

        units = load_model(t.model).units
    except Exception:  # units are decoration only
        pass
    for _, row in cal.parameters.iterrows():
        flag = "" if row["identified"] else "; NOT IDENTIFIED: " + row["note"]
        unit = units.get(row["parameter"], "")
        lines.append(
            f"\"{row['parameter']}\" = {row['estimate']:.6g}  # {unit}; 95% CI "
            f"[{row['ci95_lower']:.4g}, {row['ci95_upper']:.4g}]; bounds [{row['bound_lower']:g}, "
            f"{row['bound_upper']:g}]{flag}")
    return "\n".join(lines) + "\n"


def history_case_text(cal: Calibration) -> str:
    """The dated inputs the fit assumed, as a case file (historical lever windows, events).

    Kept apart from the estimates so that strategy and scenario runs on a calibrated case do
    not inherit the historical policy calendar.
    """
    t = cal.targets
    lines = [
        "# Written by `sdloop calibrate " + t.name + "`: do not edit by hand; edit the [inputs]",
        f"# of calibration/targets/{t.path.name} and run `make calibrate`.",
        f"description = \"Dated inputs (historical policy calendar) under which calibration/fitted/"
        f"{t.name}.toml was estimated; fixed during the fit, not estimated.\"",
        "",
        "[parameters]",
    ]
    for name, value in t.inputs.items():
        comment = t.input_comments.get(name, "")
        lines.append(f"\"{name}\" = {value:.10g}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def posterior_csv(cal: Calibration, max_rows: int = 4000) -> str:
    """Posterior draws in natural units (thinned evenly to at most ``max_rows``), with a header
    comment giving the sampler settings and diagnostics; read with ``pandas.read_csv(comment='#')``."""
    post = cal.posterior
    draws = post.draws
    step = max(1, math.ceil(len(draws) / max_rows))
    kept = draws.iloc[::step]
    names = [p.name for p in cal.targets.parameters]
    head = [f"# Written by `sdloop calibrate {cal.targets.name}` (seed {cal.seed}): posterior draws of the parameters",
            f"# of calibration/fitted/{cal.targets.name}.toml; emcee {post.walkers} walkers, {post.burn} burn-in "
            f"steps, {post.steps - post.burn} kept; every {step}th draw of {len(draws)}.",
            f"# acceptance {post.acceptance:.3f}; " + "; ".join(
                f"{n}: tau {post.tau[n]:.1f}, ESS {post.ess[n]:.0f}, R-hat {post.rhat[n]:.3f}" for n in names)]
    return "\n".join(head) + "\n" + kept[names + ["log_prob"]].to_csv(index=False, float_format="%.8g")
