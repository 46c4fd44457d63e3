"""XMILE graphical functions read as the standard says before PySD sees them.

A ``<gf>`` may give its x values as ``<xpts>`` (listed) or as ``<xscale min= max=>`` (evenly
spaced). Vensim's and Stella's exports write both for a function with uneven x values (the
scale for the axis, the points for the function); PySD then spaces the points evenly over the
scale and ignores the listed ones, giving wrong values. ``use_listed_points`` drops the
``<xscale>`` of every ``<gf>`` that lists its points, in PySD's parsed tree, so PySD reads the
listed points.
"""

from __future__ import annotations


def use_listed_points(root) -> int:
    """Remove ``<xscale>`` from each ``<gf>`` under ``root`` (an lxml element) that has ``<xpts>``;
    the number of graphical functions changed."""
    changed = 0
    for gf in root.iter("{*}gf"):
        scale = gf.find("{*}xscale")
        if scale is not None and gf.find("{*}xpts") is not None:
            gf.remove(scale)
            changed += 1
    return changed
