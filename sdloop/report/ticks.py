"""Ticks computed once per axis state instead of on every layout and drawing pass.

Laying out and saving a figure asks every axis for its ticks dozens of times (each tight box,
title position, spine extent and drawing pass runs the locator and formats the labels again),
for the same answer: with dozens of panels that is most of the cost of a figure.
``memoize_ticks`` wraps each axis' locator and formatter so that the same view limits give the
same ticks without computing them again; ``freeze_ticks`` fixes them where the layout put them.
Either way the ticks and labels drawn are the ones the original locator and formatter give.
"""

from __future__ import annotations

from matplotlib.ticker import FixedFormatter, FixedLocator, Formatter, Locator, MaxNLocator, NullLocator


class MemoLocator(Locator):
    """A ``MaxNLocator`` (or ``AutoLocator``) whose ticks are kept per view interval and tick space:
    the only things its answer depends on."""

    def __init__(self, inner: MaxNLocator):
        self.inner = inner
        self.memo: dict = {}

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def __call__(self):
        axis = self.inner.axis
        if axis is None:
            return self.inner()
        vmin, vmax = axis.get_view_interval()
        space = axis.get_tick_space() if self.inner._nbins == "auto" else None
        key = (float(vmin), float(vmax), space)
        if key not in self.memo:
            self.memo[key] = self.inner()
        return self.memo[key]

    def tick_values(self, vmin, vmax):
        return self.inner.tick_values(vmin, vmax)

    def view_limits(self, vmin, vmax):
        return self.inner.view_limits(vmin, vmax)


class MemoFormatter(Formatter):
    """A formatter that formats the same tick locations once: a repeated call with the locations of
    the last call returns the last labels (the inner formatter's state, such as the offset text,
    is still the one those locations set)."""

    def __init__(self, inner: Formatter):
        self.inner = inner
        self.last: tuple | None = None
        self.labels: list = []

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def format_ticks(self, values):
        axis = self.inner.axis
        view = tuple(map(float, axis.get_view_interval())) if axis is not None else None
        key = (tuple(float(v) for v in values), view)
        if key != self.last:
            self.labels = self.inner.format_ticks(values)
            self.last = key
        return self.labels

    def __call__(self, x, pos=None):
        return self.inner(x, pos)

    def format_data(self, value):
        return self.inner.format_data(value)

    def format_data_short(self, value):
        return self.inner.format_data_short(value)

    def get_offset(self):
        return self.inner.get_offset()

    def set_locs(self, locs):
        self.last = None
        self.inner.set_locs(locs)


def _axes(fig):
    return [ax for ax in fig.get_axes() if ax.name == "rectilinear" and not hasattr(ax, "_colorbar")]


def memoize_ticks(fig) -> None:
    """Wrap the major locators (``MaxNLocator`` family) and formatters of every plain axes of
    ``fig`` so that repeated passes reuse the ticks (shared axes share one wrapper)."""
    for ax in _axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            ticker = axis.major
            if isinstance(ticker.locator, MaxNLocator):
                ticker.locator = MemoLocator(ticker.locator)
                ticker.locator.set_axis(axis)
            if not isinstance(ticker.formatter, (MemoFormatter, FixedFormatter)):
                ticker.formatter = MemoFormatter(ticker.formatter)
                ticker.formatter.set_axis(axis)


def freeze_ticks(fig) -> None:
    """Fix the ticks and tick labels of every plain axes where the last layout put them.

    Every later pass (the tight box, the PDF, the PNG) would otherwise run each axis' locator
    and formatter again, several times per axis, for the same result. The files are the same."""
    for ax in _axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            for ticker, setter in ((axis.major, axis.set_major_locator), (axis.minor, axis.set_minor_locator)):
                if isinstance(ticker.locator, NullLocator):
                    continue  # no ticks: a fixed empty list would be worked out again on every pass
                if isinstance(ticker.locator, FixedLocator) and isinstance(ticker.formatter, FixedFormatter):
                    continue  # already fixed (possibly shared with an axis done before)
                locs = ticker.locator()
                labels = ticker.formatter.format_ticks(locs)
                locs, labels = _in_view(axis, locs, labels)
                fixed = FixedFormatter(labels)
                fixed.set_offset_string(ticker.formatter.get_offset())
                setter(FixedLocator(locs))
                (axis.set_major_formatter if ticker is axis.major else axis.set_minor_formatter)(fixed)
    for ax in _axes(fig):
        for axis in (ax.xaxis, ax.yaxis):
            _keep_ticks(axis)


def _in_view(axis, locs, labels) -> tuple[list, list]:
    """The ticks that are drawn: those inside the view interval (``Axis._update_ticks`` draws no
    other), each with the label the formatter gave it among all of them (a tick object is made
    for every location, drawn or not: a third of them lay outside)."""
    import numpy as np

    try:
        from matplotlib.transforms import _interval_contains_close  # what _update_ticks tests with
    except ImportError:  # another matplotlib: keep every tick
        return list(locs), list(labels)
    transform = axis.get_transform()
    interval = transform.transform(sorted(axis.get_view_interval()))
    keep = [i for i, loc in enumerate(transform.transform(np.asarray(locs, dtype=float)))
            if _interval_contains_close(interval, loc)]
    return [locs[i] for i in keep], [labels[i] for i in keep]


def _keep_ticks(axis) -> None:
    """Place the (fixed) ticks of ``axis`` once and hand the same ticks to every later pass.

    ``Axis._update_ticks`` places every tick and sets every label again each time the axis is
    measured or drawn (a dozen times per pass: tight boxes, spines, titles, the axis itself);
    with the ticks fixed and the layout done that gives the same ticks each time."""
    update = getattr(type(axis), "_update_ticks", None)
    if update is None:  # a matplotlib without it: nothing to keep
        return
    ticks = update(axis)
    axis._update_ticks = lambda: ticks
