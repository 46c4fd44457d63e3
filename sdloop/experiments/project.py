"""Project files: a study declared as data (TOML).

A project names the model, its cases, strategies and scenarios (files of their own or tables
inline), fitted parameters, the horizon, metrics, claims, figures and an ensemble::

    name = "sector"
    model = "sector_lifecycle.mdl"            # paths are relative to the project file
    cases = ["cases/nev.toml", "cases/ic.toml"]
    strategies = "strategies.toml"
    scenarios = "scenarios.toml"
    fitted = "../calibration/fitted"           # a directory: CASE.toml per case; a file: the model's
    horizon = 2035

    [metrics.peak_gap]
    expr = 'max("Supply Gap")'
    better = "lower"

    [[claims]]
    name = "protection_causes_gaps"
    case = "ic"
    scenario = "baseline"
    holds = 'peak_gap(strategy="protection") > peak_gap(strategy="no_policy")'

A run's constants are layered: model defaults < fitted (model) < case < fitted (case) <
scenario < strategy. ``load_project`` reads and checks the file's form; ``Study`` (in
``sdloop.experiments.study``) checks every name against the model before any run.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from sdloop.errors import OverrideError
from sdloop.experiments import project_specs as specs
from sdloop.experiments.claims import ClaimSpec
from sdloop.experiments.metrics import DIMS, MetricSpec
from sdloop.experiments.overrides import Overrides, _parameters, load_case, load_collection, read_toml
from sdloop.experiments.project_specs import Context, EnsembleSpec, FigureSpec, Phase, ProjectError
from sdloop.experiments.toml_lines import TomlLines

TOP_KEYS = {"name", "description", "model", "output", "metrics_file", "claims_file", "horizon", "final_time",
            "fitted", "cases", "strategies", "scenarios", "trajectories", "metrics", "claims", "figures",
            "phases", "phases_title", "ensemble", "digits"}
SUFFIX = ".project.toml"


@dataclass(frozen=True)
class Project:
    """A study: the model and everything run, measured and drawn on it."""

    path: Path
    name: str
    model: Path
    description: str = ""
    output: str = ""
    metrics_file: str = "metrics.csv"
    claims_file: str = "claims.csv"
    horizon: float | None = None
    final_time: float | None = None
    trajectories: str = "dynamic"
    digits: int = 6
    cases: dict[str, Overrides] = field(default_factory=dict)
    strategies: dict[str, Overrides] = field(default_factory=dict)
    scenarios: dict[str, Overrides] = field(default_factory=dict)
    fitted: dict[str, Overrides] = field(default_factory=dict)  # case name ("" for the model) -> fitted values
    fitted_source: str | None = None
    metrics: tuple[MetricSpec, ...] = ()
    claims: tuple[ClaimSpec, ...] = ()
    figures: tuple[FigureSpec, ...] = ()
    phases: tuple[Phase, ...] = ()
    phases_title: str = ""
    ensemble: EnsembleSpec | None = None
    uncalibrated: bool = False
    added: tuple[str, ...] = ()  # entries added to a selection because something refers to them

    # dimensions ------------------------------------------------------------
    def entries(self, dim: str) -> dict[str, Overrides]:
        """The entries of ``case``, ``scenario`` or ``strategy``; one unnamed entry when none are declared."""
        table = {"case": self.cases, "scenario": self.scenarios, "strategy": self.strategies}[dim]
        return table or {"": Overrides("", {})}

    @property
    def dims(self) -> tuple[str, ...]:
        """The dimensions the project declares (the key columns of its tables)."""
        return tuple(d for d in DIMS if {"case": self.cases, "scenario": self.scenarios,
                                         "strategy": self.strategies}[d])

    def names(self) -> dict[str, list[str]]:
        return {dim: [n for n in self.entries(dim) if n] for dim in DIMS}

    def keys(self) -> list[tuple[str, str, str]]:
        """Every run: (case, scenario, strategy), in declared order."""
        return list(itertools.product(self.entries("case"), self.entries("scenario"), self.entries("strategy")))

    def layers(self, key: tuple[str, str, str]) -> list[Overrides]:
        """The override layers of one run, lowest first."""
        case, scenario, strategy = key
        layers = [self.fitted[""]] if "" in self.fitted else []
        layers.append(self.entries("case")[case])
        if case and case in self.fitted:
            layers.append(self.fitted[case])
        return layers + [self.entries("scenario")[scenario].for_case(case),
                         self.entries("strategy")[strategy].for_case(case)]

    def describe_layers(self) -> str:
        """The layering, said once in the output of every command."""
        parts = ["model defaults"]
        if "" in self.fitted:
            parts.append(f"fitted ({self.fitted[''].source})")
        if self.cases:
            parts.append("case")
            if any(self.fitted.get(c) for c in self.cases):
                parts.append(f"fitted ({', '.join(c for c in self.cases if c in self.fitted)})")
        parts += [d for d in ("scenario", "strategy") if d in self.dims]
        calibrated = "" if self.fitted or self.uncalibrated else "; no fitted values found"
        if self.uncalibrated:
            calibrated = "; fitted values ignored (--uncalibrated)"
        return " < ".join(parts) + calibrated

    def select(self, *, cases: str | None = None, scenarios: str | None = None,
               strategies: str | None = None) -> "Project":
        """The project with a subset of entries (comma-separated names; None keeps all)."""
        from sdloop.experiments.overrides import select

        chosen = {}
        for dim, wanted, table in (("case", cases, self.cases), ("scenario", scenarios, self.scenarios),
                                   ("strategy", strategies, self.strategies)):
            if wanted and not table:
                raise OverrideError(f"{self.path.name} declares no {dim}s", file=self.path)
            chosen[dim] = {e.name: e for e in select(table, wanted, dim)} if table else {}
        fitted = {name: entry for name, entry in self.fitted.items() if not name or name in chosen["case"]}
        return replace(self, cases=chosen["case"], scenarios=chosen["scenario"], strategies=chosen["strategy"],
                       fitted=fitted)

    def including(self, dim: str, name: str) -> "Project":
        """The project with entry ``name`` of ``dim`` run too (something refers to it)."""
        full = load_project(self.path, uncalibrated=self.uncalibrated)
        table = dict({"case": self.cases, "scenario": self.scenarios, "strategy": self.strategies}[dim])
        if name in table or name not in full.entries(dim):
            return self
        table[name] = full.entries(dim)[name]
        order = [n for n in full.entries(dim) if n in table]
        table = {n: table[n] for n in order}
        field_name = {"case": "cases", "scenario": "scenarios", "strategy": "strategies"}[dim]
        fitted = dict(self.fitted)
        if dim == "case" and name in full.fitted:
            fitted[name] = full.fitted[name]
        return replace(self, **{field_name: table}, fitted=fitted, added=self.added + (f"{dim} {name}",))

    def inputs(self) -> dict[str, str]:
        """Every input file (name -> path), for the manifest."""
        found = {"project": str(self.path)}
        for dim in DIMS:
            for name, entry in self.entries(dim).items():
                if name and entry.source and entry.source != str(self.path):
                    label = f"{dim}/{name}" if dim == "case" else f"{dim}s"
                    found.setdefault(label, entry.source)
        for name, entry in self.fitted.items():
            found[f"fitted/{name or 'model'}"] = entry.source
        if self.ensemble is not None:
            found["uncertainty"] = str(self.ensemble.uncertainty)
        return found


def load_project(path: str | Path, *, uncalibrated: bool = False) -> Project:
    """Read a project file; errors name FILE:LINE and the key."""
    path = Path(path)
    data, text = read_toml(path, ProjectError, missing="no such project file")
    ctx = Context(path, TomlLines(text))
    base = Path(os.path.normpath(path.parent))
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ctx.error(f"unknown key (allowed: {', '.join(sorted(TOP_KEYS))})", unknown[0], variable=unknown[0])
    model = specs._string(data, "model", ctx, required=True)
    name = specs._string(data, "name", ctx, default=path.name.removesuffix(SUFFIX).removesuffix(".toml"))
    if not specs.ENTRY_NAME.match(name):
        raise ctx.error(f"project name {name!r}: a project name is letters, digits, '_' and '-' "
                        "(set name = \"...\" in the file)", "name")
    horizon, final = specs._number(data, "horizon", ctx), specs._number(data, "final_time", ctx)
    trajectories = data.get("trajectories", "dynamic")
    if trajectories not in ("dynamic", "all", "none"):
        raise ctx.error("'trajectories' is \"dynamic\" (no constants), \"all\" or \"none\"", "trajectories")
    digits = data.get("digits", 6)
    if not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ctx.error("'digits' is a whole number from 1 to 17", "digits")
    project = Project(
        path=path, name=name, model=Path(os.path.normpath(base / model)), description=specs._string(data, "description", ctx) or "",
        output=specs.check_output_path(data.get("output", name), ctx, "output"),
        metrics_file=specs.check_output_path(data.get("metrics_file", "metrics.csv"), ctx, "metrics_file"),
        claims_file=specs.check_output_path(data.get("claims_file", "claims.csv"), ctx, "claims_file"),
        horizon=horizon, final_time=final, trajectories=trajectories, digits=digits,
        cases=_cases(data.get("cases"), ctx, base),
        strategies=_collection(data.get("strategies"), ctx, base, "strategies"),
        scenarios=_collection(data.get("scenarios"), ctx, base, "scenarios"),
        metrics=specs.read_metrics(data.get("metrics", {}), ctx),
        claims=specs.read_claims(data.get("claims", []), ctx),
        figures=specs.read_figures(data.get("figures", []), ctx, specs.RUN_FIGURES, "figures"),
        phases=specs.read_phases(data.get("phases", []), ctx),
        phases_title=specs._string(data, "phases_title", ctx) or "",
        ensemble=specs.read_ensemble(data["ensemble"], ctx, base) if "ensemble" in data else None,
        uncalibrated=uncalibrated)
    for dim in DIMS:
        folded: dict[str, str] = {}
        for entry in project.entries(dim):
            source = project.entries(dim)[entry].source
            where = Path(source) if source and source != str(path) else path
            if entry and not specs.ENTRY_NAME.match(entry):
                raise ProjectError(f"{dim} name {entry!r} must be letters, digits, '_' and '-' (it becomes part of "
                                   "file names)", file=where, line=_entry_line(where, entry), variable=entry)
            if entry.lower() in folded:  # one file name on macOS and Windows
                raise ProjectError(f"{dim} names {folded[entry.lower()]!r} and {entry!r} differ only in case (their "
                                   "files would overwrite one another)", file=where, line=_entry_line(where, entry),
                                   variable=entry)
            folded[entry.lower()] = entry
    fitted = specs._string(data, "fitted", ctx)
    if fitted and not uncalibrated:
        where = Path(os.path.normpath(base / fitted))
        project = replace(project, fitted=_fitted(where, project), fitted_source=str(where))
    return project


def _entry_line(path: Path, name: str) -> int | None:
    """The line of the table (or case file) that defines the entry ``name``."""
    if path.stem == name:
        return None
    try:
        return TomlLines(path.read_text(encoding="utf-8")).line(name)
    except (OSError, UnicodeDecodeError):
        return None


def _cases(value, ctx: Context, base: Path) -> dict[str, Overrides]:
    if value is None:
        return {}
    if not value:
        raise ctx.error("'cases' is empty (leave it out to run the model's own values)", "cases")
    if isinstance(value, str) and (base / value).is_dir() and not any((base / value).glob("*.toml")):
        raise ctx.error(f"no case files (*.toml) in {base / value}", "cases")
    if isinstance(value, dict):
        return _inline(value, ctx, "cases")
    if isinstance(value, str) and (base / value).is_dir():
        return {p.stem: load_case(p) for p in sorted((base / value).glob("*.toml"))}
    cases = {}
    for item in specs._strings(value, ctx, "cases"):
        case = load_case(_existing(base / item, ctx, "cases"))
        if case.name in cases:
            raise ctx.error(f"two case files are called {case.name}", "cases")
        cases[case.name] = case
    return cases


def _collection(value, ctx: Context, base: Path, key: str) -> dict[str, Overrides]:
    if value is None:
        return {}
    if not value:
        raise ctx.error(f"'{key}' is empty (leave it out when the project has none)", key)
    if isinstance(value, dict):
        return _inline(value, ctx, key)
    found: dict[str, Overrides] = {}
    for item in specs._strings(value, ctx, key):
        found.update(load_collection(_existing(base / item, ctx, key)))
    return found


def _existing(path: Path, ctx: Context, key: str) -> Path:
    """``path`` if it exists; else the error names the project line that gives it."""
    if not path.exists():
        raise ctx.error(f"{path}: no such file (paths are relative to the project file)", key)
    return path


def _inline(value: dict, ctx: Context, key: str) -> dict[str, Overrides]:
    text = ctx.path.read_text(encoding="utf-8")
    return {name: _parameters(ctx.path, text, table, name, f"{key}.{name}") for name, table in value.items()}


def _fitted(where: Path, project: Project) -> dict[str, Overrides]:
    if where.suffix == ".toml":
        return {"": load_case(where)} if where.exists() else {}
    return {name: load_case(where / f"{name}.toml") for name in project.cases if (where / f"{name}.toml").exists()}


def find_projects(directory: str | Path) -> list[Path]:
    """The project files in a directory (``*.project.toml``), sorted."""
    return sorted(Path(directory).glob(f"*{SUFFIX}"))


def project_for_model(model: str | Path) -> Path | None:
    """The project file next to ``model`` that declares it, if any (for one baseline everywhere)."""
    given = Path(model)
    model = given.resolve()
    for candidate in find_projects(given.parent):
        try:
            data, _ = read_toml(candidate, ProjectError)
        except ProjectError:
            continue
        if isinstance(data.get("model"), str) and (candidate.parent / data["model"]).resolve() == model:
            return candidate
    return None
