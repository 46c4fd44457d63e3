"""Generate the source of one numpy function that integrates a model for N parameter sets.

``generate(structure, varying)`` returns a ``GeneratedCode``: readable Python source of a
function ``run_block(C, times, save_steps, out, n)`` and the namespace it needs (numpy
and the lookup tables). The semantics are those of ``sdloop.engines.euler`` (and so of PySD):
Euler steps, every variable evaluated at the initial time in dependency order, auxiliaries
and flows in evaluation order at each later step, stocks updated by ``dt * (inflows -
outflows)``, DELAY FIXED through a pipeline of TIME STEP slots, lookups through
``numpy.interp`` (which holds the end values, as Vensim does).

What the code generator does to be fast, without changing a number beyond rounding:

- constants that are the same for every run of a block (``uniform``) are plain floats;
  only the ``varying`` ones are arrays of N values;
- variables computed from constants only are evaluated once, before the time loop;
- inside the loop, sub-expressions of constants only are hoisted before the loop, and
  sub-expressions of Time and uniform constants (policy windows, STEP, RAMP, dated
  shocks) are evaluated once over the whole time grid and indexed at each step;
- a sub-expression used more than once within a step is computed once;
- IF THEN ELSE / Piecewise become ``numpy.where`` (MIN and MAX ``numpy.minimum`` /
  ``numpy.maximum``).

Every model variable is ``v_<identifier>`` in the code, so no Vensim name shadows a name the
code uses; subscripted variables arrive element by element from the structure, each an
array of N runs. ACTIVE INITIAL variables take their initial value while initial values are
computed, then every auxiliary is evaluated again at the initial time; XMILE non-negative
stocks are clipped at zero after each step, as PySD does.
"""

from __future__ import annotations

import graphlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.printing.numpy import NumPyPrinter

from sdloop.errors import ModelFileError
from sdloop.structure.expressions import TIME, LookupFunction, LookupSlope
from sdloop.engines.printing import HoistingPrinter
from sdloop.structure.build import ModelStructure

CONSTANT_KINDS = ("constant", "control")
# Every model variable is ``v_<symbol name>`` in the generated code, so that no Vensim name
# (``where``, ``times``, ``exp``, ``n``) can shadow a name the code itself uses.
VARIABLE_PREFIX = "v_"
LOOP_KINDS = ("flow", "auxiliary")


class EnginePrinter(HoistingPrinter, NumPyPrinter):
    """NumPyPrinter with exact float literals, ``numpy.where`` for Piecewise and named temps."""

    def __init__(self, replacements: dict | None = None, groups: dict | None = None,
                 fast_pow: bool = False) -> None:
        super().__init__(replacements, groups, settings={"fully_qualified_modules": False, "inline": True})
        self.fast_pow = fast_pow

    def _print_Symbol(self, expr):
        return "time" if expr == TIME else VARIABLE_PREFIX + expr.name

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return f"({expr.p}/{expr.q})"

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self.parenthesize(base, sympy.printing.precedence.PRECEDENCE["Pow"])
        if exp == -1:
            return f"(1/{b})"
        if exp == sympy.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if exp == -sympy.Rational(1, 2):
            return f"(1/sqrt({self._print(base)}))"
        if exp.is_Integer and exp < 0:
            return f"(1/{b}**{int(-exp)})"
        if self.fast_pow and not exp.is_Integer:
            return f"fast_pow({self._print(base)}, {self._print(exp)})"
        e = self.parenthesize(exp, sympy.printing.precedence.PRECEDENCE["Pow"])
        return f"{b}**{e}"

    def _print_Piecewise(self, expr):
        pieces = list(expr.args)
        last = pieces[-1]
        min_max = self._min_max(pieces)
        if min_max:
            return min_max
        if last.cond is sympy.true:
            text = self._print(last.expr)
            pieces = pieces[:-1]
        else:
            text = "nan"
        for value, condition in reversed(pieces):
            text = f"where({self._print(condition)}, {self._print(value)}, {text})"
        return text

    def _print_ITE(self, expr):
        c, a, b = (self._print(arg) for arg in expr.args)
        return f"where({c}, {a}, {b})"

    def _print_And(self, expr):
        return self._nested("logical_and", expr.args)

    def _print_Or(self, expr):
        return self._nested("logical_or", expr.args)

    def _print_Not(self, expr):
        return f"logical_not({self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    def _print_Function(self, expr):
        cls = type(expr)
        if issubclass(cls, (LookupFunction, LookupSlope)):
            return f"{cls.__name__}({self._print(expr.args[0])})"
        return super()._print_Function(expr)


def lookup_namespace(structure: ModelStructure) -> dict:
    """Name -> numeric function for every lookup (and slope) used by the model's equations."""
    namespace = {}
    for var in structure.variables.values():
        for expr in (var.equation, var.initial, var.delay):
            if expr is None:
                continue
            for fn in expr.atoms(sympy.Function):
                cls = type(fn)
                if issubclass(cls, LookupFunction):
                    xs, ys = np.asarray(cls.xs, float), np.asarray(cls.ys, float)
                    namespace[cls.__name__] = (lambda xs, ys: lambda x: np.interp(x, xs, ys))(xs, ys)
                elif issubclass(cls, LookupSlope):
                    namespace[cls.__name__] = cls.numeric()
    return namespace


@dataclass(frozen=True)
class GeneratedCode:
    """Source of ``run_block`` and the namespace it is executed in."""

    source: str
    namespace: dict = field(repr=False)
    varying: frozenset[str] = frozenset()
    recorded: tuple[str, ...] = ()
    stocks: tuple[str, ...] = ()

    def compile(self):
        namespace = dict(self.namespace)
        code = compile(self.source, f"<sdloop engine: {len(self.recorded)} columns>", "exec")
        exec(code, namespace)
        return namespace["run_block"]


class _Generator:
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
        if expr.is_Atom or isinstance(expr, sympy.logic.boolalg.BooleanAtom):
            return
        if isinstance(expr, ExprCondPair):
            for arg in expr.args:
                self._hoist(arg, const, timed, counts)
            return
        kind = self._kind_of(expr)
        if kind == "const":
            const.setdefault(expr, f"_c{len(const)}")
            return
        if kind == "timed":
            timed.setdefault(expr, f"_t{len(timed)}")
            return
        counts[expr] += 1
        if counts[expr] > 1:
            return  # its sub-expressions were counted the first time
        args = expr.args
        if isinstance(expr, (sympy.Mul, sympy.Add)):
            fixed = [a for a in args if self._kind_of(a) != "dynamic"]
            group = expr.func(*fixed) if len(fixed) > 1 else None
            if group is not None and self._kind_of(group) != "dynamic":
                # evaluate the fixed factors (or terms) together, before the loop
                rest = [a for a in args if self._kind_of(a) == "dynamic"]
                self.groups[expr] = (group, rest)
                self._hoist(group, const, timed, counts)
                args = rest
        for arg in args:
            self._hoist(arg, const, timed, counts)

    def generate(self) -> str:
        s, ident = self.s, self.ident
        lines = ["def run_block(C, times, save_steps, out, n):",
                 '    """Integrate one block of n runs; write the recorded columns into out."""',
                 "    # constants (floats when uniform over the block, arrays of n when varying)"]
        for var in s.variables.values():
            if var.kind in CONSTANT_KINDS:
                lines.append(f"    {ident[var.name]} = C[{self.key[var.name]!r}]")
        raw = EnginePrinter()
        lines.append("    # every variable at the initial time, in dependency order")
        lines.append("    time = times[0]")
        for name in self.init_order():
            var = s.variables[name]
            if var.kind in CONSTANT_KINDS:
                continue
            expr = var.initial if var.kind in ("stock", "delay_fixed") or var.initial is not None else var.equation
            lines.append(f"    {ident[name]} = {raw.doprint(expr)}")
        if any(v.initial is not None and v.kind in LOOP_KINDS for v in s.variables.values()):
            lines.append("    # ACTIVE INITIAL: stocks started from the initial values; now the equations at the initial time")
            for name in s.order:
                lines.append(f"    {ident[name]} = {raw.doprint(s.variables[name].equation)}")
        dynamic = self.needed([n for n in s.order if s.variables[n].symbol not in self.static])
        const, timed, counts = {}, {}, Counter()
        exprs = {n: s.variables[n].equation for n in dynamic}
        pipes = [v for v in s.variables.values() if v.kind == "delay_fixed"]
        for name, expr in exprs.items():
            if s.variables[name].symbol not in self.timed_vars:
                self._hoist(expr, const, timed, counts)
        for p in pipes:
            self._hoist(p.equation, const, timed, counts)
        if const:
            lines.append("    # sub-expressions of constants only")
            for expr, temp in const.items():
                lines.append(f"    {temp} = {raw.doprint(expr)}")
        if pipes:
            lines.append("    # DELAY FIXED pipelines: slot k % order holds the value at step k")
            lines.append("    _runs = arange(n)")
            for p in pipes:
                x, dt = ident[p.name], ident[s.get("time step").name]
                lines.append(f"    _order_{x} = broadcast_to(rint(maximum(({raw.doprint(p.delay)}) / {dt}, 1) + 1e-6)"
                             f".astype(int), (n,))")
                lines.append(f"    _pipe_{x} = empty((int(_order_{x}.max()), n))")
                lines.append(f"    _pipe_{x}[:] = {x}")
        grid_vars = [name for sym, name in self.timed_vars.items()]
        if timed or any(name in dynamic for name in grid_vars):
            lines.append("    # variables and sub-expressions of Time and uniform constants, over the whole time grid")
            lines.append("    time = times")
            on_grid = EnginePrinter({sym: f"_w_{sym.name}" for sym in self.timed_vars})
            for sym, name in self.timed_vars.items():  # every one, in evaluation order
                lines.append(f"    _w_{sym.name} = broadcast_to({on_grid.doprint(s.variables[name].equation)}, "
                             "times.shape)")
            for expr, temp in timed.items():
                lines.append(f"    {temp} = broadcast_to({on_grid.doprint(expr)}, times.shape)")
            lines.append("    time = times[0]")
        replacements = {**const, **{expr: f"{temp}[k]" for expr, temp in timed.items()}}
        shared = {e for e, c in counts.items() if c > 1}
        outputs = [ident[n] for n in self.recorded]
        for name in self.recorded:
            lines.append(f"    out_{ident[name]} = out[{self.key[name]!r}]")
        stocks = [v for v in s.stocks]
        dt = ident[s.get("time step").name]
        lines += ["    n_steps = len(times) - 1",
                  "    j = 0",
                  "    next_save = save_steps[0]",
                  "    for k in range(n_steps + 1):"]
        body = ["if k:", "    time = times[k]"]
        for p in pipes:
            body.insert(0, f"{ident[p.name]} = _pipe_{ident[p.name]}[k % _order_{ident[p.name]}, _runs]")
        printer = EnginePrinter(dict(replacements), self.groups, fast_pow=True)
        for name in dynamic:
            expr = exprs[name]
            if s.variables[name].symbol in self.timed_vars:
                body.append(f"    {ident[name]} = _w_{self.key[name]}[k]")
                continue
            for sub in _shared_in(expr, shared, printer.replacements):
                temp = f"_s{len([t for t in printer.replacements.values() if t.startswith('_s')])}"
                body.append(f"    {temp} = {printer.doprint(sub)}")
                printer.replacements[sub] = temp
            body.append(f"    {ident[name]} = {printer.doprint(expr)}")
        body.append("if k == next_save:")
        for x in outputs:
            body.append(f"    out_{x}[j] = {x}")
        body += ["    j += 1", "    next_save = save_steps[j]", "if k == n_steps:", "    break"]
        for p in pipes:
            x = ident[p.name]
            body.append(f"_pipe_{x}[k % _order_{x}, _runs] = {printer.doprint(p.equation)}")
        for var in stocks:
            net = " + ".join(ident[f] for f in var.inflows) or "0"
            if var.outflows:
                net = f"{net} - " + " - ".join(ident[f] for f in var.outflows)
            x = ident[var.name]
            if var.non_negative:  # XMILE non-negative stock: clipped after each step, as PySD does
                body.append(f"{x} = maximum({x} + {dt} * ({net}), 0.0)")
            else:
                body.append(f"{x} = {x} + {dt} * ({net})")
        lines += ["        " + line for line in body]
        lines.append("    return {" + ", ".join(f"{self.key[v.name]!r}: {ident[v.name]}" for v in stocks) + "}")
        return "\n".join(lines) + "\n"


def _shared_in(expr, shared: set, done: dict) -> list:
    """Sub-expressions of ``expr`` used more than once in a step and not yet computed, innermost first."""
    found = []

    def walk(node):
        if node in done or node.is_Atom:
            return
        for arg in node.args:
            walk(arg)
        if isinstance(node, ExprCondPair):
            return
        if node in shared and node not in found and node is not expr:
            found.append(node)

    walk(expr)
    return found


def fast_pow(base, exponent):
    """``base ** exponent`` as exp(exponent * log(base)) where base > 0 (a third faster than
    numpy.power, within a few ulp); numpy.power elsewhere."""
    if np.ndim(base) == 0 and np.ndim(exponent) == 0:
        return np.power(base, exponent)
    result = np.exp(exponent * np.log(base))
    bad = ~(base > 0)
    if bad.any():
        result = np.where(bad, np.power(base, exponent), result)
    return result


def engine_namespace(structure: ModelStructure) -> dict:
    """The names generated code uses: numpy functions, ``fast_pow`` and the model's lookups."""
    namespace = {name: getattr(np, name) for name in (
        "where", "minimum", "maximum", "exp", "log", "sqrt", "abs", "sign", "floor", "mod", "sin", "cos",
        "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "log10", "log2",
        "power", "ceil", "logical_and", "logical_or", "logical_not", "less", "less_equal",
        "greater", "greater_equal", "equal", "not_equal", "broadcast_to", "rint", "empty", "arange", "nan",
        "heaviside", "select", "isnan")}
    namespace["fast_pow"] = fast_pow
    namespace["e"] = np.e
    namespace["pi"] = np.pi
    namespace.update(lookup_namespace(structure))
    return namespace


def generate(structure: ModelStructure, varying=frozenset(), recorded=()) -> GeneratedCode:
    """The engine source for ``structure`` with the ``varying`` constants (names) as arrays."""
    structure.require_simulable()
    gen = _Generator(structure, frozenset(varying), tuple(recorded))
    source = gen.generate()
    namespace = engine_namespace(structure)
    stocks = tuple(v.name for v in structure.stocks)
    return GeneratedCode(source, namespace, frozenset(varying), tuple(recorded), stocks)
