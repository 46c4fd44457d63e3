"""Writing a project's ensemble: robustness, regret, bands, Sobol indices, claims and figures.

``design_for(study)`` is the ensemble of a checked study (names already resolved);
``run_project_ensemble`` runs it (or copies it from the cache when nothing it depends on
changed) and writes into ``out``: ``robustness.csv`` (per case, scenario, strategy and metric:
probability of being best, maximum and mean regret, mean and 5/50/95th percentiles),
``minimax_regret.csv``, ``bands.csv`` (percentiles over time of the ``[ensemble] bands``),
``sobol.csv`` with ``sobol = {...}``, ``claims.csv`` (each claim's share of draws) and the
figures of ``[[ensemble.figures]]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from sdloop.errors import SimulationError
from sdloop.experiments.draws import EnsembleDesign
from sdloop.experiments.ensemble import EnsembleSummary, run_ensemble
from sdloop.experiments.metrics import DIMS
from sdloop.experiments.project_specs import fill
from sdloop.experiments.samples import metadata
from sdloop.experiments.robustness import (bands_table, claims_share_table, minimax_regret, percentile_bands,
                                           robustness_table)
from sdloop.experiments.study import Study
from sdloop.experiments.uncertainty import UncertaintySpace, load_uncertainty
from sdloop.report import ensemble_plots, plotting
from sdloop.report.cache import Cache, digest, file_digest
from sdloop.report.exports import bands_dataset, write_netcdf
from sdloop.report.figures import fields, slug
from sdloop.report.output import inside, write_csv
from sdloop.report.samples_file import SampleWriter
from sdloop.report.tables import write_table


def design_for(study: Study) -> EnsembleDesign:
    """The ensemble of a checked study: every case x scenario x strategy, its metrics, claims, bands."""
    project, sim = study.project, study.sim
    from sdloop.experiments.overrides import merge

    cases = {}
    for case in project.entries("case"):
        key = (case, next(iter(project.entries("scenario"))), next(iter(project.entries("strategy"))))
        cases[case] = merge(sim, project.layers(key)[:-2])
    spec = project.ensemble
    return EnsembleDesign(
        model=str(project.model), cases=cases,
        scenarios={n: e.checked(sim) for n, e in project.entries("scenario").items()},
        strategies={n: e.checked(sim) for n, e in project.entries("strategy").items()},
        metrics=project.metrics, horizon=study.horizon, source=str(project.path), claims=project.claims,
        entries=tuple((d, tuple(study.all_names[d])) for d in DIMS),
        bands=spec.bands if spec else (), band_bins=spec.band_bins if spec else 400,
        band_every=spec.band_every if spec else None, engine=study.choice.kind, final_time=study.final_time,
        case_overrides={case: {f"{dim}:{n}": e.for_case(case).checked(sim)
                               for dim in ("scenario", "strategy") for n, e in project.entries(dim).items()
                               if case in e.cases}
                        for case in project.entries("case")})


def checked_space(study: Study, path: Path | None = None, parameters: str | None = None) -> UncertaintySpace:
    """The project's uncertain parameters (or ``path``'s); ``path`` "posterior": the project's,
    with the calibration's posterior draws (``FITTED/CASE.posterior.csv``) sampled jointly."""
    posterior = path is not None and str(path) == "posterior"
    space = load_uncertainty(study.project.ensemble.uncertainty if posterior or path is None else path)
    if posterior:
        from dataclasses import replace

        from sdloop.errors import OverrideError
        from sdloop.experiments.uncertainty import load_posterior

        fitted = study.project.fitted_source
        cases = [c for c in study.project.entries("case") if fitted and (Path(fitted) / f"{c}.posterior.csv").exists()]
        if not cases:
            raise OverrideError("--uncertainty posterior: no CASE.posterior.csv for the project's cases in its "
                                "fitted directory (run `sdloop calibrate CASE`; not with --uncalibrated)",
                                file=fitted)
        space = replace(space, posterior=load_posterior(fitted, cases))
    space = space.checked(study.sim.resolve)
    if parameters:
        space = space.select([study.sim.resolve(n.strip(), constants_only=True) for n in parameters.split(",")])
    return space


def sobol_tables(study: Study, design: EnsembleDesign, space: UncertaintySpace, *, n: int, seed: int,
                 scenario: str | None = None, strategy: str | None = None) -> pd.DataFrame:
    """Sobol indices of every metric per case, for one scenario and strategy (default: the first)."""
    from sdloop.experiments.sensitivity import study_sobol

    scenario = scenario if scenario in design.scenarios else next(iter(design.scenarios))
    strategy = strategy if strategy in design.strategies else next(iter(design.strategies))
    frames = [study_sobol(design, space, (case, scenario, strategy), n=n, seed=seed)
              .assign(case=case, scenario=scenario, strategy=strategy) for case in design.cases]
    return pd.concat(frames, ignore_index=True)


def write_ensemble(summary: EnsembleSummary, out: Path, study: Study, *, sobol: pd.DataFrame | None = None,
                   figures: bool = True) -> pd.DataFrame:
    """Tables (and figures) of an ensemble into ``out``; returns the robustness table."""
    out.mkdir(parents=True, exist_ok=True)
    table = robustness_table(summary)
    write_csv(table, out / "robustness.csv", index=False, float_format="%.6g")
    write_csv(minimax_regret(table), out / "minimax_regret.csv", index=False, float_format="%.6g")
    if summary.design.bands:
        bands = bands_table(summary)
        write_csv(bands, out / "bands.csv", index=False, float_format="%.6g")
        write_netcdf(bands_dataset(bands, study), out / "bands.nc")
    if sobol is not None:
        write_csv(sobol, out / "sobol.csv", index=False, float_format="%.4g")
    if summary.design.claims:
        claims = claims_share_table(summary)
        write_csv(claims, out / "claims.csv", index=False, float_format="%.6g")
        write_table(claims.drop(columns=["values"]), out / "claims", csv=False, formats={"share_of_draws": ".3f"},
                    caption=f"Share of {summary.samples:,} parameter draws on which each claim holds",
                    label=f"tab:{study.project.name}-claims-ensemble")
    if figures and study.project.ensemble is not None:
        draw_ensemble_figures(summary, table, out, study, sobol)
    return table


def draw_ensemble_figures(summary: EnsembleSummary, table: pd.DataFrame, out: Path, study: Study,
                          sobol: pd.DataFrame | None) -> None:
    specs = {s.name: s for s in summary.metrics}
    labels = {name: s.label or name for name, s in specs.items()}
    better = {name: s.better for name, s in specs.items() if s.better}
    time_label = getattr(study.sim, "time_units", "") or "Time"
    for figure in study.project.ensemble.figures:
        for case in dict.fromkeys(c for c, _ in summary.keys):
            rows = table[table.case == (case or "-")]  # a project without cases: one entry, "-" in the table
            base = fields({"case": case}, samples=f"{summary.samples:,}")
            if figure.kind == "best_probability":
                scenarios = [sc for c, sc in summary.keys if c == case]
                with plotting.style():
                    fig, axes = plotting.panel_grid(len(scenarios), ncols=2 if len(scenarios) > 1 else 1,
                                                    height=plotting.PANEL_HEIGHT * 1.25)
                    for ax, scenario in zip(axes, scenarios):
                        ensemble_plots.best_probability(rows[rows.scenario == (scenario or "-")], ax=ax,
                                                        title=scenario.replace("_", " "), labels=labels)
                    fig.suptitle(_title(figure.title or "{CASE}: probability each strategy is best ({samples} samples)",
                                      base), fontsize=7.5)
                plotting.save_figure(fig, inside(out, fill(figure.file, base)))
            elif figure.kind == "regret":
                scenario = figure.options.get("scenario") or next(iter(summary.design.scenarios))
                f = fields({"case": case, "scenario": scenario}, samples=base["samples"])
                with plotting.style():
                    fig = ensemble_plots.regret_figure(rows[rows.scenario == (scenario or "-")], labels=labels, better=better,
                                                       units={name: s.unit for name, s in specs.items()},
                                                       title=_title(figure.title or "{CASE}, {scenario_text}: regret", f))
                plotting.save_figure(fig, inside(out, fill(figure.file, f)))
            elif figure.kind == "fan":
                scenario = figure.options.get("scenario") or next(iter(summary.design.scenarios))
                variable = figure.options["variable"]
                f = fields({"case": case, "scenario": scenario}, samples=base["samples"], variable=slug(variable),
                           variable_name=variable)
                threshold = _threshold(study, summary.design, case, figure.options.get("threshold"))
                bands = percentile_bands(summary, case, scenario, variable)
                units = _units(study, variable)
                with plotting.style():
                    fig = ensemble_plots.fan_chart(bands, variable, units, threshold=threshold, time_label=time_label,
                                                   title=_title(figure.title or "{CASE}, {scenario_text}: {variable_name}"
                                                              " (median, 25-75% and 5-95% of {samples} samples)", f))
                plotting.save_figure(fig, inside(out, fill(figure.file, f)))
            elif figure.kind == "sobol" and sobol is not None:
                part = sobol[sobol.case == case]
                if part.empty:
                    continue
                f = fields({"case": case, "strategy": part.strategy.iloc[0], "scenario": part.scenario.iloc[0]},
                           samples=base["samples"])
                with plotting.style():
                    fig = ensemble_plots.sobol_figure(part, labels=labels, title=_title(
                        figure.title or "{CASE}: Sobol indices of the metrics ({strategy_text})", f))
                plotting.save_figure(fig, inside(out, fill(figure.file, f)))


def _title(template: str, f: dict) -> str:
    """A filled title; without cases the leading "{CASE}, " or "{CASE}: " leaves nothing behind."""
    return fill(template, f).lstrip(",: ")


def _units(study: Study, variable: str) -> str | None:
    try:
        return study.sim.units.get(study.sim.resolve(variable))
    except Exception:  # an expression: no units known
        return None


def _threshold(study: Study, design: EnsembleDesign, case: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    name = study.sim.resolve(value)
    return float(design.cases[case].get(name, study.sim.defaults[name]))


def run_project_ensemble(study: Study, out: Path, *, cache: Cache, samples: int | None = None,
                         seed: int | None = None, method: str | None = None, chunk_size: int | None = None,
                         workers: int = 1, scheduler=None, sobol: int | None = None, figures: bool = True,
                         uncertainty: Path | None = None, parameters: str | None = None,
                         progress: bool | None = None, save_samples: bool | None = None) -> dict:
    """The project's ensemble into ``out`` (from the cache when its inputs did not change);
    ``save_samples`` (default: the project's ``save_samples``) also writes each draw's inputs and
    metrics (``samples.parquet``, ``claims_draws.parquet``)."""
    spec = study.project.ensemble
    save_samples = spec.save_samples if save_samples is None else save_samples
    samples = samples or spec.samples
    seed = spec.seed if seed is None else seed
    method = method or spec.method
    space = checked_space(study, uncertainty, parameters)
    design = design_for(study)
    sobol_n, sobol_scenario, sobol_strategy = spec.sobol or (0, None, None)
    sobol_n = sobol_n if sobol is None else sobol
    chunk_size = chunk_size or samples
    key = digest("ensemble", file_digest(study.project.model), design, space, samples, seed, method, chunk_size,
                 sobol_n, sobol_scenario, sobol_strategy, figures, spec.figures, study.project.phases, save_samples)
    info = {"seed": seed, "samples": samples, "method": method, "space": space, "design": design,
            "sobol_runs": sobol_n * (len(space) + 2) * len(design.cases) if sobol_n else 0}
    if cache.get_files("ensemble", key, out) is not None:
        info.update(reused=True, table=pd.read_csv(out / "robustness.csv", keep_default_na=False,
                                                   na_values=[""]),
                    runs=samples * len(design.keys))
        return _check_failed_runs(info)
    writer = SampleWriter(out, metadata(design, space, study.sim.units)) if save_samples else None
    try:
        summary = run_ensemble(design, space, samples, seed=seed, method=method, chunk_size=chunk_size,
                               workers=workers, scheduler=scheduler, progress=progress,
                               on_samples=writer.add if writer else None)
    except BaseException:
        if writer:
            writer.abort()
        raise
    if writer:
        writer.close()
    table_sobol = sobol_tables(study, design, space, n=sobol_n, seed=seed, scenario=sobol_scenario,
                               strategy=sobol_strategy) if sobol_n else None
    table = write_ensemble(summary, out, study, sobol=table_sobol, figures=figures)
    cache.put_files("ensemble", key, out, [p for p in out.rglob("*") if p.is_file()])
    info.update(reused=False, table=table, runs=summary.runs, summary=summary)
    return _check_failed_runs(info)


def _check_failed_runs(info: dict) -> dict:
    """Say how many runs went non-finite (left out of every ranking); fail when none is left."""
    table = info["table"]
    if table.empty or "nonfinite_runs" not in table:
        return info
    runs = table.drop_duplicates(["case", "scenario", "strategy"])
    failed, total = int(runs["nonfinite_runs"].sum()), int(runs["samples"].sum())
    info["failed_runs"] = failed
    if total and failed == total:
        raise SimulationError(f"every one of the {total:,} runs of the ensemble went non-finite: nothing is left to "
                              "rank (narrow the uncertain ranges, or look at the model's equations at their extremes)")
    if failed:
        warnings.warn(f"{failed:,} of {total:,} ensemble runs went non-finite; they are left out of every ranking "
                      "and counted in the nonfinite_runs column of robustness.csv")
    return info


def headline(info: dict) -> str:
    """A few lines for the console: the minimax-regret strategy per case and metric (first scenario)."""
    table = minimax_regret(info["table"])
    if table.empty:
        return f"Ensemble: {info['runs']:,} runs (seed {info['seed']})"
    first = table.scenario.iloc[0]
    base = table[table.scenario == first]
    reused = " (reused: inputs unchanged)" if info.get("reused") else ""
    lines = [f"Ensemble: {info['runs'] + info['sobol_runs']:,} runs ({info['samples']} parameter samples per case x "
             f"scenario x strategy, seed {info['seed']}){reused}; minimax-regret strategy under {first}:"]
    order = list(dict.fromkeys(base.metric))
    if set(base.case) == {"-"}:  # no cases: one line per metric
        lines += [f"  {row.metric}: {row.minimax_regret_strategy}" for row in base.itertuples()]
    else:
        pivot = base.pivot(index="case", columns="metric", values="minimax_regret_strategy")
        lines.append(pivot.reindex(columns=order).to_string())
    return "\n".join(lines)
