"""Translate PySD equation trees into sympy expressions.

Vensim's built-in functions become sympy objects whose derivatives are defined:
IF THEN ELSE, MIN, MAX, STEP, RAMP, PULSE, ZIDZ and XIDZ become ``Piecewise``;
lookups become ``LookupFunction`` subclasses that know their table and the sign of
their slope. Stateful functions (SMOOTH, DELAY, TREND, INITIAL) are not handled here:
the translator hands each one to a callback that writes it out as explicit stocks
(see ``sdloop.structure.build``) and returns the symbol that stands for its output.
"""

from __future__ import annotations

import keyword
import re
from typing import Callable

import numpy as np
import sympy

from sdloop.lang.source import normalize

SMALL_VENSIM = 1e-6  # what PySD (and Vensim) treat as zero in ZIDZ, XIDZ, RAMP, PULSE
TIME = sympy.Symbol("time", real=True)
TIME_STEP_NAME = "time step"


def identifier(name: str) -> str:
    """A Python identifier for a Vensim name (used as the sympy symbol name)."""
    ident = re.sub(r"\W", "_", normalize(name).replace(" ", "_"))
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


class Unsupported(sympy.Function):
    """Placeholder for a construct sdloop cannot write out; keeps its dependencies."""

    construct: str = ""


def make_unsupported(construct: str) -> type[Unsupported]:
    ident = "unsupported_" + re.sub(r"\W", "_", construct.lower())
    return type(ident, (Unsupported,), {"construct": construct.upper().replace("_", " ")})


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


def _piecewise(*pairs) -> sympy.Expr:
    return sympy.Piecewise(*pairs)


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


def _pulse_train(start, repeat, width, end):
    on = sympy.And(TIME >= start, TIME < end, sympy.Mod(TIME - start + SMALL_VENSIM, repeat) < width)
    return _piecewise((1, on), (0, True))


def _min(*args):
    return _piecewise(*[(a, sympy.And(*[a <= b for b in args if b is not a])) for a in args[:-1]], (args[-1], True))


def _max(*args):
    return _piecewise(*[(a, sympy.And(*[a >= b for b in args if b is not a])) for a in args[:-1]], (args[-1], True))


def _integer(x):
    return sympy.sign(x) * sympy.floor(sympy.Abs(x))


# Vensim functions (by PySD's reference name) as sympy builders.
FUNCTIONS: dict[str, Callable] = {
    "if_then_else": lambda c, a, b: _piecewise((a, c), (b, True)),
    "min": _min,
    "max": _max,
    "step": _step,
    "ramp": _ramp,
    "pulse": _pulse,
    "pulse_train": _pulse_train,
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
    "modulo": sympy.Mod,
    "active_initial": lambda expr, init: expr,
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


class Translator:
    """Turn one variable's PySD tree into sympy.

    ``stateful(node, owner, top)`` is called for SMOOTH/DELAY/TREND/INITIAL nodes with
    their arguments already translated; it returns the output symbol. ``lookups`` maps
    normalized lookup names to LookupFunction classes. Unsupported constructs are
    recorded in ``self.unsupported`` and kept as ``Unsupported`` placeholders.
    """

    def __init__(self, lookups: dict[str, type[LookupFunction]], stateful: Callable) -> None:
        self.lookups = lookups
        self.stateful = stateful
        self.unsupported: list[str] = []

    def translate(self, node, owner: str) -> sympy.Expr:
        return self._tr(node, owner, top=True)

    def _tr(self, node, owner: str, top: bool = False):
        from pysd.translators.structures import abstract_expressions as ax

        if isinstance(node, (int, float, np.integer, np.floating)):
            return number(node)
        if isinstance(node, ax.ReferenceStructure):
            if node.subscripts:
                return self._unsupported("subscripts", ())
            return symbol_for(node.reference)
        if isinstance(node, ax.ArithmeticStructure):
            args = [self._tr(a, owner) for a in node.arguments]
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
            ax.DelayFixedStructure, ax.TrendStructure, ax.InitialStructure,
        )
        if isinstance(node, stateful_types):
            args = {
                field: self._tr(getattr(node, field), owner)
                for field in node.__dataclass_fields__
            }
            return self.stateful(type(node).__name__, args, owner, top)
        name = type(node).__name__.replace("Structure", "")
        return self._unsupported(re.sub(r"(?<!^)(?=[A-Z])", " ", name), ())

    def _call(self, node, owner: str):
        fname = node.function.reference
        args = [self._tr(a, owner) for a in node.arguments]
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

    def _unsupported(self, construct: str, args) -> sympy.Expr:
        self.unsupported.append(construct.upper().replace("_", " "))
        return make_unsupported(construct)(*args) if args else make_unsupported(construct)(sympy.Integer(0))
