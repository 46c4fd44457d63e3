"""Ensembles: every case x scenario x strategy over the same N parameter samples, in chunks.

The work is cut into chunks of samples for one case and scenario; a chunk runs every
strategy on its samples with the vectorized engine and returns a small ``ChunkSummary``:
per strategy and metric, how often it was best, its regret, sums and histograms of the
metrics, and histograms of key variables at each year (for percentile bands). Summaries are
merged as chunks finish, so memory stays bounded however many runs there are. Integer
counts and maxima merge in any order; float sums are kept per chunk and added in chunk
order, so the same seed and chunk size give bit-identical results in-process, on a process
pool or on a dask.distributed cluster. Another chunk size regroups the samples: counts,
maxima and histograms stay identical, float sums (means) change by rounding only (as long as
both chunk sizes are on the same side of STACK_LIMIT: small chunks run every strategy in
one engine call, which rounds differently).

Layers of a run: model defaults < case < fitted < sampled value < scenario < strategy.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import multiprocessing
import numpy as np
from tqdm import tqdm

from sdloop.engines.numpy_engine import Engine
from sdloop.experiments.metrics import (CAPABILITY, FISCAL_COST, GLOBAL_SHARE, HIGHER_IS_BETTER, METRIC_COLUMNS, SELF_SUFFICIENCY,
                            SHORTFALL, THRESHOLD)
from sdloop.experiments.uncertainty import UncertaintySpace

HORIZON = 2035.0
METRIC_VARIABLES = (CAPABILITY, SELF_SUFFICIENCY, GLOBAL_SHARE, SHORTFALL, FISCAL_COST)
# Variables with percentile bands over time, and the range their histograms cover.
BAND_RANGES = {CAPABILITY: (0.0, 2.0), SELF_SUFFICIENCY: (0.0, 1.0), GLOBAL_SHARE: (0.0, 1.0), SHORTFALL: (0.0, 1.0)}
BAND_BINS = 400
# Histogram edges of each metric (log-spaced for the unbounded money metrics).
METRIC_EDGES = {
    "breakthrough_year": np.linspace(2006, 2036, 121),
    "self_sufficiency_2035": np.linspace(0, 1, 401),
    "global_share_2035": np.linspace(0, 1, 401),
    "peak_shortfall": np.linspace(0, 1, 401),
    "cumulative_fiscal_cost": np.concatenate([[0.0], np.logspace(-3, 6, 901)]),
    "cost_per_capability": np.concatenate([[0.0], np.logspace(-3, 7, 1001)]),
}
STACK_LIMIT = 4096  # chunks of fewer runs (samples x strategies) run every strategy in one engine call
NEVER_PENALTY = 1.0  # for best and regret, a run that never breaks through counts as horizon + 1 year


def sector_metrics_vectorized(result, threshold, horizon: float = HORIZON) -> dict[str, np.ndarray]:
    """The six ``metrics.csv`` metrics for every run of an EngineResult (same definitions as
    ``sdloop.experiments.metrics.sector_metrics``)."""
    times = result.times
    last = int(np.searchsorted(times, horizon + 1e-9, side="right")) - 1
    capability = result[CAPABILITY][: last + 1]
    reached = capability >= np.asarray(threshold, dtype=float)
    first = np.argmax(reached, axis=0)
    breakthrough = np.where(reached.any(axis=0), times[first], np.nan)
    gained = capability[last] - capability[0]
    cost = result[FISCAL_COST][last]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_capability = np.where(gained > 0, cost / np.where(gained > 0, gained, 1.0), np.nan)
    return {
        "breakthrough_year": breakthrough,
        "self_sufficiency_2035": result[SELF_SUFFICIENCY][last].copy(),
        "global_share_2035": result[GLOBAL_SHARE][last].copy(),
        "peak_shortfall": result[SHORTFALL][: last + 1].max(axis=0),
        "cumulative_fiscal_cost": cost.copy(),
        "cost_per_capability": per_capability,
    }


@dataclass(frozen=True)
class Chunk:
    """Samples [start, start + len(unit)) of one case and scenario, run under every strategy."""

    model: str
    case: str
    scenario: str
    index: int
    start: int
    unit: np.ndarray
    space: UncertaintySpace
    base: Mapping[str, float]  # case (and fitted) overrides
    layers: tuple[tuple[str, Mapping[str, float]], ...]  # (strategy, scenario + strategy overrides)
    band_step: int = 4  # saved times between band points (4 x 0.25 year = yearly)
    stacked: bool = False  # all strategies in one engine call (see STACK_LIMIT)


@dataclass
class ChunkSummary:
    """What one chunk contributes; arrays are indexed [strategy, metric] (or [strategy, variable, ...])."""

    case: str
    scenario: str
    index: int
    n: int
    nonfinite: np.ndarray  # (S,) runs that went non-finite
    best: np.ndarray  # (S, M) samples on which the strategy is best or tied for best
    regret_max: np.ndarray  # (S, M)
    regret_sum: np.ndarray  # (S, M)
    regret_n: np.ndarray  # (S, M) samples with a defined regret
    metric_sum: np.ndarray  # (S, M) over finite values
    metric_n: np.ndarray  # (S, M)
    metric_hist: dict  # metric -> (S, bins + 2) counts incl. below/above
    band_hist: np.ndarray  # (S, V, T, BAND_BINS)
    band_times: np.ndarray


_ENGINES: dict[str, Engine] = {}


def engine_for(path: str) -> Engine:
    """One Engine per model file per process (workers reuse it across chunks)."""
    key = str(Path(path).resolve())
    if key not in _ENGINES:
        _ENGINES[key] = Engine(path)
    return _ENGINES[key]


def _oriented(values: np.ndarray, metric: str) -> np.ndarray:
    """Lower is better; a missing breakthrough counts as horizon + 1; other missing values stay NaN."""
    v = np.where(np.isnan(values), HORIZON + NEVER_PENALTY, values) if metric == "breakthrough_year" else values
    return -v if HIGHER_IS_BETTER[metric] else v


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts below, in each bin, above (NaN not counted)."""
    finite = values[np.isfinite(values)]
    idx = np.searchsorted(edges, finite, side="right")  # 0 below, len(edges) above
    idx = np.where(finite == edges[-1], len(edges) - 1, idx)
    return np.bincount(idx, minlength=len(edges) + 1)


class _Slice:
    """Runs [lo, hi) of a stacked EngineResult, looking like a result of its own."""

    def __init__(self, result, lo: int, hi: int) -> None:
        self.times, self.lo, self.hi, self._result = result.times, lo, hi, result
        self.finite = result.finite[lo:hi]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._result[name][:, self.lo:self.hi]


def _runs(engine: Engine, chunk: Chunk, sampled: Mapping[str, np.ndarray]):
    """(strategy index, parameters, result) for every strategy; small chunks run all strategies in
    one engine call (their levers become arrays), large ones one call per strategy."""
    n, columns = len(chunk.unit), list(METRIC_VARIABLES)
    params = [{**chunk.base, **sampled, **layer} for _, layer in chunk.layers]
    if not chunk.stacked:
        for s, p in enumerate(params):
            yield s, p, engine.run(p, n=n, columns=columns)
        return
    names = set().union(*params)
    stacked = {name: np.concatenate([np.broadcast_to(np.asarray(p.get(name, engine.defaults[name]), float), (n,))
                                     for p in params]) for name in names}
    result = engine.run(stacked, n=n * len(params), columns=columns)
    for s, p in enumerate(params):
        yield s, p, _Slice(result, s * n, (s + 1) * n)


def run_chunk(chunk: Chunk) -> ChunkSummary:
    """Run every strategy on the chunk's samples and summarize (the unit of distributed work)."""
    engine = engine_for(chunk.model)
    n = len(chunk.unit)
    own = {name: chunk.base.get(name, engine.defaults[name]) for name in chunk.space.names}
    sampled = chunk.space.values(chunk.unit, own)
    S, M = len(chunk.layers), len(METRIC_COLUMNS)
    variables = list(BAND_RANGES)
    metrics = np.empty((S, M, n))
    nonfinite = np.zeros(S, dtype=np.int64)
    band_hist = None
    for s, params, result in _runs(engine, chunk, sampled):
        threshold = params.get(THRESHOLD, engine.defaults[THRESHOLD])
        values = sector_metrics_vectorized(result, threshold)
        bad = ~result.finite
        nonfinite[s] = int(bad.sum())
        for m, name in enumerate(METRIC_COLUMNS):
            metrics[s, m] = np.where(bad, np.nan, values[name])
        points = np.arange(0, len(result.times), chunk.band_step)
        if points[-1] != len(result.times) - 1:
            points = np.append(points, len(result.times) - 1)
        if band_hist is None:
            band_hist = np.zeros((S, len(variables), len(points), BAND_BINS), dtype=np.int64)
            band_times = result.times[points]
        for v, name in enumerate(variables):
            lo, hi = BAND_RANGES[name]
            x = result[name][points][:, result.finite]
            idx = np.clip(((x - lo) / (hi - lo) * BAND_BINS).astype(np.int64), 0, BAND_BINS - 1)
            flat = idx + BAND_BINS * np.arange(len(points))[:, None]
            band_hist[s, v] = np.bincount(flat.ravel(), minlength=len(points) * BAND_BINS).reshape(len(points), -1)
    best = np.zeros((S, M), dtype=np.int64)
    regret_max = np.full((S, M), np.nan)
    regret_sum = np.zeros((S, M))
    regret_n = np.zeros((S, M), dtype=np.int64)
    metric_sum = np.zeros((S, M))
    metric_n = np.zeros((S, M), dtype=np.int64)
    metric_hist = {}
    for m, name in enumerate(METRIC_COLUMNS):
        oriented = _oriented(metrics[:, m], name)
        valid = ~np.isnan(oriented).any(axis=0)  # every strategy has a value for this sample
        with np.errstate(invalid="ignore"):
            top = np.nanmin(np.where(np.isnan(oriented), np.inf, oriented), axis=0)
        best[:, m] = ((oriented == top) & np.isfinite(top)).sum(axis=1)
        regret = (oriented - top)[:, valid]
        if regret.shape[1]:
            regret_max[:, m] = regret.max(axis=1)
            regret_sum[:, m] = regret.sum(axis=1)
        regret_n[:, m] = regret.shape[1]
        finite = np.isfinite(metrics[:, m])
        metric_sum[:, m] = np.where(finite, metrics[:, m], 0.0).sum(axis=1)
        metric_n[:, m] = finite.sum(axis=1)
        metric_hist[name] = np.stack([_histogram(metrics[s, m], METRIC_EDGES[name]) for s in range(S)])
    return ChunkSummary(chunk.case, chunk.scenario, chunk.index, n, nonfinite, best, regret_max, regret_sum,
                        regret_n, metric_sum, metric_n, metric_hist, band_hist, band_times)


@dataclass
class EnsembleSummary:
    """Merged chunk summaries per (case, scenario); float sums added in chunk order at the end."""

    strategies: tuple[str, ...]
    samples: int
    seed: int
    method: str
    space: UncertaintySpace
    parts: dict = field(default_factory=dict)  # (case, scenario) -> merged integer/max arrays
    sums: dict = field(default_factory=dict)  # (case, scenario) -> {chunk index: (regret_sum, metric_sum)}

    def add(self, part: ChunkSummary) -> None:
        key = (part.case, part.scenario)
        self.sums.setdefault(key, {})[part.index] = (part.regret_sum, part.metric_sum)
        if key not in self.parts:
            self.parts[key] = {"n": part.n, "nonfinite": part.nonfinite.copy(), "best": part.best.copy(),
                               "regret_max": part.regret_max.copy(), "regret_n": part.regret_n.copy(),
                               "metric_n": part.metric_n.copy(),
                               "metric_hist": {k: v.copy() for k, v in part.metric_hist.items()},
                               "band_hist": part.band_hist.copy(), "band_times": part.band_times}
            return
        merged = self.parts[key]
        merged["n"] += part.n
        for name in ("nonfinite", "best", "regret_n", "metric_n", "band_hist"):
            merged[name] += getattr(part, name)
        merged["regret_max"] = np.fmax(merged["regret_max"], part.regret_max)
        for name, hist in part.metric_hist.items():
            merged["metric_hist"][name] += hist

    def totals(self, key) -> tuple[np.ndarray, np.ndarray]:
        """(regret sums, metric sums) of one case and scenario, added in chunk order."""
        chunks = self.sums[key]
        regret = np.zeros_like(next(iter(chunks.values()))[0])
        metric = np.zeros_like(regret)
        for index in sorted(chunks):
            regret = regret + chunks[index][0]
            metric = metric + chunks[index][1]
        return regret, metric

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(self.parts)

    @property
    def runs(self) -> int:
        return sum(p["n"] for p in self.parts.values()) * len(self.strategies)


@dataclass(frozen=True)
class EnsembleDesign:
    """Which runs an ensemble makes: base overrides per case, scenario and strategy layers."""

    model: str
    cases: Mapping[str, Mapping[str, float]]  # case -> case (+ fitted) overrides
    scenarios: Mapping[str, Mapping[str, float]]
    strategies: Mapping[str, Mapping[str, float]]
    # per case, strategies whose overrides differ by case (strategy files' [NAME.cases.CASE] tables)
    case_strategies: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def strategies_for(self, case: str) -> Mapping[str, Mapping[str, float]]:
        return {**self.strategies, **self.case_strategies.get(case, {})}

    def chunks(self, unit: np.ndarray, space: UncertaintySpace, chunk_size: int) -> Iterable[Chunk]:
        for (case, base), scenario in itertools.product(self.cases.items(), self.scenarios):
            layers = tuple((name, {**self.scenarios[scenario], **overrides})
                           for name, overrides in self.strategies_for(case).items())
            stacked = chunk_size * len(layers) <= STACK_LIMIT
            for index, start in enumerate(range(0, len(unit), chunk_size)):
                yield Chunk(self.model, case, scenario, index, start, unit[start:start + chunk_size], space,
                            dict(base), layers, stacked=stacked)


def design_from_experiment(experiment) -> EnsembleDesign:
    """The runs of a ``SectorExperiment`` (names already checked against the model)."""
    from sdloop.experiments.overrides import merge

    model = experiment.model
    return EnsembleDesign(
        str(model.path),
        {c.name: merge(model, experiment.case_layers(c)) for c in experiment.cases},
        {s.name: s.checked(model) for s in experiment.scenarios},
        {s.name: s.checked(model) for s in experiment.strategies},
        {c.name: {s.name: s.for_case(c.name).checked(model) for s in experiment.strategies if c.name in s.cases}
         for c in experiment.cases},
    )


def run_ensemble(design: EnsembleDesign, space: UncertaintySpace, n: int, *, seed: int, method: str = "lhs",
                 chunk_size: int = 10_000, workers: int = 1, scheduler: str | None = None,
                 progress: bool | None = None) -> EnsembleSummary:
    """Run ``n`` samples of ``space`` for every case x scenario x strategy of ``design``.

    ``workers`` > 1 uses a local process pool; ``scheduler`` (a dask.distributed address or
    Client) sends the chunks to that cluster. Results do not depend on either.
    """
    engine = engine_for(design.model)
    space = space.checked(engine.resolve)  # unknown names fail here, before any run
    for layers in (*design.cases.values(), *design.scenarios.values(), *design.strategies.values(),
                   *(s for per_case in design.case_strategies.values() for s in per_case.values())):
        engine.check(layers)
    unit = space.unit_sample(n, method=method, seed=seed)
    chunks = list(design.chunks(unit, space, chunk_size))
    summary = EnsembleSummary(tuple(design.strategies), n, seed, method, space)
    total = len(chunks) and sum(len(c.unit) for c in chunks) * len(design.strategies)
    bar = tqdm(total=total, desc="ensemble", unit="run", unit_scale=True,
               disable=None if progress is None else not progress, leave=False, smoothing=0.1)
    try:
        for part in _execute(chunks, workers, scheduler):
            summary.add(part)
            bar.update(part.n * len(design.strategies))
    finally:
        bar.close()
    return summary


def _execute(chunks: Sequence[Chunk], workers: int, scheduler):
    if scheduler is not None:
        from dask.distributed import Client, as_completed as dask_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            queue = iter(chunks)
            in_flight = 2 * max(1, len(client.scheduler_info().get("workers", {})))
            running = dask_completed([client.submit(run_chunk, c, pure=False)
                                      for c in itertools.islice(queue, in_flight)])
            for future in running:
                result = future.result()
                future.release()
                nxt = next(queue, None)
                if nxt is not None:
                    running.add(client.submit(run_chunk, nxt, pure=False))
                yield result
        finally:
            if client is not scheduler:
                client.close()
        return
    if workers > 1:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending = set()
            queue = iter(chunks)
            for chunk in itertools.islice(queue, 2 * workers):  # bounded: never all chunks in flight
                pending.add(pool.submit(run_chunk, chunk))
            while pending:
                done = next(as_completed(pending))
                pending.remove(done)
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_chunk, nxt))
                yield done.result()
        return
    for chunk in chunks:
        yield run_chunk(chunk)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))
