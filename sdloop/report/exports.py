"""Files for papers: trajectories and ensemble bands as netCDF, tables as LaTeX, and ``index.md``.

``trajectories_dataset`` turns a study's runs into an ``xarray.Dataset`` with dimensions
(case, scenario, strategy, time) for the dimensions the project declares, one data variable per
model variable carrying its ``units`` and ``description`` (the model file's comment) as
attributes; ``bands_dataset`` does the same for an ensemble's percentile bands (an extra
``percentile`` dimension). Both are written with ``write_netcdf`` (netCDF4, compressed). The
run directory's ``index.md`` (``write_index``) says what each file shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.experiments.metrics import DIMS
from sdloop.report.output import atomic_file, atomic_write_text, signals_held


def variable_attributes(sim, name: str) -> dict[str, str]:
    """``units`` and ``description`` of a model variable, as the model file gives them."""
    structure = getattr(sim, "structure", None)
    variable = getattr(structure, "variables", {}).get(name) if structure is not None else None
    units = getattr(sim, "units", {}).get(name) or (variable.units if variable is not None else "")
    comment = variable.comment if variable is not None else ""
    return {"units": units or "", "description": " ".join((comment or "").split())}


def netcdf_name(name: str) -> str:
    """A variable name netCDF accepts ('/' is its group separator)."""
    return name.replace("/", "_")


def trajectories_dataset(study, runs: Mapping[tuple, pd.DataFrame], columns: Sequence[str] | None = None):
    """Every run of a study as one Dataset (declared dimensions x time), with units and descriptions
    (``columns``: the variables to keep, default all)."""
    import xarray as xr

    dims = [d for d in DIMS if d in study.project.dims] or ["scenario"]
    names = {d: [k[DIMS.index(d)] or "baseline" for k in runs] for d in dims}
    entries = {d: list(dict.fromkeys(names[d])) for d in dims}
    first = next(iter(runs.values()))
    times = first.index.to_numpy(dtype=float)
    shape = [len(entries[d]) for d in dims] + [len(times)]
    keep = [c for c in (columns or first.columns) if c in first.columns]
    cubes = np.full([len(keep), *shape], np.nan)  # one block for every variable: one copy per run
    for i, frame in enumerate(runs.values()):
        at = tuple(entries[d].index(names[d][i]) for d in dims)
        cubes[(slice(None), *at)] = frame[keep].to_numpy(dtype=float).T
    data = {}
    for column, cube in zip(keep, cubes):
        attrs = {**variable_attributes(study.sim, column), "vensim_name": column}
        data[netcdf_name(column)] = ([*dims, "time"], cube, attrs)
    coords = {d: entries[d] for d in dims}
    coords["time"] = ("time", times, {"units": getattr(study.sim, "time_units", "") or ""})
    return xr.Dataset(data, coords=coords, attrs={
        "title": f"{study.project.name}: trajectories", "model": study.project.model.name,
        "project": study.project.path.name, "source": "sdloop", "parameters": study.project.describe_layers()})


def bands_dataset(bands: pd.DataFrame, study=None):
    """An ensemble's ``bands.csv`` table as a Dataset (case, scenario, strategy, percentile, time)."""
    import xarray as xr

    percentiles = [c for c in bands.columns if c.startswith("p") and c[1:].isdigit()]
    long = bands.melt(id_vars=["case", "scenario", "strategy", "variable", "time"], value_vars=percentiles,
                      var_name="percentile", value_name="value")
    long["percentile"] = long["percentile"].str[1:].astype(float)
    out = xr.Dataset()
    for variable, part in long.groupby("variable", sort=False):
        array = part.set_index(["case", "scenario", "strategy", "percentile", "time"])["value"].to_xarray()
        attrs = _band_attributes(study, variable)
        out[netcdf_name(variable)] = array.assign_attrs(attrs, vensim_name=variable,
                                                        long_name=f"percentiles over the ensemble's draws of {variable}")
    out["percentile"].attrs["units"] = "percent of draws"
    return out


def _band_attributes(study, text: str) -> dict[str, str]:
    """Units and description of a band's variable; a band of an expression has none."""
    from sdloop.errors import SdloopError

    if study is None:
        return {}
    try:
        return variable_attributes(study.sim, study.sim.resolve(text))
    except SdloopError:
        return {"units": "", "description": f"the expression {text}"}


def write_netcdf(dataset, path: str | Path) -> Path:
    """``dataset`` as a compressed netCDF4 file, written under a temporary name and renamed."""
    encoding = {name: {"zlib": True, "complevel": 4} for name in dataset.data_vars}
    with atomic_file(path) as tmp, signals_held():  # HDF5 cannot be interrupted half-way (see signals_held)
        dataset.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return Path(path)


# --------------------------------------------------------------------------- index.md
KNOWN = [  # (file name, what it shows) for files every run may hold
    ("manifest.json", "provenance: versions, git commits (sdloop's and the model folder's), hashes of the model "
                      "and input files, every run's "
                      "parameters, seeds, engines and parameter layers"),
    ("inputs/", "copies of the model and every input file the run used (compare runs with `sdloop compare`)"),
    ("trajectories.csv", "every run over time: the dimensions, time, then every variable"),
    ("trajectories.nc", "the same runs as netCDF (dimensions x time), each variable with units and description"),
    ("summary.csv", "the project's metrics, one row per run"),
    ("robustness.csv", "per case, scenario, strategy and metric: probability of being best, maximum and mean "
                       "regret, mean and 5/50/95th percentiles over the draws"),
    ("minimax_regret.csv", "per case, scenario and metric: the strategy with the smallest maximum regret"),
    ("bands.csv", "percentiles (5, 25, 50, 75, 95) over the draws of the band variables over time"),
    ("bands.nc", "the same bands as netCDF with units and descriptions"),
    ("sobol.csv", "Sobol indices (first order and total, with confidence) of every metric"),
    ("samples.parquet", "each draw's uncertain inputs and every run's metrics (for `sdloop discover`)"),
    ("claims_draws.parquet", "whether each claim holds, draw by draw"),
    ("relative_loop_scores.csv", "Loops That Matter relative loop scores over time"),
    ("dominant_loops.txt", "the dominant loop per period"),
]


FIGURE_KINDS = [  # (end of a figure's file name, what it shows) for figures without a title
    ("_fan", "fan chart: median, 25-75% and 5-95% of the ensemble's draws over time"),
    ("_best_probability", "probability that each strategy is best on each metric, over the draws"),
    ("_regret", "regret of each strategy on each metric over the draws, in the metric's unit"),
    ("_sobol", "Sobol indices (first order and total) of the metrics"),
    ("_ranking", "strategies ranked on every metric"),
    ("loop_dominance", "Loops That Matter: relative loop scores and the dominant loop per period"),
    ("changed_trajectories", "the variables that changed most, run A against run B"),
    ("discover", "scenario discovery: the box, its coverage and density"),
]


def describe(name: str, extra: Mapping[str, str]) -> str:
    """What the file ``name`` (relative to the run directory) shows."""
    if name in extra:
        return extra[name]
    base = Path(name).name
    stem = base.rsplit(".", 1)[0]
    for known, text in KNOWN:
        if base == known or name.startswith(known):
            return text
    if base.endswith(".tex"):
        return f"the table {stem}.csv as LaTeX (booktabs)"
    if base.endswith("metrics.csv"):
        return "metrics, one row per run (empty: never reached or undefined)"
    if stem == "claims":
        return "claims: whether each holds (a run) or the share of draws on which it holds (an ensemble)"
    return ""


def _figure_text(stem: str, extra: Mapping[str, str]) -> str:
    if stem in extra:
        return extra[stem]
    return next((text for end, text in FIGURE_KINDS if Path(stem).name.endswith(end)), "")


def write_index(run_dir: Path, extra: Mapping[str, str] | None = None) -> Path:
    """``index.md``: every file of the run directory with what it shows (figures by their titles)."""
    extra = dict(extra or {})
    lines = ["# What this run directory holds", "",
             "Figures are PDF (vector) and 300-dpi PNG, 183 mm wide, grayscale. Tables are CSV (and LaTeX "
             "booktabs where a paper wants them).", ""]
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                   if p.is_file() and not p.name.startswith(".") and p.name != "index.md")
    present = set(files)
    shown_inputs = False
    for name in files:
        if name.startswith("inputs/"):
            if not shown_inputs:
                lines.append(f"- `inputs/`: {describe('inputs/', extra)}")
                shown_inputs = True
            continue
        stem, _, ext = name.rpartition(".")
        if ext == "pdf" and f"{stem}.png" in present:
            text = _figure_text(stem, extra)
            lines.append(f"- `{stem}.pdf`, `.png`: figure" + (f": {text}" if text else ""))
            continue
        if ext == "png" and f"{stem}.pdf" in present:
            continue
        text = describe(name, extra)
        lines.append(f"- `{name}`" + (f": {text}" if text else ""))
    return atomic_write_text(run_dir / "index.md", "\n".join(lines) + "\n")
