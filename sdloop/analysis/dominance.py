"""Loop dominance by Loops That Matter (LTM) along one run.

Schoenberg, Davidsen and Eberlein (System Dynamics Review 36(2), 2020), with the
flow-to-stock link score of Schoenberg, Hayward and Eberlein (System Dynamics Review
39(2), 2023). For each step from t-1 to t, with ``D`` the change over the step:

- link ``x -> z`` (z computed by an equation): ``|D_x z / D z| * sign(D_x z / D x)``, where
  ``D_x z`` is how z would have changed had only x changed (z's equation evaluated with x
  at t and every other input at t-1); 0 when z or x did not change;
- link ``flow -> stock``: ``+-|D flow / D net flow|`` (+ for an inflow, - for an outflow);
  ``flow_scores="2020"`` gives the original ``+-|flow / net flow|`` instead.

A loop's score is the product of its link scores; its relative score divides by the sum
of the absolute scores of the loops in the same cycle partition (the loops that share
stocks through feedback; a strongly connected part of the causal graph). The dominant
loop at a time is the one with the largest absolute relative score in its partition.

Loops named in a sidecar may belong to a *group*; ``group_scores`` sums the relative scores
of a group's loops: its *share* (sum of absolute relative scores, 0-1) is the fraction of the
partition's loop activity the group carries, its *net* score (signed sum) says whether that
activity is reinforcing (+) or balancing (-) on balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import networkx as nx
import numpy as np
import pandas as pd

from sdloop.engines.euler import TIME_NAME, Evaluator, Trajectory
from sdloop.analysis.loops import Loop, causal_graph
from sdloop.structure.build import ModelStructure


@dataclass(frozen=True)
class Period:
    """A stretch of time over which one loop dominates its partition."""

    partition: int
    start: float
    end: float
    loop: str | None  # loop id; None where no loop is active (all scores zero)
    polarity: str | None
    mean_relative_score: float


@dataclass(frozen=True)
class Dominance:
    """LTM scores of one run; rows are the times t of the steps t-1 -> t."""

    link_scores: pd.DataFrame  # columns "x -> z"
    loop_scores: pd.DataFrame  # columns loop id
    relative_scores: pd.DataFrame  # columns loop id
    partitions: tuple[tuple[str, ...], ...]  # loop ids per cycle partition
    loops: tuple[Loop, ...]

    def dominant(self, partition: int = 0) -> pd.Series:
        """Id of the dominant loop of ``partition`` at every time (None when none is active)."""
        ids = list(self.partitions[partition])
        rel = self.relative_scores[ids].abs()
        best = rel.idxmax(axis=1).where(rel.max(axis=1) > 0)
        return best.astype(object).where(best.notna(), None)

    def periods(self, min_length: float = 0.0) -> list[Period]:
        """Consecutive times with the same dominant loop, for every partition.

        A stretch shorter than ``min_length`` (in time units) is counted with the stretch
        before it (or after it, at the start), so brief switches do not fragment the story.
        """
        polarity = {loop.id: loop.polarity for loop in self.loops}
        out: list[Period] = []
        for p in range(len(self.partitions)):
            dominant = self.dominant(p)
            times = dominant.index.to_numpy()
            step = float(times[1] - times[0]) if len(times) > 1 else 0.0
            runs: list[list] = []  # [loop id, first index, last index]
            for i, loop_id in enumerate(dominant.to_numpy()):
                if runs and runs[-1][0] == loop_id:
                    runs[-1][2] = i
                else:
                    runs.append([loop_id, i, i])
            if min_length > 0:
                merged: list[list] = []
                for run in runs:
                    short = times[run[2]] - times[run[1]] + step < min_length
                    if merged and (short or merged[-1][0] == run[0]):
                        merged[-1][2] = run[2]
                    else:
                        merged.append(run)
                if len(merged) > 1 and times[merged[0][2]] - times[merged[0][1]] + step < min_length:
                    merged[1][1] = merged[0][1]
                    merged.pop(0)
                runs = merged
            for loop_id, first, last in runs:
                mean = float(self.relative_scores[loop_id].iloc[first:last + 1].mean()) if loop_id else 0.0
                out.append(Period(p, float(times[first]), float(times[last]), loop_id,
                                  polarity.get(loop_id), mean))
        return out


def _changes(arr: np.ndarray) -> np.ndarray:
    return arr[1:] - arr[:-1]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = np.where(den != 0, num / np.where(den != 0, den, 1.0), 0.0)
    return np.where(np.isfinite(out), out, 0.0)


def link_scores(structure: ModelStructure, run: Trajectory, links: set[tuple[str, str]],
                evaluator: Evaluator | None = None, flow_scores: str = "2023") -> dict[tuple[str, str], np.ndarray]:
    """LTM score of each link (source, target) at every step of ``run``."""
    evaluator = evaluator or Evaluator(structure)
    n = len(run.times)
    scores: dict[tuple[str, str], np.ndarray] = {}
    for source, target in sorted(links):
        var = structure.variables[target]
        if var.kind == "stock":
            sign = 1.0 if source in var.inflows else -1.0
            net = sum((run[f] for f in var.inflows), np.zeros(n)) - sum((run[f] for f in var.outflows), np.zeros(n))
            if flow_scores == "2020":
                scores[source, target] = sign * np.abs(_ratio(run[source][1:], net[1:]))
            else:
                scores[source, target] = sign * np.abs(_ratio(_changes(run[source]), _changes(net)))
            continue
        equation = evaluator.equations[target]
        previous = {name: run[name][:-1] for name in equation.inputs}
        if var.kind == "delay_fixed":
            value = equation.over({name: run[name] for name in equation.inputs}, n)
        else:
            value = run[target]
        mixed = dict(previous)
        mixed[source] = run[source][1:]
        partial = equation.over(mixed, n - 1) - equation.over(previous, n - 1)
        total = _changes(value)
        scores[source, target] = np.abs(_ratio(partial, total)) * np.sign(_ratio(partial, _changes(run[source])))
    return scores


def cycle_partitions(structure: ModelStructure, loops: list[Loop]) -> list[list[Loop]]:
    """Loops grouped by the strongly connected part of the causal graph they lie in."""
    graph = causal_graph(structure)
    component_of = {}
    for i, component in enumerate(nx.strongly_connected_components(graph)):
        for node in component:
            component_of[node] = i
    groups: dict[int, list[Loop]] = {}
    for loop in loops:
        groups.setdefault(component_of[loop.nodes[0]], []).append(loop)
    return sorted(groups.values(), key=len, reverse=True)


def loop_dominance(structure: ModelStructure, run: Trajectory, loops: list[Loop], *,
                   flow_scores: str = "2023", evaluator: Evaluator | None = None) -> Dominance:
    """Link, loop and relative loop scores at every step of ``run``, and dominance periods."""
    if flow_scores not in ("2020", "2023"):
        raise ValueError("flow_scores is '2020' or '2023'")
    wanted = {link for loop in loops for link in loop.links()}
    scores = link_scores(structure, run, wanted, evaluator, flow_scores)
    times = pd.Index(run.times[1:], name=TIME_NAME)
    keys = sorted(scores)
    position = {key: i for i, key in enumerate(keys)}
    matrix = np.array([scores[key] for key in keys]).reshape(len(keys), len(times))
    link_frame = pd.DataFrame(matrix.T, index=times, columns=[f"{a} -> {b}" for a, b in keys])
    loop_matrix = np.array([matrix[[position[link] for link in loop.links()]].prod(axis=0) for loop in loops])
    loop_matrix = loop_matrix.reshape(len(loops), len(times))
    partitions = cycle_partitions(structure, loops)
    row = {loop.id: i for i, loop in enumerate(loops)}
    relative_matrix = np.zeros_like(loop_matrix)
    for group in partitions:
        rows = [row[loop.id] for loop in group]
        total = np.abs(loop_matrix[rows]).sum(axis=0)
        relative_matrix[rows] = _ratio(loop_matrix[rows], total[None, :])
    ids = [loop.id for loop in loops]
    loop_frame = pd.DataFrame(loop_matrix.T, index=times, columns=ids)
    relative = pd.DataFrame(relative_matrix.T, index=times, columns=ids)
    return Dominance(link_frame, loop_frame, relative,
                     tuple(tuple(loop.id for loop in g) for g in partitions), tuple(loops))


def describe_periods(dominance: Dominance, names: Mapping[str, str] | None = None,
                     min_length: float = 0.0) -> list[str]:
    """One line per dominance period: ``t0-t1: B1 (name), mean relative score``."""
    names = names or {loop.id: loop.name for loop in dominance.loops if loop.name}
    lines = []
    for period in dominance.periods(min_length):
        label = "no active loop" if period.loop is None else (
            period.loop + (f" ({names[period.loop]})" if names.get(period.loop) else ""))
        prefix = f"partition {period.partition + 1}: " if len(dominance.partitions) > 1 else ""
        lines.append(f"{prefix}{period.start:g}-{period.end:g}: {label}"
                     + (f", mean relative score {period.mean_relative_score:+.2f}" if period.loop else ""))
    return lines


def group_scores(dominance: Dominance, groups: Mapping[str, str], partition: int = 0) -> pd.DataFrame:
    """Per time and group: ``share`` (sum of |relative score|) and ``net`` (signed sum) of the
    group's loops in ``partition``; loops in no group are summed as "other loops".

    ``groups`` maps a loop id to its group name (``loops.loop_groups``).
    """
    ids = set(dominance.partitions[partition])
    members: dict[str, list[str]] = {}
    for loop in dominance.loops:
        if loop.id in ids:
            members.setdefault(groups.get(loop.id, "other loops"), []).append(loop.id)
    columns = {}
    for group, loop_ids in members.items():
        rel = dominance.relative_scores[loop_ids]
        columns[(group, "share")] = rel.abs().sum(axis=1)
        columns[(group, "net")] = rel.sum(axis=1)
    frame = pd.DataFrame(columns)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["group", "score"])
    return frame


def describe_groups(scores: pd.DataFrame, bins: int = 3) -> list[str]:
    """One line per group: its mean share (and net sign) over the run cut into ``bins`` stretches."""
    times = scores.index.to_numpy()
    edges = np.linspace(0, len(times), bins + 1).astype(int)
    spans = [(times[a], times[b - 1]) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    lines = []
    for group in dict.fromkeys(scores.columns.get_level_values(0)):
        parts = []
        for (a, b), lo, hi in zip(spans, edges[:-1], edges[1:]):
            share = float(scores[(group, "share")].iloc[lo:hi].mean())
            net = float(scores[(group, "net")].iloc[lo:hi].mean())
            parts.append(f"{a:g}-{b:g} {100 * share:.0f}% ({'R' if net > 0 else 'B' if net < 0 else '-'})")
        lines.append(f"{group}: " + ", ".join(parts))
    return lines
