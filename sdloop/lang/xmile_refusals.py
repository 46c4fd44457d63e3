"""XMILE files PySD cannot run correctly, refused by name before PySD reads them: a variable
defined twice (PySD renames the second silently), modules, conveyors, queues, macros, and forms
Stella writes that PySD's reader fails on with a bare error."""

from __future__ import annotations

import re
from pathlib import Path

from sdloop.errors import ModelFileError
from sdloop.lang.equations import line_of
from sdloop.lang.names import normalize


# XMILE (Stella) constructs PySD cannot run: it fails on them or, for modules, silently
# leaves their inputs unconnected (wrong numbers), so sdloop refuses them by name.
_UNSUPPORTED_XMILE = {
    "module": "XMILE modules are not supported (PySD does not connect a module's inputs)",
    "conveyor": "Stella conveyors (<conveyor>) are not supported by PySD",
    "queue": "Stella queues (<queue>) are not supported by PySD",
    "macro": "XMILE macros (<macro>) are not supported by PySD's XMILE reader (the same macro in a Vensim .mdl runs)",
    "element": "PySD cannot read element subscripts with a space after the comma; write them as 'a,b'",
    "size": "PySD cannot read a dimension given by its size (<dim size=...>); list its elements (<elem name=...>)",
}


def refuse_duplicates(path: Path, text: str) -> None:
    """ModelFileError at a variable defined twice in one model's <variables> (XMILE names, like
    Vensim's, ignore case and read '_' as a space; PySD would rename the second silently)."""
    for block in re.finditer(r"<variables>(.*?)</variables>", text, flags=re.DOTALL):
        seen: dict[str, int] = {}
        for match in re.finditer(r'<(?:stock|flow|aux|gf)\s+name="([^"]+)"', block.group(1)):
            name = match.group(1).replace("\\n", " ")
            line = line_of(text, block.start(1) + match.start())
            if normalize(name) in seen:
                raise ModelFileError(f"defined twice (lines {seen[normalize(name)]} and {line})",
                                     file=path, line=line, variable=name)
            seen[normalize(name)] = line


def refuse_unsupported(path: Path, text: str) -> None:
    """ModelFileError at the first module, conveyor, queue, macro, spaced element subscript or
    dimension given by its size."""
    match = re.search(r'<(module|conveyor|queue|macro)[\s/>]|<(element)\s+subscript="[^"]*,\s'
                      r'|<dim\s+name="[^"]*"\s+(size)=', text)
    if match is None:
        return
    kind = match.group(1) or match.group(2) or match.group(3)
    if kind == "size":
        names = re.findall(r'<dim\s+name="([^"]+)"', text[match.start():])[:1]
    elif kind in ("module", "macro"):
        names = re.findall(rf'<{kind}\s+name="([^"]+)"', text[match.start():])[:1]
    else:  # the variable the construct belongs to
        names = re.findall(r'<(?:stock|flow|aux)\s+name="([^"]+)"', text[:match.end()])[-1:]
    raise ModelFileError(_UNSUPPORTED_XMILE[kind], file=path, line=line_of(text, match.start()),
                         variable=names[0].replace("\\n", " ") if names else None)


# XMILE's array functions of one argument; PySD reads ``SUM(catch)`` (no ``[Dim!]``) as a sum over no
# dimension, which leaves the whole array where a number belongs
_ARRAY_FUNCTIONS = re.compile(r"\b(SUM|PROD|MEAN|MIN|MAX|STDDEV|SIZE)\s*\(\s*([A-Za-z_][\w ]*?)\s*\)", re.IGNORECASE)


def refuse_whole_array_functions(path: Path, text: str) -> None:
    """ModelFileError at the first SUM, PROD, MEAN, MIN, MAX, STDDEV or SIZE of an arrayed
    variable named without subscripts (``SUM(catch)``): PySD computes wrong numbers for it."""
    arrays = {normalize(m.group(1).replace("\\n", " ")) for m in re.finditer(
        r'<(?:stock|flow|aux)\s+name="([^"]+)"[^>]*>\s*<dimensions>', text)}
    if not arrays:
        return
    for eqn in re.finditer(r"<eqn>(.*?)</eqn>", text, flags=re.DOTALL):
        for call in _ARRAY_FUNCTIONS.finditer(eqn.group(1)):
            if normalize(call.group(2)) in arrays:
                names = re.findall(r'<(?:stock|flow|aux)\s+name="([^"]+)"', text[:eqn.start()])[-1:]
                fn = call.group(1).upper()
                raise ModelFileError(
                    f"{fn}({call.group(2)}) names a whole array without its dimension: PySD {fn.lower()}s over "
                    f"no dimension and computes wrong numbers; write {fn}({call.group(2)}[Dim!]) with the array's "
                    "dimension", file=path, line=line_of(text, eqn.start()),
                    variable=names[0].replace("\\n", " ") if names else None)
