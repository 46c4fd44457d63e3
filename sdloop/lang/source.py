"""Read a model file through PySD's parser, keeping the file line of every variable.

PySD parses Vensim text into its ``AbstractModel`` but forgets where each equation
stands, and its parse errors name neither the variable nor the line. This module splits
the text into equations itself (on ``|``), records the line each one starts on, parses
each with PySD's own grammar so a failure points at one equation, and checks that every
name an equation uses is defined and every function it calls is one PySD knows.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sdloop.errors import ModelFileError

SKETCH_MARKER = "\\\\\\---///"
# Names PySD provides to every model without an equation in the file.
BUILTIN_NAMES = frozenset({"time", "initial time", "final time", "time step", "saveper"})


def normalize(name: str) -> str:
    """Vensim treats names case-insensitively, with spaces and underscores alike."""
    return re.sub(r"[\s_]+", " ", name.strip().strip('"')).lower()


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


@dataclass(frozen=True)
class Equation:
    """One equation of a Vensim file as written: ``text ~ units ~ comment |``."""

    name: str
    line: int
    text: str
    units: str
    comment: str


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _lhs_name(equation: str) -> str:
    """The variable name on the left of an equation or lookup definition."""
    match = re.match(r"\s*(\"[^\"]+\"|[^=(\[:]+)", equation)
    return match.group(1).strip().strip('"') if match else equation.strip()[:40]


def split_equations(path: Path, text: str) -> list[Equation]:
    """Split Vensim text into equations, each with the line its name stands on.

    Raises ModelFileError for an equation that is not terminated by ``|`` (detected as
    one chunk holding two equations' worth of ``~`` separators).
    """
    body_end = text.find(SKETCH_MARKER)
    body = text if body_end < 0 else text[:body_end]
    if body.lstrip().startswith("{UTF-8}"):
        start = body.index("{UTF-8}") + len("{UTF-8}")
    else:
        start = 0
    equations: list[Equation] = []
    for chunk_match in re.finditer(r"[^|]+", body[start:]):
        chunk = chunk_match.group(0)
        if not chunk.strip():
            continue
        offset = start + chunk_match.start() + (len(chunk) - len(chunk.lstrip()))
        if chunk.strip().startswith("*") or chunk.strip().startswith(":"):
            continue  # group separator (****** .Control ******) or :MACRO: keywords
        parts = chunk.split("~")
        line = _line_of(text, offset)
        name = _lhs_name(parts[0])
        if len(parts) > 3:
            next_line = _next_equation_line(text, offset, parts)
            raise ModelFileError(
                "equation is not terminated by '|'"
                + (f" (the next equation starts on line {next_line})" if next_line else ""),
                file=path, line=line, variable=name,
            )
        if len(parts) < 2:
            raise ModelFileError(
                "equation has no '~ units ~ comment' part before '|'",
                file=path, line=line, variable=name,
            )
        units = parts[1].strip()
        comment = parts[2].strip() if len(parts) > 2 else ""
        equations.append(Equation(name, line, parts[0].strip(), units, comment))
    return equations


def _next_equation_line(text: str, offset: int, parts: list[str]) -> int | None:
    """Line where an unterminated equation's successor begins (inside the comment)."""
    comment_start = offset + len(parts[0]) + len(parts[1]) + 2
    comment = parts[2]
    pos = 0
    for raw in comment.splitlines(keepends=True):
        if re.match(r"\s*[A-Za-z\"][^~]*?(=|\(\s*$|\(\s*\[)", raw) and pos > 0:
            return _line_of(text, comment_start + pos)
        pos += len(raw)
    return None


class SourceIndex:
    """Where each variable of a model file is defined: name -> (Vensim name, line)."""

    def __init__(self, path: Path, equations: list[Equation]) -> None:
        self.path = path
        self.equations = equations
        self._by_name = {normalize(eq.name): eq for eq in equations}

    def __contains__(self, name: str) -> bool:
        return normalize(name) in self._by_name

    def get(self, name: str) -> Equation | None:
        return self._by_name.get(normalize(name))

    def line(self, name: str) -> int | None:
        eq = self.get(name)
        return eq.line if eq else None

    def names(self) -> list[str]:
        return [eq.name for eq in self.equations]


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ModelFileError("no such model file", file=path) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ModelFileError(f"cannot read model file: {exc}", file=path) from None


def _xmile_index(path: Path, text: str) -> SourceIndex:
    equations = []
    for match in re.finditer(r'<(stock|flow|aux|gf)\s+name="([^"]+)"', text):
        name = match.group(2).replace("\\n", " ")
        equations.append(Equation(name, _line_of(text, match.start()), "", "", ""))
    return SourceIndex(path, equations)


def parse_model(path: str | Path, *, check_names: bool = True):
    """Parse a Vensim (``.mdl``) or XMILE (``.xmile``/``.xml``/``.stmx``) file.

    Returns ``(abstract_model, index)``: PySD's ``AbstractModel`` and the SourceIndex.
    Any problem raises ModelFileError naming file, line and variable. With
    ``check_names=False`` undefined names and unknown functions are left for the caller
    (``reference_problems`` lists them all).
    """
    import warnings

    path = Path(path)
    text = read_text(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix.lower() == ".mdl":
            index = SourceIndex(path, split_equations(path, text))
            for eq in index.equations:
                _parse_one(path, eq)
            from pysd.translators.vensim.vensim_file import VensimFile

            reader = VensimFile(path)
        elif path.suffix.lower() in {".xmile", ".xml", ".stmx"}:
            index = _xmile_index(path, text)
            from pysd.translators.xmile.xmile_file import XmileFile

            reader = XmileFile(path)
        else:
            raise ModelFileError("unknown model file type (expected .mdl or .xmile)", file=path)
        try:
            reader.parse()
            abstract = reader.get_abstract_model()
        except ModelFileError:
            raise
        except Exception as exc:  # PySD raises bare parser errors with no location
            raise ModelFileError(f"PySD could not parse the file: {_first_line(exc)}", file=path) from exc
    if check_names:
        check_references(abstract, index)
    return abstract, index


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse_one(path: Path, eq: Equation) -> None:
    """Parse one equation with PySD's grammar; raise ModelFileError at its line."""
    from pysd.translators.vensim.vensim_element import Component, Element

    cleaned = re.sub(r"[\n\t\s]+", " ", re.sub(r"\\\n\t", " ", eq.text))
    try:
        element = Element(cleaned, eq.units, eq.comment).parse()
        if isinstance(element, Component):
            element.parse()
    except Exception as exc:
        message = _first_line(exc)
        found = re.search(r"text begins with '(.*?)'", message) or re.search(
            r"Rule .*? didn't match at '(.*?)'", message
        )
        detail = f"cannot parse the equation near '{found.group(1)[:30]}'" if found else (
            f"cannot parse the equation: {message}"
        )
        raise ModelFileError(detail, file=path, line=eq.line, variable=eq.name) from None


def _walk(node) -> Iterator[object]:
    """Every node of a PySD abstract expression tree."""
    yield node
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)
    elif hasattr(node, "__dataclass_fields__"):
        for field in node.__dataclass_fields__:
            yield from _walk(getattr(node, field))


def check_references(abstract, index: SourceIndex) -> None:
    """Raise ModelFileError for the first undefined name or unknown function."""
    problems = reference_problems(abstract, index)
    if problems:
        raise problems[0]


def reference_problems(abstract, index: SourceIndex) -> list[ModelFileError]:
    """Every undefined name and unknown function, one ModelFileError each, in file order."""
    from pysd.builders.python.python_functions import functionspace
    from pysd.translators.structures.abstract_expressions import CallStructure, ReferenceStructure

    defined = {normalize(el.name) for sec in abstract.sections for el in sec.elements}
    defined |= BUILTIN_NAMES
    problems: list[ModelFileError] = []
    for section in abstract.sections:
        for element in section.elements:
            line = index.line(element.name)
            for component in element.components:
                called = set()
                for node in _walk(component.ast):
                    if isinstance(node, CallStructure) and isinstance(node.function, ReferenceStructure):
                        fname = node.function.reference
                        called.add(id(node.function))
                        if normalize(fname) not in defined and fname not in functionspace:
                            problems.append(ModelFileError(
                                f"unknown function '{fname.upper()}'",
                                file=index.path, line=line, variable=element.name,
                            ))
                for node in _walk(component.ast):
                    if isinstance(node, ReferenceStructure) and id(node) not in called:
                        if normalize(node.reference) not in defined:
                            problems.append(ModelFileError(
                                f"undefined name '{_as_written(index, element.name, node.reference)}'",
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
