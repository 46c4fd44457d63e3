"""Metrics as data: each metric an expression whose value is one number per run.

The expression language (functions ``at``, ``initial``, ``first_time``, ``max``/``min``/
``mean``/``integral`` over a window, ``under``/``diff`` against another run, ``ratio``) is in
``sdloop.experiments.evaluate``. A never-reached result is +inf (written empty, compares as later
than any time), an undefined one NaN (written empty, never best).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sdloop.experiments.evaluate import (DIMS, SERIES, VALUE, Compiler, Export, MetricError, RunView,  # noqa: F401
                                         Where)


@dataclass(frozen=True)
class MetricSpec:
    """One metric as a project file declares it."""

    name: str
    expr: str
    line: int | None = None
    better: str | None = None  # "higher", "lower" or None (not ranked)
    never: float | None = None  # what a never-reached value (+inf) counts as in regret and Sobol indices
    unit: str = ""
    label: str | None = None
    format: str = ".6g"  # six significant digits: a year such as 2024.75 stays whole
    description: str = ""
    histogram: tuple | None = None  # (low, high, bins, scale) for ensemble percentiles

    @property
    def higher_is_better(self) -> bool | None:
        return None if self.better is None else self.better == "higher"


class MetricSet:
    """The metrics of a project, checked against a simulator, evaluated on views of runs."""

    def __init__(self, specs: Sequence[MetricSpec], sim, *, horizon: float, source: str | Path | None,
                 entries: Mapping[str, Sequence[str]] | None = None, final_time: float | None = None) -> None:
        self.specs = tuple(specs)
        self.compiler = Compiler(sim, horizon=horizon, entries=entries, final_time=final_time)
        self.nodes = [self.compiler.compile(s.expr, Where(source, s.line, f"metric {s.name}")) for s in self.specs]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    @property
    def columns(self) -> list[str]:
        """Model variables (not constants) the metrics read."""
        return list(self.compiler.columns)

    @property
    def exports(self) -> list[Export]:
        return self.compiler.exports

    def targets(self, key: Mapping[str, str]) -> list[dict[str, str]]:
        """The runs (as keys) whose values the metrics of run ``key`` need."""
        return [{**key, **dict(e.target)} for e in self.exports]

    def export_values(self, view: RunView, refs) -> dict[int, np.ndarray]:
        """This run's values of every expression other runs ask for with under()."""
        return {e.id: np.asarray(e.node.run(view, refs)) for e in self.exports}

    def evaluate(self, view: RunView, refs) -> dict[str, np.ndarray]:
        """Each metric's N values (NaN undefined, +inf never) for the runs of ``view``.

        ``refs(export)`` returns the value of an under() expression in its target run."""
        with np.errstate(all="ignore"):
            return {s.name: np.broadcast_to(np.asarray(node.run(view, refs), dtype=float), (view.n,)).copy()
                    for s, node in zip(self.specs, self.nodes)}


def format_value(value: float, spec: MetricSpec | None = None) -> str:
    """A metric value for people: 'never' for +inf, '-' for undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    try:
        return format(value, spec.format if spec else ".6g")
    except ValueError:
        return f"{value:.3g}"


__all__ = ["MetricSpec", "MetricSet", "format_value", "DIMS", "SERIES", "VALUE", "Compiler", "Export", "MetricError",
           "RunView", "Where"]
