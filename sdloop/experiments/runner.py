"""Run a model under a set of named override layers and collect the results in memory."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import pandas as pd

from sdloop.engines.pysd_model import Model
from sdloop.experiments.overrides import Overrides, merge


def resolve_entries(model: Model, entries: Iterable[Overrides],
                    base: Sequence[Overrides] = ()) -> dict[str, dict[str, float]]:
    """Each entry's overrides on top of the ``base`` layers, every name checked against
    the model (so a bad name fails before any run starts)."""
    return {entry.name: merge(model, [*base, entry]) for entry in entries}


def run_all(model: Model, params: Mapping[str, Mapping[str, float]], **run_kwargs) -> dict[str, pd.DataFrame]:
    """One run per named parameter set."""
    return {name: model.run(values, **run_kwargs) for name, values in params.items()}


def values_at(runs: Mapping[str, pd.DataFrame], variables: Sequence[str], time: float) -> pd.DataFrame:
    """A table of each run's values at ``time`` (the last saved time at or before it)."""
    rows = {}
    for name, frame in runs.items():
        row = frame.loc[:time].iloc[-1]
        rows[name] = row[list(variables)]
    table = pd.DataFrame(rows).T
    table.index.name = "scenario"
    return table


def stack(runs: Mapping[str, pd.DataFrame], key: str = "scenario") -> pd.DataFrame:
    """Runs in one long table: a ``key`` column, ``time``, then the variables."""
    frames = [frame.reset_index().assign(**{key: name}) for name, frame in runs.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[[key, "time", *[c for c in table.columns if c not in (key, "time")]]]
