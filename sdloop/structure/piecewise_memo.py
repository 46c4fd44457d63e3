"""Reusing sympy's simplified ``Piecewise`` results between builds of a structure.

Piecewise's constructor simplifies its conditions (sympy's ``simplify_logic`` and friends): most
of the time a structure takes to build. Within ``piecewise_memo(known)``, ``piecewise(*pairs)``
returns the earlier result for the exact same arguments (keyed by ``srepr``); only arguments made
of sympy's own classes are kept (a lookup's class is made per model and its table could change
under the same name). ``sdloop.engines.parsed_models`` keeps the entries between processes.
"""

from __future__ import annotations

import contextlib

import sympy

_memo: tuple[dict, dict] | None = None


@contextlib.contextmanager
def piecewise_memo(known: dict[str, sympy.Expr]):
    """Within the block, ``Piecewise`` results are read from ``known``; yields the entries used or
    made in the block (what to keep for the next build)."""
    global _memo
    saved, used = _memo, {}
    _memo = (known, used)
    try:
        yield used
    finally:
        _memo = saved


def _sympy_only(expr) -> bool:
    return all(type(node).__module__.startswith("sympy.") for node in sympy.preorder_traversal(expr))


def piecewise(*pairs) -> sympy.Expr:
    """``sympy.Piecewise(*pairs)``, from the memo when one is active and has it."""
    if _memo is None:
        return sympy.Piecewise(*pairs)
    pairs = tuple((sympy.sympify(value), sympy.sympify(cond)) for value, cond in pairs)
    if not all(_sympy_only(value) and _sympy_only(cond) for value, cond in pairs):
        return sympy.Piecewise(*pairs)
    known, used = _memo
    key = sympy.srepr(pairs)
    found = used.get(key)
    if found is None:
        found = known.get(key)
        used[key] = found if found is not None else sympy.Piecewise(*pairs)
    return used[key]
