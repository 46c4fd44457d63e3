"""Stand-ins for constructs sdloop does not write out (data, RANDOM draws, ALLOCATE BY
PRIORITY, the VECTOR functions, ...): PySD runs them; the structure keeps what each depends
on, and the sign of its slope along each input where one is known, so loops pass through."""

from __future__ import annotations

import re

import sympy


class NoSign(sympy.Function):
    """The slope of a construct sdloop does not write out along an input whose effect has no
    fixed sign (a priority, a rank, a selection, a seed)."""


class Rising(sympy.Function):
    """The slope of a construct sdloop does not write out along an input it never falls with."""

    is_nonnegative = True


# Inputs (argument positions) along which a construct's value never falls: more supply or a
# larger own request never allocates less; a draw rises with its bounds and mean (same stream).
RISING_ARGUMENTS: dict[str, tuple[int, ...]] = {
    "ALLOCATE BY PRIORITY": (0, 4),  # request (own element), supply
    "ALLOCATE AVAILABLE": (0, 2),  # request (own element), available
    "RANDOM UNIFORM": (0, 1),  # min, max
    "RANDOM NORMAL": (0, 1, 2),  # min, max, mean
}


class Unsupported(sympy.Function):
    """Placeholder for a construct sdloop cannot write out; keeps its dependencies (its
    arguments, then every other element of the arrays they refer to). Its slope along an
    argument is ``Rising`` where ``RISING_ARGUMENTS`` knows it, else ``NoSign``."""

    construct: str = ""

    def fdiff(self, argindex=1):
        return (Rising if argindex - 1 in RISING_ARGUMENTS.get(self.construct, ()) else NoSign)(self)


def make_unsupported(construct: str) -> type[Unsupported]:
    ident = "unsupported_" + re.sub(r"\W", "_", construct.lower())
    return type(ident, (Unsupported,), {"construct": construct.upper().replace("_", " ")})
