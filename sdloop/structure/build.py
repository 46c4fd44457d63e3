"""The frozen model structure: every variable of a model with its sympy equation.

``build_structure(path)`` reads a Vensim or XMILE file through ``sdloop.lang.source`` and
returns a ``ModelStructure``: stocks with their inflows and outflows, flows, auxiliaries,
constants and lookups, each with units, comment and file line. SMOOTH, SMOOTH3, SMOOTH N,
DELAY1, DELAY3, DELAY N and TREND are written out as the stocks they are (named
``"<variable> (stage k)"`` with flows ``"<variable> (flow k)"``); INITIAL becomes an
``initial`` variable (fixed at the initial time) and DELAY FIXED a ``delay_fixed``
variable (a pipeline of TIME STEP slots); ACTIVE INITIAL an auxiliary with an ``initial``;
macro calls the macro's variables, named after the caller (``"x [MACRO 1] inner"``).
Constructs sdloop cannot write out are listed in ``unsupported`` with variable and line.
Analysis modules read this and never the file.

Subscripted variables are written out element by element (``"Pop[north]"``, with ``array``
and ``coords``), so no consumer needs an array axis: see ``sdloop.structure.subscripts``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import networkx as nx
import sympy

from sdloop.errors import ModelFileError
from sdloop.structure.expressions import Translator
from sdloop.structure.lookups import LookupFunction, make_lookup
from sdloop.structure.symbols import number, symbol_for, time_step_symbol
from sdloop.structure.vensim_functions import FUNCTIONS
from sdloop.lang.equations import SourceIndex
from sdloop.lang.names import normalize
from sdloop.lang.source import parse_model
from sdloop.structure.placeholders import make_unsupported
from sdloop.structure.subscripts import Ranges, SubscriptError, array_values as _array_values, covered as _covered, element_name

from sdloop.structure.model import delay_stages
from sdloop.structure.model import (  # noqa: F401  (re-exported: the structure's public types)
    CONTROL,
    DYNAMIC_KINDS,
    DelayStages,
    ModelStructure,
    UnsupportedConstruct,
    Variable,
)


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
        self.ranges: Ranges | None = None
        self.macro_stocks: list[tuple[str, sympy.Expr]] = []
        self.delays: list[tuple[str, int, sympy.Expr]] = []
        self.stage_counts: list[DelayStages] = []
        self._keys: dict[str, str] = {}

    def add(self, var: Variable) -> None:
        key = normalize(var.name)
        if key in self._keys:
            first = self.variables[self._keys[key]]
            lines = f" (lines {first.line} and {var.line})" if first.line and var.line else ""
            raise ModelFileError(f"defined twice{lines}", file=self.path, line=var.line, variable=var.name)
        self._keys[key] = var.name
        self.variables[var.name] = var

    def macro_expander(self, section, translator: Translator):
        """A callback writing out one call of a macro: its variables, named after the caller."""
        from sdloop.structure.macros import macro_expander

        return macro_expander(self, section, translator)

    def static_value(self, expr: sympy.Expr) -> float | None:
        """The value of an expression of constants and controls only (None otherwise)."""
        for _ in range(30):
            if not expr.free_symbols:
                try:
                    return float(expr)
                except TypeError:
                    return None
            subs = {}
            for sym in expr.free_symbols:
                var = next((v for v in self.variables.values() if v.symbol == sym), None)
                if var is None or var.kind not in ("constant", "control", "auxiliary") or var.equation is None:
                    return None
                subs[sym] = var.equation
            expr = expr.xreplace(subs)
        return None

    def reduce_delays(self) -> None:
        """DELAY1/3/N with delay time below order x TIME STEP run with fewer stages, as in PySD
        (the order is fixed from the delay time at the initial time, when it is a constant)."""
        step = next((v for v in self.variables.values() if normalize(v.name) == "time step"), None)
        dt = self.static_value(step.symbol) if step is not None else None
        for prefix, order, T in self.delays:
            value = self.static_value(T)
            if dt is None or value is None:
                continue
            reduced = int(delay_stages(order, value, dt))
            var = self.variables[f"{prefix} (flow 1)"]
            if reduced < 1:
                self.unsupported.append(UnsupportedConstruct(var.vensim_name, var.line,
                                                             "DELAY with a delay time below TIME STEP"))
                continue
            self.stage_counts.append(DelayStages(var.vensim_name, var.line, order, reduced, self.constant_form(T)))
            if reduced < order:
                self._rebuild_delay(prefix, order, reduced, T)

    def constant_form(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every auxiliary replaced by its equation, down to constants and controls
        (call only where ``static_value`` found a value)."""
        by_symbol = {v.symbol: v for v in self.variables.values()}
        for _ in range(30):
            subs = {sym: var.equation for sym in expr.free_symbols
                    if (var := by_symbol.get(sym)) is not None and var.kind == "auxiliary"}
            if not subs:
                return expr
            expr = expr.xreplace(subs)
        return expr

    def _rebuild_delay(self, prefix: str, order: int, reduced: int, T: sympy.Expr) -> None:
        old_out = symbol_for(f"{prefix} (flow {order})")
        new_out = symbol_for(f"{prefix} (flow {reduced})")
        for k in range(reduced + 1, order + 1):
            for kind in ("stage", "flow"):
                name = f"{prefix} ({kind} {k})"
                del self.variables[name]
                del self._keys[normalize(name)]
        for k in range(1, reduced + 1):
            flow = self.variables[f"{prefix} (flow {k})"]
            stage = symbol_for(f"{prefix} (stage {k})")
            stock = self.variables[f"{prefix} (stage {k})"]
            self.variables[flow.name] = replace(flow, equation=stage * reduced / T)
            self.variables[stock.name] = replace(stock, initial=stock.initial * order / reduced)
        for name, var in list(self.variables.items()):
            fields = {f: getattr(var, f).xreplace({old_out: new_out}) for f in ("equation", "initial", "delay")
                      if getattr(var, f) is not None and old_out in getattr(var, f).free_symbols}
            if fields:
                self.variables[name] = replace(var, **fields)

    def synthetic(self, name: str, kind: str, equation, units: str = "", **extra) -> sympy.Symbol:
        owner, _, comment, line = self.current
        var = Variable(name, kind, symbol_for(name), equation, units, comment, line, owner=owner, **extra)
        self.add(var)
        return var.symbol

    def stateful(self, kind: str, args: dict, owner: str, top: bool) -> sympy.Expr:
        """Write a SMOOTH/DELAY/TREND/INITIAL/DELAY FIXED call out as explicit variables."""
        _, units, _, _ = self.current
        kind = kind.replace("Structure", "")
        if not top:  # nested in an expression: the stages hold the input's units, not the owner's
            units = ""
        n = self.counter[owner] = self.counter.get(owner, 0) + 1
        prefix = owner if n == 1 else f"{owner} [{kind.upper()} {n}]"
        if kind == "Initial":
            if top:
                return self._own(kind="initial", equation=args["initial"])
            return self.synthetic(f"{prefix} (initial)", "initial", args["initial"], units)
        if kind == "ActiveInitial":
            if top:
                return self._own(kind="auxiliary", equation=args["expr"], initial=args["initial"])
            return self.synthetic(f"{prefix} (active initial)", "auxiliary", args["expr"], units,
                                  initial=args["initial"])
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
            self.delays.append((prefix, order, T))
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
        if kind == "SampleIfTrue":
            # PySD keeps the last sampled value: a stock that moves to the output in one TIME STEP
            stage = symbol_for(f"{prefix} (sample)")
            output = sympy.Piecewise((args["input"], args["condition"]), (stage, True))
            flow = self.synthetic(f"{prefix} (sample flow)", "flow", (output - stage) / time_step_symbol())
            self.synthetic(f"{prefix} (sample)", "stock", flow, units, initial=args["initial"],
                           inflows=(f"{prefix} (sample flow)",))
            return output
        if kind == "Forecast":
            inp, T = args["input"], args["average_time"]
            stage = symbol_for(f"{prefix} (stage 1)")
            flow = self.synthetic(f"{prefix} (flow 1)", "flow", (inp - stage) / T)
            # the horizon is kept on the stage too: a number there is a time (the unit check reads it)
            self.synthetic(f"{prefix} (stage 1)", "stock", flow, units, initial=inp / (1 + args["initial_trend"]),
                           inflows=(f"{prefix} (flow 1)",),
                           delay=args["horizon"] if args["horizon"].is_Number else None)
            return inp * (1 + FUNCTIONS["zidz"](inp - stage, T * stage) * args["horizon"])
        if kind == "Trend":
            inp, T = args["input"], args["average_time"]
            stage = symbol_for(f"{prefix} (stage 1)")
            flow = self.synthetic(f"{prefix} (flow 1)", "flow", (inp - stage) / T)
            # the average time is kept on the stage too (the unit check reads it)
            self.synthetic(f"{prefix} (stage 1)", "stock", flow, initial=inp / (1 + args["initial_trend"] * T),
                           inflows=(f"{prefix} (flow 1)",), delay=T)
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
    A file no engine can run (``ModelStructure.require_valid``) raises too.
    """
    abstract, index = parse_model(path, check_names=check_names)
    structure = structure_from_abstract(Path(path), abstract, index)
    structure.require_valid()
    return structure


DATA_TYPES = ("DataStructure", "GetDataStructure", "GetConstantsStructure", "GetLookupsStructure")


def _component_lines(index: SourceIndex, element) -> list[int | None]:
    """The file line of each component of an element (its equations in file order)."""
    defs = [eq for eq in index.definitions(element.name) if not eq.range]
    if len(defs) == len(element.components):
        return [eq.line for eq in defs]
    return [index.line(element.name)] * len(element.components)


def structure_from_abstract(path: Path, abstract, index: SourceIndex) -> ModelStructure:
    """Build the ModelStructure from PySD's AbstractModel and the SourceIndex."""
    from pysd.translators.structures import abstract_expressions as ax

    main = next((sec for sec in abstract.sections if sec.name == "__main__"), abstract.sections[0])
    macros = {normalize(sec.name): sec for sec in abstract.sections if sec is not main}
    elements = list(main.elements)
    time_units = ""
    for el in elements:
        if normalize(el.name) in ("time step", "initial time") and el.units:
            time_units = time_units or el.units.strip()
    builder = _Builder(path, index, time_units)
    try:
        ranges = Ranges.from_abstract(main, path.parent)
    except Exception as exc:  # a range PySD cannot resolve (file, copy of an unknown range)
        raise ModelFileError(f"cannot read the subscript ranges: {exc}", file=path) from None
    builder.ranges = ranges
    lookups: dict[str, type[LookupFunction]] = {}
    problems: list[UnsupportedConstruct] = []
    for el in elements:
        for comp, line in zip(el.components, _component_lines(index, el)):
            if isinstance(comp.ast, ax.LookupsStructure):
                try:
                    covered = _covered(ranges, comp)
                except SubscriptError as exc:
                    problems.append(UnsupportedConstruct(el.name, line, f"subscripts: {exc}"))
                    continue
                for coords, _ in covered:
                    name = element_name(el.name, coords)
                    lookups[normalize(name)] = make_lookup(name, comp.ast.x, comp.ast.y)
    variables = frozenset(normalize(el.name) for el in elements)
    translator = Translator(lookups, builder.stateful, ranges, variables, {})
    translator.macros = {key: builder.macro_expander(sec, translator) for key, sec in macros.items()}
    for el in elements:
        for comp in el.components:
            if comp.subscripts[0]:
                try:
                    translator.arrays.setdefault(normalize(el.name), set()).update(
                        normalize(element_name(el.name, coords)) for coords, _ in _covered(ranges, comp))
                except SubscriptError:
                    pass
    builder.unsupported += problems
    pending_stocks: list[tuple[str, sympy.Expr]] = []
    for el in elements:
        units, comment = el.units or "", (el.documentation or "").strip()
        for comp, line in zip(el.components, _component_lines(index, el)):
            ast = comp.ast
            if type(ast).__name__ in DATA_TYPES or isinstance(comp.ast, ax.LookupsStructure) and type(
                    comp).__name__ == "AbstractData":
                construct = "data variable" if type(ast).__name__ == "DataStructure" else re.sub(
                    r"(?<!^)(?=[A-Z])", " ", type(ast).__name__.replace("Structure", "")).upper()
                builder.unsupported.append(UnsupportedConstruct(el.name, line, construct))
                _placeholders(builder, el, comp, ranges, construct)
                continue
            try:
                covered = _covered(ranges, comp)
                values = _array_values(ast, comp, ranges, covered)
            except SubscriptError as exc:
                builder.unsupported.append(UnsupportedConstruct(el.name, line, f"subscripts: {exc}"))
                continue
            for i, (coords, context) in enumerate(covered):
                name = element_name(el.name, coords)
                tags = {"array": el.name, "coords": coords} if coords else {}
                builder.current = (name, units, comment, line)
                key = normalize(name)
                if key in lookups:
                    builder.add(Variable(name, "lookup", symbol_for(name), None, units, comment, line,
                                         lookup=lookups[key], **tags))
                    continue
                before = len(translator.unsupported)
                if isinstance(ast, ax.IntegStructure):
                    net = translator.translate(ast.flow, name, context, coords)
                    initial = translator.translate(ast.initial, name, context, coords)
                    builder.add(Variable(name, "stock", symbol_for(name), net, units, comment, line,
                                         initial=initial, non_negative=bool(getattr(ast, "non_negative", False)),
                                         **tags))
                    pending_stocks.append((name, net))
                else:
                    expr = number(values[i]) if values is not None else translator.translate(ast, name, context,
                                                                                             coords)
                    if name not in builder.variables:
                        kind = "control" if key in CONTROL else (
                            "constant" if values is not None or isinstance(ast, (int, float))
                            or type(ast).__module__.startswith("numpy") else "auxiliary")
                        builder.add(Variable(name, kind, symbol_for(name), expr, units, comment, line, **tags))
                    elif tags:
                        builder.variables[name] = replace(builder.variables[name], **tags)
                for construct in translator.unsupported[before:]:
                    builder.unsupported.append(UnsupportedConstruct(el.name, line, construct))
    _assign_flows(builder, pending_stocks + builder.macro_stocks)
    builder.reduce_delays()
    variables = builder.variables
    _dynamic_controls(builder)
    order, loops = _evaluation_order(variables, [normalize(n) for n in variables])
    by_key = {normalize(n): n for n in variables}
    by_symbol = {v.symbol: n for n, v in variables.items()}
    return ModelStructure(path, MappingProxyType(variables), order, tuple(builder.unsupported),
                          loops, time_units, MappingProxyType(dict(ranges.elements)), tuple(builder.stage_counts),
                          MappingProxyType(by_key), MappingProxyType(by_symbol))


def _placeholders(builder: "_Builder", el, comp, ranges: Ranges, construct: str) -> None:
    """Stand-in variables for data the structure cannot hold (the model runs through PySD)."""
    try:
        covered = _covered(ranges, comp)
    except SubscriptError:
        covered = [((), {})]
    for coords, _ in covered:
        name = element_name(el.name, coords)
        if normalize(name) not in builder._keys:
            tags = {"array": el.name, "coords": coords} if coords else {}
            builder.add(Variable(name, "auxiliary", symbol_for(name), make_unsupported(construct)(sympy.Integer(0)),
                                 el.units or "", (el.documentation or "").strip(), builder.index.line(el.name), **tags))


def _dynamic_controls(builder: "_Builder") -> None:
    """A control computed from stocks, data or Time cannot be fixed before the run."""
    static = {v.symbol for v in builder.variables.values() if v.kind in ("constant", "control")}
    builder.unsupported += [UnsupportedConstruct(v.name, v.line, f"{v.name.upper()} computed during the run")
                            for v in builder.variables.values() if v.kind == "control" and v.equation is not None
                            and not v.equation.free_symbols <= static]


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
