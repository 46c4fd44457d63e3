"""Plot figures (``sdloop plot`` and the ``plot``/``compare`` figure kinds) as jobs of plain data.

``plot_jobs(study, runs, stem, title, opts)`` turns plot options into one job per figure file:
rows of panels (one per expression), a line per entry of the ``lines`` dimension, a column per
entry of ``facets``; ``bands(text, key)`` and ``data(text, key)`` supply ensemble percentile
bands and published data points where asked. ``run_dir_runs`` and ``run_dir_bands`` read a run
directory back; ``draw_bands`` computes bands for a project by running its ensemble draws.
The renderer is ``sdloop.report.line_panels``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from sdloop.errors import SdloopError
from sdloop.experiments.figure_checks import entries_of, plot_dims
from sdloop.experiments.metrics import DIMS
from sdloop.experiments.plot_spec import PlotOptions
from sdloop.experiments.project_specs import fill
from sdloop.report.figures import FigureJob, _common, _series, _ylabel, fields

BandSource = Callable[[str, tuple], "pd.DataFrame | None"]
DataSource = Callable[[str, tuple], list]


def _entries(study, opts: PlotOptions, dim: str | None, available: Mapping[str, list] | None) -> list:
    if dim is None:
        return [None]
    names = entries_of(study, opts.chosen(dim), dim)
    if available is not None and opts.chosen(dim) is None:
        names = [n for n in names if n in available.get(dim, names)]
    return names or [""]


def _window(series: pd.Series | pd.DataFrame, opts: PlotOptions):
    lo = -np.inf if opts.start is None else opts.start
    hi = np.inf if opts.end is None else opts.end
    index = series.index.to_numpy(dtype=float)
    return series[(index >= lo - 1e-9) & (index <= hi + 1e-9)]


def _threshold(study, opts: PlotOptions, run: tuple, row: int):
    threshold = opts.threshold
    if not threshold or threshold.get("panel", 1) - 1 != row:
        return None
    value = threshold["value"]
    if isinstance(value, str):
        name = study.sim.resolve(value)
        value = float(study.params[run].get(name, study.sim.defaults[name]))
    return (float(value), threshold.get("label", ""))


def _markers(study, opts: PlotOptions, frame: pd.DataFrame, run: tuple, values: pd.Series) -> list:
    markers = opts.markers
    if not markers:
        return []
    series = _window(_series(study, markers["variable"], frame, run), opts)
    found = []
    for level, symbol in zip(markers.get("levels", []), markers.get("symbols", [])):
        above = series[series >= level]
        if len(above):
            time = float(above.index[0])
            found.append((time, float(values.loc[time]), symbol))
    return found


def plot_jobs(study, runs: Mapping[tuple, pd.DataFrame], stem: str, title: str | None, opts: PlotOptions, *,
              bands: BandSource | None = None, data: DataSource | None = None,
              available: Mapping[str, list] | None = None) -> list[FigureJob]:
    """One job per figure file of a plot (``stem`` and ``title`` are templates: ``{case}`` ...)."""
    lines, facets, per_figure = plot_dims(study, opts, available)
    jobs = []
    for combo in itertools.product(*[_entries(study, opts, d, available) for d in per_figure]):
        fixed = dict(zip(per_figure, combo))
        panels = []
        for row, text in enumerate(opts.vars):
            label = opts.labels[row] if opts.labels else None
            for facet in _entries(study, opts, facets, available):
                panel_series, panel_bands, panel_data, panel_markers = {}, {}, [], {}
                threshold = None
                for entry in _entries(study, opts, lines, available):
                    named = {**fixed, **({facets: facet} if facets else {}), **({lines: entry} if lines else {})}
                    run = tuple(named.get(d, _only_entry(study, opts, d, available)) for d in DIMS)
                    if run not in runs:
                        raise SdloopError(f"no run {'/'.join(k for k in run if k) or 'baseline'} to plot")
                    values = _window(_series(study, text, runs[run], run), opts)
                    name = entry if lines else (label or text)
                    panel_series[name] = values
                    if bands is not None and opts.bands:
                        band = bands(text, run)
                        if band is not None:
                            panel_bands[name] = _window(band, opts)
                    if opts.markers:
                        panel_markers[name] = _markers(study, opts, runs[run], run, values)
                    threshold = threshold or _threshold(study, opts, run, row)
                    if data is not None and opts.data and not panel_data:
                        panel_data = [{**p, "time": list(p["time"]), "value": list(p["value"])}
                                      for p in data(text, run)]
                panel_title = text if not facets else f"{text}, {facets}: {str(facet).replace('_', ' ')}"
                panels.append({"var": text, "title": panel_title, "ylabel": _ylabel(study, text, label, None),
                               "series": pd.DataFrame(panel_series), "bands": panel_bands, "data": panel_data,
                               "threshold": threshold, "markers": panel_markers})
        f = fields({**{d: _only_entry(study, opts, d, available) for d in DIMS if d not in (lines, facets)},
                    **fixed})
        common = _common(study)
        payload = {**common, "panels": panels, "title": fill(title, f) if title else None, "style": opts.style,
                   "color": opts.color, "layout": opts.layout,
                   "ncols": opts.ncols or (len(_entries(study, opts, facets, available)) if facets else None),
                   "marker_key": list(zip(opts.markers.get("symbols", []), opts.markers.get("labels", [])))
                   if opts.markers else []}
        if not opts.phases:
            payload["phases"] = ()
        jobs.append(FigureJob(fill(stem, f), "plot", payload))
    return jobs


def _only_entry(study, opts: PlotOptions, dim: str, available) -> str:
    names = _entries(study, opts, dim, available)
    return names[0] if names[0] is not None else ""


# --------------------------------------------------------------------------- run directories
def run_dir_runs(path: Path, study) -> tuple[dict[tuple, pd.DataFrame], dict[str, list]]:
    """The runs of a study's ``trajectories.csv`` in a run directory, and the entries present."""
    if not path.exists():
        raise SdloopError("this run directory has no trajectories for the project (trajectories = \"none\"?)",
                          file=path)
    table = pd.read_csv(path)
    dims = [d for d in DIMS if d in table.columns]
    runs, available = {}, {d: list(dict.fromkeys(table[d].astype(str))) for d in dims}
    declared = set(study.project.dims)
    for values, frame in (table.groupby(dims, sort=False) if dims else [((), table)]):
        values = values if isinstance(values, tuple) else (values,)
        named = {d: (str(v) if d in declared else "") for d, v in zip(dims, values)}
        key = tuple(named.get(d, "") for d in DIMS)
        runs[key] = frame.drop(columns=dims).set_index("time")
    return runs, available


def run_dir_bands(path: Path, study) -> BandSource | None:
    """Percentile bands of a run directory's ``bands.csv`` (the variables ``[ensemble] bands`` named)."""
    if not path.exists():
        return None
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    resolved = {}
    for variable in table["variable"].unique():
        try:
            resolved[study.sim.resolve(variable)] = variable
        except SdloopError:
            resolved[variable] = variable

    def bands(text: str, run: tuple) -> pd.DataFrame | None:
        try:
            name = resolved.get(study.sim.resolve(text), text)
        except SdloopError:
            name = text
        rows = table[table["variable"] == name]
        for dim, value in zip(DIMS, run):
            if dim in rows and value:
                rows = rows[rows[dim].astype(str) == value]
        if rows.empty:
            return None
        return rows.set_index("time")[["p5", "p25", "p50", "p75", "p95"]]

    return bands


def draw_bands(study, runs_wanted, texts, *, samples: int, seed: int) -> BandSource:
    """Bands of ``texts`` for the runs ``runs_wanted``: the project's ensemble draws, percentiles exact."""
    from sdloop.experiments.draws import evaluate_draws
    from sdloop.report.ensemble_report import checked_space, design_for

    if study.project.ensemble is None:
        raise SdloopError("bands need the project's [ensemble] (its uncertain parameters)", file=study.project.path)
    from dataclasses import replace

    design = replace(design_for(study), bands=tuple((t, 0.0, 1.0) for t in texts), band_every=None)
    space = checked_space(study)
    unit = space.unit_sample(samples, method=study.project.ensemble.method, seed=seed)
    found = evaluate_draws(design, space, unit, keys=list(runs_wanted))
    table = {}
    for key in runs_wanted:
        for i, text in enumerate(texts):
            values = found.bands[key][i]  # (times, draws)
            q = np.percentile(values, [5, 25, 50, 75, 95], axis=1).T
            table[(text, key)] = pd.DataFrame(q, columns=["p5", "p25", "p50", "p75", "p95"],
                                              index=pd.Index(found.band_times, name="time"))
    return lambda text, run: table.get((text, run))
