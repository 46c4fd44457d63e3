"""One call from a model file to its loops (with names and polarity) and, optionally, their dominance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import networkx as nx

from sdloop.analysis.dominance import Dominance, loop_dominance
from sdloop.errors import SdloopError
from sdloop.engines.euler import Evaluator, Trajectory
from sdloop.analysis.loops import DEFAULT_MAX_LOOPS, Link, Loop, causal_graph, find_loops, link_polarities, load_loop_names
from sdloop.structure.build import ModelStructure, build_structure


@dataclass(frozen=True)
class LoopAnalysis:
    structure: ModelStructure
    run: Trajectory | None
    graph: nx.DiGraph
    links: Mapping[tuple[str, str], Link]
    loops: list[Loop]
    dominance: Dominance | None
    note: str | None = None  # why link signs were decided without a run, if they were


def analyse_model(path: str | Path, overrides: Mapping[str, float] | None = None, *, dominance: bool = False,
                  max_loops: int = DEFAULT_MAX_LOOPS, independent: bool = False,
                  structure: ModelStructure | None = None) -> LoopAnalysis:
    """Loops of the model at ``path`` (sidecar names applied), link signs evaluated along a
    run with ``overrides``; with ``dominance``, Loops That Matter scores along that run."""
    structure = build_structure(path) if structure is None else structure
    structure.require_analysable()
    if dominance:
        structure.require_simulable()
    note = None
    try:
        evaluator = Evaluator(structure)
        run = evaluator.run(dict(overrides or {}))
    except SdloopError as exc:
        if dominance:
            raise
        first = structure.unsupported[0] if structure.unsupported else None
        reason = (f"{structure.path}:{first.line}: {first.variable}: {first.construct} is run by PySD only"
                  if first else str(exc))
        run, note = None, f"link signs decided without a run ({reason})"
    graph = causal_graph(structure)
    links = link_polarities(structure, graph, run)
    loops = find_loops(structure, run, names=load_loop_names(path), max_loops=max_loops, graph=graph,
                       links=links, independent=independent)
    scores = loop_dominance(structure, run, loops, evaluator=evaluator) if dominance else None
    return LoopAnalysis(structure, run, graph, links, loops, scores, note)
