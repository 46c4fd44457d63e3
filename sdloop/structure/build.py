"""The frozen model structure: every variable of a model with its sympy equation.

``build_structure(path)`` reads a Vensim or XMILE file through ``sdloop.lang.source`` and
returns a ``ModelStructure``: stocks with their inflows and outflows, flows, auxiliaries,
constants and lookups, each with units, comment and file line. SMOOTH, SMOOTH3, SMOOTH N,
DELAY1, DELAY3, DELAY N and TREND are written out as the stocks they are (named
``"<variable> (stage k)"`` with flows ``"<variable> (flow k)"``); INITIAL becomes an
``initial`` variable (fixed at the initial time) and DELAY FIXED a ``delay_fixed``
variable (a pipeline of TIME STEP slots). Constructs sdloop cannot write out are listed in
``unsupported`` with variable and line. Analysis modules read this and never the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import networkx as nx
import sympy

from sdloop.errors import ModelFileError
from sdloop.structure.expressions import (
    LookupFunction,
    Translator,
    make_lookup,
    number,
    symbol_for,
)
from sdloop.lang.source import SourceIndex, normalize, parse_model

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

    @property
    def vensim_name(self) -> str:
        """The name as written in the model file (the owner's for written-out variables)."""
        return self.owner or self.name


@dataclass(frozen=True)
class UnsupportedConstruct:
    variable: str
    line: int | None
    construct: str


@dataclass(frozen=True)
class ModelStructure:
    """A model's variables, evaluation order and what could not be represented."""

    path: Path
    variables: Mapping[str, Variable]
    order: tuple[str, ...]
    unsupported: tuple[UnsupportedConstruct, ...] = ()
    algebraic_loops: tuple[tuple[str, ...], ...] = ()
    time_units: str = ""
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

    def control(self, name: str) -> float:
        """Numeric value of INITIAL TIME, FINAL TIME, TIME STEP or SAVEPER."""
        var = self.get(name)
        if var is None:
            raise ModelFileError(f"the model defines no {name.upper()}", file=self.path)
        values = {s: number(self.control(self.by_symbol(s).name)) for s in var.equation.free_symbols
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

    def require_simulable(self) -> None:
        """Raise ModelFileError for the first unsupported construct or algebraic loop."""
        if self.unsupported:
            u = self.unsupported[0]
            raise ModelFileError(f"{u.construct} is not supported by sdloop's structure",
                                 file=self.path, line=u.line, variable=u.variable)
        if self.algebraic_loops:
            loop = self.algebraic_loops[0]
            raise ModelFileError("simultaneous equations without a stock: " + " -> ".join(loop + loop[:1]),
                                 file=self.path, line=self[loop[0]].line, variable=loop[0])


class _Builder:
    """Collects variables while translating a parsed model."""

    def __init__(self, path: Path, index: SourceIndex, time_units: str) -> None:
        self.path = path
        self.index = index
        self.time_units = time_units
        self.variables: dict[str, Variable] = {}
        self.unsupported: list[UnsupportedConstruct] = []
        self.counter: dict[str, int] = {}
        self.current: tuple[str, str, str, int | None] = ("", "", "", None)

    def add(self, var: Variable) -> None:
        if normalize(var.name) in {normalize(n) for n in self.variables}:
            raise ModelFileError("variable defined twice", file=self.path, line=var.line, variable=var.name)
        self.variables[var.name] = var

    def synthetic(self, name: str, kind: str, equation, units: str = "", **extra) -> sympy.Symbol:
        owner, _, comment, line = self.current
        var = Variable(name, kind, symbol_for(name), equation, units, comment, line, owner=owner, **extra)
        self.add(var)
        return var.symbol

    def stateful(self, kind: str, args: dict, owner: str, top: bool) -> sympy.Expr:
        """Write a SMOOTH/DELAY/TREND/INITIAL/DELAY FIXED call out as explicit variables."""
        _, units, _, _ = self.current
        kind = kind.replace("Structure", "")
        n = self.counter[owner] = self.counter.get(owner, 0) + 1
        prefix = owner if n == 1 else f"{owner} [{kind.upper()} {n}]"
        if kind == "Initial":
            if top:
                return self._own(kind="initial", equation=args["initial"])
            return self.synthetic(f"{prefix} (initial)", "initial", args["initial"], units)
        if kind == "DelayFixed":
            if top:
                return self._own(kind="delay_fixed", equation=args["input"], initial=args["initial"],
                                 delay=args["delay_time"])
            return self.synthetic(f"{prefix} (delay fixed)", "delay_fixed", args["input"], units,
                                  initial=args["initial"], delay=args["delay_time"])
        order = args.get("order", sympy.Integer(1))
        if not (isinstance(order, sympy.Number) and float(order).is_integer() and order >= 1):
            self.unsupported.append(UnsupportedConstruct(owner, self.current[3], f"{kind.upper()} with a non-constant order"))
            return args["input"]
        order = int(order)
        if kind in ("Smooth", "SmoothN"):
            target, T = args["input"], args["smooth_time"]
            for k in range(1, order + 1):
                stage = symbol_for(f"{prefix} (stage {k})")
                flow = self.synthetic(f"{prefix} (flow {k})", "flow", (target - stage) * order / T)
                self.synthetic(f"{prefix} (stage {k})", "stock", flow, units, initial=args["initial"],
                               inflows=(f"{prefix} (flow {k})",))
                target = stage
            return target
        if kind in ("Delay", "DelayN"):
            T = args["delay_time"]
            inflow_name = f"{prefix} (flow 0)"
            self.synthetic(inflow_name, "flow", args["input"], units)
            for k in range(1, order + 1):
                stage = symbol_for(f"{prefix} (stage {k})")
                out_name = f"{prefix} (flow {k})"
                out = self.synthetic(out_name, "flow", stage * order / T)
                self.synthetic(f"{prefix} (stage {k})", "stock", symbol_for(inflow_name) - out,
                               initial=args["initial"] * T / order, inflows=(inflow_name,), outflows=(out_name,))
                inflow_name = out_name
            return symbol_for(inflow_name)
        if kind == "Trend":
            inp, T = args["input"], args["average_time"]
            stage = symbol_for(f"{prefix} (stage 1)")
            flow = self.synthetic(f"{prefix} (flow 1)", "flow", (inp - stage) / T)
            self.synthetic(f"{prefix} (stage 1)", "stock", flow, initial=inp / (1 + args["initial_trend"] * T),
                           inflows=(f"{prefix} (flow 1)",))
            from sdloop.structure.expressions import FUNCTIONS

            return FUNCTIONS["zidz"](inp - stage, T * sympy.Abs(stage))
        self.unsupported.append(UnsupportedConstruct(owner, self.current[3], kind.upper()))
        return args["input"]

    def _own(self, **fields) -> sympy.Symbol:
        owner, units, comment, line = self.current
        self.add(Variable(owner, symbol=symbol_for(owner), units=units, comment=comment, line=line, **fields))
        return symbol_for(owner)


def build_structure(path: str | Path, *, check_names: bool = True) -> ModelStructure:
    """Parse a model file and build its ModelStructure (raises ModelFileError).

    ``check_names=False`` builds even with undefined names (their symbols stay free).
    """
    abstract, index = parse_model(path, check_names=check_names)
    return structure_from_abstract(Path(path), abstract, index)


def structure_from_abstract(path: Path, abstract, index: SourceIndex) -> ModelStructure:
    """Build the ModelStructure from PySD's AbstractModel and the SourceIndex."""
    from pysd.translators.structures import abstract_expressions as ax

    elements = [el for section in abstract.sections for el in section.elements]
    time_units = ""
    for el in elements:
        if normalize(el.name) in ("time step", "initial time") and el.units:
            time_units = time_units or el.units.strip()
    builder = _Builder(path, index, time_units)
    lookups: dict[str, type[LookupFunction]] = {}
    for el in elements:
        comp = el.components[0] if el.components else None
        if comp is not None and isinstance(comp.ast, ax.LookupsStructure):
            lookups[normalize(el.name)] = make_lookup(el.name, comp.ast.x, comp.ast.y)
    translator = Translator(lookups, builder.stateful)
    pending_stocks: list[tuple[str, sympy.Expr]] = []
    for el in elements:
        line, units, comment = index.line(el.name), el.units or "", (el.documentation or "").strip()
        builder.current = (el.name, units, comment, line)
        key = normalize(el.name)
        if len(el.components) != 1 or el.components[0].subscripts[0]:
            builder.unsupported.append(UnsupportedConstruct(el.name, line, "SUBSCRIPTS"))
            builder.add(Variable(el.name, "auxiliary", symbol_for(el.name), sympy.Integer(0), units, comment, line))
            continue
        ast = el.components[0].ast
        if key in lookups:
            builder.add(Variable(el.name, "lookup", symbol_for(el.name), None, units, comment, line,
                                 lookup=lookups[key]))
            continue
        before = len(translator.unsupported)
        if isinstance(ast, ax.IntegStructure):
            net = translator.translate(ast.flow, el.name)
            initial = translator.translate(ast.initial, el.name)
            builder.add(Variable(el.name, "stock", symbol_for(el.name), net, units, comment, line, initial=initial))
            pending_stocks.append((el.name, net))
        else:
            expr = translator.translate(ast, el.name)
            if el.name not in builder.variables:
                kind = "control" if key in CONTROL else (
                    "constant" if isinstance(ast, (int, float)) or type(ast).__module__.startswith("numpy")
                    else "auxiliary")
                builder.add(Variable(el.name, kind, symbol_for(el.name), expr, units, comment, line))
        for construct in translator.unsupported[before:]:
            builder.unsupported.append(UnsupportedConstruct(el.name, line, construct))
    _assign_flows(builder, pending_stocks)
    variables = builder.variables
    order, loops = _evaluation_order(variables, [normalize(n) for n in variables])
    by_key = {normalize(n): n for n in variables}
    by_symbol = {v.symbol: n for n, v in variables.items()}
    return ModelStructure(path, MappingProxyType(variables), order, tuple(builder.unsupported),
                          loops, time_units, MappingProxyType(by_key), MappingProxyType(by_symbol))


def _assign_flows(builder: _Builder, stocks: list[tuple[str, sympy.Expr]]) -> None:
    """Split each stock's net flow into inflows and outflows, or one written-out net flow."""
    variables = builder.variables
    by_symbol = {v.symbol: v for v in variables.values()}
    for name, net in stocks:
        inflows, outflows, ok = [], [], True
        for term in sympy.Add.make_args(net):
            coeff, rest = term.as_coeff_Mul()
            var = by_symbol.get(rest)
            if var is None or var.kind not in ("auxiliary", "flow") or abs(coeff) != 1:
                ok = False
                break
            (inflows if coeff > 0 else outflows).append(var.name)
        stock = variables[name]
        if not ok or net == 0:
            flow_name = f"{name} (net flow)"
            units = f"({stock.units})/{builder.time_units}" if stock.units and builder.time_units else ""
            builder.current = (name, units, stock.comment, stock.line)
            builder.synthetic(flow_name, "flow", net, units)
            inflows, outflows = [flow_name], []
            net = symbol_for(flow_name)
        for flow in inflows + outflows:
            if variables[flow].kind == "auxiliary":
                variables[flow] = replace(variables[flow], kind="flow")
        variables[name] = replace(stock, equation=net, inflows=tuple(inflows), outflows=tuple(outflows))


def _evaluation_order(variables: dict[str, Variable], keys: list[str]) -> tuple[tuple[str, ...], tuple]:
    """Topological order of flows and auxiliaries; algebraic loops when there is none."""
    by_symbol = {v.symbol: v for v in variables.values()}
    position = {name: i for i, name in enumerate(variables)}
    graph = nx.DiGraph()
    for var in variables.values():
        if var.kind not in DYNAMIC_KINDS:
            continue
        graph.add_node(var.name)
        for sym in var.equation.free_symbols:
            src = by_symbol.get(sym)
            if src is not None and src.kind in DYNAMIC_KINDS:
                graph.add_edge(src.name, var.name)
    try:
        order = tuple(nx.lexicographical_topological_sort(graph, key=position.get))
        return order, ()
    except nx.NetworkXUnfeasible:
        loops = []
        for component in nx.strongly_connected_components(graph):
            sub = graph.subgraph(component)
            if len(component) > 1 or sub.has_edge(*(2 * list(component))):
                cycle = next(nx.simple_cycles(sub))
                start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
                loops.append(tuple(cycle[start:] + cycle[:start]))
        return (), tuple(sorted(loops, key=lambda c: position[c[0]]))
