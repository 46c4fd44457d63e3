"""The numpy engine's printer: sympy expressions as numpy code with exact float literals."""

from __future__ import annotations

import sympy
from sympy.printing.numpy import NumPyPrinter

from sdloop.engines.printing import HoistingPrinter
from sdloop.structure.lookups import LookupFunction, LookupSlope
from sdloop.structure.symbols import TIME

# Every model variable is ``v_<symbol name>`` in the generated code, so that no Vensim name
# (``where``, ``times``, ``exp``, ``n``) can shadow a name the code itself uses.
VARIABLE_PREFIX = "v_"


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
