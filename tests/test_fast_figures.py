"""The fast figure stage: small multiples laid out once (nothing cut off, no white wasted), figures
drawn by worker processes byte for byte as a serial draw, and a figure drawn again only when
the data it shows changed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from sdloop.report import plotting
from sdloop.report.cache import Cache
from sdloop.report.figures import FigureJob
from sdloop.report.fixed_layout import EDGE, FIXED
from sdloop.report.line_panels import render_plot
from sdloop.report.study_report import save_figures


def _multiples(scale: float = 1.0, n: int = 13, style: str = "paper", phases: bool = True) -> dict:
    time = np.arange(2006, 2035.25, 0.5)
    frame = pd.DataFrame({f"strategy_{i}": scale * np.cos(time / (2 + i)) * 10 ** (i % 3) for i in range(n)},
                         index=time)
    panels = [{"var": v, "title": v, "ylabel": f"{v} (billion yuan per year)", "series": frame * k,
               "threshold": (0.5, "breakthrough threshold") if k == 1 else None,
               "markers": {"strategy_0": [(2010.0, float(frame.iloc[8, 0] * k), "o")]}}
              for k, v in ((1, "Capability"), (1e5, "Cumulative fiscal cost"))]
    payload = {"panels": panels, "title": "IC: thirteen strategies under the baseline scenario",
               "time_label": "Year", "style": style, "marker_key": [("o", "enters scale-up")]}
    if phases:
        payload["phases"] = ((2006, 2015, "R&D", "0.93"), (2015, None, "scale-up", "0.86"))
        payload["phases_title"] = "lifecycle phase"
    return payload


@pytest.mark.parametrize("style,phases", [("paper", True), ("slides", False)])
def test_small_multiples_fit_their_figure_exactly(style, phases):
    """Every label, title, heading and the key lie inside the figure, EDGE from its edges: the
    fixed layout cuts nothing off and leaves no white beyond the house style's pad."""
    fig = render_plot(_multiples(style=style, phases=phases))
    assert getattr(fig, FIXED) and fig.get_layout_engine() is None
    assert len(fig.axes) == 26  # 2 variables x 13 strategies, no axes for empty cells
    fig.set_dpi(plotting.PNG_DPI)
    tight = fig.get_tightbbox()
    width, height = fig.get_size_inches()
    one_pixel = 1 / plotting.PNG_DPI
    for margin in (tight.x0, tight.y0, width - tight.x1, height - tight.y1):
        assert abs(margin - EDGE) < one_pixel, (margin, tight, width, height)


def test_small_multiples_do_not_overlap_and_label_the_outer_panels_only():
    fig = render_plot(_multiples())
    renderer = fig._get_renderer()
    frames = [ax.get_window_extent(renderer) for ax in fig.axes]
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
    for i, a in enumerate(boxes):  # a panel's labels and title stay clear of every other panel
        for j, b in enumerate(frames):
            if i != j:
                assert a.x1 <= b.x0 + 0.5 or b.x1 <= a.x0 + 0.5 or a.y1 <= b.y0 + 0.5 or b.y1 <= a.y0 + 0.5
    first_block = fig.axes[:13]
    with_y = [i for i, ax in enumerate(first_block) if any(t.get_visible() and t.get_text()
                                                            for t in ax.get_yticklabels())]
    with_x = [i for i, ax in enumerate(first_block) if any(t.get_visible() and t.get_text()
                                                            for t in ax.get_xticklabels())]
    assert with_y == [0, 4, 8, 12]  # the first column
    assert with_x == [9, 10, 11, 12]  # the last panel of each column
    headings = [t.get_text() for t in fig.texts]
    assert any(h.startswith("(a) Capability") for h in headings)
    assert any(h.startswith("(b) Cumulative fiscal cost") for h in headings)


def _jobs(scale: float = 1.0) -> list[FigureJob]:
    small = _multiples(scale, n=11, phases=False)
    for panel in small["panels"]:
        panel["series"] = panel["series"].iloc[::6]
    return [FigureJob(f"figures/{name}", "plot", payload) for name, payload in
            (("first", small), ("second", {**small, "title": "another"}),
             ("third", {**small, "panels": small["panels"][:1]}))]


def test_figures_drawn_by_workers_are_byte_identical_to_a_serial_draw(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    save_figures(_jobs(), serial, Cache(enabled=False), {"figures": 0, "drawn": 0}, workers=1)
    time.sleep(1.1)  # a file that records when it was written (a PDF's CreationDate) would now differ
    reused = {"figures": 0, "drawn": 0}
    save_figures(_jobs(), parallel, Cache(enabled=False), reused, workers=2)
    assert reused["drawn"] == 3
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert len(files) == 6  # a PDF and a PNG of each
    assert files == sorted(p.relative_to(parallel) for p in parallel.rglob("*") if p.is_file())
    for name in files:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name


def test_a_figure_is_drawn_again_only_when_its_data_changed(tmp_path):
    cache = Cache(tmp_path / "cache")
    first = {"figures": 0, "drawn": 0}
    save_figures(_jobs(), tmp_path / "one", cache, first, workers=1)
    assert first == {"figures": 0, "drawn": 3}
    again = {"figures": 0, "drawn": 0}
    save_figures(_jobs(), tmp_path / "two", cache, again, workers=1)
    assert again == {"figures": 3, "drawn": 0}  # nothing changed: every figure copied from the cache
    for path in (tmp_path / "one").rglob("*.p*"):
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()
    jobs = _jobs()
    changed = _jobs(scale=1.01)[0]  # the data of one figure edited
    edited = {"figures": 0, "drawn": 0}
    save_figures([changed, *jobs[1:]], tmp_path / "three", cache, edited, workers=2)
    assert edited == {"figures": 2, "drawn": 1}
    assert (tmp_path / "three" / "figures" / "first.png").read_bytes() != \
        (tmp_path / "one" / "figures" / "first.png").read_bytes()
