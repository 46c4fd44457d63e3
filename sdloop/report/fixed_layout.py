"""A fixed layout for small multiples: margins measured on a few representative panels, not on all.

Matplotlib's constrained layout measures the tight box of every axes, twice, and the saved
figure's tight box measures them all again: with 52 panels that cost more than drawing them.
The panels of a block of small multiples share both axes, so every panel of the block has the
same tick labels, and a panel's title is one line of the same font: measuring one panel of each
kind gives every margin. ``place_blocks`` measures, per block, its first panel (y tick labels,
title, offset text), a panel with x tick labels and one without, then sets every axes, heading,
the figure's title and key at positions computed in inches, and sizes the figure to hold them
exactly (``FIXED`` on the figure tells ``plotting.save_figure`` that no tight box is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.transforms import Bbox

FIXED = "sdloop_fixed_layout"  # figure attribute: laid out here; saved whole, without a tight box
PAD = 3 / 72  # inches around each panel's labels (matplotlib's constrained layout pads)
EDGE = 0.02  # inches of white around everything (the ``savefig.pad_inches`` of the house style)


@dataclass
class Block:
    """One block of small multiples: a heading text over ``axes`` laid out in ``ncols`` columns;
    the panels with an index in ``labelled`` show x tick labels (the last panel of each column)."""

    heading: object
    axes: list
    ncols: int
    labelled: set


def _overhang(ax, renderer) -> tuple[float, float, float, float]:
    """How far (inches) the labels of ``ax`` reach beyond its frame: left, bottom, right, top."""
    frame = ax.get_window_extent(renderer)
    tight = ax.get_tightbbox(renderer)
    dpi = ax.figure.dpi
    return (max(frame.x0 - tight.x0, 0) / dpi, max(frame.y0 - tight.y0, 0) / dpi,
            max(tight.x1 - frame.x1, 0) / dpi, max(tight.y1 - frame.y1, 0) / dpi)


def _height(artist, renderer) -> float:
    """Height in inches of a text or legend (0 for none or an empty text)."""
    if artist is None or (hasattr(artist, "get_text") and not artist.get_text()):
        return 0.0
    return artist.get_window_extent(renderer).height / artist.figure.dpi


def place_blocks(fig, blocks: list[Block], axes_height: float, *, title=None, legend=None) -> None:
    """Lay ``blocks`` out top to bottom over the figure's width, ``title`` above them and the figure
    ``legend`` (anchored at the bottom centre) below, and set the figure's height to fit."""
    width = fig.get_figwidth()
    renderer = fig._get_renderer()
    ncols = max(b.ncols for b in blocks)
    guess = (width - 2 * EDGE - 0.5 - (ncols - 1) * 0.3) / ncols  # panel width before measuring
    for block in blocks:  # provisional size: tick spacing depends on the panel's size in inches
        for ax in block.axes:
            ax.set_position(_fraction(fig, Bbox.from_bounds(EDGE + 0.5, 0, guess, axes_height)))
    left = right = gap = 0.0
    below: list[tuple[float, float]] = []  # per block: under a panel with x tick labels, under one without
    above = []
    for block in blocks:
        first = _overhang(block.axes[0], renderer)
        last = _overhang(block.axes[max(block.labelled)], renderer)
        bare = next((i for i in range(len(block.axes)) if i not in block.labelled), None)
        inner = next((i for i in range(1, len(block.axes)) if i % block.ncols), None)
        plain = _overhang(block.axes[bare], renderer) if bare is not None else last
        left = max(left, first[0])
        right = max(right, last[2], first[2])
        gap = max(gap, last[2] + (_overhang(block.axes[inner], renderer)[0] if inner is not None else 0))
        below.append((last[1], plain[1]))
        above.append(max(first[3], plain[3]))
    panel_width = (width - 2 * EDGE - left - right - (ncols - 1) * (gap + 2 * PAD)) / ncols
    # everything placed from the top down, in inches below the figure's top edge
    y = EDGE + (_height(title, renderer) + PAD if title is not None else 0.0)
    panels, headings = [], []
    for block, (under_labels, under_bare), over in zip(blocks, below, above):
        y += _height(block.heading, renderer)
        headings.append((block.heading, y))
        y += PAD
        for start in range(0, len(block.axes), block.ncols):
            top = y + over
            indexes = range(start, min(start + block.ncols, len(block.axes)))
            for i in indexes:
                panels.append((block.axes[i], EDGE + left + (i % block.ncols) * (panel_width + gap + 2 * PAD), top))
            labelled = any(i in block.labelled for i in indexes)
            y = top + axes_height + (under_labels if labelled else under_bare) + 2 * PAD
    y -= 2 * PAD  # no panel below the last row
    if legend is not None:
        y += PAD + _height(legend, renderer)
    height = y + EDGE
    fig.set_size_inches(width, height, forward=False)
    for ax, x, top in panels:
        ax.set_position(_fraction(fig, Bbox.from_bounds(x, height - top - axes_height, panel_width, axes_height)))
    for heading, bottom in headings:
        heading.set_position((EDGE / width, 1 - bottom / height))
    if title is not None:
        title.set_y(1 - EDGE / height)
    if legend is not None:
        inset = legend.borderaxespad * legend._fontsize / 72  # the legend keeps this much off its anchor
        legend.set_bbox_to_anchor(Bbox.from_bounds(0, (EDGE - inset) / height, 1, 1), transform=fig.transFigure)
    setattr(fig, FIXED, True)


def _fraction(fig, box: Bbox) -> Bbox:
    """A box in inches from the figure's bottom-left corner as figure fractions."""
    w, h = fig.get_size_inches()
    return Bbox.from_extents(box.x0 / w, box.y0 / h, box.x1 / w, box.y1 / h)
