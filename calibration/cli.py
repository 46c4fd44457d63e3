"""``sdloop calibrate CASE``: fit, report in a run directory, then write the fitted case file.

The fitted file ``calibration/fitted/CASE.toml`` (estimates only) and
``calibration/fitted/CASE.history.toml`` (the dated inputs the fit assumed) are written last,
atomically, and only
after the fit converged and the report is complete: a failed or non-converged fit leaves
the committed file untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdloop.cli import options

PACKAGE = Path(__file__).resolve().parent


def add_calibrate_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit calibration/targets/CASE.toml; write calibration/fitted/CASE.toml and a report")
    p.add_argument("case", help="case name (nev, ic, national) or a target TOML file")
    p.add_argument("--seed", type=options.seed, default=1, help="random seed for the multi-start draws (default 1)")
    p.add_argument("--starts", type=options.positive_int, default=4, help="number of local searches (default 4)")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--holdout-from", type=int, default=None,
                   help="first held-back year of the out-of-sample check (default: the target's, 2020)")
    p.add_argument("--fitted-dir", type=Path, default=PACKAGE / "fitted",
                   help="where CASE.toml is written (default calibration/fitted)")
    p.add_argument("--workers", type=options.positive_int, default=None, help="processes for starts and profiles (default 2)")
    p.add_argument("--mcmc-steps", type=options.nonnegative_int, default=0,
                   help="emcee steps (16 walkers) for a posterior sample saved as posterior.csv (default 0: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=calibrate_command)


def target_path(case: str) -> Path:
    path = Path(case)
    if path.suffix == ".toml" or path.exists():
        return path
    return PACKAGE / "targets" / f"{case}.toml"


def calibrate_command(args: argparse.Namespace) -> int:
    from calibration.errors import CalibrationError
    from calibration.fit import default_workers
    from calibration.report import write_report
    from calibration.run import calibrate, fitted_case_text, history_case_text
    from sdloop.report.output import atomic_write_text, new_run_dir

    if args.starts < 1:
        raise CalibrationError("--starts must be at least 1", variable="--starts")
    path = target_path(args.case)
    cal = calibrate(path, seed=args.seed, starts=args.starts, holdout_from=args.holdout_from,
                    workers=args.workers or default_workers(), mcmc_steps=args.mcmc_steps,
                    progress=not args.no_progress)
    with new_run_dir(args.results, f"calibrate-{cal.targets.name}") as run_dir:
        write_report(cal, run_dir)
    atomic_write_text(args.fitted_dir / f"{cal.targets.name}.history.toml", history_case_text(cal))
    fitted = atomic_write_text(args.fitted_dir / f"{cal.targets.name}.toml", fitted_case_text(cal))
    r = cal.result
    print(f"{cal.targets.name}: NLL {r.nll:.4f}, converged, {r.agreeing_starts}/{len(r.starts)} starts agree, "
          f"{r.evaluations} runs, fit {cal.seconds['fit']:.0f} s, total {sum(cal.seconds.values()):.0f} s")
    print(cal.statistics[["series", "n", "RMSE", "MAPE", "R2", "UM", "US", "UC"]].to_string(
        index=False, float_format=lambda v: f"{v:.3g}"))
    print(cal.parameters[["parameter", "estimate", "ci95_lower", "ci95_upper", "identified"]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    print(cal.holdout_summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"Fitted parameters written to {fitted}; report in {args.results / 'latest'}")
    return 0
