"""Macro calls written out: each call's variables named after the caller
(``"x [MACRO 1] inner"``), its stocks among the model's stocks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

import sympy

from sdloop.lang.names import normalize
from sdloop.structure.build import Variable
from sdloop.structure.expressions import Translator
from sdloop.structure.symbols import symbol_for

if TYPE_CHECKING:
    from sdloop.structure.build import _Builder


def macro_units(units: str, params) -> str:
    """A macro variable's units, or none when they are written in its parameters' names
    (Vensim's ``~ input/adjustment time``: the units of whatever each call passes)."""
    words = {normalize(w) for w in re.findall(r"[^\s*/^()]+(?:\s+[^\s*/^()]+)*", units)}
    return "" if words & {normalize(p) for p in params} else units


def macro_expander(builder: "_Builder", section, translator: Translator) -> Callable[[str, list, str], sympy.Expr]:
    """A callback writing out one call of a macro: its variables, named after the caller."""
    params = [normalize(p) for p in section.params]
    returns = normalize(section.name)

    def expand(fname: str, args: list, owner: str) -> sympy.Expr:
        from pysd.translators.structures import abstract_expressions as ax

        if len(args) != len(params):
            return translator._unsupported(f"{fname} with {len(args)} arguments", args)
        n = builder.counter[owner] = builder.counter.get(owner, 0) + 1
        prefix = f"{owner} [{section.name.upper()} {n}]"
        local = dict(zip(params, args))
        names = {normalize(el.name): f"{prefix} {el.name}" for el in section.elements}
        for key, name in names.items():
            local[key] = symbol_for(name)
        inner = Translator(translator.lookups, builder.stateful, translator.ranges, translator.variables,
                           translator.macros)
        inner.unsupported = translator.unsupported
        inner.local = local
        saved = builder.current
        for el in section.elements:
            name = names[normalize(el.name)]
            units = macro_units(el.units or "", section.params)
            builder.current = (name, units, saved[2], saved[3])
            ast = el.components[0].ast
            if isinstance(ast, ax.IntegStructure):
                net = inner.translate(ast.flow, name)
                builder.add(Variable(name, "stock", symbol_for(name), net, units, saved[2], saved[3],
                                     initial=inner.translate(ast.initial, name), owner=saved[0]))
                builder.macro_stocks.append((name, net))
            else:
                expr = inner.translate(ast, name)
                if name not in builder.variables:
                    builder.add(Variable(name, "auxiliary", symbol_for(name), expr, units, saved[2],
                                         saved[3], owner=saved[0]))
        builder.current = saved
        key = returns if returns in names else (normalize(section.returns[0]) if section.returns else None)
        if key not in names:
            return translator._unsupported(f"macro {fname} without a return value", args)
        return symbol_for(names[key])

    return expand
