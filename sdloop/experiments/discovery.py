"""Scenario discovery: where in the uncertain inputs does a strategy lose, or a claim fail?

The ensemble's per-draw results (``samples.parquet``: each draw's uncertain inputs and every
run's metrics; ``claims_draws.parquet``: each claim's truth per draw) give, for one case and
scenario, a table X of inputs and a yes/no outcome y per draw: the strategy is not best on the
metric (another strategy does strictly better, or the strategy has no value), or the claim does
not hold. PRIM (the Patient Rule Induction Method of Friedman and Fisher 1999, as the EMA
Workbench implements it) peels the input space towards a box where y is common; a box is
judged by its *coverage* (the share of all y-draws inside it) and *density* (the share of draws
inside it with y). ``method="tree"`` fits a shallow decision tree (scikit-learn) instead and
takes its densest leaf as the box.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sdloop.errors import SdloopError

KEYS = ("draw", "case", "scenario", "strategy")


@dataclass(frozen=True)
class Outcome:
    """Inputs (one row per draw), the outcome of interest per draw, and what it means."""

    inputs: pd.DataFrame
    y: np.ndarray
    what: str


@dataclass(frozen=True)
class Box:
    """A region of the inputs: limits of the restricted inputs, its coverage, density and mass."""

    limits: pd.DataFrame  # parameter, low, high, sampled_low, sampled_high
    coverage: float
    density: float
    mass: float
    method: str
    trajectory: pd.DataFrame = field(default_factory=pd.DataFrame)  # coverage, density, mass, res_dim per step
    chosen: int | None = None


def read_meta(path: Path) -> dict:
    """The sdloop metadata stored in a samples file (metrics' ``better``, uncertain inputs, claims)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"sdloop", b"{}"))


def read_samples(path: Path, meta: dict, *, case: str | None = None, scenario: str | None = None,
                 metric: str | None = None) -> pd.DataFrame:
    """The rows of one case and scenario (default: the first in the file) with the inputs and
    ``metric`` only, read from the Parquet file without loading the rest."""
    import pyarrow.parquet as pq

    first = pq.ParquetFile(path).read_row_group(0, columns=["case", "scenario"]).slice(0, 1).to_pylist()[0]
    case, scenario = case or first["case"], scenario or first["scenario"]
    columns = ["draw", "case", "scenario", "strategy", *meta["inputs"], *([metric] if metric else [])]
    if metric is not None and metric not in meta.get("metrics", {}):
        raise SdloopError(f"no metric '{metric}' in these samples{_close(metric, meta.get('metrics', {}))} "
                          f"(there are: {', '.join(meta.get('metrics', {}))})")
    rows = pd.read_parquet(path, columns=columns, filters=[("case", "==", case), ("scenario", "==", scenario)])
    if rows.empty:
        known = pd.read_parquet(path, columns=["case", "scenario"]).drop_duplicates()
        raise SdloopError(f"no draws of case '{case}' under scenario '{scenario}' in these samples "
                          f"(cases: {', '.join(map(str, known['case'].unique()))}; scenarios: "
                          f"{', '.join(map(str, known['scenario'].unique()))})")
    return rows


def strategy_loses(samples: pd.DataFrame, meta: dict, *, case: str, scenario: str, strategy: str,
                   metric: str) -> Outcome:
    """y: ``strategy`` is not the best on ``metric`` (another does strictly better or it has no value)."""
    better = meta.get("metrics", {}).get(metric)
    if metric not in samples.columns or better is None:
        ranked = [m for m, b in meta.get("metrics", {}).items() if b]
        raise SdloopError(f"'{metric}' is not a ranked metric of these samples (ranked: {', '.join(ranked)})")
    rows = _rows(samples, case, scenario)
    strategies = list(dict.fromkeys(rows["strategy"]))
    if strategy not in strategies:
        raise SdloopError(f"no strategy '{strategy}' in these samples{_close(strategy, strategies)} "
                          f"(there are: {', '.join(strategies)})")
    wide = rows.pivot(index="draw", columns="strategy", values=metric)
    never = meta.get("never", {}).get(metric)
    values = wide.replace(np.inf, never if never is not None else np.nan)
    values = -values if better == "higher" else values
    mine = values[strategy]
    others = values.drop(columns=[strategy]).min(axis=1)
    y = (mine.isna() | (others < mine)).to_numpy()
    inputs = rows[rows["strategy"] == strategy].set_index("draw").loc[wide.index, meta["inputs"]]
    return Outcome(varied(inputs.reset_index(drop=True)), y,
                   f"{strategy} is not the best on {metric} ({better} is better)"
                   + "".join(f", {name}" for name in (case, scenario) if name))


def claim_fails(claims: pd.DataFrame, samples: pd.DataFrame, meta: dict, *, claim: str) -> Outcome:
    """y: ``claim`` does not hold on the draw; X: the draw's inputs as sampled for the case of
    ``samples`` (they differ between cases only for inputs relative to a case's value)."""
    if claim not in claims.columns:
        known = [c for c in claims.columns if c != "draw"]
        note = " (declared, but not evaluated on these draws)" if claim in meta.get("claims", {}) else ""
        raise SdloopError(f"no claim '{claim}' in these samples{note}{_close(claim, known)} "
                          f"(there are: {', '.join(known) or 'none'})")
    case = samples["case"].iloc[0]
    rows = samples[samples["case"] == case].drop_duplicates("draw").set_index("draw")
    held = claims.set_index("draw")[claim].reindex(rows.index)
    judged = held.notna().to_numpy()  # draws on which a run blew up carry no verdict
    rows, held = rows[judged], held[judged].astype(bool)
    return Outcome(varied(rows[meta["inputs"]].reset_index(drop=True)), ~held.to_numpy(dtype=bool),
                   f"claim {claim} does not hold" + (f" (inputs of case {case})" if case else ""))


def _close(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def varied(inputs: pd.DataFrame) -> pd.DataFrame:
    """The inputs that were sampled here: finite on every draw and not constant."""
    finite = inputs.astype(float).apply(np.isfinite).all()
    keep = [c for c in inputs.columns if finite[c] and inputs[c].nunique() > 1]
    if not keep:
        raise SdloopError("no uncertain input varies over these draws: nothing to search")
    return inputs[keep]


def _rows(samples: pd.DataFrame, case: str, scenario: str) -> pd.DataFrame:
    rows = samples[(samples["case"] == case) & (samples["scenario"] == scenario)]
    if rows.empty:
        raise SdloopError(f"no draws of case '{case}' under scenario '{scenario}' in these samples "
                          f"(cases: {', '.join(map(str, samples['case'].unique()))}; scenarios: "
                          f"{', '.join(map(str, samples['scenario'].unique()))})")
    return rows


def _limits(inputs: pd.DataFrame, low: pd.Series, high: pd.Series) -> pd.DataFrame:
    rows = []
    for name in inputs.columns:
        lo, hi = float(inputs[name].min()), float(inputs[name].max())
        if low[name] > lo + 1e-12 * max(abs(lo), 1) or high[name] < hi - 1e-12 * max(abs(hi), 1):
            rows.append({"parameter": name, "low": float(low[name]), "high": float(high[name]),
                         "sampled_low": lo, "sampled_high": hi})
    return pd.DataFrame(rows, columns=["parameter", "low", "high", "sampled_low", "sampled_high"])


def _score(inputs: pd.DataFrame, y: np.ndarray, low: pd.Series, high: pd.Series) -> tuple[float, float, float]:
    inside = ((inputs >= low) & (inputs <= high)).all(axis=1).to_numpy()
    coverage = float(y[inside].sum() / y.sum()) if y.sum() else float("nan")
    density = float(y[inside].mean()) if inside.any() else float("nan")
    return coverage, density, float(inside.mean())


def prim_box(outcome: Outcome, *, threshold: float = 0.8, peel_alpha: float = 0.05,
             significance: float = 0.05) -> Box:
    """PRIM's box: of the peeling steps with density >= ``threshold``, the one with the largest
    coverage (else the densest). Restrictions whose quasi-p-value (Bryant and Lempert 2010, as the
    EMA Workbench computes it) exceeds ``significance`` are dropped, least significant first, while
    the box stays at least as dense as the threshold (or as PRIM left it, if less)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim

        found = prim.Prim(outcome.inputs.astype(float), outcome.y, threshold=threshold, peel_alpha=peel_alpha)
        box = found.find_box()
        steps = box.peeling_trajectory[["coverage", "density", "mass", "res_dim"]].reset_index(drop=True)
        good = steps[steps["density"] >= threshold]
        chosen = int(good["coverage"].idxmax()) if len(good) else int(steps["density"].idxmax())
        qp = _quasi_p(box, chosen) if chosen > 0 else {}
    lims = box.box_lims[chosen]
    low, high = lims.iloc[0].astype(float).copy(), lims.iloc[1].astype(float).copy()
    density = _score(outcome.inputs, outcome.y, low, high)[1]
    for name, value in sorted(qp.items(), key=lambda item: -item[1]):  # least significant first
        if value <= significance:
            break
        wider_low, wider_high = low.copy(), high.copy()
        wider_low[name], wider_high[name] = outcome.inputs[name].min(), outcome.inputs[name].max()
        wider = _score(outcome.inputs, outcome.y, wider_low, wider_high)[1]
        if wider >= min(threshold, density):  # keep the box as dense as PRIM left it (or the threshold)
            low, high = wider_low, wider_high
    coverage, density, mass = _score(outcome.inputs, outcome.y, low, high)
    limits = _limits(outcome.inputs, low, high)
    limits["qp_value"] = [qp.get(name, np.nan) for name in limits["parameter"]]
    return Box(limits, coverage, density, mass, "PRIM (EMA Workbench)", steps, chosen)


def _quasi_p(box, step: int) -> dict[str, float]:
    """Each restricted input's quasi-p-value at peeling step ``step`` (the smaller of its two sides)."""
    table = box.inspect(step, style="data")[0][1]
    values = table.xs("qp value", axis=1, level=1) if isinstance(table.columns, pd.MultiIndex) else \
        table.filter(like="qp value")
    return {str(name): float(np.nanmin(row.to_numpy(dtype=float))) if np.isfinite(row.to_numpy(dtype=float)).any()
            else 1.0 for name, row in values.iterrows()}


def tree_box(outcome: Outcome, *, max_depth: int = 3, seed: int = 0) -> Box:
    """A decision tree's (scikit-learn) leaf with the highest share of y among leaves holding at
    least 5% of the draws, as a box."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = outcome.inputs.astype(float), outcome.y
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=max(int(0.05 * len(y)), 1),
                                  random_state=seed).fit(X.to_numpy(), y)
    leaves = tree.apply(X.to_numpy())
    best = max(set(leaves), key=lambda leaf: (y[leaves == leaf].mean(), (leaves == leaf).sum()))
    low, high = X.min().copy(), X.max().copy()
    t = tree.tree_
    node, path = 0, []
    # walk from the root to the chosen leaf, keeping each split's side
    parents = {}
    for i in range(t.node_count):
        for child, side in ((t.children_left[i], "le"), (t.children_right[i], "gt")):
            if child != -1:
                parents[child] = (i, side)
    node = best
    while node in parents:
        parent, side = parents[node]
        path.append((X.columns[t.feature[parent]], float(t.threshold[parent]), side))
        node = parent
    for name, cut, side in path:
        if side == "le":
            high[name] = min(high[name], cut)
        else:
            low[name] = max(low[name], np.nextafter(cut, np.inf))
    coverage, density, mass = _score(X, y, low, high)
    return Box(_limits(X, low, high), coverage, density, mass, f"decision tree (scikit-learn, depth {max_depth})")
