"""``sdloop calibrate CASE``: fit, report in a run directory, then write the fitted case file.

The fitted file ``calibration/fitted/CASE.toml`` (estimates only),
``calibration/fitted/CASE.history.toml`` (the dated inputs the fit assumed) and
``calibration/fitted/CASE.posterior.csv`` (posterior draws) are written last, each to a
temporary name first and then renamed together, and only after the fit converged and the
report is complete: a failed, non-converged or interrupted fit leaves the committed files
untouched.
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
    p.add_argument("--starts", type=options.positive_int, default=2,
                   help="independent differential evolutions; the report says how many agree (default 2)")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run directories go")
    p.add_argument("--holdout-from", type=int, default=None,
                   help="first held-back year of the out-of-sample check (default: the target's, 2020)")
    p.add_argument("--fitted-dir", type=Path, default=PACKAGE / "fitted",
                   help="where CASE.toml is written (default calibration/fitted)")
    p.add_argument("--workers", type=options.positive_int, default=None, help="processes for the profiles (default 2)")
    p.add_argument("--draws", type=options.nonnegative_int, default=10_000,
                   help="posterior draws kept after burn-in, saved as calibration/fitted/CASE.posterior.csv "
                        "(default 10000; 0: no posterior)")
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
    from calibration.run import calibrate, fitted_case_text, history_case_text, posterior_csv
    from sdloop.report.output import new_run_dir

    if args.starts < 1:
        raise CalibrationError("--starts must be at least 1", variable="--starts")
    if args.draws < 0:
        raise CalibrationError("--draws must not be negative", variable="--draws")
    path = target_path(args.case)
    cal = calibrate(path, seed=args.seed, starts=args.starts, holdout_from=args.holdout_from,
                    workers=args.workers or default_workers(), draws=args.draws,
                    progress=not args.no_progress)
    with new_run_dir(args.results, f"calibrate-{cal.targets.name}") as run_dir:
        write_report(cal, run_dir)
    name = cal.targets.name
    files = {f"{name}.history.toml": history_case_text(cal), f"{name}.toml": fitted_case_text(cal)}
    if cal.posterior is not None:
        files[f"{name}.posterior.csv"] = posterior_csv(cal)
    write_together(args.fitted_dir, files)
    stale = args.fitted_dir / f"{name}.posterior.csv"
    if cal.posterior is None and stale.exists():
        stale.unlink()  # draws of an earlier fit would not belong to the new estimates
        print(f"note: removed {stale}: --draws 0 gives no posterior for the new fit")
    fitted = args.fitted_dir / f"{name}.toml"
    r = cal.result
    print(f"{cal.targets.name}: NLL {r.nll:.4f}, converged, {r.agreeing_starts}/{len(r.starts)} starts agree, "
          f"{r.evaluations} runs, fit {cal.seconds['fit']:.1f} s, total {sum(cal.seconds.values()):.0f} s; "
          f"engine vs PySD at the estimate {cal.parity:.1e}")
    if cal.posterior is not None:
        post = cal.posterior
        print(f"posterior: {len(post.draws)} draws ({post.walkers} walkers x {post.steps - post.burn} steps after "
              f"{post.burn} burn-in) in {post.seconds:.1f} s; acceptance {post.acceptance:.2f}; "
              f"{'converged' if post.reliable else 'NOT converged (see tau, R-hat)'}")
        print(post.summary().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(cal.statistics[["series", "n", "MAPE", "R2", "UM", "US", "UC", "sigma", "resid_acf1", "runs_p"]].to_string(
        index=False, float_format=lambda v: f"{v:.3g}"))
    print(cal.parameters[["parameter", "estimate", "ci95_lower", "ci95_upper", "identified"]].to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    print(cal.holdout_summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"Fitted parameters written to {fitted}; report in {args.results / 'latest'}")
    return 0


def write_together(directory: Path, files: dict[str, str]) -> None:
    """Write every file to a temporary name, then rename them all: an interruption before the
    renames leaves the earlier files as they were."""
    import os
    import tempfile

    from sdloop.report.output import publish_mode

    directory.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            publish_mode(tmp)
            staged.append((tmp, directory / name))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
