"""Where a failure inside PySD's code for a macro or a data file stands in the model file.

PySD writes each Vensim macro to a module of its own beside the translated model and calls it
through a ``Macro`` object per call site (``_macro_<macro>_<caller>``); it reads data files
(GET XLS/DIRECT ...) through ``External`` objects (``_ext_<kind>_<variable>``). An error raised
there names neither the variable nor its line. ``macro_site`` finds them from the traceback: the
equation that called the macro (a run) or the macro's equation whose code failed (a load);
``data_site`` the variable whose data PySD could not read, and where it reads them from.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from sdloop.lang.equations import SourceIndex
from sdloop.lang.names import normalize

# PySD's macros have no TIME STEP of their own: what needs it inside a macro fails to load
_NO_TIME_STEP = ("PySD's translation of a macro has no TIME STEP, which DELAY1, DELAY3 (and their I forms), DELAY N and "
                 "DELAY FIXED inside a macro use")


@dataclass(frozen=True)
class MacroSite:
    """The macro a failure happened in, the variable to name, its line and what it means."""

    macro: str
    variable: str
    line: int | None
    note: str = ""


def _macro_name(index: SourceIndex, module: Path) -> str | None:
    """The macro of ``index`` PySD wrote to ``module`` (its name in lower case, as an identifier)."""
    for eq in index.equations:
        if eq.macro and re.sub(r"\W+", "_", normalize(eq.macro)) == module.stem:
            return eq.macro
    return None


def _component(module: Path, lineno: int) -> str | None:
    """The Vensim name of the component whose code stands at ``lineno`` of a translated module."""
    try:
        lines = module.read_text().splitlines()
    except OSError:
        return None
    text = "\n".join(lines)
    for line in reversed(lines[:lineno]):
        found = re.match(r"(?:def (\w+)\(|(\w+) = )", line)
        if not found:
            continue
        own = found.group(1) or found.group(2)  # a component's function, or a stateful object it returns
        pattern = (rf'name="([^"]+)"(?:(?!@component).)*?\ndef {own}\(' if found.group(1) else
                   rf'name="([^"]+)"(?:(?!@component).)*?\b{own}\b')
        named = re.search(pattern, text, re.S)
        return named.group(1) if named else None
    return None


def macro_site(exc: BaseException, translated: Path, index: SourceIndex, real_name: dict[str, str]) -> MacroSite | None:
    """Where ``exc`` (raised inside a macro's translated code) stands in the model file, or None."""
    from pysd.py_backend.model import Macro

    caller = inner = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if type(owner) is Macro and str(getattr(owner, "py_name", "")).startswith("_macro_"):
            caller = owner
        filename = Path(frame.f_code.co_filename)
        if filename.parent == translated.parent and filename != translated and filename.suffix == ".py":
            inner = (filename, lineno)
    if inner is None:
        return None
    macro = _macro_name(index, inner[0])
    if macro is None:
        return None
    note = _NO_TIME_STEP if isinstance(exc, NameError) and "time_step" in str(exc) else ""
    if caller is not None:  # a run: name the equation that called the macro
        py_name = caller.py_name.removeprefix(f"_macro_{inner[0].stem}_")
        variable = real_name.get(py_name)
        if variable is not None and index.line(variable) is not None:
            return MacroSite(macro, variable, index.line(variable), note)
    component = _component(*inner)
    own = [eq for eq in index.equations if eq.macro == macro]
    chosen = next((eq for eq in own if component and normalize(eq.name) == normalize(component)), own[0] if own else None)
    return MacroSite(macro, chosen.name if chosen else macro, chosen.line if chosen else None, note)


def data_site(exc: BaseException, index: SourceIndex) -> tuple[str, int | None, str] | None:
    """(variable, line, what PySD read: file, sheet or tab, cell) of the data variable whose
    file PySD failed to read, from the ``External`` object in ``exc``'s traceback, or None."""
    from pysd.py_backend.external import External

    owners = [frame.f_locals.get("self") for frame, _ in traceback.walk_tb(exc.__traceback__)]
    # not isinstance: PySD's models answer __class__ with a NameError
    found = next((owner for owner in reversed(owners) if issubclass(type(owner), External)), None)
    if found is None:
        return None
    py_name = re.sub(r"^_ext_[a-z]+_", "", str(getattr(found, "py_name", "")))
    eq = index.get(py_name)
    source = ", ".join(str(getattr(found, key)) for key in ("file", "sheet", "cell") if getattr(found, key, None))
    return (eq.name if eq else py_name, eq.line if eq else None, source)
