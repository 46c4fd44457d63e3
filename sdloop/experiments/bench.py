"""``sdloop bench``: PySD against the vectorized engine on a project's model, in one process.

Runs are one case of the project under one strategy (default: NEV under 'simultaneous', every
lever on) with the uncertain parameters of the project's ``[ensemble] uncertainty`` sampled
(Latin hypercube, fixed seed), so every run differs. PySD's time per run is the mean over
``pysd_runs`` runs; the engine's time per run at N is the best of a few repeats of N runs
recording the columns an ensemble records (the variables the project's metrics read); N = 1
is one run with plain numbers as parameters (what ``simulate --engine numpy`` does). The first engine calls compile the code and are not timed.
``max_rel_diff`` is the largest relative difference (``engine.relative_difference``) over
every variable and saved time between the engine and PySD on the PySD runs. Peak memory is
the process's peak resident set size.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

from sdloop.engines.numpy_engine import Engine, compare_frames

SIZES = (1, 1_000, 10_000, 100_000)
CASE, STRATEGY = "nev", "simultaneous"


def _peak_memory_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def benchmark_project(models_dir: str | Path) -> Path:
    """The first project in ``models_dir`` with an ensemble (its model is benchmarked)."""
    from sdloop.errors import OverrideError
    from sdloop.experiments.project import find_projects, load_project

    for path in find_projects(models_dir):
        if load_project(path).ensemble is not None:
            return path
    raise OverrideError(f"no project file with an [ensemble] in {models_dir}")


def benchmark(models_dir: str | Path = "models", sizes=SIZES, pysd_runs: int = 20, seed: int = 0,
              repeats: int = 3, *, project: str | Path | None = None, case: str = CASE,
              strategy: str = STRATEGY) -> dict:
    """The benchmark figures as a dict (the ``--json`` output)."""
    from sdloop.engines.pysd_model import load_model
    from sdloop.experiments.metrics import MetricSet
    from sdloop.experiments.overrides import merge
    from sdloop.experiments.project import load_project
    from sdloop.experiments.uncertainty import load_uncertainty

    spec = load_project(project or benchmark_project(models_dir))
    path = spec.model
    model, engine = load_model(path), Engine(path)
    base = merge(model, [*spec.layers((case, next(iter(spec.entries("scenario"))), strategy))])
    space = load_uncertainty(spec.ensemble.uncertainty).checked(engine.resolve)
    own = {name: base.get(name, engine.defaults[name]) for name in space.names}
    largest = max(max(sizes), pysd_runs)
    samples = space.sample(largest, own, method="lhs", seed=seed)

    def params(n):  # N = 1 is a single run: plain numbers, as `simulate --engine numpy` passes them
        return {**base, **{k: (float(v[0]) if n == 1 else v[:n]) for k, v in samples.items()}}

    # PySD, one run at a time; the same runs through the engine for parity
    model.run(params(1) | {k: float(v[0]) for k, v in samples.items()})  # warm-up
    frames = []
    start = time.perf_counter()
    for i in range(pysd_runs):
        frames.append(model.run({**base, **{k: float(v[i]) for k, v in samples.items()}}))
    pysd_ms = (time.perf_counter() - start) / pysd_runs * 1e3
    together = engine.run(params(pysd_runs), n=pysd_runs)
    max_rel_diff = max(compare_frames(together.frame(i), frames[i]) for i in range(pysd_runs))

    columns = MetricSet(spec.metrics, engine, horizon=spec.horizon or engine.control["final time"],
                        source=spec.path, entries=spec.names()).columns
    engine.run(params(1), n=1, columns=columns)  # compile both variants
    engine.run(params(2), n=2, columns=columns)
    per_run = {}
    for n in sizes:
        best = np.inf
        for _ in range(1 if n >= 100_000 else repeats):
            start = time.perf_counter()
            engine.run(params(n), n=n, columns=columns)
            best = min(best, time.perf_counter() - start)
        per_run[str(n)] = best / n * 1e6
    speedup = pysd_ms * 1e3 / per_run["10000"] if "10000" in per_run else None
    return {
        "model": str(path),
        "runs": f"case {case}, strategy {strategy}, {len(space)} uncertain parameters (LHS, seed {seed})",
        "pysd_ms_per_run": round(pysd_ms, 3),
        "engine_us_per_run": {k: round(v, 3) for k, v in per_run.items()},
        "speedup_10000": round(speedup, 1) if speedup else None,
        "max_rel_diff": max_rel_diff,
        "peak_memory_mb": round(_peak_memory_mb(), 1),
    }


def format_report(figures: dict) -> str:
    lines = [f"sdloop bench: {figures['model']} ({figures['runs']})",
             f"  PySD                     {figures['pysd_ms_per_run']:10.2f} ms per run"]
    for n, us in figures["engine_us_per_run"].items():
        lines.append(f"  engine, N = {int(n):>7,}     {us:10.2f} us per run")
    if figures["speedup_10000"]:
        lines.append(f"  speed-up at N = 10,000   {figures['speedup_10000']:10,.0f} x PySD's runs per second")
    lines.append(f"  largest relative difference from PySD: {figures['max_rel_diff']:.2e}")
    lines.append(f"  peak memory: {figures['peak_memory_mb']:,.0f} MB")
    return "\n".join(lines)
