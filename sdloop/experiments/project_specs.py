"""Reading the parts of a project file: metrics, claims, figures, phases and the ensemble.

Each reader takes the parsed TOML value, the file's ``TomlLines`` and the project path, and
returns plain frozen data; every problem is an error naming FILE:LINE and the key. What the
expressions mean is checked later against the model (``metrics``, ``claims``, ``study``).
"""

from __future__ import annotations

import math
import os
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from sdloop.errors import SdloopError
from sdloop.experiments.claims import ClaimSpec
from sdloop.experiments.metrics import DIMS, MetricSpec
from sdloop.experiments.plot_spec import PLOT_KEYS
from sdloop.experiments.toml_lines import TomlLines

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# project, case, strategy and scenario names become parts of file names: no dots (``nev.a`` and
# ``nev.b`` would meet in ``nev.pdf``), no separators
ENTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SAFE_PATH = re.compile(r"^[A-Za-z0-9_{][A-Za-z0-9_.{}-]*(/[A-Za-z0-9_{][A-Za-z0-9_.{}-]*)*$")
TEMPLATE_FIELDS = ("case", "CASE", "scenario", "scenario_text", "strategy", "strategy_text", "variable",
                   "variable_name", "samples")


class ProjectError(SdloopError):
    """A project file that cannot be used as written."""


@dataclass(frozen=True)
class Context:
    """Where values come from, for error messages."""

    path: Path
    lines: TomlLines

    def error(self, message: str, *keys, variable: str | None = None) -> ProjectError:
        return ProjectError(message, file=self.path, line=self.lines.line(*keys),
                            variable=variable if variable is not None else (".".join(map(str, keys)) or None))


def check_output_path(value: object, ctx: Context, *keys) -> str:
    """A path inside the run directory: relative, plain names, no '..'; templates allowed."""
    if not isinstance(value, str) or not SAFE_PATH.match(value) or any(p in ("..", ".") for p in value.split("/")):
        raise ctx.error(f"{value!r} is not a path inside the run directory (plain names separated by '/')", *keys)
    for name in re.findall(r"\{(\w*)\}", value):
        if name not in TEMPLATE_FIELDS:
            raise ctx.error(f"unknown field '{{{name}}}' (known: {', '.join(TEMPLATE_FIELDS)})", *keys)
    return value


def fill(template: str, fields: dict[str, object]) -> str:
    """Replace ``{field}`` with its value; nothing else is interpreted (no format specs)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(fields.get(m.group(1), m.group(0))), template)


def _table(value, ctx: Context, *keys) -> dict:
    if not isinstance(value, dict):
        raise ctx.error("expected a table", *keys)
    return value


def _only(table: dict, allowed, ctx: Context, *keys) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ctx.error(f"unknown key (allowed: {', '.join(sorted(allowed))})", *keys, unknown[0],
                        variable=unknown[0])


def _string(table: dict, key: str, ctx: Context, *keys, default=None, required=False) -> str | None:
    value = table.get(key, default)
    if value is None and required:
        raise ctx.error(f"'{key}' is required", *keys)
    if value is not None and not isinstance(value, str):
        raise ctx.error(f"'{key}' must be a string", *keys, key)
    return value


def _number(table: dict, key: str, ctx: Context, *keys, default=None) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.error(f"'{key}' must be a finite number", *keys, key)
    return float(value)


def _strings(value, ctx: Context, *keys) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.error("expected a string or a list of strings", *keys)
    return tuple(value)


# --------------------------------------------------------------------------- metrics
METRIC_KEYS = {"expr", "better", "never", "unit", "label", "format", "description", "histogram"}


def read_metrics(value, ctx: Context) -> tuple[MetricSpec, ...]:
    specs = []
    for name, table in _table(value, ctx, "metrics").items():
        keys = ("metrics", name)
        if isinstance(table, str):
            table = {"expr": table}
        _only(_table(table, ctx, *keys), METRIC_KEYS, ctx, *keys)
        if not SAFE_NAME.match(name) and not re.match(r"^[A-Za-z][\w .()-]*$", name):
            raise ctx.error("a metric name is letters, digits, spaces, '_', '.', '-' and '()'", *keys)
        better = table.get("better")
        if better not in (None, "higher", "lower"):
            raise ctx.error("'better' is \"higher\" or \"lower\"", *keys, "better")
        fmt = _string(table, "format", ctx, *keys, default=".6g")
        try:
            format(1.5, fmt)
        except ValueError:
            raise ctx.error(f"'format' {fmt!r} is not a number format such as '.2f' or ',.0f'", *keys, "format") \
                from None
        specs.append(MetricSpec(
            name=name, expr=_string(table, "expr", ctx, *keys, required=True), line=ctx.lines.line(*keys, "expr"),
            better=better, never=_number(table, "never", ctx, *keys), unit=_string(table, "unit", ctx, *keys) or "",
            label=_string(table, "label", ctx, *keys), format=fmt,
            description=_string(table, "description", ctx, *keys) or "",
            histogram=_histogram(table.get("histogram"), ctx, *keys, "histogram")))
    return tuple(specs)


def _histogram(value, ctx: Context, *keys) -> tuple | None:
    if value is None:
        return None
    table = _table(value, ctx, *keys)
    _only(table, {"low", "high", "bins", "scale"}, ctx, *keys)
    low, high = _number(table, "low", ctx, *keys), _number(table, "high", ctx, *keys)
    bins = table.get("bins", 400)
    scale = table.get("scale", "linear")
    if low is None or high is None or not low < high:
        raise ctx.error("a histogram needs low < high", *keys)
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 100_000:
        raise ctx.error("'bins' must be a whole number from 1 to 100000", *keys)
    if scale not in ("linear", "log") or (scale == "log" and low <= 0):
        raise ctx.error("'scale' is \"linear\" or \"log\" (log needs low > 0)", *keys)
    return (low, high, bins, scale)


# --------------------------------------------------------------------------- claims
CLAIM_KEYS = {"name", "text", "holds", *DIMS}


def read_claims(value, ctx: Context) -> tuple[ClaimSpec, ...]:
    if not isinstance(value, list):
        raise ctx.error("claims are a list of [[claims]] tables", "claims")
    specs, names = [], set()
    for i, table in enumerate(value):
        keys = ("claims", i)
        _only(_table(table, ctx, *keys), CLAIM_KEYS, ctx, *keys)
        name = _string(table, "name", ctx, *keys, required=True)
        if not SAFE_NAME.match(name) or name in names:
            raise ctx.error(f"claim name {name!r} must be unique, letters, digits, '_', '.', '-'", *keys, "name")
        names.add(name)
        defaults = tuple((dim, _string(table, dim, ctx, *keys)) for dim in DIMS if dim in table)
        specs.append(ClaimSpec(name, _string(table, "holds", ctx, *keys, required=True),
                               _string(table, "text", ctx, *keys) or "", ctx.lines.line(*keys, "holds"), defaults))
    return tuple(specs)


# --------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class FigureSpec:
    """One figure: its kind, file stem (a template) and the kind's options, as declared."""

    kind: str
    file: str
    line: int | None
    title: str | None = None
    options: dict = field(default_factory=dict, compare=False)
    index: int = 0
    lines: dict = field(default_factory=dict, compare=False)  # option (or "panels.N") -> line

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key) or self.line


RUN_FIGURES = {
    "plot": PLOT_KEYS,
    "lines": {"panels", "phases", *DIMS},
    "compare": {"across", "variables", "labels", "threshold", "markers", "phases", *DIMS},
    "ranking": {"metrics", *DIMS},
    "loop_dominance": {"phases", "min_period", *DIMS},
}
ENSEMBLE_FIGURES = {
    "best_probability": set(),
    "regret": {"scenario"},
    "fan": {"variable", "scenario", "threshold"},
    "sobol": set(),
}


def read_figures(value, ctx: Context, kinds: dict, *prefix) -> tuple[FigureSpec, ...]:
    if not isinstance(value, list):
        raise ctx.error("figures are a list of [[figures]] tables", *prefix)
    specs = []
    for i, table in enumerate(value):
        keys = (*prefix, i)
        table = _table(table, ctx, *keys)
        kind = _string(table, "kind", ctx, *keys, required=True)
        if kind not in kinds:
            close = difflib.get_close_matches(str(kind), list(kinds), n=1)
            raise ctx.error(f"unknown figure kind '{kind}'{f'; did you mean {close[0]!r}?' if close else ''} "
                            f"(known: {', '.join(kinds)})", *keys, "kind")
        _only(table, {"kind", "file", "title", *kinds[kind]}, ctx, *keys)
        file = check_output_path(_string(table, "file", ctx, *keys, required=True), ctx, *keys, "file")
        options = {k: v for k, v in table.items() if k not in ("kind", "file", "title")}
        if kind == "compare" and "across" in options and options["across"] not in DIMS:
            raise ctx.error(f"'across' is one of {', '.join(DIMS)}", *keys, "across")
        lines = {k: ctx.lines.line(*keys, k) for k in table}
        for j, _ in enumerate(options.get("panels", []) if isinstance(options.get("panels"), list) else []):
            lines[f"panels.{j}"] = ctx.lines.line(*keys, "panels", j, "lines")
        specs.append(FigureSpec(kind, file, ctx.lines.line(*keys, "kind"), _string(table, "title", ctx, *keys),
                                options, i, lines))
    return tuple(specs)


# --------------------------------------------------------------------------- phases
@dataclass(frozen=True)
class Phase:
    start: float
    end: float | None
    label: str
    shade: str = "0.9"


PHASE_SHADES = ("0.96", "0.88", "0.80", "0.92", "0.84", "0.76")  # defaults: neighbours differ


def read_phases(value, ctx: Context) -> tuple[Phase, ...]:
    if not isinstance(value, list):
        raise ctx.error("phases are a list of [[phases]] tables", "phases")
    phases = []
    for i, table in enumerate(value):
        keys = ("phases", i)
        _only(_table(table, ctx, *keys), {"start", "end", "label", "shade"}, ctx, *keys)
        start = _number(table, "start", ctx, *keys)
        if start is None:
            raise ctx.error("'start' is required", *keys)
        shade = _string(table, "shade", ctx, *keys, default=PHASE_SHADES[i % len(PHASE_SHADES)])
        try:
            if not 0 <= float(shade) <= 1:
                raise ValueError
        except ValueError:
            raise ctx.error("'shade' is a gray level from \"0\" (black) to \"1\" (white)", *keys, "shade") from None
        same = [j for j, p in enumerate(phases) if float(p.shade) == float(shade)]
        if same:
            raise ctx.error(f"phases {same[0] + 1} and {i + 1} share the gray {shade}: give each phase its own "
                            "'shade' so that a reader can tell them apart", *keys, "shade")
        phases.append(Phase(start, _number(table, "end", ctx, *keys), _string(table, "label", ctx, *keys) or "",
                            shade))
    return tuple(phases)


def _positive(table: dict, key: str, ctx: Context, *keys) -> float | None:
    value = _number(table, key, ctx, *keys)
    if value is not None and value <= 0:
        raise ctx.error(f"'{key}' must be positive", *keys, key)
    return value


# --------------------------------------------------------------------------- ensemble
@dataclass(frozen=True)
class EnsembleSpec:
    uncertainty: Path
    samples: int = 1000
    seed: int = 1
    method: str = "lhs"
    output: str = "ensemble"
    bands: tuple = ()  # ((variable, low, high), ...)
    band_bins: int = 400
    band_every: float | None = None  # time between band points (None: every saved time)
    sobol: tuple | None = None  # (samples, scenario, strategy)
    figures: tuple[FigureSpec, ...] = ()
    save_samples: bool = False  # each draw's inputs and metrics (samples.parquet) for `sdloop discover`
    line: int | None = None
    lines: dict = field(default_factory=dict, compare=False)  # key -> line


def read_ensemble(value, ctx: Context, base: Path) -> EnsembleSpec:
    keys = ("ensemble",)
    table = _table(value, ctx, *keys)
    _only(table, {"uncertainty", "samples", "seed", "method", "output", "bands", "band_bins", "band_every", "sobol",
                  "figures", "save_samples"}, ctx, *keys)
    uncertainty = _string(table, "uncertainty", ctx, *keys, required=True)
    samples, seed = table.get("samples", 1000), table.get("seed", 1)
    for key, number in (("samples", samples), ("seed", seed)):
        if not isinstance(number, int) or isinstance(number, bool) or number < (1 if key == "samples" else 0):
            raise ctx.error(f"'{key}' must be a whole number" + (" of at least 1" if key == "samples" else ""),
                            *keys, key)
    method = _string(table, "method", ctx, *keys, default="lhs")
    if method not in ("lhs", "sobol", "random"):
        raise ctx.error("'method' is lhs, sobol or random", *keys, "method")
    bands = []
    for variable, bounds in _table(table.get("bands", {}), ctx, *keys, "bands").items():
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                or not bounds[0] < bounds[1]):
            raise ctx.error("a band is [low, high] with low < high", *keys, "bands", variable, variable=variable)
        bands.append((variable, float(bounds[0]), float(bounds[1])))
    sobol = None
    if "sobol" in table:
        spec = _table(table["sobol"], ctx, *keys, "sobol")
        _only(spec, {"samples", "scenario", "strategy"}, ctx, *keys, "sobol")
        n = spec.get("samples", 256)
        if not isinstance(n, int) or n < 2 or n & (n - 1):
            raise ctx.error("sobol 'samples' must be a power of 2", *keys, "sobol")
        sobol = (n, _string(spec, "scenario", ctx, *keys, "sobol"), _string(spec, "strategy", ctx, *keys, "sobol"))
    save_samples = table.get("save_samples", False)
    if not isinstance(save_samples, bool):
        raise ctx.error("'save_samples' is true or false", *keys, "save_samples")
    band_bins = table.get("band_bins", 400)
    if not isinstance(band_bins, int) or not 10 <= band_bins <= 10_000:
        raise ctx.error("'band_bins' must be a whole number from 10 to 10000", *keys, "band_bins")
    return EnsembleSpec(
        uncertainty=Path(os.path.normpath(base / uncertainty)), samples=samples, seed=seed, method=method,
        output=check_output_path(table.get("output", "ensemble"), ctx, *keys, "output"),
        bands=tuple(bands), band_bins=band_bins, band_every=_positive(table, "band_every", ctx, *keys), sobol=sobol,
        figures=read_figures(table.get("figures", []), ctx, ENSEMBLE_FIGURES, *keys, "figures"),
        save_samples=save_samples, line=ctx.lines.line(*keys), lines={k: ctx.lines.line(*keys, k) for k in table})
