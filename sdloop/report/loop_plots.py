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
from sdloop.analysis.loops import NO_SIGN, Link, Loop
from sdloop.structure.build import ModelStructure

MAX_LINES = 8


def _label(loop: Loop) -> str:
    return f"{loop.id} {loop.name}" if loop.name else loop.id


def shown_loops(dominance: Dominance, partition: int = 0, max_lines: int = MAX_LINES,
                min_period: float = 0.0) -> list[str]:
    """The loops a figure draws: every loop that dominates a period (as ``describe_periods`` says,
    with ``min_period``), then the largest by peak absolute score up to ``max_lines``."""
    ids = list(dominance.partitions[partition]) if dominance.partitions else []
    rel = dominance.relative_scores[ids]
    dominant = [p.loop for p in dominance.periods(min_period) if p.partition == partition and p.loop]
    ranked = sorted(ids, key=lambda i: -float(rel[i].abs().max()))
    shown = list(dict.fromkeys(dominant))
    shown += [i for i in ranked if i not in shown][:max(max_lines - len(shown), 0)]
    return shown


def relative_scores_plot(dominance: Dominance, *, ax=None, partition: int = 0, max_lines: int = MAX_LINES,
                         time_label: str = "Time", title: str | None = None, phases=None, min_period: float = 0.0):
    """Relative loop scores of one cycle partition over time, and which loop dominates when.

    A strip above the scores marks each dominance period with its loop (the periods of
    ``describe_periods`` with ``min_period``, every partition a row). The scores panel draws every
    dominant loop and the largest others up to ``max_lines``, each labelled by its id at the line
    end (reinforcing solid, balancing dashed, gray level and marker told apart in print); the
    remaining loops are thin light-gray lines behind them, never summed. The key below names the
    loops. ``phases`` ((start, end, label, gray), ...) shades periods of the time axis. Returns the
    scores axes."""
    from sdloop.report import plotting
    from sdloop.report.line_panels import direct_labels

    periods = dominance.periods(min_period)
    n_parts = max(len(dominance.partitions), 1)
    with plotting.style():
        if ax is None:
            rows = n_parts + (1 if phases else 0)
            fig = Figure(figsize=(plotting.DOUBLE_COLUMN, 1.55 * plotting.PANEL_HEIGHT + 5 * rows * plotting.MM),
                         layout="constrained")
            strip, ax = fig.subplots(2, 1, sharex=True, height_ratios=[0.09 * rows + 0.04, 1])
        else:
            strip = None
        ids = list(dominance.partitions[partition]) if dominance.partitions else []
        rel = dominance.relative_scores[ids]
        shown = shown_loops(dominance, partition, max_lines, min_period)
        rest = [i for i in ids if i not in shown]
        by_id = {loop.id: loop for loop in dominance.loops}
        for loop_id in rest:
            ax.plot(rel.index, rel[loop_id], color="0.86", lw=0.5, zorder=1)
        looks = {}
        for k, (loop_id, look) in enumerate(zip(shown, plotting.series_styles(len(shown)))):
            polarity = by_id[loop_id].polarity
            look["linestyle"] = "-" if polarity == "R" else (0, (4, 1.6)) if polarity == "B" else (0, (1, 1.2))
            looks[loop_id] = look
            ax.plot(rel.index, rel[loop_id], linestyle=look["linestyle"], color=look["color"], marker=look["marker"],
                    markevery=(k * 3 % max(len(rel) // 8, 1), max(len(rel) // 8, 1)), ms=2.8,
                    markerfacecolor="white", markeredgewidth=0.7, lw=1.0, zorder=3)
        ax.axhline(0, color="0.3", linewidth=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(rel.index.min(), rel.index.max())
        if phases and strip is None:
            plotting.shade_phases(ax, phases)
        elif phases:
            for start, _, _, _ in phases[1:]:
                ax.axvline(start, color="0.6", lw=0.5, ls=":", zorder=0)
        ax.set_xlabel(time_label)
        ax.set_ylabel("Relative loop score (-)")
        direct_labels(ax, rel[shown], looks, {i: i for i in shown})
        if strip is not None:
            _dominance_strip(strip, periods, n_parts, looks, phases)
            if title:
                strip.set_title(title, loc="left")
        elif title:
            ax.set_title(title, loc="left")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=looks[i]["color"], linestyle=looks[i]["linestyle"], marker=looks[i]["marker"],
                          ms=2.8, markerfacecolor="white", label=_label(by_id[i])) for i in shown]
        if rest:
            handles.append(Line2D([], [], color="0.86", lw=0.5, label=f"{len(rest)} other loops, each"))
        ax.figure.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    return ax


def _dominance_strip(ax, periods, n_parts: int, looks: dict, phases) -> None:
    """Which loop dominates when: one row per partition, each period a box with the loop's id
    (reinforcing darker than balancing); the policy phases, if any, as a row above."""
    rows = []
    for period in periods:
        face = "white" if period.loop is None else "0.93" if period.polarity == "B" else "0.78"
        rows.append((period.partition, period.start, period.end, period.loop or "", face))
    names = ["dominant loop" if n_parts == 1 else f"dominant loop, partition {p + 1}" for p in range(n_parts)]
    if phases:
        end = max(p.end for p in periods) if periods else None
        for start, stop, label, gray in phases:
            text = label.replace("-\n", "-").replace("\n", " ")
            rows.append((-1, start, stop if stop is not None else end, text, gray))
        names = ["phases"] + names
    top = len(names)
    for row, start, stop, text, face in rows:
        y = top - 1 - (row + (1 if phases else 0))
        ax.broken_barh([(start, stop - start)], (y + 0.08, 0.84), facecolors=face, edgecolors="0.35", lw=0.5)
        if text:
            ax.text((start + stop) / 2, y + 0.5, text, ha="center", va="center", fontsize=5.5, clip_on=True)
    ax.set_ylim(0, top)
    ax.set_yticks([top - 0.5 - i for i in range(top)], names, fontsize=5.5)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelbottom=False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


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
    if NO_SIGN in (a, b):
        return NO_SIGN
    if "depends" in (a, b):
        return "depends"
    return "+" if a == b else "-"


def separate(centers: np.ndarray, half: np.ndarray, *, gap: float = 0.004, iterations: int = 400) -> np.ndarray:
    """Move boxes (centres, half widths and heights) apart until no two overlap (or ``iterations``
    passes): each overlapping pair is pushed apart along the axis where the overlap is smaller."""
    pos = np.array(centers, dtype=float)
    for _ in range(iterations):
        d = pos[:, None, :] - pos[None, :, :]
        need = half[:, None, :] + half[None, :, :] + gap
        overlap = need - np.abs(d)
        hit = (overlap > 0).all(axis=2)
        np.fill_diagonal(hit, False)
        if not hit.any():
            break
        axis = np.argmin(overlap, axis=2)  # push along the axis that needs the smaller move
        move = np.zeros_like(pos)
        for i, j in zip(*np.nonzero(np.triu(hit))):
            k = axis[i, j]
            sign = np.sign(d[i, j, k]) or (1.0 if i < j else -1.0)
            step = overlap[i, j, k] / 2 + 1e-4
            move[i, k] += sign * step
            move[j, k] -= sign * step
        pos += move
    return pos


def _text_size(text: str, fontsize: float) -> tuple[float, float]:
    """(width, height) of ``text`` in points, as matplotlib lays it out (lines 1.2 apart)."""
    from matplotlib.textpath import TextPath

    lines = text.splitlines() or [""]
    width = max(TextPath((0, 0), line or " ", size=fontsize).get_extents().width for line in lines)
    return width, fontsize * 1.2 * len(lines)


def node_label(name: str, width: int = 16) -> str:
    """A variable's name wrapped at ``width`` characters, its subscripts (``[a,b]``) kept whole on
    a line of their own when they do not fit."""
    import textwrap

    base, bracket, rest = name.partition("[")
    lines = textwrap.wrap(base.strip(), width, break_long_words=False) or [""]
    if bracket:
        subscript = "[" + rest
        if len(lines[-1]) + len(subscript) <= width:
            lines[-1] += subscript
        else:
            lines.append(subscript)
    return "\n".join(lines)


def causal_loop_diagram(structure: ModelStructure, loops: Sequence[Loop], links: Mapping[tuple[str, str], Link],
                        *, ax=None, seed: int = 0, title: str | None = None):
    """A causal-loop diagram of the variables on loops, for a 183 mm page in grayscale: signed
    arrows, stocks boxed, loop ids (R/B) inside their loops. Layout: networkx Kamada-Kawai, then
    names and loop ids moved apart until no two overlap (``separate``)."""
    from sdloop.report import plotting

    signs = _collapsed_links(structure, loops, links)
    graph = nx.DiGraph()
    graph.add_edges_from(signs)
    width = plotting.DOUBLE_COLUMN
    height = width * 0.72
    if ax is None:
        ax = Figure(figsize=(width, height), layout="constrained").subplots()
    if graph.number_of_nodes() == 0:
        ax.text(0.5, 0.5, "no feedback loops", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    try:
        pos = nx.kamada_kawai_layout(graph)
    except Exception:  # disconnected or degenerate graphs
        pos = nx.spring_layout(graph, seed=seed)
    nodes = list(pos)
    xy = np.array([pos[n] for n in nodes], dtype=float)
    xy = (xy - xy.min(axis=0)) / np.maximum(np.ptp(xy, axis=0), 1e-9) * np.array([1.0, 0.72])
    fontsize = 5.5
    texts = {n: node_label(n) for n in nodes}
    stocks = {v.vensim_name for v in structure.stocks if v.owner is None}
    loop_items = []
    for loop in loops:
        members = [nodes.index(v) for v in loop.variables if v in pos]
        if members:
            loop_items.append((loop, xy[members].mean(axis=0)))
    # half sizes in points: measured text, plus the box padding of stocks
    points = [(*_text_size(texts[n], fontsize), 0.25 * fontsize + 1.5 if n in stocks else 0.15 * fontsize + 1)
              for n in nodes]
    points += [(*_text_size(loop.id, fontsize + 0.5), 1.0) for loop, _ in loop_items]
    half_points = np.array([[w / 2 + pad, h / 2 + pad] for w, h, pad in points])
    centers = np.vstack([xy] + [c for _, c in loop_items]) if loop_items else xy
    placed = centers
    for _ in range(3):  # the span grows as boxes move apart: size them against the final span
        span = np.ptp(placed, axis=0) * 1.16 + 0.04
        per_point = span / np.array([width * 72 * 0.95, height * 72 * 0.88])
        placed = separate(centers, half_points * per_point * 1.08)
    pos = {n: placed[i] for i, n in enumerate(nodes)}
    with plotting.style():
        for (a, b), sign in signs.items():
            rad = 0.25 if graph.has_edge(b, a) else 0.12
            ax.annotate("", xy=pos[b], xytext=pos[a],
                        arrowprops=dict(arrowstyle="-|>", color="0.45", lw=0.6, shrinkA=9, shrinkB=9,
                                        mutation_scale=6, connectionstyle=f"arc3,rad={rad}"))
            mid = (np.asarray(pos[a]) + np.asarray(pos[b])) / 2
            normal = np.array([pos[b][1] - pos[a][1], pos[a][0] - pos[b][0]])
            mid = mid - rad * normal * 0.5
            label = {"+": "+", "-": "\u2212", NO_SIGN: "?"}.get(sign, "\u00b1")
            ax.text(mid[0], mid[1], label, ha="center", va="center", fontsize=6, fontweight="bold", color="0.0",
                    zorder=2)
        for node, (x, y) in pos.items():
            box = dict(boxstyle="square,pad=0.25", fc="white", ec="0.2", lw=0.6) if node in stocks else \
                dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85)
            ax.text(x, y, texts[node], ha="center", va="center", fontsize=fontsize, bbox=box, zorder=3)
        for i, (loop, _) in enumerate(loop_items):
            x, y = placed[len(nodes) + i]
            ax.text(x, y, loop.id, ha="center", va="center", fontsize=fontsize + 0.5, style="italic",
                    fontweight="bold", color="0.35", zorder=2)
        span = np.ptp(placed, axis=0)
        low, high = placed.min(axis=0), placed.max(axis=0)
        ax.set_xlim(low[0] - 0.06 * span[0] - 0.02, high[0] + 0.06 * span[0] + 0.02)
        ax.set_ylim(low[1] - 0.05 * span[1] - 0.02, high[1] + 0.05 * span[1] + 0.02)
        ax.set_axis_off()
        if title:
            ax.set_title(title, loc="left")
    return ax


def save(ax, path_stem: str | Path) -> list[Path]:
    """Save the figure holding ``ax`` as ``<stem>.pdf`` and ``<stem>.png`` (300 dpi)."""
    from sdloop.report.plotting import save_figure

    return save_figure(ax.figure, path_stem)
