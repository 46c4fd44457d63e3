"""Plan a generated run: which variables are fixed for the run (constants, INITIAL, what is
computed from them) and which of those vary between runs, which depend on Time and uniform
constants only (computed over the whole time grid), the order of initial values, the loop
variables the results need, and the sub-expressions hoisted out of the time loop."""

from __future__ import annotations

import graphlib
from collections import Counter

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from sdloop.engines.numpy_printer import VARIABLE_PREFIX
from sdloop.errors import ModelFileError
from sdloop.structure.build import ModelStructure
from sdloop.structure.symbols import TIME

CONSTANT_KINDS = ("constant", "control")
LOOP_KINDS = ("flow", "auxiliary")


class RunPlan:
    """What is fixed for a run and what varies, the order of initial values, and which
    sub-expressions can leave the time loop (shared by the numpy and C code generators)."""

    def __init__(self, structure: ModelStructure, varying: frozenset[str], recorded: tuple[str, ...]):
        self.s = structure
        self.varying = varying
        self.recorded = recorded
        self.ident = {name: VARIABLE_PREFIX + var.symbol.name for name, var in structure.variables.items()}
        self.key = {name: var.symbol.name for name, var in structure.variables.items()}
        self.kind = {name: var.kind for name, var in structure.variables.items()}
        self.constant_symbols = {v.symbol for v in structure.variables.values() if v.kind in CONSTANT_KINDS}
        self.varying_symbols = {structure.variables[n].symbol for n in varying}
        self.groups: dict = {}
        self._classify()

    # which variables are fixed for the run, and which of those vary between runs
    def _classify(self) -> None:
        s = self.s
        static, static_varying = set(self.constant_symbols), set(self.varying_symbols)
        order = self.init_order()
        for name in order:
            var = s.variables[name]
            if var.kind in LOOP_KINDS or var.kind == "initial":
                syms = var.equation.free_symbols
                fixed = TIME not in syms and syms <= static and var.initial is None
                if fixed or var.kind == "initial":  # INITIAL keeps its value at the initial time
                    static.add(var.symbol)
                    if not fixed or syms & static_varying:
                        static_varying.add(var.symbol)
        self.static = static
        self.static_varying = static_varying
        # loop variables that depend on Time and uniform constants only: computed over the grid
        timed: dict[sympy.Symbol, str] = {}
        for name in s.order:
            var = s.variables[name]
            syms = var.equation.free_symbols
            if (var.symbol not in static and syms <= static | {TIME} | set(timed) and not syms & static_varying
                    and var.initial is None):
                timed[var.symbol] = name
        self.timed_vars = timed

    def init_order(self) -> list[str]:
        """All non-lookup variables, each after those its initial value uses."""
        s = self.s
        graph = {}
        for name, var in s.variables.items():
            if var.kind == "lookup":
                continue
            exprs = [var.initial, var.delay] if var.kind in ("stock", "delay_fixed") or var.initial is not None \
                else [var.equation]
            deps = set()
            for expr in exprs:
                if expr is not None:
                    deps |= {s.by_symbol(sym).name for sym in expr.free_symbols if s.by_symbol(sym) is not None}
            graph[name] = deps
        # predecessors in the model's order, not a set's (whose order changes with the process's hash
        # seed): the same model gives the same code, so the compiled kernel's cache key holds
        position = {name: i for i, name in enumerate(s.variables)}
        graph = {name: sorted(deps, key=position.__getitem__) for name, deps in graph.items()}
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            var = s.variables[cycle[0]]
            raise ModelFileError("initial values depend on each other: " + " -> ".join(cycle),
                                 file=s.path, line=var.line, variable=var.vensim_name) from None

    def needed(self, dynamic: list[str]) -> list[str]:
        """The loop variables the stocks, pipelines and recorded columns depend on (in order)."""
        s = self.s
        wanted = set(self.recorded)
        for var in s.variables.values():
            if var.kind == "stock":
                wanted |= set(var.inflows + var.outflows)
            elif var.kind == "delay_fixed":
                wanted |= set(s.inputs(var.name))
        for name in reversed(dynamic):
            if name in wanted:
                wanted |= set(s.inputs(name))
        return [n for n in dynamic if n in wanted]

    # hoisting of sub-expressions out of the time loop
    def _kind_of(self, expr) -> str:
        """'const' (constants only), 'timed' (Time and uniform constants) or 'dynamic'."""
        syms = expr.free_symbols
        if syms <= self.static:
            return "const"
        if syms <= self.static | {TIME} | set(self.timed_vars) and not (syms & self.static_varying):
            return "timed"
        return "dynamic"

    def _hoist(self, expr, const: dict, timed: dict, counts: Counter) -> None:
        hoist(expr, self._kind_of, const, timed, self.groups, counts, names=("_c", "_t"))


def hoist(expr, kind_of, const: dict, timed: dict, groups: dict, counts: Counter | None = None,
          names: tuple[str, str] = ("", "")) -> None:
    """Collect the largest sub-expressions of ``expr`` that ``kind_of`` calls 'const' into
    ``const`` and those it calls 'timed' into ``timed`` (each named by its prefix in ``names``
    and its position), and record in ``groups`` a product or sum whose fixed factors (or terms)
    are evaluated together: expr -> (their product or sum, the rest). ``counts`` (when given)
    counts the dynamic sub-expressions met; those met before are not walked again. Shared by
    the numpy and C code generators, which differ in what they call 'const' and 'timed'."""
    if expr.is_Atom or isinstance(expr, sympy.logic.boolalg.BooleanAtom):
        return
    if isinstance(expr, ExprCondPair):
        for arg in expr.args:
            hoist(arg, kind_of, const, timed, groups, counts, names)
        return
    kind = kind_of(expr)
    if kind != "dynamic":
        found, prefix = (const, names[0]) if kind == "const" else (timed, names[1])
        found.setdefault(expr, f"{prefix}{len(found)}")
        return
    if counts is not None:
        counts[expr] += 1
        if counts[expr] > 1:
            return  # its sub-expressions were counted the first time
    args = expr.args
    if isinstance(expr, (sympy.Mul, sympy.Add)):
        fixed = [a for a in args if kind_of(a) != "dynamic"]
        group = expr.func(*fixed) if len(fixed) > 1 else None
        # a constant and a timed factor (or a varying INITIAL value) may make a dynamic group: not hoisted
        if group is not None and kind_of(group) != "dynamic":
            rest = [a for a in args if kind_of(a) == "dynamic"]
            groups[expr] = (group, rest)
            hoist(group, kind_of, const, timed, groups, counts, names)
            args = rest
    for arg in args:
        hoist(arg, kind_of, const, timed, groups, counts, names)
