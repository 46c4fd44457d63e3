"""Strategy robustness from an ensemble: probability of being best, regret, percentiles, claims.

For each case and scenario, every strategy ran on the same N draws. On each draw and ranked
metric (``better`` declared) the best strategy is the one with the best value (ties all count
as best, so probabilities can add up to more than 1); a strategy's regret is how far it falls
short of that draw's best, in the metric's own unit. Minimax regret picks the strategy whose
largest regret over all draws is smallest. A never-reached value counts as the metric's
``never``; draws on which a strategy has no value (undefined) are left out of that metric's
regret. A claim's share of draws is the share of all draws on which it holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sdloop.experiments.ensemble import EnsembleSummary, metric_edges

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
            for m, spec in enumerate(summary.metrics):
                hist = part["metric_hist"][spec.name][s]
                quant = histogram_quantiles(hist, metric_edges(spec, summary.times), [p / 100 for p in (5, 50, 95)])
                valued = part["metric_n"][s, m]
                ranked = spec.better is not None
                rows.append({
                    "case": key[0], "scenario": key[1], "strategy": strategy, "metric": spec.name, "samples": n,
                    "p_best": part["best"][s, m] / n if ranked else np.nan,
                    "max_regret": part["regret_max"][s, m],
                    "mean_regret": regret_sum[s, m] / part["regret_n"][s, m] if part["regret_n"][s, m] else np.nan,
                    "mean": metric_sum[s, m] / valued if valued else np.nan,
                    "p5": quant[0], "median": quant[1], "p95": quant[2],
                    "missing": 1 - valued / n,
                    "nonfinite_runs": int(part["nonfinite"][s]),
                })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for column in ("case", "scenario", "strategy"):  # a project without that dimension has one unnamed entry
        if (table[column] == "").all():
            table[column] = table[column].replace("", "-")
    return table


def minimax_regret(table: pd.DataFrame) -> pd.DataFrame:
    """Per case, scenario and ranked metric: the strategy with the smallest maximum regret, and
    the most often best."""
    rows = []
    for (case, scenario, metric), group in table.groupby(["case", "scenario", "metric"], sort=False):
        if group["p_best"].isna().all():
            continue
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
    return pd.DataFrame(rows, columns=["case", "scenario", "metric", "minimax_regret_strategy", "max_regret",
                                       "most_often_best", "p_best"])


def percentile_bands(summary: EnsembleSummary, case: str, scenario: str, variable: str,
                     percentiles=PERCENTILES) -> dict[str, pd.DataFrame]:
    """Strategy -> DataFrame indexed by time with one column per percentile of band ``variable``."""
    part = summary.parts[(case, scenario)]
    names = [v for v, _, _ in summary.design.bands]
    v = names.index(variable)
    _, lo, hi = summary.design.bands[v]
    bins = summary.design.band_bins
    edges = np.linspace(lo, hi, bins + 1)
    bands = {}
    for s, strategy in enumerate(summary.strategies):
        hist = part["band_hist"][s, v]
        rows = [histogram_quantiles(np.concatenate([[0], h, [0]]), edges, [p / 100 for p in percentiles])
                for h in hist]
        bands[strategy] = pd.DataFrame(rows, columns=[f"p{p}" for p in percentiles],
                                       index=pd.Index(summary.band_times, name="time"))
    return bands


def bands_table(summary: EnsembleSummary, percentiles=PERCENTILES) -> pd.DataFrame:
    """Every band (case, scenario, strategy, variable) in one long table."""
    frames = []
    for case, scenario in summary.keys:
        for variable, _, _ in summary.design.bands:
            for strategy, frame in percentile_bands(summary, case, scenario, variable, percentiles).items():
                frames.append(frame.reset_index().assign(case=case, scenario=scenario, strategy=strategy,
                                                         variable=variable))
    columns = ["case", "scenario", "strategy", "variable", "time", *[f"p{p}" for p in percentiles]]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def claims_share_table(summary: EnsembleSummary) -> pd.DataFrame:
    """claims.csv of an ensemble: each claim's share of draws, its text, the mean values compared."""
    rows = []
    for spec in summary.design.claims:
        result = summary.claims.get(spec.name)
        if result is None or isinstance(result, str):
            rows.append({"claim": spec.name, "share_of_draws": np.nan, "draws": 0, "text": spec.text,
                         "values": result or "not evaluated"})
            continue
        means = []
        for label, chunks in result["values"].items():
            total = sum(chunks[i][0] for i in sorted(chunks))
            count = sum(chunks[i][1] for i in sorted(chunks))
            means.append(f"{label} mean={total / count:.6g}" if count else f"{label}: no finite value")
        rows.append({"claim": spec.name, "share_of_draws": result["held"] / result["draws"] if result["draws"] else
                     np.nan, "draws": result["draws"], "text": spec.text, "values": "; ".join(means)})
    return pd.DataFrame(rows, columns=["claim", "share_of_draws", "draws", "text", "values"])
