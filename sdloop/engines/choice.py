"""Which engine runs a model: the one place that decides.

``simulator(path, engine)`` returns, for ``auto`` and ``compiled``, the model's compiled C kernel
(``sdloop.engines.compiled``) when cffi, a C compiler and the Python headers are present and the
kernel compiles, else the generated numpy engine (``Choice.notes`` holds the one line saying why);
for ``numpy`` the numpy engine. When neither can compile the model, a PySD-backed stand-in, with
the reasons (each ``FILE:LINE: VARIABLE: construct``). All answer the same interface:
``resolve``, ``defaults``, ``constants``, ``variables``, ``units``, ``control`` and ``run(params,
n=, columns=, final_time=)`` returning an ``EngineResult`` (arrays of shape (saved times, N)).
Both engines agree with PySD to 1e-9 on the test corpus and the bundled models (tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sdloop.engines.numpy_engine import EngineResult
from sdloop.errors import ModelFileError

ENGINES = ("auto", "numpy", "compiled", "pysd")


@dataclass(frozen=True)
class Choice:
    """The simulator used for a model and, when it is PySD, why the numpy engine was not."""

    simulator: object
    kind: str  # "numpy", "compiled" or "pysd"
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. why the compiled kernel was not built (one line each)

    def describe(self) -> str:
        if self.kind == "numpy":
            return "vectorized numpy engine" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        if self.kind == "compiled":
            return "compiled C engine"
        why = "; ".join(self.reasons) if self.reasons else "asked for"
        return f"PySD (numpy engine not used: {why})"


class PysdBatch:
    """A PySD model behind the engine interface: N runs one after another."""

    kind = "pysd"

    def __init__(self, path: str | Path) -> None:
        from sdloop.engines.pysd_model import load_model

        self.model = load_model(path)
        self.path = self.model.path
        self.defaults = self.model.defaults
        self.constants = self.model.constants
        self.variables = self.model.variables
        self.units = self.model.units
        self.time_units = self.model.units.get("TIME STEP", "") or ""
        self.control = {name.lower(): value for name, value in self.model.control.items()}

    def resolve(self, name: str, **kwargs) -> str:
        return self.model.resolve(name, **kwargs)

    def check(self, params: Mapping[str, object]) -> dict[str, object]:
        return {self.resolve(name, constants_only=True): value for name, value in params.items()}

    def run(self, params: Mapping[str, object] | None = None, *, n: int | None = None,
            columns: Sequence[str] | None = None, final_time: float | None = None) -> EngineResult:
        params = dict(params or {})
        sizes = {len(v) for v in params.values() if np.ndim(v) == 1}
        n = n or (sizes.pop() if sizes else 1)
        frames = []
        for i in range(n):
            values = {k: (float(v[i]) if np.ndim(v) == 1 else float(v)) for k, v in params.items()}
            frames.append(self.model.run(values, columns=columns, final_time=final_time))
        first = frames[0]
        values = {name: np.column_stack([f[name].to_numpy(dtype=float) for f in frames]) for name in first.columns}
        return EngineResult(first.index.to_numpy(dtype=float), values, n, np.ones(n, dtype=bool))

    def run_frame(self, params=None, *, columns=None, final_time=None):
        return self.model.run(params, columns=columns, final_time=final_time)


_CHOICES: dict[tuple, Choice] = {}


def simulator(path: str | Path, engine: str = "auto", *, threads: int | None = None) -> Choice:
    """The simulator for ``path`` (``engine``: auto, numpy, compiled or pysd), reused while the
    file is unchanged.

    ``auto`` and ``compiled`` use the compiled engine when it can be built here, else the numpy
    engine (``Choice.notes`` says why); ``numpy`` the numpy engine. When the model does not compile
    the run goes to PySD and ``Choice.reasons`` says why (an engine is then only a preference).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    resolved = Path(path).resolve()
    try:
        stamp = resolved.stat().st_mtime_ns
    except FileNotFoundError:
        raise ModelFileError("no such model file", file=path) from None
    key = (str(resolved), stamp, engine, threads)
    if key not in _CHOICES:
        _CHOICES[key] = _choose(Path(path), engine, threads)
    return _CHOICES[key]


def _choose(path: Path, engine: str, threads: int | None = None) -> Choice:
    if engine == "pysd":
        return Choice(PysdBatch(path), "pysd")
    from sdloop.engines.numpy_engine import engine_or_reasons

    notes: list[str] = []
    make = None
    if engine in ("auto", "compiled"):
        from sdloop.engines.compiled import load_engine

        def make(structure):
            return load_engine(structure, backend="compiled", threads=threads, notice=notes.append)
    from sdloop.engines.parsed_models import model_structure

    chosen, reasons = engine_or_reasons(model_structure(path), make)
    if chosen is not None:
        return Choice(chosen, getattr(chosen, "kind", "numpy"), notes=tuple(notes))
    return Choice(PysdBatch(path), "pysd", tuple(reasons))
