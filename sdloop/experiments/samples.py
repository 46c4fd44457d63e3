"""Per-draw ensemble results: each draw's uncertain inputs and every run's metrics, as tables.

``chunk_tables(design, found, start)`` turns one chunk's ``DrawResult`` into two tables: the
samples (one row per draw x case x scenario x strategy: ``draw``, the run, the case's sampled
inputs, every metric; +inf never reached, NaN undefined) and the claims (one row per draw, one
yes/no column per claim evaluated on the draws). ``metadata`` says which columns are inputs
and how each metric is ranked (``sdloop discover`` reads it from the file's metadata);
``sdloop.report.samples_file`` writes the tables chunk by chunk.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from sdloop.experiments.metrics import DIMS

SAMPLES = "samples.parquet"
CLAIMS = "claims_draws.parquet"


def chunk_tables(design, found, start: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(samples, claims per draw) of draws [start, start + n) as DataFrames."""
    frames = []
    inputs = sorted(set().union(*[set(v) for v in found.inputs.values()])) if found.inputs else []
    for key, values in found.metrics.items():
        n = len(next(iter(values.values()))) if values else 0
        frame = pd.DataFrame({"draw": np.arange(start, start + n, dtype=np.int64),
                              **{d: np.full(n, name, dtype=object) for d, name in zip(DIMS, key)}})
        sampled = found.inputs.get(key[0], {})
        for name in inputs:
            frame[input_column(name, design)] = np.broadcast_to(np.asarray(sampled.get(name, np.nan), float), (n,))
        for spec in design.metrics:
            frame[spec.name] = np.asarray(values[spec.name], dtype=float)
        frames.append(frame)
    samples = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    usable = found.usable  # a draw on which a run blew up: the claim is not judged (missing)
    held = {name: pd.array(np.where(usable, np.asarray(result[0], dtype=bool), None), dtype="boolean")
            for name, result in found.claims.items() if not isinstance(result, str)}
    if not held:
        return samples, None
    n = len(next(iter(held.values())))
    return samples, pd.DataFrame({"draw": np.arange(start, start + n, dtype=np.int64), **held})


def input_column(name: str, design) -> str:
    """The column of an uncertain input (renamed if a metric has the same name)."""
    taken = {s.name for s in design.metrics} | set(DIMS) | {"draw"}
    return f"{name} (input)" if name in taken else name


def metadata(design, space, units: Mapping[str, str] | None = None) -> dict:
    """What ``sdloop discover`` needs to know about the columns (``units``: the model's units)."""
    names = list(space.names)
    if space.posterior is not None:
        names += sorted(set().union(*[set(t) for t in space.posterior.draws.values()]) - set(names))
    units = units or {}
    return {"inputs": sorted(input_column(n, design) for n in names),
            "input_units": {input_column(n, design): units.get(n) or "" for n in names},
            "metrics": {s.name: s.better for s in design.metrics},
            "never": {s.name: s.never for s in design.metrics if s.never is not None},
            "units": {s.name: s.unit for s in design.metrics},
            "claims": {c.name: c.text for c in design.claims}}
