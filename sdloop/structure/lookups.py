"""Vensim lookup tables as sympy functions that know their table and the sign of their slope."""

from __future__ import annotations

from typing import Callable

import numpy as np
import sympy

from sdloop.structure.symbols import identifier


class LookupSlope(sympy.Function):
    """Slope of a lookup table at ``x`` (0 outside the table, where ends are held)."""

    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()

    @classmethod
    def slopes(cls) -> np.ndarray:
        return np.diff(cls.ys) / np.diff(cls.xs) if len(cls.xs) > 1 else np.zeros(0)

    def _eval_is_nonnegative(self):
        return bool(np.all(self.slopes() >= 0)) or None

    def _eval_is_nonpositive(self):
        return bool(np.all(self.slopes() <= 0)) or None

    @classmethod
    def numeric(cls) -> Callable:
        xs, slopes = np.asarray(cls.xs, float), cls.slopes()

        def slope(x):
            x = np.asarray(x, float)
            idx = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, max(len(slopes) - 1, 0))
            inside = (x >= xs[0]) & (x < xs[-1])
            return np.where(inside, slopes[idx] if len(slopes) else 0.0, 0.0)

        return slope


class LookupFunction(sympy.Function):
    """A Vensim lookup table as a function of one argument (linear interpolation)."""

    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    vensim_name: str = ""
    slope_class: type = LookupSlope

    def fdiff(self, argindex=1):
        return self.slope_class(self.args[0])

    @classmethod
    def slope_sign(cls) -> str:
        """'+' if the table never falls, '-' if it never rises, 'depends' otherwise."""
        slopes = cls.slope_class.slopes()
        if np.all(slopes >= 0):
            return "+"
        if np.all(slopes <= 0):
            return "-"
        return "depends"

    @classmethod
    def numeric(cls) -> Callable:
        xs, ys = np.asarray(cls.xs, float), np.asarray(cls.ys, float)
        return lambda x: np.interp(x, xs, ys)


def as_pysd_writes(values) -> tuple[float, ...]:
    """The numbers as PySD's generated Python holds them: it prints a table with
    ``np.array2string`` (8 decimals), so an XMILE ``<xscale>`` spaced in thirds runs on
    0.66666667, not 2/3. The engines use the same numbers, or they would differ from PySD by
    about 1e-9."""
    values = np.asarray([float(v) for v in values])
    if not len(values):
        return ()
    printed = np.array2string(values, separator=",", threshold=len(values))
    return tuple(float(v) for v in printed.strip("[]").split(","))


def make_lookup(name: str, xs, ys) -> type[LookupFunction]:
    """A new LookupFunction subclass for the table (xs, ys) named after ``name``, with the
    numbers PySD runs (``as_pysd_writes``)."""
    ident = "lookup_" + identifier(name)
    xs = as_pysd_writes(xs)
    ys = as_pysd_writes(ys)
    slope = type(ident + "_slope", (LookupSlope,), {"xs": xs, "ys": ys})
    return type(ident, (LookupFunction,), {"xs": xs, "ys": ys, "vensim_name": name, "slope_class": slope})


def lambdify_modules(expr_set) -> list:
    """Modules for ``sympy.lambdify`` that know every lookup in the expressions."""
    namespace: dict[str, Callable] = {}
    for expr in expr_set:
        for fn in expr.atoms(sympy.Function):
            cls = type(fn)
            if issubclass(cls, LookupFunction):
                namespace[cls.__name__] = cls.numeric()
            elif issubclass(cls, LookupSlope):
                namespace[cls.__name__] = cls.numeric()
    return [namespace, "numpy"]

