"""``sdloop optimize FILE``: search lever windows within bounds for an objective under a budget.

FILE (see ``sdloop.experiments.optimize``) names a project, a case and scenario, the constants
to search and their bounds, the objectives and the budget metric. Writes a run directory (or
``--out``) with frontier.csv (the schedules not dominated in budget and objective, the named
strategies among them), candidates.csv (every schedule evaluated), named.csv (the project's
strategies on the same terms, on the frontier or not), optima.csv (the best schedule per
objective and budget level), figures/frontier.{pdf,png} and manifest.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def add_optimize_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("optimize", help="search lever windows for an objective under a budget; the frontier",
                              description="Differential evolution over lever windows within bounds, one engine "
                                          "call per population, for each objective and budget level.")
    p.add_argument("file", type=Path, help="optimisation file (TOML), e.g. models/sector.optimize.toml")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--out", type=Path, help="write into this directory instead of a new run directory")
    p.add_argument("--case", help="case to optimise (default: the file's)")
    p.add_argument("--scenario", help="scenario (default: the file's)")
    p.add_argument("--population", type=int, help="candidates per generation (default: the file's)")
    p.add_argument("--generations", type=int, help="generations per search (default: the file's)")
    p.add_argument("--budgets", type=int, help="budget levels (default: the file's)")
    p.add_argument("--seed", type=int, help="random seed (default: the file's)")
    p.add_argument("--robust", type=int, metavar="DRAWS",
                   help="every candidate on DRAWS draws of the project's uncertainty (default: the file's)")
    p.add_argument("--uncalibrated", action="store_true", help="leave the fitted (calibrated) values out")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.set_defaults(handler=run_optimize_command)
    return p


def run_optimize_command(args: argparse.Namespace) -> int:
    from sdloop.errors import OverrideError
    from sdloop.experiments.optimize import load_optimize_spec, optimize
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study
    from sdloop.report.optimize_report import write_optimization
    from sdloop.report.output import manifest, new_run_dir, write_json

    spec = load_optimize_spec(args.file)
    changes = {k: v for k, v in (("case", args.case), ("scenario", args.scenario), ("population", args.population),
                                 ("generations", args.generations), ("budgets", args.budgets), ("seed", args.seed),
                                 ("draws", args.robust)) if v is not None}
    spec = dataclasses.replace(spec, **changes)
    if spec.population < 2 or spec.generations < 1 or (isinstance(spec.budgets, int) and spec.budgets < 1):
        raise OverrideError("population must be at least 2, generations and budgets at least 1", file=args.file)
    project = load_project(spec.project, uncalibrated=args.uncalibrated)
    study = Study(project.select(cases=spec.case, scenarios=spec.scenario))
    print(f"sdloop: {study.project.describe_layers()}; searching {len(spec.variables)} constants for "
          f"{', '.join(spec.objectives)} under {spec.cost}", file=sys.stderr)

    def step(objective, budget):
        print(f"  {objective}: {spec.cost} <= {budget:,.6g} done", file=sys.stderr)

    result = optimize(spec, study, progress=step)
    specs = {m.name: m for m in project.metrics}

    def write(out: Path) -> None:
        write_optimization(result, spec, out, specs, horizon=study.horizon, figures=not args.no_figures)
        write_json(manifest(models={project.name: project.model}, runs={},
                            inputs={"optimize": args.file, "project": spec.project},
                            seeds={"optimize": spec.seed}, command=sys.argv,
                            notes={"case": spec.case, "scenario": spec.scenario, "objectives": list(spec.objectives),
                                   "cost": spec.cost, "variables": {k: list(v) for k, v in spec.variables.items()},
                                   "population": spec.population, "generations": spec.generations,
                                   "robust_draws": spec.draws, "robust_quantile": spec.quantile,
                                   "candidates": len(result.points), "layers": study.project.describe_layers()}),
                   out / "manifest.json")

    if args.out:
        write(args.out)
        where = args.out
    else:
        with new_run_dir(args.results, "optimize") as run_dir:
            write(run_dir)
        where = args.results / "latest"
    for objective in spec.objectives:
        on = result.named[result.named[f"on_frontier_{objective}"]]["strategy"].tolist()
        print(f"{objective}: named strategies on the frontier: {', '.join(on) or 'none'}")
    print(f"Results written to {where}")
    return 0
