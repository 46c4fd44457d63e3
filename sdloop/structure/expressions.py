"""Translate PySD equation trees into sympy expressions (``Translator``).

Vensim's built-in functions become the sympy builders of ``sdloop.structure.vensim_functions``,
lookups the ``LookupFunction`` classes of ``sdloop.structure.lookups``, names the symbols of
``sdloop.structure.symbols``. Stateful functions (SMOOTH, DELAY, TREND, INITIAL) are not
handled here: the translator hands each one to a callback that writes it out as explicit
stocks (see ``sdloop.structure.build``) and returns the symbol that stands for its output.
"""

from __future__ import annotations

import itertools
import re
from typing import Callable

import numpy as np
import sympy

from sdloop.lang.names import normalize
from sdloop.lang.references import walk
from sdloop.structure.lookups import LookupFunction, make_lookup
from sdloop.structure.placeholders import make_unsupported
from sdloop.structure.subscripts import SubscriptError, element_name
from sdloop.structure.symbols import number, symbol_for
from sdloop.structure.vensim_functions import FUNCTIONS, max_of, min_of

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


def _negative_literal(node) -> bool:
    return isinstance(node, (int, float, np.integer, np.floating)) and node < 0


class Translator:
    """Turn one variable's PySD tree into sympy.

    ``stateful(node, owner, top)`` is called for SMOOTH/DELAY/TREND/INITIAL nodes with
    their arguments already translated; it returns the output symbol. ``lookups`` maps
    normalized lookup names to LookupFunction classes. Unsupported constructs are
    recorded in ``self.unsupported`` and kept as ``Unsupported`` placeholders.
    """

    def __init__(self, lookups: dict[str, type[LookupFunction]], stateful: Callable, ranges=None,
                 variables: frozenset[str] = frozenset(), macros: dict | None = None) -> None:
        self.lookups = lookups
        self.stateful = stateful
        self.unsupported: list[str] = []
        self.ranges = ranges
        self.variables = variables  # normalized names of the model's variables
        self.macros = macros or {}
        self.local: dict[str, sympy.Expr] = {}
        self.arrays: dict[str, set[str]] = {}  # array name -> its elements' names (normalized)
        self.context: dict = {}
        self.coords: tuple[str, ...] = ()
        self._top = None

    def translate(self, node, owner: str, context: dict | None = None, coords: tuple[str, ...] = ()) -> sympy.Expr:
        """``node`` in sympy; ``context`` binds the left-hand side's ranges to ``coords``."""
        self.context, self.coords, self._top = context or {}, coords, node
        return self._tr(node, owner, top=True)

    def _tr(self, node, owner: str, top: bool = False):
        from pysd.translators.structures import abstract_expressions as ax

        if isinstance(node, (int, float, np.integer, np.floating)):
            return number(node)
        if isinstance(node, ax.ReferenceStructure):
            return self._reference(node)
        if isinstance(node, ax.ArithmeticStructure):
            args = [self._tr(a, owner) for a in node.arguments]
            if node.operators and node.operators[0] == "^" and _negative_literal(node.arguments[0]):
                args[0] = -args[0]  # Vensim and PySD read -2^2 as -(2^2)
                rest = ax.ArithmeticStructure(node.operators, (args[0],) + tuple(node.arguments[1:]))
                return -self._tr(rest, owner)
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
            ax.DelayFixedStructure, ax.TrendStructure, ax.InitialStructure, ax.SampleIfTrueStructure,
            ax.ForecastStructure,
        )
        if isinstance(node, sympy.Basic):
            return node  # an argument already translated (macro parameters)
        if isinstance(node, ax.GameStructure):
            return self._tr(node.expression, owner, top)  # a run nobody plays: the expression
        if isinstance(node, stateful_types):
            args = {
                field: self._tr(getattr(node, field), owner)
                for field in node.__dataclass_fields__
            }
            return self.stateful(type(node).__name__, args, owner, top)
        name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(node).__name__.replace("Structure", ""))
        fields = [getattr(node, f) for f in getattr(node, "__dataclass_fields__", ())]
        return self._opaque(name, [f for f in fields if isinstance(f, (ax.AbstractSyntax, int, float))], owner)

    def _reference(self, node) -> sympy.Expr:
        name = node.reference
        key = normalize(name)
        if key in self.local:
            return self.local[key]
        subs = list(node.subscripts.subscripts) if node.subscripts else []
        if not subs and key not in self.variables and self.ranges is not None:
            if self.ranges.is_range(name) or self.ranges.element(name) is not None:
                try:  # a range or element name used as a number: its position
                    return sympy.Integer(self.ranges.position(name, self.context, self.coords))
                except (SubscriptError, StopIteration, ValueError) as exc:
                    return self._unsupported(f"subscript {exc}", ())
        if not subs:
            if key in self.arrays and self.coords:  # XMILE writes an array's name without subscripts
                element = normalize(element_name(name, self.coords))
                if element in self.arrays[key]:
                    return symbol_for(element_name(name, self.coords))
                return self._unsupported(f"subscripts: '{name}' used without subscripts", ())
            return symbol_for(name)
        try:
            picked = tuple(self.ranges.pick(sub, self.context, self.coords) for sub in subs)
        except (SubscriptError, AttributeError) as exc:
            return self._unsupported(f"subscripts: {exc}", ())
        return symbol_for(element_name(name, picked))

    def _vector(self, fname: str, node, owner: str):
        """SUM, PROD, VMIN, VMAX over the ``dim!`` ranges in the argument."""
        from pysd.translators.structures import abstract_expressions as ax

        bangs = []
        for sub_node in walk(node.arguments[0]):
            if isinstance(sub_node, ax.SubscriptsReferenceStructure):
                bangs += [s for s in sub_node.subscripts if s.endswith("!") and normalize(s) not in bangs]
        bangs = list(dict.fromkeys(normalize(b) for b in bangs))
        try:
            ranges = self.ranges.bang_ranges(bangs)
        except (SubscriptError, AttributeError) as exc:
            return self._unsupported(f"{fname}: {exc}", ())
        saved = self.context
        terms = []
        for combo in itertools.product(*(elements for _, elements in ranges)):
            self.context = {**saved, **{name: e for (name, _), e in zip(ranges, combo)}}
            terms.append(self._tr(node.arguments[0], owner))
        self.context = saved
        if not terms:
            return sympy.Integer(0)
        if fname in ("vmin", "vmax"):  # the first term <= (>=) every other: no MIN nested in a
            return (min_of if fname == "vmin" else max_of)(*terms)  # condition (2**n terms when chained)
        return (sympy.Add if fname == "sum" else sympy.Mul)(*terms)

    def _elmcount(self, node) -> sympy.Expr:
        """ELMCOUNT(range): the number of the range's elements."""
        name = getattr(node, "reference", None)
        if self.ranges is None or name is None or not self.ranges.is_range(name):
            return self._unsupported("ELMCOUNT of something other than a subscript range", ())
        return sympy.Integer(self.ranges.count(name))

    def _call(self, node, owner: str):
        from pysd.translators.structures import abstract_expressions as ax

        fname = node.function.reference
        if fname in ("sum", "prod", "vmin", "vmax") and len(node.arguments) == 1:
            return self._vector(fname, node, owner)
        if fname == "elmcount" and len(node.arguments) == 1:
            return self._elmcount(node.arguments[0])
        if normalize(fname) in self.macros:
            return self.macros[normalize(fname)](fname, [self._tr(a, owner) for a in node.arguments], owner)
        if fname == "active_initial" and len(node.arguments) == 2:
            args = {"expr": self._tr(node.arguments[0], owner), "initial": self._tr(node.arguments[1], owner)}
            return self.stateful("ActiveInitial", args, owner, node is self._top)
        subscripted = isinstance(node.function, ax.ReferenceStructure) and node.function.subscripts
        if fname not in FUNCTIONS and normalize(fname) not in self.lookups and not subscripted:
            return self._opaque(fname, node.arguments, owner)
        args = [self._tr(a, owner) for a in node.arguments]
        if subscripted:
            try:
                picked = tuple(self.ranges.pick(sub, self.context, self.coords)
                               for sub in node.function.subscripts.subscripts)
            except (SubscriptError, AttributeError) as exc:
                return self._unsupported(f"subscripts: {exc}", args)
            fname = element_name(fname, picked)
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

    def _opaque(self, construct: str, nodes, owner: str) -> sympy.Expr:
        """A placeholder for a construct sdloop does not write out, depending on its arguments
        and on every element of the arrays they name (ALLOCATE BY PRIORITY reads whole arrays)."""
        from pysd.translators.structures import abstract_expressions as ax

        args = []
        for node in nodes:
            before = len(self.unsupported)
            arg = self._tr(node, owner)
            lost = [c for c in self.unsupported[before:] if c.startswith("SUBSCRIPT")]
            if lost:  # e.g. ``dim!`` outside SUM: its elements are among the inputs below
                self.unsupported[before:] = [c for c in self.unsupported[before:] if c not in lost]
                arg = sympy.Integer(0)
            args.append(arg)
        known = set().union(*(a.free_symbols for a in args if isinstance(a, sympy.Basic)))
        extras: list[sympy.Symbol] = []
        for ref in (r for n in nodes for r in walk(n) if isinstance(r, ax.ReferenceStructure)):
            key = normalize(ref.reference or "")
            names = sorted(self.arrays.get(key, ())) or ([ref.reference] if key in self.variables else [])
            for symbol in map(symbol_for, names):
                if symbol not in known and symbol not in extras:
                    extras.append(symbol)
        return self._unsupported(construct, args + extras)

    def _unsupported(self, construct: str, args) -> sympy.Expr:
        self.unsupported.append(construct.upper().replace("_", " "))
        return make_unsupported(construct)(*args) if args else make_unsupported(construct)(sympy.Integer(0))
