"""Writing ensembles: tables and figures of robustness, bands and Sobol indices.

``write_ensemble(summary, out)`` writes ``robustness.csv`` (per case, scenario, strategy and
metric: probability of being best, maximum and mean regret, mean and 5/50/95th
percentiles), ``minimax_regret.csv``, ``bands.csv`` (percentiles over time of the key
variables) and figures. ``run_default_ensemble`` is the modest ensemble ``sdloop run``
includes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sdloop.report import ensemble_plots
from sdloop.report import plotting
from sdloop.experiments.ensemble import (BAND_RANGES, EnsembleSummary, design_from_experiment, engine_for, run_ensemble)
from sdloop.experiments.metrics import CAPABILITY, METRIC_COLUMNS, SELF_SUFFICIENCY, THRESHOLD
from sdloop.report.output import write_csv
from sdloop.experiments.robustness import bands_table, minimax_regret, percentile_bands, robustness_table
from sdloop.experiments.uncertainty import UncertaintySpace, load_uncertainty

UNCERTAINTY_FILE = "uncertainty.toml"
DEFAULT_SAMPLES = 128  # per case x scenario x strategy: 128 x 64 = 8,192 runs in `sdloop run`
DEFAULT_SEED = 20240601
SOBOL_BASE = 256  # Saltelli base sample per case: 256 x (d + 2) runs
SOBOL_STRATEGY = "lifecycle_phased"


def write_ensemble(summary: EnsembleSummary, out: Path, *, units: dict, thresholds: dict,
                   sobol: dict[str, pd.DataFrame] | None = None, fan_scenarios=None,
                   fan_variables=(CAPABILITY, SELF_SUFFICIENCY)) -> pd.DataFrame:
    """Tables and figures of an ensemble into ``out``; returns the robustness table."""
    out.mkdir(parents=True, exist_ok=True)
    table = robustness_table(summary)
    write_csv(table, out / "robustness.csv", index=False, float_format="%.6g")
    write_csv(minimax_regret(table), out / "minimax_regret.csv", index=False, float_format="%.6g")
    write_csv(bands_table(summary), out / "bands.csv", index=False, float_format="%.6g")
    figures = out / "figures"
    cases = list(dict.fromkeys(case for case, _ in summary.keys))
    for case in cases:
        scenarios = [sc for c, sc in summary.keys if c == case]
        with plotting.style():
            fig, axes = plotting.panel_grid(len(scenarios), ncols=2, height=plotting.PANEL_HEIGHT * 1.25)
            for ax, scenario in zip(axes, scenarios):
                rows = table[(table.case == case) & (table.scenario == scenario)]
                ensemble_plots.best_probability(rows, ax=ax, title=f"{scenario.replace('_', ' ')}")
            fig.suptitle(f"{case.upper()}: probability each strategy is best ({summary.samples:,} samples)",
                         fontsize=7.5)
            plotting.save_figure(fig, figures / f"{case}_best_probability")
            for scenario in (fan_scenarios or scenarios[:1]):
                if scenario not in scenarios:
                    continue
                rows = table[(table.case == case) & (table.scenario == scenario)]
                fig = ensemble_plots.regret_figure(rows, title=f"{case.upper()}, {scenario.replace('_', ' ')}: regret")
                plotting.save_figure(fig, figures / f"{case}_{scenario}_regret")
                for variable in fan_variables:
                    bands = percentile_bands(summary, case, scenario, variable)
                    fig = ensemble_plots.fan_chart(
                        bands, variable, units.get(variable),
                        threshold=thresholds.get(case) if variable == CAPABILITY else None,
                        title=f"{case.upper()}, {scenario.replace('_', ' ')}: {variable} "
                              f"(median, 25-75% and 5-95% of {summary.samples:,} samples)")
                    plotting.save_figure(fig, figures / f"{case}_{scenario}_{variable.lower().replace(' ', '_')}_fan")
            if sobol and case in sobol:
                fig = ensemble_plots.sobol_figure(sobol[case], title=f"{case.upper()}: Sobol indices of the metrics "
                                                                       f"({SOBOL_STRATEGY.replace('_', ' ')})")
                plotting.save_figure(fig, figures / f"{case}_sobol")
    return table


def sector_sobol(design, space: UncertaintySpace, case: str, scenario: str, strategy: str, *, n: int,
                 seed: int) -> pd.DataFrame:
    """Sobol indices of every metric for one case, scenario and strategy."""
    from sdloop.experiments.ensemble import METRIC_VARIABLES
    from sdloop.experiments.sensitivity import sector_outputs, sobol_indices

    engine = engine_for(design.model)
    layers = {**design.scenarios[scenario], **design.strategies[strategy]}
    return sobol_indices(engine, space, sector_outputs(engine), n=n, seed=seed, base=design.cases[case],
                         layers=layers, columns=list(METRIC_VARIABLES))


def run_default_ensemble(models_dir: Path, out: Path, *, cases=None, strategies=None, scenarios=None,
                         fitted_dir: Path | None = None, n: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """The ensemble of ``sdloop run``: n samples of ``models/uncertainty.toml`` for every case,
    scenario and strategy, plus Sobol indices per case; tables and figures into ``out``."""
    from sdloop.report.sector_report import load_experiment

    experiment = load_experiment(models_dir, cases, strategies, scenarios, fitted_dir)
    design = design_from_experiment(experiment)
    space = load_uncertainty(models_dir / UNCERTAINTY_FILE)
    summary = run_ensemble(design, space, n, seed=seed, chunk_size=n)
    engine = engine_for(design.model)
    thresholds = {case: design.cases[case].get(THRESHOLD, engine.defaults[THRESHOLD]) for case in design.cases}
    strategy = SOBOL_STRATEGY if SOBOL_STRATEGY in design.strategies else next(iter(design.strategies))
    scenario = "baseline" if "baseline" in design.scenarios else next(iter(design.scenarios))
    sobol = {case: sector_sobol(design, space, case, scenario, strategy, n=SOBOL_BASE, seed=seed)
             for case in design.cases}
    write_csv(pd.concat([t.assign(case=c, scenario=scenario, strategy=strategy) for c, t in sobol.items()]),
              out / "sobol.csv", index=False, float_format="%.4g")
    table = write_ensemble(summary, out, units=experiment.model.units, thresholds=thresholds, sobol=sobol,
                           fan_scenarios=[scenario], fan_variables=(CAPABILITY,))  # bands.csv has the rest
    sobol_runs = sum(SOBOL_BASE * (len(space) + 2) for _ in design.cases)
    return {"seed": seed, "samples": n, "runs": summary.runs + sobol_runs, "table": table,
            "inputs": {"uncertainty": space.source}, "minimax": minimax_regret(table)}


def headline(result: dict) -> str:
    """A few lines for the console: the minimax-regret strategy per case and metric (baseline)."""
    table = result["minimax"]
    base = table[table.scenario == "baseline"] if (table.scenario == "baseline").any() else table
    lines = [f"Ensemble: {result['runs']:,} runs ({result['samples']} parameter samples per case x scenario x "
             f"strategy, seed {result['seed']}); minimax-regret strategy under {base.scenario.iloc[0]}:"]
    pivot = base.pivot(index="case", columns="metric", values="minimax_regret_strategy")
    lines.append(pivot.reindex(columns=[m for m in METRIC_COLUMNS if m in pivot.columns]).to_string())
    return "\n".join(lines)


__all__ = ["write_ensemble", "run_default_ensemble", "sector_sobol", "headline", "BAND_RANGES"]
