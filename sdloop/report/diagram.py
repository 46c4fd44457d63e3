"""Stock-and-flow diagrams for papers, drawn from the layout ``sdloop sketch`` writes.

Stocks are boxes, flows double-line pipes with a valve and their name, clouds where a flow
leaves or enters the model, auxiliaries and constants their names, shadows of variables
drawn in another view ``<gray>``, causal links thin curved arrows. With named loops, the
links and pipes on them are drawn dark and the rest light, and each loop's id (R1, B2, ...)
stands at the middle of its variables. Grayscale, 183 mm wide (house style), PDF and
300-dpi PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

from sdloop.lang.sketch import Arrow, Element, View
from sdloop.report.plotting import DOUBLE_COLUMN, save_figure, style

MIN_FONT = 5.0          # points: a view that would need smaller text is too large for one figure
MAX_FONT = 7.0
POINTS_PER_CHAR = 0.55  # average width of a character, in units of the font size
LIGHT, DARK = "0.62", "0.05"


def font_size(view: View, width_in: float = DOUBLE_COLUMN) -> float:
    """The font size (points) at which ``view``'s names fill their boxes at ``width_in``."""
    from sdloop.structure.layout import CHAR_W

    x0, _, x1, _ = view.bounds()
    points_per_pixel = width_in * 72 / (x1 - x0 + 20)
    return min(MAX_FONT, CHAR_W * points_per_pixel / POINTS_PER_CHAR)


def draw_view(view: View, *, highlight: set[tuple[str, str]] | None = None,
              loop_labels: Sequence[tuple[str, float, float]] = (), title: str | None = None, ax=None):
    """Draw ``view`` on ``ax`` (a new 183 mm wide figure by default); returns the axes.

    ``highlight`` holds (source, target) names of links and (flow, stock) pairs of pipes on
    the loops to emphasize; ``loop_labels`` are (id, x, y) marks placed in view coordinates.
    """
    x0, y0, x1, y1 = view.bounds()
    pad = 10
    if ax is None:
        width = DOUBLE_COLUMN
        height = width * (y1 - y0 + 2 * pad) / (x1 - x0 + 2 * pad) + (0.25 if title else 0)
        _, ax = plt.subplots(figsize=(width, height))
        ax.set_position((0, 0, 1, 1 if not title else 1 - 0.25 / height))
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y1 + pad, y0 - pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fs = font_size(view)
    names = {e.id: e.name for e in view.elements}
    names.update({e.id: view.element(e.id + 1).name for e in view.elements if e.kind == "valve"})
    boxes = {e.id: _box(e) for e in view.elements}
    for box in boxes.values():
        ax.add_patch(box)
    on_loop = (lambda a: (names[a.source], names[a.target]) in highlight) if highlight is not None else None
    for arrow in view.arrows:
        if arrow.pipe:
            _pipe(ax, view, arrow, on_loop)
    for arrow in view.arrows:
        if not arrow.pipe:
            dark = on_loop is None or on_loop(arrow)
            ax.add_patch(FancyArrowPatch(
                posA=_xy(view.element(arrow.source)), posB=_xy(view.element(arrow.target)),
                patchA=boxes[arrow.source], patchB=boxes[arrow.target], shrinkA=1, shrinkB=1.5,
                connectionstyle="arc3,rad=-0.12", arrowstyle="-|>,head_length=2.6,head_width=1.3",
                lw=0.8 if dark and on_loop is not None else 0.5,
                color=DARK if dark and on_loop is not None else ("0.25" if on_loop is None else LIGHT),
                zorder=2))
    for element in view.elements:
        _element(ax, element, fs)
    for loop_id, x, y in loop_labels:
        ax.text(x, y, loop_id, ha="center", va="center", fontsize=fs + 0.5, fontweight="bold", zorder=6,
                bbox=dict(boxstyle="circle,pad=0.25", fc="white", ec=DARK, lw=0.7))
    if title:
        ax.set_title(title, fontsize=MAX_FONT + 0.5, loc="left")
    return ax


def _xy(e: Element) -> tuple[float, float]:
    return e.x, e.y


def _box(e: Element) -> Rectangle:
    """The element's outline (drawn for stocks; used to clip arrows for the rest)."""
    visible = e.kind == "stock"
    return Rectangle((e.x - e.w, e.y - e.h), 2 * e.w, 2 * e.h, fc="white" if visible else "none",
                     ec=DARK if visible else "none", lw=0.8, zorder=3)


def _element(ax, e: Element, fs: float) -> None:
    if e.kind == "valve":
        return
    if e.kind == "cloud":
        for dx, dy, r in ((-4.5, 1.5, 4.5), (0, -2, 5.5), (4.5, 1.5, 4.5)):
            ax.add_patch(plt.Circle((e.x + dx, e.y + dy), r, fc="0.88", ec="0.45", lw=0.5, zorder=4))
        return
    color = "0.45" if e.kind == "shadow" else "black"
    text = "\n".join(e.lines or (e.name,))
    ax.text(e.x, e.y, text, ha="center", va="center", fontsize=fs, color=color, zorder=5, linespacing=1.05,
            fontweight="bold" if e.kind == "stock" else "normal",
            bbox=None if e.kind == "stock" else dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.85))


def _pipe(ax, view: View, arrow: Arrow, on_loop) -> None:
    """Half a flow's pipe, valve to one end: a double line, an arrowhead into what it fills."""
    valve, end = view.element(arrow.source), view.element(arrow.target)
    start, stop = np.array(_xy(valve)), np.array(_xy(end))
    direction = stop - start
    length = float(np.hypot(*direction))
    if length == 0:
        return
    unit = direction / length
    reach = _edge_distance(end, -unit)
    stop = stop - unit * reach
    dark = on_loop is None or on_loop(arrow)
    color = DARK if dark else LIGHT
    width = 2.6
    ax.plot(*zip(start, stop - unit * (5 if arrow.head else 0)), color=color, lw=width, ls="-", solid_capstyle="butt", zorder=3)
    ax.plot(*zip(start, stop - unit * (5 if arrow.head else 0)), color="white", lw=width - 1.5, ls="-",
            solid_capstyle="butt", zorder=3)
    if arrow.head:
        normal = np.array([-unit[1], unit[0]])
        tip = stop
        back = stop - unit * 7
        ax.add_patch(Polygon([tip, back + normal * 4.5, back - normal * 4.5], closed=True, fc="white", ec=color,
                             lw=0.7, zorder=3))
    # the valve: two triangles meeting on the pipe, drawn once from the side the flow fills
    if arrow.head:
        normal = np.array([-unit[1], unit[0]])
        a, b = start - unit * 5, start + unit * 5
        ax.add_patch(Polygon([a + normal * 5, a - normal * 5, b + normal * 5, b - normal * 5], closed=True,
                             fc="white", ec=color, lw=0.7, zorder=4))


def _edge_distance(e: Element, toward: np.ndarray) -> float:
    """Distance from an element's center to its outline in direction ``toward``."""
    tx = e.w / abs(toward[0]) if abs(toward[0]) > 1e-9 else np.inf
    ty = e.h / abs(toward[1]) if abs(toward[1]) > 1e-9 else np.inf
    return float(min(tx, ty))


def save_diagram(ax, path_stem: str | Path) -> list[Path]:
    """Save the diagram holding ``ax`` as ``<stem>.pdf`` and ``<stem>.png`` (300 dpi)."""
    paths = save_figure(ax.figure, path_stem)
    plt.close(ax.figure)
    return paths


__all__ = ["draw_view", "font_size", "save_diagram", "style", "MIN_FONT"]
