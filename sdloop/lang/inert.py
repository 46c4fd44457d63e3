"""Model text is data, never code: documentation strings made inert before PySD writes Python.

PySD copies each element's documentation (a Vensim comment, an XMILE ``<doc>``) into a
triple-quoted docstring of the Python it generates, turning every ``\\`` into a new line and
escaping nothing else. A ``\"\"\"`` in a comment would end that docstring and what follows would
run as code. Names and units are written with ``repr`` and need nothing.

- ``inert_text`` rewrites a documentation string so that it cannot end a docstring: each run of
  three double quotes becomes three single quotes, control characters become spaces.
- ``make_inert`` applies it to every element of a parsed (abstract) model before PySD builds it.
- ``docstrings`` is what each generated function's docstring must then be, by element name.
- ``unsafe_text_problems`` names every element whose text needed it (``sdloop check`` reports
  them as errors: such a file was made to look like code).
"""

from __future__ import annotations

import re
from typing import Iterator

from sdloop.errors import ModelFileError

TRIPLE_QUOTE = '"""'
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def inert_text(text: str) -> str:
    """``text`` unable to end a Python docstring (no ``\"\"\"``, no control characters but tab and new line)."""
    return _CONTROL.sub(" ", text.replace(TRIPLE_QUOTE, "'''"))


def _elements(abstract) -> Iterator[object]:
    for section in abstract.sections:
        yield from section.elements


def make_inert(abstract) -> int:
    """Make every element's documentation inert in place; the number of elements changed."""
    changed = 0
    for element in _elements(abstract):
        safe = inert_text(element.documentation or "")
        if safe != (element.documentation or ""):
            element.documentation = safe
            changed += 1
    return changed


def docstrings(abstract) -> dict[str, str]:
    """Element name -> the docstring PySD writes for it from inert documentation (``\\`` as new line)."""
    return {element.name: inert_text(element.documentation or "").replace("\\", "\n")
            for element in _elements(abstract)}


def unsafe_text_problems(abstract, index) -> list[ModelFileError]:
    """One error per element whose documentation could end a docstring of the generated Python."""
    problems = []
    for element in _elements(abstract):
        text = element.documentation or ""
        if inert_text(text) == text:
            continue
        what = 'three double quotes (""")' if TRIPLE_QUOTE in text else "control characters"
        problems.append(ModelFileError(
            f"the comment holds {what}, which would end the docstring PySD writes and run the rest as "
            "code; sdloop makes it inert before translating, but check who wrote this file",
            file=index.path, line=index.line(element.name), variable=element.name))
    return problems
