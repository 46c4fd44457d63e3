"""``sdloop plot RUN_DIR|PROJECT --vars "A,B"``: a line figure of chosen variables, runs and times.

From a run directory the runs are read back (``trajectories.csv``, bands from the ensemble's
``bands.csv``); from a project file they are made (through the results cache), and bands come
from the project's ensemble draws. The options are those of ``[[figures]] kind = "plot"``, so
a figure made here is kept by pasting them into the project file (``--show-toml`` prints them).
Historical data points (``--data``) are the published series a calibration target compares the
variable with (``calibration/targets/*.toml`` of the same model and case), with their source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdloop.cli import options
from sdloop.errors import OverrideError, SdloopError
from sdloop.experiments.metrics import DIMS, Where


def add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="a figure of chosen variables across cases, strategies and scenarios",
                       description="Draw chosen variables (one row of panels each) across chosen cases, strategies "
                                   "and scenarios, from a run directory or a project file; PDF and 300-dpi PNG.")
    p.add_argument("source", type=Path, help="a run directory (results/latest) or a project file")
    p.add_argument("--vars", required=True, help='comma-separated variables or expressions: "Name A,Name B"')
    p.add_argument("--labels", help="comma-separated axis labels, one per variable (default: name and units)")
    for dim in ("cases", "strategies", "scenarios"):
        p.add_argument(f"--{dim}", help=f"comma-separated {dim} to draw (default: all)")
    p.add_argument("--lines", choices=DIMS, help="dimension drawn as lines (default: strategy, scenario or case)")
    p.add_argument("--facets", choices=DIMS, help="dimension drawn as columns of panels")
    p.add_argument("--from", dest="start", type=options.finite_float, help="first time shown")
    p.add_argument("--to", dest="end", type=options.finite_float, help="last time shown")
    p.add_argument("--bands", action="store_true", help="ensemble percentile bands (median, 50%%, 90%%)")
    p.add_argument("--data", action="store_true", help="published data points a calibration compares with")
    p.add_argument("--phases", action="store_true", help="shade the project's [[phases]]")
    p.add_argument("--style", choices=["paper", "slides"], default="paper", help="paper (183 mm) or slides")
    p.add_argument("--color", action="store_true", help="a colour-blind-safe palette instead of grays")
    p.add_argument("--layout", choices=["auto", "overlay", "multiples"], default="auto",
                   help="overlay lines, or one panel per line (auto: small multiples past 10 lines)")
    p.add_argument("--title", help="figure title ({case}, {scenario}, {strategy} are filled in)")
    p.add_argument("--out", type=Path, default=Path("plots"), help="output folder (default: %(default)s)")
    p.add_argument("--name", help="file name stem (default: from the variables)")
    p.add_argument("--project", help="which project of a run directory (default: the one whose model has the vars)")
    p.add_argument("-n", "--samples", type=options.positive_int, help="draws for --bands from a project (default: the project's)")
    p.add_argument("--targets", type=Path, help="calibration targets folder for --data (default: "
                                                "calibration/targets beside the project's folder)")
    p.add_argument("--show-toml", action="store_true", help="print the [[figures]] table that makes this figure")
    p.set_defaults(handler=plot_command)


def options_from(args: argparse.Namespace) -> dict:
    """The ``[[figures]] kind = "plot"`` options the flags stand for."""
    opts: dict = {"vars": [v.strip() for v in args.vars.split(",") if v.strip()]}
    if args.labels:
        opts["labels"] = [v.strip() for v in args.labels.split(",")]
    for dim, flag in (("case", args.cases), ("strategy", args.strategies), ("scenario", args.scenarios)):
        if flag:
            opts[dim] = [v.strip() for v in flag.split(",") if v.strip()]
    for key, value in (("lines", args.lines), ("facets", args.facets), ("from", args.start), ("to", args.end)):
        if value is not None:
            opts[key] = value
    for key in ("bands", "data", "phases", "color"):
        if getattr(args, key):
            opts[key] = True
    if args.style != "paper":
        opts["style"] = args.style
    if args.layout != "auto":
        opts["layout"] = args.layout
    return opts


def _toml(stem: str, title: str | None, opts: dict) -> str:
    lines = ["[[figures]]", 'kind = "plot"', f"file = {json.dumps(stem)}"]
    if title:
        lines.append(f"title = {json.dumps(title)}")
    lines += [f"{key} = {json.dumps(value)}" for key, value in opts.items()]
    return "\n".join(lines)


def plot_command(args: argparse.Namespace) -> int:
    from sdloop.experiments.plot_spec import plot_options
    from sdloop.report.figures import slug

    raw = options_from(args)
    opts = plot_options(raw, Where(None, None, "plot"))
    if args.samples is not None and args.samples < 2:
        raise OverrideError("--samples must be at least 2")
    if args.source.is_dir():
        study, runs, available, bands = _from_run_dir(args.source, args.project, opts)
    else:
        study, runs, available, bands = _from_project(args.source, opts, args.samples)
    from sdloop.experiments.figure_checks import plot_dims

    _check(study, opts)
    _, _, per_figure = plot_dims(study, opts, available)
    stem = args.name or "-".join(slug(v) for v in opts.vars)[:80]
    stem = stem + "".join(f"_{{{d}}}" for d in per_figure if f"{{{d}}}" not in stem)
    from sdloop.report.plot_figures import plot_jobs
    from sdloop.report.output import inside
    from sdloop.report.plotting import save_figure

    data = _data_source(study, args.targets) if opts.data else None
    jobs = plot_jobs(study, runs, stem, args.title, opts, bands=bands, data=data, available=available)
    missing = [v for v in opts.vars if opts.bands and not any(p.get("bands") for j in jobs for p in
                                                               j.payload["panels"] if p["var"] == v)]
    for v in opts.vars if opts.data else []:
        if not any(p.get("data") for j in jobs for p in j.payload["panels"] if p["var"] == v):
            print(f"sdloop: note: no published data compared with {v!r} for these runs", file=sys.stderr)
    for v in missing:
        print(f"sdloop: note: no ensemble bands of {v!r} in this source (a run directory has bands of the "
              "[ensemble] bands only)", file=sys.stderr)
    from sdloop.report.figures import draw

    for job in jobs:
        written = save_figure(draw(job), inside(args.out, job.stem))
        print("\n".join(str(p) for p in written))
    if args.show_toml:
        print(_toml(stem, args.title, raw))
    return 0


def _check(study, opts) -> None:
    for text in opts.vars:
        study.compiler().compile(text, Where(None, None, f"--vars {text}"), want=("series",))
    for dim in DIMS:
        chosen = opts.chosen(dim)
        if chosen:
            known = list(study.all_names[dim])
            for name in chosen:
                if name not in known:
                    raise OverrideError(f"unknown {dim} '{name}' (known: {', '.join(known) or 'none'})")


def _from_project(path: Path, opts, samples: int | None):
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study
    from sdloop.report.cache import Cache
    from sdloop.report.study_report import cached_runner

    project = load_project(path)
    plural = {"case": "cases", "scenario": "scenarios", "strategy": "strategies"}
    study = Study(project.select(**{plural[d]: ",".join(opts.chosen(d)) for d in DIMS if opts.chosen(d)}))
    result = study.run(runner=cached_runner(Cache(), {"runs": 0}), progress=False)
    bands = None
    if opts.bands:
        from sdloop.report.plot_figures import draw_bands

        spec = study.project.ensemble
        if spec is None:
            raise OverrideError("--bands needs the project's [ensemble] (its uncertain parameters)", file=path)
        bands = draw_bands(study, list(result.runs), list(opts.vars), samples=samples or spec.samples,
                           seed=spec.seed)
    return study, result.runs, None, bands


def _from_run_dir(run_dir: Path, name: str | None, opts):
    from sdloop.api import RunDirectory
    from sdloop.experiments.project import load_project
    from sdloop.experiments.study import Study
    from sdloop.report.plot_figures import run_dir_bands, run_dir_runs

    run = RunDirectory(run_dir)
    notes = run.manifest.get("notes", {})
    calibrated = notes.get("calibrated")
    candidates = [name] if name else run.projects
    errors = []
    for project_name in candidates:
        if project_name not in run.outputs:
            raise OverrideError(f"no project {project_name!r} in this run ({', '.join(run.projects)})", file=run_dir)
        path = _project_file(run, project_name)
        project = load_project(path, uncalibrated=isinstance(calibrated, str))
        study = Study(project, engine="numpy")  # names, units and constants only: no C kernel loaded
        try:
            for text in opts.vars:
                study.compiler().compile(text, Where(None, None, f"--vars {text}"), want=("series",))
        except SdloopError as exc:
            errors.append(f"{project_name}: {exc}")
            continue
        outputs = run.outputs[project_name]
        runs, available = run_dir_runs(run.path / (outputs.get("trajectories") or "-"), study)
        bands = run_dir_bands(run.path / outputs["ensemble"] / "bands.csv", study) if outputs.get("ensemble") \
            else None
        return study, runs, available, bands
    raise OverrideError("; ".join(errors) or "this run directory has no projects", file=run_dir)


def _project_file(run, project_name: str) -> Path:
    """The project file a run used: its copy in the run directory when there is one."""
    copies = run.manifest.get("copies", {})
    key = f"{project_name}/project"
    if key in copies:
        return run.path / copies[key]
    entry = run.manifest.get("inputs", {}).get(key)
    if not entry:
        raise OverrideError(f"the manifest names no project file for {project_name}", file=run.path)
    return Path(entry["path"])


def _data_source(study, targets: Path | None):
    """Published data points per (variable, run) from the calibration targets of the study's model."""
    from calibration.targets import load_targets

    folder = targets or study.project.path.resolve().parent.parent / "calibration" / "targets"
    found = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        target = load_targets(path)
        if target.model.resolve() != study.project.model.resolve():
            continue
        for series in target.series:
            if series.scale is None:
                continue  # a series that constrains shape only has no level in model units
            found.append((target, series))
    if not found:
        print(f"sdloop: note: no calibration targets of {study.project.model.name} in {folder}", file=sys.stderr)

    def points(text: str, run: tuple) -> list:
        try:
            name = study.sim.resolve(text)
        except SdloopError:
            return []
        out = []
        case = run[0]
        for target, series in found:
            if study.sim.resolve(series.variable) != name:
                continue
            if target.case is not None and study.project.cases and target.case.stem != case:
                continue
            data = target.data[series.name]
            offset = 1.0 if series.aggregate == "end" else 0.5
            sources = [s.split(" via ")[0].split(" (")[0].split(",")[0].strip() for s in data.sources]
            source = max(set(sources), key=sources.count) if sources else ""
            out.append({"label": f"{series.name} ({source})", "file": Path(series.file).name,
                        "time": [y + offset for y in data.years], "value": [v / series.scale for v in data.values]})
        return out

    return points
