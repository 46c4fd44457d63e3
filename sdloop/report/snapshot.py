"""A copy of every model and input file a run used, inside its run directory.

``copy_inputs(run_dir, files)`` copies each file to ``run_dir/inputs/`` at its path relative to
the folder all of them share, so a copied project file still finds its model, cases and fitted
values by the same relative paths (``sdloop plot`` and ``sdloop compare`` read them there).
Each copy is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

from sdloop.analysis.loops import sidecar_path
from sdloop.report.output import atomic_file

FOLDER = "inputs"


def copy_inputs(run_dir: Path, files: Mapping[str, str | Path]) -> dict[str, str]:
    """Copy ``files`` (name -> path) into ``run_dir/inputs``; name -> the copy's path in the run directory."""
    found = {name: Path(path).resolve() for name, path in files.items() if Path(path).is_file()}
    if not found:
        return {}
    root = Path(os.path.commonpath([str(p.parent) for p in found.values()]))
    copies: dict[str, str] = {}
    done: dict[Path, str] = {}
    for name, path in found.items():
        if path not in done:
            target = run_dir / FOLDER / path.relative_to(root)
            with atomic_file(target) as tmp:
                shutil.copyfile(path, tmp)
            done[path] = target.relative_to(run_dir).as_posix()
        copies[name] = done[path]
    return copies


def project_files(project) -> dict[str, str | Path]:
    """Every file a project file refers to: itself, its model (and the model's loop names), cases,
    strategies, scenarios, fitted values and uncertain parameters, including entries a command
    left out with ``--cases`` and the like, so the copied project opens on its own."""
    from sdloop.experiments.project import load_project

    complete = load_project(project.path, uncalibrated=project.uncalibrated)
    files = {"model": project.model, **{k: Path(v) for k, v in complete.inputs().items()},
             **{k: Path(v) for k, v in project.inputs().items()}}
    sidecar = sidecar_path(project.model)
    if sidecar.exists():
        files["loop names"] = sidecar
    return files
