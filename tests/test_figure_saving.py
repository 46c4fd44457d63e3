"""Saving a figure the fast way (ticks worked out once, the layout without a drawing pass, gray
PNGs stored as 8-bit gray) writes the same pictures as matplotlib's own tight-box ``savefig``."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sdloop.report import plotting
from sdloop.report.line_panels import render_plot


def _payload(color: bool) -> dict:
    time = np.arange(2006, 2035.25, 0.25)
    names = [f"strategy_{i}" for i in range(13)]  # more than OVERLAY_MAX: small multiples, shared axes
    series = {name: np.sin(time / (3 + i)) * 10 ** (i % 4) for i, name in enumerate(names)}
    import pandas as pd

    frame = pd.DataFrame(series, index=time)
    panels = [{"var": v, "title": v, "ylabel": f"{v} (-)", "series": frame * k, "threshold": (0.5, "threshold")}
              for k, v in ((1, "Capability"), (1e4, "Cost"))]
    return {"panels": panels, "title": "thirteen strategies", "color": color, "time_label": "Year"}


def _reference(fig, stem):
    """What save_figure wrote before: a drawing pass for the layout, then savefig with the tight box."""
    fig.set_dpi(plotting.PNG_DPI)
    fig.draw_without_rendering()
    fig.set_layout_engine(None)
    bbox = fig.get_tightbbox().padded(plotting.HOUSE_STYLE["savefig.pad_inches"])
    fig.savefig(stem.with_suffix(".png"), dpi=plotting.PNG_DPI, bbox_inches=bbox)
    return stem.with_suffix(".png")


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGBA"))


def test_a_gray_figure_is_saved_as_an_8_bit_gray_png_with_the_same_pixels(tmp_path):
    png = plotting.save_figure(render_plot(_payload(color=False)), tmp_path / "fast")[1]
    reference = _reference(render_plot(_payload(color=False)), tmp_path / "reference")
    assert Image.open(png).mode == "L"
    assert np.allclose(Image.open(png).info["dpi"], plotting.PNG_DPI, atol=0.01)
    assert np.array_equal(_pixels(png), _pixels(reference))
    assert (tmp_path / "fast.pdf").stat().st_size > 0


def test_a_colour_figure_keeps_its_colours(tmp_path):
    png = plotting.save_figure(render_plot(_payload(color=True)), tmp_path / "fast")[1]
    reference = _reference(render_plot(_payload(color=True)), tmp_path / "reference")
    assert Image.open(png).mode == "RGBA"
    pixels = _pixels(png)
    assert (pixels[..., 0] != pixels[..., 2]).any()  # colour is there
    assert np.array_equal(pixels, _pixels(reference))


def _drawn(axis) -> list:
    """(location, label) of the ticks an axis draws: those inside its view interval."""
    axis.get_ticklabels()  # ticks updated to the current view
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    return [(round(float(t.get_loc()), 9), t.label1.get_text()) for t in axis.get_major_ticks()
            if lo - span <= t.get_loc() <= hi + span and t.label1.get_visible()]


def test_memoized_and_fixed_ticks_are_the_ones_the_locators_give(tmp_path):
    def labels(fig):
        return [_drawn(ax.yaxis) + _drawn(ax.xaxis) + [ax.yaxis.get_offset_text().get_text()] for ax in fig.axes]

    plain = render_plot(_payload(color=False))
    plain.set_dpi(plotting.PNG_DPI)
    plain.draw_without_rendering()
    fast = render_plot(_payload(color=False))
    plotting.save_figure(fast, tmp_path / "fast")
    assert labels(fast) == labels(plain)
    assert sum(any(text for _, text in row[:-1]) for row in labels(fast)) >= 2  # not all empty
