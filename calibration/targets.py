"""Fit targets as data: ``calibration/targets/CASE.toml``.

A target file names the model, the base case, the dated policy inputs, each series and
each parameter to estimate. Relative paths are relative to the target file::

    description = "..."
    model = "../../models/sector_lifecycle.mdl"
    case = "../../models/cases/nev.toml"      # optional base case
    data_dir = "../data"                      # optional, default "../data"
    holdout_from = 2020                       # optional, default 2020

    [inputs]                                  # dated policy inputs: fixed, never fitted
    "Production Subsidy Start Year" = 2010.5  # policy_events.csv 2010-06

    [[series]]
    name = "NEV sales"
    file = "china_nev_sales_caam.csv"
    variable = "Domestic Production"          # the model variable it maps to
    scale = 6666.67                           # data units per model unit, or "estimate"
    error = "log"                             # residual log(model) - log(data), or "absolute"
    sigma = 0.05                              # documented measurement error (fixed), or
    group = "national"                        # ... an error scale shared (estimated) by a group
    ar1 = 0.0                                 # AR(1) residual correlation per year, or "estimate"
    saturates = true                          # a share with a ceiling: logistic hold-out benchmark
    mixed_units = "why they are comparable"   # accept a file whose rows differ in unit (say why)
    aggregate = "mean"                        # mean over the year (flows, shares), "end", or
                                              # "cumulative" (integral from `from`: money spent since)
    first_year = 2014                         # optional window
    last_year = 2022

    [[parameters]]
    name = "Home Adoption Midpoint"
    lower = 2015
    upper = 2032
    start = 2024                              # optional: default the base-case value
    transform = "linear"                      # or "log" (searched on a log scale)
    prior = { mean = 2024, sd = 4 }           # optional Gaussian prior
    data_years = [2014, 2018]                 # years of data behind the start/bounds/prior
    basis = "logistic through CAAM shares"    # where the prior comes from

    [[dropped]]                               # series deliberately not fitted, with the reason
    file = "china_nev_share_new_vehicle_sales_caam.csv"
    reason = "collinear with NEV sales (same CAAM counts over near-constant total sales)"

A free error scale per series lets a fit ignore a series it cannot follow (inflate its
sigma); so each series has either a fixed ``sigma`` (its documented measurement error) or a
``group`` whose series share one estimated scale (a group needs two series or more).
Priors may use only data before ``holdout_from``: ``data_years`` says which (checked by
``prior_years_problems``).

Every name is checked against the model (unknown variables and constants fail with the
file, line and close matches), every indicator file must exist, and every start value must
lie inside its bounds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from calibration.data import Series, load_series
from calibration.errors import CalibrationError
from sdloop.errors import OverrideError
from sdloop.experiments.overrides import load_case, read_toml

if TYPE_CHECKING:
    from sdloop.engines.pysd_model import Model

MIN_POINTS_FOR_ESTIMATED_SIGMA = 5


@dataclass(frozen=True)
class SeriesTarget:
    name: str
    file: Path
    variable: str
    scale: float | None  # None: estimated (the series constrains shape, not level)
    error: str  # "log" or "absolute"
    sigma: float | None  # None: the group's shared scale, estimated
    aggregate: str  # "mean", "end" or "cumulative"
    first_year: int | None
    last_year: int | None
    note: str
    line: int | None
    group: str | None = None
    ar1: float | str = 0.0  # fixed AR(1) coefficient per year, or "estimate" (shared by the unit)
    saturates: bool = False
    cumulative_from: float | None = None  # aggregate "cumulative": integrate from this time

    @property
    def unit(self) -> str:
        """The likelihood unit: the group name, or the series itself when its sigma is fixed."""
        return f"group:{self.group}" if self.group else f"series:{self.name}"


@dataclass(frozen=True)
class Dropped:
    file: str
    reason: str


@dataclass(frozen=True)
class ParameterTarget:
    name: str
    lower: float
    upper: float
    start: float | None
    transform: str  # "linear" or "log"
    prior_mean: float | None
    prior_sd: float | None
    line: int | None
    data_years: tuple[int, ...] | None = None
    basis: str = ""

    def to_unit(self, value: float) -> float:
        """Map a value inside the bounds to [0, 1] (on a log scale for 'log')."""
        if self.transform == "log":
            return (math.log(value) - math.log(self.lower)) / (math.log(self.upper) - math.log(self.lower))
        return (value - self.lower) / (self.upper - self.lower)

    def from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, float(u)))
        if self.transform == "log":
            return math.exp(math.log(self.lower) + u * (math.log(self.upper) - math.log(self.lower)))
        return self.lower + u * (self.upper - self.lower)


@dataclass(frozen=True)
class Targets:
    name: str
    path: Path
    description: str
    model: Path
    case: Path | None
    inputs: Mapping[str, float]
    input_comments: Mapping[str, str]
    series: tuple[SeriesTarget, ...]
    parameters: tuple[ParameterTarget, ...]
    holdout_from: int
    data: Mapping[str, Series] = field(default_factory=dict)
    input_lines: Mapping[str, int] = field(default_factory=dict)
    dropped: tuple[Dropped, ...] = ()

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def base_parameters(self, model: "Model") -> dict[str, float]:
        """Base case overridden by the dated inputs, under the model's spelling."""
        base = load_case(self.case).checked(model) if self.case else {}
        for name, value in self.inputs.items():
            base[model.resolve(name, constants_only=True, source=str(self.path),
                               line=self.input_lines.get(name))] = value
        return base

    def checked(self, model: "Model") -> "Targets":
        """Resolve every name against ``model``; CalibrationError/OverrideError naming the line."""
        series = []
        for s in self.series:
            try:
                variable = model.resolve(s.variable, source=str(self.path), line=s.line)
            except OverrideError as exc:
                raise CalibrationError(exc.message.replace("unknown variable", "unknown model variable"),
                                       file=self.path, line=s.line, variable=s.variable) from None
            series.append(_replace(s, variable=variable))
        params = []
        base = self.base_parameters(model)
        for p in self.parameters:
            name = model.resolve(p.name, constants_only=True, source=str(self.path), line=p.line)
            start = p.start if p.start is not None else base.get(name, model.defaults[name])
            if not (p.lower <= start <= p.upper):
                raise CalibrationError(f"start value {start:g} lies outside the bounds "
                                       f"[{p.lower:g}, {p.upper:g}]", file=self.path, line=p.line,
                                       variable=p.name)
            params.append(_replace(p, name=name, start=float(start)))
        if len({p.name for p in params}) != len(params):
            raise CalibrationError("a parameter is listed twice", file=self.path)
        fixed = set(self.inputs)
        both = [p.name for p in params if p.name in fixed]
        if both:
            raise CalibrationError("a dated input cannot also be fitted", file=self.path,
                                   variable=both[0])
        return _replace(self, series=tuple(series), parameters=tuple(params))


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


def _block_lines(text: str, header: str) -> list[int]:
    pattern = re.compile(r"^[ \t]*\[\[\s*" + re.escape(header) + r"\s*\]\]", re.M)
    return [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]


def _key_line(text: str, key: str, start: int = 0, end: int | None = None) -> int | None:
    lines = text.splitlines()
    pattern = re.compile(r'^\s*(?:"' + re.escape(key) + r'"|' + re.escape(key) + r")\s*=")
    for number in range(start, len(lines) if end is None else min(end, len(lines))):
        if pattern.match(lines[number]):
            return number + 1
    return None


def _comments(text: str, keys) -> dict[str, str]:
    found = {}
    for key in keys:
        line = _key_line(text, key)
        if line:
            _, _, comment = text.splitlines()[line - 1].partition("#")
            found[key] = comment.strip()
    return found


def _number(table: dict, key: str, path: Path, line: int | None, name: str, default=None) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalibrationError(f"'{key}' must be a finite number, got {value!r}", file=path, line=line,
                               variable=name)
    return float(value)


def load_targets(path: str | Path) -> Targets:
    """Read and check the form of a target file (names are checked later against the model)."""
    path = Path(path)
    data, text = read_toml(path, CalibrationError, "no such target file")
    known = {"description", "model", "case", "data_dir", "holdout_from", "inputs", "series", "parameters",
             "dropped"}
    for key in data:
        if key not in known:
            raise CalibrationError(f"unknown key (expected {', '.join(sorted(known))})", file=path,
                                   line=_key_line(text, key), variable=key)
    here = path.parent
    if "model" not in data:
        raise CalibrationError("'model' (the model file) is required", file=path)
    model = here / str(data["model"])
    if not model.exists():
        raise CalibrationError(f"no such model file {model}", file=path, line=_key_line(text, "model"),
                               variable="model")
    case = here / str(data["case"]) if data.get("case") else None
    if case is not None and not case.exists():
        raise CalibrationError(f"no such case file {case}", file=path, line=_key_line(text, "case"),
                               variable="case")
    data_dir = here / str(data.get("data_dir", "../data"))

    inputs_table = data.get("inputs", {})
    if not isinstance(inputs_table, dict):
        raise CalibrationError("'inputs' must be a table of name = number", file=path)
    inputs_start = next(iter(_block_lines(text.replace("[inputs]", "[[inputs]]"), "inputs")), 0)
    inputs, input_lines = {}, {}
    for key, value in inputs_table.items():
        line = _key_line(text, key, inputs_start)
        inputs[key] = _number(inputs_table, key, path, line, key)
        if line:
            input_lines[key] = line

    series_blocks = _block_lines(text, "series")
    series = []
    data_by_name: dict[str, Series] = {}
    raw_series = data.get("series", [])
    if not raw_series:
        raise CalibrationError("no [[series]] to fit", file=path)
    for i, table in enumerate(raw_series):
        start = series_blocks[i] if i < len(series_blocks) else 0
        end = series_blocks[i + 1] if i + 1 < len(series_blocks) else None
        line = start or None
        name = str(table.get("name", table.get("file", f"series {i + 1}")))

        def where(key, _start=start, _end=end, _line=line):
            return _key_line(text, key, _start, _end) or _line

        for key in ("file", "variable"):
            if key not in table:
                raise CalibrationError(f"series needs '{key}'", file=path, line=line, variable=name)
        unknown = set(table) - {"name", "file", "variable", "scale", "error", "sigma", "aggregate",
                                "first_year", "last_year", "note", "group", "ar1", "saturates",
                                "mixed_units", "from"}
        if unknown:
            key = sorted(unknown)[0]
            raise CalibrationError("unknown series key", file=path, line=where(key), variable=key)
        csv_path = data_dir / str(table["file"])
        if not csv_path.exists():
            raise CalibrationError(f"unknown indicator: no file {table['file']!r} in {data_dir}",
                                   file=path, line=where("file"), variable=name)
        scale = table.get("scale", 1.0)
        if scale == "estimate":
            scale = None
        else:
            scale = _number(table, "scale", path, where("scale"), name, 1.0)
            if scale <= 0:
                raise CalibrationError("'scale' must be positive", file=path, line=where("scale"),
                                       variable=name)
        error = table.get("error", "log")
        if error not in ("log", "absolute"):
            raise CalibrationError(f"'error' must be 'log' or 'absolute', got {error!r}", file=path,
                                   line=where("error"), variable=name)
        group = table.get("group")
        if group is not None and not (isinstance(group, str) and group):
            raise CalibrationError("'group' must be a name", file=path, line=where("group"), variable=name)
        if "sigma" in table and group is not None:
            raise CalibrationError("give either a fixed 'sigma' or a shared 'group', not both", file=path,
                                   line=where("sigma"), variable=name)
        if table.get("sigma", "estimate") == "estimate" and group is None:
            raise CalibrationError(
                "a free error scale per series lets the fit ignore this series: give a fixed 'sigma' "
                "(its documented measurement error) or a 'group' of series sharing one scale",
                file=path, line=where("sigma"), variable=name)
        sigma = None if group is not None else _number(table, "sigma", path, where("sigma"), name)
        if sigma is not None and sigma <= 0:
            raise CalibrationError("'sigma' must be positive", file=path, line=where("sigma"), variable=name)
        ar1 = table.get("ar1", 0.0)
        if ar1 != "estimate":
            ar1 = _number(table, "ar1", path, where("ar1"), name, 0.0)
            if not -1 < ar1 < 1:
                raise CalibrationError("'ar1' must lie in (-1, 1) or be \"estimate\"", file=path,
                                       line=where("ar1"), variable=name)
        saturates = table.get("saturates", False)
        if not isinstance(saturates, bool):
            raise CalibrationError("'saturates' must be true or false", file=path, line=where("saturates"),
                                   variable=name)
        aggregate = table.get("aggregate", "mean")
        if aggregate not in ("mean", "end", "cumulative"):
            raise CalibrationError(f"'aggregate' must be 'mean', 'end' or 'cumulative', got {aggregate!r}",
                                   file=path, line=where("aggregate"), variable=name)
        cumulative_from = _number(table, "from", path, where("from"), name)
        if (aggregate == "cumulative") != (cumulative_from is not None):
            raise CalibrationError("'from' (the start of the integral) goes with aggregate = \"cumulative\" "
                                   "and only with it", file=path, line=where("from") or where("aggregate"),
                                   variable=name)
        first = table.get("first_year")
        last = table.get("last_year")
        target = SeriesTarget(name=name, file=csv_path, variable=str(table["variable"]), scale=scale,
                              error=error, sigma=sigma, aggregate=aggregate,
                              first_year=int(first) if first is not None else None,
                              last_year=int(last) if last is not None else None,
                              note=str(table.get("note", "")), line=line, group=group, ar1=ar1,
                              saturates=saturates, cumulative_from=cumulative_from)
        if name in data_by_name:
            raise CalibrationError("two series with the same name", file=path, line=line, variable=name)
        mixed = table.get("mixed_units")
        if mixed is not None and not (isinstance(mixed, str) and len(mixed.strip()) > 20):
            raise CalibrationError("'mixed_units' must say why the units are comparable", file=path,
                                   line=where("mixed_units"), variable=name)
        loaded = load_series(csv_path, mixed_units=mixed is not None)
        if error == "log" and any(v <= 0 for v in loaded.values):
            raise CalibrationError("log error needs positive data", file=path, line=where("error"),
                                   variable=name)
        data_by_name[name] = loaded
        used = [y for y in loaded.years if (first is None or y >= first) and (last is None or y <= last)]
        if not used:
            raise CalibrationError("no data years inside first_year/last_year", file=path, line=line,
                                   variable=name)
        series.append(target)
    _check_groups(series, data_by_name, path)

    param_blocks = _block_lines(text, "parameters")
    params = []
    raw_params = data.get("parameters", [])
    if not raw_params:
        raise CalibrationError("no [[parameters]] to estimate", file=path)
    for i, table in enumerate(raw_params):
        start_line = param_blocks[i] if i < len(param_blocks) else 0
        end = param_blocks[i + 1] if i + 1 < len(param_blocks) else None
        name = str(table.get("name", ""))
        line = start_line or None
        if not name:
            raise CalibrationError("parameter needs 'name'", file=path, line=line)
        unknown = set(table) - {"name", "lower", "upper", "start", "transform", "prior", "data_years",
                                "basis"}
        if unknown:
            key = sorted(unknown)[0]
            raise CalibrationError("unknown parameter key", file=path,
                                   line=_key_line(text, key, start_line, end) or line, variable=key)
        lower = _number(table, "lower", path, line, name)
        upper = _number(table, "upper", path, line, name)
        if lower is None or upper is None or not lower < upper:
            raise CalibrationError("bounds need 'lower' < 'upper'", file=path, line=line, variable=name)
        transform = table.get("transform", "linear")
        if transform not in ("linear", "log"):
            raise CalibrationError(f"'transform' must be 'linear' or 'log', got {transform!r}", file=path,
                                   line=line, variable=name)
        if transform == "log" and lower <= 0:
            raise CalibrationError("a log transform needs lower > 0", file=path, line=line, variable=name)
        start = _number(table, "start", path, line, name)
        if start is not None and not lower <= start <= upper:
            raise CalibrationError(f"start value {start:g} lies outside the bounds [{lower:g}, {upper:g}]",
                                   file=path, line=_key_line(text, "start", start_line, end) or line,
                                   variable=name)
        prior = table.get("prior")
        prior_mean = prior_sd = None
        if prior is not None:
            if not isinstance(prior, dict) or set(prior) != {"mean", "sd"}:
                raise CalibrationError("'prior' must be { mean = ..., sd = ... }", file=path, line=line,
                                       variable=name)
            prior_mean = _number(prior, "mean", path, line, name)
            prior_sd = _number(prior, "sd", path, line, name)
            if prior_sd <= 0:
                raise CalibrationError("prior sd must be positive", file=path, line=line, variable=name)
        years = table.get("data_years")
        if years is not None:
            if not isinstance(years, list) or not all(isinstance(y, int) and not isinstance(y, bool)
                                                      for y in years):
                raise CalibrationError("'data_years' must be a list of years ([] when no data)", file=path,
                                       line=_key_line(text, "data_years", start_line, end) or line,
                                       variable=name)
            years = tuple(years)
        params.append(ParameterTarget(name=name, lower=lower, upper=upper, start=start,
                                      transform=transform, prior_mean=prior_mean, prior_sd=prior_sd,
                                      line=line, data_years=years, basis=str(table.get("basis", ""))))
    holdout = data.get("holdout_from", 2020)
    if isinstance(holdout, bool) or not isinstance(holdout, int):
        raise CalibrationError("'holdout_from' must be a year", file=path, line=_key_line(text, "holdout_from"))
    dropped = []
    for table in data.get("dropped", []):
        if not isinstance(table, dict) or set(table) != {"file", "reason"}:
            raise CalibrationError("each [[dropped]] needs exactly 'file' and 'reason'", file=path,
                                   line=next(iter(_block_lines(text, "dropped")), None))
        dropped.append(Dropped(str(table["file"]), str(table["reason"])))
    return Targets(
        name=path.stem, path=path, description=str(data.get("description", "")), model=model, case=case,
        inputs=inputs, input_comments=_comments(text, inputs), series=tuple(series),
        parameters=tuple(params), holdout_from=holdout, data=data_by_name, input_lines=input_lines,
        dropped=tuple(dropped),
    )


def _check_groups(series: list[SeriesTarget], data: Mapping[str, Series], path: Path) -> None:
    """A group shares one estimated scale: it needs two series or more, five points or more, and
    one AR(1) setting (the coefficient belongs to the likelihood unit)."""
    groups: dict[str, list[SeriesTarget]] = {}
    for s in series:
        if s.group:
            groups.setdefault(s.group, []).append(s)
    for name, members in groups.items():
        first = members[0]
        if len(members) < 2:
            raise CalibrationError(f"group {name!r} has one series: a group of one is a free per-series "
                                   "scale; give a fixed 'sigma'", file=path, line=first.line, variable=first.name)
        points = sum(len([y for y in data[s.name].years if (s.first_year is None or y >= s.first_year)
                          and (s.last_year is None or y <= s.last_year)]) for s in members)
        if points < MIN_POINTS_FOR_ESTIMATED_SIGMA:
            raise CalibrationError(f"group {name!r} has {points} data points: too few to estimate its "
                                   "error scale; give fixed sigmas", file=path, line=first.line,
                                   variable=first.name)
        if len({str(s.ar1) for s in members}) > 1:
            raise CalibrationError(f"the series of group {name!r} give different 'ar1': the coefficient "
                                   "belongs to the group", file=path, line=first.line, variable=first.name)


def prior_years_problems(targets: Targets) -> list[str]:
    """Messages for parameters whose prior has no stated data years or uses a hold-out year."""
    problems = []
    for p in targets.parameters:
        if p.data_years is None:
            problems.append(f"{targets.path}:{p.line}: {p.name}: no 'data_years' for its prior")
            continue
        late = sorted(y for y in p.data_years if y >= targets.holdout_from)
        if late:
            problems.append(f"{targets.path}:{p.line}: {p.name}: prior uses hold-out year(s) "
                            f"{', '.join(map(str, late))} (hold-out from {targets.holdout_from})")
    return problems
