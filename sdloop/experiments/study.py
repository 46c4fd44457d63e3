"""A project checked against its model, and its runs.

``Study(project)`` picks the engine (``sdloop.engines.choice``), layers every run's constants,
and checks every name the project uses (parameters, metrics, claims, figure lines) before
anything runs. ``study.run()`` makes the runs, one engine call per case and scenario with the
strategies side by side, and evaluates the metrics and claims: a ``StudyResult`` in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.engines.choice import simulator
from sdloop.errors import SimulationError
from sdloop.experiments.claims import check_claims, claims_table
from sdloop.experiments.metrics import DIMS, Compiler, MetricError, MetricSet, RunView, SERIES, VALUE, Where
from sdloop.experiments.metric_units import metric_units
from sdloop.experiments.overrides import merge
from sdloop.experiments.project import Project

Key = tuple  # (case, scenario, strategy)


def group_order(keys: Sequence[Key], metrics: MetricSet, source) -> list[tuple[str, str]]:
    """(case, scenario) groups ordered so that every group another refers to (under(), diff())
    comes first; MetricError for a cycle."""
    groups = list(dict.fromkeys((k[0], k[1]) for k in keys))
    needs = {g: set() for g in groups}
    for key in keys:
        for target in metrics.targets(dict(zip(DIMS, key))):
            other = (target["case"], target["scenario"])
            if other != (key[0], key[1]):
                needs[(key[0], key[1])].add(other)
    ordered, done = [], set()
    while len(ordered) < len(groups):
        ready = [g for g in groups if g not in done and needs[g] <= done]
        if not ready:
            raise MetricError("metrics refer to each other's runs in a circle (under()/diff())", file=source)
        for g in ready:
            ordered.append(g)
            done.add(g)
    return ordered


def stacked_parameters(sim, runs: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray | float]:
    """Several runs' constants as one engine call's input: arrays where they differ."""
    names = set().union(*runs) if runs else set()
    out: dict[str, np.ndarray | float] = {}
    for name in sorted(names):
        values = np.array([r.get(name, sim.defaults[name]) for r in runs], dtype=float)
        out[name] = float(values[0]) if np.all(values == values[0]) else values
    return out


@dataclass
class StudyResult:
    """Runs, metrics and claims of one study, in memory (writing is the report layer's job)."""

    study: "Study"
    runs: dict[Key, pd.DataFrame]
    metrics: pd.DataFrame
    claims: pd.DataFrame
    values: dict[Key, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)


class Study:
    """A project ready to run: engine chosen, parameters layered, every name checked."""

    def __init__(self, project: Project, *, engine: str = "auto") -> None:
        self.choice = simulator(project.model, engine)
        self.sim = sim = self.choice.simulator
        control = sim.control
        self.final_time = project.final_time
        end = project.final_time if project.final_time is not None else control["final time"]
        self.horizon = project.horizon if project.horizon is not None else end
        self.all_names = _full_names(project)
        self._check_horizon(project, control, end)
        metrics = MetricSet(project.metrics, sim, horizon=self.horizon, source=project.path,
                            entries=self.all_names, final_time=self.final_time)
        for export in metrics.exports:  # run what under()/diff() refer to even if a subset was chosen
            for dim, name in export.target:
                project = project.including(dim, name)
        self.project = project
        self.metrics = metrics
        self.params = {key: merge(sim, project.layers(key)) for key in project.keys()}
        self.groups = group_order(list(self.params), metrics, project.path)
        self.claims = check_claims(project.claims, metrics.names, self.all_names, project.path,
                                   metric_units(project.metrics, sim))
        self.figure_columns = self._check_figures()
        self.specs = {s.name: s for s in project.metrics}

    # checks ------------------------------------------------------------------
    def compiler(self, *, allow_under: bool = False) -> Compiler:
        return Compiler(self.sim, horizon=self.horizon, entries=self.all_names, allow_under=allow_under,
                        final_time=self.final_time)

    def _check_horizon(self, project: Project, control, end: float) -> None:
        """The horizon (every metric's default end) must lie within the run."""
        start = control.get("initial time")
        if start is not None and not start <= self.horizon <= end:
            from sdloop.experiments.project_specs import ProjectError
            from sdloop.experiments.toml_lines import TomlLines

            line = TomlLines(project.path.read_text(encoding="utf-8")).line("horizon")
            raise ProjectError(f"horizon {self.horizon:g} is outside the run (INITIAL TIME {start:g} to "
                               f"FINAL TIME {end:g}); set a horizon within it, or final_time", file=project.path,
                               line=line, variable="horizon")

    def _check_figures(self) -> list[str]:
        """Compile every expression the figures draw; the model variables they read."""
        from sdloop.experiments.figure_checks import check_figures

        compiler = self.compiler()
        check_figures(self, compiler)
        return list(compiler.columns)

    def columns(self) -> list[str] | None:
        """What each run records: trajectories plus what metrics and figures read (None: everything)."""
        if self.project.trajectories == "all":
            return None
        wanted = dict.fromkeys(self.metrics.columns + self.figure_columns)
        if self.project.trajectories == "dynamic":
            wanted.update(dict.fromkeys(self.dynamic_variables()))
        return list(wanted) or None

    def dynamic_variables(self) -> list[str]:
        control = {n.lower() for n in ("INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER")}
        return [v for v in self.sim.variables if v not in self.sim.defaults and v.lower() not in control]

    # running -------------------------------------------------------------------
    def run_group(self, group: tuple[str, str], columns: list[str] | None) -> dict[Key, pd.DataFrame]:
        """Every strategy of one case and scenario, in one engine call."""
        keys = [k for k in self.params if (k[0], k[1]) == group]
        stacked = stacked_parameters(self.sim, [self.params[k] for k in keys])
        result = self.sim.run(stacked, n=len(keys), columns=columns, final_time=self.final_time)
        frames = {}
        for i, key in enumerate(keys):
            if not result.finite[i]:
                frame = result.frame(i)
                rows, cols = np.nonzero(~np.isfinite(frame.to_numpy(dtype=float)))
                first = int(np.argmin(rows)) if len(rows) else None
                name = frame.columns[cols[first]] if first is not None else None
                when = f" at time {frame.index[rows[first]]:g}" if first is not None else ""
                structure = getattr(self.sim, "structure", None)
                var = structure.get(name) if structure is not None and name is not None else None
                raise SimulationError(f"run {'/'.join(k for k in key if k)} became non-finite{when}",
                                      file=self.sim.path, line=getattr(var, "line", None), variable=name)
            frames[key] = result.frame(i)
        return frames

    def run(self, *, progress: bool | None = None, groups: Iterable[tuple[str, str]] | None = None,
            runner=None) -> StudyResult:
        """Run every case x scenario x strategy; metrics and claims on the results.

        ``runner(study, group, columns)`` replaces ``run_group`` (the report layer passes a cached one)."""
        from tqdm import tqdm

        runner = runner or (lambda study, group, columns: study.run_group(group, columns))
        columns = self.columns()
        runs: dict[Key, pd.DataFrame] = {}
        for group in tqdm(list(groups or self.groups), desc=f"{self.project.name} runs", unit="group",
                          disable=True if progress is False else None, leave=False):
            runs.update(runner(self, group, columns))
        values = self.evaluate(runs)
        return StudyResult(self, runs, self.metrics_frame(values), claims_table(self.claims, values, self.specs),
                           values)

    def evaluate(self, runs: Mapping[Key, pd.DataFrame]) -> dict[Key, dict[str, np.ndarray]]:
        """Every metric of every run (cross-run references resolved among ``runs``)."""
        views = {key: RunView.of_frame(frame, self.params[key], self.sim.defaults) for key, frame in runs.items()}
        exports: dict[tuple, np.ndarray] = {}

        def refs_for(key):
            def refs(export):
                target = dict(zip(DIMS, key)) | dict(export.target)
                other = tuple(target[d] for d in DIMS)
                if (export.id, other) not in exports:
                    exports[(export.id, other)] = np.asarray(export.node.run(views[other], refs_for(other)))
                return exports[(export.id, other)]
            return refs

        return {key: self.metrics.evaluate(view, refs_for(key)) for key, view in views.items()}

    def metrics_frame(self, values: Mapping[Key, Mapping[str, np.ndarray]]) -> pd.DataFrame:
        """One row per run: the declared dimensions (case, strategy, scenario) then each metric."""
        order = [d for d in ("case", "strategy", "scenario") if d in self.project.dims]
        rows = []
        for key, metrics in values.items():
            named = dict(zip(DIMS, key))
            rows.append({**{d: named[d] for d in order}, **{m: float(v[0]) for m, v in metrics.items()}})
        return pd.DataFrame(rows, columns=[*order, *self.metrics.names])


def _full_names(project: Project) -> dict[str, list[str]]:
    """Every entry the project file declares (not only a selected subset)."""
    from sdloop.experiments.project import load_project

    full = load_project(project.path, uncalibrated=project.uncalibrated)
    return full.names()


__all__ = ["Study", "StudyResult", "group_order", "stacked_parameters", "SERIES", "VALUE", "Where"]
