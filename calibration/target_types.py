"""What a target file declares, as frozen values: the series to fit (``SeriesTarget``), the
parameters to estimate (``ParameterTarget``), the series left out (``Dropped``) and the whole
file (``Targets``), whose names ``Targets.checked`` resolves against the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from calibration.data import Series
from calibration.errors import CalibrationError
from sdloop.errors import OverrideError
from sdloop.experiments.overrides import load_case

if TYPE_CHECKING:
    from sdloop.engines.pysd_model import Model


@dataclass(frozen=True)
class SeriesTarget:
    name: str
    file: Path
    variable: str
    scale: float | None  # None: estimated (the series constrains shape, not level)
    error: str  # "log" or "absolute"
    sigma: float | None  # None: the group's shared scale, estimated
    aggregate: str  # "mean", "end" or "cumulative"
    first_year: int | None
    last_year: int | None
    note: str
    line: int | None
    group: str | None = None
    ar1: float | str = 0.0  # fixed AR(1) coefficient per year, or "estimate" (shared by the unit)
    saturates: bool = False
    cumulative_from: float | None = None  # aggregate "cumulative": integrate from this time

    @property
    def unit(self) -> str:
        """The likelihood unit: the group name, or the series itself when its sigma is fixed."""
        return f"group:{self.group}" if self.group else f"series:{self.name}"


@dataclass(frozen=True)
class Dropped:
    file: str
    reason: str


@dataclass(frozen=True)
class ParameterTarget:
    name: str
    lower: float
    upper: float
    start: float | None
    transform: str  # "linear" or "log"
    prior_mean: float | None
    prior_sd: float | None
    line: int | None
    data_years: tuple[int, ...] | None = None
    basis: str = ""

    def to_unit(self, value: float) -> float:
        """Map a value inside the bounds to [0, 1] (on a log scale for 'log')."""
        if self.transform == "log":
            return (math.log(value) - math.log(self.lower)) / (math.log(self.upper) - math.log(self.lower))
        return (value - self.lower) / (self.upper - self.lower)

    def from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, float(u)))
        if self.transform == "log":
            return math.exp(math.log(self.lower) + u * (math.log(self.upper) - math.log(self.lower)))
        return self.lower + u * (self.upper - self.lower)


@dataclass(frozen=True)
class Targets:
    name: str
    path: Path
    description: str
    model: Path
    case: Path | None
    inputs: Mapping[str, float]
    input_comments: Mapping[str, str]
    series: tuple[SeriesTarget, ...]
    parameters: tuple[ParameterTarget, ...]
    holdout_from: int
    data: Mapping[str, Series] = field(default_factory=dict)
    input_lines: Mapping[str, int] = field(default_factory=dict)
    dropped: tuple[Dropped, ...] = ()

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def base_parameters(self, model: "Model") -> dict[str, float]:
        """Base case overridden by the dated inputs, under the model's spelling."""
        base = load_case(self.case).checked(model) if self.case else {}
        for name, value in self.inputs.items():
            base[model.resolve(name, constants_only=True, source=str(self.path),
                               line=self.input_lines.get(name))] = value
        return base

    def checked(self, model: "Model") -> "Targets":
        """Resolve every name against ``model``; CalibrationError/OverrideError naming the line."""
        series = []
        for s in self.series:
            try:
                variable = model.resolve(s.variable, source=str(self.path), line=s.line)
            except OverrideError as exc:
                raise CalibrationError(exc.message.replace("unknown variable", "unknown model variable"),
                                       file=self.path, line=s.line, variable=s.variable) from None
            series.append(_replace(s, variable=variable))
        params = []
        base = self.base_parameters(model)
        for p in self.parameters:
            name = model.resolve(p.name, constants_only=True, source=str(self.path), line=p.line)
            start = p.start if p.start is not None else base.get(name, model.defaults[name])
            if not (p.lower <= start <= p.upper):
                raise CalibrationError(f"start value {start:g} lies outside the bounds "
                                       f"[{p.lower:g}, {p.upper:g}]", file=self.path, line=p.line,
                                       variable=p.name)
            params.append(_replace(p, name=name, start=float(start)))
        if len({p.name for p in params}) != len(params):
            raise CalibrationError("a parameter is listed twice", file=self.path)
        fixed = set(self.inputs)
        both = [p.name for p in params if p.name in fixed]
        if both:
            raise CalibrationError("a dated input cannot also be fitted", file=self.path,
                                   variable=both[0])
        return _replace(self, series=tuple(series), parameters=tuple(params))


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)
