"""``sdloop run [PROJECT ...]``: run projects into one run directory under ``results/``.

Without PROJECT, every ``*.project.toml`` in ``--models`` (default ``models/``, or the current
folder when it has no ``models/``) runs; a folder given as PROJECT runs its project files. Work whose
inputs did not change is reused from the cache; ``--only`` and ``--no-ensemble`` run parts.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sdloop.cli import options


def add_run_parser(sub) -> None:
    p = sub.add_parser("run", help="run projects (default: every models/*.project.toml) into a run directory",
                       description="Run each project's cases x scenarios x strategies, its metrics, claims, "
                                   "figures and ensemble; write a run directory under --results.")
    p.add_argument("projects", type=Path, nargs="*", help="project files or folders of them (default: every *.project.toml in --models, "
                        "or in the current folder when it has no models/)")
    p.add_argument("--models", type=Path, default=Path("models"), help="where to look for project files")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--cases", type=options.name_list, help="comma-separated subset of cases (default: all)")
    p.add_argument("--strategies", type=options.name_list, help="comma-separated subset of strategies (default: all)")
    p.add_argument("--scenarios", type=options.name_list, help="comma-separated subset of scenarios (default: all)")
    p.add_argument("--uncalibrated", action="store_true", help="leave fitted values out; run the priors")
    p.add_argument("--only", choices=["metrics", "figures", "ensemble"],
                   help="metrics: runs and tables; figures: runs, tables and figures; ensemble: the ensemble")
    p.add_argument("--no-ensemble", action="store_true", help="skip the ensembles")
    p.add_argument("-n", "--samples", type=options.positive_int, help="ensemble draws (default: each project's)")
    p.add_argument("--no-cache", action="store_true", help="redo everything (and store nothing)")
    p.add_argument("--workers", type=options.positive_int, default=min(2, os.cpu_count() or 1),
                   help="processes that draw figures (default: %(default)s)")
    p.add_argument("--engine", choices=["auto", "numpy", "compiled", "pysd"], default="auto",
                   help="auto (default) and compiled: the model's C kernel, the numpy engine when it cannot be "
                        "built here; numpy: the numpy engine; PySD when no engine can compile the model")
    p.set_defaults(handler=run_command)


MODEL_SUFFIXES = (".mdl", ".xmile", ".xml", ".stmx", ".itmx")


def project_paths(given: list[Path], models: Path) -> list[Path]:
    """The project files to run: those given (a folder gives its ``*.project.toml``), else those
    in ``models`` (``models/``, or the current folder when there is no ``models/``)."""
    from sdloop.errors import OverrideError
    from sdloop.experiments.project import find_projects

    paths = []
    for path in given:
        if path.suffix.lower() in MODEL_SUFFIXES:
            raise OverrideError("is a model file; 'sdloop run' takes a project file that names it (model = "
                                f"\"{path.name}\", see the README's \"Project files\"), or run the model once with "
                                f"'sdloop simulate {path}'", file=path)
        found = find_projects(path) if path.is_dir() else [path]
        if not found:
            raise OverrideError("no project files (*.project.toml) in this folder", file=path)
        paths += found
    if given:
        return paths
    if models == Path("models") and not models.is_dir():
        models = Path(".")
    paths = find_projects(models)
    if not paths:
        raise OverrideError(f"no project files (*.project.toml) in {'the current folder' if models == Path('.') else models}"
                            "; give one: sdloop run PROJECT.project.toml", file=models)
    return paths


def run_command(args: argparse.Namespace) -> int:
    from sdloop.report.runner import PARTS, RunOptions, run_projects

    paths = project_paths(args.projects, args.models)
    if args.only == "metrics":
        parts = ("metrics",)
    elif args.only == "figures":
        parts = ("metrics", "figures")
    elif args.only == "ensemble":
        parts = ("ensemble",)
    else:
        parts = tuple(p for p in PARTS if not (p == "ensemble" and args.no_ensemble))
    options = RunOptions(results=args.results, parts=parts, cases=args.cases, scenarios=args.scenarios,
                         strategies=args.strategies, uncalibrated=args.uncalibrated, engine=args.engine,
                         cache=not args.no_cache, workers=args.workers, samples=args.samples)
    _, lines = run_projects(paths, options)
    print("\n".join(lines))
    return 0
