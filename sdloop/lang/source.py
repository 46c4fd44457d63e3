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

from sdloop.errors import ModelFileError, first_line

SKETCH_MARKER = "\\\\\\---///"
# Vensim writes the sketch marker with three backslashes; some files carry two.
SKETCH_PATTERN = re.compile(r"^\\{2,3}---///", re.MULTILINE)
MACRO_START = re.compile(r"^\s*:MACRO:\s*(?P<name>[^(\n]+?)\s*\((?P<params>[^)]*)\)", re.MULTILINE)
MACRO_END = re.compile(r"^\s*:END OF MACRO:\s*$", re.MULTILINE)
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


@dataclass(frozen=True)
class Equation:
    """One equation of a Vensim file as written: ``text ~ units ~ comment |``.

    ``subscripts`` is the text between the brackets on the left (``""`` when none, with
    any ``:EXCEPT:`` part); ``macro`` names the macro the equation belongs to (None in the
    model itself); ``range`` says the equation defines a subscript range.
    """

    name: str
    line: int
    text: str
    units: str
    comment: str
    subscripts: str = ""
    macro: str | None = None
    range: bool = False


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _lhs_name(equation: str) -> str:
    """The variable name on the left of an equation or lookup definition."""
    match = re.match(r'\s*("(?:[^"\\]|\\.)+"|[^=(\[:~]+)', equation)
    name = match.group(1).strip() if match else equation.strip()[:40]
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == '"' else name


def _lhs_subscripts(equation: str, name_end: int) -> str:
    """The subscripts written on the left, ``:EXCEPT:`` included (normalized spacing)."""
    head = equation[name_end:]
    match = re.match(r"\s*(\[[^\]]*\](?:\s*:EXCEPT:\s*(?:\[[^\]]*\]\s*,?\s*)+)?)", head, re.IGNORECASE)
    return re.sub(r"\s+", " ", match.group(1)).strip().lower() if match else ""


def model_body(text: str) -> str:
    """The equations part of a Vensim file: everything before the sketch marker."""
    found = SKETCH_PATTERN.search(text)
    return text if found is None else text[:found.start()]


def _chunks(body: str, start: int) -> Iterator[tuple[int, str]]:
    """(offset, text, terminated) of each ``|``-terminated chunk (and of trailing text without
    one); a ``|`` inside a quoted name is kept."""
    i, chunk_start, quoted, field = start, start, False, 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"' and field == 0:
            quoted = not quoted
        elif c == "~" and not quoted:
            field += 1
        elif c == "|" and not quoted:
            yield chunk_start, body[chunk_start:i], True
            chunk_start, field = i + 1, 0
        i += 1
    if body[chunk_start:].strip():
        yield chunk_start, body[chunk_start:], False


def split_equations(path: Path, text: str) -> list[Equation]:
    """Split Vensim text into equations, each with the line its name stands on.

    Raises ModelFileError for an equation that is not terminated by ``|`` (detected as
    one chunk holding two equations' worth of ``~`` separators) and for a variable (or
    subscripted element) defined twice.
    """
    body = model_body(text)
    start = body.index("{UTF-8}") + len("{UTF-8}") if body.lstrip().startswith("{UTF-8}") else 0
    equations: list[Equation] = []
    macro: str | None = None
    seen: dict[tuple, Equation] = {}
    for chunk_start, chunk, terminated in _chunks(body, start):
        # macro markers stand on their own lines before an equation
        while True:
            stripped = chunk.lstrip()
            lead = len(chunk) - len(stripped)
            found_start = MACRO_START.match(stripped)
            found_end = MACRO_END.match(stripped.split("\n", 1)[0]) if stripped.startswith(":END") else None
            if found_start:
                macro = found_start.group("name").strip()
                cut = lead + found_start.end()
            elif found_end:
                macro = None
                cut = lead + len(stripped.split("\n", 1)[0])
            else:
                break
            chunk_start, chunk = chunk_start + cut, chunk[cut:]
        if not chunk.strip():
            if terminated and chunk_start > start:  # "| |": PySD stops reading the equations here
                raise ModelFileError("an empty equation (a '|' with nothing before it): PySD reads no equation "
                                     "after it; remove it", file=path, line=_line_of(text, chunk_start + len(chunk)))
            continue
        offset = chunk_start + (len(chunk) - len(chunk.lstrip()))
        if chunk.strip().startswith("*") or chunk.strip().startswith(":"):
            continue  # group separator (****** .Control ******)
        parts = chunk.split("~")
        line = _line_of(text, offset)
        name = _lhs_name(parts[0])
        if len(parts) == 4 and parts[3].strip().upper() in (":SUPPLEMENTARY", ""):
            parts = parts[:3]
        if len(parts) > 3:
            next_line = _next_equation_line(text, offset, parts)
            raise ModelFileError(
                "equation is not terminated by '|'"
                + (f" (the next equation starts on line {next_line})" if next_line else ""),
                file=path, line=line, variable=name,
            )
        if not terminated and not MACRO_END.match(chunk.strip()):
            raise ModelFileError("the last equation is not terminated by '|'", file=path, line=line,
                                 variable=name)
        if len(parts) < 2:
            raise ModelFileError(
                "equation has no '~ units ~ comment' part before '|'",
                file=path, line=line, variable=name,
            )
        lhs = parts[0].strip()
        name_end = lhs.find(name) + len(name) + (2 if lhs.startswith('"') else 0)
        is_range = bool(re.match(r'\s*("[^"]+"|[^=(\[:]+):(?!=)', lhs)) and "=" not in lhs.split(":", 1)[0]
        subs = "" if is_range else _lhs_subscripts(lhs, name_end)
        units = parts[1].strip()
        comment = parts[2].strip() if len(parts) > 2 else ""
        eq = Equation(name, line, lhs, units, comment, subs, macro, is_range)
        key = (macro, normalize(name), subs, is_range)
        if key in seen and not _is_lookup_pair(seen[key], eq):
            raise ModelFileError(f"defined twice (lines {seen[key].line} and {line})",
                                 file=path, line=line, variable=name)
        seen[key] = eq
        equations.append(eq)
    return equations


def _is_lookup_pair(first: Equation, second: Equation) -> bool:
    """Vensim allows a data variable to be declared and then given a data equation."""
    return not first.text.replace(first.name, "", 1).strip() or not second.text.replace(second.name, "", 1).strip()


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
    """Where each variable of a model file is defined: name -> (Vensim name, line).

    A name with subscripts (``pop[north]``) finds its variable's first equation; macro
    equations are found only when the model itself has no variable of that name.
    """

    def __init__(self, path: Path, equations: list[Equation]) -> None:
        self.path = path
        self.equations = equations
        self._by_name: dict[str, Equation] = {}
        self._all: dict[str, list[Equation]] = {}
        for eq in sorted(equations, key=lambda e: e.macro is not None):
            if eq.range:
                continue
            self._by_name.setdefault(normalize(eq.name), eq)
            if eq.macro is None:
                self._all.setdefault(normalize(eq.name), []).append(eq)

    @staticmethod
    def _key(name: str) -> str:
        return normalize(name.split("[", 1)[0]) if "[" in name and not name.startswith('"') else normalize(name)

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._by_name

    def get(self, name: str) -> Equation | None:
        return self._by_name.get(self._key(name))

    def line(self, name: str) -> int | None:
        eq = self.get(name)
        return eq.line if eq else None

    def definitions(self, name: str) -> list[Equation]:
        """Every equation of the model (not its macros) defining ``name``, in file order."""
        return self._all.get(self._key(name), [])

    def names(self) -> list[str]:
        return [eq.name for eq in self.equations if eq.macro is None and not eq.range]


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ModelFileError("no such model file", file=path) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ModelFileError(f"cannot read model file: {exc}", file=path) from None


def _xmile_index(path: Path, text: str) -> SourceIndex:
    """Where each XMILE variable is defined; ModelFileError for a file that is not XMILE."""
    import xml.etree.ElementTree as ET

    if not text.strip():
        raise ModelFileError("the file is empty (expected an XMILE model)", file=path)
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise ModelFileError(f"not an XML file: {exc}", file=path, line=line) from None
    if not root.tag.endswith("xmile"):
        raise ModelFileError(f"not an XMILE file (the root element is <{root.tag.split('}')[-1]}>)", file=path)
    equations = []
    for match in re.finditer(r'<(stock|flow|aux|gf)\s+name="([^"]+)"', text):
        name = match.group(2).replace("\\n", " ")
        equations.append(Equation(name, _line_of(text, match.start()), "", "", ""))
    from sdloop.lang.xmile_refusals import refuse_duplicates, refuse_unsupported

    refuse_duplicates(path, text)
    refuse_unsupported(path, text)
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
            missing = [n.upper() for n in ("initial time", "final time", "time step") if n not in index]
            if missing:
                raise ModelFileError(f"the model defines no {', '.join(missing)} (the control section is missing)",
                                     file=path)
            from pysd.translators.vensim.vensim_file import VensimFile

            reader = VensimFile(path)
        elif path.suffix.lower() in {".xmile", ".xml", ".stmx"}:
            index = _xmile_index(path, text)
            from pysd.translators.xmile.xmile_file import XmileFile

            reader = XmileFile(path)
        else:
            raise ModelFileError("unknown model file type (expected .mdl or .xmile)", file=path)
        try:
            if path.suffix.lower() != ".mdl":
                _parse_xmile_elements(path, reader)
            else:
                reader.parse()
            abstract = reader.get_abstract_model()
        except ModelFileError:
            raise
        except Exception as exc:  # PySD raises bare parser errors with no location
            raise ModelFileError(f"PySD could not parse the file: {first_line(exc)}", file=path) from exc
    if check_names:
        check_references(abstract, index)
    return abstract, index


def _parse_xmile_elements(path: Path, reader) -> None:
    """PySD's XMILE parse, one variable at a time: an equation it cannot read raises
    ModelFileError at the line of its ``<eqn>`` (PySD's own error names no variable)."""
    reader.parse(parse_all=False)
    for section in reader.sections:
        section.parse(parse_all=False)
        for component in section.components:
            try:
                component.parse(section.behaviors)
            except Exception as exc:
                node = getattr(component, "node", None)
                eqn = node.find("{*}eqn") if node is not None else None
                line = (eqn if eqn is not None else node).sourceline if node is not None else None
                message = first_line(exc)
                found = re.search(r"text begins with '(.*?)'", message)
                detail = f"cannot parse the equation near '{found.group(1)[:30]}'" if found else (
                    f"cannot parse the equation: {message}")
                if node is not None and node.tag.endswith("stock") and node.find("{*}element") is not None:
                    line = node.find("{*}element").sourceline
                    detail = ("PySD cannot read a stock with one initial value per <element>; give the stock "
                              "one <eqn> (e.g. an arrayed auxiliary holding the initial values)")
                raise ModelFileError(detail, file=path, line=line, variable=component.name) from None


def _parse_one(path: Path, eq: Equation) -> None:
    """Parse one equation with PySD's grammar; raise ModelFileError at its line."""
    from pysd.translators.vensim.vensim_element import Component, Element

    cleaned = re.sub(r"\s+", " ", re.sub(r"\\\s*\n", " ", eq.text))
    try:
        element = Element(cleaned, eq.units, eq.comment).parse()
        if isinstance(element, Component):
            element.parse()
    except Exception as exc:
        message = first_line(exc)
        found = re.search(r"text begins with '(.*?)'", message) or re.search(
            r"Rule .*? didn't match at '(.*?)'", message
        )
        missing = re.search(r"(\w+)Structure.__init__\(\) missing .*?argument: '(\w+)'", message)
        detail = f"cannot parse the equation near '{found.group(1)[:30]}'" if found else (
            f"{missing.group(1).upper()} needs its {missing.group(2).replace('_', ' ')} argument" if missing
            else f"cannot parse the equation: {message}"
        )
        if re.search(r"\([^()]*[^:\s]\s*:\s*[^:()]*\)", cleaned):  # f(a, b : c), not :AND:
            detail += " (a call with ':' gives a macro several outputs, which PySD does not support)"
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
                for node in _walk(component.ast):
                    if isinstance(node, CallStructure) and isinstance(node.function, ReferenceStructure):
                        fname = node.function.reference
                        called.add(id(node.function))
                        if normalize(fname) not in known and fname not in functionspace:
                            problems.append(ModelFileError(
                                f"unknown function '{fname.upper().replace('_', ' ')}'"
                                " (not defined in the model, not among the functions PySD runs)",
                                file=index.path, line=line, variable=element.name,
                            ))
                for node in _walk(component.ast):
                    if isinstance(node, ReferenceStructure) and id(node) not in called:
                        if normalize(node.reference) not in known:
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
