"""Steady states and local stability of a model's stocks.

The stock derivatives ``dS/dt = f(S)`` come from the structure: each stock's net flow with
every auxiliary substituted by its equation and every constant by its value. INITIAL
values are fixed at their initial-time values; a DELAY FIXED output equals its input in a
steady state. ``equilibria`` solves ``f(S) = 0`` with sympy when the system is small and
free of lookups and IF THEN ELSE, and numerically (``scipy.optimize.root`` from the
initial state, the final state of a run and seeded random starts) otherwise.
``eigenvalues_along`` evaluates the Jacobian at chosen times of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import sympy
from scipy import optimize

from sdloop.engines.euler import Evaluator, Trajectory
from sdloop.structure.lookups import lambdify_modules, LookupFunction
from sdloop.structure.symbols import TIME
from sdloop.structure.build import ModelStructure

SYMBOLIC_MAX_STOCKS = 4


@dataclass(frozen=True)
class StockSystem:
    """``derivatives[i]`` is d(stocks[i])/dt as a sympy expression of the stock symbols."""

    stocks: tuple[str, ...]
    symbols: tuple[sympy.Symbol, ...]
    derivatives: sympy.Matrix

    def jacobian(self) -> sympy.Matrix:
        return self.derivatives.jacobian(list(self.symbols))


@dataclass(frozen=True)
class Equilibrium:
    state: Mapping[str, float]
    eigenvalues: np.ndarray
    method: str  # "symbolic" or "numeric"
    free: tuple[str, ...] = ()  # stocks left undetermined (set to their initial values)

    @property
    def stable(self) -> bool:
        """All eigenvalues have negative real part."""
        return bool(np.all(self.eigenvalues.real < 0))


def stock_system(structure: ModelStructure, overrides: Mapping[str, float] | None = None,
                 time: float | None = None) -> StockSystem:
    """The stock derivatives with auxiliaries and constants substituted."""
    structure.require_simulable()
    values = {sym: sympy.Float(v) for sym, v in structure.constant_values(overrides).items()}
    initial = Evaluator(structure).initial_values(overrides)
    for var in structure.of_kind("initial"):
        values[var.symbol] = sympy.Float(initial[var.name])
    if time is not None:
        values[TIME] = sympy.Float(time)
    for var in structure.of_kind("delay_fixed"):
        values[var.symbol] = var.equation  # steady state: output = input
    for name in structure.order:
        var = structure.variables[name]
        values[var.symbol] = var.equation.xreplace(values)
    # delay_fixed inputs may refer to auxiliaries defined after them
    for var in structure.of_kind("delay_fixed"):
        values[var.symbol] = values[var.symbol].xreplace(values)
    stocks = structure.stocks
    exprs = [stock.equation for stock in stocks]
    keep = {s.symbol for s in stocks} | {TIME}
    for _ in range(len(values) + 1):  # until only stocks (and TIME) are left
        exprs = [e.xreplace(values) for e in exprs]
        if all(e.free_symbols <= keep for e in exprs):
            break
    derivatives = sympy.Matrix(exprs)
    return StockSystem(tuple(s.name for s in stocks), tuple(s.symbol for s in stocks), derivatives)


def _numeric(system: StockSystem, expr: sympy.Matrix, time: float = 0.0):
    args = list(system.symbols) + [TIME]
    fn = sympy.lambdify(args, expr, modules=lambdify_modules(list(expr)))
    return lambda x, t=time: np.asarray(fn(*x, t), dtype=float).reshape(-1)


def eigenvalues_at(system: StockSystem, state: Mapping[str, float], time: float = 0.0) -> np.ndarray:
    """Eigenvalues of the Jacobian at ``state`` (stock name -> value) and ``time``."""
    jac = _numeric(system, system.jacobian(), time)
    n = len(system.stocks)
    matrix = jac([state[s] for s in system.stocks]).reshape(n, n)
    return np.linalg.eigvals(matrix)


def _symbolic(system: StockSystem) -> list[dict] | None:
    exprs = list(system.derivatives)
    if len(exprs) > SYMBOLIC_MAX_STOCKS or any(
            e.has(sympy.Piecewise, LookupFunction, TIME, sympy.Abs, sympy.floor, sympy.Mod) for e in exprs):
        return None
    try:
        solutions = sympy.solve(exprs, list(system.symbols), dict=True)
    except (NotImplementedError, ValueError, TypeError):
        return None
    real = []
    for sol in solutions:
        if all(v.is_real is not False for v in sol.values()):
            real.append(sol)
    return real


def equilibria(structure: ModelStructure, overrides: Mapping[str, float] | None = None, *,
               time: float | None = None, run: Trajectory | None = None, starts: int = 8,
               seed: int = 0) -> list[Equilibrium]:
    """Steady states with the eigenvalues of the Jacobian there, most negative state first.

    ``time`` fixes TIME in time-dependent equations (default: the initial time).
    """
    t = structure.control("initial time") if time is None else time
    system = stock_system(structure, overrides, t)
    initial = Evaluator(structure).initial_values(overrides)
    x0 = np.array([initial[s] for s in system.stocks], dtype=float)
    found: list[Equilibrium] = []
    solutions = _symbolic(system)
    if solutions:
        for sol in solutions:
            free = tuple(name for name, sym in zip(system.stocks, system.symbols) if sym not in sol)
            state = {}
            for name, sym, start in zip(system.stocks, system.symbols, x0):
                value = sol.get(sym, sym)
                value = value.xreplace({s: sympy.Float(v) for s, v in zip(system.symbols, x0)})
                state[name] = float(value)
            found.append(Equilibrium(state, eigenvalues_at(system, state), "symbolic", free))
        return found
    f = _numeric(system, system.derivatives)
    jac = _numeric(system, system.jacobian())
    n = len(system.stocks)
    rng = np.random.default_rng(seed)
    guesses = [x0] + ([np.array([run[s][-1] for s in system.stocks])] if run is not None else [])
    scale = np.maximum(np.abs(x0), 1.0)
    guesses += [x0 + scale * rng.normal(size=n) for _ in range(starts)]
    points: list[np.ndarray] = []
    for guess in guesses:
        with np.errstate(all="ignore"):
            result = optimize.root(f, guess, jac=lambda x: jac(x).reshape(n, n), method="hybr",
                                   options={"maxfev": 200 * (n + 1)})
        if not result.success or not np.all(np.isfinite(result.x)):
            continue
        if np.max(np.abs(f(result.x))) > 1e-8 * max(1.0, np.max(np.abs(result.x))):
            continue
        if any(np.allclose(result.x, p, rtol=1e-6, atol=1e-8) for p in points):
            continue
        points.append(result.x)
    for point in sorted(points, key=lambda p: tuple(p)):
        state = dict(zip(system.stocks, map(float, point)))
        found.append(Equilibrium(state, eigenvalues_at(system, state), "numeric"))
    return found


def eigenvalues_along(structure: ModelStructure, run: Trajectory, times: Sequence[float],
                      overrides: Mapping[str, float] | None = None) -> dict[float, np.ndarray]:
    """Eigenvalues of the Jacobian at the run's state at each of ``times`` (nearest step)."""
    system = stock_system(structure, overrides)
    jac = _numeric(system, system.jacobian())
    n = len(system.stocks)
    out = {}
    for t in times:
        k = int(np.argmin(np.abs(run.times - t)))
        matrix = jac([float(run[s][k]) for s in system.stocks], float(run.times[k])).reshape(n, n)
        out[float(run.times[k])] = np.linalg.eigvals(matrix)
    return out
