"""Parsed model files kept between processes, so that an edit re-parses only what it changed.

Parsing a Vensim file with PySD's grammar is most of the time it takes to open a model (10 s
of 12 for the sector model on a busy machine), and it is done again by every command.
``parsed_model(path)`` returns what ``sdloop.lang.source.parse_model`` returns (PySD's
``AbstractModel`` and the ``SourceIndex``), from the cache when it can:

- the same file text (and path, PySD and sdloop's parsing code) as a cached entry: that entry;
- an edit of the file last parsed at this path that rewrote equations in place (the same
  equations in the same order on the same lines, each changed one defining a whole variable
  of the model itself on its own): the last entry, with only the changed equations parsed
  again (checked at their lines as ``parse_model`` checks them) and spliced in, then every
  name checked again. One constant's value, a unit, a comment or an equation rewritten on
  its lines is such an edit;
- anything else: ``parse_model``.

Entries live in ``$SDLOOP_CACHE/parsed`` (private, like the translation cache), sealed with the
hash of each file (``sdloop.engines.cache_entries``); a damaged entry is not used. The
splice gives the abstract model a full parse gives (a test compares them).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from sdloop.engines.cache_entries import discard, intact, new_entry, private_cache
from sdloop.engines.pysd_translation import cache_dir
from sdloop.errors import ModelFileError
from sdloop.lang.equations import read_text, SourceIndex, split_equations
from sdloop.lang.references import check_references
from sdloop.lang.source import _parse_one, parse_model

FORMAT = "parsed-1"


@lru_cache(maxsize=1)
def _code_version() -> str:
    """PySD's version and a digest of the code that parses (sdloop/lang and this module)."""
    import pysd

    h = hashlib.sha256(f"{FORMAT}\0{pysd.__version__}".encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "lang").rglob("*.py")) + [Path(__file__).resolve()]:
        h.update(path.read_bytes())
    return h.hexdigest()


def _key(path: Path, text: str) -> str:
    return hashlib.sha256(f"{_code_version()}\0{path.resolve()}\0{text}".encode()).hexdigest()[:32]


def _root() -> Path:
    root = private_cache(cache_dir()) / "parsed"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _load(entry: Path):
    """(text, abstract, index) of a sound entry, or None."""
    if not entry.is_dir():
        return None
    if not intact(entry):
        discard(entry)
        return None
    try:
        with open(entry / "model.pickle", "rb") as handle:
            abstract, index = pickle.load(handle)
        return (entry / "model.txt").read_text(encoding="utf-8"), abstract, index
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None


def _last_pointer(root: Path, path: Path) -> Path:
    """The file naming the entry of the last text parsed at ``path``."""
    return root / f"last-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]}"


def _store(root: Path, key: str, path: Path, text: str, abstract, index) -> None:
    try:
        with new_entry(root / key) as work:
            (work / "model.txt").write_text(text, encoding="utf-8")
            with open(work / "model.pickle", "wb") as handle:
                pickle.dump((abstract, index), handle, protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(prefix=".last-", dir=root)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        os.replace(tmp, _last_pointer(root, path))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _spliced(path: Path, text: str, old_text: str, abstract, index):
    """(abstract, index) for ``text`` from the entry of ``old_text``, or None when the edit is
    not equations rewritten in place."""
    equations = split_equations(path, text)
    old = index.equations
    if len(equations) != len(old) or text.count("\n") != old_text.count("\n"):
        return None
    changed, before = [], {}
    for new_eq, old_eq in zip(equations, old):
        if (new_eq.name, new_eq.line, new_eq.subscripts, new_eq.macro, new_eq.range) != \
                (old_eq.name, old_eq.line, old_eq.subscripts, old_eq.macro, old_eq.range):
            return None
        if (new_eq.text, new_eq.units, new_eq.comment) != (old_eq.text, old_eq.units, old_eq.comment):
            changed.append(new_eq)
            before[new_eq.name] = old_eq
    # every changed line of the file lies inside a changed equation (from its line to the next's)
    starts = sorted({eq.line for eq in equations})
    spans = [(eq.line, next((s for s in starts if s > eq.line), 1 << 30)) for eq in changed]
    matcher = difflib.SequenceMatcher(None, old_text.splitlines(), text.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal" and not any(a <= i1 + 1 and i2 + 1 <= b for a, b in spans):
            return None
    main = next((sec for sec in abstract.sections if sec.name == "__main__"), abstract.sections[0])
    elements = {el.name.lower().replace(" ", "_"): i for i, el in enumerate(main.elements)}
    replaced = list(main.elements)
    for eq in changed:
        position = elements.get(eq.name.lower().replace(" ", "_"))
        if position is None or len(index.definitions(eq.name)) != 1 or len(replaced[position].components) != 1:
            return None
        # the equation as it was, parsed alone, must give the cached element exactly (text that
        # PySD's file parser reads differently, such as some continuations or names, is parsed in full)
        try:
            was = _component(path, before[eq.name])
        except ModelFileError:
            return None
        if was is None or _element(replaced[position], was) != replaced[position]:
            return None
        component = _component(path, eq)
        if component is None:
            return None
        replaced[position] = _element(replaced[position], component)
    sections = tuple(replace(sec, elements=replaced) if sec is main else sec for sec in abstract.sections)
    return replace(abstract, sections=sections), SourceIndex(path, equations)


def _element(element, component):
    """``element`` with its one component replaced by ``component`` (as PySD merges them)."""
    return replace(element, components=[component.get_abstract_component()], units=component.units or "",
                   limits=component.limits or (None, None), documentation=component.documentation or "")


def _component(path: Path, eq):
    """One equation parsed as PySD's section parser does (ModelFileError at its line)."""
    import re

    from pysd.translators.vensim.vensim_element import Component, Element

    _parse_one(path, eq)  # the check parse_model makes, with the line of any error
    cleaned = re.sub(r"[\n\t\s]+", " ", re.sub(r"\\\n\t", " ", eq.text)).strip()
    element = Element(cleaned, eq.units.strip(), eq.comment.strip()).parse()
    if not isinstance(element, Component) or element.name != eq.name:
        return None
    element.parse()
    return element


def parsed_model(path: str | Path):
    """``parse_model(path)``, from the cache or re-parsing only the equations an edit changed."""
    path = Path(path)
    if path.suffix.lower() != ".mdl":
        return parse_model(path)
    text = read_text(path)
    try:
        root = _root()
    except OSError:
        return parse_model(path)
    key = _key(path, text)
    found = _load(root / key)
    if found is not None and found[0] == text:
        return found[1], found[2]
    result = None
    try:
        last = _last_pointer(root, path).read_text().strip()
        previous = _load(root / last) if last and last != key else None
    except OSError:
        previous = None
    if previous is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = _spliced(path, text, *previous)
        if result is not None:
            check_references(*result)
    if result is None:
        result = parse_model(path)
    _store(root, key, path, text, *result)
    return result


def model_structure(path: str | Path):
    """``build_structure(path)`` on ``parsed_model(path)``, reusing the conditions sympy simplified
    for this text or the last one at this path (``sdloop.structure.piecewise_memo``)."""
    from sdloop.structure.build import structure_from_abstract
    from sdloop.structure.piecewise_memo import piecewise_memo

    path = Path(path)
    memo, store = _memo(path)  # before parsed_model moves this path's "last" to the new text
    abstract, index = parsed_model(path)
    with piecewise_memo(memo) as used:
        structure = structure_from_abstract(path, abstract, index)
    if store is not None and (used.keys() != memo.keys() or not store.current):
        store(used)
    structure.require_valid()
    return structure


def _memo_version() -> str:
    import sympy

    from sdloop.structure import expressions, lookups, piecewise_memo, symbols, vensim_functions

    modules = (expressions, vensim_functions, symbols, lookups, piecewise_memo)
    return hashlib.sha256(f"{sympy.__version__}\0".encode()
                          + b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()


def _memo(path: Path):
    """(the Piecewise memo for ``path``'s text or its last text, a function that stores one for
    this text or None) from the parsed cache; entries are sealed like the parsed models."""
    if path.suffix.lower() != ".mdl":
        return {}, None
    try:
        root = _root()
        key = _key(path, read_text(path))
    except (OSError, ModelFileError):
        return {}, None
    try:
        last = _last_pointer(root, path).read_text().strip()
    except OSError:
        last = ""
    version = _memo_version()
    memo: dict = {}
    current = False
    for name in (key, last):
        entry = root / f"{name}.piecewise"
        if name and entry.is_dir() and intact(entry):
            try:
                with open(entry / "memo.pickle", "rb") as handle:
                    found = pickle.load(handle)
                if isinstance(found, dict) and found.get("version") == version:
                    memo, current = found["table"], name == key
                    break
            except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
                pass

    def store(table: dict) -> None:
        try:
            with new_entry(root / f"{key}.piecewise", replace=True) as work, \
                    open(work / "memo.pickle", "wb") as handle:
                pickle.dump({"version": version, "table": table}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            pass  # a cache that cannot be written only costs time

    store.current = current  # the entry read is this text's own
    return memo, store
