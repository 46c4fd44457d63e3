"""Figures comparing sequencing strategies on the sector lifecycle model."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sdloop.report import plotting
from sdloop.experiments.metrics import HIGHER_IS_BETTER, METRIC_COLUMNS

COMPARISON_PANELS = [
    ("Technological Capability", "Capability relative to frontier"),
    ("Self Sufficiency", "Self-sufficiency"),
    ("Supply Shortfall", "Supply shortfall"),
    ("Cumulative Fiscal Cost", "Cumulative fiscal cost"),
]
PHASE_MARKERS = ((1.5, "o", "enters scale-up"), (2.5, "^", "enters global competition"))
METRIC_LABELS = {
    "breakthrough_year": "breakthrough\nyear",
    "self_sufficiency_2035": "self-suff.\n2035",
    "global_share_2035": "global share\n2035",
    "peak_shortfall": "peak\nshortfall",
    "cumulative_fiscal_cost": "fiscal\ncost",
    "cost_per_capability": "cost per\ncapability",
}


def phase_entries(phase: pd.Series) -> list[tuple[float, str]]:
    """(time, marker) where the lifecycle phase index first crosses into each later phase."""
    found = []
    for level, marker, _ in PHASE_MARKERS:
        above = phase[phase >= level]
        if len(above):
            found.append((float(above.index[0]), marker))
    return found


def strategy_comparison(runs: Mapping[str, pd.DataFrame], units: Mapping[str, str], *,
                        threshold: float | None = None, title: str | None = None):
    """Four panels (capability, self-sufficiency, shortfall, fiscal cost), one line per
    strategy; markers show when each strategy's sector enters scale-up and global competition."""
    with plotting.style():
        fig, axes = plotting.panel_grid(len(COMPARISON_PANELS))
        handles = []
        for (variable, label), ax in zip(COMPARISON_PANELS, axes):
            for name, frame in runs.items():
                (line,) = ax.plot(frame.index, frame[variable], label=name.replace("_", " "))
                for time, marker in phase_entries(frame["Lifecycle Phase"]):
                    ax.plot([time], [frame[variable].loc[time]], marker=marker, ms=3.5, color=line.get_color(),
                            markerfacecolor="white", markeredgewidth=0.8, linestyle="none")
                if ax is axes[0]:
                    handles.append(line)
            first = next(iter(runs.values()))
            ax.set_xlim(first.index.min(), first.index.max())
            ax.set_ylabel(plotting.units_label(label, units.get(variable)))
            ax.set_xlabel("Year")
            ax.set_title(variable, loc="left")
        if threshold is not None:
            axes[0].axhline(threshold, color="0.5", lw=0.6, ls=":")
            axes[0].text(axes[0].get_xlim()[0], threshold, " breakthrough threshold", va="bottom",
                         fontsize=5.5, color="0.35")
        markers = [Line2D([], [], marker=m, color="0.2", markerfacecolor="white", linestyle="none", ms=3.5,
                          label=text) for _, m, text in PHASE_MARKERS]
        fig.legend(handles=handles + markers, loc="outside lower center", ncol=5, frameon=False)
        if title:
            fig.suptitle(title, fontsize=8)
    return fig


def ranking_chart(metrics_by_scenario: Mapping[str, pd.DataFrame], ranks_by_scenario: Mapping[str, pd.DataFrame],
                  *, title: str | None = None):
    """One panel per scenario: strategies (rows) by metrics (columns), shaded by rank
    (darker is better), each cell printed with its value."""
    names = list(metrics_by_scenario)
    with plotting.style():
        fig, axes = plotting.panel_grid(len(names), ncols=2, height=plotting.PANEL_HEIGHT * 1.15)
        for ax, scenario in zip(axes, names):
            ranks = ranks_by_scenario[scenario][METRIC_COLUMNS]
            values = metrics_by_scenario[scenario][METRIC_COLUMNS]
            n = len(ranks)
            shade = 1 - (ranks.to_numpy() - 1) / max(n - 1, 1)  # 1 best, 0 worst
            ax.imshow(shade, cmap="Greys", vmin=-0.15, vmax=1.6, aspect="auto")
            for i in range(n):
                for j, column in enumerate(METRIC_COLUMNS):
                    ax.text(j, i, _format(column, values.iloc[i, j]), ha="center", va="center",
                            fontsize=5, color="white" if shade[i, j] > 0.6 else "black")
            ax.set_xticks(range(len(METRIC_COLUMNS)), [METRIC_LABELS[c] for c in METRIC_COLUMNS], fontsize=5.5)
            ax.set_yticks(range(n), [s.replace("_", " ") for s in ranks.index], fontsize=6)
            ax.tick_params(length=0)
            ax.xaxis.tick_top()
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(f"scenario: {scenario.replace('_', ' ')}", loc="left", pad=18)
        fig.supxlabel("darker = better rank; "
                      + "; ".join(f"{METRIC_LABELS[c].replace(chr(10), ' ')} {'higher' if HIGHER_IS_BETTER[c] else 'lower'}"
                                  " is better" for c in METRIC_COLUMNS[:4]) + "; costs lower is better",
                      fontsize=5.5)
        if title:
            fig.suptitle(title, fontsize=8)
    return fig


def _format(column: str, value: float) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "never" if column == "breakthrough_year" else "-"
    if column == "breakthrough_year":
        return f"{value:.1f}"
    if column in ("cumulative_fiscal_cost", "cost_per_capability"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def close(fig) -> None:
    plt.close(fig)
