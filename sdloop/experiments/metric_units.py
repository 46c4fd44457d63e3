"""A metric's unit when the project file does not declare one, read from its expression.

``at``, ``initial``, ``max``/``min``/``mean`` over a window, ``abs``, ``diff`` and ``under`` keep
the unit of what they take; ``first_time`` gives the model's time unit; a sum or difference of
terms in one unit keeps it. Anything else (a product, a ratio, an integral, a number) has no unit
known here, so a claim is only checked where both sides are known (``claims.Claim``).
"""

from __future__ import annotations

from sdloop.errors import SdloopError
from sdloop.lang import formula as f

KEEPS_UNIT = ("at", "initial", "max", "min", "mean", "abs", "diff", "under")


def inferred_unit(expr: str, sim) -> str | None:
    """The unit of metric expression ``expr`` on simulator ``sim``, or None when not known."""
    try:
        tree = f.Str(sim.resolve(expr))
    except SdloopError:
        try:
            tree = f.parse(expr)
        except f.FormulaError:
            return None
    return _unit(tree, sim)


def _unit(tree, sim) -> str | None:
    if isinstance(tree, (f.Str, f.Name)):
        try:
            name = sim.resolve(tree.value if isinstance(tree, f.Str) else tree.id)
        except SdloopError:
            return None
        return (getattr(sim, "units", {}) or {}).get(name) or None
    if isinstance(tree, f.Unary) and tree.op in "+-":
        return _unit(tree.operand, sim)
    if isinstance(tree, f.Binary) and tree.op in "+-":
        left, right = _unit(tree.left, sim), _unit(tree.right, sim)
        return left if left == right else None
    if isinstance(tree, f.Call):
        if tree.func == "first_time":
            return getattr(sim, "time_units", None) or None
        if tree.func in KEEPS_UNIT and tree.args:
            units = {_unit(a, sim) for a in tree.args}
            return units.pop() if len(units) == 1 else None
    return None


def metric_units(specs, sim) -> dict[str, str]:
    """Each metric's declared unit, else the one its expression gives (metrics without either left out)."""
    found = {s.name: s.unit or inferred_unit(s.expr, sim) for s in specs}
    return {name: unit for name, unit in found.items() if unit}
