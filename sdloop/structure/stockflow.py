"""The stock-and-flow picture of a model: what a diagram draws, before any layout.

``stock_flow(structure)`` returns a ``StockFlow``: the variables a modeller wrote (written-out
SMOOTH/DELAY stages fold back into the variable that owns them), each flow's pipe (the stock
it drains and the stock it fills, None for a cloud), the causal links (one per pair of
variables whose equation, initial value or delay time uses the other; a stock's inputs
through its flows are pipes, not links) and the Vensim group (``.Group`` in the file) each
variable stands in. Simulation controls are not drawn; Time and controls that equations use
are ``builtin`` sources (Vensim shows them as shadow variables), drawn only where an
equation names them: STEP, PULSE and RAMP read Time and TIME STEP without the modeller
writing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sdloop.lang.groups import variable_groups
from sdloop.lang.equations import SourceIndex
from sdloop.lang.names import normalize
from sdloop.lang.source import source_index
from sdloop.structure.build import ModelStructure, Variable
from sdloop.structure.lookups import LookupFunction
from sdloop.structure.symbols import TIME

DRAWN_KINDS = {"stock": "stock", "flow": "flow", "constant": "constant", "lookup": "lookup"}
TIME_NAME = "Time"


@dataclass(frozen=True)
class Pipe:
    """A flow's pipe: from ``source`` to ``target`` (stock names; None is a cloud)."""

    flow: str
    source: str | None
    target: str | None


@dataclass
class StockFlow:
    """Drawable variables (name -> kind), pipes, causal links and groups of a model."""

    path: Path
    kinds: dict[str, str]
    lines: dict[str, int | None]
    pipes: dict[str, Pipe]
    links: list[tuple[str, str]]
    groups: dict[str, str] = field(default_factory=dict)

    def group_names(self) -> list[str]:
        """Groups in file order; a model without groups has one, ``"View 1"``."""
        return list(dict.fromkeys(self.groups[n] for n in self.kinds if self.kinds[n] != "builtin"))

    def members(self, group: str) -> list[str]:
        return [n for n in self.kinds if self.groups.get(n) == group]


def _kind(var: Variable) -> str:
    return DRAWN_KINDS.get(var.kind, "auxiliary")


def _drawn_name(structure: ModelStructure, name: str) -> str | None:
    """The variable of the file that ``name`` belongs to (its owner for written-out ones)."""
    var = structure.variables[name]
    if var.kind == "control":
        return var.name
    return var.owner or var.name


# what XMILE files call the controls
_XMILE_NAMES = {"time step": ("dt",), "initial time": ("starttime",), "final time": ("stoptime",)}


class _Written:
    """Whether a variable's equation, as written, names Time or a control (``Time`` is not in
    ``adjustment time``, nor in ``TIME STEP``): the text is read as names, longest first."""

    def __init__(self, structure: ModelStructure, index: SourceIndex) -> None:
        self.index = index
        names = {normalize(v.vensim_name.split("[")[0]) for v in structure.variables.values()}
        names |= {normalize(TIME_NAME)} | {alias for aliases in _XMILE_NAMES.values() for alias in aliases}
        alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
        self.pattern = re.compile(rf"(?<![\w$])(?:{alternatives})(?![\w$])")

    def __call__(self, var: Variable, builtin: str) -> bool:
        equations = self.index.definitions(var.vensim_name) or [e for e in [self.index.get(var.vensim_name)] if e]
        if not equations:
            return True
        key = normalize(builtin)
        spellings = {key, *_XMILE_NAMES.get(key, ())}
        text = normalize(" ".join(eq.text for eq in equations))
        return any(m.group(0) in spellings for m in self.pattern.finditer(text))


def _inputs(structure: ModelStructure, var: Variable, written: _Written) -> set[str]:
    """Names (drawn) that ``var``'s equation, initial value or delay time uses; Time and the
    controls only where the equation names them."""
    exprs = [var.initial, var.delay] + ([] if var.kind == "stock" else [var.equation])
    found: set[str] = set()
    for expr in exprs:
        if expr is None:
            continue
        for sym in expr.free_symbols:
            src = structure.by_symbol(sym)
            if sym == TIME:
                if written(var, TIME_NAME):
                    found.add(TIME_NAME)
            elif src is not None and (src.kind != "control" or written(var, src.name)):
                found.add(_drawn_name(structure, src.name))
        for call in expr.atoms(LookupFunction):
            if (table := structure.get(type(call).vensim_name)) is not None:
                found.add(table.name)
    return found


def stock_flow(structure: ModelStructure) -> StockFlow:
    """The stock-and-flow picture of ``structure`` (see the module docstring)."""
    kinds: dict[str, str] = {}
    lines: dict[str, int | None] = {}
    for var in structure.variables.values():
        if var.owner is None and var.kind != "control":
            kinds[var.name] = _kind(var)
            lines[var.name] = var.line
    pipes: dict[str, Pipe] = {}
    for stock in structure.stocks:
        if stock.owner is not None:
            continue
        for flow in stock.inflows + stock.outflows:
            if structure.variables[flow].owner is not None:
                continue  # a net flow written out by sdloop: its inputs link to the stock
            old = pipes.get(flow, Pipe(flow, None, None))
            if flow in stock.inflows and old.target is None:
                pipes[flow] = Pipe(flow, old.source, stock.name)
            elif flow in stock.outflows and old.source is None:
                pipes[flow] = Pipe(flow, stock.name, old.target)
    for name, kind in kinds.items():
        if kind == "flow" and name not in pipes:
            kinds[name] = "auxiliary"  # a "flow" that feeds no stock of the file is drawn as one
    links: set[tuple[str, str]] = set()
    written = _Written(structure, source_index(structure.path))
    for var in structure.variables.values():
        target = _drawn_name(structure, var.name)
        if target not in kinds:
            continue
        for source in _inputs(structure, var, written):
            if source != target:
                links.add((source, target))
    # a flow that fills or drains a stock it is not drawn into (a second stock) gets a link
    for stock in structure.stocks:
        for flow in stock.inflows + stock.outflows:
            pipe = pipes.get(flow)
            if pipe is not None and stock.name not in (pipe.source, pipe.target):
                links.add((flow, stock.name))
    for source, _ in links:
        if source not in kinds:
            kinds[source] = "builtin"
            lines[source] = None
    order = {name: i for i, name in enumerate(kinds)}
    links_sorted = sorted(links, key=lambda link: (order[link[1]], order[link[0]]))
    groups = _groups(structure, kinds, pipes)
    return StockFlow(structure.path, kinds, lines, pipes, links_sorted, groups)


def _groups(structure: ModelStructure, kinds: dict[str, str], pipes: dict[str, Pipe]) -> dict[str, str]:
    """Group of every drawn variable; a flow and the stocks its pipes join share one group."""
    declared = variable_groups(structure.path)
    groups = {name: declared.get(normalize(name), "View 1") for name, kind in kinds.items() if kind != "builtin"}
    # stocks joined by pipes take the group of the first of them in the file
    parent = {name: name for name in groups}

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for pipe in pipes.values():
        for stock in (pipe.source, pipe.target):
            if stock is not None:
                a, b = sorted((find(pipe.flow), find(stock)), key=list(groups).index)
                parent[b] = a
    return {name: groups[find(name)] for name in groups}
