"""Vensim's built-in functions as sympy builders whose derivatives are defined.

IF THEN ELSE, MIN, MAX, STEP, RAMP, PULSE, ZIDZ, XIDZ, QUANTUM and MODULO become
``Piecewise`` (built through ``piecewise_memo``), with PySD's semantics: its threshold for
zero, its step and pulse timing, XMILE's PULSE and RAMP. ``FUNCTIONS`` maps PySD's reference
name of each function to its builder.
"""

from __future__ import annotations

from typing import Callable

import sympy
from sympy.functions.elementary.piecewise import Piecewise

from sdloop.structure.piecewise_memo import piecewise
from sdloop.structure.symbols import TIME, time_step_symbol

SMALL_VENSIM = 1e-6  # what PySD (and Vensim) treat as zero in ZIDZ, XIDZ, RAMP, PULSE


def _zidz(a, b):
    return piecewise((0, sympy.Abs(b) < SMALL_VENSIM), (a / b, True))


def _xidz(a, b, x):
    return piecewise((x, sympy.Abs(b) < SMALL_VENSIM), (a / b, True))


def _ramp(slope, start, finish=None):
    if slope.is_Number and slope == 1:  # a Float: an Integer 1 would vanish from the product, and
        slope = sympy.Float(1.0)  # the ramp take Time's units instead of the slope's times Time's
    before = TIME + SMALL_VENSIM <= start
    if finish is None:
        return piecewise((0, before), (slope * (TIME - start), True))
    return piecewise((0, before), (slope * (sympy.Min(TIME, finish) - start), True))


def _step(height, when):
    return piecewise((height, TIME + time_step_symbol() / 2 > when), (0, True))


def _pulse(start, width=None):
    width = time_step_symbol() / 2 if width is None else width
    on = sympy.And(TIME >= start - SMALL_VENSIM, TIME < start + width)
    return piecewise((1, on), (0, True))


def _xpulse(start, magnitude):
    """XMILE's PULSE(magnitude, start) as PySD runs it: magnitude / TIME STEP for one step."""
    dt = time_step_symbol()
    on = sympy.And(TIME >= start - SMALL_VENSIM, TIME < start + dt / 2)
    return piecewise((magnitude / dt, on), (0, True))


def _xpulse_train(start, interval, magnitude):
    """XMILE's PULSE(magnitude, start, interval); a single pulse when the interval is 0."""
    if interval.is_number and interval == 0:
        return _xpulse(start, magnitude)
    dt = time_step_symbol()
    on = sympy.And(TIME >= start, sympy.Mod(TIME - start + SMALL_VENSIM, interval) < dt / 2)
    train = piecewise((magnitude / dt, on), (0, True))
    if interval.is_number:
        return train
    return piecewise((_xpulse(start, magnitude), sympy.Eq(interval, 0)), (train, True))


def _get_time_value(relative_to, offset, measure):
    """GET TIME VALUE as PySD runs it: only the current time (0) in model time units (0)."""
    if relative_to.is_number and measure.is_number and relative_to == 0 and measure == 0:
        return TIME + offset
    raise TypeError("GET TIME VALUE other than the model's current time")


def _pulse_train(start, repeat, width, end):
    on = sympy.And(TIME >= start, TIME < end, sympy.Mod(TIME - start + SMALL_VENSIM, repeat) < width)
    return piecewise((1, on), (0, True))


# Each Piecewise built for a MIN or MAX -> (sympy.Min or sympy.Max, its arguments): the two select
# the same value wherever no argument is NaN, so an engine may compute it as numpy.minimum/maximum
# (sympy rewrites the conditions of a nested MIN/MAX into long chains that cannot be read back).
MIN_MAX: dict = {}


def _remember(result, func, args):
    if isinstance(result, Piecewise) and not any(result == arg for arg in args):  # not simplified to an argument
        MIN_MAX.setdefault(result, (func, tuple(args)))
    return result


def min_of(*args):
    """MIN of any number of arguments: the first that is <= every other."""
    return _remember(piecewise(*[(a, sympy.And(*[a <= b for b in args if b is not a])) for a in args[:-1]],
                               (args[-1], True)), sympy.Min, args)


def max_of(*args):
    """MAX of any number of arguments: the first that is >= every other."""
    return _remember(piecewise(*[(a, sympy.And(*[a >= b for b in args if b is not a])) for a in args[:-1]],
                               (args[-1], True)), sympy.Max, args)


def _integer(x):
    return sympy.sign(x) * sympy.floor(sympy.Abs(x))


def _quantum(a, b):
    """PySD's QUANTUM: a when b < SMALL_VENSIM, else b * INTEGER(a / b)."""
    return piecewise((a, b < SMALL_VENSIM), (b * _integer(a / b), True))


def _modulo(x, m):
    """PySD's (and Vensim's) MODULO: x - QUANTUM(x, m), with the sign of x."""
    return x - _quantum(x, m)


# Vensim functions (by PySD's reference name) as sympy builders.
FUNCTIONS: dict[str, Callable] = {
    "if_then_else": lambda c, a, b: piecewise((a, c), (b, True)),
    "min": min_of,
    "max": max_of,
    "step": _step,
    "ramp": _ramp,
    "pulse": _pulse,
    "pulse_train": _pulse_train,
    "Xramp": _ramp,  # XMILE's RAMP(slope, start): no end
    "Xpulse": _xpulse,
    "Xpulse_train": _xpulse_train,
    "get_time_value": _get_time_value,
    "zidz": _zidz,
    "xidz": _xidz,
    "abs": sympy.Abs,
    "exp": sympy.exp,
    "ln": sympy.log,
    "log": lambda x, base: sympy.log(x, base),
    "sqrt": sympy.sqrt,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "power": lambda a, b: a**b,
    "integer": _integer,
    "modulo": _modulo,
    "quantum": _quantum,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "game": lambda x: x,
    "sign": sympy.sign,
}
