"""Global sensitivity: Sobol indices (SALib) of each outcome to the uncertain parameters.

Saltelli's design is drawn in the unit hypercube (``SALib.sample.sobol``, seeded) and mapped
through each parameter's quantile function, so the indices are those of the declared
distributions. The engine runs all N (d + 2) points at once; ``SALib.analyze.sobol`` gives
first-order (S1) and total (ST) indices with bootstrap confidence intervals.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import sobol as sobol_sample

from sdloop.engines.numpy_engine import Engine, EngineResult
from sdloop.experiments.uncertainty import UncertaintySpace

Outputs = Callable[[EngineResult, Mapping[str, object]], Mapping[str, np.ndarray]]


def sobol_indices(engine: Engine, space: UncertaintySpace, outputs: Outputs, *, n: int, seed: int,
                  base: Mapping[str, float] | None = None, layers: Mapping[str, float] | None = None,
                  columns=None, num_resamples: int = 200) -> pd.DataFrame:
    """First-order and total Sobol indices of every output (one row per output and parameter).

    ``n`` is the base sample size (a power of 2); the model runs n (d + 2) times. ``base`` are
    the run's own overrides (sampled relative parameters multiply them), ``layers`` overrides
    applied after the samples (scenario and strategy). ``outputs(result, params)`` returns one
    array of N values per output; NaN values (an outcome that does not exist for a run) make that
    output be skipped, with a note in the ``note`` column.
    """
    space = space.checked(engine.resolve)
    base = engine.check(base or {})
    layers = engine.check(layers or {})
    unit = saltelli_sample(space, n, seed)
    own = {name: base.get(name, engine.defaults[name]) for name in space.names}
    params = {**base, **space.values(unit, own), **layers}
    result = engine.run(params, n=len(unit), columns=columns)
    return analyze(space, outputs(result, params), seed=seed, num_resamples=num_resamples)


def saltelli_sample(space: UncertaintySpace, n: int, seed: int) -> np.ndarray:
    """Saltelli's design in the unit hypercube: n (d + 2) points (n a power of 2)."""
    return sobol_sample.sample(_problem(space), n, calc_second_order=False, seed=seed)


def _problem(space: UncertaintySpace) -> dict:
    return {"num_vars": len(space), "names": space.names, "bounds": [[0.0, 1.0]] * len(space)}


def analyze(space: UncertaintySpace, outputs: Mapping[str, np.ndarray], *, seed: int,
            num_resamples: int = 200) -> pd.DataFrame:
    """S1 and ST of each output (one array over the Saltelli sample) with bootstrap intervals."""
    problem = _problem(space)
    rows = []
    for output, y in outputs.items():
        y = np.asarray(y, dtype=float)
        if not np.all(np.isfinite(y)):
            share = float(np.mean(~np.isfinite(y)))
            rows += [{"output": output, "parameter": name, "S1": np.nan, "S1_conf": np.nan, "ST": np.nan,
                      "ST_conf": np.nan, "note": f"skipped: {share:.0%} of runs have no value"}
                     for name in space.names]
            continue
        if np.ptp(y) == 0:
            rows += [{"output": output, "parameter": name, "S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0,
                      "note": "constant over the sample"} for name in space.names]
            continue
        with warnings.catch_warnings():  # SALib warns when some resamples are constant; the note says so
            warnings.filterwarnings("ignore", message="Constant values encountered")
            found = sobol_analyze.analyze(problem, y, calc_second_order=False, num_resamples=num_resamples,
                                          seed=seed)
        for j, name in enumerate(space.names):
            rows.append({"output": output, "parameter": name, "S1": float(found["S1"][j]),
                         "S1_conf": float(found["S1_conf"][j]), "ST": float(found["ST"][j]),
                         "ST_conf": float(found["ST_conf"][j]), "note": ""})
    return pd.DataFrame(rows, columns=["output", "parameter", "S1", "S1_conf", "ST", "ST_conf", "note"])


def study_sobol(design, space: UncertaintySpace, key: tuple[str, str, str], *, n: int, seed: int) -> pd.DataFrame:
    """Sobol indices of every metric of one run (case, scenario, strategy) of an ensemble design.

    A never-reached value counts as the metric's ``never``; metrics with undefined values on some
    draws are skipped (with a note)."""
    from sdloop.experiments.draws import evaluate_draws

    by_name = {spec.name: spec for spec in design.metrics}
    unit = saltelli_sample(space, n, seed)
    found = evaluate_draws(design, space, unit, keys=[key])
    outputs = {}
    for name, values in found.metrics[key].items():
        never = by_name[name].never
        outputs[name] = np.where(np.isposinf(values), never if never is not None else np.nan, values)
    return analyze(space, outputs, seed=seed)
