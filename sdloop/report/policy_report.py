"""The four-stage policy loop part of ``sdloop run``: scenarios, tables and figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sdloop.report import plotting
from sdloop.engines.pysd_model import load_model
from sdloop.report.output import write_csv
from sdloop.experiments.overrides import load_case, load_collection, select
from sdloop.experiments.runner import resolve_entries, run_all, stack, values_at

MODEL_FILE = "policy_loop.mdl"
SCENARIO_FILE = "policy_loop_scenarios.toml"

SUMMARY_VARIABLES = [
    "Technological Capability",
    "High Tech Share",
    "R and D Intensity",
    "Policy Precision",
    "Performance Gap",
    "Cumulative Policy Funds",
]

KEY_PANELS = [
    {"title": "Policy supply: instruments in force", "quantity": "Instruments in force",
     "columns": ["Supply Side Instruments", "Demand Side Instruments", "Environmental Instruments"],
     "labels": ["supply-side", "demand-side", "environmental"]},
    {"title": "Innovation factors (relative to 2006)", "ylabel": "Index (2006 = 1)",
     "columns": ["Technology Index", "Talent Index", "Capital Index", "Platform Index"],
     "labels": ["technology", "talent", "capital", "platforms"]},
    {"title": "Capability and its goal", "quantity": "Capability index",
     "columns": ["Technological Capability", "Capability Goal", "Perceived Capability"],
     "labels": ["capability", "goal", "perceived"]},
    {"title": "Industrial upgrading", "columns": ["High Tech Share"], "quantity": "High-tech share"},
    {"title": "Policy funds and R&D expenditure", "quantity": "Spending",
     "columns": ["R and D Expenditure", "Policy Funds", "Government R and D Funding"],
     "labels": ["R&D expenditure (GERD)", "policy funds", "public R&D funding"]},
    {"title": "Response optimization", "quantity": "Level",
     "columns": ["Policy Precision", "Policy Coordination", "Performance Gap", "Policy Effort"],
     "labels": ["precision", "coordination", "performance gap", "policy effort"]},
]

FACTOR_INDICES = {
    "Technology Index": "Technology Stock",
    "Talent Index": "Talent",
    "Capital Index": "Innovation Capital",
    "Platform Index": "Innovation Platforms",
}


FITTED_CASE = "national"


def run_policy_loop(models_dir: Path, out: Path, scenarios: str | None = None,
                    fitted_dir: Path | None = None) -> dict:
    """Run the loop model's scenarios; write trajectories, summary and figures into ``out``.

    With ``fitted_dir`` holding ``national.toml`` (``sdloop calibrate national``), every
    scenario starts from those fitted values. Returns the summary table and manifest entries.
    """
    model_path = models_dir / MODEL_FILE
    scenario_path = models_dir / SCENARIO_FILE
    model = load_model(model_path)
    entries = select(load_collection(scenario_path), scenarios, "scenario")
    fitted = fitted_dir / f"{FITTED_CASE}.toml" if fitted_dir is not None else None
    base = [load_case(fitted)] if fitted is not None and fitted.exists() else []
    params = resolve_entries(model, entries, base)
    runs = run_all(model, params)

    out.mkdir(parents=True, exist_ok=True)
    write_csv(stack(runs), out / "trajectories.csv", index=False)
    final = model.control["FINAL TIME"]
    summary = values_at(runs, SUMMARY_VARIABLES, final)
    write_csv(summary, out / "summary.csv")

    units = dict(model.units)
    if "baseline" in runs:
        baseline = _with_factor_indices(runs["baseline"])
        fig = key_stocks(baseline, units)
        plotting.save_figure(fig, out / "key_stocks_baseline")
    if "baseline" in params:
        _dominance_outputs(model_path, params["baseline"], out)
    fig = plotting.scenario_comparison_figure(
        runs, ["Technological Capability", "High Tech Share", "Policy Effort", "Cumulative Policy Funds"], units)
    plotting.save_figure(fig, out / "scenario_comparison")
    inputs = {"policy_loop_scenarios": scenario_path, **({f"fitted/{FITTED_CASE}": fitted} if base else {})}
    return {"summary": summary, "model": model_path, "inputs": inputs, "calibrated": [FITTED_CASE] if base else [],
            "parameters": {f"policy_loop/{k}": v for k, v in params.items()}, "final_time": final}


def _with_factor_indices(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for index, stock in FACTOR_INDICES.items():
        frame[index] = frame[stock] / frame[stock].iloc[0]
    return frame


def key_stocks(frame: pd.DataFrame, units: dict[str, str]):
    """The baseline multi-panel figure of the loop's key stocks."""
    return plotting.key_stocks_figure(frame, KEY_PANELS, units)


def _dominance_outputs(model_path: Path, params: dict[str, float], out: Path) -> None:
    """Loops That Matter on the baseline run: the dominant loop per period and the figure."""
    from sdloop.report import loop_plots
    from sdloop.analysis.dominance import describe_periods
    from sdloop.analysis.loop_analysis import analyse_model
    from sdloop.report.output import atomic_write_text

    analysis = analyse_model(model_path, params, dominance=True)
    dominance = analysis.dominance
    write_csv(dominance.relative_scores, out / "relative_loop_scores.csv")
    atomic_write_text(out / "dominant_loops.txt", "\n".join(describe_periods(dominance, min_length=2.0)) + "\n")
    ax = loop_plots.relative_scores_plot(dominance, time_label="Year", phases=plotting.POLICY_PHASES,
                                         title="Which loops drive the baseline (Loops That Matter)")
    loop_plots.save(ax, out / "loop_dominance")
