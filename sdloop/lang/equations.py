"""Split Vensim text into equations, keeping the file line of each, and index them by name.

PySD parses Vensim text but forgets where each equation stands. ``split_equations`` splits
the text itself (on ``|``, outside quoted names), before the sketch section, recording each
equation's line, the subscripts on its left and the macro it belongs to; ``SourceIndex``
finds a variable's equation by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sdloop.errors import ModelFileError
from sdloop.lang.names import normalize

SKETCH_MARKER = "\\\\\\---///"
# Vensim writes the sketch marker with three backslashes; some files carry two.
SKETCH_PATTERN = re.compile(r"^\\{2,3}---///", re.MULTILINE)
MACRO_START = re.compile(r"^\s*:MACRO:\s*(?P<name>[^(\n]+?)\s*\((?P<params>[^)]*)\)", re.MULTILINE)
# a data variable's keyword after its name (``price:INTERPOLATE::= GET DATA(...)``): not a range
DATA_KEYWORD = re.compile(r":\s*(INTERPOLATE|RAW|HOLD\s+BACKWARD|LOOK\s+FORWARD)\s*:", re.IGNORECASE)
MACRO_END = re.compile(r"^\s*:END OF MACRO:\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Equation:
    """One equation of a Vensim file as written: ``text ~ units ~ comment |``.

    ``subscripts`` is the text between the brackets on the left (``""`` when none, with
    any ``:EXCEPT:`` part); ``macro`` names the macro the equation belongs to (None in the
    model itself); ``range`` says the equation defines a subscript range. An XMILE variable's
    ``text`` is its ``<eqn>`` texts (no units, no comment).
    """

    name: str
    line: int
    text: str
    units: str
    comment: str
    subscripts: str = ""
    macro: str | None = None
    range: bool = False


def line_of(text: str, offset: int) -> int:
    """The 1-based line of ``offset`` in ``text``."""
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
                                     "after it; remove it", file=path, line=line_of(text, chunk_start + len(chunk)))
            continue
        offset = chunk_start + (len(chunk) - len(chunk.lstrip()))
        if chunk.strip().startswith("*") or chunk.strip().startswith(":"):
            continue  # group separator (****** .Control ******)
        parts = chunk.split("~")
        line = line_of(text, offset)
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
        is_range = (bool(re.match(r'\s*("[^"]+"|[^=(\[:]+):(?!=)', lhs)) and "=" not in lhs.split(":", 1)[0]
                    and not DATA_KEYWORD.match(lhs[len(lhs.split(":", 1)[0]):]))
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
            return line_of(text, comment_start + pos)
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

