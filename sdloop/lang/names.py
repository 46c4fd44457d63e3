"""Vensim names: compared as Vensim compares them, and resolved against a model's names."""

from __future__ import annotations

import difflib
import re

# Names PySD provides to every model without an equation in the file.
BUILTIN_NAMES = frozenset({"time", "initial time", "final time", "time step", "saveper"})


def normalize(name: str) -> str:
    """Vensim treats names case-insensitively, with spaces and underscores alike.

    Spaces next to the brackets and commas of an element name (``Pop[north, a]``) do not count.
    """
    name = re.sub(r"[\s_]+", " ", name.strip().strip('"')).lower()
    return re.sub(r"\s*([\[\],])\s*", r"\1", name) if "[" in name else name


def resolve_name(name: str, pool: list[str], *, model_name: str, constants_only: bool = False,
                 computed: bool = False, computed_line: int | None = None, source: str | None = None,
                 line: int | None = None) -> str:
    """The spelling in ``pool`` of ``name``; OverrideError naming close matches if unknown.

    ``computed`` says the name is a variable with an equation (at ``computed_line``), which
    gets its own message when only constants may be named.
    """
    from sdloop.errors import OverrideError

    by_norm = {normalize(n): n for n in pool}
    found = by_norm.get(normalize(name))
    if found:
        return found
    if constants_only and computed:
        raise OverrideError(
            f"not a constant of {model_name}: it is computed by an equation"
            + (f" (line {computed_line})" if computed_line else "") + " and cannot be overridden",
            file=source, line=line, variable=name)
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    if not close:
        close = [by_norm[c] for c in difflib.get_close_matches(normalize(name), list(by_norm), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    kind = "constant" if constants_only else "variable"
    raise OverrideError(f"unknown {kind} in {model_name}{hint}", file=source, line=line, variable=name)

