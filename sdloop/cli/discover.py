"""``sdloop discover SAMPLES``: the region of the uncertain inputs where a strategy loses or a claim fails.

SAMPLES is a folder with the per-draw results of an ensemble run with ``--save-samples``
(``samples.parquet``, ``claims_draws.parquet``; a run directory's ensemble folder, or the run
directory itself). PRIM (EMA Workbench) or a decision tree finds the box; coverage, density and
mass are printed and written with a figure (``sdloop.report.discover_report``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdloop.cli import options


def add_discover_parser(sub) -> None:
    p = sub.add_parser("discover", help="where in the uncertain inputs a strategy loses or a claim fails (PRIM)",
                       description="Scenario discovery on an ensemble's per-draw results (ensemble --save-samples).")
    p.add_argument("source", type=Path, help="folder with samples.parquet (an ensemble folder or a run directory)")
    p.add_argument("--case", help="case (default: the first in the samples)")
    p.add_argument("--scenario", help="scenario (default: the first in the samples)")
    p.add_argument("--strategy", help="the strategy whose losses to explain (with --metric)")
    p.add_argument("--metric", help="ranked metric on which the strategy is not the best")
    p.add_argument("--claim", help="a claim whose failures to explain (instead of --strategy/--metric)")
    p.add_argument("--opposite", action="store_true",
                   help="explain the opposite: where the strategy is best, or where the claim holds")
    p.add_argument("--method", choices=["prim", "tree"], default="prim", help="PRIM (default) or a decision tree")
    p.add_argument("--threshold", type=options.finite_float, default=0.8, help="PRIM: least density of the box (default: 0.8)")
    p.add_argument("--out", type=Path, help="output folder (default: discover/<what> in the current folder)")
    p.set_defaults(handler=discover_command)


def find_samples(source: Path) -> Path:
    from sdloop.errors import OverrideError

    for candidate in (source / "samples.parquet", *sorted(source.glob("*/samples.parquet"))):
        if candidate.exists():
            return candidate
    raise OverrideError("no samples.parquet here: run the ensemble with --save-samples", file=source)


def discover_command(args: argparse.Namespace) -> int:
    import pandas as pd

    from sdloop.errors import OverrideError
    from sdloop.experiments.discovery import (Outcome, claim_fails, prim_box, read_meta, read_samples,
                                              strategy_loses, tree_box)
    from sdloop.report.discover_report import summary_lines, write_discovery
    from sdloop.report.figures import slug

    if (args.claim is None) == (args.strategy is None or args.metric is None) or \
            (args.claim and (args.strategy or args.metric)):
        raise OverrideError("say what to explain: --strategy NAME --metric NAME, or --claim NAME")
    if not 0 < args.threshold <= 1:
        raise OverrideError("--threshold is a density between 0 and 1")
    path = find_samples(args.source)
    meta = read_meta(path)
    if args.claim:
        claims_path = path.with_name("claims_draws.parquet")
        if not claims_path.exists():
            raise OverrideError("no claims_draws.parquet beside the samples (the project has no claims?)",
                                file=path.parent)
        samples = read_samples(path, meta, case=args.case, scenario=args.scenario)
        outcome = claim_fails(pd.read_parquet(claims_path), samples, meta, claim=args.claim)
        what = f"claim_{args.claim}"
    else:
        samples = read_samples(path, meta, case=args.case, scenario=args.scenario, metric=args.metric)
        case, scenario = str(samples["case"].iloc[0]), str(samples["scenario"].iloc[0])
        outcome = strategy_loses(samples, meta, case=case, scenario=scenario, strategy=args.strategy,
                                 metric=args.metric)
        what = f"{case}_{scenario}_{args.strategy}_not_best_{args.metric}"
    if args.opposite:
        text = f"claim {args.claim} holds" if args.claim else f"{args.strategy} is the best on {args.metric}"
        outcome = Outcome(outcome.inputs, ~outcome.y, text + outcome.what[outcome.what.index(" ("):])
        what = f"not_{what}"
    if not outcome.y.any() or outcome.y.all():
        print(f"sdloop: {outcome.what}: on {'every' if outcome.y.all() else 'no'} draw of {len(outcome.y)}; "
              "there is no region to find")
        return 0
    if args.method == "prim" and outcome.y.mean() >= args.threshold:
        print(f"sdloop: note: {outcome.what} on {outcome.y.mean():.0%} of the draws, at or above the density "
              f"threshold {args.threshold:g} everywhere: try --opposite or a higher --threshold", file=sys.stderr)
    box = prim_box(outcome, threshold=args.threshold) if args.method == "prim" else tree_box(outcome)
    out = args.out or Path("discover") / slug(what)
    write_discovery(outcome, box, out, args.threshold, units=meta.get("input_units"))
    print("\n".join(summary_lines(outcome, box, args.threshold)))
    print(f"Written to {out}")
    return 0
