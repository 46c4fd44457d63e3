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
    problem = {"num_vars": len(space), "names": space.names, "bounds": [[0.0, 1.0]] * len(space)}
    unit = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    own = {name: base.get(name, engine.defaults[name]) for name in space.names}
    params = {**base, **space.values(unit, own), **layers}
    result = engine.run(params, n=len(unit), columns=columns)
    rows = []
    for output, y in outputs(result, params).items():
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
    return pd.DataFrame(rows)


def sector_outputs(engine: Engine) -> Outputs:
    """The ``metrics.csv`` metrics as Sobol outputs; a missing breakthrough counts as horizon + 1 year."""
    from sdloop.experiments.ensemble import HORIZON, NEVER_PENALTY, sector_metrics_vectorized
    from sdloop.experiments.metrics import THRESHOLD

    def outputs(result: EngineResult, params: Mapping[str, object]) -> dict[str, np.ndarray]:
        values = sector_metrics_vectorized(result, params.get(THRESHOLD, engine.defaults[THRESHOLD]))
        never = np.isnan(values["breakthrough_year"])
        values["breakthrough_year"] = np.where(never, HORIZON + NEVER_PENALTY, values["breakthrough_year"])
        return values

    return outputs
