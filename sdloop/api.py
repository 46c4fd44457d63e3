"""The Python API: load a model and run it, run a project, read a run directory back.

    import sdloop
    model = sdloop.load("diffusion.mdl")
    frame = model.run({"Contact Rate": 15})                   # DataFrame: time x Vensim names
    runs = model.run({"Contact Rate": [5, 10, 15]})           # xarray Dataset: (time, run)
    run_dir = sdloop.run_project("diffusion.project.toml", ensemble=False)
    results = sdloop.load_run(run_dir)
    results.metrics(), results.claims(), results.trajectories()   # tidy DataFrames

Importing sdloop changes no global state (matplotlib's backend included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.engines.choice import simulator
from sdloop.errors import SdloopError


class Model:
    """A model file ready to run (the numpy engine, or PySD when the engine cannot compile it)."""

    def __init__(self, path: str | Path, engine: str = "auto") -> None:
        self.path = Path(path)
        self.choice = simulator(self.path, engine)
        self._sim = self.choice.simulator

    def __repr__(self) -> str:
        return f"<sdloop model {str(self.path)!r}: {len(self.variables)} variables, {self.engine} engine>"

    @property
    def engine(self) -> str:
        """Which engine runs the model: 'compiled', 'numpy' or 'pysd' (``choice.reasons`` says why)."""
        return self.choice.kind

    @property
    def variables(self) -> list[str]:
        return list(self._sim.variables)

    @property
    def constants(self) -> dict[str, float]:
        """Every constant with its value in the model file."""
        return dict(self._sim.defaults)

    @property
    def units(self) -> dict[str, str]:
        return dict(self._sim.units)

    def run(self, params: Mapping[str, object] | None = None, *, final_time: float | None = None,
            columns: Sequence[str] | None = None):
        """Run with ``params`` overriding constants (Vensim names, checked with close matches).

        Numbers give one run: a DataFrame indexed by time with one column per variable. A list or
        array of N values for any constant gives N runs: an ``xarray.Dataset`` with dimensions
        (time, run), one variable per model variable and the varied constants as run coordinates.
        """
        params = dict(params or {})
        sizes = {len(np.atleast_1d(v)) for v in params.values() if np.ndim(v) == 1}
        if not sizes:
            return self._sim.run_frame({k: float(v) for k, v in params.items()}, final_time=final_time,
                                       columns=columns)
        if len(sizes) > 1:
            raise SdloopError(f"the varied constants have different numbers of values: {sorted(sizes)}")
        n = sizes.pop()
        arrays = {k: (np.asarray(v, dtype=float) if np.ndim(v) == 1 else float(v)) for k, v in params.items()}
        result = self._sim.run(arrays, n=n, columns=columns, final_time=final_time)
        return to_dataset(result, {self._sim.resolve(k, constants_only=True): v for k, v in arrays.items()
                                   if np.ndim(v) == 1})


def to_dataset(result, varied: Mapping[str, np.ndarray]):
    """An EngineResult as an xarray Dataset (time, run)."""
    import xarray as xr

    coords = {"time": result.times, "run": np.arange(result.n)}
    coords.update({name: ("run", values) for name, values in varied.items()})
    data = {name: (("time", "run"), values) for name, values in result.values.items() if name not in varied}
    dataset = xr.Dataset(data, coords=coords)
    dataset["finite"] = ("run", np.asarray(result.finite, dtype=bool))
    return dataset


def load(path: str | Path, *, engine: str = "auto") -> Model:
    """A model file (.mdl or XMILE) ready to run; see ``Model.run``."""
    return Model(path, engine)


def run_project(path: str | Path | Sequence[str | Path], *, results: str | Path = "results",
                ensemble: bool = True, only: str | None = None, cases: str | None = None,
                scenarios: str | None = None, strategies: str | None = None, uncalibrated: bool = False,
                cache: bool = True, samples: int | None = None, workers: int = 1, engine: str = "auto",
                progress: bool = False) -> Path:
    """Run one project file (or several into one directory), as ``sdloop run`` does; its run directory."""
    from sdloop.report.runner import PARTS, RunOptions, run_projects

    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    parts = {"metrics": ("metrics",), "figures": ("metrics", "figures"), "ensemble": ("ensemble",)}.get(only) or \
        tuple(p for p in PARTS if ensemble or p != "ensemble")
    options = RunOptions(results=Path(results), parts=parts, cases=cases, scenarios=scenarios,
                         strategies=strategies, uncalibrated=uncalibrated, engine=engine, cache=cache,
                         workers=workers, samples=samples, progress=progress, command=["sdloop.run_project"])
    latest, _ = run_projects(paths, options)
    return latest.resolve()


class RunDirectory:
    """A run directory read back: tables as tidy DataFrames, by project."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        try:
            self.manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SdloopError(f"not a run directory (no readable manifest.json): {exc}", file=path) from None
        self.outputs: dict[str, dict] = self.manifest.get("notes", {}).get("outputs", {})

    @property
    def projects(self) -> list[str]:
        return list(self.outputs)

    def _entry(self, project: str | None) -> dict:
        if project is None:
            if len(self.outputs) != 1:
                raise SdloopError(f"say which project: {', '.join(self.outputs)}", file=self.path)
            project = next(iter(self.outputs))
        if project not in self.outputs:
            raise SdloopError(f"no project {project!r} in this run ({', '.join(self.outputs)})", file=self.path)
        return self.outputs[project]

    def _read(self, project: str | None, key: str) -> pd.DataFrame:
        name = self._entry(project).get(key)
        if not name or not (self.path / name).exists():
            raise SdloopError(f"this run has no {key}", file=self.path)
        return pd.read_csv(self.path / name, keep_default_na=False, na_values=[""])

    def metrics(self, project: str | None = None) -> pd.DataFrame:
        """One row per run: dimensions (case, strategy, scenario) and each metric (NaN: never or undefined)."""
        return self._read(project, "metrics")

    def claims(self, project: str | None = None) -> pd.DataFrame:
        return self._read(project, "claims")

    def trajectories(self, project: str | None = None, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Long (tidy) form: the dimensions, time, variable, value."""
        wide = self._read(project, "trajectories")
        dims = [c for c in ("case", "scenario", "strategy") if c in wide.columns]
        names = [c for c in wide.columns if c not in (*dims, "time")]
        for name in variables or ():
            if name not in names:
                import difflib

                close = difflib.get_close_matches(name, names, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise SdloopError(f"{name!r}: no such variable in this run's trajectories{hint}", file=self.path)
        keep = [c for c in names if variables is None or c in variables]
        return wide.melt(id_vars=[*dims, "time"], value_vars=keep, var_name="variable", value_name="value")

    def ensemble(self, table: str = "robustness", project: str | None = None) -> pd.DataFrame:
        """An ensemble table: robustness, minimax_regret, bands, sobol or claims."""
        folder = self._entry(project).get("ensemble")
        if not folder or not (self.path / folder / f"{table}.csv").exists():
            raise SdloopError(f"this run has no ensemble table {table!r}", file=self.path)
        return pd.read_csv(self.path / folder / f"{table}.csv", keep_default_na=False, na_values=[""])


def load_run(path: str | Path) -> RunDirectory:
    """A run directory (``results/latest`` or any other) as tidy tables."""
    return RunDirectory(path)
