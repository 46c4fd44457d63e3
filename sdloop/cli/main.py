"""The ``sdloop`` command line: run, simulate (and the analysis commands).

Errors a user can cause end with one line ``FILE:LINE: VARIABLE: message`` on stderr and
a non-zero exit status (2 for unusable input); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from sdloop.errors import SdloopError


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="one run of a model; a CSV with time and one column per variable")
    p.add_argument("model", type=Path, help="model file (.mdl or .xmile)")
    p.add_argument("--case", type=Path, action="append", default=[],
                   help="case TOML file; repeatable, later files override earlier ones")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                   help="override one constant (after the case files); repeatable")
    p.add_argument("--final-time", type=float, help="end of the run (model units, e.g. 2035)")
    p.add_argument("--engine", choices=["pysd", "numpy", "compiled"], default="pysd",
                   help="simulation engine (numpy: the vectorized engine; compiled: its C kernel, the numpy "
                        "engine when no C compiler is present)")
    p.add_argument("--threads", type=int, help="with --engine compiled: threads (default: every core)")
    p.add_argument("--columns", help='comma-separated Vensim names, e.g. "Talent,Policy Funds"')
    p.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    p.add_argument("--show-code", action="store_true",
                   help="with --engine numpy or compiled: print the generated code (Python or C)")
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from sdloop.engines.pysd_model import load_model
    from sdloop.report.output import write_csv
    from sdloop.experiments.overrides import load_case, merge, parse_set

    layers = [load_case(path) for path in args.case] + [parse_set(args.assignments)]
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    if args.engine != "pysd":
        from sdloop.cli.ensemble import simulate_engine

        frame = simulate_engine(args.model, layers, backend=args.engine, final_time=args.final_time,
                                columns=columns, show_code=args.show_code, threads=args.threads)
        if frame is None:
            return 0
    else:
        model = load_model(args.model)
        frame = model.run(merge(model, layers), final_time=args.final_time, columns=columns)
    if args.out:
        write_csv(frame, args.out)
    else:
        frame.to_csv(sys.stdout)
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run the default scenario set; write a run directory under results/")
    p.add_argument("--models", type=Path, default=Path("models"), help="directory of model files")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--cases", help="comma-separated subset of sector cases (default: all in models/cases)")
    p.add_argument("--strategies", help="comma-separated subset of strategies (default: all)")
    p.add_argument("--scenarios", help="comma-separated subset of sector scenarios (default: all)")
    p.add_argument("--loop-scenarios", help="comma-separated subset of policy-loop scenarios (default: all)")
    p.add_argument("--fitted", type=Path, default=Path("calibration/fitted"),
                   help="fitted parameter files from `sdloop calibrate` (used when present)")
    p.add_argument("--uncalibrated", action="store_true", help="ignore fitted parameters; run the priors")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sdloop.report.ensemble_report import headline, run_default_ensemble
    from sdloop.report.output import manifest, new_run_dir, write_csv, write_json
    from sdloop.report.policy_report import run_policy_loop
    from sdloop.report.sector_report import run_sectors, summary_table

    fitted = None if args.uncalibrated else args.fitted
    with new_run_dir(args.results, "run") as run_dir:
        loop = run_policy_loop(args.models, run_dir / "policy_loop", args.loop_scenarios, fitted)
        sector = run_sectors(args.models, run_dir / "sector", cases=args.cases, strategies=args.strategies,
                             scenarios=args.scenarios, fitted_dir=fitted)
        ensemble = run_default_ensemble(args.models, run_dir / "ensemble", cases=args.cases,
                                        strategies=args.strategies, scenarios=args.scenarios, fitted_dir=fitted)
        calibrated = loop["calibrated"] + sector["calibrated"]
        write_csv(sector["metrics"], run_dir / "metrics.csv", index=False, na_rep="", float_format="%.6g")
        write_json(
            manifest(models={"policy_loop": loop["model"], "sector_lifecycle": sector["model"]},
                     runs={**loop["parameters"], **{f"sector/{k}": v for k, v in sector["parameters"].items()}},
                     inputs={**loop["inputs"], **sector["inputs"], **ensemble["inputs"]},
                     seeds={"ensemble": ensemble["seed"]}, command=sys.argv,
                     notes={"calibrated": calibrated or "none: models run on their documented priors"}),
            run_dir / "manifest.json",
        )
    print(f"Four-stage policy loop, values at {loop['final_time']:g}:")
    print(loop["summary"].to_string(float_format=lambda v: f"{v:,.3f}"))
    print("\nSector lifecycle: strategies by case and scenario (metrics.csv):")
    print(summary_table(sector["metrics"]))
    print("\n" + headline(ensemble))
    print("\nCalibrated parameters used for: " + (", ".join(calibrated) if calibrated else
                                                  "none (documented priors)"))
    print(f"Results written to {args.results / 'latest'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdloop", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    from sdloop import __version__

    parser.add_argument("--version", action="version", version=f"sdloop {__version__}")
    from calibration.cli import add_calibrate_parser
    from sdloop.cli.analysis import add_check_parser, add_loops_parser
    from sdloop.cli.diagram import add_diagram_parser, add_sketch_parser
    from sdloop.cli.ensemble import add_bench_parser, add_ensemble_parser

    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_simulate(sub)
    add_calibrate_parser(sub)
    add_check_parser(sub)
    add_bench_parser(sub)
    add_ensemble_parser(sub)
    add_loops_parser(sub)
    add_sketch_parser(sub)
    add_diagram_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        return args.handler(args)
    except SdloopError as exc:
        if debug:
            raise
        print(f"sdloop: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("sdloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
