"""Sympy symbols and numbers for Vensim names: one identifier per name, ``time`` shared."""

from __future__ import annotations

import keyword

import sympy

from sdloop.lang.names import normalize

TIME = sympy.Symbol("time", real=True)
TIME_STEP_NAME = "time step"


def identifier(name: str) -> str:
    """A Python identifier for a Vensim name (used as the sympy symbol name), one per name.

    Spaces become ``_``, an element's brackets and commas ``__`` (``pop[a,b]`` ->
    ``pop__a__b``) and any other character ``___<hex>_`` (``"a.b"`` -> ``a___2e_b``), so
    two different Vensim names never share an identifier (names never hold ``__``).
    """
    norm = normalize(name)
    base, bracket, rest = norm.partition("[") if not name.strip().startswith('"') else (norm, "", "")
    parts = [base] + (rest.rstrip("]").split(",") if bracket else [])
    escaped = ["".join(c if c.isalnum() and c.isascii() else "_" if c == " " else f"___{ord(c):x}_"
                       for c in part) for part in parts]
    ident = "__".join(escaped)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident):
        ident = "v_" + ident
    return ident


def symbol_for(name: str) -> sympy.Symbol:
    """The sympy symbol of a variable; ``time`` is the shared TIME symbol."""
    if normalize(name) == "time":
        return TIME
    return sympy.Symbol(identifier(name), real=True)


def time_step_symbol() -> sympy.Symbol:
    return symbol_for(TIME_STEP_NAME)



def number(value) -> sympy.Expr:
    """A sympy number: an Integer when the value is whole, else a Float."""
    value = float(value)
    return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value)

