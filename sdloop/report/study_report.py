"""Writing one study into a run directory: trajectories, metrics, claims and figures.

``run_study(study, run_dir, cache=...)`` makes the study's runs (reusing cached runs whose
model text, parameters and code did not change), evaluates metrics and claims, and writes:
``<output>/trajectories.csv``, the metrics table (``metrics_file``), ``claims.csv``
(``claims_file``) and the figures of ``[[figures]]`` under ``<output>/``. Figures whose data
did not change are copied from the cache instead of drawn again.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdloop.experiments.metrics import DIMS
from sdloop.experiments.study import Study, StudyResult
from sdloop.report.cache import Cache, digest, file_digest
from sdloop.errors import OutputError
from sdloop.report.exports import trajectories_dataset, write_netcdf
from sdloop.report.output import atomic_write_text, inside, write_csv
from sdloop.report.tables import write_table


@dataclass
class StudyReport:
    """What was written and reused, for the console and the manifest."""

    result: StudyResult
    figures: list[Path] = field(default_factory=list)
    titles: dict = field(default_factory=dict)  # figure stem (relative to the run directory) -> its title
    reused: dict = field(default_factory=lambda: {"runs": 0, "figures": 0, "drawn": 0})


def cached_runner(cache: Cache, reused: dict):
    """A ``Study.run`` runner that stores each case-and-scenario group of runs in ``cache``."""

    def runner(study: Study, group, columns):
        keys = [k for k in study.params if (k[0], k[1]) == group]
        key = digest("runs", file_digest(study.project.model), study.choice.kind, study.final_time, columns,
                     [[list(k), study.params[k]] for k in keys])
        found = cache.get_arrays("runs", key)
        if found is not None:
            arrays, meta = found
            reused["runs"] += len(keys)
            index = pd.Index(arrays["times"], name="time")
            return {tuple(k): pd.DataFrame(arrays["values"][i], index=index, columns=meta["columns"])
                    for i, k in enumerate(meta["keys"])}
        frames = study.run_group(group, columns)
        first = next(iter(frames.values()))
        cache.put_arrays("runs", key, {"times": first.index.to_numpy(dtype=float),
                                       "values": np.stack([f.to_numpy(dtype=float) for f in frames.values()])},
                         {"columns": list(first.columns), "keys": [list(k) for k in frames]})
        return frames

    return runner


def trajectories_csv(study: Study, result: StudyResult, fmt: str = "%.8g") -> str:
    """Every run in one long CSV table: the declared dimensions (case, scenario, strategy), time,
    then the variables (numbers formatted by numpy: several times faster than pandas)."""
    import csv

    dims = [d for d in DIMS if d in study.project.dims] or ["scenario"]
    keep = study.dynamic_variables() if study.project.trajectories == "dynamic" else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header_written = False
    for key, frame in result.runs.items():
        named = dict(zip(DIMS, key))
        columns = [c for c in (keep or frame.columns) if c in frame.columns]
        if not header_written:
            writer.writerow([*dims, "time", *columns])
            header_written = True
        prefix = io.StringIO()
        csv.writer(prefix, lineterminator="").writerow([named[d] or "baseline" for d in dims])
        block = io.StringIO()
        values = np.column_stack([frame.index.to_numpy(dtype=float), frame[columns].to_numpy(dtype=float)])
        np.savetxt(block, values, fmt=fmt, delimiter=",")
        lead = prefix.getvalue() + ","
        out.write("".join(lead + line + "\n" for line in block.getvalue().splitlines()))
    return out.getvalue()


def _draw_and_save(job, stem: Path) -> list[Path]:
    from sdloop.report.figures import draw
    from sdloop.report.plotting import save_figure

    return save_figure(draw(job), stem)


def _refuse_collisions(jobs, out: Path) -> None:
    """Two figures may not share a file (names that differ only in case would on macOS and Windows)."""
    seen: dict[str, str] = {}
    for job in jobs:
        key = str(job.stem).lower()
        if key in seen:
            raise OutputError(f"two figures would both be written to {out / job.stem} ({seen[key]} and {job.stem}); "
                              "give the cases, scenarios or strategies names that differ by more than case")
        seen[key] = str(job.stem)


class FigureDrawing:
    """Figure jobs being drawn (``start_figures``): in worker processes when there are several,
    so the caller can write its tables meanwhile; ``finish()`` waits, stores each new figure in
    the cache and returns every figure's stem."""

    def __init__(self, jobs, out: Path, cache: Cache, reused: dict, workers: int = 1) -> None:
        _refuse_collisions(jobs, out)
        self.cache, self.reused = cache, reused
        self.written: list[Path] = []
        self.pending = []
        for job in jobs:
            stem = inside(out, job.stem)
            key = digest("figure", job.kind, job.payload)  # the data drawn, the spec and the code version
            if cache.get_files("figures", key, stem.parent) is not None:
                reused["figures"] += 1
                self.written.append(stem)
            else:
                self.pending.append((job, stem, key))
        self.pool = None
        self.futures = []
        if workers > 1 and len(self.pending) > 1:
            import multiprocessing

            import sdloop.report.figure_kinds  # noqa: F401  (imported once here, not by every forked worker)
            import sdloop.report.line_panels  # noqa: F401

            context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                                  else "spawn")
            self.pool = ProcessPoolExecutor(max_workers=min(workers, len(self.pending)), mp_context=context)
            self.futures = [self.pool.submit(_draw_and_save, job, stem) for job, stem, _ in self.pending]

    def cancel(self) -> None:
        """Stop: figures not started are not drawn (the run directory is discarded anyway)."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def finish(self) -> list[Path]:
        try:
            if self.pool is not None:
                outputs = [future.result() for future in self.futures]
            else:
                outputs = [_draw_and_save(job, stem) for job, stem, _ in self.pending]
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
        for (job, stem, key), files in zip(self.pending, outputs):
            self.cache.put_files("figures", key, stem.parent, files)
            self.reused["drawn"] += 1
            self.written.append(stem)
        return self.written


def save_figures(jobs, out: Path, cache: Cache, reused: dict, workers: int = 1) -> list[Path]:
    """Draw (or copy from the cache) every figure job into ``out``."""
    return FigureDrawing(jobs, out, cache, reused, workers).finish()


def dominance_figures(result: StudyResult, out: Path, cache: Cache, reused: dict) -> None:
    """Loop-dominance outputs, from the cache when the model and the run's parameters are unchanged."""
    from sdloop.report.figures import dominance_outputs

    study = result.study
    specs = [s for s in study.project.figures if s.kind == "loop_dominance"]
    if not specs:
        return
    key = digest("dominance", file_digest(study.project.model), specs, study.params, study.project.phases)
    if cache.get_files("dominance", key, out) is not None:
        reused["figures"] += len(specs)
        return
    out.mkdir(parents=True, exist_ok=True)
    before = set(p for p in out.rglob("*") if p.is_file())
    dominance_outputs(result, out)
    reused["drawn"] += len(specs)
    cache.put_files("dominance", key, out, [p for p in out.rglob("*") if p.is_file() and p not in before])


def write_tables(study: Study, result: StudyResult, run_dir: Path) -> None:
    """Trajectories, metrics and claims of a study into the run directory."""
    project = study.project
    out = run_dir / project.output
    out.mkdir(parents=True, exist_ok=True)
    fmt = f"%.{project.digits}g"
    if project.trajectories != "none":
        atomic_write_text(out / "trajectories.csv", trajectories_csv(study, result))
        keep = study.dynamic_variables() if project.trajectories == "dynamic" else None
        write_netcdf(trajectories_dataset(study, result.runs, keep), out / "trajectories.nc")
    metrics = result.metrics.replace([np.inf, -np.inf], np.nan)
    write_csv(metrics, run_dir / project.metrics_file, index=False, na_rep="", float_format=fmt)
    specs = {s.name: s for s in project.metrics}
    write_table(result.metrics, (run_dir / project.metrics_file).with_suffix(""), csv=False,
                formats={n: s.format for n, s in specs.items()},
                headers={n: " ".join((s.label or n).split()) + (f" ({s.unit})" if s.unit else "")
                         for n, s in specs.items()},
                caption=f"{project.name}: metrics of every run ({project.describe_layers()})",
                label=f"tab:{project.name}-metrics")
    if study.claims:
        write_csv(result.claims, run_dir / project.claims_file, index=False)
        write_table(result.claims, (run_dir / project.claims_file).with_suffix(""), csv=False,
                    caption=f"{project.name}: claims and whether each holds", label=f"tab:{project.name}-claims")


def run_study(study: Study, run_dir: Path, *, cache: Cache, figures: bool = True, workers: int = 1,
              progress: bool | None = None) -> StudyReport:
    """Run a study (from the cache where possible) and write its outputs into ``run_dir``."""
    reused = {"runs": 0, "figures": 0, "drawn": 0}
    result = study.run(runner=cached_runner(cache, reused), progress=progress)
    report = StudyReport(result, reused=reused)
    if not figures:
        write_tables(study, result, run_dir)
        return report
    from sdloop.report.figures import describe, figure_jobs

    out = run_dir / study.project.output
    jobs = figure_jobs(result)
    drawing = FigureDrawing(jobs, out, cache, reused, workers)  # drawn by workers while the tables are written
    try:
        write_tables(study, result, run_dir)
    except BaseException:
        drawing.cancel()
        raise
    report.figures = drawing.finish()
    report.titles = {(out / job.stem).relative_to(run_dir).as_posix(): text for job in jobs if (text := describe(job))}
    dominance_figures(result, out, cache, reused)
    return report
