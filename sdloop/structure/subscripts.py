"""Subscript ranges and how an equation's subscripts pick elements.

sdloop writes subscripted (array) variables out element by element: ``Pop[region]`` with
``region: north, south`` becomes two variables ``Pop[north]`` and ``Pop[south]`` in the
ModelStructure (PySD's column names), each with its own scalar sympy equation, and each
carrying ``array`` ("Pop") and ``coords`` (("north",)). Every layer (units, loops, the
numpy and C engines) therefore sees scalars; a loop through an array variable is listed
once per element chain. SUM, PROD, VMIN and VMAX become sums, products and nested MIN/MAX
over the elements (``sdloop.structure.expressions``). Ranges, subranges, copies (``<->``), ranges from files,
``:EXCEPT:``, mappings (``->``) and vector functions over ``dim!`` are resolved here, with
PySD's own ``SubscriptManager`` reading the range definitions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from sdloop.lang.names import normalize


class SubscriptError(Exception):
    """An equation's subscripts that cannot be resolved (message says which)."""


@dataclass(frozen=True)
class Ranges:
    """Every subscript range of a model: name -> elements, and the mappings between ranges."""

    elements: Mapping[str, tuple[str, ...]]
    mappings: Mapping[str, tuple[str, ...]]
    main: Mapping[str, str]  # range -> the main range it belongs to

    @classmethod
    def from_abstract(cls, section, root: Path) -> "Ranges":
        if not section.subscripts:
            return cls({}, {}, {})
        from pysd.builders.python.subscripts import SubscriptManager

        manager = SubscriptManager(section.subscripts, root)
        elements = {name: tuple(subs) for name, subs in manager.subscripts.items()}
        mappings = {}
        for name, targets in manager.mapping.items():
            mappings[name] = tuple(t if isinstance(t, str) else getattr(t, "name", str(t)) for t in targets or ())
        main = {}
        for rng, subranges in manager.subranges.items():
            main[rng] = rng
            for sub in subranges:
                main.setdefault(sub, rng)
        for name in elements:
            main.setdefault(name, name)
        return cls(elements, mappings, main)

    def is_range(self, name: str) -> bool:
        return self._range(name) is not None

    def count(self, name: str) -> int:
        """How many elements the range ``name`` has (ELMCOUNT)."""
        return len(self.elements[self._range(name)])

    def _range(self, name: str) -> str | None:
        key = normalize(name.rstrip("!"))
        for rng in self.elements:
            if normalize(rng) == key:
                return rng
        return None

    def element(self, name: str) -> str | None:
        """The element's spelling if ``name`` is an element of some range."""
        key = normalize(name)
        for subs in self.elements.values():
            for e in subs:
                if normalize(e) == key:
                    return e
        return None

    def expand(self, subs: list[str]) -> list[tuple[tuple[str, ...], dict[str, str]]]:
        """Every element tuple a left-hand side ``subs`` covers, with its binding context
        (normalized range name -> element)."""
        choices = []
        for sub in subs:
            rng = self._range(sub)
            if rng is not None:
                choices.append([(e, rng) for e in self.elements[rng]])
            else:
                e = self.element(sub)
                if e is None:
                    raise SubscriptError(f"'{sub}' is neither a subscript range nor an element")
                choices.append([(e, None)])
        result = []
        for combo in itertools.product(*choices):
            coords = tuple(e for e, _ in combo)
            context = {}
            for e, rng in combo:
                if rng is not None:
                    context[normalize(rng)] = e
            context["__positions__"] = tuple(rng for _, rng in combo)  # type: ignore[assignment]
            result.append((coords, context))
        return result

    def covered(self, subs: list[str], excepts: list[list[str]]) -> list[tuple[tuple[str, ...], dict]]:
        """``expand(subs)`` without the element tuples any ``:EXCEPT:`` list names."""
        removed = set()
        for ex in excepts:
            for coords, _ in self.expand(ex):
                removed.add(coords)
        return [(coords, ctx) for coords, ctx in self.expand(subs) if coords not in removed]

    def pick(self, sub: str, context: Mapping[str, str], coords: tuple[str, ...]) -> str:
        """The element a reference subscript ``sub`` stands for in an equation's context."""
        if sub.endswith("!"):
            key = normalize(sub)
            if key in context:
                return context[key]
            raise SubscriptError(f"'{sub}' used outside a vector function (SUM, PROD, VMIN, VMAX)")
        rng = self._range(sub)
        if rng is None:
            e = self.element(sub)
            if e is None:
                raise SubscriptError(f"'{sub}' is neither a subscript range nor an element")
            return e
        key = normalize(rng)
        if key in context:
            return context[key]
        family = set(self.elements[rng])
        positions = context.get("__positions__", ())
        # a mapping between the left range and this one (either way), by position: before the
        # same family, so that ``aging in[Later] = aging out[Earlier]`` with ``Earlier: c1, c2, c3
        # -> Later`` and ``Later: c2, c3, c4`` takes c1 for c2, not c2 itself
        for coord, left in zip(coords, positions):
            if left is None:
                continue
            if rng in self.mappings.get(left, ()) or left in self.mappings.get(rng, ()):
                source = self.elements[left]
                target = self.elements[rng]
                if len(source) == len(target):
                    return target[source.index(coord)]
        # a range of the same family (a subrange or the main range) on the left
        for coord, left in zip(coords, positions):
            if left is not None and coord in family and self.main.get(left) == self.main.get(rng):
                return coord
        for coord, left in zip(coords, positions):
            if left is not None and coord in family:
                return coord
        raise SubscriptError(f"subscript '{sub}' is not on the left-hand side of the equation")

    def position(self, name: str, context: Mapping[str, str], coords: tuple[str, ...]) -> int:
        """Vensim's value of a range or element name used as a number: its 1-based position."""
        rng = self._range(name)
        element = self.pick(name, context, coords) if rng is not None else self.element(name)
        main = self.main.get(rng, rng) if rng is not None else None
        if main is None:
            main = next(r for r, subs in self.elements.items() if element in subs and self.main.get(r) == r)
        return self.elements[main].index(element) + 1

    def bang_ranges(self, names: list[str]) -> list[tuple[str, tuple[str, ...]]]:
        """(normalized ``dim!``, elements) for the ranges a vector function sums over."""
        found = []
        for name in names:
            rng = self._range(name)
            if rng is None:
                raise SubscriptError(f"'{name}' is not a subscript range")
            found.append((normalize(name), self.elements[rng]))
        return found


def element_name(name: str, coords: tuple[str, ...]) -> str:
    """The variable name of one element: ``Name[a,b]`` (PySD's column name)."""
    return f"{name}[{','.join(coords)}]" if coords else name


def covered(ranges: Ranges, component) -> list[tuple[tuple[str, ...], dict]]:
    """The element tuples (with their binding context) one component of an equation defines."""
    subs, excepts = component.subscripts
    if not subs:
        return [((), {})]
    return ranges.covered(list(subs), [list(e) for e in excepts])


def array_values(ast, component, ranges: Ranges, covered) -> list[float] | None:
    """The value of each covered element when the equation is a number or a number table."""
    if isinstance(ast, (int, float, np.integer, np.floating)) and not isinstance(ast, bool):
        return [float(ast)] * len(covered)
    if not isinstance(ast, np.ndarray):
        return None
    full = [coords for coords, _ in ranges.expand(list(component.subscripts[0]))]
    flat = np.asarray(ast, dtype=float).reshape(-1)
    if len(flat) != len(full):
        raise SubscriptError(f"{len(flat)} values for {len(full)} elements")
    by_coords = dict(zip(full, flat))
    return [float(by_coords[coords]) for coords, _ in covered]
