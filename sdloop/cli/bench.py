"""``sdloop bench [--json]``: PySD, the numpy engine and the compiled engine on a project's model, in one process."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdloop.cli import options


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="PySD vs the numpy and compiled engines: time per run, speed-up, "
                                            "parity, memory",
                              description="Run a project's model with PySD, the numpy engine and the compiled "
                                          "engine at N = 1, 1,000, 10,000 and 100,000 in one process.")
    p.add_argument("--models", type=Path, default=Path("models"),
                   help="where to find the project (the first *.project.toml with an [ensemble])")
    p.add_argument("--project", type=Path, help="the project whose model and uncertain parameters to use")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--sizes", type=options.int_list, default=(1, 1000, 10000, 100000), help="comma-separated N (default: 1,1000,10000,100000)")
    p.add_argument("--pysd-runs", type=options.positive_int, default=20, help="PySD runs to time (default: %(default)s)")
    p.add_argument("--threads", type=options.positive_int, help="threads of the compiled engine's parallel timing (default: every core)")
    p.set_defaults(handler=run_bench)
    return p


def run_bench(args: argparse.Namespace) -> int:
    from sdloop.experiments.bench import benchmark, format_report

    sizes = tuple(args.sizes)
    figures = benchmark(args.models, sizes=sizes, pysd_runs=args.pysd_runs, threads=args.threads,
                        project=args.project)
    print(json.dumps(figures, indent=2) if args.json else format_report(figures))
    return 0
