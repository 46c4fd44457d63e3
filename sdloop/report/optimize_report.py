"""Writing a schedule optimisation: the frontier tables and the frontier figure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sdloop.experiments.optimize import FrontierResult, OptimizeSpec
from sdloop.report.output import write_csv
from sdloop.report.plotting import panel_grid, save_figure, style

MARKERS = "osD^v<>pPX*hH"


def write_optimization(result: FrontierResult, spec: OptimizeSpec, out: Path, specs: dict, *, horizon: float,
                       figures: bool = True) -> list[Path]:
    """frontier.csv, candidates.csv, named.csv, optima.csv and figures/frontier.{pdf,png} in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [write_csv(result.frontier, out / "frontier.csv", index=False, float_format="%.6g"),
               write_csv(result.points, out / "candidates.csv", index=False, float_format="%.6g"),
               write_csv(result.named, out / "named.csv", index=False, float_format="%.6g"),
               write_csv(result.best, out / "optima.csv", index=False, float_format="%.6g")]
    if figures:
        written += frontier_figure(result, spec, out / "figures" / "frontier", specs, horizon=horizon)
    return written


def _shown(values: np.ndarray, spec, horizon: float) -> np.ndarray:
    """Never-reached values drawn one year after the horizon (labelled), undefined ones left out."""
    never = spec.never if spec.never is not None else horizon + 1
    return np.where(np.isposinf(values), never, values)


def frontier_figure(result: FrontierResult, spec: OptimizeSpec, stem: Path, specs: dict, *,
                    horizon: float) -> list[Path]:
    """One panel per objective: every candidate (grey), the frontier (line), the named strategies."""
    with style():
        fig, axes = panel_grid(len(spec.objectives), ncols=min(2, len(spec.objectives)))
        cost = specs[spec.cost]
        regret = spec.draws and spec.criterion == "regret"
        for ax, objective in zip(axes, spec.objectives):
            metric = specs[objective]
            if regret:  # maximum regrets: lower is better, in the metric's unit; an undefined one is not drawn
                metric = dataclasses.replace(metric, never=np.nan, better="lower")
            pts = result.points
            ax.scatter(pts[spec.cost], _shown(pts[objective].to_numpy(float), metric, horizon), s=4, color="0.8",
                       label="schedules searched", rasterized=True)
            front = result.frontier[result.frontier.objective == objective]
            ax.step(front[spec.cost], _shown(front[objective].to_numpy(float), metric, horizon), where="post",
                    color="black", linewidth=1.2, label="frontier")
            for marker, (_, row) in zip(MARKERS, result.named.iterrows()):
                on = bool(row[f"on_frontier_{objective}"])
                y = _shown(np.array([row[objective]], float), metric, horizon)[0]
                ax.scatter([row[spec.cost]], [y], marker=marker, s=30, facecolors="black" if on else "white",
                           edgecolors="black", zorder=3, label=row["strategy"])
            if metric.never is None and np.isposinf(pts[objective]).any():
                ax.axhline(horizon + 1, color="0.5", linewidth=0.6, linestyle=":")
                ax.text(ax.get_xlim()[0], horizon + 1, " not reached by the horizon", va="bottom", fontsize=7,
                        color="0.4")
            ax.set_xlabel(f"{cost.name.replace('_', ' ')} ({cost.unit})" if cost.unit else cost.name)
            name = f"maximum regret of {objective.replace('_', ' ')}" if regret else objective.replace('_', ' ')
            ax.set_ylabel(f"{name} ({metric.unit})" if metric.unit else name)
            ax.set_title(f"{spec.case}, {spec.scenario}: {name}"
                         f" ({'higher' if metric.better == 'higher' else 'lower'} is better"
                         f"{f'; over {spec.draws} draws' if regret else ''})", fontsize=8)
        handles, labels = axes[0].get_legend_handles_labels()
        handles.append(axes[0].scatter([], [], marker="s", s=30, color="black"))
        labels.append("filled: on that panel's frontier")
        fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=6, frameon=False)
        return save_figure(fig, stem)
