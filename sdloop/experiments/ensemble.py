"""Ensembles: every case x scenario x strategy over the same N parameter draws, in chunks.

The draws are cut into chunks; a chunk runs every run of the study on its draws
(``draws.evaluate_draws``) and returns a small ``ChunkSummary``: per case and scenario, how
often each strategy was best on each metric, its regret, sums and histograms of the metrics,
histograms of the band series; per claim, on how many draws it held. Draws are made when
their chunk starts (``UnitSampler``) and summaries merge as chunks finish, so memory stays
bounded however many runs there are. Integer counts and maxima
merge in any order; float sums are kept per chunk and added in chunk order, so the same seed
and chunk size give bit-identical results in-process, on a process pool or on a dask cluster.

A metric's best and regret follow its ``better`` (metrics without one are not ranked); a
never-reached value counts as the metric's ``never`` (else it is left out, as undefined ones are).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from sdloop.experiments.draws import STACK_LIMIT, EnsembleDesign, compiled, evaluate_draws
from sdloop.experiments.metrics import MetricSpec
from sdloop.experiments.samples import chunk_tables
from sdloop.experiments.uncertainty import UncertaintySpace, UnitSampler

PER_DECADE = 100  # default histogram resolution of a metric without a declared range


def metric_edges(spec: MetricSpec, times: np.ndarray | None = None) -> np.ndarray:
    """Histogram edges of a metric (for percentiles): its declared range, else log-spaced over
    +-[1e-9, 1e15] at PER_DECADE bins per decade (percentiles within about 1% of the value) and,
    over the span of the saved ``times``, one bin per saved time (centred on it): a time such as a
    ``first_time`` year, far from zero, is then within half a save step, not 1% of 2030."""
    if spec.histogram is None:
        side = np.logspace(-9, 15, 24 * PER_DECADE + 1)
        edges = np.concatenate([-side[::-1], [0.0], side])
        if times is not None and len(times) > 1:
            times = np.asarray(times, dtype=float)
            mids = (times[:-1] + times[1:]) / 2
            grid = np.concatenate([[times[0] - (mids[0] - times[0])], mids, [times[-1] + (times[-1] - mids[-1])]])
            edges = np.unique(np.concatenate([edges, grid]))
        return edges
    low, high, bins, scale = spec.histogram
    if scale == "log":
        return np.concatenate([[0.0], np.logspace(np.log10(low), np.log10(high), bins + 1)])
    return np.linspace(low, high, bins + 1)


def oriented(values: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Lower is better; never-reached counts as ``spec.never`` (else NaN, left out); unranked: NaN."""
    if spec.better is None:
        return np.full(values.shape, np.nan)
    v = np.where(np.isposinf(values), spec.never if spec.never is not None else np.nan, values)
    v = np.where(np.isfinite(v), v, np.nan)
    return -v if spec.better == "higher" else v


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts below, in each bin, above (non-finite values not counted)."""
    finite = values[np.isfinite(values)]
    idx = np.searchsorted(edges, finite, side="right")  # 0 below, len(edges) above
    idx = np.where(finite == edges[-1], len(edges) - 1, idx)
    return np.bincount(idx, minlength=len(edges) + 1)


@dataclass(frozen=True)
class Chunk:
    """Draws [start, start + len(unit)) of the design, run through every case, scenario and strategy."""

    design: EnsembleDesign
    index: int
    start: int
    unit: np.ndarray
    space: UncertaintySpace
    stacked: bool | None = None
    keep_samples: bool = False  # also return each draw's inputs and metrics (chunk_tables)


@dataclass
class ChunkSummary:
    """What one chunk contributes: ``parts[(case, scenario)]`` arrays indexed [strategy, metric]."""

    index: int
    n: int
    parts: dict
    sums: dict  # (case, scenario) -> (regret_sum, metric_sum)
    claims: dict  # claim -> {"held": int, "draws": int, "values": {label: (sum, count)}} or a note
    band_times: np.ndarray | None
    tables: tuple | None = None  # (samples, claims per draw) with keep_samples
    times: np.ndarray | None = None  # the saved times (histogram edges of metrics without a range)


def run_chunk(chunk: Chunk) -> ChunkSummary:
    """Run and summarize one chunk of draws (the unit of distributed work)."""
    design = chunk.design
    comp = compiled(design)
    specs = design.metrics
    found = evaluate_draws(design, chunk.space, chunk.unit, stacked=chunk.stacked)
    strategies = list(design.strategies)
    n, M = len(chunk.unit), len(specs)
    parts, sums = {}, {}
    for case, scenario in itertools.product(design.cases, design.scenarios):
        keys = [(case, scenario, s) for s in strategies]
        values = np.stack([[found.metrics[k][spec.name] for spec in specs] for k in keys])  # (S, M, n)
        S = len(keys)
        best = np.zeros((S, M), dtype=np.int64)
        regret_max = np.full((S, M), np.nan)
        regret_sum, metric_sum = np.zeros((S, M)), np.zeros((S, M))
        regret_n, metric_n = np.zeros((S, M), dtype=np.int64), np.zeros((S, M), dtype=np.int64)
        hists = {}
        for m, spec in enumerate(specs):
            o = oriented(values[:, m], spec)
            if spec.better is not None:
                top = np.min(np.where(np.isnan(o), np.inf, o), axis=0)
                best[:, m] = ((o == top) & np.isfinite(top)).sum(axis=1)
                # a strategy's regret on the draws where it has a value (and some strategy does)
                regret = np.where(np.isnan(o) | ~np.isfinite(top), np.nan, o - top)
                counted = ~np.isnan(regret)
                regret_n[:, m] = counted.sum(axis=1)
                regret_sum[:, m] = np.where(counted, regret, 0.0).sum(axis=1)
                regret_max[:, m] = np.where(counted.any(axis=1), np.where(counted, regret, -np.inf).max(axis=1),
                                            np.nan)
            finite = np.isfinite(values[:, m])
            metric_sum[:, m] = np.where(finite, values[:, m], 0.0).sum(axis=1)
            metric_n[:, m] = finite.sum(axis=1)
            edges = metric_edges(spec, found.times)
            hists[spec.name] = np.stack([histogram(values[s, m], edges) for s in range(S)])
        band_hist = _band_histograms(found, keys, design)
        parts[(case, scenario)] = {
            "n": n, "nonfinite": np.array([int(found.nonfinite[k].sum()) for k in keys], dtype=np.int64),
            "best": best, "regret_max": regret_max, "regret_n": regret_n, "metric_n": metric_n,
            "metric_hist": hists, "band_hist": band_hist}
        sums[(case, scenario)] = (regret_sum, metric_sum)
    claims = {}
    for claim in comp.claims:
        result = found.claims[claim.name]
        if isinstance(result, str):
            claims[claim.name] = result
            continue
        held, seen = result
        usable = np.broadcast_to(found.usable, np.shape(held))  # draws where a run blew up are left out
        values = {label: np.asarray(v, dtype=float)[usable] for label, v in dict(seen).items()}
        claims[claim.name] = {"held": int(np.sum(np.asarray(held)[usable])), "draws": int(usable.sum()),
                              "values": {label: (float(np.sum(v[np.isfinite(v)])), int(np.isfinite(v).sum()))
                                         for label, v in values.items()}}
    tables = chunk_tables(design, found, chunk.start) if chunk.keep_samples else None
    return ChunkSummary(chunk.index, n, parts, sums, claims, found.band_times, tables, found.times)


def _band_histograms(found, keys, design: EnsembleDesign) -> np.ndarray | None:
    if not design.bands:
        return None
    bins = design.band_bins
    out = None
    for s, key in enumerate(keys):
        for v, (_, lo, hi) in enumerate(design.bands):
            x = found.bands[key][v]
            if out is None:
                out = np.zeros((len(keys), len(design.bands), x.shape[0], bins), dtype=np.int64)
            idx = np.clip(((x - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
            flat = idx + bins * np.arange(x.shape[0])[:, None]
            out[s, v] = np.bincount(flat.ravel(), minlength=x.shape[0] * bins).reshape(x.shape[0], -1)
    return out


@dataclass
class EnsembleSummary:
    """Merged chunk summaries; float sums added in chunk order when asked for."""

    design: EnsembleDesign
    samples: int
    seed: int
    method: str
    space: UncertaintySpace
    parts: dict = field(default_factory=dict)
    sums: dict = field(default_factory=dict)  # (case, scenario) -> {chunk: (regret_sum, metric_sum)}
    claims: dict = field(default_factory=dict)  # claim -> {"held", "draws", "values": {label: {chunk: (s, c)}}}
    band_times: np.ndarray | None = None
    times: np.ndarray | None = None  # the saved times the metric histograms were binned with

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(self.design.strategies)

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        return self.design.metrics

    def add(self, part: ChunkSummary) -> None:
        if part.band_times is not None:
            self.band_times = part.band_times
        if part.times is not None:
            self.times = part.times
        for key, arrays in part.parts.items():
            self.sums.setdefault(key, {})[part.index] = part.sums[key]
            if key not in self.parts:
                self.parts[key] = {k: (v.copy() if isinstance(v, np.ndarray) else
                                       {m: h.copy() for m, h in v.items()} if isinstance(v, dict) else v)
                                   for k, v in arrays.items()}
                continue
            merged = self.parts[key]
            merged["n"] += arrays["n"]
            for name in ("nonfinite", "best", "regret_n", "metric_n"):
                merged[name] += arrays[name]
            if arrays["band_hist"] is not None:
                merged["band_hist"] += arrays["band_hist"]
            merged["regret_max"] = np.fmax(merged["regret_max"], arrays["regret_max"])
            for name, hist in arrays["metric_hist"].items():
                merged["metric_hist"][name] += hist
        for name, result in part.claims.items():
            if isinstance(result, str):
                self.claims[name] = result
                continue
            mine = self.claims.setdefault(name, {"held": 0, "draws": 0, "values": {}})
            mine["held"] += result["held"]
            mine["draws"] += result["draws"]
            for label, pair in result["values"].items():
                mine["values"].setdefault(label, {})[part.index] = pair

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


def run_ensemble(design: EnsembleDesign, space: UncertaintySpace, n: int, *, seed: int, method: str = "lhs",
                 chunk_size: int = 10_000, workers: int = 1, scheduler=None,
                 progress: bool | None = None, on_samples: Callable[[int, tuple], None] | None = None
                 ) -> EnsembleSummary:
    """Run ``n`` draws of ``space`` for every case x scenario x strategy of ``design``.

    ``workers`` > 1 uses a local process pool; ``scheduler`` (a dask.distributed address or
    Client) sends the chunks to that cluster. Results do not depend on either. ``on_samples``
    (chunk index, (samples, claims per draw)) receives each chunk's per-draw tables as it ends.
    """
    comp = compiled(design)  # metric, claim and band names fail here, before any run
    space = space.checked(comp.sim.resolve)
    for layers in (*design.cases.values(), *design.scenarios.values(), *design.strategies.values()):
        comp.sim.check(layers)
    sampler = UnitSampler(space.dimensions, n, method=method, seed=seed)
    runs_per_draw = len(design.strategies)
    stacked = chunk_size * runs_per_draw <= STACK_LIMIT
    keep = on_samples is not None
    chunks = (Chunk(design, i, start, sampler.rows(start, start + chunk_size), space, stacked, keep)
              for i, start in enumerate(range(0, n, chunk_size)))  # made as they are asked for
    summary = EnsembleSummary(design, n, seed, method, space)
    total = n * len(design.keys)
    bar = tqdm(total=total, desc="ensemble", unit="run", unit_scale=True,
               disable=None if progress is None else not progress, leave=False, smoothing=0.1)
    try:
        for part in _execute(chunks, workers, scheduler):
            summary.add(part)
            if on_samples is not None:
                on_samples(part.index, part.tables)
            bar.update(part.n * len(design.keys))
    finally:
        bar.close()
    return summary


def _execute(chunks: Iterable[Chunk], workers: int, scheduler):
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
