"""The ``sdloop bench`` and ``sdloop ensemble`` subcommands, and the numpy engine for ``simulate``.

``sdloop bench [--json]``: PySD against the vectorized engine on the sector model.

``sdloop ensemble [--cases nev] [--strategies a,b] [--scenarios x,y] [-n 1000] [--seed 1]
[--method lhs|sobol|random] [--chunk 10000] [--workers 2] [--scheduler ADDRESS]
[--uncertainty models/uncertainty.toml] [--sobol N] [--out DIR]``: N parameter samples for
every case x scenario x strategy; writes a run directory (robustness.csv, minimax_regret.csv,
bands.csv, sobol.csv, figures, manifest.json) under ``--results`` unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="PySD vs the numpy and compiled engines: time per run, speed-up, "
                                            "parity, memory",
                              description="Run the sector model with PySD, the numpy engine and the compiled "
                                          "engine at N = 1, 1,000, 10,000 and 100,000 in one process.")
    p.add_argument("--models", type=Path, default=Path("models"), help="directory of model files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--sizes", default="1,1000,10000,100000", help="comma-separated N (default: %(default)s)")
    p.add_argument("--pysd-runs", type=int, default=20, help="PySD runs to time (default: %(default)s)")
    p.add_argument("--threads", type=int, help="threads of the compiled engine's parallel timing (default: every core)")
    p.set_defaults(handler=run_bench)
    return p


def run_bench(args: argparse.Namespace) -> int:
    from sdloop.engines.bench import benchmark, format_report

    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    figures = benchmark(args.models, sizes=sizes, pysd_runs=args.pysd_runs, threads=args.threads)
    print(json.dumps(figures, indent=2) if args.json else format_report(figures))
    return 0


def add_ensemble_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ensemble", help="strategies under parameter uncertainty: bands, robustness, Sobol",
                              description="N parameter samples (models/uncertainty.toml) for every case x scenario "
                                          "x strategy of the sector model, run by the vectorized engine in chunks.")
    p.add_argument("--models", type=Path, default=Path("models"), help="directory of model files")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--out", type=Path, help="write into this directory instead of a new run directory")
    p.add_argument("--cases", help="comma-separated subset of cases (default: all)")
    p.add_argument("--strategies", help="comma-separated subset of strategies (default: all)")
    p.add_argument("--scenarios", help="comma-separated subset of scenarios (default: all)")
    p.add_argument("-n", "--samples", type=int, default=1000, help="parameter samples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the sample (default: %(default)s)")
    p.add_argument("--method", choices=["lhs", "sobol", "random"], default="lhs", help="sampling (default: lhs)")
    p.add_argument("--uncertainty", type=Path, help="uncertain parameters (default: MODELS/uncertainty.toml)")
    p.add_argument("--parameters", help="comma-separated subset of the uncertain parameters")
    p.add_argument("--chunk", type=int, default=10_000, help="samples per chunk (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default: %(default)s)")
    p.add_argument("--scheduler", help="address of a dask.distributed scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--sobol", type=int, default=0, metavar="N",
                   help="also Sobol indices per case, Saltelli base sample N (a power of 2; 0: none)")
    p.add_argument("--fitted", type=Path, default=Path("calibration/fitted"),
                   help="fitted parameter files (used when present)")
    p.add_argument("--uncalibrated", action="store_true", help="ignore fitted parameters")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.set_defaults(handler=run_ensemble_command)
    return p


def run_ensemble_command(args: argparse.Namespace) -> int:
    from sdloop.experiments.ensemble import design_from_experiment, engine_for, run_ensemble
    from sdloop.report.ensemble_report import SOBOL_STRATEGY, sector_sobol, write_ensemble
    from sdloop.errors import OverrideError
    from sdloop.experiments.metrics import THRESHOLD
    from sdloop.report.output import manifest, new_run_dir, write_csv, write_json
    from sdloop.experiments.robustness import minimax_regret, robustness_table
    from sdloop.report.sector_report import load_experiment
    from sdloop.experiments.uncertainty import load_uncertainty

    if args.samples < 1 or args.chunk < 1:
        raise OverrideError("--samples and --chunk must be positive")
    fitted = None if args.uncalibrated else args.fitted
    experiment = load_experiment(args.models, args.cases, args.strategies, args.scenarios, fitted)
    design = design_from_experiment(experiment)
    source = args.uncertainty or args.models / "uncertainty.toml"
    space = load_uncertainty(source)
    engine = engine_for(design.model)
    space = space.checked(engine.resolve)
    if args.parameters:
        space = space.select([engine.resolve(n.strip(), constants_only=True) for n in args.parameters.split(",")])
    summary = run_ensemble(design, space, args.samples, seed=args.seed, method=args.method, chunk_size=args.chunk,
                           workers=args.workers, scheduler=args.scheduler)
    sobol = {}
    if args.sobol:
        strategy = SOBOL_STRATEGY if SOBOL_STRATEGY in design.strategies else next(iter(design.strategies))
        scenario = next(iter(design.scenarios))
        sobol = {case: sector_sobol(design, space, case, scenario, strategy, n=args.sobol, seed=args.seed)
                 for case in design.cases}

    def write(out: Path) -> None:
        if args.no_figures:
            out.mkdir(parents=True, exist_ok=True)
            table = robustness_table(summary)
            write_csv(table, out / "robustness.csv", index=False, float_format="%.6g")
            write_csv(minimax_regret(table), out / "minimax_regret.csv", index=False, float_format="%.6g")
        else:
            thresholds = {c: design.cases[c].get(THRESHOLD, engine.defaults[THRESHOLD]) for c in design.cases}
            write_ensemble(summary, out, units=experiment.model.units, thresholds=thresholds, sobol=sobol)
        if sobol:
            import pandas as pd

            write_csv(pd.concat([t.assign(case=c) for c, t in sobol.items()]), out / "sobol.csv", index=False,
                      float_format="%.4g")
        write_json(manifest(models={"sector_lifecycle": design.model},
                            runs={f"{c}/{sc}/{st}": {**design.cases[c], **design.scenarios[sc], **design.strategies[st]}
                                  for c in design.cases for sc in design.scenarios for st in design.strategies},
                            inputs={"uncertainty": source}, seeds={"ensemble": args.seed}, command=sys.argv,
                            notes={"samples": args.samples, "method": args.method, "runs": summary.runs,
                                   "uncertain": {p.name: p.describe() for p in space.parameters}}),
                   out / "manifest.json")

    if args.out:
        write(args.out)
        where = args.out
    else:
        with new_run_dir(args.results, "ensemble") as run_dir:
            write(run_dir)
        where = args.results / "latest"
    table = minimax_regret(robustness_table(summary))
    print(f"{summary.runs:,} runs ({args.samples:,} samples x {len(design.cases)} cases x {len(design.scenarios)} "
          f"scenarios x {len(design.strategies)} strategies, seed {args.seed})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"Results written to {where}")
    return 0


def simulate_engine(model_path: Path, layers, *, backend: str = "numpy", final_time, columns,
                    show_code: bool = False, threads: int | None = None):
    """``simulate --engine numpy|compiled``: the engine's run, or PySD's when the engine cannot
    compile the model (each reason, with its line, on stderr); ``compiled`` uses the numpy
    engine, with one line saying why, when the C kernel cannot be built. Returns the frame,
    or None when only the generated code was printed (``--show-code``)."""
    from sdloop.engines.compiled import load_engine
    from sdloop.engines.numpy_engine import engine_or_reasons
    from sdloop.engines.pysd_model import load_model
    from sdloop.experiments.overrides import merge
    from sdloop.structure.build import build_structure

    engine, problems = engine_or_reasons(build_structure(model_path),
                                         lambda s: load_engine(s, backend=backend, threads=threads))
    if engine is None:
        for problem in problems:
            print(f"sdloop: the {backend} engine cannot compile {problem}", file=sys.stderr)
        print("sdloop: falling back to the PySD engine for this run", file=sys.stderr)
        if show_code:
            return None
        model = load_model(model_path)
        return model.run(merge(model, layers), final_time=final_time, columns=columns)
    params = merge(engine, layers)
    if show_code:
        print(engine.source(varying=(), columns=columns), end="")
        return None
    return engine.run_frame(params, final_time=final_time, columns=columns)
