"""Read a model file through PySD's parser, keeping the file line of every variable.

PySD's parse errors name neither the variable nor the line. ``parse_model`` splits the text
into equations itself (``sdloop.lang.equations``), parses each with PySD's own grammar so a
failure points at one equation, and checks that every name an equation uses is defined and
every function it calls is one PySD knows (``sdloop.lang.references``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from sdloop.errors import ModelFileError, first_line
from sdloop.lang.equations import Equation, SourceIndex, line_of, read_text, split_equations
from sdloop.lang.references import check_references


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
    found = list(re.finditer(r'<(stock|flow|aux|gf)\s+name="([^"]+)"', text))
    for match, after in zip(found, found[1:] + [None]):
        name = match.group(2).replace("\\n", " ")
        block = text[match.end():after.start() if after else len(text)]
        written = " ".join(html.unescape(e) for e in re.findall(r"<eqn>(.*?)</eqn>", block, re.S))
        equations.append(Equation(name, line_of(text, match.start()), written, "", ""))
    from sdloop.lang.xmile_refusals import refuse_duplicates, refuse_unsupported, refuse_whole_array_functions

    refuse_duplicates(path, text)
    refuse_unsupported(path, text)
    refuse_whole_array_functions(path, text)
    return SourceIndex(path, equations)


def source_index(path: str | Path) -> SourceIndex:
    """Where each variable of a model file is defined, and its equation as written, without
    PySD's parse (``parse_model`` gives the same index)."""
    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() == ".mdl":
        return SourceIndex(path, split_equations(path, text))
    return _xmile_index(path, text)


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

            from sdloop.lang.xmile_points import use_listed_points

            reader = XmileFile(path)
            use_listed_points(reader.xmile_root)
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
            raise _located(path, text, first_line(exc)) from exc
    if check_names:
        check_references(abstract, index)
    return abstract, index


def _located(path: Path, text: str, message: str) -> ModelFileError:
    """PySD's parse error, at the line of the text it stopped at when that text is in the file once.
    A macro there is one after the model's equations that follows another macro: PySD's file
    grammar reads the model's part up to the last ``:MACRO:``, so only one macro may follow it."""
    from sdloop.lang.equations import line_of

    found = re.search(r"didn't match at '(.*?)' \(line", message)
    where = text.find(found.group(1)) if found else -1
    if where < 0 or text.find(found.group(1), where + 1) >= 0:
        return ModelFileError(f"PySD could not parse the file: {message}", file=path)
    if found.group(1).startswith(":MACRO:"):
        return ModelFileError("PySD cannot read a macro after the model's equations when another macro follows it; "
                              "move the macros (:MACRO: ... :END OF MACRO:) before the equations", file=path,
                              line=line_of(text, where), variable=found.group(1)[7:].split("(")[0].strip() or None)
    return ModelFileError(f"PySD could not parse the file near '{found.group(1)}'", file=path,
                          line=line_of(text, where))


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

