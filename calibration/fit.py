"""Maximum likelihood: a population optimizer on the vectorized engine, then a local polish.

The likelihood is in ``calibration.likelihood``. Parameters are searched in ``u`` in [0, 1]^p
(linear or logarithmic in the bounds). Each *start* is one run of scipy's
``differential_evolution`` with ``vectorized=True``: every generation (a population of
``popsize x p`` parameter sets) is one engine call. The first start includes the target's
start values in its initial population; the others are seeded from ``rng``. Each start's best
point is polished by a bounded L-BFGS-B whose objective and forward-difference gradient come
from one engine call of ``p + 1`` runs. A fit is *converged* when the best start's evolution
met its tolerance (not the generation budget) and its polish ended normally; the report says
how many starts agree. Starts run in parallel processes; deterministic for a given generator
state whatever the number of workers (tested).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution, minimize
from tqdm import tqdm

from calibration.likelihood import PENALTY, Problem
from calibration.simulate import default_simulator
from calibration.targets import Targets

BOUND_TOLERANCE = 1e-3  # in unit coordinates: within 0.1% of the range counts as "at the bound"
GRADIENT_STEP = 1e-6  # forward-difference step in unit coordinates


@dataclass
class Prediction:
    """Model and data for every series at the data years (in the data's units)."""

    nll: float
    ok: bool
    frame: pd.DataFrame  # columns: series, year, data, model, residual, used
    sigma: dict[str, float]
    scale: dict[str, float]
    rho: dict[str, float] = field(default_factory=dict)


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
    engine: str = "numpy"

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


def predict(problem: Problem, u: Sequence[float]) -> Prediction:
    frame, sigma, rho, scale = problem.table(u)
    nll = float(problem.nll(np.atleast_2d(u))[0])
    return Prediction(nll, nll < PENALTY, frame, sigma, scale, rho)


def local_search(problem: Problem, u0: Sequence[float], *, free: Sequence[int] | None = None,
                 fixed: Mapping[int, float] | None = None, maxiter: int = 60) -> StartResult:
    """Bounded L-BFGS-B over the ``free`` coordinates (others fixed); value and gradient of
    each iterate come from one engine call of ``len(free) + 1`` runs."""
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
        value = float(problem.nll(base)[0])
        return StartResult(u0, base, value, value < PENALTY, problem.evaluations - before, "nothing free")

    def value_and_gradient(x):
        u = full(x)
        steps = np.where(u[free] + GRADIENT_STEP <= 1.0, GRADIENT_STEP, -GRADIENT_STEP)
        U = np.repeat(u[None, :], len(free) + 1, axis=0)
        U[1 + np.arange(len(free)), free] += steps
        values = problem.nll(U)
        if values[0] >= PENALTY:
            return PENALTY, np.zeros(len(free))
        grad = (values[1:] - values[0]) / steps
        return float(values[0]), np.where(np.isfinite(grad) & (values[1:] < PENALTY), grad, 0.0)

    res = minimize(value_and_gradient, base[free], jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(free),
                   options={"ftol": 1e-10, "gtol": 1e-6, "maxiter": maxiter, "maxfun": 2 * maxiter})
    u = full(res.x)
    value = float(problem.nll(u)[0])
    ok = bool(res.success) or "ABNORMAL" in str(res.message).upper()  # a MIN/MAX kink stops the line search
    return StartResult(u0, u, value, ok and value < PENALTY, problem.evaluations - before,
                       f"L-BFGS-B: {res.message}")


def evolve(problem: Problem, *, seed: int, x0: np.ndarray | None, popsize: int, maxiter: int,
           tol: float, progress: bool, desc: str) -> StartResult:
    """One differential evolution, each generation a single vectorized call."""
    before = problem.evaluations
    p = len(problem.params)
    bar = tqdm(total=maxiter, desc=desc, disable=not progress, leave=False, unit="gen")

    def objective(X):  # X: (p, S) with vectorized=True
        return problem.nll(np.asarray(X).T)

    def tick(*args, **kwargs) -> None:  # returns None: a true value would stop the evolution
        bar.update()  # (tqdm's update returns True whenever it redraws the bar)

    try:
        res = differential_evolution(objective, [(0.0, 1.0)] * p, vectorized=True, updating="deferred",
                                     popsize=popsize, maxiter=maxiter, tol=tol, atol=1e-6, seed=seed,
                                     init="latinhypercube", x0=x0, polish=False, mutation=(0.5, 1.0),
                                     recombination=0.7, callback=tick)
    finally:
        bar.close()
    return StartResult(np.asarray(x0) if x0 is not None else np.full(p, np.nan), np.clip(res.x, 0, 1),
                       float(res.fun), bool(res.success), problem.evaluations - before, f"DE: {res.message}")


def _evolve_task(task) -> StartResult:
    problem, seed, x0, popsize, maxiter, tol, progress, desc = task
    evolved = evolve(problem, seed=seed, x0=x0, popsize=popsize, maxiter=maxiter, tol=tol, progress=progress,
                     desc=desc)
    polish = local_search(problem, evolved.u)
    u, value = (polish.u, polish.nll) if polish.nll <= evolved.nll else (evolved.u, evolved.nll)
    return StartResult(evolved.start, u, value, evolved.converged and polish.converged and value < PENALTY,
                       evolved.evaluations + polish.evaluations, f"{evolved.message}; polish {polish.message}")


def make_problem(targets: Targets, *, fit_before: int | None = None, simulate=None) -> tuple[Problem, str]:
    """The problem on the engine (or PySD with the reason when the engine cannot compile it)."""
    from sdloop.engines.pysd_model import load_model

    note = ""
    if simulate is None:
        model = load_model(targets.model)
        targets = targets.checked(model)
        last = max(y for s in targets.series for y in targets.data[s.name].years)
        simulate, note = default_simulator(targets.model, targets.base_parameters(model), final_time=last + 1,
                                           columns=sorted({s.variable for s in targets.series}))
    return Problem(targets, simulate, fit_before=fit_before), note


def fit(model, targets: Targets, *, rng: np.random.Generator, starts: int = 2, fit_before: int | None = None,
        popsize: int = 10, maxiter: int = 250, tol: float = 0.01, progress: bool = True,
        simulate=None, problem: Problem | None = None, workers: int = 1) -> FitResult:
    """Maximum-likelihood fit of ``targets`` (``model`` is unused: the engine reads ``targets.model``).

    ``starts`` differential evolutions (seeds drawn from ``rng``; run in ``workers`` processes),
    the best polished. Results do not depend on ``workers``.
    ``fit_before``: only data years before it enter the likelihood (out-of-sample checks).
    """
    began = time.perf_counter()
    note = ""
    if problem is None:
        problem, note = make_problem(targets, fit_before=fit_before, simulate=simulate)
    targets = problem.targets
    seeds = [int(s) for s in rng.integers(0, 2 ** 31 - 1, size=max(1, starts))]
    tasks = [(problem, seed, problem.start if i == 0 else None, popsize, maxiter, tol,
              progress and (i == 0 or workers <= 1), f"fit {targets.name} ({i + 1}/{len(seeds)})")
             for i, seed in enumerate(seeds)]
    results = parallel_map(_evolve_task, tasks, workers=workers, desc=f"fit {targets.name}", progress=False)
    problem.evaluations += sum(r.evaluations for r in results) if workers > 1 and len(tasks) > 1 else 0
    best = min(results, key=lambda r: r.nll)
    u, value, converged, message = best.u, best.nll, best.converged, best.message
    prediction = predict(problem, u)
    bounds_hit = {}
    for p, x in zip(problem.params, u):
        if x <= BOUND_TOLERANCE:
            bounds_hit[p.name] = "lower"
        elif x >= 1 - BOUND_TOLERANCE:
            bounds_hit[p.name] = "upper"
    return FitResult(
        targets=targets, params=problem.natural(u), u=u, nll=value, converged=converged and prediction.ok,
        message=message if prediction.ok else "the best point gives an invalid simulation", starts=results,
        bounds_hit=bounds_hit, prediction=prediction, evaluations=problem.evaluations,
        seconds=time.perf_counter() - began, fit_before=fit_before, problem=problem,
        engine="pysd (" + note + ")" if note else getattr(getattr(problem.simulate, "engine", None), "kind", "numpy"),
    )


def default_workers() -> int:
    import os

    return max(1, min(2, os.cpu_count() or 1))


_SHARED: tuple = ()  # (function, tasks) for forked workers: inherited, never pickled


def _shared_call(i: int):
    function, tasks = _SHARED
    return function(tasks[i])


def parallel_map(function, tasks: list, *, workers: int, desc: str, progress: bool):
    """``[function(t) for t in tasks]`` in order, over ``workers`` forked processes when > 1.

    Tasks reach the workers through fork (they hold compiled engine code, which does not
    pickle); only the results travel back.
    """
    global _SHARED
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False, unit="task")
    try:
        if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            out = []
            for task in tasks:
                out.append(function(task))
                bar.update()
            return out
        _SHARED = (function, tasks)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            out = []
            for result in pool.map(_shared_call, range(len(tasks))):
                out.append(result)
                bar.update()
            return out
    finally:
        _SHARED = ()
        bar.close()
