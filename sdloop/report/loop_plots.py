"""Figures of feedback structure: relative loop scores over time and a causal-loop diagram.

Reporting layer (imports matplotlib). Both functions take ``ax=None`` and return the
axes; ``save`` writes PDF and 300-dpi PNG through ``sdloop.report.plotting.save_figure``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import networkx as nx
import numpy as np
from matplotlib.figure import Figure

from sdloop.analysis.dominance import Dominance
from sdloop.analysis.loops import Link, Loop
from sdloop.structure.build import ModelStructure

MAX_LINES = 8


def _label(loop: Loop) -> str:
    return f"{loop.id} {loop.name}" if loop.name else loop.id


def relative_scores_plot(dominance: Dominance, *, ax=None, partition: int = 0, max_lines: int = MAX_LINES,
                         time_label: str = "Time", title: str | None = None, phases=None):
    """Relative loop scores of one cycle partition over time (largest ``max_lines`` loops),
    in the house style: reinforcing loops solid, balancing loops dashed, gray levels and
    markers told apart in print; the others are summed as "other". ``phases`` ((start, end,
    label, gray), ...: a project's ``[[phases]]``) shades periods of the time axis."""
    from sdloop.report import plotting

    with plotting.style():
        if ax is None:
            ax = Figure(figsize=(plotting.DOUBLE_COLUMN, 2.2 * plotting.PANEL_HEIGHT / 1.6),
                        layout="constrained").subplots()
        ids = list(dominance.partitions[partition]) if dominance.partitions else []
        rel = dominance.relative_scores[ids]
        ranked = sorted(ids, key=lambda i: -float(rel[i].abs().max()))
        shown, rest = ranked[:max_lines], ranked[max_lines:]
        by_id = {loop.id: loop for loop in dominance.loops}
        grays, markers = ("0.0", "0.3", "0.5", "0.65"), ("", "o", "s", "^", "v", "D")
        counts = {"R": 0, "B": 0}
        for loop_id in shown:
            loop = by_id[loop_id]
            kind = loop.polarity if loop.polarity in counts else "B"
            k = counts[kind]
            counts[kind] += 1
            style = "-" if loop.polarity == "R" else "--" if loop.polarity == "B" else ":"
            ax.plot(rel.index, rel[loop_id], linestyle=style, color=grays[k % len(grays)],
                    marker=markers[(k // len(grays)) % len(markers)] or None,
                    markevery=max(len(rel) // 12, 1), ms=3, markerfacecolor="white", label=_label(loop))
        if rest:
            ax.plot(rel.index, rel[rest].sum(axis=1), color="0.75", linewidth=0.8,
                    label=f"{len(rest)} other loops (sum)")
        ax.axhline(0, color="0.3", linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(rel.index.min(), rel.index.max())
        if phases:
            plotting.shade_phases(ax, phases)
        ax.set_xlabel(time_label)
        ax.set_ylabel("Relative loop score (-)")
        if title:
            ax.set_title(title, loc="left")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return ax


def _collapsed_links(structure: ModelStructure, loops: Sequence[Loop],
                     links: Mapping[tuple[str, str], Link]) -> dict[tuple[str, str], str]:
    """Links between Vensim variables on loops, with polarity through written-out stages."""
    signs: dict[tuple[str, str], str] = {}
    for loop in loops:
        nodes = list(loop.nodes)
        owner = [structure.variables[n].vensim_name for n in nodes]
        start = next((i for i in range(len(nodes)) if owner[i] != owner[i - 1]), None)
        if start is None:
            continue
        nodes, owner = nodes[start:] + nodes[:start], owner[start:] + owner[:start]
        groups: list[tuple[str, list[str]]] = []
        for node, name in zip(nodes, owner):
            if groups and groups[-1][0] == name:
                groups[-1][1].append(node)
            else:
                groups.append((name, [node]))
        for g, (name, members) in enumerate(groups):
            following = groups[(g + 1) % len(groups)]
            path = members + [following[1][0]]
            sign = "+"
            for a, b in zip(path, path[1:]):
                sign = _multiply(sign, links[a, b].polarity)
            signs[name, following[0]] = sign
    return signs


def _multiply(a: str, b: str) -> str:
    if "depends" in (a, b):
        return "depends"
    return "+" if a == b else "-"


def causal_loop_diagram(structure: ModelStructure, loops: Sequence[Loop], links: Mapping[tuple[str, str], Link],
                        *, ax=None, seed: int = 0, title: str | None = None):
    """A causal-loop diagram of the variables on loops: signed arrows, stocks boxed,
    loop ids (R/B) at the centre of each loop. Layout: networkx Kamada-Kawai (seeded)."""
    signs = _collapsed_links(structure, loops, links)
    graph = nx.DiGraph()
    graph.add_edges_from(signs)
    if ax is None:
        size = min(12.0, 3.0 + 0.35 * graph.number_of_nodes())
        ax = Figure(figsize=(size, size * 0.75), layout="constrained").subplots()
    if graph.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no feedback loops", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    try:
        pos = nx.kamada_kawai_layout(graph)
    except Exception:  # disconnected or degenerate graphs
        pos = nx.spring_layout(graph, seed=seed)
    stocks = {v.vensim_name for v in structure.stocks if v.owner is None}
    for (a, b), sign in signs.items():
        rad = 0.25 if graph.has_edge(b, a) else 0.12
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops=dict(arrowstyle="-|>", color="0.35", lw=0.8, shrinkA=14, shrinkB=14,
                                    connectionstyle=f"arc3,rad={rad}"))
        mid = (np.asarray(pos[a]) + np.asarray(pos[b])) / 2
        normal = np.array([pos[b][1] - pos[a][1], pos[a][0] - pos[b][0]])
        mid = mid - rad * normal * 0.5
        ax.text(mid[0], mid[1], {"+": "+", "-": "\u2212"}.get(sign, "\u00b1"), ha="center", va="center",
                fontsize=9, fontweight="bold", color="tab:blue" if sign == "+" else "tab:red")
    for node, (x, y) in pos.items():
        box = dict(boxstyle="square,pad=0.3", fc="white", ec="0.2", lw=0.8) if node in stocks else \
            dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8)
        ax.text(x, y, node.replace(" ", "\n", 1) if len(node) > 14 else node, ha="center", va="center",
                fontsize=7, bbox=box, zorder=3)
    for loop in loops:
        points = np.array([pos[v] for v in loop.variables if v in pos])
        if len(points):
            cx, cy = points.mean(axis=0)
            ax.text(cx, cy, loop.id, ha="center", va="center", fontsize=8, style="italic",
                    color="tab:green" if loop.polarity == "R" else "tab:purple", zorder=2)
    xy = np.array(list(pos.values()))
    span = np.maximum(xy.max(axis=0) - xy.min(axis=0), 0.5)
    ax.set_xlim(xy[:, 0].min() - 0.2 * span[0], xy[:, 0].max() + 0.2 * span[0])
    ax.set_ylim(xy[:, 1].min() - 0.15 * span[1], xy[:, 1].max() + 0.15 * span[1])
    ax.set_axis_off()
    if title:
        ax.set_title(title, loc="left")
    return ax


def save(ax, path_stem: str | Path) -> list[Path]:
    """Save the figure holding ``ax`` as ``<stem>.pdf`` and ``<stem>.png`` (300 dpi)."""
    from sdloop.report.plotting import save_figure

    return save_figure(ax.figure, path_stem)
