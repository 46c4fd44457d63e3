"""Out-of-sample check inside the published data: fit with the last years held back,
forecast them, and compare with a naive log-linear trend fitted to the same years.

The naive baseline for a series is the least-squares line through ``log(value)`` against
the year, over exactly the data years the model was fitted on, extrapolated to the held-out
years (constant growth at the historical average rate). It needs two training points; a
series with fewer has no baseline and says so. Errors are reported as the mean absolute
percent error over the held-out points and as the root mean square log error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from calibration.fit import FitResult


def log_linear_forecast(years, values, future) -> np.ndarray:
    """Forecast ``future`` years from a log-linear trend through ``(years, values)``."""
    x = np.asarray(years, dtype=float)
    y = np.log(np.asarray(values, dtype=float))
    if x.size < 2:
        return np.full(len(future), math.nan)
    slope, intercept = np.polyfit(x, y, 1)
    return np.exp(intercept + slope * np.asarray(future, dtype=float))


def out_of_sample_table(holdout: FitResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Point table (series, year, data, model, naive) and per-series summary of a held-out fit."""
    frame = holdout.prediction.frame
    level_free = {s.name for s in holdout.targets.series if s.scale is None}
    points, summary = [], []
    for name, rows in frame.groupby("series", sort=False):
        train = rows[rows["used"]]
        test = rows[~rows["used"]]
        if test.empty:
            continue
        if name in level_free and train.empty:
            # the level of this series is estimated from the fitted years: nothing to forecast
            summary.append({"series": name, "train_points": 0, "test_points": len(test),
                            "model_MAPE": math.nan, "naive_MAPE": math.nan, "model_RMSLE": math.nan,
                            "naive_RMSLE": math.nan,
                            "verdict": "no forecast (level estimated, no training points)"})
            continue
        naive = log_linear_forecast(train["year"], train["data"], test["year"])
        for (_, row), nv in zip(test.iterrows(), naive):
            points.append({"series": name, "year": int(row["year"]), "data": row["data"],
                           "model": row["model"], "naive": nv})
        data = test["data"].to_numpy(float)
        model = test["model"].to_numpy(float)

        def mape(f):
            return float(100 * np.mean(np.abs(f - data) / np.abs(data)))

        def rmsle(f):
            return float(np.sqrt(np.mean((np.log(f) - np.log(data)) ** 2))) if np.all(f > 0) else math.nan

        has_naive = len(train) >= 2
        m_mape, n_mape = mape(model), (mape(naive) if has_naive else math.nan)
        if not has_naive:
            verdict = f"no baseline ({len(train)} training point{'s' if len(train) != 1 else ''})"
        else:
            verdict = "model better" if m_mape < n_mape else "naive better"
        summary.append({"series": name, "train_points": len(train), "test_points": len(test),
                        "model_MAPE": m_mape, "naive_MAPE": n_mape, "model_RMSLE": rmsle(model),
                        "naive_RMSLE": rmsle(naive) if has_naive else math.nan, "verdict": verdict})
    point_columns = ["series", "year", "data", "model", "naive"]
    summary_columns = ["series", "train_points", "test_points", "model_MAPE", "naive_MAPE",
                       "model_RMSLE", "naive_RMSLE", "verdict"]
    return pd.DataFrame(points, columns=point_columns), pd.DataFrame(summary, columns=summary_columns)
