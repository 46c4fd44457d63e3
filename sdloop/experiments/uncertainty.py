"""Uncertain parameters declared as data, and samples of them with an explicit seed.

An uncertainty file (``[ensemble] uncertainty`` of a project) declares each uncertain
constant with a distribution, its bounds and where the range comes from::

    [parameters."Adoption Rate"]
    distribution = "uniform"      # uniform | loguniform | triangular | normal
    low = 0.7                     # with relative = true: multipliers of the case's value
    high = 1.3
    relative = true
    source = "assumed; models/README.md gives 0.03-0.2"

``normal`` takes ``mean`` and ``sd`` and is truncated to [low, high]; ``triangular`` takes
``mode``. ``relative = true`` makes the sample a multiplier of the value the run would
otherwise use (the case's, or its calibrated value), so one file serves every case.

Samples are drawn in the unit hypercube (Latin hypercube or scrambled Sobol sequence from
``scipy.stats.qmc``, seeded) and mapped through each distribution's quantile function, so
Sobol indices computed on the unit inputs are those of the parameters. ``from_calibration``
reads the 95% intervals a calibration wrote into ``calibration/fitted/CASE.toml``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats
from scipy.stats import qmc

from sdloop.errors import OverrideError
from sdloop.experiments.overrides import read_toml

DISTRIBUTIONS = ("uniform", "loguniform", "triangular", "normal")
METHODS = ("lhs", "sobol", "random")


@dataclass(frozen=True)
class UncertainParameter:
    """One uncertain constant: a distribution over [low, high] (multipliers if ``relative``)."""

    name: str
    distribution: str
    low: float
    high: float
    relative: bool = False
    mode: float | None = None
    mean: float | None = None
    sd: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        where = {"variable": self.name}
        if self.distribution not in DISTRIBUTIONS:
            raise OverrideError(f"unknown distribution {self.distribution!r}; use one of {', '.join(DISTRIBUTIONS)}",
                                **where)
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise OverrideError(f"needs low < high, got [{self.low}, {self.high}]", **where)
        if self.distribution == "loguniform" and self.low <= 0:
            raise OverrideError("a loguniform range must be positive", **where)
        if self.distribution == "triangular" and not (self.mode is not None and self.low <= self.mode <= self.high):
            raise OverrideError("a triangular distribution needs low <= mode <= high", **where)
        if self.distribution == "normal" and (self.mean is None or not self.sd or self.sd <= 0):
            raise OverrideError("a normal distribution needs mean and a positive sd", **where)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantile function: unit-interval values to parameter values (or multipliers)."""
        u = np.asarray(u, dtype=float)
        lo, hi = self.low, self.high
        if self.distribution == "uniform":
            return lo + (hi - lo) * u
        if self.distribution == "loguniform":
            return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
        if self.distribution == "triangular":
            return stats.triang.ppf(u, (self.mode - lo) / (hi - lo), loc=lo, scale=hi - lo)
        a, b = (lo - self.mean) / self.sd, (hi - self.mean) / self.sd
        return stats.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.sd)

    def values(self, u: np.ndarray, base: float) -> np.ndarray:
        """Parameter values for unit samples ``u`` given the run's own value ``base``."""
        x = self.ppf(u)
        return x * base if self.relative else x

    def describe(self) -> str:
        rng = f"[{self.low:g}, {self.high:g}]" + (" x case value" if self.relative else "")
        return f"{self.distribution} {rng}"


@dataclass(frozen=True)
class UncertaintySpace:
    """The uncertain parameters of an experiment, in a fixed order."""

    parameters: tuple[UncertainParameter, ...]
    source: str | None = None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    def checked(self, resolve: Callable[..., str]) -> "UncertaintySpace":
        """The same space under the model's spelling (OverrideError, with close matches, if unknown)."""
        params = tuple(
            UncertainParameter(**{**p.__dict__, "name": resolve(p.name, constants_only=True, source=self.source)})
            for p in self.parameters)
        return UncertaintySpace(params, self.source)

    def select(self, names: Sequence[str] | None) -> "UncertaintySpace":
        if not names:
            return self
        known = {p.name: p for p in self.parameters}
        missing = [n for n in names if n not in known]
        if missing:
            raise OverrideError(f"not declared uncertain: {', '.join(missing)}", file=self.source)
        return UncertaintySpace(tuple(known[n] for n in names), self.source)

    def unit_sample(self, n: int, *, method: str = "lhs", seed: int) -> np.ndarray:
        """``n`` points of the unit hypercube (n, d): Latin hypercube, scrambled Sobol or random."""
        d = len(self.parameters)
        if method == "lhs":
            return qmc.LatinHypercube(d=d, seed=seed).random(n)
        if method == "sobol":
            return qmc.Sobol(d=d, scramble=True, seed=seed).random(n)
        if method == "random":
            return np.random.default_rng(seed).random((n, d))
        raise OverrideError(f"unknown sampling method {method!r}; use one of {', '.join(METHODS)}")

    def values(self, unit: np.ndarray, base: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Parameter arrays for unit samples (n, d); ``base`` gives each run's own value."""
        return {p.name: p.values(unit[:, j], base[p.name]) for j, p in enumerate(self.parameters)}

    def sample(self, n: int, base: Mapping[str, float], *, method: str = "lhs", seed: int) -> dict[str, np.ndarray]:
        return self.values(self.unit_sample(n, method=method, seed=seed), base)


def _number(table: dict, key: str, where: dict) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OverrideError(f"'{key}' must be a number", **where)
    return float(value)


def load_uncertainty(path: str | Path) -> UncertaintySpace:
    """Read an uncertainty file (see the module docstring)."""
    path = Path(path)
    data, text = read_toml(path)
    table = data.get("parameters")
    if not isinstance(table, dict) or not table:
        raise OverrideError("expected a [parameters.\"NAME\"] table per uncertain parameter", file=path)
    params = []
    allowed = {"distribution", "low", "high", "relative", "mode", "mean", "sd", "source"}
    for name, spec in table.items():
        line = next((i + 1 for i, t in enumerate(text.splitlines()) if name in t and "[" in t), None)
        where = {"file": path, "line": line, "variable": name}
        if not isinstance(spec, dict):
            raise OverrideError("expected a table with distribution, low, high", **where)
        unknown = set(spec) - allowed
        if unknown:
            raise OverrideError(f"unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(allowed))})", **where)
        low, high = _number(spec, "low", where), _number(spec, "high", where)
        if low is None or high is None:
            raise OverrideError("needs 'low' and 'high'", **where)
        try:
            params.append(UncertainParameter(
                name, str(spec.get("distribution", "uniform")), low, high, bool(spec.get("relative", False)),
                _number(spec, "mode", where), _number(spec, "mean", where), _number(spec, "sd", where),
                str(spec.get("source", ""))))
        except OverrideError as exc:
            raise OverrideError(exc.message, **where) from None
    return UncertaintySpace(tuple(params), str(path))


_INTERVAL = re.compile(r'^\s*"(?P<name>[^"]+)"\s*=\s*(?P<value>[-+0-9.eE]+)\s*#.*?95% CI \[(?P<lo>[-+0-9.eE]+),\s*'
                       r'(?P<hi>[-+0-9.eE]+)\]')


def from_calibration(path: str | Path) -> UncertaintySpace:
    """Uniform over the 95% intervals a calibration wrote in its fitted file's comments."""
    path = Path(path)
    params = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _INTERVAL.match(line)
        if match and float(match["lo"]) < float(match["hi"]):
            params.append(UncertainParameter(match["name"], "uniform", float(match["lo"]), float(match["hi"]),
                                             source=f"95% interval from {path}"))
    return UncertaintySpace(tuple(params), str(path))
