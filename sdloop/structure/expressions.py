"""Translate PySD equation trees into sympy expressions.

Vensim's built-in functions become sympy objects whose derivatives are defined:
IF THEN ELSE, MIN, MAX, STEP, RAMP, PULSE, ZIDZ and XIDZ become ``Piecewise``;
lookups become ``LookupFunction`` subclasses that know their table and the sign of
their slope. Stateful functions (SMOOTH, DELAY, TREND, INITIAL) are not handled here:
the translator hands each one to a callback that writes it out as explicit stocks
(see ``sdloop.structure.build``) and returns the symbol that stands for its output.
"""

from __future__ import annotations

import itertools
import keyword
import re
from typing import Callable

import numpy as np
import sympy

from sdloop.lang.source import normalize
from sdloop.structure.piecewise_memo import piecewise
from sdloop.structure.placeholders import make_unsupported
from sdloop.structure.subscripts import SubscriptError, element_name

SMALL_VENSIM = 1e-6  # what PySD (and Vensim) treat as zero in ZIDZ, XIDZ, RAMP, PULSE
TIME = sympy.Symbol("time", real=True)
TIME_STEP_NAME = "time step"


def identifier(name: str) -> str:
    """A Python identifier for a Vensim name (used as the sympy symbol name), one per name.

    Spaces become ``_``, an element's brackets and commas ``__`` (``pop[a,b]`` ->
    ``pop__a__b``) and any other character ``___<hex>_`` (``"a.b"`` -> ``a___2e_b``), so
    two different Vensim names never share an identifier (names never hold ``__``).
    """
    norm = normalize(name)
    base, bracket, rest = norm.partition("[") if not name.strip().startswith('"') else (norm, "", "")
    parts = [base] + (rest.rstrip("]").split(",") if bracket else [])
    escaped = ["".join(c if c.isalnum() and c.isascii() else "_" if c == " " else f"___{ord(c):x}_"
                       for c in part) for part in parts]
    ident = "__".join(escaped)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident):
        ident = "v_" + ident
    return ident


def symbol_for(name: str) -> sympy.Symbol:
    """The sympy symbol of a variable; ``time`` is the shared TIME symbol."""
    if normalize(name) == "time":
        return TIME
    return sympy.Symbol(identifier(name), real=True)


def time_step_symbol() -> sympy.Symbol:
    return symbol_for(TIME_STEP_NAME)


class LookupSlope(sympy.Function):
    """Slope of a lookup table at ``x`` (0 outside the table, where ends are held)."""

    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    @classmethod
    def slopes(cls) -> np.ndarray:
        return np.diff(cls.ys) / np.diff(cls.xs) if len(cls.xs) > 1 else np.zeros(0)

    def _eval_is_nonnegative(self):
        return bool(np.all(self.slopes() >= 0)) or None

    def _eval_is_nonpositive(self):
        return bool(np.all(self.slopes() <= 0)) or None

    @classmethod
    def numeric(cls) -> Callable:
        xs, slopes = np.asarray(cls.xs, float), cls.slopes()

        def slope(x):
            x = np.asarray(x, float)
            idx = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, max(len(slopes) - 1, 0))
            inside = (x >= xs[0]) & (x < xs[-1])
            return np.where(inside, slopes[idx] if len(slopes) else 0.0, 0.0)

        return slope


class LookupFunction(sympy.Function):
    """A Vensim lookup table as a function of one argument (linear interpolation)."""

    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    vensim_name: str = ""
    slope_class: type = LookupSlope

    def fdiff(self, argindex=1):
        return self.slope_class(self.args[0])

    @classmethod
    def slope_sign(cls) -> str:
        """'+' if the table never falls, '-' if it never rises, 'depends' otherwise."""
        slopes = cls.slope_class.slopes()
        if np.all(slopes >= 0):
            return "+"
        if np.all(slopes <= 0):
            return "-"
        return "depends"

    @classmethod
    def numeric(cls) -> Callable:
        xs, ys = np.asarray(cls.xs, float), np.asarray(cls.ys, float)
        return lambda x: np.interp(x, xs, ys)


def make_lookup(name: str, xs, ys) -> type[LookupFunction]:
    """A new LookupFunction subclass for the table (xs, ys) named after ``name``."""
    ident = "lookup_" + identifier(name)
    xs = tuple(float(v) for v in xs)
    ys = tuple(float(v) for v in ys)
    slope = type(ident + "_slope", (LookupSlope,), {"xs": xs, "ys": ys})
    return type(ident, (LookupFunction,), {"xs": xs, "ys": ys, "vensim_name": name, "slope_class": slope})


def lambdify_modules(expr_set) -> list:
    """Modules for ``sympy.lambdify`` that know every lookup in the expressions."""
    namespace: dict[str, Callable] = {}
    for expr in expr_set:
        for fn in expr.atoms(sympy.Function):
            cls = type(fn)
            if issubclass(cls, LookupFunction):
                namespace[cls.__name__] = cls.numeric()
            elif issubclass(cls, LookupSlope):
                namespace[cls.__name__] = cls.numeric()
    return [namespace, "numpy"]


def number(value) -> sympy.Expr:
    """A sympy number: an Integer when the value is whole, else a Float."""
    value = float(value)
    return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value)


_piecewise = piecewise  # sympy.Piecewise, reusing earlier builds' results (piecewise_memo)


def _zidz(a, b):
    return _piecewise((0, sympy.Abs(b) < SMALL_VENSIM), (a / b, True))


def _xidz(a, b, x):
    return _piecewise((x, sympy.Abs(b) < SMALL_VENSIM), (a / b, True))


def _ramp(slope, start, finish=None):
    before = TIME + SMALL_VENSIM <= start
    if finish is None:
        return _piecewise((0, before), (slope * (TIME - start), True))
    return _piecewise((0, before), (slope * (sympy.Min(TIME, finish) - start), True))


def _step(height, when):
    return _piecewise((height, TIME + time_step_symbol() / 2 > when), (0, True))


def _pulse(start, width=None):
    width = time_step_symbol() / 2 if width is None else width
    on = sympy.And(TIME >= start - SMALL_VENSIM, TIME < start + width)
    return _piecewise((1, on), (0, True))


def _xpulse(start, magnitude):
    """XMILE's PULSE(magnitude, start) as PySD runs it: magnitude / TIME STEP for one step."""
    dt = time_step_symbol()
    on = sympy.And(TIME >= start - SMALL_VENSIM, TIME < start + dt / 2)
    return _piecewise((magnitude / dt, on), (0, True))


def _xpulse_train(start, interval, magnitude):
    """XMILE's PULSE(magnitude, start, interval); a single pulse when the interval is 0."""
    if interval.is_number and interval == 0:
        return _xpulse(start, magnitude)
    dt = time_step_symbol()
    on = sympy.And(TIME >= start, sympy.Mod(TIME - start + SMALL_VENSIM, interval) < dt / 2)
    train = _piecewise((magnitude / dt, on), (0, True))
    if interval.is_number:
        return train
    return _piecewise((_xpulse(start, magnitude), sympy.Eq(interval, 0)), (train, True))


def _get_time_value(relative_to, offset, measure):
    """GET TIME VALUE as PySD runs it: only the current time (0) in model time units (0)."""
    if relative_to.is_number and measure.is_number and relative_to == 0 and measure == 0:
        return TIME + offset
    raise TypeError("GET TIME VALUE other than the model's current time")


def _pulse_train(start, repeat, width, end):
    on = sympy.And(TIME >= start, TIME < end, sympy.Mod(TIME - start + SMALL_VENSIM, repeat) < width)
    return _piecewise((1, on), (0, True))


def _min(*args):
    return _piecewise(*[(a, sympy.And(*[a <= b for b in args if b is not a])) for a in args[:-1]], (args[-1], True))


def _max(*args):
    return _piecewise(*[(a, sympy.And(*[a >= b for b in args if b is not a])) for a in args[:-1]], (args[-1], True))


def _integer(x):
    return sympy.sign(x) * sympy.floor(sympy.Abs(x))


def _quantum(a, b):
    """PySD's QUANTUM: a when b < SMALL_VENSIM, else b * INTEGER(a / b)."""
    return _piecewise((a, b < SMALL_VENSIM), (b * _integer(a / b), True))


def _modulo(x, m):
    """PySD's (and Vensim's) MODULO: x - QUANTUM(x, m), with the sign of x."""
    return x - _quantum(x, m)


# Vensim functions (by PySD's reference name) as sympy builders.
FUNCTIONS: dict[str, Callable] = {
    "if_then_else": lambda c, a, b: _piecewise((a, c), (b, True)),
    "min": _min,
    "max": _max,
    "step": _step,
    "ramp": _ramp,
    "pulse": _pulse,
    "pulse_train": _pulse_train,
    "Xramp": _ramp,  # XMILE's RAMP(slope, start): no end
    "Xpulse": _xpulse,
    "Xpulse_train": _xpulse_train,
    "get_time_value": _get_time_value,
    "zidz": _zidz,
    "xidz": _xidz,
    "abs": sympy.Abs,
    "exp": sympy.exp,
    "ln": sympy.log,
    "log": lambda x, base: sympy.log(x, base),
    "sqrt": sympy.sqrt,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "power": lambda a, b: a**b,
    "integer": _integer,
    "modulo": _modulo,
    "quantum": _quantum,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "game": lambda x: x,
    "sign": sympy.sign,
}

_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "^": lambda a, b: a**b,
}
_LOGIC = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "=": sympy.Eq,
    "<>": sympy.Ne,
    ":AND:": sympy.And,
    ":OR:": sympy.Or,
}


def _negative_literal(node) -> bool:
    return isinstance(node, (int, float, np.integer, np.floating)) and node < 0


class Translator:
    """Turn one variable's PySD tree into sympy.

    ``stateful(node, owner, top)`` is called for SMOOTH/DELAY/TREND/INITIAL nodes with
    their arguments already translated; it returns the output symbol. ``lookups`` maps
    normalized lookup names to LookupFunction classes. Unsupported constructs are
    recorded in ``self.unsupported`` and kept as ``Unsupported`` placeholders.
    """

    def __init__(self, lookups: dict[str, type[LookupFunction]], stateful: Callable, ranges=None,
                 variables: frozenset[str] = frozenset(), macros: dict | None = None) -> None:
        self.lookups = lookups
        self.stateful = stateful
        self.unsupported: list[str] = []
        self.ranges = ranges
        self.variables = variables  # normalized names of the model's variables
        self.macros = macros or {}
        self.local: dict[str, sympy.Expr] = {}
        self.arrays: dict[str, set[str]] = {}  # array name -> its elements' names (normalized)
        self.context: dict = {}
        self.coords: tuple[str, ...] = ()
        self._top = None

    def translate(self, node, owner: str, context: dict | None = None, coords: tuple[str, ...] = ()) -> sympy.Expr:
        """``node`` in sympy; ``context`` binds the left-hand side's ranges to ``coords``."""
        self.context, self.coords, self._top = context or {}, coords, node
        return self._tr(node, owner, top=True)

    def _tr(self, node, owner: str, top: bool = False):
        from pysd.translators.structures import abstract_expressions as ax

        if isinstance(node, (int, float, np.integer, np.floating)):
            return number(node)
        if isinstance(node, ax.ReferenceStructure):
            return self._reference(node)
        if isinstance(node, ax.ArithmeticStructure):
            args = [self._tr(a, owner) for a in node.arguments]
            if node.operators and node.operators[0] == "^" and _negative_literal(node.arguments[0]):
                args[0] = -args[0]  # Vensim and PySD read -2^2 as -(2^2)
                rest = ax.ArithmeticStructure(node.operators, (args[0],) + tuple(node.arguments[1:]))
                return -self._tr(rest, owner)
            if node.operators == ["negative"]:
                return -args[0]
            if node.operators == ["positive"]:
                return args[0]
            result = args[0]
            for op, arg in zip(node.operators, args[1:]):
                result = _ARITH[op](result, arg)
            return result
        if isinstance(node, ax.LogicStructure):
            args = [self._tr(a, owner) for a in node.arguments]
            if node.operators == [":NOT:"]:
                return sympy.Not(args[0])
            # :AND: binds tighter than :OR:; comparisons are binary
            groups, current = [], [args[0]]
            for op, arg in zip(node.operators, args[1:]):
                if op == ":OR:":
                    groups.append(current)
                    current = [arg]
                elif op == ":AND:":
                    current.append(arg)
                else:
                    current[-1] = _LOGIC[op](current[-1], arg)
            groups.append(current)
            return sympy.Or(*[sympy.And(*g) for g in groups])
        if isinstance(node, ax.CallStructure):
            return self._call(node, owner)
        if isinstance(node, ax.InlineLookupsStructure):
            key = normalize(owner) + " (lookup)"
            if key not in self.lookups:
                self.lookups[key] = make_lookup(owner + " lookup", node.lookups.x, node.lookups.y)
            return self.lookups[key](self._tr(node.argument, owner))
        stateful_types = (
            ax.SmoothStructure, ax.SmoothNStructure, ax.DelayStructure, ax.DelayNStructure,
            ax.DelayFixedStructure, ax.TrendStructure, ax.InitialStructure, ax.SampleIfTrueStructure,
            ax.ForecastStructure,
        )
        if isinstance(node, sympy.Basic):
            return node  # an argument already translated (macro parameters)
        if isinstance(node, ax.GameStructure):
            return self._tr(node.expression, owner, top)  # a run nobody plays: the expression
        if isinstance(node, stateful_types):
            args = {
                field: self._tr(getattr(node, field), owner)
                for field in node.__dataclass_fields__
            }
            return self.stateful(type(node).__name__, args, owner, top)
        name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(node).__name__.replace("Structure", ""))
        fields = [getattr(node, f) for f in getattr(node, "__dataclass_fields__", ())]
        return self._opaque(name, [f for f in fields if isinstance(f, (ax.AbstractSyntax, int, float))], owner)

    def _reference(self, node) -> sympy.Expr:
        name = node.reference
        key = normalize(name)
        if key in self.local:
            return self.local[key]
        subs = list(node.subscripts.subscripts) if node.subscripts else []
        if not subs and key not in self.variables and self.ranges is not None:
            if self.ranges.is_range(name) or self.ranges.element(name) is not None:
                try:  # a range or element name used as a number: its position
                    return sympy.Integer(self.ranges.position(name, self.context, self.coords))
                except (SubscriptError, StopIteration, ValueError) as exc:
                    return self._unsupported(f"subscript {exc}", ())
        if not subs:
            if key in self.arrays and self.coords:  # XMILE writes an array's name without subscripts
                element = normalize(element_name(name, self.coords))
                if element in self.arrays[key]:
                    return symbol_for(element_name(name, self.coords))
                return self._unsupported(f"subscripts: '{name}' used without subscripts", ())
            return symbol_for(name)
        try:
            picked = tuple(self.ranges.pick(sub, self.context, self.coords) for sub in subs)
        except (SubscriptError, AttributeError) as exc:
            return self._unsupported(f"subscripts: {exc}", ())
        return symbol_for(element_name(name, picked))

    def _vector(self, fname: str, node, owner: str):
        """SUM, PROD, VMIN, VMAX over the ``dim!`` ranges in the argument."""
        from pysd.translators.structures import abstract_expressions as ax

        from sdloop.lang.source import _walk

        bangs = []
        for sub_node in _walk(node.arguments[0]):
            if isinstance(sub_node, ax.SubscriptsReferenceStructure):
                bangs += [s for s in sub_node.subscripts if s.endswith("!") and normalize(s) not in bangs]
        bangs = list(dict.fromkeys(normalize(b) for b in bangs))
        try:
            ranges = self.ranges.bang_ranges(bangs)
        except (SubscriptError, AttributeError) as exc:
            return self._unsupported(f"{fname}: {exc}", ())
        saved = self.context
        terms = []
        for combo in itertools.product(*(elements for _, elements in ranges)):
            self.context = {**saved, **{name: e for (name, _), e in zip(ranges, combo)}}
            terms.append(self._tr(node.arguments[0], owner))
        self.context = saved
        if not terms:
            return sympy.Integer(0)
        if fname in ("vmin", "vmax"):  # the first term <= (>=) every other: no MIN nested in a
            return (_min if fname == "vmin" else _max)(*terms)  # condition (2**n terms when chained)
        return (sympy.Add if fname == "sum" else sympy.Mul)(*terms)

    def _elmcount(self, node) -> sympy.Expr:
        """ELMCOUNT(range): the number of the range's elements."""
        name = getattr(node, "reference", None)
        if self.ranges is None or name is None or not self.ranges.is_range(name):
            return self._unsupported("ELMCOUNT of something other than a subscript range", ())
        return sympy.Integer(self.ranges.count(name))

    def _call(self, node, owner: str):
        from pysd.translators.structures import abstract_expressions as ax

        fname = node.function.reference
        if fname in ("sum", "prod", "vmin", "vmax") and len(node.arguments) == 1:
            return self._vector(fname, node, owner)
        if fname == "elmcount" and len(node.arguments) == 1:
            return self._elmcount(node.arguments[0])
        if normalize(fname) in self.macros:
            return self.macros[normalize(fname)](fname, [self._tr(a, owner) for a in node.arguments], owner)
        if fname == "active_initial" and len(node.arguments) == 2:
            args = {"expr": self._tr(node.arguments[0], owner), "initial": self._tr(node.arguments[1], owner)}
            return self.stateful("ActiveInitial", args, owner, node is self._top)
        subscripted = isinstance(node.function, ax.ReferenceStructure) and node.function.subscripts
        if fname not in FUNCTIONS and normalize(fname) not in self.lookups and not subscripted:
            return self._opaque(fname, node.arguments, owner)
        args = [self._tr(a, owner) for a in node.arguments]
        if subscripted:
            try:
                picked = tuple(self.ranges.pick(sub, self.context, self.coords)
                               for sub in node.function.subscripts.subscripts)
            except (SubscriptError, AttributeError) as exc:
                return self._unsupported(f"subscripts: {exc}", args)
            fname = element_name(fname, picked)
        lookup = self.lookups.get(normalize(fname))
        if lookup is not None:
            if len(args) != 1:
                return self._unsupported(fname, args)
            return lookup(args[0])
        builder = FUNCTIONS.get(fname)
        if builder is None:
            return self._unsupported(fname, args)
        try:
            return builder(*args)
        except TypeError:
            return self._unsupported(fname, args)

    def _opaque(self, construct: str, nodes, owner: str) -> sympy.Expr:
        """A placeholder for a construct sdloop does not write out, depending on its arguments
        and on every element of the arrays they name (ALLOCATE BY PRIORITY reads whole arrays)."""
        from pysd.translators.structures import abstract_expressions as ax

        from sdloop.lang.source import _walk

        args = []
        for node in nodes:
            before = len(self.unsupported)
            arg = self._tr(node, owner)
            lost = [c for c in self.unsupported[before:] if c.startswith("SUBSCRIPT")]
            if lost:  # e.g. ``dim!`` outside SUM: its elements are among the inputs below
                self.unsupported[before:] = [c for c in self.unsupported[before:] if c not in lost]
                arg = sympy.Integer(0)
            args.append(arg)
        known = set().union(*(a.free_symbols for a in args if isinstance(a, sympy.Basic)))
        extras: list[sympy.Symbol] = []
        for ref in (r for n in nodes for r in _walk(n) if isinstance(r, ax.ReferenceStructure)):
            key = normalize(ref.reference or "")
            names = sorted(self.arrays.get(key, ())) or ([ref.reference] if key in self.variables else [])
            for symbol in map(symbol_for, names):
                if symbol not in known and symbol not in extras:
                    extras.append(symbol)
        return self._unsupported(construct, args + extras)

    def _unsupported(self, construct: str, args) -> sympy.Expr:
        self.unsupported.append(construct.upper().replace("_", " "))
        return make_unsupported(construct)(*args) if args else make_unsupported(construct)(sympy.Integer(0))
