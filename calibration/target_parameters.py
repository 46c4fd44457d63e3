"""Read the ``[[parameters]]`` blocks of a target file: bounds, start, search scale and prior
of each parameter to estimate, checked in form (names are checked later against the model)."""

from __future__ import annotations

from pathlib import Path

from calibration.errors import CalibrationError
from calibration.target_types import ParameterTarget
from calibration.toml_fields import block_lines, finite_number, key_line


def read_parameters(text: str, raw_params: list, path: Path) -> list[ParameterTarget]:
    """The parameters of ``raw_params`` (the parsed ``[[parameters]]`` tables of ``text``); CalibrationError
    naming the line of the first problem."""
    param_blocks = block_lines(text, "parameters")
    params = []
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
                                   line=key_line(text, key, start_line, end) or line, variable=key)
        lower = finite_number(table, "lower", path, line, name)
        upper = finite_number(table, "upper", path, line, name)
        if lower is None or upper is None or not lower < upper:
            raise CalibrationError("bounds need 'lower' < 'upper'", file=path, line=line, variable=name)
        transform = table.get("transform", "linear")
        if transform not in ("linear", "log"):
            raise CalibrationError(f"'transform' must be 'linear' or 'log', got {transform!r}", file=path,
                                   line=line, variable=name)
        if transform == "log" and lower <= 0:
            raise CalibrationError("a log transform needs lower > 0", file=path, line=line, variable=name)
        start = finite_number(table, "start", path, line, name)
        if start is not None and not lower <= start <= upper:
            raise CalibrationError(f"start value {start:g} lies outside the bounds [{lower:g}, {upper:g}]",
                                   file=path, line=key_line(text, "start", start_line, end) or line,
                                   variable=name)
        prior = table.get("prior")
        prior_mean = prior_sd = None
        if prior is not None:
            if not isinstance(prior, dict) or set(prior) != {"mean", "sd"}:
                raise CalibrationError("'prior' must be { mean = ..., sd = ... }", file=path, line=line,
                                       variable=name)
            prior_mean = finite_number(prior, "mean", path, line, name)
            prior_sd = finite_number(prior, "sd", path, line, name)
            if prior_sd <= 0:
                raise CalibrationError("prior sd must be positive", file=path, line=line, variable=name)
        years = table.get("data_years")
        if years is not None:
            if not isinstance(years, list) or not all(isinstance(y, int) and not isinstance(y, bool)
                                                      for y in years):
                raise CalibrationError("'data_years' must be a list of years ([] when no data)", file=path,
                                       line=key_line(text, "data_years", start_line, end) or line,
                                       variable=name)
            years = tuple(years)
        params.append(ParameterTarget(name=name, lower=lower, upper=upper, start=start,
                                      transform=transform, prior_mean=prior_mean, prior_sd=prior_sd,
                                      line=line, data_years=years, basis=str(table.get("basis", ""))))
    return params
