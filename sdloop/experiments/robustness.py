"""Strategy robustness from an ensemble: probability of being best, regret, percentiles.

For each case and scenario, every strategy ran on the same N parameter samples. On each
sample and metric the best strategy is the one with the best value (``metrics.HIGHER_IS_BETTER``;
ties all count as best, so probabilities can add up to more than 1); a strategy's regret
is how far it falls short of that sample's best, in the metric's own unit. Minimax regret
picks the strategy whose largest regret over all samples is smallest. A run that never
breaks through counts as breaking through one year after the horizon; samples on which a
strategy has no value of a metric (no capability gained: no cost per capability) are left
out of that metric's regret.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdloop.experiments.ensemble import BAND_BINS, BAND_RANGES, METRIC_EDGES, EnsembleSummary
from sdloop.experiments.metrics import METRIC_COLUMNS

PERCENTILES = (5, 25, 50, 75, 95)


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, qs) -> np.ndarray:
    """Quantiles (0-1) from counts below/in-bins/above ``edges``, interpolating within bins."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total == 0:
        return np.full(len(qs), np.nan)
    cum = np.cumsum(counts)
    out = []
    for q in qs:
        target = q * total
        i = int(np.searchsorted(cum, target, side="left"))
        if i == 0:
            out.append(edges[0])
        elif i >= len(edges):
            out.append(edges[-1])
        else:
            before = cum[i - 1]
            frac = (target - before) / counts[i] if counts[i] else 0.0
            out.append(edges[i - 1] + frac * (edges[i] - edges[i - 1]))
    return np.array(out)


def robustness_table(summary: EnsembleSummary) -> pd.DataFrame:
    """One row per case, scenario, strategy and metric."""
    rows = []
    for key in summary.keys:
        part = summary.parts[key]
        regret_sum, metric_sum = summary.totals(key)
        n = part["n"]
        for s, strategy in enumerate(summary.strategies):
            for m, metric in enumerate(METRIC_COLUMNS):
                hist = part["metric_hist"][metric][s]
                quant = histogram_quantiles(hist, METRIC_EDGES[metric], [p / 100 for p in (5, 50, 95)])
                valued = part["metric_n"][s, m]
                rows.append({
                    "case": key[0], "scenario": key[1], "strategy": strategy, "metric": metric, "samples": n,
                    "p_best": part["best"][s, m] / n,
                    "max_regret": part["regret_max"][s, m],
                    "mean_regret": regret_sum[s, m] / part["regret_n"][s, m] if part["regret_n"][s, m] else np.nan,
                    "mean": metric_sum[s, m] / valued if valued else np.nan,
                    "p5": quant[0], "median": quant[1], "p95": quant[2],
                    "missing": 1 - valued / n,
                    "nonfinite_runs": int(part["nonfinite"][s]),
                })
    return pd.DataFrame(rows)


def minimax_regret(table: pd.DataFrame) -> pd.DataFrame:
    """Per case, scenario and metric: the strategy with the smallest maximum regret, and the most
    often best."""
    rows = []
    for (case, scenario, metric), group in table.groupby(["case", "scenario", "metric"], sort=False):
        ranked = group.dropna(subset=["max_regret"])
        if len(ranked) and ranked["max_regret"].max() == ranked["max_regret"].min():
            choice = "(all tied)"
        else:
            choice = ranked.loc[ranked["max_regret"].idxmin(), "strategy"] if len(ranked) else ""
        rows.append({
            "case": case, "scenario": scenario, "metric": metric,
            "minimax_regret_strategy": choice,
            "max_regret": ranked["max_regret"].min() if len(ranked) else np.nan,
            "most_often_best": group.loc[group["p_best"].idxmax(), "strategy"],
            "p_best": group["p_best"].max(),
        })
    return pd.DataFrame(rows)


def percentile_bands(summary: EnsembleSummary, case: str, scenario: str, variable: str,
                     percentiles=PERCENTILES) -> dict[str, pd.DataFrame]:
    """Strategy -> DataFrame indexed by time with one column per percentile of ``variable``."""
    part = summary.parts[(case, scenario)]
    v = list(BAND_RANGES).index(variable)
    lo, hi = BAND_RANGES[variable]
    edges = np.linspace(lo, hi, BAND_BINS + 1)
    bands = {}
    for s, strategy in enumerate(summary.strategies):
        hist = part["band_hist"][s, v]
        rows = [histogram_quantiles(np.concatenate([[0], h, [0]]), edges, [p / 100 for p in percentiles])
                for h in hist]
        bands[strategy] = pd.DataFrame(rows, columns=[f"p{p}" for p in percentiles],
                                       index=pd.Index(part["band_times"], name="time"))
    return bands


def bands_table(summary: EnsembleSummary, percentiles=PERCENTILES) -> pd.DataFrame:
    """Every band (case, scenario, strategy, variable) in one long table."""
    frames = []
    for case, scenario in summary.keys:
        for variable in BAND_RANGES:
            for strategy, frame in percentile_bands(summary, case, scenario, variable, percentiles).items():
                frames.append(frame.reset_index().assign(case=case, scenario=scenario, strategy=strategy,
                                                         variable=variable))
    table = pd.concat(frames, ignore_index=True)
    return table[["case", "scenario", "strategy", "variable", "time", *[f"p{p}" for p in percentiles]]]
