"""Line panels that stay readable with many series: the renderer of ``sdloop plot`` and of the
``plot``, ``compare`` and ``lines`` figure kinds.

Every series has its own gray (or colour with ``color``), dash pattern and marker, markers
staggered so that they do not sit on each other. Up to ``LEGEND_MAX`` series get a legend below
the panels; more get direct labels at the line ends, moved apart so that they never overlap and
joined to their line by a thin leader. Beyond ``OVERLAY_MAX`` series, or when more than two
series carry ensemble bands, each series gets a panel of its own (small multiples) with the
others in light gray behind it. Legends and labels stand outside the axes: they never cover data.

A payload is plain data (DataFrames, lists, strings), built by ``sdloop.report.plot_figures``::

    {"panels": [{"title", "ylabel", "series": DataFrame (time x series), "bands": {series: DataFrame
                 p5 p25 p50 p75 p95}, "data": [{"label", "time", "value"}], "threshold": (value, label),
                 "markers": {series: [(time, value, symbol)]}}],
     "labels": {series: text}, "marker_key": [(symbol, text)], "phases", "phases_title",
     "time_label", "title", "style" ("paper" or "slides"), "color", "ncols", "layout" ("auto",
     "overlay" or "multiples")}
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.patches import Patch

from sdloop.report import plotting

LEGEND_MAX = 4  # more series than this: direct labels at the line ends
OVERLAY_MAX = 10  # more than this (or more than two with bands): one panel per series
MARKS_PER_LINE = 6
MULTIPLE_HEIGHT = 0.36  # a small multiple's height, as a share of the style's panel row


def _order(payload: dict) -> list[str]:
    names: dict[str, None] = {}
    for panel in payload["panels"]:
        names.update(dict.fromkeys(map(str, panel["series"].columns)))
    return list(names)


def use_multiples(payload: dict) -> bool:
    layout = payload.get("layout", "auto")
    if layout in ("overlay", "multiples"):
        return layout == "multiples"
    most = max((len(p["series"].columns) for p in payload["panels"]), default=0)
    banded = max((len(p.get("bands") or {}) for p in payload["panels"]), default=0)
    return most > OVERLAY_MAX or banded > 2


def render_plot(payload: dict):
    """A ``matplotlib.figure.Figure`` of the payload (see the module docstring)."""
    style_name = payload.get("style", "paper")
    names = _order(payload)
    looks = dict(zip(names, plotting.series_styles(len(names), color=bool(payload.get("color")))))
    labels = {n: payload.get("labels", {}).get(n, n.replace("_", " ")) for n in names}
    panels = payload["panels"]
    if use_multiples(payload):
        return _render_multiples(payload, names, looks, labels)
    width, height = plotting.page_size(style_name)
    ncols = max(1, min(payload.get("ncols") or (1 if len(panels) == 1 else 2), len(panels)))
    phases = payload.get("phases") or ()
    own = bool(payload.get("own_looks"))  # each panel its own series: labelled in the panel
    direct = own or len(names) > LEGEND_MAX
    with plotting.style(style_name):
        fig, axes = plotting.panel_grid(len(panels), ncols=ncols, width=width, height=height)
        for ax, panel in zip(axes, panels):
            if own:
                columns = [str(c) for c in panel["series"].columns]
                looks = dict(zip(columns, plotting.series_styles(len(columns), color=bool(payload.get("color")))))
                labels = {c: c for c in columns}
            _draw_panel(ax, panel, looks, labels, phases, payload.get("time_label", "Time"),
                        direct and len(panel["series"].columns) > 1, None)
        _key(fig, payload, names, looks, labels, legend=not direct)
        _title(fig, payload, style_name)
    return fig


def _title(fig, payload: dict, style_name: str) -> None:
    if payload.get("title"):
        fig.suptitle(payload["title"], fontsize=8 if style_name == "paper" else 14)


def _render_multiples(payload: dict, names: list[str], looks: dict, labels: dict):
    """Small multiples: per panel of the payload a block of panels, one per series (the others gray
    behind it), sharing axes; the block headed by the panel's title. Laid out by
    ``fixed_layout.place_blocks`` (margins measured on a few panels, not on every one)."""
    from matplotlib.figure import Figure

    from sdloop.report.fixed_layout import Block, place_blocks

    style_name = payload.get("style", "paper")
    width, height = plotting.page_size(style_name)
    ncols = min(4, len(names))
    n = len(names)
    labelled = set(range(max(n - ncols, 0), n))  # the last panel of each column: x tick labels and time label
    blocks = []
    with plotting.style(style_name):
        fig = Figure(figsize=(width, height), dpi=plotting.PNG_DPI)  # text measured at the PNG's resolution
        for letter, panel in zip("abcdefghijklmnopqrstuvwxyz", payload["panels"]):
            axes = _shared_axes(fig, n, ncols, labelled)
            index = panel["series"].index
            if len(index):  # shared: once for the block (set per panel, it autoscaled every sibling again)
                axes[0].set_xlim(float(index.min()), float(index.max()))
            for i, ax in enumerate(axes):
                one = {**panel, "title": labels[names[i]], "ylabel": ""}
                _draw_panel(ax, one, looks, labels, payload.get("phases") or (),
                            payload.get("time_label", "Time") if i in labelled else "", False, names[i],
                            xlim=False)
            heading = panel.get("ylabel") or panel.get("title") or ""
            if panel.get("title") and panel["title"] not in heading:
                heading = f"{panel['title']}: {heading}"
            text = fig.text(0, 0, f"({letter}) {heading}", ha="left", va="bottom", fontweight="bold",
                            fontsize=plotting.HOUSE_STYLE["axes.titlesize"] if style_name == "paper" else 13)
            blocks.append(Block(text, axes, ncols, labelled))
        _key(fig, payload, [], looks, labels, legend=False)
        _title(fig, payload, style_name)
        place_blocks(fig, blocks, height * MULTIPLE_HEIGHT, title=fig._suptitle,
                     legend=fig.legends[-1] if fig.legends else None)
    return fig


def _shared_axes(fig, n: int, ncols: int, labelled: set) -> list:
    """``n`` axes sharing both axes (placed later): y tick labels on the first column only, x tick
    labels on the panels in ``labelled``; what ``subplots(sharex=True, sharey=True)`` makes,
    without axes for the empty cells."""
    axes = []
    for i in range(n):
        first = axes[0] if axes else None
        ax = fig.add_axes((0, 0, 1, 1), sharex=first, sharey=first)
        ax.tick_params(labelleft=i % ncols == 0, labelbottom=i in labelled)
        axes.append(ax)
    return axes


def _draw_panel(ax, panel: dict, looks: dict, labels: dict, phases, time_label: str, direct: bool,
                front: str | None, *, xlim: bool = True) -> None:
    frame: pd.DataFrame = panel["series"]
    n = max(len(frame.index), 1)
    step = max(n // MARKS_PER_LINE, 1)
    columns = [str(c) for c in frame.columns]
    times = np.asarray(frame.index, dtype=float)  # plain arrays: matplotlib looks up no unit converter
    behind = []  # the other series of a small multiple, in light gray behind the front one
    for i, name in enumerate(columns):
        look = looks[name]
        values = frame.iloc[:, i].to_numpy(dtype=float)
        if front is not None and name != front:
            behind.append(values)
            continue
        band = (panel.get("bands") or {}).get(name)
        if band is not None and len(band):
            ax.fill_between(band.index, band["p5"], band["p95"], color=look["color"], alpha=0.12, lw=0, zorder=2)
            ax.fill_between(band.index, band["p25"], band["p75"], color=look["color"], alpha=0.25, lw=0, zorder=2)
            ax.plot(band.index, band["p50"], color=look["color"], lw=0.6, ls=(0, (1, 1)), zorder=3)
        offset = (i * step) // max(len(columns), 1)
        ax.plot(times, values, color=look["color"], linestyle=look["linestyle"],
                marker=look["marker"], markevery=(offset, step), ms=2.8, markerfacecolor="white",
                markeredgewidth=0.7, zorder=4, label=labels[name])
        for time, value, symbol in (panel.get("markers") or {}).get(name, []):
            ax.plot([time], [value], marker=symbol, ms=4.2, color=look["color"], markerfacecolor=look["color"],
                    markeredgecolor="white", markeredgewidth=0.5, linestyle="none", zorder=5)
    _draw_behind(ax, times, behind)
    for points in panel.get("data") or []:
        ax.plot(points["time"], points["value"], linestyle="none", marker="o", ms=2.6, color="0.0",
                markerfacecolor="0.0", zorder=6)
    if xlim and len(frame.index):
        ax.set_xlim(float(frame.index.min()), float(frame.index.max()))
    if phases:
        plotting.shade_phases(ax, phases, label=False)
    threshold = panel.get("threshold")
    if threshold is not None:
        value, text = threshold
        ax.axhline(value, color="0.5", lw=0.6, ls=":", zorder=1)
        if text:
            ax.annotate(f" {text}", (0, value), xycoords=("axes fraction", "data"), va="bottom", fontsize=5.5,
                        color="0.35")
    ax.set_ylabel(textwrap.fill(panel.get("ylabel") or "", 34))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], integer=True))
    ax.set_xlabel(time_label)
    if panel.get("title"):
        ax.set_title(panel["title"], loc="left")
    if direct:
        direct_labels(ax, frame, looks, labels)


def _draw_behind(ax, index, series: list) -> None:
    """Lines in light gray behind the others: one collection (one artist instead of one per line:
    the same pixels, drawn in the same order), or plain lines where a series has gaps."""
    if not series:
        return
    x = np.asarray(index, dtype=float)
    ys = [np.asarray(values, dtype=float) for values in series]
    if not np.isfinite(x).all() or not all(np.isfinite(y).all() for y in ys):
        for y in ys:
            ax.plot(x, y, color="0.82", lw=0.6, linestyle="-", zorder=1)
        return
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection([np.column_stack([x, y]) for y in ys], colors="0.82", linewidths=0.6,
                                     linestyles="-", capstyle="projecting", joinstyle="round", zorder=1))


def spread(positions: np.ndarray, gap: float, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Positions moved apart by at least ``gap`` within [low, high], order kept, as little as possible."""
    order = np.argsort(positions, kind="stable")
    y = np.clip(np.asarray(positions, dtype=float)[order], low, high)
    for i in range(1, len(y)):
        y[i] = max(y[i], y[i - 1] + gap)
    if len(y) and y[-1] > high:
        y[-1] = high
        for i in range(len(y) - 2, -1, -1):
            y[i] = min(y[i], y[i + 1] - gap)
    out = np.empty_like(y)
    out[order] = y
    return out


def direct_labels(ax, frame: pd.DataFrame, looks: dict, labels: dict) -> None:
    """Each series' name just right of its last value, spread so that no two labels overlap."""
    ax.set_ylim(*ax.get_ylim())
    lo, hi = ax.get_ylim()
    last = frame.ffill().iloc[-1].to_numpy(dtype=float)
    ends = (np.where(np.isfinite(last), last, lo) - lo) / ((hi - lo) or 1.0)
    fontsize = plotting.HOUSE_STYLE["legend.fontsize"] if ax.figure.get_figwidth() < 9 else 10
    rows = ax.get_gridspec().get_geometry()[0]
    axes_points = ax.figure.get_figheight() * 72 / rows * 0.72  # about the height of the axes, in points
    gap = fontsize * 1.15 / axes_points
    placed = spread(ends, gap, 0.0, 1.0)
    for i, name in enumerate(map(str, frame.columns)):
        look = looks[name]
        ax.annotate(labels[name], xy=(1.0, ends[i]), xycoords="axes fraction", xytext=(1.045, placed[i]),
                    clip_on=False,  # else the tight box of the saved figure leaves the label out, cut off
                    textcoords="axes fraction", va="center", ha="left", fontsize=fontsize, color=look["color"]
                    if look["color"] not in plotting.GRAYS[2:] else "0.45",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.6", "shrinkA": 0, "shrinkB": 1},
                    annotation_clip=False)
        ax.plot([1.02], [placed[i]], transform=ax.transAxes, marker=look["marker"], ms=2.8, color=look["color"],
                markerfacecolor="white", markeredgewidth=0.7, clip_on=False, linestyle="none")


def _key(fig, payload: dict, names: list[str], looks: dict, labels: dict, *, legend: bool) -> None:
    """One key below the panels: series (when not labelled directly), bands, data, markers, phases."""
    handles = []
    if legend and len(names) > 1:
        handles += [Line2D([], [], color=looks[n]["color"], linestyle=looks[n]["linestyle"],
                           marker=looks[n]["marker"], ms=2.8, markerfacecolor="white", label=labels[n]) for n in names]
    panels = payload["panels"]
    if any(p.get("bands") for p in panels):
        handles += [Patch(color="0.3", alpha=0.25, lw=0, label="50% of draws"),
                    Patch(color="0.3", alpha=0.12, lw=0, label="90% of draws"),
                    Line2D([], [], color="0.3", lw=0.6, ls=(0, (1, 1)), label="median of draws")]
    seen = {}
    for panel in panels:
        for points in panel.get("data") or []:
            seen.setdefault(points["label"], None)
    handles += [Line2D([], [], linestyle="none", marker="o", ms=2.6, color="0.0", label=f"data: {label}")
                for label in seen]
    handles += [Line2D([], [], marker=symbol, color="0.2", markeredgecolor="white", linestyle="none", ms=4.2,
                       label=text) for symbol, text in payload.get("marker_key") or []]
    phases = payload.get("phases") or ()
    if phases:
        plotting.phase_legend(fig, phases, payload.get("phases_title", ""), extra=handles)
    elif handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=legend_columns(handles, fig), frameon=False)


def legend_columns(handles, fig, most: int = 4) -> int:
    """As many columns as fit the figure's width with the longest label (a legend wider than the
    figure would be cut off)."""
    import matplotlib as mpl

    size = mpl.rcParams["legend.fontsize"]
    size = size if isinstance(size, (int, float)) else 6.0
    longest = max(len(h.get_label()) for h in handles)
    fits = int(fig.get_figwidth() * 72 / ((longest * 0.58 + 4.5) * size))
    return max(1, min(most, fits, len(handles)))
