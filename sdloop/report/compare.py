"""Comparing two run directories: what changed and what it did.

``compare_runs(a, b, out)`` writes a small report directory: ``compare.md`` (the summary),
``changes.diff`` (a unified diff of every model and input file that differs, from the copies
each run keeps in ``inputs/``), ``parameters.csv`` (constants that differ, run by run),
``metric_deltas.csv`` and ``.tex`` (every metric in both runs, its change and relative change),
``ensemble_deltas.csv`` (for ensembles in both: each strategy's median, mean, probability of
being best and maximum regret per metric, A, B and the change), ``claim_deltas.csv`` (each
claim: holds, or its share of draws, in A and B),
``trajectory_changes.csv`` (per variable, the largest change relative to its scale) and
``changed_trajectories.pdf``/``.png`` (the variables that changed most, run A against run B).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sdloop.errors import SdloopError
from sdloop.experiments.metrics import DIMS
from sdloop.report.output import atomic_write_text, write_csv

ROBUSTNESS = "robustness.csv"
ENSEMBLE_KEYS = ["case", "scenario", "strategy", "metric"]
ENSEMBLE_STATS = ["median", "mean", "p_best", "max_regret"]


@dataclass(frozen=True)
class RunInfo:
    path: Path
    manifest: dict

    @classmethod
    def read(cls, path: str | Path) -> "RunInfo":
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SdloopError(f"not a run directory (no readable manifest.json): {exc}", file=path) from None
        return cls(path.resolve(), manifest)

    @property
    def outputs(self) -> dict:
        return self.manifest.get("notes", {}).get("outputs", {})

    def files(self) -> dict[str, dict]:
        """Every model and input file: name -> {path, sha256} (models as 'PROJECT/model')."""
        found = {f"{name}/model": entry for name, entry in self.manifest.get("models", {}).items()}
        found.update(self.manifest.get("inputs", {}))
        return found

    def ensembles(self) -> dict[str, Path]:
        """Project -> its ensemble folder: from a run directory's notes, or the folder itself when
        it was written by ``sdloop ensemble`` (it holds robustness.csv)."""
        found = {project: self.path / out["ensemble"] for project, out in self.outputs.items()
                 if out.get("ensemble") and (self.path / out["ensemble"] / ROBUSTNESS).exists()}
        if not found and (self.path / ROBUSTNESS).exists():
            found = {project: self.path for project in self.manifest.get("models", {}) or {"": None}}
        return found

    def table(self, project: str, key: str) -> pd.DataFrame | None:
        name = self.outputs.get(project, {}).get(key)
        if not name or not (self.path / name).exists():
            return None
        return pd.read_csv(self.path / name, keep_default_na=False, na_values=[""])


def code_lines(a: RunInfo, b: RunInfo) -> list[str]:
    lines = []
    for what, label in (("git_commit", "git commit of the model's folder"),
                        ("sdloop_git_commit", "git commit of sdloop")):
        va, vb = a.manifest.get(what), b.manifest.get(what)
        if va is not None or vb is not None:
            lines.append(f"- {label}: {va}" + ("" if va == vb else f" -> {vb}"))
    versions_a, versions_b = a.manifest.get("versions", {}), b.manifest.get("versions", {})
    for name in dict.fromkeys([*versions_a, *versions_b]):
        va, vb = versions_a.get(name), versions_b.get(name)
        lines.append(f"- {name} {va}" + ("" if va == vb else f" -> {vb}"))
    return lines


def file_changes(a: RunInfo, b: RunInfo) -> tuple[list[str], str]:
    """Lines saying which files changed, and a unified diff of the text of those both runs copied."""
    fa, fb = a.files(), b.files()
    copies_a, copies_b = a.manifest.get("copies", {}), b.manifest.get("copies", {})
    lines, diffs = [], []
    for name in dict.fromkeys([*fa, *fb]):
        ea, eb = fa.get(name), fb.get(name)
        if ea is None or eb is None:
            lines.append(f"- `{name}`: only in run {'B' if ea is None else 'A'}")
            continue
        if ea.get("sha256") == eb.get("sha256"):
            continue
        if name in copies_a and name in copies_b:
            text_a = (a.path / copies_a[name]).read_text(encoding="utf-8", errors="replace").splitlines(True)
            text_b = (b.path / copies_b[name]).read_text(encoding="utf-8", errors="replace").splitlines(True)
            diff = list(difflib.unified_diff(text_a, text_b, f"A/{copies_a[name]}", f"B/{copies_b[name]}", n=2))
            changed = sum(1 for d in diff if d[:1] in "+-" and d[:3] not in ("+++", "---"))
            lines.append(f"- `{name}` ({ea['path']}): {changed} lines differ (see changes.diff)")
            diffs += diff
        else:
            lines.append(f"- `{name}` ({ea['path']}): changed (content hash); no copies kept to show the text")
    return lines or ["- none: every model and input file has the same content"], "".join(diffs)


def parameter_changes(a: RunInfo, b: RunInfo) -> pd.DataFrame:
    pa, pb = a.manifest.get("parameters", {}), b.manifest.get("parameters", {})
    rows = []
    for run in dict.fromkeys([*pa, *pb]):
        ra, rb = pa.get(run), pb.get(run)
        if ra is None or rb is None:
            rows.append({"run": run, "parameter": "(the run)", "A": "absent" if ra is None else "present",
                         "B": "absent" if rb is None else "present"})
            continue
        for name in dict.fromkeys([*ra, *rb]):
            va, vb = ra.get(name), rb.get(name)
            if va != vb:
                rows.append({"run": run, "parameter": name, "A": va, "B": vb})
    return pd.DataFrame(rows, columns=["run", "parameter", "A", "B"])


def metric_deltas(a: RunInfo, b: RunInfo) -> pd.DataFrame:
    """Every metric of every run in both: A, B, B - A and (B - A) / |A|."""
    frames = []
    for project in dict.fromkeys([*a.outputs, *b.outputs]):
        ta, tb = a.table(project, "metrics"), b.table(project, "metrics")
        if ta is None or tb is None:
            continue
        keys = [c for c in ta.columns if c in DIMS and c in tb.columns]
        metrics = [c for c in ta.columns if c not in DIMS and c in tb.columns]
        merged = ta.merge(tb, on=keys, how="outer", suffixes=(" A", " B")) if keys else \
            ta.add_suffix(" A").join(tb.add_suffix(" B"))
        for metric in metrics:
            part = merged[keys].copy()
            part.insert(0, "project", project)
            part["metric"] = metric
            part["A"], part["B"] = merged[f"{metric} A"], merged[f"{metric} B"]
            frames.append(part)
    if not frames:
        return pd.DataFrame(columns=["project", "metric", "A", "B", "change", "relative change"])
    table = pd.concat(frames, ignore_index=True)
    va, vb = pd.to_numeric(table["A"], errors="coerce"), pd.to_numeric(table["B"], errors="coerce")
    table["change"] = vb - va
    with np.errstate(all="ignore"):
        table["relative change"] = np.where(va.abs() > 0, (vb - va) / va.abs(), np.nan)
    columns = ["project", *[d for d in ("case", "strategy", "scenario") if d in table], "metric", "A", "B", "change",
               "relative change"]
    return table[columns]


def ensemble_deltas(a: RunInfo, b: RunInfo) -> pd.DataFrame:
    """For every project with an ensemble in both: per case, scenario, strategy and metric, each
    statistic of robustness.csv (median, mean, probability of being best, maximum regret) in A
    and B and its change."""
    frames = []
    ea, eb = a.ensembles(), b.ensembles()
    for project in [p for p in ea if p in eb]:
        ta, tb = (pd.read_csv(e[project] / ROBUSTNESS, keep_default_na=False, na_values=[""]) for e in (ea, eb))
        merged = ta.merge(tb, on=ENSEMBLE_KEYS, how="outer", suffixes=(" A", " B"))
        for stat in [c for c in ENSEMBLE_STATS if c in ta and c in tb]:
            part = merged[ENSEMBLE_KEYS].copy()
            part.insert(0, "project", project)
            part["statistic"] = stat
            part["A"], part["B"] = merged[f"{stat} A"], merged[f"{stat} B"]
            frames.append(part)
    columns = ["project", *ENSEMBLE_KEYS, "statistic", "A", "B", "change"]
    if not frames:
        return pd.DataFrame(columns=columns)
    table = pd.concat(frames, ignore_index=True)
    table["change"] = pd.to_numeric(table["B"], errors="coerce") - pd.to_numeric(table["A"], errors="coerce")
    return table[columns]


def claim_deltas(a: RunInfo, b: RunInfo) -> pd.DataFrame:
    """Each claim of a project in both runs: whether it holds (a run) and its share of draws (an
    ensemble), in A and B."""
    rows = []

    def claims(run: RunInfo, project: str) -> dict[str, dict]:
        found: dict[str, dict] = {}
        table = run.table(project, "claims")
        for row in [] if table is None else table.itertuples(index=False):
            found.setdefault(row.claim, {})["holds"] = row.holds
        folder = run.ensembles().get(project)
        if folder is not None and (folder / "claims.csv").exists():
            for row in pd.read_csv(folder / "claims.csv").itertuples(index=False):
                found.setdefault(row.claim, {})["share_of_draws"] = row.share_of_draws
        return found

    for project in dict.fromkeys([*a.outputs, *a.ensembles(), *b.outputs, *b.ensembles()]):
        ca, cb = claims(a, project), claims(b, project)
        for claim in dict.fromkeys([*ca, *cb]):
            for what in ("holds", "share_of_draws"):
                va, vb = ca.get(claim, {}).get(what), cb.get(claim, {}).get(what)
                if va is not None or vb is not None:
                    rows.append({"project": project, "claim": claim, "measure": what, "A": va, "B": vb,
                                 "changed": str(va) != str(vb)})
    return pd.DataFrame(rows, columns=["project", "claim", "measure", "A", "B", "changed"])


def trajectory_changes(a: RunInfo, b: RunInfo) -> tuple[pd.DataFrame, dict]:
    """Per project and variable: the largest |B - A| over runs and times relative to the variable's
    largest |value|, the run where it is largest; and the two series of that run (for figures)."""
    rows, series = [], {}
    for project in dict.fromkeys([*a.outputs, *b.outputs]):
        ta, tb = a.table(project, "trajectories"), b.table(project, "trajectories")
        if ta is None or tb is None:
            continue
        keys = [c for c in ta.columns if c in DIMS and c in tb.columns] + ["time"]
        variables = [c for c in ta.columns if c not in keys and c in tb.columns and c not in DIMS]
        merged = ta.merge(tb, on=keys, suffixes=(" A", " B"))
        runs = merged[keys[:-1]].astype(str).agg("/".join, axis=1) if len(keys) > 1 else pd.Series("", merged.index)
        for variable in variables:
            va = merged[f"{variable} A"].to_numpy(dtype=float)
            vb = merged[f"{variable} B"].to_numpy(dtype=float)
            scale = np.nanmax(np.abs(np.concatenate([va, vb]))) if len(va) else 0.0
            gap = np.abs(vb - va)
            if not len(gap) or not np.isfinite(gap).any():
                continue
            at = int(np.nanargmax(gap))
            relative = float(gap[at] / scale) if scale > 0 else 0.0
            run = runs.iloc[at]
            rows.append({"project": project, "variable": variable, "largest_change": float(gap[at]),
                         "relative_to_scale": relative, "run": run, "time": float(merged["time"].iloc[at])})
            if relative > 0:
                mask = (runs == run).to_numpy()
                series[(project, variable)] = (run, pd.DataFrame({
                    "A": va[mask], "B": vb[mask]}, index=merged["time"].to_numpy(dtype=float)[mask]))
    table = pd.DataFrame(rows, columns=["project", "variable", "largest_change", "relative_to_scale", "run", "time"])
    return table.sort_values("relative_to_scale", ascending=False, kind="stable"), series


def compare_runs(a_path: str | Path, b_path: str | Path, out: Path, *, top: int = 4) -> list[str]:
    """Write the comparison of run directories A and B into ``out``; the summary's lines."""
    from sdloop.report.tables import write_table

    a, b = RunInfo.read(a_path), RunInfo.read(b_path)
    out.mkdir(parents=True, exist_ok=True)
    files, diff = file_changes(a, b)
    if diff:
        atomic_write_text(out / "changes.diff", diff)
    params = parameter_changes(a, b)
    write_csv(params, out / "parameters.csv", index=False)
    deltas = metric_deltas(a, b)
    write_table(deltas, out / "metric_deltas", formats={"change": ".4g", "relative change": ".3g"}, caption=f"Metrics of run B ({b.path.name}) against run A "
                                                       f"({a.path.name})", label="tab:metric-deltas")
    ensemble = ensemble_deltas(a, b)
    if len(ensemble):
        write_csv(ensemble, out / "ensemble_deltas.csv", index=False, float_format="%.6g")
    claims = claim_deltas(a, b)
    if len(claims):
        write_csv(claims, out / "claim_deltas.csv", index=False)
    changes, series = trajectory_changes(a, b)
    write_csv(changes, out / "trajectory_changes.csv", index=False, float_format="%.6g")
    moved = changes[changes["relative_to_scale"] > 1e-9].head(top)
    if len(moved):
        _figure(moved, series, out / "changed_trajectories", a, b)
    changed_metrics = deltas[deltas["change"].fillna(0).abs() > 0] if len(deltas) else deltas
    lines = ["# Run B against run A", "", f"- A: `{a.path}`", f"- B: `{b.path}`", "",
             "## Code", "", *code_lines(a, b), "", "## Model and input files", "", *files, "",
             f"## Parameters ({len(params)} differences: parameters.csv)", ""]
    lines += [f"- {r.run}: {r.parameter}: {r.A} -> {r.B}" for r in params.head(20).itertuples()]
    if len(params) > 20:
        lines.append(f"- ... {len(params) - 20} more in parameters.csv")
    lines += ["", f"## Metrics ({len(changed_metrics)} of {len(deltas)} values changed: metric_deltas.csv, "
                  "metric_deltas.tex)", ""]
    for row in changed_metrics.sort_values("relative change", key=lambda s: -s.abs(), na_position="last") \
            .head(15).itertuples(index=False):
        where = "/".join(str(v) for v in row[1:-5] if isinstance(v, str) and v)
        lines.append(f"- {row.project} {where}: {row.metric} {row.A} -> {row.B}")
    if len(ensemble):
        moved_stats = ensemble[ensemble["change"].fillna(0).abs() > 0]
        lines += ["", f"## Ensemble ({len(moved_stats)} of {len(ensemble)} statistics changed: ensemble_deltas.csv)", ""]
        for row in moved_stats[moved_stats["statistic"].isin(["p_best", "median"])] \
                .sort_values("change", key=lambda s: -s.abs()).head(10).itertuples(index=False):
            lines.append(f"- {row.project} {row.case}/{row.scenario}/{row.strategy}: {row.metric} {row.statistic} "
                         f"{row.A:.4g} -> {row.B:.4g}")
    if len(claims):
        lines += ["", f"## Claims ({int(claims['changed'].sum())} of {len(claims)} changed: claim_deltas.csv)", ""]
        lines += [f"- {r.project}: {r.claim} ({r.measure}): {r.A} -> {r.B}"
                  for r in claims[claims["changed"]].itertuples(index=False)] or ["- none changed"]
    lines += ["", "## Trajectories that changed most (trajectory_changes.csv; changed_trajectories.pdf)", ""]
    lines += [f"- {r.project}: {r.variable}: up to {100 * r.relative_to_scale:.3g}% of its scale ({r.run or 'run'}, "
              f"t = {r.time:g})" for r in moved.itertuples()] or ["- none"]
    atomic_write_text(out / "compare.md", "\n".join(lines) + "\n")
    return lines


def model_units(run: RunInfo, project: str) -> tuple[dict[str, str], str]:
    """Units of every variable and of time, from the run's copy of the project's model ({} if none)."""
    from sdloop.structure.build import build_structure

    copy = run.manifest.get("copies", {}).get(f"{project}/model")
    try:
        structure = build_structure(run.path / copy) if copy else None
    except (SdloopError, OSError, ValueError):
        structure = None
    if structure is None:
        return {}, ""
    return {name: v.units or "" for name, v in structure.variables.items()}, structure.time_units or ""


def _figure(moved: pd.DataFrame, series: dict, stem: Path, a: RunInfo, b: RunInfo) -> None:
    from sdloop.report.line_panels import render_plot
    from sdloop.report.plotting import save_figure

    panels, time_units = [], ""
    units = {project: model_units(b, project) for project in dict.fromkeys(moved["project"])}
    for row in moved.itertuples():
        run, frame = series[(row.project, row.variable)]
        unit = units[row.project][0].get(row.variable, "")
        time_units = time_units or units[row.project][1]
        panels.append({"title": f"{row.variable} ({run})" if run else row.variable,
                       "ylabel": f"{row.variable} ({unit})" if unit else row.variable, "series": frame})
    payload = {"panels": panels, "labels": {"A": f"A: {a.path.name}", "B": f"B: {b.path.name}"},
               "title": "Variables that changed most (run A and run B)",
               "time_label": f"Time ({time_units})" if time_units else "Time"}
    save_figure(render_plot(payload), stem)
