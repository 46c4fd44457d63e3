"""Printing shared by the numpy and C code generators: hoisted sub-expressions by name,
fixed factors grouped, MIN and MAX."""

from __future__ import annotations

import sympy


class HoistingPrinter:
    """Printing shared by the numpy and C code generators (a mixin before the sympy printer).

    ``replacements`` maps sub-expressions to the names of variables holding their value;
    ``groups`` maps a Mul or Add to (its fixed factors or terms, the rest), printed as the
    fixed part (one hoisted value) combined with the rest. ``min_name``/``max_name`` are
    the functions MIN and MAX print as.
    """

    min_name = "minimum"
    max_name = "maximum"

    def __init__(self, replacements: dict | None = None, groups: dict | None = None, **settings) -> None:
        super().__init__(**settings)
        self.replacements = replacements or {}
        self.groups = groups or {}

    def _print(self, expr, **kwargs):
        name = self.replacements.get(expr) if isinstance(expr, sympy.Basic) else None
        if name is not None:
            return name
        return super()._print(expr, **kwargs)

    def _print_Mul(self, expr):
        if expr in self.groups:
            fixed, rest = self.groups[expr]
            return f"({self._print(fixed)})*({self._print(sympy.Mul(*rest))})"
        return super()._print_Mul(expr)

    def _print_Add(self, expr, order=None):
        if expr in self.groups:
            fixed, rest = self.groups[expr]
            return f"({self._print(fixed)} + {self._print(sympy.Add(*rest))})"
        return super()._print_Add(expr, order)

    def _print_Min(self, expr):
        return self._nested(self.min_name, expr.args)

    def _print_Max(self, expr):
        return self._nested(self.max_name, expr.args)

    def _nested(self, fn: str, args) -> str:
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{fn}({text}, {self._print(arg)})"
        return text

    def _min_max(self, pieces) -> str | None:
        """MIN or MAX for Piecewise((a, a <= b), (b, True)) and its mirror, else None."""
        (a, cond), last = pieces[0], pieces[-1]
        if len(pieces) == 2 and last.cond is sympy.true:
            b = last.expr
            if _is_min(a, b, cond):
                return f"{self.min_name}({self._print(a)}, {self._print(b)})"
            if _is_min(b, a, cond):
                return f"{self.max_name}({self._print(a)}, {self._print(b)})"
        return None


def _is_min(a, b, cond) -> bool:
    """True when ``cond`` says ``a <= b`` (so Piecewise((a, cond), (b, True)) is min(a, b))."""
    if isinstance(cond, sympy.LessThan):
        return cond.lhs == a and cond.rhs == b
    if isinstance(cond, sympy.GreaterThan):
        return cond.lhs == b and cond.rhs == a
    return False
