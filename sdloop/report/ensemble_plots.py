"""Figures of ensembles: fan charts, Sobol indices, probability of being best, regret.

Every function takes ``ax=None`` (or builds its own panel grid) and returns the axes or the
figure; saving is ``plotting.save_figure``'s job. Grayscale, as the house style asks.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sdloop.report import plotting


def fan(band: pd.DataFrame, *, ax=None, label: str | None = None, color: str = "0.0"):
    """Median line with shaded 5-95% and 25-75% bands of one strategy; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(plotting.SINGLE_COLUMN, plotting.PANEL_HEIGHT))
    t = band.index.to_numpy()
    ax.fill_between(t, band["p5"], band["p95"], color=color, alpha=0.12, lw=0, label="5-95%")
    ax.fill_between(t, band["p25"], band["p75"], color=color, alpha=0.25, lw=0, label="25-75%")
    ax.plot(t, band["p50"], color=color, lw=1.0, label=label or "median")
    return ax


def fan_chart(bands: Mapping[str, pd.DataFrame], variable: str, units: str | None = None, *,
              strategies: Sequence[str] | None = None, title: str | None = None, threshold: float | None = None,
              time_label: str = "Time"):
    """One panel per strategy: percentile bands of ``variable`` over time, shared axes."""
    names = list(strategies or bands)
    fig, axes = plotting.panel_grid(len(names), ncols=4, height=plotting.PANEL_HEIGHT * 0.8)
    top = max(float(np.nanmax(bands[s]["p95"])) for s in names)
    for ax, name in zip(axes, names):
        fan(bands[name], ax=ax)
        ax.set_xlim(bands[name].index.min(), bands[name].index.max())
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
        if threshold is not None:
            ax.axhline(threshold, color="0.4", lw=0.6, ls=":")
        ax.set_title(name.replace("_", " "), loc="left")
    for ax in axes[::4]:
        ax.set_ylabel(plotting.units_label(variable, units))
    for ax in axes[-4:]:
        ax.set_xlabel(time_label)
    axes[0].legend(loc="upper left", fontsize=5)
    if title:
        fig.suptitle(title, fontsize=7.5)
    return fig


def sobol_bars(table: pd.DataFrame, output: str, *, ax=None, title: str | None = None,
               labels: Mapping[str, str] | None = None):
    """Horizontal bars of total (ST) and first-order (S1) indices of one output, largest on top."""
    if ax is None:
        _, ax = plt.subplots(figsize=(plotting.SINGLE_COLUMN, plotting.PANEL_HEIGHT))
    rows = table[table["output"] == output].sort_values("ST")
    y = np.arange(len(rows))
    ax.barh(y + 0.18, rows["ST"].clip(lower=0), 0.36, xerr=rows["ST_conf"], color="0.35", label="total (ST)",
            error_kw={"lw": 0.5, "capsize": 1})
    ax.barh(y - 0.18, rows["S1"].clip(lower=0), 0.36, xerr=rows["S1_conf"], color="0.75",
            label="first order (S1)", error_kw={"lw": 0.5, "capsize": 1})
    ax.set_yticks(y, rows["parameter"], fontsize=5.5)
    ax.set_xlim(0, 1.05)
    note = ""
    if len(rows) and float(np.nanmax(rows["ST"])) > 1.05:  # said under the axis, where no legend or bar is
        note = "\nindices above 1: output nearly constant, estimates unreliable"
    ax.set_xlabel("Sobol index (share of output variance)" + note)
    ax.set_title(title or (labels or {}).get(output, output).replace("\n", " "), loc="left")
    return ax


def sobol_figure(table: pd.DataFrame, *, title: str | None = None, labels: Mapping[str, str] | None = None):
    """One tornado-style panel per output with indices."""
    outputs = [o for o in table["output"].unique() if table.loc[table["output"] == o, "ST"].notna().any()]
    constant = [o for o in outputs if not (table.loc[table["output"] == o, "ST"].abs() > 0).any()]
    if constant and len(constant) < len(outputs):  # no variance to apportion: an empty panel says nothing
        outputs = [o for o in outputs if o not in constant]
        title = title and (f"{title}\n(constant over the samples, not shown: "
                           f"{_names(constant, labels)})")
    fig, axes = plotting.panel_grid(len(outputs), ncols=2, height=plotting.PANEL_HEIGHT * 1.1)
    for ax, output in zip(axes, outputs):
        sobol_bars(table, output, ax=ax, labels=labels)
    if outputs:
        axes[0].legend(loc="lower right", fontsize=5)
    if title:
        fig.suptitle(title, fontsize=7.5)
    return fig


def best_probability(table: pd.DataFrame, *, ax=None, title: str | None = None,
                     labels: Mapping[str, str] | None = None):
    """Strategies x ranked metrics: probability of being best (or tied), printed in each cell."""
    if ax is None:
        _, ax = plt.subplots(figsize=(plotting.SINGLE_COLUMN * 1.2, plotting.PANEL_HEIGHT * 1.2))
    table = table.dropna(subset=["p_best"])
    grid = table.pivot(index="strategy", columns="metric", values="p_best")
    grid = grid.reindex(index=list(dict.fromkeys(table["strategy"])), columns=list(dict.fromkeys(table["metric"])))
    tied = [m for m in grid.columns if (grid[m] == 1).all()]  # every strategy best on every draw: nothing to show
    if tied and len(tied) < len(grid.columns):
        grid = grid.drop(columns=tied)
        title = f"{title or 'Probability of being best'}\n(all strategies tied, not shown: " \
                f"{_names(tied, labels)})"
    ax.imshow(grid.to_numpy(dtype=float), cmap="Greys", vmin=0, vmax=1.6, aspect="auto")
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5.5,
                color="white" if value > 0.9 else "black")
    names = [(labels or {}).get(m, m).replace("\n", " ") for m in grid.columns]
    if len(names) > 4 or max(map(len, names), default=0) > 12:  # slanted, so long labels never overlap
        ax.set_xticks(range(len(names)), names, fontsize=5.5, rotation=35, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(len(names)), names, fontsize=5.5)
    ax.set_yticks(range(len(grid.index)), [s.replace("_", " ") for s in grid.index], fontsize=5.5)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "Probability of being best", loc="left")
    return ax


def regret_figure(table: pd.DataFrame, *, title: str | None = None, labels: Mapping[str, str] | None = None,
                  better: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None):
    """One panel per ranked metric: each strategy's maximum regret (bar) and mean regret (tick);
    the minimax-regret strategy in black. Regret is in the metric's own unit (``units``); a
    strategy with no value on any draw (an undefined ratio) has no bar and says so."""
    metrics = list(dict.fromkeys(table.dropna(subset=["p_best"])["metric"]))
    worst_of = table.groupby("metric")["max_regret"].max()
    tied = [m for m in metrics if np.nan_to_num(worst_of.get(m, np.nan)) == 0]  # no strategy ever behind
    if tied and len(tied) < len(metrics):
        metrics = [m for m in metrics if m not in tied]
        title = title and (f"{title} (all strategies tied, not shown: "
                           f"{_names(tied, labels)})")
    fig, axes = plotting.panel_grid(len(metrics), ncols=3, height=plotting.PANEL_HEIGHT * 1.1)
    strategies = list(dict.fromkeys(table["strategy"]))
    for ax, metric in zip(axes, metrics):
        rows = table[table["metric"] == metric].set_index("strategy").reindex(strategies)
        y = np.arange(len(rows))
        worst = rows["max_regret"].to_numpy(dtype=float)
        colors = ["0.7"] * len(rows)
        if np.isfinite(worst).any():
            colors[int(np.nanargmin(worst))] = "0.1"
        scale = _power_of_thousand(np.nan_to_num(worst))  # 1e6 goes into the axis label, not an offset text
        ax.barh(y, np.nan_to_num(worst) / scale, color=colors, height=0.6)
        ax.plot(rows["mean_regret"] / scale, y, "|", color="0.0", ms=6, mew=1.0)
        ax.set_yticks(y, [s.replace("_", " ") for s in rows.index], fontsize=5)
        if np.isfinite(worst).any():  # the minimax strategy's name in bold (its bar may have zero length)
            ax.get_yticklabels()[int(np.nanargmin(worst))].set_fontweight("bold")
        ax.invert_yaxis()
        direction = f"{(better or {}).get(metric, 'lower')} is better"
        ax.set_title(f"{(labels or {}).get(metric, metric).replace(chr(10), ' ')} ({direction})", loc="left",
                     fontsize=6)
        unit = " ".join(u for u in (f"×1e{round(np.log10(scale))}" if scale != 1 else "",
                                    (units or {}).get(metric) or "") if u)
        ax.set_xlabel(f"regret ({unit})" if unit else "regret", fontsize=5.5)
        for i, value in enumerate(worst):
            if not np.isfinite(value):
                ax.text(0, i, " no value on any draw", va="center", fontsize=4.5, color="0.4")
        if np.nanmax(np.nan_to_num(worst), initial=0) == 0:
            ax.text(0.5, 0.5, "all strategies tied", transform=ax.transAxes, ha="center", fontsize=6, color="0.3")
    if title:
        fig.suptitle(title + "\nbar: maximum regret over samples (black, name in bold: minimax); tick: mean regret",
                     fontsize=7)
    return fig


def _power_of_thousand(values: np.ndarray) -> float:
    """1, 1e3, 1e6, ... (or 1e-3, ...) so that the largest value reads between 1 and 1000."""
    top = float(np.max(np.abs(values), initial=0.0))
    if top == 0 or 1e-2 <= top < 1e4:
        return 1.0
    return 10.0 ** (3 * int(np.floor(np.log10(top) / 3)))


def _names(metrics: Sequence[str], labels: Mapping[str, str] | None) -> str:
    """The metrics' labels on one line, comma-separated (for a note in a title)."""
    return ", ".join((labels or {}).get(m, m).replace("\n", " ") for m in metrics)
