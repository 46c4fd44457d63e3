"""Partial derivatives of model equations, the polarity of each causal link.

sympy differentiates a ``Piecewise`` (MIN, MAX, VMIN, VMAX, IF THEN ELSE, ...) piece by piece
and then merges neighbouring pieces whose derivatives are equal, putting their conditions,
an ``Or`` of ``And``\\ s, into conjunctive normal form: exponential in the number of pieces
(the derivative of a 12-element VMAX, 12 pieces of 11 comparisons each, never finished).
Here a ``Piecewise`` is differentiated piece by piece too (its conditions are constant
between their boundaries, as in sympy), but neighbouring equal pieces are merged with a
plain ``Or``: linear in the size of the expression.
"""

from __future__ import annotations

import sympy


def link_derivative(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """d expr / d symbol; the derivatives sympy leaves unevaluated (of INTEGER's floor,
    MODULO's steps) and the Dirac deltas of SIGN are zero wherever they are defined."""
    derivative = _diff(expr, symbol)
    if derivative.has(sympy.Derivative, sympy.DiracDelta):
        derivative = derivative.replace(lambda e: isinstance(e, (sympy.Derivative, sympy.DiracDelta)),
                                        lambda e: sympy.Integer(0))
    return derivative


def _diff(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """The chain rule through every outermost ``Piecewise``, each standing in as a symbol."""
    pieces = _outermost_piecewise(expr)
    if not pieces:
        return sympy.diff(expr, symbol)
    stand_ins = {p: sympy.Dummy("piecewise") for p in pieces}
    flat = expr.xreplace(stand_ins)
    terms = [sympy.diff(flat, symbol)]
    for piecewise, dummy in stand_ins.items():
        outer = sympy.diff(flat, dummy)
        if outer != 0:
            terms.append(outer * _piecewise_derivative(piecewise, symbol))
    return sympy.Add(*terms).xreplace({d: p for p, d in stand_ins.items()})


def _piecewise_derivative(piecewise: sympy.Piecewise, symbol: sympy.Symbol) -> sympy.Expr:
    merged: list[list] = []
    for expr, cond in piecewise.args:
        d = _diff(expr, symbol)
        if merged and merged[-1][0] == d:
            merged[-1][1] = sympy.Or(merged[-1][1], cond)
        else:
            merged.append([d, cond])
    if len(merged) == 1 or merged[0][1] == sympy.true:
        return merged[0][0]
    return sympy.Piecewise(*(tuple(pair) for pair in merged))


def _outermost_piecewise(expr: sympy.Basic) -> list[sympy.Piecewise]:
    if isinstance(expr, sympy.Piecewise):
        return [expr]
    found: list[sympy.Piecewise] = []
    for arg in expr.args:
        found += [p for p in _outermost_piecewise(arg) if p not in found]
    return found
