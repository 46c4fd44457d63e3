"""One baseline everywhere: the parameter layers a command runs a model with.

Every command that runs a model (``run``, ``ensemble``, ``simulate``, ``loops --dominance``)
layers the same constants: model defaults < fitted values of the model < case < fitted values
of the case < scenario < strategy < ``--set``. Fitted values, cases, scenarios and strategies
come from the project file that declares the model (``*.project.toml`` next to it, or
``--project``); ``--uncalibrated`` leaves fitted values out. ``describe`` says what was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sdloop.errors import OverrideError
from sdloop.experiments.overrides import Overrides, load_case
from sdloop.experiments.project import Project, load_project, project_for_model


@dataclass(frozen=True)
class Baseline:
    """The layers of one run, lowest first, and a sentence saying what they are."""

    layers: tuple[Overrides, ...]
    parts: tuple[str, ...]
    project: Project | None = None

    def describe(self) -> str:
        where = f" (project {self.project.path})" if self.project else " (no project file declares this model)"
        return "parameters: " + " < ".join(self.parts) + where


def _entry(project: Project | None, dim: str, name: str | None) -> Overrides | None:
    if not name:
        return None
    if dim == "case" and Path(name).suffix == ".toml":
        return load_case(name)
    if project is None:
        raise OverrideError(f"--{dim} {name}: no project file declares this model, so no {dim}s are known "
                            "(give --project, or a case file)")
    table = {"case": project.cases, "scenario": project.scenarios, "strategy": project.strategies}[dim]
    if name not in table:
        known = ", ".join(table) or "none"
        raise OverrideError(f"unknown {dim} '{name}' in {project.path}; known: {known}")
    return table[name]


def baseline(model: str | Path, *, project: str | Path | None = None, cases: Sequence[str] = (),
             scenario: str | None = None, strategy: str | None = None, uncalibrated: bool = False,
             extra: Sequence[Overrides] = ()) -> Baseline:
    """The layers for running ``model``: its project's fitted values, then the given case(s),
    scenario and strategy (names from the project, or case files), then ``extra`` (``--set``)."""
    path = Path(project) if project else project_for_model(model)
    loaded = load_project(path, uncalibrated=uncalibrated) if path else None
    if loaded is not None and Path(loaded.model).resolve() != Path(model).resolve():
        raise OverrideError(f"{path} is a project for {loaded.model}, not {model}")
    layers, parts = [], ["model defaults"]
    if loaded is not None and "" in loaded.fitted:
        layers.append(loaded.fitted[""])
        parts.append(f"fitted ({loaded.fitted[''].source})")
    case_names = []
    for name in cases:
        case = _entry(loaded, "case", name)
        case_names.append(case.name)
        layers.append(case)
        parts.append(f"case {case.name}")
        fitted = _fitted_case(loaded, case.name)
        if fitted is not None:
            layers.append(fitted)
            parts.append(f"fitted ({fitted.source})")
    for dim, name in (("scenario", scenario), ("strategy", strategy)):
        entry = _entry(loaded, dim, name)
        if entry is not None:
            layers.extend(entry.for_case(c) for c in case_names or [""])  # its [NAME.cases.CASE], as `run`
            parts.append(f"{dim} {entry.name}")
    for layer in extra:
        if layer.parameters:
            layers.append(layer)
            parts.append(layer.source or layer.name)
    if uncalibrated:
        parts.append("fitted values ignored (--uncalibrated)")
    return Baseline(tuple(layers), tuple(parts), loaded)


def _fitted_case(project: Project | None, name: str) -> Overrides | None:
    if project is None or project.uncalibrated or not project.fitted_source:
        return None
    where = Path(project.fitted_source)
    if where.suffix == ".toml":
        return None
    path = where / f"{name}.toml"
    return load_case(path) if path.exists() else None
