"""Expressions over a model's variables, checked against the model and evaluated on N runs at once.

An expression (``sdloop.lang.formula``) names model variables in quotes (``"Market Size"``) or
with underscores for spaces (``Market_Size``); they resolve with Vensim's rules, and an unknown
name fails with the closest names the model has. ``horizon`` is the project's horizon. Functions:

- ``at(x, t)``: x at the last saved time at or before t (default ``horizon``)
- ``initial(x)``: x at the first saved time
- ``first_time(condition, start=, end=)``: first saved time in the window at which the
  condition holds; *never* (+inf, written empty) if it does not
- ``max(x)``, ``min(x)``, ``mean(x)``, ``integral(x)`` over the window ``start=`` .. ``end=``
  (default: the first saved time .. ``horizon``; ``integral`` is the trapezoid rule over the
  saved times); ``max(a, b, ...)`` and ``min(a, b, ...)`` of several values element-wise
- ``under(e, scenario=..., strategy=..., case=...)``: e in the run that differs only in
  those (same samples, same time); ``diff(e, ...)`` is ``e - under(e, ...)``
- ``ratio(a, b)``: a / b where b > 0, *undefined* (NaN) otherwise: nothing gained is no win
- ``abs(x)``, arithmetic ``+ - * / **`` and comparisons ``< <= > >= == !=`` with ``and``,
  ``or``, ``not`` in conditions

Every value is an array: a series has shape (saved times, N), a per-run value shape (N,).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from sdloop.errors import OverrideError, SdloopError
from sdloop.lang import formula as f

NUMBER, VALUE, SERIES, CONDITION, FLAG = "number", "value", "series", "condition", "flag"
DIMS = ("case", "scenario", "strategy")
PLURAL = {"case": "cases", "scenario": "scenarios", "strategy": "strategies"}
EPS = 1e-9
WINDOW_FUNCTIONS = ("max", "min", "mean", "integral")


class MetricError(SdloopError):
    """A metric, claim or figure expression that does not fit the model or the project."""


@dataclass(frozen=True)
class Where:
    """Where an expression stands: the file, its line and what it defines (for errors)."""

    file: str | Path | None
    line: int | None
    what: str

    def error(self, message: str) -> MetricError:
        return MetricError(message, file=self.file, line=self.line, variable=self.what)


@dataclass
class Node:
    """A checked expression: its kind and how to evaluate it on a view of runs."""

    kind: str
    run: Callable
    number: float | None = None  # the value of a NUMBER node


@dataclass(frozen=True)
class Export:
    """An expression a metric needs from another run: ``under(expr, **target)``."""

    id: int
    node: Node = field(compare=False)
    target: tuple  # ((dim, name), ...)


class RunView:
    """N runs of one case, scenario and strategy: recorded series and their parameters."""

    def __init__(self, times: np.ndarray, series: Callable[[str], np.ndarray],
                 params: Mapping[str, object], defaults: Mapping[str, float], n: int) -> None:
        self.times, self._series, self.params, self.defaults, self.n = times, series, params, defaults, n

    def series(self, name: str) -> np.ndarray:
        return np.asarray(self._series(name), dtype=float)

    def param(self, name: str) -> np.ndarray:
        value = self.params.get(name, self.defaults[name])
        return np.broadcast_to(np.asarray(value, dtype=float), (self.n,))

    @classmethod
    def of_frame(cls, frame, params: Mapping[str, object], defaults: Mapping[str, float]) -> "RunView":
        """One run (a DataFrame indexed by time) as a view of N = 1."""
        return cls(frame.index.to_numpy(dtype=float), lambda name: frame[name].to_numpy(dtype=float)[:, None],
                   params, defaults, 1)


class Compiler:
    """Checks expression trees against a simulator (names, kinds) and builds evaluators."""

    def __init__(self, sim, *, horizon: float, entries: Mapping[str, Sequence[str]] | None = None,
                 allow_under: bool = True, final_time: float | None = None) -> None:
        self.sim, self.horizon, self.entries = sim, float(horizon), dict(entries or {})
        self.allow_under = allow_under
        control = getattr(sim, "control", None) or {}
        end = final_time if final_time is not None else control.get("final time")
        # the times a run covers: a time outside them (at(x, 2050) in a run to 2040) is refused
        self.span = (float(control["initial time"]), float(end)) \
            if control.get("initial time") is not None and end is not None else None
        self.columns: dict[str, None] = {}
        self.constants: dict[str, None] = {}
        self.exports: list[Export] = []

    # entry point -----------------------------------------------------------
    def compile(self, text: str, where: Where, *, want: tuple[str, ...] = (VALUE,)) -> Node:
        """Check ``text`` (an expression, or simply a variable's name) and build its evaluator."""
        try:
            tree = f.Str(self.sim.resolve(text))  # a plain name needs no quotes
        except OverrideError:
            tree = None
        try:
            tree = tree or f.parse(text)
        except f.FormulaError as exc:
            if re.fullmatch(r"[A-Za-z][\w &']*", text.strip()):  # a misspelt plain name: say so
                try:
                    self.sim.resolve(text.strip())
                except OverrideError as missing:
                    raise where.error(f"{text.strip()!r}: {missing.message}") from None
            at = f" (at character {exc.offset})" if exc.offset else ""
            raise where.error(f"{exc.message}{at}: {text.strip()}") from None
        node = self.node(tree, where)
        if node.kind == NUMBER and VALUE in want:
            value = node.number
            node = Node(VALUE, lambda view, refs: np.full(view.n, value))
        if node.kind not in want:
            raise where.error(f"the expression gives a {_describe(node.kind)}, expected a {_describe(want[0])}")
        return node

    # nodes -----------------------------------------------------------------
    def node(self, tree, where: Where) -> Node:
        if isinstance(tree, f.Num):
            return _number(tree.value)
        if isinstance(tree, (f.Str, f.Name)):
            return self.name(tree, where)
        if isinstance(tree, f.Unary):
            return self.unary(tree, where)
        if isinstance(tree, f.Binary):
            return self.binary(tree, where)
        if isinstance(tree, f.Compare):
            return self.compare(tree, where)
        if isinstance(tree, f.Logic):
            return self.logic(tree, where)
        if isinstance(tree, f.Call):
            return self.call(tree, where)
        raise where.error("a list is only allowed as a keyword value")

    def name(self, tree, where: Where) -> Node:
        text = tree.value if isinstance(tree, f.Str) else tree.id
        if isinstance(tree, f.Name) and text == "horizon":
            return _number(self.horizon)
        if text.strip().lower() == "time":
            return Node(SERIES, lambda view, refs: np.broadcast_to(view.times[:, None], (len(view.times), view.n)))
        candidate = text if isinstance(tree, f.Str) else text.replace("_", " ")
        try:
            resolved = self.sim.resolve(candidate)
        except OverrideError as exc:
            raise where.error(f"{candidate!r}: {exc.message}") from None
        if resolved in self.sim.defaults:
            self.constants[resolved] = None
            return Node(VALUE, lambda view, refs: view.param(resolved))
        self.columns[resolved] = None
        return Node(SERIES, lambda view, refs: view.series(resolved))

    def unary(self, tree: f.Unary, where: Where) -> Node:
        inner = self.node(tree.operand, where)
        if tree.op == "not":
            _require(inner, (CONDITION, FLAG), where, "'not'")
            return Node(inner.kind, lambda view, refs: ~inner.run(view, refs))
        _require(inner, (NUMBER, VALUE, SERIES), where, f"'{tree.op}'")
        if inner.kind == NUMBER:
            return _number(-inner.number if tree.op == "-" else inner.number)
        sign = -1.0 if tree.op == "-" else 1.0
        return Node(inner.kind, lambda view, refs: sign * inner.run(view, refs))

    def binary(self, tree: f.Binary, where: Where) -> Node:
        left, right = self.node(tree.left, where), self.node(tree.right, where)
        for side in (left, right):
            _require(side, (NUMBER, VALUE, SERIES), where, f"'{tree.op}'")
        op = _ARITHMETIC[tree.op]
        if left.kind == right.kind == NUMBER:
            with np.errstate(all="ignore"):
                return _number(float(op(np.float64(left.number), np.float64(right.number))))
        kind = SERIES if SERIES in (left.kind, right.kind) else VALUE
        return Node(kind, lambda view, refs: op(left.run(view, refs), right.run(view, refs)))

    def compare(self, tree: f.Compare, where: Where) -> Node:
        operands = [self.node(t, where) for t in tree.operands]
        for side in operands:
            _require(side, (NUMBER, VALUE, SERIES), where, "a comparison")
        kind = CONDITION if any(o.kind == SERIES for o in operands) else FLAG
        ops = [_COMPARISONS[op] for op in tree.ops]

        def run(view, refs):
            values = [o.run(view, refs) if o.kind != NUMBER else o.number for o in operands]
            result = None
            for i, op in enumerate(ops):
                part = op(values[i], values[i + 1])
                result = part if result is None else result & part
            return result

        return Node(kind, run)

    def logic(self, tree: f.Logic, where: Where) -> Node:
        values = [self.node(t, where) for t in tree.values]
        for v in values:
            _require(v, (CONDITION, FLAG), where, f"'{tree.op}'")
        kind = CONDITION if any(v.kind == CONDITION for v in values) else FLAG
        combine = np.logical_and if tree.op == "and" else np.logical_or

        def run(view, refs):
            result = values[0].run(view, refs)
            for v in values[1:]:
                result = combine(result, v.run(view, refs))
            return result

        return Node(kind, run)

    # functions -------------------------------------------------------------
    def call(self, tree: f.Call, where: Where) -> Node:
        handler = getattr(self, f"fn_{tree.func}", None)
        if handler is None:
            known = ", ".join(sorted(n[3:] for n in dir(self) if n.startswith("fn_")))
            raise where.error(f"unknown function '{tree.func}' (known: {known})")
        return handler(tree, where)

    def _args(self, tree: f.Call, where: Where, count: int, keywords: Sequence[str] = ()) -> list[Node]:
        if len(tree.args) != count:
            raise where.error(f"{tree.func}() takes {count} positional argument{'s' if count != 1 else ''}, "
                              f"got {len(tree.args)}")
        unknown = [k for k, _ in tree.kwargs if k not in keywords]
        if unknown:
            allowed = f" (allowed: {', '.join(keywords)})" if keywords else ""
            raise where.error(f"{tree.func}() has no argument '{unknown[0]}'{allowed}")
        return [self.node(a, where) for a in tree.args]

    def _time(self, tree: f.Call, key: str, default: float | None, where: Where) -> float | None:
        value = tree.keyword(key)
        if value is None:
            return default
        node = self.node(value, where)
        if node.kind != NUMBER:
            raise where.error(f"{tree.func}(): '{key}' must be a number (a time), not a {_describe(node.kind)}")
        if self.span is not None and not self.span[0] - EPS <= node.number <= self.span[1] + EPS:
            raise where.error(f"{tree.func}(): {'the time' if key == 't' else key} {node.number:g} is outside the run "
                              f"(INITIAL TIME {self.span[0]:g} to FINAL TIME {self.span[1]:g})")
        return node.number

    def _window_times(self, tree: f.Call, where: Where) -> tuple[float | None, float | None]:
        start, end = self._time(tree, "start", None, where), self._time(tree, "end", self.horizon, where)
        if start is not None and end is not None and start > end + EPS:
            raise where.error(f"{tree.func}(): the window starts ({start:g}) after it ends ({end:g})")
        return start, end

    def fn_at(self, tree, where):
        if len(tree.args) == 2:
            tree = f.Call(tree.func, tree.args[:1], tree.kwargs + (("t", tree.args[1]),))
        (x,) = self._args(tree, where, 1, ("t",))
        _require(x, (SERIES,), where, "at()")
        t = self._time(tree, "t", self.horizon, where)
        return Node(VALUE, lambda view, refs: _at(view.times, x.run(view, refs), t))

    def fn_initial(self, tree, where):
        (x,) = self._args(tree, where, 1)
        _require(x, (SERIES,), where, "initial()")
        return Node(VALUE, lambda view, refs: np.array(x.run(view, refs)[0], dtype=float))

    def fn_first_time(self, tree, where):
        (cond,) = self._args(tree, where, 1, ("start", "end"))
        _require(cond, (CONDITION,), where, "first_time()")
        start, end = self._window_times(tree, where)

        def run(view, refs):
            lo, hi = _window(view.times, start, end)
            held = np.asarray(cond.run(view, refs), dtype=bool)[lo:hi]
            hit = held.any(axis=0)
            first = np.argmax(held, axis=0)
            return np.where(hit, view.times[lo:hi][first] if hi > lo else np.inf, np.inf)

        return Node(VALUE, run)

    def _window_or_elementwise(self, tree, where, reduce, pairwise=None):
        if len(tree.args) >= 2 and not tree.kwargs and pairwise is not None:
            nodes = [self.node(a, where) for a in tree.args]
            for n in nodes:
                _require(n, (NUMBER, VALUE, SERIES), where, f"{tree.func}()")
            kind = max((n.kind for n in nodes), key=[NUMBER, VALUE, SERIES].index)

            def run(view, refs):
                values = [n.run(view, refs) if n.kind != NUMBER else n.number for n in nodes]
                result = values[0]
                for v in values[1:]:
                    result = pairwise(result, v)
                return np.asarray(result, dtype=float)

            return Node(VALUE if kind == NUMBER else kind, run)
        (x,) = self._args(tree, where, 1, ("start", "end"))
        _require(x, (SERIES,), where, f"{tree.func}() over a window")
        start, end = self._window_times(tree, where)

        def run(view, refs):
            lo, hi = _window(view.times, start, end)
            values = x.run(view, refs)[lo:hi]
            if hi <= lo:
                return np.full(view.n, np.nan)
            return reduce(values, view.times[lo:hi])

        return Node(VALUE, run)

    def fn_max(self, tree, where):
        return self._window_or_elementwise(tree, where, lambda v, t: v.max(axis=0), np.fmax)

    def fn_min(self, tree, where):
        return self._window_or_elementwise(tree, where, lambda v, t: v.min(axis=0), np.fmin)

    def fn_mean(self, tree, where):
        return self._window_or_elementwise(tree, where, lambda v, t: v.mean(axis=0))

    def fn_integral(self, tree, where):
        return self._window_or_elementwise(
            tree, where, lambda v, t: _trapezoid(v, t, axis=0) if len(t) > 1 else np.zeros(v.shape[1]))

    def fn_ratio(self, tree, where):
        a, b = self._args(tree, where, 2)
        for side in (a, b):
            _require(side, (NUMBER, VALUE, SERIES), where, "ratio()")
        kind = SERIES if SERIES in (a.kind, b.kind) else VALUE

        def run(view, refs):
            num = a.run(view, refs) if a.kind != NUMBER else a.number
            den = b.run(view, refs) if b.kind != NUMBER else b.number
            num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

        return Node(kind, run)

    def fn_abs(self, tree, where):
        (x,) = self._args(tree, where, 1)
        _require(x, (NUMBER, VALUE, SERIES), where, "abs()")
        if x.kind == NUMBER:
            return _number(abs(x.number))
        return Node(x.kind, lambda view, refs: np.abs(x.run(view, refs)))

    def fn_under(self, tree, where):
        if not self.allow_under:
            raise where.error("under() and diff() are not available here")
        (x,) = self._args(tree, where, 1, DIMS)
        _require(x, (VALUE, SERIES), where, f"{tree.func}()")
        target = []
        for dim, value in tree.kwargs:
            if not isinstance(value, (f.Str, f.Name)):
                raise where.error(f"{tree.func}(): {dim}= takes a name, e.g. {dim}=\"baseline\"")
            name = value.value if isinstance(value, f.Str) else value.id
            known = self.entries.get(dim, ())
            if name not in known:
                from difflib import get_close_matches

                close = get_close_matches(name, list(known), n=3)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
                    (f"; known: {', '.join(known)}" if known else f"; the project has no {PLURAL[dim]}")
                raise where.error(f"{tree.func}(): unknown {dim} '{name}'{hint}")
            target.append((dim, name))
        if not target:
            raise where.error(f"{tree.func}() needs scenario=, strategy= or case=")
        export = Export(len(self.exports), x, tuple(target))
        self.exports.append(export)
        return Node(x.kind, lambda view, refs: refs(export))

    def fn_diff(self, tree, where):
        inner = self.node(tree.args[0], where) if len(tree.args) == 1 else None
        other = self.fn_under(f.Call("diff", tree.args, tree.kwargs), where)
        return Node(other.kind, lambda view, refs: inner.run(view, refs) - other.run(view, refs))


def _number(value: float) -> Node:
    return Node(NUMBER, lambda view, refs: value, number=float(value))


def _require(node: Node, kinds: tuple[str, ...], where: Where, what: str) -> None:
    if node.kind not in kinds:
        raise where.error(f"{what} needs a {' or '.join(_describe(k) for k in kinds)}, "
                          f"got a {_describe(node.kind)}")


def _describe(kind: str) -> str:
    return {NUMBER: "number", VALUE: "value per run", SERIES: "series over time",
            CONDITION: "condition over time", FLAG: "true/false value per run"}[kind]


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "**": np.power,
               "/": lambda a, b: np.divide(a, b)}
_COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                "==": np.equal, "!=": np.not_equal}


_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


def _at(times: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    last = int(np.searchsorted(times, t + EPS, side="right")) - 1
    if last < 0:
        return np.full(values.shape[1], np.nan)
    return np.array(values[last], dtype=float)


def _window(times: np.ndarray, start: float | None, end: float | None) -> tuple[int, int]:
    lo = 0 if start is None else int(np.searchsorted(times, start - EPS, side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end + EPS, side="right"))
    return lo, hi
