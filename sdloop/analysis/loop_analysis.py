"""One call from a model file to its loops (with names and polarity) and, optionally, their dominance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import networkx as nx
import sympy

from sdloop.analysis.dominance import Dominance, loop_dominance
from sdloop.errors import ModelFileError, SdloopError
from sdloop.engines.euler import Evaluator, Trajectory
from sdloop.analysis.loops import DEFAULT_MAX_LOOPS, Link, Loop, causal_graph, find_loops, link_polarities, load_loop_names
from sdloop.structure.build import ModelStructure, build_structure
from sdloop.lang.names import normalize
from sdloop.structure.placeholders import Unsupported


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
    first = structure.unsupported[0] if structure.unsupported else None
    reason = f"{structure.path}:{first.line}: {first.variable}: {first.construct} is run by PySD only" if first else ""
    exogenous, note = {}, None
    if first is not None:  # data, RANDOM draws, ...: their values from a PySD run, as given series
        try:
            exogenous = exogenous_series(structure, overrides)
        except SdloopError:
            if dominance:
                raise
    try:
        evaluator = Evaluator(structure, exogenous)
        run = evaluator.run(dict(overrides or {}))
        if exogenous:
            note = f"link signs decided along a run that takes its values from PySD ({reason})"
    except SdloopError as exc:
        if dominance:
            raise
        run, note = None, f"link signs decided without a run ({reason or exc})"
    graph = causal_graph(structure)
    links = link_polarities(structure, graph, run)
    loops = find_loops(structure, run, names=load_loop_names(path), max_loops=max_loops, graph=graph,
                       links=links, independent=independent)
    if dominance:
        _require_scorable(structure, loops, exogenous)
    scores = loop_dominance(structure, run, loops, evaluator=evaluator) if dominance else None
    return LoopAnalysis(structure, run, graph, links, loops, scores, note)


def _holds_unsupported(expr) -> bool:
    return expr is not None and any(isinstance(f, Unsupported) for f in expr.atoms(sympy.Function))


def _refuse(structure: ModelStructure, name: str, why: str) -> ModelFileError:
    var = structure.variables[name]
    found = next((u for u in structure.unsupported if u.variable in (var.vensim_name, var.array)), None)
    construct = found.construct if found else "a construct sdloop does not write out"
    return ModelFileError(f"{construct} (run by PySD only) {why}", file=structure.path, line=var.line,
                          variable=var.vensim_name)


def exogenous_series(structure: ModelStructure, overrides: Mapping[str, float] | None = None) -> dict:
    """The values, at every TIME STEP of a PySD run, of each variable whose equation (or a
    stock's initial value) holds a construct sdloop does not write out (data, RANDOM draws,
    ALLOCATE BY PRIORITY): loop dominance reads them as given series. ModelFileError where
    such a construct sits inside a written-out SMOOTH/DELAY (PySD reports no such variable)."""
    from sdloop.engines.pysd_model import Model

    names = [v.name for v in structure.variables.values() if v.kind != "lookup"
             and _holds_unsupported(v.initial if v.kind == "stock" else v.equation)]
    hidden = [n for n in names if structure.variables[n].owner is not None]
    if hidden:
        raise _refuse(structure, hidden[0], "inside a SMOOTH, DELAY or TREND: loop dominance cannot read its values")
    model = Model(structure.path)
    kinds = {normalize(real): kind for real, kind in zip(model.doc["Real Name"], model.doc["Type"])}
    lookups = [n for n in names if kinds.get(normalize(structure.variables[n].array or n)) == "Lookup"]
    names = [n for n in names if n not in lookups]
    overrides = dict(overrides or {})
    step = next((float(v) for k, v in overrides.items() if k.lower() == "time step"), structure.control("time step"))
    frame = model.run(overrides, columns=names, saveper=step) if names else None
    series = {name: frame[name].to_numpy(dtype=float) for name in names}
    return series | dict.fromkeys(lookups)  # a lookup read from data is called, never a value


def _require_scorable(structure: ModelStructure, loops: list[Loop], exogenous: Mapping) -> None:
    """ModelFileError when a loop passes through a variable whose values are given (its link
    scores would need the construct sdloop does not write out)."""
    for loop in loops:
        through = next((n for n in loop.nodes if n in exogenous), None)
        if through is not None:
            raise _refuse(structure, through, f"on the feedback loop {loop.id}: loop dominance cannot score its links")
