"""Outcome metrics of a sector run, the columns of ``metrics.csv``.

- ``breakthrough_year``: first saved time at which *Technological Capability* reaches the
  *Breakthrough Threshold* (NaN, written empty, if it never does).
- ``self_sufficiency_2035``: *Self Sufficiency* (fraction of home demand supplied at home) at
  the horizon.
- ``global_share_2035``: *Global Market Share* (home firms' share of the world market outside
  home) at the horizon.
- ``peak_shortfall``: the largest *Supply Shortfall* (fraction of home demand unmet).
- ``cumulative_fiscal_cost``: *Cumulative Fiscal Cost* at the horizon, billion yuan.
- ``cost_per_capability``: that cost over the capability gained since the start, billion yuan
  per unit of capability (NaN if capability did not rise).
"""

from __future__ import annotations

import math
from typing import Mapping

import pandas as pd

METRIC_COLUMNS = [
    "breakthrough_year",
    "self_sufficiency_2035",
    "global_share_2035",
    "peak_shortfall",
    "cumulative_fiscal_cost",
    "cost_per_capability",
]

# For ranking: True when more is better. A missing breakthrough or cost ranks last.
HIGHER_IS_BETTER = {
    "breakthrough_year": False,
    "self_sufficiency_2035": True,
    "global_share_2035": True,
    "peak_shortfall": False,
    "cumulative_fiscal_cost": False,
    "cost_per_capability": False,
}

CAPABILITY = "Technological Capability"
THRESHOLD = "Breakthrough Threshold"
SELF_SUFFICIENCY = "Self Sufficiency"
GLOBAL_SHARE = "Global Market Share"
SHORTFALL = "Supply Shortfall"
FISCAL_COST = "Cumulative Fiscal Cost"


def breakthrough_year(capability: pd.Series, threshold: float) -> float:
    """First time ``capability`` reaches ``threshold``, or NaN."""
    reached = capability[capability >= threshold]
    return float(reached.index[0]) if len(reached) else math.nan


def sector_metrics(frame: pd.DataFrame, threshold: float, horizon: float = 2035) -> dict[str, float]:
    """The six outcome metrics of one run (``frame`` indexed by time)."""
    at = frame.loc[:horizon].iloc[-1]
    gained = at[CAPABILITY] - frame[CAPABILITY].iloc[0]
    cost = float(at[FISCAL_COST])
    return {
        "breakthrough_year": breakthrough_year(frame.loc[:horizon, CAPABILITY], threshold),
        "self_sufficiency_2035": float(at[SELF_SUFFICIENCY]),
        "global_share_2035": float(at[GLOBAL_SHARE]),
        "peak_shortfall": float(frame.loc[:horizon, SHORTFALL].max()),
        "cumulative_fiscal_cost": cost,
        "cost_per_capability": cost / gained if gained > 0 else math.nan,
    }


def rank_strategies(metrics: pd.DataFrame) -> pd.DataFrame:
    """Rank (1 = best) of each strategy on each metric; rows strategies, columns metrics.

    ``metrics`` has one row per strategy (index) and the METRIC_COLUMNS. Ties share the
    better rank; missing values rank last.
    """
    ranks = {}
    for column in METRIC_COLUMNS:
        ranks[column] = metrics[column].rank(ascending=not HIGHER_IS_BETTER[column], method="min",
                                             na_option="bottom")
    return pd.DataFrame(ranks, index=metrics.index).astype(int)


def threshold_of(params: Mapping[str, float], defaults: Mapping[str, float]) -> float:
    """The breakthrough threshold a run used (its override, else the model's value)."""
    return float(params.get(THRESHOLD, defaults[THRESHOLD]))
