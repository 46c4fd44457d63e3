"""N draws of the uncertain parameters through every run of a study: metrics, claims, bands.

``EnsembleDesign`` is plain, picklable data (the model path, each case's, scenario's and
strategy's overrides, the metric, claim and band specifications), so that a worker process or
a dask worker rebuilds the checked metrics once (``compiled``) and evaluates chunks of draws.
``evaluate_draws`` runs draws [start, stop) of every case x scenario x strategy (one engine
call per case and scenario with the strategies side by side while small) and returns each
run's metric values per draw, the claims' truth per draw and the band series. Runs layer:
model defaults < case < fitted < sampled value < scenario < strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from sdloop.engines.choice import simulator
from sdloop.experiments.claims import ClaimSpec, check_claims
from sdloop.experiments.metrics import DIMS, SERIES, Compiler, MetricSet, MetricSpec, RunView, Where
from sdloop.experiments.uncertainty import UncertaintySpace

STACK_LIMIT = 4096  # runs (draws x strategies) integrated in one engine call


@dataclass(frozen=True)
class EnsembleDesign:
    """Which runs an ensemble makes and what it measures (names already checked)."""

    model: str
    cases: Mapping[str, Mapping[str, float]]  # case -> case (+ fitted) overrides
    scenarios: Mapping[str, Mapping[str, float]]
    strategies: Mapping[str, Mapping[str, float]]
    metrics: tuple[MetricSpec, ...]
    horizon: float
    source: str | None = None  # the project file (for messages)
    claims: tuple[ClaimSpec, ...] = ()
    entries: tuple = ()  # ((dim, (names...)), ...): every entry of the project, for cross-run references
    bands: tuple = ()  # ((expression, low, high), ...)
    band_bins: int = 400
    band_every: float | None = None  # time between band points (None: every saved time)
    engine: str = "auto"
    final_time: float | None = None
    # per case, the strategies and scenarios whose overrides differ by case ([NAME.cases.CASE] tables)
    case_overrides: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def layer(self, case: str, dim: str, name: str) -> Mapping[str, float]:
        """The overrides of scenario or strategy ``name`` when ``case`` runs."""
        own = self.case_overrides.get(case, {}).get(f"{dim}:{name}")
        if own is not None:
            return own
        return (self.scenarios if dim == "scenario" else self.strategies)[name]

    @property
    def keys(self) -> list[tuple[str, str, str]]:
        return [(c, sc, st) for c in self.cases for sc in self.scenarios for st in self.strategies]


@dataclass
class Compiled:
    """A design's metrics, claims and bands checked against the simulator of this process."""

    sim: object
    metrics: MetricSet
    claims: list
    bands: list
    groups: list
    band_columns: list


_COMPILED: dict[int, tuple[EnsembleDesign, Compiled]] = {}


def compiled(design: EnsembleDesign) -> Compiled:
    """The checked form of ``design``, built once per process."""
    found = _COMPILED.get(id(design))
    if found is not None and found[0] is design:
        return found[1]
    from sdloop.experiments.metric_units import metric_units
    from sdloop.experiments.study import group_order

    sim = simulator(design.model, design.engine).simulator
    entries = {dim: list(names) for dim, names in design.entries} or \
        {"case": list(design.cases), "scenario": list(design.scenarios), "strategy": list(design.strategies)}
    metrics = MetricSet(design.metrics, sim, horizon=design.horizon, source=design.source, entries=entries,
                        final_time=design.final_time)
    claims = check_claims(design.claims, metrics.names, entries, design.source,
                          metric_units(design.metrics, sim))
    compiler = Compiler(sim, horizon=design.horizon, allow_under=False, final_time=design.final_time)
    bands = [compiler.compile(text, Where(design.source, None, f"band {text}"), want=(SERIES,))
             for text, _, _ in design.bands]
    result = Compiled(sim, metrics, claims, bands, group_order(design.keys, metrics, design.source),
                      list(compiler.columns))
    _COMPILED[id(design)] = (design, result)
    return result


def band_points(times: np.ndarray, every: float | None) -> np.ndarray:
    """Indices of the saved times bands are kept at (every ``every`` time units, and the last)."""
    if not every:
        return np.arange(len(times))
    steps = (times - times[0]) / every
    points = np.nonzero(np.abs(steps - np.round(steps)) < 1e-6)[0]
    if points[-1] != len(times) - 1:
        points = np.append(points, len(times) - 1)
    return points


@dataclass
class DrawResult:
    """What draws [start, stop) give: per run, metric values and band series; per claim, truth."""

    metrics: dict  # key -> {metric: (n,)}
    bands: dict  # key -> [(points, n) per band]
    band_times: np.ndarray
    claims: dict  # claim name -> ((n,) bool, [(label, (n,) values)]) or a note (str) if not evaluated
    nonfinite: dict  # key -> (n,) bool
    inputs: dict = field(default_factory=dict)  # case -> {uncertain parameter: (n,) sampled values}
    times: np.ndarray | None = None  # the saved times of the runs

    @property
    def usable(self) -> np.ndarray:
        """(n,) bool: draws on which every run stayed finite (claims are judged on these only: a
        run that blew up has no metrics, so a comparison with it would count as a failed claim)."""
        bad = [np.asarray(v, dtype=bool) for v in self.nonfinite.values()]
        return ~np.any(bad, axis=0) if bad else np.array(True)


def evaluate_draws(design: EnsembleDesign, space: UncertaintySpace, unit: np.ndarray,
                   keys: Sequence[tuple] | None = None, *, stacked: bool | None = None) -> DrawResult:
    """Run the draws ``unit`` (n, d) through every run (or ``keys`` and what they refer to)."""
    from sdloop.experiments.claims import Missing

    comp = compiled(design)
    sim = comp.sim
    n = len(unit)
    wanted = None if keys is None else _with_targets(keys, comp.metrics)
    columns = list(dict.fromkeys(comp.metrics.columns + comp.band_columns))
    metrics, bands, nonfinite, exports, inputs = {}, {}, {}, {}, {}
    band_times = times = None
    for case, scenario in comp.groups:
        group = [k for k in design.keys if k[:2] == (case, scenario) and (wanted is None or k in wanted)]
        if not group:
            continue
        base = dict(design.cases[case])
        own = {name: base.get(name, sim.defaults[name]) for name in space.names}
        sampled = space.values(unit, own, case=case)
        inputs[case] = sampled
        params = {k: {**base, **sampled, **design.layer(case, "scenario", scenario), **design.layer(case, "strategy", k[2])}
                  for k in group}
        together = stacked if stacked is not None else n * len(group) <= STACK_LIMIT
        results = {}
        if together:
            runs = [{name: np.broadcast_to(np.asarray(v, float), (n,)) for name, v in params[k].items()}
                    for k in group]
            merged = {name: np.concatenate([r.get(name, np.full(n, sim.defaults[name])) for r in runs])
                      for name in set().union(*runs)}
            result = sim.run(merged, n=n * len(group), columns=columns or None, final_time=design.final_time)
            for i, k in enumerate(group):
                results[k] = (_Slice(result, i * n, (i + 1) * n), params[k])
        else:
            for k in group:
                result = sim.run(params[k], n=n, columns=columns or None, final_time=design.final_time)
                results[k] = (result, params[k])
        views = {k: RunView(r.times, r.__getitem__, p, sim.defaults, n) for k, (r, p) in results.items()}
        times = next(iter(views.values())).times
        for k, view in views.items():
            for e_id, value in comp.metrics.export_values(view, _refs(k, exports)).items():
                exports[(e_id, k)] = value
        for k, view in views.items():
            bad = ~np.asarray(results[k][0].finite, dtype=bool)
            values = comp.metrics.evaluate(view, _refs(k, exports))
            metrics[k] = {m: np.where(bad, np.nan, v) for m, v in values.items()}
            nonfinite[k] = bad
            if comp.bands:
                times = view.times
                points = band_points(times, design.band_every)
                band_times = times[points]
                with np.errstate(all="ignore"):
                    bands[k] = [np.asarray(b.run(view, None))[points][:, ~bad] for b in comp.bands]
    claims = {}
    for claim in comp.claims:
        try:
            claims[claim.name] = claim.evaluate(metrics)
        except Missing as exc:
            claims[claim.name] = f"not evaluated: {exc}"
    return DrawResult(metrics, bands, band_times, claims, nonfinite, inputs, times)


def _with_targets(keys, metrics: MetricSet) -> set:
    found, todo = set(), list(keys)
    while todo:
        key = tuple(todo.pop())
        if key in found:
            continue
        found.add(key)
        todo += [tuple(t[d] for d in DIMS) for t in metrics.targets(dict(zip(DIMS, key)))]
    return found


def _refs(key, exports):
    def refs(export):
        target = dict(zip(DIMS, key)) | dict(export.target)
        return exports[(export.id, tuple(target[d] for d in DIMS))]
    return refs


class _Slice:
    """Runs [lo, hi) of a stacked EngineResult, looking like a result of its own."""

    def __init__(self, result, lo: int, hi: int) -> None:
        self.times, self.lo, self.hi, self._result = result.times, lo, hi, result
        self.finite = result.finite[lo:hi]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._result[name][:, self.lo:self.hi]
