"""``sdloop run [PROJECT ...]``: run projects into one run directory under ``results/``.

Without PROJECT, every ``*.project.toml`` in ``--models`` (default ``models/``) runs. Work whose
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
    p.add_argument("projects", type=Path, nargs="*", help="project files (default: every *.project.toml in --models)")
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


def run_command(args: argparse.Namespace) -> int:
    from sdloop.errors import OverrideError
    from sdloop.experiments.project import find_projects
    from sdloop.report.runner import PARTS, RunOptions, run_projects

    paths = list(args.projects) or find_projects(args.models)
    if not paths:
        raise OverrideError(f"no project files (*.project.toml) in {args.models}", file=args.models)
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
