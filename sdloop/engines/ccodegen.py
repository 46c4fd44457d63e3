"""Generate the C source of one kernel that integrates a model for N parameter sets.

``generate_c(structure)`` returns a ``CKernel``: readable C99 source and the layout the
caller needs (constants in kernel order, recordable variables). One kernel serves every
call on a model: any constant may be a number for all runs or an array of N values, and
any variables may be recorded, so the code is compiled once per model content.

The semantics are those of the numpy engine (``sdloop.engines.codegen``) and so of PySD:
Euler steps, every variable at the initial time in dependency order, flows and
auxiliaries in evaluation order at each step, stocks updated by ``dt * (inflows -
outflows)``, DELAY FIXED through a pipeline of TIME STEP slots, lookups interpolated as
``numpy.interp`` does (end values held). An ACTIVE INITIAL takes its initial value while
initial values are computed, then every step variable is evaluated again at the initial
time; an XMILE non-negative stock is clipped at zero after each step (its non-negative
flows are already MAX(flow, 0) in the structure).

Layout, for speed:

- runs are cut into tiles of ``TILE`` runs; the state of a tile (each constant, stock and
  hoisted value as an array of ``TILE`` lanes) stays in the core's cache while the tile is
  integrated over the whole time grid; tiles are shared out among OpenMP threads;
- one time step of a tile is one loop over its lanes (``#pragma omp simd``) holding every
  equation, so the compiler vectorizes it across runs and calls the vector math library
  for exp, log and pow; the steps that record values run a second copy of that loop
  (``record`` = 1) so that the other steps store nothing they do not need;
- sub-expressions of constants only are evaluated once per tile, before the time loop;
- sub-expressions of Time and constants only (policy windows, STEP, RAMP, dated shocks)
  are evaluated once per call over the whole time grid when none of their constants
  varies between runs, and per lane at each step otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sympy

from sdloop.engines.run_plan import CONSTANT_KINDS, LOOP_KINDS, RunPlan, hoist
from sdloop.engines.cprinter import CodegenError, CPrinter, lookup_source
from sdloop.engines.cruntime import DRIVER, PRELUDE
from sdloop.structure.build import ModelStructure
from sdloop.structure.lookups import LookupFunction, LookupSlope
from sdloop.structure.symbols import TIME

__all__ = ["CKernel", "CodegenError", "TILE", "generate_c"]

RECIPROCALS = True  # x / c as x * (1 / c) when 1 / c is hoisted (see the README)
TILE = 16  # runs integrated together by one thread (lanes of the simd loops)
MATH = ("exp", "log", "pow", "sin", "cos", "tan", "asin", "acos", "atan")  # vectorized through libmvec
DECLARATION = """\
int sd_run(int n, int n_steps, const double *times, double dt, const int *save_row,
           const double *cval, const double *const *carr, int n_rec, const int *rec_var,
           double *const *rec_out, unsigned char *finite, int threads, int *team);"""


@dataclass(frozen=True)
class CKernel:
    """The C source of a model's kernel and the order of its inputs and outputs.

    ``constants`` are the constant and control names in kernel order (the ``cval`` and
    ``carr`` arguments); ``recordable`` the names ``rec_var`` indexes; ``stocks`` the stock
    names. ``tile`` is the number of runs a thread integrates together.
    """

    source: str
    constants: tuple[str, ...]
    recordable: tuple[str, ...]
    stocks: tuple[str, ...]
    tile: int
    declarations: str = DECLARATION


class _CGenerator:
    """Plans which values are per run, per tile and per step, and prints the kernel."""

    def __init__(self, structure: ModelStructure, tile: int) -> None:
        self.s = structure
        self.tile = tile
        self.ident = {name: var.symbol.name for name, var in structure.variables.items()}
        if len(set(self.ident.values())) != len(self.ident):
            dup = Counter(self.ident.values()).most_common(1)[0][0]
            raise CodegenError(f"two variables share the C name '{dup}'", file=structure.path)
        self.init_order = RunPlan(structure, frozenset(), ()).init_order()
        self.constants = [v for v in structure.variables.values() if v.kind in CONSTANT_KINDS]
        self.const_index = {v.symbol: i for i, v in enumerate(self.constants)}
        self.groups: dict = {}
        self._classify()
        self._plan()

    def _classify(self) -> None:
        s = self.s
        static = set(self.const_index)
        for name in self.init_order:  # fixed for the run: constants only, or INITIAL
            var = s.variables[name]
            if var.kind == "initial" or (var.kind in LOOP_KINDS and TIME not in var.equation.free_symbols
                                         and var.equation.free_symbols <= static and var.initial is None):
                static.add(var.symbol)
        self.static = static
        timed: dict[sympy.Symbol, str] = {}  # loop variables of Time and constants only
        for name in s.order:
            var = s.variables[name]
            if (var.symbol not in static and var.equation.free_symbols <= set(self.const_index) | {TIME} | set(timed)
                    and var.initial is None):  # ACTIVE INITIAL: its initial value first, then per step
                timed[var.symbol] = name
        self.timed_vars = timed
        self.dynamic = [n for n in s.order if s.variables[n].symbol not in static | set(timed)]
        self.pipes = [v for v in s.variables.values() if v.kind == "delay_fixed"]
        self.stocks = list(s.stocks)
        self.statics = [s.variables[n] for n in self.init_order
                        if s.variables[n].symbol in static and s.variables[n].kind not in CONSTANT_KINDS]
        self.recordable = [v for v in s.variables.values() if v.kind != "lookup"]

    def _kind_of(self, expr) -> str:
        """'const' (fixed for the run), 'timed' (Time and constants only: on the grid when the
        constants are uniform) or 'dynamic'."""
        syms = expr.free_symbols
        if syms <= self.static:
            return "const"
        if syms <= set(self.const_index) | {TIME} | set(self.timed_vars):
            return "timed"
        return "dynamic"

    def _plan(self) -> None:
        """Hoisted values, the Time-and-constant entries (with the constants each depends on)
        and the C text of every symbol in each context."""
        s, ident = self.s, self.ident
        self.const_sub: dict = {}
        timed_sub: dict = {}
        for name in self.dynamic:
            hoist(s.variables[name].equation, self._kind_of, self.const_sub, timed_sub, self.groups)
        for p in self.pipes:
            hoist(p.equation, self._kind_of, self.const_sub, timed_sub, self.groups)
        self.entries = [(sym, s.variables[n].equation) for sym, n in self.timed_vars.items()]
        self.entries += [(expr, expr) for expr in timed_sub]
        entry = {key: j for j, (key, _) in enumerate(self.entries)}
        deps_of: dict = {}
        self.deps = []
        for key, expr in self.entries:
            deps = set()
            for sym in expr.free_symbols:
                deps |= {self.const_index[sym]} if sym in self.const_index else deps_of.get(sym, set())
            deps_of[key] = deps
            self.deps.append(deps)
        lane = {v.symbol: f"T->c_{ident[v.name]}[i]" for v in self.constants}
        lane.update({v.symbol: f"T->s_{ident[v.name]}[i]" for v in self.statics})
        lane.update({sym: f"T->t{entry[sym]}[i]" for sym in self.timed_vars})
        for v in self.stocks + self.pipes + [s.variables[n] for n in self.dynamic]:
            lane[v.symbol] = f"a_{ident[v.name]}"
        lane[TIME] = "t"
        self.lane = lane  # inside a loop over the runs of a tile
        self.init = {**lane, **{s.variables[n].symbol: f"a_{ident[n]}" for n in self.init_order
                                if s.variables[n].kind not in CONSTANT_KINDS}}
        self.grid = {v.symbol: f"cval[{i}]" for i, v in enumerate(self.constants)}  # over the time grid
        self.grid.update({sym: f"tab[{entry[sym]} * (size_t)n_times + k]" for sym in self.timed_vars})
        self.grid[TIME] = "times[k]"
        self.replaced = {expr: f"T->h{j}[i]" for expr, j in self.const_sub.items()}
        self.replaced.update({expr: f"T->t{entry[expr]}[i]" for expr in timed_sub})

    def _in_step(self, var) -> bool:
        """True for the variables that are locals of the step loop (stocks, pipes, dynamic)."""
        return self.lane.get(var.symbol, "").startswith("a_")

    # printing -----------------------------------------------------------------
    def generate(self) -> CKernel:
        vector_math = "\n".join(f"#pragma omp declare simd notinbranch\nextern double {f}(double"
                                f"{', double' if f == 'pow' else ''});" for f in MATH)
        parts = [PRELUDE.format(tile=self.tile, math=vector_math), self._lookups(),
                 f"/* {self.s.path.name}: {len(self.constants)} constants, {len(self.stocks)} stocks, "
                 f"{len(self.dynamic)} equations per step, {len(self.entries)} values of Time and constants "
                 f"only, {len(self.const_sub)} of constants only. */",
                 self._struct(), self._step(), self._start(), self._timed(), self._helpers(), DRIVER]
        return CKernel("\n".join(parts), tuple(v.name for v in self.constants),
                       tuple(v.name for v in self.recordable), tuple(v.name for v in self.stocks), self.tile)

    def _lookups(self) -> str:
        found = {}
        for var in self.s.variables.values():
            for expr in (var.equation, var.initial, var.delay):
                for fn in expr.atoms(sympy.Function) if expr is not None else ():
                    if issubclass(type(fn), (LookupFunction, LookupSlope)):
                        found[type(fn).__name__] = type(fn)
        return "\n".join(lookup_source(cls) for cls in found.values())

    def _struct(self) -> str:
        ident = self.ident
        lines = ["struct tile {"]
        lines += [f"    double c_{ident[v.name]}[W];  /* {v.name} */" for v in self.constants]
        lines += [f"    double s_{ident[v.name]}[W];  /* {v.name} */" for v in self.statics]
        lines += [f"    double x_{ident[v.name]}[W];  /* stock {v.name} */" for v in self.stocks]
        lines += [f"    double t{j}[W];" for j in range(len(self.entries))]
        lines += [f"    double h{j}[W];" for j in range(len(self.const_sub))]
        lines += [f"    double *pipe_{ident[p.name]}, in_{ident[p.name]}[W]; int order_{ident[p.name]}[W], "
                  f"slot_{ident[p.name]}[W];" for p in self.pipes]
        lines += [f"    double v_{ident[v.name]}[W];  /* {v.name}, at recorded steps */"
                  for v in self.recordable if self._in_step(v)]
        lines += ["    unsigned char bad[W];", "};\n", "static const double *lanes_of(const struct tile *T, int v) {",
                  "    switch (v) {"]
        for k, v in enumerate(self.recordable):
            array = f"T->v_{ident[v.name]}" if self._in_step(v) else self.lane[v.symbol][:-3]
            lines.append(f"    case {k}: return {array};")
        lines += ["    }", "    return 0;", "}\n"]
        return "\n".join(lines)

    def _step(self) -> str:
        s, ident, lane = self.s, self.ident, self.lane
        printer = CPrinter(lane, self.replaced, self.groups, reciprocals=RECIPROCALS)
        lines = ["static inline __attribute__((always_inline)) void step(struct tile *restrict T, double t, "
                 "double dt, int record) {", "    #pragma omp simd", "    for (int i = 0; i < W; i++) {"]
        lines += [f"        const double a_{ident[v.name]} = T->x_{ident[v.name]}[i];" for v in self.stocks]
        lines += [f"        const double a_{ident[p.name]} = T->pipe_{ident[p.name]}[T->slot_{ident[p.name]}[i] * W + i];"
                  for p in self.pipes]
        lines += [f"        const double a_{ident[n]} = {printer.doprint(s.variables[n].equation)};  /* {n} */"
                  for n in self.dynamic]
        lines.append("        if (record) {")
        lines += [f"            T->v_{ident[v.name]}[i] = a_{ident[v.name]};" for v in self.recordable if self._in_step(v)]
        lines.append("        }")
        for p in self.pipes:
            x = ident[p.name]
            lines.append(f"        T->pipe_{x}[T->slot_{x}[i] * W + i] = {printer.doprint(p.equation)};")
            lines.append(f"        T->slot_{x}[i] = T->slot_{x}[i] + 1 == T->order_{x}[i] ? 0 : T->slot_{x}[i] + 1;")
        for v in self.stocks:
            lines.append(f"        T->x_{ident[v.name]}[i] = {self._update(v, lane)};")
        lines += ["    }", "}\n"]
        return "\n".join(lines)

    def _start(self) -> str:
        """The initial time of a tile, as the numpy engine does it: every variable in dependency
        order (recorded as the values at step 0), the first step's stock updates and pipeline
        writes from those values (when ``update``), then the hoisted constants."""
        s, ident = self.s, self.ident
        printer = CPrinter(self.init)
        lines = ["static int start_tile(struct tile *restrict T, double t, double dt, int update) {",
                 "    #pragma omp simd", "    for (int i = 0; i < W; i++) {"]
        again = self._active_initial()
        for name in self.init_order:
            var = s.variables[name]
            if var.kind in CONSTANT_KINDS:
                continue
            expr = var.initial if var.kind in ("stock", "delay_fixed") or var.initial is not None else var.equation
            const = "" if name in again else "const "
            lines.append(f"        {const}double a_{ident[name]} = {printer.doprint(expr)};  /* {name} */")
            lines += self._keep(var)
        if again:  # ACTIVE INITIAL: the stocks started from the initial values; now the equations at the initial time
            for name in again:
                lines.append(f"        a_{ident[name]} = {printer.doprint(s.variables[name].equation)};  /* {name} */")
                lines += self._keep(s.variables[name])
        for p in self.pipes:
            x = ident[p.name]
            lines += [f"        T->order_{x}[i] = (int)rint(sd_max(({printer.doprint(p.delay)}) / dt, 1.0) + 1e-6);",
                      f"        T->in_{x}[i] = {printer.doprint(p.equation)};"]
        for v in self.stocks:
            lines.append(f"        T->x_{ident[v.name]}[i] = update ? {self._update(v, self.init)} : a_{ident[v.name]};")
        lines.append("    }")
        for p in self.pipes:  # slot k % order holds the value at step k; step 0's input goes to slot 0
            x = ident[p.name]
            lines += [f"    int most_{x} = 1;",
                      f"    for (int i = 0; i < W; i++) most_{x} = T->order_{x}[i] > most_{x} ? T->order_{x}[i] : most_{x};",
                      f"    T->pipe_{x} = malloc(sizeof(double) * (size_t)most_{x} * W);",
                      f"    if (!T->pipe_{x}) return -1;",
                      f"    for (int r = 0; r < most_{x}; r++) for (int i = 0; i < W; i++) "
                      f"T->pipe_{x}[r * W + i] = T->v_{x}[i];",
                      f"    for (int i = 0; i < W; i++) {{ T->pipe_{x}[i] = T->in_{x}[i]; "
                      f"T->slot_{x}[i] = T->order_{x}[i] > 1 ? 1 : 0; }}"]
        if self.const_sub:
            printer = CPrinter(self.lane)
            lines += ["    #pragma omp simd", "    for (int i = 0; i < W; i++) {"]
            lines += [f"        T->h{j}[i] = {printer.doprint(expr)};" for expr, j in self.const_sub.items()]
            lines.append("    }")
        lines += ["    (void)t; (void)dt; (void)update;", "    return 0;", "}\n",
                  "static void end_tile(struct tile *T) {"]
        lines += [f"    free(T->pipe_{ident[p.name]}); T->pipe_{ident[p.name]} = 0;" for p in self.pipes]
        lines += ["    (void)T;", "}\n"]
        return "\n".join(lines)

    def _active_initial(self) -> list[str]:
        """The step variables evaluated again at the initial time once every initial value is
        known (all of them in evaluation order, as the numpy engine does, when the model has an
        ACTIVE INITIAL; none otherwise)."""
        s = self.s
        if not any(v.initial is not None and v.kind in LOOP_KINDS for v in s.variables.values()):
            return []
        return [n for n in s.order if self._in_step(s.variables[n])]

    def _keep(self, var) -> list[str]:
        """The line storing a variable's value at the initial time where the tile keeps it."""
        x = self.ident[var.name]
        if var.symbol in self.static:
            return [f"        T->s_{x}[i] = a_{x};"]
        if var.symbol in self.timed_vars:
            return [f"        {self.lane[var.symbol]} = a_{x};"]
        if self._in_step(var):
            return [f"        T->v_{x}[i] = a_{x};"]
        return []

    def _update(self, stock, names: dict) -> str:
        """A stock's value after one step (``names``: the C text of each symbol): dt times its
        inflows minus its outflows added; an XMILE non-negative stock is then clipped at zero
        (NaN kept), as PySD's NonNegativeInteg does (non-negative flows are MAX(flow, 0) in their
        equations already)."""
        flow = {f: names[self.s.variables[f].symbol] for f in stock.inflows + stock.outflows}
        net = " + ".join(flow[f] for f in stock.inflows) or "0.0"
        if stock.outflows:
            net = f"{net} - " + " - ".join(flow[f] for f in stock.outflows)
        text = f"{names[stock.symbol]} + dt * ({net})"
        return f"sd_max({text}, 0.0)" if stock.non_negative else text

    def _timed(self) -> str:
        """Values of Time and constants: once over the grid (uniform) or per lane at each step.
        The entries are the largest such sub-expressions, so none holds another."""
        on_grid, per_lane = CPrinter(self.grid), CPrinter(self.lane)
        lines = [f"#define N_TIMED {len(self.entries)}",
                 "static void timed_uniform(const double *const *carr, unsigned char *uniform) {"]
        for j, deps in enumerate(self.deps):
            lines.append(f"    uniform[{j}] = {' && '.join(f'!carr[{c}]' for c in sorted(deps)) or '1'};")
        lines += ["    (void)carr; (void)uniform;", "}\n",
                  "static void timed_grid(const double *cval, const double *times, int n_times, "
                  "const unsigned char *uniform, double *tab) {"]
        for j, (_, expr) in enumerate(self.entries):
            lines += [f"    if (uniform[{j}]) {{", "        #pragma omp simd",
                      f"        for (int k = 0; k < n_times; k++) tab[{j} * (size_t)n_times + k] = "
                      f"{on_grid.doprint(expr)};", "    }"]
        lines += ["    (void)cval; (void)times; (void)n_times; (void)uniform; (void)tab;", "}\n",
                  "static void timed_step(struct tile *restrict T, double t, int k, int n_times, "
                  "const unsigned char *uniform, const double *tab) {"]
        for j, (_, expr) in enumerate(self.entries):
            lines += [f"    if (uniform[{j}]) {{ const double v = tab[{j} * (size_t)n_times + k]; "
                      f"for (int i = 0; i < W; i++) T->t{j}[i] = v; }}", "    else {", "        #pragma omp simd",
                      f"        for (int i = 0; i < W; i++) T->t{j}[i] = {per_lane.doprint(expr)};", "    }"]
        lines += ["    (void)T; (void)t; (void)k; (void)n_times; (void)uniform; (void)tab;", "}\n"]
        return "\n".join(lines)

    def _helpers(self) -> str:
        ident = self.ident
        lines = ["static void load_constants(struct tile *restrict T, const double *cval, const double *const *carr, "
                 "long start, long n) {"]
        lines += [f"    load(T->c_{ident[v.name]}, cval[{k}], carr[{k}], start, n);" for k, v in enumerate(self.constants)]
        lines += ["}\n", "static void finite_stocks(struct tile *restrict T) {", "    for (int i = 0; i < W; i++) {"]
        lines += [f"        T->bad[i] |= !isfinite(T->x_{ident[v.name]}[i]);" for v in self.stocks]
        lines += ["    }", "}\n"]
        return "\n".join(lines)


def generate_c(structure: ModelStructure, tile: int = TILE) -> CKernel:
    """The C kernel of ``structure`` (CodegenError when a construct has no C form)."""
    structure.require_simulable()
    return _CGenerator(structure, tile).generate()
