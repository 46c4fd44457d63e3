"""``sdloop bench``: PySD, the numpy engine and the compiled engine on a project's model, in one process.

Runs are one case of the project under one strategy (default: NEV under 'simultaneous', every
lever on) with the uncertain parameters of the project's ``[ensemble] uncertainty`` sampled
(Latin hypercube, fixed seed), so every run differs. PySD's time per run is the mean over
``pysd_runs`` runs. An engine's time per run at N is the best of a few repeats of N runs
recording the columns an ensemble records (the variables the project's metrics read); N = 1 is one run with plain numbers as parameters (what
``simulate --engine numpy`` does). The first calls compile the code and are not timed. The
compiled engine's times per run are on one thread; at N = 10,000 the numpy engine, the
compiled engine on one thread and on every core are timed in turn, repeat after repeat, so
that their ratios come from the same moments of a shared machine. ``*_ms_per_call_64`` is
the best wall time of one call with 64 runs. ``max_rel_diff`` (``compiled_max_rel_diff``)
is the largest relative difference (``engine.relative_difference``) over every variable and
saved time between the numpy (compiled) engine and PySD on the PySD runs. Peak memory is the
process's peak resident set size; ``load_average`` the 1-minute load before and after.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from sdloop.engines.numpy_engine import Engine, compare_frames

SIZES = (1, 1_000, 10_000, 100_000)
CASE, STRATEGY = "nev", "simultaneous"
COMPARED = 10_000  # N at which the engines are compared


def _peak_memory_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _best(call, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def benchmark_project(models_dir: str | Path) -> Path:
    """The first project in ``models_dir`` with an ensemble (its model is benchmarked)."""
    from sdloop.errors import OverrideError
    from sdloop.experiments.project import find_projects, load_project

    for path in find_projects(models_dir):
        if load_project(path).ensemble is not None:
            return path
    raise OverrideError(f"no project file with an [ensemble] in {models_dir}")


def benchmark(models_dir: str | Path = "models", sizes=SIZES, pysd_runs: int = 20, seed: int = 0,
              repeats: int = 3, threads: int | None = None, *, project: str | Path | None = None,
              case: str = CASE, strategy: str = STRATEGY) -> dict:
    """The benchmark figures as a dict (the ``--json`` output)."""
    from sdloop.engines.cbuild import CompilerUnavailable
    from sdloop.engines.ccodegen import CodegenError
    from sdloop.engines.compiled import CompiledEngine, available_cores
    from sdloop.engines.pysd_model import load_model
    from sdloop.experiments.metrics import MetricSet
    from sdloop.experiments.overrides import merge
    from sdloop.experiments.project import load_project
    from sdloop.experiments.uncertainty import load_uncertainty

    load_before = os.getloadavg()[0]
    spec = load_project(project or benchmark_project(models_dir))
    path = spec.model
    model, engine = load_model(path), Engine(path)
    threads = threads or available_cores()
    try:
        compiled, unavailable = CompiledEngine(engine.structure, threads=threads), None
    except (CompilerUnavailable, CodegenError) as exc:
        compiled, unavailable = None, str(exc)
        print(f"sdloop: {unavailable}; the compiled engine is not benchmarked", file=sys.stderr)
    base = merge(model, spec.layers((case, next(iter(spec.entries("scenario"))), strategy)))
    space = load_uncertainty(spec.ensemble.uncertainty).checked(engine.resolve)
    own = {name: base.get(name, engine.defaults[name]) for name in space.names}
    largest = max(max(sizes), pysd_runs, 64, COMPARED)
    samples = space.sample(largest, own, method="lhs", seed=seed)

    def params(n):  # N = 1 is a single run: plain numbers, as `simulate --engine numpy` passes them
        return {**base, **{k: (float(v[0]) if n == 1 else v[:n]) for k, v in samples.items()}}

    # PySD, one run at a time; the same runs through the engines for parity
    model.run(params(1) | {k: float(v[0]) for k, v in samples.items()})  # warm-up
    frames = []
    start = time.perf_counter()
    for i in range(pysd_runs):
        frames.append(model.run({**base, **{k: float(v[i]) for k, v in samples.items()}}))
    pysd_ms = (time.perf_counter() - start) / pysd_runs * 1e3

    def parity(eng) -> float:
        together = eng.run(params(pysd_runs), n=pysd_runs)
        return max(compare_frames(together.frame(i), frames[i]) for i in range(pysd_runs))

    columns = MetricSet(spec.metrics, engine, horizon=spec.horizon or engine.control["final time"],
                        source=spec.path, entries=spec.names()).columns
    engines = {"engine": engine} | ({"compiled": compiled} if compiled else {})
    per_run: dict[str, dict[str, float]] = {name: {} for name in engines}
    for name, eng in engines.items():
        one = {"threads": 1} if name == "compiled" else {}
        eng.run(params(1), n=1, columns=columns, **one)  # compile every variant before timing
        eng.run(params(2), n=2, columns=columns, **one)
        for n in sizes:
            if n == COMPARED:
                continue
            call = lambda: eng.run(params(n), n=n, columns=columns, **one)  # noqa: E731
            per_run[name][str(n)] = _best(call, 1 if n >= 100_000 else repeats) / n * 1e6
    # the engines at N = 10,000, interleaved
    compared = {"engine": np.inf, "compiled": np.inf, "compiled_threads": np.inf}
    calls = {"engine": lambda: engine.run(params(COMPARED), columns=columns)}
    if compiled:
        calls["compiled"] = lambda: compiled.run(params(COMPARED), columns=columns, threads=1)
        calls["compiled_threads"] = lambda: compiled.run(params(COMPARED), columns=columns, threads=threads)
    for _ in range(repeats if COMPARED in sizes else 0):
        for name, call in calls.items():
            compared[name] = min(compared[name], _best(call, 1))
    for name in engines:
        if COMPARED in sizes:
            per_run[name][str(COMPARED)] = compared[name] / COMPARED * 1e6
        per_run[name] = {str(n): per_run[name][str(n)] for n in sizes}
    per_call = {name: _best(lambda: eng.run(params(64), columns=columns), max(repeats, 5)) * 1e3
                for name, eng in engines.items()}
    speedup = pysd_ms * 1e3 / (compared["engine"] / COMPARED * 1e6) if COMPARED in sizes else None
    figures = {
        "model": str(path),
        "runs": f"case {case}, strategy {strategy}, {len(space)} uncertain parameters (LHS, seed {seed})",
        "pysd_ms_per_run": round(pysd_ms, 3),
        "engine_us_per_run": {k: round(v, 3) for k, v in per_run["engine"].items()},
        "speedup_10000": round(speedup, 1) if speedup else None,
        "max_rel_diff": parity(engine),
        "engine_ms_per_call_64": round(per_call["engine"], 3),
        "compiled": "available" if compiled else f"unavailable: {unavailable}",
        "compiled_threads": threads,
        "compiled_us_per_run": {k: round(v, 3) for k, v in per_run.get("compiled", {}).items()},
        "compiled_speedup_over_numpy_10000": (round(compared["engine"] / compared["compiled"], 2)
                                              if compiled and COMPARED in sizes else None),
        "compiled_threads_speedup_10000": (round(compared["compiled"] / compared["compiled_threads"], 2)
                                           if compiled and COMPARED in sizes else None),
        "compiled_ms_per_call_64": round(per_call["compiled"], 3) if compiled else None,
        "compiled_max_rel_diff": parity(compiled) if compiled else None,
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return figures


def format_report(figures: dict) -> str:
    lines = [f"sdloop bench: {figures['model']} ({figures['runs']})",
             f"  PySD                     {figures['pysd_ms_per_run']:10.2f} ms per run"]
    for n, us in figures["engine_us_per_run"].items():
        lines.append(f"  numpy engine, N = {int(n):>7,} {us:10.2f} us per run")
    if figures["speedup_10000"]:
        lines.append(f"  speed-up at N = 10,000   {figures['speedup_10000']:10,.0f} x PySD's runs per second")
    lines.append(f"  numpy engine, 64 runs    {figures['engine_ms_per_call_64']:10.2f} ms per call")
    lines.append(f"  largest relative difference from PySD: {figures['max_rel_diff']:.2e}")
    if figures["compiled"] != "available":
        lines.append(f"  compiled engine {figures['compiled']}")
    else:
        for n, us in figures["compiled_us_per_run"].items():
            lines.append(f"  compiled, N = {int(n):>7,}   {us:10.2f} us per run (one thread)")
        if figures["compiled_speedup_over_numpy_10000"]:
            lines.append(f"  compiled over numpy at N = 10,000, one core: "
                         f"{figures['compiled_speedup_over_numpy_10000']:.2f} x")
            lines.append(f"  compiled on {figures['compiled_threads']} threads over one at N = 10,000: "
                         f"{figures['compiled_threads_speedup_10000']:.2f} x")
        lines.append(f"  compiled, 64 runs        {figures['compiled_ms_per_call_64']:10.2f} ms per call")
        lines.append(f"  compiled, largest relative difference from PySD: {figures['compiled_max_rel_diff']:.2e}")
    lines.append(f"  peak memory: {figures['peak_memory_mb']:,.0f} MB")
    lines.append(f"  load average (1 min) before and after: {figures['load_average'][0]:.2f}, "
                 f"{figures['load_average'][1]:.2f} on {os.cpu_count()} cores")
    return "\n".join(lines)
