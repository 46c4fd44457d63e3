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

A space may also carry ``PosteriorDraws``: joint draws of calibrated parameters per case
(``calibration/fitted/CASE.posterior.csv``). One more unit column then picks a draw for each
sample, so the calibrated parameters keep their joint posterior (correlations included) and
vary independently of the behavioural priors; a calibrated parameter that also has a prior
takes the posterior's value.
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
class PosteriorDraws:
    """Joint posterior draws per case: ``draws[case][parameter]`` arrays of equal length."""

    draws: Mapping[str, Mapping[str, np.ndarray]]
    sources: Mapping[str, str]

    def renamed(self, resolve: Callable[..., str]) -> "PosteriorDraws":
        return PosteriorDraws({case: {resolve(n, constants_only=True, source=self.sources[case]): v
                                      for n, v in table.items()} for case, table in self.draws.items()},
                              self.sources)


def load_posterior(directory: str | Path, cases: Sequence[str]) -> PosteriorDraws:
    """``DIRECTORY/CASE.posterior.csv`` for every case (OverrideError naming a missing file)."""
    import pandas as pd

    draws, sources = {}, {}
    for case in cases:
        path = Path(directory) / f"{case}.posterior.csv"
        if not path.exists():
            raise OverrideError(f"no posterior draws for case {case!r}: run `sdloop calibrate {case}` first",
                                file=path)
        frame = pd.read_csv(path, comment="#").drop(columns=["log_prob"], errors="ignore")
        if frame.empty or not np.isfinite(frame.to_numpy(float)).all():
            raise OverrideError("posterior draws must be finite numbers", file=path)
        draws[case] = {c: frame[c].to_numpy(float) for c in frame.columns}
        sources[case] = str(path)
    return PosteriorDraws(draws, sources)


@dataclass(frozen=True)
class UncertaintySpace:
    """The uncertain parameters of an experiment, in a fixed order (plus optional posterior draws)."""

    parameters: tuple[UncertainParameter, ...]
    source: str | None = None
    posterior: PosteriorDraws | None = None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def dimensions(self) -> int:
        """Unit columns a draw needs: one per parameter, plus the posterior draw index."""
        return len(self.parameters) + (1 if self.posterior else 0)

    def checked(self, resolve: Callable[..., str]) -> "UncertaintySpace":
        """The same space under the model's spelling (OverrideError, with close matches, if unknown)."""
        try:
            lines = Path(self.source).read_text(encoding="utf-8").splitlines() if self.source else []
        except OSError:
            lines = []

        def line(name: str) -> int | None:  # the [parameters."NAME"] header, for the error
            return next((i + 1 for i, t in enumerate(lines) if f'"{name}"' in t and "[" in t), None)

        params = tuple(
            UncertainParameter(**{**p.__dict__, "name": resolve(p.name, constants_only=True, source=self.source,
                                                                  line=line(p.name))})
            for p in self.parameters)
        posterior = self.posterior.renamed(resolve) if self.posterior else None
        return UncertaintySpace(params, self.source, posterior)

    def select(self, names: Sequence[str] | None) -> "UncertaintySpace":
        if not names:
            return self
        known = {p.name: p for p in self.parameters}
        missing = [n for n in names if n not in known]
        if missing:
            raise OverrideError(f"not declared uncertain: {', '.join(missing)}", file=self.source)
        return UncertaintySpace(tuple(known[n] for n in names), self.source, self.posterior)

    def unit_sample(self, n: int, *, method: str = "lhs", seed: int) -> np.ndarray:
        """``n`` points of the unit hypercube (n, d): Latin hypercube, scrambled Sobol or random."""
        return UnitSampler(self.dimensions, n, method=method, seed=seed).rows(0, n)


    def values(self, unit: np.ndarray, base: Mapping[str, float], case: str | None = None) -> dict[str, np.ndarray]:
        """Parameter arrays for unit samples (n, d); ``base`` gives each run's own value; with
        posterior draws for ``case`` the last column picks one joint draw per sample."""
        out = {p.name: p.values(unit[:, j], base[p.name]) for j, p in enumerate(self.parameters)}
        table = self.posterior.draws.get(case) if self.posterior and case is not None else None
        if table:
            m = len(next(iter(table.values())))
            index = np.minimum((unit[:, -1] * m).astype(np.int64), m - 1)
            out.update({name: values[index] for name, values in table.items()})
        return out

    def sample(self, n: int, base: Mapping[str, float], *, method: str = "lhs", seed: int) -> dict[str, np.ndarray]:
        return self.values(self.unit_sample(n, method=method, seed=seed), base)


LHS_BLOCK = 2**17  # Latin hypercubes larger than this are made of independent blocks of this size


class UnitSampler:
    """Rows [start, stop) of an ``n``-point design of the unit hypercube, made as they are needed,
    so that memory does not grow with ``n``.

    ``sobol`` and ``random`` rows are those of the whole sequence (the generator is moved
    ahead to ``start``). ``lhs`` with up to ``LHS_BLOCK`` points is one Latin hypercube;
    more points are consecutive blocks of ``LHS_BLOCK`` rows (the last one shorter), each
    its own Latin hypercube seeded from ``seed`` and its block number: each block is
    stratified in every dimension, the whole is not (at such sizes it makes no difference
    to sample means). The last block used is kept, so rows are best asked for in order.
    """

    def __init__(self, d: int, n: int, *, method: str = "lhs", seed: int) -> None:
        if method not in METHODS:
            raise OverrideError(f"unknown sampling method {method!r}; use one of {', '.join(METHODS)}")
        self.d, self.n, self.method, self.seed = d, n, method, seed
        self._block: tuple[int, np.ndarray] | None = None

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Points start to stop - 1, an array (stop - start, d)."""
        stop = min(stop, self.n)
        if self.method == "sobol":
            engine = qmc.Sobol(d=self.d, scramble=True, seed=self.seed)
            if start:  # (scipy fails to fast-forward by 0)
                engine.fast_forward(start)
            return engine.random(stop - start)
        if self.method == "random":
            rng = np.random.default_rng(self.seed)
            rng.bit_generator.advance(start * self.d)
            return rng.random((stop - start, self.d))
        if self.n <= LHS_BLOCK:
            return self._lhs_block(0, self.n, self.seed)[start:stop]
        parts = []
        for block in range(start // LHS_BLOCK, (stop - 1) // LHS_BLOCK + 1):
            lo = block * LHS_BLOCK
            size = min(LHS_BLOCK, self.n - lo)
            rows = self._lhs_block(block, size, np.random.default_rng([self.seed, block]))
            parts.append(rows[max(start - lo, 0):min(stop - lo, size)])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _lhs_block(self, block: int, size: int, seed) -> np.ndarray:
        if self._block is None or self._block[0] != block:
            self._block = (block, qmc.LatinHypercube(d=self.d, seed=seed).random(size))
        return self._block[1]


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
