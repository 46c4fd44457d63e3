"""The vectorized engine: one generated numpy function integrates N parameter sets at once.

``Engine(path)`` builds the model structure; ``engine.run(params, columns=...)`` takes
constant overrides (a number, the same for every run, or an array of N values) and returns
an ``EngineResult`` with each recorded column as an array of (saved times, N). Parameter
names are checked before anything runs, with close matches, exactly as ``Model.run``
does. ``engine.run_frame(params)`` is one run as the DataFrame ``Model.run`` returns.

The time grid, the saved times and their rounding follow PySD: time advances by adding
TIME STEP, integration stops within 1e-5 TIME STEP of FINAL TIME, and a time is saved when
it is a multiple of SAVEPER from INITIAL TIME. The code itself comes from
``sdloop.engines.codegen``; ``engine.source(...)`` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import sympy

from sdloop.engines.codegen import generate
from sdloop.errors import ModelFileError, OverrideError, SdloopError, SimulationError
from sdloop.lang.equations import not_available
from sdloop.lang.names import normalize, resolve_name
from sdloop.lang.source import source_index
from sdloop.structure.build import CONTROL, ModelStructure, build_structure
from sdloop.structure.clock import check_clock
from sdloop.structure.model import delay_stages

class EngineError(ModelFileError):
    """The engine cannot run this model (code generation, compilation or the generated code
    failed); callers fall back to PySD with this one line."""


def engine_or_reasons(model, make=None) -> tuple["Engine | None", list[str]]:
    """An engine (``make(structure)``, default ``Engine``) that has compiled and run the model
    once, or None and one line per reason it cannot (unsupported constructs with their lines,
    simultaneous equations, code generation failures). A model file that cannot be read at
    all still raises."""
    structure = model if isinstance(model, ModelStructure) else build_structure(model)
    path = structure.path
    # one line per construct and variable (an array's elements share it)
    problems = list(dict.fromkeys(f"{path}:{u.line}: {u.variable}: {u.construct}" for u in structure.unsupported))
    problems += [f"{path}:{structure[loop[0]].line}: {loop[0]}: simultaneous equations "
                 + " -> ".join(loop + loop[:1]) for loop in structure.algebraic_loops]
    if problems:
        return None, problems
    try:
        engine = (make or Engine)(structure)
        engine.run(n=1)
    except (EngineError, SimulationError) as exc:
        return None, [str(exc)]
    except ModelFileError as exc:
        return None, [str(exc)]
    return engine, []


def _timing_constants(s: ModelStructure) -> frozenset[str]:
    """The constants INITIAL TIME, FINAL TIME, TIME STEP or SAVEPER are computed from."""
    found: set[str] = set()
    pending = [sym for name in CONTROL if s.get(name) is not None and s[name].equation is not None
               for sym in s[name].equation.free_symbols]
    seen = set()
    while pending:
        var = s.by_symbol(pending.pop())
        if var is None or var.name in seen:
            continue
        seen.add(var.name)
        if var.kind == "constant":
            found.add(var.name)
        elif var.equation is not None:
            pending.extend(var.equation.free_symbols)
    return frozenset(found)


RPREC = 1e-5  # PySD's relative precision of final and saved times (in TIME STEPs)
DEFAULT_BLOCK = 4096  # runs integrated together; keeps the working set in cache


@dataclass
class EngineResult:
    """Recorded columns of N runs: ``values[name]`` has shape (len(times), N)."""

    times: np.ndarray
    values: dict[str, np.ndarray]
    n: int
    finite: np.ndarray = field(repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def frame(self, i: int = 0) -> pd.DataFrame:
        """Run ``i`` as a DataFrame indexed by time, one column per recorded variable."""
        frame = pd.DataFrame({name: arr[:, i] for name, arr in self.values.items()},
                             index=pd.Index(self.times, name="time"))
        return frame


@dataclass(frozen=True)
class RunInputs:
    """A call's inputs, checked: every constant's value (a number or N values) and the time grid."""

    n: int
    recorded: tuple[str, ...]
    constants: dict[str, float | np.ndarray]
    times: np.ndarray
    saved: np.ndarray
    rounded: np.ndarray
    control: dict


class Engine:
    """A model compiled for vectorized runs (one compiled function per set of varying constants)."""

    kind = "numpy"

    def __init__(self, model: str | Path | ModelStructure) -> None:
        self.structure = model if isinstance(model, ModelStructure) else build_structure(model)
        s = self.structure
        s.require_simulable()
        self.path = s.path
        self.constants = [v.name for v in s.variables.values() if v.kind == "constant"]
        self.defaults = {v.name: float(v.equation) for v in s.variables.values() if v.kind == "constant"}
        self.arrays: dict[str, list[str]] = {}  # a subscripted constant -> its elements
        for name in self.constants:
            var = s.variables[name]
            if var.array is not None:
                self.arrays.setdefault(var.array, []).append(name)
        self.constants += [a for a in self.arrays if s.get(a) is None]
        self.control = {name: s.control(name) for name in CONTROL if s.get(name) is not None}
        own = [v.name for v in s.variables.values() if v.owner is None and v.kind not in ("lookup",)]
        controls = [s.get(n).name for n in CONTROL if s.get(n) is not None]
        self.variables = controls + [n for n in own if n not in controls]
        self.timing = _timing_constants(s)  # constants the time grid is computed from
        self._compiled: dict = {}
        self._resolved: dict[tuple[str, bool], str] = {}  # names already checked (calls repeat them)
        self._grids: dict[tuple, tuple] = {}

    @property
    def units(self) -> dict[str, str]:
        """Each variable's units as written in the model file."""
        return {v.name: v.units for v in self.structure.variables.values()}

    @property
    def time_units(self) -> str:
        return self.structure.time_units

    # names ---------------------------------------------------------------
    def resolve(self, name: str, *, constants_only: bool = False, source: str | None = None,
                line: int | None = None) -> str:
        """The model's spelling of ``name``; OverrideError with close matches if unknown."""
        known = self._resolved.get((name, constants_only))
        if known is not None:
            return known
        var = self.structure.get(name)
        found = resolve_name(name, self.constants if constants_only else self.variables,
                            model_name=self.path.name, constants_only=constants_only,
                            computed=var is not None and var.owner is None,
                            computed_line=var.line if var is not None else None, source=source, line=line)
        self._resolved[(name, constants_only)] = found
        return found

    def check(self, params: Mapping[str, object]) -> dict[str, object]:
        """``params`` under the model's spelling (raises OverrideError before any run); a
        subscripted constant's name sets each of its elements to the value given."""
        checked: dict[str, object] = {}
        for name, value in params.items():
            name = self.resolve(name, constants_only=True)
            for element in self.arrays.get(name, [name]) if name not in self.defaults else [name]:
                checked[element] = value
        return checked

    # time grid -----------------------------------------------------------
    def grid(self, final_time: float | None = None, time_step: float | None = None,
             saveper: float | None = None, constants: Mapping[str, float] | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """(every step's time, indices of saved steps, saved times rounded as PySD does, controls);
        ``constants``: values of constants the controls are computed from (``self.timing``)."""
        constants = {normalize(k): float(v) for k, v in (constants or {}).items()}
        key = (final_time, time_step, saveper, tuple(sorted(constants.items())))
        if key not in self._grids:
            times, saved, rounded, control = self._grid(final_time, time_step, saveper, constants)
            for arr in (times, saved, rounded):
                arr.flags.writeable = False
            self._grids[key] = times, saved, rounded, control
        times, saved, rounded, control = self._grids[key]
        return times, saved, rounded, dict(control)

    def _grid(self, final_time, time_step, saveper, constants) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        given = {key: float(value) for key, value in (("final time", final_time), ("time step", time_step),
                                                      ("saveper", saveper)) if value is not None}
        s = self.structure
        control = {"initial time": s.control("initial time", constants) if constants else self.control["initial time"]}
        for key in ("final time", "time step", "saveper"):
            if key in given:
                control[key] = given[key]
            elif s.get(key) is not None:
                control[key] = s.control(key, {**constants, **given})
        control.setdefault("saveper", control["time step"])
        t0, t_end, dt, save = (control[k] for k in ("initial time", "final time", "time step", "saveper"))
        check_clock({"initial time": t0, "final time": t_end, "time step": dt, "saveper": save}, path=self.path,
                    lines={name: (s[name].line if s.get(name) is not None else None) for name in control},
                    given=frozenset(given))
        times = [t0]
        t = t0
        while t + dt * RPREC < t_end:
            t = t + dt
            times.append(t)
        times = np.array(times)
        prec = dt * RPREC
        delay = times - t0
        saved = np.nonzero((np.mod(delay, save) < prec) | (np.mod(-delay, save) < prec))[0]
        rounded = np.round(times[saved], -int(np.log10(prec)))
        return times, saved, rounded, control

    # running -------------------------------------------------------------
    def source(self, varying: Sequence[str] = (), columns: Sequence[str] | None = None) -> str:
        """The generated Python source (for reading and debugging)."""
        varying = frozenset(self.resolve(n, constants_only=True) for n in varying)
        recorded = tuple(self.resolve(c) for c in columns) if columns else tuple(self.variables)
        return generate(self.structure, varying, recorded).source

    def _function(self, varying: frozenset[str], recorded: tuple[str, ...]):
        key = (varying, recorded)
        if key not in self._compiled:
            try:
                self._compiled[key] = generate(self.structure, varying, recorded).compile()
            except SdloopError:
                raise
            except Exception as exc:  # code generation or compilation: a limit of the engine
                raise EngineError(f"code generation failed: {type(exc).__name__}: {exc}", file=self.path) from exc
        return self._compiled[key]

    def inputs(self, params: Mapping[str, object] | None, n: int | None, columns: Sequence[str] | None,
               final_time: float | None = None, time_step: float | None = None,
               saveper: float | None = None) -> "RunInputs":
        """Check and arrange the inputs of a call (raises OverrideError before anything runs)."""
        params = self.check(params or {})
        recorded = tuple(dict.fromkeys(self.resolve(c) for c in columns)) if columns else tuple(self.variables)
        values: dict[str, float | np.ndarray] = {}
        for name, value in params.items():
            arr = np.asarray(value, dtype=float)
            if arr.ndim > 1:
                raise OverrideError("expected a number or a 1-D array of values", variable=name)
            if arr.ndim == 1:
                if n is None:
                    n = len(arr)
                elif len(arr) != n:
                    raise OverrideError(f"{len(arr)} values given where the other parameters have {n}",
                                        variable=name)
            values[name] = arr if arr.ndim else np.float64(arr)
        n = 1 if n is None else int(n)
        timing = {name: values[name] for name in self.timing if name in values}
        for name, value in timing.items():
            if np.ndim(value):
                raise OverrideError("the time grid (INITIAL TIME, FINAL TIME, TIME STEP or SAVEPER) is computed "
                                    "from it: give one value for all runs", variable=name)
        times, saved, rounded, control = self.grid(final_time, time_step, saveper, timing)
        constants: dict[str, float | np.ndarray] = {}
        for var in self.structure.variables.values():
            if var.kind == "constant":
                constants[var.name] = values.get(var.name, np.float64(self.defaults[var.name]))
            elif var.kind == "control":
                constants[var.name] = np.float64(control.get(normalize(var.name), self.control[normalize(var.name)]))
        self._check_delay_stages(constants, values, n)
        return RunInputs(n, recorded, constants, times, saved, rounded, control)

    def _check_delay_stages(self, constants: Mapping[str, object], given: Mapping[str, object], n: int) -> None:
        """Refuse values that change how many stages a DELAY runs with (a delay time below order
        x TIME STEP runs with fewer, as in PySD): the generated code fixes the count when the
        structure is built, so such a run would silently keep the model's count."""
        s = self.structure
        step = s.get("time step")
        dt = constants[step.name] if step is not None else self.control["time step"]
        for delay in s.delays:
            used = {sym.name: s.by_symbol(sym).name for sym in delay.delay_time.free_symbols}
            if not any(name in given for name in used.values()) and dt == self.control["time step"]:
                continue
            delay_time = sympy.lambdify(list(used), delay.delay_time, "numpy")
            value = np.broadcast_to(delay_time(*(constants[name] for name in used.values())), (n,))
            stages = delay_stages(delay.order, value, dt)
            if (stages != delay.stages).any():
                i = int(np.argmax(stages != delay.stages))
                changed = [name for name in used.values() if name in given] or ["TIME STEP"]
                raise OverrideError(
                    f"{' and '.join(changed)} {'change' if len(changed) > 1 else 'changes'} its DELAY of order "
                    f"{delay.order} to {int(stages[i])} stages (delay time {float(value[i]):g} against TIME STEP "
                    f"{float(dt):g}; the model's values give {delay.stages}), which this engine fixes when it "
                    "builds the model: run it with --engine pysd", file=self.path, line=delay.line,
                    variable=delay.owner)

    def run(self, params: Mapping[str, object] | None = None, *, n: int | None = None,
            columns: Sequence[str] | None = None, final_time: float | None = None,
            time_step: float | None = None, saveper: float | None = None,
            block_size: int = DEFAULT_BLOCK) -> EngineResult:
        """Integrate N runs: each override is one number for all runs or an array of N values.

        The code is compiled once per set of array-valued names (and recorded columns), so the
        same arrays give bit-identical results whatever the block size or the chunk they are in.
        """
        call = self.inputs(params, n, columns, final_time, time_step, saveper)
        n, recorded, s = call.n, call.recorded, self.structure
        C = {s[name].symbol.name: value for name, value in call.constants.items()}
        varying = frozenset(name for name, v in call.constants.items() if isinstance(v, np.ndarray))
        function = self._function(varying, recorded)
        idents = {name: s[name].symbol.name for name in recorded}
        out = {name: np.empty((len(call.saved), n)) for name in recorded}
        finite = np.ones(n, dtype=bool)
        save_steps = np.append(call.saved, -1)
        with np.errstate(all="ignore"):
            for start in range(0, n, block_size):
                stop = min(start + block_size, n)
                block = {k: (v[start:stop] if isinstance(v, np.ndarray) else v) for k, v in C.items()}
                views = {idents[name]: out[name][:, start:stop] for name in recorded}
                try:
                    stocks = function(block, call.times, save_steps, views, stop - start)
                except Exception as exc:  # a fault of the generated code, never of the user's input
                    raise EngineError(f"the generated code failed: {type(exc).__name__}: {exc}",
                                      file=self.path) from exc
                for arr in stocks.values():
                    finite[start:stop] &= np.broadcast_to(np.isfinite(arr), (stop - start,))
        for arr in out.values():
            finite &= np.isfinite(arr).all(axis=0)
        return EngineResult(call.rounded, out, n, finite)

    def run_frame(self, params: Mapping[str, float] | None = None, *, columns: Sequence[str] | None = None,
                  final_time: float | None = None, time_step: float | None = None,
                  saveper: float | None = None) -> pd.DataFrame:
        """One run as ``Model.run`` returns it (SimulationError if it goes non-finite)."""
        result = self.run(params, n=1, columns=columns, final_time=final_time, time_step=time_step,
                          saveper=saveper)
        frame = result.frame(0)
        written = not_available(source_index(self.path))  # :NA: in the equation, as the PySD engine exempts
        not_available_columns = [c for c in frame.columns if c in self.defaults and np.isnan(self.defaults[c])
                                 or normalize(c.split("[")[0]) in written]
        bad = ~np.isfinite(frame.drop(columns=not_available_columns).to_numpy(dtype=float))
        if bad.any():
            rows, cols = np.nonzero(bad)
            first = int(np.argmin(rows))
            var = self.structure[frame.drop(columns=not_available_columns).columns[cols[first]]]
            raise SimulationError(f"became non-finite at time {frame.index[rows[first]]:g}",
                                  file=self.path, line=var.line, variable=var.name)
        return frame


def relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest |ours - reference| / |reference| over a column, values smaller than 1e-12 of
    the column's largest magnitude compared at that scale (rounding noise near zero)."""
    ours, reference = np.asarray(ours, float), np.asarray(reference, float)
    scale = np.maximum(np.abs(reference), 1e-12 * np.max(np.abs(reference), initial=0.0))
    diff = np.abs(ours - reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
    return float(np.max(rel, initial=0.0))


def compare_frames(ours: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Largest relative difference over the columns and saved times both frames have."""
    common = [c for c in reference.columns if c in ours.columns]
    if len(ours.index) != len(reference.index) or not np.allclose(ours.index, reference.index):
        raise ValueError("the two runs saved different times")
    return max((relative_difference(ours[c].to_numpy(), reference[c].to_numpy()) for c in common), default=0.0)
