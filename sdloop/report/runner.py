"""``sdloop run``: one run directory for one or more projects.

Every project is read and checked against its model before anything runs. Then each study's
runs, tables and figures are written (``<output>/``, its metrics and claims files), then its
ensemble (``[ensemble]``, into its ``output`` folder), and last ``manifest.json``. Work whose
inputs did not change is taken from the cache (``sdloop.report.cache``); ``parts`` chooses what
to do: ``metrics`` (runs and tables), ``figures`` (runs, tables and figures), ``ensemble``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from sdloop.errors import SdloopError
from sdloop.experiments.metrics import format_value
from sdloop.experiments.project import load_project
from sdloop.experiments.study import Study
from sdloop.report.cache import Cache
from sdloop.report.exports import write_index
from sdloop.report.output import manifest, new_run_dir, write_json
from sdloop.report.snapshot import copy_inputs, project_files

PARTS = ("metrics", "figures", "ensemble")


@dataclass
class RunOptions:
    results: Path = Path("results")
    parts: tuple[str, ...] = PARTS
    cases: str | None = None
    scenarios: str | None = None
    strategies: str | None = None
    uncalibrated: bool = False
    engine: str = "auto"
    cache: bool = True
    workers: int = 1
    samples: int | None = None
    progress: bool | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))


def load_studies(paths: Sequence[Path], options: RunOptions) -> list[Study]:
    """Every project read, subset and checked against its model (errors before any run)."""
    studies = []
    for path in paths:
        project = load_project(path, uncalibrated=options.uncalibrated)
        subset = {}
        for dim, wanted in (("cases", options.cases), ("scenarios", options.scenarios),
                            ("strategies", options.strategies)):
            if wanted and (len(paths) == 1 or getattr(project, dim)):
                subset[dim] = wanted
        studies.append(Study(project.select(**subset), engine=options.engine))
    _check_outputs(studies)
    return studies


def _check_outputs(studies: Sequence[Study]) -> None:
    seen: dict[str, str] = {}
    for study in studies:
        p = study.project
        files = {p.output + "/", p.metrics_file}
        if study.claims:
            files.add(p.claims_file)
        if p.ensemble is not None:
            files.add(p.ensemble.output + "/")
        for name in files:
            if name in seen:
                raise SdloopError(f"{p.path.name} and {seen[name]} both write {name} (set 'output', "
                                  "'metrics_file' or 'claims_file')", file=p.path)
            seen[name] = p.path.name


def run_projects(paths: Sequence[Path], options: RunOptions) -> tuple[Path, list[str]]:
    """Run the projects into a new run directory; (its path under ``results/latest``, console lines)."""
    studies = load_studies(paths, options)
    cache = Cache(enabled=options.cache)
    lines: list[str] = []
    parameters, inputs, seeds, models = {}, {}, {}, {}
    notes = {"calibrated": [], "engines": {}, "layers": {}, "reused": {}, "outputs": {}}
    with new_run_dir(options.results, "run") as run_dir:
        used, titles = {}, {}
        for study in studies:
            lines += _run_one(study, run_dir, cache, options, parameters, inputs, seeds, notes, titles)
            models[study.project.name] = study.project.model
            used.update({f"{study.project.name}/{name}": path for name, path in project_files(study.project).items()})
        for name, path in used.items():
            if not name.endswith("/model"):
                inputs.setdefault(name, path)
        copies = copy_inputs(run_dir, used)  # what `sdloop compare` and `sdloop plot` read back
        calibrated = notes["calibrated"] or "none: models run on their documented priors"
        write_json(manifest(models=models, runs=parameters, inputs=inputs, seeds=seeds, command=options.command,
                            notes={**notes, "calibrated": calibrated}, copies=copies), run_dir / "manifest.json")
        write_index(run_dir, titles)
    lines.append("Calibrated parameters used for: " + (", ".join(notes["calibrated"]) or "none (documented priors)"))
    lines.append(f"Results written to {options.results / 'latest'}")
    return options.results / "latest", lines


def _run_one(study: Study, run_dir: Path, cache: Cache, options: RunOptions, parameters, inputs, seeds,
             notes, titles: dict) -> list[str]:
    from sdloop.report.study_report import run_study

    project = study.project
    lines = [f"{project.name}: {project.description or project.model.name}",
             f"  engine: {study.choice.describe()}",
             f"  parameters: {study.project.describe_layers()}"]
    if project.added:
        lines.append(f"  also run (referred to by metrics): {', '.join(project.added)}")
    notes["engines"][project.name] = study.choice.describe()
    runs_made = "metrics" in options.parts or "figures" in options.parts
    has_ensemble = "ensemble" in options.parts and project.ensemble is not None
    notes["outputs"][project.name] = {
        "metrics": project.metrics_file if runs_made else None,
        "claims": project.claims_file if runs_made and study.claims else None,
        "trajectories": f"{project.output}/trajectories.csv" if runs_made and project.trajectories != "none" else None,
        "figures": project.output if "figures" in options.parts else None,
        "ensemble": project.ensemble.output if has_ensemble else None}
    notes["layers"][project.name] = project.describe_layers()
    notes["calibrated"] += [name or Path(entry.source).stem for name, entry in project.fitted.items()]
    for name, path in project.inputs().items():
        inputs[f"{project.name}/{name}"] = path
    for key, values in study.params.items():
        parameters["/".join([project.output, *[k for k in key if k]])] = values
    if "metrics" in options.parts or "figures" in options.parts:
        report = run_study(study, run_dir, cache=cache, figures="figures" in options.parts,
                           workers=options.workers, progress=options.progress)
        titles.update(report.titles)
        notes["reused"][project.name] = dict(report.reused)
        lines += _summary(study, report.result)
        lines.append(f"  reused {report.reused['runs']} of {len(study.params)} runs from the cache"
                     + (f"; figures: {report.reused['figures']} reused, {report.reused['drawn']} drawn"
                        if "figures" in options.parts else ""))
    if "ensemble" in options.parts and project.ensemble is not None:
        from sdloop.report.ensemble_report import headline, run_project_ensemble

        info = run_project_ensemble(study, run_dir / project.ensemble.output, cache=cache,
                                    samples=options.samples, progress=options.progress)
        seeds[f"{project.name}/ensemble"] = info["seed"]
        lines += ["  " + line for line in headline(info).splitlines()]
    return lines


def _summary(study: Study, result) -> list[str]:
    specs = {s.name: s for s in study.project.metrics}
    shown = result.metrics.copy()
    for name, spec in specs.items():
        shown[name] = shown[name].map(lambda v, spec=spec: format_value(float(v), spec))
    lines = [f"  metrics ({study.project.metrics_file}), horizon {study.horizon:g}:"]
    lines += ["    " + line for line in shown.to_string(index=False).splitlines()]
    if len(result.claims):
        lines.append(f"  claims ({study.project.claims_file}):")
        for row in result.claims.itertuples():
            state = "holds" if row.holds is True else "does not hold" if row.holds is False else "not evaluated"
            lines.append(f"    {row.claim}: {state}")
    return lines
