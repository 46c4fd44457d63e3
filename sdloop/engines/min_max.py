"""MIN and MAX recovered from the ``Piecewise`` the structure layer builds for them.

The structure writes ``MAX(a, b)`` as ``Piecewise((a, a >= b), (b, True))`` (so that sympy can
differentiate it), and sympy rewrites the condition when ``a`` or ``b`` is itself a Piecewise:
``MAX(0, MIN(1, x) - MAX(0, MIN(1, y)))`` arrives as a chain of a dozen nested conditions,
which the numpy engine would evaluate as some thirty array operations where four suffice.

``recover_min_max(expr)`` returns ``expr`` with every Piecewise the structure built for a MIN
or MAX (``sdloop.structure.vensim_functions.MIN_MAX``) replaced by an unevaluated
``sympy.Min`` / ``sympy.Max`` of its arguments, which the engine prints as ``numpy.minimum`` /
``numpy.maximum`` (PySD's own MIN and MAX: the same value wherever no argument is NaN, and
NaN where one is, as in PySD). sympy also pushes a function into a MIN or MAX:
``1/MAX(x, y)`` arrives as ``Piecewise((1/x, x >= y), (1/y, True))``; a two-piece Piecewise
``(g(x), x >= y), (g(y), True)`` (g(y) being g(x) with y put for x) becomes ``g(Max(x, y))``,
and the same with ``<=`` and Min. Every other node is kept as it is.
"""

from __future__ import annotations

import sympy
from sympy.functions.elementary.piecewise import Piecewise

from sdloop.structure.vensim_functions import MIN_MAX


def _function_of_min_max(node: Piecewise):
    """``g(Max(x, y))`` (or Min) for Piecewise((g(x), x >= y), (g(y), True)) (or x <= y), else None."""
    if len(node.args) != 2 or node.args[1].cond is not sympy.true:
        return None
    (first, cond), (second, _) = node.args
    if not isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan, sympy.LessThan, sympy.StrictLessThan)):
        return None
    larger, smaller = (cond.lhs, cond.rhs) if isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan)) \
        else (cond.rhs, cond.lhs)
    # the first piece is taken where `larger` is the larger: it is g(MAX) or g(MIN) of the two
    for x, y, func in ((larger, smaller, sympy.Max), (smaller, larger, sympy.Min)):
        if first.has(x) and first.xreplace({x: y}) == second:
            return first.xreplace({x: func(x, y, evaluate=False)})
    return None


def _rebuilt(node, args):
    try:
        return node.func(*args, evaluate=False)
    except TypeError:  # a class without the keyword (ExprCondPair, a lookup)
        return node.func(*args)


def recover_min_max(expr, memo: dict | None = None):
    """``expr`` with each Piecewise built for a MIN or MAX as an unevaluated Min / Max
    (``memo``: results by node, shared between calls on the same model)."""
    memo = {} if memo is None else memo

    def walk(node):
        if not isinstance(node, sympy.Basic) or node.is_Atom:
            return node
        found = memo.get(node)
        if found is not None:
            return found
        origin = MIN_MAX.get(node) if isinstance(node, Piecewise) else None
        if origin is not None and not any(arg == node for arg in origin[1]):
            func, args = origin
            result = func(*[walk(arg) for arg in args], evaluate=False)
        elif isinstance(node, Piecewise) and (pushed := _function_of_min_max(node)) is not None:
            result = walk(pushed)
        else:
            args = [walk(arg) for arg in node.args]
            changed = any(new is not old for new, old in zip(args, node.args))
            result = _rebuilt(node, args) if changed else node
        memo[node] = result
        return result

    return walk(expr)
