"""One calibration from a target file to results in memory (writing is in ``report``).

``calibrate`` fits, profiles, runs the out-of-sample check and, optionally, emcee. It
raises FitFailed (nothing written) when the fit does not converge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.errors import FitFailed
from calibration.fit import FitResult, fit
from calibration.stats import fit_statistics
from calibration.targets import Targets, load_targets
from calibration.uncertainty import Profile, band_points, parameter_table, posterior, profile_likelihood
from calibration.validate import out_of_sample_table

LEVEL = 0.95


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
    posterior: pd.DataFrame | None
    seconds: dict[str, float] = field(default_factory=dict)


def statistics_table(result: FitResult) -> pd.DataFrame:
    """Per-series fit statistics (data units) with the error model and fitted scales."""
    rows = []
    frame = result.prediction.frame
    for s in result.targets.series:
        part = frame[(frame["series"] == s.name) & frame["used"]]
        if part.empty:
            continue
        stats = fit_statistics(part["model"], part["data"])
        rows.append({"series": s.name, "variable": s.variable, "unit": result.targets.data[s.name].unit,
                     "years": f"{part['year'].min()}-{part['year'].max()}", **stats,
                     "error": s.error, "sigma": result.prediction.sigma.get(s.name),
                     "sigma_estimated": s.sigma is None,
                     "scale": result.prediction.scale.get(s.name), "scale_estimated": s.scale is None})
    return pd.DataFrame(rows)


def calibrate(targets: str | Path | Targets, *, seed: int = 1, starts: int = 6,
              holdout_from: int | None = None, workers: int = 1, mcmc_steps: int = 0,
              progress: bool = True, maxfev: int = 600) -> Calibration:
    """Fit ``targets`` (a path or loaded Targets), then profile, validate and sample."""
    from sdloop.engines.pysd_model import load_model

    targets = load_targets(targets) if not isinstance(targets, Targets) else targets
    model = load_model(targets.model)
    targets = targets.checked(model)
    rng = np.random.default_rng(seed)
    seconds = {}

    began = time.perf_counter()
    result = fit(model, targets, rng=rng, starts=starts, workers=workers, progress=progress, maxfev=maxfev)
    seconds["fit"] = time.perf_counter() - began
    if not result.converged:
        raise FitFailed(f"the fit did not converge ({result.message}; best NLL {result.nll:.6g}); "
                        "no fitted file written. Try more --starts or check the bounds",
                        file=targets.path)

    began = time.perf_counter()
    profiles = profile_likelihood(result, level=LEVEL, workers=workers, progress=progress)
    seconds["profiles"] = time.perf_counter() - began
    better = min(float(p.points["delta"].min()) for p in profiles)
    if better < -0.05:
        raise FitFailed(f"a profile search found a point {-better:.3g} log-likelihood units better than "
                        "the fit: the fit did not find the optimum. Try more --starts", file=targets.path)

    problem = result.problem
    best_frame = problem.run(result.u)
    band_frames = []  # (trajectory, per-series scales) of every parameter set in the profile region
    for u in band_points(profiles, result, level=LEVEL):
        frame = problem.run(u)
        if frame is not None:
            band_frames.append((frame, problem.predict(u, frame).scale))

    holdout_year = targets.holdout_from if holdout_from is None else holdout_from
    began = time.perf_counter()
    holdout = fit(model, targets, rng=np.random.default_rng(seed), starts=max(2, starts // 2),
                  fit_before=holdout_year, workers=workers, progress=progress, maxfev=maxfev)
    seconds["holdout"] = time.perf_counter() - began
    points, summary = out_of_sample_table(holdout)
    holdout_frame = holdout.problem.run(holdout.u)

    draws = None
    if mcmc_steps > 0:
        began = time.perf_counter()
        draws = posterior(result, rng=np.random.default_rng(seed + 1), steps=mcmc_steps, progress=progress)
        seconds["mcmc"] = time.perf_counter() - began

    return Calibration(
        targets=targets, seed=seed, starts=starts, result=result, profiles=profiles,
        parameters=parameter_table(result, profiles, level=LEVEL), statistics=statistics_table(result),
        holdout=holdout, holdout_points=points, holdout_summary=summary, best_frame=best_frame,
        band_frames=band_frames, holdout_frame=holdout_frame, posterior=draws, seconds=seconds,
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
