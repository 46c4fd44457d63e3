"""Drawing the figure kinds a project can declare, from plain data (no model names here).

Each function takes a payload of DataFrames and options (built by ``sdloop.report.figures``)
and returns a ``matplotlib.figure.Figure`` in the house style; saving is
``plotting.save_figure``'s job. Kinds: ``plot`` (line panels; the ``plot``, ``compare`` and
``lines`` figure kinds, drawn by ``sdloop.report.line_panels``) and ``ranking`` (runs ranked
on every metric, shaded by rank).
"""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.patches import Rectangle

from sdloop.report import plotting
from sdloop.report.tables import format_number


def ranking_figure(payload: dict):
    """One panel per scenario: rows (strategies) by metrics, shaded by rank (darker is better),
    each cell printed with its value."""
    tables, ranks = payload["tables"], payload["ranks"]
    labels, formats, better = payload["labels"], payload["formats"], payload["better"]
    names = list(tables)
    with plotting.style():
        wide = max(len(t.columns) for t in tables.values()) > 6  # many metrics: one panel per row, full width
        fig, axes = plotting.panel_grid(len(names), ncols=2 if len(names) > 1 and not wide else 1,
                                        height=plotting.PANEL_HEIGHT * (1.3 if wide else 1.15))
        for ax, name in zip(axes, names):
            columns = list(tables[name].columns)
            values, rank = tables[name], ranks[name][columns]
            n = len(rank)
            ranked = rank.notna().sum(axis=0).to_numpy()  # how many rows have a value, per metric
            shade = 1 - (rank.to_numpy(dtype=float) - 1) / np.maximum(ranked - 1, 1)  # 1 best, 0 worst, NaN none
            cmap = matplotlib.colormaps["Greys"].with_extremes(bad="white")
            ax.imshow(shade, cmap=cmap, vmin=-0.15, vmax=1.6, aspect="auto")
            for i in range(n):
                for j, column in enumerate(columns):
                    ax.text(j, i, compact(format_cell(values.iloc[i, j], formats[column]), values.iloc[i, j]),
                            ha="center", va="center", fontsize=5, color="white" if shade[i, j] > 0.6 else "black",
                            in_layout=False)  # inside its cell: no need to measure it for the layout
                    if np.isnan(shade[i, j]):
                        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="////", ec="0.8",
                                               lw=0))
            if wide:  # slanted one-line headers never run into each other
                ax.set_xticks(range(len(columns)), [labels[c].replace("\n", " ") for c in columns], fontsize=5.5,
                              rotation=30, ha="left", rotation_mode="anchor")
            else:
                ax.set_xticks(range(len(columns)), [labels[c] for c in columns], fontsize=5.5)
            ax.set_yticks(range(n), [str(s).replace("_", " ") for s in rank.index], fontsize=6)
            ax.tick_params(length=0)
            ax.xaxis.tick_top()
            for spine in ax.spines.values():
                spine.set_visible(False)
            if name:
                ax.set_title(f"scenario: {name.replace('_', ' ')}", loc="left", pad=4 if wide else 18)
        fig.supxlabel(textwrap.fill("darker = better rank; hatched '-' = no value (undefined), not ranked; " + "; ".join(
            f"{labels[c].replace(chr(10), ' ')} {better[c]} is better" for c in better), 150), fontsize=5.5)
        if payload.get("title"):
            fig.suptitle(payload["title"], fontsize=8)
    return fig


def compact(text: str, value, width: int = 7) -> str:
    """``text``, or the value in thousands or millions (3 significant digits) when it is wider
    than a cell holds."""
    if len(text) <= width or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        return text
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float) and np.isinf(value):
        return "never"
    try:
        return format_number(value, fmt)
    except ValueError:
        return f"{value:.3g}"


def _plot(payload: dict):
    from sdloop.report.line_panels import render_plot

    return render_plot(payload)


RENDERERS = {"plot": _plot, "ranking": ranking_figure}


def render(kind: str, payload: dict):
    return RENDERERS[kind](payload)
