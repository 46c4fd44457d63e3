"""The ``sdloop check`` and ``sdloop loops`` subcommands.

``add_check_parser(subparsers)`` and ``add_loops_parser(subparsers)`` register them; each
sets ``handler`` to a function taking the parsed arguments and returning the exit status.

``sdloop check MODEL [--strict]``: every finding as ``FILE:LINE: SEVERITY: VARIABLE:
message`` (``error`` or ``warning``) and one summary line on stderr; exit 1 when errors were
found (``--strict``: errors or warnings), 2 when the file cannot be read or parsed, else 0.

``sdloop loops MODEL [--format json|table] [--dominance] [--case NAME|FILE] [--scenario NAME]
[--strategy NAME] [--uncalibrated] [--out DIR]
[--independent] [--max-loops N]``: the feedback loops (``--independent``: a shortest
independent loop set, for models with thousands of loops); JSON is ``{"model": ..., "loops": [{"id", "name", "polarity",
"variables"}]}`` with ``variables`` the Vensim names in causal order from a stock. With
``--dominance`` a ``"dominance"`` list of periods is added (Loops That Matter), and loops that
the sidecar puts in groups are also scored per group. ``--out DIR``
writes ``loops.json``, ``relative_loop_scores.csv``, ``loop_scores.csv`` and
``loop_group_scores.csv`` (with ``--dominance``) and the figures ``causal_loop_diagram`` and ``relative_loop_scores``
(PDF and 300-dpi PNG).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdloop.cli import options

from sdloop.errors import ModelFileError, OverrideError, SdloopError


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sdloop check MODEL [--strict]``."""
    p = subparsers.add_parser("check", help="check a model: units, names, algebraic loops, documentation",
                              description="Report every finding as FILE:LINE: SEVERITY: VARIABLE: message. "
                                          "Exit 1 when errors were found (with --strict also warnings), "
                                          "2 on unusable input, 0 otherwise.")
    p.add_argument("model", type=Path, help="a Vensim .mdl or XMILE file")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1) on warnings too: missing units, undocumented or unused constants")
    p.set_defaults(handler=run_check)
    return p


def run_check(args: argparse.Namespace) -> int:
    """Print the findings of ``args.model`` and one summary line; the exit status."""
    from sdloop.analysis.check import check_model, count

    try:
        problems = check_model(args.model)
    except SdloopError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for problem in problems:
        print(problem.report())
    counts = count(problems)
    if problems:
        print(", ".join(_plural(n, severity) for severity, n in counts.items()) + f" in {args.model}",
              file=sys.stderr)
    else:
        print(f"{args.model}: clean (no errors, no warnings)", file=sys.stderr)
    failing = counts["error"] + (counts["warning"] if args.strict else 0)
    return 1 if failing else 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def add_loops_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sdloop loops MODEL``."""
    from sdloop.analysis.loops import DEFAULT_MAX_LOOPS

    p = subparsers.add_parser("loops", help="list feedback loops with polarity; loop dominance over a run",
                              description="List the model's feedback loops (R reinforcing, B balancing). "
                                          "Loop names come from MODEL's sidecar <model>.loops.toml.")
    p.add_argument("model", type=Path, help="a Vensim .mdl or XMILE file")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--dominance", action="store_true",
                   help="compute Loops That Matter scores along a run and report the dominant loop per period")
    from sdloop.cli.simulate import add_baseline_arguments

    add_baseline_arguments(p)  # --project, --case NAME|FILE, --scenario, --strategy, --uncalibrated
    p.add_argument("--out", type=Path, help="directory for loops.json, score tables and figures")
    p.add_argument("--max-loops", type=options.positive_int, default=DEFAULT_MAX_LOOPS,
                   help=f"stop with an error beyond this many loops (default {DEFAULT_MAX_LOOPS})")
    p.add_argument("--min-period", type=options.nonnegative_float, default=0.0, metavar="T",
                   help="with --dominance: count dominance stretches shorter than T time units "
                        "with the stretch before them (default 0: report every switch)")
    p.add_argument("--independent", action="store_true",
                   help="list a shortest independent loop set instead of every loop (for large models)")
    p.set_defaults(handler=run_loops)
    return p


def _resolve_layers(structure, layers) -> dict[str, float]:
    """The layers' parameters under the model's spelling, later layers winning; OverrideError
    (with file and line) for names that are no constant."""
    resolved = {}
    for layer in layers:
        for name, value in layer.parameters.items():
            var = structure.get(name)
            if var is None or var.kind not in ("constant", "control"):
                what = "unknown constant" if var is None else "not a constant (it has an equation)"
                raise OverrideError(f"{what} in {structure.path.name}", file=layer.source,
                                    line=layer.lines.get(name), variable=name)
            resolved[var.name] = value
    return resolved


def run_loops(args: argparse.Namespace) -> int:
    """List the loops of ``args.model`` (and their dominance); the exit status."""
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.structure.build import build_structure

    from sdloop.experiments.baseline import baseline

    structure = build_structure(args.model)
    layers = baseline(args.model, project=args.project, cases=args.case, scenario=args.scenario,
                      strategy=args.strategy, uncalibrated=args.uncalibrated)
    overrides = _resolve_layers(structure, layers.layers)
    if args.dominance:
        print(f"sdloop: {layers.describe()}", file=sys.stderr)
    analysis = analyse_model(args.model, overrides, dominance=args.dominance, max_loops=args.max_loops,
                             independent=args.independent, structure=structure)
    if analysis.note:
        print(f"sdloop: note: {analysis.note}", file=sys.stderr)
    loops, links, dominance = analysis.loops, analysis.links, analysis.dominance
    result = {"model": str(args.model), "loops": [loop.as_dict() for loop in loops]}
    groups = None
    if dominance is not None:
        from sdloop.analysis.dominance import group_scores
        from sdloop.analysis.loops import load_group_rules, load_loop_names, loop_groups

        membership = loop_groups(loops, load_loop_names(args.model), load_group_rules(args.model))
        groups = group_scores(dominance, membership) if membership else None
        result["dominance"] = [
            {"partition": p.partition + 1, "start": p.start, "end": p.end, "loop": p.loop,
             "polarity": p.polarity, "mean_relative_score": round(p.mean_relative_score, 4)}
            for p in dominance.periods(args.min_period)
        ]
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(_table(result, dominance, args.min_period, groups))
    if args.out:
        from sdloop.report.output import replaced_dir

        with replaced_dir(args.out) as work:
            _write_outputs(work, structure, loops, links, result, dominance, groups)
    return 0


def _table(result: dict, dominance, min_period: float = 0.0, groups=None) -> str:
    rows = [("id", "polarity", "name", "variables")]
    for loop in result["loops"]:
        rows.append((loop["id"], loop["polarity"], loop["name"] or "",
                     " -> ".join(loop["variables"] + loop["variables"][:1])))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    lines.append(f"{len(result['loops'])} loops in {result['model']}")
    if dominance is not None:
        from sdloop.analysis.dominance import describe_periods

        lines.append("")
        lines.append("Dominant loop (Loops That Matter):")
        lines += ["  " + line for line in describe_periods(dominance, min_length=min_period)]
    if groups is not None:
        from sdloop.analysis.dominance import describe_groups

        lines += ["", "Loop groups (share of the loop activity of the main partition, mean per stretch; "
                      "R/B: reinforcing or balancing on balance):"]
        lines += ["  " + line for line in describe_groups(groups)]
    return "\n".join(lines)


def _write_outputs(out: Path, structure, loops, links, result: dict, dominance, groups=None) -> None:
    from sdloop.report import loop_plots
    from sdloop.report.output import write_csv, write_json

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(f"cannot create output directory: {exc}", file=out) from None
    write_json(result, out / "loops.json")
    name = structure.path.stem
    named = [loop for loop in loops if loop.name]
    ax = loop_plots.causal_loop_diagram(structure, named or loops, links,
                                        title=f"{'Named f' if named else 'F'}eedback loops of {name}")
    loop_plots.save(ax, out / "causal_loop_diagram")
    if dominance is not None:
        write_csv(dominance.relative_scores, out / "relative_loop_scores.csv")
        write_csv(dominance.loop_scores, out / "loop_scores.csv")
        if groups is not None:
            flat = groups.copy()
            flat.columns = [f"{g} {s}" for g, s in flat.columns]
            write_csv(flat, out / "loop_group_scores.csv")
        time_units = structure.time_units or "Time"
        ax = loop_plots.relative_scores_plot(dominance, time_label=time_units,
                                             title=f"Relative loop scores, {name}")
        loop_plots.save(ax, out / "relative_loop_scores")
