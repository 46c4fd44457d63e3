"""``sdloop simulate MODEL``: one run, a CSV with time and one column per variable.

Constants are layered as everywhere (``sdloop.experiments.baseline``): model defaults < fitted
< case < fitted case < scenario < strategy < ``--set``, from the project file that declares the
model; the layers used are said on standard error. ``--uncalibrated`` leaves fitted values out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdloop.cli import options


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    """--project, --case, --scenario, --strategy, --uncalibrated: the layers of a run."""
    p.add_argument("--project", type=Path, help="project file (default: the *.project.toml next to the model "
                                                 "that declares it)")
    p.add_argument("--case", action="append", default=[], metavar="NAME|FILE",
                   help="a case of the project or a case TOML file; repeatable, later ones override earlier ones")
    p.add_argument("--scenario", help="a scenario of the project")
    p.add_argument("--strategy", help="a strategy of the project")
    p.add_argument("--uncalibrated", action="store_true", help="leave the fitted (calibrated) values out")


def add_simulate_parser(sub) -> None:
    p = sub.add_parser("simulate", help="one run of a model; a CSV with time and one column per variable")
    p.add_argument("model", type=Path, help="model file (.mdl or .xmile)")
    add_baseline_arguments(p)
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=VALUE",
                   help="override one constant (after every other layer); repeatable")
    p.add_argument("--final-time", type=options.finite_float, help="end of the run (model units, e.g. 2035)")
    p.add_argument("--engine", choices=["auto", "compiled", "numpy", "pysd"], default="auto",
                   help="simulation engine (auto, the default, and compiled: the model's C kernel, the numpy "
                        "engine when it cannot be built here, with one line saying why; numpy: the vectorized "
                        "engine; pysd: PySD; PySD too when no engine can compile the model)")
    p.add_argument("--threads", type=options.positive_int, help="with the compiled engine: threads (default: every core)")
    p.add_argument("--columns", type=options.name_list, help='comma-separated Vensim names, e.g. "Stock A,Flow B"')
    p.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    p.add_argument("--show-code", action="store_true",
                   help="print the generated code (Python for the numpy engine, C for the compiled one)")
    p.set_defaults(handler=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from sdloop.engines.choice import simulator
    from sdloop.experiments.baseline import baseline
    from sdloop.experiments.overrides import merge, parse_set
    from sdloop.report.output import write_csv

    layers = baseline(args.model, project=args.project, cases=args.case, scenario=args.scenario,
                      strategy=args.strategy, uncalibrated=args.uncalibrated, extra=[parse_set(args.assignments)])
    if layers.project is not None or layers.layers:  # a bare model runs on its own values: nothing to say
        print(f"sdloop: {layers.describe()}", file=sys.stderr)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    choice = simulator(args.model, args.engine, threads=args.threads)
    for note in choice.notes:
        print(note if note.startswith("sdloop: ") else f"sdloop: {note}", file=sys.stderr)
    if args.engine not in ("pysd", "auto") and choice.kind == "pysd":
        for reason in choice.reasons:
            print(f"sdloop: the {args.engine} engine cannot compile {reason}", file=sys.stderr)
        print("sdloop: falling back to the PySD engine for this run", file=sys.stderr)
    sim = choice.simulator
    params = merge(sim, layers.layers)
    if args.show_code:
        if choice.kind != "pysd":
            print(sim.source(varying=(), columns=columns), end="")
        return 0
    frame = sim.run_frame(params, final_time=args.final_time, columns=columns)
    if args.out:
        write_csv(frame, args.out)
    else:
        frame.to_csv(sys.stdout)
    return 0
