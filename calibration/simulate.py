"""Batch simulators: N parameter sets in, the recorded variables of N runs out.

``EngineSimulator`` runs a whole population in one engine call: the compiled C engine, or the
vectorized numpy engine where it cannot be built (``sdloop.engines.compiled.load_engine``, which
says why in one line); ``PySDSimulator`` runs the same batch one run at a time
through PySD, the reference, for models the engine cannot compile and for parity checks.
Both return a ``Batch``: saved times, ``values[variable]`` of shape (times, N), and which
runs stayed finite. Any callable ``simulate(params: dict[str, ndarray], n) -> Batch`` can
stand in (a test double, a faster backend behind the same engine interface).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from sdloop.errors import SdloopError


@dataclass
class Batch:
    times: np.ndarray
    values: dict[str, np.ndarray]  # variable -> (len(times), N)
    finite: np.ndarray  # (N,) bool

    def frame(self, i: int = 0):
        import pandas as pd

        return pd.DataFrame({k: v[:, i] for k, v in self.values.items()},
                            index=pd.Index(self.times, name="time"))


BatchSimulate = Callable[[Mapping[str, np.ndarray], int], Batch]


class EngineSimulator:
    """One vectorized engine call per batch, under a fixed base case."""

    def __init__(self, path: str | Path, base: Mapping[str, float], *, final_time: float,
                 columns: Sequence[str]) -> None:
        from sdloop.engines.compiled import load_engine

        self.path = Path(path)
        self.engine = load_engine(self.path)
        self.base = dict(base)
        self.final_time = float(final_time)
        self.columns = list(columns)

    def __call__(self, params: Mapping[str, np.ndarray], n: int) -> Batch:
        values = {**self.base, **{k: np.asarray(v, dtype=float) for k, v in params.items()}}
        result = self.engine.run(values, n=n, columns=self.columns, final_time=self.final_time)
        return Batch(np.asarray(result.times, dtype=float), dict(result.values), result.finite)


class PySDSimulator:
    """The same batch through PySD, one run at a time (the reference engine)."""

    def __init__(self, path: str | Path, base: Mapping[str, float], *, final_time: float,
                 columns: Sequence[str]) -> None:
        from sdloop.engines.pysd_model import load_model

        self.path = Path(path)
        self.model = load_model(self.path)
        self.base = dict(base)
        self.final_time = float(final_time)
        self.columns = list(columns)

    def __call__(self, params: Mapping[str, np.ndarray], n: int) -> Batch:
        frames, finite = [], np.ones(n, dtype=bool)
        for i in range(n):
            values = {**self.base, **{k: float(np.asarray(v)[i]) for k, v in params.items()}}
            try:
                frames.append(self.model.run(values, final_time=self.final_time, columns=self.columns))
            except SdloopError:
                frames.append(None)
                finite[i] = False
        good = next(f for f in frames if f is not None) if finite.any() else None
        if good is None:
            raise SdloopError("every run of the batch failed", file=self.path)
        times = good.index.to_numpy(dtype=float)
        values = {c: np.column_stack([(f[c].to_numpy(float) if f is not None else np.full(len(times), np.nan))
                                      for f in frames]) for c in self.columns}
        return Batch(times, values, finite)


def default_simulator(path: str | Path, base: Mapping[str, float], *, final_time: float,
                      columns: Sequence[str]):
    """The engine when it compiles the model, PySD otherwise (with the reason)."""
    try:
        return EngineSimulator(path, base, final_time=final_time, columns=columns), ""
    except SdloopError as exc:
        return PySDSimulator(path, base, final_time=final_time, columns=columns), str(exc)


def parity(path: str | Path, base: Mapping[str, float], params: Mapping[str, float], *, final_time: float,
           columns: Sequence[str]) -> float:
    """Largest relative difference between the engine and PySD at one parameter set."""
    from sdloop.engines.numpy_engine import Engine, compare_frames
    from sdloop.engines.pysd_model import load_model

    values = {**base, **params}
    ours = Engine(path).run_frame(values, columns=columns, final_time=final_time)
    reference = load_model(path).run(values, final_time=final_time, columns=list(columns))
    return compare_frames(ours, reference)
