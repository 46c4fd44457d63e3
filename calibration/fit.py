"""Fitting: a Gaussian likelihood with a per-series error scale, maximized by bounded
multi-start local searches (scipy), deterministic for a given random generator.

The likelihood
--------------
For series ``s`` with data ``a_t`` at years ``t`` and the model's annual value ``m_t``
(mean of the simulated variable over the year, or its end-of-year value, times the
series' unit conversion ``k_s``), the residual is ``r_t = log(k_s m_t) - log(a_t)`` (error
"log": a multiplicative error, the natural choice for series spanning orders of magnitude)
or ``r_t = k_s m_t - a_t`` (error "absolute"). Residuals are independent normal with a
per-series scale ``sigma_s``, so the negative log-likelihood is

    NLL = sum_s [ n_s log sigma_s + SSR_s / (2 sigma_s^2) + (n_s / 2) log(2 pi) ]
          + sum_j (theta_j - mu_j)^2 / (2 tau_j^2)          (optional Gaussian priors)

When a target gives ``sigma = "estimate"`` the scale is concentrated out at its maximum,
``sigma_s^2 = SSR_s / n_s``, leaving ``(n_s / 2) log(SSR_s / n_s) + n_s / 2 + ...``: each series
is then weighted by how well the model can fit it, so a series the structure cannot follow
does not drown the others. Thin series (fewer than five points) must state ``sigma``.
When a target gives ``scale = "estimate"`` the conversion ``k_s`` is concentrated out too
(the series then constrains the shape of the trajectory, not its level).

The search
----------
Parameters are searched in ``u`` in [0, 1]^p (linear or logarithmic in the bounds). Starts:
the target's start values, then Latin-hypercube draws from ``rng``. Each start runs scipy's
bounded L-BFGS-B (finite-difference gradients), falling back to bounded Nelder-Mead where
a MIN/MAX kink of the model stops the line search; the best point is polished by one more
search. Measured on the NEV targets, L-BFGS-B needed 125 runs, Nelder-Mead 116 and Powell
(Vensim's method) 324 for the same optimum, and L-BFGS-B reached the lowest value. A fit is
*converged* when the final search ended on its tolerance, not on the evaluation budget.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import multiprocessing
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from tqdm import tqdm

from calibration.targets import Targets
from sdloop.errors import SdloopError

PENALTY = 1e10  # objective of a run that failed or left the domain of the error model
LOG_2PI = math.log(2 * math.pi)
BOUND_TOLERANCE = 1e-3  # in unit coordinates: within 0.1% of the range counts as "at the bound"

Simulate = Callable[[Mapping[str, float]], pd.DataFrame]


class ModelSimulator:
    """``simulate(params) -> DataFrame`` for a model file with a base case.

    Picklable: a worker process reloads the model (from the translation cache) on first use.
    Any callable with this signature can replace it (a vectorized engine, a test double).
    """

    def __init__(self, path, base: Mapping[str, float], *, final_time: float,
                 columns: Sequence[str]) -> None:
        self.path = str(path)
        self.base = dict(base)
        self.final_time = float(final_time)
        self.columns = list(columns)
        self._model = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    @property
    def model(self):
        if self._model is None:
            from sdloop.engines.pysd_model import load_model

            self._model = load_model(self.path)
        return self._model

    def __call__(self, params: Mapping[str, float]) -> pd.DataFrame:
        return self.model.run({**self.base, **params}, final_time=self.final_time, columns=self.columns)


def simulator_for(model, targets: Targets) -> Simulate:
    """The default simulator: ``model`` (an sdloop Model) under the targets' base case."""
    last = max(y for s in targets.series for y in targets.data[s.name].years)
    return ModelSimulator(model.path, targets.base_parameters(model), final_time=last + 1,
                          columns=sorted({s.variable for s in targets.series}))


@dataclass
class Prediction:
    """Model and data for every series at the data years (in the data's units)."""

    nll: float
    ok: bool
    frame: pd.DataFrame | None  # columns: series, year, data, model, residual, used
    sigma: dict[str, float]
    scale: dict[str, float]


class Problem:
    """The objective of one calibration: targets, a simulator and which years are fitted."""

    def __init__(self, targets: Targets, simulate: Simulate, *, fit_before: int | None = None) -> None:
        self.targets = targets
        self.simulate = simulate
        self.fit_before = fit_before
        self.params = list(targets.parameters)
        self._cache: dict[tuple, tuple[float, pd.DataFrame | None]] = {}
        self._weights: dict | None = None
        self.evaluations = 0

    # coordinates -----------------------------------------------------------------
    def natural(self, u: Sequence[float]) -> dict[str, float]:
        return {p.name: p.from_unit(x) for p, x in zip(self.params, u)}

    def unit(self, values: Mapping[str, float]) -> np.ndarray:
        return np.array([p.to_unit(values[p.name]) for p in self.params])

    @property
    def start(self) -> np.ndarray:
        return np.array([p.to_unit(p.start) for p in self.params])

    # simulation --------------------------------------------------------------------
    def run(self, u: Sequence[float]) -> pd.DataFrame | None:
        key = tuple(np.round(np.asarray(u, dtype=float), 12))
        if key in self._cache:
            return self._cache[key][1]
        self.evaluations += 1
        try:
            frame = self.simulate(self.natural(u))
        except SdloopError:
            frame = None
        if len(self._cache) > 2000:
            self._cache.clear()
        self._cache[key] = (math.nan, frame)
        return frame

    def _annual(self, frame: pd.DataFrame, variable: str, years: Sequence[int], how: str) -> np.ndarray:
        t = frame.index.to_numpy(dtype=float)
        v = frame[variable].to_numpy(dtype=float)
        out = np.empty(len(years))
        for i, y in enumerate(years):
            if how == "end":
                out[i] = np.interp(y + 1.0, t, v)
            else:
                mask = (t >= y - 1e-9) & (t <= y + 1 + 1e-9)
                if mask.sum() < 2:
                    out[i] = np.interp(y + 0.5, t, v)
                else:
                    tt, vv = t[mask], v[mask]
                    out[i] = float(np.sum((vv[1:] + vv[:-1]) * np.diff(tt)) / 2 / (tt[-1] - tt[0]))
        return out

    def years(self, name: str, frame: pd.DataFrame | None = None) -> list[int]:
        """Data years of a series inside its window and inside the simulated time."""
        s = next(x for x in self.targets.series if x.name == name)
        series = self.targets.data[name]
        years = [y for y in series.years if (s.first_year is None or y >= s.first_year)
                 and (s.last_year is None or y <= s.last_year)]
        if frame is not None:
            t0, t1 = float(frame.index[0]), float(frame.index[-1])
            years = [y for y in years if y >= t0 - 1e-9 and y + 1 <= t1 + 1e-9]
        return years

    def used(self, year: int) -> bool:
        return self.fit_before is None or year < self.fit_before

    def predict(self, u: Sequence[float], frame: pd.DataFrame | None = None) -> Prediction:
        """Annual model values, residuals and the NLL at ``u`` (unit coordinates)."""
        frame = self.run(u) if frame is None else frame
        if frame is None:
            return Prediction(PENALTY, False, None, {}, {})
        rows, nll, ok, sigmas, scales = [], 0.0, True, {}, {}
        for s in self.targets.series:
            series = self.targets.data[s.name]
            years = self.years(s.name, frame)
            if not years:
                continue
            data = np.array([series.as_dict()[y] for y in years])
            raw = self._annual(frame, s.variable, years, s.aggregate)
            fit = np.array([self.used(y) for y in years])
            if s.error == "log" and np.any(raw <= 0):
                ok = False
                continue
            if s.scale is not None:
                k = s.scale
            elif not fit.any():
                k = 1.0
            elif s.error == "log":
                k = float(np.exp(np.mean(np.log(data[fit]) - np.log(raw[fit]))))
            else:
                denom = float(np.sum(raw[fit] ** 2))
                k = float(np.sum(data[fit] * raw[fit]) / denom) if denom > 0 else 1.0
            model = k * raw
            resid = np.log(model) - np.log(data) if s.error == "log" else model - data
            n = int(fit.sum())
            ssr = float(np.sum(resid[fit] ** 2))
            if s.sigma is None:
                sigma = math.sqrt(max(ssr / n, 1e-12)) if n else math.nan
                if n:
                    nll += 0.5 * n * math.log(sigma ** 2) + 0.5 * n + 0.5 * n * LOG_2PI
            else:
                sigma = s.sigma
                nll += n * math.log(sigma) + ssr / (2 * sigma ** 2) + 0.5 * n * LOG_2PI
            sigmas[s.name], scales[s.name] = sigma, k
            rows += [{"series": s.name, "year": y, "data": d, "model": m, "residual": r, "used": bool(f)}
                     for y, d, m, r, f in zip(years, data, model, resid, fit)]
        values = self.natural(u)
        for p in self.params:
            if p.prior_mean is not None:
                nll += (values[p.name] - p.prior_mean) ** 2 / (2 * p.prior_sd ** 2)
        if not ok or not math.isfinite(nll):
            return Prediction(PENALTY, False, pd.DataFrame(rows), sigmas, scales)
        return Prediction(nll, True, pd.DataFrame(rows), sigmas, scales)

    def nll(self, u: Sequence[float]) -> float:
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        key = tuple(np.round(u, 12))
        cached = self._cache.get(key)
        if cached is not None and not math.isnan(cached[0]):
            return cached[0]
        value = self.predict(u).nll
        frame = self._cache.get(key, (None, None))[1]
        self._cache[key] = (value, frame)
        return value


@dataclass
class StartResult:
    start: np.ndarray
    u: np.ndarray
    nll: float
    converged: bool
    evaluations: int
    message: str


@dataclass
class FitResult:
    """The outcome of ``fit``: estimates, convergence, and the data behind them."""

    targets: Targets
    params: dict[str, float]
    u: np.ndarray
    nll: float
    converged: bool
    message: str
    starts: list[StartResult]
    bounds_hit: dict[str, str]  # name -> "lower" / "upper"
    prediction: Prediction
    evaluations: int
    seconds: float
    fit_before: int | None = None
    problem: Problem | None = field(default=None, repr=False)

    @property
    def agreeing_starts(self) -> int:
        """Starts that ended within 0.1 log-likelihood units of the best."""
        return sum(1 for s in self.starts if s.nll <= self.nll + 0.1)

    def starts_table(self) -> pd.DataFrame:
        rows = []
        for i, s in enumerate(self.starts):
            row = {"start": i, "nll": s.nll, "converged": s.converged, "evaluations": s.evaluations}
            row.update({p.name: p.from_unit(x) for p, x in zip(self.targets.parameters, s.u)})
            rows.append(row)
        return pd.DataFrame(rows)


def latin_hypercube(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in [0, 1]^d, one per row, stratified in every coordinate."""
    if n <= 0:
        return np.empty((0, d))
    cells = np.stack([rng.permutation(n) for _ in range(d)], axis=1)
    return (cells + rng.uniform(size=(n, d))) / n


def local_search(problem: Problem, u0: Sequence[float], *, free: Sequence[int] | None = None,
                 fixed: Mapping[int, float] | None = None, maxfev: int = 600) -> StartResult:
    """One bounded local search from ``u0`` over the ``free`` coordinates (others fixed).

    L-BFGS-B with forward-difference gradients (step 1e-5 of the range) first; if it stops
    abnormally (a kink of a MIN/MAX in the model upsets the line search), a bounded
    Nelder-Mead search continues from where it stopped and decides convergence.
    """
    u0 = np.clip(np.asarray(u0, dtype=float), 0.0, 1.0)
    free = list(range(len(u0))) if free is None else list(free)
    base = u0.copy()
    for i, v in (fixed or {}).items():
        base[i] = v
    before = problem.evaluations

    def full(x):
        u = base.copy()
        u[free] = np.clip(x, 0.0, 1.0)
        return u

    if not free:
        value = problem.nll(base)
        return StartResult(u0, base, value, value < PENALTY, problem.evaluations - before, "nothing free")
    bounds = [(0.0, 1.0)] * len(free)
    res = minimize(lambda x: problem.nll(full(x)), base[free], method="L-BFGS-B", bounds=bounds,
                   options={"eps": 1e-5, "ftol": 1e-8, "gtol": 1e-5, "maxfun": maxfev})
    message = f"L-BFGS-B: {res.message}"
    success = bool(res.success)
    left = maxfev - (problem.evaluations - before)
    if not success and left >= 10:
        res = minimize(lambda x: problem.nll(full(x)), np.clip(res.x, 0, 1), method="Nelder-Mead",
                       bounds=bounds, options={"xatol": 1e-4, "fatol": 1e-4, "maxfev": left})
        message += f"; Nelder-Mead: {res.message}"
        success = bool(res.success)
    u = full(res.x)
    value = problem.nll(u)
    return StartResult(u0, u, value, success and value < PENALTY, problem.evaluations - before, message)


def _search_task(args):
    problem, u0, maxfev = args
    return local_search(problem, u0, maxfev=maxfev)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def parallel_map(function, tasks: list, *, workers: int, desc: str, progress: bool):
    """``[function(t) for t in tasks]`` in order, over ``workers`` processes (fork) when > 1."""
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False, unit="task")
    try:
        if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            out = []
            for task in tasks:
                out.append(function(task))
                bar.update()
            return out
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            out = []
            for result in pool.map(function, tasks):
                out.append(result)
                bar.update()
            return out
    finally:
        bar.close()


def fit(model, targets: Targets, *, rng: np.random.Generator, starts: int = 6,
        fit_before: int | None = None, maxfev: int = 600, workers: int = 1,
        progress: bool = True, simulate: Simulate | None = None) -> FitResult:
    """Maximum-likelihood fit of ``targets`` to ``model`` (an sdloop Model, or None with ``simulate``).

    ``starts`` searches: the target start values plus ``starts - 1`` Latin-hypercube draws
    from ``rng`` (so the result is a deterministic function of the generator's state).
    ``fit_before``: only data years before it enter the likelihood (out-of-sample checks).
    """
    began = time.perf_counter()
    if simulate is None:
        targets = targets.checked(model)
        simulate = simulator_for(model, targets)
    problem = Problem(targets, simulate, fit_before=fit_before)
    u_starts = np.vstack([problem.start[None, :], latin_hypercube(max(0, starts - 1), len(problem.params), rng)])
    results = parallel_map(_search_task, [(problem, u0, maxfev) for u0 in u_starts], workers=workers,
                           desc=f"fit {targets.name}", progress=progress)
    best = min(results, key=lambda r: r.nll)
    # polish: a second search from the best point confirms it is a local optimum
    polish = local_search(problem, best.u, maxfev=maxfev)
    if polish.nll <= best.nll:
        best = StartResult(best.start, polish.u, polish.nll, polish.converged,
                           best.evaluations + polish.evaluations, polish.message)
    evaluations = sum(r.evaluations for r in results) + polish.evaluations
    prediction = problem.predict(best.u)
    bounds_hit = {}
    for p, x in zip(problem.params, best.u):
        if x <= BOUND_TOLERANCE:
            bounds_hit[p.name] = "lower"
        elif x >= 1 - BOUND_TOLERANCE:
            bounds_hit[p.name] = "upper"
    converged = best.converged and prediction.ok
    return FitResult(
        targets=targets, params=problem.natural(best.u), u=best.u, nll=best.nll, converged=converged,
        message=best.message if prediction.ok else "the best point gives an invalid simulation",
        starts=results, bounds_hit=bounds_hit, prediction=prediction, evaluations=evaluations,
        seconds=time.perf_counter() - began, fit_before=fit_before, problem=problem,
    )
