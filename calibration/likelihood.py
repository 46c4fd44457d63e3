"""The likelihood of a calibration, evaluated for a whole population of parameter sets at once.

Residuals
---------
For series ``s`` with data ``a_t`` at years ``t`` and the model's annual value ``m_t`` (mean of
the simulated variable over the year, its end-of-year value, or its integral from a start
year to the end of the year for money accumulated, times the unit conversion
``k_s``), the residual is ``r_t = log(k_s m_t) - log(a_t)`` (error "log", multiplicative) or
``r_t = k_s m_t - a_t`` (error "absolute"). With ``scale = "estimate"`` the conversion is
concentrated out (``log k_s`` = mean log ratio): the series then constrains shape, not level.

Error model
-----------
Residuals follow a stationary Gaussian AR(1) in years with marginal scale ``sigma`` and
coefficient ``rho`` per year (``rho = 0``: independent). With gaps of ``d`` years between
data points, ``r_t | r_prev ~ N(rho^d r_prev, sigma^2 (1 - rho^(2d)))``, so

    NLL_unit = n log sigma + (1/2) sum log v_t + Q / (2 sigma^2) + (n/2) log(2 pi),
    Q = sum (r_t - rho^d r_prev)^2 / v_t,   v_t = 1 - rho^(2d)   (v = 1 at a series' first point)

A *unit* is either one series with a fixed ``sigma`` (its documented measurement error) or a
group of series sharing one ``sigma``. A group's sigma is concentrated out, ``sigma^2 = Q/n``,
giving ``(n/2) log(Q/n) + n/2 + (1/2) sum log v + (n/2) log(2 pi)``; up to a constant this is
also the log of the marginal likelihood under a Jeffreys prior ``1/sigma`` (``Q^(-n/2)``), so
the same function serves maximum likelihood and the posterior. Because the scale is shared,
a series the model cannot follow raises everyone's sigma instead of being quietly ignored.
``rho = "estimate"`` is profiled over a grid (0 to 0.95 by 0.05) per unit.

Optional Gaussian priors of the target add ``(theta - mu)^2 / (2 tau^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from calibration.simulate import Batch, BatchSimulate
from calibration.targets import SeriesTarget, Targets

PENALTY = 1e10  # NLL of a run that failed or left the domain of the error model
LOG_2PI = math.log(2 * math.pi)
RHO_GRID = np.round(np.arange(0.0, 0.951, 0.05), 2)


def integral_weights(times: np.ndarray, a: float, b: float) -> np.ndarray:
    """Weights ``w`` with ``w @ v`` the integral over ``[a, b]`` of the piecewise-linear
    interpolant of ``v`` saved at ``times`` (exact, with partial first and last segments)."""
    t = np.asarray(times, dtype=float)
    w = np.zeros(len(t))
    for j in range(len(t) - 1):
        c, d = max(a, t[j]), min(b, t[j + 1])
        if d <= c:
            continue
        h = t[j + 1] - t[j]
        later = ((d - t[j]) ** 2 - (c - t[j]) ** 2) / (2 * h)  # integral of the weight of v[j + 1]
        w[j] += (d - c) - later
        w[j + 1] += later
    return w


def annual_weights(times: np.ndarray, years: Sequence[int], how: str, start: float | None = None) -> np.ndarray:
    """A (years, times) matrix: row ``i`` averages a saved trajectory over year ``years[i]``
    (trapezoid rule over the saved points in ``[y, y + 1]``), interpolates it at ``y + 1``
    ("end"), or integrates it from ``start`` to ``y + 1`` ("cumulative": money spent since)."""
    t = np.asarray(times, dtype=float)
    w = np.zeros((len(years), len(t)))
    for i, y in enumerate(years):
        if how == "cumulative":
            w[i] = integral_weights(t, float(start if start is not None else t[0]), y + 1.0)
            continue
        if how == "end":
            j = int(np.clip(np.searchsorted(t, y + 1.0), 1, len(t) - 1))
            frac = (y + 1.0 - t[j - 1]) / (t[j] - t[j - 1])
            w[i, j - 1], w[i, j] = 1 - frac, frac
            continue
        idx = np.nonzero((t >= y - 1e-9) & (t <= y + 1 + 1e-9))[0]
        if len(idx) < 2:
            j = int(np.clip(np.searchsorted(t, y + 0.5), 1, len(t) - 1))
            frac = (y + 0.5 - t[j - 1]) / (t[j] - t[j - 1])
            w[i, j - 1], w[i, j] = 1 - frac, frac
            continue
        dt = np.diff(t[idx])
        span = t[idx[-1]] - t[idx[0]]
        w[i, idx[:-1]] += dt / 2 / span
        w[i, idx[1:]] += dt / 2 / span
    return w


def as_measured(target: SeriesTarget, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A saved trajectory (times first) in the form the series measures: itself, or for
    aggregate "cumulative" its running integral from the target's ``from`` (0 before)."""
    if target.aggregate != "cumulative":
        return values
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    start = float(target.cumulative_from)
    steps = np.diff(t).reshape((-1,) + (1,) * (v.ndim - 1))
    running = np.concatenate([np.zeros_like(v[:1]), np.cumsum(steps * (v[1:] + v[:-1]) / 2, axis=0)])
    at_start = np.tensordot(integral_weights(t, float(t[0]), start), v, axes=(0, 0))
    out = running - at_start
    out[t < start] = 0.0
    return out


@dataclass
class SeriesData:
    target: SeriesTarget
    years: np.ndarray  # data years inside the window and the simulated time
    data: np.ndarray
    used: np.ndarray  # bool: enters the likelihood (before the hold-out year)
    weights: np.ndarray | None = None  # set once the saved times are known


@dataclass
class Evaluation:
    """NLL of every member of a population and, per series, the model and residuals."""

    nll: np.ndarray  # (N,)
    model: dict[str, np.ndarray]  # series -> (N, years) in data units
    residual: dict[str, np.ndarray]
    sigma: dict[str, np.ndarray]  # series -> (N,) the unit's scale
    rho: dict[str, np.ndarray]  # series -> (N,) the unit's AR(1) coefficient
    scale: dict[str, np.ndarray]  # series -> (N,) unit conversion used
    ok: np.ndarray  # (N,)


class Problem:
    """Targets, a batch simulator and the years fitted: ``nll(U)`` for a population ``U``."""

    def __init__(self, targets: Targets, simulate: BatchSimulate, *, fit_before: int | None = None) -> None:
        self.targets = targets
        self.simulate = simulate
        self.fit_before = fit_before
        self.params = list(targets.parameters)
        self.evaluations = 0
        self.series: list[SeriesData] = []
        for s in targets.series:
            data = targets.data[s.name].as_dict()
            years = [y for y in sorted(data) if (s.first_year is None or y >= s.first_year)
                     and (s.last_year is None or y <= s.last_year)]
            used = np.array([fit_before is None or y < fit_before for y in years], dtype=bool)
            self.series.append(SeriesData(s, np.array(years, dtype=int),
                                          np.array([data[y] for y in years], dtype=float), used))
        self._times: np.ndarray | None = None

    # coordinates -----------------------------------------------------------------
    def natural(self, u: Sequence[float]) -> dict[str, float]:
        return {p.name: p.from_unit(x) for p, x in zip(self.params, u)}

    def natural_arrays(self, U: np.ndarray) -> dict[str, np.ndarray]:
        U = np.clip(np.atleast_2d(U), 0.0, 1.0)
        out = {}
        for j, p in enumerate(self.params):
            if p.transform == "log":
                out[p.name] = np.exp(math.log(p.lower) + U[:, j] * (math.log(p.upper) - math.log(p.lower)))
            else:
                out[p.name] = p.lower + U[:, j] * (p.upper - p.lower)
        return out

    def unit(self, values) -> np.ndarray:
        return np.array([p.to_unit(values[p.name]) for p in self.params])

    @property
    def start(self) -> np.ndarray:
        return np.array([p.to_unit(p.start) for p in self.params])

    # simulation --------------------------------------------------------------------
    def run(self, U: np.ndarray) -> Batch:
        U = np.atleast_2d(U)
        self.evaluations += len(U)
        batch = self.simulate(self.natural_arrays(U), len(U))
        if self._times is None or len(self._times) != len(batch.times) or not np.allclose(self._times, batch.times):
            self._times = batch.times
            for sd in self.series:
                inside = (sd.years >= batch.times[0] - 1e-9) & (sd.years + 1 <= batch.times[-1] + 1e-9)
                sd.years, sd.data, sd.used = sd.years[inside], sd.data[inside], sd.used[inside]
                sd.weights = annual_weights(batch.times, sd.years, sd.target.aggregate,
                                             sd.target.cumulative_from)
        return batch

    def annual(self, batch: Batch, sd: SeriesData) -> np.ndarray:
        """(N, years) annual model values of one series, before the unit conversion."""
        return (sd.weights @ batch.values[sd.target.variable]).T

    # likelihood --------------------------------------------------------------------
    def evaluate(self, U: np.ndarray, batch: Batch | None = None) -> Evaluation:
        U = np.atleast_2d(np.asarray(U, dtype=float))
        batch = self.run(U) if batch is None else batch
        n = len(U)
        ok = batch.finite.copy()
        model, resid, scale = {}, {}, {}
        for sd in self.series:
            s = sd.target
            raw = self.annual(batch, sd)
            fit = sd.used
            with np.errstate(all="ignore"):
                if s.error == "log":
                    ok &= np.all(raw > 0, axis=1)
                    logm = np.log(np.where(raw > 0, raw, 1.0))
                    if s.scale is not None:
                        k = np.full(n, s.scale)
                    elif fit.any():
                        k = np.exp(np.mean(np.log(sd.data[fit]) - logm[:, fit], axis=1))
                    else:
                        k = np.ones(n)
                    m = k[:, None] * raw
                    r = logm + np.log(k)[:, None] - np.log(sd.data)[None, :]
                else:
                    if s.scale is not None:
                        k = np.full(n, s.scale)
                    elif fit.any():
                        den = np.sum(raw[:, fit] ** 2, axis=1)
                        k = np.where(den > 0, raw[:, fit] @ sd.data[fit] / np.where(den > 0, den, 1), 1.0)
                    else:
                        k = np.ones(n)
                    m = k[:, None] * raw
                    r = m - sd.data[None, :]
            ok &= np.all(np.isfinite(r), axis=1)
            model[s.name], resid[s.name], scale[s.name] = m, r, k
        nll, sigma, rho = self._nll(resid, n)
        values = self.natural_arrays(U)
        for p in self.params:
            if p.prior_mean is not None:
                nll = nll + (values[p.name] - p.prior_mean) ** 2 / (2 * p.prior_sd ** 2)
        ok &= np.isfinite(nll)
        nll = np.where(ok, nll, PENALTY)
        return Evaluation(nll, model, resid, sigma, rho, scale, ok)

    def units(self) -> dict[str, list[SeriesData]]:
        out: dict[str, list[SeriesData]] = {}
        for sd in self.series:
            if sd.used.any():
                out.setdefault(sd.target.unit, []).append(sd)
        return out

    def _nll(self, resid: dict[str, np.ndarray], n: int):
        total = np.zeros(n)
        sigma, rho = {}, {}
        for members in self.units().values():
            ar1 = members[0].target.ar1
            grid = RHO_GRID if ar1 == "estimate" else np.array([float(ar1)])
            q = np.zeros((len(grid), n))
            logv = np.zeros(len(grid))
            count = 0
            for sd in members:
                r = np.nan_to_num(resid[sd.target.name][:, sd.used], nan=1e6, posinf=1e6, neginf=-1e6)
                phi = grid[:, None] ** np.diff(sd.years[sd.used]).astype(float)[None, :]  # (K, n-1)
                v = 1.0 - phi ** 2
                e = r[None, :, 1:] - phi[:, None, :] * r[None, :, :-1]  # (K, N, n-1)
                q += r[None, :, 0] ** 2 + np.sum(e ** 2 / v[:, None, :], axis=2)
                logv += np.sum(np.log(v), axis=1)
                count += r.shape[1]
            fixed = members[0].target.sigma
            if fixed is None:
                s2 = np.maximum(q / count, 1e-24)
                values = 0.5 * count * np.log(s2) + 0.5 * count + 0.5 * logv[:, None] + 0.5 * count * LOG_2PI
                scales = np.sqrt(s2)
            else:
                values = count * math.log(fixed) + 0.5 * logv[:, None] + q / (2 * fixed ** 2) + 0.5 * count * LOG_2PI
                scales = np.full_like(q, fixed)
            pick = np.argmin(values, axis=0)
            cols = np.arange(n)
            total += values[pick, cols]
            for sd in members:
                sigma[sd.target.name], rho[sd.target.name] = scales[pick, cols], grid[pick]
        return total, sigma, rho

    def nll(self, U: np.ndarray) -> np.ndarray:
        """NLL of each row of ``U`` (unit coordinates, clipped to [0, 1]); PENALTY where a run fails."""
        return self.evaluate(np.clip(np.atleast_2d(U), 0.0, 1.0)).nll

    def table(self, u: Sequence[float], batch: Batch | None = None) -> tuple[pd.DataFrame, dict, dict, dict]:
        """One parameter set: rows (series, year, data, model, residual, used) and the
        per-series sigma, AR(1) coefficient and unit conversion."""
        ev = self.evaluate(np.atleast_2d(u), batch)
        rows = []
        for sd in self.series:
            name = sd.target.name
            for y, d, m, r, f in zip(sd.years, sd.data, ev.model[name][0], ev.residual[name][0], sd.used):
                rows.append({"series": name, "year": int(y), "data": d, "model": m, "residual": r, "used": bool(f)})
        frame = pd.DataFrame(rows, columns=["series", "year", "data", "model", "residual", "used"])
        pick = lambda d: {k: float(v[0]) for k, v in d.items()}  # noqa: E731
        return frame, pick(ev.sigma), pick(ev.rho), pick(ev.scale)
