"""The sector lifecycle part of ``sdloop run``: every case x scenario x strategy, metrics and figures."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from sdloop.report import plotting
from sdloop.report import sector_plots
from sdloop.experiments.metrics import METRIC_COLUMNS, rank_strategies, sector_metrics, threshold_of
from sdloop.engines.pysd_model import Model, load_model
from sdloop.report.output import write_csv
from sdloop.experiments.overrides import Overrides, load_case, load_collection, merge, select

MODEL_FILE = "sector_lifecycle.mdl"
CASES_DIR = "cases"
STRATEGY_FILE = "strategies.toml"
SCENARIO_FILE = "scenarios.toml"


@dataclass(frozen=True)
class SectorExperiment:
    """The runs ``sdloop run`` makes on the sector model: cases x scenarios x strategies."""

    model: Model
    cases: list[Overrides]
    scenarios: list[Overrides]
    strategies: list[Overrides]
    calibrations: dict[str, Overrides] = field(default_factory=dict)

    def case_layers(self, case: Overrides) -> list[Overrides]:
        """A case file, then its fitted parameters when the case has been calibrated."""
        fitted = self.calibrations.get(case.name)
        return [case, fitted] if fitted else [case]

    def parameters(self) -> dict[tuple[str, str, str], dict[str, float]]:
        """Every run's overrides (case < fitted < scenario < strategy), all names checked up front."""
        return {
            (case.name, scenario.name, strategy.name):
                merge(self.model, [*self.case_layers(case), scenario.for_case(case.name),
                                   strategy.for_case(case.name)])
            for case, scenario, strategy in itertools.product(self.cases, self.scenarios, self.strategies)
        }


def load_experiment(models_dir: Path, cases: str | None = None, strategies: str | None = None,
                    scenarios: str | None = None, fitted_dir: Path | None = None) -> SectorExperiment:
    """Read the sector model and its cases, strategies and scenarios; select subsets by name.

    With ``fitted_dir``, a case named X that has ``fitted_dir/X.toml`` (written by
    ``sdloop calibrate X``) runs with those fitted values over its case file.
    """
    model = load_model(models_dir / MODEL_FILE)
    available_cases = {p.stem: load_case(p) for p in sorted((models_dir / CASES_DIR).glob("*.toml"))}
    chosen = select(available_cases, cases, "case")
    calibrations = {}
    if fitted_dir is not None:
        calibrations = {c.name: load_case(fitted_dir / f"{c.name}.toml") for c in chosen
                        if (fitted_dir / f"{c.name}.toml").exists()}
    return SectorExperiment(
        model=model,
        cases=chosen,
        scenarios=select(load_collection(models_dir / SCENARIO_FILE), scenarios, "scenario"),
        strategies=select(load_collection(models_dir / STRATEGY_FILE), strategies, "strategy"),
        calibrations=calibrations,
    )


def run_experiment(experiment: SectorExperiment) -> tuple[dict, pd.DataFrame, dict]:
    """Run every combination; return (runs keyed by (case, scenario, strategy), metrics, params)."""
    params = experiment.parameters()
    model = experiment.model
    runs, rows = {}, []
    for key, values in tqdm(params.items(), desc="sector runs", unit="run", disable=None, leave=False):
        frame = model.run(values)
        runs[key] = frame
        case, scenario, strategy = key
        rows.append({"case": case, "strategy": strategy, "scenario": scenario,
                     **sector_metrics(frame, threshold_of(values, model.defaults))})
    metrics = pd.DataFrame(rows, columns=["case", "strategy", "scenario", *METRIC_COLUMNS])
    return runs, metrics, params


def run_sectors(models_dir: Path, out: Path, *, cases: str | None = None, strategies: str | None = None,
                scenarios: str | None = None, fitted_dir: Path | None = None) -> dict:
    """Run the sector experiment and write trajectories and figures into ``out``; the metrics
    table is returned (``sdloop run`` writes it as the run's ``metrics.csv``)."""
    experiment = load_experiment(models_dir, cases, strategies, scenarios, fitted_dir)
    runs, metrics, params = run_experiment(experiment)
    model = experiment.model

    out.mkdir(parents=True, exist_ok=True)
    dynamic = [v for v in model.variables if v not in model.defaults and v not in model.control]
    trajectories = pd.concat(
        [frame[dynamic].reset_index().assign(case=c, scenario=sc, strategy=st)
         for (c, sc, st), frame in runs.items()], ignore_index=True)
    write_csv(trajectories[["case", "scenario", "strategy", "time", *dynamic]], out / "trajectories.csv",
              index=False, float_format="%.8g")
    _figures(experiment, runs, metrics, out)
    return {
        "metrics": metrics,
        "model": model.path,
        "inputs": {"strategies": experiment.strategies[0].source, "scenarios": experiment.scenarios[0].source,
                   **{f"case/{c.name}": c.source for c in experiment.cases},
                   **{f"fitted/{name}": c.source for name, c in experiment.calibrations.items()}},
        "calibrated": sorted(experiment.calibrations),
        "parameters": {"/".join(key): value for key, value in params.items()},
    }


def _figures(experiment: SectorExperiment, runs: dict, metrics: pd.DataFrame, out: Path) -> None:
    units = experiment.model.units
    figures = out / "figures"
    for case in experiment.cases:
        by_scenario, ranks = {}, {}
        for scenario in experiment.scenarios:
            case_runs = {s.name: runs[(case.name, scenario.name, s.name)] for s in experiment.strategies}
            threshold = threshold_of(merge(experiment.model, experiment.case_layers(case)),
                                     experiment.model.defaults)
            fig = sector_plots.strategy_comparison(
                case_runs, units, threshold=threshold,
                title=f"{case.name.upper()}: strategies under the {scenario.name.replace('_', ' ')} scenario")
            plotting.save_figure(fig, figures / f"{case.name}_{scenario.name}_strategies")
            table = metrics[(metrics.case == case.name) & (metrics.scenario == scenario.name)]
            table = table.set_index("strategy")[METRIC_COLUMNS]
            by_scenario[scenario.name] = table
            ranks[scenario.name] = rank_strategies(table)
        fig = sector_plots.ranking_chart(by_scenario, ranks, title=f"{case.name.upper()}: strategies ranked")
        plotting.save_figure(fig, figures / f"{case.name}_ranking")


def summary_table(metrics: pd.DataFrame) -> str:
    """The table printed at the end of ``make run``."""
    shown = metrics.copy()
    shown["breakthrough_year"] = shown["breakthrough_year"].map(lambda v: "never" if pd.isna(v) else f"{v:.2f}")
    for column in ("self_sufficiency_2035", "global_share_2035", "peak_shortfall"):
        shown[column] = shown[column].map(lambda v: f"{v:.3f}")
    for column in ("cumulative_fiscal_cost", "cost_per_capability"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:,.0f}")
    return shown.to_string(index=False)
