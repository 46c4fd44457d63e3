"""Claims as data: statements comparing metrics across cases, scenarios and strategies.

A claim's ``holds`` is an expression (``sdloop.lang.formula``) that is true or false for each
draw. A metric is named and called with the runs it is taken from::

    peak_shortfall(strategy="trade_restriction_only") > peak_shortfall(strategy="industrial_then_trade")

Dimensions left out come from the claim's own ``case``/``scenario``/``strategy`` keys, or from
the project when it has one entry of that dimension. A dimension given as a list, or ``"*"``
for all (less ``exclude=``), gives a *set* of values, which ``min``, ``max``, ``mean``, ``all``
and ``any`` reduce; sets over the same runs combine element by element. ``defined(x)`` is
false where x is never reached or undefined. A never-reached metric (+inf) compares as later
or larger than any number; an undefined one (NaN) makes every comparison false, so a claim
resting on it does not hold. In one run each claim holds or not; in an ensemble it is
evaluated draw by draw on the same samples and reported as its share of draws.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from sdloop.experiments.evaluate import DIMS, PLURAL, Where
from sdloop.lang import formula as f

Key = tuple  # (case, scenario, strategy)


@dataclass(frozen=True)
class ClaimSpec:
    """One claim as a project file declares it."""

    name: str
    holds: str
    text: str = ""
    line: int | None = None
    defaults: tuple = ()  # ((dim, entry), ...) from the claim's case/scenario/strategy keys


class Missing(Exception):
    """A run a claim needs was not made (a subset of entries was selected)."""


@dataclass
class Val:
    """A claim value: one array of draws (``keys`` None) or a set of them keyed by run."""

    values: object  # np.ndarray, or dict key -> np.ndarray for a set
    flag: bool = False
    by: tuple = ()  # for a set: the dimensions (indices) its runs differ in

    def aligned(self) -> list:
        """A set's runs named by the dimensions they differ in (for element-wise combination)."""
        return [tuple(key[i] for i in self.by) for key in self.values]

    @property
    def is_set(self) -> bool:
        return isinstance(self.values, dict)


Evaluator = Callable[[Mapping[Key, Mapping[str, np.ndarray]], list], Val]


class Claim:
    """A checked claim: ``evaluate(table)`` gives (holds per draw, values compared)."""

    def __init__(self, spec: ClaimSpec, metrics: Sequence[str], entries: Mapping[str, Sequence[str]],
                 source: str | Path | None, units: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.units = {name: unit for name, unit in (units or {}).items() if unit}
        self.metrics = list(metrics)
        self.entries = {dim: list(entries.get(dim, ())) or [""] for dim in DIMS}
        self.where = Where(source, spec.line, f"claim {spec.name}")
        self.defaults = dict(spec.defaults)
        for dim, name in self.defaults.items():
            self._check_entry(dim, name)
        try:
            tree = f.parse(spec.holds)
        except f.FormulaError as exc:
            raise self.where.error(f"{exc.message}: {spec.holds.strip()}") from None
        self.run = self._node(tree)
        self._units_of(tree)
        dummy = {(c, sc, st): {m: np.ones(1) for m in self.metrics}
                 for c in self.entries["case"] for sc in self.entries["scenario"] for st in self.entries["strategy"]}
        with np.errstate(all="ignore"):
            probe = self.run(dummy, [])
        if probe.is_set or not probe.flag:
            raise self.where.error("'holds' must be true or false for each draw (a comparison; reduce a set "
                                   "with all() or any())")

    @property
    def name(self) -> str:
        return self.spec.name

    def evaluate(self, table: Mapping[Key, Mapping[str, np.ndarray]]) -> tuple[np.ndarray, list]:
        """(bool array over draws, [(label, array), ...] of the metric values compared).

        Raises Missing when a run the claim needs is not in ``table``."""
        seen: list = []
        with np.errstate(invalid="ignore"):
            result = self.run(table, seen)
        return np.asarray(result.values, dtype=bool), seen

    # checking --------------------------------------------------------------
    def _check_entry(self, dim: str, name: str) -> None:
        known = [e for e in self.entries[dim] if e]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else \
                (f"; known: {', '.join(known)}" if known else f"; the project has no {PLURAL[dim]}")
            raise self.where.error(f"unknown {dim} '{name}'{hint}")

    def _metric(self, name: str) -> str:
        if name in self.metrics:
            return name
        close = difflib.get_close_matches(name, self.metrics, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; metrics: {', '.join(self.metrics)}"
        raise self.where.error(f"unknown metric '{name}'{hint}")

    def _selection(self, call: f.Call | None) -> tuple[list[Key], tuple]:
        given = dict(call.kwargs) if call else {}
        unknown = [k for k in given if k not in (*DIMS, "exclude")]
        if unknown:
            raise self.where.error(f"{call.func}(): unknown selection '{unknown[0]}' "
                                   f"(use case=, scenario=, strategy=, exclude=)")
        exclude = set(self._names(given.get("exclude"), "exclude")) if "exclude" in given else set()
        choices, by = [], []
        for i, dim in enumerate(DIMS):
            if dim in given:
                names = self._names(given[dim], dim)
                if names == ["*"]:
                    names = [e for e in self.entries[dim] if e not in exclude]
                    by.append(i)
                else:
                    for name in names:
                        self._check_entry(dim, name)
                    if isinstance(given[dim], f.ListOf):
                        by.append(i)
            elif dim in self.defaults:
                names = [self.defaults[dim]]
            elif len(self.entries[dim]) == 1:
                names = self.entries[dim]
            else:
                what = call.func if call else "a metric"
                raise self.where.error(f"{what}: which {dim}? give {dim}=... (one of {', '.join(self.entries[dim])}) "
                                       f"or the claim's '{dim}' key")
            choices.append(names)
        keys = [(c, sc, st) for c in choices[0] for sc in choices[1] for st in choices[2]]
        return keys, tuple(by)

    def _names(self, node, what: str) -> list[str]:
        items = node.items if isinstance(node, f.ListOf) else (node,)
        names = []
        for item in items:
            if not isinstance(item, f.Str):
                raise self.where.error(f"{what}= takes a quoted name or a list of them")
            names.append(item.value)
        return names

    def _units_of(self, tree) -> tuple[str, str] | None:
        """(unit, metric) of a numeric part of the claim, None where unknown (a number, a product,
        a metric without a unit); comparing or adding metrics of different units is an error."""
        if isinstance(tree, (f.Name, f.Str)) or (isinstance(tree, f.Call) and tree.func not in _FUNCTIONS):
            name = tree.func if isinstance(tree, f.Call) else (tree.value if isinstance(tree, f.Str) else tree.id)
            return (self.units[name], name) if name in self.units else None
        if isinstance(tree, f.Unary):
            inner = self._units_of(tree.operand)
            return None if tree.op == "not" else inner
        if isinstance(tree, f.Binary):
            parts = [self._units_of(tree.left), self._units_of(tree.right)]
            return self._same(parts, "adds" if tree.op == "+" else "subtracts") if tree.op in "+-" else None
        if isinstance(tree, f.Compare):
            self._same([self._units_of(t) for t in tree.operands], "compares")
            return None
        if isinstance(tree, f.Logic):
            for t in tree.values:
                self._units_of(t)
            return None
        if isinstance(tree, f.Call):
            parts = [self._units_of(a) for a in tree.args]
            return self._same(parts, f"{tree.func}() takes") if tree.func in ("min", "max", "mean", "abs") else None
        return None

    def _same(self, parts: list, verb: str) -> tuple[str, str] | None:
        known = [p for p in parts if p is not None]
        for other in known[1:]:
            if not _same_units(known[0][0], other[0]):
                raise self.where.error(f"{verb} {known[0][1]} ({known[0][0]}) and {other[1]} ({other[0]}): metrics "
                                       "of different units (give both the same unit, or compare a ratio)")
        return known[0] if known else None

    # building evaluators ---------------------------------------------------
    def _node(self, tree) -> Evaluator:
        if isinstance(tree, f.Num):
            value = tree.value
            return lambda table, seen: Val(np.float64(value))
        if isinstance(tree, (f.Name, f.Str)) or (isinstance(tree, f.Call) and tree.func not in _FUNCTIONS):
            return self._reference(tree)
        if isinstance(tree, f.Call):
            return self._function(tree)
        if isinstance(tree, f.Unary):
            inner = self._node(tree.operand)
            if tree.op == "not":
                return lambda table, seen: _map(self._flag(inner(table, seen), "not"), np.logical_not, flag=True)
            sign = -1.0 if tree.op == "-" else 1.0
            return lambda table, seen: _map(inner(table, seen), lambda v: sign * v)
        if isinstance(tree, f.Binary):
            left, right = self._node(tree.left), self._node(tree.right)
            op = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}[tree.op]
            return lambda table, seen: _combine(left(table, seen), right(table, seen), op, self.where)
        if isinstance(tree, f.Compare):
            parts = [self._node(t) for t in tree.operands]
            ops = [_COMPARE[o] for o in tree.ops]

            def compare(table, seen):
                values = [p(table, seen) for p in parts]
                result = None
                for i, op in enumerate(ops):
                    part = _combine(values[i], values[i + 1], op, self.where, flag=True)
                    result = part if result is None else _combine(result, part, np.logical_and, self.where, flag=True)
                return result

            return compare
        if isinstance(tree, f.Logic):
            parts = [self._node(t) for t in tree.values]
            op = np.logical_and if tree.op == "and" else np.logical_or

            def logic(table, seen):
                result = self._flag(parts[0](table, seen), tree.op)
                for p in parts[1:]:
                    result = _combine(result, self._flag(p(table, seen), tree.op), op, self.where, flag=True)
                return result

            return logic
        raise self.where.error("a list is only allowed as a selection, e.g. strategy=[\"a\", \"b\"]")

    def _flag(self, value: Val, what: str) -> Val:
        if not value.flag:
            raise self.where.error(f"'{what}' needs true/false values (comparisons), not numbers")
        return value

    def _reference(self, tree) -> Evaluator:
        call = tree if isinstance(tree, f.Call) else None
        if call and call.args:
            raise self.where.error(f"{call.func}(): select runs with keywords, e.g. strategy=\"...\"")
        name = self._metric(call.func if call else (tree.value if isinstance(tree, f.Str) else tree.id))
        keys, by = self._selection(call)

        def reference(table, seen):
            values = {}
            for key in keys:
                if key not in table:
                    raise Missing(f"needs {'/'.join(k for k in key if k)}, which was not run")
                values[key] = np.asarray(table[key][name], dtype=float)
                seen.append((f"{name}[{'/'.join(k for k in key if k)}]", values[key]))
            return Val(values, by=by) if by else Val(values[keys[0]])

        return reference

    def _function(self, call: f.Call) -> Evaluator:
        if call.kwargs:
            raise self.where.error(f"{call.func}() takes no keywords")
        if not call.args:
            raise self.where.error(f"{call.func}() needs an argument")
        parts = [self._node(a) for a in call.args]
        reduce, flag = _FUNCTIONS[call.func]

        def function(table, seen):
            values = [p(table, seen) for p in parts]
            if call.func in ("defined", "abs"):
                if len(values) != 1:
                    raise self.where.error(f"{call.func}() takes one argument")
                return _map(values[0], reduce, flag=flag)
            arrays = []
            for v in values:
                arrays += list(v.values.values()) if v.is_set else [v.values]
            stacked = np.stack(np.broadcast_arrays(*[np.asarray(a) for a in arrays]))
            return Val(reduce(stacked), flag=flag)

        return function


def _same_units(a: str, b: str) -> bool:
    """Units as Vensim reads them (Year = years); free text (\"billion yuan (constant prices)\") as written."""
    from sdloop.structure.units import UnitParser, UnitSyntaxError

    try:
        return UnitParser().parse(a) == UnitParser().parse(b)
    except UnitSyntaxError:
        return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _map(value: Val, fn, *, flag: bool = False) -> Val:
    if value.is_set:
        return Val({k: fn(v) for k, v in value.values.items()}, flag, value.by)
    return Val(fn(value.values), flag)


def _combine(a: Val, b: Val, op, where: Where, *, flag: bool = False) -> Val:
    if a.is_set and b.is_set:
        if a.by != b.by or a.aligned() != b.aligned():
            raise where.error("two sets combine element by element only over the same entries of the same "
                              "dimension")
        return Val({k: op(x, y) for (k, x), y in zip(a.values.items(), b.values.values())}, flag, a.by)
    if a.is_set:
        return Val({k: op(v, b.values) for k, v in a.values.items()}, flag, a.by)
    if b.is_set:
        return Val({k: op(a.values, v) for k, v in b.values.items()}, flag, b.by)
    return Val(op(a.values, b.values), flag)


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}
# name -> (reduction over stacked values (axis 0) or element-wise function, gives a flag)
_FUNCTIONS = {
    "min": (lambda x: np.min(x, axis=0), False),
    "max": (lambda x: np.max(x, axis=0), False),
    "mean": (lambda x: np.mean(x, axis=0), False),
    "all": (lambda x: np.all(x.astype(bool), axis=0), True),
    "any": (lambda x: np.any(x.astype(bool), axis=0), True),
    "defined": (lambda x: np.isfinite(x), True),
    "abs": (np.abs, False),
}


def check_claims(specs: Sequence[ClaimSpec], metrics: Sequence[str], entries: Mapping[str, Sequence[str]],
                 source: str | Path | None, units: Mapping[str, str] | None = None) -> list[Claim]:
    """Every claim checked against the project's metrics (and their ``units``) and entries (before any run)."""
    return [Claim(spec, metrics, entries, source, units) for spec in specs]


def claims_table(claims: Sequence[Claim], table: Mapping[Key, Mapping[str, np.ndarray]], specs=None):
    """claims.csv of one run: claim, holds, text, values (the metric values compared).

    ``specs`` maps metric names to their MetricSpec (for number formats)."""
    import pandas as pd

    from sdloop.experiments.metrics import format_value

    rows = []
    for claim in claims:
        try:
            holds, seen = claim.evaluate(table)
        except Missing as exc:
            rows.append({"claim": claim.name, "holds": "", "text": claim.spec.text, "values": f"not evaluated: {exc}"})
            continue
        shown = "; ".join(f"{label}={format_value(float(v[0]), (specs or {}).get(label.split('[')[0]))}"
                          for label, v in dict(seen).items())
        rows.append({"claim": claim.name, "holds": bool(holds[0]), "text": claim.spec.text, "values": shown})
    return pd.DataFrame(rows, columns=["claim", "holds", "text", "values"])
