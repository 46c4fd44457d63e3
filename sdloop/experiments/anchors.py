"""Magnitudes: a model run against published values, one anchor at a time.

An anchors file (TOML) lists ``[[anchor]]`` entries: a case, a model variable, how to
aggregate it per calendar year (``mean`` over the year, its value at the ``end`` of the year,
or the ``cumulative`` integral from ``from`` to the end of the year), a ``scale`` (published
units per model unit) and the published values: a CSV of the shared indicator format
(``year,value,...``; empty values skipped) or numbers written in the file (``value`` and
``year``, or ``points = {YEAR = VALUE}``) with their ``source``. ``comparable = false`` marks a
published figure on another definition (with its ``reason``): it is shown, not held to a band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sdloop.errors import OverrideError
from sdloop.experiments.overrides import read_toml

AGGREGATES = ("mean", "end", "cumulative")


@dataclass(frozen=True)
class Anchor:
    """One published series (or number) and the model variable it is compared with."""

    case: str
    name: str
    variable: str
    points: Mapping[int, float]
    scale: float = 1.0
    aggregate: str = "mean"
    start: float | None = None  # for cumulative: integrate from here
    comparable: bool = True
    reason: str = ""
    source: str = ""


@dataclass(frozen=True)
class Anchors:
    strategy: str
    last_year: int
    anchors: tuple[Anchor, ...] = field(default_factory=tuple)
    scenarios: Mapping[str, str] = field(default_factory=dict)  # case -> scenario of its historical run

    def scenario(self, case: str) -> str:
        return self.scenarios.get(case, "baseline")

    def for_case(self, case: str) -> list[Anchor]:
        return [a for a in self.anchors if a.case == case]

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(a.case for a in self.anchors))


def _csv_points(path: Path, years: Sequence[int] | None, last_year: int) -> dict[int, float]:
    table = pd.read_csv(path)
    table = table[pd.to_numeric(table["value"], errors="coerce").notna()]
    points = {int(y): float(v) for y, v in zip(table["year"], table["value"]) if int(y) <= last_year}
    if years is not None:
        missing = [y for y in years if y not in points]
        if missing:
            raise OverrideError(f"no published value for years {missing}", file=path)
        points = {y: points[y] for y in years}
    return points


def load_anchors(path: str | Path) -> Anchors:
    """Read an anchors file; published CSVs are read from its ``data_dir``."""
    path = Path(path)
    data, _ = read_toml(path)
    data_dir = (path.parent / data.get("data_dir", ".")).resolve()
    last_year = int(data.get("last_year", 2022))
    anchors = []
    for i, entry in enumerate(data.get("anchor", []), 1):
        where = f"anchor {i} ({entry.get('name', '?')})"
        aggregate = entry.get("aggregate", "mean")
        if aggregate not in AGGREGATES:
            raise OverrideError(f"{where}: aggregate must be one of {', '.join(AGGREGATES)}", file=path)
        if "file" in entry:
            points = _csv_points(data_dir / entry["file"], entry.get("years"), last_year)
            source = entry["file"]
        elif "points" in entry:
            points = {int(y): float(v) for y, v in entry["points"].items()}
            source = entry.get("source", "")
        elif "value" in entry:
            points = {int(entry["year"]): float(entry["value"])}
            source = entry.get("source", "")
        else:
            raise OverrideError(f"{where}: needs a file, points or a value", file=path)
        anchors.append(Anchor(entry["case"], entry["name"], entry["variable"], points, float(entry.get("scale", 1)),
                              aggregate, entry.get("from"), bool(entry.get("comparable", True)),
                              entry.get("reason", ""), source))
    return Anchors(data.get("strategy", "historical"), last_year, tuple(anchors), dict(data.get("scenarios", {})))


def model_value(frame: pd.DataFrame, anchor: Anchor, year: int) -> float:
    """The anchor's variable for one calendar year, aggregated and scaled to published units."""
    series = frame[anchor.variable]
    times = series.index.to_numpy(dtype=float)
    values = series.to_numpy(dtype=float)
    if anchor.aggregate == "mean":
        inside = (times >= year) & (times < year + 1)
        value = float(values[inside].mean())
    elif anchor.aggregate == "end":
        value = float(np.interp(year + 1, times, values))
    else:
        start = float(anchor.start if anchor.start is not None else times[0])
        grid = times[(times > start) & (times < year + 1)]
        grid = np.concatenate([[start], grid, [year + 1]])
        value = float(np.trapezoid(np.interp(grid, times, values), grid))
    return value * anchor.scale


def magnitude_table(anchors: Anchors, run_case: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """One row per anchor and year: published, model, ratio (model / published)."""
    rows = []
    for case in anchors.cases:
        frame = run_case(case)
        for anchor in anchors.for_case(case):
            for year, published in sorted(anchor.points.items()):
                model = model_value(frame, anchor, year)
                rows.append({"case": case, "anchor": anchor.name, "variable": anchor.variable, "year": year,
                             "published": published, "model": model,
                             "ratio": model / published if published else np.nan,
                             "comparable": anchor.comparable, "source": anchor.source, "reason": anchor.reason})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per anchor: years, the ratio's range and its geometric mean."""
    grouped = table.groupby(["case", "anchor"], sort=False)
    return pd.DataFrame({
        "years": grouped["year"].agg(lambda y: f"{y.min()}" if y.min() == y.max() else f"{y.min()}-{y.max()}"),
        "points": grouped["year"].size(),
        "ratio_min": grouped["ratio"].min(),
        "ratio_max": grouped["ratio"].max(),
        "ratio_geomean": grouped["ratio"].agg(lambda r: float(np.exp(np.log(r).mean()))),
        "comparable": grouped["comparable"].first(),
    }).reset_index()
