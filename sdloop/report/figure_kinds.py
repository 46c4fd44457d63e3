"""Drawing the figure kinds a project can declare, from plain data (no model names here).

Each function takes a payload of DataFrames and options (built by ``sdloop.report.figures``)
and returns a ``matplotlib.figure.Figure`` in the house style; saving is
``plotting.save_figure``'s job. Kinds: ``lines`` (panels of several lines of one run),
``compare`` (one panel per variable, one line per case, scenario or strategy, with optional
threshold and markers where a variable crosses levels) and ``ranking`` (runs ranked on every
metric, shaded by rank).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sdloop.report import plotting


def lines_figure(payload: dict):
    """Panels of lines of one run (``payload['panels']``: title, ylabel, labels, frame)."""
    phases = payload.get("phases") or ()
    with plotting.style():
        fig, axes = plotting.panel_grid(len(payload["panels"]))
        for ax, panel in zip(axes, payload["panels"]):
            frame = panel["frame"]
            plotting.plot_lines(frame, list(frame.columns), ax=ax, labels=panel.get("labels"),
                                ylabel=panel.get("ylabel"), title=panel.get("title"), phases=phases,
                                phase_labels=False, time_label=payload.get("time_label", "Time"))
        plotting.phase_legend(fig, phases, payload.get("phases_title", ""))
        if payload.get("title"):
            fig.suptitle(payload["title"], fontsize=8)
    return fig


def crossings(series: pd.Series, levels) -> list[tuple[float, int]]:
    """(time, level index) where ``series`` first reaches each level."""
    found = []
    for i, level in enumerate(levels):
        above = series[series >= level]
        if len(above):
            found.append((float(above.index[0]), i))
    return found


def compare_figure(payload: dict):
    """One panel per variable, one line per entry; markers where a marker series first reaches
    each level; a threshold line on one panel; shaded phases."""
    phases = payload.get("phases") or ()
    markers = payload.get("markers")
    with plotting.style():
        fig, axes = plotting.panel_grid(len(payload["panels"]))
        handles = []
        for ax, panel in zip(axes, payload["panels"]):
            frame = panel["frame"]
            for name in frame.columns:
                (line,) = ax.plot(frame.index, frame[name], label=str(name).replace("_", " "))
                if markers:
                    for time, i in crossings(markers["series"][name], markers["levels"]):
                        ax.plot([time], [frame[name].loc[time]], marker=markers["symbols"][i], ms=3.5,
                                color=line.get_color(), markerfacecolor="white", markeredgewidth=0.8,
                                linestyle="none")
                if ax is axes[0]:
                    handles.append(line)
            ax.set_xlim(frame.index.min(), frame.index.max())
            if phases:
                plotting.shade_phases(ax, phases, label=False)
            ax.set_ylabel(panel["ylabel"])
            ax.set_xlabel(payload.get("time_label", "Time"))
            ax.set_title(panel["title"], loc="left")
        threshold = payload.get("threshold")
        if threshold is not None:
            index, value, label = threshold
            ax = axes[index]
            ax.axhline(value, color="0.5", lw=0.6, ls=":")
            if label:
                ax.text(ax.get_xlim()[0], value, f" {label}", va="bottom", fontsize=5.5, color="0.35")
        if phases:
            axes[0].legend(loc="best")
            plotting.phase_legend(fig, phases, payload.get("phases_title", ""))
        else:
            extra = [Line2D([], [], marker=m, color="0.2", markerfacecolor="white", linestyle="none", ms=3.5,
                            label=text) for m, text in zip(markers["symbols"], markers["labels"])] if markers else []
            fig.legend(handles=handles + extra, loc="outside lower center", ncol=5, frameon=False)
        if payload.get("title"):
            fig.suptitle(payload["title"], fontsize=8)
    return fig


def ranking_figure(payload: dict):
    """One panel per scenario: rows (strategies) by metrics, shaded by rank (darker is better),
    each cell printed with its value."""
    tables, ranks = payload["tables"], payload["ranks"]
    labels, formats, better = payload["labels"], payload["formats"], payload["better"]
    names = list(tables)
    with plotting.style():
        fig, axes = plotting.panel_grid(len(names), ncols=2 if len(names) > 1 else 1,
                                        height=plotting.PANEL_HEIGHT * 1.15)
        for ax, name in zip(axes, names):
            columns = list(tables[name].columns)
            values, rank = tables[name], ranks[name][columns]
            n = len(rank)
            shade = 1 - (rank.to_numpy() - 1) / max(n - 1, 1)  # 1 best, 0 worst
            ax.imshow(shade, cmap="Greys", vmin=-0.15, vmax=1.6, aspect="auto")
            for i in range(n):
                for j, column in enumerate(columns):
                    ax.text(j, i, format_cell(values.iloc[i, j], formats[column]), ha="center", va="center",
                            fontsize=5, color="white" if shade[i, j] > 0.6 else "black")
            ax.set_xticks(range(len(columns)), [labels[c] for c in columns], fontsize=5.5)
            ax.set_yticks(range(n), [str(s).replace("_", " ") for s in rank.index], fontsize=6)
            ax.tick_params(length=0)
            ax.xaxis.tick_top()
            for spine in ax.spines.values():
                spine.set_visible(False)
            if name:
                ax.set_title(f"scenario: {name.replace('_', ' ')}", loc="left", pad=18)
        fig.supxlabel(textwrap.fill("darker = better rank; " + "; ".join(
            f"{labels[c].replace(chr(10), ' ')} {better[c]} is better" for c in better), 150), fontsize=5.5)
        if payload.get("title"):
            fig.suptitle(payload["title"], fontsize=8)
    return fig


def format_cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float) and np.isinf(value):
        return "never"
    try:
        return format(value, fmt)
    except ValueError:
        return f"{value:.3g}"


RENDERERS = {"lines": lines_figure, "compare": compare_figure, "ranking": ranking_figure}


def render(kind: str, payload: dict):
    return RENDERERS[kind](payload)
