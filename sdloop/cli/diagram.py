"""The ``sdloop sketch`` and ``sdloop diagram`` subcommands: one layout, two writers.

``sdloop sketch MODEL [--out FILE | --in-place]``: the model file with a Vensim sketch laid
out from its structure (one view per group of the file), the equations kept byte for byte;
to standard output, to FILE, or over MODEL (atomically).

``sdloop diagram MODEL --out FILE [--loops] [--view NAME] [--constants]``: the stock-and-flow
diagram as FILE.pdf and FILE.png (300 dpi). A model with several groups gets one figure per
group (FILE-<group>.pdf/png) unless ``--view`` names one; ``--loops`` draws only the
variables of the loops named in ``<model>.loops.toml``, each loop marked with its id.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sdloop.errors import ModelFileError


def add_sketch_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sdloop sketch MODEL``."""
    p = subparsers.add_parser("sketch", help="write a Vensim sketch (stock-and-flow diagram) into a .mdl file",
                              description="Lay out the model's stock-and-flow diagram and write it as the "
                                          "file's Vensim sketch section; the equations are kept byte for byte.")
    p.add_argument("model", type=Path, help="a Vensim .mdl file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="file to write (default: standard output)")
    where.add_argument("--in-place", action="store_true", help="replace MODEL's sketch (atomic write)")
    p.set_defaults(handler=run_sketch)
    return p


def _model_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ModelFileError("no such model file", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file: {exc}", file=path) from None


def sketched_text(path: Path) -> tuple[str, list]:
    """The text of the .mdl file at ``path`` with a freshly laid-out sketch, and its views."""
    from sdloop.lang.sketch import split_sketch, with_sketch
    from sdloop.structure.build import build_structure
    from sdloop.structure.layout import layout
    from sdloop.structure.stockflow import stock_flow

    if path.suffix.lower() != ".mdl":
        raise ModelFileError("sdloop sketch writes Vensim sketches into .mdl files "
                             "(XMILE files keep their diagram in <views>)", file=path)
    text = _model_text(path)
    views = layout(stock_flow(build_structure(path)))
    new = with_sketch(text, views)
    if not new.startswith(split_sketch(text)[0]):   # never lose an equation
        raise ModelFileError("the equations would change; nothing written", file=path)
    return new, views


def run_sketch(args: argparse.Namespace) -> int:
    """Write the model with its new sketch; the exit status."""
    from sdloop.report.output import atomic_write_text

    text, views = sketched_text(args.model)
    target = args.model if args.in_place else args.out
    if target is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write_text(target, text)
    except OSError as exc:
        raise ModelFileError(f"cannot write: {exc}", file=target) from None
    variables = sum(1 for v in views for e in v.elements if e.kind not in ("valve", "cloud", "shadow"))
    print(f"{target}: sketch of {variables} variables in {len(views)} view{'s' * (len(views) != 1)}",
          file=sys.stderr)
    return 0


def add_diagram_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sdloop diagram MODEL --out FILE``."""
    p = subparsers.add_parser("diagram", help="draw the stock-and-flow diagram for papers (PDF and PNG)",
                              description="Draw the model's stock-and-flow diagram (the layout of "
                                          "`sdloop sketch`) as FILE.pdf and FILE.png, grayscale, 183 mm wide.")
    p.add_argument("model", type=Path, help="a Vensim .mdl or XMILE file")
    p.add_argument("--out", type=Path, required=True, help="output file name (.pdf/.png added)")
    p.add_argument("--loops", action="store_true",
                   help="draw the variables of the loops named in <model>.loops.toml, loops marked")
    p.add_argument("--view", help="draw one group (view) of the model only")
    p.add_argument("--constants", action="store_true", help="draw constants too")
    p.set_defaults(handler=run_diagram)
    return p


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "view"


def run_diagram(args: argparse.Namespace) -> int:
    """Draw the diagram(s) of ``args.model``; the exit status."""
    from sdloop.report.diagram import MIN_FONT, draw_view, font_size, save_diagram, style
    from sdloop.structure.build import build_structure
    from sdloop.structure.layout import layout_view
    from sdloop.structure.stockflow import stock_flow

    structure = build_structure(args.model)
    sf = stock_flow(structure)
    stem = args.out.with_suffix("") if args.out.suffix.lower() in (".pdf", ".png") else args.out
    jobs = []   # (stem, view, highlight, loop labels)
    if args.loops:
        view, highlight, labels = _loops_view(structure, sf, args.constants)
        jobs.append((stem, view, highlight, labels))
    else:
        groups = sf.group_names()
        if args.view:
            chosen = [g for g in groups if g.lower() == args.view.strip().lower()]
            if not chosen:
                raise ModelFileError(f"no view '{args.view}'; the model's views: {', '.join(groups)}",
                                     file=args.model)
            groups = chosen
        for group in groups:
            view = layout_view(sf, sf.members(group), group, constants=args.constants)
            if view.elements:
                jobs.append((stem if len(groups) == 1 else stem.with_name(f"{stem.name}-{_slug(group)}"),
                             view, None, ()))
    for path_stem, view, highlight, labels in jobs:
        with style():
            ax = draw_view(view, highlight=highlight, loop_labels=labels,
                           title=f"{args.model.stem}: {view.name}" if view.name != "View 1" else args.model.stem)
            written = save_diagram(ax, path_stem)
        small = font_size(view) < MIN_FONT
        print(f"{written[0].with_suffix('')}.pdf/.png: {view.name}"
              + (" (small text: try --view or --loops)" if small else ""), file=sys.stderr)
    return 0


def _loops_view(structure, sf, constants: bool):
    """The view of the named loops, the (source, target) pairs on them, and each loop's mark."""
    from sdloop.analysis.loops import load_loop_names, named_loop, sidecar_path
    from sdloop.structure.layout import free_spot, layout_view

    entries = load_loop_names(structure.path)
    if not entries:
        raise ModelFileError(f"no named loops: {sidecar_path(structure.path).name} is missing or empty",
                             file=structure.path)
    loops = [(entry, named_loop(structure, entry)) for entry in entries]
    members: list[str] = []
    highlight: set[tuple[str, str]] = set()
    for entry, loop in loops:
        if loop is None:
            raise ModelFileError("matches no feedback loop of the model", file=sidecar_path(structure.path),
                                 line=entry.line, variable=entry.name)
        names = [structure.get(v).name for v in loop.variables]
        members += [n for n in names if n in sf.kinds and n not in members]
        highlight |= set(zip(names, names[1:] + names[:1]))
    order = list(sf.kinds)
    members.sort(key=order.index)
    view = layout_view(sf, members, "Named loops", shadows=False, constants=constants)
    at = {e.name: e for e in view.elements if e.kind not in ("valve", "cloud")}
    labels, taken = [], []
    for i, (entry, loop) in enumerate(loops, 1):
        points = [at[n] for n in (structure.get(v).name for v in loop.variables) if n in at]
        x, y = free_spot(view, sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points),
                         14, 10, taken)
        taken.append((x - 14, y - 10, x + 14, y + 10))
        labels.append((entry.id or loop.id or f"L{i}", x, y))
    return view, highlight, labels
