"""Out-of-sample check inside the published data: fit with the last years held back, forecast
them, and compare with three naive benchmarks fitted to the same training years.

- **log-linear trend**: least squares of ``log(value)`` on the year (constant growth);
- **random walk**: the last training value carried forward (no change);
- **logistic** (series marked ``saturates``, shares with a ceiling): ``K / (1 + exp(-r (t - t0)))``
  fitted to the training points by least squares in logs, ``K`` at most 100 (percent) and at
  least the largest training value.

A series with fewer than ``MIN_TRAINING`` training points is *not testable* (a trend through
two points says nothing); a level-free series (``scale = "estimate"``) needs training points
to have a level at all. Errors: RMS log error and MAPE over the held-out points. The verdict
names every benchmark the model loses to; a loss is reported as a loss. A series measured only in
hold-out years is named by ``holdout_only_series``: the full fit learns from it what the hold-out
fit never sees, so the hold-out does not test what it sets.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from calibration.fit import FitResult

MIN_TRAINING = 4
BENCHMARKS = ("trend", "random_walk", "logistic")


def log_linear_forecast(years, values, future) -> np.ndarray:
    """Forecast ``future`` years from a log-linear trend through ``(years, values)``."""
    x = np.asarray(years, dtype=float)
    y = np.log(np.asarray(values, dtype=float))
    if x.size < 2:
        return np.full(len(future), math.nan)
    slope, intercept = np.polyfit(x, y, 1)
    return np.exp(intercept + slope * np.asarray(future, dtype=float))


def random_walk_forecast(years, values, future) -> np.ndarray:
    """The last observed value, for every future year."""
    order = np.argsort(np.asarray(years))
    return np.full(len(future), float(np.asarray(values, dtype=float)[order][-1]))


def logistic_forecast(years, values, future, ceiling: float = 100.0) -> np.ndarray:
    """A three-parameter logistic through the points (least squares in logs), ``K`` in
    [max(values), ceiling]; NaN with fewer than three points."""
    x = np.asarray(years, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.size < 3:
        return np.full(len(future), math.nan)
    top = float(y.max())
    x0 = x.mean()

    def curve(theta, t):
        k, r, mid = theta
        return k / (1 + np.exp(-r * (t - x0 - mid)))

    def residuals(theta):
        return np.log(curve(theta, x)) - np.log(y)

    slope = np.polyfit(x, np.log(y), 1)[0]
    starts = [(min(ceiling, 2 * top), max(slope, 0.05), 0.0), (min(ceiling, 1.2 * top), max(slope, 0.05), -2.0),
              (ceiling, max(slope, 0.05), 5.0)]
    lower, upper = (top * (1 + 1e-9), 1e-4, -60.0), (max(ceiling, top * (1 + 2e-9)), 5.0, 60.0)
    best = None
    for start in starts:
        start = np.clip(start, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
        fit = least_squares(residuals, start, bounds=(lower, upper))
        if best is None or fit.cost < best.cost:
            best = fit
    return curve(best.x, np.asarray(future, dtype=float))


def ceiling(unit: str) -> float:
    """The largest value a share can take in its unit: 100 for percent, else 1."""
    return 100.0 if "percent" in unit.lower() else 1.0


def _errors(forecast: np.ndarray, data: np.ndarray) -> tuple[float, float]:
    if not np.all(np.isfinite(forecast)):
        return math.nan, math.nan
    mape = float(100 * np.mean(np.abs(forecast - data) / np.abs(data)))
    rmsle = float(np.sqrt(np.mean((np.log(forecast) - np.log(data)) ** 2))) if np.all(forecast > 0) else math.nan
    return mape, rmsle


def out_of_sample_table(holdout: FitResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Point table (series, year, data, model, each benchmark) and per-series summary."""
    frame = holdout.prediction.frame
    targets = {s.name: s for s in holdout.targets.series}
    points, summary = [], []
    for name, rows in frame.groupby("series", sort=False):
        s = targets[name]
        train, test = rows[rows["used"]], rows[~rows["used"]]
        if test.empty:
            continue
        row = {"series": name, "train_points": len(train), "test_points": len(test)}
        data = test["data"].to_numpy(float)
        if len(train) < MIN_TRAINING or (s.scale is None and train.empty):
            verdict = (f"not testable ({len(train)} training point{'s' if len(train) != 1 else ''}; "
                       f"at least {MIN_TRAINING} needed)")
            if train.empty:
                verdict = ("not testable, and the hold-out is not clean for it (0 training points: every point "
                           "is a hold-out year, so only the full fit sees it)")
            row.update({"model_RMSLE": math.nan, "model_MAPE": math.nan, "verdict": verdict})
            for b in BENCHMARKS:
                row[f"{b}_RMSLE"] = row[f"{b}_MAPE"] = math.nan
            summary.append(row)
            continue
        forecasts = {"trend": log_linear_forecast(train["year"], train["data"], test["year"]),
                     "random_walk": random_walk_forecast(train["year"], train["data"], test["year"]),
                     "logistic": (logistic_forecast(train["year"], train["data"], test["year"],
                                                    ceiling=ceiling(holdout.targets.data[name].unit))
                                  if s.saturates else np.full(len(test), math.nan))}
        model = test["model"].to_numpy(float)
        row["model_MAPE"], row["model_RMSLE"] = _errors(model, data)
        losses = []
        for b, f in forecasts.items():
            row[f"{b}_MAPE"], row[f"{b}_RMSLE"] = _errors(f, data)
            if math.isfinite(row[f"{b}_RMSLE"]) and not row["model_RMSLE"] < row[f"{b}_RMSLE"]:
                losses.append(b.replace("_", " "))
        tried = [b.replace("_", " ") for b in BENCHMARKS if math.isfinite(row[f"{b}_RMSLE"])]
        row["verdict"] = (f"model loses to {', '.join(losses)}" if losses else
                          f"model beats {', '.join(tried)}")
        summary.append(row)
        for (_, r), *fs in zip(test.iterrows(), *forecasts.values()):
            points.append({"series": name, "year": int(r["year"]), "data": r["data"], "model": r["model"],
                           **dict(zip(BENCHMARKS, fs))})
    point_columns = ["series", "year", "data", "model", *BENCHMARKS]
    summary_columns = ["series", "train_points", "test_points", "model_RMSLE",
                       *[f"{b}_RMSLE" for b in BENCHMARKS], "model_MAPE", *[f"{b}_MAPE" for b in BENCHMARKS],
                       "verdict"]
    return pd.DataFrame(points, columns=point_columns), pd.DataFrame(summary, columns=summary_columns)


def holdout_only_series(summary: pd.DataFrame) -> list[str]:
    """Series whose every point is a hold-out year (no training point): fitted in the full fit only."""
    return [str(n) for n in summary.loc[summary["train_points"] == 0, "series"]]
