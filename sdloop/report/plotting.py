"""Figures for papers, in one house style (the report layer is the only one that imports matplotlib).

House style: panels sized for a journal column (89 mm single, 183 mm double width),
lines told apart by dash pattern and gray level so they survive grayscale printing,
axis labels carrying the model's units, periods (a project's ``[[phases]]``) shaded, and
every figure saved as vector PDF plus a 300-dpi PNG. Figures are built as
``matplotlib.figure.Figure`` objects without pyplot, so importing or using this module changes
no global matplotlib state (the backend of a notebook is left alone).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib as mpl
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure

from matplotlib.transforms import Bbox

from sdloop.report.fixed_layout import FIXED
from sdloop.report.output import atomic_file
from sdloop.report.ticks import freeze_ticks, memoize_ticks

MM = 1 / 25.4
SINGLE_COLUMN = 89 * MM
DOUBLE_COLUMN = 183 * MM
PANEL_HEIGHT = 52 * MM

# Gray levels and dash patterns: distinguishable in print and in grayscale.
LINE_STYLES = [
    {"color": "0.0", "linestyle": "-"},
    {"color": "0.35", "linestyle": "--"},
    {"color": "0.55", "linestyle": "-."},
    {"color": "0.0", "linestyle": ":"},
    {"color": "0.35", "linestyle": (0, (5, 1, 1, 1, 1, 1))},
    {"color": "0.55", "linestyle": (0, (1, 1))},
    {"color": "0.2", "linestyle": (0, (8, 2))},
    {"color": "0.45", "linestyle": (0, (3, 1, 3, 3))},
    {"color": "0.65", "linestyle": "-"},
    {"color": "0.25", "linestyle": (0, (2, 2, 6, 2))},
]

HOUSE_STYLE = {
    "font.size": 7,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "none",
    "legend.facecolor": "white",
    "legend.borderpad": 0.3,
    "lines.linewidth": 1.1,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(
        color=[s["color"] for s in LINE_STYLES], linestyle=[s["linestyle"] for s in LINE_STYLES]
    ),
    "pdf.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


# Slides: the same look, larger type and thicker lines for a 16:9 screen.
SLIDES_STYLE = {**HOUSE_STYLE, "font.size": 12, "axes.titlesize": 12.5, "axes.labelsize": 12,
                "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 10.5, "lines.linewidth": 2.0,
                "axes.linewidth": 0.9}
SLIDES_WIDTH = 254 * MM  # a 10-inch-wide 16:9 slide
SLIDES_PANEL_HEIGHT = 75 * MM

# Per-series looks for figures with many lines: gray level, dash pattern and marker all differ
# between neighbours, so a series is told apart in grayscale by any one of them.
GRAYS = ("0.0", "0.42", "0.64")
DASHES = ("-", (0, (4, 1.6)), (0, (1, 1.2)), (0, (5, 1.2, 1, 1.2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
# Okabe and Ito's palette, told apart by readers with colour-vision deficiencies (--color).
COLORS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")


def series_styles(n: int, *, color: bool = False) -> list[dict]:
    """``n`` distinct looks (``color``, ``linestyle``, ``marker``) for lines drawn together."""
    looks = []
    for i in range(n):
        looks.append({"color": COLORS[i % len(COLORS)] if color else GRAYS[i % len(GRAYS)],
                      "linestyle": DASHES[i % len(DASHES)],  # with 3 grays: 12 distinct pairs
                      "marker": MARKERS[i % len(MARKERS)]})
    return looks


def style(name: str = "paper"):
    """A context manager applying the house style (``paper``) or its ``slides`` variant."""
    return mpl.rc_context(SLIDES_STYLE if name == "slides" else HOUSE_STYLE)


def page_size(name: str = "paper") -> tuple[float, float]:
    """(figure width, height of one panel row) in inches for a style."""
    return (SLIDES_WIDTH, SLIDES_PANEL_HEIGHT) if name == "slides" else (DOUBLE_COLUMN, PANEL_HEIGHT)


def units_label(name: str, units: str | None) -> str:
    """An axis label: the variable name with its units in brackets (Dmnl shown as '-')."""
    if not units or units.strip().lower() in {"dmnl", "1", "nan"}:
        return f"{name} (-)"
    return f"{name} ({units})"


def shade_phases(ax, phases: Sequence = (), *, label: bool = True):
    """Shade periods ((start, end or None, label, gray level), ...) on a time axis; labels at the top."""
    lo, hi = ax.get_xlim()
    for start, end, text, gray in phases:
        end = hi if end is None else end
        if end <= lo or start >= hi:
            continue
        ax.axvspan(max(start, lo), min(end, hi), color=gray, zorder=0, lw=0)
        if label:
            ax.text((max(start, lo) + min(end, hi)) / 2, 0.98, text, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=5, color="0.3")
    ax.set_xlim(lo, hi)
    return ax


def phase_legend(fig, phases: Sequence = (), title: str = "", extra: Sequence = ()):
    """A figure-level key to the shaded periods (after the ``extra`` handles), below the panels."""
    from matplotlib.patches import Patch

    if not phases:
        return fig
    handles = list(extra)
    for start, end, text, gray in phases:
        span = f"{start:g}-{end - 1:g}" if end else f"{start:g}-"
        handles.append(Patch(facecolor=gray, edgecolor="0.6", linewidth=0.4,
                             label=f"{text.replace(chr(10), ' ').replace('- ', '-')} ({span})"))
    from sdloop.report.line_panels import legend_columns

    fig.legend(handles=handles, loc="outside lower center", ncol=legend_columns(handles, fig), frameon=False,
               title=title or None, title_fontsize=6)
    return fig


def plot_lines(frame: pd.DataFrame, columns: Sequence[str], *, ax=None, labels: Sequence[str] | None = None,
               ylabel: str | None = None, title: str | None = None, phases: Sequence = (),
               phase_labels: bool = True, time_label: str = "Time"):
    """Plot columns of a time-indexed frame on one axes; returns the axes."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(SINGLE_COLUMN, PANEL_HEIGHT))
    for column, label in zip(columns, labels or columns):
        ax.plot(frame.index, frame[column], label=label)
    ax.set_xlim(frame.index.min(), frame.index.max())
    if phases:
        shade_phases(ax, phases, label=phase_labels)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, loc="left")
    ax.set_xlabel(time_label)
    if len(columns) > 1:
        ax.legend(loc="best")
    return ax


def panel_grid(n: int, *, ncols: int = 2, width: float = DOUBLE_COLUMN, height: float = PANEL_HEIGHT):
    """A figure with ``n`` panels in a grid sized for a double journal column."""
    nrows = -(-n // ncols)
    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    for letter, ax in zip("abcdefghijklmnopqrstuvwxyz", flat[:n]):
        ax.text(-0.02, 1.02, f"({letter})", transform=ax.transAxes, ha="right", va="bottom",
                fontweight="bold")
    return fig, flat[:n]


PNG_DPI = 300
# No creation date in the PDF: the same figure gives the same bytes, whenever and by whichever
# process it is drawn (figures are drawn in parallel and cached by their data).
PDF_METADATA = {"CreationDate": None}


def save_figure(fig, path_stem: str | Path) -> list[Path]:
    """Save ``fig`` as ``<stem>.pdf`` (vector) and ``<stem>.png`` (300 dpi), atomically.

    The figure is laid out and its tight bounding box found once, for both files: each file
    is then one drawing pass (``savefig`` would otherwise lay out and draw the figure once
    more per file to find the box). Ticks are computed once per axis (``ticks``)."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(PNG_DPI)  # lay out at the resolution the PNG is drawn at: text measured at 100 dpi is
    memoize_ticks(fig)  # narrower, and a long tick label ran off the figure's edge
    engine = fig.get_layout_engine()
    if engine is not None and fig.axes:
        engine.execute(fig)  # the layout alone: a drawing pass would add nothing to the files
    fig.set_layout_engine(None)  # keep this layout
    freeze_ticks(fig)
    if getattr(fig, FIXED, False):  # laid out to fit exactly (fixed_layout): the whole figure
        bbox = Bbox.from_bounds(0, 0, *fig.get_size_inches())
    else:
        bbox = fig.get_tightbbox().padded(HOUSE_STYLE["savefig.pad_inches"])
    written = []
    for ext in (".pdf", ".png"):
        final = stem.with_suffix(ext)
        with atomic_file(final) as tmp:
            if ext == ".pdf":
                fig.savefig(tmp, format="pdf", bbox_inches=bbox, metadata=PDF_METADATA)
            else:
                write_png(fig, tmp, bbox)
        written.append(final)
    pyplot = sys.modules.get("matplotlib.pyplot")  # a figure pyplot made is closed (not imported for one it did not)
    if pyplot is not None and pyplot.fignum_exists(getattr(fig, "number", -1)):
        pyplot.close(fig)
    return written


def write_png(fig, path: Path, bbox) -> None:
    """The figure as a ``PNG_DPI`` PNG of the area ``bbox`` (inches). A figure drawn in grays only
    (the house style) is stored as an 8-bit gray image: the same pixels, a quarter of the data to
    compress (compressing the RGBA image took about a third of drawing it)."""
    import io

    import matplotlib as mpl
    import numpy as np
    from PIL import Image, PngImagePlugin

    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=PNG_DPI, bbox_inches=bbox)
    width, height = int(bbox.width * PNG_DPI), int(bbox.height * PNG_DPI)
    data = raw.getbuffer()
    if len(data) != width * height * 4:  # a size rounded otherwise than expected: let matplotlib write it
        fig.savefig(path, format="png", dpi=PNG_DPI, bbox_inches=bbox)
        return
    rgba = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 4)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"Matplotlib version{mpl.__version__}, https://matplotlib.org/")
    gray = (rgba[..., 3] == 255).all() and (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all()
    image = Image.fromarray(np.ascontiguousarray(rgba[..., 0])) if gray else Image.fromarray(rgba, "RGBA")
    image.save(path, format="png", dpi=(PNG_DPI, PNG_DPI), pnginfo=info)
