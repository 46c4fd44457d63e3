"""Evaluate a ModelStructure numerically: Euler integration the way PySD does it.

Used by the analysis modules (link polarity along a run, loop dominance, Jacobians at
chosen times). Every variable, written-out SMOOTH/DELAY stages included, is recorded at
every TIME STEP. Equations compile through ``sympy.lambdify``: a scalar version for
stepping and a numpy version for evaluating an equation over a whole run at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import sympy

from sdloop.lang.equations import not_available
from sdloop.lang.names import normalize
from sdloop.lang.source import source_index
from sdloop.errors import ModelFileError, SimulationError
from sdloop.structure.clock import check_clock
from sdloop.structure.lookups import lambdify_modules
from sdloop.structure.symbols import TIME
from sdloop.structure.build import ModelStructure, Variable

TIME_NAME = "time"


@dataclass(frozen=True)
class Trajectory:
    """Values of every variable at every time step of one run."""

    times: np.ndarray
    values: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.times if name == TIME_NAME else self.values[name]

    def frame(self, names=None) -> pd.DataFrame:
        """A DataFrame indexed by time with one column per variable named."""
        names = list(self.values) if names is None else list(names)
        return pd.DataFrame({n: self.values[n] for n in names}, index=pd.Index(self.times, name="time"))


class CompiledEquation:
    """One equation as a function of the named variables it uses."""

    def __init__(self, expr: sympy.Expr, structure: ModelStructure) -> None:
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        self.inputs = tuple(TIME_NAME if s == TIME else structure.by_symbol(s).name for s in symbols)
        self._expr, self._symbols, self._structure = expr, symbols, structure
        self._scalar: Callable | None = None
        self._array: Callable | None = None

    def __call__(self, values: Mapping[str, float]) -> float:
        if self._scalar is None:
            namespace = lambdify_modules([self._expr])[0]
            self._scalar = sympy.lambdify(self._symbols, self._expr, modules=[namespace, "math"])
        arguments = [values[n] for n in self.inputs]
        try:
            return float(self._scalar(*arguments))
        except ZeroDivisionError:  # as the engines do: IEEE division (inf or nan), caught as non-finite
            with np.errstate(all="ignore"):
                return float(self._scalar(*[np.float64(a) for a in arguments]))

    def over(self, values: Mapping[str, np.ndarray], length: int) -> np.ndarray:
        """The equation at every time step, given an array per input."""
        if self._array is None:
            from sdloop.engines.numpy_namespace import engine_namespace

            namespace = {**engine_namespace(self._structure), **lambdify_modules([self._expr])[0]}
            self._array = array_function(self._expr, self._symbols, namespace)
        with np.errstate(all="ignore"):
            out = self._array(*[values[n] for n in self.inputs])
        return np.broadcast_to(np.asarray(out, dtype=float), (length,)).copy()


class Evaluator:
    """Compiled equations of a structure; ``run`` integrates with Euler steps.

    ``exogenous`` (variable name -> its value at every TIME STEP, e.g. from a PySD run) gives
    the variables whose equations hold a construct sdloop does not write out (data, RANDOM
    draws): their values are taken from it instead of computed; a name given None (a lookup
    read from data, never a value) is neither computed nor recorded.
    """

    def __init__(self, structure: ModelStructure, exogenous: Mapping[str, np.ndarray] | None = None) -> None:
        self.skipped = {name for name, series in (exogenous or {}).items() if series is None}
        self.exogenous = {name: series for name, series in (exogenous or {}).items() if series is not None}
        if not self.exogenous and not self.skipped:
            structure.require_simulable()
        self.structure = structure
        self.equations: dict[str, CompiledEquation] = {}
        for var in structure.variables.values():
            if var.kind in ("flow", "auxiliary", "initial", "delay_fixed") and var.name not in self.exogenous \
                    and var.name not in self.skipped:
                self.equations[var.name] = CompiledEquation(var.equation, structure)
        self.initials = {
            v.name: CompiledEquation(v.initial, structure)
            for v in structure.variables.values()
            if (v.kind in ("stock", "delay_fixed") or v.initial is not None) and v.name not in self.exogenous
        }

    def run(self, overrides: Mapping[str, float] | None = None, final_time: float | None = None) -> Trajectory:
        """Integrate from INITIAL TIME to FINAL TIME in TIME STEPs (PySD's Euler scheme)."""
        s = self.structure
        constants = {s.by_symbol(sym).name: val for sym, val in s.constant_values(overrides).items()}
        t0, dt = s.control("initial time"), s.control("time step")
        t_end = s.control("final time") if final_time is None else final_time
        for name, value in constants.items():
            if name.lower() in ("initial time", "time step", "final time"):
                t0 = value if name.lower() == "initial time" else t0
                dt = value if name.lower() == "time step" else dt
                t_end = value if name.lower() == "final time" and final_time is None else t_end
        check_clock({"initial time": t0, "final time": t_end, "time step": dt}, path=s.path,
                    lines={n: (s[n].line if s.get(n) is not None else None) for n in ("initial time", "final time",
                                                                                     "time step")},
                    given=frozenset({"final time"} if final_time is not None else ()))
        n = int(round((t_end - t0) / dt))
        times = t0 + dt * np.arange(n + 1)
        short = next((name for name, series in self.exogenous.items() if len(series) != n + 1), None)
        if short is not None:
            raise SimulationError(f"{len(self.exogenous[short])} given values for {n + 1} time steps",
                                  file=s.path, line=s.variables[short].line, variable=s.variables[short].vensim_name)
        values = self._initial_values(constants, t0)
        stocks = [v for v in s.stocks]
        dynamic = [(name, self.equations[name]) for name in s.order if name in self.equations]
        given = [(name, series) for name, series in self.exogenous.items() if s.variables[name].kind != "stock"]
        pipes = self._pipes(values, dt)
        record = {name: np.empty(n + 1) for name in s.variables
                  if s.variables[name].kind != "lookup" and name not in self.skipped}
        for k in range(n + 1):
            values[TIME_NAME] = times[k]
            for name, pipe in pipes.items():
                values[name] = pipe[k % len(pipe)]
            for name, series in given:
                values[name] = series[k]
            if k > 0:
                for name, eq in dynamic:
                    values[name] = eq(values)
            for name, arr in record.items():
                arr[k] = values[name]
            if k == n:
                break
            for name, pipe in pipes.items():
                pipe[k % len(pipe)] = self.equations[name](values)
            for var in stocks:
                net = sum(values[f] for f in var.inflows) - sum(values[f] for f in var.outflows)
                values[var.name] = values[var.name] + dt * net
                if var.non_negative:
                    values[var.name] = max(values[var.name], 0.0)
        written = None
        for name, arr in record.items():
            if not np.all(np.isfinite(arr)):
                var = s.variables[name]
                written = not_available(source_index(s.path)) if written is None else written
                if normalize(var.vensim_name.split("[")[0]) in written:
                    continue  # :NA: in its equation: NaN, as PySD computes it
                bad = int(np.argmin(np.isfinite(arr)))
                raise SimulationError(f"value is not finite at time {times[bad]:g}", file=s.path,
                                      line=var.line, variable=var.vensim_name)
        return Trajectory(times, record)

    def initial_values(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """Every variable's value at INITIAL TIME (constants overridden by name)."""
        s = self.structure
        constants = {s.by_symbol(sym).name: val for sym, val in s.constant_values(overrides).items()}
        return self._initial_values(constants, s.control("initial time"))

    def _pipes(self, values: dict, dt: float) -> dict[str, list[float]]:
        """Pipelines of DELAY FIXED variables: slot k % len holds the value at step k."""
        pipes = {}
        for var in self.structure.of_kind("delay_fixed"):
            delay = CompiledEquation(var.delay, self.structure)(values)
            order = round(max(delay / dt, 1) + 1e-6)
            pipes[var.name] = [values[var.name]] * order
        return pipes

    def _initial_values(self, constants: dict[str, float], t0: float) -> dict[str, float]:
        """Every variable at the initial time, each evaluated after what it uses."""
        s = self.structure
        values: dict[str, float] = dict(constants)
        values.update({name: float(series[0]) for name, series in self.exogenous.items()})
        values[TIME_NAME] = t0
        visiting: list[str] = []

        def value(name: str) -> float:
            if name in values:
                return values[name]
            var = s.variables[name]
            if name in visiting:
                cycle = visiting[visiting.index(name):]
                raise ModelFileError("initial values depend on each other: " + " -> ".join(cycle + [name]),
                                     file=s.path, line=var.line, variable=var.vensim_name)
            visiting.append(name)
            eq = self.initials[name] if name in self.initials else self.equations[name]
            for dep in eq.inputs:
                value(dep)
            values[name] = eq(values)
            visiting.pop()
            return values[name]

        for var in s.variables.values():
            if var.kind != "lookup" and var.name not in self.skipped:
                value(var.name)
        if any(v.initial is not None and v.kind in ("flow", "auxiliary") for v in s.variables.values()):
            for name in s.order:  # ACTIVE INITIAL: the equations at the initial time, stocks set
                if name in self.equations:
                    values[name] = self.equations[name](values)
        return values

    def evaluate(self, name: str, values: Mapping[str, np.ndarray], length: int) -> np.ndarray:
        """Equation ``name`` over arrays of its inputs (one entry per time step)."""
        return self.equations[name].over(values, length)


def array_function(expr: sympy.Expr, symbols, namespace: dict):
    """``expr`` as a numpy function of ``symbols`` (printed as the engine prints it)."""
    from sdloop.engines.numpy_printer import EnginePrinter

    printer = EnginePrinter()
    args = ", ".join(printer.doprint(sym) for sym in symbols)
    source = f"def _f({args}):\n    return {printer.doprint(expr)}\n"
    scope = dict(namespace)
    exec(compile(source, "<sdloop equation>", "exec"), scope)
    return scope["_f"]


def simulate(structure: ModelStructure, overrides: Mapping[str, float] | None = None,
             final_time: float | None = None) -> Trajectory:
    """One Euler run of the structure; every variable at every time step."""
    return Evaluator(structure).run(overrides, final_time)


def own_variables(structure: ModelStructure) -> list[Variable]:
    """The variables written in the model file (not the written-out stages), lookups excluded."""
    return [v for v in structure.variables.values() if v.owner is None and v.kind != "lookup"]
