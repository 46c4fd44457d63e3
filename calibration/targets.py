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

The values read are in ``target_types``; the ``[[series]]`` and ``[[parameters]]`` blocks are
read by ``target_series`` and ``target_parameters``.
"""

from __future__ import annotations

from pathlib import Path

from calibration.errors import CalibrationError
from calibration.target_parameters import read_parameters
from calibration.target_series import read_series
from calibration.target_types import Dropped, ParameterTarget, SeriesTarget, Targets
from calibration.toml_fields import block_lines, finite_number, key_comments, key_line
from sdloop.experiments.overrides import read_toml

__all__ = ["Dropped", "ParameterTarget", "SeriesTarget", "Targets", "load_targets", "prior_years_problems"]


def load_targets(path: str | Path) -> Targets:
    """Read and check the form of a target file (names are checked later against the model)."""
    path = Path(path)
    data, text = read_toml(path, CalibrationError, "no such target file")
    known = {"description", "model", "case", "data_dir", "holdout_from", "inputs", "series", "parameters",
             "dropped"}
    for key in data:
        if key not in known:
            raise CalibrationError(f"unknown key (expected {', '.join(sorted(known))})", file=path,
                                   line=key_line(text, key), variable=key)
    here = path.parent
    if "model" not in data:
        raise CalibrationError("'model' (the model file) is required", file=path)
    model = here / str(data["model"])
    if not model.exists():
        raise CalibrationError(f"no such model file {model}", file=path, line=key_line(text, "model"),
                               variable="model")
    case = here / str(data["case"]) if data.get("case") else None
    if case is not None and not case.exists():
        raise CalibrationError(f"no such case file {case}", file=path, line=key_line(text, "case"),
                               variable="case")
    data_dir = here / str(data.get("data_dir", "../data"))

    inputs_table = data.get("inputs", {})
    if not isinstance(inputs_table, dict):
        raise CalibrationError("'inputs' must be a table of name = number", file=path)
    inputs_start = next(iter(block_lines(text.replace("[inputs]", "[[inputs]]"), "inputs")), 0)
    inputs, input_lines = {}, {}
    for key, value in inputs_table.items():
        line = key_line(text, key, inputs_start)
        inputs[key] = finite_number(inputs_table, key, path, line, key)
        if line:
            input_lines[key] = line

    series, data_by_name = read_series(text, data.get("series", []), path, data_dir)
    params = read_parameters(text, data.get("parameters", []), path)
    holdout = data.get("holdout_from", 2020)
    if isinstance(holdout, bool) or not isinstance(holdout, int):
        raise CalibrationError("'holdout_from' must be a year", file=path, line=key_line(text, "holdout_from"))
    dropped = []
    for table in data.get("dropped", []):
        if not isinstance(table, dict) or set(table) != {"file", "reason"}:
            raise CalibrationError("each [[dropped]] needs exactly 'file' and 'reason'", file=path,
                                   line=next(iter(block_lines(text, "dropped")), None))
        dropped.append(Dropped(str(table["file"]), str(table["reason"])))
    return Targets(
        name=path.stem, path=path, description=str(data.get("description", "")), model=model, case=case,
        inputs=inputs, input_comments=key_comments(text, inputs), series=tuple(series),
        parameters=tuple(params), holdout_from=holdout, data=data_by_name, input_lines=input_lines,
        dropped=tuple(dropped),
    )


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
