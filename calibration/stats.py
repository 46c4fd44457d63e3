"""Fit statistics for one series: simulated ``s`` against actual ``a`` at the data years.

The statistics are those system-dynamics reviewers expect (Sterman 1984, "Appropriate
summary statistics for evaluating the historical fit of system dynamics models",
Dynamica 10(2): 51-66). All are computed on levels in the data's own units.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _arrays(simulated: Sequence[float], actual: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(simulated, dtype=float)
    a = np.asarray(actual, dtype=float)
    if s.shape != a.shape or s.ndim != 1 or s.size == 0:
        raise ValueError("simulated and actual must be non-empty 1-D arrays of the same length")
    return s, a


def rmse(simulated, actual) -> float:
    """Root mean square error: ``sqrt( (1/n) sum_t (s_t - a_t)^2 )``."""
    s, a = _arrays(simulated, actual)
    return float(np.sqrt(np.mean((s - a) ** 2)))


def mape(simulated, actual) -> float:
    """Mean absolute percent error: ``(100/n) sum_t |s_t - a_t| / |a_t|`` (percent)."""
    s, a = _arrays(simulated, actual)
    return float(100 * np.mean(np.abs(s - a) / np.abs(a)))


def r_squared(simulated, actual) -> float:
    """Sterman's R^2: the squared correlation coefficient ``r^2`` of simulated and actual,

    ``r = sum (s_t - s_bar)(a_t - a_bar) / sqrt( sum (s_t - s_bar)^2 sum (a_t - a_bar)^2 )``.

    It measures how much of the actual variation the simulation tracks (not the level; the
    level error shows in U^M). NaN with fewer than two points or a constant series.
    """
    s, a = _arrays(simulated, actual)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(a) == 0:
        return math.nan
    return float(np.corrcoef(s, a)[0, 1] ** 2)


def theil(simulated, actual) -> tuple[float, float, float]:
    """Theil's inequality statistics ``(U^M, U^S, U^C)``, which sum to 1.

    With means ``s_bar, a_bar``, population standard deviations
    ``S_s = sqrt((1/n) sum (s_t - s_bar)^2)``, ``S_a`` likewise, and correlation ``r``, the
    mean square error splits exactly as

        MSE = (s_bar - a_bar)^2 + (S_s - S_a)^2 + 2 (1 - r) S_s S_a

    and ``U^M = (s_bar - a_bar)^2 / MSE`` (bias), ``U^S = (S_s - S_a)^2 / MSE`` (unequal
    variation), ``U^C = 2 (1 - r) S_s S_a / MSE`` (unequal covariation: point-by-point
    scatter that a model of the systematic behaviour need not match). NaN when MSE = 0;
    with a constant series ``r`` is taken as 0 (the covariance term is then 0 anyway).
    """
    s, a = _arrays(simulated, actual)
    mse = float(np.mean((s - a) ** 2))
    if mse == 0:
        return (math.nan, math.nan, math.nan)
    s_sd, a_sd = float(np.std(s)), float(np.std(a))
    cov = float(np.mean((s - s.mean()) * (a - a.mean())))
    um = (float(s.mean()) - float(a.mean())) ** 2 / mse
    us = (s_sd - a_sd) ** 2 / mse
    uc = 2 * (s_sd * a_sd - cov) / mse  # = 2(1 - r) S_s S_a, defined also when S = 0
    return (um, us, uc)


def fit_statistics(simulated, actual) -> dict[str, float]:
    """All statistics of one series as a dict: n, RMSE, MAPE, R2, UM, US, UC."""
    s, a = _arrays(simulated, actual)
    um, us, uc = theil(s, a)
    return {"n": int(s.size), "RMSE": rmse(s, a), "MAPE": mape(s, a), "R2": r_squared(s, a),
            "UM": um, "US": us, "UC": uc}


def lag1_autocorrelation(residuals) -> float:
    """Lag-1 autocorrelation of residuals in time order, ``sum r_t r_(t-1) / sum r_t^2`` after
    removing the mean; NaN with fewer than three points."""
    r = np.asarray(residuals, dtype=float)
    if r.size < 3:
        return math.nan
    r = r - r.mean()
    den = float(np.sum(r ** 2))
    return float(np.sum(r[1:] * r[:-1]) / den) if den > 0 else math.nan


def runs_test(residuals) -> tuple[int, float, float]:
    """Wald-Wolfowitz runs test on the signs of the residuals: ``(runs, expected runs, p)``.

    With ``n1`` positive and ``n2`` negative residuals (zeros dropped), the number of runs ``R``
    has mean ``2 n1 n2 / n + 1`` and variance ``2 n1 n2 (2 n1 n2 - n) / (n^2 (n - 1))`` under
    independence; ``p`` is two-sided from the normal approximation (rough below ten points).
    Too few runs (small ``p``) is what serially correlated residuals produce.
    """
    from scipy.stats import norm

    r = np.asarray(residuals, dtype=float)
    signs = np.sign(r[r != 0])
    n1, n2 = int(np.sum(signs > 0)), int(np.sum(signs < 0))
    n = n1 + n2
    if n1 == 0 or n2 == 0 or n < 3:
        return (1 if n else 0, math.nan, math.nan)
    runs = int(1 + np.sum(signs[1:] != signs[:-1]))
    mean = 2 * n1 * n2 / n + 1
    var = 2 * n1 * n2 * (2 * n1 * n2 - n) / (n ** 2 * (n - 1))
    if var <= 0:
        return (runs, mean, math.nan)
    z = (runs - mean) / math.sqrt(var)
    return (runs, mean, float(2 * norm.sf(abs(z))))
