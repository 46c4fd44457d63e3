"""Checking figure specifications against the model and the project, before any run.

Figures are data (``[[figures]]`` and ``[[ensemble.figures]]`` in a project file). Each kind
names model variables or expressions (lines, panels, thresholds, markers), runs (case,
scenario, strategy) and metrics; this module checks all of them so that a typo fails with
FILE:LINE and the closest names before anything runs. Drawing is ``sdloop.report``'s job.
"""

from __future__ import annotations

import difflib

from sdloop.experiments.metrics import DIMS, SERIES, Compiler, Where
from sdloop.experiments.plot_spec import PlotOptions, compare_as_plot, plot_options
from sdloop.experiments.project_specs import FigureSpec, ProjectError

MARKER_SYMBOLS = set("o^svD*xP+<>pHhd.")


def selected(study, spec: FigureSpec, dim: str) -> list[str]:
    """The entries of ``dim`` a figure covers: its own selection, else every entry."""
    names = list(study.project.entries(dim))
    chosen = spec.options.get(dim)
    if chosen is None:
        return names
    wanted = [chosen] if isinstance(chosen, str) else list(chosen)
    return [n for n in wanted if n in names]


def entries_of(study, chosen, dim: str) -> list[str]:
    """The entries of ``dim`` a selection covers, in the order chosen (None: every entry, in
    declared order)."""
    names = list(study.project.entries(dim))
    if chosen is None:
        return names
    wanted = [chosen] if isinstance(chosen, str) else list(chosen)
    return [n for n in wanted if n in names]


def plot_dims(study, opts: PlotOptions, available: dict | None = None) -> tuple[str | None, str | None, list[str]]:
    """(lines, facets, one figure per ...) of a plot: ``lines`` defaults to the first of strategy,
    scenario, case with more than one selected entry (``available``: entries there are runs for)."""
    def count(dim):
        chosen = opts.chosen(dim)
        names = entries_of(study, chosen, dim)
        if available is not None and chosen is None:
            names = [n for n in names if n in available.get(dim, names)]
        return len(names)

    lines = opts.lines
    if lines is None:
        lines = next((d for d in ("strategy", "scenario", "case") if d != opts.facets and count(d) > 1), None)
    per_figure = [d for d in DIMS if d not in (lines, opts.facets) and count(d) > 1]
    return lines, opts.facets, per_figure


def plot_options_of(spec: FigureSpec, where: Where) -> PlotOptions:
    """The plot options of a ``plot`` or ``compare`` figure."""
    return plot_options(compare_as_plot(spec.options) if spec.kind == "compare" else spec.options, where)


def check_figures(study, compiler: Compiler) -> None:
    project = study.project
    for spec in project.figures:
        _check_spec(study, compiler, spec, prefix="figures")
    if project.ensemble is not None:
        _check_ensemble(study, compiler)


def _where(study, spec: FigureSpec, what: str = "", key: str | None = None) -> Where:
    return Where(study.project.path, spec.line_of(key) if key else spec.line,
                 f"figure {spec.file}" + (f" {what}" if what else ""))


def _check_names(study, spec: FigureSpec) -> None:
    full = study.compiler().entries
    for dim in DIMS:
        chosen = spec.options.get(dim)
        if chosen is None:
            continue
        wanted = [chosen] if isinstance(chosen, str) else chosen
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            raise _where(study, spec).error(f"'{dim}' is a name or a list of names")
        for name in wanted:
            known = full.get(dim, [])
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; known: {', '.join(known)}"
                raise _where(study, spec).error(f"unknown {dim} '{name}'{hint}")


def _check_collisions(study, spec: FigureSpec, per_figure: tuple[str, ...]) -> None:
    """A figure drawn once per entry of a dimension needs that entry in its file name."""
    for dim in per_figure:
        if len(selected(study, spec, dim)) > 1 and "{" + dim + "}" not in spec.file:
            raise _where(study, spec).error(f"one figure per {dim}: put {{{dim}}} in 'file' or select one {dim}")


def _series(compiler: Compiler, text, where: Where) -> None:
    if not isinstance(text, str):
        raise where.error("a line is an expression in a string")
    compiler.compile(text, where, want=(SERIES,))


def _constant_or_number(study, value, where: Where) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return
    if not isinstance(value, str):
        raise where.error("'value' is a number or the name of a model constant")
    resolved = study.sim.resolve(value, source=str(where.file), line=where.line)
    if resolved not in study.sim.defaults:
        raise where.error(f"{value!r} is not a constant of the model")


def _check_spec(study, compiler: Compiler, spec: FigureSpec, prefix: str) -> None:
    _check_names(study, spec)
    where = _where(study, spec)
    opts = spec.options
    if spec.kind == "lines":
        _check_collisions(study, spec, DIMS)
        panels = opts.get("panels")
        if not isinstance(panels, list) or not panels:
            raise where.error("a 'lines' figure needs [[figures.panels]] with 'lines'")
        for i, panel in enumerate(panels):
            if not isinstance(panel, dict) or not isinstance(panel.get("lines"), list):
                raise where.error(f"panel {i + 1} needs 'lines', a list of expressions")
            unknown = set(panel) - {"title", "lines", "labels", "ylabel", "quantity"}
            if unknown:
                raise where.error(f"panel {i + 1}: unknown key '{sorted(unknown)[0]}' "
                                  "(allowed: title, lines, labels, ylabel, quantity)")
            for line in panel["lines"]:
                _series(compiler, line, _where(study, spec, f"panel {i + 1}", f"panels.{i}"))
            labels = panel.get("labels")
            if labels is not None and (not isinstance(labels, list) or len(labels) != len(panel["lines"])):
                raise where.error(f"panel {i + 1}: 'labels' must give one label per line")
    elif spec.kind in ("compare", "plot"):
        opts = plot_options_of(spec, where)
        _, _, per_figure = plot_dims(study, opts)
        _check_collisions(study, spec, tuple(per_figure))
        for text in opts.vars:
            _series(compiler, text, _where(study, spec, key="vars" if spec.kind == "plot" else "variables"))
        threshold = opts.threshold
        if threshold is not None:
            if not isinstance(threshold, dict) or "value" not in threshold or \
                    set(threshold) - {"panel", "value", "label"}:
                raise where.error("'threshold' is {panel = N, value = NAME or number, label = TEXT}")
            panel = threshold.get("panel", 1)
            if not isinstance(panel, int) or not 1 <= panel <= len(opts.vars):
                raise where.error(f"threshold 'panel' must be 1..{len(opts.vars)}")
            _constant_or_number(study, threshold["value"], _where(study, spec, key="threshold"))
        if opts.markers is not None:
            _check_markers(compiler, opts.markers, _where(study, spec, key="markers"))
    elif spec.kind == "ranking":
        _check_collisions(study, spec, ("case",))
        wanted = opts.get("metrics")
        names = [s.name for s in study.project.metrics]
        for name in ([wanted] if isinstance(wanted, str) else wanted or []):
            if name not in names:
                close = difflib.get_close_matches(name, names, n=3)
                raise where.error(f"unknown metric '{name}'" + (f"; did you mean {', '.join(map(repr, close))}?"
                                                                 if close else ""))
    elif spec.kind == "loop_dominance":
        _check_collisions(study, spec, DIMS)
        period = opts.get("min_period", 2.0)
        if isinstance(period, bool) or not isinstance(period, (int, float)) or period < 0:
            raise where.error("'min_period' is a number of time units, 0 or more")


def _check_markers(compiler: Compiler, markers, where: Where) -> None:
    allowed = {"variable", "levels", "symbols", "labels"}
    if not isinstance(markers, dict) or "variable" not in markers or set(markers) - allowed:
        raise where.error("'markers' is {variable = NAME, levels = [...], symbols = [...], labels = [...]}")
    _series(compiler, markers["variable"], where)
    levels = markers.get("levels", [])
    if not isinstance(levels, list) or not all(isinstance(x, (int, float)) for x in levels):
        raise where.error("marker 'levels' is a list of numbers")
    for key in ("symbols", "labels"):
        value = markers.get(key, [])
        if not isinstance(value, list) or len(value) != len(levels):
            raise where.error(f"marker '{key}' needs one entry per level")
    bad = [s for s in markers.get("symbols", []) if s not in MARKER_SYMBOLS]
    if bad:
        raise where.error(f"unknown marker symbol {bad[0]!r} (use one of {''.join(sorted(MARKER_SYMBOLS))})")


def _check_ensemble(study, compiler: Compiler) -> None:
    spec = study.project.ensemble
    where = Where(study.project.path, spec.line, "ensemble")
    if not spec.uncertainty.exists():
        raise ProjectError("no such uncertainty file", file=spec.uncertainty)
    for variable, _, _ in spec.bands:
        _series(compiler, variable, Where(study.project.path, spec.lines.get("bands") or spec.line,
                                          f"ensemble band {variable}"))
    if spec.sobol is not None:
        _, scenario, strategy = spec.sobol
        where = Where(study.project.path, spec.lines.get("sobol") or spec.line, "ensemble")
        for dim, name in (("scenario", scenario), ("strategy", strategy)):
            known = study.all_names[dim]
            if name is not None and name not in known:
                raise where.error(f"sobol {dim} '{name}' is not one of {', '.join(known)}")
    band_names = [v for v, _, _ in spec.bands]
    for figure in spec.figures:
        fwhere = _where(study, figure)
        _check_names(study, figure)
        if figure.kind == "fan":
            variable = figure.options.get("variable")
            fwhere = _where(study, figure, key="variable")
            if variable not in band_names:
                raise fwhere.error(f"a fan chart draws a band: 'variable' must be one of [ensemble.bands] "
                                   f"({', '.join(band_names) or 'none declared'})")
            if "threshold" in figure.options:
                _constant_or_number(study, figure.options["threshold"], _where(study, figure, key="threshold"))
        if figure.kind == "sobol" and spec.sobol is None:
            raise fwhere.error("a Sobol figure needs [ensemble] sobol = {samples = N, ...}")
