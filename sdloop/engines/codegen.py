"""Generate the source of one numpy function that integrates a model for N parameter sets.

``generate(structure, varying)`` returns a ``GeneratedCode``: readable Python source of a
function ``run_block(C, times, save_steps, out, n)`` and the namespace it needs (numpy
and the lookup tables). The semantics are those of ``sdloop.engines.euler`` (and so of PySD):
Euler steps, every variable evaluated at the initial time in dependency order, auxiliaries
and flows in evaluation order at each later step, stocks updated by ``dt * (inflows -
outflows)``, DELAY FIXED through a pipeline of TIME STEP slots, lookups through
``numpy.interp`` (which holds the end values, as Vensim does).

What the code generator does to be fast, without changing a number beyond rounding (the
plan of what is fixed, timed or hoisted is ``sdloop.engines.run_plan``'s; the printer is
``sdloop.engines.numpy_printer``'s, the names the code runs with ``sdloop.engines.numpy_namespace``'s):

- constants that are the same for every run of a block (``uniform``) are plain floats;
  only the ``varying`` ones are arrays of N values;
- variables computed from constants only are evaluated once, before the time loop;
- inside the loop, sub-expressions of constants only are hoisted before the loop, and
  sub-expressions of Time and uniform constants (policy windows, STEP, RAMP, dated
  shocks) are evaluated once over the whole time grid and indexed at each step;
- a sub-expression used more than once within a step is computed once;
- IF THEN ELSE / Piecewise become ``numpy.where``; MIN and MAX ``numpy.minimum`` /
  ``numpy.maximum``, nested ones included (``sdloop.engines.min_max`` reads them back from
  the Piecewise sympy made of them).

Every model variable is ``v_<identifier>`` in the code, so no Vensim name shadows a name the
code uses; subscripted variables arrive element by element from the structure, each an
array of N runs. ACTIVE INITIAL variables take their initial value while initial values are
computed, then every auxiliary is evaluated again at the initial time; XMILE non-negative
stocks are clipped at zero after each step, as PySD does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from sdloop.engines.min_max import recover_min_max
from sdloop.engines.numpy_namespace import engine_namespace
from sdloop.engines.numpy_printer import EnginePrinter
from sdloop.engines.run_plan import CONSTANT_KINDS, LOOP_KINDS, RunPlan
from sdloop.structure.build import ModelStructure


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


class _Generator(RunPlan):
    """Writes ``run_block`` from the plan."""

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
        memo: dict = {}  # MIN and MAX as numpy.minimum / maximum (sdloop.engines.min_max)
        exprs = {n: recover_min_max(s.variables[n].equation, memo) for n in dynamic}
        pipes = [v for v in s.variables.values() if v.kind == "delay_fixed"]
        piped = {p.name: recover_min_max(p.equation, memo) for p in pipes}
        for name, expr in exprs.items():
            if s.variables[name].symbol not in self.timed_vars:
                self._hoist(expr, const, timed, counts)
        for p in pipes:
            self._hoist(piped[p.name], const, timed, counts)
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
                grid_expr = recover_min_max(s.variables[name].equation, memo)
                lines.append(f"    _w_{sym.name} = broadcast_to({on_grid.doprint(grid_expr)}, "
                             "times.shape)")
            for expr, temp in timed.items():
                lines.append(f"    {temp} = broadcast_to({on_grid.doprint(expr)}, times.shape)")
            lines.append("    time = times[0]")
        replacements = {**const, **{expr: f"{temp}[k]" for expr, temp in timed.items()}}
        shared = _worth_sharing(e for e, c in counts.items() if c > 1)
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
            body.append(f"_pipe_{x}[k % _order_{x}, _runs] = {printer.doprint(piped[p.name])}")
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


def _worth_sharing(exprs) -> set:
    """The sub-expressions to compute once per step: ``1/x`` stands for ``x`` (``a/x`` prints as a
    division by ``x``, which a temporary holding ``1/x`` would not serve); a symbol is not one."""
    found = set()
    for expr in exprs:
        if isinstance(expr, sympy.Pow) and expr.exp == -1:
            expr = expr.base
        if not expr.is_Atom:
            found.add(expr)
    return found


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


def generate(structure: ModelStructure, varying=frozenset(), recorded=()) -> GeneratedCode:
    """The engine source for ``structure`` with the ``varying`` constants (names) as arrays."""
    structure.require_simulable()
    gen = _Generator(structure, frozenset(varying), tuple(recorded))
    source = gen.generate()
    namespace = engine_namespace(structure)
    stocks = tuple(v.name for v in structure.stocks)
    return GeneratedCode(source, namespace, frozenset(varying), tuple(recorded), stocks)
