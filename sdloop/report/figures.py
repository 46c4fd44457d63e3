"""A study's figures, built from the project's ``[[figures]]`` specifications.

``figure_jobs(result)`` turns each specification into jobs (one per figure file): a kind and a
payload of plain data (DataFrames of the lines to draw, labels, options). ``draw(job)`` renders
one job; ``sdloop.report.study_report`` saves the jobs, reusing a figure whose payload has not
changed since an earlier run (the cache key is the payload itself). ``loop_dominance`` figures
need a loop analysis of one run and are built by ``dominance_outputs``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sdloop.experiments.figure_checks import selected
from sdloop.experiments.metrics import DIMS, SERIES, RunView, Where
from sdloop.experiments.project_specs import fill


@dataclass(frozen=True)
class FigureJob:
    """One figure file to draw: ``stem`` relative to the study's output folder."""

    stem: str
    kind: str
    payload: dict


def describe(job: FigureJob, most: int = 4) -> str:
    """What a figure shows, for ``index.md``: its title, or else what its panels plot."""
    payload = job.payload
    if payload.get("title"):
        return " ".join(str(payload["title"]).split())
    if job.kind == "ranking":
        return "strategies ranked on " + ", ".join(payload.get("labels", {}).values())
    names = []
    for panel in payload.get("panels", ()):
        name = panel.get("title") or ", ".join(map(str, panel["series"].columns))
        if name and name not in names:
            names.append(name)
    if not names:
        return ""
    shown = "; ".join(names[:most]) + (f"; and {len(names) - most} more" if len(names) > most else "")
    return f"{len(names)} panel{'s' if len(names) > 1 else ''}: {shown}"


def fields(key: dict, **extra) -> dict:
    """Template fields for file names and titles."""
    out = {}
    for dim in DIMS:
        name = key.get(dim, "")
        out[dim] = name
        out[f"{dim}_text"] = name.replace("_", " ")
    out["CASE"] = key.get("case", "").upper()
    return {**out, **extra}


def slug(text: str) -> str:
    """A variable name as a file-name part: lower case, runs of other characters as '_'."""
    import re

    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def _series(study, text: str, frame: pd.DataFrame, key) -> pd.Series:
    node = study.compiler().compile(text, Where(study.project.path, None, "figure"), want=(SERIES,))
    view = RunView.of_frame(frame, study.params[key], study.sim.defaults)
    return pd.Series(node.run(view, None)[:, 0], index=frame.index)


def _ylabel(study, text: str, quantity: str | None, ylabel: str | None) -> str:
    from sdloop.report import plotting

    if ylabel:
        return ylabel
    try:
        resolved = study.sim.resolve(text)
    except Exception:  # an expression, not a plain name: no units known
        return quantity or text
    return plotting.units_label(quantity or resolved, study.sim.units.get(resolved))


def _keys(study, spec, dims) -> list[dict]:
    choices = [selected(study, spec, d) for d in dims]
    return [dict(zip(dims, combo)) for combo in itertools.product(*choices)]


def _common(study) -> dict:
    project = study.project
    phases = tuple((p.start, p.end, p.label, p.shade) for p in project.phases)
    units = getattr(study.sim, "time_units", "") or "Time"
    return {"phases": phases, "phases_title": project.phases_title, "time_label": units}


def figure_jobs(result) -> list[FigureJob]:
    """Every run figure of a study result, as jobs."""
    study = result.study
    jobs = []
    for spec in study.project.figures:
        if spec.kind == "lines":
            jobs += _lines_jobs(study, result, spec)
        elif spec.kind in ("compare", "plot"):
            from sdloop.experiments.figure_checks import plot_options_of
            from sdloop.report.plot_figures import plot_jobs

            opts = plot_options_of(spec, Where(study.project.path, spec.line, f"figure {spec.file}"))
            jobs += plot_jobs(study, result.runs, spec.file, spec.title, opts, bands=getattr(result, "bands", None))
        elif spec.kind == "ranking":
            jobs += _ranking_jobs(study, result, spec)
    return jobs


def _lines_jobs(study, result, spec) -> list[FigureJob]:
    jobs = []
    for key in _keys(study, spec, DIMS):
        run = tuple(key[d] for d in DIMS)
        frame = result.runs[run]
        panels = []
        for panel in spec.options["panels"]:
            names = panel.get("labels") or panel["lines"]
            lines = {name: _series(study, text, frame, run) for name, text in zip(names, panel["lines"])}
            panels.append({"title": panel.get("title"),
                           "ylabel": _ylabel(study, panel["lines"][0], panel.get("quantity"), panel.get("ylabel")),
                           "series": pd.DataFrame(lines)})
        f = fields(key)
        payload = {**_common(study), "panels": panels, "title": fill(spec.title, f) if spec.title else None,
                   "own_looks": True}
        if not spec.options.get("phases", False):
            payload["phases"] = ()
        jobs.append(FigureJob(fill(spec.file, f), "plot", payload))
    return jobs


def rank_runs(table: pd.DataFrame, specs: dict) -> pd.DataFrame:
    """Rank (1 = best) of each row on each ranked metric; ties share the better rank. A value never
    reached (+inf) ranks after every reached one; an undefined value (NaN: a ratio with nothing
    gained) is not ranked at all (NaN), so it is never best and never counted as middling."""
    ranks = {}
    for column in table.columns:
        higher = specs[column].better == "higher"
        ranks[column] = table[column].rank(ascending=not higher, method="min", na_option="keep")
    return pd.DataFrame(ranks, index=table.index)


def _ranking_jobs(study, result, spec) -> list[FigureJob]:
    specs = {s.name: s for s in study.project.metrics}
    wanted = spec.options.get("metrics")
    columns = [wanted] if isinstance(wanted, str) else wanted or [s.name for s in study.project.metrics if s.better]
    metrics = result.metrics
    jobs = []
    for case in selected(study, spec, "case"):
        tables, ranks = {}, {}
        for scenario in selected(study, spec, "scenario"):
            rows = metrics
            if "case" in rows:
                rows = rows[rows["case"] == case]
            if "scenario" in rows:
                rows = rows[rows["scenario"] == scenario]
            index = "strategy" if "strategy" in rows else None
            table = (rows.set_index(index) if index else rows)[columns]
            tables[scenario], ranks[scenario] = table, rank_runs(table, specs)
        payload = {"tables": tables, "ranks": ranks,
                   "labels": {c: specs[c].label or c for c in columns},
                   "formats": {c: specs[c].format for c in columns},
                   "better": {c: specs[c].better for c in columns if specs[c].better}}
        f = fields({"case": case})
        payload["title"] = fill(spec.title, f) if spec.title else None
        jobs.append(FigureJob(fill(spec.file, f), "ranking", payload))
    return jobs


def draw(job: FigureJob):
    from sdloop.report.figure_kinds import render

    return render(job.kind, job.payload)


def dominance_outputs(result, out: Path) -> list[Path]:
    """``loop_dominance`` figures: Loops That Matter on one run, its score table, the dominant
    loop per period (``<file>_dominant_loops.txt``-like names from the spec)."""
    from sdloop.analysis.dominance import describe_periods
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.report import loop_plots
    from sdloop.report.output import atomic_write_text, inside, write_csv

    study = result.study
    written = []
    for spec in study.project.figures:
        if spec.kind != "loop_dominance":
            continue
        for key in _keys(study, spec, DIMS):
            run = tuple(key[d] for d in DIMS)
            analysis = analyse_model(study.project.model, study.params[run], dominance=True)
            dominance = analysis.dominance
            stem = inside(out, fill(spec.file, fields(key)))
            write_csv(dominance.relative_scores, stem.parent / "relative_loop_scores.csv")
            min_period = float(spec.options.get("min_period", 2.0))
            atomic_write_text(stem.parent / "dominant_loops.txt", "\n".join(
                describe_periods(dominance, min_length=min_period)) + "\n")
            common = _common(study)
            ax = loop_plots.relative_scores_plot(
                dominance, time_label=common["time_label"], min_period=min_period,
                phases=common["phases"] if spec.options.get("phases", False) else None,
                title=fill(spec.title, fields(key)) if spec.title else None)
            loop_plots.save(ax, stem)
            written.append(stem)
    return written
