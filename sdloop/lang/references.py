"""Names an equation uses that the model does not define, and functions PySD does not know."""

from __future__ import annotations

import re
from typing import Iterator

from sdloop.errors import ModelFileError
from sdloop.lang.equations import SourceIndex
from sdloop.lang.names import BUILTIN_NAMES, normalize


def walk(node) -> Iterator[object]:
    """Every node of a PySD abstract expression tree."""
    yield node
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from walk(item)
    elif hasattr(node, "__dataclass_fields__"):
        for field in node.__dataclass_fields__:
            yield from walk(getattr(node, field))


# names of infinity in other tools, which PySD reads as undefined names: the model is unusable
INFINITY = frozenset({"inf", "infinity"})


def check_references(abstract, index: SourceIndex) -> None:
    """Raise ModelFileError for the first undefined name or unknown function."""
    problems = reference_problems(abstract, index)
    if problems:
        raise problems[0]


def reference_problems(abstract, index: SourceIndex) -> list[ModelFileError]:
    """Every undefined name and unknown function, one ModelFileError each, in file order."""
    from pysd.builders.python.python_functions import functionspace
    from pysd.translators.structures.abstract_expressions import CallStructure, ReferenceStructure

    main = [sec for sec in abstract.sections if sec.name == "__main__"] or abstract.sections[:1]
    defined = {normalize(el.name) for sec in main for el in sec.elements}
    defined |= BUILTIN_NAMES
    for sec in main:
        for rng in sec.subscripts:
            defined.add(normalize(rng.name))
            if isinstance(rng.subscripts, list):
                defined |= {normalize(e) for e in rng.subscripts}
    macros = {normalize(sec.name) for sec in abstract.sections if sec not in main}
    problems: list[ModelFileError] = []
    for section in abstract.sections:
        known = defined | macros
        if section not in main:
            known = known | {normalize(el.name) for el in section.elements} | {
                normalize(p) for p in list(section.params) + list(section.returns)}
        for element in section.elements:
            line = index.line(element.name)
            for component in element.components:
                called = set()
                for node in walk(component.ast):
                    if isinstance(node, CallStructure) and isinstance(node.function, ReferenceStructure):
                        fname = node.function.reference
                        called.add(id(node.function))
                        if normalize(fname) not in known and fname not in functionspace:
                            problems.append(ModelFileError(
                                f"unknown function '{fname.upper().replace('_', ' ')}'"
                                " (not defined in the model, not among the functions PySD runs)",
                                file=index.path, line=line, variable=element.name,
                            ))
                for node in walk(component.ast):
                    if isinstance(node, ReferenceStructure) and id(node) not in called:
                        if normalize(node.reference) not in known:
                            written = _as_written(index, element.name, node.reference)
                            problems.append(ModelFileError(
                                f"'{written}' is not a number PySD reads: an infinite value cannot be simulated"
                                if normalize(node.reference) in INFINITY else f"undefined name '{written}'",
                                file=index.path, line=line, variable=element.name,
                            ))
    unique = {str(p): p for p in problems}
    return sorted(unique.values(), key=lambda p: p.line or 0)


def _as_written(index: SourceIndex, variable: str, reference: str) -> str:
    """The spelling of ``reference`` as it appears in ``variable``'s equation."""
    eq = index.get(variable)
    pattern = r"[\s_]+".join(re.escape(word) for word in re.split(r"[\s_]+", reference.strip()))
    found = re.search(pattern, eq.text, flags=re.IGNORECASE) if eq else None
    return found.group(0) if found else reference
