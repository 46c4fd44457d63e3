"""Causal graph, feedback loops and their polarity, read from a ModelStructure.

A link ``x -> z`` exists when z's equation uses x (a flow links to the stock it fills or
drains). Its polarity is the sign of the partial derivative dz/dx: decided symbolically
when, after putting in the constants, it no longer depends on the state; otherwise
evaluated at every step of a run ("+" or "-" when the sign never changes, "depends" when
it does). A link that is inactive (zero derivative) with these constants or along this
run gets the sign its derivative has when every quantity is positive, else "depends". A loop is reinforcing (R) when the product of its link signs is positive and
balancing (B) when negative; a loop with a "depends" link is classified by the sign of
that product along the run. A link through a construct only PySD runs (ALLOCATE BY
PRIORITY, VECTOR SORT ORDER, RANDOM draws, ...) has the sign the construct is known to have
along that input (more supply allocates more) or "no sign", and so has a loop through it;
such models are analysed along a run that takes those variables' values from PySD
(``loop_analysis.exogenous_series``), or without a run where it cannot. Loops inside one SMOOTH or DELAY (its own first-order
adjustment) are not listed.

Loop names come from an optional sidecar ``<model>.loops.toml`` next to the model::

    [[loop]]
    id = "R1"                     # optional short label; default R1, B1, ... in listing order
    name = "Capability engine"    # shown in every listing and figure
    polarity = "R"                # optional; `sdloop check` reports a loop that is not
    variables = ["Capability", "revenue", "R&D spending"]   # the loop's variables, any order

An entry names the loop whose set of variables (Vensim names, spelling rules as in the
model) equals ``variables``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Mapping

import networkx as nx
import numpy as np
import sympy

from sdloop.errors import ModelFileError, SdloopError
from sdloop.analysis.derivatives import link_derivative
from sdloop.engines.euler import CompiledEquation, Trajectory
from sdloop.lang.names import normalize
from sdloop.structure.build import ModelStructure
from sdloop.structure.placeholders import NoSign

DEFAULT_MAX_LOOPS = 2000
NO_SIGN = "no sign"  # a link through a construct only PySD runs, along an input of no fixed sign


class TooManyLoops(SdloopError):
    """The model has more feedback loops than the cap allows."""

    exit_status = 1


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    polarity: str  # "+", "-", "depends" or NO_SIGN
    derivative: sympy.Expr | None  # None for flow -> stock links (sign is fixed)


@dataclass(frozen=True)
class Loop:
    """A feedback loop: ``nodes`` is the cycle through every structure variable,
    ``variables`` the Vensim names in causal order starting from a stock."""

    id: str
    name: str | None
    polarity: str  # "R", "B", "depends" or NO_SIGN
    variables: tuple[str, ...]
    nodes: tuple[str, ...]

    def links(self) -> list[tuple[str, str]]:
        return list(zip(self.nodes, self.nodes[1:] + self.nodes[:1]))

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "polarity": self.polarity, "variables": list(self.variables)}


@dataclass(frozen=True)
class LoopName:
    name: str
    variables: tuple[str, ...]
    id: str | None = None
    polarity: str | None = None
    line: int | None = None
    group: str | None = None  # a named group of loops (dominance is also reported per group)


def causal_graph(structure: ModelStructure) -> nx.DiGraph:
    """Directed graph of every variable that can change during a run.

    Edge attributes: ``derivative`` (sympy dz/dx, None for flow -> stock) and ``sign``
    (+1/-1 for flow -> stock links). Constants, lookups and INITIAL values are left out:
    they do not change along a run.
    """
    graph = nx.DiGraph()
    for var in structure.variables.values():
        if var.kind in ("stock", "flow", "auxiliary", "delay_fixed"):
            graph.add_node(var.name, kind=var.kind)
    for var in structure.variables.values():
        if var.kind == "stock":
            for flow in var.inflows:
                graph.add_edge(flow, var.name, derivative=None, sign=1)
            for flow in var.outflows:
                graph.add_edge(flow, var.name, derivative=None, sign=-1)
        elif var.kind in ("flow", "auxiliary", "delay_fixed"):
            for sym in var.equation.free_symbols:
                src = structure.by_symbol(sym)
                if src is not None and src.name in graph:
                    graph.add_edge(src.name, var.name, derivative=link_derivative(var.equation, sym), sign=None)
    return graph


def _sign_of_values(values: np.ndarray) -> str | None:
    finite = values[np.isfinite(values)]
    scale = np.max(np.abs(finite)) if finite.size else 0.0
    if scale == 0:
        return None
    nonzero = finite[np.abs(finite) > 1e-12 * scale]
    if np.all(nonzero > 0):
        return "+"
    if np.all(nonzero < 0):
        return "-"
    return "depends"


def _assumed_sign(expr: sympy.Expr) -> str:
    """Sign of ``expr`` if every variable is positive (the fallback without a run)."""
    positive = {s: sympy.Symbol(s.name, positive=True) for s in expr.free_symbols}
    expr = expr.subs(positive)
    if expr.is_nonnegative and not expr.is_zero:
        return "+"
    if expr.is_nonpositive and not expr.is_zero:
        return "-"
    return "depends"


def evaluate_along(expr: sympy.Expr, structure: ModelStructure, run: Trajectory) -> np.ndarray:
    """``expr`` at every time step of ``run``."""
    eq = CompiledEquation(expr, structure)
    return eq.over({n: run[n] for n in eq.inputs}, len(run.times))


def link_polarities(structure: ModelStructure, graph: nx.DiGraph, run: Trajectory | None = None,
                    constants: Mapping[sympy.Symbol, float] | None = None) -> dict[tuple[str, str], Link]:
    """Every link's polarity: symbolic when state-free, else the sign along ``run``."""
    constants = structure.constant_values() if constants is None else constants
    links = {}
    for src, dst, data in graph.edges(data=True):
        if data["derivative"] is None:
            links[src, dst] = Link(src, dst, "+" if data["sign"] > 0 else "-", None)
            continue
        if data["derivative"].has(NoSign):  # through a construct only PySD runs (a priority, a rank)
            links[src, dst] = Link(src, dst, NO_SIGN, data["derivative"])
            continue
        d = substitute(data["derivative"], constants)
        polarity = None
        if isinstance(d, sympy.Number):
            polarity = "+" if d > 0 else "-" if d < 0 else None
        elif run is not None:
            try:
                polarity = _sign_of_values(evaluate_along(d, structure, run))
            except Exception:  # a derivative numpy cannot evaluate: the sign is decided below
                polarity = None
        # inactive in this parameterization or run: the sign with every quantity positive
        links[src, dst] = Link(src, dst, polarity or _assumed_sign(data["derivative"]), d)
    return links


def substitute(expr: sympy.Expr, values: Mapping[sympy.Symbol, float]) -> sympy.Expr:
    """``expr`` with the given symbols replaced by numbers (fast: only those it uses)."""
    used = {s: sympy.Float(values[s]) for s in expr.free_symbols if s in values}
    return expr.xreplace(used) if used else expr


def _rotate_to_stock(cycle: list[str], structure: ModelStructure, position: dict[str, int]) -> list[str]:
    stocks = [i for i, n in enumerate(cycle) if structure.variables[n].kind == "stock"]
    candidates = stocks or range(len(cycle))
    start = min(candidates, key=lambda i: position[structure.variables[cycle[i]].vensim_name])
    return cycle[start:] + cycle[:start]


def _collapse(nodes: list[str], structure: ModelStructure) -> tuple[str, ...]:
    names: list[str] = []
    for node in nodes:
        name = structure.variables[node].vensim_name
        if not names or names[-1] != name:
            names.append(name)
    while len(names) > 1 and names[0] == names[-1]:
        names.pop()
    return tuple(names)


def loop_polarity(loop_links: list[Link], structure: ModelStructure, run: Trajectory | None) -> str:
    """R or B from the link signs; along the run when a link's sign depends on the state;
    "no sign" when a link has none."""
    if any(link.polarity == NO_SIGN for link in loop_links):
        return NO_SIGN
    if all(link.polarity in "+-" for link in loop_links):
        negatives = sum(link.polarity == "-" for link in loop_links)
        return "B" if negatives % 2 else "R"
    if run is None:
        return "depends"
    gain = np.ones(len(run.times))
    for link in loop_links:
        if link.derivative is None:
            gain *= 1 if link.polarity == "+" else -1
            continue
        try:
            gain *= evaluate_along(link.derivative, structure, run)
        except Exception:  # numpy cannot evaluate it (a data lookup PySD reads): as link_polarities
            return "depends"
    sign = _sign_of_values(gain)
    return {"+": "R", "-": "B"}.get(sign or "depends", "depends")


def independent_cycles(graph: nx.DiGraph) -> list[list[str]]:
    """A shortest independent loop set (after Oliva, System Dynamics Review 20(4), 2004).

    For every link the shortest cycle through it; taken shortest first and kept when it
    has a link no kept cycle has. Every link on any loop lies on one of the kept loops.
    """
    candidates = {}
    for u, v in graph.edges():
        try:
            path = nx.shortest_path(graph, v, u)
        except nx.NetworkXNoPath:
            continue
        key = frozenset(zip(path, path[1:] + path[:1]))
        candidates.setdefault(key, path)
    covered: set = set()
    kept = []
    for key, path in sorted(candidates.items(), key=lambda kv: (len(kv[1]), kv[1])):
        if key - covered:
            kept.append(path)
            covered |= key
    return kept


def find_loops(structure: ModelStructure, run: Trajectory | None = None, *,
               names: list[LoopName] | None = None, max_loops: int = DEFAULT_MAX_LOOPS,
               graph: nx.DiGraph | None = None, links: dict[tuple[str, str], Link] | None = None,
               independent: bool = False) -> list[Loop]:
    """Every feedback loop (or, with ``independent``, a shortest independent loop set),
    with polarity and the sidecar names in ``names``.

    Raises TooManyLoops beyond ``max_loops`` cycles.
    """
    graph = causal_graph(structure) if graph is None else graph
    links = link_polarities(structure, graph, run) if links is None else links
    position = {name: i for i, name in enumerate(structure.variables)}
    if independent:
        cycles = independent_cycles(graph)
    else:
        cycles = list(islice(nx.simple_cycles(graph), max_loops + 1))
    if len(cycles) > max_loops:
        raise TooManyLoops(f"the model has more than {max_loops} feedback loops; raise the cap "
                           "(--max-loops) or list a shortest independent loop set (--independent)",
                           file=structure.path)
    found = []
    for cycle in cycles:
        owners = {structure.variables[n].owner for n in cycle}
        if len(owners) == 1 and None not in owners:
            continue  # a SMOOTH's or DELAY's own adjustment loop
        nodes = _rotate_to_stock(cycle, structure, position)
        loop_links = [links[a, b] for a, b in zip(nodes, nodes[1:] + nodes[:1])]
        found.append((nodes, _collapse(nodes, structure), loop_polarity(loop_links, structure, run)))
    found.sort(key=lambda f: (len(f[1]), [position[v] for v in f[1]]))
    counters: dict[str, int] = {}
    reserved = {entry.id for entry in names or [] if entry.id}
    loops = []
    for nodes, variables, polarity in found:
        named = match_name(variables, names or [])
        if named and named.id:
            loop_id = named.id
        else:  # the next free default id: sidecar ids are never reused for other loops
            prefix = {"R": "R", "B": "B"}.get(polarity, "U")
            counters[prefix] = counters.get(prefix, 0) + 1
            while f"{prefix}{counters[prefix]}" in reserved:
                counters[prefix] += 1
            loop_id = f"{prefix}{counters[prefix]}"
        loops.append(Loop(loop_id, named.name if named else None, polarity, variables, tuple(nodes)))
    return loops


def named_loop(structure: ModelStructure, entry: LoopName, run: Trajectory | None = None, *,
               graph: nx.DiGraph | None = None, links: dict[tuple[str, str], Link] | None = None) -> Loop | None:
    """The loop a sidecar entry names, found among the entry's own variables only (so it
    works on models with more loops than any cap), or None if those variables form no loop."""
    graph = causal_graph(structure) if graph is None else graph
    wanted = {normalize(v) for v in entry.variables}
    nodes = [n for n in graph if normalize(structure.variables[n].vensim_name) in wanted]
    position = {name: i for i, name in enumerate(structure.variables)}
    for cycle in nx.simple_cycles(graph.subgraph(nodes)):
        rotated = _rotate_to_stock(cycle, structure, position)
        variables = _collapse(rotated, structure)
        if {normalize(v) for v in variables} == wanted:
            if links is None:
                links = link_polarities(structure, graph.subgraph(nodes).copy(), run)
            loop_links = [links[a, b] for a, b in zip(rotated, rotated[1:] + rotated[:1])]
            return Loop(entry.id or "", entry.name, loop_polarity(loop_links, structure, run), variables,
                        tuple(rotated))
    return None


def match_name(variables: tuple[str, ...], names: list[LoopName]) -> LoopName | None:
    key = {normalize(v) for v in variables}
    for entry in names:
        if {normalize(v) for v in entry.variables} == key:
            return entry
    return None


def sidecar_path(model_path: str | Path) -> Path:
    """``models/x.mdl`` -> ``models/x.loops.toml``."""
    path = Path(model_path)
    return path.with_name(path.stem + ".loops.toml")


def load_loop_names(model_path: str | Path) -> list[LoopName]:
    """The named loops of the sidecar next to the model ([] when there is none)."""
    path = sidecar_path(model_path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise ModelFileError(f"malformed TOML: {exc}", file=path,
                             line=int(found.group(1)) if found else None) from None
    entries = data.get("loop", [])
    if not isinstance(entries, list) or set(data) - {"loop", "group"}:
        raise ModelFileError("expected only [[loop]] and [[group]] tables", file=path)
    names = []
    for i, entry in enumerate(entries, 1):
        line = _line_of_entry(text, i)
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ModelFileError(f"loop entry {i} needs a name", file=path, line=line)
        variables = entry.get("variables")
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables) or not variables:
            raise ModelFileError("'variables' must be a list of variable names", file=path, line=line,
                                 variable=entry["name"])
        unknown = set(entry) - {"id", "name", "variables", "polarity", "group"}
        if unknown:
            raise ModelFileError(f"unknown keys {sorted(unknown)}", file=path, line=line, variable=entry["name"])
        polarity = entry.get("polarity")
        if polarity not in (None, "R", "B"):
            raise ModelFileError("polarity must be \"R\" or \"B\"", file=path, line=line, variable=entry["name"])
        group = entry.get("group")
        if group is not None and not (isinstance(group, str) and group):
            raise ModelFileError("'group' must be a name", file=path, line=line, variable=entry["name"])
        names.append(LoopName(entry["name"], tuple(variables), entry.get("id"), polarity, line, group))
    return names


@dataclass(frozen=True)
class GroupRule:
    """A sidecar ``[[group]]``: loops through every variable of ``through`` belong to ``name``
    (the first matching rule wins; a named loop's own ``group`` comes first)."""

    name: str
    through: tuple[str, ...]


def load_group_rules(model_path: str | Path) -> list[GroupRule]:
    """The ``[[group]]`` rules of the sidecar next to the model, in order."""
    path = sidecar_path(model_path)
    if not path.exists():
        return []
    rules = []
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("group", []):
        through = entry.get("through") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or set(entry) - {"name", "through"} \
                or not isinstance(through, list) or not through or not all(isinstance(v, str) for v in through):
            raise ModelFileError("each [[group]] needs a 'name' and a non-empty 'through' list of variables",
                                 file=path)
        rules.append(GroupRule(entry["name"], tuple(through)))
    return rules


def loop_groups(loops: list[Loop], names: list[LoopName], rules: list[GroupRule]) -> dict[str, str]:
    """Loop id -> group: the named loop's own group, else the first rule whose variables all lie
    on the loop; loops in no group are left out."""
    own = {entry.name: entry.group for entry in names if entry.group}
    out = {}
    for loop in loops:
        on = {normalize(v) for v in loop.variables}
        group = own.get(loop.name or "")
        if group is None:
            group = next((r.name for r in rules if all(normalize(v) in on for v in r.through)), None)
        if group is not None:
            out[loop.id] = group
    return out


def _line_of_entry(text: str, number: int) -> int | None:
    starts = [m.start() for m in re.finditer(r"^[ \t]*\[\[[ \t]*loop[ \t]*\]\]", text, flags=re.MULTILINE)]
    return text.count("\n", 0, starts[number - 1]) + 1 if len(starts) >= number else None


def analyse(structure: ModelStructure, run: Trajectory | None = None, *,
            max_loops: int = DEFAULT_MAX_LOOPS, independent: bool = False) -> list[Loop]:
    """Loops of the model with the sidecar's names."""
    return find_loops(structure, run, names=load_loop_names(structure.path), max_loops=max_loops,
                      independent=independent)


__all__ = [
    "GroupRule", "Link", "Loop", "LoopName", "TooManyLoops", "analyse", "causal_graph", "evaluate_along",
    "find_loops", "independent_cycles", "link_polarities", "load_group_rules", "load_loop_names", "loop_groups",
    "loop_polarity", "match_name", "named_loop", "sidecar_path",
]
