"""Load a model file through PySD and run it with parameter overrides.

Translation (``pysd_translation``) goes to a cache directory keyed by the file's content;
lookups run through ``numpy.interp`` and numpy's global generator is seeded for each run
(``pysd_runtime``). Every run sets every constant explicitly, so no override leaks into a
later run.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.engines.pysd_sites import data_site, macro_site
from sdloop.engines.pysd_runtime import pysd, quiet_pysd, seeded_random, speed_up_lookups
from sdloop.engines.pysd_translation import translate
from sdloop.errors import ModelFileError, OverrideError, SdloopError, SimulationError, first_line
from sdloop.lang.equations import not_available, read_text, SourceIndex, split_equations
from sdloop.lang.names import normalize, resolve_name
from sdloop.lang.source import parse_model
from sdloop.structure.clock import check_clock

__all__ = ["CONTROL_NAMES", "Model", "element_name", "load_model"]

CONTROL_NAMES = ("INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER")


def element_name(name: str, coords) -> str:
    """PySD's column name of one element of an array: ``Name[a,b]``."""
    return f"{name}[{','.join(str(c) for c in coords)}]"


def _pysd_failure(exc: BaseException) -> str:
    """The first line of PySD's error, with what it means where PySD's own words do not say."""
    message = first_line(exc)
    if "only 0-dimensional arrays" in message:  # float() of an xarray in PySD's translation
        message += (" (PySD's translation takes an array for a number: a PySD limitation with arrays, "
                    "e.g. a macro called with an array or an arrayed <non_negative/> flow; try --engine numpy)")
    return message


def _functions_in(exc: BaseException, translated: Path) -> list[str]:
    """The functions of the translated model in ``exc``'s traceback, outermost first."""
    return [frame.f_code.co_name for frame, _ in traceback.walk_tb(exc.__traceback__)
            if frame.f_code.co_filename == str(translated)]


def _innermost(exc: BaseException, translated: Path) -> str | None:
    """The function (a variable's Python name) of the translated model innermost in ``exc``'s traceback."""
    return next((name for name in reversed(_functions_in(exc, translated)) if not name.startswith("<")), None)


class Model:
    """A model file loaded for simulation.

    ``run(params)`` returns a DataFrame indexed by time with one column per variable,
    under its Vensim name (``Name[a,b]`` for each element of a subscripted variable).
    Parameter names are checked against the model's constants: an element of a
    subscripted constant is set by its element name (``Growth[north]``), the whole array
    by its name with one number or one value per element (in PySD's element order).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        translated = translate(self.path)
        if self.path.suffix.lower() == ".mdl":
            self.index = SourceIndex(self.path, split_equations(self.path, read_text(self.path)))
        else:
            self.index = parse_model(self.path)[1]
        self._translated = translated
        with quiet_pysd(), np.errstate(all="ignore"):
            try:
                sys.dont_write_bytecode, before = True, sys.dont_write_bytecode  # no unchecked .pyc beside it
                try:
                    self._pysd = pysd.load(str(translated))
                finally:
                    sys.dont_write_bytecode = before
            except Exception as exc:
                message = _pysd_failure(exc).replace(str(translated.parent), str(self.path.parent))
                site, data = macro_site(exc, translated, self.index, {}), data_site(exc, self.index)
                if data is not None:  # a data file PySD could not read as the equation says
                    source = data[2].replace(str(translated.parent), str(self.path.parent))
                    raise ModelFileError(f"PySD could not read the data ({source}): {message}", file=self.path,
                                         line=data[1], variable=data[0]) from exc
                if site is None:  # the equation PySD was computing (its initial value) when it failed
                    eq = self.index.get(_innermost(exc, translated) or "")
                    raise ModelFileError(f"PySD could not load the model: {message}", file=self.path,
                                         line=eq.line if eq else None, variable=eq.name if eq else None) from exc
                raise ModelFileError(f"PySD could not load macro {site.macro}: {message}"
                                     + (f" ({site.note}; try --engine numpy)" if site.note else ""),
                                     file=self.path, line=site.line, variable=site.variable) from exc
        self.lookups_accelerated = speed_up_lookups(self._pysd)
        clock = self._pysd.time
        self._own_control = {key: getattr(clock, key) for key in ("final_time", "time_step", "saveper")
                             if callable(getattr(clock, key, None))}
        doc = self._pysd.doc
        self.doc = doc
        self._py_name = {normalize(real): py for real, py in zip(doc["Real Name"], doc["Py Name"])}
        self._real_name = dict(zip(doc["Py Name"], doc["Real Name"]))
        self.units = dict(zip(doc["Real Name"], doc["Units"].fillna("")))
        scalar_constants = [
            real for real, kind in zip(doc["Real Name"], doc["Type"])
            if kind == "Constant" and real.upper() not in CONTROL_NAMES
        ]
        self.defaults: dict[str, float] = {}
        self.arrays: dict[str, object] = {}  # array constant -> its default xarray.DataArray
        self._element: dict[str, tuple[str, dict]] = {}  # element name -> (array, coords)
        for name in scalar_constants:
            value = self._component(name)
            if getattr(value, "ndim", 0):
                self.arrays[name] = value
                for coords in _element_coords(value):
                    element = element_name(name, coords.values())
                    self._element[element] = (name, coords)
                    self.defaults[element] = float(value.loc[coords])
            else:
                self.defaults[name] = float(value)
        self.constants = list(self.defaults) + list(self.arrays)
        self._variables = self._all_variables()
        self.control = {name: self._control_value(name) for name in CONTROL_NAMES}
        self._not_available = not_available(self.index)

    # names ---------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """Every variable's Vensim name."""
        return self._variables

    def _all_variables(self) -> list[str]:
        """Real names, and ``Name[a,b]`` for every element of a subscripted variable."""
        import itertools

        names = []
        ranges = getattr(self._pysd, "subscripts", {}) or {}
        for real, dims in zip(self.doc["Real Name"], self.doc["Subscripts"]):
            if real == "Time":
                continue
            names.append(real)
            if isinstance(dims, (list, tuple)) and dims and all(d in ranges for d in dims):
                names += [element_name(real, combo) for combo in itertools.product(*(ranges[d] for d in dims))]
        return names

    def resolve(self, name: str, *, constants_only: bool = False, source: str | None = None,
                line: int | None = None) -> str:
        """The model's Vensim spelling of ``name``; OverrideError with close matches if unknown."""
        return resolve_name(name, self.constants if constants_only else self.variables,
                            model_name=self.path.name, constants_only=constants_only,
                            computed=normalize(name.split("[")[0]) in self._py_name,
                            computed_line=self.index.line(name), source=source, line=line)

    def _component(self, name: str):
        try:
            return getattr(self._pysd.components, self._py_name[normalize(name)])()
        except ZeroDivisionError:  # a constant such as 1/0, computed by Python floats
            raise ModelFileError("divides by zero", file=self.path, line=self.index.line(name),
                                 variable=name) from None

    def _control_value(self, name: str) -> float | None:
        """A control's value at the initial time (None when PySD cannot compute it yet)."""
        try:
            return float(self._component(name))
        except Exception:  # a control computed from stocks or data
            return None

    def _pysd_params(self, values: Mapping[str, object]) -> dict[str, object]:
        """PySD's params: scalars as they are, arrays rebuilt with element overrides."""
        params: dict[str, object] = {}
        arrays = {name: value.copy() for name, value in self.arrays.items()}
        for name, value in values.items():
            if name in self._element:
                array, coords = self._element[name]
                arrays[array].loc[coords] = float(value)
            elif name in arrays:
                given = np.asarray(value, dtype=float)
                if given.ndim and given.size != arrays[name].size:
                    raise OverrideError(f"{given.size} values given for {arrays[name].size} elements",
                                        file=self.path, variable=name)
                arrays[name][...] = given.reshape(arrays[name].shape) if given.ndim else float(given)
            else:
                params[self._py_name[normalize(name)]] = float(value)
        for name, array in arrays.items():
            params[self._py_name[normalize(name)]] = array
        return params

    # running -------------------------------------------------------------
    def run(
        self,
        params: Mapping[str, float] | None = None,
        *,
        final_time: float | None = None,
        columns: Sequence[str] | None = None,
        time_step: float | None = None,
        saveper: float | None = None,
    ) -> pd.DataFrame:
        """Simulate with ``params`` overriding constants; the model's own values elsewhere.

        FINAL TIME, TIME STEP and SAVEPER are the model's own (computed ones included)
        unless given here.
        """
        values: dict[str, object] = dict(self.defaults)
        for name, value in (params or {}).items():
            values[self.resolve(name, constants_only=True)] = value
        wanted = [self.resolve(c) for c in columns] if columns else None
        control = {key: float(value) for key, value in
                   (("final_time", final_time), ("time_step", time_step), ("saveper", saveper))
                   if value is not None}
        self._check_clock(control)
        try:
            frame = self._run_pysd(values, wanted, control)
        except Exception:
            self._reload()  # PySD keeps caches and stateful elements of a run that failed part-way
            raise
        frame.index.name = "time"
        frame = frame.rename(columns=lambda c: self._real_name.get(c, c))
        self._check_finite(frame)
        return frame

    def _reload(self) -> None:
        """A fresh PySD model object from the same translation (the next run starts clean)."""
        with quiet_pysd(), np.errstate(all="ignore"):
            sys.dont_write_bytecode, before = True, sys.dont_write_bytecode
            try:
                self._pysd = pysd.load(str(self._translated))
            finally:
                sys.dont_write_bytecode = before
        self.lookups_accelerated = speed_up_lookups(self._pysd)
        clock = self._pysd.time
        self._own_control = {key: getattr(clock, key) for key in ("final_time", "time_step", "saveper")
                             if callable(getattr(clock, key, None))}

    def _run_pysd(self, values: dict, wanted: list[str] | None, control: dict) -> pd.DataFrame:
        clock = self._pysd.time
        clock._set_control_vars(**self._own_control)  # no earlier run's control values
        clock._control_vars_tracker.clear()
        with quiet_pysd(), np.errstate(all="ignore"), warnings.catch_warnings(), seeded_random():
            # a complex value PySD would silently cut to its real part is an error, not a number
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            try:
                frame = self._pysd.run(
                    params=self._pysd_params(values),
                    return_columns=wanted,
                    initial_condition="original",
                    **control,
                )
            except ArithmeticError as exc:  # division by zero, overflow in Python floats
                raise self._arithmetic_error(exc) from exc
            except np.exceptions.ComplexWarning as exc:
                raise self._arithmetic_error(exc, "became non-real (a complex number such as a fractional "
                                                  "power of a negative number)") from exc
            except SdloopError:
                raise
            except TypeError as exc:
                if "complex" not in str(exc):  # a complex value reached a comparison (no ComplexWarning first)
                    raise self._arithmetic_error(exc, f"PySD failed during the run: {_pysd_failure(exc)}") from exc
                raise self._arithmetic_error(exc, "became non-real (a complex number such as a fractional "
                                                  "power of a negative number)") from exc
            except Exception as exc:
                raise self._arithmetic_error(exc, f"PySD failed during the run: {_pysd_failure(exc)}") from exc
        return frame

    def _check_clock(self, given: Mapping[str, float]) -> None:
        """The run's INITIAL TIME, FINAL TIME, TIME STEP and SAVEPER, before PySD runs (it loops forever
        on a negative TIME STEP)."""
        values = {name.lower(): self.control[name] for name in CONTROL_NAMES}
        values.update({key.replace("_", " "): value for key, value in given.items()})
        if "time_step" in given and "saveper" not in given and "saveper" in self._own_control:
            values["saveper"] = None  # SAVEPER = TIME STEP follows the given step
        check_clock(values, path=self.path, lines={name.lower(): self.index.line(name) for name in CONTROL_NAMES},
                    given=frozenset(key.replace("_", " ") for key in given))

    def _arithmetic_error(self, exc: Exception, what: str | None = None) -> SimulationError:
        """Name the equation (the innermost frame in the translated model) that failed."""
        variable = next((self._real_name[name] for name in reversed(_functions_in(exc, self._translated))
                         if name in self._real_name), None)
        site = macro_site(exc, self._translated, self.index, self._real_name)
        if site is not None:  # inside a macro's code: the equation calling it, or the macro's own
            variable = site.variable
            what = f"{what or exc} (in macro {site.macro})"
        return SimulationError(
            f"{what or exc} at time {float(self._pysd.time()):g}",
            file=self.path, line=self.index.line(variable) if variable else None, variable=variable,
        )

    def _check_finite(self, frame: pd.DataFrame) -> None:
        """SimulationError at the first value that is not a finite real number (PySD computes a
        fractional power of a negative number as a complex one and carries on)."""
        kept = [c for c in frame.columns if normalize(c.split("[")[0]) not in self._not_available]
        numeric = frame[[c for c in kept if frame[c].dtype.kind in "biufcO"]]
        try:
            values = numeric.to_numpy(dtype=complex)
        except (TypeError, ValueError):  # a column of something else than numbers: check the numbers
            numeric = numeric.select_dtypes("number")
            values = numeric.to_numpy(dtype=complex)
        unreal = values.imag != 0
        bad = unreal | ~np.isfinite(values)
        if bad.any():
            rows, cols = np.nonzero(bad)  # row-major: the first entry is at the earliest time
            variable = numeric.columns[cols[0]]
            what = ("became non-real (a complex number such as a fractional power of a negative number)"
                    if unreal[rows[0], cols[0]] else "became non-finite")
            raise SimulationError(
                f"{what} at time {numeric.index[rows[0]]:g}",
                file=self.path, line=self.index.line(variable), variable=variable,
            )
        if any(numeric[c].dtype.kind in "cO" for c in numeric.columns):
            frame[numeric.columns] = numeric.to_numpy(dtype=complex).real


def _element_coords(array) -> list[dict]:
    """Coordinates of every element of an xarray.DataArray, in its own order."""
    import itertools

    dims = list(array.dims)
    return [dict(zip(dims, combo)) for combo in itertools.product(*(list(array.coords[d].values) for d in dims))]


_MODELS: dict[tuple[Path, float], Model] = {}


def load_model(path: str | Path) -> Model:
    """Load (or reuse, while the file is unchanged) a Model for ``path``."""
    resolved = Path(path).resolve()
    try:
        stamp = resolved.stat().st_mtime_ns
    except FileNotFoundError:
        raise ModelFileError("no such model file", file=path) from None
    key = (resolved, stamp)
    if key not in _MODELS:
        _MODELS[key] = Model(path)
    return _MODELS[key]
