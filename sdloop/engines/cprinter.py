"""Print sympy equations as C expressions for the compiled engine's kernel.

Numbers are exact double literals; MIN and MAX propagate NaN as ``numpy.minimum`` and
``numpy.maximum`` do; IF THEN ELSE is a ternary (the compiler evaluates both arms and
blends them, so loops over runs stay vectorized); conditions chosen by conditions are
written as mask logic, which GCC vectorizes where it does not vectorize a select between
masks; lookups call the table functions ``lookup_source`` writes. Anything else raises
``CodegenError`` and the numpy engine runs the model instead.
"""

from __future__ import annotations

import re

import sympy
from sympy.printing.c import C99CodePrinter

from sdloop.engines.printing import HoistingPrinter
from sdloop.errors import ModelFileError
from sdloop.structure.lookups import LookupFunction, LookupSlope

FUNCTIONS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
             "asin": "asin", "acos": "acos", "atan": "atan", "floor": "floor"}


class CodegenError(ModelFileError):
    """A construct the C kernel cannot express (the numpy engine is used instead)."""


class CPrinter(HoistingPrinter, C99CodePrinter):
    """C99 text of an equation; ``symbols`` maps each symbol to the C text of its value."""

    min_name = "sd_min"
    max_name = "sd_max"

    def __init__(self, symbols: dict, replacements: dict | None = None, groups: dict | None = None,
                 reciprocals: bool = False) -> None:
        super().__init__(replacements, groups)
        self.symbols = symbols
        self.reciprocals = reciprocals

    def doprint(self, expr, assign_to=None):
        self._not_supported = set()
        text = super().doprint(expr, assign_to)
        if self._not_supported:
            construct = type(next(iter(self._not_supported))).__name__
            raise CodegenError(f"the C kernel cannot express {construct.upper()}")
        return text

    def emptyPrinter(self, expr):
        raise CodegenError(f"the C kernel cannot express {type(expr).__name__}")

    def _print_Symbol(self, expr):
        try:
            return self.symbols[expr]
        except KeyError:
            raise CodegenError(f"the C kernel has no value for '{expr.name}'") from None

    def _print_Float(self, expr):
        return double(float(expr))

    def _print_Integer(self, expr):
        return double(float(int(expr)))

    def _print_Rational(self, expr):
        return f"({double(float(expr.p))}/{double(float(expr.q))})"

    def _print_Exp1(self, expr):
        return double(float(sympy.E))

    def _print_Pi(self, expr):
        return double(float(sympy.pi))

    def _print_NaN(self, expr):
        return "NAN"

    def _print_BooleanTrue(self, expr):
        return "1"

    def _print_BooleanFalse(self, expr):
        return "0"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self._print(base)
        if exp == -1:
            return f"(1.0/({b}))"
        if exp == 2:
            return f"(({b})*({b}))"
        if exp == -2:
            return f"(1.0/(({b})*({b})))"
        if exp == sympy.Rational(1, 2):
            return f"sqrt({b})"
        if exp == -sympy.Rational(1, 2):
            return f"(1.0/sqrt({b}))"
        if exp.is_Integer and exp < 0:
            return f"(1.0/pow({b}, {self._print(-exp)}))"
        return f"pow({b}, {self._print(exp)})"

    def _print_Mul(self, expr):
        """A factor 1/c whose value is hoisted multiplies (sympy would print a division by c)."""
        if expr not in self.groups and self.reciprocals:
            hoisted = [a for a in expr.args if a.is_Pow and a.exp == -1 and a in self.replacements]
            if hoisted:
                rest = [a for a in expr.args if a not in hoisted]
                return "*".join([f"({self._print(sympy.Mul(*rest))})"] + [self._print(a) for a in hoisted])
        return super()._print_Mul(expr)

    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr):  # both sides evaluated: no branch in the loop over runs
        return "(" + " & ".join(f"({self._print(a)} != 0)" for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(f"({self._print(a)} != 0)" for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"(!{self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        pieces = list(expr.args)
        min_max = self._min_max(pieces)
        if min_max:
            return min_max
        boolean = any(is_condition(p.expr) for p in pieces)
        last = pieces[-1]
        if last.cond is sympy.true:
            text = self._print(last.expr)
            pieces = pieces[:-1]
        else:
            text = "0" if boolean else "NAN"
        for value, condition in reversed(pieces):
            c, v = self._print(condition), self._print(value)
            text = _mask_select(c, v, text) if boolean else f"({c} ? {v} : {text})"
        return text

    def _print_ITE(self, expr):
        return _mask_select(*(self._print(arg) for arg in expr.args))

    def _print_Abs(self, expr):
        return f"fabs({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        return f"sd_sign({self._print(expr.args[0])})"

    def _print_Mod(self, expr):
        a, b = (self._print(arg) for arg in expr.args)
        return f"sd_mod({a}, {b})"

    def _print_Function(self, expr):
        cls = type(expr)
        if issubclass(cls, (LookupFunction, LookupSlope)):
            return f"{lookup_name(cls)}({self._print(expr.args[0])})"
        name = FUNCTIONS.get(cls.__name__)
        if name is None or len(expr.args) != 1:
            raise CodegenError(f"the C kernel cannot express {cls.__name__.upper()}")
        return f"{name}({self._print(expr.args[0])})"

    _print_floor = _print_Function


def _mask_select(c: str, a: str, b: str) -> str:
    """``c ? a : b`` for conditions a and b, as mask logic."""
    return f"((({c}) != 0) & (({a}) != 0) | (!({c})) & (({b}) != 0))"


def is_condition(expr) -> bool:
    """True for a relation or logical expression (a Symbol is a sympy Boolean too, but a number here)."""
    return isinstance(expr, sympy.logic.boolalg.Boolean) and not isinstance(expr, sympy.Expr)


def double(value: float) -> str:
    """An exact C double literal."""
    if value != value:
        return "NAN"
    if value in (float("inf"), float("-inf")):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(value)
    if not any(c in text for c in ".eEn"):
        text += ".0"
    return f"({text})" if value < 0 else text


def lookup_name(cls) -> str:
    return "sd_" + re.sub(r"\W", "_", cls.__name__)


def lookup_source(cls) -> str:
    """A C function interpolating a lookup table as ``numpy.interp`` does (or its slope)."""
    xs, ys = [float(x) for x in cls.xs], [float(y) for y in cls.ys]
    slopes = [(ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) for j in range(len(xs) - 1)]
    text = [f"static inline __attribute__((always_inline)) double {lookup_name(cls)}(double x) {{"]
    if issubclass(cls, LookupSlope):  # 0 outside the table
        text.append("    double y = 0.0;")
        text += [f"    y = x >= {double(xs[j])} ? {double(slope)} : y;" for j, slope in enumerate(slopes)]
        text.append(f"    y = x >= {double(xs[-1])} ? 0.0 : y;")
    else:  # slope * (x - xs[j]) + ys[j] on [xs[j], xs[j+1]), end values held
        text.append(f"    double y = {double(ys[0])};")
        text += [f"    y = x >= {double(xs[j])} ? {double(slope)} * (x - {double(xs[j])}) + {double(ys[j])} : y;"
                 for j, slope in enumerate(slopes)]
        text.append(f"    y = x >= {double(xs[-1])} ? {double(ys[-1])} : y;")
    text += ["    return x != x ? x : y;", "}\n"]
    return "\n".join(text)
