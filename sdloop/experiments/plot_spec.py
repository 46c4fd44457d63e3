"""What one line figure draws: the options shared by ``sdloop plot`` and ``[[figures]] kind = "plot"``.

A plot draws expressions (``vars``: model variables or expressions over them; one row of panels
each) across the selected cases, scenarios and strategies: one dimension as ``lines`` within a
panel, optionally one as ``facets`` (columns of panels); any other dimension with more than one
selected entry gives one figure per entry. ``from``/``to`` cut the time axis, ``bands`` adds
ensemble percentile bands, ``data`` the published data points a calibration compares the
variable with. The command line builds the same options from its flags, so a figure made with
``sdloop plot`` is kept by pasting its options into the project file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdloop.experiments.metrics import DIMS, Where

PLOT_KEYS = {"vars", "labels", "lines", "facets", "from", "to", "bands", "data", "style", "color", "layout",
             "ncols", "threshold", "markers", "phases", *DIMS}
STYLES = ("paper", "slides")
LAYOUTS = ("auto", "overlay", "multiples")


@dataclass(frozen=True)
class PlotOptions:
    """A plot's options, checked for form (names are checked against the model by the study)."""

    vars: tuple[str, ...]
    labels: tuple[str | None, ...] = ()
    lines: str | None = None
    facets: str | None = None
    start: float | None = None
    end: float | None = None
    bands: bool = False
    data: bool = False
    style: str = "paper"
    color: bool = False
    layout: str = "auto"
    ncols: int | None = None
    phases: bool = False
    threshold: dict | None = field(default=None, compare=False)
    markers: dict | None = field(default=None, compare=False)
    selection: tuple = ()  # ((dim, (names...)), ...) for the dimensions chosen

    def chosen(self, dim: str) -> tuple[str, ...] | None:
        return dict(self.selection).get(dim)


def _names(value, where: Where, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")] if "," in value else [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise where.error(f"'{key}' is a name or a list of names")
    return tuple(value)


def _flag(options: dict, key: str, where: Where) -> bool:
    value = options.get(key, False)
    if not isinstance(value, bool):
        raise where.error(f"'{key}' is true or false")
    return value


def _time(options: dict, key: str, where: Where) -> float | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(f"'{key}' is a time (a number)")
    return float(value)


def plot_options(options: dict, where: Where) -> PlotOptions:
    """Check the form of a plot's options (a ``[[figures]]`` table or the command line's flags)."""
    unknown = sorted(set(options) - PLOT_KEYS)
    if unknown:
        raise where.error(f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(PLOT_KEYS))})")
    variables = options.get("vars")
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    if not isinstance(variables, list) or not variables or not all(isinstance(v, str) and v for v in variables):
        raise where.error("'vars' is a list of variables or expressions (one row of panels each)")
    labels = options.get("labels") or []
    if not isinstance(labels, list) or (labels and len(labels) != len(variables)):
        raise where.error("'labels' gives one axis label per variable")
    lines, facets = options.get("lines"), options.get("facets")
    for key, dim in (("lines", lines), ("facets", facets)):
        if dim is not None and dim not in DIMS:
            raise where.error(f"'{key}' is one of {', '.join(DIMS)}")
    if lines is not None and lines == facets:
        raise where.error("'lines' and 'facets' must be different dimensions")
    style = options.get("style", "paper")
    if style not in STYLES:
        raise where.error(f"'style' is one of {', '.join(STYLES)}")
    layout = options.get("layout", "auto")
    if layout not in LAYOUTS:
        raise where.error(f"'layout' is one of {', '.join(LAYOUTS)}")
    ncols = options.get("ncols")
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int) or not 1 <= ncols <= 8):
        raise where.error("'ncols' is a whole number from 1 to 8")
    start, end = _time(options, "from", where), _time(options, "to", where)
    if start is not None and end is not None and not start < end:
        raise where.error("'from' must be before 'to'")
    selection = tuple((dim, _names(options[dim], where, dim)) for dim in DIMS if options.get(dim) is not None)
    return PlotOptions(tuple(variables), tuple(labels), lines, facets, start, end, _flag(options, "bands", where),
                       _flag(options, "data", where), style, _flag(options, "color", where), layout, ncols,
                       _flag(options, "phases", where), options.get("threshold"), options.get("markers"), selection)


def compare_as_plot(options: dict) -> dict:
    """A ``compare`` figure's options as a plot's: ``variables`` are ``vars``, ``across`` is ``lines``."""
    out = {k: v for k, v in options.items() if k not in ("variables", "across")}
    out["vars"] = options.get("variables")
    out["lines"] = options.get("across", "scenario")
    return out
