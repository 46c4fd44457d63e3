"""Read the ``[[series]]`` blocks of a target file: each checked in form, its indicator CSV
loaded, and the error-scale groups checked (``check_groups``)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from calibration.data import Series, load_series
from calibration.errors import CalibrationError
from calibration.target_types import SeriesTarget
from calibration.toml_fields import block_lines, finite_number, key_line

MIN_POINTS_FOR_ESTIMATED_SIGMA = 5


def read_series(text: str, raw_series: list, path: Path,
                data_dir: Path) -> tuple[list[SeriesTarget], dict[str, Series]]:
    """The series of ``raw_series`` (the parsed ``[[series]]`` tables of ``text``) and the data of each
    by name; CalibrationError naming the line of the first problem."""
    series_blocks = block_lines(text, "series")
    series = []
    data_by_name: dict[str, Series] = {}
    if not raw_series:
        raise CalibrationError("no [[series]] to fit", file=path)
    for i, table in enumerate(raw_series):
        start = series_blocks[i] if i < len(series_blocks) else 0
        end = series_blocks[i + 1] if i + 1 < len(series_blocks) else None
        line = start or None
        name = str(table.get("name", table.get("file", f"series {i + 1}")))

        def where(key, _start=start, _end=end, _line=line):
            return key_line(text, key, _start, _end) or _line

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
            scale = finite_number(table, "scale", path, where("scale"), name, 1.0)
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
        sigma = None if group is not None else finite_number(table, "sigma", path, where("sigma"), name)
        if sigma is not None and sigma <= 0:
            raise CalibrationError("'sigma' must be positive", file=path, line=where("sigma"), variable=name)
        ar1 = table.get("ar1", 0.0)
        if ar1 != "estimate":
            ar1 = finite_number(table, "ar1", path, where("ar1"), name, 0.0)
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
        cumulative_from = finite_number(table, "from", path, where("from"), name)
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
    check_groups(series, data_by_name, path)
    return series, data_by_name


def check_groups(series: list[SeriesTarget], data: Mapping[str, Series], path: Path) -> None:
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

