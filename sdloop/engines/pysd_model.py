"""Load a model file through PySD and run it with parameter overrides.

Translation goes to a cache directory keyed by the file's content, never next to the
model file. Lookups are evaluated with ``numpy.interp`` instead of PySD's xarray
interpolation (same numbers, much faster). Every run sets every constant explicitly,
so no override leaks into a later run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.errors import ModelFileError, OverrideError, SimulationError
from sdloop.lang.source import SourceIndex, normalize, parse_model, read_text, resolve_name, split_equations

CONTROL_NAMES = ("INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER")


@contextmanager
def quiet_pysd() -> Iterator[None]:
    """Silence the deprecation noise PySD emits under pandas 3, and nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The inplace keyword in DataFrame\.set_index")
        warnings.filterwarnings("ignore", message=r"chardet\.universaldetector is deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pysd\.")
        warnings.filterwarnings("ignore", message=r"extrapolating data (above|below)")
        yield


with quiet_pysd():
    import pysd
    from pysd.py_backend.lookups import HardcodedLookups


class FastLookups(HardcodedLookups):
    """A PySD lookup that interpolates a scalar argument with ``numpy.interp``.

    ``numpy.interp`` holds the end values outside the table, as Vensim does. Anything
    else (subscripted lookups, XMILE extrapolation, hold-backward tables) goes to PySD.
    """

    def __call__(self, x, final_subs=None):
        data = self.data
        if (
            self.is_float
            and self.interp == "interpolate"
            and np.ndim(x) == 0
            and getattr(data, "ndim", 0) == 1
        ):
            if getattr(self, "_fast_source", None) is not data:
                self._fast_x = np.asarray(data["lookup_dim"].values, dtype=float)
                self._fast_y = np.asarray(data.values, dtype=float)
                self._fast_source = data
            return float(np.interp(float(x), self._fast_x, self._fast_y))
        return super().__call__(x, final_subs)


def speed_up_lookups(pysd_model) -> int:
    """Switch every hard-coded lookup of a loaded PySD model to FastLookups; return how many."""
    module = pysd_model.components._components
    count = 0
    for value in vars(module).values():
        if type(value) is HardcodedLookups:
            value.__class__ = FastLookups
            count += 1
    return count


def cache_dir() -> Path:
    """Where translated models are kept: ``$SDLOOP_CACHE`` or ``~/.cache/sdloop``."""
    return Path(os.environ.get("SDLOOP_CACHE", Path.home() / ".cache" / "sdloop"))


def translate(path: Path) -> Path:
    """Translate a model file to Python in the cache and return the ``.py`` path.

    The file is validated first (clear errors with line and variable). The cache key is
    the file content and the PySD version, so an edited file is translated anew.
    """
    text = read_text(path)
    key = hashlib.sha256((pysd.__version__ + path.suffix + text).encode()).hexdigest()[:20]
    target = cache_dir() / f"{path.stem}-{key}"
    translated = target / (path.stem + ".py")
    if translated.exists():
        return translated
    parse_model(path)  # raises ModelFileError naming file, line and variable
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".translate-", dir=target.parent))
    try:
        copy = work / path.name
        copy.write_text(text, encoding="utf-8")
        with quiet_pysd():
            if path.suffix.lower() == ".mdl":
                pysd.read_vensim(str(copy))
            else:
                pysd.read_xmile(str(copy))
        try:
            work.rename(target)
        except OSError:  # another process translated the same file meanwhile
            pass
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"PySD could not translate the model: {exc}", file=path) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return translated


class Model:
    """A model file loaded for simulation.

    ``run(params)`` returns a DataFrame indexed by time with one column per variable,
    under its Vensim name. Parameter names are checked against the model's constants.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        translated = translate(self.path)
        if self.path.suffix.lower() == ".mdl":
            self.index = SourceIndex(self.path, split_equations(self.path, read_text(self.path)))
        else:
            self.index = parse_model(self.path)[1]
        self._translated = translated
        with quiet_pysd():
            self._pysd = pysd.load(str(translated))
        self.lookups_accelerated = speed_up_lookups(self._pysd)
        doc = self._pysd.doc
        self.doc = doc
        self._py_name = {normalize(real): py for real, py in zip(doc["Real Name"], doc["Py Name"])}
        self._real_name = dict(zip(doc["Py Name"], doc["Real Name"]))
        self.units = dict(zip(doc["Real Name"], doc["Units"].fillna("")))
        self.constants = [
            real for real, kind in zip(doc["Real Name"], doc["Type"])
            if kind == "Constant" and real.upper() not in CONTROL_NAMES
        ]
        self.defaults = {name: self._constant_value(name) for name in self.constants}
        self.control = {name: self._constant_value(name) for name in CONTROL_NAMES}

    # names ---------------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """Every variable's Vensim name."""
        return [n for n in self.doc["Real Name"] if n != "Time"]

    def resolve(self, name: str, *, constants_only: bool = False, source: str | None = None,
                line: int | None = None) -> str:
        """The model's Vensim spelling of ``name``; OverrideError with close matches if unknown."""
        return resolve_name(name, self.constants if constants_only else self.variables,
                            model_name=self.path.name, constants_only=constants_only,
                            computed=normalize(name) in self._py_name, computed_line=self.index.line(name),
                            source=source, line=line)

    def _constant_value(self, name: str) -> float:
        return float(getattr(self._pysd.components, self._py_name[normalize(name)])())

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
        """Simulate with ``params`` overriding constants; the model's own values elsewhere."""
        values = dict(self.defaults)
        for name, value in (params or {}).items():
            values[self.resolve(name, constants_only=True)] = float(value)
        wanted = [self.resolve(c) for c in columns] if columns else None
        final = self.control["FINAL TIME"] if final_time is None else float(final_time)
        if final <= self.control["INITIAL TIME"]:
            raise OverrideError(
                f"final time {final:g} is not after the initial time {self.control['INITIAL TIME']:g}",
                file=self.path, variable="FINAL TIME")
        with quiet_pysd(), np.errstate(all="ignore"):
            try:
                frame = self._pysd.run(
                    params={self._py_name[normalize(k)]: v for k, v in values.items()},
                    return_columns=wanted,
                    final_time=final,
                    time_step=self.control["TIME STEP"] if time_step is None else time_step,
                    saveper=self.control["SAVEPER"] if saveper is None else saveper,
                    initial_condition="original",
                )
            except ArithmeticError as exc:  # division by zero, overflow in Python floats
                raise self._arithmetic_error(exc) from exc
        frame.index.name = "time"
        frame = frame.rename(columns=lambda c: self._real_name.get(c, c))
        self._check_finite(frame)
        return frame

    def _arithmetic_error(self, exc: ArithmeticError) -> SimulationError:
        """Name the equation (the innermost frame in the translated model) that failed."""
        variable = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(self._translated):
                variable = self._real_name.get(tb.tb_frame.f_code.co_name, variable)
            tb = tb.tb_next
        return SimulationError(
            f"{exc} at time {float(self._pysd.time()):g}",
            file=self.path, line=self.index.line(variable) if variable else None, variable=variable,
        )

    def _check_finite(self, frame: pd.DataFrame) -> None:
        numeric = frame.select_dtypes("number")
        bad = ~np.isfinite(numeric.to_numpy(dtype=float))
        if bad.any():
            rows, cols = np.nonzero(bad)
            first = int(np.argmin(rows))
            variable = numeric.columns[cols[first]]
            raise SimulationError(
                f"became non-finite at time {numeric.index[rows[first]]:g}",
                file=self.path, line=self.index.line(variable), variable=variable,
            )


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
