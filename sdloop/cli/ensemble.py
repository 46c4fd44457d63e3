"""``sdloop ensemble [PROJECT]``: a project's strategies under parameter uncertainty.

N draws of the project's uncertain parameters (``[ensemble] uncertainty``) for every case x
scenario x strategy, run by the vectorized engine in chunks; writes a run directory
(robustness.csv, minimax_regret.csv, bands.csv, sobol.csv, claims.csv with each claim's share
of draws, figures, manifest.json) under ``--results`` unless ``--out`` is given. Runs layer:
model defaults < case < fitted < sampled value < scenario < strategy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdloop.cli import options


def add_ensemble_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ensemble", help="strategies under parameter uncertainty: bands, robustness, claims",
                              description="N parameter draws for every case x scenario x strategy of a project, "
                                          "run by the vectorized engine in chunks.")
    p.add_argument("project", type=Path, nargs="?",
                   help="project file (default: the project in --models with an [ensemble])")
    p.add_argument("--models", type=Path, default=Path("models"), help="where to look for the project file")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--out", type=Path, help="write into this directory instead of a new run directory")
    p.add_argument("--cases", type=options.name_list, help="comma-separated subset of cases (default: all)")
    p.add_argument("--strategies", type=options.name_list, help="comma-separated subset of strategies (default: all)")
    p.add_argument("--scenarios", type=options.name_list, help="comma-separated subset of scenarios (default: all)")
    p.add_argument("-n", "--samples", type=options.positive_int, help="parameter draws (default: the project's)")
    p.add_argument("--seed", type=options.seed, help="random seed of the draws (default: the project's)")
    p.add_argument("--method", choices=["lhs", "sobol", "random"], help="sampling (default: the project's)")
    p.add_argument("--uncertainty", type=Path,
                   help="uncertain parameters (default: the project's); 'posterior': the project's together "
                        "with the calibration's posterior draws (FITTED/CASE.posterior.csv), sampled jointly")
    p.add_argument("--parameters", type=options.name_list, help="comma-separated subset of the uncertain parameters")
    p.add_argument("--chunk", type=options.positive_int, default=10_000, help="draws per chunk (default: %(default)s)")
    p.add_argument("--workers", type=options.positive_int, default=1, help="local worker processes (default: %(default)s)")
    p.add_argument("--scheduler", type=options.scheduler_address,
                   help="address of a dask.distributed scheduler, e.g. tcp://127.0.0.1:8786 (it must answer "
                        f"within {options.SCHEDULER_TIMEOUT:g} s)")
    p.add_argument("--sobol", type=options.nonnegative_int, metavar="N",
                   help="Sobol indices per case, Saltelli base sample N (a power of 2; 0: none; default: the project's)")
    p.add_argument("--uncalibrated", action="store_true", help="leave the fitted (calibrated) values out")
    p.add_argument("--engine", choices=["auto", "compiled", "numpy", "pysd"], default="auto", help=argparse.SUPPRESS)
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--save-samples", action="store_true", default=None,
                   help="also write each draw's inputs and metrics (samples.parquet, claims_draws.parquet) "
                        "for `sdloop discover`")
    p.set_defaults(handler=run_ensemble_command)
    return p


def _default_project(models: Path) -> Path:
    from sdloop.experiments.bench import benchmark_project

    return benchmark_project(models)


def run_ensemble_command(args: argparse.Namespace) -> int:
    from sdloop.errors import OverrideError
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study
    from sdloop.report.cache import Cache
    from sdloop.report.ensemble_report import headline, run_project_ensemble
    from sdloop.report.exports import write_index
    from sdloop.report.output import manifest, new_run_dir, replaced_dir, write_json
    from sdloop.report.snapshot import copy_inputs, project_files

    if args.sobol and (args.sobol < 2 or args.sobol & (args.sobol - 1)):
        raise OverrideError(f"{args.sobol} is not a power of 2 (2, 4, 8, ...; 0 for none)", variable="--sobol")
    if args.scheduler:
        from sdloop.cli.options import check_scheduler

        check_scheduler(args.scheduler)
    path = args.project or _default_project(args.models)
    project = load_project(path, uncalibrated=args.uncalibrated)
    if project.ensemble is None:
        raise OverrideError("the project has no [ensemble] table (uncertain parameters, draws, seed)", file=path)
    study = Study(project.select(cases=args.cases, scenarios=args.scenarios, strategies=args.strategies),
                  engine=args.engine)
    print(f"sdloop: {study.project.describe_layers()} (draws after fitted values)", file=sys.stderr)
    for note in study.choice.notes:  # why the compiled engine is not used, in one line
        print(f"sdloop: {note}", file=sys.stderr)

    def write(out: Path) -> dict:
        info = run_project_ensemble(study, out, cache=Cache(enabled=False), samples=args.samples, seed=args.seed,
                                    method=args.method, chunk_size=args.chunk, workers=args.workers,
                                    scheduler=args.scheduler, sobol=args.sobol, figures=not args.no_figures,
                                    uncertainty=args.uncertainty, parameters=args.parameters,
                                    save_samples=args.save_samples)
        design = info["design"]
        files = {**project_files(study.project), "uncertainty": info["space"].source}
        used = {f"{project.name}/{name}": file for name, file in files.items()}
        copies = copy_inputs(out, used)
        write_json(manifest(models={project.name: project.model},
                            runs={"/".join(k for k in key if k): {**design.cases[key[0]],
                                                                  **design.layer(key[0], "scenario", key[1]),
                                                                  **design.layer(key[0], "strategy", key[2])}
                                  for key in design.keys},
                            inputs={k: v for k, v in used.items() if not k.endswith("/model")}, copies=copies,
                            seeds={"ensemble": info["seed"]}, command=sys.argv,
                            notes={"samples": info["samples"], "method": info["method"], "runs": info["runs"],
                                   "layers": study.project.describe_layers(),
                                   "engine": study.choice.describe(),
                                   "uncertain": {p.name: p.describe() for p in info["space"].parameters}}),
                   out / "manifest.json")
        write_index(out)
        return info

    if args.out:
        with replaced_dir(args.out) as work:
            info = write(work)
        where = args.out
    else:
        with new_run_dir(args.results, "ensemble") as run_dir:
            info = write(run_dir)
        where = args.results / "latest"
    print(headline(info))
    print(f"Results written to {where}")
    return 0
