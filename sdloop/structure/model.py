"""What a model is to sdloop's analyses and engines: ``ModelStructure``, its ``Variable``s and
the ``UnsupportedConstruct``s it could not write out (``sdloop.structure.build`` makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import networkx as nx
import sympy

from sdloop.errors import ModelFileError
from sdloop.lang.names import normalize
from sdloop.structure.lookups import LookupFunction
from sdloop.structure.symbols import number

CONTROL = ("initial time", "final time", "time step", "saveper")
DYNAMIC_KINDS = frozenset({"flow", "auxiliary"})


@dataclass(frozen=True)
class Variable:
    """One model variable.

    ``equation`` is the sympy value of an auxiliary, flow, constant, control or initial
    variable, the net flow (inflows minus outflows) of a stock and the input of a
    delay_fixed variable. ``initial`` is a stock's (or delay_fixed's) initial value;
    ``delay`` a delay_fixed's delay time. ``owner`` names the Vensim variable whose
    SMOOTH/DELAY/TREND/INITIAL created a written-out variable (None for the file's own).
    An auxiliary with an ``initial`` (ACTIVE INITIAL) takes that value while initial
    values are computed. One element of a subscripted variable has ``array`` (the Vensim
    name) and ``coords`` (one element per dimension); its ``name`` is ``array[a,b]``.
    ``non_negative`` (XMILE stocks) clips the stock at zero after each step.
    """

    name: str
    kind: str
    symbol: sympy.Symbol
    equation: sympy.Expr | None
    units: str = ""
    comment: str = ""
    line: int | None = None
    initial: sympy.Expr | None = None
    inflows: tuple[str, ...] = ()
    outflows: tuple[str, ...] = ()
    delay: sympy.Expr | None = None
    owner: str | None = None
    lookup: type[LookupFunction] | None = None
    array: str | None = None
    coords: tuple[str, ...] = ()
    non_negative: bool = False

    @property
    def vensim_name(self) -> str:
        """The name as written in the model file (the owner's for written-out variables)."""
        return self.owner or self.name


@dataclass(frozen=True)
class UnsupportedConstruct:
    variable: str
    line: int | None
    construct: str

    @property
    def keeps_inputs(self) -> bool:
        """Whether the structure still knows what the construct depends on (a function or
        data that only PySD runs does; a subscript or macro it could not resolve does not)."""
        return not self.construct.startswith(("SUBSCRIPT", "ELMCOUNT", "MACRO"))


@dataclass(frozen=True)
class DelayStages:
    """A DELAY1/3/N whose delay time is fixed for the run: it runs with ``stages`` of its
    ``order`` stages, fewer when the delay time is below order x TIME STEP (as in PySD), so
    the count depends on ``delay_time`` (an expression of constants and controls) and TIME STEP."""

    owner: str
    line: int | None
    order: int
    stages: int
    delay_time: sympy.Expr


def delay_stages(order: int, delay_time, time_step):
    """The stages a DELAY of ``order`` runs with (PySD's rule: one fewer while order x TIME STEP
    exceeds the delay time); element-wise for arrays of delay times."""
    import numpy as np

    stages = np.full(np.shape(delay_time), order)
    for r in range(order, 0, -1):
        stages = np.where((stages == r) & (r * time_step > delay_time), r - 1, stages)
    return stages


@dataclass(frozen=True)
class ModelStructure:
    """A model's variables, evaluation order and what could not be represented.

    ``ranges`` maps each subscript range to its elements (subscripted variables are
    written out element by element, see ``sdloop.structure.subscripts``).
    """

    path: Path
    variables: Mapping[str, Variable]
    order: tuple[str, ...]
    unsupported: tuple[UnsupportedConstruct, ...] = ()
    algebraic_loops: tuple[tuple[str, ...], ...] = ()
    time_units: str = ""
    ranges: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    delays: tuple[DelayStages, ...] = ()  # delays whose stage count was fixed when the structure was built
    _by_key: Mapping[str, str] = field(default_factory=dict, repr=False)
    _by_symbol: Mapping[sympy.Symbol, str] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> Variable | None:
        """The variable called ``name`` (Vensim spelling rules), or None."""
        key = self._by_key.get(normalize(name))
        return self.variables[key] if key else None

    def __getitem__(self, name: str) -> Variable:
        var = self.get(name)
        if var is None:
            raise KeyError(name)
        return var

    def by_symbol(self, symbol: sympy.Symbol) -> Variable | None:
        name = self._by_symbol.get(symbol)
        return self.variables[name] if name else None

    def of_kind(self, *kinds: str) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables.values() if v.kind in kinds)

    @property
    def stocks(self) -> tuple[Variable, ...]:
        return self.of_kind("stock")

    @property
    def flows(self) -> tuple[Variable, ...]:
        return self.of_kind("flow")

    @property
    def auxiliaries(self) -> tuple[Variable, ...]:
        return self.of_kind("auxiliary")

    @property
    def constants(self) -> tuple[Variable, ...]:
        return self.of_kind("constant")

    @property
    def lookups(self) -> tuple[Variable, ...]:
        return self.of_kind("lookup")

    def inputs(self, name: str) -> tuple[str, ...]:
        """Names of the variables ``name``'s equation uses directly (flows for a stock)."""
        var = self[name]
        if var.kind == "stock":
            return var.inflows + var.outflows
        used = set()
        for expr in (var.equation, var.delay):
            if expr is not None:
                used |= expr.free_symbols
        found = (self.by_symbol(s) for s in used)
        return tuple(sorted(v.name for v in found if v is not None))

    def control(self, name: str, given: Mapping[str, float] | None = None) -> float:
        """Numeric value of INITIAL TIME, FINAL TIME, TIME STEP or SAVEPER (or of any variable
        computed from constants), with ``given`` values (normalized name -> value) taking
        precedence, so that ``SAVEPER = TIME STEP`` follows a TIME STEP given for the run."""
        given = given or {}
        if normalize(name) in given:
            return float(given[normalize(name)])
        var = self.get(name)
        if var is None:
            raise ModelFileError(f"the model defines no {name.upper()}", file=self.path)
        if var.equation is None:
            raise ModelFileError(f"{name.upper()} is not a number", file=self.path, line=var.line, variable=var.name)
        values = {s: number(self.control(self.by_symbol(s).name, given)) for s in var.equation.free_symbols
                  if self.by_symbol(s) is not None}
        try:
            return float(var.equation.subs(values))
        except TypeError:
            raise ModelFileError(f"{name.upper()} is not a number", file=self.path, line=var.line,
                                 variable=var.name) from None

    def constant_values(self, overrides: Mapping[str, float] | None = None) -> dict[sympy.Symbol, float]:
        """Symbol -> value for every constant and control, with overrides applied by name."""
        values = {v.symbol: float(v.equation) for v in self.constants}
        for name in CONTROL:
            if self.get(name) is not None:
                values[self[name].symbol] = self.control(name)
        for name, value in (overrides or {}).items():
            var = self.get(name)
            if var is None or var.kind not in ("constant", "control"):
                raise ModelFileError(f"'{name}' is not a constant of the model", file=self.path)
            values[var.symbol] = float(value)
        return values

    def require_valid(self) -> None:
        """Raise ModelFileError for what makes the file unusable whatever the engine:
        simultaneous equations without a stock, a constant or initial value that is
        infinite, initial values that depend on each other."""
        if self.algebraic_loops:
            loop = self.algebraic_loops[0]
            lines = ", ".join(f"{n} line {self[n].line}" for n in loop if self[n].line)
            raise ModelFileError("simultaneous equations without a stock: " + " -> ".join(loop + loop[:1])
                                 + (f" ({lines})" if lines else ""),
                                 file=self.path, line=self[loop[0]].line, variable=self[loop[0]].vensim_name)
        for var in self.variables.values():
            expr = var.equation if var.kind in ("constant", "control") else var.initial
            if expr is not None and expr.is_number and expr in (sympy.oo, -sympy.oo, sympy.zoo):
                what = "value" if var.kind in ("constant", "control") else "initial value"
                raise ModelFileError(f"the {what} is infinite", file=self.path, line=var.line,
                                     variable=var.vensim_name)
        cycle = self.initial_cycle()
        if cycle:
            var = self[cycle[0]]
            raise ModelFileError("initial values depend on each other: " + " -> ".join(cycle + cycle[:1]),
                                 file=self.path, line=var.line, variable=var.vensim_name)

    def initial_cycle(self) -> tuple[str, ...]:
        """Variables whose initial values depend on each other (empty when there are none)."""
        graph = nx.DiGraph()
        for var in self.variables.values():
            if var.kind == "lookup":
                continue
            exprs = [var.initial, var.delay] if var.kind in ("stock", "delay_fixed") or var.initial is not None \
                else [var.equation]
            graph.add_node(var.name)
            for expr in exprs:
                for sym in (expr.free_symbols if expr is not None else ()):
                    src = self.by_symbol(sym)
                    if src is not None:
                        graph.add_edge(src.name, var.name)
        try:
            return tuple(edge[0] for edge in nx.find_cycle(graph))
        except nx.NetworkXNoCycle:
            return ()

    def require_analysable(self) -> None:
        """Raise ModelFileError for the first construct whose inputs the structure lost, or an
        algebraic loop; loops and units read every other construct as a black box."""
        self._require(u for u in self.unsupported if not u.keeps_inputs)

    def require_simulable(self) -> None:
        """Raise ModelFileError for the first unsupported construct or algebraic loop."""
        self._require(self.unsupported)

    def _require(self, unsupported) -> None:
        u = next(iter(unsupported), None)
        if u is not None:
            raise ModelFileError(f"{u.construct} is not supported by sdloop's structure",
                                 file=self.path, line=u.line, variable=u.variable)
        if self.algebraic_loops:
            loop = self.algebraic_loops[0]
            raise ModelFileError("simultaneous equations without a stock: " + " -> ".join(loop + loop[:1]),
                                 file=self.path, line=self[loop[0]].line, variable=loop[0])
